//! `reminderd demo`: the whole job on the embedded default, with no WhatsApp account. In a
//! folder of its own it imports the sample schedule moved to now, runs the simulator and the
//! daemon in-process on loopback with a fast schedule, lets simulated patients answer, and
//! stops everything it started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::{self, Options, Secrets};
use crate::import::{self, ApplyOptions, ParseOptions};
use crate::sim::{Reply, Sim, SimConfig};
use crate::store::Store;
use crate::time::Clock;

/// The shipped example config and sample schedule, built in so the demo needs no files.
const CONFIG: &str = include_str!("../reminders.toml");
const SCHEDULE: &str = include_str!("../examples/schedule.csv");

/// The demo's app secret (the simulator signs its webhooks with it).
const APP_SECRET: &str = "demo-app-secret";

/// Why the demo could not finish.
#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn err(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// What the demo leaves for the caller to show.
#[derive(Debug)]
pub struct Outcome {
    /// The database (deleted with the folder unless `--keep`).
    pub db: PathBuf,
    /// The config the demo ran with.
    pub config: Config,
    /// Messages the simulated API accepted.
    pub accepted: usize,
    /// When the appointments are (for the follow-up list's date).
    pub first_start: DateTime<Utc>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The demo's script: who answers what. `(appointment id, how they answer)`.
enum Answer {
    /// Taps a quick-reply button of their reminder.
    Tap(&'static str),
    /// Types words.
    Types(&'static str),
}

const ANSWERS: &[(&str, Answer)] = &[
    ("MUM-1001", Answer::Tap("confirm")),
    ("MUM-1002", Answer::Types("रद्द करा")),
    ("MUM-1004", Answer::Types("STOP")),
    ("MUM-1005", Answer::Types("क्या मैं शाम 5 बजे आ सकता हूँ?")),
    ("NYC-502", Answer::Types("Yes!")),
    ("NYC-503", Answer::Types("cambiar hora")),
];

/// The patient whose number is not on WhatsApp (the simulator fails their messages).
const NOT_ON_WHATSAPP: &str = "NYC-506";

/// Runs the demo in `dir` (which must exist and be empty or new).
pub async fn run(dir: &Path) -> Result<Outcome, DemoError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir).map_err(err)?;
    let config_path = dir.join("reminders.toml");
    std::fs::write(&config_path, demo_config()).map_err(err)?;
    let config = Config::load(&config_path).map_err(err)?;

    // The sample schedule, moved so that every appointment is about 20 hours away: its
    // day-before reminder is due now.
    let now = Clock::System.now();
    let (csv, first_start) = shifted_schedule(&config, now);
    std::fs::write(dir.join("schedule.csv"), &csv).map_err(err)?;
    let mut store = Store::open(&config.database_path).map_err(err)?;
    store.sync_clinics(&config.clinics).map_err(err)?;
    let parsed = import::parse(csv.as_bytes(), &config, &ParseOptions::default()).map_err(err)?;
    let report = import::apply(
        &mut store,
        &config,
        &parsed,
        &ApplyOptions {
            file_name: "schedule.csv",
            complete: false,
            dry_run: false,
            imported_by: "demo",
            now,
        },
    )
    .map_err(err)?;
    if !report.errors.is_empty() {
        return Err(DemoError(format!(
            "the sample schedule did not import: {:?}",
            report.errors
        )));
    }

