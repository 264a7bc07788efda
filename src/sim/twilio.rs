//! The simulator speaks Twilio Programmable Messaging too: sends checked like Twilio's REST API,
//! signed status callbacks, scripted inbound texts and fault injection, on the same server.
//!
//! - `POST /2010-04-01/Accounts/{sid}/Messages.json`: Basic auth (`twilio_account_sid` :
//!   `twilio_auth_token`, else 401 and 20003), the account in the path (404 and 20404), `To` in
//!   E.164 (21604 missing, 21211 invalid), `From` in E.164 (21212) or `MessagingServiceSid`
//!   (`MG…`, 21701), one of them required (21603), `Body` (21602 missing, 21617 over 1,600
//!   characters), `ValidityPeriod` 1 to 36,000 (21624), `StatusCallback` an http(s) URL (21609),
//!   and a number that texted STOP gets 21610. Answers 201 with Twilio's message resource
//!   (`SM` and 32 hex digits, `queued`, or `accepted` with a Messaging Service, `num_segments`
//!   counted GSM-7/UCS-2), then posts form status callbacks `sent` → `delivered` (or
//!   `undelivered`/`failed` with `ErrorCode`), `status_delay` apart, signed with
//!   `X-Twilio-Signature` over the `StatusCallback` URL exactly as given. Like Twilio it posts
//!   each callback once and never retries.
//! - `GET|DELETE /_sim/sms`: every accepted SMS ([`SimSms`]), in arrival order.
//! - `POST /_sim/sms/reply` `{"from": "+15551234567", "body": "1"}`: posts a signed inbound
//!   text to `twilio_inbound_url` (with `OptOutType` for STOP/START/HELP keywords, as Advanced
//!   Opt-Out does); answers `{"sid": "SM…"}`.
//! - `POST /_sim/sms/fail` `{"to": "+15551234567", "code": 30003, "sync": false}`: that
//!   number's sends fail, at once with that error (`sync`) or later with an `undelivered`
//!   callback.
//! - `POST /_sim/sms/faults`: faults for the next SMS sends, written like `/_sim/faults`;
//!   an `error` fault carries a Twilio code.
//!
//! Its form parsing and signature code are its own, independent of `crate::sms::twilio` on
//! purpose: the simulator checks our requests against Twilio's documented behaviour, not
//! against our reading of it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::Sha1;

use super::conn::ConnInfo;
use super::{Fault, Shared, Sim, SimError, digits};
use crate::time::Clock;

/// Twilio's API version, in every path and callback.
const API_VERSION: &str = "2010-04-01";
/// The longest body Twilio takes, in characters.
const BODY_MAX: usize = 1600;
/// The sender of inbound texts when nothing was ever sent (Twilio's magic test number).
const DEFAULT_NUMBER: &str = "+15005550006";

/// An SMS the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSms {
    /// The message sid answered (`SM…`).
    pub sid: String,
    /// `To` as sent.
    pub to: String,
    /// `From`, when a number sent it.
    pub from: Option<String>,
    /// `MessagingServiceSid`, when a service sent it.
    pub messaging_service_sid: Option<String>,
    /// `Body` as sent.
    pub body: String,
    /// `ValidityPeriod` in seconds, when set.
    pub validity: Option<u64>,
    /// Segments Twilio would bill.
    pub segments: u32,
    /// `StatusCallback` as sent.
    pub status_callback: Option<String>,
    /// When it was accepted.
    pub received_at: DateTime<Utc>,
    /// The statuses whose callback the receiver answered with a 2xx, in order.
    pub callbacks: Vec<String>,
}

/// What a number's sends are scripted to do.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    code: i64,
    sync: bool,
}

