//! `reminderd import`: the front desk's CSV import.

use crate::common::{Env, csv, repo_file};

const A1: &str = "A1,P1,Aarav Sharma,98200 12345,en,2027-01-15,09:00,15,Dr. Mehta,mumbai,booked";
const A2: &str = "A2,P2,Priya Patil,+91 98765 43210,mr,2027-01-15,09:30,,Dr. Mehta,mumbai,";
const A3: &str = "A3,P3,James Wilson,212-867-5309,en,2027-01-15,10:00,30,Dr. Chen,nyc,booked";

#[test]
fn sample_schedule_imports_and_normalises_numbers() {
    let env = Env::new();
    let sample = repo_file("examples/schedule.csv");
    let r = env
        .run(&["import", sample.to_str().expect("path"), "--json"])
        .expect(0);
    let report = r.json();
    assert_eq!(report["rows"], 14);
    assert_eq!(report["new"], 14);
    assert_eq!(report["errors"].as_array().map(Vec::len), Some(0));

    let a = env.appointment("MUM-1001");
    assert_eq!(a["phone"], "+919820012345", "local Indian number to E.164");
    assert_eq!(
        a["starts_at"], "2026-11-26T03:30:00Z",
        "09:00 IST is 03:30 UTC"
    );
    assert_eq!(a["starts_at_local"], "2026-11-26T09:00:00+05:30");
    assert_eq!(a["patient_name"], "Aarav Sharma");
    assert_eq!(a["language"], "en");
    assert_eq!(
        env.appointment("MUM-1003")["phone"],
        "+919123456789",
        "leading 0 trunk prefix"
    );
    assert_eq!(env.appointment("MUM-1006")["status"], "cancelled");
    assert_eq!(env.appointment("NYC-502")["phone"], "+12128675309");
    assert_eq!(
        env.appointment("NYC-502")["starts_at"],
        "2026-11-26T14:00:00Z",
        "09:00 EST"
    );
    assert_eq!(
        env.appointment("NYC-506")["phone"],
        "+525512345678",
        "foreign number kept whole"
    );
    // One patient with two appointments is one patient row.
    assert_eq!(env.count("SELECT count(*) FROM patients"), 13);
    assert_eq!(
        env.count("SELECT count(*) FROM imports WHERE rows = 14 AND new = 14"),
        1
    );
}

#[test]
fn a_file_with_bad_rows_writes_nothing_and_reports_every_row() {
    let env = Env::new();
    let file = csv(&[
        A1,
        "A2,P2,Priya Patil,12345,mr,2027-01-15,09:30,15,Dr. Mehta,mumbai,booked",
        "A3,P3,Rohan,98200 22222,en,15/01/2027,25:00,abc,Dr. Iyer,mumbai,maybe",
        ",P4,Sneha,98200 33333,klingon-xx,2027-01-15,10:00,15,,delhi,booked",
        "A5,,,98200 44444,en,2027-01-15,10:00,15,,mumbai,booked",
        A3,
    ]);
    let r = env.import("bad.csv", &file, &[]).expect(65);
    let errors = r.json()["errors"].as_array().expect("errors").clone();
    let has = |row: u64, column: &str, needle: &str| {
        errors.iter().any(|e| {
            e["row"] == row
                && e["column"] == column
                && e["message"].as_str().unwrap_or("").contains(needle)
        })
    };
    assert!(
        has(
            3,
            "phone",
            "not a valid Indian mobile number: it has 5 digits, mobile numbers have 10"
        ),
        "{errors:#?}"
    );
    assert!(
        has(4, "date", "write it as 2027-01-15") || has(4, "date", "write it as 2026-11-25"),
        "{errors:#?}"
    );
    assert!(has(4, "time", "not a time of day"), "{errors:#?}");
    assert!(has(4, "duration_min", "whole number"), "{errors:#?}");
    assert!(
        has(4, "status", "write booked, cancelled, completed or no_show"),
        "{errors:#?}"
    );
    assert!(has(5, "appointment_id", "missing"), "{errors:#?}");
    assert!(
        has(5, "clinic", "unknown clinic; use one of: apia, mumbai, nyc"),
        "{errors:#?}"
    );
    assert!(has(6, "patient_id", "missing"), "{errors:#?}");
    assert!(has(6, "patient_name", "missing"), "{errors:#?}");
    // Values are quoted back so staff can find them.
    assert!(
        errors
            .iter()
            .any(|e| e["row"] == 3 && e["value"] == "12345")
    );
    // Good rows 2 and 7 are not reported, and nothing at all was written.
    assert!(!errors.iter().any(|e| e["row"] == 2 || e["row"] == 7));
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);
    assert_eq!(env.count("SELECT count(*) FROM imports"), 0);

    // The human report names the file, the row, the column and the fix.
    let f = env.file("bad2.csv", &file);
    let human = env.run(&["import", f.to_str().expect("path")]).expect(65);
    assert!(
        human.stdout.contains("nothing was imported"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("row 3, column \"phone\" (\"12345\")"),
        "{}",
        human.stdout
    );
}

