//! Replies that need a person: revealing the sender's number, applying an ambiguous answer to
//! the appointment staff choose, and marking a reply handled.

use super::REVEAL_SHOWN;
use super::{
    CsrfForm, Deserialize, DeskState, Handled, IntoResponse, Query, Redirect, Response, Staff,
    State, StatusCode, views,
};
use crate::replies::Intent;
use crate::store::ReplyApplied;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct RepliesQuery {
    done: Option<String>,
    /// A reply whose number was just revealed (shown only after an audited reveal).
    shown: Option<String>,
}

pub(in crate::desk) async fn replies(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<RepliesQuery>,
) -> Result<Response, Response> {
    let done = q.done.as_deref().and_then(|k| {
        views::replies_notice(k).or_else(|| views::Notice::from_key(k).map(views::Notice::text))
    });
    let shown = q.shown.as_deref().and_then(|s| s.parse().ok());
    replies_page(&state, &staff, StatusCode::OK, done, shown).await
}

async fn replies_page(
    state: &DeskState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<&str>,
    shown: Option<i64>,
) -> Result<Response, Response> {
    let (now, actor) = (state.clock.now(), staff.actor());
    let cards = state
        .db(move |s| {
            let mut cards = Vec::new();
            for reply in s.replies(true, None)? {
                // An answer that names no appointment offers the sender's coming ones.
                let answer = matches!(
                    Intent::parse(&reply.intent),
                    Ok(Intent::Confirm | Intent::Cancel | Intent::Reschedule)
                );
                let choices = if answer && reply.appointment_id.is_none() {
                    s.reply_choices(&reply.from, now)?
                } else {
                    Vec::new()
                };
                let revealed = shown == Some(reply.id)
                    && s.revealed_since(&actor, Some(reply.id), None, now - REVEAL_SHOWN)?;
                cards.push(views::ReplyCard {
                    reply,
                    choices,
                    revealed,
                });
            }
            Ok(cards)
        })
        .await?;
    let config = state.config();
    Ok((
        status,
        views::replies(&staff.session, &config, &cards, notice),
    )
        .into_response())
}

fn no_such_reply(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such reply",
            "No reply with that number is waiting for a person. Reload the list of replies.",
        ),
    )
        .into_response()
}

/// Someone else dealt with the reply first: the list again, saying who.
async fn already_handled(state: &DeskState, staff: &Staff, by: &str) -> Result<Response, Response> {
    let by = by.strip_prefix("staff:").unwrap_or(by);
    let notice = format!("Already handled by {by}; nothing changed");
    replies_page(state, staff, StatusCode::CONFLICT, Some(&notice), None).await
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
        Handled::Already(by) => already_handled(&state, &staff, &by).await,
        Handled::NotWaiting => Err(no_such_reply(&staff)),
    }
}

#[derive(Deserialize)]
pub(in crate::desk) struct ReplyForm {
    reply: i64,
}

/// Reveals the number of a waiting reply (audited, naming the reply), then back to its card,
/// where it shows whole.
pub(in crate::desk) async fn reveal_reply(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ReplyForm>,
) -> Result<Response, Response> {
    let (now, actor, id) = (state.clock.now(), staff.actor(), f.reply);
    let phone = state
        .db(move |s| s.reveal_reply_phone(id, &actor, now))
        .await?;
    if phone.is_none() {
        return Err(no_such_reply(&staff));
    }
    tracing::info!(user = %staff.session.user, reply = id, "desk: phone number revealed on replies");
    Ok(Redirect::to(&format!("/desk/replies?shown={id}#r-{id}")).into_response())
}

#[derive(Deserialize)]
pub(in crate::desk) struct ApplyForm {
    reply: i64,
    appointment: i64,
}

/// Applies an answer that named no appointment to the one staff chose, as if the patient had
/// answered that appointment's reminder (acknowledgement included), and handles the reply.
pub(in crate::desk) async fn apply_reply(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ApplyForm>,
) -> Result<Response, Response> {
    let (now, actor, config) = (state.clock.now(), staff.actor(), state.config());
    let (reply, appointment) = (f.reply, f.appointment);
    let applied = state
        .db(move |s| {
            // The acknowledgement the patient would have had, in their language.
            let ack = match s.waiting_reply(reply)? {
                Some(r) => s
                    .reply_choices(&r.from, now)?
                    .into_iter()
                    .find(|c| c.id == appointment)
                    .and_then(|c| {
                        let clinic = config.clinic(&c.clinic)?;
                        crate::template::ack_text(
                            &config.replies.acks,
                            r.intent,
                            clinic,
                            &c.patient_name,
                            &c.language,
                            c.starts_at,
                        )
                    }),
                None => None,
            };
            s.apply_reply(reply, appointment, &actor, ack.as_deref(), now)
        })
        .await?;
    match applied {
        ReplyApplied::Now => {
            tracing::info!(user = %staff.session.user, reply, appointment, "desk: answer applied to an appointment");
            Ok(Redirect::to("/desk/replies?done=applied").into_response())
        }
        ReplyApplied::Already(by) => already_handled(&state, &staff, &by).await,
        ReplyApplied::NotWaiting => Err(no_such_reply(&staff)),
        ReplyApplied::Refused(why) => {
            replies_page(&state, &staff, StatusCode::CONFLICT, Some(&why), None).await
        }
    }
}
