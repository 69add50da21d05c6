//! Who may write a country's document: signed heads and their signers.
//!
//! A node that edits its country's document signs the document's heads
//! with its node key ([`SignedHeads`]). The signature carries the signer's
//! certificate chain, so any node can check it up to the pinned root, even
//! when the signer is not connected. A signer is authorised for a document
//! only if its certificate names the document's country (`EU` for the
//! Commission's document).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use automerge::ChangeHash;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use imi_certs::{Certificate, RevocationList, RevocationSet, TrustedRoot};
use imi_protocol::{Country, NodeAddress, NodeName};
use serde::{Deserialize, Serialize};

use crate::net::Admission;

/// Most heads a signed state may name.
pub(crate) const MAX_SIGNED_HEADS: usize = 64;
/// Most certificates in a signer's chain.
const MAX_CHAIN: usize = 3;
/// Largest certificate accepted in a chain.
const MAX_CERT_BYTES: usize = 16 * 1024;
/// How long a signer whose chain verified is trusted before its chain is
/// checked again (sooner when the revocation lists change).
const SIGNER_TTL: Duration = Duration::from_secs(60);
/// Domain separation of the signed bytes.
const DOMAIN: &str = "imi-directory-heads-1";

/// The heads of a country's document, signed by a node of that country.
///
/// On the wire (and in the store) it is the signed statement as the signer
/// made it, its certificate chain and the signature: the signature is
/// checked over those exact bytes, and the fields below are decoded from
/// them (never re-encoded to be checked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SignedHeadsWire", into = "SignedHeadsWire")]
pub struct SignedHeads {
    /// The document's country.
    pub country: Country,
    /// The heads (change hashes), sorted.
    pub heads: Vec<[u8; 32]>,
    /// Grows with every state the signer signs (milliseconds since the
    /// epoch, or one more than the last): an older state has a lower one.
    pub counter: u64,
    /// The signer's ed25519 key.
    pub signer: [u8; 32],
    /// The signer's certificate chain (DER, node certificate first).
    pub chain: Vec<Vec<u8>>,
    /// The signature over [`SignedHeads::signed_bytes`].
    pub signature: Vec<u8>,
    /// The signed statement, as made or received.
    statement: Vec<u8>,
}

/// What is signed: everything but the chain and the signature.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Statement {
    domain: String,
    country: Country,
    counter: u64,
    signer: [u8; 32],
    heads: Vec<[u8; 32]>,
}

/// [`SignedHeads`] as sent and stored.
#[derive(Serialize, Deserialize)]
struct SignedHeadsWire {
    statement: Vec<u8>,
    chain: Vec<Vec<u8>>,
    signature: Vec<u8>,
}

impl From<SignedHeads> for SignedHeadsWire {
    fn from(signed: SignedHeads) -> Self {
        SignedHeadsWire {
            statement: signed.statement,
            chain: signed.chain,
            signature: signed.signature,
        }
    }
}

impl TryFrom<SignedHeadsWire> for SignedHeads {
    type Error = String;

    fn try_from(wire: SignedHeadsWire) -> Result<Self, Self::Error> {
        let (statement, rest): (Statement, _) = postcard::take_from_bytes(&wire.statement)
            .map_err(|e| format!("the signed statement does not decode: {e}"))?;
        if !rest.is_empty() {
            return Err("bytes follow the signed statement".into());
        }
        if statement.domain != DOMAIN {
            return Err(format!(
                "the signed statement is for {:?}, not {DOMAIN:?}",
                statement.domain
            ));
        }
        Ok(SignedHeads {
            country: statement.country,
            heads: statement.heads,
            counter: statement.counter,
            signer: statement.signer,
            chain: wire.chain,
            signature: wire.signature,
            statement: wire.statement,
        })
    }
}

impl SignedHeads {
    /// Signs `heads` of `country`'s document with `key`.
    pub fn sign(
        country: Country,
        heads: &[ChangeHash],
        counter: u64,
        key: &SigningKey,
        chain: Vec<Vec<u8>>,
    ) -> SignedHeads {
        let mut heads: Vec<[u8; 32]> = heads.iter().map(|h| h.0).collect();
        heads.sort_unstable();
        let signer = key.verifying_key().to_bytes();
        let statement = postcard::to_stdvec(&Statement {
            domain: DOMAIN.to_owned(),
            country,
            counter,
            signer,
            heads: heads.clone(),
        })
        .expect("signed heads always encode");
        let signature = key.sign(&statement).to_bytes().to_vec();
        SignedHeads {
            country,
            heads,
            counter,
            signer,
            chain,
            signature,
            statement,
        }
    }