#[test]
fn reimporting_the_same_file_changes_nothing() {
    let env = Env::new();
    let file = csv(&[A1, A2, A3]);
    env.import("day.csv", &file, &[]).expect(0);
    let before = env.appointments();
    let audit = env.count("SELECT count(*) FROM audit_log");
    let r = env.import("day.csv", &file, &[]).expect(0).json();
    assert_eq!(
        (
            r["new"].as_u64(),
            r["updated"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(3))
    );
    assert_eq!(env.appointments(), before);
    assert_eq!(env.count("SELECT count(*) FROM audit_log"), audit);
    assert_eq!(env.count("SELECT count(*) FROM patients"), 3);
}

#[test]
fn a_new_time_is_a_reschedule_with_an_audit_row_and_resets_the_answer() {
    let env = Env::new();
    env.import("day.csv", &csv(&[A1, A2]), &[]).expect(0);
    // The patients answered (replies arrive in a later issue; set the stored fact directly).
    env.sql()
        .execute("UPDATE appointments SET response = 'confirmed', response_at = 1 WHERE external_id IN ('A1', 'A2')", ())
        .expect("confirm");

    let moved = A1.replace("09:00", "11:30");
    let r = env
        .import("day2.csv", &csv(&[&moved, A2]), &[])
        .expect(0)
        .json();
    assert_eq!(
        (r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(1), Some(1))
    );
    let a1 = env.appointment("A1");
    assert_eq!(a1["starts_at_local"], "2027-01-15T11:30:00+05:30");
    assert_eq!(
        a1["response"], "none",
        "a moved appointment needs a new answer"
    );
    assert_eq!(
        env.appointment("A2")["response"],
        "confirmed",
        "an unmoved appointment keeps its answer"
    );
    let (action, old, new, actor): (String, String, String, String) = env
        .sql()
        .query_row(
            "SELECT action, old_value, new_value, actor FROM audit_log",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("one audit row");
    assert_eq!(action, "reschedule");
    assert_eq!(old, "2027-01-15T03:30:00+00:00");
    assert_eq!(new, "2027-01-15T06:00:00+00:00");
    assert!(
        actor.starts_with("import:") && actor.ends_with("day2.csv"),
        "{actor}"
    );
}

#[test]
fn status_cancelled_cancels_and_a_patient_cancellation_survives_reimport() {
    let env = Env::new();
    env.import("day.csv", &csv(&[A1, A2, A3]), &[]).expect(0);
    let cancelled = A1.replace(",booked", ",Cancelled");
    let r = env
        .import("day2.csv", &csv(&[&cancelled, A2, A3]), &[])
        .expect(0)
        .json();
    assert_eq!(r["cancelled"], 1);
    let a1 = env.appointment("A1");
    assert_eq!(
        (a1["status"].as_str(), a1["cancelled_by"].as_str()),
        (Some("cancelled"), Some("source"))
    );
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'cancel'"),
        1
    );

    // The patient cancels A2 by reply; the clinic's next export still says booked.
    env.sql()
        .execute(
            "UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient', response = 'declined' WHERE external_id = 'A2'",
            (),
        )
        .expect("patient cancels");
    let r = env
        .import("day3.csv", &csv(&[&cancelled, A2, A3]), &[])
        .expect(0)
        .json();
    assert_eq!(r["unchanged"], 3);
    let a2 = env.appointment("A2");
    assert_eq!(
        (a2["status"].as_str(), a2["response"].as_str()),
        (Some("cancelled"), Some("declined"))
    );

    // The clinic's own cancellation is undone when its file books A1 again.
    let r = env
        .import("day4.csv", &csv(&[A1, A2, A3]), &[])
        .expect(0)
        .json();
    assert_eq!(r["updated"], 1);
    assert_eq!(env.appointment("A1")["status"], "booked");
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'reinstate'"),
        1
    );
}

