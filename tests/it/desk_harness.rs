//! The shared harness of the desk's HTTP tests: `reminderd serve` (or `run`) as a child process
//! on free ports with the shipped config, staff accounts, a cookie-keeping client that does not
//! follow redirects, the answers it gets, and the HTML and SQL helpers the checks use.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reminderd::store::sql::params;
use reqwest::header::{HeaderMap, HeaderName, LOCATION, SET_COOKIE};
use reqwest::multipart;

use crate::common::{Env, Wait, csv, free_port};

/// How to start a desk: the config edit, the mode and the environment variables.
pub struct Start<'a> {
    env: Env,
    edit: Box<dyn FnOnce(String) -> String + 'a>,
    daemon: bool,
    vars: Vec<(String, String)>,
}

impl<'a> Start<'a> {
    /// Changes the shipped config (before the desk's address is written into it).
    pub fn edit(mut self, edit: impl FnOnce(String) -> String + 'a) -> Self {
        self.edit = Box::new(edit);
        self
    }

    /// Starts `reminderd run` (the daemon, which reloads on SIGHUP) instead of `serve`.
    pub fn daemon(mut self) -> Self {
        self.daemon = true;
        self
    }

    /// Sets an environment variable of the server (over the harness's own values).
    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_string(), value.into()));
        self
    }

    /// Adds the staff account `name` before the server starts.
    pub fn user(self, name: &str, password: &str) -> Self {
        let r = self
            .env
            .run_with_input(&["user", "add", name], &format!("{password}\n"));
        assert_eq!(r.code, 0, "user add {name}: {}{}", r.stdout, r.stderr);
        self
    }

    /// Starts the server. When a port it was given was taken meanwhile (tests on this computer
    /// pick free ports at once), it exits and is started again on others, so that the desk
    /// answering is always this test's own.
    pub async fn start(self) -> Desk {
        let Self {
            env,
            edit,
            daemon,
            vars,
        } = self;
        let config = env.path("reminders.toml");
        let shipped = edit(std::fs::read_to_string(&config).expect("read config"));
        for _ in 0..5 {
            let (webhook, desk) = (
                format!("127.0.0.1:{}", free_port()),
                format!("127.0.0.1:{}", free_port()),
            );
            let text = shipped.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{desk}\""));
            std::fs::write(&config, text).expect("write config");
            let log = std::fs::File::create(env.path("serve.log")).expect("create log");
            let args = if daemon {
                vec!["run", "--listen", &webhook]
            } else {
                vec!["serve", "--listen", &webhook, "--desk-listen", &desk]
            };
            let mut command = Command::new(env!("CARGO_BIN_EXE_reminderd"));
            command
                .arg("--config")
                .arg(&config)
                .args(&args)
                .env_remove("REMINDERD_CONFIG")
                .env_remove("REMINDERD_API_BASE")
                .env_remove("RUST_LOG")
                .env_remove("NOTIFY_SOCKET")
                .env_remove("CREDENTIALS_DIRECTORY")
                .env("WHATSAPP_ACCESS_TOKEN", "token-for-desk-tests")
                .envs(crate::common::SMS_SECRETS)
                .env("WHATSAPP_APP_SECRET", "app-secret-for-desk-tests")
                .env("WHATSAPP_VERIFY_TOKEN", "verify-token-for-desk-tests");
            for (name, value) in &vars {
                command.env(name, value);
            }
            let mut child = command
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn reminderd");
            let url = format!("http://{desk}");
            let probe = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let mut exited = false;
            Wait::new("the desk to start", Duration::from_secs(20))
                .every(Duration::from_millis(20))
                .context(|| read_log(&env))
                .until_async(async || {
                    if child.try_wait().ok().flatten().is_some() {
                        exited = true;
                        return true;
                    }
                    // Its own log names the address it bound.
                    read_log(&env).contains(&format!("front desk on {url}/desk"))
                        && probe
                            .get(format!("{url}/desk/login"))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                })
                .await;
            // Answered: still running, so the address is its own.
            if !exited && child.try_wait().ok().flatten().is_none() {
                return Desk {
                    env,
                    child,
                    url,
                    webhook: format!("http://{webhook}"),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("reminderd could not start:\n{}", read_log(&env));
    }
}

fn read_log(env: &Env) -> String {
    std::fs::read_to_string(env.path("serve.log")).unwrap_or_default()
}

