//! The `[waitlist]` section and each clinic's `[clinics.KEY.waitlist]` override: whether freed
//! slots are offered to waitlisted patients, with which template, and how fast and how often.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Deserialize;

use super::values::Bounds;
use crate::model::Intent;

/// The buttons an offer template must carry, in order: Accept (`confirm`) and No (`cancel`).
pub const OFFER_BUTTONS: [Intent; 2] = [Intent::Confirm, Intent::Cancel];

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
const GRACE: Bounds = Bounds::new(0, 2 * HOUR);
const BATCH_GAP: Bounds = Bounds::new(MINUTE, DAY);
const OFFER_VALID: Bounds = Bounds::new(5 * MINUTE, DAY);
const LEAD_TIME: Bounds = Bounds::new(30 * MINUTE, 7 * DAY);

/// One clinic's waitlist settings, as validated (defaults from `[waitlist]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waitlist {
    /// Freed slots are offered at all.
    pub enabled: bool,
    /// The `[templates]` key of the approved offer (buttons: Accept, No).
    pub offer_template: Option<String>,
    /// Wait after a cancellation before the first offer: an "oops" can be undone.
    pub grace: Duration,
    /// Patients offered per round.
    pub batch: u32,
    /// Time between rounds of one opening.
    pub batch_gap: Duration,
    /// How long an offer may be taken.
    pub offer_valid: Duration,
    /// No offer for a slot that starts sooner than this.
    pub lead_time: Duration,
    /// Most offers one patient gets in any 7 days.
    pub max_offers_per_week: u32,
    /// Cancellations by the clinic on one clinic-day that mark the day closed.
    pub closure_threshold: u32,
}

impl Default for Waitlist {
    /// What a file without `[waitlist]` means: off, with the usual knobs.
    fn default() -> Self {
        Self {
            enabled: false,
            offer_template: None,
            grace: Duration::minutes(10),
            batch: 3,
            batch_gap: Duration::minutes(20),
            offer_valid: Duration::minutes(30),
            lead_time: Duration::hours(3),
            max_offers_per_week: 3,
            closure_threshold: 5,
        }
    }
}

/// The waitlist settings of every clinic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waitlists {
    /// `[waitlist]` as validated.
    pub default: Waitlist,
    /// Clinics with their own `[clinics.KEY.waitlist]`, merged over the default.
    pub clinics: BTreeMap<String, Waitlist>,
}

impl Waitlists {
    /// The settings of clinic `key`.
    pub fn for_clinic(&self, key: &str) -> &Waitlist {
        self.clinics.get(key).unwrap_or(&self.default)
    }
}

/// `[waitlist]` or `[clinics.KEY.waitlist]` as written; a clinic's keys override the default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWaitlist {
    enabled: Option<bool>,
    offer_template: Option<String>,
    grace: Option<String>,
    batch: Option<u32>,
    batch_gap: Option<String>,
    offer_valid: Option<String>,
    lead_time: Option<String>,
    max_offers_per_week: Option<u32>,
    closure_threshold: Option<u32>,
}

/// Reads the default and each clinic's override, checking the template against `templates`.
pub(super) fn validate(
    raw: Option<RawWaitlist>,
    per_clinic: BTreeMap<String, RawWaitlist>,
    templates: &BTreeMap<String, super::Template>,
    push: &mut impl FnMut(String, String),
) -> Waitlists {
    let default = merge(
        &Waitlist::default(),
        raw.unwrap_or_default(),
        "waitlist",
        templates,
        push,
    );
    let clinics = per_clinic
        .into_iter()
        .map(|(key, raw)| {
            let w = merge(
                &default,
                raw,
                &format!("clinics.{}.waitlist", super::seg(&key)),
                templates,
                push,
            );
            (key, w)
        })
        .collect();
    Waitlists { default, clinics }
}

