//! MSG91's flow API (India, DLT): the send request, its errors, and the delivery-report webhook.
//!
//! The only code that knows MSG91's wire format. A send names the MSG91 template (mapped in
//! MSG91's panel to the DLT Content Template ID, the sender header and the Principal Entity)
//! and carries the variables as `VAR1`..`VARn`, in the order of the template's `{#var#}`
//! slots: the MSG91 template's variables must be named that way [unverified: MSG91's samples
//! use these names; the panel lets the administrator choose them]. MSG91 builds the text
//! itself, so the text we hold is what it delivers only if `dlt::matches` passed.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{Accepted, DeliveryReport, Outgoing, SmsClass, SmsError};
use crate::config;
use crate::model::OutboxState;

/// MSG91's code for a bad auth key (also its HTTP status) [official sample body].
pub const AUTH_FAILURE: i64 = 401;
/// Older MSG91 API codes still seen in answers [secondary: MSG91's legacy error table]:
/// invalid mobile number.
pub const INVALID_MOBILE: i64 = 202;
/// Invalid sender ID.
pub const INVALID_SENDER: i64 = 203;
/// Invalid authentication key.
pub const INVALID_AUTH_KEY: i64 = 207;
/// IP blacklisted.
pub const IP_BLACKLISTED: i64 = 208;
/// Insufficient balance.
pub const NO_BALANCE: i64 = 301;
/// Expired account.
pub const EXPIRED_ACCOUNT: i64 = 302;
/// Banned account.
pub const BANNED_ACCOUNT: i64 = 303;
/// The same request twice within 10 seconds: the second is discarded.
pub const DUPLICATE: i64 = 311;
/// IP not whitelisted.
pub const IP_NOT_WHITELISTED: i64 = 418;

/// The MSG91 client (reqwest with rustls, explicit timeouts).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    sender: String,
    auth_key: SecretString,
}

impl Client {
    /// A client for the configured account; `auth_key` is MSG91's `authkey`.
    pub fn new(cfg: &config::Msg91, auth_key: SecretString) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .user_agent(concat!("reminderd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for MSG91: {e}"))?;
        Ok(Self {
            http,
            base: cfg.api_base.trim_end_matches('/').to_string(),
            sender: cfg.sender.clone(),
            auth_key,
        })
    }

    /// Sends one DLT message through `POST {api_base}/api/v5/flow`. A message without a DLT
    /// template is refused before anything is sent.
    pub async fn send(&self, msg: &Outgoing) -> Result<Accepted, SmsError> {
        let body = flow_request(msg, &self.sender)?;
        let resp = self
            .http
            .post(format!("{}/api/v5/flow", self.base))
            .header("authkey", self.auth_key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SmsError::Ambiguous(format!("the response was cut off: {e}")))?;
        read_answer(status, &bytes)
    }
}

