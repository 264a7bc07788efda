//! Replies that need a person.

use super::{Markup, ReplyView, Session, html, mask, page};

/// Replies waiting for a person.
pub fn replies(session: &Session, rows: &[ReplyView], done: Option<&str>) -> Markup {
    page(
        "Replies that need a person",
        Some(session),
        "Replies",
        &html! {
            @if let Some(d) = done {
                p.ok role="status" { (d) "." }
            }
            @if rows.is_empty() {
                p.notice { "No replies are waiting." }
            }
            @for r in rows {
                section.card {
                    h2 { (r.patient_name.as_deref().unwrap_or("Unknown number")) " · " (mask(&r.from)) }
                    blockquote { (r.text.as_deref().unwrap_or(&r.kind)) }
                    p.hint {
                        "Received " (r.received_at)
                        @if let (Some(c), Some(a)) = (&r.clinic, &r.appointment_id) { " · appointment " (c) "/" (a) }
                        @if let Some(why) = &r.reason { " · " (why) }
                    }
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
