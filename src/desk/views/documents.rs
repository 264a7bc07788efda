//! "Send a document": a form, consent or leaflet from the clinic's library sent to a patient
//! on WhatsApp while their 24-hour window is open, and the documents sent to them so far with
//! what became of each.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Clinic, Markup, SignedIn, html, local, page, plural};
use crate::config::Document;
use crate::model::OutboxState;
use crate::store::{DocumentTarget, SentDocument};

/// Longest caption WhatsApp shows under a document.
pub const CAPTION_CHARS: usize = 1024;

/// What the last send did, read back after the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentNotice {
    /// A new message is on its way.
    Sent,
    /// The same form had been sent before: nothing new.
    Again,
}

/// What the receptionist chose, kept when the page is shown again with a problem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentForm {
    /// The library key chosen.
    pub document: String,
    /// The caption written.
    pub caption: String,
    /// What is wrong with the form, in the receptionist's words.
    pub problem: Option<String>,
}

/// Everything the documents page shows.
#[derive(Debug, Clone, Copy)]
pub struct DocumentsPage<'a> {
    /// The patient's clinic (its zone for every time shown).
    pub clinic: &'a Clinic,
    /// The patient and their window.
    pub target: &'a DocumentTarget,
    /// The clinic's library.
    pub library: &'a BTreeMap<String, Document>,
    /// What was sent to them, newest first.
    pub sent: &'a [SentDocument],
    /// The page's time.
    pub now: DateTime<Utc>,
    /// The form's one-time token.
    pub nonce: &'a str,
    /// What the last send did.
    pub notice: Option<DocumentNotice>,
}

