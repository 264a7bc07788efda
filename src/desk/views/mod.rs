//! The desk's pages as maud markup: pure functions from what was read to HTML.

mod channels;
mod conversation;
mod day;
mod documents;
mod feeds;
mod follow_ups;
mod media;
mod patient;
mod privacy;
mod remind;
mod replies;
mod report;
mod stats;
mod status;
mod upload;
mod waitlist;

pub use conversation::{
    ConversationNotice, OTHER_PATIENT, conversation_page, conversation_path, guidelines_page,
    sensitive_confirm,
};
pub use day::{Board, BoardFilter, BoardNotice, day_page};
pub use documents::{CAPTION_CHARS, DocumentForm, DocumentNotice, DocumentsPage, documents_page};
pub use feeds::{FeedCard, feeds_page, message_page, outcome_words};
pub use follow_ups::{
    FollowUpCard, FollowUpLists, ListFilter, call_notice, confirm_change, follow_ups,
    practice_notice,
};
pub use patient::{patient_page, search_page, week_page};
pub use privacy::{EraseAsk, erase_confirm};
pub use remind::{Done, remind_all, remind_one};
pub use replies::{ReplyCard, replies, replies_notice};
pub use report::{no_shows_page, report_page};
pub use stats::stats;
pub use status::{board_at, status_confirm, status_refused, too_early};
pub use upload::{imported, preview, upload, upload_closed};
pub use waitlist::{AddForm, OpenForm, WaitlistData, WaitlistForms, waitlist_page};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::{Clinic, Config};
use crate::import::{ChangeKind, ImportReport, ParsedFile};
use crate::jobs::{DeskStatus, Hold};
use crate::phone::mask;
use crate::store::{BoardRow, Preview, Session, Stats};

use super::chart;

/// A signed-in member of staff as every page shows them: the session (name, form token) and
/// what waits on Follow-ups and Replies or holds reminders back, read with the session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// The counts on the navigation and the reasons for the "reminders held" banner.
    pub status: DeskStatus,
}

