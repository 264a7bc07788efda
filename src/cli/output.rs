//! Output: the JSON writer and every human printer the subcommands share, in the house
//! table style.

use std::io::Write;

use anyhow::Result;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use reminderd::config::Config;
use reminderd::dispatch;
use reminderd::import::{ChangeKind, ImportReport};
use reminderd::store::{AppointmentView, FollowUp, OutboxView, ReplyView, Stats, Status};

use super::feeds::FeedLine;
use super::outbox::TemplateCheck;

pub(super) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// A table in the house style, with this header.
fn table_with<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// `rows` as one table under `header`, or the line `empty` when there are none; `count` names
/// what a row is for the closing "N …" line, where the listing has one.
pub(super) fn print_table<T, const N: usize>(
    rows: &[T],
    empty: &str,
    header: [&str; N],
    count: Option<&str>,
    row: impl Fn(&T) -> [String; N],
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "{empty}")?;
        return Ok(());
    }
    let mut table = table_with(header);
    for r in rows {
        table.add_row(row(r));
    }
    writeln!(out, "{table}")?;
    if let Some(what) = count {
        writeln!(out, "{} {what}", rows.len())?;
    }
    Ok(())
}

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How many individual changes an import summary lists before it only counts them.
const SHOWN: usize = 50;

pub(super) fn print_import(config: &Config, r: &ImportReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if !r.errors.is_empty() {
        let bad_rows = r
            .errors
            .iter()
            .map(|e| e.row)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        writeln!(
            out,
            "{}: {} problem(s) in {} row(s); nothing was imported. Fix these and import the file again:",
            r.file,
            r.errors.len(),
            bad_rows
        )?;
        for e in &r.errors {
            let col = if e.column.is_empty() {
                String::new()
            } else {
                format!(", column {:?}", e.column)
            };
            let val = if e.value.is_empty() {
                String::new()
            } else {
                format!(" ({:?})", e.value)
            };
            writeln!(out, "  row {}{col}{val}: {}", e.row, e.message)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{}: {} row(s): {} new, {} updated, {} cancelled, {} unchanged{}",
        r.file,
        r.rows,
        r.new,
        r.updated,
        r.cancelled,
        r.unchanged,
        if r.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        }
    )?;
    for c in r.changes.iter().take(SHOWN) {
        let zone = config
            .clinic(&c.clinic)
            .map_or(chrono_tz::UTC, |c| c.time_zone);
        let at = |t: DateTime<Utc>| {
            t.with_timezone(&zone)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string()
        };
        let what = match &c.kind {
            ChangeKind::Rescheduled { from, to } => {
                format!("moved from {} to {}", at(*from), at(*to))
            }
            ChangeKind::Cancelled => "cancelled".into(),
            ChangeKind::CancelledMissing => "cancelled (not in this complete schedule)".into(),
            ChangeKind::Reinstated => "booked again".into(),
            ChangeKind::Kept => "status kept as set at the desk".into(),
        };
        let row = c
            .row
            .map_or_else(|| "      ".to_string(), |r| format!("row {r:<3}"));
        writeln!(out, "  {row} {}/{}: {what}", c.clinic, c.appointment_id)?;
    }
    if r.changes.len() > SHOWN {
        writeln!(out, "  … and {} more changes", r.changes.len() - SHOWN)?;
    }
    Ok(())
}

#[derive(Serialize)]
pub(super) struct AppointmentJson<'a> {
    id: &'a str,
    clinic: &'a str,
    patient_id: &'a str,
    patient_name: &'a str,
    phone: &'a str,
    language: &'a str,
    provider: Option<&'a str>,
    starts_at: String,
    starts_at_local: String,
    duration_min: u32,
    status: Status,
    cancelled_by: Option<reminderd::store::CancelledBy>,
    response: reminderd::store::Response,
    response_at: Option<String>,
}

