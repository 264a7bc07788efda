//! Hostile-input property tests: whatever a front desk, an editor or the internet sends, the
//! CSV importer, the config loader, the webhook path and the reply reader never panic, and
//! every problem they report is located (row and column, or config key) and explained.
//!
//! The generators lean on strings that have broken real systems: SQL metacharacters, quotes,
//! NUL and other control characters, emoji, right-to-left marks, digits of other scripts and
//! very long values.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use reminderd::config::{Config, ConfigError};
use reminderd::import::{self, ApplyOptions, ParseOptions, RowStatus};
use reminderd::jobs;
use reminderd::phone::E164;
use reminderd::replies::{self, Intent, Message};
use reminderd::store::Store;
use serde_json::{Value, json};

const SHIPPED: &str = include_str!("../../reminders.toml");

/// The default import columns, in the order the generated files use.
const COLUMNS: [&str; 11] = [
    "appointment_id",
    "patient_id",
    "patient_name",
    "phone",
    "language",
    "date",
    "time",
    "duration_min",
    "provider",
    "clinic",
    "status",
];
const APPOINTMENT_ID: usize = 0;
const PATIENT_ID: usize = 1;
const PATIENT_NAME: usize = 2;
const PHONE: usize = 3;
const LANGUAGE: usize = 4;
const DATE: usize = 5;
const TIME: usize = 6;
const DURATION: usize = 7;
const PROVIDER: usize = 8;
const CLINIC: usize = 9;
const STATUS: usize = 10;

/// Longest id or name the importer accepts.
const MAX_TEXT: usize = 200;

/// Strings that are each a classic way to break a parser, a query or a terminal.
const NASTY: &[&str] = &[
    "",
    " ",
    "'; DROP TABLE appointments; --",
    "Robert'); DROP TABLE patients;--",
    "\" OR 1=1 --",
    "' OR ''='",
    "%_\\",
    "NULL",
    "null",
    "\"quoted\"",
    "\"",
    "\"\"\"",
    "a,b;c\td",
    "\0",
    "nul\0byte",
    "\r",
    "line\r\nbreak",
    "two\nlines",
    "\n",
    "\u{7}bell",
    "\u{1b}[31mred\u{1b}[0m",
    "\u{7f}",
    "\u{85}next line",
    "\u{feff}bom",
    "👍",
    "👨‍👩‍👧‍👦",
    "🏥 Dr. 😷",
    "\u{202e}evil\u{202c}",
    "\u{200f}مرحبا",
    "שלום",
    "\u{200b}",
    "ＡＢＣ１２３",
    "९८२०० १२३४५",
    "٩٨٢٠٠١٢٣٤٥",
    "२०२६-११-२५",
    "١٤:٣٠",
    "३०",
    "２０２６-１１-２５",
    "=cmd|' /C calc'!A0",
    "İstanbul",
    "ΣΊΣΥΦΟΣ",
    "0",
    "-1",
    "+30",
    "1e3",
    "NaN",
    "99999999999999999999",
    "2026-02-30",
    "2026-13-01",
    "24:00",
    "25:61",
    "2:30 XM",
    "+91",
    "+1 000 000 0000",
];

/// Values that are hostile but acceptable as an id, a name or a provider: no control
/// characters, not blank, at most 200 characters. They must be stored exactly as given.
fn safe_texts() -> Vec<String> {
    let mut v: Vec<String> = [
        "'; DROP TABLE appointments; --",
        "Robert'); DROP TABLE patients;--",
        "\" OR 1=1 --",
        "' OR ''='",
        "%_\\",
        "NULL",
        "a,b;c\"d",
        "\"quoted\"",
        "👨‍👩‍👧‍👦 😷",
        "\u{202e}evil\u{202c}",
        "\u{200f}مرحبا",
        "שלום",
        "ＡＢＣ１２３",
        "९८२००",
        "٠١٢٣",
        "=cmd|' /C calc'!A0",
        "İstanbul ΣΊΣΥΦΟΣ",
        "José Núñez",
        "O'Brien",
        "राहुल शर्मा",
        "\u{200b}zero width",
        "x",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    v.push("x".repeat(MAX_TEXT));
    v.push("😷".repeat(MAX_TEXT));
    v
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::from_toml(SHIPPED, Path::new("/nonexistent/reminders.toml"))
            .expect("the shipped reminders.toml is valid")
    })
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .expect("fixed instant")
}

// ---- CSV importer ---------------------------------------------------------------------------

fn nasty() -> BoxedStrategy<String> {
    prop_oneof![
        8 => proptest::sample::select(NASTY).prop_map(str::to_string),
        1 => Just("a".repeat(10_000)),
        1 => Just("😷'".repeat(5_000)),
        2 => any::<String>(),
        2 => proptest::collection::vec(proptest::char::range('\0', '\u{a0}'), 0..8)
            .prop_map(|v| v.into_iter().collect::<String>()),
    ]
    .boxed()
}

fn valid_date() -> BoxedStrategy<String> {
    // April to October: no daylight-saving gap in either configured zone.
    (2026..=2030i32, 4..=10u32, 1..=28u32)
        .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
        .boxed()
}

