//! The front desk over HTTP: `reminderd serve` as a child process with its desk on a free
//! port, a cookie-keeping client that does not follow redirects, and what staff would notice
//! (status codes, page text, cookies) checked against what is stored (appointments, imports,
//! previews, sessions, the audit log).

use std::path::PathBuf;
use std::time::Duration;

use reminderd::store::sql::params;
use reqwest::multipart;
use sha2::{Digest, Sha256};

use crate::common::{Wait, csv, repo_file};
use crate::desk_harness::{
    Browser, Desk, Page, cookie_attributes, cookie_value, csv_part, field, fields,
};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";
/// The example schedule's Mumbai day.
const DAY: &str = "2026-11-26";
/// The Mumbai board for the example schedule's day.
const BOARD: &str = "/desk/day?clinic=mumbai&date=2026-11-26";

/// The server on the shipped config with the user `alice`.
async fn start() -> Desk {
    let desk = start_with(|c| c).await;
    desk.add_user(USER, PASSWORD);
    desk
}

/// The server on the shipped config as `edit` changes it (no users yet).
async fn start_with(edit: impl FnOnce(String) -> String) -> Desk {
    Desk::options().edit(edit).start().await
}

/// `reminderd run` (the daemon, which reloads on SIGHUP) instead of `serve`.
async fn start_daemon() -> Desk {
    Desk::options().daemon().start().await
}

impl Desk {
    /// One sign-in as a script sends it, without a cookie jar: a made-up sign-in token in both
    /// the cookie and the form (the double-submit check only compares the two).
    async fn attempt(&self, http: &reqwest::Client, name: &str, password: &str) -> Page {
        Self::attempt_at(http, &self.url, name, password).await
    }

    /// [`Desk::attempt`] for a desk at `url` (for tasks that do not borrow the desk).
    async fn attempt_at(http: &reqwest::Client, url: &str, name: &str, password: &str) -> Page {
        let token = "5e".repeat(32);
        Page::from(
            http.post(format!("{url}/desk/login"))
                .header(
                    reqwest::header::COOKIE,
                    format!("reminderd_desk_login={token}"),
                )
                .form(&[
                    ("csrf", token.as_str()),
                    ("name", name),
                    ("password", password),
                    ("next", "/desk/day"),
                ])
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST /desk/login: {e}")),
        )
        .await
    }

    /// `reminderd user ARGS` (no standard input), as (exit code, stdout and stderr).
    fn user_cmd(&self, args: &[&str]) -> (i32, String) {
        let mut all = vec!["user"];
        all.extend_from_slice(args);
        let r = self.env.run(&all);
        (r.code, format!("{}{}", r.stdout, r.stderr))
    }

    /// Imports the example schedule with the CLI (14 appointments on 2026-11-26).
    fn import_example(&self) {
        let path = repo_file("examples/schedule.csv");
        self.env
            .run(&["import", path.to_str().expect("utf-8 path")])
            .expect(0);
        assert_eq!(self.count("SELECT count(*) FROM appointments"), 14);
    }

