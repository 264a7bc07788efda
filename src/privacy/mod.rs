//! A patient's data and its retention, the pure parts: what an erasure searches stored texts
//! for, the hash an opt-out is kept as, and the instants before which the purge empties rows.
//! The store does the SQL (`store/privacy.rs`), the CLI and the desk the asking.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::Privacy;

/// The SHA-256 of an E.164 number, lower-case hex: all an opt-out keeps once the patient's
/// data is erased (`opt_outs.phone_sha256`).
pub fn phone_sha256(e164: &str) -> String {
    hex(&Sha256::digest(e164.trim().as_bytes()))
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Who is being erased, as stored: the patient's name and number and their caregiver's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The patient's name.
    pub name: String,
    /// The patient's number, E.164.
    pub phone: String,
    /// The caregiver's name, if any.
    pub contact_name: Option<String>,
    /// The caregiver's number, if any.
    pub contact_phone: Option<String>,
}

/// Shortest text searched for: a shorter name ("Al") would match inside unrelated words.
const MIN_NEEDLE: usize = 4;

/// The texts an erasure looks for in raw payloads and free text: each number as E.164 and as
/// bare digits (WhatsApp's `wa_id`, Twilio's form fields, HL7 fields), each name as written and
/// in HL7's `Family^Given` order. Longest first, so a replacement never leaves part of a longer
/// one behind.
pub fn needles(who: &Identity) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let numbers = [Some(who.phone.as_str()), who.contact_phone.as_deref()];
    for phone in numbers.into_iter().flatten() {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        out.push(phone.trim().to_string());
        out.push(digits);
    }
    let names = [Some(who.name.as_str()), who.contact_name.as_deref()];
    for name in names.into_iter().flatten() {
        let words: Vec<&str> = name.split_whitespace().collect();
        out.push(words.join(" "));
        if let [first, .., last] = words.as_slice() {
            out.push(format!("{last}^{first}"));
            out.push(format!("{last}, {first}"));
        }
    }
    out.retain(|n| n.chars().count() >= MIN_NEEDLE);
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// The E.164 numbers written inside a text (`+` and 8 to 15 digits): an audit row's old and
/// new number, so an erasure also finds a patient's earlier numbers.
pub fn numbers_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('+') {
        let digits: String = rest[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if (8..=15).contains(&digits.len()) {
            out.push(format!("+{digits}"));
        }
        rest = &rest[i + 1 + digits.len()..];
    }
    out
}

/// [`needles`] for the numbers a patient had before (each as E.164 and as bare digits).
pub fn number_needles(numbers: &[String]) -> Vec<String> {
    numbers
        .iter()
        .flat_map(|n| [n.clone(), n.trim_start_matches('+').to_string()])
        .filter(|n| n.len() >= MIN_NEEDLE)
        .collect()
}

/// What erasure puts where a name or number stood inside a kept text (an audit row's value).
pub const ERASED: &str = "[erased]";

/// The name an erased patient's row keeps, so that every page listing their appointments (the
/// day board, the week, follow-ups) says so in words instead of showing a blank.
pub const ERASED_NAME: &str = "Erased patient";

/// The instants before which the purge empties rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Raw webhook bodies and feed payloads received before this are emptied.
    pub raw_before: DateTime<Utc>,
    /// Message parameters and reply texts written before this are emptied.
    pub texts_before: DateTime<Utc>,
}

impl Cutoffs {
    /// The cutoffs of a purge at `now` under `settings`.
    pub fn at(now: DateTime<Utc>, settings: &Privacy) -> Self {
        Self {
            raw_before: now - settings.raw_payloads,
            texts_before: now - settings.message_texts,
        }
    }
}

/// Rows each purge transaction touches per table at most, so sends and the webhook wait for
/// one short transaction, never for the whole purge.
pub const PURGE_BATCH: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_out_hash_is_the_numbers_sha256() {
        assert_eq!(
            phone_sha256("+919876543210"),
            phone_sha256(" +919876543210 ")
        );
        assert_eq!(phone_sha256("+919876543210").len(), 64);
        assert_ne!(phone_sha256("+919876543210"), phone_sha256("+919876543211"));
    }

    #[test]
    fn needles_cover_numbers_as_digits_and_names_in_hl7_order() {
        let n = needles(&Identity {
            name: "Priya  Patil".into(),
            phone: "+919876543210".into(),
            contact_name: Some("Al".into()),
            contact_phone: None,
        });
        for want in [
            "+919876543210",
            "919876543210",
            "Priya Patil",
            "Patil^Priya",
        ] {
            assert!(n.contains(&want.to_string()), "{want} in {n:?}");
        }
        assert!(!n.contains(&"Al".to_string()), "too short: {n:?}");
        assert!(n.windows(2).all(|w| w[0].len() >= w[1].len()), "{n:?}");
    }

    #[test]
    fn numbers_inside_a_text_are_found_whole() {
        assert_eq!(
            numbers_in("+919876543210 -> +91 12, call +14155550123."),
            ["+919876543210", "+14155550123"]
        );
        assert!(numbers_in("no numbers + here +1234").is_empty());
        assert_eq!(
            number_needles(&["+919876543210".into()]),
            ["+919876543210", "919876543210"]
        );
    }

    #[test]
    fn cutoffs_subtract_the_configured_ages() {
        let now = DateTime::from_timestamp(2_000_000_000, 0).expect("t");
        let c = Cutoffs::at(now, &Privacy::default());
        assert_eq!(now - c.raw_before, chrono::Duration::days(30));
        assert_eq!(now - c.texts_before, chrono::Duration::days(180));
    }
}
