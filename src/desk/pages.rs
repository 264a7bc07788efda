//! The pages that show the schedule: the day board and reveals, follow-ups, replies that need a person, and stats.

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
            "reminders.toml configures no clinic.",
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

pub(super) async fn day(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<DayQuery>,
) -> Result<Response, Response> {
    board(&state, &staff, &q, None).await
}

async fn board(
    state: &DeskState,
    staff: &Staff,
    q: &DayQuery,
    revealed: Option<i64>,
) -> Result<Response, Response> {
    let (config, clinic, day) = page_day(state, staff, q.clinic.as_deref(), q.date.as_deref())?;
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let (key, actor, now) = (clinic.key.clone(), staff.actor(), state.clock.now());
    let rows = state
        .db(move |s| {
            let rows = s.board(&key, from, to)?;
            // Only a reveal that shows a number is audited.
            if let Some(id) = revealed.filter(|id| rows.iter().any(|r| r.id == *id)) {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(rows)
        })
        .await?;
    if let Some(id) = revealed {
        let Some(row) = rows.iter().find(|r| r.id == id) else {
            return Err(not_on_page(staff));
        };
        tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %row.appointment_id, "desk: phone number revealed");
    }
    Ok(html(views::day_page(
        &staff.session,
        &config,
        &clinic,
        day,
        &rows,
        revealed,
    )))
}

#[derive(Deserialize)]
pub(super) struct RevealForm {
    appointment: i64,
    clinic: Option<String>,
    date: Option<String>,
    back: Option<String>,
}

pub(super) async fn reveal(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<RevealForm>,
) -> Result<Response, Response> {
    let q = DayQuery {
        clinic: f.clinic,
        date: f.date,
    };
    if f.back.as_deref() == Some("follow-ups") {
        follow_ups_page(&state, &staff, &q, Some(f.appointment), None).await
    } else {
        board(&state, &staff, &q, Some(f.appointment)).await
    }
}

// ---- follow-ups and replies ------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(super) struct FollowUpQuery {
    clinic: Option<String>,
    date: Option<String>,
    done: Option<String>,
}

pub(super) async fn follow_ups(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FollowUpQuery>,
) -> Result<Response, Response> {
    let day = DayQuery {
        clinic: q.clinic,
        date: q.date,
    };
    follow_ups_page(&state, &staff, &day, None, q.done.as_deref()).await
}

async fn follow_ups_page(
    state: &DeskState,
    staff: &Staff,
    q: &DayQuery,
    revealed: Option<i64>,
    done: Option<&str>,
) -> Result<Response, Response> {
    let (config, clinic, day) = page_day(state, staff, q.clinic.as_deref(), q.date.as_deref())?;
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let (key, actor, now) = (clinic.key.clone(), staff.actor(), state.clock.now());
    let (the_config, the_clinic) = (std::sync::Arc::clone(&config), clinic.clone());
    let rows = state
        .db(move |s| {
            let list = crate::jobs::follow_ups_for(s, &the_config, &the_clinic, day)?;
            let board = s.board(&key, from, to)?;
            let rows = list
                .into_iter()
                .map(|f| {
                    let row = board
                        .iter()
                        .find(|b| b.appointment_id == f.appointment_id)
                        .cloned();
                    (f, row)
                })
                .collect::<Vec<_>>();
            // Only a reveal that shows a number is audited.
            if let Some(id) = revealed.filter(|id| shown(&rows, *id).is_some()) {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(rows)
        })
        .await?;
    if let Some(id) = revealed {
        let Some(row) = shown(&rows, id) else {
            return Err(not_on_page(staff));
        };
        tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %row.appointment_id, "desk: phone number revealed");
    }
    let done = done
        .and_then(views::Notice::from_key)
        .map(views::Notice::text);
    Ok(html(views::follow_ups(
        &staff.session,
        &config,
        &clinic,
        day,
        &rows,
        revealed,
        done,
    )))
}

/// The follow-up row with this id whose number the page can show.
fn shown(
    rows: &[(crate::store::FollowUp, Option<crate::store::BoardRow>)],
    id: i64,
) -> Option<&crate::store::BoardRow> {
    rows.iter()
        .filter_map(|(_, b)| b.as_ref())
        .find(|b| b.id == id)
}

#[derive(Deserialize)]
pub(super) struct ActionForm {
    clinic: String,
    appointment: String,
    date: Option<String>,
    action: String,
    note: Option<String>,
}

