//! The few FHIR R4 resources reminderd reads and writes, by hand: only the fields used, unknown
//! fields ignored, so a server's extensions and R4B additions never break a sync.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Resource.meta`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The server's version of the resource (`ETag: W/"<versionId>"`).
    pub version_id: Option<String>,
    /// When the server last changed it (or, on a Bundle, when the search ran).
    pub last_updated: Option<String>,
}

/// A `Reference`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Reference {
    /// `Patient/9`, or an absolute URL ending so.
    pub reference: Option<String>,
    /// Text a server adds for people (a practitioner's name).
    pub display: Option<String>,
}

impl Reference {
    /// `(type, id)` of a relative or absolute literal reference (`…/Patient/9/_history/2` too).
    pub fn target(&self) -> Option<(&str, &str)> {
        let r = self.reference.as_deref()?.trim();
        let r = r.split("/_history/").next().unwrap_or(r);
        let mut parts = r.rsplit('/');
        let id = parts.next().filter(|s| !s.is_empty())?;
        let kind = parts.next().filter(|s| !s.is_empty())?;
        Some((kind, id))
    }
}

/// A `Bundle` of `type: searchset`; entries kept raw so one bad resource is refused alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Must be `Bundle`.
    pub resource_type: String,
    /// When the search ran, on servers that say.
    #[serde(default)]
    pub meta: Option<Meta>,
    /// `self`, `next`, ...
    #[serde(default)]
    pub link: Vec<BundleLink>,
    /// The resources.
    #[serde(default)]
    pub entry: Vec<BundleEntry>,
}

impl Bundle {
    /// The `next` page's URL.
    pub fn next(&self) -> Option<&str> {
        self.link
            .iter()
            .find(|l| l.relation == "next")
            .map(|l| l.url.as_str())
    }
}

/// `Bundle.link`.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleLink {
    /// `next`, `self`, ...
    pub relation: String,
    /// Where.
    pub url: String,
}

/// `Bundle.entry`.
#[derive(Debug, Clone, Deserialize)]
pub struct BundleEntry {
    /// The resource, unread.
    pub resource: Option<Value>,
    /// Whether it matched the search or was included.
    pub search: Option<EntrySearch>,
}

/// `Bundle.entry.search`.
#[derive(Debug, Clone, Deserialize)]
pub struct EntrySearch {
    /// `match`, `include` or `outcome`.
    pub mode: Option<String>,
}

/// An R4 `Appointment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    /// Its id on the server.
    pub id: Option<String>,
    /// Its version.
    #[serde(default)]
    pub meta: Option<Meta>,
    /// `proposed`, `pending`, `booked`, `arrived`, `fulfilled`, `cancelled`, `noshow`,
    /// `entered-in-error`, `checked-in`, `waitlist`.
    pub status: String,
    /// Start (an instant).
    pub start: Option<String>,
    /// End (an instant).
    pub end: Option<String>,
    /// Length, when no end is given.
    pub minutes_duration: Option<u32>,
    /// Why it was cancelled (HL7's appointment-cancellation-reason codes, R4's spelling).
    #[serde(default)]
    pub cancelation_reason: Option<CodeableConcept>,
    /// Who and where.
    #[serde(default)]
    pub participant: Vec<Participant>,
}

impl Appointment {
    /// Whether its cancellation reason is the patient's: code `pat` of
    /// appointment-cancellation-reason, or one of its children (`pat-crs`, `pat-mv`, ...),
    /// in that system or with no system named.
    pub fn cancelled_by_patient(&self) -> bool {
        self.cancelation_reason.as_ref().is_some_and(|r| {
            r.coding.iter().any(|c| {
                c.system
                    .as_deref()
                    .is_none_or(|s| s == CANCELLATION_REASONS)
                    && c.code
                        .as_deref()
                        .is_some_and(|code| code == "pat" || code.starts_with("pat-"))
            })
        })
    }

    /// The participant whose actor is a `kind` (`Patient`, `Location`, ...).
    pub fn actor(&self, kinds: &[&str]) -> Option<&Reference> {
        self.participant
            .iter()
            .filter_map(|p| p.actor.as_ref())
            .find(|a| a.target().is_some_and(|(k, _)| kinds.contains(&k)))
    }
}

/// `Appointment.participant`.
#[derive(Debug, Clone, Deserialize)]
pub struct Participant {
    /// The person or place.
    pub actor: Option<Reference>,
    /// `accepted`, `declined`, ...
    pub status: Option<String>,
}

/// An R4 `Patient`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Its id on the server.
    pub id: Option<String>,
    /// Its version.
    #[serde(default)]
    pub meta: Option<Meta>,
    /// Names.
    #[serde(default)]
    pub name: Vec<HumanName>,
    /// Phones, e-mail, ...
    #[serde(default)]
    pub telecom: Vec<ContactPoint>,
    /// Languages.
    #[serde(default)]
    pub communication: Vec<Communication>,
    /// Deceased, as a flag.
    pub deceased_boolean: Option<bool>,
    /// Deceased, with a date.
    pub deceased_date_time: Option<String>,
}

/// `HumanName`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HumanName {
    /// `official`, `usual`, `old`, ...
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// The whole name as written.
    pub text: Option<String>,
    /// Family name.
    pub family: Option<String>,
    /// Given names.
    #[serde(default)]
    pub given: Vec<String>,
}

