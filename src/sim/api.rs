//! The simulator's HTTP surface: the Graph send and catalogue endpoints, validated like the
//! Cloud API, and the `/_sim` control endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::conn::ConnInfo;
use super::webhook::StatusJob;
use super::{AcceptedMessage, Answer, Fault, Reply, Shared, SimError, SimTemplate, digits};
use crate::time::Clock;

/// Longest text body of a free-form message.
const TEXT_MAX: usize = 4096;
/// Longest hydrated template body.
const BODY_MAX: usize = 1024;
/// Longest hydrated template header.
const HEADER_MAX: usize = 60;
/// Default page size of the template catalogue.
const DEFAULT_LIMIT: usize = 25;
/// Prefix of the catalogue's paging cursors (they look like Meta's base64 ones).
const CURSOR_PREFIX: &str = "QVFIc2lt";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(super::msg91::routes())
        .route("/{version}/{node}", get(super::media::media_url))
        .route("/{version}/{node}/messages", post(send))
        .route(
            "/{version}/{node}/media",
            post(super::media::upload).layer(axum::extract::DefaultBodyLimit::max(
                super::media::MAX_SIM_MEDIA,
            )),
        )
        .route("/{version}/{node}/message_templates", get(templates))
        .route("/_sim/messages", get(list_messages).delete(clear_messages))
        .route("/_sim/attempts", get(list_attempts))
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", post(push_faults))
        .route("/_sim/reply", post(reply))
        .route("/_sim/fail_later", post(fail_later))
        .route("/_sim/template_status", post(template_status))
        .route(
            "/_sim/media",
            post(super::media::register).layer(axum::extract::DefaultBodyLimit::max(
                super::media::MAX_SIM_MEDIA,
            )),
        )
        .route(
            "/_sim/media/{id}",
            axum::routing::delete(super::media::expire),
        )
        .route(
            "/whatsapp_business/attachments/",
            get(super::media::download),
        )
        .fallback(unknown_path)
        .with_state(shared)
}

// ---- errors ------------------------------------------------------------------------------

/// A Graph API error: the HTTP status, the code and `error_data.details`.
#[derive(Debug)]
pub(crate) struct GraphError {
    http: u16,
    code: i64,
    details: String,
}

impl GraphError {
    pub(crate) fn new(code: i64, details: impl Into<String>) -> Self {
        Self {
            http: http_status(code),
            code,
            details: details.into(),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        graph_error(self.code, self.http, &self.details)
    }
}

fn fbtrace_id() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(27)
        .map(char::from)
        .collect()
}

/// The Graph error envelope.
fn graph_error(code: i64, http: u16, details: &str) -> Response {
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({
        "error": {
            "message": format!("(#{code}) {}", error_title(code)),
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": details },
            "fbtrace_id": fbtrace_id(),
        }
    });
    (status, axum::Json(body)).into_response()
}

/// 401 with code 190 and no `error_subcode`, as Graph answers a bad token.
pub(super) fn unauthorized() -> Response {
    let body = json!({
        "error": {
            "message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException",
            "code": 190,
            "fbtrace_id": fbtrace_id(),
        }
    });
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

/// An edge proxy's answer: the status with a small HTML page and no JSON.
fn bare_status(http: u16) -> Response {
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let html = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// Meta's HTTP status for an error code (its error table; 400 when unlisted).
fn http_status(code: i64) -> u16 {
    match code {
        0 | 190 => 401,
        10 | 200..=299 | 368 | 131_005 | 131_031 | 130_497 => 403,
        132_001 => 404,
        3 | 131_000 | 131_016 | 131_045 | 131_057 | 133_000 => 500,
        2 | 133_004 => 503,
        _ => 400,
    }
}

/// Meta's title for an error code.
pub(crate) fn error_title(code: i64) -> &'static str {
    match code {
        0 => "AuthException",
        1 => "API Unknown",
        2 => "API Service",
        3 => "API Method",
        4 => "API Too Many Calls",
        10 => "Permission Denied",
        100 => "Invalid parameter",
        190 => "Access token has expired",
        200..=299 => "API Permission",
        368 => "Temporarily blocked for policies violations",
        2500 => "Unknown path components",
        80_007 => "Rate limit issues",
        130_429 => "Rate limit hit",
        130_472 => "User's number is part of an experiment",
        130_497 => "Business account is restricted from messaging users in this country",
        131_000 => "Something went wrong",
        131_005 => "Access denied",
        131_008 => "Required parameter is missing",
        33 | 131_009 => "Parameter value is not valid",
        131_016 => "Service unavailable",
        131_021 => "Recipient cannot be sender",
        131_026 => "Message undeliverable",
        131_030 => "Recipient phone number not in allowed list",
        131_031 => "Account has been locked",
        131_042 => "Business eligibility payment issue",
        131_045 => "Incorrect certificate",
        131_047 => "Re-engagement message",
        131_048 => "Spam rate limit hit",
        131_049 => "This message was not delivered to maintain healthy ecosystem engagement.",
        131_050 => {
            "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business"
        }
        131_051 => "Unsupported message type",
        131_056 => "(Business Account, Consumer Account) pair rate limit hit",
        131_057 => "Account in maintenance mode",
        132_000 => "Number of parameters does not match the expected number of params",
        132_001 => "Template name does not exist in the translation",
        132_005 => "Template Hydrated Text Too Long",
        132_007 => "Template Format Character Policy Violated",
        132_008 => "Template Parameter Format Mismatch",
        132_012 => "Parameter format does not match format in the created template",
        132_015 => "Template is Paused",
        132_016 => "Template is Disabled",
        132_018 => "There's an issue with the parameters in your template.",
        133_004 => "Server Temporarily Unavailable",
        133_010 => "Phone number Not Registered",
        135_000 => "Generic user error",
        _ => "Simulated error",
    }
}

/// A plausible `error_data.details` for an injected or asynchronous error.
pub(crate) fn error_details(code: i64) -> String {
    match code {
        131_026 => "Message Undeliverable.".into(),
        131_047 => "Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into(),
        131_049 => "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.".into(),
        130_429 => "Message failed to send because there were too many messages sent from this phone number in a short period of time.".into(),
        131_056 => "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.".into(),
        132_015 => "The template has been paused due to low quality.".into(),
        _ => format!("{} (simulated)", error_title(code)),
    }
}

// ---- small helpers -----------------------------------------------------------------------

pub(super) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && t.trim() == token)
}

