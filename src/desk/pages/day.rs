//! The day board and the reveal of a phone number on it.

use super::follow_ups::follow_ups_page;
use super::{
    CsrfForm, DayQuery, Deserialize, DeskState, Query, Response, Staff, State, html,
    local_day_bounds, not_on_page, page_day, views,
};

pub(in crate::desk) async fn day(
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
pub(in crate::desk) struct RevealForm {
    appointment: i64,
    clinic: Option<String>,
    date: Option<String>,
    back: Option<String>,
}

pub(in crate::desk) async fn reveal(
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
