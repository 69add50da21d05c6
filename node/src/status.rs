//! What a stopped node's store holds, and its backup and restore.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::Serialize;

use crate::cases::{CASES, CaseRecord};
use crate::delivery::{Direction, INBOX, MESSAGES, MessageRecord, MessageStatus, OUTBOX};
use crate::store::StoreError;

/// Counts of a node's store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    /// Cases by state (`"sent"`, `"accepted"`, …).
    pub cases: BTreeMap<String, u64>,
    /// Messages this node sent, by status (`accepted`, `rejected`, `pending`).
    pub sent: BTreeMap<String, u64>,
    /// Messages this node received and accepted.
    pub received: u64,
    /// Messages still waiting for their receipt.
    pub outbox: u64,
    /// Receipts given (received messages, accepted or rejected).
    pub receipts_given: u64,
    /// Rejections received, by code.
    pub rejections: BTreeMap<String, u64>,
}

fn open_existing(path: &Path) -> Result<Database, StoreError> {
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.to_owned(),
            reason: Box::new(redb::DatabaseError::Storage(redb::StorageError::Io(
                std::io::Error::new(std::io::ErrorKind::NotFound, "no store here"),
            ))),
        });
    }
    crate::wal::open(path, false).map_err(|reason| StoreError::Open {
        path: path.to_owned(),
        reason: Box::new(reason),
    })
}

impl StoreStatus {
    /// Reads the store at `path`; fails while a running node holds it.
    pub fn read(path: &Path) -> Result<StoreStatus, StoreError> {
        let db = open_existing(path)?;
        let read = db.begin_read()?;
        StoreStatus::from_snapshot(&read)
    }

    /// Reads the store of a running node, in one snapshot of it.
    pub fn of(store: &crate::store::Store) -> Result<StoreStatus, StoreError> {
        StoreStatus::from_snapshot(&store.read()?)
    }

    fn from_snapshot(read: &redb::ReadTransaction) -> Result<StoreStatus, StoreError> {
        let mut status = StoreStatus::default();
        if let Ok(cases) = read.open_table(CASES) {
            for entry in cases.iter()? {
                let (_, value) = entry?;
                let record: CaseRecord = postcard::from_bytes(value.value())
                    .map_err(|e| StoreError::corrupt("case", e))?;
                *status.cases.entry(record.state().describe()).or_default() += 1;
            }
        }
        if let Ok(messages) = read.open_table(MESSAGES) {
            for entry in messages.iter()? {
                let (_, value) = entry?;
                let record: MessageRecord = postcard::from_bytes(value.value())
                    .map_err(|e| StoreError::corrupt("message", e))?;
                match (record.direction, &record.status) {
                    (Direction::Inbound, _) => status.received += 1,
                    (Direction::Outbound, MessageStatus::Pending) => {
                        *status.sent.entry("pending".into()).or_default() += 1
                    }
                    (Direction::Outbound, MessageStatus::Accepted) => {
                        *status.sent.entry("accepted".into()).or_default() += 1
                    }
                    (Direction::Outbound, MessageStatus::Rejected { code, .. }) => {
                        *status.sent.entry("rejected".into()).or_default() += 1;
                        *status.rejections.entry(code.clone()).or_default() += 1;
                    }
                }
            }
        }
        if let Ok(outbox) = read.open_table(OUTBOX) {
            status.outbox = redb::ReadableTableMetadata::len(&outbox)?;
        }
        if let Ok(inbox) = read.open_table(INBOX) {
            status.receipts_given = redb::ReadableTableMetadata::len(&inbox)?;
        }
        Ok(status)
    }
}

impl fmt::Display for StoreStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cases:")?;
        for (state, n) in &self.cases {
            writeln!(f, "  {state}: {n}")?;
        }
        writeln!(f, "messages sent:")?;
        for (status, n) in &self.sent {
            writeln!(f, "  {status}: {n}")?;
        }
        for (code, n) in &self.rejections {
            writeln!(f, "  rejected as {code}: {n}")?;
        }
        writeln!(f, "messages received: {}", self.received)?;
        writeln!(f, "receipts given: {}", self.receipts_given)?;
        writeln!(f, "waiting for a receipt: {}", self.outbox)
    }
}

/// Copies the store at `store` to `out` (the node must be stopped: the copy
/// is taken while holding the store, so no write can interleave).
pub fn backup(store: &Path, out: &Path) -> Result<(), StoreError> {
    let db = open_existing(store)?;
    // Holding the database open keeps any node from starting meanwhile.
    std::fs::copy(store, out).map_err(|e| StoreError::corrupt("backup", e))?;
    drop(db);
    // Prove the copy opens.
    let copy = open_existing(out)?;
    drop(copy.begin_read()?);
    Ok(())
}

/// Replaces the store at `store` with the backup `from`, after checking the
/// backup opens; the replaced store is kept next to it as `.replaced`.
pub fn restore(from: &Path, store: &Path) -> Result<(), StoreError> {
    {
        let backup = open_existing(from)?;
        drop(backup.begin_read()?);
    }
    if store.exists() {
        // Fails while a running node holds the store.
        drop(open_existing(store)?);
        std::fs::rename(store, store.with_extension("redb.replaced"))
            .map_err(|e| StoreError::corrupt("restore", e))?;
    }
    if let Some(parent) = store.parent() {
        std::fs::create_dir_all(parent).map_err(|e| StoreError::corrupt("restore", e))?;
    }
    // The logs belonged to the replaced store (and are empty once it closed).
    for log in crate::wal::log_paths(store) {
        match std::fs::remove_file(&log) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::corrupt("restore", e)),
        }
    }
    std::fs::copy(from, store).map_err(|e| StoreError::corrupt("restore", e))?;
    Ok(())
}
