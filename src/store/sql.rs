//! The store's one door to a database: SQLite (the embedded default) or PostgreSQL, behind
//! one small API shaped like rusqlite's, so each use-case method is written once.
//!
//! Statements are written in SQL both engines read: `?N` placeholders (rewritten to `$N` for
//! PostgreSQL), integers for instants and flags, `RETURNING` rather than `last_insert_rowid`.
//! Values are bound loosely, as SQLite binds them: an integer parameter is sent as whatever
//! type PostgreSQL inferred for its place (a `bigint`, an `integer`, a `boolean`, a `text`),
//! and any column reads back as one of SQLite's five storage classes ([`ValueRef`]). Where
//! the engines really differ, the caller picks with [`Conn::backend`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

mod postgres;
pub mod testing;
mod value;

pub use postgres::{PgOptions, listen, redact};
use value::class;
pub use value::{
    FromValue, FromValueError, Params, ParamsFromIter, ToValue, ValueRef, params_from_iter,
};

/// Which engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server shared by several instances.
    Postgres,
}

/// A statement's parameters as a slice, as `rusqlite::params!` builds them.
#[macro_export]
macro_rules! sql_params {
    () => {
        &[] as &[&dyn $crate::store::sql::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::sql::ToValue),+] as &[&dyn $crate::store::sql::ToValue]
    };
}
pub use crate::sql_params as params;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused or failed it.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed it, or could not be reached.
    #[error("{}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A query that must return a row returned none.
    #[error("query returned no rows")]
    QueryReturnedNoRows,
    /// A column could not be read as the type asked for.
    #[error("column {column}: {why}")]
    Column {
        /// The column's index or name.
        column: String,
        /// What was wrong.
        why: String,
    },
    /// A store method's own check failed (a row a callback could not make sense of).
    #[error("{0}")]
    Invalid(String),
    /// The database server cannot be reached now (it is tried again shortly).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    /// Whether the database is out of reach (the PostgreSQL server is down or the connection
    /// dropped), not refusing this statement: worth trying again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Postgres(e) => e.is_closed() || e.as_db_error().is_none(),
            _ => false,
        }
    }

    /// Whether the statement broke a UNIQUE or PRIMARY KEY constraint.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            Self::Postgres(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// The result of a statement.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok(None)` for a query that returned no row, as rusqlite's extension of the same name.
pub trait OptionalExtension<T> {
    /// Turns "no rows" into `None`.
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(
                Error::QueryReturnedNoRows | Error::Sqlite(rusqlite::Error::QueryReturnedNoRows),
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// How a transaction begins, as SQLite names it. On PostgreSQL every transaction but a
/// [`TransactionBehavior::RowLocked`] one takes the store's write lock (see [`postgres`]), so
/// the two engines behave alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBehavior {
    /// Locks at the first write (SQLite).
    Deferred,
    /// Takes the write lock at once.
    Immediate,
    /// On PostgreSQL, without the store's write lock: for a transaction that reads what it
    /// may read from any instant and writes only rows it has locked with `FOR UPDATE SKIP
    /// LOCKED` (a claim), so it never waits for another and another never waits for it
    /// beyond those rows. On SQLite, [`TransactionBehavior::Immediate`].
    RowLocked,
}

/// One column position or name, to read a row by.
pub trait RowIndex: Copy + std::fmt::Display {
    /// The position, or the name to look for.
    fn key(self) -> Result<usize, String>;
}

impl RowIndex for usize {
    fn key(self) -> Result<usize, String> {
        Ok(self)
    }
}

impl RowIndex for &str {
    fn key(self) -> Result<usize, String> {
        Err(self.to_string())
    }
}

/// A row a query returned.
#[derive(Clone, Copy)]
pub enum Row<'r> {
    /// From SQLite.
    Sqlite(&'r rusqlite::Row<'r>),
    /// From PostgreSQL.
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `idx` read as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let value = self.get_ref(idx)?;
        T::from_value(value).map_err(|why| Error::Column {
            column: idx.to_string(),
            why,
        })
    }

    /// Column `idx` as it is stored.
    pub fn get_ref<I: RowIndex>(&self, idx: I) -> Result<ValueRef<'_>> {
        let missing = || Error::Column {
            column: idx.to_string(),
            why: "no such column".into(),
        };
        match self {
            Self::Sqlite(r) => {
                let i = match idx.key() {
                    Ok(i) => i,
                    Err(name) => r.as_ref().column_index(&name).map_err(|_| missing())?,
                };
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(n) => ValueRef::Integer(n),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(t) => ValueRef::Text(t),
                    rusqlite::types::ValueRef::Blob(b) => ValueRef::Blob(b),
                })
            }
            Self::Postgres(r) => {
                let i = match idx.key() {
                    Ok(i) if i < r.len() => i,
                    Ok(_) => return Err(missing()),
                    Err(name) => r
                        .columns()
                        .iter()
                        .position(|c| c.name().eq_ignore_ascii_case(&name))
                        .ok_or_else(missing)?,
                };
                postgres::value_at(r, i).map_err(|why| Error::Column {
                    column: idx.to_string(),
                    why,
                })
            }
        }
    }
}

