//! The simulator's MSG91: the flow API (`POST /api/v5/flow`) checked like India's DLT gateway
//! would, and form-encoded (v2) delivery reports posted to `msg91_report_url`.
//!
//! Its parsing is its own, independent of `crate::sms::msg91`, so a mistake in the client is
//! not mirrored here. It checks the `authkey` header, that the template id is registered (and
//! the sender header, when the registry names one), that each recipient's `VAR1`..`VARn` fill
//! exactly the template's `{#var#}` slots with at most [`SimMsg91::var_cap`] characters each,
//! and answers MSG91's bodies: `{"type":"success","message":"<request id>"}` or
//! `{"type":"error","message":…}` (with `"code":"401"` for a bad key). Each accepted SMS is
//! recorded with its filled text ([`super::Sim::msg91_messages`], `GET /_sim/msg91`); then a
//! delivery report follows: `1 DELIVERED`, or the status scripted for the number
//! ([`super::Sim::msg91_fail_number`], `POST /_sim/msg91/fail {"number":…,"status":17}`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Shared, digits};
use crate::time::Clock;

/// How a slot is written in a registered DLT template.
const SLOT: &str = "{#var#}";
/// Posts of one delivery report before the simulator gives up on it.
const REPORT_ATTEMPTS: u32 = 3;

/// MSG91 as the simulator knows the account.
#[derive(Clone, PartialEq, Eq)]
pub struct SimMsg91 {
    /// The only `authkey` accepted.
    pub auth_key: String,
    /// The DLT templates mapped in the account's panel.
    pub templates: Vec<SimDltTemplate>,
    /// The most characters one variable may have.
    pub var_cap: usize,
}

impl Default for SimMsg91 {
    /// Key `sim-msg91-key`, cap 30, and the DLT templates of the shipped `reminders.toml`.
    fn default() -> Self {
        Self {
            auth_key: "sim-msg91-key".into(),
            templates: crate::config::Config::example()
                .map(|c| dlt_templates_from_config(&c))
                .unwrap_or_default(),
            var_cap: 30,
        }
    }
}

impl fmt::Debug for SimMsg91 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimMsg91")
            .field("auth_key", &"<redacted>")
            .field("templates", &self.templates)
            .field("var_cap", &self.var_cap)
            .finish()
    }
}

/// A DLT template as MSG91's panel maps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDltTemplate {
    /// The id a send names (`template_id`).
    pub template_id: String,
    /// The sender header it is registered with; empty: any sender is taken.
    pub sender: String,
    /// The registered text, `{#var#}` for each variable.
    pub text: String,
}

impl SimDltTemplate {
    /// A template registered for `sender`.
    pub fn new(template_id: &str, sender: &str, text: &str) -> Self {
        Self {
            template_id: template_id.into(),
            sender: sender.into(),
            text: text.into(),
        }
    }

    fn slots(&self) -> usize {
        self.text.matches(SLOT).count()
    }
}

/// Every SMS text of a configuration that has a DLT template id and a registered text, with
/// the configured MSG91 sender: the registry a simulator needs to accept what it sends.
pub fn dlt_templates_from_config(config: &crate::config::Config) -> Vec<SimDltTemplate> {
    let Some(msg91) = config.sms.as_ref().and_then(|s| s.msg91.as_ref()) else {
        return Vec::new();
    };
    let sender = msg91.sender.clone();
    msg91
        .texts
        .values()
        .flat_map(|t| t.languages.values())
        .filter_map(|l| {
            Some(SimDltTemplate {
                template_id: l.dlt_template_id.clone()?,
                sender: sender.clone(),
                text: l.registered.clone()?,
            })
        })
        .collect()
}

/// An SMS the simulated MSG91 accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDlt {
    /// The request id it answered (what delivery reports name).
    pub request_id: String,
    /// The template id sent.
    pub template_id: String,
    /// The sender header sent (the template's when the request named none).
    pub sender: String,
    /// The recipient as sent (`91XXXXXXXXXX`).
    pub mobiles: String,
    /// `VAR1`..`VARn`, in order.
    pub variables: Vec<String>,
    /// The registered text with the variables in its slots: what the phone shows.
    pub text: String,
    /// When it was accepted.
    pub received_at: DateTime<Utc>,
    /// The delivery-report status it gets: 1 delivered, or the scripted failure.
    pub report_status: u16,
}

/// The simulated MSG91's mutable state (inside the simulator's one lock).
#[derive(Debug, Default)]
pub(super) struct Msg91State {
    messages: Vec<SimDlt>,
    fail: HashMap<String, u16>,
}

