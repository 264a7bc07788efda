//! `reminderd migrate-to-postgres --from FILE` (issue 21): a clinic's SQLite history, with
//! imports, sent reminders, patients' answers and their raw webhook bodies, copied whole into
//! an empty PostgreSQL database that reminderd then runs on; a non-empty target, a value
//! PostgreSQL cannot hold and a config without `database.url` refused, with nothing copied.

use std::sync::Arc;

use reminderd::store::sql::{Conn, ValueRef};

use crate::common::{Env, csv, on_postgres, test_config};
use crate::webhook::{Served, reminded, row, text_from};

/// A folder whose config names a SQLite file, whatever backend the suite runs on: the
/// clinic's database before it moves.
fn sqlite_env() -> Env {
    let env = Env {
        dir: tempfile::tempdir().expect("tempdir"),
        pg: None,
    };
    env.write_config(test_config());
    env
}

fn skipped() -> bool {
    if on_postgres() {
        return false;
    }
    println!("skipped: needs PostgreSQL (set REMINDERD_TEST_POSTGRES, as .ci/run does)");
    true
}

/// A table's rows as text, sorted, with its columns as SQLite lists them: what the copy must
/// keep exactly.
fn dump(conn: &Conn, table: &str, columns: &[String]) -> Vec<String> {
    let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let mut stmt = conn
        .prepare(&format!("SELECT {} FROM {table}", list.join(", ")))
        .expect(table);
    let mut rows: Vec<String> = stmt
        .query_map((), |r| {
            let mut cells = Vec::new();
            for i in 0..columns.len() {
                cells.push(match r.get_ref(i)? {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(f) => format!("{f:.6}"),
                    // A webhook's body is text in SQLite and bytes in PostgreSQL.
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        format!("'{}'", String::from_utf8_lossy(t))
                    }
                });
            }
            Ok(cells.join("|"))
        })
        .expect(table)
        .collect::<Result<_, _>>()
        .expect(table);
    rows.sort();
    rows
}

