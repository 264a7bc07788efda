//! Answers to offers: the offers a patient may be answering, the one-statement claim of an
//! opening with the reply, the offer states and the patient's answer in the same transaction,
//! holds that lapse, moves that land with an import, and the reschedule lists.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::offer_book::BookBy;
use super::{Store, StoreError};
use crate::model::{Channel, OfferState, Recipient};
use crate::phone::E164;
use crate::waitlist::answers::{OfferKind, OpenOffer, Settled};

/// An offer with its opening, patient and message, as an answer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferDetail {
    /// Offer row id.
    pub id: i64,
    /// What it is for.
    pub kind: OfferKind,
    /// Where it stands.
    pub state: OfferState,
    /// When it runs out.
    pub expires_at: DateTime<Utc>,
    /// The opening.
    pub opening_id: i64,
    /// The opening's start.
    pub starts_at: DateTime<Utc>,
    /// The opening's provider.
    pub provider: Option<String>,
    /// The clinic's key.
    pub clinic: String,
    /// The patient.
    pub patient_id: i64,
    /// The patient's name.
    pub patient_name: String,
    /// The patient's language.
    pub language: String,
    /// The patient's number (a tap must come from it or the caregiver's).
    pub phone: String,
    /// The caregiver's number.
    pub contact_phone: Option<String>,
    /// The appointment the opening would replace.
    pub appointment_id: Option<i64>,
    /// That appointment's start.
    pub appointment_starts_at: Option<DateTime<Utc>>,
    /// The outbox row of the offer's message: (row, appointment it is filed under, slot).
    pub message: Option<(i64, i64, DateTime<Utc>)>,
}

/// What the patient answered, to record and settle in one transaction.
#[derive(Debug, Clone)]
pub struct OfferAnswer<'a> {
    /// The webhook event (or SMS) it came in.
    pub event_id: Option<i64>,
    /// The API's message id (a retried webhook is recorded once).
    pub message_id: &'a str,
    /// The sender.
    pub from: &'a E164,
    /// The API's message type.
    pub kind: &'a str,
    /// What was typed or tapped.
    pub text: Option<&'a str>,
    /// How it came; the answer goes back the same way.
    pub channel: Channel,
    /// The offer.
    pub offer: &'a OfferDetail,
    /// Accept (a yes or a pick), decline, or none of the list.
    pub what: Taken,
    /// The answers, rendered for each way the claim can go (`None`: not sent).
    pub texts: AnswerTexts,
    /// Until when an accepted opening is held.
    pub hold_until: DateTime<Utc>,
    /// The claim takes an opening only if it starts after this (now + lead time).
    pub starts_after: DateTime<Utc>,
    /// What staff must do once it is held (the words kept on the reply).
    pub staff_task: String,
    /// How a hold is booked: a follow-up card for staff, or the FHIR write-back.
    pub book: BookBy,
}

/// What the patient did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Yes, or a pick from a list.
    Accept,
    /// No.
    Decline,
    /// None of the list.
    NoneOfThese,
}

/// The patient's answer for each outcome.
#[derive(Debug, Clone, Default)]
pub struct AnswerTexts {
    /// It is held for them.
    pub held: Option<String>,
    /// Someone else took it.
    pub filled: Option<String>,
    /// It ran out.
    pub expired: Option<String>,
    /// The thank-you for a no.
    pub declined: Option<String>,
}

/// A held opening whose move the import showed, waiting for the patient's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The accepted offer.
    pub offer_id: i64,
    /// The appointment now at the opening's time.
    pub appointment_id: i64,
    /// Its start.
    pub starts_at: DateTime<Utc>,
    /// Its provider.
    pub provider: Option<String>,
    /// The clinic's key.
    pub clinic: String,
    /// The patient's name and language.
    pub patient: (String, String),
    /// How the patient answered (the confirmation goes back that way) and until when a
    /// free-form message may go (24 hours after their answer).
    pub channel: Channel,
    /// The end of the window their answer opened.
    pub window_end: DateTime<Utc>,
}

