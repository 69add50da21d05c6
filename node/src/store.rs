//! The node's redb store, behind one owner.
//!
//! Reads open their own MVCC read transaction from any thread. Writes go
//! through [`Store::write`]: a single writer thread takes every write that is
//! waiting, runs them all in **one** write transaction and commits once
//! (group commit), so durability (`fsync` per commit) does not cap throughput.
//!
//! A write may also be *lazy* ([`Store::write_lazy`]): it is committed and
//! visible at once but made durable by the next durable commit, at the
//! latest [`LAZY_DURABLE_WITHIN`] later. It is for what can be had again
//! after a crash: a receipt for a message still in the outbox is fetched
//! again by resending the message, and the recipient answers a duplicate
//! with the very same receipt.
//!
//! Contract for write closures: a closure that returns `Err` must not have
//! written anything (check first, then write). Its error goes back to its own
//! caller; the other closures of the batch still commit.
//!
//! The tables and their encodings are listed in `docs/STORE.md`; every table
//! name carries a version suffix (`"cases-1"`), bumped when its encoding
//! changes.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use tokio::sync::oneshot;

/// Largest number of writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer thread before callers wait for room.
const QUEUE_DEPTH: usize = 4096;
/// A lazy write is durable at the latest this long after it was committed.
pub const LAZY_DURABLE_WITHIN: Duration = Duration::from_millis(10);

/// Key/value metadata (schema version and counters).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta-1");

/// The store's schema version, kept in [`META`].
const SCHEMA_VERSION: &[u8] = b"1";

