//! `Idempotency-Key`s of the JSON API in the node's store: table
//! `idempotency-keys-1`, user id (16 bytes) ++ the key (UTF-8) → postcard
//! [`KeptKey`]: the fingerprint of the request that claimed the key (its
//! method, path and body, hashed by `web`), when it was claimed, and its
//! response once kept (none while the request is in progress).
//!
//! A claim is one write transaction, so two requests with one key never both
//! go ahead. Claims and responses are written lazily: the durable commit of
//! whatever the request changes (a case step) makes its claim durable too,
//! so a crash never loses a claim whose effect it kept; a lost response
//! leaves the key in progress, refused until it is purged, never run twice.
//! Keys are kept 24 hours from their claim ([`KEPT_FOR_MS`]), then purged
//! with the expired web sessions; a key older than that counts as unused.

use imi_protocol::{Timestamp, UserId};
use imi_web::{IdempotencyClaim, KeptResponse};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Idempotency keys: user id ++ key → [`KeptKey`].
pub(crate) const IDEMPOTENCY_KEYS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("idempotency-keys-1");

/// How long a key is kept after its claim (24 hours).
pub(crate) const KEPT_FOR_MS: u64 = 24 * 3_600_000;
/// Longest key, in characters.
const MAX_KEY_CHARS: usize = 200;
/// Largest response body kept.
const MAX_BODY: usize = 1024 * 1024;

/// What is kept for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeptKey {
    fingerprint: [u8; 32],
    claimed: Timestamp,
    /// `None` while the request is in progress.
    response: Option<Response>,
}

/// A kept response (postcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Response {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// A key or response the node refuses to keep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyRefused {
    /// Empty or too long.
    #[error("an Idempotency-Key has 1 to 200 characters")]
    Key,
    /// The body is too large to keep.
    #[error("a response of {0} bytes is too large to keep for an Idempotency-Key (1 MiB at most)")]
    TooLarge(usize),
    /// No request holds the key (never claimed, released, or purged).
    #[error("no request holds this Idempotency-Key")]
    NotClaimed,
}

/// Why a key could not be claimed or kept.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// Refused input.
    #[error(transparent)]
    Refused(#[from] KeyRefused),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates the table, so readers never meet a missing one.
pub(crate) async fn create_table(store: &Store) -> Result<(), StoreError> {
    store
        .write(|tx| {
            tx.open_table(IDEMPOTENCY_KEYS)?;
            Ok(())
        })
        .await
}

fn table_key(user: UserId, key: &str) -> Result<Vec<u8>, KeyRefused> {
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(KeyRefused::Key);
    }
    let mut bytes = Vec::with_capacity(16 + key.len());
    bytes.extend_from_slice(&user.to_bytes());
    bytes.extend_from_slice(key.as_bytes());
    Ok(bytes)
}

fn decode(bytes: &[u8]) -> Result<KeptKey, StoreError> {
    postcard::from_bytes(bytes).map_err(|err| StoreError::corrupt("idempotency key", err))
}

fn encode(kept: &KeptKey) -> Vec<u8> {
    postcard::to_stdvec(kept).expect("kept keys always encode")
}

/// Claims `key` of `user` at `now` for a request with `fingerprint`, in one
/// write: unused (or older than 24 hours) → recorded in progress,
/// [`IdempotencyClaim::Claimed`]; claimed for another request (another
/// fingerprint) → [`IdempotencyClaim::Mismatch`], whether or not it is
/// done; in progress → [`IdempotencyClaim::InProgress`]; done →
/// [`IdempotencyClaim::Replay`] of its response.
pub(crate) async fn claim(
    store: &Store,
    user: UserId,
    key: &str,
    fingerprint: [u8; 32],
    now: Timestamp,
) -> Result<IdempotencyClaim, KeyError> {
    let table_key = table_key(user, key)?;
    let claim = store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(IDEMPOTENCY_KEYS)?;
            let found = match table.get(table_key.as_slice())? {
                Some(value) => Some(decode(value.value())?),
                None => None,
            };
            let fresh = |kept: &KeptKey| {
                now.as_millis().saturating_sub(kept.claimed.as_millis()) < KEPT_FOR_MS
            };
            match found {
                Some(kept) if fresh(&kept) => Ok(if kept.fingerprint != fingerprint {
                    IdempotencyClaim::Mismatch
                } else {
                    match kept.response {
                        None => IdempotencyClaim::InProgress,
                        Some(r) => IdempotencyClaim::Replay(KeptResponse {
                            status: r.status,
                            location: r.location,
                            body: r.body,
                        }),
                    }
                }),
                _ => {
                    let kept = KeptKey {
                        fingerprint,
                        claimed: now,
                        response: None,
                    };
                    table.insert(table_key.as_slice(), encode(&kept).as_slice())?;
                    Ok(IdempotencyClaim::Claimed)
                }
            }
        })
        .await?;
    Ok(claim)
}

/// Keeps the response of the request that claimed `key` of `user`, or
/// (`None`) releases the key, when the request changed nothing and may be
/// tried again. Only a key in progress changes: a response kept already
/// stays as it is (releasing it would let the request run twice).
pub(crate) async fn keep(
    store: &Store,
    user: UserId,
    key: &str,
    response: Option<KeptResponse>,
) -> Result<(), KeyError> {
    let table_key = table_key(user, key)?;
    if let Some(response) = &response
        && response.body.len() > MAX_BODY
    {
        return Err(KeyRefused::TooLarge(response.body.len()).into());
    }
    // A refusal is found before anything is written: nothing to roll back.
    store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(IDEMPOTENCY_KEYS)?;
            let kept = match table.get(table_key.as_slice())? {
                Some(value) => decode(value.value())?,
                None => return Ok(Err(KeyRefused::NotClaimed)),
            };
            if kept.response.is_some() {
                return Ok(Ok(()));
            }
            match &response {
                None => {
                    table.remove(table_key.as_slice())?;
                }
                Some(response) => {
                    let done = KeptKey {
                        response: Some(Response {
                            status: response.status,
                            location: response.location.clone(),
                            body: response.body.clone(),
                        }),
                        ..kept
                    };
                    table.insert(table_key.as_slice(), encode(&done).as_slice())?;
                }
            }
            Ok(Ok(()))
        })
        .await??;
    Ok(())
}

/// Removes every key claimed 24 hours or more before `now`; returns how
/// many.
pub(crate) async fn purge(store: &Store, now: Timestamp) -> Result<usize, StoreError> {
    store
        .write_lazy(move |tx| {
            let mut table = tx.open_table(IDEMPOTENCY_KEYS)?;
            let mut removed = 0;
            table.retain(|_, value| {
                // An unreadable record is of no use to anyone: purge it too.
                let keep = decode(value).is_ok_and(|kept| {
                    now.as_millis().saturating_sub(kept.claimed.as_millis()) < KEPT_FOR_MS
                });
                removed += usize::from(!keep);
                keep
            })?;
            Ok(removed)
        })
        .await
}
