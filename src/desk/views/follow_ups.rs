//! The follow-up list: who to call, why, and what staff did.

use super::{
    BoardRow, Clinic, Config, FollowUp, Markup, NaiveDate, Session, day_picker, html, local, page,
    phone_cell,
};

/// Follow-ups with their actions.
pub fn follow_ups(
    session: &Session,
    config: &Config,
    clinic: &Clinic,
    day: NaiveDate,
    rows: &[(FollowUp, Option<BoardRow>)],
    revealed: Option<i64>,
    done: Option<&str>,
) -> Markup {
    let zone = clinic.time_zone;
    let title = format!(
        "Follow-ups — {}, {}",
        clinic.display_name,
        day.format("%A %-d %B")
    );
    page(
        &title,
        Some(session),
        "Follow-ups",
        &html! {
            @if let Some(d) = done {
                p.ok role="status" { "Saved: " (d) "." }
            }
            (day_picker(config, clinic, day, "/desk/follow-ups"))
            @if rows.is_empty() {
                p.notice { "Nobody to call for this day." }
            }
            @for (f, b) in rows {
                section.card aria-labelledby={ "f-" (f.appointment_id) } {
                    h2 #{ "f-" (f.appointment_id) } { (local(f.starts_at, zone, "%H:%M")) " · " (f.patient_name) small { " (" (f.appointment_id) ")" } }
                    ul { @for r in &f.reasons { li { (r) } } }
                    @if let Some(b) = b {
                        p { "Phone: " (phone_cell(session, clinic, day, b.id, &f.phone, revealed == Some(b.id), "follow-ups")) }
                        @if let Some(n) = b.notes.first() { p.hint { "Last note: " (super::day::note_words(n)) } }
                    }
                    form.action method="post" action="/desk/follow-ups/action" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="clinic" value=(clinic.key);
                        input type="hidden" name="appointment" value=(f.appointment_id);
                        input type="hidden" name="date" value=(day.format("%Y-%m-%d"));
                        label for={ "a-" (f.appointment_id) } { "Action" }
                        select #{ "a-" (f.appointment_id) } name="action" {
                            option value="called" { "Mark called" }
                            option value="confirmed" { "Set confirmed" }
                            option value="cancelled" { "Set cancelled" }
                            option value="no_show" { "Set no-show" }
                            option value="note" { "Add a note only" }
                        }
                        label for={ "n-" (f.appointment_id) } { "Note" }
                        input #{ "n-" (f.appointment_id) } type="text" name="note" maxlength="500" placeholder="e.g. will come at 11:00";
                        button type="submit" { "Save" }
                    }
                }
            }
        },
    )
}
