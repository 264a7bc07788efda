//! The front desk in a browser: sign-in, schedule upload with preview, the day board,
//! follow-ups, replies that need a person, and stats. Server-rendered HTML (maud) on its own
//! listen address; the only module besides `server` that knows axum.
//!
//! Every page needs a session; every POST carries the session's CSRF token; every staff
//! action is written to `audit_log` as `staff:<name>`. Uploads use the CLI's import code:
//! the preview is a dry-run, and confirming re-runs it in one transaction that also marks the
//! preview decided, so nothing is written before the confirm and a second confirm does
//! nothing.

// Handlers short-circuit with a finished page as their error; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod chart;
mod signin;
mod views;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, Extension, FromRequestParts, Multipart, Query, State,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, http::request::Parts};
use chrono::{DateTime, NaiveDate, Utc};
use maud::Markup;
use serde::Deserialize;

use crate::config::{Clinic, Config};
use crate::import::{self, ApplyOptions, ImportError, ImportReport, ParseOptions, PreviewCheck};
use crate::store::{Handled, Preview, Session, SignInLimits, SignInTicket, Store, StoreError};
use crate::time::{Clock, local_day_bounds};

/// The session cookie's name.
const SESSION_COOKIE: &str = "reminderd_desk";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to hold a token).
const LOGIN_COOKIE: &str = "reminderd_desk_login";
/// The sign-in form is a name, a password and two tokens: a few KB is plenty, and anything
/// bigger is refused before it is read.
const LOGIN_BODY_LIMIT: usize = 4 * 1024;
/// How staff locked out or without a password get help; every refused sign-in says it,
/// whether or not the name exists.
const GET_HELP: &str =
    "If you have forgotten your password or are locked out, ask the administrator.";

/// What the desk's handlers share.
#[derive(Clone)]
pub struct DeskState {
    /// The database (shared with the webhook and the jobs).
    pub store: Arc<Mutex<Store>>,
    /// The configuration in force (replaced as a whole on reload).
    pub config: Arc<RwLock<Arc<Config>>>,
    /// Time source.
    pub clock: Clock,
}

impl DeskState {
    fn config(&self) -> Arc<Config> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The desk's settings; the defaults if a reload removed `[desk]` while it runs.
    fn desk(&self) -> crate::config::Desk {
        self.config().desk.clone().unwrap_or_default()
    }

    /// Runs `f` on the database off the async threads.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Response> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || {
            let mut s = store
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut s)
        })
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "desk: database error");
                Err(failure(&format!("The database could not be used: {e}")))
            }
            Err(e) => {
                tracing::error!(error = %e, "desk: task failed");
                Err(failure("Something went wrong on the server; try again."))
            }
        }
    }
}

/// Binds the desk's own address and serves it (with `extra` routes beside it, such as
/// `/metrics`) on a task until `stop` is cancelled; `None` when the config has no `[desk]`. The bound address is logged and returned.
pub async fn spawn(
    state: DeskState,
    listen: Option<std::net::SocketAddr>,
    extra: Option<Router>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<
    Option<(
        std::net::SocketAddr,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
> {
    let config = state.config();
    let Some(desk) = config.desk.clone() else {
        return Ok(None);
    };
    let addr = listen.unwrap_or(desk.listen);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("desk.listen: cannot listen on {addr}: {e}"),
        )
    })?;
    let bound = listener.local_addr()?;
    tracing::info!("front desk on http://{bound}/desk");
    let limits = config.server.clone();
    let app = match extra {
        Some(extra) => router(state, desk.max_upload_bytes).merge(extra),
        None => router(state, desk.max_upload_bytes),
    };
    let task = tokio::spawn(async move {
        crate::server::serve(
            listener,
            app,
            &limits,
            async move { stop.cancelled().await },
        )
        .await
    });
    Ok(Some((bound, task)))
}

