//! Webhooks from Meta: the messages, statuses and account events a signed POST body carries,
//! each read on its own, tolerantly.

use serde::Deserialize;
use serde_json::Value;

use super::{events, media};

// Parsed tolerantly: every field optional and unknown fields ignored, because webhook shapes
// follow the app's webhook version, set in Meta's dashboard, not ours.

/// A webhook POST body's messages and statuses, each read on its own: one mistyped field
/// costs only the item it is in, never the rest of the batch (Meta would retry the same bytes
/// for days).
#[derive(Debug, Clone, Default)]
pub struct WebhookItems {
    /// Inbound messages, in the order they came.
    pub messages: Vec<Result<InboundMessage, Unreadable>>,
    /// Delivery statuses of our messages.
    pub statuses: Vec<Result<StatusUpdate, Unreadable>>,
    /// Template and account events.
    pub events: events::Events,
    /// Parts of the envelope that could not be read (an `entry` that is not a list, ...).
    pub problems: Vec<String>,
}

/// A message or status that could not be read, with what could be read of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreadable {
    /// Its `id`, if that is a string.
    pub id: Option<String>,
    /// Its `from`, if that is a string.
    pub from: Option<String>,
    /// Its `type`, if that is a string.
    pub kind: Option<String>,
    /// What is wrong with it.
    pub why: String,
}

/// Reads a webhook body. `Err` only when the body is not a JSON object at all.
pub fn read_webhook(body: &str) -> Result<WebhookItems, String> {
    let root: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let Value::Object(root) = root else {
        return Err("the body is not a JSON object".into());
    };
    let mut items = WebhookItems::default();
    for entry in list(root.get("entry"), "entry", &mut items.problems) {
        for change in list(entry.get("changes"), "entry[].changes", &mut items.problems) {
            // Template and account events have their own reader; other fields are only stored.
            let time = entry.get("time").and_then(serde_json::Value::as_i64);
            let id = entry.get("id").and_then(Value::as_str);
            if events::read_change(change, time, id, &mut items) {
                continue;
            }
            let Some(value) = change.get("value") else {
                continue;
            };
            let statuses = list(value.get("statuses"), "value.statuses", &mut items.problems);
            items
                .statuses
                .extend(statuses.iter().map(read_item::<StatusUpdate>));
            let messages = list(value.get("messages"), "value.messages", &mut items.problems);
            let contacts = list(value.get("contacts"), "value.contacts", &mut items.problems);
            let to_number = value
                .get("metadata")
                .and_then(|m| m.get("phone_number_id"))
                .and_then(Value::as_str);
            items.messages.extend(messages.iter().map(|m| {
                read_item::<InboundMessage>(m).map(|mut m| {
                    if m.from_user_id.is_none() {
                        m.from_user_id = contact_user_id(contacts, m.from.as_deref());
                    }
                    m.to_number = to_number.map(str::to_string);
                    m
                })
            }));
        }
    }
    Ok(items)
}

/// The business-scoped user id `contacts` gives for a sender: the contact with the sender's
/// `wa_id`, or the only contact when the sender has no number.
fn contact_user_id(contacts: &[Value], from: Option<&str>) -> Option<String> {
    let user_id = |c: &Value| c.get("user_id").and_then(Value::as_str).map(str::to_string);
    match from {
        Some(from) => contacts
            .iter()
            .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
            .and_then(user_id),
        None => match contacts {
            [only] => user_id(only),
            _ => None,
        },
    }
    .filter(|u| !u.is_empty())
}

/// A list in the envelope, borrowed (a batch can be 3 MB: items are read where they lie);
/// absent or null is empty, anything else is noted as a problem.
fn list<'v>(v: Option<&'v Value>, what: &str, problems: &mut Vec<String>) -> &'v [Value] {
    match v {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => &[],
        Some(_) => {
            problems.push(format!("{what} is not a list"));
            &[]
        }
    }
}

fn read_item<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Unreadable> {
    T::deserialize(v).map_err(|e| {
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        Unreadable {
            id: text("id"),
            from: text("from"),
            kind: text("type"),
            why: e.to_string(),
        }
    })
}

/// An inbound message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InboundMessage {
    /// The message id (`wamid.…`), the key for de-duplication.
    #[serde(default)]
    pub id: String,
    /// The sender's WhatsApp id (digits); absent for username-only (BSUID) senders.
    pub from: Option<String>,
    /// The sender's business-scoped user id (`from_user_id`, or the matching
    /// `contacts[].user_id`): how a username-only sender is recognised.
    pub from_user_id: Option<String>,
    /// For `system`: a change of the sender's number or user id.
    pub system: Option<InboundSystem>,
    /// `text`, `button`, `interactive`, `image`, `reaction`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    /// For `text`.
    pub text: Option<InboundText>,
    /// For template quick-reply taps.
    pub button: Option<InboundButton>,
    /// For interactive replies.
    pub interactive: Option<InboundInteractive>,
    /// For `image` (read every file through [`InboundMessage::media`]).
    pub image: Option<media::InboundMedia>,
    /// For `audio`: voice notes and audio files.
    pub audio: Option<media::InboundMedia>,
    /// For `video`.
    pub video: Option<media::InboundMedia>,
    /// For `document`.
    pub document: Option<media::InboundMedia>,
    /// For `sticker`.
    pub sticker: Option<media::InboundMedia>,
    /// The message it replies to.
    pub context: Option<InboundContext>,
    /// The id of the business number it was written to (the change's
    /// `metadata.phone_number_id`).
    #[serde(skip)]
    pub to_number: Option<String>,
}

