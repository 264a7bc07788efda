//! The SQLite store: the only module that knows SQL.
//!
//! It opens the file (WAL, foreign keys, busy timeout), applies `schema.sql` to a new database
//! and refuses one it does not understand, and offers use-case methods rather than generic
//! CRUD. Callers decide *what* to change; this module only knows *how* it is stored.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::config::Clinic;
mod desk;
pub use desk::{
    BoardRow, Handled, Preview, Session, SignInLimits, SignInTicket, StaffLogin, StaffView,
};

use crate::phone::E164;
use crate::plan::{Candidate, Due, Kind};

/// The schema every new database gets; its `PRAGMA user_version` line is the version.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Creates a missing database file readable by its owner only, whatever the umask: it holds
/// patients' names and numbers, and SQLite gives the `-wal` and `-shm` files the database
/// file's mode. Failures are left for SQLite's own open to report in its words.
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
}

/// Upgrade steps: `MIGRATIONS[i]` takes a database from version `i + 1` to `i + 2`.
/// Each later schema change appends one step and updates `schema.sql` to the result.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/002-outbox.sql"),
    include_str!("../../migrations/003-replies.sql"),
    include_str!("../../migrations/004-desk.sql"),
    include_str!("../../migrations/005-hardening.sql"),
];

/// How long a write waits for another process (the daemon, an import) to release the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error("cannot open database {path}: {}", explain_open(path, source))]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer reminderd, or is not a reminderd database.
    #[error("database {path}: {message}")]
    Incompatible {
        /// The database file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A query failed.
    #[error("database error: {}", explain(.0))]
    Sql(#[from] rusqlite::Error),
    /// A stored value is not one this build knows (a hand-edited or corrupt row).
    #[error("database holds an unexpected value: {0}")]
    Corrupt(String),
}

/// What a database failure means for the person reading it; the driver's own text follows
/// as the error's source.
fn explain(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            "the database stayed locked by another process (the daemon or another import) for 10 seconds; nothing was written, try again in a moment"
        }
        Some(rusqlite::ErrorCode::ReadOnly) => {
            "the database file or its folder is read-only; nothing was written"
        }
        Some(rusqlite::ErrorCode::DiskFull) => {
            "the disk is full; nothing was written, free some space and try again"
        }
        Some(rusqlite::ErrorCode::SystemIoFailure) => {
            "the disk is full or failing (SQLite: disk I/O error); nothing was written, check its free space (df -h) and health"
        }
        Some(rusqlite::ErrorCode::CannotOpen) => "the database file cannot be opened",
        _ => "a query failed",
    }
}

/// [`explain`] for a failure while opening: SQLite cannot tell a read-only folder (where it
/// cannot create the `-wal` and `-shm` files a WAL database needs) from other reasons it
/// cannot open the file, so look.
fn explain_open(path: &Path, e: &rusqlite::Error) -> &'static str {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) && path.exists() {
        let dir = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        if tempfile::tempfile_in(dir).is_err() {
            return "the database file or its folder is read-only; nothing was written";
        }
    }
    explain(e)
}

/// An open reminderd database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        create_private(path);
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // journal_mode answers with the mode in force; anything but WAL means the file system
        // cannot do it (e.g. some network mounts), and crash safety relies on WAL.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                message: format!(
                    "cannot use write-ahead logging (journal mode is {mode}); put the database on a local disk"
                ),
            });
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(open_err)?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Incompatible {
                path: self.path.clone(),
                message: format!(
                    "it was written by a newer reminderd (schema version {version}, this build knows {SCHEMA_VERSION}); upgrade reminderd"
                ),
            });
        }
        let tx = self.conn.transaction()?;
        if version == 0 {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Incompatible {
                    path: self.path.clone(),
                    message: "it is not a reminderd database (it has tables but no schema version); give another --db path".into(),
                });
            }
            tx.execute_batch(SCHEMA_SQL)?;
        } else {
            for step in &MIGRATIONS[(version - 1) as usize..] {
                tx.execute_batch(step)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Makes the `clinics` table match the configuration (insert new, update changed).
    /// Clinics removed from the config keep their rows, since appointments refer to them.
    pub fn sync_clinics(&mut self, clinics: &BTreeMap<String, Clinic>) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO clinics (key, display_name, time_zone, phone_region) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET display_name = excluded.display_name,
                   time_zone = excluded.time_zone, phone_region = excluded.phone_region",
            )?;
            for c in clinics.values() {
                upsert.execute(params![
                    c.key,
                    c.display_name,
                    c.time_zone.name(),
                    c.phone_region.to_string()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts the single transaction an import runs in.
    pub fn begin_import(&mut self) -> Result<ImportTx<'_>, StoreError> {
        // A large import touches every page of several indexes; SQLite's default 2 MiB cache
        // makes it re-read pages from the OS and grow superlinearly (measured in bench/).
        self.conn.pragma_update(None, "cache_size", -262_144)?;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut clinic_ids = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT key, id FROM clinics")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (k, id) = row?;
                clinic_ids.insert(k, id);
            }
        }
        Ok(ImportTx { tx, clinic_ids })
    }

    /// Appointments matching `filter`, in start order, with their patient and clinic.
    pub fn appointments(
        &self,
        filter: &AppointmentFilter,
    ) -> Result<Vec<AppointmentView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.external_id, c.key, p.external_id, p.name, p.phone, p.language, a.provider,
                    a.starts_at, a.duration_min, a.status, a.cancelled_by, a.response, a.response_at
             FROM appointments a
             JOIN patients p ON p.id = a.patient_id
             JOIN clinics c ON c.id = a.clinic_id
             WHERE a.starts_at >= ?1 AND a.starts_at < ?2
               AND (?3 IS NULL OR c.key = ?3)
               AND (?4 IS NULL OR a.status = ?4)
             ORDER BY a.starts_at, c.key, a.external_id",
        )?;
        let rows = stmt.query_map(
            params![
                filter.from.timestamp(),
                filter.to.timestamp(),
                filter.clinic,
                filter.status.map(Status::as_str)
            ],
            |r| {
                Ok(RawView {
                    id: r.get(0)?,
                    clinic: r.get(1)?,
                    patient_id: r.get(2)?,
                    patient_name: r.get(3)?,
                    phone: r.get(4)?,
                    language: r.get(5)?,
                    provider: r.get(6)?,
                    starts_at: r.get(7)?,
                    duration_min: r.get(8)?,
                    status: r.get(9)?,
                    cancelled_by: r.get(10)?,
                    response: r.get(11)?,
                    response_at: r.get(12)?,
                })
            },
        )?;
        rows.map(|r| r.map_err(StoreError::from).and_then(RawView::into_view))
            .collect()
    }

    /// Audit rows for one appointment (by clinic and external id), oldest first.
    pub fn audit_for(
        &self,
        clinic: &str,
        appointment_id: &str,
    ) -> Result<Vec<AuditView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.at, l.actor, l.action, l.old_value, l.new_value, l.reason
             FROM audit_log l JOIN appointments a ON a.id = l.appointment_id
             JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.external_id = ?2 ORDER BY l.id",
        )?;
        let rows = stmt.query_map(params![clinic, appointment_id], |r| {
            Ok(AuditView {
                at: crate::time::from_unix(r.get(0)?),
                actor: r.get(1)?,
                action: r.get(2)?,
                old_value: r.get(3)?,
                new_value: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// What `Store::appointments` returns: the instants in UTC; callers localise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView {
    /// The clinic system's appointment id.
    pub id: String,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's patient id.
    pub patient_id: String,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number.
    pub phone: E164,
    /// Patient's language.
    pub language: String,
    /// Who the appointment is with.
    pub provider: Option<String>,
    /// When it starts.
    pub starts_at: DateTime<Utc>,
    /// How long it lasts.
    pub duration_min: u32,
    /// What the schedule says.
    pub status: Status,
    /// Who cancelled it, when cancelled.
    pub cancelled_by: Option<CancelledBy>,
    /// What the patient said.
    pub response: Response,
    /// When the patient said it.
    pub response_at: Option<DateTime<Utc>>,
}

struct RawView {
    id: String,
    clinic: String,
    patient_id: String,
    patient_name: String,
    phone: String,
    language: String,
    provider: Option<String>,
    starts_at: i64,
    duration_min: u32,
    status: String,
    cancelled_by: Option<String>,
    response: String,
    response_at: Option<i64>,
}

impl RawView {
    fn into_view(self) -> Result<AppointmentView, StoreError> {
        Ok(AppointmentView {
            id: self.id,
            clinic: self.clinic,
            patient_id: self.patient_id,
            patient_name: self.patient_name,
            phone: E164::from_stored(self.phone),
            language: self.language,
            provider: self.provider,
            starts_at: crate::time::from_unix(self.starts_at),
            duration_min: self.duration_min,
            status: Status::parse(&self.status)?,
            cancelled_by: self
                .cancelled_by
                .as_deref()
                .map(CancelledBy::parse)
                .transpose()?,
            response: Response::parse(&self.response)?,
            response_at: self.response_at.map(crate::time::from_unix),
        })
    }
}

/// One audit row, as shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AuditView {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub reason: Option<String>,
}

/// Which appointments to list.
#[derive(Debug, Clone)]
pub struct AppointmentFilter {
    /// Starts at or after this instant.
    pub from: DateTime<Utc>,
    /// Starts before this instant.
    pub to: DateTime<Utc>,
    /// Only this clinic.
    pub clinic: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and displayed) text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(StoreError::Corrupt(format!(concat!(stringify!($name), " {:?}"), other))),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(&s.trim().to_ascii_lowercase()).map_err(|_| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("{s:?} is not one of: {}", all.join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What the clinic's schedule says about an appointment.
    Status {
        /// It is going ahead.
        Booked = "booked",
        /// It is not (see `CancelledBy`).
        Cancelled = "cancelled",
        /// It happened.
        Completed = "completed",
        /// The patient did not come.
        NoShow = "no_show",
    }
}

text_enum! {
    /// Who cancelled an appointment.
    CancelledBy {
        /// Staff, through reminderd.
        Clinic = "clinic",
        /// The patient, by replying.
        Patient = "patient",
        /// The imported schedule (status column, or missing from a `--complete` file).
        Source = "source",
    }
}

text_enum! {
    /// What the patient said about an appointment.
    Response {
        /// Nothing yet.
        None = "none",
        /// They will come.
        Confirmed = "confirmed",
        /// They will not come.
        Declined = "declined",
        /// They want another time.
        RescheduleRequested = "reschedule_requested",
    }
}

/// A patient as stored, for comparing with an imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPatient {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Number.
    pub phone: E164,
    /// Language.
    pub language: String,
}

/// An appointment as stored, for comparing with an imported row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppointment {
    /// Row id.
    pub id: i64,
    /// Patient row id.
    pub patient_id: i64,
    /// Who it is with.
    pub provider: Option<String>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: u32,
    /// Schedule status.
    pub status: Status,
    /// Who cancelled it.
    pub cancelled_by: Option<CancelledBy>,
    /// Patient's answer.
    pub response: Response,
}

/// The schedule facts an import writes for one appointment.
#[derive(Debug, Clone)]
pub struct AppointmentWrite<'a> {
    /// Patient row id.
    pub patient_id: i64,
    /// Who it is with.
    pub provider: Option<&'a str>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration_min: u32,
    /// Schedule status.
    pub status: Status,
    /// Who cancelled it (with `Status::Cancelled`).
    pub cancelled_by: Option<CancelledBy>,
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// The appointment concerned.
    pub appointment_id: Option<i64>,
    /// The patient concerned.
    pub patient_id: Option<i64>,
    /// Who did it: `import:<file>`, `patient`, `staff:<name>`.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// The value before.
    pub old_value: Option<String>,
    /// The value after.
    pub new_value: Option<String>,
    /// Why.
    pub reason: Option<String>,
}

