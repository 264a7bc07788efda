//! `reminderd run`: the long-running daemon. The only module that knows signals and systemd.
//!
//! `run` reads as a start-up checklist: load the config, open the store, bind the port, start
//! the webhook server and the plan and dispatch jobs, tell systemd it is ready, then wait for
//! signals. The cron scheduler only sets the cadence: a missed or late tick is harmless because
//! the next one picks up everything due, and correctness lives in the store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sd_notify::NotifyState;
use secrecy::SecretString;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::dispatch::Dispatcher;
use crate::jobs;
use crate::secrets::{self, SecretError};
use crate::server::Health;
use crate::server::{self, AppState};
use crate::store::{Db, Store, StoreError};
use crate::time::Clock;
use crate::whatsapp::Client;

/// Longest a dispatch tick claims new work; well under a typical `WatchdogSec` of 60 s.
const DISPATCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret is missing.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The scheduler, the server or the HTTP client failed.
    #[error("{0}")]
    Runtime(String),
}

/// The secrets the daemon needs.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Cloud API access token.
    pub access_token: SecretString,
    /// Webhook signing secret.
    pub app_secret: SecretString,
    /// Webhook handshake token.
    pub verify_token: SecretString,
    /// Twilio's auth token, if set (needed when `[sms.twilio]` is configured).
    pub twilio_auth_token: Option<SecretString>,
    /// MSG91's auth key, if set (needed with `[sms.msg91]`).
    pub msg91_auth_key: Option<SecretString>,
    /// The token of MSG91's report URL, if set (needed with `[sms.msg91]`).
    pub msg91_webhook_token: Option<SecretString>,
}

impl Secrets {
    /// From the environment or `$CREDENTIALS_DIRECTORY`. The SMS providers' secrets are read
    /// if present; the config decides whether they are needed ([`Secrets::sms`]).
    pub fn load() -> Result<Self, SecretError> {
        Ok(Self {
            access_token: secrets::ACCESS_TOKEN.load()?,
            app_secret: secrets::APP_SECRET.load()?,
            verify_token: secrets::VERIFY_TOKEN.load()?,
            twilio_auth_token: secrets::TWILIO_AUTH_TOKEN.load().ok(),
            msg91_auth_key: secrets::MSG91_AUTH_KEY.load().ok(),
            msg91_webhook_token: secrets::MSG91_WEBHOOK_TOKEN.load().ok(),
        })
    }

    /// One of the SMS providers' secrets, or the error that says where to put it.
    pub fn sms(&self, which: secrets::Secret) -> Result<SecretString, String> {
        let held = match which.env {
            "TWILIO_AUTH_TOKEN" => &self.twilio_auth_token,
            "MSG91_AUTH_KEY" => &self.msg91_auth_key,
            "MSG91_WEBHOOK_TOKEN" => &self.msg91_webhook_token,
            _ => &None,
        };
        held.clone().ok_or_else(|| {
            which
                .load()
                .err()
                .map_or_else(|| format!("{} is not set", which.env), |e| e.to_string())
        })
    }
}

/// How to start.
#[derive(Debug)]
pub struct Options {
    /// The config file (re-read on SIGHUP).
    pub config_path: PathBuf,
    /// `--db`, overriding `database.path` (kept across reloads).
    pub db: Option<PathBuf>,
    /// `$REMINDERD_API_BASE`, overriding `whatsapp.api_base` (kept across reloads).
    pub api_base: Option<String>,
    /// The secrets.
    pub secrets: Secrets,
    /// Listen to SIGTERM, SIGINT and SIGHUP (off when embedded, as in the demo).
    pub handle_signals: bool,
    /// What the jobs, the webhook and the desk take as now: the system clock, or the demo's
    /// simulated evening. (Health and the watchdog always count real time.)
    pub clock: Clock,
}

/// Shared by the jobs, the server and the signal handler.
struct Shared {
    store: Db,
    config: Arc<RwLock<Arc<Config>>>,
    dispatcher: RwLock<Arc<Dispatcher>>,
    health: Arc<Health>,
    plan_running: AtomicBool,
    dispatch_running: AtomicBool,
    secrets: Arc<Secrets>,
    clock: Clock,
    fhir: crate::feeds::fhir::FhirClients,
    syncing: std::sync::Mutex<std::collections::HashSet<String>>,
    updates_running: AtomicBool,
    /// Rung when a message became due now (PostgreSQL's notification): a dispatch at once.
    wake: tokio::sync::Notify,
    /// A tick or a wake-up came while a dispatch was running: run again once it ends, for
    /// what it may have found drained before the message was due.
    dispatch_again: AtomicBool,
}

