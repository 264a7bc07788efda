//! An unchanged re-import skips its rows by the digest each appointment keeps of the file
//! row that last set it (schema 14), and still does what a full comparison would wherever
//! something else changed an appointment or its patient since.

use crate::common::{Env, HEADER};

/// Rows in the files here.
const ROWS: usize = 300;

/// Data row `i`: its own patient and number.
fn row(i: usize, time: &str) -> String {
    format!(
        "A{i},P{i},Patient {i},98200 {i:05},en,2027-02-{:02},{time},15,Dr. Mehta,mumbai,booked",
        1 + i % 28
    )
}

/// A file of `ROWS` rows, row `changed.0` replaced by `changed.1`.
fn file(changed: Option<(usize, &str)>) -> String {
    let mut s = String::from(HEADER);
    for i in 0..ROWS {
        s.push('\n');
        match changed {
            Some((at, r)) if at == i => s.push_str(r),
            _ => s.push_str(&row(i, "09:00")),
        }
    }
    s.push('\n');
    s
}

/// Each appointment's stored digest (hex, empty when none), by external id.
fn digests(env: &Env) -> Vec<(String, String)> {
    let sql = env.sql();
    let mut stmt = sql
        .prepare(
            "SELECT external_id, coalesce(hex(import_digest), '') FROM appointments ORDER BY id",
        )
        .expect("prepare");
    stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn field(env: &Env, id: &str, column: &str) -> String {
    env.sql()
        .query_row(
            &format!("SELECT {column} FROM appointments WHERE external_id = ?1"),
            [id],
            |r| r.get::<_, Option<String>>(0),
        )
        .expect("appointment")
        .unwrap_or_default()
}

#[test]
fn a_reimport_with_one_changed_row_updates_that_row_and_skips_the_others() {
    let env = Env::new();
    env.import("day.csv", &file(None), &[]).expect(0);
    let before = digests(&env);
    assert_eq!(before.len(), ROWS);
    assert!(
        before.iter().all(|(_, d)| d.len() == 32),
        "every imported appointment keeps its row's digest: {before:?}"
    );

    let moved = row(7, "10:30");
    let r = env
        .import("day.csv", &file(Some((7, &moved))), &[])
        .expect(0)
        .json();
    assert_eq!(
        (r["updated"].clone(), r["unchanged"].clone()),
        (1.into(), (ROWS - 1).into())
    );
    let after = digests(&env);
    for ((id, was), (_, now)) in before.iter().zip(&after) {
        if id == "A7" {
            assert_ne!(was, now, "the changed row's digest is the new row's");
            assert_eq!(now.len(), 32);
        } else {
            assert_eq!(was, now, "{id} was skipped, its digest kept");
        }
    }
    // The same file again: now every row is the one stored.
    let r = env
        .import("day.csv", &file(Some((7, &moved))), &[])
        .expect(0)
        .json();
    assert_eq!(r["unchanged"], ROWS);
}

#[test]
fn what_a_reply_or_the_desk_changed_is_treated_as_a_full_comparison_treats_it() {
    let env = Env::new();
    env.import("day.csv", &file(None), &[]).expect(0);
    let sql = env.sql();
    // The patient cancels A1 by reply; staff cancel A2 for the clinic; P3's number is
    // corrected at the desk, though the clinic's file still has the old one.
    sql.execute_batch(
        "UPDATE appointments SET status = 'cancelled', cancelled_by = 'patient', response = 'declined' WHERE external_id = 'A1';
         UPDATE appointments SET status = 'cancelled', cancelled_by = 'clinic' WHERE external_id = 'A2';
         UPDATE patients SET phone = '+919820099999' WHERE external_id = 'P3';",
    )
    .expect("changes made elsewhere");
    let cleared: Vec<String> = digests(&env)
        .into_iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        cleared,
        ["A1", "A2", "A3"],
        "what else changed lost its digest"
    );

    let r = env.import("day.csv", &file(None), &[]).expect(0).json();
    // A1: the patient's answer stands. A2: the file books it again, as it always did. P3:
    // the file's number is written back, as it always was.
    assert_eq!(r["unchanged"], ROWS - 2, "{r}");
    assert_eq!(r["updated"], 2, "{r}");
    assert_eq!(
        (
            field(&env, "A1", "status"),
            field(&env, "A1", "cancelled_by")
        ),
        ("cancelled".to_string(), "patient".to_string())
    );
    assert_eq!(field(&env, "A2", "status"), "booked");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM patients WHERE external_id = 'P3' AND phone = '+919820000003'"
        ),
        1
    );
    assert!(
        digests(&env).iter().all(|(_, d)| d.len() == 32),
        "compared in full, each row's digest is written again"
    );
    // And the next re-import skips them all, A1 still cancelled by its patient.
    let r = env.import("day.csv", &file(None), &[]).expect(0).json();
    assert_eq!(r["unchanged"], ROWS);
    assert_eq!(field(&env, "A1", "cancelled_by"), "patient");
}

