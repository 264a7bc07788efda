//! The day board: one clinic's appointments on one local day, each row with its answer, last
//! message, desk-set status, notes and actions.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    BoardRow, Clinic, Config, Markup, NaiveDate, SignedIn, clinic_select, html, local, page,
    response_word, status_word,
};
use crate::desk::urlencode;
use crate::store::{DeskChange, LastMessage, Note};

/// Which rows the board shows: one doctor's, and only those without an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardFilter {
    /// Only this doctor's (the schedule's provider column).
    pub doctor: Option<String>,
    /// Only booked appointments without an answer that settles them (no answer yet, or an
    /// answer that needs a person).
    pub unanswered: bool,
}

impl BoardFilter {
    /// Whether the row is shown.
    pub fn keeps(&self, r: &BoardRow) -> bool {
        self.doctor
            .as_deref()
            .is_none_or(|d| r.provider.as_deref() == Some(d))
            && (!self.unanswered || unanswered(r))
    }

    /// The filter as query parameters, each after a `&`.
    pub fn query(&self) -> String {
        let mut q = String::new();
        if let Some(d) = &self.doctor {
            q.push_str("&doctor=");
            q.push_str(&urlencode(d));
        }
        if self.unanswered {
            q.push_str("&unanswered=1");
        }
        q
    }

    fn is_set(&self) -> bool {
        self.doctor.is_some() || self.unanswered
    }
}

/// Booked, and the patient has not answered in a way that settles it.
fn unanswered(r: &BoardRow) -> bool {
    r.status == "booked" && r.response == "none"
}

/// What the board says after an action, from the key in `?done=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardNotice {
    /// Marked arrived.
    Arrived,
    /// Set to completed.
    Completed,
    /// Set to no-show.
    NoShow,
    /// Cancelled.
    Cancelled,
    /// A note added.
    Note,
    /// The last desk-set status undone.
    Undone,
}

impl BoardNotice {
    const ALL: [Self; 6] = [
        Self::Arrived,
        Self::Completed,
        Self::NoShow,
        Self::Cancelled,
        Self::Note,
        Self::Undone,
    ];

    /// The key in `?done=`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Arrived => "arrived",
            Self::Completed => "completed",
            Self::NoShow => "no_show",
            Self::Cancelled => "cancelled",
            Self::Note => "note",
            Self::Undone => "undone",
        }
    }

    /// The notice with this key, if there is one.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.key() == key)
    }

    fn text(self) -> &'static str {
        match self {
            Self::Arrived => "marked as arrived",
            Self::Completed => "set to completed",
            Self::NoShow => "set to no-show",
            Self::Cancelled => "cancelled",
            Self::Note => "note saved",
            Self::Undone => "undone",
        }
    }
}

/// Everything the day board shows.
pub struct Board<'a> {
    /// The signed-in staff member.
    pub session: &'a SignedIn,
    /// For the clinic chooser.
    pub config: &'a Config,
    /// The clinic shown.
    pub clinic: &'a Clinic,
    /// The local day shown.
    pub day: NaiveDate,
    /// The day's appointments, in time order (all of them; the filter picks).
    pub rows: &'a [BoardRow],
    /// The row whose number is shown whole.
    pub revealed: Option<i64>,
    /// Which rows are shown.
    pub filter: &'a BoardFilter,
    /// What was just done, and to which row.
    pub done: Option<(BoardNotice, i64)>,
    /// Now, for what a number taught us that has not yet run out.
    pub now: DateTime<Utc>,
}

/// The time pattern of a clinic's pages: 12-hour when its `time_format` (how its messages
/// write times) uses a 12-hour hour (`%I`, `%l`, `%r`), else 24-hour.
pub(super) fn clock(clinic: &Clinic) -> &'static str {
    let mut chars = clinic.time_format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut spec = chars.next();
        while matches!(spec, Some('-' | '_' | '0' | '^' | '#')) {
            spec = chars.next();
        }
        if matches!(spec, Some('I' | 'l' | 'r')) {
            return "%-I:%M %p";
        }
    }
    "%H:%M"
}