/// The desk's routes, all under `/desk`.
pub fn router(state: DeskState, max_upload_bytes: usize) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/desk") }))
        .route("/desk", get(|| async { Redirect::to("/desk/day") }))
        .route("/desk/desk.css", get(stylesheet))
        .route(
            "/desk/login",
            get(login_page)
                .post(login)
                .layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/desk/logout", post(logout))
        .route("/desk/day", get(day))
        .route("/desk/reveal", post(reveal))
        .route("/desk/upload", get(upload_page).post(upload))
        .route("/desk/upload/confirm", post(confirm_upload))
        .route("/desk/upload/discard", post(discard_upload))
        .route("/desk/follow-ups", get(follow_ups))
        .route("/desk/follow-ups/action", post(follow_up_action))
        .route("/desk/replies", get(replies))
        .route("/desk/replies/handled", post(reply_handled))
        .route("/desk/stats", get(stats))
        // Multipart framing adds a little to the file itself.
        .layer(DefaultBodyLimit::max(max_upload_bytes + 64 * 1024))
        .layer(axum::middleware::map_response(security_headers))
        .layer(Extension(Arc::new(signin::Gate::new())))
        .with_state(state)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("desk.css"),
    )
        .into_response()
}

// ---- sessions ------------------------------------------------------------------------------

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/desk; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in staff member; pages that need one redirect to the sign-in page without it.
pub struct Staff {
    session: Session,
    token_hash: String,
}

impl Staff {
    fn actor(&self) -> String {
        format!("staff:{}", self.session.user)
    }

    /// Refuses a form whose CSRF token is not this session's.
    fn check(&self, token: &str) -> Result<(), Response> {
        if auth::same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            tracing::warn!(user = %self.session.user, "desk: form with a wrong CSRF token refused");
            Err((
                StatusCode::FORBIDDEN,
                views::message(
                    Some(&self.session),
                    "This form has expired",
                    "The page was open from an earlier sign-in or came from another site. Go back, reload the page and try again.",
                ),
            )
                .into_response())
        }
    }
}

impl FromRequestParts<DeskState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &DeskState) -> Result<Self, Response> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/desk/day", axum::http::uri::PathAndQuery::as_str);
            let next = if parts.method == axum::http::Method::GET {
                next
            } else {
                "/desk/day"
            };
            Redirect::to(&format!("/desk/login?next={}", urlencode(next))).into_response()
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let token_hash = auth::token_hash(token);
        let now = state.clock.now();
        let idle = state.desk().idle_timeout;
        let lookup = token_hash.clone();
        match state.db(move |s| s.session(&lookup, idle, now)).await? {
            Some(session) => Ok(Self {
                session,
                token_hash,
            }),
            None => Err(to_login()),
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The address a request came from (what sign-in limits and lock-outs are counted by);
/// unspecified when the server did not record it.
struct ClientAddr(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip().to_canonical()),
        ))
    }
}

/// Only desk pages are followed after sign-in, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/desk/")
                && !n.starts_with("/desk//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n
        }
        _ => "/desk/day",
    }
}

fn failure(text: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        views::message(None, "Something went wrong", text),
    )
        .into_response()
}

fn html(markup: Markup) -> Response {
    markup.into_response()
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let secure = state.desk().secure_cookies;
    let (token, fresh) = match cookie(&headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 64 => (t.to_string(), false),
        _ => (auth::new_token(), true),
    };
    let mut res = html(views::login(
        &token,
        safe_next(q.next.as_deref()),
        None,
        None,
    ));
    if fresh {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, secure),
        );
    }
    res
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// "15 minutes", "2 hours": how long a sign-in pause lasts, in words.
fn pause_words(d: chrono::Duration) -> String {
    let minutes = d.num_minutes().max(1);
    if minutes >= 120 && minutes % 60 == 0 {
        format!("{} hours", minutes / 60)
    } else if minutes == 1 {
        "1 minute".into()
    } else {
        format!("{minutes} minutes")
    }
}

/// A sign-in refused before anything was checked: a full page with a Retry-After.
fn try_later(
    status: StatusCode,
    retry_after: std::time::Duration,
    title: &str,
    text: &str,
) -> Response {
    let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut res = (status, views::message(None, title, text)).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    res
}

