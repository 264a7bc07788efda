//! Reading one SIU message into the normalised record (pure: no I/O, no clock). Every refusal
//! names the field it read and what the practice system or the config should change.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use hl7_parser::Message;
use hl7_parser::message::{Field, Segment, Separators};

use crate::config::{Clinic, Config, Feed};
use crate::feeds::{Reading, Refusal, Slot};
use crate::import::{ImportRow, Reach, RowStatus};
use crate::phone::{self, E164};
use crate::time::{LocalTimeError, local_to_utc};

/// What MSH says about a message: enough to store it and to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// MSH-10, the message control id (empty when the sender left it out).
    pub control_id: String,
    /// MSH-9's type and event, `SIU^S12` (`ADT^A01` for one we do not take).
    pub trigger: String,
    /// MSH-12, the HL7 version (`2.3`, `2.5.1`).
    pub version: String,
    /// MSH-11, the processing id (`P`, `T`, `D`).
    pub processing_id: String,
    /// MSH-3 to MSH-6 as written: sending application and facility, receiving application
    /// and facility (swapped in the ACK).
    pub parties: [String; 4],
    /// MSH-1 and MSH-2, the message's own separators (the ACK uses the same).
    pub encoding: String,
    /// The separators, for escaping the ACK's text.
    pub separators: Separators,
}

/// What a read message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Apply this record.
    Apply(Box<Reading>),
    /// An SIU event that changes nothing reminderd keeps (S18–S22: a service or resource
    /// changed); acknowledged with `AA`, with why it was ignored.
    Ignore(String),
}

/// Parses `body` (segments split by `\r`, `\n` or `\r\n`) as far as HL7 allows.
fn parse(body: &str) -> Option<Message<'_>> {
    let body = body.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    if !body.starts_with("MSH") {
        return None;
    }
    // The parser is a third party's: a panic there must not take a connection (or the
    // daemon's task) with it.
    let msg = std::panic::catch_unwind(|| Message::parse_with_lenient_newlines(body, true).ok())
        .ok()
        .flatten()?;
    usable(&msg.separators).then_some(msg)
}

/// Whether MSH-1 and MSH-2 name five separators a message can be written with: distinct,
/// visible, and neither a letter, a digit nor a line break. Anything else (an MSH whose
/// encoding characters are missing, so the next segment's start is read as them) is not
/// HL7 v2; answering in such separators would break the ACK itself.
fn usable(s: &Separators) -> bool {
    let all = [s.field, s.component, s.repetition, s.escape, s.subcomponent];
    all.iter()
        .all(|c| c.is_ascii_graphic() && !c.is_ascii_alphanumeric())
        && all
            .iter()
            .enumerate()
            .all(|(i, c)| !all[i + 1..].contains(c))
}

/// The header of a message (`None`: no MSH segment, not HL7 v2 at all).
pub fn header(body: &str) -> Option<Header> {
    let msg = parse(body)?;
    Some(header_of(&msg))
}

fn header_of(msg: &Message<'_>) -> Header {
    let msh = msg.segment("MSH");
    let raw = |n: usize| {
        msh.and_then(|s| s.field(n))
            .map_or(String::new(), |f| f.raw_value().to_string())
    };
    let s = msg.separators;
    let ty = text(msg, "MSH", 9, 1);
    let event = text(msg, "MSH", 9, 2);
    Header {
        control_id: text(msg, "MSH", 10, 1),
        trigger: if event.is_empty() {
            ty
        } else {
            format!("{ty}^{event}")
        },
        version: text(msg, "MSH", 12, 1),
        processing_id: text(msg, "MSH", 11, 1),
        parties: [raw(3), raw(4), raw(5), raw(6)],
        encoding: format!(
            "{}{}{}{}{}",
            s.field, s.component, s.repetition, s.escape, s.subcomponent
        ),
        separators: s,
    }
}

