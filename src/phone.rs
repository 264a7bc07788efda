//! Phone numbers: parsing into E.164 with a real numbering-plan library, and masking for logs.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{Mode, PhoneNumber};
use serde::{Deserialize, Serialize};

/// A country whose numbering plan is used for numbers written without `+` and a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl FromStr for Region {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let upper = s.trim().to_ascii_uppercase();
        // The library also knows "001" (non-geographic); a clinic region is always a country.
        if upper.len() != 2 {
            return Err(());
        }
        Id::from_str(&upper).map(Region).map_err(|_| ())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

/// The most characters a written phone number may have (libphonenumber's input limit).
pub const MAX_WRITTEN: usize = 250;

/// A phone number in E.164 form (`+919820012345`), known to be valid for its country.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164(String);

/// Why a written number is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing was written.
    #[error("the phone number is empty")]
    Empty,
    /// The text cannot be read as a phone number at all.
    #[error("this is not a phone number")]
    Unreadable,
    /// Longer than any written number could be (libphonenumber's own input limit).
    #[error("this is too long to be a phone number (at most {MAX_WRITTEN} characters)")]
    TooLong,
    /// It reads as a number but no such number exists in that country's numbering plan.
    #[error(
        "this is not a valid number in {region}'s numbering plan (or for the country code it starts with)"
    )]
    Invalid {
        /// The region it was read with.
        region: Region,
    },
}

/// How people call a region's numbers ("Indian", "US"); `None` for the regions not named here.
fn adjective(region: &str) -> Option<&'static str> {
    Some(match region {
        "IN" => "Indian",
        "US" => "US",
        "CA" => "Canadian",
        "GB" => "UK",
        "MX" => "Mexican",
        "AU" => "Australian",
        "AE" => "UAE",
        "SG" => "Singapore",
        "WS" => "Samoan",
        _ => return None,
    })
}

/// "an Indian", "a US": a region's numbers named in a sentence.
pub fn region_article(region: Region) -> String {
    match adjective(region.0.as_ref()) {
        Some(a) if a.starts_with(['A', 'E', 'I', 'O']) => format!("an {a}"),
        Some(a) => format!("a {a}"),
        None => format!("a {region}"),
    }
}

/// Why a written number is not usable, in words for the front desk: "not a valid Indian
/// mobile number: it has 9 digits, mobile numbers have 10". A number written with `+` or
/// `00` is judged by the country its code names.
pub fn explain(raw: &str, region: Region, err: &PhoneError) -> String {
    if !matches!(err, PhoneError::Invalid { .. }) {
        return err.to_string();
    }
    let db = &*phonenumber::metadata::DATABASE;
    let trimmed = raw.trim();
    let international = trimmed.starts_with('+') || trimmed.starts_with("00");
    let mut digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if trimmed.starts_with("00") {
        digits.drain(..2);
    }
    let meta = if international {
        // The country code is the shortest prefix of one to three digits that names one.
        (1..=3.min(digits.len())).find_map(|n| {
            let code: u16 = digits[..n].parse().ok()?;
            let m = db.by_code(&code)?.into_iter().next()?;
            digits.drain(..n);
            Some(m)
        })
    } else {
        db.by_id(region.0.as_ref()).inspect(|m| {
            if let Some(p) = m.national_prefix()
                && digits.starts_with(p)
                && digits.len() > p.len() + 6
            {
                digits.drain(..p.len());
            }
        })
    };
    let Some(meta) = meta else {
        return "not a valid phone number: the country code it starts with does not exist".into();
    };
    let name = adjective(meta.id()).map_or_else(|| meta.id().to_string(), str::to_string);
    let mut lengths: Vec<u16> = meta
        .descriptors()
        .mobile()
        .map(|d| d.possible_length().to_vec())
        .unwrap_or_default();
    if lengths.is_empty() {
        lengths = meta.descriptors().general().possible_length().to_vec();
    }
    let n = digits.len();
    if lengths.is_empty() || lengths.iter().any(|l| usize::from(*l) == n) {
        return format!("not a valid {name} mobile number: check the digits");
    }
    let have: Vec<String> = lengths.iter().map(u16::to_string).collect();
    let have = match have.as_slice() {
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => String::new(),
    };
    format!(
        "not a valid {name} mobile number: it has {n} digit{}, mobile numbers have {have}",
        if n == 1 { "" } else { "s" }
    )
}

