//! Calls staff make from the follow-up list, replies staff settle by hand (a revealed number,
//! an ambiguous answer assigned to its appointment), and the facts behind the desk's
//! "reminders are held" banner.
//!
//! A call is an audit row (`action = 'called'`, the outcome in `new_value`, the note in
//! `reason`), so the day board's "last note" and the audit trail see it with no table of its
//! own; `Store::follow_ups` reads the outcomes to decide what a call settled.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::replies::Intent;

/// What a call from the follow-up list came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The patient was reached: every reason to call is settled.
    Reached,
    /// Nobody answered: the call stays on the list, with this attempt shown.
    NoAnswer,
    /// A message was left: the patient has been told of the appointment.
    LeftMessage,
}

impl CallOutcome {
    /// Every outcome, in the order the card offers them.
    pub const ALL: [Self; 3] = [Self::Reached, Self::NoAnswer, Self::LeftMessage];

    /// The stored word (`audit_log.new_value`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reached => "reached",
            Self::NoAnswer => "no_answer",
            Self::LeftMessage => "left_message",
        }
    }

    /// The outcome stored as `word`, if it is one.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == word)
    }

    /// How staff say it.
    pub fn words(self) -> &'static str {
        match self {
            Self::Reached => "reached",
            Self::NoAnswer => "no answer",
            Self::LeftMessage => "left a message",
        }
    }
}

/// One call recorded against an appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who called (the staff name, without `staff:`).
    pub by: String,
    /// What it came to (`None`: an older "called" without an outcome).
    pub outcome: Option<CallOutcome>,
    /// The note typed with it.
    pub note: Option<String>,
}

/// What recording a call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRecorded {
    /// Recorded; this many replies waiting on the appointment were marked handled with it.
    Saved(usize),
    /// No appointment has that row id.
    NoSuchAppointment,
}

/// A reply waiting for a person, as the desk acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingReply {
    /// Row id.
    pub id: i64,
    /// The sender's number.
    pub from: String,
    /// What the patient asked for, as read.
    pub intent: Intent,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// An upcoming appointment of a reply's sender that an answer could be meant for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<String>,
    /// The patient's name.
    pub patient_name: String,
    /// The patient's language.
    pub language: String,
}

/// What applying a reply to an appointment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyApplied {
    /// Applied, the reply handled, and both audited.
    Now,
    /// Someone handled the reply before (their audit actor).
    Already(String),
    /// No reply with that id waits for a person.
    NotWaiting,
    /// The reply or the appointment does not allow it; why, in staff's words.
    Refused(String),
}

/// A clinic's schedule as the stale-schedule guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleAge {
    /// Clinic key.
    pub clinic: String,
    /// When a schedule covering it was last imported (`None`: never).
    pub last_import: Option<DateTime<Utc>>,
    /// It has booked appointments still to come (reminders that a stale schedule holds).
    pub upcoming: bool,
}

/// Messages the API refused with one error code since a time, none of their template sent
/// since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTrouble {
    /// The template's config key (`None` for free-form acknowledgements).
    pub template: Option<String>,
    /// The API's error code.
    pub code: i64,
    /// The API's error text, as last recorded.
    pub error: String,
    /// The latest refusal.
    pub at: DateTime<Utc>,
    /// How many messages it concerns.
    pub messages: i64,
}

/// The newest messages put back because WhatsApp refused the account (`dispatch` releases
/// them unsent, with a reason starting "not sent: ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStop {
    /// When the latest was put back.
    pub at: DateTime<Utc>,
    /// The API's answer.
    pub reason: String,
    /// How many messages are waiting for it.
    pub messages: i64,
}

impl Store {
    /// Records a call's outcome on an appointment (by row id), audited as `actor`. Reaching
    /// the patient also marks the appointment's replies that wait for a person handled, in
    /// the same transaction: one action clears the patient from Follow-ups and Replies.
    pub fn record_call(
        &mut self,
        appointment: i64,
        outcome: CallOutcome,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<CallRecorded, StoreError> {
        let t = now.timestamp();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             SELECT ?1, id, patient_id, ?2, 'called', ?3, ?4 FROM appointments WHERE id = ?5",
            params![t, actor, outcome.as_str(), note, appointment],
        )?;
        if inserted == 0 {
            return Ok(CallRecorded::NoSuchAppointment);
        }
        let handled = if outcome == CallOutcome::Reached {
            handle_waiting_replies(
                &tx,
                appointment,
                actor,
                note.unwrap_or("the patient was reached by phone"),
                t,
            )?
        } else {
            0
        };
        tx.commit()?;
        Ok(CallRecorded::Saved(handled))
    }