fn valid_time() -> BoxedStrategy<String> {
    prop_oneof![
        (0..24u32, 0..60u32).prop_map(|(h, m)| format!("{h:02}:{m:02}")),
        (0..24u32, 0..60u32, 0..60u32).prop_map(|(h, m, s)| format!("{h}:{m:02}:{s:02}")),
        (1..=12u32, 0..60u32, any::<bool>(), any::<bool>()).prop_map(|(h, m, pm, lower)| {
            let ampm = match (pm, lower) {
                (true, false) => "PM",
                (true, true) => "pm",
                (false, false) => "AM",
                (false, true) => "am",
            };
            format!("{h}:{m:02} {ampm}")
        }),
    ]
    .boxed()
}

/// Numbers valid for either clinic: written with their country code.
fn valid_phone() -> BoxedStrategy<String> {
    prop_oneof![
        (10..100u32).prop_map(|n| format!("+91 98200 123{n}")),
        (10..100u32).prop_map(|n| format!("0091 98200123{n}")),
        (10..100u32).prop_map(|n| format!("+1 (212) 555-01{n}")),
    ]
    .boxed()
}

/// Numbers valid for one clinic only, or for both.
fn any_phone() -> BoxedStrategy<String> {
    prop_oneof![
        valid_phone(),
        (10..100u32).prop_map(|n| format!("98200 123{n}")),
        (10..100u32).prop_map(|n| format!("(212) 555-01{n}")),
    ]
    .boxed()
}

fn valid_field(column: usize) -> BoxedStrategy<String> {
    let pick = |v: &[&str]| {
        proptest::sample::select(v.iter().map(ToString::to_string).collect::<Vec<_>>()).boxed()
    };
    match column {
        APPOINTMENT_ID | PATIENT_ID | PATIENT_NAME | PROVIDER => prop_oneof![
            "[A-Za-z0-9][A-Za-z0-9 ._/-]{0,12}",
            proptest::sample::select(safe_texts()),
        ]
        .boxed(),
        PHONE => valid_phone(),
        LANGUAGE => pick(&["", "en", "hi", "Hindi", "ES", "pt-br", "mr", "español"]),
        DATE => valid_date(),
        TIME => valid_time(),
        DURATION => prop_oneof![
            Just(String::new()),
            (1..=1440u32).prop_map(|n| n.to_string())
        ]
        .boxed(),
        CLINIC => pick(&["mumbai", "nyc", " NYC ", "Mumbai"]),
        STATUS => pick(&[
            "",
            "booked",
            "Cancelled",
            "scheduled",
            "canceled",
            " BOOKED ",
        ]),
        _ => unreachable!("11 columns"),
    }
}

fn nasty_row() -> BoxedStrategy<Vec<String>> {
    (0..COLUMNS.len())
        .map(|c| {
            let valid = if c == PHONE {
                any_phone()
            } else {
                valid_field(c)
            };
            prop_oneof![3 => valid, 2 => nasty()].boxed()
        })
        .collect::<Vec<_>>()
        .boxed()
}

fn valid_row() -> BoxedStrategy<Vec<String>> {
    (0..COLUMNS.len())
        .map(valid_field)
        .collect::<Vec<_>>()
        .boxed()
}

/// Makes ids unique per row (cross-row duplicates are a separate check) without changing
/// what makes a value hostile: the row number goes at the end, the value stays in front.
fn uniquify(rows: &mut [Vec<String>]) {
    for (i, r) in rows.iter_mut().enumerate() {
        for c in [APPOINTMENT_ID, PATIENT_ID] {
            if !r[c].trim().is_empty() {
                let kept: String = r[c].chars().take(MAX_TEXT - 6).collect();
                r[c] = format!("{kept}#{i}");
            }
        }
    }
}

fn write_csv(rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).expect("header");
    for r in rows {
        w.write_record(r).expect("row");
    }
    w.into_inner().expect("flush")
}

/// What the importer should make of one row, computed independently of its code paths.
#[derive(Debug)]
struct Expected {
    /// Columns that must be reported for this row.
    bad: BTreeSet<&'static str>,
    /// The row skipped as blank.
    blank: bool,
}

fn text_ok(v: &str, required: bool) -> bool {
    if v.is_empty() {
        return !required;
    }
    v.chars().count() <= MAX_TEXT && !v.chars().any(char::is_control)
}

fn parse_time(v: &str) -> Option<NaiveTime> {
    ["%H:%M", "%H:%M:%S", "%I:%M %p"].iter().find_map(|p| {
        NaiveTime::parse_from_str(v, p)
            .or_else(|_| NaiveTime::parse_from_str(&v.to_uppercase(), p))
            .ok()
    })
}

