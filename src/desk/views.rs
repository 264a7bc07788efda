//! The desk's pages as maud markup: pure functions from what was read to HTML.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::{Clinic, Config};
use crate::import::{ChangeKind, ImportReport, ParsedFile};
use crate::phone::mask;
use crate::store::{BoardRow, FollowUp, Preview, ReplyView, Session, Stats};

use super::chart;

/// Every page: header with navigation and the signed-in name, then `body`.
fn page(title: &str, session: Option<&Session>, active: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · reminderd desk" }
                link rel="stylesheet" href="/desk/desk.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "reminderd" }
                    @if let Some(s) = session {
                        nav aria-label="Desk pages" {
                            @for (href, label) in [("/desk/day", "Day"), ("/desk/upload", "Upload"), ("/desk/follow-ups", "Follow-ups"), ("/desk/replies", "Replies"), ("/desk/stats", "Stats")] {
                                @if label == active {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                        form.signout method="post" action="/desk/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span { "Signed in as " strong { (s.user) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page with one message (errors, "already done").
pub fn message(session: Option<&Session>, title: &str, text: &str) -> Markup {
    page(title, session, "", &html! { p.notice { (text) } })
}

/// The sign-in form.
pub fn login(csrf: &str, next: &str, name: Option<&str>, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        "",
        &html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form.card method="post" action="/desk/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                p {
                    label for="name" { "Name" }
                    input #name name="name" type="text" autocomplete="username" required autofocus value=(name.unwrap_or_default());
                }
                p {
                    label for="password" { "Password" }
                    input #password name="password" type="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
            p.hint { "No account yet? The administrator creates one with " code { "reminderd user add NAME" } "." }
        },
    )
}

fn local(t: DateTime<Utc>, zone: Tz, fmt: &str) -> String {
    t.with_timezone(&zone).format(fmt).to_string()
}

/// The labelled clinic chooser of the filter forms.
fn clinic_select(config: &Config, clinic: &Clinic) -> Markup {
    html! {
        label for="clinic" { "Clinic" }
        select #clinic name="clinic" {
            @for c in config.clinics.values() {
                option value=(c.key) selected[c.key == clinic.key] { (c.display_name) }
            }
        }
    }
}

/// Clinic and date pickers shared by the day board and follow-ups.
fn day_picker(config: &Config, clinic: &Clinic, day: NaiveDate, action: &str) -> Markup {
    let prev = day.pred_opt().unwrap_or(day);
    let next = day.succ_opt().unwrap_or(day);
    html! {
        form.filters method="get" action=(action) {
            (clinic_select(config, clinic))
            label for="date" { "Date" }
            input #date type="date" name="date" value=(day.format("%Y-%m-%d"));
            button type="submit" { "Show" }
            a href={ (action) "?clinic=" (clinic.key) "&date=" (prev.format("%Y-%m-%d")) } { "← Previous day" }
            a href={ (action) "?clinic=" (clinic.key) "&date=" (next.format("%Y-%m-%d")) } { "Next day →" }
        }
    }
}

/// A masked number with a button that reveals it (the reveal is audited).
fn phone_cell(
    session: &Session,
    clinic: &Clinic,
    day: NaiveDate,
    id: i64,
    phone: &str,
    revealed: bool,
    back: &str,
) -> Markup {
    html! {
        @if revealed {
            a.phone href={ "tel:" (phone) } { (phone) }
        } @else {
            form.inline method="post" action="/desk/reveal" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="appointment" value=(id);
                input type="hidden" name="clinic" value=(clinic.key);
                input type="hidden" name="date" value=(day.format("%Y-%m-%d"));
                input type="hidden" name="back" value=(back);
                span.phone { (mask(phone)) " " }
                button.small type="submit" aria-label={ "Show the whole number" } { "Show" }
            }
        }
    }
}

fn status_word(status: &str) -> &str {
    match status {
        "no_show" => "no-show",
        other => other,
    }
}

fn response_word(response: &str) -> &str {
    match response {
        "none" => "no answer yet",
        "declined" => "cancelled by patient",
        "reschedule_requested" => "asked to reschedule",
        other => other,
    }
}

/// The day board.
pub fn day_page(
    session: &Session,
    config: &Config,
    clinic: &Clinic,
    day: NaiveDate,
    rows: &[BoardRow],
    revealed: Option<i64>,
) -> Markup {
    let zone = clinic.time_zone;
    let title = format!("{} — {}", clinic.display_name, day.format("%A %-d %B %Y"));
    let confirmed = rows.iter().filter(|r| r.response == "confirmed").count();
    let cancelled = rows.iter().filter(|r| r.status == "cancelled").count();
    page(
        &title,
        Some(session),
        "Day",
        &html! {
            (day_picker(config, clinic, day, "/desk/day"))
            p.summary { (rows.len()) " appointment(s): " (confirmed) " confirmed, " (cancelled) " cancelled. Times are " (zone.name()) "." }
            @if rows.is_empty() {
                p.notice { "No appointments on this day. Upload the schedule on the Upload page." }
            } @else {
                div.scroll {
                    table {
                        caption.visually-hidden { "Appointments in time order" }
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Patient" } th scope="col" { "Phone" } th scope="col" { "With" } th scope="col" { "Schedule" } th scope="col" { "Patient's answer" } th scope="col" { "Last message" } th scope="col" { "Last note" } } }
                        tbody {
                            @for r in rows {
                                tr.(format!("status-{}", r.status)) {
                                    td { (local(r.starts_at, zone, "%H:%M")) }
                                    td { (r.patient_name) small { " (" (r.appointment_id) ")" } }
                                    td { (phone_cell(session, clinic, day, r.id, &r.phone, revealed == Some(r.id), "day")) }
                                    td { (r.provider.as_deref().unwrap_or("")) }
                                    td { span.badge.(format!("s-{}", r.status)) { (status_word(&r.status)) } }
                                    td {
                                        span.badge.(format!("r-{}", r.response)) { (response_word(&r.response)) }
                                        @if r.opted_out { " " span.badge.warn { "opted out" } }
                                    }
                                    td { (r.last_message.as_deref().unwrap_or("none yet")) }
                                    td { (r.last_note.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The upload form.
pub fn upload(session: &Session, config: &Config, error: Option<&str>) -> Markup {
    page(
        "Upload the schedule",
        Some(session),
        "Upload",
        &html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            p { "Choose the CSV export of the schedule. You will see what changes before anything is saved." }
            form.card method="post" action="/desk/upload" enctype="multipart/form-data" {
                input type="hidden" name="csrf" value=(session.csrf);
                p {
                    label for="file" { "Schedule file (.csv)" }
                    input #file type="file" name="file" accept=".csv,text/csv,text/plain" required;
                }
                p {
                    label for="clinic" { "Clinic" }
                    select #clinic name="clinic" aria-describedby="clinic-hint" {
                        option value="" { "The file names the clinic on each row" }
                        @for c in config.clinics.values() {
                            option value=(c.key) { (c.display_name) }
                        }
                    }
                    span #clinic-hint .hint { "For exports without a clinic column, choose the clinic." }
                }
                p.check {
                    input #complete type="checkbox" name="complete" value="1";
                    label for="complete" { "This file is the whole schedule for its days (appointments missing from it are cancelled)" }
                }
                button type="submit" { "Preview" }
            }
        },
    )
}

fn counts(r: &ImportReport) -> Markup {
    html! {
        ul.counts {
            li { strong { (r.new) } " new" }
            li { strong { (r.updated) } " updated" }
            li { strong { (r.cancelled) } " cancelled" }
            li { strong { (r.unchanged) } " unchanged" }
        }
    }
}

fn change_text(config: &Config, clinic: &str, kind: &ChangeKind) -> String {
    let zone = config
        .clinic(clinic)
        .map_or(chrono_tz::UTC, |c| c.time_zone);
    match kind {
        ChangeKind::Rescheduled { from, to } => format!(
            "moved from {} to {}",
            local(*from, zone, "%a %-d %b %H:%M"),
            local(*to, zone, "%a %-d %b %H:%M")
        ),
        ChangeKind::Cancelled => "cancelled by the file".into(),
        ChangeKind::CancelledMissing => "cancelled: not in the file".into(),
        ChangeKind::Reinstated => "booked again".into(),
    }
}

/// The dry-run of an upload: its errors (nothing kept), or its changes with confirm/discard.
pub fn preview(
    session: &Session,
    config: &Config,
    p: &Preview,
    parsed: &ParsedFile,
    r: &ImportReport,
    notice: Option<&str>,
) -> Markup {
    let title = format!("Preview of {}", p.file_name);
    page(
        &title,
        Some(session),
        "Upload",
        &html! {
            @if let Some(n) = notice {
                p.error role="alert" { (n) }
            }
            @if r.errors.is_empty() {
                p { "Nothing has been saved yet. This is what importing " strong { (p.file_name) } " will do:" }
                (counts(r))
                @if !r.changes.is_empty() {
                    h2 { "Changes to check" }
                    ul.changes {
                        @for c in &r.changes {
                            li {
                                @if let Some(row) = c.row { "Row " (row) ": " }
                                (c.clinic) " appointment " (c.appointment_id) " — " (change_text(config, &c.clinic, &c.kind))
                            }
                        }
                    }
                }
                div.actions {
                    form.inline method="post" action="/desk/upload/confirm" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="token" value=(p.token);
                        button.primary type="submit" { "Confirm import" }
                    }
                    form.inline method="post" action="/desk/upload/discard" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="token" value=(p.token);
                        button type="submit" { "Discard" }
                    }
                }
                h2 { "Every row" }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Row" } th scope="col" { "Change" } th scope="col" { "Clinic" } th scope="col" { "Appointment" } th scope="col" { "Patient" } th scope="col" { "When" } th scope="col" { "Phone" } } }
                        tbody {
                            @for (row, outcome) in parsed.rows.iter().zip(&r.outcomes) {
                                @let zone = config.clinic(&row.clinic).map_or(chrono_tz::UTC, |c| c.time_zone);
                                tr {
                                    td { (row.row) }
                                    td { span.badge.(format!("o-{}", outcome.as_str())) { (outcome.as_str()) } }
                                    td { (row.clinic) }
                                    td { (row.appointment_id) }
                                    td { (row.patient_name) }
                                    td { (local(row.starts_at, zone, "%a %-d %b %H:%M")) }
                                    td { (row.phone.masked()) }
                                }
                            }
                        }
                    }
                }
            } @else {
                p.error role="alert" {
                    "Nothing was imported: " (r.errors.len()) " problem(s) in " (p.file_name) ". Fix them in the file (or in the clinic system, then export again) and upload it again."
                }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Row" } th scope="col" { "Column" } th scope="col" { "Value" } th scope="col" { "How to fix it" } } }
                        tbody {
                            @for e in &r.errors {
                                tr { td { (e.row) } td { (e.column) } td { code { (e.value) } } td { (e.message) } }
                            }
                        }
                    }
                }
                p { a href="/desk/upload" { "Upload another file" } }
            }
        },
    )
}

/// After a confirmed upload.
pub fn imported(session: &Session, r: &ImportReport) -> Markup {
    page(
        "Schedule imported",
        Some(session),
        "Upload",
        &html! {
            p.ok role="status" { (r.file) " was imported." }
            (counts(r))
            p { a href="/desk/day" { "See the day board" } " · " a href="/desk/follow-ups" { "Follow-ups" } }
        },
    )
}

/// A notice a page shows after a redirect. The URL carries only its key, so a link cannot
/// make a page say anything else; unknown keys show nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A follow-up marked as called.
    Called,
    /// A note added to a follow-up.
    Note,
    /// A follow-up set to confirmed.
    Confirmed,
    /// A follow-up set to cancelled.
    Cancelled,
    /// A follow-up set to no-show.
    NoShow,
    /// A reply marked handled.
    ReplyHandled,
}

impl Notice {
    const ALL: [Self; 6] = [
        Self::Called,
        Self::Note,
        Self::Confirmed,
        Self::Cancelled,
        Self::NoShow,
        Self::ReplyHandled,
    ];

    /// The key in `?done=`; a follow-up's is its action's name.
    pub fn key(self) -> &'static str {
        match self {
            Self::Called => "called",
            Self::Note => "note",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
            Self::ReplyHandled => "handled",
        }
    }

    /// The notice with this key, if there is one.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.key() == key)
    }

    /// What the page says.
    pub fn text(self) -> &'static str {
        match self {
            Self::Called => "marked as called",
            Self::Note => "note added",
            Self::Confirmed => "set to confirmed",
            Self::Cancelled => "set to cancelled",
            Self::NoShow => "set to no-show",
            Self::ReplyHandled => "Marked as handled",
        }
    }
}

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
                        @if let Some(n) = &b.last_note { p.hint { "Last note: " (n) } }
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

