//! Stats: what each number counts, no-shows counted once (headline, chart and table from the
//! same groups), rules by the clinic's names, and the weekly trend.

use super::{
    Clinic, Config, Markup, NaiveDate, PreEscaped, SignedIn, Stats, chart, clinic_select, html,
    page,
};
use crate::store::{ChannelStats, RuleStats};

/// "67%", rounded half up as the chart rounds; "–" when there is nothing to divide by.
fn pct(n: i64, d: i64) -> String {
    if d <= 0 || n < 0 {
        "–".into()
    } else {
        let (n, d) = (i128::from(n), i128::from(d));
        format!("{}%", (n * 200 + d) / (d * 2))
    }
}

/// "1 appointment", "32 appointments".
fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "2 Nov 2026"; the year only once in a range of one year.
fn range_words((from, to): (NaiveDate, NaiveDate)) -> String {
    if from == to {
        format!("on {}", to.format("%-d %b %Y"))
    } else if chrono::Datelike::year(&from) == chrono::Datelike::year(&to) {
        format!(
            "from {} to {}",
            from.format("%-d %b"),
            to.format("%-d %b %Y")
        )
    } else {
        format!(
            "from {} to {}",
            from.format("%-d %b %Y"),
            to.format("%-d %b %Y")
        )
    }
}

/// A group's name as the clinic calls it.
fn group_name(config: &Config, r: &RuleStats) -> String {
    r.rule
        .as_deref()
        .map_or_else(|| "No reminder sent".into(), |rule| config.rule_label(rule))
}

/// The groups in the config's rule order (rules since removed after them), "no reminder" last.
fn ordered<'a>(config: &Config, s: &'a Stats) -> Vec<&'a RuleStats> {
    let mut groups: Vec<&RuleStats> = s.per_rule.iter().collect();
    groups.sort_by_key(|r| match &r.rule {
        Some(rule) => (
            0,
            config
                .rules
                .iter()
                .position(|c| &c.name == rule)
                .unwrap_or(usize::MAX),
        ),
        None => (1, 0),
    });
    groups
}

/// A channel group's name as the desk says it.
fn channel_name(g: &ChannelStats) -> &'static str {
    match g.channel.as_deref() {
        Some("sms") => "Text message",
        Some(_) => "WhatsApp",
        None => "No reminder sent",
    }
}

/// The appointments by the channel of their last reminder, each once, with each channel's
/// reminder messages.
fn per_channel(s: &Stats) -> Markup {
    html! {
        div.scroll {
            table.per-channel {
                caption { "By the way the last reminder went" }
                thead { tr { th scope="col" { "Last reminder by" } th scope="col" { "Appointments" } th scope="col" { "Confirmed" } th scope="col" { "No-show" } th scope="col" { "Reminders sent" } th scope="col" { "Delivered" } } }
                tbody {
                    @for g in &s.per_channel {
                        tr { th scope="row" { (channel_name(g)) } td { (g.appointments) } td { (share(g.confirmed, g.appointments)) } td { (share(g.no_show, g.appointments)) } td { (g.sent) } td { (share(g.delivered, g.sent)) } }
                    }
                    @if s.per_channel.is_empty() {
                        tr { td colspan="6" { "No appointments in this range." } }
                    }
                }
                tfoot {
                    tr { th scope="row" { "All appointments" } td { (s.appointments) } td { (share(s.confirmed, s.appointments)) } td { (share(s.no_shows, s.appointments)) } td { (s.reminders_sent) } td { (share(s.reminders_delivered, s.reminders_sent)) } }
                }
            }
        }
        p.hint {
            "An appointment counts under the way its last reminder went: a patient whose WhatsApp message failed and who got a text counts under text messages. "
            "Reminders sent and delivered count messages, each channel's own."
        }
    }
}

/// "18 (67%)": a count and its share of `of`.
fn share(n: i64, of: i64) -> String {
    format!("{n} ({})", pct(n, of))
}