    /// The exact bytes the signature covers: the statement as the signer
    /// made it (as received, for signed heads that came from a peer).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.statement
    }

    /// Whether the fields say what the signed statement says (they are
    /// public, so they could have been changed since it was decoded).
    fn fields_match_statement(&self) -> bool {
        let Ok((statement, rest)) = postcard::take_from_bytes::<Statement>(&self.statement) else {
            return false;
        };
        rest.is_empty()
            && statement
                == Statement {
                    domain: DOMAIN.to_owned(),
                    country: self.country,
                    counter: self.counter,
                    signer: self.signer,
                    heads: self.heads.clone(),
                }
    }

    /// The heads as change hashes.
    pub fn change_hashes(&self) -> impl Iterator<Item = ChangeHash> + '_ {
        self.heads.iter().map(|h| ChangeHash(*h))
    }

    /// Checks the signature alone (not who signed).
    pub(crate) fn verify_signature(&self) -> Result<(), SignatureRefused> {
        if self.heads.len() > MAX_SIGNED_HEADS {
            return Err(SignatureRefused::Malformed(format!(
                "it names {} heads, more than {MAX_SIGNED_HEADS}",
                self.heads.len()
            )));
        }
        let key = VerifyingKey::from_bytes(&self.signer)
            .map_err(|_| SignatureRefused::Malformed("the signer key is not ed25519".into()))?;
        let bytes: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SignatureRefused::Malformed("the signature is not 64 bytes".into()))?;
        key.verify_strict(self.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| SignatureRefused::BadSignature)?;
        // The signature covers the statement; what is acted upon is the
        // fields, so they must be the statement's.
        if !self.fields_match_statement() {
            return Err(SignatureRefused::BadSignature);
        }
        Ok(())
    }
}

/// Why signed heads were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefused {
    /// The record is malformed.
    #[error("the signed heads are malformed: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("the signature over the heads does not verify")]
    BadSignature,
    /// The signer's certificate does not verify.
    #[error("the signer's certificate is not valid: {0}")]
    Uncertified(String),
    /// The signer is certified for another country.
    #[error("the heads of {document}'s document are signed by {signer}, a node of another country")]
    WrongCountry {
        /// The document's country.
        document: Country,
        /// The signer.
        signer: NodeAddress,
    },
    /// An older state than the one held for this signer.
    #[error(
        "the heads signed by {signer} are older (counter {counter}) than those already held (counter {held})"
    )]
    Stale {
        /// The signer.
        signer: NodeAddress,
        /// The counter received.
        counter: u64,
        /// The counter held.
        held: u64,
    },
    /// Two different states under one counter.
    #[error("{signer} signed two different states with the same counter {counter}")]
    Equivocation {
        /// The signer.
        signer: NodeAddress,
        /// The counter.
        counter: u64,
    },
}

/// Revocation lists as the admission layer encodes them (see
/// `crate::admission`): each with the certificate of the CA that signed it.
#[derive(Deserialize)]
struct RevocationEntry {
    issuer: Option<Vec<u8>>,
    list: Vec<u8>,
}

/// Decides which node keys may sign which country's document.
pub(crate) struct Trust {
    root: TrustedRoot,
    admission: Arc<dyn Admission>,
    state: Mutex<TrustState>,
}

struct TrustState {
    /// The admission layer's revocation lists, as last read.
    revocation_bytes: Vec<u8>,
    revocations: RevocationSet,
    /// Admitted peers, whose certificates the admission layer checked.
    admitted: HashMap<[u8; 32], NodeAddress>,
    /// Signers whose chain verified, when, and until when the chain is valid.
    verified: HashMap<[u8; 32], (NodeAddress, Instant, SystemTime)>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").finish_non_exhaustive()
    }
}

