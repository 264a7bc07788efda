//! `reminderd plan` + `reminderd send` against the Cloud API simulator over real HTTP: what
//! reaches the API, and what is stored.

use std::sync::Arc;
use std::time::Duration;

use reminderd::sim::{Fault, Sim, SimConfig};
use serde_json::{Value, json};

use crate::common::{Env, Run, Wait, csv};

/// 10:00 IST on Tue 1 Dec 2026: the day-before reminders of Wed 2 Dec mornings are due.
const NOW: &str = "2026-12-01T04:30:00Z";
/// When the schedule is imported: fixed, and more than a day before `NOW`, so no booking
/// confirmation is due at `NOW` whatever the real date (imported at the real time, the
/// appointments were confirmed from a day before `NOW` on).
const IMPORTED: &str = "2026-11-29T00:00:00Z";
const A1: &str = "A1,P1,Aarav Sharma,98200 12345,en,2026-12-02,09:00,15,Dr. Mehta,mumbai,booked";
const A2: &str = "A2,P2,Priya Patil,+91 98765 43210,mr,2026-12-02,09:30,15,Dr. Mehta,mumbai,booked";
const A3: &str = "A3,P3,Rohan Gupta,091234 56789,hi,2026-12-02,10:00,30,Dr. Iyer,mumbai,booked";

/// A test folder whose config points at a simulator (started from a `sim()` config), with
/// timings shortened for tests.
struct SendEnv {
    env: Arc<Env>,
    sim: Sim,
}