/// The stats page: headline, chart and table from the same groups, and the weekly trend.
pub fn stats(
    session: &SignedIn,
    config: &Config,
    clinic: &Clinic,
    range: (NaiveDate, NaiveDate),
    s: &Stats,
    trend: &[((NaiveDate, NaiveDate), Stats)],
    costs: &[crate::config::MonthCost],
) -> Markup {
    let (from, to) = range;
    let groups = ordered(config, s);
    let bars = |f: fn(&RuleStats) -> i64| -> Vec<chart::Bar> {
        groups
            .iter()
            .map(|r| chart::Bar {
                label: group_name(config, r),
                value: f(r).max(0).unsigned_abs(),
                of: r.appointments.max(0).unsigned_abs(),
            })
            .collect()
    };
    let series = [
        chart::Series {
            name: "Confirmed".into(),
            bars: bars(|r| r.confirmed),
        },
        chart::Series {
            name: "No-show".into(),
            bars: bars(|r| r.no_show),
        },
    ];
    let svg = chart::rate_chart(
        &format!("By the last reminder sent, {}", range_words(range)),
        &series,
    );
    let appointments = count(s.appointments, "appointment", "appointments");
    let covered = trend.first().is_some_and(|((a, _), _)| *a == from);
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
            ul.counts.headline {
                li { strong { (appointments) } " " (range_words(range)) }
                li { "reminded: " strong { (s.reminded) } " of " (appointments) " (" (pct(s.reminded, s.appointments)) ")" }
                li { "confirmed: " strong { (s.reminded_confirmed) } " of " (count(s.reminded, "reminded appointment", "reminded appointments")) " (" (pct(s.reminded_confirmed, s.reminded)) ")" }
                li { "no-shows: " strong { (s.no_shows) } " of " (appointments) " (" (pct(s.no_shows, s.appointments)) ")" }
                li { "cancelled: " strong { (s.cancelled) } " of " (appointments) " (" (pct(s.cancelled, s.appointments)) ")" }
            }
            p.hint {
                "Appointments are counted by the day they were booked for (" (clinic.time_zone.name()) "). "
                "A reminded appointment is one whose patient was sent at least one reminder that WhatsApp or the text service accepted. "
                "Each appointment is counted once, under the last reminder it was sent, in the chart and the table below."
            }
            figure.chart { (PreEscaped(svg)) }
            div.scroll {
                table.per-rule {
                    caption { "By the last reminder sent" }
                    thead { tr { th scope="col" { "Last reminder sent" } th scope="col" { "Appointments" } th scope="col" { "Confirmed" } th scope="col" { "Cancelled" } th scope="col" { "No-show" } } }
                    tbody {
                        @for r in &groups {
                            tr { th scope="row" { (group_name(config, r)) } td { (r.appointments) } td { (share(r.confirmed, r.appointments)) } td { (share(r.cancelled, r.appointments)) } td { (share(r.no_show, r.appointments)) } }
                        }
                        @if groups.is_empty() {
                            tr { td colspan="5" { "No appointments in this range." } }
                        }
                    }
                    tfoot {
                        tr { th scope="row" { "All appointments" } td { (s.appointments) } td { (share(s.confirmed, s.appointments)) } td { (share(s.cancelled, s.appointments)) } td { (share(s.no_shows, s.appointments)) } }
                    }
                }
            }
            (per_channel(s))
            @if let Some(line) = sends_from(config, clinic) {
                p.hint.sends-from { (line) }
            }
            (billing(costs))
            @if s.no_shows > 0 {
                p.hint {
                    "Of the " (count(s.no_shows, "no-show", "no-shows")) ": "
                    (s.no_show_confirmed) " had confirmed, "
                    (s.no_show_unconfirmed) " had been reminded without confirming, "
                    (s.no_show_unreachable) " could not be reached on WhatsApp, "
                    (s.no_show_not_reminded) " had been sent no reminder."
                }
            }
            p.hint {
                "Reminder messages for these appointments: " (s.reminders_sent) " sent, " (s.reminders_delivered) " delivered, "
                (s.reminders_read) " read, " (s.reminders_failed) " failed. "
                (count(s.opt_outs, "patient", "patients")) " with an appointment in this range "
                (if s.opt_outs == 1 { "has" } else { "have" }) " opted out of WhatsApp messages."
            }
            div.scroll {
                table.trend {
                    caption { "Week by week" }
                    thead { tr { th scope="col" { "Week (Monday to Sunday)" } th scope="col" { "Appointments" } th scope="col" { "Reminded" } th scope="col" { "Confirmed, of reminded" } th scope="col" { "No-shows" } } }
                    tbody {
                        @for ((a, b), w) in trend {
                            tr {
                                th scope="row" { @if a == b { (a.format("%a %-d %b")) } @else { (a.format("%-d %b")) " – " (b.format("%-d %b")) } }
                                td { (w.appointments) } td { (w.reminded) } td { (share(w.reminded_confirmed, w.reminded)) } td { (w.no_shows) }
                            }
                        }
                    }
                    @if covered {
                        tfoot { tr { th scope="row" { "Whole range" } td { (s.appointments) } td { (s.reminded) } td { (share(s.reminded_confirmed, s.reminded)) } td { (s.no_shows) } } }
                    }
                }
            }
            @if !covered {
                p.hint { "The range is longer than a year: only its last " (trend.len()) " weeks are listed." }
            }
        },
    )
}

