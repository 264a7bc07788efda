//! Claims: taking due outbox rows to send (each judged at claim time, atomically), and
//! settling the rows a crash or a lost answer left `sending` or `unknown`.

use std::collections::HashMap;

use crate::store::sql::params;
use chrono::{DateTime, Utc};

use super::outbox::{DUE_COLUMNS, DueRow, due_row};
use super::{Store, StoreError};

/// What a claim returns: the rows to send now, and the others with what was decided.
pub type Claimed = (Vec<DueRow>, Vec<(DueRow, Verdict)>);

/// The send-time decision about a due row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Claim it (`sending`) and send it.
    Send,
    /// Never send it: `skipped`, with the reason.
    Skip(String),
    /// Too late: `expired`, with the reason.
    Expire(String),
    /// Not now: stays `pending` until then, with the reason.
    Hold(DateTime<Utc>, String),
}

/// Whose due rows a claim takes, by clinic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimScope {
    /// Every clinic's.
    All,
    /// Only these clinics'.
    Clinics(Vec<String>),
    /// Every clinic's but these (the default number's: its own clinics and any clinic no
    /// longer configured, whose rows must still end).
    AllBut(Vec<String>),
}

/// Which recipients' rows an instance claims: those whose number falls in its place among
/// the live instances. Several instances on one database each keep to their own recipients,
/// so the spacing between two messages to one recipient, kept by the instance that sends
/// them, holds across instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This instance's place among the live ones (from 0, by name).
    pub position: u32,
    /// How many instances are live (1: every recipient).
    pub of: u32,
}

impl Share {
    /// Every recipient: one instance alone.
    pub const WHOLE: Self = Self { position: 0, of: 1 };

    /// The share packed in one number (for an atomic): `of` high, `position` low.
    pub fn pack(self) -> u64 {
        (u64::from(self.of) << 32) | u64::from(self.position)
    }

    /// A share from [`Share::pack`].
    pub fn unpack(n: u64) -> Self {
        let of = u32::try_from(n >> 32).unwrap_or(1).max(1);
        let position = u32::try_from(n & 0xffff_ffff).unwrap_or(0) % of;
        Self { position, of }
    }
}

/// Whose claims a recovery settles.
enum Holder {
    /// This instance's own (at shutdown).
    Me(String),
    /// Those of instances not seen live since this instant (unix seconds).
    Dead(i64),
}

impl Store {
    /// After a crash, rows left `sending` (claimed before `before`) are settled: one whose
    /// request never went out goes back to `pending` (safe to send), one whose request did may
    /// or may not have been accepted by the API and becomes `unknown`, to be reconciled by its
    /// status. Returns how many became unknown and how many were requeued.
    ///
    /// Any instance's claims qualify: one still `sending` after the grace period is taken to
    /// have lost its holder. Should the holder be alive after all, the claim's number
    /// ([`super::DueRow::epoch`]) no longer matches and it neither sends nor writes.
    ///
    /// A claim of an instance seen live since `live_since` (its heartbeat) is never taken: a
    /// live instance slowed by a busy database may still have its request in flight, and a
    /// resend of an `unknown` row would then be a second message.
    pub fn recover_interrupted(
        &mut self,
        before: DateTime<Utc>,
        live_since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        self.recover_claims(before, now, Holder::Dead(live_since.timestamp()))
    }

    /// At shutdown, this instance's own claims still `sending` are settled as
    /// [`Store::recover_interrupted`] settles a crashed one's, at once: other instances'
    /// sends on the same database go on.
    pub fn release_claims(&mut self, now: DateTime<Utc>) -> Result<(usize, usize), StoreError> {
        let mine = self.instance.clone();
        self.recover_claims(now + chrono::Duration::seconds(1), now, Holder::Me(mine))
    }

