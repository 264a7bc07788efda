//! Twilio over real HTTP: `sms::twilio::Client` against the simulator's Twilio API, its signed
//! status callbacks and inbound texts checked with `sms::twilio::verify`, errors classified.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use reminderd::config;
use reminderd::model::OutboxState;
use reminderd::phone::E164;
use reminderd::sim::{Fault, Sim, SimConfig};
use reminderd::sms::twilio::{self, Client};
use reminderd::sms::{Accepted, OptOutType, Outgoing, SmsClass, SmsError};
use secrecy::SecretString;
use serde_json::{Value, json};

const TOKEN: &str = "sim-twilio-token";
const FROM: &str = "+15557654321";
const PATIENT: &str = "+15551234567";

type Params = Vec<(String, String)>;

/// One form post: its path, `X-Twilio-Signature` and parameters in the order sent.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    signature: Option<String>,
    params: Params,
}

/// Twilio's side of the daemon: records every form post to `/twilio/{kind}`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    /// Starts on 127.0.0.1; returns it and its base URL (the "public URL").
    async fn start() -> (Self, String) {
        let me = Self::default();
        let app = Router::new()
            .route(
                "/twilio/{kind}",
                post(
                    |State(r): State<Receiver>,
                     Path(kind): Path<String>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let signature = headers
                            .get("x-twilio-signature")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let params = serde_urlencoded::from_bytes(&body).expect("a form");
                        r.got.lock().expect("lock").push(Post {
                            path: format!("/twilio/{kind}"),
                            signature,
                            params,
                        });
                        "<Response/>"
                    },
                ),
            )
            .with_state(me.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, format!("http://{addr}"))
    }

    fn posts(&self, path: &str) -> Vec<Post> {
        let got = self.got.lock().expect("lock");
        got.iter().filter(|p| p.path == path).cloned().collect()
    }

    /// Waits until `n` posts reached `path`.
    async fn wait(&self, path: &str, n: usize) -> Vec<Post> {
        crate::common::Wait::new(path, Duration::from_secs(5))
            .every(Duration::from_millis(10))
            .until(|| self.posts(path).len() >= n)
            .await;
        self.posts(path)
    }
}

fn param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

async fn sim(inbound: Option<String>) -> Sim {
    Sim::start(SimConfig {
        status_delay: Duration::from_millis(5),
        twilio_inbound_url: inbound,
        ..SimConfig::default()
    })
    .await
    .expect("sim")
}

fn settings(sim: &Sim, public_url: &str) -> config::Twilio {
    config::Twilio {
        api_base: sim.base_url(),
        account_sid: sim.config().twilio_account_sid.clone(),
        from: Some(FROM.into()),
        messaging_service_sid: None,
        public_url: public_url.into(),
        rate_limit_per_sec: 10,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        texts: std::collections::BTreeMap::new(),
    }
}

fn client(sim: &Sim, public_url: &str) -> Client {
    Client::new(&settings(sim, public_url), SecretString::from(TOKEN)).expect("client")
}

fn text(to: &str, text: &str, validity: Option<Duration>) -> Outgoing {
    Outgoing {
        to: E164::from_stored(to.into()),
        text: text.into(),
        dlt: None,
        validity,
        reference: "1".into(),
    }
}

fn api_code(r: &Result<Accepted, SmsError>) -> Option<(u16, i64)> {
    match r {
        Err(SmsError::Api {
            http_status, code, ..
        }) => Some((*http_status, *code)),
        _ => None,
    }
}