/// Which of the group's WhatsApp numbers the clinic sends from (`None`: there is only one).
fn sends_from(config: &crate::config::Config, clinic: &Clinic) -> Option<String> {
    let wa = config.whatsapp.as_ref().filter(|w| w.numbers.len() > 1)?;
    let n = wa.number(&clinic.whatsapp_number)?;
    let others: Vec<&str> = config
        .clinics_sending_from(&n.name)
        .filter(|c| c.key != clinic.key)
        .map(|c| c.display_name.as_str())
        .collect();
    Some(format!(
        "{}'s WhatsApp messages go out from the number “{}” (phone number id {}), at up to {} a second{}.",
        clinic.display_name,
        n.name,
        n.phone_number_id,
        n.rate_limit_per_sec,
        if others.is_empty() {
            String::new()
        } else {
            format!(", shared with {}", others.join(", "))
        }
    ))
}

/// A pricing category in receptionists' words.
fn category_words(category: &str) -> String {
    match category {
        "utility" => "Reminders and other approved messages (utility)".into(),
        "service" => "Replies and acknowledgements (service)".into(),
        "marketing" => "Marketing messages".into(),
        "authentication" => "Sign-in codes (authentication)".into(),
        other => other.replace('_', " "),
    }
}

/// "2026-11" → "November 2026".
fn month_words(month: &str) -> String {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_or_else(|_| month.to_string(), |d| d.format("%B %Y").to_string())
}

/// The messages Meta bills, per month and category, with the estimated cost.
fn billing(costs: &[crate::config::MonthCost]) -> Markup {
    let money = |v: f64, c: Option<&str>| format!("{} {v:.2}", c.unwrap_or(""));
    let total: f64 = costs.iter().filter_map(|c| c.cost).sum();
    let currency = costs.iter().find_map(|c| c.currency.as_deref());
    let priced = costs.iter().any(|c| c.cost.is_some());
    html! {
        div.scroll {
            table.costs {
                caption { "WhatsApp messages Meta bills for" }
                thead { tr { th scope="col" { "Month" } th scope="col" { "Kind of message" } th scope="col" { "Messages" } th scope="col" { "Estimated cost" } } }
                tbody {
                    @for c in costs {
                        tr {
                            th scope="row" { (month_words(&c.month)) }
                            td { (category_words(&c.category)) }
                            td { (c.messages) }
                            td { (c.cost.map_or_else(|| "no rate set".to_string(), |v| money(v, c.currency.as_deref()))) }
                        }
                    }
                    @if costs.is_empty() {
                        tr { td colspan="4" { "No billed messages in this range." } }
                    }
                }
                @if priced {
                    tfoot { tr { th scope="row" colspan="3" { "Estimated total" } td { (money(total, currency)) } } }
                }
            }
        }
        p.hint {
            "Since 1 October 2026 Meta bills each delivered reminder and each reply the clinic writes, "
            "acknowledgements included. Counts are of the messages Meta reported as billed, by the month they were sent; "
            "the cost is an estimate from the clinic's configured rates, and Meta's invoice is what counts."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_counts_read_as_words() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("date");
        assert_eq!(
            range_words((d(2026, 11, 2), d(2026, 11, 29))),
            "from 2 Nov to 29 Nov 2026"
        );
        assert_eq!(
            range_words((d(2025, 12, 2), d(2026, 1, 5))),
            "from 2 Dec 2025 to 5 Jan 2026"
        );
        assert_eq!(range_words((d(2026, 1, 5), d(2026, 1, 5))), "on 5 Jan 2026");
        assert_eq!(count(1, "appointment", "appointments"), "1 appointment");
        assert_eq!(count(0, "appointment", "appointments"), "0 appointments");
        assert_eq!(share(2, 3), "2 (67%)");
        assert_eq!(share(0, 0), "0 (–)");
        assert_eq!(
            (pct(1, 8), pct(1, 3), pct(i64::MAX, i64::MAX)),
            ("13%".into(), "33%".into(), "100%".into())
        );
    }
}
