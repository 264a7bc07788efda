//! Feedback after the visit (issue 18): the real binary (`plan`, `send --once --now`, `serve`)
//! against the simulator's WhatsApp and Twilio over real HTTP. A visit is asked about two hours
//! after it ends, in the clinic's local time and outside quiet hours, never when it was
//! cancelled or missed; a tapped score is stored once and thanked; words go to staff; a texted
//! digit scores too.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, SecondsFormat, TimeZone as _, Utc};
use chrono_tz::Tz;
use reminderd::sim::{Reply, Sim, SimConfig};
use serde_json::Value;

use crate::common::{Env, HEADER, Run, SMS_SECRETS, Wait, free_port, test_config};

const SECRET: &str = "app-secret-for-feedback";
const IST: Tz = chrono_tz::Asia::Kolkata;
const NY: Tz = chrono_tz::America::New_York;

/// The feedback rule, its template (five score buttons) and its Twilio text, as an
/// administrator would add them to the shipped config.
const FEEDBACK: &str = r#"
[[rules]]
name = "after-visit"
label = "After the visit"
kind = "feedback"
after = "2h"
latest = "1d"
template = "feedback"

[templates.feedback]
name = "visit_feedback"
params = ["patient.first_name", "clinic.name"]
buttons = ["feedback", "feedback", "feedback", "feedback", "feedback"]

[templates.feedback.languages.en]
body = "Hello {{1}}, how was your visit to {{2}} today? Tap a score from 1 (poor) to 5 (excellent)."
buttons = ["1", "2", "3", "4", "5"]

[sms.twilio.texts.feedback.en]
text = "{clinic}: {first_name}, how was your visit today? Reply with a digit from 1 (poor) to 5 (excellent)."
"#;

/// The shipped config with the feedback rule, the simulator's Twilio account, Twilio's
/// signatures over `url`, no stale-import hold, no spacing and no booking confirmations.
fn config(url: &str) -> String {
    let sid = SimConfig::default().twilio_account_sid;
    let shipped = test_config();
    let edits = [
        (
            "public_url = \"https://reminders.example.org\"",
            format!("public_url = \"{url}\""),
        ),
        (
            "account_sid = \"AC00000000000000000000000000000000\"",
            format!("account_sid = \"{sid}\""),
        ),
        (
            "recipient_spacing = \"6s\"",
            "recipient_spacing = \"0s\"".into(),
        ),
        (
            "enabled = true\ntemplate = \"booked\"",
            "enabled = false\ntemplate = \"booked\"".into(),
        ),
        (
            "max_import_age = \"36h\"",
            "max_import_age = \"3650d\"".into(),
        ),
    ];
    let edited = edits.iter().fold(shipped, |c, (from, to)| {
        assert!(
            c.contains(from),
            "the shipped config no longer has {from:?}"
        );
        c.replace(from, to)
    });
    // The rule goes before the first table after the shipped rules; the rest at the end.
    let (rule, rest) = FEEDBACK.split_at(FEEDBACK.find("[templates.feedback]").expect("template"));
    let at = edited
        .find("# A confirmation sent when")
        .expect("rules end");
    format!("{}{rule}\n{}\n{rest}", &edited[..at], &edited[at..])
}

/// A local day `offset` days from today at a clinic in `zone`.
fn day(zone: Tz, offset: u64) -> NaiveDate {
    reminderd::time::Clock::System
        .now()
        .with_timezone(&zone)
        .date_naive()
        + Days::new(offset)
}

