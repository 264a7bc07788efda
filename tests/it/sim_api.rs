//! The Cloud API simulator over real HTTP: what it accepts, how it refuses, the faults it
//! injects, the catalogue, and the signed webhooks it posts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use reminderd::sim::{Fault, Reply, Sim, SimConfig, SimTemplate, signature};
use serde_json::{Value, json};

const TOKEN: &str = "sim-token";
const SECRET: &str = "app-secret";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn templates() -> Vec<SimTemplate> {
    let mut paused = SimTemplate::approved("old_reminder", "en", "Hi {{1}}", &[]);
    paused.status = "PAUSED".into();
    let mut with_header = SimTemplate::approved(
        "appointment_reminder",
        "en",
        "Your appointment is on {{1}} at {{2}}. Please reply.",
        &["Confirm", "Cancel"],
    );
    with_header.header_params = 1;
    vec![with_header, paused]
}

fn config() -> SimConfig {
    SimConfig {
        templates: templates(),
        ..SimConfig::default()
    }
}

fn url(sim: &Sim) -> String {
    format!(
        "{}/v23.0/{}/messages",
        sim.base_url(),
        sim.config().phone_number_id
    )
}

fn reminder(to: &str, body_params: &[&str]) -> Value {
    let params: Vec<Value> = body_params
        .iter()
        .map(|p| json!({"type": "text", "text": p}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "en"},
            "components": [
                {"type": "header", "parameters": [{"type": "text", "text": "Dr. Lee"}]},
                {"type": "body", "parameters": params},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "confirm:7"}]},
                {"type": "button", "sub_type": "quick_reply", "index": 1,
                 "parameters": [{"type": "payload", "payload": "cancel:7"}]}
            ]
        },
        "biz_opaque_callback_data": "outbox:7"
    })
}

fn ok_reminder(to: &str) -> Value {
    reminder(to, &["Tue 14 Oct", "09:30"])
}

async fn send(sim: &Sim, body: &Value) -> (u16, Value) {
    let resp = client()
        .post(url(sim))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Asserts a Graph error envelope with this HTTP status and code; returns the details.
fn graph_error(got: &(u16, Value), http: u16, code: i64) -> String {
    let (status, body) = got;
    assert_eq!(*status, http, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["type"], "OAuthException", "{body}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("(#{code})"))),
        "{body}"
    );
    assert!(e["fbtrace_id"].as_str().is_some_and(|s| !s.is_empty()));
    e["error_data"]["details"]
        .as_str()
        .expect("details")
        .to_string()
}

/// Polls `check` every 10 ms for up to 5 s and returns what it found.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let mut found = None;
    crate::common::Wait::new(what, Duration::from_secs(5))
        .every(Duration::from_millis(10))
        .until(|| {
            found = check();
            found.is_some()
        })
        .await;
    found.expect("the wait ends only once check found it")
}

/// One webhook POST: the `X-Hub-Signature-256` header and the raw body.
type Received = (Option<String>, Bytes);

/// A webhook receiver on 127.0.0.1 that records raw bodies and signature headers.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let me = Self::default();
        let app = Router::new()
            .route(
                "/webhook",
                post(
                    |State(r): State<Receiver>, headers: HeaderMap, body: Bytes| async move {
                        let sig = headers
                            .get("x-hub-signature-256")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        r.got.lock().expect("lock").push((sig, body));
                        "ok"
                    },
                ),
            )
            .with_state(me.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, format!("http://{addr}/webhook"))
    }

    fn bodies(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Parsed payloads, each checked against its signature.
    fn payloads(&self) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .map(|(sig, body)| {
                assert_eq!(sig.as_deref(), Some(signature(SECRET, &body).as_str()));
                serde_json::from_slice(&body).expect("json")
            })
            .collect()
    }

    /// `(wamid, status)` of every status received, in arrival order.
    fn statuses(&self) -> Vec<Value> {
        self.payloads()
            .iter()
            .filter_map(|p| p["entry"][0]["changes"][0]["value"]["statuses"][0].as_object())
            .map(|s| Value::Object(s.clone()))
            .collect()
    }
}

async fn sim_with_webhooks() -> (Sim, Receiver) {
    let (receiver, hook) = Receiver::start().await;
    let sim = Sim::start(SimConfig {
        webhook_url: Some(hook),
        app_secret: Some(SECRET.into()),
        status_delay: Duration::from_millis(5),
        ..config()
    })
    .await
    .expect("start");
    (sim, receiver)
}

