//! Reading a file in bounded chunks: rows are read, checked and handed on `CHUNK_ROWS` at a
//! time, and only what later rows are checked against (each appointment's key, each
//! patient's first row) is held across chunks, as digests, so memory does not grow with the
//! rows' text.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::io::Read;

use sha2::{Digest, Sha256};

use super::row::read_row;
use super::text::{Input, RowCounter, TextCheck, Tracked};
use super::{
    Columns, Field, PhoneCache, RawRow, csv_error, map_header, normalize_phones, reach, row_clinic,
    sheet, shown_cell,
};
use crate::config::{Config, ImportFormat};
use crate::import::{ImportError, ImportRow, ParseOptions, ParsedFile, RowError};
use crate::store::{KnownRow, RowDigest};

/// Rows read, checked and handed on at a time: large enough that a chunk's phone numbers
/// keep both cores busy and its writes amortise their statements, small enough that a chunk
/// is a few megabytes.
pub const CHUNK_ROWS: usize = 4096;

/// Distinct written numbers kept parsed before the cache starts again (bounds its memory on
/// a file of millions of patients; a number seen again after that is parsed again).
const PHONE_CACHE_MAX: usize = 1 << 18;

/// How far a read has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Data rows read so far.
    pub rows: usize,
    /// Work done, out of `total` (bytes of a CSV file, rows of a spreadsheet).
    pub done: u64,
    /// All the work.
    pub total: u64,
}

/// What reading a whole file found, once every chunk's sound rows have been handed on.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Every problem found, in row order.
    pub errors: Vec<RowError>,
    /// Data rows read (blank lines excluded).
    pub rows_read: usize,
    /// sha256 of the bytes, hex.
    pub checksum: String,
    /// Every clinic the file's rows name (or the one chosen for them), known or not.
    pub clinics: BTreeSet<String>,
    /// Rows handed on: those without a problem.
    pub sound: usize,
}

impl Scan {
    /// Whether the sound rows could be imported without the bad ones: no problem is on the
    /// header row (or before any row), and some row is sound.
    pub fn partial_possible(&self) -> bool {
        self.sound > 0 && self.errors.iter().all(|e| e.row > 1)
    }

    /// The whole file's [`ParsedFile`], given the rows handed on.
    pub fn into_parsed(self, sound: Vec<ImportRow>) -> ParsedFile {
        let (rows, sound) = if self.errors.is_empty() {
            (sound, Vec::new())
        } else if self.partial_possible() {
            (Vec::new(), sound)
        } else {
            (Vec::new(), Vec::new())
        };
        ParsedFile {
            rows,
            errors: self.errors,
            rows_read: self.rows_read,
            checksum: self.checksum,
            sound,
            clinics: self.clinics,
        }
    }
}

/// Reads a file chunk by chunk, handing each chunk's sound rows (and how far the read has
/// got) to `each`, in file order. Reading runs on its own thread, a chunk ahead of `each`,
/// so checking the next chunk overlaps writing this one. An error from `each` stops the
/// read and is returned.
pub fn parse_chunks(
    input: Input<'_>,
    config: &Config,
    opts: &ParseOptions<'_>,
    mut each: impl FnMut(Vec<ImportRow>, Progress) -> Result<(), ImportError>,
) -> Result<Scan, ImportError> {
    parse_chunks_digested(input, config, opts, None, |rows, _, p| each(rows, p))
}

/// What the stored schedule knows of a chunk's rows: for a clinic's key and appointment
/// ids, those whose stored state a file row made, with that row's digest (a look-up that
/// fails answers nothing, and the rows are then compared in full).
pub type Known<'k> = Box<dyn FnMut(&str, &[&str]) -> HashMap<String, KnownRow> + Send + 'k>;

/// One sound row's digest (of its cells, its clinic's settings and this build), and whether
/// the stored appointment carries the same one: then the row changes nothing, and its phone
/// numbers were taken from the store instead of parsed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digested {
    /// What the row's appointment keeps as `import_digest` once applied.
    pub digest: RowDigest,
    /// The stored appointment was last set by this very row, and nothing changed it since.
    pub unchanged: bool,
}

