//! The keys that verify envelopes and receipts: every key each node has
//! been certified with, with its certificate's validity.
//!
//! A node's certificate and key are renewed from time to time. Envelopes
//! and receipts signed before the renewal stay in outboxes and stores, and
//! a duplicate is answered with the very receipt first given, so a message
//! is verified with the key of the certificate that was valid **when it was
//! signed** (its timestamp), not merely with the sender's current key. The
//! history is kept in the store (`peer-keys-1`), so it survives restarts.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ed25519_dalek::VerifyingKey;
use imi_protocol::{
    NodeAddress, Opened, ReceiptBody, SenderKeys, VerifyContext, VerifyError, open, open_receipt,
    peek_header,
};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::net::PeerIdentity;
use crate::store::{Store, StoreError};

/// Certified keys: node address ++ `0` ++ key bytes → [`KeyRecord`].
pub(crate) const PEER_KEYS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("peer-keys-1");

/// How far a signing time may lie outside a certificate's validity and
/// still count, for clocks that differ between nodes and CAs.
pub const CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// A key a node was certified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The ed25519 key.
    pub key: [u8; 32],
    /// Start of the certificate's validity (ms since the epoch).
    pub valid_from_ms: u64,
    /// End of the certificate's validity (ms since the epoch).
    pub valid_until_ms: u64,
}

impl KeyRecord {
    fn covers(&self, at_ms: u64) -> bool {
        at_ms.saturating_add(CLOCK_SKEW_MS) >= self.valid_from_ms
            && at_ms <= self.valid_until_ms.saturating_add(CLOCK_SKEW_MS)
    }
}

fn table_key(address: &NodeAddress, key: &[u8; 32]) -> Vec<u8> {
    let mut out = address.to_string().into_bytes();
    out.push(0);
    out.extend_from_slice(key);
    out
}

/// The certified keys of every node this node has admitted (and its own),
/// each with its validity. Cheap to clone; shared by the receiver and the
/// sending task.
#[derive(Debug, Clone, Default)]
pub struct PeerKeys(Arc<RwLock<KeysByNode>>);

/// Per node, its certified keys, newest certificate first.
type KeysByNode = HashMap<NodeAddress, Vec<(KeyRecord, VerifyingKey)>>;