async fn login(
    State(state): State<DeskState>,
    Extension(gate): Extension<Arc<signin::Gate>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let desk = state.desk();
    if let Err(signin::TooMany(wait)) = gate.admit(&desk, client) {
        tracing::warn!(%client, "desk: sign-in over desk.sign_ins_per_minute(_per_address) refused");
        let seconds = wait.as_secs().max(1);
        return try_later(
            StatusCode::TOO_MANY_REQUESTS,
            wait,
            "Too many sign-in attempts",
            &format!(
                "Too many sign-in attempts have come from this computer or from all of them together. Wait {seconds} seconds, then sign in again."
            ),
        );
    }
    let f = match form {
        Ok(Form(f)) => f,
        Err(e) => {
            let (status, text) = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The sign-in form sent was too large (a name and a password take a few hundred bytes). Open the sign-in page again and type them in.",
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "The sign-in form was incomplete or unreadable. Open the sign-in page again and sign in from there.",
                )
            };
            tracing::warn!(%client, error = %e, "desk: unreadable sign-in form refused");
            return (
                status,
                views::message(None, "Sign-in form not accepted", text),
            )
                .into_response();
        }
    };
    let next = safe_next(f.next.as_deref()).to_string();
    let Some(expected) = cookie(&headers, LOGIN_COOKIE).filter(|c| auth::same_token(c, &f.csrf))
    else {
        tracing::warn!("desk: sign-in without its CSRF cookie refused");
        let token = auth::new_token();
        let mut res = (
            StatusCode::FORBIDDEN,
            views::login(
                &token,
                &next,
                Some(&f.name),
                Some("The sign-in form had expired. Please sign in again."),
            ),
        )
            .into_response();
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, desk.secure_cookies),
        );
        return res;
    };
    let expected = expected.to_string();
    // A check slot first, then the count: an attempt answered "busy" is not counted.
    let Ok(slot) = gate.slot().await else {
        tracing::warn!(%client, "desk: sign-in answered busy (all password checks in use)");
        return try_later(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(2),
            "The desk is busy",
            "The desk is busy checking other sign-ins; try again in a moment.",
        );
    };
    let now = state.clock.now();
    let name = f.name.trim().to_string();
    let limits = SignInLimits {
        per_client: i64::from(desk.max_failed_logins),
        per_name: i64::from(desk.max_failed_logins_per_name),
        window: desk.lockout,
    };
    let (lookup, from) = (name.clone(), client.to_string());
    let ticket = match state
        .db(move |s| s.reserve_sign_in(&lookup, &from, limits, now))
        .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    // Every refusal reads the same whether the name exists, is disabled or is unknown.
    let refuse = |why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            views::login(&expected, &next, Some(&name), Some(why)),
        )
            .into_response()
    };
    let pause = pause_words(desk.lockout);
    let (account, last) = match ticket {
        SignInTicket::Paused(_) => {
            drop(slot);
            tracing::warn!(%client, "desk: sign-in refused unchecked: too many attempts for this name");
            return refuse(&format!(
                "Sign-in with this name is paused after too many tries; try again within {pause}. {GET_HELP}"
            ));
        }
        SignInTicket::Check { account, last } => (account, last),
    };
    let phc = account.as_ref().map_or_else(
        || auth::decoy_hash().to_string(),
        |a| a.password_hash.clone(),
    );
    let good = gate.verify(slot, f.password, phc).await && account.is_some();
    let account = match account {
        Some(a) if good => a,
        known => {
            if let Some(a) = &known {
                let (user, from) = (a.name.clone(), client.to_string());
                if let Err(r) = state
                    .db(move |s| s.sign_in_failed(&user, last, &from, now))
                    .await
                {
                    return r;
                }
            }
            tracing::warn!(%client, known = known.is_some(), paused = last, "desk: wrong name or password");
            return refuse(&if last {
                format!(
                    "Wrong name or password. That was one try too many: sign-in with this name is paused for {pause}. {GET_HELP}"
                )
            } else {
                format!("Wrong name or password. {GET_HELP}")
            });
        }
    };
    let token = auth::new_token();
    let (hash, csrf, id) = (auth::token_hash(&token), auth::new_token(), account.id);
    let (expires, idle, from) = (now + desk.session, desk.idle_timeout, client.to_string());
    if let Err(r) = state
        .db(move |s| s.start_session(id, &name, &from, &hash, &csrf, expires, idle, now))
        .await
    {
        return r;
    }
    tracing::info!(user = %account.name, "desk: signed in");
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            desk.session.num_seconds(),
            desk.secure_cookies,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", 0, desk.secure_cookies),
    );
    res
}