/// `v23.0` and the like.
pub(super) fn valid_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

pub(super) fn unknown_node(method: &str, node: &str) -> GraphError {
    GraphError::new(
        100,
        format!(
            "Unsupported {method} request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )
}

pub(super) fn bad_version(version: &str) -> GraphError {
    GraphError::new(2500, format!("Unknown path components: /{version}"))
}

async fn unknown_path() -> Response {
    GraphError::new(2500, "Unknown path components").into_response()
}

pub(crate) fn template_id(index: usize) -> String {
    (1_387_372_356_726_000_u64 + index as u64).to_string()
}

// ---- send --------------------------------------------------------------------------------

async fn send(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    Path((version, node)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Logged as unanswered until an answer is decided: a client that gives up during a slow
    // fault leaves it so.
    let seq = sh.begin_attempt(&body);
    let queued = sh.state().faults.pop_front();
    let fault = queued.or_else(|| sh.chaos_fault());
    let mut delay = sh.config.latency;
    if let Some(Fault::Slow(extra)) = &fault {
        delay += *extra;
    }
    if !delay.is_zero() && !sh.sleep(delay).await {
        sh.finish_attempt(
            seq,
            Answer::Error {
                http_status: 503,
                code: None,
            },
            &[],
        );
        return bare_status(503);
    }
    match fault {
        Some(Fault::Error { code, http_status }) => {
            let answer = Answer::Error {
                http_status,
                code: Some(code),
            };
            sh.finish_attempt(seq, answer, &[]);
            return graph_error(code, http_status, &error_details(code));
        }
        Some(Fault::BareStatus(status)) => {
            let answer = Answer::Error {
                http_status: status,
                code: None,
            };
            sh.finish_attempt(seq, answer, &[]);
            return bare_status(status);
        }
        _ => {}
    }
    let late = matches!(
        fault,
        Some(Fault::AcceptThenHang(_) | Fault::AcceptThenDrop)
    );
    let response = match accept(&sh, &version, &node, &headers, &body, seq, late) {
        Ok(r) => r,
        Err(rejected) => {
            sh.finish_attempt(seq, rejected.answer(), &[]);
            return rejected.into_response();
        }
    };
    match fault {
        Some(Fault::AcceptThenHang(d)) => {
            // The message is in; the answer comes too late (or never, on shutdown).
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

/// Why a send was refused.
enum Rejected {
    /// A Graph error.
    Graph(GraphError),
    /// A missing or wrong access token.
    Unauthorized,
}

impl From<GraphError> for Rejected {
    fn from(e: GraphError) -> Self {
        Self::Graph(e)
    }
}

impl Rejected {
    fn answer(&self) -> Answer {
        match self {
            Self::Graph(e) => Answer::Error {
                http_status: e.http,
                code: Some(e.code),
            },
            Self::Unauthorized => Answer::Error {
                http_status: 401,
                code: Some(190),
            },
        }
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Self::Graph(e) => e.into_response(),
            Self::Unauthorized => unauthorized(),
        }
    }
}

/// Checks and records one send (request `seq`; `late`: its response will not reach the
/// client in time).
fn accept(
    sh: &Arc<Shared>,
    version: &str,
    node: &str,
    headers: &HeaderMap,
    body: &[u8],
    seq: u64,
    late: bool,
) -> Result<Response, Rejected> {
    if !valid_version(version) {
        return Err(bad_version(version).into());
    }
    let Some(line) = sh.config.line(node) else {
        // Meta checks the token before the node: a bad token is 401 on any path.
        if !authorized(headers, &sh.config.access_token) {
            return Err(Rejected::Unauthorized);
        }
        return Err(unknown_node("post", node).into());
    };
    if !authorized(headers, line.access_token) {
        return Err(Rejected::Unauthorized);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| GraphError::new(100, format!("Request body is not valid JSON: {e}")))?;

    let now = Instant::now();
    let (send, wamid, fail_code) = {
        let mut st = sh.state();
        let send = validate(&value, &st.templates, &st.media)?;
        let Send::Message(msg) = send else {
            drop(st);
            sh.finish_attempt(seq, Answer::Success, &[]);
            return Ok(axum::Json(json!({ "success": true })).into_response());
        };
        // Meta keeps the throughput and the pair limit per business number.
        let number = line.phone_number_id.to_string();
        if let Some(max) = line.max_per_sec {
            let recent = st.recent.entry(number.clone()).or_default();
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                recent.pop_front();
            }
            if recent.len() >= max as usize {
                return Err(GraphError::new(130_429, error_details(130_429)).into());
            }
        }
        let pair_key = (number.clone(), msg.digits.clone());
        if let Some(pair) = sh.config.pair_limit
            && st
                .last_to
                .get(&pair_key)
                .is_some_and(|t| now.duration_since(*t) < pair)
        {
            return Err(GraphError::new(131_056, error_details(131_056)).into());
        }
        let wamid = sh.wamid(&msg.digits);
        st.recent.entry(number.clone()).or_default().push_back(now);
        st.last_to.insert(pair_key, now);
        st.messages.push(AcceptedMessage {
            wamid: wamid.clone(),
            body: value,
            received_at: Clock::System.now(),
            phone_number_id: number.clone(),
        });
        let fail_code = st.fail_later.get(&msg.digits).copied();
        (msg, wamid, fail_code)
    };

    let mut message = json!({ "id": wamid });
    if send.category.is_some() {
        message["message_status"] = json!("accepted");
    }
    let response = json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": send.to, "wa_id": send.digits }],
        "messages": [message],
    });
    let statuses = if sh.config.webhook_url.is_some() {
        sh.plan_statuses(fail_code.is_some())
    } else {
        Vec::new()
    };
    let answer = if late {
        Answer::Late {
            wamid: wamid.clone(),
        }
    } else {
        Answer::Accepted {
            wamid: wamid.clone(),
        }
    };
    sh.finish_attempt(seq, answer, &statuses);
    if !statuses.is_empty() {
        let job = StatusJob {
            wamid,
            recipient: send.digits,
            callback: send.callback,
            category: send.category,
            fail_code,
            statuses,
            phone_number_id: line.phone_number_id.to_string(),
        };
        sh.spawn_statuses(job);
    }
    Ok(axum::Json(response).into_response())
}

/// A valid send request.
enum Send {
    /// A message to deliver.
    Message(Outgoing),
    /// A "mark as read" call: answered `{"success":true}`, not recorded.
    MarkRead,
}

struct Outgoing {
    /// `to` as sent.
    to: String,
    digits: String,
    callback: Option<String>,
    /// The template's category in lower case; `None` for free-form messages.
    category: Option<String>,
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn validate(
    v: &Value,
    templates: &[SimTemplate],
    media: &std::collections::HashMap<String, super::media::Stored>,
) -> Result<Send, GraphError> {
    if !v.is_object() {
        return Err(GraphError::new(
            100,
            "The request body must be a JSON object.",
        ));
    }
    match v.get("messaging_product") {
        None => {
            return Err(GraphError::new(
                100,
                "The parameter messaging_product is required.",
            ));
        }
        Some(p) if p.as_str() != Some("whatsapp") => {
            return Err(GraphError::new(
                100,
                format!("Param messaging_product must be one of {{WHATSAPP}} - got {p}."),
            ));
        }
        Some(_) => {}
    }
    if str_field(v, "status") == Some("read") {
        return match str_field(v, "message_id") {
            Some(id) if id.starts_with("wamid.") => Ok(Send::MarkRead),
            Some(id) => Err(GraphError::new(100, format!("Invalid message_id {id:?}."))),
            None => Err(GraphError::new(
                100,
                "The parameter message_id is required.",
            )),
        };
    }
    if let Some(rt) = v.get("recipient_type")
        && rt.as_str() != Some("individual")
    {
        return Err(GraphError::new(
            100,
            format!("Param recipient_type must be individual in the simulator - got {rt}."),
        ));
    }
    let to = match v.get("to") {
        None => return Err(GraphError::new(100, "The parameter to is required.")),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(GraphError::new(
                100,
                format!("Param to must be a string - got {other}."),
            ));
        }
    };
    let number = to.strip_prefix('+').unwrap_or(&to);
    if !(7..=15).contains(&number.len())
        || !number.bytes().all(|b| b.is_ascii_digit())
        || number.starts_with('0')
    {
        return Err(GraphError::new(
            131_009,
            format!(
                "Invalid phone number {to:?}: give digits in international format, optionally with a leading +."
            ),
        ));
    }
    let callback = match v.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(GraphError::new(
                100,
                format!("Param biz_opaque_callback_data must be a string - got {other}."),
            ));
        }
    };
    if let Some(ctx) = v.get("context")
        && str_field(ctx, "message_id").is_none()
    {
        return Err(GraphError::new(
            100,
            "Param context['message_id'] is required.",
        ));
    }
    let kind = match v.get("type") {
        None => "text",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(GraphError::new(
                100,
                format!("Param type must be a string - got {other}."),
            ));
        }
    };
    let category = match kind {
        "template" => Some(validate_template(v.get("template"), templates)?),
        "text" => {
            validate_text(v.get("text"))?;
            None
        }
        "interactive" => {
            validate_interactive(v.get("interactive"))?;
            None
        }
        "document" => {
            super::media::check_document(v.get("document"), media)?;
            None
        }
        other => {
            return Err(GraphError::new(
                131_051,
                format!(
                    "Message type {other:?} is not supported by the simulator (template, text, interactive, document)."
                ),
            ));
        }
    };
    Ok(Send::Message(Outgoing {
        digits: number.to_string(),
        to,
        callback,
        category,
    }))
}

