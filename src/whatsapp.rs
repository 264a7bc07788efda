//! The WhatsApp Cloud API: request and response types, the error envelope and what each error
//! code means for a sender, and an HTTP client (reqwest with rustls, explicit timeouts).
//! The only module that knows the Graph API's JSON.

pub mod events;
pub mod list;
pub mod media;
pub mod pricing;
pub mod standing;
pub mod upload;
mod webhook;

pub use webhook::*;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::WhatsApp;
use crate::phone::E164;
use crate::template::Rendered;

/// A send request body (`POST /{version}/{phone-number-id}/messages`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendRequest {
    /// Always `whatsapp`.
    pub messaging_product: &'static str,
    /// Always `individual`.
    pub recipient_type: &'static str,
    /// The recipient, E.164 with `+`.
    pub to: String,
    /// `template` or `text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The template, for template messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplatePayload>,
    /// The text, for free-form messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextPayload>,
    /// The document, for a document message ([`upload`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<upload::DocumentPayload>,
    /// The list, for an interactive list message ([`list`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactive: Option<list::InteractivePayload>,
    /// Echoed back in every status webhook: the outbox id, so a status finds its row even
    /// when the response carrying the wamid was lost.
    pub biz_opaque_callback_data: String,
}

/// `template` object of a send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplatePayload {
    /// Approved template name.
    pub name: String,
    /// `{"code": "en"}`.
    pub language: LanguagePayload,
    /// Only the components that have variables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// `language` object of a template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguagePayload {
    /// Language code of an approved translation.
    pub code: String,
}

/// One template component with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// `body` or `button`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `quick_reply` for buttons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<&'static str>,
    /// Button position, as a string (accepted on every API version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// The values.
    pub parameters: Vec<Parameter>,
}

/// A template parameter: text for the body, payload for quick-reply buttons.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Parameter {
    /// `{"type":"text","text":…}`.
    Text {
        /// The value.
        text: String,
    },
    /// `{"type":"payload","payload":…}`.
    Payload {
        /// Comes back in the reply webhook.
        payload: String,
    },
}

/// `text` object of a free-form message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPayload {
    /// No link previews: messages carry no links.
    pub preview_url: bool,
    /// Up to 4096 characters.
    pub body: String,
}

impl SendRequest {
    /// A template message for a rendered reminder.
    pub fn template(to: &E164, rendered: &Rendered, callback: String) -> Self {
        let mut components = Vec::new();
        if !rendered.params.is_empty() {
            components.push(Component {
                kind: "body",
                sub_type: None,
                index: None,
                parameters: rendered
                    .params
                    .iter()
                    .map(|p| Parameter::Text { text: p.clone() })
                    .collect(),
            });
        }
        for (i, b) in rendered.buttons.iter().enumerate() {
            components.push(Component {
                kind: "button",
                sub_type: Some("quick_reply"),
                index: Some(i.to_string()),
                parameters: vec![Parameter::Payload {
                    payload: b.payload.clone(),
                }],
            });
        }
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: to.as_str().to_string(),
            kind: "template",
            template: Some(TemplatePayload {
                name: rendered.template_name.clone(),
                language: LanguagePayload {
                    code: rendered.language.clone(),
                },
                components,
            }),
            text: None,
            document: None,
            interactive: None,
            biz_opaque_callback_data: callback,
        }
    }

    /// A free-form text (allowed within 24 hours of the patient's last message).
    pub fn text(to: &E164, body: String, callback: String) -> Self {
        Self {
            messaging_product: "whatsapp",
            recipient_type: "individual",
            to: to.as_str().to_string(),
            kind: "text",
            template: None,
            text: Some(TextPayload {
                preview_url: false,
                body,
            }),
            document: None,
            interactive: None,
            biz_opaque_callback_data: callback,
        }
    }
}

/// A send the API accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The message id (`wamid.…`).
    pub wamid: String,
    /// The recipient's WhatsApp id, which may differ from the number sent to.
    pub wa_id: Option<String>,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<ContactOut>,
    #[serde(default)]
    messages: Vec<MessageOut>,
}

