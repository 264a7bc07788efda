//! Twilio Programmable Messaging: the send request, its errors, status callbacks, inbound texts and `X-Twilio-Signature`.
//!
//! The only code that knows Twilio's wire format. A send is one form POST to
//! `{api_base}/2010-04-01/Accounts/{sid}/Messages.json` with Basic auth; status callbacks and
//! inbound texts arrive as form posts signed with HMAC-SHA1 over the public URL and the sorted
//! parameters (`../shared/channels.md` §1.3 has the algorithm and its sources).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha1::Sha1;

use super::{Accepted, DeliveryReport, InboundSms, OptOutType, Outgoing, SmsClass, SmsError};
use crate::config;
use crate::model::OutboxState;

/// Twilio's longest `ValidityPeriod`, in seconds (10 hours).
pub const MAX_VALIDITY_SECS: u64 = 36_000;

/// Where status callbacks go, below the public URL.
pub const STATUS_PATH: &str = "/twilio/status";

/// Where inbound texts are configured to go, below the public URL.
pub const INBOUND_PATH: &str = "/twilio/inbound";

/// The Twilio REST client for one account.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    sender: Sender,
    status_callback: String,
    token: SecretString,
}

/// Who sends: a number, or a Messaging Service (which picks the number and applies Advanced
/// Opt-Out).
#[derive(Debug, Clone)]
enum Sender {
    From(String),
    Service(String),
}

/// `url` without a trailing slash, then `path`.
fn join(url: &str, path: &str) -> String {
    format!("{}{path}", url.trim_end_matches('/'))
}

/// The status-callback URL for a public URL: what Twilio posts to and signs.
pub fn status_url(public_url: &str) -> String {
    join(public_url, STATUS_PATH)
}

/// The inbound-text URL for a public URL: what to enter in Twilio's console, and what it signs.
pub fn inbound_url(public_url: &str) -> String {
    join(public_url, INBOUND_PATH)
}

impl Client {
    /// A client for the configured account; `Err` says why it cannot be built.
    pub fn new(cfg: &config::Twilio, auth_token: SecretString) -> Result<Self, String> {
        // A Messaging Service is preferred when both are set: it is what applies Advanced
        // Opt-Out and the sender pool.
        let sender = match (&cfg.messaging_service_sid, &cfg.from) {
            (Some(sid), _) => Sender::Service(sid.clone()),
            (None, Some(from)) => Sender::From(from.clone()),
            (None, None) => {
                return Err("Twilio needs a sending number or a Messaging Service SID".into());
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .user_agent(concat!("reminderd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Self {
            http,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                cfg.api_base.trim_end_matches('/'),
                cfg.account_sid
            ),
            account_sid: cfg.account_sid.clone(),
            sender,
            status_callback: status_url(&cfg.public_url),
            token: auth_token,
        })
    }

    /// The form parameters of a send, in the order they are written.
    fn form(&self, msg: &Outgoing) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", msg.to.as_str().to_string())];
        match &self.sender {
            Sender::From(from) => form.push(("From", from.clone())),
            Sender::Service(sid) => form.push(("MessagingServiceSid", sid.clone())),
        }
        form.push(("Body", msg.text.clone()));
        form.push(("StatusCallback", self.status_callback.clone()));
        if let Some(v) = msg.validity {
            form.push(("ValidityPeriod", validity_secs(v).to_string()));
        }
        form
    }

    /// Sends one text.
    pub async fn send(&self, msg: &Outgoing) -> Result<Accepted, SmsError> {
        let resp = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(self.token.expose_secret()))
            .form(&self.form(msg))
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SmsError::Ambiguous(format!("the response was cut off: {e}")))?;
        if status.is_success() {
            return accepted(status.as_u16(), &body);
        }
        Err(api_error(status.as_u16(), &body))
    }
}

/// Seconds for `ValidityPeriod`: Twilio takes 1 to 36,000.
fn validity_secs(d: Duration) -> u64 {
    d.as_secs().clamp(1, MAX_VALIDITY_SECS)
}

/// The part of a message resource we read.
#[derive(Deserialize)]
struct MessageResource {
    sid: Option<String>,
    num_segments: Option<serde_json::Value>,
}