/// An open connection to SQLite or PostgreSQL.
pub struct Conn {
    kind: Kind,
    /// Open transactions and savepoints (0: autocommit).
    depth: Cell<u32>,
}

enum Kind {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::PgConn>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Wraps an open SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Self {
        Self {
            kind: Kind::Sqlite(conn),
            depth: Cell::new(0),
        }
    }

    /// Connects to PostgreSQL.
    pub fn postgres(options: &PgOptions) -> Result<Self> {
        Ok(Self {
            kind: Kind::Postgres(Box::new(postgres::PgConn::connect(options)?)),
            depth: Cell::new(0),
        })
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self.kind {
            Kind::Sqlite(_) => Backend::Sqlite,
            Kind::Postgres(_) => Backend::Postgres,
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the few statements the engines
    /// spell differently.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (backups, pragmas); `None` on
    /// PostgreSQL.
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.kind {
            Kind::Sqlite(c) => Some(c),
            Kind::Postgres(_) => None,
        }
    }

    /// Prepares `sql`, reusing the connection's prepared copy when it has one.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.kind {
            Kind::Sqlite(c) => Ok(Statement::Sqlite(SqliteStatement::Cached(
                c.prepare_cached(sql)?,
            ))),
            Kind::Postgres(pg) => {
                self.revive(pg)?;
                Ok(Statement::Postgres {
                    pg,
                    stmt: pg.prepare(sql)?,
                })
            }
        }
    }

    /// Prepares `sql` once (a statement built at run time, not worth keeping).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        match &self.kind {
            Kind::Sqlite(c) => Ok(Statement::Sqlite(SqliteStatement::Once(c.prepare(sql)?))),
            Kind::Postgres(pg) => {
                self.revive(pg)?;
                Ok(Statement::Postgres {
                    pg,
                    stmt: pg.prepare(sql)?,
                })
            }
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs an `INSERT` (written without `RETURNING`) that inserts one row; the row's `id`.
    pub fn insert<P: Params>(&self, sql: &str, params: P) -> Result<i64> {
        self.insert_if(sql, params)?
            .ok_or(Error::QueryReturnedNoRows)
    }

    /// Runs an `INSERT` (written without `RETURNING`) that may insert one row or none (`ON
    /// CONFLICT DO NOTHING`, `INSERT … SELECT … WHERE`); the new row's `id`, if any.
    pub fn insert_if<P: Params>(&self, sql: &str, params: P) -> Result<Option<i64>> {
        let sql = format!("{} RETURNING id", sql.trim_end());
        self.prepare_cached(&sql)?
            .query_row(params, |r| r.get(0))
            .optional()
    }

    /// Runs a query that returns at least one row and reads the first with `f`.
    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Runs statements separated by semicolons, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        if let Kind::Postgres(pg) = &self.kind {
            self.revive(pg)?;
        }
        self.batch(sql)
    }

    /// [`Conn::execute_batch`] on the connection as it is: what ends a transaction must
    /// never run on a new connection (its COMMIT would find nothing to commit, and say so
    /// only as a warning).
    fn batch(&self, sql: &str) -> Result<()> {
        match &self.kind {
            Kind::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Kind::Postgres(pg) => pg.batch(sql),
        }
    }

    /// Begins a savepoint inside the transaction open (or a deferred transaction when none
    /// is), rolled back when dropped without [`Transaction::commit`].
    pub fn savepoint(&self) -> Result<Transaction<'_>> {
        self.begin(TransactionBehavior::Deferred)?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }

    /// Reconnects to PostgreSQL between transactions if the server went away.
    fn revive(&self, pg: &postgres::PgConn) -> Result<()> {
        if self.depth.get() == 0 {
            pg.revive()?;
        }
        Ok(())
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        self.depth.get() == 0
    }

    /// Begins a transaction (or, inside one, a savepoint) that commits only through
    /// [`Transaction::commit`] and is rolled back when dropped without it.
    pub fn transaction_with_behavior(
        &mut self,
        behavior: TransactionBehavior,
    ) -> Result<Transaction<'_>> {
        self.begin(behavior)?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }

    /// [`Conn::transaction_with_behavior`] with [`TransactionBehavior::Deferred`].
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(TransactionBehavior::Deferred)
    }

    /// Begins a transaction, or a savepoint inside the one open; ended by [`Conn::end`].
    /// For code that cannot hold a [`Transaction`] (the group commit).
    pub fn begin(&self, behavior: TransactionBehavior) -> Result<()> {
        let depth = self.depth.get();
        let sql = if depth > 0 {
            format!("SAVEPOINT sp{depth}")
        } else {
            match (&self.kind, behavior) {
                (Kind::Sqlite(_), TransactionBehavior::Deferred) => "BEGIN DEFERRED".into(),
                (
                    Kind::Sqlite(_),
                    TransactionBehavior::Immediate | TransactionBehavior::RowLocked,
                ) => "BEGIN IMMEDIATE".into(),
                (Kind::Postgres(_), TransactionBehavior::RowLocked) => {
                    postgres::BEGIN_ROW_LOCKED.into()
                }
                (Kind::Postgres(_), _) => postgres::BEGIN.into(),
            }
        };
        self.execute_batch(&sql)?;
        self.depth.set(depth + 1);
        Ok(())
    }

    /// Ends the innermost transaction or savepoint [`Conn::begin`] opened: kept when
    /// `commit`, else rolled back. The depth drops even when the end fails (a failed COMMIT
    /// leaves no transaction on either engine; a failed RELEASE is rolled back by the outer).
    pub fn end(&self, commit: bool) -> Result<()> {
        let depth = self.depth.get();
        if depth == 0 {
            return Ok(());
        }
        let inner = depth - 1;
        self.depth.set(inner);
        let sql = match (inner, commit) {
            (0, true) => "COMMIT".to_string(),
            (0, false) => "ROLLBACK".to_string(),
            (n, true) => format!("RELEASE sp{n}"),
            (n, false) => format!("ROLLBACK TO sp{n}; RELEASE sp{n}"),
        };
        let ended = self.batch(&sql);
        if ended.is_err() && inner == 0 {
            let _ = self.batch("ROLLBACK");
        }
        ended
    }

    /// How many transactions and savepoints are open.
    pub fn depth(&self) -> u32 {
        self.depth.get()
    }

    /// Ends what was begun at `level` (the [`Conn::depth`] before its begin): anything a
    /// panic left open inside it is rolled back first, then it is kept when `commit`.
    pub fn end_to(&self, level: u32, commit: bool) -> Result<()> {
        while self.depth.get() > level + 1 {
            self.end(false)?;
        }
        if self.depth.get() == level + 1 {
            self.end(commit)
        } else {
            Ok(())
        }
    }

    /// Rolls back whatever a panic left open; true when there was something.
    pub fn rollback_all(&self) -> bool {
        if self.depth.get() == 0 {
            if let Kind::Sqlite(c) = &self.kind
                && !c.is_autocommit()
            {
                let _ = c.execute_batch("ROLLBACK");
                return true;
            }
            return false;
        }
        self.depth.set(0);
        let _ = self.batch("ROLLBACK");
        true
    }
}