#[test]
fn complete_cancels_what_the_file_lacks_on_its_dates_only() {
    let env = Env::new();
    let other_day = "A9,P9,Vikram,97654 32109,hi,2027-01-16,09:00,15,Dr. Iyer,mumbai,booked";
    env.import("week.csv", &csv(&[A1, A2, A3, other_day]), &[])
        .expect(0);

    // Without --complete a shorter file leaves A2 alone.
    let r = env
        .import("partial.csv", &csv(&[A1, A3]), &[])
        .expect(0)
        .json();
    assert_eq!(r["cancelled"], 0);
    assert_eq!(env.appointment("A2")["status"], "booked");

    // With it, A2 (same clinic and date, not listed) is cancelled; A9 (another date) is not.
    let r = env
        .import("full.csv", &csv(&[A1, A3]), &["--complete"])
        .expect(0)
        .json();
    assert_eq!(r["cancelled"], 1);
    assert_eq!(r["unchanged"], 2);
    let a2 = env.appointment("A2");
    assert_eq!(
        (a2["status"].as_str(), a2["cancelled_by"].as_str()),
        (Some("cancelled"), Some("source"))
    );
    assert_eq!(env.appointment("A9")["status"], "booked");
    let reason: String = env
        .sql()
        .query_row(
            "SELECT reason FROM audit_log WHERE action = 'cancel'",
            (),
            |r| r.get(0),
        )
        .expect("audit");
    assert!(
        reason.contains("missing from a complete schedule"),
        "{reason}"
    );
}

#[test]
fn bom_crlf_and_semicolons_and_tabs_are_read() {
    let env = Env::new();
    let semi = format!(
        "\u{feff}{}",
        csv(&[A1, A2]).replace(',', ";").replace('\n', "\r\n")
    );
    let r = env.import("excel.csv", &semi, &[]).expect(0).json();
    assert_eq!(r["new"], 2);
    assert_eq!(env.appointment("A1")["patient_name"], "Aarav Sharma");
    assert_eq!(
        env.appointment("A1")["clinic"],
        "mumbai",
        "no stray \\r in the last column"
    );

    let tabs = csv(&[A3]).replace(',', "\t");
    assert_eq!(
        env.import("tabs.tsv", &tabs, &[]).expect(0).json()["new"],
        1
    );
}

#[test]
fn new_york_dst_gap_is_a_row_error_and_overlap_takes_the_earlier_offset() {
    let env = Env::new();
    let gap = "N1,Q1,Ann,212-867-5309,en,2027-03-14,02:30,30,Dr. Chen,nyc,booked";
    let r = env.import("gap.csv", &csv(&[gap]), &[]).expect(65).json();
    let e = &r["errors"][0];
    assert_eq!(
        (e["row"].as_u64(), e["column"].as_str()),
        (Some(2), Some("time"))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("does not exist on 2027-03-14 in America/New_York"),
        "{e}"
    );

    let overlap = "N2,Q2,Bob,212-867-5310,en,2027-11-07,01:30,30,Dr. Chen,nyc,booked";
    env.import("overlap.csv", &csv(&[overlap]), &[]).expect(0);
    let n2 = env.appointment("N2");
    assert_eq!(
        n2["starts_at"], "2027-11-07T05:30:00Z",
        "01:30 EDT (-04:00), the first of the two"
    );
    assert_eq!(n2["starts_at_local"], "2027-11-07T01:30:00-04:00");
}

#[test]
fn date_line_zone_puts_the_morning_on_the_previous_utc_day() {
    let env = Env::new();
    let row = "W1,S1,Tala,+685 72 12345,en,2027-01-15,09:00,30,Dr. Tuilagi,apia,booked";
    env.import("apia.csv", &csv(&[row]), &[]).expect(0);
    let w1 = env.appointment("W1");
    assert_eq!(
        w1["starts_at"], "2027-01-14T20:00:00Z",
        "Apia is UTC+13 in January"
    );
    let day = env
        .run(&[
            "appointments",
            "--clinic",
            "apia",
            "--from",
            "2027-01-15",
            "--to",
            "2027-01-15",
            "--json",
        ])
        .expect(0)
        .json();
    assert_eq!(
        day.as_array().map(Vec::len),
        Some(1),
        "listed on its local date"
    );
}

