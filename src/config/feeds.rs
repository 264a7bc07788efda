//! The `[feeds.NAME]` sections, typed: where the schedule arrives from besides the CSV (an
//! HL7 v2 SIU listener, a FHIR R4 server) and how fresh each must be.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use chrono::Duration;

/// The source name of appointments that come from uploads and `reminderd import`.
pub const CSV_SOURCE: &str = "csv";

/// One schedule feed (`[feeds.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// The section's name: how staff, logs and the store name the feed.
    pub name: String,
    /// The namespace of the feed's appointment ids (`appointments.source`): the feed's own
    /// name, or `"csv"` (`same_ids_as = "csv"`) when the feed and the uploads are one clinic
    /// system, so the same id is the same appointment.
    pub source: String,
    /// The clinic of a message or resource that names no known location (`None`: such a
    /// message is refused).
    pub clinic: Option<String>,
    /// Location ids or names as the feed writes them (SIU AIL-3.1 or MSH-4; a FHIR
    /// `Location` id) → clinic keys.
    pub locations: BTreeMap<String, String>,
    /// What kind of feed, with its own settings.
    pub kind: FeedKind,
}

impl Feed {
    /// Every clinic this feed may write to (its `clinic` and its `locations`), sorted, once.
    pub fn clinics(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .clinic
            .iter()
            .map(String::as_str)
            .chain(self.locations.values().map(String::as_str))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The clinic for a location as the feed names it (`None` or unknown: the feed's
    /// `clinic`).
    pub fn clinic_for(&self, location: Option<&str>) -> Option<&str> {
        location
            .and_then(|l| self.locations.get(l.trim()))
            .or(self.clinic.as_ref())
            .map(String::as_str)
    }

    /// The HL7 settings, for an HL7 feed.
    pub fn hl7(&self) -> Option<&Hl7Feed> {
        match &self.kind {
            FeedKind::Hl7(h) => Some(h),
            FeedKind::Fhir(_) => None,
        }
    }

    /// The FHIR settings, for a FHIR feed.
    pub fn fhir(&self) -> Option<&FhirFeed> {
        match &self.kind {
            FeedKind::Fhir(f) => Some(f),
            FeedKind::Hl7(_) => None,
        }
    }
}

/// The kind of a feed (`kind = "hl7"` or `"fhir"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedKind {
    /// An HL7 v2 SIU listener.
    Hl7(Hl7Feed),
    /// A FHIR R4 server read on a schedule.
    Fhir(FhirFeed),
}

/// An HL7 v2 SIU feed: an interface engine sends to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Feed {
    /// The listener's own address (MLLP over TCP, and `POST /hl7` on the same port), never the
    /// public webhook's.
    pub listen: SocketAddr,
    /// A feed silent for longer holds its clinics' reminders (`None`: no such guard).
    pub max_silence: Option<Duration>,
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// SCH-6 (event reason) identifiers that say an S15 cancellation was the patient's,
    /// upper-case (default `["PAT"]`): such a cancellation frees a slot for the waitlist,
    /// any other is the clinic's.
    pub patient_cancel_reasons: Vec<String>,
}

/// The SCH-6 identifiers read as "the patient cancelled" when a feed names none.
pub const DEFAULT_PATIENT_CANCEL_REASONS: [&str; 1] = ["PAT"];

/// A FHIR R4 server we read the schedule from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirFeed {
    /// The server's base URL (`https://ehr.example.org/fhir`), no trailing slash.
    pub base_url: String,
    /// How we authenticate.
    pub auth: FhirAuth,
    /// A full sync of the horizon this often (seconds-first cron expression).
    pub full_sync: String,
    /// An incremental sync (`_lastUpdated=gt<cursor>`) this often, between full ones.
    pub incremental_sync: String,
    /// Days ahead a full sync reads (from the clinic's today).
    pub horizon_days: u32,
    /// Resources per page (`_count`).
    pub page_size: u32,
    /// A feed whose syncs have failed for longer holds its clinics' reminders (`None`: no
    /// such guard).
    pub max_import_age: Option<Duration>,
    /// Tell the server of patients' answers (confirm → AppointmentResponse, cancel → PUT
    /// with `If-Match`), when its CapabilityStatement allows it.
    pub write_back: bool,
    /// A full sync also reads the horizon's free slots (`Slot?status=free`) as openings for
    /// the waitlist (off by default: not every server searches slots).
    pub read_free_slots: bool,
    /// Time allowed to connect.
    pub connect_timeout: StdDuration,
    /// Time allowed for a whole request.
    pub request_timeout: StdDuration,
}

