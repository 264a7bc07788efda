//! Replies that need a person, in the receptionist's words: local clinic times, appointments
//! named by date, time and doctor, numbers that can be revealed, and an ambiguous answer's
//! candidate appointments as buttons.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Config, Markup, SignedIn, html, local, mask, page};
use crate::config::Clinic;
use crate::replies::Intent;
use crate::store::{Choice, ReplyView};

/// One reply waiting for a person.
#[derive(Debug, Clone)]
pub struct ReplyCard {
    /// The reply.
    pub reply: ReplyView,
    /// The sender's coming appointments an answer could be meant for (only for an answer that
    /// names no appointment).
    pub choices: Vec<Choice>,
    /// Show the number whole (after an audited reveal).
    pub revealed: bool,
}

/// The text of a Replies `?done=` key of its own (an answer applied), if it is one.
pub fn replies_notice(key: &str) -> Option<&'static str> {
    (key == "applied")
        .then_some("The answer was applied to the appointment and the reply marked handled")
}

/// The clinic a reply concerns: its appointment's, else its patient's, else (for a number
/// that is no patient's) the clinic in the number's country, if one is.
fn reply_clinic<'c>(config: &'c Config, r: &ReplyView) -> Option<&'c Clinic> {
    let known = r
        .clinic
        .as_deref()
        .or(r.patient_clinic.as_deref())
        .and_then(|k| config.clinic(k));
    known.or_else(|| {
        let digits = r.from.strip_prefix('+')?;
        config.clinics.values().find(|c| {
            phonenumber::metadata::DATABASE
                .by_id(&c.phone_region.to_string())
                .is_some_and(|m| digits.starts_with(&m.country_code().to_string()))
        })
    })
}

/// "Sunday 29 November, 09:02" in the clinic's own formats.
fn when(t: DateTime<Utc>, clinic: &Clinic) -> String {
    format!(
        "{}, {}",
        local(t, clinic.time_zone, &clinic.date_format),
        local(t, clinic.time_zone, &clinic.time_format)
    )
}

/// What a message of a type other than text is, in words.
fn kind_words(kind: &str) -> String {
    match kind {
        "audio" | "voice" => "a voice message".into(),
        "image" => "a photo".into(),
        "video" => "a video".into(),
        "document" => "a document".into(),
        "sticker" => "a sticker".into(),
        "location" => "a location".into(),
        "contacts" => "a contact card".into(),
        "reaction" => "a reaction".into(),
        "unreadable" => "a message that could not be read".into(),
        other => format!("a message of type {other}"),
    }
}

/// What the patient seems to want, when the words said it.
fn intent_words(intent: &str) -> Option<&'static str> {
    match Intent::parse(intent).ok()? {
        Intent::Confirm => Some("seems to say yes (will come)"),
        Intent::Cancel => Some("seems to say no (cannot come)"),
        Intent::Reschedule => Some("seems to ask for another time"),
        Intent::Stop => Some("asks to stop messages"),
        Intent::Start => Some("asks for messages again"),
        Intent::Feedback => Some("scores the visit"),
        Intent::Unknown | Intent::None => None,
    }
}

/// Why a reply needs a person, in the receptionist's words (the stored reasons are written
/// for the log; unknown ones are shown as they are).
fn reason_words(reason: &str) -> String {
    let known = [
        (
            "the patient wrote something reminderd does not understand",
            "The message is not one of the answers a reminder asks for: read it and answer the patient.",
        ),
        (
            "the patient has several upcoming appointments; which one is meant?",
            "The patient has several appointments coming: choose the one this answer is for.",
        ),
        (
            "the number is not a patient's",
            "This number is not in the schedule: call it back to find out who wrote.",
        ),
        (
            "the patient has no upcoming reminded appointment",
            "The patient has no coming appointment that was reminded: check which one is meant.",
        ),
        (
            "the patient answered a message about a time that has since changed",
            "The patient answered about an earlier time: the appointment has moved since. Call to check the new time suits.",
        ),
        (
            "a button of a message sent to another number was tapped",
            "A button of a message sent to another number was tapped: call to check who answered.",
        ),
        (
            "a score button of a message sent to another number was tapped",
            "Someone scored a visit from a number the feedback request was not sent to: no score was kept.",
        ),
        (
            "a score button of a message reminderd does not know was tapped",
            "A visit was scored on a message that is no longer known: no score was kept.",
        ),
    ];
    if let Some((_, words)) = known.iter().find(|(stored, _)| *stored == reason) {
        return (*words).to_string();
    }
    if let Some(kind) = reason.strip_prefix("the patient sent a message of type ") {
        return format!(
            "The patient sent {}: look at it in the clinic's WhatsApp.",
            kind_words(kind)
        );
    }
    if reason.starts_with("the message could not be read") {
        return "The message could not be read here: look at it in the clinic's WhatsApp.".into();
    }
    reason.to_string()
}

