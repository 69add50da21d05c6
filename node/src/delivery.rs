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

    /// Handles envelope `bytes` delivered by the admitted peer `from`, and
    /// returns the answer to send back.
    pub async fn receive(&self, from: &PeerIdentity, bytes: Vec<u8>) -> DeliverAnswer {
        let from_address = from.address.clone();
        let verified = {
            let ctx = VerifyContext::new(&self.me, &self.keys);
            open::<I::Body>(&bytes, &ctx)
        };
        let opened = match verified {
            Ok(opened) => opened,
            Err(err) => return self.refuse_unverified(&from_address, &bytes, &err),
        };
        let header = opened.header.clone();
        if header.sender != from_address {
            warn!(peer = %from_address, sender = %header.sender, id = %header.id, "envelope relayed by another node, rejecting");
            let outcome = ReceiptOutcome::Rejected {
                code: "relayed".into(),
                reason: format!(
                    "the envelope was signed by {} but delivered by {}; nodes deliver only their own messages",
                    header.sender, from_address
                ),
            };
            return DeliverAnswer::Receipt(self.receipt(&header, opened.digest, outcome));
        }
        let this = self.clone();
        let result = self
            .store
            .write(move |tx| this.apply_in(tx, opened, bytes))
            .await;
        match result {
            Ok(answer) => answer,
            Err(err) => {
                warn!(error = %err, id = %header.id, "storing an inbound envelope failed");
                DeliverAnswer::Retry {
                    reason: "the receiving node could not store the message; try again".into(),
                }
            }
        }
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
type Sending =
    std::pin::Pin<Box<dyn std::future::Future<Output = (QueueKey, MessageId, Attempt)> + Send>>;

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
                Some((key, id, attempt)) = sends.next(), if !sends.is_empty() => {
                    self.finish(key, id, attempt);
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
        while let Some(key) = self.ready.pop_front() {
            if self.in_flight.contains(&key) {
                continue;
            }
            let Some(head) = self.queues.get(&key).and_then(|q| q.front()).cloned() else {
                continue;
            };
            let Some(peer_key) = self.connected.get(&key.0).copied() else {
                self.parked.entry(key.0.clone()).or_default().push(key);
                continue;
            };
            let in_flight = self.in_flight_per_peer.entry(key.0.clone()).or_insert(0);
            if *in_flight >= self.config.max_in_flight_per_peer {
                self.parked.entry(key.0.clone()).or_default().push(key);
                continue;
            }
            *in_flight += 1;
            self.in_flight.insert(key.clone());
            let store = self.store.clone();
            let net = self.net.clone();
            sends.push(Box::pin(async move {
                let attempt = send_one(&store, &net, &head, &peer_key).await;
                (key, head.id, attempt)
            }));
        }
    }
}

async fn send_one(
    store: &Store,
    net: &NetworkHandle,
    q: &Queued,
    peer_key: &VerifyingKey,
) -> Attempt {
    let record = match message(store, q.id) {
        Ok(Some(record)) => record,
        Ok(None) => return Attempt::Done(MessageStatus::Pending),
        Err(err) => return Attempt::Retry(err.to_string()),
    };
    if record.receipt.is_some() {
        // Receipted already (the outbox entry was removed in the same write).
        return Attempt::Done(record.status);
    }
    let answer = match net
        .request(
            AppProtocol::Deliver,
            &q.to.to_string(),
            record.envelope.clone(),
        )
        .await
    {
        Ok(answer) => answer,
        Err(err) => return Attempt::Retry(err.to_string()),
    };
    let answer: DeliverAnswer = match postcard::from_bytes(&answer) {
        Ok(answer) => answer,
        Err(err) => return Attempt::Retry(format!("unreadable answer: {err}")),
    };
    let receipt_bytes = match answer {
        DeliverAnswer::Receipt(bytes) => bytes,
        DeliverAnswer::Retry { reason } => return Attempt::Retry(reason),
        DeliverAnswer::Unreadable { reason } => {
            warn!(to = %q.to, id = %q.id, %reason, "recipient could not read our envelope");
            return Attempt::Retry(reason);
        }
    };
    let receipt = match open_receipt(&receipt_bytes, peer_key) {
        Ok(receipt) => receipt,
        Err(err) => {
            warn!(to = %q.to, id = %q.id, error = %err, "invalid receipt");
            return Attempt::Retry(format!("invalid receipt: {err}"));
        }
    };
    let sent = match SignedEnvelope::from_bytes(record.envelope.clone()) {
        Ok(sent) => sent,
        Err(err) => {
            return Attempt::Done(MessageStatus::Rejected {
                code: "corrupt".into(),
                reason: err.to_string(),
            });
        }
    };
    if let Err(err) = receipt.check_matches(&sent) {
        warn!(to = %q.to, id = %q.id, error = %err, "receipt does not match the message");
        return Attempt::Retry(format!("receipt does not match: {err}"));
    }
    if receipt.receiver != q.to {
        return Attempt::Retry(format!(
            "receipt signed for {} instead of {}",
            receipt.receiver, q.to
        ));
    }
    let status = match &receipt.outcome {
        ReceiptOutcome::Accepted => MessageStatus::Accepted,
        ReceiptOutcome::Rejected { code, reason } => MessageStatus::Rejected {
            code: code.clone(),
            reason: reason.clone(),
        },
    };
    let id = q.id;
    let stored_status = status.clone();
    // Lazy: after a crash the message is still in the outbox, is sent again
    // and the recipient answers the duplicate with this very receipt.
    let result = store
        .write_lazy(move |tx| {
            let key = id.to_bytes();
            let mut messages = tx.open_table(MESSAGES)?;
            let record = messages
                .get(key.as_slice())?
                .map(|v| decode::<MessageRecord>("message", v.value()))
                .transpose()?;
            if let Some(mut record) = record {
                record.receipt = Some(receipt_bytes);
                record.status = stored_status;
                messages.insert(key.as_slice(), encode(&record).as_slice())?;
            }
            tx.open_table(OUTBOX)?.remove(key.as_slice())?;
            Ok(())
        })
        .await;
    match result {
        Ok(()) => Attempt::Done(status),
        Err(err) => Attempt::Retry(format!("storing the receipt failed: {err}")),
    }
}
