//! What Meta said of the account's templates and of the account itself (the
//! `template_health` and `account_health` tables, schema 10), the messages held because of it,
//! and messages WhatsApp gave up on after their time to live.

use crate::store::sql::{OptionalExtension, params};
use chrono::{DateTime, Duration, Utc};

use super::{Store, StoreError};

/// The start of the reason on a message held because its template cannot be used: the desk
/// counts them by it.
pub const TEMPLATE_HOLD: &str = "held: Meta ";

/// One template's standing at Meta, per business account, name and language (`""`: the
/// event named none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateHealth {
    /// The business account whose template it is (`""`: every account's).
    pub waba_id: String,
    /// The template's name at Meta.
    pub name: String,
    /// Its language, or `""`.
    pub language: String,
    /// The last status event: `APPROVED`, `PAUSED`, ...
    pub status: Option<String>,
    /// The last quality score.
    pub quality: Option<String>,
    /// The category after the last completed change.
    pub category: Option<String>,
    /// A change Meta announced and has not made yet.
    pub impending_category: Option<String>,
    /// When that change takes effect.
    pub category_change_at: Option<DateTime<Utc>>,
    /// Meta's reason, as given.
    pub reason: Option<String>,
    /// When this row last changed.
    pub updated_at: DateTime<Utc>,
}

/// What one template event changes (absent fields are kept as they were).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateUpdate<'a> {
    /// The business account the event came in (`""`: it named none).
    pub waba_id: &'a str,
    /// The template's name at Meta.
    pub name: &'a str,
    /// Its language, or `""`.
    pub language: &'a str,
    /// A new status.
    pub status: Option<&'a str>,
    /// A new quality score.
    pub quality: Option<&'a str>,
    /// A completed category change (it also clears an announced one).
    pub category: Option<&'a str>,
    /// An announced category change and when it takes effect.
    pub impending: Option<(&'a str, Option<DateTime<Utc>>)>,
    /// Meta's reason.
    pub reason: Option<&'a str>,
    /// When Meta says it happened (`None`: when it arrived). An event older than what the
    /// row last recorded changes nothing: Meta retries, so a PAUSED may arrive after the
    /// REINSTATED that ended it.
    pub at: Option<DateTime<Utc>>,
}

/// Statuses that let a template be sent again: a per-language one also settles the row of
/// an event that named no language, which would otherwise keep every language stopped.
const RELEASING: &[&str] = &["APPROVED", "REINSTATED"];

/// A business account's standing (`account_health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHealth {
    /// The WhatsApp Business Account (`""`: an event that named none, which stops every
    /// number).
    pub waba_id: String,
    /// The last event that changed it.
    pub event: String,
    /// Sending must stop.
    pub blocked: bool,
    /// What Meta said.
    pub reason: Option<String>,
    /// When a restriction ends, when Meta said.
    pub until: Option<DateTime<Utc>>,
    /// When it was recorded.
    pub updated_at: DateTime<Utc>,
}

/// A business number's standing as Meta last reported it (`number_health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberHealth {
    /// The number as Meta shows it (digits).
    pub display_phone_number: String,
    /// The business account the event came in.
    pub waba_id: Option<String>,
    /// The last event: `THROUGHPUT_UPGRADE`, `FLAGGED`, `DOWNGRADE`, ...
    pub event: String,
    /// The messaging limit Meta last gave (`TIER_250` ... `TIER_UNLIMITED`).
    pub messaging_limit: Option<String>,
    /// When Meta says it happened (else when it arrived).
    pub updated_at: DateTime<Utc>,
}

impl AccountHealth {
    /// Whether this standing concerns the numbers of business account `waba_id`: it is that
    /// account's, or an event that named none.
    pub fn covers(&self, waba_id: &str) -> bool {
        self.waba_id.is_empty() || self.waba_id == waba_id
    }

    /// Whether sending is stopped at `now` (a restriction whose end has passed is over).
    pub fn blocks(&self, now: DateTime<Utc>) -> bool {
        self.blocked && self.until.is_none_or(|u| u > now)
    }
}

