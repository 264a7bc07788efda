//! What arrives from WhatsApp: webhook events, delivery statuses and patients' replies.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::{OutboxState, Status};
use crate::phone::E164;

/// How far a stored or reported state has come (`OutboxState::rank`); `None` for text that
/// is no state a status moves.
fn status_rank(state: &str) -> Option<u8> {
    crate::model::OutboxState::parse(state).ok()?.rank()
}

/// A delivery status as the store records it: the message, how far it got, and for a failure
/// what went wrong and why staff must act (decided by `dispatch`, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's wamid.
    pub wamid: String,
    /// The outbox id echoed back as callback data, if any.
    pub outbox_id: Option<i64>,
    /// Where the status says the message is (`sent`, `delivered`, `read`, `failed`).
    pub state: OutboxState,
    /// The API's error code, for a failure.
    pub error_code: Option<i64>,
    /// The API's error, for a failure.
    pub error: Option<String>,
    /// What staff must do, if anything.
    pub needs_staff: Option<String>,
    /// For a WhatsApp failure SMS can mend: the SMS to write with it (decided by `dispatch`).
    pub fallback: Option<super::Fallback>,
    /// For a failure no SMS mends that still means no more WhatsApp (the patient blocked the
    /// clinic): the number is off WhatsApp until then (decided by `dispatch`).
    pub off_whatsapp_until: Option<DateTime<Utc>>,
}

/// What a status update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusApplied {
    /// The row moved forward to this state.
    Moved(String),
    /// The row is already at or past it (duplicate or out of order).
    Stale,
    /// No outbox row has this wamid or callback id (not our message).
    Unknown,
}

/// A reply to record, with what was decided about it.
#[derive(Debug, Clone)]
pub struct ReplyRecord<'a> {
    /// The webhook event it came in.
    pub event_id: i64,
    /// The API's message id.
    pub message_id: &'a str,
    /// The sender's number (`None` for a sender known only by username).
    pub from: Option<&'a E164>,
    /// The API's message type.
    pub kind: &'a str,
    /// What was typed or tapped.
    pub text: Option<&'a str>,
    /// The decision.
    pub resolution: &'a crate::replies::Resolution,
    /// Patient rows with the sender's number (STOP and START apply to all of them).
    pub patients: &'a [i64],
    /// The acknowledgement to queue, if any.
    pub ack: Option<String>,
    /// The file it carries (its caption is `text`).
    pub media: Option<MediaRecord<'a>>,
    /// How it came; the acknowledgement goes back the same way.
    pub channel: crate::model::Channel,
    /// The sender is the patient's caregiver, not the patient.
    pub from_contact: bool,
}

/// The file of a reply as stored: WhatsApp's media id and what the webhook said of the file,
/// never its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRecord<'a> {
    /// The Cloud API's media id.
    pub media_id: &'a str,
    /// The type the webhook gave.
    pub mime_type: Option<&'a str>,
    /// The SHA-256 the webhook gave, to check the download against.
    pub sha256: Option<&'a str>,
    /// A document's file name.
    pub filename: Option<&'a str>,
    /// A recorded voice note.
    pub voice: bool,
    /// The business number it was sent to (the webhook's `metadata.phone_number_id`).
    pub phone_number_id: Option<&'a str>,
}

/// A reply's file as the desk fetches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMedia {
    /// The reply's row id.
    pub reply_id: i64,
    /// The API's message type (`image`, `audio`, `video`, `document`, `sticker`).
    pub kind: String,
    /// The Cloud API's media id.
    pub media_id: String,
    /// The type the webhook gave.
    pub mime_type: Option<String>,
    /// The SHA-256 the webhook gave.
    pub sha256: Option<String>,
    /// A document's file name.
    pub filename: Option<String>,
    /// The business number it was sent to, when known: its token fetches it.
    pub phone_number_id: Option<String>,
}

/// A reply's file as a page shows it (with [`super::ReplyView`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplyMedia {
    /// The API's message type (`image`, `audio`, `video`, `document`, `sticker`).
    pub kind: String,
    /// The type the webhook gave.
    pub mime_type: Option<String>,
    /// A document's file name.
    pub filename: Option<String>,
    /// What the patient wrote with it.
    pub caption: Option<String>,
    /// A recorded voice note.
    pub voice: bool,
}