/// `reminderd serve` (or `run`) with its webhook and its desk on free loopback ports, killed
/// when dropped (its log printed when a test fails).
pub struct Desk {
    /// The test's folder, config and database.
    pub env: Env,
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:<desk port>`.
    pub url: String,
    /// `http://127.0.0.1:<webhook port>`.
    pub webhook: String,
}

impl Drop for Desk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- the server's log ---\n{}", self.log());
        }
    }
}

impl Desk {
    /// Options for a desk in a new test folder.
    pub fn options<'a>() -> Start<'a> {
        Self::options_on(Env::new())
    }

    /// Options for a desk in `env` (prepared beforehand: imports, settings).
    pub fn options_on<'a>(env: Env) -> Start<'a> {
        Start {
            env,
            edit: Box::new(|c| c),
            daemon: false,
            vars: Vec::new(),
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_log(&self.env)
    }

    /// `reminderd user SUBCOMMAND NAME` with `password` on standard input (not a terminal:
    /// it reads one line).
    pub fn user(&self, subcommand: &str, name: &str, password: &str) -> (i32, String) {
        let r = self
            .env
            .run_with_input(&["user", subcommand, name], &format!("{password}\n"));
        (r.code, format!("{}{}", r.stdout, r.stderr))
    }

    /// Adds the staff account `name`.
    pub fn add_user(&self, name: &str, password: &str) {
        let (code, out) = self.user("add", name, password);
        assert_eq!(code, 0, "user add {name}: {out}");
    }

    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser {
        self.browser_from("127.0.0.1")
    }

    /// A browser with no cookies yet on another computer: its requests come from `ip` (any
    /// 127.x.y.z address reaches the desk on 127.0.0.1).
    pub fn browser_from(&self, ip: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
                .build()
                .expect("client"),
            url: self.url.clone(),
            csrf: String::new(),
        }
    }

    /// A browser signed in as `name`, holding its session's CSRF token from the day board.
    pub async fn signed_in(&self, name: &str, password: &str) -> Browser {
        self.signed_in_via(name, password, "/desk/day").await
    }

    /// [`Desk::signed_in`] going on to `page` and reading the token there.
    pub async fn signed_in_via(&self, name: &str, password: &str, page: &str) -> Browser {
        let mut b = self.browser();
        let res = b.sign_in(name, password, page).await;
        assert_eq!(res.status, 303, "sign-in refused: {}", res.body);
        let next = b.get(page).await;
        assert_eq!(next.status, 200, "{}", next.body);
        b.csrf = field(&next.body, "csrf");
        b
    }

    /// Imports CSV rows (`csv` data lines) with the CLI.
    pub fn import(&self, rows: &[&str]) {
        self.env.import("schedule.csv", &csv(rows), &[]).expect(0);
    }

    /// Imports a schedule file with the CLI.
    pub fn import_file(&self, path: &std::path::Path) {
        self.env
            .run(&["import", path.to_str().expect("utf-8 path")])
            .expect(0);
    }

