//! Front-desk CSV import: read and validate every row, then apply all of them in one
//! transaction or none.
//!
//! [`parse`] is pure (bytes in, rows or row errors out) so the same checks serve the CLI, the
//! browser upload and the property tests. [`apply`] compares the rows with what is stored and
//! writes the differences through [`crate::store::ImportTx`]; a dry-run runs the very same
//! code and drops the transaction instead of committing it.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{Clinic, Config, ImportFormat};
use crate::phone::{E164, PhoneError, Region};
use crate::store::{
    AppointmentWrite, AuditEntry, CancelledBy, ImportCounts, ImportTx, Status, Store, StoreError,
    StoredAppointment, StoredPatient,
};
use crate::time::{LocalTimeError, local_day_bounds, local_to_utc};

/// Longest id or name accepted; longer values are almost always a broken export.
const MAX_TEXT: usize = 200;

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
}

/// Whether a row books or cancels its appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    /// The appointment is going ahead.
    Booked,
    /// The clinic cancelled it.
    Cancelled,
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
    /// Set when a previewed upload was confirmed but the schedule changed since its preview:
    /// nothing was written and the report shows what the file would do now.
    #[serde(skip)]
    pub preview_outdated: bool,
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
            preview_outdated: false,
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
                "{:?}:{}:{}:{:?}\n",
                c.row, c.clinic, c.appointment_id, c.kind
            ));
        }
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
    /// Confirming a browser preview: applied only if the preview is still undecided and
    /// the file still does exactly what was previewed; both checked in the import's own
    /// transaction, so a second confirm writes nothing.
    pub preview: Option<PreviewCheck<'a>>,
}

/// The preview an import confirms.
#[derive(Debug, Clone, Copy)]
pub struct PreviewCheck<'a> {
    /// The preview's token.
    pub token: &'a str,
    /// [`ImportReport::fingerprint`] of the preview.
    pub fingerprint: &'a str,
}

/// What the caller chose on the command line.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions<'a> {
    /// Clinic for rows that do not name one (and the only clinic allowed in the file).
    pub clinic: Option<&'a str>,
    /// Named import format (`[import.formats.NAME]`).
    pub format: Option<&'a str>,
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
    /// The preview was already confirmed or discarded; nothing was written this time.
    #[error("this upload was already {0}; nothing more was imported")]
    AlreadyDecided(String),
}

// ---- reading ------------------------------------------------------------------------------

/// The fields, in the order columns are checked and errors reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    AppointmentId,
    PatientId,
    PatientName,
    Phone,
    Language,
    Date,
    Time,
    DurationMin,
    Provider,
    Clinic,
    Status,
}

const FIELDS: [Field; 11] = [
    Field::AppointmentId,
    Field::PatientId,
    Field::PatientName,
    Field::Phone,
    Field::Language,
    Field::Date,
    Field::Time,
    Field::DurationMin,
    Field::Provider,
    Field::Clinic,
    Field::Status,
];

impl Field {
    fn header(self, f: &ImportFormat) -> &str {
        let c = &f.columns;
        match self {
            Self::AppointmentId => &c.appointment_id,
            Self::PatientId => &c.patient_id,
            Self::PatientName => &c.patient_name,
            Self::Phone => &c.phone,
            Self::Language => &c.language,
            Self::Date => &c.date,
            Self::Time => &c.time,
            Self::DurationMin => &c.duration_min,
            Self::Provider => &c.provider,
            Self::Clinic => &c.clinic,
            Self::Status => &c.status,
        }
    }

    fn optional(self) -> bool {
        matches!(
            self,
            Self::Language | Self::DurationMin | Self::Provider | Self::Status | Self::Clinic
        )
    }
}

/// Reads a CSV file's bytes. Returns every row error found; rows are only returned when there
/// are none, so a caller can never import half a file.
pub fn parse(
    bytes: &[u8],
    config: &Config,
    opts: &ParseOptions<'_>,
) -> Result<ParsedFile, ImportError> {
    let mut out = parse_file(bytes, config, opts)?;
    for e in &mut out.errors {
        e.column = shown_cell(&e.column);
        e.value = shown_cell(&e.value);
    }
    Ok(out)
}

/// Longest part of a cell or header name that reports show (the rest is cut with "…").
const SHOWN_CHARS: usize = 40;

