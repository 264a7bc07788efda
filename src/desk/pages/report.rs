//! The evaluation report: the page, its CSV download, and an admin's audited list of one
//! month's no-shows by name.

use axum::http::{HeaderValue, header};
use chrono::{Datelike, Days, Months, NaiveDate};

use super::{
    Deserialize, DeskState, IntoResponse, Query, Response, Staff, State, StatusCode, bad_date,
    day_range, html, local_day_bounds, page_day, parse_day, views,
};
use crate::config::{Clinic, Config};
use crate::report::{self, Names, Report};

/// Most named no-shows one drill-down lists.
const MAX_NAMED: usize = 500;

#[derive(Deserialize, Default)]
pub(in crate::desk) struct ReportQuery {
    clinic: Option<String>,
    from: Option<String>,
    to: Option<String>,
    month: Option<String>,
}

/// What a report request names: the config, the clinic and the range of local days.
type Asked = (std::sync::Arc<Config>, Clinic, (NaiveDate, NaiveDate));

/// The clinic and range a report request names: by default the year up to today.
fn range(state: &DeskState, staff: &Staff, q: &ReportQuery) -> Result<Asked, Response> {
    let (config, clinic, today) = page_day(state, staff, q.clinic.as_deref(), None)?;
    let (from, to) = match (parse_day(q.from.as_deref()), parse_day(q.to.as_deref())) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(why), _) | (_, Err(why)) => return Err(bad_date(staff, &why)),
    };
    let to = to.unwrap_or(today);
    let from = from.unwrap_or_else(|| {
        to.checked_sub_days(Days::new(364))
            .unwrap_or(to)
            .max(day_range().0)
    });
    let (from, to) = if from <= to { (from, to) } else { (to, from) };
    Ok((config, clinic, (from, to)))
}

/// The clinic's report for the range, read in one database call.
async fn read(
    state: &DeskState,
    staff: &Staff,
    config: &Config,
    clinic: &Clinic,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Report, Response> {
    let (start, end) = report::window(from, to);
    let key = clinic.key.clone();
    let (rows, first) = state
        .db(move |s| {
            let rows = s.report_rows(Some(&key), start, end, report::MAX_ROWS)?;
            Ok((rows, s.first_reminders()?))
        })
        .await?;
    if rows.len() > report::MAX_ROWS {
        return Err((
            StatusCode::BAD_REQUEST,
            views::message(
                Some(&staff.session),
                "Too many appointments",
                "This range holds too many appointments to count at once. Choose a shorter range, a year at most.",
            ),
        )
            .into_response());
    }
    Ok(report::compute(
        &rows,
        &first,
        &Names::of(config),
        (from, to),
        config.report.min_count,
    ))
}

/// `GET /desk/report`: the evaluation page.
pub(in crate::desk) async fn report_page(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<ReportQuery>,
) -> Result<Response, Response> {
    let (config, clinic, range) = range(&state, &staff, &q)?;
    let r = read(&state, &staff, &config, &clinic, range).await?;
    Ok(html(views::report_page(
        &staff.session,
        &config,
        &clinic,
        range,
        &r,
    )))
}

/// `GET /desk/report.csv`: the same figures as a file for a spreadsheet.
pub(in crate::desk) async fn report_csv(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<ReportQuery>,
) -> Result<Response, Response> {
    let (config, clinic, range) = range(&state, &staff, &q)?;
    let r = read(&state, &staff, &config, &clinic, range).await?;
    let name = format!(
        "attachment; filename=\"reminderd-report-{}-{}-{}.csv\"",
        clinic.key, range.0, range.1
    );
    let mut res = report::to_csv(&r).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The first day of a `YYYY-MM` month, if it is one the desk can show.
fn month_start(month: &str) -> Option<NaiveDate> {
    let d = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d").ok()?;
    let (first, last) = day_range();
    (first..=last).contains(&d).then_some(d)
}

/// `GET /desk/report/no-shows`: one month's no-shows by name, for admins only; each view is
/// audited.
pub(in crate::desk) async fn no_shows(
    State(state): State<DeskState>,
    staff: Staff,
    Query(q): Query<ReportQuery>,
) -> Result<Response, Response> {
    staff.require_admin()?;
    let (_, clinic, _) = page_day(&state, &staff, q.clinic.as_deref(), None)?;
    let Some(first) = q.month.as_deref().and_then(month_start) else {
        let shown = q.month.as_deref().unwrap_or("");
        return Err(bad_date(
            &staff,
            &format!(
                "{shown:?} is not a month the desk can show. Open the list from the report's month table."
            ),
        ));
    };
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first);
    let month = format!("{:04}-{:02}", first.year(), first.month());
    let (start, end) = (
        local_day_bounds(clinic.time_zone, first).0,
        local_day_bounds(clinic.time_zone, last).1,
    );
    let (actor, now, key) = (staff.actor(), state.clock.now(), clinic.key.clone());
    let what = format!("{key} {month}");
    let rows = state
        .db(move |s| {
            let rows = s.named_no_shows(&key, start, end, MAX_NAMED + 1)?;
            let seen = format!("{what}: {} patients", rows.len().min(MAX_NAMED));
            s.audit_staff(
                &actor,
                "report_no_shows_viewed",
                None,
                Some(&seen),
                None,
                now,
            )?;
            Ok(rows)
        })
        .await?;
    let more = rows.len() > MAX_NAMED;
    let rows = &rows[..rows.len().min(MAX_NAMED)];
    Ok(html(views::no_shows_page(
        &staff.session,
        &clinic,
        &month,
        rows,
        more,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_read_only_when_whole() {
        let d = NaiveDate::from_ymd_opt(2026, 10, 1);
        assert_eq!(month_start("2026-10"), d);
        assert_eq!(month_start(" 2026-10 "), d);
        for bad in ["2026-13", "10-2026", "", "2026-10-05", "0000-01"] {
            assert_eq!(month_start(bad), None, "{bad}");
        }
    }
}
