//! The day board, its filters, and the reveal of a phone number on it (audited, then back to
//! the row by post/redirect/get).

use super::follow_ups::follow_ups_page;
use super::{
    CsrfForm, DayQuery, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff,
    State, html, local_day_bounds, not_on_page, page_day, urlencode, views,
};
use crate::desk::auth;

/// The day board's address: which clinic and day, the filters, and what was just done.
#[derive(Deserialize, Default)]
pub(in crate::desk) struct BoardQuery {
    clinic: Option<String>,
    date: Option<String>,
    doctor: Option<String>,
    unanswered: Option<String>,
    /// A [`views::BoardNotice`] key.
    done: Option<String>,
    /// The row `done` concerns.
    row: Option<String>,
    /// A row whose number was revealed, with this session's proof ([`show_token`]).
    show: Option<String>,
}

/// The board's filter from its query or form fields; blank means "all".
pub(super) fn filter_of(doctor: Option<&str>, unanswered: Option<&str>) -> views::BoardFilter {
    views::BoardFilter {
        doctor: doctor
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        unanswered: matches!(unanswered.map(str::trim), Some("1" | "on" | "true")),
    }
}

/// Proof, for the address after a reveal, that this session revealed row `id` (and audited
/// it): a link cannot show a number to anyone else, and Refresh does not ask to resubmit.
fn show_token(csrf: &str, id: i64) -> String {
    let proof = auth::token_hash(&format!("reveal:{csrf}:{id}"));
    format!("{id}-{}", &proof[..24])
}

/// The row a [`show_token`] of this session names.
fn shown_row(csrf: &str, token: &str) -> Option<i64> {
    let id = token.split_once('-')?.0.parse().ok()?;
    auth::same_token(token, &show_token(csrf, id)).then_some(id)
}

pub(in crate::desk) async fn day(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<BoardQuery>,
) -> Result<Response, Response> {
    let (config, clinic, day) = page_day(&state, &staff, q.clinic.as_deref(), q.date.as_deref())?;
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let key = clinic.key.clone();
    let rows = state.db(move |s| s.board(&key, from, to)).await?;
    let revealed = q
        .show
        .as_deref()
        .and_then(|t| shown_row(&staff.session.csrf, t))
        .filter(|id| rows.iter().any(|r| r.id == *id));
    let done = q
        .done
        .as_deref()
        .and_then(views::BoardNotice::from_key)
        .zip(q.row.as_deref().and_then(|r| r.parse().ok()));
    let filter = filter_of(q.doctor.as_deref(), q.unanswered.as_deref());
    Ok(html(views::day_page(&views::Board {
        session: &staff.session,
        config: &config,
        clinic: &clinic,
        day,
        rows: &rows,
        revealed,
        filter: &filter,
        done,
        now: state.clock.now(),
    })))
}

#[derive(Deserialize)]
pub(in crate::desk) struct RevealForm {
    appointment: i64,
    clinic: Option<String>,
    date: Option<String>,
    back: Option<String>,
    doctor: Option<String>,
    unanswered: Option<String>,
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
        return follow_ups_page(&state, &staff, &q, Some(f.appointment), None).await;
    }
    let (_, clinic, day) = page_day(&state, &staff, q.clinic.as_deref(), q.date.as_deref())?;
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let (key, actor, now, id) = (
        clinic.key.clone(),
        staff.actor(),
        state.clock.now(),
        f.appointment,
    );
    let shown = state
        .db(move |s| {
            let on_page = s
                .board_row(id)?
                .filter(|r| r.clinic == key && r.starts_at >= from && r.starts_at < to);
            // Only a reveal that shows a number is audited.
            if on_page.is_some() {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(on_page)
        })
        .await?;
    let Some(row) = shown else {
        return Err(not_on_page(&staff));
    };
    tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %row.appointment_id, "desk: phone number revealed");
    let filter = filter_of(f.doctor.as_deref(), f.unanswered.as_deref());
    Ok(Redirect::to(&format!(
        "/desk/day?clinic={}&date={}{}&show={}#a-{id}",
        urlencode(&clinic.key),
        day.format("%Y-%m-%d"),
        filter.query(),
        show_token(&staff.session.csrf, id)
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reveal_token_names_its_row_for_its_session_only() {
        let (mine, theirs) = ("a".repeat(64), "b".repeat(64));
        let token = show_token(&mine, 42);
        assert_eq!(shown_row(&mine, &token), Some(42));
        assert_eq!(shown_row(&theirs, &token), None);
        let other_row = token.replacen("42-", "43-", 1);
        assert_eq!(shown_row(&mine, &other_row), None);
        assert_eq!(shown_row(&mine, "42"), None);
        assert_eq!(shown_row(&mine, "x-y"), None);
    }
}