#[derive(Deserialize)]
struct CsrfForm {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
}

async fn logout(State(state): State<DeskState>, staff: Staff, Form(f): Form<CsrfForm>) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let now = state.clock.now();
    let hash = staff.token_hash.clone();
    if let Err(r) = state.db(move |s| s.end_session(&hash, now)).await {
        return r;
    }
    let mut res = Redirect::to("/desk/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.desk().secure_cookies),
    );
    res
}

// ---- the day board ---------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct DayQuery {
    clinic: Option<String>,
    date: Option<String>,
}

/// The earliest and latest days the desk shows: stored instants start at 1970, and four-digit
/// years are what a date field sends. Outside them, date arithmetic could overflow.
fn day_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN),
        NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX),
    )
}

/// A date from a query: `None` when absent or empty (a form left blank), else a day in
/// [`day_range`] or what is wrong with it.
fn parse_day(text: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let (first, last) = day_range();
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) if (first..=last).contains(&d) => Ok(Some(d)),
        _ => Err(format!(
            "{text:?} is not a date the desk can show. Write it as YYYY-MM-DD, between {first} and {last}, or pick it in the date field."
        )),
    }
}

/// The clinic a page shows (the first configured when none or an unknown one is asked for)
/// and the local day (today at the clinic when none is given). `Ok(None)`: no clinics.
fn clinic_day(
    config: &Config,
    clinic: Option<&str>,
    date: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<(Clinic, NaiveDate)>, String> {
    let date = parse_day(date)?;
    let Some(c) = clinic
        .and_then(|k| config.clinic(k))
        .or_else(|| config.clinics.values().next())
    else {
        return Ok(None);
    };
    let day = date.unwrap_or_else(|| now.with_timezone(&c.time_zone).date_naive());
    Ok(Some((c.clone(), day)))
}

fn bad_date(staff: &Staff, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        views::message(Some(&staff.session), "Unreadable date", why),
    )
        .into_response()
}

/// [`clinic_day`] for a page, or the page saying there is no clinic to show or what is wrong
/// with the date.
fn page_day(
    state: &DeskState,
    staff: &Staff,
    clinic: Option<&str>,
    date: Option<&str>,
) -> Result<(Arc<Config>, Clinic, NaiveDate), Response> {
    let config = state.config();
    match clinic_day(&config, clinic, date, state.clock.now()) {
        Ok(Some((c, day))) => Ok((config, c, day)),
        Ok(None) => Err(html(views::message(
            Some(&staff.session),
            "No clinics",
            "reminders.toml configures no clinic.",
        ))),
        Err(why) => Err(bad_date(staff, &why)),
    }
}

/// A reveal asked for a row the page does not show (another clinic or day, or none).
fn not_on_page(staff: &Staff) -> Response {
    (
        StatusCode::NOT_FOUND,
        views::message(
            Some(&staff.session),
            "No such appointment",
            "That appointment is not on this page (another clinic or day, or it no longer exists), so no number was shown. Reload the page and try again.",
        ),
    )
        .into_response()
}

async fn day(State(state): State<DeskState>, staff: Staff, Query(q): Query<DayQuery>) -> Response {
    board(&state, &staff, &q, None).await
}

