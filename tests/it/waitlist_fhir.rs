//! A held opening at a `confirm = "fhir"` clinic, end to end against the simulator's FHIR
//! server: the patient's "yes" over signed HTTP queues the booking in the claim's
//! transaction, the write-back moves the appointment on the server (a PUT under `If-Match`
//! the server validates), the feed's next sync lands the move, the old reminder is not sent
//! and the patient is told the new time; a booking the server refuses is the staff's card.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use reminderd::config::Config;
use reminderd::feeds::fhir::{FhirClients, sync};
use reminderd::feeds::updates::{BOOK_BY_HAND, run_due};
use reminderd::sim::{SIM_FHIR_TOKEN, Sim, SimConfig, SimFhirFault};
use reminderd::store::Db;
use reminderd::time::Clock;
use serde_json::{Value, json};

use crate::common::{Env, sim_config};
use crate::webhook::{Served, envelope};

const P1: &str = "919820012345";

fn now() -> DateTime<Utc> {
    Clock::System.now()
}

/// The instant of `time` on the local day `days` from today at the Mumbai clinic.
fn mumbai_at(days: i64, time: &str) -> DateTime<Utc> {
    let day = (now() + Duration::days(days))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M").expect("time");
    chrono_tz::Asia::Kolkata
        .from_local_datetime(&day.and_time(t))
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

fn clients() -> FhirClients {
    FhirClients::with_env(|k| (k == "REMINDERD_FEED_EHR_TOKEN").then(|| SIM_FHIR_TOKEN.to_string()))
}

/// Mumbai books through a FHIR feed `ehr` on the simulator, with write-back; patient P1 has
/// appointment A1 with Dr Mehta in five days at 09:00, synced, and a reminder of it pending.
async fn setup(sim: &Sim) -> (Env, Arc<Config>, Db) {
    let env = Env::new();
    let text = std::fs::read_to_string(env.path("reminders.toml"))
        .expect("config")
        .replace("max_import_age = \"36h\"", "")
        .replace("quiet_hours = \"21:00-08:00\"", "")
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
        + &format!(
            "\n[feeds.ehr]\nkind = \"fhir\"\nclinic = \"mumbai\"\nbase_url = \"{}\"\nauth = \"bearer\"\nhorizon_days = 7\nwrite_back = true\nfull_sync = \"0 0 * * * *\"\nincremental_sync = \"0 */5 * * * *\"\n\n[booking.clinics.mumbai]\nconfirm = \"fhir\"\n",
            sim.fhir_base()
        );
    env.write_config(&text);
    let config = Config::from_toml(&text, &env.path("reminders.toml")).expect("valid config");
    let mut store = env.store().expect("store");
    store.sync_clinics(&config.clinics).expect("clinics");
    let (config, db) = (Arc::new(config), Db::new(store));
    sim.fhir_put(json!({
        "resourceType": "Patient", "id": "P1",
        "name": [{"use": "official", "given": ["Priya"], "family": "Patil"}],
        "telecom": [{"system": "phone", "value": "98200 12345", "use": "mobile"}],
        "communication": [{"language": {"coding": [{"code": "en"}]}, "preferred": true}]
    }));
    let start = mumbai_at(5, "09:00");
    sim.fhir_put(json!({
        "resourceType": "Appointment", "id": "A1", "status": "booked",
        "start": start.to_rfc3339(), "end": (start + Duration::minutes(15)).to_rfc3339(),
        "comment": "bring the reports",
        "participant": [
            {"actor": {"reference": "Patient/P1"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/D1", "display": "Dr Mehta"}, "status": "accepted"}
        ]
    }));
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
    let t = now().timestamp();
    env.sql()
        .execute(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, created_at, updated_at)
             SELECT id, 'reminder', 'two-days', starts_at, ?1, starts_at, 'reminder', 'pending', ?1, ?1
             FROM appointments WHERE external_id = 'A1'",
            [t],
        )
        .expect("pending reminder");
    (env, config, db)
}

/// An open opening with Dr Mehta in two days at 10:30, offered to A1's patient a minute ago.
fn opening_offered(env: &Env) -> (i64, i64, DateTime<Utc>) {
    let starts = mumbai_at(2, "10:30");
    let t = now().timestamp() - 60;
    let conn = env.sql();
    let opening = conn
        .insert(
            "INSERT INTO openings (clinic_id, provider, starts_at, duration_min, source, opened_by, opened_at, offers_from, updated_at)
             SELECT id, 'Dr Mehta', ?1, 20, 'patient_cancel', 'patient', ?2, ?2, ?2 FROM clinics WHERE key = 'mumbai'",
            [starts.timestamp(), t],
        )
        .expect("opening");
    let offer = conn
        .insert(
            "INSERT INTO offers (opening_id, patient_id, appointment_id, kind, round, created_at, expires_at)
             SELECT ?1, patient_id, id, 'waitlist', 1, ?2, ?3 FROM appointments WHERE external_id = 'A1'",
            [opening, t, t + 1800],
        )
        .expect("offer");
    conn.execute(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, wamid, attempts,
            sent_at, created_at, updated_at)
         SELECT id, 'waitlist_offer', 'offer:' || ?1, starts_at, ?2, ?3, 'waitlist_offer', 'sent', 'wamid.offer' || ?1, 1,
                ?2, ?2, ?2 FROM appointments WHERE external_id = 'A1'",
        [offer, t, t + 1800],
    )
    .expect("offer message");
    (opening, offer, starts)
}

fn yes(offer: i64, id: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": P1}],
        "messages": [{"from": P1, "id": id, "timestamp": now().timestamp().to_string(),
                      "type": "button", "button": {"payload": format!("WL:{offer}:Y"), "text": "Accept"}}]
    }))
}

