//! The WhatsApp Cloud API simulator: a real HTTP server on 127.0.0.1 that tests, benchmarks and
//! the demo talk to instead of Meta.
//!
//! It accepts sends on `POST /{version}/{phone_number_id}/messages` and validates them the way
//! the Cloud API does (same error codes, HTTP statuses and error envelope), serves the template
//! catalogue on `GET /{version}/{waba_id}/message_templates`, enforces the throughput and pair
//! rate limits, injects queued faults (Graph errors, bare proxy statuses, slow and lost
//! responses), and calls the daemon's webhook back with signed `sent` → `delivered` → `read`
//! (or `failed`) statuses and scripted patient replies.
//!
//! With [`SimConfig::chaos`] set it also injects faults at random, from a seed ([`Chaos`]):
//! 5xx answers, accepted sends whose response is held past the client's timeout, bursts of
//! 130429, slow answers, and duplicated or reordered status webhooks. Every send request is
//! logged with what it was answered ([`Sim::attempts`], [`Sim::stats`]), so a soak test can
//! compare the sender's end state with what the simulator really did.
//!
//! Besides the Rust handle ([`Sim`]) it can be driven over HTTP when run as its own process
//! (`reminderd simulate`): `GET|DELETE /_sim/messages`, `GET /_sim/attempts`, `GET /_sim/stats`,
//! `POST /_sim/faults`, `POST /_sim/reply`, `POST /_sim/fail_later`,
//! `POST /_sim/template_status`, and `POST /_sim/media` and `DELETE /_sim/media/{id}` for the
//! files patients send (see `media`).
//!
//! It speaks Twilio Programmable Messaging on the same server (see `twilio`):
//! `POST /2010-04-01/Accounts/{sid}/Messages.json` with signed status callbacks,
//! `GET|DELETE /_sim/sms`, `POST /_sim/sms/reply` (a signed inbound text),
//! `POST /_sim/sms/fail` and `POST /_sim/sms/faults`.
//!
//! And a FHIR R4 server under `/fhir` (see `fhir`): Appointments, Patients and Locations to
//! search, page and include, versioned PUTs under `If-Match`, AppointmentResponses, a
//! CapabilityStatement, and OperationOutcome errors.

mod api;
mod conn;
mod events;
mod fhir;
mod media;
mod msg91;
mod twilio;
mod webhook;

pub use fhir::{
    SIM_FHIR_CLIENT_ID, SIM_FHIR_CLIENT_SECRET, SIM_FHIR_TOKEN, SimFhirFault, SimFhirWrite,
};
pub use media::{SimMedia, SimUpload};
pub use msg91::{SimDlt, SimDltTemplate, SimMsg91, dlt_templates_from_config};
pub use twilio::SimSms;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use webhook::signature;

/// How long `shutdown` waits for the server and webhook tasks before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What the simulator accepts and how it behaves.
#[derive(Clone)]
pub struct SimConfig {
    /// The business phone number id in the send path.
    pub phone_number_id: String,
    /// The WhatsApp Business Account id in the catalogue path and in webhook `entry[].id`.
    pub waba_id: String,
    /// The business number as webhooks show it (`metadata.display_phone_number`, `context.from`).
    pub display_phone_number: String,
    /// The only Bearer token accepted.
    pub access_token: String,
    /// The template catalogue sends are checked against.
    pub templates: Vec<SimTemplate>,
    /// Where signed webhooks (statuses, replies) are POSTed; `None`: no webhooks.
    pub webhook_url: Option<String>,
    /// HMAC key for `X-Hub-Signature-256`; `None`: webhooks are not signed.
    pub app_secret: Option<String>,
    /// Added to every send response.
    pub latency: Duration,
    /// A second accepted send to the same recipient within this gets 131056.
    pub pair_limit: Option<Duration>,
    /// Accepted sends allowed in any sliding one-second window; beyond it 130429.
    pub max_per_sec: Option<u32>,
    /// Delay between acceptance and `sent`, and between each later status webhook.
    pub status_delay: Duration,
    /// Emit `read` after `delivered`.
    pub auto_read: bool,
    /// Random faults from a seed (soak tests); `None`: only the queued faults.
    pub chaos: Option<Chaos>,

    // Twilio (see `twilio`).
    /// The Twilio account SID accepted in paths and Basic auth.
    pub twilio_account_sid: String,
    /// The Twilio auth token: Basic auth password and the key of `X-Twilio-Signature`.
    pub twilio_auth_token: String,
    /// Where signed inbound texts are POSTed; `None`: no scripted inbound texts.
    pub twilio_inbound_url: Option<String>,
    // ---- MSG91 (see `msg91`) ----
    /// The simulated MSG91 account: its auth key and DLT templates.
    pub msg91: SimMsg91,
    /// Where MSG91 delivery reports are POSTed (form-encoded, v2); `None`: no reports.
    pub msg91_report_url: Option<String>,
    /// Further business numbers served beside the one above, each with its own throughput
    /// window and pair limit, as Meta keeps them per number.
    pub numbers: Vec<SimNumber>,
    /// The main number's `quality_rating` (`GREEN`, `YELLOW`, `RED`), read on
    /// `GET /{version}/{phone_number_id}`.
    pub quality_rating: String,
    /// The main number's business portfolio messaging limit (`TIER_2K`, ...).
    pub messaging_limit: String,
}

