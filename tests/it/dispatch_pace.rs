//! Dispatch's pace over real HTTP: a patient's spacing delays only that patient's messages,
//! never everyone else's (issue 19), and no second holds more sends than the cap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reminderd::sim::{Sim, SimConfig};

use crate::common::{Env, csv};

/// 10:00 IST on Tue 1 Dec 2026: the day-before reminders of Wed 2 Dec mornings are due.
const NOW: &str = "2026-12-01T04:30:00Z";
/// When the schedule is imported: fixed, and more than a day before `NOW`, so no booking
/// confirmation is due at `NOW` whatever the real date (imported at the real time, the
/// appointments were confirmed from a day before `NOW` on).
const IMPORTED: &str = "2026-11-29T00:00:00Z";
/// Messages to the one patient with many appointments (each its own day-before reminder).
const SPACED: usize = 10;
/// Other patients, one appointment each.
const OTHERS: usize = 100;
/// `[whatsapp] rate_limit_per_sec` here.
const CAP: usize = 50;
/// `[whatsapp] recipient_spacing` here, in seconds.
const SPACING: i64 = 1;

/// The spaced patient's appointments come first (08:00 onwards, so theirs are claimed first),
/// then the others' (09:00 onwards).
fn schedule() -> String {
    let mut rows = Vec::new();
    for i in 0..SPACED {
        rows.push(format!(
            "S{i},PS,Meera Iyer,98200 00001,en,2026-12-02,08:{:02},15,Dr. Mehta,mumbai,booked",
            i * 5
        ));
    }
    for i in 0..OTHERS {
        rows.push(format!(
            "O{i},P{i},Patient {i},98300 {:05},en,2026-12-02,09:{:02},15,Dr. Mehta,mumbai,booked",
            10_000 + i,
            i % 60
        ));
    }
    csv(&rows.iter().map(String::as_str).collect::<Vec<_>>())
}

fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread")]
async fn spacing_delays_only_its_patient_and_the_others_go_at_the_caps_pace() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
    let config = config
        .replace(
            "rate_limit_per_sec = 80",
            &format!("rate_limit_per_sec = {CAP}"),
        )
        .replace("# max_in_flight = 20", "max_in_flight = 8")
        .replace(
            "recipient_spacing = \"6s\"",
            &format!("recipient_spacing = \"{SPACING}s\""),
        )
        .replace("request_timeout = \"15s\"", "request_timeout = \"5s\"")
        .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
    assert!(config.contains("max_in_flight = 8"), "config edit");
    env.write_config(config);
    // 100 ms per answer: with 8 slots, 80 a second at most, above the cap of 50; a slot
    // held by a waiting send costs the others a tenth of that.
    let sim = Sim::start(SimConfig {
        latency: Duration::from_millis(100),
        pair_limit: Some(Duration::from_secs(SPACING as u64)),
        ..crate::common::sim_config("test-token")
    })
    .await
    .expect("simulator");
    env.import("day.csv", &schedule(), &["--now", IMPORTED])
        .expect(0);
    let plan = env.run(&["plan", "--now", NOW, "--json"]).expect(0).json();
    assert_eq!(plan["pending"], SPACED + OTHERS, "{plan}");

    let base = sim.base_url();
    let env = std::sync::Arc::new(env);
    let e = std::sync::Arc::clone(&env);
    let report = tokio::task::spawn_blocking(move || {
        e.run_with_env(
            &["send", "--once", "--now", NOW, "--json"],
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "test-token"),
            ],
        )
    })
    .await
    .expect("join")
    .expect(0)
    .json();
    assert_eq!(report["sent"], SPACED + OTHERS, "{report}");

    let got = sim.messages();
    assert_eq!(got.len(), SPACED + OTHERS, "each message once");
    let (spaced, others): (Vec<_>, Vec<_>) =
        got.iter().partition(|m| m.body["to"] == "+919820000001");
    assert_eq!(spaced.len(), SPACED);
    // The spaced patient: each message at least the spacing after the one before (counted
    // from the previous answer, so the gap also holds the simulator's latency), and the
    // simulator's pair limit never refused one.
    for pair in spaced.windows(2) {
        let gap = secs(pair[0].received_at, pair[1].received_at);
        assert!(
            gap >= SPACING as f64,
            "spaced patient's messages {gap:.3} s apart"
        );
    }
    assert_eq!(sim.stats().pair_limited, 0, "no pair-limit refusal");
    // Everyone else: at the cap's pace (ideal 2 s for 100 at 50 a second), not held back by
    // the waiting patient (slots held while waiting made this about five times longer), and
    // all of them out before the spaced patient's last message.
    let first = others.first().expect("others").received_at;
    let last = others.last().expect("others").received_at;
    let span = secs(first, last);
    let ideal = (OTHERS - 1) as f64 / CAP as f64;
    assert!(
        span <= ideal * 1.6,
        "the other patients took {span:.2} s (ideal {ideal:.2} s)"
    );
    assert!(last < spaced.last().expect("spaced").received_at);
    // Never more than the cap in any one second.
    let mut times: Vec<_> = got.iter().map(|m| m.received_at).collect();
    times.sort_unstable();
    let mut most = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while secs(times[lo], times[hi]) >= 1.0 {
            lo += 1;
        }
        most = most.max(hi + 1 - lo);
    }
    assert!(most <= CAP, "{most} sends in one second");
    // The outbox agrees: every row sent at its first attempt.
    let sent = env.count("SELECT count(*) FROM outbox WHERE state = 'sent' AND attempts = 1");
    assert_eq!(sent, (SPACED + OTHERS) as i64);
}