/// As [`parse_chunks`], also handing on each sound row's [`Digested`] (parallel to the
/// rows); `known` answers which rows the store already holds as they are.
pub fn parse_chunks_digested(
    input: Input<'_>,
    config: &Config,
    opts: &ParseOptions<'_>,
    known: Option<Known<'_>>,
    mut each: impl FnMut(Vec<ImportRow>, Vec<Digested>, Progress) -> Result<(), ImportError>,
) -> Result<Scan, ImportError> {
    type Chunk = (Vec<ImportRow>, Vec<Digested>, Progress);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(1);
        let reader = s.spawn(move || {
            let mut known = known;
            scan(input, config, opts, known.as_mut(), &mut |rows, d, p| {
                tx.send((rows, d, p)).is_ok()
            })
        });
        let mut failed = None;
        for (rows, d, p) in &rx {
            if let Err(e) = each(rows, d, p) {
                failed = Some(e);
                break;
            }
        }
        // The reader, if still waiting to hand on a chunk, sees nobody will take it.
        drop(rx);
        let scanned = match reader.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        match failed {
            Some(e) => Err(e),
            None => scanned,
        }
    })
}

/// Where data rows come from.
enum Source<'t> {
    Csv(CsvRows<'t>),
    Sheet { rows: Vec<RawRow>, next: usize },
}

impl Source<'_> {
    /// The next data row and where to find it again; a CSV row that cannot be read is an
    /// error of its own and the rest are still read.
    fn next(&mut self, errors: &mut Vec<RowError>) -> Option<(RawRow, u64)> {
        match self {
            Self::Csv(c) => c.next(errors),
            Self::Sheet { rows, next } => {
                let r = rows.get(*next)?.clone();
                *next += 1;
                Some((r, (*next - 1) as u64))
            }
        }
    }

    /// The row `next` returned with `at`, read again.
    fn reread(&self, at: u64, row: usize) -> Option<RawRow> {
        match self {
            Self::Csv(c) => c.reread(at, row),
            Self::Sheet { rows, .. } => rows.get(usize::try_from(at).ok()?).cloned(),
        }
    }

    fn progress(&self, rows: usize) -> Progress {
        match self {
            Self::Csv(c) => Progress {
                rows,
                done: c.reader.position().byte(),
                total: c.len,
            },
            Self::Sheet { rows: all, next } => Progress {
                rows,
                done: *next as u64,
                total: all.len() as u64,
            },
        }
    }
}

/// A CSV file's data rows, read one at a time (blank lines left out), numbered as a
/// spreadsheet shows them.
struct CsvRows<'t> {
    input: Input<'t>,
    /// Bytes of text, for progress.
    len: u64,
    delimiter: u8,
    reader: csv::Reader<Tracked<Box<dyn Read + 't>>>,
    rows: RowCounter,
}

impl<'t> CsvRows<'t> {
    /// The header and the rows after it; `Ok(None)` when the file has no header.
    fn open(
        input: Input<'t>,
        delimiter: u8,
        len: u64,
    ) -> Result<Option<(csv::StringRecord, Self)>, RowError> {
        let text: Box<dyn Read + 't> = match input {
            Input::Bytes(b) => Box::new(b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)),
            Input::File(f) => Box::new(f.text().map_err(|e| io_error(1, &e))?),
        };
        let (tracked, mut rows) = Tracked::new(text);
        let mut reader = reader(delimiter, tracked);
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Err(e) => return Err(csv_error(1, &e)),
            Ok(false) => return Ok(None),
            Ok(true) => {}
        }
        rows.row_at(
            header.position().map_or(0, csv::Position::byte),
            Some(&header),
        );
        Ok(Some((
            header,
            Self {
                input,
                len,
                delimiter,
                reader,
                rows,
            },
        )))
    }

    fn next(&mut self, errors: &mut Vec<RowError>) -> Option<(RawRow, u64)> {
        loop {
            let mut r = csv::StringRecord::new();
            match self.reader.read_record(&mut r) {
                Ok(false) => return None,
                Err(e) => {
                    let row = e.position().map_or(0, |p| self.rows.row_at(p.byte(), None));
                    errors.push(csv_error(row, &e));
                    // A file that cannot be read further has no more rows.
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        return None;
                    }
                }
                Ok(true) => {
                    let at = r.position().map_or(0, csv::Position::byte);
                    let row = self.rows.row_at(at, Some(&r));
                    if r.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    return Some((RawRow { row, record: r }, at));
                }
            }
        }
    }

    fn reread(&self, at: u64, row: usize) -> Option<RawRow> {
        let from: Box<dyn Read> = match self.input {
            Input::Bytes(b) => {
                let text = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
                Box::new(text.get(usize::try_from(at).ok()?..)?)
            }
            Input::File(f) => Box::new(f.text_from(at).ok()?),
        };
        let mut record = csv::StringRecord::new();
        reader(self.delimiter, from)
            .read_record(&mut record)
            .ok()?
            .then_some(RawRow { row, record })
    }
}

