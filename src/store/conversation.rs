//! A patient's conversation on the desk: what they wrote and every message to them, their
//! 24-hour customer-service window, and staff messages queued as outbox rows (one per form,
//! by its `staff:<nonce>` rule), written with their audit rows in one transaction.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Duration, Utc};

use super::{Store, StoreError};
use crate::model::{Kind, OutboxState};
use crate::time::from_unix;

/// How long after a patient's last WhatsApp message free-form text may be sent (Meta's
/// customer-service window).
pub const WINDOW: Duration = Duration::hours(24);

/// The rule of a staff message's outbox row, before the form's nonce.
pub const STAFF_RULE: &str = "staff:";

/// The patient a conversation is with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationPatient {
    /// Row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub external_id: String,
    /// Name.
    pub name: String,
    /// Number (E.164); pages mask it.
    pub phone: String,
    /// Language messages are sent in.
    pub language: String,
    /// They opted out of messages (STOP).
    pub opted_out: bool,
}

/// Something the patient wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The reply's row id.
    pub id: i64,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// The API's message type (text, button, image, ...).
    pub kind: String,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// applied, needs_staff, ignored.
    pub outcome: String,
    /// Who dealt with it (`staff:<name>`), when it needed a person.
    pub handled_by: Option<String>,
    /// whatsapp or sms.
    pub channel: String,
}

/// A message to the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The outbox row's id.
    pub id: i64,
    /// When it went (or was due, failed or expired).
    pub at: DateTime<Utc>,
    /// What it is.
    pub kind: Kind,
    /// The template's config key, for a template message.
    pub template: Option<String>,
    /// The text of a free-form message (a staff answer, an acknowledgement).
    pub text: Option<String>,
    /// Where it is.
    pub state: OutboxState,
    /// whatsapp or sms.
    pub channel: String,
    /// Who wrote or chose it (`staff:<name>`, `admin:<user>`); `None`: reminderd's own.
    pub sent_by: Option<String>,
    /// The error, or why it expired or was held.
    pub detail: Option<String>,
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// From the patient.
    In(Inbound),
    /// To the patient.
    Out(Outbound),
}

impl Line {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::In(i) => i.at,
            Self::Out(o) => o.at,
        }
    }
}

/// A patient's conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Whom it is with.
    pub patient: ConversationPatient,
    /// What they wrote and what was sent to them, oldest first.
    pub lines: Vec<Line>,
    /// When their 24-hour window closes (or closed): their last WhatsApp message + 24 h;
    /// `None`: they never wrote.
    pub window_closes: Option<DateTime<Utc>>,
}

impl Conversation {
    /// Whether free-form text may be sent at `now`.
    pub fn window_open(&self, now: DateTime<Utc>) -> bool {
        window_open(self.window_closes, now)
    }
}

/// Whether a 24-hour window closing at `closes` (`None`: the patient never wrote) is open at
/// `now`: the one test for free text and documents, on the pages and in the store.
pub fn window_open(closes: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    closes.is_some_and(|end| now < end)
}

/// What staff send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffSend<'a> {
    /// Free-form text (inside the window only).
    Text(&'a str),
    /// An approved template, by config key (the "please call us" one).
    Template(&'a str),
}

/// A staff message as the desk or the CLI asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffMessage<'a> {
    /// The patient's row id.
    pub patient: i64,
    /// The form's one-time nonce (the row's rule is `staff:<nonce>`).
    pub nonce: &'a str,
    /// What to send.
    pub what: StaffSend<'a>,
    /// Who (`staff:<name>`, `admin:<user>`).
    pub actor: &'a str,
    /// The sensitive phrase staff were warned about and sent anyway, to audit.
    pub overridden: Option<&'a str>,
}

/// Why a staff message was not queued, for the desk and the CLI to word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffRefusal {
    /// No such patient.
    NoPatient,
    /// Free text outside the 24-hour window: when it closed (`None`: the patient never wrote).
    WindowClosed(Option<DateTime<Utc>>),
    /// A template to a patient who opted out of messages.
    OptedOut,
    /// The patient has no appointment to tie the message to.
    NoAppointment,
    /// The form (its nonce) already sent a message to another patient: nothing sent here.
    OtherPatient,
}

/// What a staff message's form did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffSent {
    /// A new outbox row.
    Queued(i64),
    /// This form had made its row already (a double click, a form sent again): nothing new.
    Again(i64),
    /// Not queued, and why.
    Refused(StaffRefusal),
}

