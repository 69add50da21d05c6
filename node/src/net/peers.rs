//! The nodes this node has admitted: who they are and when they were seen.

use imi_protocol::NodeAddress;
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::delivery::now_ms;
use crate::net::PeerIdentity;
use crate::store::{Store, StoreError};

/// Admitted peers: node address → [`PeerRecord`].
pub(crate) const PEERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("peers-1");

/// What this node knows of a peer it admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The node's address.
    pub address: NodeAddress,
    /// Its libp2p PeerId (base58).
    pub peer_id: String,
    /// Its certified ed25519 key.
    pub public_key: [u8; 32],
    /// When it was first admitted (ms since the epoch).
    pub first_admitted_ms: u64,
    /// When it was last admitted.
    pub last_admitted_ms: u64,
    /// How many times it was admitted (reconnections).
    pub admissions: u64,
}

pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(PEERS)?;
    Ok(())
}

/// Records an admission of `identity`.
pub async fn record_admission(store: &Store, identity: &PeerIdentity) -> Result<(), StoreError> {
    let identity = identity.clone();
    store
        .write(move |tx| {
            let key = identity.address.to_string();
            let mut table = tx.open_table(PEERS)?;
            let now = now_ms();
            let previous: Option<PeerRecord> = table
                .get(key.as_str())?
                .and_then(|v| postcard::from_bytes(v.value()).ok());
            let record = PeerRecord {
                address: identity.address.clone(),
                peer_id: identity.peer.to_base58(),
                public_key: identity.public_key,
                first_admitted_ms: previous.as_ref().map_or(now, |p| p.first_admitted_ms),
                last_admitted_ms: now,
                admissions: previous.map_or(0, |p| p.admissions) + 1,
            };
            let bytes = postcard::to_stdvec(&record).map_err(|e| StoreError::corrupt("peer", e))?;
            table.insert(key.as_str(), bytes.as_slice())?;
            Ok(())
        })
        .await
}

/// Every peer ever admitted, by address.
pub fn list(store: &Store) -> Result<Vec<PeerRecord>, StoreError> {
    let read = store.read()?;
    let table = read.open_table(PEERS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (_, value) = entry?;
        out.push(postcard::from_bytes(value.value()).map_err(|e| StoreError::corrupt("peer", e))?);
    }
    Ok(out)
}