/// Reads a 2xx answer: the message's sid, or `Ambiguous` (it may have been taken).
fn accepted(status: u16, body: &[u8]) -> Result<Accepted, SmsError> {
    let parsed: MessageResource = serde_json::from_slice(body)
        .map_err(|e| SmsError::Ambiguous(format!("HTTP {status} with an unreadable body: {e}")))?;
    let id = parsed
        .sid
        .filter(|s| !s.is_empty())
        .ok_or_else(|| SmsError::Ambiguous(format!("HTTP {status} without a message sid")))?;
    // Twilio writes the count as a string ("1"); accept a number too.
    let segments = match parsed.num_segments {
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    };
    Ok(Accepted { id, segments })
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(transport_error)
fn transport_error(e: reqwest::Error) -> SmsError {
    // Only a failure to connect proves Twilio never saw the request; anything later (a
    // timeout waiting for the answer, a reset) may follow an accepted message.
    if e.is_connect() || e.is_builder() {
        SmsError::NotSent(e.to_string())
    } else {
        SmsError::Ambiguous(e.to_string())
    }
}

/// Twilio's error body: `{code, message, more_info, status}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    message: String,
}

fn api_error(status: u16, body: &[u8]) -> SmsError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => SmsError::Api {
            http_status: status,
            code: e.code,
            message: e.message,
        },
        Err(_) => SmsError::Http {
            status,
            snippet: String::from_utf8_lossy(&body[..body.len().min(120)])
                .trim()
                .to_string(),
        },
    }
}

// ---- what an error means ------------------------------------------------------------------

/// What a Twilio error code means for the message and the number, when the code alone says
/// (a send's error or a status callback's `ErrorCode`).
pub fn class_of_code(code: i64) -> Option<SmsClass> {
    Some(match code {
        21_211 | 21_612 | 21_614 | 21_635 | 30_005 | 30_006 => SmsClass::BadNumber,
        21_610 => SmsClass::OptedOut,
        30_003 | 30_008 => SmsClass::RetryOnce,
        30_007 => SmsClass::Filtered,
        // 20404 on a send means the account in the URL does not exist.
        20_003 | 20_404 | 21_408 | 21_608 | 21_901 => SmsClass::Operator,
        20_429 | 30_001 => SmsClass::Throttled,
        _ => return None,
    })
}

/// What a send error means for the message and the number.
pub fn class(err: &SmsError) -> SmsClass {
    match err {
        SmsError::Api {
            code, http_status, ..
        } => class_of_code(*code).unwrap_or(match http_status {
            429 => SmsClass::Throttled,
            500..=599 => SmsClass::Retry,
            _ => SmsClass::Terminal,
        }),
        SmsError::Http { status: 429, .. } => SmsClass::Throttled,
        SmsError::Http { .. } | SmsError::NotSent(_) => SmsClass::Retry,
        SmsError::Refused(_) => SmsClass::Operator,
        // Dispatch treats an unknown outcome on its own (the message may be out).
        SmsError::Ambiguous(_) => SmsClass::Terminal,
    }
}

/// A short sentence for staff about a common Twilio error code.
pub fn describe(code: i64) -> Option<&'static str> {
    Some(match code {
        21_211 => "not a valid mobile number",
        21_612 => "the carrier cannot take texts to this number",
        21_614 | 21_635 | 30_006 => "the number cannot receive SMS (a landline?)",
        21_610 => "the patient unsubscribed from our texts (STOP)",
        30_003 => "the phone was off or out of reach",
        30_004 => "the number blocked our texts",
        30_005 => "the number is unknown to the carrier (no longer in use?)",
        30_007 => "the carrier blocked the text as spam",
        30_008 => "the carrier could not deliver the text (unknown error)",
        30_001 => "too many texts were waiting at Twilio, so this one was dropped",
        30_036 => "the text expired before the phone could take it",
        20_003 => "Twilio refused the account's credentials (an administrator must check them)",
        20_404 => "Twilio does not know the account (an administrator must check its SID)",
        21_408 => "texts to this country are not enabled on the Twilio account",
        21_608 => "the Twilio account is a trial and this number is not verified on it",
        20_429 => "Twilio asked us to slow down",
        _ => return None,
    })
}

