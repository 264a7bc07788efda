//! Booking held openings: how a hold is booked (a staff card or the FHIR write-back, a
//! `book` row of `source_updates`), the cards staff see, what the write-back needs, and the
//! "moved" message by template once the patient's window has closed.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

use super::offers::Landed;
use super::{Store, StoreError};

/// How a held opening gets booked in the practice system: a `book` row of
/// `source_updates`, queued in the claim's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookBy {
    /// Staff book it by hand: the row is a follow-up card at once (state `staff`), with an
    /// optional note for them (such as "the patient was asked to call").
    Staff(Option<String>),
    /// The FHIR write-back of this feed books it (state `pending`); what it cannot do falls
    /// to staff.
    Fhir(String),
}

/// A held opening staff must book, as its follow-up card names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookTask {
    /// The `source_updates` row.
    pub update_id: i64,
    /// The patient's name.
    pub patient_name: String,
    /// The opening's start.
    pub starts_at: DateTime<Utc>,
    /// The opening's provider.
    pub provider: Option<String>,
    /// Until when the opening is held for them.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The start of the appointment it replaces, if any.
    pub replaces: Option<DateTime<Utc>>,
}

/// What the FHIR write-back needs to book a hold: the opening's time and the appointment to
/// move there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookFacts {
    /// The opening's start.
    pub starts_at: DateTime<Utc>,
    /// Its length in minutes.
    pub duration_min: i64,
    /// Its provider.
    pub provider: Option<String>,
    /// The appointment to move: its id in its source, its source and its provider (`None`:
    /// the patient has no booked appointment the offer replaces).
    pub moves: Option<(String, String, Option<String>)>,
    /// Whether the opening is still held for this offer.
    pub held: bool,
}

impl Store {
    /// The held openings staff must book (`book` updates in state `staff`), each as its
    /// follow-up card names it.
    pub fn book_tasks(&self) -> Result<Vec<BookTask>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.id, p.name, op.starts_at, op.provider, op.hold_expires_at, a.starts_at
             FROM source_updates u JOIN offers o ON o.id = u.offer_id JOIN openings op ON op.id = o.opening_id
             JOIN patients p ON p.id = o.patient_id LEFT JOIN appointments a ON a.id = o.appointment_id
             WHERE u.action = 'book' AND u.state = 'staff' ORDER BY u.id",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok(BookTask {
                update_id: r.get(0)?,
                patient_name: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                provider: r.get(3)?,
                hold_expires_at: r.get::<_, Option<i64>>(4)?.map(crate::time::from_unix),
                replaces: r.get::<_, Option<i64>>(5)?.map(crate::time::from_unix),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What the write-back needs to book `book` update `update_id`; `None` when it is not one.
    pub fn book_facts(&self, update_id: i64) -> Result<Option<BookFacts>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT op.starts_at, op.duration_min, op.provider, a.external_id, a.source, a.provider,
                        op.state = 'held' AND op.held_by_offer = o.id
                 FROM source_updates u JOIN offers o ON o.id = u.offer_id JOIN openings op ON op.id = o.opening_id
                 LEFT JOIN appointments a ON a.id = o.appointment_id AND a.status = 'booked'
                 WHERE u.id = ?1 AND u.action = 'book'")?
            .query_row(
                [update_id],
                |r| {
                    let external: Option<String> = r.get(3)?;
                    let source: Option<String> = r.get(4)?;
                    let provider: Option<String> = r.get(5)?;
                    Ok(BookFacts {
                        starts_at: crate::time::from_unix(r.get(0)?),
                        duration_min: r.get(1)?,
                        provider: r.get(2)?,
                        moves: external.zip(source).map(|(e, s)| (e, s, provider)),
                        held: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// As [`Store::queue_moved`], once the patient's window has closed: the appointment at
    /// its new time through the approved `template` (a booking confirmation), rule
    /// `moved:<offer>`, due now and not after the appointment starts; skipped when the plan
    /// already confirms the appointment as a new booking.
    pub fn queue_moved_template(
        &mut self,
        landed: &Landed,
        template: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = now.timestamp();
        // A new appointment the plan already confirms (its own booking confirmation) needs no
        // second one: the row is kept, skipped, so the move counts as told.
        self.conn.prepare_cached("INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason,
                created_at, updated_at, recipient, channel)
             SELECT ?1, 'booking_confirmation', ?2, ?3, ?4, ?3, ?5,
                    CASE WHEN b.n > 0 THEN 'skipped' ELSE 'pending' END,
                    CASE WHEN b.n > 0 THEN 'the booking confirmation of the new appointment tells the patient' END,
                    ?4, ?4, 'patient', 'whatsapp'
             FROM (SELECT count(*) AS n FROM outbox WHERE appointment_id = ?1 AND kind = 'booking_confirmation'
                     AND slot_start = ?3 AND rule NOT LIKE 'moved:%') b
             WHERE true
             ON CONFLICT (appointment_id, kind, rule, slot_start, recipient, channel) DO NOTHING")?
            .execute(
            params![
                landed.appointment_id,
                format!("moved:{}", landed.offer_id),
                landed.starts_at.timestamp(),
                t,
                template
            ],
        )?;
        Ok(())
    }
}
