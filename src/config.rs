//! `reminders.toml`: the typed configuration and its validation.
//!
//! Loading is two steps: serde parses the TOML (unknown keys are errors, so a typo never
//! silently disables a setting), then [`Config::validate`] checks what serde cannot (time
//! zones, regions, references between sections) and reports *every* problem, each naming the
//! key it concerns.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::phone::Region;

/// Where the config file is looked for when neither `--config` nor `$REMINDERD_CONFIG` is set.
pub const DEFAULT_CONFIG_PATH: &str = "reminders.toml";

/// The whole configuration, as validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the file it was read from; relative paths inside it resolve against its folder.
    pub source: PathBuf,
    /// The SQLite database file.
    pub database_path: PathBuf,
    /// Clinics by key, in key order.
    pub clinics: BTreeMap<String, Clinic>,
    /// The default CSV import format.
    pub import: ImportFormat,
    /// Other named CSV export formats (`[import.formats.NAME]`).
    pub import_formats: BTreeMap<String, ImportFormat>,
    /// How to reach the WhatsApp Cloud API and how hard to push it (`None`: not configured,
    /// so nothing can be sent).
    pub whatsapp: Option<WhatsApp>,
    /// Reminder rules, in file order.
    pub rules: Vec<Rule>,
    /// Approved message templates by config key.
    pub templates: BTreeMap<String, Template>,
    /// The template sent when an appointment first appears (`None`: off).
    pub booking_confirmation: Option<String>,
    /// The HTTP server (webhook).
    pub server: Server,
    /// Reply words and acknowledgements.
    pub replies: Replies,
    /// The long-running daemon's schedules.
    pub daemon: Daemon,
    /// The front desk in a browser (`None`: not served).
    pub desk: Option<Desk>,
    /// Where `/metrics` is served on its own (`None`: on the desk's address, if any).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Settings that work but are risky, each naming its key: `check-config` prints them and
    /// the daemon logs them at start and on reload.
    pub warnings: Vec<Problem>,
}

/// The front desk's web pages: where they listen and how sign-in behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desk {
    /// Its own address, apart from the public webhook's.
    pub listen: std::net::SocketAddr,
    /// Mark cookies `Secure` (set when staff reach the desk through an HTTPS proxy).
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    pub session: Duration,
    /// A sign-in unused for this long ends (besides `session`).
    pub idle_timeout: Duration,
    /// Sign-in attempts for one name from one address that pause it there for `lockout`.
    pub max_failed_logins: u32,
    /// Sign-in attempts for one name from all addresses together that pause it everywhere.
    pub max_failed_logins_per_name: u32,
    /// How long attempts are counted, and how long a pause lasts.
    pub lockout: Duration,
    /// Sign-in requests accepted per minute from one client address.
    pub sign_ins_per_minute_per_address: u32,
    /// Sign-in requests accepted per minute from all addresses together.
    pub sign_ins_per_minute: u32,
    /// Largest schedule file accepted, in bytes.
    pub max_upload_bytes: usize,
}

/// When `reminderd run` plans and sends (cron expressions with a seconds field, in UTC: they
/// set a cadence only; every rule is evaluated in the clinic's zone whenever they fire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Cron expression of the plan job.
    pub plan: String,
    /// Cron expression of the dispatch job.
    pub dispatch: String,
    /// `/healthz` turns 503 when a job has not completed for this long.
    pub stale_after: Duration,
    /// How long a stop waits for in-flight sends.
    pub shutdown_grace: std::time::Duration,
}

/// The HTTP server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Where the webhook listens.
    pub listen: std::net::SocketAddr,
    /// Largest webhook body accepted (Meta batches reach 3 MB).
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers (slow-loris guard).
    pub header_timeout: std::time::Duration,
    /// How long a request may take from its headers to the answer, body included.
    pub request_timeout: std::time::Duration,
    /// Connections served at once; more wait in the kernel's queue.
    pub max_connections: usize,
    /// Bytes a second a request body must keep up after its first seconds (slow-body guard).
    pub min_body_rate: u64,
}

/// How replies are understood and answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Replies {
    /// Every configured word, normalised, and what it means.
    pub words: std::collections::HashMap<String, crate::replies::Intent>,
    /// Acknowledgement texts per language.
    pub acks: BTreeMap<String, Acks>,
}

/// The acknowledgement texts of one language. `{first_name}`, `{date}`, `{time}` and
/// `{clinic}` are filled in.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Acks {
    pub confirmed: String,
    pub cancelled: String,
    pub reschedule_requested: String,
    pub opted_out: String,
    pub opted_in: String,
}

impl Acks {
    /// The text for an applied intent, if it gets one.
    pub fn for_intent(&self, intent: crate::replies::Intent) -> Option<&str> {
        use crate::replies::Intent;
        match intent {
            Intent::Confirm => Some(&self.confirmed),
            Intent::Cancel => Some(&self.cancelled),
            Intent::Reschedule => Some(&self.reschedule_requested),
            Intent::Stop => Some(&self.opted_out),
            Intent::Start => Some(&self.opted_in),
            Intent::Unknown | Intent::None => None,
        }
    }
}

/// One clinic: where it is and how its numbers and times are read.
#[derive(Debug, Clone)]
pub struct Clinic {
    /// The short key used in CSV files and on the command line (`mumbai`).
    pub key: String,
    /// The name patients see.
    pub display_name: String,
    /// The IANA zone all local times of this clinic are in.
    pub time_zone: Tz,
    /// The region used to read phone numbers written without a country code.
    pub phone_region: Region,
    /// Language used when a patient's own language is not given.
    pub default_language: String,
    /// Appointment length when the CSV does not give one.
    pub default_duration_min: u32,
    /// Name of the import format this clinic's exports use (`None`: the default).
    pub import_format: Option<String>,
    /// Local hours in which no message is sent.
    pub quiet_hours: Option<QuietHours>,
    /// Reminders are held when the clinic's last import is older than this.
    pub max_import_age: Option<Duration>,
    /// How dates appear in messages (strftime, localised to the patient's language).
    pub date_format: String,
    /// How times appear in messages (strftime).
    pub time_format: String,
}

/// A daily local period without messages, e.g. 21:00-08:00 (may wrap past midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When quiet starts, local time.
    pub start: NaiveTime,
    /// When quiet ends, local time.
    pub end: NaiveTime,
}

/// When a rule fires, relative to the appointment start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// This exact span of time earlier (`2h`, `90m`, `48h`).
    Exact(Duration),
    /// The same local wall time this many calendar days earlier (`1d`, `2d`), which is what a
    /// patient expects across a daylight-saving change.
    Days(u32),
}

impl Offset {
    /// The span this offset covers at most, for ordering checks (a day may be 25 hours).
    pub fn approx(self) -> Duration {
        match self {
            Self::Exact(d) => d,
            Self::Days(n) => Duration::hours(24 * i64::from(n)),
        }
    }
}

/// A reminder rule: which template to send how long before which clinics' appointments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Unique name, stored on every message it plans (`day-before`).
    pub name: String,
    /// How long before the start to send.
    pub before: Offset,
    /// Do not send later than this before the start; a later one is `expired`.
    pub latest: Duration,
    /// Key of the template in `[templates]`.
    pub template: String,
    /// Clinics it applies to.
    pub clinics: Vec<String>,
    /// A patient who already confirmed gets no message from this rule.
    pub skip_if_confirmed: bool,
}

/// A value taken from the patient, appointment or clinic into a template parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum Field {
    /// The patient's first name.
    #[serde(rename = "patient.first_name")]
    PatientFirstName,
    /// The patient's full name.
    #[serde(rename = "patient.name")]
    PatientName,
    /// The local date, in the patient's language.
    #[serde(rename = "appointment.date")]
    AppointmentDate,
    /// The local start time.
    #[serde(rename = "appointment.time")]
    AppointmentTime,
    /// Who the appointment is with.
    #[serde(rename = "appointment.provider")]
    AppointmentProvider,
    /// The clinic's display name.
    #[serde(rename = "clinic.name")]
    ClinicName,
}

/// What a quick-reply button does when tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonAction {
    /// The patient will come.
    Confirm,
    /// The patient will not come.
    Cancel,
    /// The patient wants another time.
    Reschedule,
    /// The patient wants no more messages.
    Stop,
}