    /// Notes this instance as live at `now` and returns its share among the instances seen
    /// within `window` (itself included): each number's rate cap is divided between them, and
    /// each claims the rows of its own recipients. Rows of instances gone for ten windows are
    /// removed.
    pub fn heartbeat(
        &mut self,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<Share, StoreError> {
        let t = now.timestamp();
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO instances (name, seen_at) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
            params![self.instance, t],
        )?;
        tx.execute(
            "DELETE FROM instances WHERE seen_at < ?1",
            [t - 10 * window.num_seconds()],
        )?;
        let (live, before): (i64, i64) = tx.query_row(
            "SELECT count(*), coalesce(sum(CASE WHEN name < ?2 THEN 1 ELSE 0 END), 0)
             FROM instances WHERE seen_at >= ?1",
            params![t - window.num_seconds(), self.instance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.commit()?;
        Ok(Share {
            position: u32::try_from(before).unwrap_or(0),
            of: u32::try_from(live.max(1)).unwrap_or(u32::MAX),
        })
    }

    /// Takes the run of scheduled `task` due at `run_at` (its second): `true` for the one
    /// instance that takes it, `false` for the others whose schedule fired for the same tick.
    /// Runs of an hour ago and older are forgotten.
    pub fn take_cron_run(&mut self, task: &str, run_at: DateTime<Utc>) -> Result<bool, StoreError> {
        let t = run_at.timestamp();
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let taken = tx.execute(
            "INSERT INTO cron_runs (task, run_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![task, t],
        )? == 1;
        tx.execute(
            "DELETE FROM cron_runs WHERE task = ?1 AND run_at < ?2",
            params![task, t - 3600],
        )?;
        tx.commit()?;
        Ok(taken)
    }

    /// Removes this instance from the live ones (at shutdown), so the others take its share
    /// of the caps at once, and gives up its leases.
    pub fn leave(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM instances WHERE name = ?1", [&self.instance])?;
        self.release_leases()
    }

    fn recover_claims(
        &mut self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        holder: Holder,
    ) -> Result<(usize, usize), StoreError> {
        let (whose, key) = match holder {
            Holder::Me(name) => (
                "claimed_by = ?3",
                Box::new(name) as Box<dyn crate::store::sql::ToValue>,
            ),
            Holder::Dead(since) => (
                "(claimed_by IS NULL OR claimed_by NOT IN
                    (SELECT name FROM instances WHERE seen_at >= ?3))",
                Box::new(since) as Box<dyn crate::store::sql::ToValue>,
            ),
        };
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let requeued = tx.execute(
            &format!(
                "UPDATE outbox SET state = 'pending', attempts = max(attempts - 1, 0), updated_at = ?2,
                    reason = 'interrupted before its request went out; sent again'
                 WHERE state = 'sending' AND claimed_at < ?1 AND request_at IS NULL AND {whose}"
            ),
            params![before.timestamp(), now.timestamp(), key],
        )?;
        let unknown = tx.execute(
            &format!(
                "UPDATE outbox SET state = 'unknown', updated_at = ?2,
                    last_error = 'interrupted while its request was in flight; waiting for its delivery status'
                 WHERE state = 'sending' AND claimed_at < ?1 AND request_at IS NOT NULL AND {whose}"
            ),
            params![before.timestamp(), now.timestamp(), key],
        )?;
        tx.commit()?;
        Ok((unknown, requeued))
    }

    /// Unknown sends with no status for `after`: sent again, or put on the staff list. A text
    /// is never sent again: its delivery report names only the provider's id, which a crash
    /// between the request and its answer never stored, so a text whose answer was lost cannot
    /// be told from one that never left; staff call instead.
    pub fn settle_unknown(
        &mut self,
        older_than: DateTime<Utc>,
        resend: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let sent_again = if resend {
            self.conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, updated_at = ?2,
                    reason = 'no delivery status after the unknown window: sending again'
                 WHERE state = 'unknown' AND claimed_at < ?1 AND latest_at > ?2 AND channel = 'whatsapp'",
                params![older_than.timestamp(), now.timestamp()],
            )?
        } else {
            0
        };
        let staff = self.conn.execute(
            "UPDATE outbox SET needs_staff = CASE channel WHEN 'sms'
                    THEN 'we do not know whether this text reached the patient: please call'
                    ELSE 'we do not know whether this message reached the patient: please call' END,
                updated_at = ?2
             WHERE state = 'unknown' AND claimed_at < ?1 AND needs_staff IS NULL
               AND (?3 = 0 OR channel = 'sms')",
            params![older_than.timestamp(), now.timestamp(), resend],
        )?;
        Ok(sent_again + staff)
    }

