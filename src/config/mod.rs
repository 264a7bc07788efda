//! `reminders.toml`: the typed configuration, its loading and its accessors.
//!
//! Loading is two steps: serde parses the TOML into the raw shapes of [`raw`] (unknown keys
//! are errors, so a typo never silently disables a setting), then [`validate`] checks what
//! serde cannot (time zones, regions, references between sections) and reports *every*
//! problem, each naming the key it concerns. [`values`] reads single values within their
//! ranges; [`messaging`] checks the sections about what is sent.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::phone::Region;

mod booking;
mod conversations;
mod costs;
mod database;
mod documents;
mod feedback;
mod feeds;
mod messaging;
mod numbers;
pub use numbers::{DEFAULT_NUMBER, Number};
mod privacy;
mod raw;
mod report;
mod sms;
mod validate;
mod values;
mod waitlist;

pub use booking::{Booking, Confirm, OfferTexts};
pub use conversations::{Conversations, DEFAULT_GUIDELINES, DEFAULT_SENSITIVE_PATTERNS};
pub use costs::{AckChoice, Billed, CATEGORIES, Costs, MonthCost, monthly};
pub use documents::{Document, MAX_DOCUMENT_BYTES, NO_PREP_NOTE, PrepNote, prep_note_for};
pub use feedback::{FEEDBACK_KIND, FeedbackRule};
pub use feeds::{CSV_SOURCE, Feed, FeedKind, FhirAuth, FhirFeed, Hl7Feed};
pub use messaging::placeholders;
pub use privacy::{DEFAULT_PURGE_CRON, Privacy};
pub use report::Report;
pub use sms::{
    DLT_VARIABLE_CAP, Msg91, OPT_OUT_WORDS, Sms, SmsLanguage, SmsText, Twilio, asks_for_reply,
    opt_out_words,
};
pub use validate::api_base_warning;
pub use values::{check_cron, parse_duration, parse_offset, parse_quiet_hours};
pub use waitlist::{OFFER_BUTTONS, Waitlist, Waitlists};

/// Where the config file is looked for when neither `--config` nor `$REMINDERD_CONFIG` is set.
pub const DEFAULT_CONFIG_PATH: &str = "reminders.toml";

/// The whole configuration, as validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the file it was read from; relative paths inside it resolve against its folder.
    pub source: PathBuf,
    /// The SQLite database file (empty when `database_url` is set).
    pub database_path: PathBuf,
    /// The PostgreSQL database several instances share (`database.url`), without a
    /// password; `None`: the SQLite file.
    pub database_url: Option<String>,
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
    /// Feedback rules (`kind = "feedback"`), in file order; none: no feedback requests.
    pub feedback: Vec<FeedbackRule>,
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
    /// SMS, the second channel (`None`: not configured, so nothing falls back to SMS).
    pub sms: Option<Sms>,
    /// Schedule feeds by name (`[feeds.NAME]`): HL7 v2 SIU listeners and FHIR R4 servers.
    pub feeds: BTreeMap<String, Feed>,
    /// Conversations on the desk: the "please call us" template, guidelines, sensitive phrases.
    pub conversations: Conversations,
    /// How an opening a patient took is booked, and the answers to offers (`[booking]`).
    pub booking: Booking,
    /// The documents staff may send a patient (`[documents.KEY]`), by key.
    pub documents: BTreeMap<String, Document>,
    /// Preparation notes per provider (`[[prep_notes]]`), in file order.
    pub prep_notes: Vec<PrepNote>,
    /// Per-category rates for the cost estimate (`None`: counts only).
    pub costs: Option<Costs>,
    /// Offering freed slots to waitlisted patients (`[waitlist]`, per clinic overridable).
    pub waitlist: Waitlists,
    /// How the evaluation report judges its figures (`[report]`).
    pub report: Report,
    /// How long raw payloads and patients' words are kept (`[privacy]`).
    pub privacy: Privacy,
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
    /// Days after today that Follow-ups lists (0: today only; 2: today, tomorrow and the day
    /// after): today's calls are mostly about the coming days' patients.
    pub follow_up_days: u32,
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
    /// The thanks for a feedback score; `None`: a score is not answered in this language.
    #[serde(default)]
    pub feedback: Option<String>,
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
            Intent::Feedback => self.feedback.as_deref(),
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
    /// How the clinic writes dates that are not ISO (`26/11/2026`); `None`: ISO only, and a
    /// date written otherwise is refused with the reason.
    pub date_order: Option<DateOrder>,
    /// Rows without problems may be imported when other rows of the file have problems
    /// (default: all rows or none).
    pub import_partial: bool,
    /// Local hours in which no message is sent.
    pub quiet_hours: Option<QuietHours>,
    /// Reminders are held when the clinic's last import is older than this.
    pub max_import_age: Option<Duration>,
    /// How dates appear in messages (strftime, localised to the patient's language).
    pub date_format: String,
    /// How times appear in messages (strftime).
    pub time_format: String,
    /// The SMS provider this clinic's texts go through (`None`: no SMS).
    pub sms_provider: Option<crate::sms::Provider>,
    /// Fall back to SMS after a terminal WhatsApp failure (`[sms] fallback` unless the clinic
    /// sets its own).
    pub sms_fallback: bool,
    /// The clinic's phone number as patients dial it, for texts that cannot be answered.
    pub phone: Option<String>,
    /// Send the acknowledgement after a patient's answer (`acks = "on"`, the default); each
    /// is a billed service message since 2026-10-01.
    pub acks: bool,
    /// The WhatsApp number this clinic sends from: a key of [`WhatsApp::numbers`]
    /// ([`DEFAULT_NUMBER`] unless `whatsapp_number` names another).
    pub whatsapp_number: String,
}

