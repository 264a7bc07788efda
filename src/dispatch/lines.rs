//! The WhatsApp numbers a dispatcher sends from: one `Line` per number with clinics, each
//! with its own client, its own cap and the clinics whose rows it claims, and each run's
//! share of the claimed rows per line; and the share of each cap this instance takes among
//! the instances sending from one database (the heartbeat).

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::time::Instant;

use tokio::sync::Semaphore;

use super::{DispatchError, Pacer};
use crate::config::{Config, DEFAULT_NUMBER, Number};
use crate::store::{ClaimScope, Share};
use crate::time::Clock;
use crate::whatsapp::Client;

/// One WhatsApp number's sending: its client (its id and token), its own cap, and whose rows
/// it claims. Meta caps each number on its own, so each is paced on its own.
pub(super) struct Line {
    /// The number's config name.
    pub(super) name: String,
    /// Its business account: a restriction of that account stops this line alone.
    pub(super) waba_id: String,
    pub(super) client: Client,
    pub(super) limiter: Arc<Pacer>,
    pub(super) rate: u32,
    pub(super) scope: ClaimScope,
}

/// The lines `config` sends on, built on `client` (the default number's): a number's own token
/// is read from the environment or the credentials directory.
pub(super) fn lines_for(config: &Config, client: Client) -> Result<Vec<Arc<Line>>, DispatchError> {
    let wa = config
        .whatsapp
        .as_ref()
        .ok_or_else(|| DispatchError::Account("no [whatsapp] section in the config".into()))?;
    let line = |number: &Number, client: Client, scope: ClaimScope| {
        Arc::new(Line {
            name: number.name.clone(),
            waba_id: number.waba_id.clone(),
            client,
            limiter: Arc::new(Pacer::new(number.rate_limit_per_sec)),
            rate: number.rate_limit_per_sec,
            scope,
        })
    };
    let mut lines = Vec::new();
    for number in wa.numbers.values().filter(|n| n.name != DEFAULT_NUMBER) {
        let clinics: Vec<String> = config
            .clinics_sending_from(&number.name)
            .map(|c| c.key.clone())
            .collect();
        if clinics.is_empty() {
            // No clinic sends from it: nothing to claim, no token needed.
            continue;
        }
        let token =
            crate::secrets::own_token(number).map_err(|e| DispatchError::Account(e.to_string()))?;
        let own = client.for_number(number, token);
        lines.push(line(number, own, ClaimScope::Clinics(clinics)));
    }
    if let Some(default) = wa.number(DEFAULT_NUMBER) {
        // The default number claims every clinic's rows but the others' (a clinic no longer
        // configured included, so its rows still end); alone, simply every row.
        let scope = if wa.numbers.len() == 1 {
            ClaimScope::All
        } else {
            ClaimScope::AllBut(
                config
                    .clinics
                    .values()
                    .filter(|c| c.whatsapp_number != DEFAULT_NUMBER)
                    .map(|c| c.key.clone())
                    .collect(),
            )
        };
        lines.push(line(default, client, scope));
    }
    Ok(lines)
}

/// A line's part of one run: its share of the run's claimed rows and where it stands.
pub(super) struct LineRun {
    pub(super) line: Arc<Line>,
    /// Its requests in flight: its share of `max_in_flight`, by its cap.
    pub(super) in_flight: Arc<Semaphore>,
    /// Claimed rows it may hold at once: twice its in-flight slots.
    pub(super) share: usize,
    /// Claim again once this many of its share are free.
    pub(super) refill: usize,
    /// Its claimed rows not yet ended.
    pub(super) held: usize,
    /// Its last claim found nothing due: no claim until one of its sends ends.
    pub(super) drained: bool,
    /// Rows noted as requested and waiting for its limiter (see [`super::armed_for`]).
    pub(super) armed: Arc<Semaphore>,
}

/// How often a sending instance notes itself live, and so how soon the others share the caps
/// with a newcomer.
pub(super) const HEARTBEAT: StdDuration = StdDuration::from_secs(1);

/// An instance not seen for this long is taken for dead: it no longer takes a share of the
/// caps, and its claims still `sending` may be settled by another (after the grace period).
pub(super) const LIVE_WINDOW: StdDuration = StdDuration::from_secs(10);

/// [`LIVE_WINDOW`] as the store counts it.
pub(super) fn live_window() -> Duration {
    Duration::from_std(LIVE_WINDOW).unwrap_or(Duration::seconds(10))
}

/// Takes `share` as this instance's: each number paced at that share of its cap, and the
/// recipients' share kept in `slot` for the claims.
fn take_share(lines: &[Arc<Line>], slot: &std::sync::atomic::AtomicU64, share: Share) {
    for line in lines {
        line.limiter.share_with(share.of);
    }
    slot.store(share.pack(), std::sync::atomic::Ordering::Release);
}

impl super::Dispatcher {
    /// Notes this instance live and paces each number at its share of the cap: the instances
    /// on one database (several servers on PostgreSQL) divide each cap equally, and each
    /// claims only its share of the recipients (so one recipient's spacing is one
    /// instance's). A newcomer waits a heartbeat first, so the others have slowed before it
    /// adds its share.
    pub(super) async fn heartbeat(&self, clock: Clock) -> Result<Instant, DispatchError> {
        let now = clock.now();
        let share = self
            .blocking(move |s| s.heartbeat(now, live_window()))
            .await?;
        take_share(&self.lines, &self.share, share);
        let first = !self.joined.swap(true, std::sync::atomic::Ordering::AcqRel);
        if first && share.of > 1 {
            tracing::info!(
                instances = share.of,
                "sharing the rate caps with the other instances"
            );
            tokio::time::sleep(HEARTBEAT * 2).await;
        }
        Ok(Instant::now())
    }
}

/// Beats every [`HEARTBEAT`] while a dispatch run lasts, on a task of its own: a run slowed
/// by a busy database must still be seen live, or another instance would take its claims
/// over while its requests are in flight. Dropping it stops the beat.
pub(super) struct Beating(tokio::task::JoinHandle<()>);

impl Beating {
    pub(super) fn start(
        store: crate::store::Db,
        lines: Vec<Arc<Line>>,
        slot: Arc<std::sync::atomic::AtomicU64>,
        clock: Clock,
    ) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                let now = clock.now();
                match store.run(move |s| s.heartbeat(now, live_window())).await {
                    Ok(Ok(share)) => take_share(&lines, &slot, share),
                    Ok(Err(e)) => tracing::warn!(error = %e, "heartbeat not written"),
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        }))
    }
}

impl Drop for Beating {
    fn drop(&mut self) {
        self.0.abort();
    }
}