impl E164 {
    /// Reads `raw` as written by front-desk staff; numbers without `+` use `region`.
    pub fn parse(raw: &str, region: Region) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // The parser's time grows with the input; a misplaced column can hold megabytes.
        if trimmed.len() > MAX_WRITTEN {
            return Err(PhoneError::TooLong);
        }
        // Exports often write "0091..." or "00 1 ..." for the international prefix.
        let cleaned;
        let text = if let Some(rest) = trimmed.strip_prefix("00") {
            cleaned = format!("+{rest}");
            cleaned.as_str()
        } else {
            trimmed
        };
        let first = phonenumber::parse(Some(region.0), text);
        if let Ok(n) = &first
            && phonenumber::is_valid(n)
        {
            return Ok(Self::format(n));
        }
        // phonenumber 0.3 strips a leading country code too eagerly: "91667 33140" in India
        // is read as +91 667 33140 and rejected, where libphonenumber keeps a number that
        // fits the national plan. Without a '+', try it as a national number explicitly.
        if !text.starts_with('+')
            && let Some(cc) = phonenumber::metadata::DATABASE
                .by_id(region.0.as_ref())
                .map(phonenumber::Metadata::country_code)
            && let Ok(n) = phonenumber::parse(Some(region.0), format!("+{cc} {text}"))
            && phonenumber::is_valid(&n)
        {
            return Ok(Self::format(&n));
        }
        match first {
            Err(_) => Err(PhoneError::Unreadable),
            Ok(_) => Err(PhoneError::Invalid { region }),
        }
    }

    fn format(n: &PhoneNumber) -> Self {
        Self(n.format().mode(Mode::E164).to_string())
    }

    /// A webhook sender's WhatsApp id (the number's digits, as Meta sends it) as E.164; `None`
    /// when it holds no number (a username-only sender). Meta has already resolved the number,
    /// so it is not parsed against a numbering plan again.
    pub fn from_wa_id(wa_id: &str) -> Option<Self> {
        let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
        (!digits.is_empty() && digits.len() <= 15).then(|| Self(format!("+{digits}")))
    }

    /// Wraps a number already stored in E.164 form (read back from the database).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The E.164 text, e.g. `+919820012345`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the country code and the last four digits hidden, for logs and
    /// human output: `+91******2345`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masks an E.164 string; anything that is not one is hidden entirely but for its last digits.
pub fn mask(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return "*".repeat(digits.len().max(4));
    }
    let cc = country_code_len(&digits);
    let keep_tail = 4;
    let hidden = digits.len() - cc - keep_tail;
    let mut out = String::with_capacity(digits.len() + 1);
    out.push('+');
    out.extend(&digits[..cc]);
    out.extend(std::iter::repeat_n('*', hidden));
    out.extend(&digits[digits.len() - keep_tail..]);
    out
}

/// Length of the calling code at the start of `digits`; calling codes are prefix-free, so the
/// first 1-3 digit prefix the numbering plan knows is the one.
fn country_code_len(digits: &[char]) -> usize {
    for len in 1..=3 {
        let code: String = digits[..len].iter().collect();
        if let Ok(value) = code.parse::<u16>()
            && phonenumber::metadata::DATABASE.by_code(&value).is_some()
        {
            return len;
        }
    }
    1
}

// ---- numbers inside a message or a text -----------------------------------------------------

/// A stored message with anything that is a phone number masked, for staff to read: HL7
/// PID-13/14 and NK1-5/6 (the patient's and next of kin's numbers), FHIR `telecom` values
/// (shown pretty-printed); anything else has numbers written with a leading `+` masked.
/// Names stay: staff see them on every page.
pub fn mask_numbers(body: &str) -> String {
    let trimmed = body.trim_matches(|c: char| c.is_whitespace() || c == '\u{b}' || c == '\u{1c}');
    if trimmed.starts_with("MSH") {
        return mask_hl7(trimmed);
    }
    if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(trimmed) {
        mask_telecom(&mut json, false);
        return serde_json::to_string_pretty(&json).unwrap_or_else(|_| mask_loose(trimmed));
    }
    mask_loose(trimmed)
}