async fn board(state: &DeskState, staff: &Staff, q: &DayQuery, revealed: Option<i64>) -> Response {
    let (config, clinic, day) = match page_day(state, staff, q.clinic.as_deref(), q.date.as_deref())
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let (key, actor, now) = (clinic.key.clone(), staff.actor(), state.clock.now());
    let rows = match state
        .db(move |s| {
            let rows = s.board(&key, from, to)?;
            // Only a reveal that shows a number is audited.
            if let Some(id) = revealed.filter(|id| rows.iter().any(|r| r.id == *id)) {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(rows)
        })
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(id) = revealed {
        let Some(row) = rows.iter().find(|r| r.id == id) else {
            return not_on_page(staff);
        };
        tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %row.appointment_id, "desk: phone number revealed");
    }
    html(views::day_page(
        &staff.session,
        &config,
        &clinic,
        day,
        &rows,
        revealed,
    ))
}

#[derive(Deserialize)]
struct RevealForm {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    appointment: i64,
    clinic: Option<String>,
    date: Option<String>,
    back: Option<String>,
}

async fn reveal(
    State(state): State<DeskState>,
    staff: Staff,
    Form(f): Form<RevealForm>,
) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let q = DayQuery {
        clinic: f.clinic,
        date: f.date,
    };
    if f.back.as_deref() == Some("follow-ups") {
        follow_ups_page(&state, &staff, &q, Some(f.appointment), None).await
    } else {
        board(&state, &staff, &q, Some(f.appointment)).await
    }
}

// ---- upload --------------------------------------------------------------------------------

async fn upload_page(State(state): State<DeskState>, staff: Staff) -> Response {
    html(views::upload(&staff.session, &state.config(), None))
}

async fn upload(State(state): State<DeskState>, staff: Staff, mut form: Multipart) -> Response {
    let config = state.config();
    let (mut csrf, mut clinic, mut complete, mut file) = (String::new(), None, false, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let file_name = field.file_name().map(str::to_string);
                let Ok(bytes) = field.bytes().await else {
                    return bad_upload(
                        &staff,
                        &config,
                        "The file could not be read completely; it may be larger than the desk accepts (desk.max_upload_bytes).",
                    );
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
                    "clinic" => {
                        let v = String::from_utf8_lossy(&bytes).trim().to_string();
                        clinic = (!v.is_empty()).then_some(v);
                    }
                    "complete" => complete = !bytes.is_empty(),
                    "file" => {
                        file = Some((
                            file_name.unwrap_or_else(|| "upload.csv".into()),
                            bytes.to_vec(),
                        ))
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => {
                return bad_upload(
                    &staff,
                    &config,
                    &format!(
                        "The upload could not be read ({e}); it may be larger than the desk accepts (desk.max_upload_bytes)."
                    ),
                );
            }
        }
    }
    if let Err(r) = staff.check(&csrf) {
        return r;
    }
    let Some((file_name, body)) = file.filter(|(_, b)| !b.is_empty()) else {
        return bad_upload(
            &staff,
            &config,
            "Choose the schedule file (a .csv export) before pressing Preview.",
        );
    };
    let file_name = sanitize_file_name(&file_name);
    let preview = Preview {
        token: auth::new_token(),
        user_id: staff.session.user_id,
        clinic,
        file_name,
        body,
        complete,
        summary: String::new(),
        decision: None,
    };
    show_preview(&state, &staff, preview, None).await
}

/// Names are shown and written to the audit log: keep what a person can read.
fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(120).collect();
    if clean.trim().is_empty() {
        "upload.csv".into()
    } else {
        clean
    }
}

fn bad_upload(staff: &Staff, config: &Config, why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        views::upload(&staff.session, config, Some(why)),
    )
        .into_response()
}

