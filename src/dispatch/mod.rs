//! Dispatch: claim due outbox rows, re-check them at send time, render, send under the rate
//! limit, and record every outcome.
//!
//! The decisions ([`verdict`] and [`outcome`]) are pure; [`Dispatcher`] does the I/O. The
//! store is the source of truth: a row is `sending` only between its claim and the write of
//! its outcome, and a crash in between leaves it `sending`, which the next start turns into
//! `unknown` (never a blind resend: the Cloud API has no idempotency key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, UnknownAction, WhatsApp};
use crate::plan::Kind;
use crate::store::{Db, DueRow, Outcome, SendWrite, Store, StoreError, Verdict};
use crate::template::{self, Input};
use crate::time::Clock;
use crate::whatsapp::{Client, ErrorClass, SendError, SendRequest};
use lines::{Line, LineRun, lines_for};

mod channels;
mod decide;
mod gates;
use gates::Gates;
mod lines;
pub mod offers;
mod rate;
mod writer;

pub use decide::{backoff, needs_staff, outcome, pair_backoff, verdict, verdict_with_feeds};
pub use rate::{Pacer, limiter_for, quota_for};
mod document;
pub mod health;

use crate::model::{Channel, Recipient};
pub use channels::{
    BLOCKED, FALLBACK_CODES, NOT_ON_WHATSAPP, SmsSenders, fallback_for, may_fall_back,
    off_whatsapp_until, retry_text_at, row_template, sms_outcome, sms_staff, with_fallback,
};

/// How long a stale-schedule hold lasts before the row is looked at again.
pub(crate) const HOLD_RECHECK: Duration = Duration::minutes(5);

/// Why dispatching stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API refused the account (token, permissions, billing): a person must act.
    #[error("sending stopped: the WhatsApp account needs attention: {0}")]
    Account(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What one dispatch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Accepted by the API.
    pub sent: usize,
    /// Failed for good.
    pub failed: usize,
    /// To be tried again later.
    pub retrying: usize,
    /// Outcome unknown.
    pub unknown: usize,
    /// Not sent, with a reason (cancelled, moved, opted out, confirmed).
    pub skipped: usize,
    /// Too late.
    pub expired: usize,
    /// Held back, with each distinct reason.
    pub held: Vec<String>,
    /// Unknown sends settled (resent or handed to staff).
    pub settled_unknown: usize,
    /// Interrupted sends found at start whose request was in flight: now unknown.
    pub recovered: usize,
    /// Interrupted sends found at start whose request never went out: back to pending.
    pub requeued: usize,
    /// WhatsApp messages that failed for good and were replaced by an SMS.
    pub fell_back: usize,
    /// Why nothing was claimed: Meta restricted or disabled the account.
    pub blocked: Option<String>,
}

/// Sends due messages. One per process role; safe beside other dispatchers (claims are atomic).
pub struct Dispatcher {
    store: Db,
    config: Arc<Config>,
    /// One per WhatsApp number with clinics to send for; a single number claims everything.
    lines: Vec<Arc<Line>>,
    /// The SMS providers, each under its own rate limit.
    sms: SmsSenders,
    /// Per recipient, when they may next be messaged (the pair rate limit).
    next_for: Gates,
    /// Set on shutdown: finish what is in flight, claim nothing more.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Twice the gate map's size after its last prune: the next prune waits until it is
    /// reached.
    gates_high: std::sync::atomic::AtomicUsize,
    /// Whether this dispatcher has been seen by the other instances on its database yet.
    joined: std::sync::atomic::AtomicBool,
    /// This instance's share of the recipients ([`crate::store::Share`], packed), as the last
    /// heartbeat found it.
    share: Arc<std::sync::atomic::AtomicU64>,
}

