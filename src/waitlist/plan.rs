//! Offer rounds, decided: which openings may be offered now, which have run out of time, and
//! which waitlisted patients an opening suits, in priority order. Pure: no I/O, no clock.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::config::{QuietHours, Waitlist};
use crate::model::{OpeningSource, OpeningState};

/// The start of an offer's outbox rule; the offer's id follows.
pub const OFFER_RULE: &str = "offer:";

/// A waitlist entry: what would suit one patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// The patient's row id.
    pub patient_id: i64,
    /// The clinic system's patient id.
    pub patient: String,
    /// The patient's name.
    pub patient_name: String,
    /// The booked appointment an earlier slot would replace.
    pub appointment_id: Option<i64>,
    /// `None`: any provider.
    pub provider: Option<String>,
    /// First local date that suits.
    pub earliest: NaiveDate,
    /// Last local date that suits (`None`: open-ended).
    pub latest: Option<NaiveDate>,
    /// ISO weekdays that suit, as digits (`12345` = Monday to Friday).
    pub days: String,
    /// Local start of the time band (`None`: from opening time).
    pub time_from: Option<NaiveTime>,
    /// Local end of the time band (`None`: to closing time).
    pub time_to: Option<NaiveTime>,
    /// The entry lapses after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// Most offers this entry gets.
    pub max_offers: u32,
    /// Offers made so far.
    pub offers_sent: u32,
    /// `active`, `booked`, `expired` or `removed`.
    pub state: String,
    /// Who added it.
    pub source: String,
    /// The waitlist file's row id, if it came from one.
    pub external_id: Option<String>,
    /// When it was added (longest waiting first).
    pub created_at: DateTime<Utc>,
}

/// A freed slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// Row id.
    pub id: i64,
    /// Clinic key.
    pub clinic: String,
    /// Who it is with (`None`: not named).
    pub provider: Option<String>,
    /// Its start.
    pub starts_at: DateTime<Utc>,
    /// Its length.
    pub duration_min: u32,
    /// Where it came from.
    pub source: OpeningSource,
    /// The patient whose cancellation freed it: never offered it back.
    pub freed_by: Option<i64>,
    /// `patient`, `feed:<name>`, `staff:<name>`.
    pub opened_by: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// No offer before this (the grace for an "oops").
    pub offers_from: DateTime<Utc>,
    /// Where it stands.
    pub state: OpeningState,
    /// Rounds sent.
    pub round: u32,
    /// When the next round may go.
    pub next_round_at: Option<DateTime<Utc>>,
    /// Why it was withdrawn or expired.
    pub reason: Option<String>,
}

/// An entry with what the round needs to know about its patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The entry.
    pub entry: Entry,
    /// Offers the patient got in the last 7 days.
    pub offers_this_week: u32,
    /// The patient already has an offer of this opening.
    pub offered_this_opening: bool,
    /// The appointment the offer's message is filed under (`None`: the patient has none).
    pub file_under: Option<i64>,
    /// The start of the appointment the entry would replace, while it is booked.
    pub booked_at: Option<DateTime<Utc>>,
}

/// What to do with an open opening now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// Send the next round.
    Offer,
    /// Not yet (grace, the gap between rounds, quiet hours).
    Wait,
    /// Too late to offer: expire it, with why.
    Expire(String),
}

