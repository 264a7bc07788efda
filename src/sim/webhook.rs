//! Webhooks the simulator posts: status updates, inbound messages and template status changes,
//! in Meta's envelope, signed like Meta signs them and retried like Meta retries them.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Line, Reply, Shared, SimConfig, SimError};
use crate::time::Clock;

/// Delivery attempts for one webhook: the first POST and five retries.
const ATTEMPTS: u32 = 6;
/// Wait before the first retry; doubled before each next one (100 ms … 1.6 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Where failed-status errors point, as Meta's do.
const ERROR_HREF: &str =
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/";

/// `sha256=<lowercase hex HMAC-SHA256(app_secret, body)>`: the `X-Hub-Signature-256` value.
pub fn signature(app_secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes JSON with every non-ASCII character escaped (`é` → `\u00e9`), as Meta does, so a
/// receiver that re-encodes the JSON before checking the signature fails like it would in
/// production.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !c.is_ascii() {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// The webhook body bytes for `payload`.
pub(crate) fn encode(payload: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    payload
        .serialize(&mut ser)
        .expect("a JSON value always serializes into memory");
    out
}

/// Posts `payload` to the webhook URL, signed, retrying non-2xx answers and transport errors
/// with exponential backoff; gives up after [`ATTEMPTS`].
pub(crate) async fn deliver(shared: &Shared, payload: &Value) -> Result<(), SimError> {
    let url = shared
        .config
        .webhook_url
        .as_deref()
        .ok_or(SimError::NoWebhookUrl)?;
    let body = encode(payload);
    let sig = shared
        .config
        .app_secret
        .as_deref()
        .map(|secret| signature(secret, &body));
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut req = shared
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(sig) = &sig {
            req = req.header("X-Hub-Signature-256", sig);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => last = format!("HTTP {}", resp.status()),
            Err(e) => last = e.to_string(),
        }
        tracing::debug!("sim: webhook attempt {attempt} to {url} failed: {last}");
        if attempt < ATTEMPTS {
            if !shared.sleep(backoff).await {
                return Err(SimError::ShuttingDown);
            }
            backoff *= 2;
        }
    }
    tracing::warn!("sim: giving up on a webhook to {url} after {ATTEMPTS} attempts: {last}");
    Err(SimError::Delivery {
        url: url.to_string(),
        attempts: ATTEMPTS,
        last,
    })
}

fn unix_now() -> String {
    Clock::System.now().timestamp().to_string()
}

/// The `whatsapp_business_account` envelope around one change.
fn envelope(config: &SimConfig, field: &str, value: Value) -> Value {
    envelope_of(&config.waba_id, field, value)
}

/// The envelope around one change of business account `waba_id`.
fn envelope_of(waba_id: &str, field: &str, value: Value) -> Value {
    let mut payload = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": waba_id,
            "changes": [{ "field": field, "value": null }]
        }]
    });
    payload["entry"][0]["changes"][0]["value"] = value;
    payload
}

fn metadata(line: Line<'_>) -> Value {
    json!({
        "display_phone_number": line.display_phone_number,
        "phone_number_id": line.phone_number_id,
    })
}

/// What the status webhooks of one accepted message need.
pub(crate) struct StatusJob {
    pub(crate) wamid: String,
    pub(crate) recipient: String,
    pub(crate) callback: Option<String>,
    /// The template's category in lower case; `None` for free-form messages.
    pub(crate) category: Option<String>,
    /// A `failed` status with this code replaces `delivered`.
    pub(crate) fail_code: Option<i64>,
    /// The statuses to post, in order (chaos may have shuffled or repeated them).
    pub(crate) statuses: Vec<&'static str>,
    /// The id of the business number it was sent from.
    pub(crate) phone_number_id: String,
}

impl StatusJob {
    fn pricing(&self) -> Value {
        match &self.category {
            Some(category) => json!({
                "billable": true, "pricing_model": "PMP", "type": "regular", "category": category
            }),
            // Free-form messages are billed service messages since 2026-10-01.
            None => json!({
                "billable": true, "pricing_model": "PMP", "type": "regular",
                "category": "service"
            }),
        }
    }

    fn payload(&self, config: &SimConfig, status: &str) -> Value {
        let mut s = json!({
            "id": self.wamid,
            "status": status,
            "timestamp": unix_now(),
            "recipient_id": self.recipient,
        });
        if let Some(cb) = &self.callback {
            s["biz_opaque_callback_data"] = json!(cb);
        }
        match (status, self.fail_code) {
            ("sent" | "delivered", _) => s["pricing"] = self.pricing(),
            ("failed", Some(code)) => {
                let title = super::api::error_title(code);
                s["errors"] = json!([{
                    "code": code,
                    "title": title,
                    "message": title,
                    "error_data": { "details": super::api::error_details(code) },
                    "href": ERROR_HREF,
                }]);
            }
            _ => {}
        }
        let line = config
            .line(&self.phone_number_id)
            .unwrap_or_else(|| config.main_line());
        envelope_of(
            line.waba_id,
            "messages",
            json!({
                "messaging_product": "whatsapp",
                "metadata": metadata(line),
                "statuses": [s],
            }),
        )
    }
}

