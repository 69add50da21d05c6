//! Store-and-forward delivery of signed envelopes, with signed receipts.
//!
//! **Sending.** The caller commits a state transition and its outbound
//! envelope in one transaction ([`enqueue`] inside [`crate::store::Store::write`]),
//! then hands the message to the [`Delivery`] task. The task sends it over the
//! deliver protocol and retries with exponential backoff and jitter until the
//! recipient's signed receipt arrives; the receipt is verified against the
//! recipient's certified key and stored, and the message leaves the outbox.
//! At start-up everything still in the outbox is queued again, so nothing
//! committed is lost on a crash. Messages of one case to one node travel one
//! at a time, in sequence order; different cases travel in parallel.
//!
//! **Receiving.** An envelope from an admitted peer is verified (signature
//! over the exact bytes, sender = the peer that delivered it, addressed to
//! this node), deduplicated by message id (a duplicate gets the very same
//! receipt), ordered by its per-case sequence (an envelope that arrives early
//! is answered "retry later"), then applied by the [`Inbound`] handler inside
//! the transaction that stores it with its receipt. A message that fails a
//! check gets a signed rejection receipt naming the reason; nothing of the
//! case changes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use imi_protocol::{
    CaseId, Header, MessageId, MessageKind, NodeAddress, Opened, ReceiptBody, ReceiptOutcome,
    SenderKeys, SignedEnvelope, VerifyContext, VerifyError, open, open_receipt, peek_header,
    seal_receipt,
};
use rand::Rng;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::config::DeliveryConfig;
use crate::net::{AppProtocol, NetworkHandle, PeerIdentity};
use crate::store::{Store, StoreError};

/// Every message sent or received: message id → [`MessageRecord`].
pub(crate) const MESSAGES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("messages-1");
/// Messages waiting for their receipt: message id → [`OutboxEntry`].
pub(crate) const OUTBOX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("outbox-1");
/// Receipts given for received messages: message id → receipt bytes.
pub(crate) const INBOX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("inbox-1");
/// Last sequence applied per (case, sender): case id ++ sender address → u64.
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
    /// The recipient rejected it, with the reason from its signed receipt.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OutboxEntry {
    to: NodeAddress,
    case: CaseId,
    sequence: u64,
}

/// The answer on the deliver protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeliverAnswer {
    /// A signed receipt (accepted or rejected).
    Receipt(Vec<u8>),
    /// Not now (an earlier message of the case is missing); send again later.
    Retry {
        /// Why.
        reason: String,
    },
    /// The bytes could not even be read as an envelope; no receipt can name them.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// Envelopes sent in one request at most.
pub const MAX_BATCH: usize = 128;
/// Requests in flight to one node at once; messages that become ready
/// meanwhile wait and go together in the next request.
const MAX_BATCHES_IN_FLIGHT: usize = 4;

/// Frames envelopes for one request on the deliver protocol: each as a
/// 4-byte little-endian length and its exact bytes.
pub fn encode_batch<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for envelope in envelopes {
        out.extend_from_slice(&(envelope.len() as u32).to_le_bytes());
        out.extend_from_slice(envelope);
    }
    out
}

/// The envelopes of a request framed by [`encode_batch`].
pub fn decode_batch(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if out.len() == MAX_BATCH {
            return Err(format!("more than {MAX_BATCH} envelopes in one request"));
        }
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err("a batch ends inside a length".into());
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err("a batch ends inside an envelope".into());
        }
        out.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    if out.is_empty() {
        return Err("an empty batch".into());
    }
    Ok(out)
}

/// Why an inbound message was not applied: goes into the rejection receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    /// Stable short code (`"forbidden-transition"`).
    pub code: String,
    /// A sentence for the sender's official.
    pub reason: String,
}

impl Rejection {
    /// A rejection with `code` and `reason`.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

/// What the node does with a verified, in-order, first-seen message.
pub trait Inbound: Send + Sync + 'static {
    /// The body type carried by envelopes.
    type Body: Serialize + DeserializeOwned + Send + 'static;

