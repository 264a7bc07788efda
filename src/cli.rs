//! The command line: argument types, the subcommands' output for people and scripts, and
//! how failures map to exit codes. The only place (with `main.rs`) that uses `anyhow`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use reminderd::config::{self, Config, ConfigError};
use reminderd::import::{self, ApplyOptions, ChangeKind, ImportError, ImportReport, ParseOptions};
use reminderd::store::{AppointmentFilter, AppointmentView, Status, Store, StoreError};
use reminderd::time::{Clock, local_day_bounds, parse_instant};

/// Exit codes (from BSD `sysexits.h`, which service managers and scripts understand).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The command line was wrong.
    pub const USAGE: u8 = 64;
    /// The input file has bad rows; nothing was written.
    pub const DATA: u8 = 65;
    /// The input file could not be opened.
    pub const NO_INPUT: u8 = 66;
    /// A bug: please report it.
    pub const SOFTWARE: u8 = 70;
    /// The database could not be opened or written.
    pub const IO: u8 = 74;
    /// The configuration is invalid.
    pub const CONFIG: u8 = 78;
}

/// reminderd: WhatsApp appointment reminders for clinics.
#[derive(Debug, Parser)]
#[command(name = "reminderd", version, about, long_about = None)]
pub struct Cli {
    /// Config file [default: $REMINDERD_CONFIG, else ./reminders.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database file, overriding `database.path` in the config
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check reminders.toml and the database without changing anything
    CheckConfig,
    /// Import a schedule exported as CSV (all rows or none)
    Import {
        /// The CSV file
        file: PathBuf,
        /// Clinic for rows without a clinic column (and the only clinic the file may name)
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Named export format from [import.formats.NAME] in the config
        #[arg(long, value_name = "NAME")]
        format: Option<String>,
        /// The file is the whole schedule for its clinics and dates: cancel what it lacks
        #[arg(long)]
        complete: bool,
        /// Check the file and report what would change, writing nothing
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// List appointments in start order (default: from today on)
    Appointments {
        /// First local date, YYYY-MM-DD [default: today at each clinic]
        #[arg(long, value_name = "DATE")]
        from: Option<NaiveDate>,
        /// Last local date, YYYY-MM-DD (inclusive)
        #[arg(long, value_name = "DATE")]
        to: Option<NaiveDate>,
        /// Only this clinic
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Only this schedule status (booked, cancelled, completed, no_show)
        #[arg(long, value_name = "S")]
        status: Option<Status>,
        /// Treat this RFC 3339 instant as now (for "today")
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// An error that already carries its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Exit {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        message: message.into(),
    }
    .into()
}

/// Whether output stopped because the reader went away (`reminderd appointments | head`):
/// not a failure, and nothing to report.
pub fn is_broken_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The exit code for an error, from the most specific cause in its chain.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if is_broken_pipe(cause) {
            return exit::OK;
        }
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if cause.is::<ConfigError>() {
            return exit::CONFIG;
        }
        if cause.is::<StoreError>() {
            return exit::IO;
        }
    }
    exit::SOFTWARE
}

/// Runs one command; `Ok` carries the exit code of a command that finished (e.g. `DATA` when
/// a file was rejected and its report printed).
pub fn run(cli: Cli) -> Result<u8> {
    let config_path = config::resolve_path(cli.config, std::env::var("REMINDERD_CONFIG").ok());
    match cli.command {
        Command::CheckConfig => check_config(&config_path, cli.db.as_deref()),
        Command::Import {
            file,
            clinic,
            format,
            complete,
            dry_run,
            json,
        } => {
            let (config, mut store) = open(&config_path, cli.db.as_deref())?;
            import_file(
                &config,
                &mut store,
                &file,
                &ParseOptions {
                    clinic: clinic.as_deref(),
                    format: format.as_deref(),
                },
                complete,
                dry_run,
                json,
            )
        }
        Command::Appointments {
            from,
            to,
            clinic,
            status,
            now,
            json,
        } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            let now = Clock::from_option(now).now();
            let list =
                list_appointments(&config, &store, from, to, clinic.as_deref(), status, now)?;
            if json {
                print_json(
                    &list
                        .iter()
                        .map(|(a, z)| AppointmentJson::new(a, *z))
                        .collect::<Vec<_>>(),
                )?;
            } else {
                print_appointments(&list)?;
            }
            Ok(exit::OK)
        }
    }
}