/// The flow request body: `{template_id, sender, short_url, recipients: [{mobiles, VAR1..}]}`.
fn flow_request(msg: &Outgoing, sender: &str) -> Result<Value, SmsError> {
    let dlt = msg
        .dlt
        .as_ref()
        .ok_or_else(|| SmsError::Refused("no DLT template for this text".into()))?;
    if dlt.template_id.trim().is_empty() {
        return Err(SmsError::Refused(
            "the DLT template id for this text is empty".into(),
        ));
    }
    let mut recipient = Map::new();
    // E.164 without the '+', as MSG91 wants it ("91XXXXXXXXXX").
    let mobiles: String = msg.to.as_str().trim_start_matches('+').to_string();
    recipient.insert("mobiles".into(), Value::String(mobiles));
    for (k, v) in dlt.variables.iter().enumerate() {
        recipient.insert(format!("VAR{}", k + 1), Value::String(v.clone()));
    }
    let mut body = Map::new();
    body.insert("template_id".into(), Value::String(dlt.template_id.clone()));
    body.insert("sender".into(), Value::String(sender.to_string()));
    // No link shortening: a shortened link is not the whitelisted one and DLT blocks it.
    body.insert("short_url".into(), Value::String("0".into()));
    body.insert(
        "recipients".into(),
        Value::Array(vec![Value::Object(recipient)]),
    );
    Ok(Value::Object(body))
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(transport_error)
fn transport_error(e: reqwest::Error) -> SmsError {
    // Only a failure to connect proves MSG91 never saw the request; anything later (a
    // timeout waiting for the answer, a reset) may follow an accepted message.
    if e.is_connect() || e.is_builder() {
        SmsError::NotSent(e.to_string())
    } else {
        SmsError::Ambiguous(e.to_string())
    }
}

/// Reads MSG91's answer: `{"type":"success","message":"<request id>"}` or
/// `{"type":"error","message":…, "code":…}` (the code is sometimes a string, sometimes
/// absent, and an error may come with HTTP 200 [unverified]).
fn read_answer(status: u16, body: &[u8]) -> Result<Accepted, SmsError> {
    let parsed: Option<Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let kind = parsed
        .as_ref()
        .and_then(|m| m.get("type"))
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    let message = parsed
        .as_ref()
        .and_then(|m| m.get("message"))
        .map(text)
        .unwrap_or_default();
    match (kind.as_deref(), (200..300).contains(&status)) {
        (Some("success"), true) if !message.trim().is_empty() => Ok(Accepted {
            id: message.trim().to_string(),
            segments: None,
        }),
        (Some("success"), true) => Err(SmsError::Ambiguous(format!(
            "HTTP {status}: MSG91 said success without a request id"
        ))),
        (Some("error"), _) => {
            let code = parsed
                .as_ref()
                .and_then(|m| m.get("code"))
                .and_then(number)
                .unwrap_or(if status >= 400 { i64::from(status) } else { 0 });
            Err(SmsError::Api {
                http_status: status,
                code,
                message: if message.is_empty() {
                    "MSG91 gave no reason".into()
                } else {
                    message
                },
            })
        }
        (_, true) => Err(SmsError::Ambiguous(format!(
            "HTTP {status} with an answer that is not MSG91's: {}",
            snippet(body)
        ))),
        (_, false) => Err(SmsError::Http {
            status,
            snippet: snippet(body),
        }),
    }
}

/// A JSON value as text: strings as they are, anything else as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A JSON number or a string of digits, as MSG91 writes codes and statuses.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(120)])
        .trim()
        .to_string()
}

/// What an MSG91 error means for the message and the account.
///
/// The account's own problems (auth key, IP whitelist, balance, an unknown or unmapped
/// template, the sender header) stop sending until an administrator acts: `Operator`. MSG91's
/// messages are matched by words where no code is given [unverified: MSG91 documents few of
/// its v5 error bodies]. An ambiguous send is not retried: the flow API has no idempotency key.
pub fn class(err: &SmsError) -> SmsClass {
    match err {
        SmsError::Api {
            http_status,
            code,
            message,
        } => api_class(*http_status, *code, message),
        SmsError::Http { status: 429, .. } => SmsClass::Throttled,
        SmsError::Http { status, .. } if *status >= 500 => SmsClass::Retry,
        SmsError::Http {
            status: 401 | 403, ..
        }
        | SmsError::Refused(_) => SmsClass::Operator,
        SmsError::NotSent(_) => SmsClass::Retry,
        SmsError::Http { .. } | SmsError::Ambiguous(_) => SmsClass::Terminal,
    }
}

fn api_class(http_status: u16, code: i64, message: &str) -> SmsClass {
    match code {
        AUTH_FAILURE | INVALID_AUTH_KEY | IP_BLACKLISTED | IP_NOT_WHITELISTED | NO_BALANCE
        | EXPIRED_ACCOUNT | BANNED_ACCOUNT | INVALID_SENDER => return SmsClass::Operator,
        INVALID_MOBILE => return SmsClass::BadNumber,
        DUPLICATE => return SmsClass::Terminal,
        429 => return SmsClass::Throttled,
        _ => {}
    }
    let m = message.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|w| m.contains(w));
    if has(&[
        "auth",
        "template",
        "dlt",
        "sender",
        "balance",
        "credit",
        "whitelist",
        "blacklist",
        "account",
        "flow",
    ]) {
        SmsClass::Operator
    } else if has(&["mobile", "number"]) {
        SmsClass::BadNumber
    } else if http_status == 429 || has(&["too many", "rate limit", "throttl"]) {
        SmsClass::Throttled
    } else if http_status == 401 || http_status == 403 {
        SmsClass::Operator
    } else if http_status >= 500 {
        SmsClass::Retry
    } else {
        SmsClass::Terminal
    }
}

