//! Schedule feeds beside the CSV: an HL7 v2 SIU listener ([`hl7`]) and a FHIR R4 source
//! ([`fhir`]). Each turns what it receives into the one normalised record an upload's rows
//! are ([`ImportRow`]) and applies it through [`crate::import::apply_record`], so a feed
//! follows the very rules an upload does. This file holds what both kinds share: what a
//! message says once read ([`Reading`]), why one is refused ([`Refusal`]), applying a stored
//! message ([`apply_reading`]) and the freshness guard ([`holds`], pure).

pub mod fhir;
pub mod hl7;
pub mod updates;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{Config, Feed, FeedKind};
use crate::import::{ImportError, ImportRow};
use crate::plan::humanize;
use crate::store::{FeedStatus, SlotChange, Store};

/// What one feed message or resource says, once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// An appointment as the practice system now has it.
    Appointment(ImportRow),
    /// A cancellation the practice system says the patient made (HL7 S15 with a
    /// `patient_cancel_reasons` SCH-6, FHIR `cancelationReason` `pat`): applied as any
    /// appointment is, and its slot is opened for the waitlist in the same transaction.
    PatientCancelled(ImportRow),
    /// A time slot blocked (SIU S23) or opened (S24): kept for the waitlist.
    Slot(Slot),
}

/// A slot a feed blocked or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The clinic's key.
    pub clinic: String,
    /// Opened (S24) or blocked (S23).
    pub opened: bool,
    /// Its start, UTC.
    pub starts_at: DateTime<Utc>,
    /// Its length.
    pub duration_min: u32,
    /// The provider, if named.
    pub provider: Option<String>,
    /// The location as the feed names it.
    pub location: Option<String>,
}

/// Why a message cannot be applied, in words staff read on the Feeds page and the sender
/// reads in the ACK's MSA-3/ERR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a message this feed takes (not SIU, an event we do not handle, not HL7 at all):
    /// HL7's `AR`, and the sender should not send it again.
    #[error("{0}")]
    Rejected(String),
    /// A message we take that cannot be applied as it is (unknown clinic, no start time, no
    /// mobile number): HL7's `AE`. The appointment's id, when it could be read, is kept.
    #[error("{reason}")]
    Error {
        /// What is wrong and how to fix it.
        reason: String,
        /// The appointment's id in the source (SCH-2, the FHIR id), when read.
        external_id: Option<String>,
    },
}

impl Refusal {
    /// The appointment's id in the source, when it could be read.
    pub fn external_id(&self) -> Option<&str> {
        match self {
            Self::Error { external_id, .. } => external_id.as_deref(),
            Self::Rejected(_) => None,
        }
    }

    /// An `AE` refusal without an appointment id.
    pub fn error(reason: impl Into<String>) -> Self {
        Self::Error {
            reason: reason.into(),
            external_id: None,
        }
    }
}

/// Applies what stored message `message` of `feed` says, with the message marked applied in
/// the same transaction; returns what it did (`new`, `updated`, `cancelled`, `unchanged`,
/// `slot opened`, `slot blocked`). `origin` names the message in audit rows (`SIU^S13 1234`).
pub fn apply_reading(
    store: &mut Store,
    config: &Config,
    feed: &Feed,
    message: i64,
    origin: &str,
    reading: &Reading,
    now: DateTime<Utc>,
) -> Result<String, ImportError> {
    match reading {
        Reading::Appointment(row) | Reading::PatientCancelled(row) => {
            let grace = matches!(reading, Reading::PatientCancelled(_))
                .then(|| config.waitlist.for_clinic(&row.clinic))
                .filter(|w| w.enabled)
                .map(|w| w.grace);
            let actor = format!("feed:{}", feed.name);
            let from = crate::import::RecordFrom {
                source: &feed.source,
                actor: &actor,
                origin,
            };
            let applied =
                crate::import::apply_record(store, config, &from, row, now, |tx, applied| {
                    if let Some(grace) = grace {
                        tx.open_patient_cancellation(
                            applied.appointment_id,
                            &feed.name,
                            grace,
                            now,
                        )?;
                    }
                    tx.settle_feed_message(
                        message,
                        applied.outcome.as_str(),
                        &row.appointment_id,
                        applied.appointment_id,
                        now,
                    )
                })?;
            Ok(applied.outcome.as_str().to_string())
        }
        Reading::Slot(s) => {
            store.apply_slot_change(
                &feed.name,
                message,
                &SlotChange {
                    clinic: &s.clinic,
                    opened: s.opened,
                    starts_at: s.starts_at,
                    duration_min: s.duration_min,
                    provider: s.provider.as_deref(),
                    location: s.location.as_deref(),
                },
                now,
            )?;
            Ok(if s.opened {
                "slot opened"
            } else {
                "slot blocked"
            }
            .to_string())
        }
    }
}

