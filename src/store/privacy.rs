//! A patient's data (export and erasure), consent and kept opt-outs, staff roles. The retention
//! purge is in `privacy/purge.rs`, consent as staff see and record it in `privacy/consent.rs`.
//!
//! Export reads every row that names the patient, as stored, into one JSON document. Erasure
//! empties the personal fields of those rows in one transaction under `secure_delete` and
//! checkpoints the write-ahead log after it, so the bytes are gone from the file, not only
//! from the tables; rows, states and counts stay for the statistics.

use crate::store::sql::ValueRef;
use crate::store::sql::{OptionalExtension, Transaction, params, params_from_iter};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Store, StoreError};
use crate::privacy::{ERASED, Identity, needles, number_needles, numbers_in, phone_sha256};

mod consent;
mod purge;

pub use consent::ConsentAnswer;
pub use purge::{PurgeCounts, Vacuum};

/// A patient as export and erasure find them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRef {
    /// The patient's row.
    pub id: i64,
    /// Their clinic's key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub external_id: String,
    /// When their data was erased, if it was.
    pub erased_at: Option<DateTime<Utc>>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Erased {
    /// The `erasures` row.
    pub erasure_id: i64,
    /// Raw webhook bodies and feed payloads emptied.
    pub payloads: usize,
    /// Replies whose text and number were removed.
    pub replies: usize,
    /// Messages whose rendered words were removed.
    pub messages: usize,
    /// Other kept texts (audit values, reasons) where the name or number was replaced.
    pub texts: usize,
    /// Upcoming appointments cancelled because the erasure was forced.
    pub cancelled: usize,
    /// An opt-out was kept as the number's hash.
    pub opt_out_kept: bool,
    /// The write-ahead log was emptied into the file (false: another process was reading it;
    /// the next checkpoint finishes the job).
    pub checkpointed: bool,
}

/// Free-text columns an erasure searches for the patient's name and number, beside the
/// columns it empties outright.
const SCRUBBED: &[(&str, &str)] = &[
    ("audit_log", "old_value"),
    ("audit_log", "new_value"),
    ("audit_log", "reason"),
    ("outbox", "reason"),
    ("outbox", "needs_staff"),
    ("outbox", "last_error"),
    ("replies", "reason"),
    ("feed_messages", "error"),
    ("source_updates", "error"),
    ("openings", "reason"),
];

/// The export's sections: a name and the query for its rows (`?1`: the patient's row; the
/// temporary tables `exp_appointments`, `exp_replies` and `exp_needles` are filled first).
const SECTIONS: &[(&str, &str)] = &[
    (
        "appointments",
        "SELECT * FROM appointments WHERE patient_id = ?1 ORDER BY starts_at",
    ),
    (
        "outbox",
        "SELECT * FROM outbox WHERE appointment_id IN (SELECT id FROM exp_appointments) ORDER BY id",
    ),
    (
        "replies",
        "SELECT * FROM replies WHERE id IN (SELECT id FROM exp_replies) ORDER BY id",
    ),
    (
        "reply_media",
        "SELECT * FROM reply_media WHERE reply_id IN (SELECT id FROM exp_replies) ORDER BY reply_id",
    ),
    (
        "audit_log",
        "SELECT * FROM audit_log WHERE patient_id = ?1
           OR appointment_id IN (SELECT id FROM exp_appointments) ORDER BY id",
    ),
    (
        "consents",
        "SELECT * FROM consents WHERE patient_id = ?1 ORDER BY id",
    ),
    (
        "waitlist_entries",
        "SELECT * FROM waitlist_entries WHERE patient_id = ?1 ORDER BY id",
    ),
    (
        "offers",
        "SELECT * FROM offers WHERE patient_id = ?1 ORDER BY id",
    ),
    (
        "feedback",
        "SELECT * FROM feedback WHERE patient_id = ?1 ORDER BY received_at",
    ),
    (
        "source_updates",
        "SELECT * FROM source_updates WHERE appointment_id IN (SELECT id FROM exp_appointments) ORDER BY id",
    ),
    (
        "numbers",
        "SELECT * FROM numbers WHERE phone IN (SELECT phone FROM patients WHERE id = ?1
           UNION SELECT contact_phone FROM patients WHERE id = ?1)",
    ),
    (
        "inbound_events",
        "SELECT * FROM inbound_events WHERE id IN (SELECT event_id FROM exp_replies)
           OR EXISTS (SELECT 1 FROM exp_needles WHERE instr(body, needle) > 0) ORDER BY id",
    ),
    (
        "feed_messages",
        "SELECT * FROM feed_messages WHERE appointment_id IN (SELECT id FROM exp_appointments)
           OR EXISTS (SELECT 1 FROM exp_needles WHERE instr(body, needle) > 0) ORDER BY id",
    ),
    (
        "erasures",
        "SELECT * FROM erasures WHERE patient_id = ?1 ORDER BY id",
    ),
];

