//! The HL7 v2 SIU feed end to end: the real daemon listens, `mllp_send` (the PyPI `hl7`
//! package's sender, not ours) sends real-shaped SIU messages from `tests/fixtures/hl7/`, and
//! what is stored, planned and sent is checked. `REMINDERD_FEED_TESTS=require` (set by
//! `.ci/run`) makes a missing `mllp_send` a failure instead of a skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Kolkata;
use reminderd::sim::{Sim, SimConfig};

use crate::common::{Env, Wait, free_port, repo_file, signal};

/// `mllp_send` on PATH or in pip's `--user` folder; `None` (after saying so) to skip.
fn mllp_send() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("mllp_send"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from(home).join(".local/bin/mllp_send")])
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("REMINDERD_FEED_TESTS").as_deref() != Ok("require"),
            "mllp_send is missing (pip install --user hl7) and REMINDERD_FEED_TESTS=require"
        );
        eprintln!("skipped: mllp_send not found (pip install --user hl7)");
    }
    found
}

struct Feed {
    env: Env,
    port: u16,
    daemon: Option<Child>,
    runs: usize,
}

fn hl7_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Kolkata).format("%Y%m%d%H%M%S").to_string()
}

impl Feed {
    fn new() -> Self {
        let env = Env::new();
        let port = free_port();
        let config = std::fs::read_to_string(env.path("reminders.toml"))
            .expect("config")
            // No booking messages: nothing is due until the test's --now.
            .replace("enabled = true", "enabled = false");
        let config = format!(
            "{config}\n[feeds.ehr]\nkind = \"hl7\"\nclinic = \"mumbai\"\nlisten = \"127.0.0.1:{port}\"\nmax_message_bytes = 8192\n[feeds.ehr.locations]\n\"NYC-MAIN\" = \"nyc\"\n"
        );
        env.write_config(config);
        Self {
            env,
            port,
            daemon: None,
            runs: 0,
        }
    }

    fn start(&mut self) {
        self.runs += 1;
        let log = std::fs::File::create(self.env.path(&format!("daemon-{}.log", self.runs)))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_reminderd"))
            .arg("--config")
            .arg(self.env.path("reminders.toml"))
            .args(["run", "--listen", &format!("127.0.0.1:{}", free_port())])
            .env("WHATSAPP_ACCESS_TOKEN", "tok")
            .envs(crate::common::SMS_SECRETS)
            .env("WHATSAPP_APP_SECRET", "secret")
            .env("WHATSAPP_VERIFY_TOKEN", "verify")
            .env("REMINDERD_API_BASE", "http://127.0.0.1:9")
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start daemon");
        self.daemon = Some(child);
    }

