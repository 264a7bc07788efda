//! Schema versions: every released version has a fixture that today's build must open.

use reminderd::store::{SCHEMA_VERSION, Store};
use rusqlite::Connection;

use crate::common::Env;

/// The newest released schema version: each version up to it has a fixture. A version still
/// in development (SCHEMA_VERSION above this) gets its fixture when it is released.
const LATEST_RELEASE: i64 = 4;
const _: () = assert!(LATEST_RELEASE <= SCHEMA_VERSION);

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
    for version in 1..=LATEST_RELEASE {
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
    for version in 1..=LATEST_RELEASE {
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