    /// Audit rows as (actor, action) for actions other than sign-in and sign-out.
    fn staff_actions(&self) -> Vec<(String, String)> {
        let conn = self.env.sql();
        let mut stmt = conn
            .prepare(
                "SELECT actor, action FROM audit_log WHERE action NOT IN ('sign_in', 'sign_out') ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

fn sha256_hex(s: &str) -> String {
    format!("{:x}", Sha256::digest(s.as_bytes()))
}

impl Browser {
    /// Submits a follow-up's action form for a Mumbai appointment on `DAY`.
    async fn follow_up(&self, appointment: &str, action: &str, note: Option<&str>) -> Page {
        let mut form = vec![
            ("csrf", self.csrf.as_str()),
            ("clinic", "mumbai"),
            ("appointment", appointment),
            ("date", DAY),
            ("action", action),
        ];
        if let Some(n) = note {
            form.push(("note", n));
        }
        // The answer to the question a cancel or no-show asks first.
        form.push(("sure", "yes"));
        self.post("/desk/follow-ups/action", &form).await
    }

    /// Uploads with the file name sent exactly as given (as browsers do), not percent-encoded.
    async fn upload_raw_name(&self, file_name: &str, bytes: Vec<u8>) -> Page {
        let form = multipart::Form::new()
            .percent_encode_noop()
            .text("csrf", self.csrf.clone())
            .text("clinic", "mumbai")
            .part("file", csv_part(file_name, bytes));
        self.send_upload(form).await
    }

    async fn upload_example(&self) -> Page {
        let bytes = std::fs::read(repo_file("examples/schedule.csv")).expect("read example");
        self.upload(&self.csrf.clone(), "", "schedule.csv", bytes)
            .await
    }
}

fn example() -> PathBuf {
    repo_file("examples/schedule.csv")
}

// ---- sign-in -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it() {
    let d = start().await;
    let b = d.browser();

    // Not signed in: the board sends the browser to sign in, remembering where it was going.
    let away = b.get(BOARD).await;
    assert_eq!(away.status, 303);
    assert_eq!(
        away.location(),
        "/desk/login?next=/desk/day%3Fclinic%3Dmumbai%26date%3D2026-11-26"
    );
    assert!(away.set_cookie("reminderd_desk").is_none());

    let login = b.get(away.location()).await;
    assert_eq!(login.status, 200);
    let login_cookie = login
        .set_cookie("reminderd_desk_login")
        .expect("the sign-in page sets its CSRF cookie");
    let attrs = cookie_attributes(&login_cookie);
    for a in ["httponly", "samesite=strict", "path=/desk"] {
        assert!(attrs.contains(&a.to_string()), "{a} in {login_cookie}");
    }
    assert!(!attrs.contains(&"secure".to_string()), "{login_cookie}");
    let csrf = field(&login.body, "csrf");
    assert_eq!(cookie_value(&login_cookie), csrf, "double-submit token");
    assert_eq!(
        field(&login.body, "next"),
        "/desk/day?clinic=mumbai&amp;date=2026-11-26"
    );
    let csp = login
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("CSP header");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(
        login
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );

    // A wrong password and an unknown name read the same.
    let next = "/desk/day?clinic=mumbai&date=2026-11-26";
    for (name, password) in [(USER, "not the password"), ("mallory", PASSWORD)] {
        let res = b
            .post(
                "/desk/login",
                &[
                    ("csrf", &csrf),
                    ("name", name),
                    ("password", password),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(res.status, 401, "{name}: {}", res.body);
        assert!(
            res.text().contains("Wrong name or password."),
            "{name}: {}",
            res.text()
        );
        assert!(res.set_cookie("reminderd_desk").is_none());
        assert!(!res.text().contains("Signed in as"));
    }
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'sign_in_failed' AND actor = 'staff:alice'"
        ),
        1
    );

    // The right password: back to where the browser was going, with a session cookie.
    let res = b
        .post(
            "/desk/login",
            &[
                ("csrf", &csrf),
                ("name", USER),
                ("password", PASSWORD),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), next);
    let session = res.set_cookie("reminderd_desk").expect("a session cookie");
    let attrs = cookie_attributes(&session);
    for a in ["httponly", "samesite=strict", "path=/desk"] {
        assert!(attrs.contains(&a.to_string()), "{a} in {session}");
    }
    assert!(
        !attrs.contains(&"secure".to_string()),
        "no Secure unless desk.secure_cookies: {session}"
    );
    let token = cookie_value(&session).to_string();
    assert_eq!(token.len(), 64, "{session}");
    let cleared = res
        .set_cookie("reminderd_desk_login")
        .expect("the sign-in cookie is cleared");
    assert!(cookie_attributes(&cleared).contains(&"max-age=0".to_string()));

    let day = b.get(res.location()).await;
    assert_eq!(day.status, 200, "{}", day.body);
    assert!(day.text().contains("Signed in as alice"), "{}", day.text());
    assert!(day.text().contains("Sunrise Family Clinic, Andheri"));
    assert!(day.text().contains("Thursday 26 November 2026"));

    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'sign_in' AND actor = 'staff:alice'"
        ),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM sign_in_attempts WHERE name = 'alice' AND client != '*'"),
        0,
        "a good sign-in resets this computer's count of wrong passwords"
    );
    // Only a hash of the cookie is stored: a copy of the database signs nobody in.
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 1);
    let stored = d.one("SELECT token_hash FROM staff_sessions");
    assert_ne!(stored, token);
    assert_eq!(stored, sha256_hex(&token));
    assert_ne!(d.one("SELECT csrf FROM staff_sessions"), token);

    // Signing out ends the session on the server, not only in this browser.
    let csrf = field(&day.body, "csrf");
    let out = b.post("/desk/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location(), "/desk/login");
    let gone = out.set_cookie("reminderd_desk").expect("cookie cleared");
    assert!(cookie_attributes(&gone).contains(&"max-age=0".to_string()));
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'sign_out' AND actor = 'staff:alice'"
        ),
        1
    );
    let after = b.get("/desk/day").await;
    assert_eq!(after.status, 303);
    assert!(after.location().starts_with("/desk/login?next="));
    // The old cookie, replayed by hand, is refused too.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/desk/day", d.url))
        .header("cookie", format!("reminderd_desk={token}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn secure_cookies_adds_the_secure_flag() {
    let d = start_with(|c| {
        let c2 = c.replace("secure_cookies = false", "secure_cookies = true");
        assert_ne!(c, c2, "the shipped config sets secure_cookies");
        c2
    })
    .await;
    d.add_user(USER, PASSWORD);
    // A browser would not send a Secure cookie back over plain HTTP: carry it by hand.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = Page::from(
        http.get(format!("{}/desk/login", d.url))
            .send()
            .await
            .expect("login page"),
    )
    .await;
    let login_cookie = login
        .set_cookie("reminderd_desk_login")
        .expect("sign-in cookie");
    assert!(
        cookie_attributes(&login_cookie).contains(&"secure".to_string()),
        "{login_cookie}"
    );
    let csrf = field(&login.body, "csrf");
    let res = Page::from(
        http.post(format!("{}/desk/login", d.url))
            .header("cookie", format!("reminderd_desk_login={csrf}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", USER),
                ("password", PASSWORD),
                ("next", "/desk/day"),
            ])
            .send()
            .await
            .expect("sign in"),
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let session = res.set_cookie("reminderd_desk").expect("session cookie");
    let attrs = cookie_attributes(&session);
    for a in ["secure", "httponly", "samesite=strict"] {
        assert!(attrs.contains(&a.to_string()), "{a} in {session}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_never_sends_the_browser_off_the_desk() {
    let d = start().await;
    for next in [
        "https://evil.example/desk/day",
        "//evil.example/desk/day",
        "/desk//evil.example",
    ] {
        let b = d.browser();
        let res = b.sign_in(USER, PASSWORD, next).await;
        assert_eq!(res.status, 303, "{next}: {}", res.body);
        assert_eq!(res.location(), "/desk/day", "next={next}");
    }
}

/// BUG: `safe_next` lets control characters through, so a sign-in link whose `next` holds a
/// line break (`/desk/login?next=/desk/day%0D%0A`) answers a good password with a bare
/// "500 failed to parse header value" — while a session was started and its cookie set.
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_with_a_line_break_in_next_lands_on_the_desk() {
    let d = start().await;
    let b = d.browser();
    let res = b
        .sign_in(USER, PASSWORD, "/desk/day\r\nX-Injected: 1")
        .await;
    assert_eq!(
        res.status,
        303,
        "a good sign-in must redirect, got {} with {:?}: {}",
        res.status,
        res.set_cookie("reminderd_desk"),
        res.body
    );
    assert_eq!(res.location(), "/desk/day");
    assert!(res.headers.get("x-injected").is_none());
}

// ---- CSRF --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn forms_with_a_wrong_csrf_token_are_refused_and_write_nothing() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    // A second sign-in of the same person has its own token: neither is valid in the other.
    let other = d.signed_in(USER, PASSWORD).await;
    assert_ne!(b.csrf, other.csrf);
    let preview = b.upload_example().await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let token = field(&preview.body, "token");
    let row = d.row("MUM-1003").to_string();
    d.env
        .sql()
        .execute_batch(
            "INSERT INTO replies (message_id, from_phone, kind, text, intent, outcome, reason, received_at)
             VALUES ('wamid.csrf', '+919876543210', 'text', 'hello?', 'unknown', 'needs_staff', 'not an answer', 1764000000);",
        )
        .expect("insert reply");

    let audit_before = d.count("SELECT count(*) FROM audit_log");
    let wrong = "0".repeat(64);
    for bad in [wrong.as_str(), other.csrf.as_str(), ""] {
        let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/desk/follow-ups/action",
                vec![
                    ("csrf", bad),
                    ("clinic", "mumbai"),
                    ("appointment", "MUM-1003"),
                    ("date", DAY),
                    ("action", "cancelled"),
                    ("note", "forged"),
                ],
            ),
            (
                "/desk/upload/confirm",
                vec![("csrf", bad), ("token", &token)],
            ),
            (
                "/desk/upload/discard",
                vec![("csrf", bad), ("token", &token)],
            ),
            (
                "/desk/reveal",
                vec![
                    ("csrf", bad),
                    ("appointment", &row),
                    ("clinic", "mumbai"),
                    ("date", DAY),
                ],
            ),
            ("/desk/replies/handled", vec![("csrf", bad), ("reply", "1")]),
            ("/desk/logout", vec![("csrf", bad)]),
        ];
        for (path, form) in attempts {
            let res = b.post(path, &form).await;
            assert_eq!(res.status, 403, "{path} with csrf {bad:?}: {}", res.body);
            assert!(
                res.text().contains("This form has expired"),
                "{path}: {}",
                res.text()
            );
            assert!(!res.text().contains("+919876543210"), "{path} revealed");
        }
        let upload = b
            .upload(
                bad,
                "",
                "schedule.csv",
                std::fs::read(example()).expect("read"),
            )
            .await;
        assert_eq!(
            upload.status, 403,
            "upload with csrf {bad:?}: {}",
            upload.body
        );
    }
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log"),
        audit_before,
        "nothing audited"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM imports"),
        1,
        "only the CLI import"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM appointments WHERE status = 'cancelled'"),
        1,
        "only MUM-1006, cancelled by the file"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM import_previews"),
        1,
        "no preview from a refused upload"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM import_previews WHERE decision IS NULL"),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM replies WHERE handled_by IS NULL"),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM staff_sessions"),
        2,
        "still signed in"
    );
    assert_eq!(b.get("/desk/day").await.status, 200);
}

