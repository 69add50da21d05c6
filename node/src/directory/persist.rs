//! The directory's tables in the store (listed in `docs/STORE.md`).

use imi_protocol::Country;
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::document::{CountryDoc, PersistOp};
use super::signed::SignedHeads;
use crate::store::{Store, StoreError};

/// Country code → the document saved whole (Automerge binary format).
const DOCS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("directory-docs-1");
/// (country code, sequence) → an incremental save made after the whole one.
const INCREMENTS: TableDefinition<'_, (&str, u64), &[u8]> =
    TableDefinition::new("directory-increments-1");
/// (country code, signer key) → the latest [`SignedHeads`] of that signer.
const SIGNATURES: TableDefinition<'_, (&str, &[u8]), &[u8]> =
    TableDefinition::new("directory-signatures-2");

/// Creates the directory's tables.
pub(crate) fn create_tables(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(DOCS)?;
    tx.open_table(INCREMENTS)?;
    tx.open_table(SIGNATURES)?;
    Ok(())
}

/// Loads the document of `country` as stored (genesis when nothing is).
pub(crate) fn load(store: &Store, country: Country) -> Result<CountryDoc, StoreError> {
    let read = store.read()?;
    let code = country.code();
    let mut saved = Vec::new();
    let mut next_seq = 0;
    let docs = read.open_table(DOCS)?;
    let increments = read.open_table(INCREMENTS)?;
    let whole = docs.get(code)?.map(|v| v.value().to_vec());
    let mut parts = Vec::new();
    for item in increments.range((code, 0)..=(code, u64::MAX))? {
        let (key, value) = item?;
        next_seq = key.value().1 + 1;
        parts.push(value.value().to_vec());
    }
    match whole {
        Some(whole) => saved.push(whole),
        // Increments alone: start from genesis and apply them all.
        None if !parts.is_empty() => saved.push(super::model::genesis(country).save()),
        None => {}
    }
    saved.extend(parts);
    let signatures = read.open_table(SIGNATURES)?;
    let mut sigs = Vec::new();
    for item in signatures.range((code, &[][..])..=(code, &[0xffu8; 33][..]))? {
        let (_, value) = item?;
        let signed: SignedHeads = postcard::from_bytes(value.value())
            .map_err(|e| StoreError::corrupt("directory signature", e))?;
        sigs.push(signed);
    }
    CountryDoc::restore(country, &saved, next_seq, sigs)
        .map_err(|e| StoreError::corrupt("directory document", e))
}

/// Makes the writes `ops` in one transaction, in order.
pub(crate) async fn write(store: &Store, ops: Vec<PersistOp>) -> Result<(), StoreError> {
    if ops.is_empty() {
        return Ok(());
    }
    store
        .write(move |tx| {
            let mut docs = tx.open_table(DOCS)?;
            let mut increments = tx.open_table(INCREMENTS)?;
            let mut signatures = tx.open_table(SIGNATURES)?;
            for op in &ops {
                match op {
                    PersistOp::Increment {
                        country,
                        seq,
                        bytes,
                    } => {
                        increments.insert((country.code(), *seq), bytes.as_slice())?;
                    }
                    PersistOp::Full {
                        country,
                        bytes,
                        below,
                    } => {
                        docs.insert(country.code(), bytes.as_slice())?;
                        let code = country.code();
                        let stale: Vec<u64> = increments
                            .range((code, 0)..(code, *below))?
                            .map(|item| item.map(|(k, _)| k.value().1))
                            .collect::<Result<_, _>>()?;
                        for seq in stale {
                            increments.remove((code, seq))?;
                        }
                    }
                    PersistOp::Signature {
                        country,
                        signer,
                        bytes,
                    } => {
                        signatures.insert((country.code(), signer.as_slice()), bytes.as_slice())?;
                    }
                }
            }
            Ok(())
        })
        .await
}
