//! Backups while the daemon runs (issue 20): `reminderd backup` copies the database while the
//! daemon dispatches thousands of reminders and takes a webhook burst; the copy is sound,
//! holds everything committed before it began, and a daemon restored from it in a fresh folder
//! sends only what the copy had not sent. Also `restore`'s refusals, `check-db`, `--keep` and
//! the metrics gauges.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reminderd::sim::{Sim, SimConfig, signature};
use rusqlite::Connection;
use serde_json::json;

use crate::common::{Env, Wait, csv, sim_config};

const SECRET: &str = "backup-test-secret";
const MESSAGES: usize = 5000;
/// Signed inbound messages posted while the backup runs.
const BURST: usize = 300;

/// The config the daemons run with: fast jobs, a quick rate, metrics on `metrics_port`.
fn daemon_config(env: &Env, metrics_port: u16) -> String {
    let config = crate::common::fast_daemon(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
    )
    .replace("rate_limit_per_sec = 80", "rate_limit_per_sec = 400")
    .replace("enabled = true", "enabled = false");
    format!("{config}\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n")
}

fn start(env: &Env, port: u16, api: &str, log: &str) -> Child {
    let log = std::fs::File::create(env.path(log)).expect("log");
    Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_ACCESS_TOKEN", "tok")
        .envs(crate::common::SMS_SECRETS)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "verify")
        .env("REMINDERD_API_BASE", api)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start daemon")
}

async fn sim_for(port: u16) -> Sim {
    Sim::start(SimConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim")
}

/// Each outbox id the simulator accepted, with how many times.
fn accepted(sim: &Sim) -> HashMap<i64, usize> {
    let mut ids = HashMap::new();
    for m in sim.messages() {
        let id = m.body["biz_opaque_callback_data"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        *ids.entry(id).or_default() += 1;
    }
    ids
}

async fn metrics(port: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// One gauge's value in a Prometheus text page.
fn gauge(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn inbound_text(i: usize) -> String {
    let from = format!("9198{:08}", 20_000_000 + i);
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "P"}, "wa_id": from}],
        "messages": [{"from": from, "id": format!("wamid.burst{i}"), "timestamp": "1764500000", "type": "text", "text": {"body": "hello"}}]
    }}]}]})
    .to_string()
}