/// The order of day, month and year in a clinic's dates (`clinics.KEY.date_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// Day first: `26/11/2026` (India, Britain, most of the world).
    Dmy,
    /// Month first: `11/26/2026` (the United States).
    Mdy,
    /// Year first: `2026/11/26`.
    Ymd,
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
    /// What the clinic calls it on the desk ("Day before"); `None`: the name, humanised.
    pub label: Option<String>,
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
    /// Overrides the clinic's SMS fallback for this rule's messages.
    pub sms_fallback: Option<bool>,
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
    /// The caregiver's name (in a caregiver's template).
    #[serde(rename = "contact.name")]
    ContactName,
    /// The preparation note for the appointment's provider (`[[prep_notes]]`), in the
    /// patient's language; a dash when there is none.
    #[serde(rename = "appointment.prep_notes", alias = "prep_notes")]
    PrepNotes,
}

/// An approved WhatsApp template as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The name approved in WhatsApp Manager.
    pub name: String,
    /// Body parameters `{{1}}`, `{{2}}`, ... in order.
    pub params: Vec<Field>,
    /// Quick-reply buttons in template order.
    pub buttons: Vec<crate::model::Intent>,
    /// The approved text per language code.
    pub languages: BTreeMap<String, TemplateText>,
    /// The template sent instead to a patient's caregiver (it names the patient and greets
    /// the caregiver, `contact.name`); `None`: caregivers get no message of this kind.
    pub contact_template: Option<String>,
    /// How long WhatsApp should keep trying to deliver it (`message_send_ttl_seconds` at Meta,
    /// 30 s to 12 h); a `failed` status after that records the message as expired.
    pub ttl: Option<Duration>,
    /// The template sent instead while Meta has paused, disabled or re-categorised this one.
    pub alternate: Option<String>,
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
    /// Every number sends from, by name: [`DEFAULT_NUMBER`] (this section's own
    /// `phone_number_id`, `waba_id` and `rate_limit_per_sec`) and each `[whatsapp.numbers.NAME]`.
    pub numbers: BTreeMap<String, Number>,
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
    pub channel: String,
    pub contact_name: String,
    pub contact_phone: String,
    pub contact_relation: String,
    pub remind: String,
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
            channel: "channel".into(),
            contact_name: "contact_name".into(),
            contact_phone: "contact_phone".into(),
            contact_relation: "contact_relation".into(),
            remind: "remind".into(),
        }
    }
}