/// A further business number the simulator serves.
#[derive(Clone, PartialEq, Eq)]
pub struct SimNumber {
    /// Its id in the send path.
    pub phone_number_id: String,
    /// Its WhatsApp Business Account (catalogue path, webhooks' `entry[].id`).
    pub waba_id: String,
    /// The number as webhooks show it.
    pub display_phone_number: String,
    /// The Bearer token it accepts.
    pub access_token: String,
    /// Accepted sends allowed in any sliding second on this number; beyond it 130429.
    pub max_per_sec: Option<u32>,
    /// Its `quality_rating`.
    pub quality_rating: String,
    /// Its business portfolio's messaging limit.
    pub messaging_limit: String,
}

impl SimNumber {
    /// A number with this id and token, in its own business account, rated GREEN.
    pub fn new(phone_number_id: &str, access_token: &str) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            waba_id: format!("9{}", phone_number_id.get(1..).unwrap_or_default()),
            display_phone_number: format!(
                "1555{}",
                &phone_number_id[phone_number_id.len().saturating_sub(7)..]
            ),
            access_token: access_token.into(),
            max_per_sec: None,
            quality_rating: "GREEN".into(),
            messaging_limit: "TIER_2K".into(),
        }
    }
}

impl fmt::Debug for SimNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNumber")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("display_phone_number", &self.display_phone_number)
            .field("access_token", &"<redacted>")
            .field("max_per_sec", &self.max_per_sec)
            .field("quality_rating", &self.quality_rating)
            .field("messaging_limit", &self.messaging_limit)
            .finish()
    }
}

/// One number as a request or a webhook sees it: the main one or one of [`SimConfig::numbers`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) phone_number_id: &'a str,
    pub(crate) waba_id: &'a str,
    pub(crate) display_phone_number: &'a str,
    pub(crate) access_token: &'a str,
    pub(crate) max_per_sec: Option<u32>,
    pub(crate) quality_rating: &'a str,
    pub(crate) messaging_limit: &'a str,
}

impl SimConfig {
    /// The main number.
    pub(crate) fn main_line(&self) -> Line<'_> {
        Line {
            phone_number_id: &self.phone_number_id,
            waba_id: &self.waba_id,
            display_phone_number: &self.display_phone_number,
            access_token: &self.access_token,
            max_per_sec: self.max_per_sec,
            quality_rating: &self.quality_rating,
            messaging_limit: &self.messaging_limit,
        }
    }

    /// The number whose id is `phone_number_id`, if served.
    pub(crate) fn line(&self, phone_number_id: &str) -> Option<Line<'_>> {
        self.lines().find(|l| l.phone_number_id == phone_number_id)
    }

    /// Every number served: the main one first.
    pub(crate) fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        std::iter::once(self.main_line()).chain(self.numbers.iter().map(|n| Line {
            phone_number_id: &n.phone_number_id,
            waba_id: &n.waba_id,
            display_phone_number: &n.display_phone_number,
            access_token: &n.access_token,
            max_per_sec: n.max_per_sec,
            quality_rating: &n.quality_rating,
            messaging_limit: &n.messaging_limit,
        }))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            phone_number_id: "100000000000001".into(),
            waba_id: "200000000000002".into(),
            display_phone_number: "15550000000".into(),
            access_token: "sim-token".into(),
            templates: SimTemplate::defaults(),
            webhook_url: None,
            app_secret: None,
            latency: Duration::ZERO,
            pair_limit: Some(Duration::from_secs(6)),
            max_per_sec: None,
            status_delay: Duration::from_millis(20),
            auto_read: true,
            chaos: None,
            twilio_account_sid: "ACs1m00000000000000000000000000000".into(),
            twilio_auth_token: "sim-twilio-token".into(),
            twilio_inbound_url: None,
            msg91: SimMsg91::default(),
            msg91_report_url: None,
            numbers: Vec::new(),
            quality_rating: "GREEN".into(),
            messaging_limit: "TIER_2K".into(),
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("SimConfig")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("display_phone_number", &self.display_phone_number)
            .field("access_token", &"<redacted>")
            .field("templates", &self.templates)
            .field("webhook_url", &self.webhook_url)
            .field("app_secret", &redact(&self.app_secret))
            .field("latency", &self.latency)
            .field("pair_limit", &self.pair_limit)
            .field("max_per_sec", &self.max_per_sec)
            .field("status_delay", &self.status_delay)
            .field("auto_read", &self.auto_read)
            .field("chaos", &self.chaos)
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &"<redacted>")
            .field("twilio_inbound_url", &self.twilio_inbound_url)
            .field("msg91", &self.msg91)
            .field("msg91_report_url", &self.msg91_report_url)
            .field("numbers", &self.numbers)
            .field("quality_rating", &self.quality_rating)
            .field("messaging_limit", &self.messaging_limit)
            .finish()
    }
}