/// What storing a webhook body found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stored event (the first copy, for a replay).
    pub id: i64,
    /// The same bytes were stored before.
    pub replay: bool,
    /// That earlier copy was processed to the end (a replay of one that was not, after a
    /// crash or a database error, must be applied again).
    pub processed: bool,
}

const CANDIDATE_SQL: &str = "SELECT a.id, a.external_id, a.patient_id, c.key, a.starts_at, a.status, p.name, p.language, p.phone
     FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id";

impl Store {
    /// Stores a webhook body as received (text, or a BLOB when it is not UTF-8), before
    /// anything is done with it; a body already stored is counted as a replay instead.
    pub fn record_event(
        &mut self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        self.record_event_from("whatsapp", body, now)
    }

    /// As [`Store::record_event`], for a body from `source` (`twilio`, `msg91`).
    pub fn record_event_from(
        &mut self,
        source: &str,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        use sha2::Digest as _;
        let hash = format!("{:x}", sha2::Sha256::digest(body));
        // Bound as the caller's bytes (no copy of a body that may be 3 MB), typed as text
        // when it is text.
        let value = if std::str::from_utf8(body).is_ok() {
            crate::store::sql::ValueRef::Text(body)
        } else {
            crate::store::sql::ValueRef::Blob(body)
        };
        let (id, processed, replays): (i64, Option<i64>, i64) = self.conn.prepare_cached("INSERT INTO inbound_events (received_at, body, body_sha256, source) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (body_sha256) DO UPDATE
                 SET replays = inbound_events.replays + 1, last_replay_at = excluded.received_at
             RETURNING id, processed_at, replays")?
            .query_row(
            params![now.timestamp(), value, hash, source],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(RecordedEvent {
            id,
            replay: replays > 0,
            processed: processed.is_some(),
        })
    }

    /// Marks a stored event processed, with how it went.
    pub fn finish_event(
        &mut self,
        id: i64,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE inbound_events SET processed_at = ?2, outcome = ?3 WHERE id = ?1",
            )?
            .execute(params![id, now.timestamp(), outcome])?;
        Ok(())
    }

    /// Moves an outbox row forward by a delivery status, found by wamid or else by the
    /// callback data (the outbox id), which also reconciles an `unknown` send.
    pub fn apply_status(
        &mut self,
        d: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<StatusApplied, StoreError> {
        let Some(new_rank) = d.state.rank().filter(|r| *r > 0) else {
            return Ok(StatusApplied::Stale);
        };
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let by_wamid: Option<(i64, String, String)> = tx
            .prepare_cached("SELECT id, state, kind FROM outbox WHERE wamid = ?1")?
            .query_row([&d.wamid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let row = match by_wamid {
            Some(r) => Some(r),
            None => match d.outbox_id {
                Some(id) => tx
                    .prepare_cached("SELECT id, state, kind FROM outbox WHERE id = ?1 AND (wamid IS NULL OR wamid = ?2)")?
            .query_row(
                        params![id, d.wamid],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
                None => None,
            },
        };
        let Some((id, state, kind)) = row else {
            return Ok(StatusApplied::Unknown);
        };
        if status_rank(&state).is_none_or(|r| r >= new_rank) {
            return Ok(StatusApplied::Stale);
        }
        let t = now.timestamp();
        match d.state {
            OutboxState::Failed => {
                // An acknowledgement that failed needs no call: the patient wrote to us.
                let staff = d.needs_staff.as_deref().filter(|_| kind != "reply_ack");
                tx.prepare_cached("UPDATE outbox SET state = 'failed', wamid = coalesce(wamid, ?2), failed_at = ?3, last_error_code = ?4,
                        last_error = ?5, needs_staff = coalesce(?6, needs_staff), updated_at = ?3 WHERE id = ?1")?
            .execute(
                    params![id, d.wamid, t, d.error_code, d.error, staff],
                )?;
                let why = format!(
                    "({}) {}",
                    d.error_code.unwrap_or_default(),
                    d.error.as_deref().unwrap_or("failed")
                );
                if let Some(fallback) = &d.fallback {
                    super::outbox::write_fallback(&tx, id, fallback, &why, now)?;
                } else if let Some(until) = d.off_whatsapp_until {
                    super::outbox::record_off_whatsapp(&tx, id, until, &why, now)?;
                }
            }
            s => {
                // The sent time is set by any of them (a "delivered" may come first); the
                // later ones set their own time too.
                let also = match s {
                    OutboxState::Sent => "",
                    OutboxState::Delivered => "delivered_at = coalesce(delivered_at, ?4),",
                    _ => "read_at = coalesce(read_at, ?4),",
                };
                tx.execute(
                    &format!(
                        "UPDATE outbox SET state = ?2, wamid = coalesce(wamid, ?3), {also}
                            sent_at = coalesce(sent_at, ?4), needs_staff = NULL, updated_at = ?4 WHERE id = ?1"
                    ),
                    params![id, s.as_str(), d.wamid, t],
                )?;
            }
        }
        tx.commit()?;
        Ok(StatusApplied::Moved(d.state.as_str().to_string()))
    }

    /// Everything a reply from `from` could refer to.
    pub fn reply_candidates(
        &self,
        from: Option<&E164>,
        button_outbox: Option<i64>,
        context_wamid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<crate::replies::Found, StoreError> {
        // A sender without a number matches no patient.
        let phone = from.map_or("", E164::as_str);
        let mut found = crate::replies::Found::default();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM patients WHERE phone = ?1 OR contact_phone = ?1 ORDER BY id",
            )?;
            found.patients = stmt
                .query_map([&phone], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
        }
        let by_outbox = |sql_where: &str,
                         key: &dyn crate::store::sql::ToValue|
         -> Result<Option<crate::replies::Candidate>, StoreError> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT a.id, a.external_id, a.patient_id, c.key, a.starts_at, a.status, p.name, p.language, p.phone, o.slot_start, o.id
                 FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN patients p ON p.id = a.patient_id
                 JOIN clinics c ON c.id = a.clinic_id WHERE {sql_where}"
            ))?;
            let mut q = stmt.query([key])?;
            match q.next()? {
                Some(r) => {
                    let mut c = candidate(&r)?;
                    c.message_slot = Some(crate::time::from_unix(r.get(9)?));
                    c.outbox_id = Some(r.get(10)?);
                    Ok(Some(c))
                }
                None => Ok(None),
            }
        };
        if let Some(id) = button_outbox {
            found.by_button = by_outbox("o.id = ?1", &id)?;
        }
        if let Some(w) = context_wamid {
            found.by_context = by_outbox("o.wamid = ?1", &w)?;
        }
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{CANDIDATE_SQL} WHERE (p.phone = ?1 OR p.contact_phone = ?1) AND a.status = 'booked' AND a.starts_at > ?2
                   AND EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind IN ('reminder', 'manual_reminder')
                               AND o.state IN ('sent', 'delivered', 'read'))
                 ORDER BY a.starts_at"
            ))?;
            let mut q = stmt.query(params![phone, now.timestamp()])?;
            while let Some(r) = q.next()? {
                found.upcoming_reminded.push(candidate(&r)?);
            }
        }
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{CANDIDATE_SQL} WHERE p.phone = ?1 OR p.contact_phone = ?1 ORDER BY abs(a.starts_at - ?2) LIMIT 1"
            ))?;
            let mut q = stmt.query(params![phone, now.timestamp()])?;
            if let Some(r) = q.next()? {
                found.latest = Some(candidate(&r)?);
            }
        }
        Ok(found)
    }

    /// Records a reply and applies it, in one transaction. Returns `false` (and changes
    /// nothing) if a reply with this message id was recorded before: Meta retries webhooks.
    pub fn commit_reply(
        &mut self,
        rec: &ReplyRecord<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use crate::replies::{Intent, Outcome as R};
        let res = rec.resolution;
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let appointment = res.appointment.as_ref();
        let inserted = tx.insert_if("INSERT INTO replies (message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text,
                intent, outcome, reason, received_at, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (message_id) DO NOTHING",
            params![
                rec.message_id,
                rec.event_id,
                rec.from.map_or("+", E164::as_str),
                appointment.map(|a| a.patient_id).or_else(|| rec.patients.first().copied()),
                appointment.map(|a| a.appointment_id),
                appointment.and_then(|a| a.outbox_id),
                rec.kind,
                rec.text,
                res.intent.as_str(),
                res.outcome.as_str(),
                res.reason,
                t,
                rec.channel.as_str()
            ],
        )?;
        let Some(reply_id) = inserted else {
            return Ok(false);
        };
        if let Some(m) = &rec.media {
            tx.prepare_cached(
                "INSERT INTO reply_media (reply_id, media_id, mime_type, sha256, filename, voice, phone_number_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                reply_id,
                m.media_id,
                m.mime_type,
                m.sha256,
                m.filename,
                m.voice,
                m.phone_number_id
            ])?;
        }
        if res.outcome == R::Applied {
            // Opting out or in concerns the patient, not one appointment.
            let audit = |patient_id: i64, action: &str, old: Option<String>, new: &str| {
                tx.prepare_cached("INSERT INTO audit_log (at, patient_id, actor, action, old_value, new_value, reason)
                     VALUES (?1, ?2, 'patient', ?3, ?4, ?5, ?6)")?
            .execute(
                    params![t, patient_id, action, old, new, format!("reply {}", rec.message_id)],
                )
            };
            // Where a consent answer came from, as `consents.source` records it.
            let source = format!("reply {}", rec.message_id);
            match (res.intent, appointment) {
                (Intent::Confirm | Intent::Cancel | Intent::Reschedule, Some(a)) => {
                    apply_answer(
                        &tx,
                        res.intent,
                        (a.appointment_id, a.patient_id),
                        rec.text,
                        ("patient", &format!("reply {}", rec.message_id)),
                        t,
                    )?;
                }
                // By text, STOP and START are about texts to this number: carriers and
                // providers keep the same list, and WhatsApp messages are not concerned.
                (Intent::Stop, _) if rec.channel == crate::model::Channel::Sms => {
                    let from = rec.from.map_or("+", E164::as_str);
                    opt_out_sms(&tx, from, "reply", t)?;
                    for p in rec.patients {
                        audit(*p, "sms_opt_out", None, "opted_out")?;
                        super::privacy::consent_row(&tx, *p, "sms", false, &source, t)?;
                    }
                }
                (Intent::Start, _) if rec.channel == crate::model::Channel::Sms => {
                    let from = rec.from.map_or("+", E164::as_str);
                    opt_in_sms(&tx, from, t)?;
                    for p in rec.patients {
                        audit(*p, "sms_opt_in", Some("opted_out".into()), "opted_in")?;
                        super::privacy::consent_row(&tx, *p, "sms", true, &source, t)?;
                    }
                }
                (Intent::Stop, _) => {
                    for p in rec.patients {
                        opt_out_whatsapp(&tx, *p, t)?;
                        audit(*p, "opt_out", None, "opted_out")?;
                        super::privacy::consent_row(&tx, *p, "whatsapp", false, &source, t)?;
                    }
                }
                (Intent::Start, _) => {
                    for p in rec.patients {
                        opt_in_whatsapp(&tx, *p, t)?;
                        audit(*p, "opt_in", Some("opted_out".into()), "opted_in")?;
                        super::privacy::consent_row(&tx, *p, "whatsapp", true, &source, t)?;
                    }
                }
                _ => {}
            }
            if let (Some(text), Some(a)) = (&rec.ack, appointment) {
                // Free-form messages are allowed for 24 hours after the patient's.
                let recipient = if rec.from_contact {
                    crate::model::Recipient::Contact
                } else {
                    crate::model::Recipient::Patient
                };
                queue_ack_to(
                    &tx,
                    (a.appointment_id, reply_id, a.starts_at),
                    text,
                    (recipient, rec.channel),
                    t,
                    t + 24 * 3600,
                )?;
            }
        }
        tx.commit()?;
        Ok(true)
    }
}

