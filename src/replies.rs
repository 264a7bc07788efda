//! Reply understanding: what a patient's tap or typed word means, and which message it
//! answers. Pure: no I/O, no clock. The store applies the result.

use std::collections::HashMap;

pub use crate::model::Intent;

mod score;
pub use score::{
    FeedbackRequest, SCORE, SCORE_WINDOW_DAYS, Scored, parse_score, score_of, score_reply,
    typed_score,
};

/// An inbound message, as much of it as matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A template quick-reply tap (`button.payload`) or an interactive reply (`button_reply.id`).
    Button {
        /// The payload we set at send time, e.g. `confirm:42`.
        payload: &'a str,
    },
    /// Typed text.
    Text {
        /// What they wrote.
        body: &'a str,
    },
    /// A file: a photo, voice note, video, document or sticker, with what was written with it.
    Media {
        /// The API's message type (`image`, `audio`, `video`, `document`, `sticker`).
        kind: &'a str,
        /// The caption written with a photo, video or document.
        caption: Option<&'a str>,
        /// A voice note recorded in WhatsApp.
        voice: bool,
    },
    /// Anything else (reaction, location, contacts, unsupported...).
    Other {
        /// The API's message type.
        kind: &'a str,
    },
}

/// What a message means, before looking at the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The request.
    pub intent: Intent,
    /// The outbox row a button names, if it is one of ours.
    pub outbox_id: Option<i64>,
    /// Why a person must look at it, if they must.
    pub needs_staff: Option<String>,
}

/// Reads a message. Button payloads name their message exactly; typed words are matched
/// after [`normalize`] against the configured words of every language.
pub fn read<S: std::hash::BuildHasher>(
    message: &Message<'_>,
    words: &HashMap<String, Intent, S>,
) -> Reading {
    match message {
        Message::Button { payload } if parse_score(payload).is_some() => Reading {
            intent: Intent::Feedback,
            outbox_id: parse_score(payload).and_then(|(_, id)| id),
            needs_staff: None,
        },
        Message::Button { payload } => match parse_payload(payload) {
            Some((intent, id)) => Reading {
                intent,
                outbox_id: Some(id),
                needs_staff: None,
            },
            // A button of a template sent by someone else, or a payload we no longer know:
            // fall back to reading it as words (the payload is often the button's label).
            None => read(&Message::Text { body: payload }, words),
        },
        Message::Text { body } => {
            let key = normalize(body);
            match words.get(&key) {
                Some(intent) => Reading {
                    intent: *intent,
                    outbox_id: None,
                    needs_staff: None,
                },
                None => Reading {
                    intent: Intent::Unknown,
                    outbox_id: None,
                    needs_staff: Some(
                        "the patient wrote something reminderd does not understand".into(),
                    ),
                },
            }
        }
        Message::Media {
            kind,
            caption,
            voice,
        } => read_media(kind, *caption, *voice, words),
        Message::Other { kind } => {
            // Reactions and stickers carry no request; media may (a photo of a referral).
            let staff = !matches!(*kind, "reaction" | "sticker" | "system" | "unsupported");
            Reading {
                intent: Intent::None,
                outbox_id: None,
                needs_staff: staff.then(|| format!("the patient sent a message of type {kind}")),
            }
        }
    }
}

/// A file's reading. Its caption is read as typed words: a photo captioned "yes" confirms like
/// a typed "yes" (the patient answered in words; the file stays with the reply for staff to
/// open). A file with no caption, or one whose caption is not understood, goes to a person;
/// a sticker carries no request.
fn read_media<S: std::hash::BuildHasher>(
    kind: &str,
    caption: Option<&str>,
    voice: bool,
    words: &HashMap<String, Intent, S>,
) -> Reading {
    if kind == "sticker" {
        return Reading {
            intent: Intent::None,
            outbox_id: None,
            needs_staff: None,
        };
    }
    let what = media_noun(kind, voice);
    match caption.filter(|c| !c.trim().is_empty()) {
        Some(body) => {
            let reading = read(&Message::Text { body }, words);
            match reading.intent {
                Intent::Unknown => Reading {
                    needs_staff: Some(format!("the patient sent {what} with a message to read")),
                    ..reading
                },
                _ => reading,
            }
        }
        None => Reading {
            intent: Intent::None,
            outbox_id: None,
            needs_staff: Some(format!("the patient sent {what}")),
        },
    }
}