impl Dispatcher {
    /// A dispatcher over `store` sending through `client`.
    pub fn new(store: Db, config: Arc<Config>, client: Client) -> Result<Self, DispatchError> {
        let lines = lines_for(&config, client)?;
        Ok(Self {
            store,
            config,
            lines,
            sms: SmsSenders::default(),
            next_for: Arc::new(Mutex::new(HashMap::new())),
            stopping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            joined: std::sync::atomic::AtomicBool::new(false),
            share: Arc::new(std::sync::atomic::AtomicU64::new(
                crate::store::Share::WHOLE.pack(),
            )),
            gates_high: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Sends SMS through these providers (without, an SMS row fails as not configured).
    #[must_use]
    pub fn with_sms(mut self, sms: SmsSenders) -> Self {
        self.sms = sms;
        self
    }

    /// Stops claiming rows: a running `run_once` finishes its in-flight sends and returns.
    pub fn stop_claiming(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn wa(&self) -> &WhatsApp {
        // `new` refused a config without it.
        self.config
            .whatsapp
            .as_ref()
            .expect("checked in Dispatcher::new")
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, DispatchError> {
        Ok(self.store.run(f).await??)
    }

    /// Sends everything due at `clock`'s now, until nothing is left due, then returns.
    pub async fn run_once(&self, clock: Clock) -> Result<Report, DispatchError> {
        self.run_for(clock, None).await
    }

    /// As [`Dispatcher::run_once`], but stops claiming once `budget` has passed and returns
    /// when in-flight sends finish: a daemon tick must end (and feed the watchdog) even when
    /// the backlog takes longer to send; the next tick carries on.
    pub async fn run_for(
        &self,
        clock: Clock,
        budget: Option<StdDuration>,
    ) -> Result<Report, DispatchError> {
        let deadline = budget.map(|b| Instant::now() + b);
        self.prune_gates();
        let mut report = Report::default();
        let now = clock.now();
        let wa = self.wa().clone();
        // Claimed more than two request timeouts ago and still `sending`, by an instance not
        // seen live since: its process died.
        let grace = Duration::from_std(wa.request_timeout * 2).unwrap_or(Duration::minutes(1));
        let live = lines::live_window();
        (report.recovered, report.requeued) = self
            .blocking(move |s| s.recover_interrupted(now - grace, now - live, now))
            .await?;
        let resend = wa.unknown_action == UnknownAction::Resend;
        let window = wa.unknown_after;
        report.settled_unknown = self
            .blocking(move |s| s.settle_unknown(now - window, resend, now))
            .await?;
        let config = Arc::clone(&self.config);
        let health = Arc::new(
            self.blocking(move |s| health::Health::read(s, &config))
                .await?,
        );
        health::publish(&self.config, &health, now);
        // A restricted or disabled business account stops its own numbers; the others send.
        let blocked: Vec<Option<String>> = self
            .lines
            .iter()
            .map(|l| health.account_block_for(&l.waba_id, now))
            .collect();
        for why in blocked.iter().flatten() {
            if !report.held.contains(why) {
                report.held.push(why.clone());
            }
        }
        if let Some(Some(why)) = blocked.iter().find(|b| b.is_some())
            && blocked.iter().all(Option::is_some)
        {
            report.blocked = Some(why.clone());
            return Ok(report);
        }

        // Requests in flight and claimed rows a run holds at once (those sending, and those
        // waiting out their recipient's spacing, which hold no slot), bounded so that one
        // patient with many messages cannot make a run claim the whole outbox and wait on it.
        // Each number has its own share of both, by its cap: a number's rows waiting on its
        // own cap (or its throttling) hold only its own slots, never another number's.
        let total: u32 = self.lines.iter().map(|l| l.rate).sum::<u32>().max(1);
        let mut runs: Vec<LineRun> = self
            .lines
            .iter()
            .zip(&blocked)
            .map(|(line, blocked)| {
                // One number alone gets every slot.
                let slots = (wa.max_in_flight * line.rate as usize)
                    .div_ceil(total as usize)
                    .max(2)
                    .min(wa.max_in_flight);
                LineRun {
                    line: Arc::clone(line),
                    in_flight: Arc::new(Semaphore::new(slots)),
                    share: slots * 2,
                    // A blocked account's line claims nothing this run.
                    drained: blocked.is_some(),
                    // Refill when a quarter of the slots are free: a continuous pipeline keeps
                    // the API busy (waiting for whole batches loses each batch's tail), while
                    // claims stay batched.
                    refill: (slots / 4).max(1),
                    held: 0,
                    armed: Arc::new(Semaphore::new(armed_for(line.rate))),
                }
            })
            .collect();
        self.heartbeat(clock).await?;
        let _beating = lines::Beating::start(
            self.store.clone(),
            self.lines.clone(),
            Arc::clone(&self.share),
            clock,
        );
        let writes = writer::spawn(self.store.clone());
        let mut tasks: JoinSet<Result<Outcome, DispatchError>> = JoinSet::new();
        // Which line each task claimed for, so its end frees that line's share.
        let mut task_line: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut stop: Option<String> = None;
        let ended = |runs: &mut Vec<LineRun>,
                     task_line: &mut HashMap<tokio::task::Id, usize>,
                     id: tokio::task::Id| {
            if let Some(i) = task_line.remove(&id) {
                runs[i].held -= 1;
                runs[i].drained = false;
            }
        };
        while stop.is_none() {
            if self.stopping.load(std::sync::atomic::Ordering::Acquire)
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                break;
            }
            let mut claimed = false;
            for (i, run) in runs.iter_mut().enumerate() {
                if run.drained {
                    continue;
                }
                let room = run
                    .in_flight
                    .available_permits()
                    .min(run.share.saturating_sub(run.held));
                if room == 0 || (room < run.refill && run.held > 0) {
                    continue;
                }
                let now = clock.now();
                let config = Arc::clone(&self.config);
                let h = Arc::clone(&health);
                let scope = run.line.scope.clone();
                let share = crate::store::Share::unpack(
                    self.share.load(std::sync::atomic::Ordering::Acquire),
                );
                let claim_started = Instant::now();
                let (to_send, others) = self
                    .blocking(move |s| {
                        let held = if config.feeds.is_empty() {
                            std::collections::BTreeMap::new()
                        } else {
                            crate::feeds::held_clinics(&crate::feeds::holds(
                                &config,
                                &s.feed_statuses()?,
                                now,
                            ))
                        };
                        s.claim_due(now, room, &scope, share, |r| {
                            let v = verdict_with_feeds(r, &config, now, &held);
                            health::overlay(v, &config, &h, r, now)
                        })
                    })
                    .await?;
                // The claim's own time (its transaction, behind any other instance's on a
                // shared database): what bench/postgres.py reports per batch.
                metrics::histogram!("reminderd_claim_seconds")
                    .record(claim_started.elapsed().as_secs_f64());
                for (_, v) in &others {
                    match v {
                        Verdict::Skip(_) => report.skipped += 1,
                        Verdict::Expire(_) => report.expired += 1,
                        Verdict::Hold(_, reason) if !report.held.contains(reason) => {
                            report.held.push(reason.clone())
                        }
                        _ => {}
                    }
                }
                if to_send.is_empty() && others.is_empty() {
                    // Nothing due now for this number; what is in flight may still end in
                    // a retry due later, which the next run picks up.
                    run.drained = true;
                    continue;
                }
                claimed = true;
                for row in to_send {
                    // A row in `sending` cannot be claimed again, so claiming while others
                    // are in flight never sends one twice.
                    let permit = Arc::clone(&run.in_flight)
                        .acquire_owned()
                        .await
                        .map_err(|e| DispatchError::Internal(e.to_string()))?;
                    let job = SendJob {
                        config: Arc::clone(&self.config),
                        client: run.line.client.clone(),
                        number: run.line.name.clone(),
                        limiter: Arc::clone(&run.line.limiter),
                        sms: self.sms.clone(),
                        next_for: Arc::clone(&self.next_for),
                        clock,
                        health: Arc::clone(&health),
                        in_flight: Arc::clone(&run.in_flight),
                        slot: Mutex::new(Some(permit)),
                        armed: Arc::clone(&run.armed),
                        writes: writes.clone(),
                    };
                    // The job holds its slot (and gives it back while it waits for its
                    // recipient's spacing); dropping the job frees it.
                    let handle = tasks.spawn(async move { job.send(row).await });
                    task_line.insert(handle.id(), i);
                    run.held += 1;
                }
            }
            self.prune_gates_if_grown();
            while let Some(done) = tasks.try_join_next_with_id() {
                ended(&mut runs, &mut task_line, id_of(&done));
                tally(&mut report, &mut stop, done.map(|(_, r)| r));
            }
            if claimed {
                continue;
            }
            // Every line is full or has nothing due: wait for a send to end.
            match tasks.join_next_with_id().await {
                Some(done) => {
                    ended(&mut runs, &mut task_line, id_of(&done));
                    tally(&mut report, &mut stop, done.map(|(_, r)| r));
                }
                None => break,
            }
        }
        while let Some(done) = tasks.join_next().await {
            tally(&mut report, &mut stop, done);
        }
        match stop {
            Some(reason) => Err(DispatchError::Account(reason)),
            None => Ok(report),
        }
    }
}

/// The id of the task a join result is from, ended well or not.
fn id_of<T>(done: &Result<(tokio::task::Id, T), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, _)) => *id,
        Err(e) => e.id(),
    }
}

fn tally(
    report: &mut Report,
    stop: &mut Option<String>,
    done: Result<Result<Outcome, DispatchError>, tokio::task::JoinError>,
) {
    match done {
        Ok(Ok(o)) => match o {
            Outcome::Sent { .. } => report.sent += 1,
            Outcome::Retry { .. } => report.retrying += 1,
            Outcome::Failed { .. } | Outcome::Unsubscribed { .. } | Outcome::Blocked { .. } => {
                report.failed += 1;
            }
            Outcome::FellBack { .. } => report.fell_back += 1,
            Outcome::Unknown { .. } => report.unknown += 1,
            Outcome::Expired { .. } => report.expired += 1,
            Outcome::Released { reason } => {
                stop.get_or_insert(reason);
            }
        },
        Ok(Err(e)) => {
            stop.get_or_insert(e.to_string());
        }
        Err(e) => {
            stop.get_or_insert(format!("a send task failed: {e}"));
        }
    }
}

/// Everything one send needs, owned, so it can run as its own task.
struct SendJob {
    config: Arc<Config>,
    /// The client of the number the row's clinic sends from.
    client: Client,
    /// That number's name: a recipient's spacing is kept per number (Meta's pair limit is
    /// per business number and user).
    number: String,
    /// That number's cap.
    limiter: Arc<Pacer>,
    sms: SmsSenders,
    next_for: Gates,
    clock: Clock,
    /// Meta's word on the account's templates, as read for this run.
    health: Arc<health::Health>,
    /// The run's in-flight slots, and this job's while it holds one.
    in_flight: Arc<Semaphore>,
    slot: Mutex<Option<OwnedSemaphorePermit>>,
    /// Rows noted as requested and waiting for the limiter's turn (see [`armed_for`]).
    armed: Arc<Semaphore>,
    /// The run's writer: notes and outcomes, committed in groups.
    writes: writer::Writes,
}

/// How many rows may be noted as requested while waiting for the limiter: 100 ms of sends at
/// the cap. The note is written before the limiter's turn, so a slow commit (a claim batch, a
/// synced commit, the plan job holding the store) never delays a request that the limiter
/// has already let go, which would bunch arrivals at the API and push a second over the cap;
/// the bound keeps what a crash can leave `unknown` instead of requeued to that 100 ms.
fn armed_for(rate: u32) -> usize {
    (rate as usize / 10).max(2)
}

impl SendJob {
    async fn send(self, row: DueRow) -> Result<Outcome, DispatchError> {
        let (outcome, language, params) = self.attempt(&row).await;
        let now = self.clock.now();
        let id = row.id;
        self.writes
            .write(SendWrite::Outcome {
                id,
                epoch: row.epoch,
                outcome: outcome.clone(),
                language,
                params,
                at: now,
            })
            .await?;
        let (result, code) = match &outcome {
            Outcome::Sent { .. } => ("sent", None),
            Outcome::Retry { code, .. } => ("retry", *code),
            Outcome::Failed { code, .. }
            | Outcome::Unsubscribed { code, .. }
            | Outcome::Blocked { code, .. } => ("failed", *code),
            Outcome::FellBack { code, .. } => ("fell_back", *code),
            Outcome::Unknown { .. } => ("unknown", None),
            Outcome::Expired { .. } => ("expired", None),
            Outcome::Released { .. } => ("released", None),
        };
        metrics::counter!("reminderd_sends_total", "result" => result, "code" => code.map_or_else(|| "none".to_string(), |c| c.to_string()))
            .increment(1);
        if let Some(c) = code {
            health::alert(c, Some(id));
        }
        match &outcome {
            Outcome::Sent { wamid, .. } => {
                // Message ids embed the recipient's number (base64 in Meta's, plain in the
                // simulator's), so they stay out of the default log level.
                tracing::info!(outbox = id, channel = %row.channel, to = %row.phone.masked(), "sent");
                tracing::debug!(outbox = id, %wamid, "sent as");
            }
            Outcome::Failed { error, .. }
            | Outcome::Unsubscribed { error, .. }
            | Outcome::Blocked { error, .. } => {
                tracing::warn!(outbox = id, channel = %row.channel, to = %row.phone.masked(), %error, "failed")
            }
            Outcome::FellBack { error, .. } => {
                tracing::info!(outbox = id, to = %row.phone.masked(), %error, "WhatsApp failed; a text message goes instead")
            }
            Outcome::Unknown { error } => {
                tracing::warn!(outbox = id, to = %row.phone.masked(), %error, "outcome unknown")
            }
            Outcome::Retry { error, at, .. } => {
                tracing::info!(outbox = id, %error, retry_at = %at, "will retry")
            }
            Outcome::Expired { reason } | Outcome::Released { reason } => {
                tracing::warn!(outbox = id, %reason, "not sent")
            }
        }
        Ok(outcome)
    }

