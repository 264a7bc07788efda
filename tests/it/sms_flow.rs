//! SMS end to end (issue 14's "Done means"): the real binary (`plan`, `send --once --now`,
//! `serve`) against the simulator's WhatsApp, Twilio and MSG91 over real HTTP; what patients,
//! caregivers and staff would notice: what reached the simulator, what is stored.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, SecondsFormat, TimeZone as _, Utc};
use chrono_tz::Tz;
use reminderd::sim::{Fault, Sim, SimConfig, SimSms};
use serde_json::Value;

use crate::common::{Env, HEADER, Run, SMS_SECRETS, Wait, free_port, sim_config, test_config};

const SECRET: &str = "app-secret-for-sms-flow";
const TWILIO_TOKEN: &str = "sim-twilio-token";
const NY: Tz = chrono_tz::America::New_York;
const IST: Tz = chrono_tz::Asia::Kolkata;
/// Reach columns left empty: WhatsApp, to the patient.
const PLAIN: &str = ",,,,";

/// `text` with `from` replaced by `to`; panics when `from` is not there, so a changed shipped
/// config fails loudly instead of leaving a test on the wrong settings.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the config no longer has {from:?}");
    text.replacen(from, to, 1)
}

/// The shipped config for one test: Twilio's signatures over the `serve` address, the
/// simulator's account, no stale-import hold, no spacing, no booking confirmations (each test
/// is about one rule's messages).
fn flow_config(url: &str) -> String {
    let sid = SimConfig::default().twilio_account_sid;
    [
        (
            "public_url = \"https://reminders.example.org\"",
            format!("public_url = \"{url}\""),
        ),
        (
            "account_sid = \"AC00000000000000000000000000000000\"",
            format!("account_sid = \"{sid}\""),
        ),
        (
            "rate_limit_per_sec = 1\n",
            "rate_limit_per_sec = 50\n".into(),
        ),
        (
            "recipient_spacing = \"6s\"",
            "recipient_spacing = \"0s\"".into(),
        ),
        (
            "request_timeout = \"15s\"",
            "request_timeout = \"5s\"".into(),
        ),
        (
            "enabled = true\ntemplate = \"booked\"",
            "enabled = false\ntemplate = \"booked\"".into(),
        ),
    ]
    .iter()
    .fold(test_config(), |c, (from, to)| edit(&c, from, to))
    .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
}

/// A test folder, the simulator and `reminderd serve` receiving its webhooks.
struct Flow {
    env: Arc<Env>,
    sim: Sim,
    serve: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Flow {
    fn drop(&mut self) {
        let _ = self.serve.kill();
        let _ = self.serve.wait();
    }
}

impl Flow {
    async fn start() -> Self {
        Self::start_with_status_delay(Duration::from_millis(10)).await
    }

