//! The directory's sync protocol on the wire (`/imi/sync/1`).
//!
//! A request and its response are both a [`SyncBatch`]: for each document
//! that has something to say, the Automerge sync message, the signed heads
//! the other side lacks, and the counters of the signed heads the sender
//! holds (so the other side sends only newer ones).

use automerge::ChangeHash;
use imi_protocol::Country;
use serde::{Deserialize, Serialize};

use super::signed::SignedHeads;

/// Version of the batch encoding.
pub const SYNC_VERSION: u16 = 2;
/// Most documents in one batch (30 countries and the Commission).
pub const MAX_DOCS: usize = 32;
/// Most signed heads (or counters) per document in one batch.
pub const MAX_SIGNERS: usize = 64;
/// Most changes one sync message may carry.
const MAX_CHANGES: usize = 500_000;

/// One exchange of the directory's sync protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// [`SYNC_VERSION`].
    pub version: u16,
    /// One entry per document with something to say.
    pub docs: Vec<DocSync>,
    /// The sender had more to say than fits one batch: ask again.
    pub more: bool,
}

/// What a batch says about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocSync {
    /// The document's country.
    pub country: Country,
    /// The counter of each signer's heads the sender holds.
    pub known: Vec<([u8; 32], u64)>,
    /// Signed heads the receiver does not hold yet.
    pub signed: Vec<SignedHeads>,
    /// An encoded Automerge sync message (`automerge::sync::Message`).
    pub message: Option<Vec<u8>>,
}

/// A batch that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not a batch.
    #[error("the sync batch does not decode: {0}")]
    Decode(String),
    /// Another version of the protocol.
    #[error("the sync batch is of version {0}, this node speaks version {SYNC_VERSION}")]
    Version(u16),
    /// Over a limit.
    #[error("the sync batch is over a limit: {0}")]
    TooLarge(String),
    /// One document twice.
    #[error("the sync batch names the document of {0} twice")]
    Duplicate(Country),
}

impl SyncBatch {
    /// An empty batch of this version.
    pub fn new() -> SyncBatch {
        SyncBatch {
            version: SYNC_VERSION,
            docs: vec![],
            more: false,
        }
    }