    async fn attempt(&self, row: &DueRow) -> (Outcome, Option<String>, Option<String>) {
        let cfg = self
            .config
            .whatsapp
            .as_ref()
            .expect("checked in Dispatcher::new");
        let Some(clinic) = self.config.clinic(&row.clinic) else {
            return (
                failed(format!("clinic {:?} is no longer configured", row.clinic)),
                None,
                None,
            );
        };
        if row.channel == Channel::Sms {
            return self.attempt_sms(row, clinic).await;
        }
        if row.kind == Kind::StaffDocument {
            return self.attempt_document(row, cfg).await;
        }
        if row.kind == Kind::RescheduleOffer {
            let Some(list) = row
                .params
                .as_deref()
                .and_then(crate::whatsapp::list::ListMessage::from_params)
            else {
                return (failed("the list of times has no rows".into()), None, None);
            };
            let request = SendRequest::list(&row.phone, &list, row.id.to_string());
            return (
                self.send_request(row, &request, cfg).await,
                None,
                row.params.clone(),
            );
        }
        if matches!(row.kind, Kind::ReplyAck | Kind::StaffMessage) {
            let Some(text) = row.params.as_deref().and_then(crate::store::text_of) else {
                return (
                    failed(format!("the {} has no text", row.kind.as_str())),
                    None,
                    None,
                );
            };
            let request = SendRequest::text(&row.phone, text, row.id.to_string());
            return (
                self.send_request(row, &request, cfg).await,
                None,
                row.params.clone(),
            );
        }
        let mut key = row_template(&self.config, row);
        match health::plan(&self.config, &self.health, row) {
            health::Plan::Send => {}
            health::Plan::Alternate(alt) => key = Some(alt),
            health::Plan::FallBack(code, why) => {
                let now = self.clock.now();
                return (health::fell_back(&self.config, code, &why, now), None, None);
            }
            health::Plan::Hold(why) => {
                let at = self.clock.now() + HOLD_RECHECK;
                return (
                    Outcome::Retry {
                        at,
                        code: None,
                        error: why,
                    },
                    None,
                    None,
                );
            }
        }
        let Some((key, template)) = key
            .as_deref()
            .and_then(|k| self.config.templates.get(k).map(|t| (k, t)))
        else {
            return (
                failed(format!(
                    "template {:?} is not configured{}",
                    row.template,
                    if row.recipient == Recipient::Contact {
                        " for caregivers (contact_template)"
                    } else {
                        ""
                    }
                )),
                None,
                None,
            );
        };
        let input = Input {
            clinic,
            patient_name: &row.patient_name,
            patient_language: &row.language,
            starts_at: row.starts_at,
            provider: row.provider.as_deref(),
            outbox_id: row.id,
            contact_name: row.contact_name.as_deref(),
            prep_note: crate::config::prep_note_for(
                &self.config.prep_notes,
                row.provider.as_deref(),
            ),
        };
        let rendered = match offers::render(key, template, &input, row, &self.config) {
            Ok(r) => r,
            Err(e) => return (failed(e.to_string()), None, None),
        };
        let params = serde_json::to_string(&rendered.params).ok();
        let language = Some(rendered.language.clone());
        let request = SendRequest::template(&row.phone, &rendered, row.id.to_string());

        let outcome = self.send_request(row, &request, cfg).await;
        (outcome, language, params)
    }

