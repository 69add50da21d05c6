//! The deliver protocol's framing: envelopes in a request, answers back.

use serde::{Deserialize, Serialize};

/// The answer on the deliver protocol, one per envelope of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DeliverAnswer {
    /// A signed receipt (accepted or rejected).
    Receipt(Vec<u8>),
    /// Not now (an earlier message of the case is missing, or the receiver
    /// could not store the message); send again later.
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