impl PeerKeys {
    /// The history kept in `store`.
    pub fn load(store: &Store) -> Result<PeerKeys, StoreError> {
        let keys = PeerKeys::default();
        let read = store.read()?;
        let table = match read.open_table(PEER_KEYS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(keys),
            Err(err) => return Err(err.into()),
        };
        for entry in table.iter()? {
            let (key, value) = entry?;
            let key = key.value();
            let Some(split) = key.iter().position(|b| *b == 0) else {
                return Err(StoreError::corrupt("peer key", "no address"));
            };
            let address: NodeAddress = std::str::from_utf8(&key[..split])
                .ok()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| StoreError::corrupt("peer key", "bad address"))?;
            let record: KeyRecord = postcard::from_bytes(value.value())
                .map_err(|e| StoreError::corrupt("peer key", e))?;
            keys.remember(address, record);
        }
        Ok(keys)
    }

    /// Adds `record` in memory; `false` if it was known already.
    fn remember(&self, address: NodeAddress, record: KeyRecord) -> bool {
        let Ok(verifying) = VerifyingKey::from_bytes(&record.key) else {
            return false;
        };
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let keys = map.entry(address).or_default();
        if let Some(known) = keys.iter_mut().find(|(k, _)| k.key == record.key) {
            if known.0 == record {
                return false;
            }
            known.0 = record;
        } else {
            keys.push((record, verifying));
        }
        // Newest certificate first.
        keys.sort_by_key(|(k, _)| std::cmp::Reverse(k.valid_from_ms));
        true
    }

    /// Records the certified key of a node (an admitted peer, or this node
    /// itself), in memory at once and in the store if it is new.
    pub async fn certified(
        &self,
        store: &Store,
        address: &NodeAddress,
        record: KeyRecord,
    ) -> Result<(), StoreError> {
        if !self.remember(address.clone(), record) {
            return Ok(());
        }
        info!(node = %address, valid_from_ms = record.valid_from_ms, valid_until_ms = record.valid_until_ms, "a certified key of the node is recorded");
        let address = address.clone();
        store
            .write(move |tx| {
                let value =
                    postcard::to_stdvec(&record).map_err(|e| StoreError::corrupt("peer key", e))?;
                tx.open_table(PEER_KEYS)?.insert(
                    table_key(&address, &record.key).as_slice(),
                    value.as_slice(),
                )?;
                Ok(())
            })
            .await
    }

    /// Records the key an admitted peer presented.
    pub async fn admitted(&self, store: &Store, peer: &PeerIdentity) -> Result<(), StoreError> {
        let record = KeyRecord {
            key: peer.public_key,
            valid_from_ms: peer.valid_from_ms,
            valid_until_ms: peer.valid_until_ms,
        };
        self.certified(store, &peer.address, record).await
    }

    /// The keys of `address` whose certificate was valid at `at_ms`,
    /// newest certificate first.
    pub fn keys_at(&self, address: &NodeAddress, at_ms: u64) -> Vec<VerifyingKey> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(address)
            .map(|keys| {
                keys.iter()
                    .filter(|(k, _)| k.covers(at_ms))
                    .map(|(_, v)| *v)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every key `address` was certified with, newest first.
    pub fn history(&self, address: &NodeAddress) -> Vec<KeyRecord> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(address)
            .map(|keys| keys.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default()
    }

    /// Verifies envelope `bytes` addressed to `me` with the key of the
    /// sender's certificate that was valid when it was signed, and decodes
    /// the body.
    pub fn open<B>(&self, me: &NodeAddress, bytes: &[u8]) -> Result<Opened<B>, VerifyError>
    where
        B: Serialize + DeserializeOwned,
    {
        let header = peek_header(bytes)?;
        let candidates = self.keys_at(&header.sender, header.timestamp_ms);
        let mut result = Err(VerifyError::UnknownSender {
            sender: header.sender.clone(),
        });
        for key in candidates {
            let one = OneKey(&header.sender, key);
            result = open(bytes, &VerifyContext::new(me, &one));
            if !matches!(result, Err(VerifyError::BadSignature { .. })) {
                break;
            }
        }
        result
    }

    /// Verifies receipt `bytes` from `receiver`: signed by a key it was
    /// certified with, whose certificate was valid when the receipt was
    /// signed.
    pub fn open_receipt(
        &self,
        receiver: &NodeAddress,
        bytes: &[u8],
    ) -> Result<ReceiptBody, VerifyError> {
        let keys = {
            let map = self.0.read().unwrap_or_else(|e| e.into_inner());
            map.get(receiver).cloned().unwrap_or_default()
        };
        if keys.is_empty() {
            return Err(VerifyError::UnknownSender {
                sender: receiver.clone(),
            });
        }
        let mut last = None;
        for (record, key) in keys {
            match open_receipt(bytes, &key) {
                Ok(body) if record.covers(body.received_at_ms) => return Ok(body),
                Ok(body) => {
                    last = Some(VerifyError::BadSignature {
                        sender: body.receiver,
                    })
                }
                Err(err @ VerifyError::BadSignature { .. }) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or(VerifyError::UnknownSender {
            sender: receiver.clone(),
        }))
    }
}

/// One key for one node, for [`open`].
struct OneKey<'a>(&'a NodeAddress, VerifyingKey);

impl SenderKeys for OneKey<'_> {
    fn key_of(&self, sender: &NodeAddress) -> Option<VerifyingKey> {
        (sender == self.0).then_some(self.1)
    }
}

/// Creates the keys table.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PEER_KEYS)?;
    Ok(())
}