/// One template in one language, as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTemplate {
    /// Template name, e.g. `appointment_reminder`.
    pub name: String,
    /// Language code, e.g. `en` or `en_US`.
    pub language: String,
    /// `APPROVED`, `PAUSED`, `PENDING`, `REJECTED`, `DISABLED`, ...
    pub status: String,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`.
    pub category: String,
    /// The body with positional `{{1}}`.. placeholders.
    pub body_text: String,
    /// Number of text parameters in the header (0: no header).
    pub header_params: usize,
    /// Quick-reply button labels, in template order.
    pub quick_replies: Vec<String>,
    /// `message_send_ttl_seconds`, listed in the catalogue when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl SimTemplate {
    /// An APPROVED UTILITY template without a header.
    pub fn approved(name: &str, language: &str, body_text: &str, quick_replies: &[&str]) -> Self {
        Self {
            name: name.into(),
            language: language.into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            body_text: body_text.into(),
            header_params: 0,
            quick_replies: quick_replies.iter().map(|s| (*s).to_string()).collect(),
            ttl_seconds: None,
        }
    }

    /// How many body parameters a send must carry: the highest `{{n}}` in the body.
    pub fn body_params(&self) -> usize {
        placeholders(&self.body_text)
    }

    /// The templates of the shipped `reminders.toml`: `appointment_reminder` (three quick
    /// replies) and `appointment_booked`, each in en, hi, mr and es.
    pub fn defaults() -> Vec<Self> {
        // The shipped example config is the one source of the templates' text; a test checks
        // it parses, so this is never empty in practice.
        crate::config::Config::example()
            .map(|c| templates_from_config(&c))
            .unwrap_or_default()
    }
}

/// Every template and language of a configuration, APPROVED and UTILITY, with the configured
/// body and button labels: the catalogue a simulator needs to accept what that config sends.
pub fn templates_from_config(config: &crate::config::Config) -> Vec<SimTemplate> {
    config
        .templates
        .values()
        .flat_map(|t| {
            t.languages.iter().map(|(language, text)| SimTemplate {
                name: t.name.clone(),
                language: language.clone(),
                status: "APPROVED".into(),
                category: "UTILITY".into(),
                body_text: text.body.clone(),
                header_params: 0,
                quick_replies: text.buttons.clone(),
                ttl_seconds: t.ttl.and_then(|d| u64::try_from(d.num_seconds()).ok()),
            })
        })
        .collect()
}

/// The highest positional placeholder `{{n}}` in `text` (0 when there is none).
pub(crate) fn placeholders(text: &str) -> usize {
    let mut max = 0;
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find("}}")
            && let Ok(n) = rest[..end].trim().parse::<usize>()
        {
            max = max.max(n);
        }
    }
    max
}

/// A send the simulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptedMessage {
    /// The wamid returned to the sender.
    pub wamid: String,
    /// The request body exactly as parsed.
    pub body: serde_json::Value,
    /// When it was accepted.
    pub received_at: DateTime<Utc>,
    /// The business number it was sent from (its id in the send path).
    #[serde(default)]
    pub phone_number_id: String,
}

/// A fault applied to the next send request (one fault per request, first in first out).
///
/// Over HTTP (`POST /_sim/faults`) a fault is written `{"kind":"error","code":131000,
/// "http_status":500}`, `{"kind":"bare_status","status":502}`, `{"kind":"slow","ms":300}`,
/// `{"kind":"accept_then_hang","ms":5000}` or `{"kind":"accept_then_drop"}`; an array queues
/// several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FaultWire", into = "FaultWire")]
pub enum Fault {
    /// A Graph error envelope with this code and HTTP status; nothing is accepted.
    Error {
        /// Graph error code, e.g. 131000.
        code: i64,
        /// HTTP status, e.g. 500.
        http_status: u16,
    },
    /// This HTTP status with an HTML body and no JSON, as an edge proxy sends.
    BareStatus(u16),
    /// Wait this long, then process the request normally.
    Slow(Duration),
    /// Accept the message (record it, emit webhooks) but hold the response this long.
    AcceptThenHang(Duration),
    /// Accept the message, then close the connection without a response.
    AcceptThenDrop,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultWire {
    Error { code: i64, http_status: u16 },
    BareStatus { status: u16 },
    Slow { ms: u64 },
    AcceptThenHang { ms: u64 },
    AcceptThenDrop,
}

impl From<FaultWire> for Fault {
    fn from(w: FaultWire) -> Self {
        match w {
            FaultWire::Error { code, http_status } => Self::Error { code, http_status },
            FaultWire::BareStatus { status } => Self::BareStatus(status),
            FaultWire::Slow { ms } => Self::Slow(Duration::from_millis(ms)),
            FaultWire::AcceptThenHang { ms } => Self::AcceptThenHang(Duration::from_millis(ms)),
            FaultWire::AcceptThenDrop => Self::AcceptThenDrop,
        }
    }
}

impl From<Fault> for FaultWire {
    fn from(f: Fault) -> Self {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        match f {
            Fault::Error { code, http_status } => Self::Error { code, http_status },
            Fault::BareStatus(status) => Self::BareStatus { status },
            Fault::Slow(d) => Self::Slow { ms: ms(d) },
            Fault::AcceptThenHang(d) => Self::AcceptThenHang { ms: ms(d) },
            Fault::AcceptThenDrop => Self::AcceptThenDrop,
        }
    }
}

/// Seeded random faults, drawn per send request in arrival order (a queued [`Fault`] takes
/// precedence). The same seed gives the same sequence of decisions; with concurrent senders
/// the requests may arrive in another order, so a replay is close but not always identical.
///
/// Each request draws once: with `p_5xx` it gets a 500/503 Graph error with a retryable code
/// (131000, 2, 131016) or a bare 502, and nothing is accepted; with `p_timeout` it is accepted
/// (recorded, status webhooks emitted) but its response is held for `timeout_hold`, past the
/// client's timeout; with `p_429_burst` a burst starts: this request and the next
/// `burst_len - 1` get 130429; with `p_slow` it waits `slow`, then is processed normally.
/// Each status webhook of an accepted message is posted a second time, later in the
/// sequence, with `p_dup_webhook`; a message's statuses are shuffled with `p_reorder_webhooks`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Seed of the random decisions (logged when the simulator starts).
    pub seed: u64,
    /// Chance that a request gets a 5xx and is not accepted.
    pub p_5xx: f64,
    /// Chance that a request is accepted but its response is held for `timeout_hold`.
    pub p_timeout: f64,
    /// How long a "timed out" response is held; make it longer than the client's timeout.
    pub timeout_hold: Duration,
    /// Chance that a request starts a burst of 130429 answers.
    pub p_429_burst: f64,
    /// Requests refused with 130429 in one burst (the first included).
    pub burst_len: u32,
    /// If no burst has started by this request (counting from 1), it starts one: at 0.5% a
    /// run of a few hundred requests would otherwise see no 429 at all in about 1 seed in 25.
    pub first_burst_by: Option<u32>,
    /// Chance that a request waits `slow` before it is processed.
    pub p_slow: f64,
    /// The extra delay of a slow request; keep it below the client's timeout.
    pub slow: Duration,
    /// Chance that a status webhook is posted twice.
    pub p_dup_webhook: f64,
    /// Chance that a message's status webhooks are posted in a shuffled order.
    pub p_reorder_webhooks: f64,
}

impl Default for Chaos {
    /// The fault soak's mix: 5% 5xx, 2% timeouts, 429 bursts, 5% slow, 5% duplicated and 30%
    /// reordered webhooks.
    fn default() -> Self {
        Self {
            seed: 0,
            p_5xx: 0.05,
            p_timeout: 0.02,
            timeout_hold: Duration::from_secs(30),
            p_429_burst: 0.005,
            burst_len: 10,
            first_burst_by: Some(200),
            p_slow: 0.05,
            slow: Duration::from_millis(300),
            p_dup_webhook: 0.05,
            p_reorder_webhooks: 0.3,
        }
    }
}

/// The random state of [`Chaos`].
struct ChaosState {
    chaos: Chaos,
    rng: StdRng,
    /// Requests still to refuse in the current 130429 burst.
    burst_left: u32,
    /// Requests seen.
    requests: u32,
    /// Whether a burst has started.
    burst_seen: bool,
}

impl ChaosState {
    fn new(chaos: Chaos) -> Self {
        Self {
            rng: StdRng::seed_from_u64(chaos.seed),
            chaos,
            burst_left: 0,
            requests: 0,
            burst_seen: false,
        }
    }

    /// The fault for the next request, if any, and whether it started a burst.
    fn fault(&mut self) -> (Option<Fault>, bool) {
        let throttled = Fault::Error {
            code: 130_429,
            http_status: 400,
        };
        self.requests = self.requests.saturating_add(1);
        if self.burst_left > 0 {
            self.burst_left -= 1;
            return (Some(throttled), false);
        }
        let c = &self.chaos;
        // Drawn even when the burst is forced, so the rest of the run's sequence is unchanged.
        let r: f64 = self.rng.random();
        if !self.burst_seen && c.first_burst_by.is_some_and(|k| self.requests >= k) {
            self.burst_seen = true;
            self.burst_left = c.burst_len.saturating_sub(1);
            return (Some(throttled), true);
        }
        let mut edge = c.p_5xx;
        if r < edge {
            let fault = match self.rng.random_range(0..4) {
                0 => Fault::Error {
                    code: 131_000,
                    http_status: 500,
                },
                1 => Fault::Error {
                    code: 2,
                    http_status: 503,
                },
                2 => Fault::Error {
                    code: 131_016,
                    http_status: 500,
                },
                _ => Fault::BareStatus(502),
            };
            return (Some(fault), false);
        }
        edge += c.p_timeout;
        if r < edge {
            return (Some(Fault::AcceptThenHang(c.timeout_hold)), false);
        }
        edge += c.p_429_burst;
        if r < edge {
            self.burst_seen = true;
            self.burst_left = c.burst_len.saturating_sub(1);
            return (Some(throttled), true);
        }
        edge += c.p_slow;
        if r < edge {
            return (Some(Fault::Slow(c.slow)), false);
        }
        (None, false)
    }

    /// Shuffles and duplicates a message's status webhooks; says whether the order changed.
    fn webhooks(&mut self, statuses: &mut Vec<&'static str>) -> (bool, usize) {
        let mut reordered = false;
        if self
            .rng
            .random_bool(self.chaos.p_reorder_webhooks.clamp(0.0, 1.0))
        {
            let natural = statuses.clone();
            statuses.shuffle(&mut self.rng);
            reordered = *statuses != natural;
        }
        let mut dups = 0;
        let mut i = 0;
        while i < statuses.len() {
            if self
                .rng
                .random_bool(self.chaos.p_dup_webhook.clamp(0.0, 1.0))
            {
                // The copy goes anywhere after the original, at the latest last.
                let at = self.rng.random_range(i + 1..=statuses.len());
                statuses.insert(at, statuses[i]);
                dups += 1;
                i += 1;
            }
            i += 1;
        }
        (reordered, dups)
    }
}

/// One send request, as the simulator saw and answered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendAttempt {
    /// Arrival order, from 1.
    pub seq: u64,
    /// When the request arrived, before any simulated latency or slow fault.
    pub arrived_at: DateTime<Utc>,
    /// The request's `to`, if it had one.
    pub to: Option<String>,
    /// The request's `biz_opaque_callback_data`, if it had one.
    pub callback: Option<String>,
    /// What it was answered.
    pub answer: Answer,
    /// The status webhooks planned for an accepted message, in posting order (duplicates
    /// included); empty when nothing was accepted or no webhook URL is set.
    pub webhooks: Vec<String>,
}