/// The staff sentence for `code`, or "Twilio error N".
fn error_text(code: i64) -> String {
    describe(code).map_or_else(|| format!("Twilio error {code}"), str::to_string)
}

// ---- webhooks ------------------------------------------------------------------------------

/// The first non-empty value of the first of `names` that has one.
fn param<'p>(params: &'p [(String, String)], names: &[&str]) -> Option<&'p str> {
    names.iter().find_map(|name| {
        params
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// Reads a status callback's form parameters.
pub fn read_status(params: &[(String, String)]) -> Result<DeliveryReport, String> {
    let id = param(params, &["MessageSid", "SmsSid"])
        .ok_or("a status callback without MessageSid or SmsSid")?
        .to_string();
    let status = param(params, &["MessageStatus", "SmsStatus"])
        .ok_or_else(|| format!("status callback for {id} without MessageStatus or SmsStatus"))?;
    let (state, mut error) = match status {
        "queued" | "accepted" | "scheduled" | "sending" => (None, None),
        // Some segments arrived; Twilio does not say the text is whole on the phone.
        "sent" | "partially_delivered" => (Some(OutboxState::Sent), None),
        "delivered" => (Some(OutboxState::Delivered), None),
        "read" => (Some(OutboxState::Read), None),
        "failed" | "undelivered" => (Some(OutboxState::Failed), None),
        "canceled" => (
            Some(OutboxState::Failed),
            Some("the text was canceled before it was sent".to_string()),
        ),
        other => {
            return Err(format!(
                "status callback for {id} with an unknown status {other:?}"
            ));
        }
    };
    let raw_code = param(params, &["ErrorCode"]);
    let error_code = raw_code.and_then(|c| c.trim().parse::<i64>().ok());
    match (raw_code, error_code) {
        (_, Some(code)) => error = Some(error_text(code)),
        (Some(raw), None) => error = Some(format!("Twilio error {raw:?}")),
        (None, None) if state == Some(OutboxState::Failed) && error.is_none() => {
            error = Some(format!(
                "Twilio reported the text {status} without a reason"
            ));
        }
        (None, None) => {}
    }
    Ok(DeliveryReport {
        id,
        state,
        error_code,
        error,
    })
}

/// Reads an inbound text's form parameters.
pub fn read_inbound(params: &[(String, String)]) -> Result<InboundSms, String> {
    let id = param(params, &["MessageSid", "SmsMessageSid", "SmsSid"])
        .ok_or("an inbound text without MessageSid")?
        .to_string();
    let from = param(params, &["From"])
        .ok_or_else(|| format!("inbound text {id} without From"))?
        .to_string();
    // An empty Body is a text (a picture message without words); a missing one is not.
    let body = params
        .iter()
        .find(|(k, _)| k == "Body")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("inbound text {id} without Body"))?;
    let opt_out = match param(params, &["OptOutType"]).map(str::to_ascii_uppercase) {
        Some(t) if t == "STOP" => Some(OptOutType::Stop),
        Some(t) if t == "START" => Some(OptOutType::Start),
        Some(t) if t == "HELP" => Some(OptOutType::Help),
        _ => None,
    };
    Ok(InboundSms {
        id,
        from,
        body,
        opt_out,
    })
}

// ---- X-Twilio-Signature ---------------------------------------------------------------------

/// The string Twilio signs: the URL, then each parameter's name and value, sorted by name then
/// value in byte order, identical pairs once (as twilio-python's validator does).
fn signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut data = String::with_capacity(url.len() + 32 * pairs.len());
    data.push_str(url);
    for (k, v) in pairs {
        data.push_str(k);
        data.push_str(v);
    }
    data
}

fn mac(data: &str, auth_token: &[u8]) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac
}

/// `X-Twilio-Signature` for a form post to `url`: base64 of HMAC-SHA1 keyed with the auth token.
pub fn signature(url: &str, params: &[(String, String)], auth_token: &[u8]) -> String {
    BASE64.encode(
        mac(&signed_data(url, params), auth_token)
            .finalize()
            .into_bytes(),
    )
}

