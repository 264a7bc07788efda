//! The outbox: plan, send, list it, preview a message, and check the templates against the
//! account.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use reminderd::config::Config;
use reminderd::dispatch::{DispatchError, Dispatcher};
use reminderd::jobs;
use reminderd::model::OutboxState;
use reminderd::secrets;
use reminderd::time::Clock;
use reminderd::whatsapp::{Client, SendRequest};

use super::output::{print_json, print_outbox, print_send_report, print_template_checks, rfc3339};
use super::{
    OutboxArgs, PlanArgs, PreviewArgs, SendArgs, TemplatesCommand, exit, fail, load_config, open,
    runtime,
};

pub(super) fn plan(config_path: &Path, db: Option<&Path>, args: &PlanArgs) -> Result<u8> {
    let PlanArgs { now, dry_run, json } = *args;
    let (config, mut store) = open(config_path, db)?;
    let now = Clock::from_option(now).now();
    let counts = jobs::plan_due(&mut store, &config, now, dry_run)?;
    if json {
        print_json(
            &serde_json::json!({ "now": rfc3339(now), "dry_run": dry_run, "due": counts.due,
            "pending": counts.pending, "expired": counts.expired, "existing": counts.existing }),
        )?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{} message(s) due: {} new, {} expired, {} already planned{}",
            counts.due,
            counts.pending,
            counts.expired,
            counts.existing,
            if dry_run {
                " (dry run: nothing was written)"
            } else {
                ""
            }
        )?;
    }
    Ok(exit::OK)
}

pub(super) fn send(config_path: &Path, db: Option<&Path>, args: &SendArgs) -> Result<u8> {
    let SendArgs { now, once, json } = *args;
    let (config, store) = open(config_path, db)?;
    let clock = Clock::from_option(now);
    let client = client(&config)?;
    let config = Arc::new(config);
    let store = reminderd::store::Db::new(store);
    let sms =
        reminderd::dispatch::SmsSenders::new(&config, |s| s.load().map_err(|e| e.to_string()))
            .map_err(|e| fail(exit::CONFIG, e))?;
    let dispatcher = Dispatcher::new(store.clone(), Arc::clone(&config), client)
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?
        .with_sms(sms);
    runtime()?.block_on(async move {
        let outcome = async {
            loop {
                let c = Arc::clone(&config);
                store
                    .run(move |s| reminderd::jobs::waitlist::run(s, &c, clock.now()))
                    .await??;
                match dispatcher.run_once(clock).await {
                    Ok(report) => {
                        print_send_report(&report, json)?;
                        // A restricted or disabled account: nothing was sent, and a person must act.
                        if let Some(why) = report.blocked {
                            return Err(fail(exit::UNAVAILABLE, why));
                        }
                    }
                    Err(DispatchError::Account(why)) => return Err(fail(exit::UNAVAILABLE, why)),
                    Err(e) => return Err(e.into()),
                }
                if once {
                    return Ok(exit::OK);
                }
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
                }
            }
        }
        .await;
        // Gone from the live instances, its leases given back: a daemon on the same database
        // takes its share of the caps and of the recipients, and the offer rounds, at once
        // rather than after ten seconds (or the lease's lapse).
        let _ = store.run(reminderd::store::Store::leave).await;
        outcome
    })
}

pub(super) fn list(config_path: &Path, db: Option<&Path>, args: &OutboxArgs) -> Result<u8> {
    let (_, store) = open(config_path, db)?;
    if let Some(s) = &args.state
        && OutboxState::parse(s).is_err()
    {
        let all: Vec<&str> = OutboxState::ALL.iter().map(|s| s.as_str()).collect();
        return Err(fail(
            exit::USAGE,
            format!("unknown state {s:?}; use one of: {}", all.join(", ")),
        ));
    }
    let rows = store.outbox(args.state.as_deref())?;
    if args.json {
        print_json(&rows)?;
    } else {
        print_outbox(&rows)?;
    }
    Ok(exit::OK)
}

