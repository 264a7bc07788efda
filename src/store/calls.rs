//! Calls staff make from the follow-up list, replies staff settle by hand (a revealed number,
//! an ambiguous answer assigned to its appointment), and the facts behind the desk's
//! "reminders are held" banner.
//!
//! A call is an audit row (`action = 'called'`, the outcome in `new_value`, the note in
//! `reason`), so the day board's "last note" and the audit trail see it with no table of its
//! own; `Store::follow_ups` reads the outcomes to decide what a call settled.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

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
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
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
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
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
            (),
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
                waiting_reply,
            )
            .optional()?
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
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        // A reply that needed a person, and who dealt with it if anyone did.
        let found: Option<ReadReply> = tx
            .query_row(
                "SELECT id, from_phone, intent, text, received_at, handled_by FROM replies
                 WHERE id = ?1 AND outcome = 'needs_staff'",
                [reply],
                |r| Ok((waiting_reply(r)?, r.get(5)?)),
            )
            .optional()?;
        let Some((waiting, handled_by)) = found else {
            return Ok(ReplyApplied::NotWaiting);
        };
        if let Some(by) = handled_by {
            return Ok(ReplyApplied::Already(by));
        }
        let WaitingReply {
            from,
            intent,
            text,
            received_at,
            ..
        } = waiting?;
        let received = received_at.timestamp();
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
                (),
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
                    (SELECT e.last_error FROM outbox e WHERE e.template IS NOT DISTINCT FROM o.template AND e.last_error_code = o.last_error_code
                       AND e.state IN ('pending', 'failed') ORDER BY e.updated_at DESC, e.id DESC LIMIT 1)
             FROM outbox o
             WHERE o.state IN ('pending', 'failed') AND o.send_at >= ?2 AND o.last_error_code IS NOT NULL AND o.updated_at >= ?1
               AND NOT EXISTS (SELECT 1 FROM outbox s WHERE s.state IN ('sent', 'delivered', 'read') AND s.send_at >= ?2
                               AND s.template IS NOT DISTINCT FROM o.template AND s.sent_at > o.updated_at)
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

/// A practice-system update staff must make by hand, with the appointment it is about as the
/// follow-up card names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeUpdate {
    /// The update (`source_updates` row).
    pub update: super::SourceUpdate,
    /// The patient's name.
    pub patient_name: String,
    /// The appointment's start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Who it is with.
    pub provider: Option<String>,
}

impl Store {
    /// The practice-system updates that fell to staff (write-back off, refused or failing),
    /// oldest first, each with its appointment's patient, time and provider.
    pub fn practice_updates(&self) -> Result<Vec<PracticeUpdate>, StoreError> {
        let updates = self.source_updates_for_staff()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.name, a.starts_at, a.provider FROM appointments a JOIN patients p ON p.id = a.patient_id
             WHERE a.id = ?1",
        )?;
        let mut out = Vec::with_capacity(updates.len());
        for update in updates {
            let (patient_name, starts_at, provider) = stmt
                .query_row([update.appointment_id], |r| {
                    Ok((r.get(0)?, crate::time::from_unix(r.get(1)?), r.get(2)?))
                })?;
            out.push(PracticeUpdate {
                update,
                patient_name,
                starts_at,
                provider,
            });
        }
        Ok(out)
    }
}

/// A reply read with who handled it (`None`: nobody yet).
type ReadReply = (Result<WaitingReply, StoreError>, Option<String>);

/// A reply row's `id, from_phone, intent, text, received_at` (the outer `Result` is the
/// row's, the inner one an intent that is not ours).
fn waiting_reply(
    r: &crate::store::sql::Row<'_>,
) -> crate::store::sql::Result<Result<WaitingReply, StoreError>> {
    let intent: String = r.get(2)?;
    let (id, from, text, at) = (r.get(0)?, r.get(1)?, r.get(3)?, r.get(4)?);
    Ok(Intent::parse(&intent)
        .map_err(StoreError::from)
        .map(|intent| WaitingReply {
            id,
            from,
            intent,
            text,
            received_at: crate::time::from_unix(at),
        }))
}

/// Marks every reply waiting on `appointment` handled by `actor`, each with its audit row.
fn handle_waiting_replies(
    tx: &crate::store::sql::Transaction<'_>,
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
mod tests;
