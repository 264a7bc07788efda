//! The second page before a desk status that needs a question (no-show, cancel) or a note,
//! and the page that says why a status was refused.

use super::day::{BoardFilter, clock};
use super::{BoardRow, Clinic, Markup, NaiveDate, SignedIn, html, local, page};
use crate::desk::urlencode;
use crate::model::StaffAction;

/// The day board the page came from, at the appointment's row.
pub fn board_at(clinic: &str, day: NaiveDate, filter: &BoardFilter, row: i64) -> String {
    format!(
        "/desk/day?clinic={}&date={}{}#a-{row}",
        urlencode(clinic),
        day.format("%Y-%m-%d"),
        filter.query()
    )
}

/// "Aarav Sharma, Thursday 26 November at 09:00 with Dr. Mehta".
fn appointment(clinic: &Clinic, r: &BoardRow) -> String {
    let zone = clinic.time_zone;
    let with = r
        .provider
        .as_deref()
        .map(|p| format!(" with {p}"))
        .unwrap_or_default();
    format!(
        "{}, {} at {}{with}",
        r.patient_name,
        local(r.starts_at, zone, "%A %-d %B"),
        local(r.starts_at, zone, clock(clinic))
    )
}

/// Why a no-show cannot be set yet, naming the appointment.
pub fn too_early(clinic: &Clinic, r: &BoardRow) -> String {
    let zone = clinic.time_zone;
    format!(
        "{}'s appointment on {} at {} has not started yet. A no-show can be set once its time has passed; until then the patient may still come.",
        r.patient_name,
        local(r.starts_at, zone, "%A %-d %B"),
        local(r.starts_at, zone, clock(clinic))
    )
}

/// Asks before a no-show or a cancellation (what it means, what else to change), or takes a
/// note; the form posts the status with the note, the link goes back changing nothing.
pub fn status_confirm(
    session: &SignedIn,
    clinic: &Clinic,
    r: &BoardRow,
    action: StaffAction,
    day: NaiveDate,
    filter: &BoardFilter,
) -> Markup {
    let what = appointment(clinic, r);
    let (title, explain, button) = match action {
        StaffAction::NoShow => (
            "Set a no-show?",
            "The patient did not come. It counts in the no-show figures. Mark it as a no-show in the practice system too.",
            "Set no-show",
        ),
        StaffAction::Cancelled => (
            "Cancel this appointment?",
            "Reminders not sent yet will not be sent. Cancel it in the practice system too, or the next upload will book it again.",
            "Cancel the appointment",
        ),
        _ => (
            "Add a note",
            "Colleagues see the note on the day board, on the follow-up list and on the patient's page, with your name and the time.",
            "Save the note",
        ),
    };
    let back = board_at(&clinic.key, day, filter, r.id);
    let note_label = if action == StaffAction::Note {
        "Note"
    } else {
        "Note (optional)"
    };
    page(
        title,
        Some(session),
        "Day",
        &html! {
            p.lead { strong { (what) } " (" (clinic.display_name) ")" }
            p { (explain) }
            form.card method="post" action="/desk/day/status" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="row" value=(r.id);
                input type="hidden" name="action" value=(action.as_str());
                input type="hidden" name="date" value=(day.format("%Y-%m-%d"));
                @if let Some(d) = &filter.doctor { input type="hidden" name="doctor" value=(d); }
                @if filter.unanswered { input type="hidden" name="unanswered" value="1"; }
                p {
                    label for="note" { (note_label) }
                    input #note type="text" name="note" maxlength="500" required[action == StaffAction::Note] placeholder="e.g. phoned, will come next week";
                }
                div.actions {
                    button.primary type="submit" { (button) }
                    a href=(back) { "Back to the day board, change nothing" }
                }
            }
        },
    )
}

/// Why a status was not set (too early for a no-show, nothing to undo), and the way back.
pub fn status_refused(session: &SignedIn, title: &str, why: &str, back: &str) -> Markup {
    page(
        title,
        Some(session),
        "Day",
        &html! {
            p.error role="alert" { (why) }
            p { a href=(back) { "Back to the day board" } }
        },
    )
}