fn validate_text(text: Option<&Value>) -> Result<(), GraphError> {
    let Some(body) = text.and_then(|t| t.get("body")) else {
        return Err(GraphError::new(
            100,
            "The parameter text['body'] is required.",
        ));
    };
    let Some(body) = body.as_str() else {
        return Err(GraphError::new(100, "Param text['body'] must be a string."));
    };
    if body.trim().is_empty() {
        return Err(GraphError::new(
            100,
            "Param text['body'] must not be empty.",
        ));
    }
    let len = body.chars().count();
    if len > TEXT_MAX {
        return Err(GraphError::new(
            100,
            format!("Param text['body'] must be at most {TEXT_MAX} characters long (got {len})."),
        ));
    }
    Ok(())
}

fn validate_interactive(interactive: Option<&Value>) -> Result<(), GraphError> {
    let Some(i) = interactive.filter(|i| i.is_object()) else {
        return Err(GraphError::new(
            100,
            "The parameter interactive is required.",
        ));
    };
    match str_field(i, "type") {
        Some("button") => {}
        Some("list") => return validate_list(i),
        // Accepted without checking their content: the daemon doesn't send these.
        Some(
            "cta_url"
            | "flow"
            | "product"
            | "product_list"
            | "location_request_message"
            | "address_message",
        ) => return Ok(()),
        Some(other) => {
            return Err(GraphError::new(
                100,
                format!("Param interactive['type'] {other:?} is not valid."),
            ));
        }
        None => {
            return Err(GraphError::new(
                100,
                "The parameter interactive['type'] is required.",
            ));
        }
    }
    let body = i.get("body").and_then(|b| str_field(b, "text"));
    match body {
        None => {
            return Err(GraphError::new(
                100,
                "The parameter interactive['body']['text'] is required.",
            ));
        }
        Some(b) if b.chars().count() > BODY_MAX => {
            return Err(GraphError::new(
                131_009,
                format!("Body text length invalid. Min length: 1, Max length: {BODY_MAX}"),
            ));
        }
        Some(_) => {}
    }
    if let Some(footer) = i.get("footer").and_then(|f| str_field(f, "text"))
        && footer.chars().count() > 60
    {
        return Err(GraphError::new(
            131_009,
            "Footer text length invalid. Min length: 1, Max length: 60",
        ));
    }
    let Some(buttons) = i
        .get("action")
        .and_then(|a| a.get("buttons"))
        .and_then(Value::as_array)
    else {
        return Err(GraphError::new(
            100,
            "The parameter interactive['action']['buttons'] is required.",
        ));
    };
    if buttons.is_empty() || buttons.len() > 3 {
        return Err(GraphError::new(
            131_009,
            format!(
                "Param interactive['action']['buttons'] must have between 1 and 3 elements (got {}).",
                buttons.len()
            ),
        ));
    }
    let mut titles: Vec<&str> = Vec::new();
    let mut ids: Vec<&str> = Vec::new();
    for (n, b) in buttons.iter().enumerate() {
        if str_field(b, "type") != Some("reply") {
            return Err(GraphError::new(
                100,
                format!("Param interactive['action']['buttons'][{n}]['type'] must be reply."),
            ));
        }
        let reply = b.get("reply");
        let id = reply.and_then(|r| str_field(r, "id")).unwrap_or_default();
        let title = reply
            .and_then(|r| str_field(r, "title"))
            .unwrap_or_default();
        if id.is_empty() || id.chars().count() > 256 {
            return Err(GraphError::new(
                131_009,
                "Button id length invalid. Min length: 1, Max length: 256",
            ));
        }
        if title.trim().is_empty() || title.chars().count() > 20 {
            return Err(GraphError::new(
                131_009,
                "Button title length invalid. Min length: 1, Max length: 20",
            ));
        }
        if titles.contains(&title) {
            return Err(GraphError::new(131_009, "Duplicate button title."));
        }
        if ids.contains(&id) {
            return Err(GraphError::new(131_009, "Duplicate button id."));
        }
        titles.push(title);
        ids.push(id);
    }
    Ok(())
}

