//! MSG91 over real HTTP against the simulator: a DLT template filled, checked and accepted with
//! the text the patient reads; long names trimmed; an unregistered template and a wrong key
//! refused with clear errors; and the delivery report reaching a receiver and being read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use reminderd::model::OutboxState;
use reminderd::phone::E164;
use reminderd::sim::{Sim, SimConfig, SimDltTemplate, SimMsg91};
use reminderd::sms::msg91::{self, Client};
use reminderd::sms::{DltFilled, Outgoing, SmsClass, SmsError, dlt};
use secrecy::SecretString;

use crate::common::wait_for;

const KEY: &str = "sim-msg91-key";
const SENDER: &str = "SUNRSE";
const TEMPLATE_ID: &str = "1207161234567890123";
const TEXT: &str = "Dear {patient_name}, your appointment at {clinic} is on {date} at {time}. To change it call {clinic_phone}.";
const REGISTERED: &str = "Dear {#var#}, your appointment at {#var#} is on {#var#} at {#var#}. To change it call {#var#}.";

/// What the delivery-report receiver got: content type and body of each POST.
type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn receiver() -> (Got, String) {
    async fn take(State(got): State<Got>, headers: HeaderMap, body: Bytes) {
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        got.lock().expect("lock").push((ct, body.to_vec()));
    }
    let got: Got = Arc::default();
    let app = Router::new()
        .route("/msg91/report", post(take))
        .with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (got, format!("http://{addr}/msg91/report?token=t0ken"))
}

async fn sim(report_url: Option<String>) -> Sim {
    Sim::start(SimConfig {
        msg91: SimMsg91 {
            templates: vec![SimDltTemplate::new(TEMPLATE_ID, SENDER, REGISTERED)],
            ..SimMsg91::default()
        },
        msg91_report_url: report_url,
        ..SimConfig::default()
    })
    .await
    .expect("sim")
}

fn client(sim: &Sim, key: &str) -> Client {
    let cfg = reminderd::config::Msg91 {
        api_base: sim.base_url(),
        sender: SENDER.into(),
        rate_limit_per_sec: 10,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        texts: std::collections::BTreeMap::new(),
    };
    Client::new(&cfg, SecretString::from(key.to_string())).expect("client")
}

fn values(patient: &str) -> impl Fn(&str) -> Option<String> {
    let patient = patient.to_string();
    move |name| {
        Some(match name {
            "patient_name" => patient.clone(),
            "clinic" => "Sunrise Clinic".into(),
            "date" => "Tue 14 Jan".into(),
            "time" => "10:30 AM".into(),
            "clinic_phone" => "+91 22 4000 1234".into(),
            _ => return None,
        })
    }
}

/// The text filled and checked against the registered template, as the dispatcher does.
fn message(to: &str, patient: &str, template_id: &str) -> Outgoing {
    dlt::matches(TEXT, REGISTERED).expect("the text is the registered template");
    let filled = dlt::fill(TEXT, &values(patient), dlt::DEFAULT_CAP).expect("fill");
    Outgoing {
        to: E164::parse(to, "IN".parse().expect("region")).expect("number"),
        text: filled.text,
        dlt: Some(DltFilled {
            template_id: template_id.into(),
            variables: filled.variables,
        }),
        validity: None,
        reference: "41".into(),
    }
}