/// The process-wide metrics recorder (installed once; embedded runs share it).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ])
                .ok()
                .and_then(|b| b.install_recorder().ok())
        })
        .clone()
}

fn notify(states: &[NotifyState<'_>]) {
    // A no-op without $NOTIFY_SOCKET; a failure to reach systemd must not stop the daemon.
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "systemd notify failed");
    }
}

fn load(opts: &Options) -> Result<Config, ConfigError> {
    let mut config = Config::load(&opts.config_path)?;
    if let Some(db) = &opts.db {
        config.database_path.clone_from(db);
        config.database_url = None;
    }
    if let Some(base) = &opts.api_base {
        config.point_apis_at(base);
    }
    Ok(config)
}

fn dispatcher(
    config: &Arc<Config>,
    store: &Db,
    secrets: &Secrets,
) -> Result<Dispatcher, DaemonError> {
    let token = &secrets.access_token;
    let wa = config.whatsapp.as_ref().ok_or_else(|| {
        DaemonError::Runtime("whatsapp: the config has no [whatsapp] section".into())
    })?;
    let client =
        Client::new(wa, token.clone(), None).map_err(|e| DaemonError::Runtime(e.to_string()))?;
    let sms = crate::dispatch::SmsSenders::new(config, |s| secrets.sms(s))
        .map_err(DaemonError::Runtime)?;
    Ok(Dispatcher::new(store.clone(), Arc::clone(config), client)
        .map_err(|e| DaemonError::Runtime(e.to_string()))?
        .with_sms(sms))
}