#[tokio::test]
async fn a_send_is_accepted_and_recorded_with_its_body_and_validity() {
    let sim = sim(None).await;
    let c = client(&sim, "https://reminders.example.org/");
    let body = "Sunrise Clinic: Aarav, your appointment is Tue 3 Jun at 10:30. Reply 1 to confirm, 2 to cancel, 3 to change the time.";
    let a = c
        .send(&text(PATIENT, body, Some(Duration::from_secs(7200))))
        .await
        .expect("accepted");
    assert!(a.id.starts_with("SM") && a.id.len() == 34, "{}", a.id);
    assert_eq!(a.segments, Some(1));
    let hindi = "नमस्ते ".repeat(12);
    let b = c
        .send(&text(PATIENT, &hindi, None))
        .await
        .expect("accepted");
    assert_eq!(b.segments, Some(2), "84 UTF-16 units: two UCS-2 segments");

    let sent = sim.sms_messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].sid, a.id);
    assert_eq!(sent[0].to, PATIENT);
    assert_eq!(sent[0].from.as_deref(), Some(FROM));
    assert_eq!(sent[0].body, body);
    assert_eq!(sent[0].validity, Some(7200));
    assert_eq!(sent[0].segments, 1);
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some("https://reminders.example.org/twilio/status")
    );
    assert_eq!(sent[1].validity, None, "no validity: the field is left out");
    assert_eq!(sent[1].body, hindi);

    // The demo reads the same list over HTTP.
    let listed: Value = reqwest::get(format!("{}/_sim/sms", sim.base_url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["body"], json!(body));
    assert_eq!(listed[0]["validity"], json!(7200));
    assert_eq!(listed[1]["segments"], json!(2));
}

#[tokio::test]
async fn status_callbacks_are_signed_over_the_exact_url() {
    let (receiver, public) = Receiver::start().await;
    let sim = sim(None).await;
    // A trailing slash in the configured public URL does not change the callback URL.
    let c = client(&sim, &format!("{public}/"));
    let a = c
        .send(&text(PATIENT, "Reply 1 to confirm", None))
        .await
        .expect("accepted");
    let posts = receiver.wait("/twilio/status", 2).await;
    let url = format!("{public}/twilio/status");
    let reports: Vec<_> = posts
        .iter()
        .map(|p| {
            assert!(
                twilio::verify(&url, &p.params, p.signature.as_deref(), TOKEN.as_bytes()),
                "{p:?}"
            );
            twilio::read_status(&p.params).expect("readable")
        })
        .collect();
    assert_eq!(
        reports.iter().map(|r| r.state).collect::<Vec<_>>(),
        [Some(OutboxState::Sent), Some(OutboxState::Delivered)]
    );
    assert!(reports.iter().all(|r| r.id == a.id && r.error.is_none()));

    let p = &posts[1];
    let sig = p.signature.as_deref();
    let mut forged = p.params.clone();
    for (k, v) in &mut forged {
        if k == "MessageStatus" {
            *v = "undelivered".into();
        }
    }
    assert!(
        !twilio::verify(&url, &forged, sig, TOKEN.as_bytes()),
        "a changed param"
    );
    assert!(
        !twilio::verify(&url, &p.params, None, TOKEN.as_bytes()),
        "no header"
    );
    assert!(!twilio::verify(&url, &p.params, sig, b"another token"));
    let internal = url.replace("127.0.0.1", "localhost");
    assert!(
        !twilio::verify(&internal, &p.params, sig, TOKEN.as_bytes()),
        "another URL"
    );
    assert_eq!(
        sim.sms_messages()[0].callbacks,
        ["sent", "delivered"],
        "the simulator knows both were taken"
    );
}

#[tokio::test]
async fn refusals_come_back_as_twilio_errors_with_their_class() {
    let sim = sim(None).await;
    let c = client(&sim, "https://r.example.org");
    sim.sms_fail_number("+15550000001", 21_211, true);
    sim.sms_fail_number("+15550000002", 21_610, true);
    let bad = c.send(&text("+15550000001", "Hi", None)).await;
    assert_eq!(api_code(&bad), Some((400, 21_211)));
    assert_eq!(
        twilio::class(&bad.expect_err("refused")),
        SmsClass::BadNumber
    );
    let stopped = c.send(&text("+15550000002", "Hi", None)).await;
    assert_eq!(api_code(&stopped), Some((400, 21_610)));
    assert_eq!(
        twilio::class(&stopped.expect_err("refused")),
        SmsClass::OptedOut
    );

    // The simulator's own checks: a number that is not E.164, and a wrong auth token.
    let not_e164 = c.send(&text("5551234", "Hi", None)).await;
    assert_eq!(api_code(&not_e164), Some((400, 21_211)));
    let wrong = Client::new(
        &settings(&sim, "https://r.example.org"),
        SecretString::from("not the token"),
    )
    .expect("client");
    let denied = wrong.send(&text(PATIENT, "Hi", None)).await;
    assert_eq!(api_code(&denied), Some((401, 20_003)));
    assert_eq!(
        twilio::class(&denied.expect_err("refused")),
        SmsClass::Operator
    );
    assert!(sim.sms_messages().is_empty(), "nothing refused is recorded");
}

