//! Meta changes things under the clinic's feet: the simulator posts signed template-status,
//! category and account webhooks to `reminderd serve`, and `reminderd send --once` holds,
//! swaps, stops and resumes as the clinic would want; a message WhatsApp gave up on after its
//! time to live is recorded as expired; `templates check` says what is wrong.

use std::sync::Arc;
use std::time::Duration;

use reminderd::sim::{Sim, SimConfig};
use serde_json::Value;

use crate::common::{Env, Run, Wait, csv};

const SECRET: &str = "app-secret-for-tests";
/// 10:00 IST on Tue 1 Dec 2026: the day-before reminder of A1 (Wed 2 Dec 09:00) is due.
const NOW: &str = "2026-12-01T04:30:00Z";
/// When the schedule is imported: fixed, and more than a day before `NOW`, so no booking
/// confirmation is due at `NOW` whatever the real date (imported at the real time, the
/// appointments were confirmed from a day before `NOW` on).
const IMPORTED: &str = "2026-11-29T00:00:00Z";
/// Six minutes later: a message held for its template is looked at again.
const LATER: &str = "2026-12-01T04:36:00Z";
const A1: &str = "A1,P1,Aarav Sharma,98200 12345,en,2026-12-02,09:00,15,Dr. Mehta,mumbai,booked";

/// A test folder with `reminderd serve` taking webhooks and a simulator posting them to it.
struct Meta {
    env: Arc<Env>,
    sim: Sim,
    child: std::process::Child,
}

