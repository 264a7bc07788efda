//! Single values read within their documented ranges: spans, rule offsets, quiet hours,
//! cron cadences and whole numbers, each refused with a message that says how to write it.

use std::fmt;

use chrono::{DateTime, Duration, NaiveTime, Utc};

use super::{Offset, QuietHours};

/// Checks a cron expression as the scheduler will read it (six fields, seconds first) and
/// that it fires within 366 days of `now`: one that never does (`0 0 0 31 2 *`) would leave
/// its job silently off.
pub fn check_cron(expr: &str, now: DateTime<Utc>) -> Result<(), String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; write six, seconds first: \"sec min hour day-of-month month day-of-week\", e.g. \"0 * * * * *\" for every minute"
        ));
    }
    let not_cron = |e: &dyn fmt::Debug| {
        format!(
            "{expr:?} is not a cron expression ({e:?}); e.g. \"*/15 * * * * *\" is every 15 seconds"
        )
    };
    let mut job = tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}))
        .map_err(|e| not_cron(&e))?;
    let schedule = job
        .job_data()
        .map_err(|e| not_cron(&e))?
        .schedule()
        .ok_or_else(|| not_cron(&"no schedule"))?;
    match schedule.find_next_occurrence(&now, false) {
        Ok(next) if next - now <= Duration::days(366) => Ok(()),
        _ => Err(format!(
            "{expr:?} never fires within the next 366 days, so its job would never run; check the day of the month against the month (e.g. \"0 0 3 * * *\" is every day at 03:00 UTC)"
        )),
    }
}

/// Parses a span written as a whole number and a unit: `90s`, `30m`, `4h`, `2d` (24 hours).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_span(s).map_err(|e| match e {
        SpanError::Malformed(m) => m,
        SpanError::TooLong => format!(
            "{s:?} is too long to be a duration; give a number of seconds, minutes, hours or days that fits"
        ),
    })
}

/// Why a span could not be read.
enum SpanError {
    /// Not a whole number and a unit: the message says how to write one.
    Malformed(String),
    /// A well-formed span beyond what chrono can represent (about 292 million years); the
    /// caller names the range it accepts.
    TooLong,
}

fn parse_span(s: &str) -> Result<Duration, SpanError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        return Err(SpanError::Malformed(format!(
            "{s:?} is not a duration; write a whole number and a unit: 90s, 30m, 4h or 2d"
        )));
    }
    let make: fn(i64) -> Option<Duration> = match unit.trim() {
        "s" => Duration::try_seconds,
        "m" | "min" => Duration::try_minutes,
        "h" => Duration::try_hours,
        "d" => Duration::try_days,
        _ => {
            return Err(SpanError::Malformed(format!(
                "{s:?} has an unknown unit; use s, m, h or d (e.g. 30m, 4h, 2d)"
            )));
        }
    };
    // Only digits are left, so a number that does not parse is one too large for an i64.
    let n: i64 = digits.parse().map_err(|_| SpanError::TooLong)?;
    make(n).ok_or(SpanError::TooLong)
}

/// The accepted range of a span-valued key, in seconds, both ends included. Every duration
/// key has one, so no value can overflow an addition to a timestamp or an `Instant` later.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    min: i64,
    max: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Bounds {
    pub(super) const fn new(min: i64, max: i64) -> Self {
        Self { min, max }
    }

    /// `between 1s and 10m`, as messages and `reminders.toml` say it.
    fn text(self) -> String {
        format!(
            "between {} and {}",
            span_text(self.min),
            span_text(self.max)
        )
    }

    /// `text` read as a span within these bounds, or the message naming them.
    pub(super) fn span(self, text: &str) -> Result<Duration, String> {
        match parse_span(text) {
            Err(SpanError::Malformed(m)) => Err(m),
            Err(SpanError::TooLong) => Err(format!("{text:?} is too long; give {}", self.text())),
            Ok(d) if d.num_seconds() < self.min => {
                Err(format!("{text:?} is too short; give {}", self.text()))
            }
            Ok(d) if d.num_seconds() > self.max => {
                Err(format!("{text:?} is too long; give {}", self.text()))
            }
            Ok(d) => Ok(d),
        }
    }

    /// As [`Bounds::span`], for the settings that feed `std` timers.
    pub(super) fn std_span(self, text: &str) -> Result<std::time::Duration, String> {
        // Never negative: every minimum is at least zero.
        self.span(text)
            .map(|d| d.to_std().unwrap_or(std::time::Duration::ZERO))
    }
}