    async fn ready(&self) {
        let port = self.port;
        Wait::new("the HL7 listener", Duration::from_secs(20))
            .context(|| self.log())
            .until(|| TcpStream::connect(("127.0.0.1", port)).is_ok())
            .await;
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.env.path(&format!("daemon-{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// A fixture with its placeholders filled, written to the test folder.
    fn fixture(&self, name: &str, id: &str, appt: &str, start: DateTime<Utc>) -> PathBuf {
        let text = std::fs::read_to_string(repo_file(&format!("tests/fixtures/hl7/{name}")))
            .expect("fixture")
            .replace("{NOW}", &hl7_time(reminderd::time::Clock::System.now()))
            .replace("{ID}", id)
            .replace("{APPT}", appt)
            .replace("{START}", &hl7_time(start))
            .replace("{END}", &hl7_time(start + chrono::Duration::minutes(30)));
        self.env.file(&format!("{id}.hl7"), text)
    }

    /// Sends a file with `mllp_send --loose`; returns the ACKs it printed.
    fn send(&self, tool: &PathBuf, file: &PathBuf) -> String {
        let out = Command::new(tool)
            .args(["--loose", "-p", &self.port.to_string(), "-f"])
            .arg(file)
            .arg("127.0.0.1")
            .output()
            .expect("run mllp_send");
        assert!(
            out.status.success(),
            "mllp_send failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).replace('\r', "\n")
    }

    fn count(&self, sql: &str) -> i64 {
        self.env.count(sql)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn siu_from_mllp_send_books_moves_and_cancels_and_replays_apply_once() {
    let Some(tool) = mllp_send() else { return };
    let mut f = Feed::new();
    f.start();
    f.ready().await;
    let sim = Sim::start(SimConfig {
        pair_limit: None,
        ..crate::common::sim_config("tok")
    })
    .await
    .expect("simulator");
    let base = sim.base_url();
    let cli = |args: &[&str]| {
        f.env.run_with_env(
            args,
            &[
                ("REMINDERD_API_BASE", base.as_str()),
                ("WHATSAPP_ACCESS_TOKEN", "tok"),
            ],
        )
    };
    // 11:00 at the clinic two days from now: its day-before reminder falls outside quiet
    // hours whatever the hour the test runs at.
    let now = reminderd::time::Clock::System.now();
    let day = (now + chrono::Duration::days(2))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    let start = day
        .and_hms_opt(11, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono_tz::Asia::Kolkata).single())
        .expect("11:00 exists")
        .with_timezone(&chrono::Utc);

    // S12 (v2.3, SCH-11, no TQ1): the appointment exists, its reminders are planned.
    let s12 = f.fixture("s12-v23.hl7", "M-1", "A1001", start);
    let ack = f.send(&tool, &s12);
    assert!(ack.contains("MSA|AA|M-1"), "{ack}");
    assert!(
        ack.contains("|REMINDERD|CLINIC|SUNRISE|MUMBAI-OPD|"),
        "sender and receiver swapped: {ack}"
    );
    let a = f.env.appointment("A1001");
    assert_eq!(a["status"], "booked", "{a}");
    let at = f.env.sql().query_row(
        "SELECT a.starts_at, a.duration_min, a.provider, a.source, p.phone, p.language FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'A1001'",
        (),
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?)),
    ).expect("stored");
    assert_eq!(
        at,
        (
            start.timestamp(),
            30,
            "Dr Vikram Rao".into(),
            "ehr".into(),
            "+919876543210".into(),
            "hi".into()
        )
    );
    let due = start - chrono::Duration::days(1) + chrono::Duration::minutes(1);
    cli(&["plan", "--now", &rfc(due)]).expect(0);
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE state = 'pending'"),
        1,
        "the day-before reminder"
    );

    // The same message again: acknowledged AA, applied once.
    let audits = f.count("SELECT count(*) FROM audit_log");
    let ack = f.send(&tool, &s12);
    assert!(ack.contains("MSA|AA|M-1"), "{ack}");
    assert_eq!(f.count("SELECT count(*) FROM audit_log"), audits);
    assert_eq!(
        f.count("SELECT replays FROM feed_messages WHERE message_id = 'M-1'"),
        1
    );

    // S13 (v2.5.1, TQ1 with an offset) moves it a day later: the old reminder is skipped at
    // send time, a new one is planned, nothing is sent now.
    let later = start + chrono::Duration::days(1);
    let ack = f.send(&tool, &f.fixture("s13-v251.hl7", "M-2", "A1001", later));
    assert!(ack.contains("MSA|AA|M-2"), "{ack}");
    assert_eq!(
        f.count("SELECT starts_at FROM appointments WHERE external_id = 'A1001'"),
        later.timestamp()
    );
    assert_eq!(
        f.count("SELECT count(*) FROM audit_log WHERE reason = 'SIU^S13 M-2'"),
        1
    );
    cli(&["plan", "--now", &rfc(due)]).expect(0);
    cli(&["send", "--once", "--now", &rfc(due)]).expect(0);
    assert!(
        sim.messages().is_empty(),
        "the moved appointment's old reminder went out"
    );
    assert!(f.count("SELECT count(*) FROM outbox WHERE state = 'skipped'") >= 1);
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE state = 'pending'"),
        0
    );
    let due2 = later - chrono::Duration::days(1) + chrono::Duration::minutes(1);
    cli(&["plan", "--now", &rfc(due2)]).expect(0);
    assert_eq!(
        f.count("SELECT count(*) FROM outbox WHERE state = 'pending'"),
        1,
        "the new day-before reminder is planned"
    );

    // S15 cancels: when the new reminder falls due, nothing goes out.
    let ack = f.send(&tool, &f.fixture("s15-v251.hl7", "M-3", "A1001", later));
    assert!(ack.contains("MSA|AA|M-3"), "{ack}");
    assert_eq!(f.env.appointment("A1001")["status"], "cancelled");
    cli(&["send", "--once", "--now", &rfc(due2)]).expect(0);
    assert!(
        sim.messages().is_empty(),
        "a reminder went out for a cancelled appointment"
    );

    // Malformed: not SIU → AR; SIU without a start → AE with its reason; nothing changes.
    let before =
        f.count("SELECT count(*) FROM appointments") + f.count("SELECT count(*) FROM audit_log");
    let adt = f.env.file(
        "adt.hl7",
        "MSH|^~\\&|SUNRISE|MUMBAI-OPD|REMINDERD|CLINIC|20261125||ADT^A04|M-4|P|2.3\nPID|1||MRN42\n",
    );
    let ack = f.send(&tool, &adt);
    assert!(
        ack.contains("MSA|AR|M-4|MSH-9 is ADT A04: not a scheduling message (SIU)"),
        "{ack}"
    );
    let text = std::fs::read_to_string(&s12)
        .expect("s12")
        .replace("M-1", "M-5")
        .replace(
            &format!(
                "^^^{}^{}",
                hl7_time(start),
                hl7_time(start + chrono::Duration::minutes(30))
            ),
            "",
        );
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("AI"))
        .collect::<Vec<_>>()
        .join("\n");
    let ack = f.send(&tool, &f.env.file("nostart.hl7", text));
    assert!(
        ack.contains("MSA|AE|M-5|SCH-11.4 and TQ1-7 are both empty"),
        "{ack}"
    );
    assert!(
        ack.contains(
            "ERR|||207^Application internal error^HL70357|E||||SCH-11.4 and TQ1-7 are both empty"
        ),
        "{ack}"
    );
    assert_eq!(
        f.count("SELECT count(*) FROM appointments") + f.count("SELECT count(*) FROM audit_log"),
        before
    );
    assert_eq!(
        f.count("SELECT count(*) FROM feed_messages WHERE state = 'refused'"),
        2
    );

