//! The `[booking]` section: how an opening a patient took gets booked (per clinic `confirm`:
//! staff, the FHIR write-back, or "call us"), how long a hold lasts, and the answers patients
//! get to an offer, per language, with English defaults.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Deserialize;

/// How a held opening becomes a booked appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Staff book it in the practice system (a follow-up); the next import confirms the move.
    Staff,
    /// The FHIR feed's write-back books it.
    Fhir,
    /// The patient is asked to call the clinic; staff get the follow-up too.
    Call,
}

impl Confirm {
    /// The word in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Fhir => "fhir",
            Self::Call => "call",
        }
    }
}

/// The answers to offers in one language. Placeholders: `{first_name}`, `{date}`, `{time}`,
/// `{provider}`, `{clinic}`, `{phone}`, `{hold_until}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTexts {
    /// The patient took it; staff will book it.
    pub held: String,
    /// The patient took it; they must call to book it (`confirm = "call"`).
    pub call: String,
    /// Someone else took it first.
    pub filled: String,
    /// The offer had run out.
    pub expired: String,
    /// They said no (sent only with the clinic's `acks` on).
    pub declined: String,
    /// The move landed: the new time.
    pub moved: String,
    /// The heading of the list of openings sent to a patient who asked to reschedule.
    pub choose: String,
    /// As `choose`, after the time they picked was taken.
    pub choose_again: String,
    /// The "none of these" row of the list.
    pub none_of_these: String,
}

impl OfferTexts {
    /// The English defaults.
    pub fn english() -> Self {
        Self {
            held: "Thank you, {first_name}. {date} at {time}{provider} is held for you until {hold_until}; the clinic will confirm the booking. Your original appointment stays as it is until then.".into(),
            call: "Thank you, {first_name}. To take {date} at {time}{provider}, please call {clinic} on {phone}. Your original appointment stays as it is until then.".into(),
            filled: "Sorry, {first_name}: this slot has just been filled. Your original appointment stays as it is.".into(),
            expired: "Sorry, {first_name}: this offer has expired. Your original appointment stays as it is.".into(),
            declined: "Thank you, {first_name}. We will keep your place on the waiting list.".into(),
            moved: "{first_name}, your appointment at {clinic} is now on {date} at {time}{provider}.".into(),
            choose: "{first_name}, these times are free at {clinic}. Choose one, or \"none of these\" and we will call you.".into(),
            choose_again: "Sorry, {first_name}: that time has just been taken. These times are still free:".into(),
            none_of_these: "None of these".into(),
        }
    }
}

/// `[booking]` as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// The clinics' default mode.
    pub confirm: Confirm,
    /// Per-clinic modes (`[booking.clinics.KEY] confirm`).
    pub clinics: BTreeMap<String, Confirm>,
    /// How long an accepted opening stays held for the booking.
    pub hold: Duration,
    /// An opening is taken or offered by reply only if it starts at least this long after.
    pub lead: Duration,
    /// The answers by language code; always has `en`.
    pub texts: BTreeMap<String, OfferTexts>,
}

impl Default for Booking {
    /// What a file without `[booking]` means.
    fn default() -> Self {
        Self {
            confirm: Confirm::Staff,
            clinics: BTreeMap::new(),
            hold: Duration::hours(2),
            lead: Duration::hours(3),
            texts: BTreeMap::from([("en".to_string(), OfferTexts::english())]),
        }
    }
}

impl Booking {
    /// The mode of clinic `key`.
    pub fn confirm_for(&self, key: &str) -> Confirm {
        self.clinics.get(key).copied().unwrap_or(self.confirm)
    }

    /// The texts for `language` (its base language, the clinic's, then English).
    pub fn texts_for(&self, language: &str, clinic_default: &str) -> &OfferTexts {
        let base = language.split('_').next().unwrap_or(language);
        [language, base, clinic_default, "en"]
            .into_iter()
            .find_map(|l| self.texts.get(l))
            .unwrap_or_else(|| &self.texts["en"])
    }
}

/// `[booking]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBookingSection {
    confirm: Option<String>,
    hold: Option<String>,
    lead: Option<String>,
    #[serde(default)]
    clinics: BTreeMap<String, RawBookingClinic>,
    #[serde(default)]
    texts: BTreeMap<String, RawOfferTexts>,
}

/// `[booking.clinics.KEY]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBookingClinic {
    confirm: String,
}

/// `[booking.texts.LANG]` as written: a missing key keeps the English default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOfferTexts {
    held: Option<String>,
    call: Option<String>,
    filled: Option<String>,
    expired: Option<String>,
    declined: Option<String>,
    moved: Option<String>,
    choose: Option<String>,
    choose_again: Option<String>,
    none_of_these: Option<String>,
}

fn parse_confirm(s: &str) -> Option<Confirm> {
    match s {
        "staff" => Some(Confirm::Staff),
        "fhir" => Some(Confirm::Fhir),
        "call" => Some(Confirm::Call),
        _ => None,
    }
}

/// What the section's checks need to know of the rest of the file.
pub(super) struct Context<'a> {
    /// Configured clinic keys, with whether the clinic has a phone number.
    pub clinics: BTreeMap<&'a str, bool>,
    /// Clinics a FHIR feed with `write_back` serves.
    pub fhir_write_back: Vec<&'a str>,
}

