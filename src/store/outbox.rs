//! The outbox: planned messages, their sends and outcomes (claims are in `claims.rs`).

use crate::store::sql::params;
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::{CancelledBy, Channel, ChannelChoice, Recipient, RemindWhom, Response, Status};
use crate::phone::E164;
use crate::plan::{Candidate, Due, Kind, Reach};

/// The columns [`reach`] reads, for a patient row `p`: the schedule's channel and whom to
/// remind, whether a caregiver is on file, and until when each number is known to be off
/// WhatsApp.
pub(super) const REACH_COLUMNS: &str = "p.channel, p.remind, p.contact_phone IS NOT NULL,
    (SELECT n.sms_only_until FROM numbers n WHERE n.phone = p.phone),
    (SELECT n.sms_only_until FROM numbers n WHERE n.phone = p.contact_phone)";

/// A [`REACH_COLUMNS`] group starting at column `at`.
pub(super) fn reach(r: &crate::store::sql::Row<'_>, at: usize) -> Result<Reach, StoreError> {
    Ok(Reach {
        choice: r
            .get::<_, Option<String>>(at)?
            .as_deref()
            .map(ChannelChoice::parse)
            .transpose()?,
        remind: RemindWhom::parse(&r.get::<_, String>(at + 1)?)?,
        has_contact: r.get(at + 2)?,
        patient_sms_until: r.get::<_, Option<i64>>(at + 3)?.map(crate::time::from_unix),
        contact_sms_until: r.get::<_, Option<i64>>(at + 4)?.map(crate::time::from_unix),
    })
}

/// One outbox row as staff and scripts see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxView {
    /// Row id (also the `biz_opaque_callback_data` of its send).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// `reminder`, `booking_confirmation`, `reply_ack`, `manual_reminder`.
    pub kind: String,
    /// `whatsapp` or `sms`.
    pub channel: String,
    /// `patient` or `contact` (a caregiver).
    pub recipient: String,
    /// Rule name.
    pub rule: String,
    /// Delivery state.
    pub state: String,
    /// When it was due (UTC, RFC 3339).
    pub send_at: String,
    /// When the API accepted it.
    pub sent_at: Option<String>,
    /// The API's message id.
    pub wamid: Option<String>,
    /// Send attempts so far.
    pub attempts: i64,
    /// The last error, `(code) text`.
    pub last_error: Option<String>,
    /// Why it was skipped, expired or held.
    pub reason: Option<String>,
    /// What staff must do, if anything.
    pub needs_staff: Option<String>,
}

/// What planning wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanCounts {
    /// Messages found due (new, expired and already planned).
    pub due: usize,
    /// New rows to send.
    pub pending: usize,
    /// New rows that were already too late.
    pub expired: usize,
    /// Already planned earlier (unchanged).
    pub existing: usize,
}

/// A claimed-or-candidate outbox row with everything the send-time checks and rendering need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    /// Outbox row id.
    pub id: i64,
    /// Message kind.
    pub kind: Kind,
    /// Rule name.
    pub rule: String,
    /// Template config key.
    pub template: Option<String>,
    /// The start it was planned for.
    pub slot_start: DateTime<Utc>,
    /// When it was due.
    pub send_at: DateTime<Utc>,
    /// Not after this.
    pub latest_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The reason it was last held, if it was.
    pub reason: Option<String>,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// The appointment's current start.
    pub starts_at: DateTime<Utc>,
    /// Its current status.
    pub status: Status,
    /// Who cancelled it.
    pub cancelled_by: Option<CancelledBy>,
    /// The patient's answer.
    pub response: Response,
    /// Who it is with.
    pub provider: Option<String>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number.
    pub phone: E164,
    /// Patient's language.
    pub language: String,
    /// The patient opted out.
    pub opted_out: bool,
    /// When the clinic's schedule was last imported.
    pub last_import_at: Option<DateTime<Utc>>,
    /// Stored parameters (the text of an acknowledgement).
    pub params: Option<String>,
    /// How it goes.
    pub channel: Channel,
    /// Whom it is for (`phone` is theirs).
    pub recipient: Recipient,
    /// The caregiver's name, when it is for the caregiver.
    pub contact_name: Option<String>,
    /// The recipient's number opted out of texts.
    pub sms_opted_out: bool,
    /// For an SMS sent because a WhatsApp message failed: that failure, `(code) text`.
    pub fallback_error: Option<String>,
    /// For an offer's message: the offer and its opening, read when it was claimed.
    pub offer: Option<super::OfferFacts>,
    /// How many times the row has been claimed, this claim included: its request and outcome
    /// are written only while the row still carries this number (schema 16).
    pub epoch: i64,
}