    /// Runs SQL statements on the database.
    pub fn sql(&self, sql: &str) {
        self.env
            .sql()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The number a query returns (0 before there is a database).
    pub fn count(&self, sql: &str) -> i64 {
        self.env.count(sql)
    }

    /// The integer a query returns (a row id, say).
    pub fn id(&self, sql: &str) -> i64 {
        self.env
            .sql()
            .query_row(sql, (), |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The text a query returns.
    pub fn one(&self, sql: &str) -> String {
        self.env
            .sql()
            .query_row(sql, (), |r| r.get::<_, String>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The row id of an appointment by the clinic system's id.
    pub fn row(&self, external_id: &str) -> i64 {
        self.env
            .sql()
            .query_row(
                "SELECT id FROM appointments WHERE external_id = ?1",
                params![external_id],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("no appointment {external_id}: {e}"))
    }
}

/// One answer: what a browser would get.
pub struct Page {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as sent.
    pub bytes: Vec<u8>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// Reads a whole answer.
    pub async fn from(res: reqwest::Response) -> Self {
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let bytes = res.bytes().await.expect("body").to_vec();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Self {
            status,
            headers,
            bytes,
            body,
        }
    }

    /// The value of the header `name` (which must be there).
    pub fn header(&self, name: &HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} (status {}): {}", self.status, self.text()))
    }

    /// Where a redirect points.
    pub fn location(&self) -> &str {
        self.header(&LOCATION)
    }

    /// The whole Set-Cookie line for `name`, if this answer sets it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }

    /// The page as a person reads it: tags removed, entities decoded, spaces collapsed.
    pub fn text(&self) -> String {
        text(&self.body)
    }
}

/// The value of a Set-Cookie line.
pub fn cookie_value(line: &str) -> &str {
    line.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map_or("", |(_, v)| v)
}

/// The attributes of a Set-Cookie line, lower-cased (`httponly`, `samesite=strict`, ...).
pub fn cookie_attributes(line: &str) -> Vec<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// HTML as a person reads it: tags removed (each counts as a space, so
/// `<strong>Asha</strong>: x` reads "Asha : x"), entities decoded, spaces collapsed.
pub fn text(html: &str) -> String {
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

/// Every value of the hidden field `name` in a page, in page order.
pub fn fields(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        .collect()
}

/// The value of the first hidden field `name` (a `csrf` or `token` is 64 hex digits).
pub fn field(html: &str, name: &str) -> String {
    let v = fields(html, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"));
    if name == "csrf" || name == "token" {
        assert!(
            v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name} is not 64 hex digits: {v:?}"
        );
    }
    v
}

/// A client with its own cookies; `csrf` is its session's form token once signed in.
pub struct Browser {
    /// The client, with its cookie jar.
    pub http: reqwest::Client,
    /// The desk's `http://127.0.0.1:<port>`.
    pub url: String,
    /// The session's form token (empty before sign-in).
    pub csrf: String,
}

impl Browser {
    /// GET a desk path.
    pub async fn get(&self, path: &str) -> Page {
        Page::from(
            self.http
                .get(format!("{}{path}", self.url))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {path}: {e}")),
        )
        .await
    }

    /// POST a form to a desk path.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
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

    /// Opens the sign-in page (which sets the sign-in cookie) and signs in.
    pub async fn sign_in(&self, name: &str, password: &str, next: &str) -> Page {
        let login = self.get("/desk/login").await;
        assert_eq!(login.status, 200, "{}", login.body);
        let csrf = field(&login.body, "csrf");
        self.post(
            "/desk/login",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("next", next),
            ],
        )
        .await
    }

    /// Answers a form with a 303 See Other (post/redirect/get), then GETs where it points, as a
    /// browser does; panics on any other answer.
    pub async fn follow(&self, res: Page, to: &str) -> Page {
        assert_eq!(
            res.status,
            303,
            "a form that succeeds answers 303 See Other, not a page: {}",
            res.text()
        );
        let location = res.location().to_string();
        assert!(
            location.starts_with(to),
            "the form goes on to {to}, not to {location}"
        );
        let page = self.get(&location).await;
        assert!(
            page.status < 300,
            "GET {location}: {} {}",
            page.status,
            page.text()
        );
        page
    }

    /// POSTs a form that succeeds, asserting the redirect to `to`, and GETs the page.
    pub async fn post_then_get(&self, path: &str, form: &[(&str, &str)], to: &str) -> Page {
        let res = self.post(path, form).await;
        self.follow(res, to).await
    }

    /// Uploads a file on the upload page's form: a file that reads well answers 303 to its
    /// preview, which is fetched (as a browser does); a refused one is the answer itself.
    pub async fn upload(&self, csrf: &str, clinic: &str, file_name: &str, bytes: Vec<u8>) -> Page {
        let form = multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("clinic", clinic.to_string())
            .part("file", csv_part(file_name, bytes));
        self.send_upload(form).await
    }

    /// Posts an upload form as it is; a preview (a 2xx answer to the POST) is never the
    /// answer itself but a redirect to it, which is followed.
    pub async fn send_upload(&self, form: multipart::Form) -> Page {
        let res = Page::from(
            self.http
                .post(format!("{}/desk/upload", self.url))
                .multipart(form)
                .send()
                .await
                .expect("POST /desk/upload"),
        )
        .await;
        if res.status < 300 || res.status == 303 {
            return self.follow(res, "/desk/upload/preview?token=").await;
        }
        res
    }
}

/// The file field of an upload, as a browser labels a CSV.
pub fn csv_part(file_name: &str, bytes: Vec<u8>) -> multipart::Part {
    multipart::Part::bytes(bytes)
        .file_name(file_name.to_string())
        .mime_str("text/csv")
        .expect("mime")
}
