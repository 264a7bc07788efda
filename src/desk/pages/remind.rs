//! "Remind now": one patient's reminder on demand, and all of a day's unanswered at once.
//!
//! A press is counted once: every form carries a one-time nonce that becomes the outbox row's
//! rule (`press:<nonce>`), so the same form sent again (a double click, Back and send again, a
//! retry after a timeout) finds its row and adds nothing, while a press on a page shown later
//! is a new reminder.

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, html, local_day_bounds, page_day, parse_day, urlencode, views,
};
use crate::plan;
use crate::store::{Press, Pressed, RemindTarget};

/// A fresh one-time token for the "Remind now" forms of one page (the same for every row:
/// a press is one appointment's and one nonce's).
pub(in crate::desk) fn remind_nonce() -> String {
    crate::desk::auth::new_token()
}

#[derive(Deserialize, Default)]
pub(in crate::desk) struct RemindQuery {
    clinic: Option<String>,
    appointment: Option<String>,
    date: Option<String>,
    /// The nonce of the press just made (the page reads what it did from the store).
    done: Option<String>,
    /// Set when that press had been received before.
    again: Option<String>,
}

/// `GET /desk/remind`: one patient's page with `appointment`, else the day's unanswered
/// (tomorrow at the clinic unless `date` says otherwise).
pub(in crate::desk) async fn remind_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<RemindQuery>,
) -> Result<Response, Response> {
    let tomorrow = q.date.is_none();
    let (config, clinic, day) = page_day(&state, &staff, q.clinic.as_deref(), q.date.as_deref())?;
    let day = if tomorrow {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    let now = state.clock.now();
    let done = q.done.filter(|n| crate::desk::auth::is_token(n));
    let again = q.again.is_some();
    let key = clinic.key.clone();
    let nonce = remind_nonce();
    if let Some(appointment) = q.appointment {
        let (target, pressed) = state
            .db(move |s| {
                let target = s.remind_target(&key, &appointment)?;
                let pressed = match (&done, &target) {
                    (Some(n), Some(t)) => s
                        .press_rows(&key, n)?
                        .into_iter()
                        .filter(|m| m.appointment == t.candidate.id)
                        .collect(),
                    _ => Vec::new(),
                };
                Ok((target, pressed))
            })
            .await?;
        let Some(target) = target else {
            return Err(no_such_appointment(&staff));
        };
        let decision = plan::manual(&config, &target.candidate, now);
        let done = (!pressed.is_empty()).then_some(views::Done {
            rows: &pressed,
            again,
        });
        return Ok(html(views::remind_one(
            &staff.session,
            &clinic,
            &target,
            &decision,
            now,
            &nonce,
            done,
        )));
    }
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let had_done = done.is_some();
    let (rows, pressed) = state
        .db(move |s| {
            let rows = s.remind_unanswered(&key, from, to, now)?;
            let pressed = match &done {
                Some(n) => s.press_rows(&key, n)?,
                None => Vec::new(),
            };
            Ok((rows, pressed))
        })
        .await?;
    let rows: Vec<(RemindTarget, _)> = rows
        .into_iter()
        .map(|t| {
            let d = plan::manual(&config, &t.candidate, now);
            (t, d)
        })
        .collect();
    let done = had_done.then_some(views::Done {
        rows: &pressed,
        again,
    });
    Ok(html(views::remind_all(
        &staff.session,
        &clinic,
        day,
        &rows,
        now,
        &nonce,
        done,
    )))
}

#[derive(Deserialize)]
pub(in crate::desk) struct RemindForm {
    clinic: String,
    appointment: String,
    nonce: String,
}

/// `POST /desk/remind`: one patient's press.
pub(in crate::desk) async fn remind(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<RemindForm>,
) -> Result<Response, Response> {
    if !crate::desk::auth::is_token(&f.nonce) {
        return Err(out_of_date(&staff));
    }
    let config = state.config();
    let Some(clinic) = config.clinic(&f.clinic).cloned() else {
        return Err(no_such_appointment(&staff));
    };
    let (now, actor) = (state.clock.now(), staff.actor());
    let (key, appointment, nonce) = (f.clinic.clone(), f.appointment.clone(), f.nonce.clone());
    let decide_with = std::sync::Arc::clone(&config);
    let mut results = state
        .db(move |s| {
            s.press_remind(&key, Press::One(&appointment), &nonce, &actor, now, |c| {
                plan::manual(&decide_with, c, now)
            })
        })
        .await?;
    let Some((target, pressed)) = results.pop() else {
        return Err(no_such_appointment(&staff));
    };
    let again = match pressed {
        Pressed::Queued(..) => false,
        Pressed::Again(..) => true,
        Pressed::Refused(why) => {
            // Nothing was written: the page says why, with nothing to press.
            let page = views::remind_one(
                &staff.session,
                &clinic,
                &target,
                &Err(why),
                now,
                &f.nonce,
                None,
            );
            return Err((StatusCode::CONFLICT, page).into_response());
        }
    };
    tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %target.appointment_id, again, "desk: reminder asked for");
    Ok(Redirect::to(&format!(
        "/desk/remind?clinic={}&appointment={}&done={}{}",
        urlencode(&clinic.key),
        urlencode(&target.appointment_id),
        f.nonce,
        if again { "&again=1" } else { "" }
    ))
    .into_response())
}

#[derive(Deserialize)]
pub(in crate::desk) struct RemindAllForm {
    clinic: String,
    date: String,
    nonce: String,
}

/// `POST /desk/remind/all`: the confirmed press for a day's unanswered patients (those still
/// unanswered now, which may be fewer than the page counted).
pub(in crate::desk) async fn remind_all(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<RemindAllForm>,
) -> Result<Response, Response> {
    if !crate::desk::auth::is_token(&f.nonce) {
        return Err(out_of_date(&staff));
    }
    let Ok(Some(day)) = parse_day(Some(&f.date)) else {
        return Err(out_of_date(&staff));
    };
    let config = state.config();
    let Some(clinic) = config.clinic(&f.clinic).cloned() else {
        return Err(out_of_date(&staff));
    };
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let (now, actor) = (state.clock.now(), staff.actor());
    let (key, nonce) = (clinic.key.clone(), f.nonce.clone());
    let decide_with = std::sync::Arc::clone(&config);
    let results = state
        .db(move |s| {
            s.press_remind(
                &key,
                Press::Unanswered(from, to),
                &nonce,
                &actor,
                now,
                |c| plan::manual(&decide_with, c, now),
            )
        })
        .await?;
    let queued = results
        .iter()
        .filter(|(_, p)| matches!(p, Pressed::Queued(..)))
        .count();
    let again = queued == 0 && results.iter().any(|(_, p)| matches!(p, Pressed::Again(..)));
    tracing::info!(user = %staff.session.user, clinic = %clinic.key, date = %day, queued, "desk: reminders asked for, every unanswered patient of the day");
    Ok(Redirect::to(&format!(
        "/desk/remind?clinic={}&date={}&done={}{}",
        urlencode(&clinic.key),
        day.format("%Y-%m-%d"),
        f.nonce,
        if again { "&again=1" } else { "" }
    ))
    .into_response())
}

fn no_such_appointment(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such appointment",
            "That appointment is not in the schedule (another clinic, or it no longer exists), so no reminder was sent. Go back to the day and try again.",
        ),
    )
        .into_response()
}

fn out_of_date(staff: &Staff) -> Response {
    (
        StatusCode::BAD_REQUEST,
        views::message(
            Some(&staff.session),
            "This form is out of date",
            "No reminder was sent. Go back, reload the page and press the button again.",
        ),
    )
        .into_response()
}