/// Runs the import as a dry-run; a file with errors shows them (nothing is kept), a good
/// one is kept as a preview awaiting confirm.
async fn show_preview(
    state: &DeskState,
    staff: &Staff,
    mut preview: Preview,
    notice: Option<&str>,
) -> Response {
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let result = state
        .db(move |s| {
            let parsed = match parse_preview(&cfg, &preview) {
                Ok(p) => p,
                Err(why) => return Ok(Err(why)),
            };
            let report = match import::apply(
                s,
                &cfg,
                &parsed,
                &ApplyOptions {
                    file_name: &preview.file_name,
                    complete: preview.complete,
                    dry_run: true,
                    imported_by: &actor,
                    now,
                    preview: None,
                },
            ) {
                Ok(r) => r,
                Err(ImportError::Store(e)) => return Err(e),
                Err(e) => return Ok(Err(e.to_string())),
            };
            if report.errors.is_empty() {
                preview.summary = report.fingerprint();
                s.save_preview(&preview, now)?;
            }
            Ok(Ok((preview, parsed, report)))
        })
        .await;
    match result {
        Ok(Ok((preview, parsed, report))) => {
            let status = if report.errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (
                status,
                views::preview(&staff.session, &config, &preview, &parsed, &report, notice),
            )
                .into_response()
        }
        Ok(Err(why)) => bad_upload(staff, &config, &why),
        Err(r) => r,
    }
}