// ---- delivery reports -----------------------------------------------------------------------

/// The delivery reports of one webhook call, each read on its own: one bad item costs only
/// itself, never the rest of the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    /// The reports that could be read, in the order they came.
    pub reports: Vec<DeliveryReport>,
    /// One line per item that could not be read, saying why (its count is how many were
    /// lost; log them).
    pub unreadable: Vec<String>,
}

/// Reads a delivery-report webhook body. MSG91 posts, by the version chosen in its panel
/// [official help page]: v2, form-encoded `data=[{requestId, senderId, report:[{number,
/// status, desc, failedReason, date}]}]` (the value of `data` is a JSON string); v3, JSON, one
/// object per number `{requestId, number, status, desc, …}`. Both are read, as is v2's array
/// posted as JSON or under a JSON `data` key. v4 (CleverTap's shape) carries no request id and
/// cannot be matched to a message: choose v2 or v3.
///
/// `Err` only when the body as a whole is unreadable (not form-encoded with `data`, not JSON).
pub fn read_reports(content_type: &str, body: &[u8]) -> Result<Reports, String> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let json = match media.as_str() {
        "application/json" | "text/json" => true,
        "application/x-www-form-urlencoded" => false,
        _ => matches!(first, Some(b'{' | b'[')),
    };
    let root: Value = if json {
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?
    } else {
        let data = form_urlencoded::parse(body)
            .find(|(k, _)| k == "data")
            .map(|(_, v)| v.into_owned())
            .ok_or("the form has no \"data\" field")?;
        serde_json::from_str(&data).map_err(|e| format!("\"data\" is not JSON: {e}"))?
    };
    let root = match root {
        Value::Object(mut m) if !m.contains_key("requestId") && m.contains_key("data") => {
            match m.remove("data").unwrap_or_default() {
                Value::String(s) => {
                    serde_json::from_str(&s).map_err(|e| format!("\"data\" is not JSON: {e}"))?
                }
                other => other,
            }
        }
        other => other,
    };
    let items = match root {
        Value::Array(items) => items,
        Value::Object(_) => vec![root],
        _ => return Err("the body is neither a list of reports nor a report".into()),
    };
    let mut out = Reports::default();
    for (k, item) in items.iter().enumerate() {
        read_item(k, item, &mut out);
    }
    Ok(out)
}

/// One `{requestId, report: [...]}` (v2) or `{requestId, number, status, …}` (v3).
fn read_item(k: usize, item: &Value, out: &mut Reports) {
    let Some(obj) = item.as_object() else {
        out.unreadable
            .push(format!("item {}: not an object", k + 1));
        return;
    };
    let id = obj
        .get("requestId")
        .or_else(|| obj.get("request_id"))
        .map(text)
        .unwrap_or_default();
    if id.trim().is_empty() {
        out.unreadable.push(format!(
            "item {}: no requestId to match it to a message",
            k + 1
        ));
        return;
    }
    match obj.get("report") {
        Some(Value::Array(numbers)) => {
            if numbers.is_empty() {
                out.unreadable
                    .push(format!("request {id}: an empty report list"));
            }
            for n in numbers {
                match n.as_object() {
                    Some(n) => out.reports.push(report(&id, n)),
                    None => out
                        .unreadable
                        .push(format!("request {id}: a report that is not an object")),
                }
            }
        }
        Some(_) => out
            .unreadable
            .push(format!("request {id}: \"report\" is not a list")),
        None => out.reports.push(report(&id, obj)),
    }
}

