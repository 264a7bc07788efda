//! The HTTP server: Meta's webhook (handshake and signed POSTs), the SMS providers' webhooks
//! (`sms`), a health check, metrics, and
//! the accept loop (with its timeouts) that the webhook and the desk both run on. With
//! `desk`, the only module that knows axum.
//!
//! A POST is verified against `X-Hub-Signature-256` over the raw bytes before anything else;
//! a verified body is stored and applied in one transaction, committed with the deliveries
//! that arrived at the same time (`Db::run_grouped`) and synced to disk before the answer, which
//! is 200 unless the database failed (Meta retries non-200 answers for days, so a body we merely do not act on is
//! still a 200).

mod sms;

pub use sms::SmsSecrets;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::config::Config;
use crate::jobs;
use crate::store::Db;
use crate::time::Clock;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Db,
    /// The configuration in force (replaced as a whole on reload).
    pub config: Arc<std::sync::RwLock<Arc<Config>>>,
    /// Verifies webhook signatures.
    pub app_secret: Arc<SecretString>,
    /// Answers the subscription handshake.
    pub verify_token: Arc<SecretString>,
    /// Time source.
    pub clock: Clock,
    /// The daemon's job times, when running as the daemon.
    pub health: Option<Arc<Health>>,
    /// What the SMS providers' webhooks are checked with.
    pub sms: sms::SmsSecrets,
}

impl AppState {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// When the jobs last completed, for `/healthz` and the watchdog.
#[derive(Debug)]
pub struct Health {
    started: i64,
    last_plan: AtomicI64,
    last_dispatch: AtomicI64,
    stale_after: i64,
}

impl Health {
    /// Job times for a daemon started at `started` whose jobs are late after `stale_after`
    /// seconds (unix seconds throughout).
    pub fn new(started: i64, stale_after: i64) -> Self {
        Self {
            started,
            last_plan: AtomicI64::new(0),
            last_dispatch: AtomicI64::new(0),
            stale_after,
        }
    }

    /// The plan job completed at `at`.
    pub fn plan_done(&self, at: i64) {
        self.last_plan.store(at, Ordering::Relaxed);
    }

    /// The dispatch job completed at `at`.
    pub fn dispatch_done(&self, at: i64) {
        self.last_dispatch.store(at, Ordering::Relaxed);
    }