fn parse_preview(config: &Config, p: &Preview) -> Result<import::ParsedFile, String> {
    // The clinic's own export format, if it has one, follows from the clinic.
    let opts = ParseOptions {
        clinic: p.clinic.as_deref(),
        format: None,
    };
    import::parse(&p.body, config, &opts).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct PreviewForm {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    token: String,
}

enum Confirmed {
    Done(ImportReport),
    Outdated(Preview),
    Already(String),
    Missing,
}

async fn confirm_upload(
    State(state): State<DeskState>,
    staff: Staff,
    Form(f): Form<PreviewForm>,
) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let config = state.config();
    let now = state.clock.now();
    let actor = staff.actor();
    let cfg = Arc::clone(&config);
    let result = state
        .db(move |s| {
            let Some(preview) = s.preview(&f.token)? else {
                return Ok(Confirmed::Missing);
            };
            if let Some(d) = &preview.decision {
                return Ok(Confirmed::Already(d.clone()));
            }
            let Ok(parsed) = parse_preview(&cfg, &preview) else {
                // The config changed under the preview (a clinic or format removed).
                s.close_preview(&preview.token, "changed", &actor, now)?;
                return Ok(Confirmed::Outdated(preview));
            };
            let outcome = import::apply(
                s,
                &cfg,
                &parsed,
                &ApplyOptions {
                    file_name: &preview.file_name,
                    complete: preview.complete,
                    dry_run: false,
                    imported_by: &actor,
                    now,
                    preview: Some(PreviewCheck {
                        token: &preview.token,
                        fingerprint: &preview.summary,
                    }),
                },
            );
            match outcome {
                Ok(r) if r.preview_outdated || !r.errors.is_empty() => {
                    s.close_preview(&preview.token, "changed", &actor, now)?;
                    Ok(Confirmed::Outdated(preview))
                }
                Ok(r) => {
                    let counts = format!(
                        "{} new, {} updated, {} cancelled, {} unchanged",
                        r.new, r.updated, r.cancelled, r.unchanged
                    );
                    s.audit_staff(
                        &actor,
                        "upload_confirmed",
                        None,
                        Some(&preview.file_name),
                        Some(&counts),
                        now,
                    )?;
                    Ok(Confirmed::Done(r))
                }
                Err(ImportError::AlreadyDecided(d)) => Ok(Confirmed::Already(d)),
                Err(ImportError::Store(e)) => Err(e),
                Err(ImportError::Options(m)) => Err(StoreError::Corrupt(m)),
            }
        })
        .await;
    match result {
        Ok(Confirmed::Done(report)) => {
            tracing::info!(user = %staff.session.user, file = %report.file, new = report.new, updated = report.updated, cancelled = report.cancelled, "desk: schedule imported");
            html(views::imported(&staff.session, &report))
        }
        Ok(Confirmed::Outdated(mut preview)) => {
            preview.token = auth::new_token();
            preview.decision = None;
            show_preview(&state, &staff, preview, Some("The schedule changed since this file was previewed (another upload or an import), so nothing was imported. Below is what the file would do now: check it and confirm again.")).await
        }
        Ok(Confirmed::Already(d)) => html(views::message(
            Some(&staff.session),
            "Already done",
            &format!("This upload was already {d}; nothing more was imported. The day board shows the schedule as it is."),
        )),
        Ok(Confirmed::Missing) => (
            StatusCode::NOT_FOUND,
            views::message(Some(&staff.session), "Upload not found", "This preview no longer exists (previews are kept for a day). Upload the file again."),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn discard_upload(
    State(state): State<DeskState>,
    staff: Staff,
    Form(f): Form<PreviewForm>,
) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let now = state.clock.now();
    let actor = staff.actor();
    match state
        .db(move |s| s.close_preview(&f.token, "discarded", &actor, now))
        .await
    {
        Ok(None) => html(views::message(
            Some(&staff.session),
            "Discarded",
            "Nothing was imported. You can upload another file.",
        )),
        Ok(Some(d)) => html(views::message(
            Some(&staff.session),
            "Already done",
            &format!("This upload was already {d}."),
        )),
        Err(r) => r,
    }
}

// ---- follow-ups and replies ------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct FollowUpQuery {
    clinic: Option<String>,
    date: Option<String>,
    done: Option<String>,
}

async fn follow_ups(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FollowUpQuery>,
) -> Response {
    let day = DayQuery {
        clinic: q.clinic,
        date: q.date,
    };
    follow_ups_page(&state, &staff, &day, None, q.done.as_deref()).await
}

async fn follow_ups_page(
    state: &DeskState,
    staff: &Staff,
    q: &DayQuery,
    revealed: Option<i64>,
    done: Option<&str>,
) -> Response {
    let (config, clinic, day) = match page_day(state, staff, q.clinic.as_deref(), q.date.as_deref())
    {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (from, to) = local_day_bounds(clinic.time_zone, day);
    let rules = config.rule_count(&clinic.key);
    let (key, actor, now) = (clinic.key.clone(), staff.actor(), state.clock.now());
    let rows = match state
        .db(move |s| {
            let list = s.follow_ups(&key, from, to, rules)?;
            let board = s.board(&key, from, to)?;
            let rows = list
                .into_iter()
                .map(|f| {
                    let row = board
                        .iter()
                        .find(|b| b.appointment_id == f.appointment_id)
                        .cloned();
                    (f, row)
                })
                .collect::<Vec<_>>();
            // Only a reveal that shows a number is audited.
            if let Some(id) = revealed.filter(|id| shown(&rows, *id).is_some()) {
                s.audit_staff(&actor, "reveal_phone", Some(id), None, None, now)?;
            }
            Ok(rows)
        })
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Some(id) = revealed {
        let Some(row) = shown(&rows, id) else {
            return not_on_page(staff);
        };
        tracing::info!(user = %staff.session.user, clinic = %clinic.key, appointment = %row.appointment_id, "desk: phone number revealed");
    }
    let done = done
        .and_then(views::Notice::from_key)
        .map(views::Notice::text);
    html(views::follow_ups(
        &staff.session,
        &config,
        &clinic,
        day,
        &rows,
        revealed,
        done,
    ))
}

/// The follow-up row with this id whose number the page can show.
fn shown(
    rows: &[(crate::store::FollowUp, Option<crate::store::BoardRow>)],
    id: i64,
) -> Option<&crate::store::BoardRow> {
    rows.iter()
        .filter_map(|(_, b)| b.as_ref())
        .find(|b| b.id == id)
}

#[derive(Deserialize)]
struct ActionForm {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    clinic: String,
    appointment: String,
    date: Option<String>,
    action: String,
    note: Option<String>,
}

async fn follow_up_action(
    State(state): State<DeskState>,
    staff: Staff,
    Form(f): Form<ActionForm>,
) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let note = f
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let action = f.action.clone();
    if !matches!(
        action.as_str(),
        "called" | "note" | "confirmed" | "cancelled" | "no_show"
    ) {
        return (
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Unknown action",
                "Choose one of the actions in the list.",
            ),
        )
            .into_response();
    }
    if action == "note" && note.is_none() {
        return (
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "The note is empty",
                "Write the note in the box, then press Save.",
            ),
        )
            .into_response();
    }
    let now = state.clock.now();
    let actor = staff.actor();
    let (clinic, appointment) = (f.clinic.clone(), f.appointment.clone());
    let done = state
        .db(move |s| {
            if matches!(action.as_str(), "called" | "note") {
                let Some(id) = s.appointment_row(&clinic, &appointment)? else {
                    return Ok(false);
                };
                s.audit_staff(&actor, &action, Some(id), None, note.as_deref(), now)?;
                Ok(true)
            } else {
                match s.set_status(
                    Some(&clinic),
                    &appointment,
                    &action,
                    note.as_deref(),
                    &actor,
                    now,
                ) {
                    Ok(_) => Ok(true),
                    Err(StoreError::Corrupt(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        })
        .await;
    match done {
        Ok(true) => {
            tracing::info!(user = %staff.session.user, clinic = %f.clinic, appointment = %f.appointment, action = %f.action, "desk: follow-up action");
            // The notice is a key the page maps to a fixed text, never text from the URL.
            Redirect::to(&format!(
                "/desk/follow-ups?clinic={}&date={}&done={}",
                urlencode(&f.clinic),
                urlencode(f.date.as_deref().unwrap_or_default()),
                urlencode(&f.action)
            ))
            .into_response()
        }
        Ok(false) => (
            StatusCode::NOT_FOUND,
            views::message(
                Some(&staff.session),
                "No such appointment",
                "Reload the list and try again.",
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn replies(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<FollowUpQuery>,
) -> Response {
    let done = q
        .done
        .as_deref()
        .and_then(views::Notice::from_key)
        .map(views::Notice::text);
    replies_page(&state, &staff, StatusCode::OK, done).await
}

async fn replies_page(
    state: &DeskState,
    staff: &Staff,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let rows = match state.db(|s| s.replies(true, None)).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    (status, views::replies(&staff.session, &rows, notice)).into_response()
}

#[derive(Deserialize)]
struct HandledForm {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    reply: i64,
    note: Option<String>,
}

async fn reply_handled(
    State(state): State<DeskState>,
    staff: Staff,
    Form(f): Form<HandledForm>,
) -> Response {
    if let Err(r) = staff.check(&f.csrf) {
        return r;
    }
    let now = state.clock.now();
    let actor = staff.actor();
    let note = f
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    match state
        .db(move |s| s.handle_reply(f.reply, &actor, note.as_deref(), now))
        .await
    {
        Ok(Handled::Now) => Redirect::to(&format!(
            "/desk/replies?done={}",
            views::Notice::ReplyHandled.key()
        ))
        .into_response(),
        Ok(Handled::Already(by)) => {
            let by = by.strip_prefix("staff:").unwrap_or(&by);
            let notice = format!("Already handled by {by}; nothing changed");
            replies_page(&state, &staff, StatusCode::CONFLICT, Some(&notice)).await
        }
        Ok(Handled::NotWaiting) => (
            StatusCode::NOT_FOUND,
            views::message(
                Some(&staff.session),
                "No such reply",
                "No reply with that number is waiting for a person. Reload the list of replies.",
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}

// ---- stats -----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct StatsQuery {
    clinic: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn stats(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
) -> Response {
    let (config, clinic, today) = match page_day(&state, &staff, q.clinic.as_deref(), None) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (from, to) = match (parse_day(q.from.as_deref()), parse_day(q.to.as_deref())) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(why), _) | (_, Err(why)) => return bad_date(&staff, &why),
    };
    let to = to.unwrap_or(today);
    // Thirty days by default; never before the first day the desk shows.
    let from = from.unwrap_or_else(|| {
        to.checked_sub_days(chrono::Days::new(29))
            .map_or(day_range().0, |d| d.max(day_range().0))
    });
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    let (start, end) = (
        local_day_bounds(clinic.time_zone, from).0,
        local_day_bounds(clinic.time_zone, to).1,
    );
    let key = clinic.key.clone();
    match state.db(move |s| s.stats(Some(&key), start, end)).await {
        Ok(s) => html(views::stats(&staff.session, &config, &clinic, from, to, &s)),
        Err(r) => r,
    }
}
