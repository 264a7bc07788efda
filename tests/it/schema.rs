//! Schema versions: every released version has a fixture that today's build must open.

use reminderd::store::{SCHEMA_VERSION, Store};
use rusqlite::Connection;

use crate::common::Env;

/// Loads `tests/fixtures/schema-vN.sql` (a dump made by that version) into a database file.
fn fixture_db(env: &Env, version: i64) -> std::path::PathBuf {
    let sql = std::fs::read_to_string(crate::common::repo_file(&format!(
        "tests/fixtures/schema-v{version}.sql"
    )))
    .expect("fixture");
    let path = env.path(&format!("v{version}.db"));
    Connection::open(&path)
        .and_then(|c| c.execute_batch(&sql))
        .expect("load fixture");
    path
}

#[test]
fn every_fixture_version_migrates_to_the_current_schema_with_its_data() {
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    for version in 1..=SCHEMA_VERSION {
        let env = Env::new();
        let path = fixture_db(&env, version);
        let store = Store::open(&path).unwrap_or_else(|e| panic!("v{version} fixture: {e}"));
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        drop(store);
        let r = env
            .run(&[
                "--db",
                path.to_str().expect("path"),
                "appointments",
                "--from",
                "2026-11-26",
                "--json",
            ])
            .expect(0);
        let list = r.json();
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(14),
            "v{version} data survives"
        );
        assert_eq!(list[0]["phone"], "+919820012345");
    }
}

#[test]
fn every_migrated_fixture_has_the_same_schema_as_a_new_database() {
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    let env = Env::new();
    let fresh = env.path("fresh.db");
    Store::open(&fresh).expect("create");
    for version in 1..=SCHEMA_VERSION {
        let old = fixture_db(&env, version);
        Store::open(&old).expect("migrate");
        assert_same_schema(&old, &fresh);
    }
}

fn assert_same_schema(old: &std::path::Path, fresh: &std::path::Path) {
    let schema = |p: &std::path::Path| -> Vec<String> {
        let c = Connection::open(p).expect("open");
        let mut s = c
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .expect("prepare");
        s.query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        schema(old),
        schema(fresh),
        "{} after migration",
        old.display()
    );
}

