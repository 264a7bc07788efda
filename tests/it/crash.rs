//! Crash safety (DESIGN §2, "never twice, never lost"): the real daemon sends a couple of
//! thousand reminders, and reminders staff asked for ("Remind now", pressed before the run and
//! during it), to the simulator while this test kills it with SIGKILL at random moments
//! (seeded: `CRASH_SEED=n` replays a run) and restarts it. The simulator's log is the witness.
//! Some patients are not on WhatsApp: their reminders fail there (131026, by status webhook)
//! and go by text through the simulated MSG91, so kills also land while failures turn into
//! texts; each of them must get exactly one text. Some patients wrote to the clinic and staff
//! answered them (`reminderd reply`, before the run and during it): each answer is sent once.
//! Slots open for the waitlist (before the run and during it), so kills also land in offer
//! rounds: every offer is made once, and its message reaches the API exactly once. Some visits
//! ended a few hours ago and a feedback rule asks about them: feedback requests go through the
//! same dispatch, so kills land on them too, and each reaches the API exactly once. A second
//! test kills a daemon sending from two WhatsApp numbers (one clinic each).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reminderd::sim::{Sim, SimConfig};

use crate::common::{Env, Wait, csv, sim_config};

const SECRET: &str = "crash-test-secret";
const MESSAGES: usize = 2000;
const KILLS: usize = 12;
/// Reminders asked for before the run, due among the rules' reminders (one every `SPREAD`).
const PRESSED_BEFORE: usize = 13;
const SPREAD: usize = 150;
/// Reminders asked for while the daemon runs (at the sixth kill), due after everything else.
const PRESSED_DURING: usize = 2;
const MANUAL: usize = PRESSED_BEFORE + PRESSED_DURING;
/// Staff answers to patients who wrote: queued before the run (due among the reminders) and
/// during it (at the sixth kill).
const ANSWERED_BEFORE: [usize; 3] = [30, 430, 830];
const ANSWERED_DURING: usize = 33;
const STAFF: usize = ANSWERED_BEFORE.len() + 1;
/// Slots staff open for the waitlist before the run, and during it (at the sixth kill); each
/// is offered to one batch of 3 patients, each patient once (`max_offers` 1).
const OPENINGS_BEFORE: usize = 5;
const OPENINGS_DURING: usize = 5;
const OFFERS: usize = 3 * (OPENINGS_BEFORE + OPENINGS_DURING);
/// Visits that ended hours ago, each owed one feedback request (`after = "2h"`).
const VISITS: usize = 20;
const TOTAL: usize = MESSAGES + MANUAL + STAFF + OFFERS + VISITS;
/// One patient in this many is not on WhatsApp (never one staff press for).
const NOT_ON_WHATSAPP_EVERY: usize = 40;
/// The token of the MSG91 report URL (`SMS_SECRETS`).
const MSG91_TOKEN: &str = "msg91-webhook-token-for-tests";

/// The feedback rule and its template (five score buttons), added to the shipped config.
const FEEDBACK: &str = r#"
[[rules]]
name = "after-visit"
kind = "feedback"
after = "2h"
latest = "1d"
template = "feedback"
clinics = ["mumbai"]

[templates.feedback]
name = "visit_feedback"
params = ["patient.first_name", "clinic.name"]
buttons = ["feedback", "feedback", "feedback", "feedback", "feedback"]

[templates.feedback.languages.en]
body = "Hello {{1}}, how was your visit to {{2}} today? Tap a score from 1 (poor) to 5 (excellent)."
buttons = ["1", "2", "3", "4", "5"]
"#;

/// Whether patient `i` is one whose number is not on WhatsApp.
fn not_on_whatsapp(i: usize) -> bool {
    i % NOT_ON_WHATSAPP_EVERY == 17
}

/// Patient `i`'s number as MSG91 writes it.
fn mobile(i: usize) -> String {
    format!("9198{:08}", 10_000_000 + i)
}

/// The waitlisted patients: on WhatsApp, and none staff press for.
fn waiting() -> Vec<usize> {
    (1200..)
        .filter(|i| !not_on_whatsapp(*i) && i % SPREAD != SPREAD / 2)
        .take(OFFERS)
        .collect()
}

/// Staff open slot `k` (store call, as the desk's form does), earlier than every appointment
/// (they start 20 hours from now) and beyond the lead time.
fn open_slot(env: &Env, k: usize) {
    let now = reminderd::time::Clock::System.now();
    let start = now + chrono::Duration::hours(5) + chrono::Duration::minutes(k as i64);
    let mut store = env.store().expect("store");
    store
        .open_slot_by_staff("mumbai", (start, 15), None, "staff:crash", now)
        .expect("open a slot");
}