/// How a send request was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// Accepted, and answered with this wamid.
    Accepted {
        /// The message id.
        wamid: String,
    },
    /// Accepted, but the response was held (`AcceptThenHang`, a chaos timeout) or never
    /// written (`AcceptThenDrop`): the client most likely never learnt the wamid.
    Late {
        /// The message id.
        wamid: String,
    },
    /// Refused: a Graph error envelope with this code, or a bare status when `code` is `None`.
    Error {
        /// HTTP status.
        http_status: u16,
        /// Graph error code.
        code: Option<i64>,
    },
    /// `{"success": true}` without a message (a mark-as-read call).
    Success,
    /// No answer: the client went away or the simulator stopped before anything was decided;
    /// nothing was accepted.
    NoAnswer,
}

impl Answer {
    /// The wamid of an accepted message (answered in time or not).
    pub fn wamid(&self) -> Option<&str> {
        match self {
            Self::Accepted { wamid } | Self::Late { wamid } => Some(wamid),
            _ => None,
        }
    }
}

/// Counts of what the simulator did, for soak tests and `GET /_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Send requests received (mark-as-read calls included).
    pub requests: usize,
    /// Messages accepted, whether or not the response reached the client.
    pub accepted: usize,
    /// Of those, accepted with the response held or dropped (the lost-response case).
    pub late: usize,
    /// Refused with a 5xx (Graph envelope or bare).
    pub server_errors: usize,
    /// Refused with 130429 (bursts and `max_per_sec`).
    pub throttled: usize,
    /// Refused with 131056 (pair rate limit).
    pub pair_limited: usize,
    /// Refused with another error (validation, token, template state).
    pub other_errors: usize,
    /// Answered `{"success": true}` (mark-as-read calls).
    pub succeeded: usize,
    /// Not answered: the client gave up first.
    pub unanswered: usize,
    /// Requests delayed by a slow fault.
    pub slowed: usize,
    /// 130429 bursts started by chaos.
    pub bursts: usize,
    /// Status webhooks delivered (each duplicate counted).
    pub webhooks_posted: usize,
    /// Extra copies of status webhooks planned.
    pub webhooks_duplicated: usize,
    /// Messages whose statuses were planned out of order.
    pub webhooks_reordered: usize,
    /// Status webhooks given up on after every retry.
    pub webhooks_failed: usize,
    /// Messages whose status webhooks are still being posted.
    pub status_jobs_running: usize,
}