    /// Whether both jobs completed within `stale_after` (counting from start until they
    /// first run), and the details as JSON.
    pub fn check(&self, now: i64) -> (bool, serde_json::Value) {
        let at = |t: i64| {
            (t > 0).then(|| {
                crate::time::from_unix(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        };
        let fresh = |t: i64| now - t.max(self.started) <= self.stale_after;
        let plan = self.last_plan.load(Ordering::Relaxed);
        let dispatch = self.last_dispatch.load(Ordering::Relaxed);
        let ok = fresh(plan) && fresh(dispatch);
        (
            ok,
            serde_json::json!({ "last_plan": at(plan), "last_dispatch": at(dispatch), "jobs_on_time": ok }),
        )
    }
}

/// The webhook's routes.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    // phonenumber loads its metadata (hundreds of regexes) on first use, which the first reply
    // would pay inside its request deadline (seconds in a debug build); load it now, aside.
    std::thread::spawn(|| {
        let _ = &*phonenumber::metadata::DATABASE;
    });
    Router::new()
        .route("/webhook", get(handshake).post(webhook))
        .route("/twilio/status", post(sms::twilio_status))
        .route("/twilio/inbound", post(sms::twilio_inbound))
        .route("/msg91/report", post(sms::msg91_report))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// How long a request body may take before it must keep up `server.min_body_rate`.
pub const BODY_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `app` until `shutdown` completes, then lets in-flight requests finish.
///
/// axum's own `serve` sets no timer, so a client trickling bytes would hold its connection
/// for ever; here every connection has a header deadline, every request a total deadline,
/// every body a minimum rate after [`BODY_GRACE`], and at most `limits.max_connections` are
/// served at once. When they are all taken, a small spare lane still answers `GET /healthz`
/// (and 503 to anything else), so the service's health stays visible under a flood.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &crate::config::Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (request_timeout, min_rate) = (limits.request_timeout, limits.min_body_rate);
    let app = app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| async move {
            let too_slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watched = Arc::clone(&too_slow);
            let req = req.map(|body| {
                axum::body::Body::new(MinRate::new(body, min_rate, BODY_GRACE, watched))
            });
            let answer = tokio::time::timeout(request_timeout, next.run(req)).await;
            if too_slow.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!("a request body arrived slower than server.min_body_rate; cut off");
                return (
                    StatusCode::REQUEST_TIMEOUT,
                    "request body arrived too slowly",
                )
                    .into_response();
            }
            if let Ok(answer) = answer {
                answer
            } else {
                tracing::warn!("a request took longer than server.request_timeout; cut off");
                (StatusCode::REQUEST_TIMEOUT, "request took too long").into_response()
            }
        },
    ));
    let spare_app = app.clone().layer(axum::middleware::from_fn(health_only));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // The spare lane answers one quick request per connection, so it must not wait long.
    let mut spare_http = hyper::server::conn::http1::Builder::new();
    spare_http
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout.min(SPARE_HEADER_TIMEOUT))
        .keep_alive(false);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let spare = Arc::new(tokio::sync::Semaphore::new(spare_lane(
        limits.max_connections,
    )));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let io = hyper_util::rt::TokioIo::new(stream);
        // Handlers see the peer as axum's ConnectInfo (the desk counts sign-ins per address).
        let with_peer = |app: &Router| {
            let tower = hyper_util::service::TowerToHyperService::new(app.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                hyper::service::Service::call(&tower, req)
            })
        };
        // An ordinary slot if one is free, else the spare lane; with both full, whichever
        // frees first (spare-lane answers are quick, so a health check waits little).
        let lane = if let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
            Ok(slot)
        } else if let Ok(slot) = Arc::clone(&spare).try_acquire_owned() {
            Err(slot)
        } else {
            tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => Ok(slot),
                    Err(_) => break,
                },
                slot = Arc::clone(&spare).acquire_owned() => match slot {
                    Ok(slot) => Err(slot),
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            }
        };
        let (slot, conn) = match lane {
            Ok(slot) => (
                slot,
                graceful.watch(http.serve_connection(io, with_peer(&app))),
            ),
            Err(slot) => (
                slot,
                graceful.watch(spare_http.serve_connection(io, with_peer(&spare_app))),
            ),
        };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// How long a spare-lane client may take to send its headers.
const SPARE_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Connections the spare lane serves at once beside `max_connections`.
fn spare_lane(max_connections: usize) -> usize {
    (max_connections / 16).clamp(4, 64)
}

/// The spare lane's filter: the health check is answered, anything else is told to come back.
async fn health_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if req.method() == axum::http::Method::GET && req.uri().path() == "/healthz" {
        next.run(req).await
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            "the server is busy; try again in a moment",
        )
            .into_response()
    }
}

/// A request body that must keep up `rate` bytes a second once `grace` has passed: a client
/// trickling a byte at a time cannot hold a connection for the whole request deadline.
struct MinRate {
    inner: axum::body::Body,
    started: tokio::time::Instant,
    grace: std::time::Duration,
    rate: u64,
    received: u64,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    too_slow: Arc<std::sync::atomic::AtomicBool>,
}

impl MinRate {
    fn new(
        inner: axum::body::Body,
        rate: u64,
        grace: std::time::Duration,
        too_slow: Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        let started = tokio::time::Instant::now();
        Self {
            inner,
            started,
            grace,
            rate: rate.max(1),
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + grace)),
            too_slow,
        }
    }

    /// The instant at which the bytes received so far fall behind the rate.
    fn behind_at(&self) -> tokio::time::Instant {
        let earned = std::time::Duration::from_secs_f64(self.received as f64 / self.rate as f64);
        self.started + self.grace + earned.min(std::time::Duration::from_secs(86_400))
    }
}