    /// Marks the replies waiting on an appointment (by clinic key and the clinic system's
    /// id) handled, audited: staff set its status at the desk, which answers them. Returns
    /// how many.
    pub fn settle_replies(
        &mut self,
        clinic: &str,
        appointment: &str,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT a.id FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE c.key = ?1 AND a.external_id = ?2",
                params![clinic, appointment],
                |r| r.get(0),
            )
            .optional()?;
        let n = match id {
            Some(id) => handle_waiting_replies(
                &tx,
                id,
                actor,
                note.unwrap_or("the appointment was changed at the desk"),
                now.timestamp(),
            )?,
            None => 0,
        };
        tx.commit()?;
        Ok(n)
    }

    /// The latest `per` calls on each of these appointments (by row id), newest first.
    pub fn calls(
        &self,
        appointments: &[i64],
        per: usize,
    ) -> Result<std::collections::HashMap<i64, Vec<Call>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, substr(actor, 7), new_value, reason FROM audit_log
             WHERE appointment_id = ?1 AND action = 'called' AND actor LIKE 'staff:%'
             ORDER BY id DESC LIMIT ?2",
        )?;
        let mut out = std::collections::HashMap::new();
        for id in appointments {
            let calls = stmt
                .query_map(params![id, per as i64], |r| {
                    Ok(Call {
                        at: crate::time::from_unix(r.get(0)?),
                        by: r.get(1)?,
                        outcome: r
                            .get::<_, Option<String>>(2)?
                            .as_deref()
                            .and_then(CallOutcome::parse),
                        note: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if !calls.is_empty() {
                out.insert(*id, calls);
            }
        }
        Ok(out)
    }

    /// How many replies wait for a person.
    pub fn waiting_reply_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM replies WHERE outcome = 'needs_staff' AND handled_by IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Reveals the number of a reply waiting for a person: audits it (`reveal_phone`, the
    /// reason naming the reply) and returns the number; `None` (and nothing written) when no
    /// such reply waits.
    pub fn reveal_reply_phone(
        &mut self,
        reply: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let phone: Option<String> = tx
            .query_row(
                "SELECT from_phone FROM replies WHERE id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL",
                [reply],
                |r| r.get(0),
            )
            .optional()?;
        if phone.is_some() {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, reason)
                 SELECT ?1, appointment_id, patient_id, ?2, 'reveal_phone', ?3 FROM replies WHERE id = ?4",
                params![now.timestamp(), actor, reveal_reason(reply), reply],
            )?;
        }
        tx.commit()?;
        Ok(phone)
    }

    /// Whether `actor` revealed the number of reply `reply` (`Some`) or of appointment
    /// `appointment` at or after `since`: a page shows a number whole only after an audited
    /// reveal, and may show it again on a refresh within a few minutes.
    pub fn revealed_since(
        &self,
        actor: &str,
        reply: Option<i64>,
        appointment: Option<i64>,
        since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let found = match reply {
            Some(id) => self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = 'reveal_phone' AND actor = ?1 AND reason = ?2 AND at >= ?3)",
                params![actor, reveal_reason(id), since.timestamp()],
                |r| r.get(0),
            )?,
            None => self.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = 'reveal_phone' AND actor = ?1 AND appointment_id = ?2
                                  AND reason IS NULL AND at >= ?3)",
                params![actor, appointment, since.timestamp()],
                |r| r.get(0),
            )?,
        };
        Ok(found)
    }

    /// The reply with this id, if it waits for a person.
    pub fn waiting_reply(&self, reply: i64) -> Result<Option<WaitingReply>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, from_phone, intent, text, received_at FROM replies
                 WHERE id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL",
                [reply],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?
            .map(|(id, from, intent, text, at)| -> Result<_, StoreError> {
                Ok(WaitingReply {
                    id,
                    from,
                    intent: Intent::parse(&intent)?,
                    text,
                    received_at: crate::time::from_unix(at),
                })
            })
            .transpose()
    }

    /// The booked appointments still to come of every patient with number `phone`, in time
    /// order: what an answer from that number could be about.
    pub fn reply_choices(
        &self,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Choice>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, c.key, a.starts_at, a.provider, p.name, p.language
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE p.phone = ?1 AND a.status = 'booked' AND a.starts_at > ?2
             ORDER BY a.starts_at, a.id LIMIT 20",
        )?;
        let rows = stmt.query_map(params![phone, now.timestamp()], |r| {
            Ok(Choice {
                id: r.get(0)?,
                clinic: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                provider: r.get(3)?,
                patient_name: r.get(4)?,
                language: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies a waiting reply's answer (confirm, cancel or reschedule) to the appointment
    /// staff chose among [`Store::reply_choices`], as the webhook would have applied it to a
    /// reply it could match: the same state change and audit rows (actor `actor`), the reply
    /// linked to the appointment and marked handled, and the acknowledgement `ack` queued
    /// while the patient's 24-hour window is open. One transaction; checks everything again.
    pub fn apply_reply(
        &mut self,
        reply: i64,
        appointment: i64,
        actor: &str,
        ack: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ReplyApplied, StoreError> {
        let t = now.timestamp();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<(String, String, Option<String>, Option<String>, i64, String)> = tx
            .query_row(
                "SELECT from_phone, intent, text, handled_by, received_at, outcome FROM replies WHERE id = ?1",
                [reply],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()?;
        let Some((from, intent, text, handled_by, received, outcome)) = found else {
            return Ok(ReplyApplied::NotWaiting);
        };
        if outcome != "needs_staff" {
            return Ok(ReplyApplied::NotWaiting);
        }
        if let Some(by) = handled_by {
            return Ok(ReplyApplied::Already(by));
        }
        let intent = Intent::parse(&intent)?;
        if !matches!(
            intent,
            Intent::Confirm | Intent::Cancel | Intent::Reschedule
        ) {
            return Ok(ReplyApplied::Refused(
                "This reply is not an answer to a reminder (yes, no or another time), so it cannot be applied to an appointment".into(),
            ));
        }
        let target: Option<(i64, i64, String, String)> = tx
            .query_row(
                "SELECT a.patient_id, a.starts_at, a.status, p.phone FROM appointments a JOIN patients p ON p.id = a.patient_id
                 WHERE a.id = ?1",
                [appointment],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let patient = match target {
            Some((patient, starts, status, phone))
                if phone == from && status == "booked" && starts > t =>
            {
                patient
            }
            _ => {
                return Ok(ReplyApplied::Refused(
                    "That appointment is no longer one this patient has coming (it was cancelled, moved or has passed). Reload the page and choose again".into(),
                ));
            }
        };
        let reason = format!("reply {reply}, applied at the desk");
        super::inbound::apply_answer(
            &tx,
            intent,
            (appointment, patient),
            text.as_deref(),
            (actor, &reason),
            t,
        )?;
        tx.execute(
            "UPDATE replies SET appointment_id = ?2, patient_id = ?3, handled_by = ?4, handled_at = ?5 WHERE id = ?1",
            params![reply, appointment, patient, actor, t],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, 'reply_handled', ?5, 'applied to this appointment at the desk')",
            params![t, appointment, patient, actor, text],
        )?;
        let latest = received + 24 * 3600;
        if let Some(ack) = ack.filter(|_| t < latest) {
            let starts: i64 = tx.query_row(
                "SELECT starts_at FROM appointments WHERE id = ?1",
                [appointment],
                |r| r.get(0),
            )?;
            super::inbound::queue_ack(
                &tx,
                appointment,
                reply,
                crate::time::from_unix(starts),
                ack,
                t,
                latest,
            )?;
        }
        tx.commit()?;
        Ok(ReplyApplied::Now)
    }

    /// Every clinic's latest import and whether it has booked appointments still to come.
    pub fn schedule_ages(&self, now: DateTime<Utc>) -> Result<Vec<ScheduleAge>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.key,
                    (SELECT max(i.imported_at) FROM import_clinics ic JOIN imports i ON i.id = ic.import_id WHERE ic.clinic_id = c.id),
                    EXISTS (SELECT 1 FROM appointments a WHERE a.clinic_id = c.id AND a.status = 'booked' AND a.starts_at > ?1)
             FROM clinics c ORDER BY c.key",
        )?;
        let rows = stmt.query_map([now.timestamp()], |r| {
            Ok(ScheduleAge {
                clinic: r.get(0)?,
                last_import: r.get::<_, Option<i64>>(1)?.map(crate::time::from_unix),
                upcoming: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Messages waiting because WhatsApp refused the account, if any are.
    pub fn account_stop(&self) -> Result<Option<AccountStop>, StoreError> {
        let found: Option<(i64, String, i64)> = self
            .conn
            .query_row(
                "SELECT max(updated_at), (SELECT reason FROM outbox WHERE state = 'pending' AND reason LIKE 'not sent: %'
                                          ORDER BY updated_at DESC, id DESC LIMIT 1), count(*)
                 FROM outbox WHERE state = 'pending' AND reason LIKE 'not sent: %' HAVING count(*) > 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(found.map(|(at, reason, messages)| AccountStop {
            at: crate::time::from_unix(at),
            reason: reason.trim_start_matches("not sent: ").to_string(),
            messages,
        }))
    }

    /// Messages refused by the API at or after `since` (pending a retry or failed), grouped
    /// by template and error code, leaving out those whose template was sent after the
    /// refusal (the trouble has passed). `dispatch` and `whatsapp` say what a code means.
    pub fn send_troubles(&self, since: DateTime<Utc>) -> Result<Vec<SendTrouble>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.template, o.last_error_code, max(o.updated_at), count(*),
                    (SELECT e.last_error FROM outbox e WHERE e.template IS o.template AND e.last_error_code = o.last_error_code
                       AND e.state IN ('pending', 'failed') ORDER BY e.updated_at DESC, e.id DESC LIMIT 1)
             FROM outbox o
             WHERE o.state IN ('pending', 'failed') AND o.send_at >= ?2 AND o.last_error_code IS NOT NULL AND o.updated_at >= ?1
               AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.state IN ('sent', 'delivered', 'read') AND s.send_at >= ?2
                               AND s.template IS o.template AND s.sent_at > o.updated_at)
             GROUP BY o.template, o.last_error_code ORDER BY max(o.updated_at) DESC",
        )?;
        // A message is sent within days of its due time; older ones are not looked at.
        let due_since = since.timestamp() - 7 * 24 * 3600;
        let rows = stmt.query_map(params![since.timestamp(), due_since], |r| {
            Ok(SendTrouble {
                template: r.get(0)?,
                code: r.get(1)?,
                at: crate::time::from_unix(r.get(2)?),
                messages: r.get(3)?,
                error: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Marks every reply waiting on `appointment` handled by `actor`, each with its audit row.
fn handle_waiting_replies(
    tx: &rusqlite::Transaction<'_>,
    appointment: i64,
    actor: &str,
    reason: &str,
    t: i64,
) -> Result<usize, StoreError> {
    let replies: Vec<i64> = tx
        .prepare(
            "UPDATE replies SET handled_by = ?2, handled_at = ?3
             WHERE appointment_id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL
             RETURNING id",
        )?
        .query_map(params![appointment, actor, t], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &replies {
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             SELECT ?1, appointment_id, patient_id, ?2, 'reply_handled', text, ?3 FROM replies WHERE id = ?4",
            params![t, actor, reason, id],
        )?;
    }
    Ok(replies.len())
}

/// The audit reason that names a reply whose number was revealed.
fn reveal_reason(reply: i64) -> String {
    format!("reply {reply}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;

    fn at(offset: i64) -> DateTime<Utc> {
        crate::time::from_unix(T0 + offset)
    }

    /// A store with the shipped clinics and, at Mumbai, appointments 1 (Priya) and 2 (Rohan,
    /// another number) a day after `T0`, and 3 (Priya again) two days after.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(&dir.path().join("d.db")).expect("open");
        let config = crate::config::Config::example().expect("config");
        s.sync_clinics(&config.clinics).expect("clinics");
        s.conn
            .execute_batch(&format!(
                "INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
                   SELECT 1, id, 'P-1', 'Priya Patil', '+919876543210', 'en', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
                 INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
                   SELECT 2, id, 'P-2', 'Rohan Gupta', '+919123456789', 'hi', {T0}, {T0} FROM clinics WHERE key = 'mumbai';
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
                   SELECT 1, id, 'MUM-1', 1, 'Dr. Mehta', {T0} + 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
                   SELECT 2, id, 'MUM-2', 2, 'Dr. Iyer', {T0} + 90000, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, provider, starts_at, duration_min, status_at, created_at, updated_at)
                   SELECT 3, id, 'MUM-3', 1, 'Dr. Iyer', {T0} + 2 * 86400, 15, {T0}, {T0}, {T0} FROM clinics WHERE key = 'mumbai';"
            ))
            .expect("schedule");
        (dir, s)
    }

    /// The reasons on the list for each appointment (by row id) over the next three days.
    fn listed(s: &Store) -> Vec<(i64, Vec<String>)> {
        s.follow_ups("mumbai", at(0), at(3 * 86400), 2)
            .expect("follow-ups")
            .into_iter()
            .map(|f| (f.id, f.reasons))
            .collect()
    }

    fn call(s: &mut Store, id: i64, outcome: CallOutcome, offset: i64) -> CallRecorded {
        s.record_call(id, outcome, None, "staff:asha", at(offset))
            .expect("call")
    }

    fn reply(s: &Store, id: i64, appointment: Option<i64>, text: &str, intent: &str) {
        s.conn
            .execute(
                "INSERT INTO replies (id, message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
                 VALUES (?1, ?2, '+919876543210', 1, ?3, 'text', ?4, ?5, 'needs_staff', 'why', ?6)",
                params![id, format!("wamid.{id}"), appointment, text, intent, T0],
            )
            .expect("reply");
    }

    #[test]
    fn a_request_leaves_the_list_only_when_the_patient_is_reached_after_it() {
        let (_dir, mut s) = store();
        s.conn
            .execute_batch(&format!(
                "UPDATE appointments SET response = 'reschedule_requested', response_at = {T0} WHERE id = 1"
            ))
            .expect("request");
        assert_eq!(
            listed(&s),
            [(1, vec!["asked to reschedule: find a new time".to_string()])]
        );
        call(&mut s, 1, CallOutcome::NoAnswer, 60);
        call(&mut s, 1, CallOutcome::LeftMessage, 120);
        assert_eq!(listed(&s).len(), 1, "a request needs a conversation");
        let calls = s.calls(&[1, 2], 5).expect("calls");
        let outcomes: Vec<_> = calls[&1]
            .iter()
            .map(|c| (c.outcome, c.by.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Some(CallOutcome::LeftMessage), "asha"),
                (Some(CallOutcome::NoAnswer), "asha")
            ],
            "newest first"
        );
        assert!(!calls.contains_key(&2));
        assert_eq!(
            call(&mut s, 1, CallOutcome::Reached, 180),
            CallRecorded::Saved(0)
        );
        assert!(listed(&s).is_empty());
        // A new request after that call puts the patient back.
        s.conn
            .execute_batch(&format!(
                "UPDATE appointments SET response_at = {T0} + 240 WHERE id = 1"
            ))
            .expect("asked again");
        assert_eq!(listed(&s).len(), 1);
        assert_eq!(
            call(&mut s, 99, CallOutcome::Reached, 300),
            CallRecorded::NoSuchAppointment
        );
    }

    #[test]
    fn reminding_reasons_leave_on_a_message_left_and_unanswered_ones_on_a_reply_handled() {
        let (_dir, mut s) = store();
        s.conn
            .execute_batch(&format!(
                "UPDATE patients SET opted_out_at = {T0} WHERE id = 2;
                 INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, needs_staff, created_at, updated_at)
                   VALUES (1, 'reminder', 'day-before', {T0} + 86400, {T0}, {T0} + 86400, 'failed', 'cannot be reached: call them', {T0}, {T0});
                 INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, sent_at, created_at, updated_at)
                   VALUES (3, 'reminder', 'day-before', {T0} + 172800, {T0}, {T0} + 172800, 'read', {T0}, {T0}, {T0}),
                          (3, 'reminder', 'same-day', {T0} + 172800, {T0}, {T0} + 172800, 'delivered', {T0}, {T0}, {T0});"
            ))
            .expect("reasons");
        let reasons: Vec<i64> = listed(&s).into_iter().map(|(id, _)| id).collect();
        assert_eq!(reasons, [1, 2, 3]);
        call(&mut s, 1, CallOutcome::NoAnswer, 60);
        call(&mut s, 2, CallOutcome::LeftMessage, 60);
        assert_eq!(listed(&s)[0].0, 1, "no answer settles nothing");
        assert_eq!(
            listed(&s).len(),
            2,
            "a message left reminds an opted-out patient"
        );
        call(&mut s, 1, CallOutcome::LeftMessage, 120);
        // A message that fails after the call is news.
        s.conn
            .execute_batch(&format!(
                "UPDATE outbox SET updated_at = {T0} + 180 WHERE appointment_id = 1"
            ))
            .expect("failed again");
        assert_eq!(listed(&s)[0].0, 1);
        // Appointment 3 got no answer to either reminder; the patient then wrote.
        assert_eq!(
            listed(&s)[1],
            (3, vec!["no answer after all reminders".to_string()])
        );
        reply(&s, 7, Some(3), "Which floor?", "unknown");
        assert_eq!(
            listed(&s)[1],
            (
                3,
                vec!["a reply needs a person: \"Which floor?\"".to_string()]
            )
        );
        s.handle_reply(7, "staff:asha", None, at(200))
            .expect("handled");
        assert_eq!(
            listed(&s).len(),
            1,
            "the patient answered; the reply is dealt with"
        );
    }

    #[test]
    fn reaching_the_patient_handles_their_waiting_replies_with_an_audit_row() {
        let (_dir, mut s) = store();
        reply(&s, 7, Some(1), "Can I come later?", "unknown");
        reply(&s, 8, None, "ok", "confirm");
        assert_eq!(s.waiting_reply_count().expect("count"), 2);
        assert_eq!(
            call(&mut s, 1, CallOutcome::Reached, 60),
            CallRecorded::Saved(1)
        );
        assert_eq!(s.waiting_reply_count().expect("count"), 1);
        let handled: (String, String) = s
            .conn
            .query_row(
                "SELECT actor, reason FROM audit_log WHERE action = 'reply_handled'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("audit");
        assert_eq!(
            handled,
            (
                "staff:asha".into(),
                "the patient was reached by phone".into()
            )
        );
        assert!(listed(&s).is_empty());
        // A status set at the desk settles replies the same way.
        reply(&s, 9, Some(3), "Is there parking?", "unknown");
        assert_eq!(
            s.settle_replies("mumbai", "MUM-3", "staff:asha", None, at(90))
                .expect("settle"),
            1
        );
        assert_eq!(s.waiting_reply_count().expect("count"), 1);
    }

    #[test]
    fn a_reveal_of_a_reply_is_audited_and_shown_only_to_who_revealed_it() {
        let (_dir, mut s) = store();
        reply(&s, 8, None, "who is this?", "unknown");
        assert_eq!(
            s.reveal_reply_phone(99, "staff:asha", at(0))
                .expect("reveal"),
            None
        );
        assert_eq!(
            s.reveal_reply_phone(8, "staff:asha", at(0))
                .expect("reveal")
                .as_deref(),
            Some("+919876543210")
        );
        let revealed = |who: &str, since: i64| {
            s.revealed_since(who, Some(8), None, at(since))
                .expect("revealed")
        };
        assert!(revealed("staff:asha", -600));
        assert!(!revealed("staff:ravi", -600));
        assert!(!revealed("staff:asha", 1), "not after the window");
        assert!(
            !s.revealed_since("staff:asha", None, Some(1), at(-600))
                .expect("revealed")
        );
    }

    #[test]
    fn an_ambiguous_answer_applies_to_the_chosen_appointment_once_with_its_acknowledgement() {
        let (_dir, mut s) = store();
        reply(&s, 8, None, "ok", "confirm");
        let choices: Vec<i64> = s
            .reply_choices("+919876543210", at(0))
            .expect("choices")
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(choices, [1, 3], "Priya's coming appointments, not Rohan's");
        let refused = s
            .apply_reply(8, 2, "staff:asha", None, at(60))
            .expect("apply");
        assert!(matches!(refused, ReplyApplied::Refused(_)), "{refused:?}");
        assert_eq!(
            s.apply_reply(8, 3, "staff:asha", Some("See you!"), at(60))
                .expect("apply"),
            ReplyApplied::Now
        );
        let (response, handled): (String, String) = s
            .conn
            .query_row(
                "SELECT a.response, r.handled_by FROM appointments a JOIN replies r ON r.appointment_id = a.id WHERE a.id = 3",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("applied");
        assert_eq!(
            (response.as_str(), handled.as_str()),
            ("confirmed", "staff:asha")
        );
        let audit: Vec<(String, String)> = s
            .conn
            .prepare("SELECT action, reason FROM audit_log WHERE actor = 'staff:asha' AND appointment_id = 3 ORDER BY id")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            audit,
            [
                (
                    "response".to_string(),
                    "reply 8, applied at the desk".to_string()
                ),
                (
                    "reply_handled".to_string(),
                    "applied to this appointment at the desk".to_string()
                )
            ]
        );
        let ack: String = s
            .conn
            .query_row(
                "SELECT rule || ' ' || params FROM outbox WHERE kind = 'reply_ack'",
                [],
                |r| r.get(0),
            )
            .expect("ack");
        assert_eq!(ack, r#"reply:8 {"text":"See you!"}"#);
        assert_eq!(
            s.apply_reply(8, 1, "staff:ravi", None, at(90))
                .expect("apply"),
            ReplyApplied::Already("staff:asha".into())
        );
        assert_eq!(
            s.apply_reply(99, 1, "staff:ravi", None, at(90))
                .expect("apply"),
            ReplyApplied::NotWaiting
        );
    }

    #[test]
    fn holds_come_from_old_imports_released_messages_and_refused_templates() {
        let (_dir, s) = store();
        let ages = s.schedule_ages(at(0)).expect("ages");
        let mumbai = ages.iter().find(|a| a.clinic == "mumbai").expect("mumbai");
        assert_eq!((mumbai.last_import, mumbai.upcoming), (None, true));
        assert_eq!(s.account_stop().expect("stop"), None);
        s.conn
            .execute_batch(&format!(
                "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason, created_at, updated_at)
                   VALUES (1, 'reminder', 'day-before', {T0} + 86400, {T0}, {T0} + 86400, 'reminder', 'pending', 'not sent: (190) Invalid OAuth access token', {T0}, {T0});
                 INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, last_error_code, last_error, created_at, updated_at)
                   VALUES (3, 'reminder', 'day-before', {T0} + 172800, {T0}, {T0} + 172800, 'reminder', 'failed', 132001, '(132001) Template name does not exist', {T0}, {T0} + 60);"
            ))
            .expect("trouble");
        let stop = s.account_stop().expect("stop").expect("a stop");
        assert_eq!(
            (stop.reason.as_str(), stop.messages),
            ("(190) Invalid OAuth access token", 1)
        );
        let troubles = s.send_troubles(at(0)).expect("troubles");
        assert_eq!(troubles.len(), 1);
        assert_eq!(
            (troubles[0].template.as_deref(), troubles[0].code),
            (Some("reminder"), 132_001)
        );
        assert!(
            s.send_troubles(at(120)).expect("troubles").is_empty(),
            "older than asked"
        );
        // A later send of the same template shows the trouble has passed.
        s.conn
            .execute_batch(&format!(
                "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, sent_at, created_at, updated_at)
                   VALUES (2, 'reminder', 'day-before', {T0} + 90000, {T0}, {T0} + 90000, 'reminder', 'sent', {T0} + 100, {T0}, {T0} + 100);"
            ))
            .expect("sent");
        assert!(s.send_troubles(at(0)).expect("troubles").is_empty());
    }
}
