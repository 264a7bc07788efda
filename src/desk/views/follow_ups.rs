//! Follow-ups: everyone to call now, across clinics and the coming days, grouped by day, with
//! what staff did about each call.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Config, Markup, SignedIn, html, local, mask, page, plural};
use crate::store::{BookTask, Call, CallOutcome, FollowUp, Note, PracticeUpdate};

/// What the list shows: one clinic or all (`None`), one local day or each clinic's today and
/// the `days` after it (`None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// A clinic key.
    pub clinic: Option<String>,
    /// A local day.
    pub day: Option<NaiveDate>,
    /// `desk.follow_up_days`.
    pub days: u32,
}

impl ListFilter {
    /// The filter as a query (`clinic=…&date=…`, empty values for "all" and "the coming
    /// days"), for links and redirects back to the same list.
    pub fn query(&self) -> String {
        format!(
            "clinic={}&date={}",
            self.clinic.as_deref().unwrap_or_default(),
            self.day
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        )
    }
}

/// One person to call.
#[derive(Debug, Clone)]
pub struct FollowUpCard {
    /// The appointment and why to call.
    pub item: FollowUp,
    /// The latest calls, newest first.
    pub calls: Vec<Call>,
    /// Every staff note about the appointment, newest first (calls are in `calls`).
    pub notes: Vec<Note>,
    /// Show the number whole (after an audited reveal).
    pub revealed: bool,
}

/// What the Follow-ups page lists: people to call, and changes to make by hand in the
/// practice system (a patient's answer the practice system could not be told of).
#[derive(Debug, Clone, Copy)]
pub struct FollowUpLists<'a> {
    /// People to call, in time order.
    pub calls: &'a [FollowUpCard],
    /// Practice-system updates, oldest first.
    pub practice: &'a [PracticeUpdate],
    /// The held waitlist openings among them (`book` updates), by update.
    pub books: &'a [BookTask],
}

/// The text of a practice-system `?done=` key, if it is one.
pub fn practice_notice(key: &str) -> Option<&'static str> {
    match key {
        "practice_done" => Some("marked as done in the practice system"),
        "practice_already" => Some("this was already marked as done in the practice system"),
        _ => None,
    }
}

/// The text of a call's `?done=` key (`call_reached`, ...), if it is one.
pub fn call_notice(key: &str) -> Option<&'static str> {
    let outcome = CallOutcome::parse(key.strip_prefix("call_")?)?;
    Some(match outcome {
        CallOutcome::Reached => "call saved: reached. The patient is off the list",
        CallOutcome::NoAnswer => "call saved: no answer. The patient stays on the list",
        CallOutcome::LeftMessage => "call saved: left a message",
    })
}

/// "today", "tomorrow" or nothing, for a local day seen from the clinic's today.
fn relative(day: NaiveDate, today: NaiveDate) -> Option<&'static str> {
    if day == today {
        Some("Today")
    } else if today.succ_opt() == Some(day) {
        Some("Tomorrow")
    } else {
        None
    }
}

/// How far the list reaches, in words: "today, tomorrow or the day after".
fn reach(days: u32) -> String {
    match days {
        0 => "today".into(),
        1 => "today or tomorrow".into(),
        2 => "today, tomorrow or the day after".into(),
        n => format!("today or in the next {n} days"),
    }
}

