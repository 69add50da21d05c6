//! Errors, one enum per operation.

use std::path::PathBuf;

/// Why the search index could not be opened or created.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory could not be created, read or cleared.
    #[error(
        "cannot use the search index directory {path}: {source}; check that it exists and is writable"
    )]
    Directory {
        /// The index directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The directory holds files that are not a search index, so it is not
    /// cleared for a rebuild.
    #[error(
        "{path} is not empty and holds no imi search index; give the search index a directory of its own"
    )]
    NotAnIndex {
        /// The directory given.
        path: PathBuf,
    },
    /// Another process has the index open for writing.
    #[error(
        "the search index in {path} is locked by another process; stop the other imi-node using this data directory"
    )]
    Locked {
        /// The index directory.
        path: PathBuf,
    },
    /// Tantivy refused to create or open the index.
    #[error("cannot open the search index in {path}: {source}")]
    Index {
        /// The index directory (empty for an index in memory).
        path: PathBuf,
        /// Tantivy's error.
        #[source]
        source: tantivy::TantivyError,
    },
}

/// Why an entry could not be added, replaced or removed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The entry lacks what the index needs.
    #[error("directory entry {id:?} cannot be indexed: {reason}")]
    InvalidEntry {
        /// The entry's id (cut to 80 characters).
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The index writer failed; the index keeps its last committed state.
    #[error("the search index could not be written: {0}; the last committed state is kept")]
    Index(#[from] tantivy::TantivyError),
    /// A previous write panicked while holding the writer.
    #[error("the search index writer was poisoned by an earlier failure; reopen the index")]
    Poisoned,
}

/// Why a commit failed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Tantivy could not commit or reload; the index keeps its last committed
    /// state and the pending changes are lost.
    #[error("the search index could not commit its changes: {0}; the last committed state is kept")]
    Index(#[from] tantivy::TantivyError),
    /// The version marker could not be written after a rebuild.
    #[error("the search index could not record its schema version in {path}: {source}")]
    Marker {
        /// The marker file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A previous write panicked while holding the writer.
    #[error("the search index writer was poisoned by an earlier failure; reopen the index")]
    Poisoned,
}

/// Why a full rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// An entry could not be indexed; nothing of the rebuild is committed.
    #[error("the rebuild stopped: {0}")]
    Write(#[from] WriteError),
    /// The rebuilt index could not be committed.
    #[error("the rebuild stopped: {0}")]
    Commit(#[from] CommitError),
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The requested page is out of the supported range.
    #[error(
        "a page may hold at most {max} results and start before result {max_offset}; asked for {limit} from {offset}"
    )]
    Paging {
        /// The offset asked for.
        offset: usize,
        /// The limit asked for.
        limit: usize,
        /// The largest limit allowed.
        max: usize,
        /// The largest offset allowed.
        max_offset: usize,
    },
    /// The query text is longer than the search accepts.
    #[error("the search text is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// The length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Tantivy failed while searching (a damaged index file, for instance).
    #[error(
        "the search failed: {0}; if this persists, delete the search index directory so it is rebuilt"
    )]
    Index(#[from] tantivy::TantivyError),
}
