//! The send tasks' writer: each send's note ("requested") and outcome go to one task that
//! commits whatever is waiting in one transaction, so a synced commit (`synchronous = FULL`,
//! a few milliseconds each) is paid once per group, not twice per message, and hundreds of
//! sends never each hold a blocking thread waiting for the one connection.

use tokio::sync::{mpsc, oneshot};

use crate::store::{Db, SendWrite, StoreError};

/// Most writes in one transaction: a group stays short, so claims and webhooks waiting for
/// the connection are not held up long.
const MOST: usize = 256;

type Reply = oneshot::Sender<Result<bool, StoreError>>;

/// Where a run's send tasks hand their writes; the writer ends when every copy is dropped.
#[derive(Clone)]
pub(super) struct Writes(mpsc::UnboundedSender<(SendWrite, Reply)>);

impl Writes {
    /// Writes `w` with whatever else is waiting, and returns once it is committed: for a
    /// note, whether the row was still `sending`.
    pub(super) async fn write(&self, w: SendWrite) -> Result<bool, StoreError> {
        let (tx, rx) = oneshot::channel();
        let gone = || StoreError::Panicked("the send writer stopped".into());
        self.0.send((w, tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

/// Groups written at once. The connection takes one at a time, but each group waits in the
/// same queue as the webhook's and the desk's store calls (the blocking pool's): one group
/// at a time got one turn in that whole queue and sending fell to a fraction of the cap while
/// status webhooks poured in (measured: 120 msg/s at a cap of 1000 in bench/memory.py).
const GROUPS: usize = 16;

/// Starts a writer over `store`.
pub(super) fn spawn(store: Db) -> Writes {
    let (tx, mut rx) = mpsc::unbounded_channel::<(SendWrite, Reply)>();
    tokio::spawn(async move {
        let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(GROUPS));
        loop {
            let Ok(turn) = std::sync::Arc::clone(&turns).acquire_owned().await else {
                break;
            };
            let mut group = Vec::with_capacity(MOST);
            if rx.recv_many(&mut group, MOST).await == 0 {
                break;
            }
            let store = store.clone();
            tokio::spawn(async move {
                let (writes, replies): (Vec<SendWrite>, Vec<Reply>) = group.into_iter().unzip();
                match store.run(move |s| s.write_sends(&writes)).await {
                    Ok(Ok(results)) => {
                        for (reply, r) in replies.into_iter().zip(results) {
                            let _ = reply.send(r);
                        }
                    }
                    // The transaction failed whole (or its task panicked): each send learns it.
                    Ok(Err(e)) | Err(e) => {
                        let why = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(StoreError::Panicked(why.clone())));
                        }
                    }
                }
                drop(turn);
            });
        }
    });
    Writes(tx)
}
