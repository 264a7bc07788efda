//! A waitlist file (`reminderd waitlist import`): CSV rows read into entries, or every row error
//! with its row, column and a fix, worded as the schedule import words them. Pure: bytes and
//! the config in, rows or errors out.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use crate::config::Config;
use crate::import::{RowError, shown_cell};

/// The columns a waitlist file has; the first four must be there (clinic unless given).
pub const COLUMNS: [&str; 10] = [
    "id",
    "patient_id",
    "clinic",
    "provider",
    "earliest",
    "latest",
    "days",
    "time_band",
    "expires",
    "max_offers",
];

/// One valid row of a waitlist file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// Row number as a spreadsheet shows it (the header is row 1).
    pub row: usize,
    /// The file's id for the entry: a re-import updates it.
    pub id: String,
    /// The clinic system's patient id.
    pub patient: String,
    /// Clinic key.
    pub clinic: String,
    /// `None`: any provider.
    pub provider: Option<String>,
    /// First local date that suits.
    pub earliest: NaiveDate,
    /// Last local date that suits.
    pub latest: Option<NaiveDate>,
    /// ISO weekday digits.
    pub days: String,
    /// Local time band start.
    pub time_from: Option<NaiveTime>,
    /// Local time band end.
    pub time_to: Option<NaiveTime>,
    /// The end of the local expiry day.
    pub expires_at: Option<DateTime<Utc>>,
    /// Most offers (default 3).
    pub max_offers: u32,
}

