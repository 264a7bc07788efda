//! `migrate-to-postgres`: a clinic's SQLite database copied into an empty PostgreSQL one, in
//! one transaction, so a clinic that grows to several servers keeps its whole history.
//!
//! The source is first copied to a snapshot beside it (SQLite's online backup, as `backup`
//! takes) and that snapshot brought to this build's schema, so a database left by an older
//! reminderd, or one a daemon still writes to, is read as one instant at the schema the
//! PostgreSQL one mirrors. Rows go in by table, parents before children, in batches; ids are
//! kept, and each identity column's sequence is moved past the highest copied id so new rows
//! never collide. Nothing is committed unless every row of every table went in and the
//! counts on both sides agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::types::Value;

use super::sql::{Backend, Conn, TransactionBehavior, ValueRef, params_from_iter};
use super::{Store, StoreError};
use crate::time::Clock;

/// Tables of the running servers' bookkeeping (who is live, which scheduled run was taken):
/// not history, so never copied; live rows in the target mean a server is using it.
const BOOKKEEPING: [&str; 3] = ["instances", "cron_runs", "leases"];

/// Rows per INSERT statement, at most (fewer for wide tables: PostgreSQL takes at most
/// 65,535 parameters in one statement).
const BATCH_ROWS: usize = 500;

/// What a copy did, table by table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    /// The source file.
    pub source: PathBuf,
    /// The source's schema version before its snapshot was brought up to date.
    pub source_schema: i64,
    /// Each table copied, in the order copied, with its rows.
    pub tables: Vec<(String, u64)>,
    /// Rows copied in all.
    pub rows: u64,
    /// How long it took, in seconds.
    pub seconds: f64,
}

/// A table to copy: its name, the columns both sides have, and whether SQLite keys it by
/// rowid (then its rows go in rowid order, so a row referring to an earlier row of the same
/// table, e.g. a text that is the fallback of a WhatsApp message, finds it there).
struct Table {
    name: String,
    columns: Vec<String>,
    rowid: bool,
    /// Nullable references into a circle of tables (an opening held by an offer of that
    /// opening): copied as NULL, then set once every table is in.
    deferred: Vec<String>,
}

