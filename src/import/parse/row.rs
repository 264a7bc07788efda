//! One data row's cells → an [`ImportRow`], or an error for each bad cell naming its column
//! and how to fix it.

use chrono::{NaiveDate, NaiveTime};

use super::super::{Audience, ImportRow, ParseOptions, RowError, RowStatus, normalize_language};
use super::date::DateRules;
use super::{Columns, Field, PhoneCache, RawRow};
use crate::config::{Clinic, Config, ImportFormat};
use crate::phone::{PhoneError, Region};
use crate::time::{LocalTimeError, local_to_utc};

/// Longest id or name accepted; longer values are almost always a broken export.
const MAX_TEXT: usize = 200;

pub(super) fn read_row(
    raw: &RawRow,
    columns: &Columns,
    format: &ImportFormat,
    config: &Config,
    opts: &ParseOptions<'_>,
    phones: &PhoneCache,
    errors: &mut Vec<RowError>,
) -> Option<ImportRow> {
    let (forced, desk) = (opts.clinic, opts.audience == Audience::Desk);
    let before = errors.len();
    let mut err = |f: Field, value: &str, message: String| {
        errors.push(RowError {
            patient: None,
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
                    if desk {
                        "no clinic given; choose the clinic above, or fill in the clinic column"
                    } else {
                        "no clinic given; fill in the clinic column or import with --clinic KEY"
                    }
                    .into(),
                );
                None
            }
            (false, _) => match config.clinic(&v.to_lowercase()) {
                Some(c) if forced.is_some_and(|f| f != c.key) => {
                    err(
                        Field::Clinic,
                        v,
                        if desk {
                            format!(
                                "this file is being uploaded for {} but this row is for {}; choose \"The file names the clinic on each row\" above, or fix the row",
                                forced
                                    .and_then(|f| config.clinic(f))
                                    .map_or("another clinic", |f| f.display_name.as_str()),
                                c.display_name
                            )
                        } else {
                            format!(
                                "this file is being imported for clinic {:?} but this row is for {:?}; import it without --clinic, or fix the row",
                                forced.unwrap_or_default(),
                                c.key
                            )
                        },
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
        match phones.get(c.phone_region, v) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                let message = match e {
                    PhoneError::Empty => {
                        "the phone number is empty; every patient needs a mobile number for WhatsApp"
                            .to_string()
                    }
                    _ => format!(
                        "{}; write the full mobile number, with the country code if it is not {} number (e.g. {})",
                        crate::phone::explain(v, c.phone_region, &e),
                        crate::phone::region_article(c.phone_region),
                        example_number(c.phone_region)
                    ),
                };
                err(Field::Phone, v, message);
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
        let rules = DateRules {
            patterns: &format.date_formats,
            order: clinic.and_then(|c| c.date_order),
            audience: opts.audience,
            clinic: clinic.map_or("KEY", |c| c.key.as_str()),
        };
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
            match rules.read(v) {
                Ok(d) => Some(d),
                Err(m) => {
                    err(Field::Date, v, m);
                    None
                }
            }
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
            // Outcomes: the practice system's record of visits that took place, which is also
            // how a history of past appointments gives the evaluation its baseline.
            "completed" | "complete" | "attended" | "fulfilled" => Some(RowStatus::Completed),
            "no_show" | "no-show" | "noshow" | "no show" | "dna" | "did not attend" => {
                Some(RowStatus::NoShow)
            }
            _ => {
                err(Field::Status, v, "is not a status reminderd knows; write booked, cancelled, completed or no_show (or leave it empty for booked)".into());
                None
            }
        }
    };
    // An outcome is known only once the visit's time has come; a completed or no-show row for
    // a later time is a mistake in the export, and recording it would stop its reminders.
    if let (Some(RowStatus::Completed | RowStatus::NoShow), Some(start), Some(now)) =
        (status, starts_at, opts.now)
        && start > now
    {
        err(
            Field::Status,
            get(Field::Status),
            "is for an appointment that has not taken place yet; write booked until its time has passed".into(),
        );
    }

    let reach = super::reach::ReachReader {
        raw,
        columns,
        format,
        region: clinic.map(|c| c.phone_region),
        audience: opts.audience,
        phones,
    }
    .read(&mut err);

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
        reach: reach?,
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

pub(super) fn example_number(region: Region) -> &'static str {
    match region.to_string().as_str() {
        "IN" => "98200 12345 or +91 98200 12345",
        "US" | "CA" => "(212) 555-0142 or +1 212 555 0142",
        "GB" => "07911 123456 or +44 7911 123456",
        _ => "+<country code> <number>",
    }
}