/// One number's report.
fn report(id: &str, n: &Map<String, Value>) -> DeliveryReport {
    let status = n.get("status").and_then(number);
    let desc = n
        .get("desc")
        .or_else(|| n.get("description"))
        .map(text)
        .unwrap_or_default();
    let reason = n.get("failedReason").map(text).unwrap_or_default();
    let (state, why) = match status {
        Some(s) => state_of(s),
        None => (None, None),
    };
    // Without a known status code, the words: DELIVERED, FAILED, REJECTED [unverified].
    let state = state.or_else(|| match desc.trim().to_ascii_uppercase().as_str() {
        "DELIVERED" => Some(OutboxState::Delivered),
        "FAILED" | "REJECTED" | "BLOCKED" | "NDNC" => Some(OutboxState::Failed),
        _ => None,
    });
    let failed = state == Some(OutboxState::Failed);
    let error = failed.then(|| {
        let words = [why.unwrap_or_default(), desc.trim(), reason.trim()];
        let mut seen: Vec<&str> = Vec::new();
        for w in words {
            if !w.is_empty() && !seen.iter().any(|s| s.eq_ignore_ascii_case(w)) {
                seen.push(w);
            }
        }
        if seen.is_empty() {
            "failed".to_string()
        } else {
            seen.join(": ")
        }
    });
    DeliveryReport {
        id: id.to_string(),
        state,
        error_code: if failed { status } else { None },
        error,
    }
}

/// MSG91's DLR status codes [official help page: 1 delivered, 2 failed, 9 NDNC, 16 and 25
/// rejected, 17 blocked number]; any other code is a state we do not track.
fn state_of(status: i64) -> (Option<OutboxState>, Option<&'static str>) {
    match status {
        1 => (Some(OutboxState::Delivered), None),
        2 => (Some(OutboxState::Failed), Some("failed")),
        9 => (
            Some(OutboxState::Failed),
            Some("the number is on India's do-not-disturb registry (NDNC)"),
        ),
        16 | 25 => (Some(OutboxState::Failed), Some("rejected")),
        17 => (Some(OutboxState::Failed), Some("the number is blocked")),
        _ => (None, None),
    }
}

