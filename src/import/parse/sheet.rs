//! Spreadsheets as the clinic keeps them (.xlsx, .ods, and old .xls): the first sheet's cells
//! become the text a CSV export of that sheet would hold, so the rest of the import reads
//! both alike. A real date or time cell is written with the format's first date or time
//! pattern, whatever the spreadsheet shows; a whole number is written without ".0".

use std::io::Cursor;

use calamine::{Data, Reader as _};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::super::RowError;
use super::RawRow;
use crate::config::ImportFormat;

/// Whether the bytes are a spreadsheet rather than text: a zip (.xlsx, .ods) or an OLE
/// compound file (.xls).
pub(super) fn is_spreadsheet(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// The first sheet's header row and data rows (blank rows left out, numbered as the
/// spreadsheet numbers them); `Err` when the file cannot be read as a spreadsheet at all.
pub(super) fn read(
    bytes: &[u8],
    format: &ImportFormat,
) -> Result<Option<(csv::StringRecord, Vec<RawRow>)>, RowError> {
    let unreadable = |why: String| RowError {
        patient: None,
        row: 1,
        column: String::new(),
        value: String::new(),
        message: format!(
            "this file cannot be read as a spreadsheet ({why}); open it in the spreadsheet program and save it again as .xlsx, or as CSV UTF-8"
        ),
    };
    // A damaged file must be a row error, never a crash: calamine is not fuzzed with our
    // inputs, so a panic inside it is caught and reported like any unreadable file.
    let opened = std::panic::catch_unwind(|| {
        let mut book =
            calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| e.to_string())?;
        book.worksheet_range_at(0)
            .transpose()
            .map_err(|e| e.to_string())
    });
    let range = match opened {
        Err(_) => return Err(unreadable("the reader failed on it".into())),
        Ok(Err(why)) => return Err(unreadable(why)),
        Ok(Ok(None)) => return Ok(None),
        Ok(Ok(Some(r))) => r,
    };
    let Some((first_row, _)) = range.start() else {
        return Ok(None);
    };
    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        return Ok(None);
    };
    let header: Vec<String> = header
        .iter()
        .map(|c| text(c, Kind::Other, format))
        .collect();
    let kind_of: Vec<Kind> = header
        .iter()
        .map(|h| {
            let h = h.trim().to_lowercase();
            if h == format.columns.date.trim().to_lowercase() {
                Kind::Date
            } else if h == format.columns.time.trim().to_lowercase() {
                Kind::Time
            } else {
                Kind::Other
            }
        })
        .collect();
    let mut out = Vec::new();
    for (i, cells) in rows.enumerate() {
        let record: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| text(cell, kind_of.get(c).copied().unwrap_or(Kind::Other), format))
            .collect();
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        out.push(RawRow {
            // The header is the range's first row; spreadsheets count from 1.
            row: first_row as usize + i + 2,
            record: csv::StringRecord::from(record),
        });
    }
    Ok(Some((csv::StringRecord::from(header), out)))
}

/// Which column a cell is in, for writing a date or time cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Date,
    Time,
    Other,
}

/// A cell as a CSV export would write it.
fn text(cell: &Data, kind: Kind, format: &ImportFormat) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Data::Error(e) => e.to_string(),
        Data::DateTime(d) => {
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            let date = NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(da));
            let time = NaiveTime::from_hms_opt(u32::from(h), u32::from(mi), u32::from(s));
            if d.is_duration() {
                // A length of time in a time column reads as a time of day.
                return time.map_or_else(|| number(d.as_f64()), |t| write_time(t, format));
            }
            match (date, time) {
                (Some(date), Some(time)) => written(date.and_time(time), kind, format),
                _ => number(d.as_f64()),
            }
        }
        Data::DateTimeIso(s) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map_or_else(|| s.clone(), |dt| written(dt, kind, format)),
        Data::DurationIso(s) => {
            iso_duration_time(s).map_or_else(|| s.clone(), |t| write_time(t, format))
        }
    }
}

