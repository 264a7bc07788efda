//! A send's writes, on a connection the caller holds in a transaction: the note that its
//! request is going out, and its outcome (shared by `Store::record_outcome` and the grouped
//! `Store::write_sends`).

use crate::store::sql::{OptionalExtension as _, params};
use chrono::{DateTime, Utc};

use super::StoreError;
use super::outbox::Outcome;

/// [`Store::mark_requested`] on `conn`, inside the caller's transaction or savepoint.
pub(super) fn mark_requested_on(
    conn: &crate::store::sql::Conn,
    id: i64,
    epoch: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET request_at = ?2 WHERE id = ?1 AND state = 'sending' AND claim_epoch = ?3",
        )?
        .execute(params![id, now.timestamp(), epoch])?
        == 1)
}

/// Whether row `id` still carries the claim `epoch`: a claim taken over by another instance
/// (after the grace period, its holder presumed dead) is not this send's to finish.
fn still_claimed(conn: &crate::store::sql::Conn, id: i64, epoch: i64) -> Result<bool, StoreError> {
    let now: Option<i64> = conn
        .prepare_cached("SELECT claim_epoch FROM outbox WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(now == Some(epoch))
}

/// [`Store::record_outcome`] on `conn`, inside the caller's transaction or savepoint.
pub(super) fn record_outcome_on(
    conn: &crate::store::sql::Conn,
    id: i64,
    epoch: i64,
    outcome: &Outcome,
    language: Option<&str>,
    params_json: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if !still_claimed(conn, id, epoch)? {
        // The status webhook settles what this send did (its callback data names the row).
        tracing::warn!(
            outbox = id,
            "a send's outcome came after its claim was taken over; left to the delivery status"
        );
        return Ok(());
    }
    let t = now.timestamp();
    match outcome {
        Outcome::Sent { wamid, wa_id } => conn
            .prepare_cached(
                    // A status webhook may already have moved the row on (found by callback data).
                    "UPDATE outbox SET state = CASE WHEN state IN ('sending', 'unknown') THEN 'sent' ELSE state END,
                        wamid = ?2, wa_id = ?3, sent_at = coalesce(sent_at, ?4), language = ?5, params = ?6,
                        last_error = NULL, last_error_code = NULL, updated_at = ?4
                     WHERE id = ?1",
                )?
                .execute(params![id, wamid, wa_id, t, language, params_json])?,
            Outcome::Retry { at, code, error } => conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, last_error_code = ?3, last_error = ?4, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, at.timestamp(), code, error, t],
            )?,
            Outcome::Failed { code, error, needs_staff } => conn.execute(
                "UPDATE outbox SET state = 'failed', failed_at = ?5, last_error_code = ?2, last_error = ?3, needs_staff = ?4,
                    language = ?6, params = ?7, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, code, error, needs_staff, t, language, params_json],
            )?,
            Outcome::Unknown { error } => conn.execute(
                "UPDATE outbox SET state = 'unknown', last_error = ?2, language = ?3, params = ?4, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, error, language, params_json, t],
            )?,
            Outcome::Expired { reason } => conn.execute(
                "UPDATE outbox SET state = 'expired', reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'sending'",
                params![id, reason, t],
            )?,
            Outcome::Released { reason } => conn.execute(
                "UPDATE outbox SET state = 'pending', attempts = attempts - 1, reason = ?2, updated_at = ?3
                 WHERE id = ?1 AND state = 'sending'",
                params![id, reason, t],
            )?,
            Outcome::FellBack { code, error, fallback } => {
                let n = conn.execute(
                    "UPDATE outbox SET state = 'failed', failed_at = ?4, last_error_code = ?2, last_error = ?3,
                        language = ?5, params = ?6, updated_at = ?4
                     WHERE id = ?1 AND state = 'sending'",
                    params![id, code, error, t, language, params_json],
                )?;
                if n == 1 {
                    super::outbox::write_fallback(conn, id, fallback, error, now)?;
                }
                n
            }
            Outcome::Blocked { code, error, needs_staff, until } => {
                let n = conn.execute(
                    "UPDATE outbox SET state = 'failed', failed_at = ?5, last_error_code = ?2, last_error = ?3, needs_staff = ?4,
                        language = ?6, params = ?7, updated_at = ?5
                     WHERE id = ?1 AND state = 'sending'",
                    params![id, code, error, needs_staff, t, language, params_json],
                )?;
                if n == 1 {
                    super::outbox::record_off_whatsapp(conn, id, *until, error, now)?;
                }
                n
            }
            Outcome::Unsubscribed { code, error, needs_staff } => {
                let n = conn.execute(
                    "UPDATE outbox SET state = 'failed', failed_at = ?5, last_error_code = ?2, last_error = ?3, needs_staff = ?4,
                        language = ?6, params = ?7, updated_at = ?5
                     WHERE id = ?1 AND state = 'sending'",
                    params![id, code, error, needs_staff, t, language, params_json],
                )?;
                if n == 1 {
                    let source = code.map_or_else(|| "provider".to_string(), |c| format!("provider {c}"));
                    super::outbox::record_sms_opt_out(conn, id, &source, now)?;
                }
                n
            }
        };
    Ok(())
}