/// The simulator's Twilio state, inside its [`super::State`].
#[derive(Default)]
pub(super) struct TwilioState {
    sent: Vec<SimSms>,
    faults: VecDeque<Fault>,
    /// By the number's digits.
    outcomes: HashMap<String, Outcome>,
    /// Digits of numbers that texted STOP (until START).
    opted_out: HashSet<String>,
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(send))
        .route("/_sim/sms", get(list).delete(clear))
        .route("/_sim/sms/reply", post(reply_endpoint))
        .route("/_sim/sms/fail", post(fail_endpoint))
        .route("/_sim/sms/faults", post(faults_endpoint))
        .with_state(shared)
}

// ---- the wire -------------------------------------------------------------------------------

/// A Twilio API error: answered with Twilio's error body and `status` as the HTTP status.
struct ApiError {
    http: u16,
    code: i64,
    message: String,
}

fn error(http: u16, code: i64, message: &str) -> ApiError {
    ApiError {
        http,
        code,
        message: message.to_string(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.http,
        });
        (status, axum::Json(body)).into_response()
    }
}

/// What Twilio says for a scripted or queued error code.
fn message(code: i64) -> &'static str {
    match code {
        20_003 => "Authenticate",
        20_429 => "Too Many Requests",
        21_211 => "Invalid 'To' Phone Number",
        21_408 => {
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"
        }
        21_608 => {
            "The number is unverified. Trial accounts cannot send messages to unverified numbers"
        }
        21_610 => "Attempt to send to unsubscribed recipient",
        21_612 => "The 'To' phone number is not currently reachable via SMS",
        21_614 => "'To' number is not a valid mobile number",
        21_635 => "The 'To' number is a landline",
        20_500..=20_599 => "Internal Server Error",
        _ => "Error",
    }
}

/// The HTTP status Twilio answers a code with.
fn http_status(code: i64) -> u16 {
    match code {
        20_003 => 401,
        20_404 => 404,
        20_429 => 429,
        20_500..=20_599 => 500,
        _ => 400,
    }
}

/// An HTML page with this status, as a proxy in front of Twilio sends.
fn bare(http: u16) -> Response {
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = format!("<html><body><h1>{http}</h1>upstream error</body></html>");
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

/// `+` then 2 to 15 digits, the first not 0.
fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// The user and password of a Basic `Authorization` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// `X-Twilio-Signature` as Twilio computes it: HMAC-SHA1 over the URL and each name and value,
/// sorted, base64.
pub(crate) fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("any key length works");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

fn new_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// Posts a signed form once (Twilio does not retry); `Ok` on a 2xx.
async fn post_signed(sh: &Shared, url: &str, params: &[(String, String)]) -> Result<(), SimError> {
    let sig = twilio_signature(&sh.config.twilio_auth_token, url, params);
    let failed = |last: String| SimError::Delivery {
        url: url.to_string(),
        attempts: 1,
        last,
    };
    match sh
        .http
        .post(url)
        .header("X-Twilio-Signature", sig)
        .header(header::USER_AGENT, "TwilioProxy/1.1")
        .form(params)
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(failed(format!("HTTP {}", resp.status()))),
        Err(e) => Err(failed(e.to_string())),
    }
}

// ---- send -----------------------------------------------------------------------------------

async fn send(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = sh.state().twilio.faults.pop_front();
    let mut delay = sh.config.latency;
    if let Some(Fault::Slow(extra)) = &fault {
        delay += *extra;
    }
    if !delay.is_zero() && !sh.sleep(delay).await {
        return bare(503);
    }
    match fault {
        Some(Fault::Error { code, http_status }) => {
            return error(http_status, code, message(code)).into_response();
        }
        Some(Fault::BareStatus(status)) => return bare(status),
        _ => {}
    }
    let response = match accept(&sh, &sid, &headers, &body) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    match fault {
        Some(Fault::AcceptThenHang(d)) => {
            sh.sleep(d).await;
            response
        }
        Some(Fault::AcceptThenDrop) => {
            conn.kill();
            response
        }
        _ => response,
    }
}

/// A send's parameters, checked.
struct Checked {
    to: String,
    from: Option<String>,
    service: Option<String>,
    body: String,
    validity: Option<u64>,
    callback: Option<String>,
}