    /// Whether it says nothing at all.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty() && !self.more
    }

    /// The bytes sent.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("sync batches always encode")
    }

    /// Reads a batch and checks its bounds.
    pub fn decode(bytes: &[u8]) -> Result<SyncBatch, BatchError> {
        let batch: SyncBatch =
            postcard::from_bytes(bytes).map_err(|e| BatchError::Decode(e.to_string()))?;
        if batch.version != SYNC_VERSION {
            return Err(BatchError::Version(batch.version));
        }
        if batch.docs.len() > MAX_DOCS {
            return Err(BatchError::TooLarge(format!(
                "{} documents, at most {MAX_DOCS}",
                batch.docs.len()
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for doc in &batch.docs {
            if !seen.insert(doc.country) {
                return Err(BatchError::Duplicate(doc.country));
            }
            if doc.known.len() > MAX_SIGNERS || doc.signed.len() > MAX_SIGNERS {
                return Err(BatchError::TooLarge(format!(
                    "more than {MAX_SIGNERS} signers for the document of {}",
                    doc.country
                )));
            }
        }
        Ok(batch)
    }
}

/// One change found in a sync message: its hash, its dependencies, and
/// where its bytes are.
#[derive(Debug, Clone)]
pub(crate) struct FoundChange {
    pub(crate) hash: ChangeHash,
    pub(crate) deps: Vec<ChangeHash>,
}

/// What a sync message's chunks hold.
#[derive(Debug, Default)]
pub(crate) struct Contents {
    pub(crate) changes: Vec<FoundChange>,
    /// Whole documents sent as one chunk, loaded (to take changes out of
    /// them when only part of them may be applied).
    pub(crate) documents: Vec<automerge::Automerge>,
    /// The chunk of each of `documents`, as received: a whole document in
    /// the format `Automerge::save` writes, so it can be stored as it is.
    pub(crate) document_chunks: Vec<Vec<u8>>,
    /// Change chunks, parsed.
    pub(crate) change_chunks: Vec<automerge::Change>,
}

/// A sync message's changes cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Not the Automerge binary format.
    #[error("a chunk of the sync message is not in the Automerge format: {0}")]
    Format(String),
    /// A kind of chunk the sync protocol does not send.
    #[error("a chunk of the sync message is of type {0}, which the directory does not accept")]
    Unsupported(u8),
    /// Over a limit.
    #[error("the sync message carries more than {MAX_CHANGES} changes")]
    TooMany,
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// Splits concatenated chunks (magic, checksum, type, LEB128 length, data).
pub(crate) fn split_chunks(mut bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, ChunkError> {
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 10 || bytes[..4] != MAGIC {
            return Err(ChunkError::Format("bad magic bytes".into()));
        }
        let kind = bytes[8];
        let mut len: u64 = 0;
        let mut shift = 0;
        let mut at = 9;
        loop {
            let Some(&byte) = bytes.get(at) else {
                return Err(ChunkError::Format("truncated length".into()));
            };
            if shift >= 64 {
                return Err(ChunkError::Format("length overflows".into()));
            }
            len |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| ChunkError::Format("truncated chunk".into()))?;
        chunks.push((kind, &bytes[..end]));
        bytes = &bytes[end..];
    }
    Ok(chunks)
}

/// Reads every change a sync message carries, without applying any.
pub(crate) fn read_contents(message_chunks: &[&[u8]]) -> Result<Contents, ChunkError> {
    let mut contents = Contents::default();
    for bytes in message_chunks {
        for (kind, chunk) in split_chunks(bytes)? {
            match kind {
                CHUNK_CHANGE | CHUNK_COMPRESSED => {
                    let change = automerge::Change::try_from(chunk)
                        .map_err(|e| ChunkError::Format(e.to_string()))?;
                    contents.changes.push(FoundChange {
                        hash: change.hash(),
                        deps: change.deps().to_vec(),
                    });
                    contents.change_chunks.push(change);
                }
                CHUNK_DOCUMENT => {
                    let doc = automerge::Automerge::load(chunk)
                        .map_err(|e| ChunkError::Format(e.to_string()))?;
                    for meta in doc.get_changes_meta(&[]) {
                        contents.changes.push(FoundChange {
                            hash: meta.hash,
                            deps: meta.deps,
                        });
                    }
                    contents.documents.push(doc);
                    contents.document_chunks.push(chunk.to_vec());
                }
                other => return Err(ChunkError::Unsupported(other)),
            }
            if contents.changes.len() > MAX_CHANGES {
                return Err(ChunkError::TooMany);
            }
        }
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    #[test]
    fn batches_round_trip_and_refuse_garbage() {
        let mut batch = SyncBatch::new();
        batch.docs.push(DocSync {
            country: Country::Pt,
            known: vec![([1; 32], 3)],
            signed: vec![],
            message: Some(vec![0x42, 0, 0, 0, 0]),
        });
        assert_eq!(SyncBatch::decode(&batch.encode()).unwrap(), batch);
        assert!(matches!(
            SyncBatch::decode(b"\xff\xff\xff"),
            Err(BatchError::Decode(_) | BatchError::Version(_))
        ));
        batch.docs.push(batch.docs[0].clone());
        assert_eq!(
            SyncBatch::decode(&batch.encode()),
            Err(BatchError::Duplicate(Country::Pt))
        );
    }

    #[test]
    fn chunks_of_changes_and_documents_are_read() {
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "a", 1).unwrap();
        tx.commit();
        let first = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "b", 2).unwrap();
        tx.commit();
        let changes = doc.get_changes(&[]);
        let mut joined = Vec::new();
        for change in &changes {
            joined.extend_from_slice(change.raw_bytes());
        }
        let contents = read_contents(&[&joined]).unwrap();
        assert_eq!(contents.changes.len(), 2);
        assert_eq!(contents.changes[1].deps, first);
        let saved = doc.save();
        let contents = read_contents(&[&saved]).unwrap();
        assert_eq!(contents.changes.len(), 2);
        assert_eq!(contents.documents.len(), 1);
        assert!(read_contents(&[&saved[..saved.len() - 1]]).is_err());
        assert!(read_contents(&[b"not a chunk at all"]).is_err());
    }
}