    // POST /hl7 on the same port does the same: a new booking, ACK as the body.
    let body =
        std::fs::read_to_string(f.fixture("s12-v23.hl7", "H-1", "A2002", start)).expect("fixture");
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/hl7", f.port))
        .body(body.replace('\n', "\r"))
        .send()
        .await
        .expect("POST /hl7");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "x-application/hl7-v2+er7");
    let ack = resp.text().await.expect("body");
    assert!(ack.contains("\rMSA|AA|H-1\r"), "{ack}");
    assert_eq!(f.env.appointment("A2002")["status"], "booked");
    assert!(!f.log().contains("9876543210"), "a phone number in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn pid13_variants_sent_together_store_each_patients_mobile() {
    let Some(tool) = mllp_send() else { return };
    let mut f = Feed::new();
    f.start();
    f.ready().await;
    let start = reminderd::time::Clock::System.now() + chrono::Duration::days(3);
    let acks = f.send(&tool, &f.fixture("pid13-variants.hl7", "V", "", start));
    for id in ["V-1", "V-2", "V-3"] {
        assert!(acks.contains(&format!("MSA|AA|{id}")), "{acks}");
    }
    let phone = |id: &str| -> String {
        f.env.sql().query_row(
            "SELECT p.phone FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = ?1",
            [id],
            |r| r.get(0),
        ).expect("phone")
    };
    assert_eq!(
        phone("V1"),
        "+919820012345",
        "CP in the second repetition, not the PRN landline"
    );
    assert_eq!(phone("V2"), "+919123456789", "XTN.12 unformatted");
    assert_eq!(phone("V3"), "+919811122233", "XTN.5-7 components");
}