/// Counters kept beside the attempt log.
#[derive(Default)]
struct Counters {
    slowed: usize,
    bursts: usize,
    webhooks_posted: usize,
    webhooks_duplicated: usize,
    webhooks_reordered: usize,
    webhooks_failed: usize,
}

/// A patient's inbound message, posted as a `messages` webhook.
///
/// Over HTTP (`POST /_sim/reply`) it is written with a `type` tag, e.g.
/// `{"type":"button","from":"919820012345","payload":"confirm:7","text":"Confirm",
/// "context_id":"wamid.…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A tap on a template quick-reply button (`type: "button"`).
    Button {
        /// The patient's number (a `+` and spaces are dropped).
        from: String,
        /// The payload set at send time.
        payload: String,
        /// The button label the patient saw.
        text: String,
        /// The wamid of the template message holding the button.
        context_id: Option<String>,
    },
    /// A tap on an interactive reply button (`interactive.button_reply`).
    Interactive {
        /// The patient's number.
        from: String,
        /// The button id set at send time.
        id: String,
        /// The button title.
        title: String,
        /// The wamid of the interactive message.
        context_id: Option<String>,
    },
    /// A pick from an interactive list (`interactive.list_reply`).
    ListReply {
        /// The patient's number.
        from: String,
        /// The row id set at send time.
        id: String,
        /// The row title.
        title: String,
        /// The wamid of the list message.
        context_id: Option<String>,
    },
    /// A free-text message.
    Text {
        /// The patient's number.
        from: String,
        /// What they wrote.
        body: String,
        /// The wamid they replied to, if they used "reply".
        context_id: Option<String>,
    },
    /// A file registered with [`Sim::add_media`]: a photo, voice note, video, document or
    /// sticker, with its type and checksum as registered.
    Media {
        /// The patient's number.
        from: String,
        /// `image`, `audio`, `video`, `document` or `sticker`.
        kind: String,
        /// The id [`Sim::add_media`] gave.
        media_id: String,
        /// What the patient wrote with it (photos, videos and documents).
        caption: Option<String>,
        /// A document's file name.
        filename: Option<String>,
        /// A voice note recorded in WhatsApp (`audio` only).
        #[serde(default)]
        voice: bool,
    },
    /// Another well-formed but non-actionable type: `image`, `reaction`, `unsupported`, ...
    Other {
        /// The patient's number.
        from: String,
        /// The WhatsApp message type.
        kind: String,
    },
}

impl Reply {
    fn from(&self) -> &str {
        match self {
            Self::Button { from, .. }
            | Self::Interactive { from, .. }
            | Self::ListReply { from, .. }
            | Self::Text { from, .. }
            | Self::Media { from, .. }
            | Self::Other { from, .. } => from,
        }
    }
}

