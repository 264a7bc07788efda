//! The jobs as the CLI and the daemon run them: each is a short sequence of store calls around
//! the pure planning and dispatch logic.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::plan::{self, BOOKING_WINDOW, Due};
use crate::store::{PlanCounts, Store, StoreError};

/// Plans everything due at `now` and materialises it (or, with `dry_run`, only counts).
pub fn plan_due(
    store: &mut Store,
    config: &Config,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<(Vec<Due>, PlanCounts), StoreError> {
    let candidates =
        store.plan_candidates(now, now + plan::horizon(config), now - BOOKING_WINDOW)?;
    let due = plan::plan(config, &candidates, now);
    let counts = store.insert_due(&due, now, dry_run)?;
    Ok((due, counts))
}
