//! The words every room shares (the ground floor: no I/O, no SQL): channels and recipients,
//! an appointment's schedule status, who cancelled it, the patient's response, what kind of message an outbox row
//! holds and where it is, what a patient asked for, what staff record, and a language as
//! WhatsApp writes it.

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
            pub fn parse(s: &str) -> Result<Self, $crate::model::UnknownWord> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::model::UnknownWord { kind: stringify!($name), text: other.to_string() }),
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

pub(crate) use text_enum;

text_enum! {
    /// The way a message travels.
    Channel {
        /// The WhatsApp Business Cloud API.
        WhatsApp = "whatsapp",
        /// A text message through the clinic's SMS provider.
        Sms = "sms",
    }
}

text_enum! {
    /// How the schedule says a person is to be reached (`channel` column): not set is WhatsApp
    /// with the clinic's SMS fallback.
    ChannelChoice {
        /// WhatsApp first; SMS when WhatsApp fails for good and the clinic allows it.
        WhatsApp = "whatsapp",
        /// SMS only: never a WhatsApp message.
        Sms = "sms",
        /// No automated message: staff call.
        None = "none",
    }
}

text_enum! {
    /// What a front-desk account may do: staff work the desk; admins also export and erase a
    /// patient's data and open the evaluation's per-patient lists.
    Role {
        /// Works the desk.
        Staff = "staff",
        /// Also exports and erases patients' data.
        Admin = "admin",
    }
}

text_enum! {
    /// Who an outbox row is addressed to.
    Recipient {
        /// The patient's own number.
        Patient = "patient",
        /// The patient's caregiver (a parent, a child, a neighbour), who acts for them.
        Contact = "contact",
    }
}

text_enum! {
    /// Whom the schedule says to remind (`remind` column).
    RemindWhom {
        /// Only the patient (the default).
        Patient = "patient",
        /// Only the caregiver.
        Contact = "contact",
        /// Both, each once.
        Both = "both",
    }
}

impl Default for RemindWhom {
    /// Only the patient, as when the schedule says nothing.
    fn default() -> Self {
        Self::Patient
    }
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
    /// A reminder staff asked for ("Remind now"): sent like a rule's reminder, with the
    /// template of the clinic's first reminder rule, once per press.
    ManualReminder,
    /// Free-form text staff wrote in a conversation, inside the patient's 24-hour window.
    StaffMessage,
    /// The clinic's approved "please call us" template, chosen by staff outside the window.
    StaffTemplate,
    /// A document from the clinic's library, sent by staff inside the window.
    StaffDocument,
    /// A freed slot offered to a waitlisted patient (an approved template, Accept / No).
    WaitlistOffer,
    /// The openings offered to a patient who asked to reschedule (a list to pick from).
    RescheduleOffer,
    /// After the visit: "how was it?", with 1–5 score buttons (by SMS: reply a digit).
    Feedback,
}

impl Kind {
    /// Whether this message offers an opening (its row names the offer: rule `offer:<id>`);
    /// no schedule check of the appointment it is filed under stops it, the offer's own
    /// state and expiry do.
    pub fn is_offer(self) -> bool {
        matches!(self, Self::WaitlistOffer | Self::RescheduleOffer)
    }
    /// Whether staff wrote or chose this message in a conversation (one per form, by its
    /// `staff:<nonce>` rule; no schedule check stops it, the patient's window does).
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Self::StaffMessage | Self::StaffTemplate | Self::StaffDocument
        )
    }

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reminder => "reminder",
            Self::BookingConfirmation => "booking_confirmation",
            Self::ReplyAck => "reply_ack",
            Self::ManualReminder => "manual_reminder",
            Self::StaffMessage => "staff_message",
            Self::StaffTemplate => "staff_template",
            Self::StaffDocument => "staff_document",
            Self::WaitlistOffer => "waitlist_offer",
            Self::RescheduleOffer => "reschedule_offer",
            Self::Feedback => "feedback",
        }
    }

    /// Reads the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "reminder" => Some(Self::Reminder),
            "booking_confirmation" => Some(Self::BookingConfirmation),
            "reply_ack" => Some(Self::ReplyAck),
            "manual_reminder" => Some(Self::ManualReminder),
            "staff_message" => Some(Self::StaffMessage),
            "staff_template" => Some(Self::StaffTemplate),
            "staff_document" => Some(Self::StaffDocument),
            "waitlist_offer" => Some(Self::WaitlistOffer),
            "reschedule_offer" => Some(Self::RescheduleOffer),
            "feedback" => Some(Self::Feedback),
            _ => None,
        }
    }
}

text_enum! {
    /// What a patient asked for, by a button or in words; the buttons a template may carry are
    /// the first four (`Intent::BUTTONS`), or five `feedback` buttons (the scores 1 to 5).
    Intent {
        /// They will come.
        Confirm = "confirm",
        /// They will not come.
        Cancel = "cancel",
        /// They want another time.
        Reschedule = "reschedule",
        /// No more messages.
        Stop = "stop",
        /// Messages again, after a stop.
        Start = "start",
        /// A 1–5 score of a visit, answering a feedback request.
        Feedback = "feedback",
        /// Words we do not recognise: a person must read them.
        Unknown = "unknown",
        /// Not a message we act on (a reaction, a sticker).
        None = "none",
    }
}

impl Intent {
    /// What a quick-reply button may do when tapped.
    pub const BUTTONS: &'static [Self] =
        &[Self::Confirm, Self::Cancel, Self::Reschedule, Self::Stop];
}

