//! Feedback after the visit: the visits that may owe a request, the request a reply answers,
//! and a score recorded with its reply and thanks in one transaction.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Duration, Utc};

use super::outbox::{REACH_COLUMNS, reach};
use super::{Store, StoreError};
use crate::model::{Channel, Recipient, Status};
use crate::phone::E164;
use crate::plan::Visit;
use crate::replies::{Candidate, FeedbackRequest};

/// The longest appointment a visit's start is looked back for, beyond its end.
const LONGEST_VISIT: Duration = Duration::hours(24);

/// The automated messages that make an earlier feedback request no longer the newest: a
/// bare digit after a reminder answers the reminder.
const AUTOMATED: &str = "'reminder', 'manual_reminder', 'booking_confirmation', 'waitlist_offer', 'reschedule_offer', 'feedback'";

const REQUEST_SQL: &str = "SELECT o.id, a.id, a.external_id, a.patient_id, c.key, a.starts_at, a.status,
        p.name, p.language, p.phone, o.slot_start,
        CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END, o.sent_at,
        (SELECT f.score FROM feedback f WHERE f.appointment_id = a.id)
     FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN patients p ON p.id = a.patient_id
     JOIN clinics c ON c.id = a.clinic_id";

/// A score to record: the reply that carried it and the request it answers.
#[derive(Debug, Clone)]
pub struct ScoreRecord<'a> {
    /// The webhook event it came in (`None`: an SMS).
    pub event_id: Option<i64>,
    /// The provider's message id.
    pub message_id: &'a str,
    /// The sender.
    pub from: &'a E164,
    /// The message type (`button`, `text`).
    pub kind: &'a str,
    /// What was tapped or typed, as shown to staff.
    pub text: Option<&'a str>,
    /// The request answered.
    pub request: &'a FeedbackRequest,
    /// The score sent.
    pub score: u8,
    /// The thanks to queue (`None`: the clinic sends none).
    pub ack: Option<String>,
    /// How it came; the thanks goes back the same way.
    pub channel: Channel,
}

/// What recording a score did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreStored {
    /// The visit's first score.
    New,
    /// The visit had a score: it stays, the reply is recorded as a repeat.
    Repeat,
    /// This message was recorded before.
    Replayed,
}