/// Checks an interactive list as the Cloud API does: a body, a button label of up to 20
/// characters, 1 to 10 rows in all, each with a unique id and a title of up to 24 characters.
fn validate_list(i: &Value) -> Result<(), GraphError> {
    let invalid = |m: String| Err(GraphError::new(131_009, m));
    match i.get("body").and_then(|b| str_field(b, "text")) {
        Some(b) if !b.trim().is_empty() && b.chars().count() <= 4096 => {}
        _ => {
            return Err(GraphError::new(
                100,
                "The parameter interactive['body']['text'] is required.",
            ));
        }
    }
    let action = i.get("action");
    match action.and_then(|a| str_field(a, "button")) {
        Some(b) if !b.trim().is_empty() && b.chars().count() <= 20 => {}
        _ => return invalid("Button label length invalid. Min length: 1, Max length: 20".into()),
    }
    let Some(sections) = action
        .and_then(|a| a.get("sections"))
        .and_then(Value::as_array)
        .filter(|s| !s.is_empty() && s.len() <= 10)
    else {
        return invalid(
            "Param interactive['action']['sections'] must have between 1 and 10 elements.".into(),
        );
    };
    let mut ids: Vec<&str> = Vec::new();
    for section in sections {
        let rows = section.get("rows").and_then(Value::as_array);
        for row in rows.into_iter().flatten() {
            let id = str_field(row, "id").unwrap_or_default();
            let title = str_field(row, "title").unwrap_or_default();
            if id.is_empty() || id.chars().count() > 200 {
                return invalid("Row id length invalid. Min length: 1, Max length: 200".into());
            }
            if title.trim().is_empty() || title.chars().count() > 24 {
                return invalid("Row title length invalid. Min length: 1, Max length: 24".into());
            }
            if str_field(row, "description").is_some_and(|d| d.chars().count() > 72) {
                return invalid("Row description length invalid. Max length: 72".into());
            }
            if ids.contains(&id) {
                return invalid("Duplicate row id.".into());
            }
            ids.push(id);
        }
    }
    if ids.is_empty() || ids.len() > 10 {
        return invalid(format!(
            "A list must have between 1 and 10 rows in all (got {}).",
            ids.len()
        ));
    }
    Ok(())
}