impl<'a> AppointmentJson<'a> {
    pub(super) fn new(a: &'a AppointmentView, zone: chrono_tz::Tz) -> Self {
        Self {
            id: &a.id,
            clinic: &a.clinic,
            patient_id: &a.patient_id,
            patient_name: &a.patient_name,
            phone: a.phone.as_str(),
            language: &a.language,
            provider: a.provider.as_deref(),
            starts_at: a.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            starts_at_local: a
                .starts_at
                .with_timezone(&zone)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            duration_min: a.duration_min,
            status: a.status,
            cancelled_by: a.cancelled_by,
            response: a.response,
            response_at: a
                .response_at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        }
    }
}

pub(super) fn print_appointments(list: &[(AppointmentView, chrono_tz::Tz)]) -> std::io::Result<()> {
    let header = [
        "when (clinic time)",
        "clinic",
        "appointment",
        "patient",
        "phone",
        "lang",
        "provider",
        "status",
        "response",
    ];
    print_table(
        list,
        "no appointments match",
        header,
        Some("appointment(s)"),
        |(a, zone)| {
            let status = match a.cancelled_by {
                Some(by) if a.status == Status::Cancelled => format!("cancelled ({by})"),
                _ => a.status.to_string(),
            };
            [
                a.starts_at
                    .with_timezone(zone)
                    .format("%a %Y-%m-%d %H:%M %Z")
                    .to_string(),
                a.clinic.clone(),
                a.id.clone(),
                a.patient_name.clone(),
                a.phone.masked(),
                a.language.clone(),
                a.provider.clone().unwrap_or_default(),
                status,
                a.response.to_string(),
            ]
        },
    )
}

pub(super) fn print_outbox(rows: &[OutboxView]) -> std::io::Result<()> {
    let header = [
        "id",
        "appointment",
        "kind",
        "via",
        "rule",
        "state",
        "due (UTC)",
        "attempts",
        "detail",
    ];
    print_table(
        rows,
        "the outbox is empty",
        header,
        Some("message(s)"),
        |r| {
            let detail = r
                .needs_staff
                .clone()
                .or_else(|| r.last_error.clone())
                .or_else(|| r.reason.clone())
                .or_else(|| r.wamid.as_deref().map(reminderd::whatsapp::message_ref))
                .unwrap_or_default();
            [
                r.id.to_string(),
                format!("{}/{}", r.clinic, r.appointment_id),
                r.kind.clone(),
                via(&r.channel, &r.recipient),
                r.rule.clone(),
                r.state.clone(),
                r.send_at.clone(),
                r.attempts.to_string(),
                detail,
            ]
        },
    )
}

/// How a message goes: "WhatsApp", "SMS", "SMS → caregiver".
fn via(channel: &str, recipient: &str) -> String {
    let by = match channel {
        "sms" => "SMS",
        "whatsapp" => "WhatsApp",
        other => other,
    };
    if recipient == "contact" {
        format!("{by} → caregiver")
    } else {
        by.to_string()
    }
}

pub(super) fn print_replies(rows: &[ReplyView]) -> std::io::Result<()> {
    let header = [
        "received (UTC)",
        "from",
        "patient",
        "appointment",
        "said",
        "read as",
        "outcome",
    ];
    print_table(rows, "no replies", header, None, |r| {
        let appointment = match (&r.clinic, &r.appointment_id) {
            (Some(c), Some(a)) => format!("{c}/{a}"),
            _ => String::new(),
        };
        let outcome = match &r.reason {
            Some(why) => format!("{}: {why}", r.outcome),
            None => r.outcome.clone(),
        };
        [
            r.received_at.clone(),
            reminderd::phone::mask(&r.from),
            r.patient_name.clone().unwrap_or_default(),
            appointment,
            r.text.clone().unwrap_or_else(|| format!("({})", r.kind)),
            r.intent.clone(),
            outcome,
        ]
    })
}

