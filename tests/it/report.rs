//! `reminderd report`: the evaluation on a seeded history (a clinic's months without
//! reminders, then with them) matches a hand count; the CSV opens in a spreadsheet as meant.

use reminderd::store::sql::Conn as Connection;
use serde_json::Value;

use crate::common::{Env, csv};

/// The provider name a hostile schedule could carry: a spreadsheet would run it as a formula.
pub const EVIL: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

/// Mumbai's September without reminderd (A1–A6) and October with it (B1–B7), and one New
/// York appointment (N1). The hand count:
/// - before, Mumbai: A1 and A2 no-shows, A3–A6 completed → no-show 2 of 6 (33%);
/// - with, Mumbai: B1 no-show, B2–B6 completed, B7 cancelled two days ahead → no-show 1 of 6
///   (17%), confirmed B2–B4 of the six reminded B1–B6 (50%), cancelled 1 of 7 (14%);
/// - answers 10, 20 and 30 minutes after the reminder → median 20 minutes;
/// - feedback 5, 4 and 3 → average 4.0;
/// - New York: one no-show, too few under `min_count = 3`.
pub const ROWS: [&str; 14] = [
    "A1,P1,Aarav Sharma,98200 12341,en,2026-09-07,10:00,15,Dr. Mehta,mumbai,booked",
    "A2,P2,Priya Patil,98200 12342,en,2026-09-08,10:00,15,Dr. Mehta,mumbai,booked",
    "A3,P3,Rohan Iyer,98200 12343,en,2026-09-09,10:00,15,Dr. Mehta,mumbai,booked",
    "A4,P4,Meera Nair,98200 12344,en,2026-09-10,10:00,15,Dr. Mehta,mumbai,booked",
    "A5,P5,Kabir Das,98200 12345,en,2026-09-11,10:00,15,Dr. Mehta,mumbai,booked",
    "A6,P6,Anaya Rao,98200 12346,en,2026-09-12,10:00,15,Dr. Mehta,mumbai,booked",
    "B1,P7,Vivaan Shah,98200 12347,en,2026-10-05,10:00,15,Dr. Mehta,mumbai,booked",
    "B2,P8,Diya Menon,98200 12348,en,2026-10-06,10:00,15,Dr. Mehta,mumbai,booked",
    "B3,P9,Arjun Pillai,98200 12349,en,2026-10-07,10:00,15,Dr. Mehta,mumbai,booked",
    "B4,P10,Isha Kapoor,98200 12350,en,2026-10-08,10:00,15,Dr. Mehta,mumbai,booked",
    "B5,P11,Reyansh Bose,98200 12351,en,2026-10-09,10:00,15,Dr. Mehta,mumbai,booked",
    "B6,P12,Sara Joshi,98200 12352,en,2026-10-10,10:00,15,Dr. Mehta,mumbai,booked",
    "B7,P13,Ved Kulkarni,98200 12353,en,2026-10-11,10:00,15,Dr. Mehta,mumbai,booked",
    "N1,PN1,James Wilson,212-867-5309,en,2026-10-06,09:00,30,Dr. Chen,nyc,booked",
];

/// What the import cannot say yet (it reads booked and cancelled only): outcomes, reminders
/// sent in October, answers and feedback scores, set as the daemon would have stored them.
pub const HISTORY: &str = "
    UPDATE appointments SET status = 'no_show', status_at = starts_at + 3600 WHERE external_id IN ('A1', 'A2', 'B1', 'N1');
    UPDATE appointments SET status = 'completed', status_at = starts_at + 3600
     WHERE external_id IN ('A3', 'A4', 'A5', 'A6', 'B2', 'B3', 'B4', 'B5', 'B6');
    UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient', status_at = starts_at - 2 * 86400 WHERE external_id = 'B7';
    INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, state, created_at, updated_at, sent_at, channel)
     SELECT id, 'reminder', 'day-before', starts_at, starts_at - 86400, starts_at - 14400, 'delivered',
            starts_at - 86400, starts_at - 86400, starts_at - 86400, 'whatsapp'
     FROM appointments WHERE external_id IN ('B1', 'B2', 'B3', 'B4', 'B5', 'B6');
    UPDATE appointments SET response = 'confirmed', response_at = starts_at - 86000 WHERE external_id IN ('B2', 'B3', 'B4');
    INSERT INTO replies (message_id, from_phone, patient_id, appointment_id, kind, text, intent, outcome, received_at)
     SELECT 'wamid.' || external_id, '+919820012300', patient_id, id, 'button', 'confirm', 'confirm', 'applied',
            starts_at - 86400 + CASE external_id WHEN 'B2' THEN 600 WHEN 'B3' THEN 1200 ELSE 1800 END
     FROM appointments WHERE external_id IN ('B2', 'B3', 'B4');
    INSERT INTO feedback (appointment_id, patient_id, score, received_at)
     SELECT id, patient_id, CASE external_id WHEN 'B2' THEN 5 WHEN 'B3' THEN 4 ELSE 3 END, starts_at + 7200
     FROM appointments WHERE external_id IN ('B2', 'B3', 'B4');