/// A local time for the board of `day`: the clock alone on that day, with the date on others.
fn when(t: DateTime<Utc>, zone: Tz, day: NaiveDate, clock: &str) -> String {
    let local = t.with_timezone(&zone);
    if local.date_naive() == day {
        local.format(clock).to_string()
    } else {
        format!("{} {}", local.format("%-d %b"), local.format(clock))
    }
}

/// `n` and the noun, singular or plural ("1 appointment", "3 appointments").
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A note as "who: what — text" ("asha: called — no answer"; a plain note is its text).
pub(super) fn note_words(n: &Note) -> String {
    let what = match n.action.as_str() {
        "note" => None,
        "called" => Some("called"),
        "confirmed" => Some("set confirmed"),
        "cancelled" => Some("set cancelled"),
        "completed" => Some("set completed"),
        "no_show" => Some("set no-show"),
        "arrived" => Some("marked arrived"),
        "reply_handled" => Some("marked the reply handled"),
        other => Some(other),
    };
    match (what, n.text.as_deref()) {
        (Some(w), Some(t)) => format!("{}: {w} — {t}", n.by),
        (Some(w), None) => format!("{}: {w}", n.by),
        (None, t) => format!("{}: {}", n.by, t.unwrap_or_default()),
    }
}

/// What a desk-set status means, and whether the practice system must be changed too.
fn desk_words(d: &DeskChange, zone: Tz, day: NaiveDate, clock: &str) -> String {
    let by = format!(
        "at the desk by {} at {}",
        d.by,
        when(d.at, zone, day, clock)
    );
    let moves = "an upload that moves this appointment would book it again";
    match (d.what.as_str(), d.to.as_deref()) {
        ("status", Some("cancelled")) => format!(
            "Cancelled {by}. Cancel it in the practice system too, or the next upload will book it again."
        ),
        ("status", Some("no_show")) => {
            format!("No-show set {by}. Mark it as a no-show in the practice system too: {moves}.")
        }
        ("status", Some("completed")) => {
            format!("Completed set {by}. Mark it completed in the practice system too: {moves}.")
        }
        ("status", to) => format!(
            "Set to {} {by}. Change it in the practice system too, or the next upload may change it back.",
            status_word(to.unwrap_or_default())
        ),
        ("response", Some("confirmed")) => {
            format!("Confirmed by phone {by}. Nothing to change in the practice system.")
        }
        ("response", to) => format!(
            "Answer set to \"{}\" {by}. Nothing to change in the practice system.",
            response_word(to.unwrap_or_default())
        ),
        ("arrived", _) => format!(
            "Arrived: marked {by}. Nothing to change in the practice system; uploads keep it."
        ),
        (_, restored) => {
            let undone = match d.from.as_deref() {
                Some("cancelled") => "Cancellation",
                Some("no_show") => "No-show",
                Some("completed") => "Completed",
                Some("confirmed") => "Confirmation",
                Some("arrived") => "Arrival",
                _ => "Change",
            };
            let again = restored
                .map(|r| {
                    let word = match r {
                        "booked" | "cancelled" | "completed" | "no_show" => status_word(r),
                        other => response_word(other),
                    };
                    format!(": {word} again")
                })
                .unwrap_or_default();
            format!(
                "{undone} undone {by}{again}. If it was changed in the practice system too, change it back there."
            )
        }
    }
}