pub(super) fn print_follow_ups(all: &[(FollowUp, chrono_tz::Tz)]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if all.is_empty() {
        writeln!(out, "nobody to call")?;
    }
    for (f, zone) in all {
        writeln!(
            out,
            "{}  {}/{}  {}  {}",
            f.starts_at.with_timezone(zone).format("%a %d %b %H:%M %Z"),
            f.clinic,
            f.appointment_id,
            f.patient_name,
            f.phone
        )?;
        for r in &f.reasons {
            writeln!(out, "      - {r}")?;
        }
    }
    Ok(())
}

/// The billable WhatsApp messages per clinic, month and category, with the estimated cost.
pub(super) fn print_costs(costs: &[reminderd::config::MonthCost]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if costs.is_empty() {
        writeln!(out, "  billable WhatsApp messages: none")?;
        return Ok(());
    }
    writeln!(
        out,
        "  billable WhatsApp messages (pricing from status webhooks):"
    )?;
    for c in costs {
        let cost = match (c.cost, c.currency.as_deref()) {
            (Some(v), Some(cur)) => format!("{cur} {v:.2}"),
            (Some(v), None) => format!("{v:.2}"),
            (None, _) => "no rate in [costs]".into(),
        };
        writeln!(
            out,
            "    {} {} {}: {} billable, estimated {cost}",
            c.clinic, c.month, c.category, c.messages
        )?;
    }
    let total: f64 = costs.iter().filter_map(|c| c.cost).sum();
    if let Some(cur) = costs.iter().find_map(|c| c.currency.as_deref()) {
        writeln!(out, "    estimated total: {cur} {total:.2}")?;
    }
    Ok(())
}

pub(super) fn print_stats(s: &Stats, from: NaiveDate, to: NaiveDate) -> Result<()> {
    let pct = |n: i64, d: i64| {
        if d == 0 {
            "-".to_string()
        } else {
            format!("{:.0}%", 100.0 * n as f64 / d as f64)
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{from} to {to}: {} appointments, {} reminded",
        s.appointments, s.reminded
    )?;
    writeln!(
        out,
        "  reminders: {} sent, {} delivered, {} read, {} failed",
        s.reminders_sent, s.reminders_delivered, s.reminders_read, s.reminders_failed
    )?;
    writeln!(
        out,
        "  answers (of reminded): {} confirmed ({}); of all: {} cancelled, {} asked to reschedule",
        s.reminded_confirmed,
        pct(s.reminded_confirmed, s.reminded),
        s.declined,
        s.reschedule_requested
    )?;
    writeln!(
        out,
        "  no-shows: {} ({} had confirmed, {} reminded without confirming, {} unreachable, {} not reminded); {} opted out",
        s.no_shows,
        s.no_show_confirmed,
        s.no_show_unconfirmed,
        s.no_show_unreachable,
        s.no_show_not_reminded,
        s.opt_outs
    )?;
    // The appointments no reminder reached are the rule table's last line.
    for c in &s.per_channel {
        let Some(ch) = c.channel.as_deref() else {
            continue;
        };
        let group = format!("last reminder by {}", via(ch, "patient"));
        writeln!(
            out,
            "  {group}: {} appointments, {} confirmed, {} no-shows; {} reminders sent, {} delivered",
            c.appointments,
            pct(c.confirmed, c.appointments),
            pct(c.no_show, c.appointments),
            c.sent,
            c.delivered
        )?;
    }
    for r in &s.per_rule {
        let group = r.rule.as_deref().map_or_else(
            || "no reminder reached".to_string(),
            |r| format!("last reminder {r}"),
        );
        writeln!(
            out,
            "  {group}: {} appointments, {} confirmed, {} no-shows",
            r.appointments,
            pct(r.confirmed, r.appointments),
            pct(r.no_show, r.appointments)
        )?;
    }
    Ok(())
}

pub(super) fn print_send_report(r: &dispatch::Report, json: bool) -> Result<()> {
    if json {
        return print_json(r);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "sent {}, failed {}, retrying {}, unknown {}, skipped {}, expired {}",
        r.sent, r.failed, r.retrying, r.unknown, r.skipped, r.expired
    )?;
    if r.requeued > 0 {
        writeln!(
            out,
            "  {} send(s) interrupted before their request went out are pending again",
            r.requeued
        )?;
    }
    if r.recovered > 0 {
        writeln!(
            out,
            "  {} send(s) interrupted by a stop are now unknown, awaiting their delivery status",
            r.recovered
        )?;
    }
    if r.settled_unknown > 0 {
        writeln!(
            out,
            "  {} unknown send(s) passed unknown_after and were settled",
            r.settled_unknown
        )?;
    }
    for h in &r.held {
        writeln!(out, "  {h}")?;
    }
    Ok(())
}

pub(super) fn print_template_checks(lines: &[TemplateCheck]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(
            out,
            "{} {:<12} {:<24} {:<6} {}{}{}",
            if l.ok { "ok  " } else { "FAIL" },
            l.template,
            l.name,
            l.language,
            l.account
                .as_deref()
                .map(|a| format!("account {a} "))
                .unwrap_or_default(),
            l.status,
            l.problem
                .as_deref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default()
        )?;
        for w in &l.warnings {
            writeln!(out, "     warning: {w}")?;
        }
    }
    Ok(())
}