/// An open transaction (or savepoint): rolled back when dropped without [`commit`].
///
/// [`commit`]: Transaction::commit
pub struct Transaction<'c> {
    conn: &'c Conn,
    done: bool,
}

impl Transaction<'_> {
    /// Commits it (a savepoint: releases it into the transaction around it).
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.end(true)
    }

    /// Rolls it back.
    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.conn.end(false)
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.end(false);
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

/// A prepared statement.
pub enum Statement<'c> {
    /// On SQLite.
    Sqlite(SqliteStatement<'c>),
    /// On PostgreSQL.
    Postgres {
        /// Its connection.
        pg: &'c postgres::PgConn,
        /// The server's prepared statement.
        stmt: tokio_postgres::Statement,
    },
}

/// A SQLite statement, from the cache or prepared once.
pub enum SqliteStatement<'c> {
    /// Kept in the connection's cache.
    Cached(rusqlite::CachedStatement<'c>),
    /// Prepared for one use.
    Once(rusqlite::Statement<'c>),
}

impl<'c> std::ops::Deref for SqliteStatement<'c> {
    type Target = rusqlite::Statement<'c>;

    fn deref(&self) -> &rusqlite::Statement<'c> {
        match self {
            Self::Cached(s) => s,
            Self::Once(s) => s,
        }
    }
}