/// How a send ended, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the API.
    Sent {
        /// The message id.
        wamid: String,
        /// The recipient's WhatsApp id.
        wa_id: Option<String>,
    },
    /// Try again at this time.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// Graph error code, if any.
        code: Option<i64>,
        /// What went wrong.
        error: String,
    },
    /// Will never succeed.
    Failed {
        /// Graph error code, if any.
        code: Option<i64>,
        /// What went wrong.
        error: String,
        /// What staff should do, if anything.
        needs_staff: Option<String>,
    },
    /// The request may or may not have been accepted.
    Unknown {
        /// What happened.
        error: String,
    },
    /// Could not be sent before its latest time.
    Expired {
        /// Why.
        reason: String,
    },
    /// Not attempted after all (sending stopped): back to `pending`, attempt not counted.
    Released {
        /// Why.
        reason: String,
    },
    /// A WhatsApp message failed for good in a way SMS can mend: it is `failed`, and in the
    /// same transaction its SMS is written (once, whatever happens next).
    FellBack {
        /// Graph error code.
        code: Option<i64>,
        /// What went wrong.
        error: String,
        /// The SMS to write.
        fallback: Fallback,
    },
    /// A WhatsApp message the patient blocked (130403) with no SMS to stand in: `failed`, its
    /// number recorded as off WhatsApp until `until` (so nothing more is planned to it by
    /// WhatsApp), and staff call.
    Blocked {
        /// Graph error code.
        code: Option<i64>,
        /// What went wrong.
        error: String,
        /// What staff should do.
        needs_staff: Option<String>,
        /// Until when the number gets no WhatsApp.
        until: DateTime<Utc>,
    },
    /// An SMS refused because the number unsubscribed from texts (Twilio 21610): `failed`,
    /// the number's SMS opt-out recorded, and staff call.
    Unsubscribed {
        /// The provider's code.
        code: Option<i64>,
        /// What went wrong.
        error: String,
        /// What staff should do.
        needs_staff: String,
    },
}

/// One of the writes a send makes, as [`Store::write_sends`] takes them in groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendWrite {
    /// [`Store::mark_requested`]: the request is about to go out.
    Requested {
        /// Outbox row id.
        id: i64,
        /// The claim's number ([`DueRow::epoch`]).
        epoch: i64,
        /// When.
        at: DateTime<Utc>,
    },
    /// [`Store::record_outcome`]: how the send ended.
    Outcome {
        /// Outbox row id.
        id: i64,
        /// The claim's number ([`DueRow::epoch`]).
        epoch: i64,
        /// What became of it.
        outcome: Outcome,
        /// The language it was rendered in.
        language: Option<String>,
        /// The rendered parameters, JSON.
        params: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The SMS that replaces a failed WhatsApp message, as dispatch decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// When it is due (the send-time checks still apply: quiet hours, `latest`).
    pub send_at: DateTime<Utc>,
    /// The number is not on WhatsApp: it gets SMS until then, and WhatsApp after.
    pub sms_only_until: Option<DateTime<Utc>>,
}

pub(super) const DUE_COLUMNS: &str =
    "o.id, o.kind, o.rule, o.template, o.slot_start, o.send_at, o.latest_at, o.attempts, o.reason,
    a.external_id, c.key, a.starts_at, a.status, a.cancelled_by, a.response, a.provider,
    p.name, CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END, p.language,
    p.opted_out_at IS NOT NULL, c.id, o.params, o.channel, o.recipient, p.contact_name,
    (SELECT n.sms_opted_out_at IS NOT NULL FROM numbers n
      WHERE n.phone = CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END),
    (SELECT coalesce(f.last_error_code || ': ', '') || coalesce(f.last_error, 'failed') FROM outbox f WHERE f.id = o.fallback_of),
    o.claim_epoch";

/// Candidates planned at a time: a tick holds one chunk of appointments and their messages
/// whatever its horizon holds (planned whole each second, 40k appointments were the daemon's
/// memory growth from round to round: bench/README.md).
pub const PLAN_CHUNK: usize = 2048;