/// A form POST and the refusal page it should get: path, fields, words on the page.
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// BUG: a form POST without any `csrf` field is refused by axum's `Form` extractor before the
/// desk's CSRF check, with a plain-text 422 ("Failed to deserialize form body: missing field
/// `csrf`") instead of the desk's 403 page ("This form has expired", or "The sign-in form had
/// expired" for sign-in). Nothing is written, but the status and page differ from a wrong
/// token's (and from the multipart upload's, which answers 403).
#[tokio::test(flavor = "multi_thread")]
async fn forms_without_a_csrf_field_get_the_403_page() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    let audit_before = d.count("SELECT count(*) FROM audit_log");
    let expired = "This form has expired";
    let attempts: Vec<Attempt> = vec![
        (
            "/desk/follow-ups/action",
            vec![
                ("clinic", "mumbai"),
                ("appointment", "MUM-1003"),
                ("date", DAY),
                ("action", "cancelled"),
            ],
            expired,
        ),
        ("/desk/upload/confirm", vec![("token", "abc")], expired),
        ("/desk/logout", vec![], expired),
        (
            "/desk/login",
            vec![("name", USER), ("password", PASSWORD)],
            "The sign-in form had expired",
        ),
    ];
    let mut wrong = Vec::new();
    for (path, form, page) in attempts {
        let res = b.post(path, &form).await;
        if res.status != 403 || !res.text().contains(page) {
            wrong.push(format!("{path}: {} {}", res.status, res.text()));
        }
    }
    assert_eq!(d.count("SELECT count(*) FROM audit_log"), audit_before);
    assert_eq!(
        d.count("SELECT count(*) FROM appointments WHERE status = 'cancelled'"),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM staff_sessions"),
        1,
        "no new session"
    );
    assert!(wrong.is_empty(), "not the 403 page:\n{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_without_the_sign_in_cookie_is_refused() {
    let d = start().await;
    let b = d.browser();
    let login = b.get("/desk/login").await;
    let csrf = field(&login.body, "csrf");
    // Another browser (no cookie) posts the token of this one's form.
    let stranger = d.browser();
    let res = stranger
        .post(
            "/desk/login",
            &[
                ("csrf", &csrf),
                ("name", USER),
                ("password", PASSWORD),
                ("next", "/desk/day"),
            ],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(
        res.text().contains("The sign-in form had expired"),
        "{}",
        res.text()
    );
    assert!(res.set_cookie("reminderd_desk").is_none());
    // With the cookie but another token in the form: refused as well.
    let res = b
        .post(
            "/desk/login",
            &[
                ("csrf", &"f".repeat(64)),
                ("name", USER),
                ("password", PASSWORD),
                ("next", "/desk/day"),
            ],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.set_cookie("reminderd_desk").is_none());
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
    assert_eq!(d.count("SELECT count(*) FROM audit_log"), 0);
}

// ---- lock-out ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_lock_the_account_until_passwd() {
    let d = start().await;
    let earlier = d.signed_in(USER, PASSWORD).await;
    let b = d.browser();
    for i in 1..=5 {
        let res = b.sign_in(USER, "wrong password!", "/desk/day").await;
        assert_eq!(res.status, 401, "attempt {i}");
        let t = res.text();
        assert!(t.contains("Wrong name or password."), "attempt {i}: {t}");
        assert_eq!(
            t.contains("paused for 15 minutes"),
            i == 5,
            "attempt {i}: {t}"
        );
        assert!(t.contains("ask the administrator"), "attempt {i}: {t}");
    }
    let refused = b.sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.text().contains(
            "Sign-in with this name is paused after too many tries; try again within 15 minutes."
        ),
        "{}",
        refused.text()
    );
    assert!(refused.set_cookie("reminderd_desk").is_none());
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'sign_in_failed' AND actor = 'staff:alice' AND reason = 'from 127.0.0.1'"),
        4
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'locked_out' AND actor = 'staff:alice'"
        ),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM sign_in_attempts WHERE name = 'alice' AND locked_until IS NOT NULL"),
        1
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'sign_in'"),
        1
    );
    let (code, list) = d.user_cmd(&["list"]);
    assert_eq!(code, 0, "{list}");
    assert!(list.contains("alice  (sign-in paused until"), "{list}");

    let new_password = "a brand new passphrase";
    let (code, out) = d.user("passwd", USER, new_password);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("lock-out is lifted"), "{out}");
    assert_eq!(d.count("SELECT count(*) FROM sign_in_attempts"), 0);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'password_changed' AND new_value = 'alice'"),
        1
    );
    // The new password signs the earlier browser out.
    assert_eq!(earlier.get("/desk/day").await.status, 303);
    let old = b.sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(old.status, 401);
    assert!(!old.text().contains("paused"), "{}", old.text());
    let res = b.sign_in(USER, new_password, "/desk/day").await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(
        b.get("/desk/day")
            .await
            .text()
            .contains("Signed in as alice")
    );
}

/// The shipped config with the sign-in rate limits raised out of the way, for tests of what
/// lies behind them.
fn generous_rates(config: &str) -> String {
    config
        .replace(
            "sign_ins_per_minute_per_address = 20",
            "sign_ins_per_minute_per_address = 10000",
        )
        .replace("sign_ins_per_minute = 120", "sign_ins_per_minute = 100000")
}