pub(super) fn preview(config_path: &Path, db: Option<&Path>, args: &PreviewArgs) -> Result<u8> {
    let (config, store) = open(config_path, db)?;
    let (appointment_id, rule, clinic) = (
        args.appointment_id.as_str(),
        args.rule.as_deref(),
        args.clinic.as_deref(),
    );
    let rows = store.preview_row(appointment_id, clinic)?;
    let row = match rows.as_slice() {
        [] => {
            return Err(fail(
                exit::DATA,
                format!(
                    "no appointment {appointment_id:?}{}",
                    clinic
                        .map(|c| format!(" at clinic {c:?}"))
                        .unwrap_or_default()
                ),
            ));
        }
        [one] => one,
        many => {
            let clinics: Vec<&str> = many.iter().map(|r| r.clinic.as_str()).collect();
            return Err(fail(
                exit::USAGE,
                format!(
                    "appointment {appointment_id:?} exists at several clinics ({}); add --clinic",
                    clinics.join(", ")
                ),
            ));
        }
    };
    let clinic_cfg = config.clinic(&row.clinic).ok_or_else(|| {
        fail(
            exit::CONFIG,
            format!("clinic {:?} is not configured", row.clinic),
        )
    })?;
    let template_key = match rule {
        Some(name) => {
            // A feedback rule (`kind = "feedback"`) previews like a reminder rule.
            let feedback = config.feedback.iter().find(|r| r.name == name);
            config
                .rules
                .iter()
                .find(|r| r.name == name)
                .map(|r| &r.template)
                .or(feedback.map(|r| &r.template))
                .ok_or_else(|| {
                    let names: Vec<&str> = config
                        .rules
                        .iter()
                        .map(|r| r.name.as_str())
                        .chain(config.feedback.iter().map(|r| r.name.as_str()))
                        .collect();
                    fail(
                        exit::USAGE,
                        format!(
                            "unknown rule {name:?}; configured rules: {}",
                            names.join(", ")
                        ),
                    )
                })?
        }
        None => config
            .rules
            .iter()
            .find(|r| r.clinics.contains(&row.clinic))
            .map(|r| &r.template)
            .or(config.booking_confirmation.as_ref())
            .ok_or_else(|| fail(exit::CONFIG, "no rule applies to this clinic"))?,
    };
    let template = &config.templates[template_key];
    let rendered = reminderd::template::render(
        template_key,
        template,
        &reminderd::template::Input {
            clinic: clinic_cfg,
            patient_name: &row.patient_name,
            patient_language: &row.language,
            starts_at: row.starts_at,
            provider: row.provider.as_deref(),
            outbox_id: 0,
            contact_name: None,
            prep_note: reminderd::config::prep_note_for(
                &config.prep_notes,
                row.provider.as_deref(),
            ),
        },
    )
    .map_err(|e| fail(exit::DATA, e.to_string()))?;
    let body = SendRequest::template(&row.phone, &rendered, "<outbox id>".into());
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "To {} ({}), in {}, template {:?}:\n",
        row.patient_name,
        row.phone.masked(),
        rendered.language,
        rendered.template_name
    )?;
    for line in rendered.preview().lines() {
        writeln!(out, "  │ {line}")?;
    }
    writeln!(
        out,
        "\nRequest body (button payloads and callback data carry the outbox id, set when the message is planned):"
    )?;
    serde_json::to_writer_pretty(&mut out, &body)?;
    writeln!(out)?;
    Ok(exit::OK)
}

pub(super) fn templates(
    config_path: &Path,
    db: Option<&Path>,
    command: &TemplatesCommand,
) -> Result<u8> {
    match *command {
        TemplatesCommand::Check { json } => {
            let config = load_config(config_path, db)?;
            // Meta's events as the daemon recorded them, when there is a database to read.
            let health = if config.has_database() {
                Some(reminderd::dispatch::health::Health::read(
                    &open(config_path, db)?.1,
                    &config,
                )?)
            } else {
                None
            };
            templates_check(&config, health.as_ref(), json)
        }
    }
}

/// One line of `templates check`.
#[derive(Serialize)]
pub(super) struct TemplateCheck {
    pub(super) template: String,
    pub(super) name: String,
    pub(super) language: String,
    /// The business account checked, when the numbers are in several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) account: Option<String>,
    pub(super) status: String,
    pub(super) ok: bool,
    pub(super) problem: Option<String>,
    /// Time-to-live advice and Meta's warnings: worth acting on, not failures.
    pub(super) warnings: Vec<String>,
}