impl Store {
    /// Plans and materialises, in one transaction, what `plan` finds due for the booked
    /// appointments starting in `(after, until]` plus booked ones starting later that were
    /// created since `created_since` (for booking confirmations), read [`PLAN_CHUNK`] at a
    /// time, and then `extra`. The unique key makes this idempotent: a message planned before
    /// is left exactly as it is. With `dry_run`, the same inserts are made and rolled back, so
    /// the counts are exact.
    pub fn plan_into_outbox(
        &mut self,
        (after, until, created_since): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>),
        mut plan: impl FnMut(&[Candidate]) -> Vec<Due>,
        extra: &[Due],
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PlanCounts, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let last = self.planned.len();
        let mut writer = DueWriter {
            conn: &tx,
            planned: &mut self.planned,
            keys: Vec::with_capacity(last),
            counts: PlanCounts::default(),
            now,
            dry_run,
        };
        {
            // The halves are disjoint and joined with UNION ALL: a plain UNION made SQLite
            // 3.53 scan the whole table on every run instead of using both indexes (found by
            // bench/plan.py: 76 ms → 3 ms at 1M rows). The second half is only for booking
            // confirmations: one already planned need not be read again (the day after a
            // 1M-row import, every tick read every row: 11 s, 202 MB).
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response, p.opted_out_at IS NOT NULL,
                    {REACH_COLUMNS}
                 FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
                 WHERE a.status = 'booked' AND a.starts_at > ?1 AND a.starts_at <= ?2
                 UNION ALL
                 SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response, p.opted_out_at IS NOT NULL,
                    {REACH_COLUMNS}
                 FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
                 WHERE a.status = 'booked' AND a.created_at >= ?3 AND a.starts_at > ?2
                   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id
                                    AND o.kind = 'booking_confirmation')"
            ))?;
            let mut rows = stmt.query(params![
                after.timestamp(),
                until.timestamp(),
                created_since.timestamp()
            ])?;
            let mut chunk = Vec::with_capacity(PLAN_CHUNK);
            // Writing while the read is open is fine on one connection: the rows written are
            // outbox rows of candidates already read.
            while let Some(r) = rows.next()? {
                chunk.push(candidate(&r, 7)?);
                if chunk.len() == PLAN_CHUNK {
                    writer.write(&plan(&chunk))?;
                    chunk.clear();
                }
            }
            writer.write(&plan(&chunk))?;
        }
        writer.write(extra)?;
        let DueWriter { keys, counts, .. } = writer;
        if !dry_run {
            tx.commit()?;
            // Only what is committed is remembered: a plan that failed is looked up in full.
            self.planned.replace(keys);
        }
        Ok(counts)
    }

    /// Records that a claimed row's request is about to go out. Written (and committed) before
    /// the request, so a crash after it leaves the row `unknown`, never resent blindly.
    /// `false`: the row is no longer this claim's (`epoch`), and must not be sent.
    pub fn mark_requested(
        &mut self,
        id: i64,
        epoch: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        super::sends::mark_requested_on(&self.conn, id, epoch, now)
    }

    /// Writes a run's notes and outcomes together, in one transaction (one commit, so one
    /// sync under `synchronous = FULL`, for however many sends are waiting): each in its own
    /// savepoint, so one that fails is undone alone and reported alone. The whole commits
    /// before this returns, so a note is durable before its request goes out.
    pub fn write_sends(
        &mut self,
        writes: &[SendWrite],
    ) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(writes.len());
        for w in writes {
            let (id, epoch, outcome, language, params, at) = match w {
                // A note is one UPDATE of a row this instance holds: were it to fail, the
                // database itself would be failing, and the group's transaction with it. It
                // needs no savepoint of its own (on PostgreSQL two round trips, under the
                // write lock every instance's groups wait for).
                SendWrite::Requested { id, epoch, at } => {
                    out.push(super::sends::mark_requested_on(&tx, *id, *epoch, *at));
                    continue;
                }
                SendWrite::Outcome {
                    id,
                    epoch,
                    outcome,
                    language,
                    params,
                    at,
                } => (id, epoch, outcome, language, params, at),
            };
            // An outcome may write more than its row (a fallback, a number's state): one that
            // fails is undone alone and the group goes on.
            let sp = tx.savepoint()?;
            let done = super::sends::record_outcome_on(
                &sp,
                *id,
                *epoch,
                outcome,
                language.as_deref(),
                params.as_deref(),
                *at,
            )
            .map(|()| true);
            if done.is_ok() {
                sp.commit()?;
            }
            out.push(done);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records how a send ended. Every outcome leaves `sending`, so no row is stuck there.
    pub fn record_outcome(
        &mut self,
        id: i64,
        epoch: i64,
        outcome: &Outcome,
        language: Option<&str>,
        params_json: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        super::sends::record_outcome_on(&tx, id, epoch, outcome, language, params_json, now)?;
        tx.commit()?;
        Ok(())
    }

    /// How many outbox rows are in each state.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outbox rows, newest due first, optionally in one state.
    pub fn outbox(&self, state: Option<&str>) -> Result<Vec<OutboxView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, a.external_id, c.key, o.kind, o.rule, o.state, o.send_at, o.sent_at, o.wamid, o.attempts,
                    o.last_error_code, o.last_error, o.reason, o.needs_staff, o.channel, o.recipient
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE CAST(?1 AS TEXT) IS NULL OR o.state = ?1
             ORDER BY o.send_at, o.id",
        )?;
        let rfc =
            |t: i64| crate::time::from_unix(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows = stmt.query_map([state], |r| {
            let code: Option<i64> = r.get(10)?;
            let err: Option<String> = r.get(11)?;
            Ok(OutboxView {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                clinic: r.get(2)?,
                kind: r.get(3)?,
                rule: r.get(4)?,
                state: r.get(5)?,
                send_at: rfc(r.get(6)?),
                sent_at: r.get::<_, Option<i64>>(7)?.map(rfc),
                wamid: r.get(8)?,
                attempts: r.get(9)?,
                last_error: match (code, err) {
                    (Some(c), Some(e)) => Some(format!("({c}) {e}")),
                    (None, e) => e,
                    (Some(c), None) => Some(format!("({c})")),
                },
                reason: r.get(12)?,
                needs_staff: r.get(13)?,
                channel: r.get(14)?,
                recipient: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A text its provider reported undelivered for a reason that may pass (the phone was off):
    /// pending again at `at`, the report kept as its last error. Only while the row still
    /// holds that message's id, so a second report of the same message changes nothing.
    pub fn retry_text(
        &mut self,
        message_id: &str,
        at: DateTime<Utc>,
        code: Option<i64>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET state = 'pending', wamid = NULL, next_attempt_at = ?2, last_error_code = ?3,
                last_error = ?4, reason = 'the phone could not be reached: trying once more', updated_at = ?5
             WHERE wamid = ?1 AND channel = 'sms' AND state IN ('sent', 'unknown')",
            params![message_id, at.timestamp(), code, error, now.timestamp()],
        )? == 1)
    }

    /// The outbox row a delivery status names (by the provider's message id, else by the
    /// outbox id echoed back), with what dispatch needs to decide about a failure.
    pub fn due_row_for(
        &self,
        message_id: &str,
        outbox_id: Option<i64>,
    ) -> Result<Option<DueRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DUE_COLUMNS} FROM outbox o
             JOIN appointments a ON a.id = o.appointment_id
             JOIN patients p ON p.id = a.patient_id
             JOIN clinics c ON c.id = a.clinic_id
             WHERE o.wamid = ?1 OR (o.id = ?2 AND (o.wamid IS NULL OR o.wamid = ?1))
             ORDER BY o.wamid = ?1 DESC LIMIT 1"
        ))?;
        let mut q = stmt.query(params![message_id, outbox_id])?;
        match q.next()? {
            Some(r) => Ok(Some(due_row(&r, None)?)),
            None => Ok(None),
        }
    }

    /// The appointment (by clinic system id, optionally within one clinic) as a due row, for
    /// previews. Errors if the id is unknown or used by several clinics.
    pub fn preview_row(
        &self,
        appointment_id: &str,
        clinic: Option<&str>,
    ) -> Result<Vec<DueRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT 0, 'reminder', '', NULL, a.starts_at, a.starts_at, a.starts_at, 0, NULL,
                    a.external_id, c.key, a.starts_at, a.status, a.cancelled_by, a.response, a.provider,
                    p.name, p.phone, p.language, p.opted_out_at IS NOT NULL, c.id, NULL,
                    'whatsapp', 'patient', p.contact_name, 0, NULL, 0
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE a.external_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.key = ?2)",
        )?;
        let mut q = stmt.query(params![appointment_id, clinic])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(due_row(&r, None)?);
        }
        Ok(out)
    }
}