fn expect_row(raw: &[String]) -> Expected {
    let cfg = config();
    let v: Vec<&str> = raw.iter().map(|s| s.trim()).collect();
    let mut bad = BTreeSet::new();
    if v.iter().all(|s| s.is_empty()) {
        return Expected { bad, blank: true };
    }
    let clinic = if v[CLINIC].is_empty() {
        None
    } else {
        cfg.clinic(&v[CLINIC].to_lowercase())
    };
    if clinic.is_none() {
        bad.insert(COLUMNS[CLINIC]);
    }
    for (c, required) in [
        (APPOINTMENT_ID, true),
        (PATIENT_ID, true),
        (PATIENT_NAME, true),
        (PROVIDER, false),
    ] {
        if !text_ok(v[c], required) {
            bad.insert(COLUMNS[c]);
        }
    }
    if let Some(c) = clinic
        && E164::parse(v[PHONE], c.phone_region).is_err()
    {
        bad.insert(COLUMNS[PHONE]);
    }
    if !v[LANGUAGE].is_empty() && import::normalize_language(v[LANGUAGE]).is_none() {
        bad.insert(COLUMNS[LANGUAGE]);
    }
    let date = NaiveDate::parse_from_str(v[DATE], "%Y-%m-%d").ok();
    if date.is_none() {
        bad.insert(COLUMNS[DATE]);
    }
    let time = parse_time(v[TIME]);
    if time.is_none() {
        bad.insert(COLUMNS[TIME]);
    }
    if let (Some(c), Some(d), Some(t)) = (clinic, date, time)
        && reminderd::time::local_to_utc(c.time_zone, d, t).is_err()
    {
        bad.insert(COLUMNS[TIME]);
    }
    if !v[DURATION].is_empty()
        && !v[DURATION]
            .parse::<u32>()
            .is_ok_and(|n| (1..=1440).contains(&n))
    {
        bad.insert(COLUMNS[DURATION]);
    }
    if !matches!(
        v[STATUS].to_lowercase().as_str(),
        "" | "booked" | "scheduled" | "cancelled" | "canceled"
    ) {
        bad.insert(COLUMNS[STATUS]);
    }
    Expected { bad, blank: false }
}

/// Checks a parsed row against the cells it came from.
fn check_round_trip(row: &import::ImportRow, raw: &[String]) -> Result<(), TestCaseError> {
    let cfg = config();
    let v: Vec<&str> = raw.iter().map(|s| s.trim()).collect();
    let clinic = cfg
        .clinic(&v[CLINIC].to_lowercase())
        .expect("a valid row names a clinic");
    prop_assert_eq!(&row.clinic, &clinic.key);
    prop_assert_eq!(row.appointment_id.as_str(), v[APPOINTMENT_ID]);
    prop_assert_eq!(row.patient_id.as_str(), v[PATIENT_ID]);
    prop_assert_eq!(row.patient_name.as_str(), v[PATIENT_NAME]);
    prop_assert_eq!(
        row.provider.as_deref(),
        Some(v[PROVIDER]).filter(|p| !p.is_empty())
    );
    prop_assert_eq!(
        &row.phone,
        &E164::parse(v[PHONE], clinic.phone_region).expect("valid phone")
    );
    let language = if v[LANGUAGE].is_empty() {
        clinic.default_language.clone()
    } else {
        import::normalize_language(v[LANGUAGE]).expect("valid language")
    };
    prop_assert_eq!(&row.language, &language);
    let date = NaiveDate::parse_from_str(v[DATE], "%Y-%m-%d").expect("valid date");
    let time = parse_time(v[TIME]).expect("valid time");
    prop_assert_eq!(row.local_date, date);
    prop_assert_eq!(
        row.starts_at,
        reminderd::time::local_to_utc(clinic.time_zone, date, time).expect("no gap")
    );
    let duration = if v[DURATION].is_empty() {
        clinic.default_duration_min
    } else {
        v[DURATION].parse().expect("valid duration")
    };
    prop_assert_eq!(row.duration_min, duration);
    let status = if v[STATUS].to_lowercase().starts_with("cancel") {
        RowStatus::Cancelled
    } else {
        RowStatus::Booked
    };
    prop_assert_eq!(row.status, status);
    Ok(())
}

fn check_error_shape(parsed: &import::ParsedFile) -> Result<(), TestCaseError> {
    for e in &parsed.errors {
        prop_assert!(e.row >= 1, "row 0 in {:?}", e);
        prop_assert!(!e.message.trim().is_empty(), "no message in {:?}", e);
    }
    prop_assert!(
        parsed.rows.is_empty() || parsed.errors.is_empty(),
        "rows returned alongside errors"
    );
    prop_assert!(parsed.rows.len() <= parsed.rows_read);
    Ok(())
}

