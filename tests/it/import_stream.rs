//! `reminderd import` of files longer than one streaming chunk: still all rows or none, and
//! an unchanged re-import changes nothing.

use reminderd::import::CHUNK_ROWS;

use crate::common::{Env, HEADER};

/// Rows in the files here: more than one chunk, the last chunk partly full.
const ROWS: usize = CHUNK_ROWS + 500;

/// Data row `i` (0-based; spreadsheet row `i + 2`): its own patient and number.
fn row(i: usize, time: &str) -> String {
    format!(
        "A{i},P{i},Patient {i},98200 {i:05},en,2027-02-{:02},{time},15,Dr. Mehta,mumbai,booked",
        1 + i % 28
    )
}

/// A file of `ROWS` rows; `last` replaces the last one.
fn file(last: Option<&str>) -> String {
    let mut s = String::from(HEADER);
    for i in 0..ROWS {
        s.push('\n');
        match (last, i + 1 == ROWS) {
            (Some(l), true) => s.push_str(l),
            _ => s.push_str(&row(i, "09:00")),
        }
    }
    s.push('\n');
    s
}

/// Everything an import writes, to compare before and after.
fn snapshot(env: &Env) -> Vec<String> {
    let sql = env.sql();
    let mut out = Vec::new();
    for q in [
        "SELECT id, patient_id, provider, starts_at, duration_min, status, status_at, source_import_id, updated_at FROM appointments ORDER BY id",
        "SELECT id, name, phone, language, updated_at FROM patients ORDER BY id",
        "SELECT id, action, coalesce(old_value, ''), coalesce(new_value, '') FROM audit_log ORDER BY id",
    ] {
        let mut stmt = sql.prepare(q).expect("prepare");
        let n = stmt.column_names().len();
        let rows = stmt
            .query_map((), |r| {
                let cells: Vec<String> = (0..n)
                    .map(|c| r.get_ref(c).map(|v| format!("{v:?}")).unwrap_or_default())
                    .collect();
                Ok(cells.join("|"))
            })
            .expect("query");
        out.extend(rows.map(|r| r.expect("row")));
    }
    out
}

#[test]
fn a_bad_last_row_of_a_file_longer_than_a_chunk_writes_nothing() {
    let env = Env::new();
    let last = ROWS + 1;
    let bad = row(ROWS - 1, "09:00").replace("2027-02-", "31/02/2027-");
    let r = env.import("big.csv", &file(Some(&bad)), &[]).expect(65);
    let errors = r.json()["errors"].as_array().expect("errors").clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["row"], last);
    assert_eq!(errors[0]["column"], "date");
    assert_eq!(errors[0]["patient"], format!("Patient {}", ROWS - 1));
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);
    assert_eq!(env.count("SELECT count(*) FROM imports"), 0);
    assert_eq!(env.count("SELECT count(*) FROM audit_log"), 0);
}

#[test]
fn rows_in_the_last_chunk_are_checked_against_rows_in_the_first() {
    let env = Env::new();
    // The last row repeats the first row's appointment id, and names the first row's
    // patient with another number.
    let last = ROWS + 1;
    let clash = "A0,P1,Patient 1,98200 99999,en,2027-02-27,09:00,15,Dr. Mehta,mumbai,booked";
    let r = env.import("big.csv", &file(Some(clash)), &[]).expect(65);
    let errors = r.json()["errors"].as_array().expect("errors").clone();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["row"], last);
    assert_eq!(errors[0]["column"], "appointment_id");
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"A0\" is already on row 2")),
        "{errors:?}"
    );
    assert_eq!(errors[1]["row"], last);
    assert_eq!(errors[1]["column"], "phone");
    assert!(
        errors[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("patient \"P1\" has") && m.contains("on row 3")),
        "{errors:?}"
    );
    assert_eq!(env.count("SELECT count(*) FROM appointments"), 0);
    assert_eq!(env.count("SELECT count(*) FROM patients"), 0);
}

#[test]
fn an_unchanged_reimport_of_a_long_file_reports_every_row_unchanged_and_writes_nothing() {
    let env = Env::new();
    let text = file(None);
    let first = env.import("big.csv", &text, &[]).expect(0).json();
    assert_eq!(first["new"], ROWS);
    assert_eq!(env.count("SELECT count(*) FROM appointments"), ROWS as i64);
    let before = snapshot(&env);

    let again = env.import("big.csv", &text, &[]).expect(0).json();
    assert_eq!(again["rows"], ROWS);
    assert_eq!(again["unchanged"], ROWS);
    assert_eq!(again["new"], 0);
    assert_eq!(again["updated"], 0);
    assert_eq!(again["cancelled"], 0);
    assert_eq!(
        snapshot(&env),
        before,
        "an unchanged re-import wrote something"
    );
}

#[test]
fn a_change_in_the_last_chunk_is_applied() {
    let env = Env::new();
    env.import("big.csv", &file(None), &[]).expect(0);
    let id = format!("A{}", ROWS - 1);
    let start = |env: &Env| {
        env.count(&format!(
            "SELECT starts_at FROM appointments WHERE external_id = '{id}'"
        ))
    };
    let was = start(&env);

    let moved = row(ROWS - 1, "10:30");
    let r = env
        .import("big.csv", &file(Some(&moved)), &[])
        .expect(0)
        .json();
    assert_eq!(r["updated"], 1);
    assert_eq!(r["unchanged"], ROWS - 1);
    assert_eq!(start(&env), was + 90 * 60, "moved from 09:00 to 10:30");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM audit_log a JOIN appointments p ON p.id = a.appointment_id
             WHERE p.external_id = '{id}' AND a.action = 'reschedule'"
        )),
        1
    );
}
