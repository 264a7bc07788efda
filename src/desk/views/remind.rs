//! "Remind now": the button that sends one patient's reminder on demand, the page of one
//! patient's reminder, and the page that reminds a day's unanswered patients at once.

use chrono::{DateTime, Utc};

use super::{Clinic, Markup, NaiveDate, SignedIn, html, local, page, response_word};
use crate::model::OutboxState;
use crate::plan::{Manual, NotNow, clock_time};
use crate::store::{ManualSent, RemindTarget};

/// The small form whose "Remind now" button sends one patient's reminder. `nonce` is the
/// press's one-time token (`pages::remind_nonce`, one per page shown, the same for every row):
/// the same form sent twice (a double click, Back and send again, a retry) sends one reminder.
pub fn remind_form(session: &SignedIn, clinic: &str, appointment: &str, nonce: &str) -> Markup {
    html! {
        form.inline method="post" action="/desk/remind" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="clinic" value=(clinic);
            input type="hidden" name="appointment" value=(appointment);
            input type="hidden" name="nonce" value=(nonce);
            button.small type="submit" { "Remind now" }
        }
    }
}

/// A link to the page that reminds all of tomorrow's unanswered patients of a clinic (it
/// shows how many, and asks before it sends).
pub fn remind_all_link(clinic: &str) -> Markup {
    html! {
        a href={ "/desk/remind?clinic=" (clinic) } { "Remind tomorrow's unanswered patients" }
    }
}

/// What a press did, read back from the store by its nonce after the redirect.
#[derive(Debug, Clone, Copy)]
pub struct Done<'a> {
    /// The reminders the press asked for.
    pub rows: &'a [ManualSent],
    /// The press had been received before: this time nothing new was made.
    pub again: bool,
}

/// One patient's "Remind now" page: the appointment, the last reminder sent from the desk,
/// and the button, or the sentence that says why none can be sent.
pub fn remind_one(
    session: &SignedIn,
    clinic: &Clinic,
    target: &RemindTarget,
    decision: &Result<Manual, NotNow>,
    now: DateTime<Utc>,
    nonce: &str,
    done: Option<Done<'_>>,
) -> Markup {
    let a = &target.candidate;
    let day = a.starts_at.with_timezone(&clinic.time_zone).date_naive();
    page(
        &format!("Remind {} now", target.patient_name),
        Some(session),
        "",
        &html! {
            @if let Some(d) = done {
                (done_notice(clinic, d, now))
            }
            section.card aria-label="The appointment" {
                p { strong { (target.patient_name) } }
                p { (appointment(clinic, target)) }
                p { "Patient's answer: " span.badge.(format!("r-{}", a.response)) { (response_word(a.response.as_str())) } }
                p.hint { (last_line(clinic, target.last.as_ref(), now)) }
                @match decision {
                    Err(why) => { p.error role="alert" { (why.sentence(clinic)) } }
                    Ok(m) => {
                        p { (when(clinic, m.send_at, now)) " It uses the clinic's usual reminder message." }
                        (remind_form(session, &clinic.key, &target.appointment_id, nonce))
                    }
                }
            }
            p.actions {
                a href={ "/desk/day?clinic=" (clinic.key) "&date=" (day.format("%Y-%m-%d")) } { "Back to the day" }
                (remind_all_link(&clinic.key))
            }
        },
    )
}