#[derive(Deserialize)]
struct ContactOut {
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct MessageOut {
    id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    code: i64,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    error_user_title: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// What a sender should do about an error code (the shared reference, §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try the same request again later, with backoff.
    Retry,
    /// The number's throughput limit: slow down everything, then retry.
    Throttled,
    /// Too fast to this one recipient (131056): retry it after 4^n seconds.
    PairLimit,
    /// Wait hours before trying again (spam limit, paused template).
    LongWait,
    /// An account problem (token, permissions, billing): stop sending and alert.
    OperatorStop,
    /// This message will never succeed as it is.
    Terminal,
}

/// Classifies a Graph API error code.
pub fn classify(code: i64) -> ErrorClass {
    match code {
        130_429 | 4 | 80_007 => ErrorClass::Throttled,
        131_056 => ErrorClass::PairLimit,
        // 134101: a template still syncing (dispatch waits the 10 minutes Meta asks for).
        1 | 2 | 131_000 | 131_016 | 131_057 | 133_004 | 134_101 => ErrorClass::Retry,
        131_048 | 132_015 => ErrorClass::LongWait,
        0 | 3 | 10 | 190 | 200..=299 | 368 | 131_005 | 131_031 | 131_042 | 131_045 | 133_010 => {
            ErrorClass::OperatorStop
        }
        _ => ErrorClass::Terminal,
    }
}

/// Error codes meaning the patient cannot be reached on WhatsApp (130403: they blocked the
/// clinic): staff should call.
pub fn is_unreachable(code: i64) -> bool {
    code == 130_403 || matches!(code, 131_026 | 130_472 | 130_497 | 131_009 | 131_021)
}

/// Error codes of the API's template family (132000-132999: a template that does not exist,
/// is paused or disabled, or whose parameters do not match): no message using it goes out
/// until the administrator fixes it, so the desk warns staff.
pub fn is_template_problem(code: i64) -> bool {
    (132_000..133_000).contains(&code)
}

/// A short reference to a message for people to read (`msg-3fa2c91b`): message ids embed the
/// recipient's number, so tables and logs show this instead; `--json` keeps the id whole.
pub fn message_ref(wamid: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(wamid.as_bytes());
    format!(
        "msg-{:08x}",
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    )
}

/// Why a send did not return a wamid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The API answered with its error envelope.
    #[error("({code}) {title}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        http_status: u16,
        /// Graph error code.
        code: i64,
        /// Its message.
        title: String,
        /// `error_data.details`.
        details: Option<String>,
    },
    /// A non-JSON answer (an edge proxy's 429 or 5xx): retryable.
    #[error("HTTP {status} without an API error body: {snippet}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// The request never reached the API (connection refused, DNS, connect timeout).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached the API but no answer came: the outcome is unknown.
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
}

impl SendError {
    /// What to do about it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { code, .. } => classify(*code),
            Self::Http { status: 429, .. } => ErrorClass::Throttled,
            Self::Http { status, .. } if *status >= 500 => ErrorClass::Retry,
            Self::Http {
                status: 401 | 403, ..
            } => ErrorClass::OperatorStop,
            Self::NotSent(_) => ErrorClass::Retry,
            // An ambiguous send is not retried: the Cloud API has no idempotency key.
            Self::Http { .. } | Self::Ambiguous(_) => ErrorClass::Terminal,
        }
    }

    /// The Graph error code, if the API gave one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A template as the account's catalogue lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTemplate {
    /// Template name.
    pub name: String,
    /// Language code.
    pub language: String,
    /// `APPROVED`, `PAUSED`, ...
    pub status: String,
    /// `UTILITY`, `MARKETING`, ...
    pub category: String,
    /// Placeholders in the body.
    pub body_params: usize,
    /// Quick-reply buttons.
    pub quick_replies: usize,
    /// Meta's time to live for undelivered messages (`None`: Meta's default, 30 days).
    pub message_send_ttl_seconds: Option<u64>,
}

