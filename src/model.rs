//! The words every room shares (the ground floor: no I/O, no SQL): an appointment's schedule
//! status, who cancelled it, the patient's response, and what kind of message an outbox row
//! holds.

/// A stored word that is none of its enum's values (a hand-edited or corrupt row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {text:?}")]
pub struct UnknownWord {
    /// Which enum was read.
    pub kind: &'static str,
    /// What was found.
    pub text: String,
}

/// An enum stored as text: `as_str` to write it, `parse` to read it back, `FromStr` for what
/// people type (trimmed, any case), `Display` for output.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored (and displayed) text.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Reads the stored text exactly.
            pub fn parse(s: &str) -> Result<Self, UnknownWord> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownWord { kind: stringify!($name), text: other.to_string() }),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(&s.trim().to_ascii_lowercase()).map_err(|_| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("{s:?} is not one of: {}", all.join(", "))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What the clinic's schedule says about an appointment.
    Status {
        /// It is going ahead.
        Booked = "booked",
        /// It is not (see `CancelledBy`).
        Cancelled = "cancelled",
        /// It happened.
        Completed = "completed",
        /// The patient did not come.
        NoShow = "no_show",
    }
}

text_enum! {
    /// Who cancelled an appointment.
    CancelledBy {
        /// Staff, through reminderd.
        Clinic = "clinic",
        /// The patient, by replying.
        Patient = "patient",
        /// The imported schedule (status column, or missing from a `--complete` file).
        Source = "source",
    }
}

text_enum! {
    /// What the patient said about an appointment.
    Response {
        /// Nothing yet.
        None = "none",
        /// They will come.
        Confirmed = "confirmed",
        /// They will not come.
        Declined = "declined",
        /// They want another time.
        RescheduleRequested = "reschedule_requested",
    }
}

/// What kind of message an outbox row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A reminder from a rule.
    Reminder,
    /// "Your appointment is booked".
    BookingConfirmation,
    /// The answer to a patient's reply.
    ReplyAck,
}

impl Kind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::BookingConfirmation => "booking_confirmation",
            Self::ReplyAck => "reply_ack",
        }
    }

    /// Reads the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reminder" => Some(Self::Reminder),
            "booking_confirmation" => Some(Self::BookingConfirmation),
            "reply_ack" => Some(Self::ReplyAck),
            _ => None,
        }
    }
}
