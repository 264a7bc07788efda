//! The account-level webhooks: what Meta says of a template (`message_template_status_update`,
//! `message_template_quality_update`, `template_category_update`, in both its impending and
//! completed shapes) and of the account (`account_update`). Read as tolerantly as statuses: a
//! field of an unexpected type costs its item only, and an event we do not act on is kept as
//! what it is, never refused.

use serde_json::Value;

use super::{Unreadable, WebhookItems};

/// The template and account events of one webhook body, each read on its own.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Template status, quality and category events, in the order they came.
    pub templates: Vec<Result<TemplateEvent, Unreadable>>,
    /// `account_update` events.
    pub account: Vec<Result<AccountEvent, Unreadable>>,
    /// `phone_number_quality_update` events: one business number's standing.
    pub numbers: Vec<Result<NumberEvent, Unreadable>>,
}

/// One `phone_number_quality_update` event: a business number's messaging limit or
/// throughput changed, or Meta flagged its quality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberEvent {
    /// The number as Meta shows it (`display_phone_number`, digits).
    pub display_phone_number: String,
    /// The `event`, upper case: `THROUGHPUT_UPGRADE`, `FLAGGED`, `UNFLAGGED`, `UPGRADE`,
    /// `DOWNGRADE`, `ONBOARDING`, ...
    pub event: String,
    /// The messaging limit it reports: `max_daily_conversations_per_business` (the business
    /// portfolio's, since 2025-10-07), else the older `current_limit`.
    pub limit: Option<String>,
    /// The business account it came in (the entry's `id`).
    pub waba_id: Option<String>,
    /// When (the entry's `time`, Unix seconds).
    pub at: Option<i64>,
}

/// Which template an event is about, as Meta names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateRef {
    /// `message_template_name`.
    pub name: String,
    /// `message_template_language` (`""` when the event named none).
    pub language: String,
    /// `message_template_id`, a number or a string in Meta's payloads.
    pub id: Option<String>,
}

/// One template event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEvent {
    /// The template.
    pub template: TemplateRef,
    /// What happened to it.
    pub change: TemplateChange,
    /// When Meta says it happened (Unix seconds): the value's `timestamp`, else the entry's
    /// `time`. Meta retries, so events arrive out of order; this orders them.
    pub at: Option<i64>,
    /// The business account whose template it is (the entry's `id`).
    pub waba_id: Option<String>,
}

/// What Meta changed about a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateChange {
    /// `message_template_status_update`: `APPROVED`, `PAUSED`, `REINSTATED`, ...
    Status {
        /// The `event`, upper case.
        event: String,
        /// `reason`, with `other_info`'s title and description when given.
        reason: Option<String>,
    },
    /// `message_template_quality_update`.
    Quality {
        /// `previous_quality_score`.
        previous: Option<String>,
        /// `new_quality_score`: `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
        new: String,
    },
    /// `template_category_update`, impending shape: Meta will re-categorise the template at
    /// `at` unless it is reworded. A warning, never a reason to stop.
    CategoryImpending {
        /// `new_category`: the category it has now.
        current: Option<String>,
        /// `correct_category`: what it will become.
        correct: String,
        /// `category_update_timestamp` (Unix seconds).
        at: Option<i64>,
    },
    /// `template_category_update`, completed shape: the template now has `new`.
    CategoryChanged {
        /// `previous_category`.
        previous: Option<String>,
        /// `new_category`.
        new: String,
    },
}

/// One `account_update` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    /// The `event`, upper case: `ACCOUNT_RESTRICTION`, `DISABLED_UPDATE`, ...
    pub event: String,
    /// What it means for sending.
    pub effect: AccountEffect,
    /// The business account it is about (the entry's `id`); `None`: the entry named none.
    pub waba_id: Option<String>,
}

/// What an account event means for a sender of business-initiated messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountEffect {
    /// Sending must stop, for this reason, until `until` (Unix seconds) when Meta gave one.
    Block {
        /// What Meta said, in words.
        reason: String,
        /// When the restriction ends.
        until: Option<i64>,
    },
    /// Whatever stopped sending is over.
    Lift {
        /// What Meta said.
        reason: String,
    },
    /// Worth knowing, changes nothing (a violation warning, a pricing tier, a verified name).
    Note {
        /// What Meta said.
        reason: String,
    },
}

