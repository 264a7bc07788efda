//! The `[privacy]` section: how long raw payloads and patients' words are kept before the
//! retention purge empties them, and when the daemon runs that purge.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::values::{Bounds, check_cron};

const DAY: i64 = 24 * 60 * 60;
/// At least a day (the purge runs daily), at most ten years.
const KEEP: Bounds = Bounds::new(DAY, 3650 * DAY);

/// Retention as validated; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// Raw webhook bodies (Meta, Twilio, MSG91) and HL7 SIU / FHIR payloads are emptied after
    /// this (default 30 days).
    pub raw_payloads: Duration,
    /// Rendered message parameters (the words sent) and reply texts are emptied after this
    /// (default 180 days).
    pub message_texts: Duration,
    /// The daemon's purge cadence, six-field cron in UTC (default daily at 02:30).
    pub purge: String,
}

/// The purge's default cadence: daily, at night for most clinics.
pub const DEFAULT_PURGE_CRON: &str = "0 30 2 * * *";

impl Default for Privacy {
    fn default() -> Self {
        Self {
            raw_payloads: Duration::days(30),
            message_texts: Duration::days(180),
            purge: DEFAULT_PURGE_CRON.to_string(),
        }
    }
}

/// `[privacy]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrivacy {
    raw_payloads: Option<String>,
    message_texts: Option<String>,
    purge: Option<String>,
}

/// Reads `[privacy]`, pushing every problem with its key.
pub(super) fn validate(
    raw: Option<RawPrivacy>,
    now: DateTime<Utc>,
    push: &mut impl FnMut(String, String),
) -> Privacy {
    let raw = raw.unwrap_or_default();
    let mut out = Privacy::default();
    for (key, text, into) in [
        (
            "privacy.raw_payloads",
            raw.raw_payloads,
            &mut out.raw_payloads,
        ),
        (
            "privacy.message_texts",
            raw.message_texts,
            &mut out.message_texts,
        ),
    ] {
        if let Some(t) = text {
            match KEEP.span(&t) {
                Ok(d) => *into = d,
                Err(m) => push(key.into(), m),
            }
        }
    }
    if let Some(cron) = raw.purge {
        match check_cron(&cron, now) {
            Ok(()) => out.purge = cron,
            Err(m) => push("privacy.purge".into(), m),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> (Privacy, Vec<(String, String)>) {
        let raw: RawPrivacy = toml::from_str(toml_text).expect("toml");
        let mut problems = Vec::new();
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("now");
        let p = validate(Some(raw), now, &mut |k, m| problems.push((k, m)));
        (p, problems)
    }

    #[test]
    fn defaults_are_thirty_and_one_hundred_eighty_days() {
        let (p, problems) = read("");
        assert!(problems.is_empty());
        assert_eq!(p.raw_payloads, Duration::days(30));
        assert_eq!(p.message_texts, Duration::days(180));
        assert_eq!(p.purge, DEFAULT_PURGE_CRON);
    }

    #[test]
    fn bad_values_are_named_by_key() {
        let (_, problems) =
            read("raw_payloads = \"2h\"\nmessage_texts = \"soon\"\npurge = \"daily\"");
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "privacy.raw_payloads",
                "privacy.message_texts",
                "privacy.purge"
            ]
        );
        assert!(problems[0].1.contains("too short"), "{}", problems[0].1);
    }

    #[test]
    fn values_within_range_are_kept() {
        let (p, problems) = read("raw_payloads = \"7d\"\nmessage_texts = \"365d\"");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.raw_payloads, Duration::days(7));
        assert_eq!(p.message_texts, Duration::days(365));
    }
}