/// The counts an import records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    /// Data rows read.
    pub rows: usize,
    /// Appointments created.
    pub new: usize,
    /// Appointments changed (moved, reinstated, other details).
    pub updated: usize,
    /// Appointments cancelled (by a status column or by `--complete`).
    pub cancelled: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
}

/// The single transaction of one import. Dropping it without [`ImportTx::commit`] writes
/// nothing, which is how dry-runs and failed imports leave the database untouched.
pub struct ImportTx<'c> {
    tx: Transaction<'c>,
    clinic_ids: HashMap<String, i64>,
}

impl ImportTx<'_> {
    /// The row id of a configured clinic.
    pub fn clinic_id(&self, key: &str) -> Result<i64, StoreError> {
        self.clinic_ids.get(key).copied().ok_or_else(|| {
            StoreError::Corrupt(format!(
                "clinic {key:?} is not in the database; was the config synced?"
            ))
        })
    }

    /// Every stored patient of a clinic, by external id. One scan is far cheaper than a
    /// lookup per row for the large files, and cheap enough for the small ones.
    pub fn patients_of(
        &self,
        clinic_id: i64,
    ) -> Result<HashMap<String, StoredPatient>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT external_id, id, name, phone, language FROM patients WHERE clinic_id = ?1",
        )?;
        let rows = stmt.query_map([clinic_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                StoredPatient {
                    id: r.get(1)?,
                    name: r.get(2)?,
                    phone: E164::from_stored(r.get(3)?),
                    language: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every stored appointment of a clinic, by external id.
    pub fn appointments_of(
        &self,
        clinic_id: i64,
    ) -> Result<HashMap<String, StoredAppointment>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT external_id, id, patient_id, provider, starts_at, duration_min, status, cancelled_by, response
             FROM appointments WHERE clinic_id = ?1",
        )?;
        let mut rows = stmt.query([clinic_id])?;
        let mut out = HashMap::new();
        while let Some(r) = rows.next()? {
            let status: String = r.get(6)?;
            let cancelled_by: Option<String> = r.get(7)?;
            let response: String = r.get(8)?;
            out.insert(
                r.get::<_, String>(0)?,
                StoredAppointment {
                    id: r.get(1)?,
                    patient_id: r.get(2)?,
                    provider: r.get(3)?,
                    starts_at: crate::time::from_unix(r.get(4)?),
                    duration_min: r.get(5)?,
                    status: Status::parse(&status)?,
                    cancelled_by: cancelled_by
                        .as_deref()
                        .map(CancelledBy::parse)
                        .transpose()?,
                    response: Response::parse(&response)?,
                },
            );
        }
        Ok(out)
    }

    /// Records the import itself; counts are filled in by [`ImportTx::finish_import`].
    pub fn start_import(
        &self,
        file_name: &str,
        checksum: &str,
        complete: bool,
        imported_by: &str,
        clinic_ids: &[i64],
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.tx.execute(
            "INSERT INTO imports (file_name, checksum, rows, new, updated, cancelled, unchanged, complete, imported_by, imported_at)
             VALUES (?1, ?2, 0, 0, 0, 0, 0, ?3, ?4, ?5)",
            params![file_name, checksum, complete, imported_by, now.timestamp()],
        )?;
        let id = self.tx.last_insert_rowid();
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO import_clinics (import_id, clinic_id) VALUES (?1, ?2)")?;
        for c in clinic_ids {
            stmt.execute(params![id, c])?;
        }
        Ok(id)
    }

    /// Writes the final counts of an import.
    pub fn finish_import(&self, import_id: i64, counts: &ImportCounts) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE imports SET rows = ?2, new = ?3, updated = ?4, cancelled = ?5, unchanged = ?6 WHERE id = ?1",
            params![
                import_id,
                counts.rows as i64,
                counts.new as i64,
                counts.updated as i64,
                counts.cancelled as i64,
                counts.unchanged as i64
            ],
        )?;
        Ok(())
    }

    /// Adds a patient and returns its row id.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_patient(
        &self,
        clinic_id: i64,
        external_id: &str,
        name: &str,
        phone: &E164,
        language: &str,
        consent_source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO patients (clinic_id, external_id, name, phone, language, consent_source, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )?;
        stmt.execute(params![
            clinic_id,
            external_id,
            name,
            phone.as_str(),
            language,
            consent_source,
            now.timestamp()
        ])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Replaces a patient's contact details.
    pub fn update_patient(
        &self,
        id: i64,
        name: &str,
        phone: &E164,
        language: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE patients SET name = ?2, phone = ?3, language = ?4, updated_at = ?5 WHERE id = ?1")?;
        stmt.execute(params![id, name, phone.as_str(), language, now.timestamp()])?;
        Ok(())
    }

    /// Adds an appointment and returns its row id.
    pub fn insert_appointment(
        &self,
        clinic_id: i64,
        external_id: &str,
        a: &AppointmentWrite<'_>,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO appointments (clinic_id, external_id, patient_id, provider, starts_at, duration_min,
                status, cancelled_by, status_at, source_import_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?9)",
        )?;
        stmt.execute(params![
            clinic_id,
            external_id,
            a.patient_id,
            a.provider,
            a.starts_at.timestamp(),
            a.duration_min,
            a.status.as_str(),
            a.cancelled_by.map(CancelledBy::as_str),
            now.timestamp(),
            import_id
        ])?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Rewrites an appointment's schedule facts. `status_changed` stamps `status_at`;
    /// `reset_response` clears the patient's answer, which only a move justifies.
    pub fn update_appointment(
        &self,
        id: i64,
        a: &AppointmentWrite<'_>,
        status_changed: bool,
        reset_response: bool,
        import_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE appointments SET patient_id = ?2, provider = ?3, starts_at = ?4, duration_min = ?5,
                status = ?6, cancelled_by = ?7,
                status_at = CASE WHEN ?8 THEN ?10 ELSE status_at END,
                response = CASE WHEN ?9 THEN 'none' ELSE response END,
                response_at = CASE WHEN ?9 THEN NULL ELSE response_at END,
                response_text = CASE WHEN ?9 THEN NULL ELSE response_text END,
                source_import_id = ?11, updated_at = ?10
             WHERE id = ?1",
        )?;
        stmt.execute(params![
            id,
            a.patient_id,
            a.provider,
            a.starts_at.timestamp(),
            a.duration_min,
            a.status.as_str(),
            a.cancelled_by.map(CancelledBy::as_str),
            status_changed,
            reset_response,
            now.timestamp(),
            import_id
        ])?;
        Ok(())
    }

    /// Appends an audit row.
    pub fn audit(&self, e: &AuditEntry<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        stmt.execute(params![
            now.timestamp(),
            e.appointment_id,
            e.patient_id,
            e.actor,
            e.action,
            e.old_value,
            e.new_value,
            e.reason
        ])?;
        Ok(())
    }

    /// Makes every change of the import permanent.
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }
}