/// What can go wrong when the simulator is asked to post a webhook.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The simulator was started without a `webhook_url`.
    #[error("no webhook_url is configured")]
    NoWebhookUrl,
    /// A phone number has no digits.
    #[error("{0:?} is not a phone number")]
    BadNumber(String),
    /// No business number with this id is served.
    #[error("no business number with id {0:?} is served")]
    UnknownNumber(String),
    /// No template with this name and language.
    #[error("no template {name:?} in language {language:?}")]
    UnknownTemplate {
        /// The template name.
        name: String,
        /// The language code.
        language: String,
    },
    /// Every delivery attempt failed.
    #[error("webhook delivery to {url} failed after {attempts} attempts: {last}")]
    Delivery {
        /// The webhook URL.
        url: String,
        /// How many POSTs were made.
        attempts: u32,
        /// The last failure (status or transport error).
        last: String,
    },
    /// The simulator is shutting down.
    #[error("the simulator is shutting down")]
    ShuttingDown,
    /// The simulator was started without a `twilio_inbound_url`.
    #[error("no twilio_inbound_url is configured")]
    NoTwilioInboundUrl,
}

/// Digits only: `+91 98200-12345` → `919820012345`.
pub(crate) fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// Mutable simulator state; the lock is held briefly and never across an `.await`.
struct State {
    templates: Vec<SimTemplate>,
    messages: Vec<AcceptedMessage>,
    faults: VecDeque<Fault>,
    fail_later: HashMap<String, i64>,
    /// Per (number id, recipient digits): the last accepted send (the pair limit).
    last_to: HashMap<(String, String), Instant>,
    /// Per number id: accepted sends in the last second (the throughput window).
    recent: HashMap<String, VecDeque<Instant>>,
    attempts: Vec<SendAttempt>,
    counters: Counters,
    media: HashMap<String, media::Stored>,
    media_downloads: usize,
    twilio: twilio::TwilioState,
    msg91: msg91::Msg91State,
    fhir: fhir::FhirState,
}

/// Everything the handlers and tasks share.
pub(crate) struct Shared {
    config: SimConfig,
    addr: SocketAddr,
    http: reqwest::Client,
    state: Mutex<State>,
    tasks: Mutex<JoinSet<()>>,
    shutdown: watch::Receiver<bool>,
    seq: AtomicU64,
    attempt_seq: AtomicU64,
    chaos: Mutex<Option<ChaosState>>,
    status_jobs: AtomicUsize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh wamid, unique within this process and unlikely to repeat across runs.
    fn wamid(&self, digits: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let salt: u32 = rand::random();
        format!("wamid.HBgM{digits}FQIAERgS{n:010X}{salt:08X}AA==")
    }

