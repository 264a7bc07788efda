//! Feedback after the visit, as the jobs run it: requests planned beside the reminders, and
//! scores read off replies (a tapped score button, or a bare digit answering the request).

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{Channel, Intent};
use crate::phone::E164;
use crate::plan::{self, Due};
use crate::replies::{self, Message, Reading, Scored};
use crate::store::{ScoreRecord, ScoreStored, Store, StoreError};

/// The feedback requests due at `now` (none without a feedback rule).
pub fn due(store: &Store, config: &Config, now: DateTime<Utc>) -> Result<Vec<Due>, StoreError> {
    let Some(back) = plan::lookback(config) else {
        return Ok(Vec::new());
    };
    let visits = store.feedback_visits(now - back, now)?;
    Ok(plan::plan_feedback(config, &visits, now))
}

/// The reply paths' hook (WhatsApp and SMS), before the waitlist's: `Ok(recorded)` when the
/// reply was a score and was recorded here (`false`: recorded before); `Err(reading)` to go
/// on with the ordinary path, with the reading to use (a score that cannot be matched for
/// sure goes to staff). A comment after a request is not a score: it goes on as words.
#[allow(clippy::too_many_arguments)]
pub fn route_reply(
    store: &mut Store,
    config: &Config,
    (event_id, message_id, kind): (Option<i64>, &str, &str),
    from: Option<&E164>,
    content: &Message<'_>,
    shown: Option<&str>,
    replied_to: Option<&str>,
    reading: Reading,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Result<bool, Reading>, StoreError> {
    let (request, by_context) = match content {
        Message::Button { payload } => match replies::parse_score(payload) {
            Some((_, Some(id))) => (store.feedback_request(id)?, false),
            Some((_, None)) => (latest(store, from)?, false),
            None => return Ok(Err(reading)),
        },
        Message::Text { body } if replies::typed_score(body).is_some() => {
            match replied_to
                .map(|w| store.feedback_request_by_wamid(w))
                .transpose()?
                .flatten()
            {
                Some(r) => (Some(r), true),
                None => (latest(store, from)?, false),
            }
        }
        _ => return Ok(Err(reading)),
    };
    let scored = replies::score_reply(content, request.as_ref(), by_context, from, now);
    let (Some(request), Some(from)) = (request.as_ref(), from) else {
        return Ok(Err(staff_or(scored, reading)));
    };
    let sent = match scored {
        Some(Scored::New(s) | Scored::Again { sent: s, .. }) => s,
        other => return Ok(Err(staff_or(other, reading))),
    };
    let a = &request.appointment;
    let acknowledge =
        channel == Channel::WhatsApp || config.sms.as_ref().is_some_and(|s| s.acknowledge);
    let ack = config
        .clinic(&a.clinic)
        .filter(|_| acknowledge)
        .and_then(|clinic| {
            crate::template::ack_text(
                &config.replies.acks,
                Intent::Feedback,
                clinic,
                &a.patient_name,
                &a.language,
                a.starts_at,
            )
        });
    let outcome = store.commit_score(
        &ScoreRecord {
            event_id,
            message_id,
            from,
            kind,
            text: shown,
            request,
            score: sent,
            ack,
            channel,
        },
        now,
    )?;
    if outcome != ScoreStored::Replayed {
        tracing::info!(
            from = %from.masked(),
            appointment = a.appointment_id,
            score = sent,
            first = outcome == ScoreStored::New,
            "feedback score"
        );
    }
    Ok(Ok(outcome != ScoreStored::Replayed))
}

/// The sender's newest feedback request, if they have a number.
fn latest(
    store: &Store,
    from: Option<&E164>,
) -> Result<Option<replies::FeedbackRequest>, StoreError> {
    from.map(|f| store.latest_feedback_request(f))
        .transpose()
        .map(Option::flatten)
}

/// A score that goes to staff carries why; anything else goes on as it was read.
fn staff_or(scored: Option<Scored>, reading: Reading) -> Reading {
    match scored {
        Some(Scored::Staff(why)) => Reading {
            intent: Intent::Feedback,
            outbox_id: None,
            needs_staff: Some(why),
        },
        _ => reading,
    }
}
