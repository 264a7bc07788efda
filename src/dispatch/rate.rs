//! The send-rate limit: a GCRA quota per cap, tuned so that no one-second window holds more
//! than the cap even when arrivals at the provider jitter.

use std::num::NonZeroU32;
use std::time::Duration as StdDuration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// The quota for a cap of `rate` messages per second, and its burst. GCRA admits `burst` at
/// once and then one every `1/steady`, so at most `burst + steady` in any second: `steady` is
/// the cap less the burst, less 1% headroom, because arrivals at the API jitter by a few
/// milliseconds (connection set-up, scheduling) and a late one lands in the next second's
/// window (measured: 1001-1002 in one window at a cap of 1000 without the headroom).
pub fn quota_for(rate: u32) -> (Quota, NonZeroU32) {
    if rate < 50 {
        // Below 50 a second (an SMS long code sends 1, a toll-free number 3) a burst and a
        // whole message of headroom would eat most of the cap: plain spacing instead, 5%
        // longer than 1/rate, so that no second holds more than the cap even when arrivals
        // jitter by tens of milliseconds (measured by bench/sms.py at 1 a second).
        let period = StdDuration::from_secs_f64(1.0 / (f64::from(rate.max(1)) * 0.95));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        return (quota, NonZeroU32::MIN);
    }
    let burst = (rate / 50).max(1);
    let headroom = (rate / 100).max(1);
    let steady = rate.saturating_sub(burst).saturating_sub(headroom).max(1);
    let period = StdDuration::from_secs_f64(1.0 / f64::from(steady));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    (quota, burst)
}

/// The limiter for a cap of `rate` messages per second, starting with its burst spent: a
/// cold start would release the burst while connections are still opening, and its
/// messages would reach the API bunched with the ones after them.
pub fn limiter_for(rate: u32) -> DefaultDirectRateLimiter {
    let (quota, burst) = quota_for(rate);
    let limiter = RateLimiter::direct(quota);
    let _ = limiter.check_n(burst);
    limiter
}

/// WhatsApp's send pace: GCRA at `0.99 · cap` (0.96 below 80 a second) with a tolerance of 2 ms, in time rather than
/// in whole messages. A request may go from 2 ms before its theoretical time, so a wake-up
/// that tokio's millisecond timer makes late by up to that costs nothing, and the schedule
/// never slips (GCRA with no burst counts from the late admission and lost up to a
/// millisecond per message: 0.926 of the cap measured at 80/s, 0.73 at 1000/s). A burst of
/// one whole message would absorb it too, but at 80/s that is 12 ms early, enough for an
/// 81st message in some second. Checked at the moment the request goes (one waiter at a
/// time), so a send woken late by a busy machine goes late alone rather than in a bunch. No
/// second holds more than `1 + 1.002 · 0.99 · cap` requests (at most the cap from 50/s), and
/// an arrival may jitter by about 8 ms before a second at the API could hold more.
#[derive(Debug)]
pub struct Pacer {
    /// The spacing at the whole cap.
    alone: StdDuration,
    /// The cap, in messages a second.
    cap: u32,
    /// The spacing now: the whole cap's times the instances sharing it (or longer: see
    /// [`Pacer::share_with`]).
    period: std::sync::Mutex<StdDuration>,
    tolerance: StdDuration,
    /// The theoretical time of the next request (`None`: none sent yet).
    tat: std::sync::Mutex<Option<tokio::time::Instant>>,
    /// One waiter checks at a time: the others wait their turn without waking.
    turn: tokio::sync::Mutex<()>,
}

impl Pacer {
    /// A pacer for a cap of `rate` messages per second.
    pub fn new(rate: u32) -> Self {
        // Below 80 a second 1% is less than a message: two messages of headroom there, as
        // the governor quota keeps, since arrivals at the API (the soak's simulator on a busy
        // machine) compress by tens of milliseconds.
        let share = if rate < 80 { 0.96 } else { 0.99 };
        let period = StdDuration::from_secs_f64(1.0 / (f64::from(rate.max(1)) * share));
        Self {
            alone: period,
            cap: rate.max(1),
            period: std::sync::Mutex::new(period),
            tolerance: StdDuration::from_millis(2),
            tat: std::sync::Mutex::new(None),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The time between two requests at the steady rate.
    pub fn period(&self) -> StdDuration {
        *self
            .period
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Paces at `1 / instances` of the cap: each of the instances sending from one number
    /// takes an equal share, so together they stay under it.
    ///
    /// One pacer at `r` a second can put `⌈1.002 · r⌉` requests in a second (the first at
    /// its start, and the 2 ms tolerance), so `k` of them `k` times that: at a cap of 80
    /// shared by three, `0.99 · 80 / 3` is 26.4 and three pacers could put 81 in a second
    /// (measured by bench/postgres.py). Each share is therefore also held to what fits
    /// `⌊cap / k⌋` requests in every second. And each instance's requests jitter on their
    /// way to the API on their own, so shared, the cap keeps 2% of headroom rather than 1%
    /// (1,001 arrived in one second from three instances at 0.99 of 1000/3 each).
    pub fn share_with(&self, instances: u32) {
        let k = instances.max(1);
        let even = if k > 1 {
            self.alone.mul_f64(f64::from(k) * 0.99 / 0.98)
        } else {
            self.alone
        };
        let whole = self.cap / k;
        let period = if k > 1 && whole >= 1 {
            even.max(StdDuration::from_secs_f64(1.003 / f64::from(whole)))
        } else {
            even
        };
        *self
            .period
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = period;
    }

    /// Lets a request go at `now` (`Ok`), or says from when it may (`Err`).
    pub fn admit(&self, now: tokio::time::Instant) -> Result<(), tokio::time::Instant> {
        let mut tat = self
            .tat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = tat.unwrap_or(now);
        if now + self.tolerance >= due {
            *tat = Some(due.max(now) + self.period());
            Ok(())
        } else {
            Err(due - self.tolerance)
        }
    }

    /// Waits until a request may go, and counts it.
    pub async fn until_ready(&self) {
        let _turn = self.turn.lock().await;
        while let Err(at) = self.admit(tokio::time::Instant::now()) {
            tokio::time::sleep_until(at).await;
        }
    }
}