/// The page that reminds every unanswered patient of a clinic's day at once: how many, who,
/// and the button that confirms it.
pub fn remind_all(
    session: &SignedIn,
    clinic: &Clinic,
    day: NaiveDate,
    rows: &[(RemindTarget, Result<Manual, NotNow>)],
    now: DateTime<Utc>,
    nonce: &str,
    done: Option<Done<'_>>,
) -> Markup {
    let date = day.format("%A %-d %B %Y").to_string();
    let ready: Vec<&Manual> = rows.iter().filter_map(|(_, d)| d.as_ref().ok()).collect();
    let n = ready.len();
    page(
        &format!("Remind the unanswered — {}, {date}", clinic.display_name),
        Some(session),
        "",
        &html! {
            @if let Some(d) = done {
                (done_notice(clinic, d, now))
            }
            @if rows.is_empty() {
                p.notice { "Every patient with an appointment on " (date) " has answered, or cannot get WhatsApp messages: nobody to remind." }
            } @else {
                p.summary { (count(rows.len(), "patient has", "patients have")) " not answered yet for " (date) "." }
                div.scroll {
                    table {
                        caption.visually-hidden { "Unanswered appointments in time order" }
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Patient" } th scope="col" { "With" } th scope="col" { "Reminder from the desk" } } }
                        tbody {
                            @for (t, d) in rows {
                                tr {
                                    td { (clock_time(t.candidate.starts_at, clinic)) }
                                    td { (t.patient_name) }
                                    td { (t.provider.as_deref().unwrap_or("")) }
                                    td {
                                        @match d {
                                            Err(why) => { span.badge.warn { "not sent" } " " (why.sentence(clinic)) }
                                            Ok(_) => { (last_line(clinic, t.last.as_ref(), now)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(first) = ready.first() {
                    p { (when(clinic, first.send_at, now)) " Each gets the clinic's usual reminder message." }
                    form.action method="post" action="/desk/remind/all" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="clinic" value=(clinic.key);
                        input type="hidden" name="date" value=(day.format("%Y-%m-%d"));
                        input type="hidden" name="nonce" value=(nonce);
                        button.primary type="submit" { "Send " (count(n, "reminder", "reminders")) }
                    }
                }
            }
            p.actions {
                a href={ "/desk/day?clinic=" (clinic.key) "&date=" (day.format("%Y-%m-%d")) } { "Back to the day" }
            }
        },
    )
}

/// "Thursday 26 November, 09:00 IST with Dr. Mehta · Sunrise Family Clinic, Andheri".
fn appointment(clinic: &Clinic, t: &RemindTarget) -> String {
    let start = t.candidate.starts_at;
    let with = t
        .provider
        .as_deref()
        .map(|p| format!(" with {p}"))
        .unwrap_or_default();
    format!(
        "{}, {}{with} · {}",
        local(start, clinic.time_zone, "%A %-d %B"),
        clock_time(start, clinic),
        clinic.display_name
    )
}

/// When a reminder asked for now goes.
fn when(clinic: &Clinic, send_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if send_at > now {
        format!(
            "It is quiet hours at the clinic: it will go at {}, when they end.",
            clock_time(send_at, clinic)
        )
    } else {
        "It goes out within a minute.".to_string()
    }
}

/// "Last reminder from the desk: asked for by asha on Wednesday 25 November at 18:02 IST;
/// delivered."
fn last_line(clinic: &Clinic, last: Option<&ManualSent>, now: DateTime<Utc>) -> String {
    let Some(m) = last else {
        return "No reminder has been sent from the desk for this appointment yet.".to_string();
    };
    format!(
        "Last reminder from the desk: asked for{} on {} at {}; {}.",
        who(m.by.as_deref()),
        local(m.requested_at, clinic.time_zone, "%A %-d %B"),
        clock_time(m.requested_at, clinic),
        state(clinic, m, now)
    )
}

/// " by asha", " by the administrator (root)", or nothing.
fn who(actor: Option<&str>) -> String {
    match actor.and_then(|a| a.split_once(':')) {
        Some(("staff", name)) => format!(" by {name}"),
        Some(("admin", name)) => format!(" by the administrator ({name})"),
        _ => String::new(),
    }
}

/// Where a manual reminder is, in words.
fn state(clinic: &Clinic, m: &ManualSent, now: DateTime<Utc>) -> String {
    let detail = m.detail.as_deref().unwrap_or("no reason given");
    match m.state {
        OutboxState::Pending if m.send_at > now => format!(
            "it waits for quiet hours to end and goes at {}",
            clock_time(m.send_at, clinic)
        ),
        OutboxState::Pending | OutboxState::Sending => "it is going out".into(),
        OutboxState::Sent => m.sent_at.map_or_else(
            || "sent".to_string(),
            |t| format!("sent at {}", clock_time(t, clinic)),
        ),
        OutboxState::Delivered => "delivered to the patient's phone".into(),
        OutboxState::Read => "read by the patient".into(),
        OutboxState::Failed => format!("not delivered: {detail}"),
        OutboxState::Unknown => "sent, but whether it arrived is not known yet".into(),
        OutboxState::Skipped => format!("not sent: {detail}"),
        OutboxState::Expired => "not sent in time".into(),
    }
}

/// What the press just did.
fn done_notice(clinic: &Clinic, d: Done<'_>, now: DateTime<Utc>) -> Markup {
    let n = d.rows.len();
    let by = d
        .rows
        .first()
        .map(|m| who(m.by.as_deref()))
        .unwrap_or_default();
    let waits = d.rows.iter().map(|m| m.send_at).filter(|t| *t > now).max();
    html! {
        p.ok role="status" {
            @if d.again {
                "This press had already been received: no second reminder was sent. "
            }
            @if n == 0 {
                "No reminder was sent: nobody was left to remind."
            } @else {
                (count(n, "reminder", "reminders")) " asked for" (by) ". "
                @match waits {
                    Some(t) => { "It is quiet hours at the clinic: " (if n == 1 { "it goes" } else { "they go" }) " at " (clock_time(t, clinic)) "." }
                    None => { (if n == 1 { "It goes" } else { "They go" }) " out within a minute." }
                }
            }
        }
    }
}

/// "1 reminder", "7 reminders": never "reminder(s)".
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{Response, Status};
    use crate::plan::Candidate;
    use crate::time::parse_instant;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_instant(s).expect("instant")
    }

    fn target(last: Option<ManualSent>) -> RemindTarget {
        RemindTarget {
            candidate: Candidate {
                id: 3,
                clinic: "mumbai".into(),
                starts_at: utc("2026-11-26T03:30:00Z"),
                created_at: utc("2026-11-25T12:00:00Z"),
                status: Status::Booked,
                response: Response::None,
                opted_out: false,
                reach: crate::plan::Reach::default(),
            },
            appointment_id: "MUM-1001".into(),
            provider: Some("Dr. Mehta".into()),
            patient_name: "Aarav <b>Sharma</b>".into(),
            last,
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
    fn the_page_names_the_appointment_the_last_reminder_and_when_the_next_goes() {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic("mumbai").expect("mumbai");
        let evening = utc("2026-11-25T12:30:00Z");
        let sent = ManualSent {
            id: 9,
            appointment: 3,
            requested_at: utc("2026-11-25T12:32:00Z"),
            by: Some("staff:asha".into()),
            state: OutboxState::Delivered,
            send_at: utc("2026-11-25T12:32:00Z"),
            sent_at: Some(utc("2026-11-25T12:32:05Z")),
            detail: None,
        };
        let t = target(Some(sent));
        let quiet = utc("2026-11-25T17:30:00Z");
        let decision = crate::plan::manual(&config, &t.candidate, quiet);
        let html = remind_one(&session(), clinic, &t, &decision, quiet, "ab12", None).into_string();
        for text in [
            "Aarav &lt;b&gt;Sharma&lt;/b&gt;",
            "Thursday 26 November, 09:00 IST with Dr. Mehta · Sunrise Family Clinic, Andheri",
            "Last reminder from the desk: asked for by asha on Wednesday 25 November at 18:02 IST; delivered to the patient's phone.",
            "it will go at 08:00 IST, when they end.",
            "name=\"nonce\" value=\"ab12\"",
        ] {
            assert!(html.contains(text), "{text:?} missing from:\n{html}");
        }
        let mut cancelled = target(None);
        cancelled.candidate.status = Status::Cancelled;
        let decision = crate::plan::manual(&config, &cancelled.candidate, evening);
        let html = remind_one(
            &session(),
            clinic,
            &cancelled,
            &decision,
            evening,
            "ab12",
            None,
        )
        .into_string();
        assert!(html.contains("This appointment is cancelled, so no reminder can be sent."));
        assert!(
            !html.contains("Remind now</button>"),
            "no button for a cancelled slot"
        );
    }

    #[test]
    fn the_all_page_counts_without_plurals_and_confirms_with_one_button() {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic("mumbai").expect("mumbai");
        let now = utc("2026-11-25T12:30:00Z");
        let t = target(None);
        let d = crate::plan::manual(&config, &t.candidate, now);
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let html = remind_all(&session(), clinic, day, &[(t, d)], now, "ab12", None).into_string();
        assert!(html.contains("1 patient has not answered yet for Thursday 26 November 2026."));
        assert!(html.contains("Send 1 reminder</button>"));
        assert!(!html.contains("(s)"));
        let none = remind_all(&session(), clinic, day, &[], now, "ab12", None).into_string();
        assert!(none.contains("nobody to remind") && !none.contains("Send "));
    }
}