impl ButtonAction {
    /// The word used in button payloads (`confirm:<outbox id>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Cancel => "cancel",
            Self::Reschedule => "reschedule",
            Self::Stop => "stop",
        }
    }
}

/// An approved WhatsApp template as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The name approved in WhatsApp Manager.
    pub name: String,
    /// Body parameters `{{1}}`, `{{2}}`, ... in order.
    pub params: Vec<Field>,
    /// Quick-reply buttons in template order.
    pub buttons: Vec<ButtonAction>,
    /// The approved text per language code.
    pub languages: BTreeMap<String, TemplateText>,
}

/// One language of a template: the approved body and button labels, for previews and checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateText {
    /// The body with `{{1}}`.. placeholders, exactly as approved.
    pub body: String,
    /// The button labels, in the same order as the template's buttons.
    #[serde(default)]
    pub buttons: Vec<String>,
}

/// What to do with a send whose outcome stayed unknown for `unknown_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAction {
    /// Send it again (a duplicate is possible).
    Resend,
    /// Leave it to staff (it shows on the follow-up list).
    Staff,
}

/// WhatsApp Cloud API settings (no secrets: the token comes from the environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsApp {
    /// Base URL without the version, e.g. `https://graph.facebook.com`.
    pub api_base: String,
    /// Graph API version, e.g. `v23.0`.
    pub api_version: String,
    /// The business phone number's id (not the number).
    pub phone_number_id: String,
    /// The WhatsApp Business Account id (for the template catalogue).
    pub waba_id: String,
    /// Messages per second across all clinics (the number's throughput limit).
    pub rate_limit_per_sec: u32,
    /// Requests in flight at once; enough to reach the rate limit at the API's latency.
    pub max_in_flight: usize,
    /// Time allowed to connect.
    pub connect_timeout: std::time::Duration,
    /// Time allowed for a whole request.
    pub request_timeout: std::time::Duration,
    /// Attempts before a retryable failure becomes `failed`.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub retry_base: std::time::Duration,
    /// Longest retry delay.
    pub retry_max: std::time::Duration,
    /// Least time between two messages to the same patient (the pair rate limit).
    pub recipient_spacing: std::time::Duration,
    /// How long a send may stay `unknown` before `unknown_action`.
    pub unknown_after: Duration,
    /// What happens then.
    pub unknown_action: UnknownAction,
}

/// How a CSV export names its columns and writes dates and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportFormat {
    /// Header name in the file for each field.
    pub columns: ColumnMap,
    /// `strftime` patterns tried in order for the date column.
    pub date_formats: Vec<String>,
    /// `strftime` patterns tried in order for the time column.
    pub time_formats: Vec<String>,
}

/// The header name used in the file for each field reminderd reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ColumnMap {
    pub appointment_id: String,
    pub patient_id: String,
    pub patient_name: String,
    pub phone: String,
    pub language: String,
    pub date: String,
    pub time: String,
    pub duration_min: String,
    pub provider: String,
    pub clinic: String,
    pub status: String,
}

impl Default for ColumnMap {
    fn default() -> Self {
        Self {
            appointment_id: "appointment_id".into(),
            patient_id: "patient_id".into(),
            patient_name: "patient_name".into(),
            phone: "phone".into(),
            language: "language".into(),
            date: "date".into(),
            time: "time".into(),
            duration_min: "duration_min".into(),
            provider: "provider".into(),
            clinic: "clinic".into(),
            status: "status".into(),
        }
    }
}

impl ColumnMap {
    /// Every (field name, header name) pair, in the order of the default CSV layout.
    pub fn pairs(&self) -> [(&'static str, &str); 11] {
        [
            ("appointment_id", &self.appointment_id),
            ("patient_id", &self.patient_id),
            ("patient_name", &self.patient_name),
            ("phone", &self.phone),
            ("language", &self.language),
            ("date", &self.date),
            ("time", &self.time),
            ("duration_min", &self.duration_min),
            ("provider", &self.provider),
            ("clinic", &self.clinic),
            ("status", &self.status),
        ]
    }
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the line and key.
        message: String,
    },
    /// The file parsed, but some values are wrong.
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, each naming its key.
        problems: Vec<Problem>,
    },
}

/// One validation problem: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key path, e.g. `clinics.mumbai.time_zone`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

// ---- raw serde shapes -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: RawDatabase,
    #[serde(default)]
    clinics: BTreeMap<String, RawClinic>,
    #[serde(default)]
    import: RawImport,
    whatsapp: Option<RawWhatsApp>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    templates: BTreeMap<String, RawTemplate>,
    booking_confirmation: Option<RawBooking>,
    server: Option<RawServer>,
    replies: Option<RawReplies>,
    daemon: Option<RawDaemon>,
    desk: Option<RawDesk>,
    metrics: Option<RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: String,
}

impl Default for Desk {
    /// What a `[desk]` section with only `listen = "127.0.0.1:8081"` means.
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8081)),
            secure_cookies: false,
            session: Duration::hours(12),
            idle_timeout: Duration::minutes(30),
            max_failed_logins: default_max_failed_logins(),
            max_failed_logins_per_name: default_max_failed_logins_per_name(),
            lockout: Duration::minutes(15),
            sign_ins_per_minute_per_address: default_sign_ins_per_minute_per_address(),
            sign_ins_per_minute: default_sign_ins_per_minute(),
            max_upload_bytes: default_max_upload(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDesk {
    listen: String,
    #[serde(default)]
    secure_cookies: bool,
    #[serde(default = "default_session")]
    session: String,
    #[serde(default = "default_idle_timeout")]
    idle_timeout: String,
    #[serde(default = "default_max_failed_logins")]
    max_failed_logins: u32,
    #[serde(default = "default_max_failed_logins_per_name")]
    max_failed_logins_per_name: u32,
    #[serde(default = "default_lockout")]
    lockout: String,
    #[serde(default = "default_sign_ins_per_minute_per_address")]
    sign_ins_per_minute_per_address: u32,
    #[serde(default = "default_sign_ins_per_minute")]
    sign_ins_per_minute: u32,
    #[serde(default = "default_max_upload")]
    max_upload_bytes: usize,
}

fn default_idle_timeout() -> String {
    "30m".into()
}
fn default_max_failed_logins_per_name() -> u32 {
    50
}
fn default_sign_ins_per_minute_per_address() -> u32 {
    20
}
fn default_sign_ins_per_minute() -> u32 {
    120
}

fn default_session() -> String {
    "12h".into()
}
fn default_max_failed_logins() -> u32 {
    5
}
fn default_lockout() -> String {
    "15m".into()
}
fn default_max_upload() -> usize {
    10 * 1024 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    #[serde(default = "default_plan_cron")]
    plan: String,
    #[serde(default = "default_dispatch_cron")]
    dispatch: String,
    #[serde(default = "default_stale_after")]
    stale_after: String,
    #[serde(default = "default_grace")]
    shutdown_grace: String,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            plan: default_plan_cron(),
            dispatch: default_dispatch_cron(),
            stale_after: default_stale_after(),
            shutdown_grace: default_grace(),
        }
    }
}

fn default_plan_cron() -> String {
    "0 * * * * *".into()
}
fn default_dispatch_cron() -> String {
    "*/15 * * * * *".into()
}
fn default_stale_after() -> String {
    "5m".into()
}
fn default_grace() -> String {
    "10s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    #[serde(default = "default_body_limit")]
    max_body_bytes: usize,
    #[serde(default = "default_header_timeout")]
    header_timeout: String,
    #[serde(default = "default_server_request_timeout")]
    request_timeout: String,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_min_body_rate")]
    min_body_rate: u64,
}

fn default_min_body_rate() -> u64 {
    1024
}

fn default_header_timeout() -> String {
    "10s".into()
}

fn default_server_request_timeout() -> String {
    "60s".into()
}

fn default_max_connections() -> usize {
    512
}

