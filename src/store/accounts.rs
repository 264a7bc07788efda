//! Staff accounts, sign-in attempts, sessions and upload previews.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Utc};

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
}

/// A staff account as `reminderd user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffView {
    /// The name.
    pub name: String,
    /// Sign-in with this name is paused until then (UTC) from some address, if it is now.
    pub locked_until: Option<DateTime<Utc>>,
    /// Disabled since (`reminderd user disable`); `None`: may sign in.
    pub disabled_at: Option<DateTime<Utc>>,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

/// How many sign-in attempts are checked: each is counted before its password is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Attempts per name from one client address in a window (`desk.max_failed_logins`).
    pub per_client: i64,
    /// Attempts per name from all addresses together in a window
    /// (`desk.max_failed_logins_per_name`).
    pub per_name: i64,
    /// How long a count lasts, and how long sign-in is paused once it is used up
    /// (`desk.lockout`).
    pub window: chrono::Duration,
}

/// What sign-in may do with an attempt, decided before its password is checked.
#[derive(Debug, Clone)]
pub enum SignInTicket {
    /// Counted: check the password. `account` is `None` for a name that does not exist or is
    /// disabled (check a decoy, so the answer and its timing are the same); `last` when this
    /// attempt used up the allowance, so the next ones are paused.
    Check {
        /// The enabled account with this name.
        account: Option<StaffLogin>,
        /// This attempt was the last one allowed in its window.
        last: bool,
    },
    /// Too many attempts: refused unchecked until then.
    Paused(DateTime<Utc>),
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
    /// What the account may do.
    pub role: crate::model::Role,
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
    /// The import a confirm made.
    pub import_id: Option<i64>,
}

