//! The FHIR R4 feed against the simulator's FHIR server, with a real SQLite store: syncs over
//! several pages, cancellations and deletions on the server, replays, refusals, a failing
//! server, and write-back of patients' answers (through the library, and end to end through
//! `reminderd run` and a signed WhatsApp reply).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reminderd::config::Config;
use reminderd::feeds::fhir::{FhirClients, sync};
use reminderd::feeds::updates::{CANCEL_BY_HAND, run_due};
use reminderd::sim::{Reply, SIM_FHIR_TOKEN, Sim, SimConfig, SimFhirFault};
use reminderd::store::Db;
use reminderd::time::Clock;
use serde_json::json;

use crate::common::{Env, sim_config, wait_for};

fn feed_section(base: &str, write_back: bool, cadence: (&str, &str)) -> String {
    format!(
        "\n[feeds.ehr]\nkind = \"fhir\"\nclinic = \"mumbai\"\nbase_url = \"{base}\"\nauth = \"bearer\"\nhorizon_days = 3\npage_size = 2\nwrite_back = {write_back}\nfull_sync = \"{}\"\nincremental_sync = \"{}\"\n",
        cadence.0, cadence.1
    )
}

/// The test's config with a FHIR feed `ehr` for Mumbai on the simulator, and its store.
fn setup(env: &Env, sim: &Sim, write_back: bool) -> (Arc<Config>, Db) {
    // The upload's freshness guard is not a fed clinic's (`feeds::is_fed`); off here so that
    // what is sent depends on the feed alone.
    let text = std::fs::read_to_string(env.path("reminders.toml"))
        .expect("config")
        .replace("max_import_age = \"36h\"", "")
        // Tests send at whatever hour they run: no quiet hours.
        .replace("quiet_hours = \"21:00-08:00\"", "")
        + &feed_section(
            &sim.fhir_base(),
            write_back,
            ("0 0 * * * *", "0 */5 * * * *"),
        );
    env.write_config(&text);
    let config = Config::from_toml(&text, &env.path("reminders.toml")).expect("valid config");
    let mut store = env.store().expect("store");
    store.sync_clinics(&config.clinics).expect("clinics");
    (Arc::new(config), Db::new(store))
}