pub(super) async fn follow_up_action(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ActionForm>,
) -> Result<Response, Response> {
    let note = f
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let Some(action) = StaffAction::parse(&f.action)
        .ok()
        .filter(|a| StaffAction::ON_THE_DESK.contains(a))
    else {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Unknown action",
                "Choose one of the actions in the list.",
            ),
        )
            .into_response());
    };
    if action == StaffAction::Note && note.is_none() {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "The note is empty",
                "Write the note in the box, then press Save.",
            ),
        )
            .into_response());
    }
    let now = state.clock.now();
    let actor = staff.actor();
    let (clinic, appointment) = (f.clinic.clone(), f.appointment.clone());
    let done = state
        .db(move |s| {
            match s.set_status(
                Some(&clinic),
                &appointment,
                action,
                note.as_deref(),
                &actor,
                now,
            ) {
                Ok(_) => Ok(true),
                Err(StoreError::NotFound(_) | StoreError::Ambiguous(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await?;
    if done {
        tracing::info!(user = %staff.session.user, clinic = %f.clinic, appointment = %f.appointment, action = %f.action, "desk: follow-up action");
        // The notice is a key the page maps to a fixed text, never text from the URL.
        Ok(Redirect::to(&format!(
            "/desk/follow-ups?clinic={}&date={}&done={}",
            urlencode(&f.clinic),
            urlencode(f.date.as_deref().unwrap_or_default()),
            urlencode(&f.action)
        ))
        .into_response())
    } else {
        Err((
            StatusCode::NOT_FOUND,
            views::message(
                Some(&staff.session),
                "No such appointment",
                "Reload the list and try again.",
            ),
        )
            .into_response())
    }
}

pub(super) async fn replies(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FollowUpQuery>,
) -> Result<Response, Response> {
    let done = q
        .done
        .as_deref()
        .and_then(views::Notice::from_key)
        .map(views::Notice::text);
    replies_page(&state, &staff, StatusCode::OK, done).await
}

async fn replies_page(
    state: &DeskState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<&str>,
) -> Result<Response, Response> {
    let rows = state.db(|s| s.replies(true, None)).await?;
    Ok((status, views::replies(&staff.session, &rows, notice)).into_response())
}

#[derive(Deserialize)]
pub(super) struct HandledForm {
    reply: i64,
    note: Option<String>,
}

pub(super) async fn reply_handled(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<HandledForm>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let actor = staff.actor();
    let note = f
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let handled = state
        .db(move |s| s.handle_reply(f.reply, &actor, note.as_deref(), now))
        .await?;
    match handled {
        Handled::Now => Ok(Redirect::to(&format!(
            "/desk/replies?done={}",
            views::Notice::ReplyHandled.key()
        ))
        .into_response()),
        Handled::Already(by) => {
            let by = by.strip_prefix("staff:").unwrap_or(&by);
            let notice = format!("Already handled by {by}; nothing changed");
            replies_page(&state, &staff, StatusCode::CONFLICT, Some(&notice)).await
        }
        Handled::NotWaiting => Err((
            StatusCode::NOT_FOUND,
            views::message(
                Some(&staff.session),
                "No such reply",
                "No reply with that number is waiting for a person. Reload the list of replies.",
            ),
        )
            .into_response()),
    }
}

// ---- stats -----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(super) struct StatsQuery {
    clinic: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(super) async fn stats(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
) -> Result<Response, Response> {
    let (config, clinic, today) = page_day(&state, &staff, q.clinic.as_deref(), None)?;
    let (from, to) = match (parse_day(q.from.as_deref()), parse_day(q.to.as_deref())) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(why), _) | (_, Err(why)) => return Err(bad_date(&staff, &why)),
    };
    let to = to.unwrap_or(today);
    // The shared default range; never before the first day the desk shows.
    let from = from.unwrap_or_else(|| crate::jobs::stats_from(to).max(day_range().0));
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    let (start, end) = (
        local_day_bounds(clinic.time_zone, from).0,
        local_day_bounds(clinic.time_zone, to).1,
    );
    let key = clinic.key.clone();
    let counts = state.db(move |s| s.stats(Some(&key), start, end)).await?;
    Ok(html(views::stats(
        &staff.session,
        &config,
        &clinic,
        from,
        to,
        &counts,
    )))
}