#[test]
fn rows_imported_before_schema_14_are_compared_in_full_and_then_skipped() {
    if crate::common::on_postgres() {
        return; // a SQLite database from before schema 14
    }
    let env = Env::new();
    // The v13 fixture holds examples/schedule.csv, imported by that version: no digests.
    let sql = std::fs::read_to_string(crate::common::repo_file("tests/fixtures/schema-v13.sql"))
        .expect("fixture");
    rusqlite::Connection::open(env.db())
        .and_then(|c| c.execute_batch(&sql))
        .expect("load fixture");
    let schedule = std::fs::read_to_string(crate::common::repo_file("examples/schedule.csv"))
        .expect("example");
    let first = env.import("schedule.csv", &schedule, &[]).expect(0).json();
    assert_eq!(first["unchanged"], 14, "{first}");
    assert_eq!(first["updated"], 0, "{first}");
    assert_eq!(
        env.count("SELECT count(*) FROM appointments WHERE import_digest IS NOT NULL"),
        14
    );

    // A changed row after the upgrade is still seen.
    let moved = schedule.replacen("09:30", "11:45", 1);
    assert_ne!(moved, schedule, "the example has a 09:30 row");
    let second = env.import("schedule.csv", &moved, &[]).expect(0).json();
    assert_eq!(
        (second["updated"].clone(), second["unchanged"].clone()),
        (1.into(), 13.into()),
        "{second}"
    );
}

#[test]
fn a_row_whose_digest_matches_is_neither_compared_nor_written() {
    let env = Env::new();
    env.import("day.csv", &file(None), &[]).expect(0);
    // A change no trigger sees (the digest put back by hand): only a row that is skipped,
    // not compared, leaves it as it is, and only a number taken from the store (not parsed
    // from the file) lets the file's row agree with it.
    let sql = env.sql();
    let digest: Vec<u8> = sql
        .query_row(
            "SELECT import_digest FROM appointments WHERE external_id = 'A5'",
            (),
            |r| r.get(0),
        )
        .expect("digest");
    sql.execute(
        "UPDATE patients SET phone = '+919820077777' WHERE external_id = 'P5'",
        (),
    )
    .expect("phone");
    sql.execute(
        "UPDATE appointments SET import_digest = ?1 WHERE external_id = 'A5'",
        [&digest],
    )
    .expect("digest back");
    let audit = env.count("SELECT count(*) FROM audit_log");

    let r = env.import("day.csv", &file(None), &[]).expect(0).json();
    assert_eq!(r["unchanged"], ROWS, "{r}");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM patients WHERE external_id = 'P5' AND phone = '+919820077777'"
        ),
        1,
        "the skipped row was not compared with its patient"
    );
    assert_eq!(env.count("SELECT count(*) FROM audit_log"), audit);
}
