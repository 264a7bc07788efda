//! The front desk's tables: staff accounts, sessions, upload previews, and the day board's
//! and staff actions' queries.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{ImportTx, Store, StoreError};

/// A staff account as sign-in needs it.
#[derive(Debug, Clone)]
pub struct StaffLogin {
    /// Row id.
    pub id: i64,
    /// The name as stored (sign-in ignores case).
    pub name: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Failed sign-ins in a row.
    pub failed_logins: i64,
    /// Sign-in refused before this.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A staff account as `reminderd user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffView {
    /// The name.
    pub name: String,
    /// Failed sign-ins in a row.
    pub failed_logins: i64,
    /// Locked until (UTC), if locked now or earlier.
    pub locked_until: Option<DateTime<Utc>>,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The staff member's row id.
    pub user_id: i64,
    /// The staff member's name.
    pub user: String,
    /// The token this session's forms must carry.
    pub csrf: String,
}

/// An upload waiting for its confirm or discard.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Random token.
    pub token: String,
    /// Who uploaded it.
    pub user_id: i64,
    /// Clinic for rows that name none.
    pub clinic: Option<String>,
    /// The file's name as uploaded.
    pub file_name: String,
    /// The file's bytes.
    pub body: Vec<u8>,
    /// The file is the whole schedule for its dates.
    pub complete: bool,
    /// What the preview showed (the import's fingerprint).
    pub summary: String,
    /// confirmed, discarded or changed, once decided.
    pub decision: Option<String>,
}

/// One appointment on the day board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    /// Row id (reveal and actions name it).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: i64,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number (E.164); pages mask it unless revealed.
    pub phone: String,
    /// Patient's language.
    pub language: String,
    /// Who it is with.
    pub provider: Option<String>,
    /// booked, cancelled, completed, no_show.
    pub status: String,
    /// none, confirmed, declined, reschedule_requested.
    pub response: String,
    /// The patient opted out of messages.
    pub opted_out: bool,
    /// State of the appointment's latest reminder or confirmation (sent, delivered, ...).
    pub last_message: Option<String>,
    /// The latest staff note or call, as "who: text".
    pub last_note: Option<String>,
}

impl Store {
    /// Adds a staff account; `false` if the name is taken (in any case).
    pub fn add_staff(
        &mut self,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO staff_users (name, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![name, password_hash, now.timestamp()],
        )?;
        Ok(n == 1)
    }

    /// Replaces a password, lifts any lock-out and signs the account out everywhere;
    /// `false` if there is no such account.
    pub fn set_staff_password(
        &mut self,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE staff_users SET password_hash = ?2, failed_logins = 0, locked_until = NULL, updated_at = ?3 WHERE name = ?1",
            params![name, password_hash, now.timestamp()],
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE user_id = (SELECT id FROM staff_users WHERE name = ?1)",
            params![name],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Every staff account, by name.
    pub fn staff(&self) -> Result<Vec<StaffView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, failed_logins, locked_until, created_at FROM staff_users ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(StaffView {
                name: r.get(0)?,
                failed_logins: r.get(1)?,
                locked_until: r.get::<_, Option<i64>>(2)?.map(crate::time::from_unix),
                created_at: crate::time::from_unix(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The account signing in under `name` (any case).
    pub fn staff_login(&self, name: &str) -> Result<Option<StaffLogin>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, password_hash, failed_logins, locked_until FROM staff_users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(StaffLogin {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                        failed_logins: r.get(3)?,
                        locked_until: r.get::<_, Option<i64>>(4)?.map(crate::time::from_unix),
                    })
                },
            )
            .optional()?)
    }

