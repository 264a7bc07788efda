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
    if crate::common::on_postgres() {
        return; // backups and check-db are the SQLite file's; PostgreSQL has its own tools
    }
    let env = Env::new();
    let (port, metrics_port) = (crate::common::free_port(), crate::common::free_port());
    env.write_config(daemon_config(&env, metrics_port));
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
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let events: HashSet<i64> = c
            .prepare("SELECT id FROM inbound_events")
            .expect("prepare")
            .query_map((), |r| r.get(0))
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
        .query_row("PRAGMA integrity_check", (), |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    // Each row's wamid, state, and whether its request had gone out (committed before it does).
    let in_copy: HashMap<i64, (Option<String>, String, bool)> = c
        .prepare("SELECT id, wamid, state, request_at IS NOT NULL FROM outbox")
        .expect("prepare")
        .query_map((), |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
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
        .query_map((), |r| r.get(0))
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
    fresh.write_config(daemon_config(&fresh, metrics2));
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

/// A database with the example schedule in it, and a checked copy of it made by `backup`.
fn with_copy() -> (Env, std::path::PathBuf) {
    let env = Env::new();
    env.import(
        "day.csv",
        &csv(&["A1,P1,Aarav Sharma,98200 12345,en,2030-12-02,09:00,15,Dr. Mehta,mumbai,booked"]),
        &[],
    )
    .expect(0);
    let copy = env.path("copy.db");
    let r = env
        .run(&["backup", copy.to_str().expect("utf-8"), "--json"])
        .expect(0);
    assert_eq!(r.json()["integrity"], "ok");
    (env, copy)
}

#[test]
fn a_copy_from_a_newer_reminderd_is_refused_and_an_older_one_is_upgraded_on_next_open() {
    if crate::common::on_postgres() {
        return; // backups and check-db are the SQLite file's; PostgreSQL has its own tools
    }
    let (env, copy) = with_copy();
    let newer = env.path("newer.db");
    std::fs::copy(&copy, &newer).expect("copy");
    Connection::open(&newer)
        .and_then(|c| c.execute_batch("PRAGMA user_version = 99"))
        .expect("newer");
    env.run(&[
        "import",
        "--json",
        env.file(
            "more.csv",
            csv(&["A2,P2,Diya Patel,98200 12346,en,2030-12-02,09:30,15,Dr. Mehta,mumbai,booked"]),
        )
        .to_str()
        .expect("utf-8"),
    ])
    .expect(0);
    let r = env
        .run(&["restore", newer.to_str().expect("utf-8")])
        .expect(65);
    assert!(
        r.stderr.contains("newer reminderd (schema version 99")
            && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );
    assert_eq!(env.appointments().len(), 2, "the database is untouched");

    // A copy from schema 7 goes in as it is and is upgraded when reminderd opens it.
    let old = env.path("v7.db");
    let sql = std::fs::read_to_string(crate::common::repo_file("tests/fixtures/schema-v7.sql"))
        .expect("fixture");
    Connection::open(&old)
        .and_then(|c| c.execute_batch(&sql))
        .expect("v7");
    let r = env
        .run(&["restore", old.to_str().expect("utf-8")])
        .expect(0);
    assert!(
        r.stdout.contains("version 7")
            && r.stdout.contains("upgrades it when it next opens it")
            && r.stdout.contains("the database it replaced is kept as"),
        "{}",
        r.stdout
    );
    assert_eq!(env.appointments().len(), 14, "the fixture's appointments");
    let aside: Vec<_> = std::fs::read_dir(env.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("test.db.before-restore-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = Connection::open(env.path(&aside[0])).expect("kept");
    let n: i64 = kept
        .query_row("SELECT count(*) FROM appointments", (), |r| r.get(0))
        .expect("count");
    assert_eq!(n, 2, "the replaced database is kept whole");
}

#[test]
fn check_db_reports_a_sound_database_and_fails_on_a_damaged_one() {
    if crate::common::on_postgres() {
        return; // backups and check-db are the SQLite file's; PostgreSQL has its own tools
    }
    let (env, copy) = with_copy();
    let r = env.run(&["check-db", "--json"]).expect(0).json();
    assert_eq!(r["ok"], true);
    assert_eq!(r["integrity"], json!(["ok"]));
    assert_eq!(r["schema_version"], reminderd::store::SCHEMA_VERSION);
    assert_eq!(r["tables"][0], json!({"table": "appointments", "rows": 1}));
    assert!(r["last_backup_at"].is_string(), "{r}");
    let human = env.run(&["check-db"]).expect(0);
    assert!(
        human.stdout.contains("integrity    ok") && human.stdout.contains("appointments 1"),
        "{}",
        human.stdout
    );

    // Garble pages in the middle of the copy, as a failing disk would.
    {
        use std::io::{Seek as _, Write as _};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .expect("open");
        f.seek(std::io::SeekFrom::Start(8192)).expect("seek");
        f.write_all(&vec![0xab; 4096 * 8]).expect("write");
    }
    let r = env
        .run(&["--db", copy.to_str().expect("utf-8"), "check-db"])
        .expect(74);
    assert!(r.stdout.contains("integrity    FAILED"), "{}", r.stdout);
    assert!(
        r.stderr.contains("failed SQLite's integrity check"),
        "{}",
        r.stderr
    );
    // And restore will not put it in place.
    let r = env
        .run(&["restore", copy.to_str().expect("utf-8")])
        .expect(65);
    assert!(r.stderr.contains("integrity check"), "{}", r.stderr);
    assert_eq!(env.appointments().len(), 1);
}

#[test]
fn keep_prunes_only_the_oldest_copies_backup_named() {
    if crate::common::on_postgres() {
        return; // backups and check-db are the SQLite file's; PostgreSQL has its own tools
    }
    let (env, _) = with_copy();
    let folder = env.path("backups");
    std::fs::create_dir(&folder).expect("mkdir");
    for name in [
        "reminderd-20200101-030000.db",
        "reminderd-20200102-030000.db",
        "reminderd-20200103-030000.db",
        "reminderd-by-hand.db",
    ] {
        std::fs::write(folder.join(name), "old").expect("old copy");
    }
    let r = env
        .run(&[
            "backup",
            folder.to_str().expect("utf-8"),
            "--keep",
            "2",
            "--json",
        ])
        .expect(0)
        .json();
    let mut left: Vec<String> = std::fs::read_dir(&folder)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    left.sort();
    let new = std::path::Path::new(r["path"].as_str().expect("path"))
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let mut want = vec![
        "reminderd-20200103-030000.db".to_string(),
        "reminderd-by-hand.db".to_string(),
        new,
    ];
    want.sort();
    assert_eq!(
        left, want,
        "the newest two copies, and the one named by hand"
    );
    assert_eq!(r["pruned"].as_array().map(Vec::len), Some(2));
    let r = env.run(&[
        "backup",
        env.path("one.db").to_str().expect("utf-8"),
        "--keep",
        "2",
    ]);
    assert_eq!(r.code, 64, "--keep needs a folder: {}", r.stderr);
    let r = env.run(&["backup", folder.to_str().expect("utf-8"), "--keep", "0"]);
    assert_eq!(r.code, 64, "0 would delete the new copy: {}", r.stderr);
}

/// After a package upgrade the daemon still runs the old binary until it restarts; the daily
/// backup, run by the new binary, must copy the database as it is, not upgrade it under the
/// running daemon.
#[test]
fn a_backup_by_a_newer_binary_copies_an_older_database_without_upgrading_it() {
    if crate::common::on_postgres() {
        return; // backups and check-db are the SQLite file's; PostgreSQL has its own tools
    }
    let env = Env::new();
    let live = env.path("v8.db");
    let sql = std::fs::read_to_string(crate::common::repo_file("tests/fixtures/schema-v8.sql"))
        .expect("fixture");
    Connection::open(&live)
        .and_then(|c| c.execute_batch(&sql))
        .expect("v8");
    let copy = env.path("copy.db");
    let r = env
        .run(&[
            "--db",
            live.to_str().expect("utf-8"),
            "backup",
            copy.to_str().expect("utf-8"),
            "--json",
        ])
        .expect(0);
    assert_eq!(r.json()["schema_version"], 8, "{}", r.stdout);
    let version = |p: &std::path::Path| -> i64 {
        Connection::open(p)
            .and_then(|c| c.query_row("PRAGMA user_version", (), |r| r.get(0)))
            .expect("version")
    };
    assert_eq!(version(&live), 8, "the live database was not upgraded");
    assert_eq!(version(&copy), 8, "the copy is the database as it was");
}