/// Columns that hold a Unix time, shown in the export as RFC 3339 (UTC).
fn is_instant(column: &str) -> bool {
    column.ends_with("_at")
        || matches!(
            column,
            "at" | "since" | "slot_start" | "send_at" | "starts_at"
        )
}

/// Every row of `sql` as a JSON object by column name.
fn rows_json(tx: &Transaction<'_>, sql: &str, id: i64) -> Result<Vec<Value>, StoreError> {
    let mut stmt = tx.prepare(sql)?;
    let names: Vec<String> = stmt
        .column_names()
        .iter()
        .map(|c| (*c).to_string())
        .collect();
    let takes_id = stmt.parameter_count() > 0;
    let mut rows = if takes_id {
        stmt.query(params![id])?
    } else {
        stmt.query(())?
    };
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut obj = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) if is_instant(name) => DateTime::from_timestamp(n, 0)
                    .map_or(Value::from(n), |t| Value::from(t.to_rfc3339())),
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::from(crate::privacy::hex(b)),
            };
            obj.insert(name.clone(), v);
        }
        out.push(Value::Object(obj));
    }
    Ok(out)
}

fn identity(tx: &Transaction<'_>, id: i64) -> Result<Identity, StoreError> {
    Ok(tx.query_row(
        "SELECT name, phone, contact_name, contact_phone FROM patients WHERE id = ?1",
        params![id],
        |r| {
            Ok(Identity {
                name: r.get(0)?,
                phone: r.get(1)?,
                contact_name: r.get(2)?,
                contact_phone: r.get(3)?,
            })
        },
    )?)
}

/// Fills the temporary tables the export's and the erasure's queries read: the patient's
/// appointments, their replies (by row, or by their number when the sender was not matched)
/// and the texts that name them.
fn gather(tx: &Transaction<'_>, id: i64, who: &Identity) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS exp_appointments (id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS exp_replies (id INTEGER PRIMARY KEY, event_id INTEGER);
         CREATE TEMP TABLE IF NOT EXISTS exp_needles (needle TEXT PRIMARY KEY);
         DELETE FROM exp_appointments; DELETE FROM exp_replies; DELETE FROM exp_needles;",
    )?;
    tx.execute(
        "INSERT INTO exp_appointments SELECT id FROM appointments WHERE patient_id = ?1",
        params![id],
    )?;
    let numbers = numbers_of(tx, id, who)?;
    tx.execute(
        "INSERT INTO exp_replies SELECT id, event_id FROM replies WHERE patient_id = ?1
           OR appointment_id IN (SELECT id FROM exp_appointments)",
        params![id],
    )?;
    for n in &numbers {
        tx.execute(
            "INSERT INTO exp_replies SELECT id, event_id FROM replies
             WHERE from_phone = ?1 AND patient_id IS NULL ON CONFLICT DO NOTHING",
            params![n],
        )?;
    }
    for n in needles(who).into_iter().chain(number_needles(&numbers)) {
        tx.execute(
            "INSERT INTO exp_needles VALUES (?1) ON CONFLICT DO NOTHING",
            params![n],
        )?;
    }
    Ok(())
}

