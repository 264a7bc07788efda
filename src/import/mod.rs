//! Front-desk CSV import: the types shared by reading and applying a schedule file.
//!
//! An import reads and validates every row, then applies all of them in one transaction or
//! none. The command line's [`import_stream`] does both chunk by chunk ([`CHUNK_ROWS`] rows),
//! so its memory does not grow with the file's rows; a bad row anywhere rolls it all back. [`parse()`] is pure (bytes in, rows or row errors out) so the same checks serve the
//! CLI, the browser upload and the property tests. [`apply()`] compares the rows with what is
//! stored and writes the differences through [`crate::store::ImportTx`]; a dry-run runs the
//! very same code and drops the transaction instead of committing it.

mod apply;
mod parse;
pub mod review;

pub use apply::{
    RecordApplied, RecordFrom, apply, apply_open, apply_open_keeping, apply_record, import_stream,
};
pub use parse::{CHUNK_ROWS, CsvFile, Input, Opened, Progress, parse, shown_cell};
pub use review::{LooksOlder, Undo, Warning};
// Rows name their language in staff's words; the ground floor reads them.
pub use crate::model::normalize_language;

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{ChannelChoice, RemindWhom, Response, Status};
use crate::phone::E164;
use crate::store::StoreError;

/// One problem in the file, located as a spreadsheet shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// Row number as a spreadsheet shows it (the header is row 1).
    pub row: usize,
    /// The column's header as written in the file (or the expected header, if missing).
    pub column: String,
    /// The value found.
    pub value: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The patient's name on that row, as written (shown beside the row number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// Whether a row books or cancels its appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// The appointment is going ahead.
    Booked,
    /// The clinic cancelled it.
    Cancelled,
    /// The practice system deleted it (SIU S17, FHIR `entered-in-error`, or gone from the
    /// server): cancelled by the source, audited as a deletion, never as the patient's.
    Deleted,
    /// The patient did not come (SIU S26, FHIR `noshow`).
    NoShow,
    /// The visit took place (FHIR `fulfilled`, SCH-25 Complete).
    Completed,
}

/// One valid data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Spreadsheet row number.
    pub row: usize,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// The clinic system's patient id.
    pub patient_id: String,
    /// Patient's name.
    pub patient_name: String,
    /// Patient's number.
    pub phone: E164,
    /// Patient's language (normalised code).
    pub language: String,
    /// Start, UTC.
    pub starts_at: DateTime<Utc>,
    /// Start date at the clinic.
    pub local_date: NaiveDate,
    /// Length.
    pub duration_min: u32,
    /// Who it is with.
    pub provider: Option<String>,
    /// Booked or cancelled.
    pub status: RowStatus,
    /// Who is reminded and how, as far as the file's columns say.
    pub reach: Reach,
}

/// Who is reminded and how, as a row's optional columns say. A field is [`Said::Nothing`]
/// when the file has no such column, and the stored value stays: an older export, or a
/// format without these columns, must not wipe what a richer export said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// `channel`: cleared is WhatsApp, with the clinic's SMS fallback.
    pub channel: Said<ChannelChoice>,
    /// `remind`: `None` without the column; an empty cell is [`RemindWhom::Patient`].
    pub remind: Option<RemindWhom>,
    /// `contact_name`: the caregiver's name.
    pub contact_name: Said<String>,
    /// `contact_phone`: the caregiver's number.
    pub contact_phone: Said<E164>,
    /// `contact_relation`: who the caregiver is to the patient ("mother"), free text.
    pub contact_relation: Said<String>,
}

/// What a row's optional column says about a value stored on the patient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Said<T> {
    /// The file has no such column: the stored value stays.
    #[default]
    Nothing,
    /// The cell is empty: the stored value is cleared.
    Cleared,
    /// The cell's value.
    Value(T),
}

impl<T: Clone> Said<T> {
    /// The value once the row is applied over what is stored.
    pub fn over(&self, stored: Option<&T>) -> Option<T> {
        match self {
            Self::Nothing => stored.cloned(),
            Self::Cleared => None,
            Self::Value(v) => Some(v.clone()),
        }
    }
}