/// Checks a template send and returns the template's category in lower case.
fn validate_template(
    template: Option<&Value>,
    templates: &[SimTemplate],
) -> Result<String, GraphError> {
    let Some(t) = template.filter(|t| t.is_object()) else {
        return Err(GraphError::new(
            131_008,
            "The parameter template is required.",
        ));
    };
    let Some(name) = str_field(t, "name") else {
        return Err(GraphError::new(
            131_008,
            "The parameter template['name'] is required.",
        ));
    };
    let Some(language) = t.get("language").and_then(|l| str_field(l, "code")) else {
        return Err(GraphError::new(
            131_008,
            "The parameter template['language']['code'] is required.",
        ));
    };
    let Some(def) = templates
        .iter()
        .find(|d| d.name == name && d.language == language)
    else {
        return Err(GraphError::new(
            132_001,
            format!("template name ({name}) does not exist in {language}"),
        ));
    };
    match def.status.to_ascii_uppercase().as_str() {
        "APPROVED" => {}
        "PAUSED" => {
            return Err(GraphError::new(
                132_015,
                format!("Template {name} ({language}) is paused due to low quality."),
            ));
        }
        "DISABLED" => {
            return Err(GraphError::new(
                132_016,
                format!("Template {name} ({language}) has been disabled."),
            ));
        }
        other => {
            return Err(GraphError::new(
                132_001,
                format!("template name ({name}) is {other} in {language}, not approved"),
            ));
        }
    }

    let components = match t.get("components") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(GraphError::new(
                100,
                "Param template['components'] must be an array.",
            ));
        }
    };
    let mut header: Option<Vec<&str>> = None;
    let mut body: Option<Vec<&str>> = None;
    let mut buttons_seen: Vec<usize> = Vec::new();
    for c in components {
        let kind = str_field(c, "type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        match kind.as_str() {
            "header" | "body" => {
                let slot = if kind == "header" {
                    &mut header
                } else {
                    &mut body
                };
                if slot.is_some() {
                    return Err(GraphError::new(
                        131_009,
                        format!("Duplicate {kind} component."),
                    ));
                }
                *slot = Some(text_params(&kind, c)?);
            }
            "button" => {
                let index = quick_reply(c, def)?;
                if buttons_seen.contains(&index) {
                    return Err(GraphError::new(
                        131_009,
                        format!("Duplicate button component at index {index}."),
                    ));
                }
                buttons_seen.push(index);
            }
            "" => {
                return Err(GraphError::new(
                    131_008,
                    "The parameter template['components'][]['type'] is required.",
                ));
            }
            other => {
                return Err(GraphError::new(
                    100,
                    format!("Invalid component type {other:?}: use header, body or button."),
                ));
            }
        }
    }

    let header = header.unwrap_or_default();
    let body = body.unwrap_or_default();
    for (component, given, expected) in [
        ("header", header.len(), def.header_params),
        ("body", body.len(), def.body_params()),
    ] {
        if given != expected {
            return Err(GraphError::new(
                132_000,
                format!(
                    "{component}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
                ),
            ));
        }
    }
    for (component, params) in [("header", &header), ("body", &body)] {
        for (n, p) in params.iter().enumerate() {
            if p.trim().is_empty() {
                return Err(GraphError::new(
                    132_000,
                    format!("{component}: parameter {} is empty", n + 1),
                ));
            }
            if p.contains(['\n', '\r', '\t']) || p.contains("     ") {
                return Err(GraphError::new(
                    132_018,
                    "Param text cannot have new-line/tab characters or more than 4 consecutive spaces",
                ));
            }
        }
    }
    let header_len: usize =
        header.iter().map(|p| p.chars().count()).sum::<usize>() + header.len().saturating_sub(1);
    if header_len > HEADER_MAX {
        return Err(GraphError::new(
            132_005,
            format!("header: hydrated text is {header_len} characters; the limit is {HEADER_MAX}"),
        ));
    }
    let hydrated = hydrate(&def.body_text, &body).chars().count();
    if hydrated > BODY_MAX {
        return Err(GraphError::new(
            132_005,
            format!("body: hydrated text is {hydrated} characters; the limit is {BODY_MAX}"),
        ));
    }
    Ok(def.category.to_ascii_lowercase())
}