/// The recipient's number of outbox row `id`, and the patient it belongs to.
fn recipient_of(
    tx: &crate::store::sql::Conn,
    id: i64,
) -> Result<(Option<String>, i64, i64), StoreError> {
    Ok(tx.query_row(
        "SELECT CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END, p.id, o.appointment_id
         FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN patients p ON p.id = a.patient_id
         WHERE o.id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

/// Writes the SMS that replaces failed WhatsApp row `id` (at most one: `outbox_fallback`),
/// and, when the number is not on WhatsApp, remembers it with an audit row staff can see.
pub(super) fn write_fallback(
    tx: &crate::store::sql::Conn,
    id: i64,
    fallback: &Fallback,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let t = now.timestamp();
    tx.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state,
            created_at, updated_at, recipient, channel, fallback_of)
         SELECT appointment_id, kind, rule, slot_start, max(?2, send_at), latest_at, template, 'pending',
            ?3, ?3, recipient, 'sms', id
         FROM outbox WHERE id = ?1
         ON CONFLICT DO NOTHING",
        params![id, fallback.send_at.timestamp(), t],
    )?;
    if let Some(until) = fallback.sms_only_until {
        record_off_whatsapp(tx, id, until, why, now)?;
    }
    Ok(())
}

/// Remembers the recipient's number of outbox row `id` as off WhatsApp until `until` (texts
/// where the clinic sends them, a call where it does not), with an audit row staff can see.
pub(super) fn record_off_whatsapp(
    tx: &crate::store::sql::Conn,
    id: i64,
    until: DateTime<Utc>,
    why: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let t = now.timestamp();
    let (phone, patient, appointment) = recipient_of(tx, id)?;
    let Some(phone) = phone else { return Ok(()) };
    tx.execute(
        "INSERT INTO numbers (phone, sms_only_since, sms_only_until, sms_only_reason, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?2)
         ON CONFLICT (phone) DO UPDATE SET sms_only_since = excluded.sms_only_since,
            sms_only_until = excluded.sms_only_until, sms_only_reason = excluded.sms_only_reason,
            updated_at = excluded.updated_at",
        params![phone, t, until.timestamp(), why],
    )?;
    tx.execute(
        "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
         VALUES (?1, ?2, ?3, 'whatsapp', 'channel_learned', 'whatsapp', 'sms', ?4)",
        params![t, appointment, patient, format!("{}: no WhatsApp until {}, then WhatsApp again", why, until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))],
    )?;
    Ok(())
}

