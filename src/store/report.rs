//! What the evaluation report reads: one row per appointment in a window (bounded), each
//! clinic's first reminder, and the named no-shows behind one month's figure (for admins).

use std::collections::BTreeMap;

use crate::store::sql::params;
use chrono::{DateTime, Utc};

use super::{Response, Status, Store, StoreError};
use crate::report::Row;
use crate::time::from_unix;

/// A reminder that reached the patient: accepted by WhatsApp or the text service.
const SENT: &str =
    "o.kind IN ('reminder', 'manual_reminder') AND o.state IN ('sent', 'delivered', 'read')";

/// One no-show behind a month's figure, for an admin's drill-down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedNoShow {
    /// The appointment's row id.
    pub appointment: i64,
    /// When it was to start.
    pub starts_at: DateTime<Utc>,
    /// The patient's name; `None` once their data was erased.
    pub patient: Option<String>,
    /// The provider as the schedule names them.
    pub provider: Option<String>,
    /// Whether the patient had confirmed.
    pub confirmed: bool,
}

impl Store {
    /// Every appointment starting in `[from, to)` (of one clinic, or all), at most `max` + 1 of
    /// them so a caller can tell the window is too big: one pass over the `starts_at` index,
    /// each appointment's reminders, answer and score read through their own indexes.
    pub fn report_rows(
        &self,
        clinic: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<Row>, StoreError> {
        let sql = format!(
            "WITH x AS (
                 SELECT a.id, c.key, a.provider, a.starts_at, a.status, a.arrived_at IS NOT NULL AS arrived,
                        a.status_at, a.response,
                        (SELECT o.id FROM outbox o WHERE o.appointment_id = a.id AND {SENT}
                           AND coalesce(o.sent_at, o.request_at, o.send_at) < a.starts_at
                         ORDER BY coalesce(o.sent_at, o.request_at, o.send_at) DESC, o.id DESC LIMIT 1) AS last,
                        (SELECT r.id FROM replies r WHERE r.appointment_id = a.id
                           AND r.intent IN ('confirm', 'cancel', 'reschedule')
                         ORDER BY r.received_at, r.id LIMIT 1) AS answer
                 FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                 WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.key = ?3)
                 ORDER BY a.starts_at, a.id LIMIT ?4)
             SELECT x.key, x.provider, x.starts_at, x.status, x.arrived, x.status_at, x.response,
                    CASE l.kind WHEN 'manual_reminder' THEN 'remind-now' ELSE l.rule END, l.channel,
                    (SELECT count(*) FROM outbox o WHERE o.appointment_id = x.id
                       AND o.kind IN ('reminder', 'manual_reminder')
                       AND o.state IN ('sent', 'delivered', 'read', 'failed', 'unknown')),
                    (SELECT count(*) FROM outbox o WHERE o.appointment_id = x.id AND {SENT}),
                    (SELECT count(*) FROM outbox o WHERE o.appointment_id = x.id
                       AND o.kind IN ('reminder', 'manual_reminder') AND o.state = 'failed'),
                    r.received_at - (SELECT max(coalesce(o.sent_at, o.request_at, o.send_at)) FROM outbox o
                                     WHERE o.appointment_id = x.id AND {SENT}
                                       AND coalesce(o.sent_at, o.request_at, o.send_at) <= r.received_at),
                    f.score
             FROM x LEFT JOIN outbox l ON l.id = x.last
                    LEFT JOIN replies r ON r.id = x.answer
                    LEFT JOIN feedback f ON f.appointment_id = x.id
             ORDER BY x.starts_at, x.id"
        );
        let limit = i64::try_from(max.saturating_add(1)).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut q = stmt.query(params![from.timestamp(), to.timestamp(), clinic, limit])?;
        let mut rows = Vec::new();
        while let Some(r) = q.next()? {
            let count = |i| r.get::<_, i64>(i).map(|n| n.max(0).unsigned_abs());
            let rule: Option<String> = r.get(7)?;
            let channel: Option<String> = r.get(8)?;
            rows.push(Row {
                clinic: r.get(0)?,
                provider: r.get(1)?,
                starts_at: from_unix(r.get(2)?),
                status: Status::parse(&r.get::<_, String>(3)?)?,
                arrived: r.get(4)?,
                status_at: from_unix(r.get(5)?),
                response: Response::parse(&r.get::<_, String>(6)?)?,
                last_reminder: rule.zip(channel),
                reminders_tried: count(9)?,
                reminders_sent: count(10)?,
                reminders_failed: count(11)?,
                answer_secs: r.get(12)?,
                score: r
                    .get::<_, Option<i64>>(13)?
                    .and_then(|s| u8::try_from(s).ok()),
            });
        }
        Ok(rows)
    }

    /// When each clinic's first reminder reached a patient: before it, the clinic worked
    /// without reminderd. One pass over the sent reminders.
    pub fn first_reminders(&self) -> Result<BTreeMap<String, DateTime<Utc>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT c.key, min(coalesce(o.sent_at, o.request_at, o.send_at))
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE {SENT} GROUP BY c.key"
        ))?;
        let rows = stmt.query_map((), |r| Ok((r.get::<_, String>(0)?, from_unix(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The no-shows of `clinic` starting in `[from, to)`, with the patients' names, oldest
    /// first, at most `max`.
    pub fn named_no_shows(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<NamedNoShow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.starts_at, CASE WHEN p.erased_at IS NULL THEN p.name END, a.provider, a.response = 'confirmed'
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
             WHERE c.key = ?1 AND a.starts_at >= ?2 AND a.starts_at < ?3
               AND a.status = 'no_show' AND a.arrived_at IS NULL
             ORDER BY a.starts_at, a.id LIMIT ?4",
        )?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![clinic, from.timestamp(), to.timestamp(), limit],
            |r| {
                Ok(NamedNoShow {
                    appointment: r.get(0)?,
                    starts_at: from_unix(r.get(1)?),
                    patient: r.get(2)?,
                    provider: r.get(3)?,
                    confirmed: r.get(4)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
