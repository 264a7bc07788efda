//! The SQLite store: the only module that knows SQL.
//!
//! It opens the file (WAL, foreign keys, busy timeout), applies `schema.sql` to a new database
//! and refuses one it does not understand, and offers use-case methods rather than generic
//! CRUD. Callers decide *what* to change; this module only knows *how* it is stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use sql::params;

use crate::config::Clinic;

mod accounts;
mod backup;
mod calls;
mod channels;
mod claims;
mod conversation;
mod costs;
mod desk_status;
mod documents;
mod feedback;
mod feeds;
mod group;
mod health;
mod identity;
mod import_digest;
mod inbound;
mod leases;
mod offer_book;
mod offers;
mod outbox;
mod patient;
mod planned;
mod privacy;
mod remind;
mod report;
mod schedule;
mod sends;
pub mod sql;
mod staff;
mod to_postgres;
mod upload;
mod waitlist;

pub use crate::model::{CancelledBy, OutboxState, Response, Status};
pub use accounts::{Preview, Session, SignInLimits, SignInTicket, StaffLogin, StaffView};
pub use backup::{
    BACKUP_PREFIX, BackupDone, Health, InstalledCopy, RestoreError, TableRows, backup_name,
    check_file, install_copy, lock_path, try_lock_exclusive,
};
pub use calls::{
    AccountStop, Call, CallOutcome, CallRecorded, Choice, PracticeUpdate, ReplyApplied,
    ScheduleAge, SendTrouble, WaitingReply,
};
pub use channels::{NumberFacts, PatientChannels};
pub use claims::{ClaimScope, Claimed, Share, Verdict};
pub use conversation::{
    Conversation, ConversationPatient, Inbound, Line, Outbound, STAFF_RULE, StaffMessage,
    StaffRefusal, StaffSend, StaffSent, WINDOW, text_of, window_open,
};
pub use desk_status::{DeskChange, LastMessage, Note};
pub use documents::{DocumentQueued, DocumentTarget, SentDocument};
pub use feedback::{ScoreRecord, ScoreStored};
pub use feeds::{
    FeedCounts, FeedMessage, FeedStatus, MessageState, Received, SlotChange, SourceUpdate, SyncEnd,
};
pub use health::{AccountHealth, NumberHealth, TEMPLATE_HOLD, TemplateHealth, TemplateUpdate};
pub use identity::{NumberChange, NumberChangeRecord};
pub use import_digest::{ImportReader, KnownRow, RowDigest};
pub use inbound::{
    Delivery, MediaRecord, RecordedEvent, ReplyMedia, ReplyRecord, StatusApplied, StoredMedia,
};
pub use leases::Lease;
pub use offer_book::{BookBy, BookFacts, BookTask};
pub use offers::{AnswerTexts, FreeOpening, Landed, OfferAnswer, OfferDetail, Taken};
pub use outbox::{DueRow, Fallback, OutboxView, Outcome, PLAN_CHUNK, PlanCounts, SendWrite};
pub use patient::{
    Matched, MessageEvent, PatientAppointment, PatientFile, PatientHit, PatientSearch, ReplyEvent,
    SearchTerms, StaffEvent, Visit, WeekRow,
};
pub use privacy::{ConsentAnswer, Erased, PatientRef, PurgeCounts, Vacuum};
pub use remind::{ManualSent, Press, Pressed, RemindTarget};
pub use report::NamedNoShow;
pub use schedule::{
    AppointmentFilter, AppointmentView, AppointmentWrite, AuditEntry, AuditView, ImportCounts,
    ImportTx, PatientReach, StoredAppointment, StoredPatient,
};
pub use staff::{BoardRow, ChannelStats, FollowUp, Handled, ReplyView, RuleStats, Stats};
pub use to_postgres::CopyReport;
pub use upload::{ImportResult, KeptStatus, PastImport};
pub use waitlist::{NewEntry, OfferFacts, OfferView, WaitlistFigures, WaitlistImported};

/// The schema every new database gets; its `PRAGMA user_version` line is the version.
pub const SCHEMA_SQL: &str = include_str!("../../schema.sql");

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 17;