/// Runs `reminderd ARGS` against the simulator's WhatsApp side, off the async threads.
async fn run(env: &Arc<Env>, sim: &Sim, args: &[&str]) {
    let env = Arc::clone(env);
    let base = sim.base_url();
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run_with_env(
            &args,
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "tok"),
                ("REMINDERD_FEED_EHR_TOKEN", SIM_FHIR_TOKEN),
            ],
        )
        .expect(0)
    })
    .await
    .expect("run");
}

async fn sim() -> Sim {
    Sim::start(SimConfig {
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yes_at_a_fhir_clinic_moves_the_appointment_on_the_server_and_the_sync_lands_it() {
    let sim = sim().await;
    let (env, config, db) = setup(&sim).await;
    let (opening, offer, starts) = opening_offered(&env);
    let s = Served::start(env).await;
    assert_eq!(s.post_signed(&yes(offer, "wamid.in.1")).await, 200);
    // Held, and the booking queued for the write-back in the same transaction: no person
    // is asked to do anything.
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {opening}")),
        "held"
    );
    assert_eq!(
        s.one("SELECT action || ' ' || state || ' ' || feed FROM source_updates"),
        "book pending ehr"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE outcome = 'needs_staff'"),
        0
    );

    let r = run_due(&db, &config, &clients(), Clock::System)
        .await
        .expect("updates");
    assert_eq!(r.done, 1, "{r:?}");
    let puts: Vec<_> = sim
        .fhir_writes()
        .into_iter()
        .filter(|w| w.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(
        (puts[0].status, puts[0].if_match.as_deref()),
        (200, Some("W/\"1\""))
    );
    let (a1, version) = sim.fhir_resource("Appointment", "A1").expect("A1");
    assert_eq!(version, 2);
    let at = |v: &Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap_or(""))
            .expect("instant")
            .with_timezone(&Utc)
    };
    assert_eq!(at(&a1["start"]), starts);
    assert_eq!(at(&a1["end"]), starts + Duration::minutes(20));
    assert_eq!(a1["status"], "booked");
    assert_eq!(a1["comment"], "bring the reports");
    // Run again (as after a crash before the row was marked): the server is not written twice.
    s.env
        .sql()
        .execute("UPDATE source_updates SET state = 'pending'", ())
        .expect("again");
    run_due(&db, &config, &clients(), Clock::System)
        .await
        .expect("updates");
    assert_eq!(
        sim.fhir_writes()
            .iter()
            .filter(|w| w.method == "PUT")
            .count(),
        1
    );

    // The feed's next sync brings the move back: the opening is filled, the booking done.
    sync(
        &db,
        &config,
        &config.feeds["ehr"],
        &clients(),
        false,
        Clock::System,
    )
    .await
    .expect("sync");
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {opening}")),
        "filled"
    );
    assert_eq!(s.one("SELECT state FROM source_updates"), "done");
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM appointments WHERE external_id = 'A1' AND starts_at = {}",
            starts.timestamp()
        )),
        1
    );
    // The patient is told the new time; the reminder of the old time is not sent.
    run(&s.env, &sim, &["plan"]).await;
    run(&s.env, &sim, &["send", "--once"]).await;
    let texts: Vec<String> = sim
        .messages()
        .into_iter()
        .filter(|m| m.body["to"] == "+919820012345" && m.body["type"] == "text")
        .filter_map(|m| m.body["text"]["body"].as_str().map(str::to_string))
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("is now on") && t.contains("10:30") && t.contains("with Dr Mehta")),
        "{texts:?}"
    );
    assert_eq!(
        s.one("SELECT state FROM outbox WHERE rule = 'two-days'"),
        "skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_booking_the_fhir_server_refuses_is_a_card_for_staff() {
    let sim = sim().await;
    let (env, config, db) = setup(&sim).await;
    let (opening, offer, _) = opening_offered(&env);
    let s = Served::start(env).await;
    assert_eq!(s.post_signed(&yes(offer, "wamid.in.1")).await, 200);
    sim.fhir_fault(SimFhirFault {
        on: Some("update".into()),
        status: 422,
        code: "business-rule".into(),
        diagnostics: "Dr Mehta's schedule is locked".into(),
    });
    let r = run_due(&db, &config, &clients(), Clock::System)
        .await
        .expect("updates");
    assert_eq!(r.staff, 1, "{r:?}");
    assert_eq!(s.one("SELECT state FROM source_updates"), "staff");
    let why = s.one("SELECT error FROM source_updates");
    assert!(
        why.contains(BOOK_BY_HAND) && why.contains("Dr Mehta's schedule is locked"),
        "{why}"
    );
    // Still held for the patient while staff book it.
    assert_eq!(
        s.one(&format!("SELECT state FROM openings WHERE id = {opening}")),
        "held"
    );
    let store = s.env.store().expect("store");
    let tasks = store.book_tasks().expect("tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0].patient_name, "Priya Patil");
    assert_eq!(tasks[0].provider.as_deref(), Some("Dr Mehta"));

    // The simulator validates a moved appointment as a real server does: an end before its
    // start is refused.
    let (mut a1, _) = sim.fhir_resource("Appointment", "A1").expect("A1");
    a1["end"] = json!("2020-01-01T00:00:00Z");
    let res = reqwest::Client::new()
        .put(format!("{}/Appointment/A1", sim.fhir_base()))
        .bearer_auth(SIM_FHIR_TOKEN)
        .json(&a1)
        .send()
        .await
        .expect("put");
    assert_eq!(res.status().as_u16(), 422);
    assert!(
        res.text()
            .await
            .unwrap_or_default()
            .contains("end is before its start")
    );
}