    /// Counts a failed sign-in; the `max`th in a row locks the account until `lock_until`.
    /// Returns the lock's end when this failure locked it.
    pub fn staff_login_failed(
        &mut self,
        user_id: i64,
        max: i64,
        lock_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let tx = self.conn.transaction()?;
        let failed: i64 = tx.query_row(
            "UPDATE staff_users SET failed_logins = failed_logins + 1, updated_at = ?2 WHERE id = ?1 RETURNING failed_logins",
            params![user_id, now.timestamp()],
            |r| r.get(0),
        )?;
        let locked = failed >= max;
        if locked {
            tx.execute(
                "UPDATE staff_users SET locked_until = ?2, failed_logins = 0 WHERE id = ?1",
                params![user_id, lock_until.timestamp()],
            )?;
        }
        let name: String = tx.query_row(
            "SELECT name FROM staff_users WHERE id = ?1",
            params![user_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, ?3, ?4)",
            params![
                now.timestamp(),
                format!("staff:{name}"),
                if locked {
                    "locked_out"
                } else {
                    "sign_in_failed"
                },
                failed.to_string()
            ],
        )?;
        tx.commit()?;
        Ok(locked.then_some(lock_until))
    }

    /// Opens a session after a good password: clears the failure count and audits it.
    pub fn start_session(
        &mut self,
        user_id: i64,
        token_hash: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let t = now.timestamp();
        tx.execute(
            "UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = ?1",
            params![user_id],
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE expires_at <= ?1",
            params![t],
        )?;
        tx.execute(
            "INSERT INTO staff_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![token_hash, user_id, csrf, t, expires_at.timestamp()],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, actor, action) SELECT ?1, 'staff:' || name, 'sign_in' FROM staff_users WHERE id = ?2",
            params![t, user_id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The unexpired session whose cookie hashes to `token_hash`.
    pub fn session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.user_id, u.name, s.csrf FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
        )?;
        Ok(stmt
            .query_row(params![token_hash, now.timestamp()], |r| {
                Ok(Session {
                    user_id: r.get(0)?,
                    user: r.get(1)?,
                    csrf: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// Signs a browser out.
    pub fn end_session(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO audit_log (at, actor, action)
             SELECT ?2, 'staff:' || u.name, 'sign_out' FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id WHERE s.token_hash = ?1",
            params![token_hash, now.timestamp()],
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE token_hash = ?1",
            params![token_hash],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps an uploaded file until it is confirmed or discarded.
    pub fn save_preview(&mut self, p: &Preview, now: DateTime<Utc>) -> Result<(), StoreError> {
        // Undecided previews older than a day are abandoned: their files need not be kept.
        self.conn.execute(
            "DELETE FROM import_previews WHERE decided_at IS NULL AND created_at < ?1",
            params![now.timestamp() - 86_400],
        )?;
        self.conn.execute(
            "INSERT INTO import_previews (token, user_id, clinic, file_name, body, complete, summary, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                p.token,
                p.user_id,
                p.clinic,
                p.file_name,
                p.body,
                p.complete,
                p.summary,
                now.timestamp()
            ],
        )?;
        Ok(())
    }

    /// A preview by its token.
    pub fn preview(&self, token: &str) -> Result<Option<Preview>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT token, user_id, clinic, file_name, body, complete, summary, decision FROM import_previews WHERE token = ?1",
                params![token],
                |r| {
                    Ok(Preview {
                        token: r.get(0)?,
                        user_id: r.get(1)?,
                        clinic: r.get(2)?,
                        file_name: r.get(3)?,
                        body: r.get(4)?,
                        complete: r.get(5)?,
                        summary: r.get(6)?,
                        decision: r.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Closes an undecided preview without importing (`discarded`, or `changed` when the
    /// schedule moved on since it was shown). Returns the earlier decision if there was one.
    pub fn close_preview(
        &mut self,
        token: &str,
        decision: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE import_previews SET decision = ?2, decided_at = ?3 WHERE token = ?1 AND decided_at IS NULL",
            params![token, decision, now.timestamp()],
        )?;
        let earlier = if n == 0 {
            tx.query_row(
                "SELECT decision FROM import_previews WHERE token = ?1",
                params![token],
                |r| r.get(0),
            )
            .optional()?
            .flatten()
        } else {
            tx.execute(
                "INSERT INTO audit_log (at, actor, action, new_value) SELECT ?1, ?2, 'upload_' || ?3, file_name FROM import_previews WHERE token = ?4",
                params![now.timestamp(), actor, decision, token],
            )?;
            None
        };
        tx.commit()?;
        Ok(earlier)
    }

    /// Writes a staff action to the audit log.
    pub fn audit_staff(
        &mut self,
        actor: &str,
        action: &str,
        appointment: Option<i64>,
        new_value: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
             VALUES (?1, ?2, (SELECT patient_id FROM appointments WHERE id = ?2), ?3, ?4, ?5, ?6)",
            params![now.timestamp(), appointment, actor, action, new_value, reason],
        )?;
        Ok(())
    }

    /// One clinic's appointments starting in `[from, to)`, in time order, with the state of
    /// each one's latest message and latest staff note.
    pub fn board(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<BoardRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.external_id, a.starts_at, a.duration_min, p.name, p.phone, p.language, a.provider,
                    a.status, a.response, p.opted_out_at IS NOT NULL,
                    (SELECT o.state FROM outbox o WHERE o.appointment_id = a.id AND o.kind != 'reply_ack'
                      AND o.state NOT IN ('pending', 'skipped', 'expired')
                      ORDER BY coalesce(o.request_at, o.send_at) DESC, o.id DESC LIMIT 1),
                    (SELECT substr(l.actor, 7) || ': '
                            || CASE WHEN l.action = 'called' THEN 'called' || coalesce(' — ' || l.reason, '') ELSE coalesce(l.reason, '') END
                       FROM audit_log l WHERE l.appointment_id = a.id AND l.action IN ('called', 'note')
                       ORDER BY l.id DESC LIMIT 1)
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.external_id",
        )?;
        let rows = stmt.query_map(params![clinic, from.timestamp(), to.timestamp()], |r| {
            Ok(BoardRow {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                duration_min: r.get(3)?,
                patient_name: r.get(4)?,
                phone: r.get(5)?,
                language: r.get(6)?,
                provider: r.get(7)?,
                status: r.get(8)?,
                response: r.get(9)?,
                opted_out: r.get(10)?,
                last_message: r.get(11)?,
                last_note: r.get(12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An appointment's clinic key and the clinic system's id, by row id (what a reveal logs).
    pub fn appointment_ref(&self, id: i64) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT c.key, a.external_id FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE a.id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// An appointment's row id by clinic key and the clinic system's id.
    pub fn appointment_row(
        &self,
        clinic: &str,
        appointment: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT a.id FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE c.key = ?1 AND a.external_id = ?2",
                params![clinic, appointment],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Marks a reply that needed a person as dealt with; `false` if it was not waiting.
    pub fn handle_reply(
        &mut self,
        reply_id: i64,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE replies SET handled_by = ?2, handled_at = ?3
             WHERE id = ?1 AND outcome = 'needs_staff' AND handled_by IS NULL",
            params![reply_id, actor, now.timestamp()],
        )?;
        if n == 1 {
            tx.execute(
                "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, new_value, reason)
                 SELECT ?1, appointment_id, patient_id, ?2, 'reply_handled', text, ?3 FROM replies WHERE id = ?4",
                params![now.timestamp(), actor, note, reply_id],
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }
}

impl ImportTx<'_> {
    /// Marks a preview confirmed by this import, inside the import's transaction. `Err`
    /// carries the earlier decision when the preview was already decided (or is unknown).
    pub fn settle_preview(
        &self,
        token: &str,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<(), String>, StoreError> {
        let n = self.tx.execute(
            "UPDATE import_previews SET decision = 'confirmed', decided_at = ?2, import_id = ?3
             WHERE token = ?1 AND decided_at IS NULL",
            params![token, now.timestamp(), import_id],
        )?;
        if n == 1 {
            return Ok(Ok(()));
        }
        let earlier: Option<Option<String>> = self
            .tx
            .query_row(
                "SELECT decision FROM import_previews WHERE token = ?1",
                params![token],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Err(earlier
            .flatten()
            .unwrap_or_else(|| "removed".to_string())))
    }
}
