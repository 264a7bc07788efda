//! The command line: argument types, exit codes, and a `run` that hands each subcommand to
//! its group's file. The only place (with `main.rs`) that uses `anyhow`.
//!
//! The command bodies live by concern: `schedule` (import and the staff views), `outbox`
//! (planning, sending, previews, templates), `remind` (a reminder on demand), `serve` (the
//! long-running processes), `demo`, `user` (front-desk accounts); `output` holds the
//! human and JSON printers they share.

mod backup;
mod demo;
mod feeds;
mod generate;
mod logging;
mod numbers;
mod outbox;
mod output;
mod patient;
mod purge;
mod remind;
mod reply;
mod report;
mod schedule;
mod serve;
mod user;
mod waitlist;

use std::path::{Path, PathBuf};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

use reminderd::config::{self, Config, ConfigError};
use reminderd::import::ImportError;
use reminderd::store::{Status, Store, StoreError};
use reminderd::time::parse_instant;

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
    /// Check the database: integrity, schema version, sizes and the newest backup
    CheckDb(backup::CheckDbArgs),
    /// Copy the database while the daemon runs (SQLite's online backup), checked
    Backup(backup::BackupArgs),
    /// Put a copy made by `reminderd backup` in place of the database (daemon stopped)
    Restore(backup::RestoreArgs),
    /// Copy a clinic's SQLite database into the empty PostgreSQL database of database.url
    MigrateToPostgres(backup::MigrateArgs),
    /// Import a schedule exported as CSV (all rows or none)
    Import(ImportArgs),
    /// List appointments in start order (default: from today on)
    Appointments(AppointmentsArgs),
    /// Put the messages that are due into the outbox (idempotent)
    Plan(PlanArgs),
    /// Send the due messages in the outbox through the WhatsApp Cloud API
    Send(SendArgs),
    /// List the outbox: every message, its state and what happened to it
    Outbox(OutboxArgs),
    /// Show the exact message a patient will get for an appointment, and the request body
    Preview(PreviewArgs),
    /// Send one appointment's reminder now, as "Remind now" at the front desk does
    Remind(RemindArgs),
    /// Answer a patient by WhatsApp, as the desk's conversation page does
    Reply(reply::ReplyArgs),
    /// Run the WhatsApp Cloud API simulator on this machine (for tests, demos and benchmarks)
    // After the options rather than a second doc paragraph, so `-h` shows it too and `--help`
    // keeps its one-line-per-option form.
    #[command(
        after_help = "The simulator accepts one access token: the value of $WHATSAPP_ACCESS_TOKEN when it starts, else `sim-token`; any other Bearer token gets 401 (error 190)."
    )]
    Simulate(SimulateArgs),
    /// See the whole job work: sample schedule, simulated WhatsApp and patients, in a minute
    Demo(DemoArgs),
    /// Run the daemon: plan and send on the configured schedule, and serve the webhook
    Run(RunArgs),
    /// Run the webhook server (replies and delivery statuses) and the front desk, no jobs
    Serve(ServeArgs),
    /// List patients' replies (newest first)
    Replies(RepliesArgs),
    /// The "call these people" list for a day
    FollowUps(FollowUpsArgs),
    /// Record what staff learned: confirmed (by phone), cancelled, completed or no_show
    SetStatus(SetStatusArgs),
    /// Reminder, answer and no-show figures for a date range
    Stats(StatsArgs),
    /// The evaluation: no-shows before and with reminders, by month, clinic, provider and rule
    Report(report::ReportArgs),
    /// The schedule feeds from practice systems: how each is doing, its messages, re-applying one
    Feeds(FeedsArgs),
    /// The waitlist for freed slots: import a file of entries, list them, add one
    Waitlist(waitlist::WaitlistArgs),
    /// A patient's data: export everything stored about them, or erase it
    Patient(patient::PatientArgs),
    /// Empty raw payloads and words past their retention age now ([privacy]; the daemon does it daily)
    Purge(purge::PurgeArgs),
    /// Check the configured templates against the WhatsApp account
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Each WhatsApp number: its clinics and cap, and its quality, throughput and messaging limit at Meta
    Numbers(NumbersArgs),
    /// Staff accounts for the front desk in a browser
    #[command(subcommand)]
    User(UserCommand),
    /// Write the man pages or shell completions (a packaging step, so hidden)
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

