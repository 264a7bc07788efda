//! The waitlist's offering side over real HTTP: a patient's cancellation (a reply through the
//! webhook) frees a slot, and after the grace `reminderd send` offers it to waitlisted
//! patients in priority order through the simulator, round after round; a clinic's own
//! cancellation, a closed day and a slot within the lead time offer nothing; the weekly cap
//! holds; a waitlist file is imported all rows or none.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use reminderd::sim::{AcceptedMessage, Sim, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, Run, csv, sim_config};
use crate::webhook::{Served, envelope};

const ZONE: chrono_tz::Tz = chrono_tz::Asia::Kolkata;
const WAITLIST: &str = "\n[waitlist]\nenabled = true\noffer_template = \"waitlist_offer\"\n";
const HEADER: &str =
    "id,patient_id,clinic,provider,earliest,latest,days,time_band,expires,max_offers";

/// A test folder with the waitlist on, quiet hours off and the schedule never stale.
fn waitlist_env() -> Env {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    let config = config
        .replace("quiet_hours = \"21:00-08:00\"", "")
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
        .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
    env.write_config(format!("{config}{WAITLIST}"));
    env
}

fn day(now: DateTime<Utc>, days: i64) -> String {
    (now + Duration::days(days))
        .with_timezone(&ZONE)
        .format("%Y-%m-%d")
        .to_string()
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `reminderd send --once --now NOW` against the simulator (the waitlist round runs first).
async fn send(env: &Arc<Env>, sim: &Sim, now: DateTime<Utc>) -> Value {
    let (env, base, now) = (Arc::clone(env), sim.base_url(), at(now));
    tokio::task::spawn_blocking(move || {
        env.run_with_env(
            &["send", "--once", "--now", &now, "--json"],
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "tok"),
            ],
        )
        .expect(0)
        .json()
    })
    .await
    .expect("join")
}

fn offers_sent(sim: &Sim) -> Vec<AcceptedMessage> {
    sim.messages()
        .into_iter()
        .filter(|m| m.body["template"]["name"] == "earlier_slot_offer")
        .collect()
}

fn recipients(messages: &[AcceptedMessage]) -> Vec<String> {
    let mut to: Vec<String> = messages
        .iter()
        .map(|m| m.body["to"].as_str().unwrap_or("").to_string())
        .collect();
    to.sort();
    to
}

