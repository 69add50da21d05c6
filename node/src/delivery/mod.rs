//! Store-and-forward delivery of signed envelopes, with signed receipts.
//!
//! **Sending** ([`outbox`], [`scheduler`]). While holding the case's turn
//! ([`SendTurns`]), the caller seals the envelope with the case's next
//! sequence number ([`last_sequence`] + 1), then commits the state
//! transition and the envelope in one write ([`claim_sequence`] and
//! [`enqueue`] inside [`crate::store::Store::try_write`]; `Node::send` does
//! all of this), then hands the message to the
//! [`Delivery`] task. The task sends it over the deliver protocol ([`wire`])
//! and retries with exponential backoff and jitter until the recipient's
//! signed receipt arrives; the receipt is verified against the recipient's
//! certified key of its signing time ([`keys`]) and stored, and the message
//! leaves the outbox. At start-up everything still in the outbox is queued
//! again, so nothing committed is lost on a crash. Messages of one case to
//! one node travel one at a time, in sequence order; different cases travel
//! in parallel. A rejected message can be sealed again as a new message
//! ([`resend`]).
//!
//! **Receiving** ([`receiver`]). An envelope from an admitted peer is
//! verified, deduplicated, ordered by its per-case sequence and applied by
//! the [`Inbound`] handler inside the transaction that stores it with its
//! receipt. Every message a peer sends in its own name to this node uses up
//! its sequence number once receipted, accepted or rejected; a rejection is
//! stored on both sides with its reason, so one bad message never holds the
//! case's later messages back.
//!
//! **Reading** a case's messages, with their delivery state:
//! [`case_messages`] (both directions, rejections included) and
//! [`message`].

use imi_protocol::{CaseId, MessageId, MessageKind, NodeAddress};
use redb::{ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

pub mod keys;
pub mod outbox;
pub mod receiver;
pub mod scheduler;
pub mod wire;

pub use keys::{KeyRecord, PeerKeys};
pub use outbox::{
    CaseTurn, Queued, ResendError, SendTurns, claim_sequence, enqueue, last_sequence,
    last_sequence_in, resend,
};
pub use receiver::{Inbound, Receiver, Rejection};
pub use scheduler::{Delivery, Receipted};
pub use wire::{DeliverAnswer, MAX_BATCH, decode_batch, encode_batch};

/// Every message sent or received: message id → [`MessageRecord`].
pub(crate) const MESSAGES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("messages-1");
/// Messages waiting for their receipt: message id → `OutboxEntry`.
pub(crate) const OUTBOX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("outbox-1");
/// Receipts given for received messages: message id → receipt bytes.
pub(crate) const INBOX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("inbox-1");
/// Last sequence used up per (case, sender): case id ++ sender address → u64.
pub(crate) const INBOUND_SEQ: TableDefinition<'_, &[u8], u64> =
    TableDefinition::new("inbound-seq-1");
/// Last sequence assigned per (case, recipient): case id ++ recipient → u64.
pub(crate) const OUTBOUND_SEQ: TableDefinition<'_, &[u8], u64> =
    TableDefinition::new("outbound-seq-1");
/// Messages of each case: case id ++ message id → direction (1 out, 2 in).
pub(crate) const CASE_MESSAGES: TableDefinition<'_, &[u8], u8> =
    TableDefinition::new("case-messages-1");

/// Whether a message was sent or received here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Sent by this node.
    Outbound,
    /// Received by this node.
    Inbound,
}

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageStatus {
    /// Sent (or being sent), no receipt yet.
    Pending,
    /// The recipient accepted it (for received messages: we accepted it).
    Accepted,
    /// The recipient rejected it (for received messages: we rejected it),
    /// with the reason from the signed receipt.
    Rejected {
        /// Stable code (`"forbidden-transition"`).
        code: String,
        /// The recipient's sentence.
        reason: String,
    },
}

/// A stored message: the exact envelope bytes and, once there, the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Sent or received.
    pub direction: Direction,
    /// The case.
    pub case: CaseId,
    /// Its sequence within the case (per sender).
    pub sequence: u64,
    /// The recipient (outbound) or sender (inbound).
    pub peer: NodeAddress,
    /// What the body carries.
    pub kind: MessageKind,
    /// The exact signed bytes.
    pub envelope: Vec<u8>,
    /// The signed receipt, once given or received.
    pub receipt: Option<Vec<u8>>,
    /// Where it stands.
    pub status: MessageStatus,
    /// When it was stored here (ms since the epoch).
    pub stored_ms: u64,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn seq_key(case: CaseId, peer: &NodeAddress) -> Vec<u8> {
    let mut key = case.to_bytes().to_vec();
    key.extend_from_slice(peer.to_string().as_bytes());
    key
}

fn case_message_key(case: CaseId, message: MessageId) -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&case.to_bytes());
    key[16..].copy_from_slice(&message.to_bytes());
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records always encode")
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|err| StoreError::corrupt(what, err))
}

/// Creates every delivery table, so readers never meet a missing one.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(MESSAGES)?;
    tx.open_table(OUTBOX)?;
    tx.open_table(INBOX)?;
    tx.open_table(INBOUND_SEQ)?;
    tx.open_table(OUTBOUND_SEQ)?;
    tx.open_table(CASE_MESSAGES)?;
    keys::create_tables(tx)?;
    Ok(())
}

/// Reads one stored message.
pub fn message(store: &Store, id: MessageId) -> Result<Option<MessageRecord>, StoreError> {
    let read = store.read()?;
    let table = match read.open_table(MESSAGES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    table
        .get(id.to_bytes().as_slice())?
        .map(|v| decode("message", v.value()))
        .transpose()
}

/// Every stored message of `case`, oldest first, in both directions, each
/// with where it stands: pending, accepted, or rejected with the reason (a
/// message this node rejected is stored too).
pub fn case_messages(store: &Store, case: CaseId) -> Result<Vec<MessageRecord>, StoreError> {
    let read = store.read()?;
    let index = read.open_table(CASE_MESSAGES)?;
    let messages = read.open_table(MESSAGES)?;
    let start = case_message_key(case, MessageId::from_bytes([0; 16]));
    let end = case_message_key(case, MessageId::from_bytes([0xff; 16]));
    let mut out = Vec::new();
    for entry in index.range(start.as_slice()..=end.as_slice())? {
        let (key, _) = entry?;
        let id = &key.value()[16..];
        if let Some(value) = messages.get(id)? {
            out.push(decode("message", value.value())?);
        }
    }
    Ok(out)
}

/// Counts of the delivery tables, for status output and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryCounts {
    /// Messages stored (sent and received).
    pub messages: u64,
    /// Messages waiting for a receipt.
    pub outbox: u64,
    /// Messages received and receipted.
    pub inbox: u64,
}

/// Counts of the delivery tables.
pub fn counts(store: &Store) -> Result<DeliveryCounts, StoreError> {
    let read = store.read()?;
    Ok(DeliveryCounts {
        messages: read.open_table(MESSAGES)?.len()?,
        outbox: read.open_table(OUTBOX)?.len()?,
        inbox: read.open_table(INBOX)?.len()?,
    })
}