/// The latest message: which, how far it got and when, and why it failed, in people's words.
fn message_words(
    m: &LastMessage,
    zone: Tz,
    day: NaiveDate,
    clock: &str,
) -> (String, Option<String>) {
    let kind = match m.kind.as_str() {
        "reminder" => "Reminder",
        "booking_confirmation" => "Booking message",
        other => other,
    };
    let how = super::channels::how_it_went(&m.channel, &m.recipient, &m.state);
    let head = format!("{kind}: {how}, {}", when(m.at, zone, day, clock));
    let why = match m.state.as_str() {
        "failed" if m.channel == "sms" => Some(super::channels::text_failure(
            m.needs_staff.as_deref(),
            m.error.as_deref(),
        )),
        "failed" => Some(
            super::channels::replaced_words(m)
                .unwrap_or_else(|| failure_words(m.error_code, m.error.as_deref())),
        ),
        "expired" => Some(expiry_words(m.error.as_deref().unwrap_or_default())),
        _ => None,
    };
    (head, why)
}

/// Why WhatsApp did not deliver a message, for the front desk.
fn failure_words(code: Option<i64>, error: Option<&str>) -> String {
    if let Some(advice) = code.and_then(crate::dispatch::needs_staff) {
        return advice;
    }
    match code {
        Some(132_000..=132_999) => {
            "WhatsApp refused the message's template: tell whoever looks after reminderd".into()
        }
        Some(131_050) => {
            "the patient has chosen not to get such messages from businesses: call them".into()
        }
        _ if error.is_some_and(|e| e.starts_with("gave up after")) => {
            "WhatsApp could not take it after several tries: call the patient".into()
        }
        Some(c) => format!("WhatsApp could not deliver it (WhatsApp error {c}): call the patient"),
        None => "WhatsApp could not deliver it: call the patient".into(),
    }
}

/// Why a message was not sent in time, from the outbox's reason.
fn expiry_words(reason: &str) -> String {
    let why = if reason.contains("already started") {
        "the appointment had already started"
    } else if reason.contains("max_import_age") || reason.contains("last imported") {
        "reminders were held: the schedule had not been uploaded recently"
    } else if reason.contains("quiet hours") {
        "the clinic's quiet hours lasted past the last useful time"
    } else if reason.contains("24-hour window") {
        "the 24 hours for answering the patient had passed"
    } else if reason.contains("last error") {
        "WhatsApp kept refusing it until it was too late"
    } else {
        "it could not be sent before it was too late"
    };
    format!("{why}: call the patient if it matters")
}

/// The day board.
pub fn day_page(b: &Board<'_>) -> Markup {
    let (clinic, day, zone) = (b.clinic, b.day, b.clinic.time_zone);
    let clock = clock(clinic);
    let title = format!("{} — {}", clinic.display_name, day.format("%A %-d %B %Y"));
    let shown: Vec<&BoardRow> = b.rows.iter().filter(|r| b.filter.keeps(r)).collect();
    let board_url = |d: NaiveDate| {
        format!(
            "/desk/day?clinic={}&date={}{}",
            urlencode(&clinic.key),
            d.format("%Y-%m-%d"),
            b.filter.query()
        )
    };
    let done = b.done.and_then(|(n, id)| {
        let r = b.rows.iter().find(|r| r.id == id)?;
        Some(format!(
            "Saved: {} at {} — {}.",
            r.patient_name,
            when(r.starts_at, zone, day, clock),
            n.text()
        ))
    });
    page(
        &title,
        Some(b.session),
        "Day",
        &html! {
            @if let Some(d) = done {
                p.ok role="status" { (d) }
            }
            (filters(b, board_url))
            p.summary { (summary(b.rows)) " Times are the clinic's local time. " span.no-print { (super::remind::remind_all_link(&clinic.key)) "." } }
            @if b.rows.is_empty() {
                p.notice {
                    "No appointments on this day. "
                    a href="/desk/upload" { "Upload the schedule" }
                    " to see them here."
                }
            } @else if shown.is_empty() {
                p.notice {
                    "No appointment on this day matches the filter. "
                    a href={ "/desk/day?clinic=" (urlencode(&clinic.key)) "&date=" (day.format("%Y-%m-%d")) } { "Show all appointments" }
                }
            } @else {
                @if b.filter.is_set() {
                    p.hint { "Showing " (shown.len()) " of " (count(b.rows.len(), "appointment", "appointments")) "." }
                }
                div.scroll {
                    table.board {
                        caption.visually-hidden { "Appointments in time order" }
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Patient" } th scope="col" { "Answer" } th scope="col" { "Phone" } th scope="col" { "With" } th scope="col" { "Schedule" } th scope="col" { "Last message" } th scope="col" { "Notes" } th.no-print scope="col" { "Actions" } } }
                        tbody {
                            @for r in shown {
                                (row(b, r, clock))
                            }
                        }
                    }
                }
            }
        },
    )
}