/// Reads one change of a field other than `messages` into `items` (fields we do not act on
/// are ignored); `false` for a `messages` change, which is the caller's to read. `entry_time`
/// is the entry's `time`, for events without a `timestamp` of their own.
pub(super) fn read_change(
    change: &Value,
    entry_time: Option<i64>,
    entry_id: Option<&str>,
    items: &mut WebhookItems,
) -> bool {
    let field = change.get("field").and_then(Value::as_str);
    let Some(value) = change.get("value") else {
        return field != Some("messages");
    };
    match field {
        Some("messages") => return false,
        Some(
            "message_template_status_update"
            | "message_template_quality_update"
            | "template_category_update",
        ) => items
            .events
            .templates
            .push(
                read_template(field.unwrap_or_default(), value).map(|mut e| {
                    e.at = value.get("timestamp").and_then(seconds).or(entry_time);
                    e.waba_id = entry_id.map(str::to_string);
                    e
                }),
            ),
        Some("account_update") => items.events.account.push(read_account(value).map(|mut e| {
            e.waba_id = entry_id.map(str::to_string);
            e
        })),
        Some("phone_number_quality_update") => {
            items.events.numbers.push(read_number(value).map(|mut e| {
                e.waba_id = entry_id.map(str::to_string);
                e.at = entry_time;
                e
            }));
        }
        _ => {}
    }
    true
}

fn unreadable(v: &Value, why: &str) -> Unreadable {
    Unreadable {
        id: text(v, "message_template_id").or_else(|| text(v, "message_template_name")),
        from: None,
        kind: text(v, "event"),
        why: why.to_string(),
    }
}

/// A string field, or a number written as one; empty is absent.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn upper(v: &Value, key: &str) -> Option<String> {
    text(v, key).map(|s| s.to_ascii_uppercase())
}

/// Unix seconds, given as a number or a string of digits.
fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn read_template(field: &str, v: &Value) -> Result<TemplateEvent, Unreadable> {
    if !v.is_object() {
        return Err(unreadable(v, "the value is not an object"));
    }
    let name = text(v, "message_template_name")
        .ok_or_else(|| unreadable(v, "message_template_name is missing"))?;
    let template = TemplateRef {
        name,
        language: text(v, "message_template_language").unwrap_or_default(),
        id: text(v, "message_template_id"),
    };
    let change = match field {
        "message_template_status_update" => {
            let event = upper(v, "event").ok_or_else(|| unreadable(v, "event is missing"))?;
            let mut why: Vec<String> = text(v, "reason")
                .filter(|r| !r.eq_ignore_ascii_case("NONE"))
                .into_iter()
                .collect();
            if let Some(info) = v.get("other_info") {
                why.extend(
                    ["title", "description"]
                        .iter()
                        .filter_map(|k| text(info, k)),
                );
            }
            TemplateChange::Status {
                event,
                reason: (!why.is_empty()).then(|| why.join(": ")),
            }
        }
        "message_template_quality_update" => TemplateChange::Quality {
            previous: upper(v, "previous_quality_score"),
            new: upper(v, "new_quality_score")
                .ok_or_else(|| unreadable(v, "new_quality_score is missing"))?,
        },
        _ => match (upper(v, "correct_category"), upper(v, "previous_category")) {
            (Some(correct), _) => TemplateChange::CategoryImpending {
                current: upper(v, "new_category"),
                correct,
                at: v.get("category_update_timestamp").and_then(seconds),
            },
            (None, previous) => TemplateChange::CategoryChanged {
                previous,
                new: upper(v, "new_category")
                    .ok_or_else(|| unreadable(v, "new_category is missing"))?,
            },
        },
    };
    Ok(TemplateEvent {
        template,
        change,
        at: None,
        waba_id: None,
    })
}

