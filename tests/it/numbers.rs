//! Several WhatsApp numbers (issue 21): each clinic sends from the number it names, with that
//! number's id and token; each number keeps its own cap, measured at the simulator; one
//! number's throttling never slows another; a reply is about the clinics of the number it was
//! written to; `check-config` says which clinic sends from which.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reminderd::sim::{AcceptedMessage, Reply, Sim, SimConfig, SimNumber};

use crate::common::{Env, csv, sim_config};
use crate::webhook::Served;

/// 20:30 IST and 10:00 EST on Tue 1 Dec 2026: the day-before reminders of Wed 2 Dec are due
/// at both clinics, outside both clinics' quiet hours.
const NOW: &str = "2026-12-01T15:00:00Z";
/// When the schedule is imported: more than a day before `NOW`, so no booking confirmation
/// is due then.
const IMPORTED: &str = "2026-11-29T00:00:00Z";
/// The second number's id, token and name.
const B_ID: &str = "300000000000003";
const B_TOKEN: &str = "token-of-brand-b";
const B_WABA: &str = "400000000000004";
const B_DISPLAY: &str = "15550000001";
const MAIN_TOKEN: &str = "test-token";

/// The shipped config with `nyc` sending from `[whatsapp.numbers.brand-b]` (its own token)
/// at `b_cap`, the default number at `main_cap`, and no recipient spacing in the way.
fn two_numbers(env: &Env, main_cap: u32, b_cap: u32) {
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    let config = config
        .replace(
            "rate_limit_per_sec = 80",
            &format!("rate_limit_per_sec = {main_cap}"),
        )
        .replacen(
            "[[rules]]",
            &format!(
                "[whatsapp.numbers.brand-b]\nphone_number_id = \"{B_ID}\"\nrate_limit_per_sec = {b_cap}\nown_token = true\n\n[[rules]]",
            ),
            1,
        )
        .replacen(
            "[clinics.nyc]\n",
            "[clinics.nyc]\nwhatsapp_number = \"brand-b\"\n",
            1,
        )
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
        .replace("request_timeout = \"15s\"", "request_timeout = \"5s\"")
        .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
    env.write_config(config);
}