fn load_config(path: &Path, db: Option<&Path>) -> Result<Config> {
    let mut config = Config::load(path)?;
    if let Some(db) = db {
        config.database_path = db.to_path_buf();
    }
    Ok(config)
}

fn open(config_path: &Path, db: Option<&Path>) -> Result<(Config, Store)> {
    let config = load_config(config_path, db)?;
    let mut store = Store::open(&config.database_path)?;
    store.sync_clinics(&config.clinics)?;
    Ok((config, store))
}

fn check_config(path: &Path, db: Option<&Path>) -> Result<u8> {
    let config = load_config(path, db)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}: OK", path.display())?;
    for c in config.clinics.values() {
        writeln!(
            out,
            "  clinic {:<10} {} ({}, phone region {}, language {})",
            c.key,
            c.display_name,
            c.time_zone.name(),
            c.phone_region,
            c.default_language
        )?;
    }
    let db_path = &config.database_path;
    if db_path.exists() {
        // Opening applies pending migrations, which is what the daemon would do at start.
        let store =
            Store::open(db_path).map_err(|e| fail(exit::CONFIG, format!("database.path: {e}")))?;
        writeln!(
            out,
            "  database {} (schema version {})",
            db_path.display(),
            store.schema_version()?
        )?;
    } else {
        let parent = db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(fail(
                exit::CONFIG,
                format!(
                    "database.path: the folder {} does not exist; create it or point database.path elsewhere",
                    parent.display()
                ),
            ));
        }
        writeln!(
            out,
            "  database {} (will be created on first use)",
            db_path.display()
        )?;
    }
    Ok(exit::OK)
}

