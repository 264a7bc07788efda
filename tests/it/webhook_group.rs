//! Group commit of the webhook: many signed deliveries at once (replays of the same body among
//! them, at the same moment, and a body that is not JSON) are each answered 200 and applied
//! exactly once; a delivery whose database work fails is answered 500 and loses nothing of the
//! others committed with it.

use std::sync::Arc;
use std::time::Duration;

use reminderd::sim::signature;
use serde_json::{Value, json};

use crate::common::{Env, Wait};
use crate::webhook::{envelope, reminded, row};

const SECRET: &str = "app-secret-for-tests";

/// `reminderd serve` on a free loopback port (killed when dropped).
struct Served {
    env: Env,
    child: std::process::Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    async fn start(env: Env) -> Self {
        let listen = format!("127.0.0.1:{}", crate::common::free_port());
        let child = env.spawn(
            &["serve", "--listen", &listen],
            &[
                ("WHATSAPP_APP_SECRET", SECRET),
                ("WHATSAPP_VERIFY_TOKEN", "verify-token-for-tests"),
            ],
        );
        let url = format!("http://{listen}");
        let http = reqwest::Client::new();
        Wait::new("the server to start", Duration::from_secs(20))
            .every(Duration::from_millis(20))
            .until_async(async || {
                http.get(format!("{url}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        Self { env, child, url }
    }

    fn url(&self) -> &str {
        &self.url
    }

    fn count(&self, sql: &str) -> i64 {
        self.env.count(sql)
    }
}

/// Appointments in the test: each gets a delivery status and a reply.
const PATIENTS: usize = 80;

fn text_from(from: &str, id: &str, body: &str) -> Value {
    envelope(json!({
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1764500000", "type": "text", "text": {"body": body}}]
    }))
}

fn delivered(wamid: &str) -> Value {
    envelope(json!({"messaging_product": "whatsapp", "statuses": [
        {"id": wamid, "status": "delivered", "timestamp": "1764500000", "recipient_id": "919820012345"}
    ]}))
}

/// `PATIENTS` appointments two days ahead, each reminded (outbox wamid `wamid.test<id>`), with
/// numbers 98300 00000 + n.
fn clinic() -> Env {
    let env = Env::new();
    let rows: Vec<String> = (0..PATIENTS)
        .map(|n| {
            row(
                &format!("G{n}"),
                &format!("Q{n}"),
                &format!("98300 {n:05}"),
                "en",
                2,
                "10:00",
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    reminded(&env, &rows);
    env
}

/// Posts every body at once over at most `connections` connections; the answers' codes in
/// the order of `bodies`.
async fn post_all(url: &str, bodies: Vec<String>, connections: usize) -> Vec<u16> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let gate = Arc::new(tokio::sync::Semaphore::new(connections));
    let mut sent = Vec::new();
    for body in bodies {
        let (http, gate, url) = (http.clone(), Arc::clone(&gate), url.to_string());
        sent.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await.expect("gate");
            let sig = signature(SECRET, body.as_bytes());
            http.post(format!("{url}/webhook"))
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", sig)
                .body(body)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for s in sent {
        codes.push(s.await.expect("task"));
    }
    codes
}

/// Each patient's reply (`yes`) and delivery status, then 39 of them again (Meta's retries,
/// interleaved so that a body and its copy are in flight together), then one body that is
/// signed but not JSON: 200 deliveries.
fn deliveries(env: &Env) -> (Vec<String>, String) {
    let ids: Vec<i64> = {
        let conn = env.sql();
        let mut q = conn
            .prepare("SELECT id FROM appointments ORDER BY id")
            .expect("ids");
        q.query_map((), |r| r.get(0))
            .expect("ids")
            .collect::<Result<_, _>>()
            .expect("ids")
    };
    assert_eq!(ids.len(), PATIENTS);
    let mut bodies = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let reply = text_from(&format!("9198300{n:05}"), &format!("wamid.g{n}"), "yes").to_string();
        let status = delivered(&format!("wamid.test{id}")).to_string();
        if n < 39 {
            bodies.extend([reply.clone(), status, reply]);
        } else {
            bodies.extend([reply, status]);
        }
    }
    let malformed = "{\"object\": \"whatsapp_business_account\", \"entry\": [".to_string();
    bodies.push(malformed.clone());
    (bodies, malformed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_with_replays_are_each_answered_and_applied_once() {
    let s = Served::start(clinic()).await;
    let (bodies, _) = deliveries(&s.env);
    assert_eq!(bodies.len(), 200);
    let codes = post_all(s.url(), bodies, 32).await;
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");

    // Every distinct body stored once, finished; the 39 copies counted as replays.
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        2 * PATIENTS as i64 + 1
    );
    assert_eq!(s.count("SELECT sum(replays) FROM inbound_events"), 39);
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE processed_at IS NULL"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE outcome LIKE 'malformed%'"),
        1,
        "the body that is not JSON is kept for inspection"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE outcome = 'applied'"),
        2 * PATIENTS as i64
    );
    // Every status moved its reminder once; every reply confirmed once, acknowledged once.
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reminder' AND state = 'delivered'"),
        PATIENTS as i64
    );
    assert_eq!(s.count("SELECT count(*) FROM replies"), PATIENTS as i64);
    assert_eq!(
        s.count("SELECT count(*) FROM appointments WHERE response = 'confirmed'"),
        PATIENTS as i64
    );
    assert_eq!(
        s.count("SELECT count(*) FROM audit_log WHERE actor = 'patient'"),
        PATIENTS as i64,
        "each confirmation audited once"
    );
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack'"),
        PATIENTS as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_that_fails_in_the_database_loses_nothing_of_the_others() {
    let env = clinic();
    // A real failure half-way through one delivery: its reply cannot be written (as a full
    // disk or a broken row would refuse it), after its body and status rows were.
    let sql = env.sql();
    sql.execute_batch(sql.pick(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON replies WHEN NEW.message_id = 'wamid.g7'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER refuse_one BEFORE INSERT ON replies FOR EACH ROW
         WHEN (NEW.message_id = 'wamid.g7') EXECUTE FUNCTION refuse_one();",
    ))
    .expect("trigger");
    let s = Served::start(env).await;
    let (bodies, malformed) = deliveries(&s.env);
    let poison = bodies[3 * 7].clone();
    assert!(poison.contains("wamid.g7"));
    let codes = post_all(s.url(), bodies.clone(), 32).await;
    for (body, code) in bodies.iter().zip(&codes) {
        let expected = if *body == poison { 500 } else { 200 };
        assert_eq!(*code, expected, "{body}");
    }
    // Nothing of the failed delivery is kept (Meta will send it again) ...
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events WHERE body LIKE '%wamid.g7\"%'"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM appointments WHERE response = 'confirmed'"),
        PATIENTS as i64 - 1
    );
    // ... and everything of the others is.
    assert_eq!(
        s.count("SELECT count(*) FROM inbound_events"),
        2 * PATIENTS as i64
    );
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM inbound_events WHERE body = '{}'",
            malformed.replace('\'', "''")
        )),
        1
    );
    assert_eq!(s.count("SELECT count(*) FROM replies"), PATIENTS as i64 - 1);
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE kind = 'reminder' AND state = 'delivered'"),
        PATIENTS as i64
    );

    // Once the fault is gone, Meta's retry is applied.
    let sql = s.env.sql();
    sql.execute_batch(sql.pick(
        "DROP TRIGGER refuse_one",
        "DROP TRIGGER refuse_one ON replies",
    ))
    .expect("drop trigger");
    assert_eq!(post_all(s.url(), vec![poison], 1).await, [200]);
    assert_eq!(
        s.count("SELECT count(*) FROM appointments WHERE response = 'confirmed'"),
        PATIENTS as i64
    );
    assert_eq!(s.count("SELECT count(*) FROM replies"), PATIENTS as i64);
}