/// The SQLite database's tables (but the servers' bookkeeping) and their columns.
fn tables(lite: &Conn) -> Vec<(String, Vec<String>)> {
    let names: Vec<String> = lite
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'
               AND name NOT IN ('instances', 'cron_runs', 'leases') ORDER BY name",
        )
        .expect("tables")
        .query_map((), |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("tables");
    names
        .into_iter()
        .map(|t| {
            let columns = lite
                .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
                .expect("columns")
                .query_map([&t], |r| r.get(0))
                .expect("columns")
                .collect::<Result<_, _>>()
                .expect("columns");
            (t, columns)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clinics_history_moves_whole_and_reminderd_goes_on_from_it() {
    if skipped() {
        return;
    }
    // The clinic's SQLite database: imported, reminded, and answered over the webhook.
    let lite = sqlite_env();
    reminded(
        &lite,
        &[
            &row("A1", "P1", "98200 11111", "hi", 2, "10:00"),
            &row("A2", "P2", "98200 22222", "en", 2, "10:30"),
            &row("A3", "P3", "98200 33333", "es", 3, "11:00"),
        ],
    );
    let served = Served::start(lite).await;
    for (from, id, text) in [
        ("919820011111", "wamid.m1", "yes"),
        ("919820022222", "wamid.m2", "cancel"),
    ] {
        assert_eq!(served.post_signed(&text_from(from, id, text)).await, 200);
    }
    let lite: Arc<Env> = Arc::clone(&served.env);
    drop(served);
    // A's cancelled slot, offered to P3 and held for the answer: the opening and the offer
    // refer to each other, so one goes in before the other can name it.
    lite.sql()
        .execute_batch(
            "INSERT INTO openings (id, clinic_id, provider, starts_at, duration_min, source,
                 appointment_id, opened_by, opened_at, offers_from, state, round, updated_at)
             SELECT 7, clinic_id, provider, starts_at, duration_min, 'patient_cancel', id,
                 'patient', 0, 0, 'open', 1, 0 FROM appointments WHERE external_id = 'A2';
             INSERT INTO offers (id, opening_id, patient_id, kind, round, created_at, expires_at)
             SELECT 9, 7, id, 'reschedule', 1, 0, 3600 FROM patients WHERE external_id = 'P3';
             UPDATE openings SET state = 'held', held_by_offer = 9, hold_expires_at = 3600
             WHERE id = 7;",
        )
        .expect("an opening held by its offer");
    let before = lite.appointments();
    assert_eq!(before.len(), 3);
    assert_eq!(
        lite.count("SELECT count(*) FROM inbound_events"),
        2,
        "the raw bodies"
    );

    let pg = Env::new();
    let out = pg
        .run(&[
            "migrate-to-postgres",
            "--from",
            lite.db().to_str().expect("path"),
        ])
        .expect(0);
    assert!(
        out.stdout.contains("into postgres://") && out.stdout.contains("appointments"),
        "{}",
        out.stdout
    );
    // The snapshot it read from is gone: only the clinic's own files are left beside it.
    let left: Vec<String> = std::fs::read_dir(lite.dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains("migrate"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Every row of every table, byte for byte where it is bytes.
    let (from, to) = (lite.sql(), pg.sql());
    let all = tables(&from);
    assert!(all.len() >= 30, "{all:?}");
    for (table, columns) in &all {
        assert_eq!(
            dump(&from, table, columns),
            dump(&to, table, columns),
            "table {table}"
        );
    }
    let bodies = |c: &Conn| -> Vec<Vec<u8>> {
        c.prepare("SELECT body FROM inbound_events ORDER BY id")
            .expect("bodies")
            .query_map((), |r| r.get(0))
            .expect("bodies")
            .collect::<Result<_, _>>()
            .expect("bodies")
    };
    assert_eq!(bodies(&from), bodies(&to));
    assert!(bodies(&to)[0].starts_with(b"{"), "a webhook body");

    assert_eq!(
        pg.count("SELECT held_by_offer FROM openings WHERE id = 7"),
        9,
        "the reference set once both were in"
    );

    // reminderd reads it as it read the file, and new rows take ids after the copied ones.
    assert_eq!(pg.appointments(), before);
    assert_eq!(pg.appointment("A1")["response"], "confirmed");
    assert_eq!(pg.appointment("A2")["status"], "cancelled");
    let top = pg.count("SELECT max(id) FROM appointments");
    pg.import(
        "more.csv",
        &csv(&[&row("A4", "P4", "98200 44444", "en", 4, "09:00")]),
        &[],
    )
    .expect(0);
    assert_eq!(
        pg.count("SELECT id FROM appointments WHERE external_id = 'A4'"),
        top + 1
    );

    // Once is all: a second copy into the same database is refused and changes nothing.
    let again = pg.run(&[
        "migrate-to-postgres",
        "--from",
        lite.db().to_str().expect("path"),
    ]);
    assert_eq!(again.code, 65, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("already holds reminderd data (table appointments has rows)")
            && again.stderr.contains("nothing was copied"),
        "{}",
        again.stderr
    );
    assert_eq!(pg.count("SELECT count(*) FROM appointments"), 4);
}

#[test]
fn a_value_postgres_cannot_hold_is_named_and_nothing_is_copied() {
    if skipped() {
        return;
    }
    let lite = sqlite_env();
    lite.import(
        "day.csv",
        &csv(&[
            &row("A1", "P1", "98200 11111", "en", 2, "10:00"),
            &row("A2", "P2", "98200 22222", "en", 2, "10:30"),
        ]),
        &[],
    )
    .expect(0);
    let id = lite.count("SELECT id FROM patients WHERE external_id = 'P2'");
    lite.sql()
        .execute(
            "UPDATE patients SET name = 'Ann' || char(0) || 'Lee' WHERE id = ?1",
            [id],
        )
        .expect("a NUL in a name");
    let pg = Env::new();
    let from = lite.db();
    let out = pg.run(&[
        "migrate-to-postgres",
        "--from",
        from.to_str().expect("path"),
    ]);
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "table patients, row id {id}, column name: its text holds a NUL character"
        )) && out.stderr.contains("nothing was copied"),
        "{}",
        out.stderr
    );
    assert_eq!(
        pg.count("SELECT count(*) FROM clinics"),
        0,
        "nothing half-copied"
    );
    assert_eq!(pg.count("SELECT count(*) FROM patients"), 0);

    // Fixed at the source, the same command copies it.
    lite.sql()
        .execute("UPDATE patients SET name = 'Ann Lee' WHERE id = ?1", [id])
        .expect("fix");
    pg.run(&[
        "migrate-to-postgres",
        "--from",
        from.to_str().expect("path"),
    ])
    .expect(0);
    assert_eq!(pg.count("SELECT count(*) FROM patients"), 2);
}

#[test]
fn without_a_postgres_url_or_a_source_it_says_what_to_give() {
    let lite = sqlite_env();
    let out = lite.run(&["migrate-to-postgres", "--from", "elsewhere.db"]);
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("database.url is not set"),
        "{}",
        out.stderr
    );
    if skipped() {
        return;
    }
    let pg = Env::new();
    let missing = pg.path("no-such.db");
    let out = pg.run(&[
        "migrate-to-postgres",
        "--from",
        missing.to_str().expect("path"),
    ]);
    assert_eq!(out.code, 66, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not exist") && !missing.exists(),
        "{}",
        out.stderr
    );
}
