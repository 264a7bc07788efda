//! Stats: confirmation and no-show figures for a range of days.

use super::{
    Deserialize, DeskState, Query, Response, Staff, State, bad_date, day_range, html,
    local_day_bounds, page_day, parse_day, views,
};

#[derive(Deserialize, Default)]
pub(in crate::desk) struct StatsQuery {
    clinic: Option<String>,
    from: Option<String>,
    to: Option<String>,
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
    let (start, end) = (
        local_day_bounds(clinic.time_zone, from).0,
        local_day_bounds(clinic.time_zone, to).1,
    );
    let key = clinic.key.clone();
    let counts = state.db(move |s| s.stats(Some(&key), start, end)).await?;
    Ok(html(views::stats(
        &staff.session,
        &config,
        &clinic,
        from,
        to,
        &counts,
    )))
}
