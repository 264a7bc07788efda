//! The front desk in a browser: sign-in, schedule upload with preview, the day board,
//! follow-ups, replies that need a person, and stats. Server-rendered HTML (maud) on its own
//! listen address.
//!
//! This file holds what every page shares: the state, the routes, the security headers and
//! the [`CsrfForm`] extractor. `session` signs staff in and out, `upload` takes schedule
//! files, `pages` shows the schedule; `views` and `chart` are the markup.
//!
//! Every page needs a session; every POST carries the session's CSRF token; every staff
//! action is written to `audit_log` as `staff:<name>`. Uploads use the CLI's import code:
//! the preview is a dry-run, and confirming re-runs it in one transaction that also marks the
//! preview decided, so nothing is written before the confirm and a second confirm does
//! nothing. Every POST that succeeds answers 303 See Other to a page read with GET
//! (post/redirect/get), so Back and Refresh never ask to send a form again.

// Handlers short-circuit with a finished page as their error; boxing it would buy nothing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod chart;
mod pages;
mod session;
mod signin;
mod upload;
mod views;

pub use session::Staff;
/// A stored feed message with its phone numbers masked, as the desk shows it (and `reminderd
/// feeds show`).
pub use views::outcome_words;

use std::sync::{Arc, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, RawForm, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::store::{Db, Store, StoreError};
use crate::time::Clock;

use pages::{
    apply_reply, day, follow_up_action, follow_ups, record_call, replies, reply_handled, reveal,
    reveal_reply, stats, status_action, status_page,
};
use pages::{patient, patients, reveal_patient, week};
use pages::{remind, remind_all, remind_page};
use session::{LOGIN_BODY_LIMIT, login, login_page, logout, resume_page};
use upload::{confirm_upload, discard_upload, done_page, preview_page, upload, upload_page};

/// What the desk's handlers share.
#[derive(Clone)]
pub struct DeskState {
    /// The database (shared with the webhook and the jobs).
    pub store: Db,
    /// The configuration in force (replaced as a whole on reload).
    pub config: Arc<RwLock<Arc<Config>>>,
    /// Time source.
    pub clock: Clock,
    /// The Cloud API access token, to fetch the files patients send; `None`: files cannot be
    /// opened (the page says so).
    pub whatsapp_token: Option<Arc<secrecy::SecretString>>,
    /// The own tokens of numbers in other business accounts, by phone number id: a file sent
    /// to such a number is fetched with its token.
    pub number_tokens: Arc<std::collections::BTreeMap<String, secrecy::SecretString>>,
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
        match self.store.run(f).await {
            Ok(Ok(v)) => Ok(v),
            // What staff asked for cannot be done (a no-show before its time): say why.
            Ok(Err(StoreError::Refused(why))) => {
                Err((StatusCode::CONFLICT, views::message(None, "Not done", &why)).into_response())
            }
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
/// `/metrics`) on a task until `stop` is cancelled; `None` when the config has no `[desk]`.
/// The bound address is logged and returned.
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
        .route("/desk/resume", get(resume_page))
        .route("/desk/day", get(day))
        .route("/desk/day/status", get(status_page).post(status_action))
        .route("/desk/reveal", post(reveal))
        .route("/desk/upload", get(upload_page).post(upload))
        .route("/desk/upload/preview", get(preview_page))
        .route("/desk/upload/confirm", post(confirm_upload))
        .route("/desk/upload/done", get(done_page))
        .route("/desk/upload/discard", post(discard_upload))
        .route("/desk/follow-ups", get(follow_ups))
        .route("/desk/follow-ups/action", post(follow_up_action))
        .route("/desk/follow-ups/confirm", get(pages::follow_up_question))
        .route("/desk/follow-ups/call", post(record_call))
        .route("/desk/follow-ups/practice-done", post(pages::practice_done))
        .route("/desk/replies", get(replies))
        .route("/desk/replies/handled", post(reply_handled))
        .route("/desk/replies/media", get(pages::media::reply_media))
        .route("/desk/replies/reveal", post(reveal_reply))
        .route("/desk/replies/apply", post(apply_reply))
        .route("/desk/feeds", get(pages::feeds))
        .route("/desk/feeds/message", get(pages::feed_message))
        .route("/desk/feeds/reapply", post(pages::reapply))
        .route("/desk/stats", get(stats))
        .route("/desk/report", get(pages::report_page))
        .route("/desk/report.csv", get(pages::report_csv))
        .route("/desk/report/no-shows", get(pages::no_shows))
        .route("/desk/waitlist", get(pages::waitlist))
        .route("/desk/waitlist/add", post(pages::add_entry))
        .route("/desk/waitlist/open", post(pages::open_slot))
        .route("/desk/patients", get(patients))
        .route("/desk/patient", get(patient))
        .route("/desk/patient/reveal", post(reveal_patient))
        .route("/desk/patient/export", post(pages::export_patient))
        .route("/desk/patient/consent", post(pages::record_consent))
        .route(
            "/desk/patient/erase",
            get(pages::erase_page).post(pages::erase_patient),
        )
        .route("/desk/week", get(week))
        .route(
            "/desk/patients/{id}/documents",
            get(pages::documents).post(pages::send_document),
        )
        .route("/desk/remind", get(remind_page).post(remind))
        .route("/desk/remind/all", post(remind_all))
        .route(
            "/desk/patients/{id}/conversation",
            get(pages::conversation).post(pages::answer),
        )
        .route("/desk/conversation", get(pages::open_from_reply))
        .route("/desk/guidelines", get(pages::guidelines))
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
            "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
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

/// A form posted by a signed-in staff member whose CSRF token is this session's: handlers
/// take `CsrfForm(staff, fields)` and `T` has no `csrf` field of its own. Without a session
/// the answer is the sign-in redirect, an unreadable form gets `Form`'s answer, and a wrong
/// or missing token the 403 page of [`Staff::check`].
struct CsrfForm<T>(Staff, T);

/// The token every signed-in form carries beside its own fields.
#[derive(Deserialize)]
struct CsrfToken {
    // Missing is the same as wrong: the CSRF check answers it, not the form parser.
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + Send> FromRequest<DeskState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &DeskState) -> Result<Self, Response> {
        // The session first, as when `Staff` and `Form` were separate extractors.
        let (parts, body) = req.into_parts();
        let Some(staff) = Staff::lookup(&parts, state).await? else {
            return Err(session::signed_out_form(state, parts, body).await);
        };
        // Read once (with `Form`'s content-type check and the route's body limit), then
        // parsed twice: `#[serde(flatten)]` cannot put a urlencoded value into a number field.
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = parse_form::<T>(&bytes).await?;
        let CsrfToken { csrf } = parse_form(&bytes).await?;
        staff.check(&csrf)?;
        Ok(Self(staff, fields))
    }
}

/// Parses a form body already read, with `Form`'s parser and its answer to a bad body.
async fn parse_form<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    let mut req = Request::new(Body::from(bytes.clone()));
    *req.method_mut() = Method::POST;
    req.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    match Form::<T>::from_request(req, &()).await {
        Ok(Form(fields)) => Ok(fields),
        Err(rejection) => Err(rejection.into_response()),
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
