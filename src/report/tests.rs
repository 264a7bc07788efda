//! The report's arithmetic on hand-counted rows.

use super::*;
use chrono::TimeZone;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, d, h, 0, 0)
        .single()
        .expect("instant")
}

fn row(d: u32, status: Status) -> Row {
    Row {
        clinic: "mumbai".into(),
        provider: Some("Dr Rao".into()),
        starts_at: at(d, 10),
        status,
        arrived: false,
        status_at: at(d, 10),
        response: Response::None,
        last_reminder: None,
        reminders_tried: 0,
        reminders_sent: 0,
        reminders_failed: 0,
        answer_secs: None,
        score: None,
    }
}

fn day(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).expect("date")
}

#[test]
fn no_shows_count_only_known_outcomes_and_split_at_the_first_reminder() {
    let mut rows = vec![
        row(1, Status::NoShow),
        row(2, Status::Completed),
        row(3, Status::Booked),    // outcome unknown: not in the denominator
        row(4, Status::Cancelled), // neither
        row(10, Status::NoShow),
        row(11, Status::Completed),
        row(12, Status::Completed),
    ];
    rows[2].arrived = true; // arrived at the desk: came
    for r in &mut rows[4..] {
        r.last_reminder = Some(("day_before".into(), "whatsapp".into()));
        r.response = Response::Confirmed;
    }
    let first = BTreeMap::from([("mumbai".to_string(), at(9, 0))]);
    let r = compute(
        &rows,
        &first,
        &Names::default(),
        (day(10, 1), day(10, 31)),
        2,
    );
    assert_eq!(r.total.appointments, 7);
    assert_eq!((r.total.no_show.count, r.total.no_show.of), (2, 6));
    let ba = &r.before_after[0];
    assert_eq!((ba.before.no_show.count, ba.before.no_show.of), (1, 3));
    assert_eq!((ba.after.no_show.count, ba.after.no_show.of), (1, 3));
    assert_eq!(ba.after.confirmed.text(), "100% (3 of 3)");
    assert_eq!(ba.before.cancelled.text(), "25% (1 of 4)");
    let none = r.reminders.last().expect("no-reminder group");
    assert_eq!(
        (none.label.as_str(), none.outcomes.appointments),
        (NO_REMINDER, 4)
    );
    assert_eq!(r.reminders[0].label, "day_before by WhatsApp");
}

#[test]
fn too_few_under_the_minimum_and_rows_outside_the_local_range_are_left_out() {
    let rows = [
        row(1, Status::NoShow),
        row(2, Status::Completed),
        row(20, Status::NoShow),
    ];
    let r = compute(
        &rows,
        &BTreeMap::new(),
        &Names::default(),
        (day(10, 1), day(10, 5)),
        20,
    );
    assert_eq!(r.total.appointments, 2);
    assert_eq!(r.total.no_show.text(), "too few (1 of 2)");
    assert_eq!(r.answers.median_minutes, None);
    assert_eq!(r.feedback.average, None);
    // Everything before a first reminder that never came.
    assert_eq!(r.before_after[0].before.appointments, 2);
    assert_eq!(r.before_after[0].after.appointments, 0);
}

#[test]
fn notice_answers_feedback_and_delivery() {
    let mut rows: Vec<Row> = (1..=5).map(|d| row(d, Status::Cancelled)).collect();
    let ahead = [-3600, 2 * 3600, 5 * 3600, 30 * 3600, 100 * 3600];
    for (r, s) in rows.iter_mut().zip(ahead) {
        r.status_at = r.starts_at - chrono::Duration::seconds(s);
    }
    for (i, r) in rows.iter_mut().enumerate() {
        r.answer_secs = Some([60, 600, 6000, 120, 180][i]);
        r.score = Some([5, 4, 4, 3, 9][i]); // 9 is no score
        r.reminders_tried = 1;
        (r.reminders_sent, r.reminders_failed) = if i < 2 { (0, 1) } else { (1, 0) };
    }
    let r = compute(
        &rows,
        &BTreeMap::new(),
        &Names::default(),
        (day(10, 1), day(10, 31)),
        1,
    );
    let counts: Vec<u64> = r.notice.iter().map(|n| n.share.count).collect();
    assert_eq!(counts, [2, 1, 1, 1]);
    assert_eq!(
        r.answers.median_minutes,
        Some(3),
        "60, 120, 180, 600, 6000 s"
    );
    assert_eq!((r.feedback.scored, r.feedback.average), (4, Some(4.0)));
    assert_eq!(r.delivery.unreachable.text(), "40% (2 of 5)");
    assert_eq!(r.delivery.failed_messages.text(), "40% (2 of 5)");
}

#[test]
fn csv_has_a_bom_and_escapes_formulas() {
    let mut rows = vec![row(1, Status::NoShow)];
    rows[0].provider = Some("=HYPERLINK(\"http://x\",\"y\")".into());
    let r = compute(
        &rows,
        &BTreeMap::new(),
        &Names::default(),
        (day(10, 1), day(10, 31)),
        1,
    );
    let bytes = to_csv(&r);
    assert!(bytes.starts_with("\u{feff}Section,".as_bytes()));
    let text = String::from_utf8(bytes).expect("utf-8");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "{text}"
    );
    for bad in ["+1", "-1", "@x", "\tx", "\rx"] {
        assert_eq!(cell(bad), format!("'{bad}"));
    }
    assert_eq!(cell("Dr Rao"), "Dr Rao");
}