impl<T> Said<T> {
    /// The cell's value, if it has one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Nothing | Self::Cleared => None,
        }
    }
}

/// A whole file, read.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// Valid rows (empty when there are errors: nothing is imported from a bad file).
    pub rows: Vec<ImportRow>,
    /// Every problem found.
    pub errors: Vec<RowError>,
    /// Data rows read (blank lines excluded).
    pub rows_read: usize,
    /// sha256 of the bytes, hex.
    pub checksum: String,
    /// The rows without a problem when other rows have one (empty when the file itself could
    /// not be read, or has no error): what a partial import, where a clinic allows it, takes.
    pub sound: Vec<ImportRow>,
    /// Every clinic the file's rows name (or the one chosen for them), known or not.
    pub clinics: BTreeSet<String>,
}

/// What the import did or, for a dry-run, would do.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The file as named on the command line.
    pub file: String,
    /// Data rows.
    pub rows: usize,
    /// Appointments created.
    pub new: usize,
    /// Appointments changed.
    pub updated: usize,
    /// Appointments cancelled.
    pub cancelled: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Every bad row; non-empty means nothing was written.
    pub errors: Vec<RowError>,
    /// Notable changes (moves, cancellations, reinstatements) for people to review.
    #[serde(skip)]
    pub changes: Vec<Change>,
    /// Nothing was written because this was a dry-run.
    #[serde(skip)]
    pub dry_run: bool,
    /// What each valid row does, in file order (the browser preview's table).
    #[serde(skip)]
    pub outcomes: Vec<RowOutcome>,
    /// Reasons to look twice before confirming (moves into the past, an old export).
    #[serde(skip)]
    pub warnings: Vec<Warning>,
    /// Patients who get a booking message for a new appointment once this is imported
    /// (`None`: booking messages are off).
    pub booking_messages: Option<usize>,
    /// Statuses set at the desk that the import left alone, as staff chose.
    pub kept: usize,
    /// Rows with a problem that a partial import leaves out (their appointments unchanged).
    pub left_out: Vec<RowError>,
}

/// What one valid row does to the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    /// A new appointment.
    New,
    /// An appointment (or its patient) changes.
    Updated,
    /// A booked appointment is cancelled.
    Cancelled,
    /// Nothing changes.
    Unchanged,
}

impl RowOutcome {
    /// The word staff see.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Updated => "updated",
            Self::Cancelled => "cancelled",
            Self::Unchanged => "unchanged",
        }
    }
}

impl ImportReport {
    /// A report for a file that could not be imported.
    pub fn rejected(file: &str, rows: usize, errors: Vec<RowError>) -> Self {
        Self {
            file: file.to_string(),
            rows,
            new: 0,
            updated: 0,
            cancelled: 0,
            unchanged: 0,
            errors,
            changes: Vec::new(),
            dry_run: false,
            outcomes: Vec::new(),
            warnings: Vec::new(),
            booking_messages: None,
            kept: 0,
            left_out: Vec::new(),
        }
    }

    /// The rows an accepted import applied, in file order, beside [`ImportReport::outcomes`].
    pub fn applied_rows<'p>(&self, parsed: &'p ParsedFile) -> &'p [ImportRow] {
        if self.left_out.is_empty() {
            &parsed.rows
        } else {
            &parsed.sound
        }
    }

    /// A digest of everything the import does (every row's outcome and every notable
    /// change): equal fingerprints mean a preview still describes what confirming would do.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for (i, o) in self.outcomes.iter().enumerate() {
            h.update(format!("{i}:{}\n", o.as_str()));
        }
        for c in &self.changes {
            h.update(format!(
                "{:?}:{}:{}:{:?}:{:?}:{:?}:{:?}\n",
                c.row, c.clinic, c.appointment_id, c.kind, c.response, c.undoes, c.kept
            ));
        }
        for e in &self.left_out {
            h.update(format!("left out {}:{}:{}\n", e.row, e.column, e.message));
        }
        h.update(format!(
            "{:?} {:?} {}\n",
            self.warnings, self.booking_messages, self.kept
        ));
        h.update(format!(
            "{} {} {} {} {}",
            self.rows, self.new, self.updated, self.cancelled, self.unchanged
        ));
        format!("{:x}", h.finalize())
    }
}