/// An opening a patient who asked to reschedule may be offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeOpening {
    /// Opening row id.
    pub id: i64,
    /// Its start.
    pub starts_at: DateTime<Utc>,
    /// Its provider.
    pub provider: Option<String>,
}

/// An offer message: id, kind, rule, params, sent at, wamid.
type MessageRow = (i64, String, String, Option<String>, i64, Option<String>);
/// A move to land: opening, offer, entry, old appointment, new appointment, its time.
type LandRow = (i64, i64, Option<i64>, Option<i64>, i64, i64);

const DETAIL_SQL: &str = "SELECT o.id, o.kind, o.state, o.expires_at, op.id, op.starts_at, op.provider, c.key, p.id, p.name,
        p.language, p.phone, p.contact_phone, o.appointment_id, a.starts_at
 FROM offers o JOIN openings op ON op.id = o.opening_id JOIN clinics c ON c.id = op.clinic_id
 JOIN patients p ON p.id = o.patient_id LEFT JOIN appointments a ON a.id = o.appointment_id";

/// The offer messages a reply from ?1 may answer, sent since ?2. Driven from the sender (patients
/// by phone, their offers, each offer's message by its rule through `outbox_offer`), so a reply
/// costs the same however many messages the outbox holds.
const OPEN_OFFERS_SQL: &str = "SELECT m.id, m.kind, m.rule, m.params, m.sent_at, m.wamid
 FROM patients p JOIN offers f ON f.patient_id = p.id
 JOIN outbox m ON m.rule = 'offer:' || f.id AND m.kind IN ('waitlist_offer', 'reschedule_offer')
 WHERE (p.phone = ?1 OR p.contact_phone = ?1)
   AND m.state IN ('sent', 'delivered', 'read') AND m.sent_at >= ?2
 ORDER BY m.sent_at, m.id";

/// When the last reminder to ?1 went out: the sender's patients, their appointments, their
/// messages (each step through an index).
const LAST_REMINDER_SQL: &str = "SELECT max(o.sent_at) FROM patients p
 JOIN appointments a ON a.patient_id = p.id JOIN outbox o ON o.appointment_id = a.id
 WHERE o.kind IN ('reminder', 'manual_reminder') AND (p.phone = ?1 OR p.contact_phone = ?1)";

/// The message that carried offer ?1: its own (rule `offer:<id>`) or a list naming it among
/// the patient's other offers' messages, each found by its rule through `outbox_offer`.
const OFFER_MESSAGE_SQL: &str = "SELECT m.id, m.appointment_id, m.slot_start
 FROM offers f JOIN offers g ON g.patient_id = f.patient_id
 JOIN outbox m ON m.rule = 'offer:' || g.id AND m.kind IN ('waitlist_offer', 'reschedule_offer')
 WHERE f.id = ?1
   AND (m.rule = 'offer:' || ?1
        OR (m.kind = 'reschedule_offer' AND json_valid(m.params)
            AND EXISTS (SELECT 1 FROM json_each(m.params, '$.offers') WHERE value = ?1)))
 ORDER BY m.id LIMIT 1";

/// [`OFFER_MESSAGE_SQL`] on PostgreSQL (`json_ints` in `postgres/schema.sql`).
const OFFER_MESSAGE_PG: &str = "SELECT m.id, m.appointment_id, m.slot_start
 FROM offers f JOIN offers g ON g.patient_id = f.patient_id
 JOIN outbox m ON m.rule = 'offer:' || g.id AND m.kind IN ('waitlist_offer', 'reschedule_offer')
 WHERE f.id = ?1
   AND (m.rule = 'offer:' || ?1
        OR (m.kind = 'reschedule_offer' AND ?1 IN (SELECT json_ints(m.params, 'offers'))))
 ORDER BY m.id LIMIT 1";