/// The follow-up list.
pub fn follow_ups(
    session: &SignedIn,
    config: &Config,
    filter: &ListFilter,
    lists: &FollowUpLists<'_>,
    done: Option<&str>,
    now: DateTime<Utc>,
) -> Markup {
    let cards = lists.calls;
    let clinic = filter.clinic.as_deref().and_then(|k| config.clinic(k));
    let at = clinic.map_or(String::new(), |c| format!(" at {}", c.display_name));
    let scope = match filter.day {
        Some(d) => format!("on {}{at}", d.format("%A %-d %B %Y")),
        None if clinic.is_some() => format!("{}{at}", reach(filter.days)),
        None => format!("{}, at every clinic", reach(filter.days)),
    };
    // Cards in time order, grouped by their clinic's local day.
    let mut groups: Vec<(NaiveDate, Vec<&FollowUpCard>)> = Vec::new();
    for card in cards {
        let zone = config
            .clinic(&card.item.clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        let day = card.item.starts_at.with_timezone(&zone).date_naive();
        match groups.iter_mut().find(|(d, _)| *d == day) {
            Some((_, g)) => g.push(card),
            None => groups.push((day, vec![card])),
        }
    }
    groups.sort_by_key(|(d, _)| *d);
    page(
        "Follow-ups",
        Some(session),
        "Follow-ups",
        &html! {
            @if let Some(d) = done {
                p.ok role="status" { "Saved: " (d) "." }
            }
            form.filters method="get" action="/desk/follow-ups" {
                label for="clinic" { "Clinic" }
                select #clinic name="clinic" {
                    option value="" selected[clinic.is_none()] { "All clinics" }
                    @for c in config.clinics.values() {
                        option value=(c.key) selected[clinic.is_some_and(|s| s.key == c.key)] { (c.display_name) }
                    }
                }
                label for="date" { "Day" }
                input #date type="date" name="date" value=[filter.day.map(|d| d.format("%Y-%m-%d").to_string())];
                button type="submit" { "Show" }
                @if let Some(day) = filter.day {
                    @let clinic_key = filter.clinic.as_deref().unwrap_or_default();
                    a href={ "/desk/follow-ups?clinic=" (clinic_key) "&date=" (day.pred_opt().unwrap_or(day).format("%Y-%m-%d")) } { "← Previous day" }
                    a href={ "/desk/follow-ups?clinic=" (clinic_key) "&date=" (day.succ_opt().unwrap_or(day).format("%Y-%m-%d")) } { "Next day →" }
                    a href={ "/desk/follow-ups?clinic=" (clinic_key) } { "Everyone to call now" }
                }
            }
            @if !lists.practice.is_empty() {
                h2 { "To change in the practice system" }
                p.summary { (plural(lists.practice.len(), "change", "changes")) " reminderd could not make in the practice system itself: make each by hand, then press Done." }
                @for p in lists.practice {
                    (practice_card(session, config, filter, p, lists.books.iter().find(|b| b.update_id == p.update.id)))
                }
            }
            @if cards.is_empty() {
                p.notice { "Nobody to call " (scope) "." }
            } @else {
                p.summary { (plural(cards.len(), "person", "people")) " to call " (scope) "." }
            }
            @for (day, group) in &groups {
                @let labels: Vec<Option<&str>> = group.iter().map(|c| {
                    let zone = config.clinic(&c.item.clinic).map_or(chrono_tz::UTC, |k| k.time_zone);
                    relative(*day, now.with_timezone(&zone).date_naive())
                }).collect();
                h2 {
                    @if let Some(Some(l)) = labels.first().filter(|l| labels.iter().all(|x| x == *l)) { (l) ", " }
                    (day.format("%A %-d %B"))
                }
                @for card in group {
                    (follow_up_card(session, config, filter, card, now))
                }
            }
        },
    )
}

/// The question before a cancel or no-show set from a follow-up card: the card's form again,
/// with its answer "yes", or back to the list.
pub fn confirm_change(session: &SignedIn, no_show: bool, fields: &[(&str, &str)]) -> Markup {
    let (title, text, yes) = if no_show {
        (
            "Set no-show?",
            "The appointment will be marked as a no-show: the patient did not come. Undo on the day board puts it back.",
            "Yes, set no-show",
        )
    } else {
        (
            "Cancel the appointment?",
            "The appointment will be cancelled and the patient will get no more reminders for it. Cancel it in the practice system too, or the next upload books it again. Undo on the day board puts it back.",
            "Yes, cancel it",
        )
    };
    page(
        title,
        Some(session),
        "Follow-ups",
        &html! {
            p.notice { (text) }
            form.card method="post" action="/desk/follow-ups/action" {
                input type="hidden" name="csrf" value=(session.csrf);
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button.primary type="submit" { (yes) }
                " "
                a href="/desk/follow-ups" { "No, back to the list" }
            }
        },
    )
}