/// A date-time cell in the column it is in: the date in a date column, the time of day in a
/// time column, both elsewhere.
fn written(dt: NaiveDateTime, kind: Kind, format: &ImportFormat) -> String {
    match kind {
        Kind::Date => {
            let p = format
                .date_formats
                .first()
                .map_or("%Y-%m-%d", String::as_str);
            dt.date().format(p).to_string()
        }
        Kind::Time => write_time(dt.time(), format),
        Kind::Other if dt.time() == NaiveTime::MIN => dt.date().format("%Y-%m-%d").to_string(),
        Kind::Other => dt.format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn write_time(t: NaiveTime, format: &ImportFormat) -> String {
    let p = format.time_formats.first().map_or("%H:%M", String::as_str);
    t.format(p).to_string()
}

/// A number as a person typed it: phone numbers and ids stored as numbers have no ".0".
fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// An OpenDocument time cell (`PT09H30M00S`) as a time of day.
fn iso_duration_time(s: &str) -> Option<NaiveTime> {
    let rest = s.strip_prefix("PT")?;
    let (h, rest) = rest.split_once('H')?;
    let (m, rest) = rest.split_once('M')?;
    let secs = rest.strip_suffix('S').unwrap_or(rest);
    let secs: f64 = if secs.is_empty() {
        0.0
    } else {
        secs.parse().ok()?
    };
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, secs as u32)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write as _;
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::import::{ParseOptions, parse};

    /// One cell of a test spreadsheet.
    pub(crate) enum Cell {
        Text(&'static str),
        Number(f64),
        /// A real date cell (year, month, day), shown as the clinic's spreadsheet shows it.
        Date(u16, u8, u8),
        /// A real time cell (hour, minute).
        Time(u16, u8),
        Blank,
    }

    pub(crate) const HEADER: [&str; 7] = [
        "appointment_id",
        "patient_id",
        "patient_name",
        "phone",
        "date",
        "time",
        "clinic",
    ];

    /// An .xlsx with `rows` under the header, as Excel writes dates (serial numbers with a
    /// date format) and times.
    pub(crate) fn xlsx(rows: &[Vec<Cell>]) -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let (date, time) = (
            Format::new().set_num_format("dd/mm/yyyy"),
            Format::new().set_num_format("hh:mm"),
        );
        for (c, h) in HEADER.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).expect("header");
        }
        for (i, row) in rows.iter().enumerate() {
            let at = i as u32 + 1;
            for (j, cell) in row.iter().enumerate() {
                let col = j as u16;
                match cell {
                    Cell::Text(t) => sheet.write_string(at, col, *t).map(|_| ()),
                    Cell::Number(n) => sheet.write_number(at, col, *n).map(|_| ()),
                    Cell::Date(y, m, d) => sheet
                        .write_datetime_with_format(
                            at,
                            col,
                            ExcelDateTime::from_ymd(*y, *m, *d).expect("date"),
                            &date,
                        )
                        .map(|_| ()),
                    Cell::Time(h, m) => sheet
                        .write_datetime_with_format(
                            at,
                            col,
                            ExcelDateTime::from_hms(*h, *m, 0).expect("time"),
                            &time,
                        )
                        .map(|_| ()),
                    Cell::Blank => Ok(()),
                }
                .expect("cell");
            }
        }
        book.save_to_buffer().expect("xlsx")
    }

    /// An .ods with `rows` under the header, as LibreOffice writes date and time cells.
    pub(crate) fn ods(rows: &[Vec<Cell>]) -> Vec<u8> {
        let cell = |c: &Cell| match c {
            Cell::Text(t) => format!(
                "<table:table-cell office:value-type=\"string\"><text:p>{t}</text:p></table:table-cell>"
            ),
            Cell::Number(n) => format!(
                "<table:table-cell office:value-type=\"float\" office:value=\"{n}\"><text:p>{n}</text:p></table:table-cell>"
            ),
            Cell::Date(y, m, d) => format!(
                "<table:table-cell office:value-type=\"date\" office:date-value=\"{y:04}-{m:02}-{d:02}\"><text:p>{d:02}/{m:02}/{y}</text:p></table:table-cell>"
            ),
            Cell::Time(h, m) => format!(
                "<table:table-cell office:value-type=\"time\" office:time-value=\"PT{h:02}H{m:02}M00S\"><text:p>{h:02}:{m:02}</text:p></table:table-cell>"
            ),
            Cell::Blank => "<table:table-cell/>".into(),
        };
        let mut body = String::from("<table:table-row>");
        for h in HEADER {
            body.push_str(&cell(&Cell::Text(h)));
        }
        body.push_str("</table:table-row>");
        for row in rows {
            body.push_str("<table:table-row>");
            for c in row {
                body.push_str(&cell(c));
            }
            body.push_str("</table:table-row>");
        }
        let content = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\"><office:body><office:spreadsheet><table:table table:name=\"Sheet1\">{body}</table:table></office:spreadsheet></office:body></office:document-content>"
        );
        let manifest = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/><manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>";
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, text) in [
            ("mimetype", "application/vnd.oasis.opendocument.spreadsheet"),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", content.as_str()),
        ] {
            zip.start_file(name, stored).expect("zip entry");
            zip.write_all(text.as_bytes()).expect("zip write");
        }
        zip.finish().expect("zip").into_inner()
    }

    fn config() -> Config {
        let text = "[database]\npath = \"x.db\"\n[clinics.mumbai]\ndisplay_name = \"Mumbai\"\ntime_zone = \"Asia/Kolkata\"\nphone_region = \"IN\"\n";
        Config::from_toml(text, Path::new("r.toml")).expect("valid config")
    }

    #[test]
    fn a_spreadsheet_reads_as_its_csv_export_would() {
        use Cell::{Blank, Date, Number, Text, Time};
        let rows = || {
            vec![
                vec![
                    Text("A1"),
                    Text("P1"),
                    Text("Asha Rao"),
                    Number(9_820_012_345.0),
                    Date(2026, 11, 26),
                    Time(9, 30),
                    Text("mumbai"),
                ],
                vec![Blank],
                vec![
                    Number(1002.0),
                    Text("P2"),
                    Text("Ravi Iyer"),
                    Text("98765 43210"),
                    Date(2026, 11, 27),
                    Time(14, 0),
                    Text("mumbai"),
                ],
            ]
        };
        let csv = format!(
            "{}\nA1,P1,Asha Rao,9820012345,2026-11-26,09:30,mumbai\n\n1002,P2,Ravi Iyer,98765 43210,2026-11-27,14:00,mumbai\n",
            HEADER.join(",")
        );
        let config = config();
        let read = |bytes: &[u8]| parse(bytes, &config, &ParseOptions::default()).expect("options");
        let want = read(csv.as_bytes());
        assert!(want.errors.is_empty(), "{:?}", want.errors);
        for (kind, bytes) in [("xlsx", xlsx(&rows())), ("ods", ods(&rows()))] {
            assert!(is_spreadsheet(&bytes), "{kind}");
            let got = read(&bytes);
            assert!(got.errors.is_empty(), "{kind}: {:?}", got.errors);
            assert_eq!(got.rows, want.rows, "{kind}");
            assert_eq!(got.rows.iter().map(|r| r.row).collect::<Vec<_>>(), [2, 4]);
        }
    }

    #[test]
    fn a_spreadsheet_cell_with_a_problem_names_its_row_and_patient() {
        use Cell::{Date, Text, Time};
        let bytes = xlsx(&[vec![
            Text("A1"),
            Text("P1"),
            Text("Asha Rao"),
            Text("98200 1234"),
            Date(2026, 11, 26),
            Time(9, 30),
            Text("mumbai"),
        ]]);
        let p = parse(&bytes, &config(), &ParseOptions::default()).expect("options");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        let e = &p.errors[0];
        assert_eq!((e.row, e.column.as_str()), (2, "phone"));
        assert_eq!(e.patient.as_deref(), Some("Asha Rao"));
        assert!(
            e.message.starts_with(
                "not a valid Indian mobile number: it has 9 digits, mobile numbers have 10"
            ),
            "{}",
            e.message
        );
        let broken = parse(
            b"PK\x03\x04 not really a zip",
            &config(),
            &ParseOptions::default(),
        )
        .expect("options");
        assert_eq!(broken.errors.len(), 1);
        assert!(
            broken.errors[0]
                .message
                .starts_with("this file cannot be read as a spreadsheet"),
            "{:?}",
            broken.errors
        );
    }

    #[test]
    fn numbers_and_durations_read_as_typed() {
        assert_eq!(number(9_820_012_345.0), "9820012345");
        assert_eq!(number(30.0), "30");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(
            iso_duration_time("PT09H30M00S"),
            NaiveTime::from_hms_opt(9, 30, 0)
        );
        assert_eq!(
            iso_duration_time("PT14H05M"),
            NaiveTime::from_hms_opt(14, 5, 0)
        );
        assert_eq!(iso_duration_time("P1D"), None);
    }
}
