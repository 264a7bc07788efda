//! The evaluation report: did reminders cut no-shows? Before and with reminderd, by month,
//! provider and reminder, with every figure's count; and an admin's list of one month's
//! no-shows by name.

use super::{
    Clinic, Config, Markup, NaiveDate, PreEscaped, SignedIn, chart, clinic_select, html, page,
};
use crate::report::{Group, Outcomes, Rate, Report, month_words};
use crate::store::NamedNoShow;

/// The query string that names this report (clinic and range), for links.
fn query(clinic: &Clinic, (from, to): (NaiveDate, NaiveDate)) -> String {
    format!(
        "clinic={}&from={}&to={}",
        crate::desk::urlencode(&clinic.key),
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    )
}

/// The chart bars of the rates that reach the minimum count: one from too few appointments
/// would draw a share that means little (the tables show it as "too few").
fn bars<'a>(rates: impl IntoIterator<Item = (&'a str, &'a Rate)>) -> Vec<chart::Bar> {
    rates
        .into_iter()
        .filter(|(_, r)| r.enough)
        .map(|(label, r)| chart::Bar {
            label: label.into(),
            value: r.count,
            of: r.of,
        })
        .collect()
}

/// A table cell's "12% (3 of 25)" or "too few (3 of 12)".
fn rate(r: &Rate) -> String {
    r.text()
}

/// The head of an outcomes table.
fn head(first: &str) -> Markup {
    html! {
        thead { tr {
            th scope="col" { (first) } th scope="col" { "Appointments" }
            th scope="col" { "No-show (of known outcomes)" } th scope="col" { "Confirmed (of reminded)" }
            th scope="col" { "Cancelled (of all)" }
        } }
    }
}

/// One row of an outcomes table.
fn outcome_cells(o: &Outcomes) -> Markup {
    html! {
        td { (o.appointments) } td { (rate(&o.no_show)) } td { (rate(&o.confirmed)) } td { (rate(&o.cancelled)) }
    }
}

/// A table of groups under a caption.
fn groups_table(caption: &str, first: &str, groups: &[Group]) -> Markup {
    html! {
        div.scroll { table.report {
            caption { (caption) }
            (head(first))
            tbody {
                @for g in groups { tr { th scope="row" { (g.label) } (outcome_cells(&g.outcomes)) } }
                @if groups.is_empty() { tr { td colspan="5" { "No appointments in this range." } } }
            }
        } }
    }
}

