//! What an upload's preview needs to know besides the schedule itself: who set a status,
//! where an appointment was before, earlier uploads of the same file, and the last upload.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

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
        let mut stmt = self.tx.prepare_cached(
            "SELECT i.id, i.file_name, i.imported_by, i.imported_at, i.new, i.updated, i.cancelled
             FROM imports i
             WHERE i.checksum = ?1 AND i.id != ?3
               AND EXISTS (SELECT 1 FROM import_clinics c WHERE c.import_id = i.id
                           AND c.clinic_id IN (SELECT value FROM json_each(?2)))
             ORDER BY i.id DESC LIMIT 1",
        )?;
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
            "SELECT count(DISTINCT i.id) FROM imports i JOIN import_clinics c ON c.import_id = i.id
             WHERE i.id > ?1 AND i.id != ?3 AND c.clinic_id IN (SELECT value FROM json_each(?2))",
            params![id, ids, this_import],
            |r| r.get::<_, i64>(0),
        )? as usize;
        Ok(Some(past))
    }
}

impl Store {
    /// Each clinic's latest import (clinics never imported are left out), in clinic key order.
    pub fn last_imports(&self) -> Result<Vec<PastImport>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.key, i.file_name, i.imported_by, i.imported_at, i.new, i.updated, i.cancelled
             FROM clinics c
             JOIN imports i ON i.id = (SELECT max(ic.import_id) FROM import_clinics ic WHERE ic.clinic_id = c.id)
             ORDER BY c.key",
        )?;
        let rows = stmt.query_map([], |r| {
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