fn stop(child: Child) {
    crate::common::signal(child.id(), "TERM");
    let mut child = child;
    let status = child.wait().expect("wait");
    assert!(status.success(), "daemon exit {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_while_5000_messages_go_out_restores_into_a_daemon_that_sends_nothing_twice() {
    let env = Env::new();
    let (port, metrics_port) = (crate::common::free_port(), crate::common::free_port());
    std::fs::write(
        env.path("reminders.toml"),
        daemon_config(&env, metrics_port),
    )
    .expect("config");
    let now = reminderd::time::Clock::System.now();
    let rows: Vec<String> = (0..MESSAGES)
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
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("many.csv", &csv(&rows), &[]).expect(0);

    let sim = sim_for(port).await;
    let mut daemon = Some(start(&env, port, &sim.base_url(), "daemon-1.log"));
    let log = || std::fs::read_to_string(env.path("daemon-1.log")).unwrap_or_default();

    // Before any backup: the database's size is reported, a backup's age is not.
    let mut page = String::new();
    Wait::new("the database gauge", Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .context(log)
        .until_async(async || {
            page = metrics(metrics_port).await;
            gauge(&page, "reminderd_database_bytes").is_some()
        })
        .await;
    assert!(gauge(&page, "reminderd_database_bytes").expect("bytes") > 100_000.0);
    assert!(
        !page.contains("reminderd_last_backup_age_seconds"),
        "no backup yet, so no age: {page}"
    );

    // Mid-dispatch: a fifth of the messages out, the rest planned and waiting.
    Wait::new("a fifth of the messages to go out", Duration::from_secs(60))
        .every(Duration::from_millis(20))
        .context(log)
        .until(|| sim.messages().len() >= MESSAGES / 5)
        .await;
    assert!(
        sim.messages().len() < MESSAGES,
        "the backup must land mid-dispatch"
    );

    // What was committed just before the backup began.
    let (before_outbox, before_events) = {
        let c = env.sql();
        let outbox: HashMap<i64, Option<String>> = c
            .prepare("SELECT id, wamid FROM outbox")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let events: HashSet<i64> = c
            .prepare("SELECT id FROM inbound_events")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        (outbox, events)
    };
    assert_eq!(before_outbox.len(), MESSAGES, "every reminder planned");
    let sent_before = sim.messages().len();

    // The backup, with a burst of signed webhooks arriving meanwhile.
    let burst = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut codes = Vec::new();
        for i in 0..BURST {
            let body = inbound_text(i);
            let r = http
                .post(format!("http://127.0.0.1:{port}/webhook"))
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", signature(SECRET, body.as_bytes()))
                .body(body)
                .send()
                .await;
            codes.push(r.map_or(0, |r| r.status().as_u16()));
        }
        codes
    });
    let folder = env.path("backups");
    let args = [
        "backup".to_string(),
        format!("{}/", folder.display()),
        "--keep".into(),
        "7".into(),
        "--json".into(),
    ];
    let run = {
        let config = env.path("reminders.toml");
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_reminderd"))
                .arg("--config")
                .arg(config)
                .args(args)
                .env_remove("RUST_LOG")
                .output()
                .expect("run backup");
            crate::common::Run::from(out)
        })
        .await
        .expect("join")
    };
    let done = run.expect(0).json();
    let codes = burst.await.expect("burst");
    assert!(
        codes.iter().all(|c| *c == 200),
        "every webhook accepted: {codes:?}"
    );
    assert_eq!(done["integrity"], "ok");
    let copy = std::path::PathBuf::from(done["path"].as_str().expect("path"));
    assert!(copy.starts_with(&folder), "{copy:?}");
    println!(
        "backup of {} bytes in {} s while {} messages went out",
        done["bytes"],
        done["seconds"],
        sim.messages().len() - sent_before
    );

    // The copy is sound and holds every row committed before the backup began.
    let c = Connection::open(&copy).expect("open copy");
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    // Each row's wamid, state, and whether its request had gone out (committed before it does).
    let in_copy: HashMap<i64, (Option<String>, String, bool)> = c
        .prepare("SELECT id, wamid, state, request_at IS NOT NULL FROM outbox")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (id, wamid) in &before_outbox {
        let (copied, _, _) = in_copy
            .get(id)
            .unwrap_or_else(|| panic!("outbox {id} missing"));
        if wamid.is_some() {
            assert_eq!(copied, wamid, "outbox {id} was sent before the backup");
        }
    }
    let events: HashSet<i64> = c
        .prepare("SELECT id FROM inbound_events")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(
        before_events.is_subset(&events),
        "every webhook stored before the backup"
    );
    // What the copy says never went out: waiting, or claimed with its request not yet made.
    // Everything else may have reached the API and must not be sent again.
    let pending: HashSet<i64> = in_copy
        .iter()
        .filter(|(_, (_, state, requested))| {
            state == "pending" || (state == "sending" && !requested)
        })
        .map(|(id, _)| *id)
        .collect();
    assert!(!pending.is_empty(), "the copy was taken mid-dispatch");
    drop(c);

    // The metrics now say how old the backup is.
    Wait::new("the backup's age on /metrics", Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .until_async(async || {
            page = metrics(metrics_port).await;
            gauge(&page, "reminderd_last_backup_age_seconds").is_some_and(|a| a < 60.0)
        })
        .await;

    // A restore while the daemon holds the database is refused, and changes nothing.
    let copy_arg = copy.to_str().expect("utf-8");
    let refused = env.run(&["restore", copy_arg]).expect(74);
    assert!(
        refused.stderr.contains("is in use") && refused.stderr.contains("Stop it first"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("before-restore"));
    let d = daemon.take().expect("daemon");
    tokio::task::spawn_blocking(move || stop(d))
        .await
        .expect("stop");
    drop(sim);

    // Restored into a fresh folder, a daemon sends exactly what the copy had not sent.
    let fresh = Env::new();
    let (port2, metrics2) = (crate::common::free_port(), crate::common::free_port());
    std::fs::write(
        fresh.path("reminders.toml"),
        daemon_config(&fresh, metrics2),
    )
    .expect("config");
    let restored = fresh.run(&["restore", copy_arg]).expect(0);
    assert!(
        restored
            .stdout
            .contains("there was no database there before"),
        "{}",
        restored.stdout
    );
    let sim2 = sim_for(port2).await;
    let daemon2 = start(&fresh, port2, &sim2.base_url(), "daemon-2.log");
    let log2 = || std::fs::read_to_string(fresh.path("daemon-2.log")).unwrap_or_default();
    Wait::new(
        "the restored daemon to send what was pending",
        Duration::from_secs(90),
    )
    .every(Duration::from_millis(100))
    .context(log2)
    .until(|| accepted(&sim2).len() >= pending.len())
    .await;
    // A few more ticks: anything sent twice would show now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = accepted(&sim2);
    tokio::task::spawn_blocking(move || stop(daemon2))
        .await
        .expect("stop");
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let ids: HashSet<i64> = sent.keys().copied().collect();
    let extra: Vec<_> = ids
        .difference(&pending)
        .map(|id| (id, in_copy.get(id)))
        .collect();
    let missing: Vec<_> = pending.difference(&ids).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "the restored daemon sends what the copy had pending, and nothing the copy had sent: sent besides {extra:?}; not sent {missing:?}"
    );
}
