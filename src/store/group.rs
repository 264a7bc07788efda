//! Group commit: work that must be durable before it is answered (a webhook delivery) is
//! handed to one writer thread, which runs every piece waiting at that moment in one
//! transaction, each in a savepoint of its own, and commits once for all of them.
//!
//! The group's commit does not wait for the disk: it is written with `synchronous = NORMAL`
//! and the store is handed back at once, and a second thread, the syncer, then syncs the
//! write-ahead log (`fdatasync` of the `-wal` file) and only after that answers the group's
//! pieces. While one group's sync is on its way to the disk the writer already runs the next
//! group, and one sync covers every group committed before it started, so the fsyncs neither
//! hold the store nor grow with the load. Nothing is promised early: a piece is answered only
//! once its frames are on disk, and anything else that leaves the process on the strength of
//! that data (a send, an ACK) is committed with `FULL`, which syncs the whole log first.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};

use super::{Store, StoreError};

/// At most this many pieces of work share one commit (bounds the time a group holds the
/// connection, so the desk's own queries wait little).
pub const GROUP_MAX: usize = 256;

/// What the writer does with one piece of work: runs it in its savepoint (`true`: keep it,
/// `false`: roll it back), then, once the group's commit has succeeded (`Ok`) or failed,
/// answers whoever is waiting.
type Piece = Box<dyn FnOnce(&mut Store) -> (bool, Answer) + Send>;

/// Sends a piece's result once the fate of its commit is known.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The writer's inbox, started on first use, and how many groups it has committed.
#[derive(Default)]
pub(super) struct Writer {
    inbox: std::sync::OnceLock<mpsc::Sender<Piece>>,
    groups: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    /// Runs `f` in the next group, answering after the group is committed (`Err` when `f`
    /// failed, its savepoint then rolled back, or when the commit failed).
    pub(super) async fn run<T: Send + 'static>(
        &self,
        store: &Arc<Mutex<Store>>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let piece: Piece = Box::new(move |store| {
            let result = f(store);
            let keep = result.is_ok();
            let answer: Answer = Box::new(move |committed| {
                let _ = tx.send(match (result, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(why)) => Err(StoreError::Corrupt(format!(
                        "the group commit failed: {why}"
                    ))),
                });
            });
            (keep, answer)
        });
        let inbox = self
            .inbox
            .get_or_init(|| spawn(Arc::downgrade(store), Arc::clone(&self.groups)));
        if inbox.send(piece).is_err() {
            return Err(StoreError::Panicked("the writer thread stopped".into()));
        }
        rx.await
            .map_err(|_| StoreError::Panicked("the writer dropped a delivery".into()))?
    }
}

/// A committed group on its way to the syncer: its answers and the log file to sync first.
struct Committed {
    /// The write-ahead log to sync; `None` on PostgreSQL, whose commit is durable when it
    /// returns.
    wal: Option<std::path::PathBuf>,
    answers: Vec<(Answer, Result<(), String>)>,
}

/// Starts the writer thread and its syncer; they end when the last [`Writer`] (the last
/// `Db`) is dropped.
fn spawn(
    store: Weak<Mutex<Store>>,
    groups: Arc<std::sync::atomic::AtomicU64>,
) -> mpsc::Sender<Piece> {
    let (tx, rx) = mpsc::channel::<Piece>();
    let (synced_tx, synced_rx) = mpsc::channel::<Committed>();
    std::thread::Builder::new()
        .name("reminderd-syncer".into())
        .spawn(move || sync_loop(&synced_rx))
        .expect("the syncer thread starts");
    std::thread::Builder::new()
        .name("reminderd-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut group = vec![first];
                group.extend(rx.try_iter().take(GROUP_MAX - 1));
                // The store outlives every Db clone only while a group runs: dropped with
                // the last Db, it is not kept open (and locked) by this thread.
                let Some(shared) = store.upgrade() else {
                    break;
                };
                let mut store = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let answers = commit_group(&mut store, group);
                let wal = (store.backend() == super::sql::Backend::Sqlite)
                    .then(|| super::backup::wal_path(store.path()));
                groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                drop(store);
                drop(shared);
                if let Err(mpsc::SendError(lost)) = synced_tx.send(Committed { wal, answers }) {
                    for (answer, _) in lost.answers {
                        answer(Err("the syncer thread stopped".into()));
                    }
                }
            }
        })
        .expect("the writer thread starts");
    tx
}

/// The syncer: takes every committed group waiting, syncs the log once for all of them, then
/// answers them (each `Err` when the sync failed: the delivery is then retried by its sender,
/// and the replay is recognised).
fn sync_loop(inbox: &mpsc::Receiver<Committed>) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        batch.extend(inbox.try_iter());
        // One writer serves one store: every group in the batch has the same log.
        let failed = batch[0].wal.as_deref().and_then(|wal| sync_file(wal).err());
        if let Some(why) = &failed {
            tracing::error!(%why, "could not sync the write-ahead log; deliveries answered 500");
        }
        for group in batch {
            for (answer, committed) in group.answers {
                answer(match (&failed, committed) {
                    (Some(why), Ok(())) => Err(format!("the log could not be synced: {why}")),
                    (_, committed) => committed,
                });
            }
        }
    }
}