/// Records that the recipient's number of outbox row `id` opted out of texts.
pub(super) fn record_sms_opt_out(
    tx: &crate::store::sql::Conn,
    id: i64,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (phone, patient, appointment) = recipient_of(tx, id)?;
    let Some(phone) = phone else { return Ok(()) };
    let t = now.timestamp();
    tx.execute(
        "INSERT INTO numbers (phone, sms_opted_out_at, sms_opt_out_source, updated_at) VALUES (?1, ?2, ?3, ?2)
         ON CONFLICT (phone) DO UPDATE SET sms_opted_out_at = excluded.sms_opted_out_at,
            sms_opt_out_source = excluded.sms_opt_out_source, updated_at = excluded.updated_at",
        params![phone, t, source],
    )?;
    tx.execute(
        "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
         VALUES (?1, ?2, ?3, 'sms', 'sms_opt_out', 'opted_out', ?4)",
        params![t, appointment, patient, source],
    )?;
    Ok(())
}

pub(super) fn due_row(
    r: &crate::store::sql::Row<'_>,
    last_import: Option<i64>,
) -> Result<DueRow, StoreError> {
    let kind: String = r.get(1)?;
    Ok(DueRow {
        id: r.get(0)?,
        kind: Kind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox kind {kind:?}")))?,
        rule: r.get(2)?,
        template: r.get(3)?,
        slot_start: crate::time::from_unix(r.get(4)?),
        send_at: crate::time::from_unix(r.get(5)?),
        latest_at: crate::time::from_unix(r.get(6)?),
        attempts: r.get(7)?,
        reason: r.get(8)?,
        appointment_id: r.get(9)?,
        clinic: r.get(10)?,
        starts_at: crate::time::from_unix(r.get(11)?),
        status: Status::parse(&r.get::<_, String>(12)?)?,
        cancelled_by: r
            .get::<_, Option<String>>(13)?
            .as_deref()
            .map(CancelledBy::parse)
            .transpose()?,
        response: Response::parse(&r.get::<_, String>(14)?)?,
        provider: r.get(15)?,
        patient_name: r.get(16)?,
        phone: E164::from_stored(r.get(17)?),
        language: r.get(18)?,
        opted_out: r.get(19)?,
        last_import_at: last_import.map(crate::time::from_unix),
        params: r.get(21)?,
        channel: Channel::parse(&r.get::<_, String>(22)?)?,
        recipient: Recipient::parse(&r.get::<_, String>(23)?)?,
        contact_name: r.get(24)?,
        sms_opted_out: r.get::<_, Option<bool>>(25)?.unwrap_or(false),
        fallback_error: r.get(26)?,
        offer: None,
        epoch: r.get(27)?,
    })
}