fn clients() -> FhirClients {
    FhirClients::with_env(|k| (k == "REMINDERD_FEED_EHR_TOKEN").then(|| SIM_FHIR_TOKEN.to_string()))
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// Seeds patient P<n> (with a mobile, unless `mobile` is None) and appointment A<n>.
fn seed(sim: &Sim, n: u32, start: DateTime<Utc>, status: &str, mobile: Option<&str>) {
    let telecom = match mobile {
        Some(m) => json!([
            {"system": "phone", "value": "022 2345 6789", "use": "home"},
            {"system": "phone", "value": m, "use": "mobile"}
        ]),
        None => json!([{"system": "phone", "value": "022 2345 6789", "use": "home"}]),
    };
    sim.fhir_put(json!({
        "resourceType": "Patient", "id": format!("P{n}"),
        "name": [{"use": "official", "given": [format!("Patient{n}")], "family": "Shah"}],
        "telecom": telecom,
        "communication": [{"language": {"coding": [{"code": "en"}]}, "preferred": true}]
    }));
    sim.fhir_put(appointment(n, start, status));
}

fn appointment(n: u32, start: DateTime<Utc>, status: &str) -> serde_json::Value {
    json!({
        "resourceType": "Appointment", "id": format!("A{n}"), "status": status,
        "start": at(start), "end": at(start + chrono::Duration::minutes(15)),
        "participant": [
            {"actor": {"reference": format!("Patient/P{n}")}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/D1", "display": "Dr Mehta"}, "status": "accepted"}
        ]
    })
}

fn status_of(env: &Env, id: &str) -> Option<String> {
    env.sql()
        .query_row(
            "SELECT status FROM appointments WHERE source = 'ehr' AND external_id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()
}

/// Five booked appointments from 20 hours on, one cancelled and one proposed in the horizon,
/// one booked beyond it.
fn seed_horizon(sim: &Sim, now: DateTime<Utc>) {
    for n in 1..=5 {
        let start =
            now + chrono::Duration::hours(20) + chrono::Duration::minutes(10 * i64::from(n));
        seed(sim, n, start, "booked", Some(&format!("98200 1000{n}")));
    }
    seed(
        sim,
        6,
        now + chrono::Duration::hours(21),
        "cancelled",
        Some("98200 10006"),
    );
    seed(
        sim,
        7,
        now + chrono::Duration::days(10),
        "booked",
        Some("98200 10007"),
    );
    seed(
        sim,
        8,
        now + chrono::Duration::hours(22),
        "proposed",
        Some("98200 10008"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_over_pages_imports_the_booked_horizon_and_follows_the_server() {
    let env = Env::new();
    let sim = Sim::start(SimConfig {
        pair_limit: None,
        ..sim_config("test-token")
    })
    .await
    .expect("sim");
    let (config, db) = setup(&env, &sim, false);
    let now = Clock::System.now();
    seed_horizon(&sim, now);
    let feed = &config.feeds["ehr"];

    let r = sync(&db, &config, feed, &clients(), true, Clock::System)
        .await
        .expect("sync");
    assert!(r.full);
    assert_eq!(r.pages, 4, "7 appointments in the horizon, 2 a page: {r:?}");
    assert_eq!(
        r.listed, 7,
        "the one beyond the horizon is not asked for: {r:?}"
    );
    assert_eq!((r.applied, r.refused), (6, 1), "{r:?}");
    let booked =
        env.count("SELECT count(*) FROM appointments WHERE source = 'ehr' AND status = 'booked'");
    assert_eq!(booked, 5, "exactly the booked appointments of the horizon");
    assert_eq!(status_of(&env, "A6").as_deref(), Some("cancelled"));
    assert_eq!(status_of(&env, "A7"), None, "beyond the horizon");
    assert_eq!(status_of(&env, "A8"), None, "proposed: not booked");
    let refusal: String = env
        .sql()
        .query_row(
            "SELECT error FROM feed_messages WHERE state = 'refused'",
            (),
            |r| r.get(0),
        )
        .expect("refusal");
    assert!(
        refusal.contains("A8") && refusal.contains("not booked"),
        "{refusal}"
    );

    // The plan plans their reminders, and none for the cancelled one.
    let cfg = Arc::clone(&config);
    let counts = db
        .run(move |s| reminderd::jobs::plan_due(s, &cfg, Clock::System.now(), false))
        .await
        .expect("run")
        .expect("plan");
    assert!(counts.pending >= 5, "{counts:?}");
    let for_cancelled = env.count(
        "SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'A6'",
    );
    assert_eq!(for_cancelled, 0);

    // Cancelled on the server: cancelled here at the next incremental sync, its reminder
    // skipped; the unchanged ones are replays, not applied again.
    let mut a1 = appointment(
        1,
        now + chrono::Duration::minutes(20 * 60 + 10),
        "cancelled",
    );
    a1["cancelationReason"] = json!({"coding": [{"code": "prov"}]});
    sim.fhir_put(a1);
    let r = sync(&db, &config, feed, &clients(), false, Clock::System)
        .await
        .expect("incremental");
    assert!(!r.full);
    // What changed since the cursor, wherever it falls: A1, and A7 beyond the horizon.
    assert_eq!(r.applied, 2, "{r:?}");
    assert!(
        r.replays >= 5,
        "the rest were seen at these versions: {r:?}"
    );
    assert_eq!(status_of(&env, "A1").as_deref(), Some("cancelled"));
    let sent = tokio::task::block_in_place(|| {
        env.run_with_env(
            &["send", "--once"],
            &[
                ("REMINDERD_API_BASE", sim.base_url().as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "test-token"),
            ],
        )
    });
    assert_eq!(sent.code, 0, "{}", sent.stderr);
    let to: Vec<String> = sim
        .messages()
        .iter()
        .filter(|m| m.body["template"]["name"] == "appointment_reminder")
        .map(|m| m.body["to"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        to.contains(&"+919820010002".to_string()),
        "the booked ones are reminded: {to:?}"
    );
    assert!(
        !to.contains(&"+919820010001".to_string()),
        "no reminder for the cancelled A1: {to:?}"
    );
    let a2_messages =
        env.count("SELECT count(*) FROM feed_messages WHERE message_id LIKE 'Appointment/A2/%'");
    let a2_replays =
        env.count("SELECT replays FROM feed_messages WHERE message_id LIKE 'Appointment/A2/%'");
    assert_eq!((a2_messages, a2_replays >= 1), (1, true));

    // Gone from the server: the next full sync cancels it as deleted by the source.
    sim.fhir_delete("Appointment", "A3");
    let r = sync(&db, &config, feed, &clients(), true, Clock::System)
        .await
        .expect("full");
    assert_eq!(r.gone, 1, "{r:?}");
    assert_eq!(status_of(&env, "A3").as_deref(), Some("cancelled"));
    assert_eq!(status_of(&env, "A2").as_deref(), Some("booked"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_without_a_mobile_is_refused_by_name_and_the_rest_applied() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(&env, &sim, false);
    let now = Clock::System.now();
    seed(
        &sim,
        1,
        now + chrono::Duration::hours(20),
        "booked",
        Some("98200 10001"),
    );
    seed(&sim, 2, now + chrono::Duration::hours(21), "booked", None);
    let r = sync(
        &db,
        &config,
        &config.feeds["ehr"],
        &clients(),
        true,
        Clock::System,
    )
    .await
    .expect("sync");
    assert_eq!((r.applied, r.refused), (1, 1), "{r:?}");
    assert_eq!(status_of(&env, "A1").as_deref(), Some("booked"));
    let (error, external, body): (String, String, String) = env
        .sql()
        .query_row(
            "SELECT error, external_id, body FROM feed_messages WHERE state = 'refused'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("refused message");
    assert!(
        error.contains("Patient2 Shah")
            && error.contains("no mobile number")
            && error.contains("Patient.telecom"),
        "{error}"
    );
    assert_eq!(external, "A2");
    assert!(
        body.contains("\"Patient/P2\"") || body.contains("\"P2\""),
        "stored raw: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_server_records_the_error_and_keeps_local_data() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(&env, &sim, false);
    seed(
        &sim,
        1,
        Clock::System.now() + chrono::Duration::hours(20),
        "booked",
        Some("98200 10001"),
    );
    let feed = &config.feeds["ehr"];
    sync(&db, &config, feed, &clients(), true, Clock::System)
        .await
        .expect("first sync");
    sim.fhir_fault(SimFhirFault {
        on: Some("search".into()),
        status: 500,
        code: "exception".into(),
        diagnostics: "Database connection pool exhausted".into(),
    });
    let err = sync(&db, &config, feed, &clients(), true, Clock::System)
        .await
        .expect_err("the server failed");
    assert!(
        err.to_string().contains("HTTP 500")
            && err
                .to_string()
                .contains("Database connection pool exhausted"),
        "{err}"
    );
    let (last_error, cursor_kept): (String, i64) = env
        .sql()
        .query_row(
            "SELECT last_error, cursor IS NOT NULL FROM feed_status WHERE feed = 'ehr'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("status");
    assert!(
        last_error.contains("Database connection pool exhausted"),
        "{last_error}"
    );
    assert_eq!(cursor_kept, 1);
    assert_eq!(
        status_of(&env, "A1").as_deref(),
        Some("booked"),
        "local data kept"
    );

    // A wrong token: the server's 401 OperationOutcome, worded for staff.
    let bad =
        FhirClients::with_env(|k| (k == "REMINDERD_FEED_EHR_TOKEN").then(|| "wrong".to_string()));
    let err = sync(&db, &config, feed, &bad, false, Clock::System)
        .await
        .expect_err("401");
    assert!(err.to_string().contains("credentials (HTTP 401)"), "{err}");
}

/// Queues a patient's answer for an appointment as the reply's transaction does.
fn answer(env: &Env, id: &str, action: &str) {
    env.sql()
        .execute(
            "INSERT INTO source_updates (appointment_id, feed, action, created_at, updated_at)
             SELECT id, source, ?2, 0, 0 FROM appointments WHERE external_id = ?1 AND source = 'ehr'",
            reminderd::store::sql::params![id, action],
        )
        .expect("queue");
}

fn update_state(env: &Env, id: &str, action: &str) -> (String, Option<String>) {
    env.sql()
        .query_row(
            "SELECT u.state, u.error FROM source_updates u JOIN appointments a ON a.id = u.appointment_id
             WHERE a.external_id = ?1 AND u.action = ?2",
            [id, action],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("update")
}

#[tokio::test(flavor = "multi_thread")]
async fn write_back_puts_with_if_match_retries_a_412_once_and_leaves_refusals_to_staff() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(&env, &sim, true);
    let now = Clock::System.now();
    for n in 1..=4 {
        seed(
            &sim,
            n,
            now + chrono::Duration::hours(20 + i64::from(n)),
            "booked",
            Some(&format!("98200 1000{n}")),
        );
    }
    let c = clients();
    sync(&db, &config, &config.feeds["ehr"], &c, true, Clock::System)
        .await
        .expect("sync");

    // A1 cancelled by the patient, while someone at the practice edits it: 412, re-read, PUT.
    answer(&env, "A1", "cancel");
    answer(&env, "A2", "confirm");
    sim.fhir_change_before_next_put();
    let r = run_due(&db, &config, &c, Clock::System)
        .await
        .expect("updates");
    assert_eq!(r.done, 2, "{r:?}");
    let puts: Vec<_> = sim
        .fhir_writes()
        .into_iter()
        .filter(|w| w.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_eq!(
        (puts[0].status, puts[0].if_match.as_deref()),
        (412, Some("W/\"1\""))
    );
    assert_eq!(
        (puts[1].status, puts[1].if_match.as_deref()),
        (200, Some("W/\"2\""))
    );
    let sent = &puts[1].body;
    assert_eq!(sent["status"], "cancelled");
    assert_eq!(sent["cancelationReason"]["coding"][0]["code"], "pat-crs");
    assert_eq!(
        sent["cancelationReason"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
    );
    assert_eq!(sent["participant"][0]["status"], "declined");
    assert_eq!(
        sim.fhir_resource("Appointment", "A1").expect("A1").0["status"],
        "cancelled"
    );
    let post = sim
        .fhir_writes()
        .into_iter()
        .find(|w| w.method == "POST")
        .expect("AppointmentResponse");
    assert_eq!(post.body["participantStatus"], "accepted");
    assert_eq!(post.body["appointment"]["reference"], "Appointment/A2");
    assert_eq!(post.body["actor"]["reference"], "Patient/P2");
    assert_eq!(update_state(&env, "A1", "cancel").0, "done");

    // A refusal in the server's words becomes a follow-up for staff.
    answer(&env, "A3", "cancel");
    sim.fhir_fault(SimFhirFault {
        on: Some("update".into()),
        status: 422,
        code: "business-rule".into(),
        diagnostics: "Appointment is locked by billing".into(),
    });
    run_due(&db, &config, &c, Clock::System)
        .await
        .expect("updates");
    let (state, error) = update_state(&env, "A3", "cancel");
    let error = error.unwrap_or_default();
    assert_eq!(state, "staff");
    assert!(
        error.contains(CANCEL_BY_HAND) && error.contains("Appointment is locked by billing"),
        "{error}"
    );

    // A server that does not answer: tried again later, not given up at once.
    answer(&env, "A4", "cancel");
    sim.fhir_fault(SimFhirFault {
        on: Some("update".into()),
        status: 503,
        code: "transient".into(),
        diagnostics: "try later".into(),
    });
    let r = run_due(&db, &config, &c, Clock::System)
        .await
        .expect("updates");
    assert_eq!(r.retrying, 1, "{r:?}");
    assert_eq!(update_state(&env, "A4", "cancel").0, "pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_server_or_write_back_off_leaves_cancellations_to_staff() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(&env, &sim, true);
    let now = Clock::System.now();
    seed(
        &sim,
        1,
        now + chrono::Duration::hours(20),
        "booked",
        Some("98200 10001"),
    );
    seed(
        &sim,
        2,
        now + chrono::Duration::hours(21),
        "booked",
        Some("98200 10002"),
    );
    sync(
        &db,
        &config,
        &config.feeds["ehr"],
        &clients(),
        true,
        Clock::System,
    )
    .await
    .expect("sync");

    // Read-only, as OpenEMR's FHIR API is.
    sim.fhir_read_only(true);
    answer(&env, "A1", "cancel");
    run_due(&db, &config, &clients(), Clock::System)
        .await
        .expect("updates");
    let (state, error) = update_state(&env, "A1", "cancel");
    let error = error.unwrap_or_default();
    assert_eq!(state, "staff");
    assert!(
        error.contains(CANCEL_BY_HAND) && error.contains("read-only"),
        "{error}"
    );
    assert!(
        sim.fhir_writes().is_empty(),
        "nothing written to a read-only server"
    );

    // Write-back off: a cancellation is for staff, a confirmation has nothing to tell.
    let off = Config::from_toml(
        &std::fs::read_to_string(env.path("reminders.toml"))
            .expect("config")
            .replace("write_back = true", "write_back = false"),
        &env.path("reminders.toml"),
    )
    .expect("config");
    sim.fhir_read_only(false);
    answer(&env, "A2", "cancel");
    answer(&env, "A2", "confirm");
    let r = run_due(&db, &Arc::new(off), &clients(), Clock::System)
        .await
        .expect("updates");
    assert_eq!((r.staff, r.skipped), (1, 1), "{r:?}");
    assert_eq!(
        update_state(&env, "A2", "cancel"),
        ("staff".into(), Some(CANCEL_BY_HAND.into()))
    );
    assert_eq!(update_state(&env, "A2", "confirm").0, "skipped");
    assert!(sim.fhir_writes().is_empty());
}

const SECRET: &str = "fhir-test-secret";

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_syncs_reminds_and_writes_a_patients_cancel_back() {
    let env = Env::new();
    let port = crate::common::free_port();
    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let now = Clock::System.now();
    seed(
        &sim,
        1,
        now + chrono::Duration::hours(20),
        "booked",
        Some("98300 10000"),
    );
    // The upload's freshness guard does not apply to a fed clinic (`feeds::is_fed`); until
    // the dispatch asks it, the guard is switched off here so the reminder can go out.
    let config = crate::common::fast_daemon(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
    )
    .replace("max_import_age = \"36h\"", "")
        + &feed_section(&sim.fhir_base(), true, ("*/2 * * * * *", "*/1 * * * * *"));
    env.write_config(&config);

    let log = std::fs::File::create(env.path("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_ACCESS_TOKEN", "tok")
        .envs(crate::common::SMS_SECRETS)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "verify")
        .env("REMINDERD_API_BASE", sim.base_url())
        .env("REMINDERD_FEED_EHR_TOKEN", SIM_FHIR_TOKEN)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start daemon");
    let daemon_log = || std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();

    crate::common::Wait::new(
        "the reminder of the synced appointment",
        Duration::from_secs(30),
    )
    .context(daemon_log)
    .until(|| {
        sim.messages().iter().any(|m| {
            m.body["to"] == "+919830010000" && m.body["template"]["name"] == "appointment_reminder"
        })
    })
    .await;
    let reminder = sim
        .messages()
        .into_iter()
        .find(|m| m.body["template"]["name"] == "appointment_reminder")
        .expect("reminder");
    let outbox_id = reminder.body["biz_opaque_callback_data"]
        .as_str()
        .expect("callback")
        .to_string();
    sim.reply(Reply::Button {
        from: "919830010000".into(),
        payload: format!("cancel:{outbox_id}"),
        text: "Cancel".into(),
        context_id: Some(reminder.wamid.clone()),
    })
    .await
    .expect("tap");
    crate::common::Wait::new("the PUT to the FHIR server", Duration::from_secs(20))
        .context(daemon_log)
        .until(|| {
            sim.fhir_writes()
                .iter()
                .any(|w| w.method == "PUT" && w.status == 200)
        })
        .await;
    let put = sim
        .fhir_writes()
        .into_iter()
        .find(|w| w.method == "PUT")
        .expect("PUT");
    assert_eq!(put.path, "Appointment/A1");
    assert_eq!(put.if_match.as_deref(), Some("W/\"1\""));
    assert_eq!(
        put.body["cancelationReason"]["coding"][0]["code"],
        "pat-crs"
    );
    wait_for("the update done", Duration::from_secs(10), || {
        update_state(&env, "A1", "cancel").0 == "done"
    })
    .await;
    assert_eq!(status_of(&env, "A1").as_deref(), Some("cancelled"));
    crate::common::signal(child.id(), "TERM");
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "daemon exit: {status:?}\n{}",
        daemon_log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_fetch_a_token_and_a_wrong_secret_is_worded_for_staff() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(&env, &sim, false);
    let text = std::fs::read_to_string(env.path("reminders.toml"))
        .expect("config")
        .replace(
            "\nauth = \"bearer\"",
            &format!(
                "\nauth = \"client_credentials\"\ntoken_url = \"{}/fhir-auth/token\"\nclient_id = \"{}\"",
                sim.base_url(),
                reminderd::sim::SIM_FHIR_CLIENT_ID
            ),
        );
    let config2 = Arc::new(Config::from_toml(&text, &env.path("reminders.toml")).expect("config"));
    drop(config);
    seed(
        &sim,
        1,
        Clock::System.now() + chrono::Duration::hours(20),
        "booked",
        Some("98200 10001"),
    );
    let good = FhirClients::with_env(|k| {
        (k == "REMINDERD_FEED_EHR_CLIENT_SECRET")
            .then(|| reminderd::sim::SIM_FHIR_CLIENT_SECRET.to_string())
    });
    let r = sync(
        &db,
        &config2,
        &config2.feeds["ehr"],
        &good,
        true,
        Clock::System,
    )
    .await
    .expect("sync with a fetched token");
    assert_eq!(r.applied, 1, "{r:?}");
    let bad = FhirClients::with_env(|k| {
        (k == "REMINDERD_FEED_EHR_CLIENT_SECRET").then(|| "nope".to_string())
    });
    let err = sync(
        &db,
        &config2,
        &config2.feeds["ehr"],
        &bad,
        true,
        Clock::System,
    )
    .await
    .expect_err("wrong secret");
    assert!(
        err.to_string().contains("credentials (HTTP 401)")
            && err.to_string().contains("invalid_client")
            || err.to_string().contains("unknown client or wrong secret"),
        "{err}"
    );
    let none = FhirClients::with_env(|_| None);
    let err = sync(
        &db,
        &config2,
        &config2.feeds["ehr"],
        &none,
        true,
        Clock::System,
    )
    .await
    .expect_err("no secret");
    assert!(
        err.to_string()
            .contains("REMINDERD_FEED_EHR_CLIENT_SECRET is not set"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_syncs_a_feed_now_and_says_what_it_did() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let _ = setup(&env, &sim, false);
    let now = Clock::System.now();
    seed(
        &sim,
        1,
        now + chrono::Duration::hours(20),
        "booked",
        Some("98200 10001"),
    );
    seed(&sim, 2, now + chrono::Duration::hours(21), "booked", None);
    let token = [("REMINDERD_FEED_EHR_TOKEN", SIM_FHIR_TOKEN)];
    let out = env.run_with_env(&["feeds", "sync", "ehr", "--full"], &token);
    assert_eq!(out.code, 65, "one appointment refused: {out:?}");
    assert!(
        out.stdout.contains("full sync")
            && out.stdout.contains("2 appointments listed: 1 applied")
            && out.stdout.contains("1 refused")
            && out
                .stdout
                .contains("reminderd feeds messages ehr --refused"),
        "{}",
        out.stdout
    );
    assert_eq!(status_of(&env, "A1").as_deref(), Some("booked"));
    let again = env.run_with_env(&["feeds", "sync", "ehr", "--json"], &token);
    assert_eq!(again.code, 0, "the refused one is a replay now: {again:?}");
    assert_eq!(again.json()["replays"], 2);

    let unknown = env.run_with_env(&["feeds", "sync", "nope"], &token);
    assert_eq!(unknown.code, 64, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("\"nope\" is not a FHIR feed; the FHIR feeds are: ehr")
    );
    let refused = env.run_with_env(
        &["feeds", "sync", "ehr"],
        &[("REMINDERD_FEED_EHR_TOKEN", "wrong")],
    );
    assert_eq!(refused.code, 69, "{refused:?}");
}