/// Makes what was written to `path` durable. Any descriptor of a file syncs all its written
/// data, also what SQLite wrote through its own.
fn sync_file(path: &std::path::Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.sync_data()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a group in one transaction, one savepoint a piece, commits once; the answers to send
/// (every piece's `Err` when the commit itself failed).
fn commit_group(store: &mut Store, group: Vec<Piece>) -> Vec<(Answer, Result<(), String>)> {
    store.close_abandoned();
    let mut answers = Vec::with_capacity(group.len());
    // NORMAL for this commit only: the syncer syncs the log before anyone is answered.
    let began = match store.conn.as_sqlite() {
        Some(sqlite) => sqlite
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(super::sql::Error::from),
        None => Ok(()),
    }
    .and_then(|()| store.conn.begin(super::sql::TransactionBehavior::Immediate));
    if let Err(e) = began {
        restore_full(store);
        let why = e.to_string();
        for piece in group {
            // Run alone instead: each then commits (or fails) on its own.
            let (_, answer) = piece(store);
            answers.push((answer, Ok(())));
        }
        tracing::warn!(%why, "could not begin a group; deliveries committed one by one");
        return answers;
    }
    for piece in group {
        let level = store.conn.depth();
        let piece_ran = store
            .conn
            .begin(super::sql::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string());
        if let Err(why) = piece_ran {
            answers.push((Box::new(|_| ()) as Answer, Err(why)));
            continue;
        }
        // A panic is a bug in that delivery's code: it is rolled back and answered 500 (its
        // answer is dropped), and the writer goes on with the others.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| piece(store)));
        let (keep, answer) = ran.unwrap_or_else(|_| (false, Box::new(|_| ()) as Answer));
        match store.conn.end_to(level, keep) {
            Ok(()) => answers.push((answer, Ok(()))),
            Err(e) => answers.push((answer, Err(e.to_string()))),
        }
    }
    if let Err(e) = store.conn.end_to(0, true) {
        let why = e.to_string();
        tracing::error!(%why, "a group commit failed; its deliveries are answered 500");
        for (_, committed) in &mut answers {
            *committed = Err(why.clone());
        }
    }
    restore_full(store);
    answers
}

/// Puts the connection back to `synchronous = FULL`, which every other commit relies on.
fn restore_full(store: &mut Store) {
    let Some(sqlite) = store.conn.as_sqlite() else {
        return;
    };
    if let Err(e) = sqlite.execute_batch("PRAGMA synchronous = FULL") {
        // Cannot happen on an open connection; if it did, later commits would not be synced.
        tracing::error!(error = %e, "could not set synchronous = FULL again");
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Db, Store, StoreError};
    use std::sync::atomic::Ordering;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("r.db")).expect("open");
        store
            .conn
            .execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .expect("table");
        (dir, Db::new(store))
    }

    fn insert(store: &mut Store, v: i64) -> Result<i64, StoreError> {
        // A store method's own transaction, nested in the group as a savepoint.
        store.atomically(|s| {
            s.conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok::<_, StoreError>(v)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[allow(clippy::await_holding_lock)] // on purpose: the writer must wait for the test
    async fn waiting_pieces_share_one_commit_and_a_failing_one_loses_only_its_own_work() {
        let (_dir, db) = db();
        // Hold the store so that the pieces queue up behind the first one.
        let held = db.store.lock().expect("lock");
        let mut waiting = Vec::new();
        for v in 0..50_i64 {
            let db = db.clone();
            waiting.push(tokio::spawn(async move {
                // 25 twice: the second breaks the UNIQUE constraint inside its savepoint.
                let v = if v == 40 { 25 } else { v };
                db.run_grouped(move |s| insert(s, v)).await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        drop(held);
        let mut failed = 0;
        for w in waiting {
            match w.await.expect("task") {
                Ok(_) => {}
                Err(StoreError::Sql(_)) => failed += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(failed, 1, "only the duplicate fails");
        let (rows, distinct): (i64, i64) = db
            .run(|s| {
                s.conn
                    .query_row("SELECT count(*), count(DISTINCT v) FROM t", (), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .expect("count")
            })
            .await
            .expect("run");
        assert_eq!((rows, distinct), (49, 49), "the other 49 are all committed");
        let groups = db.writer.groups.load(Ordering::Relaxed);
        assert!(
            groups <= 3,
            "50 pieces queued behind a held store took {groups} commits"
        );
        // The connection is idle again: no transaction left open by the group.
        assert!(db.run(|s| s.conn.is_autocommit()).await.expect("run"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_group_the_connection_syncs_every_commit_again() {
        let (_dir, db) = db();
        for v in 0..5 {
            db.run_grouped(move |s| insert(s, v)).await.expect("piece");
        }
        // 2 = FULL: only the group's own commit runs NORMAL (its syncer syncs the log).
        let level: i64 = db
            .run(|s| s.conn.query_row("PRAGMA synchronous", (), |r| r.get(0)))
            .await
            .expect("run")
            .expect("pragma");
        assert_eq!(level, 2);
    }

    #[test]
    fn a_group_whose_log_cannot_be_synced_is_answered_with_an_error() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (answered_tx, answered) = std::sync::mpsc::channel();
        let answer: super::Answer = Box::new(move |r| answered_tx.send(r).expect("send"));
        tx.send(super::Committed {
            wal: Some(std::path::PathBuf::from("/nonexistent/reminderd.db-wal")),
            answers: vec![(answer, Ok(()))],
        })
        .expect("send");
        drop(tx);
        super::sync_loop(&rx);
        let got = answered.recv().expect("answered");
        let why = got.expect_err("an unsynced commit is not promised");
        assert!(why.contains("could not be synced"), "{why}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_piece_is_answered_and_the_writer_goes_on() {
        let (_dir, db) = db();
        let bad = db
            .run_grouped(|_s| -> Result<(), StoreError> { panic!("a bug in one delivery") })
            .await;
        assert!(bad.is_err());
        let good = db.run_grouped(|s| insert(s, 7)).await.expect("next piece");
        assert_eq!(good, 7);
    }
}