impl Store {
    /// Copies every row of the SQLite database at `source` into this PostgreSQL store, which
    /// must hold none, in one transaction: all of it or nothing. `progress` hears each table's
    /// name, rows copied so far and its total as the copy goes.
    pub fn copy_from_sqlite(
        &mut self,
        source: &Path,
        clock: Clock,
        progress: &mut dyn FnMut(&str, u64, u64),
    ) -> Result<CopyReport, StoreError> {
        if self.conn.backend() != Backend::Postgres {
            return Err(StoreError::Refused(
                "the database to copy into must be PostgreSQL: set [database] url in the config"
                    .into(),
            ));
        }
        let started = std::time::Instant::now();
        if !source.is_file() {
            return Err(StoreError::NotFound(format!(
                "{} does not exist or is not a file: give --from the clinic's SQLite database (database.path in its old config)",
                source.display()
            )));
        }
        let snapshot = Snapshot::take(source, clock)?;
        let src = snapshot.open()?;
        let lite = &src.conn;
        let tables = plan_tables(lite, &self.conn)?;

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_unless_empty(&tx, clock)?;
        let mut copied = Vec::new();
        let mut total = 0;
        for table in &tables {
            let rows = copy_table(lite, &tx, table, progress)?;
            let landed: i64 = tx.query_row(
                &format!("SELECT count(*) FROM \"{}\"", table.name),
                (),
                |r| r.get(0),
            )?;
            if u64::try_from(landed).ok() != Some(rows) {
                return Err(StoreError::Corrupt(format!(
                    "table {}: {rows} rows were read from {} but PostgreSQL holds {landed}; nothing was committed",
                    table.name,
                    source.display()
                )));
            }
            copied.push((table.name.clone(), rows));
            total += rows;
        }
        for table in tables.iter().filter(|t| !t.deferred.is_empty()) {
            set_deferred(lite, &tx, table)?;
        }
        // An identity column keeps the ids copied; its sequence must start past them.
        let identities: Vec<(String, String)> = tx
            .prepare(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND is_identity = 'YES'",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (table, column) in identities {
            tx.query_row(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),
                        coalesce(max(\"{column}\"), 0) + 1, false) FROM \"{table}\""
                ),
                (),
                |_| Ok(()),
            )?;
        }
        tx.commit()?;
        Ok(CopyReport {
            source: source.to_path_buf(),
            source_schema: snapshot.schema_version,
            tables: copied,
            rows: total,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The source's snapshot beside it, removed (with SQLite's and the store's side files) when
/// dropped.
struct Snapshot {
    path: PathBuf,
    schema_version: i64,
}

impl Snapshot {
    fn take(source: &Path, clock: Clock) -> Result<Self, StoreError> {
        let original = Store::open_unmigrated(source)?;
        let from = original
            .conn
            .as_sqlite()
            .ok_or_else(|| StoreError::Refused("the source is not SQLite".into()))?;
        let dir = super::backup::parent(source);
        // Beside the source: a database may be larger than the temporary folder's space.
        let file = tempfile::Builder::new()
            .prefix(".reminderd-migrate-")
            .suffix(".db")
            .tempfile_in(&dir)
            .map_err(|e| {
                StoreError::Refused(format!(
                    "cannot write a snapshot in {}: {e} (the copy is read from a snapshot beside the database; it needs as much free space as the database)",
                    dir.display()
                ))
            })?;
        let path = file.path().to_path_buf();
        // Kept until dropped by `Snapshot` (with its side files), not by tempfile.
        file.keep()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let mut snapshot = Self {
            path,
            schema_version: 0,
        };
        snapshot.schema_version = original.snapshot_into(from, &snapshot.path, clock)?.0;
        Ok(snapshot)
    }

    /// The snapshot, at this build's schema.
    fn open(&self) -> Result<Store, StoreError> {
        if self.schema_version == 0 {
            return Err(StoreError::Incompatible {
                path: self.path.clone(),
                message: "it is not a reminderd database (it has no schema version); give --from the clinic's database".into(),
            });
        }
        Store::open(&self.path)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let mut name = self.path.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

/// The tables to copy, parents before children, each with the columns of its SQLite table;
/// a table or column PostgreSQL lacks is an error that names it.
fn plan_tables(lite: &Conn, pg: &Conn) -> Result<Vec<Table>, StoreError> {
    let mut pg_columns: HashMap<String, BTreeSet<String>> = HashMap::new();
    for row in pg
        .prepare(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema()",
        )?
        .query_map((), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
    {
        let (t, c) = row?;
        pg_columns.entry(t).or_default().insert(c);
    }
    let listed: Vec<(String, bool)> = lite
        .prepare(
            "SELECT name, wr = 0 FROM pragma_table_list
             WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite%' ORDER BY name",
        )?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut tables = BTreeMap::new();
    // Each table's references: (the table referred to, the column, whether it may be NULL).
    let mut parents: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    for (name, rowid) in listed {
        if BOOKKEEPING.contains(&name.as_str()) {
            continue;
        }
        let Some(theirs) = pg_columns.get(&name) else {
            return Err(StoreError::Incompatible {
                path: PathBuf::from("PostgreSQL"),
                message: format!(
                    "the SQLite table {name} has no counterpart in PostgreSQL schema version {}; this build cannot copy it",
                    super::PG_SCHEMA_VERSION
                ),
            });
        };
        let columns: Vec<String> = lite
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?
            .query_map([&name], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if let Some(missing) = columns.iter().find(|c| !theirs.contains(*c)) {
            return Err(StoreError::Incompatible {
                path: PathBuf::from("PostgreSQL"),
                message: format!(
                    "the SQLite column {name}.{missing} has no counterpart in PostgreSQL schema version {}; this build cannot copy it",
                    super::PG_SCHEMA_VERSION
                ),
            });
        }
        let refs: Vec<(String, String, bool)> = lite
            .prepare(
                "SELECT f.\"table\", f.\"from\", c.\"notnull\" = 0
                 FROM pragma_foreign_key_list(?1) f JOIN pragma_table_info(?1) c ON c.name = f.\"from\"",
            )?
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        parents.insert(
            name.clone(),
            refs.into_iter().filter(|(p, _, _)| *p != name).collect(),
        );
        tables.insert(
            name.clone(),
            Table {
                name,
                columns,
                rowid,
                deferred: Vec::new(),
            },
        );
    }
    // Parents first: a table goes once every table it refers to has gone (a table left in
    // `tables` is one not yet placed; a parent never in it is not copied at all).
    let mut order = Vec::new();
    while !tables.is_empty() {
        let waits_on = |t: &str| -> Vec<(String, String, bool)> {
            parents[t]
                .iter()
                .filter(|(p, _, _)| tables.contains_key(p))
                .cloned()
                .collect()
        };
        let ready: Vec<String> = tables
            .keys()
            .filter(|t| waits_on(t).is_empty())
            .cloned()
            .collect();
        if !ready.is_empty() {
            for t in ready {
                order.extend(tables.remove(&t));
            }
            continue;
        }
        // A circle: break it at a table (keyed by its rowid) whose references into it may
        // all be NULL for a moment.
        let Some((name, columns)) = tables
            .values()
            .filter(|t| t.rowid && t.columns.iter().any(|c| c == "id"))
            .map(|t| (t.name.clone(), waits_on(&t.name)))
            .find(|(_, refs)| refs.iter().all(|(_, _, nullable)| *nullable))
        else {
            let left: Vec<&String> = tables.keys().collect();
            return Err(StoreError::Corrupt(format!(
                "the tables {left:?} refer to each other in a circle; this build cannot order their copy"
            )));
        };
        if let Some(mut table) = tables.remove(&name) {
            table.deferred = columns.into_iter().map(|(_, c, _)| c).collect();
            order.push(table);
        }
    }
    Ok(order)
}

/// Refuses a target that holds any reminderd data, or that a server is using now.
fn refuse_unless_empty(tx: &super::sql::Transaction<'_>, clock: Clock) -> Result<(), StoreError> {
    let live: i64 = tx.query_row(
        "SELECT count(*) FROM instances WHERE seen_at >= ?1",
        [clock.now().timestamp() - 60],
        |r| r.get(0),
    )?;
    if live > 0 {
        return Err(StoreError::Refused(
            "a reminderd server is using the PostgreSQL database now (seen within the last minute): stop every server that uses it, then copy".into(),
        ));
    }
    let tables: Vec<String> = tx
        .prepare(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for table in tables {
        if table == "reminderd_schema" || BOOKKEEPING.contains(&table.as_str()) {
            continue;
        }
        let any: bool = tx.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM \"{table}\")"),
            (),
            |r| r.get(0),
        )?;
        if any {
            return Err(StoreError::Refused(format!(
                "the PostgreSQL database already holds reminderd data (table {table} has rows); migrate-to-postgres copies only into an empty database, so nothing was copied: give database.url a new database (createdb), or drop and recreate this one if its data is not needed"
            )));
        }
    }
    for table in BOOKKEEPING {
        tx.execute(&format!("DELETE FROM \"{table}\""), ())?;
    }
    Ok(())
}

/// Copies one table in batches; returns its rows.
fn copy_table(
    lite: &Conn,
    tx: &super::sql::Transaction<'_>,
    table: &Table,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<u64, StoreError> {
    let quoted: Vec<String> = table.columns.iter().map(|c| format!("\"{c}\"")).collect();
    let cols = quoted.join(", ");
    let total: i64 = lite.query_row(
        &format!("SELECT count(*) FROM \"{}\"", table.name),
        (),
        |r| r.get(0),
    )?;
    let total = u64::try_from(total).unwrap_or(0);
    progress(&table.name, 0, total);
    let key = if table.rowid { "rowid" } else { "NULL" };
    let order = if table.rowid { " ORDER BY rowid" } else { "" };
    let mut read = lite.prepare(&format!(
        "SELECT {key}, {cols} FROM \"{}\"{order}",
        table.name
    ))?;
    let width = table.columns.len();
    let per_batch = BATCH_ROWS.min(65_535 / width.max(1)).max(1);
    let mut rows = read.query(())?;
    let mut batch: Vec<Value> = Vec::with_capacity(per_batch * width);
    let mut keys: Vec<String> = Vec::with_capacity(per_batch);
    let mut done: u64 = 0;
    loop {
        let next = rows.next()?;
        let end = next.is_none();
        if let Some(row) = next {
            done += 1;
            let key = match row.get_ref(0)? {
                ValueRef::Integer(id) => format!("id {id}"),
                _ => format!("number {done}"),
            };
            for (i, column) in table.columns.iter().enumerate() {
                if table.deferred.contains(column) {
                    batch.push(Value::Null);
                    continue;
                }
                let v = row.get_ref(i + 1)?;
                batch.push(owned(v).map_err(|why| {
                    StoreError::Corrupt(format!(
                        "table {}, row {key}, column {column}: {why}; fix or clear that value in the SQLite database and copy again (nothing was copied)",
                        table.name
                    ))
                })?);
            }
            keys.push(key);
            if keys.len() < per_batch {
                continue;
            }
        }
        if !keys.is_empty() {
            insert_batch(tx, table, &cols, &keys, &batch)?;
            batch.clear();
            keys.clear();
            progress(&table.name, done, total);
        }
        if end {
            break;
        }
    }
    Ok(done)
}

/// Sets the references a table was copied without, now that every row they name is in.
fn set_deferred(
    lite: &Conn,
    tx: &super::sql::Transaction<'_>,
    table: &Table,
) -> Result<(), StoreError> {
    for column in &table.deferred {
        let mut read = lite.prepare(&format!(
            "SELECT id, \"{column}\" FROM \"{}\" WHERE \"{column}\" IS NOT NULL",
            table.name
        ))?;
        let pairs: Vec<(i64, i64)> = read
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut write = tx.prepare_cached(&format!(
            "UPDATE \"{}\" SET \"{column}\" = ?2 WHERE id = ?1",
            table.name
        ))?;
        for (id, value) in pairs {
            write.execute(super::sql::params![id, value]).map_err(|e| {
                StoreError::Corrupt(format!(
                    "table {}, row id {id}, column {column}: PostgreSQL refused {value}: {e}; nothing was copied",
                    table.name
                ))
            })?;
        }
    }
    Ok(())
}

/// Inserts a batch of rows (`keys` name them, `values` holds theirs row after row) in a
/// savepoint; when PostgreSQL refuses it, finds the first row it refuses alone and names it.
fn insert_batch(
    tx: &super::sql::Transaction<'_>,
    table: &Table,
    cols: &str,
    keys: &[String],
    values: &[Value],
) -> Result<(), StoreError> {
    let width = table.columns.len();
    let insert = |rows: usize, values: &[Value]| -> Result<(), super::sql::Error> {
        let sp = tx.savepoint()?;
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let marks: Vec<String> =
                    (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        sp.prepare_cached(&format!(
            "INSERT INTO \"{}\" ({cols}) VALUES {}",
            table.name,
            tuples.join(", ")
        ))?
        .execute(params_from_iter(values.iter()))?;
        sp.commit()
    };
    let Err(batch_error) = insert(keys.len(), values) else {
        return Ok(());
    };
    let refused = |key: &str, e: &super::sql::Error| {
        StoreError::Corrupt(format!(
            "table {}, row {key}: PostgreSQL refused it: {e}; nothing was copied",
            table.name
        ))
    };
    for (key, row) in keys.iter().zip(values.chunks(width)) {
        if let Err(e) = insert(1, row) {
            return Err(refused(key, &e));
        }
    }
    // Each row alone went in: the batch's error stands, for its first row.
    Err(refused(
        keys.first().map_or("?", String::as_str),
        &batch_error,
    ))
}

/// A value to copy, or why PostgreSQL could not hold it (text that is not UTF-8, or holds a
/// NUL character, which PostgreSQL's text refuses).
fn owned(v: ValueRef<'_>) -> Result<Value, String> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).map_err(|_| {
                "its text is not valid UTF-8, which PostgreSQL cannot store".to_string()
            })?;
            if s.contains('\0') {
                return Err("its text holds a NUL character, which PostgreSQL cannot store".into());
            }
            Value::Text(s.to_string())
        }
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}
