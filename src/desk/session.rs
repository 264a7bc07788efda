//! Sessions: the cookies, the `Staff` extractor, sign-in and sign-out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Form;
use axum::body::{Body, Bytes};
use axum::extract::rejection::FormRejection;
use axum::extract::{
    ConnectInfo, Extension, FromRequest, FromRequestParts, Query, RawForm, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{CsrfForm, DeskState, auth, html, parse_form, signin, urlencode, views};
use crate::store::{SignInLimits, SignInTicket};

/// The session cookie's name.
const SESSION_COOKIE: &str = "reminderd_desk";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to hold a token).
const LOGIN_COOKIE: &str = "reminderd_desk_login";
/// The sign-in form is a name, a password and two tokens: a few KB is plenty, and anything
/// bigger is refused before it is read.
pub(super) const LOGIN_BODY_LIMIT: usize = 4 * 1024;
/// How staff locked out or without a password get help; every refused sign-in says it,
/// whether or not the name exists.
const GET_HELP: &str =
    "If you have forgotten your password or are locked out, ask the administrator.";

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
    pub(super) session: views::SignedIn,
    token_hash: String,
}

impl Staff {
    pub(super) fn actor(&self) -> String {
        format!("staff:{}", self.session.user)
    }

    /// Refuses a staff member without the admin role: the 403 page, and a log line.
    pub(super) fn require_admin(&self) -> Result<(), Response> {
        if self.session.role == crate::model::Role::Admin {
            return Ok(());
        }
        tracing::warn!(user = %self.session.user, "desk: admin-only page refused");
        Err((
            StatusCode::FORBIDDEN,
            views::message(
                Some(&self.session),
                "Only an administrator can do this",
                "Exports, erasing a patient's data and lists of named patients are for the clinic's administrators. Ask one of them.",
            ),
        )
            .into_response())
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub(super) fn check(&self, token: &str) -> Result<(), Response> {
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

impl Staff {
    /// The signed-in staff member of this request, or `None` without a live session.
    pub(super) async fn lookup(parts: &Parts, state: &DeskState) -> Result<Option<Self>, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let token_hash = auth::token_hash(token);
        let now = state.clock.now();
        let idle = state.desk().idle_timeout;
        let lookup = token_hash.clone();
        let config = state.config();
        // The page shell's counts and banner are read in the same call as the session.
        let signed_in = move |s: &mut crate::store::Store| match s.session(&lookup, idle, now)? {
            Some(session) => super::pages::signed_in(s, &config, session, now).map(Some),
            None => Ok(None),
        };
        Ok(state.db(signed_in).await?.map(|session| Self {
            session,
            token_hash,
        }))
    }
}

/// The way to the sign-in page from a request without a session: back to the page asked for
/// when it was a GET, else to the day board.
fn to_login(parts: &Parts) -> Response {
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
}

impl FromRequestParts<DeskState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &DeskState) -> Result<Self, Response> {
        Self::lookup(parts, state)
            .await?
            .ok_or_else(|| to_login(parts))
    }
}

/// A resumed form's fields, urlencoded, are carried in the sign-in form, whose body is capped
/// at [`LOGIN_BODY_LIMIT`]: past this, the form is not carried (a note is at most 500 chars).
const RESUME_LIMIT: usize = 3 * 1024;

/// Where a form may be resumed after sign-in: a desk form, not signing in or out.
fn resumable(action: &str) -> bool {
    safe_next(Some(action)) == action && !matches!(action, "/desk/login" | "/desk/logout")
}

/// The answer to a form posted without a live session (the desk was left idle, or the
/// session's time ran out): the sign-in page, carrying the form so that a note typed into it
/// is offered again after sign-in instead of being lost. Forms that cannot be carried (too
/// big, not urlencoded, signing out) get the plain sign-in redirect.
pub(super) async fn signed_out_form(state: &DeskState, parts: Parts, body: Body) -> Response {
    let action = parts.uri.path().to_string();
    let fallback = to_login(&parts);
    if !resumable(&action) {
        return fallback;
    }
    let Ok(RawForm(bytes)) = RawForm::from_request(Request::from_parts(parts, body), state).await
    else {
        return fallback;
    };
    let Ok(fields) = parse_form::<Vec<(String, String)>>(&bytes).await else {
        return fallback;
    };
    let body = encode_fields(fields.iter().filter(|(k, _)| k != "csrf"));
    if body.is_empty() || body.len() > RESUME_LIMIT {
        return fallback;
    }
    tracing::info!(form = %action, "desk: a form posted after its session ended is carried through sign-in");
    login_form_page(
        state,
        &HeaderMap::new(),
        "/desk/day",
        Some(&views::Resume {
            action: &action,
            body: &body,
        }),
    )
}

fn encode_fields<'a>(fields: impl Iterator<Item = &'a (String, String)>) -> String {
    fields
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The address a request came from (what sign-in limits and lock-outs are counted by);
/// unspecified when the server did not record it.
pub(super) struct ClientAddr(IpAddr);

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

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

pub(super) async fn login_page(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    login_form_page(&state, &headers, safe_next(q.next.as_deref()), None)
}

/// The sign-in form with its double-submit cookie (kept when the browser has one).
fn login_form_page(
    state: &DeskState,
    headers: &HeaderMap,
    next: &str,
    resume: Option<&views::Resume<'_>>,
) -> Response {
    let secure = state.desk().secure_cookies;
    let (token, fresh) = match cookie(headers, LOGIN_COOKIE) {
        Some(t) if t.len() == 64 => (t.to_string(), false),
        _ => (auth::new_token(), true),
    };
    let mut res = html(views::login(&token, next, None, None, resume));
    if fresh {
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, secure),
        );
    }
    res
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
    next: Option<String>,
    /// A form posted while signed out ([`signed_out_form`]): where it goes and its fields.
    resume_action: Option<String>,
    resume_body: Option<String>,
}

