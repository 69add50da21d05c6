//! The sending half's tables: sequence numbers, the outbox, receipts
//! stored on the messages they answer, and resending a rejected step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use imi_protocol::{
    CaseId, Header, MessageId, NodeAddress, PROTOCOL_VERSION, ReceiptOutcome, SignedEnvelope,
    SigningKey, seal,
};
use redb::{ReadableTable, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::wire::DeliverAnswer;
use super::{
    CASE_MESSAGES, Direction, MESSAGES, MessageRecord, MessageStatus, OUTBOUND_SEQ, OUTBOX,
    PeerKeys, case_message_key, decode, encode, now_ms, seq_key,
};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxEntry {
    pub(crate) to: NodeAddress,
    pub(crate) case: CaseId,
    pub(crate) sequence: u64,
}

/// A message queued for delivery, handed to [`super::Delivery::enqueued`]
/// after the transaction that stored it committed.
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

/// The last sequence number given to a message of `case` for `to`, as
/// committed (0 if none).
pub fn last_sequence(store: &Store, case: CaseId, to: &NodeAddress) -> Result<u64, StoreError> {
    let read = store.read()?;
    let table = read.open_table(OUTBOUND_SEQ)?;
    Ok(table
        .get(seq_key(case, to).as_slice())?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// The last sequence number given to a message of `case` for `to`, as
/// the caller's write sees it (0 if none).
pub fn last_sequence_in(
    tx: &WriteTransaction,
    case: CaseId,
    to: &NodeAddress,
) -> Result<u64, StoreError> {
    let table = tx.open_table(OUTBOUND_SEQ)?;
    Ok(table
        .get(seq_key(case, to).as_slice())?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// Takes `sequence` for `case` towards `to`, inside the write that
/// enqueues an envelope sealed with it beforehand; fails if it is not the
/// next one (another message took it meanwhile).
pub fn claim_sequence(
    tx: &WriteTransaction,
    case: CaseId,
    to: &NodeAddress,
    sequence: u64,
) -> Result<(), StoreError> {
    let key = seq_key(case, to);
    let mut table = tx.open_table(OUTBOUND_SEQ)?;
    let last = table.get(key.as_slice())?.map(|v| v.value()).unwrap_or(0);
    if last + 1 != sequence {
        return Err(StoreError::corrupt(
            "outbound sequence",
            format!(
                "message {sequence} of case {case} to {to} was sealed, but {last} is the last one given"
            ),
        ));
    }
    table.insert(key.as_slice(), sequence)?;
    Ok(())
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

/// Everything in the outbox, in case and sequence order.
pub(crate) fn load_outbox(store: &Store) -> Result<Vec<Queued>, StoreError> {
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

/// Sending in one case, one at a time: the sequence numbers are read, the
/// envelopes sealed (off the store's writer thread) and committed while
/// the case's turn is held, so two steps of one case never take the same
/// number or commit out of order.
#[derive(Debug, Clone, Default)]
pub struct SendTurns(Arc<Mutex<HashMap<CaseId, Arc<tokio::sync::Mutex<()>>>>>);

/// The turn to send in one case; the next sender of that case waits until
/// it is dropped.
#[derive(Debug)]
pub struct CaseTurn {
    turns: SendTurns,
    case: CaseId,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl SendTurns {
    /// Waits for the turn to send in `case`.
    pub async fn take(&self, case: CaseId) -> CaseTurn {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(case).or_default())
        };
        let guard = lock.lock_owned().await;
        CaseTurn {
            turns: self.clone(),
            case,
            guard: Some(guard),
        }
    }
}

impl Drop for CaseTurn {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.turns.0.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the case once nobody holds or waits for its turn.
        if map
            .get(&self.case)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            map.remove(&self.case);
        }
    }
}

/// A message could not be sent again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResendError {
    /// No message has that id here.
    #[error("no message {0} is stored on this node")]
    NotFound(MessageId),
    /// Only a message this node sent can be sent again.
    #[error("message {0} was received, not sent, by this node; only its sender can send it again")]
    NotSent(MessageId),
    /// The message was not rejected.
    #[error(
        "message {0} was not rejected (it is delivered or still on its way); only a rejected message is sent again"
    )]
    NotRejected(MessageId),
    /// The stored envelope cannot be read back.
    #[error("message {id} cannot be read back to send it again: {reason}")]
    Unreadable {
        /// The message.
        id: MessageId,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("the message could not be stored again: {0}")]
    Store(String),
}

impl From<StoreError> for ResendError {
    fn from(err: StoreError) -> Self {
        ResendError::Store(err.to_string())
    }
}

/// Seals the step of the rejected outbound message `id` again, as a new
/// message with the next sequence number of its case, signed with `key`
/// (the node's current key), and puts it in the outbox. The rejected
/// message stays in the case's history as it was.
pub async fn resend<B>(
    store: &Store,
    keys: &PeerKeys,
    turns: &SendTurns,
    me: &NodeAddress,
    key: &SigningKey,
    id: MessageId,
) -> Result<Queued, ResendError>
where
    B: Serialize + DeserializeOwned + Send + 'static,
{
    let record = super::message(store, id)?.ok_or(ResendError::NotFound(id))?;
    if record.direction != Direction::Outbound {
        return Err(ResendError::NotSent(id));
    }
    if !matches!(record.status, MessageStatus::Rejected { .. }) {
        return Err(ResendError::NotRejected(id));
    }
    // Our own envelope, read back with our key of the time it was sealed.
    let opened = keys
        .open::<B>(&record.peer, &record.envelope)
        .map_err(|err| ResendError::Unreadable {
            id,
            reason: err.to_string(),
        })?;
    let turn = turns.take(record.case).await;
    let sequence = last_sequence(store, record.case, &record.peer)? + 1;
    let old = &opened.header;
    let header = Header {
        version: PROTOCOL_VERSION,
        id: MessageId::new(),
        sender: me.clone(),
        author: old.author.clone(),
        recipients: vec![record.peer.clone()],
        case: old.case,
        sequence,
        timestamp_ms: now_ms(),
        kind: old.kind,
    };
    let envelope = seal(header, &opened.body, key).map_err(|err| ResendError::Unreadable {
        id,
        reason: err.to_string(),
    })?;
    let to = record.peer.clone();
    let queued = store
        .write(move |tx| {
            claim_sequence(tx, envelope.header().case, &to, envelope.header().sequence)?;
            enqueue(tx, &to, &envelope)
        })
        .await?;
    drop(turn);
    Ok(queued)
}

/// What happened to a message on one attempt.
pub(crate) enum Attempt {
    Done(MessageStatus),
    Retry(String),
    /// Not sent: the request was full; goes with the next one, at once.
    Later,
}

/// Reads the stored records of `ids` in one snapshot.
pub(crate) fn records(
    store: &Store,
    ids: &[MessageId],
) -> Result<Vec<Option<MessageRecord>>, StoreError> {
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

/// Stores verified receipts and takes their messages out of the outbox.
///
/// Lazily: after a crash the messages are still in the outbox, are sent
/// again, and the recipient answers each duplicate with this very receipt.
pub(crate) async fn store_receipts(
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
            for (_, id, status, receipt) in &receipts {
                let key = id.to_bytes();
                let record = messages
                    .get(key.as_slice())?
                    .map(|v| decode::<MessageRecord>("message", v.value()))
                    .transpose()?;
                if let Some(mut record) = record {
                    record.receipt = Some(receipt.clone());
                    record.status = status.clone();
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
/// exactly that envelope, from the recipient, verified with the key of its
/// certificate valid when it signed (a duplicate is answered with the
/// receipt first given, perhaps under a key since renewed).
pub(crate) fn check_answer(
    q: &Queued,
    record: &MessageRecord,
    answer: DeliverAnswer,
    keys: &PeerKeys,
) -> Result<(MessageStatus, Vec<u8>), Attempt> {
    let receipt_bytes = match answer {
        DeliverAnswer::Receipt(bytes) => bytes,
        DeliverAnswer::Retry { reason } => return Err(Attempt::Retry(reason)),
        DeliverAnswer::Unreadable { reason } => {
            warn!(to = %q.to, id = %q.id, %reason, "recipient could not read our envelope");
            return Err(Attempt::Retry(reason));
        }
    };
    let receipt = match keys.open_receipt(&q.to, &receipt_bytes) {
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