/// A file that could not be read, as a row error.
fn io_error(row: usize, e: &std::io::Error) -> RowError {
    csv_error(
        row,
        &csv::Error::from(std::io::Error::new(e.kind(), e.to_string())),
    )
}

fn reader<R: Read>(delimiter: u8, from: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(false)
        .from_reader(from)
}

/// The whole read, on the reading thread: `emit` takes each chunk's sound rows and returns
/// false when nobody takes them any more.
fn scan(
    input: Input<'_>,
    config: &Config,
    opts: &ParseOptions<'_>,
    mut known: Option<&mut Known<'_>>,
    emit: &mut dyn FnMut(Vec<ImportRow>, Vec<Digested>, Progress) -> bool,
) -> Result<Scan, ImportError> {
    if let Some(c) = opts.clinic
        && config.clinic(c).is_none()
    {
        return Err(ImportError::Options(config.unknown_clinic(c)));
    }
    let format = config
        .import_format(opts.format, opts.clinic)
        .map_err(ImportError::Options)?;
    let mut out = Scan::default();
    let opened = match input {
        Input::Bytes(bytes) if sheet::is_spreadsheet(bytes) => {
            out.checksum = format!("{:x}", Sha256::digest(bytes));
            sheet::read(bytes, format)
                .map(|t| t.map(|(h, rows)| (h, Source::Sheet { rows, next: 0 })))
        }
        _ => {
            let checked = match input {
                Input::Bytes(bytes) => {
                    let mut check = TextCheck::default();
                    check.feed(bytes);
                    check.finish()
                }
                Input::File(f) => f.checked.clone(),
            };
            out.checksum = checked.checksum;
            checked.text.and_then(|delimiter| {
                CsvRows::open(input, delimiter, checked.len)
                    .map(|t| t.map(|(h, c)| (h, Source::Csv(c))))
            })
        }
    };
    let (header, mut source) = match opened {
        Err(e) => {
            out.errors.push(e);
            return Ok(finish(out));
        }
        Ok(None) => {
            out.errors.push(RowError {
                patient: None,
                row: 1,
                column: String::new(),
                value: String::new(),
                message: "the file is empty; export the schedule with its header row".into(),
            });
            return Ok(finish(out));
        }
        Ok(Some(t)) => t,
    };
    let Some(columns) = map_header(
        &header,
        format,
        opts.clinic.is_some(),
        opts.audience,
        &mut out.errors,
    ) else {
        return Ok(finish(out));
    };

    let mut phones = PhoneCache::new();
    let mut across = Across::default();
    let mut settings = Settings::new(config, format);
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let mut ats = Vec::with_capacity(CHUNK_ROWS);
        while chunk.len() < CHUNK_ROWS {
            let Some((raw, at)) = source.next(&mut out.errors) else {
                break;
            };
            chunk.push(raw);
            ats.push(at);
        }
        if chunk.is_empty() {
            break;
        }
        if out.rows_read == 0 {
            across.expect(source.progress(0), chunk.len());
        }
        out.rows_read += chunk.len();
        out.clinics.extend(
            chunk
                .iter()
                .filter_map(|raw| row_clinic(raw, &columns, opts.clinic)),
        );
        if phones.len() > PHONE_CACHE_MAX {
            phones.clear();
        }
        let digested = settings.digest_chunk(
            &chunk,
            &columns,
            opts.clinic,
            known.as_deref_mut(),
            &mut phones,
        );
        normalize_phones(&chunk, &columns, config, opts.clinic, &mut phones);
        let mut sound = Vec::with_capacity(chunk.len());
        let mut sound_digests = Vec::with_capacity(chunk.len());
        for ((raw, &at), &d) in chunk.iter().zip(&ats).zip(&digested) {
            let before = out.errors.len();
            if let Some(r) = read_row(
                raw,
                &columns,
                format,
                config,
                opts,
                &phones,
                &mut out.errors,
            ) {
                if let Some((first_at, first_row)) = across.check(&r, at, &columns, &mut out.errors)
                    && let Some(p) = first_row_again(
                        &source, first_at, first_row, &columns, format, config, opts,
                    )
                {
                    mismatch(&p, &r, &columns, &mut out.errors);
                }
                if out.errors.len() == before {
                    sound.push(r);
                    sound_digests.push(d);
                }
            }
            // Staff find a row by its patient faster than by its number.
            let name = columns.get(Field::PatientName, raw);
            if !name.is_empty() {
                for e in &mut out.errors[before..] {
                    e.patient = Some(shown_cell(name));
                }
            }
        }
        out.sound += sound.len();
        if !emit(sound, sound_digests, source.progress(out.rows_read)) {
            break;
        }
    }
    out.clinics.extend(opts.clinic.map(str::to_string));
    if out.rows_read == 0 && out.errors.is_empty() {
        out.errors.push(RowError {
            patient: None,
            row: 2,
            column: String::new(),
            value: String::new(),
            message: "the file has a header but no appointments".into(),
        });
    }
    Ok(finish(out))
}