/// The patient's numbers now and before: their own and their caregiver's, and every number
/// their audit rows recorded (an import's or WhatsApp's change of number).
fn numbers_of(tx: &Transaction<'_>, id: i64, who: &Identity) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = [Some(who.phone.as_str()), who.contact_phone.as_deref()]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let mut stmt = tx.prepare(
        "SELECT coalesce(old_value, '') || ' ' || coalesce(new_value, '') FROM audit_log
         WHERE patient_id = ?1 OR appointment_id IN (SELECT id FROM exp_appointments)",
    )?;
    let texts: Vec<String> = stmt
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // An earlier number another patient has now is theirs, not this patient's to erase.
    let mut taken = tx.prepare_cached(
        "SELECT count(*) FROM patients WHERE id != ?2 AND (phone = ?1 OR contact_phone = ?1)",
    )?;
    for n in texts.iter().flat_map(|t| numbers_in(t)) {
        if !out.contains(&n) && taken.query_row(params![n, id], |r| r.get::<_, i64>(0))? == 0 {
            out.push(n);
        }
    }
    Ok(out)
}

impl Store {
    /// The patient a person names by the clinic system's patient id, in `clinic` if given:
    /// `NotFound` or `Ambiguous` in words that say what to type instead.
    pub fn find_patient(
        &self,
        external_id: &str,
        clinic: Option<&str>,
    ) -> Result<PatientRef, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT p.id, c.key, p.external_id, p.erased_at FROM patients p
             JOIN clinics c ON c.id = p.clinic_id
             WHERE p.external_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.key = ?2) ORDER BY c.key",
        )?;
        let found: Vec<PatientRef> = stmt
            .query_map(params![external_id.trim(), clinic], row_ref)?
            .collect::<Result<_, _>>()?;
        match found.as_slice() {
            [] => Err(StoreError::NotFound(format!(
                "no patient has the id {external_id:?}{}; it is the patient id of the clinic's system, as in the schedule file",
                clinic
                    .map(|c| format!(" at clinic {c}"))
                    .unwrap_or_default()
            ))),
            [one] => Ok(one.clone()),
            many => Err(StoreError::Ambiguous(format!(
                "patient id {external_id:?} is used at clinics {}; add --clinic KEY",
                many.iter()
                    .map(|p| p.clinic.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The patient stored in row `id`, if any.
    pub fn patient_ref(&self, id: i64) -> Result<Option<PatientRef>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT p.id, c.key, p.external_id, p.erased_at FROM patients p
                 JOIN clinics c ON c.id = p.clinic_id WHERE p.id = ?1",
                params![id],
                row_ref,
            )
            .optional()?)
    }

    /// Everything stored about patient `id`, as JSON: the patient row and every row of every
    /// table that names them (by row, appointment, reply or a raw payload holding their name or
    /// number), with times in RFC 3339. Audited as `patient_exported` by `actor`.
    pub fn export_patient(
        &mut self,
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Value, StoreError> {
        let tx = self.conn.transaction()?;
        let patient = rows_json(&tx, "SELECT * FROM patients WHERE id = ?1", id)?;
        let Some(patient) = patient.into_iter().next() else {
            return Err(StoreError::NotFound(format!(
                "no patient is stored in row {id}"
            )));
        };
        let who = identity(&tx, id)?;
        gather(&tx, id, &who)?;
        let mut doc = Map::new();
        doc.insert("exported_at".into(), Value::from(now.to_rfc3339()));
        doc.insert(
            "note".into(),
            Value::from(
                "Everything reminderd stores about this patient, table by table, as stored; times are UTC.",
            ),
        );
        doc.insert("patient".into(), patient);
        for (name, sql) in SECTIONS {
            doc.insert((*name).into(), Value::Array(rows_json(&tx, sql, id)?));
        }
        tx.execute(
            "INSERT INTO audit_log (at, patient_id, actor, action) VALUES (?1, ?2, ?3, 'patient_exported')",
            params![now.timestamp(), id, actor],
        )?;
        tx.commit()?;
        Ok(Value::Object(doc))
    }

    /// Upcoming booked appointments of patient `id` at `now` (an erasure refuses while any).
    pub fn upcoming_appointments(&self, id: i64, now: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM appointments WHERE patient_id = ?1 AND status = 'booked' AND starts_at > ?2",
            params![id, now.timestamp()],
            |r| r.get(0),
        )?)
    }

    /// Erases patient `id`'s personal data (see the module's doc). `Refused` while they have
    /// an upcoming appointment unless `force` (then those are cancelled and their pending
    /// messages skipped), and when already erased. An opt-out survives as the number's hash.
    pub fn erase_patient(
        &mut self,
        id: i64,
        actor: &str,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let Some(p) = self.patient_ref(id)? else {
            return Err(StoreError::NotFound(format!(
                "no patient is stored in row {id}"
            )));
        };
        if let Some(at) = p.erased_at {
            return Err(StoreError::Refused(format!(
                "this patient's data was already erased on {}",
                at.format("%Y-%m-%d")
            )));
        }
        let upcoming = self.upcoming_appointments(id, now)?;
        if upcoming > 0 && !force {
            return Err(StoreError::Refused(format!(
                "the patient has {upcoming} upcoming appointment{}; cancel {} first, or erase anyway (their reminders stop and the appointment is cancelled)",
                if upcoming == 1 { "" } else { "s" },
                if upcoming == 1 { "it" } else { "them" },
            )));
        }
        // Deleted and overwritten content is zeroed on the pages, so it is not left in free
        // space; the pragma is per connection, so it is set back after.
        self.secure_delete(true)?;
        let result = self.erase_in_tx(id, actor, force, now);
        let restore = self.secure_delete(false);
        let mut erased = result?;
        restore?;
        erased.checkpointed = self.checkpoint_truncate()?;
        Ok(erased)
    }

    fn erase_in_tx(
        &mut self,
        id: i64,
        actor: &str,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let t = now.timestamp();
        let tx = self.conn.transaction()?;
        let who = identity(&tx, id)?;
        gather(&tx, id, &who)?;
        let mut out = Erased {
            opt_out_kept: keep_opt_outs(&tx, id, &who, t)?,
            ..Erased::default()
        };
        if force {
            out.cancelled = tx.execute(
                "UPDATE appointments SET status = 'cancelled', cancelled_by = 'clinic', status_at = ?2, updated_at = ?2
                 WHERE patient_id = ?1 AND status = 'booked' AND starts_at > ?2",
                params![id, t],
            )?;
        }
        // Nothing more goes to a number that is no longer stored: pending messages are
        // skipped, waitlist entries removed and open offers withdrawn.
        tx.execute(
            "UPDATE outbox SET state = 'skipped', reason = 'the patient''s data was erased', updated_at = ?1
             WHERE state = 'pending' AND appointment_id IN (SELECT id FROM exp_appointments)",
            params![t],
        )?;
        tx.execute(
            "UPDATE waitlist_entries SET state = 'removed', updated_at = ?2 WHERE patient_id = ?1 AND state = 'active'",
            params![id, t],
        )?;
        tx.execute(
            "UPDATE offers SET state = 'withdrawn', answered_at = ?2 WHERE patient_id = ?1 AND state = 'offered'",
            params![id, t],
        )?;
        out.payloads = tx.execute(
            "UPDATE inbound_events SET body = '', purged_at = ?1
             WHERE id IN (SELECT event_id FROM exp_replies)
                OR EXISTS (SELECT 1 FROM exp_needles WHERE instr(body, needle) > 0)",
            params![t],
        )?;
        out.payloads += tx.execute(
            "UPDATE feed_messages SET body = '', error = NULL, purged_at = ?1
             WHERE appointment_id IN (SELECT id FROM exp_appointments)
                OR EXISTS (SELECT 1 FROM exp_needles WHERE instr(body, needle) > 0)",
            params![t],
        )?;
        tx.execute(
            "DELETE FROM reply_media WHERE reply_id IN (SELECT id FROM exp_replies)",
            (),
        )?;
        out.replies = tx.execute(
            "UPDATE replies SET text = NULL, from_phone = '', purged_at = ?1 WHERE id IN (SELECT id FROM exp_replies)",
            params![t],
        )?;
        out.messages = tx.execute(
            "UPDATE outbox SET params = NULL, wa_id = NULL, purged_at = ?1
             WHERE appointment_id IN (SELECT id FROM exp_appointments)",
            params![t],
        )?;
        tx.execute(
            "UPDATE appointments SET response_text = NULL WHERE patient_id = ?1",
            params![id],
        )?;
        // An uploaded schedule kept between its preview and the decision holds the name too.
        let all: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT needle FROM exp_needles ORDER BY length(needle) DESC, needle")?;
            stmt.query_map((), |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        for n in all {
            tx.execute(
                "DELETE FROM import_previews WHERE instr(body, CAST(?1 AS BLOB)) > 0",
                params![n],
            )?;
            for (table, column) in SCRUBBED {
                out.texts += tx.execute(
                    &format!(
                        "UPDATE {table} SET {column} = replace({column}, ?1, ?2) WHERE instr({column}, ?1) > 0"
                    ),
                    params![n, ERASED],
                )?;
            }
        }
        // What a number taught us goes with it, unless another patient still has it.
        for phone in numbers_of(&tx, id, &who)? {
            tx.execute(
                "DELETE FROM numbers WHERE phone = ?1 AND NOT EXISTS (SELECT 1 FROM patients
                   WHERE id != ?2 AND (phone = ?1 OR contact_phone = ?1))",
                params![phone, id],
            )?;
        }
        tx.execute(
            "UPDATE patients SET name = ?3, phone = '', external_id = 'erased:' || id,
               contact_name = NULL, contact_phone = NULL, contact_relation = NULL,
               wa_user_id = NULL, consent_source = NULL, erased_at = ?2, updated_at = ?2
             WHERE id = ?1",
            params![id, t, crate::privacy::ERASED_NAME],
        )?;
        out.erasure_id = tx.insert(
            "INSERT INTO erasures (clinic_id, patient_id, erased_by, forced, erased_at)
             SELECT clinic_id, id, ?2, ?3, ?4 FROM patients WHERE id = ?1",
            params![id, actor, force, t],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, patient_id, actor, action, reason)
             VALUES (?1, ?2, ?3, 'patient_erased', ?4)",
            params![
                t,
                id,
                actor,
                force.then_some("despite an upcoming appointment")
            ],
        )?;
        tx.execute_batch(
            "DELETE FROM exp_appointments; DELETE FROM exp_replies; DELETE FROM exp_needles;",
        )?;
        tx.commit()?;
        Ok(out)
    }

    /// Copies the write-ahead log into the file and empties it; `false` when a reader kept part
    /// of it (another process): the next checkpoint finishes.
    /// (PostgreSQL has no log of the store's to empty: `true`.)
    pub fn checkpoint_truncate(&self) -> Result<bool, StoreError> {
        let Some(sqlite) = self.conn.as_sqlite() else {
            return Ok(true);
        };
        let busy: i64 = sqlite.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// Zeroes deleted and overwritten content on SQLite's pages while `on`, so it is not left
    /// in free space (the pragma is per connection). PostgreSQL's dead rows are removed by
    /// vacuum instead ([`Store::reclaim_space`]).
    pub(crate) fn secure_delete(&self, on: bool) -> Result<(), StoreError> {
        if let Some(sqlite) = self.conn.as_sqlite() {
            sqlite.execute_batch(if on {
                "PRAGMA secure_delete = ON"
            } else {
                "PRAGMA secure_delete = OFF"
            })?;
        }
        Ok(())
    }
}

