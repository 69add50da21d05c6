//! The sending task: empties the outbox, in order per case and recipient,
//! in batches per recipient, with retries, backoff and jitter.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use imi_protocol::{CaseId, MessageId, NodeAddress};
use rand::Rng;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use super::outbox::{
    Attempt, Queued, SendTurns, check_answer, load_outbox, records, store_receipts,
};
use super::wire::{DeliverAnswer, MAX_BATCH, encode_batch};
use super::{MessageRecord, MessageStatus, PeerKeys};
use crate::config::DeliveryConfig;
use crate::net::{AppProtocol, NetworkHandle};
use crate::store::{Store, StoreError};

/// Requests in flight to one node at once; messages that become ready
/// meanwhile wait and go together in the next request.
const MAX_BATCHES_IN_FLIGHT: usize = 4;
/// The envelope bytes of one request at most, below the frame limit the
/// recipient reads (`net::codec`), with room for the framing.
const MAX_REQUEST_PAYLOAD: usize = 7 * 1024 * 1024;
/// Retries of one message logged at debug level before they are warned of.
const QUIET_RETRIES: u32 = 3;
/// Receipt notifications kept for slow subscribers.
const RECEIPT_EVENTS: usize = 4096;

enum Command {
    Enqueued(Vec<Queued>),
    PeerUp(NodeAddress),
    PeerDown(NodeAddress),
    Shutdown,
}

/// A message of this node got its receipt (stored), see
/// [`Delivery::receipts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipted {
    /// The message.
    pub id: MessageId,
    /// Its case.
    pub case: CaseId,
    /// Its recipient.
    pub to: NodeAddress,
    /// Accepted, or rejected with the recipient's reason.
    pub status: MessageStatus,
}

/// The sending half: a task that empties the outbox.
#[derive(Clone)]
pub struct Delivery {
    commands: mpsc::Sender<Command>,
    keys: PeerKeys,
    turns: SendTurns,
    receipts: broadcast::Sender<Receipted>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").finish_non_exhaustive()
    }
}

type QueueKey = (NodeAddress, CaseId);
type Sent = (NodeAddress, Vec<(QueueKey, MessageId, Attempt)>);
type Sending = std::pin::Pin<Box<dyn std::future::Future<Output = Sent> + Send>>;

