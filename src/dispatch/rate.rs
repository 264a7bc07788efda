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

/// WhatsApp's send pace: one request every `1 / (0.99 · cap)`, by ticket. Each send takes the
/// next ticket (`max(previous + period, now)`) and sleeps until it, so a wake-up that tokio's
/// millisecond timer makes late delays that one request only: the schedule itself never
/// slips. A GCRA limiter with no burst counts from the late admission instead and lost up to
/// a millisecond per message (measured: 0.926 of the cap at 80/s, 0.73 at 1000/s); a burst
/// would absorb that but puts `burst + steady` in one second, so it had to come out of the
/// steady rate (a ceiling of 0.975 and 0.97 of the cap). Tickets are exactly a period apart,
/// so no second holds more than `0.99 · cap + 1` of them, and an arrival may jitter by 1% of a
/// second (10 ms) before a second at the API could hold more than the cap.
#[derive(Debug)]
pub struct Pacer {
    period: StdDuration,
    next: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    /// A pacer for a cap of `rate` messages per second.
    pub fn new(rate: u32) -> Self {
        Self {
            period: StdDuration::from_secs_f64(1.0 / (f64::from(rate.max(1)) * 0.99)),
            next: std::sync::Mutex::new(None),
        }
    }

    /// The time between two tickets.
    pub fn period(&self) -> StdDuration {
        self.period
    }

    /// Takes the next ticket: when this request may go.
    pub fn ticket(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.period);
        at
    }

    /// Waits for the next ticket.
    pub async fn until_ready(&self) {
        let at = self.ticket(tokio::time::Instant::now());
        tokio::time::sleep_until(at).await;
    }
}
