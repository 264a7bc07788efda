//! What staff must see before confirming an import: what each change undoes (a patient's
//! answer, a patient's own cancellation, a status set at the desk) and the warnings that say
//! the file may be an old export. Pure: the words here are shared by the desk and the CLI.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::{Response, Status};

/// Something a person did that a change reverses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The appointment moves, so the patient's answer is cleared: they are asked again.
    Answer(Response),
    /// The patient cancelled by replying; the file books the appointment again.
    PatientCancelled,
    /// A status someone set is reversed; `by` names the staff member when it was set at the
    /// desk (`staff:<name>`), or says who else set it.
    Status {
        /// The status reversed.
        status: Status,
        /// The staff member's name (desk), or `None` when no staff member set it.
        by: Option<String>,
    },
}

impl Undo {
    /// What it undoes, in the words of the preview ("had confirmed: will be asked again").
    /// Nothing records patients' genders, so the words are neutral.
    pub fn describe(&self) -> String {
        match self {
            Self::Answer(Response::Confirmed) => "had confirmed: will be asked again".into(),
            Self::Answer(Response::Declined) => {
                "had said they cannot come: will be asked again".into()
            }
            Self::Answer(Response::RescheduleRequested) => {
                "had asked for another time: will be asked again".into()
            }
            Self::Answer(Response::None) => "had not answered".into(),
            Self::PatientCancelled => "had cancelled it themselves: books them again".into(),
            Self::Status {
                status,
                by: Some(name),
            } => format!(
                "set to {} at the desk by {name}: reverses it",
                status_words(*status)
            ),
            Self::Status { status, by: None } => {
                format!("was {}: reverses it", status_words(*status))
            }
        }
    }

    /// Whether staff can choose to keep it (a status set at the desk).
    pub fn keepable(&self) -> bool {
        matches!(self, Self::Status { by: Some(_), .. })
    }
}

/// A status as the desk names it.
pub fn status_words(s: Status) -> &'static str {
    match s {
        Status::Booked => "booked",
        Status::Cancelled => "cancelled",
        Status::Completed => "completed",
        Status::NoShow => "no-show",
    }
}

/// An answer as the desk names it.
pub fn response_words(r: Response) -> &'static str {
    match r {
        Response::None => "no answer yet",
        Response::Confirmed => "confirmed",
        Response::Declined => "cannot come",
        Response::RescheduleRequested => "asked for another time",
    }
}

/// The staff member's name in an actor (`staff:asha` → `asha`); `cli` is the administrator.
pub fn actor_name(actor: &str) -> String {
    match actor.strip_prefix("staff:") {
        Some(name) => name.to_string(),
        None if actor == "cli" => "the administrator".into(),
        None => actor.to_string(),
    }
}

/// How far a file goes back to what later uploads replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LooksOlder {
    /// Rows that put back a start an appointment had before it was moved, or book again an
    /// appointment a later upload cancelled.
    pub reverted: usize,
    /// Rows that move an appointment or book it again.
    pub changed: usize,
}

impl LooksOlder {
    /// The rule: a file looks older than the stored schedule when at least two, and more than
    /// half, of the rows that move or re-book an appointment go back to what an upload had
    /// replaced. One such row is an ordinary correction; most of them is an old export.
    pub fn applies(self) -> bool {
        self.reverted >= 2 && self.reverted * 2 > self.changed
    }
}

/// A reason to look twice before confirming, shown as a banner on the preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Rows move appointments to an earlier start that has already passed.
    IntoThePast {
        /// How many.
        count: usize,
    },
    /// The file goes back to what later uploads replaced ([`LooksOlder::applies`]).
    LooksOlder(LooksOlder),
    /// These exact bytes were imported before, and other imports of the same clinics came
    /// after them.
    SameFileAgain {
        /// When it was imported.
        at: DateTime<Utc>,
        /// By whom (an actor: `staff:<name>` or `cli`).
        by: String,
        /// Under what name.
        file_name: String,
        /// Imports since.
        later: usize,
    },
}

impl Warning {
    /// The banner's text; times in `zone`.
    pub fn describe(&self, zone: Tz) -> String {
        match self {
            Self::IntoThePast { count: 1 } => {
                "This file moves 1 appointment to an earlier time that has already passed.".into()
            }
            Self::IntoThePast { count } => format!(
                "This file moves {count} appointments to earlier times that have already passed."
            ),
            Self::LooksOlder(l) => format!(
                "This file looks older than the schedule already saved: {} of the {} appointments it moves or books again go back to what a later upload had changed. It may be an old export.",
                l.reverted, l.changed
            ),
            Self::SameFileAgain {
                at,
                by,
                file_name,
                later,
            } => format!(
                "This is the same file as {}, uploaded {} by {}; {} since then changed the schedule.",
                // The command line records the path; the name is what staff recognise.
                file_name.rsplit(['/', '\\']).next().unwrap_or(file_name),
                at.with_timezone(&zone).format("on %a %-d %b at %H:%M"),
                actor_name(by),
                if *later == 1 {
                    "1 upload".to_string()
                } else {
                    format!("{later} uploads")
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_export_is_most_of_the_moves_going_back_and_at_least_two() {
        let l = |reverted, changed| LooksOlder { reverted, changed }.applies();
        assert!(!l(0, 0));
        assert!(!l(1, 1), "one move back is a correction");
        assert!(l(2, 2));
        assert!(l(2, 3));
        assert!(!l(2, 4), "half is not most");
        assert!(l(14, 14));
        assert!(!l(3, 10));
    }

    #[test]
    fn undoes_are_worded_for_the_desk_without_guessing_a_gender() {
        assert_eq!(
            Undo::Answer(Response::Confirmed).describe(),
            "had confirmed: will be asked again"
        );
        assert_eq!(
            Undo::PatientCancelled.describe(),
            "had cancelled it themselves: books them again"
        );
        let desk = Undo::Status {
            status: Status::NoShow,
            by: Some("asha".into()),
        };
        assert_eq!(
            desk.describe(),
            "set to no-show at the desk by asha: reverses it"
        );
        assert!(desk.keepable());
        let other = Undo::Status {
            status: Status::Completed,
            by: None,
        };
        assert_eq!(other.describe(), "was completed: reverses it");
        assert!(!other.keepable());
        assert_eq!(actor_name("staff:ravi"), "ravi");
        assert_eq!(actor_name("cli"), "the administrator");
    }

    #[test]
    fn banners_say_how_many_and_when_in_the_clinic_zone() {
        assert_eq!(
            Warning::IntoThePast { count: 14 }.describe(chrono_tz::UTC),
            "This file moves 14 appointments to earlier times that have already passed."
        );
        let again = Warning::SameFileAgain {
            at: DateTime::from_timestamp(1_764_054_000, 0).unwrap_or_default(),
            by: "staff:asha".into(),
            file_name: "week.csv".into(),
            later: 2,
        };
        assert_eq!(
            again.describe(chrono_tz::Asia::Kolkata),
            "This is the same file as week.csv, uploaded on Tue 25 Nov at 12:30 by asha; 2 uploads since then changed the schedule."
        );
    }
}