// ---- outbox -------------------------------------------------------------------------------

/// One outbox row as staff and scripts see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxView {
    /// Row id (also the `biz_opaque_callback_data` of its send).
    pub id: i64,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// `reminder`, `booking_confirmation`, `reply_ack`.
    pub kind: String,
    /// Rule name.
    pub rule: String,
    /// Delivery state.
    pub state: String,
    /// When it was due (UTC, RFC 3339).
    pub send_at: String,
    /// When the API accepted it.
    pub sent_at: Option<String>,
    /// The API's message id.
    pub wamid: Option<String>,
    /// Send attempts so far.
    pub attempts: i64,
    /// The last error, `(code) text`.
    pub last_error: Option<String>,
    /// Why it was skipped, expired or held.
    pub reason: Option<String>,
    /// What staff must do, if anything.
    pub needs_staff: Option<String>,
}

/// What planning wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanCounts {
    /// New rows to send.
    pub pending: usize,
    /// New rows that were already too late.
    pub expired: usize,
    /// Already planned earlier (unchanged).
    pub existing: usize,
}

/// A claimed-or-candidate outbox row with everything the send-time checks and rendering need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    /// Outbox row id.
    pub id: i64,
    /// Message kind.
    pub kind: Kind,
    /// Rule name.
    pub rule: String,
    /// Template config key.
    pub template: Option<String>,
    /// The start it was planned for.
    pub slot_start: DateTime<Utc>,
    /// When it was due.
    pub send_at: DateTime<Utc>,
    /// Not after this.
    pub latest_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The reason it was last held, if it was.
    pub reason: Option<String>,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// The appointment's current start.
    pub starts_at: DateTime<Utc>,
    /// Its current status.
    pub status: Status,
    /// Who cancelled it.
    pub cancelled_by: Option<CancelledBy>,
    /// The patient's answer.
    pub response: Response,
    /// Who it is with.
    pub provider: Option<String>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number.
    pub phone: E164,
    /// Patient's language.
    pub language: String,
    /// The patient opted out.
    pub opted_out: bool,
    /// When the clinic's schedule was last imported.
    pub last_import_at: Option<DateTime<Utc>>,
    /// Stored parameters (the text of an acknowledgement).
    pub params: Option<String>,
}

/// What a claim returns: the rows to send now, and the others with what was decided.
pub type Claimed = (Vec<DueRow>, Vec<(DueRow, Verdict)>);

/// The send-time decision about a due row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Claim it (`sending`) and send it.
    Send,
    /// Never send it: `skipped`, with the reason.
    Skip(String),
    /// Too late: `expired`, with the reason.
    Expire(String),
    /// Not now: stays `pending` until then, with the reason.
    Hold(DateTime<Utc>, String),
}

/// How a send ended, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the API.
    Sent {
        /// The message id.
        wamid: String,
        /// The recipient's WhatsApp id.
        wa_id: Option<String>,
    },
    /// Try again at this time.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// Graph error code, if any.
        code: Option<i64>,
        /// What went wrong.
        error: String,
    },
    /// Will never succeed.
    Failed {
        /// Graph error code, if any.
        code: Option<i64>,
        /// What went wrong.
        error: String,
        /// What staff should do, if anything.
        needs_staff: Option<String>,
    },
    /// The request may or may not have been accepted.
    Unknown {
        /// What happened.
        error: String,
    },
    /// Could not be sent before its latest time.
    Expired {
        /// Why.
        reason: String,
    },
    /// Not attempted after all (sending stopped): back to `pending`, attempt not counted.
    Released {
        /// Why.
        reason: String,
    },
}

const DUE_COLUMNS: &str =
    "o.id, o.kind, o.rule, o.template, o.slot_start, o.send_at, o.latest_at, o.attempts, o.reason,
    a.external_id, c.key, a.starts_at, a.status, a.cancelled_by, a.response, a.provider,
    p.name, p.phone, p.language, p.opted_out_at IS NOT NULL, c.id, o.params";

