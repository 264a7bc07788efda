//! Feedback rules: `[[rules]]` entries with `kind = "feedback"` ask the patient to score a
//! visit some time after it ended (`after`), with a template whose five buttons are the scores.

use std::collections::BTreeMap;

use chrono::Duration;

use super::raw::RawRule;
use super::values::Bounds;
use super::{Template, list_or_none};
use crate::model::Intent;

/// The rule kind that asks for feedback (`kind = "feedback"`).
pub const FEEDBACK_KIND: &str = "feedback";

/// How long after the visit a feedback request may go at most (`after`, `latest`): a month.
const AFTER: Bounds = Bounds::new(0, 30 * 24 * 3600);

/// A feedback rule: which template to send how long after which clinics' visits end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRule {
    /// Unique name among all rules, stored on every request it plans (`after-visit`).
    pub name: String,
    /// What the clinic calls it on the desk; `None`: the name, humanised.
    pub label: Option<String>,
    /// How long after the appointment's end to send.
    pub after: Duration,
    /// Not sent later than this after the end; a later one is `expired`.
    pub latest: Duration,
    /// Key of the template in `[templates]` (five `feedback` buttons).
    pub template: String,
    /// Clinics it applies to.
    pub clinics: Vec<String>,
}

/// Validates one `kind = "feedback"` rule at `rules[i]`; the shared checks (name, label,
/// clinics) are the caller's.
pub(super) fn validate(
    i: usize,
    r: &RawRule,
    templates: &BTreeMap<String, Template>,
    push: &mut impl FnMut(String, String),
) -> Option<(Duration, Duration)> {
    let k = |f: &str| format!("rules[{i}].{f}");
    if r.before.is_some() {
        push(
            k("before"),
            "a feedback rule goes after the visit: write after = \"2h\" (how long after the appointment ends), not before".into(),
        );
    }
    if r.skip_if_confirmed {
        push(
            k("skip_if_confirmed"),
            "is for reminder rules; a feedback request goes to every visit that was not cancelled or missed".into(),
        );
    }
    if r.sms_fallback.is_some() {
        push(
            k("sms_fallback"),
            "is for reminder rules; a feedback request follows its clinic's sms_fallback".into(),
        );
    }
    let after = match r.after.as_deref() {
        None => {
            push(
                k("after"),
                "is missing: a feedback rule says how long after the appointment ends it goes (after = \"2h\")".into(),
            );
            None
        }
        Some(a) => AFTER.span(a).map_err(|m| push(k("after"), m)).ok(),
    };
    let latest = AFTER.span(&r.latest).map_err(|m| push(k("latest"), m)).ok();
    if let (Some(a), Some(l)) = (after, latest)
        && l <= a
    {
        push(
            k("latest"),
            format!(
                "{} is not more than after = {}: for a feedback rule, latest is how long after the end it may still go",
                r.latest,
                r.after.as_deref().unwrap_or_default()
            ),
        );
    }
    match templates.get(&r.template) {
        None => push(
            k("template"),
            format!(
                "no template {:?} under [templates]; configured: {}",
                r.template,
                list_or_none(templates.keys())
            ),
        ),
        Some(t) if t.buttons.len() != 5 || t.buttons.iter().any(|b| *b != Intent::Feedback) => {
            push(
                k("template"),
                format!(
                    "template {:?} must have buttons = [\"feedback\", \"feedback\", \"feedback\", \"feedback\", \"feedback\"]: the five buttons are the scores 1 to 5",
                    r.template
                ),
            );
        }
        Some(_) => {}
    }
    after.zip(latest).filter(|(a, l)| l > a)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const TEMPLATE: &str = r#"
[templates.visit_feedback]
name = "visit_feedback"
params = ["patient.first_name", "clinic.name"]
buttons = ["feedback", "feedback", "feedback", "feedback", "feedback"]
[templates.visit_feedback.languages.en]
body = "Hello {{1}}, how was your visit to {{2}}? Tap a score from 1 (poor) to 5 (excellent)."
buttons = ["1", "2", "3", "4", "5"]
"#;

    fn with(rule: &str) -> Result<Config, String> {
        let text = include_str!("../../reminders.toml");
        let text = format!("{text}\n{TEMPLATE}\n[[rules]]\n{rule}\n");
        Config::from_toml(&text, Path::new("r.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_feedback_rule_is_read_beside_the_reminders_and_off_until_written() {
        let shipped = Config::example().expect("shipped config");
        assert!(shipped.feedback.is_empty(), "off by default");
        let c = with("name = \"after-visit\"\nkind = \"feedback\"\nafter = \"2h\"\nlatest = \"1d\"\ntemplate = \"visit_feedback\"\nclinics = [\"mumbai\"]")
            .expect("valid");
        let f = &c.feedback[0];
        assert_eq!(
            (f.name.as_str(), f.after, f.latest, f.clinics.clone()),
            (
                "after-visit",
                chrono::Duration::hours(2),
                chrono::Duration::days(1),
                vec!["mumbai".to_string()]
            )
        );
        assert!(c.rules.iter().all(|r| r.name != "after-visit"));
        assert_eq!(c.rule_label("after-visit"), "After visit");
    }

    #[test]
    fn a_bad_feedback_rule_is_refused_naming_its_key() {
        let base = "name = \"after-visit\"\nkind = \"feedback\"\ntemplate = \"visit_feedback\"";
        for (rule, key, words) in [
            (format!("{base}\nlatest = \"1d\""), "].after: is missing", "after = \"2h\""),
            (format!("{base}\nafter = \"2x\"\nlatest = \"1d\""), "].after: ", "2x"),
            (format!("{base}\nafter = \"2h\"\nlatest = \"1h\""), "].latest: ", "not more than after"),
            (format!("{base}\nafter = \"2h\"\nbefore = \"1d\"\nlatest = \"1d\""), "].before: ", "after the visit"),
            (
                "name = \"after-visit\"\nkind = \"feedback\"\nafter = \"2h\"\nlatest = \"1d\"\ntemplate = \"reminder\"".into(),
                "].template: ",
                "five buttons",
            ),
            (
                format!("{base}\nafter = \"2h\"\nlatest = \"1d\"\nsms_fallback = false"),
                "].sms_fallback: ",
                "clinic's sms_fallback",
            ),
            (
                "name = \"x\"\nkind = \"survey\"\nbefore = \"1d\"\nlatest = \"1h\"\ntemplate = \"reminder\"".into(),
                "].kind: ",
                "reminder or feedback",
            ),
            (
                "name = \"x\"\nlatest = \"1h\"\ntemplate = \"reminder\"".into(),
                "].before: is missing",
                "kind = \"feedback\"",
            ),
            (
                "name = \"x\"\nbefore = \"1d\"\nafter = \"1h\"\nlatest = \"1h\"\ntemplate = \"reminder\"".into(),
                "].after: ",
                "kind = \"feedback\"",
            ),
        ] {
            let err = with(&rule).expect_err(&rule);
            assert!(err.contains(key) && err.contains(words), "{rule}: {err}");
        }
        let four = TEMPLATE.replace("\"feedback\", \"feedback\"]", "\"feedback\"]");
        let text = format!("{}\n{four}", include_str!("../../reminders.toml"));
        let err = Config::from_toml(&text, Path::new("r.toml")).expect_err("four scores");
        assert!(
            err.to_string().contains(
                "templates.visit_feedback.buttons: a feedback template has exactly five buttons"
            ),
            "{err}"
        );
    }
}