/// Sends `message` over one MLLP connection; `None` when no ACK came (the daemon died).
fn send_raw(port: u16, message: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut framed = vec![0x0b];
    framed.extend(message.as_bytes());
    framed.extend([0x1c, 0x0d]);
    s.write_all(&framed).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(&[0x1c, 0x0d]) {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_seeded_moments_leaves_every_message_applied_exactly_once() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) * 2_654_435_761 % 1_000_003 + 1);
    println!("HL7 crash test seed: {seed} (replay with CRASH_SEED={seed})");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut f = Feed::new();
    f.start();
    f.ready().await;
    // 12 appointments, each booked then moved back and forth: a message applied twice, or
    // one lost, leaves a wrong time or a wrong count of audit rows.
    let base = reminderd::time::Clock::System.now() + chrono::Duration::days(2);
    let base = base - chrono::Duration::seconds(base.timestamp() % 60);
    let mut messages = Vec::new();
    for k in 0..12 {
        for step in 0..5 {
            let start =
                base + chrono::Duration::minutes(15 * k + if step % 2 == 1 { 60 } else { 0 });
            let event = if step == 0 { "S12" } else { "S13" };
            let id = format!("C{k}-{step}");
            messages.push((id.clone(), format!(
                "MSH|^~\\&|EHR|OPD|RD|RD|20261125||SIU^{event}|{id}|P|2.5.1\rSCH||K{k}|||||||30|MIN\rTQ1|1||||||{}\rPID|1||Q{k}||Patient^Number {k}||||||||^PRN^CP^^^^^^^^^98{:08}",
                hl7_time(start),
                10_000_000 + k
            )));
        }
    }
    let mut kills = 0;
    let mut i = 0;
    let mut kill_at = 2 + next() % 8;
    while i < messages.len() {
        if i as u64 == kill_at && kills < 6 {
            // Kill while this message may be between storing and committing.
            let port = f.port;
            let msg = messages[i].1.clone();
            let sender = std::thread::spawn(move || send_raw(port, &msg));
            tokio::time::sleep(Duration::from_micros(next() % 3000)).await;
            let pid = f.daemon.as_ref().expect("daemon").id();
            signal(pid, "KILL");
            let _ = f.daemon.take().map(|mut d| d.wait());
            let acked = sender.join().expect("sender");
            kills += 1;
            kill_at = i as u64 + 3 + next() % 8;
            f.start();
            f.ready().await;
            if acked.is_some_and(|a| a.contains("MSA|AA|")) {
                i += 1;
            }
            // No ACK: the same message is sent again below.
            continue;
        }
        let ack = send_raw(f.port, &messages[i].1)
            .unwrap_or_else(|| panic!("no ACK for {}\n{}", messages[i].0, f.log()));
        assert!(ack.contains(&format!("MSA|AA|{}", messages[i].0)), "{ack}");
        i += 1;
    }
    assert!(kills >= 3, "only {kills} kills");
    for (id, _) in &messages {
        assert_eq!(
            f.count(&format!(
                "SELECT count(*) FROM feed_messages WHERE message_id = '{id}' AND state = 'applied'"
            )),
            1,
            "{id}"
        );
    }
    assert_eq!(f.count("SELECT count(*) FROM appointments"), 12);
    for k in 0..12 {
        // Five messages end on an even step: the booking time.
        let start = base + chrono::Duration::minutes(15 * k);
        assert_eq!(
            f.count(&format!(
                "SELECT starts_at FROM appointments WHERE external_id = 'K{k}'"
            )),
            start.timestamp()
        );
        // Each of the four moves wrote exactly one audit row naming it.
        for step in 1..5 {
            assert_eq!(
                f.count(&format!(
                    "SELECT count(*) FROM audit_log WHERE reason = 'SIU^S13 C{k}-{step}'"
                )),
                1,
                "C{k}-{step}"
            );
        }
    }
}
