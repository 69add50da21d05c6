//! Signed receipts: the receiver's proof of what it received and when.

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::frame::{self, FrameWriter, decode_canonical};
use super::{
    EncodeError, Header, NodeAddress, PROTOCOL_VERSION, SignedEnvelope, VerifyError, wire_digest,
};
use crate::{CaseId, MessageId};

/// The bytes that open every receipt.
pub const RECEIPT_MAGIC: [u8; 4] = *b"IMR1";

/// What a receiver says about one envelope it received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The id of the envelope received.
    pub message: MessageId,
    /// The case it belongs to.
    pub case: CaseId,
    /// Its sequence number within the case.
    pub sequence: u64,
    /// The SHA-256 digest of the exact envelope bytes received.
    pub envelope_digest: [u8; 32],
    /// The node that received it and signs the receipt.
    pub receiver: NodeAddress,
    /// When it was received, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
    /// Whether the receiver accepted it.
    pub outcome: ReceiptOutcome,
}

/// Whether a receiver accepted an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReceiptOutcome {
    /// The envelope was verified and stored.
    Accepted,
    /// The envelope was refused.
    Rejected {
        /// A stable short code, such as [`VerifyError::code`] gives.
        code: String,
        /// The reason as a sentence.
        reason: String,
    },
}

impl ReceiptOutcome {
    /// The outcome for an envelope that [`open`](super::open) refused.
    pub fn rejected(err: &VerifyError) -> Self {
        ReceiptOutcome::Rejected {
            code: err.code().to_owned(),
            reason: err.to_string(),
        }
    }

    /// Whether the envelope was accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, ReceiptOutcome::Accepted)
    }
}

impl ReceiptBody {
    /// The receipt by `receiver` for the envelope with `header` whose bytes
    /// have `envelope_digest`.
    pub fn new(
        header: &Header,
        envelope_digest: [u8; 32],
        receiver: NodeAddress,
        received_at_ms: u64,
        outcome: ReceiptOutcome,
    ) -> Self {
        Self {
            message: header.id,
            case: header.case,
            sequence: header.sequence,
            envelope_digest,
            receiver,
            received_at_ms,
            outcome,
        }
    }

    /// Checks that this receipt acknowledges exactly `sent`: the same
    /// message, case and sequence, the same bytes (by digest), from one of
    /// its recipients.
    pub fn check_matches(&self, sent: &SignedEnvelope) -> Result<(), ReceiptMismatch> {
        let header = sent.header();
        if self.message != header.id {
            return Err(ReceiptMismatch::Message {
                expected: header.id,
                found: self.message,
            });
        }
        if self.envelope_digest != sent.digest() {
            return Err(ReceiptMismatch::Digest { message: header.id });
        }
        if self.case != header.case || self.sequence != header.sequence {
            return Err(ReceiptMismatch::Case {
                message: header.id,
                expected: (header.case, header.sequence),
                found: (self.case, self.sequence),
            });
        }
        if !header.recipients.contains(&self.receiver) {
            return Err(ReceiptMismatch::NotARecipient {
                message: header.id,
                receiver: self.receiver.clone(),
            });
        }
        Ok(())
    }
}

/// A receipt that does not acknowledge the envelope it was matched with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptMismatch {
    /// It names another message.
    #[error("the receipt is for message {found}, not for message {expected}")]
    Message {
        /// The id of the envelope sent.
        expected: MessageId,
        /// The id the receipt names.
        found: MessageId,
    },
    /// It names the message but other bytes than were sent.
    #[error(
        "the receipt for message {message} acknowledges other bytes than were sent (the digests differ)"
    )]
    Digest {
        /// The message's id.
        message: MessageId,
    },
    /// It names the message but another case or sequence number.
    #[error(
        "the receipt for message {message} names case {} #{}, but the message belongs to case {} #{}",
        .found.0, .found.1, .expected.0, .expected.1
    )]
    Case {
        /// The message's id.
        message: MessageId,
        /// The case and sequence of the envelope sent.
        expected: (CaseId, u64),
        /// The case and sequence the receipt names.
        found: (CaseId, u64),
    },
    /// It comes from a node the message was not addressed to.
    #[error(
        "the receipt comes from node {receiver}, which is not a recipient of message {message}"
    )]
    NotARecipient {
        /// The message's id.
        message: MessageId,
        /// The node the receipt names as receiver.
        receiver: NodeAddress,
    },
}

/// A sealed receipt: the exact bytes sent, with their body decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    bytes: Vec<u8>,
    body: ReceiptBody,
}

impl SignedReceipt {
    /// Takes bytes read from a store or the network, checking their layout
    /// and body but **not** the signature: use [`open_receipt`] for anything
    /// received from another node.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VerifyError> {
        let (_, body) = read_receipt(&bytes)?;
        Ok(Self { bytes, body })
    }

    /// The exact wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact wire bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The receipt's contents (unverified if made by [`Self::from_bytes`]).
    pub fn body(&self) -> &ReceiptBody {
        &self.body
    }

    /// The SHA-256 digest of the wire bytes.
    pub fn digest(&self) -> [u8; 32] {
        wire_digest(&self.bytes)
    }
}

/// Seals a receipt with the receiving node's `key`. The same body and key
/// always give the same bytes.
pub fn seal_receipt(body: ReceiptBody, key: &SigningKey) -> Result<SignedReceipt, EncodeError> {
    let mut writer = FrameWriter::new(&RECEIPT_MAGIC, PROTOCOL_VERSION);
    writer.section("receipt", &body)?;
    Ok(SignedReceipt {
        bytes: writer.sign(key),
        body,
    })
}

/// Verifies receipt bytes signed by the node the envelope was sent to,
/// whose key is `expected_receiver_key`. Checks, in order: the frame is well
/// formed; its version is spoken here; the receipt decodes; the signature
/// verifies over the exact bytes. Match it with the envelope sent through
/// [`ReceiptBody::check_matches`].
pub fn open_receipt(
    bytes: &[u8],
    expected_receiver_key: &VerifyingKey,
) -> Result<ReceiptBody, VerifyError> {
    let (frame, body) = read_receipt(bytes)?;
    if expected_receiver_key
        .verify_strict(frame.signed, &frame.signature)
        .is_err()
    {
        return Err(VerifyError::BadSignature {
            sender: body.receiver,
        });
    }
    Ok(body)
}

/// Checks the layout and version and decodes the receipt.
fn read_receipt(bytes: &[u8]) -> Result<(frame::Frame<'_, 1>, ReceiptBody), VerifyError> {
    let frame = frame::parse(bytes, &RECEIPT_MAGIC, "receipt", ["receipt"])?;
    let body = decode_canonical(frame.sections[0]).map_err(|reason| VerifyError::Malformed {
        reason: format!("the receipt does not decode: {reason}"),
    })?;
    Ok((frame, body))
}
