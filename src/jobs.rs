//! The jobs as the CLI and the daemon run them: each is a short sequence of store calls around
//! the pure planning and dispatch logic.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::plan::{self, BOOKING_WINDOW, Due};
use crate::store::{PlanCounts, Store, StoreError};

/// Plans everything due at `now` and materialises it (or, with `dry_run`, only counts).
pub fn plan_due(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<(Vec<Due>, PlanCounts), StoreError> {
    let candidates =
        store.plan_candidates(now, now + plan::horizon(config), now - BOOKING_WINDOW)?;
    let due = plan::plan(config, &candidates, now);
    let counts = store.insert_due(&due, now, dry_run)?;
    Ok((due, counts))
}

/// What one webhook body did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookSummary {
    /// Replies recorded (new message ids).
    pub replies: usize,
    /// Replies already recorded before (Meta retried).
    pub duplicates: usize,
    /// Statuses that moved a message forward.
    pub statuses: usize,
    /// Statuses that were duplicates or out of order.
    pub stale_statuses: usize,
    /// Statuses for messages that are not ours.
    pub unknown_statuses: usize,
}

/// Stores a signed webhook body, then applies it. `Ok(Err(why))` means the body was stored
/// but is not JSON (answer 400); `Err` is a database failure (answer 500, Meta retries).
pub fn process_webhook(
    store: &mut Store,
    config: &Config,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Result<WebhookSummary, String>, StoreError> {
    use crate::replies::{self, Outcome};
    use crate::store::{ReplyRecord, StatusApplied};
    use crate::whatsapp::WebhookEnvelope;

    let event_id = store.record_event(body, now)?;
    let envelope: WebhookEnvelope = match serde_json::from_str(body) {
        Ok(e) => e,
        Err(e) => {
            metrics::counter!("reminderd_webhook_events_total", "kind" => "malformed").increment(1);
            let why = format!("malformed: {e}");
            store.finish_event(event_id, &why, now)?;
            return Ok(Err(why));
        }
    };
    let mut summary = WebhookSummary::default();
    for change in envelope
        .entry
        .iter()
        .flat_map(|e| &e.changes)
        .filter(|c| c.field == "messages")
    {
        for status in &change.value.statuses {
            match store.apply_status(status, now)? {
                StatusApplied::Moved(_) => summary.statuses += 1,
                StatusApplied::Stale => summary.stale_statuses += 1,
                StatusApplied::Unknown => summary.unknown_statuses += 1,
            }
        }
        for msg in change.value.messages.iter().filter(|m| !m.id.is_empty()) {
            // A sender known only by username (no number) cannot be matched: staff decide.
            let from = msg.from.clone().unwrap_or_default();
            let reading = replies::read(&msg.content(), &config.replies.words);
            let context = msg.context.as_ref().and_then(|c| c.id.as_deref());
            let found = store.reply_candidates(&from, reading.outbox_id, context, now)?;
            let resolution = replies::resolve(&reading, &found, &from, now);
            let ack = match (&resolution.appointment, resolution.outcome) {
                (Some(a), Outcome::Applied) => config.clinic(&a.clinic).and_then(|clinic| {
                    crate::template::ack_text(
                        &config.replies.acks,
                        resolution.intent,
                        clinic,
                        &a.patient_name,
                        &a.language,
                        a.starts_at,
                    )
                }),
                _ => None,
            };
            let text = msg.shown_text();
            let recorded = store.commit_reply(
                &ReplyRecord {
                    event_id,
                    message_id: &msg.id,
                    from: &from,
                    kind: &msg.kind,
                    text: text.as_deref(),
                    resolution: &resolution,
                    patients: &found.patients,
                    ack,
                },
                now,
            )?;
            if recorded {
                summary.replies += 1;
                tracing::info!(
                    from = %crate::phone::mask(&from),
                    intent = resolution.intent.as_str(),
                    outcome = resolution.outcome.as_str(),
                    "reply"
                );
            } else {
                summary.duplicates += 1;
            }
        }
    }
    store.finish_event(event_id, "applied", now)?;
    for (kind, n) in [
        ("reply", summary.replies),
        ("duplicate_reply", summary.duplicates),
        ("status", summary.statuses),
        ("stale_status", summary.stale_statuses),
        ("unknown_status", summary.unknown_statuses),
    ] {
        if n > 0 {
            metrics::counter!("reminderd_webhook_events_total", "kind" => kind).increment(n as u64);
        }
    }
    Ok(Ok(summary))
}