#[tokio::test]
async fn a_failure_at_the_handset_arrives_as_an_undelivered_callback() {
    let (receiver, public) = Receiver::start().await;
    let sim = sim(None).await;
    sim.sms_fail_number(PATIENT, 30_007, false);
    let a = client(&sim, &public)
        .send(&text(PATIENT, "Reply 1 to confirm", None))
        .await
        .expect("accepted first");
    let posts = receiver.wait("/twilio/status", 2).await;
    let last = &posts[1];
    assert_eq!(param(&last.params, "MessageStatus"), Some("undelivered"));
    let url = format!("{public}/twilio/status");
    assert!(twilio::verify(
        &url,
        &last.params,
        last.signature.as_deref(),
        TOKEN.as_bytes()
    ));
    let report = twilio::read_status(&last.params).expect("readable");
    assert_eq!(report.id, a.id);
    assert_eq!(report.state, Some(OutboxState::Failed));
    assert_eq!(report.error_code, Some(30_007));
    assert_eq!(
        report.error.as_deref(),
        Some("the carrier blocked the text as spam")
    );
    assert_eq!(twilio::class_of_code(30_007), Some(SmsClass::Filtered));
}

#[tokio::test]
async fn server_errors_retry_and_a_lost_answer_is_ambiguous() {
    let sim = sim(None).await;
    let c = client(&sim, "https://r.example.org");
    sim.push_sms_fault(Fault::Error {
        code: 20_500,
        http_status: 500,
    });
    sim.push_sms_fault(Fault::BareStatus(502));
    sim.push_sms_fault(Fault::AcceptThenDrop);
    let e500 = c.send(&text(PATIENT, "Hi", None)).await;
    assert_eq!(api_code(&e500), Some((500, 20_500)));
    assert_eq!(twilio::class(&e500.expect_err("5xx")), SmsClass::Retry);
    let bare = c.send(&text(PATIENT, "Hi", None)).await.expect_err("502");
    assert!(
        matches!(bare, SmsError::Http { status: 502, .. }),
        "{bare:?}"
    );
    assert_eq!(twilio::class(&bare), SmsClass::Retry);
    let lost = c
        .send(&text(PATIENT, "Hi", None))
        .await
        .expect_err("dropped");
    assert!(matches!(lost, SmsError::Ambiguous(_)), "{lost:?}");
    assert_eq!(sim.sms_messages().len(), 1, "the dropped one was taken");

    // Nothing listening: never sent, and retried.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut cfg = settings(&sim, "https://r.example.org");
    cfg.api_base = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let nowhere = Client::new(&cfg, SecretString::from(TOKEN)).expect("client");
    let e = nowhere
        .send(&text(PATIENT, "Hi", None))
        .await
        .expect_err("refused");
    assert!(matches!(e, SmsError::NotSent(_)), "{e:?}");
    assert_eq!(twilio::class(&e), SmsClass::Retry);
}

