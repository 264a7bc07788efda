//! The Feeds page: how each schedule feed from the practice system is doing, its refused
//! messages, one message read with its numbers masked (an audited view), and Apply again
//! after a fix (audited, post/redirect/get with what happened).

use super::{
    CsrfForm, Deserialize, DeskState, IntoResponse, Query, Redirect, Response, Staff, State,
    StatusCode, html, views,
};

use crate::feeds::{Reapplied, ReapplyError};
use crate::store::MessageState;
use views::FeedCard;

/// Refused messages listed under each feed, newest first.
const REFUSED_SHOWN: usize = 20;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct FeedsQuery {
    /// What the last Apply again did: `applied`, `refused`, `already`.
    done: Option<String>,
    /// The message it was about.
    message: Option<String>,
}

/// `GET /desk/feeds`.
pub(in crate::desk) async fn feeds(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FeedsQuery>,
) -> Result<Response, Response> {
    let (config, now) = (state.config(), state.clock.now());
    let the_config = std::sync::Arc::clone(&config);
    let message = q.message.as_deref().and_then(|m| m.parse::<i64>().ok());
    let (cards, about) = state
        .db(move |s| {
            let statuses = s.feed_statuses()?;
            let holds = crate::feeds::holds(&the_config, &statuses, now);
            let mut cards = Vec::new();
            for feed in the_config.feeds.values() {
                cards.push(FeedCard {
                    feed: feed.clone(),
                    status: statuses.iter().find(|st| st.feed == feed.name).cloned(),
                    counts: s.feed_counts(&feed.name)?,
                    hold: holds
                        .iter()
                        .find(|h| h.feed == feed.name)
                        .map(|h| h.reason.clone()),
                    refused: s.feed_messages(
                        &feed.name,
                        Some(MessageState::Refused),
                        REFUSED_SHOWN,
                    )?,
                });
            }
            let about = match message {
                Some(id) => s.feed_message(id)?,
                None => None,
            };
            Ok((cards, about))
        })
        .await?;
    let notice = q.done.as_deref().zip(about.as_ref()).and_then(|(done, m)| {
        let what = format!("Message {}", m.message_id);
        match (done, m.state) {
            ("applied", MessageState::Applied) => Some(format!(
                "{what} applied: {}.",
                views::outcome_words(m.outcome.as_deref().unwrap_or("applied"))
            )),
            ("already", _) => Some(format!(
                "{what} was already applied: nothing was done again."
            )),
            ("refused", MessageState::Refused) => Some(format!(
                "{what} still refused: {}",
                crate::phone::mask_loose(m.error.as_deref().unwrap_or_default())
            )),
            _ => None,
        }
    });
    Ok(html(views::feeds_page(
        &staff.session,
        &config,
        &cards,
        notice.as_deref(),
        now,
    )))
}

#[derive(Deserialize)]
pub(in crate::desk) struct MessageQuery {
    id: Option<String>,
}

fn no_such_message(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such message",
            "That message is not stored (the link may be old). Open the Feeds page and choose it there.",
        ),
    )
        .into_response()
}

/// `GET /desk/feeds/message?id=`: the message as received, numbers masked; audited as a view
/// (it holds a patient's details).
pub(in crate::desk) async fn feed_message(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<MessageQuery>,
) -> Result<Response, Response> {
    let Some(id) = q.id.as_deref().and_then(|i| i.trim().parse::<i64>().ok()) else {
        return Err(no_such_message(&staff));
    };
    let (now, actor) = (state.clock.now(), staff.actor());
    let found = state
        .db(move |s| {
            let found = s.feed_message(id)?;
            if let Some(m) = &found {
                s.audit_staff(
                    &actor,
                    "view_feed_message",
                    m.appointment_id,
                    Some(&format!("{} {}", m.feed, m.message_id)),
                    None,
                    now,
                )?;
            }
            Ok(found)
        })
        .await?;
    let Some(m) = found else {
        return Err(no_such_message(&staff));
    };
    tracing::info!(user = %staff.session.user, message = id, "desk: feed message viewed");
    let body = crate::phone::mask_numbers(m.body.as_deref().unwrap_or_default());
    Ok(html(views::message_page(
        &staff.session,
        &state.config(),
        &m,
        &body,
        now,
    )))
}

#[derive(Deserialize)]
pub(in crate::desk) struct ReapplyForm {
    id: String,
}

/// `POST /desk/feeds/reapply`: reads the stored message again with today's configuration and
/// applies it, audited as the staff member, then back to the Feeds page saying what happened.
pub(in crate::desk) async fn reapply(
    State(state): State<DeskState>,
    CsrfForm(staff, f): CsrfForm<ReapplyForm>,
) -> Result<Response, Response> {
    let Ok(id) = f.id.trim().parse::<i64>() else {
        return Err(no_such_message(&staff));
    };
    let (config, now, actor) = (state.config(), state.clock.now(), staff.actor());
    let done = state
        .db(move |s| {
            Ok(
                match crate::feeds::reapply_as(s, &config, id, &actor, now) {
                    Ok(Reapplied::Applied(_)) => Ok("applied"),
                    Ok(Reapplied::AlreadyApplied) => Ok("already"),
                    Ok(Reapplied::Refused(_)) => Ok("refused"),
                    Err(ReapplyError::Store(e)) => return Err(e),
                    Err(ReapplyError::NoSuchMessage(_)) => Err(None),
                    Err(e) => Err(Some(e.to_string())),
                },
            )
        })
        .await?;
    match done {
        Ok(key) => {
            tracing::info!(user = %staff.session.user, message = id, done = key, "desk: feed message applied again");
            Ok(
                Redirect::to(&format!("/desk/feeds?done={key}&message={id}#m-{id}"))
                    .into_response(),
            )
        }
        Err(None) => Err(no_such_message(&staff)),
        Err(Some(why)) => Err((
            StatusCode::CONFLICT,
            views::message(Some(&staff.session), "Not applied", &why),
        )
            .into_response()),
    }
}