#[test]
fn dry_run_reports_changes_and_writes_nothing() {
    let env = Env::new();
    env.import("day.csv", &csv(&[A1]), &[]).expect(0);
    let moved = A1.replace("09:00", "10:00");
    let r = env
        .import("day2.csv", &csv(&[&moved, A2]), &["--dry-run"])
        .expect(0)
        .json();
    assert_eq!(
        (r["new"].as_u64(), r["updated"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        env.appointment("A1")["starts_at_local"],
        "2027-01-15T09:00:00+05:30"
    );
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 1);
    assert_eq!(env.count("SELECT count(*) FROM imports"), 1);
    assert_eq!(env.count("SELECT count(*) FROM audit_log"), 0);

    let f = env.file("day3.csv", csv(&[&moved]));
    let human = env
        .run(&["import", f.to_str().expect("path"), "--dry-run"])
        .expect(0);
    assert!(
        human.stdout.contains("dry run: nothing was written"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("mumbai/A1: moved from 2027-01-15 09:00 IST to 2027-01-15 10:00 IST"),
        "{}",
        human.stdout
    );
}

#[test]
fn clinic_option_fills_a_missing_column_and_rejects_other_clinics() {
    let env = Env::new();
    let no_clinic = "appointment_id,patient_id,patient_name,phone,date,time\nB1,P1,Asha,98200 12345,2027-01-15,09:00\n";
    let r = env.import("x.csv", no_clinic, &[]).expect(65).json();
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--clinic"),
        "{r}"
    );
    env.import("x.csv", no_clinic, &["--clinic", "mumbai"])
        .expect(0);
    let b1 = env.appointment("B1");
    assert_eq!(
        (b1["clinic"].as_str(), b1["language"].as_str()),
        (Some("mumbai"), Some("en"))
    );
    let r = env
        .import("y.csv", &csv(&[A3]), &["--clinic", "mumbai"])
        .expect(65)
        .json();
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("imported for clinic \"mumbai\""),
        "{r}"
    );
    env.import("z.csv", &csv(&[A1]), &["--clinic", "delhi"])
        .expect(64);
}

#[test]
fn a_named_export_format_maps_headers_and_us_dates() {
    let env = Env::new();
    let file = "MRN,Appt #,Patient,Mobile,Appt Date,Appt Time,Location,Notes\n\
                Q7,X100,Dana Lee,(917) 867-5309,01/15/2027,2:45 PM,nyc,bring insurance card\n";
    env.import("ps.csv", file, &["--format", "practice-suite"])
        .expect(0);
    let x = env.appointment("X100");
    assert_eq!(x["starts_at_local"], "2027-01-15T14:45:00-05:00");
    assert_eq!(x["phone"], "+19178675309");
    assert_eq!(x["duration_min"], 30, "the clinic's default length");
}

#[test]
fn file_level_problems_are_reported_plainly() {
    let env = Env::new();
    let r = env
        .import("cols.csv", "id,name,mobile\n1,x,2\n", &[])
        .expect(65)
        .json();
    let msg = r["errors"][0]["message"].as_str().unwrap_or("").to_string();
    assert_eq!(r["errors"][0]["row"], 1);
    assert!(
        msg.contains("no column named \"appointment_id\"")
            && msg.contains("the header row has: id, name, mobile"),
        "{msg}"
    );

    let mut latin1 = csv(&[A1]).into_bytes();
    latin1.extend_from_slice(b"A2,P2,Jos\xe9,98200 12345,en,2027-01-15,10:00,15,,mumbai,booked\n");
    let f = env.file("latin1.csv", &latin1);
    let r = env
        .run(&["import", f.to_str().expect("path"), "--json"])
        .expect(65)
        .json();
    assert_eq!(r["errors"][0]["row"], 3);
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("CSV UTF-8"),
        "{r}"
    );

    env.run(&["import", env.path("missing.csv").to_str().expect("path")])
        .expect(66);
    let r = env.import("empty.csv", "", &[]).expect(65).json();
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("empty"),
        "{r}"
    );
}

#[test]
fn row_numbers_match_the_spreadsheet_after_multiline_cells_and_blank_lines() {
    let env = Env::new();
    let file = format!(
        "{}\n{}\nA2,P2,\"Priya\nPatil\",98765 43210,mr,2027-01-15,09:30,15,Dr. Mehta,mumbai,booked\n\nA3,P3,Rohan,123,en,2027-01-15,10:00,15,,mumbai,booked\n",
        crate::common::HEADER,
        A1
    );
    let r = env.import("ml.csv", &file, &[]).expect(65).json();
    let errors = r["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["column"] == "patient_name" && e["row"] == 3),
        "{errors:#?}"
    );
    // Row 4 is the blank line a spreadsheet shows; the bad phone is on row 5.
    assert!(
        errors
            .iter()
            .any(|e| e["column"] == "phone" && e["row"] == 5),
        "{errors:#?}"
    );
}