";

/// Seeds the history into a database the rows were imported into.
pub fn seed(db: &Connection) {
    let evil = EVIL.replace('\'', "''");
    db.execute_batch(&format!(
        "{HISTORY} UPDATE appointments SET provider = '{evil}' WHERE external_id = 'A1';"
    ))
    .expect("seed the history");
}

/// An environment with `[report] min_count = 3` and the seeded history.
fn seeded() -> Env {
    let env = Env::new();
    let config = env.path("reminders.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}\n[report]\nmin_count = 3\n")).expect("config");
    env.import("history.csv", &csv(&ROWS), &[]).expect(0);
    seed(&env.sql());
    env
}

fn rate(v: &Value) -> (u64, u64, bool) {
    (
        v["count"].as_u64().expect("count"),
        v["of"].as_u64().expect("of"),
        v["enough"].as_bool().expect("enough"),
    )
}

#[test]
fn before_and_with_reminderd_match_the_hand_count() {
    let env = seeded();
    let r = env
        .run(&[
            "report",
            "--from",
            "2026-09-01",
            "--to",
            "2026-10-31",
            "--json",
        ])
        .expect(0)
        .json();
    let mumbai = r["before_after"]
        .as_array()
        .expect("before_after")
        .iter()
        .find(|b| b["clinic"] == "mumbai")
        .expect("mumbai");
    assert_eq!(rate(&mumbai["before"]["no_show"]), (2, 6, true));
    assert_eq!(mumbai["before"]["appointments"], 6);
    assert_eq!(rate(&mumbai["after"]["no_show"]), (1, 6, true));
    assert_eq!(rate(&mumbai["after"]["confirmed"]), (3, 6, true));
    assert_eq!(rate(&mumbai["after"]["cancelled"]), (1, 7, true));
    assert_eq!(
        mumbai["first_reminder"], "2026-10-04T04:30:00Z",
        "B1's reminder"
    );
    assert_eq!(r["answers"]["median_minutes"], 20);
    assert_eq!(r["answers"]["answered"], 3);
    assert_eq!(r["feedback"]["average"], 4.0);
    assert_eq!(r["feedback"]["scores"], serde_json::json!([0, 0, 1, 1, 1]));
    let nyc = r["clinics"]
        .as_array()
        .expect("clinics")
        .iter()
        .find(|c| c["key"] == "nyc")
        .expect("nyc");
    assert_eq!(
        rate(&nyc["no_show"]),
        (1, 1, false),
        "one appointment is too few"
    );
    let two_days = &r["notice"][2];
    assert_eq!(two_days["label"], "1 to 3 days");
    assert_eq!(rate(&two_days["share"]), (1, 1, false));

    let text = env
        .run(&[
            "report",
            "--from",
            "2026-09-01",
            "--to",
            "2026-10-31",
            "--clinic",
            "mumbai",
        ])
        .expect(0)
        .stdout;
    assert!(
        text.contains("before: 6 appointments; no-show 33% (2 of 6)"),
        "{text}"
    );
    assert!(text.contains("with:   7 appointments; no-show 17% (1 of 6); confirmed 50% (3 of 6); cancelled 14% (1 of 7)"), "{text}");
    assert!(
        text.contains("Feedback: average 4.0 of 5 (3 scored"),
        "{text}"
    );
    assert!(
        !text.contains("James Wilson") && !text.contains("nyc"),
        "{text}"
    );
    // September alone is all before the first reminder.
    let sept = env
        .run(&[
            "report",
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-30",
            "--clinic",
            "mumbai",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(sept["total"]["appointments"], 6);
    assert_eq!(sept["before_after"][0]["after"]["appointments"], 0);
}

#[test]
fn the_csv_starts_with_a_bom_and_escapes_formula_cells() {
    let env = seeded();
    let out = env
        .run(&[
            "report",
            "--from",
            "2026-09-01",
            "--to",
            "2026-10-31",
            "--csv",
        ])
        .expect(0);
    assert!(
        out.stdout.starts_with('\u{feff}'),
        "{:?}",
        &out.stdout[..20]
    );
    let mut rows =
        csv::ReaderBuilder::new().from_reader(out.stdout.trim_start_matches('\u{feff}').as_bytes());
    let header = rows.headers().expect("header").clone();
    assert_eq!(&header[0], "Section");
    let records: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("record")).collect();
    let providers: Vec<&str> = records
        .iter()
        .filter(|r| &r[0] == "Provider")
        .map(|r| &r[1])
        .collect();
    assert!(
        providers.contains(&format!("'{EVIL}").as_str()),
        "{providers:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r.iter().all(|c| !c.starts_with(['=', '+', '-', '@'])))
    );
    let before = records
        .iter()
        .find(|r| &r[0] == "Before reminderd" && &r[2] == "mumbai" && r[3].starts_with("No-show"))
        .expect("before line");
    assert_eq!((&before[4], &before[5], &before[6]), ("2", "6", "33%"));
    let nyc = records
        .iter()
        .find(|r| &r[0] == "Clinic" && &r[2] == "nyc" && r[3].starts_with("No-show"))
        .expect("nyc line");
    assert_eq!(&nyc[6], "too few");
}

#[test]
fn bad_ranges_and_clinics_are_usage_errors() {
    let env = seeded();
    let r = env
        .run(&["report", "--from", "2026-10-31", "--to", "2026-09-01"])
        .expect(64);
    assert!(r.stderr.contains("is after --to"), "{}", r.stderr);
    let r = env
        .run(&[
            "report",
            "--from",
            "2026-09-01",
            "--to",
            "2026-10-31",
            "--clinic",
            "pune",
        ])
        .expect(64);
    assert!(r.stderr.contains("pune"), "{}", r.stderr);
}

#[test]
fn a_history_of_past_outcomes_imports_as_the_baseline_and_a_future_outcome_is_refused() {
    // A clinic loads last year's visits from its practice system: their outcomes are the
    // "before reminderd" figures.
    let env = Env::new();
    let rows = [
        "H1,P1,Aarav Sharma,98200 12341,en,2025-09-07,10:00,15,Dr. Mehta,mumbai,no_show",
        "H2,P2,Priya Patil,98200 12342,en,2025-09-08,10:00,15,Dr. Mehta,mumbai,Completed",
        "H3,P3,Rohan Gupta,98200 12343,en,2025-09-09,10:00,15,Dr. Mehta,mumbai,DNA",
        "H4,P4,Sneha Kulkarni,98200 12344,en,2025-09-10,10:00,15,Dr. Mehta,mumbai,attended",
    ];
    env.import("history.csv", &csv(&rows), &[]).expect(0);
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE status = 'no_show'"),
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE status = 'completed'"),
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM outbox"),
        0,
        "no message for a past visit"
    );
    let r = env
        .run(&[
            "report",
            "--from",
            "2025-09-01",
            "--to",
            "2025-09-30",
            "--json",
        ])
        .expect(0);
    let mumbai = &r.json()["clinics"]
        .as_array()
        .expect("clinics")
        .iter()
        .find(|c| c["key"] == "mumbai")
        .cloned()
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert_eq!(mumbai["no_show"]["count"], 2, "{mumbai:#}");
    assert_eq!(mumbai["no_show"]["of"], 4, "{mumbai:#}");

    // An outcome for a visit still to come is a mistake in the export: nothing is written.
    let later = "F1,P5,Vikram Singh,98200 12345,en,2031-01-07,10:00,15,Dr. Mehta,mumbai,no_show";
    let r = env.import("later.csv", &csv(&[later]), &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("has not taken place yet"),
        "{} {}",
        r.stdout,
        r.stderr
    );
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE external_id = 'F1'"),
        0
    );
}
