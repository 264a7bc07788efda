//! A day board row's actions: arrived, completed, no-show and cancel (those two after a
//! confirm page), a note, and undo of the last desk-set status; each audited, then back to the
//! row (post/redirect/get).

use super::day::filter_of;
use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, StaffAction,
    State, StatusCode, StoreError, html, parse_day, views,
};
use crate::store::BoardRow;

#[derive(Deserialize)]
pub(in crate::desk) struct StatusQuery {
    row: Option<String>,
    action: Option<String>,
    date: Option<String>,
    doctor: Option<String>,
    unanswered: Option<String>,
}

/// The confirm page of a no-show or a cancellation, or the note form; a no-show before the
/// appointment's time is refused here already.
pub(in crate::desk) async fn status_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<StatusQuery>,
) -> Result<Response, Response> {
    let action = board_action(&staff, q.action.as_deref())?;
    let id = q.row.as_deref().and_then(|r| r.trim().parse::<i64>().ok());
    let row = match id {
        Some(id) => state.db(move |s| s.board_row(id)).await?,
        None => None,
    };
    let Some(row) = row else {
        return Err(gone(&staff));
    };
    let config = state.config();
    let Some(clinic) = config.clinic(&row.clinic) else {
        return Err(gone(&staff));
    };
    let day = board_day(q.date.as_deref(), &row, clinic.time_zone);
    let filter = filter_of(q.doctor.as_deref(), q.unanswered.as_deref());
    if action == StaffAction::NoShow && state.clock.now() < row.starts_at {
        // An answer to a question, not a failed request: the POST is what refuses (409).
        let back = views::board_at(&clinic.key, day, &filter, row.id);
        return Ok(html(views::status_refused(
            &staff.session,
            "Too early for a no-show",
            &views::too_early(clinic, &row),
            &back,
        )));
    }
    Ok(html(views::status_confirm(
        &staff.session,
        clinic,
        &row,
        action,
        day,
        &filter,
    )))
}

#[derive(Deserialize)]
pub(in crate::desk) struct StatusForm {
    row: i64,
    action: String,
    note: Option<String>,
    date: Option<String>,
    doctor: Option<String>,
    unanswered: Option<String>,
}

/// What the store said about a row's action.
enum Outcome {
    Done(BoardRow),
    Refused(BoardRow, String),
    Gone,
}

/// Sets a row's status (or arrival, or a note), or undoes the last desk-set one, then goes
/// back to the row; a refusal (a no-show before its time, nothing to undo) says why.
pub(in crate::desk) async fn status_action(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<StatusForm>,
) -> Result<Response, Response> {
    let note = f
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let undo = f.action == "undo";
    let action = if undo {
        None
    } else {
        Some(board_action(&staff, Some(&f.action))?)
    };
    if action == Some(StaffAction::Note) && note.is_none() {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "The note is empty",
                "Write the note in the box, then press Save the note.",
            ),
        )
            .into_response());
    }
    let (id, actor, now) = (f.row, staff.actor(), state.clock.now());
    let outcome = state
        .db(move |s| {
            let Some(row) = s.board_row(id)? else {
                return Ok(Outcome::Gone);
            };
            let done = match action {
                Some(a) => s
                    .set_status_row(id, a, note.as_deref(), &actor, now)
                    .map(drop),
                None => s.undo_desk_status(id, &actor, now).map(drop),
            };
            // A status set at the desk answers the patient's waiting replies, as from a
            // follow-up card: one action clears the appointment everywhere.
            if let (Ok(()), Some(a)) = (&done, action)
                && a.changes_status()
            {
                s.settle_replies(
                    &row.clinic,
                    &row.appointment_id,
                    &actor,
                    note.as_deref(),
                    now,
                )?;
            }
            match done {
                Ok(()) => Ok(Outcome::Done(row)),
                Err(StoreError::Refused(why)) => Ok(Outcome::Refused(row, why)),
                Err(StoreError::NotFound(_)) => Ok(Outcome::Gone),
                Err(e) => Err(e),
            }
        })
        .await?;
    let config = state.config();
    let filter = filter_of(f.doctor.as_deref(), f.unanswered.as_deref());
    let back = |row: &BoardRow| {
        let zone = config
            .clinic(&row.clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        views::board_at(
            &row.clinic,
            board_day(f.date.as_deref(), row, zone),
            &filter,
            row.id,
        )
    };
    match outcome {
        Outcome::Done(row) => {
            tracing::info!(user = %staff.session.user, clinic = %row.clinic, appointment = %row.appointment_id, action = %f.action, "desk: day board action");
            let notice = action.map_or(views::BoardNotice::Undone, |a| match a {
                StaffAction::Arrived => views::BoardNotice::Arrived,
                StaffAction::Completed => views::BoardNotice::Completed,
                StaffAction::NoShow => views::BoardNotice::NoShow,
                StaffAction::Cancelled => views::BoardNotice::Cancelled,
                _ => views::BoardNotice::Note,
            });
            // The notice is a key the page maps to a fixed text, never text from the URL.
            let url =
                back(&row).replacen('#', &format!("&done={}&row={}#", notice.key(), row.id), 1);
            Ok(Redirect::to(&url).into_response())
        }
        Outcome::Refused(row, why) => Err((
            StatusCode::CONFLICT,
            views::status_refused(&staff.session, "Not done", &why, &back(&row)),
        )
            .into_response()),
        Outcome::Gone => Err(gone(&staff)),
    }
}

/// The action a board form names, or the page saying it is not one.
fn board_action(staff: &Staff, action: Option<&str>) -> Result<StaffAction, Response> {
    action
        .and_then(|a| StaffAction::parse(a).ok())
        .filter(|a| StaffAction::ON_THE_BOARD.contains(a))
        .ok_or_else(|| {
            (
                StatusCode::BAD_REQUEST,
                views::message(
                    Some(&staff.session),
                    "Unknown action",
                    "Choose one of the buttons on the day board.",
                ),
            )
                .into_response()
        })
}

/// The day the board came from, else the appointment's own local day.
fn board_day(date: Option<&str>, row: &BoardRow, zone: chrono_tz::Tz) -> chrono::NaiveDate {
    parse_day(date)
        .ok()
        .flatten()
        .unwrap_or_else(|| row.starts_at.with_timezone(&zone).date_naive())
}

fn gone(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such appointment",
            "That appointment is no longer in the schedule (an upload may have changed it). Go back to the day board and reload it.",
        ),
    )
        .into_response()
}