/// Runs until `shutdown` is cancelled (or SIGTERM/SIGINT with `handle_signals`), serving the
/// webhook on `listener` and running the jobs; returns once in-flight work is settled.
pub async fn run(
    opts: Options,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    // 1. Configuration and database: refuse to start on either problem.
    let config = Arc::new(load(&opts)?);
    log_warnings(&config);
    let mut store = Store::open_configured(&config)?;
    store.sync_clinics(&config.clinics)?;
    let postgres = store.postgres_options().cloned();
    let store = Db::new(store);
    let metrics = metrics_handle();

    // 2. Shared state.
    let secrets = Arc::new(opts.secrets.clone());
    let health = Arc::new(Health::new(
        Clock::System.now().timestamp(),
        config.daemon.stale_after.num_seconds(),
    ));
    let shared = Arc::new(Shared {
        dispatcher: RwLock::new(Arc::new(dispatcher(&config, &store, &opts.secrets)?)),
        store: store.clone(),
        config: Arc::new(RwLock::new(Arc::clone(&config))),
        health: Arc::clone(&health),
        plan_running: AtomicBool::new(false),
        dispatch_running: AtomicBool::new(false),
        secrets: Arc::clone(&secrets),
        clock: opts.clock,
        fhir: crate::feeds::fhir::FhirClients::from_env(),
        syncing: std::sync::Mutex::new(std::collections::HashSet::new()),
        updates_running: AtomicBool::new(false),
        wake: tokio::sync::Notify::new(),
        dispatch_again: AtomicBool::new(false),
    });

    // 3. The webhook server, on its own tasks: a slow Cloud API never blocks it.
    let state = AppState {
        store: store.clone(),
        config: Arc::clone(&shared.config),
        app_secret: Arc::new(opts.secrets.app_secret.clone()),
        verify_token: Arc::new(opts.secrets.verify_token.clone()),
        clock: opts.clock,
        health: Some(Arc::clone(&health)),
        sms: server::SmsSecrets::new(&config, |s| secrets.sms(s)).map_err(DaemonError::Runtime)?,
    };
    let addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Runtime(e.to_string()))?;
    let server_stop = shutdown.clone();
    let limits = config.server.clone();
    let app = server::router(state, limits.max_body_bytes);
    let server = tokio::spawn(async move {
        server::serve(listener, app, &limits, async move {
            server_stop.cancelled().await;
        })
        .await
    });

    // 3b. Metrics on their own address, or else beside the desk: never the public port.
    let (metrics_server, desk_extra) = match (config.metrics_listen, metrics) {
        (Some(addr), Some(handle)) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                DaemonError::Runtime(format!("metrics.listen: cannot listen on {addr}: {e}"))
            })?;
            tracing::info!(
                "metrics on http://{}/metrics",
                listener.local_addr().unwrap_or(addr)
            );
            let (limits, stop) = (config.server.clone(), shutdown.clone());
            let app = server::metrics_router(handle);
            let task = tokio::spawn(async move {
                server::serve(
                    listener,
                    app,
                    &limits,
                    async move { stop.cancelled().await },
                )
                .await
            });
            (Some(task), None)
        }
        (None, Some(handle)) => (None, Some(server::metrics_router(handle))),
        (_, None) => (None, None),
    };
    if config.metrics_listen.is_none() && config.desk.is_none() {
        tracing::info!(
            "/metrics is not served: give [metrics] listen, or a [desk] to serve it beside"
        );
    }

    // 3c. The front desk, on its own address (never the public webhook's).
    let desk = crate::desk::spawn(
        crate::desk::DeskState {
            store: store.clone(),
            config: Arc::clone(&shared.config),
            clock: opts.clock,
            whatsapp_token: Some(Arc::new(opts.secrets.access_token.clone())),
            number_tokens: Arc::new(crate::secrets::number_tokens(&config)?),
        },
        None,
        desk_extra,
        shutdown.clone(),
    )
    .await
    .map_err(|e| DaemonError::Runtime(e.to_string()))?;

    // 3d. Each HL7 feed's listener, on its own address (never the public webhook's).
    let mut feed_servers = Vec::new();
    for feed in config.feeds.values() {
        let Some(h) = feed.hl7() else { continue };
        let listener = tokio::net::TcpListener::bind(h.listen).await.map_err(|e| {
            DaemonError::Runtime(format!(
                "feeds.{}.listen: cannot listen on {}: {e}",
                feed.name, h.listen
            ))
        })?;
        let at = listener.local_addr().unwrap_or(h.listen);
        tracing::info!(feed = %feed.name, "HL7 feed listening on {at} (MLLP, and POST /hl7)");
        feed_servers.push(tokio::spawn(crate::feeds::hl7::serve(
            listener,
            store.clone(),
            Arc::clone(&shared.config),
            feed.clone(),
            opts.clock,
            shutdown.clone(),
        )));
    }

    // 4. The jobs, on the configured UTC cadence.
    let mut scheduler = JobScheduler::new()
        .await
        .map_err(|e| DaemonError::Runtime(format!("scheduler: {e}")))?;
    let plan_shared = Arc::clone(&shared);
    let plan_job = Job::new_async(config.daemon.plan.as_str(), move |_, _| {
        let s = Arc::clone(&plan_shared);
        Box::pin(async move { plan_tick(&s).await })
    })
    .map_err(|e| DaemonError::Runtime(format!("daemon.plan: {e:?}")))?;
    let dispatch_shared = Arc::clone(&shared);
    let stop_claims = shutdown.clone();
    let dispatch_job = Job::new_async(config.daemon.dispatch.as_str(), move |_, _| {
        let s = Arc::clone(&dispatch_shared);
        let stop = stop_claims.clone();
        Box::pin(async move {
            if !stop.is_cancelled() {
                dispatch_tick(&s).await;
            }
        })
    })
    .map_err(|e| DaemonError::Runtime(format!("daemon.dispatch: {e:?}")))?;
    let mut jobs = vec![plan_job, dispatch_job];
    jobs.extend(feed_jobs(&config, &shared)?);
    jobs.push(
        crate::jobs::waitlist::job(
            shared.store.clone(),
            Arc::clone(&shared.config),
            shared.clock,
        )
        .map_err(DaemonError::Runtime)?,
    );
    jobs.push(
        crate::jobs::purge::job(
            shared.store.clone(),
            Arc::clone(&shared.config),
            shared.clock,
        )
        .map_err(DaemonError::Runtime)?,
    );
    for job in jobs {
        scheduler
            .add(job)
            .await
            .map_err(|e| DaemonError::Runtime(format!("scheduler: {e}")))?;
    }
    scheduler
        .start()
        .await
        .map_err(|e| DaemonError::Runtime(format!("scheduler: {e}")))?;

    // Wake-ups: on PostgreSQL, a message another server (or this one) made due now is sent
    // at once; the dispatch schedule above stays the fallback, and SQLite's only way.
    let wake_tasks = postgres.map(|pg| {
        (
            tokio::spawn(listen_for_due(pg, Arc::clone(&shared), shutdown.clone())),
            tokio::spawn(dispatch_on_wake(Arc::clone(&shared), shutdown.clone())),
        )
    });

    // 5. Ready: the database is open and the port is bound. Signal handlers go in first: until
    // then SIGHUP's default action ends the process, and systemd may reload right after READY.
    let signals = opts.handle_signals.then(install_signals);
    tracing::info!(%addr, db = %config.database_label(), "reminderd running");
    notify(&[
        NotifyState::Ready,
        NotifyState::Status(&format!("listening on {addr}; waiting for the first jobs")),
    ]);

    // 6. Signals.
    if let Some(signals) = signals {
        wait_for_signals(signals, &opts, &shared, &shutdown).await;
    } else {
        shutdown.cancelled().await;
    }

    // 7. Stop: no new claims, let in-flight sends finish within the grace period, and leave
    // nothing in `sending`.
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    tracing::info!("stopping: finishing in-flight sends");
    let _ = scheduler.shutdown().await;
    let dispatcher = Arc::clone(
        &shared
            .dispatcher
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    dispatcher.stop_claiming();
    let grace = config.daemon.shutdown_grace;
    let deadline = Instant::now() + grace;
    while (shared.dispatch_running.load(Ordering::Acquire)
        || shared.plan_running.load(Ordering::Acquire))
        && Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let clock = opts.clock;
    let left = store
        .run(move |s| {
            let now = clock.now();
            // Whatever is still in flight after the grace period may or may not have reached
            // the API: unknown, to be settled by its status.
            // Gone from the live instances first: the others take its share of the caps.
            s.leave()?;
            s.release_claims(now)
        })
        .await
        .map_err(|e| DaemonError::Runtime(e.to_string()))??;
    let (unknown, requeued) = left;
    if unknown + requeued > 0 {
        tracing::warn!(
            unknown,
            requeued,
            "sends still in flight at the end of the grace period are now unknown; claimed ones not yet sent are pending again"
        );
    }
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(DaemonError::Runtime(format!("server: {e}"))),
        Err(e) => return Err(DaemonError::Runtime(format!("server task: {e}"))),
    }
    for (what, task) in [("desk", desk.map(|(_, t)| t)), ("metrics", metrics_server)] {
        if let Some(task) = task {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(DaemonError::Runtime(format!("{what}: {e}"))),
                Err(e) => return Err(DaemonError::Runtime(format!("{what} task: {e}"))),
            }
        }
    }
    for task in feed_servers {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(DaemonError::Runtime(format!("HL7 feed: {e}"))),
            Err(e) => return Err(DaemonError::Runtime(format!("HL7 feed task: {e}"))),
        }
    }
    if let Some((listener, waker)) = wake_tasks {
        let _ = listener.await;
        let _ = waker.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Listens for PostgreSQL's due-now notifications and rings `wake`; when the connection
/// drops, connects again after a pause that doubles up to 30 s (polling goes on meanwhile).
async fn listen_for_due(
    pg: crate::store::sql::PgOptions,
    s: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut pause = std::time::Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let heard = Arc::clone(&s);
        let listening = crate::store::sql::listen(&pg, crate::store::DUE_CHANNEL, move || {
            heard.wake.notify_one();
        });
        let ended = tokio::select! {
            r = listening => r,
            () = shutdown.cancelled() => return,
        };
        match ended {
            Ok(()) => {
                tracing::warn!("the wake-up connection to PostgreSQL closed; polling meanwhile")
            }
            Err(e) => tracing::warn!(error = %e, "no wake-ups from PostgreSQL; polling meanwhile"),
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            pause = std::time::Duration::from_secs(1);
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => return,
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(30));
    }
}