/// A file as a receptionist calls it, with its article.
pub fn media_noun(kind: &str, voice: bool) -> &'static str {
    match kind {
        "image" => "a photo",
        "audio" if voice => "a voice note",
        "audio" => "an audio recording",
        "video" => "a video",
        "sticker" => "a sticker",
        _ => "a document",
    }
}

/// `confirm:42` → (Confirm, 42). The actions are the button actions of the config.
pub fn parse_payload(payload: &str) -> Option<(Intent, i64)> {
    let (action, id) = payload.trim().split_once(':')?;
    let intent = match action.to_ascii_lowercase().as_str() {
        "confirm" => Intent::Confirm,
        "cancel" => Intent::Cancel,
        "reschedule" => Intent::Reschedule,
        "stop" => Intent::Stop,
        _ => return None,
    };
    id.trim()
        .parse()
        .ok()
        .filter(|n: &i64| *n > 0)
        .map(|n| (intent, n))
}

/// Folds typed text for matching: trimmed, lower-cased, punctuation, symbols and emoji
/// removed, inner spaces collapsed. Letters of every script are kept with their combining
/// marks (Devanagari vowel signs, accents), so "हाँ!", "Sí." and " YES 👍" match "हाँ",
/// "sí" and "yes".
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || is_combining_mark(c) {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        } else if c.is_whitespace() {
            space = true;
        }
    }
    out
}

/// Combining marks of the scripts our patients write (no Unicode category table in std):
/// general combining diacritics and the Indic vowel signs and modifiers.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F            // combining diacritical marks
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963  // Devanagari
        | 0x0981..=0x0983 | 0x09BC..=0x09D7 // Bengali
        | 0x0A01..=0x0A03 | 0x0A3C..=0x0A51 // Gurmukhi
        | 0x0A81..=0x0A83 | 0x0ABC..=0x0ACD // Gujarati
        | 0x0B82 | 0x0BBE..=0x0BCD          // Tamil
        | 0x0C00..=0x0C04 | 0x0C3E..=0x0C56 // Telugu
        | 0x0C81..=0x0C83 | 0x0CBC..=0x0CD6 // Kannada
        | 0x0D00..=0x0D03 | 0x0D3B..=0x0D4D // Malayalam
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> HashMap<String, Intent> {
        [
            ("yes", Intent::Confirm),
            ("1", Intent::Confirm),
            ("हाँ", Intent::Confirm),
            ("haan", Intent::Confirm),
            ("sí", Intent::Confirm),
            ("रद्द", Intent::Cancel),
            ("2", Intent::Cancel),
            ("stop", Intent::Stop),
            ("start", Intent::Start),
        ]
        .into_iter()
        .map(|(w, i)| (normalize(w), i))
        .collect()
    }

    #[test]
    fn typed_words_in_four_languages_with_noise() {
        let w = words();
        for (text, intent) in [
            ("  YES 👍", Intent::Confirm),
            ("Yes!!", Intent::Confirm),
            ("1.", Intent::Confirm),
            ("हाँ", Intent::Confirm),
            ("हाँ।", Intent::Confirm),
            ("Haan", Intent::Confirm),
            ("Sí.", Intent::Confirm),
            ("रद्द", Intent::Cancel),
            ("STOP", Intent::Stop),
            ("start", Intent::Start),
        ] {
            assert_eq!(
                read(&Message::Text { body: text }, &w).intent,
                intent,
                "{text:?}"
            );
        }
        let r = read(
            &Message::Text {
                body: "can I come at 5?",
            },
            &w,
        );
        assert_eq!(r.intent, Intent::Unknown);
        assert!(r.needs_staff.is_some());
    }

    #[test]
    fn button_payloads_name_their_message() {
        let w = words();
        assert_eq!(
            read(
                &Message::Button {
                    payload: "confirm:42"
                },
                &w
            ),
            Reading {
                intent: Intent::Confirm,
                outbox_id: Some(42),
                needs_staff: None
            }
        );
        assert_eq!(parse_payload("reschedule:7"), Some((Intent::Reschedule, 7)));
        assert_eq!(parse_payload("confirm:-1"), None);
        assert_eq!(parse_payload("confirm:abc"), None);
        // A payload that is only a label is read as words.
        assert_eq!(
            read(&Message::Button { payload: "Stop" }, &w).intent,
            Intent::Stop
        );
    }

    #[test]
    fn media_needs_staff_and_reactions_do_not() {
        let w = words();
        assert!(
            read(&Message::Other { kind: "image" }, &w)
                .needs_staff
                .is_some()
        );
        assert!(
            read(&Message::Other { kind: "reaction" }, &w)
                .needs_staff
                .is_none()
        );
    }

    #[test]
    fn a_caption_is_read_as_words_and_a_bare_file_goes_to_a_person() {
        let w = words();
        let media = |kind, caption, voice| Message::Media {
            kind,
            caption,
            voice,
        };
        // A photo captioned "yes" confirms as a typed "yes" would.
        assert_eq!(
            read(&media("image", Some("Yes 👍"), false), &w),
            Reading {
                intent: Intent::Confirm,
                outbox_id: None,
                needs_staff: None
            }
        );
        assert_eq!(
            read(&media("document", Some("रद्द"), false), &w).intent,
            Intent::Cancel
        );
        // Words that are not understood, or none, need a person, who is told what came.
        let r = read(&media("image", Some("my new referral letter"), false), &w);
        assert_eq!(
            (r.intent, r.needs_staff.as_deref()),
            (
                Intent::Unknown,
                Some("the patient sent a photo with a message to read")
            )
        );
        for (kind, voice, why) in [
            ("audio", true, "the patient sent a voice note"),
            ("audio", false, "the patient sent an audio recording"),
            ("video", false, "the patient sent a video"),
            ("document", false, "the patient sent a document"),
            ("image", false, "the patient sent a photo"),
        ] {
            for caption in [None, Some("  ")] {
                let r = read(&media(kind, caption, voice), &w);
                assert_eq!(
                    (r.intent, r.needs_staff.as_deref()),
                    (Intent::None, Some(why)),
                    "{kind} {caption:?}"
                );
            }
        }
        // A caption of emoji only is words that were not understood.
        assert_eq!(
            read(&media("video", Some("🙏"), false), &w)
                .needs_staff
                .as_deref(),
            Some("the patient sent a video with a message to read")
        );
        // A sticker asks for nothing.
        assert_eq!(
            read(&media("sticker", None, false), &w),
            Reading {
                intent: Intent::None,
                outbox_id: None,
                needs_staff: None
            }
        );
    }

    #[test]
    fn normalization_keeps_marks_and_drops_symbols() {
        assert_eq!(normalize("  हाँ ! "), "हाँ");
        assert_eq!(normalize("Sí,   de acuerdo"), "sí de acuerdo");
        assert_eq!(normalize("🙏🙏"), "");
    }
}