/// How a FHIR feed authenticates. The secrets come from the environment or systemd
/// credentials (see [`crate::secrets::feed_secret`]), never from `reminders.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FhirAuth {
    /// No authentication (a server on the clinic's own network that needs none).
    None,
    /// A fixed bearer token (`$REMINDERD_FEED_<NAME>_TOKEN` or credential `feed-<name>-token`).
    Bearer,
    /// OAuth2 client credentials (SMART backend services with a client secret): the secret is
    /// `$REMINDERD_FEED_<NAME>_CLIENT_SECRET` or credential `feed-<name>-client-secret`.
    ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client id.
        client_id: String,
        /// Scopes asked for (`system/Appointment.read system/Patient.read`).
        scope: Option<String>,
    },
}

// ---- reading `[feeds]` ----------------------------------------------------------------------

/// `[feeds.NAME]` as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    kind: String,
    clinic: Option<String>,
    #[serde(default)]
    locations: BTreeMap<String, String>,
    same_ids_as: Option<String>,
    // hl7
    listen: Option<String>,
    max_silence: Option<String>,
    #[serde(default = "default_max_message")]
    max_message_bytes: usize,
    patient_cancel_reasons: Option<Vec<String>>,
    // fhir
    base_url: Option<String>,
    #[serde(default = "default_auth")]
    auth: String,
    token_url: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    #[serde(default = "default_full_sync")]
    full_sync: String,
    #[serde(default = "default_incremental_sync")]
    incremental_sync: String,
    #[serde(default = "default_horizon")]
    horizon_days: u32,
    #[serde(default = "default_page_size")]
    page_size: u32,
    max_import_age: Option<String>,
    #[serde(default)]
    write_back: bool,
    #[serde(default)]
    read_free_slots: bool,
    #[serde(default = "default_connect")]
    connect_timeout: String,
    #[serde(default = "default_request")]
    request_timeout: String,
}

fn default_max_message() -> usize {
    1024 * 1024
}
fn default_auth() -> String {
    "none".into()
}
fn default_full_sync() -> String {
    "0 0 * * * *".into()
}
fn default_incremental_sync() -> String {
    "0 */5 * * * *".into()
}
fn default_horizon() -> u32 {
    8
}
fn default_page_size() -> u32 {
    100
}
fn default_connect() -> String {
    "5s".into()
}
fn default_request() -> String {
    "30s".into()
}

