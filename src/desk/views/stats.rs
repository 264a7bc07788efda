//! Confirmation and no-show figures per rule, with charts.

use super::{
    Clinic, Config, Markup, NaiveDate, PreEscaped, SignedIn, Stats, chart, clinic_select, html,
    page,
};

fn pct(n: i64, d: i64) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.0} %", 100.0 * n as f64 / d as f64)
    }
}

/// Confirmation and no-show rates per rule, with charts.
pub fn stats(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    from: NaiveDate,
    to: NaiveDate,
    s: &Stats,
) -> Markup {
    let bars = |f: fn(&crate::store::RuleStats) -> i64| -> Vec<chart::Bar> {
        s.per_rule
            .iter()
            .map(|r| chart::Bar {
                label: r.rule.clone(),
                value: f(r).max(0) as u64,
                of: r.sent.max(0) as u64,
            })
            .collect()
    };
    let groups = [
        chart::Series {
            name: "Confirmed after the reminder".into(),
            bars: bars(|r| r.confirmed),
        },
        chart::Series {
            name: "No-show after the reminder".into(),
            bars: bars(|r| r.no_show),
        },
    ];
    let svg = chart::rate_chart(&format!("Per rule, {from} to {to}"), &groups);
    page(
        &format!("Stats — {}", clinic.display_name),
        Some(session),
        "Stats",
        &html! {
            form.filters method="get" action="/desk/stats" {
                (clinic_select(config, clinic))
                label for="from" { "From" }
                input #from type="date" name="from" value=(from.format("%Y-%m-%d"));
                label for="to" { "To" }
                input #to type="date" name="to" value=(to.format("%Y-%m-%d"));
                button type="submit" { "Show" }
            }
            ul.counts {
                li { strong { (s.appointments) } " appointments" }
                li { strong { (s.reminded) } " reminded" }
                li { strong { (pct(s.confirmed, s.reminded)) } " confirmed" }
                li { strong { (s.no_show_confirmed + s.no_show_unconfirmed + s.no_show_unreachable) } " no-shows" }
            }
            figure.chart { (PreEscaped(svg)) }
            div.scroll {
                table {
                    caption { "Per rule" }
                    thead { tr { th scope="col" { "Rule" } th scope="col" { "Reminders sent" } th scope="col" { "Confirmed" } th scope="col" { "No-show" } } }
                    tbody {
                        @for r in &s.per_rule {
                            tr { td { (r.rule) } td { (r.sent) } td { (pct(r.confirmed, r.sent)) } td { (pct(r.no_show, r.sent)) } }
                        }
                    }
                }
            }
            p.hint {
                "Reminders: " (s.reminders_sent) " sent, " (s.reminders_delivered) " delivered, " (s.reminders_read) " read, " (s.reminders_failed) " failed. "
                "No-shows: " (s.no_show_confirmed) " had confirmed, " (s.no_show_unconfirmed) " never answered, " (s.no_show_unreachable) " could not be reached. "
                (s.opt_outs) " patient(s) opted out."
            }
        },
    )
}
