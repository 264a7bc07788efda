//! A patient's conversation: what they wrote and what the clinic sent, with delivery states and
//! who wrote staff messages; the reply box while their 24-hour window is open, the "please call
//! us" template outside it; the sensitive-phrase warning; the clinic's Guidelines page.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{SignedIn, page};
use crate::config::{Clinic, Config};
use crate::model::{Kind, OutboxState};
use crate::store::{Conversation, Line, Outbound, StaffRefusal};

/// What the conversation page says above the reply box after a POST, or what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationNotice<'a> {
    /// A message was queued (`again`: the form had been received before).
    Sent {
        /// The same form arrived again; nothing new was queued.
        again: bool,
    },
    /// The message was not queued (with the text typed, kept; empty for the template).
    Refused(StaffRefusal, &'a str),
    /// The reply box was empty.
    Empty,
    /// The text (kept) is longer than WhatsApp takes: its length in characters.
    TooLong(usize, &'a str),
    /// Back from the warning, to edit the text (kept).
    Edit(&'a str),
}

/// Where the conversation page is.
pub fn conversation_path(patient: i64) -> String {
    format!("/desk/patients/{patient}/conversation")
}

/// A time at the clinic: "Sun 29 Nov, 14:05".
fn when(t: DateTime<Utc>, clinic: &Clinic) -> String {
    let local = t.with_timezone(&clinic.time_zone);
    format!(
        "{}, {}",
        local.format("%a %-d %b"),
        local.format(&clinic.time_format)
    )
}

/// "3 hours 20 minutes", "45 minutes", "1 minute".
fn left_words(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(1);
    let (h, m) = (minutes / 60, minutes % 60);
    let hours = super::plural(h, "hour", "hours");
    let mins = super::plural(m, "minute", "minutes");
    match (h, m) {
        (0, _) => mins,
        (_, 0) => hours,
        _ => format!("{hours} {mins}"),
    }
}

/// Who wrote a message: "asha", "reminderd", "the administrator (root)".
fn sender(sent_by: Option<&str>) -> String {
    match sent_by {
        Some(s) if s.starts_with("staff:") => s["staff:".len()..].to_string(),
        Some(s) if s.starts_with("admin:") => {
            format!("the administrator ({})", &s["admin:".len()..])
        }
        Some(other) => other.to_string(),
        None => "the clinic (automatic)".to_string(),
    }
}

/// What a message to the patient was.
fn what_went(config: &Config, o: &Outbound) -> Markup {
    let template_name = |k: &str| crate::config::humanise_name(k);
    html! {
        @match o.kind {
            Kind::StaffMessage | Kind::ReplyAck => {
                @if let Some(t) = &o.text { q { (t) } } @else { "A message" }
                @if o.kind == Kind::ReplyAck { " " small { "(automatic answer)" } }
            }
            Kind::StaffTemplate => {
                "The \u{201c}please call us\u{201d} message"
                @if let Some(t) = o.template.as_deref().filter(|k| config.templates.contains_key(*k)) { " (" (template_name(t)) ")" }
            }
            Kind::StaffDocument => { "A document" }
            Kind::Reminder | Kind::ManualReminder => { "Appointment reminder" }
            Kind::BookingConfirmation => { "Booking confirmation" }
            Kind::WaitlistOffer => { "An offer of an earlier appointment" }
            Kind::RescheduleOffer => { "Appointment times to choose from" }
            Kind::Feedback => { "Feedback request" }
        }
    }
}

/// Why nothing goes out while the account is restricted, if Meta restricted it (from the
/// banner's holds).
fn account_blocked(session: &SignedIn) -> Option<&str> {
    session.status.holds.iter().find_map(|h| match h {
        crate::jobs::Hold::AccountBlocked { reason, .. } => Some(reason.as_str()),
        _ => None,
    })
}

/// How far a message got, in words; a waiting message says what holds it (a stopped
/// template, a restricted account: `blocked`).
fn state_words(o: &Outbound, blocked: Option<&str>) -> String {
    let via = if o.channel == "sms" { " (by text)" } else { "" };
    let state = match o.state {
        OutboxState::Pending => match (blocked.filter(|_| o.channel != "sms"), o.detail.as_deref())
        {
            (Some(why), _) => format!(
                "waiting to be sent: Meta has restricted the clinic's WhatsApp account ({why}); it goes out once that is lifted"
            ),
            (None, Some(d)) => format!("waiting to be sent ({d})"),
            (None, None) => "waiting to be sent".to_string(),
        },
        OutboxState::Sending => "being sent".to_string(),
        OutboxState::Sent => "sent, not yet delivered to the phone".to_string(),
        OutboxState::Delivered => "delivered to the phone".to_string(),
        OutboxState::Read => "read by the patient".to_string(),
        OutboxState::Failed => format!(
            "not delivered{}",
            o.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
        OutboxState::Unknown => {
            "unclear whether it went out (WhatsApp did not answer); it is not sent twice"
                .to_string()
        }
        OutboxState::Skipped | OutboxState::Expired => format!(
            "not sent{}",
            o.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ),
    };
    format!("{state}{via}")
}

/// What a form filled in on one patient's page and sent for another says: nothing went.
pub const OTHER_PATIENT: &str = "Nothing was sent: this form was filled in on another patient's page. Write the message again here.";

/// Why a message was refused, in the receptionist's words.
fn refusal_words(why: StaffRefusal, clinic: &Clinic) -> String {
    match why {
        StaffRefusal::NoPatient => "That patient is not stored (the link may be old).".into(),
        StaffRefusal::WindowClosed(Some(closed)) => format!(
            "Nothing was sent: WhatsApp only allows free text within 24 hours of the patient's last message, and that time ended {}. Send the \u{201c}please call us\u{201d} message, or call the patient.",
            when(closed, clinic)
        ),
        StaffRefusal::WindowClosed(None) => "Nothing was sent: WhatsApp only allows free text within 24 hours of the patient's last message, and this patient has not written to the clinic. Send the \u{201c}please call us\u{201d} message, or call the patient.".into(),
        StaffRefusal::OptedOut => "Nothing was sent: the patient asked not to get WhatsApp messages (they replied STOP). Call them instead.".into(),
        StaffRefusal::NoAppointment => "Nothing was sent: the patient has no appointment stored, and every message belongs to one. Call them instead.".into(),
        StaffRefusal::OtherPatient => OTHER_PATIENT.into(),
    }
}

/// The conversation page.
#[allow(clippy::too_many_arguments)]
pub fn conversation_page(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    c: &Conversation,
    now: DateTime<Utc>,
    nonce: &str,
    notice: Option<ConversationNotice<'_>>,
) -> Markup {
    let p = &c.patient;
    let action = conversation_path(p.id);
    let blocked = account_blocked(session);
    // What staff typed comes back with every page that did not send it.
    let draft = match notice {
        Some(
            ConversationNotice::Edit(text)
            | ConversationNotice::TooLong(_, text)
            | ConversationNotice::Refused(_, text),
        ) => text,
        _ => "",
    };
    page(
        &format!("Conversation with {}", p.name),
        Some(session),
        "",
        &html! {
            p.hint {
                a href={ "/desk/patient?id=" (p.id) } { "Patient page" } " · " (clinic.display_name)
                " · patient id " (p.external_id) " · times are " (clinic.time_zone.name())
            }
            @match notice {
                Some(ConversationNotice::Sent { again: false }) => {
                    @match blocked {
                        Some(why) => { p.notice role="status" { "Your message is saved but held: Meta has restricted the clinic's WhatsApp account (" (why) "), so nothing goes out until that is lifted. It goes then by itself; its state shows below. If it cannot wait, call the patient." } }
                        None => { p.ok role="status" { "Your message is queued: it goes out within a minute. Its delivery shows below." } }
                    }
                }
                Some(ConversationNotice::Sent { again: true }) => { p.ok role="status" { "This message had already been received: it was not sent twice." } }
                Some(ConversationNotice::Refused(why, _)) => { p.error role="alert" { (refusal_words(why, clinic)) } }
                Some(ConversationNotice::Empty) => { p.error role="alert" { "The message is empty: write what you want to send." } }
                Some(ConversationNotice::TooLong(n, _)) => { p.error role="alert" { "The message is " (n) " characters long; WhatsApp takes at most 4096. Shorten it." } }
                Some(ConversationNotice::Edit(_)) | None => {}
            }
            h2 { "Messages" }
            @if c.lines.is_empty() {
                p.notice { "No messages yet." }
            } @else {
                div.scroll {
                    table.timeline.conversation {
                        caption.visually-hidden { "Messages from and to the patient, oldest first" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Message" } } }
                        tbody {
                            @for line in &c.lines {
                                @match line {
                                    Line::In(i) => {
                                        tr.t-reply {
                                            td { time datetime=(i.at.to_rfc3339()) { (when(i.at, clinic)) } }
                                            td { (p.name) @if i.channel == "sms" { " (by text)" } }
                                            td {
                                                @match &i.text { Some(t) => { q { (t) } } None => { "Sent a " (i.kind) } }
                                                @if i.outcome == "needs_staff" {
                                                    br;
                                                    @match &i.handled_by {
                                                        Some(by) => { small { "handled by " (sender(Some(by))) } }
                                                        None => { span.badge.warn { "waiting for an answer" } }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    Line::Out(o) => {
                                        tr.t-message {
                                            td { time datetime=(o.at.to_rfc3339()) { (when(o.at, clinic)) } }
                                            td { (sender(o.sent_by.as_deref())) }
                                            td { (what_went(config, o)) br; span.(format!("m-{}", o.state)) { (state_words(o, blocked)) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 #reply { "Answer" }
            @match c.window_closes.filter(|_| c.window_open(now)) {
                Some(end) => {
                    p {
                        "WhatsApp allows free text for " strong { (left_words(end - now)) } " more (until "
                        (when(end, clinic)) "): 24 hours after the patient's last message."
                    }
                    form.card method="post" action=(action) {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="nonce" value=(nonce);
                        p {
                            label for="text" { "Your answer to " (p.name) }
                            textarea #text name="text" rows="4" maxlength="4096" required { (draft) }
                        }
                        p.hint { "Follow the clinic's " a href="/desk/guidelines" { "messaging guidelines" } ": no test results or diagnoses by message." }
                        button.primary type="submit" name="action" value="send" { "Send" }
                    }
                }
                None => {
                    p.notice {
                        "WhatsApp only allows free text within 24 hours of the patient's last message. "
                        @match c.window_closes {
                            Some(end) => { "That time ended " (when(end, clinic)) ", " }
                            None => { "This patient has not written to the clinic, " }
                        }
                        "so only the clinic's approved \u{201c}please call us\u{201d} message can be sent. When the patient answers it, you can write to them again."
                    }
                    @if !draft.is_empty() {
                        p { "Your message was not sent. Here it is, to copy or to tell the patient by phone:" }
                        blockquote.draft { (draft) }
                    }
                    (call_us(session, config, c, &action, nonce))
                }
            }
            @if !config.documents.is_empty() {
                div.conversation-actions {
                    p { a href=(format!("/desk/patients/{}/documents", p.id)) { "Send a document" } " from the clinic's library (a form, consent or leaflet)." }
                }
            }
        },
    )
}

/// The "please call us" template choice, outside the window.
fn call_us(
    session: &SignedIn,
    config: &Config,
    c: &Conversation,
    action: &str,
    nonce: &str,
) -> Markup {
    let template = config
        .conversations
        .call_us_template
        .as_deref()
        .and_then(|k| config.templates.get(k));
    html! {
        @match template {
            None => { p { "No \u{201c}please call us\u{201d} message is set up for the clinic: call the patient. Ask the administrator to set one up." } }
            Some(_) if c.patient.opted_out => { p { "The patient asked not to get WhatsApp messages (they replied STOP): call them instead." } }
            Some(t) => {
                form.card method="post" action=(action) {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="nonce" value=(nonce);
                    @if let Some(text) = t.languages.get(&c.patient.language).or_else(|| t.languages.values().next()) {
                        p { "The patient gets, with their name and the clinic's filled in:" }
                        blockquote { (text.body) }
                    }
                    button.primary type="submit" name="action" value="call_us" { "Send the \u{201c}please call us\u{201d} message" }
                }
            }
        }
    }
}

/// The warning before sending text that matches a sensitive phrase: back to edit (the text
/// kept), or send anyway (recorded with the staff member's name).
pub fn sensitive_confirm(
    session: &SignedIn,
    c: &Conversation,
    text: &str,
    pattern: &str,
    nonce: &str,
) -> Markup {
    let action = conversation_path(c.patient.id);
    page(
        "Check this message before sending",
        Some(session),
        "",
        &html! {
            p.error role="alert" {
                "This looks like a test result or a diagnosis (it mentions \u{201c}" (pattern) "\u{201d}). "
                "Share these in person or by phone, not by WhatsApp. See the clinic's "
                a href="/desk/guidelines" { "messaging guidelines" } "."
            }
            p { "Your message to " (c.patient.name) ":" }
            blockquote { (text) }
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="nonce" value=(nonce);
                input type="hidden" name="text" value=(text);
                input type="hidden" name="override" value=(pattern);
                div.choices {
                    button.primary type="submit" name="action" value="edit" { "Go back and change it" }
                    button type="submit" name="action" value="send" { "Send anyway" }
                }
                p.hint { "Sending anyway is recorded with your name." }
            }
        },
    )
}

/// The clinic's own rules for messaging.
pub fn guidelines_page(session: &SignedIn, text: &str) -> Markup {
    page(
        "Messaging guidelines",
        Some(session),
        "Guidelines",
        &html! {
            div.guidelines {
                @for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
                    p {
                        @for (i, line) in para.lines().enumerate() {
                            @if i > 0 { br; }
                            (line)
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_in_hours_and_minutes_without_plural_brackets() {
        let m = chrono::Duration::minutes;
        assert_eq!(left_words(m(200)), "3 hours 20 minutes");
        assert_eq!(left_words(m(60)), "1 hour");
        assert_eq!(left_words(m(61)), "1 hour 1 minute");
        assert_eq!(left_words(chrono::Duration::seconds(20)), "1 minute");
        assert_eq!(sender(Some("staff:asha")), "asha");
        assert_eq!(sender(Some("admin:root")), "the administrator (root)");
    }

    fn pending(detail: Option<&str>) -> Outbound {
        Outbound {
            id: 1,
            at: DateTime::UNIX_EPOCH,
            kind: Kind::StaffTemplate,
            template: Some("call_us".into()),
            text: None,
            state: OutboxState::Pending,
            channel: "whatsapp".into(),
            sent_by: Some("staff:asha".into()),
            detail: detail.map(str::to_string),
        }
    }

    #[test]
    fn a_held_message_says_what_holds_it() {
        let paused = "held: Meta paused the WhatsApp template “please_call_us” (en); it goes out when Meta allows the template again";
        assert_eq!(
            state_words(&pending(Some(paused)), None),
            format!("waiting to be sent ({paused})")
        );
        assert_eq!(state_words(&pending(None), None), "waiting to be sent");
        let blocked = state_words(&pending(None), Some("ACCOUNT_RESTRICTION"));
        assert!(
            blocked.contains(
                "Meta has restricted the clinic's WhatsApp account (ACCOUNT_RESTRICTION)"
            ),
            "{blocked}"
        );
    }

    #[test]
    fn queuing_while_the_account_is_restricted_says_it_is_held_not_within_a_minute() {
        let config = Config::example().expect("config");
        let clinic = config.clinics.values().next().expect("clinic").clone();
        let c = Conversation {
            patient: crate::store::ConversationPatient {
                id: 1,
                clinic: clinic.key.clone(),
                external_id: "P1".into(),
                name: "Priya Patil".into(),
                phone: "+919876543210".into(),
                language: "en".into(),
                opted_out: false,
            },
            lines: vec![Line::Out(pending(None))],
            window_closes: None,
        };
        let mut session = SignedIn::from(crate::store::Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".into(),
            role: crate::model::Role::Staff,
        });
        let page = |s: &SignedIn| {
            conversation_page(
                s,
                &config,
                &clinic,
                &c,
                DateTime::UNIX_EPOCH,
                "n",
                Some(ConversationNotice::Sent { again: false }),
            )
            .into_string()
        };
        assert!(page(&session).contains("it goes out within a minute"));
        session
            .status
            .holds
            .push(crate::jobs::Hold::AccountBlocked {
                reason: "ACCOUNT_RESTRICTION".into(),
                until: None,
                clinics: Vec::new(),
            });
        let text = page(&session);
        assert!(!text.contains("within a minute"), "{text}");
        assert!(
            text.contains("Your message is saved but held: Meta has restricted")
                && text.contains("(ACCOUNT_RESTRICTION), so nothing goes out"),
            "{text}"
        );
    }
}
