//! What staff see and do: replies to handle, follow-ups, the day board, status changes and
//! stats.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// A reply as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplyView {
    /// Row id.
    pub id: i64,
    /// When it arrived (UTC, RFC 3339).
    pub received_at: String,
    /// The sender's number.
    pub from: String,
    /// The patient's name, if the number is a patient's.
    pub patient_name: Option<String>,
    /// Clinic key of the appointment it concerns.
    pub clinic: Option<String>,
    /// The appointment it concerns.
    pub appointment_id: Option<String>,
    /// The API's message type.
    pub kind: String,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// What it was read as.
    pub intent: String,
    /// applied, needs_staff, ignored.
    pub outcome: String,
    /// Why it needs staff or was ignored.
    pub reason: Option<String>,
    /// When it arrived, for pages that show it in a clinic's time.
    #[serde(skip)]
    pub received: DateTime<Utc>,
    /// The appointment's row id.
    #[serde(skip)]
    pub appointment_row: Option<i64>,
    /// The appointment's start.
    #[serde(skip)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Who the appointment is with.
    #[serde(skip)]
    pub provider: Option<String>,
    /// Clinic key of the patient the number belongs to (for a reply about no appointment).
    #[serde(skip)]
    pub patient_clinic: Option<String>,
}

/// An appointment staff should call about, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FollowUp {
    /// Row id (reveals and calls name it).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number, whole: staff will dial it.
    pub phone: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// Why, one line each.
    pub reasons: Vec<String>,
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Appointments in the range.
    pub appointments: i64,
    /// Reminders accepted by the API.
    pub reminders_sent: i64,
    /// ... and delivered to the phone (or read).
    pub reminders_delivered: i64,
    /// ... and read.
    pub reminders_read: i64,
    /// Reminders that failed.
    pub reminders_failed: i64,
    /// Appointments whose patient confirmed.
    pub confirmed: i64,
    /// Appointments the patient cancelled.
    pub declined: i64,
    /// Appointments the patient asked to move.
    pub reschedule_requested: i64,
    /// Reminded appointments (at least one reminder accepted).
    pub reminded: i64,
    /// No-shows among patients who confirmed.
    pub no_show_confirmed: i64,
    /// No-shows among reminded patients who did not answer.
    pub no_show_unconfirmed: i64,
    /// No-shows among patients whose reminders all failed.
    pub no_show_unreachable: i64,
    /// Patients who opted out in the range.
    pub opt_outs: i64,
    /// Per reminder rule, by rule name.
    pub per_rule: Vec<RuleStats>,
}

/// What one reminder rule achieved over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleStats {
    /// The rule's name.
    pub rule: String,
    /// Reminders it sent (accepted by the API).
    pub sent: i64,
    /// ... whose appointment the patient then confirmed.
    pub confirmed: i64,
    /// ... whose appointment was then a no-show.
    pub no_show: i64,
}