impl Store {
    /// The file of reply `reply_id`, if it has one.
    pub fn reply_media(&self, reply_id: i64) -> Result<Option<StoredMedia>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT r.id, r.kind, m.media_id, m.mime_type, m.sha256, m.filename, m.phone_number_id
                 FROM reply_media m JOIN replies r ON r.id = m.reply_id WHERE m.reply_id = ?1",
            )?
            .query_row([reply_id], |r| {
                Ok(StoredMedia {
                    reply_id: r.get(0)?,
                    kind: r.get(1)?,
                    media_id: r.get(2)?,
                    mime_type: r.get(3)?,
                    sha256: r.get(4)?,
                    filename: r.get(5)?,
                    phone_number_id: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Records that `actor` was shown the file of reply `reply_id` (patient content), under
    /// the reply's appointment and patient.
    pub fn audit_media_view(
        &mut self,
        actor: &str,
        reply_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value)
             SELECT ?1, appointment_id, patient_id, ?2, 'view_media', 'reply ' || id FROM replies WHERE id = ?3")?
            .execute(
            params![now.timestamp(), actor, reply_id],
        )?;
        Ok(())
    }
}

/// Stops WhatsApp messages to patient `p` (a STOP, or staff recording that the patient
/// withdrew consent): the patient's opt-out, which planning and sending obey, and their pending
/// messages skipped. The caller audits and records the consent row.
pub(super) fn opt_out_whatsapp(
    conn: &crate::store::sql::Conn,
    p: i64,
    t: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE patients SET opted_out_at = ?2, updated_at = ?2 WHERE id = ?1 AND opted_out_at IS NULL",
        params![p, t],
    )?;
    // `+state` (SQLite): reach the rows through the patient's appointments
    // (outbox_appointment), not through every pending row in the outbox (outbox_due), which
    // grows with the queue. PostgreSQL's planner weighs the two itself.
    let state = conn.pick("+state", "state");
    conn.execute(
        &format!(
            "UPDATE outbox SET state = 'skipped', reason = 'the patient opted out', updated_at = ?2
             WHERE {state} = 'pending' AND kind != 'reply_ack'
               AND appointment_id IN (SELECT id FROM appointments WHERE patient_id = ?1)"
        ),
        params![p, t],
    )?;
    Ok(())
}

/// Lifts patient `p`'s WhatsApp opt-out (a START, or staff recording consent).
pub(super) fn opt_in_whatsapp(
    conn: &crate::store::sql::Conn,
    p: i64,
    t: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE patients SET opted_out_at = NULL, updated_at = ?2 WHERE id = ?1",
        params![p, t],
    )?;
    Ok(())
}