/// The patients of offers in the order they were made (id order), by their schedule id.
fn offered_in_order(env: &Env) -> Vec<(String, i64)> {
    let conn = env.sql();
    let mut st = conn
        .prepare("SELECT p.external_id, f.round FROM offers f JOIN patients p ON p.id = f.patient_id ORDER BY f.id")
        .expect("prepare");
    st.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn sim() -> SimConfig {
    SimConfig {
        pair_limit: None,
        ..sim_config("tok")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patients_cancellation_is_offered_after_the_grace_to_three_patients_in_order_then_the_next()
 {
    let env = waitlist_env();
    let now = reminderd::time::Clock::System.now();
    let (slot_day, later) = (day(now, 2), day(now, 12));
    let mut rows = vec![
        format!("A1,P1,Asha Rao,98200 10001,en,{slot_day},10:00,15,Dr. Mehta,mumbai,booked"),
        format!("C1,P9,Carl Dsouza,98200 10009,en,{slot_day},11:00,15,Dr. Mehta,mumbai,booked"),
    ];
    for i in 1..=6 {
        rows.push(format!(
            "B{i},W{i},Wait {i},98200 2000{i},en,{later},09:00,15,Dr. Mehta,mumbai,booked"
        ));
    }
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("day.csv", &csv(&rows), &[]).expect(0);
    // Priority: the earliest wanted date first, then the longest waiting (file order here).
    // W5 wants later dates and W6 never on the slot's weekday: neither suits.
    let weekday = (now + Duration::days(2))
        .with_timezone(&ZONE)
        .format("%a")
        .to_string();
    let not_that_day: Vec<&str> = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .into_iter()
        .filter(|d| *d != weekday)
        .collect();
    let quoted = format!("\"{}\"", not_that_day.join(","));
    let file = format!(
        "{HEADER}\nE1,W1,mumbai,,{d1},,,,,\nE2,W2,mumbai,Dr. Mehta,{d0},,Mon-Sun,08:00-12:00,,\nE3,W3,mumbai,,{d1},,,,,\nE4,W4,mumbai,,{d2},,,,,\nE5,W5,mumbai,,{d3},,,,,\nE6,W6,mumbai,,{d0},,{days},,,\n",
        d0 = day(now, 0),
        d1 = day(now, 1),
        d2 = day(now, 2),
        d3 = day(now, 3),
        days = quoted
    );
    let path = env.file("waitlist.csv", &file);
    let r = env
        .run(&["waitlist", "import", path.to_str().expect("path"), "--json"])
        .expect(0)
        .json();
    assert_eq!(
        (r["new"].as_u64(), r["updated"].as_u64()),
        (Some(6), Some(0)),
        "{r}"
    );
    // A1 was reminded (the patient answers that message).
    env.sql()
        .execute_batch(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, wamid, attempts, sent_at, created_at, updated_at)
             SELECT id, 'reminder', 'day-before', starts_at, starts_at - 86400, starts_at - 14400, 'reminder', 'sent',
                    'wamid.test' || id, 1, starts_at - 86400, 0, 0 FROM appointments WHERE external_id = 'A1';",
        )
        .expect("reminded");
    // The clinic cancels C1 itself: that never frees a slot for the waitlist.
    env.run(&["set-status", "C1", "cancelled", "--note", "doctor away"])
        .expect(0);

    let served = Served::start(env).await;
    let env = Arc::clone(&served.env);
    let cancel = envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": "919820010001"}],
        "messages": [{"from": "919820010001", "id": "wamid.cancel1", "timestamp": "1764500000", "type": "text", "text": {"body": "cancel"}}]
    }));
    assert_eq!(served.post_signed(&cancel).await, 200);
    assert_eq!(env.appointment("A1")["status"], "cancelled");
    let sim = Sim::start(sim()).await.expect("sim");

    // Within the grace (10 minutes) the slot is open but offered to nobody: an "oops" could
    // still undo it.
    send(&env, &sim, now + Duration::minutes(5)).await;
    assert_eq!(
        env.count(
            "SELECT count(*) FROM openings WHERE source = 'patient_cancel' AND state = 'open'"
        ),
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM openings o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'C1'"),
        0,
        "the clinic's own cancellation opens nothing"
    );
    assert!(offers_sent(&sim).is_empty());

    // After the grace: three offers, in priority order, through the simulator.
    let report = send(&env, &sim, now + Duration::minutes(11)).await;
    assert_eq!(report["sent"], 3, "{report}");
    assert_eq!(
        offered_in_order(&env),
        [
            ("W2".to_string(), 1),
            ("W1".to_string(), 1),
            ("W3".to_string(), 1)
        ]
    );
    let first = offers_sent(&sim);
    assert_eq!(
        recipients(&first),
        ["+919820020001", "+919820020002", "+919820020003"]
    );
    let offer_ids: Vec<i64> = {
        let conn = env.sql();
        let mut st = conn
            .prepare("SELECT id FROM offers ORDER BY id")
            .expect("prepare");
        st.query_map((), |r| r.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    for m in &first {
        let components = m.body["template"]["components"]
            .as_array()
            .expect("components");
        // The freed slot's date, time and doctor, not the appointment the offer is filed under.
        let params: Vec<&str> = components[0]["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect();
        assert_eq!(params[3..], ["10:00", "Dr. Mehta"], "{params:?}");
        let payloads: Vec<&str> = components[1..]
            .iter()
            .filter_map(|b| b["parameters"][0]["payload"].as_str())
            .collect();
        let id = offer_ids
            .iter()
            .find(|id| payloads.first() == Some(&format!("WL:{id}:Y").as_str()))
            .expect("the Accept button names an offer");
        assert_eq!(payloads, [format!("WL:{id}:Y"), format!("WL:{id}:N")]);
    }
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE kind = 'waitlist_offer' AND state = 'sent' AND rule LIKE 'offer:%'"),
        3
    );

    // The next round waits for batch_gap (20 minutes), then goes to the next patient.
    send(&env, &sim, now + Duration::minutes(25)).await;
    assert_eq!(offers_sent(&sim).len(), 3);
    send(&env, &sim, now + Duration::minutes(32)).await;
    let all = offers_sent(&sim);
    assert_eq!(all.len(), 4);
    assert_eq!(offered_in_order(&env)[3], ("W4".to_string(), 2));
    assert_eq!(env.count("SELECT round FROM openings"), 2);
    // Round one's offers run out after 30 minutes unanswered.
    send(&env, &sim, now + Duration::minutes(42)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM offers WHERE state = 'expired' AND round = 1"),
        3
    );
}

/// Opens a slot as staff do on the desk (the same store call), `from_now` ahead.
fn open_by_staff(env: &Env, start: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let mut store = env.store().expect("store");
    store
        .open_slot_by_staff("mumbai", (start, 15), Some("Dr. Mehta"), "staff:test", now)
        .expect("open")
}

/// Imports patients W1.. with an appointment in 12 days, and puts them on the waitlist.
fn waiting(env: &Env, now: DateTime<Utc>, n: usize, max_offers: u32) {
    let later = day(now, 12);
    let rows: Vec<String> = (1..=n)
        .map(|i| {
            format!("B{i},W{i},Wait {i},98200 3{i:04},en,{later},09:00,15,Dr. Mehta,mumbai,booked")
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("later.csv", &csv(&rows), &[]).expect(0);
    let today = day(now, 0);
    let file: Vec<String> = std::iter::once(HEADER.to_string())
        .chain((1..=n).map(|i| format!("E{i},W{i},mumbai,,{today},,,,,{max_offers}")))
        .collect();
    let file = file.join("\n");
    let path = env.file("waitlist.csv", format!("{file}\n"));
    env.run(&["waitlist", "import", path.to_str().expect("path")])
        .expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_day_and_a_slot_within_the_lead_time_get_no_offers() {
    let env = waitlist_env();
    let now = reminderd::time::Clock::System.now();
    waiting(&env, now, 3, 3);
    // Five appointments cancelled in the practice system on day 3: the clinic is closed.
    let closed = day(now, 3);
    let rows: Vec<String> = (1..=5)
        .map(|i| format!("X{i},Y{i},Closed {i},98200 4000{i},en,{closed},1{i}:00,15,Dr. Mehta,mumbai,cancelled"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("closed.csv", &csv(&rows), &[]).expect(0);
    let closed_start = reminderd::time::local_to_utc(
        ZONE,
        chrono::NaiveDate::parse_from_str(&closed, "%Y-%m-%d").expect("date"),
        chrono::NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
    )
    .expect("start");
    let on_closed_day = open_by_staff(&env, closed_start, now);
    let too_soon = open_by_staff(&env, now + Duration::hours(2), now);
    let env = Arc::new(env);
    let sim = Sim::start(sim()).await.expect("sim");
    send(&env, &sim, now + Duration::minutes(1)).await;
    assert!(offers_sent(&sim).is_empty());
    assert_eq!(env.count("SELECT count(*) FROM offers"), 0);
    let reason = |id: i64| -> (String, String) {
        env.sql()
            .query_row(
                "SELECT state, reason FROM openings WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("opening")
    };
    let (state, why) = reason(on_closed_day);
    assert_eq!(state, "withdrawn");
    assert!(why.contains("cancelled 5 appointments that day"), "{why}");
    let (state, why) = reason(too_soon);
    assert_eq!(state, "expired");
    assert!(why.contains("lead time"), "{why}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_gets_no_more_offers_in_a_week_than_the_cap() {
    let env = waitlist_env();
    let now = reminderd::time::Clock::System.now();
    waiting(&env, now, 1, 10);
    for h in 0..5 {
        open_by_staff(&env, now + Duration::days(2) + Duration::hours(h), now);
    }
    let env = Arc::new(env);
    let sim = Sim::start(sim()).await.expect("sim");
    send(&env, &sim, now + Duration::minutes(1)).await;
    send(&env, &sim, now + Duration::hours(1)).await;
    assert_eq!(offers_sent(&sim).len(), 3, "max_offers_per_week = 3");
    assert_eq!(env.count("SELECT count(*) FROM offers"), 3);
    // The two slots nobody was offered say why.
    assert_eq!(
        env.count(
            "SELECT count(*) FROM openings WHERE state = 'open' AND reason = 'No offer: 1 patient who wants it has had 3 offers this week, the most allowed.'"
        ),
        2
    );
    // A week later the patient may be offered again.
    send(&env, &sim, now + Duration::days(7) + Duration::hours(1)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM offers"),
        3,
        "the slots have passed by then"
    );
}

#[test]
fn a_waitlist_file_with_a_bad_row_imports_nothing_and_names_row_and_column() {
    let env = waitlist_env();
    let now = reminderd::time::Clock::System.now();
    let later = day(now, 12);
    env.import(
        "day.csv",
        &csv(&[
            &format!("B1,W1,Wait 1,98200 30001,en,{later},09:00,15,Dr. Mehta,mumbai,booked"),
            &format!("B2,W2,Wait 2,98200 30002,en,{later},09:30,15,Dr. Mehta,mumbai,booked"),
        ]),
        &[],
    )
    .expect(0);
    let d = day(now, 0);
    let bad = format!(
        "{HEADER}\nE1,W1,mumbai,,{d},,Mon-Fri,09:00-12:00,,\nE2,W2,mumbai,,{d},,Funday,,,\nE3,W7,mumbai,,{d},,,,,\n"
    );
    let path = env.file("bad.csv", &bad);
    let r: Run = env
        .run(&["waitlist", "import", path.to_str().expect("path")])
        .expect(65);
    assert!(r.stdout.contains("nothing was imported"), "{}", r.stdout);
    assert!(
        r.stdout.contains("row 3, column \"days\" (\"Funday\")") && r.stdout.contains("Mon-Fri"),
        "{}",
        r.stdout
    );
    assert_eq!(env.count("SELECT count(*) FROM waitlist_entries"), 0);
    // Fixed but for a patient the schedule does not have: still nothing, that row named.
    let path = env.file("bad.csv", bad.replace("Funday", "1-5"));
    let r = env
        .run(&["waitlist", "import", path.to_str().expect("path")])
        .expect(65);
    assert!(
        r.stdout.contains("row 4, column \"patient_id\""),
        "{}",
        r.stdout
    );
    assert_eq!(env.count("SELECT count(*) FROM waitlist_entries"), 0);
    // All fixed: imported; again with a change: updated by id, nothing added.
    let good = bad.replace("Funday", "1-5").replace(",W7,", ",W2,");
    let path = env.file("good.csv", &good);
    let r = env
        .run(&["waitlist", "import", path.to_str().expect("path"), "--json"])
        .expect(0)
        .json();
    assert_eq!(
        (r["new"].as_u64(), r["updated"].as_u64()),
        (Some(3), Some(0))
    );
    let path = env.file("good.csv", good.replace("09:00-12:00", "14:00-17:00"));
    let r = env
        .run(&["waitlist", "import", path.to_str().expect("path"), "--json"])
        .expect(0)
        .json();
    assert_eq!(
        (r["new"].as_u64(), r["updated"].as_u64()),
        (Some(0), Some(3))
    );
    let list = env.run(&["waitlist", "list", "--json"]).expect(0).json();
    let e1 = list
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["external_id"] == "E1")
        .expect("E1");
    assert_eq!(
        (e1["days"].as_str(), e1["time_from"].as_str()),
        (Some("12345"), Some("14:00"))
    );
}