/// `ContactPoint`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactPoint {
    /// `phone`, `sms`, `email`, ...
    pub system: Option<String>,
    /// The number.
    pub value: Option<String>,
    /// `home`, `work`, `mobile`, ...
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// 1 is preferred.
    pub rank: Option<u32>,
}

/// `Patient.communication`.
#[derive(Debug, Clone, Deserialize)]
pub struct Communication {
    /// The language.
    pub language: CodeableConcept,
    /// The patient's preferred one.
    pub preferred: Option<bool>,
}

/// `CodeableConcept`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CodeableConcept {
    /// Codes.
    #[serde(default)]
    pub coding: Vec<Coding>,
    /// Text.
    pub text: Option<String>,
}

/// `Coding`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Coding {
    /// The code system.
    pub system: Option<String>,
    /// The code.
    pub code: Option<String>,
    /// Words for it.
    pub display: Option<String>,
}

/// An R4 `Location`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Location {
    /// Its id on the server.
    pub id: Option<String>,
    /// Its name.
    pub name: Option<String>,
}

/// An `OperationOutcome`: why a server refused.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperationOutcome {
    /// What went wrong.
    #[serde(default)]
    pub issue: Vec<Issue>,
}

/// `OperationOutcome.issue`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Issue {
    /// `fatal`, `error`, `warning`, `information`.
    pub severity: Option<String>,
    /// `invalid`, `security`, `not-found`, `conflict`, ...
    pub code: Option<String>,
    /// The server's words.
    pub diagnostics: Option<String>,
    /// Coded details.
    pub details: Option<CodeableConcept>,
}

impl OperationOutcome {
    /// The server's own words, issue by issue (errors first).
    pub fn words(&self) -> String {
        let mut issues: Vec<&Issue> = self.issue.iter().collect();
        issues.sort_by_key(|i| !matches!(i.severity.as_deref(), Some("fatal" | "error")));
        let parts: Vec<String> = issues
            .iter()
            .filter_map(|i| {
                i.diagnostics
                    .clone()
                    .or_else(|| i.details.as_ref().and_then(|d| d.text.clone()))
                    .or_else(|| i.code.clone())
            })
            .collect();
        parts.join("; ")
    }
}

/// A `CapabilityStatement`, as far as what a server lets us do.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapabilityStatement {
    /// The server's REST capabilities.
    #[serde(default)]
    pub rest: Vec<CapabilityRest>,
}

/// `CapabilityStatement.rest`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapabilityRest {
    /// Per resource type.
    #[serde(default)]
    pub resource: Vec<CapabilityResource>,
}

/// `CapabilityStatement.rest.resource`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapabilityResource {
    /// `Appointment`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// What may be done.
    #[serde(default)]
    pub interaction: Vec<Interaction>,
}

/// `CapabilityStatement.rest.resource.interaction`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Interaction {
    /// `read`, `update`, `create`, `search-type`, ...
    pub code: String,
}

impl CapabilityStatement {
    /// Whether the server says it allows `interaction` on `kind`.
    pub fn allows(&self, kind: &str, interaction: &str) -> bool {
        self.rest
            .iter()
            .flat_map(|r| &r.resource)
            .filter(|r| r.kind == kind)
            .flat_map(|r| &r.interaction)
            .any(|i| i.code == interaction)
    }
}

/// The R4 code system of appointment cancellation reasons.
pub const CANCELLATION_REASONS: &str =
    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_relative_absolute_and_versioned() {
        let r = |s: &str| Reference {
            reference: Some(s.into()),
            display: None,
        };
        assert_eq!(r("Patient/9").target(), Some(("Patient", "9")));
        assert_eq!(
            r("https://ehr.example.org/fhir/Patient/9/_history/3").target(),
            Some(("Patient", "9"))
        );
        assert_eq!(r("9").target(), None);
    }

    #[test]
    fn unknown_fields_are_ignored_and_cancelation_is_spelt_as_r4_does() {
        let a: Appointment = serde_json::from_value(serde_json::json!({
            "resourceType": "Appointment", "id": "1", "status": "cancelled",
            "cancelationReason": {"coding": [{"code": "pat"}]},
            "extension": [{"url": "x"}], "start": "2026-12-01T10:00:00+05:30",
            "participant": [{"actor": {"reference": "Patient/9"}, "status": "accepted"}]
        }))
        .expect("parse");
        assert_eq!(a.status, "cancelled");
        assert_eq!(
            a.actor(&["Patient"]).and_then(Reference::target),
            Some(("Patient", "9"))
        );
    }

    #[test]
    fn capability_and_outcome_words() {
        let c: CapabilityStatement = serde_json::from_value(serde_json::json!({
            "resourceType": "CapabilityStatement",
            "rest": [{"resource": [{"type": "Appointment", "interaction": [{"code": "read"}, {"code": "search-type"}]}]}]
        }))
        .expect("parse");
        assert!(c.allows("Appointment", "read"));
        assert!(!c.allows("Appointment", "update"));
        let o: OperationOutcome = serde_json::from_value(serde_json::json!({
            "issue": [{"severity": "warning", "code": "informational", "diagnostics": "slow"},
                      {"severity": "error", "code": "processing", "diagnostics": "Appointment is locked"}]
        }))
        .expect("parse");
        assert_eq!(o.words(), "Appointment is locked; slow");
    }
}