/// `system` of an inbound message: WhatsApp telling us the user changed their number
/// (`user_changed_number`, with the new number in `wa_id`) or their user id
/// (`user_changed_user_id`). `from` is the old number.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InboundSystem {
    /// `user_changed_number`, `user_changed_user_id`, or an older API's name for them.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// WhatsApp's sentence about it (it names both numbers: never logged).
    pub body: Option<String>,
    /// The new number's WhatsApp id (`new_wa_id` in the older shape).
    #[serde(alias = "new_wa_id")]
    pub wa_id: Option<String>,
    /// The new business-scoped user id.
    pub user_id: Option<String>,
    /// The one it replaces.
    pub previous_user_id: Option<String>,
}

/// `text` of an inbound message.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct InboundText {
    #[serde(default)]
    pub body: String,
}

/// `button` of a quick-reply tap.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct InboundButton {
    #[serde(default)]
    pub payload: String,
    #[serde(default)]
    pub text: String,
}

/// `interactive` of an interactive reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct InboundInteractive {
    pub button_reply: Option<InboundReplyId>,
    pub list_reply: Option<InboundReplyId>,
}

/// `button_reply` / `list_reply`.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct InboundReplyId {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub title: String,
}

/// `context` of an inbound message.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InboundContext {
    /// The wamid of the message replied to.
    pub id: Option<String>,
}

/// A status of one of our messages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusUpdate {
    /// Our message's wamid.
    #[serde(default)]
    pub id: String,
    /// `sent`, `delivered`, `read`, `failed` (others are ignored).
    #[serde(default)]
    pub status: String,
    /// Echo of what we set: the outbox id.
    pub biz_opaque_callback_data: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub errors: Vec<StatusError>,
    /// What Meta bills for the message (on `sent` and one of `delivered`/`read`).
    pub pricing: Option<super::pricing::Pricing>,
}

/// One `errors[]` of a failed status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusError {
    /// Graph error code.
    #[serde(default)]
    pub code: i64,
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// More detail.
    pub error_data: Option<StatusErrorData>,
}

/// `error_data` of a status error.
#[derive(Debug, Clone, Default, Deserialize)]
#[allow(missing_docs)]
pub struct StatusErrorData {
    pub details: Option<String>,
}

impl StatusUpdate {
    /// The first error's code and text (`title: details`), for a failed status.
    pub fn error(&self) -> Option<(i64, String)> {
        let e = self.errors.first()?;
        let details = e
            .error_data
            .as_ref()
            .and_then(|d| d.details.clone())
            .unwrap_or_default();
        let text = if details.is_empty() {
            e.title.clone()
        } else {
            format!("{}: {details}", e.title)
        };
        Some((e.code, text))
    }

    /// The outbox id we set as callback data, if it came back.
    pub fn outbox_id(&self) -> Option<i64> {
        self.biz_opaque_callback_data
            .as_deref()
            .and_then(|c| c.trim().parse().ok())
    }
}

impl InboundMessage {
    /// What the message says, for reply understanding.
    pub fn content(&self) -> crate::replies::Message<'_> {
        use crate::replies::Message;
        if let Some(b) = &self.button {
            return Message::Button {
                payload: &b.payload,
            };
        }
        if let Some(i) = &self.interactive
            && let Some(r) = i.button_reply.as_ref().or(i.list_reply.as_ref())
        {
            return Message::Button { payload: &r.id };
        }
        if let Some((kind, m)) = self.media() {
            return Message::Media {
                kind,
                caption: m.caption.as_deref(),
                voice: m.voice,
            };
        }
        match (&self.text, self.kind.as_str()) {
            (Some(t), _) => Message::Text { body: &t.body },
            (None, kind) => Message::Other { kind },
        }
    }

    /// The text kept for staff: what was typed, the button's label and payload, or a file's
    /// caption.
    pub fn shown_text(&self) -> Option<String> {
        if let Some(b) = &self.button {
            return Some(format!("[{}] {}", b.text, b.payload));
        }
        if let Some(r) = self
            .interactive
            .as_ref()
            .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()))
        {
            return Some(format!("[{}] {}", r.title, r.id));
        }
        if let Some((_, m)) = self.media() {
            return m.caption.clone().filter(|c| !c.trim().is_empty());
        }
        self.text.as_ref().map(|t| t.body.clone())
    }
}