/// The Cloud API client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    version: String,
    phone_number_id: String,
    waba_id: String,
    token: SecretString,
}

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl Client {
    /// A client for the configured account; `base` overrides `api_base` (e.g. the simulator).
    pub fn new(
        cfg: &WhatsApp,
        token: SecretString,
        base: Option<&str>,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .user_agent(concat!("reminderd/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(cfg.max_in_flight)
            .build()?;
        Ok(Self {
            http,
            base: base
                .unwrap_or(&cfg.api_base)
                .trim_end_matches('/')
                .to_string(),
            version: cfg.api_version.clone(),
            phone_number_id: cfg.phone_number_id.clone(),
            waba_id: cfg.waba_id.clone(),
            token,
        })
    }

    /// The same client (one connection pool) sending from `number`, with `token` when the
    /// number's business account has its own (`None`: this client's).
    #[must_use]
    pub fn for_number(&self, number: &crate::config::Number, token: Option<SecretString>) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            version: self.version.clone(),
            phone_number_id: number.phone_number_id.clone(),
            waba_id: number.waba_id.clone(),
            token: token.unwrap_or_else(|| self.token.clone()),
        }
    }

    /// Sends one message.
    pub async fn send(&self, req: &SendRequest) -> Result<Accepted, SendError> {
        let url = format!(
            "{}/{}/{}/messages",
            self.base, self.version, self.phone_number_id
        );
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose_secret())
            .json(req)
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SendError::Ambiguous(format!("the response was cut off: {e}")))?;
        if status.is_success() {
            let parsed: SendResponse = serde_json::from_slice(&body).map_err(|e| {
                SendError::Ambiguous(format!("HTTP {status} with an unreadable body: {e}"))
            })?;
            let wamid = parsed
                .messages
                .into_iter()
                .next()
                .map(|m| m.id)
                .ok_or_else(|| {
                    SendError::Ambiguous(format!("HTTP {status} without a message id"))
                })?;
            return Ok(Accepted {
                wamid,
                wa_id: parsed.contacts.into_iter().next().and_then(|c| c.wa_id),
            });
        }
        Err(api_error(status.as_u16(), &body))
    }

    /// A GET with this client's token, its JSON answer read as `T` (`what` names it in the
    /// error when it cannot be read). Nothing is sent to a patient, so a lost answer is
    /// [`SendError::NotSent`].
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        what: &str,
    ) -> Result<T, SendError> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| SendError::NotSent(e.to_string()))?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| SendError::Http {
            status: status.as_u16(),
            snippet: format!("unreadable {what}: {e}"),
        })
    }

    /// Every template of the account, following pagination.
    pub async fn templates(&self) -> Result<Vec<RemoteTemplate>, SendError> {
        let mut url = format!(
            "{}/{}/{}/message_templates?fields=name,language,status,category,components,message_send_ttl_seconds&limit=100",
            self.base, self.version, self.waba_id
        );
        let mut out = Vec::new();
        // A hard cap guards against a server that paginates forever.
        for _ in 0..100 {
            let page: Value = self.get_json(&url, "template list").await?;
            for t in page["data"].as_array().into_iter().flatten() {
                out.push(remote_template(t));
            }
            match page["paging"]["next"].as_str() {
                Some(next) if !next.is_empty() => url = next.to_string(),
                _ => break,
            }
        }
        Ok(out)
    }
}

fn remote_template(t: &Value) -> RemoteTemplate {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut body_params = 0;
    let mut quick_replies = 0;
    for c in t["components"].as_array().into_iter().flatten() {
        match c["type"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            "BODY" => {
                body_params =
                    crate::config::placeholders(c["text"].as_str().unwrap_or_default()).len();
            }
            "BUTTONS" => {
                quick_replies = c["buttons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|b| {
                        b["type"]
                            .as_str()
                            .is_some_and(|s| s.eq_ignore_ascii_case("QUICK_REPLY"))
                    })
                    .count();
            }
            _ => {}
        }
    }
    RemoteTemplate {
        name: text(&t["name"]),
        language: text(&t["language"]),
        status: text(&t["status"]),
        category: text(&t["category"]),
        body_params,
        quick_replies,
        message_send_ttl_seconds: t["message_send_ttl_seconds"].as_u64(),
    }
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(transport_error)
fn transport_error(e: reqwest::Error) -> SendError {
    // Only a failure to connect proves the API never saw the request; anything later
    // (a timeout waiting for the answer, a reset) may follow an accepted message.
    if e.is_connect() || e.is_builder() {
        SendError::NotSent(e.to_string())
    } else {
        SendError::Ambiguous(e.to_string())
    }
}

