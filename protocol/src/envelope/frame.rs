//! The frame shared by envelopes and receipts, and canonical decoding.
//!
//! A frame is `magic (4) | version (u16 BE) | N × (length (u32 BE) | bytes)
//! | ed25519 signature (64)`, the signature covering every byte before it.

use ed25519_dalek::{Signature, Signer, SigningKey};
use postcard::ser_flavors::Flavor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{EncodeError, PROTOCOL_VERSION, VerifyError};

/// Length of the magic bytes that open a frame.
const MAGIC_LEN: usize = 4;
/// Length of the magic bytes and the version together.
const PREFIX_LEN: usize = MAGIC_LEN + 2;
/// Length of a section's length field.
const LENGTH_LEN: usize = 4;
/// Length of the signature that closes a frame.
pub(super) const SIGNATURE_LEN: usize = ed25519_dalek::SIGNATURE_LENGTH;

/// Builds a frame section by section, then signs it.
pub(super) struct FrameWriter {
    bytes: Vec<u8>,
}

impl FrameWriter {
    pub(super) fn new(magic: &[u8; MAGIC_LEN], version: u16) -> Self {
        let mut bytes = Vec::with_capacity(256);
        bytes.extend_from_slice(magic);
        bytes.extend_from_slice(&version.to_be_bytes());
        Self { bytes }
    }

    /// Appends `value`, encoded with postcard, behind its length.
    pub(super) fn section<T: Serialize + ?Sized>(
        &mut self,
        part: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; LENGTH_LEN]);
        let bytes = std::mem::take(&mut self.bytes);
        self.bytes = postcard::to_extend(value, bytes)
            .map_err(|source| EncodeError::Encode { part, source })?;
        let len = self.bytes.len() - length_at - LENGTH_LEN;
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLarge { part, len })?;
        self.bytes[length_at..length_at + LENGTH_LEN].copy_from_slice(&len32.to_be_bytes());
        Ok(())
    }

    /// Signs every byte written so far and appends the signature.
    pub(super) fn sign(mut self, key: &SigningKey) -> Vec<u8> {
        let signature = key.sign(&self.bytes);
        self.bytes.extend_from_slice(&signature.to_bytes());
        self.bytes
    }
}

/// A frame whose layout has been checked, not yet its signature.
pub(super) struct Frame<'a, const N: usize> {
    /// The version the frame claims (already known to be supported).
    pub(super) version: u16,
    /// The contents of each section, in order.
    pub(super) sections: [&'a [u8]; N],
    /// Every byte the signature covers.
    pub(super) signed: &'a [u8],
    /// The signature.
    pub(super) signature: Signature,
}

/// Checks the layout of a frame with `N` sections.
///
/// The magic comes first, then the version, so that a frame of a later
/// version is reported as such even if its layout has changed; then the
/// sections, then that exactly one signature follows them.
pub(super) fn parse<'a, const N: usize>(
    bytes: &'a [u8],
    magic: &[u8; MAGIC_LEN],
    what: &str,
    section_names: [&str; N],
) -> Result<Frame<'a, N>, VerifyError> {
    let malformed = |reason: String| VerifyError::Malformed { reason };
    if bytes.len() < PREFIX_LEN {
        return Err(malformed(format!(
            "{} bytes are too few for a {what}, which starts with {PREFIX_LEN} bytes of magic and version",
            bytes.len()
        )));
    }
    if &bytes[..MAGIC_LEN] != magic {
        return Err(malformed(format!(
            "a {what} starts with the bytes {:?}, these start with {:?}",
            String::from_utf8_lossy(magic),
            String::from_utf8_lossy(&bytes[..MAGIC_LEN]),
        )));
    }
    let version = u16::from_be_bytes([bytes[MAGIC_LEN], bytes[MAGIC_LEN + 1]]);
    if version != PROTOCOL_VERSION {
        return Err(VerifyError::UnsupportedVersion {
            found: version,
            supported: PROTOCOL_VERSION,
        });
    }
    let mut rest = &bytes[PREFIX_LEN..];
    let mut sections: [&[u8]; N] = [&[]; N];
    for (section, name) in sections.iter_mut().zip(section_names) {
        let Some((length, after)) = rest.split_first_chunk::<LENGTH_LEN>() else {
            return Err(malformed(format!(
                "the {what} ends before the length of its {name}"
            )));
        };
        let len = u32::from_be_bytes(*length) as usize;
        if after.len() < len {
            return Err(malformed(format!(
                "the {name} is said to be {len} bytes long, but only {} bytes follow",
                after.len()
            )));
        }
        (*section, rest) = after.split_at(len);
    }
    if rest.len() != SIGNATURE_LEN {
        let reason = if rest.len() < SIGNATURE_LEN {
            format!(
                "the signature is cut short: {} of its {SIGNATURE_LEN} bytes are present",
                rest.len()
            )
        } else {
            format!(
                "{} unexpected bytes follow the signature",
                rest.len() - SIGNATURE_LEN
            )
        };
        return Err(malformed(reason));
    }
    let signed_len = bytes.len() - SIGNATURE_LEN;
    let signature = Signature::from_slice(rest).map_err(|err| malformed(err.to_string()))?;
    Ok(Frame {
        version,
        sections,
        signed: &bytes[..signed_len],
        signature,
    })
}

/// Decodes a `T` that must fill `bytes` exactly and be in canonical form:
/// encoding the decoded value again must give the same bytes. This refuses
/// over-long integers, maps out of order, and text that parses to a value
/// written differently (such as a country code in lowercase).
pub(super) fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|err| err.to_string())?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes are left over after the value",
            rest.len()
        ));
    }
    let same = postcard::serialize_with_flavor(
        &value,
        Compare {
            expected: bytes,
            pos: 0,
        },
    )
    .unwrap_or(false);
    if !same {
        return Err(
            "the bytes are not in canonical form (an over-long number, a map out of order, or text written differently from how it reads)"
                .to_owned(),
        );
    }
    Ok(value)
}

/// A postcard output that compares what is written against expected bytes
/// instead of storing it; it stops at the first difference.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
}

impl Flavor for Compare<'_> {
    type Output = bool;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.pos + data.len();
        if self.expected.get(self.pos..end) != Some(data) {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.pos = end;
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.pos == self.expected.len())
    }
}
