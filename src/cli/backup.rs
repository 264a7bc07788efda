//! `reminderd backup`, `restore` and `check-db`: copies of the database taken while the daemon
//! runs, putting one back, and the store's health. The SQL and the file dance live in
//! `store::backup`; this file resolves paths, prunes old copies and prints.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use reminderd::store::{
    self, BACKUP_PREFIX, Health, RestoreError, SCHEMA_VERSION, Store, StoreError,
};
use reminderd::time::Clock;

use super::output::{print_json, progress_bar, rfc3339};
use super::{exit, fail, load_config};

/// `reminderd backup DEST`.
#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    /// A file to write, or a folder: the copy is then named reminderd-YYYYMMDD-HHMMSS.db (UTC)
    dest: PathBuf,
    /// In that folder, keep only the newest N reminderd-*.db copies, this one included
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep: Option<u32>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `reminderd restore SRC`.
#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// A copy made by `reminderd backup`
    src: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// `reminderd check-db`.
#[derive(Debug, Args)]
pub(super) struct CheckDbArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// The database file the config (or `--db`) names.
fn database(config_path: &Path, db: Option<&Path>) -> Result<PathBuf> {
    let config = load_config(config_path, db)?;
    if let Some(url) = &config.database_url {
        return Err(fail(
            exit::CONFIG,
            format!(
                "database.url: {} is a PostgreSQL database; back it up and check it with the server's own tools (pg_dump, pg_basebackup, or the managed service's snapshots), not with reminderd",
                reminderd::store::sql::redact(url)
            ),
        ));
    }
    Ok(config.database_path)
}

pub(super) fn backup(config_path: &Path, db: Option<&Path>, args: &BackupArgs) -> Result<u8> {
    let path = database(config_path, db)?;
    if !path.is_file() {
        return Err(fail(
            exit::NO_INPUT,
            format!("no database at {}: nothing to back up", path.display()),
        ));
    }
    let folder = args.dest.is_dir() || args.dest.as_os_str().to_string_lossy().ends_with('/');
    if args.keep.is_some() && !folder {
        return Err(fail(
            exit::USAGE,
            format!(
                "--keep needs a folder to prune, and {} is not one",
                args.dest.display()
            ),
        ));
    }
    let clock = Clock::System;
    let file = if folder {
        std::fs::create_dir_all(&args.dest).map_err(|e| {
            fail(
                exit::IO,
                format!("cannot create {}: {e}", args.dest.display()),
            )
        })?;
        let file = args.dest.join(store::backup_name(clock.now()));
        if file.exists() {
            return Err(fail(
                exit::IO,
                format!(
                    "{} already exists (a backup this second); nothing was written",
                    file.display()
                ),
            ));
        }
        file
    } else {
        args.dest.clone()
    };
    // As it is: the daemon may still run an older binary on it after a package upgrade.
    let store = Store::open_unmigrated(&path)?;
    let done = store.backup_to(&file, clock)?;
    let pruned = match args.keep {
        Some(keep) => prune(&args.dest, keep as usize)?,
        None => Vec::new(),
    };
    if args.json {
        print_json(&serde_json::json!({
            "database": path,
            "path": done.path,
            "bytes": done.bytes,
            "taken_at": rfc3339(done.taken_at),
            "schema_version": done.schema_version,
            "integrity": "ok",
            "seconds": done.seconds,
            "pruned": pruned,
        }))?;
    } else {
        println!(
            "backed up {} to {} ({}, schema version {}, integrity ok) in {:.1} s",
            path.display(),
            done.path.display(),
            size(done.bytes),
            done.schema_version,
            done.seconds
        );
        println!(
            "it holds everything committed before {}",
            done.taken_at.format("%Y-%m-%d %H:%M:%S UTC")
        );
        for p in &pruned {
            println!("removed the older copy {}", p.display());
        }
    }
    Ok(exit::OK)
}

/// Whether a file name is one `backup` gives: `reminderd-YYYYMMDD-HHMMSS.db`, nothing else
/// (so `--keep` never deletes a copy someone named by hand).
fn is_backup_name(name: &str) -> bool {
    name.strip_prefix(BACKUP_PREFIX)
        .and_then(|rest| rest.strip_suffix(".db"))
        .is_some_and(|stamp| {
            stamp.len() == 15
                && stamp.char_indices().all(
                    |(i, c)| {
                        if i == 8 { c == '-' } else { c.is_ascii_digit() }
                    },
                )
        })
}