fn header_then_text() -> BoxedStrategy<Vec<u8>> {
    let header = COLUMNS.join(",");
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        any::<String>().prop_map(String::into_bytes),
        proptest::collection::vec(nasty(), 0..24).prop_map(move |cells| {
            let mut s = format!("{header}\n");
            for (i, c) in cells.iter().enumerate() {
                s.push_str(c);
                s.push(if i % 5 == 4 { '\n' } else { ',' });
            }
            s.into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..256).prop_map(|tail| {
            let mut b =
                b"\xEF\xBB\xBFappointment_id;patient_id;patient_name;phone;date;time;clinic\r\n"
                    .to_vec();
            b.extend(tail);
            b
        }),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_arbitrary_bytes_never_panic(bytes in header_then_text()) {
        let parsed = import::parse(&bytes, config(), &ParseOptions::default())
            .expect("the default options are valid");
        check_error_shape(&parsed)?;
        prop_assert!(!parsed.rows.is_empty() || !parsed.errors.is_empty(),
            "neither rows nor errors");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_every_bad_cell_is_reported_on_its_row_and_column(
        mut rows in proptest::collection::vec(nasty_row(), 1..8)
    ) {
        uniquify(&mut rows);
        let bytes = write_csv(&rows);
        let parsed = import::parse(&bytes, config(), &ParseOptions::default())
            .expect("the default options are valid");
        check_error_shape(&parsed)?;

        let expected: Vec<Expected> = rows.iter().map(|r| expect_row(r)).collect();
        // The header is row 1; a spreadsheet shows each record on one row, however many
        // line breaks its quoted cells hold.
        let mut want: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
        for (i, e) in expected.iter().enumerate() {
            if !e.bad.is_empty() {
                want.insert(i + 2, e.bad.clone());
            }
        }
        let data_rows = expected.iter().filter(|e| !e.blank).count();
        let mut got: BTreeMap<usize, BTreeSet<&str>> = BTreeMap::new();
        for e in &parsed.errors {
            got.entry(e.row).or_default().insert(e.column.as_str());
        }
        if data_rows == 0 {
            prop_assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
            prop_assert_eq!(parsed.errors[0].row, 2);
            return Ok(());
        }
        prop_assert_eq!(&got, &want, "errors: {:#?}", parsed.errors);
        prop_assert_eq!(parsed.rows_read, data_rows);
        if want.is_empty() {
            let kept: Vec<&Vec<String>> = rows
                .iter()
                .zip(&expected)
                .filter(|(_, e)| !e.blank)
                .map(|(r, _)| r)
                .collect();
            prop_assert_eq!(parsed.rows.len(), kept.len());
            for (row, raw) in parsed.rows.iter().zip(kept) {
                check_round_trip(row, raw)?;
            }
        } else {
            prop_assert!(parsed.rows.is_empty());
        }
    }
}

/// The smallest case of the numbering the property checks: a quoted cell with a line break
/// (here in a column reminderd does not read) is still one spreadsheet row, so the bad
/// status below is on row 3 (the header is row 1).
#[test]
fn csv_rows_after_a_multiline_cell_keep_their_spreadsheet_numbers() {
    let file = format!(
        "{},notes\nA1,P1,Asha,+91 98200 12345,,2026-06-02,10:00,,,mumbai,,\"call first\nthen text\"\nA2,P2,Ravi,+91 98200 12346,,2026-06-02,11:00,,,mumbai,maybe,\n",
        COLUMNS.join(",")
    );
    let parsed = import::parse(file.as_bytes(), config(), &ParseOptions::default())
        .expect("the default options are valid");
    let at: Vec<(usize, &str)> = parsed
        .errors
        .iter()
        .map(|e| (e.row, e.column.as_str()))
        .collect();
    assert_eq!(at, [(3, "status")], "{:#?}", parsed.errors);
}

/// One appointment as read back from the database with plain SQL.
type StoredRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    String,
);

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Hostile but valid values are imported into a real SQLite file and stored verbatim:
    /// quotes and SQL are data, never statements.
    #[test]
    fn csv_hostile_valid_values_are_stored_verbatim(
        mut rows in proptest::collection::vec(valid_row(), 1..6)
    ) {
        uniquify(&mut rows);
        let bytes = write_csv(&rows);
        let parsed = import::parse(&bytes, config(), &ParseOptions::default())
            .expect("the default options are valid");
        prop_assert!(parsed.errors.is_empty(), "errors: {:#?}", parsed.errors);
        prop_assert_eq!(parsed.rows.len(), rows.len());
        for (row, raw) in parsed.rows.iter().zip(&rows) {
            check_round_trip(row, raw)?;
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("props.db");
        let mut store = Store::open(&db).expect("open store");
        store.sync_clinics(&config().clinics).expect("sync clinics");
        let report = import::apply(
            &mut store,
            config(),
            &parsed,
            &ApplyOptions {
                file_name: "'; DROP TABLE imports; --.csv",
                complete: false,
                dry_run: false,
                imported_by: "props",
                now: now(),
            },
        )
        .expect("apply");
        prop_assert_eq!(report.new, rows.len());
        drop(store);

        let conn = rusqlite::Connection::open(&db).expect("open db");
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", (), |r| r.get(0))
            .expect("count tables");
        prop_assert!(tables >= 8, "tables went missing: {}", tables);
        let mut stmt = conn
            .prepare(
                "SELECT a.external_id, p.external_id, p.name, p.phone, p.language, a.provider,
                        a.starts_at, a.duration_min, a.status, c.key
                 FROM appointments a JOIN patients p ON p.id = a.patient_id
                 JOIN clinics c ON c.id = a.clinic_id ORDER BY a.id",
            )
            .expect("prepare");
        let stored: Vec<StoredRow> = stmt
            .query_map((), |r| {
                Ok((
                    r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?,
                    r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?,
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        prop_assert_eq!(stored.len(), parsed.rows.len());
        let file_name: String = conn
            .query_row("SELECT file_name FROM imports", (), |r| r.get(0))
            .expect("import row");
        prop_assert_eq!(file_name.as_str(), "'; DROP TABLE imports; --.csv");
        for row in &parsed.rows {
            let s = stored
                .iter()
                .find(|s| s.0 == row.appointment_id && s.9 == row.clinic)
                .expect("stored appointment");
            prop_assert_eq!(&s.1, &row.patient_id);
            prop_assert_eq!(&s.2, &row.patient_name);
            prop_assert_eq!(s.3.as_str(), row.phone.as_str());
            prop_assert_eq!(&s.4, &row.language);
            prop_assert_eq!(&s.5, &row.provider);
            prop_assert_eq!(s.6, row.starts_at.timestamp());
            prop_assert_eq!(s.7, i64::from(row.duration_min));
            let status = match row.status {
                RowStatus::Booked => "booked",
                RowStatus::Cancelled | RowStatus::Deleted => "cancelled",
                RowStatus::NoShow => "no_show",
                RowStatus::Completed => "completed",
            };
            prop_assert_eq!(s.8.as_str(), status);
        }
    }
}

// ---- config loader --------------------------------------------------------------------------

/// The top-level sections every problem key starts with.
const SECTIONS: [&str; 13] = [
    "feeds",
    "sms",
    "database",
    "clinics",
    "import",
    "whatsapp",
    "rules",
    "booking_confirmation",
    "templates",
    "daemon",
    "server",
    "replies",
    "desk",
];

/// Checks what `from_toml` made of `text`.
///
/// A table name that is not a bare TOML key is quoted in the key path as TOML quotes it
/// (`[import.formats."."]` is reported at `import.formats."."`), so a path never has an empty
/// segment.
fn check_config_result(result: Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => {}
        Err(ConfigError::Parse { message, .. }) => {
            prop_assert!(!message.trim().is_empty(), "empty parse message");
        }
        Err(ConfigError::Invalid { problems, .. }) => {
            prop_assert!(!problems.is_empty(), "Invalid with no problems");
            for p in &problems {
                let top = p.key.split(['.', '[']).next().unwrap_or_default();
                prop_assert!(
                    SECTIONS.contains(&top)
                        && !p.key.starts_with('.')
                        && !p.key.ends_with('.')
                        && !p.key.contains(".."),
                    "problem key {:?} is not a dotted path ({})",
                    p.key,
                    p.message
                );
                prop_assert!(!p.message.trim().is_empty(), "no message for {}", p.key);
            }
        }
        Err(e @ ConfigError::Read { .. }) => {
            return Err(TestCaseError::fail(format!("from_toml read a file: {e}")));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Delete a line.
    Delete(usize),
    /// Give a `key = value` line a quoted random string.
    Quoted(usize, String),
    /// Give a `key = value` line a raw random value (usually not TOML).
    Raw(usize, String),
    /// Give a `key = value` line a random integer.
    Number(usize, i64),
    /// Rename the last part of a table header.
    Table(usize, String),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (
            any::<usize>(),
            prop_oneof![nasty(), "[a-z0-9:%* ./-]{0,12}"]
        )
            .prop_map(|(i, s)| Mutation::Quoted(i, s)),
        (any::<usize>(), "\\PC{0,12}").prop_map(|(i, s)| Mutation::Raw(i, s)),
        (any::<usize>(), any::<i64>()).prop_map(|(i, n)| Mutation::Number(i, n)),
        (any::<usize>(), prop_oneof![nasty(), "[a-z_-]{0,8}"])
            .prop_map(|(i, s)| Mutation::Table(i, s)),
    ]
    .boxed()
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let assignments = |lines: &[String]| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| !lines[i].trim_start().starts_with('#') && lines[i].contains(" = "))
            .collect()
    };
    let tables = |lines: &[String]| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| lines[i].starts_with('[') && !lines[i].starts_with("[["))
            .collect()
    };
    let toml_string = |s: &str| toml::Value::String(s.to_string()).to_string();
    for m in mutations {
        match m {
            Mutation::Delete(i) => {
                if !lines.is_empty() {
                    let i = i % lines.len();
                    lines.remove(i);
                }
            }
            Mutation::Quoted(i, _) | Mutation::Raw(i, _) | Mutation::Number(i, _) => {
                let at = assignments(&lines);
                if at.is_empty() {
                    continue;
                }
                let line = &mut lines[at[i % at.len()]];
                let key = line.split(" = ").next().unwrap_or_default().to_string();
                let value = match m {
                    Mutation::Quoted(_, s) => toml_string(s),
                    Mutation::Raw(_, s) => s.clone(),
                    Mutation::Number(_, n) => n.to_string(),
                    _ => unreachable!("matched above"),
                };
                *line = format!("{key} = {value}");
            }
            Mutation::Table(i, name) => {
                let at = tables(&lines);
                if at.is_empty() {
                    continue;
                }
                let line = &mut lines[at[i % at.len()]];
                let inner = line.trim().trim_start_matches('[').trim_end_matches(']');
                let prefix = inner.rsplit_once('.').map_or("", |(p, _)| p).to_string();
                let quoted = toml_string(name);
                *line = if prefix.is_empty() {
                    format!("[{quoted}]")
                } else {
                    format!("[{prefix}.{quoted}]")
                };
            }
        }
    }
    lines.join("\n")
}

fn toml_ish() -> BoxedStrategy<String> {
    let line = prop_oneof![
        "\\[(clinics|import|whatsapp|daemon|server|replies|database|templates)(\\.[a-z_\"]{0,10}){0,3}\\]",
        "\\[\\[rules\\]\\]",
        "[a-z_]{1,14} = \"[^\"\\\\\n]{0,12}\"",
        "[a-z_]{1,14} = -?[0-9]{1,6}",
        "[a-z_]{1,14} = (true|false|\\[\\]|\\[\"[a-z%: -]{0,8}\"\\])",
        "\\PC{0,20}",
    ];
    proptest::collection::vec(line, 0..16)
        .prop_map(|l| l.join("\n"))
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_arbitrary_text_never_panics(text in prop_oneof![any::<String>(), toml_ish()]) {
        check_config_result(Config::from_toml(&text, Path::new("/etc/reminderd/reminders.toml")))?;
    }

    #[test]
    fn config_mutated_shipped_file_reports_dotted_keys(
        mutations in proptest::collection::vec(mutation(), 1..5)
    ) {
        let text = mutate(SHIPPED, &mutations);
        check_config_result(Config::from_toml(&text, Path::new("/etc/reminderd/reminders.toml")))?;
    }
}

// ---- webhook bodies -------------------------------------------------------------------------

const WEBHOOK_KEYS: &[&str] = &[
    "object",
    "entry",
    "changes",
    "field",
    "value",
    "messages",
    "statuses",
    "id",
    "from",
    "type",
    "text",
    "body",
    "button",
    "payload",
    "interactive",
    "button_reply",
    "list_reply",
    "title",
    "context",
    "status",
    "biz_opaque_callback_data",
    "errors",
    "code",
    "error_data",
    "details",
];

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty().prop_map(Value::String),
        "(confirm|cancel|reschedule|stop|start|yes|no|haan)(:[-+]?[0-9]{0,20})?"
            .prop_map(Value::String),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(WEBHOOK_KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
    .boxed()
}

fn arbitrary_json() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(6, 96, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((json_key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Either a plausible value or anything at all.
fn or_any(plausible: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => plausible, 1 => json_leaf()].boxed()
}

fn inbound_message() -> BoxedStrategy<Value> {
    let text = prop_oneof![
        proptest::sample::select(vec![
            "yes",
            "YES 👍",
            "no",
            "stop",
            "START",
            "हाँ",
            "sí",
            "3"
        ])
        .prop_map(str::to_string),
        nasty(),
    ];
    let payload = prop_oneof![
        (
            proptest::sample::select(vec!["confirm", "cancel", "reschedule", "stop", "bogus"]),
            -3..12i64
        )
            .prop_map(|(a, n)| format!("{a}:{n}")),
        nasty(),
    ];
    (
        or_any(
            prop_oneof![
                Just(json!("wamid.A")),
                "wamid\\.[A-Za-z0-9]{1,8}".prop_map(Value::String)
            ]
            .boxed(),
        ),
        or_any(
            prop_oneof![
                Just(json!("919820012345")),
                Just(json!("12125550142")),
                nasty().prop_map(Value::String)
            ]
            .boxed(),
        ),
        or_any(
            proptest::sample::select(vec![
                "text",
                "button",
                "interactive",
                "image",
                "reaction",
                "sticker",
                "",
            ])
            .prop_map(Value::from)
            .boxed(),
        ),
        proptest::option::of(or_any(text.prop_map(|t| json!({"body": t})).boxed())),
        proptest::option::of(or_any(
            payload
                .clone()
                .prop_map(|p| json!({"payload": p, "text": p}))
                .boxed(),
        )),
        proptest::option::of(or_any(
            payload
                .prop_map(|p| json!({"button_reply": {"id": p, "title": "x"}}))
                .boxed(),
        )),
        proptest::option::of(or_any(
            "wamid\\.[A-Za-z0-9]{1,8}"
                .prop_map(|w| json!({"id": w}))
                .boxed(),
        )),
    )
        .prop_map(|(id, from, kind, text, button, interactive, context)| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), id);
            m.insert("from".into(), from);
            m.insert("type".into(), kind);
            for (k, v) in [
                ("text", text),
                ("button", button),
                ("interactive", interactive),
                ("context", context),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
        .boxed()
}

fn status_update() -> BoxedStrategy<Value> {
    (
        or_any("wamid\\.[A-Za-z0-9]{1,8}".prop_map(Value::String).boxed()),
        or_any(proptest::sample::select(vec!["sent", "delivered", "read", "failed", "deleted", ""]).prop_map(Value::from).boxed()),
        proptest::option::of(or_any(prop_oneof![
            (-2..6i64).prop_map(|n| Value::String(n.to_string())),
            nasty().prop_map(Value::String),
            Just(json!("99999999999999999999")),
        ].boxed())),
        proptest::collection::vec(
            (any::<i64>(), nasty(), proptest::option::of(nasty()))
                .prop_map(|(code, title, details)| json!({"code": code, "title": title, "error_data": {"details": details}})),
            0..3,
        ),
    )
        .prop_map(|(id, status, callback, errors)| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), id);
            m.insert("status".into(), status);
            if let Some(c) = callback {
                m.insert("biz_opaque_callback_data".into(), c);
            }
            m.insert("errors".into(), Value::Array(errors));
            Value::Object(m)
        })
        .boxed()
}

