//! The `[conversations]` section: what staff may send a patient from the desk's conversation
//! page (the "please call us" template outside the 24-hour window), the clinic's own rules for
//! messaging, and the phrases that make the reply box warn before sending.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The clinic's rules when `guidelines` is not set: what every clinic should tell its staff.
pub const DEFAULT_GUIDELINES: &str = "Write as the clinic, politely and briefly, in the patient's language.
Confirm, move or cancel appointments; answer questions about times, the address and what to bring.
Never send test results, diagnoses, prescriptions or anything about a patient's health: ask the patient to call or come in, and share these in person.
Never send another patient's details, and never ask for a card number or a password.
If you are unsure, ask the doctor or the practice manager before sending.";

/// The phrases the reply box warns about when `sensitive_patterns` is not set (lower case,
/// matched as plain parts of the text, so "diagnos" catches diagnosis and diagnosed).
pub const DEFAULT_SENSITIVE_PATTERNS: [&str; 11] = [
    "test result",
    "diagnos",
    "biopsy",
    "positive",
    "negative",
    "hba1c",
    "cancer",
    "tumour",
    "tumor",
    "hiv",
    "pregnan",
];

/// Longest guidelines text accepted (a page of rules, not a manual).
const MAX_GUIDELINES: usize = 20_000;
/// Longest phrase accepted, and most phrases.
const MAX_PATTERN: usize = 100;
const MAX_PATTERNS: usize = 200;

/// Conversations on the desk, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversations {
    /// The `[templates]` key of the approved "please call us" template offered outside the
    /// patient's 24-hour window (`None`: nothing can be sent outside it).
    pub call_us_template: Option<String>,
    /// The clinic's rules for messaging, shown on the desk's Guidelines page.
    pub guidelines: String,
    /// Phrases (lower case) that make the reply box warn before sending; empty: no warning.
    pub sensitive_patterns: Vec<String>,
}

impl Default for Conversations {
    /// What a file without `[conversations]` means.
    fn default() -> Self {
        Self {
            call_us_template: None,
            guidelines: DEFAULT_GUIDELINES.to_string(),
            sensitive_patterns: DEFAULT_SENSITIVE_PATTERNS
                .iter()
                .map(|p| (*p).to_string())
                .collect(),
        }
    }
}

impl Conversations {
    /// The first configured phrase `text` contains (ignoring case), if any.
    pub fn sensitive_match(&self, text: &str) -> Option<&str> {
        let lower = text.to_lowercase();
        self.sensitive_patterns
            .iter()
            .find(|p| lower.contains(p.as_str()))
            .map(String::as_str)
    }
}

/// `[conversations]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConversations {
    call_us_template: Option<String>,
    guidelines: Option<String>,
    sensitive_patterns: Option<Vec<String>>,
}

/// Checks the section against the templates; every problem goes to `push` with its key.
pub(super) fn validate(
    raw: Option<RawConversations>,
    templates: &BTreeMap<String, super::Template>,
    push: &mut impl FnMut(String, String),
) -> Conversations {
    let Some(raw) = raw else {
        return Conversations::default();
    };
    let mut out = Conversations::default();
    if let Some(key) = raw.call_us_template {
        if !templates.contains_key(&key) {
            let known: Vec<&str> = templates.keys().map(String::as_str).collect();
            push(
                "conversations.call_us_template".into(),
                format!(
                    "names no template: {key:?} is not under [templates] (configured: {}); add [templates.{key}] with the approved \"please call us\" template",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        }
        out.call_us_template = Some(key);
    }
    if let Some(text) = raw.guidelines {
        let text = text.trim().to_string();
        if text.is_empty() {
            push(
                "conversations.guidelines".into(),
                "is empty; write the clinic's rules for messaging, or leave the key out for the built-in ones".into(),
            );
        } else if text.len() > MAX_GUIDELINES {
            push(
                "conversations.guidelines".into(),
                format!(
                    "is {} characters long; keep it under {MAX_GUIDELINES}",
                    text.len()
                ),
            );
        }
        out.guidelines = text;
    }
    if let Some(patterns) = raw.sensitive_patterns {
        if patterns.len() > MAX_PATTERNS {
            push(
                "conversations.sensitive_patterns".into(),
                format!("lists {} phrases; at most {MAX_PATTERNS}", patterns.len()),
            );
        }
        out.sensitive_patterns = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let phrase = p.trim().to_lowercase();
            if phrase.is_empty() || phrase.chars().count() > MAX_PATTERN {
                push(
                    format!("conversations.sensitive_patterns[{i}]"),
                    format!("{p:?} must be a phrase of 1 to {MAX_PATTERN} characters"),
                );
            } else if !out.sensitive_patterns.contains(&phrase) {
                out.sensitive_patterns.push(phrase);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> (Conversations, Vec<(String, String)>) {
        let raw: RawConversations = toml::from_str(toml_text).expect("parse");
        let mut templates = BTreeMap::new();
        templates.insert(
            "call_us".to_string(),
            super::super::Template {
                name: "please_call_us".into(),
                params: Vec::new(),
                buttons: Vec::new(),
                languages: BTreeMap::new(),
                contact_template: None,
                ttl: None,
                alternate: None,
            },
        );
        let mut problems = Vec::new();
        let c = validate(Some(raw), &templates, &mut |k, m| problems.push((k, m)));
        (c, problems)
    }

    #[test]
    fn an_unknown_template_is_named_by_its_key_and_phrases_match_ignoring_case() {
        let (_, problems) = check("call_us_template = \"ring_us\"");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, "conversations.call_us_template");
        assert!(problems[0].1.contains("\"ring_us\""), "{}", problems[0].1);

        let (c, problems) = check(
            "call_us_template = \"call_us\"\nsensitive_patterns = [\"HbA1c\", \"Test Result\"]",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.call_us_template.as_deref(), Some("call_us"));
        assert_eq!(c.sensitive_match("Your HBA1C is 7.2"), Some("hba1c"));
        assert_eq!(c.sensitive_match("See you at 5"), None);
        assert_eq!(c.guidelines, DEFAULT_GUIDELINES);

        let (off, _) = check("sensitive_patterns = []");
        assert_eq!(off.sensitive_match("your test result is fine"), None);
        let (bad, problems) = check("sensitive_patterns = [\"  \"]\nguidelines = \" \"");
        assert!(bad.sensitive_patterns.is_empty());
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "conversations.guidelines",
                "conversations.sensitive_patterns[0]"
            ]
        );
    }

    #[test]
    fn the_defaults_warn_about_results_and_diagnoses() {
        let c = Conversations::default();
        assert_eq!(c.sensitive_match("The DIAGNOSIS is clear"), Some("diagnos"));
        assert_eq!(
            c.sensitive_match("Your test results are in"),
            Some("test result")
        );
    }
}