/// The test folder's config for a daemon killed again and again: fast ticks, `rate` a second,
/// short timeouts, an unknown send resent after 3 s (its status settles it otherwise), and no
/// booking confirmations.
pub(crate) fn crash_config(env: &Env, rate: u32) -> String {
    crate::common::fast_daemon(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
    )
    .replace(
        "rate_limit_per_sec = 80",
        &format!("rate_limit_per_sec = {rate}"),
    )
    .replace("request_timeout = \"15s\"", "request_timeout = \"2s\"")
    .replace("unknown_after = \"1h\"", "unknown_after = \"3s\"")
    .replace("unknown_action = \"staff\"", "unknown_action = \"resend\"")
    .replace("enabled = true", "enabled = false")
}

/// The run's seed: `$CRASH_SEED`, else one drawn from the process id (`salt` tells the tests
/// apart), printed so that a failing run can be replayed.
pub(crate) fn seed(test: &str, salt: u64) -> u64 {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761 % 1_000_003 + salt);
    println!("{test} seed: {seed} (replay with CRASH_SEED={seed})");
    seed
}

/// `count` Mumbai appointments `K<i>` starting 20 hours from now, a second apart, each with its
/// own patient `Q<i>` and number: their day-before reminders are due (four hours ago).
pub(crate) fn mumbai_rows(count: usize) -> Vec<String> {
    let now = reminderd::time::Clock::System.now();
    (0..count)
        .map(|i| {
            let start = (now + chrono::Duration::hours(20) + chrono::Duration::seconds(i as i64))
                .with_timezone(&chrono_tz::Asia::Kolkata);
            format!(
                "K{i},Q{i},Patient {i},98{:08},en,{},{},15,,mumbai,booked",
                10_000_000 + i,
                start.format("%Y-%m-%d"),
                start.format("%H:%M")
            )
        })
        .collect()
}

/// A small deterministic generator (xorshift), so a failing seed replays exactly.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn start(env: &Env, port: u16, api: &str, run: usize) -> Child {
    start_with(env, port, api, run, &[])
}

