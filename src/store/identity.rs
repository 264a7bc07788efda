//! Who a WhatsApp sender is when the number is not enough: business-scoped user ids (BSUIDs)
//! kept with patients, and a patient's change of number reported by a `system` message.

use crate::store::sql::{OptionalExtension as _, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::phone::E164;

/// What a `user_changed_number` message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberChange {
    /// One patient (or one caregiver's entry) had the old number: it now holds the new one.
    Moved {
        /// The patient whose record changed.
        patient_id: i64,
        /// Whether the number was the caregiver's (`contact_phone`) rather than the patient's.
        contact: bool,
    },
    /// Several records have the old number: staff decide which to change.
    Ambiguous {
        /// How many records have it.
        records: usize,
    },
    /// No record has the old number.
    Unknown,
    /// The message lacked the old or the new number: only the note for staff was filed.
    Incomplete,
    /// This message was recorded before: nothing changed.
    Replayed,
}

/// A `user_changed_number` message, as the store records it.
#[derive(Debug, Clone, Copy)]
pub struct NumberChangeRecord<'a> {
    /// The webhook body it came in.
    pub event_id: i64,
    /// The system message's id (once only).
    pub message_id: &'a str,
    /// The number the patient had (`None` when the message did not say).
    pub old: Option<&'a E164>,
    /// The number they have now (`None` when the message did not say).
    pub new: Option<&'a E164>,
    /// Their new business-scoped user id, when the message gave one.
    pub user_id: Option<&'a str>,
}

impl Store {
    /// Keeps a sender's business-scoped user id with every patient (or caregiver's patient)
    /// who has their number, so a later message without a number is still theirs. Returns how
    /// many patients learned it.
    pub fn remember_user_id(
        &self,
        phone: &E164,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE patients SET wa_user_id = ?2, updated_at = ?3
             WHERE phone = ?1 AND wa_user_id IS DISTINCT FROM ?2",
            )?
            .execute(params![phone.as_str(), user_id, now.timestamp()])?)
    }

    /// The number of the patients known by `user_id`, when they all share one (a family's
    /// patients share a sender); `None` when nobody or several numbers are known by it.
    pub fn phone_for_user_id(&self, user_id: &str) -> Result<Option<E164>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT phone FROM patients WHERE wa_user_id = ?1 LIMIT 2")?;
        let phones: Vec<String> = stmt
            .query_map([user_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(match phones.as_slice() {
            [one] => Some(E164::from_stored(one.clone())),
            _ => None,
        })
    }

    /// Applies a `user_changed_number` message in one transaction: the one record with the old
    /// number takes the new one (audited, actor `patient`), and a note for staff is filed as a
    /// reply needing staff, because the practice system still has the old number and its next
    /// schedule would put it back; with several records or none, only the note, saying so.
    /// A message missing either number changes nothing and files the note all the same: a
    /// patient's number changed and only a person can find out to what.
    pub fn change_number(
        &mut self,
        rec: &NumberChangeRecord<'_>,
        now: DateTime<Utc>,
    ) -> Result<NumberChange, StoreError> {
        let t = now.timestamp();
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let seen: Option<i64> = tx
            .prepare_cached("SELECT id FROM replies WHERE message_id = ?1")?
            .query_row([rec.message_id], |r| r.get(0))
            .optional()?;
        if seen.is_some() {
            return Ok(NumberChange::Replayed);
        }
        let (Some(old_number), Some(new_number)) = (rec.old, rec.new) else {
            let patient = match rec.old {
                Some(old) => one_record(&tx, old)?,
                None => None,
            };
            let missing = match (rec.old, rec.new) {
                (None, None) => "neither the old nor the new number",
                (None, Some(_)) => "no old number",
                _ => "no new number",
            };
            let reason = format!(
                "changed their WhatsApp number, but WhatsApp's message gave {missing}, so nothing was changed: ask the patient for their number"
            );
            let from = rec.new.or(rec.old).map_or("", E164::as_str);
            file_note(&tx, rec, from, patient, &reason, t)?;
            tx.commit()?;
            return Ok(NumberChange::Incomplete);
        };
        let records: Vec<(i64, bool)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, phone != ?1 FROM patients WHERE phone = ?1 OR contact_phone = ?1 ORDER BY id",
            )?;
            stmt.query_map([old_number.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let (old, new) = (old_number.masked(), new_number.masked());
        let (change, patient, reason) = match records.as_slice() {
            [(id, contact)] => {
                let column = if *contact { "contact_phone" } else { "phone" };
                tx.execute(
                    &format!("UPDATE patients SET {column} = ?2, updated_at = ?3 WHERE id = ?1"),
                    params![id, new_number.as_str(), t],
                )?;
                if let Some(u) = rec.user_id.filter(|_| !*contact) {
                    tx.prepare_cached("UPDATE patients SET wa_user_id = ?2 WHERE id = ?1")?
                        .execute(params![id, u])?;
                }
                tx.prepare_cached("INSERT INTO audit_log (at, patient_id, actor, action, old_value, new_value, reason)
                     VALUES (?1, ?2, 'patient', ?3, ?4, ?5, ?6)")?
            .execute(
                    params![
                        t,
                        id,
                        if *contact { "contact_number_changed" } else { "number_changed" },
                        old,
                        new,
                        format!("WhatsApp reported a changed number (message {})", rec.message_id)
                    ],
                )?;
                let whose = if *contact { "caregiver's " } else { "" };
                (
                    NumberChange::Moved {
                        patient_id: *id,
                        contact: *contact,
                    },
                    Some(*id),
                    format!(
                        "changed their WhatsApp number from {old} to {new}; the {whose}number is updated here. Update it in the practice system too, or its next schedule will put the old number back"
                    ),
                )
            }
            [] => (
                NumberChange::Unknown,
                None,
                format!(
                    "a WhatsApp user changed their number from {old} to {new}; no patient has the old number"
                ),
            ),
            many => (
                NumberChange::Ambiguous {
                    records: many.len(),
                },
                many.first().map(|(id, _)| *id),
                format!(
                    "changed their WhatsApp number from {old} to {new}; {} patients have the old number, so none was changed: update the right ones",
                    many.len()
                ),
            ),
        };
        file_note(&tx, rec, new_number.as_str(), patient, &reason, t)?;
        tx.commit()?;
        Ok(change)
    }
}

/// The one patient whose own number is `phone`, when exactly one has it.
fn one_record(tx: &crate::store::sql::Conn, phone: &E164) -> Result<Option<i64>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT id FROM patients WHERE phone = ?1 LIMIT 2")?;
    let ids: Vec<i64> = stmt
        .query_map([phone.as_str()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// Files the note for staff about a changed number, as a reply needing staff (the message id
/// makes it once only).
fn file_note(
    tx: &crate::store::sql::Conn,
    rec: &NumberChangeRecord<'_>,
    from: &str,
    patient: Option<i64>,
    reason: &str,
    t: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO replies (message_id, event_id, from_phone, patient_id, kind, text, intent, outcome, reason, received_at, channel)
         VALUES (?1, ?2, ?3, ?4, 'system', 'changed their WhatsApp number', 'none', 'needs_staff', ?5, ?6, 'whatsapp')")?
            .execute(
        params![rec.message_id, rec.event_id, from, patient, reason, t],
    )?;
    Ok(())
}
