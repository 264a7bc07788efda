//! A feed's cancellation by the patient frees a slot for the waitlist: an HL7 SIU S15 whose
//! SCH-6 (event reason) is one of the feed's `patient_cancel_reasons`, and a FHIR
//! Appointment cancelled with `cancelationReason` `pat`, each open an opening (source
//! `patient_cancel`, opened by `feed:<name>`) in the message's own transaction; the
//! clinic's cancellations through the same feeds open none.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Kolkata;
use reminderd::config::Config;
use reminderd::feeds::fhir::{FhirClients, sync};
use reminderd::sim::{SIM_FHIR_TOKEN, Sim, SimConfig};
use reminderd::store::Db;
use reminderd::time::Clock;
use serde_json::json;

use crate::common::Env;

const WAITLIST: &str = "\n[waitlist]\nenabled = true\noffer_template = \"waitlist_offer\"\n";

/// The instant of `time` on the local day `days` from today at the Mumbai clinic.
fn mumbai_at(days: i64, time: &str) -> DateTime<Utc> {
    let day = (Clock::System.now() + Duration::days(days))
        .with_timezone(&Kolkata)
        .date_naive();
    let t = chrono::NaiveTime::parse_from_str(time, "%H:%M").expect("time");
    Kolkata
        .from_local_datetime(&day.and_time(t))
        .single()
        .expect("local time")
        .with_timezone(&Utc)
}

/// The test's config with `extra`, loaded, and its store.
fn setup(env: &Env, extra: &str) -> (Arc<Config>, Db) {
    let text = std::fs::read_to_string(env.path("reminders.toml")).expect("config") + extra;
    env.write_config(&text);
    let config = Config::from_toml(&text, &env.path("reminders.toml")).expect("valid config");
    let mut store = env.store().expect("store");
    store.sync_clinics(&config.clinics).expect("clinics");
    (Arc::new(config), Db::new(store))
}