/// Errors in row order, shown as reports show cells.
fn finish(mut out: Scan) -> Scan {
    out.errors.sort_by_key(|e| e.row);
    for e in &mut out.errors {
        e.column = shown_cell(&e.column);
        e.value = shown_cell(&e.value);
    }
    out
}

/// A patient's first row, read and checked again to say how a later row differs from it.
fn first_row_again(
    source: &Source<'_>,
    at: u64,
    row: usize,
    columns: &Columns,
    format: &ImportFormat,
    config: &Config,
    opts: &ParseOptions<'_>,
) -> Option<ImportRow> {
    let raw = source.reread(at, row)?;
    let mut phones = PhoneCache::new();
    normalize_phones(
        std::slice::from_ref(&raw),
        columns,
        config,
        opts.clinic,
        &mut phones,
    );
    read_row(
        &raw,
        columns,
        format,
        config,
        opts,
        &phones,
        &mut Vec::new(),
    )
}

/// A patient's first row, as later rows are checked against it, under 96 bits of the
/// patient key's digest (as [`Seen`]): 32 bytes, where a 128-bit key beside it took 40.
#[derive(Debug, Clone, Copy)]
struct First {
    a: u64,
    b: u32,
    row: u32,
    /// Where the source finds the row again.
    at: u64,
    /// Digest of what must be the same on every row of the patient (64 bits: a collision,
    /// odds 2⁻⁶⁴, would only miss reporting that rows differ).
    digest: u64,
}

impl PartialEq for First {
    fn eq(&self, other: &Self) -> bool {
        (self.a, self.b) == (other.a, other.b)
    }
}

impl Eq for First {}

impl std::hash::Hash for First {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.a);
    }
}

/// A 128-bit digest, as two words (a `u128` would pad every map entry to 16-byte alignment).
type Key = (u64, u64);

/// What later rows are checked against: each appointment's key and each patient's first
/// row, as 128-bit digests under keys chosen at random per import (a file cannot be made
/// to collide them; by chance, two of a million keys collide with odds of about 10⁻²⁷).
struct Across {
    keys: (RandomState, RandomState),
    appointments: HashSet<Seen, BuildHasherDefault<Passthrough>>,
    patients: HashSet<First, BuildHasherDefault<Passthrough>>,
}

/// An appointment key seen, as 96 bits of its digest (two of a million keys collide with
/// odds of about 10⁻¹⁷), and its row: 16 bytes, where a 128-bit key and a row took 24 (a
/// million-row file's map is tens of MB).
#[derive(Debug, Clone, Copy)]
struct Seen {
    a: u64,
    b: u32,
    row: u32,
}

