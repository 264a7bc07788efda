//! The retention purge: raw payloads and patients' words past their age are emptied in short
//! transactions of at most a batch per table, so sends and the webhook wait for one batch at
//! most; rows, states, counts and the audit trail stay. Then SQLite gives the space back.

use crate::store::sql::{params, params_from_iter};
use chrono::{DateTime, Utc};

use super::super::{Store, StoreError};
use crate::privacy::Cutoffs;

/// What a purge emptied (or, dry, would empty), per kind of data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Raw webhook bodies (WhatsApp, Twilio, MSG91) emptied.
    pub webhook_bodies: usize,
    /// HL7 SIU and FHIR payloads emptied.
    pub feed_payloads: usize,
    /// Messages whose rendered words (parameters) were removed.
    pub message_texts: usize,
    /// Replies whose text was removed.
    pub reply_texts: usize,
    /// Appointments whose copy of the answer's words was removed.
    pub answer_texts: usize,
    /// Schedule files uploaded at the desk, kept for their preview, emptied after it was
    /// decided.
    pub uploaded_files: usize,
}

impl PurgeCounts {
    /// Rows touched in all.
    pub fn total(&self) -> usize {
        self.webhook_bodies
            + self.feed_payloads
            + self.message_texts
            + self.reply_texts
            + self.answer_texts
            + self.uploaded_files
    }

    /// Adds another batch's counts.
    pub fn add(&mut self, o: &Self) {
        self.webhook_bodies += o.webhook_bodies;
        self.feed_payloads += o.feed_payloads;
        self.message_texts += o.message_texts;
        self.reply_texts += o.reply_texts;
        self.answer_texts += o.answer_texts;
        self.uploaded_files += o.uploaded_files;
    }
}

/// What giving the space back did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vacuum {
    /// The database was switched to incremental vacuum with a one-time full `VACUUM` (only the
    /// first purge of a database created before it does this).
    pub converted: bool,
    /// Free pages given back to the file system.
    pub pages_freed: i64,
}

/// Each kind: its table, the condition on rows past their age (`?1` raw cutoff, `?2` text
/// cutoff), and what the purge sets (`?3` now). Unprocessed webhook events, feed messages not
/// yet applied and replies still waiting for staff are never purged.
const KINDS: [(&str, &str, &str); 6] = [
    (
        "inbound_events",
        "purged_at IS NULL AND received_at < ?1 AND processed_at IS NOT NULL",
        "body = '', purged_at = ?3",
    ),
    (
        "feed_messages",
        "purged_at IS NULL AND received_at < ?1 AND state != 'received'",
        "body = '', purged_at = ?3",
    ),
    (
        "outbox",
        "purged_at IS NULL AND created_at < ?2 AND state NOT IN ('pending', 'sending')",
        "params = NULL, purged_at = ?3",
    ),
    (
        "replies",
        "purged_at IS NULL AND received_at < ?2 AND NOT (outcome = 'needs_staff' AND handled_at IS NULL)",
        "text = NULL, purged_at = ?3",
    ),
    (
        "appointments",
        "response_text IS NOT NULL AND coalesce(response_at, updated_at) < ?2",
        "response_text = NULL",
    ),
    (
        "import_previews",
        "decided_at IS NOT NULL AND decided_at < ?1 AND length(body) > 0",
        "body = zeroblob(0)",
    ),
];

fn into_counts(n: [usize; 6]) -> PurgeCounts {
    PurgeCounts {
        webhook_bodies: n[0],
        feed_payloads: n[1],
        message_texts: n[2],
        reply_texts: n[3],
        answer_texts: n[4],
        uploaded_files: n[5],
    }
}

impl Store {
    /// What a purge with these cutoffs would empty, writing nothing.
    pub fn purge_due(&self, c: Cutoffs) -> Result<PurgeCounts, StoreError> {
        let mut n = [0; 6];
        for (i, (table, due, _)) in KINDS.iter().enumerate() {
            let sql = format!("SELECT count(*) FROM {table} WHERE {due}");
            let mut stmt = self.conn.prepare(&sql)?;
            let all = [c.raw_before.timestamp(), c.texts_before.timestamp()];
            let count: i64 = stmt
                .query_row(params_from_iter(&all[..stmt.parameter_count()]), |r| {
                    r.get(0)
                })?;
            n[i] = usize::try_from(count).unwrap_or(0);
        }
        Ok(into_counts(n))
    }

    /// One batch: at most `limit` rows per kind emptied in one transaction (deleted content
    /// zeroed on its pages). Call again until it returns zero.
    pub fn purge_batch(
        &mut self,
        c: Cutoffs,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<PurgeCounts, StoreError> {
        self.secure_delete(true)?;
        let row = self.conn.pick("rowid", "ctid");
        let result = (|| {
            let tx = self.conn.transaction()?;
            let mut n = [0; 6];
            for (i, (table, due, set)) in KINDS.iter().enumerate() {
                let sql = format!(
                    "UPDATE {table} SET {set} WHERE {row} IN (SELECT {row} FROM {table} WHERE {due} LIMIT {limit})"
                );
                let mut stmt = tx.prepare(&sql)?;
                // A kind binds the parameters it uses: SQLite counts up to the highest.
                let all = [
                    c.raw_before.timestamp(),
                    c.texts_before.timestamp(),
                    now.timestamp(),
                ];
                n[i] = stmt.execute(params_from_iter(&all[..stmt.parameter_count()]))?;
            }
            tx.commit()?;
            Ok(into_counts(n))
        })();
        self.secure_delete(false)?;
        result
    }

    /// The purge's one audit row, with its counts and cutoffs.
    pub fn audit_purge(
        &self,
        counts: &PurgeCounts,
        c: Cutoffs,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let value = serde_json::json!({
            "counts": counts,
            "raw_before": c.raw_before.to_rfc3339(),
            "texts_before": c.texts_before.to_rfc3339(),
        });
        self.conn.execute(
            "INSERT INTO audit_log (at, actor, action, new_value) VALUES (?1, ?2, 'retention_purge', ?3)",
            params![now.timestamp(), actor, value.to_string()],
        )?;
        Ok(())
    }

    /// Gives free pages back to the file system: the first time on a database without
    /// incremental vacuum, a full `VACUUM` switches it on (it rewrites the file once and holds
    /// the database while it does); afterwards `incremental_vacuum` frees what the purge left.
    /// The write-ahead log is then checkpointed so the emptied pages reach the file.
    pub fn reclaim_space(&mut self) -> Result<Vacuum, StoreError> {
        if self.conn.as_sqlite().is_none() {
            // The emptied rows' old versions go when vacuum removes them; the server's
            // autovacuum would in time, this does it now for the tables the purge touched.
            let tables: std::collections::BTreeSet<&str> =
                KINDS.iter().map(|(table, _, _)| *table).collect();
            let tables: Vec<&str> = tables.into_iter().collect();
            self.conn
                .execute_batch(&format!("VACUUM {}", tables.join(", ")))?;
            return Ok(Vacuum::default());
        }
        let mode: i64 = self
            .conn
            .query_row("PRAGMA auto_vacuum", (), |r| r.get(0))?;
        let converted = mode != 2;
        if converted {
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
        }
        let free_before: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", (), |r| r.get(0))?;
        self.conn.execute_batch("PRAGMA incremental_vacuum")?;
        let free_after: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", (), |r| r.get(0))?;
        self.checkpoint_truncate()?;
        Ok(Vacuum {
            converted,
            pages_freed: free_before - free_after,
        })
    }
}