/// A field that Meta sends as a string in some versions and a list of strings in others.
fn one_or_many(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.trim().to_ascii_uppercase()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_ascii_uppercase())
            .collect(),
        _ => Vec::new(),
    }
}

/// Restrictions that stop business-initiated messages (reminders); the others (adding a
/// phone number, answering customers) do not concern a reminder sender's queue.
const SENDING_RESTRICTIONS: &[&str] = &["RESTRICTED_BIZ_INITIATED_MESSAGING"];

fn read_account(v: &Value) -> Result<AccountEvent, Unreadable> {
    if !v.is_object() {
        return Err(unreadable(v, "the value is not an object"));
    }
    let event = upper(v, "event").ok_or_else(|| unreadable(v, "event is missing"))?;
    let effect = match event.as_str() {
        "ACCOUNT_RESTRICTION" => {
            let restrictions: Vec<(String, Option<i64>)> = v
                .get("restriction_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let kind = upper(r, "restriction_type")?;
                    Some((kind, r.get("expiration").and_then(seconds)))
                })
                .collect();
            let stopping: Vec<&(String, Option<i64>)> = restrictions
                .iter()
                .filter(|(k, _)| SENDING_RESTRICTIONS.contains(&k.as_str()))
                .collect();
            if stopping.is_empty() {
                AccountEffect::Lift {
                    reason: if restrictions.is_empty() {
                        "Meta lifted the account's restrictions".into()
                    } else {
                        let kinds: Vec<&str> =
                            restrictions.iter().map(|(k, _)| k.as_str()).collect();
                        format!(
                            "restricted ({}), which does not stop reminders",
                            kinds.join(", ")
                        )
                    },
                }
            } else {
                AccountEffect::Block {
                    reason: "Meta restricted the WhatsApp Business account from starting conversations (RESTRICTED_BIZ_INITIATED_MESSAGING)".into(),
                    until: stopping.iter().filter_map(|(_, u)| *u).max(),
                }
            }
        }
        "DISABLED_UPDATE" => {
            let ban = v.get("ban_info").unwrap_or(&Value::Null);
            let states = one_or_many(ban.get("waba_ban_state"));
            let date = text(ban, "waba_ban_date");
            if states.iter().any(|s| s == "DISABLE") {
                AccountEffect::Block {
                    reason: "Meta disabled the WhatsApp Business account".into(),
                    until: None,
                }
            } else if states.iter().any(|s| s == "REINSTATE") {
                AccountEffect::Lift {
                    reason: "Meta reinstated the WhatsApp Business account".into(),
                }
            } else {
                AccountEffect::Note {
                    reason: format!(
                        "Meta reports the account's ban state as {}{}",
                        if states.is_empty() {
                            "unknown".to_string()
                        } else {
                            states.join(", ")
                        },
                        date.map(|d| format!(" (date {d})")).unwrap_or_default()
                    ),
                }
            }
        }
        "ACCOUNT_VIOLATION" => AccountEffect::Note {
            reason: format!(
                "Meta reports a policy violation{}",
                v.get("violation_info")
                    .and_then(|i| text(i, "violation_type"))
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
        },
        other => AccountEffect::Note {
            reason: format!("account event {other}"),
        },
    };
    Ok(AccountEvent {
        event,
        effect,
        waba_id: None,
    })
}

