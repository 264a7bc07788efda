//! `reminderd report`: the evaluation (did reminders cut no-shows?) for a range of local
//! days, as text, JSON or a CSV file for a spreadsheet.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use reminderd::report::{self, Names, Outcomes, Rate, Report};

use super::output::print_json;
use super::{exit, fail, open};

/// `reminderd report`'s arguments.
#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    /// First local date (YYYY-MM-DD), in each clinic's own time zone
    #[arg(long, value_name = "DATE")]
    from: NaiveDate,
    /// Last local date, inclusive
    #[arg(long, value_name = "DATE")]
    to: NaiveDate,
    /// Only this clinic
    #[arg(long, value_name = "KEY")]
    clinic: Option<String>,
    /// Print JSON
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print a CSV file for a spreadsheet (UTF-8 with a byte-order mark)
    #[arg(long)]
    csv: bool,
}

pub(super) fn run(config_path: &Path, db: Option<&Path>, args: &ReportArgs) -> Result<u8> {
    let (config, store) = open(config_path, db)?;
    if let Some(k) = args.clinic.as_deref()
        && config.clinic(k).is_none()
    {
        return Err(fail(exit::USAGE, config.unknown_clinic(k)));
    }
    if args.from > args.to {
        return Err(fail(
            exit::USAGE,
            format!(
                "--from {} is after --to {}; give the earlier date first",
                args.from, args.to
            ),
        ));
    }
    let (start, end) = report::window(args.from, args.to);
    let rows = store.report_rows(args.clinic.as_deref(), start, end, report::MAX_ROWS)?;
    if rows.len() > report::MAX_ROWS {
        return Err(fail(
            exit::USAGE,
            format!(
                "the range holds more than {} appointments; give a shorter range or one --clinic",
                report::MAX_ROWS
            ),
        ));
    }
    let first = store.first_reminders()?;
    let r = report::compute(
        &rows,
        &first,
        &Names::of(&config),
        (args.from, args.to),
        config.report.min_count,
    );
    if args.json {
        print_json(&r)?;
    } else if args.csv {
        std::io::stdout().lock().write_all(&report::to_csv(&r))?;
    } else {
        print_text(&r, &config)?;
    }
    Ok(exit::OK)
}

/// One line of outcomes: appointments, no-shows, confirmations, cancellations.
fn outcomes_line(o: &Outcomes) -> String {
    format!(
        "{} appointments; no-show {}; confirmed {}; cancelled {}",
        o.appointments,
        o.no_show.text(),
        o.confirmed.text(),
        o.cancelled.text()
    )
}

fn print_text(r: &Report, config: &reminderd::config::Config) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Evaluation from {} to {} (rates from fewer than {} appointments: too few)",
        r.from, r.to, r.min_count
    )?;
    writeln!(out, "All: {}", outcomes_line(&r.total))?;
    writeln!(
        out,
        "\nBefore and with reminderd (split at each clinic's first reminder):"
    )?;
    for b in &r.before_after {
        // In the clinic's own time, as every date the report groups by.
        let zone = config
            .clinic(&b.clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        let since = b.first_reminder.map_or_else(
            || "no reminder sent yet".into(),
            |f| {
                format!(
                    "first reminder {}",
                    f.with_timezone(&zone).format("%-d %b %Y %H:%M %Z")
                )
            },
        );
        writeln!(out, "  {} ({since})", b.label)?;
        writeln!(out, "    before: {}", outcomes_line(&b.before))?;
        writeln!(out, "    with:   {}", outcomes_line(&b.after))?;
    }
    for (title, groups) in [
        ("By month", &r.months),
        ("By clinic", &r.clinics),
        ("By provider", &r.providers),
        ("By the last reminder before the visit", &r.reminders),
    ] {
        writeln!(out, "\n{title}:")?;
        for g in groups {
            let clinic = match (&g.clinic, title) {
                (Some(c), "By month") => format!(" ({c})"),
                _ => String::new(),
            };
            writeln!(out, "  {}{clinic}: {}", g.label, outcomes_line(&g.outcomes))?;
        }
    }
    writeln!(out, "\nHow far ahead cancellations came:")?;
    for n in &r.notice {
        writeln!(out, "  {}: {}", n.label, n.share.text())?;
    }
    let a = &r.answers;
    let median = a
        .median_minutes
        .map_or_else(|| "too few".into(), |m| format!("{m} minutes"));
    writeln!(
        out,
        "\nAnswer time (median from reminder to answer): {median} ({} answered)",
        a.answered
    )?;
    let f = &r.feedback;
    let average = f
        .average
        .map_or_else(|| "too few".into(), |v| format!("{v:.1} of 5"));
    let scores: Vec<String> = (1..=5)
        .zip(f.scores)
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    writeln!(
        out,
        "Feedback: average {average} ({} scored; {})",
        f.scored,
        scores.join(", ")
    )?;
    let line = |label: &str, rate: &Rate| format!("{label}: {}", rate.text());
    writeln!(
        out,
        "{}",
        line("Reminder messages failed", &r.delivery.failed_messages)
    )?;
    writeln!(
        out,
        "{}",
        line(
            "Appointments not reached (number failed)",
            &r.delivery.unreachable
        )
    )?;
    Ok(())
}
