//! Backups while the daemon runs, restores, and the store's health (`reminderd check-db`).
//!
//! A backup copies the database through SQLite's online backup API inside one read
//! transaction on the source: in WAL mode a reader never blocks the daemon's writers, and
//! holding the snapshot across the steps is what keeps the copy consistent (without it, SQLite
//! restarts a stepped backup each time another connection commits, which under a busy
//! dispatch could be forever). The copy is written under a temporary name, checked with
//! `PRAGMA integrity_check`, synced and renamed into place.
//!
//! Who may replace the file is settled by a lock beside it: every open store holds a shared
//! `flock` on `<db>.lock`, and a restore takes it exclusively or refuses.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::store::sql::{OptionalExtension as _, params};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::{SCHEMA_VERSION, Store, StoreError};
use crate::time::Clock;

/// Backup files that `reminderd backup FOLDER` names, and `--keep` prunes, start with this.
pub const BACKUP_PREFIX: &str = "reminderd-";

/// Pages copied per step (1 MiB with 4 KiB pages) and the pause between steps: the copy
/// shares the disk with the daemon's commits and their fsyncs.
const PAGES_PER_STEP: i32 = 256;
const STEP_PAUSE: Duration = Duration::from_millis(2);

/// The tables whose rows `check-db` counts: the ones that grow with use.
const BIG_TABLES: [&str; 6] = [
    "appointments",
    "outbox",
    "audit_log",
    "inbound_events",
    "feed_messages",
    "replies",
];

/// Tables every reminderd database has had since schema 1: a file without them is not ours.
const OUR_TABLES: [&str; 3] = ["clinics", "appointments", "patients"];

/// The lock file beside a database: `<db>.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Opens the lock file, creating it if needed. It is empty and readable by all (0644): the
/// daemon's service user must be able to open one that root created while restoring, and a
/// lock taken through a read-only descriptor is as good as any.
fn open_lock(db: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = lock_path(db);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .or_else(|_| File::open(&path))
}

/// A shared lock for an open store, held until the store is dropped. It waits while a restore
/// replaces the file (seconds), so a daemon started meanwhile opens the restored database.
/// `None` when the lock file cannot be opened (a read-only folder): SQLite's own open then
/// says what is wrong in its words.
pub(super) fn lock_shared(db: &Path) -> Option<File> {
    let file = open_lock(db).ok()?;
    file.lock_shared().ok()?;
    Some(file)
}

/// The exclusive lock a restore holds while it replaces the file, or `None` when another
/// process (the daemon, `reminderd serve`, an import) has the database open.
pub fn try_lock_exclusive(db: &Path) -> io::Result<Option<File>> {
    let file = open_lock(db)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// `reminderd-YYYYMMDD-HHMMSS.db` for a backup taken at `at` (UTC, so names sort by time).
pub fn backup_name(at: DateTime<Utc>) -> String {
    format!("{BACKUP_PREFIX}{}.db", at.format("%Y%m%d-%H%M%S"))
}

/// A backup written, checked and renamed into place.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupDone {
    /// Where the copy is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The instant of its snapshot: every row committed before it is in the copy.
    pub taken_at: DateTime<Utc>,
    /// Its schema version.
    pub schema_version: i64,
    /// How long the copy and its check took, in seconds.
    pub seconds: f64,
}

/// Rows in one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableRows {
    /// The table.
    pub table: &'static str,
    /// Its rows, or `None` when this schema version has no such table.
    pub rows: Option<i64>,
}

/// What `check-db` reports of a database file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// The file.
    pub path: PathBuf,
    /// `PRAGMA integrity_check`'s lines: `["ok"]` for a sound file.
    pub integrity: Vec<String>,
    /// `PRAGMA user_version`, if it could be read.
    pub schema_version: Option<i64>,
    /// Whether the file has reminderd's tables.
    pub ours: bool,
    /// The database file's size.
    pub file_bytes: u64,
    /// The write-ahead log's size (0 when there is none).
    pub wal_bytes: u64,
    /// Rows in the tables that grow.
    pub tables: Vec<TableRows>,
    /// When the newest backup recorded in this database was taken.
    pub last_backup_at: Option<DateTime<Utc>>,
}

