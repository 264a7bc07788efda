//! The answers side of the waitlist (issue 17): which offer a reply answers and how
//! (`answers`, pure), and what follows: the claim, the patient's answer, the staff follow-up,
//! the move landing and the lists offered to a patient who asked to reschedule (`booking`).

pub mod answers;
pub mod booking;
