//! A plan remembers the outbox keys it found or wrote, so the next tick on the same store
//! does not look them up again (`src/store/planned.rs`); what is new since is still planned,
//! and a store opened afresh checks every key.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use reminderd::config::Config;
use reminderd::import::{self, ApplyOptions, ParseOptions};
use reminderd::jobs;
use reminderd::store::{PlanCounts, Store};

const SHIPPED: &str = include_str!("../../reminders.toml");
const HEADER: &str = "appointment_id,patient_id,patient_name,phone,language,date,time,duration_min,provider,clinic,status";

fn config() -> Config {
    Config::from_toml(SHIPPED, Path::new("/nonexistent/reminders.toml")).expect("shipped config")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 8, 0, 0)
        .single()
        .expect("fixed instant")
}

/// Imports `rows` (CSV data lines) as a partial schedule at `now()`.
fn import(store: &mut Store, config: &Config, rows: &[&str]) {
    let csv = format!("{HEADER}\n{}\n", rows.join("\n"));
    let parsed = import::parse(csv.as_bytes(), config, &ParseOptions::default()).expect("parse");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    import::apply(
        store,
        config,
        &parsed,
        &ApplyOptions {
            file_name: "day.csv",
            complete: false,
            dry_run: false,
            imported_by: "test",
            now: now(),
        },
    )
    .expect("import");
}

fn outbox(db: &Path) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(db).expect("open db");
    let mut stmt = conn
        .prepare(
            "SELECT a.external_id, o.rule, o.slot_start FROM outbox o
             JOIN appointments a ON a.id = o.appointment_id ORDER BY o.id",
        )
        .expect("prepare");
    stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn plan(store: &mut Store, config: &Config, at: DateTime<Utc>) -> PlanCounts {
    jobs::plan_due(store, config, at, false).expect("plan")
}

fn setup(db: &Path, config: &Config) -> Store {
    let mut store = Store::open(db).expect("open");
    store.sync_clinics(&config.clinics).expect("clinics");
    import(
        &mut store,
        config,
        &[
            "A1,P1,Asha Rao,+91 98200 12345,hi,2026-06-02,10:00,15,,mumbai,",
            "A2,P2,Sam Lee,+91 98200 12346,en,2026-06-02,14:30,30,,mumbai,",
        ],
    );
    store
}

const A1_SLOT: i64 = 1_780_374_600; // 2026-06-02 10:00 in Mumbai
const A2_SLOT: i64 = 1_780_390_800; // 14:30
const A2_MOVED: i64 = 1_780_398_000; // 16:30

#[test]
fn a_tick_after_a_plan_adds_nothing_but_still_plans_an_appointment_moved_in_between() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("plan.db");
    let config = config();
    let mut store = setup(&db, &config);

    let first = plan(&mut store, &config, now());
    assert_eq!((first.pending, first.existing), (3, 0));
    let again = plan(&mut store, &config, now());
    assert_eq!((again.pending, again.existing), (0, 3));

    // The memo holds A2's old slot; its new slot is a key no plan has seen.
    import(
        &mut store,
        &config,
        &["A2,P2,Sam Lee,+91 98200 12346,en,2026-06-02,16:30,30,,mumbai,"],
    );
    let moved = plan(&mut store, &config, now());
    assert_eq!((moved.pending, moved.existing), (1, 2));
    assert_eq!(
        outbox(&db),
        vec![
            ("A1".into(), "day-before".into(), A1_SLOT),
            ("A1".into(), "booking".into(), A1_SLOT),
            ("A2".into(), "booking".into(), A2_SLOT),
            ("A2".into(), "booking".into(), A2_MOVED),
        ]
    );
    let settled = plan(&mut store, &config, now());
    assert_eq!((settled.pending, settled.existing), (0, 3));
}

/// The memo is what spares the lookups: a row removed behind the store's back (nothing in
/// reminderd removes a planned row of an appointment still ahead) is not seen missing by the
/// store that planned it, and is by a store opened afresh, as after a restart.
#[test]
fn the_last_committed_plan_is_not_looked_up_again_and_a_new_store_checks_every_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("plan.db");
    let config = config();
    let mut store = setup(&db, &config);
    assert_eq!(plan(&mut store, &config, now()).pending, 3);

    let removed = rusqlite::Connection::open(&db)
        .expect("open db")
        .execute("DELETE FROM outbox WHERE rule = 'day-before'", ())
        .expect("delete");
    assert_eq!(removed, 1);
    let memo = plan(&mut store, &config, now());
    assert_eq!((memo.pending, memo.existing), (0, 3));
    assert_eq!(outbox(&db).len(), 2);

    drop(store);
    let mut reopened = Store::open(&db).expect("reopen");
    let full = plan(&mut reopened, &config, now());
    assert_eq!((full.pending, full.existing), (1, 2));
    assert_eq!(
        outbox(&db)[2],
        ("A1".to_string(), "day-before".to_string(), A1_SLOT)
    );
}

/// A tick reads its horizon a chunk at a time: every appointment of a horizon larger than
/// one chunk is planned once, the last partial chunk included, and nothing twice.
#[test]
fn a_horizon_larger_than_one_chunk_is_planned_whole_and_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("plan.db");
    let config = config();
    let mut store = Store::open(&db).expect("open");
    store.sync_clinics(&config.clinics).expect("clinics");
    let n = reminderd::store::PLAN_CHUNK + 301;
    let rows: Vec<String> = (0..n)
        .map(|i| format!("B{i},Q{i},Patient {i},+91 98200 {i:05},en,2026-06-02,10:00,15,,mumbai,"))
        .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    import(&mut store, &config, &rows);

    let first = plan(&mut store, &config, now());
    // A day-before reminder and a booking confirmation each.
    assert_eq!(
        (first.due, first.pending, first.existing),
        (2 * n, 2 * n, 0)
    );
    let conn = rusqlite::Connection::open(&db).expect("open db");
    let (rows, distinct): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT appointment_id || '/' || rule) FROM outbox",
            (),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert_eq!((rows, distinct), (2 * n as i64, 2 * n as i64));
    let last = conn
        .query_row(
            "SELECT count(*) FROM outbox o JOIN appointments a ON a.id = o.appointment_id
             WHERE a.external_id = ?1",
            [format!("B{}", n - 1)],
            |r| r.get::<_, i64>(0),
        )
        .expect("last");
    assert_eq!(last, 2, "the last, partial chunk is planned too");

    let again = plan(&mut store, &config, now());
    assert_eq!(
        (again.due, again.pending, again.existing),
        (2 * n, 0, 2 * n)
    );
}