impl Store {
    /// Booked appointments starting in `(after, until]`, plus booked ones starting later that
    /// were created since `created_since` (for booking confirmations). The halves are disjoint
    /// and joined with UNION ALL: a plain UNION made SQLite 3.53 scan the whole table on every
    /// run instead of using both indexes (found by bench/plan.py: 76 ms → 3 ms at 1M rows).
    pub fn plan_candidates(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        created_since: DateTime<Utc>,
    ) -> Result<Vec<Candidate>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response, p.opted_out_at IS NOT NULL
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
             WHERE a.status = 'booked' AND a.starts_at > ?1 AND a.starts_at <= ?2
             UNION ALL
             SELECT a.id, c.key, a.starts_at, a.created_at, a.status, a.response, p.opted_out_at IS NOT NULL
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id JOIN patients p ON p.id = a.patient_id
             WHERE a.status = 'booked' AND a.created_at >= ?3 AND a.starts_at > ?2",
        )?;
        let mut rows = stmt.query(params![
            after.timestamp(),
            until.timestamp(),
            created_since.timestamp()
        ])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Candidate {
                id: r.get(0)?,
                clinic: r.get(1)?,
                starts_at: crate::time::from_unix(r.get(2)?),
                created_at: crate::time::from_unix(r.get(3)?),
                status: Status::parse(&r.get::<_, String>(4)?)?,
                response: Response::parse(&r.get::<_, String>(5)?)?,
                opted_out: r.get(6)?,
            });
        }
        Ok(out)
    }

    /// Materialises due messages. The unique key makes this idempotent: a message planned
    /// before is left exactly as it is.
    /// With `dry_run`, the same inserts are made and rolled back, so the counts are exact.
    pub fn insert_due(
        &mut self,
        due: &[Due],
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PlanCounts, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut counts = PlanCounts::default();
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, reason,
                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
                 ON CONFLICT (appointment_id, kind, rule, slot_start) DO NOTHING",
            )?;
            for d in due {
                let state = if d.expired.is_some() {
                    "expired"
                } else {
                    "pending"
                };
                let n = stmt.execute(params![
                    d.appointment_id,
                    d.kind.as_str(),
                    d.rule,
                    d.slot_start.timestamp(),
                    d.send_at.timestamp(),
                    d.latest_at.timestamp(),
                    d.template,
                    state,
                    d.expired,
                    now.timestamp()
                ])?;
                match (n, d.expired.is_some()) {
                    (0, _) => counts.existing += 1,
                    (_, true) => counts.expired += 1,
                    (_, false) => counts.pending += 1,
                }
            }
        }
        if !dry_run {
            tx.commit()?;
        }
        Ok(counts)
    }

    /// After a crash, rows left `sending` (claimed before `before`) are settled: one whose
    /// request never went out goes back to `pending` (safe to send), one whose request did may
    /// or may not have been accepted by the API and becomes `unknown`, to be reconciled by its
    /// status. Returns how many became unknown and how many were requeued.
    pub fn recover_interrupted(
        &mut self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let requeued = tx.execute(
            "UPDATE outbox SET state = 'pending', attempts = max(attempts - 1, 0), updated_at = ?2,
                reason = 'interrupted before its request went out; sent again'
             WHERE state = 'sending' AND claimed_at < ?1 AND request_at IS NULL",
            params![before.timestamp(), now.timestamp()],
        )?;
        let unknown = tx.execute(
            "UPDATE outbox SET state = 'unknown', updated_at = ?2,
                last_error = 'interrupted while its request was in flight; waiting for its delivery status'
             WHERE state = 'sending' AND claimed_at < ?1 AND request_at IS NOT NULL",
            params![before.timestamp(), now.timestamp()],
        )?;
        tx.commit()?;
        Ok((unknown, requeued))
    }

    /// Records that a claimed row's request is about to go out. Written (and committed) before
    /// the request, so a crash after it leaves the row `unknown`, never resent blindly.
    pub fn mark_requested(&mut self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET request_at = ?2 WHERE id = ?1 AND state = 'sending'",
            params![id, now.timestamp()],
        )? == 1)
    }

    /// Unknown sends with no status for `after`: sent again, or put on the staff list.
    pub fn settle_unknown(
        &mut self,
        older_than: DateTime<Utc>,
        resend: bool,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let n = if resend {
            self.conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, updated_at = ?2,
                    reason = 'no delivery status after the unknown window: sending again'
                 WHERE state = 'unknown' AND claimed_at < ?1 AND latest_at > ?2",
                params![older_than.timestamp(), now.timestamp()],
            )?
        } else {
            self.conn.execute(
                "UPDATE outbox SET needs_staff = 'we do not know whether this message reached the patient: please call', updated_at = ?2
                 WHERE state = 'unknown' AND claimed_at < ?1 AND needs_staff IS NULL",
                params![older_than.timestamp(), now.timestamp()],
            )?
        };
        Ok(n)
    }

    /// Takes up to `limit` due rows: each is judged by `verdict` in the same transaction, so a
    /// row is claimed (`sending`), skipped, expired or held atomically, and two dispatchers can
    /// never claim the same row. Returns the rows to send.
    pub fn claim_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        verdict: impl Fn(&DueRow) -> Verdict,
    ) -> Result<Claimed, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut last_import: HashMap<i64, i64> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT ic.clinic_id, max(i.imported_at) FROM import_clinics ic JOIN imports i ON i.id = ic.import_id GROUP BY ic.clinic_id",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for r in rows {
                let (c, t) = r?;
                last_import.insert(c, t);
            }
        }
        let rows: Vec<DueRow> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {DUE_COLUMNS} FROM outbox o
                 JOIN appointments a ON a.id = o.appointment_id
                 JOIN patients p ON p.id = a.patient_id
                 JOIN clinics c ON c.id = a.clinic_id
                 WHERE o.state = 'pending' AND o.send_at <= ?1 AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1)
                 ORDER BY o.send_at, o.id LIMIT ?2"
            ))?;
            let mut q = stmt.query(params![now.timestamp(), limit as i64])?;
            let mut v = Vec::new();
            while let Some(r) = q.next()? {
                let clinic_id: i64 = r.get(20)?;
                v.push(due_row(r, last_import.get(&clinic_id).copied())?);
            }
            v
        };
        let mut send = Vec::new();
        let mut other = Vec::new();
        for row in rows {
            let v = verdict(&row);
            match &v {
                Verdict::Send => {
                    tx.execute(
                        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_at = ?2, request_at = NULL,
                            updated_at = ?2, reason = NULL
                         WHERE id = ?1",
                        params![row.id, now.timestamp()],
                    )?;
                    send.push(row);
                    continue;
                }
                Verdict::Skip(reason) => tx.execute(
                    "UPDATE outbox SET state = 'skipped', reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![row.id, reason, now.timestamp()],
                )?,
                Verdict::Expire(reason) => tx.execute(
                    "UPDATE outbox SET state = 'expired', reason = ?2, updated_at = ?3 WHERE id = ?1",
                    params![row.id, reason, now.timestamp()],
                )?,
                Verdict::Hold(until, reason) => tx.execute(
                    "UPDATE outbox SET next_attempt_at = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1",
                    params![row.id, until.timestamp(), reason, now.timestamp()],
                )?,
            };
            other.push((row, v));
        }
        tx.commit()?;
        Ok((send, other))
    }

    /// Records how a send ended. Every outcome leaves `sending`, so no row is stuck there.
    pub fn record_outcome(
        &mut self,
        id: i64,
        outcome: &Outcome,
        language: Option<&str>,
        params_json: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = now.timestamp();
        match outcome {
            Outcome::Sent { wamid, wa_id } => self.conn.execute(
                // A status webhook may already have moved the row on (found by callback data).
                "UPDATE outbox SET state = CASE WHEN state IN ('sending', 'unknown') THEN 'sent' ELSE state END,
                    wamid = ?2, wa_id = ?3, sent_at = coalesce(sent_at, ?4), language = ?5, params = ?6,
                    last_error = NULL, last_error_code = NULL, updated_at = ?4
                 WHERE id = ?1",
                params![id, wamid, wa_id, t, language, params_json],
            )?,
            Outcome::Retry { at, code, error } => self.conn.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?2, last_error_code = ?3, last_error = ?4, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, at.timestamp(), code, error, t],
            )?,
            Outcome::Failed { code, error, needs_staff } => self.conn.execute(
                "UPDATE outbox SET state = 'failed', failed_at = ?5, last_error_code = ?2, last_error = ?3, needs_staff = ?4,
                    language = ?6, params = ?7, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, code, error, needs_staff, t, language, params_json],
            )?,
            Outcome::Unknown { error } => self.conn.execute(
                "UPDATE outbox SET state = 'unknown', last_error = ?2, language = ?3, params = ?4, updated_at = ?5
                 WHERE id = ?1 AND state = 'sending'",
                params![id, error, language, params_json, t],
            )?,
            Outcome::Expired { reason } => self.conn.execute(
                "UPDATE outbox SET state = 'expired', reason = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'sending'",
                params![id, reason, t],
            )?,
            Outcome::Released { reason } => self.conn.execute(
                "UPDATE outbox SET state = 'pending', attempts = attempts - 1, reason = ?2, updated_at = ?3
                 WHERE id = ?1 AND state = 'sending'",
                params![id, reason, t],
            )?,
        };
        Ok(())
    }

    /// How many outbox rows are in each state.
    pub fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outbox rows, newest due first, optionally in one state.
    pub fn outbox(&self, state: Option<&str>) -> Result<Vec<OutboxView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.id, a.external_id, c.key, o.kind, o.rule, o.state, o.send_at, o.sent_at, o.wamid, o.attempts,
                    o.last_error_code, o.last_error, o.reason, o.needs_staff
             FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE ?1 IS NULL OR o.state = ?1
             ORDER BY o.send_at, o.id",
        )?;
        let rfc =
            |t: i64| crate::time::from_unix(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows = stmt.query_map([state], |r| {
            let code: Option<i64> = r.get(10)?;
            let err: Option<String> = r.get(11)?;
            Ok(OutboxView {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                clinic: r.get(2)?,
                kind: r.get(3)?,
                rule: r.get(4)?,
                state: r.get(5)?,
                send_at: rfc(r.get(6)?),
                sent_at: r.get::<_, Option<i64>>(7)?.map(rfc),
                wamid: r.get(8)?,
                attempts: r.get(9)?,
                last_error: match (code, err) {
                    (Some(c), Some(e)) => Some(format!("({c}) {e}")),
                    (None, e) => e,
                    (Some(c), None) => Some(format!("({c})")),
                },
                reason: r.get(12)?,
                needs_staff: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The appointment (by clinic system id, optionally within one clinic) as a due row, for
    /// previews. Errors if the id is unknown or used by several clinics.
    pub fn preview_row(
        &self,
        appointment_id: &str,
        clinic: Option<&str>,
    ) -> Result<Vec<DueRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT 0, 'reminder', '', NULL, a.starts_at, a.starts_at, a.starts_at, 0, NULL,
                    a.external_id, c.key, a.starts_at, a.status, a.cancelled_by, a.response, a.provider,
                    p.name, p.phone, p.language, p.opted_out_at IS NOT NULL, c.id, NULL
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE a.external_id = ?1 AND (?2 IS NULL OR c.key = ?2)",
        )?;
        let mut q = stmt.query(params![appointment_id, clinic])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            out.push(due_row(r, None)?);
        }
        Ok(out)
    }
}

fn due_row(r: &rusqlite::Row<'_>, last_import: Option<i64>) -> Result<DueRow, StoreError> {
    let kind: String = r.get(1)?;
    Ok(DueRow {
        id: r.get(0)?,
        kind: Kind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox kind {kind:?}")))?,
        rule: r.get(2)?,
        template: r.get(3)?,
        slot_start: crate::time::from_unix(r.get(4)?),
        send_at: crate::time::from_unix(r.get(5)?),
        latest_at: crate::time::from_unix(r.get(6)?),
        attempts: r.get(7)?,
        reason: r.get(8)?,
        appointment_id: r.get(9)?,
        clinic: r.get(10)?,
        starts_at: crate::time::from_unix(r.get(11)?),
        status: Status::parse(&r.get::<_, String>(12)?)?,
        cancelled_by: r
            .get::<_, Option<String>>(13)?
            .as_deref()
            .map(CancelledBy::parse)
            .transpose()?,
        response: Response::parse(&r.get::<_, String>(14)?)?,
        provider: r.get(15)?,
        patient_name: r.get(16)?,
        phone: E164::from_stored(r.get(17)?),
        language: r.get(18)?,
        opted_out: r.get(19)?,
        last_import_at: last_import.map(crate::time::from_unix),
        params: r.get(21)?,
    })
}

// ---- webhook: events, replies, statuses ---------------------------------------------------

/// Every state an outbox row can be in, in the order a message moves through them.
pub const OUTBOX_STATES: [&str; 9] = [
    "pending",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "unknown",
    "skipped",
    "expired",
];

/// How far a status has come; a status never moves a row to a lower rank.
fn status_rank(state: &str) -> Option<u8> {
    match state {
        "pending" | "sending" | "unknown" => Some(0),
        "sent" => Some(1),
        "delivered" => Some(2),
        "read" => Some(3),
        // Failed is final: a late "delivered" after "failed" does not revive it.
        "failed" => Some(4),
        _ => None,
    }
}

/// What a status update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusApplied {
    /// The row moved forward to this state.
    Moved(String),
    /// The row is already at or past it (duplicate or out of order).
    Stale,
    /// No outbox row has this wamid or callback id (not our message).
    Unknown,
}

