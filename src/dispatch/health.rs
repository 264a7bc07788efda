//! What Meta's template and account events mean for sending: which templates cannot be used
//! (paused, disabled, rejected, re-categorised as marketing) and what takes their place (the
//! configured alternate, the SMS fallback, or a hold until Meta releases them), when the
//! account stops all sending, the alerts for error codes a person must look at, and what
//! `templates check` says about a template's time to live.

use chrono::{DateTime, Duration, Utc};

use crate::config::Config;
use crate::model::{Channel, Kind};
use crate::store::{
    AccountHealth, DueRow, Outcome, Store, StoreError, TEMPLATE_HOLD, TemplateHealth,
    TemplateUpdate, Verdict,
};
use crate::whatsapp::events::{AccountEffect, Events, TemplateChange, TemplateEvent};

use super::channels::{fallback_for, may_fall_back, row_template};

/// How long a message held for its template waits before it is looked at again.
const RECHECK: Duration = Duration::minutes(5);

/// The error code a fallback for a disabled template carries (132016); every other unusable
/// template is treated like a paused one (132015). Both are in [`super::FALLBACK_CODES`].
const DISABLED: i64 = 132_016;
const PAUSED: i64 = 132_015;

/// What the store knows of the account and its templates, read once per dispatch run.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// Every template Meta reported on.
    pub templates: Vec<TemplateHealth>,
    /// Each business account's standing (`""`: an event that named no account).
    pub accounts: Vec<AccountHealth>,
}

impl Health {
    /// Reads both tables, as `config` sees them: an event from a business account none of its
    /// numbers names counts for every account (as one that named none), so a `waba_id` set
    /// wrong in the config can never make reminderd ignore a restriction or a paused template.
    pub fn read(store: &Store, config: &Config) -> Result<Self, StoreError> {
        let known: Vec<&str> = config
            .whatsapp
            .iter()
            .flat_map(|w| w.numbers.values())
            .map(|n| n.waba_id.as_str())
            .collect();
        let mut health = Self {
            templates: store.template_health()?,
            accounts: store.account_health()?,
        };
        for w in health
            .templates
            .iter_mut()
            .map(|t| &mut t.waba_id)
            .chain(health.accounts.iter_mut().map(|a| &mut a.waba_id))
        {
            if !known.contains(&w.as_str()) {
                w.clear();
            }
        }
        Ok(health)
    }

    /// An account that is restricted or disabled at `now`, if any.
    pub fn blocked_account(&self, now: DateTime<Utc>) -> Option<&AccountHealth> {
        self.accounts.iter().find(|a| a.blocks(now))
    }

    /// Why no message may go out at `now`, if an account is restricted or disabled.
    pub fn account_block(&self, now: DateTime<Utc>) -> Option<String> {
        self.blocked_account(now).map(block_words)
    }

    /// Why no message may go out from a number of business account `waba_id` at `now`: that
    /// account is restricted or disabled, or an event that named no account stopped them all.
    pub fn account_block_for(&self, waba_id: &str, now: DateTime<Utc>) -> Option<String> {
        self.accounts
            .iter()
            .find(|a| a.covers(waba_id) && a.blocks(now))
            .map(block_words)
    }

    /// The account whose standing Meta reported last.
    pub fn latest_account(&self) -> Option<&AccountHealth> {
        self.accounts.iter().max_by_key(|a| a.updated_at)
    }

    /// Meta's events about config template `t`: in `language`, those for its name in that
    /// language and those that named none; with `None`, in any language; in business account
    /// `waba`, its own and those that named no account; with `None`, in any account. The one
    /// matching the dispatcher, the desk's banner, the metric and the commands share.
    pub fn events_for<'a>(
        &'a self,
        t: &'a crate::config::Template,
        language: Option<&'a str>,
        waba: Option<&'a str>,
    ) -> impl Iterator<Item = &'a TemplateHealth> + 'a {
        self.templates.iter().filter(move |h| {
            h.name == t.name
                && language.is_none_or(|l| h.language.is_empty() || h.language == l)
                && waba.is_none_or(|w| h.waba_id.is_empty() || h.waba_id == w)
        })
    }

    /// Why Meta's word stops config template `key` in `language` in business account `waba`,
    /// if it does.
    pub fn template_block(
        &self,
        config: &Config,
        key: &str,
        language: &str,
        waba: Option<&str>,
    ) -> Option<String> {
        let t = config.templates.get(key)?;
        self.events_for(t, Some(language), waba).find_map(unusable)
    }
}

