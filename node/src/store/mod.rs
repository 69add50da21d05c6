//! The node's redb store, behind one owner.
//!
//! Reads open their own MVCC read transaction from any thread. Writes go
//! through [`Store::write`]: a single writer thread takes every write that is
//! waiting and commits them together in **one** transaction with one
//! `fsync` (group commit), so neither durability nor the transaction's own
//! work caps throughput. Every write (a "job") is all-or-nothing all the
//! same: a job that fails (returns `Err` or panics) makes the writer abort
//! the group's transaction and run the group again, each job in a
//! transaction of its own, without the failed one; so nothing the failed
//! job wrote is kept, and the other jobs of the group still commit. That
//! is why a job is a closure that can run more than once (`FnMut`): it must
//! do nothing outside its transaction that may not be done twice.
//!
//! A write may also be *lazy* ([`Store::write_lazy`]): it is committed and
//! visible at once but made durable by the next durable commit, at the
//! latest [`LAZY_DURABLE_WITHIN`] later. It is for what can be had again
//! after a crash: a receipt for a message still in the outbox is fetched
//! again by resending the message, and the recipient answers a duplicate
//! with the very same receipt.
//!
//! A closure's error goes back to its own caller; [`Store::try_write`]
//! lets it be a caller's own error type (a refusal), which rolls the job
//! back just the same.
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

pub mod wal;

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
type WriteFn = Box<dyn FnMut(&WriteTransaction) -> Result<AnyBox, JobError> + Send>;

/// Why a job was rolled back.
enum JobError {
    /// The store failed.
    Store(StoreError),
    /// The closure refused, with the caller's own error (see [`Store::try_write`]).
    Refused(AnyBox),
}

struct Job {
    write: WriteFn,
    durable: bool,
    reply: oneshot::Sender<Result<AnyBox, JobError>>,
}

/// Statistics of the group commit, for metrics and benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    /// Group commits: groups of writes made durable together (or, lazy,
    /// committed together without waiting for the disk).
    pub commits: u64,
    /// Writes committed (summed over all groups; rolled back ones are not
    /// counted).
    pub writes: u64,
    /// Of the groups, those of lazy writes only, committed without waiting
    /// for the disk; the next durable commit makes them durable.
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
        let db = wal::open(path, true).map_err(|reason| StoreError::Open {
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

    /// Runs `write` in the next group commit and returns its result once it
    /// is durable. If `write` fails, nothing it wrote is kept.
    ///
    /// `write` may run more than once: when another write of its group
    /// fails, the group runs again without it, and only the last run's
    /// result is returned (and committed). So it must not change anything
    /// outside the transaction that may not change twice.
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.try_write(write).await
    }

    /// Like [`Store::write`], for a closure with an error type of its own
    /// (a refusal of the caller's domain): an `Err` rolls back everything
    /// the closure wrote and comes back as it was returned.
    pub async fn try_write<T, E, F>(&self, write: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
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
        F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(write, false).await
    }

    fn job<T, E, F>(
        mut write: F,
        durable: bool,
    ) -> (Job, oneshot::Receiver<Result<AnyBox, JobError>>)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            write: Box::new(move |tx| match write(tx) {
                Ok(value) => Ok(Box::new(value) as AnyBox),
                Err(err) => Err(JobError::Refused(Box::new(err))),
            }),
            durable,
            reply,
        };
        (job, rx)
    }

    fn outcome<T: 'static, E: From<StoreError> + 'static>(
        result: Result<AnyBox, JobError>,
    ) -> Result<T, E> {
        match result {
            Ok(value) => Ok(*value
                .downcast::<T>()
                .expect("the writer returns the closure's own type")),
            Err(JobError::Store(err)) => Err(err.into()),
            Err(JobError::Refused(err)) => Err(*err
                .downcast::<E>()
                .expect("the writer returns the closure's own error type")),
        }
    }

    async fn submit<T, E, F>(&self, write: F, durable: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (job, rx) = Self::job(write, durable);
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
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(StoreError::Closed.into()),
        }
        Self::outcome(rx.await.map_err(|_| StoreError::Closed)?)
    }

    /// Like [`Store::write`], for callers outside the async runtime (the CLI).
    pub fn write_blocking<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let (job, rx) = Self::job(write, true);
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        Self::outcome(rx.blocking_recv().map_err(|_| StoreError::Closed)?)
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
                    let _ = make_durable(db);
                    lazy_due = None;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = make_durable(db);
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
        let (results, shared) = run_group(db, &mut batch, durable);
        let committed = results.iter().filter(|r| r.is_ok()).count() as u64;
        {
            let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
            stats.commits += 1;
            stats.writes += committed;
            if !durable {
                stats.lazy_commits += 1;
            }
        }
        if durable {
            lazy_due = None;
        } else if committed > 0 {
            lazy_due.get_or_insert(started + LAZY_DURABLE_WITHIN);
        }
        for (job, result) in batch.drain(..).zip(results) {
            // The closure goes first, so what it shared with its caller is
            // the caller's alone again when the answer arrives.
            let Job { write, reply, .. } = job;
            drop(write);
            let _ = reply.send(result);
        }
        tracing::trace!(
            writes = count,
            durable,
            shared,
            elapsed_us = started.elapsed().as_micros() as u64,
            "group commit"
        );
    }
}

