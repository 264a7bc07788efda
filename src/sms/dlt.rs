//! India's DLT templates: the registered text with `{#var#}` slots, filled and checked before sending.
//!
//! reminderd's SMS texts name their placeholders (`{patient_name}`, `{date}`); the template an
//! Indian clinic registers on its operator's DLT portal is that same text with each placeholder
//! written `{#var#}`. Before anything is sent the text must match the registered template
//! (only runs of whitespace may differ: DLT scrubbing tolerates spacing) and every variable
//! must fit the per-variable cap, or the operator silently drops the message. Pure: no I/O.

/// How a variable slot is written in a registered DLT template.
pub const VAR: &str = "{#var#}";

/// The cap reminderd uses unless configured otherwise: MSG91 allows 40 characters a variable,
/// Simple.org trims to 30 to be safe, and so do we.
pub const DEFAULT_CAP: usize = 30;

/// Placeholders holding names: cut to the cap when too long (a shortened name still reads).
pub const TRIMMABLE: [&str; 5] = [
    "first_name",
    "patient_name",
    "contact_name",
    "clinic",
    "provider",
];

/// Placeholders never shortened: a cut date, time or phone number would be wrong, not short.
/// A cut preparation note would tell the patient half of what to do.
pub const FIXED: [&str; 4] = ["date", "time", "clinic_phone", "prep_notes"];

/// Why a text cannot go out as a DLT message; each message is written for the clinic's
/// administrator, who fixes it in `reminders.toml` or on the DLT portal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DltError {
    /// The text names a placeholder reminderd does not fill.
    #[error(
        "the SMS text has an unknown placeholder {{{name}}}; the placeholders an SMS can use are {{first_name}}, {{patient_name}}, {{contact_name}}, {{clinic}}, {{date}}, {{time}}, {{provider}}, {{prep_notes}} and {{clinic_phone}}"
    )]
    UnknownPlaceholder {
        /// What was between the braces.
        name: String,
    },
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error(
        "the SMS text has a lone \"{brace}\" at character {position}; placeholders are written with both braces, like {{patient_name}}"
    )]
    Unbalanced {
        /// The brace.
        brace: char,
        /// Where, counting characters from 1.
        position: usize,
    },
    /// The text is not the registered template.
    #[error(
        "the SMS text differs from the DLT template registered for it at character {position}: the text has \"{ours}\" where the registered template has \"{registered}\"; the text must match the registered template exactly, with {{#var#}} where the text has a placeholder, or the operator drops every message"
    )]
    Mismatch {
        /// Where, counting characters of the registered template from 1.
        position: usize,
        /// The text around that point (as written, with its placeholders).
        ours: String,
        /// The registered template around that point.
        registered: String,
    },
    /// A date, time or phone number longer than a DLT variable may be.
    #[error(
        "{{{placeholder}}} is {len} characters long, but a DLT variable may have at most {cap}; a date, time or phone number is never shortened, so choose a shorter format for it"
    )]
    TooLong {
        /// The placeholder.
        placeholder: String,
        /// Its length in characters.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// No value for a placeholder the text uses.
    #[error("there is no value for {{{placeholder}}} in this SMS")]
    Missing {
        /// The placeholder.
        placeholder: String,
    },
}

/// Whether `name` is a placeholder reminderd fills.
pub fn is_known(name: &str) -> bool {
    TRIMMABLE.contains(&name) || FIXED.contains(&name)
}

/// Whether a too-long value of `name` is shortened (names) rather than refused (dates, times,
/// phone numbers).
pub fn is_trimmable(name: &str) -> bool {
    TRIMMABLE.contains(&name)
}

/// A piece of a text: literal characters or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text, with the character index (from 0) where it starts.
    Literal(String, usize),
    /// A placeholder's name, with the character index of its `{`.
    Slot(String, usize),
}

