//! `reminderd run` as a child process, as systemd runs it: the cron jobs send through the
//! simulator, replies arrive through the webhook, SIGHUP reloads, SIGTERM drains, and the
//! notify protocol reports READY and WATCHDOG.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reminderd::sim::{Reply, Sim, SimConfig};

use crate::common::{Env, Wait, csv, sim_config, wait_for};

const SECRET: &str = "daemon-test-secret";

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_sends_on_schedule_applies_replies_reloads_and_stops_cleanly() {
    let env = Env::new();
    let port = crate::common::free_port();
    // The desk on a known port: with no [metrics] listen, /metrics is served beside it.
    let desk_port = crate::common::free_port();
    let config = crate::common::fast_daemon(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
    )
    .replace("shutdown_grace = \"10s\"", "shutdown_grace = \"5s\"")
    .replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{desk_port}\""),
    );
    env.write_config(&config);

    // Appointments about 20 hours from now: their day-before reminders are due at once.
    let now = reminderd::time::Clock::System.now();
    let rows: Vec<String> = (0..4)
        .map(|i| {
            let start = (now + chrono::Duration::hours(20) + chrono::Duration::minutes(10 * i))
                .with_timezone(&chrono_tz::Asia::Kolkata);
            format!(
                "G{i},U{i},Patient {i},98300 {:05},en,{},{},15,,mumbai,booked",
                10_000 + i,
                start.format("%Y-%m-%d"),
                start.format("%H:%M")
            )
        })
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    env.import("day.csv", &csv(&rows), &[]).expect(0);

    let sim = Sim::start(SimConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/webhook")),
        app_secret: Some(SECRET.into()),
        pair_limit: None,
        ..sim_config("tok")
    })
    .await
    .expect("sim");

    let notify_path = env.path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let notes = Arc::new(Mutex::new(String::new()));
    let reader_notes = Arc::clone(&notes);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        for _ in 0..300 {
            if let Ok(n) = notify.recv(&mut buf) {
                let mut all = reader_notes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                all.push_str(&String::from_utf8_lossy(&buf[..n]));
                all.push('\n');
            }
        }
    });

    let log = std::fs::File::create(env.path("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_ACCESS_TOKEN", "tok")
        .envs(crate::common::SMS_SECRETS)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "verify")
        .env("REMINDERD_API_BASE", sim.base_url())
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start daemon");
    let pid = child.id();
    let daemon_log = || std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();

    // Reminders (and booking confirmations) go out on the cron schedule.
    wait_for("4 reminders", secs(30), || {
        sim.messages()
            .iter()
            .filter(|m| m.body["template"]["name"] == "appointment_reminder")
            .count()
            == 4
    })
    .await;
    wait_for("READY and WATCHDOG", secs(10), || {
        let n = notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        n.contains("READY=1") && n.contains("WATCHDOG=1")
    })
    .await;

    // A patient taps Confirm; the webhook applies it.
    let reminder = sim
        .messages()
        .into_iter()
        .find(|m| {
            m.body["to"] == "+919830010000" && m.body["template"]["name"] == "appointment_reminder"
        })
        .expect("G0's reminder");
    let outbox_id = reminder.body["biz_opaque_callback_data"]
        .as_str()
        .expect("callback")
        .to_string();
    sim.reply(Reply::Button {
        from: "919830010000".into(),
        payload: format!("confirm:{outbox_id}"),
        text: "Confirm".into(),
        context_id: Some(reminder.wamid.clone()),
    })
    .await
    .expect("tap");
    wait_for("G0 confirmed", secs(10), || {
        env.appointment("G0")["response"] == "confirmed"
    })
    .await;
    // Its acknowledgement goes out on the next dispatch tick.
    wait_for("the acknowledgement", secs(10), || {
        sim.messages().iter().any(|m| m.body["type"] == "text")
    })
    .await;

    // SIGHUP with a broken config: keeps running on the old one and says why.
    env.write_config(config.replace(
        "time_zone = \"Asia/Kolkata\"",
        "time_zone = \"Asia/Nowhere\"",
    ));
    crate::common::signal(pid, "HUP");
    wait_for("the refusal", secs(10), || {
        daemon_log().contains("configuration not reloaded")
    })
    .await;
    assert!(
        daemon_log().contains("Asia/Nowhere"),
        "the log names the problem:\n{}",
        daemon_log()
    );
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "still running");
    // SIGHUP with a good one: applied.
    env.write_config(&config);
    crate::common::signal(pid, "HUP");
    wait_for("the reload", secs(10), || {
        daemon_log().contains("configuration reloaded")
    })
    .await;

    // /metrics answers in Prometheus text on the desk's address, never the public port.
    let public = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics on the webhook port");
    assert_eq!(public.status(), 404, "metrics are not on the public port");
    let metrics = reqwest::get(format!("http://127.0.0.1:{desk_port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("reminderd_sends_total{result=\"sent\""),
        "{metrics}"
    );

    // SIGTERM: exits 0 within the grace period and leaves nothing in `sending`.
    crate::common::signal(pid, "TERM");
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}\n{}", daemon_log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE state = 'sending'"),
        0
    );
    assert!(
        notes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains("STOPPING=1")
    );
    // Never twice: each outbox row reached the API once.
    let mut ids: Vec<String> = sim
        .messages()
        .iter()
        .map(|m| {
            m.body["biz_opaque_callback_data"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_keeps_the_old_config_on_an_overflowing_duration_and_logs_a_new_ones_warnings() {
    let env = Env::new();
    let port = crate::common::free_port();
    let config = crate::common::fast_daemon(
        &std::fs::read_to_string(env.path("reminders.toml")).expect("config"),
    );
    env.write_config(&config);
    let sim = Sim::start(sim_config("tok")).await.expect("sim");

    let log = std::fs::File::create(env.path("daemon.log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reminderd"))
        .arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("WHATSAPP_ACCESS_TOKEN", "tok")
        .envs(crate::common::SMS_SECRETS)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_VERIFY_TOKEN", "verify")
        .env("REMINDERD_API_BASE", sim.base_url())
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start daemon");
    let pid = child.id();
    let daemon_log = || std::fs::read_to_string(env.path("daemon.log")).unwrap_or_default();
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    let answers = || async {
        reqwest::get(&healthz)
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    // "running" is logged once the signal handlers are in: a SIGHUP before them would kill
    // any process, fixed or not.
    Wait::new("the daemon to come up", secs(30))
        .context(daemon_log)
        .until_async(async || {
            exited_fails(&mut child, "before coming up", daemon_log);
            daemon_log().contains("reminderd running") && answers().await
        })
        .await;

    env.write_config(config.replace(
        "stale_after = \"5m\"",
        "stale_after = \"9999999999999999d\"",
    ));
    crate::common::signal(pid, "HUP");
    Wait::new("the refusal to be logged", secs(10))
        .context(daemon_log)
        .until(|| {
            exited_fails(&mut child, "on SIGHUP", daemon_log);
            daemon_log().contains("configuration not reloaded")
        })
        .await;
    assert!(
        daemon_log().contains("daemon.stale_after") && daemon_log().contains("keeping the old one"),
        "the log names the key and says the old config stays:\n{}",
        daemon_log()
    );
    assert!(child.try_wait().expect("poll").is_none(), "still running");
    assert!(answers().await, "healthz still answers:\n{}", daemon_log());

    // A valid but risky config is applied, and its warning is logged with the key. (The desk
    // keeps the socket it bound at start, so nothing listens beyond loopback.)
    assert!(config.contains("listen = \"127.0.0.1:0\""));
    env.write_config(config.replace("listen = \"127.0.0.1:0\"", "listen = \"192.0.2.7:8081\""));
    crate::common::signal(pid, "HUP");
    Wait::new("the reload to be logged", secs(10))
        .context(daemon_log)
        .until(|| {
            exited_fails(&mut child, "on SIGHUP", daemon_log);
            daemon_log().contains("configuration reloaded")
        })
        .await;
    assert!(
        daemon_log().contains(
            "configuration warning: desk.secure_cookies: is off while desk.listen = 192.0.2.7:8081"
        ),
        "the warning is logged with its key:\n{}",
        daemon_log()
    );

    crate::common::signal(pid, "TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}\n{}", daemon_log());
}

/// Fails the test at once, with the log, if the daemon has exited: a wait on it would only
/// time out.
fn exited_fails(child: &mut std::process::Child, when: &str, log: impl Fn() -> String) {
    if let Some(status) = child.try_wait().expect("poll") {
        panic!("the daemon exited {when} ({status:?}):\n{}", log());
    }
}