/// An appointment a reply may be about, as the store found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Appointment row id.
    pub appointment_id: i64,
    /// The clinic system's id (for messages).
    pub external_id: String,
    /// Patient row id.
    pub patient_id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Current start.
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// Current status.
    pub status: crate::model::Status,
    /// The start the answered message was about (for a tap or a reply to a message).
    pub message_slot: Option<chrono::DateTime<chrono::Utc>>,
    /// The answered outbox row, if known.
    pub outbox_id: Option<i64>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's language.
    pub language: String,
    /// Patient's number.
    pub phone: String,
}

/// Everything the store found for a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Patient row ids with the sender's number (one per clinic they attend).
    pub patients: Vec<i64>,
    /// The appointment a button payload names.
    pub by_button: Option<Candidate>,
    /// The appointment of the message replied to (`context.id`).
    pub by_context: Option<Candidate>,
    /// The sender's upcoming booked appointments that were reminded.
    pub upcoming_reminded: Vec<Candidate>,
    /// The sender's most recent appointment (where a STOP acknowledgement is filed).
    pub latest: Option<Candidate>,
}

impl Found {
    /// Keeps only the upcoming appointments of `clinics`: a message written to one of a
    /// group's WhatsApp numbers is about the clinics that send from it, so "cancel" to one
    /// brand's number never cancels a visit at another. A tap or a quoted message names its
    /// own message and stays; so do the patients (a STOP is the person's) and `latest`.
    pub fn only_clinics(&mut self, clinics: &[&str]) {
        self.upcoming_reminded
            .retain(|c| clinics.contains(&c.clinic.as_str()));
    }
}

/// What to do with a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The request.
    pub intent: Intent,
    /// The appointment it is about (for appointment intents) or filed under.
    pub appointment: Option<Candidate>,
    /// Apply it, hand it to staff, or only record it.
    pub outcome: Outcome,
    /// Why it needs staff or was ignored.
    pub reason: Option<String>,
}

