//! Support for running the test suites on PostgreSQL as well as SQLite.

use super::PgOptions;

/// Whether the suites should run on PostgreSQL: `REMINDERD_TEST_POSTGRES` is set, and the
/// `PG*` variables (as `pg_virtualenv` sets them) say where the server is.
pub fn on_postgres() -> bool {
    std::env::var_os("REMINDERD_TEST_POSTGRES").is_some_and(|v| !v.is_empty())
}

/// The server the `PG*` variables name, connected to database `db`.
pub fn server(db: &str) -> PgOptions {
    let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.into());
    PgOptions {
        url: format!(
            "postgres://{}@{}:{}/{db}",
            var("PGUSER", "postgres"),
            var("PGHOST", "localhost"),
            var("PGPORT", "5432"),
        ),
        password: std::env::var("PGPASSWORD").ok(),
        application_name: "reminderd-tests".into(),
    }
}

/// A new, empty database of its own for one test, when the suites run on PostgreSQL.
///
/// # Panics
/// When the server cannot be reached or refuses to create it: the suite was asked to run
/// on PostgreSQL, so that is a failure, not a skip.
pub fn fresh_database() -> Option<PgOptions> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    if !on_postgres() {
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "rt_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = super::Conn::postgres(&server("postgres"))
        .unwrap_or_else(|e| panic!("REMINDERD_TEST_POSTGRES is set, but PostgreSQL: {e}"));
    admin
        .execute_batch(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    Some(server(&name))
}