fn check(params: &[(String, String)]) -> Result<Checked, ApiError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let to = get("To")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| error(400, 21_604, "A 'To' phone number is required."))?;
    if !is_e164(&to) {
        return Err(error(
            400,
            21_211,
            &format!("Invalid 'To' Phone Number: {to}"),
        ));
    }
    let from = get("From").filter(|f| !f.is_empty());
    let service = get("MessagingServiceSid").filter(|s| !s.is_empty());
    if from.is_none() && service.is_none() {
        return Err(error(400, 21_603, "A 'From' phone number is required."));
    }
    if let Some(f) = &from
        && !is_e164(f)
    {
        return Err(error(
            400,
            21_212,
            &format!("Invalid From Number (caller ID): {f}"),
        ));
    }
    if let Some(s) = &service
        && !(s.len() == 34 && s.starts_with("MG"))
    {
        return Err(error(400, 21_701, "The Messaging Service does not exist"));
    }
    let body = get("Body")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| error(400, 21_602, "Message body is required."))?;
    if body.chars().count() > BODY_MAX {
        return Err(error(
            400,
            21_617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let validity = match get("ValidityPeriod") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(secs @ 1..=36_000) => Some(secs),
            _ => return Err(error(400, 21_624, "Invalid validity period value")),
        },
    };
    let callback = get("StatusCallback");
    if let Some(cb) = &callback
        && !(cb.starts_with("http://") || cb.starts_with("https://"))
    {
        return Err(error(400, 21_609, &format!("Invalid StatusCallback: {cb}")));
    }
    Ok(Checked {
        to,
        from,
        service,
        body,
        validity,
        callback,
    })
}

/// Checks and records one send; `Err` is the error answer.
fn accept(
    sh: &Arc<Shared>,
    sid: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let account = &sh.config.twilio_account_sid;
    match basic_auth(headers) {
        Some((user, pass)) if user == *account && pass == sh.config.twilio_auth_token => {}
        _ => return Err(error(401, 20_003, "Authenticate")),
    }
    if sid != account {
        let path = format!("/{API_VERSION}/Accounts/{sid}/Messages.json");
        return Err(error(
            404,
            20_404,
            &format!("The requested resource {path} was not found"),
        ));
    }
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| error(400, 21_604, "A 'To' phone number is required."))?;
    let c = check(&params)?;
    let key = digits(&c.to);
    let (msg, outcome) = {
        let mut st = sh.state();
        if st.twilio.opted_out.contains(&key) {
            return Err(error(400, 21_610, message(21_610)));
        }
        let outcome = st.twilio.outcomes.get(&key).copied();
        if let Some(o) = outcome.filter(|o| o.sync) {
            return Err(error(http_status(o.code), o.code, message(o.code)));
        }
        let msg = SimSms {
            sid: new_sid(),
            to: c.to,
            from: c.from,
            messaging_service_sid: c.service,
            segments: crate::sms::text::cost(&c.body).segments,
            body: c.body,
            validity: c.validity,
            status_callback: c.callback,
            received_at: Clock::System.now(),
            callbacks: Vec::new(),
        };
        st.twilio.sent.push(msg.clone());
        (msg, outcome.map(|o| o.code))
    };
    let now = msg.received_at.to_rfc2822();
    let resource = json!({
        "account_sid": account,
        "api_version": API_VERSION,
        "body": msg.body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": msg.from,
        "messaging_service_sid": msg.messaging_service_sid,
        "num_media": "0",
        "num_segments": msg.segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": msg.sid,
        "status": if msg.messaging_service_sid.is_some() { "accepted" } else { "queued" },
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{account}/Messages/{}/Media.json", msg.sid)
        },
        "to": msg.to,
        "uri": format!("/{API_VERSION}/Accounts/{account}/Messages/{}.json", msg.sid),
    });
    if msg.status_callback.is_some() {
        let shared = Arc::clone(sh);
        sh.spawn(async move { run_callbacks(shared, msg, outcome).await });
    }
    Ok((StatusCode::CREATED, axum::Json(resource)).into_response())
}