/// Whether `o` may get a round at `now`.
pub fn round(
    o: &Opening,
    s: &Waitlist,
    quiet: Option<QuietHours>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Round {
    if o.state != OpeningState::Open {
        return Round::Wait;
    }
    if o.starts_at - now < s.lead_time {
        return Round::Expire("it starts too soon to offer (within the lead time)".into());
    }
    if now < o.offers_from || o.next_round_at.is_some_and(|t| now < t) {
        return Round::Wait;
    }
    if let Err(end) = crate::plan::check_quiet(now, quiet, zone) {
        if o.starts_at - end < s.lead_time {
            return Round::Expire(
                "quiet hours last until too close to its start for an offer to help".into(),
            );
        }
        return Round::Wait;
    }
    Round::Offer
}

/// Whether the opening is what the entry asks for (clinic, provider, date, weekday, time).
pub fn suits(e: &Entry, o: &Opening, zone: Tz, now: DateTime<Utc>) -> bool {
    let local = o.starts_at.with_timezone(&zone);
    let date = local.date_naive();
    let time = local.time();
    let weekday = char::from_digit(local.weekday().number_from_monday(), 10).unwrap_or('0');
    e.state == "active"
        && e.clinic == o.clinic
        && e.expires_at.is_none_or(|t| t > now)
        && e.offers_sent < e.max_offers
        && e.provider.as_deref().is_none_or(|p| {
            o.provider
                .as_deref()
                .is_some_and(|op| op.trim().eq_ignore_ascii_case(p.trim()))
        })
        && date >= e.earliest
        && e.latest.is_none_or(|l| date <= l)
        && e.days.contains(weekday)
        && e.time_from.is_none_or(|f| time >= f)
        && e.time_to.is_none_or(|t| time < t)
}

/// Up to `batch` candidates for the next round of `o`, in priority order: the earliest wanted
/// date first, then the longest waiting.
pub fn pick<'c>(
    o: &Opening,
    candidates: &'c [Candidate],
    s: &Waitlist,
    zone: Tz,
    now: DateTime<Utc>,
) -> Vec<&'c Candidate> {
    let mut fit: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            !c.offered_this_opening
                && c.file_under.is_some()
                && c.offers_this_week < s.max_offers_per_week
                && o.freed_by != Some(c.entry.patient_id)
                && c.booked_at.is_none_or(|b| o.starts_at < b)
                && suits(&c.entry, o, zone, now)
        })
        .collect();
    fit.sort_by_key(|c| (c.entry.earliest, c.entry.created_at, c.entry.id));
    // One offer per patient per round, whatever entries they have.
    let mut seen = std::collections::HashSet::new();
    fit.retain(|c| seen.insert(c.entry.patient_id));
    fit.truncate(s.batch as usize);
    fit
}

/// Why a round of `o` found nobody to offer it to, in words for the Waitlist page: nobody
/// waiting, nobody who wants that day, time or doctor, or what stopped each patient who does
/// (offered it already, their entry's or the week's cap, an earlier appointment, no
/// appointment to send with, the patient who freed it).
pub fn why_none(
    o: &Opening,
    candidates: &[Candidate],
    s: &Waitlist,
    zone: Tz,
    now: DateTime<Utc>,
) -> String {
    if candidates.is_empty() {
        return "No offer: nobody is on the waitlist.".into();
    }
    let wanting: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            let uncapped = Entry {
                offers_sent: 0,
                ..c.entry.clone()
            };
            suits(&uncapped, o, zone, now)
        })
        .collect();
    if wanting.is_empty() {
        return "No offer: nobody on the waitlist wants this day, time or doctor.".into();
    }
    // Each patient counted once, by the first thing that stops them.
    let mut counts = [0usize; 5];
    let mut freer = false;
    let mut seen = std::collections::HashSet::new();
    for c in wanting {
        if !seen.insert(c.entry.patient_id) {
            continue;
        }
        if o.freed_by == Some(c.entry.patient_id) {
            freer = true;
        } else if c.offered_this_opening {
            counts[0] += 1;
        } else if c.entry.offers_sent >= c.entry.max_offers {
            counts[1] += 1;
        } else if c.offers_this_week >= s.max_offers_per_week {
            counts[2] += 1;
        } else if c.booked_at.is_some_and(|b| o.starts_at >= b) {
            counts[3] += 1;
        } else if c.file_under.is_none() {
            counts[4] += 1;
        }
    }
    let who = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 patient who wants it {one}")
        } else {
            format!("{n} patients who want it {many}")
        }
    };
    let cap = s.max_offers_per_week;
    let mut parts: Vec<String> = [
        (
            counts[0],
            who(
                counts[0],
                "was offered it already",
                "were offered it already",
            ),
        ),
        (
            counts[1],
            who(
                counts[1],
                "has had every offer their waitlist entry allows",
                "have had every offer their waitlist entries allow",
            ),
        ),
        (
            counts[2],
            who(
                counts[2],
                &format!("has had {cap} offers this week, the most allowed"),
                &format!("have had {cap} offers this week, the most allowed"),
            ),
        ),
        (
            counts[3],
            who(
                counts[3],
                "already has an earlier appointment",
                "already have earlier appointments",
            ),
        ),
        (
            counts[4],
            who(
                counts[4],
                "has no appointment to send the offer with",
                "have no appointment to send the offer with",
            ),
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(_, words)| words)
    .collect();
    if freer {
        parts.push("the patient who freed it is not offered it back".into());
    }
    format!("No offer: {}.", parts.join("; "))
}