/// `reminderd feeds`: one row per configured feed, then each hold and last error in full.
pub(super) fn print_feeds(lines: &[FeedLine<'_>], now: DateTime<Utc>) -> std::io::Result<()> {
    print_table(
        lines,
        "no schedule feeds are configured ([feeds.NAME] in reminders.toml)",
        [
            "feed",
            "kind",
            "clinics",
            "last heard",
            "applied",
            "refused",
            "waiting",
            "resent",
            "reminders",
        ],
        None,
        |l| {
            [
                l.feed.name.clone(),
                l.kind().to_string(),
                l.feed.clinics().join(", "),
                l.last_heard().map_or("never".to_string(), |t| {
                    format!(
                        "{} ({} ago)",
                        rfc3339(t),
                        reminderd::plan::humanize(now - t)
                    )
                }),
                l.counts.applied.to_string(),
                l.counts.refused.to_string(),
                l.counts.waiting.to_string(),
                l.counts.replays.to_string(),
                if l.hold.is_some() { "HELD" } else { "ok" }.to_string(),
            ]
        },
    )?;
    let mut out = std::io::stdout().lock();
    for l in lines {
        if let Some(h) = &l.hold {
            writeln!(out, "{}: held: {h}", l.feed.name)?;
        }
        if let Some((t, e)) = l.status.as_ref().and_then(|s| s.last_error.as_ref()) {
            writeln!(
                out,
                "{}: last error at {}: {}",
                l.feed.name,
                rfc3339(*t),
                reminderd::phone::mask_loose(e)
            )?;
        }
    }
    Ok(())
}

/// `reminderd feeds messages NAME`.
pub(super) fn print_feed_messages(list: &[reminderd::store::FeedMessage]) -> std::io::Result<()> {
    print_table(
        list,
        "no messages",
        [
            "#",
            "message id",
            "kind",
            "received",
            "state",
            "appointment",
            "outcome or why",
        ],
        Some("message(s)"),
        |m| {
            [
                m.id.to_string(),
                m.message_id.clone(),
                m.kind.clone(),
                rfc3339(m.received_at),
                m.state.as_str().to_string(),
                m.external_id.clone().unwrap_or_default(),
                m.error
                    .as_deref()
                    .map(reminderd::phone::mask_loose)
                    .or_else(|| m.outcome.clone())
                    .unwrap_or_default(),
            ]
        },
    )
}

/// A progress bar on stderr, drawn with `template`, for a long command: only when stderr is a
/// terminal and the output is not JSON (never under systemd or in tests).
pub(super) fn progress_bar(json: bool, template: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}
