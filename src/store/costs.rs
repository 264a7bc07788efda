//! What Meta bills: each message's `pricing` from its status webhooks (category, type,
//! billable) on its outbox row, and the billable messages of a range for the cost estimate.

use crate::store::sql::params;
use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::config::Billed;
use crate::time::from_unix;
use crate::whatsapp::pricing::Pricing;

impl Store {
    /// Records a status's `pricing` on the message it names (by wamid, else by the outbox id
    /// echoed as callback data); a field the status leaves out keeps what an earlier status
    /// said. `false` when no message matched.
    pub fn record_pricing(
        &self,
        wamid: &str,
        outbox_id: Option<i64>,
        pricing: &Pricing,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET pricing_category = coalesce(?3, pricing_category),
                    pricing_type = coalesce(?4, pricing_type),
                    billable = coalesce(?5, billable), updated_at = ?6
             WHERE id = coalesce((SELECT id FROM outbox WHERE wamid = ?1), ?2)
               AND channel = 'whatsapp'",
            )?
            .execute(params![
                wamid,
                outbox_id,
                pricing.category.as_deref().map(str::to_ascii_lowercase),
                pricing.kind.as_deref(),
                pricing.billable,
                now.timestamp()
            ])?;
        Ok(n > 0)
    }

    /// As [`Store::record_pricing`] for a status webhook, if it carries `pricing`.
    pub fn record_pricing_of(
        &self,
        status: &crate::whatsapp::StatusUpdate,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match &status.pricing {
            Some(p) => self.record_pricing(&status.id, status.outbox_id(), p, now),
            None => Ok(false),
        }
    }

    /// The billable WhatsApp messages sent in `[from, to)`, of one clinic or all, in time
    /// order: what `config::monthly` sums and prices.
    pub fn billed(
        &self,
        clinic: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Billed>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.key, o.sent_at, o.pricing_category
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id
                           JOIN clinics c ON c.id = a.clinic_id
             WHERE o.billable = 1 AND o.pricing_category IS NOT NULL
               AND o.sent_at >= ?1 AND o.sent_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)
             ORDER BY o.sent_at, o.id",
        )?;
        let mut q = stmt.query(params![from.timestamp(), to.timestamp(), clinic])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(Billed {
                clinic: r.get(0)?,
                sent_at: from_unix(r.get(1)?),
                category: r.get(2)?,
            });
        }
        Ok(out)
    }
}
