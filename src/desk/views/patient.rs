//! Finding a patient, the patient's page (details, appointments, one timeline of messages,
//! replies and staff actions) and the week view.

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::{
    Clinic, Config, Markup, SignedIn, clinic_select, html, mask, page, response_word, status_word,
};
use crate::store::{
    ConsentAnswer, Matched, MessageEvent, PatientAppointment, PatientChannels, PatientFile,
    PatientSearch, ReplyEvent, StaffEvent, WeekRow,
};

/// The header's search box: a patient by name, phone or appointment id, on every page.
pub(super) fn search_box() -> Markup {
    html! {
        form.search method="get" action="/desk/patients" role="search" {
            label.visually-hidden for="find" { "Find a patient" }
            input #find type="search" name="q" maxlength="100" placeholder="Name, phone or appointment id";
            button type="submit" { "Find" }
        }
    }
}

/// The patient's name as a link to their page, for tables and cards that know the patient's
/// row id.
pub(super) fn patient_link(patient_id: i64, name: &str) -> Markup {
    html! { a.patient href={ "/desk/patient?id=" (patient_id) } { (name) } }
}

/// The patient's name as a link to their page, from one of their appointments' row id (the
/// day board's and follow-up cards' `BoardRow::id`).
pub(super) fn patient_link_for_appointment(appointment_row: i64, name: &str) -> Markup {
    html! { a.patient href={ "/desk/patient?appointment=" (appointment_row) } { (name) } }
}

/// "Thu 26 Nov 2026, 09:00" in the clinic's zone and time format; "Today, 09:00" (or
/// yesterday, tomorrow) near `today`.
fn stamp(t: DateTime<Utc>, clinic: &Clinic, today: NaiveDate) -> String {
    let local = t.with_timezone(&clinic.time_zone);
    let day = local.date_naive();
    let time = local.format(&clinic.time_format).to_string();
    let near = match (day - today).num_days() {
        -1 => Some("Yesterday"),
        0 => Some("Today"),
        1 => Some("Tomorrow"),
        _ => None,
    };
    match near {
        Some(word) => format!("{word}, {time}"),
        None => format!("{}, {time}", local.format("%a %-d %b %Y")),
    }
}

/// An appointment as people name it: "Thu 26 Nov 2026, 09:00 with Dr. Mehta".
fn visit(starts_at: DateTime<Utc>, provider: Option<&str>, clinic: &Clinic) -> String {
    let local = starts_at.with_timezone(&clinic.time_zone);
    let mut s = format!(
        "{}, {}",
        local.format("%a %-d %b %Y"),
        local.format(&clinic.time_format)
    );
    if let Some(p) = provider.filter(|p| !p.trim().is_empty()) {
        s.push_str(" with ");
        s.push_str(p);
    }
    s
}