/// The documents page of one patient.
pub fn documents_page(session: &SignedIn, p: DocumentsPage<'_>, form: &DocumentForm) -> Markup {
    let t = p.target;
    let back = format!("/desk/patient?id={}", t.patient_id);
    page(
        &format!("Send a document to {}", t.name),
        Some(session),
        "",
        &html! {
            @match p.notice {
                Some(DocumentNotice::Sent) => p.notice role="status" { "The document is on its way. Its delivery shows in the list below." }
                Some(DocumentNotice::Again) => p.notice role="status" { "This document had already been sent from this form; it was not sent a second time." }
                None => {}
            }
            section.card aria-labelledby="send-title" {
                h2 #send-title { "Choose a document" }
                p { (window_sentence(p.clinic, t, p.now)) }
                @if t.opted_out {
                    p.error role="alert" { (t.name) " asked not to get messages from the clinic, so no document can be sent. Give them the paper form at the desk." }
                } @else if p.library.is_empty() {
                    p.error role="alert" { "The clinic has no documents to send yet. Ask the administrator to add the forms and leaflets to the library." }
                } @else if t.window_open(p.now) {
                    (send_form(session, p, form))
                } @else {
                    p.error role="alert" { (closed_sentence(p.clinic, t)) }
                }
            }
            section.card aria-labelledby="sent-title" {
                h2 #sent-title { "Documents sent to " (t.name) }
                @if p.sent.is_empty() {
                    p.hint { "None yet." }
                } @else {
                    table {
                        thead { tr { th { "Sent" } th { "Document" } th { "Note with it" } th { "By" } th { "Delivery" } } }
                        tbody {
                            @for s in p.sent {
                                tr {
                                    td { (local(s.created_at, p.clinic.time_zone, "%-d %b, %H:%M")) }
                                    td { (p.library.get(&s.document).map_or(s.document.as_str(), |d| d.title.as_str())) }
                                    td { (s.caption.as_deref().unwrap_or("")) }
                                    td { (s.sent_by.as_deref().map_or("", |b| b.strip_prefix("staff:").unwrap_or(b))) }
                                    td {
                                        span.badge { (state_words(s.state)) }
                                        @if let Some(d) = s.detail.as_deref().filter(|_| matches!(s.state, OutboxState::Failed | OutboxState::Unknown | OutboxState::Expired | OutboxState::Skipped)) {
                                            br; small { (d) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p.actions { a href=(back) { "Back to " (t.name) "'s page" } }
        },
    )
}

fn send_form(session: &SignedIn, p: DocumentsPage<'_>, form: &DocumentForm) -> Markup {
    let action = format!("/desk/patients/{}/documents", p.target.patient_id);
    html! {
        form method="post" action=(action) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="nonce" value=(p.nonce);
            @if let Some(problem) = &form.problem {
                p.error role="alert" { (problem) }
            }
            fieldset {
                legend { "Document" }
                div.choices {
                    @for d in p.library.values() {
                        label {
                            input type="radio" name="document" value=(d.key) required checked[d.key == form.document];
                            " " (d.title) " " small { "(" (d.filename) ")" }
                        }
                    }
                }
            }
            label for="caption" { "A note with it (optional)" }
            textarea #caption name="caption" rows="3" maxlength=(CAPTION_CHARS) { (form.caption) }
            button.primary type="submit" { "Send the document" }
        }
    }
}

/// How long the window has left, or when it closed.
fn window_sentence(clinic: &Clinic, t: &DocumentTarget, now: DateTime<Utc>) -> String {
    match t.window_end {
        Some(end) if t.window_open(now) => {
            let left = end - now;
            let left = if left.num_minutes() < 60 {
                plural(left.num_minutes().max(1), "minute", "minutes")
            } else {
                plural(left.num_hours(), "hour", "hours")
            };
            format!(
                "{} wrote to the clinic on WhatsApp, so a document can be sent until {} ({left} left).",
                t.name,
                local(end, clinic.time_zone, "%-d %b at %H:%M")
            )
        }
        _ => format!(
            "WhatsApp lets the clinic send a document only within 24 hours of {}'s own message.",
            t.name
        ),
    }
}

/// Why the form is not shown.
fn closed_sentence(clinic: &Clinic, t: &DocumentTarget) -> String {
    match t.window_end {
        Some(end) => format!(
            "No document can be sent now: {}'s last WhatsApp message was more than 24 hours ago (the time to answer it ended {}). Ask them to send the clinic a message on WhatsApp first, or give them the paper form.",
            t.name,
            local(end, clinic.time_zone, "%-d %b at %H:%M")
        ),
        None => format!(
            "No document can be sent: {} has not written to the clinic on WhatsApp. Ask them to send the clinic a message first, or give them the paper form.",
            t.name
        ),
    }
}

/// A message's state in receptionists' words.
fn state_words(state: OutboxState) -> &'static str {
    match state {
        OutboxState::Pending | OutboxState::Sending => "Waiting to go",
        OutboxState::Sent => "Sent",
        OutboxState::Delivered => "Delivered",
        OutboxState::Read => "Read",
        OutboxState::Failed => "Not delivered",
        OutboxState::Unknown => "Not known whether it went",
        OutboxState::Skipped | OutboxState::Expired => "Not sent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_window_says_why_and_what_to_do_instead() {
        let config = crate::config::Config::example().expect("example");
        let clinic = config.clinics.values().next().expect("clinic");
        let end = DateTime::parse_from_rfc3339("2026-11-28T04:30:00Z")
            .expect("time")
            .to_utc();
        let t = DocumentTarget {
            patient_id: 1,
            name: "Aarav Sharma".into(),
            clinic: clinic.key.clone(),
            window_end: Some(end),
            opted_out: false,
        };
        let s = closed_sentence(clinic, &t);
        assert!(s.contains("more than 24 hours ago"), "{s}");
        assert!(s.contains("paper form"), "{s}");
        assert!(!t.window_open(end));
        assert!(t.window_open(end - chrono::Duration::minutes(1)));
        let open = window_sentence(clinic, &t, end - chrono::Duration::minutes(90));
        assert!(open.contains("(1 hour left)"), "{open}");
    }
}