#[tokio::test]
async fn happy_path_returns_a_wamid_and_records_the_body() {
    let sim = Sim::start(config()).await.expect("start");
    let body = ok_reminder("+16505551234");
    let (status, got) = send(&sim, &body).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["messaging_product"], "whatsapp");
    assert_eq!(
        got["contacts"],
        json!([{"input": "+16505551234", "wa_id": "16505551234"}])
    );
    let wamid = got["messages"][0]["id"].as_str().expect("wamid");
    assert!(wamid.starts_with("wamid."));
    assert_eq!(got["messages"][0]["message_status"], "accepted");

    // A text message: a different wamid and no message_status.
    let text = json!({"messaging_product": "whatsapp", "to": "16505550000", "type": "text",
                      "text": {"body": "Thanks, confirmed."}});
    let (status, got2) = send(&sim, &text).await;
    assert_eq!(status, 200, "{got2}");
    assert_ne!(got2["messages"][0]["id"].as_str(), Some(wamid));
    assert!(got2["messages"][0].get("message_status").is_none());

    let log: Value = client()
        .get(format!("{}/_sim/messages", sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["wamid"].as_str(), Some(wamid));
    assert_eq!(log[0]["body"], body);
    assert!(
        chrono::DateTime::parse_from_rfc3339(log[0]["received_at"].as_str().expect("time")).is_ok()
    );
    assert_eq!(sim.messages().len(), 2);
    assert_eq!(sim.messages()[1].body, text);

    let cleared = client()
        .delete(format!("{}/_sim/messages", sim.base_url()))
        .send()
        .await
        .expect("delete");
    assert_eq!(cleared.status().as_u16(), 204);
    assert!(sim.messages().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_code_190() {
    let sim = Sim::start(config()).await.expect("start");
    for auth in [None, Some("Bearer nope"), Some("Basic sim-token")] {
        let mut req = client().post(url(&sim)).json(&ok_reminder("+16505551234"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send().await.expect("send");
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], 190);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert!(body["error"].get("error_subcode").is_none());
    }
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn template_errors_use_the_real_codes() {
    let sim = Sim::start(config()).await.expect("start");
    let to = "+919820012345";

    let mut unknown = ok_reminder(to);
    unknown["template"]["name"] = json!("no_such_template");
    let details = graph_error(&send(&sim, &unknown).await, 404, 132_001);
    assert!(details.contains("no_such_template"), "{details}");
    let mut wrong_language = ok_reminder(to);
    wrong_language["template"]["language"]["code"] = json!("fr");
    graph_error(&send(&sim, &wrong_language).await, 404, 132_001);

    let details = graph_error(
        &send(&sim, &reminder(to, &["only one"])).await,
        400,
        132_000,
    );
    assert_eq!(
        details,
        "body: number of localizable_params (1) does not match the expected number of params (2)"
    );

    for bad in ["line\nbreak", "tab\there", "five     spaces", "cr\r"] {
        graph_error(
            &send(&sim, &reminder(to, &[bad, "09:30"])).await,
            400,
            132_018,
        );
    }
    // Four spaces are allowed.
    assert_eq!(
        send(&sim, &reminder(to, &["four    spaces", "09:30"]))
            .await
            .0,
        200
    );

    let to2 = "+919820012346";
    graph_error(
        &send(&sim, &reminder(to2, &["", "09:30"])).await,
        400,
        132_000,
    );
    let long = "x".repeat(1000);
    graph_error(
        &send(&sim, &reminder(to2, &[&long, "09:30"])).await,
        400,
        132_005,
    );

    let paused = json!({"messaging_product": "whatsapp", "to": to2, "type": "template",
        "template": {"name": "old_reminder", "language": {"code": "en"},
                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "A"}]}]}});
    graph_error(&send(&sim, &paused).await, 400, 132_015);

    let mut bad_index = ok_reminder(to2);
    bad_index["template"]["components"][2]["index"] = json!("5");
    graph_error(&send(&sim, &bad_index).await, 400, 131_009);

    assert_eq!(sim.messages().len(), 1, "only the four-space send");
}