/// A client as a script would use: no cookie jar, no redirects followed.
fn script_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_sign_ins_with_made_up_names_keeps_memory_bounded() {
    // Rate limits out of the way: what is tested is the bound on password hashes at once.
    let d = start_with(|c| generous_rates(&c)).await;
    let http = script_client();
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (http, url) = (http.clone(), d.url.clone());
        burst.spawn(async move {
            let name = format!("nobody-{i}");
            Desk::attempt_at(&http, &url, &name, "made-up password").await
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(page) = burst.join_next().await {
        let page = page.expect("sign-in task");
        assert!(
            matches!(page.status, 401 | 503),
            "{}: {}",
            page.status,
            page.text()
        );
        if page.status == 503 {
            assert!(page.text().contains("busy"), "{}", page.text());
        } else {
            assert!(
                page.text().contains("Wrong name or password."),
                "{}",
                page.text()
            );
        }
        *statuses.entry(page.status).or_insert(0) += 1;
    }
    assert!(statuses.get(&401).is_some_and(|n| *n > 0), "{statuses:?}");
    let peak_mib = crate::common::peak_rss_kib(d.child.id()) / 1024;
    assert!(
        peak_mib < 200,
        "peak resident memory {peak_mib} MiB after 200 sign-ins at once ({statuses:?})"
    );
    // The desk still answers.
    assert_eq!(d.browser().get("/desk/login").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_form_is_capped_at_a_few_kilobytes() {
    let d = start().await;
    let http = script_client();
    let huge = "x".repeat(64 * 1024);
    let res = d.attempt(&http, USER, &huge).await;
    assert_eq!(res.status, 413, "{}", res.body);
    assert!(res.text().contains("too large"), "{}", res.text());
    assert_eq!(d.count("SELECT count(*) FROM audit_log"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_ins_are_rate_limited_per_address_and_overall() {
    let d = start_with(|c| {
        c.replace(
            "sign_ins_per_minute_per_address = 20",
            "sign_ins_per_minute_per_address = 3",
        )
        .replace("sign_ins_per_minute = 120", "sign_ins_per_minute = 5")
    })
    .await;
    d.add_user(USER, PASSWORD);
    let http = script_client();
    for i in 1..=3 {
        let res = d.attempt(&http, "nobody", "made-up password").await;
        assert_eq!(res.status, 401, "attempt {i}: {}", res.text());
    }
    let limited = d.attempt(&http, USER, PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        limited.text().contains("Too many sign-in attempts"),
        "{}",
        limited.text()
    );
    assert!(limited.set_cookie("reminderd_desk").is_none());

    // Another computer is not held up by the first one's limit...
    let other = d.browser_from("127.0.0.2");
    let res = other.sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(res.status, 303, "{}", res.text());
    // ...until all addresses together reach theirs.
    let _ = d
        .attempt(&script_client_from("127.0.0.3"), "nobody", "x")
        .await;
    let res = d
        .attempt(&script_client_from("127.0.0.4"), USER, PASSWORD)
        .await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'sign_in'"),
        1
    );
}

/// [`script_client`] sending from `ip`.
fn script_client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_guesses_checks_at_most_max_failed_logins() {
    let d = start_with(|c| generous_rates(&c)).await;
    d.add_user(USER, PASSWORD);
    let http = script_client();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..59 {
        let (http, url, tx) = (http.clone(), d.url.clone(), tx.clone());
        tokio::spawn(async move {
            let page = Desk::attempt_at(&http, &url, USER, &format!("wrong guess {i}")).await;
            let _ = tx.send(page);
        });
    }
    drop(tx);
    // The right password goes out with the burst still arriving, once the first answers are
    // back (by then at least max_failed_logins guesses have been counted).
    let mut answers = Vec::new();
    while answers.len() < 5 {
        answers.push(rx.recv().await.expect("an answer"));
    }
    let right = d.attempt(&http, USER, PASSWORD).await;
    while let Some(page) = rx.recv().await {
        answers.push(page);
    }
    assert_eq!(answers.len(), 59);
    assert!(answers.iter().all(|p| p.status == 401), "all refused");
    let checked = answers
        .iter()
        .filter(|p| p.text().contains("Wrong name or password."))
        .count();
    let evaluated = d.count(
        "SELECT count(*) FROM audit_log WHERE actor = 'staff:alice' AND action IN ('sign_in_failed', 'locked_out', 'sign_in')",
    );
    assert!(
        checked <= 5 && evaluated <= 5,
        "{checked} wrong passwords answered, {evaluated} checked; at most 5 may be"
    );
    assert_eq!(right.status, 401, "{}", right.text());
    assert!(right.text().contains("paused"), "{}", right.text());
    assert!(right.set_cookie("reminderd_desk").is_none());
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_names_and_locked_accounts_get_the_same_answers() {
    let d = start().await;
    let answers = |name: &'static str| {
        let b = d.browser();
        async move {
            let mut v = Vec::new();
            for _ in 0..6 {
                let p = b.sign_in(name, "wrong password!", "/desk/day").await;
                v.push((p.status, p.text()));
            }
            v
        }
    };
    let known = answers(USER).await;
    let unknown = answers("nobody").await;
    assert_eq!(known, unknown);
    assert!(
        known[0].1.contains("Wrong name or password."),
        "{}",
        known[0].1
    );
    let paused = &known[5].1;
    assert!(paused.contains("paused"), "{paused}");
    assert!(
        paused.contains(
            "If you have forgotten your password or are locked out, ask the administrator"
        ),
        "{paused}"
    );
    assert!(
        !paused.contains("alice") && !paused.contains("account is"),
        "{paused}"
    );
    // The right password while paused reads the same as a guess for a name that does not exist.
    let right = d.browser().sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!((right.status, right.text()), known[5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_out_from_one_address_does_not_lock_the_name_at_another() {
    let d = start().await;
    let b = d.browser();
    for _ in 0..5 {
        assert_eq!(
            b.sign_in(USER, "wrong password!", "/desk/day").await.status,
            401
        );
    }
    let here = b.sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(here.status, 401);
    assert!(here.text().contains("paused"), "{}", here.text());
    let there = d.browser_from("127.0.0.2");
    let res = there.sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(
        there
            .get("/desk/day")
            .await
            .text()
            .contains("Signed in as alice")
    );
    assert_eq!(
        d.one("SELECT reason FROM audit_log WHERE action = 'locked_out'"),
        "from 127.0.0.1"
    );
}

// ---- upload ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn upload_previews_then_imports_once_on_confirm() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    let page = b.get("/desk/upload").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("enctype=\"multipart/form-data\""));

    let preview = b.upload_example().await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let t = preview.text();
    assert!(t.contains("Preview of schedule.csv"), "{t}");
    assert!(t.contains("Nothing has been saved yet"), "{t}");
    for c in ["14 new", "0 updated", "0 cancelled", "0 unchanged"] {
        assert!(t.contains(c), "{c} in {t}");
    }
    assert!(
        t.contains("+91******2345"),
        "numbers masked in the preview: {t}"
    );
    assert!(!preview.body.contains("+919820012345"));
    assert_eq!(
        d.count("SELECT count(*) FROM appointments"),
        0,
        "nothing yet"
    );
    assert_eq!(d.count("SELECT count(*) FROM imports"), 0);
    assert_eq!(d.count("SELECT count(*) FROM import_previews"), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM import_previews WHERE decision IS NULL AND file_name = 'schedule.csv'"),
        1
    );
    assert!(d.staff_actions().is_empty(), "{:?}", d.staff_actions());

    let token = field(&preview.body, "token");
    assert_eq!(
        fields(&preview.body, "token"),
        [token.clone(), token.clone()]
    );
    let done = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    let t = done.text();
    assert!(t.contains("Schedule imported"), "{t}");
    assert!(t.contains("schedule.csv was imported."), "{t}");
    assert!(t.contains("14 new"), "{t}");
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(d.one("SELECT imported_by FROM imports"), "staff:alice");
    assert_eq!(
        d.count(
            "SELECT count(*) FROM import_previews p JOIN imports i ON i.id = p.import_id WHERE p.decision = 'confirmed'"
        ),
        1
    );
    assert_eq!(
        d.one(
            "SELECT actor || ' ' || action || ' ' || new_value || ' (' || reason || ')' FROM audit_log WHERE action = 'upload_confirmed'"
        ),
        "staff:alice upload_confirmed schedule.csv (14 new, 0 updated, 0 cancelled, 0 unchanged)"
    );

    // Pressing Confirm again (back button, double click) imports nothing more.
    let again = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(
        again.text().contains("already confirmed"),
        "{}",
        again.text()
    );
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'upload_confirmed'"),
        1
    );

    // Discard: a new upload of a changed file, thrown away.
    let moved = std::fs::read_to_string(example()).expect("read").replace(
        "2026-11-26,09:00,15,Dr. Mehta",
        "2026-11-26,09:45,15,Dr. Mehta",
    );
    let second = b
        .upload(&b.csrf.clone(), "", "moved.csv", moved.into_bytes())
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let t = second.text();
    assert!(t.contains("1 updated") && t.contains("13 unchanged"), "{t}");
    assert!(
        t.contains("MUM-1001 — moved from Thu 26 Nov 09:00 to Thu 26 Nov 09:45"),
        "{t}"
    );
    let token2 = field(&second.body, "token");
    assert_ne!(token2, token);
    let gone = b
        .post_then_get(
            "/desk/upload/discard",
            &[("csrf", &b.csrf), ("token", &token2)],
            "/desk/upload?done=discarded",
        )
        .await;
    assert!(
        gone.text().contains("Nothing was imported"),
        "{}",
        gone.text()
    );
    assert_eq!(
        d.one(&format!(
            "SELECT decision FROM import_previews WHERE token = '{token2}'"
        )),
        "discarded"
    );
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'upload_discarded' AND actor = 'staff:alice'"),
        1
    );
    // A discarded preview cannot be confirmed afterwards.
    let late = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token2)],
            "/desk/upload/preview?token=",
        )
        .await;
    assert!(late.text().contains("already discarded"), "{}", late.text());
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    let nine: i64 = d
        .env
        .sql()
        .query_row(
            "SELECT count(*) FROM appointments WHERE external_id = 'MUM-1001' AND starts_at % 86400 = 3 * 3600 + 30 * 60",
            (),
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(nine, 1, "MUM-1001 still at 09:00 IST (03:30 UTC)");
}

#[tokio::test(flavor = "multi_thread")]
async fn confirming_an_outdated_preview_imports_nothing_and_shows_a_fresh_one() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    let preview = b.upload_example().await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.text().contains("14 new"));
    let token = field(&preview.body, "token");

    // Meanwhile the CLI imports another export that already has MUM-1001, at 09:15.
    d.env
        .import(
            "cli.csv",
            &csv(&["MUM-1001,P-2001,Aarav Sharma,98200 12345,en,2026-11-26,09:15,15,Dr. Mehta,mumbai,booked"]),
            &[],
        )
        .expect(0);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);

    let res = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/preview?token=",
        )
        .await;
    let t = res.text();
    assert!(
        t.contains("The schedule changed since this file was previewed"),
        "{t}"
    );
    assert!(t.contains("nothing was imported"), "{t}");
    assert!(t.contains("Preview of schedule.csv"), "{t}");
    assert!(t.contains("13 new") && t.contains("1 updated"), "{t}");
    assert!(!t.contains("Schedule imported"), "{t}");
    assert_eq!(
        d.count("SELECT count(*) FROM appointments"),
        1,
        "only the CLI's"
    );
    assert_eq!(d.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(d.one("SELECT imported_by FROM imports"), "cli");
    assert_eq!(
        d.one(&format!(
            "SELECT decision FROM import_previews WHERE token = '{token}'"
        )),
        "changed"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'upload_confirmed'"),
        0
    );
    // The fresh preview is a new, undecided one; confirming it imports what it showed.
    let fresh = field(&res.body, "token");
    assert_ne!(fresh, token);
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM import_previews WHERE token = '{fresh}' AND decision IS NULL"
        )),
        1
    );
    let done = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &fresh)],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(done.text().contains("Schedule imported"), "{}", done.text());
    assert!(done.text().contains("13 new"), "{}", done.text());
    assert_eq!(d.count("SELECT count(*) FROM appointments"), 14);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_file_lists_its_problems_and_writes_nothing() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    let bad = csv(&[
        "MUM-1,P-1,Asha Rao,12345,en,2026-11-26,09:00,15,Dr. Mehta,mumbai,booked",
        "MUM-2,P-2,Ravi Rao,98200 12346,en,2026-02-30,09:30,15,Dr. Mehta,mumbai,booked",
        "MUM-3,P-3,Mira Rao,98200 12347,en,2026-11-26",
        "MUM-4,P-4,Dev Rao,98200 12348,en,2026-11-26,10:30,15,Dr. Mehta,mumbai,booked",
    ]);
    let res = b
        .upload(&b.csrf.clone(), "", "bad.csv", bad.into_bytes())
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    let t = res.text();
    assert!(t.contains("Nothing was imported"), "{t}");
    assert!(t.contains("bad.csv"), "{t}");
    for (row, patient, column, hint) in [
        ("2", "Asha Rao", "phone", "write the full mobile number"),
        (
            "3",
            "Ravi Rao",
            "date",
            "is not a date; write it as 2026-11-25",
        ),
        (
            "4",
            "Mira Rao",
            "time",
            "the time is missing; write it as 14:30",
        ),
    ] {
        let cells = format!("<tr><td>{row}</td><td>{patient}</td><td>{column}</td>");
        assert!(res.body.contains(&cells), "{cells} in {}", res.body);
        assert!(t.contains(hint), "{hint} in {t}");
    }
    assert!(!t.contains("Confirm import"), "{t}");

    // A file without a column the import needs.
    let no_phone = "appointment_id,patient_id,patient_name,date,time,clinic\nMUM-1,P-1,Asha Rao,2026-11-26,09:00,mumbai\n";
    let res = b
        .upload(&b.csrf.clone(), "", "no-phone.csv", no_phone.into())
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert!(
        res.body.contains("<tr><td>1</td><td></td><td>phone</td>"),
        "{}",
        res.body
    );
    assert!(
        res.text()
            .contains("the file has no column named \"phone\""),
        "{}",
        res.text()
    );

    assert_eq!(d.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(d.count("SELECT count(*) FROM patients"), 0);
    assert_eq!(d.count("SELECT count(*) FROM imports"), 0);
    assert_eq!(d.count("SELECT count(*) FROM import_previews"), 0);
    assert!(d.staff_actions().is_empty(), "{:?}", d.staff_actions());
}