/// "1 patient", "3 patients".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The search page: the form and what it found.
pub fn search_page(
    session: &SignedIn,
    config: &Config,
    query: &str,
    found: &PatientSearch,
    now: DateTime<Utc>,
) -> Markup {
    page(
        "Find a patient",
        Some(session),
        "",
        &html! {
            form.filters method="get" action="/desk/patients" role="search" {
                label for="q" { "Name, phone or appointment id" }
                input #q type="search" name="q" maxlength="100" value=(query) autofocus;
                button type="submit" { "Find" }
            }
            @if query.trim().is_empty() {
                p.hint { "Type part of a name (\"priya pat\"), the last digits of a phone number, or an appointment id, in any clinic." }
            } @else if found.hits.is_empty() {
                p.notice { "Nobody matches \u{201c}" (query.trim()) "\u{201d}. Try fewer letters of the name, the last 4 digits of the number, or the appointment id as the schedule writes it." }
            } @else {
                p.summary {
                    @if found.more { "More than " (count(found.hits.len(), "patient", "patients")) " match: the first are shown; type more of the name or number." }
                    @else { (count(found.hits.len(), "patient matches", "patients match")) " \u{201c}" (query.trim()) "\u{201d}." }
                }
                div.scroll {
                    table.results {
                        caption.visually-hidden { "Patients found" }
                        thead { tr { th scope="col" { "Patient" } th scope="col" { "Phone" } th scope="col" { "Clinic" } th scope="col" { "Next appointment" } th scope="col" { "Found by" } } }
                        tbody {
                            @for h in &found.hits {
                                @let clinic = config.clinic(&h.clinic);
                                tr {
                                    td { (patient_link(h.id, &h.name)) @if h.opted_out { " " span.badge.warn { "opted out" } } }
                                    td.phone { (mask(&h.phone)) }
                                    td { (clinic.map_or(h.clinic.as_str(), |c| c.display_name.as_str())) }
                                    td {
                                        @match (&h.next, clinic) {
                                            (Some(n), Some(c)) => { (stamp(n.starts_at, c, now.with_timezone(&c.time_zone).date_naive())) @if let Some(p) = &n.provider { " with " (p) } }
                                            (Some(n), None) => { (n.starts_at.format("%Y-%m-%d %H:%M UTC")) }
                                            (None, _) => { span.hint { "none booked" } }
                                        }
                                    }
                                    td {
                                        @match &h.matched {
                                            Matched::Appointment(id) => { "appointment " (id) }
                                            Matched::PatientId => { "patient id" }
                                            Matched::Phone => { "phone number" }
                                            Matched::Name => { "name" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// One line of the patient's timeline.
struct Entry {
    at: DateTime<Utc>,
    who: String,
    what: Markup,
    class: &'static str,
}

/// The patient's page. `revealed`: the reveal that shows the whole number on this view;
/// `channels`: how their reminders go, and to whom.
pub fn patient_page(
    session: &SignedIn,
    (config, clinic): (&Config, &Clinic),
    file: &PatientFile,
    channels: &PatientChannels,
    revealed: Option<i64>,
    (erased_at, consents): (Option<DateTime<Utc>>, &[ConsentAnswer]),
    now: DateTime<Utc>,
) -> Markup {
    let today = now.with_timezone(&clinic.time_zone).date_naive();
    let title = if erased_at.is_some() {
        crate::privacy::ERASED_NAME
    } else {
        file.name.as_str()
    };
    let upcoming = file
        .appointments
        .iter()
        .filter(|a| a.starts_at >= now)
        .count();
    page(
        title,
        Some(session),
        "",
        &html! {
            @if erased_at.is_some() {
                (super::privacy::data_box(session, file.id, erased_at, clinic))
                dl.details { dt { "Clinic" } dd { (clinic.display_name) } }
            } @else {
                dl.details {
                    dt { "Clinic" } dd { (clinic.display_name) " · patient id " (file.external_id) }
                    dt #phone { "Phone" }
                    dd {
                        @if revealed.is_some() {
                            a.phone href={ "tel:" (file.phone) } { (file.phone) }
                        } @else {
                            form.inline method="post" action="/desk/patient/reveal" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                input type="hidden" name="patient" value=(file.id);
                                span.phone { (mask(&file.phone)) " " }
                                button.small type="submit" aria-label="Show the whole number" { "Show" }
                            }
                        }
                    }
                    dt { "Language" } dd { (language_name(&file.language)) }
                    dt { "Conversation" } dd { a href=(super::conversation_path(file.id)) { "Open conversation" } }
                    dt { "WhatsApp messages" }
                    dd {
                        @match file.opted_out_at {
                            Some(t) => { span.badge.warn { "opted out" } " since " (stamp(t, clinic, today)) ": remind by phone" }
                            None => { "receives reminders" }
                        }
                    }
                    (super::channels::reach_details(channels, clinic, now))
                    @if let Some(m) = last_message(file) {
                        dt { "Last message" }
                        dd {
                            (super::channels::how_it_went(&m.channel, &m.recipient, &m.state)) ", " (stamp(m.at, clinic, today))
                            @if let Some(t) = super::channels::texts_only(channels.patient_number.sms_only_until, clinic, now) { " · " (t) }
                        }
                    }
                }
            }
            h2 { "Appointments" }
            @if file.appointments.is_empty() {
                p.notice { "No appointments stored." }
            } @else {
                p.hint { (count(file.appointments.len(), "appointment", "appointments")) ", " (upcoming) " upcoming. Times are " (clinic.time_zone.name()) "." }
                div.scroll {
                    table.appointments {
                        caption.visually-hidden { "Appointments, earliest first" }
                        thead { tr { th scope="col" { "When" } th scope="col" { "With" } th scope="col" { "Schedule" } th scope="col" { "Patient's answer" } th scope="col" { "Id" } } }
                        tbody {
                            @for a in &file.appointments {
                                tr.(format!("status-{}", a.status)) {
                                    td { a href={ "/desk/day?clinic=" (clinic.key) "&date=" (a.starts_at.with_timezone(&clinic.time_zone).format("%Y-%m-%d")) } { (stamp(a.starts_at, clinic, today)) } @if a.starts_at < now { " " small { "(past)" } } }
                                    td { (a.provider.as_deref().unwrap_or("")) }
                                    td { span.badge.(format!("s-{}", a.status)) { (status_word(&a.status)) } (cancelled_by(a)) }
                                    td { span.badge.(format!("r-{}", a.response)) { (response_word(&a.response)) } }
                                    td { small { (a.appointment_id) } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Messages, replies and notes" }
            (timeline(config, clinic, file, today))
            @if erased_at.is_none() {
                (super::privacy::consent_box(session, file.id, consents, clinic))
                (super::privacy::data_box(session, file.id, None, clinic))
            }
        },
    )
}

/// The latest message that went out (or failed, or was not sent in time), as the day board
/// picks it: not an answer to a reply, not one still waiting or skipped.
fn last_message(file: &PatientFile) -> Option<&MessageEvent> {
    file.messages
        .iter()
        .rfind(|m| m.kind != "reply_ack" && !matches!(m.state.as_str(), "pending" | "skipped"))
}

fn cancelled_by(a: &PatientAppointment) -> &'static str {
    match (a.status.as_str(), a.cancelled_by.as_deref()) {
        ("cancelled", Some("patient")) => " by the patient",
        ("cancelled", Some("clinic")) => " at the desk",
        ("cancelled", Some("source")) => " in the schedule",
        _ => "",
    }
}

fn language_name(code: &str) -> String {
    let name = match code.split(['_', '-']).next().unwrap_or(code) {
        "en" => "English",
        "hi" => "Hindi",
        "mr" => "Marathi",
        "es" => "Spanish",
        "gu" => "Gujarati",
        "ta" => "Tamil",
        "te" => "Telugu",
        "kn" => "Kannada",
        "bn" => "Bengali",
        "pt" => "Portuguese",
        "fr" => "French",
        _ => return code.to_string(),
    };
    format!("{name} ({code})")
}

/// Every message, reply and staff action in time order (on the same second: messages, then
/// replies, then staff, as they happen).
fn timeline(config: &Config, clinic: &Clinic, file: &PatientFile, today: NaiveDate) -> Markup {
    let about = |id: Option<&str>| -> String {
        id.and_then(|id| file.appointments.iter().find(|a| a.appointment_id == id))
            .map(|a| visit(a.starts_at, a.provider.as_deref(), clinic))
            .unwrap_or_default()
    };
    let mut entries: Vec<Entry> = Vec::new();
    for m in &file.messages {
        entries.push(Entry {
            at: m.at,
            who: if m.channel == "sms" {
                "Clinic, by text".into()
            } else {
                "Clinic, by WhatsApp".into()
            },
            what: message(config, clinic, m, &about(Some(&m.appointment_id)), today),
            class: "t-message",
        });
    }
    for r in &file.replies {
        entries.push(Entry {
            at: r.at,
            who: file.name.clone(),
            what: reply(r, &about(r.appointment_id.as_deref())),
            class: "t-reply",
        });
    }
    for s in &file.actions {
        entries.push(Entry {
            at: s.at,
            who: s.who.clone(),
            what: staff_action(s, &about(s.appointment_id.as_deref())),
            class: "t-staff",
        });
    }
    // A stable sort keeps the kinds in the order pushed when times are equal.
    entries.sort_by_key(|e| e.at);
    html! {
        @if entries.is_empty() {
            p.notice { "No messages, replies or notes yet." }
        } @else {
            div.scroll {
                table.timeline {
                    caption.visually-hidden { "Messages, replies and notes, oldest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } } }
                    tbody {
                        @for e in &entries {
                            tr.(e.class) {
                                td { time datetime=(e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (stamp(e.at, clinic, today)) } }
                                td { (e.who) }
                                td { (e.what) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Which message, about what, on which channel, and what became of it.
fn message(
    config: &Config,
    clinic: &Clinic,
    m: &MessageEvent,
    about: &str,
    today: NaiveDate,
) -> Markup {
    let which = match m.kind.as_str() {
        "reminder" => format!("Reminder \u{201c}{}\u{201d}", config.rule_label(&m.rule)),
        "booking_confirmation" => "Booking confirmation".to_string(),
        "reply_ack" => "Answer to the patient's reply".to_string(),
        "feedback" => format!(
            "Feedback request \u{201c}{}\u{201d}",
            config.rule_label(&m.rule)
        ),
        other => crate::config::humanise_name(other),
    };
    let state = match m.state.as_str() {
        "pending" => "not sent yet: due then".to_string(),
        "sending" => "being sent".to_string(),
        "sent" => "sent, not yet delivered to the phone".to_string(),
        "delivered" => "delivered to the phone".to_string(),
        "read" => "read by the patient".to_string(),
        "failed" if m.channel == "sms" => "failed: the text could not be delivered".to_string(),
        "failed" => format!(
            "failed: {}",
            failure_words(m.error_code, m.error.as_deref())
        ),
        "unknown" => "unclear whether it went out (WhatsApp did not answer); it is not sent twice"
            .to_string(),
        "skipped" => format!(
            "not sent: {}",
            m.reason.as_deref().unwrap_or("no longer needed")
        ),
        "expired" => format!(
            "not sent in time: {}",
            m.reason.as_deref().unwrap_or("it was too late to send")
        ),
        other => other.to_string(),
    };
    html! {
        strong { (which) }
        @if !about.is_empty() { " for " (about) }
        " · " (super::channels::way(&m.channel, &m.recipient)) " · "
        span.(format!("m-{}", m.state)) { (state) }
        @if let (Some(t), "delivered" | "read") = (m.delivered_at, m.state.as_str()) { small { " (delivered " (stamp(t, clinic, today)) @if let Some(r) = m.read_at { ", read " (stamp(r, clinic, today)) } ")" } }
        @if let Some(n) = &m.needs_staff { br; span.badge.warn { (n) } }
    }
}

/// A failed message's reason as a receptionist can act on it.
pub(super) fn failure_words(code: Option<i64>, error: Option<&str>) -> String {
    let known = code.and_then(|c| {
        Some(match c {
            131_026 => "the number cannot receive WhatsApp messages (not on WhatsApp, or an old app)",
            131_047 => "more than 24 hours passed since the patient last wrote, so only approved templates may be sent",
            131_049 => "WhatsApp held it back (too many business messages to this number lately)",
            131_050 => "the patient has stopped business messages in WhatsApp",
            131_021 => "the number is the clinic's own WhatsApp number",
            130_472 => "WhatsApp did not deliver it to this number (a WhatsApp trial)",
            131_056 | 130_429 | 80_007 | 4 => "too many messages at once; it was not retried in time",
            132_000 | 132_001 | 132_015 => "the message template is not approved in this language",
            132_012 | 131_009 | 131_008 => "the message's details did not fit the approved template",
            190 => "the clinic's WhatsApp access has expired: the administrator must renew it",
            368 | 131_031 => "the clinic's WhatsApp account is restricted: the administrator must check it",
            131_000 | 1 | 2 => "WhatsApp had a problem of its own",
            _ => return None,
        })
    });
    match (known, code, error) {
        (Some(k), _, _) => k.to_string(),
        (None, Some(c), _) => format!("WhatsApp refused it (error {c})"),
        (None, None, Some(e)) => format!("WhatsApp said \u{201c}{e}\u{201d}"),
        (None, None, None) => "no reason was given".to_string(),
    }
}

/// A reply: what the patient sent and what it was understood as.
fn reply(r: &ReplyEvent, about: &str) -> Markup {
    // A button's text is kept as "[Label] payload": the patient saw and tapped the label.
    let tapped = r
        .text
        .as_deref()
        .filter(|_| matches!(r.kind.as_str(), "button" | "interactive"))
        .and_then(|t| t.strip_prefix('['))
        .and_then(|t| t.split_once("] "))
        .map(|(label, _)| label);
    let scored = r.text.as_deref().and_then(crate::replies::score_of);
    let scored = match scored {
        Some(n) => format!("scored the visit {n} of 5"),
        None => "scored the visit".to_string(),
    };
    let understood = match r.intent.as_str() {
        "feedback" => scored.as_str(),
        "confirm" => "will come (confirmed)",
        "cancel" => "cancels the appointment",
        "reschedule" => "asks for another time",
        "stop" => "wants no more messages",
        "start" => "wants messages again",
        "unknown" => "not understood: a person must read it",
        _ => "nothing to act on",
    };
    html! {
        @if let Some(label) = tapped {
            "Tapped " q { (label) }
        } @else if let Some(t) = &r.text {
            "Wrote " q { (t) }
        } @else {
            "Sent a " (r.kind.replace('_', " "))
        }
        " · understood as: " strong { (understood) }
        @if !about.is_empty() { " (for " (about) ")" }
        @match (r.outcome.as_str(), &r.handled_by) {
            ("needs_staff", Some(by)) => { " · " span.badge { "handled by " (by.strip_prefix("staff:").unwrap_or(by)) } }
            ("needs_staff", None) => { " · " span.badge.warn { "waiting for a person" } @if let Some(why) = &r.reason { " " small { (why) } } }
            ("ignored", _) => { @if let Some(why) = &r.reason { " · " small { "no change: " (why) } } }
            _ => {}
        }
    }
}

/// A staff note or action from the audit log.
fn staff_action(s: &StaffEvent, about: &str) -> Markup {
    let words = |v: Option<&str>| v.map(|v| status_word(response_word(v)).to_string());
    let what = match s.action.as_str() {
        "called" => "called the patient".to_string(),
        "note" => "added a note".to_string(),
        "reveal_phone" => "showed the whole phone number".to_string(),
        "reply_handled" => "marked a reply handled".to_string(),
        "status" | "response" => {
            match (words(s.old_value.as_deref()), words(s.new_value.as_deref())) {
                (Some(old), Some(new)) => format!("set {new} (was {old})"),
                (None, Some(new)) => format!("set {new}"),
                _ => "changed the appointment".to_string(),
            }
        }
        other => crate::config::humanise_name(other),
    };
    html! {
        (what)
        @if !about.is_empty() { " · " (about) }
        @if let Some(n) = s.note.as_deref().filter(|n| !n.trim().is_empty()) { " · " q.note { (n) } }
    }
}

/// Booked / confirmed / unanswered / cancelled counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    booked: usize,
    confirmed: usize,
    unanswered: usize,
    cancelled: usize,
}

impl Counts {
    fn add(&mut self, r: &WeekRow) {
        if r.status == "cancelled" {
            self.cancelled += 1;
            return;
        }
        self.booked += 1;
        match r.response.as_str() {
            "confirmed" => self.confirmed += 1,
            "none" => self.unanswered += 1,
            _ => {}
        }
    }
}

/// The week view: one clinic's local week, counts per day (each linking to its day board) and
/// per doctor.
pub fn week_page(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    monday: NaiveDate,
    rows: &[WeekRow],
    today: NaiveDate,
) -> Markup {
    let zone = clinic.time_zone;
    let days: Vec<NaiveDate> = monday.iter_days().take(7).collect();
    let sunday = days.last().copied().unwrap_or(monday);
    let mut per_day = vec![Counts::default(); 7];
    let mut per_doctor = std::collections::BTreeMap::<String, Counts>::new();
    let mut total = Counts::default();
    for r in rows {
        let day = r.starts_at.with_timezone(&zone).date_naive();
        if let Some(i) = days.iter().position(|d| *d == day) {
            per_day[i].add(r);
        }
        let doctor = r
            .provider
            .clone()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "No doctor given".into());
        per_doctor.entry(doctor).or_default().add(r);
        total.add(r);
    }
    let (prev, next) = (monday - Days::new(7), monday + Days::new(7));
    let title = format!(
        "Week of {} — {}",
        monday.format("%-d %B %Y"),
        clinic.display_name
    );
    let head = html! { th scope="col" { "Booked" } th scope="col" { "Confirmed" } th scope="col" { "No answer yet" } th scope="col" { "Cancelled" } };
    let cells = |c: &Counts| html! { td { (c.booked) } td { (c.confirmed) } td { (c.unanswered) } td { (c.cancelled) } };
    page(
        &title,
        Some(session),
        "Week",
        &html! {
            form.filters method="get" action="/desk/week" {
                (clinic_select(config, clinic))
                label for="week" { "A day in the week" }
                input #week type="date" name="week" value=(monday.format("%Y-%m-%d"));
                button type="submit" { "Show" }
                a href={ "/desk/week?clinic=" (clinic.key) "&week=" (prev.format("%Y-%m-%d")) } { "← Previous week" }
                a href={ "/desk/week?clinic=" (clinic.key) "&week=" (today.format("%Y-%m-%d")) } { "This week" }
                a href={ "/desk/week?clinic=" (clinic.key) "&week=" (next.format("%Y-%m-%d")) } { "Next week →" }
            }
            p.summary {
                "Monday " (monday.format("%-d %b")) " to Sunday " (sunday.format("%-d %b %Y")) ": "
                (count(total.booked, "appointment booked", "appointments booked")) ", " (total.confirmed) " confirmed, "
                (total.unanswered) " with no answer yet, " (total.cancelled) " cancelled."
            }
            p.hint { "Booked counts every appointment not cancelled; \u{201c}no answer yet\u{201d} is a booked appointment whose patient has not answered. Times are " (zone.name()) "." }
            div.scroll {
                table.week {
                    caption { "By day" }
                    thead { tr { th scope="col" { "Day" } (head) } }
                    tbody {
                        @for (d, c) in days.iter().zip(&per_day) {
                            tr.today[*d == today] {
                                th scope="row" { a href={ "/desk/day?clinic=" (clinic.key) "&date=" (d.format("%Y-%m-%d")) } { (d.format("%A %-d %b")) } }
                                (cells(c))
                            }
                        }
                    }
                    tfoot { tr { th scope="row" { "Whole week" } (cells(&total)) } }
                }
            }
            div.scroll {
                table.week {
                    caption { "By doctor" }
                    thead { tr { th scope="col" { "Doctor" } (head) } }
                    tbody {
                        @for (doctor, c) in &per_doctor {
                            tr { th scope="row" { (doctor) } (cells(c)) }
                        }
                        @if per_doctor.is_empty() {
                            tr { td colspan="5" { "No appointments this week." } }
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

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn times_are_local_in_the_clinics_own_format_and_near_days_are_named() {
        let config = Config::example().expect("shipped config");
        let mumbai = config.clinic("mumbai").expect("mumbai");
        let nyc = config.clinic("nyc").expect("nyc");
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        assert_eq!(
            stamp(at("2026-11-26T03:30:00Z"), mumbai, today),
            "Today, 09:00"
        );
        assert_eq!(
            stamp(at("2026-11-25T14:45:00Z"), mumbai, today),
            "Yesterday, 20:15"
        );
        assert_eq!(
            stamp(at("2026-11-20T03:30:00Z"), mumbai, today),
            "Fri 20 Nov 2026, 09:00"
        );
        assert_eq!(
            stamp(at("2026-11-26T19:00:00Z"), nyc, today),
            "Today, 2:00 PM"
        );
        assert_eq!(
            visit(at("2026-11-26T03:30:00Z"), Some("Dr. Mehta"), mumbai),
            "Thu 26 Nov 2026, 09:00 with Dr. Mehta"
        );
    }

    #[test]
    fn week_counts_leave_cancelled_out_of_booked() {
        let mut c = Counts::default();
        for (status, response) in [
            ("booked", "none"),
            ("booked", "confirmed"),
            ("booked", "reschedule_requested"),
            ("cancelled", "declined"),
            ("no_show", "confirmed"),
        ] {
            c.add(&WeekRow {
                starts_at: at("2026-11-26T03:30:00Z"),
                provider: None,
                status: status.into(),
                response: response.into(),
            });
        }
        assert_eq!(
            c,
            Counts {
                booked: 4,
                confirmed: 2,
                unanswered: 1,
                cancelled: 1
            }
        );
    }

    #[test]
    fn failures_are_said_in_words_and_unknown_codes_are_named() {
        assert!(failure_words(Some(131_026), None).contains("cannot receive WhatsApp"));
        assert_eq!(
            failure_words(Some(999), Some("(#999) Weird")),
            "WhatsApp refused it (error 999)"
        );
        assert_eq!(failure_words(None, None), "no reason was given");
    }

    fn file() -> PatientFile {
        let message = |when: &str, rule: &str, state: &str, code: Option<i64>| MessageEvent {
            at: at(when),
            appointment_id: "MUM-1002".into(),
            kind: "reminder".into(),
            rule: rule.into(),
            state: state.into(),
            delivered_at: None,
            read_at: None,
            error_code: code,
            error: None,
            reason: None,
            needs_staff: None,
            channel: "whatsapp".into(),
            recipient: "patient".into(),
        };
        PatientFile {
            id: 7,
            clinic: "mumbai".into(),
            external_id: "P-2002".into(),
            name: "<b>Priya</b> Patil".into(),
            phone: "+919876543210".into(),
            language: "mr".into(),
            opted_out_at: None,
            appointments: vec![PatientAppointment {
                appointment_id: "MUM-1002".into(),
                starts_at: at("2026-11-26T04:00:00Z"),
                duration_min: 15,
                provider: Some("Dr. Mehta".into()),
                status: "booked".into(),
                cancelled_by: None,
                response: "confirmed".into(),
            }],
            messages: vec![
                message("2026-11-25T04:00:00Z", "day-before", "read", None),
                message("2026-11-26T02:00:00Z", "same-day", "failed", Some(131_026)),
            ],
            replies: vec![ReplyEvent {
                at: at("2026-11-25T04:10:00Z"),
                appointment_id: Some("MUM-1002".into()),
                kind: "text".into(),
                text: Some("yes".into()),
                intent: "confirm".into(),
                outcome: "applied".into(),
                reason: None,
                handled_by: None,
            }],
            actions: vec![StaffEvent {
                at: at("2026-11-25T04:05:00Z"),
                appointment_id: Some("MUM-1002".into()),
                who: "asha".into(),
                action: "called".into(),
                old_value: None,
                new_value: None,
                note: Some("no answer".into()),
            }],
        }
    }

    #[test]
    fn the_patient_page_masks_the_number_until_shown_and_tells_one_story_in_time_order() {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic("mumbai").expect("mumbai");
        let session = SignedIn::from(crate::store::Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".repeat(64),
            role: crate::model::Role::Staff,
        });
        let now = at("2026-11-25T12:00:00Z");
        let page = patient_page(
            &session,
            (&config, clinic),
            &file(),
            &PatientChannels::default(),
            None,
            (None, &[]),
            now,
        )
        .into_string();
        assert!(page.contains("&lt;b&gt;Priya&lt;/b&gt; Patil") && !page.contains("<b>Priya"));
        assert!(page.contains("+91******3210") && !page.contains("+919876543210"));
        assert!(page.contains("action=\"/desk/patient/reveal\""));
        let order: Vec<usize> = [
            "Today, 09:30</time>",
            "Today, 09:35</time>",
            "Today, 09:40</time>",
            "Tomorrow, 07:30</time>",
        ]
        .iter()
        .map(|t| page.find(t).unwrap_or_else(|| panic!("{t} in {page}")))
        .collect();
        assert!(order.is_sorted(), "time order: {order:?}");
        assert!(page.contains("<strong>Reminder \u{201c}Day before\u{201d}</strong> for Thu 26 Nov 2026, 09:30 with Dr. Mehta · WhatsApp · "));
        assert!(page.contains("read by the patient"));
        assert!(page.contains("failed: the number cannot receive WhatsApp messages"));
        assert!(
            page.contains(
                "Wrote <q>yes</q> · understood as: <strong>will come (confirmed)</strong>"
            )
        );
        assert!(page.contains("called the patient · Thu 26 Nov 2026, 09:30 with Dr. Mehta · <q class=\"note\">no answer</q>"));
        assert!(page.contains("Marathi (mr)"));
        assert!(!page.contains("Export data"), "staff see no export");
        let shown = patient_page(
            &session,
            (&config, clinic),
            &file(),
            &PatientChannels::default(),
            Some(3),
            (None, &[]),
            now,
        )
        .into_string();
        assert!(shown.contains("href=\"tel:+919876543210\""));
        assert!(!shown.contains("/desk/patient/reveal"));
    }

    #[test]
    fn a_feedback_request_and_its_score_are_told_in_words() {
        let mut config = Config::example().expect("shipped config");
        config.feedback.push(crate::config::FeedbackRule {
            name: "after-visit".into(),
            label: Some("After the visit".into()),
            after: chrono::Duration::hours(2),
            latest: chrono::Duration::days(1),
            template: "reminder".into(),
            clinics: vec!["mumbai".into()],
        });
        let clinic = config.clinic("mumbai").expect("mumbai");
        let mut f = file();
        f.messages[0].kind = "feedback".into();
        f.messages[0].rule = "after-visit".into();
        f.replies[0].kind = "button".into();
        f.replies[0].text = Some("[4] score:4:9".into());
        f.replies[0].intent = "feedback".into();
        let session = SignedIn::from(crate::store::Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".repeat(64),
            role: crate::model::Role::Staff,
        });
        let page = patient_page(
            &session,
            (&config, clinic),
            &f,
            &PatientChannels::default(),
            None,
            (None, &[]),
            at("2026-11-25T12:00:00Z"),
        )
        .into_string();
        assert!(page.contains("<strong>Feedback request \u{201c}After the visit\u{201d}</strong>"));
        assert!(
            page.contains(
                "Tapped <q>4</q> · understood as: <strong>scored the visit 4 of 5</strong>"
            )
        );
    }

    #[test]
    fn links_to_the_patient_page_name_the_patient_or_one_appointment() {
        assert_eq!(
            patient_link(7, "A & B").into_string(),
            "<a class=\"patient\" href=\"/desk/patient?id=7\">A &amp; B</a>"
        );
        assert_eq!(
            patient_link_for_appointment(12, "Priya").into_string(),
            "<a class=\"patient\" href=\"/desk/patient?appointment=12\">Priya</a>"
        );
    }
}
