//! The waitlist: patients waiting for an earlier slot, the slots that free up, and the offer
//! rounds between them. `plan` decides (pure); `csv` reads a waitlist file (pure); the store
//! keeps them and `jobs::waitlist` runs the rounds.

pub mod csv;
pub mod plan;

pub use plan::{Candidate, Entry, OFFER_RULE, Opening, Round};