#[tokio::test(flavor = "multi_thread")]
async fn names_from_the_file_are_shown_as_text_not_markup() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    // No clinic column: the form's clinic (mumbai) applies. Old browsers send the whole path.
    let file = "appointment_id,patient_id,patient_name,phone,date,time\n\
                MUM-1,P-1,Eve <script>alert(1)</script>,98200 12345,2026-11-26,09:00\n";
    let res = b
        .upload_raw_name("C:\\fakepath\\week <48>.csv", file.into())
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(!res.body.contains("<script>"), "{}", res.body);
    assert!(
        res.body
            .contains("Eve &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        res.body
    );
    assert!(
        res.body.contains("Preview of week &lt;48&gt;.csv"),
        "the path is dropped and the name escaped: {}",
        res.body
    );
    let token = field(&res.body, "token");
    let done = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &token)],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(done.text().contains("Schedule imported"), "{}", done.text());
    assert_eq!(
        d.one("SELECT new_value FROM audit_log WHERE action = 'upload_confirmed'"),
        "week <48>.csv"
    );
    let board = b.get(BOARD).await;
    assert!(!board.body.contains("<script>"), "{}", board.body);
    assert!(board.text().contains("Eve <script>alert(1)</script>"));
}

// ---- the day board -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_board_masks_numbers_and_a_reveal_is_audited() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    let numbers: Vec<String> = {
        let conn = d.env.sql();
        let mut stmt = conn.prepare("SELECT phone FROM patients").expect("prepare");
        stmt.query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert!(
        numbers.contains(&"+919876543210".to_string()),
        "{numbers:?}"
    );

    let board = b.get(BOARD).await;
    assert_eq!(board.status, 200, "{}", board.body);
    let t = board.text();
    assert!(t.contains("8 appointments"), "{t}");
    assert!(t.contains("+91******2345"), "{t}");
    assert!(t.contains("+91******3210"), "{t}");
    for n in &numbers {
        assert!(!board.body.contains(n.as_str()), "{n} shown whole");
    }
    // The reveal forms name each row, in time order.
    let rows = fields(&board.body, "appointment");
    let expected: Vec<String> = (1..=8)
        .map(|i| d.row(&format!("MUM-100{i}")).to_string())
        .collect();
    assert_eq!(rows, expected);

    let priya = &rows[1];
    let posted = b
        .post(
            "/desk/reveal",
            &[
                ("csrf", &b.csrf),
                ("appointment", priya),
                ("clinic", "mumbai"),
                ("date", DAY),
            ],
        )
        .await;
    // Post/redirect/get, back to Priya's row: Refresh does not post the reveal again.
    assert_eq!(posted.status, 303, "{}", posted.body);
    assert!(posted.location().ends_with(&format!("#a-{priya}")));
    let shown = b.get(posted.location()).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        shown.body.contains("href=\"tel:+919876543210\""),
        "{}",
        shown.body
    );
    assert_eq!(shown.body.matches("tel:").count(), 1, "one row only");
    assert_eq!(fields(&shown.body, "appointment").len(), 7);
    for n in numbers.iter().filter(|n| *n != "+919876543210") {
        assert!(!shown.body.contains(n.as_str()), "{n} shown whole");
    }
    assert!(shown.text().contains("+91******2345"));
    let conn = d.env.sql();
    let (actor, appointment, patient): (String, i64, Option<i64>) = conn
        .query_row(
            "SELECT actor, appointment_id, patient_id FROM audit_log WHERE action = 'reveal_phone'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one reveal_phone row");
    assert_eq!(actor, "staff:alice");
    assert_eq!(appointment.to_string(), *priya);
    assert!(patient.is_some());
    // Going back to the board masks the number again.
    let again = b.get(BOARD).await;
    assert!(!again.body.contains("+919876543210"));
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        1
    );
    // A row that does not exist reveals nothing and audits nothing.
    let none = b
        .post(
            "/desk/reveal",
            &[
                ("csrf", &b.csrf),
                ("appointment", "999999"),
                ("clinic", "mumbai"),
                ("date", DAY),
            ],
        )
        .await;
    assert_eq!(none.status, 404);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        1
    );
}