fn pct(n: i64, d: i64) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.0} %", 100.0 * n as f64 / d as f64)
    }
}

/// Confirmation and no-show rates per rule, with charts.
pub fn stats(
    session: &Session,
    config: &Config,
    clinic: &Clinic,
    from: NaiveDate,
    to: NaiveDate,
    s: &Stats,
) -> Markup {
    let bars = |f: fn(&crate::store::RuleStats) -> i64| -> Vec<chart::Bar> {
        s.per_rule
            .iter()
            .map(|r| chart::Bar {
                label: r.rule.clone(),
                value: f(r).max(0) as u64,
                of: r.sent.max(0) as u64,
            })
            .collect()
    };
    let groups = [
        chart::Series {
            name: "Confirmed after the reminder".into(),
            bars: bars(|r| r.confirmed),
        },
        chart::Series {
            name: "No-show after the reminder".into(),
            bars: bars(|r| r.no_show),
        },
    ];
    let svg = chart::rate_chart(&format!("Per rule, {from} to {to}"), &groups);
    page(
        &format!("Stats — {}", clinic.display_name),
        Some(session),
        "Stats",
        &html! {
            form.filters method="get" action="/desk/stats" {
                (clinic_select(config, clinic))
                label for="from" { "From" }
                input #from type="date" name="from" value=(from.format("%Y-%m-%d"));
                label for="to" { "To" }
                input #to type="date" name="to" value=(to.format("%Y-%m-%d"));
                button type="submit" { "Show" }
            }
            ul.counts {
                li { strong { (s.appointments) } " appointments" }
                li { strong { (s.reminded) } " reminded" }
                li { strong { (pct(s.confirmed, s.reminded)) } " confirmed" }
                li { strong { (s.no_show_confirmed + s.no_show_unconfirmed + s.no_show_unreachable) } " no-shows" }
            }
            figure.chart { (PreEscaped(svg)) }
            div.scroll {
                table {
                    caption { "Per rule" }
                    thead { tr { th scope="col" { "Rule" } th scope="col" { "Reminders sent" } th scope="col" { "Confirmed" } th scope="col" { "No-show" } } }
                    tbody {
                        @for r in &s.per_rule {
                            tr { td { (r.rule) } td { (r.sent) } td { (pct(r.confirmed, r.sent)) } td { (pct(r.no_show, r.sent)) } }
                        }
                    }
                }
            }
            p.hint {
                "Reminders: " (s.reminders_sent) " sent, " (s.reminders_delivered) " delivered, " (s.reminders_read) " read, " (s.reminders_failed) " failed. "
                "No-shows: " (s.no_show_confirmed) " had confirmed, " (s.no_show_unconfirmed) " never answered, " (s.no_show_unreachable) " could not be reached. "
                (s.opt_outs) " patient(s) opted out."
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, name: &str, phone: &str) -> BoardRow {
        BoardRow {
            id,
            appointment_id: format!("A-{id}"),
            starts_at: DateTime::parse_from_rfc3339("2026-11-26T03:30:00Z")
                .expect("instant")
                .with_timezone(&Utc),
            duration_min: 15,
            patient_name: name.into(),
            phone: phone.into(),
            language: "en".into(),
            provider: None,
            status: "booked".into(),
            response: "none".into(),
            opted_out: false,
            last_message: Some("delivered".into()),
            last_note: None,
        }
    }

    #[test]
    fn notices_are_known_keys_only() {
        for n in Notice::ALL {
            assert_eq!(Notice::from_key(n.key()), Some(n));
        }
        assert_eq!(Notice::from_key("Call 0800 555 0100"), None);
        assert_eq!(Notice::from_key(""), None);
    }

    #[test]
    fn the_board_escapes_names_masks_numbers_and_reveals_only_one() {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic("mumbai").expect("mumbai").clone();
        let session = Session {
            user_id: 1,
            user: "asha".into(),
            csrf: "c".repeat(64),
        };
        let rows = [
            row(1, "<script>alert(1)</script>", "+919820012345"),
            row(2, "Priya Patil", "+919876543210"),
        ];
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let page = day_page(&session, &config, &clinic, day, &rows, Some(2)).into_string();
        assert!(!page.contains("<script>alert"), "names are escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("+91******2345") && !page.contains("+919820012345"));
        assert!(page.contains("+919876543210"), "the revealed one is whole");
        assert!(page.contains("09:00"), "local time in Asia/Kolkata");
        assert_eq!(
            page.matches(&session.csrf).count(),
            2,
            "sign-out and one reveal form"
        );
    }
}