/// Posts the job's statuses (`sent`, then `delivered` and `read`, or `failed`, unless chaos
/// changed the order), `status_delay` apart.
pub(crate) async fn run_statuses(shared: Arc<Shared>, job: StatusJob) {
    let config = &shared.config;
    for status in &job.statuses {
        if !shared.sleep(config.status_delay).await {
            return;
        }
        // A status Meta never managed to deliver is lost; the next one is still sent.
        match deliver(&shared, &job.payload(config, status)).await {
            Ok(()) => shared.state().counters.webhooks_posted += 1,
            Err(e) => {
                if !matches!(e, SimError::ShuttingDown) {
                    shared.state().counters.webhooks_failed += 1;
                }
                tracing::debug!("sim: {status} status for {} not delivered: {e}", job.wamid);
            }
        }
    }
}

/// The `messages` webhook carrying one inbound message.
pub(crate) fn inbound_payload(
    line: Line<'_>,
    reply: &Reply,
    from: &str,
    wamid: &str,
    last_sent_to_patient: Option<&str>,
    media: Option<(String, String)>,
) -> Value {
    let mut msg = json!({ "from": from, "id": wamid, "timestamp": unix_now() });
    let context = match reply {
        Reply::Button {
            payload,
            text,
            context_id,
            ..
        } => {
            msg["type"] = json!("button");
            msg["button"] = json!({ "payload": payload, "text": text });
            context_id.as_deref()
        }
        Reply::Interactive {
            id,
            title,
            context_id,
            ..
        } => {
            msg["type"] = json!("interactive");
            msg["interactive"] =
                json!({ "type": "button_reply", "button_reply": { "id": id, "title": title } });
            context_id.as_deref()
        }
        Reply::ListReply {
            id,
            title,
            context_id,
            ..
        } => {
            msg["type"] = json!("interactive");
            msg["interactive"] =
                json!({ "type": "list_reply", "list_reply": { "id": id, "title": title } });
            context_id.as_deref()
        }
        Reply::Text {
            body, context_id, ..
        } => {
            msg["type"] = json!("text");
            msg["text"] = json!({ "body": body });
            context_id.as_deref()
        }
        Reply::Media {
            kind,
            media_id,
            caption,
            filename,
            voice,
            ..
        } => {
            // A file that was never registered is named all the same, as a test may want.
            let (mime, sha256) =
                media.unwrap_or_else(|| ("application/octet-stream".into(), "c2ltLW1lZGlh".into()));
            let mut file = json!({ "id": media_id, "mime_type": mime, "sha256": sha256 });
            if let Some(c) = caption {
                file["caption"] = json!(c);
            }
            if let Some(f) = filename {
                file["filename"] = json!(f);
            }
            if kind == "audio" {
                file["voice"] = json!(voice);
            }
            msg["type"] = json!(kind);
            msg[kind.as_str()] = file;
            None
        }
        Reply::Other { kind, .. } => {
            msg["type"] = json!(kind);
            other_content(&mut msg, kind, last_sent_to_patient);
            None
        }
    };
    if let Some(id) = context {
        msg["context"] = json!({ "from": line.display_phone_number, "id": id });
    }
    envelope_of(
        line.waba_id,
        "messages",
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(line),
            "contacts": [{ "profile": { "name": "Sim Patient" }, "wa_id": from }],
            "messages": [msg],
        }),
    )
}

/// Plausible content for the non-actionable message types.
fn other_content(msg: &mut Value, kind: &str, last_sent: Option<&str>) {
    let media_id: u64 = rand::random::<u64>() % 10_u64.pow(15);
    let media = |mime: &str| json!({ "mime_type": mime, "sha256": "c2ltLW1lZGlh", "id": media_id.to_string() });
    match kind {
        "image" => msg["image"] = media("image/jpeg"),
        "sticker" => msg["sticker"] = media("image/webp"),
        "audio" => msg["audio"] = media("audio/ogg; codecs=opus"),
        "video" => msg["video"] = media("video/mp4"),
        "document" => msg["document"] = media("application/pdf"),
        "reaction" => {
            msg["reaction"] = json!({
                "message_id": last_sent.unwrap_or("wamid.HBgMunknownFQIAERgSAA=="),
                "emoji": "\u{1f44d}",
            });
        }
        "location" => {
            msg["location"] =
                json!({ "latitude": 19.1197, "longitude": 72.8468, "name": "Andheri" });
        }
        "unsupported" => {
            msg["errors"] = json!([{
                "code": 131_051,
                "title": "Message type unknown",
                "message": "Message type unknown",
                "error_data": { "details": "Message type is currently not supported." },
            }]);
        }
        "request_welcome" => {}
        other => msg[other] = json!({}),
    }
}

/// The `message_template_status_update` webhook.
pub(crate) fn template_status_payload(
    config: &SimConfig,
    index: usize,
    name: &str,
    language: &str,
    status: &str,
) -> Value {
    let mut payload = envelope(
        config,
        "message_template_status_update",
        json!({
            "event": status,
            "message_template_id": super::api::template_id(index),
            "message_template_name": name,
            "message_template_language": language,
            "reason": "NONE",
        }),
    );
    payload["entry"][0]["time"] = json!(Clock::System.now().timestamp());
    payload
}