/// Dispatches each time `wake` rings (rings while one runs make one more run after it).
async fn dispatch_on_wake(s: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = s.wake.notified() => {}
            () = shutdown.cancelled() => return,
        }
        if shutdown.is_cancelled() {
            return;
        }
        dispatch_tick(&s).await;
    }
}

/// The SIGTERM and SIGHUP streams (`None`: the handlers could not be installed).
type Signals = Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>;

fn install_signals() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    signal(SignalKind::terminate())
        .ok()
        .zip(signal(SignalKind::hangup()).ok())
}

async fn wait_for_signals(
    signals: Signals,
    opts: &Options,
    shared: &Shared,
    shutdown: &CancellationToken,
) {
    let Some((mut term, mut hup)) = signals else {
        tracing::error!("cannot install signal handlers; stop with Ctrl-C");
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT"); break; }
            () = shutdown.cancelled() => break,
            _ = hup.recv() => reload(opts, shared).await,
        }
    }
    shutdown.cancel();
}

/// SIGHUP: re-read the config; apply it whole if valid, else keep the old one and say why.
/// Its clinics reach the database first, so a clinic it adds takes uploads at once.
async fn reload(opts: &Options, shared: &Shared) {
    notify(&[NotifyState::Reloading]);
    match load(opts) {
        Ok(new) => {
            let new = Arc::new(new);
            let clinics = new.clinics.clone();
            let synced = match shared.store.run(move |s| s.sync_clinics(&clinics)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) | Err(e) => Err(DaemonError::Store(e)),
            };
            match synced.and_then(|()| dispatcher(&new, &shared.store, &shared.secrets)) {
                Ok(d) => {
                    log_warnings(&new);
                    if let Ok(mut slot) = shared.dispatcher.write() {
                        *slot = Arc::new(d);
                    }
                    if let Ok(mut slot) = shared.config.write() {
                        *slot = new;
                    }
                    tracing::info!(config = %opts.config_path.display(), "configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded; keeping the old one")
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "configuration not reloaded; keeping the old one"),
    }
    notify(&[NotifyState::Ready]);
}

/// Risky but working settings, at start and on every reload, so they stay in view.
fn log_warnings(config: &Config) {
    for w in &config.warnings {
        tracing::warn!(key = %w.key, "configuration warning: {w}");
    }
}

/// Each FHIR feed's full and incremental syncs on their own cadences, and the practice-system
/// updates on the dispatch cadence. (A feed added by a reload is synced after a restart; a
/// reload's changed settings apply at the next tick.)
fn feed_jobs(config: &Config, shared: &Arc<Shared>) -> Result<Vec<Job>, DaemonError> {
    let mut out = Vec::new();
    for feed in config.feeds.values() {
        let Some(f) = feed.fhir() else { continue };
        for (full, cron) in [(true, &f.full_sync), (false, &f.incremental_sync)] {
            let (s, name) = (Arc::clone(shared), feed.name.clone());
            let job = Job::new_async(cron.as_str(), move |_, _| {
                let (s, name) = (Arc::clone(&s), name.clone());
                Box::pin(async move { sync_tick(&s, &name, full).await })
            })
            .map_err(|e| DaemonError::Runtime(format!("feeds.{}: {e:?}", feed.name)))?;
            out.push(job);
        }
    }
    // Practice-system updates exist only for appointments a feed brought.
    if !config.feeds.is_empty() {
        let s = Arc::clone(shared);
        let job = Job::new_async(config.daemon.dispatch.as_str(), move |_, _| {
            let s = Arc::clone(&s);
            Box::pin(async move { updates_tick(&s).await })
        })
        .map_err(|e| DaemonError::Runtime(format!("daemon.dispatch: {e:?}")))?;
        out.push(job);
    }
    Ok(out)
}

async fn sync_tick(s: &Arc<Shared>, name: &str, full: bool) {
    // One sync of a feed at a time: a tick that finds one running skips.
    if !s
        .syncing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.to_string())
    {
        tracing::debug!(feed = name, "sync still running; tick skipped");
        return;
    }
    let config = Arc::clone(
        &s.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if let Some(feed) = config.feeds.get(name).filter(|f| f.fhir().is_some())
        && take_sync(s, name, full).await
    {
        let started = Instant::now();
        let result =
            crate::feeds::fhir::sync(&s.store, &config, feed, &s.fhir, full, s.clock).await;
        metrics::histogram!("reminderd_job_seconds", "job" => "fhir_sync")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) if r.applied + r.refused + r.gone > 0 => tracing::info!(
                feed = name,
                full,
                pages = r.pages,
                applied = r.applied,
                refused = r.refused,
                gone = r.gone,
                "FHIR sync"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(feed = name, full, error = %e, "FHIR sync failed"),
        }
    }
    s.syncing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(name);
}