/// A cell or header name as reports show it: control characters escaped (a file must not
/// drive the terminal it is reported to) and cut at `SHOWN_CHARS` characters (nor flood it).
pub fn shown_cell(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_file(
    bytes: &[u8],
    config: &Config,
    opts: &ParseOptions<'_>,
) -> Result<ParsedFile, ImportError> {
    if let Some(c) = opts.clinic
        && config.clinic(c).is_none()
    {
        return Err(ImportError::Options(config.unknown_clinic(c)));
    }
    let format = config
        .import_format(opts.format, opts.clinic)
        .map_err(ImportError::Options)?;
    let checksum = format!("{:x}", Sha256::digest(bytes));
    let mut out = ParsedFile {
        checksum,
        ..ParsedFile::default()
    };

    let text = match decode(bytes) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(e);
            return Ok(out);
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(detect_delimiter(text))
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();

    let header = match records.next() {
        None => {
            out.errors.push(RowError {
                row: 1,
                column: String::new(),
                value: String::new(),
                message: "the file is empty; export the schedule with its header row".into(),
            });
            return Ok(out);
        }
        Some(Err(e)) => {
            out.errors.push(csv_error(1, &e));
            return Ok(out);
        }
        Some(Ok(h)) => h,
    };
    let Some(columns) = map_header(&header, format, opts.clinic.is_some(), &mut out.errors) else {
        return Ok(out);
    };

    let mut cells: Vec<RawRow> = Vec::new();
    // Rows are numbered as a spreadsheet shows them: a blank line is a row, a quoted cell with
    // line breaks is one. The csv crate's line count gets both wrong (it counts breaks inside
    // quotes and skips blank lines; found by tests/it/props.rs), so count from byte positions.
    let mut rows = RowCounter::new(text, &header);
    for rec in records {
        match rec {
            Err(e) => {
                let row = e
                    .position()
                    .map_or(0, |p| rows.row_at(p.byte() as usize, None));
                out.errors.push(csv_error(row, &e));
            }
            Ok(r) => {
                let row = r
                    .position()
                    .map_or(0, |p| rows.row_at(p.byte() as usize, Some(&r)));
                if r.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                cells.push(RawRow { row, record: r });
            }
        }
    }
    out.rows_read = cells.len();
    if cells.is_empty() && out.errors.is_empty() {
        out.errors.push(RowError {
            row: 2,
            column: String::new(),
            value: String::new(),
            message: "the file has a header but no appointments".into(),
        });
    }

    let phones = normalize_phones(&cells, &columns, config, opts.clinic);
    let mut rows = Vec::with_capacity(cells.len());
    for raw in &cells {
        if let Some(r) = read_row(
            raw,
            &columns,
            format,
            config,
            opts.clinic,
            &phones,
            &mut out.errors,
        ) {
            rows.push(r);
        }
    }
    check_across_rows(&rows, &columns, &mut out.errors);
    out.errors.sort_by_key(|e| e.row);
    if out.errors.is_empty() {
        out.rows = rows;
    }
    Ok(out)
}

/// Spreadsheet row numbers from byte offsets: the line breaks between one record's start and
/// the next, less the breaks inside the earlier record's cells.
struct RowCounter<'t> {
    text: &'t [u8],
    pos: usize,
    row: usize,
    inside: usize,
}

impl<'t> RowCounter<'t> {
    fn new(text: &'t str, header: &csv::StringRecord) -> Self {
        let bytes = text.as_bytes();
        let mut start = header
            .position()
            .map_or(0, |p| p.byte() as usize)
            .min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        let before = bytes[..start.min(bytes.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        Self {
            text: bytes,
            pos: start,
            row: before + 1,
            inside: breaks_in(header),
        }
    }

    /// The row of the record starting at `byte`; `record` is it, when it parsed.
    fn row_at(&mut self, byte: usize, record: Option<&csv::StringRecord>) -> usize {
        // csv reports where it started reading, before any blank lines it skipped.
        let mut byte = byte.min(self.text.len());
        while byte < self.text.len() && matches!(self.text[byte], b'\n' | b'\r') {
            byte += 1;
        }
        let end = byte.max(self.pos);
        let breaks = self.text[self.pos..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.row += breaks.saturating_sub(self.inside);
        self.pos = end;
        self.inside = record.map_or(0, breaks_in);
        self.row
    }
}

fn breaks_in(record: &csv::StringRecord) -> usize {
    record.iter().map(|c| c.matches('\n').count()).sum()
}

struct RawRow {
    row: usize,
    record: csv::StringRecord,
}

/// Column index and header text (as written in the file) of each field.
struct Columns {
    index: [Option<(usize, String)>; 11],
}

impl Columns {
    fn get<'r>(&self, f: Field, r: &'r RawRow) -> &'r str {
        self.index[f as usize]
            .as_ref()
            .and_then(|(i, _)| r.record.get(*i))
            .map_or("", str::trim)
    }

    fn name(&self, f: Field, format: &ImportFormat) -> String {
        self.index[f as usize]
            .as_ref()
            .map_or_else(|| f.header(format).to_string(), |(_, h)| h.clone())
    }

    fn header_of(&self, f: Field) -> &str {
        self.index[f as usize]
            .as_ref()
            .map_or("", |(_, h)| h.as_str())
    }
}

/// Strips a UTF-8 byte-order mark and checks the encoding, pointing at the first bad row.
fn decode(bytes: &[u8]) -> Result<&str, RowError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        // Lines before the bad byte, plus the one it is on.
        let row = bytes[..at].split(|b| *b == b'\n').count();
        RowError {
            row,
            column: String::new(),
            value: String::new(),
            message: "the file is not UTF-8 text; in your spreadsheet choose \"Save as\" → \"CSV UTF-8\" and import that file".into(),
        }
    })
}