/// A patient's answer the practice system must be told of by hand.
fn practice_card(
    session: &SignedIn,
    config: &Config,
    filter: &ListFilter,
    p: &PracticeUpdate,
    book: Option<&BookTask>,
) -> Markup {
    let u = &p.update;
    let clinic = config.clinic(&u.clinic);
    let (zone, name, date_format, time_format) = clinic.map_or(
        (chrono_tz::UTC, u.clinic.as_str(), "%A %-d %B", "%H:%M"),
        |c| {
            (
                c.time_zone,
                c.display_name.as_str(),
                c.date_format.as_str(),
                c.time_format.as_str(),
            )
        },
    );
    // A held opening: the card is about the opening's time, not the appointment it replaces.
    let (starts_at, provider) = book.map_or((p.starts_at, p.provider.as_deref()), |b| {
        (b.starts_at, b.provider.as_deref())
    });
    let time = local(starts_at, zone, time_format);
    let what = match (u.action.as_str(), book) {
        ("cancel", _) => {
            "Cancelled by the patient in reminderd — cancel it in the practice system too".into()
        }
        (_, Some(b)) => {
            let with = b
                .provider
                .as_ref()
                .map(|d| format!(" with {d}"))
                .unwrap_or_default();
            let instead = b
                .replaces
                .map(|r| {
                    format!(
                        " in place of their appointment on {} at {}",
                        local(r, zone, date_format),
                        local(r, zone, time_format)
                    )
                })
                .unwrap_or_default();
            let hold = b
                .hold_expires_at
                .map(|h| format!("; hold expires {}", local(h, zone, time_format)))
                .unwrap_or_default();
            format!(
                "Book {} into {}, {time}{with}{instead}{hold}",
                b.patient_name,
                local(b.starts_at, zone, "%a %-d %b")
            )
        }
        ("book", None) => {
            "A waitlist booking whose hold has ended — check the practice system".into()
        }
        _ => "Confirmed by the patient in reminderd — confirm it in the practice system too".into(),
    };
    let place = if book.is_some() {
        String::new()
    } else {
        format!(" · appointment {} in the practice system", u.external_id)
    };
    html! {
        section.card.follow-up #{ "p-" (u.id) } aria-labelledby={ "ph-" (u.id) } {
            h3 #{ "ph-" (u.id) } { (time) " · " (super::patient::patient_link_for_appointment(u.appointment_id, &p.patient_name)) }
            p.when {
                (local(starts_at, zone, date_format)) " at " (time)
                @if let Some(d) = provider { " with " (d) }
                " · " (name) (place)
            }
            ul.reasons { li { (what) } }
            @if let Some(e) = &u.error {
                @if book.is_some() {
                    p.why { (e) }
                } @else {
                    p.why { "Why reminderd could not do it: " (e) }
                }
            }
            form.inline method="post" action="/desk/follow-ups/practice-done" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="update" value=(u.id);
                input type="hidden" name="list_clinic" value=(filter.clinic.as_deref().unwrap_or_default());
                input type="hidden" name="list_date" value=(filter.day.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
                button type="submit" aria-label={ "Done in the practice system for " (p.patient_name) } { "Done in the practice system" }
            }
        }
    }
}

