//! What arrives from the SMS providers, once verified: delivery reports and texts patients (or
//! their caregivers) send back. The same store calls and pure reply logic as WhatsApp's.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{Channel, OutboxState};
use crate::phone::E164;
use crate::sms::{DeliveryReport, InboundSms, OptOutType};
use crate::store::{Delivery, ReplyRecord, StatusApplied, Store, StoreError};

/// What processing one SMS webhook body did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SmsSummary {
    /// Statuses that moved a message forward.
    pub statuses: usize,
    /// Statuses already applied, out of order, or of a state we do not track.
    pub stale: usize,
    /// Statuses for messages we do not know.
    pub unknown: usize,
    /// Texts recorded as replies.
    pub replies: usize,
    /// The same body (or text) seen before.
    pub replay: bool,
}

/// Applies delivery reports from `source` (`twilio`, `msg91`), after storing the body they
/// came in. A failed SMS puts the patient on the call list with both reasons when it
/// replaced a WhatsApp message.
pub fn process_sms_status(
    store: &mut Store,
    source: &str,
    body: &[u8],
    reports: &[DeliveryReport],
    now: DateTime<Utc>,
) -> Result<SmsSummary, StoreError> {
    let event = store.record_event_from(source, body, now)?;
    let mut summary = SmsSummary {
        replay: event.replay,
        ..SmsSummary::default()
    };
    if event.replay && event.processed {
        return Ok(summary);
    }
    for r in reports {
        let Some(state) = r.state else {
            summary.stale += 1;
            continue;
        };
        // Only a failure needs the row: whether to try once more, and what staff read.
        let row = match state {
            OutboxState::Failed => store.due_row_for(&r.id, None)?,
            _ => None,
        };
        let why = || r.error.clone().unwrap_or_else(|| "not delivered".into());
        if let Some(row) = &row
            && let Some(at) = crate::dispatch::retry_text_at(row, r.error_code, now)
            && store.retry_text(&r.id, at, r.error_code, &why(), now)?
        {
            summary.statuses += 1;
            continue;
        }
        let needs_staff = row
            .filter(|row| row.kind != crate::model::Kind::ReplyAck)
            .map(|row| crate::dispatch::sms_staff(&row, &why()));
        let d = Delivery {
            wamid: r.id.clone(),
            outbox_id: None,
            state,
            error_code: r.error_code,
            error: r.error.clone(),
            needs_staff,
            fallback: None,
            off_whatsapp_until: None,
        };
        match store.apply_status(&d, now)? {
            StatusApplied::Moved(_) => summary.statuses += 1,
            StatusApplied::Stale => summary.stale += 1,
            StatusApplied::Unknown => summary.unknown += 1,
        }
    }
    store.finish_event(event.id, "applied", now)?;
    metrics::counter!("reminderd_sms_webhook_total", "kind" => "status")
        .increment(reports.len() as u64);
    Ok(summary)
}

/// Records and applies a text sent to the clinic's SMS number: digits ("1", "2", "3") and the
/// configured words resolve through `replies` to the sender's one reminded appointment (the
/// sender may be the patient or their caregiver), or go to staff. STOP and START concern
/// texts to that number (the provider's own opt-out handling said so, or the words did).
pub fn process_sms_inbound(
    store: &mut Store,
    config: &Config,
    source: &str,
    body: &[u8],
    sms: &InboundSms,
    now: DateTime<Utc>,
) -> Result<SmsSummary, StoreError> {
    use crate::replies::{self, Intent, Message};
    let event = store.record_event_from(source, body, now)?;
    let mut summary = SmsSummary {
        replay: event.replay,
        ..SmsSummary::default()
    };
    let from = E164::from_wa_id(&sms.from);
    let mut reading = replies::read(&Message::Text { body: &sms.body }, &config.replies.words);
    // The provider has already acted on its keywords; follow it rather than the words.
    match sms.opt_out {
        Some(OptOutType::Stop) => reading.intent = Intent::Stop,
        Some(OptOutType::Start) => reading.intent = Intent::Start,
        Some(OptOutType::Help) | None => {}
    }
    // A digit scoring a visit the newest message asked about is feedback's.
    let reading = match super::feedback::route_reply(
        store,
        config,
        (Some(event.id), &sms.id, "sms"),
        from.as_ref(),
        &Message::Text { body: &sms.body },
        Some(&sms.body),
        None,
        reading,
        Channel::Sms,
        now,
    )? {
        Ok(recorded) => {
            store.finish_event(event.id, "applied", now)?;
            summary.replies = usize::from(recorded);
            return Ok(summary);
        }
        Err(reading) => reading,
    };
    // A digit or word answering an offer (a waitlist offer, a numbered list) is the waitlist's.
    let reading = match crate::waitlist::booking::route_reply(
        store,
        config,
        (Some(event.id), &sms.id, "sms"),
        from.as_ref(),
        &Message::Text { body: &sms.body },
        None,
        reading,
        Channel::Sms,
        now,
    )? {
        Ok(recorded) => {
            store.finish_event(event.id, "applied", now)?;
            summary.replies = usize::from(recorded);
            return Ok(summary);
        }
        Err(reading) => reading,
    };
    let found = store.reply_candidates(from.as_ref(), None, None, now)?;
    let resolution = replies::resolve(&reading, &found, from.as_ref(), now);
    let acknowledge = config.sms.as_ref().is_some_and(|s| s.acknowledge);
    let list = crate::waitlist::booking::list_follows(store, config, &resolution, now)?;
    let ack = super::ack_for(config, &resolution).filter(|_| acknowledge && !list);
    let from_contact = super::from_contact(&resolution, from.as_ref());
    let recorded = store.commit_reply(
        &ReplyRecord {
            event_id: event.id,
            message_id: &sms.id,
            from: from.as_ref(),
            kind: "sms",
            text: Some(&sms.body),
            resolution: &resolution,
            patients: &found.patients,
            ack,
            media: None,
            channel: Channel::Sms,
            from_contact,
        },
        now,
    )?;
    if let (true, true, Some(a)) = (recorded, list, &resolution.appointment) {
        let to = (super::recipient(&resolution, from.as_ref()), Channel::Sms);
        crate::waitlist::booking::offer_reschedule(store, config, a, to, now)?;
    }
    store.finish_event(event.id, "applied", now)?;
    if recorded {
        summary.replies = 1;
        tracing::info!(
            from = %from.as_ref().map_or_else(|| "(no number)".into(), E164::masked),
            intent = resolution.intent.as_str(),
            outcome = resolution.outcome.as_str(),
            "text reply"
        );
    }
    metrics::counter!("reminderd_sms_webhook_total", "kind" => "reply").increment(1);
    Ok(summary)
}