/// Reads `bytes`; `clinic` is the clinic for rows without a clinic column.
pub fn parse(
    bytes: &[u8],
    config: &Config,
    clinic: Option<&str>,
) -> Result<Vec<EntryRow>, Vec<RowError>> {
    let err = |row: usize, column: &str, value: &str, message: String| RowError {
        row,
        column: column.to_string(),
        value: shown_cell(value),
        message,
        patient: None,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(vec![err(1, "", "", "the file is not UTF-8 text; in your spreadsheet choose \"Save as\" → \"CSV UTF-8\" and import that file".into())]);
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|c| c.to_lowercase().replace(' ', "_"))
            .collect(),
        Err(e) => {
            return Err(vec![err(
                1,
                "",
                "",
                format!("the header row cannot be read as CSV ({e})"),
            )]);
        }
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let mut errors = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !COLUMNS.contains(&h.as_str()) {
            errors.push(err(
                1,
                h,
                h,
                format!(
                    "column {} is not a waitlist column; the columns are: {}",
                    i + 1,
                    COLUMNS.join(", ")
                ),
            ));
        }
    }
    for need in ["id", "patient_id", "earliest"] {
        if col(need).is_none() {
            errors.push(err(
                1,
                need,
                "",
                format!(
                    "the file has no column named {need:?}; the header row must name: {}",
                    COLUMNS.join(", ")
                ),
            ));
        }
    }
    if col("clinic").is_none() && clinic.is_none() {
        errors.push(err(
            1,
            "clinic",
            "",
            "the file has no \"clinic\" column; add one, or give the clinic with --clinic".into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(err(
                    row,
                    "",
                    "",
                    format!(
                        "this row cannot be read as CSV ({e}); check for a stray quote (\") in it"
                    ),
                ));
                continue;
            }
        };
        let cell = |name: &str| col(name).and_then(|c| record.get(c)).unwrap_or("").trim();
        if record.iter().all(str::is_empty) {
            continue;
        }
        let before = errors.len();
        let mut bad =
            |column: &str, message: String| errors.push(err(row, column, cell(column), message));
        let id = cell("id").to_string();
        if id.is_empty() {
            bad(
                "id",
                "is empty; give each row its own id, so importing the file again updates it".into(),
            );
        } else if let Some(first) = seen.insert(id.clone(), row) {
            bad(
                "id",
                format!("is also the id of row {first}; each row needs its own id"),
            );
        }
        let patient = cell("patient_id").to_string();
        if patient.is_empty() {
            bad(
                "patient_id",
                "is empty; give the patient id as the practice system writes it".into(),
            );
        }
        let clinic_key = match cell("clinic") {
            "" => clinic.unwrap_or_default().to_string(),
            c => c.to_string(),
        };
        let zone = match config.clinic(&clinic_key) {
            Some(c) => Some(c.time_zone),
            None => {
                bad(
                    "clinic",
                    format!(
                        "{:?} is not a clinic; use one of: {}",
                        shown_cell(&clinic_key),
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
        };
        let date = |name: &str, bad: &mut dyn FnMut(&str, String)| -> Option<NaiveDate> {
            let v = cell(name);
            if v.is_empty() {
                return None;
            }
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| {
                    bad(
                        name,
                        "is not a date; write it as year-month-day, e.g. 2026-12-01".into(),
                    )
                })
                .ok()
        };
        let earliest = date("earliest", &mut bad);
        if cell("earliest").is_empty() {
            bad(
                "earliest",
                "is empty; give the first date that suits the patient, e.g. 2026-12-01".into(),
            );
        }
        let latest = date("latest", &mut bad);
        if let (Some(e), Some(l)) = (earliest, latest)
            && l < e
        {
            bad(
                "latest",
                format!("is before the earliest date {e}; swap them or correct one"),
            );
        }
        let days = match parse_days(cell("days")) {
            Ok(d) => d,
            Err(m) => {
                bad("days", m);
                String::new()
            }
        };
        let (time_from, time_to) = match parse_band(cell("time_band")) {
            Ok(b) => b,
            Err(m) => {
                bad("time_band", m);
                (None, None)
            }
        };
        let expires = date("expires", &mut bad);
        let max_offers = match cell("max_offers") {
            "" => 3,
            v => match v.parse::<u32>() {
                Ok(n) if (1..=50).contains(&n) => n,
                _ => {
                    bad("max_offers", "is not a number from 1 to 50; give how many offers this patient may get at most".into());
                    3
                }
            },
        };
        if errors.len() > before {
            continue;
        }
        let (Some(earliest), Some(zone)) = (earliest, zone) else {
            continue;
        };
        rows.push(EntryRow {
            row,
            id,
            patient,
            clinic: clinic_key,
            provider: Some(cell("provider").to_string()).filter(|p| !p.is_empty()),
            earliest,
            latest,
            days,
            time_from,
            time_to,
            expires_at: expires.map(|d| crate::time::local_day_bounds(zone, d).1),
            max_offers,
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(err(2, "", "", "the file has a header but no rows".into()));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// `Mon-Fri`, `1-5`, `Mon,Wed`, `sat-mon` (wrapping) or empty (every day) → ISO weekday digits.
pub fn parse_days(text: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let bad = || {
        format!(
            "{:?} is not a set of weekdays; write e.g. Mon-Fri, 1-5 (1 is Monday) or Mon,Wed,Fri",
            shown_cell(text)
        )
    };
    if text.trim().is_empty() {
        return Ok("1234567".into());
    }
    let day = |s: &str| -> Option<u32> {
        let s = s.trim().to_lowercase();
        if let Ok(n) = s.parse::<u32>() {
            return (1..=7).contains(&n).then_some(n);
        }
        NAMES
            .iter()
            .position(|n| s.len() >= 3 && n.starts_with(&s[..3]) && n.len() <= s.len())
            .map(|i| i as u32 + 1)
    };
    let mut set = [false; 8];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
                let mut d = a;
                loop {
                    set[d as usize] = true;
                    if d == b {
                        break;
                    }
                    d = d % 7 + 1;
                }
            }
            None => set[day(part).ok_or_else(bad)? as usize] = true,
        }
    }
    Ok((1..=7)
        .filter(|d| set[*d])
        .map(|d| char::from_digit(d as u32, 10).unwrap_or('0'))
        .collect())
}

/// `09:00-12:00` or empty (any time) → the band's ends.
pub fn parse_band(text: &str) -> Result<(Option<NaiveTime>, Option<NaiveTime>), String> {
    if text.trim().is_empty() {
        return Ok((None, None));
    }
    let bad = || {
        format!(
            "{:?} is not a time band; write it as HH:MM-HH:MM, e.g. 09:00-12:00",
            shown_cell(text)
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let t = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| bad());
    let (from, to) = (t(a)?, t(b)?);
    if to <= from {
        return Err(format!(
            "{:?} ends before it starts; write the earlier time first, e.g. 09:00-12:00",
            shown_cell(text)
        ));
    }
    Ok((Some(from), Some(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_are_read_as_names_numbers_lists_and_wrapping_ranges() {
        assert_eq!(parse_days("Mon-Fri").as_deref(), Ok("12345"));
        assert_eq!(parse_days("1-5").as_deref(), Ok("12345"));
        assert_eq!(parse_days("mon,Wed,friday").as_deref(), Ok("135"));
        assert_eq!(parse_days("Sat-Mon").as_deref(), Ok("167"));
        assert_eq!(parse_days("").as_deref(), Ok("1234567"));
        assert!(parse_days("Funday").is_err_and(|m| m.contains("Mon-Fri")));
        assert!(parse_days("0-8").is_err());
    }

    #[test]
    fn a_time_band_must_run_forwards() {
        let (a, b) = parse_band("09:00-12:00").expect("band");
        assert_eq!(
            (a, b),
            (
                NaiveTime::from_hms_opt(9, 0, 0),
                NaiveTime::from_hms_opt(12, 0, 0)
            )
        );
        assert!(parse_band("12:00-09:00").is_err_and(|m| m.contains("ends before it starts")));
        assert!(parse_band("morning").is_err_and(|m| m.contains("HH:MM-HH:MM")));
    }
}