/// Whether the delivery-report URL carried the configured token (`?token=`): MSG91 signs
/// nothing, so the URL's secret is the only proof the call came from it. Compared in
/// constant time; an empty expected token never matches.
pub fn webhook_token_ok(given: Option<&str>, expected: &[u8]) -> bool {
    match given {
        Some(g) if !expected.is_empty() => crate::server::constant_time_eq(g.as_bytes(), expected),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::{E164, Region};
    use crate::sms::DltFilled;

    fn outgoing(dlt: Option<DltFilled>) -> Outgoing {
        Outgoing {
            to: E164::parse("+91 98200 12345", "IN".parse::<Region>().expect("no error"))
                .expect("no error"),
            text: "Dear Aarav, see you".into(),
            dlt,
            validity: None,
            reference: "7".into(),
        }
    }

    #[test]
    fn the_flow_request_has_msg91s_shape() {
        let body = flow_request(
            &outgoing(Some(DltFilled {
                template_id: "1207161234567890123".into(),
                variables: vec!["Aarav".into(), "10:30 AM".into()],
            })),
            "SUNRSE",
        )
        .expect("no error");
        assert_eq!(
            body,
            serde_json::json!({
                "template_id": "1207161234567890123",
                "sender": "SUNRSE",
                "short_url": "0",
                "recipients": [{"mobiles": "919820012345", "VAR1": "Aarav", "VAR2": "10:30 AM"}],
            })
        );
        let e = flow_request(&outgoing(None), "SUNRSE").expect_err("an error");
        assert_eq!(e, SmsError::Refused("no DLT template for this text".into()));
        assert_eq!(class(&e), SmsClass::Operator);
    }

    #[test]
    fn answers_are_read_and_errors_classified() {
        let ok = read_answer(
            200,
            br#"{"type":"success","message":"3365646f3132333435363738"}"#,
        );
        assert_eq!(ok.expect("no error").id, "3365646f3132333435363738");
        let auth = read_answer(
            401,
            br#"{"type":"error","message":"AuthenticationFailure","code":"401"}"#,
        )
        .expect_err("an error");
        assert_eq!(auth.code(), Some(401));
        assert_eq!(class(&auth), SmsClass::Operator);
        let tpl = read_answer(400, br#"{"type":"error","message":"Template not found"}"#)
            .expect_err("an error");
        assert_eq!(tpl.code(), Some(400));
        assert_eq!(class(&tpl), SmsClass::Operator);
        let mobile = read_answer(
            200,
            br#"{"type":"error","message":"Invalid mobile number"}"#,
        )
        .expect_err("an error");
        assert_eq!(class(&mobile), SmsClass::BadNumber);
        let bare = read_answer(502, b"<html>Bad Gateway</html>").expect_err("an error");
        assert!(matches!(bare, SmsError::Http { status: 502, .. }));
        assert_eq!(class(&bare), SmsClass::Retry);
        assert_eq!(
            class(&read_answer(429, b"").expect_err("an error")),
            SmsClass::Throttled
        );
        assert!(matches!(
            read_answer(200, b"ok"),
            Err(SmsError::Ambiguous(_))
        ));
        assert!(matches!(
            read_answer(200, br#"{"type":"success"}"#),
            Err(SmsError::Ambiguous(_))
        ));
        assert_eq!(
            class(&SmsError::Ambiguous(String::new())),
            SmsClass::Terminal
        );
        assert_eq!(class(&SmsError::NotSent(String::new())), SmsClass::Retry);
    }

    const V2: &str = r#"[{"senderId":"SUNRSE","requestId":"r1","report":[{"date":"2024-05-22 10:06:20","number":"919820012345","status":"1","desc":"DELIVERED","failedReason":""}],"userId":"1","campaignName":"API"},{"requestId":"r2","report":[{"number":"919820012346","status":"17","desc":"BLOCKED","failedReason":"Blocked number"}]}]"#;

    #[test]
    fn v2_form_reports_are_read() {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("data", V2)
            .finish();
        let r =
            read_reports("application/x-www-form-urlencoded", body.as_bytes()).expect("no error");
        assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
        assert_eq!(r.reports.len(), 2);
        assert_eq!(r.reports[0].id, "r1");
        assert_eq!(r.reports[0].state, Some(OutboxState::Delivered));
        assert_eq!(r.reports[0].error, None);
        assert_eq!(r.reports[1].state, Some(OutboxState::Failed));
        assert_eq!(r.reports[1].error_code, Some(17));
        assert_eq!(
            r.reports[1].error.as_deref(),
            Some("the number is blocked: BLOCKED: Blocked number")
        );
    }

    #[test]
    fn json_reports_are_read_in_every_shape() {
        let v3 = br#"{"requestId":"r3","number":"919820012345","status":"2","desc":"FAILED"}"#;
        let r = read_reports("application/json", v3).expect("no error");
        assert_eq!(r.reports[0].state, Some(OutboxState::Failed));
        assert_eq!(r.reports[0].error_code, Some(2));
        let r = read_reports("application/json; charset=utf-8", V2.as_bytes()).expect("no error");
        assert_eq!(r.reports.len(), 2);
        let wrapped = serde_json::json!({ "data": V2 }).to_string();
        let r = read_reports("", wrapped.as_bytes()).expect("no error");
        assert_eq!(r.reports.len(), 2);
        let unknown = br#"{"requestId":"r4","status":"26","desc":"SUBMITTED"}"#;
        let r = read_reports("application/json", unknown).expect("no error");
        assert_eq!(r.reports[0].state, None);
        assert_eq!(r.reports[0].error_code, None);
    }

    #[test]
    fn a_bad_item_costs_only_itself() {
        let body = br#"[{"requestId":"ok","status":1},{"status":1},7,{"requestId":"x","report":"no"},{"requestId":"y","report":[3,{"status":"1"}]}]"#;
        let r = read_reports("application/json", body).expect("no error");
        assert_eq!(
            r.reports.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["ok", "y"]
        );
        assert_eq!(r.unreadable.len(), 4, "{:?}", r.unreadable);
        assert!(read_reports("application/json", b"nope").is_err());
        assert!(read_reports("application/x-www-form-urlencoded", b"x=1").is_err());
        assert!(read_reports("application/x-www-form-urlencoded", b"data=%5B1").is_err());
        assert!(read_reports("application/json", b"42").is_err());
        assert!(read_reports("", &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn webhook_tokens_compare_whole() {
        assert!(webhook_token_ok(Some("s3cret"), b"s3cret"));
        assert!(!webhook_token_ok(Some("s3cre"), b"s3cret"));
        assert!(!webhook_token_ok(Some("s3cret!"), b"s3cret"));
        assert!(!webhook_token_ok(None, b"s3cret"));
        assert!(!webhook_token_ok(Some(""), b""));
    }
}