/// Reads a `phone_number_quality_update` value.
fn read_number(v: &Value) -> Result<NumberEvent, Unreadable> {
    let bad = |why: &str| Unreadable {
        id: text(v, "display_phone_number"),
        from: None,
        kind: text(v, "event"),
        why: why.to_string(),
    };
    if !v.is_object() {
        return Err(bad("the value is not an object"));
    }
    let display_phone_number =
        text(v, "display_phone_number").ok_or_else(|| bad("display_phone_number is missing"))?;
    let event = upper(v, "event").ok_or_else(|| bad("event is missing"))?;
    Ok(NumberEvent {
        display_phone_number,
        event,
        limit: upper(v, "max_daily_conversations_per_business")
            .or_else(|| upper(v, "current_limit")),
        waba_id: None,
        at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::read_webhook;

    fn body(field: &str, value: &str) -> String {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","time":1767225600,"changes":[{{"field":"{field}","value":{value}}}]}}]}}"#
        )
    }

    fn template(field: &str, value: &str) -> TemplateEvent {
        let items = read_webhook(&body(field, value)).expect("json");
        assert!(items.statuses.is_empty() && items.messages.is_empty());
        items.events.templates[0].clone().expect("readable")
    }

    fn account(value: &str) -> AccountEffect {
        let items = read_webhook(&body("account_update", value)).expect("json");
        items.events.account[0].clone().expect("readable").effect
    }

    #[test]
    fn an_event_keeps_its_own_time_else_its_entrys() {
        let own = template(
            "message_template_status_update",
            r#"{"event":"REINSTATED","message_template_name":"appointment_reminder","message_template_language":"en","timestamp":"1767225700"}"#,
        );
        assert_eq!(own.at, Some(1_767_225_700));
        let entry = template(
            "message_template_status_update",
            r#"{"event":"PAUSED","message_template_name":"appointment_reminder","message_template_language":"en"}"#,
        );
        assert_eq!(entry.at, Some(1_767_225_600), "the entry's time");
    }

    #[test]
    fn a_paused_template_is_read_with_its_reason() {
        let e = template(
            "message_template_status_update",
            r#"{"event":"PAUSED","message_template_id":1387372356726668,"message_template_name":"appointment_reminder","message_template_language":"en","reason":null,"other_info":{"title":"FIRST_PAUSE","description":"Your message template has been paused for 3 hours due to low quality."}}"#,
        );
        assert_eq!(e.template.name, "appointment_reminder");
        assert_eq!(e.template.language, "en");
        assert_eq!(e.template.id.as_deref(), Some("1387372356726668"));
        assert_eq!(
            e.change,
            TemplateChange::Status {
                event: "PAUSED".into(),
                reason: Some(
                    "FIRST_PAUSE: Your message template has been paused for 3 hours due to low quality."
                        .into()
                ),
            }
        );
        let r = template(
            "message_template_status_update",
            r#"{"event":"REJECTED","message_template_id":"7","message_template_name":"x","message_template_language":"en_US","reason":"INCORRECT_CATEGORY"}"#,
        );
        assert!(
            matches!(r.change, TemplateChange::Status { ref event, ref reason } if event == "REJECTED" && reason.as_deref() == Some("INCORRECT_CATEGORY"))
        );
    }

    #[test]
    fn quality_and_both_category_shapes_are_told_apart() {
        let q = template(
            "message_template_quality_update",
            r#"{"previous_quality_score":"GREEN","new_quality_score":"RED","message_template_id":1,"message_template_name":"appointment_reminder","message_template_language":"en"}"#,
        );
        assert_eq!(
            q.change,
            TemplateChange::Quality {
                previous: Some("GREEN".into()),
                new: "RED".into()
            }
        );
        let impending = template(
            "template_category_update",
            r#"{"message_template_id":1,"message_template_name":"appointment_reminder","message_template_language":"en","correct_category":"MARKETING","new_category":"UTILITY","category_update_timestamp":1767830400}"#,
        );
        assert_eq!(
            impending.change,
            TemplateChange::CategoryImpending {
                current: Some("UTILITY".into()),
                correct: "MARKETING".into(),
                at: Some(1_767_830_400)
            }
        );
        let done = template(
            "template_category_update",
            r#"{"message_template_id":1,"message_template_name":"appointment_reminder","message_template_language":"en","previous_category":"UTILITY","new_category":"MARKETING"}"#,
        );
        assert_eq!(
            done.change,
            TemplateChange::CategoryChanged {
                previous: Some("UTILITY".into()),
                new: "MARKETING".into()
            }
        );
    }

    #[test]
    fn account_updates_block_lift_or_only_note() {
        assert_eq!(
            account(
                r#"{"phone_number":"15550783881","event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":1767830400}]}"#
            ),
            AccountEffect::Block {
                reason: "Meta restricted the WhatsApp Business account from starting conversations (RESTRICTED_BIZ_INITIATED_MESSAGING)".into(),
                until: Some(1_767_830_400)
            }
        );
        assert!(matches!(
            account(r#"{"event":"ACCOUNT_RESTRICTION","restriction_info":[]}"#),
            AccountEffect::Lift { .. }
        ));
        assert!(matches!(
            account(
                r#"{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":["DISABLE"],"waba_ban_date":"2026-11-30"}}"#
            ),
            AccountEffect::Block { until: None, .. }
        ));
        assert!(matches!(
            account(r#"{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"REINSTATE"}}"#),
            AccountEffect::Lift { .. }
        ));
        assert!(matches!(
            account(r#"{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"SCAM"}}"#),
            AccountEffect::Note { ref reason } if reason.contains("SCAM")
        ));
        // A pricing tier is tolerated and changes nothing.
        assert!(matches!(
            account(
                r#"{"event":"VOLUME_BASED_PRICING_TIER_UPDATE","volume_tier_info":{"effective_month":"2026-11","pricing_category":"UTILITY","region":"India","tier":"0:750000"}}"#
            ),
            AccountEffect::Note { .. }
        ));
    }

    #[test]
    fn a_numbers_event_names_its_number_account_limit_and_time() {
        let raw = r#"{"object":"whatsapp_business_account","entry":[{"id":"400000000000004","time":1764500000,"changes":[
            {"field":"phone_number_quality_update","value":{"display_phone_number":"15550783881","event":"throughput_upgrade","current_limit":"TIER_UNLIMITED"}},
            {"field":"phone_number_quality_update","value":{"display_phone_number":"15550783882","event":"DOWNGRADE","old_limit":"TIER_10K","current_limit":"TIER_2K","max_daily_conversations_per_business":"TIER_2K"}},
            {"field":"phone_number_quality_update","value":{"event":"FLAGGED"}}]}]}"#;
        let items = read_webhook(raw).expect("json");
        assert_eq!(items.events.numbers.len(), 3);
        let first = items.events.numbers[0].as_ref().expect("readable");
        assert_eq!(
            first,
            &NumberEvent {
                display_phone_number: "15550783881".into(),
                event: "THROUGHPUT_UPGRADE".into(),
                limit: Some("TIER_UNLIMITED".into()),
                waba_id: Some("400000000000004".into()),
                at: Some(1_764_500_000),
            }
        );
        // The portfolio's limit is preferred to the older per-number field.
        let second = items.events.numbers[1].as_ref().expect("readable");
        assert_eq!(second.limit.as_deref(), Some("TIER_2K"));
        let bad = items.events.numbers[2].as_ref().expect_err("no number");
        assert!(bad.why.contains("display_phone_number"), "{bad:?}");
    }

    #[test]
    fn an_account_event_names_the_business_account_it_came_in() {
        let raw = r#"{"object":"whatsapp_business_account","entry":[{"id":"400000000000004","changes":[
            {"field":"account_update","value":{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":["DISABLE"]}}}]}]}"#;
        let items = read_webhook(raw).expect("json");
        let e = items.events.account[0].as_ref().expect("readable");
        assert_eq!(e.waba_id.as_deref(), Some("400000000000004"));
        assert!(matches!(e.effect, AccountEffect::Block { .. }));
    }

    #[test]
    fn one_bad_event_costs_only_itself() {
        let raw = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
            {"field":"message_template_status_update","value":{"event":"APPROVED"}},
            {"field":"message_template_status_update","value":{"event":"REINSTATED","message_template_name":"appointment_reminder","message_template_language":"en"}},
            {"field":"account_update","value":"nonsense"},
            {"field":"phone_number_quality_update","value":{"event":"FLAGGED"}}]}]}"#;
        let items = read_webhook(raw).expect("json");
        assert_eq!(items.events.templates.len(), 2);
        assert!(items.events.templates[0].is_err());
        assert_eq!(
            items.events.templates[1]
                .as_ref()
                .expect("readable")
                .template
                .name,
            "appointment_reminder"
        );
        assert!(items.events.account[0].is_err());
    }
}
