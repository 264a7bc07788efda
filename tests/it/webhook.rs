//! The webhook: `reminderd serve` as a child process, signed bodies over real HTTP, and what
//! is stored; the full loop with the simulator (send → tap → confirmed → acknowledged).

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Days;
use reminderd::sim::{Reply, Sim, SimConfig, signature};
use serde_json::{Value, json};

use crate::common::{Env, Wait, csv, sim_config};

pub(crate) const SECRET: &str = "app-secret-for-tests";
const VERIFY: &str = "verify-token-for-tests";

/// A test folder with `reminderd serve` running on a free loopback port.
pub(crate) struct Served {
    pub(crate) env: Arc<Env>,
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    pub(crate) async fn start(env: Env) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = env.spawn(
            &["serve", "--listen", &listen],
            &[
                ("WHATSAPP_APP_SECRET", SECRET),
                ("WHATSAPP_VERIFY_TOKEN", VERIFY),
            ],
        );
        let url = format!("http://{listen}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Wait::new("the server to start", Duration::from_secs(20))
            .every(Duration::from_millis(20))
            .until_async(async || {
                http.get(format!("{url}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        Self {
            env: Arc::new(env),
            child,
            url,
            http,
        }
    }

    async fn post(&self, body: &str, sig: Option<String>) -> u16 {
        let mut req = self
            .http
            .post(format!("{}/webhook", self.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = sig {
            req = req.header("X-Hub-Signature-256", s);
        }
        req.send().await.expect("post").status().as_u16()
    }

    /// The server's base URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn post_signed(&self, body: &Value) -> u16 {
        let text = body.to_string();
        self.post(&text, Some(signature(SECRET, text.as_bytes())))
            .await
    }

    pub(crate) fn count(&self, sql: &str) -> i64 {
        self.env.count(sql)
    }

    pub(crate) fn one(&self, sql: &str) -> String {
        self.env
            .sql()
            .query_row(sql, (), |r| r.get::<_, String>(0))
            .expect(sql)
    }
}

/// A local date `days` from today at the Mumbai clinic, as the CSV writes it.
fn mumbai_day(days: i64) -> String {
    (reminderd::time::Clock::System.now() + Days::days(days))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d")
        .to_string()
}

#[allow(clippy::needless_pass_by_value)] // called with json!(..) temporaries
pub(crate) fn envelope(value: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]})
}

pub(crate) fn text_from(from: &str, id: &str, body: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1764500000", "type": "text", "text": {"body": body}}]
    }))
}

fn status(wamid: &str, status: &str, callback: Option<&str>, errors: Option<Value>) -> Value {
    let mut s = json!({"id": wamid, "status": status, "timestamp": "1764500000", "recipient_id": "919820012345"});
    if let Some(c) = callback {
        s["biz_opaque_callback_data"] = json!(c);
    }
    if let Some(e) = errors {
        s["errors"] = e;
    }
    envelope(json!({"messaging_product": "whatsapp", "statuses": [s]}))
}

/// Imports appointments for the day after tomorrow and marks them reminded (a sent reminder
/// row), as a send would have.
pub(crate) fn reminded(env: &Env, rows: &[&str]) {
    env.import("day.csv", &csv(rows), &[]).expect(0);
    let conn = env.sql();
    conn.execute_batch(
        "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, wamid, attempts, sent_at, created_at, updated_at)
         SELECT id, 'reminder', 'day-before', starts_at, starts_at - 86400, starts_at - 14400, 'reminder', 'sent',
                'wamid.test' || id, 1, starts_at - 86400, 0, 0 FROM appointments;",
    )
    .expect("mark reminded");
}

