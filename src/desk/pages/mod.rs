//! The pages that show the schedule: the day board and reveals, follow-ups, replies that need a person, and stats.

mod conversation;
mod day;
mod documents;
mod feeds;
mod follow_ups;
pub(super) mod media;
mod patient;
mod remind;
mod replies;
mod report;
mod stats;
mod status;
mod waitlist;

pub(super) use conversation::{answer, conversation, guidelines, open_from_reply};
pub(super) use day::{day, reveal};
pub(super) use documents::{documents, send_document};
pub(super) use feeds::{feed_message, feeds, reapply};
pub(super) use follow_ups::{
    follow_up_action, follow_up_question, follow_ups, practice_done, record_call,
};
pub(super) use patient::{
    erase_page, erase_patient, export_patient, patient, patients, record_consent, reveal_patient,
    week,
};
pub(super) use remind::{remind, remind_all, remind_page};
pub(super) use replies::{apply_reply, replies, reply_handled, reveal_reply};
pub(super) use report::{no_shows, report_csv, report_page};
pub(super) use stats::stats;
pub(super) use status::{status_action, status_page};
pub(super) use waitlist::{add_entry, open_slot, waitlist};

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{CsrfForm, DeskState, Staff, html, urlencode, views};
use crate::config::{Clinic, Config};
use crate::model::StaffAction;
use crate::store::{Handled, StoreError};
use crate::time::local_day_bounds;

#[derive(Deserialize, Default)]
pub(super) struct DayQuery {
    clinic: Option<String>,
    date: Option<String>,
}

/// The session with what the page shell shows beside it (the counts on the navigation, the
/// "reminders held" banner): read by the `Staff` extractor in the session's own database call.
pub(in crate::desk) fn signed_in(
    store: &crate::store::Store,
    config: &Config,
    session: crate::store::Session,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<views::SignedIn, StoreError> {
    Ok(views::SignedIn {
        session,
        status: crate::jobs::desk_status(store, config, now)?,
    })
}

/// How long after an audited reveal a page may show the number again (a refresh, Back):
/// long enough to dial it, short enough that it does not linger on the screen.
const REVEAL_SHOWN: chrono::Duration = chrono::Duration::minutes(10);

/// The earliest and latest days the desk shows: stored instants start at 1970, and four-digit
/// years are what a date field sends. Outside them, date arithmetic could overflow.
fn day_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
    )
}

/// A date from a query: `None` when absent or empty (a form left blank), else a day in
/// [`day_range`] or what is wrong with it.
fn parse_day(text: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (first, last) = day_range();
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) if (first..=last).contains(&d) => Ok(Some(d)),
        _ => Err(format!(
            "{text:?} is not a date the desk can show. Write it as YYYY-MM-DD, between {first} and {last}, or pick it in the date field."
        )),
    }
}

/// The clinic a page shows (the first configured when none or an unknown one is asked for)
/// and the local day (today at the clinic when none is given). `Ok(None)`: no clinics.
fn clinic_day(
    config: &Config,
    clinic: Option<&str>,
    date: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(Clinic, NaiveDate)>, String> {
    let date = parse_day(date)?;
    let Some(c) = clinic
        .and_then(|k| config.clinic(k))
        .or_else(|| config.clinics.values().next())
    else {
        return Ok(None);
    };
    let day = date.unwrap_or_else(|| now.with_timezone(&c.time_zone).date_naive());
    Ok(Some((c.clone(), day)))
}

fn bad_date(staff: &Staff, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        views::message(Some(&staff.session), "Unreadable date", why),
    )
        .into_response()
}

/// [`clinic_day`] for a page, or the page saying there is no clinic to show or what is wrong
/// with the date.
fn page_day(
    state: &DeskState,
    staff: &Staff,
    clinic: Option<&str>,
    date: Option<&str>,
) -> Result<(Arc<Config>, Clinic, NaiveDate), Response> {
    let config = state.config();
    match clinic_day(&config, clinic, date, state.clock.now()) {
        Ok(Some((c, day))) => Ok((config, c, day)),
        Ok(None) => Err(html(views::message(
            Some(&staff.session),
            "No clinics",
            "No clinic is set up yet. Ask the administrator to add the clinic.",
        ))),
        Err(why) => Err(bad_date(staff, &why)),
    }
}

/// A reveal asked for a row the page does not show (another clinic or day, or none).
fn not_on_page(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such appointment",
            "That appointment is not on this page (another clinic or day, or it no longer exists), so no number was shown. Reload the page and try again.",
        ),
    )
        .into_response()
}