/// Stops text messages to `phone` (a STOP by text, or staff recording a withdrawal); `source`
/// is `numbers.sms_opt_out_source` ('reply', 'staff').
pub(super) fn opt_out_sms(
    conn: &crate::store::sql::Conn,
    phone: &str,
    source: &str,
    t: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO numbers (phone, sms_opted_out_at, sms_opt_out_source, updated_at) VALUES (?1, ?2, ?3, ?2)
         ON CONFLICT (phone) DO UPDATE SET sms_opted_out_at = excluded.sms_opted_out_at,
            sms_opt_out_source = excluded.sms_opt_out_source, updated_at = excluded.updated_at",
        params![phone, t, source],
    )?;
    Ok(())
}

/// Lifts the text-message opt-out of `phone` (a START by text, or staff recording consent).
pub(super) fn opt_in_sms(
    conn: &crate::store::sql::Conn,
    phone: &str,
    t: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE numbers SET sms_opted_out_at = NULL, sms_opt_out_source = NULL, updated_at = ?2 WHERE phone = ?1",
        params![phone, t],
    )?;
    Ok(())
}

/// Applies a patient's answer (confirm, cancel or reschedule) to an appointment inside `tx`:
/// sets the response (a cancel also cancels it "by the patient" and skips its pending
/// messages) and audits each change as `by = (actor, reason)`. A reply read by the webhook and
/// an ambiguous reply staff assign at the desk are both applied here, so they cannot differ.
pub(super) fn apply_answer(
    tx: &crate::store::sql::Conn,
    intent: crate::replies::Intent,
    (appointment_id, patient_id): (i64, i64),
    text: Option<&str>,
    (actor, reason): (&str, &str),
    t: i64,
) -> Result<(), StoreError> {
    use crate::replies::Intent;
    let audit = |action: &str, old: Option<String>, new: &str| {
        tx.prepare_cached("INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?
            .execute(
            params![t, appointment_id, patient_id, actor, action, old, new, reason],
        )
    };
    let response = match intent {
        Intent::Confirm => "confirmed",
        Intent::Cancel => "declined",
        Intent::Reschedule => "reschedule_requested",
        _ => return Ok(()),
    };
    let old: Option<String> = tx
        .prepare_cached("SELECT response FROM appointments WHERE id = ?1")?
        .query_row([appointment_id], |r| r.get(0))
        .optional()?;
    tx.prepare_cached("UPDATE appointments SET response = ?2, response_at = ?3, response_text = ?4, updated_at = ?3 WHERE id = ?1")?
            .execute(
        params![appointment_id, response, t, text],
    )?;
    audit("response", old, response)?;
    // The practice system hears of it from us only for an appointment it fed us.
    match intent {
        Intent::Confirm => super::feeds::queue_source_update(
            tx,
            appointment_id,
            "confirm",
            crate::time::from_unix(t),
        )?,
        Intent::Cancel => super::feeds::queue_source_update(
            tx,
            appointment_id,
            "cancel",
            crate::time::from_unix(t),
        )?,
        _ => {}
    }
    if intent == Intent::Cancel {
        tx.prepare_cached("UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient', status_at = ?2 WHERE id = ?1")?
            .execute(
            params![appointment_id, t],
        )?;
        audit("cancel", Some("booked".into()), "cancelled")?;
        tx.prepare_cached(
            "UPDATE outbox SET state = 'skipped', reason = 'the patient cancelled', updated_at = ?2
             WHERE appointment_id = ?1 AND state = 'pending' AND kind != 'reply_ack'",
        )?
        .execute(params![appointment_id, t])?;
    }
    Ok(())
}

/// Queues the free-form acknowledgement of reply `reply_id` (once: its key names the reply),
/// to go before `latest` (the end of the 24-hour window the patient's message opened).
pub(super) fn queue_ack(
    tx: &crate::store::sql::Conn,
    appointment_id: i64,
    reply_id: i64,
    slot_start: DateTime<Utc>,
    text: &str,
    t: i64,
    latest: i64,
) -> Result<(), StoreError> {
    use crate::model::{Channel, Recipient};
    queue_ack_to(
        tx,
        (appointment_id, reply_id, slot_start),
        text,
        (Recipient::Patient, Channel::WhatsApp),
        t,
        latest,
    )
}

/// As [`queue_ack`], to the sender (the patient or their caregiver) on the channel they wrote
/// by. `of` is (appointment, reply, slot start).
pub(super) fn queue_ack_to(
    tx: &crate::store::sql::Conn,
    of: (i64, i64, DateTime<Utc>),
    text: &str,
    to: (crate::model::Recipient, crate::model::Channel),
    t: i64,
    latest: i64,
) -> Result<(), StoreError> {
    let (appointment_id, reply_id, slot_start) = of;
    tx.prepare_cached("INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at,
            recipient, channel)
         VALUES (?1, 'reply_ack', ?2, ?3, ?4, ?5, ?6, 'pending', ?4, ?4, ?7, ?8)
         ON CONFLICT (appointment_id, kind, rule, slot_start, recipient, channel) DO NOTHING")?
            .execute(
        params![
            appointment_id,
            format!("reply:{reply_id}"),
            slot_start.timestamp(),
            t,
            latest,
            serde_json::json!({ "text": text }).to_string(),
            to.0.as_str(),
            to.1.as_str()
        ],
    )?;
    Ok(())
}

fn candidate(r: &crate::store::sql::Row<'_>) -> Result<crate::replies::Candidate, StoreError> {
    Ok(crate::replies::Candidate {
        appointment_id: r.get(0)?,
        external_id: r.get(1)?,
        patient_id: r.get(2)?,
        clinic: r.get(3)?,
        starts_at: crate::time::from_unix(r.get(4)?),
        status: Status::parse(&r.get::<_, String>(5)?)?,
        message_slot: None,
        outbox_id: None,
        patient_name: r.get(6)?,
        language: r.get(7)?,
        phone: r.get(8)?,
    })
}