/// The median of `spans` in seconds (`None` when empty).
pub fn median_seconds(mut spans: Vec<i64>) -> Option<i64> {
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let n = spans.len();
    Some(if n % 2 == 1 {
        spans[n / 2]
    } else {
        i64::midpoint(spans[n / 2 - 1], spans[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const ZONE: Tz = chrono_tz::Asia::Kolkata;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        ZONE.with_ymd_and_hms(2026, 12, d, h, m, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn opening() -> Opening {
        Opening {
            id: 1,
            clinic: "mumbai".into(),
            provider: Some("Dr Rao".into()),
            // Thursday 3 December 2026, 10:30 local.
            starts_at: at(3, 10, 30),
            duration_min: 15,
            source: OpeningSource::PatientCancel,
            freed_by: Some(99),
            opened_by: "patient".into(),
            opened_at: at(2, 9, 0),
            offers_from: at(2, 9, 10),
            state: OpeningState::Open,
            round: 0,
            next_round_at: None,
            reason: None,
        }
    }

    fn entry(id: i64, patient: i64, earliest: u32, waiting_since: u32) -> Candidate {
        Candidate {
            entry: Entry {
                id,
                clinic: "mumbai".into(),
                patient_id: patient,
                patient: format!("P{patient}"),
                patient_name: format!("Patient {patient}"),
                appointment_id: None,
                provider: None,
                earliest: NaiveDate::from_ymd_opt(2026, 12, earliest).expect("date"),
                latest: None,
                days: "1234567".into(),
                time_from: None,
                time_to: None,
                expires_at: None,
                max_offers: 3,
                offers_sent: 0,
                state: "active".into(),
                source: "staff:asha".into(),
                external_id: None,
                created_at: at(1, waiting_since, 0),
            },
            offers_this_week: 0,
            offered_this_opening: false,
            file_under: Some(patient),
            booked_at: None,
        }
    }

    #[test]
    fn the_earliest_wanted_date_goes_first_then_the_longest_waiting_and_at_most_a_batch() {
        let s = Waitlist::default();
        let cands = vec![
            entry(1, 1, 2, 9),
            entry(2, 2, 1, 11),
            entry(3, 3, 1, 10),
            entry(4, 4, 3, 8),
            entry(5, 99, 1, 1),
        ];
        let picked: Vec<i64> = pick(&opening(), &cands, &s, ZONE, at(2, 9, 30))
            .iter()
            .map(|c| c.entry.id)
            .collect();
        // Patient 99 freed the slot: never offered it back.
        assert_eq!(picked, [3, 2, 1]);
    }

    #[test]
    fn weekday_time_band_provider_dates_caps_and_a_later_booking_decide_what_suits() {
        let (o, now, s) = (opening(), at(2, 9, 30), Waitlist::default());
        let one = |f: &dyn Fn(&mut Candidate)| {
            let mut c = entry(1, 1, 1, 9);
            f(&mut c);
            !pick(&o, &[c], &s, ZONE, now).is_empty()
        };
        assert!(one(&|_| {}));
        assert!(!one(&|c| c.entry.days = "12356".into()), "Thursday is 4");
        assert!(one(&|c| c.entry.days = "4".into()));
        assert!(one(
            &|c| c.entry.time_from = NaiveTime::from_hms_opt(9, 0, 0)
        ));
        assert!(!one(
            &|c| c.entry.time_to = NaiveTime::from_hms_opt(10, 30, 0)
        ));
        assert!(one(&|c| c.entry.provider = Some("dr rao".into())));
        assert!(!one(&|c| c.entry.provider = Some("Dr Iyer".into())));
        assert!(!one(
            &|c| c.entry.latest = NaiveDate::from_ymd_opt(2026, 12, 2)
        ));
        assert!(!one(
            &|c| c.entry.earliest = NaiveDate::from_ymd_opt(2026, 12, 4).expect("d")
        ));
        assert!(!one(&|c| c.entry.expires_at = Some(now)));
        assert!(!one(&|c| c.entry.offers_sent = 3));
        assert!(!one(&|c| c.offers_this_week = 3));
        assert!(!one(&|c| c.offered_this_opening = true));
        assert!(!one(&|c| c.file_under = None));
        assert!(
            !one(&|c| c.booked_at = Some(at(3, 9, 0))),
            "not later than theirs"
        );
        assert!(one(&|c| c.booked_at = Some(at(9, 9, 0))));
    }

    #[test]
    fn rounds_wait_for_the_grace_and_the_gap_and_expire_within_the_lead_time_or_quiet_reach() {
        let s = Waitlist::default();
        let o = opening();
        assert_eq!(round(&o, &s, None, ZONE, at(2, 9, 5)), Round::Wait);
        assert_eq!(round(&o, &s, None, ZONE, at(2, 9, 10)), Round::Offer);
        let later = Opening {
            next_round_at: Some(at(2, 9, 50)),
            ..opening()
        };
        assert_eq!(round(&later, &s, None, ZONE, at(2, 9, 40)), Round::Wait);
        assert!(matches!(
            round(&o, &s, None, ZONE, o.starts_at - Duration::hours(2)),
            Round::Expire(_)
        ));
        let quiet = crate::config::parse_quiet_hours("21:00-08:00").ok();
        let noon = Opening {
            starts_at: at(3, 12, 0),
            ..opening()
        };
        assert_eq!(round(&noon, &s, quiet, ZONE, at(2, 22, 0)), Round::Wait);
        let early = Opening {
            starts_at: at(3, 10, 0),
            ..opening()
        };
        // Quiet until 08:00, the slot at 10:00: the 3-hour lead time cannot be met.
        assert!(matches!(
            round(&early, &s, quiet, ZONE, at(2, 22, 0)),
            Round::Expire(_)
        ));
    }

    #[test]
    fn when_nobody_is_offered_the_reason_says_who_wanted_it_and_what_stopped_them() {
        let (o, now, s) = (opening(), at(2, 9, 30), Waitlist::default());
        let why = |cands: Vec<Candidate>| why_none(&o, &cands, &s, ZONE, now);
        assert_eq!(why(vec![]), "No offer: nobody is on the waitlist.");
        let mut iyer = entry(1, 1, 1, 9);
        iyer.entry.provider = Some("Dr Iyer".into());
        assert_eq!(
            why(vec![iyer]),
            "No offer: nobody on the waitlist wants this day, time or doctor."
        );
        let mut offered = entry(1, 1, 1, 9);
        offered.offered_this_opening = true;
        let mut offered2 = entry(2, 2, 1, 9);
        offered2.offered_this_opening = true;
        let mut weekly = entry(3, 3, 1, 9);
        weekly.offers_this_week = s.max_offers_per_week;
        let mut capped = entry(4, 4, 1, 9);
        capped.entry.offers_sent = 3;
        let mut earlier = entry(5, 5, 1, 9);
        earlier.booked_at = Some(at(3, 9, 0));
        assert_eq!(
            why(vec![
                offered,
                offered2,
                weekly,
                capped,
                earlier,
                entry(6, 99, 1, 9)
            ]),
            format!(
                "No offer: 2 patients who want it were offered it already; 1 patient who wants it has had every offer their waitlist entry allows; 1 patient who wants it has had {} offers this week, the most allowed; 1 patient who wants it already has an earlier appointment; the patient who freed it is not offered it back.",
                s.max_offers_per_week
            )
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median_seconds(vec![]), None);
        assert_eq!(median_seconds(vec![30, 10, 20]), Some(20));
        assert_eq!(median_seconds(vec![40, 10, 20, 30]), Some(25));
    }
}
