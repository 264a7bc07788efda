//! The HL7 v2 SIU feed: MLLP framing, reading SIU messages into records, ACKs, the listener.
//!
//! A message is stored raw before anything else ([`crate::store::Store::receive_feed_message`]),
//! then read ([`read()`], pure) and applied through the upload's own rules with the message
//! marked applied in the same transaction; only then is the `ACK` built and sent. A crash
//! anywhere before the commit leaves the message `received`, the sender gets no ACK and
//! resends, and the resend applies it once.

pub mod ack;
mod listen;
pub mod mllp;
pub mod read;

pub use listen::serve;
pub use read::{Action, Header, header, read};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::config::{Config, Feed};
use crate::feeds::{Refusal, apply_or_refuse};
use crate::store::{Db, MessageState};
use crate::time::Clock;
use ack::{Code, ErrCode};

/// One lock per feed: a feed's messages are applied one at a time, in the order they
/// arrived (tokio's mutex is fair), so a burst for one appointment applies in order.
fn feed_lock(feed: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(locks.entry(feed.to_string()).or_default())
}

/// A fresh ACK control id: the time and a process-wide counter.
fn ack_id(now: chrono::DateTime<chrono::Utc>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "R{}{}",
        now.format("%Y%m%d%H%M%S"),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What became of one message, for the ACK and the log.
#[derive(Debug)]
enum Done {
    /// Applied now, or before (a replay); the outcome word.
    Applied { outcome: String, replay: bool },
    /// Refused, with the reason.
    Refused(Refusal),
    /// The store failed: nothing is known to be applied; the sender should resend.
    Failed(String),
}

/// Handles one message of `feed` as received (`bytes`, one HL7 message without framing) and
/// returns the ACK to send, built only after the message's fate is committed.
pub async fn handle(
    db: &Db,
    config: &Arc<Config>,
    feed: &Feed,
    bytes: &[u8],
    clock: Clock,
) -> Vec<u8> {
    let body = String::from_utf8_lossy(bytes).into_owned();
    let head = header(&body);
    let message_id = match head.as_ref().map(|h| h.control_id.as_str()) {
        Some(id) if !id.is_empty() => id.chars().take(200).collect(),
        _ => format!("sha256:{:x}", Sha256::digest(bytes)),
    };
    let kind = head
        .as_ref()
        .map(|h| h.trigger.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let lock = feed_lock(&feed.name);
    let turn = lock.lock().await;
    let (config, feed_c, id_c, kind_c) = (
        Arc::clone(config),
        feed.clone(),
        message_id.clone(),
        kind.clone(),
    );
    let done = db
        .run(move |store| {
            let now = clock.now();
            let received =
                match store.receive_feed_message(&feed_c.name, &id_c, &kind_c, &body, now) {
                    Ok(r) => r,
                    Err(e) => return Done::Failed(e.to_string()),
                };
            if received.replay && received.state == MessageState::Applied {
                return Done::Applied {
                    outcome: "replay".into(),
                    replay: true,
                };
            }
            let settle = |store: &mut crate::store::Store, origin: &str, r| match apply_or_refuse(
                store,
                &config,
                &feed_c,
                received.id,
                origin,
                r,
                now,
            ) {
                Ok(Ok(outcome)) => Done::Applied {
                    outcome,
                    replay: received.replay,
                },
                Ok(Err(r)) => Done::Refused(r),
                Err(e) => Done::Failed(e.to_string()),
            };
            match read(&config, &feed_c, &body) {
                Err(r) => settle(store, "", Err(r)),
                Ok((_, Action::Ignore(why))) => {
                    match store.settle_feed_message_unchanged(received.id, &why, now) {
                        Ok(()) => Done::Applied {
                            outcome: why,
                            replay: received.replay,
                        },
                        Err(e) => Done::Failed(e.to_string()),
                    }
                }
                Ok((_, Action::Apply(reading))) => {
                    settle(store, &format!("{kind_c} {id_c}"), Ok(&*reading))
                }
            }
        })
        .await
        .unwrap_or_else(|e| Done::Failed(e.to_string()));
    drop(turn);
    let now = clock.now();
    let (code, refusal) = match &done {
        Done::Applied { outcome, replay } => {
            tracing::info!(feed = %feed.name, message = %message_id, %kind, %outcome, replay, "HL7 message applied");
            (Code::Accept, None)
        }
        Done::Refused(r) => {
            tracing::warn!(feed = %feed.name, message = %message_id, %kind, reason = %r, "HL7 message refused");
            match r {
                Refusal::Rejected(why) => {
                    let err = match head.as_ref() {
                        None => ErrCode::Sequence,
                        Some(h) if !h.trigger.to_ascii_uppercase().starts_with("SIU") => {
                            ErrCode::MessageType
                        }
                        Some(_) => ErrCode::Event,
                    };
                    (Code::Reject, Some((err, why.clone())))
                }
                Refusal::Error { reason, .. } => {
                    (Code::Error, Some((ErrCode::Application, reason.clone())))
                }
            }
        }
        Done::Failed(e) => {
            tracing::error!(feed = %feed.name, message = %message_id, error = %e, "HL7 message not stored or applied");
            (
                Code::Error,
                Some((
                    ErrCode::Application,
                    "reminderd could not store or apply the message (a database error); send it again".to_string(),
                )),
            )
        }
    };
    ack::ack(
        head.as_ref(),
        code,
        refusal.as_ref().map(|(e, r)| (*e, r.as_str())),
        &ack_id(now),
        now,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests;

/// A stored message read again (`feeds::reapply`) with today's configuration: its origin for
/// the audit trail (`SIU^S12 <MSH-10>`, as when it arrived) and what it says.
pub fn reread(
    config: &Config,
    feed: &Feed,
    body: &str,
) -> Result<(String, crate::feeds::Reading), Refusal> {
    let (head, action) = read(config, feed, body)?;
    match action {
        Action::Apply(reading) => Ok((format!("{} {}", head.trigger, head.control_id), *reading)),
        // Nothing to apply: such a message was settled when it arrived.
        Action::Ignore(why) => Err(Refusal::Rejected(why)),
    }
}