/// The button's verb for applying an answer.
fn apply_verb(intent: &str) -> Option<&'static str> {
    match Intent::parse(intent).ok()? {
        Intent::Confirm => Some("Confirm"),
        Intent::Cancel => Some("Cancel"),
        Intent::Reschedule => Some("Ask to move"),
        _ => None,
    }
}

/// Replies waiting for a person.
pub fn replies(
    session: &SignedIn,
    config: &Config,
    cards: &[ReplyCard],
    done: Option<&str>,
) -> Markup {
    // Replies about no clinic: the only zone the clinics share, else each time names its clinic.
    let zones: Vec<Tz> = config.clinics.values().map(|c| c.time_zone).collect();
    let fallback = config
        .clinics
        .values()
        .next()
        .filter(|_| zones.windows(2).all(|w| w[0] == w[1]));
    let several_clinics = config.clinics.len() > 1;
    page(
        "Replies that need a person",
        Some(session),
        "Replies",
        &html! {
            @if let Some(d) = done {
                p.ok role="status" { (d) "." }
            }
            @if cards.is_empty() {
                p.notice { "No replies are waiting." }
            }
            @for card in cards {
                @let r = &card.reply;
                @let clinic = reply_clinic(config, r);
                section.card.reply #{ "r-" (r.id) } aria-labelledby={ "rh-" (r.id) } {
                    h2 #{ "rh-" (r.id) } { (r.patient_name.as_deref().unwrap_or("Unknown number")) }
                    div.phone-line {
                        "Phone: "
                        @if card.revealed {
                            a.phone href={ "tel:" (r.from) } { (r.from) }
                        } @else {
                            form.inline method="post" action="/desk/replies/reveal" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="reply" value=(r.id);
                                span.phone { (mask(&r.from)) " " }
                                button.small type="submit" aria-label="Show the whole number" { "Show" }
                            }
                        }
                    }
                    @if let Some(m) = &r.media {
                        (super::media::reply_media(r.id, m))
                    } @else {
                        @match &r.text {
                            Some(text) => { blockquote { (text) } }
                            None => { blockquote { "The patient sent " (kind_words(&r.kind)) "." } }
                        }
                    }
                    p.hint {
                        "Received "
                        @match (clinic, fallback) {
                            (Some(c), _) | (None, Some(c)) => { (when(r.received, c)) }
                            (None, None) => {
                                @if let Some(c) = config.clinics.values().next() {
                                    (when(r.received, c)) " (" (c.display_name) " time)"
                                } @else {
                                    (r.received_at)
                                }
                            }
                        }
                        @if let Some(w) = intent_words(&r.intent) { " · the patient " (w) }
                    }
                    @if let (Some(c), Some(starts), Some(_)) = (clinic, r.starts_at, &r.appointment_id) {
                        p {
                            "About the appointment on " (when(starts, c))
                            @if let Some(p) = &r.provider { " with " (p) }
                            @if several_clinics { " at " (c.display_name) }
                            "."
                        }
                    }
                    @if let Some(why) = &r.reason { p { (reason_words(why)) } }
                    @if let (Some(verb), true) = (apply_verb(&r.intent), r.appointment_id.is_none()) {
                        @if card.choices.is_empty() {
                            p.hint { "This number has no appointment coming to apply the answer to." }
                        } @else {
                            div.choices role="group" aria-labelledby={ "rc-" (r.id) } {
                                p #{ "rc-" (r.id) } { "Which appointment is this answer for?" }
                                @for choice in &card.choices {
                                    @if let Some(c) = config.clinic(&choice.clinic) {
                                        form.inline method="post" action="/desk/replies/apply" {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            input type="hidden" name="reply" value=(r.id);
                                            input type="hidden" name="appointment" value=(choice.id);
                                            button type="submit" {
                                                (verb) " " (when(choice.starts_at, c))
                                                @if let Some(p) = &choice.provider { " with " (p) }
                                                @if several_clinics { " at " (c.display_name) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if r.patient_name.is_some() { p { a href={ "/desk/conversation?reply=" (r.id) } { "Open conversation" } } }
                    form.action method="post" action="/desk/replies/handled" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="reply" value=(r.id);
                        label for={ "rn-" (r.id) } { "Note" }
                        input #{ "rn-" (r.id) } type="text" name="note" maxlength="500" placeholder="what you did";
                        button type="submit" { "Mark handled" }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).expect("instant")
    }

    fn reply(id: i64, text: &str, intent: &str, reason: &str) -> ReplyView {
        ReplyView {
            id,
            received_at: "2026-11-29T03:30:16Z".into(),
            from: "+919876543210".into(),
            patient_name: Some("Priya Patil".into()),
            clinic: None,
            appointment_id: None,
            kind: "text".into(),
            text: Some(text.into()),
            intent: intent.into(),
            outcome: "needs_staff".into(),
            reason: Some(reason.into()),
            received: at("2026-11-29T03:30:16Z"),
            appointment_row: None,
            starts_at: None,
            provider: None,
            patient_clinic: Some("mumbai".into()),
            media: None,
        }
    }

    fn session() -> SignedIn {
        SignedIn::from(crate::store::Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".repeat(64),
            role: crate::model::Role::Staff,
        })
    }

    #[test]
    fn replies_use_local_times_and_name_appointments_in_words() {
        let config = Config::example().expect("shipped config");
        let mut known = reply(
            1,
            "Can I bring my mother?",
            "unknown",
            "the patient wrote something reminderd does not understand",
        );
        known.clinic = Some("mumbai".into());
        known.appointment_id = Some("MUM-1005".into());
        known.starts_at = Some(at("2026-11-30T05:30:00Z"));
        known.provider = Some("Dr. Iyer".into());
        let mut stranger = reply(
            2,
            "Who is this?",
            "unknown",
            "the number is not a patient's",
        );
        (stranger.patient_name, stranger.patient_clinic) = (None, None);
        stranger.from = "+12125550123".into();
        let cards = [
            ReplyCard {
                reply: known,
                choices: Vec::new(),
                revealed: false,
            },
            ReplyCard {
                reply: stranger,
                choices: Vec::new(),
                revealed: false,
            },
        ];
        let html = replies(&session(), &config, &cards, None).into_string();
        assert!(
            html.contains("Received Saturday, November 28, 10:30 PM"),
            "a US number in New York's time: {html}"
        );
        assert!(html.contains("Unknown number"));
        assert!(
            html.contains("Received Sunday 29 November, 09:00"),
            "{html}"
        );
        assert!(!html.contains("2026-11-29T03:30:16Z"));
        assert!(html.contains("About the appointment on Monday 30 November, 11:00 with Dr. Iyer at Sunrise Family Clinic, Andheri."), "{html}");
        assert!(!html.contains("mumbai/MUM-1005"));
        assert!(!html.contains("reminderd does not understand"));
        assert!(html.contains("+91******3210") && !html.contains("+919876543210"));
        assert!(html.contains("action=\"/desk/replies/reveal\""));
    }

    #[test]
    fn an_ambiguous_answer_offers_each_coming_appointment() {
        let config = Config::example().expect("shipped config");
        let choice = |id: i64, clinic: &str, starts: &str, provider: &str| Choice {
            id,
            clinic: clinic.into(),
            starts_at: at(starts),
            provider: Some(provider.into()),
            patient_name: "Priya Patil".into(),
            language: "en".into(),
        };
        let cards = [ReplyCard {
            reply: reply(
                7,
                "ok",
                "confirm",
                "the patient has several upcoming appointments; which one is meant?",
            ),
            choices: vec![
                choice(11, "mumbai", "2026-11-30T05:30:00Z", "Dr. Iyer"),
                choice(12, "nyc", "2026-12-01T19:00:00Z", "Dr. Chen"),
            ],
            revealed: true,
        }];
        let html = replies(&session(), &config, &cards, None).into_string();
        assert!(
            html.contains(
                "Confirm Monday 30 November, 11:00 with Dr. Iyer at Sunrise Family Clinic, Andheri"
            ),
            "{html}"
        );
        assert!(html.contains("Confirm Tuesday, December 1, 2:00 PM with Dr. Chen at Hudson Street Medical, New York"), "{html}");
        assert!(html.contains("choose the one this answer is for"));
        assert!(html.contains("href=\"tel:+919876543210\""), "revealed");
        assert_eq!(html.matches("action=\"/desk/replies/apply\"").count(), 2);
    }
}
