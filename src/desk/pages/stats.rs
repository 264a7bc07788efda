//! Stats: confirmation and no-show figures for a range of days, and their weekly trend.

use chrono::{Datelike, Days, NaiveDate};

use super::{
    Deserialize, DeskState, Query, Response, Staff, State, bad_date, day_range, html,
    local_day_bounds, page_day, parse_day, views,
};

/// Most weeks the trend lists: a year. A longer range shows its last year's weeks.
const TREND_WEEKS: usize = 53;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct StatsQuery {
    clinic: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The local weeks (Monday to Sunday) that `[from, to]` touches, each cut to the range, so
/// that together they cover it exactly once; at most the last `max`.
fn weeks(from: NaiveDate, to: NaiveDate, max: usize) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut end = to;
    while end >= from && out.len() < max {
        let back = u64::from(end.weekday().num_days_from_monday());
        let start = end
            .checked_sub_days(Days::new(back))
            .unwrap_or(from)
            .max(from);
        out.push((start, end));
        match start.pred_opt() {
            Some(d) => end = d,
            None => break,
        }
    }
    out.reverse();
    out
}

pub(in crate::desk) async fn stats(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<StatsQuery>,
) -> Result<Response, Response> {
    let (config, clinic, today) = page_day(&state, &staff, q.clinic.as_deref(), None)?;
    let (from, to) = match (parse_day(q.from.as_deref()), parse_day(q.to.as_deref())) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(why), _) | (_, Err(why)) => return Err(bad_date(&staff, &why)),
    };
    let to = to.unwrap_or(today);
    // The shared default range; never before the first day the desk shows.
    let from = from.unwrap_or_else(|| crate::jobs::stats_from(to).max(day_range().0));
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    let zone = clinic.time_zone;
    let bounds = move |(a, b): (NaiveDate, NaiveDate)| {
        (local_day_bounds(zone, a).0, local_day_bounds(zone, b).1)
    };
    let (start, end) = bounds((from, to));
    let trend_weeks = weeks(from, to, TREND_WEEKS);
    let key = clinic.key.clone();
    let (counts, trend, billed) = state
        .db(move |s| {
            let billed = s.billed(Some(&key), start, end)?;
            let counts = s.stats(Some(&key), start, end)?;
            // Each week through the same function: the trend counts as the headline does.
            let mut trend = Vec::with_capacity(trend_weeks.len());
            for week in trend_weeks {
                let (a, b) = bounds(week);
                trend.push((week, s.stats(Some(&key), a, b)?));
            }
            Ok((counts, trend, billed))
        })
        .await?;
    let costs = crate::config::monthly(&config, &billed);
    Ok(html(views::stats(
        &staff.session,
        &config,
        &clinic,
        (from, to),
        &counts,
        &trend,
        &costs,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_weeks_cover_the_range_once_cut_at_its_ends() {
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
        // Wednesday 4 November to Monday 30 November.
        let w = weeks(day(11, 4), day(11, 30), 53);
        assert_eq!(
            w,
            [
                (day(11, 4), day(11, 8)),
                (day(11, 9), day(11, 15)),
                (day(11, 16), day(11, 22)),
                (day(11, 23), day(11, 29)),
                (day(11, 30), day(11, 30)),
            ]
        );
        assert_eq!(
            weeks(day(11, 4), day(11, 4), 53),
            [(day(11, 4), day(11, 4))]
        );
        let year = weeks(day(1, 1), day(12, 31), 53);
        assert_eq!(year.len(), 53);
        let capped = weeks(NaiveDate::MIN, day(12, 31), 3);
        assert_eq!(capped.len(), 3, "a huge range lists only the last weeks");
        assert_eq!(capped[2], (day(12, 28), day(12, 31)));
    }
}