/// Picks `,`, `;` or tab: whichever occurs most in the header line outside quotes.
fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '\n' if !quoted => break,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    [b',', b';', b'\t'][best]
}

fn csv_error(row: usize, e: &csv::Error) -> RowError {
    RowError {
        row: row.max(1),
        column: String::new(),
        value: String::new(),
        message: format!(
            "this row cannot be read as CSV ({e}); check for a stray quote (\") in it"
        ),
    }
}

fn map_header(
    header: &csv::StringRecord,
    format: &ImportFormat,
    clinic_given: bool,
    errors: &mut Vec<RowError>,
) -> Option<Columns> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let norm = h.trim().to_lowercase();
        if norm.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(norm, i) {
            errors.push(RowError {
                row: 1,
                column: h.trim().to_string(),
                value: h.trim().to_string(),
                message: format!(
                    "the header \"{}\" appears in columns {} and {}; rename or delete one of them",
                    shown_cell(h.trim()),
                    column_letter(first),
                    column_letter(i)
                ),
            });
        }
    }
    let mut index: [Option<(usize, String)>; 11] = Default::default();
    let found: Vec<String> = header
        .iter()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(shown_cell)
        .collect();
    for f in FIELDS {
        let want = f.header(format).trim().to_lowercase();
        match seen.get(&want) {
            Some(&i) => index[f as usize] = Some((i, header.get(i).unwrap_or("").trim().to_string())),
            None if f.optional() && (f != Field::Clinic || clinic_given) => {}
            None => errors.push(RowError {
                row: 1,
                column: f.header(format).to_string(),
                value: String::new(),
                message: format!(
                    "the file has no column named {:?}{}; the header row has: {}. Rename the column, or map it under [import.columns] in reminders.toml",
                    f.header(format),
                    if f == Field::Clinic { " (or import with --clinic KEY)" } else { "" },
                    if found.is_empty() { "(nothing)".to_string() } else { found.join(", ") }
                ),
            }),
        }
    }
    if errors.is_empty() {
        Some(Columns { index })
    } else {
        None
    }
}

/// Spreadsheet column letter of a 0-based index: 0 → A, 26 → AA.
fn column_letter(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// The clinic key a row belongs to, if it can be told.
fn row_clinic<'a>(raw: &'a RawRow, columns: &Columns, forced: Option<&'a str>) -> Option<String> {
    let v = columns.get(Field::Clinic, raw);
    if v.is_empty() {
        forced.map(str::to_string)
    } else {
        Some(v.to_lowercase())
    }
}