#[tokio::test]
async fn a_filled_dlt_template_is_accepted_with_the_registered_text() {
    let sim = sim(None).await;
    let msg = message("+91 98200 12345", "Aarav Sharma", TEMPLATE_ID);
    let accepted = client(&sim, KEY).send(&msg).await.expect("accepted");
    let got = sim.msg91_messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_id, accepted.id);
    assert_eq!(got[0].mobiles, "919820012345");
    assert_eq!(got[0].sender, SENDER);
    assert_eq!(
        got[0].text,
        "Dear Aarav Sharma, your appointment at Sunrise Clinic is on Tue 14 Jan at 10:30 AM. To change it call +91 22 4000 1234."
    );
    assert_eq!(got[0].text, msg.text, "the patient reads what we hold");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_long_name_is_trimmed_to_the_cap_and_still_accepted() {
    let sim = sim(None).await;
    let long = "Aaravkrishnan Venkatasubramanian Iyer";
    let msg = message("+91 98200 12345", long, TEMPLATE_ID);
    let name = &msg.dlt.as_ref().expect("dlt").variables[0];
    assert!(name.chars().count() <= 30, "{name}");
    // The last space is too early to cut at (it would keep under half the cap): cut at 30.
    assert_eq!(name, "Aaravkrishnan Venkatasubramani");
    client(&sim, KEY).send(&msg).await.expect("accepted");
    let got = sim.msg91_messages();
    assert!(
        got[0]
            .text
            .starts_with("Dear Aaravkrishnan Venkatasubramani, your"),
        "{}",
        got[0].text
    );
    assert!(got[0].variables.iter().all(|v| v.chars().count() <= 30));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unregistered_template_is_refused_clearly() {
    let sim = sim(None).await;
    let msg = message("+91 98200 12345", "Aarav", "1207169999999999999");
    let err = client(&sim, KEY).send(&msg).await.expect_err("refused");
    let SmsError::Api {
        http_status,
        message: ref why,
        ..
    } = err
    else {
        panic!("not an API error: {err:?}")
    };
    assert_eq!(http_status, 400);
    assert!(why.contains("1207169999999999999"), "{why}");
    assert!(why.contains("template"), "{why}");
    assert_eq!(msg91::class(&err), SmsClass::Operator);
    assert!(sim.msg91_messages().is_empty(), "nothing recorded");
    // A text without a DLT template never leaves.
    let mut bare = message("+91 98200 12345", "Aarav", TEMPLATE_ID);
    bare.dlt = None;
    let err = client(&sim, KEY).send(&bare).await.expect_err("refused");
    assert!(matches!(err, SmsError::Refused(_)), "{err:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_auth_key_is_an_operator_problem() {
    let sim = sim(None).await;
    let msg = message("+91 98200 12345", "Aarav", TEMPLATE_ID);
    let err = client(&sim, "wrong-key")
        .send(&msg)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(401), "{err:?}");
    assert_eq!(msg91::class(&err), SmsClass::Operator);
    assert!(sim.msg91_messages().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_variable_over_the_gateways_cap_is_refused_before_anything_is_recorded() {
    let sim = sim(None).await;
    let mut msg = message("+91 98200 12345", "Aarav", TEMPLATE_ID);
    // A date that skipped `fill` (the check-config guard) reaches the gateway too long.
    if let Some(d) = msg.dlt.as_mut() {
        d.variables[2] = "Wednesday, 24 September 2025 (IST)".into();
    }
    let err = client(&sim, KEY).send(&msg).await.expect_err("refused");
    assert!(err.to_string().contains("VAR3"), "{err}");
    assert!(sim.msg91_messages().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn delivery_reports_reach_the_receiver_and_are_read() {
    let (got, url) = receiver().await;
    let sim = sim(Some(url)).await;
    sim.msg91_fail_number("+91 98200 12346", 17);
    let c = client(&sim, KEY);
    let ok = c
        .send(&message("+91 98200 12345", "Aarav", TEMPLATE_ID))
        .await
        .expect("accepted");
    let blocked = c
        .send(&message("+91 98200 12346", "Diya", TEMPLATE_ID))
        .await
        .expect("accepted");
    wait_for("two delivery reports", Duration::from_secs(5), || {
        got.lock().expect("lock").len() == 2
    })
    .await;
    let mut reports = Vec::new();
    for (ct, body) in got.lock().expect("lock").iter() {
        assert!(ct.starts_with("application/x-www-form-urlencoded"), "{ct}");
        let r = msg91::read_reports(ct, body).expect("readable");
        assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
        reports.extend(r.reports);
    }
    let of = |id: &str| {
        reports
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no report for {id}: {reports:?}"))
            .clone()
    };
    assert_eq!(of(&ok.id).state, Some(OutboxState::Delivered));
    let failed = of(&blocked.id);
    assert_eq!(failed.state, Some(OutboxState::Failed));
    assert_eq!(failed.error_code, Some(17));
    assert!(
        failed
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("blocked"),
        "{failed:?}"
    );
    sim.shutdown().await;
}
