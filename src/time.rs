//! Time: the injectable clock, and turning a clinic's local wall time into a UTC instant.
//!
//! Every stored instant is UTC (unix seconds). Local times exist only at the edges: reading a
//! CSV, printing for people, and (later) evaluating rules in the clinic's zone.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Where "now" comes from: the system clock in production, a fixed instant in tests and
/// dry-runs (`--now`), a simulated day in the demo. Nothing outside this module reads the
/// system clock.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The operating system's clock.
    System,
    /// Always this instant.
    Fixed(DateTime<Utc>),
    /// A simulated time: where it was last set, running on at the real rate from there.
    Simulated(&'static SimulatedTime),
}

/// The time of a [`Clock::Simulated`]: set to an instant (the demo's evening before a clinic
/// day), it runs on from there as fast as real time, so jobs, retries and timeouts behave as
/// they would in production while every time a clinic sees is one it would recognise.
#[derive(Debug, Default)]
pub struct SimulatedTime {
    /// Milliseconds added to the system clock.
    offset_ms: std::sync::atomic::AtomicI64,
}

impl SimulatedTime {
    /// A simulated time that reads as the system clock until it is set.
    pub const fn new() -> Self {
        Self {
            offset_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Makes `now` the current simulated instant; it runs on from there.
    #[allow(clippy::disallowed_methods)]
    pub fn set(&self, now: DateTime<Utc>) {
        let offset = (now - Utc::now()).num_milliseconds();
        self.offset_ms
            .store(offset, std::sync::atomic::Ordering::Release);
    }

    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::Acquire);
        Utc::now() + chrono::Duration::milliseconds(offset)
    }
}

impl Clock {
    /// A fixed clock when `now` is given, else the system clock.
    pub fn from_option(now: Option<DateTime<Utc>>) -> Self {
        now.map_or(Self::System, Self::Fixed)
    }

    /// The current instant.
    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Fixed(t) => *t,
            Self::Simulated(sim) => sim.now(),
        }
    }
}

/// Why a local wall time cannot be placed on the time line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// The clocks jump over this time (DST starts): it never happens on that day.
    #[error(
        "{time} does not exist on {date} in {zone}: the clocks jump forward over it (daylight saving time starts)"
    )]
    Gap {
        /// The day.
        date: NaiveDate,
        /// The wall time.
        time: NaiveTime,
        /// The clinic's zone.
        zone: Tz,
    },
}

/// The UTC instant of a local wall time in `zone`.
///
/// A time that happens twice (the hour repeated when DST ends) is taken at its *earlier*
/// occurrence, i.e. with the summer offset: a clinic that writes "01:30" on that night almost
/// always means the first 01:30, and reminding early is safer than reminding late. A time that
/// never happens (the hour skipped when DST starts) is an error, because any guess could put
/// the patient at the door an hour early or late.
pub fn local_to_utc(
    zone: Tz,
    date: NaiveDate,
    time: NaiveTime,
) -> Result<DateTime<Utc>, LocalTimeError> {
    match zone.from_local_datetime(&NaiveDateTime::new(date, time)) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => Err(LocalTimeError::Gap { date, time, zone }),
    }
}

/// The UTC instant of a local wall time, never failing: a time lost to a DST gap becomes the
/// first whole quarter-hour after it (02:30 on spring-forward night → 03:00), and a repeated
/// time takes its first occurrence. For computed times (rule offsets, quiet-hour ends), where
/// an error would help nobody.
pub fn local_to_utc_forward(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // Gaps are at most an hour in every zone in use since 1990 (Lord Howe's is 30 minutes).
    for quarter in 0..=12 {
        let t = local + chrono::Duration::minutes(15 * quarter);
        match zone.from_local_datetime(&t) {
            LocalResult::Single(x) | LocalResult::Ambiguous(x, _) => return x.with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    Utc.from_utc_datetime(&local)
}

/// The UTC instants bounding a local calendar day in `zone`, as `[start, end)`.
///
/// Days are 23 or 25 hours long across DST changes, and a zone may skip midnight itself, so
/// the bounds are the first instant whose local date is `date` and the first of the next day.
pub fn local_day_bounds(zone: Tz, date: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start_of = |d: NaiveDate| -> DateTime<Utc> {
        let midnight = d.and_time(NaiveTime::MIN);
        // A gap at midnight (e.g. America/Santiago) moves the day's start to the first valid
        // minute after it; an hour is the longest gap any zone has had in living memory.
        (0..=180)
            .find_map(|m| {
                match zone.from_local_datetime(&(midnight + chrono::Duration::minutes(m))) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        Some(t.with_timezone(&Utc))
                    }
                    LocalResult::None => None,
                }
            })
            .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
    };
    let next = date.succ_opt().unwrap_or(date);
    (start_of(date), start_of(next))
}