/// As [`start`], with `extra` in the daemon's environment (a number's own token).
pub(crate) fn start_with(
    env: &Env,
    port: u16,
    api: &str,
    run: usize,
    extra: &[(&str, &str)],
) -> Child {
    let log = std::fs::File::create(env.path(&format!("daemon-{run}.log"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_ACCESS_TOKEN", "tok")
        .envs(crate::common::SMS_SECRETS)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "verify")
        .env("REMINDERD_API_BASE", api)
        .envs(extra.iter().copied())
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start daemon")
}

/// `reminderd remind` for appointment `K<k>` (as of `at`, when given): one press.
fn press(env: &Env, k: usize, at: Option<&str>) {
    let id = format!("K{k}");
    let mut args = vec![
        "remind",
        "--clinic",
        "mumbai",
        "--appointment",
        &id,
        "--json",
    ];
    if let Some(at) = at {
        args.extend(["--now", at]);
    }
    let r = env.run(&args).expect(0).json();
    assert_eq!(r["appointment"], id.as_str());
}

/// Patient `Q<i>` writes to the clinic (a stored WhatsApp message `ago` seconds old), and staff
/// answer with `reminderd reply`; the answer's outbox row.
fn answer(env: &Env, i: usize, ago: i64) -> i64 {
    let now = reminderd::time::Clock::System.now().timestamp();
    env.sql()
        .execute(
            "INSERT INTO replies (message_id, from_phone, patient_id, kind, text, intent, outcome, reason, received_at)
             SELECT ?1, phone, id, 'text', 'can I come later?', 'unknown', 'needs_staff', 'not understood', ?2
             FROM patients WHERE external_id = ?3",
            reminderd::store::sql::params![format!("wamid.crash-in-{i}"), now - ago, format!("Q{i}")],
        )
        .expect("the patient's message");
    env.run(&[
        "reply",
        &format!("Q{i}"),
        "Yes, come at 17:00.",
        "--as",
        "crash",
    ])
    .expect(0);
    env.sql()
        .query_row(
            "SELECT max(id) FROM outbox WHERE kind = 'staff_message'",
            (),
            |r| r.get(0),
        )
        .expect("the answer's row")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_never_sends_twice_or_loses_a_reminder() {
    let seed = seed("crash test", 1);
    let mut rng = Rng(seed);

    let env = Env::new();
    let port = crate::common::free_port();
    let config = crash_config(&env, 200)
        + "\n[waitlist]\nenabled = true\noffer_template = \"waitlist_offer\"\n"
        + FEEDBACK;
    env.write_config(&config);

    let now = reminderd::time::Clock::System.now();
    let rows = mumbai_rows(MESSAGES);
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let r = env.import("many.csv", &csv(&rows), &[]).expect(0).json();
    assert_eq!(r["new"], MESSAGES);
    // Visits that ended hours ago: their feedback requests are due among the rules' reminders
    // (4 hours ago, then one every 100 seconds), so kills land on them too.
    let past: Vec<String> = (0..VISITS)
        .map(|j| {
            let start = (now - chrono::Duration::minutes(6 * 60 + 15)
                + chrono::Duration::seconds(100 * j as i64))
            .with_timezone(&chrono_tz::Asia::Kolkata);
            format!(
                "V{j},W{j},Visitor {j},97{:08},en,{},{},15,,mumbai,booked",
                10_000_000 + j,
                start.format("%Y-%m-%d"),
                start.format("%H:%M")
            )
        })
        .collect();
    let past: Vec<&str> = past.iter().map(String::as_str).collect();
    let r = env.import("visits.csv", &csv(&past), &[]).expect(0).json();
    assert_eq!(r["new"], VISITS, "{r}");
    // "Remind now" as an administrator presses it, each press as of a moment that makes its
    // reminder due among the rules' ones (their day-before reminders are due 4 hours ago, one
    // a second), so kills land on manual reminders in flight too.
    for j in 0..PRESSED_BEFORE {
        let k = j * SPREAD + SPREAD / 2;
        let at = now - chrono::Duration::hours(4) + chrono::Duration::seconds(k as i64);
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        press(&env, k, Some(&at));
    }
    // Answers queued now, made due among the rules' reminders like the presses.
    for i in ANSWERED_BEFORE {
        let id = answer(&env, i, 600);
        let due = now - chrono::Duration::hours(4) + chrono::Duration::seconds(i as i64);
        env.sql()
            .execute(
                "UPDATE outbox SET send_at = ?2 WHERE id = ?1",
                reminderd::store::sql::params![id, due.timestamp()],
            )
            .expect("due among the reminders");
    }

    // The waitlist: one entry per waiting patient, then the first slots.
    let today = now
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d");
    let file: Vec<String> = std::iter::once("id,patient_id,clinic,earliest,max_offers".to_string())
        .chain(
            waiting()
                .into_iter()
                .map(|i| format!("E{i},Q{i},mumbai,{today},1")),
        )
        .collect();
    let file = file.join("\n");
    let path = env.file("waitlist.csv", format!("{file}\n"));
    env.run(&["waitlist", "import", path.to_str().expect("path")])
        .expect(0);
    for k in 0..OPENINGS_BEFORE {
        open_slot(&env, k);
    }

    let parsed =
        reminderd::config::Config::from_toml(&config, &env.path("reminders.toml")).expect("config");
    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        latency: Duration::from_millis(20),
        msg91: reminderd::sim::SimMsg91 {
            templates: reminderd::sim::dlt_templates_from_config(&parsed),
            ..reminderd::sim::SimMsg91::default()
        },
        msg91_report_url: Some(format!(
            "http://127.0.0.1:{port}/msg91/report?token={MSG91_TOKEN}"
        )),
        // The shipped templates and the feedback request's.
        templates: reminderd::sim::templates_from_config(&parsed),
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let api = sim.base_url();
    let pressed: Vec<usize> = (0..PRESSED_BEFORE)
        .map(|j| j * SPREAD + SPREAD / 2)
        .chain((0..PRESSED_DURING).map(|k| 7 + k))
        .chain(ANSWERED_BEFORE)
        .chain([ANSWERED_DURING])
        .collect();
    let texted: Vec<usize> = (0..MESSAGES).filter(|i| not_on_whatsapp(*i)).collect();
    assert!(texted.iter().all(|i| !pressed.contains(i)));
    for i in &texted {
        sim.fail_later(&format!("+91{}", &mobile(*i)[2..]), 131_026);
    }

    // Kill at random moments while the queue drains; restart at once each time.
    let mut child = start(&env, port, &api, 0);
    for kill in 1..=KILLS {
        // Kill mid-dispatch: once a random number of further messages has gone out, plus a
        // random few milliseconds so the kill lands at any point of a send.
        let target = sim.messages().len() + rng.between(20, 150) as usize;
        let wait_until = tokio::time::Instant::now() + Duration::from_secs(20);
        while sim.messages().len() < target.min(TOTAL) && tokio::time::Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 40))).await;
        if kill == KILLS / 2 {
            for k in 0..PRESSED_DURING {
                press(&env, 7 + k, None);
            }
            answer(&env, ANSWERED_DURING, 60);
            for k in OPENINGS_BEFORE..OPENINGS_BEFORE + OPENINGS_DURING {
                open_slot(&env, k);
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        println!(
            "kill {kill}: {} messages accepted so far",
            sim.messages().len()
        );
        child = start(&env, port, &api, kill);
    }

    // Let the last run finish: every reminder delivered, statuses settled.
    // Delivered on one channel or the other: a failed WhatsApp reminder counts by its text. A
    // text killed in flight is never sent again (its report cannot be matched without the id
    // the crash lost): it is settled as "staff call", so it is not lost either. A text the
    // provider accepted whose one delivery report came while the daemon was down stays
    // `sent` (providers post reports once; reminderd does not poll them yet).
    let delivered = || {
        env.count("SELECT count(*) FROM outbox WHERE kind IN ('reminder', 'manual_reminder', 'staff_message', 'waitlist_offer', 'feedback') AND (state IN ('delivered', 'read') OR (channel = 'sms' AND (state = 'sent' OR (state = 'unknown' AND needs_staff IS NOT NULL))))")
    };
    Wait::new(
        "every reminder to be delivered after the kills",
        Duration::from_secs(90),
    )
    // Each probe opens the database the daemon is writing to: not too often.
    .every(Duration::from_millis(200))
    .context(|| {
        let states = env.run(&["outbox", "--json"]).json();
        let mut by_state: HashMap<String, usize> = HashMap::new();
        for o in states.as_array().into_iter().flatten() {
            *by_state
                .entry(o["state"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        let stuck: Vec<String> = states
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| !matches!(o["state"].as_str(), Some("delivered" | "read" | "failed")))
            .map(|o| format!("{} {} {} {} {}", o["id"], o["channel"], o["state"], o["last_error"], o["reason"]))
            .collect();
        format!(
            "seed {seed}: only {} of {TOTAL} delivered after the kills; states {by_state:?}; not done: {stuck:?}",
            delivered()
        )
    })
    .until(|| delivered() == TOTAL as i64)
    .await;
    // The last restart may have found nothing left to do: let it finish starting (its signal
    // handlers are in place once it serves) before asking it to stop.
    let health = format!("http://127.0.0.1:{port}/healthz");
    Wait::new("the last daemon to serve", Duration::from_secs(20))
        .until_async(async || reqwest::get(&health).await.is_ok())
        .await;
    let pid = child.id();
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "seed {seed}: exit {status:?}");

    // The witness: each outbox row reached the API exactly once.
    let mut sent_ids: HashMap<String, usize> = HashMap::new();
    for m in sim.messages() {
        *sent_ids
            .entry(
                m.body["biz_opaque_callback_data"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
            .or_default() += 1;
    }
    let twice: Vec<_> = sent_ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: sent more than once: {twice:?}"
    );
    assert_eq!(
        sent_ids.len(),
        TOTAL,
        "seed {seed}: every due reminder reached the API"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox"),
        (TOTAL + texted.len()) as i64,
        "one outbox row per reminder, and one text per reminder WhatsApp could not deliver"
    );
    // The fallback's witness: each patient not on WhatsApp got exactly one text, and nobody
    // else got any.
    let mut texts: HashMap<String, usize> = HashMap::new();
    for m in sim.msg91_messages() {
        *texts.entry(m.mobiles.clone()).or_default() += 1;
    }
    let unsure = env.count(
        "SELECT count(*) FROM outbox WHERE channel = 'sms' AND state = 'unknown' AND needs_staff IS NOT NULL",
    );
    for i in &texted {
        let n = texts.get(&mobile(*i)).copied().unwrap_or(0);
        assert!(
            n <= 1,
            "seed {seed}: patient {i}, not on WhatsApp, got {n} texts"
        );
    }
    assert!(
        texts.len() as i64 + unsure >= texted.len() as i64,
        "seed {seed}: every patient not on WhatsApp got a text or is on the call list"
    );
    assert!(
        texts
            .keys()
            .all(|m| texted.iter().any(|i| mobile(*i) == *m)),
        "seed {seed}: texts only for those not on WhatsApp"
    );
    println!(
        "seed {seed}: {} texts for {} patients not on WhatsApp; {unsure} texts killed in flight, on the call list",
        texts.len(),
        texted.len()
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE channel = 'whatsapp' AND state = 'failed' AND needs_staff IS NULL"),
        texted.len() as i64,
        "seed {seed}: each failed WhatsApp reminder was replaced, not put on the call list"
    );
    let conn = env.sql();
    let mut manual = conn
        .prepare("SELECT id FROM outbox WHERE kind = 'manual_reminder'")
        .expect("prepare");
    let manual: Vec<i64> = manual
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(manual.len(), MANUAL, "one row per press");
    for id in manual {
        assert_eq!(
            sent_ids.get(&id.to_string()),
            Some(&1),
            "seed {seed}: reminder {id}, asked for by staff, reached the API once"
        );
    }
    let mut staff = conn
        .prepare("SELECT id FROM outbox WHERE kind = 'staff_message'")
        .expect("prepare");
    let staff: Vec<i64> = staff
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(staff.len(), STAFF, "one row per answer");
    for id in staff {
        assert_eq!(
            sent_ids.get(&id.to_string()),
            Some(&1),
            "seed {seed}: staff answer {id} reached the API once"
        );
    }
    // The offers' witness: each slot offered to one batch, each patient once, each offer's
    // message reaching the API once.
    assert_eq!(
        env.count("SELECT count(*) FROM offers"),
        OFFERS as i64,
        "seed {seed}: every offer made"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM openings WHERE round = 1"),
        (OPENINGS_BEFORE + OPENINGS_DURING) as i64,
        "seed {seed}: one round per slot"
    );
    assert_eq!(
        env.count("SELECT count(DISTINCT patient_id) FROM offers"),
        OFFERS as i64,
        "seed {seed}: no patient offered twice"
    );
    let mut offers = conn
        .prepare("SELECT o.id FROM outbox o JOIN offers f ON o.rule = 'offer:' || f.id WHERE o.kind = 'waitlist_offer'")
        .expect("prepare");
    let offers: Vec<i64> = offers
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(offers.len(), OFFERS, "one message per offer");
    for id in offers {
        assert_eq!(
            sent_ids.get(&id.to_string()),
            Some(&1),
            "seed {seed}: offer message {id} reached the API once"
        );
    }
    let mut asked = conn
        .prepare("SELECT id FROM outbox WHERE kind = 'feedback'")
        .expect("prepare");
    let asked: Vec<i64> = asked
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(asked.len(), VISITS, "one feedback request per visit");
    for id in asked {
        assert_eq!(
            sent_ids.get(&id.to_string()),
            Some(&1),
            "seed {seed}: feedback request {id} reached the API once"
        );
    }
    println!(
        "seed {seed}: {} rows were interrupted mid-send and settled (unknown, then their status or a resend); {} took more than one attempt",
        env.count("SELECT count(*) FROM outbox WHERE reason LIKE '%sending again%' OR last_error LIKE 'interrupted%'"),
        env.count("SELECT count(*) FROM outbox WHERE attempts > 1")
    );
    println!(
        "seed {seed}: of the {MANUAL} reminders staff asked for, {} were interrupted mid-send and settled, {} took more than one attempt",
        env.count("SELECT count(*) FROM outbox WHERE kind = 'manual_reminder' AND (reason LIKE '%sending again%' OR reason LIKE 'interrupted%' OR last_error LIKE 'interrupted%')"),
        env.count("SELECT count(*) FROM outbox WHERE kind = 'manual_reminder' AND attempts > 1")
    );
    let mut st = conn
        .prepare("SELECT coalesce(last_error_code, 0), substr(coalesce(last_error, reason, ''), 1, 60), count(*) FROM outbox WHERE attempts > 1 GROUP BY 1, 2")
        .expect("prepare");
    for row in st
        .query_map((), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .expect("query")
    {
        println!("  retried: {row:?}");
    }
}

/// Several numbers (issue 21): Mumbai sends from the default number and New York from a
/// second one with its own token, each claiming its own clinic's rows, while the daemon is
/// killed at random moments. Each reminder reaches the API once, from its clinic's number.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_two_numbers_send_never_sends_twice_or_loses_one() {
    const MUMBAI: usize = 400;
    const NYC: usize = 200;
    const KILLS: usize = 6;
    const B_ID: &str = "300000000000003";
    let seed = seed("two-number crash test", 7);
    let mut rng = Rng(seed);
    let env = Env::new();
    let port = crate::common::free_port();
    let config = crash_config(&env, 150)
    .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"")
    .replacen(
        "[[rules]]",
        &format!("[whatsapp.numbers.brand-b]\nphone_number_id = \"{B_ID}\"\nrate_limit_per_sec = 60\nown_token = true\n\n[[rules]]"),
        1,
    )
    .replacen("[clinics.nyc]\n", "[clinics.nyc]\nwhatsapp_number = \"brand-b\"\n", 1);
    env.write_config(&config);

    // Day-before reminders due 4 hours ago, one a second, at both clinics.
    let now = reminderd::time::Clock::System.now();
    let row = |i: usize, clinic: &str| {
        let start = now + chrono::Duration::hours(20) + chrono::Duration::seconds(i as i64);
        let (phone, start) = if clinic == "nyc" {
            (
                format!("(212) 555-{i:04}"),
                start
                    .with_timezone(&chrono_tz::America::New_York)
                    .naive_local(),
            )
        } else {
            (
                format!("98{:08}", 10_000_000 + i),
                start.with_timezone(&chrono_tz::Asia::Kolkata).naive_local(),
            )
        };
        format!(
            "{clinic}{i},{clinic}P{i},Patient {i},{phone},en,{},{},15,,{clinic},booked",
            start.format("%Y-%m-%d"),
            start.format("%H:%M")
        )
    };
    let rows: Vec<String> = (0..MUMBAI)
        .map(|i| row(i, "mumbai"))
        .chain((0..NYC).map(|i| row(i, "nyc")))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let r = env.import("two.csv", &csv(&rows), &[]).expect(0).json();
    assert_eq!(r["new"], MUMBAI + NYC, "{r}");

    let parsed =
        reminderd::config::Config::from_toml(&config, &env.path("reminders.toml")).expect("config");
    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        latency: Duration::from_millis(20),
        templates: reminderd::sim::templates_from_config(&parsed),
        numbers: vec![reminderd::sim::SimNumber::new(B_ID, "tok-b")],
        ..sim_config("tok")
    })
    .await
    .expect("sim");
    let api = sim.base_url();
    let token = [("REMINDERD_WHATSAPP_TOKEN_BRAND_B", "tok-b")];
    let total = MUMBAI + NYC;
    let mut child = start_with(&env, port, &api, 0, &token);
    for kill in 1..=KILLS {
        let target = sim.messages().len() + rng.between(20, 100) as usize;
        let wait_until = tokio::time::Instant::now() + Duration::from_secs(20);
        while sim.messages().len() < target.min(total) && tokio::time::Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(0, 40))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        println!(
            "kill {kill}: {} messages accepted so far",
            sim.messages().len()
        );
        child = start_with(&env, port, &api, kill, &token);
    }
    let delivered =
        || env.count("SELECT count(*) FROM outbox WHERE state IN ('delivered', 'read')");
    Wait::new(
        "every reminder on both numbers to be delivered after the kills",
        Duration::from_secs(90),
    )
    .every(Duration::from_millis(200))
    .context(|| format!("seed {seed}: only {} of {total} delivered", delivered()))
    .until(|| delivered() == total as i64)
    .await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    // The witness: each row reached the API exactly once, from its clinic's number.
    let mut sent: HashMap<String, (usize, String)> = HashMap::new();
    for m in sim.messages() {
        let e = sent
            .entry(
                m.body["biz_opaque_callback_data"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
            .or_insert((0, m.phone_number_id.clone()));
        e.0 += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, (n, _))| *n > 1).collect();
    assert!(
        twice.is_empty(),
        "seed {seed}: sent more than once: {twice:?}"
    );
    assert_eq!(
        sent.len(),
        total,
        "seed {seed}: every reminder reached the API"
    );
    let from_b = sim
        .messages()
        .iter()
        .filter(|m| m.phone_number_id == B_ID)
        .count();
    let to_us = sim
        .messages()
        .iter()
        .filter(|m| m.body["to"].as_str().is_some_and(|t| t.starts_with("+1")))
        .count();
    assert_eq!(from_b, NYC, "seed {seed}: New York's from brand-b");
    assert_eq!(to_us, NYC, "seed {seed}: and only New York's");
}