fn row_ref(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<PatientRef> {
    Ok(PatientRef {
        id: r.get(0)?,
        clinic: r.get(1)?,
        external_id: r.get(2)?,
        erased_at: r
            .get::<_, Option<i64>>(3)?
            .and_then(|t| DateTime::from_timestamp(t, 0)),
    })
}

/// Keeps the patient's opt-outs as the hash of each number (no name, no clinic): a patient
/// imported later with that number starts opted out. Whether any was kept.
fn keep_opt_outs(
    tx: &Transaction<'_>,
    id: i64,
    who: &Identity,
    t: i64,
) -> Result<bool, StoreError> {
    let (all, sms): (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT p.opted_out_at, n.sms_opted_out_at FROM patients p
         LEFT JOIN numbers n ON n.phone = p.phone WHERE p.id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut refused: Vec<(&str, i64)> = Vec::new();
    if let Some(at) = all {
        refused.push(("all", at));
    }
    if let Some(at) = sms {
        refused.push(("sms", at));
    }
    // The standing consent answer per channel, when it is a refusal.
    let mut stmt = tx.prepare(
        "SELECT channel, recorded_at FROM consents c WHERE patient_id = ?1 AND given = 0
           AND recorded_at = (SELECT max(recorded_at) FROM consents WHERE patient_id = ?1 AND channel = c.channel)",
    )?;
    let said_no: Vec<(String, i64)> = stmt
        .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let hash = phone_sha256(&who.phone);
    for (channel, at) in refused
        .into_iter()
        .map(|(c, a)| (c.to_string(), a))
        .chain(said_no)
    {
        tx.execute(
            "INSERT INTO opt_outs (phone_sha256, channel, since) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![hash, channel, at.min(t)],
        )?;
    }
    Ok(tx.query_row(
        "SELECT count(*) > 0 FROM opt_outs WHERE phone_sha256 = ?1",
        params![hash],
        |r| r.get(0),
    )?)
}

/// Records a consent answer for patient `patient` on `channel` ('whatsapp' or 'sms') in the
/// caller's transaction; the newest row per channel is the standing answer. `source`: 'reply
/// <message id>' (STOP, START), 'staff:<name>', 'import:<file>'.
pub(super) fn consent_row(
    conn: &crate::store::sql::Conn,
    patient: i64,
    channel: &str,
    given: bool,
    source: &str,
    t: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO consents (patient_id, channel, given, source, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![patient, channel, given, source, t])?;
    Ok(())
}

/// Starts a new patient with the opt-outs kept for their number after an earlier erasure:
/// 'all' or 'whatsapp' as the patient's own opt-out, 'sms' on the number, each with a consent
/// row saying where it came from. Called by the import's `insert_patient`.
pub(super) fn apply_kept_opt_outs(
    conn: &crate::store::sql::Conn,
    patient: i64,
    phone: &str,
    t: i64,
) -> Result<(), StoreError> {
    let kept: Vec<(String, i64)> = {
        let mut stmt =
            conn.prepare_cached("SELECT channel, since FROM opt_outs WHERE phone_sha256 = ?1")?;
        stmt.query_map(params_from_iter([phone_sha256(phone)]), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?
    };
    for (channel, since) in kept {
        if channel == "sms" {
            conn.execute(
                "INSERT INTO numbers (phone, sms_opted_out_at, sms_opt_out_source, updated_at)
                 VALUES (?1, ?2, 'kept after erasure', ?3)
                 ON CONFLICT (phone) DO UPDATE SET sms_opted_out_at = coalesce(numbers.sms_opted_out_at, excluded.sms_opted_out_at)",
                params![phone, since, t],
            )?;
        } else {
            conn.execute(
                "UPDATE patients SET opted_out_at = coalesce(opted_out_at, ?2) WHERE id = ?1",
                params![patient, since],
            )?;
        }
        let channels: &[&str] = match channel.as_str() {
            "all" => &["whatsapp", "sms"],
            "sms" => &["sms"],
            _ => &["whatsapp"],
        };
        for c in channels {
            consent_row(conn, patient, c, false, "opt-out kept after erasure", t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
