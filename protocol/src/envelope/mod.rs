//! Signed envelopes and receipts with a canonical binary encoding.
//!
//! Every message between nodes travels as a [`SignedEnvelope`]: a [`Header`]
//! naming sender, author, recipients and case, a body of any serde type, and
//! the sender node's ed25519 signature over the exact bytes sent. The
//! receiver checks those bytes with [`open`] (never a re-encoding of them)
//! and answers with a [`SignedReceipt`] that names the envelope by its
//! SHA-256 digest, so either side can later prove what was sent and received.
//!
//! The encoding is canonical: one header and body have exactly one encoding,
//! and every other byte string is refused (trailing bytes, wrong lengths,
//! over-long numbers, text written differently from how it reads). The wire
//! format is specified in `docs/PROTOCOL.md`, section "Envelopes and
//! receipts".
//!
//! Body types must serialize deterministically: use `BTreeMap`/`BTreeSet`,
//! never `HashMap`/`HashSet`, whose order changes between runs; a receiver
//! refuses a body whose bytes are not the canonical encoding of its value.
//!
//! ```
//! use std::collections::HashMap;
//! use imi_protocol::{
//!     open, seal, signing_key_from_seed, Author, AuthorityId, CaseId, Header, MessageId,
//!     MessageKind, NodeAddress, VerifyContext, PROTOCOL_VERSION,
//! };
//!
//! let helsinki: NodeAddress = "FI/helsinki-1".parse().unwrap();
//! let lisboa: NodeAddress = "PT/lisboa".parse().unwrap();
//! let key = signing_key_from_seed([7; 32]);
//! let header = Header {
//!     version: PROTOCOL_VERSION,
//!     id: MessageId::from_parts(1_700_000_000_000, 1),
//!     sender: helsinki.clone(),
//!     author: Author { authority: AuthorityId::from_parts(1, 2), user: None },
//!     recipients: vec![lisboa.clone()],
//!     case: CaseId::from_parts(1_700_000_000_000, 2),
//!     sequence: 0,
//!     timestamp_ms: 1_700_000_000_000,
//!     kind: MessageKind::Request,
//! };
//! let sealed = seal(header, &"Is this doctor registered?".to_owned(), &key).unwrap();
//!
//! let keys = HashMap::from([(helsinki, key.verifying_key())]);
//! let opened = open::<String>(sealed.as_bytes(), &VerifyContext::new(&lisboa, &keys)).unwrap();
//! assert_eq!(opened.body, "Is this doctor registered?");
//! assert_eq!(opened.digest, sealed.digest());
//! ```

mod address;
mod frame;
mod receipt;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AuthorityId, CaseId, MessageId, UserId};
use frame::{FrameWriter, decode_canonical};

pub use address::{InvalidNodeAddress, InvalidNodeName, MAX_NODE_NAME_LEN, NodeAddress, NodeName};
pub use receipt::{
    RECEIPT_MAGIC, ReceiptBody, ReceiptMismatch, ReceiptOutcome, SignedReceipt, open_receipt,
    seal_receipt,
};

/// The version of the wire format and message semantics this code speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// The bytes that open every envelope.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"IMI1";

/// Names of an envelope's sections, for error messages.
const ENVELOPE_SECTIONS: [&str; 2] = ["header", "body"];

/// The node signing key made from a 32-byte secret seed. Keys are created
/// and stored by the caller; this crate never draws randomness.
pub fn signing_key_from_seed(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&seed)
}

/// The SHA-256 digest of an envelope's or receipt's exact wire bytes: the
/// name by which receipts and stores refer to them.
pub fn wire_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Who wrote a message: the authority, and the user when a person (not the
/// node itself) wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// The authoring authority.
    pub authority: AuthorityId,
    /// The authoring user of that authority, if any.
    pub user: Option<UserId>,
}

/// What a message carries, which tells the receiver how to read its body.
///
/// The variant's position is its number on the wire: new kinds are added at
/// the end, never in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// A step of a request between two authorities.
    Request,
    /// A step of an alert to many countries.
    Alert,
    /// A step of a notification to many countries.
    Notification,
    /// A step of a case filed by a citizen or business.
    PublicCase,
    /// A directory update.
    Directory,
    /// Control traffic between nodes.
    Control,
}

impl MessageKind {
    /// The kind's name in logs and codes (`"public-case"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Alert => "alert",
            MessageKind::Notification => "notification",
            MessageKind::PublicCase => "public-case",
            MessageKind::Directory => "directory",
            MessageKind::Control => "control",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every envelope says about itself, readable before the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The protocol version; [`PROTOCOL_VERSION`] when sealing.
    pub version: u16,
    /// The message's id; receivers deduplicate by it.
    pub id: MessageId,
    /// The node that sent and signed the message.
    pub sender: NodeAddress,
    /// The authority and user who wrote it.
    pub author: Author,
    /// The nodes the message is addressed to (at least one).
    pub recipients: Vec<NodeAddress>,
    /// The case the message belongs to.
    pub case: CaseId,
    /// The message's position within its case, counted by the sender, so
    /// receivers apply a case's messages in order.
    pub sequence: u64,
    /// When the sender sealed the message, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// What the body carries.
    pub kind: MessageKind,
}