/// Splits a text into literals and known placeholders.
fn pieces(text: &str) -> Result<Vec<Piece>, DltError> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut literal_start = 0;
    let mut chars = text.chars().enumerate();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, n) in chars.by_ref() {
                    if n == '}' {
                        closed = true;
                        break;
                    }
                    if n == '{' {
                        break;
                    }
                    name.push(n);
                }
                if !closed {
                    return Err(DltError::Unbalanced {
                        brace: '{',
                        position: i + 1,
                    });
                }
                let name = name.trim().to_string();
                if !is_known(&name) {
                    return Err(DltError::UnknownPlaceholder { name });
                }
                if !literal.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut literal), literal_start));
                }
                out.push(Piece::Slot(name, i));
            }
            '}' => {
                return Err(DltError::Unbalanced {
                    brace: '}',
                    position: i + 1,
                });
            }
            _ => {
                if literal.is_empty() {
                    literal_start = i;
                }
                literal.push(c);
            }
        }
    }
    if !literal.is_empty() {
        out.push(Piece::Literal(literal, literal_start));
    }
    Ok(out)
}

/// The placeholders of `text` in order, one per occurrence (a DLT template has one `{#var#}`
/// for each, so a name used twice is two variables).
pub fn placeholders(text: &str) -> Result<Vec<String>, DltError> {
    Ok(pieces(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Slot(name, _) => Some(name),
            Piece::Literal(..) => None,
        })
        .collect())
}

/// The text as it must be registered on the DLT portal: each placeholder written `{#var#}`.
pub fn registered_form(text: &str) -> Result<String, DltError> {
    Ok(registered_with_origin(text)?.0.into_iter().collect())
}

/// The registered form as characters, each with the index of the character of `text` it
/// comes from (a `{#var#}` points at its placeholder's `{`), so a mismatch can be shown in the
/// administrator's own text.
fn registered_with_origin(text: &str) -> Result<(Vec<char>, Vec<usize>), DltError> {
    let mut chars = Vec::new();
    let mut origin = Vec::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Literal(s, start) => {
                for (k, c) in s.chars().enumerate() {
                    chars.push(c);
                    origin.push(start + k);
                }
            }
            Piece::Slot(_, at) => {
                for c in VAR.chars() {
                    chars.push(c);
                    origin.push(at);
                }
            }
        }
    }
    Ok((chars, origin))
}

/// Checks that `text` (with named placeholders) is the registered DLT template `registered`
/// (with `{#var#}` slots). Only whitespace may differ, and only in amount: a run of spaces,
/// tabs or line breaks matches any other run, and leading and trailing whitespace is ignored;
/// whitespace where the other has none is a mismatch.
pub fn matches(text: &str, registered: &str) -> Result<(), DltError> {
    let (ours, origin) = registered_with_origin(text)?;
    let theirs: Vec<char> = registered.chars().collect();
    let text_chars: Vec<char> = text.chars().collect();
    let skip_ws = |chars: &[char], mut at: usize| {
        while chars.get(at).is_some_and(|c| c.is_whitespace()) {
            at += 1;
        }
        at
    };
    let (mut i, mut j) = (skip_ws(&ours, 0), skip_ws(&theirs, 0));
    loop {
        let at_end = |chars: &[char], at: usize| skip_ws(chars, at) >= chars.len();
        match (ours.get(i), theirs.get(j)) {
            (None, None) => return Ok(()),
            (Some(ours_c), Some(theirs_c))
                if ours_c.is_whitespace() && theirs_c.is_whitespace() =>
            {
                i = skip_ws(&ours, i);
                j = skip_ws(&theirs, j);
            }
            (Some(ours_c), Some(theirs_c)) if ours_c == theirs_c => {
                i += 1;
                j += 1;
            }
            // Trailing whitespace on one side only.
            _ if at_end(&ours, i) && at_end(&theirs, j) => return Ok(()),
            _ => {
                let at_text = origin.get(i).copied().unwrap_or(text_chars.len());
                return Err(DltError::Mismatch {
                    position: j + 1,
                    ours: around(&text_chars, at_text),
                    registered: around(&theirs, j),
                });
            }
        }
    }
}

