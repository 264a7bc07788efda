//! Follow-ups: who to call and what staff did about it.

use super::{
    CsrfForm, DayQuery, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff,
    StaffAction, State, StatusCode, StoreError, html, local_day_bounds, not_on_page, page_day,
    urlencode, views,
};

#[derive(Deserialize, Default)]
pub(in crate::desk) struct FollowUpQuery {
    clinic: Option<String>,
    date: Option<String>,
    pub(super) done: Option<String>,
}

pub(in crate::desk) async fn follow_ups(
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

pub(super) async fn follow_ups_page(
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
pub(in crate::desk) struct ActionForm {
    clinic: String,
    appointment: String,
    date: Option<String>,
    action: String,
    note: Option<String>,
}

pub(in crate::desk) async fn follow_up_action(
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
