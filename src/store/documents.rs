//! Documents staff send a patient from the clinic's library: one `staff_document` outbox row
//! per form (rule `staff:<nonce>`), written with its audit row in one transaction, and only
//! while the patient's 24-hour window is open (their last WhatsApp message + 24 hours).

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::{Kind, OutboxState};
use crate::time::from_unix;

use super::conversation::{STAFF_RULE, window_closes};

/// A patient as the documents page needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTarget {
    /// The patient's row id.
    pub patient_id: i64,
    /// Their name.
    pub name: String,
    /// Their clinic's key.
    pub clinic: String,
    /// When their 24-hour window closes (`None`: they never wrote on WhatsApp).
    pub window_end: Option<DateTime<Utc>>,
    /// They asked for no more messages.
    pub opted_out: bool,
}

impl DocumentTarget {
    /// Whether a document may go at `now`.
    pub fn window_open(&self, now: DateTime<Utc>) -> bool {
        super::conversation::window_open(self.window_end, now)
    }
}

/// A document sent (or being sent) to a patient, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    /// Its outbox row.
    pub id: i64,
    /// The library key (`consent`).
    pub document: String,
    /// The caption, if staff wrote one.
    pub caption: Option<String>,
    /// `staff:<name>`.
    pub sent_by: Option<String>,
    /// When staff sent it.
    pub created_at: DateTime<Utc>,
    /// Where it is.
    pub state: OutboxState,
    /// What a person must do, the last error, or why it was not sent.
    pub detail: Option<String>,
}

/// What a send of the documents form did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentQueued {
    /// A new message: its outbox row.
    New(i64),
    /// This form had made its message already (a double click, a resend): nothing new.
    Again(i64),
    /// The patient's window is closed (or they never wrote): nothing sent.
    WindowClosed,
    /// The patient asked for no more messages.
    OptedOut,
    /// No such patient, or no appointment to file the message under.
    NoPatient,
    /// The form (its nonce) already sent a document to another patient: nothing sent here.
    OtherPatient,
}

impl Store {
    /// The patient `id` for the documents page.
    pub fn document_target(&self, id: i64) -> Result<Option<DocumentTarget>, StoreError> {
        target(&self.conn, id)
    }

    /// The documents sent to patient `id`, newest first.
    pub fn documents_sent(&self, id: i64) -> Result<Vec<SentDocument>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, o.params, o.sent_by, o.created_at, o.state,
                    coalesce(o.needs_staff, o.last_error, o.reason)
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             WHERE a.patient_id = ?1 AND o.kind = 'staff_document'
             ORDER BY o.created_at DESC, o.id DESC",
        )?;
        let mut q = stmt.query([id])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let params: Option<String> = r.get(1)?;
            let v: serde_json::Value = params
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            let state: String = r.get(4)?;
            out.push(SentDocument {
                id: r.get(0)?,
                document: v["document"].as_str().unwrap_or_default().to_string(),
                caption: v["caption"].as_str().map(str::to_string),
                sent_by: r.get(2)?,
                created_at: from_unix(r.get(3)?),
                state: OutboxState::parse(&state).unwrap_or(OutboxState::Unknown),
                detail: r.get(5)?,
            });
        }
        Ok(out)
    }

    /// Queues document `key` (with `caption`) for patient `id` from the form `nonce`, by
    /// `actor`, with its audit row: once per form, and only inside the patient's window.
    pub fn queue_document(
        &mut self,
        id: i64,
        key: &str,
        caption: Option<&str>,
        nonce: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<DocumentQueued, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let rule = format!("{STAFF_RULE}{nonce}");
        match super::conversation::earlier_staff_row(&tx, &rule, &["staff_document"])? {
            Some((row, patient)) if patient == id => return Ok(DocumentQueued::Again(row)),
            Some(_) => return Ok(DocumentQueued::OtherPatient),
            None => {}
        }
        let Some(t) = target(&tx, id)? else {
            return Ok(DocumentQueued::NoPatient);
        };
        if t.opted_out {
            return Ok(DocumentQueued::OptedOut);
        }
        let Some(end) = t.window_end.filter(|_| t.window_open(now)) else {
            return Ok(DocumentQueued::WindowClosed);
        };
        // Filed under the appointment the patient last wrote about, else their nearest one.
        let appointment: Option<(i64, i64)> = tx
            .query_row(
                "SELECT a.id, a.starts_at FROM appointments a
                 WHERE a.patient_id = ?1
                 ORDER BY a.id = (SELECT r.appointment_id FROM replies r WHERE r.patient_id = ?1
                                    AND r.appointment_id IS NOT NULL
                                  ORDER BY r.received_at DESC LIMIT 1) DESC,
                          a.starts_at < ?2, abs(a.starts_at - ?2)
                 LIMIT 1",
                params![id, now.timestamp()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((appointment, starts)) = appointment else {
            return Ok(DocumentQueued::NoPatient);
        };
        let caption = caption.map(str::trim).filter(|c| !c.is_empty());
        let params_json = serde_json::json!({ "document": key, "caption": caption }).to_string();
        let row = tx.insert(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state,
                created_at, updated_at, recipient, channel, sent_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?5, ?5, 'patient', 'whatsapp', ?8)",
            params![
                appointment,
                Kind::StaffDocument.as_str(),
                rule,
                starts,
                now.timestamp(),
                end.timestamp(),
                params_json,
                actor
            ],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, 'send_document', ?5, ?6)",
            params![
                now.timestamp(),
                appointment,
                id,
                actor,
                key,
                format!("outbox {row}")
            ],
        )?;
        tx.commit()?;
        Ok(DocumentQueued::New(row))
    }
}

fn target(conn: &crate::store::sql::Conn, id: i64) -> Result<Option<DocumentTarget>, StoreError> {
    let found = conn
        .query_row(
            "SELECT p.id, p.name, c.key, p.opted_out_at IS NOT NULL, p.phone
             FROM patients p JOIN clinics c ON c.id = p.clinic_id WHERE p.id = ?1",
            [id],
            |r| {
                Ok((
                    DocumentTarget {
                        patient_id: r.get(0)?,
                        name: r.get(1)?,
                        clinic: r.get(2)?,
                        opted_out: r.get(3)?,
                        window_end: None,
                    },
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((mut t, phone)) = found else {
        return Ok(None);
    };
    // The same window as the conversation's: the number's last WhatsApp message.
    t.window_end = window_closes(conn, &phone)?;
    Ok(Some(t))
}