/// Checks every `[feeds.NAME]` against the clinics and the servers' addresses.
pub(super) fn validate(
    raw: BTreeMap<String, RawFeed>,
    clinics: &BTreeMap<String, super::Clinic>,
    taken: &[(String, SocketAddr)],
    now: chrono::DateTime<chrono::Utc>,
    push: &mut impl FnMut(String, String),
) -> BTreeMap<String, Feed> {
    use super::values::{
        API_REQUEST_TIMEOUT, CONNECT_TIMEOUT, MAX_IMPORT_AGE, MAX_SILENCE, check_cron, check_number,
    };
    let mut out = BTreeMap::new();
    let mut listens: Vec<(String, SocketAddr)> = taken.to_vec();
    for (name, f) in raw {
        let k = |key: &str| format!("feeds.{}.{key}", super::seg(&name));
        let name_ok = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && name != CSV_SOURCE;
        if !name_ok {
            push(
                format!("feeds.{}", super::seg(&name)),
                "a feed's name is up to 40 lower-case letters, digits, '-' or '_' (e.g. [feeds.main-ehr]), and not \"csv\"".into(),
            );
        }
        if let Some(c) = &f.clinic
            && !clinics.contains_key(c)
        {
            push(
                k("clinic"),
                format!("{c:?} is not a clinic; name one of [clinics.*]"),
            );
        }
        for (loc, c) in &f.locations {
            if !clinics.contains_key(c) {
                push(
                    k(&format!("locations.{loc}")),
                    format!("{c:?} is not a clinic; name one of [clinics.*]"),
                );
            }
        }
        if f.clinic.is_none() && f.locations.is_empty() {
            push(
                k("clinic"),
                "say which clinic the feed's appointments belong to: clinic = \"KEY\", or [feeds.NAME.locations] mapping the feed's location ids to clinic keys".into(),
            );
        }
        let source = match f.same_ids_as.as_deref() {
            None => name.clone(),
            Some(CSV_SOURCE) => CSV_SOURCE.to_string(),
            Some(other) => {
                push(
                    k("same_ids_as"),
                    format!(
                        "{other:?} cannot be shared: the only other source is \"csv\" (the uploads), for a feed from the same practice system as the files"
                    ),
                );
                name.clone()
            }
        };
        let hl7_only = [
            ("listen", f.listen.is_some()),
            ("max_silence", f.max_silence.is_some()),
            ("patient_cancel_reasons", f.patient_cancel_reasons.is_some()),
        ];
        let fhir_only = [
            ("base_url", f.base_url.is_some()),
            ("token_url", f.token_url.is_some()),
            ("client_id", f.client_id.is_some()),
            ("scope", f.scope.is_some()),
            ("max_import_age", f.max_import_age.is_some()),
            ("write_back", f.write_back),
            ("read_free_slots", f.read_free_slots),
        ];
        let kind = match f.kind.as_str() {
            "hl7" => {
                for (key, set) in fhir_only {
                    if set {
                        push(
                            k(key),
                            "is a setting of a FHIR feed (kind = \"fhir\"), not of an HL7 feed"
                                .into(),
                        );
                    }
                }
                let listen = match f.listen.as_deref().map(str::parse::<SocketAddr>) {
                    Some(Ok(a)) => a,
                    Some(Err(_)) => {
                        push(
                            k("listen"),
                            format!(
                                "{:?} is not an address and port, e.g. \"127.0.0.1:2575\"",
                                f.listen.unwrap_or_default()
                            ),
                        );
                        SocketAddr::from(([127, 0, 0, 1], 2575))
                    }
                    None => {
                        push(k("listen"), "an HL7 feed needs its own address to listen on, e.g. listen = \"127.0.0.1:2575\" (never the webhook's)".into());
                        SocketAddr::from(([127, 0, 0, 1], 2575))
                    }
                };
                if listen.port() != 0 {
                    if let Some((other, _)) = listens.iter().find(|(_, a)| *a == listen) {
                        push(
                            k("listen"),
                            format!(
                                "{listen} is also {other}; an HL7 feed listens on an address of its own"
                            ),
                        );
                    }
                    listens.push((k("listen"), listen));
                }
                let max_silence = f.max_silence.as_deref().and_then(|s| {
                    MAX_SILENCE
                        .span(s)
                        .map_err(|m| push(k("max_silence"), m))
                        .ok()
                });
                check_number(
                    &k("max_message_bytes"),
                    f.max_message_bytes,
                    &(1024..=64 * 1024 * 1024),
                    " bytes",
                    push,
                );
                let patient_cancel_reasons: Vec<String> = match &f.patient_cancel_reasons {
                    None => DEFAULT_PATIENT_CANCEL_REASONS
                        .iter()
                        .map(|r| (*r).to_string())
                        .collect(),
                    Some(list) => {
                        if list
                            .iter()
                            .any(|r| r.trim().is_empty() || r.chars().any(|c| "|^~\\&".contains(c)))
                        {
                            push(
                                k("patient_cancel_reasons"),
                                "each is an SCH-6 identifier as the practice system sends it (e.g. \"PAT\"), not empty and without HL7 separators".into(),
                            );
                        }
                        list.iter().map(|r| r.trim().to_ascii_uppercase()).collect()
                    }
                };
                FeedKind::Hl7(Hl7Feed {
                    listen,
                    max_silence,
                    max_message_bytes: f.max_message_bytes,
                    patient_cancel_reasons,
                })
            }
            "fhir" => {
                for (key, set) in hl7_only {
                    if set {
                        push(
                            k(key),
                            "is a setting of an HL7 feed (kind = \"hl7\"), not of a FHIR feed"
                                .into(),
                        );
                    }
                }
                let base_url = f.base_url.clone().unwrap_or_else(|| {
                    push(k("base_url"), "a FHIR feed needs the server's base address, e.g. base_url = \"https://ehr.example.org/fhir\"".into());
                    String::new()
                });
                if !(base_url.is_empty()
                    || base_url.starts_with("https://")
                    || base_url.starts_with("http://"))
                {
                    push(
                        k("base_url"),
                        format!("{base_url:?} is not a web address starting with https://"),
                    );
                }
                let auth = match f.auth.as_str() {
                    "none" => FhirAuth::None,
                    "bearer" => FhirAuth::Bearer,
                    "client_credentials" => match (f.token_url.clone(), f.client_id.clone()) {
                        (Some(token_url), Some(client_id)) => FhirAuth::ClientCredentials {
                            token_url,
                            client_id,
                            scope: f.scope.clone(),
                        },
                        _ => {
                            push(k("auth"), "client_credentials needs token_url and client_id (the secret comes from the environment or a credential)".into());
                            FhirAuth::None
                        }
                    },
                    other => {
                        push(
                            k("auth"),
                            format!(
                                "{other:?} is not a way to authenticate; use \"none\", \"bearer\" or \"client_credentials\""
                            ),
                        );
                        FhirAuth::None
                    }
                };
                for (key, expr) in [
                    ("full_sync", &f.full_sync),
                    ("incremental_sync", &f.incremental_sync),
                ] {
                    if let Err(m) = check_cron(expr, now) {
                        push(k(key), m);
                    }
                }
                check_number(
                    &k("horizon_days"),
                    f.horizon_days,
                    &(1..=366),
                    " days",
                    push,
                );
                check_number(
                    &k("page_size"),
                    f.page_size,
                    &(1..=1000),
                    " resources a page",
                    push,
                );
                let max_import_age = f.max_import_age.as_deref().and_then(|s| {
                    MAX_IMPORT_AGE
                        .span(s)
                        .map_err(|m| push(k("max_import_age"), m))
                        .ok()
                });
                let connect_timeout =
                    CONNECT_TIMEOUT
                        .std_span(&f.connect_timeout)
                        .unwrap_or_else(|m| {
                            push(k("connect_timeout"), m);
                            StdDuration::from_secs(5)
                        });
                let request_timeout = API_REQUEST_TIMEOUT
                    .std_span(&f.request_timeout)
                    .unwrap_or_else(|m| {
                        push(k("request_timeout"), m);
                        StdDuration::from_secs(30)
                    });
                FeedKind::Fhir(FhirFeed {
                    base_url: base_url.trim_end_matches('/').to_string(),
                    auth,
                    full_sync: f.full_sync.clone(),
                    incremental_sync: f.incremental_sync.clone(),
                    horizon_days: f.horizon_days,
                    page_size: f.page_size,
                    max_import_age,
                    write_back: f.write_back,
                    read_free_slots: f.read_free_slots,
                    connect_timeout,
                    request_timeout,
                })
            }
            other => {
                push(
                    k("kind"),
                    format!(
                        "{other:?} is not a kind of feed; use \"hl7\" (an SIU feed over MLLP or HTTP) or \"fhir\" (a FHIR R4 server)"
                    ),
                );
                continue;
            }
        };
        out.insert(
            name.clone(),
            Feed {
                name,
                source,
                clinic: f.clinic,
                locations: f.locations,
                kind,
            },
        );
    }
    out
}