/// Parses an instant given on the command line: RFC 3339 (`2026-11-25T09:00:00Z`,
/// `2026-11-25T14:30:00+05:30`).
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant such as 2026-11-25T09:00:00Z ({e})"))
}

/// Unix seconds to a UTC instant; stored values are always in range.
pub fn from_unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe, Pacific};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }
    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }
    fn utc(s: &str) -> DateTime<Utc> {
        parse_instant(s).expect("instant")
    }

    #[test]
    fn a_simulated_clock_starts_where_it_is_set_and_runs_on() {
        static TIME: SimulatedTime = SimulatedTime::new();
        let clock = Clock::Simulated(&TIME);
        let evening = utc("2026-11-25T12:30:00Z");
        TIME.set(evening);
        let first = clock.now();
        assert!((first - evening).num_seconds().abs() < 2, "{first}");
        assert!(clock.now() >= first, "it does not run backwards");
        TIME.set(utc("2026-11-25T23:00:00Z"));
        assert_eq!(clock.now().format("%d %H").to_string(), "25 23");
    }

    #[test]
    fn kolkata_has_no_dst_and_a_half_hour_offset() {
        assert_eq!(
            local_to_utc(Asia::Kolkata, d(2026, 11, 26), t(9, 0)),
            Ok(utc("2026-11-26T03:30:00Z"))
        );
    }

    #[test]
    fn new_york_spring_gap_is_an_error() {
        let err = local_to_utc(America::New_York, d(2026, 3, 8), t(2, 30)).expect_err("gap");
        assert!(
            err.to_string()
                .contains("does not exist on 2026-03-08 in America/New_York"),
            "{err}"
        );
        assert_eq!(
            local_to_utc(America::New_York, d(2026, 3, 8), t(3, 0)),
            Ok(utc("2026-03-08T07:00:00Z"))
        );
    }

    #[test]
    fn new_york_fall_overlap_takes_the_earlier_offset() {
        // 01:30 happens at -04:00 (EDT) and again at -05:00 (EST); EDT is the earlier.
        assert_eq!(
            local_to_utc(America::New_York, d(2026, 11, 1), t(1, 30)),
            Ok(utc("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn london_overlap_and_date_line_zone() {
        assert_eq!(
            local_to_utc(Europe::London, d(2026, 10, 25), t(1, 30)),
            Ok(utc("2026-10-25T00:30:00Z"))
        );
        // Kiritimati is UTC+14: its morning is the previous UTC day.
        assert_eq!(
            local_to_utc(Pacific::Kiritimati, d(2026, 11, 26), t(9, 0)),
            Ok(utc("2026-11-25T19:00:00Z"))
        );
    }

    #[test]
    fn day_bounds_follow_dst_day_lengths() {
        let (s, e) = local_day_bounds(America::New_York, d(2026, 11, 1));
        assert_eq!((e - s).num_hours(), 25);
        let (s, e) = local_day_bounds(America::New_York, d(2026, 3, 8));
        assert_eq!((e - s).num_hours(), 23);
        let (s, _) = local_day_bounds(Pacific::Apia, d(2026, 11, 26));
        assert_eq!(s, utc("2026-11-25T11:00:00Z"));
    }
}