pub(crate) fn row(
    id: &str,
    patient: &str,
    phone: &str,
    lang: &str,
    days: i64,
    time: &str,
) -> String {
    format!(
        "{id},{patient},Patient {patient},{phone},{lang},{},{time},15,Dr. Mehta,mumbai,booked",
        mumbai_day(days)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_and_signature_checks() {
    let s = Served::start(Env::new()).await;
    let ok = s
        .http
        .get(format!(
            "{}/webhook?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444",
            s.url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    let bad = s
        .http
        .get(format!(
            "{}/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
            s.url
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 403);

    let body = text_from("919820012345", "wamid.in1", "yes").to_string();
    assert_eq!(s.post(&body, None).await, 401, "no signature");
    assert_eq!(
        s.post(&body, Some(signature("wrong", body.as_bytes())))
            .await,
        401,
        "wrong secret"
    );
    assert_eq!(
        s.post(&body, Some(signature(SECRET, b"{\"other\":1}")))
            .await,
        401,
        "signature over another body"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        0,
        "nothing stored from a refused POST"
    );

    // Signed, so a retry of the same bytes cannot help: stored for inspection, answered 200
    // so that Meta does not retry it for days.
    assert_eq!(
        s.post("{not json", Some(signature(SECRET, b"{not json")))
            .await,
        200
    );
    assert_eq!(
        s.one("SELECT outcome FROM inbound_events")
            .split(':')
            .next(),
        Some("malformed")
    );

    let huge = "x".repeat(5 * 1024 * 1024);
    assert_eq!(
        s.post(&huge, Some(signature(SECRET, huge.as_bytes())))
            .await,
        413,
        "over the body limit"
    );
    // A real 3 MB batch is under it.
    let big = json!({"object": "whatsapp_business_account", "entry": [], "padding": "y".repeat(3 * 1024 * 1024)});
    assert_eq!(s.post_signed(&big).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn words_in_four_languages_change_the_appointment_and_queue_an_acknowledgement() {
    let env = Env::new();
    reminded(
        &env,
        &[
            &row("A1", "P1", "98200 11111", "hi", 2, "10:00"),
            &row("A2", "P2", "98200 22222", "mr", 2, "10:30"),
            &row("A3", "P3", "98200 33333", "es", 2, "11:00"),
            &row("A4", "P4", "98200 44444", "en", 2, "11:30"),
        ],
    );
    let s = Served::start(env).await;
    assert_eq!(
        s.post_signed(&text_from("919820011111", "wamid.r1", "हाँ"))
            .await,
        200
    );
    assert_eq!(
        s.post_signed(&text_from("919820022222", "wamid.r2", "रद्द करा"))
            .await,
        200
    );
    assert_eq!(
        s.post_signed(&text_from("919820033333", "wamid.r3", "Cambiar hora"))
            .await,
        200
    );
    assert_eq!(
        s.post_signed(&text_from("919820044444", "wamid.r4", "  STOP "))
            .await,
        200
    );

    let a = |id: &str| s.env.appointment(id);
    assert_eq!(a("A1")["response"], "confirmed");
    assert_eq!(
        (
            a("A2")["response"].as_str(),
            a("A2")["status"].as_str(),
            a("A2")["cancelled_by"].as_str()
        ),
        (Some("declined"), Some("cancelled"), Some("patient"))
    );
    assert_eq!(a("A3")["response"], "reschedule_requested");
    assert_eq!(
        s.count(
            "SELECT count(*) FROM patients WHERE external_id = 'P4' AND opted_out_at IS NOT NULL"
        ),
        1
    );
    // Every applied reply is audited and acknowledged in the patient's language.
    assert_eq!(
        s.count("SELECT count(*) FROM audit_log WHERE actor = 'patient'"),
        5,
        "confirm, cancel (response + status), reschedule, opt-out"
    );
    let ack_hi = s.one("SELECT params FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'A1' AND o.kind = 'reply_ack'");
    assert!(
        ack_hi.contains("धन्यवाद, Patient") && ack_hi.contains("पुष्टि"),
        "{ack_hi}"
    );
    let ack_es = s.one("SELECT params FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'A3' AND o.kind = 'reply_ack'");
    assert!(ack_es.contains("le llamará"), "{ack_es}");
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack' AND state = 'pending'"),
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unclear_replies_go_to_staff_and_duplicates_apply_once() {
    let env = Env::new();
    reminded(
        &env,
        &[
            &row("B1", "Q1", "98200 55555", "en", 2, "10:00"),
            // Q2 has two upcoming reminded appointments: "yes" is ambiguous.
            &row("B2", "Q2", "98200 66666", "en", 2, "10:00"),
            &row("B3", "Q2", "98200 66666", "en", 3, "10:00"),
        ],
    );
    let s = Served::start(env).await;
    let yes = text_from("919820055555", "wamid.d1", "yes");
    for _ in 0..3 {
        assert_eq!(
            s.post_signed(&yes).await,
            200,
            "Meta retries: each delivery answered 200"
        );
    }
    assert_eq!(s.count("SELECT count(*) FROM replies"), 1);
    assert_eq!(s.count("SELECT count(*) FROM audit_log"), 1, "applied once");
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        1,
        "the body is stored once"
    );
    assert_eq!(
        s.count("SELECT replays FROM inbound_events"),
        2,
        "and its redeliveries counted"
    );

    s.post_signed(&text_from("919820066666", "wamid.d2", "yes"))
        .await;
    s.post_signed(&text_from(
        "919820055555",
        "wamid.d3",
        "can I bring my mother?",
    ))
    .await;
    s.post_signed(&text_from("15550001234", "wamid.d4", "yes"))
        .await;
    let image = envelope(
        json!({"messages": [{"from": "919820055555", "id": "wamid.d5", "timestamp": "1", "type": "image", "image": {"id": "m1"}}]}),
    );
    assert_eq!(s.post_signed(&image).await, 200);
    let reaction = envelope(
        json!({"messages": [{"from": "919820055555", "id": "wamid.d6", "timestamp": "1", "type": "reaction", "reaction": {"emoji": "👍"}}]}),
    );
    assert_eq!(s.post_signed(&reaction).await, 200);
    let other_field = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]});
    assert_eq!(s.post_signed(&other_field).await, 200);

    let r = s
        .env
        .run(&["replies", "--needs-staff", "--json"])
        .expect(0)
        .json();
    let reasons: Vec<String> = r
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("several upcoming appointments")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|x| x.contains("does not understand")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|x| x.contains("not a patient's")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|x| x == "the patient sent a photo"),
        "{reasons:?}"
    );
    assert_eq!(
        r.as_array().map(Vec::len),
        Some(4),
        "the reaction is not for staff: {r}"
    );
    assert_eq!(s.env.appointment("B2")["response"], "none");
    assert_eq!(s.env.appointment("B3")["response"], "none");
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_move_forward_only_and_failures_reach_the_staff_list() {
    let env = Env::new();
    // Without the SMS fallback (tests/it/sms_flow.rs has it), a failure means a call.
    env.write_config(crate::common::test_config().replace("fallback = true", "fallback = false"));
    reminded(
        &env,
        &[
            &row("C1", "R1", "98200 77777", "en", 2, "10:00"),
            &row("C2", "R2", "98200 88888", "en", 2, "10:30"),
        ],
    );
    let ids: Vec<(String, i64)> = {
        let c = env.sql();
        let mut st = c
            .prepare("SELECT wamid, id FROM outbox ORDER BY id")
            .expect("prep");
        st.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let s = Served::start(env).await;
    let (w1, _) = &ids[0];
    s.post_signed(&status(w1, "read", None, None)).await;
    s.post_signed(&status(w1, "delivered", None, None)).await;
    assert_eq!(
        s.one(&format!("SELECT state FROM outbox WHERE wamid = '{w1}'")),
        "read",
        "a late delivered does not undo read"
    );

    // An unknown send (no wamid stored) is reconciled through the callback data.
    let (_, id2) = &ids[1];
    s.env
        .sql()
        .execute(
            "UPDATE outbox SET state = 'unknown', wamid = NULL WHERE id = ?1",
            [id2],
        )
        .expect("unknown");
    let failed = json!([{"code": 131_026, "title": "Message undeliverable", "message": "Message undeliverable", "error_data": {"details": "Message Undeliverable."}}]);
    assert_eq!(
        s.post_signed(&status(
            "wamid.late",
            "failed",
            Some(&id2.to_string()),
            Some(failed)
        ))
        .await,
        200
    );
    let (state, err): (String, String) = s
        .env
        .sql()
        .query_row(
            "SELECT state, last_error_code || ' ' || last_error FROM outbox WHERE id = ?1",
            [id2],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert_eq!(state, "failed");
    assert!(err.starts_with("131026 Message undeliverable"), "{err}");

    let day = mumbai_day(2);
    let f = s
        .env
        .run(&["follow-ups", "--date", &day, "--clinic", "mumbai", "--json"])
        .expect(0)
        .json();
    let c2 = f
        .as_array()
        .and_then(|a| a.iter().find(|x| x["appointment_id"] == "C2"))
        .cloned()
        .expect("C2 on the list");
    assert_eq!(
        c2["phone"], "+919820088888",
        "staff get the whole number to call"
    );
    assert!(
        c2["reasons"]
            .to_string()
            .contains("cannot be reached on WhatsApp"),
        "{c2}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_then_a_due_reminder_is_skipped_and_replies_to_past_or_cancelled_change_nothing() {
    let env = Env::new();
    reminded(
        &env,
        &[
            &row("D1", "S1", "98200 99999", "en", 2, "10:00"),
            &row("D2", "S2", "98201 00000", "en", -1, "10:00"),
        ],
    );
    // D1 has a second reminder still pending when the patient sends STOP.
    env.sql()
        .execute_batch(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, created_at, updated_at)
             SELECT id, 'reminder', 'same-day', starts_at, starts_at - 7200, starts_at - 1800, 'reminder', 'pending', 0, 0
             FROM appointments WHERE external_id = 'D1';",
        )
        .expect("pending reminder");
    let s = Served::start(env).await;
    s.post_signed(&text_from("919820099999", "wamid.s1", "STOP"))
        .await;
    assert_eq!(
        s.one("SELECT state || ': ' || reason FROM outbox WHERE rule = 'same-day'"),
        "skipped: the patient opted out"
    );
    s.post_signed(&text_from("919820099999", "wamid.s2", "START"))
        .await;
    assert_eq!(
        s.count("SELECT count(*) FROM patients WHERE external_id = 'S1' AND opted_out_at IS NULL"),
        1
    );

    // D2 is in the past: a tap on its reminder is recorded and changes nothing.
    let d2_outbox = s.count("SELECT o.id FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'D2'");
    let tap = envelope(
        json!({"messages": [{"from": "919820100000", "id": "wamid.s3", "timestamp": "1", "type": "button",
        "button": {"payload": format!("confirm:{d2_outbox}"), "text": "Confirm"}}]}),
    );
    s.post_signed(&tap).await;
    assert_eq!(s.env.appointment("D2")["response"], "none");
    assert_eq!(
        s.one("SELECT outcome || ': ' || reason FROM replies WHERE message_id = 'wamid.s3'"),
        "ignored: the appointment has already passed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_loop_send_tap_confirm_acknowledge() {
    // Serve first, then point the simulator's webhooks at it.
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    env.write_config(
        config
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
            .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\""),
    );
    env.import(
        "day.csv",
        &csv(&[&row("E1", "T1", "98200 12345", "en", 2, "14:00")]),
        &[],
    )
    .expect(0);
    let s = Served::start(env).await;
    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("{}/webhook", s.url)),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let envs = [
        ("REMINDERD_API_BASE", sim.base_url()),
        ("WHATSAPP_ACCESS_TOKEN", "tok".to_string()),
    ];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The day-before reminder is due tomorrow at 14:00 IST.
    let due = format!("{}T08:30:00Z", mumbai_day(1));
    let env = Arc::clone(&s.env);
    let (e2, envs2, due2) = (
        Arc::clone(&env),
        envs.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<Vec<_>>(),
        due.clone(),
    );
    let sent = tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = envs2
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        e2.run_with_env(&["plan", "--now", &due2], &envs).expect(0);
        e2.run_with_env(&["send", "--once", "--now", &due2, "--json"], &envs)
            .expect(0)
            .json()
    })
    .await
    .expect("send");
    assert!(sent["sent"].as_u64() >= Some(1), "{sent}");
    let reminder = sim
        .messages()
        .into_iter()
        .find(|m| {
            m.body["type"] == "template" && m.body["template"]["name"] == "appointment_reminder"
        })
        .expect("reminder sent");
    let outbox_id = reminder.body["biz_opaque_callback_data"]
        .as_str()
        .expect("callback")
        .to_string();

    // The simulator reports sent, delivered, read through the webhook.
    Wait::new("the statuses to arrive", Duration::from_secs(10))
        .every(Duration::from_millis(20))
        .until(|| s.one(&format!("SELECT state FROM outbox WHERE id = {outbox_id}")) == "read")
        .await;

    // The patient taps Confirm.
    sim.reply(Reply::Button {
        from: "+919820012345".into(),
        payload: format!("confirm:{outbox_id}"),
        text: "Confirm".into(),
        context_id: Some(reminder.wamid.clone()),
    })
    .await
    .expect("tap");
    assert_eq!(s.env.appointment("E1")["response"], "confirmed");

    // The acknowledgement goes out as a free-form text in the next send.
    let e3 = Arc::clone(&env);
    let envs3: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = envs3
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        e3.run_with_env(&["send", "--once"], &envs).expect(0)
    })
    .await
    .expect("send ack");
    let ack = sim
        .messages()
        .into_iter()
        .find(|m| m.body["type"] == "text")
        .expect("acknowledgement sent");
    assert_eq!(ack.body["to"], "+919820012345");
    let text = ack.body["text"]["body"].as_str().unwrap_or("");
    assert!(
        text.starts_with("Thank you, Patient. Your appointment on")
            && text.ends_with("is confirmed."),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interactive_button_reply_names_its_message_like_a_template_tap() {
    let env = Env::new();
    reminded(&env, &[&row("F1", "V1", "98200 13579", "es", 2, "10:00")]);
    let outbox_id = env.count("SELECT o.id FROM outbox o JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = 'F1'");
    let s = Served::start(env).await;
    let body = envelope(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"profile": {"name": "V"}, "wa_id": "919820013579"}],
        "messages": [{"from": "919820013579", "id": "wamid.i1", "timestamp": "1764500000", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": format!("reschedule:{outbox_id}"), "title": "Cambiar hora"}}}]
    }));
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(s.env.appointment("F1")["response"], "reschedule_requested");
    assert_eq!(
        s.one("SELECT text FROM replies WHERE message_id = 'wamid.i1'"),
        format!("[Cambiar hora] reschedule:{outbox_id}")
    );
}

