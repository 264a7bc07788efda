//! What stands between the sign-in form and argon2: request rates per client address and
//! overall, and a bound on how many password checks run at once, each in a reused buffer.
//!
//! A check needs 19 MiB; without a bound, a burst of sign-ins with made-up names (which
//! check a decoy hash) took the process to gigabytes that the allocator never gave back.

use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Block;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Desk;

/// How long a sign-in waits for a free password check before it is answered "busy".
const WAIT_FOR_CHECK: Duration = Duration::from_secs(2);

/// Per-address limiters kept before idle ones are forgotten.
const TRACKED_ADDRESSES: usize = 4096;

/// Rate limits and the bound on password checks, shared by every sign-in.
pub(super) struct Gate {
    checks: Arc<Semaphore>,
    /// argon2 buffers not in use; never more than there are permits.
    memory: Mutex<Vec<Vec<Block>>>,
    /// Rebuilt when a reload changes the configured rates.
    limits: Mutex<Option<Arc<Limits>>>,
}

struct Limits {
    per_address: u32,
    overall: u32,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    all: DefaultDirectRateLimiter,
}

/// A sign-in request over its rate: try again after this long.
pub(super) struct TooMany(pub Duration);

/// No password check came free in time.
pub(super) struct Busy;

/// The right to run one password check (held until the check ends).
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Gate {
    /// As many checks at once as the machine has cores.
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self {
            checks: Arc::new(Semaphore::new(cores)),
            memory: Mutex::new(Vec::new()),
            limits: Mutex::new(None),
        }
    }

    /// Counts a sign-in request from `client` against `desk.sign_ins_per_minute_per_address`
    /// and `desk.sign_ins_per_minute`.
    pub(super) fn admit(&self, desk: &Desk, client: IpAddr) -> Result<(), TooMany> {
        let limits = self.limits_for(desk);
        if limits.by_address.len() > TRACKED_ADDRESSES {
            limits.by_address.retain_recent();
        }
        let now = DefaultClock::default().now();
        limits
            .by_address
            .check_key(&client)
            .map_err(|n| TooMany(n.wait_time_from(now)))?;
        limits
            .all
            .check()
            .map_err(|n| TooMany(n.wait_time_from(now)))
    }

    fn limits_for(&self, desk: &Desk) -> Arc<Limits> {
        let mut slot = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = slot.as_ref().filter(|l| {
            l.per_address == desk.sign_ins_per_minute_per_address
                && l.overall == desk.sign_ins_per_minute
        }) {
            return Arc::clone(l);
        }
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let fresh = Arc::new(Limits {
            per_address: desk.sign_ins_per_minute_per_address,
            overall: desk.sign_ins_per_minute,
            by_address: RateLimiter::keyed(quota(desk.sign_ins_per_minute_per_address)),
            all: RateLimiter::direct(quota(desk.sign_ins_per_minute)),
        });
        *slot = Some(Arc::clone(&fresh));
        fresh
    }

    /// Waits up to two seconds for a free password check.
    pub(super) async fn slot(&self) -> Result<Slot, Busy> {
        self.slot_within(WAIT_FOR_CHECK).await
    }

    async fn slot_within(&self, wait: Duration) -> Result<Slot, Busy> {
        match tokio::time::timeout(wait, Arc::clone(&self.checks).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { _permit: permit }),
            _ => Err(Busy),
        }
    }

    /// Checks `password` against `phc` in one of the kept buffers. The permit and the buffer
    /// move into the blocking task, so a request abandoned half-way (a timeout) still frees
    /// neither before its check ends.
    pub(super) async fn verify(
        self: &Arc<Self>,
        slot: Slot,
        password: String,
        phc: String,
    ) -> bool {
        let gate = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut memory = gate
                .memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            let good = super::auth::verify_password_in(&password, &phc, &mut memory);
            gate.memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            drop(slot);
            good
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(per_address: u32, overall: u32) -> Desk {
        Desk {
            sign_ins_per_minute_per_address: per_address,
            sign_ins_per_minute: overall,
            ..Desk::default()
        }
    }

    #[test]
    fn rates_are_per_address_then_overall_and_follow_a_reload() {
        let gate = Gate::new();
        let (a, b) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
        let d = desk(2, 3);
        assert!(gate.admit(&d, a).is_ok());
        assert!(gate.admit(&d, a).is_ok());
        let TooMany(wait) = gate.admit(&d, a).expect_err("a's third is over its rate");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(gate.admit(&d, b).is_ok(), "b has its own rate");
        assert!(gate.admit(&d, b).is_err(), "all together are over theirs");
        // A reload with other rates starts afresh.
        assert!(gate.admit(&desk(5, 10), a).is_ok());
    }

    #[tokio::test]
    async fn checks_beyond_the_cores_wait_then_are_busy() {
        let gate = Arc::new(Gate::new());
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let mut held = Vec::new();
        for _ in 0..cores {
            held.push(gate.slot().await.ok().expect("a free check"));
        }
        assert!(
            gate.slot_within(Duration::from_millis(20)).await.is_err(),
            "busy after the wait"
        );
        let phc = super::super::auth::hash_password("correct horse battery").expect("hash");
        let slot = held.pop().expect("slot");
        assert!(gate.verify(slot, "correct horse battery".into(), phc).await);
        assert!(gate.slot().await.is_ok(), "the check gave its slot back");
        let kept = gate.memory.lock().expect("memory").len();
        assert_eq!(kept, 1, "its buffer is kept for the next check");
    }
}