/// A local wall time at a clinic, as the UTC instant `--now` takes.
fn at(zone: Tz, date: NaiveDate, hm: &str) -> String {
    let t = chrono::NaiveTime::parse_from_str(hm, "%H:%M").expect("HH:MM");
    let local = zone.from_local_datetime(&date.and_time(t)).single();
    let utc = local.expect("not in a DST gap").with_timezone(&Utc);
    utc.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A 30-minute visit at Mumbai (ids starting `M`) or New York, reached as `channel` says.
fn row(id: &str, phone: &str, date: NaiveDate, time: &str, status: &str, channel: &str) -> String {
    let clinic = if id.starts_with('M') { "mumbai" } else { "nyc" };
    format!(
        "{id},P-{id},Asha {id},{phone},en,{date},{time},30,Dr. Chen,{clinic},{status},{channel}"
    )
}

/// A test folder, the simulator and `reminderd serve` receiving its webhooks.
struct Flow {
    env: Arc<Env>,
    sim: Sim,
    serve: Child,
}

impl Drop for Flow {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

impl Flow {
    async fn start() -> Self {
        let env = Env::new();
        let url = format!("http://127.0.0.1:{}", free_port());
        let text = config(&url);
        env.write_config(&text);
        let parsed = reminderd::config::Config::from_toml(&text, &env.path("reminders.toml"))
            .expect("the feedback config is valid");
        let sim = Sim::start(SimConfig {
            phone_number_id: "106540352242922".into(),
            waba_id: "102290129340398".into(),
            access_token: "tok".into(),
            templates: reminderd::sim::templates_from_config(&parsed),
            webhook_url: Some(format!("{url}/webhook")),
            app_secret: Some(SECRET.into()),
            pair_limit: None,
            status_delay: Duration::from_millis(10),
            twilio_inbound_url: Some(format!("{url}/twilio/inbound")),
            ..SimConfig::default()
        })
        .await
        .expect("sim");
        let log = std::fs::File::create(env.path("serve.log")).expect("log");
        let serve = Command::new(env!("CARGO_BIN_EXE_reminderd"))
            .arg("--config")
            .arg(env.path("reminders.toml"))
            .args(["serve", "--listen", url.trim_start_matches("http://")])
            .env_remove("REMINDERD_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("RUST_LOG", "info")
            .envs(SMS_SECRETS)
            .envs(Self::envs(&sim))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        let f = Self {
            env: Arc::new(env),
            sim,
            serve,
        };
        let http = reqwest::Client::new();
        Wait::new("serve to start", Duration::from_secs(20))
            .context(|| f.log())
            .until_async(async || {
                let r = http.get(format!("{url}/healthz")).send().await;
                r.is_ok_and(|r| r.status() == 200)
            })
            .await;
        f
    }

    fn envs(sim: &Sim) -> Vec<(&'static str, String)> {
        vec![
            ("REMINDERD_API_BASE", sim.base_url()),
            ("WHATSAPP_ACCESS_TOKEN", "tok".into()),
            ("WHATSAPP_APP_SECRET", SECRET.into()),
            ("WHATSAPP_VERIFY_TOKEN", "verify".into()),
        ]
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.env.path("serve.log")).unwrap_or_default()
    }

    async fn run(&self, args: &[&str]) -> Run {
        let env = Arc::clone(&self.env);
        let envs = Self::envs(&self.sim);
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.run_with_env(&args, &envs)
        })
        .await
        .expect("join")
    }

    async fn plan_send(&self, now: &str) -> Value {
        self.run(&["plan", "--now", now]).await.expect(0);
        self.run(&["send", "--once", "--now", now, "--json"])
            .await
            .expect(0)
            .json()
    }

    async fn wait(&self, what: &str, probe: impl FnMut() -> bool) {
        Wait::new(what, Duration::from_secs(15))
            .every(Duration::from_millis(25))
            .context(|| self.log())
            .until(probe)
            .await;
    }
}

/// Imports rows under the default header plus the channel column.
fn import(env: &Env, rows: &[String]) {
    let file = format!("{HEADER},channel\n{}\n", rows.join("\n"));
    env.import("day.csv", &file, &[]).expect(0);
}

