//! The front desk in a real browser: headless Chromium driven over WebDriver (fantoccini),
//! against `reminderd serve` as a child process, one module per receptionist's task (sign-in
//! and upload, the day board, follow-ups, an old export, a patient, Remind now, tablet and
//! print). Each step leaves a screenshot in `target/desk-screenshots/` for a person to look
//! at; the README's pictures in `docs/` are copies of some (`desk-day.png` of `04-day.png`,
//! `desk-follow-ups.png` of `fu-01`, `desk-preview-undo.png` of `undo-01`, `desk-patient.png`
//! of `patient-02`, `desk-zoom-200.png` of `11-zoom-200`, `desk-print-day.png` of
//! `12-print-day`), refreshed by hand when a page's look changes.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: `apt-get install chromium
//! chromium-driver`). Without them the test says so and passes, unless
//! `REMINDERD_BROWSER_TESTS=require` is set (as `.ci/run` does), when it fails.

mod conversation;
mod day_board;
mod feeds;
mod follow_ups;
mod patient;
mod privacy;
mod remind;
mod tablet_print;
mod upload_day;
mod upload_refresh;
mod upload_undo;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::common::{Env, Wait, free_port, repo_file};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SKIPPED: &str = "browser test skipped: install chromium and chromium-driver (apt-get install chromium chromium-driver)";

/// How long a page may take to show what the test waits for.
const WAIT: Duration = Duration::from_secs(20);
/// How long the server and chromedriver may take to start.
const START: Duration = Duration::from_secs(30);

const USER: &str = "asha";
const PASSWORD: &str = "front-desk-password";

/// Whether the browser is installed; panics when it is not and it is required.
fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("REMINDERD_BROWSER_TESTS").as_deref() != Ok("require"),
        "{SKIPPED}; REMINDERD_BROWSER_TESTS=require is set, so it fails instead"
    );
    // Straight to standard error, not through the test harness's capture: a skip is seen
    // in a plain `cargo test` run.
    let _ = writeln!(std::io::stderr(), "{SKIPPED}");
    false
}

/// A child process in its own process group, killed with the whole group when dropped
/// (chromedriver's Chromium and its helpers are in it too). When the test is failing, the
/// end of the process's log is printed.
struct Guard {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Guard {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { name, child, log }
    }

    fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

/// The last 40 lines of a log file.
fn tail(log: &Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl Drop for Guard {
    fn drop(&mut self) {
        // The group's id is the child's (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- end of the {} log ---\n{}", self.name, self.log_tail());
        }
    }
}

/// Polls `url` until it answers 200 and `ready` accepts the body.
async fn wait_ready(guard: &mut Guard, url: &str, ready: impl Fn(&str) -> bool) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    // Split borrows: the probe polls the child while the timeout message reads the log.
    let Guard { name, child, log } = guard;
    Wait::new(&format!("{name} to answer {url}"), START)
        .context(|| tail(log))
        .until_async(async || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{name} exited ({status}) before answering {url}:\n{}",
                    tail(log)
                );
            }
            if let Ok(r) = http.get(url).send().await
                && r.status() == 200
            {
                ready(&r.text().await.unwrap_or_default())
            } else {
                false
            }
        })
        .await;
}

/// Adds a staff account, the password on standard input as a script would give it.
fn add_user(env: &Env) {
    env.run_with_input(&["user", "add", USER], &format!("{PASSWORD}\n"))
        .expect(0);
}

/// Starts `reminderd serve` with the desk on a free port and waits until it answers;
/// returns the guard and the desk's base URL.
async fn start_server(env: &Env) -> (Guard, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let desk = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reminderd"));
    cmd.arg("--config")
        .arg(env.path("reminders.toml"))
        .args(["serve", "--listen", &listen, "--desk-listen", &desk])
        .env_remove("REMINDERD_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env("WHATSAPP_APP_SECRET", "app-secret-for-tests")
        .env("WHATSAPP_VERIFY_TOKEN", "verify-token-for-tests")
        .envs(crate::common::SMS_SECRETS);
    let mut guard = Guard::spawn("reminderd serve", cmd, env.path("serve.log"));
    let base = format!("http://{desk}");
    wait_ready(&mut guard, &format!("{base}/desk/login"), |_| true).await;
    (guard, base)
}

/// Starts chromedriver on a free port and connects a headless Chromium session to it;
/// returns the guard, the session and chromedriver's URL.
async fn start_browser(env: &Env) -> (Guard, Client, String) {
    let port = free_port();
    let mut cmd = Command::new(CHROMEDRIVER);
    cmd.arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1");
    let mut guard = Guard::spawn("chromedriver", cmd, env.path("chromedriver.log"));
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&mut guard, &format!("{url}/status"), |body| {
        serde_json::from_str::<Value>(body).is_ok_and(|v| v["value"]["ready"] == true)
    })
    .await;
    let profile = env.path("chromium-profile");
    std::fs::create_dir_all(&profile).expect("profile folder");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-dev-shm-usage",
                "--lang=en-US",
            ],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let Value::Object(caps) = caps else {
        unreachable!("a JSON object")
    };
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}\n{}", guard.log_tail()));
    (guard, client, url)
}