fn envelope() -> BoxedStrategy<Value> {
    let value = (
        proptest::collection::vec(inbound_message(), 0..4),
        proptest::collection::vec(status_update(), 0..4),
    )
        .prop_map(|(messages, statuses)| json!({"messages": messages, "statuses": statuses}));
    let change = (
        or_any(
            proptest::sample::select(vec!["messages", "account_update", ""])
                .prop_map(Value::from)
                .boxed(),
        ),
        or_any(value.boxed()),
    )
        .prop_map(|(field, value)| json!({"field": field, "value": value}));
    proptest::collection::vec(proptest::collection::vec(change, 0..3), 0..3)
        .prop_map(|entries| {
            json!({
                "object": "whatsapp_business_account",
                "entry": entries.into_iter().map(|c| json!({"id": "1", "changes": c})).collect::<Vec<_>>(),
            })
        })
        .boxed()
}

fn webhook_body() -> BoxedStrategy<String> {
    prop_oneof![
        3 => envelope().prop_map(|v| v.to_string()),
        2 => arbitrary_json().prop_map(|v| v.to_string()),
        1 => proptest::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => any::<String>(),
        1 => nasty(),
    ]
    .boxed()
}

/// A database with two patients whose appointments have booking confirmations in the
/// outbox, so replies and statuses in the generated bodies can find something.
fn webhook_store(dir: &Path) -> Store {
    let db = dir.join("webhook.db");
    let mut store = Store::open(&db).expect("open store");
    store.sync_clinics(&config().clinics).expect("sync clinics");
    let csv = format!(
        "{}\nA1,P1,Asha Rao,+91 98200 12345,hi,2026-06-02,10:00,15,,mumbai,\nA2,P2,Sam Lee,(212) 555-0142,en,2026-06-02,14:30,30,,nyc,\n",
        COLUMNS.join(",")
    );
    let parsed =
        import::parse(csv.as_bytes(), config(), &ParseOptions::default()).expect("parse fixture");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    import::apply(
        &mut store,
        config(),
        &parsed,
        &ApplyOptions {
            file_name: "fixture.csv",
            complete: false,
            dry_run: false,
            imported_by: "props",
            now: now(),
        },
    )
    .expect("import fixture");
    jobs::plan_due(&mut store, config(), now(), false).expect("plan");
    store
}