/// Deletes the oldest backups in `folder` beyond the newest `keep` (their names sort by time).
fn prune(folder: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(folder)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_backup_name(n))
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for name in names.into_iter().skip(keep) {
        let p = folder.join(name);
        std::fs::remove_file(&p)
            .map_err(|e| fail(exit::IO, format!("cannot remove {}: {e}", p.display())))?;
        removed.push(p);
    }
    Ok(removed)
}

pub(super) fn restore(config_path: &Path, db: Option<&Path>, args: &RestoreArgs) -> Result<u8> {
    let path = database(config_path, db)?;
    let done = match store::install_copy(&args.src, &path, Clock::System.now()) {
        Ok(done) => done,
        Err(e @ RestoreError::Missing(_)) => return Err(fail(exit::NO_INPUT, e.to_string())),
        Err(e @ RestoreError::Unfit { .. }) => return Err(fail(exit::DATA, e.to_string())),
        Err(e @ RestoreError::InUse(_)) => return Err(fail(exit::IO, e.to_string())),
        Err(RestoreError::Store(e)) => return Err(e.into()),
    };
    let upgrade = done.schema_version < SCHEMA_VERSION;
    if args.json {
        print_json(&serde_json::json!({
            "database": done.database,
            "source": done.source,
            "schema_version": done.schema_version,
            "upgraded_on_next_open": upgrade,
            "kept_aside": done.kept_aside,
            "tables": done.health.tables,
            "owner_warning": done.owner_warning,
        }))?;
        return Ok(exit::OK);
    }
    println!(
        "restored {} from {} (schema version {}, integrity ok)",
        done.database.display(),
        done.source.display(),
        done.schema_version
    );
    println!("  {}", rows(&done.health));
    match done.kept_aside.as_slice() {
        [] => println!("there was no database there before"),
        kept => {
            let kept: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
            println!("the database it replaced is kept as {}", kept.join(" and "));
        }
    }
    if upgrade {
        println!(
            "its schema (version {}) is older than this build's ({SCHEMA_VERSION}): reminderd upgrades it when it next opens it",
            done.schema_version
        );
    }
    if let Some(w) = &done.owner_warning {
        println!("warning: {w}");
    }
    println!("start the daemon again (systemctl start reminderd) to resume from this copy");
    Ok(exit::OK)
}