    /// Sleeps for `d`; false when shutdown came first.
    async fn sleep(&self, d: Duration) -> bool {
        let mut rx = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            _ = rx.wait_for(|stop| *stop) => false,
        }
    }

    fn chaos(&self) -> MutexGuard<'_, Option<ChaosState>> {
        self.chaos.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The chaos fault for the next request, if chaos is on and draws one.
    fn chaos_fault(&self) -> Option<Fault> {
        let (fault, burst) = self.chaos().as_mut().map(ChaosState::fault)?;
        let mut st = self.state();
        if burst {
            st.counters.bursts += 1;
        }
        if matches!(fault, Some(Fault::Slow(_))) {
            st.counters.slowed += 1;
        }
        fault
    }

    /// The status webhooks of an accepted message, shuffled and duplicated by chaos.
    fn plan_statuses(&self, fail: bool) -> Vec<&'static str> {
        let mut statuses = vec!["sent"];
        if fail {
            statuses.push("failed");
        } else {
            statuses.push("delivered");
            if self.config.auto_read {
                statuses.push("read");
            }
        }
        let changed = self.chaos().as_mut().map(|c| c.webhooks(&mut statuses));
        if let Some((reordered, dups)) = changed {
            let mut st = self.state();
            st.counters.webhooks_reordered += usize::from(reordered);
            st.counters.webhooks_duplicated += dups;
        }
        statuses
    }

    /// Logs a send request on arrival, unanswered for now; returns its number.
    fn begin_attempt(&self, body: &[u8]) -> u64 {
        #[derive(Deserialize)]
        struct Peek {
            to: Option<serde_json::Value>,
            biz_opaque_callback_data: Option<serde_json::Value>,
        }
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let (to, callback) = serde_json::from_slice::<Peek>(body)
            .map(|p| (text(p.to), text(p.biz_opaque_callback_data)))
            .unwrap_or_default();
        let seq = self.attempt_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.state().attempts.push(SendAttempt {
            seq,
            arrived_at: crate::time::Clock::System.now(),
            to,
            callback,
            answer: Answer::NoAnswer,
            webhooks: Vec::new(),
        });
        seq
    }

    /// Records how request `seq` was answered.
    fn finish_attempt(&self, seq: u64, answer: Answer, webhooks: &[&str]) {
        let mut st = self.state();
        if let Some(a) = st.attempts.iter_mut().rev().find(|a| a.seq == seq) {
            a.answer = answer;
            a.webhooks = webhooks.iter().map(|s| (*s).to_string()).collect();
        }
    }

    fn stats(&self) -> SimStats {
        let st = self.state();
        let mut s = SimStats {
            requests: st.attempts.len(),
            slowed: st.counters.slowed,
            bursts: st.counters.bursts,
            webhooks_posted: st.counters.webhooks_posted,
            webhooks_duplicated: st.counters.webhooks_duplicated,
            webhooks_reordered: st.counters.webhooks_reordered,
            webhooks_failed: st.counters.webhooks_failed,
            status_jobs_running: self.status_jobs.load(Ordering::Acquire),
            ..SimStats::default()
        };
        for a in &st.attempts {
            match &a.answer {
                Answer::Accepted { .. } => s.accepted += 1,
                Answer::Late { .. } => {
                    s.accepted += 1;
                    s.late += 1;
                }
                Answer::Error { http_status, code } => match (http_status, code) {
                    (_, Some(130_429)) | (429, None) => s.throttled += 1,
                    (_, Some(131_056)) => s.pair_limited += 1,
                    (500..=599, _) => s.server_errors += 1,
                    _ => s.other_errors += 1,
                },
                Answer::Success => s.succeeded += 1,
                Answer::NoAnswer => s.unanswered += 1,
            }
        }
        s
    }

    /// Posts a message's status webhooks in the background, counted in
    /// [`SimStats::status_jobs_running`] until they are all posted (or the simulator stops).
    fn spawn_statuses(self: &Arc<Self>, job: webhook::StatusJob) {
        /// Decrements the count however the task ends (finished, or dropped on shutdown).
        struct Running(Arc<Shared>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.status_jobs.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.status_jobs.fetch_add(1, Ordering::AcqRel);
        let running = Running(Arc::clone(self));
        let shared = Arc::clone(self);
        self.spawn(async move {
            let _running = running;
            webhook::run_statuses(shared, job).await;
        });
    }

    /// Runs `fut` in the background until it ends or the simulator shuts down.
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut rx = self.shutdown.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            tokio::select! {
                () = fut => {}
                _ = rx.wait_for(|stop| *stop) => {}
            }
        });
    }

    fn set_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
    ) -> Result<usize, SimError> {
        let mut st = self.state();
        let (index, t) = st
            .templates
            .iter_mut()
            .enumerate()
            .find(|(_, t)| t.name == name && t.language == language)
            .ok_or_else(|| SimError::UnknownTemplate {
                name: name.into(),
                language: language.into(),
            })?;
        t.status = status.to_string();
        Ok(index)
    }

    async fn reply(&self, reply: &Reply) -> Result<String, SimError> {
        self.reply_on(reply, None).await
    }

    /// A patient's message to the number `to` (`None`: the main one).
    async fn reply_on(&self, reply: &Reply, to: Option<&str>) -> Result<String, SimError> {
        if self.config.webhook_url.is_none() {
            return Err(SimError::NoWebhookUrl);
        }
        let line = match to {
            None => self.config.main_line(),
            Some(id) => self
                .config
                .line(id)
                .ok_or_else(|| SimError::UnknownNumber(id.to_string()))?,
        };
        let from = digits(reply.from());
        if from.is_empty() {
            return Err(SimError::BadNumber(reply.from().to_string()));
        }
        let wamid = self.wamid(&from);
        let last_to_patient = {
            let st = self.state();
            st.messages
                .iter()
                .rev()
                .find(|m| {
                    m.body.get("to").and_then(|v| v.as_str()).map(digits) == Some(from.clone())
                })
                .map(|m| m.wamid.clone())
        };
        let media = match reply {
            Reply::Media { media_id, .. } => self.media_meta(media_id),
            _ => None,
        };
        let payload = webhook::inbound_payload(
            line,
            reply,
            &from,
            &wamid,
            last_to_patient.as_deref(),
            media,
        );
        webhook::deliver(self, &payload).await?;
        Ok(wamid)
    }

    async fn announce_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
    ) -> Result<(), SimError> {
        // A reinstated template is approved again: REINSTATED is the event, not a status.
        let stored = if status == "REINSTATED" {
            "APPROVED"
        } else {
            status
        };
        let index = self.set_template_status(name, language, stored)?;
        if self.config.webhook_url.is_some() {
            let payload =
                webhook::template_status_payload(&self.config, index, name, language, status);
            webhook::deliver(self, &payload).await?;
        }
        Ok(())
    }
}

/// A running simulator. Dropping it, or calling [`Sim::shutdown`], stops the server and its
/// webhook tasks.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<io::Result<()>>>,
}

impl Sim {
    /// Starts a simulator on `127.0.0.1` with a port chosen by the system.
    pub async fn start(config: SimConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::start_on(listener, config).await
    }