/// A short excerpt of `s` around index `at`, with `…` where it was cut.
fn around(s: &[char], at: usize) -> String {
    const BEFORE: usize = 16;
    const AFTER: usize = 24;
    if at >= s.len() {
        let start = s.len().saturating_sub(BEFORE);
        let tail: String = s[start..].iter().collect();
        let lead = if start > 0 { "…" } else { "" };
        return format!("{lead}{tail} (the end)");
    }
    let start = at.saturating_sub(BEFORE);
    let end = (at + AFTER).min(s.len());
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(&s[start..end]);
    if end < s.len() {
        out.push('…');
    }
    out
}

/// A text filled in for a DLT provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    /// The whole text as the patient reads it.
    pub text: String,
    /// The variables in slot order: what the provider is sent with the template id.
    pub variables: Vec<String>,
}

/// Fills `text`'s placeholders with `values` (called with a placeholder's name), each value at
/// most `cap` characters (Unicode scalar values, as DLT counts them, not bytes).
///
/// Names (see [`TRIMMABLE`]) have their whitespace runs made single spaces, then are cut to
/// the cap: at the last space when that keeps at least half the cap (so "Sunrise
/// Multispeciality Hospital" becomes "Sunrise Multispeciality", not "… Hospi"), otherwise at
/// the cap, never inside a combining mark or after a virama. No ellipsis is added: it would
/// spend one of the cap's characters and DLT counts it. Dates, times and phone numbers
/// ([`FIXED`]) are never changed: one over the cap is [`DltError::TooLong`].
pub fn fill(
    text: &str,
    values: &impl Fn(&str) -> Option<String>,
    cap: usize,
) -> Result<Filled, DltError> {
    let mut out = String::new();
    let mut variables = Vec::new();
    for piece in pieces(text)? {
        match piece {
            Piece::Literal(s, _) => out.push_str(&s),
            Piece::Slot(name, _) => {
                let raw = values(&name).ok_or_else(|| DltError::Missing {
                    placeholder: name.clone(),
                })?;
                let value = if is_trimmable(&name) {
                    trim_name(&raw, cap)
                } else {
                    let len = raw.chars().count();
                    if len > cap {
                        return Err(DltError::TooLong {
                            placeholder: name,
                            len,
                            cap,
                        });
                    }
                    raw
                };
                out.push_str(&value);
                variables.push(value);
            }
        }
    }
    Ok(Filled {
        text: out,
        variables,
    })
}