fn count_events(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM inbound_events", (), |r| r.get(0))
        .expect("count inbound_events")
}

/// Every distinct body is stored once (a repeat is counted, not stored) and processed without
/// a database error; a body that is not a JSON object is reported as such, never applied.
#[test]
fn webhook_bodies_are_stored_and_never_fail_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RefCell::new(webhook_store(dir.path()));
    let conn = rusqlite::Connection::open(dir.path().join("webhook.db")).expect("open db");
    let calls = RefCell::new(0i64);
    let seen = RefCell::new(std::collections::HashSet::new());
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 256,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let result = runner.run(&webhook_body(), |body| {
        let parses = serde_json::from_str::<serde_json::Map<String, Value>>(&body).is_ok();
        let before = count_events(&conn);
        let mut calls = calls.borrow_mut();
        *calls += 1;
        let at = now() + chrono::Duration::seconds(*calls);
        let outcome = jobs::process_webhook(&mut store.borrow_mut(), config(), body.as_bytes(), at);
        let first = seen.borrow_mut().insert(body.clone());
        match outcome {
            Err(e) => {
                return Err(TestCaseError::fail(format!(
                    "database error for body {body:?}: {e}"
                )));
            }
            Ok(Err(why)) => {
                prop_assert!(!parses, "a JSON object was refused: {}", why);
                prop_assert!(why.starts_with("malformed"), "{}", why);
            }
            Ok(Ok(summary)) => {
                // A replay of an earlier body is only counted, whatever it held.
                prop_assert!(
                    parses || summary.replay,
                    "a body that is not a JSON object was applied"
                );
                prop_assert_eq!(summary.replay, !first, "replay not recognised");
            }
        }
        prop_assert_eq!(
            count_events(&conn),
            before + i64::from(first),
            "the body was not stored exactly once"
        );
        let stored: String = conn
            .query_row(
                "SELECT body FROM inbound_events WHERE body_sha256 = ?1",
                [format!(
                    "{:x}",
                    <sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())
                )],
                |r| r.get(0),
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&stored, &body, "the body was not stored verbatim");
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Shapes that stress the parser itself: deep nesting, huge strings, escaped NULs.
#[test]
fn webhook_pathological_bodies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = webhook_store(dir.path());
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"entry\":".repeat(50_000);
    let nested_ok = format!("{}1{}", "[".repeat(120), "]".repeat(120));
    let long_text = json!({"entry": [{"changes": [{"field": "messages", "value": {"messages": [
        {"id": "wamid.long", "from": "919820012345", "type": "text", "text": {"body": "y".repeat(3_000_000)}}
    ]}}]}]})
    .to_string();
    let nul = r#"{"entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":"wamid.\u0000","from":"\u0000919820012345","type":"text","text":{"body":"yes\u0000"}}],"statuses":[{"id":"\u0000","status":"read","biz_opaque_callback_data":"1\u0000"}]}}]}]}"#;
    let dup_keys = r#"{"entry":[],"entry":[{"changes":[]}]}"#;
    for body in [
        deep_array.as_str(),
        deep_object.as_str(),
        nested_ok.as_str(),
        long_text.as_str(),
        nul,
        dup_keys,
        "",
        "\u{feff}{}",
        "null",
        "{\"entry\":null}",
    ] {
        let outcome = jobs::process_webhook(&mut store, config(), body.as_bytes(), now());
        assert!(
            outcome.is_ok(),
            "database error for a {}-byte body starting {:?}: {outcome:?}",
            body.len(),
            body.chars().take(40).collect::<String>()
        );
    }
}

