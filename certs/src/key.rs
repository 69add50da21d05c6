//! Ed25519 keys: the node's identity key and the keys of the CAs.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};

/// A node's identity: the ed25519 key its libp2p secure channel proves and
/// its node certificate certifies. Its PeerId is libp2p's, computed by
/// `libp2p-identity`, so what the secure channel reports and what the
/// certificate says are the same string.
///
/// The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct NodeKey {
    signing: SigningKey,
}

impl NodeKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_secret_seed(generate_seed())
    }

    /// The key whose 32-byte ed25519 secret seed is `seed`.
    pub fn from_secret_seed(seed: [u8; 32]) -> Self {
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte secret seed, from which the node builds its
    /// `ed25519_dalek::SigningKey` and its libp2p keypair.
    pub fn secret_seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The 32-byte ed25519 public key.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The libp2p PeerId of this key, in its usual base58 form (`12D3KooW…`).
    pub fn peer_id(&self) -> String {
        self.libp2p_peer_id().to_base58()
    }

    /// The libp2p PeerId of this key.
    pub fn libp2p_peer_id(&self) -> libp2p_identity::PeerId {
        peer_id_of(&self.public_key_bytes())
            .expect("an ed25519 public key derived from a secret is always valid")
    }

    /// The libp2p keypair for this key, to build the node's swarm with.
    pub fn libp2p_keypair(&self) -> libp2p_identity::Keypair {
        let secret = libp2p_identity::ed25519::SecretKey::try_from_bytes(self.secret_seed())
            .expect("a 32-byte ed25519 seed is always a valid secret key");
        libp2p_identity::Keypair::from(libp2p_identity::ed25519::Keypair::from(secret))
    }

    /// The key as an unencrypted PKCS#8 PEM document (`-----BEGIN PRIVATE
    /// KEY-----`), the format OpenSSL and rcgen read. Store it with owner-only
    /// permissions, e.g. with [`write_private_key_pem`](crate::write_private_key_pem).
    pub fn to_pkcs8_pem(&self) -> String {
        signing_key_to_pem(&self.signing)
    }

    /// Reads a key from an unencrypted PKCS#8 PEM document holding an ed25519
    /// key (with or without the embedded public key, which must match).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        Ok(NodeKey {
            signing: signing_key_from_pem(pem)?,
        })
    }

    /// Signs `message` with this key (an ed25519 signature, 64 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

/// A private key document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a PKCS#8 ed25519 private key.
    #[error(
        "the private key is not an unencrypted PKCS#8 ed25519 key (-----BEGIN PRIVATE KEY-----): {reason}"
    )]
    NotEd25519Pkcs8 {
        /// What the PKCS#8 decoder found wrong.
        reason: String,
    },
    /// The text is not a PKCS#8 ECDSA P-256 private key (a web CA's key).
    #[error(
        "the private key is not an unencrypted PKCS#8 ECDSA P-256 key (-----BEGIN PRIVATE KEY-----): {reason}"
    )]
    NotEcdsaP256Pkcs8 {
        /// What the decoder found wrong.
        reason: String,
    },
    /// The key does not belong to the certificate it is loaded with.
    #[error("the private key does not match the public key of its certificate")]
    DoesNotMatchCertificate,
}

pub(crate) fn generate_seed() -> [u8; 32] {
    let secret = libp2p_identity::ed25519::SecretKey::generate();
    let mut seed = [0u8; 32];
    seed.copy_from_slice(secret.as_ref());
    seed
}

pub(crate) fn signing_key_to_pem(key: &SigningKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .expect("encoding an ed25519 key as PKCS#8 cannot fail")
        .to_string()
}

pub(crate) fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::NotEd25519Pkcs8 {
        reason: e.to_string(),
    })
}

/// libp2p's PeerId for an ed25519 public key, or `None` if the bytes are
/// not a valid ed25519 point.
pub(crate) fn peer_id_of(public_key: &[u8; 32]) -> Option<libp2p_identity::PeerId> {
    let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(public_key).ok()?;
    Some(libp2p_identity::PeerId::from_public_key(
        &libp2p_identity::PublicKey::from(key),
    ))
}

/// An ed25519 key seen through rcgen's signing interface. The signature is
/// made by ed25519-dalek, the same code that signs the node's envelopes, so
/// no rcgen key type is ever built from secret material.
pub(crate) struct RcgenSigner<'a> {
    key: &'a SigningKey,
    public: [u8; 32],
}

impl<'a> RcgenSigner<'a> {
    pub(crate) fn new(key: &'a SigningKey) -> Self {
        RcgenSigner {
            key,
            public: key.verifying_key().to_bytes(),
        }
    }
}

impl rcgen::PublicKeyData for RcgenSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for RcgenSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

/// An ed25519 public key that a certificate is issued for.
pub(crate) struct Ed25519PublicKey(pub(crate) [u8; 32]);

impl rcgen::PublicKeyData for Ed25519PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = NodeKey::generate();
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = NodeKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.secret_seed(), key.secret_seed());
        assert_eq!(back.peer_id(), key.peer_id());
    }

    #[test]
    fn peer_id_is_libp2ps() {
        let key = NodeKey::generate();
        let libp2p = key.libp2p_keypair();
        assert_eq!(libp2p.public().to_peer_id().to_base58(), key.peer_id());
        assert!(key.peer_id().starts_with("12D3KooW"));
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(matches!(
            NodeKey::from_pkcs8_pem("not a key"),
            Err(KeyError::NotEd25519Pkcs8 { .. })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = NodeKey::from_secret_seed([7; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("7, 7"), "{shown}");
        assert!(shown.contains(&key.peer_id()));
    }
}