/// A name with whitespace runs made single spaces and cut to at most `cap` characters.
fn trim_name(raw: &str, cap: usize) -> String {
    let chars: Vec<char> = raw
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    if chars.len() <= cap {
        return chars.into_iter().collect();
    }
    // Mid-word: prefer the last space, when that keeps a readable part of the name.
    let at_space = chars[..=cap.min(chars.len() - 1)]
        .iter()
        .rposition(|c| *c == ' ')
        .filter(|&k| k * 2 >= cap && k > 0);
    let mut cut = at_space.unwrap_or(cap);
    // Never leave a vowel sign or other mark without its letter, nor a letter with a
    // dangling virama (half a conjunct).
    while cut > 0 && (is_mark(chars[cut]) || is_joiner(chars[cut - 1])) {
        cut -= 1;
    }
    chars[..cut]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Combining marks of the scripts reminderd's Indian clinics write in (Devanagari and its
/// neighbours) and the general combining ranges: they belong to the letter before them.
fn is_mark(c: char) -> bool {
    let u = u32::from(c);
    matches!(u,
        0x0300..=0x036F
        | 0x0900..=0x0903 | 0x093A..=0x093C | 0x093E..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963
        | 0x0981..=0x0983 | 0x09BC | 0x09BE..=0x09CD | 0x09D7 | 0x09E2..=0x09E3
        | 0x0A01..=0x0A03 | 0x0A3C..=0x0A51 | 0x0A70..=0x0A71 | 0x0A75
        | 0x0A81..=0x0A83 | 0x0ABC | 0x0ABE..=0x0ACD | 0x0AE2..=0x0AE3
        | 0x0B01..=0x0B03 | 0x0B3C | 0x0B3E..=0x0B57 | 0x0B62..=0x0B63
        | 0x0B82 | 0x0BBE..=0x0BCD | 0x0BD7
        | 0x0C00..=0x0C04 | 0x0C3C | 0x0C3E..=0x0C56 | 0x0C62..=0x0C63
        | 0x0C81..=0x0C83 | 0x0CBC | 0x0CBE..=0x0CD6 | 0x0CE2..=0x0CE3
        | 0x0D00..=0x0D03 | 0x0D3B..=0x0D3C | 0x0D3E..=0x0D57 | 0x0D62..=0x0D63
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F
        | 0x200C..=0x200D
    )
}

/// A virama or zero-width joiner: the letter after it is half of a conjunct with the one
/// before, so a cut must not fall right after it.
fn is_joiner(c: char) -> bool {
    matches!(
        u32::from(c),
        0x094D | 0x09CD | 0x0A4D | 0x0ACD | 0x0B4D | 0x0BCD | 0x0C4D | 0x0CCD | 0x0D4D | 0x200D
    )
}

/// For `check-config`: whether every value a fixed placeholder (`date`, `time`,
/// `clinic_phone`) can take fits a DLT variable of `cap` characters.
///
/// Dates and times are formatted with the clinic's strftime formats, so their length depends
/// on the day: pass the longest renderings (for a date, a day in the month with the longest
/// name on the weekday with the longest name, in every language the clinic sends; for a time,
/// a two-digit hour with its AM/PM marker), or the clinic's phone number as written. A name
/// placeholder is always fine (it is trimmed); an unknown one is an error.
pub fn check_fixed(
    placeholder: &str,
    sample_values: &[String],
    cap: usize,
) -> Result<(), DltError> {
    if !is_known(placeholder) {
        return Err(DltError::UnknownPlaceholder {
            name: placeholder.to_string(),
        });
    }
    if is_trimmable(placeholder) {
        return Ok(());
    }
    match sample_values.iter().map(|v| v.chars().count()).max() {
        Some(len) if len > cap => Err(DltError::TooLong {
            placeholder: placeholder.to_string(),
            len,
            cap,
        }),
        _ => Ok(()),
    }
}

/// The text a DLT template becomes with `variables` in its `{#var#}` slots, in order (what the
/// operator delivers); slots without a variable stay `{#var#}`.
pub fn render(registered: &str, variables: &[String]) -> String {
    let mut out = String::with_capacity(registered.len());
    let mut rest = registered;
    let mut vars = variables.iter();
    while let Some(at) = rest.find(VAR) {
        out.push_str(&rest[..at]);
        match vars.next() {
            Some(v) => out.push_str(v),
            None => out.push_str(VAR),
        }
        rest = &rest[at + VAR.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Dear {patient_name}, your appointment at {clinic} is on {date} at {time}. To change it call {clinic_phone}.";
    const REGISTERED: &str = "Dear {#var#}, your appointment at {#var#} is on {#var#} at {#var#}. To change it call {#var#}.";

    fn values(name: &str) -> Option<String> {
        Some(
            match name {
                "patient_name" => "Aarav Sharma",
                "clinic" => "Sunrise Clinic",
                "date" => "Tue 14 Jan",
                "time" => "10:30 AM",
                "clinic_phone" => "+91 22 4000 1234",
                _ => return None,
            }
            .to_string(),
        )
    }

    #[test]
    fn placeholders_are_listed_in_order_and_registered_as_var() {
        assert_eq!(
            placeholders(TEXT).expect("no error"),
            ["patient_name", "clinic", "date", "time", "clinic_phone"]
        );
        assert_eq!(registered_form(TEXT).expect("no error"), REGISTERED);
        assert_eq!(
            placeholders("no slots").expect("no error"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_and_unbalanced_placeholders_are_named() {
        let e = placeholders("Hi {name}").expect_err("an error");
        assert_eq!(
            e,
            DltError::UnknownPlaceholder {
                name: "name".into()
            }
        );
        assert!(e.to_string().contains("{name}"), "{e}");
        let e = placeholders("Hi {first_name").expect_err("an error");
        assert_eq!(
            e,
            DltError::Unbalanced {
                brace: '{',
                position: 4
            }
        );
        assert!(e.to_string().contains("character 4"), "{e}");
        assert!(matches!(
            placeholders("a } b"),
            Err(DltError::Unbalanced {
                brace: '}',
                position: 3
            })
        ));
        assert!(matches!(
            placeholders("{#var#}"),
            Err(DltError::UnknownPlaceholder { .. })
        ));
    }

    #[test]
    fn matching_tolerates_only_amounts_of_whitespace() {
        matches(TEXT, REGISTERED).expect("no error");
        let spaced = REGISTERED
            .replace(", your", ",   your\n")
            .replace("Dear", "  Dear");
        matches(TEXT, &format!("{spaced}  ")).expect("no error");
        // Whitespace where the template has none is a difference.
        assert!(matches(TEXT, &REGISTERED.replace("Dear {", "Dear{")).is_err());
    }

    #[test]
    fn a_mismatch_says_where_in_words() {
        let registered = REGISTERED.replace("To change it call", "To change it, call");
        let e = matches(TEXT, &registered).expect_err("an error");
        let DltError::Mismatch {
            position,
            ours,
            registered: theirs,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*position, registered.find(", call").expect("no error") + 1);
        assert!(ours.contains("change it call {clinic_phone}"), "{ours}");
        assert!(theirs.contains("change it, call"), "{theirs}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("at character {position}")), "{msg}");
        // A text that stops early.
        let e = matches("Dear {patient_name}", "Dear {#var#}, see you").expect_err("an error");
        assert!(e.to_string().contains("(the end)"), "{e}");
        // A slot where the template has words.
        assert!(matches("Dear {patient_name}", "Dear Sir").is_err());
    }

    #[test]
    fn fill_gives_the_text_and_the_variables_in_slot_order() {
        let f = fill(TEXT, &values, DEFAULT_CAP).expect("no error");
        assert_eq!(
            f.text,
            "Dear Aarav Sharma, your appointment at Sunrise Clinic is on Tue 14 Jan at 10:30 AM. To change it call +91 22 4000 1234."
        );
        assert_eq!(f.variables.len(), 5);
        assert_eq!(render(REGISTERED, &f.variables), f.text);
    }

    #[test]
    fn long_names_are_cut_at_a_word_or_the_cap_without_ellipsis() {
        let long = |name: &str| {
            let n = name.to_string();
            move |p: &str| match p {
                "clinic" => Some(n.clone()),
                _ => values(p),
            }
        };
        let f =
            fill(TEXT, &long("Sunrise Multispeciality Hospital, Andheri"), 30).expect("no error");
        assert_eq!(f.variables[1], "Sunrise Multispeciality");
        let f = fill(TEXT, &long("Suryodayamultispecialityhospitalandheri"), 30).expect("no error");
        assert_eq!(f.variables[1], "Suryodayamultispecialityhospit");
        assert_eq!(f.variables[1].chars().count(), 30);
        let f = fill(TEXT, &long("  Dr.   Mehta\t Clinic "), 30).expect("no error");
        assert_eq!(f.variables[1], "Dr. Mehta Clinic");
        // Characters, not bytes: 30 Devanagari letters fit although they take 90 bytes.
        let hindi = "क".repeat(30);
        let f = fill(TEXT, &long(&hindi), 30).expect("no error");
        assert_eq!(f.variables[1], hindi);
        // A cut never leaves a vowel sign behind nor ends in a virama.
        let f = fill(TEXT, &long(&format!("{}कि", "क".repeat(29))), 30).expect("no error");
        assert_eq!(f.variables[1], "क".repeat(29));
        let f = fill(TEXT, &long(&format!("{}क्ष", "क".repeat(28))), 30).expect("no error");
        assert_eq!(f.variables[1], "क".repeat(28));
    }

    #[test]
    fn dates_times_and_phones_are_never_trimmed() {
        let long_date = |p: &str| match p {
            "date" => Some("Wednesday, 24 September 2025 (IST)".to_string()),
            _ => values(p),
        };
        let e = fill(TEXT, &long_date, 30).expect_err("an error");
        assert_eq!(
            e,
            DltError::TooLong {
                placeholder: "date".into(),
                len: 34,
                cap: 30
            }
        );
        assert!(e.to_string().contains("{date} is 34 characters"), "{e}");
        let missing = |p: &str| if p == "time" { None } else { values(p) };
        let e = fill(TEXT, &missing, 30).expect_err("an error");
        assert_eq!(e.to_string(), "there is no value for {time} in this SMS");
    }

    #[test]
    fn check_fixed_looks_at_the_longest_sample() {
        let samples = vec![
            "Wed 24 Sep".to_string(),
            "Wednesday, 24 September 2025".into(),
        ];
        check_fixed("date", &samples, 30).expect("no error");
        assert!(matches!(
            check_fixed("date", &samples, 20),
            Err(DltError::TooLong {
                len: 28,
                cap: 20,
                ..
            })
        ));
        check_fixed("patient_name", &["x".repeat(90)], 30).expect("no error");
        assert!(check_fixed("weekday", &samples, 30).is_err());
        check_fixed("time", &[], 30).expect("no error");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn placeholder() -> impl Strategy<Value = String> {
            prop::sample::select(
                TRIMMABLE
                    .iter()
                    .chain(FIXED.iter())
                    .map(|s| (*s).to_string())
                    .collect::<Vec<_>>(),
            )
        }

        /// Literal text without braces, with the characters that break things: marks,
        /// viramas, joiners, emoji, line breaks.
        fn literal() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9 ,.:\\n\\t#कि्‍ि😀é\u{0301}]{0,12}"
        }

        fn text() -> impl Strategy<Value = String> {
            prop::collection::vec((literal(), prop::option::of(placeholder())), 0..6).prop_map(
                |parts| {
                    parts
                        .into_iter()
                        .map(|(l, p)| match p {
                            Some(p) => format!("{l}{{{p}}}"),
                            None => l,
                        })
                        .collect()
                },
            )
        }

        proptest! {
            #[test]
            fn fill_never_panics_and_keeps_every_variable_within_the_cap(
                text in text(),
                vals in prop::collection::vec("[ a-zA-Z0-9कि्‍😀\u{0301}\\t]{0,50}", 9),
                cap in 0usize..40,
            ) {
                let all: Vec<&str> = TRIMMABLE.iter().chain(FIXED.iter()).copied().collect();
                let lookup = |p: &str| all.iter().position(|n| *n == p).map(|k| vals[k].clone());
                match fill(&text, &lookup, cap) {
                    Ok(f) => {
                        for v in &f.variables {
                            prop_assert!(v.chars().count() <= cap, "{v:?} over {cap}");
                        }
                        let registered = registered_form(&text).expect("no error");
                        prop_assert_eq!(render(&registered, &f.variables), f.text);
                        prop_assert!(matches(&text, &registered).is_ok());
                    }
                    Err(DltError::TooLong { placeholder, len, cap: c }) => {
                        prop_assert!(!is_trimmable(&placeholder));
                        prop_assert!(len > c);
                    }
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }

            #[test]
            fn arbitrary_input_never_panics(a in "\\PC{0,60}", b in "\\PC{0,60}", cap in 0usize..40) {
                let _ = placeholders(&a);
                let _ = registered_form(&a);
                let _ = matches(&a, &b);
                let _ = fill(&a, &|_: &str| Some(b.clone()), cap);
                let _ = check_fixed(&a, std::slice::from_ref(&b), cap);
                let _ = render(&a, std::slice::from_ref(&b));
            }
        }
    }
}