// ---- reply reader ---------------------------------------------------------------------------

fn reply_text() -> BoxedStrategy<String> {
    let words: Vec<String> = {
        let mut w: Vec<String> = config().replies.words.keys().cloned().collect();
        w.sort();
        w
    };
    let noise = prop_oneof![
        Just(String::new()),
        Just(" ".to_string()),
        Just("!".to_string()),
        Just("👍".to_string()),
        Just("\u{200f}".to_string()),
        Just("\t\n".to_string()),
        Just("।".to_string()),
    ];
    prop_oneof![
        3 => any::<String>(),
        2 => nasty(),
        1 => "[İıΣσςẞßǅǈ\u{0130}\u{0307}\u{0345}\u{1E9E} a-zA-Z]{0,12}",
        3 => (proptest::sample::select(words), noise.clone(), noise, any::<bool>())
            .prop_map(|(w, pre, post, upper)| {
                let w = if upper { w.to_uppercase() } else { w };
                format!("{pre}{w}{post}")
            }),
    ]
    .boxed()
}

/// An independent reading of the payload grammar: `ACTION:ID` after trimming, with one of the
/// four button actions in any ASCII case and a positive 64-bit id.
fn payload_oracle(payload: &str) -> Option<(Intent, i64)> {
    let (action, id) = payload.trim().split_once(':')?;
    let intent = [
        ("confirm", Intent::Confirm),
        ("cancel", Intent::Cancel),
        ("reschedule", Intent::Reschedule),
        ("stop", Intent::Stop),
    ]
    .into_iter()
    .find(|(a, _)| a.eq_ignore_ascii_case(action))?
    .1;
    let digits = id.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    (n > 0).then_some((intent, n))
}