/// Reads an SIU message for `feed`: the record it carries, or why it cannot be applied.
pub fn read(config: &Config, feed: &Feed, body: &str) -> Result<(Header, Action), Refusal> {
    let msg = parse(body).ok_or_else(|| {
        Refusal::Rejected(
            "not an HL7 v2 message: it does not start with an MSH segment; send one HL7 message per frame"
                .into(),
        )
    })?;
    let head = header_of(&msg);
    let ty = text(&msg, "MSH", 9, 1);
    let event = text(&msg, "MSH", 9, 2).to_ascii_uppercase();
    if !ty.eq_ignore_ascii_case("SIU") {
        return Err(Refusal::Rejected(format!(
            "MSH-9 is {}: not a scheduling message (SIU); this listener takes SIU S12 to S26 only, so route other messages elsewhere in the interface engine",
            if head.trigger.is_empty() {
                "empty".to_string()
            } else {
                head.trigger.replace('^', " ")
            }
        )));
    }
    let action = match event.as_str() {
        "S12" | "S13" | "S14" | "S15" | "S16" | "S17" | "S26" => {
            let row = appointment(config, feed, &msg, &event)?;
            Action::Apply(Box::new(if event == "S15" && by_patient(feed, &msg) {
                Reading::PatientCancelled(row)
            } else {
                Reading::Appointment(row)
            }))
        }
        "S23" | "S24" => Action::Apply(Box::new(Reading::Slot(slot(config, feed, &msg, &event)?))),
        "S18" | "S19" | "S20" | "S21" | "S22" => Action::Ignore(format!(
            "ignored: SIU {event} changes a service or resource of the appointment, not its time or status"
        )),
        "" => {
            return Err(Refusal::Rejected(
                "MSH-9.2 (the trigger event) is empty; send SIU S12 to S26".into(),
            ));
        }
        other => {
            return Err(Refusal::Rejected(format!(
                "SIU {other} is not a scheduling event reminderd takes; send S12 to S17, S23, S24 or S26"
            )));
        }
    };
    Ok((head, action))
}

/// A field component's text, escapes decoded, trimmed; HL7's explicit null `""` is empty.
fn text(msg: &Message<'_>, seg: &str, field: usize, comp: usize) -> String {
    msg.segment(seg)
        .map_or(String::new(), |s| seg_text(s, &msg.separators, field, comp))
}

fn seg_text(s: &Segment<'_>, sep: &Separators, field: usize, comp: usize) -> String {
    s.field(field)
        .map_or(String::new(), |f| field_text(f, sep, 1, comp))
}

fn field_text(f: &Field<'_>, sep: &Separators, repeat: usize, comp: usize) -> String {
    f.repeat(repeat)
        .and_then(|r| r.component(comp))
        .map_or(String::new(), |c| {
            // A TS inside a TQ carries its precision as a subcomponent: the time is the first.
            let first = c.subcomponent(1).map_or("", |s| s.raw_value());
            clean(&decode(sep, first))
        })
}