    /// Takes up to `limit` due rows of the clinics `scope` names: each is judged by `verdict`
    /// in the same transaction, so a row is claimed (`sending`), skipped, expired or held
    /// atomically, and two dispatchers can never claim the same row. Returns the rows to send.
    /// A dispatcher sending from several WhatsApp numbers claims for each number (its clinics)
    /// as it has room, so one number's backlog never takes another's slots.
    pub fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        scope: &ClaimScope,
        share: Share,
        verdict: impl Fn(&DueRow) -> Verdict,
    ) -> Result<Claimed, StoreError> {
        let (mode, keys) = match scope {
            ClaimScope::All => (0, "[]".to_string()),
            // A list of strings always serialises.
            ClaimScope::Clinics(k) => (1, serde_json::Value::from(k.clone()).to_string()),
            ClaimScope::AllBut(k) => (2, serde_json::Value::from(k.clone()).to_string()),
        };
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::RowLocked)?;
        let mut last_import: HashMap<i64, i64> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT ic.clinic_id, max(i.imported_at) FROM import_clinics ic JOIN imports i ON i.id = ic.import_id GROUP BY ic.clinic_id",
            )?;
            let rows = stmt.query_map((), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for r in rows {
                let (c, t) = r?;
                last_import.insert(c, t);
            }
        }
        let rows: Vec<DueRow> = {
            let keys_in = tx.pick("SELECT value FROM json_each(?4)", "SELECT json_texts(?4)");
            // A number from the recipient's phone, the same on every instance: SQLite's
            // digits at its end (a cast never fails there), PostgreSQL's hash of it.
            let recipient = "CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END";
            let bucket = tx
                .pick(
                    "coalesce(CAST(substr({r}, -6) AS INTEGER), 0)",
                    "coalesce(abs(hashtext({r})::bigint), 0)",
                )
                .replace("{r}", recipient);
            // Rows another instance is claiming, or another transaction is changing (a
            // cancel, a status), are passed over rather than waited for; the claim holds no
            // other lock, so it never waits and never deadlocks.
            let lock = tx.pick("", " FOR UPDATE OF o SKIP LOCKED");
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DUE_COLUMNS} FROM outbox o
                 JOIN appointments a ON a.id = o.appointment_id
                 JOIN patients p ON p.id = a.patient_id
                 JOIN clinics c ON c.id = a.clinic_id
                 WHERE o.state = 'pending' AND o.send_at <= ?1 AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)
                   AND (?3 = 0 OR (c.key IN ({keys_in})) = (?3 = 1))
                   AND (?5 <= 1 OR {bucket} % ?5 = ?6)
                 ORDER BY o.send_at, o.id LIMIT ?2{lock}"
            ))?;
            let mut q = stmt.query(params![
                now.timestamp(),
                limit as i64,
                mode,
                keys,
                share.of,
                share.position
            ])?;
            let mut v = Vec::new();
            while let Some(r) = q.next()? {
                let clinic_id: i64 = r.get(20)?;
                let mut row = due_row(&r, last_import.get(&clinic_id).copied())?;
                row.offer =
                    super::waitlist::offer_facts(&tx, &row.rule)?.filter(|_| row.kind.is_offer());
                v.push(row);
            }
            v
        };
        let mut send = Vec::new();
        let mut other = Vec::new();
        for mut row in rows {
            let v = verdict(&row);
            match &v {
                Verdict::Send => {
                    row.epoch += 1;
                    send.push(row);
                    continue;
                }
                Verdict::Skip(reason) => tx.execute(
                    "UPDATE outbox SET state = 'skipped', reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![row.id, reason, now.timestamp()],
                )?,
                Verdict::Expire(reason) => tx.execute(
                    "UPDATE outbox SET state = 'expired', reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![row.id, reason, now.timestamp()],
                )?,
                Verdict::Hold(until, reason) => tx.execute(
                    "UPDATE outbox SET next_attempt_at = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1",
                    params![row.id, until.timestamp(), reason, now.timestamp()],
                )?,
            };
            other.push((row, v));
        }
        if !send.is_empty() {
            // One statement for the batch: on PostgreSQL a statement per row was a round trip
            // each, most of a claim's time (25 ms for 250 rows, bench/postgres.py).
            let ids =
                serde_json::Value::from(send.iter().map(|r| r.id).collect::<Vec<_>>()).to_string();
            let ids_in = tx.pick("SELECT value FROM json_each(?1)", "SELECT json_ints(?1)");
            let claimed = tx
                .prepare_cached(&format!(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_at = ?2, request_at = NULL,
                        updated_at = ?2, reason = NULL, claimed_by = ?3, claim_epoch = claim_epoch + 1
                     WHERE id IN ({ids_in})"
                ))?
                .execute(params![ids, now.timestamp(), self.instance])?;
            if claimed != send.len() {
                return Err(StoreError::Corrupt(format!(
                    "a claim of {} rows changed {claimed}; nothing was claimed",
                    send.len()
                )));
            }
        }
        tx.commit()?;
        Ok((send, other))
    }
}

#[cfg(test)]
mod tests;
