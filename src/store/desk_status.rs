//! What the front desk records beside the schedule: staff notes (who, when, what), a status
//! set at the desk (arrived, completed, no-show, cancelled, confirmed by phone) with its rules
//! and its undo, and the latest message of an appointment as the day board shows it.

use crate::store::sql::{OptionalExtension, Transaction, params};
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::StaffAction;

/// The audit actions that change an appointment's status, response or arrival, whoever made
/// them (staff, an upload, the patient's reply): the latest decides what "the last desk-set
/// status" is and whether it can still be undone.
pub(super) const CHANGES: &str =
    "'status', 'response', 'arrived', 'undo', 'cancel', 'reinstate', 'reschedule'";

/// A staff note about an appointment: a call, a note, or the note typed with a status or with
/// a reply marked handled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    /// The appointment's row id.
    pub appointment: i64,
    /// The staff member's name.
    pub by: String,
    /// When it was written (UTC).
    pub at: DateTime<Utc>,
    /// What they did with it: called, note, confirmed, cancelled, completed, no_show,
    /// arrived or reply_handled.
    pub action: String,
    /// What they typed (none for a call without words).
    pub text: Option<String>,
}

/// The latest change to an appointment's status, response or arrival, when staff made it at
/// the desk (an upload's or a reply's later change hides it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeskChange {
    /// What changed: status, response, arrived, or undo (an earlier desk change reverted).
    pub what: String,
    /// The value before (for an undo: the value it reverted).
    pub from: Option<String>,
    /// The value set (for an undo: the value restored).
    pub to: Option<String>,
    /// The staff member's name.
    pub by: String,
    /// When (UTC).
    pub at: DateTime<Utc>,
}

impl DeskChange {
    /// Whether Undo can revert it (an undo itself is not undone).
    pub fn can_undo(&self) -> bool {
        self.what != "undo"
    }
}

/// The latest reminder or booking confirmation that went out, or failed, or was not sent in
/// time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastMessage {
    /// reminder or booking_confirmation.
    pub kind: String,
    /// sending, sent, delivered, read, failed, unknown or expired.
    pub state: String,
    /// When it reached that state (UTC).
    pub at: DateTime<Utc>,
    /// The WhatsApp error code, when it failed.
    pub error_code: Option<i64>,
    /// Why it failed or was not sent (the outbox's error or reason).
    pub error: Option<String>,
    /// How it went: whatsapp or sms.
    pub channel: String,
    /// To whom: patient or contact (the caregiver).
    pub recipient: String,
    /// What staff must do about it, when it failed for good.
    pub needs_staff: Option<String>,
    /// For a failed WhatsApp message a text replaced: that text's state (pending, skipped, ...).
    pub replaced_by: Option<String>,
}

/// What an undo did: the value it reverted and the value restored (`None`: not arrived).
pub type Undone = (String, Option<String>);

/// An audit row as undo reads it: id, at, actor, action, old value, new value.
type AuditRow = (i64, i64, String, String, Option<String>, Option<String>);

