//! `reminderd purge`: raw payloads and words past their age are emptied and nothing else, in
//! batches, while the server takes a burst of webhooks and a send goes out beside it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Days;
use reminderd::sim::{Sim, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, Wait, csv, sim_config};
use crate::webhook::{Served, envelope};

/// Patients whose reminders go out during the purge.
const PATIENTS: usize = 20;
/// Webhook bodies past their age: more than one batch of 500.
const OLD_EVENTS: i64 = 1_200;
/// Replies posted during the purge.
const BURST: usize = 60;

fn mumbai_day(days: i64) -> String {
    (reminderd::time::Clock::System.now() + Days::days(days))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d")
        .to_string()
}

fn phone(i: usize) -> String {
    format!("+9198200{i:05}")
}

fn text_from(from: &str, id: &str, body: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": from.trim_start_matches('+')}],
        "messages": [{"from": from.trim_start_matches('+'), "id": id, "timestamp": "1764500000", "type": "text", "text": {"body": body}}]
    }))
}

/// The schedule, and history of every age: webhook bodies 40 and 10 days old, an SIU message 40
/// days old, delivered messages and handled replies 200 and 100 days old.
fn seeded() -> Env {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(
        config
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
            .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
            // Exactly one reminder a patient: a booking confirmation, made at the real time
            // of the import, would still be due at `due` (tomorrow 08:30Z) from 08:30Z today.
            .replace(
                "[booking_confirmation]\nenabled = true",
                "[booking_confirmation]\nenabled = false",
            ),
    );
    assert!(
        std::fs::read_to_string(env.path("reminders.toml"))
            .expect("config")
            .contains("[booking_confirmation]\nenabled = false"),
        "config edit"
    );
    let day = mumbai_day(2);
    let rows: Vec<String> = (0..PATIENTS)
        .map(|i| {
            format!(
                "E{i},T{i},Patient {i},{},en,{day},{:02}:{:02},15,Dr. Mehta,mumbai,booked",
                phone(i),
                9 + i / 4,
                (i % 4) * 15
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("day.csv", &csv(&rows), &[]).expect(0);
    let now = reminderd::time::Clock::System.now().timestamp();
    let (d10, d40, d100, d200) = (
        now - 10 * 86_400,
        now - 40 * 86_400,
        now - 100 * 86_400,
        now - 200 * 86_400,
    );
    env.sql()
        .execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {OLD_EVENTS})
             INSERT INTO inbound_events (received_at, body, processed_at, outcome)
               SELECT {d40}, CAST('old body ' || i AS BLOB), {d40}, 'applied' FROM n;
             INSERT INTO inbound_events (received_at, body, processed_at, outcome) VALUES
               ({d10}, 'recent body', {d10}, 'applied'),
               ({d40}, 'old but never processed', NULL, NULL);
             INSERT INTO feed_messages (feed, message_id, kind, body, received_at, state) VALUES
               ('his', 'M-old', 'SIU^S12', 'MSH|old', {d40}, 'applied'),
               ('his', 'M-new', 'SIU^S12', 'MSH|new', {d10}, 'applied');
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at)
               SELECT id, 'reminder', 'old-200', starts_at, {d200}, {d200}, '[\"two hundred\"]', 'delivered', {d200}, {d200} FROM appointments;
             INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, params, state, created_at, updated_at)
               SELECT id, 'reminder', 'old-100', starts_at, {d100}, {d100}, '[\"one hundred\"]', 'delivered', {d100}, {d100} FROM appointments;
             INSERT INTO replies (message_id, from_phone, patient_id, kind, text, intent, outcome, received_at) VALUES
               ('old-r', '+919820000000', 1, 'text', 'old words', 'unknown', 'ignored', {d200}),
               ('old-waiting', '+919820000000', 1, 'text', 'still waiting', 'unknown', 'needs_staff', {d200}),
               ('newer-r', '+919820000000', 1, 'text', 'newer words', 'unknown', 'ignored', {d100});"
        ))
        .expect("history");
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_empties_exactly_what_is_past_its_age_while_sends_and_webhooks_go_on() {
    let s = Served::start(seeded()).await;
    let sim = Sim::start(SimConfig {
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let envs = [
        ("REMINDERD_API_BASE".to_string(), sim.base_url()),
        ("WHATSAPP_ACCESS_TOKEN".to_string(), "tok".to_string()),
    ];
    let due = format!("{}T08:30:00Z", mumbai_day(1));
    let dry = s
        .env
        .run(&["purge", "--dry-run", "--json"])
        .expect(0)
        .json();
    assert_eq!(dry["counts"]["webhook_bodies"], OLD_EVENTS);

    let (e1, e2) = (Arc::clone(&s.env), Arc::clone(&s.env));
    let purge = tokio::task::spawn_blocking(move || e1.run(&["purge", "--json"]));
    let sending = tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        e2.run_with_env(&["plan", "--now", &due], &envs).expect(0);
        e2.run_with_env(&["send", "--once", "--now", &due, "--json"], &envs)
    });
    let mut codes = Vec::new();
    for i in 0..BURST {
        let body = text_from(
            &phone(i % PATIENTS),
            &format!("wamid.burst{i}"),
            "running late",
        );
        codes.push(s.post_signed(&body).await);
    }
    let purged = purge.await.expect("purge").expect(0).json();
    let sent = sending.await.expect("send").expect(0).json();

    // The webhook answered every post and lost none.
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    Wait::new("the burst to be processed", Duration::from_secs(20))
        .every(Duration::from_millis(50))
        .until(|| {
            s.count("SELECT count(*) FROM replies WHERE message_id LIKE 'wamid.burst%'")
                == BURST as i64
        })
        .await;
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE body LIKE '%running late%' AND purged_at IS NULL"),
        BURST as i64
    );
    // Every reminder went out once.
    assert_eq!(sent["sent"], PATIENTS, "{sent}");
    assert_eq!(sim.messages().len(), PATIENTS);

    // Exactly what was past its age, and nothing else.
    let c = &purged["counts"];
    assert_eq!(c["webhook_bodies"], OLD_EVENTS, "{purged}");
    assert_eq!(c["feed_payloads"], 1);
    assert_eq!(
        c["message_texts"], PATIENTS as i64,
        "the 200-day-old ones only"
    );
    assert_eq!(c["reply_texts"], 1, "not the one still waiting for staff");
    assert!(purged["batches"].as_i64() >= Some(3), "{purged}");
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE body = '' AND purged_at IS NOT NULL"),
        OLD_EVENTS
    );
    for kept in ["recent body", "old but never processed"] {
        assert_eq!(
            s.count(&format!(
                "SELECT count(*) FROM inbound_events WHERE body = '{kept}'"
            )),
            1,
            "{kept}"
        );
    }
    assert_eq!(
        s.count("SELECT count(*) FROM feed_messages WHERE body = 'MSH|new'"),
        1
    );
    assert_eq!(s.count("SELECT count(*) FROM outbox WHERE rule = 'old-200' AND params IS NULL AND state = 'delivered'"), PATIENTS as i64);
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE rule = 'old-100' AND params IS NOT NULL"),
        PATIENTS as i64
    );
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE text IN ('still waiting', 'newer words')"),
        2
    );
    assert_eq!(
        s.count("SELECT count(*) FROM replies WHERE message_id = 'old-r' AND text IS NULL"),
        1
    );
    // Audited once, with the counts; the space is given back from now on.
    let audited = if crate::common::on_postgres() {
        "SELECT CAST(CAST(new_value AS json) #>> '{counts,webhook_bodies}' AS BIGINT) FROM audit_log WHERE action = 'retention_purge'"
    } else {
        "SELECT json_extract(new_value, '$.counts.webhook_bodies') FROM audit_log WHERE action = 'retention_purge'"
    };
    assert_eq!(s.count(audited), OLD_EVENTS);
    if !crate::common::on_postgres() {
        assert_eq!(s.count("PRAGMA auto_vacuum"), 2);
    }
    // A second purge finds nothing.
    let again = s.env.run(&["purge", "--json"]).expect(0).json();
    assert_eq!(again["batches"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_and_start_replies_are_recorded_as_consent_per_channel_with_their_message() {
    let env = Env::new();
    env.import(
        "day.csv",
        &csv(&[&format!(
            "C1,T1,Patient One,{},en,{},10:00,15,Dr. Mehta,mumbai,booked",
            phone(1),
            mumbai_day(3)
        )]),
        &[],
    )
    .expect(0);
    let s = Served::start(env).await;
    for (id, word) in [("wamid.stop", "STOP"), ("wamid.start", "START")] {
        assert_eq!(s.post_signed(&text_from(&phone(1), id, word)).await, 200);
        Wait::new("the reply to be stored", Duration::from_secs(10))
            .every(Duration::from_millis(20))
            .until(|| {
                s.count(&format!(
                    "SELECT count(*) FROM consents WHERE source = 'reply {id}'"
                )) == 1
            })
            .await;
    }
    assert_eq!(
        s.count("SELECT count(*) FROM consents WHERE channel = 'whatsapp' AND given = 0 AND source = 'reply wamid.stop'"),
        1
    );
    assert_eq!(
        s.count("SELECT given FROM consents ORDER BY recorded_at DESC, id DESC LIMIT 1"),
        1,
        "the newest answer stands: START"
    );
}
