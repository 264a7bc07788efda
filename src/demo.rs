//! `reminderd demo`: the whole job on the embedded default, with no WhatsApp account. In a
//! folder of its own it runs the simulator and the daemon in-process on loopback with a fast
//! schedule, on a simulated clock: at each clinic in turn it is 18:00 on the evening before the
//! sample schedule's day (a weekday), the clinic's part of the schedule is imported, its
//! reminders go out and simulated patients answer. Then it stops everything it started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::config::{Clinic, Config};
use crate::daemon::{self, Options, Secrets};
use crate::import::{self, ApplyOptions, ParseOptions, ParsedFile};
use crate::sim::{Reply, Sim, SimConfig};
use crate::store::Store;
use crate::time::{Clock, SimulatedTime, local_to_utc_forward};

/// The shipped example config and sample schedule, built in so the demo needs no files.
const CONFIG: &str = include_str!("../reminders.toml");
const SCHEDULE: &str = include_str!("../examples/schedule.csv");

/// The demo's app secret (the simulator signs its webhooks with it).
const APP_SECRET: &str = "demo-app-secret";

/// When each clinic's evening starts, local time: the front desk has uploaded tomorrow's
/// schedule and the day-before reminders go out.
const EVENING: NaiveTime = NaiveTime::from_hms_opt(18, 0, 0).expect("a valid time");

/// The demo's clock: every instant it shows is one of the simulated evenings.
static TIME: SimulatedTime = SimulatedTime::new();

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
    /// Each clinic's simulated evening (its key and when it began), in the order they ran.
    pub evenings: Vec<(String, DateTime<Utc>)>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The demo's script: who answers what. `(appointment id, how they answer)`.
enum Answer {
    /// Taps a quick-reply button of their reminder.
    Tap(&'static str),
    /// Types words.
    Types(&'static str),
    /// Answers the text message they got instead (they are not on WhatsApp).
    Texts(&'static str),
}

const ANSWERS: &[(&str, Answer)] = &[
    ("MUM-1001", Answer::Tap("confirm")),
    ("MUM-1002", Answer::Types("रद्द करा")),
    ("MUM-1004", Answer::Types("STOP")),
    ("MUM-1005", Answer::Types("क्या मैं शाम 5 बजे आ सकता हूँ?")),
    ("NYC-502", Answer::Types("Yes!")),
    ("NYC-503", Answer::Types("cambiar hora")),
    ("NYC-506", Answer::Texts("1")),
];

/// The token the demo's MSG91 report URL carries.
const DEMO_MSG91_TOKEN: &str = "demo-msg91-webhook-token";

/// Twilio's signatures are computed over the address Twilio calls: in the demo, the daemon's.
const SHIPPED_PUBLIC_URL: &str = "public_url = \"https://reminders.example.org\"";

/// The shipped placeholder account; the simulator has its own.
const SHIPPED_ACCOUNT_SID: &str = "account_sid = \"AC00000000000000000000000000000000\"";

/// The patient whose number is not on WhatsApp (the simulator fails their messages).
const NOT_ON_WHATSAPP: &str = "NYC-506";

/// One clinic's evening: its part of the schedule and when the evening begins.
struct Evening {
    clinic: Clinic,
    rows: ParsedFile,
    at: DateTime<Utc>,
}

/// Runs the demo in `dir` (which must exist and be empty or new).
pub async fn run(dir: &Path) -> Result<Outcome, DemoError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir).map_err(err)?;
    // The simulator and the daemon, on loopback ports of their own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let daemon_url = format!("http://{}", listener.local_addr().map_err(err)?);
    let config_path = dir.join("reminders.toml");
    let sim_defaults = SimConfig::default();
    let text = demo_config()
        .replace(
            SHIPPED_PUBLIC_URL,
            &format!("public_url = \"{daemon_url}\""),
        )
        .replace(
            SHIPPED_ACCOUNT_SID,
            &format!("account_sid = \"{}\"", sim_defaults.twilio_account_sid),
        );
    std::fs::write(&config_path, text).map_err(err)?;
    let config = Config::load(&config_path).map_err(err)?;
    std::fs::write(dir.join("schedule.csv"), SCHEDULE).map_err(err)?;
    let parsed =
        import::parse(SCHEDULE.as_bytes(), &config, &ParseOptions::default()).map_err(err)?;
    if !parsed.errors.is_empty() {
        return Err(DemoError(format!(
            "the sample schedule does not import: {:?}",
            parsed.errors
        )));
    }
    let evenings = evenings(&config, &parsed);
    let first_start = parsed
        .rows
        .iter()
        .map(|r| r.starts_at)
        .min()
        .ok_or_else(|| DemoError("the sample schedule is empty".into()))?;
    let clock = Clock::Simulated(&TIME);
    if let Some(first) = evenings.first() {
        TIME.set(first.at);
    }
    let mut store = Store::open(&config.database_path).map_err(err)?;
    store.sync_clinics(&config.clinics).map_err(err)?;
    drop(store);

    let wa = config
        .whatsapp
        .clone()
        .ok_or_else(|| DemoError("no [whatsapp] section".into()))?;
    let sim_config = SimConfig {
        phone_number_id: wa.phone_number_id.clone(),
        waba_id: wa.waba_id.clone(),
        access_token: "demo-token".into(),
        templates: crate::sim::templates_from_config(&config),
        webhook_url: Some(format!("{daemon_url}/webhook")),
        app_secret: Some(APP_SECRET.into()),
        pair_limit: Some(Duration::from_secs(1)),
        status_delay: Duration::from_millis(50),
        twilio_inbound_url: Some(format!("{daemon_url}/twilio/inbound")),
        msg91: crate::sim::SimMsg91 {
            templates: crate::sim::dlt_templates_from_config(&config),
            ..crate::sim::SimMsg91::default()
        },
        msg91_report_url: Some(format!(
            "{daemon_url}/msg91/report?token={DEMO_MSG91_TOKEN}"
        )),
        ..SimConfig::default()
    };
    let sim = Sim::start(sim_config.clone()).await.map_err(err)?;
    let unreachable = parsed
        .rows
        .iter()
        .find(|r| r.appointment_id == NOT_ON_WHATSAPP)
        .map(|r| r.phone.as_str().to_string())
        .ok_or_else(|| DemoError(format!("no appointment {NOT_ON_WHATSAPP}")))?;
    sim.fail_later(&unreachable, 131_026);

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
                twilio_auth_token: Some(SecretString::from(sim_config.twilio_auth_token.clone())),
                msg91_auth_key: Some(SecretString::from(sim_config.msg91.auth_key.clone())),
                msg91_webhook_token: Some(SecretString::from(DEMO_MSG91_TOKEN)),
            },
            handle_signals: false,
            clock,
        },
        listener,
        stop.clone(),
    ));

    let mut result = Ok(());
    for evening in &evenings {
        result = script(&config, evening, clock, &sim).await;
        if result.is_err() {
            break;
        }
    }
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
        evenings: evenings
            .iter()
            .map(|e| (e.clinic.key.clone(), e.at))
            .collect(),
        elapsed: started.elapsed(),
    })
}

