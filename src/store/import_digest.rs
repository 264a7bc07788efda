//! What an unchanged re-import needs from the stored schedule, asked from the import's
//! reading thread on a connection of its own: the digest of the file row that last set each
//! appointment (schema 14, `appointments.import_digest`) and the numbers its patient has.

use std::collections::HashMap;

use crate::store::sql::{Conn, OptionalExtension, params};
use rusqlite::{Connection, OpenFlags};

use super::{BUSY_TIMEOUT, ImportTx, Store, StoreError};
use crate::phone::E164;

/// The digest of a file row as the streamed import computes it.
pub type RowDigest = [u8; 16];

/// An appointment whose stored state is what a file row with `digest` made it, unchanged
/// since by anything else (the schema's triggers clear the digest otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRow {
    /// The digest of the row that last set the appointment.
    pub digest: RowDigest,
    /// The patient's number, as that row's phone cell was read.
    pub phone: E164,
    /// The caregiver's number, as that row's contact phone cell was read.
    pub contact_phone: Option<E164>,
}

/// A read-only connection to the store's file: it sees the schedule as committed before the
/// import's transaction began, which is what a row's digest was written against.
pub struct ImportReader {
    conn: Conn,
}

impl std::fmt::Debug for ImportReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportReader").finish_non_exhaustive()
    }
}

impl Store {
    /// A reader for the import's reading thread; `None` when the file cannot be opened a
    /// second time (then every row is compared in full, as before schema 14).
    pub fn import_reader(&self) -> Option<ImportReader> {
        if let Some(options) = &self.postgres {
            return Conn::postgres(options)
                .ok()
                .map(|conn| ImportReader { conn });
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        conn.busy_timeout(BUSY_TIMEOUT).ok()?;
        // A database without the column (not migrated) has nothing to offer.
        conn.prepare("SELECT import_digest FROM appointments LIMIT 0")
            .ok()?;
        Some(ImportReader {
            conn: Conn::sqlite(conn),
        })
    }
}

impl ImportReader {
    /// The appointments of `clinic` (its key) from `source` among `ids` that carry a
    /// digest, by external id.
    pub fn known<'k>(
        &self,
        clinic: &str,
        source: &str,
        ids: impl IntoIterator<Item = &'k str>,
    ) -> Result<HashMap<String, KnownRow>, StoreError> {
        let mut out = HashMap::new();
        let clinic_id: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM clinics WHERE key = ?1")?
            .query_row([clinic], |r| r.get(0))
            .optional()?;
        let Some(clinic_id) = clinic_id else {
            return Ok(out);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.import_digest, p.phone, p.contact_phone
             FROM appointments a JOIN patients p ON p.id = a.patient_id
             WHERE a.clinic_id = ?1 AND a.source = ?2 AND a.external_id = ?3
               AND a.import_digest IS NOT NULL",
        )?;
        for id in ids {
            let mut rows = stmt.query(params![clinic_id, source, id])?;
            if let Some(r) = rows.next()? {
                let digest: Vec<u8> = r.get(0)?;
                let Ok(digest) = RowDigest::try_from(digest.as_slice()) else {
                    continue;
                };
                let contact: Option<String> = r.get(2)?;
                out.insert(
                    id.to_string(),
                    KnownRow {
                        digest,
                        phone: E164::from_stored(r.get(1)?),
                        contact_phone: contact.map(E164::from_stored),
                    },
                );
            }
        }
        Ok(out)
    }
}

impl ImportTx<'_> {
    /// Records the file row that set (or confirmed) an appointment.
    pub fn set_import_digest(&self, id: i64, digest: &RowDigest) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE appointments SET import_digest = ?2 WHERE id = ?1")?;
        stmt.execute(params![id, &digest[..]])?;
        Ok(())
    }
}