/// The text parameters of a header or body component.
fn text_params<'a>(kind: &str, c: &'a Value) -> Result<Vec<&'a str>, GraphError> {
    let params = match c.get("parameters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(GraphError::new(
                100,
                format!("Param {kind}['parameters'] must be an array."),
            ));
        }
    };
    params
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let n = n + 1;
            if p.get("parameter_name").is_some() {
                return Err(GraphError::new(
                    132_012,
                    format!(
                        "{kind}: parameter {n} is named but the template uses POSITIONAL parameters"
                    ),
                ));
            }
            match str_field(p, "type") {
                Some("text") => {}
                Some(other) => {
                    return Err(GraphError::new(
                        132_012,
                        format!(
                            "{kind}: parameter {n} has type {other}; the template expects text"
                        ),
                    ));
                }
                None => {
                    return Err(GraphError::new(
                        131_008,
                        format!("{kind}: parameter {n} has no type"),
                    ));
                }
            }
            str_field(p, "text").ok_or_else(|| {
                GraphError::new(131_008, format!("{kind}: parameter {n} has no text"))
            })
        })
        .collect()
}

/// Checks a quick-reply button component and returns its index.
fn quick_reply(c: &Value, def: &SimTemplate) -> Result<usize, GraphError> {
    let sub_type = str_field(c, "sub_type").unwrap_or_default();
    let index = match c.get("index") {
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        None => {
            return Err(GraphError::new(
                131_008,
                "The parameter template['components'][]['index'] is required for buttons.",
            ));
        }
        Some(_) => None,
    };
    let Some(index) = index else {
        return Err(GraphError::new(
            100,
            "Param template['components'][]['index'] must be a non-negative integer.",
        ));
    };
    if !sub_type.eq_ignore_ascii_case("quick_reply") {
        return Err(GraphError::new(
            131_009,
            format!("Button at index {index} of type {sub_type:?} does not exist."),
        ));
    }
    if index >= def.quick_replies.len() {
        return Err(GraphError::new(
            131_009,
            format!(
                "Button at index {index} of type Quickreply does not exist; the template has {} quick-reply button(s).",
                def.quick_replies.len()
            ),
        ));
    }
    let params = c
        .get("parameters")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [p] = params else {
        return Err(GraphError::new(
            132_000,
            format!(
                "button at index {index}: number of localizable_params ({}) does not match the expected number of params (1)",
                params.len()
            ),
        ));
    };
    if str_field(p, "type") != Some("payload") {
        return Err(GraphError::new(
            132_012,
            format!("button at index {index}: a quick-reply parameter must have type payload"),
        ));
    }
    match str_field(p, "payload") {
        Some(payload) if !payload.is_empty() => Ok(index),
        _ => Err(GraphError::new(
            131_008,
            format!("button at index {index}: the parameter payload is required"),
        )),
    }
}