/// The MSG91 routes, merged into the simulator's router.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v5/flow", post(flow))
        .route("/api/v5/flow/", post(flow))
        .route("/_sim/msg91", get(list))
        .route("/_sim/msg91/fail", post(fail_number))
}

impl super::Sim {
    /// Every SMS the simulated MSG91 accepted, in arrival order.
    pub fn msg91_messages(&self) -> Vec<SimDlt> {
        self.shared.state().msg91.messages.clone()
    }

    /// Sends to this number are accepted, then reported with `status` (2 failed, 9 NDNC,
    /// 16 or 25 rejected, 17 blocked) instead of 1 delivered.
    pub fn msg91_fail_number(&self, number: &str, status: u16) {
        self.shared
            .state()
            .msg91
            .fail
            .insert(digits(number), status);
    }
}

/// MSG91's error body.
fn error(http: StatusCode, message: &str) -> Response {
    (
        http,
        axum::Json(json!({ "type": "error", "message": message })),
    )
        .into_response()
}

/// One recipient of a flow request, checked.
#[derive(Debug)]
struct Recipient {
    mobiles: String,
    variables: Vec<String>,
}

async fn flow(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let cfg = &sh.config.msg91;
    let key = headers.get("authkey").and_then(|v| v.to_str().ok());
    if key != Some(cfg.auth_key.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"type": "error", "message": "AuthenticationFailure", "code": "401"})),
        )
            .into_response();
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body");
    };
    let id = req
        .get("template_id")
        .or_else(|| req.get("flow_id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if id.is_empty() {
        return error(StatusCode::BAD_REQUEST, "Template ID missing");
    }
    let Some(template) = cfg.templates.iter().find(|t| t.template_id == id).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid template id {id}: no such template is mapped to a DLT template"),
        );
    };
    let sender = match req.get("sender").and_then(Value::as_str) {
        Some(s) if !template.sender.is_empty() && s != template.sender => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Sender ID {s} is not the header template {id} is registered with ({})",
                    template.sender
                ),
            );
        }
        Some(s) => s.to_string(),
        None => template.sender.clone(),
    };
    let recipients = match req.get("recipients") {
        Some(Value::Array(r)) if !r.is_empty() => r,
        _ => return error(StatusCode::BAD_REQUEST, "Recipients missing"),
    };
    let mut checked = Vec::new();
    for r in recipients {
        match recipient(r, template.slots(), cfg.var_cap) {
            Ok(r) => checked.push(r),
            Err(msg) => return error(StatusCode::BAD_REQUEST, &msg),
        }
    }
    let request_id = request_id();
    let now = Clock::System.now();
    let accepted: Vec<SimDlt> = {
        let mut st = sh.state();
        let accepted: Vec<SimDlt> = checked
            .into_iter()
            .map(|r| SimDlt {
                request_id: request_id.clone(),
                template_id: id.to_string(),
                sender: sender.clone(),
                text: fill(&template.text, &r.variables),
                report_status: st.msg91.fail.get(&r.mobiles).copied().unwrap_or(1),
                mobiles: r.mobiles,
                variables: r.variables,
                received_at: now,
            })
            .collect();
        st.msg91.messages.extend(accepted.iter().cloned());
        accepted
    };
    if let Some(url) = sh.config.msg91_report_url.clone() {
        let shared = Arc::clone(&sh);
        sh.spawn(async move {
            if shared.sleep(shared.config.status_delay).await {
                post_report(&shared, &url, &accepted).await;
            }
        });
    }
    axum::Json(json!({ "type": "success", "message": request_id })).into_response()
}

/// Reads one `{mobiles, VAR1..VARn}`; `Err` is MSG91's message.
fn recipient(r: &Value, slots: usize, cap: usize) -> Result<Recipient, String> {
    let Some(obj) = r.as_object() else {
        return Err("Each recipient must be an object".into());
    };
    let mobiles = obj
        .get("mobiles")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !(10..=15).contains(&mobiles.len()) || !mobiles.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Invalid mobile number {mobiles:?}"));
    }
    let vars = var_count(obj);
    if vars != slots {
        return Err(format!(
            "The template has {slots} variables but {vars} were sent (VAR1 to VAR{slots})"
        ));
    }
    let mut variables = Vec::with_capacity(slots);
    for k in 1..=slots {
        let name = format!("VAR{k}");
        let Some(v) = obj.get(&name).and_then(Value::as_str) else {
            return Err(format!("{name} is missing or not text"));
        };
        let len = v.chars().count();
        if len > cap {
            return Err(format!(
                "{name} has {len} characters; a variable may have at most {cap}"
            ));
        }
        variables.push(v.to_string());
    }
    Ok(Recipient {
        mobiles: mobiles.to_string(),
        variables,
    })
}

