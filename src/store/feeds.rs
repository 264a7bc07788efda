//! Schedule feeds in the store: every message as received (stored before it is applied, once
//! per message id), how each feed is doing, the slots a feed blocked or opened, and what the
//! practice system must be told of patients' answers (`source_updates`).

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{ImportTx, Store, StoreError};
use crate::time::from_unix;

/// Where a feed message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// Stored, not (yet) applied: a crash came between, or it is being applied now.
    Received,
    /// Applied; its ACK said so.
    Applied,
    /// It could not be applied; `error` says why.
    Refused,
}

impl MessageState {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Applied => "applied",
            Self::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "received" => Ok(Self::Received),
            "applied" => Ok(Self::Applied),
            "refused" => Ok(Self::Refused),
            other => Err(StoreError::Corrupt(format!("feed message state {other:?}"))),
        }
    }
}

/// A message as stored when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its row.
    pub id: i64,
    /// The message id was seen before (the sender resent it): it is not stored again.
    pub replay: bool,
    /// Where it stands: `Received` for a new one, or a replay of one a crash interrupted.
    pub state: MessageState,
    /// Why it was refused, for a replay of a refused message.
    pub error: Option<String>,
}

/// A stored feed message, as the Feeds page and `reminderd feeds` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMessage {
    /// Its row.
    pub id: i64,
    /// The feed's name.
    pub feed: String,
    /// MSH-10, or the FHIR resources' ids and versions.
    pub message_id: String,
    /// `SIU^S12`, `Appointment`, ...
    pub kind: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Where it stands.
    pub state: MessageState,
    /// What applying it did (`new`, `updated`, `cancelled`, `unchanged`, `slot opened`...).
    pub outcome: Option<String>,
    /// Why it was refused.
    pub error: Option<String>,
    /// The appointment's id in the source, once read.
    pub external_id: Option<String>,
    /// The appointment it applied to.
    pub appointment_id: Option<i64>,
    /// Times the sender sent it again.
    pub replays: i64,
    /// The message as received (only from [`Store::feed_message`]).
    pub body: Option<String>,
}

/// How one feed is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// The feed's name.
    pub feed: String,
    /// The last message received (HL7).
    pub last_message_at: Option<DateTime<Utc>>,
    /// The last sync attempt that ended (FHIR).
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last sync that read everything (FHIR).
    pub last_success_at: Option<DateTime<Utc>>,
    /// The last full sync of the horizon (FHIR).
    pub last_full_sync_at: Option<DateTime<Utc>>,
    /// The last error (a failed sync, a refused message) and when.
    pub last_error: Option<(DateTime<Utc>, String)>,
}

/// How many of a feed's messages stand where: read only where they are shown (the Feeds page,
/// `reminderd feeds`, `/metrics`), never on the dispatch or page-shell paths, since counting
/// grows with the feed's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedCounts {
    /// Messages applied.
    pub applied: i64,
    /// Messages refused (and not applied since).
    pub refused: i64,
    /// Messages stored and not applied (a crash interrupted them).
    pub waiting: i64,
    /// Messages the sender sent again.
    pub replays: i64,
}

/// How a FHIR sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncEnd {
    /// It read every page.
    pub ok: bool,
    /// It was a full sync of the horizon (not only what changed since the cursor).
    pub full: bool,
    /// The server's time it started at, the next incremental sync's `_lastUpdated=gt`
    /// (only moved forward on success).
    pub cursor: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A slot a feed blocked or opened (SIU S23/S24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotChange<'a> {
    /// The clinic's key.
    pub clinic: &'a str,
    /// Opened (S24) or blocked (S23).
    pub opened: bool,
    /// Its start.
    pub starts_at: DateTime<Utc>,
    /// Its length.
    pub duration_min: u32,
    /// The provider, if named.
    pub provider: Option<&'a str>,
    /// The location as the feed names it.
    pub location: Option<&'a str>,
}