impl PartialEq for Seen {
    fn eq(&self, other: &Self) -> bool {
        (self.a, self.b) == (other.a, other.b)
    }
}

impl Eq for Seen {}

impl std::hash::Hash for Seen {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.a);
    }
}

/// Hands a [`Seen`]'s first word on as its hash: it is already a keyed hash.
#[derive(Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for Across {
    fn default() -> Self {
        Self {
            keys: (RandomState::new(), RandomState::new()),
            appointments: HashSet::default(),
            patients: HashSet::default(),
        }
    }
}

impl Across {
    /// Sizes the appointment keys for the rows the whole file likely has (from how much of
    /// it the first chunk took), so the map is not rebuilt, twice its size, as it fills.
    fn expect(&mut self, at: Progress, rows: usize) {
        if at.done > 0 && rows > 0 {
            let likely = at.total.saturating_mul(rows as u64) / at.done;
            self.appointments
                .reserve(usize::try_from(likely).unwrap_or(0).min(1 << 26));
        }
    }

    fn digest(&self, parts: &[&str]) -> Key {
        let (mut a, mut b) = (self.keys.0.build_hasher(), self.keys.1.build_hasher());
        for p in parts {
            // 0xff never occurs in UTF-8, so the parts cannot run into each other.
            for h in [&mut a, &mut b] {
                h.write(p.as_bytes());
                h.write_u8(0xff);
            }
        }
        (a.finish(), b.finish())
    }

    /// Checks a valid row for a repeated appointment; returns where its patient's first row
    /// is when the patient's details may differ from it.
    fn check(
        &mut self,
        r: &ImportRow,
        at: u64,
        columns: &Columns,
        errors: &mut Vec<RowError>,
    ) -> Option<(u64, usize)> {
        let key = self.digest(&[&r.clinic, &r.appointment_id]);
        let row = u32::try_from(r.row).unwrap_or(u32::MAX);
        #[allow(clippy::cast_possible_truncation)] // 32 of the digest's second 64 bits
        let seen = Seen {
            a: key.0,
            b: key.1 as u32,
            row,
        };
        if let Some(Seen { row: first, .. }) = self.appointments.replace(seen) {
            errors.push(RowError {
                patient: None,
                row: r.row,
                column: columns.header_of(Field::AppointmentId).to_string(),
                value: r.appointment_id.clone(),
                message: format!(
                    "appointment {:?} is already on row {first}; each appointment may appear once",
                    r.appointment_id
                ),
            });
        }
        let patient = self.digest(&[&r.clinic, &r.patient_id]);
        let reach = format!("{:?}", r.reach);
        let digest = self
            .digest(&[r.phone.as_str(), &r.patient_name, &r.language, &reach])
            .0;
        #[allow(clippy::cast_possible_truncation)] // 32 of the digest's second 64 bits
        let first = First {
            a: patient.0,
            b: patient.1 as u32,
            row,
            at,
            digest,
        };
        match self.patients.get(&first) {
            None => {
                self.patients.insert(first);
                None
            }
            Some(f) if f.digest == digest => None,
            Some(f) => Some((f.at, f.row as usize)),
        }
    }
}

/// A patient whose details differ between rows: an error on the later row.
fn mismatch(p: &ImportRow, r: &ImportRow, columns: &Columns, errors: &mut Vec<RowError>) {
    let (field, mine, theirs) = if p.phone != r.phone {
        (
            Field::Phone,
            crate::phone::mask(r.phone.as_str()),
            crate::phone::mask(p.phone.as_str()),
        )
    } else if p.patient_name != r.patient_name {
        (
            Field::PatientName,
            r.patient_name.clone(),
            p.patient_name.clone(),
        )
    } else if p.language != r.language {
        (Field::Language, r.language.clone(), p.language.clone())
    } else if let Some(differs) = reach::differs(&r.reach, &p.reach) {
        differs
    } else {
        return;
    };
    let what = if matches!(field, Field::Phone | Field::PatientName | Field::Language) {
        "name, phone and language"
    } else {
        "channel, contact and remind"
    };
    errors.push(RowError {
        patient: None,
        row: r.row,
        column: columns.header_of(field).to_string(),
        value: mine,
        message: format!(
            "patient {:?} has {} on row {}; one patient must have the same {what} on every row",
            r.patient_id,
            if theirs.is_empty() {
                format!("an empty {}", columns.header_of(field))
            } else {
                theirs
            },
            p.row
        ),
    });
}