/// Applies what a stored message says, or records why it cannot be, the one way every path
/// does (an HL7 message as it arrives, a FHIR resource in a sync, Apply again): a reading the
/// apply rules refuse (`ImportError::Options`, `StoreError::Refused` or `NotFound`: a clinic no
/// longer in the database, say) is a refusal with those words, like one the reader made.
/// `Ok(Err(refusal))` is a refused message; `Err` only a store that failed.
pub fn apply_or_refuse(
    store: &mut Store,
    config: &Config,
    feed: &Feed,
    message: i64,
    origin: &str,
    read: Result<&Reading, Refusal>,
    now: DateTime<Utc>,
) -> Result<Result<String, Refusal>, crate::store::StoreError> {
    use crate::store::StoreError;
    let refusal = match read {
        Ok(reading) => match apply_reading(store, config, feed, message, origin, reading, now) {
            Ok(outcome) => return Ok(Ok(outcome)),
            Err(
                ImportError::Options(why)
                | ImportError::Store(StoreError::Refused(why) | StoreError::NotFound(why)),
            ) => Refusal::Error {
                reason: why,
                external_id: match reading {
                    Reading::Appointment(r) | Reading::PatientCancelled(r) => {
                        Some(r.appointment_id.clone())
                    }
                    Reading::Slot(_) => None,
                },
            },
            Err(ImportError::Store(e)) => return Err(e),
        },
        Err(refusal) => refusal,
    };
    store.refuse_feed_message(message, &refusal.to_string(), refusal.external_id(), now)?;
    Ok(Err(refusal))
}

/// What re-applying a stored message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reapplied {
    /// It applied this time; what it did (`new`, `updated`, ...).
    Applied(String),
    /// It was already applied: nothing was done again.
    AlreadyApplied,
    /// It is still refused, and why.
    Refused(String),
}

/// Why a stored message cannot be re-applied at all.
#[derive(Debug, thiserror::Error)]
pub enum ReapplyError {
    /// No stored message has that id.
    #[error("there is no feed message {0}")]
    NoSuchMessage(i64),
    /// Its feed is no longer configured.
    #[error("feed {0:?} is no longer configured, so its message cannot be applied")]
    NoSuchFeed(String),
    /// The retention purge emptied it: there is nothing left to read.
    #[error(
        "message {0} cannot be read again: its text was removed by the retention purge, which keeps such messages for a set number of days; ask the practice system to send it again"
    )]
    Purged(i64),
    /// Writing failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Reads stored message `id` again with today's configuration (staff fixed what refused it:
/// a location mapped to a clinic, a clinic added) and applies it, or records why it is still
/// refused. A message already applied is left alone.
pub fn reapply(
    store: &mut Store,
    config: &Config,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Reapplied, ReapplyError> {
    let message = store
        .feed_message(id)?
        .ok_or(ReapplyError::NoSuchMessage(id))?;
    if message.state == crate::store::MessageState::Applied {
        return Ok(Reapplied::AlreadyApplied);
    }
    let feed = config
        .feeds
        .get(&message.feed)
        .ok_or_else(|| ReapplyError::NoSuchFeed(message.feed.clone()))?;
    // The purge leaves the row and empties the text; no message is empty as it arrives.
    let body = message.body.unwrap_or_default();
    if body.is_empty() {
        return Err(ReapplyError::Purged(id));
    }
    let read = match &feed.kind {
        FeedKind::Hl7(_) => hl7::reread(config, feed, &body),
        FeedKind::Fhir(_) => fhir::reread(config, feed, &body),
    };
    let (origin, read) = match read {
        Ok((origin, reading)) => (origin, Ok(reading)),
        Err(refusal) => (String::new(), Err(refusal)),
    };
    Ok(
        match apply_or_refuse(
            store,
            config,
            feed,
            id,
            &origin,
            read.as_ref().map_err(Clone::clone),
            now,
        )? {
            Ok(done) => Reapplied::Applied(done),
            Err(refusal) => Reapplied::Refused(refusal.to_string()),
        },
    )
}

/// [`reapply`] done by `actor` (`staff:NAME` at the desk, `admin:USER` at the command line) and
/// audited as `reapply_feed_message`, in one wording wherever it is pressed: the outcome, or
/// the refusal with numbers masked. An unknown message or a store failure is not audited.
pub fn reapply_as(
    store: &mut Store,
    config: &Config,
    id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Reapplied, ReapplyError> {
    let done = reapply(store, config, id, now);
    let words = match &done {
        Ok(Reapplied::Applied(outcome)) => format!("applied: {outcome}"),
        Ok(Reapplied::AlreadyApplied) => "already applied".to_string(),
        Ok(Reapplied::Refused(why)) => {
            format!("still refused: {}", crate::phone::mask_loose(why))
        }
        Err(ReapplyError::NoSuchMessage(_) | ReapplyError::Store(_)) => return done,
        Err(e) => format!("not applied: {e}"),
    };
    let appointment = store.feed_message(id)?.and_then(|m| m.appointment_id);
    store.audit_staff(
        actor,
        "reapply_feed_message",
        appointment,
        Some(&words),
        Some(&format!("message {id}")),
        now,
    )?;
    done
}

/// A feed that holds its clinics' reminders, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHold {
    /// The feed's name.
    pub feed: String,
    /// The clinics it holds (keys).
    pub clinics: Vec<String>,
    /// Why, in words: what was last heard and the limit it passed (dispatch's hold reason
    /// is this after `held: `).
    pub reason: String,
}

/// The freshness guard, per feed (pure): an HL7 feed silent for longer than its
/// `max_silence`, or a FHIR feed whose last successful sync is older than its
/// `max_import_age` (or that never synced), holds the reminders of every clinic it feeds.
pub fn holds(config: &Config, statuses: &[FeedStatus], now: DateTime<Utc>) -> Vec<FeedHold> {
    let by_name: BTreeMap<&str, &FeedStatus> =
        statuses.iter().map(|s| (s.feed.as_str(), s)).collect();
    let mut out = Vec::new();
    for feed in config.feeds.values() {
        let status = by_name.get(feed.name.as_str());
        let reason = match &feed.kind {
            FeedKind::Hl7(h) => {
                let Some(limit) = h.max_silence else { continue };
                match status.and_then(|s| s.last_message_at) {
                    Some(at) if now - at <= limit => continue,
                    Some(at) => format!(
                        "HL7 feed {} has sent nothing for {}, longer than its max_silence ({}); check the interface engine's channel to reminderd",
                        feed.name,
                        humanize(now - at),
                        humanize(limit)
                    ),
                    None => format!(
                        "HL7 feed {} has not sent a message yet (max_silence {}); check the interface engine's channel to reminderd",
                        feed.name,
                        humanize(limit)
                    ),
                }
            }
            FeedKind::Fhir(f) => {
                let Some(limit) = f.max_import_age else {
                    continue;
                };
                let error = status
                    .and_then(|s| s.last_error.as_ref())
                    .map(|(_, e)| format!("; last error: {e}"))
                    .unwrap_or_default();
                match status.and_then(|s| s.last_success_at) {
                    Some(at) if now - at <= limit => continue,
                    Some(at) => format!(
                        "FHIR feed {} last synced {} ago, longer than its max_import_age ({}){error}",
                        feed.name,
                        humanize(now - at),
                        humanize(limit)
                    ),
                    None => format!(
                        "FHIR feed {} has not synced yet (max_import_age {}){error}",
                        feed.name,
                        humanize(limit)
                    ),
                }
            }
        };
        out.push(FeedHold {
            feed: feed.name.clone(),
            clinics: feed.clinics().into_iter().map(str::to_string).collect(),
            reason,
        });
    }
    out
}

/// The hold reason for each held clinic (the first feed's, if several hold it).
pub fn held_clinics(holds: &[FeedHold]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for h in holds {
        for c in &h.clinics {
            out.entry(c.clone()).or_insert_with(|| h.reason.clone());
        }
    }
    out
}

/// Whether a clinic's schedule comes from a feed: then the upload's `max_import_age` guard
/// does not apply to it (the feed's own guard does).
pub fn is_fed(config: &Config, clinic: &str) -> bool {
    // Asked for every due message a dispatch batch judges: no allocation.
    config
        .feeds
        .values()
        .any(|f| f.clinic.as_deref() == Some(clinic) || f.locations.values().any(|c| c == clinic))
}

#[cfg(test)]
mod tests;