/// A database holds patients' names and numbers: whoever runs the first command, and whatever
/// their umask, the file and its `-wal` and `-shm` companions are readable by the owner only.
#[test]
fn a_new_database_and_its_wal_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    let env = crate::common::Env::new();
    let csv = crate::common::csv(&[
        "A1,P1,Aarav Sharma,98200 12345,en,2030-12-02,09:00,15,Dr. Mehta,mumbai,booked",
    ]);
    let file = env.file("day.csv", csv);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" --config \"$1\" import \"$2\"")
        .arg(env!("CARGO_BIN_EXE_reminderd"))
        .arg(env.path("reminders.toml"))
        .arg(&file)
        .env_remove("REMINDERD_CONFIG")
        .output()
        .expect("run reminderd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An open connection keeps the companions in place; SQLite gives them the file's mode.
    let conn = env.sql();
    conn.execute_batch("CREATE TEMP TABLE t (x); UPDATE appointments SET provider = provider;")
        .expect("write");
    for name in ["test.db", "test.db-wal", "test.db-shm"] {
        let mode = std::fs::metadata(env.path(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
}

/// Schema 6 rebuilds the outbox (SQLite's 12-step procedure) so that it accepts reminders
/// staff ask for: every row keeps its id and values, a reply still names the message it
/// answered, the indexes come back, and the kind is still checked.
#[test]
fn schema_6_rebuilds_the_outbox_keeping_ids_references_and_indexes() {
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    let env = Env::new();
    let path = fixture_db(&env, 5);
    let rows = |c: &Connection| -> Vec<(i64, i64, String, String, i64, String)> {
        let mut s = c
            .prepare(
                "SELECT id, appointment_id, kind, rule, send_at, state FROM outbox ORDER BY id",
            )
            .expect("prepare");
        s.query_map((), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    };
    let before = {
        let c = Connection::open(&path).expect("open v5");
        // A reply to outbox row 2, as a v5 database holds after a button tap.
        c.execute(
            "INSERT INTO replies (message_id, from_phone, outbox_id, kind, text, intent, outcome, received_at)
             VALUES ('wamid.reply', '+919876543210', 2, 'button', 'confirm:2', 'confirm', 'applied', 1795581000)",
            (),
        )
        .expect("reply");
        rows(&c)
    };
    assert!(before.len() >= 3, "the fixture has outbox rows: {before:?}");
    drop(Store::open(&path).expect("migrate v5"));

    let c = Connection::open(&path).expect("open v6");
    assert_eq!(rows(&c), before, "every row, with its id");
    let answered: i64 = c
        .query_row(
            "SELECT o.id FROM replies r JOIN outbox o ON o.id = r.outbox_id WHERE r.message_id = 'wamid.reply'",
            (),
            |r| r.get(0),
        )
        .expect("the reply still names its message");
    assert_eq!(answered, 2);
    let broken: i64 = c
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", (), |r| {
            r.get(0)
        })
        .expect("check");
    assert_eq!(broken, 0);
    let mut s = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'outbox' AND sql IS NOT NULL ORDER BY name")
        .expect("prepare");
    let indexes: Vec<String> = s
        .query_map((), |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // (Schema 7 adds outbox_fallback and widens outbox_press, schema 10 outbox_sent_at and
    // outbox_staff, schema 13 outbox_offer; the fixture reaches the current schema.)
    assert_eq!(
        indexes,
        [
            "outbox_appointment",
            "outbox_due",
            "outbox_fallback",
            "outbox_offer",
            "outbox_press",
            "outbox_sent_at",
            "outbox_staff"
        ]
    );
    let manual = "INSERT INTO outbox (appointment_id, kind, rule, slot_start, send_at, latest_at, created_at, updated_at)
                  VALUES (1, ?1, ?2, ?3, 0, 0, 0, 0)";
    c.execute(manual, rusqlite::params!["manual_reminder", "press:ab", 1])
        .expect("the new kind is accepted");
    assert!(
        c.execute(manual, rusqlite::params!["manual_reminder", "press:ab", 2])
            .is_err(),
        "one row per press and appointment, whatever its slot"
    );
    assert!(
        c.execute(manual, rusqlite::params!["bulletin", "x", 1])
            .is_err(),
        "other kinds are still refused"
    );
    // A new row takes the next id after the copied ones.
    let max: i64 = c
        .query_row("SELECT max(id) FROM outbox", (), |r| r.get(0))
        .expect("max");
    assert_eq!(max, before.last().map_or(0, |r| r.0) + 1);
}

/// A database whose references are already broken is not upgraded, and stays as it was.
#[test]
fn a_migration_that_would_leave_a_broken_reference_changes_nothing() {
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    let env = Env::new();
    let path = fixture_db(&env, 5);
    Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(
                "PRAGMA foreign_keys = OFF;
                 INSERT INTO replies (message_id, from_phone, outbox_id, kind, intent, outcome, received_at)
                 VALUES ('wamid.lost', '+919876543210', 999, 'text', 'none', 'ignored', 0);",
            )
        })
        .expect("a reply to a message that is not there");
    let err = Store::open(&path).expect_err("refused");
    assert!(
        err.to_string()
            .contains("cannot be upgraded, nothing was changed: replies row"),
        "{err}"
    );
    let version: i64 = Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", (), |r| r.get(0)))
        .expect("version");
    assert_eq!(version, 5);
}

/// Schema 15 keeps an account's standing per business account: the one row a schema-14
/// database had (an event that named no account) becomes the row '' and still stops every
/// number.
#[test]
fn schema_15_keeps_the_old_account_row_as_one_that_stops_every_number() {
    if crate::common::on_postgres() {
        return; // the SQLite schema, its steps and its files
    }
    let env = Env::new();
    let path = fixture_db(&env, 14);
    Connection::open(&path)
        .and_then(|c| {
            c.execute_batch(
                "INSERT INTO account_health (id, event, blocked, reason, until_at, event_id, updated_at)
                 VALUES (1, 'DISABLED_UPDATE', 1, 'Meta disabled the WhatsApp Business account', NULL, NULL, 1764500000);",
            )
        })
        .expect("a v14 account row");
    let store = Store::open(&path).expect("migrate");
    let rows = store.account_health().expect("read");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].waba_id, "");
    assert_eq!(rows[0].event, "DISABLED_UPDATE");
    let config = reminderd::config::Config::example().expect("config");
    let health = reminderd::dispatch::health::Health::read(&store, &config).expect("health");
    let now = reminderd::time::Clock::System.now();
    assert!(health.account_block_for("102290129340398", now).is_some());
    assert!(health.account_block_for("400000000000004", now).is_some());
}