/// Where screenshots go: `<target>/desk-screenshots` (next to `<target>/tmp`).
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target folder")
        .join("desk-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    // Only a failure of this run leaves one.
    let _ = std::fs::remove_file(dir.join("failed.png"));
    dir
}

/// An XPath string literal for `s` (the texts here have no apostrophes).
fn lit(s: &str) -> String {
    assert!(!s.contains('\''), "no apostrophes in XPath texts: {s}");
    format!("'{s}'")
}

/// Types `name` and `password` on the sign-in page `b` shows, presses Sign in, and waits
/// for the page that says "Signed in as" `name`.
async fn sign_in_as(b: &Browser, name: &str, password: &str) {
    b.field("Name")
        .await
        .send_keys(name)
        .await
        .expect("type name");
    b.field("Password")
        .await
        .send_keys(password)
        .await
        .expect("type password");
    b.button("Sign in").await.click().await.expect("sign in");
    b.find(&format!(
        "//header//form[contains(normalize-space(), {})]//strong[normalize-space() = {}]",
        lit("Signed in as"),
        lit(name)
    ))
    .await;
}

/// The browser session with helpers that wait and, on failure, say what the page showed.
struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
    chromedriver: String,
}

impl Browser {
    async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Fails the test with the page's address and text (and a `failed.png` screenshot).
    async fn fail(&self, what: &str) -> ! {
        let url = self
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("? ({e})"), |u| u.to_string());
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no page: {e})"),
        };
        self.shot("failed.png").await;
        panic!(
            "{what}\npage: {url}\n---\n{text}\n---\nscreenshot: {}",
            self.shots.join("failed.png").display()
        );
    }

    /// Waits for the first element at `xpath`.
    async fn find(&self, xpath: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(e) => e,
            Err(e) => {
                self.fail(&format!("no element {xpath} within {WAIT:?}: {e}"))
                    .await
            }
        }
    }

    /// Waits for the page whose heading contains `text`.
    async fn heading(&self, text: &str) -> String {
        let h1 = self
            .find(&format!(
                "//main/h1[contains(normalize-space(), {})]",
                lit(text)
            ))
            .await;
        h1.text().await.expect("heading text")
    }

    /// The form control that the label with this text is for.
    async fn field(&self, label: &str) -> Element {
        self.find(&format!(
            "//*[@id = //label[normalize-space() = {}]/@for]",
            lit(label)
        ))
        .await
    }

    async fn button(&self, text: &str) -> Element {
        self.find(&format!("//button[normalize-space() = {}]", lit(text)))
            .await
    }

    /// The rendered texts of the elements at `xpath`, white space collapsed to single spaces.
    async fn texts(&self, xpath: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self
            .client
            .find_all(Locator::XPath(xpath))
            .await
            .expect("find elements")
        {
            let text = e.text().await.expect("element text");
            out.push(text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        out
    }

    async fn body_text(&self) -> String {
        self.find("//body").await.text().await.expect("body text")
    }

    async fn path_and_query(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn shot(&self, name: &str) {
        match self.client.screenshot().await {
            Ok(png) => std::fs::write(self.shots.join(name), png).expect("write screenshot"),
            Err(e) => eprintln!("screenshot {name} failed: {e}"),
        }
    }

    /// Everything the page's console logged at level SEVERE (errors, CSP refusals), through
    /// chromedriver's log endpoint; `None` when this chromedriver has none.
    async fn console_errors(&self) -> Option<Vec<String>> {
        let id = self.client.session_id().await.ok()??;
        let r = reqwest::Client::new()
            .post(format!("{}/session/{id}/se/log", self.chromedriver))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        let entries = v["value"].as_array()?;
        Some(
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                // Chromium asks for /favicon.ico on its own; the desk has none.
                .filter(|m| !m.contains("/favicon.ico"))
                .collect(),
        )
    }
}