impl Store {
    /// A patient's conversation at `now`: their replies and the messages to them (without
    /// reminders still to come or skipped), oldest first. `None` when there is no such patient.
    pub fn conversation(
        &self,
        patient: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Conversation>, StoreError> {
        let Some(p) = conversation_patient(&self.conn, patient)? else {
            return Ok(None);
        };
        let mut lines: Vec<Line> = self
            .conn
            .prepare_cached(
                "SELECT r.id, r.received_at, r.kind, r.text, r.outcome, r.handled_by, r.channel
                 FROM replies r
                 WHERE r.patient_id = ?1 OR (r.patient_id IS NULL AND r.from_phone = ?2)
                 ORDER BY r.received_at, r.id",
            )?
            .query_map(params![p.id, p.phone], |r| {
                Ok(Line::In(Inbound {
                    id: r.get(0)?,
                    at: from_unix(r.get(1)?),
                    kind: r.get(2)?,
                    text: r.get(3)?,
                    outcome: r.get(4)?,
                    handled_by: r.get(5)?,
                    channel: r.get(6)?,
                }))
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, coalesce(o.request_at, o.sent_at, o.failed_at,
                        CASE WHEN o.state = 'expired' THEN o.updated_at END, o.send_at) AS at,
                    o.kind, o.template, o.params, o.state, o.channel, o.sent_by,
                    coalesce(o.needs_staff, o.last_error, o.reason)
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             WHERE a.patient_id = ?1 AND o.state != 'skipped'
               AND (o.kind IN ('staff_message', 'staff_template', 'staff_document')
                    OR (o.state != 'expired' AND (o.state != 'pending' OR o.send_at <= ?2)))
             ORDER BY at, o.id",
        )?;
        let mut q = stmt.query(params![p.id, now.timestamp()])?;
        while let Some(r) = q.next()? {
            let kind: String = r.get(2)?;
            let params: Option<String> = r.get(4)?;
            lines.push(Line::Out(Outbound {
                id: r.get(0)?,
                at: from_unix(r.get(1)?),
                kind: Kind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox kind {kind:?}")))?,
                template: r.get(3)?,
                text: params.as_deref().and_then(text_of),
                state: OutboxState::parse(&r.get::<_, String>(5)?)?,
                channel: r.get(6)?,
                sent_by: r.get(7)?,
                detail: r.get(8)?,
            }));
        }
        lines.sort_by_key(Line::at);
        let window_closes = window_closes(&self.conn, &p.phone)?;
        Ok(Some(Conversation {
            patient: p,
            lines,
            window_closes,
        }))
    }

    /// The patient a reply is from: its patient, else the one patient with its number.
    pub fn reply_patient(&self, reply: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT coalesce(r.patient_id,
                    (SELECT CASE WHEN count(*) = 1 THEN max(p.id) END FROM patients p WHERE p.phone = r.from_phone))
                 FROM replies r WHERE r.id = ?1",
                [reply],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// The patients with this id from the clinic's system, with their clinic keys (one clinic's,
    /// or every clinic's when `clinic` is `None`).
    pub fn patients_by_external_id(
        &self,
        clinic: Option<&str>,
        external_id: &str,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT p.id, c.key FROM patients p JOIN clinics c ON c.id = p.clinic_id
                 WHERE p.external_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR c.key = ?2) ORDER BY c.key",
            )?
            .query_map(params![external_id, clinic], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?)
    }

    /// Queues a staff message: in one transaction, an outbox row (`staff_message` with its
    /// text, or `staff_template`) tied to the patient's next booked appointment (else their
    /// latest), due now, with its audit row (and one for an overridden warning), and the
    /// patient's replies that wait for a person marked handled. The same form (nonce) again
    /// finds its row and writes nothing. Text outside the patient's window and a template to
    /// a patient who opted out are refused.
    pub fn queue_staff_message(
        &mut self,
        m: &StaffMessage<'_>,
        now: DateTime<Utc>,
    ) -> Result<StaffSent, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let rule = format!("{STAFF_RULE}{}", m.nonce);
        match earlier_staff_row(
            &tx,
            &rule,
            &["staff_message", "staff_template", "staff_document"],
        )? {
            Some((id, patient)) if patient == m.patient => return Ok(StaffSent::Again(id)),
            Some(_) => return Ok(StaffSent::Refused(StaffRefusal::OtherPatient)),
            None => {}
        }
        let Some(p) = conversation_patient(&tx, m.patient)? else {
            return Ok(StaffSent::Refused(StaffRefusal::NoPatient));
        };
        let closes = window_closes(&tx, &p.phone)?;
        let (kind, template, params, latest_at) = match m.what {
            StaffSend::Text(text) => match closes {
                Some(end) if window_open(closes, now) => (
                    Kind::StaffMessage,
                    None,
                    Some(serde_json::json!({ "text": text }).to_string()),
                    end,
                ),
                _ => return Ok(StaffSent::Refused(StaffRefusal::WindowClosed(closes))),
            },
            StaffSend::Template(key) => {
                if p.opted_out {
                    return Ok(StaffSent::Refused(StaffRefusal::OptedOut));
                }
                (Kind::StaffTemplate, Some(key), None, now + WINDOW)
            }
        };
        let appointment: Option<(i64, i64)> = tx
            .query_row(
                "SELECT id, starts_at FROM appointments WHERE patient_id = ?1
                 ORDER BY (status = 'booked' AND starts_at >= ?2) DESC,
                          CASE WHEN status = 'booked' AND starts_at >= ?2 THEN starts_at ELSE -starts_at END, id DESC
                 LIMIT 1",
                params![p.id, now.timestamp()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((appointment, slot_start)) = appointment else {
            return Ok(StaffSent::Refused(StaffRefusal::NoAppointment));
        };
        let t = now.timestamp();
        let id = tx.insert(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, params, state,
                created_at, updated_at, recipient, channel, sent_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?5, ?5, 'patient', 'whatsapp', ?9)",
            params![
                appointment,
                kind.as_str(),
                rule,
                slot_start,
                t,
                latest_at.timestamp(),
                template,
                params,
                m.actor
            ],
        )?;
        let what = match m.what {
            StaffSend::Text(text) => text.to_string(),
            StaffSend::Template(key) => format!("template {key}"),
        };
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t, appointment, p.id, m.actor, kind.as_str(), id.to_string(), what],
        )?;
        if let Some(pattern) = m.overridden {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                 VALUES (?1, ?2, ?3, ?4, 'sensitive_warning_overridden', ?5, ?6)",
                params![t, appointment, p.id, m.actor, pattern, format!("message {id}")],
            )?;
        }
        let handled: Vec<i64> = tx
            .prepare(
                "UPDATE replies SET handled_by = ?3, handled_at = ?4
                 WHERE outcome = 'needs_staff' AND handled_by IS NULL
                   AND (patient_id = ?1 OR (patient_id IS NULL AND from_phone = ?2))
                 RETURNING id",
            )?
            .query_map(params![p.id, p.phone, m.actor, t], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for reply in handled {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                 SELECT ?1, appointment_id, coalesce(patient_id, ?4), ?2, 'reply_handled', text, 'answered in the conversation'
                 FROM replies WHERE id = ?3",
                params![t, m.actor, reply, p.id],
            )?;
        }
        tx.commit()?;
        Ok(StaffSent::Queued(id))
    }
}