impl http_body::Body for MinRate {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let at = this.behind_at();
                    this.deadline.as_mut().reset(at);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.too_slow
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    Poll::Ready(Some(Err(axum::Error::new(
                        "request body arrived too slowly",
                    ))))
                } else {
                    Poll::Pending
                }
            }
            other @ Poll::Ready(_) => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

async fn handshake(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q
        .get("hub.verify_token")
        .map(String::as_str)
        .unwrap_or_default();
    let expected = state.verify_token.expose_secret();
    if mode == Some("subscribe") && constant_time_eq(token.as_bytes(), expected.as_bytes()) {
        tracing::info!("webhook subscription verified");
        // The challenge is echoed byte for byte.
        (
            StatusCode::OK,
            q.get("hub.challenge").cloned().unwrap_or_default(),
        )
            .into_response()
    } else {
        tracing::warn!("webhook handshake with a wrong verify token or mode");
        StatusCode::FORBIDDEN.into_response()
    }
}

async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature.is_some_and(|s| verify(state.app_secret.expose_secret().as_bytes(), &body, s)) {
        tracing::warn!(
            present = signature.is_some(),
            "webhook with a missing or wrong signature refused"
        );
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let config = Arc::clone(
        &state
            .config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let now = state.clock.now();
    // Group commit: answered once this delivery's commit (shared with the deliveries that
    // arrived meanwhile) is on disk.
    let result = state
        .store
        .run_grouped(move |store| jobs::process_webhook(store, &config, &body, now))
        .await;
    match result {
        Ok(Ok(summary)) => {
            tracing::debug!(?summary, "webhook applied");
            StatusCode::OK.into_response()
        }
        // Signed, so it came from Meta (or the app secret leaked): a retry of the same bytes
        // cannot succeed, and Meta retries anything but 200 for days.
        Ok(Err(why)) => {
            tracing::warn!(%why, "signed webhook body is not a JSON object; stored for inspection");
            StatusCode::OK.into_response()
        }
        // The database is out of reach (another server behind the balancer, or this one once
        // PostgreSQL is back, takes Meta's retry).
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "database unavailable; webhook answered 503, Meta will retry");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "5")],
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook could not be stored or applied; Meta will retry");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    let database = state
        .store
        .run(|s| s.schema_version().is_ok())
        .await
        .unwrap_or(false);
    let (jobs_ok, mut body) = match &state.health {
        Some(h) => h.check(state.clock.now().timestamp()),
        None => (true, serde_json::json!({})),
    };
    let ok = database && jobs_ok;
    body["status"] = serde_json::json!(if ok { "ok" } else { "unhealthy" });
    body["database"] = serde_json::json!(if database { "ok" } else { "unavailable" });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// `/metrics` in Prometheus text, for the desk's address or its own (`[metrics] listen`),
/// never the public webhook port: counts of sends and replies are nobody else's business.
pub fn metrics_router(handle: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let text = handle.render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    text,
                )
            }
        }),
    )
}

/// Checks `sha256=<hex>` against the HMAC-SHA256 of the raw body, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Compares secrets in time independent of where they differ (only their length shows).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret (Meta's tokens are ours to choose); the bytes are.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_over_raw_bytes_only() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"text":"caf\u00e9"}}]}]}"#;
        let good = crate::sim::signature("s3cret", body);
        assert!(verify(b"s3cret", body, &good));
        assert!(!verify(b"other", body, &good));
        assert!(
            !verify(b"s3cret", b"{}", &good),
            "signature over a different body"
        );
        assert!(
            !verify(b"s3cret", body, good.trim_start_matches("sha256=")),
            "no sha256= prefix"
        );
        assert!(!verify(b"s3cret", body, "sha256=zz"));
        assert!(!verify(b"s3cret", body, ""));
    }
}