pub(super) fn check_db(config_path: &Path, db: Option<&Path>, args: &CheckDbArgs) -> Result<u8> {
    let path = database(config_path, db)?;
    let health = match store::check_file(&path) {
        Ok(h) => h,
        Err(e @ StoreError::NotFound(_)) => return Err(fail(exit::NO_INPUT, e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let code = if !health.is_sound() {
        exit::IO
    } else if !health.ours {
        exit::DATA
    } else {
        exit::OK
    };
    if args.json {
        print_json(&serde_json::json!({
            "path": health.path,
            "ok": code == exit::OK,
            "integrity": health.integrity,
            "ours": health.ours,
            "schema_version": health.schema_version,
            "build_schema_version": SCHEMA_VERSION,
            "file_bytes": health.file_bytes,
            "wal_bytes": health.wal_bytes,
            "tables": health.tables,
            "last_backup_at": health.last_backup_at.map(rfc3339),
        }))?;
    } else {
        print_health(&health);
    }
    if code == exit::IO {
        eprintln!(
            "error: {} failed SQLite's integrity check; restore the newest good backup (reminderd restore)",
            path.display()
        );
    } else if code == exit::DATA {
        eprintln!("error: {} is not a reminderd database", path.display());
    }
    Ok(code)
}

fn print_health(h: &Health) {
    println!("database     {}", h.path.display());
    println!(
        "integrity    {}",
        if h.is_sound() {
            "ok".to_string()
        } else {
            format!("FAILED: {}", h.integrity.join("; "))
        }
    );
    let version = h
        .schema_version
        .map_or_else(|| "unreadable".to_string(), |v| v.to_string());
    let note = match h.schema_version {
        Some(v) if v > SCHEMA_VERSION => " (newer than this build: upgrade reminderd)",
        Some(v) if v < SCHEMA_VERSION => " (upgraded when reminderd next opens it)",
        _ => "",
    };
    println!("schema       version {version}, this build knows {SCHEMA_VERSION}{note}");
    println!(
        "size         {}, write-ahead log {}",
        size(h.file_bytes),
        size(h.wal_bytes)
    );
    println!("rows         {}", rows(h));
    println!(
        "last backup  {}",
        h.last_backup_at.map_or_else(
            || "never".to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        )
    );
}

/// "appointments 1234, outbox 2345, …" (a table this schema lacks is left out).
fn rows(h: &Health) -> String {
    h.tables
        .iter()
        .filter_map(|t| t.rows.map(|n| format!("{} {n}", t.table)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A size in the unit a person reads.
fn size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} bytes")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else {
        format!("{:.2} GiB", b / KIB / KIB / KIB)
    }
}

/// `reminderd migrate-to-postgres --from FILE`.
#[derive(Debug, Args)]
pub(super) struct MigrateArgs {
    /// The clinic's SQLite database (database.path in its config until now)
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// Copies a clinic's SQLite database into the empty PostgreSQL database `database.url` names.
pub(super) fn migrate_to_postgres(
    config_path: &Path,
    db: Option<&Path>,
    args: &MigrateArgs,
) -> Result<u8> {
    if db.is_some() {
        return Err(fail(
            exit::USAGE,
            "--db names a SQLite file and has no place here: give the SQLite database with --from, and the PostgreSQL one as database.url in the config",
        ));
    }
    let config = load_config(config_path, None)?;
    let Some(url) = &config.database_url else {
        return Err(fail(
            exit::CONFIG,
            format!(
                "{}: database.url is not set; put the PostgreSQL database to copy into there ([database] url = \"postgres://user@host/db\", instead of path) and give the SQLite file with --from",
                config_path.display()
            ),
        ));
    };
    let url = reminderd::store::sql::redact(url);
    let mut store = Store::open_configured(&config)?;
    let bar = progress_bar(
        args.json,
        "copying {msg:<24} {bar:30} {pos}/{len} ({elapsed})",
    );
    let done = store.copy_from_sqlite(&args.from, Clock::System, &mut |table, rows, total| {
        if let Some(bar) = &bar {
            bar.set_message(table.to_string());
            bar.set_length(total);
            bar.set_position(rows);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let done = match done {
        Ok(done) => done,
        Err(e @ StoreError::NotFound(_)) => return Err(fail(exit::NO_INPUT, e.to_string())),
        Err(e @ (StoreError::Refused(_) | StoreError::Corrupt(_))) => {
            return Err(fail(exit::DATA, e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        print_json(&serde_json::json!({
            "source": done.source,
            "source_schema_version": done.source_schema,
            "database": url,
            "tables": done.tables.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
            "rows": done.rows,
            "seconds": done.seconds,
        }))?;
        return Ok(exit::OK);
    }
    println!(
        "copied {} (schema version {}) into {url}: {} rows in {} tables, in {:.1} s",
        done.source.display(),
        done.source_schema,
        done.rows,
        done.tables.len(),
        done.seconds
    );
    let width = done.tables.iter().map(|(t, _)| t.len()).max().unwrap_or(0);
    for (table, rows) in done.tables.iter().filter(|(_, n)| *n > 0) {
        println!("  {table:<width$}  {rows:>9}");
    }
    println!(
        "start reminderd with this config (systemctl start reminderd): it now uses PostgreSQL; keep {} until you have checked the desk and `reminderd report`",
        done.source.display()
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_backup_gives_are_pruned() {
        assert!(is_backup_name("reminderd-20261201-030000.db"));
        for other in [
            "reminderd-important.db",
            "reminderd-20261201-030000.db.tmp",
            "reminderd-20261201030000.db",
            "reminderd.db",
            "x-20261201-030000.db",
        ] {
            assert!(!is_backup_name(other), "{other}");
        }
    }

    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
    }
}