/// Posts `sent`, then `delivered` or the scripted failure, `status_delay` apart.
async fn run_callbacks(sh: Arc<Shared>, msg: SimSms, fail: Option<i64>) {
    let Some(url) = msg.status_callback.clone() else {
        return;
    };
    let last = match fail {
        None => "delivered",
        // Carrier-side codes end undelivered; Twilio-side ones failed.
        Some(30_000..=30_999) => "undelivered",
        Some(_) => "failed",
    };
    for status in ["sent", last] {
        if !sh.sleep(sh.config.status_delay).await {
            return;
        }
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), sh.config.twilio_account_sid.clone()),
            ("ApiVersion".into(), API_VERSION.into()),
            ("MessageSid".into(), msg.sid.clone()),
            ("MessageStatus".into(), status.into()),
            ("SmsSid".into(), msg.sid.clone()),
            ("SmsStatus".into(), status.into()),
            ("To".into(), msg.to.clone()),
        ];
        if let Some(from) = &msg.from {
            params.push(("From".into(), from.clone()));
        }
        if let Some(service) = &msg.messaging_service_sid {
            params.push(("MessagingServiceSid".into(), service.clone()));
        }
        if status == last
            && let Some(code) = fail
        {
            params.push(("ErrorCode".into(), code.to_string()));
        }
        match post_signed(&sh, &url, &params).await {
            Ok(()) => {
                let mut st = sh.state();
                if let Some(m) = st.twilio.sent.iter_mut().find(|m| m.sid == msg.sid) {
                    m.callbacks.push(status.to_string());
                }
            }
            Err(e) => tracing::debug!("sim: Twilio {status} callback for {} lost: {e}", msg.sid),
        }
    }
}

// ---- inbound --------------------------------------------------------------------------------

/// What Twilio's opt-out handling makes of a whole inbound body.
fn opt_out_type(body: &str) -> Option<&'static str> {
    match body.trim().to_ascii_uppercase().as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => {
            Some("STOP")
        }
        "START" | "YES" | "UNSTOP" => Some("START"),
        "HELP" | "INFO" => Some("HELP"),
        _ => None,
    }
}

impl Shared {
    /// Posts a signed inbound text from `from` to `twilio_inbound_url`; returns its sid.
    async fn sms_reply(&self, from: &str, body: &str) -> Result<String, SimError> {
        let url = self
            .config
            .twilio_inbound_url
            .clone()
            .ok_or(SimError::NoTwilioInboundUrl)?;
        let key = digits(from);
        if key.is_empty() {
            return Err(SimError::BadNumber(from.to_string()));
        }
        let sid = new_sid();
        let opt_out = opt_out_type(body);
        let (to, service) = {
            let mut st = self.state();
            match opt_out {
                Some("STOP") => {
                    st.twilio.opted_out.insert(key.clone());
                }
                Some("START") => {
                    st.twilio.opted_out.remove(&key);
                }
                _ => {}
            }
            // They answer the number that last texted them.
            let last = st.twilio.sent.iter().rev().find(|m| digits(&m.to) == key);
            let to = last
                .or_else(|| st.twilio.sent.iter().rev().find(|m| m.from.is_some()))
                .and_then(|m| m.from.clone())
                .unwrap_or_else(|| DEFAULT_NUMBER.to_string());
            (to, last.and_then(|m| m.messaging_service_sid.clone()))
        };
        let cost = crate::sms::text::cost(body);
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.config.twilio_account_sid.clone()),
            ("ApiVersion".into(), API_VERSION.into()),
            ("Body".into(), body.to_string()),
            ("From".into(), format!("+{key}")),
            ("MessageSid".into(), sid.clone()),
            ("NumMedia".into(), "0".into()),
            ("NumSegments".into(), cost.segments.to_string()),
            ("SmsMessageSid".into(), sid.clone()),
            ("SmsSid".into(), sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("To".into(), to),
        ];
        if let Some(service) = service {
            params.push(("MessagingServiceSid".into(), service));
        }
        if let Some(kind) = opt_out {
            params.push(("OptOutType".into(), kind.into()));
        }
        post_signed(self, &url, &params).await?;
        Ok(sid)
    }
}