/// Undoes HL7 escapes (`\F\`, `\S\`, `\T\`, `\R\`, `\E\`, `\X0D\`, `\.br\`);
/// an unknown escape is kept as its text. (hl7-parser's own decoder slices by character
/// count and panics on non-ASCII text, so it is not used.)
pub(super) fn decode(sep: &Separators, s: &str) -> String {
    let esc = sep.escape;
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(esc) {
        out.push_str(&rest[..i]);
        let after = &rest[i + esc.len_utf8()..];
        let Some(j) = after.find(esc) else {
            out.push_str(&rest[i..]);
            return out;
        };
        match &after[..j] {
            "F" => out.push(sep.field),
            "S" => out.push(sep.component),
            "T" => out.push(sep.subcomponent),
            "R" => out.push(sep.repetition),
            "E" => out.push(esc),
            "X0D" | "X0d" | ".br" => out.push('\r'),
            "X0A" | "X0a" => out.push('\n'),
            other => out.push_str(other),
        }
        rest = &after[j + esc.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn clean(s: &str) -> String {
    let t = s.trim();
    if t == "\"\"" {
        String::new()
    } else {
        t.to_string()
    }
}

/// The first non-empty value among segments named `seg` (AIS, AIL, AIP repeat per resource).
fn first_of(msg: &Message<'_>, seg: &str, field: usize, comp: usize) -> Option<String> {
    msg.segments()
        .filter(|s| s.name == seg)
        .map(|s| seg_text(s, &msg.separators, field, comp))
        .find(|v| !v.is_empty())
}

fn appointment(
    config: &Config,
    feed: &Feed,
    msg: &Message<'_>,
    event: &str,
) -> Result<ImportRow, Refusal> {
    let mut id = text(msg, "SCH", 2, 1);
    if id.is_empty() {
        id = text(msg, "SCH", 1, 1);
    }
    if id.is_empty() {
        return Err(Refusal::error(
            "SCH-2 (filler appointment id) and SCH-1 (placer appointment id) are both empty: the appointment has no id; have the interface engine fill SCH-2",
        ));
    }
    if id.chars().count() > 200 {
        return Err(Refusal::error(
            "SCH-2 is longer than 200 characters: not an appointment id",
        ));
    }
    let err = |reason: String| Refusal::Error {
        reason,
        external_id: Some(id.clone()),
    };
    let (clinic, _) = clinic(config, feed, msg).map_err(err)?;
    let status = status(msg, event).map_err(err)?;
    let (starts_at, duration_min) = timing(msg, clinic).map_err(err)?;
    let patient_id = text(msg, "PID", 3, 1);
    if patient_id.is_empty() {
        return Err(err(
            "PID-3 (patient identifier list) is empty: no patient id; send the patient's MRN in PID-3".into(),
        ));
    }
    let family = text(msg, "PID", 5, 1);
    let given = text(msg, "PID", 5, 2);
    let patient_name = [given.as_str(), family.as_str()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if patient_name.is_empty() {
        return Err(err(
            "PID-5 (patient name) is empty: send family^given in PID-5".into(),
        ));
    }
    let phone = phone(msg, clinic).map_err(err)?;
    let language =
        language(&text(msg, "PID", 15, 1)).unwrap_or_else(|| clinic.default_language.clone());
    Ok(ImportRow {
        row: 1,
        clinic: clinic.key.clone(),
        appointment_id: id,
        patient_id,
        patient_name,
        phone,
        language,
        local_date: starts_at.with_timezone(&clinic.time_zone).date_naive(),
        starts_at,
        duration_min,
        provider: provider(msg),
        status,
        reach: Reach::default(),
    })
}

fn slot(config: &Config, feed: &Feed, msg: &Message<'_>, event: &str) -> Result<Slot, Refusal> {
    let (clinic, location) = clinic(config, feed, msg).map_err(Refusal::error)?;
    let (starts_at, duration_min) = timing(msg, clinic).map_err(Refusal::error)?;
    Ok(Slot {
        clinic: clinic.key.clone(),
        opened: event == "S24",
        starts_at,
        duration_min,
        provider: provider(msg),
        location,
    })
}

/// The clinic: AIL-3.1 (point of care), AIL-3.4 (facility) or MSH-4 (sending facility)
/// looked up in `[feeds.NAME.locations]`, else the feed's `clinic`.
fn clinic<'c>(
    config: &'c Config,
    feed: &Feed,
    msg: &Message<'_>,
) -> Result<(&'c Clinic, Option<String>), String> {
    let candidates = [
        ("AIL-3.1", first_of(msg, "AIL", 3, 1)),
        ("AIL-3.4", first_of(msg, "AIL", 3, 4)),
        (
            "MSH-4",
            Some(text(msg, "MSH", 4, 1)).filter(|s| !s.is_empty()),
        ),
    ];
    let named = candidates.iter().find_map(|(_, c)| {
        c.as_ref()
            .filter(|c| feed.locations.contains_key(c.as_str()))
    });
    let location = first_of(msg, "AIL", 3, 1).or_else(|| first_of(msg, "AIL", 3, 4));
    let key = named
        .and_then(|l| feed.locations.get(l.as_str()))
        .or(feed.clinic.as_ref());
    let Some(key) = key else {
        let said: Vec<String> = candidates
            .iter()
            .filter_map(|(f, c)| c.as_ref().map(|c| format!("{f} {c:?}")))
            .collect();
        let example = candidates
            .iter()
            .find_map(|(_, c)| c.clone())
            .unwrap_or_else(|| "LOCATION".into());
        return Err(format!(
            "{}: not a location of feed {name}; add it to the config under [feeds.{name}.locations], e.g. \"{example}\" = \"CLINIC_KEY\", or give the feed a clinic",
            if said.is_empty() {
                "AIL-3 and MSH-4 are empty".to_string()
            } else {
                said.join(", ")
            },
            name = feed.name
        ));
    };
    let clinic = config.clinic(key).ok_or_else(|| {
        format!(
            "feed {} names clinic {key:?}, which is not in [clinics.*]; fix the config",
            feed.name
        )
    })?;
    Ok((clinic, location))
}

/// Whether SCH-6 (event reason) names the patient as the one who cancelled: its identifier
/// is one of the feed's `patient_cancel_reasons` (any case).
fn by_patient(feed: &Feed, msg: &Message<'_>) -> bool {
    let reason = text(msg, "SCH", 6, 1);
    let reason = reason.trim();
    !reason.is_empty()
        && feed.hl7().is_some_and(|h| {
            h.patient_cancel_reasons
                .iter()
                .any(|r| r.eq_ignore_ascii_case(reason))
        })
}

/// The row status: the trigger for S15/S16/S17/S26, else SCH-25 (the filler status).
fn status(msg: &Message<'_>, event: &str) -> Result<RowStatus, String> {
    match event {
        "S15" | "S16" => return Ok(RowStatus::Cancelled),
        "S17" => return Ok(RowStatus::Deleted),
        "S26" => return Ok(RowStatus::NoShow),
        _ => {}
    }
    let code = text(msg, "SCH", 25, 1);
    let words = if code.is_empty() {
        text(msg, "SCH", 25, 2)
    } else {
        code
    };
    Ok(match words.to_ascii_lowercase().as_str() {
        "" | "booked" | "pending" | "started" | "overbook" => RowStatus::Booked,
        "complete" | "completed" => RowStatus::Completed,
        "noshow" | "no show" | "no-show" => RowStatus::NoShow,
        "cancelled" | "canceled" | "dc" | "discontinued" => RowStatus::Cancelled,
        "deleted" => RowStatus::Deleted,
        "waitlist" => {
            return Err(
                "SCH-25 (filler status) is Waitlist: a waitlist entry is not an appointment; send it once it is Booked".into(),
            );
        }
        "blocked" => {
            return Err(
                "SCH-25 (filler status) is Blocked: a blocked slot is not an appointment; send blocked time as SIU S23".into(),
            );
        }
        _ => {
            return Err(format!(
                "SCH-25 (filler status) {words:?} is not a status of HL7 table 0278; send Booked, Pending, Complete, Noshow, Cancelled or Deleted"
            ));
        }
    })
}

/// Start (UTC) and length in minutes.
fn timing(msg: &Message<'_>, clinic: &Clinic) -> Result<(DateTime<Utc>, u32), String> {
    let starts = [
        ("SCH-11.4", Some(text(msg, "SCH", 11, 4))),
        ("TQ1-7", Some(text(msg, "TQ1", 7, 1))),
        ("AIS-4", first_of(msg, "AIS", 4, 1)),
        ("AIL-6", first_of(msg, "AIL", 6, 1)),
        ("AIP-6", first_of(msg, "AIP", 6, 1)),
    ];
    let Some((field, raw)) = starts
        .into_iter()
        .find_map(|(f, v)| v.filter(|v| !v.is_empty()).map(|v| (f, v)))
    else {
        return Err(
            "SCH-11.4 and TQ1-7 are both empty (and so are AIS-4, AIL-6 and AIP-6): no start time; send the start in TQ1-7 (v2.5) or SCH-11.4 (v2.3)".into(),
        );
    };
    let start = instant(field, &raw, clinic)?;
    let ends = [
        ("SCH-11.5", text(msg, "SCH", 11, 5)),
        ("TQ1-8", text(msg, "TQ1", 8, 1)),
    ];
    let minutes = match duration(msg)? {
        Some(m) => m,
        None => match ends.into_iter().find(|(_, v)| !v.is_empty()) {
            Some((f, raw)) => {
                let end = instant(f, &raw, clinic)?;
                let m = (end - start).num_minutes();
                if m <= 0 {
                    return Err(format!(
                        "{f} (end) {raw:?} is not after the start ({field}); fix the end time or send SCH-9 (duration)"
                    ));
                }
                m
            }
            None => {
                return Err(
                    "no length: SCH-9 (duration), AIS-7, AIL-9 and AIP-9 are empty and there is no end time (SCH-11.5 or TQ1-8); send SCH-9 with SCH-10 = MIN".into(),
                );
            }
        },
    };
    match u32::try_from(minutes) {
        Ok(m) if (1..=24 * 60).contains(&m) => Ok((start, m)),
        _ => Err(format!(
            "the appointment would last {minutes} minutes: a length is from 1 minute to 24 hours; check SCH-9/SCH-10 (duration and units)"
        )),
    }
}

/// SCH-9/SCH-10, else AIS-7/8, AIL-9/10, AIP-9/10, in minutes (`None`: none given).
fn duration(msg: &Message<'_>) -> Result<Option<i64>, String> {
    let sch_unit = {
        let u = text(msg, "SCH", 10, 1);
        if u.is_empty() {
            text(msg, "SCH", 9, 2)
        } else {
            u
        }
    };
    let given = [
        (
            "SCH-9",
            Some(text(msg, "SCH", 9, 1)),
            "SCH-10",
            Some(sch_unit),
        ),
        (
            "AIS-7",
            first_of(msg, "AIS", 7, 1),
            "AIS-8",
            first_of(msg, "AIS", 8, 1),
        ),
        (
            "AIL-9",
            first_of(msg, "AIL", 9, 1),
            "AIL-10",
            first_of(msg, "AIL", 10, 1),
        ),
        (
            "AIP-9",
            first_of(msg, "AIP", 9, 1),
            "AIP-10",
            first_of(msg, "AIP", 10, 1),
        ),
    ];
    for (field, value, unit_field, unit) in given {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let n: f64 = value
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n > 0.0 && *n < 1e6)
            .ok_or_else(|| {
                format!("{field} (duration) {value:?} is not a number; send e.g. 15 with {unit_field} = MIN")
            })?;
        let unit = unit.unwrap_or_default();
        let per = match unit.to_ascii_lowercase().as_str() {
            "" | "min" | "m" | "mins" | "minute" | "minutes" => 1.0,
            "hr" | "h" | "hrs" | "hour" | "hours" => 60.0,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0 / 60.0,
            "d" | "day" | "days" => 1440.0,
            _ => {
                return Err(format!(
                    "{unit_field} (duration units) {unit:?} is not a unit reminderd reads; send MIN or HR"
                ));
            }
        };
        #[allow(clippy::cast_possible_truncation)]
        return Ok(Some((n * per).ceil() as i64));
    }
    Ok(None)
}

/// A TS/DTM (`YYYYMMDDHHMM[SS[.S…]][±ZZZZ]`) as an instant: exact with an offset, else a wall
/// time in the clinic's zone with the CSV's rule (a repeated hour: the first; a skipped one:
/// refused).
fn instant(field: &str, raw: &str, clinic: &Clinic) -> Result<DateTime<Utc>, String> {
    let bad = |why: &str| {
        format!(
            "{field} {raw:?} is not a date and time{why}; write YYYYMMDDHHMM[SS], e.g. 20261201093000, with an offset (+0530) or in the clinic's time"
        )
    };
    let (stamp, offset) = match raw.find(['+', '-']) {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let digits = stamp.split('.').next().unwrap_or("");
    if !digits.chars().all(|c| c.is_ascii_digit()) || !digits.is_ascii() {
        return Err(bad(""));
    }
    if digits.len() < 12 {
        return Err(bad(" with a time of day"));
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
    let date = n(0..4)
        .and_then(|y| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, n(4..6)?, n(6..8)?))
        .ok_or_else(|| bad(""))?;
    let time = NaiveTime::from_hms_opt(n(8..10).unwrap_or(99), n(10..12).unwrap_or(99), {
        if digits.len() >= 14 {
            n(12..14).unwrap_or(99)
        } else {
            0
        }
    })
    .ok_or_else(|| bad(""))?;
    match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hhmm = &o[1..];
            let secs = (hhmm.len() == 4 && hhmm.chars().all(|c| c.is_ascii_digit()))
                .then(|| {
                    let h: i32 = hhmm[..2].parse().ok()?;
                    let m: i32 = hhmm[2..].parse().ok()?;
                    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
                })
                .flatten()
                .ok_or_else(|| bad(" (its offset is not ±HHMM)"))?;
            let zone = FixedOffset::east_opt(secs).ok_or_else(|| bad(""))?;
            zone.from_local_datetime(&NaiveDateTime::new(date, time))
                .single()
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| bad(""))
        }
        None => local_to_utc(clinic.time_zone, date, time).map_err(|e @ LocalTimeError::Gap { .. }| {
            format!("{field} {raw:?}: {e}; send the time with its offset, or check it in the practice system")
        }),
    }
}