    // The simulator and the daemon, on loopback ports of their own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let daemon_url = format!("http://{}", listener.local_addr().map_err(err)?);
    let wa = config
        .whatsapp
        .clone()
        .ok_or_else(|| DemoError("no [whatsapp] section".into()))?;
    let sim = Sim::start(SimConfig {
        phone_number_id: wa.phone_number_id.clone(),
        waba_id: wa.waba_id.clone(),
        access_token: "demo-token".into(),
        templates: crate::sim::templates_from_config(&config),
        webhook_url: Some(format!("{daemon_url}/webhook")),
        app_secret: Some(APP_SECRET.into()),
        pair_limit: Some(Duration::from_secs(1)),
        status_delay: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await
    .map_err(err)?;
    let unreachable = phone_of(&store, NOT_ON_WHATSAPP)?;
    sim.fail_later(&unreachable, 131_026);
    drop(store);

    let stop = CancellationToken::new();
    let daemon = tokio::spawn(daemon::run(
        Options {
            config_path: config_path.clone(),
            db: None,
            api_base: Some(sim.base_url()),
            secrets: Secrets {
                access_token: SecretString::from("demo-token"),
                app_secret: SecretString::from(APP_SECRET),
                verify_token: SecretString::from("demo-verify-token"),
            },
            handle_signals: false,
        },
        listener,
        stop.clone(),
    ));

    let result = script(&config.database_path, &sim).await;
    stop.cancel();
    let stopped = daemon.await;
    let accepted = sim.messages().len();
    sim.shutdown().await;
    result?;
    stopped.map_err(err)?.map_err(err)?;
    Ok(Outcome {
        db: config.database_path.clone(),
        config,
        accepted,
        first_start,
        elapsed: started.elapsed(),
    })
}

/// Waits for the reminders, has the patients answer, and waits for the acknowledgements.
async fn script(db: &Path, sim: &Sim) -> Result<(), DemoError> {
    let store = Store::open(db).map_err(err)?;
    let reminders_done = |s: &Store| -> Result<bool, DemoError> {
        let rows = s.outbox(None).map_err(err)?;
        let reminders: Vec<_> = rows.iter().filter(|r| r.kind == "reminder").collect();
        Ok(!reminders.is_empty()
            && reminders.iter().all(|r| {
                matches!(
                    r.state.as_str(),
                    "delivered" | "read" | "failed" | "skipped"
                )
            }))
    };
    wait("the reminders to go out", Duration::from_secs(40), || {
        reminders_done(&store)
    })
    .await?;

    for (appointment, answer) in ANSWERS {
        let phone = phone_of(&store, appointment)?;
        // By its outbox row, not its number: one patient may have several appointments.
        let outbox_id = store
            .outbox(None)
            .map_err(err)?
            .into_iter()
            .find(|r| r.appointment_id == *appointment && r.kind == "reminder")
            .map(|r| r.id.to_string());
        let reminder = sim.messages().into_iter().find(|m| {
            outbox_id
                .as_deref()
                .is_some_and(|id| m.body["biz_opaque_callback_data"] == id)
        });
        let reply = match answer {
            Answer::Tap(action) => {
                let m = reminder
                    .ok_or_else(|| DemoError(format!("no reminder reached {appointment}")))?;
                let id = m.body["biz_opaque_callback_data"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                Reply::Button {
                    from: phone.clone(),
                    payload: format!("{action}:{id}"),
                    text: "Confirm".into(),
                    context_id: Some(m.wamid),
                }
            }
            Answer::Types(words) => Reply::Text {
                from: phone.clone(),
                body: (*words).to_string(),
                context_id: None,
            },
        };
        sim.reply(reply).await.map_err(err)?;
    }
    // Five of the answers are understood and acknowledged; the sixth goes to staff.
    wait("the acknowledgements", Duration::from_secs(20), || {
        Ok(sim
            .messages()
            .iter()
            .filter(|m| m.body["type"] == "text")
            .count()
            >= 5)
    })
    .await
}

async fn wait(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> Result<bool, DemoError>,
) -> Result<(), DemoError> {
    let deadline = tokio::time::Instant::now() + limit;
    while !done()? {
        if tokio::time::Instant::now() > deadline {
            return Err(DemoError(format!("timed out waiting for {what}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn phone_of(store: &Store, appointment: &str) -> Result<String, DemoError> {
    let rows = store.preview_row(appointment, None).map_err(err)?;
    rows.first()
        .map(|r| r.phone.as_str().to_string())
        .ok_or_else(|| DemoError(format!("no appointment {appointment}")))
}

/// The shipped config, with a fast schedule and nothing that depends on the hour the demo
/// runs at (quiet hours would hold its messages until morning).
pub fn demo_config() -> String {
    CONFIG
        .replace("quiet_hours = \"21:00-08:00\"\n", "")
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"1s\"")
        .replace("plan = \"0 * * * * *\"", "plan = \"*/1 * * * * *\"")
        .replace(
            "dispatch = \"*/15 * * * * *\"",
            "dispatch = \"*/1 * * * * *\"",
        )
        .replace("shutdown_grace = \"10s\"", "shutdown_grace = \"5s\"")
        // Any free port for the desk: a demo must not collide with a running daemon.
        .replace("listen = \"127.0.0.1:8081\"", "listen = \"127.0.0.1:0\"")
}

/// The sample schedule with each appointment moved to about 20 hours from `now`, ten minutes
/// apart, in its clinic's local time; and the first start.
fn shifted_schedule(config: &Config, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
    let mut lines = SCHEDULE.lines();
    let mut out = String::from(lines.next().unwrap_or_default());
    out.push('\n');
    let first = now + chrono::Duration::hours(20);
    for (i, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
        let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
        let zone = config
            .clinic(fields.get(9).map_or("", String::as_str))
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        let start = (first + chrono::Duration::minutes(10 * i as i64)).with_timezone(&zone);
        if fields.len() > 6 {
            fields[5] = start.format("%Y-%m-%d").to_string();
            fields[6] = start.format("%H:%M").to_string();
        }
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    (out, first)
}
