//! The retention purge as a job: batches of at most `PURGE_BATCH` rows per kind until nothing
//! is past its age, one audit row with the counts, then the space given back. The daemon runs
//! it on `privacy.purge` (daily), each batch its own store call so a send or a webhook waits
//! for one batch at most; `reminderd purge` runs the same steps on its own connection.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::privacy::{Cutoffs, PURGE_BATCH};
use crate::store::{Db, PurgeCounts, Store, StoreError, Vacuum};
use crate::time::Clock;

/// What one purge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeRun {
    /// Rows emptied per kind (or, dry, that would be).
    pub counts: PurgeCounts,
    /// Batches (transactions) it took.
    pub batches: usize,
    /// The space given back (`None`: a dry run).
    pub vacuum: Option<Vacuum>,
}

/// The purge on one store, start to end; `dry_run` counts and writes nothing.
pub fn run(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    actor: &str,
    dry_run: bool,
) -> Result<PurgeRun, StoreError> {
    let cutoffs = Cutoffs::at(now, &config.privacy);
    if dry_run {
        return Ok(PurgeRun {
            counts: store.purge_due(cutoffs)?,
            ..PurgeRun::default()
        });
    }
    let mut out = PurgeRun::default();
    loop {
        let b = store.purge_batch(cutoffs, now, PURGE_BATCH)?;
        if b.total() == 0 {
            break;
        }
        out.counts.add(&b);
        out.batches += 1;
    }
    store.audit_purge(&out.counts, cutoffs, actor, now)?;
    out.vacuum = Some(store.reclaim_space()?);
    Ok(out)
}

/// The purge through the shared store, one batch per call so other work goes between them.
pub async fn run_shared(
    db: &Db,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<PurgeRun, StoreError> {
    let cutoffs = Cutoffs::at(now, &config.privacy);
    let mut out = PurgeRun::default();
    loop {
        let b = db
            .run(move |s| s.purge_batch(cutoffs, now, PURGE_BATCH))
            .await??;
        if b.total() == 0 {
            break;
        }
        out.counts.add(&b);
        out.batches += 1;
        tokio::task::yield_now().await;
    }
    let counts = out.counts;
    out.vacuum = Some(
        db.run(move |s| {
            s.audit_purge(&counts, cutoffs, "purge", now)?;
            s.reclaim_space()
        })
        .await??,
    );
    Ok(out)
}

/// The daemon's job on `privacy.purge`; a tick that finds the last run going skips.
pub fn job(
    store: Db,
    config: Arc<RwLock<Arc<Config>>>,
    clock: Clock,
) -> Result<tokio_cron_scheduler::Job, String> {
    let cron = config
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .privacy
        .purge
        .clone();
    super::exclusive_cron_job(&cron, "privacy.purge", config, move |config| {
        let store = store.clone();
        async move {
            let now = clock.now();
            // Of several instances on one database whose schedule fires at once, one purges.
            match store.run(move |s| s.take_cron_run("purge", now)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return,
                Ok(Err(e)) | Err(e) => {
                    tracing::error!(error = %e, "retention purge failed");
                    return;
                }
            }
            match run_shared(&store, &config, now).await {
                Ok(r) => tracing::info!(
                    webhook_bodies = r.counts.webhook_bodies,
                    feed_payloads = r.counts.feed_payloads,
                    message_texts = r.counts.message_texts,
                    reply_texts = r.counts.reply_texts,
                    batches = r.batches,
                    pages_freed = r.vacuum.map_or(0, |v| v.pages_freed),
                    "retention purge"
                ),
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_daemons_purge_goes_a_batch_at_a_time_and_audits_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.db");
        drop(Store::open(&path).expect("create"));
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("now");
        let old = now.timestamp() - 40 * 86_400;
        rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.execute_batch(&format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)
                     INSERT INTO inbound_events (received_at, body, processed_at) SELECT {old}, 'b' || i, {old} FROM n;
                     INSERT INTO inbound_events (received_at, body, processed_at) VALUES ({now}, 'new', {now});",
                    now = now.timestamp()
                ))
            })
            .expect("seed");
        let db = Db::new(Store::open(&path).expect("open"));
        let config = Config::example().expect("shipped config");
        let r = run_shared(&db, &config, now).await.expect("purge");
        assert_eq!(r.counts.webhook_bodies, 1100);
        assert_eq!(r.batches, 3, "500 + 500 + 100");
        assert!(r.vacuum.is_some_and(|v| v.converted));
        let c = rusqlite::Connection::open(&path).expect("read");
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).expect(sql) };
        assert_eq!(
            count("SELECT count(*) FROM inbound_events WHERE body = ''"),
            1100
        );
        assert_eq!(
            count("SELECT count(*) FROM inbound_events WHERE body = 'new'"),
            1
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM audit_log WHERE action = 'retention_purge' AND actor = 'purge'"
            ),
            1
        );
    }
}