impl std::ops::DerefMut for SqliteStatement<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Cached(s) => s,
            Self::Once(s) => s,
        }
    }
}

/// Binds loosely typed values to a SQLite statement.
struct SqliteValue<'a>(ValueRef<'a>);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef as V;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            ValueRef::Null => V::Null,
            ValueRef::Integer(n) => V::Integer(n),
            ValueRef::Real(f) => V::Real(f),
            ValueRef::Text(t) => V::Text(t),
            ValueRef::Blob(b) => V::Blob(b),
        }))
    }
}

/// Binds `values` to `s` in order, refusing a count the statement does not take.
fn bind_sqlite(s: &mut rusqlite::Statement<'_>, values: &[&dyn ToValue]) -> Result<()> {
    let expected = s.parameter_count();
    if values.len() != expected {
        return Err(rusqlite::Error::InvalidParameterCount(values.len(), expected).into());
    }
    for (i, v) in values.iter().enumerate() {
        s.raw_bind_parameter(i + 1, SqliteValue(v.to_value()))?;
    }
    Ok(())
}

impl Statement<'_> {
    /// Runs it; the number of rows it changed.
    #[allow(clippy::needless_pass_by_value)] // taken by value, as rusqlite takes them
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        match self {
            Self::Sqlite(s) => {
                params.with_values(&mut |values| bind_sqlite(s, values))?;
                Ok(s.raw_execute()?)
            }
            Self::Postgres { pg, stmt } => {
                params.with_values(&mut |values| pg.execute(stmt, values))
            }
        }
    }

    /// Runs it and reads the first row with `f`.
    pub fn query_row<T, P: Params>(
        &mut self,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(Error::QueryReturnedNoRows),
        }
    }

    /// Whether it returns any row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        Ok(self.query(params)?.next()?.is_some())
    }

    /// Runs it; its rows, each read with `f`.
    pub fn query_map<T, P: Params, F: FnMut(&Row<'_>) -> Result<T>>(
        &mut self,
        params: P,
        f: F,
    ) -> Result<MappedRows<'_, F>> {
        Ok(MappedRows {
            rows: self.query(params)?,
            f,
        })
    }

    /// Runs it; its rows.
    #[allow(clippy::needless_pass_by_value)] // taken by value, as rusqlite takes them
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        match self {
            Self::Sqlite(s) => {
                params.with_values(&mut |values| bind_sqlite(s, values))?;
                Ok(Rows::Sqlite(s.raw_query()))
            }
            Self::Postgres { pg, stmt } => {
                let rows = params.with_values(&mut |values| pg.query(stmt, values))?;
                Ok(Rows::Postgres {
                    rows: rows.into_iter(),
                    current: None,
                })
            }
        }
    }

    /// The names of the columns it returns.
    pub fn column_names(&self) -> Vec<&str> {
        match self {
            Self::Sqlite(s) => s.column_names(),
            Self::Postgres { stmt, .. } => stmt
                .columns()
                .iter()
                .map(tokio_postgres::Column::name)
                .collect(),
        }
    }

    /// How many parameters it takes.
    pub fn parameter_count(&self) -> usize {
        match self {
            Self::Sqlite(s) => s.parameter_count(),
            Self::Postgres { stmt, .. } => stmt.params().len(),
        }
    }
}

/// The rows of a query, read one by one.
pub enum Rows<'s> {
    /// From SQLite, stepped as they are read.
    Sqlite(rusqlite::Rows<'s>),
    /// From PostgreSQL, all fetched.
    Postgres {
        /// Those not read yet.
        rows: std::vec::IntoIter<tokio_postgres::Row>,
        /// The one last read.
        current: Option<tokio_postgres::Row>,
    },
}