impl Store {
    /// The offers a reply from `from` may answer: unanswered offers of the sender's messages
    /// sent since `since`, each with its message and place in it, and when the sender's last
    /// reminder went out.
    pub fn open_offers_for(
        &self,
        from: &E164,
        since: DateTime<Utc>,
    ) -> Result<(Vec<OpenOffer>, Option<DateTime<Utc>>), StoreError> {
        let mut stmt = self.conn.prepare_cached(OPEN_OFFERS_SQL)?;
        let rows: Vec<MessageRow> = stmt
            .query_map(params![from.as_str(), since.timestamp()], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        let mut state = self
            .conn
            .prepare_cached("SELECT state FROM offers WHERE id = ?1 AND answered_at IS NULL")?;
        for (message, kind, rule, params, sent_at, wamid) in rows {
            let ids = message_offers(&kind, &rule, params.as_deref());
            for (i, id) in ids.iter().enumerate() {
                let Some(s) = state
                    .query_row([id], |r| r.get::<_, String>(0))
                    .optional()?
                else {
                    continue;
                };
                out.push(OpenOffer {
                    id: *id,
                    kind: if kind == "reschedule_offer" {
                        OfferKind::Reschedule
                    } else {
                        OfferKind::Waitlist
                    },
                    state: OfferState::parse(&s)?,
                    message,
                    position: i + 1,
                    sent_at: crate::time::from_unix(sent_at),
                    wamid: wamid.clone(),
                });
            }
        }
        let last_reminder: Option<i64> = self
            .conn
            .prepare_cached(LAST_REMINDER_SQL)?
            .query_row([from.as_str()], |r| r.get(0))?;
        Ok((out, last_reminder.map(crate::time::from_unix)))
    }

    /// Offer `id` with its opening, patient and message.
    pub fn offer_detail(&self, id: i64) -> Result<Option<OfferDetail>, StoreError> {
        let Some(mut d) = self
            .conn
            .query_row(&format!("{DETAIL_SQL} WHERE o.id = ?1"), [id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, String>(7)?,
                    (
                        r.get::<_, i64>(8)?,
                        r.get::<_, String>(9)?,
                        r.get::<_, String>(10)?,
                    ),
                    (r.get::<_, String>(11)?, r.get::<_, Option<String>>(12)?),
                    (r.get::<_, Option<i64>>(13)?, r.get::<_, Option<i64>>(14)?),
                ))
            })
            .optional()?
            .map(
                |(id, kind, state, exp, op, start, provider, clinic, p, ph, a)| {
                    Ok::<_, StoreError>(OfferDetail {
                        id,
                        kind: if kind == "reschedule" {
                            OfferKind::Reschedule
                        } else {
                            OfferKind::Waitlist
                        },
                        state: OfferState::parse(&state)?,
                        expires_at: crate::time::from_unix(exp),
                        opening_id: op,
                        starts_at: crate::time::from_unix(start),
                        provider,
                        clinic,
                        patient_id: p.0,
                        patient_name: p.1,
                        language: p.2,
                        phone: ph.0,
                        contact_phone: ph.1,
                        appointment_id: a.0,
                        appointment_starts_at: a.1.map(crate::time::from_unix),
                        message: None,
                    })
                },
            )
            .transpose()?
        else {
            return Ok(None);
        };
        d.message = self
            .conn
            .prepare_cached(self.conn.pick(OFFER_MESSAGE_SQL, OFFER_MESSAGE_PG))?
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, crate::time::from_unix(r.get(2)?)))
            })
            .optional()?;
        Ok(Some(d))
    }

    /// Records a patient's answer to an offer and settles it, in one transaction: the reply
    /// row, the claim (one statement: open → held, only if still open and not too close), the
    /// offer and its siblings, the staff follow-up and the patient's answer. `None` when the
    /// message was recorded before (a retried webhook).
    pub fn commit_offer_answer(
        &mut self,
        a: &OfferAnswer<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Settled>, StoreError> {
        let t = now.timestamp();
        let offer = a.offer;
        let Some((message, filed_under, slot)) = offer.message else {
            return Err(StoreError::Corrupt(format!(
                "offer {} has no message to answer",
                offer.id
            )));
        };
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let intent = match a.what {
            Taken::Accept => "confirm",
            Taken::Decline => "cancel",
            Taken::NoneOfThese => "reschedule",
        };
        let inserted = tx.insert_if("INSERT INTO replies (message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text,
                intent, outcome, reason, received_at, channel)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'applied', ?10, ?11, ?12)
             ON CONFLICT (message_id) DO NOTHING",
            params![
                a.message_id,
                a.event_id,
                a.from.as_str(),
                offer.patient_id,
                filed_under,
                message,
                a.kind,
                a.text,
                intent,
                format!("offer {}", offer.id),
                t,
                a.channel.as_str()
            ],
        )?;
        let Some(reply_id) = inserted else {
            return Ok(None);
        };
        // The state now, inside the transaction: a concurrent answer may have moved it.
        let state: String = tx
            .prepare_cached("SELECT state FROM offers WHERE id = ?1")?
            .query_row([offer.id], |r| r.get(0))?;
        let state = OfferState::parse(&state)?;
        let answer = |tx: &crate::store::sql::Conn, to: &str, why: Option<&str>| {
            tx.prepare_cached("UPDATE offers SET state = ?2, answered_at = ?3 WHERE id = ?1")?
                .execute(params![offer.id, to, t])?;
            if let Some(why) = why {
                tx.prepare_cached("UPDATE replies SET reason = ?2 WHERE id = ?1")?
                    .execute(params![reply_id, why])?;
            }
            Ok::<_, crate::store::sql::Error>(())
        };
        let settled = match a.what {
            Taken::Decline => match state {
                OfferState::Offered => {
                    answer(&tx, "declined", None)?;
                    Settled::Declined
                }
                _ => Settled::AlreadyAnswered,
            },
            Taken::NoneOfThese => {
                tx.prepare_cached(tx.pick("UPDATE offers SET state = 'declined', answered_at = ?3
                     WHERE patient_id = ?1 AND kind = 'reschedule' AND state = 'offered' AND id >= ?2
                       AND id IN (SELECT value FROM json_each((SELECT params FROM outbox WHERE id = ?4), '$.offers'))",
                    "UPDATE offers SET state = 'declined', answered_at = ?3
                     WHERE patient_id = ?1 AND kind = 'reschedule' AND state = 'offered' AND id >= ?2
                       AND id IN (SELECT json_ints((SELECT params FROM outbox WHERE id = ?4), 'offers'))"))?
            .execute(
                    params![offer.patient_id, offer.id, t, message],
                )?;
                Settled::NoneOfThese
            }
            Taken::Accept => {
                match crate::waitlist::answers::before_claim(state, offer.expires_at, now) {
                    Some(Settled::Expired) => {
                        if state == OfferState::Offered {
                            answer(&tx, "expired", Some("the offer had expired"))?;
                        } else {
                            answer(&tx, state.as_str(), Some("the offer had expired"))?;
                        }
                        Settled::Expired
                    }
                    Some(other) => {
                        if other == Settled::Filled {
                            answer(
                                &tx,
                                state.as_str(),
                                Some("someone else took the slot first"),
                            )?;
                        }
                        other
                    }
                    None => claim(&tx, a, (reply_id, filed_under), t)?,
                }
            }
        };
        let text = match settled {
            Settled::Held => a.texts.held.as_deref(),
            Settled::Filled => a.texts.filled.as_deref(),
            Settled::Expired => a.texts.expired.as_deref(),
            Settled::Declined => a.texts.declined.as_deref(),
            Settled::NoneOfThese | Settled::AlreadyAnswered => None,
        };
        if let Some(text) = text {
            let to = if a.from.as_str() == offer.phone {
                Recipient::Patient
            } else {
                Recipient::Contact
            };
            super::inbound::queue_ack_to(
                &tx,
                (filed_under, reply_id, slot),
                text,
                (to, a.channel),
                t,
                t + 24 * 3600,
            )?;
        }
        tx.commit()?;
        Ok(Some(settled))
    }

    /// Holds whose time ran out unbooked go back to `open` (the offering side resumes its
    /// rounds); their offers become `expired` and their staff follow-ups are closed. Returns
    /// how many.
    pub fn lapse_holds(&mut self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let lapsed: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, coalesce(held_by_offer, 0) FROM openings op WHERE state = 'held' AND hold_expires_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM source_updates u WHERE u.offer_id = op.held_by_offer
                                     AND u.state IN ('done', 'settled'))",
            )?;
            stmt.query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (opening, offer) in &lapsed {
            // Booked by staff or the write-back but not yet seen by an import: it stays held
            // (the select above left it out); every other hold that ran out reopens.
            tx.prepare_cached(
                "UPDATE openings SET state = 'open', held_by_offer = NULL, hold_expires_at = NULL,
                    reason = 'the hold ran out unbooked', updated_at = ?2
                 WHERE id = ?1",
            )?
            .execute(params![opening, t])?;
            tx.prepare_cached("UPDATE source_updates SET state = 'skipped', error = 'the hold ran out unbooked', updated_at = ?2
                 WHERE offer_id = ?1 AND state IN ('pending', 'staff')")?
            .execute(
                params![offer, t],
            )?;
            tx.prepare_cached(
                "UPDATE offers SET state = 'expired' WHERE id = ?1 AND state = 'accepted'",
            )?
            .execute([offer])?;
            tx.prepare_cached("UPDATE replies SET handled_by = 'reminderd', handled_at = ?2, reason = reason || '; the hold ran out unbooked'
                 WHERE outcome = 'needs_staff' AND handled_by IS NULL AND reason LIKE 'offer ' || ?1 || ':%'")?
            .execute(
                params![offer, t],
            )?;
            tx.prepare_cached(
                "INSERT INTO audit_log (at, actor, action, old_value, new_value, reason)
                 VALUES (?1, 'reminderd', 'opening_hold_lapsed', 'held', 'open', ?2)",
            )?
            .execute(params![t, format!("opening {opening}, offer {offer}")])?;
        }
        tx.commit()?;
        Ok(lapsed.len())
    }

    /// Filled openings whose patient has not been told the new time yet (the moved message is
    /// filed under the landed appointment, so looking for it costs one index probe).
    pub fn landed_unconfirmed(&self) -> Result<Vec<Landed>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, a.id, a.starts_at, a.provider, c.key, p.name, p.language,
                    coalesce((SELECT r.channel FROM replies r WHERE r.reason LIKE 'offer ' || o.id || ':%' ORDER BY r.id LIMIT 1), 'whatsapp'),
                    coalesce(o.answered_at, op.updated_at)
             FROM openings op JOIN offers o ON o.id = op.held_by_offer JOIN clinics c ON c.id = op.clinic_id
             JOIN patients p ON p.id = o.patient_id
             JOIN appointments a ON a.patient_id = o.patient_id AND a.clinic_id = op.clinic_id AND a.starts_at = op.starts_at
                                AND a.status = 'booked'
             WHERE op.state = 'filled'
               AND NOT EXISTS (SELECT 1 FROM outbox m WHERE m.appointment_id = a.id AND m.rule = 'moved:' || o.id)
             ORDER BY op.id",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                (r.get::<_, String>(5)?, r.get::<_, String>(6)?),
                r.get::<_, String>(7)?,
                r.get::<_, i64>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (offer_id, appointment_id, start, provider, clinic, patient, channel, answered) =
                row?;
            out.push(Landed {
                offer_id,
                appointment_id,
                starts_at: crate::time::from_unix(start),
                provider,
                clinic,
                patient,
                channel: Channel::parse(&channel)?,
                window_end: crate::time::from_unix(answered + 24 * 3600),
            });
        }
        Ok(out)
    }

    /// Queues "your appointment is now at …" for a landed move, once (rule `moved:<offer>`).
    pub fn queue_moved(
        &mut self,
        landed: &Landed,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = now.timestamp();
        self.conn.prepare_cached("INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at,
                recipient, channel)
             VALUES (?1, 'reply_ack', ?2, ?3, ?4, ?5, ?6, 'pending', ?4, ?4, 'patient', ?7)
             ON CONFLICT (appointment_id, kind, rule, slot_start, recipient, channel) DO NOTHING")?
            .execute(
            params![
                landed.appointment_id,
                format!("moved:{}", landed.offer_id),
                landed.starts_at.timestamp(),
                t,
                landed.window_end.timestamp().max(t),
                serde_json::json!({ "text": text }).to_string(),
                landed.channel.as_str()
            ],
        )?;
        Ok(())
    }

    /// Open openings that could replace `appointment_id`: the same clinic, the same provider
    /// (or one the opening or appointment does not name), starting after `after`, that
    /// `patient_id` was not offered before, soonest first.
    pub fn free_openings(
        &self,
        appointment_id: i64,
        after: DateTime<Utc>,
        patient_id: i64,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<FreeOpening>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT op.id, op.starts_at, op.provider FROM openings op JOIN appointments a ON a.id = ?1
             WHERE op.clinic_id = a.clinic_id AND op.state = 'open' AND op.starts_at > ?2 AND op.offers_from <= ?4
               AND op.starts_at != a.starts_at
               AND (a.provider IS NULL OR op.provider IS NULL OR op.provider = a.provider)
               AND NOT EXISTS (SELECT 1 FROM offers o WHERE o.opening_id = op.id AND o.patient_id = ?3)
             ORDER BY op.starts_at, op.id LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                appointment_id,
                after.timestamp(),
                patient_id,
                now.timestamp(),
                i64::try_from(limit).unwrap_or(3)
            ],
            |r| {
                Ok(FreeOpening {
                    id: r.get(0)?,
                    starts_at: crate::time::from_unix(r.get(1)?),
                    provider: r.get(2)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Offers `openings` to a patient who asked to reschedule `appointment` (one `reschedule`
    /// offer each) and queues their one message (kind `reschedule_offer`, rule
    /// `offer:<first offer id>`), in one transaction; `params` builds the message from the
    /// offer ids. Returns the offer ids.
    #[allow(clippy::too_many_arguments)]
    pub fn offer_reschedule(
        &mut self,
        (patient_id, appointment_id, slot): (i64, i64, DateTime<Utc>),
        openings: &[FreeOpening],
        expires_at: DateTime<Utc>,
        to: (Recipient, Channel),
        language: &str,
        params: &dyn Fn(&[i64]) -> String,
        now: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(openings.len());
        for op in openings {
            if let Some(id) = tx.insert_if("INSERT INTO offers (opening_id, patient_id, appointment_id, kind, round, created_at, expires_at)
                 SELECT ?1, ?2, ?3, 'reschedule', 0, ?4, ?5 WHERE EXISTS (SELECT 1 FROM openings WHERE id = ?1 AND state = 'open')
                 ON CONFLICT (opening_id, patient_id) DO NOTHING",
                params![op.id, patient_id, appointment_id, t, expires_at.timestamp()],
            )? {
                ids.push(id);
            }
        }
        if let Some(first) = ids.first() {
            tx.prepare_cached("INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, language, params, state,
                    created_at, updated_at, recipient, channel)
                 VALUES (?1, 'reschedule_offer', ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?4, ?4, ?8, ?9)")?
            .execute(
                params![
                    appointment_id,
                    format!("offer:{first}"),
                    slot.timestamp(),
                    t,
                    expires_at.timestamp().min(t + 24 * 3600),
                    language,
                    params(&ids),
                    to.0.as_str(),
                    to.1.as_str()
                ],
            )?;
        }
        tx.commit()?;
        Ok(ids)
    }
}

/// The offers a message carries: a waitlist offer's is in its rule, a list's in its params.
fn message_offers(kind: &str, rule: &str, params: Option<&str>) -> Vec<i64> {
    let first = rule
        .strip_prefix("offer:")
        .and_then(|n| n.parse::<i64>().ok());
    if kind == "reschedule_offer"
        && let Some(ids) = params
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|v| {
                v["offers"].as_array().map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_i64)
                        .collect::<Vec<_>>()
                })
            })
        && !ids.is_empty()
    {
        return ids;
    }
    first.into_iter().collect()
}