/// The openings as `appointment external id, source, opened_by`, in id order.
fn openings(env: &Env) -> Vec<String> {
    let conn = env.sql();
    let mut stmt = conn
        .prepare(
            "SELECT a.external_id || ' ' || o.source || ' ' || o.opened_by || ' ' || o.state
             FROM openings o JOIN appointments a ON a.id = o.appointment_id ORDER BY o.id",
        )
        .expect("select");
    stmt.query_map((), |r| r.get(0))
        .expect("openings")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// An SIU message in v2.3 shape for appointment `id` at `start` (15 minutes), SCH-6 `reason`.
fn siu(event: &str, control: &str, id: &str, start: DateTime<Utc>, reason: &str) -> String {
    let t = |x: DateTime<Utc>| x.with_timezone(&Kolkata).format("%Y%m%d%H%M").to_string();
    [
        format!("MSH|^~\\&|EPIC|SUNRISE|REMINDERD|CLINIC|20261125083000||SIU^{event}|{control}|P|2.3"),
        format!(
            "SCH|{id}|{id}||||{reason}|CHECKUP^Checkup||||^^^{}^{}||||||||||||||Booked",
            t(start),
            t(start + Duration::minutes(15))
        ),
        format!("PID|1||MRN-{id}^^^HOSP^MR||Sharma^Asha||19800101|F|||||^PRN^CP^^^^^^^^^98765432{}||hin", &id[id.len() - 2..]),
        "RGS|1".to_string(),
        "AIP|1||D7^Rao^Vikram^^^Dr|D".to_string(),
    ]
    .join("\r")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hl7_cancellation_the_patient_asked_for_opens_a_slot_and_the_clinics_does_not() {
    let env = Env::new();
    let (config, db) = setup(
        &env,
        &format!(
            "{WAITLIST}\n[feeds.front-desk]\nkind = \"hl7\"\nclinic = \"mumbai\"\nlisten = \"127.0.0.1:0\"\npatient_cancel_reasons = [\"PAT\", \"PTREQ\"]\n"
        ),
    );
    let feed = &config.feeds["front-desk"];
    let (s1, s2, s3) = (
        mumbai_at(3, "10:30"),
        mumbai_at(3, "11:00"),
        mumbai_at(3, "11:30"),
    );
    let send = |body: String| {
        let (db, config, feed) = (db.clone(), Arc::clone(&config), feed.clone());
        async move {
            let ack =
                reminderd::feeds::hl7::handle(&db, &config, &feed, body.as_bytes(), Clock::System)
                    .await;
            let ack = String::from_utf8_lossy(&ack).into_owned();
            assert!(ack.contains("MSA|AA"), "{ack}");
        }
    };
    send(siu("S12", "M1", "AP01", s1, "")).await;
    send(siu("S12", "M2", "AP02", s2, "")).await;
    send(siu("S12", "M3", "AP03", s3, "")).await;
    send(siu("S15", "M4", "AP01", s1, "PAT^Patient request")).await;
    send(siu("S15", "M5", "AP02", s2, "CLI^Clinic cancelled")).await;
    send(siu("S15", "M6", "AP03", s3, "ptreq")).await;
    assert_eq!(
        openings(&env),
        [
            "AP01 patient_cancel feed:front-desk open",
            "AP03 patient_cancel feed:front-desk open"
        ]
    );
    // The same S15 again (a resend) opens nothing more, nor does the waitlist job, which
    // does not count the patients' cancellations as the clinic closing.
    send(siu("S15", "M4", "AP01", s1, "PAT")).await;
    let mut store = env.store().expect("store");
    let run = reminderd::jobs::waitlist::run(&mut store, &config, Clock::System.now())
        .expect("waitlist run");
    assert_eq!((run.opened, run.withdrawn), (0, 0), "{run:?}");
    assert_eq!(openings(&env).len(), 2);
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE status = 'cancelled' AND cancelled_by = 'source'"),
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fhir_appointment_cancelled_with_reason_pat_opens_a_slot_and_prov_does_not() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(
        &env,
        &format!(
            "{WAITLIST}\n[feeds.ehr]\nkind = \"fhir\"\nclinic = \"mumbai\"\nbase_url = \"{}\"\nauth = \"bearer\"\nhorizon_days = 7\n",
            sim.fhir_base()
        ),
    );
    let clients = FhirClients::with_env(|k| {
        (k == "REMINDERD_FEED_EHR_TOKEN").then(|| SIM_FHIR_TOKEN.to_string())
    });
    let appointment = |n: u32, start: DateTime<Utc>, reason: Option<&str>| {
        let mut a = json!({
            "resourceType": "Appointment", "id": format!("A{n}"),
            "status": if reason.is_some() { "cancelled" } else { "booked" },
            "start": start.to_rfc3339(), "end": (start + Duration::minutes(15)).to_rfc3339(),
            "participant": [
                {"actor": {"reference": format!("Patient/P{n}")}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/D1", "display": "Dr Mehta"}, "status": "accepted"}
            ]
        });
        if let Some(code) = reason {
            a["cancelationReason"] = json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                "code": code
            }]});
        }
        a
    };
    let (s1, s2) = (mumbai_at(2, "10:30"), mumbai_at(2, "11:00"));
    for (n, start) in [(1, s1), (2, s2)] {
        sim.fhir_put(json!({
            "resourceType": "Patient", "id": format!("P{n}"),
            "name": [{"use": "official", "given": [format!("Patient{n}")], "family": "Shah"}],
            "telecom": [{"system": "phone", "value": format!("98200 1000{n}"), "use": "mobile"}]
        }));
        sim.fhir_put(appointment(n, start, None));
    }
    let feed = &config.feeds["ehr"];
    sync(&db, &config, feed, &clients, true, Clock::System)
        .await
        .expect("sync");
    assert!(openings(&env).is_empty());
    sim.fhir_put(appointment(1, s1, Some("pat")));
    sim.fhir_put(appointment(2, s2, Some("prov")));
    sync(&db, &config, feed, &clients, false, Clock::System)
        .await
        .expect("sync");
    assert_eq!(openings(&env), ["A1 patient_cancel feed:ehr open"]);
    let offers_from: i64 = env
        .sql()
        .query_row("SELECT offers_from - opened_at FROM openings", (), |r| {
            r.get(0)
        })
        .expect("opening");
    assert_eq!(
        offers_from,
        config.waitlist.for_clinic("mumbai").grace.num_seconds(),
        "offered only after the grace an oops cancel can be undone in"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fhir_feed_reads_free_slots_into_openings_once() {
    let env = Env::new();
    let sim = Sim::start(SimConfig::default()).await.expect("sim");
    let (config, db) = setup(
        &env,
        &format!(
            "{WAITLIST}\n[feeds.ehr]\nkind = \"fhir\"\nclinic = \"mumbai\"\nbase_url = \"{}\"\nauth = \"bearer\"\nhorizon_days = 7\nread_free_slots = true\n",
            sim.fhir_base()
        ),
    );
    let clients = FhirClients::with_env(|k| {
        (k == "REMINDERD_FEED_EHR_TOKEN").then(|| SIM_FHIR_TOKEN.to_string())
    });
    sim.fhir_put(json!({
        "resourceType": "Schedule", "id": "S1", "active": true,
        "actor": [{"reference": "Practitioner/D1", "display": "Dr Mehta"}]
    }));
    let slot = |id: &str, start: DateTime<Utc>, status: &str| {
        json!({
            "resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/S1"},
            "status": status, "start": start.to_rfc3339(),
            "end": (start + Duration::minutes(20)).to_rfc3339()
        })
    };
    let free = mumbai_at(2, "11:00");
    sim.fhir_put(slot("SL1", free, "free"));
    sim.fhir_put(slot("SL2", mumbai_at(2, "11:20"), "busy"));
    sim.fhir_put(slot("SL3", mumbai_at(30, "11:00"), "free"));
    let feed = &config.feeds["ehr"];
    let report = sync(&db, &config, feed, &clients, true, Clock::System)
        .await
        .expect("sync");
    assert_eq!(
        report.slots, 1,
        "only the free slot in the horizon: {report:?}"
    );
    let mut store = env.store().expect("store");
    let run = reminderd::jobs::waitlist::run(&mut store, &config, Clock::System.now())
        .expect("waitlist run");
    assert_eq!(run.opened, 1, "{run:?}");
    let (source, opened_by, provider, starts, minutes): (String, String, String, i64, i64) = env
        .sql()
        .query_row(
            "SELECT source, opened_by, provider, starts_at, duration_min FROM openings",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("opening");
    assert_eq!(
        (source.as_str(), opened_by.as_str(), provider.as_str()),
        ("practice", "feed:ehr", "Dr Mehta")
    );
    assert_eq!((starts, minutes), (free.timestamp(), 20));
    // The next full sync sees the same slot version: kept once, no second opening.
    sync(&db, &config, feed, &clients, true, Clock::System)
        .await
        .expect("sync");
    reminderd::jobs::waitlist::run(&mut store, &config, Clock::System.now()).expect("waitlist run");
    assert_eq!(env.count("SELECT count(*) FROM openings"), 1);
    assert_eq!(env.count("SELECT count(*) FROM slot_events"), 1);
}