/// Something went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the store at {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What redb said (part of the message, so not repeated as a source).
        reason: Box<redb::DatabaseError>,
    },
    /// The file holds a store of another schema version.
    #[error(
        "the store at {path} has schema version {found}, this imi-node expects {expected}; restore a backup made by a matching version"
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: String,
        /// The version this build writes.
        expected: String,
    },
    /// A read or write failed inside redb.
    #[error("the store failed: {0}")]
    Database(#[from] Box<redb::Error>),
    /// A stored value could not be decoded.
    #[error("a stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What kind of record.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// The writer thread has stopped (the node is shutting down).
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

macro_rules! from_redb {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(err: $ty) -> Self {
                StoreError::Database(Box::new(err.into()))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type AnyBox = Box<dyn Any + Send>;
type WriteFn = Box<dyn FnOnce(&WriteTransaction) -> Result<AnyBox, StoreError> + Send>;

struct Job {
    write: WriteFn,
    durable: bool,
    reply: oneshot::Sender<Result<AnyBox, StoreError>>,
}

/// Statistics of the group commit, for metrics and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    /// Transactions committed.
    pub commits: u64,
    /// Writes committed (summed over all transactions).
    pub writes: u64,
    /// Of the transactions, those committed without waiting for the disk
    /// (lazy writes only); the next durable commit makes them durable.
    pub lazy_commits: u64,
}

/// The node's store: one redb database, one writer thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    jobs: mpsc::SyncSender<Job>,
    stats: Arc<std::sync::Mutex<CommitStats>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store at `path`, creating it when missing, and starts the
    /// writer thread. `init` creates the tables the callers use.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = crate::wal::open(path, true).map_err(|reason| StoreError::Open {
            path: path.to_owned(),
            reason: Box::new(reason),
        })?;
        check_schema(&db, path)?;
        let db = Arc::new(db);
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let stats = Arc::new(std::sync::Mutex::new(CommitStats::default()));
        let writer_db = Arc::clone(&db);
        let writer_stats = Arc::clone(&stats);
        thread::Builder::new()
            .name("imi-store-writer".into())
            .spawn(move || writer_loop(&writer_db, &rx, &writer_stats))
            .map_err(|err| StoreError::corrupt("writer thread", err))?;
        Ok(Store {
            db,
            jobs,
            stats,
            path: Arc::new(path.to_owned()),
        })
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a read transaction (a consistent snapshot).
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs `write` in the next group-committed transaction and returns its
    /// result once the transaction is durable.
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, true).await
    }

    /// Like [`Store::write`], but returns once the write is committed and
    /// visible, without waiting for the disk: it becomes durable with the
    /// next durable commit, within [`LAZY_DURABLE_WITHIN`]. Only for what is
    /// recovered by other means after a crash (see the module comment).
    pub async fn write_lazy<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, false).await
    }

    async fn submit<T, F>(&self, write: F, durable: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            write: Box::new(move |tx| write(tx).map(|value| Box::new(value) as AnyBox)),
            durable,
            reply,
        };
        let jobs = self.jobs.clone();
        // The queue is bounded: wait for room off the async runtime.
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|_| StoreError::Closed)?
                    .map_err(|_| StoreError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed),
        }
        let value = rx.await.map_err(|_| StoreError::Closed)??;
        Ok(*value
            .downcast::<T>()
            .expect("the writer returns the closure's own type"))
    }

    /// Like [`Store::write`], for callers outside the async runtime (the CLI).
    pub fn write_blocking<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            write: Box::new(move |tx| write(tx).map(|value| Box::new(value) as AnyBox)),
            durable: true,
            reply,
        };
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        let value = rx.blocking_recv().map_err(|_| StoreError::Closed)??;
        Ok(*value
            .downcast::<T>()
            .expect("the writer returns the closure's own type"))
    }

    /// Group-commit statistics so far.
    pub fn commit_stats(&self) -> CommitStats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_schema(db: &Database, path: &Path) -> Result<(), StoreError> {
    let tx = db.begin_write()?;
    {
        let mut meta = tx.open_table(META)?;
        let found = meta.get("schema")?.map(|v| v.value().to_vec());
        match found {
            None => {
                meta.insert("schema", SCHEMA_VERSION)?;
            }
            Some(found) if found == SCHEMA_VERSION => {}
            Some(found) => {
                return Err(StoreError::SchemaVersion {
                    path: path.to_owned(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: String::from_utf8_lossy(SCHEMA_VERSION).into_owned(),
                });
            }
        }
    }
    tx.commit()?;
    Ok(())
}

fn writer_loop(db: &Database, jobs: &mpsc::Receiver<Job>, stats: &std::sync::Mutex<CommitStats>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // When lazy commits wait for a durable one: by when it must happen.
    let mut lazy_due: Option<Instant> = None;
    loop {
        let first = match lazy_due {
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Some(due) => match jobs.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    make_durable(db);
                    lazy_due = None;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    make_durable(db);
                    return;
                }
            },
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let count = batch.len();
        let durable = batch.iter().any(|job| job.durable);
        let mut tx = match db.begin_write() {
            Ok(tx) => tx,
            Err(err) => {
                let message = err.to_string();
                for job in batch.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(StoreError::corrupt("transaction", &message)));
                }
                continue;
            }
        };
        if !durable && tx.set_durability(Durability::None).is_err() {
            // Not allowed here: commit durably instead.
            tracing::debug!("store: lazy commit refused, committing durably");
        }
        let mut results = Vec::with_capacity(count);
        for job in batch.drain(..) {
            let result = (job.write)(&tx);
            results.push((job.reply, result));
        }
        match tx.commit() {
            Ok(()) => {
                {
                    let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
                    stats.commits += 1;
                    stats.writes += count as u64;
                    if !durable {
                        stats.lazy_commits += 1;
                    }
                }
                if durable {
                    lazy_due = None;
                } else {
                    lazy_due.get_or_insert(started + LAZY_DURABLE_WITHIN);
                }
                for (reply, result) in results {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, writes = count, "store commit failed");
                let message = err.to_string();
                for (reply, _) in results {
                    let _ = reply.send(Err(StoreError::corrupt("commit", &message)));
                }
            }
        }
        tracing::trace!(
            writes = count,
            durable,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group commit"
        );
    }
}

/// An empty durable commit: makes the lazy commits before it durable.
fn make_durable(db: &Database) {
    let committed = match db.begin_write() {
        Ok(tx) => tx.commit().map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    if let Err(error) = committed {
        tracing::error!(%error, "store: making lazy writes durable failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableDefinition<'_, u64, u64> = TableDefinition::new("test-1");

    fn get(store: &Store, key: u64) -> Option<u64> {
        let read = store.read().unwrap();
        let table = read.open_table(T).ok()?;
        table.get(key).unwrap().map(|v| v.value())
    }

    #[tokio::test]
    async fn a_lazy_write_is_visible_at_once_and_durable_soon_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = Store::open(&path).unwrap();
        // The database file as the disk holds it; nothing after is synced.
        let on_disk = std::fs::read(&path).unwrap();
        store
            .write_lazy(|tx| {
                tx.open_table(T)?.insert(1, 10)?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(get(&store, 1), Some(10));
        let stats = store.commit_stats();
        assert_eq!((stats.commits, stats.lazy_commits), (1, 1));
        tokio::time::sleep(LAZY_DURABLE_WITHIN * 5).await;
        // A power loss now: the database file loses every unsynced write,
        // the write-ahead log keeps what was synced.
        let crashed = dir.path().join("crashed.redb");
        crate::wal::tests::crash_copy(&path, &on_disk, &crashed);
        let reopened = Store::open(&crashed).unwrap();
        assert_eq!(get(&reopened, 1), Some(10));
    }
}