// Each command's arguments are a struct of their own, so its function takes them as one
// value and `run` stays one line per command.

#[derive(Debug, Args)]
struct ImportArgs {
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
    /// Import as if it were this RFC 3339 instant: when the rows were first seen (booking
    /// confirmations go within a day of it), and the "now" a completed or no-show row must be
    /// before
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Print one JSON object instead of the summary
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AppointmentsArgs {
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
}

#[derive(Debug, Args)]
struct PlanArgs {
    /// Plan as if it were this RFC 3339 instant
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Show what would be planned, writing nothing
    #[arg(long)]
    dry_run: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SendArgs {
    /// Send what is due at this RFC 3339 instant
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Send what is due now and exit (default: keep sending until interrupted)
    #[arg(long)]
    once: bool,
    /// Print each run's summary as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct OutboxArgs {
    /// Only this state (pending, sending, sent, delivered, read, failed, unknown, skipped, expired)
    #[arg(long, value_name = "S")]
    state: Option<String>,
    /// Print a JSON array instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PreviewArgs {
    /// The appointment id from the clinic's system
    appointment_id: String,
    /// The rule whose message to show [default: the first rule for the clinic]
    #[arg(long, value_name = "NAME")]
    rule: Option<String>,
    /// The clinic, if several clinics use the same appointment id
    #[arg(long, value_name = "KEY")]
    clinic: Option<String>,
}

#[derive(Debug, Args)]
struct RemindArgs {
    /// The clinic (its key in reminders.toml)
    #[arg(long, value_name = "KEY")]
    clinic: String,
    /// The appointment id from the clinic's system
    #[arg(long, value_name = "ID")]
    appointment: String,
    /// Ask as if it were this RFC 3339 instant (quiet hours and "already started" use it)
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SimulateArgs {
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
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Keep the demo's folder (database and config) here for exploring afterwards
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Address to listen on [default: server.listen from the config]
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: server.listen from the config]
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Address of the front desk [default: desk.listen from the config]
    #[arg(long, value_name = "ADDR")]
    desk_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
struct RepliesArgs {
    /// Only replies a person must read
    #[arg(long)]
    needs_staff: bool,
    /// Only replies since this RFC 3339 instant
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    since: Option<DateTime<Utc>>,
    /// Print a JSON array
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct FollowUpsArgs {
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
}

#[derive(Debug, Args)]
struct SetStatusArgs {
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
}

#[derive(Debug, Args)]
struct StatsArgs {
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
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct FeedsArgs {
    #[command(subcommand)]
    command: Option<FeedsCommand>,
    /// Judge freshness as if it were this RFC 3339 instant
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

/// What `reminderd generate` writes (packaging/build-deb calls it).
#[derive(Debug, Subcommand)]
enum GenerateCommand {
    /// Section-1 man pages, one for each command, into DIR
    Man {
        /// Folder to write into (created if missing)
        dir: PathBuf,
    },
    /// Completions for bash, zsh and fish into DIR
    Completions {
        /// Folder to write into (created if missing)
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum FeedsCommand {
    /// A feed's stored messages, newest first
    Messages {
        /// The feed's name ([feeds.NAME])
        name: String,
        /// Only the messages that were refused
        #[arg(long)]
        refused: bool,
        /// At most this many
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// One stored message as received (phone numbers masked)
    Show {
        /// The message's number (the first column of `reminderd feeds messages`)
        id: i64,
        /// Show phone numbers whole (audited)
        #[arg(long)]
        unmasked: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Sync a FHIR feed now (the daemon does it on its schedule)
    Sync {
        /// The feed's name ([feeds.NAME], kind = "fhir")
        name: String,
        /// Read the whole horizon, not only what changed since the last sync
        #[arg(long)]
        full: bool,
        /// Sync as if it were this RFC 3339 instant (the horizon starts then)
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        now: Option<DateTime<Utc>>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Read a stored message again with today's configuration and apply it
    Reapply {
        /// The message's number
        id: i64,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; asks for its password (or reads one line from standard input)
    Add {
        /// The name staff type to sign in
        name: String,
        /// staff works the desk; admin also exports and erases a patient's data
        #[arg(long, default_value = "staff")]
        role: reminderd::model::Role,
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
    /// Change an account's role (staff or admin); its sign-ins end
    Role {
        /// The account's name
        name: String,
        /// staff works the desk; admin also exports and erases a patient's data
        role: reminderd::model::Role,
    },
}

#[derive(Debug, Args)]
struct NumbersArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
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

/// Logs go to journald under systemd (priorities and fields), else to stderr: human lines,
/// coloured only at a terminal, or JSON with `REMINDERD_LOG_FORMAT=json`; `RUST_LOG` filters
/// them (default: info for the daemon's own lines, warnings from libraries). Phone numbers
/// are masked where they are logged, and secrets never are.
pub fn init_logging(cli: &Cli) {
    // The demo's screen is its tables; the daemon's and senders' info lines are for journald.
    logging::init(if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "warn,reminderd=info"
    });
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
    let (path, db) = (config_path.as_path(), cli.db.as_deref());
    match cli.command {
        Command::CheckConfig => schedule::check_config(path, db),
        Command::CheckDb(args) => backup::check_db(path, db, &args),
        Command::Backup(args) => backup::backup(path, db, &args),
        Command::Restore(args) => backup::restore(path, db, &args),
        Command::MigrateToPostgres(args) => backup::migrate_to_postgres(path, db, &args),
        Command::Import(args) => schedule::import(path, db, &args),
        Command::Appointments(args) => schedule::appointments(path, db, &args),
        Command::Replies(args) => schedule::replies(path, db, &args),
        Command::FollowUps(args) => schedule::follow_ups(path, db, &args),
        Command::SetStatus(args) => schedule::set_status(path, db, &args),
        Command::Stats(args) => schedule::stats(path, db, &args),
        Command::Report(args) => report::run(path, db, &args),
        Command::Feeds(args) => feeds::run(path, db, &args),
        Command::Plan(args) => outbox::plan(path, db, &args),
        Command::Send(args) => outbox::send(path, db, &args),
        Command::Outbox(args) => outbox::list(path, db, &args),
        Command::Preview(args) => outbox::preview(path, db, &args),
        Command::Remind(args) => remind::remind(path, db, &args),
        Command::Reply(args) => reply::reply(path, db, &args),
        Command::Templates(command) => outbox::templates(path, db, &command),
        Command::Numbers(args) => numbers::run(path, db, args.json),
        Command::Waitlist(args) => waitlist::run(path, db, &args),
        Command::Patient(args) => patient::run(path, db, &args),
        Command::Purge(args) => purge::run(path, db, &args),
        Command::Run(args) => serve::run_daemon(path, db, &args),
        Command::Serve(args) => serve::serve(path, db, &args),
        Command::Simulate(args) => serve::simulate(path, db, &args),
        Command::Demo(args) => demo::demo(args),
        Command::User(command) => user::run(path, db, command),
        Command::Generate(command) => generate::run(&command),
    }
}

/// The config with the command line's `--db` and `$REMINDERD_API_BASE` applied over it.
fn load_config(path: &Path, db: Option<&Path>) -> Result<Config> {
    let mut config = Config::load(path)?;
    if let Some(base) = std::env::var("REMINDERD_API_BASE")
        .ok()
        .filter(|b| !b.is_empty())
    {
        config.point_apis_at(&base);
    }
    if let Some(db) = db {
        config.database_path = db.to_path_buf();
        config.database_url = None;
    }
    Ok(config)
}

/// The config and its store, with the config's clinics synced in (imports and listings name
/// them).
fn open(config_path: &Path, db: Option<&Path>) -> Result<(Config, Store)> {
    let config = load_config(config_path, db)?;
    let mut store = Store::open_configured(&config)?;
    store.sync_clinics(&config.clinics)?;
    Ok((config, store))
}

/// Who the audit trail names for an administrator's command (staff are `staff:<name>`).
fn admin_actor() -> String {
    format!(
        "admin:{}",
        std::env::var("USER").unwrap_or_else(|_| "cli".into())
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    // Blocking work is store calls behind one connection's mutex: more threads than this only
    // wait on it (bench/memory.py saw tokio's default pool grow to 512 under webhook load).
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()?)
}