/// A change to an existing appointment worth showing to staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Spreadsheet row (none for appointments cancelled because a `--complete` file lacks them).
    pub row: Option<usize>,
    /// Clinic key.
    pub clinic: String,
    /// The clinic system's appointment id.
    pub appointment_id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The patient's name.
    pub patient: String,
    /// When the appointment is (after the change).
    pub starts_at: DateTime<Utc>,
    /// What the patient had answered before the import.
    pub response: Response,
    /// What people had done that this change reverses.
    pub undoes: Vec<Undo>,
    /// A status set at the desk that staff chose to keep (the file would have reversed it).
    pub kept: Option<SetBy>,
}

/// A status and the staff member who set it at the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetBy {
    /// The status.
    pub status: Status,
    /// The staff member's name.
    pub by: String,
}

/// The kinds of [`Change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Moved from one start to another.
    Rescheduled {
        /// Old start.
        from: DateTime<Utc>,
        /// New start.
        to: DateTime<Utc>,
    },
    /// Cancelled by the file's status column.
    Cancelled,
    /// Cancelled because a `--complete` file does not list it.
    CancelledMissing,
    /// A cancelled appointment is booked again.
    Reinstated,
    /// Nothing changes: the file would have reversed a status set at the desk, which staff
    /// chose to keep.
    Kept,
}

/// How an import is applied.
#[derive(Debug, Clone)]
pub struct ApplyOptions<'a> {
    /// As named on the command line; used in reports and audit rows.
    pub file_name: &'a str,
    /// The file is the whole schedule for its clinics and dates.
    pub complete: bool,
    /// Compute everything, write nothing.
    pub dry_run: bool,
    /// Who imports (`cli`, or a staff user).
    pub imported_by: &'a str,
    /// The import's time stamp.
    pub now: DateTime<Utc>,
}

/// An import applied inside its still-open transaction: the caller adds what its use case
/// needs to the same transaction (the desk settles its preview and audits the confirm), then
/// commits; dropping it writes nothing.
pub struct Applied<'c> {
    /// What the import does (or, for a rejected file, why it cannot).
    pub report: ImportReport,
    /// The open transaction and the import's row id; `None` for a rejected file.
    pub open: Option<(crate::store::ImportTx<'c>, i64)>,
}

impl Applied<'_> {
    /// Commits the import and hands back its report.
    pub fn commit(self) -> Result<ImportReport, StoreError> {
        if let Some((tx, _)) = self.open {
            tx.commit()?;
        }
        Ok(self.report)
    }
}

/// What the caller chose on the command line.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// Clinic for rows that do not name one (and the only clinic allowed in the file).
    pub clinic: Option<&'a str>,
    /// Named import format (`[import.formats.NAME]`).
    pub format: Option<&'a str>,
    /// Who reads the row errors, which decides how a fix is worded.
    pub audience: Audience,
    /// Now, for the rule that an outcome (completed, no_show) is for a time that has passed;
    /// `None` skips that check.
    pub now: Option<DateTime<Utc>>,
}

/// Who reads an import's problems: the administrator at a terminal can change
/// `reminders.toml` and the command line; a receptionist at the desk can do neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Audience {
    /// `reminderd import`: advice may name config keys and options.
    #[default]
    Cli,
    /// The desk's upload page: advice names what is on the page, or the administrator.
    Desk,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The options name something not configured.
    #[error("{0}")]
    Options(String),
    /// Writing failed; nothing was imported.
    #[error(transparent)]
    Store(#[from] StoreError),
}
