//! Where the real binary's log goes: plain lines into pipes and files, colour only at a
//! terminal (and not with `NO_COLOR`), native journald entries when stderr is the journal.
//!
//! The journald tests run the binary in its own user and mount namespace (`unshare`) with a
//! folder of the test's mounted over `/run`, so the journal socket it finds is the test's.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reminderd::sim::Sim;

use crate::common::{Env, csv, sim_config};

/// 10:00 IST on Tue 1 Dec 2026: the day-before reminder of A1 is due.
const NOW: &str = "2026-12-01T04:30:00Z";
/// When the schedule is imported: fixed, and more than a day before `NOW`, so no booking
/// confirmation is due at `NOW` whatever the real date (imported at the real time, the
/// appointments were confirmed from a day before `NOW` on).
const IMPORTED: &str = "2026-11-29T00:00:00Z";
const A1: &str = "A1,P1,Aarav Sharma,98200 12345,en,2026-12-02,09:00,15,Dr. Mehta,mumbai,booked";
/// A1's number as logs may show it, and the digits that must never appear.
const MASKED: &str = "+91******2345";
const FULL: &str = "9820012345";

/// A folder with one reminder planned and a simulator to send it to: `send` then logs one
/// "sent" line naming the recipient (masked).
struct Sending {
    env: Arc<Env>,
    sim: Sim,
}

impl Sending {
    async fn new() -> Self {
        let env = Env::new();
        let config = std::fs::read_to_string(env.path("reminders.toml")).expect("config");
        let config = config
            .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
            // The import happens at the real time; --now is days away from it.
            .replace("max_import_age = \"36h\"", "max_import_age = \"3650d\"");
        env.write_config(config);
        env.import("day.csv", &csv(&[A1]), &["--now", IMPORTED])
            .expect(0);
        env.run(&["plan", "--now", NOW]).expect(0);
        let sim = Sim::start(sim_config("test-token"))
            .await
            .expect("simulator");
        Self {
            env: Arc::new(env),
            sim,
        }
    }

    /// `reminderd send` for the planned reminder, run under `wrap` (a program and its
    /// arguments, the binary's command line after them) or, with `[]`, directly.
    fn command(&self, wrap: &[&str]) -> Command {
        let bin = env!("CARGO_BIN_EXE_reminderd");
        let mut cmd = Command::new(wrap.first().copied().unwrap_or(bin));
        if !wrap.is_empty() {
            cmd.args(&wrap[1..]).arg(bin);
        }
        cmd.arg("--config")
            .arg(self.env.path("reminders.toml"))
            .args(["send", "--once", "--now", NOW, "--json"]);
        self.environment(&mut cmd);
        cmd
    }