/// Reads from `stream` until the server closes it (or answers), giving up after `limit`.
/// Returns what was read and how long the server took.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: Duration,
) -> (String, Duration) {
    use tokio::io::AsyncReadExt;
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(elapsed) => panic!(
                "the server kept a slow client's connection open for {limit:?} ({elapsed}); read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_loris_clients_are_cut_off_and_others_still_served() {
    use tokio::io::AsyncWriteExt;
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    assert!(
        config.contains("header_timeout = \"10s\"") && config.contains("request_timeout = \"60s\"")
    );
    env.file(
        "reminders.toml",
        config
            .replace("header_timeout = \"10s\"", "header_timeout = \"1s\"")
            .replace("request_timeout = \"60s\"", "request_timeout = \"2s\""),
    );
    let s = Served::start(env).await;
    let addr = s.url.trim_start_matches("http://").to_string();

    // 1. Headers trickled a byte at a time: cut off at the header deadline, with nothing kept.
    let mut headers = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    headers
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let trickle = {
        let (mut read, mut write) = headers.into_split();
        let writer = tokio::spawn(async move {
            for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .iter()
                .copied()
            {
                if write.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(6), async {
            use tokio::io::AsyncReadExt;
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        writer.abort();
        assert!(
            closed.is_ok(),
            "a client trickling its headers was never cut off"
        );
        started.elapsed()
    };
    assert!(
        trickle < Duration::from_secs(4),
        "header deadline is 1s, the connection lasted {trickle:?}"
    );

    // 2. A connection that sends nothing at all is closed too.
    let mut idle = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (_, idle_for) = read_until_closed(&mut idle, Duration::from_secs(6)).await;
    assert!(idle_for < Duration::from_secs(4), "idle for {idle_for:?}");

    // 3. Headers on time, then a body trickled: answered 408 at the request deadline and
    //    nothing stored; meanwhile other clients are answered.
    let body = text_from("919820012345", "wamid.slow", "yes").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(
        format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
            signature(SECRET, body.as_bytes()),
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("write headers");
    slow.write_all(&body.as_bytes()[..10]).await.expect("write");
    let healthy = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("healthz while a slow client waits");
    assert_eq!(healthy.status(), 200);
    let (answer, took) = read_until_closed(&mut slow, Duration::from_secs(8)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickled body gets 408, got {answer:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "request deadline is 2s, took {took:?}"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        0,
        "nothing stored from a body that never arrived"
    );

    // 4. A normal webhook still goes through.
    assert_eq!(
        s.post_signed(&text_from("919820012345", "wamid.fast", "yes"))
            .await,
        200
    );
}

/// One mistyped field in a signed batch costs only its own item: the STOP beside it is
/// applied, the unreadable message goes to staff with the reason, a good status moves its
/// message forward and an unreadable status is noted on the stored event.
#[tokio::test(flavor = "multi_thread")]
async fn a_mistyped_item_costs_only_itself_and_the_rest_of_the_batch_is_applied() {
    let env = Env::new();
    reminded(
        &env,
        &[
            &row("M1", "P1", "98200 11111", "en", 2, "10:00"),
            &row("M2", "P2", "98200 22222", "en", 2, "10:30"),
        ],
    );
    let s = Served::start(env).await;
    let good_status = s.count("SELECT id FROM outbox ORDER BY id LIMIT 1");
    let body = envelope(json!({
        "messaging_product": "whatsapp",
        "messages": [
            {"from": "919820022222", "id": "wamid.bad1", "timestamp": "1764500000", "type": "text", "text": "can I come later?"},
            {"from": "919820011111", "id": "wamid.stop1", "timestamp": "1764500000", "type": "text", "text": {"body": "STOP"}}
        ],
        "statuses": [
            {"id": format!("wamid.test{good_status}"), "status": "delivered", "timestamp": "1764500000", "errors": "oops"},
            {"id": format!("wamid.test{good_status}"), "status": "read", "timestamp": "1764500001"}
        ]
    }));
    assert_eq!(s.post_signed(&body).await, 200);
    assert_eq!(
        s.count(
            "SELECT count(*) FROM patients WHERE external_id = 'P1' AND opted_out_at IS NOT NULL"
        ),
        1,
        "the STOP beside the mistyped message is applied"
    );
    assert_eq!(
        s.one("SELECT outcome || ' ' || reason || ' ' || kind FROM replies WHERE message_id = 'wamid.bad1'")
            .split(' ')
            .next(),
        Some("needs_staff")
    );
    let reason = s.one("SELECT reason FROM replies WHERE message_id = 'wamid.bad1'");
    assert!(reason.contains("could not be read"), "{reason}");
    let appointment = s.one(
        "SELECT a.external_id FROM replies r JOIN appointments a ON a.id = r.appointment_id WHERE r.message_id = 'wamid.bad1'",
    );
    assert_eq!(appointment, "M2", "filed under the sender's appointment");
    assert_eq!(
        s.one(&format!(
            "SELECT state FROM outbox WHERE id = {good_status}"
        )),
        "read"
    );
    let outcome = s.one("SELECT outcome FROM inbound_events");
    assert!(
        outcome.starts_with("applied; ") && outcome.contains("a status could not be read"),
        "{outcome}"
    );
    // Staff see it where they look for replies.
    let listed = s.env.run(&["replies", "--json"]).expect(0).json();
    assert!(listed.to_string().contains("could not be read"), "{listed}");
}

/// A signed body that is not UTF-8 is kept byte for byte (as the store promises) and answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_body_that_is_not_utf8_is_stored_as_it_came() {
    let s = Served::start(Env::new()).await;
    let body: &[u8] = b"{\"entry\": \"\xff\xfe caf\xe9\"}";
    let answer = s
        .http
        .post(format!("{}/webhook", s.url))
        .header("content-type", "application/json")
        .header("X-Hub-Signature-256", signature(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 200);
    let sql = s.env.sql();
    let (kind, stored, outcome): (String, Vec<u8>, String) = sql
        .query_row(
            sql.pick(
                "SELECT typeof(body), CAST(body AS BLOB), outcome FROM inbound_events",
                "SELECT pg_typeof(body)::text, body, outcome FROM inbound_events",
            ),
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("stored");
    assert_eq!(stored.as_slice(), body, "kept byte for byte");
    assert_eq!(kind, sql.pick("blob", "bytea"));
    assert!(outcome.starts_with("malformed: not UTF-8"), "{outcome}");
}

/// Replaying a captured signed body (or Meta retrying one) adds no row: it is counted.
#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_body_is_counted_not_stored_again() {
    let env = Env::new();
    reminded(&env, &[&row("R1", "P1", "98200 11111", "en", 2, "10:00")]);
    let s = Served::start(env).await;
    let body = text_from("919820011111", "wamid.yes1", "yes");
    for _ in 0..5 {
        assert_eq!(s.post_signed(&body).await, 200);
    }
    assert_eq!(s.count("SELECT count(*) FROM inbound_events"), 1);
    assert_eq!(s.count("SELECT replays FROM inbound_events"), 4);
    assert_eq!(s.count("SELECT count(*) FROM replies"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack'"),
        1,
        "acknowledged once"
    );
    assert_eq!(s.env.appointment("R1")["response"], "confirmed");
}

/// 600 clients that send their headers and one byte of a 1 MB body: the health check still
/// answers at once (spare lane), and each of them is cut off soon after the body grace instead
/// of holding a connection for the whole request deadline.
#[tokio::test(flavor = "multi_thread")]
async fn half_sent_bodies_neither_hide_health_nor_hold_the_port() {
    use tokio::io::AsyncWriteExt;
    let s = Served::start(Env::new()).await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {}\r\nContent-Length: 1048576\r\n\r\n{{",
        signature(SECRET, b"{}")
    );
    let mut clients = Vec::new();
    for _ in 0..600 {
        let mut c = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        c.write_all(head.as_bytes()).await.expect("write");
        clients.push(c);
    }
    let started = tokio::time::Instant::now();
    let health = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("healthz under a flood of half-sent bodies");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/healthz took {:?} with 600 half-sent bodies open",
        started.elapsed()
    );

    // Every one of them is answered (408 after the grace, or 503 from the spare lane) and
    // closed long before the 60 s request deadline.
    let answers = futures_join(clients.into_iter().map(|mut c| {
        tokio::spawn(async move { read_until_closed(&mut c, Duration::from_secs(20)).await })
    }))
    .await;
    let mut codes = std::collections::BTreeMap::new();
    for (answer, took) in answers {
        assert!(took < Duration::from_secs(15), "held for {took:?}");
        let code = answer.get(9..12).unwrap_or("none").to_string();
        *codes.entry(code).or_insert(0) += 1;
    }
    assert_eq!(codes.values().sum::<i32>(), 600);
    assert!(codes.keys().all(|c| c == "408" || c == "503"), "{codes:?}");
    assert_eq!(s.count("SELECT count(*) FROM inbound_events"), 0);

    // A body announced larger than the webhook takes and then never sent holds nothing either.
    let mut big = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    big.write_all(
        format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: {}\r\nContent-Length: 104857600\r\n\r\n",
            signature(SECRET, b"{}")
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let (answer, took) = read_until_closed(&mut big, Duration::from_secs(15)).await;
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 413"),
        "{answer:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // And ordinary traffic goes on.
    assert_eq!(
        s.post_signed(&text_from("919820012345", "wamid.after", "yes"))
            .await,
        200
    );
}

/// Waits for every task, in order.
async fn futures_join<T>(tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("join"));
    }
    out
}