fn follow_up_card(
    session: &SignedIn,
    config: &Config,
    filter: &ListFilter,
    card: &FollowUpCard,
    now: DateTime<Utc>,
) -> Markup {
    let f = &card.item;
    let clinic = config.clinic(&f.clinic);
    let (zone, name, date_format, time_format) = clinic.map_or(
        (chrono_tz::UTC, f.clinic.as_str(), "%A %-d %B", "%H:%M"),
        |c| {
            (
                c.time_zone,
                c.display_name.as_str(),
                c.date_format.as_str(),
                c.time_format.as_str(),
            )
        },
    );
    let day = f.starts_at.with_timezone(&zone).date_naive();
    let today = now.with_timezone(&zone).date_naive();
    let time = local(f.starts_at, zone, time_format);
    let id = f.id;
    // Calls are listed under Calls with their outcome; every other note is listed here.
    let notes: Vec<&Note> = card.notes.iter().filter(|n| n.action != "called").collect();
    html! {
        section.card.follow-up #{ "f-" (id) } aria-labelledby={ "fh-" (id) } {
            h3 #{ "fh-" (id) } { (time) " · " (super::patient::patient_link_for_appointment(id, &f.patient_name)) }
            p.when {
                @if let Some(r) = relative(day, today) { (r) ", " }
                (local(f.starts_at, zone, date_format)) " at " (time)
                @if let Some(p) = &f.provider { " with " (p) }
                " · " (name)
            }
            ul.reasons { @for r in &f.reasons { li { (r) } } }
            // A form may not sit inside a paragraph: browsers would close the paragraph first.
            div.phone-line {
                "Phone: "
                @if card.revealed {
                    a.phone href={ "tel:" (f.phone) } { (f.phone) }
                } @else {
                    form.inline method="post" action="/desk/reveal" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="appointment" value=(id);
                        input type="hidden" name="clinic" value=(filter.clinic.as_deref().unwrap_or_default());
                        input type="hidden" name="date" value=(filter.day.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
                        input type="hidden" name="back" value="follow-ups";
                        span.phone { (mask(&f.phone)) " " }
                        button.small type="submit" aria-label={ "Show the whole number of " (f.patient_name) } { "Show" }
                    }
                }
            }
            @if !card.calls.is_empty() {
                div.calls {
                    h4 { "Calls" }
                    ul {
                        @for c in &card.calls {
                            li {
                                strong { (c.outcome.map_or("called", CallOutcome::words)) }
                                " — " (c.by) ", " (local(c.at, zone, "%-d %b")) " " (local(c.at, zone, time_format))
                                @if let Some(n) = &c.note { ": " (n) }
                            }
                        }
                    }
                }
            }
            @if !notes.is_empty() {
                div.notes {
                    h4 { "Notes" }
                    ul.notes {
                        @for n in &notes {
                            li { (local(n.at, zone, "%-d %b")) " " (local(n.at, zone, time_format)) " " (super::day::note_words(n)) }
                        }
                    }
                }
            }
            form.call method="post" action="/desk/follow-ups/call" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="appointment" value=(id);
                input type="hidden" name="list_clinic" value=(filter.clinic.as_deref().unwrap_or_default());
                input type="hidden" name="list_date" value=(filter.day.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
                label for={ "cn-" (id) } { "Call note" }
                input #{ "cn-" (id) } type="text" name="note" maxlength="500" placeholder="optional, e.g. will come at 11:00";
                span.outcomes role="group" aria-label={ "Call outcome for " (f.patient_name) } {
                    @for o in CallOutcome::ALL {
                        button type="submit" name="outcome" value=(o.as_str()) {
                            @match o {
                                CallOutcome::Reached => "Reached",
                                CallOutcome::NoAnswer => "No answer",
                                CallOutcome::LeftMessage => "Left a message",
                            }
                        }
                    }
                }
            }
            form.action method="post" action="/desk/follow-ups/action" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="clinic" value=(f.clinic);
                input type="hidden" name="appointment" value=(f.appointment_id);
                input type="hidden" name="date" value=(day.format("%Y-%m-%d"));
                input type="hidden" name="list_clinic" value=(filter.clinic.as_deref().unwrap_or_default());
                input type="hidden" name="list_date" value=(filter.day.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default());
                label for={ "a-" (id) } { "Change" }
                select #{ "a-" (id) } name="action" {
                    option value="confirmed" { "Set confirmed" }
                    option value="cancelled" { "Set cancelled" }
                    option value="no_show" { "Set no-show" }
                    option value="note" { "Add a note only" }
                }
                label for={ "n-" (id) } { "Note" }
                input #{ "n-" (id) } type="text" name="note" maxlength="500";
                button type="submit" { "Save" }
            }
            p.no-print {
                a href={ "/desk/remind?clinic=" (crate::desk::urlencode(&f.clinic)) "&appointment=" (crate::desk::urlencode(&f.appointment_id)) } { "Send the reminder again now" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::time::parse_instant(s).expect("instant")
    }

    fn card(id: i64, clinic: &str, starts: &str, name: &str) -> FollowUpCard {
        FollowUpCard {
            item: FollowUp {
                id,
                appointment_id: format!("A-{id}"),
                clinic: clinic.into(),
                starts_at: at(starts),
                patient_name: name.into(),
                phone: "+919876543210".into(),
                provider: Some("Dr. Mehta".into()),
                reasons: vec!["no answer after all reminders".into()],
            },
            calls: Vec::new(),
            notes: Vec::new(),
            revealed: false,
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
    fn the_list_groups_by_day_names_clinics_and_uses_each_clinics_clock() {
        let config = Config::example().expect("shipped config");
        let now = at("2026-11-25T12:00:00Z");
        let mut nyc = card(2, "nyc", "2026-11-26T19:00:00Z", "Emily Johnson");
        nyc.calls.push(Call {
            at: at("2026-11-25T14:05:00Z"),
            by: "asha".into(),
            outcome: Some(CallOutcome::NoAnswer),
            note: None,
        });
        let cards = [
            card(1, "mumbai", "2026-11-26T05:00:00Z", "Priya Patil"),
            nyc,
        ];
        let filter = ListFilter {
            days: 2,
            ..ListFilter::default()
        };
        let lists = FollowUpLists {
            calls: &cards,
            practice: &[],
            books: &[],
        };
        let html = follow_ups(&session(), &config, &filter, &lists, None, now).into_string();
        assert!(
            html.contains("2 people to call today, tomorrow or the day after, at every clinic")
        );
        assert!(html.contains("Tomorrow, Thursday 26 November"), "{html}");
        assert!(html.contains("Sunrise Family Clinic, Andheri"));
        assert!(html.contains("Hudson Street Medical, New York"));
        assert!(
            html.contains(
                "10:30 · <a class=\"patient\" href=\"/desk/patient?appointment=1\">Priya Patil</a>"
            ),
            "Mumbai's clock: {html}"
        );
        assert!(
            html.contains("2:00 PM · <a class=\"patient\" href=\"/desk/patient?appointment=2\">Emily Johnson</a>"),
            "New York's 12-hour clock: {html}"
        );
        assert!(html.contains("with Dr. Mehta"));
        assert!(
            html.contains("no answer</strong> — asha, 25 Nov 9:05 AM"),
            "{html}"
        );
        assert!(!html.contains("+919876543210"), "numbers masked");
        assert!(!html.contains("(s)"));
    }

    #[test]
    fn the_empty_list_says_how_far_it_looked() {
        let config = Config::example().expect("shipped config");
        let now = at("2026-11-25T12:00:00Z");
        let all = ListFilter {
            days: 2,
            ..ListFilter::default()
        };
        let empty = FollowUpLists {
            calls: &[],
            practice: &[],
            books: &[],
        };
        let html = follow_ups(&session(), &config, &all, &empty, None, now).into_string();
        assert!(html.contains("Nobody to call today, tomorrow or the day after, at every clinic."));
        let one = ListFilter {
            clinic: Some("mumbai".into()),
            day: NaiveDate::from_ymd_opt(2026, 11, 26),
            days: 2,
        };
        let html = follow_ups(&session(), &config, &one, &empty, None, now).into_string();
        assert!(
            html.contains(
                "Nobody to call on Thursday 26 November 2026 at Sunrise Family Clinic, Andheri."
            ),
            "{html}"
        );
        assert_eq!(one.query(), "clinic=mumbai&date=2026-11-26");
        assert_eq!(all.query(), "clinic=&date=");
    }

    #[test]
    fn a_practice_system_update_reads_as_a_task_with_why_and_done() {
        let config = Config::example().expect("shipped config");
        let now = at("2026-11-25T12:00:00Z");
        let practice = [PracticeUpdate {
            update: crate::store::SourceUpdate {
                id: 7,
                appointment_id: 3,
                external_id: "EHR-55".into(),
                clinic: "mumbai".into(),
                feed: "front-desk-ehr".into(),
                action: "cancel".into(),
                state: "staff".into(),
                attempts: 1,
                error: Some("the server does not allow changes".into()),
                created_at: now,
            },
            patient_name: "Priya Patil".into(),
            starts_at: at("2026-11-26T05:00:00Z"),
            provider: Some("Dr. Mehta".into()),
        }];
        let lists = FollowUpLists {
            calls: &[],
            practice: &practice,
            books: &[],
        };
        let html = follow_ups(
            &session(),
            &config,
            &ListFilter::default(),
            &lists,
            None,
            now,
        )
        .into_string();
        assert!(html.contains("1 change reminderd could not make"), "{html}");
        assert!(html.contains(
            "Cancelled by the patient in reminderd — cancel it in the practice system too"
        ));
        assert!(
            html.contains(
                "at 10:30 with Dr. Mehta · Sunrise Family Clinic, Andheri · appointment EHR-55"
            ),
            "{html}"
        );
        assert!(html.contains("Why reminderd could not do it: the server does not allow changes"));
        assert!(html.contains("name=\"update\" value=\"7\""));
        assert!(html.contains(">Done in the practice system</button>"));
        assert_eq!(
            practice_notice("practice_done"),
            Some("marked as done in the practice system")
        );
        assert_eq!(practice_notice("done"), None);
    }

    #[test]
    fn call_notices_are_known_keys_only() {
        assert!(call_notice("call_reached").is_some_and(|t| t.contains("reached")));
        assert!(call_notice("call_no_answer").is_some());
        assert_eq!(call_notice("reached"), None);
        assert_eq!(call_notice("call_hung_up"), None);
    }
}