/// A number of seconds in the largest unit that writes it whole: `90s`, `15m`, `7d`.
fn span_text(secs: i64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MINUTE == 0 => format!("{}m", s / MINUTE),
        s => format!("{s}s"),
    }
}

// The accepted range of every duration key; `reminders.toml` gives each next to its key.
pub(super) const STALE_AFTER: Bounds = Bounds::new(10, 7 * DAY);
pub(super) const SHUTDOWN_GRACE: Bounds = Bounds::new(0, 15 * MINUTE);
pub(super) const DESK_SESSION: Bounds = Bounds::new(MINUTE, 30 * DAY);
pub(super) const DESK_LOCKOUT: Bounds = Bounds::new(MINUTE, 7 * DAY);
pub(super) const DESK_IDLE: Bounds = Bounds::new(MINUTE, 24 * HOUR);
pub(super) const HEADER_TIMEOUT: Bounds = Bounds::new(1, 10 * MINUTE);
pub(super) const SERVER_REQUEST_TIMEOUT: Bounds = Bounds::new(1, HOUR);
pub(super) const CONNECT_TIMEOUT: Bounds = Bounds::new(1, 5 * MINUTE);
pub(super) const API_REQUEST_TIMEOUT: Bounds = Bounds::new(1, 10 * MINUTE);
pub(super) const RETRY_BASE: Bounds = Bounds::new(1, HOUR);
pub(super) const RETRY_MAX: Bounds = Bounds::new(1, 7 * DAY);
pub(super) const RECIPIENT_SPACING: Bounds = Bounds::new(0, HOUR);
pub(super) const UNKNOWN_AFTER: Bounds = Bounds::new(1, 30 * DAY);
pub(super) const RETRY_WHATSAPP: Bounds = Bounds::new(DAY, 3650 * DAY);
pub(super) const MAX_IMPORT_AGE: Bounds = Bounds::new(HOUR, 3650 * DAY);
pub(super) const MAX_SILENCE: Bounds = Bounds::new(MINUTE, 30 * DAY);
pub(super) const RULE_BEFORE: Bounds = Bounds::new(MINUTE, 366 * DAY);
pub(super) const RULE_LATEST: Bounds = Bounds::new(0, 366 * DAY);

/// Days after today that Follow-ups lists: two weeks is already more than anyone calls ahead.
pub(super) const FOLLOW_UP_DAYS: std::ops::RangeInclusive<u32> = 0..=14;

/// Checks a whole-number setting against its range; `unit` follows the range in the message
/// (" bytes", " minutes", or a reason).
pub(super) fn check_number<T>(
    key: &str,
    value: T,
    range: &std::ops::RangeInclusive<T>,
    unit: &str,
    push: &mut impl FnMut(String, String),
) -> bool
where
    T: PartialOrd + fmt::Display + Copy,
{
    if range.contains(&value) {
        return true;
    }
    push(
        key.into(),
        format!(
            "{value} is out of range: must be between {} and {}{unit}",
            range.start(),
            range.end()
        ),
    );
    false
}

/// Parses a rule offset: `Nd` is calendar days at the same wall time, anything else exact.
/// Either must lie between 1m and 366d.
pub fn parse_offset(s: &str) -> Result<Offset, String> {
    let t = s.trim();
    // Checked as a span first, so a day count too large for anything gets the range.
    let span = RULE_BEFORE.span(t)?;
    match t.strip_suffix('d') {
        Some(days) => days
            .parse::<u32>()
            .map(Offset::Days)
            .map_err(|_| format!("{s:?} is not a number of days; write e.g. 1d or 2d")),
        None => Ok(Offset::Exact(span)),
    }
}

/// Parses `21:00-08:00`.
pub fn parse_quiet_hours(s: &str) -> Result<QuietHours, String> {
    let bad = || format!("{s:?} is not a period; write it as HH:MM-HH:MM, e.g. 21:00-08:00");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
    let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?;
    if start == end {
        return Err(format!(
            "{s:?} starts and ends at the same time; leave quiet_hours out for none"
        ));
    }
    Ok(QuietHours { start, end })
}

