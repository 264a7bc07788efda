//! What an upload's preview needs to know besides the schedule itself: who set a status,
//! where an appointment was before, earlier uploads of the same file, and the last upload;
//! and what a confirmed upload imported, for the page after it.

use std::collections::HashSet;

use crate::store::sql::{OptionalExtension as _, params};
use chrono::{DateTime, Utc};

use super::schedule::ImportTx;
use super::{Status, Store, StoreError};

/// An earlier import, as the upload page and the preview's warnings name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastImport {
    /// Clinic key (for [`Store::last_imports`]; empty for [`ImportTx::same_file_before`]).
    pub clinic: String,
    /// The file's name as it was given.
    pub file_name: String,
    /// `cli`, or `staff:<name>`.
    pub imported_by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Appointments it created, changed, cancelled.
    pub new: usize,
    #[allow(missing_docs)]
    pub updated: usize,
    #[allow(missing_docs)]
    pub cancelled: usize,
    /// Imports of the same clinics since this one.
    pub later: usize,
}

/// What a confirmed upload imported, read back from the `imports` row and the audit log, so
/// that the page after the confirm is a GET that can be reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportResult {
    /// The file's name as it was given.
    pub file_name: String,
    /// Appointments it created, changed, cancelled, left as they were.
    pub new: usize,
    #[allow(missing_docs)]
    pub updated: usize,
    #[allow(missing_docs)]
    pub cancelled: usize,
    #[allow(missing_docs)]
    pub unchanged: usize,
    /// The statuses set at the desk that it kept (chosen on the preview), in file order.
    pub kept: Vec<KeptStatus>,
}

/// A status set at the desk that an import left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptStatus {
    /// The patient's name.
    pub patient: String,
    /// The status kept.
    pub status: Status,
    /// Who set it at the desk (the name, without `staff:`).
    pub by: String,
}

impl ImportTx<'_> {
    /// Who set an appointment's current status: the actor of the latest audit row that gave
    /// it that value (`staff:<name>`, `patient`, `import:<file>`); `None` when no row did
    /// (the status it was created with).
    pub fn status_set_by(
        &self,
        appointment_id: i64,
        status: Status,
    ) -> Result<Option<String>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT actor FROM audit_log WHERE appointment_id = ?1 AND new_value = ?2
             ORDER BY id DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![appointment_id, status.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// The starts an appointment had before it was moved (from its `reschedule` audit rows).
    pub fn earlier_starts(&self, appointment_id: i64) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT old_value FROM audit_log WHERE appointment_id = ?1 AND action = 'reschedule'",
        )?;
        let rows = stmt.query_map([appointment_id], |r| r.get::<_, Option<String>>(0))?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(t) = r?.and_then(|s| DateTime::parse_from_rfc3339(&s).ok()) {
                out.push(t.with_timezone(&Utc));
            }
        }
        Ok(out)
    }

    /// The row ids of a clinic's patients who asked for no more messages.
    pub fn opted_out_of(&self, clinic_id: i64) -> Result<HashSet<i64>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT id FROM patients WHERE clinic_id = ?1 AND opted_out_at IS NOT NULL",
        )?;
        let rows = stmt.query_map([clinic_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The latest earlier import of exactly these bytes for any of these clinics (not
    /// `this_import`), with the number of imports of those clinics made after it.
    pub fn same_file_before(
        &self,
        checksum: &str,
        clinic_ids: &[i64],
        this_import: i64,
    ) -> Result<Option<PastImport>, StoreError> {
        let ids = serde_json::to_string(clinic_ids).unwrap_or_else(|_| "[]".into());
        let ids_in = self
            .tx
            .pick("SELECT value FROM json_each(?2)", "SELECT json_ints(?2)");
        let mut stmt = self.tx.prepare_cached(&format!(
            "SELECT i.id, i.file_name, i.imported_by, i.imported_at, i.new, i.updated, i.cancelled
             FROM imports i
             WHERE i.checksum = ?1 AND i.id != ?3
               AND EXISTS (SELECT 1 FROM import_clinics c WHERE c.import_id = i.id
                           AND c.clinic_id IN ({ids_in}))
             ORDER BY i.id DESC LIMIT 1"
        ))?;
        let found = stmt
            .query_row(params![checksum, ids, this_import], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    PastImport {
                        clinic: String::new(),
                        file_name: r.get(1)?,
                        imported_by: r.get(2)?,
                        at: crate::time::from_unix(r.get(3)?),
                        new: r.get::<_, i64>(4)? as usize,
                        updated: r.get::<_, i64>(5)? as usize,
                        cancelled: r.get::<_, i64>(6)? as usize,
                        later: 0,
                    },
                ))
            })
            .optional()?;
        let Some((id, mut past)) = found else {
            return Ok(None);
        };
        past.later = self.tx.query_row(
            &format!(
                "SELECT count(DISTINCT i.id) FROM imports i JOIN import_clinics c ON c.import_id = i.id
                 WHERE i.id > ?1 AND i.id != ?3 AND c.clinic_id IN ({ids_in})"
            ),
            params![id, ids, this_import],
            |r| r.get::<_, i64>(0),
        )? as usize;
        Ok(Some(past))
    }
}