/// The outcome of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Changes were made.
    Applied,
    /// A person must look at it.
    NeedsStaff,
    /// Recorded, nothing changed.
    Ignored,
}

impl Outcome {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::NeedsStaff => "needs_staff",
            Self::Ignored => "ignored",
        }
    }
}

/// Decides which appointment a reply is about and whether to apply it: the button's message
/// first, then the message replied to, then the patient's one upcoming reminded appointment.
/// More than one candidate, an unknown number or unknown words go to staff: never a guess.
pub fn resolve(
    reading: &Reading,
    found: &Found,
    from: Option<&crate::phone::E164>,
    now: chrono::DateTime<chrono::Utc>,
) -> Resolution {
    let staff = |appointment: Option<Candidate>, why: &str| Resolution {
        intent: reading.intent,
        appointment,
        outcome: Outcome::NeedsStaff,
        reason: Some(why.to_string()),
    };
    // A tap names its message; it must come from the number that message went to.
    let by_button = found
        .by_button
        .clone()
        .filter(|c| from.is_some_and(|f| c.phone == f.as_str()));
    if found.by_button.is_some() && by_button.is_none() {
        return staff(
            None,
            "a button of a message sent to another number was tapped",
        );
    }
    let direct = by_button.or_else(|| found.by_context.clone());
    let sole = match found.upcoming_reminded.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    match reading.intent {
        Intent::Unknown | Intent::None => {
            let appointment = direct.or(sole);
            match &reading.needs_staff {
                Some(why) => staff(appointment, why),
                None => Resolution {
                    intent: reading.intent,
                    appointment,
                    outcome: Outcome::Ignored,
                    reason: Some("nothing to act on".into()),
                },
            }
        }
        // A score the feedback path did not take (no number to match it with).
        Intent::Feedback => staff(
            direct,
            reading
                .needs_staff
                .as_deref()
                .unwrap_or("a feedback score reminderd could not match to a feedback request"),
        ),
        Intent::Stop | Intent::Start => {
            if found.patients.is_empty() {
                return staff(None, "the number is not a patient's");
            }
            Resolution {
                intent: reading.intent,
                appointment: direct.or_else(|| found.latest.clone()),
                outcome: Outcome::Applied,
                reason: None,
            }
        }
        Intent::Confirm | Intent::Cancel | Intent::Reschedule => {
            if found.patients.is_empty() && direct.is_none() {
                return staff(None, "the number is not a patient's");
            }
            let appointment = match (direct, found.upcoming_reminded.len()) {
                (Some(a), _) => a,
                (None, 0) => {
                    return staff(None, "the patient has no upcoming reminded appointment");
                }
                (None, 1) => sole.unwrap_or_else(|| found.upcoming_reminded[0].clone()),
                (None, _) => {
                    return staff(
                        None,
                        "the patient has several upcoming appointments; which one is meant?",
                    );
                }
            };
            if appointment.starts_at <= now {
                return Resolution {
                    intent: reading.intent,
                    appointment: Some(appointment),
                    outcome: Outcome::Ignored,
                    reason: Some("the appointment has already passed".into()),
                };
            }
            if appointment.status != crate::model::Status::Booked {
                let status = appointment.status;
                return Resolution {
                    intent: reading.intent,
                    appointment: Some(appointment),
                    outcome: Outcome::Ignored,
                    reason: Some(format!("the appointment is already {status}")),
                };
            }
            if appointment
                .message_slot
                .is_some_and(|s| s != appointment.starts_at)
            {
                return staff(
                    Some(appointment),
                    "the patient answered a message about a time that has since changed",
                );
            }
            Resolution {
                intent: reading.intent,
                appointment: Some(appointment),
                outcome: Outcome::Applied,
                reason: None,
            }
        }
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::model::Status;
    use chrono::{DateTime, Utc};

    fn t(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).expect("instant")
    }

    fn cand(id: i64, starts: &str) -> Candidate {
        Candidate {
            appointment_id: id,
            external_id: format!("A{id}"),
            patient_id: 1,
            clinic: "mumbai".into(),
            starts_at: t(starts),
            status: Status::Booked,
            message_slot: None,
            outbox_id: None,
            patient_name: "Aarav Sharma".into(),
            language: "en".into(),
            phone: "+919820012345".into(),
        }
    }

    fn reading(intent: Intent) -> Reading {
        Reading {
            intent,
            outbox_id: None,
            needs_staff: None,
        }
    }

    const NOW: &str = "2026-12-01T04:30:00Z";
    const FROM: &str = "919820012345";

    #[test]
    fn a_sole_upcoming_reminded_appointment_is_the_one() {
        let found = Found {
            patients: vec![1],
            upcoming_reminded: vec![cand(1, "2026-12-02T03:30:00Z")],
            ..Found::default()
        };
        let r = resolve(
            &reading(Intent::Confirm),
            &found,
            crate::phone::E164::from_wa_id(FROM).as_ref(),
            t(NOW),
        );
        assert_eq!(
            (r.outcome, r.appointment.map(|a| a.appointment_id)),
            (Outcome::Applied, Some(1))
        );
    }

    #[test]
    fn two_candidates_or_an_unknown_number_go_to_staff() {
        let found = Found {
            patients: vec![1],
            upcoming_reminded: vec![
                cand(1, "2026-12-02T03:30:00Z"),
                cand(2, "2026-12-03T03:30:00Z"),
            ],
            ..Found::default()
        };
        let r = resolve(
            &reading(Intent::Confirm),
            &found,
            crate::phone::E164::from_wa_id(FROM).as_ref(),
            t(NOW),
        );
        assert_eq!(r.outcome, Outcome::NeedsStaff);
        assert!(r.reason.unwrap_or_default().contains("several"));
        let r = resolve(
            &reading(Intent::Confirm),
            &Found::default(),
            crate::phone::E164::from_wa_id(FROM).as_ref(),
            t(NOW),
        );
        assert_eq!(
            (r.outcome, r.reason.as_deref()),
            (Outcome::NeedsStaff, Some("the number is not a patient's"))
        );
    }

    #[test]
    fn the_context_picks_one_of_several() {
        let found = Found {
            patients: vec![1],
            by_context: Some(cand(2, "2026-12-03T03:30:00Z")),
            upcoming_reminded: vec![
                cand(1, "2026-12-02T03:30:00Z"),
                cand(2, "2026-12-03T03:30:00Z"),
            ],
            ..Found::default()
        };
        let r = resolve(
            &reading(Intent::Cancel),
            &found,
            crate::phone::E164::from_wa_id(FROM).as_ref(),
            t(NOW),
        );
        assert_eq!(
            (r.outcome, r.appointment.map(|a| a.appointment_id)),
            (Outcome::Applied, Some(2))
        );
    }

    #[test]
    fn past_cancelled_moved_and_foreign_taps() {
        let mut past = cand(1, "2026-11-30T03:30:00Z");
        let found = Found {
            patients: vec![1],
            by_button: Some(past.clone()),
            ..Found::default()
        };
        assert_eq!(
            resolve(
                &reading(Intent::Confirm),
                &found,
                crate::phone::E164::from_wa_id(FROM).as_ref(),
                t(NOW)
            )
            .outcome,
            Outcome::Ignored
        );
        past.starts_at = t("2026-12-02T03:30:00Z");
        past.status = Status::Cancelled;
        let found = Found {
            patients: vec![1],
            by_button: Some(past.clone()),
            ..Found::default()
        };
        assert_eq!(
            resolve(
                &reading(Intent::Confirm),
                &found,
                crate::phone::E164::from_wa_id(FROM).as_ref(),
                t(NOW)
            )
            .outcome,
            Outcome::Ignored
        );
        let mut moved = cand(1, "2026-12-02T05:30:00Z");
        moved.message_slot = Some(t("2026-12-02T03:30:00Z"));
        let found = Found {
            patients: vec![1],
            by_button: Some(moved),
            ..Found::default()
        };
        assert_eq!(
            resolve(
                &reading(Intent::Confirm),
                &found,
                crate::phone::E164::from_wa_id(FROM).as_ref(),
                t(NOW)
            )
            .outcome,
            Outcome::NeedsStaff
        );
        let found = Found {
            patients: vec![],
            by_button: Some(cand(1, "2026-12-02T03:30:00Z")),
            ..Found::default()
        };
        assert_eq!(
            resolve(
                &reading(Intent::Confirm),
                &found,
                crate::phone::E164::from_wa_id("15550001111").as_ref(),
                t(NOW)
            )
            .outcome,
            Outcome::NeedsStaff
        );
    }
}