/// A reply to record, with what was decided about it.
#[derive(Debug, Clone)]
pub struct ReplyRecord<'a> {
    /// The webhook event it came in.
    pub event_id: i64,
    /// The API's message id.
    pub message_id: &'a str,
    /// The sender's number.
    pub from: &'a str,
    /// The API's message type.
    pub kind: &'a str,
    /// What was typed or tapped.
    pub text: Option<&'a str>,
    /// The decision.
    pub resolution: &'a crate::replies::Resolution,
    /// Patient rows with the sender's number (STOP and START apply to all of them).
    pub patients: &'a [i64],
    /// The acknowledgement to queue, if any.
    pub ack: Option<String>,
}

/// What storing a webhook body found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stored event (the first copy, for a replay).
    pub id: i64,
    /// The same bytes were stored before.
    pub replay: bool,
    /// That earlier copy was processed to the end (a replay of one that was not, after a
    /// crash or a database error, must be applied again).
    pub processed: bool,
}

const CANDIDATE_SQL: &str = "SELECT a.id, a.external_id, a.patient_id, c.key, a.starts_at, a.status, p.name, p.language, p.phone
     FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id";

impl Store {
    /// Stores a webhook body as received (text, or a BLOB when it is not UTF-8), before
    /// anything is done with it; a body already stored is counted as a replay instead.
    pub fn record_event(
        &mut self,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        use sha2::Digest as _;
        let hash = format!("{:x}", sha2::Sha256::digest(body));
        let value = match std::str::from_utf8(body) {
            Ok(text) => rusqlite::types::Value::Text(text.to_string()),
            Err(_) => rusqlite::types::Value::Blob(body.to_vec()),
        };
        let (id, processed, replays): (i64, Option<i64>, i64) = self.conn.query_row(
            "INSERT INTO inbound_events (received_at, body, body_sha256) VALUES (?1, ?2, ?3)
             ON CONFLICT (body_sha256) DO UPDATE
                 SET replays = replays + 1, last_replay_at = excluded.received_at
             RETURNING id, processed_at, replays",
            params![now.timestamp(), value, hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(RecordedEvent {
            id,
            replay: replays > 0,
            processed: processed.is_some(),
        })
    }

    /// Marks a stored event processed, with how it went.
    pub fn finish_event(
        &mut self,
        id: i64,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE inbound_events SET processed_at = ?2, outcome = ?3 WHERE id = ?1",
            params![id, now.timestamp(), outcome],
        )?;
        Ok(())
    }

    /// Moves an outbox row forward by a delivery status, found by wamid or else by the
    /// callback data (the outbox id), which also reconciles an `unknown` send.
    pub fn apply_status(
        &mut self,
        u: &crate::whatsapp::StatusUpdate,
        now: DateTime<Utc>,
    ) -> Result<StatusApplied, StoreError> {
        let Some(new_rank) = status_rank(&u.status).filter(|r| *r > 0) else {
            return Ok(StatusApplied::Stale);
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let by_wamid: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT id, state, kind FROM outbox WHERE wamid = ?1",
                [&u.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let row = match by_wamid {
            Some(r) => Some(r),
            None => match u.biz_opaque_callback_data.as_deref().and_then(|c| c.trim().parse::<i64>().ok()) {
                Some(id) => tx
                    .query_row(
                        "SELECT id, state, kind FROM outbox WHERE id = ?1 AND (wamid IS NULL OR wamid = ?2)",
                        params![id, u.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
                None => None,
            },
        };
        let Some((id, state, kind)) = row else {
            return Ok(StatusApplied::Unknown);
        };
        if status_rank(&state).is_none_or(|r| r >= new_rank) {
            return Ok(StatusApplied::Stale);
        }
        let t = now.timestamp();
        match u.status.as_str() {
            "failed" => {
                let e = u.errors.first();
                let code = e.map(|e| e.code);
                let text = e.map(|e| {
                    let details = e
                        .error_data
                        .as_ref()
                        .and_then(|d| d.details.clone())
                        .unwrap_or_default();
                    if details.is_empty() {
                        e.title.clone()
                    } else {
                        format!("{}: {details}", e.title)
                    }
                });
                let staff = code
                    .filter(|c| crate::whatsapp::is_unreachable(*c) && kind != "reply_ack")
                    .map(|_| "this patient cannot be reached on WhatsApp: call them".to_string());
                tx.execute(
                    "UPDATE outbox SET state = 'failed', wamid = coalesce(wamid, ?2), failed_at = ?3, last_error_code = ?4,
                        last_error = ?5, needs_staff = coalesce(?6, needs_staff), updated_at = ?3 WHERE id = ?1",
                    params![id, u.id, t, code, text, staff],
                )?;
            }
            s => {
                let column = match s {
                    "sent" => "sent_at",
                    "delivered" => "delivered_at",
                    _ => "read_at",
                };
                tx.execute(
                    &format!(
                        "UPDATE outbox SET state = ?2, wamid = coalesce(wamid, ?3), {column} = coalesce({column}, ?4),
                            sent_at = coalesce(sent_at, ?4), needs_staff = NULL, updated_at = ?4 WHERE id = ?1"
                    ),
                    params![id, s, u.id, t],
                )?;
            }
        }
        tx.commit()?;
        Ok(StatusApplied::Moved(u.status.clone()))
    }

    /// Everything a reply from `from` could refer to.
    pub fn reply_candidates(
        &self,
        from: &str,
        button_outbox: Option<i64>,
        context_wamid: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<crate::replies::Found, StoreError> {
        let phone = format!(
            "+{}",
            from.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
        );
        let mut found = crate::replies::Found::default();
        {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM patients WHERE phone = ?1 ORDER BY id")?;
            found.patients = stmt
                .query_map([&phone], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
        }
        let by_outbox = |sql_where: &str,
                         key: &dyn rusqlite::ToSql|
         -> Result<Option<crate::replies::Candidate>, StoreError> {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT a.id, a.external_id, a.patient_id, c.key, a.starts_at, a.status, p.name, p.language, p.phone, o.slot_start, o.id
                 FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN patients p ON p.id = a.patient_id
                 JOIN clinics c ON c.id = a.clinic_id WHERE {sql_where}"
            ))?;
            let mut q = stmt.query([key])?;
            match q.next()? {
                Some(r) => {
                    let mut c = candidate(r)?;
                    c.message_slot = Some(crate::time::from_unix(r.get(9)?));
                    c.outbox_id = Some(r.get(10)?);
                    Ok(Some(c))
                }
                None => Ok(None),
            }
        };
        if let Some(id) = button_outbox {
            found.by_button = by_outbox("o.id = ?1", &id)?;
        }
        if let Some(w) = context_wamid {
            found.by_context = by_outbox("o.wamid = ?1", &w)?;
        }
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{CANDIDATE_SQL} WHERE p.phone = ?1 AND a.status = 'booked' AND a.starts_at > ?2
                   AND EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder'
                               AND o.state IN ('sent', 'delivered', 'read'))
                 ORDER BY a.starts_at"
            ))?;
            let mut q = stmt.query(params![phone, now.timestamp()])?;
            while let Some(r) = q.next()? {
                found.upcoming_reminded.push(candidate(r)?);
            }
        }
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "{CANDIDATE_SQL} WHERE p.phone = ?1 ORDER BY abs(a.starts_at - ?2) LIMIT 1"
            ))?;
            let mut q = stmt.query(params![phone, now.timestamp()])?;
            if let Some(r) = q.next()? {
                found.latest = Some(candidate(r)?);
            }
        }
        Ok(found)
    }

    /// Records a reply and applies it, in one transaction. Returns `false` (and changes
    /// nothing) if a reply with this message id was recorded before: Meta retries webhooks.
    pub fn commit_reply(
        &mut self,
        rec: &ReplyRecord<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use crate::replies::{Intent, Outcome as R};
        let res = rec.resolution;
        let t = now.timestamp();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let appointment = res.appointment.as_ref();
        let inserted = tx.execute(
            "INSERT INTO replies (message_id, event_id, from_phone, patient_id, appointment_id, outbox_id, kind, text,
                intent, outcome, reason, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (message_id) DO NOTHING",
            params![
                rec.message_id,
                rec.event_id,
                format!("+{}", rec.from.chars().filter(char::is_ascii_digit).collect::<String>()),
                appointment.map(|a| a.patient_id).or_else(|| rec.patients.first().copied()),
                appointment.map(|a| a.appointment_id),
                appointment.and_then(|a| a.outbox_id),
                rec.kind,
                rec.text,
                res.intent.as_str(),
                res.outcome.as_str(),
                res.reason,
                t
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        let reply_id = tx.last_insert_rowid();
        if res.outcome == R::Applied {
            let audit = |appointment_id: Option<i64>,
                         patient_id: Option<i64>,
                         action: &str,
                         old: Option<String>,
                         new: &str| {
                tx.execute(
                    "INSERT INTO audit_log (at, appointment_id, patient_id, actor, action, old_value, new_value, reason)
                     VALUES (?1, ?2, ?3, 'patient', ?4, ?5, ?6, ?7)",
                    params![t, appointment_id, patient_id, action, old, new, format!("reply {}", rec.message_id)],
                )
            };
            match (res.intent, appointment) {
                (Intent::Confirm | Intent::Cancel | Intent::Reschedule, Some(a)) => {
                    let response = match res.intent {
                        Intent::Confirm => "confirmed",
                        Intent::Cancel => "declined",
                        _ => "reschedule_requested",
                    };
                    let old: Option<String> = tx
                        .query_row(
                            "SELECT response FROM appointments WHERE id = ?1",
                            [a.appointment_id],
                            |r| r.get(0),
                        )
                        .optional()?;
                    tx.execute(
                        "UPDATE appointments SET response = ?2, response_at = ?3, response_text = ?4, updated_at = ?3 WHERE id = ?1",
                        params![a.appointment_id, response, t, rec.text],
                    )?;
                    audit(
                        Some(a.appointment_id),
                        Some(a.patient_id),
                        "response",
                        old,
                        response,
                    )?;
                    if res.intent == Intent::Cancel {
                        tx.execute(
                            "UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient', status_at = ?2 WHERE id = ?1",
                            params![a.appointment_id, t],
                        )?;
                        audit(
                            Some(a.appointment_id),
                            Some(a.patient_id),
                            "cancel",
                            Some("booked".into()),
                            "cancelled",
                        )?;
                        tx.execute(
                            "UPDATE outbox SET state = 'skipped', reason = 'the patient cancelled', updated_at = ?2
                             WHERE appointment_id = ?1 AND state = 'pending' AND kind != 'reply_ack'",
                            params![a.appointment_id, t],
                        )?;
                    }
                }
                (Intent::Stop, _) => {
                    for p in rec.patients {
                        tx.execute("UPDATE patients SET opted_out_at = ?2, updated_at = ?2 WHERE id = ?1 AND opted_out_at IS NULL", params![p, t])?;
                        audit(None, Some(*p), "opt_out", None, "opted_out")?;
                        tx.execute(
                            "UPDATE outbox SET state = 'skipped', reason = 'the patient opted out', updated_at = ?2
                             WHERE state = 'pending' AND kind != 'reply_ack'
                               AND appointment_id IN (SELECT id FROM appointments WHERE patient_id = ?1)",
                            params![p, t],
                        )?;
                    }
                }
                (Intent::Start, _) => {
                    for p in rec.patients {
                        tx.execute("UPDATE patients SET opted_out_at = NULL, updated_at = ?2 WHERE id = ?1", params![p, t])?;
                        audit(
                            None,
                            Some(*p),
                            "opt_in",
                            Some("opted_out".into()),
                            "opted_in",
                        )?;
                    }
                }
                _ => {}
            }
            if let (Some(text), Some(a)) = (&rec.ack, appointment) {
                tx.execute(
                    "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at)
                     VALUES (?1, 'reply_ack', ?2, ?3, ?4, ?5, ?6, 'pending', ?4, ?4)
                     ON CONFLICT (appointment_id, kind, rule, slot_start) DO NOTHING",
                    params![
                        a.appointment_id,
                        format!("reply:{reply_id}"),
                        a.starts_at.timestamp(),
                        t,
                        // Free-form messages are allowed for 24 hours after the patient's.
                        t + 24 * 3600,
                        serde_json::json!({ "text": text }).to_string()
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(true)
    }
}

fn candidate(r: &rusqlite::Row<'_>) -> Result<crate::replies::Candidate, StoreError> {
    Ok(crate::replies::Candidate {
        appointment_id: r.get(0)?,
        external_id: r.get(1)?,
        patient_id: r.get(2)?,
        clinic: r.get(3)?,
        starts_at: crate::time::from_unix(r.get(4)?),
        status: Status::parse(&r.get::<_, String>(5)?)?,
        message_slot: None,
        outbox_id: None,
        patient_name: r.get(6)?,
        language: r.get(7)?,
        phone: r.get(8)?,
    })
}

// ---- staff views ---------------------------------------------------------------------------

/// A reply as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplyView {
    /// Row id.
    pub id: i64,
    /// When it arrived (UTC, RFC 3339).
    pub received_at: String,
    /// The sender's number.
    pub from: String,
    /// The patient's name, if the number is a patient's.
    pub patient_name: Option<String>,
    /// Clinic key of the appointment it concerns.
    pub clinic: Option<String>,
    /// The appointment it concerns.
    pub appointment_id: Option<String>,
    /// The API's message type.
    pub kind: String,
    /// What was typed or tapped.
    pub text: Option<String>,
    /// What it was read as.
    pub intent: String,
    /// applied, needs_staff, ignored.
    pub outcome: String,
    /// Why it needs staff or was ignored.
    pub reason: Option<String>,
}

/// An appointment staff should call about, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FollowUp {
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// Clinic key.
    pub clinic: String,
    /// Start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number, whole: staff will dial it.
    pub phone: String,
    /// Why, one line each.
    pub reasons: Vec<String>,
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Appointments in the range.
    pub appointments: i64,
    /// Reminders accepted by the API.
    pub reminders_sent: i64,
    /// ... and delivered to the phone (or read).
    pub reminders_delivered: i64,
    /// ... and read.
    pub reminders_read: i64,
    /// Reminders that failed.
    pub reminders_failed: i64,
    /// Appointments whose patient confirmed.
    pub confirmed: i64,
    /// Appointments the patient cancelled.
    pub declined: i64,
    /// Appointments the patient asked to move.
    pub reschedule_requested: i64,
    /// Reminded appointments (at least one reminder accepted).
    pub reminded: i64,
    /// No-shows among patients who confirmed.
    pub no_show_confirmed: i64,
    /// No-shows among reminded patients who did not answer.
    pub no_show_unconfirmed: i64,
    /// No-shows among patients whose reminders all failed.
    pub no_show_unreachable: i64,
    /// Patients who opted out in the range.
    pub opt_outs: i64,
    /// Per reminder rule, by rule name.
    pub per_rule: Vec<RuleStats>,
}

/// What one reminder rule achieved over a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleStats {
    /// The rule's name.
    pub rule: String,
    /// Reminders it sent (accepted by the API).
    pub sent: i64,
    /// ... whose appointment the patient then confirmed.
    pub confirmed: i64,
    /// ... whose appointment was then a no-show.
    pub no_show: i64,
}

impl Store {
    /// Replies, newest first.
    pub fn replies(
        &self,
        needs_staff_only: bool,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReplyView>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.id, r.received_at, r.from_phone, p.name, c.key, a.external_id, r.kind, r.text, r.intent, r.outcome, r.reason
             FROM replies r LEFT JOIN patients p ON p.id = r.patient_id
             LEFT JOIN appointments a ON a.id = r.appointment_id LEFT JOIN clinics c ON c.id = a.clinic_id
             WHERE (?1 = 0 OR (r.outcome = 'needs_staff' AND r.handled_by IS NULL)) AND r.received_at >= ?2
             ORDER BY r.received_at DESC, r.id DESC",
        )?;
        let since = since.map_or(i64::MIN, |t| t.timestamp());
        let rows = stmt.query_map(params![needs_staff_only, since], |r| {
            Ok(ReplyView {
                id: r.get(0)?,
                received_at: crate::time::from_unix(r.get(1)?)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                from: r.get(2)?,
                patient_name: r.get(3)?,
                clinic: r.get(4)?,
                appointment_id: r.get(5)?,
                kind: r.get(6)?,
                text: r.get(7)?,
                intent: r.get(8)?,
                outcome: r.get(9)?,
                reason: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Booked appointments of one clinic starting in `[from, to)` that a person should call
    /// about, each with every reason.
    /// `rules` is how many reminder rules apply to the clinic: "no answer after all reminders"
    /// needs that many of its reminders sent (or expired), not merely none pending.
    pub fn follow_ups(
        &self,
        clinic: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        rules: usize,
    ) -> Result<Vec<FollowUp>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.id, a.external_id, c.key, a.starts_at, p.name, p.phone,
                    a.response = 'reschedule_requested',
                    p.opted_out_at IS NOT NULL,
                    (SELECT group_concat(DISTINCT o.needs_staff) FROM outbox o WHERE o.appointment_id = a.id AND o.needs_staff IS NOT NULL),
                    (SELECT group_concat(coalesce(r.text, r.kind), ' | ') FROM replies r
                      WHERE r.appointment_id = a.id AND r.outcome = 'needs_staff' AND r.handled_by IS NULL),
                    a.response = 'none'
                      AND EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state IN ('sent', 'delivered', 'read'))
                      AND (SELECT count(DISTINCT o.rule) FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder'
                           AND o.state IN ('sent', 'delivered', 'read', 'failed', 'expired')) >= ?4
             FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN clinics c ON c.id = a.clinic_id
             WHERE c.key = ?1 AND a.status = 'booked' AND a.starts_at >= ?2 AND a.starts_at < ?3
             ORDER BY a.starts_at, a.external_id",
        )?;
        let mut q = stmt.query(params![
            clinic,
            from.timestamp(),
            to.timestamp(),
            rules.max(1) as i64
        ])?;
        let mut out = Vec::new();
        while let Some(r) = q.next()? {
            let mut reasons = Vec::new();
            if r.get::<_, bool>(6)? {
                reasons.push("asked to reschedule: find a new time".to_string());
            }
            if r.get::<_, bool>(7)? {
                reasons.push("opted out of WhatsApp messages: remind by phone".to_string());
            }
            if let Some(s) = r.get::<_, Option<String>>(8)? {
                reasons.extend(s.split(',').map(str::to_string));
            }
            if let Some(s) = r.get::<_, Option<String>>(9)? {
                reasons.push(format!("a reply needs a person: \"{s}\""));
            }
            if r.get::<_, bool>(10)? {
                reasons.push("no answer after all reminders".to_string());
            }
            if reasons.is_empty() {
                continue;
            }
            out.push(FollowUp {
                appointment_id: r.get(1)?,
                clinic: r.get(2)?,
                starts_at: crate::time::from_unix(r.get(3)?),
                patient_name: r.get(4)?,
                phone: r.get(5)?,
                reasons,
            });
        }
        Ok(out)
    }

    /// Staff set an appointment's status (or record a confirmation they took by phone).
    pub fn set_status(
        &mut self,
        clinic: Option<&str>,
        appointment_id: &str,
        status: &str,
        note: Option<&str>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String, String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT a.id, c.key, a.status, a.response FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                 WHERE a.external_id = ?1 AND (?2 IS NULL OR c.key = ?2)",
            )?;
            stmt.query_map(params![appointment_id, clinic], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let [(id, key, old_status, old_response)] = rows.as_slice() else {
            return Err(StoreError::Corrupt(if rows.is_empty() {
                format!("no appointment {appointment_id:?}")
            } else {
                format!("appointment {appointment_id:?} exists at several clinics; name the clinic")
            }));
        };
        let t = now.timestamp();
        let (action, old) = if status == "confirmed" {
            tx.execute(
                "UPDATE appointments SET response = 'confirmed', response_at = ?2, response_text = ?3, updated_at = ?2 WHERE id = ?1",
                params![id, t, note],
            )?;
            ("response", old_response.clone())
        } else {
            let by = (status == "cancelled").then_some("clinic");
            tx.execute(
                "UPDATE appointments SET status = ?2, cancelled_by = ?3, status_at = ?4, updated_at = ?4 WHERE id = ?1",
                params![id, status, by, t],
            )?;
            if status != "booked" {
                tx.execute(
                    "UPDATE outbox SET state = 'skipped', reason = ?2, updated_at = ?3
                     WHERE appointment_id = ?1 AND state = 'pending' AND kind != 'reply_ack'",
                    params![id, format!("staff set the appointment to {status}"), t],
                )?;
            }
            ("status", old_status.clone())
        };
        tx.execute(
            "INSERT INTO audit_log (at, appointment_id, actor, action, old_value, new_value, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![t, id, actor, action, old, status, note],
        )?;
        tx.commit()?;
        Ok(Some((key.clone(), old)))
    }

    /// Reminder and answer counts for appointments starting in `[from, to)`.
    pub fn stats(
        &self,
        clinic: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Stats, StoreError> {
        let scope = "FROM appointments a JOIN clinics c ON c.id = a.clinic_id
                     WHERE a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)";
        let p = params![from.timestamp(), to.timestamp(), clinic];
        let one = |sql: &str| -> Result<i64, StoreError> {
            Ok(self.conn.query_row(sql, p, |r| r.get(0))?)
        };
        let reached = |states: &str| {
            format!("SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
                     WHERE o.kind = 'reminder' AND o.state IN ({states}) AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)")
        };
        let reminded = "EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state IN ('sent','delivered','read'))";
        let unreachable = "EXISTS (SELECT 1 FROM outbox o WHERE o.appointment_id = a.id AND o.kind = 'reminder' AND o.state = 'failed') AND NOT "
            .to_string()
            + reminded;
        let mut s = Stats {
            appointments: one(&format!("SELECT count(*) {scope}"))?,
            reminders_sent: one(&reached("'sent','delivered','read'"))?,
            reminders_delivered: one(&reached("'delivered','read'"))?,
            reminders_read: one(&reached("'read'"))?,
            reminders_failed: one(&reached("'failed'"))?,
            confirmed: one(&format!("SELECT count(*) {scope} AND a.response = 'confirmed'"))?,
            declined: one(&format!("SELECT count(*) {scope} AND a.response = 'declined'"))?,
            reschedule_requested: one(&format!("SELECT count(*) {scope} AND a.response = 'reschedule_requested'"))?,
            reminded: one(&format!("SELECT count(*) {scope} AND {reminded}"))?,
            no_show_confirmed: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND a.response = 'confirmed'"))?,
            no_show_unconfirmed: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND a.response = 'none' AND {reminded}"))?,
            no_show_unreachable: one(&format!("SELECT count(*) {scope} AND a.status = 'no_show' AND {unreachable}"))?,
            opt_outs: one("SELECT count(DISTINCT p.id) FROM patients p JOIN appointments a ON a.patient_id = p.id JOIN clinics c ON c.id = a.clinic_id
                 WHERE p.opted_out_at IS NOT NULL AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)")?,
            per_rule: Vec::new(),
        };
        let mut stmt = self.conn.prepare(
            "SELECT o.rule, count(*), sum(a.response = 'confirmed'), sum(a.status = 'no_show') FROM outbox o
             JOIN appointments a ON a.id = o.appointment_id JOIN clinics c ON c.id = a.clinic_id
             WHERE o.kind = 'reminder' AND o.state IN ('sent','delivered','read')
               AND a.starts_at >= ?1 AND a.starts_at < ?2 AND (?3 IS NULL OR c.key = ?3)
             GROUP BY o.rule ORDER BY o.rule",
        )?;
        s.per_rule = stmt
            .query_map(p, |r| {
                Ok(RuleStats {
                    rule: r.get(0)?,
                    sent: r.get(1)?,
                    confirmed: r.get(2)?,
                    no_show: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_sql_declares_the_version_this_build_expects() {
        let line = format!("PRAGMA user_version = {SCHEMA_VERSION};");
        assert!(
            SCHEMA_SQL.contains(&line),
            "schema.sql must contain {line:?}"
        );
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION - 1);
    }

    #[test]
    fn open_creates_schema_in_wal_mode_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.db");
        let store = Store::open(&path).expect("open");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1);
        drop(store);
        Store::open(&path).expect("reopen");
    }

    #[test]
    fn refuses_newer_and_foreign_databases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let newer = dir.path().join("newer.db");
        Connection::open(&newer)
            .and_then(|c| c.execute_batch("PRAGMA user_version = 99;"))
            .expect("make newer");
        let err = Store::open(&newer).expect_err("newer");
        assert!(
            err.to_string()
                .contains("newer reminderd (schema version 99"),
            "{err}"
        );

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x);"))
            .expect("make foreign");
        let err = Store::open(&foreign).expect_err("foreign");
        assert!(
            err.to_string().contains("not a reminderd database"),
            "{err}"
        );
    }
}