impl LoginForm {
    /// The carried form's action and fields, when they may be resumed.
    fn resume(&self) -> Option<(String, String)> {
        match (&self.resume_action, &self.resume_body) {
            (Some(action), Some(body)) if resumable(action) && body.len() <= RESUME_LIMIT => {
                Some((action.clone(), body.clone()))
            }
            _ => None,
        }
    }
}

fn as_resume(r: Option<&(String, String)>) -> Option<views::Resume<'_>> {
    r.map(|(action, body)| views::Resume { action, body })
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

pub(super) async fn login(
    State(state): State<DeskState>,
    Extension(gate): Extension<Arc<signin::Gate>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, Response> {
    let desk = state.desk();
    if let Err(signin::TooMany(wait)) = gate.admit(&desk, client) {
        tracing::warn!(%client, "desk: sign-in over desk.sign_ins_per_minute(_per_address) refused");
        let seconds = wait.as_secs().max(1);
        return Err(try_later(
            StatusCode::TOO_MANY_REQUESTS,
            wait,
            "Too many sign-in attempts",
            &format!(
                "Too many sign-in attempts have come from this computer or from all of them together. Wait {seconds} seconds, then sign in again."
            ),
        ));
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
            return Err((
                status,
                views::message(None, "Sign-in form not accepted", text),
            )
                .into_response());
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
                as_resume(f.resume().as_ref()).as_ref(),
            ),
        )
            .into_response();
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, 3600, desk.secure_cookies),
        );
        return Err(res);
    };
    let expected = expected.to_string();
    let resume = f.resume();
    // A check slot first, then the count: an attempt answered "busy" is not counted.
    let Ok(slot) = gate.slot().await else {
        tracing::warn!(%client, "desk: sign-in answered busy (all password checks in use)");
        return Err(try_later(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(2),
            "The desk is busy",
            "The desk is busy checking other sign-ins; try again in a moment.",
        ));
    };
    let now = state.clock.now();
    let name = f.name.trim().to_string();
    let limits = SignInLimits {
        per_client: i64::from(desk.max_failed_logins),
        per_name: i64::from(desk.max_failed_logins_per_name),
        window: desk.lockout,
    };
    let (lookup, from) = (name.clone(), client.to_string());
    let ticket = state
        .db(move |s| s.reserve_sign_in(&lookup, &from, limits, now))
        .await?;
    // Every refusal reads the same whether the name exists, is disabled or is unknown.
    let refuse = |why: &str| {
        (
            StatusCode::UNAUTHORIZED,
            views::login(
                &expected,
                &next,
                Some(&name),
                Some(why),
                as_resume(resume.as_ref()).as_ref(),
            ),
        )
            .into_response()
    };
    let pause = pause_words(desk.lockout);
    let (account, last) = match ticket {
        SignInTicket::Paused(_) => {
            drop(slot);
            tracing::warn!(%client, "desk: sign-in refused unchecked: too many attempts for this name");
            return Err(refuse(&format!(
                "Sign-in with this name is paused after too many tries; try again within {pause}. {GET_HELP}"
            )));
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
                state
                    .db(move |s| s.sign_in_failed(&user, last, &from, now))
                    .await?;
            }
            tracing::warn!(%client, known = known.is_some(), paused = last, "desk: wrong name or password");
            return Err(refuse(&if last {
                format!(
                    "Wrong name or password. That was one try too many: sign-in with this name is paused for {pause}. {GET_HELP}"
                )
            } else {
                format!("Wrong name or password. {GET_HELP}")
            }));
        }
    };
    let token = auth::new_token();
    let (hash, csrf, id) = (auth::token_hash(&token), auth::new_token(), account.id);
    let (expires, idle, from) = (now + desk.session, desk.idle_timeout, client.to_string());
    state
        .db(move |s| s.start_session(id, &name, &from, &hash, &csrf, expires, idle, now))
        .await?;
    tracing::info!(user = %account.name, "desk: signed in");
    // The carried form is shown on a page of its own (GET), so that Refresh does not sign in
    // again.
    let mut res = match &resume {
        Some((action, body)) => Redirect::to(&format!(
            "/desk/resume?action={}&body={}",
            urlencode(action),
            urlencode(body)
        ))
        .into_response(),
        None => Redirect::to(&next).into_response(),
    };
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
    Ok(res)
}

/// The sign-out form: nothing but its CSRF token, which [`CsrfForm`] reads.
#[derive(Deserialize)]
pub(super) struct LogoutForm {}

pub(super) async fn logout(
    State(state): State<DeskState>,
    CsrfForm(staff, LogoutForm {}): CsrfForm<LogoutForm>,
) -> Result<Response, Response> {
    let now = state.clock.now();
    let hash = staff.token_hash.clone();
    state.db(move |s| s.end_session(&hash, now)).await?;
    let mut res = Redirect::to("/desk/login").into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.desk().secure_cookies),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub(super) struct ResumeQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    body: String,
}

/// `GET /desk/resume`: after sign-in, the form that was posted while signed out, to check and
/// save under the new session; a form that may not be resumed leads to the day board.
pub(super) async fn resume_page(staff: Staff, Query(q): Query<ResumeQuery>) -> Response {
    if !resumable(&q.action) || q.body.len() > RESUME_LIMIT {
        return Redirect::to("/desk/day").into_response();
    }
    let fields = parse_form::<Vec<(String, String)>>(&Bytes::from(q.body))
        .await
        .unwrap_or_default();
    html(views::resume(&staff.session, &q.action, &fields))
}