/// "8 appointments: 2 confirmed, 4 no answer yet, ..." with the kinds present.
fn summary(rows: &[BoardRow]) -> String {
    let n = |f: &dyn Fn(&BoardRow) -> bool| rows.iter().filter(|r| f(r)).count();
    let mut parts = vec![
        format!("{} confirmed", n(&|r| r.response == "confirmed")),
        format!("{} no answer yet", n(&|r| unanswered(r) && !r.needs_person)),
    ];
    let more = [
        (
            n(&|r| unanswered(r) && r.needs_person),
            "answered, needs a person",
        ),
        (n(&|r| r.arrived_at.is_some()), "arrived"),
        (n(&|r| r.status == "completed"), "completed"),
        (n(&|r| r.status == "no_show"), "no-show"),
        (n(&|r| r.status == "cancelled"), "cancelled"),
    ];
    parts.extend(
        more.iter()
            .filter(|(k, _)| *k > 0)
            .map(|(k, what)| format!("{k} {what}")),
    );
    format!(
        "{}: {}.",
        count(rows.len(), "appointment", "appointments"),
        parts.join(", ")
    )
}

/// Clinic, date, doctor and "not answered" choosers, and the day links.
fn filters(b: &Board<'_>, board_url: impl Fn(NaiveDate) -> String) -> Markup {
    let day = b.day;
    let mut doctors: Vec<&str> = b
        .rows
        .iter()
        .filter_map(|r| r.provider.as_deref())
        .collect();
    doctors.extend(b.filter.doctor.as_deref());
    doctors.sort_unstable();
    doctors.dedup();
    html! {
        form.filters method="get" action="/desk/day" {
            (clinic_select(b.config, b.clinic))
            label for="date" { "Date" }
            input #date type="date" name="date" value=(day.format("%Y-%m-%d"));
            label for="doctor" { "Doctor" }
            select #doctor name="doctor" {
                option value="" { "All doctors" }
                @for d in doctors {
                    option value=(d) selected[b.filter.doctor.as_deref() == Some(d)] { (d) }
                }
            }
            span.check {
                input #unanswered type="checkbox" name="unanswered" value="1" checked[b.filter.unanswered];
                label for="unanswered" { "Not answered only" }
            }
            button type="submit" { "Show" }
        }
        nav.days aria-label="Other days" {
            a href=(board_url(day.pred_opt().unwrap_or(day))) { "← Previous day" }
            a.button href={ "/desk/day?clinic=" (urlencode(&b.clinic.key)) (b.filter.query()) } { "Today" }
            a href=(board_url(day.succ_opt().unwrap_or(day))) { "Next day →" }
        }
    }
}

/// The hidden fields that bring an action back to this board as it was filtered.
fn back_fields(b: &Board<'_>) -> Markup {
    html! {
        input type="hidden" name="date" value=(b.day.format("%Y-%m-%d"));
        @if let Some(d) = &b.filter.doctor { input type="hidden" name="doctor" value=(d); }
        @if b.filter.unanswered { input type="hidden" name="unanswered" value="1"; }
    }
}