// ---- the Rust handle --------------------------------------------------------------------------

impl Sim {
    /// Every SMS accepted so far, in arrival order.
    pub fn sms_messages(&self) -> Vec<SimSms> {
        self.shared.state().twilio.sent.clone()
    }

    /// Forgets the accepted SMS.
    pub fn clear_sms(&self) {
        self.shared.state().twilio.sent.clear();
    }

    /// Sends to `number` fail with Twilio error `code`: at once (`sync`, e.g. 21211 or 21610)
    /// or after acceptance with an `undelivered` callback (e.g. 30003, 30007).
    pub fn sms_fail_number(&self, number: &str, code: i64, sync: bool) {
        self.shared
            .state()
            .twilio
            .outcomes
            .insert(digits(number), Outcome { code, sync });
    }

    /// Queues a fault for the next SMS send that has none yet (an `Error` carries a Twilio
    /// code).
    pub fn push_sms_fault(&self, fault: Fault) {
        self.shared.state().twilio.faults.push_back(fault);
    }

    /// Posts a signed inbound text from `from` (STOP, START and HELP carry `OptOutType`, and
    /// STOP makes later sends to them fail with 21610); returns its sid.
    pub async fn sms_reply(&self, from: &str, body: &str) -> Result<String, SimError> {
        self.shared.sms_reply(from, body).await
    }
}

// ---- control endpoints ------------------------------------------------------------------------

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": msg }))).into_response()
}

async fn list(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.state().twilio.sent.clone()).into_response()
}

async fn clear(State(sh): State<Arc<Shared>>) -> StatusCode {
    sh.state().twilio.sent.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    from: String,
    body: String,
}

async fn reply_endpoint(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let r: ReplyBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("expected {{\"from\", \"body\"}}: {e}")),
    };
    match sh.sms_reply(&r.from, &r.body).await {
        Ok(sid) => axum::Json(json!({ "sid": sid })).into_response(),
        Err(e @ SimError::BadNumber(_)) => bad_request(&e.to_string()),
        Err(e @ SimError::Delivery { .. }) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    to: String,
    code: i64,
    #[serde(default)]
    sync: bool,
}

async fn fail_endpoint(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FailBody>(&body) {
        Ok(f) => {
            let outcome = Outcome {
                code: f.code,
                sync: f.sync,
            };
            sh.state().twilio.outcomes.insert(digits(&f.to), outcome);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(&format!(
            "expected {{\"to\": \"+1…\", \"code\": 30003, \"sync\": false}}: {e}"
        )),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

async fn faults_endpoint(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::Many(f)) => f,
        Ok(OneOrMany::One(f)) => vec![f],
        Err(e) => return bad_request(&format!("not a fault or a list of faults: {e}")),
    };
    sh.state().twilio.faults.extend(faults);
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_and_keywords() {
        assert!(is_e164("+15551234567"));
        assert!(!is_e164("15551234567"));
        assert!(!is_e164("+0555"));
        assert!(!is_e164("+1555123456789012"));
        assert!(!is_e164("+1 555"));
        assert_eq!(opt_out_type(" stop "), Some("STOP"));
        assert_eq!(opt_out_type("Cancel"), Some("STOP"));
        assert_eq!(opt_out_type("unstop"), Some("START"));
        assert_eq!(opt_out_type("info"), Some("HELP"));
        assert_eq!(opt_out_type("2"), None);
        assert_eq!(opt_out_type("stop it"), None);
    }

    #[test]
    fn signature_matches_twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
