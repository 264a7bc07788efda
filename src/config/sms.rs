//! The `[sms]` section, typed: the fallback policy, the providers and the SMS texts.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::Duration;

/// SMS settings (no secrets: Twilio's auth token and MSG91's auth key come from the
/// environment or systemd credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// Fall back to SMS after a terminal WhatsApp failure, unless a clinic or rule says
    /// otherwise.
    pub fallback: bool,
    /// After "not on WhatsApp" (131026) a number gets SMS for this long, then WhatsApp is
    /// tried again.
    pub retry_whatsapp_after: Duration,
    /// The most segments one SMS may take (each is billed).
    pub max_segments: u32,
    /// Acknowledge an applied SMS reply with an SMS (each costs money; off by default).
    pub acknowledge: bool,
    /// Twilio, if configured.
    pub twilio: Option<Twilio>,
    /// MSG91, if configured.
    pub msg91: Option<Msg91>,
    /// Texts by template key (the same keys as `[templates]`): what an SMS says in place of
    /// that WhatsApp template.
    pub texts: BTreeMap<String, SmsText>,
}

/// Twilio Programmable Messaging (`[sms.twilio]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Twilio {
    /// Base URL, `https://api.twilio.com` (the simulator's in tests and the demo).
    pub api_base: String,
    /// The account SID (`AC…`), not a secret.
    pub account_sid: String,
    /// The sending number (E.164), or `None` when a Messaging Service sends.
    pub from: Option<String>,
    /// The Messaging Service SID (`MG…`), instead of `from`.
    pub messaging_service_sid: Option<String>,
    /// The webhook server's address as Twilio reaches it (`https://reminders.example.org`,
    /// through the reverse proxy): status callbacks go to `{public_url}/twilio/status` and
    /// inbound texts are configured at `{public_url}/twilio/inbound`. Signatures are computed
    /// over this URL, never the internal one.
    pub public_url: String,
    /// Messages per second (a US long code takes 1).
    pub rate_limit_per_sec: u32,
    /// Time allowed to connect.
    pub connect_timeout: StdDuration,
    /// Time allowed for a whole request.
    pub request_timeout: StdDuration,
}

/// MSG91's flow API (`[sms.msg91]`), for India's DLT rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg91 {
    /// Base URL, `https://control.msg91.com`.
    pub api_base: String,
    /// The DLT sender header (3 to 6 letters, e.g. `SUNRSE`).
    pub sender: String,
    /// Messages per second.
    pub rate_limit_per_sec: u32,
    /// Time allowed to connect.
    pub connect_timeout: StdDuration,
    /// Time allowed for a whole request.
    pub request_timeout: StdDuration,
}

/// An SMS text for one template key, per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsText {
    /// By language code (`en`, `hi`).
    pub languages: BTreeMap<String, SmsLanguage>,
}

/// The SMS text in one language. Placeholders: `{first_name}`, `{patient_name}`, `{clinic}`,
/// `{date}`, `{time}`, `{provider}`, `{clinic_phone}`; for a caregiver, `{contact_name}` too.
/// For a DLT provider the registered template is this text with each placeholder written
/// `{#var#}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsLanguage {
    /// The text with its placeholders.
    pub text: String,
    /// The DLT Content Template ID (for MSG91).
    pub dlt_template_id: Option<String>,
    /// The template exactly as registered on the DLT portal, `{#var#}` for each variable:
    /// `text` must match it (placeholders for slots) or nothing is sent.
    pub registered: Option<String>,
}