/// A planning candidate from a row whose first seven columns are the appointment's id, clinic
/// key, start, creation, status, response and the patient's opt-out, and whose
/// [`REACH_COLUMNS`] start at `reach_at`.
pub(super) fn candidate(
    r: &crate::store::sql::Row<'_>,
    reach_at: usize,
) -> Result<Candidate, StoreError> {
    Ok(Candidate {
        id: r.get(0)?,
        clinic: r.get(1)?,
        starts_at: crate::time::from_unix(r.get(2)?),
        created_at: crate::time::from_unix(r.get(3)?),
        status: Status::parse(&r.get::<_, String>(4)?)?,
        response: Response::parse(&r.get::<_, String>(5)?)?,
        opted_out: r.get(6)?,
        reach: reach(r, reach_at)?,
    })
}

/// Writes a plan's due messages inside its transaction, counting what it finds.
struct DueWriter<'a> {
    conn: &'a crate::store::sql::Conn,
    planned: &'a mut super::planned::Planned,
    /// Every key written or found (none in a dry run), for the memo once the plan commits.
    keys: Vec<super::planned::Key>,
    counts: PlanCounts,
    now: DateTime<Utc>,
    dry_run: bool,
}

impl DueWriter<'_> {
    fn write(&mut self, due: &[Due]) -> Result<(), StoreError> {
        // Every plan tick re-plans the whole horizon, so nearly every row already exists: the
        // last plan's keys are not looked up again (`planned.rs`), and the rest are read by
        // the unique key first, at a fraction of an INSERT that opens a write cursor on each
        // of the outbox's indexes only to do nothing (profiled: 62% of a plan tick at 20k
        // appointments went to those no-op inserts).
        let mut exists = self.conn.prepare_cached(
            "SELECT 1 FROM outbox WHERE appointment_id = ?1 AND kind = ?2 AND rule = ?3
                AND slot_start = ?4 AND recipient = ?5 AND channel = ?6",
        )?;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason,
                created_at, updated_at, recipient, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12)
             ON CONFLICT (appointment_id, kind, rule, slot_start, recipient, channel) DO NOTHING",
        )?;
        for d in due {
            // A dry run is rolled back: it neither uses nor feeds the memo.
            if !self.dry_run {
                let memo = self.planned.key(d);
                self.keys.push(memo);
                if self.planned.contains(&memo) {
                    self.counts.existing += 1;
                    continue;
                }
            }
            let key = params![
                d.appointment_id,
                d.kind.as_str(),
                d.rule,
                d.slot_start.timestamp(),
                d.recipient.as_str(),
                d.channel.as_str()
            ];
            if exists.exists(key)? {
                self.counts.existing += 1;
                continue;
            }
            let state = if d.expired.is_some() {
                "expired"
            } else {
                "pending"
            };
            let n = insert.execute(params![
                d.appointment_id,
                d.kind.as_str(),
                d.rule,
                d.slot_start.timestamp(),
                d.send_at.timestamp(),
                d.latest_at.timestamp(),
                d.template,
                state,
                d.expired,
                self.now.timestamp(),
                d.recipient.as_str(),
                d.channel.as_str()
            ])?;
            match (n, d.expired.is_some()) {
                (0, _) => self.counts.existing += 1,
                (_, true) => self.counts.expired += 1,
                (_, false) => self.counts.pending += 1,
            }
        }
        self.counts.due += due.len();
        Ok(())
    }
}
