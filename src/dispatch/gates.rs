//! The recipients' gates: one per recipient, serialising sends to that number and holding
//! when the next may start (the spacing), and their pruning as traffic moves on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Gate maps smaller than this are never pruned mid-run (cheap to keep, cheap to scan).
const GATES_FLOOR: usize = 1024;

/// One gate per recipient: holding it serialises sends to that number, and it stores when the
/// next may start, counted from the previous *response*, so latency never shortens the gap.
pub(super) type Gates = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Instant>>>>>;

impl super::Dispatcher {
    /// Forgets recipients whose spacing has passed and whose gate nobody holds, so the map
    /// stays the size of the current traffic rather than of every patient ever messaged.
    pub(super) fn prune_gates(&self) {
        let now = Instant::now();
        let mut map = self
            .next_for
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A gate a job has taken out of the map (a clone) is in use even if not yet locked.
        map.retain(|_, gate| {
            Arc::strong_count(gate) > 1 || gate.try_lock().map_or(true, |next| *next > now)
        });
    }

    /// Prunes the gate map when it has doubled since the last prune: a long run (`send --once`
    /// over a large backlog) messages a new patient with almost every send, and the map must
    /// not keep them all until the run ends. Doubling keeps the cost amortised per send.
    pub(super) fn prune_gates_if_grown(&self) {
        let len = self
            .next_for
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        let high = self.gates_high.load(std::sync::atomic::Ordering::Relaxed);
        if len > high.max(GATES_FLOOR) {
            self.prune_gates();
            let left = self
                .next_for
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len();
            self.gates_high
                .store(left * 2, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