/// `url` with its default port toggled (`:443` for https, `:80` for http: added when absent,
/// removed when present); `None` for another port or a URL that is not http(s).
fn port_variant(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port is after the last ':' that follows any userinfo and IPv6 brackets.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let after_brackets = authority[host_start..]
        .rfind(']')
        .map_or(host_start, |i| host_start + i + 1);
    match authority[after_brackets..].rfind(':') {
        Some(i) => {
            let colon = after_brackets + i;
            (&authority[colon + 1..] == default)
                .then(|| format!("{scheme}://{}{tail}", &authority[..colon]))
        }
        None => Some(format!("{scheme}://{authority}:{default}{tail}")),
    }
}

/// Whether `header` is Twilio's signature of a form post to `url` with `params`: with or
/// without the default port, compared in constant time; a missing header is refused.
pub fn verify(
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
    auth_token: &[u8],
) -> bool {
    let Some(Ok(expected)) = header.map(|h| BASE64.decode(h.trim())) else {
        return false;
    };
    let matches = |u: &str| {
        mac(&signed_data(u, params), auth_token)
            .verify_slice(&expected)
            .is_ok()
    };
    matches(url) || port_variant(url).is_some_and(|u| matches(&u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::E164;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn cfg(from: Option<&str>, service: Option<&str>, public_url: &str) -> config::Twilio {
        config::Twilio {
            api_base: "https://api.twilio.com/".into(),
            account_sid: "AC123".into(),
            from: from.map(str::to_string),
            messaging_service_sid: service.map(str::to_string),
            public_url: public_url.into(),
            rate_limit_per_sec: 1,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            texts: std::collections::BTreeMap::new(),
        }
    }

    fn outgoing(validity: Option<Duration>) -> Outgoing {
        Outgoing {
            to: E164::from_stored("+15551234567".into()),
            text: "Reply 1 to confirm".into(),
            dlt: None,
            validity,
            reference: "7".into(),
        }
    }

    // Expected signatures were computed independently with python3's hmac, hashlib.sha1 and
    // base64, following twilio-python's validator (sorted names, sorted distinct values).

    #[test]
    fn twilio_documented_example_signature() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature(url, &params, b"12345"),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(verify(
            url,
            &params,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            b"12345"
        ));
    }

    #[test]
    fn status_callback_signature_and_refusals() {
        let sid = "SM0123456789abcdef0123456789abcdef";
        let params = p(&[
            ("MessageSid", sid),
            ("MessageStatus", "delivered"),
            ("AccountSid", "ACsim0000000000000000000000000000"),
            ("To", "+15551234567"),
            ("From", "+15557654321"),
            ("ApiVersion", "2010-04-01"),
            ("SmsSid", sid),
            ("SmsStatus", "delivered"),
        ]);
        let url = "https://reminders.example.org/twilio/status";
        let good = "nIOGxreF1rTPs1t8nQPjD+/LD5Y=";
        let token = b"sim-twilio-token";
        assert_eq!(signature(url, &params, token), good);
        assert!(verify(url, &params, Some(good), token));
        assert!(
            !verify(url, &params, Some(good), b"another-token"),
            "wrong token"
        );
        let mut changed = params.clone();
        changed[1].1 = "undelivered".into();
        assert!(!verify(url, &changed, Some(good), token), "changed param");
        let mut added = params.clone();
        added.push(("ErrorCode".into(), "30003".into()));
        assert!(!verify(url, &added, Some(good), token), "added param");
        assert!(!verify(url, &params, None, token), "missing header");
        assert!(!verify(url, &params, Some(""), token), "empty header");
        assert!(!verify(url, &params, Some("not base64!"), token));
        assert!(
            !verify(&format!("{url}/"), &params, Some(good), token),
            "other URL"
        );
    }

    #[test]
    fn query_string_and_repeated_names() {
        let params = p(&[
            ("To", "+15551234567"),
            ("Tag", "b"),
            ("Tag", "a"),
            ("Body", "hi"),
        ]);
        let url = "https://example.org/twilio/inbound?clinic=ny%20east&x=1";
        let good = "1aMM5aEyb29z9C8UI2kkfkYXoYI=";
        assert_eq!(signature(url, &params, b"12345"), good);
        // The order parameters arrive in does not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        assert!(verify(url, &reversed, Some(good), b"12345"));
        // The query is signed as sent, still encoded.
        let decoded = "https://example.org/twilio/inbound?clinic=ny east&x=1";
        assert!(!verify(decoded, &params, Some(good), b"12345"));
    }

    #[test]
    fn default_ports_are_accepted_both_ways() {
        let params = p(&[
            ("MessageSid", "SMaaa"),
            ("From", "+919820012345"),
            ("Body", "नमस्ते 1"),
        ]);
        let with_443 = "VlYGE40WHH6nHw5lyWPxOHGIWdw=";
        let without_443 = "sjpMbH4GrXA3gjrFPilg8puotjI=";
        let with_80 = "Jr0fx3TFusUFnON+hdC0A3t1aFE=";
        let without_80 = "DpIcklQ9pzNA7ereb0Zjmn+feDE=";
        let https = "https://example.org/twilio/inbound";
        let https_443 = "https://example.org:443/twilio/inbound";
        let http = "http://example.org/twilio/inbound";
        let http_80 = "http://example.org:80/twilio/inbound";
        assert_eq!(signature(https_443, &params, b"12345"), with_443);
        assert_eq!(signature(https, &params, b"12345"), without_443);
        assert_eq!(signature(http_80, &params, b"12345"), with_80);
        assert_eq!(signature(http, &params, b"12345"), without_80);
        for (url, sig) in [
            (https, with_443),
            (https, without_443),
            (https_443, with_443),
            (https_443, without_443),
            (http, with_80),
            (http, without_80),
            (http_80, with_80),
            (http_80, without_80),
        ] {
            assert!(verify(url, &params, Some(sig), b"12345"), "{url} {sig}");
        }
        // Another scheme's default port is not the same URL.
        assert!(!verify(https, &params, Some(with_80), b"12345"));
        assert!(!verify(http, &params, Some(with_443), b"12345"));
    }

    #[test]
    fn port_variants() {
        let v = |u: &str| port_variant(u);
        assert_eq!(
            v("https://a.org/x?y=1").as_deref(),
            Some("https://a.org:443/x?y=1")
        );
        assert_eq!(v("https://a.org:443/x").as_deref(), Some("https://a.org/x"));
        assert_eq!(v("http://a.org").as_deref(), Some("http://a.org:80"));
        assert_eq!(v("http://a.org:80?q").as_deref(), Some("http://a.org?q"));
        assert_eq!(v("https://a.org:8443/x"), None);
        assert_eq!(v("https://[::1]/x").as_deref(), Some("https://[::1]:443/x"));
        assert_eq!(
            v("https://u:pw@a.org/x").as_deref(),
            Some("https://u:pw@a.org:443/x")
        );
        assert_eq!(v("ftp://a.org/x"), None);
        assert_eq!(v("not a url"), None);
    }

    #[test]
    fn send_form_carries_sender_callback_and_clamped_validity() {
        let token = SecretString::from("t");
        let c = Client::new(
            &cfg(Some("+15557654321"), None, "https://r.example.org/"),
            token,
        )
        .expect("client");
        assert_eq!(
            c.messages_url,
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let form = c.form(&outgoing(Some(Duration::from_secs(7200))));
        let expected = [
            ("To", "+15551234567"),
            ("From", "+15557654321"),
            ("Body", "Reply 1 to confirm"),
            ("StatusCallback", "https://r.example.org/twilio/status"),
            ("ValidityPeriod", "7200"),
        ];
        let got: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, expected);
        let names =
            |f: Vec<(&'static str, String)>| f.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert!(!names(c.form(&outgoing(None))).contains(&"ValidityPeriod"));
        let long = c.form(&outgoing(Some(Duration::from_secs(86_400))));
        assert_eq!(long[4], ("ValidityPeriod", "36000".to_string()));
        let short = c.form(&outgoing(Some(Duration::from_millis(200))));
        assert_eq!(short[4], ("ValidityPeriod", "1".to_string()));

        let svc = Client::new(
            &cfg(Some("+1555"), Some("MG9"), "https://r.example.org"),
            SecretString::from("t"),
        )
        .expect("client");
        let form = svc.form(&outgoing(None));
        assert_eq!(form[1], ("MessagingServiceSid", "MG9".to_string()));
        assert!(!form.iter().any(|(k, _)| *k == "From"));
        assert_eq!(form[3].1, "https://r.example.org/twilio/status");
        assert!(Client::new(&cfg(None, None, "https://r"), SecretString::from("t")).is_err());
    }

    #[test]
    fn answers_are_read_as_accepted_or_errors() {
        let ok = br#"{"sid":"SMabc","status":"queued","num_segments":"2","error_code":null}"#;
        assert_eq!(
            accepted(201, ok),
            Ok(Accepted {
                id: "SMabc".into(),
                segments: Some(2)
            })
        );
        let numeric = br#"{"sid":"SMabc","num_segments":3}"#;
        assert_eq!(accepted(201, numeric).map(|a| a.segments), Ok(Some(3)));
        assert!(matches!(accepted(201, b"{}"), Err(SmsError::Ambiguous(_))));
        assert!(matches!(
            accepted(200, b"<html>"),
            Err(SmsError::Ambiguous(_))
        ));

        let body = br#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let e = api_error(400, body);
        assert_eq!(e.code(), Some(21_211));
        assert!(matches!(
            e,
            SmsError::Api {
                http_status: 400,
                ..
            }
        ));
        assert_eq!(class(&e), SmsClass::BadNumber);
        let bare = api_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(
            bare,
            SmsError::Http {
                status: 502,
                snippet: "<html>Bad Gateway</html>".into()
            }
        );
        assert_eq!(class(&bare), SmsClass::Retry);
    }

    #[test]
    fn error_codes_are_classified_as_the_reference_says() {
        let api = |code, http_status| SmsError::Api {
            http_status,
            code,
            message: String::new(),
        };
        for code in [21_211, 21_614, 21_612, 21_635, 30_005, 30_006] {
            assert_eq!(class(&api(code, 400)), SmsClass::BadNumber, "{code}");
        }
        assert_eq!(class(&api(21_610, 400)), SmsClass::OptedOut);
        assert_eq!(class(&api(30_003, 400)), SmsClass::RetryOnce);
        assert_eq!(class(&api(30_008, 400)), SmsClass::RetryOnce);
        assert_eq!(class(&api(30_007, 400)), SmsClass::Filtered);
        for code in [20_003, 21_408, 21_608, 21_901, 20_404] {
            assert_eq!(class(&api(code, 401)), SmsClass::Operator, "{code}");
        }
        assert_eq!(class(&api(20_429, 429)), SmsClass::Throttled);
        assert_eq!(class(&api(99_999, 429)), SmsClass::Throttled);
        assert_eq!(class(&api(20_500, 500)), SmsClass::Retry);
        assert_eq!(class(&api(21_602, 400)), SmsClass::Terminal);
        let http = |status| SmsError::Http {
            status,
            snippet: String::new(),
        };
        assert_eq!(class(&http(503)), SmsClass::Retry);
        assert_eq!(class(&http(429)), SmsClass::Throttled);
        assert_eq!(class(&SmsError::NotSent(String::new())), SmsClass::Retry);
        assert_eq!(class(&SmsError::Refused(String::new())), SmsClass::Operator);
        assert_eq!(
            class(&SmsError::Ambiguous(String::new())),
            SmsClass::Terminal
        );
        assert_eq!(
            describe(21_610),
            Some("the patient unsubscribed from our texts (STOP)")
        );
        assert_eq!(
            describe(30_007),
            Some("the carrier blocked the text as spam")
        );
        assert_eq!(describe(1), None);
    }

    #[test]
    fn status_callbacks_are_read() {
        let r = read_status(&p(&[("SmsSid", "SM1"), ("SmsStatus", "delivered")])).expect("read");
        assert_eq!(
            r,
            DeliveryReport {
                id: "SM1".into(),
                state: Some(OutboxState::Delivered),
                error_code: None,
                error: None
            }
        );
        let r = read_status(&p(&[
            ("MessageSid", "SM2"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .expect("read");
        assert_eq!(r.state, Some(OutboxState::Failed));
        assert_eq!(r.error_code, Some(30_003));
        assert_eq!(
            r.error.as_deref(),
            Some("the phone was off or out of reach")
        );
        let r = read_status(&p(&[
            ("MessageSid", "SM3"),
            ("MessageStatus", "failed"),
            ("ErrorCode", "30999"),
        ]))
        .expect("read");
        assert_eq!(r.error.as_deref(), Some("Twilio error 30999"));
        let r =
            read_status(&p(&[("MessageSid", "SM4"), ("MessageStatus", "failed")])).expect("read");
        assert_eq!((r.error_code, r.error.is_some()), (None, true));
        let r =
            read_status(&p(&[("MessageSid", "SM5"), ("MessageStatus", "canceled")])).expect("read");
        assert_eq!(r.state, Some(OutboxState::Failed));
        assert!(r.error.is_some_and(|e| e.contains("canceled")));
        for (status, state) in [
            ("queued", None),
            ("accepted", None),
            ("scheduled", None),
            ("sending", None),
            ("sent", Some(OutboxState::Sent)),
            ("read", Some(OutboxState::Read)),
        ] {
            let r =
                read_status(&p(&[("MessageSid", "SM6"), ("MessageStatus", status)])).expect(status);
            assert_eq!((r.state, r.error), (state, None), "{status}");
        }
    }

    #[test]
    fn broken_status_callbacks_are_refused_with_a_reason() {
        assert!(read_status(&[]).is_err_and(|e| e.contains("MessageSid")));
        assert!(read_status(&p(&[("MessageSid", ""), ("MessageStatus", "sent")])).is_err());
        assert!(
            read_status(&p(&[("MessageSid", "SM1")])).is_err_and(|e| e.contains("MessageStatus"))
        );
        assert!(
            read_status(&p(&[("MessageSid", "SM1"), ("MessageStatus", "banana")]))
                .is_err_and(|e| e.contains("banana"))
        );
    }

    #[test]
    fn inbound_texts_are_read() {
        let t = read_inbound(&p(&[
            ("MessageSid", "SMin"),
            ("From", "+15551234567"),
            ("To", "+15557654321"),
            ("Body", "1"),
        ]))
        .expect("read");
        assert_eq!(
            t,
            InboundSms {
                id: "SMin".into(),
                from: "+15551234567".into(),
                body: "1".into(),
                opt_out: None
            }
        );
        for (raw, want) in [
            ("STOP", Some(OptOutType::Stop)),
            ("start", Some(OptOutType::Start)),
            ("HELP", Some(OptOutType::Help)),
            ("OTHER", None),
        ] {
            let t = read_inbound(&p(&[
                ("MessageSid", "S"),
                ("From", "+1"),
                ("Body", "x"),
                ("OptOutType", raw),
            ]))
            .expect("read");
            assert_eq!(t.opt_out, want, "{raw}");
        }
        let empty =
            read_inbound(&p(&[("MessageSid", "S"), ("From", "+1"), ("Body", "")])).expect("read");
        assert_eq!(empty.body, "");
        assert!(
            read_inbound(&p(&[("From", "+1"), ("Body", "1")]))
                .is_err_and(|e| e.contains("MessageSid"))
        );
        assert!(
            read_inbound(&p(&[("MessageSid", "S"), ("Body", "1")]))
                .is_err_and(|e| e.contains("From"))
        );
        assert!(
            read_inbound(&p(&[("MessageSid", "S"), ("From", "+1")]))
                .is_err_and(|e| e.contains("Body"))
        );
    }

    proptest::proptest! {
        #[test]
        fn no_input_panics(
            pairs in proptest::collection::vec(
                (proptest::sample::select(vec!["MessageSid", "SmsSid", "MessageStatus", "SmsStatus",
                    "ErrorCode", "From", "Body", "OptOutType", "x"]), ".{0,12}"),
                0..8,
            ),
            url in ".{0,40}",
            header in proptest::option::of(".{0,40}"),
        ) {
            let params: Vec<(String, String)> =
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let _ = read_status(&params);
            let _ = read_inbound(&params);
            let _ = port_variant(&url);
            let sig = signature(&url, &params, b"k");
            proptest::prop_assert!(verify(&url, &params, Some(&sig), b"k"));
            let _ = verify(&url, &params, header.as_deref(), b"k");
        }
    }
}
