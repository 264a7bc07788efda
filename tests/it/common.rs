//! Fixtures shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use reminderd::store::sql::{Conn, PgOptions};
use serde_json::Value;

/// The example config shipped in the repo (so tests exercise it), with the database in the
/// test's folder and a date-line clinic added for time-zone tests.
pub fn test_config() -> String {
    let shipped = include_str!("../../reminders.toml")
        .replace("path = \"reminderd.db\"", "path = \"test.db\"")
        // Tests run side by side: each desk takes any free port.
        .replace("listen = \"127.0.0.1:8081\"", "listen = \"127.0.0.1:0\"");
    format!(
        "{shipped}\n[clinics.apia]\ndisplay_name = \"Apia Family Practice\"\ntime_zone = \"Pacific/Apia\"\nphone_region = \"WS\"\n"
    )
}

/// The SMS providers' secrets the shipped config needs (it configures Twilio and MSG91), as
/// the simulator accepts them: every test that starts the daemon or sends gives them.
pub const SMS_SECRETS: [(&str, &str); 3] = [
    ("TWILIO_AUTH_TOKEN", "sim-twilio-token"),
    ("MSG91_AUTH_KEY", "sim-msg91-key"),
    ("MSG91_WEBHOOK_TOKEN", "msg91-webhook-token-for-tests"),
];

/// The default CSV header.
pub const HEADER: &str = "appointment_id,patient_id,patient_name,phone,language,date,time,duration_min,provider,clinic,status";

/// A temporary folder with a config and a database: the SQLite file `test.db` in the folder,
/// or, when the suite runs on PostgreSQL (`REMINDERD_TEST_POSTGRES`), a database of its own.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// The test's PostgreSQL database, when the suite runs on PostgreSQL.
    pub pg: Option<PgOptions>,
}

/// `config` with its `[database]` pointed at `pg` (unchanged without one).
pub fn on_database(config: &str, pg: Option<&PgOptions>) -> String {
    match pg {
        Some(pg) => config.replace("path = \"test.db\"", &format!("url = \"{}\"", pg.url)),
        None => config.to_string(),
    }
}