// ---- follow-ups and replies ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn follow_up_actions_are_saved_and_audited() {
    let d = start().await;
    d.import_example();
    d.env
        .sql()
        .execute(
            "UPDATE appointments SET response = 'reschedule_requested', response_at = 1764000000 WHERE external_id = 'MUM-1003'",
            (),
        )
        .expect("reschedule requested");
    let id = d.row("MUM-1003");
    let b = d.signed_in(USER, PASSWORD).await;
    let list_url = format!("/desk/follow-ups?clinic=mumbai&date={DAY}");
    let list = b.get(&list_url).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let t = list.text();
    assert!(t.contains("Rohan Gupta"), "{t}");
    assert!(t.contains("asked to reschedule: find a new time"), "{t}");
    assert!(!t.contains("Aarav Sharma"), "only who needs a call: {t}");
    assert_eq!(
        fields(&list.body, "appointment"),
        [id.to_string(), id.to_string(), "MUM-1003".to_string()],
        "the reveal and call forms name the row, the status form the clinic's id"
    );

    let called = b
        .follow_up("MUM-1003", "called", Some("  left a voicemail  "))
        .await;
    assert_eq!(called.status, 303, "{}", called.body);
    assert!(
        called
            .location()
            .starts_with("/desk/follow-ups?clinic=mumbai&date=2026-11-26&done="),
        "{}",
        called.location()
    );
    let after = b.get(called.location()).await;
    let t = after.text();
    assert!(t.contains("Saved: marked as called."), "{t}");
    assert!(
        t.contains("Calls called — alice, ") && t.contains(": left a voicemail"),
        "{t}"
    );
    let (actor, appointment, reason): (String, i64, String) = d
        .env
        .sql()
        .query_row(
            "SELECT actor, appointment_id, reason FROM audit_log WHERE action = 'called'",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("a 'called' row");
    assert_eq!(
        (actor.as_str(), appointment, reason.as_str()),
        ("staff:alice", id, "left a voicemail")
    );
    assert_eq!(
        d.one("SELECT status FROM appointments WHERE external_id = 'MUM-1003'"),
        "booked"
    );

    // Cancelling from the card asks first (on a page of its own, which Refresh shows again),
    // and changes nothing until answered.
    let asked = b
        .post_then_get(
            "/desk/follow-ups/action",
            &[
                ("csrf", &b.csrf),
                ("clinic", "mumbai"),
                ("appointment", "MUM-1003"),
                ("date", DAY),
                ("action", "cancelled"),
                ("note", "no new time suits her"),
            ],
            "/desk/follow-ups/confirm?",
        )
        .await;
    assert!(
        asked.text().contains("Cancel the appointment?"),
        "{}",
        asked.text()
    );
    assert_eq!(fields(&asked.body, "sure"), ["yes"]);
    assert_eq!(fields(&asked.body, "note"), ["no new time suits her"]);
    assert_eq!(
        d.one("SELECT status FROM appointments WHERE external_id = 'MUM-1003'"),
        "booked",
        "nothing changes before the answer"
    );
    let cancelled = b
        .follow_up("MUM-1003", "cancelled", Some("no new time suits her"))
        .await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    assert_eq!(
        d.one(
            "SELECT status || '/' || cancelled_by FROM appointments WHERE external_id = 'MUM-1003'"
        ),
        "cancelled/clinic"
    );
    assert_eq!(
        d.one(&format!(
            "SELECT actor || ' ' || action || ' ' || old_value || '→' || new_value || ' (' || reason || ')' FROM audit_log WHERE appointment_id = {id} AND new_value = 'cancelled'"
        )),
        "staff:alice status booked→cancelled (no new time suits her)"
    );
    let t = b.get(cancelled.location()).await.text();
    assert!(t.contains("Saved: set to cancelled."), "{t}");
    assert!(
        t.contains(
            "Nobody to call on Thursday 26 November 2026 at Sunrise Family Clinic, Andheri."
        ),
        "{t}"
    );

    // Unknown actions and appointments are refused without writing.
    let audit = d.count("SELECT count(*) FROM audit_log");
    let odd = b.follow_up("MUM-1003", "deleted", None).await;
    assert_eq!(odd.status, 400);
    let missing = b.follow_up("MUM-9999", "called", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(d.count("SELECT count(*) FROM audit_log"), audit);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_that_needs_a_person_is_shown_until_handled() {
    let d = start().await;
    d.import_example();
    let appointment = d.row("MUM-1002");
    d.env
        .sql()
        .execute(
            "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
             SELECT 'wamid.desk1', p.phone, p.id, a.id, 'text', 'Can I bring my mother along?', 'unknown', 'needs_staff',
                    'not a known answer', 1764000000
             FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.id = ?1",
            params![appointment],
        )
        .expect("insert reply");
    let b = d.signed_in(USER, PASSWORD).await;
    let page = b.get("/desk/replies").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let t = page.text();
    assert!(t.contains("Can I bring my mother along?"), "{t}");
    assert!(t.contains("Priya Patil"), "{t}");
    assert!(t.contains("+91******3210"), "{t}");
    assert!(!page.body.contains("+919876543210"), "number masked");
    assert!(
        t.contains("About the appointment on Thursday 26 November, 09:30 with Dr. Mehta"),
        "{t}"
    );
    let reply = field(&page.body, "reply");

    let res = b
        .post(
            "/desk/replies/handled",
            &[
                ("csrf", &b.csrf),
                ("reply", &reply),
                ("note", "told her yes"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let after = b.get(res.location()).await;
    let t = after.text();
    assert!(t.contains("Marked as handled."), "{t}");
    assert!(t.contains("No replies are waiting."), "{t}");
    assert!(!t.contains("Can I bring my mother along?"), "{t}");
    assert_eq!(
        d.one("SELECT handled_by FROM replies WHERE message_id = 'wamid.desk1'"),
        "staff:alice"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM replies WHERE handled_at IS NOT NULL"),
        1
    );
    assert_eq!(
        d.one("SELECT actor || ' ' || reason FROM audit_log WHERE action = 'reply_handled'"),
        "staff:alice told her yes"
    );
    // A second press (another desk PC) changes nothing.
    let again = b
        .post(
            "/desk/replies/handled",
            &[("csrf", &b.csrf), ("reply", &reply)],
        )
        .await;
    assert_eq!(again.status, 409);
    assert!(
        again.text().contains("Already handled by alice"),
        "{}",
        again.text()
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reply_handled'"),
        1
    );
}

// ---- stats and the webhook port ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stats_draw_an_inline_chart_and_the_desk_is_not_on_the_webhook_port() {
    let d = start().await;
    d.import_example();
    // Seven booked Mumbai appointments were reminded the day before; one confirmed.
    d.env
        .sql()
        .execute_batch(
            "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, template, state, wamid, attempts, sent_at, created_at, updated_at)
             SELECT a.id, 'reminder', 'day-before', a.starts_at, a.starts_at - 86400, a.starts_at - 14400, 'reminder', 'delivered',
                    'wamid.stats' || a.id, 1, a.starts_at - 86400, 0, 0
             FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE c.key = 'mumbai' AND a.status = 'booked';
             UPDATE appointments SET response = 'confirmed', response_at = 1764000000 WHERE external_id = 'MUM-1001';",
        )
        .expect("reminded");
    let b = d.signed_in(USER, PASSWORD).await;
    let page = b
        .get("/desk/stats?clinic=mumbai&from=2026-11-01&to=2026-11-30")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg "), "{}", page.body);
    assert!(page.body.contains("role=\"img\""), "{}", page.body);
    assert!(!page.body.contains("<script"), "no scripts");
    let t = page.text();
    assert!(t.contains("Stats — Sunrise Family Clinic, Andheri"), "{t}");
    assert!(t.contains("8 appointments"), "{t}");
    assert!(t.contains("reminded: 7 of 8 appointments"), "{t}");
    assert!(
        page.body.contains(
            "<tr><th scope=\"row\">Day before</th><td>7</td><td>1 (14%)</td><td>0 (0%)</td><td>0 (0%)</td></tr>"
        ),
        "per-rule row in {}",
        page.body
    );

    let http = reqwest::Client::new();
    for path in ["/desk/login", "/desk/day", "/desk/desk.css"] {
        let res = http
            .get(format!("{}{path}", d.webhook))
            .send()
            .await
            .expect("webhook port");
        assert_eq!(res.status(), 404, "{path} on the webhook port");
    }
    let health = http
        .get(format!("{}/healthz", d.webhook))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "the webhook port is the server's");
    let res = http
        .get(format!("{}/webhook", d.url))
        .send()
        .await
        .expect("desk port");
    assert_eq!(res.status(), 404, "the webhook is not on the desk port");
}

// ---- bad dates, notices, what is audited ---------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn dates_out_of_range_or_unreadable_get_a_clear_400() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    for path in [
        "/desk/stats?clinic=mumbai&to=-262143-01-01",
        "/desk/stats?clinic=mumbai&from=-262143-01-01&to=2026-11-30",
        "/desk/stats?clinic=mumbai&to=%2B262142-12-31",
        "/desk/stats?clinic=mumbai&from=next+week",
        "/desk/day?clinic=mumbai&date=-262143-01-01",
        "/desk/day?clinic=mumbai&date=%2B262142-12-31",
        "/desk/day?clinic=mumbai&date=tomorrow",
        "/desk/follow-ups?clinic=mumbai&date=-262143-01-01",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.text());
        let t = page.text();
        assert!(t.contains("YYYY-MM-DD"), "{path}: {t}");
        assert!(
            t.contains("1970-01-01") && t.contains("9999-12-31"),
            "{path}: {t}"
        );
    }
    // An empty date (a form left blank) is today; in-range dates work.
    assert_eq!(b.get("/desk/day?clinic=mumbai&date=").await.status, 200);
    assert_eq!(
        b.get("/desk/stats?clinic=mumbai&from=1970-01-01&to=9999-12-31")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn done_notices_show_only_known_texts() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    for path in [
        "/desk/follow-ups?clinic=mumbai&date=2026-11-26&done=Your+password+expired%2C+call+0800+555+0100",
        "/desk/replies?done=Your+password+expired%2C+call+0800+555+0100",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.text().contains("0800"), "{path}: {}", page.text());
        assert!(!page.text().contains("expired"), "{path}: {}", page.text());
    }
    let page = b.get("/desk/replies?done=handled").await;
    assert!(
        page.text().contains("Marked as handled."),
        "{}",
        page.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reveal_of_a_row_not_on_the_page_shows_and_audits_nothing() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    let nyc = d.row("NYC-501").to_string();
    let nyc_phone = d.one("SELECT p.phone FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'NYC-501'");
    let mumbai = d.row("MUM-1002").to_string();
    for (appointment, date) in [(nyc.as_str(), DAY), (mumbai.as_str(), "2026-11-27")] {
        let res = b
            .post(
                "/desk/reveal",
                &[
                    ("csrf", &b.csrf),
                    ("appointment", appointment),
                    ("clinic", "mumbai"),
                    ("date", date),
                ],
            )
            .await;
        assert_eq!(res.status, 404, "{}", res.text());
        assert!(!res.body.contains(&nyc_phone));
        assert!(res.text().contains("not on this page"), "{}", res.text());
    }
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reveal_phone'"),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn marking_an_unknown_reply_says_so_and_a_second_mark_names_who() {
    let d = start().await;
    d.import_example();
    d.env
        .sql()
        .execute(
            "INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, reason, received_at)
             SELECT 'wamid.desk2', p.phone, p.id, a.id, 'text', 'Is there parking?', 'unknown', 'needs_staff', 'not a known answer', 1764000000
             FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE a.external_id = 'MUM-1002'",
            (),
        )
        .expect("insert reply");
    let reply = d.one("SELECT CAST(id AS TEXT) FROM replies WHERE message_id = 'wamid.desk2'");
    d.add_user("bob", "another long passphrase");
    let alice = d.signed_in(USER, PASSWORD).await;
    let bob = d.signed_in("bob", "another long passphrase").await;

    let missing = alice
        .post(
            "/desk/replies/handled",
            &[("csrf", &alice.csrf), ("reply", "999999")],
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing.text().contains("No such reply"),
        "{}",
        missing.text()
    );
    assert!(
        !missing.text().contains("Already handled"),
        "{}",
        missing.text()
    );

    let first = alice
        .post(
            "/desk/replies/handled",
            &[("csrf", &alice.csrf), ("reply", &reply)],
        )
        .await;
    assert_eq!(first.status, 303, "{}", first.text());
    let second = bob
        .post(
            "/desk/replies/handled",
            &[("csrf", &bob.csrf), ("reply", &reply)],
        )
        .await;
    assert_eq!(second.status, 409, "{}", second.text());
    assert!(
        second.text().contains("Already handled by alice"),
        "{}",
        second.text()
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'reply_handled'"),
        1
    );
}

// ---- staff accounts ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_account_is_signed_out_and_refused_until_enabled() {
    let d = start().await;
    let earlier = d.signed_in(USER, PASSWORD).await;
    let wrong = d
        .browser()
        .sign_in(USER, "wrong password!", "/desk/day")
        .await;
    assert_eq!(wrong.status, 401);

    let (code, out) = d.user_cmd(&["disable", USER]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alice is disabled"), "{out}");
    assert_eq!(
        earlier.get("/desk/day").await.status,
        303,
        "signed out at once"
    );
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
    let refused = d.browser().sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(
        (refused.status, refused.text()),
        (wrong.status, wrong.text()),
        "the same answer as a wrong password"
    );
    let (code, list) = d.user_cmd(&["list"]);
    assert_eq!(code, 0, "{list}");
    assert!(
        list.contains("alice") && list.contains("disabled"),
        "{list}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'user_disabled' AND new_value = 'alice' AND actor LIKE 'admin:%'"),
        1
    );

    let (code, out) = d.user_cmd(&["enable", USER]);
    assert_eq!(code, 0, "{out}");
    let (_, list) = d.user_cmd(&["list"]);
    assert!(!list.contains("disabled"), "{list}");
    let res = d.browser().sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'user_enabled' AND new_value = 'alice'"
        ),
        1
    );

    for sub in ["disable", "enable", "remove"] {
        let (code, out) = d.user_cmd(&[sub, "nobody"]);
        assert_eq!(code, 65, "{sub}: {out}");
        assert!(out.contains("there is no user \"nobody\""), "{sub}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_account_is_gone_but_the_audit_trail_keeps_its_name() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    // An upload waiting for its confirm refers to the account.
    let preview = b.upload_example().await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    let priya = d.row("MUM-1002").to_string();
    let shown = b
        .post(
            "/desk/reveal",
            &[
                ("csrf", &b.csrf),
                ("appointment", &priya),
                ("clinic", "mumbai"),
                ("date", DAY),
            ],
        )
        .await;
    assert_eq!(shown.status, 303, "the reveal goes back to the board");

    let (code, out) = d.user_cmd(&["remove", USER]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("alice is removed"), "{out}");
    assert_eq!(b.get("/desk/day").await.status, 303, "signed out at once");
    let refused = d.browser().sign_in(USER, PASSWORD, "/desk/day").await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.text().contains("Wrong name or password."),
        "{}",
        refused.text()
    );
    let (_, list) = d.user_cmd(&["list"]);
    assert!(!list.contains("alice"), "{list}");
    assert_eq!(d.count("SELECT count(*) FROM staff_users"), 0);
    assert_eq!(d.count("SELECT count(*) FROM staff_sessions"), 0);
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE actor = 'staff:alice' AND action IN ('sign_in', 'reveal_phone')"),
        2,
        "the audit trail keeps the name"
    );
    assert_eq!(
        d.count(
            "SELECT count(*) FROM audit_log WHERE action = 'user_removed' AND new_value = 'alice'"
        ),
        1
    );
    // The name is free again.
    d.add_user(USER, "a brand new passphrase");
}

