//! The report as a CSV file a spreadsheet opens as it is: UTF-8 with a byte-order mark (so
//! Excel reads names in any script), and no cell a spreadsheet would run as a formula.

use super::{Outcomes, Rate, Report};

/// The byte-order mark Excel needs to read a CSV file as UTF-8.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// The columns, in order.
const HEADER: [&str; 7] = [
    "Section", "Group", "Clinic", "Figure", "Count", "Of", "Rate",
];

/// A text cell made safe for a spreadsheet: one that starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return would be read as a formula (OWASP "CSV injection"), so it gets a leading `'`.
pub fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The lines of one group's outcomes.
fn outcomes(out: &mut Vec<[String; 7]>, section: &str, group: &str, clinic: &str, o: &Outcomes) {
    let line = |figure: &str, r: &Rate| {
        [
            section.into(),
            group.into(),
            clinic.into(),
            figure.into(),
            r.count.to_string(),
            r.of.to_string(),
            r.shown(),
        ]
    };
    out.push([
        section.into(),
        group.into(),
        clinic.into(),
        "Appointments".into(),
        o.appointments.to_string(),
        String::new(),
        String::new(),
    ]);
    out.push(line("No-show, of known outcomes", &o.no_show));
    out.push(line("Confirmed, of reminded", &o.confirmed));
    out.push(line("Cancelled, of all", &o.cancelled));
}

/// Every figure of `report`, one per line, as the bytes of a CSV file.
pub fn to_csv(report: &Report) -> Vec<u8> {
    let mut lines: Vec<[String; 7]> = Vec::new();
    let range = format!("{} to {}", report.from, report.to);
    outcomes(&mut lines, "All appointments", &range, "", &report.total);
    for g in &report.months {
        outcomes(
            &mut lines,
            "Month",
            &g.label,
            g.clinic.as_deref().unwrap_or(""),
            &g.outcomes,
        );
    }
    for g in &report.clinics {
        outcomes(&mut lines, "Clinic", &g.label, &g.key, &g.outcomes);
    }
    for g in &report.providers {
        outcomes(&mut lines, "Provider", &g.label, "", &g.outcomes);
    }
    for g in &report.reminders {
        outcomes(
            &mut lines,
            "Last reminder before the visit",
            &g.label,
            "",
            &g.outcomes,
        );
    }
    for b in &report.before_after {
        outcomes(
            &mut lines,
            "Before reminderd",
            &b.label,
            &b.clinic,
            &b.before,
        );
        outcomes(&mut lines, "With reminderd", &b.label, &b.clinic, &b.after);
    }
    let plain = |section: &str, group: &str, figure: &str, count: u64, of: String, rate: String| {
        [
            section.into(),
            group.into(),
            String::new(),
            figure.into(),
            count.to_string(),
            of,
            rate,
        ]
    };
    for n in &report.notice {
        let (count, of, rate) = (n.share.count, n.share.of.to_string(), n.share.shown());
        lines.push(plain(
            "Cancellation notice",
            n.label,
            "Cancelled this far ahead",
            count,
            of,
            rate,
        ));
    }
    let a = &report.answers;
    let median = a
        .median_minutes
        .map_or_else(|| "too few".into(), |m| format!("{m} minutes"));
    lines.push(plain(
        "Answer time",
        "",
        "Median from reminder to answer",
        a.answered,
        String::new(),
        median,
    ));
    let f = &report.feedback;
    let average = f
        .average
        .map_or_else(|| "too few".into(), |v| format!("{v:.1}"));
    lines.push(plain(
        "Feedback",
        "",
        "Average score (1 to 5)",
        f.scored,
        String::new(),
        average,
    ));
    for (score, n) in (1..=5).zip(f.scores) {
        let share = Rate::new(n, f.scored, report.min_count);
        lines.push(plain(
            "Feedback",
            &score.to_string(),
            "Patients who gave this score",
            n,
            f.scored.to_string(),
            share.shown(),
        ));
    }
    let d = &report.delivery;
    for (figure, r) in [
        ("Reminder messages failed", d.failed_messages),
        ("Appointments not reached (number failed)", d.unreachable),
    ] {
        lines.push(plain(
            "Delivery",
            "",
            figure,
            r.count,
            r.of.to_string(),
            r.shown(),
        ));
    }
    let mut w = csv::WriterBuilder::new().from_writer(BOM.to_vec());
    // Writing to memory cannot fail; a line that somehow did is left out rather than panicking.
    let _ = w.write_record(HEADER);
    for line in &lines {
        let _ = w.write_record(line.iter().map(|c| cell(c)));
    }
    w.into_inner().unwrap_or_default()
}
