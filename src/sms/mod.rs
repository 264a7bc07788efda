//! SMS, the second channel: what every provider shares. Each provider's wire format lives in
//! its own file (`twilio`, `msg91`); `text` counts what a text costs in segments and `dlt`
//! fills India's registered templates. Like `whatsapp`, this room says what an answer *is*;
//! `dispatch` decides what to do about it.

pub mod dlt;
pub mod msg91;
pub mod text;
pub mod twilio;

use crate::model::OutboxState;
use crate::phone::E164;

crate::model::text_enum! {
    /// Which SMS provider a clinic sends through.
    Provider {
        /// Twilio Programmable Messaging (most countries; two-way on a long code).
        Twilio = "twilio",
        /// MSG91's flow API (India, DLT; one-way alphanumeric header).
        Msg91 = "msg91",
    }
}

/// One SMS ready to go: the text as the patient will read it and, for a DLT provider, the
/// registered template and its variables in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient.
    pub to: E164,
    /// The whole text.
    pub text: String,
    /// For DLT providers: the registered template's id and the variables, in template order.
    pub dlt: Option<DltFilled>,
    /// How long the provider may keep trying before dropping it (Twilio's `ValidityPeriod`),
    /// so an SMS never lands after the appointment; `None` leaves the provider's default.
    pub validity: Option<std::time::Duration>,
    /// Our reference (the outbox id), echoed where the provider allows.
    pub reference: String,
}

/// A DLT template filled in: what MSG91 (and any DLT gateway) is sent instead of free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DltFilled {
    /// The Content Template ID registered on the DLT portal (19 digits).
    pub template_id: String,
    /// The variables in the order of the template's `{#var#}` slots.
    pub variables: Vec<String>,
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id for it (Twilio `SM…`, an MSG91 request id): its delivery reports
    /// name it.
    pub id: String,
    /// Segments the provider will bill, when it says.
    pub segments: Option<u32>,
}

/// Why an SMS was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// The provider answered with its error body.
    #[error("({code}) {message}")]
    Api {
        /// HTTP status.
        http_status: u16,
        /// The provider's error code (Twilio's 21211, …; MSG91's own).
        code: i64,
        /// Its message.
        message: String,
    },
    /// An answer without the provider's error body (a proxy's 5xx): retryable.
    #[error("HTTP {status} without an error body: {snippet}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        snippet: String,
    },
    /// The request never reached the provider (connection refused, DNS, connect timeout).
    #[error("not sent: {0}")]
    NotSent(String),
    /// The request may have reached the provider but no answer came: the outcome is unknown.
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
    /// Refused before sending: the text breaks the provider's rules (a DLT mismatch, too
    /// many segments). A configuration problem; the administrator must fix it.
    #[error("not sent: {0}")]
    Refused(String),
}

/// What an SMS error means for the message and the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsClass {
    /// Transient (5xx, a connection that never opened): retry with backoff.
    Retry,
    /// The provider asks us to slow down (Twilio 20429, a 429): retry with backoff.
    Throttled,
    /// Probably transient at the handset (Twilio 30003 unreachable, 30008 unknown): one more
    /// try later, then staff.
    RetryOnce,
    /// The number cannot take SMS (21211 invalid, 21614/21612 not SMS-capable, 30005/30006
    /// unknown or landline): staff must call, with the reason.
    BadNumber,
    /// The recipient unsubscribed (21610): recorded as an SMS opt-out of the number.
    OptedOut,
    /// Carrier filtering (30007): the text or sender is being blocked; staff call and the
    /// administrator is told.
    Filtered,
    /// The account or its configuration is wrong (auth, permissions, DLT template id): no
    /// SMS goes out until an administrator acts; the message waits, unsent.
    Operator,
    /// Failed for good for another reason.
    Terminal,
}

impl SmsError {
    /// The provider's error code, when there is one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A delivery report in the store's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The provider's id of the message (what [`Accepted::id`] was).
    pub id: String,
    /// How far it got: `sent`, `delivered` or `failed` (`None`: a state we do not track,
    /// such as `queued` or `sending`).
    pub state: Option<OutboxState>,
    /// For a failure, the provider's error code.
    pub error_code: Option<i64>,
    /// For a failure, what went wrong, in words.
    pub error: Option<String>,
}

/// A text a person sent to the clinic's SMS number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    /// The provider's id of it (deduplicates retries).
    pub id: String,
    /// The sender as the provider wrote it (E.164 for Twilio).
    pub from: String,
    /// What they wrote.
    pub body: String,
    /// The provider's own opt-out handling saw a keyword (Twilio's `OptOutType`).
    pub opt_out: Option<OptOutType>,
}

/// What a provider's opt-out handling made of an inbound text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutType {
    /// STOP, UNSUBSCRIBE, CANCEL, END, QUIT, …: the provider now refuses to send to them.
    Stop,
    /// START, UNSTOP, YES: subscribed again.
    Start,
    /// HELP, INFO.
    Help,
}