/// What a row's digest covers besides its cells: this build (a new version may read a cell
/// differently) and the settings that decide what a cell means (zone, numbering plan, date
/// order, defaults, the file's format), per clinic, hashed once per import.
struct Settings<'c> {
    config: &'c Config,
    format: String,
    clinics: HashMap<String, Option<[u8; 32]>>,
}

impl<'c> Settings<'c> {
    fn new(config: &'c Config, format: &ImportFormat) -> Self {
        Self {
            config,
            format: format!("{format:?}"),
            clinics: HashMap::new(),
        }
    }

    /// The clinic's part of every digest; `None` for a clinic the configuration lacks.
    fn of(&mut self, key: &str) -> Option<[u8; 32]> {
        if let Some(s) = self.clinics.get(key) {
            return *s;
        }
        let s = self.config.clinic(key).map(|c| {
            let text = format!(
                "reminderd {} import digest 1\n{}\n{}\n{:?}\n{:?}\n{}\n{}\n{:?}\n{:?}",
                env!("CARGO_PKG_VERSION"),
                self.format,
                c.key,
                c.time_zone,
                c.phone_region,
                c.default_language,
                c.default_duration_min,
                c.import_format,
                c.date_order,
            );
            Sha256::digest(text.as_bytes()).into()
        });
        self.clinics.insert(key.to_string(), s);
        s
    }

    /// Each row's digest, and whether the store holds its appointment as this very row left
    /// it: then the stored numbers go into `phones`, so they are not parsed again.
    fn digest_chunk(
        &mut self,
        chunk: &[RawRow],
        columns: &Columns,
        forced: Option<&str>,
        known: Option<&mut Known<'_>>,
        phones: &mut PhoneCache,
    ) -> Vec<Digested> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut clinics = Vec::with_capacity(chunk.len());
        for raw in chunk {
            let clinic = row_clinic(raw, columns, forced);
            let digest = clinic
                .as_deref()
                .and_then(|k| self.of(k))
                .map_or([0; 16], |s| row_digest(&s, raw, columns));
            out.push(Digested {
                digest,
                unchanged: false,
            });
            clinics.push(clinic);
        }
        let Some(known) = known else {
            return out;
        };
        let mut by_clinic: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, c) in clinics.iter().enumerate() {
            if let Some(c) = c.as_deref()
                && self.config.clinic(c).is_some()
            {
                by_clinic.entry(c).or_default().push(i);
            }
        }
        for (clinic, rows) in by_clinic {
            let Some(region) = self.config.clinic(clinic).map(|c| c.phone_region) else {
                continue;
            };
            let ids: Vec<&str> = rows
                .iter()
                .map(|&i| columns.get(Field::AppointmentId, &chunk[i]))
                .collect();
            let stored = known(clinic, &ids);
            for (&i, id) in rows.iter().zip(&ids) {
                let Some(k) = stored.get(*id) else { continue };
                if k.digest != out[i].digest {
                    continue;
                }
                out[i].unchanged = true;
                let raw = &chunk[i];
                phones.keep(region, columns.get(Field::Phone, raw), Ok(&k.phone));
                let contact = columns.get(Field::ContactPhone, raw);
                if let (false, Some(c)) = (contact.is_empty(), &k.contact_phone) {
                    phones.keep(region, contact, Ok(c));
                }
            }
        }
        out
    }
}

/// The digest of a row's cells (each column the file has, in field order) under its
/// clinic's settings.
fn row_digest(settings: &[u8; 32], raw: &RawRow, columns: &Columns) -> RowDigest {
    let mut h = Sha256::new();
    h.update(settings);
    for f in super::FIELDS {
        // 0xff never occurs in UTF-8, so cells cannot run into each other; a missing column
        // (kept values) differs from an empty cell (cleared values).
        h.update([u8::from(columns.has(f)), 0xff]);
        h.update(columns.get(f, raw).as_bytes());
        h.update([0xff]);
    }
    let full = h.finalize();
    let mut d = [0; 16];
    d.copy_from_slice(&full[..16]);
    d
}