impl Store {
    /// Adds a staff account; `false` if the name is taken (in any case).
    pub fn add_staff(
        &mut self,
        name: &str,
        password_hash: &str,
        role: crate::model::Role,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO staff_users (name, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?4, ?3, ?3)
             ON CONFLICT (name) DO NOTHING",
            params![name, password_hash, now.timestamp(), role.as_str()],
        )?;
        Ok(n == 1)
    }

    /// Replaces a password, lifts any sign-in pause for the name and signs the account out
    /// everywhere; `false` if there is no such account.
    pub fn set_staff_password(
        &mut self,
        name: &str,
        password_hash: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction()?;
        let t = now.timestamp();
        let n = tx.execute(
            "UPDATE staff_users SET password_hash = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, password_hash, t],
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE user_id = (SELECT id FROM staff_users WHERE name = ?1)",
            params![name],
        )?;
        tx.execute(
            "DELETE FROM sign_in_attempts WHERE name = ?1",
            params![name],
        )?;
        if n == 1 {
            tx.execute(
                "INSERT INTO audit_log (at, actor, action, new_value) SELECT ?1, ?2, 'password_changed', name FROM staff_users WHERE name = ?3",
                params![t, actor, name],
            )?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Disables (`true`) or enables an account; disabling ends its sessions at once.
    /// `None` if there is no such account, else whether anything changed (a change is audited
    /// with the account's name).
    pub fn set_staff_disabled(
        &mut self,
        name: &str,
        disabled: bool,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let tx = self.conn.transaction()?;
        let t = now.timestamp();
        let Some((id, stored)) = account_by_name(&tx, name)? else {
            return Ok(None);
        };
        let n = if disabled {
            tx.execute(
                "UPDATE staff_users SET disabled_at = ?2, updated_at = ?2 WHERE id = ?1 AND disabled_at IS NULL",
                params![id, t],
            )?
        } else {
            tx.execute(
                "UPDATE staff_users SET disabled_at = NULL, updated_at = ?2 WHERE id = ?1 AND disabled_at IS NOT NULL",
                params![id, t],
            )?
        };
        if disabled {
            tx.execute("DELETE FROM staff_sessions WHERE user_id = ?1", params![id])?;
        }
        if n == 1 {
            tx.execute(
                "INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, ?3, ?4)",
                params![
                    t,
                    actor,
                    if disabled {
                        "user_disabled"
                    } else {
                        "user_enabled"
                    },
                    stored
                ],
            )?;
        }
        tx.commit()?;
        Ok(Some(n == 1))
    }

    /// Removes an account: its sessions end, its uploads awaiting a decision are dropped, and
    /// the audit log (which names staff as `staff:<name>`) keeps its trail. Returns the name as
    /// stored, or `None` if there is no such account.
    pub fn remove_staff(
        &mut self,
        name: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let Some((id, stored)) = account_by_name(&tx, name)? else {
            return Ok(None);
        };
        // Previews refer to their uploader; a confirmed one's import keeps `imported_by`.
        tx.execute(
            "DELETE FROM import_previews WHERE user_id = ?1",
            params![id],
        )?;
        // Sessions go with the account (ON DELETE CASCADE).
        tx.execute("DELETE FROM staff_users WHERE id = ?1", params![id])?;
        tx.execute(
            "DELETE FROM sign_in_attempts WHERE name = ?1",
            params![stored],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, 'user_removed', ?3)",
            params![now.timestamp(), actor, stored],
        )?;
        tx.commit()?;
        Ok(Some(stored))
    }

    /// Every staff account, by name, with any sign-in pause in force at `now`.
    pub fn staff(&self, now: DateTime<Utc>) -> Result<Vec<StaffView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.name, (SELECT max(a.locked_until) FROM sign_in_attempts a WHERE a.name = u.name AND a.locked_until > ?1),
                    u.disabled_at, u.created_at
             FROM staff_users u ORDER BY u.name",
        )?;
        let rows = stmt.query_map(params![now.timestamp()], |r| {
            Ok(StaffView {
                name: r.get(0)?,
                locked_until: r.get::<_, Option<i64>>(1)?.map(crate::time::from_unix),
                disabled_at: r.get::<_, Option<i64>>(2)?.map(crate::time::from_unix),
                created_at: crate::time::from_unix(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The account named `name` (any case), enabled or not.
    pub fn staff_login(&self, name: &str) -> Result<Option<StaffLogin>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, name, password_hash FROM staff_users WHERE name = ?1",
                params![name],
                |r| {
                    Ok(StaffLogin {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Counts a sign-in attempt for `name` (as typed, known or not) from `client` before its
    /// password is checked, in one transaction, so that however many arrive at once at most
    /// `limits.per_client` per address (and `limits.per_name` from all addresses) are ever
    /// checked in a window. Counts whose window and pause have passed are deleted first.
    pub fn reserve_sign_in(
        &mut self,
        name: &str,
        client: &str,
        limits: SignInLimits,
        now: DateTime<Utc>,
    ) -> Result<SignInTicket, StoreError> {
        let tx = self.conn.transaction()?;
        let (t, window) = (now.timestamp(), limits.window.num_seconds());
        tx.execute(
            "DELETE FROM sign_in_attempts
             WHERE CASE WHEN locked_until IS NULL THEN window_start + ?2 <= ?1 ELSE locked_until <= ?1 END",
            params![t, window],
        )?;
        let paused: Option<i64> = tx.query_row(
            "SELECT max(locked_until) FROM sign_in_attempts WHERE name = ?1 AND client IN (?2, '*')",
            params![name, client],
            |r| r.get(0),
        )?;
        if let Some(until) = paused {
            tx.commit()?;
            return Ok(SignInTicket::Paused(crate::time::from_unix(until)));
        }
        let mut last = false;
        for (who, max) in [(client, limits.per_client), ("*", limits.per_name)] {
            let n: i64 = tx.query_row(
                "INSERT INTO sign_in_attempts (name, client, attempts, window_start) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (name, client) DO UPDATE SET attempts = sign_in_attempts.attempts + 1 RETURNING attempts",
                params![name, who, t],
                |r| r.get(0),
            )?;
            if n >= max {
                tx.execute(
                    "UPDATE sign_in_attempts SET locked_until = ?3 WHERE name = ?1 AND client = ?2",
                    params![name, who, t + window],
                )?;
                last = true;
            }
        }
        let account = tx
            .query_row(
                "SELECT id, name, password_hash FROM staff_users WHERE name = ?1 AND disabled_at IS NULL",
                params![name],
                |r| {
                    Ok(StaffLogin {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
            .optional()?;
        tx.commit()?;
        Ok(SignInTicket::Check { account, last })
    }

    /// Audits a wrong password for an existing account: `locked_out` when it used up the
    /// allowance, else `sign_in_failed`, with the client's address.
    pub fn sign_in_failed(
        &mut self,
        user: &str,
        locked: bool,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO audit_log (at, actor, action, reason) VALUES (?1, ?2, ?3, ?4)",
            params![
                now.timestamp(),
                format!("staff:{user}"),
                if locked {
                    "locked_out"
                } else {
                    "sign_in_failed"
                },
                format!("from {client}")
            ],
        )?;
        Ok(())
    }

    /// Opens a session after a good password: the attempt no longer counts against `typed`
    /// from `client`, sessions expired or idle for `idle` are deleted, and the sign-in is
    /// audited.
    #[allow(clippy::too_many_arguments)]
    pub fn start_session(
        &mut self,
        user_id: i64,
        typed: &str,
        client: &str,
        token_hash: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        idle: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let t = now.timestamp();
        tx.execute(
            "DELETE FROM sign_in_attempts WHERE name = ?1 AND client = ?2",
            params![typed, client],
        )?;
        tx.execute(
            "UPDATE sign_in_attempts SET attempts = max(attempts - 1, 0) WHERE name = ?1 AND client = '*'",
            params![typed],
        )?;
        tx.execute(
            "DELETE FROM staff_sessions WHERE expires_at <= ?1 OR coalesce(last_seen_at, created_at) <= ?1 - ?2",
            params![t, idle.num_seconds()],
        )?;
        tx.execute(
            "INSERT INTO staff_sessions (token_hash, user_id, csrf, created_at, expires_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
            params![token_hash, user_id, csrf, t, expires_at.timestamp()],
        )?;
        tx.execute(
            "INSERT INTO audit_log (at, actor, action, reason) SELECT ?1, 'staff:' || name, 'sign_in', ?3 FROM staff_users WHERE id = ?2",
            params![t, user_id, format!("from {client}")],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The session whose cookie hashes to `token_hash`, if it has not expired, was used within
    /// `idle`, and its account is enabled. Its last use is written at most once a minute, so
    /// that not every page view writes to the database.
    pub fn session(
        &mut self,
        token_hash: &str,
        idle: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let t = now.timestamp();
        let found = self
            .conn
            .prepare_cached(
                "SELECT s.user_id, u.name, s.csrf, coalesce(s.last_seen_at, s.created_at), u.role
                 FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND coalesce(s.last_seen_at, s.created_at) > ?2 - ?3
                   AND u.disabled_at IS NULL",
            )?
            .query_row(params![token_hash, t, idle.num_seconds()], |r| {
                Ok((
                    Session {
                        user_id: r.get(0)?,
                        user: r.get(1)?,
                        csrf: r.get(2)?,
                        role: crate::model::Role::parse(&r.get::<_, String>(4)?)
                            .unwrap_or(crate::model::Role::Staff),
                    },
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        let Some((session, seen)) = found else {
            return Ok(None);
        };
        if t - seen >= 60 {
            self.conn.execute(
                "UPDATE staff_sessions SET last_seen_at = ?2 WHERE token_hash = ?1",
                params![token_hash, t],
            )?;
        }
        Ok(Some(session))
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

    /// A preview by its token; an undecided one older than a day has expired (the next
    /// upload deletes it) and is not found.
    pub fn preview(&self, token: &str, now: DateTime<Utc>) -> Result<Option<Preview>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT token, user_id, clinic, file_name, body, complete, summary, decision, import_id
                 FROM import_previews
                 WHERE token = ?1 AND (decided_at IS NOT NULL OR created_at >= ?2)",
                params![token, now.timestamp() - 86_400],
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
                        import_id: r.get(8)?,
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

    /// Each account's role, by name.
    pub fn staff_roles(&self) -> Result<Vec<(String, crate::model::Role)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role FROM staff_users ORDER BY name")?;
        let rows = stmt
            .query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(n, r)| Ok((n, crate::model::Role::parse(&r)?)))
            .collect()
    }

    /// Gives account `name` the role `role`, audited: `None` when there is no such account,
    /// `Some(false)` when it had that role already. Its sign-ins end, so the new role holds
    /// from the next page on.
    pub fn set_staff_role(
        &mut self,
        name: &str,
        role: crate::model::Role,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, StoreError> {
        let tx = self.conn.transaction()?;
        let Some((id, stored)) = account_by_name(&tx, name)? else {
            return Ok(None);
        };
        let n = tx.execute(
            "UPDATE staff_users SET role = ?2, updated_at = ?3 WHERE id = ?1 AND role != ?2",
            params![id, role.as_str(), now.timestamp()],
        )?;
        if n == 1 {
            tx.execute("DELETE FROM staff_sessions WHERE user_id = ?1", params![id])?;
            tx.execute(
                "INSERT INTO audit_log (at, actor, action, new_value, reason) VALUES (?1, ?2, 'user_role', ?3, ?4)",
                params![now.timestamp(), actor, role.as_str(), stored],
            )?;
        }
        tx.commit()?;
        Ok(Some(n == 1))
    }
}

/// The row id and stored spelling of account `name` (names match in any case).
fn account_by_name(
    tx: &crate::store::sql::Transaction<'_>,
    name: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, name FROM staff_users WHERE name = ?1",
            params![name],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?)
}

impl ImportTx<'_> {
    /// A staff action about the import as a whole (no appointment), in its transaction.
    pub fn audit_staff(
        &self,
        actor: &str,
        action: &str,
        new_value: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO audit_log (at, actor, action, new_value, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now.timestamp(), actor, action, new_value, reason],
        )?;
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(s: &mut Store, name: &str, client: &str, at: DateTime<Utc>) -> SignInTicket {
        let limits = SignInLimits {
            per_client: 3,
            per_name: 5,
            window: chrono::Duration::minutes(15),
        };
        s.reserve_sign_in(name, client, limits, at)
            .expect("reserve")
    }

    fn last(t: &SignInTicket) -> bool {
        match t {
            SignInTicket::Check { last, .. } => *last,
            SignInTicket::Paused(_) => panic!("paused: {t:?}"),
        }
    }

    #[test]
    fn sign_in_attempts_count_per_address_and_per_name_then_start_afresh() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Store::open(&dir.path().join("d.db")).expect("open");
        let t0 = crate::time::from_unix(1_800_000_000);
        let minutes = chrono::Duration::minutes;
        assert!(
            s.add_staff("alice", "phc", crate::model::Role::Staff, t0)
                .expect("add")
        );

        // Three from one address (any case of the name): the third is the last, then paused.
        for (i, name) in ["alice", "ALICE", "Alice"].into_iter().enumerate() {
            let t = ticket(&mut s, name, "10.0.0.1", t0);
            assert!(
                matches!(&t, SignInTicket::Check { account: Some(a), .. } if a.name == "alice")
            );
            assert_eq!(last(&t), i == 2);
        }
        assert!(matches!(
            ticket(&mut s, "alice", "10.0.0.1", t0 + minutes(1)),
            SignInTicket::Paused(u) if u == t0 + minutes(15)
        ));
        // Another address has its own count, until the name's overall one (5) is used up.
        assert!(!last(&ticket(&mut s, "alice", "10.0.0.2", t0)));
        assert!(last(&ticket(&mut s, "alice", "10.0.0.2", t0)));
        assert!(matches!(
            ticket(&mut s, "alice", "10.0.0.3", t0),
            SignInTicket::Paused(_)
        ));
        // Once the pause has passed, counting starts afresh.
        assert!(!last(&ticket(
            &mut s,
            "alice",
            "10.0.0.1",
            t0 + minutes(15)
        )));

        // Unknown and disabled names are counted alike and have no account.
        assert!(matches!(
            ticket(&mut s, "nobody", "10.0.0.1", t0),
            SignInTicket::Check {
                account: None,
                last: false
            }
        ));
        assert_eq!(
            s.set_staff_disabled("alice", true, "admin:test", t0 + minutes(16))
                .expect("disable"),
            Some(true)
        );
        assert!(matches!(
            ticket(&mut s, "alice", "10.0.0.9", t0 + minutes(16)),
            SignInTicket::Check { account: None, .. }
        ));
        // A count's window ends desk.lockout after its first attempt.
        let t1 = t0 + minutes(60);
        assert!(!last(&ticket(&mut s, "nobody", "10.0.0.5", t1)));
        assert!(!last(&ticket(
            &mut s,
            "nobody",
            "10.0.0.5",
            t1 + minutes(10)
        )));
        assert!(!last(&ticket(
            &mut s,
            "nobody",
            "10.0.0.5",
            t1 + minutes(15)
        )));
    }
}
