//! The command line: argument types, the subcommands' output for people and scripts, and
//! how failures map to exit codes. The only place (with `main.rs`) that uses `anyhow`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use clap::{Parser, Subcommand};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use std::sync::{Arc, Mutex};

use reminderd::config::{self, Config, ConfigError};
use reminderd::dispatch::{self, DispatchError, Dispatcher};
use reminderd::import::{self, ApplyOptions, ChangeKind, ImportError, ImportReport, ParseOptions};
use reminderd::jobs;
use reminderd::secrets;
use reminderd::store::{AppointmentFilter, AppointmentView, Status, Store, StoreError};
use reminderd::store::{OUTBOX_STATES, OutboxView};
use reminderd::time::{Clock, local_day_bounds, parse_instant};
use reminderd::whatsapp::{Client, SendRequest};

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
    /// The WhatsApp account refused service (token, permissions): sending stopped.
    pub const UNAVAILABLE: u8 = 69;
    /// The configuration is invalid (or a secret is missing).
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
    /// Put the messages that are due into the outbox (idempotent)
    Plan {
        /// Plan as if it were this RFC 3339 instant
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Show what would be planned, writing nothing
        #[arg(long)]
        dry_run: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Send the due messages in the outbox through the WhatsApp Cloud API
    Send {
        /// Send what is due at this RFC 3339 instant
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Send what is due now and exit (default: keep sending until interrupted)
        #[arg(long)]
        once: bool,
        /// Print each run's summary as JSON
        #[arg(long)]
        json: bool,
    },
    /// List the outbox: every message, its state and what happened to it
    Outbox {
        /// Only this state (pending, sending, sent, delivered, read, failed, unknown, skipped, expired)
        #[arg(long, value_name = "S")]
        state: Option<String>,
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show the exact message a patient will get for an appointment, and the request body
    Preview {
        /// The appointment id from the clinic's system
        appointment_id: String,
        /// The rule whose message to show [default: the first rule for the clinic]
        #[arg(long, value_name = "NAME")]
        rule: Option<String>,
        /// The clinic, if several clinics use the same appointment id
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
    },
    /// Run the WhatsApp Cloud API simulator on this machine (for tests, demos and benchmarks)
    Simulate {
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
        listen: std::net::SocketAddr,
        /// Where to post signed status and reply webhooks
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Environment variable holding the app secret that signs webhooks
        #[arg(long, value_name = "VAR", default_value = "WHATSAPP_APP_SECRET")]
        app_secret_env: String,
        /// Added to every send response, in milliseconds (a real API answers in ~100-300 ms)
        #[arg(long, value_name = "MS", default_value_t = 0)]
        latency_ms: u64,
        /// Refuse sends beyond this many per second with error 130429
        #[arg(long, value_name = "N")]
        max_per_sec: Option<u32>,
        /// Minimum seconds between messages to one number before error 131056 (0: off)
        #[arg(long, value_name = "S", default_value_t = 6)]
        pair_limit_secs: u64,
    },
    /// See the whole job work: sample schedule, simulated WhatsApp and patients, in a minute
    Demo {
        /// Keep the demo's folder (database and config) here for exploring afterwards
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Run the daemon: plan and send on the configured schedule, and serve the webhook
    Run {
        /// Address to listen on [default: server.listen from the config]
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the webhook server (replies and delivery statuses) and the front desk, no jobs
    Serve {
        /// Address to listen on [default: server.listen from the config]
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Address of the front desk [default: desk.listen from the config]
        #[arg(long, value_name = "ADDR")]
        desk_listen: Option<std::net::SocketAddr>,
    },
    /// List patients' replies (newest first)
    Replies {
        /// Only replies a person must read
        #[arg(long)]
        needs_staff: bool,
        /// Only replies since this RFC 3339 instant
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        since: Option<DateTime<Utc>>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// The "call these people" list for a day
    FollowUps {
        /// Local date, YYYY-MM-DD [default: today at each clinic]
        #[arg(long, value_name = "D")]
        date: Option<NaiveDate>,
        /// Only this clinic
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Treat this RFC 3339 instant as now (for "today")
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Print a JSON array
        #[arg(long)]
        json: bool,
    },
    /// Record what staff learned: confirmed (by phone), cancelled, completed or no_show
    SetStatus {
        /// The appointment id from the clinic's system
        appointment_id: String,
        /// confirmed, cancelled, completed or no_show
        #[arg(value_parser = ["confirmed", "cancelled", "completed", "no_show"])]
        status: String,
        /// Why, for the audit log
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// The clinic, if several use the same appointment id
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
    },
    /// Reminder, answer and no-show figures for a date range
    Stats {
        /// First local date [default: 30 days ago]
        #[arg(long, value_name = "DATE")]
        from: Option<NaiveDate>,
        /// Last local date, inclusive [default: today]
        #[arg(long, value_name = "DATE")]
        to: Option<NaiveDate>,
        /// Only this clinic
        #[arg(long, value_name = "KEY")]
        clinic: Option<String>,
        /// Treat this RFC 3339 instant as now
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the configured templates against the WhatsApp account
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Staff accounts for the front desk in a browser
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; asks for its password (or reads one line from standard input)
    Add {
        /// The name staff type to sign in
        name: String,
    },
    /// Set a new password; also lifts a lock-out and signs the account out everywhere
    Passwd {
        /// The account's name
        name: String,
    },
    /// Stop an account from signing in; its sign-ins end at once
    Disable {
        /// The account's name
        name: String,
    },
    /// Let a disabled account sign in again
    Enable {
        /// The account's name
        name: String,
    },
    /// Delete an account (its sign-ins end at once; the audit log keeps its name)
    Remove {
        /// The account's name
        name: String,
    },
    /// List the accounts, disabled ones too
    List,
}

#[derive(Debug, Subcommand)]
enum TemplatesCommand {
    /// Report, per template and language, whether it exists, is APPROVED and matches the config
    Check {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

/// Logs go to stderr (journald under systemd): human lines, or JSON with
/// `REMINDERD_LOG_FORMAT=json`; `RUST_LOG` filters them (default: info for the daemon's own
/// lines, warnings from libraries). Phone numbers are masked where they are logged, and
/// secrets never are.
pub fn init_logging(cli: &Cli) {
    // The demo's screen is its tables; the daemon's and senders' info lines are for journald.
    let default = if matches!(cli.command, Command::Demo { .. }) {
        "warn"
    } else {
        "warn,reminderd=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes are for a person at a terminal; journald and files would keep them raw.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("REMINDERD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
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
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    err.downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind)
        == pipe
        || err
            .downcast_ref::<serde_json::Error>()
            .and_then(serde_json::Error::io_error_kind)
            == pipe
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
        if cause.is::<StoreError>()
            || matches!(
                cause.downcast_ref::<ImportError>(),
                Some(ImportError::Store(_))
            )
        {
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
        Command::Plan { now, dry_run, json } => {
            let (config, mut store) = open(&config_path, cli.db.as_deref())?;
            let now = Clock::from_option(now).now();
            let (due, counts) = jobs::plan_due(&mut store, &config, now, dry_run)?;
            if json {
                print_json(
                    &serde_json::json!({ "now": rfc3339(now), "dry_run": dry_run, "due": due.len(),
                    "pending": counts.pending, "expired": counts.expired, "existing": counts.existing }),
                )?;
            } else {
                let mut out = std::io::stdout().lock();
                writeln!(
                    out,
                    "{} message(s) due: {} new, {} expired, {} already planned{}",
                    due.len(),
                    counts.pending,
                    counts.expired,
                    counts.existing,
                    if dry_run {
                        " (dry run: nothing was written)"
                    } else {
                        ""
                    }
                )?;
            }
            Ok(exit::OK)
        }
        Command::Send { now, once, json } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            send(config, store, Clock::from_option(now), once, json)
        }
        Command::Outbox { state, json } => {
            let (_, store) = open(&config_path, cli.db.as_deref())?;
            if let Some(s) = &state
                && !OUTBOX_STATES.contains(&s.as_str())
            {
                return Err(fail(
                    exit::USAGE,
                    format!(
                        "unknown state {s:?}; use one of: {}",
                        OUTBOX_STATES.join(", ")
                    ),
                ));
            }
            let rows = store.outbox(state.as_deref())?;
            if json {
                print_json(&rows)?;
            } else {
                print_outbox(&rows)?;
            }
            Ok(exit::OK)
        }
        Command::Preview {
            appointment_id,
            rule,
            clinic,
        } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            preview(
                &config,
                &store,
                &appointment_id,
                rule.as_deref(),
                clinic.as_deref(),
            )
        }
        Command::Demo { keep } => demo(keep),
        Command::Run { listen } => run_daemon(&config_path, cli.db, listen),
        Command::Serve {
            listen,
            desk_listen,
        } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            serve(config, store, listen, desk_listen)
        }
        Command::Replies {
            needs_staff,
            since,
            json,
        } => {
            let (_, store) = open(&config_path, cli.db.as_deref())?;
            let rows = store.replies(needs_staff, since)?;
            if json {
                print_json(&rows)?;
            } else {
                print_replies(&rows)?;
            }
            Ok(exit::OK)
        }
        Command::FollowUps {
            date,
            clinic,
            now,
            json,
        } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            let now = Clock::from_option(now).now();
            let mut all = Vec::new();
            for c in clinics_for(&config, clinic.as_deref())? {
                let day = date.unwrap_or_else(|| now.with_timezone(&c.time_zone).date_naive());
                let (from, to) = local_day_bounds(c.time_zone, day);
                let rules = config.rule_count(&c.key);
                all.extend(
                    store
                        .follow_ups(&c.key, from, to, rules)?
                        .into_iter()
                        .map(|f| (f, c.time_zone)),
                );
            }
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|(f, zone)| {
                        serde_json::json!({
                            "appointment_id": f.appointment_id, "clinic": f.clinic,
                            "starts_at": rfc3339(f.starts_at),
                            "starts_at_local": f.starts_at.with_timezone(zone).to_rfc3339_opts(SecondsFormat::Secs, false),
                            "patient_name": f.patient_name, "phone": f.phone, "reasons": f.reasons,
                        })
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                let mut out = std::io::stdout().lock();
                if all.is_empty() {
                    writeln!(out, "nobody to call")?;
                }
                for (f, zone) in &all {
                    writeln!(
                        out,
                        "{}  {}/{}  {}  {}",
                        f.starts_at.with_timezone(zone).format("%a %d %b %H:%M %Z"),
                        f.clinic,
                        f.appointment_id,
                        f.patient_name,
                        f.phone
                    )?;
                    for r in &f.reasons {
                        writeln!(out, "      - {r}")?;
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::SetStatus {
            appointment_id,
            status,
            note,
            clinic,
        } => {
            let (_, mut store) = open(&config_path, cli.db.as_deref())?;
            let actor = format!(
                "staff:{}",
                std::env::var("USER").unwrap_or_else(|_| "cli".into())
            );
            match store.set_status(
                clinic.as_deref(),
                &appointment_id,
                &status,
                note.as_deref(),
                &actor,
                Clock::System.now(),
            ) {
                Ok(Some((key, old))) => {
                    println!("{key}/{appointment_id}: {old} → {status}");
                    Ok(exit::OK)
                }
                Ok(None) => Ok(exit::OK),
                Err(StoreError::Corrupt(why)) => Err(fail(exit::DATA, why)),
                Err(e) => Err(e.into()),
            }
        }
        Command::Stats {
            from,
            to,
            clinic,
            now,
            json,
        } => {
            let (config, store) = open(&config_path, cli.db.as_deref())?;
            let now = Clock::from_option(now).now();
            // One zone for the date range: the clinic's, or the first clinic's when all.
            let zone = clinics_for(&config, clinic.as_deref())?
                .first()
                .map_or(chrono_tz::UTC, |c| c.time_zone);
            let today = now.with_timezone(&zone).date_naive();
            let to = to.unwrap_or(today);
            let from = from.unwrap_or(to - chrono::Duration::days(30));
            let s = store.stats(
                clinic.as_deref(),
                local_day_bounds(zone, from).0,
                local_day_bounds(zone, to).1,
            )?;
            if json {
                print_json(
                    &serde_json::json!({ "from": from, "to": to, "clinic": clinic, "stats": s }),
                )?;
            } else {
                print_stats(&s, from, to)?;
            }
            Ok(exit::OK)
        }
        Command::Simulate {
            listen,
            webhook,
            app_secret_env,
            latency_ms,
            max_per_sec,
            pair_limit_secs,
        } => {
            let config = load_config(&config_path, cli.db.as_deref())?;
            simulate(
                &config,
                listen,
                webhook,
                &app_secret_env,
                latency_ms,
                max_per_sec,
                pair_limit_secs,
            )
        }
        Command::Templates {
            command: TemplatesCommand::Check { json },
        } => {
            let config = load_config(&config_path, cli.db.as_deref())?;
            templates_check(&config, json)
        }
        Command::User { command } => {
            let (_, store) = open(&config_path, cli.db.as_deref())?;
            user(store, command)
        }
    }
}

fn user(mut store: Store, command: UserCommand) -> Result<u8> {
    let now = Clock::System.now();
    // Who changed an account, for the audit log (staff are `staff:<name>`).
    let actor = format!(
        "admin:{}",
        std::env::var("USER").unwrap_or_else(|_| "cli".into())
    );
    let no_such = |name: &str| {
        fail(
            exit::DATA,
            format!("there is no user {name:?}; `reminderd user list` shows them"),
        )
    };
    match command {
        UserCommand::Add { name } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                return Err(fail(
                    exit::USAGE,
                    "a user name is 1 to 64 characters without control characters",
                ));
            }
            let hash = new_password(&name)?;
            if !store.add_staff(&name, &hash, now)? {
                return Err(fail(
                    exit::DATA,
                    format!(
                        "there is already a user {name:?}; use `reminderd user passwd {name}` to change the password"
                    ),
                ));
            }
            println!("user {name} added; they can sign in at the front desk");
        }
        UserCommand::Passwd { name } => {
            if store.staff_login(&name)?.is_none() {
                return Err(no_such(&name));
            }
            let hash = new_password(&name)?;
            store.set_staff_password(&name, &hash, &actor, now)?;
            println!("password of {name} changed; any lock-out is lifted and old sign-ins end");
        }
        UserCommand::Disable { name } => {
            match store.set_staff_disabled(&name, true, &actor, now)? {
                None => return Err(no_such(&name)),
                Some(true) => println!(
                    "{name} is disabled: signed out everywhere and refused at sign-in (`reminderd user enable {name}` undoes it)"
                ),
                Some(false) => println!("{name} was already disabled; nothing changed"),
            }
        }
        UserCommand::Enable { name } => {
            match store.set_staff_disabled(&name, false, &actor, now)? {
                None => return Err(no_such(&name)),
                Some(true) => println!("{name} is enabled and can sign in again"),
                Some(false) => println!("{name} was not disabled; nothing changed"),
            }
        }
        UserCommand::Remove { name } => match store.remove_staff(&name, &actor, now)? {
            None => return Err(no_such(&name)),
            Some(stored) => println!(
                "{stored} is removed: signed out everywhere; the audit log keeps what they did"
            ),
        },
        UserCommand::List => {
            let users = store.staff(now)?;
            if users.is_empty() {
                println!("no users; add one with `reminderd user add NAME`");
            }
            for u in users {
                let state = match (u.disabled_at, u.locked_until) {
                    (Some(t), _) => format!("disabled since {}", t.format("%Y-%m-%d")),
                    (None, Some(t)) => format!(
                        "sign-in paused until {} UTC after wrong passwords",
                        t.format("%Y-%m-%d %H:%M")
                    ),
                    (None, None) => "active".to_string(),
                };
                println!(
                    "{}  ({state}, added {})",
                    u.name,
                    u.created_at.format("%Y-%m-%d")
                );
            }
        }
    }
    Ok(exit::OK)
}

/// Asks twice on a terminal; otherwise reads one line from standard input (for scripts).
fn new_password(name: &str) -> Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            return Err(fail(
                exit::USAGE,
                "the two passwords differ; nothing changed",
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    reminderd::desk::auth::hash_password(&password).map_err(|e| fail(exit::USAGE, e.to_string()))
}

fn clinics_for<'c>(
    config: &'c Config,
    clinic: Option<&str>,
) -> Result<Vec<&'c reminderd::config::Clinic>> {
    match clinic {
        Some(k) => {
            Ok(vec![config.clinic(k).ok_or_else(|| {
                fail(exit::USAGE, config.unknown_clinic(k))
            })?])
        }
        None => Ok(config.clinics.values().collect()),
    }
}

fn demo(keep: Option<PathBuf>) -> Result<u8> {
    let temp;
    let dir = match &keep {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                return Err(fail(
                    exit::USAGE,
                    format!(
                        "{} is not empty; give --keep a new or empty folder",
                        d.display()
                    ),
                ));
            }
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "reminderd demo: a day at two clinics, a simulated WhatsApp Cloud API and simulated patients."
    )?;
    writeln!(out, "Working in {} ...\n", dir.display())?;
    drop(out);
    let outcome = runtime()?
        .block_on(reminderd::demo::run(&dir))
        .map_err(|e| fail(exit::SOFTWARE, e.to_string()))?;
    let store = Store::open(&outcome.db)?;

    println!(
        "What was sent (every message is one outbox row; button taps and statuses find it by its id):"
    );
    print_outbox(&store.outbox(None)?)?;
    println!("\nWhat the patients answered:");
    print_replies(&store.replies(false, None)?)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nWhat staff must follow up (reminderd follow-ups):")?;
    for c in outcome.config.clinics.values() {
        let day = outcome.first_start.with_timezone(&c.time_zone).date_naive();
        for offset in 0..=1 {
            let (from, to) = local_day_bounds(c.time_zone, day + chrono::Duration::days(offset));
            let rules = outcome.config.rule_count(&c.key);
            for f in store.follow_ups(&c.key, from, to, rules)? {
                writeln!(
                    out,
                    "  {}  {}/{}  {}  {}",
                    f.starts_at
                        .with_timezone(&c.time_zone)
                        .format("%a %d %b %H:%M %Z"),
                    f.clinic,
                    f.appointment_id,
                    f.patient_name,
                    reminderd::phone::mask(&f.phone)
                )?;
                for r in &f.reasons {
                    writeln!(out, "        - {r}")?;
                }
            }
        }
    }
    for r in store
        .replies(true, None)?
        .iter()
        .filter(|r| r.appointment_id.is_none())
    {
        writeln!(
            out,
            "  a message from {} needs a person: {}",
            reminderd::phone::mask(&r.from),
            r.reason.as_deref().unwrap_or("")
        )?;
    }
    writeln!(
        out,
        "\n{} messages reached the simulated API; done in {:.1} s, nothing left running.",
        outcome.accepted,
        outcome.elapsed.as_secs_f64()
    )?;
    match keep {
        Some(d) => writeln!(
            out,
            "The database is in {}: try `reminderd --config {}/reminders.toml outbox` or `... replies`.",
            d.display(),
            d.display()
        )?,
        None => writeln!(
            out,
            "(Run `reminderd demo --keep DIR` to keep the database and explore it.)"
        )?,
    }
    Ok(exit::OK)
}

fn run_daemon(
    config_path: &Path,
    db: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
) -> Result<u8> {
    let config = load_config(config_path, db.as_deref())?;
    let secrets =
        reminderd::daemon::Secrets::load().map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let addr = listen.unwrap_or(config.server.listen);
    let opts = reminderd::daemon::Options {
        config_path: config_path.to_path_buf(),
        db,
        api_base: std::env::var("REMINDERD_API_BASE")
            .ok()
            .filter(|b| !b.is_empty()),
        secrets,
        handle_signals: true,
    };
    runtime()?.block_on(async move {
        let listener = bind_server(addr).await?;
        reminderd::daemon::run(opts, listener, tokio_util::sync::CancellationToken::new())
            .await
            .map_err(|e| match e {
                reminderd::daemon::DaemonError::Config(c) => anyhow::Error::from(c),
                reminderd::daemon::DaemonError::Store(s) => anyhow::Error::from(s),
                other => fail(exit::SOFTWARE, other.to_string()),
            })?;
        Ok(exit::OK)
    })
}

fn serve(
    config: Config,
    store: Store,
    listen: Option<std::net::SocketAddr>,
    desk_listen: Option<std::net::SocketAddr>,
) -> Result<u8> {
    let app_secret = secrets::APP_SECRET
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let verify_token = secrets::VERIFY_TOKEN
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    let addr = listen.unwrap_or(config.server.listen);
    let limits = config.server.clone();
    let state = reminderd::server::AppState {
        store: Arc::new(Mutex::new(store)),
        config: Arc::new(std::sync::RwLock::new(Arc::new(config))),
        app_secret: Arc::new(app_secret),
        verify_token: Arc::new(verify_token),
        clock: Clock::System,
        health: None,
    };
    let desk_state = reminderd::desk::DeskState {
        store: Arc::clone(&state.store),
        config: Arc::clone(&state.config),
        clock: Clock::System,
    };
    runtime()?.block_on(async move {
        let listener = bind_server(addr).await?;
        eprintln!(
            "webhook listening on http://{}/webhook",
            listener.local_addr()?
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let desk = reminderd::desk::spawn(desk_state, desk_listen, None, stop.clone())
            .await
            .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
        if let Some((addr, _)) = &desk {
            eprintln!("front desk on http://{addr}/desk");
        }
        // Stop on SIGTERM as on Ctrl-C, letting requests in flight finish: an event stored but
        // never answered would be delivered again by Meta.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let app = reminderd::server::router(state, limits.max_body_bytes);
        reminderd::server::serve(listener, app, &limits, async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            stop.cancel();
        })
        .await?;
        if let Some((_, task)) = desk {
            task.await??;
        }
        Ok(exit::OK)
    })
}

fn print_replies(rows: &[reminderd::store::ReplyView]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "no replies")?;
        return Ok(());
    }
    let mut table = table_with([
        "received (UTC)",
        "from",
        "patient",
        "appointment",
        "said",
        "read as",
        "outcome",
    ]);
    for r in rows {
        let appointment = match (&r.clinic, &r.appointment_id) {
            (Some(c), Some(a)) => format!("{c}/{a}"),
            _ => String::new(),
        };
        let outcome = match &r.reason {
            Some(why) => format!("{}: {why}", r.outcome),
            None => r.outcome.clone(),
        };
        table.add_row([
            r.received_at.clone(),
            reminderd::phone::mask(&r.from),
            r.patient_name.clone().unwrap_or_default(),
            appointment,
            r.text.clone().unwrap_or_else(|| format!("({})", r.kind)),
            r.intent.clone(),
            outcome,
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}

fn print_stats(s: &reminderd::store::Stats, from: NaiveDate, to: NaiveDate) -> Result<()> {
    let pct = |n: i64, d: i64| {
        if d == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * n as f64 / d as f64)
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{from} to {to}: {} appointment(s), {} reminded",
        s.appointments, s.reminded
    )?;
    writeln!(
        out,
        "  reminders: {} sent, {} delivered, {} read, {} failed",
        s.reminders_sent, s.reminders_delivered, s.reminders_read, s.reminders_failed
    )?;
    writeln!(
        out,
        "  answers (of reminded): {} confirmed ({}), {} cancelled ({}), {} asked to reschedule ({})",
        s.confirmed,
        pct(s.confirmed, s.reminded),
        s.declined,
        pct(s.declined, s.reminded),
        s.reschedule_requested,
        pct(s.reschedule_requested, s.reminded)
    )?;
    writeln!(
        out,
        "  no-shows: {} confirmed, {} unconfirmed, {} unreachable; {} patient(s) opted out",
        s.no_show_confirmed, s.no_show_unconfirmed, s.no_show_unreachable, s.opt_outs
    )?;
    for r in &s.per_rule {
        writeln!(
            out,
            "  rule {}: {} sent, {} confirmed afterwards, {} no-shows",
            r.rule,
            r.sent,
            pct(r.confirmed, r.sent),
            pct(r.no_show, r.sent)
        )?;
    }
    Ok(())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The API client from config, the token from the environment or credentials, and the base
/// URL from `$REMINDERD_API_BASE` when set (applied in `load_config`).
fn client(config: &Config) -> Result<Client> {
    let wa = config.whatsapp.as_ref().ok_or_else(|| {
        fail(
            exit::CONFIG,
            "whatsapp: the config has no [whatsapp] section; see reminders.toml",
        )
    })?;
    let token = secrets::ACCESS_TOKEN
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    Ok(Client::new(wa, token, None)?)
}

/// Binds the webhook's address, naming the config key when it cannot.
async fn bind_server(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        fail(
            exit::CONFIG,
            format!("server.listen: cannot listen on {addr}: {e}"),
        )
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // Blocking work is store calls behind one connection's mutex: more threads than this only
    // wait on it (bench/memory.py saw tokio's default pool grow to 512 under webhook load).
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()?)
}

fn send(config: Config, store: Store, clock: Clock, once: bool, json: bool) -> Result<u8> {
    let client = client(&config)?;
    let config = Arc::new(config);
    let store = Arc::new(Mutex::new(store));
    let dispatcher = Dispatcher::new(Arc::clone(&store), Arc::clone(&config), client)?;
    runtime()?.block_on(async move {
        loop {
            match dispatcher.run_once(clock).await {
                Ok(report) => print_send_report(&report, json)?,
                Err(DispatchError::Account(why)) => return Err(fail(exit::UNAVAILABLE, why)),
                Err(e) => return Err(e.into()),
            }
            if once {
                return Ok(exit::OK);
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
            }
        }
    })
}

fn print_send_report(r: &dispatch::Report, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "sent {}, failed {}, retrying {}, unknown {}, skipped {}, expired {}",
        r.sent, r.failed, r.retrying, r.unknown, r.skipped, r.expired
    )?;
    if r.requeued > 0 {
        writeln!(
            out,
            "  {} send(s) interrupted before their request went out are pending again",
            r.requeued
        )?;
    }
    if r.recovered > 0 {
        writeln!(
            out,
            "  {} send(s) interrupted by a stop are now unknown, awaiting their delivery status",
            r.recovered
        )?;
    }
    if r.settled_unknown > 0 {
        writeln!(
            out,
            "  {} unknown send(s) passed unknown_after and were settled",
            r.settled_unknown
        )?;
    }
    for h in &r.held {
        writeln!(out, "  {h}")?;
    }
    Ok(())
}

fn print_outbox(rows: &[OutboxView]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "the outbox is empty")?;
        return Ok(());
    }
    let mut table = table_with([
        "id",
        "appointment",
        "kind",
        "rule",
        "state",
        "due (UTC)",
        "attempts",
        "detail",
    ]);
    for r in rows {
        let detail = r
            .needs_staff
            .clone()
            .or_else(|| r.last_error.clone())
            .or_else(|| r.reason.clone())
            .or_else(|| r.wamid.as_deref().map(reminderd::whatsapp::message_ref))
            .unwrap_or_default();
        table.add_row([
            r.id.to_string(),
            format!("{}/{}", r.clinic, r.appointment_id),
            r.kind.clone(),
            r.rule.clone(),
            r.state.clone(),
            r.send_at.clone(),
            r.attempts.to_string(),
            detail,
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} message(s)", rows.len())?;
    Ok(())
}

fn preview(
    config: &Config,
    store: &Store,
    appointment_id: &str,
    rule: Option<&str>,
    clinic: Option<&str>,
) -> Result<u8> {
    let rows = store.preview_row(appointment_id, clinic)?;
    let row = match rows.as_slice() {
        [] => {
            return Err(fail(
                exit::DATA,
                format!(
                    "no appointment {appointment_id:?}{}",
                    clinic
                        .map(|c| format!(" at clinic {c:?}"))
                        .unwrap_or_default()
                ),
            ));
        }
        [one] => one,
        many => {
            let clinics: Vec<&str> = many.iter().map(|r| r.clinic.as_str()).collect();
            return Err(fail(
                exit::USAGE,
                format!(
                    "appointment {appointment_id:?} exists at several clinics ({}); add --clinic",
                    clinics.join(", ")
                ),
            ));
        }
    };
    let clinic_cfg = config.clinic(&row.clinic).ok_or_else(|| {
        fail(
            exit::CONFIG,
            format!("clinic {:?} is not configured", row.clinic),
        )
    })?;
    let template_key = match rule {
        Some(name) => {
            &config
                .rules
                .iter()
                .find(|r| r.name == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
                    fail(
                        exit::USAGE,
                        format!(
                            "unknown rule {name:?}; configured rules: {}",
                            names.join(", ")
                        ),
                    )
                })?
                .template
        }
        None => config
            .rules
            .iter()
            .find(|r| r.clinics.contains(&row.clinic))
            .map(|r| &r.template)
            .or(config.booking_confirmation.as_ref())
            .ok_or_else(|| fail(exit::CONFIG, "no rule applies to this clinic"))?,
    };
    let template = &config.templates[template_key];
    let rendered = reminderd::template::render(
        template_key,
        template,
        &reminderd::template::Input {
            clinic: clinic_cfg,
            patient_name: &row.patient_name,
            patient_language: &row.language,
            starts_at: row.starts_at,
            provider: row.provider.as_deref(),
            outbox_id: 0,
        },
    )
    .map_err(|e| fail(exit::DATA, e.to_string()))?;
    let body = SendRequest::template(&row.phone, &rendered, "<outbox id>".into());
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "To {} ({}), in {}, template {:?}:\n",
        row.patient_name,
        row.phone.masked(),
        rendered.language,
        rendered.template_name
    )?;
    for line in rendered.preview().lines() {
        writeln!(out, "  │ {line}")?;
    }
    writeln!(
        out,
        "\nRequest body (button payloads and callback data carry the outbox id, set when the message is planned):"
    )?;
    serde_json::to_writer_pretty(&mut out, &body)?;
    writeln!(out)?;
    Ok(exit::OK)
}