    /// Sends one request under the rate limit and the recipient's gate, and says what became
    /// of the row.
    async fn send_request(&self, row: &DueRow, request: &SendRequest, cfg: &WhatsApp) -> Outcome {
        let gate = {
            let mut map = self
                .next_for
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(
                map.entry(format!("{}\u{0}{}", self.number, row.phone.as_str()))
                    .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Instant::now()))),
            )
        };
        // Waiting for the recipient (another send to them in flight, or their spacing not yet
        // passed) holds no in-flight slot: the spacing delays only this patient's messages.
        let mut next = match gate.try_lock() {
            Ok(next) => next,
            Err(_) => {
                self.release_slot();
                gate.lock().await
            }
        };
        if *next > Instant::now() {
            self.release_slot();
            tokio::time::sleep_until(*next).await;
        }
        self.retake_slot().await;
        // Noted first, then the limiter's turn, then the request: nothing slow between the
        // turn and the request, so arrivals keep the limiter's spacing.
        let armed = self.armed.acquire().await.ok();
        if let Err(retry) = self.mark_requested(row).await {
            *next = Instant::now();
            return retry;
        }
        self.limiter.until_ready().await;
        drop(armed);
        let started = std::time::Instant::now();
        let result = self.client.send(request).await;
        metrics::histogram!("reminderd_send_seconds").record(started.elapsed().as_secs_f64());
        // The pair limit counts messages the API accepted: a refused request (5xx, 429,
        // not sent) leaves the gate as it was, so retries are not held back by it.
        match &result {
            Ok(_) | Err(SendError::Ambiguous(_)) => *next = Instant::now() + cfg.recipient_spacing,
            Err(e) if e.class() == ErrorClass::PairLimit => {
                *next = Instant::now() + pair_backoff(row.attempts + 1).max(cfg.recipient_spacing);
            }
            Err(_) => {}
        }
        drop(next);
        let now = self.clock.now();
        match result {
            Ok(a) => Outcome::Sent {
                wamid: a.wamid,
                wa_id: a.wa_id,
            },
            Err(e) => with_fallback(
                &self.config,
                row,
                outcome(&e, row, cfg, now, rand::random::<f64>()),
                now,
            ),
        }
    }

    /// Durably notes that the row's request is going out, on every channel: a crash from here
    /// on leaves the row `unknown` (the provider may have it); before here, it is simply sent
    /// again. `Err` is the retry when the note could not be written.
    async fn mark_requested(&self, row: &DueRow) -> Result<(), Outcome> {
        let (id, epoch, at) = (row.id, row.epoch, self.clock.now());
        let marked = self
            .writes
            .write(SendWrite::Requested { id, epoch, at })
            .await;
        if matches!(marked, Ok(true)) {
            return Ok(());
        }
        Err(Outcome::Retry {
            at: self.clock.now() + Duration::seconds(5),
            code: None,
            error: format!("not sent: could not record the request first ({marked:?})"),
        })
    }

    /// Gives back this job's in-flight slot while it waits for its recipient.
    fn release_slot(&self) {
        drop(
            self.slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
    }

    /// Takes an in-flight slot again after waiting for the recipient (no-op if still held).
    async fn retake_slot(&self) {
        let held = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if held {
            return;
        }
        // The run never closes its semaphore, so this waits and then succeeds.
        let permit = Arc::clone(&self.in_flight).acquire_owned().await.ok();
        *self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = permit;
    }

    /// Renders and sends an SMS row through its clinic's provider.
    async fn attempt_sms(
        &self,
        row: &DueRow,
        clinic: &crate::config::Clinic,
    ) -> (Outcome, Option<String>, Option<String>) {
        let Some(provider) = clinic.sms_provider else {
            return (
                failed(format!("clinic {} has no SMS provider", clinic.key)),
                None,
                None,
            );
        };
        let cap =
            (provider == crate::sms::Provider::Msg91).then_some(crate::config::DLT_VARIABLE_CAP);
        let rendered = if matches!(row.kind, Kind::ReplyAck | Kind::RescheduleOffer) {
            row.params
                .as_deref()
                .and_then(crate::store::text_of)
                .map(|text| crate::template::RenderedSms {
                    language: row.language.clone(),
                    text,
                    dlt: None,
                })
                .ok_or_else(|| "the acknowledgement has no text".to_string())
        } else {
            let key = row_template(&self.config, row);
            let text = key.as_deref().and_then(|k| {
                self.config
                    .sms
                    .as_ref()
                    .and_then(|s| s.texts(provider))
                    .and_then(|t| t.get(k))
                    .map(|t| (k, t))
            });
            match text {
                None => Err(format!(
                    "no SMS text for template {:?}: add it under [sms.{provider}.texts]",
                    key.or(row.template.clone())
                )),
                Some((k, t)) => {
                    let input = Input {
                        clinic,
                        patient_name: &row.patient_name,
                        patient_language: &row.language,
                        starts_at: row.starts_at,
                        provider: row.provider.as_deref(),
                        outbox_id: row.id,
                        contact_name: row.contact_name.as_deref(),
                        prep_note: crate::config::prep_note_for(
                            &self.config.prep_notes,
                            row.provider.as_deref(),
                        ),
                    };
                    template::render_sms(k, t, &input, cap).map_err(|e| e.to_string())
                }
            }
        };
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => {
                return (
                    Outcome::Failed {
                        code: None,
                        needs_staff: Some(sms_staff(row, &e)),
                        error: e,
                    },
                    None,
                    None,
                );
            }
        };
        let params = serde_json::to_string(&serde_json::json!({ "text": rendered.text })).ok();
        let language = Some(rendered.language.clone());
        let now = self.clock.now();
        let validity = (row.latest_at - now)
            .to_std()
            .ok()
            .map(|d| d.min(StdDuration::from_secs(36_000)));
        let msg = crate::sms::Outgoing {
            to: row.phone.clone(),
            text: rendered.text,
            dlt: rendered.dlt,
            validity,
            reference: row.id.to_string(),
        };
        if !self.sms.ready(provider).await {
            return (
                Outcome::Released {
                    reason: format!("not sent: [sms.{provider}] is not configured"),
                },
                language,
                params,
            );
        }
        if let Err(retry) = self.mark_requested(row).await {
            return (retry, language, params);
        }
        let started = std::time::Instant::now();
        let result = self.sms.send(provider, &msg).await;
        metrics::histogram!("reminderd_sms_send_seconds").record(started.elapsed().as_secs_f64());
        let now = self.clock.now();
        let outcome = match result {
            Ok(a) => Outcome::Sent {
                wamid: a.id,
                wa_id: None,
            },
            Err((e, class)) => {
                sms_outcome(&e, class, row, &self.config, now, rand::random::<f64>())
            }
        };
        (outcome, language, params)
    }
}

fn failed(error: String) -> Outcome {
    Outcome::Failed {
        code: None,
        error,
        needs_staff: None,
    }
}

#[cfg(test)]
mod tests;