/// "sending stopped: …; reminders wait until Meta lifts it", naming the account when the
/// event named one.
fn block_words(a: &AccountHealth) -> String {
    format!(
        "sending stopped{}: {}{}; reminders wait until Meta lifts it",
        if a.waba_id.is_empty() {
            String::new()
        } else {
            format!(" from business account {}", a.waba_id)
        },
        a.reason.as_deref().unwrap_or(&a.event),
        a.until
            .map(|u| format!(" (until {})", u.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    )
}

/// Statuses after which Meta refuses the template.
const STOPPED: &[&str] = &[
    "PAUSED",
    "DISABLED",
    "REJECTED",
    "PENDING_DELETION",
    "DELETED",
    "ARCHIVED",
    "LOCKED",
];

/// Why a template cannot be sent, in words for staff and the admin (`None`: it can).
pub fn unusable(h: &TemplateHealth) -> Option<String> {
    let which = format!("the WhatsApp template “{}”{}", h.name, lang(&h.language));
    let why = h
        .reason
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    if let Some(s) = h.status.as_deref().filter(|s| STOPPED.contains(s)) {
        let verb = match s {
            "PAUSED" => "paused".to_string(),
            "DISABLED" => "disabled".to_string(),
            "REJECTED" => "rejected".to_string(),
            other => format!("set to {other}"),
        };
        return Some(format!("Meta {verb} {which}{why}"));
    }
    (h.category.as_deref() == Some("MARKETING"))
        .then(|| format!("Meta re-categorised {which} as MARKETING; reminders must be UTILITY"))
}

/// What an admin should know of a template that still works (an announced re-categorisation,
/// a falling quality score), with Meta's date in UTC (for logs and the command line).
pub fn warning(h: &TemplateHealth) -> Option<String> {
    warning_with(h, |t| Some(t.format("%Y-%m-%d %H:%M UTC").to_string()))
}

/// [`warning`] with the date of an announced change written by `at` (`None`: left out, for
/// the desk, which shows it in the clinic's zone).
fn warning_with(
    h: &TemplateHealth,
    at: impl Fn(DateTime<Utc>) -> Option<String>,
) -> Option<String> {
    let which = format!("the WhatsApp template “{}”{}", h.name, lang(&h.language));
    if let Some(c) = h.impending_category.as_deref().filter(|c| *c != "UTILITY") {
        let at = h
            .category_change_at
            .and_then(at)
            .map(|t| format!(" on {t}"))
            .unwrap_or_default();
        return Some(format!(
            "Meta will re-categorise {which} as {c}{at} unless it is reworded"
        ));
    }
    match (h.quality.as_deref(), h.status.as_deref()) {
        (Some("RED"), _) => Some(format!(
            "{which} has a low quality rating (RED) and may be paused"
        )),
        (_, Some("FLAGGED")) => Some(format!("Meta flagged {which} for falling quality")),
        _ => None,
    }
}

fn lang(language: &str) -> String {
    if language.is_empty() {
        String::new()
    } else {
        format!(" ({language})")
    }
}

/// The language a row is rendered in (as `template::render` chooses it).
fn row_language(config: &Config, row: &DueRow, key: &str) -> String {
    let default = config
        .clinic(&row.clinic)
        .map_or("", |c| c.default_language.as_str());
    config
        .templates
        .get(key)
        .and_then(|t| crate::template::choose_language(t, &row.language, default))
        .unwrap_or_else(|| row.language.clone())
}

/// What to do with a WhatsApp row whose template Meta stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing stops it.
    Send,
    /// Send with this configured alternate template instead.
    Alternate(String),
    /// Replace it with an SMS now (the WhatsApp row fails with this code and reason).
    FallBack(i64, String),
    /// Keep it pending with this reason until Meta releases the template.
    Hold(String),
}

/// Decides [`Plan`] for one row.
pub fn plan(config: &Config, health: &Health, row: &DueRow) -> Plan {
    if row.channel != Channel::WhatsApp || row.kind == Kind::ReplyAck || health.templates.is_empty()
    {
        return Plan::Send;
    }
    let Some(key) = row_template(config, row) else {
        return Plan::Send;
    };
    // Meta stops a template in one business account: the one the row's number is in.
    let waba = config.number_of(&row.clinic).map(|n| n.waba_id.as_str());
    let Some(why) = health.template_block(config, &key, &row_language(config, row, &key), waba)
    else {
        return Plan::Send;
    };
    if let Some(alt) = config.templates.get(&key).and_then(|t| t.alternate.clone())
        && health
            .template_block(config, &alt, &row_language(config, row, &alt), waba)
            .is_none()
    {
        return Plan::Alternate(alt);
    }
    let code = if why.starts_with("Meta disabled") {
        DISABLED
    } else {
        PAUSED
    };
    if may_fall_back(config, row, code) {
        return Plan::FallBack(code, why);
    }
    Plan::Hold(why)
}

/// The send-time verdict with Meta's word on the row's template laid over it: a message
/// that would be sent is held instead when its template is stopped and neither an alternate
/// nor an SMS can stand in.
pub fn overlay(
    verdict: Verdict,
    config: &Config,
    health: &Health,
    row: &DueRow,
    now: DateTime<Utc>,
) -> Verdict {
    if verdict != Verdict::Send {
        return verdict;
    }
    match plan(config, health, row) {
        Plan::Hold(why) => Verdict::Hold(
            now + RECHECK,
            format!(
                "{TEMPLATE_HOLD}{}; it goes out when Meta allows the template again",
                why.trim_start_matches("Meta ")
            ),
        ),
        _ => Verdict::Send,
    }
}

/// The outcome of a row whose template is stopped and an SMS replaces: no WhatsApp request.
pub fn fell_back(config: &Config, code: i64, why: &str, now: DateTime<Utc>) -> Outcome {
    Outcome::FellBack {
        code: Some(code),
        error: format!("not sent on WhatsApp: {why}"),
        fallback: fallback_for(config, code, now),
    }
}

/// Sets the gauges: configured templates Meta stopped, and whether the account is blocked.
pub fn publish(config: &Config, health: &Health, now: DateTime<Utc>) {
    let unusable = config
        .templates
        .values()
        .filter(|t| {
            health
                .events_for(t, None, None)
                .any(|h| unusable(h).is_some())
        })
        .count();
    metrics::gauge!("reminderd_templates_unusable").set(unusable as f64);
    let blocked = health.account_block(now).is_some();
    metrics::gauge!("reminderd_account_blocked").set(if blocked { 1.0 } else { 0.0 });
}

/// Error codes a person should look at even though the message simply failed: a
/// marketing-only limit on a reminder (a mis-categorised template), Direct Send blocked, the
/// account's template limit, and any 13xxxx code this build does not know.
pub fn is_alert(code: i64) -> bool {
    const KNOWN: &[i64] = &[
        130_403, 130_429, 130_472, 130_497, 131_000, 131_005, 131_008, 131_009, 131_016, 131_021,
        131_026, 131_030, 131_031, 131_037, 131_042, 131_045, 131_047, 131_048, 131_050, 131_051,
        131_052, 131_053, 131_055, 131_056, 131_057, 131_063, 131_064, 133_004, 133_010, 133_015,
        133_016, 134_100, 134_101, 134_102, 135_000,
    ];
    matches!(code, 131_049 | 139_200 | 2_388_019)
        || ((130_000..140_000).contains(&code)
            && !KNOWN.contains(&code)
            && !crate::whatsapp::is_template_problem(code))
}

/// Logs and counts an alerting error code (see [`is_alert`]); `false` when it is not one.
pub fn alert(code: i64, outbox: Option<i64>) -> bool {
    if !is_alert(code) {
        return false;
    }
    let meaning = match code {
        131_049 => "WhatsApp treats the message as marketing: check the template's category",
        139_200 => "Direct Send access is blocked for this account",
        2_388_019 => "the account has reached its limit of templates",
        _ => "an error code this version of reminderd does not know",
    };
    tracing::warn!(
        code,
        outbox,
        "WhatsApp error {code}: {meaning}; the message failed"
    );
    metrics::counter!("reminderd_send_alerts_total", "code" => code.to_string()).increment(1);
    true
}

/// Applies a webhook body's template and account events; returns the problems (unreadable
/// events) for the event's outcome. Logs once when a template stops or is released and when
/// the account is blocked or resumes, never per message.
pub fn apply_events(
    store: &mut Store,
    events: &Events,
    event_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    for e in &events.templates {
        match e {
            Ok(e) => apply_template(store, e, event_id, now)?,
            Err(bad) => {
                tracing::warn!(event = event_id, why = %bad.why, "a template event could not be read");
                problems.push(format!("a template event could not be read: {}", bad.why));
            }
        }
    }
    for e in &events.account {
        let e = match e {
            Ok(e) => e,
            Err(bad) => {
                tracing::warn!(event = event_id, why = %bad.why, "an account event could not be read");
                problems.push(format!("an account event could not be read: {}", bad.why));
                continue;
            }
        };
        let waba = e.waba_id.as_deref().unwrap_or_default();
        let was = store
            .account_health()?
            .iter()
            .any(|a| a.waba_id == waba && a.blocks(now));
        match &e.effect {
            AccountEffect::Block { reason, until } => {
                let until = until.map(crate::time::from_unix);
                store.set_account_health(
                    waba,
                    &e.event,
                    true,
                    reason,
                    until,
                    Some(event_id),
                    now,
                )?;
                tracing::warn!(event = %e.event, account = waba, %reason, "the WhatsApp account is blocked: its numbers stop sending");
            }
            AccountEffect::Lift { reason } => {
                store.set_account_health(
                    waba,
                    &e.event,
                    false,
                    reason,
                    None,
                    Some(event_id),
                    now,
                )?;
                if was {
                    tracing::info!(event = %e.event, account = waba, %reason, "the WhatsApp account may send again");
                }
            }
            AccountEffect::Note { reason } => {
                tracing::info!(event = %e.event, %reason, "account event (no change to sending)");
            }
        }
    }
    for e in &events.numbers {
        let e = match e {
            Ok(e) => e,
            Err(bad) => {
                tracing::warn!(event = event_id, why = %bad.why, "a phone number event could not be read");
                problems.push(format!(
                    "a phone number event could not be read: {}",
                    bad.why
                ));
                continue;
            }
        };
        store.set_number_health(
            &crate::store::NumberHealth {
                display_phone_number: e.display_phone_number.clone(),
                waba_id: e.waba_id.clone(),
                event: e.event.clone(),
                messaging_limit: e.limit.clone(),
                updated_at: e.at.map_or(now, crate::time::from_unix),
            },
            Some(event_id),
        )?;
        tracing::info!(event = %e.event, limit = e.limit.as_deref().unwrap_or("-"), "Meta reported on a business number");
    }
    Ok(problems)
}

fn apply_template(
    store: &mut Store,
    e: &TemplateEvent,
    event_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut u = TemplateUpdate {
        waba_id: e.waba_id.as_deref().unwrap_or_default(),
        name: &e.template.name,
        language: &e.template.language,
        at: e.at.map(crate::time::from_unix),
        ..TemplateUpdate::default()
    };
    match &e.change {
        TemplateChange::Status { event, reason } => {
            u.status = Some(event);
            u.reason = reason.as_deref();
        }
        TemplateChange::Quality { new, .. } => u.quality = Some(new),
        TemplateChange::CategoryImpending { correct, at, .. } => {
            u.impending = Some((correct, at.map(crate::time::from_unix)));
        }
        TemplateChange::CategoryChanged { new, .. } => u.category = Some(new),
    }
    let (before, after) = store.apply_template_update(&u, Some(event_id), now)?;
    let was = before.as_ref().and_then(unusable);
    match (was, unusable(&after)) {
        (None, Some(why)) => {
            tracing::warn!(template = %after.name, language = %after.language, "{why}: its messages are held (or sent with the alternate template or by SMS) until Meta allows it again");
        }
        (Some(_), None) => {
            tracing::info!(template = %after.name, language = %after.language, "Meta allows the template again: its held messages are released");
        }
        _ => {}
    }
    if let (TemplateChange::CategoryImpending { .. }, Some(w)) = (&e.change, warning(&after)) {
        tracing::warn!(template = %after.name, "{w}");
    }
    Ok(())
}

/// What the desk's banner says of the account and the templates: a blocked account, each
/// configured template Meta stopped (with its held messages), and each warning.
pub fn desk_holds(
    store: &Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<crate::jobs::Hold>, StoreError> {
    use crate::jobs::Hold;
    let health = Health::read(store, config)?;
    let mut out = Vec::new();
    for a in health.accounts.iter().filter(|a| a.blocks(now)) {
        // Each clinic sends from one number, in one account: name those this one holds,
        // unless it holds them all.
        let held: Vec<String> = config
            .clinics
            .values()
            .filter(|c| {
                // An event that named no account holds every clinic, [whatsapp] or not.
                a.waba_id.is_empty()
                    || config
                        .number_of(&c.key)
                        .is_some_and(|n| a.covers(&n.waba_id))
            })
            .map(|c| c.display_name.clone())
            .collect();
        if held.is_empty() {
            // An account none of today's clinics sends from.
            continue;
        }
        out.push(Hold::AccountBlocked {
            reason: a.reason.clone().unwrap_or_else(|| a.event.clone()),
            until: a.until,
            clinics: if held.len() == config.clinics.len() {
                Vec::new()
            } else {
                held
            },
        });
    }
    let held = store.template_holds()?;
    for (key, t) in &config.templates {
        let mine = || health.events_for(t, None, None);
        if let Some(why) = mine().find_map(unusable) {
            out.push(Hold::TemplateStopped {
                template: key.clone(),
                why,
                messages: held.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n),
                alternate: t.alternate.clone(),
            });
        } else if let Some((why, h)) = mine().find_map(|h| Some((warning_with(h, |_| None)?, h))) {
            out.push(Hold::TemplateWarning {
                template: key.clone(),
                why,
                at: h
                    .category_change_at
                    .filter(|_| h.impending_category.is_some()),
            });
        }
    }
    Ok(out)
}

/// What `templates check` says about a template's time to live at Meta (`remote`, `None`:
/// Meta's default of 30 days) against its config `ttl` and the window of the rules that send
/// it: a reminder delivered after the appointment is worse than none.
pub fn ttl_warnings(config: &Config, key: &str, remote: Option<u64>) -> Vec<String> {
    let Some(t) = config.templates.get(key) else {
        return Vec::new();
    };
    let rules: Vec<&crate::config::Rule> =
        config.rules.iter().filter(|r| r.template == key).collect();
    let mut out = Vec::new();
    let meta = remote
        .and_then(|s| i64::try_from(s).ok())
        .map(Duration::seconds);
    match (meta, t.ttl) {
        (None, _) if !rules.is_empty() => out.push(
            "Meta has no time to live for it (message_send_ttl_seconds), so an undelivered reminder is retried for 30 days; set one of at most 12h".into(),
        ),
        (Some(m), Some(c)) if m != c => out.push(format!(
            "Meta's time to live is {}, the config's ttl is {}",
            crate::plan::humanize(m),
            crate::plan::humanize(c)
        )),
        _ => {}
    }
    if let Some(ttl) = meta {
        for r in rules {
            let window = r.before.approx();
            if ttl > window {
                out.push(format!(
                    "its time to live ({}) is longer than rule {}'s {} before the appointment: it could arrive after the appointment",
                    crate::plan::humanize(ttl),
                    r.name,
                    crate::plan::humanize(window)
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