/// Takes this tick's sync of feed `name`: of several instances on one database whose
/// schedule fires at once, one syncs.
async fn take_sync(s: &Arc<Shared>, name: &str, full: bool) -> bool {
    let now = s.clock.now();
    let task = format!("sync:{name}:{}", if full { "full" } else { "incremental" });
    match s.store.run(move |st| st.take_cron_run(&task, now)).await {
        Ok(Ok(taken)) => taken,
        Ok(Err(e)) | Err(e) => {
            tracing::error!(feed = name, full, error = %e, "FHIR sync failed");
            false
        }
    }
}

async fn updates_tick(s: &Arc<Shared>) {
    if s.updates_running.swap(true, Ordering::AcqRel) {
        return;
    }
    let config = Arc::clone(
        &s.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    match crate::feeds::updates::run_due(&s.store, &config, &s.fhir, s.clock).await {
        Ok(r) if r.done + r.staff + r.retrying > 0 => tracing::info!(
            done = r.done,
            staff = r.staff,
            retrying = r.retrying,
            "practice-system updates"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "practice-system updates failed"),
    }
    s.updates_running.store(false, Ordering::Release);
}

async fn plan_tick(s: &Arc<Shared>) {
    // Jobs never overlap themselves: a tick that finds the last one still running skips.
    if s.plan_running.swap(true, Ordering::AcqRel) {
        tracing::debug!("plan still running; tick skipped");
        return;
    }
    let started = Instant::now();
    let clock = s.clock;
    let config = Arc::clone(
        &s.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    // Of several instances on one database whose schedule fires at once, one plans.
    let result = s
        .store
        .run(move |st| {
            let now = clock.now();
            if !st.take_cron_run("plan", now)? {
                return Ok(crate::store::PlanCounts::default());
            }
            jobs::plan_due(st, &config, now, false)
        })
        .await;
    metrics::histogram!("reminderd_job_seconds", "job" => "plan")
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(Ok(counts)) => {
            s.health.plan_done(Clock::System.now().timestamp());
            if counts.pending + counts.expired > 0 {
                tracing::info!(new = counts.pending, expired = counts.expired, "planned");
            }
        }
        Ok(Err(e)) => tracing::error!(error = %e, "plan failed"),
        Err(e) => tracing::error!(error = %e, "plan task failed"),
    }
    s.plan_running.store(false, Ordering::Release);
}

async fn dispatch_tick(s: &Arc<Shared>) {
    if s.dispatch_running.swap(true, Ordering::AcqRel) {
        tracing::debug!("dispatch still running; tick skipped");
        // What became due meanwhile may be behind the running one's claims: one more run as
        // soon as it ends (on PostgreSQL; SQLite's daemon waits for its next tick).
        s.dispatch_again.store(true, Ordering::Release);
        // A run may last its whole budget while a queue drains: the backup's age and the
        // file's size stay current all the same (a backup taken mid-run shows at once).
        refresh_store_gauges(s).await;
        return;
    }
    let started = Instant::now();
    let dispatcher = Arc::clone(
        &s.dispatcher
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let result = dispatcher.run_for(s.clock, Some(DISPATCH_BUDGET)).await;
    metrics::histogram!("reminderd_job_seconds", "job" => "dispatch")
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(report) => {
            let now = Clock::System.now();
            s.health.dispatch_done(now.timestamp());
            // The watchdog is fed only by a job loop that completes, not by a live process.
            notify(&[
                NotifyState::Watchdog,
                NotifyState::Status(&format!(
                    "last dispatch {}: sent {}, failed {}, retrying {}, unknown {}",
                    now.format("%H:%M:%S UTC"),
                    report.sent,
                    report.failed,
                    report.retrying,
                    report.unknown
                )),
            ]);
            if report.sent + report.failed + report.unknown + report.expired > 0 {
                tracing::info!(
                    sent = report.sent,
                    failed = report.failed,
                    retrying = report.retrying,
                    unknown = report.unknown,
                    skipped = report.skipped,
                    expired = report.expired,
                    "dispatched"
                );
            }
            for h in &report.held {
                tracing::warn!("{h}");
            }
            if let Ok(Ok(counts)) = s.store.run(|st| st.outbox_counts()).await {
                // Every state, so one that emptied reads 0 rather than its last count.
                for state in crate::model::OutboxState::ALL.iter().map(|s| s.as_str()) {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == state)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("reminderd_messages", "state" => state).set(n as f64);
                }
            }
            refresh_feed_gauges(s).await;
            refresh_store_gauges(s).await;
            // The recorder keeps every histogram sample until it is drained; without a scrape
            // of /metrics that is one per send, for ever. Upkeep drains them into buckets.
            if let Some(handle) = metrics_handle() {
                handle.run_upkeep();
            }
        }
        Err(e) => tracing::error!(error = %e, "dispatch failed"),
    }
    s.dispatch_running.store(false, Ordering::Release);
    if s.dispatch_again.swap(false, Ordering::AcqRel) {
        s.wake.notify_one();
    }
}

