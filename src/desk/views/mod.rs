//! The desk's pages as maud markup: pure functions from what was read to HTML.

mod day;
mod follow_ups;
mod remind;
mod replies;
mod stats;
mod upload;

pub use day::day_page;
pub use follow_ups::follow_ups;
pub use remind::{Done, remind_all, remind_one};
pub use replies::replies;
pub use stats::stats;
pub use upload::{imported, preview, upload};

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
