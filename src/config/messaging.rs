//! Validation of the sections about what is sent and how: `[whatsapp]`, `[templates]`, the
//! reminder rules and `[replies]`.

use std::collections::BTreeMap;

use chrono::Duration;

use super::raw::{RawReplies, RawRule, RawTemplate, RawWhatsApp};
use super::validate::is_valid_key;
use super::values::{
    API_REQUEST_TIMEOUT, Bounds, CONNECT_TIMEOUT, RECIPIENT_SPACING, RETRY_BASE, RETRY_MAX,
    RULE_LATEST, UNKNOWN_AFTER, check_number, parse_offset,
};
use super::{
    Clinic, DEFAULT_NUMBER, FeedbackRule, Number, Replies, Rule, Template, WhatsApp, list_or_none,
};
use crate::model::Intent;

pub(super) fn validate_whatsapp(w: RawWhatsApp, push: &mut impl FnMut(String, String)) -> WhatsApp {
    let mut span = |key: &str, v: &str, bounds: Bounds, default: std::time::Duration| {
        bounds.std_span(v).unwrap_or_else(|m| {
            push(format!("whatsapp.{key}"), m);
            default
        })
    };
    let connect_timeout = span(
        "connect_timeout",
        &w.connect_timeout,
        CONNECT_TIMEOUT,
        std::time::Duration::from_secs(5),
    );
    let request_timeout = span(
        "request_timeout",
        &w.request_timeout,
        API_REQUEST_TIMEOUT,
        std::time::Duration::from_secs(15),
    );
    let retry_base = span(
        "retry_base",
        &w.retry_base,
        RETRY_BASE,
        std::time::Duration::from_secs(5),
    );
    let retry_max = span(
        "retry_max",
        &w.retry_max,
        RETRY_MAX,
        std::time::Duration::from_mins(15),
    );
    let recipient_spacing = span(
        "recipient_spacing",
        &w.recipient_spacing,
        RECIPIENT_SPACING,
        std::time::Duration::from_secs(6),
    );
    let unknown_after = UNKNOWN_AFTER.span(&w.unknown_after).unwrap_or_else(|m| {
        push("whatsapp.unknown_after".into(), m);
        Duration::hours(1)
    });
    if retry_max < retry_base {
        push(
            "whatsapp.retry_max".into(),
            format!(
                "{:?} is shorter than retry_base ({:?}); the longest retry delay must be at least the first",
                w.retry_max, w.retry_base
            ),
        );
    }
    check_number(
        "whatsapp.rate_limit_per_sec",
        w.rate_limit_per_sec,
        &(1..=1000),
        " (the Cloud API allows 80 by default, 1000 after an upgrade)",
        push,
    );
    check_number(
        "whatsapp.max_attempts",
        w.max_attempts,
        &(1..=50),
        " attempts",
        push,
    );
    // tokio's semaphore panics above 2^61 permits; more than 1024 at once gains nothing at
    // the API's 1000 messages a second.
    let max_in_flight = match w.max_in_flight {
        Some(n) if check_number("whatsapp.max_in_flight", n, &(1..=1024), " requests", push) => {
            Some(n)
        }
        _ => None,
    };
    let version_ok = w
        .api_version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && (a.to_string() + b).chars().all(|c| c.is_ascii_digit())
        });
    if !version_ok {
        push(
            "whatsapp.api_version".into(),
            format!(
                "{:?} is not a Graph API version such as \"v23.0\"",
                w.api_version
            ),
        );
    }
    let url_ok = reqwest::Url::parse(&w.api_base).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    if !url_ok {
        push(
            "whatsapp.api_base".into(),
            format!("{:?} is not an http(s) URL", w.api_base),
        );
    }
    for (key, v) in [
        ("phone_number_id", &w.phone_number_id),
        ("waba_id", &w.waba_id),
    ] {
        if !super::numbers::is_numeric_id(v) {
            push(
                format!("whatsapp.{key}"),
                format!("{v:?} is not a numeric id; copy it from WhatsApp Manager → API setup"),
            );
        }
    }
    let rate = w.rate_limit_per_sec.clamp(1, 1000);
    let default = Number {
        name: DEFAULT_NUMBER.into(),
        phone_number_id: w.phone_number_id.clone(),
        waba_id: w.waba_id.clone(),
        rate_limit_per_sec: rate,
        own_token: false,
    };
    let numbers = super::numbers::validate(default, w.numbers, push);
    let total: u32 = numbers.values().map(|n| n.rate_limit_per_sec).sum();
    WhatsApp {
        api_base: w.api_base.trim_end_matches('/').to_string(),
        api_version: w.api_version,
        phone_number_id: w.phone_number_id,
        waba_id: w.waba_id,
        rate_limit_per_sec: rate,
        // Enough requests in flight to reach the cap at a slow API (~250 ms a request), for
        // every number's cap together: each number sends in its share of them.
        max_in_flight: max_in_flight.unwrap_or((total as usize / 4).clamp(4, 256)),
        connect_timeout,
        request_timeout,
        max_attempts: w.max_attempts.clamp(1, 50),
        retry_base,
        retry_max,
        recipient_spacing,
        unknown_after,
        unknown_action: w.unknown_action,
        numbers,
    }
}

