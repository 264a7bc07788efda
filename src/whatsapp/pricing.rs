//! The `pricing` object of a status webhook: what Meta bills for one message (per-message
//! pricing since 2025-07-01; utility templates and service messages billed since 2026-10-01).

use serde::Deserialize;

/// A status's `pricing`: what Meta bills for the message. Every field optional: `billable`
/// is slated for deprecation and `type` arrived with webhook v24.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pricing {
    /// Whether the message is charged.
    pub billable: Option<bool>,
    /// `utility`, `service`, `marketing`, `authentication`, ...
    pub category: Option<String>,
    /// `PMP` (per message) since 2025-07-01.
    pub pricing_model: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}