fn payload() -> BoxedStrategy<String> {
    let action = prop_oneof![
        proptest::sample::select(vec![
            "confirm",
            "cancel",
            "reschedule",
            "stop",
            "CONFIRM",
            "Cancel",
            "start",
            "yes",
            "",
            "confirm ",
            " stop",
            "confırm",
        ])
        .prop_map(str::to_string),
        "\\PC{0,8}",
    ];
    let id = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (1..1000i64).prop_map(|n| n.to_string()),
        proptest::sample::select(vec![
            "0",
            "-0",
            "+7",
            " 7 ",
            "007",
            "9223372036854775807",
            "9223372036854775808",
            "",
            "1.0",
            "1e3",
            "٣",
            "७",
            "1 2",
            "0x10",
        ])
        .prop_map(str::to_string),
        "\\PC{0,6}",
    ];
    prop_oneof![
        4 => (action, proptest::sample::select(vec![":", "::", " : ", ""]), id)
            .prop_map(|(a, sep, i)| format!("{a}{sep}{i}")),
        1 => any::<String>(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn normalize_is_idempotent_and_tidy(s in reply_text()) {
        let n = replies::normalize(&s);
        prop_assert_eq!(&replies::normalize(&n), &n, "not idempotent for {:?}", s);
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' '), "edge space in {:?}", n);
        prop_assert!(!n.contains("  "), "double space in {:?}", n);
        prop_assert!(
            !n.chars().any(|c| c.is_whitespace() && c != ' '),
            "other whitespace in {:?}",
            n
        );
    }

    #[test]
    fn typed_text_is_unknown_exactly_when_not_a_configured_word(s in reply_text()) {
        let words = &config().replies.words;
        let reading = replies::read(&Message::Text { body: &s }, words);
        let key = replies::normalize(&s);
        match words.get(&key) {
            Some(intent) => {
                prop_assert_eq!(reading.intent, *intent);
                prop_assert!(reading.needs_staff.is_none());
            }
            None => {
                prop_assert_eq!(reading.intent, Intent::Unknown);
                prop_assert!(reading.needs_staff.is_some());
            }
        }
        prop_assert_eq!(reading.outbox_id, None);
    }

    #[test]
    fn payloads_are_exactly_action_colon_positive_id(p in payload()) {
        prop_assert_eq!(replies::parse_payload(&p), payload_oracle(&p), "payload {:?}", p);
    }

    #[test]
    fn our_own_payloads_always_parse(
        action in proptest::sample::select(vec![
            ("confirm", Intent::Confirm),
            ("cancel", Intent::Cancel),
            ("reschedule", Intent::Reschedule),
            ("stop", Intent::Stop),
        ]),
        id in 1..=i64::MAX,
    ) {
        let p = format!("{}:{id}", action.0);
        prop_assert_eq!(replies::parse_payload(&p), Some((action.1, id)));
        let reading = replies::read(&Message::Button { payload: &p }, &config().replies.words);
        prop_assert_eq!(reading.intent, action.1);
        prop_assert_eq!(reading.outbox_id, Some(id));
    }
}