/// One appointment's row, `#a-<id>` so that a redirect returns to it.
fn row(b: &Board<'_>, r: &BoardRow, clock: &str) -> Markup {
    let (zone, day) = (b.clinic.time_zone, b.day);
    let booked = r.status == "booked";
    let form = format!("act-{}", r.id);
    let confirm = |action: &str| {
        format!(
            "/desk/day/status?row={}&action={action}&date={}{}",
            r.id,
            day.format("%Y-%m-%d"),
            b.filter.query()
        )
    };
    let (early, later) = r.notes.split_at(r.notes.len().min(3));
    html! {
        tr id=(format!("a-{}", r.id)) class=(format!("status-{}", r.status)) {
            td { (local(r.starts_at, zone, clock)) }
            td { (super::patient::patient_link_for_appointment(r.id, &r.patient_name)) small { " (" (r.appointment_id) ")" } }
            // Time, patient and answer first: they stay in view on a tablet and at 200% zoom.
            td {
                @if unanswered(r) && r.needs_person {
                    a.badge.warn href="/desk/replies" { "answered, needs a person" }
                } @else {
                    span.badge.(format!("r-{}", r.response)) { (response_word(&r.response)) }
                }
                @if r.opted_out { " " span.badge.warn { "opted out" } }
            }
            td { (phone(b, r)) }
            td { (r.provider.as_deref().unwrap_or("")) }
            td {
                span.badge.(format!("s-{}", r.status)) { (status_word(&r.status)) }
                @if let Some(at) = r.arrived_at { " " span.badge.arrived { "arrived " (when(at, zone, day, clock)) } }
                @if let Some(d) = &r.desk {
                    p.desk { (desk_words(d, zone, day, clock)) }
                    @if d.can_undo() {
                        button.small form=(form) type="submit" name="action" value="undo" { "Undo" }
                    }
                }
            }
            td {
                @if let Some(m) = &r.last_message {
                    @let (head, why) = message_words(m, zone, day, clock);
                    (head)
                    @if let Some(w) = why { br; small.why { (w) } }
                } @else if r.channel.as_deref() == Some("none") {
                    "none: the schedule says call them"
                } @else {
                    "none yet"
                }
                @if let Some(t) = super::channels::texts_only(r.sms_only_until, b.clinic, b.now) { br; small.why { (t) } }
                @if r.sms_opted_out { br; small.why { "opted out of text messages" } }
            }
            td {
                @if !early.is_empty() {
                    ul.notes { @for n in early { li { (when(n.at, zone, day, clock)) " " (note_words(n)) } } }
                }
                @if !later.is_empty() {
                    details.notes {
                        summary { (count(later.len(), "earlier note", "earlier notes")) }
                        ul.notes { @for n in later { li { (when(n.at, zone, day, clock)) " " (note_words(n)) } } }
                    }
                }
            }
            td.no-print {
                form.row-actions id=(form) method="post" action="/desk/day/status" {
                    input type="hidden" name="csrf" value=(b.session.csrf);
                    input type="hidden" name="row" value=(r.id);
                    (back_fields(b))
                    @if booked && r.arrived_at.is_none() {
                        button.small type="submit" name="action" value="arrived" { "Arrived" }
                    }
                    @if booked {
                        button.small type="submit" name="action" value="completed" { "Completed" }
                    }
                    @if booked && r.arrived_at.is_none() {
                        a.button.small href=(confirm("no_show")) { "No-show" }
                    }
                    @if booked {
                        a.button.small href=(confirm("cancelled")) { "Cancel" }
                    }
                    a.button.small href=(confirm("note")) { "Note" }
                    @if booked && r.response != "confirmed" && !r.opted_out {
                        a.button.small href={ "/desk/remind?clinic=" (urlencode(&b.clinic.key)) "&appointment=" (urlencode(&r.appointment_id)) } { "Remind now" }
                    }
                }
            }
        }
    }
}