/// The patient's mobile: PID-13's repetition with XTN.3 = CP, else use PRN, else the first
/// with a number; then PID-14 the same way.
fn phone(msg: &Message<'_>, clinic: &Clinic) -> Result<E164, String> {
    let sep = &msg.separators;
    let Some(pid) = msg.segment("PID") else {
        return Err(
            "the message has no PID segment: no patient; send PID with PID-3, PID-5 and PID-13"
                .into(),
        );
    };
    for (name, n) in [("PID-13", 13), ("PID-14", 14)] {
        let Some(field) = pid.field(n) else { continue };
        let reps: Vec<(String, String, String)> = (1..=field.repeats.len())
            .map(|r| {
                let c = |k| field_text(field, sep, r, k);
                (
                    c(2).to_ascii_uppercase(),
                    c(3).to_ascii_uppercase(),
                    number(&c),
                )
            })
            .filter(|(_, eq, number)| {
                !number.is_empty() && !matches!(eq.as_str(), "FX" | "INTERNET" | "X.400" | "BP")
            })
            .collect();
        let chosen = reps
            .iter()
            .find(|(_, eq, _)| eq == "CP")
            .or_else(|| reps.iter().find(|(us, _, _)| us == "PRN"))
            .or_else(|| reps.first());
        if let Some((_, _, raw)) = chosen {
            return E164::parse(raw, clinic.phone_region).map_err(|e| {
                let words = phone::explain(raw, clinic.phone_region, &e);
                let words = words
                    .strip_prefix("this is ")
                    .or_else(|| words.strip_prefix("the phone number is "))
                    .unwrap_or(&words);
                format!(
                    "{name} (patient's phone) is {words}; correct the patient's mobile number in the practice system"
                )
            });
        }
    }
    Err("PID-13 and PID-14 hold no phone number: add the patient's mobile (XTN.3 = CP) in the practice system".into())
}