pub(super) fn validate_templates(
    raw: BTreeMap<String, RawTemplate>,
    push: &mut impl FnMut(String, String),
) -> BTreeMap<String, Template> {
    let mut out = BTreeMap::new();
    for (key, t) in raw {
        let k = |f: &str| format!("templates.{}.{f}", super::seg(&key));
        if t.name.is_empty()
            || !t
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            push(
                k("name"),
                format!(
                    "{:?} is not a WhatsApp template name (lower-case letters, digits and _)",
                    t.name
                ),
            );
        }
        if t.languages.is_empty() {
            push(k("languages"), "no language is configured; add [templates.KEY.languages.en] with the approved body".into());
        }
        if t.buttons.len() > 10 {
            push(
                k("buttons"),
                "a template has at most 10 quick-reply buttons".into(),
            );
        }
        let scores = t.buttons.iter().filter(|b| **b == Intent::Feedback).count();
        if scores > 0 && (scores != 5 || scores != t.buttons.len()) {
            push(
                k("buttons"),
                "a feedback template has exactly five buttons, all \"feedback\" (the scores 1 to 5 in order), and no others".into(),
            );
        } else if let Some(other) = t
            .buttons
            .iter()
            .find(|b| **b != Intent::Feedback && !Intent::BUTTONS.contains(b))
        {
            push(
                k("buttons"),
                format!(
                    "\"{other}\" is not a button; use confirm, cancel, reschedule or stop (or five \"feedback\" for a feedback template)"
                ),
            );
        }
        let mut languages = BTreeMap::new();
        for (lang, text) in t.languages {
            let lk = format!(
                "templates.{}.languages.{}",
                super::seg(&key),
                super::seg(&lang)
            );
            match crate::model::normalize_language(&lang) {
                Some(norm) if norm == lang => {}
                _ => push(
                    lk.clone(),
                    "is not a language code as WhatsApp writes it (en, hi, es_MX, pt_BR)".into(),
                ),
            }
            let found = placeholders(&text.body);
            let want: Vec<usize> = (1..=t.params.len()).collect();
            if found != want {
                push(
                    format!("{lk}.body"),
                    format!(
                        "has placeholders {} but params lists {} value(s); the body must use {{{{1}}}}..{{{{{}}}}} once each",
                        if found.is_empty() {
                            "none".to_string()
                        } else {
                            found
                                .iter()
                                .map(|n| format!("{{{{{n}}}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        t.params.len(),
                        t.params.len()
                    ),
                );
            }
            if text.body.chars().count() > 1024 {
                push(
                    format!("{lk}.body"),
                    "is longer than the 1024 characters WhatsApp allows".into(),
                );
            }
            if text.buttons.len() != t.buttons.len() {
                push(
                    format!("{lk}.buttons"),
                    format!(
                        "has {} label(s) but the template has {} button(s)",
                        text.buttons.len(),
                        t.buttons.len()
                    ),
                );
            }
            if let Some(long) = text.buttons.iter().find(|b| b.chars().count() > 25) {
                push(
                    format!("{lk}.buttons"),
                    format!("label {long:?} is longer than 25 characters"),
                );
            }
            languages.insert(lang, text);
        }
        let ttl = t
            .ttl
            .as_deref()
            .and_then(|s| template_ttl(s, &k("ttl"), push));
        out.insert(
            key,
            Template {
                name: t.name,
                params: t.params,
                buttons: t.buttons,
                languages,
                contact_template: t.contact_template,
                ttl,
                alternate: t.alternate,
            },
        );
    }
    let keys: Vec<String> = out.keys().cloned().collect();
    for (key, t) in &out {
        if let Some(a) = &t.alternate {
            if a == key {
                push(
                    format!("templates.{}.alternate", super::seg(key)),
                    "names the template itself; give another template to send while this one cannot be used".into(),
                );
            } else if !keys.contains(a) {
                push(
                    format!("templates.{}.alternate", super::seg(key)),
                    format!(
                        "no template {a:?} under [templates]; configured: {}",
                        keys.join(", ")
                    ),
                );
            }
        }
        if let Some(c) = &t.contact_template
            && !keys.contains(c)
        {
            push(
                format!("templates.{}.contact_template", super::seg(key)),
                format!(
                    "no template {c:?} under [templates]; configured: {}",
                    keys.join(", ")
                ),
            );
        }
    }
    out
}

pub(super) fn validate_replies(raw: RawReplies, push: &mut impl FnMut(String, String)) -> Replies {
    use crate::replies::{Intent, normalize};
    let mut words: std::collections::HashMap<String, (Intent, String)> =
        std::collections::HashMap::new();
    for (lang, w) in &raw.words {
        for (intent, list) in [
            (Intent::Confirm, &w.confirm),
            (Intent::Cancel, &w.cancel),
            (Intent::Reschedule, &w.reschedule),
            (Intent::Stop, &w.stop),
            (Intent::Start, &w.start),
        ] {
            for word in list {
                let key = normalize(word);
                let at = format!("replies.words.{lang}.{}", intent.as_str());
                if key.is_empty() {
                    push(
                        at,
                        format!("{word:?} has no letters or digits left to match"),
                    );
                    continue;
                }
                match words.get(&key) {
                    Some((other, where_)) if *other != intent => push(
                        at,
                        format!(
                            "{word:?} also means {} in {where_}; a word can mean only one thing",
                            other.as_str()
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        words.insert(key, (intent, format!("replies.words.{lang}")));
                    }
                }
            }
        }
    }
    // A language without acknowledgements falls back to the clinic's, then English
    // (template::ack_text), as templates do.
    Replies {
        words: words.into_iter().map(|(k, (i, _))| (k, i)).collect(),
        acks: raw.acks,
    }
}

/// The `{{n}}` numbers in a body, in order of appearance.
pub fn placeholders(body: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("{{") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find("}}") {
            if let Ok(n) = rest[..j].trim().parse() {
                out.push(n);
            }
            rest = &rest[j + 2..];
        }
    }
    out
}

/// The longest rule label, in characters: it is a table row's and a chart bar's heading.
const RULE_LABEL_CHARS: usize = 40;

pub(super) fn validate_rules(
    raw: Vec<RawRule>,
    clinics: &BTreeMap<String, Clinic>,
    templates: &BTreeMap<String, Template>,
    push: &mut impl FnMut(String, String),
) -> (Vec<Rule>, Vec<FeedbackRule>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut feedback = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let k = |f: &str| format!("rules[{i}].{f}");
        if !is_valid_key(&r.name) {
            push(
                k("name"),
                format!(
                    "{:?}: rule names use lower-case letters, digits, '-' and '_'",
                    r.name
                ),
            );
        }
        if !seen.insert(r.name.clone()) {
            push(
                k("name"),
                format!(
                    "{:?} is the name of an earlier rule; each rule needs its own name",
                    r.name
                ),
            );
        }
        let label = r.label.as_deref().map(str::trim);
        if let Some(l) = label
            && (l.is_empty()
                || l.chars().count() > RULE_LABEL_CHARS
                || l.chars().any(char::is_control))
        {
            push(
                k("label"),
                format!(
                    "{l:?}: a label is the rule's name as staff read it on the desk, 1 to {RULE_LABEL_CHARS} characters on one line"
                ),
            );
        }
        let rule_clinics = r
            .clinics
            .clone()
            .unwrap_or_else(|| clinics.keys().cloned().collect());
        for c in &rule_clinics {
            if !clinics.contains_key(c) {
                push(
                    k("clinics"),
                    format!(
                        "unknown clinic {c:?}; configured: {}",
                        list_or_none(clinics.keys())
                    ),
                );
            }
        }
        match r.kind.as_deref().map(str::trim) {
            None | Some("reminder") => {}
            Some(super::feedback::FEEDBACK_KIND) => {
                if let Some((after, latest)) = super::feedback::validate(i, &r, templates, push) {
                    feedback.push(FeedbackRule {
                        name: r.name,
                        label: label.map(str::to_string),
                        after,
                        latest,
                        template: r.template,
                        clinics: rule_clinics,
                    });
                }
                continue;
            }
            Some(other) => {
                push(
                    k("kind"),
                    format!(
                        "{other:?}: a rule's kind is reminder or feedback (not given: reminder)"
                    ),
                );
                continue;
            }
        }
        if r.after.is_some() {
            push(
                k("after"),
                "is for rules that go after the visit; add kind = \"feedback\", or write before = \"1d\" for a reminder".into(),
            );
        }
        let Some(before_text) = r.before.as_deref() else {
            push(
                k("before"),
                "is missing: a reminder rule says how long before the start it goes (before = \"1d\"); a rule that goes after the visit is kind = \"feedback\" with after = \"2h\"".into(),
            );
            continue;
        };
        let before = parse_offset(before_text)
            .map_err(|m| push(k("before"), m))
            .ok();
        let latest = RULE_LATEST
            .span(&r.latest)
            .map_err(|m| push(k("latest"), m))
            .ok();
        if let (Some(b), Some(l)) = (before, latest)
            && b.approx() <= l
        {
            push(
                k("latest"),
                format!(
                    "{} is not less than before = {before_text}: the rule could never send on time",
                    r.latest
                ),
            );
        }
        if !templates.contains_key(&r.template) {
            push(
                k("template"),
                format!(
                    "no template {:?} under [templates]; configured: {}",
                    r.template,
                    list_or_none(templates.keys())
                ),
            );
        }
        if let (Some(before), Some(latest)) = (before, latest) {
            out.push(Rule {
                name: r.name,
                label: label.map(str::to_string),
                before,
                latest,
                template: r.template,
                clinics: rule_clinics,
                skip_if_confirmed: r.skip_if_confirmed,
                sms_fallback: r.sms_fallback,
            });
        }
    }
    (out, feedback)
}

/// A template's `ttl`: WhatsApp accepts 30 seconds to 12 hours.
fn template_ttl(s: &str, at: &str, push: &mut impl FnMut(String, String)) -> Option<Duration> {
    match super::parse_duration(s) {
        Ok(d) if d >= Duration::seconds(30) && d <= Duration::hours(12) => Some(d),
        Ok(_) => {
            push(
                at.to_string(),
                format!(
                    "{s:?} is outside the 30s to 12h WhatsApp allows for a message's time to live"
                ),
            );
            None
        }
        Err(e) => {
            push(at.to_string(), e);
            None
        }
    }
}