/// Whether this run of the suite is on PostgreSQL: tests of what only the SQLite file has
/// (backups, its schema steps, its locks) return early then.
pub fn on_postgres() -> bool {
    reminderd::store::sql::testing::on_postgres()
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = reminderd::store::sql::testing::fresh_database();
        // The schema is there before the first command, as the SQLite file's absence is
        // read as "nothing yet" by the tests.
        if let Some(pg) = &pg {
            reminderd::store::Store::connect(pg).expect("create the schema");
        }
        std::fs::write(
            dir.path().join("reminders.toml"),
            on_database(&test_config(), pg.as_ref()),
        )
        .expect("write config");
        Self { dir, pg }
    }

    /// Writes the folder's `reminders.toml`: `config` with its database pointed at the
    /// test's own (a config built from [`test_config`] names the SQLite file).
    pub fn write_config(&self, config: impl AsRef<str>) {
        std::fs::write(
            self.path("reminders.toml"),
            on_database(config.as_ref(), self.pg.as_ref()),
        )
        .expect("write config");
    }

    /// The environment a command needs to reach the test's database.
    pub fn db_env(&self) -> Vec<(&'static str, String)> {
        self.pg
            .iter()
            .filter_map(|pg| pg.password.clone())
            .map(|p| ("REMINDERD_DATABASE_PASSWORD", p))
            .collect()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("test.db")
    }

    /// Writes a file in the folder and returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// Runs `reminderd --config <folder>/reminders.toml ARGS` (unless ARGS name a config).
    pub fn run(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reminderd"));
        if !args.contains(&"--config") {
            cmd.arg("--config").arg(self.path("reminders.toml"));
        }
        let out = cmd
            .args(args)
            .env_remove("REMINDERD_CONFIG")
            .env_remove("RUST_LOG")
            .envs(self.db_env())
            .output()
            .expect("run reminderd");
        Run::from(out)
    }

    /// Runs the binary with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        Run::from(self.command(args, envs).output().expect("run reminderd"))
    }

    /// Runs the binary with `input` on standard input (not a terminal), as a script would.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write as _;
        let mut child = self
            .command(args, &[])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn reminderd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write standard input");
        Run::from(child.wait_with_output().expect("wait for reminderd"))
    }

    /// Starts the binary without waiting for it (for tests that kill it).
    pub fn spawn(&self, args: &[&str], envs: &[(&str, &str)]) -> std::process::Child {
        self.command(args, envs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn reminderd")
    }

    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reminderd"));
        cmd.arg("--config")
            .arg(self.path("reminders.toml"))
            .args(args);
        cmd.env_remove("REMINDERD_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .envs(SMS_SECRETS)
            .envs(self.db_env());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Imports a CSV given as text, with `--json`, and returns the run.
    pub fn import(&self, name: &str, csv: &str, extra: &[&str]) -> Run {
        let f = self.file(name, csv);
        let mut args = vec!["import", f.to_str().expect("utf-8 path"), "--json"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Every appointment from far in the past on, as JSON objects.
    pub fn appointments(&self) -> Vec<Value> {
        let r = self.run(&["appointments", "--from", "2000-01-01", "--json"]);
        assert_eq!(r.code, 0, "appointments failed: {}", r.stderr);
        r.json().as_array().expect("array").clone()
    }

    /// The appointment with this external id.
    pub fn appointment(&self, id: &str) -> Value {
        self.appointments()
            .into_iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no appointment {id}"))
    }

    /// A connection to the test's database, SQLite or PostgreSQL.
    pub fn sql(&self) -> Conn {
        match &self.pg {
            Some(pg) => Conn::postgres(pg).expect("connect to the test database"),
            None => Conn::sqlite(rusqlite::Connection::open(self.db()).expect("open db")),
        }
    }

    /// The test's store, opened as the daemon would (created on first use).
    pub fn store(&self) -> Result<reminderd::store::Store, reminderd::store::StoreError> {
        match &self.pg {
            Some(pg) => reminderd::store::Store::connect(pg),
            None => reminderd::store::Store::open(&self.db()),
        }
    }

    /// Whether the database exists yet (a PostgreSQL one always does).
    pub fn has_db(&self) -> bool {
        self.pg.is_some() || self.db().exists()
    }

    pub fn count(&self, sql: &str) -> i64 {
        if !self.has_db() {
            return 0;
        }
        self.sql().query_row(sql, (), |r| r.get(0)).expect("count")
    }
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A CSV file from data rows under the default header.
pub fn csv(rows: &[&str]) -> String {
    let mut s = String::from(HEADER);
    for r in rows {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s
}

/// The simulator's template catalogue: every template and language of the shipped config,
/// approved.
pub fn sim_templates() -> Vec<reminderd::sim::SimTemplate> {
    let config = reminderd::config::Config::from_toml(&test_config(), Path::new("reminders.toml"))
        .expect("test config");
    reminderd::sim::templates_from_config(&config)
}

/// The simulator as the shipped config's business account: its ids, the given access token
/// (the one the test hands the binary in `WHATSAPP_ACCESS_TOKEN`) and every shipped template
/// approved. Everything else is the simulator's default; a test changes what it needs with
/// `SimConfig { webhook_url: …, ..sim_config(token) }`.
pub fn sim_config(access_token: &str) -> reminderd::sim::SimConfig {
    reminderd::sim::SimConfig {
        phone_number_id: "106540352242922".into(),
        waba_id: "102290129340398".into(),
        access_token: access_token.into(),
        templates: sim_templates(),
        ..reminderd::sim::SimConfig::default()
    }
}

/// Polls `probe` until it holds; panics after `limit`, naming `what` was awaited.
pub async fn wait_for(what: &str, limit: Duration, probe: impl FnMut() -> bool) {
    Wait::new(what, limit).until(probe).await;
}

/// A poll with a deadline (after pueue's `tests/helper/wait.rs`): the tests drive a real
/// process, so what they check becomes true at some later moment, and a fixed sleep would be
/// either flaky or slow. `Wait::new(what, limit)` polls every 50 ms; `every` changes that and
/// `context` adds text to the timeout message (a log tail, the outbox's states).
#[must_use = "a Wait does nothing until `until` or `until_async` is awaited"]
pub struct Wait<'a> {
    what: &'a str,
    limit: Duration,
    every: Duration,
    context: Option<Box<dyn Fn() -> String + 'a>>,
}

impl<'a> Wait<'a> {
    pub fn new(what: &'a str, limit: Duration) -> Self {
        Self {
            what,
            limit,
            every: Duration::from_millis(50),
            context: None,
        }
    }

    /// Polls this often: shorter where a test acts the moment the probe holds (a kill
    /// mid-queue), longer where the probe is costly (counting rows while a daemon writes).
    pub fn every(self, every: Duration) -> Self {
        Self { every, ..self }
    }

    /// Appended to the timeout message, computed only then.
    pub fn context(self, context: impl Fn() -> String + 'a) -> Self {
        Self {
            context: Some(Box::new(context)),
            ..self
        }
    }

    /// Polls `probe` until it holds; panics once `limit` has passed without it.
    pub async fn until(self, mut probe: impl FnMut() -> bool) {
        self.until_async(async || probe()).await;
    }

    /// As `until`, for a probe that awaits (an HTTP health check). The probe may panic itself
    /// to fail at once, e.g. when the process it waits on has exited.
    pub async fn until_async(self, mut probe: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + self.limit;
        while !probe().await {
            if tokio::time::Instant::now() >= deadline {
                let context = self.context.as_ref().map(|c| c()).unwrap_or_default();
                panic!(
                    "timed out after {:?} waiting for {}\n{context}",
                    self.limit, self.what
                );
            }
            tokio::time::sleep(self.every).await;
        }
    }
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A free loopback port (bound and released; the race with another process is acceptable
/// for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Sends a signal to a process by name (`TERM`, `HUP`, `KILL`).
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// The config for a daemon under test: no quiet hours (tests run at any hour), no spacing
/// between one patient's messages, and both jobs every second.
pub fn fast_daemon(config: &str) -> String {
    config
        .replace("quiet_hours = \"21:00-08:00\"", "")
        .replace("recipient_spacing = \"6s\"", "recipient_spacing = \"0s\"")
        .replace("plan = \"0 * * * * *\"", "plan = \"*/1 * * * * *\"")
        .replace(
            "dispatch = \"*/15 * * * * *\"",
            "dispatch = \"*/1 * * * * *\"",
        )
}

/// The peak resident memory (`VmHWM` in /proc/PID/status) of a running process, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM line in:\n{status}"))
}

// The suite exercises only a wait that succeeds; this pins what a failing one reports.
#[tokio::test]
#[should_panic(expected = "timed out after 30ms waiting for the impossible\nthe log tail")]
async fn a_wait_that_times_out_names_what_it_awaited_and_adds_the_context() {
    Wait::new("the impossible", Duration::from_millis(30))
        .context(|| "the log tail".into())
        .until(|| false)
        .await;
}