    /// Starts a simulator serving on `listener`.
    #[expect(
        clippy::unused_async,
        reason = "async like `start`, so callers need not care how the server is spawned"
    )]
    pub async fn start_on(listener: TcpListener, config: SimConfig) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(io::Error::other)?;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                templates: config.templates.clone(),
                messages: Vec::new(),
                faults: VecDeque::new(),
                fail_later: HashMap::new(),
                last_to: HashMap::new(),
                recent: HashMap::new(),
                attempts: Vec::new(),
                counters: Counters::default(),
                media: HashMap::new(),
                media_downloads: 0,
                twilio: twilio::TwilioState::default(),
                msg91: msg91::Msg91State::default(),
                fhir: fhir::FhirState::default(),
            }),
            chaos: Mutex::new(config.chaos.clone().map(ChaosState::new)),
            config,
            addr,
            http,
            tasks: Mutex::new(JoinSet::new()),
            shutdown: shutdown.clone(),
            seq: AtomicU64::new(1),
            attempt_seq: AtomicU64::new(0),
            status_jobs: AtomicUsize::new(0),
        });
        let app = api::router(Arc::clone(&shared))
            .merge(twilio::router(Arc::clone(&shared)))
            .merge(fhir::router(Arc::clone(&shared)))
            .into_make_service_with_connect_info::<conn::ConnInfo>();
        let mut until = shutdown;
        let server = tokio::spawn(async move {
            axum::serve(conn::SimListener::new(listener), app)
                .with_graceful_shutdown(async move {
                    let _ = until.wait_for(|stop| *stop).await;
                })
                .await
        });
        tracing::debug!("sim: listening on {addr}");
        if let Some(chaos) = &shared.config.chaos {
            tracing::info!(seed = chaos.seed, "sim: chaos on: {chaos:?}");
        }
        Ok(Self {
            shared,
            addr,
            stop,
            server: Some(server),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a Graph API version.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Every accepted send, in arrival order.
    pub fn messages(&self) -> Vec<AcceptedMessage> {
        self.shared.state().messages.clone()
    }

    /// Every send request so far, in arrival order, with what it was answered.
    pub fn attempts(&self) -> Vec<SendAttempt> {
        self.shared.state().attempts.clone()
    }

    /// Counts of requests by answer, and of status webhooks.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Forgets the accepted sends and the request log (rate-limit windows and the counters
    /// of [`Sim::stats`] other than the request counts are kept).
    pub fn clear_messages(&self) {
        let mut st = self.shared.state();
        st.messages.clear();
        st.attempts.clear();
    }

    /// Queues a fault for the next send request that has none yet.
    pub fn push_fault(&self, fault: Fault) {
        self.shared.state().faults.push_back(fault);
    }

    /// Sends to this number are accepted, then get a `failed` status webhook with `code`
    /// (e.g. 131026) instead of `delivered`.
    pub fn fail_later(&self, to_e164_or_digits: &str, code: i64) {
        self.shared
            .state()
            .fail_later
            .insert(digits(to_e164_or_digits), code);
    }

    /// Posts a signed inbound-message webhook and returns the reply's wamid.
    pub async fn reply(&self, reply: Reply) -> Result<String, SimError> {
        self.shared.reply(&reply).await
    }

    /// As [`Sim::reply`], written to the business number whose id is `phone_number_id`.
    pub async fn reply_to(&self, phone_number_id: &str, reply: Reply) -> Result<String, SimError> {
        self.shared.reply_on(&reply, Some(phone_number_id)).await
    }

    /// Changes a template's status (later sends see it) and posts a
    /// `message_template_status_update` webhook when a webhook URL is set.
    pub async fn set_template_status(
        &self,
        name: &str,
        language: &str,
        status: &str,
    ) -> Result<(), SimError> {
        self.shared
            .announce_template_status(name, language, status)
            .await
    }

    /// Posts `payload` to the webhook URL, signed, with the usual retries: for hand-made
    /// payloads (batches, duplicates, out-of-order statuses).
    pub async fn post_webhook(&self, payload: &serde_json::Value) -> Result<(), SimError> {
        webhook::deliver(&self.shared, payload).await
    }

    /// Stops accepting, ends hanging responses and webhook tasks, and waits for them.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("sim: server ended with an error: {e}"),
                Ok(Err(e)) => tracing::warn!("sim: server task failed: {e}"),
                Err(_) => {
                    tracing::warn!("sim: server did not stop in time; aborting it");
                    server.abort();
                }
            }
        }
        let mut tasks = std::mem::take(
            &mut *self
                .shared
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // The server and the webhook tasks watch this and end on their own.
        self.stop.send_replace(true);
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Runs a simulator on `listener` until `shutdown` completes (the `reminderd simulate`
/// command passes Ctrl-C).
pub async fn run(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let sim = Sim::start_on(listener, config).await?;
    tracing::info!(
        "WhatsApp Cloud API simulator on {} (phone number id {}, WABA {})",
        sim.base_url(),
        sim.config().phone_number_id,
        sim.config().waba_id
    );
    shutdown.await;
    sim.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64, n: usize) -> Vec<Option<Fault>> {
        let mut c = ChaosState::new(Chaos {
            seed,
            burst_len: 4,
            p_429_burst: 0.05,
            ..Chaos::default()
        });
        (0..n).map(|_| c.fault().0).collect()
    }

    #[test]
    fn chaos_draws_are_replayable_from_the_seed() {
        assert_eq!(draws(1, 500), draws(1, 500));
        assert_ne!(draws(1, 500), draws(2, 500));
    }

    #[test]
    fn a_burst_refuses_burst_len_requests_in_a_row() {
        let mut c = ChaosState::new(Chaos {
            p_5xx: 0.0,
            p_timeout: 0.0,
            p_slow: 0.0,
            p_429_burst: 1.0,
            burst_len: 3,
            ..Chaos::default()
        });
        let starts: Vec<bool> = (0..6).map(|_| c.fault().1).collect();
        assert_eq!(starts, [true, false, false, true, false, false]);
    }

    #[test]
    fn a_run_without_a_drawn_burst_still_gets_one_by_first_burst_by() {
        let mut c = ChaosState::new(Chaos {
            p_429_burst: 0.0,
            burst_len: 2,
            first_burst_by: Some(5),
            ..Chaos::default()
        });
        let starts: Vec<bool> = (0..12).map(|_| c.fault().1).collect();
        assert_eq!(
            starts.iter().position(|s| *s),
            Some(4),
            "the fifth request starts it"
        );
        assert_eq!(starts.iter().filter(|s| **s).count(), 1, "only once");
    }

    #[test]
    fn webhook_chaos_keeps_every_status_and_counts_the_copies() {
        let mut c = ChaosState::new(Chaos {
            seed: 9,
            p_dup_webhook: 0.5,
            p_reorder_webhooks: 1.0,
            ..Chaos::default()
        });
        let mut reordered = 0;
        for _ in 0..200 {
            let mut statuses = vec!["sent", "delivered", "read"];
            let (r, dups) = c.webhooks(&mut statuses);
            reordered += usize::from(r);
            assert_eq!(statuses.len(), 3 + dups);
            let mut distinct = statuses.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct, ["delivered", "read", "sent"]);
        }
        assert!(reordered > 100, "{reordered}");
    }
}