/// The PostgreSQL schema every new PostgreSQL database gets (the same tables as
/// [`SCHEMA_SQL`], in PostgreSQL's types).
pub const PG_SCHEMA_SQL: &str = include_str!("../../postgres/schema.sql");

/// The PostgreSQL schema version this build reads and writes (it counts its own steps).
pub const PG_SCHEMA_VERSION: i64 = 2;

/// The channel a PostgreSQL database notifies when a message becomes due now (the trigger
/// `outbox_due_notify`): the daemons listening on it dispatch at once.
pub const DUE_CHANNEL: &str = "reminderd_outbox_due";

/// PostgreSQL's upgrade steps: `PG_MIGRATIONS[i]` takes a database from version `i + 1` to
/// `i + 2` and records it in `reminderd_schema`. A new database gets [`PG_SCHEMA_SQL`] (version
/// 1) and then every step, so the two paths cannot drift.
const PG_MIGRATIONS: &[&str] = &[include_str!(
    "../../postgres/migrations/002-several-servers.sql"
)];

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
    include_str!("../../migrations/006-front-desk.sql"),
    include_str!("../../migrations/007-channels.sql"),
    include_str!("../../migrations/008-feeds.sql"),
    include_str!("../../migrations/009-backups.sql"),
    include_str!("../../migrations/010-conversations.sql"),
    include_str!("../../migrations/011-waitlist.sql"),
    include_str!("../../migrations/012-privacy.sql"),
    include_str!("../../migrations/013-performance.sql"),
    include_str!("../../migrations/014-import-digest.sql"),
    include_str!("../../migrations/015-numbers.sql"),
    include_str!("../../migrations/016-claims.sql"),
    include_str!("../../migrations/017-leases.sql"),
];

/// Prepared statements kept per connection (the webhook path uses about twenty, an import a
/// dozen per row: rusqlite's default of 16 would evict them).
const STATEMENT_CACHE: usize = 64;

/// How long a write waits for another process (the daemon, an import) to release the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(sql::Error::Sqlite(e))
    }
}

impl From<crate::model::UnknownWord> for StoreError {
    fn from(e: crate::model::UnknownWord) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// The store as async code shares it: one connection behind a std mutex, reached only
/// through [`Db::run`], which runs the work on a blocking thread so that a slow disk or a
/// long import never stalls the runtime's other tasks (the mini-redis `Db` pattern), or
/// through [`Db::run_grouped`], for work answered only once it is durable (group commit).
#[derive(Clone)]
pub struct Db {
    store: std::sync::Arc<std::sync::Mutex<Store>>,
    writer: std::sync::Arc<group::Writer>,
}

impl Db {
    /// Shares an open store.
    pub fn new(store: Store) -> Self {
        Self {
            store: std::sync::Arc::new(std::sync::Mutex::new(store)),
            writer: std::sync::Arc::default(),
        }
    }

    /// Runs `f` with the store on a blocking thread and hands back what it returns. `Err` only
    /// when `f` panicked: the store itself is still usable (a transaction a panic leaves open
    /// is rolled back when the store is next taken), so a poisoned lock is taken over, not
    /// fatal.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = std::sync::Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut store = shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            store.close_abandoned();
            f(&mut store)
        })
        .await
        .map_err(|e| StoreError::Panicked(e.to_string()))
    }

    /// Runs `f` in the writer's next group (one transaction and one commit for every delivery
    /// waiting, `f` in a savepoint of its own) and hands back its result once that commit is
    /// durable. When `f` fails only its own work is rolled back.
    pub async fn run_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.run(&self.store, f).await
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Db")
    }
}

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
    /// The PostgreSQL server could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {url}: {cause}")]
    Connect {
        /// The server, without its password.
        url: String,
        /// What the driver said (in the message already, so not a separate source).
        cause: sql::Error,
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
    Sql(#[from] sql::Error),
    /// A stored value is not one this build knows (a hand-edited or corrupt row).
    #[error("database holds an unexpected value: {0}")]
    Corrupt(String),
    /// What a person asked for does not exist; the message says what to type instead.
    #[error("{0}")]
    NotFound(String),
    /// What a person asked for matches more than one row; the message says how to narrow it.
    #[error("{0}")]
    Ambiguous(String),
    /// What staff asked for cannot be done now (a no-show before the appointment's time,
    /// nothing to undo); the message says why, in words for the front desk.
    #[error("{0}")]
    Refused(String),
    /// The code working with the store panicked (a bug; the database is unharmed).
    #[error("internal error while using the database: {0}")]
    Panicked(String),
}

impl StoreError {
    /// Whether the database is out of reach for now (PostgreSQL down or unreachable), so the
    /// caller should answer "try again later" (a webhook's 503) rather than "failed".
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sql(e) | Self::Connect { cause: e, .. } => e.is_unavailable(),
            _ => false,
        }
    }
}

