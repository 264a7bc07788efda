//! `[report]`: how the evaluation report judges its figures (`min_count`, the fewest
//! appointments a rate is shown for).

use serde::Deserialize;

use crate::report::DEFAULT_MIN_COUNT;

/// The largest `min_count` accepted: a rate needing more would never be shown for a clinic.
const MAX_MIN_COUNT: u64 = 100_000;

/// The evaluation report's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// A rate computed from fewer appointments than this is shown as "too few" (default 20).
    pub min_count: u64,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            min_count: DEFAULT_MIN_COUNT,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    min_count: Option<i64>,
}

/// Checks `[report]`: a `min_count` from 1 to 100000.
pub(super) fn validate(raw: Option<RawReport>, push: &mut impl FnMut(String, String)) -> Report {
    let Some(n) = raw.and_then(|r| r.min_count) else {
        return Report::default();
    };
    match u64::try_from(n) {
        Ok(n) if (1..=MAX_MIN_COUNT).contains(&n) => Report { min_count: n },
        _ => {
            push(
                "report.min_count".into(),
                format!(
                    "{n} is not a number of appointments; give a whole number from 1 to {MAX_MIN_COUNT}, e.g. 20"
                ),
            );
            Report::default()
        }
    }
}