fn mask_hl7(body: &str) -> String {
    let field_sep = body[3..].chars().next().unwrap_or('|');
    let repeat_sep = body[3..].chars().nth(2).unwrap_or('~');
    body.split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .map(|segment| {
            let phones: &[usize] = match segment.get(..3) {
                Some("PID") => &[13, 14],
                Some("NK1") => &[5, 6],
                _ => return segment.to_string(),
            };
            segment
                .split(field_sep)
                .enumerate()
                .map(|(n, field)| {
                    if phones.contains(&n) {
                        field
                            .split(repeat_sep)
                            .map(keep_last_digits)
                            .collect::<Vec<_>>()
                            .join(&repeat_sep.to_string())
                    } else {
                        field.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(&field_sep.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `telecom` value that is not an e-mail or a web address, anywhere in the resource.
fn mask_telecom(v: &mut serde_json::Value, in_telecom: bool) {
    match v {
        serde_json::Value::Object(map) => {
            let system = map
                .get("system")
                .and_then(|s| s.as_str())
                .unwrap_or_default()
                .to_string();
            for (k, child) in map.iter_mut() {
                if in_telecom && k == "value" && !matches!(system.as_str(), "email" | "url") {
                    if let Some(s) = child.as_str() {
                        *child = serde_json::Value::String(mask_value(s));
                    }
                } else {
                    mask_telecom(child, k == "telecom");
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                mask_telecom(item, in_telecom);
            }
        }
        _ => {}
    }
}

/// An E.164 number as `phone::mask` writes it; anything else with all but its last four
/// digits hidden in place.
fn mask_value(s: &str) -> String {
    let e164 = s.starts_with('+') && s[1..].chars().all(|c| c.is_ascii_digit()) && s.len() > 8;
    if e164 { mask(s) } else { keep_last_digits(s) }
}

/// `s` with every digit but the last four replaced by `*`.
fn keep_last_digits(s: &str) -> String {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 4 <= digits { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// Numbers written with a leading `+` (what a refusal's reason may quote) masked in a text.
pub fn mask_loose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('+') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let len = tail
            .char_indices()
            .skip(1)
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')')))
            .map_or(tail.len(), |(i, _)| i);
        let number = tail[..len].trim_end_matches([' ', '-', '(']);
        if number.chars().filter(char::is_ascii_digit).count() >= 7 {
            out.push_str(&keep_last_digits(number));
            rest = &tail[number.len()..];
        } else {
            out.push('+');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> Region {
        s.parse().expect("region")
    }

    #[test]
    fn indian_local_numbers_become_e164() {
        for raw in [
            "98200 12345",
            "098200-12345",
            "+91 98200 12345",
            "0091 9820012345",
            "(+91) 98200.12345",
        ] {
            let n = E164::parse(raw, region("IN")).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(n.as_str(), "+919820012345", "{raw}");
        }
    }

    #[test]
    fn indian_mobiles_starting_with_91_are_not_mistaken_for_a_country_code() {
        for (raw, want) in [
            ("91667 33140", "+919166733140"),
            ("9166733140", "+919166733140"),
            ("91234 56789", "+919123456789"),
            ("91 98200 12345", "+919820012345"),
            ("919820012345", "+919820012345"),
        ] {
            assert_eq!(
                E164::parse(raw, region("IN")).map(|n| n.0),
                Ok(want.to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn us_numbers_and_foreign_numbers_in_a_us_clinic() {
        assert_eq!(
            E164::parse("(212) 555-0142", region("US")).map(|n| n.0),
            Ok("+12125550142".into())
        );
        assert_eq!(
            E164::parse("+44 7911 123456", region("US")).map(|n| n.0),
            Ok("+447911123456".into())
        );
    }

    #[test]
    fn bad_numbers_are_errors() {
        assert_eq!(E164::parse("  ", region("IN")), Err(PhoneError::Empty));
        assert_eq!(
            E164::parse("call me", region("IN")),
            Err(PhoneError::Unreadable)
        );
        assert!(matches!(
            E164::parse("12345", region("IN")),
            Err(PhoneError::Invalid { .. })
        ));
    }

    #[test]
    fn a_bad_number_is_explained_in_digits_a_receptionist_can_count() {
        let india = region("IN");
        let why = |raw: &str| {
            let e = E164::parse(raw, india).expect_err("invalid");
            explain(raw, india, &e)
        };
        assert_eq!(
            why("98200 1234"),
            "not a valid Indian mobile number: it has 9 digits, mobile numbers have 10"
        );
        assert_eq!(
            why("12345"),
            "not a valid Indian mobile number: it has 5 digits, mobile numbers have 10"
        );
        assert_eq!(
            why("+52 55 1234"),
            "not a valid Mexican mobile number: it has 6 digits, mobile numbers have 10"
        );
        assert_eq!(region_article(india), "an Indian");
        assert_eq!(region_article(region("US")), "a US");
        assert_eq!(region_article(region("DE")), "a DE");
    }

    #[test]
    fn whatsapp_ids_become_e164_once_at_the_edge() {
        assert_eq!(
            E164::from_wa_id("919820012345").map(|p| p.as_str().to_string()),
            Some("+919820012345".to_string())
        );
        assert_eq!(E164::from_wa_id(""), None);
        assert_eq!(E164::from_wa_id("alice.username"), None);
        assert_eq!(E164::from_wa_id(&"9".repeat(16)), None);
    }

    #[test]
    fn megabytes_of_digits_are_refused_before_parsing() {
        let region = "IN".parse().expect("region");
        assert_eq!(
            E164::parse(&"9".repeat(2_000_000), region),
            Err(PhoneError::TooLong)
        );
        assert!(E164::parse(&format!("{}98200 12345", " ".repeat(300)), region).is_ok());
    }

    #[test]
    fn masking_keeps_country_code_and_last_four() {
        assert_eq!(mask("+919820012345"), "+91******2345");
        assert_eq!(mask("+12125550142"), "+1******0142");
        assert_eq!(mask("+447911123456"), "+44******3456");
        assert_eq!(mask("garbage"), "****");
    }

    #[test]
    fn regions_are_two_letter_countries() {
        assert!("in".parse::<Region>().is_ok());
        assert!("ZZ".parse::<Region>().is_err());
        assert!("001".parse::<Region>().is_err());
        assert!("India".parse::<Region>().is_err());
    }
}