/// How many `VARn` keys a recipient has.
fn var_count(obj: &Map<String, Value>) -> usize {
    obj.keys()
        .filter(|k| {
            k.strip_prefix("VAR")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count()
}

/// The registered text with `variables` in its slots, in order.
fn fill(registered: &str, variables: &[String]) -> String {
    let mut parts = registered.split(SLOT);
    let mut out = parts.next().unwrap_or_default().to_string();
    for (part, v) in parts.zip(
        variables
            .iter()
            .map(String::as_str)
            .chain(std::iter::repeat(SLOT)),
    ) {
        out.push_str(v);
        out.push_str(part);
    }
    out
}

/// A request id like MSG91's: 24 hex digits.
fn request_id() -> String {
    format!("{:024x}", rand::random::<u128>() >> 32)
}

/// What a report status is called in `desc`.
fn desc(status: u16) -> &'static str {
    match status {
        1 => "DELIVERED",
        9 => "NDNC",
        16 | 25 => "REJECTED",
        17 => "BLOCKED",
        _ => "FAILED",
    }
}

/// Posts one v2 (form-encoded) delivery report for the numbers of one request, retrying.
async fn post_report(sh: &Shared, url: &str, sent: &[SimDlt]) {
    let Some(first) = sent.first() else {
        return;
    };
    let when = Clock::System.now().format("%Y-%m-%d %H:%M:%S").to_string();
    let report: Vec<Value> = sent
        .iter()
        .map(|sms| {
            json!({
                "date": when,
                "number": sms.mobiles,
                "status": sms.report_status.to_string(),
                "desc": desc(sms.report_status),
                "failedReason": if sms.report_status == 1 { "" } else { desc(sms.report_status) },
            })
        })
        .collect();
    let data = json!([{
        "senderId": first.sender,
        "requestId": first.request_id,
        "report": report,
        "userId": "100001",
        "campaignName": "API",
    }]);
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("data", &data.to_string())
        .finish();
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=REPORT_ATTEMPTS {
        let resp = sh
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.clone())
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::debug!("sim: msg91 report attempt {attempt}: HTTP {}", r.status()),
            Err(e) => tracing::debug!("sim: msg91 report attempt {attempt}: {e}"),
        }
        if attempt < REPORT_ATTEMPTS && !sh.sleep(backoff).await {
            return;
        }
        backoff *= 2;
    }
    tracing::warn!(
        "sim: giving up on the MSG91 report of {} to {url}",
        first.request_id
    );
}

async fn list(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.state().msg91.messages.clone()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNumber {
    number: String,
    status: u16,
}

async fn fail_number(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FailNumber>(&body) {
        Ok(f) => {
            sh.state().msg91.fail.insert(digits(&f.number), f.status);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"number\": \"...\", \"status\": 17}}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_puts_variables_in_slot_order() {
        let t = "Dear {#var#}, on {#var#}.";
        assert_eq!(fill(t, &["A".into(), "B".into()]), "Dear A, on B.");
        assert_eq!(fill(t, &["A".into()]), "Dear A, on {#var#}.");
        assert_eq!(fill("no slots", &[]), "no slots");
    }

    #[test]
    fn recipients_are_checked_against_the_slots_and_the_cap() {
        let ok = json!({"mobiles": "919820012345", "VAR1": "a", "VAR2": "b"});
        assert_eq!(
            recipient(&ok, 2, 30).expect("no error").variables,
            ["a", "b"]
        );
        assert!(
            recipient(&ok, 3, 30)
                .expect_err("an error")
                .contains("3 variables")
        );
        let long = json!({"mobiles": "919820012345", "VAR1": "x".repeat(31)});
        assert!(
            recipient(&long, 1, 30)
                .expect_err("an error")
                .contains("31 characters")
        );
        let gap = json!({"mobiles": "919820012345", "VAR1": "a", "VAR3": "c"});
        assert!(
            recipient(&gap, 2, 30)
                .expect_err("an error")
                .contains("VAR2")
        );
        let bad = json!({"mobiles": "+919820012345", "VAR1": "a"});
        assert!(
            recipient(&bad, 1, 30)
                .expect_err("an error")
                .contains("mobile")
        );
        assert_eq!(request_id().len(), 24);
    }
}