    /// Applies the message inside `tx`. On `Err` nothing may have been
    /// written (check first, then write).
    fn apply(&self, tx: &WriteTransaction, message: &Opened<Self::Body>) -> Result<(), Rejection>;

    /// Called once the node runs, with what the application needs to send
    /// messages of its own (the sequencer's fan-out of a case log).
    fn started(&self, _outlet: crate::node::Outlet) {}

    /// Called when the node stops, before its store closes.
    fn stopping(&self) {}
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
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
    Ok(())
}

/// The next sequence number of `case` towards `to`; call inside the write
/// that enqueues the message.
pub fn next_sequence(
    tx: &WriteTransaction,
    case: CaseId,
    to: &NodeAddress,
) -> Result<u64, StoreError> {
    let key = seq_key(case, to);
    let mut table = tx.open_table(OUTBOUND_SEQ)?;
    let next = table.get(key.as_slice())?.map(|v| v.value()).unwrap_or(0) + 1;
    table.insert(key.as_slice(), next)?;
    Ok(next)
}

/// A message queued for delivery, handed to [`Delivery::enqueued`] after
/// the transaction that stored it committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The message.
    pub id: MessageId,
    /// Its recipient.
    pub to: NodeAddress,
    /// Its case.
    pub case: CaseId,
    /// Its sequence within the case.
    pub sequence: u64,
}

/// Stores `envelope` as an outbound message to `to` and puts it in the
/// outbox, inside the caller's transaction.
pub fn enqueue(
    tx: &WriteTransaction,
    to: &NodeAddress,
    envelope: &SignedEnvelope,
) -> Result<Queued, StoreError> {
    let header = envelope.header();
    let id = header.id.to_bytes();
    let record = MessageRecord {
        direction: Direction::Outbound,
        case: header.case,
        sequence: header.sequence,
        peer: to.clone(),
        kind: header.kind,
        envelope: envelope.as_bytes().to_vec(),
        receipt: None,
        status: MessageStatus::Pending,
        stored_ms: now_ms(),
    };
    tx.open_table(MESSAGES)?
        .insert(id.as_slice(), encode(&record).as_slice())?;
    let entry = OutboxEntry {
        to: to.clone(),
        case: header.case,
        sequence: header.sequence,
    };
    tx.open_table(OUTBOX)?
        .insert(id.as_slice(), encode(&entry).as_slice())?;
    tx.open_table(CASE_MESSAGES)?
        .insert(case_message_key(header.case, header.id).as_slice(), 1u8)?;
    Ok(Queued {
        id: header.id,
        to: to.clone(),
        case: header.case,
        sequence: header.sequence,
    })
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

/// Every stored message of `case`, oldest first.
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

/// The keys of admitted peers, by node address, from their certificates.
#[derive(Debug, Clone, Default)]
pub struct PeerKeys(Arc<RwLock<HashMap<NodeAddress, VerifyingKey>>>);

impl PeerKeys {
    /// Records the certified key of an admitted peer.
    pub fn insert(&self, address: NodeAddress, key: VerifyingKey) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(address, key);
    }

    /// Forgets a peer (revoked).
    pub fn remove(&self, address: &NodeAddress) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(address);
    }

    fn get(&self, address: &NodeAddress) -> Option<VerifyingKey> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
            .copied()
    }
}

impl SenderKeys for PeerKeys {
    fn key_of(&self, sender: &NodeAddress) -> Option<VerifyingKey> {
        self.get(sender)
    }
}

/// The receiving half: checks, deduplicates, orders and applies envelopes.
pub struct Receiver<I: Inbound> {
    store: Store,
    me: NodeAddress,
    key: Arc<SigningKey>,
    keys: PeerKeys,
    inbound: Arc<I>,
}

impl<I: Inbound> Clone for Receiver<I> {
    fn clone(&self) -> Self {
        Receiver {
            store: self.store.clone(),
            me: self.me.clone(),
            key: Arc::clone(&self.key),
            keys: self.keys.clone(),
            inbound: Arc::clone(&self.inbound),
        }
    }
}