/// The report page for one clinic.
pub fn report_page(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    range: (NaiveDate, NaiveDate),
    r: &Report,
) -> Markup {
    let admin = session.role == crate::model::Role::Admin;
    let this = query(clinic, range);
    let zone = clinic.time_zone;
    let ba = r.before_after.iter().find(|b| b.clinic == clinic.key);
    let split = [
        ("Before reminderd", ba.map(|b| b.before).unwrap_or_default()),
        ("With reminderd", ba.map(|b| b.after).unwrap_or_default()),
    ];
    let headline = chart::rate_chart(
        "No-shows and confirmations, before and with reminderd",
        &[
            chart::Series {
                name: "No-show, of known outcomes".into(),
                bars: bars(split.iter().map(|(l, o)| (*l, &o.no_show))),
            },
            chart::Series {
                name: "Confirmed, of reminded".into(),
                bars: bars(split.iter().map(|(l, o)| (*l, &o.confirmed))),
            },
        ],
    );
    let monthly = chart::rate_chart(
        "No-shows by month",
        &[chart::Series {
            name: "No-show, of known outcomes".into(),
            bars: bars(
                r.months
                    .iter()
                    .map(|g| (g.label.as_str(), &g.outcomes.no_show)),
            ),
        }],
    );
    let first = ba.and_then(|b| b.first_reminder).map(|f| {
        f.with_timezone(&zone)
            .format("%-d %b %Y at %H:%M")
            .to_string()
    });
    let (answers, feedback, delivery) = (&r.answers, &r.feedback, &r.delivery);
    page(
        &format!("Report — {}", clinic.display_name),
        Some(session),
        "Report",
        &html! {
            form.filters method="get" action="/desk/report" {
                (clinic_select(config, clinic))
                label for="from" { "From" }
                input #from type="date" name="from" value=(range.0.format("%Y-%m-%d"));
                label for="to" { "To" }
                input #to type="date" name="to" value=(range.1.format("%Y-%m-%d"));
                button type="submit" { "Show" }
            }
            p { a href={ "/desk/report.csv?" (this) } download { "Download these figures for a spreadsheet (CSV)" } }
            p.hint {
                "Appointments are counted by their day in " (zone.name()) ". Every figure says how many appointments it comes from; "
                "a rate from fewer than " (r.min_count) " appointments says “too few”, because it would change a lot with one patient more or less; the charts leave such rates out. "
                "A no-show rate is a share of the appointments whose outcome is known: completed, marked arrived, or no-show. "
                "Cancelled appointments and those with no outcome recorded yet are left out."
            }
            h2 { "Before and with reminderd" }
            p {
                @match &first {
                    Some(when) => { "The first reminder went out on " (when) ". Appointments before it are the clinic's figures without reminders." }
                    None => { "No reminder has been sent for this clinic yet: every appointment counts as before reminderd." }
                }
            }
            figure.chart { (PreEscaped(headline)) }
            div.scroll { table.report {
                caption { "Before and with reminderd" }
                (head("Period"))
                tbody { @for (label, o) in &split { tr { th scope="row" { (label) } (outcome_cells(o)) } } }
            } }
            p.hint {
                "Before and after is a comparison over time, not a trial: seasons, new doctors or a new booking desk change no-shows too. "
                "Compare similar stretches (the same months of two years if you can), and enter the past months' completed and no-show appointments for a fair baseline."
            }
            h2 { "Month by month" }
            figure.chart { (PreEscaped(monthly)) }
            div.scroll { table.report {
                caption { "By month" }
                thead { tr {
                    th scope="col" { "Month" } th scope="col" { "Appointments" }
                    th scope="col" { "No-show (of known outcomes)" } th scope="col" { "Confirmed (of reminded)" }
                    th scope="col" { "Cancelled (of all)" }
                    @if admin { th scope="col" { "Patients" } }
                } }
                tbody {
                    @for g in &r.months {
                        tr {
                            th scope="row" { (g.label) } (outcome_cells(&g.outcomes))
                            @if admin { td { @if g.outcomes.no_show.count > 0 {
                                a href={ "/desk/report/no-shows?clinic=" (crate::desk::urlencode(&clinic.key)) "&month=" (g.key) } { "Who did not come" }
                            } } }
                        }
                    }
                    @if r.months.is_empty() { tr { td colspan=(if admin { 6 } else { 5 }) { "No appointments in this range." } } }
                }
            } }
            (groups_table("By provider", "Provider", &r.providers))
            (groups_table("By the last reminder before the visit", "Last reminder", &r.reminders))
            p.hint { "An appointment counts under the last reminder that reached the patient before the visit: rule and channel (WhatsApp or text message)." }
            h2 { "Cancellations" }
            div.scroll { table.report {
                caption { "How far ahead cancellations came" }
                thead { tr { th scope="col" { "Notice" } th scope="col" { "Cancellations" } } }
                tbody { @for n in &r.notice { tr { th scope="row" { (n.label) } td { (rate(&n.share)) } } } }
            } }
            p.hint { "Cancelled well ahead, a slot can usually be given to someone else; under 3 hours it rarely can. “Under 3 hours” includes cancellations recorded after the start." }
            h2 { "Answers, feedback and delivery" }
            ul.counts {
                li { "Median time from a reminder to the patient's answer: "
                    strong { @match answers.median_minutes { Some(m) => { (minutes_words(m)) }, None => { "too few" } } }
                    " (" (answers.answered) " answered)" }
                li { "Feedback score: "
                    strong { @match feedback.average { Some(v) => { (format!("{v:.1}")) " of 5" }, None => { "too few" } } }
                    " (" (feedback.scored) " scored: "
                    @for (s, n) in (1..=5).zip(feedback.scores) { "score " (s) ": " (n) @if s < 5 { ", " } }
                    ")" }
                li { "Reminder messages that failed: " strong { (rate(&delivery.failed_messages)) } }
                li { "Appointments whose patient could not be reached (every reminder failed): " strong { (rate(&delivery.unreachable)) } }
            }
        },
    )
}

/// "42 minutes", "3 hours 5 minutes".
fn minutes_words(m: i64) -> String {
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if m < 60 {
        plural(m, "minute", "minutes")
    } else {
        format!(
            "{} {}",
            plural(m / 60, "hour", "hours"),
            plural(m % 60, "minute", "minutes")
        )
    }
}

/// An admin's list of one month's no-shows by name (the view is audited).
pub fn no_shows_page(
    session: &SignedIn,
    clinic: &Clinic,
    month: &str,
    rows: &[NamedNoShow],
    more: bool,
) -> Markup {
    let zone = clinic.time_zone;
    let title = format!(
        "No-shows in {} — {}",
        month_words(month),
        clinic.display_name
    );
    page(
        &title,
        Some(session),
        "Report",
        &html! {
            p { a href={ "/desk/report?clinic=" (crate::desk::urlencode(&clinic.key)) } { "Back to the report" } }
            p.hint { "This list names patients, so each time it is opened is recorded with your name." }
            div.scroll { table.report {
                caption { (title) }
                thead { tr { th scope="col" { "Date and time" } th scope="col" { "Patient" } th scope="col" { "Doctor" } th scope="col" { "Had confirmed" } } }
                tbody {
                    @for n in rows {
                        tr {
                            td { (n.starts_at.with_timezone(&zone).format("%a %-d %b %Y, %H:%M")) }
                            th scope="row" { (n.patient.as_deref().unwrap_or("(data erased at the patient's request)")) }
                            td { (n.provider.as_deref().unwrap_or("")) }
                            td { @if n.confirmed { "yes" } @else { "no" } }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="4" { "No no-shows in this month." } } }
                }
            } }
            @if more { p.hint { "Only the first " (rows.len()) " are listed." } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_read_as_words() {
        assert_eq!(minutes_words(1), "1 minute");
        assert_eq!(minutes_words(42), "42 minutes");
        assert_eq!(minutes_words(185), "3 hours 5 minutes");
        assert_eq!(minutes_words(61), "1 hour 1 minute");
    }
}