/// A practice-system update to make (a patient's answer to a feed's appointment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUpdate {
    /// Its row.
    pub id: i64,
    /// The appointment.
    pub appointment_id: i64,
    /// The appointment's id in the source.
    pub external_id: String,
    /// The clinic's key.
    pub clinic: String,
    /// The feed the appointment came from.
    pub feed: String,
    /// `confirm` or `cancel`.
    pub action: String,
    /// `pending`, `done`, `staff`, `settled`, `skipped`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why it fell to staff, or the last failure.
    pub error: Option<String>,
    /// When the patient answered.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// Stores a feed message exactly as received, before anything reads it; a message id the
    /// feed sent before is counted as a replay and its stored state returned, so the caller
    /// acknowledges it again without applying it twice. Any message counts as the feed being
    /// alive (`max_silence`).
    pub fn receive_feed_message(
        &mut self,
        feed: &str,
        message_id: &str,
        kind: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<Received, StoreError> {
        let tx = self.conn.transaction()?;
        let (id, replays, state, error): (i64, i64, String, Option<String>) = tx.query_row(
            "INSERT INTO feed_messages (feed, message_id, kind, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (feed, message_id) DO UPDATE
                 SET replays = feed_messages.replays + 1, last_replay_at = excluded.received_at
             RETURNING id, replays, state, error",
            params![feed, message_id, kind, body, now.timestamp()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        tx.execute(
            "INSERT INTO feed_status (feed, last_message_at) VALUES (?1, ?2)
             ON CONFLICT (feed) DO UPDATE SET last_message_at = excluded.last_message_at",
            params![feed, now.timestamp()],
        )?;
        tx.commit()?;
        Ok(Received {
            id,
            replay: replays > 0,
            state: MessageState::parse(&state)?,
            error,
        })
    }

    /// Marks a stored message refused, with why (in words staff read); the feed's last error.
    pub fn refuse_feed_message(
        &mut self,
        id: i64,
        error: &str,
        external_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let feed: String = tx.query_row(
            "UPDATE feed_messages SET state = 'refused', error = ?2, external_id = coalesce(?3, external_id),
                    applied_at = NULL, outcome = NULL
             WHERE id = ?1 RETURNING feed",
            params![id, error, external_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO feed_status (feed, last_error, last_error_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (feed) DO UPDATE SET last_error = excluded.last_error, last_error_at = excluded.last_error_at",
            params![feed, error, now.timestamp()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a slot a feed blocked or opened and marks its message applied, together.
    pub fn apply_slot_change(
        &mut self,
        feed: &str,
        message: i64,
        slot: &SlotChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let clinic_id: i64 = tx
            .query_row(
                "SELECT id FROM clinics WHERE key = ?1",
                [slot.clinic],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("clinic {:?} is not in the database", slot.clinic))
            })?;
        tx.execute(
            "INSERT INTO slot_events (feed, message_id, clinic_id, kind, starts_at, duration_min, provider, location, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                feed,
                message,
                clinic_id,
                if slot.opened { "opened" } else { "blocked" },
                slot.starts_at.timestamp(),
                slot.duration_min,
                slot.provider,
                slot.location,
                now.timestamp()
            ],
        )?;
        let outcome = if slot.opened {
            "slot opened"
        } else {
            "slot blocked"
        };
        tx.execute(
            "UPDATE feed_messages SET state = 'applied', outcome = ?2, error = NULL, applied_at = ?3 WHERE id = ?1",
            params![message, outcome, now.timestamp()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a stored message applied though it changed nothing (an SIU event about a service
    /// or resource, S18 to S22): `outcome` says why.
    pub fn settle_feed_message_unchanged(
        &mut self,
        id: i64,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE feed_messages SET state = 'applied', outcome = ?2, error = NULL, applied_at = ?3 WHERE id = ?1",
            params![id, outcome, now.timestamp()],
        )?;
        Ok(())
    }

    /// A feed's messages, newest first: all, or only those in `state`.
    pub fn feed_messages(
        &self,
        feed: &str,
        state: Option<MessageState>,
        limit: usize,
    ) -> Result<Vec<FeedMessage>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, feed, message_id, kind, received_at, state, outcome, error, external_id, appointment_id, replays, NULL
             FROM feed_messages WHERE feed = ?1 AND (CAST(?2 AS TEXT) IS NULL OR state = ?2)
             ORDER BY received_at DESC, id DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![feed, state.map(MessageState::as_str), limit as i64],
            feed_message_row,
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// One stored message with its body (`None`: no such message).
    pub fn feed_message(&self, id: i64) -> Result<Option<FeedMessage>, StoreError> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT id, feed, message_id, kind, received_at, state, outcome, error, external_id, appointment_id, replays, body
                 FROM feed_messages WHERE id = ?1",
            )?
            .query_row([id], feed_message_row)
            .optional()?;
        found.transpose()
    }

    /// How every feed that has ever delivered or synced is doing, by name: one row a feed,
    /// cheap enough for every dispatch batch (the freshness guard reads it).
    pub fn feed_statuses(&self) -> Result<Vec<FeedStatus>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.feed, s.last_message_at, s.last_sync_at, s.last_success_at, s.last_full_sync_at,
                    s.last_error, s.last_error_at
             FROM feed_status s ORDER BY s.feed",
        )?;
        let t = |v: Option<i64>| v.map(from_unix);
        let rows = stmt.query_map((), |r| {
            let error: Option<String> = r.get(5)?;
            let error_at: Option<i64> = r.get(6)?;
            Ok(FeedStatus {
                feed: r.get(0)?,
                last_message_at: t(r.get(1)?),
                last_sync_at: t(r.get(2)?),
                last_success_at: t(r.get(3)?),
                last_full_sync_at: t(r.get(4)?),
                last_error: error.zip(error_at).map(|(e, at)| (from_unix(at), e)),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many of `feed`'s messages stand where (one pass over its messages).
    pub fn feed_counts(&self, feed: &str) -> Result<FeedCounts, StoreError> {
        Ok(self.conn.prepare_cached(
            "SELECT count(*) FILTER (WHERE state = 'applied'), count(*) FILTER (WHERE state = 'refused'),
                    count(*) FILTER (WHERE state = 'received'), coalesce(sum(replays), 0)
             FROM feed_messages WHERE feed = ?1",
        )?
        .query_row([feed], |r| {
            Ok(FeedCounts {
                applied: r.get(0)?,
                refused: r.get(1)?,
                waiting: r.get(2)?,
                replays: r.get(3)?,
            })
        })?)
    }

    /// How many of `feed`'s messages are refused: the desk's navigation count, read on every
    /// page, so it walks only the refused ones (the index leads with feed and state).
    pub fn refused_feed_messages(&self, feed: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM feed_messages WHERE feed = ?1 AND state = 'refused'",
            )?
            .query_row([feed], |r| r.get(0))?)
    }

    /// Records how a FHIR sync ended: the attempt's time always, success and the cursor only
    /// when it read everything, the error otherwise.
    pub fn record_sync(
        &mut self,
        feed: &str,
        end: &SyncEnd,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO feed_status (feed, last_sync_at) VALUES (?1, ?2)
             ON CONFLICT (feed) DO UPDATE SET last_sync_at = excluded.last_sync_at",
            params![feed, now.timestamp()],
        )?;
        if end.ok {
            self.conn.execute(
                "UPDATE feed_status SET last_success_at = ?2,
                        last_full_sync_at = CASE WHEN ?3 THEN ?2 ELSE last_full_sync_at END,
                        cursor = coalesce(?4, cursor)
                 WHERE feed = ?1",
                params![feed, now.timestamp(), end.full, end.cursor],
            )?;
        } else {
            self.conn.execute(
                "UPDATE feed_status SET last_error = ?2, last_error_at = ?3 WHERE feed = ?1",
                params![
                    feed,
                    end.error.as_deref().unwrap_or("the sync failed"),
                    now.timestamp()
                ],
            )?;
        }
        Ok(())
    }

    /// The cursor of a FHIR feed's last successful sync (`None`: never synced).
    pub fn feed_cursor(&self, feed: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM feed_status WHERE feed = ?1",
                [feed],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Appointments of a clinic from `source` that start in `[from, to)` and are booked: what
    /// a full sync expects the server to list again.
    pub fn booked_from_source(
        &self,
        clinic: &str,
        source: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.external_id FROM appointments a JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.source = ?2 AND a.status = 'booked' AND a.starts_at >= ?3 AND a.starts_at < ?4
             ORDER BY a.starts_at, a.external_id",
        )?;
        let rows = stmt.query_map(
            params![clinic, source, from.timestamp(), to.timestamp()],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Practice-system updates due at `now` (pending, past any retry time), oldest first.
    pub fn due_source_updates(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<SourceUpdate>, StoreError> {
        self.source_updates_where(
            "u.state = 'pending' AND (u.next_attempt_at IS NULL OR u.next_attempt_at <= ?1) ORDER BY u.id LIMIT ?2",
            params![now.timestamp(), limit as i64],
        )
    }

    /// Practice-system updates staff must make by hand (write-back off, refused, or failing),
    /// oldest first.
    pub fn source_updates_for_staff(&self) -> Result<Vec<SourceUpdate>, StoreError> {
        self.source_updates_where("u.state = 'staff' ORDER BY u.id", params![])
    }

    fn source_updates_where(
        &self,
        filter: &str,
        args: &[&dyn crate::store::sql::ToValue],
    ) -> Result<Vec<SourceUpdate>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT u.id, u.appointment_id, a.external_id, c.key, u.feed, u.action, u.state, u.attempts, u.error, u.created_at
             FROM source_updates u JOIN appointments a ON a.id = u.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE {filter}"
        ))?;
        let rows = stmt.query_map(args, |r| {
            Ok(SourceUpdate {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                external_id: r.get(2)?,
                clinic: r.get(3)?,
                feed: r.get(4)?,
                action: r.get(5)?,
                state: r.get(6)?,
                attempts: r.get(7)?,
                error: r.get(8)?,
                created_at: from_unix(r.get(9)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records what became of a practice-system update: `done`, `skipped` (nothing to tell:
    /// a confirmation without write-back), `staff` (with why), or `pending` again at `retry_at`.
    pub fn finish_source_update(
        &mut self,
        id: i64,
        state: &str,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE source_updates SET state = ?2, error = coalesce(?3, error), next_attempt_at = ?4,
                    attempts = attempts + 1, updated_at = ?5
             WHERE id = ?1 AND state = 'pending'",
            params![id, state, error, retry_at.map(|t| t.timestamp()), now.timestamp()],
        )?;
        Ok(())
    }

    /// Staff made a practice-system update by hand: settled, audited as them.
    pub fn settle_source_update(
        &mut self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let found: Option<(i64, String)> = tx
            .query_row(
                "UPDATE source_updates SET state = 'settled', settled_by = ?2, settled_at = ?3, updated_at = ?3
                 WHERE id = ?1 AND state = 'staff' RETURNING appointment_id, action",
                params![id, actor, now.timestamp()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((appointment_id, action)) = found else {
            return Ok(false);
        };
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, actor, action, new_value, reason)
             VALUES (?1, ?2, ?3, 'practice_system_updated', ?4, 'done by hand in the practice system')",
            params![now.timestamp(), appointment_id, actor, action],
        )?;
        tx.commit()?;
        Ok(true)
    }
}

impl ImportTx<'_> {
    /// Marks a feed message applied, in the transaction that applied it.
    pub fn settle_feed_message(
        &self,
        id: i64,
        outcome: &str,
        external_id: &str,
        appointment_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE feed_messages SET state = 'applied', outcome = ?2, error = NULL, external_id = ?3,
                    appointment_id = ?4, applied_at = ?5
             WHERE id = ?1",
            params![id, outcome, external_id, appointment_id, now.timestamp()],
        )?;
        Ok(())
    }
}

/// Queues what the practice system must be told of a patient's answer, in the answer's own
/// transaction, for an appointment that came from a feed (`source` not `csv`): a
/// confirmation or a cancellation. Nothing for an uploaded appointment: the next file says
/// what the practice system has.
pub(super) fn queue_source_update(
    conn: &crate::store::sql::Conn,
    appointment_id: i64,
    action: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO source_updates (appointment_id, feed, action, created_at, updated_at)
         SELECT id, source, ?2, ?3, ?3 FROM appointments WHERE id = ?1 AND source <> 'csv'",
        params![appointment_id, action, now.timestamp()],
    )?;
    Ok(())
}

type FeedMessageResult = Result<FeedMessage, StoreError>;

fn feed_message_row(
    r: &crate::store::sql::Row<'_>,
) -> crate::store::sql::Result<FeedMessageResult> {
    let state: String = r.get(5)?;
    let state = match MessageState::parse(&state) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(FeedMessage {
        id: r.get(0)?,
        feed: r.get(1)?,
        message_id: r.get(2)?,
        kind: r.get(3)?,
        received_at: from_unix(r.get(4)?),
        state,
        outcome: r.get(6)?,
        error: r.get(7)?,
        external_id: r.get(8)?,
        appointment_id: r.get(9)?,
        replays: r.get(10)?,
        body: r.get(11)?,
    }))
}