fn import_file(
    config: &Config,
    store: &mut Store,
    file: &Path,
    opts: &ParseOptions<'_>,
    complete: bool,
    dry_run: bool,
    json: bool,
) -> Result<u8> {
    let bytes = std::fs::read(file).map_err(|e| {
        fail(
            exit::NO_INPUT,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let name = file.display().to_string();
    let parsed = import::parse(&bytes, config, opts).map_err(|e| match e {
        ImportError::Options(m) => fail(exit::USAGE, m),
        ImportError::Store(e) => e.into(),
    })?;
    let report = import::apply(
        store,
        config,
        &parsed,
        &ApplyOptions {
            file_name: &name,
            complete,
            dry_run,
            imported_by: "cli",
            now: Clock::System.now(),
        },
    )
    .context("import failed; nothing was written")?;
    if json {
        print_json(&report)?;
    } else {
        print_import(config, &report)?;
    }
    Ok(if report.errors.is_empty() {
        exit::OK
    } else {
        exit::DATA
    })
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// How many individual changes an import summary lists before it only counts them.
const SHOWN: usize = 50;

fn print_import(config: &Config, r: &ImportReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if !r.errors.is_empty() {
        let bad_rows = r
            .errors
            .iter()
            .map(|e| e.row)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        writeln!(
            out,
            "{}: {} problem(s) in {} row(s); nothing was imported. Fix these and import the file again:",
            r.file,
            r.errors.len(),
            bad_rows
        )?;
        for e in &r.errors {
            let col = if e.column.is_empty() {
                String::new()
            } else {
                format!(", column {:?}", e.column)
            };
            let val = if e.value.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", e.value)
            };
            writeln!(out, "  row {}{col}{val}: {}", e.row, e.message)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{}: {} row(s): {} new, {} updated, {} cancelled, {} unchanged{}",
        r.file,
        r.rows,
        r.new,
        r.updated,
        r.cancelled,
        r.unchanged,
        if r.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        }
    )?;
    for c in r.changes.iter().take(SHOWN) {
        let zone = config
            .clinic(&c.clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        let at = |t: DateTime<Utc>| {
            t.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        let what = match &c.kind {
            ChangeKind::Rescheduled { from, to } => {
                format!("moved from {} to {}", at(*from), at(*to))
            }
            ChangeKind::Cancelled => "cancelled".into(),
            ChangeKind::CancelledMissing => "cancelled (not in this complete schedule)".into(),
            ChangeKind::Reinstated => "booked again".into(),
        };
        let row = c
            .row
            .map_or_else(|| "      ".to_string(), |r| format!("row {r:<3}"));
        writeln!(out, "  {row} {}/{}: {what}", c.clinic, c.appointment_id)?;
    }
    if r.changes.len() > SHOWN {
        writeln!(out, "  … and {} more changes", r.changes.len() - SHOWN)?;
    }
    Ok(())
}

/// Appointments with the zone of their clinic, merged across clinics in start order.
fn list_appointments(
    config: &Config,
    store: &Store,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    clinic: Option<&str>,
    status: Option<Status>,
    now: DateTime<Utc>,
) -> Result<Vec<(AppointmentView, chrono_tz::Tz)>> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(fail(exit::USAGE, format!("--from {f} is after --to {t}")));
    }
    let clinics: Vec<_> = match clinic {
        Some(k) => vec![config.clinic(k).ok_or_else(|| {
            fail(
                exit::USAGE,
                format!(
                    "unknown clinic {k:?}; configured clinics: {}",
                    config
                        .clinics
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?],
        None => config.clinics.values().collect(),
    };
    let mut all = Vec::new();
    for c in clinics {
        let zone = c.time_zone;
        let first = from.unwrap_or_else(|| now.with_timezone(&zone).date_naive());
        let start = local_day_bounds(zone, first).0;
        let end = to.map_or_else(
            || start + Duration::days(365 * 1000),
            |t| local_day_bounds(zone, t).1,
        );
        let filter = AppointmentFilter {
            from: start,
            to: end,
            clinic: Some(c.key.clone()),
            status,
        };
        all.extend(store.appointments(&filter)?.into_iter().map(|a| (a, zone)));
    }
    all.sort_by(|(a, _), (b, _)| {
        (a.starts_at, &a.clinic, &a.id).cmp(&(b.starts_at, &b.clinic, &b.id))
    });
    Ok(all)
}

#[derive(Serialize)]
struct AppointmentJson<'a> {
    id: &'a str,
    clinic: &'a str,
    patient_id: &'a str,
    patient_name: &'a str,
    phone: &'a str,
    language: &'a str,
    provider: Option<&'a str>,
    starts_at: String,
    starts_at_local: String,
    duration_min: u32,
    status: Status,
    cancelled_by: Option<reminderd::store::CancelledBy>,
    response: reminderd::store::Response,
    response_at: Option<String>,
}

impl<'a> AppointmentJson<'a> {
    fn new(a: &'a AppointmentView, zone: chrono_tz::Tz) -> Self {
        Self {
            id: &a.id,
            clinic: &a.clinic,
            patient_id: &a.patient_id,
            patient_name: &a.patient_name,
            phone: a.phone.as_str(),
            language: &a.language,
            provider: a.provider.as_deref(),
            starts_at: a.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            starts_at_local: a
                .starts_at
                .with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            duration_min: a.duration_min,
            status: a.status,
            cancelled_by: a.cancelled_by,
            response: a.response,
            response_at: a
                .response_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        }
    }
}

fn print_appointments(list: &[(AppointmentView, chrono_tz::Tz)]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if list.is_empty() {
        writeln!(out, "no appointments match")?;
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "when (clinic time)",
            "clinic",
            "appointment",
            "patient",
            "phone",
            "lang",
            "provider",
            "status",
            "response",
        ]);
    for (a, zone) in list {
        let status = match a.cancelled_by {
            Some(by) if a.status == Status::Cancelled => format!("cancelled ({by})"),
            _ => a.status.to_string(),
        };
        table.add_row([
            a.starts_at
                .with_timezone(zone)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            a.clinic.clone(),
            a.id.clone(),
            a.patient_name.clone(),
            a.phone.masked(),
            a.language.clone(),
            a.provider.clone().unwrap_or_default(),
            status,
            a.response.to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} appointment(s)", list.len())?;
    Ok(())
}
