//! The `ACK` that answers each message (pure): MSH with sender and receiver swapped, MSA with
//! the inbound MSH-10, and for a refusal the reason in MSA-3 and an ERR segment.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use hl7_parser::message::Separators;

use super::read::Header;

/// HL7's acknowledgment codes (table 0008, original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Applied (or applied before: a replay).
    Accept,
    /// Understood but not applied; the reason says what to fix (the sender may resend).
    Error,
    /// Not a message this listener takes; do not resend.
    Reject,
}

impl Code {
    /// As MSA-1 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "AA",
            Self::Error => "AE",
            Self::Reject => "AR",
        }
    }
}

/// Why the ACK refuses, as ERR-3 codes it (HL7 table 0357).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrCode {
    /// 100: not HL7 at all, or MSH unreadable.
    Sequence,
    /// 200: not SIU.
    MessageType,
    /// 201: an SIU event not taken.
    Event,
    /// 207: anything else (the reason says what).
    Application,
}

impl ErrCode {
    fn code(self) -> (&'static str, &'static str) {
        match self {
            Self::Sequence => ("100", "Segment sequence error"),
            Self::MessageType => ("200", "Unsupported message type"),
            Self::Event => ("201", "Unsupported event code"),
            Self::Application => ("207", "Application internal error"),
        }
    }
}

/// The ACK for `inbound` (`None`: it had no readable MSH, so MSH-10 is answered empty).
/// `control_id` is the ACK's own MSH-10, `now` its MSH-7.
pub fn ack(
    inbound: Option<&Header>,
    code: Code,
    refusal: Option<(ErrCode, &str)>,
    control_id: &str,
    now: DateTime<Utc>,
) -> String {
    let standard = Separators::default();
    let (sep, encoding) = inbound.map_or((standard, "|^~\\&".to_string()), |h| {
        (h.separators, h.encoding.clone())
    });
    let f = sep.field;
    let empty = String::new();
    let party = |i: usize| inbound.map_or(&empty, |h| &h.parties[i]);
    let event = inbound
        .and_then(|h| h.trigger.split_once('^'))
        .map_or("", |(_, e)| e);
    let version = inbound
        .map(|h| h.version.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or("2.5.1");
    let processing = inbound
        .map(|h| h.processing_id.as_str())
        .filter(|v| !v.is_empty())
        .unwrap_or("P");
    let c = sep.component;
    let mut out = format!(
        "MSH{encoding}{f}{}{f}{}{f}{}{f}{}{f}{}{f}{f}ACK{c}{}{c}ACK{f}{}{f}{}{f}{}\r",
        party(2),
        party(3),
        party(0),
        party(1),
        now.format("%Y%m%d%H%M%S"),
        escape(&sep, event),
        escape(&sep, control_id),
        escape(&sep, processing),
        escape(&sep, version),
    );
    let answered = inbound.map_or("", |h| h.control_id.as_str());
    let _ = write!(out, "MSA{f}{}{f}{}", code.as_str(), escape(&sep, answered));
    if let Some((err, reason)) = refusal {
        // MSA-3 is 80 characters in v2.3 and withdrawn later; the whole reason is in ERR-8.
        let short: String = reason.chars().take(80).collect();
        let _ = write!(out, "{f}{}\r", escape(&sep, &short));
        let (n, words) = err.code();
        let severity = "E";
        let _ = write!(
            out,
            "ERR{f}{f}{f}{n}{c}{words}{c}HL70357{f}{severity}{f}{f}{f}{f}{}\r",
            escape(&sep, reason)
        );
    } else {
        out.push('\r');
    }
    out
}

/// Escapes text for a field with the message's separators (HL7 §2.7).
pub fn escape(sep: &Separators, s: &str) -> String {
    let e = sep.escape;
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        let code = if ch == e {
            Some("E")
        } else if ch == sep.field {
            Some("F")
        } else if ch == sep.component {
            Some("S")
        } else if ch == sep.subcomponent {
            Some("T")
        } else if ch == sep.repetition {
            Some("R")
        } else if ch == '\r' {
            Some("X0D")
        } else if ch == '\n' {
            Some("X0A")
        } else {
            None
        };
        match code {
            Some(c) => {
                out.push(e);
                out.push_str(c);
                out.push(e);
            }
            None => out.push(ch),
        }
    }
    out
}