impl<I: Inbound> Receiver<I> {
    /// A receiver for node `me`, signing receipts with `key`.
    pub fn new(
        store: Store,
        me: NodeAddress,
        key: Arc<SigningKey>,
        keys: PeerKeys,
        inbound: Arc<I>,
    ) -> Self {
        Receiver {
            store,
            me,
            key,
            keys,
            inbound,
        }
    }

    /// The store messages are kept in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn receipt(&self, header: &Header, digest: [u8; 32], outcome: ReceiptOutcome) -> Vec<u8> {
        let body = ReceiptBody::new(header, digest, self.me.clone(), now_ms(), outcome);
        seal_receipt(body, &self.key)
            .map(|r| r.into_bytes())
            .unwrap_or_default()
    }

    /// Handles a request on the deliver protocol (envelopes framed by
    /// [`encode_batch`]) and returns the encoded answers, one per envelope.
    pub async fn receive_request(&self, from: &PeerIdentity, request: &[u8]) -> Vec<u8> {
        let answers = match decode_batch(request) {
            Ok(envelopes) => self.receive_batch(from, envelopes).await,
            Err(reason) => {
                warn!(peer = %from.address, %reason, "unreadable delivery request");
                vec![DeliverAnswer::Unreadable { reason }]
            }
        };
        postcard::to_stdvec(&answers).unwrap_or_default()
    }

    /// Handles envelopes delivered together by `from`: each is verified,
    /// then all verified ones are applied in one write. Answers come in the
    /// order of the envelopes.
    pub async fn receive_batch(
        &self,
        from: &PeerIdentity,
        envelopes: Vec<Vec<u8>>,
    ) -> Vec<DeliverAnswer> {
        let from_address = &from.address;
        let mut answers: Vec<Option<DeliverAnswer>> = Vec::with_capacity(envelopes.len());
        let mut to_apply = Vec::new();
        for (i, bytes) in envelopes.into_iter().enumerate() {
            let verified = {
                let ctx = VerifyContext::new(&self.me, &self.keys);
                open::<I::Body>(&bytes, &ctx)
            };
            let opened = match verified {
                Ok(opened) => opened,
                Err(err) => {
                    answers.push(Some(self.refuse_unverified(from_address, &bytes, &err)));
                    continue;
                }
            };
            if opened.header.sender != *from_address {
                let header = &opened.header;
                warn!(peer = %from_address, sender = %header.sender, id = %header.id, "envelope relayed by another node, rejecting");
                let outcome = ReceiptOutcome::Rejected {
                    code: "relayed".into(),
                    reason: format!(
                        "the envelope was signed by {} but delivered by {}; nodes deliver only their own messages",
                        header.sender, from_address
                    ),
                };
                answers.push(Some(DeliverAnswer::Receipt(self.receipt(
                    header,
                    opened.digest,
                    outcome,
                ))));
                continue;
            }
            answers.push(None);
            to_apply.push((i, opened, bytes));
        }
        if !to_apply.is_empty() {
            let indices: Vec<usize> = to_apply.iter().map(|(i, _, _)| *i).collect();
            let this = self.clone();
            let result = self
                .store
                .write(move |tx| {
                    Ok(to_apply
                        .into_iter()
                        .map(|(i, opened, bytes)| (i, this.apply_in(tx, opened, bytes)))
                        .collect::<Vec<_>>())
                })
                .await;
            let retry = || DeliverAnswer::Retry {
                reason: "the receiving node could not store the message; try again".into(),
            };
            match result {
                Ok(applied) => {
                    for (i, answer) in applied {
                        answers[i] = Some(answer.unwrap_or_else(|err| {
                            warn!(error = %err, "storing an inbound envelope failed");
                            retry()
                        }));
                    }
                }
                Err(err) => {
                    warn!(error = %err, messages = indices.len(), "storing inbound envelopes failed");
                    for i in indices {
                        answers[i] = Some(retry());
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every envelope answered"))
            .collect()
    }

    fn refuse_unverified(
        &self,
        from: &NodeAddress,
        bytes: &[u8],
        err: &VerifyError,
    ) -> DeliverAnswer {
        warn!(peer = %from, code = err.code(), error = %err, "envelope refused");
        match peek_header(bytes) {
            Ok(header) => {
                let digest = imi_protocol::wire_digest(bytes);
                DeliverAnswer::Receipt(self.receipt(&header, digest, ReceiptOutcome::rejected(err)))
            }
            Err(_) => DeliverAnswer::Unreadable {
                reason: err.to_string(),
            },
        }
    }

    fn apply_in(
        &self,
        tx: &WriteTransaction,
        opened: Opened<I::Body>,
        bytes: Vec<u8>,
    ) -> Result<DeliverAnswer, StoreError> {
        let header = &opened.header;
        let id = header.id.to_bytes();
        // A duplicate gets the very same receipt.
        if let Some(receipt) = tx.open_table(INBOX)?.get(id.as_slice())? {
            debug!(id = %header.id, sender = %header.sender, "duplicate envelope, answering with the stored receipt");
            return Ok(DeliverAnswer::Receipt(receipt.value().to_vec()));
        }
        let seq_key = seq_key(header.case, &header.sender);
        let last = tx
            .open_table(INBOUND_SEQ)?
            .get(seq_key.as_slice())?
            .map(|v| v.value())
            .unwrap_or(0);
        if header.sequence > last + 1 {
            return Ok(DeliverAnswer::Retry {
                reason: format!(
                    "message {} of case {} arrived before message {}",
                    header.sequence,
                    header.case,
                    last + 1
                ),
            });
        }
        let outcome = if header.sequence <= last {
            warn!(id = %header.id, case = %header.case, sequence = header.sequence, last, "stale sequence, rejecting");
            ReceiptOutcome::Rejected {
                code: "stale-sequence".into(),
                reason: format!(
                    "message {} of case {} was already applied; a replayed or re-numbered message is not applied again",
                    header.sequence, header.case
                ),
            }
        } else {
            match self.inbound.apply(tx, &opened) {
                Ok(()) => ReceiptOutcome::Accepted,
                Err(rejection) => {
                    warn!(id = %header.id, case = %header.case, code = %rejection.code, reason = %rejection.reason, "message rejected");
                    ReceiptOutcome::Rejected {
                        code: rejection.code,
                        reason: rejection.reason,
                    }
                }
            }
        };
        let accepted = outcome.is_accepted();
        let status = match &outcome {
            ReceiptOutcome::Accepted => MessageStatus::Accepted,
            ReceiptOutcome::Rejected { code, reason } => MessageStatus::Rejected {
                code: code.clone(),
                reason: reason.clone(),
            },
        };
        let receipt = self.receipt(header, opened.digest, outcome);
        if header.sequence == last + 1 {
            // Accepted or rejected, the sequence number is used up, so the
            // sender's later messages of the case are not held back.
            tx.open_table(INBOUND_SEQ)?
                .insert(seq_key.as_slice(), header.sequence)?;
            tx.open_table(INBOX)?
                .insert(id.as_slice(), receipt.as_slice())?;
            if accepted {
                let record = MessageRecord {
                    direction: Direction::Inbound,
                    case: header.case,
                    sequence: header.sequence,
                    peer: header.sender.clone(),
                    kind: header.kind,
                    envelope: bytes,
                    receipt: Some(receipt.clone()),
                    status,
                    stored_ms: now_ms(),
                };
                tx.open_table(MESSAGES)?
                    .insert(id.as_slice(), encode(&record).as_slice())?;
                tx.open_table(CASE_MESSAGES)?
                    .insert(case_message_key(header.case, header.id).as_slice(), 2u8)?;
            }
        }
        Ok(DeliverAnswer::Receipt(receipt))
    }
}

enum Command {
    Enqueued(Vec<Queued>),
    PeerUp(NodeAddress, VerifyingKey),
    PeerDown(NodeAddress),
    Shutdown,
}

/// The sending half: a task that empties the outbox.
#[derive(Clone)]
pub struct Delivery {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

/// What happened to a message on one attempt.
enum Attempt {
    Done(MessageStatus),
    Retry(String),
}

type QueueKey = (NodeAddress, CaseId);
type Sent = (NodeAddress, Vec<(QueueKey, MessageId, Attempt)>);
type Sending = std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + Send>>;

impl Delivery {
    /// Starts the delivery task and queues everything in the outbox.
    pub fn start(
        store: Store,
        net: NetworkHandle,
        config: DeliveryConfig,
    ) -> Result<(Delivery, tokio::task::JoinHandle<()>), StoreError> {
        let pending = load_outbox(&store)?;
        if !pending.is_empty() {
            info!(messages = pending.len(), "resuming delivery of the outbox");
        }
        let (commands, rx) = mpsc::channel(4096);
        let mut task = DeliveryTask {
            store,
            net,
            config,
            commands: rx,
            queues: HashMap::new(),
            connected: HashMap::new(),
            in_flight: HashSet::new(),
            in_flight_per_peer: HashMap::new(),
            batches_in_flight: HashMap::new(),
            ready: VecDeque::new(),
            parked: HashMap::new(),
            retries: BinaryHeap::new(),
            attempts: HashMap::new(),
        };
        task.add(pending);
        let handle = tokio::spawn(async move { task.run().await });
        Ok((Delivery { commands }, handle))
    }

    /// Stops the task (messages stay in the outbox).
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// Hands messages to the task once their transaction committed.
    pub async fn enqueued(&self, queued: Vec<Queued>) {
        let _ = self.commands.send(Command::Enqueued(queued)).await;
    }

    /// A peer was admitted: deliver what waits for it now.
    pub async fn peer_up(&self, address: NodeAddress, key: VerifyingKey) {
        let _ = self.commands.send(Command::PeerUp(address, key)).await;
    }

    /// A peer left.
    pub async fn peer_down(&self, address: NodeAddress) {
        let _ = self.commands.send(Command::PeerDown(address)).await;
    }
}

fn load_outbox(store: &Store) -> Result<Vec<Queued>, StoreError> {
    let read = store.read()?;
    let outbox = read.open_table(OUTBOX)?;
    let mut out = Vec::new();
    for entry in outbox.iter()? {
        let (key, value) = entry?;
        let entry: OutboxEntry = decode("outbox entry", value.value())?;
        let id: [u8; 16] = key
            .value()
            .try_into()
            .map_err(|_| StoreError::corrupt("outbox key", "not 16 bytes"))?;
        out.push(Queued {
            id: MessageId::from_bytes(id),
            to: entry.to,
            case: entry.case,
            sequence: entry.sequence,
        });
    }
    out.sort_by_key(|q| (q.case, q.sequence));
    Ok(out)
}

struct DeliveryTask {
    store: Store,
    net: NetworkHandle,
    config: DeliveryConfig,
    commands: mpsc::Receiver<Command>,
    /// Per (recipient, case): messages in sequence order.
    queues: HashMap<QueueKey, VecDeque<Queued>>,
    connected: HashMap<NodeAddress, VerifyingKey>,
    in_flight: HashSet<QueueKey>,
    in_flight_per_peer: HashMap<NodeAddress, usize>,
    /// Requests (batches of messages) in flight per peer.
    batches_in_flight: HashMap<NodeAddress, usize>,
    /// Queues whose head may be sendable now.
    ready: VecDeque<QueueKey>,
    /// Queues waiting for their peer to connect or for room in flight.
    parked: HashMap<NodeAddress, Vec<QueueKey>>,
    retries: BinaryHeap<Reverse<(Instant, QueueKey)>>,
    attempts: HashMap<QueueKey, u32>,
}

impl DeliveryTask {
    fn add(&mut self, queued: Vec<Queued>) {
        for q in queued {
            let key = (q.to.clone(), q.case);
            let queue = self.queues.entry(key.clone()).or_default();
            let was_empty = queue.is_empty();
            // Keep sequence order even if messages are handed over out of order.
            let pos = queue.partition_point(|m| m.sequence < q.sequence);
            if queue.get(pos).is_some_and(|m| m.id == q.id) {
                continue;
            }
            queue.insert(pos, q);
            if was_empty {
                self.ready.push_back(key);
            }
        }
    }

    async fn run(&mut self) {
        let mut sends = FuturesUnordered::new();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.pump(&mut sends);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Enqueued(queued)) => self.add(queued),
                    Some(Command::PeerUp(address, key)) => {
                        self.connected.insert(address.clone(), key);
                        // Deliver promptly to a peer that came back.
                        let now = Instant::now();
                        let waiting: Vec<QueueKey> = self.attempts.keys().filter(|k| k.0 == address).cloned().collect();
                        for key in waiting {
                            self.attempts.insert(key.clone(), 0);
                            self.retries.push(Reverse((now, key)));
                        }
                        if let Some(parked) = self.parked.remove(&address) {
                            self.ready.extend(parked);
                        }
                    }
                    Some(Command::PeerDown(address)) => {
                        self.connected.remove(&address);
                    }
                    Some(Command::Shutdown) | None => return,
                },
                Some((peer, results)) = sends.next(), if !sends.is_empty() => {
                    if let Some(n) = self.batches_in_flight.get_mut(&peer) {
                        *n = n.saturating_sub(1);
                    }
                    for (key, id, attempt) in results {
                        self.finish(key, id, attempt);
                    }
                    if let Some(parked) = self.parked.remove(&peer) {
                        self.ready.extend(parked);
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    while let Some(Reverse((at, _))) = self.retries.peek() {
                        if *at > now {
                            break;
                        }
                        let Some(Reverse((_, key))) = self.retries.pop() else { break };
                        self.ready.push_back(key);
                    }
                }
            }
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.config.initial_backoff();
        let max = self.config.max_backoff();
        let exp = base.saturating_mul(1u32 << attempts.min(16));
        let capped = exp.min(max);
        // Full jitter between half and the whole delay.
        let jitter = rand::rng().random_range(0.5..=1.0);
        capped.mul_f64(jitter)
    }

    fn finish(&mut self, key: QueueKey, id: MessageId, attempt: Attempt) {
        self.in_flight.remove(&key);
        if let Some(n) = self.in_flight_per_peer.get_mut(&key.0) {
            *n = n.saturating_sub(1);
        }
        if let Some(parked) = self.parked.remove(&key.0) {
            self.ready.extend(parked);
        }
        match attempt {
            Attempt::Done(status) => {
                self.attempts.remove(&key);
                if let MessageStatus::Rejected { code, reason } = &status {
                    warn!(to = %key.0, case = %key.1, %id, %code, %reason, "recipient rejected the message");
                }
                if let Some(queue) = self.queues.get_mut(&key) {
                    if queue.front().is_some_and(|m| m.id == id) {
                        queue.pop_front();
                    }
                    if queue.is_empty() {
                        self.queues.remove(&key);
                    } else {
                        self.ready.push_back(key);
                    }
                }
            }
            Attempt::Retry(reason) => {
                let attempts = self.attempts.entry(key.clone()).or_insert(0);
                *attempts += 1;
                let n = *attempts;
                let delay = self.backoff(n - 1);
                debug!(to = %key.0, case = %key.1, %id, attempt = n, delay_ms = delay.as_millis() as u64, %reason, "delivery will be retried");
                self.retries.push(Reverse((Instant::now() + delay, key)));
            }
        }
    }

    fn pump(&mut self, sends: &mut FuturesUnordered<Sending>) {
        // The sendable queue heads, per peer, in the order they became ready.
        let mut by_peer: Vec<(NodeAddress, Vec<(QueueKey, Queued)>)> = Vec::new();
        while let Some(key) = self.ready.pop_front() {
            if self.in_flight.contains(&key) {
                continue;
            }
            let Some(head) = self.queues.get(&key).and_then(|q| q.front()).cloned() else {
                continue;
            };
            if !self.connected.contains_key(&key.0) {
                self.parked.entry(key.0.clone()).or_default().push(key);
                continue;
            }
            match by_peer.iter_mut().find(|(peer, _)| *peer == key.0) {
                Some((_, heads)) => heads.push((key, head)),
                None => by_peer.push((key.0.clone(), vec![(key, head)])),
            }
        }
        for (peer, heads) in by_peer {
            let peer_key = self.connected[&peer];
            let mut heads = heads.into_iter().peekable();
            while heads.peek().is_some() {
                let in_flight = self.in_flight_per_peer.get(&peer).copied().unwrap_or(0);
                let batches = self.batches_in_flight.get(&peer).copied().unwrap_or(0);
                let room = self
                    .config
                    .max_in_flight_per_peer
                    .saturating_sub(in_flight)
                    .min(MAX_BATCH);
                if batches >= MAX_BATCHES_IN_FLIGHT || room == 0 {
                    // Sent with the next request, once one comes back.
                    self.parked
                        .entry(peer.clone())
                        .or_default()
                        .extend(heads.by_ref().map(|(key, _)| key));
                    break;
                }
                let batch: Vec<(QueueKey, Queued)> = heads.by_ref().take(room).collect();
                *self.in_flight_per_peer.entry(peer.clone()).or_insert(0) += batch.len();
                *self.batches_in_flight.entry(peer.clone()).or_insert(0) += 1;
                for (key, _) in &batch {
                    self.in_flight.insert(key.clone());
                }
                let store = self.store.clone();
                let net = self.net.clone();
                let to = peer.clone();
                sends.push(Box::pin(async move {
                    let results = send_batch(&store, &net, &to, batch, &peer_key).await;
                    (to, results)
                }));
            }
        }
    }
}

/// Reads the stored records of `ids` in one snapshot.
fn records(store: &Store, ids: &[MessageId]) -> Result<Vec<Option<MessageRecord>>, StoreError> {
    let read = store.read()?;
    let table = read.open_table(MESSAGES)?;
    ids.iter()
        .map(|id| {
            table
                .get(id.to_bytes().as_slice())?
                .map(|v| decode("message", v.value()))
                .transpose()
        })
        .collect()
}

/// Sends the heads of several queues to `to` in one request and stores the
/// receipts that come back (lazily: see [`Store::write_lazy`]).
async fn send_batch(
    store: &Store,
    net: &NetworkHandle,
    to: &NodeAddress,
    batch: Vec<(QueueKey, Queued)>,
    peer_key: &VerifyingKey,
) -> Vec<(QueueKey, MessageId, Attempt)> {
    let ids: Vec<MessageId> = batch.iter().map(|(_, q)| q.id).collect();
    let mut outcomes: Vec<Option<Attempt>> = Vec::with_capacity(batch.len());
    let mut sending: Vec<(usize, MessageRecord)> = Vec::new();
    match records(store, &ids) {
        Err(err) => {
            outcomes.extend(ids.iter().map(|_| Some(Attempt::Retry(err.to_string()))));
        }
        Ok(stored) => {
            for (i, record) in stored.into_iter().enumerate() {
                match record {
                    // Gone (cannot happen while in the outbox): nothing to send.
                    None => outcomes.push(Some(Attempt::Done(MessageStatus::Pending))),
                    // Receipted already (the outbox entry went in the same write).
                    Some(record) if record.receipt.is_some() => {
                        outcomes.push(Some(Attempt::Done(record.status)))
                    }
                    Some(record) => {
                        outcomes.push(None);
                        sending.push((i, record));
                    }
                }
            }
        }
    }
    if !sending.is_empty() {
        let request = encode_batch(sending.iter().map(|(_, r)| r.envelope.as_slice()));
        let answers = match net
            .request(AppProtocol::Deliver, &to.to_string(), request)
            .await
        {
            Ok(answer) => postcard::from_bytes::<Vec<DeliverAnswer>>(&answer)
                .map_err(|err| format!("unreadable answer: {err}"))
                .and_then(|answers| {
                    if answers.len() == sending.len() {
                        Ok(answers)
                    } else {
                        Err(format!(
                            "{} answers to {} envelopes",
                            answers.len(),
                            sending.len()
                        ))
                    }
                }),
            Err(err) => Err(err.to_string()),
        };
        match answers {
            Err(reason) => {
                for (i, _) in &sending {
                    outcomes[*i] = Some(Attempt::Retry(reason.clone()));
                }
            }
            Ok(answers) => {
                let mut receipts = Vec::new();
                for ((i, record), answer) in sending.into_iter().zip(answers) {
                    let q = &batch[i].1;
                    match check_answer(q, &record, answer, peer_key) {
                        Ok((status, receipt)) => receipts.push((i, q.id, status, receipt)),
                        Err(attempt) => outcomes[i] = Some(attempt),
                    }
                }
                store_receipts(store, receipts, &mut outcomes).await;
            }
        }
    }
    batch
        .into_iter()
        .zip(outcomes)
        .map(|((key, q), outcome)| {
            let outcome = outcome.unwrap_or_else(|| Attempt::Retry("no answer".into()));
            (key, q.id, outcome)
        })
        .collect()
}

/// Stores verified receipts and takes their messages out of the outbox.
///
/// Lazily: after a crash the messages are still in the outbox, are sent
/// again, and the recipient answers each duplicate with this very receipt.
async fn store_receipts(
    store: &Store,
    receipts: Vec<(usize, MessageId, MessageStatus, Vec<u8>)>,
    outcomes: &mut [Option<Attempt>],
) {
    if receipts.is_empty() {
        return;
    }
    let done: Vec<(usize, MessageStatus)> = receipts
        .iter()
        .map(|(i, _, status, _)| (*i, status.clone()))
        .collect();
    let result = store
        .write_lazy(move |tx| {
            let mut messages = tx.open_table(MESSAGES)?;
            let mut outbox = tx.open_table(OUTBOX)?;
            for (_, id, status, receipt) in receipts {
                let key = id.to_bytes();
                let record = messages
                    .get(key.as_slice())?
                    .map(|v| decode::<MessageRecord>("message", v.value()))
                    .transpose()?;
                if let Some(mut record) = record {
                    record.receipt = Some(receipt);
                    record.status = status;
                    messages.insert(key.as_slice(), encode(&record).as_slice())?;
                }
                outbox.remove(key.as_slice())?;
            }
            Ok(())
        })
        .await;
    for (i, status) in done {
        outcomes[i] = Some(match &result {
            Ok(()) => Attempt::Done(status),
            Err(err) => Attempt::Retry(format!("storing the receipt failed: {err}")),
        });
    }
}

/// Checks the recipient's answer to one envelope: a signed receipt for
/// exactly that envelope, from the recipient.
fn check_answer(
    q: &Queued,
    record: &MessageRecord,
    answer: DeliverAnswer,
    peer_key: &VerifyingKey,
) -> Result<(MessageStatus, Vec<u8>), Attempt> {
    let receipt_bytes = match answer {
        DeliverAnswer::Receipt(bytes) => bytes,
        DeliverAnswer::Retry { reason } => return Err(Attempt::Retry(reason)),
        DeliverAnswer::Unreadable { reason } => {
            warn!(to = %q.to, id = %q.id, %reason, "recipient could not read our envelope");
            return Err(Attempt::Retry(reason));
        }
    };
    let receipt = match open_receipt(&receipt_bytes, peer_key) {
        Ok(receipt) => receipt,
        Err(err) => {
            warn!(to = %q.to, id = %q.id, error = %err, "invalid receipt");
            return Err(Attempt::Retry(format!("invalid receipt: {err}")));
        }
    };
    let sent = match SignedEnvelope::from_bytes(record.envelope.clone()) {
        Ok(sent) => sent,
        Err(err) => {
            return Err(Attempt::Done(MessageStatus::Rejected {
                code: "corrupt".into(),
                reason: err.to_string(),
            }));
        }
    };
    if let Err(err) = receipt.check_matches(&sent) {
        warn!(to = %q.to, id = %q.id, error = %err, "receipt does not match the message");
        return Err(Attempt::Retry(format!("receipt does not match: {err}")));
    }
    if receipt.receiver != q.to {
        return Err(Attempt::Retry(format!(
            "receipt signed for {} instead of {}",
            receipt.receiver, q.to
        )));
    }
    let status = match &receipt.outcome {
        ReceiptOutcome::Accepted => MessageStatus::Accepted,
        ReceiptOutcome::Rejected { code, reason } => MessageStatus::Rejected {
            code: code.clone(),
            reason: reason.clone(),
        },
    };
    Ok((status, receipt_bytes))
}