fn default_body_limit() -> usize {
    4 * 1024 * 1024
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplies {
    #[serde(default)]
    words: BTreeMap<String, RawWords>,
    #[serde(default)]
    acks: BTreeMap<String, Acks>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWords {
    #[serde(default)]
    confirm: Vec<String>,
    #[serde(default)]
    cancel: Vec<String>,
    #[serde(default)]
    reschedule: Vec<String>,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    start: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhatsApp {
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_api_version")]
    api_version: String,
    phone_number_id: String,
    waba_id: String,
    #[serde(default = "default_rate")]
    rate_limit_per_sec: u32,
    max_in_flight: Option<usize>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout: String,
    #[serde(default = "default_request_timeout")]
    request_timeout: String,
    #[serde(default = "default_attempts")]
    max_attempts: u32,
    #[serde(default = "default_retry_base")]
    retry_base: String,
    #[serde(default = "default_retry_max")]
    retry_max: String,
    #[serde(default = "default_spacing")]
    recipient_spacing: String,
    #[serde(default = "default_unknown_after")]
    unknown_after: String,
    #[serde(default = "default_unknown_action")]
    unknown_action: UnknownAction,
}

fn default_api_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_api_version() -> String {
    "v23.0".into()
}
fn default_rate() -> u32 {
    80
}
fn default_connect_timeout() -> String {
    "5s".into()
}
fn default_request_timeout() -> String {
    "15s".into()
}
fn default_attempts() -> u32 {
    6
}
fn default_retry_base() -> String {
    "5s".into()
}
fn default_retry_max() -> String {
    "15m".into()
}
fn default_spacing() -> String {
    "6s".into()
}
fn default_unknown_after() -> String {
    "1h".into()
}
fn default_unknown_action() -> UnknownAction {
    UnknownAction::Staff
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    before: String,
    latest: String,
    template: String,
    clinics: Option<Vec<String>>,
    #[serde(default)]
    skip_if_confirmed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: String,
    #[serde(default)]
    params: Vec<Field>,
    #[serde(default)]
    buttons: Vec<ButtonAction>,
    #[serde(default)]
    languages: BTreeMap<String, TemplateText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBooking {
    enabled: bool,
    template: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClinic {
    display_name: String,
    time_zone: String,
    phone_region: String,
    #[serde(default = "default_language")]
    default_language: String,
    #[serde(default = "default_duration")]
    default_duration_min: u32,
    import_format: Option<String>,
    quiet_hours: Option<String>,
    max_import_age: Option<String>,
    #[serde(default = "default_date_format")]
    date_format: String,
    #[serde(default = "default_time_format")]
    time_format: String,
}

fn default_date_format() -> String {
    "%A %-d %B".into()
}

fn default_time_format() -> String {
    "%H:%M".into()
}

fn default_language() -> String {
    "en".into()
}

fn default_duration() -> u32 {
    30
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    #[serde(default)]
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
    #[serde(default)]
    formats: BTreeMap<String, RawFormat>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFormat {
    #[serde(default)]
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
}

fn default_date_formats() -> Vec<String> {
    vec!["%Y-%m-%d".into()]
}

fn default_time_formats() -> Vec<String> {
    vec!["%H:%M".into(), "%H:%M:%S".into(), "%I:%M %p".into()]
}

// ---- loading -------------------------------------------------------------------------------

impl Config {
    /// How many reminder rules apply to a clinic ("no answer after all reminders" needs them all).
    pub fn rule_count(&self, clinic: &str) -> usize {
        self.rules
            .iter()
            .filter(|r| r.clinics.iter().any(|c| c == clinic))
            .count()
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` is used for messages and relative paths.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml_at(text, path, crate::time::Clock::System.now())
    }

    /// As [`Config::from_toml`], checking that cron expressions fire within a year of `now`.
    pub fn from_toml_at(text: &str, path: &Path, now: DateTime<Utc>) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate(raw, path, now).map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// The message for a clinic key that is not configured, listing the ones that are.
    pub fn unknown_clinic(&self, key: &str) -> String {
        format!(
            "unknown clinic {key:?}; configured clinics: {}",
            list_or_none(self.clinics.keys())
        )
    }

    /// The shipped example `reminders.toml`, compiled in: the demo's and the simulator's
    /// default, and the tests' fixture.
    pub fn example() -> Result<Self, ConfigError> {
        Self::from_toml(
            include_str!("../reminders.toml"),
            Path::new("reminders.toml"),
        )
    }

    /// The clinic with this key, if configured.
    pub fn clinic(&self, key: &str) -> Option<&Clinic> {
        self.clinics.get(key)
    }

    /// The import format a file is read with: `--format` if given, else the clinic's own
    /// format, else the default.
    pub fn import_format(
        &self,
        format: Option<&str>,
        clinic: Option<&str>,
    ) -> Result<&ImportFormat, String> {
        let named = format.map(str::to_string).or_else(|| {
            clinic
                .and_then(|c| self.clinics.get(c))
                .and_then(|c| c.import_format.clone())
        });
        match named {
            None => Ok(&self.import),
            Some(name) => self.import_formats.get(&name).ok_or_else(|| {
                format!(
                    "unknown import format {name:?}; configured formats: {}",
                    list_or_none(self.import_formats.keys())
                )
            }),
        }
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// Whether `s` is usable as a key in CSV files and on the command line.
fn is_valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn validate(raw: RawConfig, path: &Path, now: DateTime<Utc>) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut push = |key: String, message: String| problems.push(Problem { key, message });

    if raw.database.path.as_os_str().is_empty() {
        push(
            "database.path".into(),
            "must not be empty; give the SQLite file, e.g. \"/var/lib/reminderd/reminderd.db\""
                .into(),
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let database_path = base.join(&raw.database.path);

    let import = build_format(
        "import",
        raw.import.columns,
        raw.import.date_formats,
        raw.import.time_formats,
        &mut push,
    );
    let mut import_formats = BTreeMap::new();
    for (name, f) in raw.import.formats {
        let key = format!("import.formats.{name}");
        if !is_valid_key(&name) {
            push(
                key.clone(),
                "format names use lower-case letters, digits, '-' and '_'".into(),
            );
        }
        let fmt = build_format(&key, f.columns, f.date_formats, f.time_formats, &mut push);
        import_formats.insert(name, fmt);
    }

    if raw.clinics.is_empty() {
        push(
            "clinics".into(),
            "no clinic is configured; add a [clinics.KEY] table".into(),
        );
    }
    let mut clinics = BTreeMap::new();
    let mut display_names: BTreeMap<String, String> = BTreeMap::new();
    for (key, c) in raw.clinics {
        let k = |field: &str| format!("clinics.{key}.{field}");
        if !is_valid_key(&key) {
            push(
                format!("clinics.{key}"),
                "clinic keys use lower-case letters, digits, '-' and '_' (e.g. \"mumbai\")".into(),
            );
        }
        if c.display_name.trim().is_empty() {
            push(k("display_name"), "must not be empty".into());
        } else if let Some(other) =
            display_names.insert(c.display_name.trim().to_lowercase(), key.clone())
        {
            push(
                k("display_name"),
                format!(
                    "{:?} is also the display name of clinic {other:?}; patients could not tell them apart",
                    c.display_name
                ),
            );
        }
        let tz = match c.time_zone.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                push(
                    k("time_zone"),
                    format!(
                        "unknown time zone {:?}; use an IANA name such as \"Asia/Kolkata\" or \"America/New_York\"",
                        c.time_zone
                    ),
                );
                None
            }
        };
        let region = match c.phone_region.parse::<Region>() {
            Ok(r) => Some(r),
            Err(()) => {
                push(
                    k("phone_region"),
                    format!(
                        "unknown phone region {:?}; use a two-letter country code such as \"IN\" or \"US\"",
                        c.phone_region
                    ),
                );
                None
            }
        };
        let default_language = match crate::import::normalize_language(&c.default_language) {
            Some(l) => l,
            None => {
                push(
                    k("default_language"),
                    format!(
                        "{:?} is not a language code; use one like \"en\", \"hi\" or \"es_MX\"",
                        c.default_language
                    ),
                );
                String::new()
            }
        };
        check_number(
            &k("default_duration_min"),
            c.default_duration_min,
            &(1..=24 * 60),
            " minutes",
            &mut push,
        );
        if let Some(f) = &c.import_format
            && !import_formats.contains_key(f)
        {
            push(
                k("import_format"),
                format!(
                    "unknown import format {f:?}; define it as [import.formats.{f}] (configured: {})",
                    list_or_none(import_formats.keys())
                ),
            );
        }
        let quiet_hours = c
            .quiet_hours
            .as_deref()
            .and_then(|q| match parse_quiet_hours(q) {
                Ok(q) => Some(q),
                Err(m) => {
                    push(k("quiet_hours"), m);
                    None
                }
            });
        let max_import_age =
            c.max_import_age
                .as_deref()
                .and_then(|v| match MAX_IMPORT_AGE.span(v) {
                    Ok(d) => Some(d),
                    Err(m) => {
                        push(k("max_import_age"), m);
                        None
                    }
                });
        for (field, pattern) in [
            ("date_format", &c.date_format),
            ("time_format", &c.time_format),
        ] {
            if !formats_cleanly(pattern) {
                push(
                    k(field),
                    format!("{pattern:?} is not a usable strftime pattern"),
                );
            }
        }
        if let (Some(time_zone), Some(phone_region)) = (tz, region) {
            clinics.insert(
                key.clone(),
                Clinic {
                    key,
                    display_name: c.display_name.trim().to_string(),
                    time_zone,
                    phone_region,
                    default_language,
                    default_duration_min: c.default_duration_min,
                    import_format: c.import_format,
                    quiet_hours,
                    max_import_age,
                    date_format: c.date_format,
                    time_format: c.time_format,
                },
            );
        }
    }

    let whatsapp = raw.whatsapp.map(|w| validate_whatsapp(w, &mut push));
    let templates = validate_templates(raw.templates, &mut push);
    let rules = validate_rules(raw.rules, &clinics, &templates, &mut push);
    let booking_confirmation = match raw.booking_confirmation {
        Some(RawBooking {
            enabled: true,
            template: Some(t),
        }) => {
            if !templates.contains_key(&t) {
                push(
                    "booking_confirmation.template".into(),
                    format!(
                        "no template {t:?} under [templates]; configured: {}",
                        list_or_none(templates.keys())
                    ),
                );
            }
            Some(t)
        }
        Some(RawBooking {
            enabled: true,
            template: None,
        }) => {
            push(
                "booking_confirmation.template".into(),
                "is needed when enabled = true".into(),
            );
            None
        }
        _ => None,
    };
    if (!rules.is_empty() || booking_confirmation.is_some()) && whatsapp.is_none() {
        push(
            "whatsapp".into(),
            "rules are configured but there is no [whatsapp] section to send them with".into(),
        );
    }

    let server = {
        let srv = raw.server.unwrap_or_else(|| RawServer {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: default_body_limit(),
            header_timeout: default_header_timeout(),
            request_timeout: default_server_request_timeout(),
            max_connections: default_max_connections(),
            min_body_rate: default_min_body_rate(),
        });
        let listen = srv.listen.parse().unwrap_or_else(|_| {
            push(
                "server.listen".into(),
                format!("{:?} is not an address and port such as \"127.0.0.1:8080\" or \"0.0.0.0:8080\"", srv.listen),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        check_number(
            "server.max_body_bytes",
            srv.max_body_bytes,
            &(3 * 1024 * 1024..=100 * 1024 * 1024),
            " bytes: Meta batches webhook bodies of up to 3 MB",
            &mut push,
        );
        let mut timeout = |key: &str, text: &str, bounds: Bounds, fallback: u64| {
            bounds.std_span(text).unwrap_or_else(|m| {
                push(format!("server.{key}"), m);
                std::time::Duration::from_secs(fallback)
            })
        };
        let header_timeout = timeout("header_timeout", &srv.header_timeout, HEADER_TIMEOUT, 10);
        let request_timeout = timeout(
            "request_timeout",
            &srv.request_timeout,
            SERVER_REQUEST_TIMEOUT,
            60,
        );
        // tokio's semaphore panics above 2^61 permits; far fewer already exhaust descriptors.
        let max_connections = if check_number(
            "server.max_connections",
            srv.max_connections,
            &(1..=16_384),
            " (each is an open file; further ones wait in the kernel's queue)",
            &mut push,
        ) {
            srv.max_connections
        } else {
            default_max_connections()
        };
        let min_body_rate = if check_number(
            "server.min_body_rate",
            srv.min_body_rate,
            &(16..=100_000_000),
            " bytes a second",
            &mut push,
        ) {
            srv.min_body_rate
        } else {
            default_min_body_rate()
        };
        Server {
            listen,
            max_body_bytes: srv.max_body_bytes,
            header_timeout,
            request_timeout,
            max_connections,
            min_body_rate,
        }
    };
    let replies = validate_replies(raw.replies.unwrap_or_default(), &mut push);
    let d = raw.daemon.unwrap_or_default();
    for (key, expr) in [("daemon.plan", &d.plan), ("daemon.dispatch", &d.dispatch)] {
        if let Err(m) = check_cron(expr, now) {
            push(key.into(), m);
        }
    }
    let daemon = Daemon {
        stale_after: STALE_AFTER.span(&d.stale_after).unwrap_or_else(|m| {
            push("daemon.stale_after".into(), m);
            Duration::minutes(5)
        }),
        shutdown_grace: SHUTDOWN_GRACE
            .std_span(&d.shutdown_grace)
            .unwrap_or_else(|m| {
                push("daemon.shutdown_grace".into(), m);
                std::time::Duration::from_secs(10)
            }),
        plan: d.plan,
        dispatch: d.dispatch,
    };
    let desk = raw
        .desk
        .as_ref()
        .map(|d| validate_desk(d, &server, &mut push));

    let metrics_listen = raw.metrics.as_ref().map(|m| {
        let addr = m.listen.parse().unwrap_or_else(|_| {
            push(
                "metrics.listen".into(),
                format!(
                    "{:?} is not an address and port such as \"127.0.0.1:9100\"",
                    m.listen
                ),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 9100))
        });
        if addr == server.listen && addr.port() != 0 {
            push(
                "metrics.listen".into(),
                format!("{addr} is also server.listen; metrics must not be served on the public webhook port"),
            );
        }
        addr
    });
    if problems.is_empty() {
        let warnings = warnings(desk.as_ref(), whatsapp.as_ref());
        Ok(Config {
            source: path.to_path_buf(),
            database_path,
            clinics,
            import,
            import_formats,
            whatsapp,
            rules,
            templates,
            booking_confirmation,
            server,
            replies,
            daemon,
            desk,
            metrics_listen,
            warnings,
        })
    } else {
        Err(problems)
    }
}

/// Settings that work but expose something on the clinic's network.
fn warnings(desk: Option<&Desk>, whatsapp: Option<&WhatsApp>) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(d) = desk
        && !d.listen.ip().is_loopback()
        && !d.secure_cookies
    {
        out.push(Problem {
            key: "desk.secure_cookies".into(),
            message: format!(
                "is off while desk.listen = {} is reachable from other computers: staff passwords and sign-in cookies would travel in clear over the clinic's network; put TLS (an HTTPS reverse proxy) in front of the desk and set secure_cookies = true",
                d.listen
            ),
        });
    }
    if let Some(w) = whatsapp
        && let Some(m) = api_base_warning(&w.api_base)
    {
        out.push(Problem {
            key: "whatsapp.api_base".into(),
            message: m,
        });
    }
    out
}

/// Why `base` is risky, if it is: plain http to a host other than this computer would carry
/// the access token and patients' numbers unencrypted.
pub fn api_base_warning(base: &str) -> Option<String> {
    let url = reqwest::Url::parse(base).ok()?;
    let host = url.host_str()?;
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    let local = unbracketed.eq_ignore_ascii_case("localhost")
        || unbracketed
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (url.scheme() == "http" && !local).then(|| {
        format!(
            "{base:?} is plain http to {host}, another computer: the access token and patients' phone numbers would travel unencrypted; use https://"
        )
    })
}

fn validate_desk(d: &RawDesk, server: &Server, push: &mut impl FnMut(String, String)) -> Desk {
    let listen = d.listen.parse().unwrap_or_else(|_| {
        push(
            "desk.listen".into(),
            format!(
                "{:?} is not an address and port such as \"127.0.0.1:8081\" (this computer only) or \"192.168.1.10:8081\" (the clinic's network)",
                d.listen
            ),
        );
        std::net::SocketAddr::from(([127, 0, 0, 1], 8081))
    });
    if listen == server.listen && listen.port() != 0 {
        push(
            "desk.listen".into(),
            format!(
                "{listen} is also server.listen; the desk needs its own address so the public webhook port never exposes it"
            ),
        );
    }
    // Bounded so that `now + session` and `now + lockout` always fit in a timestamp.
    let mut span = |key: &str, text: &str, bounds: Bounds, fallback: Duration| {
        bounds.span(text).unwrap_or_else(|m| {
            push(format!("desk.{key}"), m);
            fallback
        })
    };
    let session = span("session", &d.session, DESK_SESSION, Duration::hours(12));
    let lockout = span("lockout", &d.lockout, DESK_LOCKOUT, Duration::minutes(15));
    let idle_timeout = span(
        "idle_timeout",
        &d.idle_timeout,
        DESK_IDLE,
        Duration::minutes(30),
    );
    check_number(
        "desk.max_failed_logins",
        d.max_failed_logins,
        &(1..=100),
        " wrong passwords in a row",
        push,
    );
    // The upper bound keeps the request limit (this plus room for the form) from wrapping.
    let max_upload_bytes = if check_number(
        "desk.max_upload_bytes",
        d.max_upload_bytes,
        &(1024..=100 * 1024 * 1024),
        " bytes; a day's schedule is usually a few hundred kilobytes",
        push,
    ) {
        d.max_upload_bytes
    } else {
        default_max_upload()
    };
    let mut count = |key: &str, value: u32, range: std::ops::RangeInclusive<u32>, why: &str| {
        if check_number(&format!("desk.{key}"), value, &range, why, push) {
            value
        } else {
            value.clamp(*range.start(), *range.end())
        }
    };
    let per_name_floor = d.max_failed_logins.clamp(1, 100);
    let max_failed_logins_per_name = count(
        "max_failed_logins_per_name",
        d.max_failed_logins_per_name,
        per_name_floor..=100_000,
        " (at least desk.max_failed_logins: it is the backstop across all addresses)",
    );
    let sign_ins_per_minute_per_address = count(
        "sign_ins_per_minute_per_address",
        d.sign_ins_per_minute_per_address,
        1..=10_000,
        " sign-in requests a minute from one address",
    );
    let sign_ins_per_minute = count(
        "sign_ins_per_minute",
        d.sign_ins_per_minute,
        1..=100_000,
        " sign-in requests a minute from all addresses together",
    );
    Desk {
        listen,
        secure_cookies: d.secure_cookies,
        session,
        idle_timeout,
        max_failed_logins: d.max_failed_logins.clamp(1, 100),
        max_failed_logins_per_name,
        lockout,
        sign_ins_per_minute_per_address,
        sign_ins_per_minute,
        max_upload_bytes,
    }
}

fn build_format(
    key: &str,
    columns: ColumnMap,
    date_formats: Option<Vec<String>>,
    time_formats: Option<Vec<String>>,
    push: &mut impl FnMut(String, String),
) -> ImportFormat {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (field, header) in columns.pairs() {
        let norm = header.trim().to_lowercase();
        if norm.is_empty() {
            push(
                format!("{key}.columns.{field}"),
                "must not be empty; give the header name your export uses".into(),
            );
        } else if let Some(other) = seen.insert(norm, field) {
            push(
                format!("{key}.columns.{field}"),
                format!(
                    "header {header:?} is also mapped to {other:?}; each field needs its own column"
                ),
            );
        }
    }
    let date_formats = date_formats.unwrap_or_else(default_date_formats);
    let time_formats = time_formats.unwrap_or_else(default_time_formats);
    check_patterns(&format!("{key}.date_formats"), &date_formats, true, push);
    check_patterns(&format!("{key}.time_formats"), &time_formats, false, push);
    ImportFormat {
        columns,
        date_formats,
        time_formats,
    }
}

/// Rejects patterns chrono cannot use, by formatting a known value and parsing it back.
fn check_patterns(
    key: &str,
    patterns: &[String],
    date: bool,
    push: &mut impl FnMut(String, String),
) {
    use chrono::{NaiveDate, NaiveTime};
    if patterns.is_empty() {
        push(key.into(), "needs at least one pattern".into());
    }
    for (i, p) in patterns.iter().enumerate() {
        let ok = if date {
            let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default();
            let mut s = String::new();
            std::fmt::write(&mut s, format_args!("{}", d.format(p))).is_ok()
                && NaiveDate::parse_from_str(&s, p) == Ok(d)
        } else {
            let t = NaiveTime::from_hms_opt(14, 35, 0).unwrap_or_default();
            let mut s = String::new();
            std::fmt::write(&mut s, format_args!("{}", t.format(p))).is_ok()
                && NaiveTime::parse_from_str(&s, p) == Ok(t)
        };
        if !ok {
            push(
                format!("{key}[{i}]"),
                format!(
                    "{p:?} is not a usable {} pattern; use strftime codes such as {}",
                    if date { "date" } else { "time" },
                    if date {
                        "\"%Y-%m-%d\" or \"%d/%m/%Y\""
                    } else {
                        "\"%H:%M\" or \"%I:%M %p\""
                    }
                ),
            );
        }
    }
}

/// Checks a cron expression as the scheduler will read it (six fields, seconds first) and
/// that it fires within 366 days of `now`: one that never does (`0 0 0 31 2 *`) would leave
/// its job silently off.
pub fn check_cron(expr: &str, now: DateTime<Utc>) -> Result<(), String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; write six, seconds first: \"sec min hour day-of-month month day-of-week\", e.g. \"0 * * * * *\" for every minute"
        ));
    }
    let not_cron = |e: &dyn fmt::Debug| {
        format!(
            "{expr:?} is not a cron expression ({e:?}); e.g. \"*/15 * * * * *\" is every 15 seconds"
        )
    };
    let mut job = tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}))
        .map_err(|e| not_cron(&e))?;
    let schedule = job
        .job_data()
        .map_err(|e| not_cron(&e))?
        .schedule()
        .ok_or_else(|| not_cron(&"no schedule"))?;
    match schedule.find_next_occurrence(&now, false) {
        Ok(next) if next - now <= Duration::days(366) => Ok(()),
        _ => Err(format!(
            "{expr:?} never fires within the next 366 days, so its job would never run; check the day of the month against the month (e.g. \"0 0 3 * * *\" is every day at 03:00 UTC)"
        )),
    }
}

/// Parses a span written as a whole number and a unit: `90s`, `30m`, `4h`, `2d` (24 hours).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_span(s).map_err(|e| match e {
        SpanError::Malformed(m) => m,
        SpanError::TooLong => format!(
            "{s:?} is too long to be a duration; give a number of seconds, minutes, hours or days that fits"
        ),
    })
}

/// Why a span could not be read.
enum SpanError {
    /// Not a whole number and a unit: the message says how to write one.
    Malformed(String),
    /// A well-formed span beyond what chrono can represent (about 292 million years); the
    /// caller names the range it accepts.
    TooLong,
}

fn parse_span(s: &str) -> Result<Duration, SpanError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(SpanError::Malformed(format!(
            "{s:?} is not a duration; write a whole number and a unit: 90s, 30m, 4h or 2d"
        )));
    }
    let make: fn(i64) -> Option<Duration> = match unit.trim() {
        "s" => Duration::try_seconds,
        "m" | "min" => Duration::try_minutes,
        "h" => Duration::try_hours,
        "d" => Duration::try_days,
        _ => {
            return Err(SpanError::Malformed(format!(
                "{s:?} has an unknown unit; use s, m, h or d (e.g. 30m, 4h, 2d)"
            )));
        }
    };
    // Only digits are left, so a number that does not parse is one too large for an i64.
    let n: i64 = digits.parse().map_err(|_| SpanError::TooLong)?;
    make(n).ok_or(SpanError::TooLong)
}

/// The accepted range of a span-valued key, in seconds, both ends included. Every duration
/// key has one, so no value can overflow an addition to a timestamp or an `Instant` later.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min: i64,
    max: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Bounds {
    const fn new(min: i64, max: i64) -> Self {
        Self { min, max }
    }

    /// `between 1s and 10m`, as messages and `reminders.toml` say it.
    fn text(self) -> String {
        format!(
            "between {} and {}",
            span_text(self.min),
            span_text(self.max)
        )
    }

    /// `text` read as a span within these bounds, or the message naming them.
    fn span(self, text: &str) -> Result<Duration, String> {
        match parse_span(text) {
            Err(SpanError::Malformed(m)) => Err(m),
            Err(SpanError::TooLong) => Err(format!("{text:?} is too long; give {}", self.text())),
            Ok(d) if d.num_seconds() < self.min => {
                Err(format!("{text:?} is too short; give {}", self.text()))
            }
            Ok(d) if d.num_seconds() > self.max => {
                Err(format!("{text:?} is too long; give {}", self.text()))
            }
            Ok(d) => Ok(d),
        }
    }

    /// As [`Bounds::span`], for the settings that feed `std` timers.
    fn std_span(self, text: &str) -> Result<std::time::Duration, String> {
        // Never negative: every minimum is at least zero.
        self.span(text)
            .map(|d| d.to_std().unwrap_or(std::time::Duration::ZERO))
    }
}

/// A number of seconds in the largest unit that writes it whole: `90s`, `15m`, `7d`.
fn span_text(secs: i64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

// The accepted range of every duration key; `reminders.toml` gives each next to its key.
const STALE_AFTER: Bounds = Bounds::new(10, 7 * DAY);
const SHUTDOWN_GRACE: Bounds = Bounds::new(0, 15 * MINUTE);
const DESK_SESSION: Bounds = Bounds::new(MINUTE, 30 * DAY);
const DESK_LOCKOUT: Bounds = Bounds::new(MINUTE, 7 * DAY);
const DESK_IDLE: Bounds = Bounds::new(MINUTE, 24 * HOUR);
const HEADER_TIMEOUT: Bounds = Bounds::new(1, 10 * MINUTE);
const SERVER_REQUEST_TIMEOUT: Bounds = Bounds::new(1, HOUR);
const CONNECT_TIMEOUT: Bounds = Bounds::new(1, 5 * MINUTE);
const API_REQUEST_TIMEOUT: Bounds = Bounds::new(1, 10 * MINUTE);
const RETRY_BASE: Bounds = Bounds::new(1, HOUR);
const RETRY_MAX: Bounds = Bounds::new(1, 7 * DAY);
const RECIPIENT_SPACING: Bounds = Bounds::new(0, HOUR);
const UNKNOWN_AFTER: Bounds = Bounds::new(1, 30 * DAY);
const MAX_IMPORT_AGE: Bounds = Bounds::new(HOUR, 3650 * DAY);
const RULE_BEFORE: Bounds = Bounds::new(MINUTE, 366 * DAY);
const RULE_LATEST: Bounds = Bounds::new(0, 366 * DAY);

/// Checks a whole-number setting against its range; `unit` follows the range in the message
/// (" bytes", " minutes", or a reason).
fn check_number<T>(
    key: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
    unit: &str,
    push: &mut impl FnMut(String, String),
) -> bool
where
    T: PartialOrd + fmt::Display + Copy,
{
    if range.contains(&value) {
        return true;
    }
    push(
        key.into(),
        format!(
            "{value} is out of range: must be between {} and {}{unit}",
            range.start(),
            range.end()
        ),
    );
    false
}

/// Parses a rule offset: `Nd` is calendar days at the same wall time, anything else exact.
/// Either must lie between 1m and 366d.
pub fn parse_offset(s: &str) -> Result<Offset, String> {
    let t = s.trim();
    // Checked as a span first, so a day count too large for anything gets the range.
    let span = RULE_BEFORE.span(t)?;
    match t.strip_suffix('d') {
        Some(days) => days
            .parse::<u32>()
            .map(Offset::Days)
            .map_err(|_| format!("{s:?} is not a number of days; write e.g. 1d or 2d")),
        None => Ok(Offset::Exact(span)),
    }
}

/// Parses `21:00-08:00`.
pub fn parse_quiet_hours(s: &str) -> Result<QuietHours, String> {
    let bad = || format!("{s:?} is not a period; write it as HH:MM-HH:MM, e.g. 21:00-08:00");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
    if start == end {
        return Err(format!(
            "{s:?} starts and ends at the same time; leave quiet_hours out for none"
        ));
    }
    Ok(QuietHours { start, end })
}

/// Whether chrono can render this strftime pattern (an unknown `%` code fails at format time).
fn formats_cleanly(pattern: &str) -> bool {
    use std::fmt::Write;
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .and_then(|d| d.and_hms_opt(14, 35, 0))
        .unwrap_or_default();
    let mut out = String::new();
    write!(out, "{}", t.format(pattern)).is_ok()
}

fn validate_whatsapp(w: RawWhatsApp, push: &mut impl FnMut(String, String)) -> WhatsApp {
    let mut span = |key: &str, v: &str, bounds: Bounds, default: std::time::Duration| {
        bounds.std_span(v).unwrap_or_else(|m| {
            push(format!("whatsapp.{key}"), m);
            default
        })
    };
    let connect_timeout = span(
        "connect_timeout",
        &w.connect_timeout,
        CONNECT_TIMEOUT,
        std::time::Duration::from_secs(5),
    );
    let request_timeout = span(
        "request_timeout",
        &w.request_timeout,
        API_REQUEST_TIMEOUT,
        std::time::Duration::from_secs(15),
    );
    let retry_base = span(
        "retry_base",
        &w.retry_base,
        RETRY_BASE,
        std::time::Duration::from_secs(5),
    );
    let retry_max = span(
        "retry_max",
        &w.retry_max,
        RETRY_MAX,
        std::time::Duration::from_mins(15),
    );
    let recipient_spacing = span(
        "recipient_spacing",
        &w.recipient_spacing,
        RECIPIENT_SPACING,
        std::time::Duration::from_secs(6),
    );
    let unknown_after = UNKNOWN_AFTER.span(&w.unknown_after).unwrap_or_else(|m| {
        push("whatsapp.unknown_after".into(), m);
        Duration::hours(1)
    });
    if retry_max < retry_base {
        push(
            "whatsapp.retry_max".into(),
            format!(
                "{:?} is shorter than retry_base ({:?}); the longest retry delay must be at least the first",
                w.retry_max, w.retry_base
            ),
        );
    }
    check_number(
        "whatsapp.rate_limit_per_sec",
        w.rate_limit_per_sec,
        &(1..=1000),
        " (the Cloud API allows 80 by default, 1000 after an upgrade)",
        push,
    );
    check_number(
        "whatsapp.max_attempts",
        w.max_attempts,
        &(1..=50),
        " attempts",
        push,
    );
    // tokio's semaphore panics above 2^61 permits; more than 1024 at once gains nothing at
    // the API's 1000 messages a second.
    let max_in_flight = match w.max_in_flight {
        Some(n) if check_number("whatsapp.max_in_flight", n, &(1..=1024), " requests", push) => {
            Some(n)
        }
        _ => None,
    };
    let version_ok = w
        .api_version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.to_string() + b).chars().all(|c| c.is_ascii_digit())
        });
    if !version_ok {
        push(
            "whatsapp.api_version".into(),
            format!(
                "{:?} is not a Graph API version such as \"v23.0\"",
                w.api_version
            ),
        );
    }
    let url_ok = reqwest::Url::parse(&w.api_base).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !url_ok {
        push(
            "whatsapp.api_base".into(),
            format!("{:?} is not an http(s) URL", w.api_base),
        );
    }
    for (key, v) in [
        ("phone_number_id", &w.phone_number_id),
        ("waba_id", &w.waba_id),
    ] {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit()) {
            push(
                format!("whatsapp.{key}"),
                format!("{v:?} is not a numeric id; copy it from WhatsApp Manager → API setup"),
            );
        }
    }
    let rate = w.rate_limit_per_sec.clamp(1, 1000);
    WhatsApp {
        api_base: w.api_base.trim_end_matches('/').to_string(),
        api_version: w.api_version,
        phone_number_id: w.phone_number_id,
        waba_id: w.waba_id,
        rate_limit_per_sec: rate,
        // Enough requests in flight to reach the cap at a slow API (~250 ms a request).
        max_in_flight: max_in_flight.unwrap_or((rate as usize / 4).clamp(4, 256)),
        connect_timeout,
        request_timeout,
        max_attempts: w.max_attempts.clamp(1, 50),
        retry_base,
        retry_max,
        recipient_spacing,
        unknown_after,
        unknown_action: w.unknown_action,
    }
}

fn validate_templates(
    raw: BTreeMap<String, RawTemplate>,
    push: &mut impl FnMut(String, String),
) -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    for (key, t) in raw {
        let k = |f: &str| format!("templates.{key}.{f}");
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            push(
                k("name"),
                format!(
                    "{:?} is not a WhatsApp template name (lower-case letters, digits and _)",
                    t.name
                ),
            );
        }
        if t.languages.is_empty() {
            push(k("languages"), "no language is configured; add [templates.KEY.languages.en] with the approved body".into());
        }
        if t.buttons.len() > 10 {
            push(
                k("buttons"),
                "a template has at most 10 quick-reply buttons".into(),
            );
        }
        let mut languages = BTreeMap::new();
        for (lang, text) in t.languages {
            let lk = format!("templates.{key}.languages.{lang}");
            match crate::import::normalize_language(&lang) {
                Some(norm) if norm == lang => {}
                _ => push(
                    lk.clone(),
                    "is not a language code as WhatsApp writes it (en, hi, es_MX, pt_BR)".into(),
                ),
            }
            let found = placeholders(&text.body);
            let want: Vec<usize> = (1..=t.params.len()).collect();
            if found != want {
                push(
                    format!("{lk}.body"),
                    format!(
                        "has placeholders {} but params lists {} value(s); the body must use {{{{1}}}}..{{{{{}}}}} once each",
                        if found.is_empty() {
                            "none".to_string()
                        } else {
                            found
                                .iter()
                                .map(|n| format!("{{{{{n}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        t.params.len(),
                        t.params.len()
                    ),
                );
            }
            if text.body.chars().count() > 1024 {
                push(
                    format!("{lk}.body"),
                    "is longer than the 1024 characters WhatsApp allows".into(),
                );
            }
            if text.buttons.len() != t.buttons.len() {
                push(
                    format!("{lk}.buttons"),
                    format!(
                        "has {} label(s) but the template has {} button(s)",
                        text.buttons.len(),
                        t.buttons.len()
                    ),
                );
            }
            if let Some(long) = text.buttons.iter().find(|b| b.chars().count() > 25) {
                push(
                    format!("{lk}.buttons"),
                    format!("label {long:?} is longer than 25 characters"),
                );
            }
            languages.insert(lang, text);
        }
        out.insert(
            key,
            Template {
                name: t.name,
                params: t.params,
                buttons: t.buttons,
                languages,
            },
        );
    }
    out
}

fn validate_replies(raw: RawReplies, push: &mut impl FnMut(String, String)) -> Replies {
    use crate::replies::{Intent, normalize};
    let mut words: std::collections::HashMap<String, (Intent, String)> =
        std::collections::HashMap::new();
    for (lang, w) in &raw.words {
        for (intent, list) in [
            (Intent::Confirm, &w.confirm),
            (Intent::Cancel, &w.cancel),
            (Intent::Reschedule, &w.reschedule),
            (Intent::Stop, &w.stop),
            (Intent::Start, &w.start),
        ] {
            for word in list {
                let key = normalize(word);
                let at = format!("replies.words.{lang}.{}", intent.as_str());
                if key.is_empty() {
                    push(
                        at,
                        format!("{word:?} has no letters or digits left to match"),
                    );
                    continue;
                }
                match words.get(&key) {
                    Some((other, where_)) if *other != intent => push(
                        at,
                        format!(
                            "{word:?} also means {} in {where_}; a word can mean only one thing",
                            other.as_str()
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        words.insert(key, (intent, format!("replies.words.{lang}")));
                    }
                }
            }
        }
    }
    // A language without acknowledgements falls back to the clinic's, then English
    // (template::ack_text), as templates do.
    Replies {
        words: words.into_iter().map(|(k, (i, _))| (k, i)).collect(),
        acks: raw.acks,
    }
}

/// The `{{n}}` numbers in a body, in order of appearance.
pub fn placeholders(body: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("{{") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find("}}") {
            if let Ok(n) = rest[..j].trim().parse() {
                out.push(n);
            }
            rest = &rest[j + 2..];
        }
    }
    out
}

fn validate_rules(
    raw: Vec<RawRule>,
    clinics: &BTreeMap<String, Clinic>,
    templates: &BTreeMap<String, Template>,
    push: &mut impl FnMut(String, String),
) -> Vec<Rule> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let k = |f: &str| format!("rules[{i}].{f}");
        if !is_valid_key(&r.name) {
            push(
                k("name"),
                format!(
                    "{:?}: rule names use lower-case letters, digits, '-' and '_'",
                    r.name
                ),
            );
        }
        if !seen.insert(r.name.clone()) {
            push(
                k("name"),
                format!(
                    "{:?} is the name of an earlier rule; each rule needs its own name",
                    r.name
                ),
            );
        }
        let before = parse_offset(&r.before)
            .map_err(|m| push(k("before"), m))
            .ok();
        let latest = RULE_LATEST
            .span(&r.latest)
            .map_err(|m| push(k("latest"), m))
            .ok();
        if let (Some(b), Some(l)) = (before, latest)
            && b.approx() <= l
        {
            push(
                k("latest"),
                format!(
                    "{} is not less than before = {}: the rule could never send on time",
                    r.latest, r.before
                ),
            );
        }
        if !templates.contains_key(&r.template) {
            push(
                k("template"),
                format!(
                    "no template {:?} under [templates]; configured: {}",
                    r.template,
                    list_or_none(templates.keys())
                ),
            );
        }
        let rule_clinics = r
            .clinics
            .unwrap_or_else(|| clinics.keys().cloned().collect());
        for c in &rule_clinics {
            if !clinics.contains_key(c) {
                push(
                    k("clinics"),
                    format!(
                        "unknown clinic {c:?}; configured: {}",
                        list_or_none(clinics.keys())
                    ),
                );
            }
        }
        if let (Some(before), Some(latest)) = (before, latest) {
            out.push(Rule {
                name: r.name,
                before,
                latest,
                template: r.template,
                clinics: rule_clinics,
                skip_if_confirmed: r.skip_if_confirmed,
            });
        }
    }
    out
}

/// Picks the config file: `--config`, then `$REMINDERD_CONFIG`, then `./reminders.toml`.
pub fn resolve_path(flag: Option<PathBuf>, env: Option<String>) -> PathBuf {
    flag.or_else(|| env.filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Mumbai"
time_zone = "Asia/Kolkata"
phone_region = "IN"
"#;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text, Path::new("/etc/reminderd/reminders.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| p.to_string()).collect()
            }
            other => panic!("expected validation problems, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_loads_with_defaults() {
        let c = Config::from_toml(GOOD, Path::new("/etc/reminderd/reminders.toml"))
            .expect("valid config");
        assert_eq!(c.database_path, Path::new("/etc/reminderd/x.db"));
        let m = c.clinic("mumbai").expect("clinic");
        assert_eq!(m.time_zone, chrono_tz::Asia::Kolkata);
        assert_eq!(m.default_language, "en");
        assert_eq!(m.default_duration_min, 30);
        assert_eq!(c.import.columns.phone, "phone");
        assert_eq!(c.import.date_formats, vec!["%Y-%m-%d"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Same"
time_zone = "Asia/Bombay-ish"
phone_region = "ZZ"
default_duration_min = 0
[clinics.nyc]
display_name = "same"
time_zone = "America/New_York"
phone_region = "US"
import_format = "nope"
[import]
date_formats = ["%Q"]
[import.columns]
phone = "Date"
date = "date"
[server]
listen = "127.0.0.1:8080"
header_timeout = "0s"
request_timeout = "soon"
max_connections = 0
"#;
        let p = problems(text);
        let joined = p.join("\n");
        for needle in [
            "clinics.mumbai.time_zone: unknown time zone \"Asia/Bombay-ish\"",
            "clinics.mumbai.phone_region: unknown phone region \"ZZ\"",
            "clinics.mumbai.default_duration_min: 0 is out of range: must be between 1 and 1440 minutes",
            "clinics.nyc.display_name: \"same\" is also the display name of clinic \"mumbai\"",
            "clinics.nyc.import_format: unknown import format \"nope\"",
            "import.date_formats[0]: \"%Q\" is not a usable date pattern",
            "import.columns.date: header \"date\" is also mapped to \"phone\"",
            "server.header_timeout: \"0s\" is too short; give between 1s and 10m",
            "server.request_timeout: \"soon\" is not a duration",
            "server.max_connections: 0 is out of range: must be between 1 and 16384",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
    }

    #[test]
    fn a_desk_section_with_only_its_address_is_the_default_desk() {
        let text = format!("{GOOD}\n[desk]\nlisten = \"127.0.0.1:8081\"\n");
        let c = Config::from_toml(&text, Path::new("r.toml")).expect("valid");
        assert_eq!(c.desk, Some(Desk::default()));
    }

    #[test]
    fn desk_sign_in_limits_and_idle_timeout_have_ranges() {
        let desk = |keys: &str| format!("{GOOD}\n[desk]\nlisten = \"127.0.0.1:8081\"\n{keys}\n");
        let c = Config::from_toml(
            &desk("idle_timeout = \"10m\"\nsign_ins_per_minute = 30\nsign_ins_per_minute_per_address = 3\nmax_failed_logins_per_name = 5"),
            Path::new("r.toml"),
        )
        .expect("valid");
        let d = c.desk.expect("desk");
        assert_eq!(d.idle_timeout, Duration::minutes(10));
        assert_eq!(
            (
                d.sign_ins_per_minute,
                d.sign_ins_per_minute_per_address,
                d.max_failed_logins_per_name
            ),
            (30, 3, 5)
        );
        let p = problems(&desk(
            "idle_timeout = \"2d\"\nsign_ins_per_minute = 0\nsign_ins_per_minute_per_address = 20000\nmax_failed_logins = 10\nmax_failed_logins_per_name = 9",
        ));
        for key in [
            "desk.idle_timeout",
            "desk.sign_ins_per_minute:",
            "desk.sign_ins_per_minute_per_address",
            "desk.max_failed_logins_per_name",
        ] {
            assert!(p.iter().any(|m| m.contains(key)), "{key} in {p:?}");
        }
        assert!(
            problems(&desk("idle_timeout = \"30s\""))
                .iter()
                .any(|m| m.contains("desk.idle_timeout")),
            "shorter than a minute"
        );
    }

    #[test]
    fn unknown_keys_and_duplicate_clinics_are_parse_errors() {
        let typo = GOOD.replace("phone_region", "phone_regoin");
        let err = Config::from_toml(&typo, Path::new("r.toml")).expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `phone_regoin`"),
            "{err}"
        );

        let dup = format!("{GOOD}\n[clinics.mumbai]\ndisplay_name = \"x\"\n");
        let err = Config::from_toml(&dup, Path::new("r.toml")).expect_err("duplicate");
        assert!(err.to_string().contains("mumbai"), "{err}");
    }

    #[test]
    fn durations_too_large_for_any_clock_are_errors_not_panics() {
        for text in [
            "9999999999999999d",
            "9223372036854775807s",
            "9223372036854775807m",
            "153722867280912931m",
            "99999999999999999999s",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(
                err.contains(&format!("{text:?} is too long to be a duration")),
                "{err}"
            );
        }
        // The largest span chrono holds is about 292 million years; just inside it reads.
        assert_eq!(
            parse_duration("106751991167d").map(|d| d.num_days()),
            Ok(106_751_991_167)
        );
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::days(2)));
        assert!(parse_duration("d").is_err_and(|m| m.contains("is not a duration")));
        assert!(parse_duration("5w").is_err_and(|m| m.contains("unknown unit")));
    }

    #[test]
    fn ranges_name_both_ends_and_admit_them() {
        assert_eq!(STALE_AFTER.span("10s"), Ok(Duration::seconds(10)));
        assert_eq!(STALE_AFTER.span("7d"), Ok(Duration::days(7)));
        assert_eq!(
            STALE_AFTER.span("169h"),
            Err("\"169h\" is too long; give between 10s and 7d".into())
        );
        assert_eq!(
            STALE_AFTER.span("9s"),
            Err("\"9s\" is too short; give between 10s and 7d".into())
        );
        assert_eq!(
            DESK_LOCKOUT.span("100000000d"),
            Err("\"100000000d\" is too long; give between 1m and 7d".into())
        );
        assert_eq!(
            RECIPIENT_SPACING.std_span("0s"),
            Ok(std::time::Duration::ZERO)
        );
        assert_eq!(span_text(90), "90s");
        assert_eq!(span_text(3650 * DAY), "3650d");
    }

    #[test]
    fn rule_offsets_stay_within_a_year() {
        assert_eq!(parse_offset("1d"), Ok(Offset::Days(1)));
        assert_eq!(parse_offset("366d"), Ok(Offset::Days(366)));
        assert_eq!(
            parse_offset("90m"),
            Ok(Offset::Exact(Duration::minutes(90)))
        );
        for (text, why) in [
            ("367d", "too long"),
            ("4294967296d", "too long"),
            ("9223372036854775807s", "too long"),
            ("0d", "too short"),
            ("30s", "too short"),
        ] {
            let err = parse_offset(text).expect_err(text);
            assert_eq!(err, format!("{text:?} is {why}; give between 1m and 366d"));
        }
    }

    #[test]
    fn a_cron_must_fire_within_366_days_of_now() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("instant")
                .with_timezone(&Utc)
        };
        assert_eq!(
            check_cron("*/15 * * * * *", at("2027-03-01T00:00:00Z")),
            Ok(())
        );
        // 29 February: 365 days away from 1 March 2027, almost four years from 1 March 2028.
        assert_eq!(
            check_cron("0 0 0 29 2 *", at("2027-03-01T00:00:00Z")),
            Ok(())
        );
        let err = check_cron("0 0 0 29 2 *", at("2028-03-01T00:00:00Z")).expect_err("2032");
        assert!(err.starts_with("\"0 0 0 29 2 *\" never fires within the next 366 days"));
        for never in ["0 0 0 31 2 *", "0 0 0 31 4 *", "0 0 0 30 2 *"] {
            assert!(
                check_cron(never, at("2027-03-01T00:00:00Z"))
                    .is_err_and(|m| m.contains("never fires")),
                "{never}"
            );
        }
        assert!(
            check_cron("0 * * * *", at("2027-03-01T00:00:00Z"))
                .is_err_and(|m| m.contains("has 5 fields"))
        );
        assert!(
            check_cron("0 * * * * nope", at("2027-03-01T00:00:00Z"))
                .is_err_and(|m| m.contains("is not a cron expression"))
        );
    }

    #[test]
    fn risky_settings_are_warnings_naming_their_key() {
        let with = |extra: &str| {
            Config::from_toml(&format!("{GOOD}{extra}"), Path::new("r.toml")).expect("valid")
        };
        assert!(with("").warnings.is_empty());
        assert!(
            with("[desk]\nlisten = \"127.0.0.1:8081\"\n")
                .warnings
                .is_empty()
        );
        assert!(
            with("[desk]\nlisten = \"[::1]:8081\"\n")
                .warnings
                .is_empty()
        );
        assert!(
            with("[desk]\nlisten = \"0.0.0.0:8081\"\nsecure_cookies = true\n")
                .warnings
                .is_empty()
        );
        let open = with("[desk]\nlisten = \"0.0.0.0:8081\"\n");
        assert_eq!(open.warnings.len(), 1, "{:?}", open.warnings);
        assert_eq!(open.warnings[0].key, "desk.secure_cookies");
        assert!(
            open.warnings[0]
                .message
                .contains("set secure_cookies = true")
        );

        let wa = |base: &str| {
            format!("[whatsapp]\napi_base = \"{base}\"\nphone_number_id = \"1\"\nwaba_id = \"2\"\n")
        };
        for quiet in [
            "https://graph.facebook.com",
            "https://10.0.0.5",
            "http://127.0.0.1:9000",
            "http://127.8.0.1",
            "http://LOCALHOST:9000",
            "http://[::1]:9000/",
        ] {
            assert!(with(&wa(quiet)).warnings.is_empty(), "{quiet}");
        }
        for loud in [
            "http://10.0.0.5",
            "http://graph.facebook.com",
            "http://[2001:db8::1]",
        ] {
            let w = with(&wa(loud)).warnings;
            assert_eq!(w.len(), 1, "{loud}");
            assert_eq!(w[0].key, "whatsapp.api_base");
            assert!(w[0].message.contains("use https://"), "{}", w[0].message);
        }
        let p = problems(&format!("{GOOD}{}", wa("ftp://x")));
        assert!(
            p.iter().any(|m| m.starts_with("whatsapp.api_base:")),
            "{p:?}"
        );
    }

    #[test]
    fn config_path_precedence() {
        assert_eq!(
            resolve_path(Some("a.toml".into()), Some("b.toml".into())),
            PathBuf::from("a.toml")
        );
        assert_eq!(
            resolve_path(None, Some("b.toml".into())),
            PathBuf::from("b.toml")
        );
        assert_eq!(
            resolve_path(None, Some(String::new())),
            PathBuf::from("reminders.toml")
        );
        assert_eq!(resolve_path(None, None), PathBuf::from("reminders.toml"));
    }
}