impl Delivery {
    /// Starts the delivery task and queues everything in the outbox.
    /// Receipts are verified with `keys`.
    pub fn start(
        store: Store,
        net: NetworkHandle,
        config: DeliveryConfig,
        keys: PeerKeys,
    ) -> Result<(Delivery, tokio::task::JoinHandle<()>), StoreError> {
        let pending = load_outbox(&store)?;
        if !pending.is_empty() {
            info!(messages = pending.len(), "resuming delivery of the outbox");
        }
        let (commands, rx) = mpsc::channel(4096);
        let (receipts, _) = broadcast::channel(RECEIPT_EVENTS);
        let mut task = DeliveryTask {
            store,
            net,
            config,
            keys: keys.clone(),
            receipts: receipts.clone(),
            commands: rx,
            queues: HashMap::new(),
            connected: HashSet::new(),
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
        Ok((
            Delivery {
                commands,
                keys,
                turns: SendTurns::default(),
                receipts,
            },
            handle,
        ))
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
    pub async fn peer_up(&self, address: NodeAddress) {
        let _ = self.commands.send(Command::PeerUp(address)).await;
    }

    /// A peer left.
    pub async fn peer_down(&self, address: NodeAddress) {
        let _ = self.commands.send(Command::PeerDown(address)).await;
    }

    /// The keys envelopes and receipts are verified with.
    pub fn keys(&self) -> &PeerKeys {
        &self.keys
    }

    /// The turns of sending per case (see [`SendTurns`]).
    pub fn turns(&self) -> &SendTurns {
        &self.turns
    }

    /// A notification for every receipt stored from now on (accepted or
    /// rejected), for whoever waits on delivery: the case history, the
    /// benchmark. A subscriber that falls more than 4,096 behind misses
    /// some (and is told so by the channel).
    pub fn receipts(&self) -> broadcast::Receiver<Receipted> {
        self.receipts.subscribe()
    }
}

struct DeliveryTask {
    store: Store,
    net: NetworkHandle,
    config: DeliveryConfig,
    keys: PeerKeys,
    receipts: broadcast::Sender<Receipted>,
    commands: mpsc::Receiver<Command>,
    /// Per (recipient, case): messages in sequence order.
    queues: HashMap<QueueKey, VecDeque<Queued>>,
    connected: HashSet<NodeAddress>,
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
                    Some(Command::PeerUp(address)) => {
                        self.connected.insert(address.clone());
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
                if let Some(n) = self.attempts.remove(&key)
                    && n > QUIET_RETRIES
                {
                    info!(to = %key.0, case = %key.1, %id, attempts = n + 1, "message delivered after retries");
                }
                if let MessageStatus::Rejected { code, reason } = &status {
                    warn!(to = %key.0, case = %key.1, %id, %code, %reason, "recipient rejected the message; it is kept with the reason and can be sent again");
                }
                let _ = self.receipts.send(Receipted {
                    id,
                    case: key.1,
                    to: key.0.clone(),
                    status,
                });
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
            Attempt::Later => self.ready.push_back(key),
            Attempt::Retry(reason) => {
                let attempts = self.attempts.entry(key.clone()).or_insert(0);
                *attempts += 1;
                let n = *attempts;
                let delay = self.backoff(n - 1);
                if n > QUIET_RETRIES {
                    warn!(to = %key.0, case = %key.1, %id, attempt = n, delay_ms = delay.as_millis() as u64, %reason, "message still not delivered, will retry");
                } else {
                    debug!(to = %key.0, case = %key.1, %id, attempt = n, delay_ms = delay.as_millis() as u64, %reason, "delivery will be retried");
                }
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
            if !self.connected.contains(&key.0) {
                self.parked.entry(key.0.clone()).or_default().push(key);
                continue;
            }
            match by_peer.iter_mut().find(|(peer, _)| *peer == key.0) {
                Some((_, heads)) => heads.push((key, head)),
                None => by_peer.push((key.0.clone(), vec![(key, head)])),
            }
        }
        for (peer, heads) in by_peer {
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
                let keys = self.keys.clone();
                let to = peer.clone();
                sends.push(Box::pin(async move {
                    let results = send_batch(&store, &net, &to, batch, &keys).await;
                    (to, results)
                }));
            }
        }
    }
}

/// Sends the heads of several queues to `to` in one request and stores the
/// receipts that come back (lazily: see [`Store::write_lazy`]).
async fn send_batch(
    store: &Store,
    net: &NetworkHandle,
    to: &NodeAddress,
    batch: Vec<(QueueKey, Queued)>,
    keys: &PeerKeys,
) -> Vec<(QueueKey, MessageId, Attempt)> {
    let ids: Vec<MessageId> = batch.iter().map(|(_, q)| q.id).collect();
    let mut outcomes: Vec<Option<Attempt>> = Vec::with_capacity(batch.len());
    let mut sending: Vec<(usize, MessageRecord)> = Vec::new();
    let mut bytes = 0;
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
                    // The request is full (large attachments): the rest
                    // go in the next one.
                    Some(record)
                        if !sending.is_empty()
                            && bytes + record.envelope.len() > MAX_REQUEST_PAYLOAD =>
                    {
                        outcomes.push(Some(Attempt::Later));
                    }
                    Some(record) => {
                        bytes += record.envelope.len() + 4;
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
                let work: Vec<(usize, Queued, MessageRecord, DeliverAnswer)> = sending
                    .into_iter()
                    .zip(answers)
                    .map(|((i, record), answer)| (i, batch[i].1.clone(), record, answer))
                    .collect();
                // Verifying a few receipts is quicker than a hop to the
                // blocking pool; a batch's go there, off the async workers.
                let checked = if work.len() <= INLINE_CHECKS {
                    check_answers(work, keys)
                } else {
                    let keys = keys.clone();
                    let count = work.len();
                    let ids: Vec<usize> = work.iter().map(|(i, ..)| *i).collect();
                    tokio::task::spawn_blocking(move || check_answers(work, &keys))
                        .await
                        .unwrap_or_else(|err| {
                            let reason = format!("checking the receipts failed: {err}");
                            let mut out = Vec::with_capacity(count);
                            for i in ids {
                                out.push((i, Err(Attempt::Retry(reason.clone()))));
                            }
                            out
                        })
                };
                let mut receipts = Vec::new();
                for (i, checked) in checked {
                    match checked {
                        Ok((id, status, receipt)) => receipts.push((i, id, status, receipt)),
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

/// Receipts of a batch checked without verifying more than needed.
const INLINE_CHECKS: usize = 4;

type Checked = (usize, Result<(MessageId, MessageStatus, Vec<u8>), Attempt>);

/// Checks each answer of a request (see [`check_answer`]).
fn check_answers(
    work: Vec<(usize, Queued, MessageRecord, DeliverAnswer)>,
    keys: &PeerKeys,
) -> Vec<Checked> {
    work.into_iter()
        .map(|(i, q, record, answer)| {
            let checked = check_answer(&q, &record, answer, keys)
                .map(|(status, receipt)| (q.id, status, receipt));
            (i, checked)
        })
        .collect()
}