/// The claim: one statement moves the opening from open to held for this offer, only while it
/// is open and starts after the lead time. Taken: the offer is accepted, its siblings lost (the
/// other choices of a list withdrawn), the reply is the staff's follow-up. Not taken: lost.
fn claim(
    tx: &crate::store::sql::Conn,
    a: &OfferAnswer<'_>,
    (reply_id, filed_under): (i64, i64),
    t: i64,
) -> Result<Settled, StoreError> {
    let offer = a.offer;
    let held: Option<i64> = tx
        .prepare_cached("UPDATE openings SET state = 'held', held_by_offer = ?1, hold_expires_at = ?2, updated_at = ?5
             WHERE id = ?3 AND state = 'open' AND starts_at > ?4 RETURNING id")?
            .query_row(
            params![
                offer.id,
                a.hold_until.timestamp(),
                offer.opening_id,
                a.starts_after.timestamp(),
                t
            ],
            |r| r.get(0),
        )
        .optional()?;
    if held.is_none() {
        tx.prepare_cached("UPDATE offers SET state = 'lost', answered_at = ?2 WHERE id = ?1")?
            .execute(params![offer.id, t])?;
        tx.prepare_cached("UPDATE replies SET reason = ?2 WHERE id = ?1")?
            .execute(params![
                reply_id,
                format!("offer {}: someone else took the slot first", offer.id)
            ])?;
        return Ok(Settled::Filled);
    }
    tx.prepare_cached("UPDATE offers SET state = 'accepted', answered_at = ?2 WHERE id = ?1")?
        .execute(params![offer.id, t])?;
    tx.prepare_cached(
        "UPDATE offers SET state = 'lost' WHERE opening_id = ?1 AND id != ?2 AND state = 'offered'",
    )?
    .execute(params![offer.opening_id, offer.id])?;
    if offer.kind == OfferKind::Reschedule {
        // The other times of the same list: the patient chose.
        tx.prepare_cached("UPDATE offers SET state = 'withdrawn' WHERE patient_id = ?1 AND kind = 'reschedule' AND state = 'offered'")?
            .execute(
            [offer.patient_id],
        )?;
    }
    tx.prepare_cached("UPDATE replies SET reason = ?2 WHERE id = ?1")?
        .execute(params![
            reply_id,
            format!("offer {}: {}", offer.id, a.staff_task)
        ])?;
    // The booking: a follow-up card for staff, or the write-back's work. Filed under the
    // appointment it replaces, or the one the offer's message was filed under.
    let (feed, state, note) = match &a.book {
        BookBy::Staff(note) => (None, "staff", note.as_deref()),
        BookBy::Fhir(feed) => (Some(feed.as_str()), "pending", None),
    };
    tx.prepare_cached("INSERT INTO source_updates (appointment_id, feed, action, state, error, created_at, updated_at, offer_id)
         SELECT id, coalesce(?2, source), 'book', ?3, ?4, ?5, ?5, ?6 FROM appointments WHERE id = ?1
         ON CONFLICT (offer_id) DO NOTHING")?
            .execute(
        params![
            offer.appointment_id.unwrap_or(filed_under),
            feed,
            state,
            note,
            t,
            offer.id
        ],
    )?;
    tx.prepare_cached("INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
         VALUES (?1, ?2, ?3, 'patient', 'opening_held', 'open', 'held', ?4)")?
            .execute(
        params![
            t,
            offer.appointment_id,
            offer.patient_id,
            format!("offer {}, opening {}, reply {}", offer.id, offer.opening_id, a.message_id)
        ],
    )?;
    Ok(Settled::Held)
}

/// Inside an import's transaction: every held opening whose patient the import shows booked
/// at its time (same clinic, and provider when the opening names one) is filled, its
/// waitlist entry booked, the staff follow-up closed, and the pending reminders of the
/// appointment it replaces skipped (the plan makes the new one's). The time of each is the
/// appointment's own `updated_at`, the import's clock.
pub(super) fn land_moves(tx: &crate::store::sql::Conn) -> Result<usize, StoreError> {
    let landed: Vec<LandRow> = {
        let mut stmt = tx.prepare_cached(
            "SELECT op.id, o.id, o.entry_id, o.appointment_id, a.id, a.updated_at
             FROM openings op JOIN offers o ON o.id = op.held_by_offer
             JOIN appointments a ON a.patient_id = o.patient_id AND a.clinic_id = op.clinic_id
                                AND a.status = 'booked' AND a.starts_at = op.starts_at
                                AND (op.provider IS NULL OR a.provider = op.provider)
             WHERE op.state = 'held'",
        )?;
        stmt.query_map((), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?
    };
    for (opening, offer, entry, old, new, t) in &landed {
        tx.prepare_cached("UPDATE openings SET state = 'filled', hold_expires_at = NULL, reason = NULL, updated_at = ?2 WHERE id = ?1")?
            .execute(
            params![opening, t],
        )?;
        if let Some(e) = entry {
            tx.prepare_cached(
                "UPDATE waitlist_entries SET state = 'booked', updated_at = ?2 WHERE id = ?1",
            )?
            .execute(params![e, t])?;
        }
        if let Some(old) = old.filter(|o| o != new) {
            tx.prepare_cached("UPDATE outbox SET state = 'skipped', reason = 'the patient moved to an earlier appointment', updated_at = ?2
                 WHERE appointment_id = ?1 AND state = 'pending' AND kind IN ('reminder', 'manual_reminder', 'booking_confirmation')")?
            .execute(
                params![old, t],
            )?;
        }
        tx.prepare_cached("UPDATE replies SET handled_by = 'reminderd', handled_at = ?2
             WHERE outcome = 'needs_staff' AND handled_by IS NULL AND reason LIKE 'offer ' || ?1 || ':%'")?
            .execute(
            params![offer, t],
        )?;
        // The booking's follow-up card (or the write-back's pending work) is done: the
        // practice system shows the move.
        tx.prepare_cached(
            "UPDATE source_updates SET state = 'done', updated_at = ?2
             WHERE offer_id = ?1 AND state IN ('pending', 'staff')",
        )?
        .execute(params![offer, t])?;
        tx.prepare_cached("INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, 'import', 'opening_filled', 'held', 'filled', ?3)")?
            .execute(
            params![t, new, format!("opening {opening}, offer {offer}")],
        )?;
    }
    Ok(landed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite chooses for `sql` on a store at the current schema, one step a line.
    fn plan(sql: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("r.db")).expect("open");
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        let n = stmt.parameter_count();
        let args = crate::store::sql::params_from_iter(["+15550100", "0"].into_iter().take(n));
        let steps = stmt
            .query_map(args, |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        steps.join("\n")
    }

    #[test]
    fn a_reply_finds_its_offers_from_the_sender_not_by_walking_the_outbox() {
        let p = plan(OPEN_OFFERS_SQL);
        for step in [
            "SEARCH p USING INDEX patients_phone (phone=?)",
            "SEARCH p USING INDEX patients_contact_phone (contact_phone=?)",
            "SEARCH f USING COVERING INDEX offers_patient (patient_id=?)",
            "SEARCH m USING INDEX outbox_offer (rule=?)",
        ] {
            assert!(p.contains(step), "{step:?} missing from the plan:\n{p}");
        }
        assert!(!p.contains("SCAN"), "a scan in the plan:\n{p}");
        assert!(
            !p.contains("outbox_due"),
            "the outbox walked by state:\n{p}"
        );
    }

    #[test]
    fn an_answered_offer_finds_its_message_from_the_patients_offers() {
        let p = plan(OFFER_MESSAGE_SQL);
        assert!(
            p.contains("SEARCH m USING INDEX outbox_offer (rule=?)"),
            "{p}"
        );
        assert!(!p.contains("SCAN m") && !p.contains("SCAN outbox"), "{p}");
    }

    #[test]
    fn the_last_reminder_is_found_from_the_sender_not_by_walking_the_outbox() {
        let p = plan(LAST_REMINDER_SQL);
        assert!(p.contains("patients_phone"), "{p}");
        assert!(p.contains("appointments_patient"), "{p}");
        assert!(!p.contains("SCAN"), "a scan in the plan:\n{p}");
        assert!(
            !p.contains("outbox_due"),
            "the outbox walked by state:\n{p}"
        );
    }
}