/// The database's gauges, set with the outbox's: its size on disk (file and write-ahead log)
/// and how long ago the newest backup was taken (absent until one is).
async fn refresh_store_gauges(s: &Arc<Shared>) {
    let read = s
        .store
        .run(|st| st.last_backup_at().map(|t| (st.database_bytes(), t)))
        .await;
    let (bytes, last) = match read {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return tracing::warn!(error = %e, "database gauges not read"),
        Err(e) => return tracing::warn!(error = %e, "database gauges not read"),
    };
    metrics::gauge!("reminderd_database_bytes").set(bytes as f64);
    if let Some(t) = last {
        // Real time, not the injected clock: a backup's age is a fact about the file system.
        let age = (Clock::System.now() - t).num_seconds().max(0);
        metrics::gauge!("reminderd_last_backup_age_seconds").set(age as f64);
    }
}

/// The schedule feeds' gauges, set with the outbox's: how long since each HL7 feed's last
/// message or each FHIR feed's last successful sync, its messages by state, and whether it
/// holds its clinics' reminders (the same test as dispatch's guard). A feed never heard from
/// has no age, only `reminderd_feed_held`.
async fn refresh_feed_gauges(s: &Arc<Shared>) {
    let config = Arc::clone(
        &s.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if config.feeds.is_empty() {
        return;
    }
    let statuses = match s.store.run(|st| st.feed_statuses()).await {
        Ok(Ok(statuses)) => statuses,
        Ok(Err(e)) => return tracing::warn!(error = %e, "feed gauges not read"),
        Err(e) => return tracing::warn!(error = %e, "feed gauges not read"),
    };
    let now = s.clock.now();
    let holds = crate::feeds::holds(&config, &statuses, now);
    for feed in config.feeds.values() {
        let status = statuses.iter().find(|st| st.feed == feed.name);
        let age = |t: chrono::DateTime<chrono::Utc>| (now - t).num_seconds().max(0) as f64;
        match &feed.kind {
            crate::config::FeedKind::Hl7(_) => {
                if let Some(t) = status.and_then(|st| st.last_message_at) {
                    metrics::gauge!("reminderd_feed_last_message_age_seconds", "feed" => feed.name.clone())
                        .set(age(t));
                }
            }
            crate::config::FeedKind::Fhir(_) => {
                if let Some(t) = status.and_then(|st| st.last_success_at) {
                    metrics::gauge!("reminderd_feed_last_sync_age_seconds", "feed" => feed.name.clone())
                        .set(age(t));
                }
            }
        }
        let name = feed.name.clone();
        let counts = match s.store.run(move |st| st.feed_counts(&name)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(feed = %feed.name, error = %e, "feed gauges not read");
                continue;
            }
            Err(e) => {
                tracing::warn!(feed = %feed.name, error = %e, "feed gauges not read");
                continue;
            }
        };
        for (state, n) in [
            ("applied", counts.applied),
            ("refused", counts.refused),
            ("received", counts.waiting),
        ] {
            metrics::gauge!("reminderd_feed_messages", "feed" => feed.name.clone(), "state" => state)
                .set(n as f64);
        }
        let held = holds.iter().any(|h| h.feed == feed.name);
        metrics::gauge!("reminderd_feed_held", "feed" => feed.name.clone()).set(if held {
            1.0
        } else {
            0.0
        });
    }
}