/// One text column of one row (`None` when there is no row).
fn text(env: &Env, sql: &str) -> Option<String> {
    use reminderd::store::sql::OptionalExtension as _;
    env.sql()
        .query_row(sql, (), |r| r.get(0))
        .optional()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The feedback request of `appointment`, as (state, send time as UTC, reason).
fn request(env: &Env, appointment: &str) -> Option<(String, String, Option<String>)> {
    let sql = format!(
        "SELECT o.state, o.send_at, o.reason FROM outbox o
         JOIN appointments a ON a.id = o.appointment_id WHERE a.external_id = '{appointment}' AND o.kind = 'feedback'"
    );
    env.sql()
        .query_row(&sql, (), |r| {
            let at = chrono::DateTime::from_timestamp(r.get(1)?, 0).expect("instant");
            Ok((
                r.get(0)?,
                at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                r.get(2)?,
            ))
        })
        .ok()
}

fn score(env: &Env, appointment: &str) -> Option<i64> {
    let sql = format!(
        "SELECT f.score FROM feedback f JOIN appointments a ON a.id = f.appointment_id WHERE a.external_id = '{appointment}'"
    );
    env.sql().query_row(&sql, (), |r| r.get(0)).ok()
}

#[test]
fn a_visit_is_asked_about_two_hours_after_it_ends_in_local_time_and_never_if_cancelled_or_missed() {
    let env = Env::new();
    env.write_config(config("https://reminders.example.org"));
    let d = day(IST, 2);
    import(
        &env,
        &[
            row("M1", "98200 10001", d, "10:00", "booked", ""),
            row("M2", "98200 10002", d, "19:30", "booked", ""),
            row("M3", "98200 10003", d, "10:00", "cancelled", ""),
            row("M4", "98200 10004", d, "11:00", "booked", ""),
        ],
    );
    let plan =
        |hm: &str, date: NaiveDate| env.run(&["plan", "--now", &at(IST, date, hm)]).expect(0);
    // 10:00–10:30 IST: due at 12:30 IST, not a minute before.
    plan("12:29", d);
    assert_eq!(request(&env, "M1"), None);
    plan("12:30", d);
    assert_eq!(
        request(&env, "M1"),
        Some(("pending".into(), at(IST, d, "12:30"), None))
    );
    assert_eq!(request(&env, "M3"), None, "cancelled: never asked");
    // Staff mark the visit as completed while its request waits: it still goes.
    env.run(&["set-status", "M1", "completed"]).expect(0);
    assert_eq!(request(&env, "M1").map(|r| r.0).as_deref(), Some("pending"));
    // M4 is marked as a no-show before its request is due: never asked.
    env.sql()
        .execute(
            "UPDATE appointments SET status = 'no_show' WHERE external_id = 'M4'",
            (),
        )
        .expect("no-show");
    plan("13:30", d);
    assert_eq!(request(&env, "M4"), None, "no-show: never asked");
    // 19:30–20:00 IST: 22:00 is quiet (21:00–08:00), so it waits for 08:00 the next morning.
    plan("22:00", d);
    assert_eq!(request(&env, "M2"), None, "not at night");
    plan("08:00", d + Days::new(1));
    assert_eq!(
        request(&env, "M2"),
        Some(("pending".into(), at(IST, d + Days::new(1), "08:00"), None))
    );
    // The administrator previews the request as Asha M1 will read it.
    let preview = env
        .run(&["preview", "M1", "--rule", "after-visit"])
        .expect(0)
        .stdout;
    assert!(
        preview.contains("Hello Asha, how was your visit to Sunrise Family Clinic, Andheri today?")
            && preview.contains("\"payload\": \"score:5:0\""),
        "{preview}"
    );
    // Planned again: still one request per visit.
    plan("09:00", d + Days::new(1));
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE kind = 'feedback'"),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tapped_score_is_stored_once_and_thanked_and_words_after_it_go_to_staff() {
    const ASHA: &str = "+919820010001";
    let f = Flow::start().await;
    let d = day(IST, 1);
    import(
        &f.env,
        &[
            row("M1", "98200 10001", d, "10:00", "booked", ""),
            row("M2", "98200 10002", d, "10:30", "booked", ""),
        ],
    );
    // Staff marked M1 as completed on the day board: it is asked about like a booked one.
    f.env
        .sql()
        .execute(
            "UPDATE appointments SET status = 'completed' WHERE external_id = 'M1'",
            (),
        )
        .expect("completed");
    f.run(&["plan", "--now", &at(IST, d, "13:00")])
        .await
        .expect(0);
    // M2 was marked as a no-show after its request was planned: skipped at send time.
    f.env
        .sql()
        .execute(
            "UPDATE appointments SET status = 'no_show' WHERE external_id = 'M2'",
            (),
        )
        .expect("no-show");
    let sent = f.plan_send(&at(IST, d, "13:00")).await;
    assert_eq!(sent["sent"], 1, "{sent}");
    let (state, _, reason) = request(&f.env, "M2").expect("M2's request");
    assert_eq!(
        (state.as_str(), reason.as_deref()),
        (
            "skipped",
            Some("the patient did not come (marked as a no-show)")
        )
    );

    let msg = f
        .sim
        .messages()
        .into_iter()
        .find(|m| m.body["to"] == ASHA)
        .expect("the request reached Asha");
    assert_eq!(msg.body["template"]["name"], "visit_feedback");
    let id = msg.body["biz_opaque_callback_data"]
        .as_str()
        .expect("callback")
        .to_string();
    let payloads: Vec<String> = msg.body["template"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["type"] == "button")
        .map(|c| {
            c["parameters"][0]["payload"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        payloads,
        (1..=5)
            .map(|n| format!("score:{n}:{id}"))
            .collect::<Vec<_>>()
    );

    // Asha taps 4.
    let tap = |n: u8| Reply::Button {
        from: ASHA.into(),
        payload: format!("score:{n}:{id}"),
        text: n.to_string(),
        context_id: Some(msg.wamid.clone()),
    };
    f.sim.reply(tap(4)).await.expect("tap");
    f.wait("the score to be stored", || score(&f.env, "M1") == Some(4))
        .await;
    let thanks =
        text(&f.env, "SELECT params FROM outbox WHERE kind = 'reply_ack'").expect("thanks queued");
    assert!(
        thanks.contains("Thank you for your feedback, Asha."),
        "{thanks}"
    );
    assert_eq!(
        text(&f.env, "SELECT intent || ' ' || outcome FROM replies").as_deref(),
        Some("feedback applied")
    );

    // A second tap is thanked, and the first score stays.
    f.sim.reply(tap(1)).await.expect("tap again");
    f.wait("the second tap to be recorded", || {
        f.env.count("SELECT count(*) FROM replies") == 2
    })
    .await;
    assert_eq!(score(&f.env, "M1"), Some(4), "the first score counts");
    assert_eq!(f.env.count("SELECT count(*) FROM feedback"), 1);
    assert_eq!(
        f.env
            .count("SELECT count(*) FROM outbox WHERE kind = 'reply_ack'"),
        2
    );
    let again = text(
        &f.env,
        "SELECT reason FROM replies ORDER BY id DESC LIMIT 1",
    )
    .unwrap_or_default();
    assert!(again.contains("already scored 4 of 5"), "{again}");

    // Words after it are a comment for staff, not a score.
    f.sim
        .reply(Reply::Text {
            from: ASHA.into(),
            body: "The doctor was very kind, thank you".into(),
            context_id: None,
        })
        .await
        .expect("comment");
    f.wait("the comment to be recorded", || {
        f.env.count("SELECT count(*) FROM replies") == 3
    })
    .await;
    let staff = f
        .run(&["replies", "--needs-staff", "--json"])
        .await
        .expect(0)
        .json();
    let texts: Vec<&str> = staff
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert_eq!(texts, ["The doctor was very kind, thank you"], "{staff}");
    assert_eq!(score(&f.env, "M1"), Some(4));

    // The evaluation report counts her score once: one answer, a 4 (too few for an average).
    let day = d.format("%Y-%m-%d").to_string();
    let report = f
        .run(&["report", "--from", &day, "--to", &day, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(report["feedback"]["scored"], 1, "{report}");
    assert_eq!(report["feedback"]["enough"], false, "{report}");
    assert_eq!(
        report["feedback"]["scores"],
        serde_json::json!([0, 0, 0, 1, 0]),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_texted_digit_scores_the_visit_the_text_asked_about() {
    const LENA: &str = "+12125550177";
    let f = Flow::start().await;
    let d = day(NY, 1);
    import(
        &f.env,
        &[row("N1", "(212) 555-0177", d, "09:00", "booked", "sms")],
    );
    f.plan_send(&at(NY, d, "11:30")).await;
    let texts: Vec<_> = f
        .sim
        .sms_messages()
        .into_iter()
        .filter(|m| m.to == LENA)
        .collect();
    assert_eq!(texts.len(), 1, "{:#?}", f.sim.sms_messages());
    assert!(
        texts[0]
            .body
            .contains("Reply with a digit from 1 (poor) to 5 (excellent)"),
        "{}",
        texts[0].body
    );
    f.sim.sms_reply(LENA, "5").await.expect("reply");
    f.wait("the texted score to be stored", || {
        score(&f.env, "N1") == Some(5)
    })
    .await;
    assert_eq!(
        text(&f.env, "SELECT channel || ' ' || intent FROM replies").as_deref(),
        Some("sms feedback")
    );
    assert_eq!(
        text(&f.env, "SELECT channel FROM feedback").as_deref(),
        Some("sms")
    );
    assert_eq!(
        f.env.appointment("N1")["response"],
        "none",
        "a 5 is not an answer to a reminder"
    );
}