/// One row's part of [`Store::apply_template_update`]: an event older than the row's last
/// changes nothing.
fn update_template(
    tx: &crate::store::sql::Conn,
    u: &TemplateUpdate<'_>,
    event_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(Option<TemplateHealth>, TemplateHealth), StoreError> {
    let before = template_row(tx, u.waba_id, u.name, u.language)?;
    let at = u.at.unwrap_or(now);
    if let Some(b) = before.as_ref().filter(|b| b.updated_at > at) {
        return Ok((before.clone(), b.clone()));
    }
    let (impending, change_at) = match (u.impending, u.category) {
        (Some((c, at)), _) => (Some(c.to_string()), at.map(|t| t.timestamp())),
        // A completed change settles whatever was announced.
        (None, Some(_)) => (None, None),
        (None, None) => (
            before.as_ref().and_then(|b| b.impending_category.clone()),
            before
                .as_ref()
                .and_then(|b| b.category_change_at.map(|t| t.timestamp())),
        ),
    };
    tx.prepare_cached("INSERT INTO template_health (name, language, status, quality, category, impending_category,
                                          category_change_at, reason, event_id, updated_at, waba_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (waba_id, name, language) DO UPDATE SET
                status = coalesce(?3, template_health.status), quality = coalesce(?4, template_health.quality),
                category = coalesce(?5, template_health.category), impending_category = ?6, category_change_at = ?7,
                reason = CASE WHEN ?3 IS NOT NULL OR ?8 IS NOT NULL THEN ?8 ELSE template_health.reason END,
                event_id = coalesce(?9, template_health.event_id), updated_at = ?10")?
            .execute(
            params![
                u.name,
                u.language,
                u.status,
                u.quality,
                u.category,
                impending,
                change_at,
                u.reason,
                event_id,
                at.timestamp(),
                u.waba_id
            ],
        )?;
    let after = template_row(tx, u.waba_id, u.name, u.language)?.ok_or_else(|| {
        StoreError::Corrupt(format!("template_health row for {} vanished", u.name))
    })?;
    Ok((before, after))
}

fn when(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.map(crate::time::from_unix)
}

impl Store {
    /// Records one template event and returns the template's row before and after it (the
    /// same twice when the event is older than the row's last and so changes nothing). A
    /// per-language APPROVED or REINSTATED also releases the name's language-less row.
    pub fn apply_template_update(
        &mut self,
        u: &TemplateUpdate<'_>,
        event_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(Option<TemplateHealth>, TemplateHealth), StoreError> {
        let tx = self.begin(crate::store::sql::TransactionBehavior::Deferred)?;
        let out = update_template(&tx, u, event_id, now)?;
        if !u.language.is_empty()
            && u.status.is_some_and(|s| RELEASING.contains(&s))
            && template_row(&tx, u.waba_id, u.name, "")?.is_some()
        {
            let all = TemplateUpdate {
                waba_id: u.waba_id,
                name: u.name,
                language: "",
                status: u.status,
                reason: u.reason,
                at: u.at,
                ..TemplateUpdate::default()
            };
            update_template(&tx, &all, event_id, now)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Every template Meta told us about, by name and language.
    pub fn template_health(&self) -> Result<Vec<TemplateHealth>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM template_health ORDER BY name, language, waba_id"
        ))?;
        let rows = stmt.query_map((), read_template)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records business account `waba_id`'s standing after an event that changes it (`""`:
    /// the event named no account).
    #[allow(clippy::too_many_arguments)]
    pub fn set_account_health(
        &mut self,
        waba_id: &str,
        event: &str,
        blocked: bool,
        reason: &str,
        until: Option<DateTime<Utc>>,
        event_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached("INSERT INTO account_health (waba_id, event, blocked, reason, until_at, event_id, updated_at)
             VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (waba_id) DO UPDATE SET event = ?1, blocked = ?2, reason = ?3, until_at = ?4,
                event_id = ?5, updated_at = ?6")?
            .execute(
            params![
                event,
                blocked,
                reason,
                until.map(|t| t.timestamp()),
                event_id,
                now.timestamp(),
                waba_id
            ],
        )?;
        Ok(())
    }

    /// Each business account's standing Meta reported on, by account id.
    pub fn account_health(&self) -> Result<Vec<AccountHealth>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT waba_id, event, blocked, reason, until_at, updated_at FROM account_health ORDER BY waba_id",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok(AccountHealth {
                waba_id: r.get(0)?,
                event: r.get(1)?,
                blocked: r.get(2)?,
                reason: r.get(3)?,
                until: when(r.get(4)?),
                updated_at: crate::time::from_unix(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a business number's standing from a `phone_number_quality_update`; an event
    /// older than the one recorded changes nothing (Meta retries out of order).
    pub fn set_number_health(
        &mut self,
        n: &NumberHealth,
        event_id: Option<i64>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO number_health (display_phone_number, waba_id, event, messaging_limit, event_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (display_phone_number) DO UPDATE SET waba_id = coalesce(?2, number_health.waba_id), event = ?3,
                    messaging_limit = coalesce(?4, number_health.messaging_limit), event_id = ?5, updated_at = ?6
                 WHERE number_health.updated_at <= ?6",
            )?
            .execute(params![
                n.display_phone_number,
                n.waba_id,
                n.event,
                n.messaging_limit,
                event_id,
                n.updated_at.timestamp()
            ])?;
        Ok(())
    }

    /// Every business number Meta reported on, by its display number.
    pub fn number_health(&self) -> Result<Vec<NumberHealth>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT display_phone_number, waba_id, event, messaging_limit, updated_at FROM number_health
             ORDER BY display_phone_number",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok(NumberHealth {
                display_phone_number: r.get(0)?,
                waba_id: r.get(1)?,
                event: r.get(2)?,
                messaging_limit: r.get(3)?,
                updated_at: crate::time::from_unix(r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending messages held because their template cannot be used, per template key.
    pub fn template_holds(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT template, count(*) FROM outbox
             WHERE state = 'pending' AND template IS NOT NULL AND substr(reason, 1, length(?1)) = ?1
             GROUP BY template ORDER BY template",
        )?;
        let rows = stmt.query_map([TEMPLATE_HOLD], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a `failed` status of a sent message as `expired` when it came after the
    /// message's time to live (`ttl_of` its template key): WhatsApp stopped trying, and
    /// neither a retry nor a fallback would arrive in time. `false`: not such a message.
    pub fn expire_after_ttl(
        &mut self,
        wamid: &str,
        outbox_id: Option<i64>,
        ttl_of: &dyn Fn(&str) -> Option<Duration>,
        error: Option<(i64, &str)>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let tx = self.begin(crate::store::sql::TransactionBehavior::Immediate)?;
        let row: Option<(i64, Option<String>, Option<i64>)> = tx
            .prepare_cached(
                "SELECT id, template, sent_at FROM outbox
                 WHERE (wamid = ?1 OR (wamid IS NULL AND id = ?2)) AND state IN ('sent', 'unknown')
                   AND channel = 'whatsapp' LIMIT 1",
            )?
            .query_row(params![wamid, outbox_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((id, Some(template), Some(sent_at))) = row else {
            return Ok(false);
        };
        let Some(ttl) = ttl_of(&template) else {
            return Ok(false);
        };
        if now <= crate::time::from_unix(sent_at) + ttl {
            return Ok(false);
        }
        let reason = format!(
            "not delivered within its time to live ({}): WhatsApp stopped trying",
            crate::plan::humanize(ttl)
        );
        tx.prepare_cached(
            "UPDATE outbox SET state = 'expired', wamid = coalesce(wamid, ?2), failed_at = ?3,
                last_error_code = ?4, last_error = ?5, reason = ?6, updated_at = ?3 WHERE id = ?1",
        )?
        .execute(params![
            id,
            wamid,
            now.timestamp(),
            error.map(|(c, _)| c),
            error.map(|(_, e)| e),
            reason
        ])?;
        tx.commit()?;
        Ok(true)
    }
}

const TEMPLATE_COLUMNS: &str = "name, language, status, quality, category, impending_category,
    category_change_at, reason, updated_at, waba_id";

fn read_template(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<TemplateHealth> {
    Ok(TemplateHealth {
        name: r.get(0)?,
        language: r.get(1)?,
        status: r.get(2)?,
        quality: r.get(3)?,
        category: r.get(4)?,
        impending_category: r.get(5)?,
        category_change_at: when(r.get(6)?),
        reason: r.get(7)?,
        updated_at: crate::time::from_unix(r.get(8)?),
        waba_id: r.get(9)?,
    })
}

fn template_row(
    conn: &crate::store::sql::Conn,
    waba_id: &str,
    name: &str,
    language: &str,
) -> Result<Option<TemplateHealth>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {TEMPLATE_COLUMNS} FROM template_health WHERE name = ?1 AND language = ?2 AND waba_id = ?3"
            ),
            [name, language, waba_id],
            read_template,
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        crate::time::from_unix(1_767_225_600 + s)
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let s = Store::open(&dir.path().join("d.db")).expect("open");
        (dir, s)
    }

    #[test]
    fn template_events_accumulate_per_name_and_language() {
        let (_dir, mut store) = store();
        let paused = TemplateUpdate {
            name: "appointment_reminder",
            language: "en",
            status: Some("PAUSED"),
            reason: Some("FIRST_PAUSE"),
            ..TemplateUpdate::default()
        };
        let (before, after) = store
            .apply_template_update(&paused, None, at(0))
            .expect("apply");
        assert!(before.is_none());
        assert_eq!(after.status.as_deref(), Some("PAUSED"));
        let soon = TemplateUpdate {
            name: "appointment_reminder",
            language: "en",
            impending: Some(("MARKETING", Some(at(86_400)))),
            ..TemplateUpdate::default()
        };
        let (_, after) = store
            .apply_template_update(&soon, None, at(5))
            .expect("apply");
        // An announced change keeps the status and its reason.
        assert_eq!(after.status.as_deref(), Some("PAUSED"));
        assert_eq!(after.reason.as_deref(), Some("FIRST_PAUSE"));
        assert_eq!(after.impending_category.as_deref(), Some("MARKETING"));
        assert_eq!(after.category_change_at, Some(at(86_400)));
        let done = TemplateUpdate {
            name: "appointment_reminder",
            language: "en",
            category: Some("MARKETING"),
            ..TemplateUpdate::default()
        };
        let (_, after) = store
            .apply_template_update(&done, None, at(9))
            .expect("apply");
        assert_eq!(after.category.as_deref(), Some("MARKETING"));
        assert_eq!(after.impending_category, None);
        assert_eq!(store.template_health().expect("read").len(), 1);
    }

    fn status<'a>(language: &'a str, event: &'a str, when: i64) -> TemplateUpdate<'a> {
        TemplateUpdate {
            name: "appointment_reminder",
            language,
            status: Some(event),
            at: Some(at(when)),
            ..TemplateUpdate::default()
        }
    }

    #[test]
    fn a_retried_older_pause_arriving_after_the_reinstatement_changes_nothing() {
        let (_dir, mut store) = store();
        store
            .apply_template_update(&status("en", "PAUSED", 0), None, at(10))
            .expect("apply");
        store
            .apply_template_update(&status("en", "REINSTATED", 100), None, at(110))
            .expect("apply");
        // Meta's retry of the pause comes late.
        let (before, after) = store
            .apply_template_update(&status("en", "PAUSED", 0), None, at(200))
            .expect("apply");
        assert_eq!(before.as_ref(), Some(&after), "nothing changed");
        assert_eq!(after.status.as_deref(), Some("REINSTATED"));
        assert_eq!(after.updated_at, at(100), "the event's own time is kept");
        // A newer pause still counts.
        let (_, after) = store
            .apply_template_update(&status("en", "PAUSED", 300), None, at(300))
            .expect("apply");
        assert_eq!(after.status.as_deref(), Some("PAUSED"));
    }

    #[test]
    fn a_per_language_reinstatement_also_releases_the_row_without_a_language() {
        let (_dir, mut store) = store();
        store
            .apply_template_update(&status("", "PAUSED", 0), None, at(0))
            .expect("apply");
        store
            .apply_template_update(&status("en", "REINSTATED", 50), None, at(50))
            .expect("apply");
        let rows = store.template_health().expect("read");
        let statuses: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|h| (h.language.as_str(), h.status.as_deref()))
            .collect();
        assert_eq!(
            statuses,
            [("", Some("REINSTATED")), ("en", Some("REINSTATED"))]
        );
        // A per-language pause does not stop the other languages through that row.
        store
            .apply_template_update(&status("en", "PAUSED", 60), None, at(60))
            .expect("apply");
        let rows = store.template_health().expect("read");
        assert_eq!(rows[0].status.as_deref(), Some("REINSTATED"));
    }

    #[test]
    fn an_accounts_row_is_one_per_business_account_and_a_passed_restriction_no_longer_blocks() {
        let (_dir, mut store) = store();
        assert_eq!(store.account_health().expect("read"), Vec::new());
        store
            .set_account_health(
                "1",
                "ACCOUNT_RESTRICTION",
                true,
                "restricted",
                Some(at(3600)),
                None,
                at(0),
            )
            .expect("set");
        let rows = store.account_health().expect("read");
        assert_eq!(rows.len(), 1);
        assert!(rows[0].blocks(at(10)) && !rows[0].blocks(at(3601)));
        store
            .set_account_health("2", "DISABLED_UPDATE", true, "disabled", None, None, at(5))
            .expect("set");
        store
            .set_account_health(
                "1",
                "ACCOUNT_RESTRICTION",
                false,
                "lifted",
                None,
                None,
                at(20),
            )
            .expect("set");
        let rows = store.account_health().expect("read");
        assert_eq!(rows.len(), 2, "one row per account");
        assert!(!rows[0].blocks(at(21)), "account 1 lifted");
        assert!(rows[1].blocks(at(21)), "account 2 still disabled");
    }

    #[test]
    fn a_numbers_standing_keeps_the_newest_event_and_its_last_limit() {
        let (_dir, mut store) = store();
        let event = |e: &str, limit: Option<&str>, t: i64| NumberHealth {
            display_phone_number: "15550000001".into(),
            waba_id: Some("4".into()),
            event: e.into(),
            messaging_limit: limit.map(str::to_string),
            updated_at: at(t),
        };
        store
            .set_number_health(&event("ONBOARDING", Some("TIER_250"), 10), None)
            .expect("set");
        store
            .set_number_health(&event("THROUGHPUT_UPGRADE", None, 30), None)
            .expect("set");
        // A retried older event changes nothing.
        store
            .set_number_health(&event("FLAGGED", Some("TIER_50"), 20), None)
            .expect("set");
        let rows = store.number_health().expect("read");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event, "THROUGHPUT_UPGRADE");
        assert_eq!(rows[0].messaging_limit.as_deref(), Some("TIER_250"));
    }
}