/// An XTN's number: XTN.12 (unformatted), XTN.1, or `+`XTN.5 XTN.6 XTN.7.
fn number(c: &dyn Fn(usize) -> String) -> String {
    let unformatted = c(12);
    if !unformatted.is_empty() {
        return unformatted;
    }
    let written = c(1);
    if written.chars().any(|ch| ch.is_ascii_digit()) {
        return written;
    }
    let (country, area, local) = (c(5), c(6), c(7));
    if local.is_empty() {
        return String::new();
    }
    let country = country.trim_start_matches('+');
    if country.is_empty() {
        format!("{area}{local}")
    } else {
        format!("+{country}{area}{local}")
    }
}

/// PID-15 (primary language, CE identifier) as a WhatsApp code; ISO 639-2 codes as HL7 tables
/// write them are read too.
fn language(raw: &str) -> Option<String> {
    let three = match raw.to_ascii_lowercase().as_str() {
        "eng" => Some("en"),
        "hin" => Some("hi"),
        "mar" => Some("mr"),
        "spa" => Some("es"),
        "guj" => Some("gu"),
        "tam" => Some("ta"),
        "tel" => Some("te"),
        "kan" => Some("kn"),
        "ben" => Some("bn"),
        "mal" => Some("ml"),
        "pan" => Some("pa"),
        "urd" => Some("ur"),
        "fra" | "fre" => Some("fr"),
        "por" => Some("pt_BR"),
        "zho" | "chi" => Some("zh_CN"),
        "ara" => Some("ar"),
        _ => None,
    };
    three
        .map(str::to_string)
        .or_else(|| crate::model::normalize_language(raw))
}

/// Who the appointment is with: AIP-3 (XCN), else AIG-3 (CE), else SCH-16 (XCN).
fn provider(msg: &Message<'_>) -> Option<String> {
    let xcn = |seg: &Segment<'_>, field: usize| {
        let c = |k| seg_text(seg, &msg.separators, field, k);
        let name: Vec<String> = [c(6), c(3), c(2)]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        if name.is_empty() || (c(2).is_empty() && c(3).is_empty()) {
            Some(c(1)).filter(|id| !id.is_empty())
        } else {
            Some(name.join(" "))
        }
    };
    let shown = msg
        .segments()
        .filter(|s| s.name == "AIP")
        .find_map(|s| xcn(s, 3))
        .or_else(|| {
            msg.segments().filter(|s| s.name == "AIG").find_map(|s| {
                let c = |k| seg_text(s, &msg.separators, 3, k);
                Some(c(2))
                    .filter(|t| !t.is_empty())
                    .or_else(|| Some(c(1)).filter(|t| !t.is_empty()))
            })
        })
        .or_else(|| msg.segment("SCH").and_then(|s| xcn(s, 16)))?;
    Some(shown.chars().take(200).collect())
}