/// A sealed envelope: the exact bytes sent, with their header decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEnvelope {
    bytes: Vec<u8>,
    header: Header,
}

impl SignedEnvelope {
    /// Takes bytes read from a store or the network, checking their layout
    /// and header but **not** the signature or body: use [`open`] for
    /// anything received from another node.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VerifyError> {
        let header = peek_header(&bytes)?;
        Ok(Self { bytes, header })
    }

    /// The exact wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact wire bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The SHA-256 digest of the wire bytes, which receipts name.
    pub fn digest(&self) -> [u8; 32] {
        wire_digest(&self.bytes)
    }
}

/// A message that could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The header names a version this code does not write.
    #[error(
        "cannot seal a message of protocol version {found}: this node writes version {supported}; set the header's version to PROTOCOL_VERSION"
    )]
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
        /// The version this code writes.
        supported: u16,
    },
    /// The header names no recipient.
    #[error("message {message} names no recipients; address it to at least one node")]
    NoRecipients {
        /// The message's id.
        message: MessageId,
    },
    /// Postcard could not encode a part of the message.
    #[error("the {part} could not be encoded: {source}")]
    Encode {
        /// Which part (`"header"`, `"body"`).
        part: &'static str,
        /// What postcard reported.
        #[source]
        source: postcard::Error,
    },
    /// A part is longer than a length field can say.
    #[error("the {part} is {len} bytes long, more than the 4 GiB a message can carry")]
    TooLarge {
        /// Which part.
        part: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

/// Seals `body` under `header` with the sender node's `key`: encodes both,
/// and signs the bytes. The same header, body and key always give the same
/// bytes.
pub fn seal<B: Serialize + ?Sized>(
    header: Header,
    body: &B,
    key: &SigningKey,
) -> Result<SignedEnvelope, EncodeError> {
    if header.version != PROTOCOL_VERSION {
        return Err(EncodeError::UnsupportedVersion {
            found: header.version,
            supported: PROTOCOL_VERSION,
        });
    }
    if header.recipients.is_empty() {
        return Err(EncodeError::NoRecipients { message: header.id });
    }
    seal_any_version(header, body, key)
}

/// Seals without checking the header, for tests that need frames this code
/// would never write.
fn seal_any_version<B: Serialize + ?Sized>(
    header: Header,
    body: &B,
    key: &SigningKey,
) -> Result<SignedEnvelope, EncodeError> {
    let mut writer = FrameWriter::new(&ENVELOPE_MAGIC, header.version);
    writer.section("header", &header)?;
    writer.section("body", body)?;
    Ok(SignedEnvelope {
        bytes: writer.sign(key),
        header,
    })
}

/// Where the verifying node looks up the keys of sending nodes.
pub trait SenderKeys {
    /// The key that signs `sender`'s messages, or `None` if the node is not
    /// known (or no longer trusted).
    fn key_of(&self, sender: &NodeAddress) -> Option<VerifyingKey>;
}

impl<S: BuildHasher> SenderKeys for HashMap<NodeAddress, VerifyingKey, S> {
    fn key_of(&self, sender: &NodeAddress) -> Option<VerifyingKey> {
        self.get(sender).copied()
    }
}

impl SenderKeys for BTreeMap<NodeAddress, VerifyingKey> {
    fn key_of(&self, sender: &NodeAddress) -> Option<VerifyingKey> {
        self.get(sender).copied()
    }
}

/// What [`open`] needs to know about the receiving node.
#[derive(Clone, Copy)]
pub struct VerifyContext<'a> {
    /// The address of the node that received the message.
    pub this_node: &'a NodeAddress,
    /// The keys of the nodes it accepts messages from.
    pub keys: &'a dyn SenderKeys,
}

impl<'a> VerifyContext<'a> {
    /// The context of node `this_node`, trusting the senders in `keys`.
    pub fn new(this_node: &'a NodeAddress, keys: &'a dyn SenderKeys) -> Self {
        Self { this_node, keys }
    }
}

impl fmt::Debug for VerifyContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyContext")
            .field("this_node", self.this_node)
            .finish_non_exhaustive()
    }
}

/// A message that passed every check of [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<B> {
    /// The verified header.
    pub header: Header,
    /// The decoded body.
    pub body: B,
    /// The SHA-256 digest of the exact bytes received, for the receipt.
    pub digest: [u8; 32],
}