fn merge(
    base: &Waitlist,
    raw: RawWaitlist,
    section: &str,
    templates: &BTreeMap<String, super::Template>,
    push: &mut impl FnMut(String, String),
) -> Waitlist {
    let k = |f: &str| format!("{section}.{f}");
    let mut out = base.clone();
    let mut span = |field: &str, text: Option<String>, bounds: Bounds, into: &mut Duration| {
        if let Some(t) = text {
            match bounds.span(&t) {
                Ok(d) => *into = d,
                Err(m) => push(k(field), m),
            }
        }
    };
    span("grace", raw.grace, GRACE, &mut out.grace);
    span("batch_gap", raw.batch_gap, BATCH_GAP, &mut out.batch_gap);
    span(
        "offer_valid",
        raw.offer_valid,
        OFFER_VALID,
        &mut out.offer_valid,
    );
    span("lead_time", raw.lead_time, LEAD_TIME, &mut out.lead_time);
    for (field, value, range, into) in [
        ("batch", raw.batch, 1..=20, &mut out.batch),
        (
            "max_offers_per_week",
            raw.max_offers_per_week,
            1..=50,
            &mut out.max_offers_per_week,
        ),
        (
            "closure_threshold",
            raw.closure_threshold,
            1..=10_000,
            &mut out.closure_threshold,
        ),
    ] {
        if let Some(v) = value
            && super::values::check_number(&k(field), v, &range, "", push)
        {
            *into = v;
        }
    }
    if let Some(e) = raw.enabled {
        out.enabled = e;
    }
    if let Some(t) = raw.offer_template {
        out.offer_template = Some(t);
    }
    check_template(&out, section, templates, push);
    out
}

fn check_template(
    w: &Waitlist,
    section: &str,
    templates: &BTreeMap<String, super::Template>,
    push: &mut impl FnMut(String, String),
) {
    let key = format!("{section}.offer_template");
    match &w.offer_template {
        None if w.enabled => push(
            key,
            "is not set, and offers need an approved template; add [templates.waitlist_offer] with buttons = [\"confirm\", \"cancel\"] and name it here".into(),
        ),
        None => {}
        Some(t) => match templates.get(t) {
            None => push(
                key,
                format!(
                    "names no template: {t:?} is not under [templates] (configured: {}); add [templates.{t}]",
                    if templates.is_empty() {
                        "none".to_string()
                    } else {
                        templates.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            ),
            Some(tpl) if tpl.buttons != OFFER_BUTTONS => push(
                key,
                format!(
                    "template {t:?} must have buttons = [\"confirm\", \"cancel\"] (labelled Accept and No): a tap on the first takes the slot, on the second turns it down"
                ),
            ),
            Some(_) => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> BTreeMap<String, super::super::Template> {
        let t = |buttons: Vec<Intent>| super::super::Template {
            name: "slot_offer".into(),
            params: Vec::new(),
            buttons,
            languages: BTreeMap::new(),
            contact_template: None,
            ttl: None,
            alternate: None,
        };
        BTreeMap::from([
            ("offer".to_string(), t(OFFER_BUTTONS.to_vec())),
            ("reminder".to_string(), t(vec![Intent::Confirm])),
        ])
    }

    fn check(default: &str, clinic: Option<&str>) -> (Waitlists, Vec<(String, String)>) {
        let raw: RawWaitlist = toml::from_str(default).expect("parse");
        let mut per = BTreeMap::new();
        if let Some(c) = clinic {
            per.insert("pune".to_string(), toml::from_str(c).expect("parse"));
        }
        let mut problems = Vec::new();
        let w = validate(Some(raw), per, &templates(), &mut |k, m| {
            problems.push((k, m))
        });
        (w, problems)
    }

    #[test]
    fn a_clinic_overrides_only_the_keys_it_sets_and_the_rest_come_from_the_default() {
        let (w, problems) = check(
            "enabled = true\noffer_template = \"offer\"\nbatch = 4\ngrace = \"5m\"",
            Some("batch = 2\nlead_time = \"1d\""),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let pune = w.for_clinic("pune");
        assert_eq!((pune.batch, pune.grace), (2, Duration::minutes(5)));
        assert_eq!(pune.lead_time, Duration::days(1));
        assert!(pune.enabled);
        let other = w.for_clinic("mumbai");
        assert_eq!((other.batch, other.lead_time), (4, Duration::hours(3)));
        assert_eq!(other.max_offers_per_week, 3);
    }

    #[test]
    fn an_offer_template_without_accept_and_no_buttons_or_a_bad_value_is_named_by_key() {
        let (_, problems) = check(
            "enabled = true\noffer_template = \"reminder\"\nbatch = 0",
            Some("offer_valid = \"1m\"\noffer_template = \"nope\""),
        );
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "waitlist.batch",
                "waitlist.offer_template",
                "clinics.pune.waitlist.offer_valid",
                "clinics.pune.waitlist.offer_template"
            ],
            "{problems:?}"
        );
        let (_, problems) = check("enabled = true", None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].1.contains("is not set"));
    }
}