// ---- idle sessions -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_session_unused_for_idle_timeout_ends() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    let last_seen = || d.count("SELECT last_seen_at FROM staff_sessions");
    let age = |secs: i64| {
        d.env
            .sql()
            .execute(
                "UPDATE staff_sessions SET created_at = created_at - ?1, last_seen_at = last_seen_at - ?1",
                params![secs],
            )
            .expect("age the session")
    };
    // Used five minutes ago: still signed in, and this use is recorded.
    age(300);
    let before = last_seen();
    assert_eq!(b.get("/desk/day").await.status, 200);
    let after = last_seen();
    assert!(after >= before + 290, "last_seen_at {before} → {after}");
    // Within a minute of the last write, a request writes nothing.
    assert_eq!(b.get("/desk/day").await.status, 200);
    assert_eq!(last_seen(), after);
    // Unused for 31 minutes (desk.idle_timeout is 30m): signed out.
    age(31 * 60);
    let away = b.get("/desk/day").await;
    assert_eq!(away.status, 303);
    assert!(
        away.location().starts_with("/desk/login"),
        "{}",
        away.location()
    );
}

/// A receptionist types a note, but the desk had been left idle and signed her out: the note
/// is not lost. Sign-in says so, and after it the form comes back with the note to save.
#[tokio::test(flavor = "multi_thread")]
async fn a_note_typed_into_an_expired_session_is_offered_again_after_sign_in() {
    let d = start().await;
    d.import_example();
    let b = d.signed_in(USER, PASSWORD).await;
    d.env
        .sql()
        .execute(
            "UPDATE staff_sessions SET created_at = created_at - 3600, last_seen_at = last_seen_at - 3600",
            (),
        )
        .expect("age the session");
    let note = "Rohan will come at 11:00 — his mother called";
    let sent = b.follow_up("MUM-1003", "called", Some(note)).await;
    // The sign-in page, carrying the form, not a redirect that drops it.
    assert_eq!(sent.status, 200, "{}", sent.body);
    let t = sent.text();
    assert!(t.contains("Sign in"), "{t}");
    assert!(
        t.contains("nothing was saved yet") && t.contains("what you typed is kept"),
        "{t}"
    );
    assert_eq!(
        d.count("SELECT count(*) FROM audit_log WHERE action = 'called'"),
        0,
        "nothing saved while signed out"
    );
    let action = field(&sent.body, "resume_action");
    // As a browser sends it: the page escapes the & between fields.
    let body = field(&sent.body, "resume_body").replace("&amp;", "&");
    assert_eq!(action, "/desk/follow-ups/action");
    assert!(
        !body.contains(&b.csrf),
        "the old session's token is not carried"
    );

    // Sign in on that page: the form comes back with the note, under the new session.
    let login_csrf = field(&sent.body, "csrf");
    // Signing in goes on (303) to a page of its own, which Refresh shows again.
    let back = b
        .post_then_get(
            "/desk/login",
            &[
                ("csrf", &login_csrf),
                ("name", USER),
                ("password", PASSWORD),
                ("next", "/desk/day"),
                ("resume_action", &action),
                ("resume_body", &body),
            ],
            "/desk/resume?",
        )
        .await;
    assert!(
        back.text().contains("Save what you typed"),
        "{}",
        back.text()
    );
    assert!(
        back.body.contains("Rohan will come at 11:00"),
        "{}",
        back.body
    );
    let csrf = field(&back.body, "csrf");
    assert_ne!(csrf, b.csrf, "the new session's token");
    let mut form: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    for name in ["clinic", "appointment", "date", "action"] {
        form.push((name.into(), field(&back.body, name)));
    }
    form.push(("note".into(), note.into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let saved = b.post("/desk/follow-ups/action", &pairs).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'called' AND reason = '{note}' AND actor = 'staff:{USER}'"
        )),
        1
    );
}

