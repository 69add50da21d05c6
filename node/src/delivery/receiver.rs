//! The receiving half: verifies, deduplicates, orders and applies envelopes.
//!
//! An envelope from an admitted peer is verified (signature over the exact
//! bytes with the sender's key of its signing time, sender = the peer that
//! delivered it, addressed to this node), deduplicated by message id (a
//! duplicate gets the very same receipt), ordered by its per-case sequence
//! (an envelope that arrives early is answered "retry later"), then applied
//! by the [`Inbound`] handler inside the transaction that stores it with its
//! receipt.
//!
//! Every envelope the delivering peer sent in its own name and addressed to
//! this node uses up its sequence number when it is receipted, accepted or
//! rejected, whatever the reason (a signature that does not verify, a
//! forbidden step…): the rejection is stored with the envelope, in the case's
//! message history, and the sender's later messages of the case go on. The
//! sender can send the step again as a new message.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use imi_protocol::{Header, Opened, ReceiptBody, ReceiptOutcome, peek_header, seal_receipt};
use redb::{ReadableTable, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::wire::{DeliverAnswer, decode_batch};
use super::{
    CASE_MESSAGES, Direction, INBOUND_SEQ, INBOX, MESSAGES, MessageRecord, MessageStatus, PeerKeys,
    case_message_key, encode, now_ms, seq_key,
};
use crate::net::PeerIdentity;
use crate::store::{Store, StoreError};
use imi_protocol::NodeAddress;

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
    type Body: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Applies the message inside `tx`. On `Err`, whatever it wrote is
    /// rolled back and the message is stored as rejected with that reason.
    fn apply(&self, tx: &WriteTransaction, message: &Opened<Self::Body>) -> Result<(), Rejection>;

    /// Called once the node runs, with what the application needs to send
    /// messages of its own (the sequencer's fan-out of a case log).
    fn started(&self, _outlet: crate::node::Outlet) {}

    /// Called when the node stops, before its store closes.
    fn stopping(&self) {}
}

/// One envelope of a request, after verification.
enum Item<B> {
    /// Verified, signed by the peer that delivered it.
    Verified { opened: Opened<B>, bytes: Vec<u8> },
    /// Failed verification, but the delivering peer sent it in its own name
    /// to this node: it uses up its sequence number with a rejection.
    Unverified {
        header: Header,
        digest: [u8; 32],
        rejection: Rejection,
        bytes: Vec<u8>,
    },
}

/// An envelope to store, with the receipt signed ahead for the outcome it
/// will most likely get.
struct Checked<B> {
    /// Its place in the request.
    index: usize,
    item: Item<B>,
    expected: ReceiptOutcome,
    presigned: Vec<u8>,
    received_ms: u64,
}

/// Envelopes of a request checked on the async worker; more go to the
/// blocking pool.
const INLINE_CHECKS: usize = 4;

impl<B> Item<B> {
    fn expected_outcome(&self) -> ReceiptOutcome {
        match self {
            Item::Verified { .. } => ReceiptOutcome::Accepted,
            Item::Unverified { rejection, .. } => ReceiptOutcome::Rejected {
                code: rejection.code.clone(),
                reason: rejection.reason.clone(),
            },
        }
    }

    fn header(&self) -> &Header {
        match self {
            Item::Verified { opened, .. } => &opened.header,
            Item::Unverified { header, .. } => header,
        }
    }

    fn digest(&self) -> [u8; 32] {
        match self {
            Item::Verified { opened, .. } => opened.digest,
            Item::Unverified { digest, .. } => *digest,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Item::Verified { bytes, .. } | Item::Unverified { bytes, .. } => bytes,
        }
    }
}

/// Why the write applying a request's envelopes was rolled back.
#[derive(Debug)]
enum ApplyFailed {
    Store(StoreError),
    /// The handler refused envelope `item`; the write is run again with
    /// that envelope stored as rejected, so nothing it wrote is kept.
    Refused {
        item: usize,
        rejection: Rejection,
    },
}

