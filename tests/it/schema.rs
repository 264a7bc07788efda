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
        s.query_map([], |r| r.get(0))
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