impl Drop for Meta {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped config with test timings, no quiet hours, and `edit` applied.
fn config(edit: impl Fn(String) -> String) -> String {
    let c = crate::common::test_config()
        .replace("request_timeout = \"15s\"", "request_timeout = \"3s\"")
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
        .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
        .replace("quiet_hours = \"21:00-08:00\"\n", "");
    edit(c)
}

/// Texts off at the Mumbai clinic: only a hold or an alternate can stand in.
#[allow(clippy::needless_pass_by_value)] // an edit, as `config` takes them
fn no_sms(c: String) -> String {
    c.replacen("# sms_fallback = true", "sms_fallback = false", 1)
}

impl Meta {
    async fn start(config: String) -> Self {
        let env = Env::new();
        env.write_config(&config);
        let port = crate::common::free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = env.spawn(
            &["serve", "--listen", &listen],
            &[
                ("WHATSAPP_APP_SECRET", SECRET),
                ("WHATSAPP_VERIFY_TOKEN", "verify"),
            ],
        );
        let url = format!("http://{listen}");
        let http = reqwest::Client::new();
        Wait::new("the server to start", Duration::from_secs(20))
            .until_async(async || {
                http.get(format!("{url}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        let parsed =
            reminderd::config::Config::from_toml(&config, std::path::Path::new("reminders.toml"))
                .expect("config");
        let sim = Sim::start(SimConfig {
            pair_limit: None,
            webhook_url: Some(format!("{url}/webhook")),
            app_secret: Some(SECRET.into()),
            templates: reminderd::sim::templates_from_config(&parsed),
            ..crate::common::sim_config("test-token")
        })
        .await
        .expect("simulator");
        Self {
            env: Arc::new(env),
            sim,
            child,
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

    /// The reminder of A1: its state and reason.
    fn a1(&self) -> (String, Option<String>) {
        self.env
            .sql()
            .query_row(
                "SELECT o.state, o.reason FROM outbox o JOIN appointments a ON a.id = o.appointment_id
                 WHERE a.external_id = 'A1' AND o.channel = 'whatsapp' ORDER BY o.id LIMIT 1",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("A1's reminder")
    }

    async fn wait_rows(&self, what: &str, sql: &str) {
        let env = Arc::clone(&self.env);
        Wait::new(what, Duration::from_secs(20))
            .until(|| env.count(sql) > 0)
            .await;
    }

    fn holds(&self) -> Vec<reminderd::jobs::Hold> {
        let config =
            reminderd::config::Config::load(&self.env.path("reminders.toml")).expect("config");
        let store = self.env.store().expect("store");
        let now = reminderd::time::parse_instant(LATER).expect("now");
        reminderd::jobs::desk_status(&store, &config, now)
            .expect("status")
            .holds
    }

    fn template_names(&self) -> Vec<String> {
        self.sim
            .messages()
            .iter()
            .map(|m| {
                m.body["template"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }
}

async fn planned(edit: impl Fn(String) -> String) -> Meta {
    let m = Meta::start(config(edit)).await;
    m.env
        .import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
        .expect(0);
    m.run(&["plan", "--now", NOW]).await.expect(0);
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_template_holds_its_reminders_until_meta_reinstates_it() {
    let m = planned(no_sms).await;
    m.sim
        .set_template_status("appointment_reminder", "en", "PAUSED")
        .await
        .expect("webhook");
    m.wait_rows(
        "the pause",
        "SELECT count(*) FROM template_health WHERE status = 'PAUSED'",
    )
    .await;

    let report = m.send(NOW).await;
    assert_eq!(report["sent"], 0, "{report}");
    assert!(m.sim.messages().is_empty());
    let (state, reason) = m.a1();
    assert_eq!(state, "pending", "held, not failed");
    let reason = reason.expect("a reason on the row");
    assert!(
        reason.starts_with("held: ")
            && reason.contains("paused the WhatsApp template “appointment_reminder” (en)"),
        "{reason}"
    );
    // Staff are told on the banner, with the one waiting message.
    assert!(
        m.holds().iter().any(|h| matches!(h, reminderd::jobs::Hold::TemplateStopped { template, messages: 1, .. } if template == "reminder")),
        "{:?}",
        m.holds()
    );

    m.sim
        .set_template_status("appointment_reminder", "en", "REINSTATED")
        .await
        .expect("webhook");
    m.wait_rows(
        "the reinstatement",
        "SELECT count(*) FROM template_health WHERE status = 'REINSTATED'",
    )
    .await;
    let report = m.send(LATER).await;
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(m.template_names(), ["appointment_reminder"]);
    let state = m.a1().0;
    assert!(
        ["sent", "delivered", "read"].contains(&state.as_str()),
        "{state}"
    );
    assert!(
        !m.holds()
            .iter()
            .any(|h| matches!(h, reminderd::jobs::Hold::TemplateStopped { .. })),
        "released"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configured_alternate_goes_while_the_template_is_paused() {
    let m = planned(|c| {
        no_sms(c).replacen(
            "[templates.reminder]\n",
            "[templates.reminder]\nalternate = \"booked\"\n",
            1,
        )
    })
    .await;
    m.sim
        .set_template_status("appointment_reminder", "en", "PAUSED")
        .await
        .expect("webhook");
    m.wait_rows(
        "the pause",
        "SELECT count(*) FROM template_health WHERE status = 'PAUSED'",
    )
    .await;
    let report = m.send(NOW).await;
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(m.template_names(), ["appointment_booked"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_texts_allowed_a_paused_template_falls_back_to_sms() {
    let m = planned(|c| c).await;
    m.sim
        .set_template_status("appointment_reminder", "en", "DISABLED")
        .await
        .expect("webhook");
    m.wait_rows(
        "the disabling",
        "SELECT count(*) FROM template_health WHERE status = 'DISABLED'",
    )
    .await;
    m.send(NOW).await;
    assert!(m.sim.messages().is_empty(), "no WhatsApp request");
    assert_eq!(
        m.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'sms' AND fallback_of IS NOT NULL"),
        1
    );
    assert_eq!(m.a1().0, "failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_change_to_marketing_holds_and_an_announced_one_only_warns() {
    let m = planned(no_sms).await;
    m.sim
        .announce_template_category("appointment_reminder", "en", "MARKETING", 1_796_083_200)
        .await
        .expect("webhook");
    m.wait_rows(
        "the announcement",
        "SELECT count(*) FROM template_health WHERE impending_category = 'MARKETING'",
    )
    .await;
    assert!(
        m.holds().iter().any(|h| matches!(h, reminderd::jobs::Hold::TemplateWarning { why, .. } if why.contains("will re-categorise"))),
        "{:?}",
        m.holds()
    );
    let check = m.run(&["templates", "check"]).await;
    assert!(
        check.stdout.contains("warning: Meta will re-categorise the WhatsApp template “appointment_reminder” (en) as MARKETING"),
        "{}",
        check.stdout
    );
    // Only a warning: it still goes... after the change is made, it does not.
    m.sim
        .set_template_category("appointment_reminder", "en", "MARKETING")
        .await
        .expect("webhook");
    m.wait_rows(
        "the change",
        "SELECT count(*) FROM template_health WHERE category = 'MARKETING'",
    )
    .await;
    m.send(NOW).await;
    assert!(m.sim.messages().is_empty());
    let (state, reason) = m.a1();
    assert_eq!(state, "pending");
    assert!(reason.is_some_and(|r| r.contains("MARKETING")));
    let check = m.run(&["templates", "check"]).await.expect(78);
    assert!(check.stdout.contains("FAIL reminder"), "{}", check.stdout);

    m.sim
        .set_template_category("appointment_reminder", "en", "UTILITY")
        .await
        .expect("webhook");
    m.wait_rows(
        "the way back",
        "SELECT count(*) FROM template_health WHERE category = 'UTILITY'",
    )
    .await;
    assert_eq!(m.send(LATER).await["sent"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_announced_change_sends_as_before() {
    let m = planned(no_sms).await;
    m.sim
        .announce_template_category("appointment_reminder", "en", "MARKETING", 1_796_083_200)
        .await
        .expect("webhook");
    m.wait_rows(
        "the announcement",
        "SELECT count(*) FROM template_health WHERE impending_category = 'MARKETING'",
    )
    .await;
    assert_eq!(m.send(NOW).await["sent"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_account_stops_sending_until_lifted() {
    let m = planned(no_sms).await;
    m.sim.restrict_account(None).await.expect("webhook");
    m.wait_rows(
        "the restriction",
        "SELECT count(*) FROM account_health WHERE blocked = 1",
    )
    .await;
    let run = m.run(&["send", "--once", "--now", NOW]).await.expect(69);
    assert!(
        run.stderr
            .contains("restricted the WhatsApp Business account"),
        "{}",
        run.stderr
    );
    assert!(m.sim.messages().is_empty(), "nothing reached WhatsApp");
    assert_eq!(m.a1().0, "pending");
    assert!(
        m.holds()
            .iter()
            .any(|h| matches!(h, reminderd::jobs::Hold::AccountBlocked { .. })),
        "{:?}",
        m.holds()
    );

    m.sim.lift_account_restriction().await.expect("webhook");
    m.wait_rows(
        "the lifting",
        "SELECT count(*) FROM account_health WHERE blocked = 0",
    )
    .await;
    assert_eq!(m.send(NOW).await["sent"], 1);
    assert_eq!(m.sim.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_after_the_time_to_live_is_recorded_as_expired() {
    // Sent an hour ago (by --now) with a 30-minute time to live; the failure arrives now.
    let real = reminderd::time::Clock::System.now();
    let sent = real - chrono::Duration::minutes(50);
    let starts = (real + chrono::Duration::hours(23)).with_timezone(&chrono_tz::Asia::Kolkata);
    let row = format!(
        "A1,P1,Aarav Sharma,98200 12345,en,{},{},15,Dr. Mehta,mumbai,booked",
        starts.format("%Y-%m-%d"),
        starts.format("%H:%M")
    );
    let m = Meta::start(config(|c| {
        c.replacen(
            "[templates.reminder]\n",
            "[templates.reminder]\nttl = \"30m\"\n",
            1,
        )
    }))
    .await;
    m.env.import("day.csv", &csv(&[&row]), &[]).expect(0);
    let now = sent.to_rfc3339();
    m.run(&["plan", "--now", &now]).await.expect(0);
    m.sim.fail_later("+919820012345", 131_026);
    assert_eq!(m.send(&now).await["sent"], 1);
    m.wait_rows(
        "the failure",
        "SELECT count(*) FROM outbox WHERE state = 'expired'",
    )
    .await;
    let (state, reason) = m.a1();
    assert_eq!(state, "expired");
    assert!(
        reason.is_some_and(|r| r.contains("not delivered within its time to live (30m)")),
        "expired with its reason"
    );
    // Not failed, so no text replaces it.
    assert_eq!(
        m.env
            .count("SELECT count(*) FROM outbox WHERE channel = 'sms'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_check_compares_meta_s_time_to_live_with_the_config_and_the_rules() {
    let m = Meta::start(config(|c| {
        c.replacen(
            "[templates.reminder]\n",
            "[templates.reminder]\nttl = \"6h\"\n",
            1,
        )
    }))
    .await;
    let check = m.run(&["templates", "check"]).await.expect(0);
    assert!(
        check.stdout.contains(
            "its time to live (6h) is longer than rule same-day's 2h before the appointment"
        ),
        "{}",
        check.stdout
    );
    // The booking confirmation is no reminder: no time-to-live advice for it.
    let json = m
        .run(&["templates", "check", "--json"])
        .await
        .expect(0)
        .json();
    let booked = json
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["template"] == "booked")
        .expect("booked")
        .clone();
    assert_eq!(booked["warnings"], serde_json::json!([]), "{booked}");
}