/// `n` Mumbai appointments and `m` New York ones on Wed 2 Dec, each its own patient.
fn schedule(n: usize, m: usize) -> String {
    let mut rows = Vec::new();
    for i in 0..n {
        rows.push(format!(
            "M{i},PM{i},Patient {i},98300 {:05},en,2026-12-02,09:{:02},15,Dr. Mehta,mumbai,booked",
            10_000 + i,
            i % 60
        ));
    }
    for i in 0..m {
        rows.push(format!(
            "N{i},PN{i},Patient {i},(212) 555-{:04},en,2026-12-02,09:{:02},15,Dr. Lee,nyc,booked",
            1000 + i,
            i % 60
        ));
    }
    csv(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The simulator serving the default number and brand-b (`b_window`: the sends it accepts
/// per second on brand-b before answering 130429).
async fn sim(b_window: Option<u32>) -> Sim {
    Sim::start(SimConfig {
        latency: Duration::from_millis(40),
        pair_limit: None,
        numbers: vec![SimNumber {
            waba_id: B_WABA.into(),
            display_phone_number: B_DISPLAY.into(),
            max_per_sec: b_window,
            ..SimNumber::new(B_ID, B_TOKEN)
        }],
        ..sim_config(MAIN_TOKEN)
    })
    .await
    .expect("simulator")
}

/// `send --once` at `NOW` against `sim`, with both numbers' tokens.
async fn send(env: &Arc<Env>, sim: &Sim) -> serde_json::Value {
    let base = sim.base_url();
    let e = Arc::clone(env);
    tokio::task::spawn_blocking(move || {
        e.run_with_env(
            &["send", "--once", "--now", NOW, "--json"],
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", MAIN_TOKEN),
                ("REMINDERD_WHATSAPP_TOKEN_BRAND_B", B_TOKEN),
            ],
        )
    })
    .await
    .expect("join")
    .expect(0)
    .json()
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// The most sends in any one-second window.
fn busiest_second(msgs: &[&AcceptedMessage]) -> usize {
    let mut times: Vec<_> = msgs.iter().map(|m| m.received_at).collect();
    times.sort_unstable();
    let (mut most, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while secs(times[lo], times[hi]) >= 1.0 {
            lo += 1;
        }
        most = most.max(hi + 1 - lo);
    }
    most
}

fn is_mumbai(m: &AcceptedMessage) -> bool {
    m.body["to"].as_str().is_some_and(|t| t.starts_with("+91"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clinics_on_two_numbers_each_stay_under_their_own_cap() {
    const MAIN_CAP: usize = 40;
    const B_CAP: usize = 10;
    const MUMBAI: usize = 80;
    const NYC: usize = 30;
    let env = Env::new();
    two_numbers(&env, MAIN_CAP as u32, B_CAP as u32);
    let sim = sim(None).await;
    env.import("day.csv", &schedule(MUMBAI, NYC), &["--now", IMPORTED])
        .expect(0);
    let plan = env.run(&["plan", "--now", NOW, "--json"]).expect(0).json();
    assert_eq!(plan["pending"], MUMBAI + NYC, "{plan}");
    let env = Arc::new(env);
    let report = send(&env, &sim).await;
    assert_eq!(report["sent"], MUMBAI + NYC, "{report}");

    let got = sim.messages();
    assert_eq!(got.len(), MUMBAI + NYC, "each message once");
    let (mumbai, nyc): (Vec<_>, Vec<_>) = got.iter().partition(|m| is_mumbai(m));
    assert_eq!((mumbai.len(), nyc.len()), (MUMBAI, NYC));
    // Each clinic's messages went out from its own number (and so with its own token: the
    // simulator answers 401 to a number's request with another's token).
    assert!(
        mumbai
            .iter()
            .all(|m| m.phone_number_id == "106540352242922"),
        "Mumbai sends from the default number"
    );
    assert!(
        nyc.iter().all(|m| m.phone_number_id == B_ID),
        "New York sends from brand-b"
    );
    // Each number under its own cap in every second, measured where Meta would count.
    let (busy_main, busy_b) = (busiest_second(&mumbai), busiest_second(&nyc));
    assert!(
        busy_main <= MAIN_CAP,
        "{busy_main} sends in one second on the default number"
    );
    assert!(busy_b <= B_CAP, "{busy_b} sends in one second on brand-b");
    // And each at its own pace: brand-b's 30 take about 3 s at 10 a second, while the
    // default number's 80 go at 40 a second (about 2 s), not held to brand-b's pace.
    let span = |ms: &[&AcceptedMessage]| {
        secs(
            ms.first().expect("some").received_at,
            ms.last().expect("some").received_at,
        )
    };
    let (main_span, b_span) = (span(&mumbai), span(&nyc));
    let main_ideal = (MUMBAI - 1) as f64 / MAIN_CAP as f64;
    let b_ideal = (NYC - 1) as f64 / B_CAP as f64;
    assert!(
        main_span <= main_ideal * 1.6,
        "the default number took {main_span:.2} s (ideal {main_ideal:.2} s)"
    );
    assert!(
        b_span >= b_ideal * 0.9 && b_span <= b_ideal * 1.6,
        "brand-b took {b_span:.2} s (ideal {b_ideal:.2} s)"
    );
    let stats = sim.stats();
    assert_eq!(stats.throttled, 0, "no 130429 on either number");
}

/// Each number has its own share of `max_in_flight`: the slower number's messages, waiting on
/// its own cap, hold only its own slots. (Sharing the slots, 12 here, the 30-a-second number
/// held 8 of them and left the 60-a-second one 4: 40 a second at 100 ms a request.)
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_number_never_takes_the_request_slots_of_a_fast_one() {
    const MAIN_CAP: usize = 60;
    const B_CAP: usize = 30;
    const MUMBAI: usize = 150;
    const NYC: usize = 75;
    let env = Env::new();
    two_numbers(&env, MAIN_CAP as u32, B_CAP as u32);
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    let config = config.replace("# max_in_flight = 20", "max_in_flight = 12");
    assert!(config.contains("max_in_flight = 12"), "config edit");
    env.write_config(config);
    let sim = Sim::start(SimConfig {
        latency: Duration::from_millis(100),
        pair_limit: None,
        numbers: vec![SimNumber::new(B_ID, B_TOKEN)],
        ..sim_config(MAIN_TOKEN)
    })
    .await
    .expect("simulator");
    env.import("day.csv", &schedule(MUMBAI, NYC), &["--now", IMPORTED])
        .expect(0);
    env.run(&["plan", "--now", NOW]).expect(0);
    let env = Arc::new(env);
    let report = send(&env, &sim).await;
    assert_eq!(report["sent"], MUMBAI + NYC, "{report}");
    let got = sim.messages();
    let (mumbai, nyc): (Vec<_>, Vec<_>) = got.iter().partition(|m| is_mumbai(m));
    let span = |ms: &[&AcceptedMessage]| {
        secs(
            ms.first().expect("some").received_at,
            ms.last().expect("some").received_at,
        )
    };
    let ideal = (MUMBAI - 1) as f64 / MAIN_CAP as f64;
    let took = span(&mumbai);
    println!(
        "fast number: {took:.2} s for {MUMBAI} (ideal {ideal:.2} s); slow number: {:.2} s for {NYC}",
        span(&nyc)
    );
    // On PostgreSQL each claim and write is a round trip under the store's lock: under the
    // whole suite's load the fast number took 3.13 and 3.20 s there (1.26–1.29 of ideal); the
    // bug this pins took 3.66 s on SQLite (1.48).
    let slack = if crate::common::on_postgres() {
        1.4
    } else {
        1.25
    };
    assert!(
        took <= ideal * slack,
        "the fast number took {took:.2} s beside the slow one (ideal {ideal:.2} s)"
    );
    assert!(busiest_second(&mumbai) <= MAIN_CAP && busiest_second(&nyc) <= B_CAP);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_numbers_throttling_does_not_slow_the_other() {
    const MAIN_CAP: usize = 40;
    const MUMBAI: usize = 80;
    const NYC: usize = 40;
    let env = Env::new();
    // brand-b is configured for 20 a second, but Meta (the simulator) allows it only 4: most
    // of its sends are refused with 130429 and wait for a retry.
    two_numbers(&env, MAIN_CAP as u32, 20);
    let sim = sim(Some(4)).await;
    env.import("day.csv", &schedule(MUMBAI, NYC), &["--now", IMPORTED])
        .expect(0);
    env.run(&["plan", "--now", NOW]).expect(0);
    let env = Arc::new(env);
    let report = send(&env, &sim).await;

    let got = sim.messages();
    let (mumbai, nyc): (Vec<_>, Vec<_>) = got.iter().partition(|m| is_mumbai(m));
    assert_eq!(
        mumbai.len(),
        MUMBAI,
        "every Mumbai reminder went out: {report}"
    );
    assert!(sim.stats().throttled > 0, "brand-b was throttled");
    assert!(
        nyc.len() < NYC,
        "brand-b's refused sends wait for their retry"
    );
    assert_eq!(
        report["retrying"].as_u64().unwrap_or(0) as usize,
        NYC - nyc.len(),
        "every refused New York send is retried later, none lost: {report}"
    );
    // The default number kept its own pace throughout.
    let span = secs(
        mumbai.first().expect("some").received_at,
        mumbai.last().expect("some").received_at,
    );
    let ideal = (MUMBAI - 1) as f64 / MAIN_CAP as f64;
    assert!(
        span <= ideal * 1.6,
        "the default number took {span:.2} s beside a throttled one (ideal {ideal:.2} s)"
    );
    assert!(busiest_second(&mumbai) <= MAIN_CAP);
    // The store agrees: no Mumbai row waits, and each New York row is sent or retrying.
    let conn = env.sql();
    let waiting: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             JOIN clinics c ON c.id = a.clinic_id WHERE c.key = 'mumbai' AND o.state <> 'sent'",
            (),
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(waiting, 0);
    let retry: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE state = 'pending' AND last_error_code = 130429",
            (),
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(retry as usize, NYC - nyc.len());
}

#[test]
fn a_numbers_own_token_is_required_and_named_when_missing() {
    let env = Env::new();
    two_numbers(&env, 40, 10);
    let r = env.run_with_env(
        &["send", "--once", "--now", NOW],
        &[
            ("REMINDERD_API_BASE", "http://127.0.0.1:9"),
            ("WHATSAPP_ACCESS_TOKEN", MAIN_TOKEN),
        ],
    );
    assert_eq!(r.code, 78, "a config problem: {}", r.stderr);
    assert!(
        r.stderr
            .contains("[whatsapp.numbers.brand-b] has own_token = true")
            && r.stderr.contains("REMINDERD_WHATSAPP_TOKEN_BRAND_B")
            && r.stderr.contains("whatsapp-token-brand-b"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_config_says_which_clinic_sends_from_which_number() {
    let env = Env::new();
    two_numbers(&env, 40, 10);
    let r = env.run_with_env(
        &["check-config"],
        &[("REMINDERD_WHATSAPP_TOKEN_BRAND_B", B_TOKEN)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("number {name} ")))
            .unwrap_or_else(|| panic!("no line for {name}: {}", r.stdout))
            .to_string()
    };
    let default = line("default");
    assert!(
        default.contains("phone number id 106540352242922")
            && default.contains("40 msg/s")
            && default.contains("for apia, mumbai;")
            && default.contains("the main access token"),
        "{default}"
    );
    let b = line("brand-b");
    assert!(
        b.contains(&format!("phone number id {B_ID}"))
            && b.contains("10 msg/s")
            && b.contains("for nyc;")
            && b.contains("its own token found (REMINDERD_WHATSAPP_TOKEN_BRAND_B)"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_is_about_the_clinics_of_the_number_it_was_written_to() {
    // One patient with a reminded visit at each clinic; the clinics send from two numbers.
    let env = Env::new();
    two_numbers(&env, 40, 10);
    let day = (reminderd::time::Clock::System.now() + chrono::Duration::days(2))
        .with_timezone(&chrono_tz::America::New_York)
        .format("%Y-%m-%d")
        .to_string();
    crate::webhook::reminded(
        &env,
        &[
            &format!("VM,P1,Asha Rao,+91 98200 12345,en,{day},14:00,15,Dr. Mehta,mumbai,booked"),
            &format!("VN,P2,Asha Rao,+91 98200 12345,en,{day},10:00,15,Dr. Lee,nyc,booked"),
        ],
    );
    let s = Served::start(env).await;
    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("{}/webhook", s.url())),
        app_secret: Some(crate::webhook::SECRET.into()),
        pair_limit: None,
        numbers: vec![SimNumber {
            waba_id: B_WABA.into(),
            display_phone_number: B_DISPLAY.into(),
            ..SimNumber::new(B_ID, B_TOKEN)
        }],
        ..sim_config(MAIN_TOKEN)
    })
    .await
    .expect("sim");

    // "Cancel" written to brand-b's number is about the New York visit alone (with one
    // number for both, two upcoming visits would leave it to staff to ask which).
    sim.reply_to(
        B_ID,
        Reply::Text {
            from: "+919820012345".into(),
            body: "cancel".into(),
            context_id: None,
        },
    )
    .await
    .expect("reply to brand-b");
    assert_eq!(s.env.appointment("VN")["status"], "cancelled");
    assert_eq!(s.env.appointment("VM")["status"], "booked");

    // "Confirm" written to the default number is Mumbai's.
    sim.reply(Reply::Text {
        from: "+919820012345".into(),
        body: "confirm".into(),
        context_id: None,
    })
    .await
    .expect("reply to the default number");
    assert_eq!(s.env.appointment("VM")["response"], "confirmed");
    assert_eq!(s.env.appointment("VN")["status"], "cancelled");

    // Each acknowledgement goes back from the number the patient wrote to.
    let base = sim.base_url();
    let e = Arc::clone(&s.env);
    tokio::task::spawn_blocking(move || {
        e.run_with_env(
            &["send", "--once"],
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", MAIN_TOKEN),
                ("REMINDERD_WHATSAPP_TOKEN_BRAND_B", B_TOKEN),
            ],
        )
        .expect(0)
    })
    .await
    .expect("send acks");
    let acks: Vec<_> = sim
        .messages()
        .into_iter()
        .filter(|m| m.body["type"] == "text")
        .collect();
    assert_eq!(acks.len(), 2, "{acks:?}");
    let from_b = acks
        .iter()
        .find(|m| m.phone_number_id == B_ID)
        .expect("an acknowledgement from brand-b");
    assert!(
        from_b.body["text"]["body"]
            .as_str()
            .is_some_and(|t| t.contains("cancelled")),
        "{from_b:?}"
    );
    let from_main = acks
        .iter()
        .find(|m| m.phone_number_id == "106540352242922")
        .expect("an acknowledgement from the default number");
    assert!(
        from_main.body["text"]["body"]
            .as_str()
            .is_some_and(|t| t.contains("confirmed")),
        "{from_main:?}"
    );
}

/// `two_numbers`, with brand-b in a business account of its own.
fn two_accounts(env: &Env) {
    two_numbers(env, 40, 10);
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    let config = config.replacen(
        &format!("phone_number_id = \"{B_ID}\"\n"),
        &format!("phone_number_id = \"{B_ID}\"\nwaba_id = \"{B_WABA}\"\n"),
        1,
    );
    env.write_config(config);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_business_account_stops_its_own_numbers_only() {
    let env = Env::new();
    two_accounts(&env);
    env.import("day.csv", &schedule(3, 2), &["--now", IMPORTED])
        .expect(0);
    env.run(&["plan", "--now", NOW]).expect(0);
    let s = Served::start(env).await;
    // Meta disables brand-b's business account.
    let disabled = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": B_WABA, "time": 1_764_500_000, "changes": [{"field": "account_update", "value": {
            "event": "DISABLED_UPDATE",
            "ban_info": {"waba_ban_state": ["DISABLE"], "waba_ban_date": "2026-11-30"}
        }}]}]
    });
    assert_eq!(s.post_signed(&disabled).await, 200);
    let sim = sim(None).await;
    let report = send(&s.env, &sim).await;
    // Mumbai's number is in the other account: its reminders go; New York's wait.
    assert_eq!(report["sent"], 3, "{report}");
    assert!(report["blocked"].is_null(), "{report}");
    let held = report["held"].to_string();
    assert!(
        held.contains("from business account 400000000000004") && held.contains("disabled"),
        "{report}"
    );
    let got = sim.messages();
    assert!(got.iter().all(is_mumbai), "nothing from brand-b: {got:?}");
    assert_eq!(
        s.count("SELECT count(*) FROM outbox WHERE state = 'pending'"),
        2,
        "New York's reminders are held, not dropped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn numbers_shows_each_numbers_standing_at_meta_and_its_last_webhook() {
    let env = Env::new();
    two_accounts(&env);
    let s = Served::start(env).await;
    // Meta reports brand-b's throughput upgrade (phone_number_quality_update).
    let upgrade = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": B_WABA, "time": 1_764_500_000, "changes": [{"field": "phone_number_quality_update", "value": {
            "display_phone_number": B_DISPLAY,
            "event": "THROUGHPUT_UPGRADE",
            "max_daily_conversations_per_business": "TIER_10K"
        }}]}]
    });
    assert_eq!(s.post_signed(&upgrade).await, 200);
    let sim = Sim::start(SimConfig {
        numbers: vec![SimNumber {
            waba_id: B_WABA.into(),
            display_phone_number: B_DISPLAY.into(),
            quality_rating: "YELLOW".into(),
            messaging_limit: "TIER_10K".into(),
            ..SimNumber::new(B_ID, B_TOKEN)
        }],
        ..sim_config(MAIN_TOKEN)
    })
    .await
    .expect("sim");
    let base = sim.base_url();
    let e = Arc::clone(&s.env);
    let run = move |args: &'static [&'static str]| {
        let e = Arc::clone(&e);
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            e.run_with_env(
                args,
                &[
                    ("REMINDERD_API_BASE", base.as_str()),
                    ("WHATSAPP_ACCESS_TOKEN", MAIN_TOKEN),
                    ("REMINDERD_WHATSAPP_TOKEN_BRAND_B", B_TOKEN),
                ],
            )
        })
    };
    let listed = run(&["numbers", "--json"])
        .await
        .expect("join")
        .expect(0)
        .json();
    let rows = listed.as_array().expect("array");
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0]["number"], "default");
    assert_eq!(rows[0]["clinics"], serde_json::json!(["apia", "mumbai"]));
    assert_eq!(rows[0]["standing"]["quality_rating"], "GREEN");
    assert!(rows[0]["last_event"].is_null());
    assert_eq!(rows[1]["number"], "brand-b");
    assert_eq!(rows[1]["waba_id"], B_WABA);
    assert_eq!(rows[1]["clinics"], serde_json::json!(["nyc"]));
    assert_eq!(rows[1]["standing"]["quality_rating"], "YELLOW");
    assert_eq!(rows[1]["standing"]["messaging_limit"], "TIER_10K");
    assert_eq!(rows[1]["last_event"]["event"], "THROUGHPUT_UPGRADE");
    assert_eq!(rows[1]["last_event"]["messaging_limit"], "TIER_10K");
    let text = run(&["numbers"]).await.expect("join").expect(0).stdout;
    assert!(
        text.contains(
            "brand-b (phone number id 300000000000003, account 400000000000004): 10 msg/s, for nyc"
        ) && text.contains("quality YELLOW, throughput STANDARD, messaging limit TIER_10K")
            && text.contains("last webhook: THROUGHPUT_UPGRADE, limit TIER_10K"),
        "{text}"
    );
    // Templates are approved per business account: each account's catalogue is checked.
    let checked = run(&["templates", "check", "--json"])
        .await
        .expect("join")
        .expect(0)
        .json();
    let accounts: std::collections::BTreeSet<String> = checked
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|l| l["account"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        accounts.into_iter().collect::<Vec<_>>(),
        vec!["102290129340398".to_string(), B_WABA.to_string()],
        "{checked}"
    );
}