/// The text of a free-form message's stored parameters (`{"text": ...}`): what a staff
/// answer or an acknowledgement says, for the page and for the send alike.
pub fn text_of(params: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(params)
        .ok()?
        .get("text")?
        .as_str()
        .map(str::to_string)
}

fn conversation_patient(
    conn: &crate::store::sql::Conn,
    id: i64,
) -> Result<Option<ConversationPatient>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT p.id, c.key, p.external_id, p.name, p.phone, p.language, p.opted_out_at IS NOT NULL
             FROM patients p JOIN clinics c ON c.id = p.clinic_id WHERE p.id = ?1",
            [id],
            |r| {
                Ok(ConversationPatient {
                    id: r.get(0)?,
                    clinic: r.get(1)?,
                    external_id: r.get(2)?,
                    name: r.get(3)?,
                    phone: r.get(4)?,
                    language: r.get(5)?,
                    opted_out: r.get(6)?,
                })
            },
        )
        .optional()?)
}

/// When the window with this number closes: its last WhatsApp message + [`WINDOW`]. The
/// window is the number's (Meta counts it per WhatsApp user), whichever patient it was taken for.
/// A `system` row (WhatsApp reporting a changed number) is not the patient writing.
pub(super) fn window_closes(
    conn: &crate::store::sql::Conn,
    phone: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let last: Option<i64> = conn.query_row(
        "SELECT max(received_at) FROM replies WHERE from_phone = ?1 AND channel = 'whatsapp' AND kind != 'system'",
        [phone],
        |r| r.get(0),
    )?;
    Ok(last.map(|t| from_unix(t) + WINDOW))
}

/// The staff row a form's `rule` made before (one of `kinds`), with the patient it went to:
/// the same form for the same patient is a double click; for another, a form that is not
/// theirs.
pub(super) fn earlier_staff_row(
    tx: &crate::store::sql::Conn,
    rule: &str,
    kinds: &[&str],
) -> Result<Option<(i64, i64)>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT o.id, a.patient_id, o.kind FROM outbox o JOIN appointments a ON a.id = o.appointment_id
         WHERE o.rule = ?1 AND o.recipient = 'patient' AND o.channel = 'whatsapp'
           AND o.kind IN ('staff_message', 'staff_template', 'staff_document')",
    )?;
    let rows: Vec<(i64, i64, String)> = stmt
        .query_map([rule], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows
        .into_iter()
        .find(|(_, _, k)| kinds.contains(&k.as_str()))
        .map(|(id, patient, _)| (id, patient)))
}

#[cfg(test)]
mod tests;