impl Store {
    /// What import `import_id` did, with the desk statuses it kept; `None` if there is no such
    /// import.
    pub fn import_result(&self, import_id: i64) -> Result<Option<ImportResult>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT file_name, imported_by, imported_at, new, updated, cancelled, unchanged
                 FROM imports WHERE id = ?1",
                [import_id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        [r.get::<_, i64>(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                    ))
                },
            )
            .optional()?;
        let Some((file_name, by, at, [new, updated, cancelled, unchanged])) = found else {
            return Ok(None);
        };
        // An import writes its audit rows (as `import:<file>`) in its one transaction, which
        // ends with the staff member's `upload_confirmed` row: they are the rows just before
        // that one. Its `upload_confirmed` row is found by rank among imports of the same
        // file by the same person in the same second (both are written in import order).
        let rank: i64 = self.conn.query_row(
            "SELECT count(*) FROM imports
             WHERE file_name = ?1 AND imported_by = ?2 AND imported_at = ?3 AND id < ?4",
            params![file_name, by, at, import_id],
            |r| r.get(0),
        )?;
        let confirmed: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM audit_log
                 WHERE action = 'upload_confirmed' AND new_value = ?1 AND actor = ?2 AND at = ?3
                 ORDER BY id LIMIT 1 OFFSET ?4",
                params![file_name, by, at, rank],
                |r| r.get(0),
            )
            .optional()?;
        let mut kept = Vec::new();
        if let Some(last) = confirmed {
            let mut stmt = self.conn.prepare_cached(
                "SELECT p.name, a.new_value,
                        (SELECT s.actor FROM audit_log s
                         WHERE s.appointment_id = a.appointment_id AND s.new_value = a.new_value
                           AND s.id < a.id AND s.action != 'status_kept'
                         ORDER BY s.id DESC LIMIT 1)
                 FROM audit_log a
                 JOIN appointments ap ON ap.id = a.appointment_id
                 JOIN patients p ON p.id = ap.patient_id
                 WHERE a.action = 'status_kept' AND a.id < ?1
                   AND a.id > (SELECT coalesce(max(o.id), 0) FROM audit_log o
                               WHERE o.id < ?1 AND NOT (o.at = ?2 AND o.actor = 'import:' || ?3))
                 ORDER BY a.id",
            )?;
            let rows = stmt.query_map(params![last, at, file_name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            for row in rows {
                let (patient, status, actor) = row?;
                let Some(status) = status.and_then(|s| Status::parse(&s).ok()) else {
                    continue;
                };
                let actor = actor.unwrap_or_default();
                let by = actor.strip_prefix("staff:").unwrap_or(&actor).to_string();
                kept.push(KeptStatus {
                    patient,
                    status,
                    by,
                });
            }
        }
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        Ok(Some(ImportResult {
            file_name,
            new: count(new),
            updated: count(updated),
            cancelled: count(cancelled),
            unchanged: count(unchanged),
            kept,
        }))
    }

    /// Each clinic's latest import (clinics never imported are left out), in clinic key order.
    pub fn last_imports(&self) -> Result<Vec<PastImport>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.key, i.file_name, i.imported_by, i.imported_at, i.new, i.updated, i.cancelled
             FROM clinics c
             JOIN imports i ON i.id = (SELECT max(ic.import_id) FROM import_clinics ic WHERE ic.clinic_id = c.id)
             ORDER BY c.key",
        )?;
        let rows = stmt.query_map((), |r| {
            Ok(PastImport {
                clinic: r.get(0)?,
                file_name: r.get(1)?,
                imported_by: r.get(2)?,
                at: crate::time::from_unix(r.get(3)?),
                new: r.get::<_, i64>(4)? as usize,
                updated: r.get::<_, i64>(5)? as usize,
                cancelled: r.get::<_, i64>(6)? as usize,
                later: 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