/// Commits the writes of a group: all in one transaction when none fails
/// (`true` is returned with the results); else each in a transaction of
/// its own, the failed one left out, then one durable commit for them all.
fn run_group(
    db: &Database,
    batch: &mut [Job],
    durable: bool,
) -> (Vec<Result<AnyBox, JobError>>, bool) {
    let failed = match run_shared(db, batch, durable) {
        Shared::Committed(results) => return (results, true),
        Shared::CommitFailed(message) => {
            let results = batch
                .iter()
                .map(|_| Err(JobError::Store(StoreError::corrupt("commit", &message))))
                .collect();
            return (results, true);
        }
        Shared::Failed { at, error } => (at, error),
    };
    // Nothing of the shared transaction was kept: every write but the
    // failed one runs again, alone, so a failure rolls back only itself.
    let (at, error) = failed;
    let mut error = Some(error);
    let mut results: Vec<Result<AnyBox, JobError>> = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter_mut().enumerate() {
        if i == at {
            results.push(Err(error.take().expect("one failed write")));
        } else {
            results.push(run_job(db, &mut job.write));
        }
    }
    if durable {
        // One durable commit makes every write of the group durable.
        if let Err(message) = make_durable(db) {
            for (job, result) in batch.iter().zip(results.iter_mut()) {
                if job.durable && result.is_ok() {
                    *result = Err(JobError::Store(StoreError::corrupt("commit", &message)));
                }
            }
        }
    }
    (results, false)
}

/// What became of a group run in one transaction.
enum Shared {
    /// Every write succeeded and the transaction committed.
    Committed(Vec<Result<AnyBox, JobError>>),
    /// Every write succeeded, but the commit failed: none is kept.
    CommitFailed(String),
    /// Write `at` failed (or panicked); the transaction was rolled back.
    Failed { at: usize, error: JobError },
}

/// Runs every write of a group in one transaction, durable if `durable`.
fn run_shared(db: &Database, batch: &mut [Job], durable: bool) -> Shared {
    let mut tx = match db.begin_write() {
        Ok(tx) => tx,
        Err(err) => return Shared::CommitFailed(err.to_string()),
    };
    if !durable && let Err(err) = tx.set_durability(Durability::None) {
        return Shared::CommitFailed(err.to_string());
    }
    let mut results = Vec::with_capacity(batch.len());
    for (at, job) in batch.iter_mut().enumerate() {
        match attempt(&tx, &mut job.write) {
            Ok(value) => results.push(Ok(value)),
            Err(error) => {
                if let Err(abort) = tx.abort() {
                    tracing::error!(error = %abort, "store: rolling back a failed group failed");
                }
                return Shared::Failed { at, error };
            }
        }
    }
    match tx.commit() {
        Ok(()) => Shared::Committed(results),
        Err(err) => {
            tracing::error!(error = %err, writes = results.len(), "store commit failed");
            Shared::CommitFailed(err.to_string())
        }
    }
}

/// Runs one write in `tx`; a panic is caught and counts as a failure.
fn attempt(tx: &WriteTransaction, write: &mut WriteFn) -> Result<AnyBox, JobError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(tx))) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            tracing::error!(panic = %what, "store: a write panicked and was rolled back");
            Err(JobError::Store(StoreError::corrupt(
                "write",
                format!("the write panicked: {what}"),
            )))
        }
    }
}

/// Runs one job in a transaction of its own, committed without waiting for
/// the disk; a job that fails or panics is rolled back whole.
fn run_job(db: &Database, write: &mut WriteFn) -> Result<AnyBox, JobError> {
    let mut tx = db
        .begin_write()
        .map_err(|err| JobError::Store(StoreError::corrupt("transaction", err)))?;
    tx.set_durability(Durability::None)
        .map_err(|err| JobError::Store(StoreError::corrupt("transaction", err)))?;
    match attempt(&tx, write) {
        Ok(value) => match tx.commit() {
            Ok(()) => Ok(value),
            Err(err) => {
                tracing::error!(error = %err, "store commit failed");
                Err(JobError::Store(StoreError::corrupt("commit", err)))
            }
        },
        Err(err) => {
            if let Err(abort) = tx.abort() {
                tracing::error!(error = %abort, "store: rolling back a failed write failed");
            }
            Err(err)
        }
    }
}

