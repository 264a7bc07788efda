//! Channels as the desk shows them: how a message went ("Text delivered", "WhatsApp read"),
//! whom it went to, why a text failed, and how a patient is reached (the schedule's channel,
//! a number learned off WhatsApp, a caregiver).

use chrono::{DateTime, Utc};

use super::{Clinic, Markup, html, mask};
use crate::model::{ChannelChoice, RemindWhom};
use crate::store::{LastMessage, NumberFacts, PatientChannels};

/// "WhatsApp", "Text", "Text to the caregiver": the way a message went, as a receptionist
/// names it.
pub(super) fn way(channel: &str, recipient: &str) -> String {
    let by = if channel == "sms" { "Text" } else { "WhatsApp" };
    if recipient == "contact" {
        format!("{by} to the caregiver")
    } else {
        by.to_string()
    }
}

/// "Text delivered", "WhatsApp read", "WhatsApp not delivered": how a message went.
pub(super) fn how_it_went(channel: &str, recipient: &str, state: &str) -> String {
    let state = match state {
        "pending" => "not sent yet",
        "sending" => "being sent",
        "failed" => "not delivered",
        "unknown" => "sent, no delivery report yet",
        "skipped" => "not sent",
        "expired" => "not sent in time",
        other => other,
    };
    format!("{} {state}", way(channel, recipient))
}

/// Why a text failed, for the front desk: what dispatch asked staff to do (both reasons when
/// it replaced a WhatsApp message), or the provider's words.
pub(super) fn text_failure(needs_staff: Option<&str>, error: Option<&str>) -> String {
    match (needs_staff, error) {
        (Some(n), _) => n.to_string(),
        (None, Some(e)) => format!("the text could not be delivered ({e}): call the patient"),
        (None, None) => "the text could not be delivered: call the patient".to_string(),
    }
}

/// For a failed WhatsApp message that a text replaces: what became of the text, in place of
/// the WhatsApp advice (a text on its way is no reason to call).
pub(super) fn replaced_words(m: &LastMessage) -> Option<String> {
    let text = m.replaced_by.as_deref()?;
    Some(match text {
        "pending" | "sending" | "unknown" => {
            "WhatsApp could not deliver it: a text message goes instead".to_string()
        }
        "skipped" => {
            "WhatsApp could not deliver it and the text was not sent: call the patient".to_string()
        }
        "expired" => {
            "WhatsApp could not deliver it and the text could not be sent in time: call the patient"
                .to_string()
        }
        _ => "WhatsApp could not deliver it: a text message went instead".to_string(),
    })
}

/// "texts only (not on WhatsApp) until 24 Feb 2027", while that is ahead and the clinic
/// sends texts (elsewhere the number still gets WhatsApp).
pub(super) fn texts_only(
    until: Option<DateTime<Utc>>,
    clinic: &Clinic,
    now: DateTime<Utc>,
) -> Option<String> {
    let until = until.filter(|u| *u > now && clinic.sms_provider.is_some())?;
    Some(format!(
        "texts only (not on WhatsApp) until {}",
        until.with_timezone(&clinic.time_zone).format("%-d %b %Y")
    ))
}

/// How the patient's reminders go, in one sentence.
fn how_reminded(c: &PatientChannels, clinic: &Clinic, now: DateTime<Utc>) -> String {
    let sms = clinic.sms_provider.is_some();
    match c.reach.channel {
        Some(ChannelChoice::None) => "none: the schedule says call them".into(),
        Some(ChannelChoice::Sms) if sms => "by text message (the schedule says texts only)".into(),
        Some(ChannelChoice::Sms) => {
            "none: the schedule says texts only, and this clinic sends no texts: call them".into()
        }
        _ => match texts_only(c.patient_number.sms_only_until, clinic, now) {
            Some(t) => format!("by text message: {t}"),
            None if sms && clinic.sms_fallback => {
                "by WhatsApp, or a text message when WhatsApp cannot deliver".into()
            }
            None => "by WhatsApp".into(),
        },
    }
}

/// What a number's opting out of texts adds, if it did.
fn opted_out(n: &NumberFacts, clinic: &Clinic) -> Option<String> {
    n.sms_opted_out_at.map(|t| {
        format!(
            "opted out of text messages on {}",
            t.with_timezone(&clinic.time_zone).format("%-d %b %Y")
        )
    })
}

/// The patient page's lines about channels: how reminders go, to whom, and the caregiver
/// (name, relation, masked number).
pub(super) fn reach_details(c: &PatientChannels, clinic: &Clinic, now: DateTime<Utc>) -> Markup {
    let r = &c.reach;
    let has_contact = r.contact_phone.is_some();
    let to = match (r.remind, has_contact) {
        (RemindWhom::Contact, true) => "caregiver",
        (RemindWhom::Both, true) => "both (patient and caregiver)",
        _ => "patient",
    };
    html! {
        dt { "How reminders go" }
        dd {
            (how_reminded(c, clinic, now))
            @if let Some(o) = opted_out(&c.patient_number, clinic) { " · " span.badge.warn { (o) } }
        }
        dt { "Reminders go to" } dd { (to) }
        @if has_contact || r.contact_name.is_some() {
            dt { "Caregiver" }
            dd {
                (r.contact_name.as_deref().unwrap_or("(no name given)"))
                @if let Some(rel) = r.contact_relation.as_deref().filter(|s| !s.trim().is_empty()) { " (" (rel) ")" }
                @if let Some(p) = &r.contact_phone { " · " span.phone { (mask(p.as_str())) } }
                @if let Some(t) = texts_only(c.contact_number.sms_only_until, clinic, now) { " · " (t) }
                @if let Some(o) = opted_out(&c.contact_number, clinic) { " · " span.badge.warn { (o) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_says_which_way_it_went() {
        assert_eq!(how_it_went("sms", "patient", "delivered"), "Text delivered");
        assert_eq!(how_it_went("whatsapp", "patient", "read"), "WhatsApp read");
        assert_eq!(
            how_it_went("sms", "contact", "failed"),
            "Text to the caregiver not delivered"
        );
        assert_eq!(
            text_failure(None, Some("(30007) carrier filtering")),
            "the text could not be delivered ((30007) carrier filtering): call the patient"
        );
    }

    #[test]
    fn a_text_on_its_way_is_no_reason_to_call() {
        let m = |replaced: Option<&str>| LastMessage {
            kind: "reminder".into(),
            state: "failed".into(),
            at: DateTime::UNIX_EPOCH,
            error_code: Some(131_026),
            error: None,
            channel: "whatsapp".into(),
            recipient: "patient".into(),
            needs_staff: None,
            replaced_by: replaced.map(str::to_string),
        };
        assert_eq!(replaced_words(&m(None)), None);
        let pending = replaced_words(&m(Some("pending"))).expect("words");
        assert!(pending.contains("a text message goes instead") && !pending.contains("call"));
        assert!(
            replaced_words(&m(Some("skipped")))
                .expect("words")
                .ends_with("call the patient")
        );
    }
}