impl std::ops::Deref for SignedIn {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl From<Session> for SignedIn {
    /// A session with nothing waiting and nothing held.
    fn from(session: Session) -> Self {
        Self {
            session,
            status: DeskStatus::default(),
        }
    }
}

/// Every page: header with navigation and the signed-in name, the "reminders held" banner,
/// then `body`.
fn page(title: &str, session: Option<&SignedIn>, active: &str, body: &Markup) -> Markup {
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
                            @for (href, label, waiting) in nav_links(s) {
                                // The count is in the name screen readers hear, not read twice.
                                a href=(href) aria-current=[(label == active).then_some("page")]
                                    aria-label=[(waiting > 0).then(|| format!("{label}, {waiting} waiting"))] {
                                    (label)
                                    @if waiting > 0 { " " span.count { "(" (waiting) ")" } }
                                }
                            }
                        }
                        (patient::search_box())
                        form.signout method="post" action="/desk/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span { "Signed in as " strong { (s.user) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some(s) = session.filter(|s| !s.status.holds.is_empty()) {
                    (held_banner(&s.status.holds, &s.status.zones))
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The navigation: each page, its name and how many wait on it; Feeds only where the
/// practice system sends the schedule.
fn nav_links(s: &SignedIn) -> Vec<(&'static str, &'static str, usize)> {
    let mut links = vec![
        ("/desk/day", "Day", 0),
        ("/desk/week", "Week", 0),
        ("/desk/upload", "Upload", 0),
        ("/desk/follow-ups", "Follow-ups", s.status.follow_ups),
        ("/desk/replies", "Replies", s.status.replies),
    ];
    if let Some(refused) = s.status.feeds {
        links.push(("/desk/feeds", "Feeds", refused));
    }
    links.push(("/desk/waitlist", "Waitlist", 0));
    links.push(("/desk/stats", "Stats", 0));
    links.push(("/desk/report", "Report", 0));
    links.push(("/desk/guidelines", "Guidelines", 0));
    links
}

/// Why reminders are not going out, in receptionists' words, each with what to do; only what
/// the store records (see `jobs::desk_status`). Times are the clinics' local times (`zones`).
fn held_banner(holds: &[Hold], zones: &[(String, chrono_tz::Tz)]) -> Markup {
    html! {
        section.held aria-labelledby="held-title" {
            h2 #held-title { "Reminders are held" }
            ul {
                @for h in holds {
                    li {
                        @match h {
                            Hold::StaleSchedule { clinic, ago: Some(ago) } => {
                                "Reminders for " strong { (clinic) } " are on hold: the schedule was last uploaded "
                                (ago_words(*ago)) ". " a href="/desk/upload" { "Upload today's schedule" } " to send them."
                            }
                            Hold::StaleSchedule { clinic, ago: None } => {
                                "Reminders for " strong { (clinic) } " are on hold: no schedule has been uploaded for it. "
                                a href="/desk/upload" { "Upload today's schedule" } " to send them."
                            }
                            Hold::Feed { feed, clinics, reason } => {
                                "Reminders for " strong { (clinics.join(", ")) } " are on hold: the schedule feed “" (feed)
                                "” from the practice system has gone quiet, so the schedule may be out of date. "
                                a href="/desk/feeds" { "See the feeds" } " and tell the administrator."
                                br; small { (reason) }
                            }
                            Hold::Account { ago, messages, error } => {
                                "No reminders are going out: WhatsApp refused the clinic's account " (ago_words(*ago)) ", and "
                                (plural(*messages, "message is", "messages are")) " waiting. Tell the administrator that the WhatsApp Business account needs attention."
                                br; small { "WhatsApp said: " (error) }
                            }
                            Hold::AccountBlocked { reason, until, clinics } => {
                                @if clinics.is_empty() {
                                    "No WhatsApp messages are going out: Meta has restricted the clinic's WhatsApp Business account"
                                } @else {
                                    "No WhatsApp messages are going out for " (clinics.join(", ")) ": Meta has restricted the WhatsApp Business account they send from"
                                }
                                @if let Some(u) = until { " until " (local_times(*u, zones)) }
                                ". Reminders wait and go out once it is lifted. Tell the administrator."
                                br; small { "Meta said: " (reason) }
                            }
                            Hold::TemplateStopped { template, why, messages, alternate } => {
                                "The “" (template) "” message cannot use its WhatsApp template: Meta stopped it. "
                                @if let Some(a) = alternate { "The “" (a) "” message goes instead. " }
                                @if *messages > 0 { (plural(*messages, "message is", "messages are")) " waiting until Meta allows the template again. " }
                                "Tell the administrator."
                                br; small { (why) }
                            }
                            Hold::TemplateWarning { template, why, at } => {
                                "Nothing is held yet, but the “" (template) "” message may stop soon. Tell the administrator."
                                br; small { (why) @if let Some(t) = at { " (from " (local_times(*t, zones)) ")" } }
                            }
                            Hold::Template { template, ago, messages, error } => {
                                "The “" (template) "” message is not going out: WhatsApp refused its template " (ago_words(*ago))
                                " (" (plural(*messages, "message", "messages")) "). Tell the administrator to check this message template."
                                br; small { "WhatsApp said: " (error) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An instant as the clinics read it: "3 December 09:00", or each clinic's time when their
/// zones differ ("3 December 09:00 at Sunrise; 2 December 22:30 at Main Street").
fn local_times(t: chrono::DateTime<chrono::Utc>, zones: &[(String, chrono_tz::Tz)]) -> String {
    let mut distinct: Vec<&(String, chrono_tz::Tz)> = Vec::new();
    for z in zones {
        if !distinct.iter().any(|d| d.1 == z.1) {
            distinct.push(z);
        }
    }
    let local = |zone: &chrono_tz::Tz| t.with_timezone(zone).format("%-d %B %H:%M").to_string();
    match distinct.as_slice() {
        [] => t.format("%-d %B %H:%M UTC").to_string(),
        [(_, zone)] => local(zone),
        many => many
            .iter()
            .map(|(name, zone)| format!("{} at {name}", local(zone)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// "1 person", "4 people": a count with the right word, never "(s)".
fn plural(n: impl TryInto<i64>, one: &str, many: &str) -> String {
    let n: i64 = n.try_into().unwrap_or(i64::MAX);
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago".
fn ago_words(d: chrono::Duration) -> String {
    let (minutes, hours, days) = (d.num_minutes(), d.num_hours(), d.num_days());
    if minutes < 1 {
        "just now".into()
    } else if minutes < 90 {
        format!("{} ago", plural(minutes, "minute", "minutes"))
    } else if hours < 48 {
        format!("{} ago", plural(hours, "hour", "hours"))
    } else {
        format!("{} ago", plural(days, "day", "days"))
    }
}

/// A page with one message (errors, "already done").
pub fn message(session: Option<&SignedIn>, title: &str, text: &str) -> Markup {
    page(title, session, "", &html! { p.notice { (text) } })
}

/// A form whose session ended before it was saved, carried through sign-in so that what was
/// typed is offered again instead of lost.
pub struct Resume<'a> {
    /// Where the form was posted (a desk path).
    pub action: &'a str,
    /// Its fields, without the old CSRF token, urlencoded.
    pub body: &'a str,
}

/// The sign-in form; with `resume`, it says a form is waiting and carries it.
pub fn login(
    csrf: &str,
    next: &str,
    name: Option<&str>,
    error: Option<&str>,
    resume: Option<&Resume<'_>>,
) -> Markup {
    page(
        "Sign in",
        None,
        "",
        &html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            @if resume.is_some() {
                p.notice role="status" { "You were signed out before this could be saved, so nothing was saved yet. Sign in again: what you typed is kept and shown to you to save." }
            }
            form.card method="post" action="/desk/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                @if let Some(r) = resume {
                    input type="hidden" name="resume_action" value=(r.action);
                    input type="hidden" name="resume_body" value=(r.body);
                }
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
            p.hint { "No account yet, or forgot your password? Ask the administrator." }
        },
    )
}

/// After sign-in, the form that was posted while signed out, to be checked and saved: its
/// fields kept as they were, its note editable.
pub fn resume(session: &SignedIn, action: &str, fields: &[(String, String)]) -> Markup {
    let what = match action {
        a if a.starts_with("/desk/follow-ups") => "your follow-up",
        a if a.starts_with("/desk/replies") => "your reply note",
        _ => "your change",
    };
    page(
        "Save what you typed",
        Some(session),
        "",
        &html! {
            p.notice role="status" { "You were signed out before " (what) " could be saved. Nothing has been saved yet: check it and press Save." }
            form.card method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                @for (name, value) in fields {
                    @if name == "note" {
                        p {
                            label for="resume-note" { "Note" }
                            input #resume-note type="text" name="note" maxlength="500" value=(value);
                        }
                    } @else {
                        input type="hidden" name=(name) value=(value);
                    }
                }
                button.primary type="submit" { "Save" }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_metas_dates_in_the_clinics_zone_not_utc() {
        // 14:00 UTC on 3 December is 09:00 in New York.
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-03T14:00:00Z")
            .expect("time")
            .to_utc();
        let ny = vec![(
            "Main Street Clinic".to_string(),
            chrono_tz::America::New_York,
        )];
        let holds = [
            Hold::AccountBlocked {
                reason: "restricted".into(),
                until: Some(t),
                clinics: Vec::new(),
            },
            Hold::TemplateWarning {
                template: "reminder".into(),
                why: "Meta will re-categorise the WhatsApp template “appt” as MARKETING unless it is reworded".into(),
                at: Some(t),
            },
        ];
        let text = held_banner(&holds, &ny).into_string();
        assert!(text.contains("until 3 December 09:00."), "{text}");
        assert!(text.contains("reworded (from 3 December 09:00)"), "{text}");
        assert!(!text.contains("UTC") && !text.contains("14:00"), "{text}");

        // Clinics in two zones each read their own time.
        let two = vec![
            ny[0].clone(),
            ("Sunrise".to_string(), chrono_tz::Asia::Kolkata),
        ];
        let text = held_banner(&holds[..1], &two).into_string();
        assert!(
            text.contains("3 December 09:00 at Main Street Clinic; 3 December 19:30 at Sunrise"),
            "{text}"
        );
    }
}