/// Each clinic of the schedule with its rows and its evening (18:00 local on the day before
/// its first appointment), earliest evening first.
fn evenings(config: &Config, parsed: &ParsedFile) -> Vec<Evening> {
    let mut out: Vec<Evening> = config
        .clinics
        .values()
        .filter_map(|clinic| {
            let rows: Vec<_> = parsed
                .rows
                .iter()
                .filter(|r| r.clinic == clinic.key)
                .cloned()
                .collect();
            let day = rows.iter().map(|r| r.local_date).min()?.pred_opt()?;
            Some(Evening {
                clinic: clinic.clone(),
                at: local_to_utc_forward(clinic.time_zone, day.and_time(EVENING)),
                rows: ParsedFile {
                    rows_read: rows.len(),
                    rows,
                    errors: Vec::new(),
                    checksum: parsed.checksum.clone(),
                    sound: Vec::new(),
                    clinics: std::iter::once(clinic.key.clone()).collect(),
                },
            })
        })
        .collect();
    out.sort_by_key(|e| e.at);
    out
}

/// One clinic's evening: the clock moves to 18:00 there, the clinic's schedule is imported,
/// its reminders go out, its patients answer, and their acknowledgements go back.
async fn script(
    config: &Config,
    evening: &Evening,
    clock: Clock,
    sim: &Sim,
) -> Result<(), DemoError> {
    // Time only moves forward: the next evening is later than the last one's end.
    if clock.now() < evening.at {
        TIME.set(evening.at);
    }
    let mut store = Store::open(&config.database_path).map_err(err)?;
    let report = import::apply(
        &mut store,
        config,
        &evening.rows,
        &ApplyOptions {
            file_name: "schedule.csv",
            complete: false,
            dry_run: false,
            imported_by: "demo",
            now: clock.now(),
        },
    )
    .map_err(err)?;
    if !report.errors.is_empty() {
        return Err(DemoError(format!(
            "the sample schedule did not import: {:?}",
            report.errors
        )));
    }
    let key = evening.clinic.key.as_str();
    let reminders_done = |s: &Store| -> Result<bool, DemoError> {
        let rows = s.outbox(None).map_err(err)?;
        let reminders: Vec<_> = rows
            .iter()
            .filter(|r| r.kind == "reminder" && r.clinic == key)
            .collect();
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

    let answered_before = store.replies(false, None).map_err(err)?.len();
    let mut answers = 0;
    for (appointment, answer) in ANSWERS {
        let Some(row) = evening
            .rows
            .rows
            .iter()
            .find(|r| r.appointment_id == *appointment)
        else {
            continue;
        };
        let phone = row.phone.as_str().to_string();
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
            Answer::Texts(words) => {
                sim.sms_reply(&phone, words).await.map_err(err)?;
                answers += 1;
                continue;
            }
        };
        sim.reply(reply).await.map_err(err)?;
        answers += 1;
    }
    // Each answer is recorded with its acknowledgement in one transaction; the evening is
    // over when every acknowledgement has reached the phone (or failed).
    wait("the acknowledgements", Duration::from_secs(20), || {
        let replies = store.replies(false, None).map_err(err)?.len();
        let acks_out = store
            .outbox(None)
            .map_err(err)?
            .iter()
            .filter(|r| r.kind == "reply_ack")
            .all(|r| matches!(r.state.as_str(), "delivered" | "read" | "failed"));
        Ok(replies >= answered_before + answers && acks_out)
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

/// The shipped config with a fast schedule. Quiet hours stay: the simulated evenings are
/// outside them, as a clinic's would be.
pub fn demo_config() -> String {
    CONFIG
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
