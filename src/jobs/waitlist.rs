//! The waitlist job: open the slots patients and the practice system freed, withdraw the ones
//! taken again or on a closed day, expire what ran out of time, and send the offer rounds that
//! are due. The daemon runs it on the plan cadence; `reminderd send` before each dispatch.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::OpeningState;
use crate::store::{Db, Store, StoreError};
use crate::time::{Clock, local_day_bounds};
use crate::waitlist::plan::{self, Round};

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WaitlistRun {
    /// Openings found (freed by patients, opened by the practice system).
    pub opened: usize,
    /// Openings withdrawn (taken again, closed day).
    pub withdrawn: usize,
    /// Openings and offers that ran out of time.
    pub expired: usize,
    /// Offers written (each with its message).
    pub offers: usize,
}

/// How long a run's lease lasts: renewed at each run (on the plan cadence), and taken by
/// another instance only when its holder has not renewed it for this long.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// One run at `now` over every clinic with the waitlist on, by the one instance that holds
/// the waitlist's lease (the others' runs do nothing): offer rounds are a singleton, since two
/// instances choosing a round's patients at once could offer one slot twice. Each clinic's
/// part is one transaction that checks the lease is still this instance's.
pub fn run(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<WaitlistRun, StoreError> {
    let Some(lease) = store.take_lease("waitlist", LEASE, now)? else {
        return Ok(WaitlistRun::default());
    };
    let mut r = WaitlistRun::default();
    let Some(expired) = store.under_lease(&lease, |s| s.expire_waitlist(now))? else {
        return Ok(r);
    };
    r.expired = expired;
    for clinic in config.clinics.values() {
        match store.under_lease(&lease, |s| run_clinic(s, config, clinic, now))? {
            Some(part) => {
                r.opened += part.opened;
                r.withdrawn += part.withdrawn;
                r.expired += part.expired;
                r.offers += part.offers;
            }
            // Another instance took the lease over: it does the rest.
            None => break,
        }
    }
    Ok(r)
}

/// One clinic's part of a run.
fn run_clinic(
    store: &mut Store,
    config: &Config,
    clinic: &crate::config::Clinic,
    now: DateTime<Utc>,
) -> Result<WaitlistRun, StoreError> {
    let mut r = WaitlistRun::default();
    let s = config.waitlist.for_clinic(&clinic.key);
    let Some(template) = s.offer_template.as_deref().filter(|_| s.enabled) else {
        return Ok(r);
    };
    let zone = clinic.time_zone;
    r.opened += store.open_freed_slots(&clinic.key, s.grace, now)?;
    r.withdrawn += store.withdraw_retaken(&clinic.key, now)?;
    let mut closed: HashMap<chrono::NaiveDate, Option<u32>> = HashMap::new();
    for o in store.open_openings(&clinic.key)? {
        let day = o.starts_at.with_timezone(&zone).date_naive();
        let shut = match closed.get(&day) {
            Some(c) => *c,
            None => {
                let n = store.clinic_cancellations(&clinic.key, local_day_bounds(zone, day))?;
                let c = (n >= s.closure_threshold).then_some(n);
                closed.insert(day, c);
                c
            }
        };
        if let Some(n) = shut {
            let why = format!("the clinic cancelled {n} appointments that day: treated as closed");
            r.withdrawn += store.end_opening(o.id, OpeningState::Withdrawn, &why, now)?;
            continue;
        }
        match plan::round(&o, s, clinic.quiet_hours, zone, now) {
            Round::Wait => {}
            Round::Expire(why) => {
                r.expired += store.end_opening(o.id, OpeningState::Expired, &why, now)?;
            }
            Round::Offer => {
                let candidates = store.round_candidates(&o, now)?;
                let picks = plan::pick(&o, &candidates, s, zone, now);
                // Nobody suits yet: the next run looks again (an entry may be added);
                // meanwhile the Waitlist page says why.
                if picks.is_empty() {
                    let why = plan::why_none(&o, &candidates, s, zone, now);
                    store.note_opening(o.id, Some(&why), now)?;
                } else {
                    store.note_opening(o.id, None, now)?;
                    r.offers += store.write_round(
                        &o,
                        &picks,
                        (template, s.offer_valid, s.batch_gap),
                        now,
                    )?;
                }
            }
        }
    }
    Ok(r)
}

/// The daemon's job on the plan cadence; a tick that finds the last run going skips.
pub fn job(
    store: Db,
    config: Arc<RwLock<Arc<Config>>>,
    clock: Clock,
) -> Result<tokio_cron_scheduler::Job, String> {
    let cron = config
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .daemon
        .plan
        .clone();
    super::exclusive_cron_job(&cron, "daemon.plan (waitlist)", config, move |config| {
        let store = store.clone();
        async move {
            let now = clock.now();
            match store.run(move |s| run(s, &config, now)).await {
                Ok(Ok(r)) if r.opened + r.withdrawn + r.expired + r.offers > 0 => tracing::info!(
                    opened = r.opened,
                    withdrawn = r.withdrawn,
                    expired = r.expired,
                    offers = r.offers,
                    "waitlist"
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "waitlist run failed"),
                Err(e) => tracing::error!(error = %e, "waitlist task failed"),
            }
        }
    })
}