/// An empty durable commit: makes the commits before it durable.
fn make_durable(db: &Database) -> Result<(), String> {
    let committed = match db.begin_write() {
        Ok(tx) => tx.commit().map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    if let Err(error) = &committed {
        tracing::error!(%error, "store: making writes durable failed");
    }
    committed
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

    const U: TableDefinition<'_, u64, u64> = TableDefinition::new("test-other-1");

    #[derive(Debug, PartialEq)]
    enum Refusal {
        NotNow,
        Store,
    }

    impl From<StoreError> for Refusal {
        fn from(_: StoreError) -> Self {
            Refusal::Store
        }
    }

    fn get_other(store: &Store, key: u64) -> Option<u64> {
        let read = store.read().unwrap();
        let table = read.open_table(U).ok()?;
        table.get(key).unwrap().map(|v| v.value())
    }

    #[tokio::test]
    async fn a_write_that_fails_midway_leaves_nothing_and_its_group_still_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = Store::open(&path).unwrap();
        // The first job holds the writer until every other job is queued,
        // so they are all committed as one group.
        // It holds it once: the failures make the group run again.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let mut held = false;
        let (holding, failing, refused, panicking, fine, ()) = tokio::join!(
            store.write(move |_| {
                if !std::mem::replace(&mut held, true) {
                    let _ = hold.recv();
                }
                Ok(())
            }),
            // A failure injected after two tables were written.
            store.write(|tx| {
                tx.open_table(T)?.insert(1, 10)?;
                tx.open_table(U)?.insert(1, 10)?;
                Err::<(), _>(StoreError::corrupt("test record", "injected failure"))
            }),
            store.try_write(|tx| {
                let mut table = tx.open_table(T).map_err(StoreError::from)?;
                table.insert(2, 20).map_err(StoreError::from)?;
                Err::<(), _>(Refusal::NotNow)
            }),
            store.write(|tx| {
                tx.open_table(T)?.insert(3, 30)?;
                panic!("injected panic in the middle of a write");
                #[allow(unreachable_code)]
                Ok(())
            }),
            store.write(|tx| {
                tx.open_table(T)?.insert(4, 40)?;
                tx.open_table(U)?.insert(4, 40)?;
                Ok(())
            }),
            async {
                release.send(()).unwrap();
            },
        );
        holding.unwrap();
        assert!(matches!(failing, Err(StoreError::Corrupt { .. })));
        assert_eq!(refused, Err(Refusal::NotNow));
        assert!(panicking.unwrap_err().to_string().contains("panicked"));
        fine.unwrap();
        for key in 1..=3 {
            assert_eq!(get(&store, key), None, "a failed write left key {key}");
            assert_eq!(get_other(&store, key), None);
        }
        assert_eq!((get(&store, 4), get_other(&store, 4)), (Some(40), Some(40)));
        let stats = store.commit_stats();
        assert_eq!(stats.writes, 2, "only the writes that succeeded count");
        // And the same after reopening: nothing of the failed writes is durable.
        drop(store);
        let store = reopen(&path).await;
        assert_eq!(
            (get(&store, 1), get_other(&store, 1), get(&store, 4)),
            (None, None, Some(40))
        );
    }

    #[tokio::test]
    async fn writes_of_a_group_see_each_other_and_a_write_run_again_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        // Read-modify-write: running it twice in one committed state would
        // count 2.
        fn bump(tx: &WriteTransaction) -> Result<u64, StoreError> {
            let mut table = tx.open_table(T)?;
            let next = table.get(7)?.map_or(0, |v| v.value()) + 1;
            table.insert(7, next)?;
            Ok(next)
        }
        // A group in which nothing fails: one transaction, in order.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let mut held = false;
        let holding = store.write(move |_| {
            if !std::mem::replace(&mut held, true) {
                let _ = hold.recv();
            }
            Ok(())
        });
        let (held, a, b, ()) = tokio::join!(holding, store.write(bump), store.write(bump), async {
            release.send(()).unwrap();
        });
        held.unwrap();
        assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
        // A group in which a write fails after `bump` ran: `bump` runs again
        // without it, and is committed (and answered) once.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let mut held = false;
        let holding = store.write(move |_| {
            if !std::mem::replace(&mut held, true) {
                let _ = hold.recv();
            }
            Ok(())
        });
        let (held, bumped, failed, ()) = tokio::join!(
            holding,
            store.write(bump),
            store.write(|tx| {
                tx.open_table(T)?.insert(7, 1000)?;
                Err::<(), _>(StoreError::corrupt("test record", "injected failure"))
            }),
            async {
                release.send(()).unwrap();
            },
        );
        held.unwrap();
        assert!(failed.is_err());
        assert_eq!(bumped.unwrap(), 3);
        assert_eq!(get(&store, 7), Some(3));
    }

    /// Opens the store again once the previous handle's writer let it go.
    async fn reopen(path: &Path) -> Store {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Store::open(path) {
                Ok(store) => return store,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("{err}"),
            }
        }
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
        wal::tests::crash_copy(&path, &on_disk, &crashed);
        let reopened = Store::open(&crashed).unwrap();
        assert_eq!(get(&reopened, 1), Some(10));
    }
}