#[tokio::test]
async fn request_shape_errors() {
    let sim = Sim::start(config()).await.expect("start");
    let mut bad_to = ok_reminder("+1 650 555");
    graph_error(&send(&sim, &bad_to).await, 400, 131_009);
    bad_to["to"] = json!("abc");
    graph_error(&send(&sim, &bad_to).await, 400, 131_009);

    let mut product = ok_reminder("+16505551234");
    product["messaging_product"] = json!("sms");
    graph_error(&send(&sim, &product).await, 400, 100);

    let image = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "image",
                       "image": {"link": "https://example.com/a.jpg"}});
    graph_error(&send(&sim, &image).await, 400, 131_051);

    let long_text = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "text",
                           "text": {"body": "x".repeat(4097)}});
    graph_error(&send(&sim, &long_text).await, 400, 100);

    let button = |title: &str| json!({"type": "reply", "reply": {"id": title, "title": title}});
    let four = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Confirm?"},
            "action": {"buttons": [button("a"), button("b"), button("c"), button("d")]}}});
    graph_error(&send(&sim, &four).await, 400, 131_009);
    let long_title = json!({"messaging_product": "whatsapp", "to": "16505551234", "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Confirm?"},
            "action": {"buttons": [button("this title is far too long")]}}});
    let details = graph_error(&send(&sim, &long_title).await, 400, 131_009);
    assert!(details.contains("Max length: 20"), "{details}");

    let wrong_id = client()
        .post(format!("{}/v23.0/999/messages", sim.base_url()))
        .bearer_auth(TOKEN)
        .json(&ok_reminder("+16505551234"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_id.status().as_u16(), 400);
    let body: Value = wrong_id.json().await.expect("json");
    assert_eq!(body["error"]["code"], 100);
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn pair_rate_limit_is_per_recipient() {
    let sim = Sim::start(config()).await.expect("start");
    assert_eq!(send(&sim, &ok_reminder("+919820012345")).await.0, 200);
    // Same number written differently: still the same recipient.
    let details = graph_error(
        &send(&sim, &ok_reminder("919820012345")).await,
        400,
        131_056,
    );
    assert!(details.contains("same phone number"), "{details}");
    assert_eq!(send(&sim, &ok_reminder("+919820054321")).await.0, 200);
    assert_eq!(sim.messages().len(), 2);
}

#[tokio::test]
async fn throughput_limit_is_130429_http_400() {
    let sim = Sim::start(SimConfig {
        max_per_sec: Some(2),
        ..config()
    })
    .await
    .expect("start");
    assert_eq!(send(&sim, &ok_reminder("+16505550001")).await.0, 200);
    assert_eq!(send(&sim, &ok_reminder("+16505550002")).await.0, 200);
    graph_error(
        &send(&sim, &ok_reminder("+16505550003")).await,
        400,
        130_429,
    );
    assert_eq!(sim.messages().len(), 2);
}

#[tokio::test]
async fn queued_faults_apply_in_order() {
    let sim = Sim::start(config()).await.expect("start");
    sim.push_fault(Fault::BareStatus(502));
    sim.push_fault(Fault::Error {
        code: 131_000,
        http_status: 500,
    });
    // Faults can also be queued over HTTP.
    let queued = client()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!([{"kind": "error", "code": 133_004, "http_status": 503}]))
        .send()
        .await
        .expect("post");
    assert_eq!(queued.status().as_u16(), 204);

    let resp = client()
        .post(url(&sim))
        .bearer_auth(TOKEN)
        .json(&ok_reminder("+16505551234"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 502);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/html"))
    );
    let html = resp.text().await.expect("body");
    assert!(html.contains("502 Bad Gateway"), "{html}");
    assert!(serde_json::from_str::<Value>(&html).is_err());

    graph_error(
        &send(&sim, &ok_reminder("+16505551234")).await,
        500,
        131_000,
    );
    graph_error(
        &send(&sim, &ok_reminder("+16505551234")).await,
        503,
        133_004,
    );
    assert!(sim.messages().is_empty());
    assert_eq!(send(&sim, &ok_reminder("+16505551234")).await.0, 200);
}