impl ColumnMap {
    /// Every (field name, header name) pair, in the order of the default CSV layout.
    pub fn pairs(&self) -> [(&'static str, &str); 16] {
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
            ("channel", &self.channel),
            ("contact_name", &self.contact_name),
            ("contact_phone", &self.contact_phone),
            ("contact_relation", &self.contact_relation),
            ("remind", &self.remind),
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

/// A config name as people write it: `day-before` or `same_day` → "Day before", "Same day".
pub fn humanise_name(name: &str) -> String {
    let words = name.replace(['-', '_'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
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

impl Config {
    /// Whether there is a database to read: the PostgreSQL database, or a SQLite file that
    /// exists already.
    pub fn has_database(&self) -> bool {
        self.database_url.is_some() || self.database_path.exists()
    }

    /// The store as logs and messages name it: the file, or the PostgreSQL URL.
    pub fn database_label(&self) -> String {
        match &self.database_url {
            Some(url) => crate::store::sql::redact(url),
            None => self.database_path.display().to_string(),
        }
    }

    /// Sends every outside API's requests to `base` instead (`$REMINDERD_API_BASE`: the
    /// simulator, which speaks the Cloud API, Twilio and MSG91 on one address).
    pub fn point_apis_at(&mut self, base: &str) {
        let base = base.trim_end_matches('/').to_string();
        if let Some(wa) = self.whatsapp.as_mut() {
            wa.api_base.clone_from(&base);
        }
        if let Some(sms) = self.sms.as_mut() {
            if let Some(t) = sms.twilio.as_mut() {
                t.api_base.clone_from(&base);
            }
            if let Some(m) = sms.msg91.as_mut() {
                m.api_base.clone_from(&base);
            }
        }
    }
}

impl Config {
    /// What the clinic calls the rule `name`: its `label`, else the name humanised
    /// (`day-before` → "Day before"), also for a rule no longer configured.
    pub fn rule_label(&self, name: &str) -> String {
        self.rules
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.label.clone())
            .or_else(|| {
                self.feedback
                    .iter()
                    .find(|r| r.name == name)
                    .and_then(|r| r.label.clone())
            })
            .unwrap_or_else(|| humanise_name(name))
    }

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
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        validate::validate(raw, path, now).map_err(|problems| ConfigError::Invalid {
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
            include_str!("../../reminders.toml"),
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

/// Picks the config file: `--config`, then `$REMINDERD_CONFIG`, then `./reminders.toml`.
pub fn resolve_path(flag: Option<PathBuf>, env: Option<String>) -> PathBuf {
    flag.or_else(|| env.filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// A table name as one segment of a problem's key: as written when it is a bare TOML key,
/// quoted as TOML quotes it otherwise, so a name holding a dot (or none at all) cannot make
/// the key read as another path (`import.formats."."`, not `import.formats..`).
pub(crate) fn seg(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(toml::Value::String(name.to_string()).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid file; the validation tests build on it.
    pub(super) const GOOD: &str = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Mumbai"
time_zone = "Asia/Kolkata"
phone_region = "IN"
"#;

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
    fn a_desk_section_with_only_its_address_is_the_default_desk() {
        let text = format!("{GOOD}\n[desk]\nlisten = \"127.0.0.1:8081\"\n");
        let c = Config::from_toml(&text, Path::new("r.toml")).expect("valid");
        assert_eq!(c.desk, Some(Desk::default()));
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

    #[test]
    fn rules_are_called_by_their_label_or_their_name_humanised() {
        let c = Config::example().expect("shipped config");
        assert_eq!(c.rule_label("day-before"), "Day before");
        assert_eq!(c.rule_label("same-day"), "2 hours before");
        assert_eq!(
            c.rule_label("week_ahead"),
            "Week ahead",
            "a rule since removed"
        );
        let text = include_str!("../../reminders.toml");
        let unlabelled = text.replace("label = \"Day before\"\n", "");
        let c = Config::from_toml(&unlabelled, Path::new("r.toml")).expect("valid");
        assert_eq!(c.rule_label("day-before"), "Day before");
        for bad in [
            "\"  \"",
            "\"Day\\tbefore\"",
            &format!("{:?}", "x".repeat(41)),
        ] {
            let text = text.replace("\"Day before\"", bad);
            let err = Config::from_toml(&text, Path::new("r.toml")).expect_err(bad);
            assert!(err.to_string().contains("rules[0].label: "), "{bad}: {err}");
        }
    }

    /// Found by `props::config_mutated_shipped_file_reports_dotted_keys`: an empty template
    /// name was also reported as a missing SMS text under the key `sms.msg91.texts.`.
    #[test]
    fn an_empty_booking_template_is_one_problem_at_its_own_key() {
        let text = include_str!("../../reminders.toml")
            .replace("template = \"booked\"", "template = \"\"");
        let Err(ConfigError::Invalid { problems, .. }) =
            Config::from_toml(&text, Path::new("r.toml"))
        else {
            panic!("an empty template name is refused");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["booking_confirmation.template"], "{problems:?}");
    }

    /// Found by `props::config_mutated_shipped_file_reports_dotted_keys`: a clinic date
    /// pattern chrono cannot render panicked in the SMS length check (which renders every
    /// day of a year with it) instead of being one problem at its key.
    #[test]
    fn an_unrenderable_date_pattern_is_one_problem_at_its_key_not_a_panic() {
        for bad in ["%A %-d %B %Q", "%A %-d %B %", "%Ez %B"] {
            let text = include_str!("../../reminders.toml").replace(
                "date_format = \"%A %-d %B\"",
                &format!("date_format = {bad:?}"),
            );
            let Err(ConfigError::Invalid { problems, .. }) =
                Config::from_toml(&text, Path::new("r.toml"))
            else {
                panic!("{bad:?} is refused");
            };
            let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
            assert_eq!(
                keys,
                ["clinics.mumbai.date_format"],
                "{bad:?}: {problems:?}"
            );
        }
    }

    /// Found by `props::config_mutated_shipped_file_reports_dotted_keys`: a format table
    /// named "." was reported at `import.formats..`, a key that reads as another path.
    #[test]
    fn a_table_name_that_is_no_bare_key_is_quoted_in_the_problems_key() {
        assert_eq!(seg("mumbai"), "mumbai");
        assert_eq!(seg("day-before_2"), "day-before_2");
        assert_eq!(seg("."), "\".\"");
        assert_eq!(seg(""), "\"\"");
        assert_eq!(seg("a\"b"), "'a\"b'");
        let text = include_str!("../../reminders.toml").replacen(
            "[import.formats.",
            "[import.formats.\".\"]\n[import.formats.",
            1,
        );
        let problems = match Config::from_toml(&text, Path::new("r.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("a format named \".\" is refused: {other:?}"),
        };
        assert!(
            problems
                .iter()
                .any(|p| p.key.starts_with("import.formats.\".\"")),
            "{problems:?}"
        );
        assert!(
            problems.iter().all(|p| !p.key.contains("..")),
            "{problems:?}"
        );
    }
}