/// The masked number with its Show button (the reveal is audited and comes back to the row).
fn phone(b: &Board<'_>, r: &BoardRow) -> Markup {
    html! {
        @if b.revealed == Some(r.id) {
            a.phone href={ "tel:" (r.phone) } { (r.phone) }
        } @else {
            form.inline method="post" action="/desk/reveal" {
                input type="hidden" name="csrf" value=(b.session.csrf);
                input type="hidden" name="appointment" value=(r.id);
                input type="hidden" name="clinic" value=(b.clinic.key);
                input type="hidden" name="back" value="day";
                (back_fields(b))
                span.phone { (crate::phone::mask(&r.phone)) " " }
                button.small type="submit" aria-label="Show the whole number" { "Show" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::views::Notice;
    use chrono::TimeZone;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("instant")
            .with_timezone(&Utc)
    }

    fn row(id: i64, name: &str, phone: &str) -> BoardRow {
        BoardRow {
            id,
            clinic: "mumbai".into(),
            appointment_id: format!("A-{id}"),
            starts_at: at("2026-11-26T03:30:00Z"),
            duration_min: 15,
            patient_name: name.into(),
            phone: phone.into(),
            language: "en".into(),
            provider: Some("Dr. Mehta".into()),
            status: "booked".into(),
            response: "none".into(),
            opted_out: false,
            needs_person: false,
            arrived_at: None,
            arrived_by: None,
            last_message: None,
            desk: None,
            channel: None,
            sms_only_until: None,
            sms_opted_out: false,
            notes: Vec::new(),
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

    fn render(
        clinic: &str,
        rows: &[BoardRow],
        revealed: Option<i64>,
        filter: &BoardFilter,
    ) -> String {
        let config = Config::example().expect("shipped config");
        let clinic = config.clinic(clinic).expect("clinic").clone();
        let session = session();
        day_page(&Board {
            session: &session,
            config: &config,
            clinic: &clinic,
            day: NaiveDate::from_ymd_opt(2026, 11, 26).expect("date"),
            rows,
            revealed,
            filter,
            done: None,
            now: at("2026-11-26T00:00:00Z"),
        })
        .into_string()
    }

    #[test]
    fn notices_are_known_keys_only() {
        for n in Notice::ALL {
            assert_eq!(Notice::from_key(n.key()), Some(n));
        }
        for n in BoardNotice::ALL {
            assert_eq!(BoardNotice::from_key(n.key()), Some(n));
        }
        assert_eq!(Notice::from_key("Call 0800 555 0100"), None);
        assert_eq!(BoardNotice::from_key("Call 0800 555 0100"), None);
        assert_eq!(Notice::from_key(""), None);
    }

    #[test]
    fn the_board_escapes_names_masks_numbers_and_reveals_only_one() {
        let rows = [
            row(1, "<script>alert(1)</script>", "+919820012345"),
            row(2, "Priya Patil", "+919876543210"),
        ];
        let page = render("mumbai", &rows, Some(2), &BoardFilter::default());
        assert!(!page.contains("<script>alert"), "names are escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("+91******2345") && !page.contains("+919820012345"));
        assert!(page.contains("+919876543210"), "the revealed one is whole");
        assert!(page.contains("09:00"), "local time in Asia/Kolkata");
        assert_eq!(
            page.matches(&"c".repeat(64)).count(),
            4,
            "sign-out, one reveal form and one action form per row"
        );
        assert!(page.contains("id=\"a-1\"") && page.contains("id=\"a-2\""));
    }

    #[test]
    fn a_clinic_writing_12_hour_times_gets_them_on_its_board() {
        let config = Config::example().expect("shipped config");
        assert_eq!(clock(config.clinic("nyc").expect("nyc")), "%-I:%M %p");
        assert_eq!(clock(config.clinic("mumbai").expect("mumbai")), "%H:%M");
        let mut r = row(1, "Maria Gonzalez", "+16465550199");
        r.starts_at = at("2026-11-26T19:30:00Z");
        let page = render("nyc", &[r], None, &BoardFilter::default());
        assert!(page.contains("2:30 PM"), "{page}");
        assert!(page.contains("Hudson Street Medical, New York"));
    }

    #[test]
    fn the_summary_counts_without_plural_brackets() {
        let mut rows = vec![row(1, "A", "+919820012345")];
        assert_eq!(
            summary(&rows),
            "1 appointment: 0 confirmed, 1 no answer yet."
        );
        rows.push(row(2, "B", "+919820012346"));
        rows.push(row(3, "C", "+919820012347"));
        rows[1].response = "confirmed".into();
        rows[2].needs_person = true;
        assert_eq!(
            summary(&rows),
            "3 appointments: 1 confirmed, 1 no answer yet, 1 answered, needs a person."
        );
    }

    #[test]
    fn filters_keep_one_doctor_and_the_unanswered() {
        let mut rows = [row(1, "A", "+919820012345"), row(2, "B", "+919820012346")];
        rows[1].provider = Some("Dr. Iyer".into());
        rows[1].response = "confirmed".into();
        let iyer = BoardFilter {
            doctor: Some("Dr. Iyer".into()),
            unanswered: false,
        };
        assert!(!iyer.keeps(&rows[0]) && iyer.keeps(&rows[1]));
        assert_eq!(iyer.query(), "&doctor=Dr.%20Iyer");
        let open = BoardFilter {
            doctor: None,
            unanswered: true,
        };
        assert!(open.keeps(&rows[0]) && !open.keeps(&rows[1]));
    }

    #[test]
    fn notes_say_who_what_and_when_newest_first() {
        let mut r = row(1, "A", "+919820012345");
        for (i, (action, text)) in [("called", None), ("cancelled", Some("moving to Pune"))]
            .into_iter()
            .enumerate()
        {
            r.notes.insert(
                0,
                Note {
                    appointment: 1,
                    by: "asha".into(),
                    at: Utc
                        .with_ymd_and_hms(2026, 11, 26, 4, 40 + i as u32, 0)
                        .unwrap(),
                    action: action.into(),
                    text: text.map(str::to_string),
                },
            );
        }
        let page = render("mumbai", &[r], None, &BoardFilter::default());
        let newer = page
            .find("10:11 asha: set cancelled — moving to Pune")
            .expect("newer");
        let older = page.find("10:10 asha: called").expect("older");
        assert!(newer < older);
    }

    #[test]
    fn a_failed_message_says_which_when_and_why() {
        let zone = chrono_tz::Asia::Kolkata;
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let m = LastMessage {
            kind: "reminder".into(),
            state: "failed".into(),
            at: at("2026-11-25T12:30:00Z"),
            error_code: Some(131_026),
            error: Some("(131026) Message undeliverable".into()),
            channel: "whatsapp".into(),
            recipient: "patient".into(),
            needs_staff: None,
            replaced_by: None,
        };
        let (head, why) = message_words(&m, zone, day, "%H:%M");
        assert_eq!(head, "Reminder: WhatsApp not delivered, 25 Nov 18:00");
        assert_eq!(
            why.as_deref(),
            Some("this patient cannot be reached on WhatsApp: call them")
        );
    }

    #[test]
    fn a_desk_set_status_says_what_to_change_in_the_practice_system() {
        let zone = chrono_tz::Asia::Kolkata;
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let d = DeskChange {
            what: "status".into(),
            from: Some("booked".into()),
            to: Some("cancelled".into()),
            by: "asha".into(),
            at: at("2026-11-26T04:42:00Z"),
        };
        assert_eq!(
            desk_words(&d, zone, day, "%H:%M"),
            "Cancelled at the desk by asha at 10:12. Cancel it in the practice system too, or the next upload will book it again."
        );
        let undo = DeskChange {
            what: "undo".into(),
            from: Some("no_show".into()),
            to: Some("booked".into()),
            ..d
        };
        assert!(!undo.can_undo());
        assert!(
            desk_words(&undo, zone, day, "%H:%M")
                .starts_with("No-show undone at the desk by asha at 10:12: booked again."),
        );
    }
}