/// Whether chrono can render this strftime pattern (an unknown `%` code fails at format time).
pub(super) fn formats_cleanly(pattern: &str) -> bool {
    use std::fmt::Write;
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
        .and_then(|d| d.and_hms_opt(14, 35, 0))
        .unwrap_or_default();
    let mut out = String::new();
    write!(out, "{}", t.format(pattern)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_too_large_for_any_clock_are_errors_not_panics() {
        for text in [
            "9999999999999999d",
            "9223372036854775807s",
            "9223372036854775807m",
            "153722867280912931m",
            "99999999999999999999s",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(
                err.contains(&format!("{text:?} is too long to be a duration")),
                "{err}"
            );
        }
        // The largest span chrono holds is about 292 million years; just inside it reads.
        assert_eq!(
            parse_duration("106751991167d").map(|d| d.num_days()),
            Ok(106_751_991_167)
        );
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration(" 2d "), Ok(Duration::days(2)));
        assert!(parse_duration("d").is_err_and(|m| m.contains("is not a duration")));
        assert!(parse_duration("5w").is_err_and(|m| m.contains("unknown unit")));
    }

    #[test]
    fn ranges_name_both_ends_and_admit_them() {
        assert_eq!(STALE_AFTER.span("10s"), Ok(Duration::seconds(10)));
        assert_eq!(STALE_AFTER.span("7d"), Ok(Duration::days(7)));
        assert_eq!(
            STALE_AFTER.span("169h"),
            Err("\"169h\" is too long; give between 10s and 7d".into())
        );
        assert_eq!(
            STALE_AFTER.span("9s"),
            Err("\"9s\" is too short; give between 10s and 7d".into())
        );
        assert_eq!(
            DESK_LOCKOUT.span("100000000d"),
            Err("\"100000000d\" is too long; give between 1m and 7d".into())
        );
        assert_eq!(
            RECIPIENT_SPACING.std_span("0s"),
            Ok(std::time::Duration::ZERO)
        );
        assert_eq!(span_text(90), "90s");
        assert_eq!(span_text(3650 * DAY), "3650d");
    }

    #[test]
    fn rule_offsets_stay_within_a_year() {
        assert_eq!(parse_offset("1d"), Ok(Offset::Days(1)));
        assert_eq!(parse_offset("366d"), Ok(Offset::Days(366)));
        assert_eq!(
            parse_offset("90m"),
            Ok(Offset::Exact(Duration::minutes(90)))
        );
        for (text, why) in [
            ("367d", "too long"),
            ("4294967296d", "too long"),
            ("9223372036854775807s", "too long"),
            ("0d", "too short"),
            ("30s", "too short"),
        ] {
            let err = parse_offset(text).expect_err(text);
            assert_eq!(err, format!("{text:?} is {why}; give between 1m and 366d"));
        }
    }

    #[test]
    fn a_cron_must_fire_within_366_days_of_now() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .expect("instant")
                .with_timezone(&Utc)
        };
        assert_eq!(
            check_cron("*/15 * * * * *", at("2027-03-01T00:00:00Z")),
            Ok(())
        );
        // 29 February: 365 days away from 1 March 2027, almost four years from 1 March 2028.
        assert_eq!(
            check_cron("0 0 0 29 2 *", at("2027-03-01T00:00:00Z")),
            Ok(())
        );
        let err = check_cron("0 0 0 29 2 *", at("2028-03-01T00:00:00Z")).expect_err("2032");
        assert!(err.starts_with("\"0 0 0 29 2 *\" never fires within the next 366 days"));
        for never in ["0 0 0 31 2 *", "0 0 0 31 4 *", "0 0 0 30 2 *"] {
            assert!(
                check_cron(never, at("2027-03-01T00:00:00Z"))
                    .is_err_and(|m| m.contains("never fires")),
                "{never}"
            );
        }
        assert!(
            check_cron("0 * * * *", at("2027-03-01T00:00:00Z"))
                .is_err_and(|m| m.contains("has 5 fields"))
        );
        assert!(
            check_cron("0 * * * * nope", at("2027-03-01T00:00:00Z"))
                .is_err_and(|m| m.contains("is not a cron expression"))
        );
    }
}