impl Store {
    /// Replies, newest first.
    pub fn replies(
        &self,
        needs_staff_only: bool,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReplyView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.received_at, r.from_phone, p.name, c.key, a.external_id, r.kind, r.text, r.intent, r.outcome, r.reason,
                    a.id, a.starts_at, a.provider, pc.key
             FROM replies r LEFT JOIN patients p ON p.id = r.patient_id LEFT JOIN clinics pc ON pc.id = p.clinic_id
             LEFT JOIN appointments a ON a.id = r.appointment_id LEFT JOIN clinics c ON c.id = a.clinic_id
             WHERE (?1 = 0 OR (r.outcome = 'needs_staff' AND r.handled_by IS NULL)) AND r.received_at >= ?2
             ORDER BY r.received_at DESC, r.id DESC",
        )?;
        let since = since.map_or(i64::MIN, |t| t.timestamp());
        let rows = stmt.query_map(params![needs_staff_only, since], |r| {
            let received = crate::time::from_unix(r.get(1)?);
            Ok(ReplyView {
                id: r.get(0)?,
                received_at: received.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                received,
                from: r.get(2)?,
                patient_name: r.get(3)?,
                clinic: r.get(4)?,
                appointment_id: r.get(5)?,
                kind: r.get(6)?,
                text: r.get(7)?,
                intent: r.get(8)?,
                outcome: r.get(9)?,
                reason: r.get(10)?,
                appointment_row: r.get(11)?,
                starts_at: r.get::<_, Option<i64>>(12)?.map(crate::time::from_unix),
                provider: r.get(13)?,
                patient_clinic: r.get(14)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Booked appointments of one clinic starting in `[from, to)` that a person should call
    /// about, each with every reason that no call or handled reply has settled yet.
    /// `rules` is how many reminder rules apply to the clinic: "no answer after all reminders"
    /// needs that many of its reminders sent (or expired), not merely none pending.
    ///
    /// What settles a reason (calls are `called` audit rows whose `new_value` is the outcome,
    /// see `store::calls`): a request needs a conversation, so "asked to reschedule" leaves on a
    /// call that *reached* the patient after the request, and "a reply needs a person" when the
    /// reply is marked handled (reaching the patient marks it). The reasons that only mean "the
    /// patient must hear of the appointment" (opted out, not on WhatsApp, no answer after all
    /// reminders) leave on a call that reached the patient or left a message (for a failed
    /// message, one after the failure); "no answer" settles nothing, and a patient who wrote
    /// back (a reply that needed a person) has answered.
    pub fn follow_ups(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        rules: usize,
    ) -> Result<Vec<FollowUp>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "WITH calls AS (
                SELECT appointment_id, max(CASE WHEN new_value = 'reached' THEN at END) AS reached,
                       max(CASE WHEN new_value IN ('reached', 'left_message') THEN at END) AS told
                FROM audit_log WHERE action = 'called' AND appointment_id IS NOT NULL
                GROUP BY appointment_id)
             SELECT a.id, a.external_id, c.key, a.starts_at, p.name, p.phone, a.provider,
                    a.response = 'reschedule_requested' AND coalesce(k.reached, -1) < coalesce(a.response_at, 0),
                    p.opted_out_at IS NOT NULL AND k.told IS NULL,
                    (SELECT group_concat(DISTINCT o.needs_staff) FROM outbox o WHERE o.appointment_id = a.id
                       AND o.needs_staff IS NOT NULL AND coalesce(k.told, -1) < o.updated_at),
                    (SELECT group_concat(coalesce(r.text, r.kind), ' | ') FROM replies r
                      WHERE r.appointment_id = a.id AND r.outcome = 'needs_staff' AND r.handled_by IS NULL),
                    a.response = 'none' AND k.told IS NULL
                      AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.appointment_id = a.id AND r.outcome = 'needs_staff')
                      AND EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state IN ('sent', 'delivered', 'read'))
                      AND (SELECT count(DISTINCT o.rule) FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder'
                           AND o.state IN ('sent', 'delivered', 'read', 'failed', 'expired')) >= ?4
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             LEFT JOIN calls k ON k.appointment_id = a.id
             WHERE c.key = ?1 AND a.status = 'booked' AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.external_id",
        )?;
        let mut q = stmt.query(params![
            clinic,
            from.timestamp(),
            to.timestamp(),
            rules.max(1) as i64
        ])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let mut reasons = Vec::new();
            if r.get::<_, bool>(7)? {
                reasons.push("asked to reschedule: find a new time".to_string());
            }
            if r.get::<_, bool>(8)? {
                reasons.push("opted out of WhatsApp messages: remind by phone".to_string());
            }
            if let Some(s) = r.get::<_, Option<String>>(9)? {
                reasons.extend(s.split(',').map(str::to_string));
            }
            if let Some(s) = r.get::<_, Option<String>>(10)? {
                reasons.push(format!("a reply needs a person: \"{s}\""));
            }
            if r.get::<_, bool>(11)? {
                reasons.push("no answer after all reminders".to_string());
            }
            if reasons.is_empty() {
                continue;
            }
            out.push(FollowUp {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                clinic: r.get(2)?,
                starts_at: crate::time::from_unix(r.get(3)?),
                patient_name: r.get(4)?,
                phone: r.get(5)?,
                provider: r.get(6)?,
                reasons,
            });
        }
        Ok(out)
    }

    /// Records what staff did about an appointment: a call or a note is an audit row (and
    /// `Ok(None)`); a confirmation they took by phone sets the response; anything else sets
    /// the schedule status and skips the pending reminders. `Some((clinic, old value))` when
    /// the appointment changed.
    pub fn set_status(
        &mut self,
        clinic: Option<&str>,
        appointment_id: &str,
        status: crate::model::StaffAction,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String, String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.id, c.key, a.status, a.response FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                 WHERE a.external_id = ?1 AND (?2 IS NULL OR c.key = ?2)",
            )?;
            stmt.query_map(params![appointment_id, clinic], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let [(id, key, old_status, old_response)] = rows.as_slice() else {
            return Err(if rows.is_empty() {
                StoreError::NotFound(format!(
                    "no appointment {appointment_id:?}{}; `reminderd appointments` lists the ids",
                    clinic
                        .map(|c| format!(" at clinic {c:?}"))
                        .unwrap_or_default()
                ))
            } else {
                StoreError::Ambiguous(format!(
                    "appointment {appointment_id:?} exists at several clinics; name the clinic with --clinic KEY"
                ))
            });
        };
        let t = now.timestamp();
        if !status.changes_status() {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, reason)
                 VALUES (?1, ?2, (SELECT patient_id FROM appointments WHERE id = ?2), ?3, ?4, ?5)",
                params![t, id, actor, status.as_str(), note],
            )?;
            tx.commit()?;
            return Ok(None);
        }
        let (action, old) = if status == crate::model::StaffAction::Confirmed {
            tx.execute(
                "UPDATE appointments SET response = 'confirmed', response_at = ?2, response_text = ?3, updated_at = ?2 WHERE id = ?1",
                params![id, t, note],
            )?;
            ("response", old_response.clone())
        } else {
            let by = (status == crate::model::StaffAction::Cancelled).then_some("clinic");
            tx.execute(
                "UPDATE appointments SET status = ?2, cancelled_by = ?3, status_at = ?4, updated_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), by, t],
            )?;
            tx.execute(
                "UPDATE outbox SET state = 'skipped', reason = ?2, updated_at = ?3
                 WHERE appointment_id = ?1 AND state = 'pending' AND kind != 'reply_ack'",
                params![id, format!("staff set the appointment to {status}"), t],
            )?;
            ("status", old_status.clone())
        };
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t, id, actor, action, old, status.as_str(), note],
        )?;
        tx.commit()?;
        Ok(Some((key.clone(), old)))
    }

    /// Reminder and answer counts for appointments starting in `[from, to)`.
    pub fn stats(
        &self,
        clinic: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Stats, StoreError> {
        let scope = "FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                     WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)";
        let p = params![from.timestamp(), to.timestamp(), clinic];
        let one = |sql: &str| -> Result<i64, StoreError> {
            Ok(self.conn.query_row(sql, p, |r| r.get(0))?)
        };
        let reached = |states: &str| {
            format!("SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
                     WHERE o.kind = 'reminder' AND o.state IN ({states}) AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)")
        };
        let reminded = "EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state IN ('sent','delivered','read'))";
        let unreachable = "EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state = 'failed') AND NOT "
            .to_string()
            + reminded;
        let mut s = Stats {
            appointments: one(&format!("SELECT count(*) {scope}"))?,
            reminders_sent: one(&reached("'sent','delivered','read'"))?,
            reminders_delivered: one(&reached("'delivered','read'"))?,
            reminders_read: one(&reached("'read'"))?,
            reminders_failed: one(&reached("'failed'"))?,
            confirmed: one(&format!("SELECT count(*) {scope} AND a.response = 'confirmed'"))?,
            declined: one(&format!("SELECT count(*) {scope} AND a.response = 'declined'"))?,
            reschedule_requested: one(&format!("SELECT count(*) {scope} AND a.response = 'reschedule_requested'"))?,
            reminded: one(&format!("SELECT count(*) {scope} AND {reminded}"))?,
            no_show_confirmed: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND a.response = 'confirmed'"))?,
            no_show_unconfirmed: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND a.response = 'none' AND {reminded}"))?,
            no_show_unreachable: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND {unreachable}"))?,
            opt_outs: one("SELECT count(DISTINCT p.id) FROM patients p JOIN appointments a ON a.patient_id = p.id JOIN clinics c ON c.id = a.clinic_id
                 WHERE p.opted_out_at IS NOT NULL AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)")?,
            per_rule: Vec::new(),
        };
        let mut stmt = self.conn.prepare(
            "SELECT o.rule, count(*), sum(a.response = 'confirmed'), sum(a.status = 'no_show') FROM outbox o
             JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE o.kind = 'reminder' AND o.state IN ('sent','delivered','read')
               AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)
             GROUP BY o.rule ORDER BY o.rule",
        )?;
        s.per_rule = stmt
            .query_map(p, |r| {
                Ok(RuleStats {
                    rule: r.get(0)?,
                    sent: r.get(1)?,
                    confirmed: r.get(2)?,
                    no_show: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(s)
    }
}

/// What marking a reply handled did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Marked now, and audited.
    Now,
    /// Someone marked it before (their audit actor, `staff:<name>`).
    Already(String),
    /// No reply with that id is waiting for a person.
    NotWaiting,
}

/// One appointment on the day board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    /// Row id (reveal and actions name it).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: i64,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number (E.164); pages mask it unless revealed.
    pub phone: String,
    /// Patient's language.
    pub language: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// booked, cancelled, completed, no_show.
    pub status: String,
    /// none, confirmed, declined, reschedule_requested.
    pub response: String,
    /// The patient opted out of messages.
    pub opted_out: bool,
    /// State of the appointment's latest reminder or confirmation (sent, delivered, ...).
    pub last_message: Option<String>,
    /// The latest staff note or call, as "who: text".
    pub last_note: Option<String>,
}

impl Store {
    /// One clinic's appointments starting in `[from, to)`, in time order, with the state of
    /// each one's latest message and latest staff note.
    pub fn board(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BoardRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.external_id, a.starts_at, a.duration_min, p.name, p.phone, p.language, a.provider,
                    a.status, a.response, p.opted_out_at IS NOT NULL,
                    (SELECT o.state FROM outbox o WHERE o.appointment_id = a.id AND o.kind != 'reply_ack'
                      AND o.state NOT IN ('pending', 'skipped', 'expired')
                      ORDER BY coalesce(o.request_at, o.send_at) DESC, o.id DESC LIMIT 1),
                    (SELECT substr(l.actor, 7) || ': '
                            || CASE WHEN l.action = 'called' THEN 'called' || coalesce(' — ' || l.reason, '') ELSE coalesce(l.reason, '') END
                       FROM audit_log l WHERE l.appointment_id = a.id AND l.action IN ('called', 'note')
                       ORDER BY l.id DESC LIMIT 1)
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.external_id",
        )?;
        let rows = stmt.query_map(params![clinic, from.timestamp(), to.timestamp()], |r| {
            Ok(BoardRow {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                duration_min: r.get(3)?,
                patient_name: r.get(4)?,
                phone: r.get(5)?,
                language: r.get(6)?,
                provider: r.get(7)?,
                status: r.get(8)?,
                response: r.get(9)?,
                opted_out: r.get(10)?,
                last_message: r.get(11)?,
                last_note: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a reply that needed a person as dealt with, and audits it; says who did if
    /// someone already had, and writes nothing unless it marked it now.
    pub fn handle_reply(
        &mut self,
        reply_id: i64,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE replies SET handled_by = ?2, handled_at = ?3
             WHERE id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL",
            params![reply_id, actor, now.timestamp()],
        )?;
        let done = if n == 1 {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                 SELECT ?1, appointment_id, patient_id, ?2, 'reply_handled', text, ?3 FROM replies WHERE id = ?4",
                params![now.timestamp(), actor, note, reply_id],
            )?;
            Handled::Now
        } else {
            tx.query_row(
                "SELECT handled_by FROM replies WHERE id = ?1 AND outcome = 'needs_staff'",
                params![reply_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten()
            .map_or(Handled::NotWaiting, Handled::Already)
        };
        tx.commit()?;
        Ok(done)
    }
}