#[test]
fn inconsistent_or_duplicate_rows_are_errors() {
    let env = Env::new();
    let dup = A1.replace("09:00", "12:00");
    let other_phone = A2
        .replace("A2,", "A4,")
        .replace("+91 98765 43210", "99999 11111");
    let r = env
        .import("dup.csv", &csv(&[A1, A2, &dup, &other_phone]), &[])
        .expect(65)
        .json();
    let errors = r["errors"].as_array().expect("errors");
    assert!(
        errors.iter().any(|e| e["row"] == 4
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("already on row 2")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["row"] == 5 && e["column"] == "phone" && e["value"] == "+91******1111"),
        "a conflicting number is named, masked: {errors:#?}"
    );
}

#[test]
fn a_changed_phone_number_is_updated_and_audited() {
    let env = Env::new();
    env.import("a.csv", &csv(&[A1]), &[]).expect(0);
    let r = env
        .import(
            "b.csv",
            &csv(&[&A1.replace("98200 12345", "98200 54321")]),
            &[],
        )
        .expect(0)
        .json();
    assert_eq!(r["updated"], 1);
    assert_eq!(env.appointment("A1")["phone"], "+919820054321");
    assert_eq!(
        env.count("SELECT count(*) FROM audit_log WHERE action = 'phone_changed'"),
        1
    );
}

#[test]
fn a_locked_database_is_a_clear_error_and_nothing_is_half_written() {
    if crate::common::on_postgres() {
        return; // SQLite's file lock
    }
    let env = Env::new();
    env.import("a.csv", &csv(&[A1]), &[]).expect(0);
    // Another process (here, this test) holds the write lock longer than the busy timeout.
    let holder = rusqlite::Connection::open(env.db()).expect("open");
    holder.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let r = env.import("b.csv", &csv(&[A1, A2, A3]), &[]).expect(74);
    assert!(
        r.stderr.contains("locked by another process") && r.stderr.contains("nothing was written"),
        "{}",
        r.stderr
    );
    holder.execute_batch("ROLLBACK").expect("unlock");
    drop(holder);
    assert_eq!(
        env.count("SELECT count(*) FROM appointments"),
        1,
        "the locked import wrote nothing"
    );
    assert_eq!(env.count("SELECT count(*) FROM imports"), 1);
}

/// A hostile or broken file must not drive the admin's terminal (escape sequences in header
/// names) or flood it (a 2 MB cell echoed back whole): what is shown of a file is escaped and cut.
#[test]
fn header_names_are_escaped_and_huge_cells_are_cut_in_error_reports() {
    let env = Env::new();
    // No "phone" column, an extra column whose name clears the screen, a duplicated one.
    let header = "appointment_id,patient_id,patient_name,\u{1b}[2J\u{1b}[31mred,language,date,time,duration_min,provider,clinic,status,note\u{7},note\u{7}";
    let f = env.file("evil.csv", format!("{header}\n{A1}\n"));
    let r = env.run(&["import", f.to_str().expect("path")]).expect(65);
    assert!(
        r.stdout.contains("no column named \"phone\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("red"), "{}", r.stdout);
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{7}'),
        "control characters reached the terminal: {:?}",
        r.stdout
    );

    let huge = "9".repeat(2_000_000);
    let row_phone = A1.replace("98200 12345", &huge);
    let row_date = A2.replace("2027-01-15", &huge);
    let f = env.file("huge.csv", csv(&[&row_phone, &row_date]));
    for args in [
        vec!["import", f.to_str().expect("path")],
        vec!["import", f.to_str().expect("path"), "--json"],
    ] {
        let r = env.run(&args).expect(65);
        assert!(
            r.stdout.contains("phone"),
            "{}",
            &r.stdout[..r.stdout.len().min(2000)]
        );
        assert!(
            r.stdout.contains("date"),
            "{}",
            &r.stdout[..r.stdout.len().min(2000)]
        );
        assert!(
            r.stdout.len() < 4000,
            "{:?} printed {} bytes for two bad cells",
            args,
            r.stdout.len()
        );
    }
}