/// What a database failure means for the person reading it; the driver's own text follows
/// as the error's source.
fn explain(e: &sql::Error) -> &'static str {
    match e {
        sql::Error::Sqlite(e) => explain_sqlite(e),
        e if e.is_unavailable() => {
            "the PostgreSQL server could not be reached; nothing was written, it is tried again when it is back"
        }
        _ => "a query failed",
    }
}

/// [`explain`] for SQLite's codes.
fn explain_sqlite(e: &rusqlite::Error) -> &'static str {
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
    explain_sqlite(e)
}

/// An open reminderd database.
pub struct Store {
    conn: sql::Conn,
    /// The SQLite file; empty on PostgreSQL.
    path: PathBuf,
    /// Where the PostgreSQL server is (a second connection is opened from it); `None` on
    /// SQLite.
    postgres: Option<sql::PgOptions>,
    /// A shared `flock` on `<db>.lock` for as long as the store is open: `restore` takes it
    /// exclusively, so it cannot replace a file any process is using (`backup::lock_shared`).
    _lock: Option<std::fs::File>,
    /// The outbox keys the last plan found or wrote (`planned.rs`).
    planned: planned::Planned,
    /// This process's name among the instances sharing the database: its claims carry it.
    instance: String,
}

/// A name for this process's claims, unique among the instances on one database (its pid
/// alone could repeat on another server).
fn instance_name() -> String {
    format!("{}-{:08x}", std::process::id(), rand::random::<u32>())
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A store method's transaction: its own when the connection is idle, else a savepoint in the
/// transaction already open (the webhook's group commit runs many deliveries in one), so the
/// method is all-or-nothing either way and commits only when its caller does.
pub(crate) type Tx<'a> = sql::Transaction<'a>;

impl Store {
    /// Begins a method's transaction (`behavior` when it is its own; see [`Tx`]).
    pub(crate) fn begin(&mut self, behavior: sql::TransactionBehavior) -> sql::Result<Tx<'_>> {
        self.conn.transaction_with_behavior(behavior)
    }

    /// Runs `f` all or nothing: in a transaction of its own (committed when `f` returns `Ok`),
    /// or, inside one already open, in a savepoint, so that store methods `f` calls commit
    /// together, once.
    pub fn atomically<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn
            .begin(sql::TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let result = f(self);
        self.conn
            .end(result.is_ok())
            .map_err(|e| E::from(StoreError::from(e)))?;
        result
    }

    /// Rolls back a transaction left open by code that panicked inside
    /// [`Store::atomically`] or a group (their `BEGIN` has no guard to end it).
    fn close_abandoned(&mut self) {
        if self.conn.rollback_all() {
            tracing::error!("a transaction was left open by a panic; rolled back");
        }
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut store = Self::open_unmigrated(path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens a database as it is, without upgrading an older schema: for copying it while an
    /// older daemon may still be running on it (a newer schema, or a file that is not ours, is
    /// still refused). Everything else reads and writes through [`Store::open`].
    pub fn open_unmigrated(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let lock = backup::lock_shared(path);
        create_private(path);
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // journal_mode answers with the mode in force; anything but WAL means the file system
        // cannot do it (e.g. some network mounts), and crash safety relies on WAL.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", (), |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Incompatible {
                path: path.to_path_buf(),
                message: format!(
                    "cannot use write-ahead logging (journal mode is {mode}); put the database on a local disk"
                ),
            });
        }
        // FULL: a commit is on disk (the WAL synced) before it returns, so a power cut cannot
        // take back what was promised after it (a webhook's 200, an HL7 ACK, a send marked as
        // requested); NORMAL would survive only a crash of the process.
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
            .map_err(open_err)?;
        // The webhook's statements are prepared once (`prepare_cached`) and stay prepared.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let store = Self {
            conn: sql::Conn::sqlite(conn),
            path: path.to_path_buf(),
            postgres: None,
            _lock: lock,
            planned: planned::Planned::default(),
            instance: instance_name(),
        };
        let version = store.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(store.newer(version));
        }
        Ok(store)
    }

    fn newer(&self, version: i64) -> StoreError {
        StoreError::Incompatible {
            path: self.path.clone(),
            message: format!(
                "it was written by a newer reminderd (schema version {version}, this build knows {SCHEMA_VERSION}); upgrade reminderd"
            ),
        }
    }

    /// Connects to the PostgreSQL database `options` name and brings its schema up to date
    /// (creating it in an empty database). Several instances may do this at once: the first
    /// creates, the others wait for its transaction and find the schema made.
    pub fn connect(options: &sql::PgOptions) -> Result<Self, StoreError> {
        let conn = sql::Conn::postgres(options).map_err(|cause| StoreError::Connect {
            url: sql::redact(&options.url),
            cause,
        })?;
        let mut store = Self {
            conn,
            path: PathBuf::new(),
            postgres: Some(options.clone()),
            _lock: None,
            planned: planned::Planned::default(),
            instance: instance_name(),
        };
        store.migrate_postgres()?;
        Ok(store)
    }

    fn migrate_postgres(&mut self) -> Result<(), StoreError> {
        let url = self
            .postgres
            .as_ref()
            .map(|o| sql::redact(&o.url))
            .unwrap_or_default();
        let tx = self
            .conn
            .transaction_with_behavior(sql::TransactionBehavior::Immediate)?;
        let ours: bool = tx.query_row(
            "SELECT to_regclass('reminderd_schema') IS NOT NULL",
            (),
            |r| r.get(0),
        )?;
        if ours {
            let version: i64 =
                tx.query_row("SELECT max(version) FROM reminderd_schema", (), |r| {
                    r.get(0)
                })?;
            if version > PG_SCHEMA_VERSION {
                return Err(StoreError::Incompatible {
                    path: PathBuf::from(url),
                    message: format!(
                        "it was written by a newer reminderd (PostgreSQL schema version {version}, this build knows {PG_SCHEMA_VERSION}); upgrade reminderd"
                    ),
                });
            }
            for step in &PG_MIGRATIONS[(version - 1) as usize..] {
                tx.execute_batch(step)?;
            }
        } else {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                (),
                |r| r.get(0),
            )?;
            if tables > 0 {
                return Err(StoreError::Incompatible {
                    path: PathBuf::from(url),
                    message: "it is not a reminderd database (it has tables but no reminderd_schema); give database.url a database of its own".into(),
                });
            }
            tx.execute_batch(PG_SCHEMA_SQL)?;
            for step in PG_MIGRATIONS {
                tx.execute_batch(step)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Opens the store `config` names: its SQLite file, or its PostgreSQL database (with the
    /// password from the environment or a systemd credential).
    pub fn open_configured(config: &crate::config::Config) -> Result<Self, StoreError> {
        let Some(url) = &config.database_url else {
            return Self::open(&config.database_path);
        };
        let password = crate::secrets::database_password().map_err(|e| StoreError::Connect {
            url: sql::redact(url),
            cause: sql::Error::Invalid(e.to_string()),
        })?;
        Self::connect(&sql::PgOptions {
            url: url.clone(),
            password: password.map(|p| secrecy::ExposeSecret::expose_secret(&p).to_string()),
            application_name: "reminderd".into(),
        })
    }

    /// A new store for a unit test in `dir`: its SQLite file there, or, when the suites run
    /// on PostgreSQL (`REMINDERD_TEST_POSTGRES`), a fresh database of its own.
    #[cfg(test)]
    pub(crate) fn open_for_test(dir: &Path) -> Self {
        match sql::testing::fresh_database() {
            Some(pg) => Self::connect(&pg).expect("connect to the test database"),
            None => Self::open(&dir.join("test.db")).expect("open the test database"),
        }
    }

    /// A second store on the same database, as another instance would open it.
    #[cfg(test)]
    pub(crate) fn reopen_for_test(&self) -> Self {
        match &self.postgres {
            Some(pg) => Self::connect(pg).expect("connect again"),
            None => Self::open(&self.path).expect("open again"),
        }
    }

    /// The PostgreSQL server and database the store is on (`None` on SQLite): for the
    /// daemon's second connection, which listens for wake-ups.
    pub fn postgres_options(&self) -> Option<&sql::PgOptions> {
        self.postgres.as_ref()
    }

    /// Which engine the store is on.
    pub fn backend(&self) -> sql::Backend {
        self.conn.backend()
    }

    /// The file this store was opened from (empty on PostgreSQL).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (each engine counts its own).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let sql = self.conn.pick(
            "PRAGMA user_version",
            "SELECT max(version) FROM reminderd_schema",
        );
        Ok(self.conn.query_row(sql, (), |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(self.newer(version));
        }
        // A step may rebuild a table (SQLite's 12-step procedure: create, copy, drop, rename),
        // and dropping a table others refer to is refused while foreign keys are enforced; the
        // pragma cannot change inside a transaction, so it is off around it and the keys are
        // checked before the commit instead.
        self.conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        let result = self.migrate_from(version);
        self.conn.execute_batch("PRAGMA foreign_keys = ON")?;
        result
    }

    fn migrate_from(&mut self, version: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        if version == 0 {
            let tables: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                (),
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
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        }
        // Only steps can break a reference; a full check on every open would scan every table.
        let stepped = version != 0 && version < SCHEMA_VERSION;
        let broken: Vec<String> = if stepped {
            let mut stmt = tx.prepare("PRAGMA foreign_key_check")?;
            stmt.query_map((), |r| {
                Ok(format!(
                    "{} row {} refers to a missing {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                    r.get::<_, String>(2)?
                ))
            })?
            .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        if !broken.is_empty() {
            return Err(StoreError::Incompatible {
                path: self.path.clone(),
                message: format!(
                    "it cannot be upgraded, nothing was changed: {}",
                    broken.join("; ")
                ),
            });
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
            .query_row("PRAGMA journal_mode", (), |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn
            .query_row("PRAGMA foreign_keys", (), |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1);
        drop(store);
        Store::open(&path).expect("reopen");
    }

    #[test]
    fn every_commit_is_synced_and_methods_nest_in_an_open_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(&dir.path().join("r.db")).expect("open");
        // 2 = FULL: the WAL is synced at every commit, so a power cut keeps what was answered.
        let sync: i64 = store
            .conn
            .query_row("PRAGMA synchronous", (), |r| r.get(0))
            .expect("synchronous");
        assert_eq!(sync, 2);
        store
            .conn
            .execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .expect("table");
        let insert = |s: &mut Store, v: i64| {
            let tx = s.begin(crate::store::sql::TransactionBehavior::Immediate)?;
            tx.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        };
        // Alone, a method's transaction commits on its own.
        insert(&mut store, 1).expect("alone");
        assert!(store.conn.is_autocommit());
        // Inside an outer one, it commits only with it: a failure later undoes it too, and a
        // failing inner one is undone without ending the outer.
        let outer = store.atomically(|s| {
            insert(s, 2)?;
            assert!(insert(s, 1).is_err(), "duplicate");
            insert(s, 3)?;
            Err::<(), _>(StoreError::Refused("undo all".into()))
        });
        assert!(outer.is_err());
        store
            .atomically(|s| {
                insert(s, 4)?;
                assert!(insert(s, 4).is_err(), "duplicate");
                insert(s, 5)
            })
            .expect("outer");
        let kept: Vec<i64> = store
            .conn
            .prepare("SELECT v FROM t ORDER BY v")
            .and_then(|mut q| q.query_map((), |r| r.get(0))?.collect())
            .expect("rows");
        assert_eq!(kept, [1, 4, 5]);
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