    /// What the binary needs to send to the simulator, and nothing the tests' own
    /// environment could set for logging.
    fn environment(&self, cmd: &mut Command) {
        cmd.env_remove("REMINDERD_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("JOURNAL_STREAM")
            .env_remove("REMINDERD_LOG_FORMAT")
            .env_remove("CREDENTIALS_DIRECTORY")
            .envs(crate::common::SMS_SECRETS)
            .env("REMINDERD_API_BASE", self.sim.base_url())
            .env("WHATSAPP_ACCESS_TOKEN", "test-token")
            .stdin(Stdio::null());
    }

    /// The binary run directly; returns (exit code, stderr).
    async fn send(&self, envs: &[(&str, &str)]) -> (i32, String) {
        let mut cmd = self.command(&[]);
        cmd.envs(envs.iter().copied());
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run reminderd"))
            .await
            .expect("join");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The binary under `script`, whose pseudo-terminal is its stdout and stderr; returns
    /// what the terminal showed.
    async fn send_at_terminal(&self, envs: &[(&str, &str)]) -> String {
        let direct = self.command(&[]);
        let line = std::iter::once(direct.get_program())
            .chain(direct.get_args())
            .map(|a| format!("'{}'", a.to_str().expect("utf-8 argument")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"]);
        self.environment(&mut cmd);
        cmd.envs(envs.iter().copied());
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run script"))
            .await
            .expect("join");
        let shown = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "send under script failed:\n{shown}");
        shown
    }

    /// The binary with stderr on a file whose device and inode `JOURNAL_STREAM` names, in a
    /// namespace where `/run` is `run`; returns (exit code, what reached stderr).
    async fn send_under_systemd(&self, run: &Path) -> (i32, String) {
        let stderr_path = self.env.path("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let meta = stderr.metadata().expect("stat stderr file");
        let stream = format!("{}:{}", meta.dev(), meta.ino());
        let run = run.to_str().expect("utf-8 path").to_string();
        let mut cmd = self.command(&[
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            r#"mount --bind "$0" /run && exec "$@""#,
            &run,
        ]);
        cmd.env("JOURNAL_STREAM", &stream)
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr));
        let status = tokio::task::spawn_blocking(move || cmd.status().expect("run unshare"))
            .await
            .expect("join");
        let logged = std::fs::read_to_string(&stderr_path).expect("read stderr");
        (status.code().unwrap_or(-1), logged)
    }
}

/// The "sent" line: a log line naming the masked recipient.
fn sent_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| l.contains("sent") && l.contains(MASKED))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_gets_plain_lines_even_with_a_journal_stream_that_is_not_stderr() {
    let t = Sending::new().await;
    let (code, log) = t.send(&[]).await;
    assert_eq!(code, 0, "{log}");
    assert!(sent_line(&log).is_some(), "the send is logged:\n{log}");
    assert!(
        !log.contains("\x1b["),
        "no colour codes into a pipe:\n{log:?}"
    );
    assert!(!log.contains(FULL), "the number is masked:\n{log}");

    // Started from a service's shell with stderr redirected: the variable is inherited but
    // stderr is not the journal's stream.
    let t = Sending::new().await;
    let (code, log) = t.send(&[("JOURNAL_STREAM", "8:12345")]).await;
    assert_eq!(code, 0, "{log}");
    assert!(sent_line(&log).is_some(), "still logged to stderr:\n{log}");
    assert!(!log.contains("\x1b["), "no colour codes:\n{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_stay_json_lines() {
    let t = Sending::new().await;
    let (code, log) = t.send(&[("REMINDERD_LOG_FORMAT", "json")]).await;
    assert_eq!(code, 0, "{log}");
    let sent: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|v: &serde_json::Value| v["fields"]["message"] == "sent")
        .collect();
    assert_eq!(sent.len(), 1, "{log}");
    assert_eq!(sent[0]["fields"]["to"], MASKED);
    assert_eq!(sent[0]["level"], "INFO");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_gets_colour_and_no_color_turns_it_off() {
    let t = Sending::new().await;
    let shown = t.send_at_terminal(&[]).await;
    let line = sent_line(&shown).unwrap_or_else(|| panic!("the send is shown:\n{shown}"));
    assert!(line.contains("\x1b["), "coloured at a terminal: {line:?}");

    let t = Sending::new().await;
    let shown = t.send_at_terminal(&[("NO_COLOR", "1")]).await;
    assert!(sent_line(&shown).is_some(), "the send is shown:\n{shown}");
    assert!(!shown.contains("\x1b["), "NO_COLOR means none: {shown:?}");
}

/// One journal entry in the native protocol: `NAME=value\n`, or `NAME\n`, a little-endian
/// 64-bit length, the value and `\n` for values that may hold newlines.
fn journal_fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !d.is_empty() {
        let end = d
            .iter()
            .position(|&b| b == b'\n')
            .expect("field ends in a newline");
        let line = &d[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = String::from_utf8_lossy(&line[..eq]).into_owned();
            fields.push((name, String::from_utf8_lossy(&line[eq + 1..]).into_owned()));
            d = &d[end + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let len = u64::from_le_bytes(d[end + 1..end + 9].try_into().expect("length"));
            let start = end + 9;
            let value = &d[start..start + len as usize];
            fields.push((name, String::from_utf8_lossy(value).into_owned()));
            assert_eq!(d[start + len as usize], b'\n', "value ends in a newline");
            d = &d[start + len as usize + 1..];
        }
    }
    fields
}

#[tokio::test(flavor = "multi_thread")]
async fn under_systemd_entries_go_to_journald_with_priority_identifier_and_fields() {
    let t = Sending::new().await;
    let run = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(run.path().join("systemd/journal")).expect("journal folder");
    let socket =
        UnixDatagram::bind(run.path().join("systemd/journal/socket")).expect("journal socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");

    let (code, stderr) = t.send_under_systemd(run.path()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("sent"),
        "log entries go to the journal, not its stream:\n{stderr}"
    );
    socket.set_nonblocking(true).expect("nonblocking");
    let mut entries = Vec::new();
    let mut buf = vec![0; 1 << 20];
    while let Ok(n) = socket.recv(&mut buf) {
        if n > 0 {
            entries.push(journal_fields(&buf[..n]));
        }
    }
    let field = |e: &[(String, String)], name: &str| {
        e.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let sent: Vec<_> = entries
        .iter()
        .filter(|e| field(e, "MESSAGE").starts_with("sent"))
        .collect();
    assert_eq!(sent.len(), 1, "one entry for the send: {entries:#?}");
    let sent = sent[0];
    assert_eq!(field(sent, "PRIORITY"), "6", "info is priority 6: {sent:?}");
    assert_eq!(field(sent, "SYSLOG_IDENTIFIER"), "reminderd");
    assert_eq!(
        field(sent, "F_TO"),
        MASKED,
        "the fields are journal fields: {sent:?}"
    );
    assert_eq!(field(sent, "F_CHANNEL"), "whatsapp");
    // `journalctl -u reminderd` prints MESSAGE only: it carries the fields too.
    assert!(
        field(sent, "MESSAGE").contains(&format!("to={MASKED}")),
        "{sent:?}"
    );
    for e in &entries {
        for (name, value) in e {
            assert!(
                !value.contains(FULL) && !value.contains("test-token"),
                "no number or secret in {name}={value}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn under_systemd_without_a_journal_socket_plain_lines_go_to_stderr() {
    let t = Sending::new().await;
    let run = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = t.send_under_systemd(run.path()).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("journald socket unavailable"),
        "says why:\n{stderr}"
    );
    assert!(
        sent_line(&stderr).is_some(),
        "the send is logged:\n{stderr}"
    );
    assert!(!stderr.contains("\x1b["), "no colour codes:\n{stderr:?}");
}