/// `text` with `{{n}}` replaced by `params[n-1]`.
fn hydrate(text: &str, params: &[&str]) -> String {
    let mut out = text.to_string();
    for (n, p) in params.iter().enumerate().rev() {
        out = out.replace(&format!("{{{{{}}}}}", n + 1), p);
    }
    out
}

// ---- template catalogue ------------------------------------------------------------------

fn cursor(position: usize) -> String {
    format!("{CURSOR_PREFIX}{position:06}")
}

fn parse_cursor(c: &str) -> Option<usize> {
    c.strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

fn catalogue_entry(index: usize, t: &SimTemplate) -> Value {
    let mut components = Vec::new();
    if t.header_params > 0 {
        let text = (1..=t.header_params)
            .map(|n| format!("{{{{{n}}}}}"))
            .collect::<Vec<_>>()
            .join(" ");
        let example: Vec<String> = (1..=t.header_params)
            .map(|n| format!("header {n}"))
            .collect();
        components.push(json!({
            "type": "HEADER", "format": "TEXT", "text": text,
            "example": { "header_text": example },
        }));
    }
    let mut body = json!({ "type": "BODY", "text": t.body_text });
    let params = t.body_params();
    if params > 0 {
        let example: Vec<String> = (1..=params).map(|n| format!("example {n}")).collect();
        body["example"] = json!({ "body_text": [example] });
    }
    components.push(body);
    if !t.quick_replies.is_empty() {
        let buttons: Vec<Value> = t
            .quick_replies
            .iter()
            .map(|label| json!({ "type": "QUICK_REPLY", "text": label }))
            .collect();
        components.push(json!({ "type": "BUTTONS", "buttons": buttons }));
    }
    let mut entry = json!({
        "id": template_id(index),
        "name": t.name,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "parameter_format": "POSITIONAL",
        "components": components,
    });
    if let Some(ttl) = t.ttl_seconds {
        entry["message_send_ttl_seconds"] = json!(ttl);
    }
    entry
}

async fn templates(
    State(sh): State<Arc<Shared>>,
    Path((version, node)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
) -> Response {
    if !valid_version(&version) {
        return bad_version(&version).into_response();
    }
    // Each business account's catalogue, read with the token of one of its numbers.
    let lines: Vec<_> = sh.config.lines().collect();
    if !lines.iter().any(|l| authorized(&headers, l.access_token)) {
        return unauthorized();
    }
    if !lines.iter().any(|l| l.waba_id == node) {
        return unknown_node("get", &node).into_response();
    }
    if !lines
        .iter()
        .any(|l| l.waba_id == node && authorized(&headers, l.access_token))
    {
        // Another business's token.
        return unauthorized();
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(l)) if (1..=1000).contains(&l) => l,
        Some(_) => {
            return GraphError::new(100, "Param limit must be between 1 and 1000.").into_response();
        }
    };
    let start = match query.get("after").map(|c| parse_cursor(c)) {
        None => 0,
        Some(Some(position)) => position + 1,
        Some(None) => {
            return GraphError::new(100, "Invalid cursor in param after.").into_response();
        }
    };
    let status_filter: Option<Vec<String>> = query.get("status").map(|s| {
        s.split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .collect()
    });
    let name_filter = query.get("name");

    let (data, total) = {
        let st = sh.state();
        let matching: Vec<(usize, &SimTemplate)> = st
            .templates
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                status_filter
                    .as_ref()
                    .is_none_or(|f| f.contains(&t.status.to_ascii_uppercase()))
                    && name_filter.is_none_or(|n| t.name.contains(n.as_str()))
            })
            .collect();
        let data: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|(i, t)| catalogue_entry(*i, t))
            .collect();
        (data, matching.len())
    };

    let mut out = json!({ "data": data });
    if !data.is_empty() {
        let last = start + data.len() - 1;
        out["paging"] = json!({ "cursors": { "before": cursor(start), "after": cursor(last) } });
        if last + 1 < total {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map_or_else(|| sh.addr.to_string(), str::to_string);
            let kept: Vec<&str> = raw
                .as_deref()
                .unwrap_or_default()
                .split('&')
                .filter(|kv| {
                    let key = kv.split('=').next().unwrap_or_default();
                    !kv.is_empty() && !matches!(key, "after" | "before" | "limit")
                })
                .collect();
            let mut q = kept.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            out["paging"]["next"] = json!(format!(
                "http://{host}/{version}/{node}/message_templates?{q}limit={limit}&after={}",
                cursor(last)
            ));
        }
    }
    axum::Json(out).into_response()
}

// ---- /_sim control -----------------------------------------------------------------------

async fn list_messages(State(sh): State<Arc<Shared>>) -> Response {
    let messages = sh.state().messages.clone();
    axum::Json(messages).into_response()
}

async fn clear_messages(State(sh): State<Arc<Shared>>) -> StatusCode {
    let mut st = sh.state();
    st.messages.clear();
    st.attempts.clear();
    StatusCode::NO_CONTENT
}