fn api_error(status: u16, body: &[u8]) -> SendError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(env) => SendError::Api {
            http_status: status,
            code: env.error.code,
            title: env.error.error_user_title.unwrap_or(env.error.message),
            details: env.error.error_data.and_then(|d| d.details),
        },
        Err(_) => SendError::Http {
            status,
            snippet: String::from_utf8_lossy(&body[..body.len().min(120)])
                .trim()
                .to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Intent;
    use crate::template::Button;

    #[test]
    fn message_refs_are_short_stable_and_free_of_digits_runs() {
        let id = "wamid.HBgM919820012345FQIAERgS00000000016DC193A9AA==";
        let r = message_ref(id);
        assert_eq!(r, message_ref(id));
        assert_ne!(
            r,
            message_ref("wamid.HBgM919820012345FQIAERgS00000000026DC193A9AA==")
        );
        assert_eq!(r.len(), "msg-".len() + 8);
        assert!(!r.contains("2345"), "{r}");
    }

    #[test]
    fn template_request_json_matches_the_reference_shape() {
        let to = E164::parse("+919820012345", "IN".parse().expect("region")).expect("phone");
        let rendered = Rendered {
            template_name: "appointment_reminder".into(),
            language: "en".into(),
            params: vec!["Aarav".into(), "10:00".into()],
            buttons: vec![Button {
                action: Intent::Confirm,
                payload: "confirm:7".into(),
                label: "Confirm".into(),
            }],
            text: String::new(),
        };
        let v =
            serde_json::to_value(SendRequest::template(&to, &rendered, "7".into())).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "+919820012345",
                "type": "template",
                "template": {
                    "name": "appointment_reminder",
                    "language": {"code": "en"},
                    "components": [
                        {"type": "body", "parameters": [{"type": "text", "text": "Aarav"}, {"type": "text", "text": "10:00"}]},
                        {"type": "button", "sub_type": "quick_reply", "index": "0",
                         "parameters": [{"type": "payload", "payload": "confirm:7"}]}
                    ]
                },
                "biz_opaque_callback_data": "7"
            })
        );
    }

    #[test]
    fn error_codes_are_classified_as_the_reference_says() {
        assert_eq!(classify(130_429), ErrorClass::Throttled);
        assert_eq!(classify(131_056), ErrorClass::PairLimit);
        assert_eq!(classify(131_000), ErrorClass::Retry);
        assert_eq!(classify(190), ErrorClass::OperatorStop);
        assert_eq!(classify(132_001), ErrorClass::Terminal);
        assert_eq!(classify(131_026), ErrorClass::Terminal);
        assert_eq!(classify(132_015), ErrorClass::LongWait);
        assert!(is_template_problem(132_015) && is_template_problem(132_001));
        assert!(!is_template_problem(131_026) && !is_template_problem(190));
        assert_eq!(
            SendError::Http {
                status: 502,
                snippet: String::new()
            }
            .class(),
            ErrorClass::Retry
        );
        assert_eq!(
            SendError::Http {
                status: 429,
                snippet: String::new()
            }
            .class(),
            ErrorClass::Throttled
        );
        assert_eq!(
            SendError::Ambiguous(String::new()).class(),
            ErrorClass::Terminal
        );
    }

    #[test]
    fn error_envelope_is_parsed_and_bare_bodies_are_not_mistaken_for_it() {
        let body = br#"{"error":{"message":"(#132000) Number of parameters does not match","type":"OAuthException","code":132000,"error_data":{"messaging_product":"whatsapp","details":"body: number of localizable_params (1) does not match the expected number of params (4)"},"fbtrace_id":"x"}}"#;
        let e = api_error(400, body);
        assert_eq!(e.code(), Some(132_000));
        assert!(
            e.to_string().contains("expected number of params (4)"),
            "{e}"
        );
        assert!(matches!(
            api_error(502, b"<html>Bad Gateway</html>"),
            SendError::Http { status: 502, .. }
        ));
    }
}