fn simulate(
    config: &Config,
    listen: std::net::SocketAddr,
    webhook: Option<String>,
    app_secret_env: &str,
    latency_ms: u64,
    max_per_sec: Option<u32>,
    pair_limit_secs: u64,
) -> Result<u8> {
    let wa = config.whatsapp.as_ref().ok_or_else(|| {
        fail(
            exit::CONFIG,
            "whatsapp: the config has no [whatsapp] section; see reminders.toml",
        )
    })?;
    let token = std::env::var("WHATSAPP_ACCESS_TOKEN").unwrap_or_else(|_| "sim-token".into());
    let app_secret = std::env::var(app_secret_env).ok().filter(|s| !s.is_empty());
    if webhook.is_some() && app_secret.is_none() {
        return Err(fail(
            exit::USAGE,
            format!("--webhook needs an app secret to sign with: set ${app_secret_env}"),
        ));
    }
    let sim_config = reminderd::sim::SimConfig {
        phone_number_id: wa.phone_number_id.clone(),
        waba_id: wa.waba_id.clone(),
        access_token: token,
        templates: reminderd::sim::templates_from_config(config),
        webhook_url: webhook,
        app_secret,
        latency: std::time::Duration::from_millis(latency_ms),
        pair_limit: (pair_limit_secs > 0).then(|| std::time::Duration::from_secs(pair_limit_secs)),
        max_per_sec,
        ..reminderd::sim::SimConfig::default()
    };
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| fail(exit::USAGE, format!("cannot listen on {listen}: {e}")))?;
        eprintln!(
            "WhatsApp Cloud API simulator on http://{} (phone number id {}); point reminderd at it with REMINDERD_API_BASE=http://{}; Ctrl-C stops it",
            listener.local_addr()?,
            wa.phone_number_id,
            listener.local_addr()?
        );
        reminderd::sim::run(listener, sim_config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(exit::OK)
    })
}