text_enum! {
    /// Where an outbox row is, in the order a message moves through the states.
    OutboxState {
        /// Planned, waiting for its time.
        Pending = "pending",
        /// Claimed by a sender; its request may be going out.
        Sending = "sending",
        /// The API accepted it.
        Sent = "sent",
        /// It reached the phone.
        Delivered = "delivered",
        /// The patient opened it.
        Read = "read",
        /// The API or the phone refused it (final).
        Failed = "failed",
        /// The request went out and no answer came: the API may have it.
        Unknown = "unknown",
        /// Not sent, on purpose (cancelled, moved, opted out, confirmed).
        Skipped = "skipped",
        /// Not sent in time.
        Expired = "expired",
    }
}

impl OutboxState {
    /// How far a delivery status has come; a status never moves a row to a lower rank, and
    /// `None` for the states no status moves.
    pub fn rank(self) -> Option<u8> {
        match self {
            Self::Pending | Self::Sending | Self::Unknown => Some(0),
            Self::Sent => Some(1),
            Self::Delivered => Some(2),
            Self::Read => Some(3),
            // Failed is final: a late "delivered" after "failed" does not revive it.
            Self::Failed => Some(4),
            Self::Skipped | Self::Expired => None,
        }
    }
}

text_enum! {
    /// What staff record about an appointment, at the desk or with `reminderd set-status`.
    StaffAction {
        /// They phoned the patient (an audit row).
        Called = "called",
        /// A note for colleagues (an audit row).
        Note = "note",
        /// The patient confirmed to them (sets the patient's response).
        Confirmed = "confirmed",
        /// The clinic cancelled it (sets the schedule status).
        Cancelled = "cancelled",
        /// The patient came (sets the schedule status).
        Completed = "completed",
        /// The patient did not come (sets the schedule status; only after its start time).
        NoShow = "no_show",
        /// The patient is here (recorded beside the status, which stays booked).
        Arrived = "arrived",
    }
}

impl StaffAction {
    /// The actions the desk's follow-up list offers.
    pub const ON_THE_DESK: &'static [Self] = &[
        Self::Called,
        Self::Note,
        Self::Confirmed,
        Self::Cancelled,
        Self::NoShow,
    ];

    /// The actions a day board row offers (cancel and no-show after a confirm page).
    pub const ON_THE_BOARD: &'static [Self] = &[
        Self::Arrived,
        Self::Completed,
        Self::NoShow,
        Self::Cancelled,
        Self::Note,
    ];

    /// Whether it changes the appointment (its status or response) rather than only adding an
    /// audit row.
    pub fn changes_status(self) -> bool {
        !matches!(self, Self::Called | Self::Note)
    }
}

/// Normalises a language written by staff to a WhatsApp-style code (`en`, `hi`, `pt_BR`).
/// Accepts codes in any case with `-` or `_`, and the English names of common languages.
pub fn normalize_language(s: &str) -> Option<String> {
    let s = s.trim();
    let by_name = match s.to_lowercase().as_str() {
        "english" => Some("en"),
        "hindi" | "हिन्दी" | "हिंदी" => Some("hi"),
        "marathi" | "मराठी" => Some("mr"),
        "spanish" | "español" | "espanol" => Some("es"),
        "gujarati" => Some("gu"),
        "tamil" => Some("ta"),
        "telugu" => Some("te"),
        "kannada" => Some("kn"),
        "bengali" | "bangla" => Some("bn"),
        "malayalam" => Some("ml"),
        "punjabi" => Some("pa"),
        "urdu" => Some("ur"),
        "french" => Some("fr"),
        "portuguese" => Some("pt_BR"),
        "chinese" => Some("zh_CN"),
        "arabic" => Some("ar"),
        _ => None,
    };
    if let Some(code) = by_name {
        return Some(code.to_string());
    }
    let mut parts = s.split(['-', '_']);
    let lang = parts.next()?;
    let region = parts.next();
    if parts.next().is_some()
        || !(2..=3).contains(&lang.len())
        || !lang.chars().all(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    let lang = lang.to_ascii_lowercase();
    match region {
        None => Some(lang),
        Some(r) if r.len() == 2 && r.chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(format!("{lang}_{}", r.to_ascii_uppercase()))
        }
        Some(_) => None,
    }
}

text_enum! {
    /// Where an opening came from: only these may be offered (a clinic's own cancellation or a
    /// closed day never is).
    OpeningSource {
        /// A patient cancelled their appointment (by reply, or the practice system said so).
        PatientCancel = "patient_cancel",
        /// The practice system opened the slot (SIU S24, a free FHIR Slot).
        Practice = "practice",
        /// Staff opened it by hand.
        Staff = "staff",
    }
}

text_enum! {
    /// Where an opening stands. `open` → `held` is the one claim; a hold becomes `filled` when
    /// the move is booked, or goes back to `open` when it lapses.
    OpeningState {
        /// Free: offers may go out and the first acceptance takes it.
        Open = "open",
        /// Claimed by an acceptance, waiting for the booking.
        Held = "held",
        /// Booked for the patient who took it.
        Filled = "filled",
        /// Its start came within the lead time unfilled.
        Expired = "expired",
        /// Withdrawn (the cancellation was undone, the day closed, staff took it back).
        Withdrawn = "withdrawn",
    }
}

text_enum! {
    /// Where one offer stands.
    OfferState {
        /// Sent (or queued) and still valid.
        Offered = "offered",
        /// This patient took the opening.
        Accepted = "accepted",
        /// Someone else took it first.
        Lost = "lost",
        /// The patient said no.
        Declined = "declined",
        /// Its time ran out unanswered.
        Expired = "expired",
        /// The opening went away before an answer.
        Withdrawn = "withdrawn",
    }
}