#[tokio::test]
async fn inbound_texts_are_posted_signed_and_stop_unsubscribes() {
    let (receiver, public) = Receiver::start().await;
    let inbound_url = format!("{public}/twilio/inbound");
    let sim = sim(Some(inbound_url.clone())).await;
    let c = client(&sim, &public);
    c.send(&text(PATIENT, "Reply 1 to confirm", None))
        .await
        .expect("accepted");

    let sid = sim.sms_reply(PATIENT, "1").await.expect("posted");
    let posts = receiver.wait("/twilio/inbound", 1).await;
    let p = &posts[0];
    assert!(twilio::verify(
        &inbound_url,
        &p.params,
        p.signature.as_deref(),
        TOKEN.as_bytes()
    ));
    let inbound = twilio::read_inbound(&p.params).expect("readable");
    assert_eq!(
        (
            inbound.id.as_str(),
            inbound.from.as_str(),
            inbound.body.as_str()
        ),
        (sid.as_str(), PATIENT, "1")
    );
    assert_eq!(inbound.opt_out, None);
    assert_eq!(param(&p.params, "To"), Some(FROM), "they answer our number");
    assert_eq!(param(&p.params, "NumSegments"), Some("1"));

    // Over HTTP, as the demo drives it: STOP carries OptOutType, and later sends get 21610.
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/sms/reply", sim.base_url()))
        .json(&json!({"from": PATIENT, "body": "stop"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let posts = receiver.wait("/twilio/inbound", 2).await;
    let stop = &posts[1];
    assert!(twilio::verify(
        &inbound_url,
        &stop.params,
        stop.signature.as_deref(),
        TOKEN.as_bytes()
    ));
    let stop = twilio::read_inbound(&stop.params).expect("readable");
    assert_eq!(stop.opt_out, Some(OptOutType::Stop));
    let after = c.send(&text(PATIENT, "Reply 1 to confirm", None)).await;
    assert_eq!(api_code(&after), Some((400, 21_610)));
    assert_eq!(
        twilio::class(&after.expect_err("refused")),
        SmsClass::OptedOut
    );
}

#[tokio::test]
async fn the_simulator_checks_the_request_shape() {
    let sim = sim(None).await;
    let sid = sim.config().twilio_account_sid.clone();
    let url = format!("{}/2010-04-01/Accounts/{sid}/Messages.json", sim.base_url());
    let http = reqwest::Client::new();
    let post = async |form: &[(&str, &str)], token: Option<&str>| -> (u16, Value) {
        let mut req = http.post(&url).form(form);
        if let Some(t) = token {
            req = req.basic_auth(&sid, Some(t));
        }
        let resp = req.send().await.expect("post");
        (resp.status().as_u16(), resp.json().await.expect("json"))
    };
    let code = |v: &Value| v["code"].as_i64();
    let (status, v) = post(&[("To", PATIENT), ("From", FROM), ("Body", "x")], None).await;
    assert_eq!((status, code(&v)), (401, Some(20_003)));
    let (status, v) = post(&[("From", FROM), ("Body", "x")], Some(TOKEN)).await;
    assert_eq!((status, code(&v)), (400, Some(21_604)));
    let (_, v) = post(&[("To", PATIENT), ("Body", "x")], Some(TOKEN)).await;
    assert_eq!(code(&v), Some(21_603));
    let (_, v) = post(&[("To", PATIENT), ("From", FROM)], Some(TOKEN)).await;
    assert_eq!(code(&v), Some(21_602));
    let form = [
        ("To", PATIENT),
        ("From", FROM),
        ("Body", "x"),
        ("ValidityPeriod", "0"),
    ];
    let (_, v) = post(&form, Some(TOKEN)).await;
    assert_eq!(code(&v), Some(21_624));
    let form = [
        ("To", PATIENT),
        ("From", FROM),
        ("Body", "x"),
        ("ValidityPeriod", "36001"),
    ];
    let (_, v) = post(&form, Some(TOKEN)).await;
    assert_eq!(code(&v), Some(21_624));
    let service = "MG0123456789abcdef0123456789abcdef";
    let form = [
        ("To", PATIENT),
        ("MessagingServiceSid", service),
        ("Body", "x"),
    ];
    let (status, v) = post(&form, Some(TOKEN)).await;
    assert_eq!(status, 201);
    assert_eq!(
        v["status"],
        json!("accepted"),
        "a Messaging Service accepts, then queues"
    );
    assert_eq!(v["num_segments"], json!("1"));
    assert_eq!(v["error_code"], Value::Null);
    assert!(sim.sms_messages()[0].messaging_service_sid.as_deref() == Some(service));
}
