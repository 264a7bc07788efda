//! The day board over HTTP, as a receptionist uses it: every staff note on its row with who
//! and when, the row actions (arrived, completed, no-show and cancel behind a confirm page,
//! undo) with post/redirect/get back to the row, the desk-set status and what to change in
//! the practice system, no-show refused before the appointment's time, and the board's words
//! (answered or not, the last message, plural counts, filters, 12-hour clinics).
//!
//! `reminderd serve` runs on the real clock, so "before its time" uses appointments a few
//! days after today and "after its time" the example schedule's past day.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use reqwest::header::LOCATION;
use rusqlite::params;

use crate::common::{Env, HEADER, Wait, free_port, repo_file};

const USER: &str = "asha";
const PASSWORD: &str = "front-desk-password";
/// The example schedule's Mumbai day (in the past).
const DAY: &str = "2026-11-26";
const BOARD: &str = "/desk/day?clinic=mumbai&date=2026-11-26";

/// `reminderd serve` with its desk on a free port, killed when dropped.
struct Desk {
    env: Env,
    child: Child,
    url: String,
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Desk {
    /// The server on the shipped config with the example schedule and the user `asha`.
    async fn start() -> Self {
        let env = Env::new();
        let r = env.run_with_input(&["user", "add", USER], &format!("{PASSWORD}\n"));
        assert_eq!(r.code, 0, "user add: {}{}", r.stdout, r.stderr);
        let example = repo_file("examples/schedule.csv");
        env.run(&["import", example.to_str().expect("utf-8 path")])
            .expect(0);
        let desk = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(env.path("serve.log")).expect("create log");
        let child = Command::new(env!("CARGO_BIN_EXE_reminderd"))
            .arg("--config")
            .arg(env.path("reminders.toml"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--desk-listen", &desk])
            .env_remove("REMINDERD_CONFIG")
            .env_remove("RUST_LOG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("WHATSAPP_APP_SECRET", "app-secret-for-board-tests")
            .env("WHATSAPP_VERIFY_TOKEN", "verify-token-for-board-tests")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn reminderd serve");
        let d = Self {
            env,
            child,
            url: format!("http://{desk}"),
        };
        let probe = reqwest::Client::new();
        Wait::new("the desk to start", Duration::from_secs(20))
            .every(Duration::from_millis(20))
            .context(|| std::fs::read_to_string(d.env.path("serve.log")).unwrap_or_default())
            .until_async(async || {
                probe
                    .get(format!("{}/desk/login", d.url))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            })
            .await;
        d
    }

    /// A cookie-keeping client signed in as `asha`, holding its form token.
    async fn signed_in(&self) -> Client {
        let mut c = Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            url: self.url.clone(),
            csrf: String::new(),
        };
        let login = c.get("/desk/login").await;
        let token = field(&login.body, "csrf");
        let res = c
            .post(
                "/desk/login",
                &[
                    ("csrf", &token),
                    ("name", USER),
                    ("password", PASSWORD),
                    ("next", "/desk/day"),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "sign-in: {}", res.body);
        c.csrf = field(&c.get("/desk/day").await.body, "csrf");
        c
    }

    fn row(&self, external_id: &str) -> i64 {
        self.env
            .sql()
            .query_row(
                "SELECT id FROM appointments WHERE external_id = ?1",
                params![external_id],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no appointment {external_id}: {e}"))
    }

    fn one(&self, sql: &str) -> String {
        self.env
            .sql()
            .query_row(sql, [], |r| r.get::<_, String>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// When the newest audit row with this action was written, as Mumbai's clock showed it.
    fn mumbai_time_of(&self, action: &str) -> String {
        let at: i64 = self
            .env
            .sql()
            .query_row(
                "SELECT at FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1",
                params![action],
                |r| r.get(0),
            )
            .expect("an audit row");
        Utc.timestamp_opt(at, 0)
            .single()
            .expect("instant")
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .format("%H:%M")
            .to_string()
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    csrf: String,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    async fn from(res: reqwest::Response) -> Self {
        Self {
            status: res.status().as_u16(),
            location: res
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: res.text().await.expect("body"),
        }
    }

    fn location(&self) -> &str {
        self.location
            .as_deref()
            .unwrap_or_else(|| panic!("no redirect (status {}): {}", self.status, self.text()))
    }

    /// The page as a person reads it: tags removed, entities decoded, spaces collapsed.
    fn text(&self) -> String {
        text(&self.body)
    }

    /// The text of the table row `#a-<id>`.
    fn row_text(&self, id: i64) -> String {
        let start = self
            .body
            .find(&format!("id=\"a-{id}\""))
            .unwrap_or_else(|| panic!("no row a-{id} in:\n{}", self.text()));
        let end = self.body[start..]
            .find("</tr>")
            .map_or(self.body.len(), |e| start + e);
        text(&self.body[start..end])
    }
}

impl Client {
    async fn get(&self, path: &str) -> Page {
        Page::from(
            self.http
                .get(format!("{}{path}", self.url))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}")),
        )
        .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Page::from(
            self.http
                .post(format!("{}{path}", self.url))
                .form(form)
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {path}: {e}")),
        )
        .await
    }

    /// A board row's action (as its button posts it).
    async fn act(&self, row: i64, action: &str, note: &str) -> Page {
        self.post(
            "/desk/day/status",
            &[
                ("csrf", &self.csrf),
                ("row", &row.to_string()),
                ("action", action),
                ("note", note),
                ("date", DAY),
            ],
        )
        .await
    }
}

fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of the first hidden field `name`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let i = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"));
    let rest = &html[i + marker.len()..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

// ---- notes -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_note_typed_with_a_status_is_on_the_board_with_who_and_when() {
    let d = Desk::start().await;
    let c = d.signed_in().await;
    let rohan = d.row("MUM-1003");
    let priya = d.row("MUM-1002");
    // Set cancelled with a note, on the follow-up card's form.
    let res = c
        .post(
            "/desk/follow-ups/action",
            &[
                ("csrf", &c.csrf),
                ("clinic", "mumbai"),
                ("appointment", "MUM-1003"),
                ("date", DAY),
                ("action", "cancelled"),
                ("note", "moving to Pune, will call to rebook"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let cancelled_at = d.mumbai_time_of("status");
    for (action, note) in [("called", "no answer"), ("note", "prefers mornings")] {
        let res = c
            .post(
                "/desk/follow-ups/action",
                &[
                    ("csrf", &c.csrf),
                    ("clinic", "mumbai"),
                    ("appointment", "MUM-1002"),
                    ("date", DAY),
                    ("action", action),
                    ("note", note),
                ],
            )
            .await;
        assert_eq!(res.status, 303, "{}", res.text());
    }

    let board = c.get(BOARD).await;
    assert_eq!(board.status, 200, "{}", board.text());
    let row = board.row_text(rohan);
    assert!(
        row.contains(&format!(
            "{cancelled_at} asha: set cancelled — moving to Pune, will call to rebook"
        )),
        "the note, who and when on Rohan's row: {row}"
    );
    // Newest first.
    let row = board.row_text(priya);
    let (newer, older) = (
        row.find("asha: prefers mornings"),
        row.find("asha: called — no answer"),
    );
    assert!(
        newer.is_some() && older.is_some() && newer < older,
        "both notes on Priya's row, newest first: {row}"
    );
}