impl SendEnv {
    async fn new(edit: impl Fn(String) -> String, sim: SimConfig) -> Self {
        let env = Env::new();
        let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
        let config = config
            .replace("request_timeout = \"15s\"", "request_timeout = \"3s\"")
            .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
            .replace("retry_base = \"5s\"", "retry_base = \"2s\"")
            // The import happens at the real time; --now is days away from it.
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
        env.write_config(edit(config));
        let sim = Sim::start(sim).await.expect("start simulator");
        Self {
            env: Arc::new(env),
            sim,
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        let env = Arc::clone(&self.env);
        let base = self.sim.base_url();
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            env.run_with_env(
                &args,
                &[
                    ("REMINDERD_API_BASE", base.as_str()),
                    ("WHATSAPP_ACCESS_TOKEN", "test-token"),
                ],
            )
        })
        .await
        .expect("join")
    }

    async fn send(&self, now: &str) -> Value {
        self.run(&["send", "--once", "--now", now, "--json"])
            .await
            .expect(0)
            .json()
    }

    fn outbox(&self) -> Vec<Value> {
        let r = self.env.run(&["outbox", "--json"]).expect(0);
        r.json().as_array().expect("array").clone()
    }

    fn states(&self) -> Vec<(String, String)> {
        self.outbox()
            .iter()
            .map(|o| {
                (
                    o["appointment_id"].as_str().unwrap_or("").to_string(),
                    o["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

/// The simulator with its pair rate limit off: most tests send to several numbers at once
/// and are not about spacing.
fn sim() -> SimConfig {
    SimConfig {
        pair_limit: None,
        ..crate::common::sim_config("test-token")
    }
}

fn same(edit: String) -> String {
    edit
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_reminder_is_sent_once_with_the_exact_body() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    let plan = t
        .run(&["plan", "--now", NOW, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(
        (plan["pending"].as_u64(), plan["existing"].as_u64()),
        (Some(1), Some(0))
    );
    let report = t.send(NOW).await;
    assert_eq!(report["sent"], 1, "{report}");

    let got = t.sim.messages();
    assert_eq!(got.len(), 1);
    let outbox = t.outbox();
    let id = outbox[0]["id"].as_i64().expect("id");
    assert_eq!(
        got[0].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+919820012345",
            "type": "template",
            "template": {
                "name": "appointment_reminder",
                "language": {"code": "en"},
                "components": [
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "Aarav"},
                        {"type": "text", "text": "Sunrise Family Clinic, Andheri"},
                        {"type": "text", "text": "Wednesday 2 December"},
                        {"type": "text", "text": "09:00"}
                    ]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": format!("confirm:{id}")}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": format!("cancel:{id}")}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "2", "parameters": [{"type": "payload", "payload": format!("reschedule:{id}")}]}
                ]
            },
            "biz_opaque_callback_data": id.to_string()
        })
    );
    assert_eq!(outbox[0]["state"], "sent");
    assert_eq!(outbox[0]["wamid"].as_str(), Some(got[0].wamid.as_str()));
    assert_eq!(outbox[0]["rule"], "day-before");
    assert_eq!(outbox[0]["attempts"], 1);

    // Planning and sending again add nothing.
    let plan = t
        .run(&["plan", "--now", NOW, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(
        (plan["pending"].as_u64(), plan["existing"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(t.send(NOW).await["sent"], 0);
    assert_eq!(t.sim.messages().len(), 1, "never twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_then_success_and_5xx_are_retried() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1, A2]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    t.sim.push_fault(Fault::Error {
        code: 130_429,
        http_status: 400,
    });
    t.sim.push_fault(Fault::BareStatus(502));
    let first = t.send(NOW).await;
    assert_eq!(
        (first["sent"].as_u64(), first["retrying"].as_u64()),
        (Some(0), Some(2)),
        "{first}"
    );
    let errors: Vec<String> = t
        .outbox()
        .iter()
        .map(|o| o["last_error"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        errors.iter().any(|e| e.starts_with("(130429)")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("HTTP 502")), "{errors:?}");
    // Backoff is at most retry_base (2s) on the first retry; a minute later both go.
    let later = "2026-12-01T04:31:00Z";
    let second = t.send(later).await;
    assert_eq!(second["sent"], 2, "{second}");
    assert!(
        t.outbox()
            .iter()
            .all(|o| o["state"] == "sent" && o["attempts"] == 2)
    );
    assert_eq!(t.sim.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_error_is_kept_with_its_code_and_not_retried() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    t.sim.push_fault(Fault::Error {
        code: 132_001,
        http_status: 404,
    });
    let r = t.send(NOW).await;
    assert_eq!(r["failed"], 1, "{r}");
    let o = &t.outbox()[0];
    assert_eq!(o["state"], "failed");
    assert!(
        o["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("(132001)"),
        "{o}"
    );
    assert_eq!(t.send("2026-12-01T05:00:00Z").await["sent"], 0);
    assert!(t.sim.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_after_the_request_went_out_is_unknown_not_resent() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    t.sim
        .push_fault(Fault::AcceptThenHang(Duration::from_secs(5)));
    let r = t.send(NOW).await;
    assert_eq!(r["unknown"], 1, "{r}");
    assert_eq!(t.outbox()[0]["state"], "unknown");
    // The API did accept it; sending again must not duplicate it.
    assert_eq!(t.send("2026-12-01T04:35:00Z").await["sent"], 0);
    assert_eq!(t.sim.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_and_moved_after_planning_and_opted_out_are_skipped() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1, A2, A3]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    // After planning: A1 is cancelled by the clinic, A2 moves to the afternoon, P3 opts out.
    let cancelled = A1.replace(",booked", ",cancelled");
    let moved = A2.replace("09:30", "15:30");
    t.env
        .import(
            "day2.csv",
            &csv(&[&cancelled, &moved, A3]),
            &["--now", IMPORTED],
        )
        .expect(0);
    t.env
        .sql()
        .execute(
            "UPDATE patients SET opted_out_at = 1 WHERE external_id = 'P3'",
            (),
        )
        .expect("opt out");
    let r = t.send(NOW).await;
    assert_eq!(
        (r["sent"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );
    let reasons: Vec<String> = t
        .outbox()
        .iter()
        .map(|o| o["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("cancelled by the source")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("moved")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("opted out")),
        "{reasons:?}"
    );
    assert!(t.sim.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_schedule_holds_reminders_without_dropping_them() {
    let t = SendEnv::new(
        |c| c.replace("max_import_age = \"3650d\"", "max_import_age = \"36h\""),
        sim(),
    )
    .await;
    t.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    // Pretend the last import was three days before NOW.
    t.env
        .sql()
        .execute("UPDATE imports SET imported_at = 1795840200", ())
        .expect("age import");
    t.run(&["plan", "--now", NOW]).await.expect(0);
    let r = t.run(&["send", "--once", "--now", NOW]).await.expect(0);
    assert!(
        r.stdout
            .contains("held: clinic mumbai's schedule was last imported 3d ago"),
        "{}",
        r.stdout
    );
    assert_eq!(t.states(), [("A1".to_string(), "pending".to_string())]);
    assert!(t.sim.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_sender_never_causes_a_second_message() {
    // Slow API, two requests in flight: a kill lands with some sent, some claimed, some not.
    let t = SendEnv::new(
        |c| c.replace("# max_in_flight = 20", "max_in_flight = 2"),
        SimConfig {
            latency: Duration::from_millis(150),
            ..sim()
        },
    )
    .await;
    let rows: Vec<String> = (0..16)
        .map(|i| {
            format!(
                "K{i},Q{i},Patient {i},98200 {:05},en,2026-12-02,09:{:02},15,,mumbai,booked",
                10_000 + i,
                i
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    t.env
        .import("many.csv", &csv(&rows), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);

    let env = Arc::clone(&t.env);
    let base = t.sim.base_url();
    let mut child = env.spawn(
        &["send", "--once", "--now", NOW],
        &[
            ("REMINDERD_API_BASE", base.as_str()),
            ("WHATSAPP_ACCESS_TOKEN", "test-token"),
        ],
    );
    // Kill as soon as the API has seen a few messages: deterministic whatever the machine.
    Wait::new("the API to see 3 messages", Duration::from_secs(20))
        .every(Duration::from_millis(5))
        .until(|| t.sim.messages().len() >= 3)
        .await;
    child.kill().expect("kill -9");
    let _ = child.wait();
    let before = t.sim.messages().len();
    assert!(
        before > 0 && before < 16,
        "the kill should land mid-queue ({before} sent)"
    );

    // Restart a minute later (past the interrupted-send grace) and finish the queue.
    let r = t.send("2026-12-01T04:31:00Z").await;
    assert!(r["recovered"].as_u64().unwrap_or(0) <= 2, "{r}");
    let got = t.sim.messages();
    let mut ids: Vec<&str> = got
        .iter()
        .map(|m| m.body["biz_opaque_callback_data"].as_str().unwrap_or(""))
        .collect();
    ids.sort_unstable();
    let total = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), total, "an outbox row reached the API twice");
    let states = t.states();
    assert!(
        states.iter().all(|(_, s)| s == "sent" || s == "unknown"),
        "every row is sent, or unknown awaiting its status: {states:?}"
    );
    let sent = states.iter().filter(|(_, s)| s == "sent").count();
    assert!(sent >= 14, "{states:?}");
    // Every row the API never saw was sent; an unknown one is one the API may have seen.
    for o in t.outbox() {
        let id = o["id"].as_i64().unwrap_or_default().to_string();
        if o["state"] == "sent" {
            assert!(
                ids.contains(&id.as_str()),
                "row {id} marked sent but the API never got it"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_check_reports_missing_and_unapproved_templates() {
    let t = SendEnv::new(same, sim()).await;
    let ok = t
        .run(&["templates", "check", "--json"])
        .await
        .expect(0)
        .json();
    assert!(
        ok.as_array()
            .is_some_and(|a| a.len() == 12 && a.iter().all(|l| l["ok"] == true)),
        "{ok}"
    );
    // A config asking for a language the account lacks.
    let path = t.env.path("reminders.toml");
    let config = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, config + "\n[templates.reminder.languages.gu]\nbody = \"{{1}} {{2}} {{3}} {{4}}.\"\nbuttons = [\"a\", \"b\", \"c\"]\n").expect("edit");
    let r = t.run(&["templates", "check"]).await.expect(78);
    assert!(
        r.stdout
            .contains("FAIL reminder     appointment_reminder     gu     MISSING"),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_to_one_patient_are_spaced_to_respect_the_pair_rate_limit() {
    // The simulator refuses a second message to a number within 1 s (error 131056), with
    // latency so that a gap counted from the request rather than the response would be short.
    let t = SendEnv::new(
        |c| c.replace("recipient_spacing = \"0s\"", "recipient_spacing = \"1s\""),
        SimConfig {
            pair_limit: Some(Duration::from_secs(1)),
            latency: Duration::from_millis(100),
            ..sim()
        },
    )
    .await;
    let same_patient =
        "A9,P1,Aarav Sharma,98200 12345,en,2026-12-02,09:30,15,Dr. Mehta,mumbai,booked";
    t.env
        .import(
            "day.csv",
            &csv(&[A1, same_patient, A2]),
            &["--now", IMPORTED],
        )
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    let r = t.send(NOW).await;
    assert_eq!(
        (r["sent"].as_u64(), r["retrying"].as_u64()),
        (Some(3), Some(0)),
        "{r}"
    );
    let to_aarav: Vec<_> = t
        .sim
        .messages()
        .into_iter()
        .filter(|m| m.body["to"] == "+919820012345")
        .collect();
    assert_eq!(to_aarav.len(), 2);
    let gap = to_aarav[1].received_at - to_aarav[0].received_at;
    assert!(
        gap >= chrono::Duration::seconds(1),
        "second message after {gap}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_tables_never_show_a_whole_number_even_inside_a_message_id() {
    let t = SendEnv::new(same, sim()).await;
    t.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    let sent = t.run(&["send", "--once", "--now", NOW]).await.expect(0);
    let wamid = t.sim.messages()[0].wamid.clone();
    // The simulator's ids, like Meta's (base64), carry the recipient's number.
    assert!(wamid.contains("919820012345"), "{wamid}");
    let table = t.env.run(&["outbox"]).expect(0);
    for (what, text) in [
        ("send's log", &sent.stderr),
        ("send's output", &sent.stdout),
        ("the outbox table", &table.stdout),
    ] {
        assert!(
            !text.contains("9820012345"),
            "{what} shows the whole number:\n{text}"
        );
        assert!(
            !text.contains(&wamid),
            "{what} shows the message id:\n{text}"
        );
        assert!(
            !text.contains('\x1b'),
            "{what} has colour codes off a terminal:\n{text}"
        );
    }
    assert!(sent.stderr.contains("outbox="), "{}", sent.stderr);
    // People still get a short, number-free reference; scripts get the id whole.
    assert!(table.stdout.contains("msg-"), "{}", table.stdout);
    assert_eq!(t.outbox()[0]["wamid"].as_str(), Some(wamid.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_patient_who_blocked_the_clinic_gets_no_more_whatsapp_without_texts_and_is_on_the_call_list()
 {
    // Mumbai without an SMS provider: no text can stand in.
    let no_texts = |c: String| c.replacen("sms_provider = \"msg91\"\n", "", 1);
    let t = SendEnv::new(no_texts, sim()).await;
    let next_day = "A4,P1,Aarav Sharma,98200 12345,en,2026-12-03,09:00,15,Dr. Mehta,mumbai,booked";
    t.env
        .import("day.csv", &csv(&[A1, next_day]), &["--now", IMPORTED])
        .expect(0);
    t.run(&["plan", "--now", NOW]).await.expect(0);
    t.sim.push_fault(Fault::Error {
        code: 130_403,
        http_status: 400,
    });
    assert_eq!(t.send(NOW).await["failed"], 1);
    assert_eq!(
        t.env.count(
            "SELECT count(*) FROM numbers WHERE phone = '+919820012345' AND sms_only_until IS NOT NULL AND sms_only_reason LIKE '(130403)%'"
        ),
        1,
        "the number is remembered as off WhatsApp"
    );
    assert_eq!(
        t.env
            .count("SELECT count(*) FROM audit_log WHERE action = 'channel_learned'"),
        1
    );

    // The next day's reminder for the same number is not planned for WhatsApp...
    let day_before_a4 = "2026-12-02T03:30:00Z";
    t.run(&["plan", "--now", day_before_a4]).await.expect(0);
    t.send(day_before_a4).await;
    assert!(
        t.outbox().iter().all(|o| o["appointment_id"] != "A4"),
        "{:#?}",
        t.outbox()
    );
    assert!(t.sim.messages().is_empty(), "nothing reached WhatsApp");
    // ...and staff are told to call.
    let calls = t
        .env
        .run(&[
            "follow-ups",
            "--clinic",
            "mumbai",
            "--date",
            "2026-12-03",
            "--json",
        ])
        .expect(0)
        .json();
    let a4 = calls
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["appointment_id"] == "A4")
        .unwrap_or_else(|| panic!("A4 is on the call list: {calls:#}"))
        .clone();
    assert!(
        a4["reasons"][0]
            .as_str()
            .unwrap_or("")
            .contains("blocked the clinic"),
        "{a4}"
    );
}