/// One line of `templates check`.
#[derive(Serialize)]
struct TemplateCheck {
    template: String,
    name: String,
    language: String,
    status: String,
    ok: bool,
    problem: Option<String>,
}

fn templates_check(config: &Config, json: bool) -> Result<u8> {
    let client = client(config)?;
    let remote = runtime()?.block_on(client.templates()).map_err(|e| {
        fail(
            exit::UNAVAILABLE,
            format!("cannot read the template list: {e}"),
        )
    })?;
    let mut lines = Vec::new();
    for (key, t) in &config.templates {
        for lang in t.languages.keys() {
            let found = remote
                .iter()
                .find(|r| r.name == t.name && r.language == *lang);
            let (status, problem) = match found {
                None => (
                    "MISSING".to_string(),
                    Some("no such template in this language on the account".to_string()),
                ),
                Some(r) if r.status != "APPROVED" => (
                    r.status.clone(),
                    Some(format!(
                        "status is {}, only APPROVED templates can be sent",
                        r.status
                    )),
                ),
                Some(r) if r.body_params != t.params.len() => (
                    r.status.clone(),
                    Some(format!(
                        "the body has {} placeholder(s), the config gives {} param(s)",
                        r.body_params,
                        t.params.len()
                    )),
                ),
                Some(r) if r.quick_replies != t.buttons.len() => (
                    r.status.clone(),
                    Some(format!(
                        "it has {} quick-reply button(s), the config expects {}",
                        r.quick_replies,
                        t.buttons.len()
                    )),
                ),
                Some(r) => (r.status.clone(), None),
            };
            lines.push(TemplateCheck {
                template: key.clone(),
                name: t.name.clone(),
                language: lang.clone(),
                status,
                ok: problem.is_none(),
                problem,
            });
        }
    }
    if json {
        print_json(&lines)?;
    } else {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            writeln!(
                out,
                "{} {:<12} {:<24} {:<6} {}{}",
                if l.ok { "ok  " } else { "FAIL" },
                l.template,
                l.name,
                l.language,
                l.status,
                l.problem
                    .as_deref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(if lines.iter().all(|l| l.ok) {
        exit::OK
    } else {
        exit::CONFIG
    })
}

fn load_config(path: &Path, db: Option<&Path>) -> Result<Config> {
    let mut config = Config::load(path)?;
    if let Some(base) = std::env::var("REMINDERD_API_BASE")
        .ok()
        .filter(|b| !b.is_empty())
        && let Some(wa) = config.whatsapp.as_mut()
    {
        wa.api_base = base.trim_end_matches('/').to_string();
    }
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
    {
        let mut err = std::io::stderr().lock();
        for w in &config.warnings {
            writeln!(err, "warning: {w}")?;
        }
    }
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
    for r in &config.rules {
        let before = match r.before {
            config::Offset::Days(n) => format!("{n}d (same wall time)"),
            config::Offset::Exact(d) => reminderd::plan::humanize(d),
        };
        writeln!(
            out,
            "  rule {:<12} {before} before, latest {} before, template {}{}, clinics {}",
            r.name,
            reminderd::plan::humanize(r.latest),
            r.template,
            if r.skip_if_confirmed {
                ", skips confirmed patients"
            } else {
                ""
            },
            r.clinics.join(", ")
        )?;
    }
    for (key, t) in &config.templates {
        let langs: Vec<&str> = t.languages.keys().map(String::as_str).collect();
        writeln!(out, "  template {key:<8} {} ({})", t.name, langs.join(", "))?;
    }
    if let Some(wa) = &config.whatsapp {
        let token = match secrets::ACCESS_TOKEN.load() {
            Ok(_) => "access token found".to_string(),
            Err(e) => format!("warning: {e}"),
        };
        writeln!(
            out,
            "  whatsapp {} {} phone number id {}, {} msg/s; {token}",
            wa.api_base, wa.api_version, wa.phone_number_id, wa.rate_limit_per_sec
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
        e @ ImportError::AlreadyDecided(_) => e.into(),
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
            preview: None,
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

/// A table in the house style, with this header.
fn table_with<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
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
        Some(k) => vec![
            config
                .clinic(k)
                .ok_or_else(|| fail(exit::USAGE, config.unknown_clinic(k)))?,
        ],
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
    let mut table = table_with([
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
