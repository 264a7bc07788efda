//! Replies that need a person, and marking them handled.

use super::follow_ups::FollowUpQuery;
use super::{
    CsrfForm, Deserialize, DeskState, Handled, IntoResponse, Query, Redirect, Response, Staff,
    State, StatusCode, views,
};

pub(in crate::desk) async fn replies(
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
pub(in crate::desk) struct HandledForm {
    reply: i64,
    note: Option<String>,
}

pub(in crate::desk) async fn reply_handled(
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