async fn list_attempts(State(sh): State<Arc<Shared>>) -> Response {
    let attempts = sh.state().attempts.clone();
    axum::Json(attempts).into_response()
}

async fn stats(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(sh.stats()).into_response()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Fault>),
    One(Fault),
}

fn bad_request(msg: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": msg.into() })),
    )
        .into_response()
}

async fn push_faults(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::Many(f)) => f,
        Ok(OneOrMany::One(f)) => vec![f],
        Err(e) => return bad_request(format!("not a fault or a list of faults: {e}")),
    };
    sh.state().faults.extend(faults);
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /{version}/{phone_number_id}`: the number's standing, as its own token reads it; only
/// the `fields` asked for (and `id`), as the Graph API answers.
pub(crate) fn phone_number(
    line: super::Line<'_>,
    version: &str,
    fields: Option<&String>,
    headers: &HeaderMap,
) -> Response {
    if !authorized(headers, line.access_token) {
        return unauthorized();
    }
    if !valid_version(version) {
        return bad_version(version).into_response();
    }
    let level = if line.max_per_sec.is_some_and(|m| m > 80) {
        "HIGH"
    } else {
        "STANDARD"
    };
    let all = json!({
        "display_phone_number": format!("+{}", line.display_phone_number),
        "verified_name": "Sim Clinic",
        "quality_rating": line.quality_rating,
        "throughput": { "level": level },
        "whatsapp_business_manager_messaging_limit": line.messaging_limit,
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
    });
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(line.phone_number_id));
    let wanted: Vec<&str> = fields.map_or_else(
        || vec!["display_phone_number", "verified_name", "quality_rating"],
        |f| f.split(',').map(str::trim).collect(),
    );
    for f in wanted {
        match all.get(f) {
            Some(v) => {
                out.insert(f.to_string(), v.clone());
            }
            None if f == "id" => {}
            None => {
                return GraphError::new(
                    100,
                    format!("(#100) Tried accessing nonexisting field ({f}) on node type (WhatsAppBusinessPhoneNumber)"),
                )
                .into_response();
            }
        }
    }
    axum::Json(Value::Object(out)).into_response()
}

/// `?to=` names the business number the patient writes to (default: the main one).
#[derive(Deserialize)]
struct ReplyTo {
    to: Option<String>,
}

async fn reply(
    State(sh): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<ReplyTo>,
    body: Bytes,
) -> Response {
    let reply: Reply = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("not a reply: {e}")),
    };
    sim_result(
        sh.reply_on(&reply, q.to.as_deref())
            .await
            .map(|id| json!({ "id": id })),
    )
}

fn sim_result(r: Result<Value, SimError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(
            e @ (SimError::NoWebhookUrl | SimError::NoTwilioInboundUrl | SimError::ShuttingDown),
        ) => (
            StatusCode::CONFLICT,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        Err(
            e @ (SimError::BadNumber(_)
            | SimError::UnknownNumber(_)
            | SimError::UnknownTemplate { .. }),
        ) => bad_request(e.to_string()),
        Err(e @ SimError::Delivery { .. }) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailLater {
    to: String,
    code: i64,
}

async fn fail_later(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FailLater>(&body) {
        Ok(f) => {
            sh.state().fail_later.insert(digits(&f.to), f.code);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!(
            "expected {{\"to\": \"...\", \"code\": 131026}}: {e}"
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateStatus {
    name: String,
    language: String,
    status: String,
}

async fn template_status(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<TemplateStatus>(&body) {
        Ok(t) => sim_result(
            sh.announce_template_status(&t.name, &t.language, &t.status)
                .await
                .map(|()| json!({ "success": true })),
        ),
        Err(e) => bad_request(format!(
            "expected {{\"name\", \"language\", \"status\"}}: {e}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::placeholders;

    #[test]
    fn versions() {
        assert!(valid_version("v23.0"));
        assert!(valid_version("v9.12"));
        assert!(!valid_version("23.0"));
        assert!(!valid_version("v23"));
        assert!(!valid_version("v.0"));
        assert!(!valid_version("vx.0"));
    }

    #[test]
    fn hydrate_and_count() {
        assert_eq!(placeholders("a {{1}} b {{3}} {{2}}"), 3);
        assert_eq!(placeholders("none {{x}}"), 0);
        assert_eq!(hydrate("{{1}}-{{2}}-{{1}}", &["a", "b"]), "a-b-a");
        // The placeholder {{1}} is not a prefix match inside {{10}}.
        let params: Vec<String> = (1..=10).map(|n| format!("p{n}")).collect();
        let refs: Vec<&str> = params.iter().map(String::as_str).collect();
        assert_eq!(hydrate("{{1}} {{10}}", &refs), "p1 p10");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor(&cursor(17)), Some(17));
        assert_eq!(parse_cursor("garbage"), None);
    }
}
