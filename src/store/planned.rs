//! The outbox keys the last plan on this connection found or wrote, so the next plan does not
//! look each of them up again.
//!
//! A plan tick re-plans every appointment in the rules' horizon, and nearly every message it
//! finds due was materialised by an earlier tick. Checking each against the outbox's unique
//! key was half of a busy daemon's CPU, growing with the schedule (profiled in
//! bench/README.md: 49% of the daemon in the plan's lookups at 40k appointments, planned
//! every second). A key written or found by the last committed plan still exists: outbox rows
//! are never deleted while their appointment is in the horizon (erasure removes the
//! appointment, and with it the candidate), so skipping its lookup can neither send twice nor
//! drop a message. The memo is per connection and starts empty, so a restart, or another
//! process, checks every key once.

use crate::model::{Channel, Kind, Recipient};
use crate::plan::Due;

/// One due message's unique outbox key, with its (kind, rule, recipient, channel) interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    appointment_id: i64,
    slot_start: i64,
    /// Index into [`Planned::routes`] (a `u32` would pad to the same 24 bytes).
    route: usize,
}

/// The keys the last committed plan found or wrote, and the routes they intern.
#[derive(Debug, Default)]
pub(super) struct Planned {
    /// (kind, rule, recipient, channel) by index: a handful per configuration, searched in
    /// order (faster than hashing a string for so few).
    routes: Vec<(Kind, String, Recipient, Channel)>,
    /// Sorted: 24 bytes a key, where a hash set took 25 to 50 and doubled while it grew (the
    /// memo was the largest live allocation of a plan over 30k appointments, heaptrack).
    keys: Vec<Key>,
}

impl Planned {
    /// The key of `d`, interning its route on first sight.
    pub(super) fn key(&mut self, d: &Due) -> Key {
        let found = self.routes.iter().position(|(k, r, who, ch)| {
            *k == d.kind && *who == d.recipient && *ch == d.channel && *r == d.rule
        });
        let route = found.unwrap_or_else(|| {
            self.routes
                .push((d.kind, d.rule.clone(), d.recipient, d.channel));
            self.routes.len() - 1
        });
        Key {
            appointment_id: d.appointment_id,
            slot_start: d.slot_start.timestamp(),
            route,
        }
    }

    /// Whether the last committed plan found or wrote `key`.
    pub(super) fn contains(&self, key: &Key) -> bool {
        self.keys.binary_search(key).is_ok()
    }

    /// How many keys the last committed plan found or wrote: the next one's likely size.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Replaces the memo with a plan's keys once that plan has committed: keys no longer due
    /// (their appointment started, moved or was cancelled) drop out, so it holds one tick's
    /// worth and no more.
    pub(super) fn replace(&mut self, mut keys: Vec<Key>) {
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        self.keys = keys;
        // A reloaded configuration can rename rules: routes nothing uses any more go (keys
        // index into the list, so it is only cleared when no key is left to point into it).
        if self.keys.is_empty() {
            self.routes.clear();
        }
    }
}