/// A form that cannot be carried (signing out) still just leads to the sign-in page.
#[tokio::test(flavor = "multi_thread")]
async fn signing_out_of_an_expired_session_leads_to_sign_in() {
    let d = start().await;
    let b = d.signed_in(USER, PASSWORD).await;
    d.env
        .sql()
        .execute("DELETE FROM staff_sessions", ())
        .expect("end the session");
    let out = b.post("/desk/logout", &[("csrf", &b.csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(
        out.location().starts_with("/desk/login"),
        "{}",
        out.location()
    );
}

/// A clinic added to the config and applied with SIGHUP takes uploads at once, with no restart.
#[tokio::test(flavor = "multi_thread")]
async fn a_clinic_added_by_sighup_takes_desk_uploads_at_once() {
    let d = start_daemon().await;
    d.add_user(USER, PASSWORD);
    let config = d.env.path("reminders.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!(
            "{text}\n[clinics.pune]\ndisplay_name = \"Pune Family Clinic\"\ntime_zone = \"Asia/Kolkata\"\nphone_region = \"IN\"\n"
        ),
    )
    .expect("add a clinic");
    crate::common::signal(d.child.id(), "HUP");
    Wait::new("the reload", Duration::from_secs(10))
        .context(|| d.log())
        .until(|| d.log().contains("configuration reloaded"))
        .await;
    let b = d.signed_in(USER, PASSWORD).await;
    let day = (reminderd::time::Clock::System.now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let file = format!(
        "{}\nP1,Q1,Asha Rao,98200 12345,en,{day},10:00,15,Dr. Joshi,pune,booked\n",
        crate::common::HEADER
    );
    let preview = b
        .upload(&b.csrf.clone(), "", "pune.csv", file.into_bytes())
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text());
    assert!(preview.text().contains("1 new"), "{}", preview.text());
    let confirmed = b
        .post_then_get(
            "/desk/upload/confirm",
            &[("csrf", &b.csrf), ("token", &field(&preview.body, "token"))],
            "/desk/upload/done?token=",
        )
        .await;
    assert!(confirmed.text().contains("1 new"), "{}", confirmed.text());
    assert_eq!(
        d.count("SELECT count(*) FROM appointments a JOIN clinics c ON c.id = a.clinic_id WHERE c.key = 'pune'"),
        1
    );
}