impl Rows<'_> {
    /// The next row, or `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Self::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Self::Postgres { rows, current } => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// The rows of a query, each read by a function.
pub struct MappedRows<'s, F> {
    rows: Rows<'s>,
    f: F,
}

impl<T, F: FnMut(&Row<'_>) -> Result<T>> Iterator for MappedRows<'_, F> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        match self.rows.next() {
            Ok(Some(row)) => Some((self.f)(&row)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Rewrites SQLite's `?N` and `?` placeholders as PostgreSQL's `$N`, leaving quoted text and
/// comments alone; also which numbers appear.
pub(crate) fn dollar_placeholders(sql: &str) -> (String, std::collections::BTreeSet<usize>) {
    let mut used = std::collections::BTreeSet::new();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next_bare = 1;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    used.insert(next_bare);
                    out.push_str(&next_bare.to_string());
                    next_bare += 1;
                } else {
                    used.insert(digits.parse().unwrap_or(0));
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    (out, used)
}

/// Prepared statements kept per PostgreSQL connection, by their SQLite-spelled text.
pub(crate) type StatementCache = RefCell<HashMap<String, tokio_postgres::Statement>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes_and_comments() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?2 AND c = '?' -- ?\n AND d = ?1").0,
            "SELECT a FROM t WHERE b = $2 AND c = '?' -- ?\n AND d = $1"
        );
        assert_eq!(dollar_placeholders("VALUES (?, ?)").0, "VALUES ($1, $2)");
        assert_eq!(
            dollar_placeholders("WHERE a < ?3")
                .1
                .into_iter()
                .collect::<Vec<_>>(),
            vec![3]
        );
    }

    #[test]
    fn sqlite_reads_and_writes_through_the_loose_values() {
        let mut conn = Conn::sqlite(rusqlite::Connection::open_in_memory().expect("sql"));
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
            .expect("sql");
        let tx = conn.transaction().expect("sql");
        tx.execute(
            "INSERT INTO t (name, n) VALUES (?1, ?2)",
            params!["a", 1_i64],
        )
        .expect("sql");
        tx.execute(
            "INSERT INTO t (name, n) VALUES (?1, ?2)",
            params!["b", None::<i64>],
        )
        .expect("sql");
        tx.commit().expect("sql");
        let rows: Vec<(String, Option<i64>)> = conn
            .prepare_cached("SELECT name, n FROM t ORDER BY id")
            .expect("sql")
            .query_map((), |r| Ok((r.get(0)?, r.get("n")?)))
            .expect("sql")
            .collect::<Result<_>>()
            .expect("sql");
        assert_eq!(rows, vec![("a".into(), Some(1)), ("b".into(), None)]);
        let missing = conn
            .query_row("SELECT n FROM t WHERE name = ?1", ["z"], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .expect("sql");
        assert_eq!(missing, None);
        let err = conn
            .query_row("SELECT name FROM t WHERE name = 'a'", (), |r| {
                r.get::<_, i64>(0)
            })
            .expect_err("fails");
        assert_eq!(err.to_string(), "column 0: expected an integer, found text");
    }

    #[test]
    fn a_dropped_transaction_is_rolled_back_and_savepoints_nest() {
        let mut conn = Conn::sqlite(rusqlite::Connection::open_in_memory().expect("sql"));
        conn.execute_batch("CREATE TABLE t (n INTEGER)")
            .expect("sql");
        {
            let tx = conn.transaction().expect("sql");
            tx.execute("INSERT INTO t VALUES (1)", ()).expect("sql");
        }
        conn.begin(TransactionBehavior::Immediate).expect("sql");
        conn.execute("INSERT INTO t VALUES (2)", ()).expect("sql");
        conn.begin(TransactionBehavior::Immediate).expect("sql");
        conn.execute("INSERT INTO t VALUES (3)", ()).expect("sql");
        conn.end(false).expect("sql");
        assert!(!conn.is_autocommit());
        conn.end(true).expect("sql");
        let kept: Vec<i64> = conn
            .prepare("SELECT n FROM t")
            .expect("sql")
            .query_map((), |r| r.get(0))
            .expect("sql")
            .collect::<Result<_>>()
            .expect("sql");
        assert_eq!(kept, vec![2]);
    }
}
