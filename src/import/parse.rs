//! The pure reading side of an import: a file's bytes → its rows, or every row error. It
//! never touches the store, so the CLI, the desk's upload and the property tests share it.

mod date;
mod reach;
mod row;
mod scan;
mod sheet;
mod text;

pub use scan::{CHUNK_ROWS, Digested, Known, Progress, Scan, parse_chunks_digested};
pub use text::{CsvFile, Input, Opened};

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

use super::{Audience, ImportError, ParseOptions, ParsedFile, RowError};
use crate::config::{Config, ImportFormat};
use crate::phone::{E164, PhoneError, Region};

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
    Channel,
    ContactName,
    ContactPhone,
    ContactRelation,
    Remind,
}

/// How many fields a file's columns can hold.
const FIELD_COUNT: usize = 16;

const FIELDS: [Field; FIELD_COUNT] = [
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
    Field::Channel,
    Field::ContactName,
    Field::ContactPhone,
    Field::ContactRelation,
    Field::Remind,
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
            Self::Channel => &c.channel,
            Self::ContactName => &c.contact_name,
            Self::ContactPhone => &c.contact_phone,
            Self::ContactRelation => &c.contact_relation,
            Self::Remind => &c.remind,
        }
    }

    fn optional(self) -> bool {
        matches!(
            self,
            Self::Language
                | Self::DurationMin
                | Self::Provider
                | Self::Status
                | Self::Clinic
                | Self::Channel
                | Self::ContactName
                | Self::ContactPhone
                | Self::ContactRelation
                | Self::Remind
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
    let mut sound = Vec::new();
    let scan = scan::parse_chunks(Input::Bytes(bytes), config, opts, |rows, _| {
        sound.extend(rows);
        Ok(())
    })?;
    Ok(scan.into_parsed(sound))
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

/// Line breaks inside a record's cells.
fn breaks_in(record: &csv::StringRecord) -> usize {
    record.iter().map(|c| c.matches('\n').count()).sum()
}

#[derive(Clone)]
struct RawRow {
    row: usize,
    record: csv::StringRecord,
}

/// Column index and header text (as written in the file) of each field.
struct Columns {
    index: [Option<(usize, String)>; FIELD_COUNT],
}

impl Columns {
    /// Whether the file has this field's column.
    fn has(&self, f: Field) -> bool {
        self.index[f as usize].is_some()
    }

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

/// The delimiter `text`'s header line uses most.
#[cfg(test)]
fn detect_delimiter(text: &str) -> u8 {
    let mut d = text::Delimiter::default();
    d.feed(text.as_bytes());
    d.best()
}

fn csv_error(row: usize, e: &csv::Error) -> RowError {
    RowError {
        patient: None,
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
    audience: Audience,
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
                patient: None,
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
    let mut index: [Option<(usize, String)>; FIELD_COUNT] = Default::default();
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
                patient: None,
                row: 1,
                column: f.header(format).to_string(),
                value: String::new(),
                message: format!(
                    "the file has no column named {:?}{}; the header row has: {}. {}",
                    f.header(format),
                    match (f == Field::Clinic, audience) {
                        (false, _) => "",
                        (true, Audience::Cli) => " (or import with --clinic KEY)",
                        (true, Audience::Desk) => " (or choose the clinic above)",
                    },
                    if found.is_empty() { "(nothing)".to_string() } else { found.join(", ") },
                    match audience {
                        Audience::Cli => "Rename the column, or map it under [import.columns] in reminders.toml",
                        Audience::Desk => "Rename the column in the file, or ask the administrator to set up this clinic's export format",
                    }
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

/// Written numbers already read, by region: one import's cache, so each distinct number is
/// parsed once however many rows repeat it. Held compactly, 24 bytes a number (a 128-bit
/// digest of region and text under keys chosen at random per import, so a file cannot make
/// two collide; the number as its digits): the texts and strings took about 130 bytes, tens
/// of MB of a million-row import's peak.
struct PhoneCache {
    keys: (RandomState, RandomState),
    /// The number's digits, or [`PhoneCache::FAILED`] and the error's code.
    map: HashMap<(u64, u64), u64>,
}

impl PhoneCache {
    fn new() -> Self {
        Self {
            keys: (RandomState::new(), RandomState::new()),
            map: HashMap::new(),
        }
    }

    fn key(&self, region: Region, written: &str) -> (u64, u64) {
        let (mut a, mut b) = (self.keys.0.build_hasher(), self.keys.1.build_hasher());
        for h in [&mut a, &mut b] {
            region.hash(h);
            h.write(written.as_bytes());
        }
        (a.finish(), b.finish())
    }

    /// Marks a value as a number that could not be read (digits never reach it: E.164 has at
    /// most 15).
    const FAILED: u64 = 1 << 63;

    /// The number `written` was read as, if it was.
    fn get(&self, region: Region, written: &str) -> Option<Result<E164, PhoneError>> {
        let v = *self.map.get(&self.key(region, written))?;
        if v & Self::FAILED == 0 {
            return Some(Ok(E164::from_stored(format!("+{v}"))));
        }
        Some(Err(match v & !Self::FAILED {
            0 => PhoneError::Empty,
            1 => PhoneError::Unreadable,
            2 => PhoneError::TooLong,
            // Only the region it was read with is kept, and that is the one asked about.
            _ => PhoneError::Invalid { region },
        }))
    }

    fn contains(&self, region: Region, written: &str) -> bool {
        self.map.contains_key(&self.key(region, written))
    }

    /// Keeps what `written` reads as, unless it is already kept. A number that is not
    /// digits after a `+` (never one E164 makes) is not kept, and is read again.
    fn keep(&mut self, region: Region, written: &str, read: Result<&E164, &PhoneError>) {
        let value = match read {
            Ok(n) => match n.as_str().strip_prefix('+').map(str::parse::<u64>) {
                Some(Ok(digits)) if digits & Self::FAILED == 0 => digits,
                _ => return,
            },
            Err(PhoneError::Empty) => Self::FAILED,
            Err(PhoneError::Unreadable) => Self::FAILED | 1,
            Err(PhoneError::TooLong) => Self::FAILED | 2,
            Err(PhoneError::Invalid { region: r }) if *r == region => Self::FAILED | 3,
            Err(PhoneError::Invalid { .. }) => return,
        };
        let key = self.key(region, written);
        self.map.entry(key).or_insert(value);
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn clear(&mut self) {
        self.map.clear();
    }
}

/// Parses each distinct (region, written number) of `cells` not yet in `cache`, spread over
/// the cores: patients repeat across rows, and a numbering-plan check costs tens of
/// microseconds (phonenumber's regexes sit behind one lock, so each thread takes a share).
fn normalize_phones(
    cells: &[RawRow],
    columns: &Columns,
    config: &Config,
    forced: Option<&str>,
    cache: &mut PhoneCache,
) {
    fn parse<'w>(part: &[(Region, &'w str)]) -> Vec<(Region, &'w str, Result<E164, PhoneError>)> {
        part.iter()
            .map(|&(region, raw)| (region, raw, E164::parse(raw, region)))
            .collect()
    }
    let mut distinct: HashSet<(Region, &str)> = HashSet::new();
    for raw in cells {
        let region = row_clinic(raw, columns, forced)
            .and_then(|c| config.clinic(&c).map(|c| c.phone_region));
        if let Some(region) = region {
            let contact = columns.get(Field::ContactPhone, raw);
            let written = [
                Some(columns.get(Field::Phone, raw)),
                (!contact.is_empty()).then_some(contact),
            ];
            for w in written.into_iter().flatten() {
                if !cache.contains(region, w) {
                    distinct.insert((region, w));
                }
            }
        }
    }
    let work: Vec<(Region, &str)> = distinct.into_iter().collect();
    // The import's writer has a core of its own; the other cores parse. On two cores that
    // is this thread alone: each new thread would also grow its own copy of phonenumber's
    // regex caches (measured: tens of MB).
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let helpers = threads.saturating_sub(1).max(1);
    let chunk = work.len().div_ceil(helpers).max(512);
    let parsed: Vec<_> = if helpers == 1 || work.len() <= chunk {
        parse(&work)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = work
                .chunks(chunk)
                .map(|part| s.spawn(move || parse(part)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    for (region, raw, read) in parsed {
        cache.keep(region, raw, read.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::import::{RowStatus, normalize_language};

    const HEADER: &str = "appointment_id,patient_id,patient_name,phone,language,date,time,clinic";

    fn config() -> Config {
        let text = r#"
[database]
path = "x.db"
[clinics.mumbai]
display_name = "Mumbai"
time_zone = "Asia/Kolkata"
phone_region = "IN"
default_language = "hi"
[clinics.nyc]
display_name = "New York"
time_zone = "America/New_York"
phone_region = "US"
"#;
        Config::from_toml(text, Path::new("r.toml")).expect("valid config")
    }

    fn read(bytes: &[u8]) -> ParsedFile {
        parse(bytes, &config(), &ParseOptions::default()).expect("options are valid")
    }

    /// (row, column, value) of every error, for compact assertions.
    fn located(p: &ParsedFile) -> Vec<(usize, &str, &str)> {
        p.errors
            .iter()
            .map(|e| (e.row, e.column.as_str(), e.value.as_str()))
            .collect()
    }

    #[test]
    fn the_delimiter_is_the_one_most_used_in_the_header_outside_quotes() {
        assert_eq!(detect_delimiter("a;b;c\n1,2,3,4,5"), b';');
        assert_eq!(detect_delimiter("a\tb\tc,d"), b'\t');
        assert_eq!(detect_delimiter("a,b,c;d"), b',');
        // Commas inside a quoted header name do not count.
        assert_eq!(detect_delimiter("\"a,b,c\";d;e"), b';');
        // A tie, or no delimiter at all, is a comma.
        assert_eq!(detect_delimiter("a,b;c"), b',');
        assert_eq!(detect_delimiter("single"), b',');

        let semi = "appointment_id;patient_id;patient_name;phone;date;time;clinic\n\
                    A1;P1;Asha Rao;98200 12345;2026-11-26;09:00;mumbai\n";
        let tabs = semi.replace(';', "\t");
        for text in [semi.to_string(), tabs] {
            let p = read(text.as_bytes());
            assert_eq!(located(&p), vec![], "{text:?}");
            assert_eq!(p.rows.len(), 1);
            assert_eq!(p.rows[0].patient_name, "Asha Rao");
            assert_eq!(p.rows[0].phone.as_str(), "+919820012345");
        }
    }

    #[test]
    fn a_byte_order_mark_and_crlf_line_ends_read_like_plain_text() {
        let plain = format!("{HEADER}\nA1,P1,Asha Rao,98200 12345,en,2026-11-26,09:00,mumbai\n");
        let windows = format!("\u{feff}{}", plain.replace('\n', "\r\n"));
        let a = read(plain.as_bytes());
        let b = read(windows.as_bytes());
        assert_eq!(located(&b), vec![]);
        assert_eq!(a.rows, b.rows);
        assert_eq!(b.rows[0].row, 2);
        assert_eq!(b.rows[0].appointment_id, "A1");
        assert_eq!(b.rows[0].clinic, "mumbai");
        // The checksum is of the bytes as sent, so the two files differ there.
        assert_ne!(a.checksum, b.checksum);
        assert_eq!(b.checksum.len(), 64);
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        // Line 2-3: one row whose quoted `notes` cell has a line break (spreadsheet row 2);
        // line 4: blank (row 3); line 5: row 4; line 6: row 5.
        let head = format!("{HEADER},notes\n");
        let body = "A1,P1,Asha Rao,98200 12345,en,2026-11-26,09:00,mumbai,\"first line\nsecond line\"\n\
                    \n\
                    A2,P2,Ravi Iyer,98765 43210,en,2026-11-26,09:30,mumbai,\n";
        let good = read(format!("{head}{body}").as_bytes());
        assert_eq!(located(&good), vec![]);
        assert_eq!(good.rows_read, 2, "the blank line is not a data row");
        let rows: Vec<usize> = good.rows.iter().map(|r| r.row).collect();
        assert_eq!(rows, vec![2, 4]);

        let bad = format!("{head}{body}A3,P3,Meena Das,99876 54321,en,26/11/2026,10:00,mumbai,\n");
        let p = read(bad.as_bytes());
        assert_eq!(located(&p), vec![(5, "date", "26/11/2026")]);
        assert!(p.errors[0].message.contains("write it as 2026-11-25"));
        assert!(p.rows.is_empty(), "a file with an error yields no rows");
        assert_eq!(p.rows_read, 3);
    }

    #[test]
    fn a_time_in_a_daylight_saving_gap_is_an_error_on_the_time_column() {
        let text = format!("{HEADER}\nN1,Q1,Ann Lee,212-867-5309,en,2027-03-14,02:30,nyc\n");
        let p = read(text.as_bytes());
        assert_eq!(located(&p), vec![(2, "time", "02:30")]);
        let m = &p.errors[0].message;
        assert!(
            m.contains("does not exist on 2027-03-14 in America/New_York"),
            "{m}"
        );
        assert!(
            m.ends_with("check the time with the clinic's system"),
            "{m}"
        );

        // An hour later the clocks have moved on, and the time is read in the clinic's zone.
        let later = read(text.replace("02:30", "03:30").as_bytes());
        assert_eq!(located(&later), vec![]);
        assert_eq!(
            later.rows[0].starts_at.to_rfc3339(),
            "2027-03-14T07:30:00+00:00"
        );
    }

    #[test]
    fn a_duplicate_header_names_both_column_letters() {
        let text =
            format!("{HEADER},Phone \nA1,P1,Asha Rao,98200 12345,en,2026-11-26,09:00,mumbai,x\n");
        let p = read(text.as_bytes());
        assert_eq!(located(&p), vec![(1, "Phone", "Phone")]);
        assert_eq!(
            p.errors[0].message,
            "the header \"Phone\" appears in columns D and I; rename or delete one of them"
        );
        assert!(p.rows.is_empty());

        for (i, letters) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(column_letter(i), letters, "{i}");
        }
    }

    #[test]
    fn shown_cells_escape_control_characters_and_stop_at_40_characters() {
        assert_eq!(shown_cell("plain"), "plain");
        assert_eq!(shown_cell("a\tb\u{1b}[31m\r"), "a\\tb\\u{1b}[31m\\r");
        let forty = "x".repeat(40);
        assert_eq!(shown_cell(&forty), forty);
        assert_eq!(shown_cell(&"x".repeat(41)), format!("{forty}…"));
        // Characters, not bytes: a long name in Devanagari is cut at the same place.
        let hindi = "आ".repeat(50);
        assert_eq!(shown_cell(&hindi), format!("{}…", "आ".repeat(40)));

        // Every error value and column `parse` returns is shown this way.
        let long = "9".repeat(60);
        let text = format!("{HEADER}\nA1,P1,Asha Rao,98200 12345,en,{long},09:00,mumbai\n");
        let p = read(text.as_bytes());
        assert_eq!(
            located(&p),
            vec![(2, "date", format!("{}…", "9".repeat(40)).as_str())]
        );
    }

    #[test]
    fn languages_are_normalised_to_whatsapp_codes() {
        for (written, code) in [
            ("en", Some("en")),
            ("EN", Some("en")),
            (" pt-br ", Some("pt_BR")),
            ("es_mx", Some("es_MX")),
            ("Hindi", Some("hi")),
            ("मराठी", Some("mr")),
            ("Español", Some("es")),
            ("e", None),
            ("engl", None),
            ("en-US-x", None),
            ("en-USA", None),
            ("12", None),
        ] {
            assert_eq!(normalize_language(written).as_deref(), code, "{written:?}");
        }

        // An empty cell takes the clinic's default language; a bad one is a row error.
        let text = format!(
            "{HEADER}\nA1,P1,Asha Rao,98200 12345,Marathi,2026-11-26,09:00,mumbai\n\
             A2,P2,Ravi Iyer,98765 43210,,2026-11-26,09:30,mumbai\n"
        );
        let p = read(text.as_bytes());
        let languages: Vec<&str> = p.rows.iter().map(|r| r.language.as_str()).collect();
        assert_eq!(languages, vec!["mr", "hi"]);
        assert!(p.rows.iter().all(|r| r.status == RowStatus::Booked));

        let bad = read(text.replace("Marathi", "Klingon").as_bytes());
        assert_eq!(located(&bad), vec![(2, "language", "Klingon")]);
    }
}
