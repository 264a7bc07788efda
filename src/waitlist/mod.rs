//! The waitlist: patients waiting for an earlier slot, the slots that free up, and the offer
//! rounds between them. `plan` decides the rounds (pure); `csv` reads a waitlist file (pure);
//! `answers` reads which offer a reply answers and how (pure); `booking` does what follows (the
//! claim, the patient's answer, the staff follow-up, the move landing, the lists offered to a
//! patient who asked to reschedule). The store keeps them and `jobs::waitlist` runs the rounds.

pub mod answers;
pub mod booking;
pub mod csv;
pub mod plan;

pub use plan::{Candidate, Entry, OFFER_RULE, Opening, Round};