/// Why a received envelope or receipt was refused. Each variant names the
/// first check that failed; [`VerifyError::code`] gives a stable short code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes are not a well-formed frame or header.
    #[error("the message is malformed and was not read: {reason}")]
    Malformed {
        /// What is wrong with the bytes.
        reason: String,
    },
    /// The frame is of a protocol version this node does not speak.
    #[error(
        "the message uses protocol version {found}, but this node speaks version {supported}; the older of the two nodes needs an upgrade"
    )]
    UnsupportedVersion {
        /// The version in the message.
        found: u16,
        /// The version this node speaks.
        supported: u16,
    },
    /// No key is known for the claimed sender.
    #[error(
        "the message claims to come from node {sender}, whose key this node does not know; check that the directory of nodes is up to date"
    )]
    UnknownSender {
        /// The node the header names as sender.
        sender: NodeAddress,
    },
    /// The signature does not verify over the bytes with the signer's key.
    #[error(
        "the signature of the message from node {sender} does not verify: it was forged or changed on the way, so it was refused"
    )]
    BadSignature {
        /// The node whose key was used.
        sender: NodeAddress,
    },
    /// The message is authentic but not addressed to this node.
    #[error(
        "the message is addressed to {}, not to this node {this_node}",
        list(.recipients)
    )]
    WrongRecipient {
        /// This node.
        this_node: NodeAddress,
        /// The recipients the header names.
        recipients: Vec<NodeAddress>,
    },
    /// The message is authentic and addressed here, but its body does not
    /// decode as the expected type.
    #[error("the body of the message does not decode as expected: {reason}")]
    MalformedBody {
        /// Why decoding failed.
        reason: String,
    },
}

impl VerifyError {
    /// A stable short code for the failure (`"bad-signature"`), carried by
    /// rejecting receipts and suited to metrics labels.
    pub const fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed { .. } => "malformed",
            VerifyError::UnsupportedVersion { .. } => "unsupported-version",
            VerifyError::UnknownSender { .. } => "unknown-sender",
            VerifyError::BadSignature { .. } => "bad-signature",
            VerifyError::WrongRecipient { .. } => "wrong-recipient",
            VerifyError::MalformedBody { .. } => "malformed-body",
        }
    }
}

/// Addresses joined with commas, for messages.
fn list(addresses: &[NodeAddress]) -> String {
    if addresses.is_empty() {
        return "no node".to_owned();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the header of an envelope **without** verifying its signature:
/// for routing and logging only, never for acting on the message. Checks
/// the layout, the version and that the header is canonical.
pub fn peek_header(bytes: &[u8]) -> Result<Header, VerifyError> {
    read_envelope(bytes).map(|(_, header)| header)
}

/// Checks the layout and version and decodes the header.
fn read_envelope(bytes: &[u8]) -> Result<(frame::Frame<'_, 2>, Header), VerifyError> {
    let frame = frame::parse(bytes, &ENVELOPE_MAGIC, "message", ENVELOPE_SECTIONS)?;
    let header: Header =
        decode_canonical(frame.sections[0]).map_err(|reason| VerifyError::Malformed {
            reason: format!("the header does not decode: {reason}"),
        })?;
    if header.version != frame.version {
        return Err(VerifyError::Malformed {
            reason: format!(
                "the frame says version {} but the header says version {}",
                frame.version, header.version
            ),
        });
    }
    Ok((frame, header))
}

/// Verifies received envelope bytes and decodes the body as a `B`.
///
/// The checks run in this order, and the first that fails is returned: the
/// frame is well formed; its version is spoken here; the header decodes;
/// the sender is known; the signature verifies over the exact bytes; the
/// message is addressed to this node; the body decodes. The signature is
/// checked with `verify_strict`, so no second valid signature can be made
/// for the same bytes from the first.
pub fn open<B: Serialize + DeserializeOwned>(
    bytes: &[u8],
    ctx: &VerifyContext<'_>,
) -> Result<Opened<B>, VerifyError> {
    let (frame, header) = read_envelope(bytes)?;
    let Some(key) = ctx.keys.key_of(&header.sender) else {
        return Err(VerifyError::UnknownSender {
            sender: header.sender,
        });
    };
    if key.verify_strict(frame.signed, &frame.signature).is_err() {
        return Err(VerifyError::BadSignature {
            sender: header.sender,
        });
    }
    if !header.recipients.contains(ctx.this_node) {
        return Err(VerifyError::WrongRecipient {
            this_node: ctx.this_node.clone(),
            recipients: header.recipients,
        });
    }
    let body = decode_canonical(frame.sections[1])
        .map_err(|reason| VerifyError::MalformedBody { reason })?;
    Ok(Opened {
        header,
        body,
        digest: wire_digest(bytes),
    })
}