impl Trust {
    pub(crate) fn new(root: TrustedRoot, admission: Arc<dyn Admission>) -> Trust {
        let revocations = RevocationSet::new(&root);
        Trust {
            root,
            admission,
            state: Mutex::new(TrustState {
                revocation_bytes: vec![],
                revocations,
                admitted: HashMap::new(),
                verified: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TrustState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An admitted peer's key (checked by admission) signs for its country.
    pub(crate) fn peer_admitted(&self, key: [u8; 32], address: NodeAddress) {
        self.state().admitted.insert(key, address);
    }

    /// The peer left (or was cut off): its key is checked by its chain again.
    pub(crate) fn peer_left(&self, key: &[u8; 32]) {
        let mut state = self.state();
        state.admitted.remove(key);
        state.verified.remove(key);
    }

    /// Checks `signed`: its signature, and that its signer is certified for
    /// `signed.country`. Returns the signer's address.
    pub(crate) fn check(&self, signed: &SignedHeads) -> Result<NodeAddress, SignatureRefused> {
        signed.verify_signature()?;
        let signer = self.signer(signed)?;
        if signer.country != signed.country {
            return Err(SignatureRefused::WrongCountry {
                document: signed.country,
                signer,
            });
        }
        Ok(signer)
    }

    fn signer(&self, signed: &SignedHeads) -> Result<NodeAddress, SignatureRefused> {
        self.refresh_revocations();
        let mut state = self.state();
        // A chain that comes with the signature is always checked, an
        // admitted peer's too: a link can outlive its certificate by a
        // moment (the links drop at expiry and revocation), and heads signed
        // by an expired or revoked key must never be taken. A check is
        // reused until the TTL, the chain's expiry or new revocation lists.
        let now = SystemTime::now();
        if signed.chain.is_empty()
            && let Some(address) = state.admitted.get(&signed.signer)
        {
            return Ok(address.clone());
        }
        if let Some((address, at, not_after)) = state.verified.get(&signed.signer)
            && at.elapsed() < SIGNER_TTL
            && now < *not_after
        {
            return Ok(address.clone());
        }
        if signed.chain.is_empty()
            || signed.chain.len() > MAX_CHAIN
            || signed.chain.iter().any(|c| c.len() > MAX_CERT_BYTES)
        {
            return Err(SignatureRefused::Uncertified(
                "no usable certificate chain comes with the signature".into(),
            ));
        }
        let peer_id = peer_id_of(&signed.signer)?;
        let verified = self
            .root
            .verify_der_list(&signed.chain, &peer_id, now, &state.revocations)
            .map_err(|e| SignatureRefused::Uncertified(e.to_string()))?;
        if verified.public_key != signed.signer {
            return Err(SignatureRefused::Uncertified(
                "the certificate is for another key".into(),
            ));
        }
        let node: NodeName =
            verified
                .node
                .parse()
                .map_err(|e: imi_protocol::InvalidNodeName| {
                    SignatureRefused::Uncertified(e.to_string())
                })?;
        let address = NodeAddress::new(verified.country, node);
        state.verified.insert(
            signed.signer,
            (address.clone(), Instant::now(), verified.not_after),
        );
        Ok(address)
    }

    /// Takes the admission layer's revocation lists when they changed, and
    /// forgets the signers checked against the old ones.
    fn refresh_revocations(&self) {
        let bytes = self.admission.revocations();
        let mut state = self.state();
        if bytes == state.revocation_bytes {
            return;
        }
        let mut set = RevocationSet::new(&self.root);
        if let Ok(entries) = postcard::from_bytes::<Vec<RevocationEntry>>(&bytes) {
            for entry in entries {
                let Ok(list) = RevocationList::from_der(entry.list) else {
                    continue;
                };
                let _ = match entry.issuer {
                    None => set.accept_root_list(list),
                    Some(der) => match Certificate::from_der(der) {
                        Ok(ca) => set.accept_national_list(list, &ca),
                        Err(_) => continue,
                    },
                };
            }
        }
        state.revocations = set;
        state.revocation_bytes = bytes;
        state.verified.clear();
    }
}

/// The libp2p PeerId (base58) of an ed25519 key.
fn peer_id_of(key: &[u8; 32]) -> Result<String, SignatureRefused> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(key)
        .map_err(|_| SignatureRefused::Malformed("the signer key is not ed25519".into()))?;
    Ok(libp2p::identity::PublicKey::from(public)
        .to_peer_id()
        .to_base58())
}

/// The counter of a new signature after `last`: the time in milliseconds,
/// or one more than the last when the clock has not moved on.
pub(crate) fn next_counter(last: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.max(last.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_country_counter_and_heads() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let heads = [ChangeHash([1; 32]), ChangeHash([2; 32])];
        let signed = SignedHeads::sign(Country::Pt, &heads, 5, &key, vec![]);
        assert!(signed.verify_signature().is_ok());
        for tamper in [
            |s: &mut SignedHeads| s.country = Country::Fi,
            |s: &mut SignedHeads| s.counter = 6,
            |s: &mut SignedHeads| s.heads.push([3; 32]),
        ] {
            let mut forged = signed.clone();
            tamper(&mut forged);
            assert_eq!(
                forged.verify_signature(),
                Err(SignatureRefused::BadSignature)
            );
        }
    }

    #[test]
    fn heads_signed_by_an_expired_key_are_not_taken_even_from_an_admitted_peer() {
        use imi_certs::{CertChain, CertificateRequest, NodeKey, RootCa, Validity};

        let root = RootCa::generate("root", Validity::days_from_now(60)).unwrap();
        let ca = |country| {
            root.issue_national_ca(country, Validity::days_from_now(30))
                .unwrap()
        };
        let (pt_ca, fi_ca) = (ca(Country::Pt), ca(Country::Fi));
        let chain_of = |ca: &imi_certs::NationalCa, country, validity| {
            let key = NodeKey::generate();
            let request = CertificateRequest::new(&key, country, &"n-1".parse().unwrap()).unwrap();
            let cert = ca.issue_node(&request, validity).unwrap();
            (
                SigningKey::from_bytes(&key.secret_seed()),
                CertChain::national(cert, ca.certificate().clone()),
            )
        };
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let (pt_key, pt_chain) = chain_of(
            &pt_ca,
            Country::Pt,
            Validity::new(now - 10 * day, now - day),
        );
        let (_, fi_chain) = chain_of(&fi_ca, Country::Fi, Validity::days_from_now(10));
        let admission = Arc::new(
            crate::net::admission::CertAdmission::new(root.trusted_root(), fi_chain, vec![], None)
                .unwrap(),
        );
        let trust = Trust::new(root.trusted_root(), admission);
        // The link was admitted while the certificate was valid, and is
        // still up for a moment after it expired.
        trust.peer_admitted(pt_key.verifying_key().to_bytes(), "PT/n-1".parse().unwrap());
        let signed = SignedHeads::sign(
            Country::Pt,
            &[ChangeHash([1; 32])],
            1,
            &pt_key,
            pt_chain.to_der_list(),
        );
        match trust.check(&signed) {
            Err(SignatureRefused::Uncertified(reason)) => {
                assert!(reason.contains("expired"), "{reason}")
            }
            other => panic!("heads signed by an expired key were taken: {other:?}"),
        }
    }

    #[test]
    fn signed_heads_are_verified_over_the_bytes_received() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let heads = [ChangeHash([1; 32]), ChangeHash([2; 32])];
        let signed = SignedHeads::sign(Country::Pt, &heads, 5, &key, vec![]);
        let sent = postcard::to_stdvec(&signed).unwrap();
        let received: SignedHeads = postcard::from_bytes(&sent).unwrap();
        assert_eq!(received, signed);
        assert!(received.verify_signature().is_ok());
        // The statement received is what is checked and kept, byte for byte:
        // sending it on sends the very same bytes.
        assert_eq!(received.signed_bytes(), signed.signed_bytes());
        assert_eq!(postcard::to_stdvec(&received).unwrap(), sent);
        // A statement signed in another encoding than ours (the heads
        // unsorted) still verifies, because no re-encoding is checked.
        let statement = postcard::to_stdvec(&Statement {
            domain: DOMAIN.into(),
            country: Country::Pt,
            counter: 6,
            signer: key.verifying_key().to_bytes(),
            heads: vec![[2; 32], [1; 32]],
        })
        .unwrap();
        let wire = SignedHeadsWire {
            signature: key.sign(&statement).to_bytes().to_vec(),
            statement,
            chain: vec![],
        };
        let unsorted: SignedHeads =
            postcard::from_bytes(&postcard::to_stdvec(&wire).unwrap()).unwrap();
        assert!(unsorted.verify_signature().is_ok());
        assert_eq!(unsorted.heads, vec![[2; 32], [1; 32]]);
        // A statement with bytes after it, or for another purpose, does not
        // decode.
        let mut trailing = wire;
        trailing.statement.push(0);
        assert!(
            postcard::from_bytes::<SignedHeads>(&postcard::to_stdvec(&trailing).unwrap()).is_err()
        );
    }

    #[test]
    fn counters_only_grow() {
        assert!(next_counter(0) > 1_600_000_000_000);
        assert_eq!(next_counter(u64::MAX - 1), u64::MAX);
        let far = next_counter(0) + 1_000_000;
        assert_eq!(next_counter(far), far + 1);
    }
}