/// Parses each distinct (region, written number) once, spread over the cores: patients
/// repeat across rows, and a numbering-plan check costs microseconds.
fn normalize_phones(
    cells: &[RawRow],
    columns: &Columns,
    config: &Config,
    forced: Option<&str>,
) -> HashMap<(Region, String), Result<E164, PhoneError>> {
    let mut distinct: HashSet<(Region, &str)> = HashSet::new();
    for raw in cells {
        let region = row_clinic(raw, columns, forced)
            .and_then(|c| config.clinic(&c).map(|c| c.phone_region));
        if let Some(region) = region {
            distinct.insert((region, columns.get(Field::Phone, raw)));
        }
    }
    let work: Vec<(Region, &str)> = distinct.into_iter().collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = work.len().div_ceil(threads).max(1024);
    std::thread::scope(|s| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(region, raw)| ((region, raw.to_string()), E164::parse(raw, region)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn read_row(
    raw: &RawRow,
    columns: &Columns,
    format: &ImportFormat,
    config: &Config,
    forced: Option<&str>,
    phones: &HashMap<(Region, String), Result<E164, PhoneError>>,
    errors: &mut Vec<RowError>,
) -> Option<ImportRow> {
    let before = errors.len();
    let mut err = |f: Field, value: &str, message: String| {
        errors.push(RowError {
            row: raw.row,
            column: columns.name(f, format),
            value: value.to_string(),
            message,
        });
    };
    let get = |f: Field| columns.get(f, raw);

    let clinic: Option<&Clinic> = {
        let v = get(Field::Clinic);
        match (v.is_empty(), forced) {
            (true, Some(c)) => config.clinic(c),
            (true, None) => {
                err(
                    Field::Clinic,
                    v,
                    "no clinic given; fill in the clinic column or import with --clinic KEY".into(),
                );
                None
            }
            (false, _) => match config.clinic(&v.to_lowercase()) {
                Some(c) if forced.is_some_and(|f| f != c.key) => {
                    err(
                        Field::Clinic,
                        v,
                        format!(
                            "this file is being imported for clinic {:?} but this row is for {:?}; import it without --clinic, or fix the row",
                            forced.unwrap_or_default(),
                            c.key
                        ),
                    );
                    None
                }
                Some(c) => Some(c),
                None => {
                    err(
                        Field::Clinic,
                        v,
                        format!(
                            "unknown clinic; use one of: {}",
                            config
                                .clinics
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    None
                }
            },
        }
    };

    let mut text = |f: Field, required: bool| -> Option<String> {
        let v = get(f);
        if v.is_empty() {
            if required {
                err(
                    f,
                    v,
                    format!("{} is missing; every appointment needs one", describe(f)),
                );
            }
            return None;
        }
        if v.chars().count() > MAX_TEXT {
            err(
                f,
                &v.chars().take(40).collect::<String>(),
                format!("is longer than {MAX_TEXT} characters; is this the right column?"),
            );
            return None;
        }
        if v.chars().any(char::is_control) {
            err(
                f,
                v,
                "contains a line break or control character; remove it".into(),
            );
            return None;
        }
        Some(v.to_string())
    };
    let appointment_id = text(Field::AppointmentId, true);
    let patient_id = text(Field::PatientId, true);
    let patient_name = text(Field::PatientName, true);
    let provider = text(Field::Provider, false);

    let phone = clinic.and_then(|c| {
        let v = get(Field::Phone);
        match phones.get(&(c.phone_region, v.to_string())) {
            Some(Ok(p)) => Some(p.clone()),
            Some(Err(e)) => {
                let hint = match e {
                    PhoneError::Empty => "every patient needs a mobile number for WhatsApp".to_string(),
                    _ => format!(
                        "write the full mobile number, with the country code if it is not a {} number (e.g. {})",
                        c.phone_region,
                        example_number(c.phone_region)
                    ),
                };
                err(Field::Phone, v, format!("{e}; {hint}"));
                None
            }
            None => None,
        }
    });

    let language = {
        let v = get(Field::Language);
        if v.is_empty() {
            clinic.map(|c| c.default_language.clone())
        } else if let Some(l) = normalize_language(v) {
            Some(l)
        } else {
            err(Field::Language, v, "is not a language; write a code such as en, hi, mr or es (or a name such as English, Hindi)".into());
            None
        }
    };

    let date = {
        let v = get(Field::Date);
        if v.is_empty() {
            err(
                Field::Date,
                v,
                format!(
                    "the date is missing; write it as {}",
                    example(&format.date_formats, true)
                ),
            );
            None
        } else {
            let d = format
                .date_formats
                .iter()
                .find_map(|p| NaiveDate::parse_from_str(v, p).ok());
            if d.is_none() {
                err(
                    Field::Date,
                    v,
                    format!(
                        "is not a date; write it as {}",
                        example(&format.date_formats, true)
                    ),
                );
            }
            d
        }
    };
    let time = {
        let v = get(Field::Time);
        if v.is_empty() {
            err(
                Field::Time,
                v,
                format!(
                    "the time is missing; write it as {}",
                    example(&format.time_formats, false)
                ),
            );
            None
        } else {
            let t = format.time_formats.iter().find_map(|p| {
                NaiveTime::parse_from_str(v, p)
                    .or_else(|_| NaiveTime::parse_from_str(&v.to_uppercase(), p))
                    .ok()
            });
            if t.is_none() {
                err(
                    Field::Time,
                    v,
                    format!(
                        "is not a time of day; write it as {}",
                        example(&format.time_formats, false)
                    ),
                );
            }
            t
        }
    };
    let starts_at = match (clinic, date, time) {
        (Some(c), Some(d), Some(t)) => match local_to_utc(c.time_zone, d, t) {
            Ok(s) => Some(s),
            Err(e @ LocalTimeError::Gap { .. }) => {
                err(
                    Field::Time,
                    get(Field::Time),
                    format!("{e}; check the time with the clinic's system"),
                );
                None
            }
        },
        _ => None,
    };

    let duration_min = {
        let v = get(Field::DurationMin);
        if v.is_empty() {
            clinic.map(|c| c.default_duration_min)
        } else {
            match v.parse::<u32>() {
                Ok(n) if (1..=24 * 60).contains(&n) => Some(n),
                _ => {
                    err(
                        Field::DurationMin,
                        v,
                        "is not a length in minutes; write a whole number from 1 to 1440, e.g. 30"
                            .into(),
                    );
                    None
                }
            }
        }
    };

    let status = {
        let v = get(Field::Status);
        match v.to_lowercase().as_str() {
            "" | "booked" | "scheduled" => Some(RowStatus::Booked),
            "cancelled" | "canceled" => Some(RowStatus::Cancelled),
            _ => {
                err(Field::Status, v, "is not a status reminderd knows; write booked or cancelled (or leave it empty for booked)".into());
                None
            }
        }
    };

    if errors.len() > before {
        return None;
    }
    let c = clinic?;
    Some(ImportRow {
        row: raw.row,
        clinic: c.key.clone(),
        appointment_id: appointment_id?,
        patient_id: patient_id?,
        patient_name: patient_name?,
        phone: phone?,
        language: language?,
        starts_at: starts_at?,
        local_date: date?,
        duration_min: duration_min?,
        provider,
        status: status?,
    })
}

fn describe(f: Field) -> &'static str {
    match f {
        Field::AppointmentId => "the appointment id",
        Field::PatientId => "the patient id",
        Field::PatientName => "the patient's name",
        _ => "the value",
    }
}

/// A sample value in the first configured pattern, for "write it as …" hints.
fn example(patterns: &[String], date: bool) -> String {
    let p = patterns
        .first()
        .map_or(if date { "%Y-%m-%d" } else { "%H:%M" }, String::as_str);
    if date {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .map(|d| d.format(p).to_string())
            .unwrap_or_default()
    } else {
        NaiveTime::from_hms_opt(14, 30, 0)
            .map(|t| t.format(p).to_string())
            .unwrap_or_default()
    }
}

fn example_number(region: Region) -> &'static str {
    match region.to_string().as_str() {
        "IN" => "98200 12345 or +91 98200 12345",
        "US" | "CA" => "(212) 555-0142 or +1 212 555 0142",
        "GB" => "07911 123456 or +44 7911 123456",
        _ => "+<country code> <number>",
    }
}

/// Duplicate appointment ids, and patients whose details differ between rows.
fn check_across_rows(rows: &[ImportRow], columns: &Columns, errors: &mut Vec<RowError>) {
    let mut appointments: HashMap<(&str, &str), usize> = HashMap::new();
    let mut patients: HashMap<(&str, &str), &ImportRow> = HashMap::new();
    for r in rows {
        if let Some(first) = appointments.insert((&r.clinic, &r.appointment_id), r.row) {
            errors.push(RowError {
                row: r.row,
                column: columns.header_of(Field::AppointmentId).to_string(),
                value: r.appointment_id.clone(),
                message: format!(
                    "appointment {:?} is already on row {first}; each appointment may appear once",
                    r.appointment_id
                ),
            });
        }
        match patients.get(&(r.clinic.as_str(), r.patient_id.as_str())) {
            None => {
                patients.insert((&r.clinic, &r.patient_id), r);
            }
            Some(p) => {
                let (field, mine, theirs) = if p.phone != r.phone {
                    (Field::Phone, r.phone.as_str(), p.phone.as_str())
                } else if p.patient_name != r.patient_name {
                    (
                        Field::PatientName,
                        r.patient_name.as_str(),
                        p.patient_name.as_str(),
                    )
                } else if p.language != r.language {
                    (Field::Language, r.language.as_str(), p.language.as_str())
                } else {
                    continue;
                };
                let shown = |v: &str| {
                    if field == Field::Phone {
                        crate::phone::mask(v)
                    } else {
                        v.to_string()
                    }
                };
                errors.push(RowError {
                    row: r.row,
                    column: columns.header_of(field).to_string(),
                    value: shown(mine),
                    message: format!(
                        "patient {:?} has {} on row {}; one patient must have the same name, phone and language on every row",
                        r.patient_id,
                        shown(theirs),
                        p.row
                    ),
                });
            }
        }
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

// ---- applying -----------------------------------------------------------------------------

/// Writes a parsed file into the store in one transaction (rolled back for a dry-run).
pub fn apply(
    store: &mut Store,
    config: &Config,
    parsed: &ParsedFile,
    opts: &ApplyOptions<'_>,
) -> Result<ImportReport, ImportError> {
    if !parsed.errors.is_empty() {
        return Ok(ImportReport::rejected(
            opts.file_name,
            parsed.rows_read,
            parsed.errors.clone(),
        ));
    }
    let tx = store.begin_import()?;
    let actor = format!("import:{}", opts.file_name);
    let clinic_keys: BTreeSet<&str> = parsed.rows.iter().map(|r| r.clinic.as_str()).collect();
    let mut clinic_ids = HashMap::new();
    for k in &clinic_keys {
        clinic_ids.insert(*k, tx.clinic_id(k)?);
    }
    let ids: Vec<i64> = clinic_ids.values().copied().collect();
    let import_id = tx.start_import(
        opts.file_name,
        &parsed.checksum,
        opts.complete,
        opts.imported_by,
        &ids,
        opts.now,
    )?;

    let mut state = ApplyState {
        tx: &tx,
        actor: &actor,
        import_id,
        now: opts.now,
        counts: ImportCounts {
            rows: parsed.rows.len(),
            ..ImportCounts::default()
        },
        changes: Vec::new(),
        outcomes: Vec::with_capacity(parsed.rows.len()),
    };
    for key in &clinic_keys {
        let clinic_id = clinic_ids[key];
        let mut patients = tx.patients_of(clinic_id)?;
        let mut appointments = tx.appointments_of(clinic_id)?;
        let rows: Vec<&ImportRow> = parsed.rows.iter().filter(|r| r.clinic == *key).collect();
        for row in &rows {
            state.apply_row(clinic_id, row, &mut patients, &mut appointments)?;
        }
        if opts.complete {
            let zone = config.clinic(key).map_or(chrono_tz::UTC, |c| c.time_zone);
            state.cancel_missing(key, zone, &rows, &appointments)?;
        }
    }
    let ApplyState {
        counts,
        changes,
        outcomes,
        ..
    } = state;
    tx.finish_import(import_id, &counts)?;
    // Rows were applied clinic by clinic; staff read them in file order.
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|(row, _)| *row);
    let mut report = ImportReport {
        file: opts.file_name.to_string(),
        rows: counts.rows,
        new: counts.new,
        updated: counts.updated,
        cancelled: counts.cancelled,
        unchanged: counts.unchanged,
        errors: Vec::new(),
        changes,
        dry_run: opts.dry_run,
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        preview_outdated: false,
    };
    if let Some(p) = opts.preview.filter(|_| !opts.dry_run) {
        if report.fingerprint() != p.fingerprint {
            drop(tx);
            report.preview_outdated = true;
            report.dry_run = true;
            return Ok(report);
        }
        if let Err(decided) = tx.settle_preview(p.token, import_id, opts.now)? {
            return Err(ImportError::AlreadyDecided(decided));
        }
    }
    if opts.dry_run {
        drop(tx);
    } else {
        tx.commit()?;
    }
    Ok(report)
}

struct ApplyState<'t, 'c> {
    tx: &'t ImportTx<'c>,
    actor: &'t str,
    import_id: i64,
    now: DateTime<Utc>,
    counts: ImportCounts,
    changes: Vec<Change>,
    /// (spreadsheet row, outcome) per valid row.
    outcomes: Vec<(usize, RowOutcome)>,
}

/// What one row does to a stored appointment; decided without touching the store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    status: Status,
    cancelled_by: Option<CancelledBy>,
    moved: bool,
    kind: Option<ChangeKind>,
}

/// The rule that keeps the schedule and the patient's answer apart: the file decides the
/// schedule, except that it cannot undo a patient's cancellation or staff's final status
/// unless the appointment moved (then it is, in effect, a new booking).
fn decide(existing: &StoredAppointment, row: &ImportRow) -> Decision {
    let moved = existing.starts_at != row.starts_at;
    let keep = Decision {
        status: existing.status,
        cancelled_by: existing.cancelled_by,
        moved,
        kind: moved.then_some(ChangeKind::Rescheduled {
            from: existing.starts_at,
            to: row.starts_at,
        }),
    };
    match (row.status, existing.status) {
        (RowStatus::Cancelled, Status::Booked) => Decision {
            status: Status::Cancelled,
            cancelled_by: Some(CancelledBy::Source),
            moved,
            kind: Some(ChangeKind::Cancelled),
        },
        (RowStatus::Booked, Status::Cancelled)
            if moved || existing.cancelled_by != Some(CancelledBy::Patient) =>
        {
            Decision {
                status: Status::Booked,
                cancelled_by: None,
                moved,
                kind: Some(keep.kind.unwrap_or(ChangeKind::Reinstated)),
            }
        }
        (RowStatus::Booked, Status::Completed | Status::NoShow) if moved => Decision {
            status: Status::Booked,
            cancelled_by: None,
            moved,
            kind: keep.kind,
        },
        _ => keep,
    }
}

impl ApplyState<'_, '_> {
    fn apply_row(
        &mut self,
        clinic_id: i64,
        row: &ImportRow,
        patients: &mut HashMap<String, StoredPatient>,
        appointments: &mut HashMap<String, StoredAppointment>,
    ) -> Result<(), StoreError> {
        let mut patient_changed = false;
        let patient_id = match patients.get_mut(&row.patient_id) {
            Some(p) => {
                if p.name != row.patient_name || p.phone != row.phone || p.language != row.language
                {
                    if p.phone != row.phone {
                        self.tx.audit(
                            &AuditEntry {
                                appointment_id: None,
                                patient_id: Some(p.id),
                                actor: self.actor,
                                action: "phone_changed",
                                old_value: Some(p.phone.to_string()),
                                new_value: Some(row.phone.to_string()),
                                reason: Some(format!("row {}", row.row)),
                            },
                            self.now,
                        )?;
                    }
                    self.tx.update_patient(
                        p.id,
                        &row.patient_name,
                        &row.phone,
                        &row.language,
                        self.now,
                    )?;
                    p.name.clone_from(&row.patient_name);
                    p.phone = row.phone.clone();
                    p.language.clone_from(&row.language);
                    patient_changed = true;
                }
                p.id
            }
            None => {
                let id = self.tx.insert_patient(
                    clinic_id,
                    &row.patient_id,
                    &row.patient_name,
                    &row.phone,
                    &row.language,
                    self.actor,
                    self.now,
                )?;
                patients.insert(
                    row.patient_id.clone(),
                    StoredPatient {
                        id,
                        name: row.patient_name.clone(),
                        phone: row.phone.clone(),
                        language: row.language.clone(),
                    },
                );
                id
            }
        };

        let Some(existing) = appointments.get_mut(&row.appointment_id) else {
            let (status, cancelled_by) = match row.status {
                RowStatus::Booked => (Status::Booked, None),
                RowStatus::Cancelled => (Status::Cancelled, Some(CancelledBy::Source)),
            };
            let write = AppointmentWrite {
                patient_id,
                provider: row.provider.as_deref(),
                starts_at: row.starts_at,
                duration_min: row.duration_min,
                status,
                cancelled_by,
            };
            let id = self.tx.insert_appointment(
                clinic_id,
                &row.appointment_id,
                &write,
                self.import_id,
                self.now,
            )?;
            appointments.insert(
                row.appointment_id.clone(),
                StoredAppointment {
                    id,
                    patient_id,
                    provider: row.provider.clone(),
                    starts_at: row.starts_at,
                    duration_min: row.duration_min,
                    status,
                    cancelled_by,
                    response: crate::store::Response::None,
                },
            );
            self.counts.new += 1;
            self.outcomes.push((row.row, RowOutcome::New));
            return Ok(());
        };

        let d = decide(existing, row);
        let status_changed = d.status != existing.status;
        let details_changed = existing.patient_id != patient_id
            || existing.provider != row.provider
            || existing.duration_min != row.duration_min;
        if !(d.moved || status_changed || details_changed) {
            if patient_changed {
                self.counts.updated += 1;
                self.outcomes.push((row.row, RowOutcome::Updated));
            } else {
                self.counts.unchanged += 1;
                self.outcomes.push((row.row, RowOutcome::Unchanged));
            }
            return Ok(());
        }
        let write = AppointmentWrite {
            patient_id,
            provider: row.provider.as_deref(),
            starts_at: row.starts_at,
            duration_min: row.duration_min,
            status: d.status,
            cancelled_by: d.cancelled_by,
        };
        self.tx.update_appointment(
            existing.id,
            &write,
            status_changed,
            d.moved,
            self.import_id,
            self.now,
        )?;
        if d.moved {
            self.audit(
                existing.id,
                "reschedule",
                existing.starts_at.to_rfc3339(),
                row.starts_at.to_rfc3339(),
                row.row,
            )?;
        }
        if status_changed {
            let action = if d.status == Status::Cancelled {
                "cancel"
            } else {
                "reinstate"
            };
            self.audit(
                existing.id,
                action,
                existing.status.to_string(),
                d.status.to_string(),
                row.row,
            )?;
        }
        if d.status == Status::Cancelled && status_changed {
            self.counts.cancelled += 1;
            self.outcomes.push((row.row, RowOutcome::Cancelled));
        } else {
            self.counts.updated += 1;
            self.outcomes.push((row.row, RowOutcome::Updated));
        }
        if let Some(kind) = d.kind {
            self.changes.push(Change {
                row: Some(row.row),
                clinic: row.clinic.clone(),
                appointment_id: row.appointment_id.clone(),
                kind,
            });
        }
        existing.starts_at = row.starts_at;
        existing.status = d.status;
        existing.cancelled_by = d.cancelled_by;
        existing.patient_id = patient_id;
        existing.provider.clone_from(&row.provider);
        existing.duration_min = row.duration_min;
        if d.moved {
            existing.response = crate::store::Response::None;
        }
        Ok(())
    }

    fn audit(
        &self,
        appointment_id: i64,
        action: &str,
        old: String,
        new: String,
        row: usize,
    ) -> Result<(), StoreError> {
        self.tx.audit(
            &AuditEntry {
                appointment_id: Some(appointment_id),
                patient_id: None,
                actor: self.actor,
                action,
                old_value: Some(old),
                new_value: Some(new),
                reason: Some(format!("row {row}")),
            },
            self.now,
        )
    }

    /// `--complete`: booked appointments on the file's dates that the file does not list.
    fn cancel_missing(
        &mut self,
        clinic: &str,
        zone: chrono_tz::Tz,
        rows: &[&ImportRow],
        appointments: &HashMap<String, StoredAppointment>,
    ) -> Result<(), StoreError> {
        let listed: HashSet<&str> = rows.iter().map(|r| r.appointment_id.as_str()).collect();
        let days: Vec<(DateTime<Utc>, DateTime<Utc>)> = rows
            .iter()
            .map(|r| r.local_date)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|d| local_day_bounds(zone, d))
            .collect();
        let mut missing: Vec<(&String, &StoredAppointment)> = appointments
            .iter()
            .filter(|(ext, a)| {
                a.status == Status::Booked
                    && !listed.contains(ext.as_str())
                    && days
                        .iter()
                        .any(|(s, e)| a.starts_at >= *s && a.starts_at < *e)
            })
            .collect();
        missing.sort_by_key(|(ext, a)| (a.starts_at, (*ext).clone()));
        for (ext, a) in missing {
            let write = AppointmentWrite {
                patient_id: a.patient_id,
                provider: a.provider.as_deref(),
                starts_at: a.starts_at,
                duration_min: a.duration_min,
                status: Status::Cancelled,
                cancelled_by: Some(CancelledBy::Source),
            };
            self.tx
                .update_appointment(a.id, &write, true, false, self.import_id, self.now)?;
            self.tx.audit(
                &AuditEntry {
                    appointment_id: Some(a.id),
                    patient_id: None,
                    actor: self.actor,
                    action: "cancel",
                    old_value: Some(a.status.to_string()),
                    new_value: Some(Status::Cancelled.to_string()),
                    reason: Some("missing from a complete schedule file".into()),
                },
                self.now,
            )?;
            self.counts.cancelled += 1;
            self.changes.push(Change {
                row: None,
                clinic: clinic.to_string(),
                appointment_id: ext.clone(),
                kind: ChangeKind::CancelledMissing,
            });
        }
        Ok(())
    }
}
