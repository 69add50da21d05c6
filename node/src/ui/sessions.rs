//! Web sessions in the node's store: table `web-sessions-1`, session id →
//! expiry (8 bytes, big-endian milliseconds) followed by the web layer's
//! opaque session data.
//!
//! Sessions are written lazily (visible at once, durable within the store's
//! lazy window): a session lost in a crash only means signing in again.

use imi_protocol::Timestamp;
use imi_web::StoredSession;
use redb::TableDefinition;

use crate::store::{Store, StoreError};

/// Web sessions: id → expiry ++ data.
pub(crate) const SESSIONS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("web-sessions-1");

/// Longest session id accepted (tower-sessions ids are 22 characters).
const MAX_ID_LEN: usize = 64;
/// Largest session data accepted.
const MAX_DATA: usize = 16 * 1024;

/// Creates the table, so readers never meet a missing one.
pub(crate) async fn create_table(store: &Store) -> Result<(), StoreError> {
    store
        .write(|tx| {
            tx.open_table(SESSIONS)?;
            Ok(())
        })
        .await
}

fn encode(session: &StoredSession) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + session.data.len());
    bytes.extend_from_slice(&session.expires.as_millis().to_be_bytes());
    bytes.extend_from_slice(&session.data);
    bytes
}

fn decode(bytes: &[u8]) -> Option<StoredSession> {
    let (expires, data) = bytes.split_first_chunk::<8>()?;
    Some(StoredSession {
        data: data.to_vec(),
        expires: Timestamp::from_millis(u64::from_be_bytes(*expires)),
    })
}

/// The session `id`, unless missing, unreadable or expired at `now`.
pub(crate) fn load(
    store: &Store,
    id: &str,
    now: Timestamp,
) -> Result<Option<StoredSession>, StoreError> {
    if id.len() > MAX_ID_LEN {
        return Ok(None);
    }
    let tx = store.read()?;
    let table = tx.open_table(SESSIONS)?;
    let Some(value) = table.get(id)? else {
        return Ok(None);
    };
    Ok(decode(value.value()).filter(|s| s.expires > now))
}

/// Stores a session; ids and data beyond the limits are refused.
pub(crate) async fn save(
    store: &Store,
    id: &str,
    session: StoredSession,
) -> Result<(), SessionRefused> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(SessionRefused::Id);
    }
    if session.data.len() > MAX_DATA {
        return Err(SessionRefused::TooLarge(session.data.len()));
    }
    let id = id.to_owned();
    let bytes = encode(&session);
    store
        .write_lazy(move |tx| {
            tx.open_table(SESSIONS)?
                .insert(id.as_str(), bytes.as_slice())?;
            Ok(())
        })
        .await
        .map_err(SessionRefused::Store)
}

/// Removes a session.
pub(crate) async fn delete(store: &Store, id: &str) -> Result<(), StoreError> {
    let id = id.to_owned();
    store
        .write_lazy(move |tx| {
            tx.open_table(SESSIONS)?.remove(id.as_str())?;
            Ok(())
        })
        .await
}

/// Removes every session expired at `now`.
pub(crate) async fn purge(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(SESSIONS)?;
            let mut removed = 0;
            table.retain(|_, value| {
                let keep = decode(value).is_some_and(|s| s.expires > now);
                removed += usize::from(!keep);
                keep
            })?;
            Ok(removed)
        })
        .await
}

/// A session the store refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionRefused {
    /// The id is empty or too long.
    #[error("the session id is not usable")]
    Id,
    /// Too much data.
    #[error("the session holds {0} bytes, more than 16 KiB")]
    TooLarge(usize),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}