fn templates_check(
    config: &Config,
    health: Option<&reminderd::dispatch::health::Health>,
    json: bool,
) -> Result<u8> {
    // Each business account's catalogue, read with the token of a number in it that has
    // clinics (templates are approved per account, so each is checked in each).
    let mut accounts: Vec<(String, Client)> = Vec::new();
    for (n, client) in super::numbers::number_clients(config)? {
        let used = n.name == reminderd::config::DEFAULT_NUMBER
            || config.clinics_sending_from(&n.name).next().is_some();
        if used && !accounts.iter().any(|(w, _)| *w == n.waba_id) {
            accounts.push((n.waba_id.clone(), client));
        }
    }
    let several = accounts.len() > 1;
    let mut lines = Vec::new();
    for (waba, client) in &accounts {
        let remote = runtime()?.block_on(client.templates()).map_err(|e| {
            fail(
                exit::UNAVAILABLE,
                format!("cannot read the template list of business account {waba}: {e}"),
            )
        })?;
        check_catalogue(config, health, &remote, (waba, several), &mut lines);
    }
    if json {
        print_json(&lines)?;
    } else {
        print_template_checks(&lines)?;
    }
    let account = account_line(health);
    if let Some((line, _)) = &account {
        writeln!(std::io::stderr().lock(), "{line}")?;
    }
    let blocked = account.is_some_and(|(_, blocked)| blocked);
    Ok(if lines.iter().all(|l| l.ok) && !blocked {
        exit::OK
    } else {
        exit::CONFIG
    })
}

/// Checks every configured template and language against one account's catalogue.
fn check_catalogue(
    config: &Config,
    health: Option<&reminderd::dispatch::health::Health>,
    remote: &[reminderd::whatsapp::RemoteTemplate],
    (waba, named): (&str, bool),
    lines: &mut Vec<TemplateCheck>,
) {
    use reminderd::dispatch::health;
    for (key, t) in &config.templates {
        for lang in t.languages.keys() {
            let found = remote
                .iter()
                .find(|r| r.name == t.name && r.language == *lang);
            let (status, problem) = match found {
                None => (
                    "MISSING".to_string(),
                    Some("no such template in this language on the account".to_string()),
                ),
                Some(r) if r.status != "APPROVED" => (
                    r.status.clone(),
                    Some(format!(
                        "status is {}, only APPROVED templates can be sent",
                        r.status
                    )),
                ),
                Some(r) if r.body_params != t.params.len() => (
                    r.status.clone(),
                    Some(format!(
                        "the body has {} placeholder(s), the config gives {} param(s)",
                        r.body_params,
                        t.params.len()
                    )),
                ),
                Some(r) if r.quick_replies != t.buttons.len() => (
                    r.status.clone(),
                    Some(format!(
                        "it has {} quick-reply button(s), the config expects {}",
                        r.quick_replies,
                        t.buttons.len()
                    )),
                ),
                Some(r) => (r.status.clone(), None),
            };
            let mut warnings =
                health::ttl_warnings(config, key, found.and_then(|r| r.message_send_ttl_seconds));
            let mut problem = problem;
            if let Some(h) = health {
                for e in h.events_for(t, Some(lang), Some(waba)) {
                    match health::unusable(e) {
                        Some(why) if problem.is_none() => {
                            problem = Some(format!("{why} (webhook of {})", rfc3339(e.updated_at)))
                        }
                        Some(_) => {}
                        None => warnings.extend(health::warning(e)),
                    }
                }
            }
            lines.push(TemplateCheck {
                template: key.clone(),
                name: t.name.clone(),
                language: lang.clone(),
                account: named.then(|| waba.to_string()),
                status,
                ok: problem.is_none(),
                problem,
                warnings,
            });
        }
    }
}

/// What Meta last reported of the account, as one line (`None`: nothing), and whether it
/// stops sending now. Shared by `templates check` (on stderr) and `check-config`.
pub(super) fn account_line(
    health: Option<&reminderd::dispatch::health::Health>,
) -> Option<(String, bool)> {
    let now = Clock::System.now();
    let h = health?;
    let a = h.blocked_account(now).or_else(|| h.latest_account())?;
    Some(match h.account_block(now) {
        Some(why) => (
            format!(
                "account: {why} (event {}, {})",
                a.event,
                rfc3339(a.updated_at)
            ),
            true,
        ),
        None => (
            format!(
                "account: sending allowed (last event {}, {}: {})",
                a.event,
                rfc3339(a.updated_at),
                a.reason.as_deref().unwrap_or("no reason given")
            ),
            false,
        ),
    })
}

/// The API client from config, the token from the environment or credentials, and the base
/// URL from `$REMINDERD_API_BASE` when set (applied in `load_config`).
pub(super) fn client(config: &Config) -> Result<Client> {
    let wa = config.whatsapp.as_ref().ok_or_else(|| {
        fail(
            exit::CONFIG,
            "whatsapp: the config has no [whatsapp] section; see reminders.toml",
        )
    })?;
    let token = secrets::ACCESS_TOKEN
        .load()
        .map_err(|e| fail(exit::CONFIG, e.to_string()))?;
    Ok(Client::new(wa, token, None)?)
}