/// Checks the section; every problem goes to `push` with its key.
pub(super) fn validate(
    raw: Option<RawBookingSection>,
    cx: &Context<'_>,
    push: &mut impl FnMut(String, String),
) -> Booking {
    let mut out = Booking::default();
    let Some(raw) = raw else {
        check_modes(&out, cx, push);
        return out;
    };
    let mode = |key: String, word: &str, push: &mut dyn FnMut(String, String)| {
        parse_confirm(word).or_else(|| {
            push(
                key,
                format!("{word:?} is not a booking mode; write \"staff\", \"fhir\" or \"call\""),
            );
            None
        })
    };
    if let Some(c) = raw.confirm.as_deref() {
        out.confirm = mode("booking.confirm".into(), c, push).unwrap_or(Confirm::Staff);
    }
    for (key, c) in &raw.clinics {
        let k = format!("booking.clinics.{key}.confirm");
        if !cx.clinics.contains_key(key.as_str()) {
            push(
                format!("booking.clinics.{key}"),
                format!("names no clinic: add [clinics.{key}] or remove this section"),
            );
        }
        if let Some(m) = mode(k, &c.confirm, push) {
            out.clinics.insert(key.clone(), m);
        }
    }
    for (name, raw_d, slot, (min, max)) in [
        ("hold", &raw.hold, &mut out.hold, (5, 48 * 60)),
        ("lead", &raw.lead, &mut out.lead, (0, 7 * 24 * 60)),
    ] {
        if let Some(text) = raw_d {
            match super::parse_duration(text) {
                Ok(d) if d.num_minutes() >= min && d.num_minutes() <= max => *slot = d,
                Ok(_) => push(
                    format!("booking.{name}"),
                    format!(
                        "{text:?} is out of range: from {min} minutes to {} hours",
                        max / 60
                    ),
                ),
                Err(e) => push(format!("booking.{name}"), e),
            }
        }
    }
    for (lang, t) in raw.texts {
        let Some(code) = crate::model::normalize_language(&lang) else {
            push(
                format!("booking.texts.{lang}"),
                "is not a language code (en, hi, pt_BR)".into(),
            );
            continue;
        };
        let mut texts = OfferTexts::english();
        for (field, given, slot) in [
            ("held", t.held, &mut texts.held),
            ("call", t.call, &mut texts.call),
            ("filled", t.filled, &mut texts.filled),
            ("expired", t.expired, &mut texts.expired),
            ("declined", t.declined, &mut texts.declined),
            ("moved", t.moved, &mut texts.moved),
            ("choose", t.choose, &mut texts.choose),
            ("choose_again", t.choose_again, &mut texts.choose_again),
            ("none_of_these", t.none_of_these, &mut texts.none_of_these),
        ] {
            if let Some(g) = given {
                let limit = if field == "none_of_these" { 24 } else { 1000 };
                if g.trim().is_empty() || g.chars().count() > limit {
                    push(
                        format!("booking.texts.{lang}.{field}"),
                        format!("must be 1 to {limit} characters"),
                    );
                }
                *slot = g;
            }
        }
        out.texts.insert(code, texts);
    }
    check_modes(&out, cx, push);
    out
}

/// `fhir` only where a FHIR feed writes back; `call` only where the clinic has a phone.
fn check_modes(out: &Booking, cx: &Context<'_>, push: &mut impl FnMut(String, String)) {
    for (&clinic, &has_phone) in &cx.clinics {
        let (key, mode) = match out.clinics.get(clinic) {
            Some(m) => (format!("booking.clinics.{clinic}.confirm"), *m),
            None => ("booking.confirm".to_string(), out.confirm),
        };
        match mode {
            Confirm::Fhir if !cx.fhir_write_back.contains(&clinic) => push(
                key,
                format!(
                    "\"fhir\" needs a FHIR feed with write_back = true serving clinic {clinic}; use \"staff\" for it"
                ),
            ),
            Confirm::Call if !has_phone => push(
                key,
                format!("\"call\" needs the clinic's phone: set clinics.{clinic}.phone"),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, fhir: &[&'static str]) -> (Booking, Vec<(String, String)>) {
        let raw: RawBookingSection = toml::from_str(text).expect("parse");
        let cx = Context {
            clinics: BTreeMap::from([("mumbai", true), ("pune", false)]),
            fhir_write_back: fhir.to_vec(),
        };
        let mut problems = Vec::new();
        let b = validate(Some(raw), &cx, &mut |k, m| problems.push((k, m)));
        (b, problems)
    }

    #[test]
    fn modes_per_clinic_and_fhir_only_with_a_write_back_feed() {
        let (b, problems) = check("[clinics.mumbai]\nconfirm = \"call\"\n", &[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(b.confirm_for("mumbai"), Confirm::Call);
        assert_eq!(b.confirm_for("pune"), Confirm::Staff);
        let (_, problems) = check("[clinics.pune]\nconfirm = \"fhir\"\n", &[]);
        assert_eq!(
            problems[0].0, "booking.clinics.pune.confirm",
            "{problems:?}"
        );
        assert!(problems[0].1.contains("write_back"));
        let (_, problems) = check("[clinics.pune]\nconfirm = \"fhir\"\n", &["pune"]);
        assert!(problems.is_empty(), "{problems:?}");
        let (_, problems) = check("[clinics.pune]\nconfirm = \"call\"\n", &[]);
        assert!(problems[0].1.contains("clinics.pune.phone"), "{problems:?}");
        let (_, problems) = check("confirm = \"auto\"\nhold = \"1m\"\n", &[]);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["booking.confirm", "booking.hold"]);
    }

    #[test]
    fn texts_fall_back_to_english_per_key() {
        let (b, problems) = check("[texts.hi]\nfilled = \"माफ़ कीजिए\"\n", &[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(b.texts_for("hi", "en").filled, "माफ़ कीजिए");
        assert_eq!(
            b.texts_for("hi", "en").expired,
            OfferTexts::english().expired
        );
        assert_eq!(b.texts_for("mr", "en").filled, OfferTexts::english().filled);
    }
}