impl Store {
    /// Every staff note about these appointments (by row id), newest first: calls, notes,
    /// and the notes typed with a status or a handled reply.
    pub fn notes(&self, appointments: &[i64]) -> Result<Vec<Note>, StoreError> {
        if appointments.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(appointments).map_err(|e| {
            StoreError::Corrupt(format!("appointment ids could not be listed: {e}"))
        })?;
        let ids_in = self
            .conn
            .pick("SELECT value FROM json_each(?1)", "SELECT json_ints(?1)");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT l.appointment_id, substr(l.actor, 7), l.at,
                    CASE WHEN l.action IN ('status', 'response') THEN l.new_value ELSE l.action END,
                    nullif(trim(l.reason), '')
             FROM audit_log l
             WHERE l.appointment_id IN ({ids_in}) AND l.actor LIKE 'staff:%'
               AND (l.action IN ('called', 'note')
                    OR (l.action IN ('status', 'response', 'arrived', 'reply_handled')
                        AND nullif(trim(l.reason), '') IS NOT NULL))
             ORDER BY l.id DESC"
        ))?;
        let rows = stmt.query_map(params![ids], |r| {
            Ok(Note {
                appointment: r.get(0)?,
                by: r.get(1)?,
                at: crate::time::from_unix(r.get(2)?),
                action: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// [`Store::set_status`] for the appointment with this row id (the day board names its
    /// rows so); `Some((clinic, old value))` when it changed.
    pub fn set_status_row(
        &mut self,
        row: i64,
        action: StaffAction,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let key: String = tx
            .query_row(
                "SELECT c.key FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE a.id = ?1",
                [row],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(gone)?;
        let old = apply_staff_action(&tx, row, action, note, actor, now)?;
        tx.commit()?;
        Ok(old.map(|o| (key, o)))
    }

    /// Reverts the latest status, response or arrival set at the desk, from the audit log's
    /// old value, and audits the undo. Refused when the latest change is not a desk's (an
    /// upload or the patient changed it since) or was already undone.
    pub fn undo_desk_status(
        &mut self,
        row: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Undone, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(crate::store::sql::TransactionBehavior::Immediate)?;
        let (status, response, arrived): (String, String, bool) = tx
            .query_row(
                "SELECT status, response, arrived_at IS NOT NULL FROM appointments WHERE id = ?1",
                [row],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(gone)?;
        let last: Option<AuditRow> = tx
            .query_row(
                &format!(
                    "SELECT id, at, actor, action, old_value, new_value FROM audit_log
                     WHERE appointment_id = ?1 AND action IN ({CHANGES}) ORDER BY id DESC LIMIT 1"
                ),
                [row],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()?;
        let nothing = || {
            StoreError::Refused(
                "There is nothing to undo: the latest change to this appointment was not made at the desk (an upload or the patient's reply), or it was already undone.".into(),
            )
        };
        let Some((audit_id, audit_at, who, what, old, new)) = last else {
            return Err(nothing());
        };
        if !who.starts_with("staff:") {
            return Err(nothing());
        }
        let t = now.timestamp();
        let changed_since = || {
            StoreError::Refused(
                "The appointment changed since that was set, so nothing was undone. Reload the day board and check it.".into(),
            )
        };
        let (undone, restored) = match (what.as_str(), old, new) {
            ("status", Some(old), Some(new)) => {
                if status != new {
                    return Err(changed_since());
                }
                crate::model::Status::parse(&old)?;
                // A cancellation comes back with who made it: the change that set it says.
                let by = if old == "cancelled" {
                    let actor: Option<String> = tx
                        .query_row(
                            &format!(
                                "SELECT actor FROM audit_log WHERE appointment_id = ?1 AND id < ?2
                                 AND action IN ({CHANGES}) AND new_value = 'cancelled' ORDER BY id DESC LIMIT 1"
                            ),
                            params![row, audit_id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    Some(match actor.as_deref() {
                        Some("patient") => "patient",
                        Some(a) if a.starts_with("import:") => "source",
                        _ => "clinic",
                    })
                } else {
                    None
                };
                tx.execute(
                    "UPDATE appointments SET status = ?2, cancelled_by = ?3, status_at = ?4, updated_at = ?4 WHERE id = ?1",
                    params![row, old, by, t],
                )?;
                if old == "booked" {
                    // The reminders the change skipped are due again (send-time checks still
                    // apply: one past its latest time expires instead).
                    tx.execute(
                        "UPDATE outbox SET state = 'pending', reason = NULL, updated_at = ?4
                         WHERE appointment_id = ?1 AND state = 'skipped' AND reason = ?2 AND updated_at = ?3",
                        params![row, skip_reason(&new), audit_at, t],
                    )?;
                }
                (new, Some(old))
            }
            ("response", Some(old), Some(new)) => {
                if response != new {
                    return Err(changed_since());
                }
                crate::model::Response::parse(&old)?;
                tx.execute(
                    "UPDATE appointments SET response = ?2, response_text = NULL, updated_at = ?4,
                        response_at = (SELECT max(at) FROM audit_log WHERE appointment_id = ?1 AND id < ?3
                                        AND action = 'response' AND new_value = ?2 AND ?2 != 'none')
                     WHERE id = ?1",
                    params![row, old, audit_id, t],
                )?;
                (new, Some(old))
            }
            ("arrived", _, _) => {
                if !arrived {
                    return Err(changed_since());
                }
                tx.execute(
                    "UPDATE appointments SET arrived_at = NULL, arrived_by = NULL, updated_at = ?2 WHERE id = ?1",
                    params![row, t],
                )?;
                ("arrived".to_string(), None)
            }
            _ => return Err(nothing()),
        };
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value)
             VALUES (?1, ?2, (SELECT patient_id FROM appointments WHERE id = ?2), ?3, 'undo', ?4, ?5)",
            params![t, row, actor, undone, restored],
        )?;
        tx.commit()?;
        Ok((undone, restored))
    }
}

/// The row a form named no longer exists.
fn gone() -> StoreError {
    StoreError::NotFound(
        "That appointment no longer exists (an upload may have removed it). Reload the page."
            .into(),
    )
}

/// Why a change at the desk skipped an appointment's pending reminders.
fn skip_reason(status: &str) -> String {
    format!("staff set the appointment to {status}")
}

/// Records what staff did about the appointment with row id `id`, inside `tx`: a call or a
/// note is an audit row (`None`); a confirmation taken by phone sets the response; arrival is
/// recorded beside the status; anything else sets the schedule status and skips the pending
/// reminders. `Some(old value)` when it changed. A no-show before the appointment's time, or
/// for a patient marked arrived, and arrival at an appointment that is not booked, are refused.
pub(super) fn apply_staff_action(
    tx: &Transaction<'_>,
    id: i64,
    action: StaffAction,
    note: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    let (starts_at, status, response, arrived): (i64, String, String, bool) = tx.query_row(
        "SELECT starts_at, status, response, arrived_at IS NOT NULL FROM appointments WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let t = now.timestamp();
    let audit = |what: &str, old: Option<&str>, new: Option<&str>| {
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, (SELECT patient_id FROM appointments WHERE id = ?2), ?3, ?4, ?5, ?6, ?7)",
            params![t, id, actor, what, old, new, note],
        )
    };
    match action {
        StaffAction::Called | StaffAction::Note => {
            audit(action.as_str(), None, None)?;
            return Ok(None);
        }
        StaffAction::NoShow if t < starts_at => {
            return Err(StoreError::Refused(
                "It is too early for a no-show: the appointment's time has not come yet, and the patient may still arrive. A no-show can be set once its start time has passed.".into(),
            ));
        }
        StaffAction::NoShow if arrived => {
            return Err(StoreError::Refused(
                "The patient was marked as arrived, so this is not a no-show. If the arrival was a mistake, undo it first.".into(),
            ));
        }
        StaffAction::Arrived if status != "booked" => {
            let is = match status.as_str() {
                "no_show" => "a no-show",
                "completed" => "completed",
                _ => "cancelled",
            };
            return Err(StoreError::Refused(format!(
                "This appointment is {is}, so the patient cannot be marked as arrived. If that is wrong, undo it first or change it in the practice system."
            )));
        }
        // A second press (a double click) changes nothing.
        StaffAction::Arrived if arrived => return Ok(None),
        StaffAction::Arrived => {
            tx.execute(
                "UPDATE appointments SET arrived_at = ?2, arrived_by = ?3, updated_at = ?2 WHERE id = ?1",
                params![id, t, actor],
            )?;
            audit("arrived", None, Some("arrived"))?;
            return Ok(Some("not arrived".into()));
        }
        StaffAction::Confirmed => {
            tx.execute(
                "UPDATE appointments SET response = 'confirmed', response_at = ?2, response_text = ?3, updated_at = ?2 WHERE id = ?1",
                params![id, t, note],
            )?;
            audit("response", Some(&response), Some("confirmed"))?;
            return Ok(Some(response));
        }
        StaffAction::Cancelled | StaffAction::Completed | StaffAction::NoShow => {}
    }
    let by = (action == StaffAction::Cancelled).then_some("clinic");
    tx.execute(
        "UPDATE appointments SET status = ?2, cancelled_by = ?3, status_at = ?4, updated_at = ?4 WHERE id = ?1",
        params![id, action.as_str(), by, t],
    )?;
    // A visit marked as completed is still asked about: its feedback request stays.
    tx.execute(
        "UPDATE outbox SET state = 'skipped', reason = ?2, updated_at = ?3
         WHERE appointment_id = ?1 AND state = 'pending' AND kind != 'reply_ack'
           AND NOT (kind = 'feedback' AND ?4 = 'completed')",
        params![id, skip_reason(action.as_str()), t, action.as_str()],
    )?;
    audit("status", Some(&status), Some(action.as_str()))?;
    Ok(Some(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store with one booked Mumbai appointment at `starts` and a pending reminder; the
    /// appointment's row id.
    fn one_appointment(starts: i64) -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Store::open(&dir.path().join("d.db")).expect("open");
        s.conn
            .execute_batch(&format!(
                "INSERT INTO clinics (id, key, display_name, time_zone, phone_region) VALUES (1, 'mumbai', 'M', 'Asia/Kolkata', 'IN');
                 INSERT INTO patients (id, clinic_id, external_id, name, phone, language, created_at, updated_at)
                   VALUES (1, 1, 'P-1', 'Priya', '+919876543210', 'mr', 0, 0);
                 INSERT INTO appointments (id, clinic_id, external_id, patient_id, starts_at, duration_min, status_at, created_at, updated_at)
                   VALUES (7, 1, 'MUM-1', 1, {starts}, 15, 0, 0, 0);
                 INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, created_at, updated_at)
                   VALUES (7, 'reminder', 'day-before', {starts}, {starts} - 86400, {starts}, 0, 0);"
            ))
            .expect("seed");
        (dir, s, 7)
    }

    fn value(s: &Store, sql: &str) -> String {
        s.conn
            .query_row(sql, (), |r| r.get::<_, Option<String>>(0))
            .expect(sql)
            .unwrap_or_default()
    }

    #[test]
    fn a_no_show_waits_for_the_appointments_time_whoever_asks() {
        let starts = 1_800_000_000;
        let (_dir, mut s, id) = one_appointment(starts);
        let early = crate::time::from_unix(starts - 60);
        let err = s
            .set_status(
                Some("mumbai"),
                "MUM-1",
                StaffAction::NoShow,
                None,
                "staff:asha",
                early,
            )
            .expect_err("refused before its time");
        assert!(
            matches!(&err, StoreError::Refused(why) if why.contains("too early for a no-show")),
            "{err}"
        );
        assert!(
            s.set_status_row(id, StaffAction::NoShow, None, "staff:asha", early)
                .is_err()
        );
        assert_eq!(value(&s, "SELECT status FROM appointments"), "booked");
        assert_eq!(
            value(&s, "SELECT CAST(count(*) AS TEXT) FROM audit_log"),
            "0"
        );
        let late = crate::time::from_unix(starts + 60);
        assert_eq!(
            s.set_status_row(
                id,
                StaffAction::NoShow,
                Some("did not come"),
                "staff:asha",
                late
            )
            .expect("after its time"),
            Some(("mumbai".into(), "booked".into()))
        );
        assert_eq!(value(&s, "SELECT status FROM appointments"), "no_show");
    }

    #[test]
    fn undo_restores_the_old_status_and_the_reminders_the_change_skipped() {
        let starts = 1_800_000_000;
        let (_dir, mut s, id) = one_appointment(starts);
        let t = crate::time::from_unix(starts - 7200);
        s.set_status_row(
            id,
            StaffAction::Cancelled,
            Some("by mistake"),
            "staff:asha",
            t,
        )
        .expect("cancel");
        assert_eq!(value(&s, "SELECT state FROM outbox"), "skipped");
        let undone = s
            .undo_desk_status(id, "staff:ravi", t + chrono::Duration::minutes(1))
            .expect("undo");
        assert_eq!(
            undone,
            ("cancelled".to_string(), Some("booked".to_string()))
        );
        assert_eq!(
            value(
                &s,
                "SELECT status || '/' || coalesce(cancelled_by, '-') FROM appointments"
            ),
            "booked/-"
        );
        assert_eq!(value(&s, "SELECT state FROM outbox"), "pending");
        assert_eq!(
            value(
                &s,
                "SELECT actor || ' ' || action || ' ' || old_value || '→' || new_value FROM audit_log ORDER BY id DESC LIMIT 1"
            ),
            "staff:ravi undo cancelled→booked"
        );
        // An undo is not undone, and nothing else is left to undo.
        let again = s.undo_desk_status(id, "staff:ravi", t + chrono::Duration::minutes(2));
        assert!(matches!(again, Err(StoreError::Refused(_))), "{again:?}");
        // The note typed with the cancellation stays, with who and when.
        let notes = s.notes(&[id]).expect("notes");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(
            (
                notes[0].by.as_str(),
                notes[0].action.as_str(),
                notes[0].text.as_deref(),
                notes[0].at
            ),
            ("asha", "cancelled", Some("by mistake"), t)
        );
    }

    #[test]
    fn arrival_is_kept_beside_the_status_and_undone_alone() {
        let starts = 1_800_000_000;
        let (_dir, mut s, id) = one_appointment(starts);
        let t = crate::time::from_unix(starts - 600);
        assert!(
            s.set_status_row(id, StaffAction::Arrived, None, "staff:asha", t)
                .expect("arrived")
                .is_some()
        );
        assert_eq!(
            s.set_status_row(id, StaffAction::Arrived, None, "staff:asha", t)
                .expect("twice"),
            None
        );
        assert_eq!(
            value(&s, "SELECT status || ' ' || arrived_by FROM appointments"),
            "booked staff:asha"
        );
        let late = crate::time::from_unix(starts + 600);
        assert!(matches!(
            s.set_status_row(id, StaffAction::NoShow, None, "staff:asha", late),
            Err(StoreError::Refused(_))
        ));
        assert_eq!(
            s.undo_desk_status(id, "staff:asha", late).expect("undo"),
            ("arrived".into(), None)
        );
        assert_eq!(
            value(&s, "SELECT coalesce(arrived_at, 'none') FROM appointments"),
            "none"
        );
        // A status set after an upload changed it is not undone over the upload.
        s.set_status_row(id, StaffAction::NoShow, None, "staff:asha", late)
            .expect("no-show");
        s.conn
            .execute_batch(
                "UPDATE appointments SET status = 'booked';
                 INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value) VALUES (0, 7, 'import:x.csv', 'reinstate', 'no_show', 'booked');",
            )
            .expect("an upload");
        assert!(matches!(
            s.undo_desk_status(id, "staff:asha", late),
            Err(StoreError::Refused(_))
        ));
    }

    #[test]
    fn a_confirmation_taken_by_phone_is_undone_to_the_answer_before() {
        let starts = 1_800_000_000;
        let (_dir, mut s, id) = one_appointment(starts);
        let t = crate::time::from_unix(starts - 7200);
        s.set_status_row(
            id,
            StaffAction::Confirmed,
            Some("by phone"),
            "staff:asha",
            t,
        )
        .expect("confirmed");
        assert_eq!(value(&s, "SELECT response FROM appointments"), "confirmed");
        assert_eq!(
            s.undo_desk_status(id, "staff:asha", t).expect("undo"),
            ("confirmed".into(), Some("none".into()))
        );
        assert_eq!(
            value(
                &s,
                "SELECT response || '/' || coalesce(response_at, '-') || '/' || coalesce(response_text, '-') FROM appointments"
            ),
            "none/-/-"
        );
    }
}