    /// As `start`, with the simulator's statuses this long after each send. A test whose
    /// `send --once` must end before a status arrives needs a delay: the command sends what
    /// becomes due while it runs, and `serve` keeps the real clock, so a row a status makes due
    /// is due at once for a command living days ahead (`--now`).
    async fn start_with_status_delay(status_delay: Duration) -> Self {
        let env = Env::new();
        let url = format!("http://127.0.0.1:{}", free_port());
        env.write_config(flow_config(&url));
        let sim = Sim::start(SimConfig {
            webhook_url: Some(format!("{url}/webhook")),
            app_secret: Some(SECRET.into()),
            pair_limit: None,
            status_delay,
            twilio_inbound_url: Some(format!("{url}/twilio/inbound")),
            msg91_report_url: Some(format!(
                "{url}/msg91/report?token=msg91-webhook-token-for-tests"
            )),
            ..sim_config("tok")
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
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let f = Self {
            env: Arc::new(env),
            sim,
            serve,
            url,
            http,
        };
        Wait::new("serve to start", Duration::from_secs(20))
            .context(|| f.log())
            .until_async(async || {
                let r = f.http.get(format!("{}/healthz", f.url)).send().await;
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

    /// Runs the binary off the runtime's threads, with the simulator's addresses.
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

    async fn send(&self, now: &str) -> Value {
        self.run(&["send", "--once", "--now", now, "--json"])
            .await
            .expect(0)
            .json()
    }

    async fn plan_send(&self, now: &str) -> Value {
        self.run(&["plan", "--now", now]).await.expect(0);
        self.send(now).await
    }

    /// Imports rows under the default header plus the reach columns.
    fn import(&self, rows: &[String]) {
        let mut file =
            format!("{HEADER},channel,remind,contact_name,contact_phone,contact_relation\n");
        for r in rows {
            file.push_str(r);
            file.push('\n');
        }
        self.env.import("day.csv", &file, &[]).expect(0);
    }

    fn outbox(&self, appointment: &str) -> Vec<Value> {
        let all = self.env.run(&["outbox", "--json"]).expect(0).json();
        let all = all.as_array().expect("array").clone();
        all.into_iter()
            .filter(|o| o["appointment_id"] == appointment)
            .collect()
    }

    /// The one outbox row of `appointment` on `channel`.
    fn row(&self, appointment: &str, channel: &str) -> Value {
        let rows: Vec<Value> = self
            .outbox(appointment)
            .into_iter()
            .filter(|o| o["channel"] == channel)
            .collect();
        assert_eq!(rows.len(), 1, "{channel} rows of {appointment}: {rows:#?}");
        rows[0].clone()
    }

    /// WhatsApp messages the simulator accepted for `number`.
    fn whatsapp_to(&self, number: &str) -> Vec<Value> {
        let msgs = self.sim.messages().into_iter().map(|m| m.body);
        msgs.filter(|b| b["to"] == number).collect()
    }

    /// Texts Twilio accepted for `number`.
    fn sms_to(&self, number: &str) -> Vec<SimSms> {
        let msgs = self.sim.sms_messages().into_iter();
        msgs.filter(|m| m.to == number).collect()
    }

    fn one(&self, sql: &str) -> Option<i64> {
        self.env
            .sql()
            .query_row(sql, (), |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `follow-ups --json` for New York on `date`.
    fn to_call(&self, date: NaiveDate) -> Vec<Value> {
        let date = date.to_string();
        let args = ["follow-ups", "--clinic", "nyc", "--date", &date, "--json"];
        let r = self.env.run(&args).expect(0).json();
        r.as_array().expect("array").clone()
    }

    /// Waits for `probe`, showing serve's log if it never holds.
    async fn wait(&self, what: &str, probe: impl FnMut() -> bool) {
        Wait::new(what, Duration::from_secs(15))
            .every(Duration::from_millis(25))
            .context(|| self.log())
            .until(probe)
            .await;
    }

    /// Waits until `appointment`'s stored `field` reads `value`.
    async fn wait_appointment(&self, appointment: &str, field: &str, value: &str) {
        let what = format!("{appointment}'s {field} to become {value}");
        self.wait(&what, || self.env.appointment(appointment)[field] == value)
            .await;
    }

    /// A signed or unsigned Twilio form post to serve; the answer's status.
    async fn twilio_post(&self, path: &str, form: &[(&str, &str)], sig: Option<&str>) -> u16 {
        let mut req = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some(s) = sig {
            req = req.header("X-Twilio-Signature", s);
        }
        req.send().await.expect("post").status().as_u16()
    }
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

fn before(date: NaiveDate) -> NaiveDate {
    date - Days::new(1)
}

/// A schedule row: `reach` is "channel,remind,contact_name,contact_phone,contact_relation".
fn row(id: &str, name: &str, phone: &str, date: NaiveDate, time: &str, reach: &str) -> String {
    let clinic = if id.starts_with('M') { "mumbai" } else { "nyc" };
    format!("{id},P-{id},{name},{phone},en,{date},{time},30,Dr. Chen,{clinic},booked,{reach}")
}

#[tokio::test(flavor = "multi_thread")]
async fn not_on_whatsapp_gets_exactly_one_text_after_quiet_hours_and_texts_from_then_on() {
    const CARLOS: &str = "+12125550101";
    let f = Flow::start_with_status_delay(Duration::from_secs(2)).await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Carlos Ruiz",
        "(212) 555-0101",
        d,
        "14:00",
        PLAIN,
    )]);
    f.sim.fail_later(CARLOS, 131_026);
    let sent = f.plan_send(&at(NY, before(d), "14:00")).await;
    assert_eq!(sent["sent"], 1, "{sent}");
    assert_eq!(f.whatsapp_to(CARLOS).len(), 1);

    // WhatsApp's failure arrives by webhook; an SMS row replaces the message.
    f.wait("the fallback SMS row", || {
        f.outbox("N1").iter().any(|o| o["channel"] == "sms")
    })
    .await;
    let wa = f.row("N1", "whatsapp");
    assert_eq!(wa["state"], "failed", "{wa}");
    assert!(
        wa["last_error"].as_str().unwrap_or("").contains("131026"),
        "{wa}"
    );
    assert_eq!(
        wa["needs_staff"],
        Value::Null,
        "a text replaces it: nobody needs to call"
    );

    // 22:00 in New York is quiet: the text waits.
    let night = f.send(&at(NY, before(d), "22:00")).await;
    assert!(f.sim.sms_messages().is_empty(), "texted at night: {night}");
    assert_eq!(f.row("N1", "sms")["state"], "pending");

    // Next morning it goes, once; sending again adds nothing.
    f.send(&at(NY, d, "08:30")).await;
    f.send(&at(NY, d, "08:45")).await;
    let texts = f.sms_to(CARLOS);
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0]
            .body
            .starts_with("Hudson Street Medical, New York: reminder for Carlos, appointment on"),
        "{}",
        texts[0].body
    );
    let sms = f.row("N1", "sms");
    assert!(
        ["sent", "delivered"].contains(&sms["state"].as_str().unwrap_or("")),
        "{sms}"
    );
    assert_eq!(f.sim.messages().len(), 1, "no second WhatsApp attempt");
    assert!(
        f.to_call(d).iter().all(|c| c["appointment_id"] != "N1"),
        "texted: no call needed"
    );

    // The number is learned as SMS-only for about 90 days, and staff can see why.
    let until = f
        .one(&format!(
            "SELECT sms_only_until FROM numbers WHERE phone = '{CARLOS}'"
        ))
        .expect("sms_only_until");
    let days = (until - reminderd::time::Clock::System.now().timestamp()) as f64 / 86_400.0;
    assert!((89.9..=90.1).contains(&days), "{days} days");
    let learned =
        "SELECT count(*) FROM audit_log WHERE action = 'channel_learned' AND new_value = 'sms'";
    assert_eq!(f.one(learned), Some(1));

    // The same-day rule's message goes by text directly.
    f.plan_send(&at(NY, d, "12:00")).await;
    let same_day: Vec<Value> = f
        .outbox("N1")
        .into_iter()
        .filter(|o| o["rule"] == "same-day")
        .collect();
    assert_eq!(same_day.len(), 1, "{same_day:#?}");
    assert_eq!(same_day[0]["channel"], "sms");
    assert_eq!(f.sms_to(CARLOS).len(), 2);
    assert_eq!(
        f.whatsapp_to(CARLOS).len(),
        1,
        "WhatsApp is not tried again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blocked_on_whatsapp_at_send_time_gets_one_text_through_msg91() {
    let f = Flow::start().await;
    let d = day(IST, 3);
    f.import(&[row("M1", "Diya Kulkarni", "98200 11111", d, "11:00", PLAIN)]);
    f.sim.push_fault(Fault::Error {
        code: 130_403,
        http_status: 400,
    });
    f.plan_send(&at(IST, before(d), "11:00")).await;
    f.send(&at(IST, before(d), "11:01")).await;
    f.send(&at(IST, before(d), "11:05")).await;
    let texts: Vec<_> = f
        .sim
        .msg91_messages()
        .into_iter()
        .filter(|m| m.mobiles == "919820011111")
        .collect();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0]
            .text
            .starts_with("Dear Diya, your appointment at Sunrise Family Clinic, Andheri is on"),
        "{}",
        texts[0].text
    );
    assert!(f.whatsapp_to("+919820011111").is_empty());
    let wa = f.row("M1", "whatsapp");
    assert_eq!(wa["state"], "failed", "{wa}");
    assert_eq!(wa["needs_staff"], Value::Null);
    let sms = f.row("M1", "sms");
    assert!(
        ["sent", "delivered"].contains(&sms["state"].as_str().unwrap_or("")),
        "{sms}"
    );
    // A patient who blocked the clinic gets no more WhatsApp (issue 16): texts from then on,
    // until WhatsApp is tried again after `retry_whatsapp_after`.
    assert_eq!(
        f.one("SELECT count(*) FROM numbers WHERE sms_only_until IS NOT NULL"),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_whatsapp_and_the_text_both_fail_staff_see_one_call_with_both_reasons() {
    const CARLOS: &str = "+12125550101";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Carlos Ruiz",
        "(212) 555-0101",
        d,
        "14:00",
        PLAIN,
    )]);
    f.sim.fail_later(CARLOS, 131_026);
    // Twilio's reason for 30001 has a comma in it.
    f.sim.sms_fail_number(CARLOS, 30_001, false);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    f.wait("the fallback SMS row", || {
        f.outbox("N1").iter().any(|o| o["channel"] == "sms")
    })
    .await;
    f.send(&at(NY, before(d), "14:05")).await;
    assert_eq!(f.sms_to(CARLOS).len(), 1);
    f.wait("the text's failure", || {
        f.row("N1", "sms")["state"] == "failed"
    })
    .await;
    let calls = f.to_call(d);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let reasons = calls[0]["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 1, "one call, one reason: {reasons:#?}");
    let reason = reasons[0].as_str().unwrap_or("");
    assert!(
        reason.starts_with("WhatsApp could not deliver it (131026: ")
            && reason.contains("the text failed too ("),
        "{reason}"
    );
    assert!(
        reason.contains("so this one was dropped): call them"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn channel_sms_is_texted_never_whatsapped_and_channel_none_gets_nothing() {
    const MARIA: &str = "+16465550199";
    const GOPAL: &str = "+16465550188";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[
        row(
            "N1",
            "Maria Gonzalez",
            "(646) 555-0199",
            d,
            "14:00",
            "sms,,,,",
        ),
        row("N2", "Gopal Rao", "(646) 555-0188", d, "14:00", "none,,,,"),
    ]);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    f.plan_send(&at(NY, d, "12:00")).await;
    assert!(f.whatsapp_to(MARIA).is_empty());
    let texts = f.sms_to(MARIA);
    assert_eq!(texts.len(), 2, "both rules, by text: {texts:#?}");
    assert!(
        texts[0].body.contains("reminder for Maria"),
        "{}",
        texts[0].body
    );
    assert!(f.outbox("N1").iter().all(|o| o["channel"] == "sms"));

    assert!(f.whatsapp_to(GOPAL).is_empty());
    assert!(f.sms_to(GOPAL).is_empty());
    assert!(f.outbox("N2").is_empty(), "{:#?}", f.outbox("N2"));
    // Gopal gets no message at all, so staff must call him.
    let calls = f.to_call(d);
    let gopal = calls
        .iter()
        .find(|c| c["appointment_id"] == "N2")
        .unwrap_or_else(|| panic!("Gopal is on the call list: {calls:#?}"));
    assert!(
        gopal["reasons"]
            .to_string()
            .contains("no automated messages"),
        "{gopal}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caregiver_is_reminded_by_name_and_their_1_confirms_the_patients_appointment() {
    const LILY: &str = "+19175550122";
    const WEI: &str = "+19175550133";
    const LEO: &str = "+19175550155";
    const ANA: &str = "+19175550144";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[
        row(
            "N1",
            "Lily Chen",
            "(917) 555-0122",
            d,
            "14:00",
            "sms,contact,Wei Chen,(917) 555-0133,father",
        ),
        row(
            "N2",
            "Leo Park",
            "(917) 555-0155",
            d,
            "15:00",
            ",caregiver,Ana Park,(917) 555-0144,mother",
        ),
    ]);
    f.plan_send(&at(NY, before(d), "15:00")).await;

    // By text: the caregiver, named, reminded of the child's appointment.
    let texts = f.sms_to(WEI);
    assert_eq!(texts.len(), 1, "{:#?}", f.sim.sms_messages());
    assert!(
        texts[0].body.starts_with(
            "Hudson Street Medical, New York: Wei Chen, reminder of Lily's appointment on"
        ),
        "{}",
        texts[0].body
    );
    assert!(f.sms_to(LILY).is_empty() && f.whatsapp_to(LILY).is_empty());
    assert!(f.whatsapp_to(WEI).is_empty());

    // By WhatsApp: the caregiver template, to the caregiver's number.
    let wa = f.whatsapp_to(ANA);
    assert_eq!(wa.len(), 1, "{:#?}", f.sim.messages());
    let t = &wa[0]["template"];
    assert_eq!(t["name"], "appointment_reminder_caregiver");
    let params = &t["components"][0]["parameters"];
    assert_eq!(
        (&params[0]["text"], &params[1]["text"]),
        (&"Ana Park".into(), &"Leo".into())
    );
    assert!(f.whatsapp_to(LEO).is_empty() && f.sms_to(LEO).is_empty());

    // Wei answers "1": Lily's appointment is confirmed.
    f.sim.sms_reply(WEI, "1").await.expect("reply");
    f.wait_appointment("N1", "response", "confirmed").await;
    assert_eq!(f.env.appointment("N2")["response"], "none");
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_or_forged_twilio_webhooks_are_refused_and_nothing_is_stored() {
    const MARIA: &str = "+16465550199";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Maria Gonzalez",
        "(646) 555-0199",
        d,
        "14:00",
        "sms,,,,",
    )]);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    // Let the simulator's signed status callbacks land first.
    f.wait("the text's delivery", || {
        f.row("N1", "sms")["state"] == "delivered"
    })
    .await;
    let events = "SELECT count(*) FROM inbound_events";
    let replies = "SELECT count(*) FROM replies";
    let (events_before, replies_before) = (f.one(events), f.one(replies));

    let sid = SimConfig::default().twilio_account_sid;
    let inbound = [
        ("AccountSid", sid.as_str()),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("From", MARIA),
        ("To", "+12125550199"),
        ("Body", "1"),
        ("NumMedia", "0"),
    ];
    let sms = f.sim.sms_messages();
    let status = [
        ("AccountSid", sid.as_str()),
        ("MessageSid", sms[0].sid.as_str()),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    let sign = |path: &str, form: &[(&str, &str)], url: &str, token: &str| {
        let params: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        reminderd::sms::twilio::signature(&format!("{url}{path}"), &params, token.as_bytes())
    };
    for (path, form) in [
        ("/twilio/inbound", &inbound[..]),
        ("/twilio/status", &status[..]),
    ] {
        assert_eq!(
            f.twilio_post(path, form, None).await,
            400,
            "{path} unsigned"
        );
        let garbage = f
            .twilio_post(path, form, Some("bm90IGEgc2lnbmF0dXJl"))
            .await;
        assert_eq!(garbage, 403, "{path} forged");
        let wrong_token = sign(path, form, &f.url, "not-the-token");
        assert_eq!(f.twilio_post(path, form, Some(&wrong_token)).await, 403);
        let other_url = sign(path, form, "https://attacker.example", TWILIO_TOKEN);
        assert_eq!(f.twilio_post(path, form, Some(&other_url)).await, 403);
    }
    assert_eq!(f.one(events), events_before, "nothing stored");
    assert_eq!(f.one(replies), replies_before);
    assert_eq!(f.env.appointment("N1")["response"], "none");
    assert_eq!(f.row("N1", "sms")["state"], "delivered");

    // The same reply, signed as Twilio signs it, is taken: the refusals were the signature's.
    let good = sign("/twilio/inbound", &inbound, &f.url, TWILIO_TOKEN);
    assert_eq!(
        f.twilio_post("/twilio/inbound", &inbound, Some(&good))
            .await,
        200
    );
    f.wait_appointment("N1", "response", "confirmed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_texted_2_cancels_the_appointment() {
    const MARIA: &str = "+16465550199";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Maria Gonzalez",
        "(646) 555-0199",
        d,
        "14:00",
        "sms,,,,",
    )]);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    assert_eq!(f.sms_to(MARIA).len(), 1);
    f.sim.sms_reply(MARIA, "2").await.expect("reply");
    f.wait_appointment("N1", "status", "cancelled").await;
    assert_eq!(f.env.appointment("N1")["cancelled_by"], "patient");
    let applied = "SELECT count(*) FROM replies WHERE outcome = 'applied'";
    assert_eq!(f.one(applied), Some(1));
    // The same-day reminder is not sent for a cancelled appointment.
    f.plan_send(&at(NY, d, "12:00")).await;
    assert_eq!(f.sms_to(MARIA).len(), 1);
}

/// Every `[sms.*.texts]` text of the shipped config, rendered for each clinic that uses its
/// provider, in every language, over a year of dates.
#[test]
fn no_text_the_example_config_can_produce_names_an_opt_out_keyword() {
    let config = reminderd::config::Config::example().expect("the shipped config");
    let sms = config.sms.as_ref().expect("[sms]");
    let mut rendered = 0;
    for clinic in config.clinics.values() {
        let Some(provider) = clinic.sms_provider else {
            continue;
        };
        let cap = (provider == reminderd::sms::Provider::Msg91)
            .then_some(reminderd::config::DLT_VARIABLE_CAP);
        for (key, text) in sms.texts(provider).expect("the provider's texts") {
            for language in text.languages.keys() {
                for month in 0..12 {
                    let starts_at = Utc
                        .with_ymd_and_hms(2027, 1, 4, 15, 30, 0)
                        .single()
                        .expect("date")
                        + chrono::Duration::days(month * 31);
                    let input = reminderd::template::Input {
                        clinic,
                        patient_name: "Maria José Ruiz",
                        patient_language: language,
                        starts_at,
                        provider: Some("Dr. Chen"),
                        outbox_id: 7,
                        contact_name: Some("Ana Ruiz"),
                        prep_note: None,
                    };
                    let r = reminderd::template::render_sms(key, text, &input, cap)
                        .unwrap_or_else(|e| panic!("{provider} {key}.{language}: {e}"));
                    assert_eq!(&r.language, language);
                    let words: Vec<&str> = r.text.split(|c: char| !c.is_alphanumeric()).collect();
                    for keyword in [
                        "CANCEL",
                        "END",
                        "QUIT",
                        "STOPALL",
                        "UNSUBSCRIBE",
                        "OPTOUT",
                        "REVOKE",
                    ] {
                        assert!(
                            !words.contains(&keyword),
                            "{provider} {key}.{language}: {}",
                            r.text
                        );
                    }
                    rendered += 1;
                }
            }
        }
    }
    assert!(rendered >= 12 * 13, "only {rendered} texts rendered");
}

#[test]
fn check_config_refuses_a_twilio_text_that_asks_for_cancel() {
    let env = Env::new();
    let config = edit(
        &test_config(),
        "Reply 1 to confirm, 2 to cancel, 3 to change the time. STOP to opt out\"",
        "Reply 1 to confirm or CANCEL to cancel. STOP to opt out\"",
    );
    env.write_config(config);
    let r = env.run(&["check-config"]).expect(78);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("sms.twilio.texts.reminder.en"), "{out}");
    assert!(out.contains("CANCEL"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn twilio_21610_records_the_opt_out_and_later_texts_are_skipped() {
    const MARIA: &str = "+16465550199";
    let f = Flow::start().await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Maria Gonzalez",
        "(646) 555-0199",
        d,
        "14:00",
        "sms,,,,",
    )]);
    f.sim.sms_fail_number(MARIA, 21_610, true);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    assert!(f.sim.sms_messages().is_empty());
    let first = f.row("N1", "sms");
    assert_eq!(first["state"], "failed", "{first}");
    assert!(
        first["needs_staff"].as_str().is_some_and(|s| !s.is_empty()),
        "{first}"
    );
    let opted = format!(
        "SELECT count(*) FROM numbers WHERE phone = '{MARIA}' AND sms_opted_out_at IS NOT NULL"
    );
    assert_eq!(f.one(&opted), Some(1));

    f.plan_send(&at(NY, d, "12:00")).await;
    let later: Vec<Value> = f
        .outbox("N1")
        .into_iter()
        .filter(|o| o["rule"] == "same-day")
        .collect();
    assert_eq!(later.len(), 1, "{later:#?}");
    assert_eq!(later[0]["state"], "skipped", "{}", later[0]);
    assert!(
        later[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("opted out"),
        "{}",
        later[0]
    );
    assert!(f.sim.sms_messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn msg91_trims_a_long_name_and_a_template_mismatch_is_refused_before_sending() {
    let f = Flow::start().await;
    let d = day(IST, 3);
    let long = "Srinivasaraghavanvenkatakrishnan Iyer";
    f.import(&[
        row("M1", long, "98200 22222", d, "11:00", "sms,,,,"),
        row("M2", "Aarav Shah", "98200 33333", d, "15:00", "sms,,,,"),
    ]);
    f.plan_send(&at(IST, before(d), "11:00")).await;
    let got = f.sim.msg91_messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    let name = &got[0].variables[0];
    assert!(name.chars().count() <= 30, "{name}");
    assert!(
        long.starts_with(name.as_str()) && name.chars().count() >= 15,
        "{name}"
    );
    assert!(
        got[0].variables.iter().all(|v| v.chars().count() <= 30),
        "{:?}",
        got[0].variables
    );
    assert!(
        got[0]
            .text
            .starts_with(&format!("Dear {name}, your appointment")),
        "{}",
        got[0].text
    );
    assert!(!got[0].text.contains(long));

    // M2's text is planned; then its registration is changed so the text no longer matches.
    f.run(&["plan", "--now", &at(IST, before(d), "15:00")])
        .await
        .expect(0);
    let path = f.env.path("reminders.toml");
    let config = std::fs::read_to_string(&path).expect("config");
    let wrong = edit(
        &config,
        "registered = \"Dear {#var#}, your appointment at {#var#} is on {#var#} at {#var#}. To change it, call {#var#}.\"",
        "registered = \"Dear {#var#}, your visit at {#var#} is on {#var#} at {#var#}. To change it, call {#var#}.\"",
    );
    std::fs::write(&path, wrong).expect("config");
    let check = f.env.run(&["check-config"]).expect(78);
    let out = format!("{}{}", check.stdout, check.stderr);
    assert!(out.contains("sms.msg91.texts.reminder.en"), "{out}");
    let send = f
        .run(&["send", "--once", "--now", &at(IST, before(d), "15:00")])
        .await
        .expect(78);
    assert!(
        send.stderr.contains("sms.msg91.texts.reminder.en"),
        "{}",
        send.stderr
    );
    assert_eq!(
        f.sim.msg91_messages().len(),
        1,
        "nothing sent with a mismatched template"
    );
    std::fs::write(&path, config).expect("config");
    assert_eq!(f.row("M2", "sms")["state"], "pending");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_phone_out_of_reach_gets_its_text_once_more_then_staff_call() {
    const MARIA: &str = "+16465550199";
    let f = Flow::start_with_status_delay(Duration::from_secs(2)).await;
    let d = day(NY, 3);
    f.import(&[row(
        "N1",
        "Maria Gonzalez",
        "(646) 555-0199",
        d,
        "14:00",
        "sms,,,,",
    )]);
    // Twilio reports the text undelivered: the phone is off (30003), every time.
    f.sim.sms_fail_number(MARIA, 30_003, false);
    f.plan_send(&at(NY, before(d), "14:00")).await;
    f.wait("the first report", || {
        f.row("N1", "sms")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("30003"))
    })
    .await;
    let first = f.row("N1", "sms");
    assert_eq!(first["state"], "pending", "tried once more later: {first}");
    assert!(first["needs_staff"].is_null(), "{first}");
    assert_eq!(f.sms_to(MARIA).len(), 1);

    f.send(&at(NY, before(d), "14:20")).await;
    f.wait("the second report", || {
        f.row("N1", "sms")["state"] == "failed"
    })
    .await;
    assert_eq!(f.sms_to(MARIA).len(), 2, "one more try, no third");
    let second = f.row("N1", "sms");
    assert!(
        second["needs_staff"]
            .as_str()
            .is_some_and(|s| s.contains("call them")),
        "{second}"
    );
    f.send(&at(NY, before(d), "15:00")).await;
    assert_eq!(f.sms_to(MARIA).len(), 2);
}