impl From<StoreError> for ApplyFailed {
    fn from(err: StoreError) -> Self {
        ApplyFailed::Store(err)
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

fn status_of(outcome: &ReceiptOutcome) -> MessageStatus {
    match outcome {
        ReceiptOutcome::Accepted => MessageStatus::Accepted,
        ReceiptOutcome::Rejected { code, reason } => MessageStatus::Rejected {
            code: code.clone(),
            reason: reason.clone(),
        },
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

    /// The keys envelopes are verified with.
    pub fn keys(&self) -> &PeerKeys {
        &self.keys
    }

    fn receipt(&self, header: &Header, digest: [u8; 32], outcome: ReceiptOutcome) -> Vec<u8> {
        let body = ReceiptBody::new(header, digest, self.me.clone(), now_ms(), outcome);
        seal_receipt(body, &self.key)
            .map(|r| r.into_bytes())
            .unwrap_or_default()
    }

    /// Handles a request on the deliver protocol (envelopes framed by
    /// [`super::encode_batch`]) and returns the encoded answers, one per
    /// envelope.
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
    /// then all are applied in one write. Answers come in the order of the
    /// envelopes.
    pub async fn receive_batch(
        &self,
        from: &PeerIdentity,
        envelopes: Vec<Vec<u8>>,
    ) -> Vec<DeliverAnswer> {
        // Verifying and signing a few envelopes is quicker than a hop to
        // the blocking pool; a batch goes there, off the async workers.
        let (mut answers, items) = if envelopes.len() <= INLINE_CHECKS {
            self.check(&from.address, envelopes)
        } else {
            let this = self.clone();
            let from = from.address.clone();
            let count = envelopes.len();
            match tokio::task::spawn_blocking(move || this.check(&from, envelopes)).await {
                Ok(checked) => checked,
                Err(err) => {
                    warn!(error = %err, "checking delivered envelopes failed");
                    let retry = DeliverAnswer::Retry {
                        reason: "the receiving node could not check the message; try again".into(),
                    };
                    return vec![retry; count];
                }
            }
        };
        if !items.is_empty() {
            for (i, answer) in self.store_items(items).await {
                answers[i] = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every envelope answered"))
            .collect()
    }

    /// Verifies each envelope and signs, ahead of the write, the receipt
    /// it will most likely get (accepted if it verified, rejected with the
    /// reason if not), so the store's writer thread signs only when the
    /// outcome turns out otherwise. Envelopes that need no write are
    /// answered at once.
    fn check(
        &self,
        from: &NodeAddress,
        envelopes: Vec<Vec<u8>>,
    ) -> (Vec<Option<DeliverAnswer>>, Vec<Checked<I::Body>>) {
        let received_ms = now_ms();
        let mut answers: Vec<Option<DeliverAnswer>> = Vec::with_capacity(envelopes.len());
        let mut items: Vec<Checked<I::Body>> = Vec::new();
        for (index, bytes) in envelopes.into_iter().enumerate() {
            let answer = match self.keys.open::<I::Body>(&self.me, &bytes) {
                Ok(opened) if opened.header.sender == *from => {
                    let item = Item::Verified { opened, bytes };
                    items.push(self.presign(index, item, received_ms));
                    None
                }
                Ok(opened) => {
                    let header = &opened.header;
                    warn!(peer = %from, sender = %header.sender, id = %header.id, "envelope relayed by another node, rejecting");
                    let outcome = ReceiptOutcome::Rejected {
                        code: "relayed".into(),
                        reason: format!(
                            "the envelope was signed by {} but delivered by {}; nodes deliver only their own messages",
                            header.sender, from
                        ),
                    };
                    Some(DeliverAnswer::Receipt(self.receipt(
                        header,
                        opened.digest,
                        outcome,
                    )))
                }
                Err(err) => match peek_header(&bytes) {
                    Ok(header)
                        if header.sender == *from && header.recipients.contains(&self.me) =>
                    {
                        warn!(peer = %from, id = %header.id, case = %header.case, sequence = header.sequence, code = err.code(), error = %err, "envelope refused; its rejection is stored");
                        let rejection = Rejection::new(err.code(), err.to_string());
                        let digest = imi_protocol::wire_digest(&bytes);
                        let item = Item::Unverified {
                            header,
                            digest,
                            rejection,
                            bytes,
                        };
                        items.push(self.presign(index, item, received_ms));
                        None
                    }
                    Ok(header) => {
                        // Not the delivering peer's own message to this node:
                        // it uses up no sequence number and is not stored.
                        warn!(peer = %from, sender = %header.sender, id = %header.id, code = err.code(), error = %err, "envelope refused");
                        let digest = imi_protocol::wire_digest(&bytes);
                        Some(DeliverAnswer::Receipt(self.receipt(
                            &header,
                            digest,
                            ReceiptOutcome::rejected(&err),
                        )))
                    }
                    Err(_) => {
                        warn!(peer = %from, error = %err, "unreadable envelope");
                        Some(DeliverAnswer::Unreadable {
                            reason: err.to_string(),
                        })
                    }
                },
            };
            answers.push(answer);
        }
        (answers, items)
    }

    fn presign(&self, index: usize, item: Item<I::Body>, received_ms: u64) -> Checked<I::Body> {
        let expected = item.expected_outcome();
        let body = ReceiptBody::new(
            item.header(),
            item.digest(),
            self.me.clone(),
            received_ms,
            expected.clone(),
        );
        let presigned = seal_receipt(body, &self.key)
            .map(|r| r.into_bytes())
            .unwrap_or_default();
        Checked {
            index,
            item,
            expected,
            presigned,
            received_ms,
        }
    }

    /// Stores and applies `items` in one write. A handler that refuses an
    /// envelope rolls the write back; it runs again with that envelope
    /// stored as rejected, so a refused step leaves nothing behind.
    async fn store_items(&self, items: Vec<Checked<I::Body>>) -> Vec<(usize, DeliverAnswer)> {
        let items = Arc::new(items);
        let mut refused: HashMap<usize, Rejection> = HashMap::new();
        loop {
            let this = self.clone();
            let job_items = Arc::clone(&items);
            let job_refused = refused.clone();
            let result = self
                .store
                .try_write(move |tx| this.apply_all(tx, &job_items, &job_refused))
                .await;
            match result {
                Ok(answers) => return answers,
                Err(ApplyFailed::Refused { item, rejection }) if !refused.contains_key(&item) => {
                    refused.insert(item, rejection);
                }
                Err(failed) => {
                    let error = match failed {
                        ApplyFailed::Store(err) => err.to_string(),
                        ApplyFailed::Refused { rejection, .. } => rejection.reason,
                    };
                    warn!(%error, messages = items.len(), "storing inbound envelopes failed");
                    return items
                        .iter()
                        .map(|checked| {
                            (
                                checked.index,
                                DeliverAnswer::Retry {
                                    reason:
                                        "the receiving node could not store the message; try again"
                                            .into(),
                                },
                            )
                        })
                        .collect();
                }
            }
        }
    }

    fn apply_all(
        &self,
        tx: &WriteTransaction,
        items: &[Checked<I::Body>],
        refused: &HashMap<usize, Rejection>,
    ) -> Result<Vec<(usize, DeliverAnswer)>, ApplyFailed> {
        let mut answers = Vec::with_capacity(items.len());
        for (n, checked) in items.iter().enumerate() {
            let answer = self.apply_one(tx, n, checked, refused.get(&n))?;
            answers.push((checked.index, answer));
        }
        Ok(answers)
    }

    fn apply_one(
        &self,
        tx: &WriteTransaction,
        n: usize,
        checked: &Checked<I::Body>,
        refused: Option<&Rejection>,
    ) -> Result<DeliverAnswer, ApplyFailed> {
        let item = &checked.item;
        let header = item.header();
        let id = header.id.to_bytes();
        // A duplicate gets the very same receipt.
        let stored = tx
            .open_table(INBOX)
            .map_err(StoreError::from)?
            .get(id.as_slice())
            .map_err(StoreError::from)?
            .map(|receipt| receipt.value().to_vec());
        if let Some(receipt) = stored {
            debug!(id = %header.id, sender = %header.sender, "duplicate envelope, answering with the stored receipt");
            return Ok(DeliverAnswer::Receipt(receipt));
        }
        let seq_key = seq_key(header.case, &header.sender);
        let last = tx
            .open_table(INBOUND_SEQ)
            .map_err(StoreError::from)?
            .get(seq_key.as_slice())
            .map_err(StoreError::from)?
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
        if header.sequence <= last {
            warn!(id = %header.id, case = %header.case, sequence = header.sequence, last, "stale sequence, rejecting");
            let outcome = ReceiptOutcome::Rejected {
                code: "stale-sequence".into(),
                reason: format!(
                    "message {} of case {} was already applied; a replayed or re-numbered message is not applied again",
                    header.sequence, header.case
                ),
            };
            return Ok(DeliverAnswer::Receipt(self.receipt(
                header,
                item.digest(),
                outcome,
            )));
        }
        let outcome = match (item, refused) {
            (Item::Unverified { rejection, .. }, _) | (Item::Verified { .. }, Some(rejection)) => {
                ReceiptOutcome::Rejected {
                    code: rejection.code.clone(),
                    reason: rejection.reason.clone(),
                }
            }
            (Item::Verified { opened, .. }, None) => match self.inbound.apply(tx, opened) {
                Ok(()) => ReceiptOutcome::Accepted,
                Err(rejection) => {
                    warn!(id = %header.id, case = %header.case, code = %rejection.code, reason = %rejection.reason, "message rejected");
                    return Err(ApplyFailed::Refused { item: n, rejection });
                }
            },
        };
        let status = status_of(&outcome);
        let receipt = if outcome == checked.expected {
            checked.presigned.clone()
        } else {
            self.receipt(header, item.digest(), outcome)
        };
        // Accepted or rejected, the sequence number is used up, so the
        // sender's later messages of the case are not held back.
        let record = MessageRecord {
            direction: Direction::Inbound,
            case: header.case,
            sequence: header.sequence,
            peer: header.sender.clone(),
            kind: header.kind,
            envelope: item.bytes().to_vec(),
            receipt: Some(receipt.clone()),
            status,
            stored_ms: checked.received_ms,
        };
        store_received(tx, header, &seq_key, &record, &receipt)?;
        Ok(DeliverAnswer::Receipt(receipt))
    }
}

fn store_received(
    tx: &WriteTransaction,
    header: &Header,
    seq_key: &[u8],
    record: &MessageRecord,
    receipt: &[u8],
) -> Result<(), StoreError> {
    let id = header.id.to_bytes();
    tx.open_table(INBOUND_SEQ)?
        .insert(seq_key, header.sequence)?;
    tx.open_table(INBOX)?.insert(id.as_slice(), receipt)?;
    tx.open_table(MESSAGES)?
        .insert(id.as_slice(), encode(record).as_slice())?;
    tx.open_table(CASE_MESSAGES)?
        .insert(case_message_key(header.case, header.id).as_slice(), 2u8)?;
    Ok(())
}