#[tokio::test]
async fn accept_then_hang_records_the_message_the_client_never_hears_of() {
    let sim = Sim::start(config()).await.expect("start");
    sim.push_fault(Fault::AcceptThenHang(Duration::from_secs(30)));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = impatient
        .post(url(&sim))
        .bearer_auth(TOKEN)
        .json(&ok_reminder("+16505551234"))
        .send()
        .await
        .expect_err("the response never comes");
    assert!(err.is_timeout(), "{err}");
    let log: Vec<Value> = client()
        .get(format!("{}/_sim/messages", sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["body"]["to"], "+16505551234");
    // Shutdown doesn't wait for the 30 s hang.
    tokio::time::timeout(Duration::from_secs(2), sim.shutdown())
        .await
        .expect("prompt shutdown");
}

#[tokio::test]
async fn accept_then_drop_closes_the_connection_without_a_response() {
    let sim = Sim::start(config()).await.expect("start");
    sim.push_fault(Fault::AcceptThenDrop);
    let err = client()
        .post(url(&sim))
        .bearer_auth(TOKEN)
        .json(&ok_reminder("+16505551234"))
        .send()
        .await
        .expect_err("no response");
    assert!(!err.is_timeout(), "{err}");
    assert_eq!(sim.messages().len(), 1);
    // The server still answers on new connections.
    assert_eq!(send(&sim, &ok_reminder("+16505550000")).await.0, 200);
}

#[tokio::test]
async fn template_catalogue_paginates() {
    let sim = Sim::start(config()).await.expect("start");
    let first_url = format!(
        "{}/v23.0/{}/message_templates?fields=name,status&limit=1",
        sim.base_url(),
        sim.config().waba_id
    );
    let get = |u: String| async move {
        client()
            .get(u)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get")
            .json::<Value>()
            .await
            .expect("json")
    };
    let page1 = get(first_url).await;
    assert_eq!(page1["data"].as_array().map(Vec::len), Some(1), "{page1}");
    let t = &page1["data"][0];
    assert_eq!(t["name"], "appointment_reminder");
    assert_eq!(t["status"], "APPROVED");
    assert_eq!(t["parameter_format"], "POSITIONAL");
    let types: Vec<&str> = t["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["HEADER", "BODY", "BUTTONS"]);
    assert_eq!(
        t["components"][2]["buttons"][1],
        json!({"type": "QUICK_REPLY", "text": "Cancel"})
    );
    let next = page1["paging"]["next"].as_str().expect("next").to_string();
    assert!(next.starts_with("http://"), "{next}");
    assert!(page1["paging"]["cursors"]["after"].is_string());

    let page2 = get(next).await;
    assert_eq!(page2["data"].as_array().map(Vec::len), Some(1), "{page2}");
    assert_eq!(page2["data"][0]["name"], "old_reminder");
    assert_eq!(page2["data"][0]["status"], "PAUSED");
    assert!(page2["paging"].get("next").is_none(), "{page2}");

    let unauthorized = client()
        .get(format!(
            "{}/v23.0/{}/message_templates",
            sim.base_url(),
            sim.config().waba_id
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(unauthorized.status().as_u16(), 401);
}

#[tokio::test]
async fn signed_status_webhooks_arrive_in_order_and_echo_the_callback() {
    let (sim, receiver) = sim_with_webhooks().await;
    let (status, got) = send(&sim, &ok_reminder("+16505551234")).await;
    assert_eq!(status, 200);
    let wamid = got["messages"][0]["id"]
        .as_str()
        .expect("wamid")
        .to_string();

    let statuses = eventually("three statuses", || {
        let s = receiver.statuses();
        (s.len() >= 3).then_some(s)
    })
    .await;
    let order: Vec<&str> = statuses
        .iter()
        .filter_map(|s| s["status"].as_str())
        .collect();
    assert_eq!(order, ["sent", "delivered", "read"]);
    for s in &statuses {
        assert_eq!(s["id"].as_str(), Some(wamid.as_str()));
        assert_eq!(s["recipient_id"], "16505551234");
        assert_eq!(s["biz_opaque_callback_data"], "outbox:7");
        assert!(
            s["timestamp"]
                .as_str()
                .is_some_and(|t| t.parse::<i64>().is_ok())
        );
    }
    assert_eq!(statuses[0]["pricing"]["category"], "utility");

    let payload = &receiver.payloads()[0];
    assert_eq!(payload["object"], "whatsapp_business_account");
    assert_eq!(payload["entry"][0]["id"], sim.config().waba_id.as_str());
    let value = &payload["entry"][0]["changes"][0]["value"];
    assert_eq!(payload["entry"][0]["changes"][0]["field"], "messages");
    assert_eq!(
        value["metadata"]["phone_number_id"],
        sim.config().phone_number_id.as_str()
    );
}

#[tokio::test]
async fn fail_later_yields_a_failed_status_with_the_code() {
    let (sim, receiver) = sim_with_webhooks().await;
    sim.fail_later("+919820012345", 131_026);
    let (status, _) = send(&sim, &ok_reminder("919820012345")).await;
    assert_eq!(status, 200, "accepted first");
    let statuses = eventually("a failed status", || {
        let s = receiver.statuses();
        s.iter().any(|s| s["status"] == "failed").then_some(s)
    })
    .await;
    let failed = statuses
        .iter()
        .find(|s| s["status"] == "failed")
        .expect("failed");
    assert_eq!(failed["errors"][0]["code"], 131_026);
    assert!(failed["errors"][0]["title"].is_string());
    assert!(failed["errors"][0]["error_data"]["details"].is_string());
    assert!(!statuses.iter().any(|s| s["status"] == "delivered"));
}

#[tokio::test]
async fn button_reply_arrives_signed_with_payload_and_context() {
    let (sim, receiver) = sim_with_webhooks().await;
    let id = sim
        .reply(Reply::Button {
            from: "+91 98200 12345".into(),
            payload: "confirm:7".into(),
            text: "Confirm".into(),
            context_id: Some("wamid.ORIGINAL".into()),
        })
        .await
        .expect("delivered");
    // reply() returns once the receiver answered 200.
    let payloads = receiver.payloads();
    assert_eq!(payloads.len(), 1);
    let value = &payloads[0]["entry"][0]["changes"][0]["value"];
    assert_eq!(value["contacts"][0]["wa_id"], "919820012345");
    let msg = &value["messages"][0];
    assert_eq!(msg["id"].as_str(), Some(id.as_str()));
    assert_eq!(msg["from"], "919820012345");
    assert_eq!(msg["type"], "button");
    assert_eq!(
        msg["button"],
        json!({"payload": "confirm:7", "text": "Confirm"})
    );
    assert_eq!(
        msg["context"],
        json!({"from": sim.config().display_phone_number, "id": "wamid.ORIGINAL"})
    );
}

#[tokio::test]
async fn non_ascii_replies_are_escaped_and_signed_over_the_raw_bytes() {
    let (sim, receiver) = sim_with_webhooks().await;
    // Over the HTTP control endpoint this time.
    let resp = client()
        .post(format!("{}/_sim/reply", sim.base_url()))
        .json(&json!({"type": "text", "from": "34600111222", "body": "sí, confirmo ✅"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 200);
    let (sig, raw) = receiver.bodies().pop().expect("one webhook");
    assert!(raw.is_ascii(), "non-ASCII is escaped as Meta does");
    let raw_text = String::from_utf8(raw.to_vec()).expect("utf8");
    assert!(raw_text.contains(r"s\u00ed"), "{raw_text}");
    assert_eq!(sig, Some(signature(SECRET, &raw)));
    let payload: Value = serde_json::from_slice(&raw).expect("json");
    assert_eq!(
        payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"],
        "sí, confirmo ✅"
    );
}

#[tokio::test]
async fn reply_without_a_webhook_url_is_an_error() {
    let sim = Sim::start(config()).await.expect("start");
    let err = sim
        .reply(Reply::Other {
            from: "16505551234".into(),
            kind: "image".into(),
        })
        .await
        .expect_err("nowhere to post");
    assert!(err.to_string().contains("webhook_url"), "{err}");
}

#[test]
fn signature_matches_a_known_hmac_sha256_vector() {
    assert_eq!(
        signature("key", b"The quick brown fox jumps over the lazy dog"),
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
}

#[tokio::test]
async fn mark_as_read_succeeds_without_recording_a_message() {
    let sim = Sim::start(config()).await.expect("start");
    let read = json!({"messaging_product": "whatsapp", "status": "read",
                      "message_id": "wamid.HBgMinbound"});
    let (status, body) = send(&sim, &read).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn pausing_a_template_mid_run_announces_it_and_later_sends_fail_132015() {
    let (sim, receiver) = sim_with_webhooks().await;
    assert_eq!(send(&sim, &ok_reminder("+16505550001")).await.0, 200);
    sim.set_template_status("appointment_reminder", "en", "PAUSED")
        .await
        .expect("announced");
    let update = receiver
        .payloads()
        .into_iter()
        .find(|p| p["entry"][0]["changes"][0]["field"] == "message_template_status_update")
        .expect("template status webhook");
    let value = &update["entry"][0]["changes"][0]["value"];
    assert_eq!(value["event"], "PAUSED");
    assert_eq!(value["message_template_name"], "appointment_reminder");
    graph_error(
        &send(&sim, &ok_reminder("+16505550002")).await,
        400,
        132_015,
    );
}