impl Store {
    /// Visits that ended in `(ended_after, now]`, not cancelled or missed, whose patient's data
    /// is not erased: those a feedback rule may owe a request.
    pub fn feedback_visits(
        &self,
        ended_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Visit>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT a.id, c.key, a.starts_at, a.duration_min, a.status, p.opted_out_at IS NOT NULL, {REACH_COLUMNS}
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
             WHERE a.status IN ('booked', 'completed') AND a.starts_at > ?1 AND a.starts_at <= ?2
               AND p.erased_at IS NULL"
        ))?;
        let since = ended_after - LONGEST_VISIT;
        let mut rows = stmt.query(params![since.timestamp(), now.timestamp()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let v = Visit {
                id: r.get(0)?,
                clinic: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                duration_min: r.get(3)?,
                status: Status::parse(&r.get::<_, String>(4)?)?,
                opted_out: r.get(5)?,
                reach: reach(&r, 6)?,
            };
            if v.ends_at() > ended_after && v.ends_at() <= now {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// The feedback request `outbox_id` (a score button names it), if it is one.
    pub fn feedback_request(&self, outbox_id: i64) -> Result<Option<FeedbackRequest>, StoreError> {
        self.request_where("o.id = ?1 AND o.kind = 'feedback'", &outbox_id, None)
    }

    /// The feedback request with this provider message id (the message replied to), if any.
    pub fn feedback_request_by_wamid(
        &self,
        wamid: &str,
    ) -> Result<Option<FeedbackRequest>, StoreError> {
        self.request_where("o.wamid = ?1 AND o.kind = 'feedback'", &wamid, None)
    }

    /// The newest feedback request that went out to `to`, and whether it is still the newest
    /// automated message that number got.
    pub fn latest_feedback_request(
        &self,
        to: &E164,
    ) -> Result<Option<FeedbackRequest>, StoreError> {
        self.request_where(
            "o.kind = 'feedback' AND o.sent_at IS NOT NULL
               AND (CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END) = ?1
               AND (p.phone = ?1 OR p.contact_phone = ?1)
             ORDER BY o.sent_at DESC, o.id DESC LIMIT 1",
            &to.as_str(),
            Some(to),
        )
    }

    fn request_where(
        &self,
        sql_where: &str,
        key: &dyn crate::store::sql::ToValue,
        newest_for: Option<&E164>,
    ) -> Result<Option<FeedbackRequest>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{REQUEST_SQL} WHERE {sql_where}"))?;
        let Some(mut request) = stmt
            .query_row([key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Candidate {
                        appointment_id: r.get(1)?,
                        external_id: r.get(2)?,
                        patient_id: r.get(3)?,
                        clinic: r.get(4)?,
                        starts_at: crate::time::from_unix(r.get(5)?),
                        status: Status::Booked,
                        message_slot: Some(crate::time::from_unix(r.get(10)?)),
                        outbox_id: Some(r.get(0)?),
                        patient_name: r.get(7)?,
                        language: r.get(8)?,
                        phone: r.get(9)?,
                    },
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                    r.get::<_, Option<u8>>(13)?,
                ))
            })
            .optional()?
            .map(|(outbox_id, mut appointment, status, to, sent, stored)| {
                Status::parse(&status).map(|s| {
                    appointment.status = s;
                    FeedbackRequest {
                        outbox_id,
                        appointment,
                        sent_to: to.unwrap_or_default(),
                        sent_at: sent.map(crate::time::from_unix),
                        newest: false,
                        stored,
                    }
                })
            })
            .transpose()?
        else {
            return Ok(None);
        };
        request.newest = match (newest_for, request.sent_at) {
            (Some(to), Some(sent)) => !self.conn.query_row(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM outbox o JOIN appointments a ON a.id = o.appointment_id
                       JOIN patients p ON p.id = a.patient_id
                     WHERE o.kind IN ({AUTOMATED}) AND o.id != ?3 AND o.sent_at >= ?2
                       AND (CASE o.recipient WHEN 'contact' THEN p.contact_phone ELSE p.phone END) = ?1
                       AND (p.phone = ?1 OR p.contact_phone = ?1))"
                ),
                params![to.as_str(), sent.timestamp(), request.outbox_id],
                |r| r.get::<_, bool>(0),
            )?,
            _ => false,
        };
        Ok(Some(request))
    }

    /// Records a score: the reply (intent `feedback`), the visit's score if it has none yet
    /// (the first score counts), and the thanks, in one transaction. A message recorded
    /// before changes nothing.
    pub fn commit_score(
        &mut self,
        rec: &ScoreRecord<'_>,
        now: DateTime<Utc>,
    ) -> Result<ScoreStored, StoreError> {
        let t = now.timestamp();
        let a = &rec.request.appointment;
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let stored: Option<u8> = tx
            .prepare_cached("SELECT score FROM feedback WHERE appointment_id = ?1")?
            .query_row([a.appointment_id], |r| r.get(0))
            .optional()?;
        let (outcome, reason) = match stored {
            None => ("applied", None),
            Some(s) => (
                "ignored",
                Some(format!(
                    "the visit was already scored {s} of 5; the first score counts"
                )),
            ),
        };
        let inserted = tx.insert_if("INSERT INTO replies (message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text,
                intent, outcome, reason, received_at, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'feedback', ?9, ?10, ?11, ?12)
             ON CONFLICT (message_id) DO NOTHING",
            params![
                rec.message_id,
                rec.event_id,
                rec.from.as_str(),
                a.patient_id,
                a.appointment_id,
                rec.request.outbox_id,
                rec.kind,
                rec.text,
                outcome,
                reason,
                t,
                rec.channel.as_str()
            ],
        )?;
        let Some(reply_id) = inserted else {
            return Ok(ScoreStored::Replayed);
        };
        if stored.is_none() {
            tx.prepare_cached("INSERT INTO feedback (appointment_id, patient_id, score, outbox_id, reply_id, channel, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(
                params![
                    a.appointment_id,
                    a.patient_id,
                    rec.score,
                    rec.request.outbox_id,
                    reply_id,
                    rec.channel.as_str(),
                    t
                ],
            )?;
        }
        if let Some(text) = &rec.ack {
            let to = if rec.from.as_str() == a.phone {
                Recipient::Patient
            } else {
                Recipient::Contact
            };
            super::inbound::queue_ack_to(
                &tx,
                (a.appointment_id, reply_id, a.starts_at),
                text,
                (to, rec.channel),
                t,
                t + 24 * 3600,
            )?;
        }
        tx.commit()?;
        Ok(if stored.is_none() {
            ScoreStored::New
        } else {
            ScoreStored::Repeat
        })
    }

    /// The score a visit was given, if any.
    pub fn feedback_score(&self, appointment_id: i64) -> Result<Option<u8>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT score FROM feedback WHERE appointment_id = ?1")?
            .query_row([appointment_id], |r| r.get(0))
            .optional()?)
    }
}
