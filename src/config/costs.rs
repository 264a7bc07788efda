//! What the messages cost (`[costs]`): the currency and a rate per WhatsApp pricing category,
//! and the pure sum of a range's billable messages per clinic, month and category.
//!
//! Since 2026-10-01 Meta bills utility templates and free-form (service) messages alike; the
//! category and whether a message was billed come from its status webhooks (`pricing`), so
//! the estimate counts what Meta said, not what reminderd guessed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// The pricing categories a rate can be given for.
pub const CATEGORIES: [&str; 4] = ["utility", "service", "marketing", "authentication"];

/// Per-category rates for the cost estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Costs {
    /// ISO 4217 code the rates are in (`INR`).
    pub currency: String,
    /// Price of one billable message per category (lower case, as webhooks write it).
    pub rates: BTreeMap<String, f64>,
}

/// Whether a clinic sends the acknowledgement after a patient's answer
/// (`clinics.KEY.acks`): each is a billed service message since 2026-10-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckChoice {
    /// Acknowledge ("Thanks, confirmed"): the default.
    On,
    /// No acknowledgement: the patient's answer is still applied.
    Off,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCosts {
    currency: String,
    utility: Option<f64>,
    service: Option<f64>,
    marketing: Option<f64>,
    authentication: Option<f64>,
}

/// Checks `[costs]`: a three-letter currency, rates that are numbers of zero or more.
pub(super) fn validate_costs(raw: &RawCosts, push: &mut impl FnMut(String, String)) -> Costs {
    let currency = raw.currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        push(
            "costs.currency".into(),
            format!(
                "{:?} is not a currency code; give the three letters, e.g. \"INR\"",
                raw.currency
            ),
        );
    }
    let mut rates = BTreeMap::new();
    for (name, rate) in
        CATEGORIES
            .into_iter()
            .zip([raw.utility, raw.service, raw.marketing, raw.authentication])
    {
        let Some(rate) = rate else { continue };
        if !rate.is_finite() || !(0.0..=1000.0).contains(&rate) {
            push(
                format!("costs.{name}"),
                format!(
                    "{rate} is not a price of one message; give a number from 0 to 1000, e.g. 0.115"
                ),
            );
            continue;
        }
        rates.insert(name.to_string(), rate);
    }
    Costs { currency, rates }
}

/// One billable message as stored: its clinic, when it was sent and its pricing category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    /// The clinic's key.
    pub clinic: String,
    /// When the API accepted it.
    pub sent_at: DateTime<Utc>,
    /// The pricing category from its status webhook (`utility`, `service`, ...).
    pub category: String,
}

/// Billable messages of one clinic, month (in the clinic's zone) and category, with the
/// estimated cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonthCost {
    /// The clinic's key.
    pub clinic: String,
    /// `YYYY-MM` in the clinic's zone.
    pub month: String,
    /// The pricing category.
    pub category: String,
    /// How many billable messages.
    pub messages: i64,
    /// `messages` × the category's rate (`None`: no rate configured for it).
    pub cost: Option<f64>,
    /// The rates' currency (`None`: no `[costs]` section).
    pub currency: Option<String>,
}

/// Sums billable messages per clinic, local month and category, in that order.
pub fn monthly(config: &super::Config, billed: &[Billed]) -> Vec<MonthCost> {
    let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for b in billed {
        let month = config.clinic(&b.clinic).map_or_else(
            || b.sent_at.format("%Y-%m").to_string(),
            |c| {
                b.sent_at
                    .with_timezone(&c.time_zone)
                    .format("%Y-%m")
                    .to_string()
            },
        );
        *counts
            .entry((b.clinic.clone(), month, b.category.clone()))
            .or_default() += 1;
    }
    let costs = config.costs.as_ref();
    counts
        .into_iter()
        .map(|((clinic, month, category), messages)| MonthCost {
            cost: costs
                .and_then(|c| c.rates.get(&category))
                .map(|rate| rate * messages as f64),
            currency: costs.map(|c| c.currency.clone()),
            clinic,
            month,
            category,
            messages,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billable_messages_are_summed_per_local_month_and_priced_per_category() {
        let mut config = super::super::Config::example().expect("example");
        config.costs = Some(Costs {
            currency: "INR".into(),
            rates: BTreeMap::from([("utility".into(), 0.115), ("service".into(), 0.1)]),
        });
        let clinic = config.clinics.keys().next().expect("a clinic").clone();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("time").to_utc();
        let billed = |t: &str, c: &str| Billed {
            clinic: clinic.clone(),
            sent_at: at(t),
            category: c.into(),
        };
        let rows = monthly(
            &config,
            &[
                billed("2026-10-05T09:00:00Z", "utility"),
                billed("2026-10-06T09:00:00Z", "utility"),
                billed("2026-10-06T10:00:00Z", "service"),
                billed("2026-10-07T10:00:00Z", "marketing"),
            ],
        );
        let row = |c: &str| rows.iter().find(|r| r.category == c).expect(c);
        assert_eq!(row("utility").messages, 2);
        assert!((row("utility").cost.expect("priced") - 0.23).abs() < 1e-9);
        assert_eq!(row("service").messages, 1);
        assert_eq!(row("marketing").cost, None, "no rate, no guess");
        assert_eq!(row("utility").month, "2026-10");
    }

    #[test]
    fn rates_and_currency_are_checked() {
        let mut problems = Vec::new();
        validate_costs(
            &RawCosts {
                currency: "rupees".into(),
                utility: Some(-1.0),
                service: Some(0.1),
                marketing: None,
                authentication: None,
            },
            &mut |k, m| problems.push(format!("{k}: {m}")),
        );
        assert!(problems[0].starts_with("costs.currency: "), "{problems:?}");
        assert!(problems[1].starts_with("costs.utility: "), "{problems:?}");
    }
}