impl Health {
    /// Whether the integrity check found nothing wrong.
    pub fn is_sound(&self) -> bool {
        self.integrity == ["ok"]
    }
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstalledCopy {
    /// The copy restored from.
    pub source: PathBuf,
    /// The database file it now is.
    pub database: PathBuf,
    /// The copy's schema version, before the next open upgrades it.
    pub schema_version: i64,
    /// Where the database it replaced was kept (and its write-ahead log, if it had one).
    pub kept_aside: Vec<PathBuf>,
    /// The restored copy's health as checked before it was put in place.
    pub health: Health,
    /// Set when the restored file could not be given the replaced file's owner.
    pub owner_warning: Option<String>,
}

/// The write-ahead log beside the database at `db`.
pub(super) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// A folder's entry made durable: the rename is on disk before we report it done.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder a file is in (`.` for a bare name): where its copies and snapshots go.
pub(super) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn io_err(path: &Path, what: &str, e: &io::Error) -> StoreError {
    StoreError::Refused(format!("{what} {}: {e}", path.display()))
}

/// Reads a database file's health without writing to it (no migration, no lock). Missing
/// file: `NotFound`. A file SQLite cannot read at all still gets a report, whose integrity
/// lines say why.
pub fn check_file(path: &Path) -> Result<Health, StoreError> {
    if !path.is_file() {
        return Err(StoreError::NotFound(format!(
            "{} does not exist or is not a file",
            path.display()
        )));
    }
    let mut health = Health {
        path: path.to_path_buf(),
        integrity: Vec::new(),
        schema_version: None,
        ours: false,
        file_bytes: file_len(path),
        wal_bytes: file_len(&wal_path(path)),
        tables: Vec::new(),
        last_backup_at: None,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(super::BUSY_TIMEOUT)?;
    if let Err(e) = inspect(&super::sql::Conn::sqlite(conn), &mut health) {
        health.integrity.push(e.to_string());
    }
    Ok(health)
}

/// Fills in what the file says of itself; an error here (a file that is not a database, a
/// page SQLite refuses) becomes one of the integrity lines.
fn inspect(conn: &super::sql::Conn, h: &mut Health) -> crate::store::sql::Result<()> {
    h.schema_version = Some(conn.query_row("PRAGMA user_version", (), |r| r.get(0))?);
    let has = |table: &str| -> crate::store::sql::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let mut ours = true;
    for t in OUR_TABLES {
        ours &= has(t)?;
    }
    h.ours = ours;
    // Up to 20 problems: enough to tell a damaged page from a damaged file.
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
    h.integrity = stmt
        .query_map((), |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    for table in BIG_TABLES {
        let rows = if has(table)? {
            Some(conn.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?)
        } else {
            None
        };
        h.tables.push(TableRows { table, rows });
    }
    if has("backups")? {
        h.last_backup_at = conn
            .query_row("SELECT max(taken_at) FROM backups", (), |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .and_then(|t| DateTime::from_timestamp(t, 0));
    }
    Ok(())
}

/// Why a restore was refused, each with the exit code its kind deserves.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Another process has the database open.
    #[error(
        "{} is in use (the daemon, `reminderd serve` or another command has it open); nothing was changed. Stop it first (systemctl stop reminderd), then restore",
        .0.display()
    )]
    InUse(PathBuf),
    /// The copy to restore from does not exist.
    #[error("{} does not exist; nothing was changed", .0.display())]
    Missing(PathBuf),
    /// The copy is not one this build can restore.
    #[error("{}: {problem}; nothing was changed", path.display())]
    Unfit {
        /// The copy.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading, writing or renaming failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Puts the copy at `src` in place of the database at `db`, holding the exclusive lock:
/// refuses while any process has `db` open, and refuses a copy that is damaged, not
/// reminderd's, newer than this build, or has a write-ahead log beside it. The database it
/// replaces is kept as `<db>.before-restore-<time>` (with its write-ahead log, which may hold
/// its last commits); a stale `-shm` is removed. The copy is checked after it was copied next
/// to `db`, so what was checked is what is installed.
pub fn install_copy(
    src: &Path,
    db: &Path,
    now: DateTime<Utc>,
) -> Result<InstalledCopy, RestoreError> {
    if !src.is_file() {
        return Err(RestoreError::Missing(src.to_path_buf()));
    }
    let dir = parent(db);
    let Some(_lock) =
        try_lock_exclusive(db).map_err(|e| io_err(&lock_path(db), "cannot open", &e))?
    else {
        return Err(RestoreError::InUse(db.to_path_buf()));
    };
    if file_len(&wal_path(src)) > 0 {
        return Err(RestoreError::Unfit {
            path: src.to_path_buf(),
            problem: "it has a write-ahead log (-wal) beside it, so it is a database in use or a copy taken without `reminderd backup`; restore a copy that `reminderd backup` made".into(),
        });
    }
    let tmp = tempfile::Builder::new()
        .prefix(".reminderd-restore-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| io_err(&dir, "cannot write in", &e))?;
    {
        let mut from = File::open(src).map_err(|e| io_err(src, "cannot read", &e))?;
        let mut to = tmp.as_file();
        io::copy(&mut from, &mut to).map_err(|e| io_err(tmp.path(), "cannot write", &e))?;
        to.sync_all()
            .map_err(|e| io_err(tmp.path(), "cannot write", &e))?;
    }
    let health = check_file(tmp.path())?;
    let unfit = |problem: String| RestoreError::Unfit {
        path: src.to_path_buf(),
        problem,
    };
    if !health.is_sound() {
        return Err(unfit(format!(
            "it fails SQLite's integrity check ({})",
            health.integrity.join("; ")
        )));
    }
    let version = health.schema_version.unwrap_or(0);
    if !health.ours || version < 1 {
        return Err(unfit("it is not a reminderd database".into()));
    }
    if version > SCHEMA_VERSION {
        return Err(unfit(format!(
            "it was written by a newer reminderd (schema version {version}, this build knows {SCHEMA_VERSION}); restore it with that version or upgrade reminderd first"
        )));
    }
    // Keep what is there now, with its log; the shared memory file only indexes the log.
    let mut kept_aside = Vec::new();
    let mut owner = None;
    if let Ok(meta) = std::fs::metadata(db) {
        use std::os::unix::fs::MetadataExt as _;
        owner = Some((meta.uid(), meta.gid()));
        let mut aside = db.as_os_str().to_owned();
        aside.push(format!(".before-restore-{}", now.format("%Y%m%d-%H%M%S")));
        let aside = PathBuf::from(aside);
        std::fs::rename(db, &aside).map_err(|e| io_err(db, "cannot move aside", &e))?;
        kept_aside.push(aside.clone());
        if wal_path(db).exists() {
            std::fs::rename(wal_path(db), wal_path(&aside))
                .map_err(|e| io_err(&wal_path(db), "cannot move aside", &e))?;
            kept_aside.push(wal_path(&aside));
        }
    } else if wal_path(db).exists() {
        std::fs::remove_file(wal_path(db))
            .map_err(|e| io_err(&wal_path(db), "cannot remove", &e))?;
    }
    if shm_path(db).exists() {
        std::fs::remove_file(shm_path(db))
            .map_err(|e| io_err(&shm_path(db), "cannot remove", &e))?;
    }
    tmp.persist(db)
        .map_err(|e| io_err(db, "cannot put the copy at", &e.error))?;
    sync_dir(&dir).map_err(|e| io_err(&dir, "cannot sync", &e))?;
    // A restore run as root must leave a file the service's user can still write.
    let owner_warning = owner.and_then(|(uid, gid)| {
        std::os::unix::fs::chown(db, Some(uid), Some(gid))
            .err()
            .map(|e| {
                format!(
                    "could not give {} its previous owner ({uid}:{gid}): {e}",
                    db.display()
                )
            })
    });
    Ok(InstalledCopy {
        source: src.to_path_buf(),
        database: db.to_path_buf(),
        schema_version: version,
        kept_aside,
        health,
        owner_warning,
    })
}

impl Store {
    /// Copies the database to `dest` (a file path) while others keep writing: one snapshot,
    /// copied in steps, checked, synced, renamed into place with mode 0600, and recorded in
    /// `backups`. A copy that fails its integrity check is deleted and the error says why.
    pub fn backup_to(&self, dest: &Path, clock: Clock) -> Result<BackupDone, StoreError> {
        let from = self.conn.as_sqlite().ok_or_else(|| {
            StoreError::Refused(
                "a PostgreSQL store is backed up by the server's own tools (pg_dump, or the service's snapshots), not by reminderd".into(),
            )
        })?;
        let started = std::time::Instant::now();
        let dir = parent(dest);
        // Created 0600 by tempfile; SQLite keeps an existing file's mode.
        let tmp = tempfile::Builder::new()
            .prefix(".reminderd-backup-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| io_err(&dir, "cannot write in", &e))?;
        let (schema_version, taken_at) = self.snapshot_into(from, tmp.path(), clock)?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err(tmp.path(), "cannot write", &e))?;
        let health = check_file(tmp.path())?;
        if !health.is_sound() {
            return Err(StoreError::Corrupt(format!(
                "the copy failed SQLite's integrity check and was deleted ({}); run `reminderd check-db`",
                health.integrity.join("; ")
            )));
        }
        tmp.persist(dest)
            .map_err(|e| io_err(dest, "cannot write", &e.error))?;
        sync_dir(&dir).map_err(|e| io_err(&dir, "cannot sync", &e))?;
        let bytes = file_len(dest);
        let path = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
        // A database from before schema 9 (copied as it is, unmigrated) has no such table.
        let has_table: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'backups'",
            (),
            |r| r.get(0),
        )?;
        if has_table {
            self.conn.execute(
                "INSERT INTO backups (taken_at, path, bytes) VALUES (?1, ?2, ?3)",
                params![taken_at.timestamp(), path.to_string_lossy(), bytes as i64],
            )?;
        }
        Ok(BackupDone {
            path,
            bytes,
            taken_at,
            schema_version,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Copies one instant of the database into the file `to` (SQLite's online backup, in
    /// steps): its schema version and the instant. Unchecked and unrecorded: for
    /// [`Store::backup_to`] and for a copy read once and deleted.
    pub(super) fn snapshot_into(
        &self,
        from: &Connection,
        to: &Path,
        clock: Clock,
    ) -> Result<(i64, DateTime<Utc>), StoreError> {
        // The read transaction is the snapshot: every step reads it, so the copy is one
        // instant of the database, and writers carry on in the write-ahead log meanwhile.
        self.conn.execute_batch("BEGIN")?;
        let copied = (|| {
            let schema_version: i64 = self
                .conn
                .query_row("PRAGMA user_version", (), |r| r.get(0))?;
            let taken_at = clock.now();
            let mut to = Connection::open(to)?;
            rusqlite::backup::Backup::new(from, &mut to)?.run_to_completion(
                PAGES_PER_STEP,
                STEP_PAUSE,
                None,
            )?;
            // One self-contained file: no -wal or -shm beside the copy.
            to.query_row("PRAGMA journal_mode = DELETE", (), |_| Ok(()))?;
            Ok::<_, crate::store::sql::Error>((schema_version, taken_at))
        })();
        self.conn.execute_batch("COMMIT")?;
        Ok(copied?)
    }

    /// When the newest backup was taken, if one ever was.
    pub fn last_backup_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> = self
            .conn
            .query_row("SELECT max(taken_at) FROM backups", (), |r| r.get(0))
            .optional()?
            .flatten();
        Ok(t.and_then(|t| DateTime::from_timestamp(t, 0)))
    }

    /// The database's size on disk: the file and its write-ahead log.
    pub fn database_bytes(&self) -> u64 {
        file_len(&self.path) + file_len(&wal_path(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_rows(dir: &Path, n: i64) -> Store {
        let store = Store::open(&dir.join("live.db")).expect("open");
        store
            .conn
            .execute_batch("CREATE TABLE filler (x TEXT)")
            .expect("filler");
        for i in 0..n {
            store
                .conn
                .execute("INSERT INTO filler VALUES (?1)", [format!("{i:0>400}")])
                .expect("insert");
        }
        store
    }

    #[test]
    fn a_backup_is_the_snapshot_at_its_start_even_while_another_connection_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with_rows(dir.path(), 3000);
        // Another connection commits during the copy, from the backup's own progress: in a
        // stepped backup without the snapshot this would restart it, or mix two instants.
        let other = Connection::open(dir.path().join("live.db")).expect("other");
        other.busy_timeout(Duration::from_secs(5)).expect("busy");
        let dest = dir.path().join("copy.db");
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                for i in 0..200 {
                    other
                        .execute("INSERT INTO filler VALUES (?1)", [format!("late {i}")])
                        .expect("late insert");
                }
            });
            let done = store.backup_to(&dest, Clock::System).expect("backup");
            writer.join().expect("writer");
            assert_eq!(done.schema_version, SCHEMA_VERSION);
        });
        let copy = Connection::open(&dest).expect("open copy");
        let rows: i64 = copy
            .query_row(
                "SELECT count(*) FROM filler WHERE x NOT LIKE 'late%'",
                (),
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(rows, 3000, "every row committed before the backup");
        let late: i64 = copy
            .query_row(
                "SELECT count(*) FROM filler WHERE x LIKE 'late%'",
                (),
                |r| r.get(0),
            )
            .expect("count");
        let ids: Vec<i64> = copy
            .prepare("SELECT rowid FROM filler ORDER BY rowid")
            .expect("prepare")
            .query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("ids");
        assert_eq!(ids.len() as i64, 3000 + late, "no row twice, none torn");
        let header = std::fs::read(&dest).expect("read");
        assert_eq!(
            (header[18], header[19]),
            (1, 1),
            "a rollback-journal file, no -wal needed"
        );
        assert!(!wal_path(&dest).exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&dest).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.last_backup_at().expect("last").is_some());
    }

    #[test]
    fn an_open_store_holds_the_lock_a_restore_needs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("live.db");
        let store = Store::open(&db).expect("open");
        assert!(try_lock_exclusive(&db).expect("lock").is_none());
        let err = install_copy(&db, &db, Clock::System.now()).expect_err("in use");
        assert!(matches!(err, RestoreError::InUse(_)), "{err}");
        drop(store);
        assert!(try_lock_exclusive(&db).expect("lock").is_some());
    }

    #[test]
    fn check_file_tells_ours_from_a_stranger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("live.db");
        drop(Store::open(&db).expect("open"));
        let h = check_file(&db).expect("check");
        assert!(h.is_sound() && h.ours, "{h:?}");
        assert_eq!(h.schema_version, Some(SCHEMA_VERSION));
        assert_eq!(h.tables.len(), BIG_TABLES.len());
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("other");
        assert!(!check_file(&other).expect("check").ours);
        let err = install_copy(&other, &dir.path().join("new.db"), Clock::System.now())
            .expect_err("stranger");
        assert!(
            err.to_string().contains("not a reminderd database"),
            "{err}"
        );
    }
}
