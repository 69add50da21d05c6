//! Verification of a presented chain up to the pinned root.
//!
//! Chain building, signatures, validity periods and basic constraints are
//! checked by rustls' `webpki` (the `rustls-webpki` crate), the same code
//! rustls trusts for TLS: it verifies ed25519 signatures, ignores the custom
//! `imi:` SAN URIs (it only looks at SAN names when a CA carries name
//! constraints, which ours do not: webpki refuses URI and directory-name
//! constraints, so national CAs are marked by an `imi:national-ca:CC` SAN
//! URI instead). What webpki cannot know is checked here with x509-parser
//! around it: the fixed shape of a federation chain (node ← national CA ←
//! root, or observer ← root) so the error names the broken link, the
//! validity of the pinned root itself (webpki trusts anchors without
//! dates), the national CA mark and country, the node's identity and PeerId
//! binding, and revocation from the [`RevocationSet`] (so the error names
//! the serial and the revoker).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imi_protocol::Country;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::prelude::*;

use crate::ca::national_ca_country;
use crate::cert::{
    CertChain, Certificate, CertificateError, authority_key_id, ed25519_key, is_ca, node_identity,
    parse_certificate, subject_key_id, utc,
};
use crate::crl::{RevocationSet, RevokedBy};
use crate::name::Serial;

/// The federation root certificate a node pins: the only trust anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    cert: Certificate,
    public_key: [u8; 32],
}

impl TrustedRoot {
    /// Pins the root certificate in `pem`.
    pub fn from_pem(pem: &str) -> Result<Self, RootError> {
        TrustedRoot::from_certificate(Certificate::from_pem(pem)?)
    }

    /// Pins `cert`, which must be a self-signed ed25519 CA certificate.
    pub fn from_certificate(cert: Certificate) -> Result<Self, RootError> {
        let parsed = parse_certificate(cert.der()).map_err(|reason| {
            RootError::Certificate(CertificateError::NotX509 {
                reason: reason.to_owned(),
            })
        })?;
        let public_key = ed25519_key(&parsed).ok_or(RootError::NotEd25519)?;
        if parsed.issuer().as_raw() != parsed.subject().as_raw()
            || parsed.verify_signature(None).is_err()
        {
            return Err(RootError::NotSelfSigned);
        }
        if !is_ca(&parsed) {
            return Err(RootError::NotACa);
        }
        Ok(TrustedRoot { cert, public_key })
    }

    /// The root certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The root's ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// Verifies the chain a peer presented, at `now`, for the PeerId its
    /// secure channel proved (`presented_peer_id`), against the revocation
    /// lists in `revocations` (which must have been made for this root).
    ///
    /// Checks, in this order: the chain's shape (a national CA in the
    /// chain must be a CA; each certificate must name the next as issuer),
    /// the root's own validity, then with webpki the signatures, validity
    /// periods and constraints up to the pinned root; then the national CA
    /// mark, the node's identity and its country against the issuer's, the
    /// revocation lists, and last the PeerId.
    pub fn verify(
        &self,
        chain: &CertChain,
        presented_peer_id: &str,
        now: SystemTime,
        revocations: &RevocationSet,
    ) -> Result<VerifiedNode, VerifyError> {
        if revocations.root() != self {
            return Err(VerifyError::ForeignRevocationSet);
        }
        let root = parse_certificate(self.cert.der()).map_err(|_| malformed("the pinned root"))?;
        let leaf = parse_certificate(chain.node().der())
            .map_err(|_| malformed("the node certificate is not X.509"))?;
        let national = match chain.national_ca() {
            Some(ca) => Some(
                parse_certificate(ca.der())
                    .map_err(|_| malformed("the national CA certificate is not X.509"))?,
            ),
            None => None,
        };

        // The shape of the chain.
        if let Some(ca) = &national
            && !is_ca(ca)
        {
            return Err(VerifyError::NotACa);
        }
        let issuer = national.as_ref().unwrap_or(&root);
        check_link(&leaf, issuer)?;
        if let Some(ca) = &national {
            check_link(ca, &root)?;
        }
        check_period(&root, now)?;

        // Signatures, validity periods and constraints.
        self.webpki_verify(chain, now)?;

        // Who may certify whom.
        let issuer_country = match chain.national_ca() {
            Some(ca) => national_ca_country(ca.der()).map_err(|reason| VerifyError::Malformed {
                what: format!("the issuing CA is not a national CA: {reason}"),
            })?,
            None => Country::Eu,
        };
        let identity = node_identity(&leaf).map_err(|reason| VerifyError::Malformed {
            what: format!("the node certificate is not a valid node certificate: {reason}"),
        })?;
        if identity.country != issuer_country {
            return Err(VerifyError::WrongCountry {
                node_country: identity.country,
                issuer_country,
            });
        }

        // Revocation: the national CA by the root, the node by its issuer.
        let mut issuer_key = self.public_key;
        if let (Some(ca_cert), Some(ca)) = (chain.national_ca(), &national) {
            check_revoked(revocations, &issuer_key, ca_cert.serial())?;
            issuer_key = ed25519_key(ca).ok_or_else(|| malformed("the national CA's key"))?;
        }
        check_revoked(revocations, &issuer_key, chain.node().serial())?;

        // The certificate belongs to the peer on the other end.
        if identity.peer_id != presented_peer_id {
            return Err(VerifyError::PeerIdMismatch {
                certified: identity.peer_id,
                presented: presented_peer_id.to_owned(),
            });
        }

        let not_after = [
            Some(chain.node().not_after()),
            chain.national_ca().map(Certificate::not_after),
            Some(self.cert.not_after()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(chain.node().not_after());
        Ok(VerifiedNode {
            country: identity.country,
            node: identity.node.to_string(),
            peer_id: identity.peer_id,
            public_key: identity.public_key,
            not_after,
        })
    }

    /// [`verify`](Self::verify) for a chain as PEM text (node certificate
    /// first); text that is not a chain is [`VerifyError::Malformed`].
    pub fn verify_pem(
        &self,
        chain_pem: &str,
        presented_peer_id: &str,
        now: SystemTime,
        revocations: &RevocationSet,
    ) -> Result<VerifiedNode, VerifyError> {
        let chain = CertChain::from_pem(chain_pem)?;
        self.verify(&chain, presented_peer_id, now, revocations)
    }

    /// [`verify`](Self::verify) for a chain as DER certificates, node
    /// first (the form sent over the wire).
    pub fn verify_der_list(
        &self,
        certificates: &[Vec<u8>],
        presented_peer_id: &str,
        now: SystemTime,
        revocations: &RevocationSet,
    ) -> Result<VerifiedNode, VerifyError> {
        let chain = CertChain::from_der_list(certificates.iter().cloned())?;
        self.verify(&chain, presented_peer_id, now, revocations)
    }

    fn webpki_verify(&self, chain: &CertChain, now: SystemTime) -> Result<(), VerifyError> {
        let root_der = CertificateDer::from(self.cert.der());
        let anchor = webpki::anchor_from_trusted_cert(&root_der)
            .map_err(|e| malformed(&format!("the pinned root: {e}")))?;
        let leaf_der = CertificateDer::from(chain.node().der());
        let leaf = webpki::EndEntityCert::try_from(&leaf_der).map_err(map_webpki)?;
        let intermediates: Vec<CertificateDer<'_>> = chain
            .national_ca()
            .map(|ca| CertificateDer::from(ca.der()))
            .into_iter()
            .collect();
        let time = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
        leaf.verify_for_usage(
            // The federation signs with ed25519 only.
            &[webpki::aws_lc_rs::ED25519],
            &[anchor],
            &intermediates,
            time,
            // Node certificates carry no extended key usage, which webpki
            // accepts for client authentication.
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(map_webpki)
    }
}

/// What a verified chain certifies about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNode {
    /// The node's country (`EU` for the Commission's observer).
    pub country: Country,
    /// The node's name in its country.
    pub node: String,
    /// The node's libp2p PeerId (base58).
    pub peer_id: String,
    /// The node's ed25519 public key, which verifies its signed envelopes.
    pub public_key: [u8; 32],
    /// When the admission must end: the earliest expiry in the chain.
    pub not_after: SystemTime,
}

/// Why a presented chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The chain does not lead to the pinned root.
    #[error(
        "the certificate chain does not lead to the pinned federation root: a certificate's issuer is unknown"
    )]
    UnknownIssuer,
    /// A certificate in the chain has expired.
    #[error("a certificate in the chain expired at {}", utc(*not_after))]
    Expired {
        /// When it expired.
        not_after: SystemTime,
    },
    /// A certificate in the chain is not valid yet.
    #[error("a certificate in the chain is not valid before {}", utc(*not_before))]
    NotYetValid {
        /// When it becomes valid.
        not_before: SystemTime,
    },
    /// A certificate in the chain was revoked.
    #[error("certificate {serial} was revoked by {by}")]
    Revoked {
        /// The revoked certificate's serial.
        serial: Serial,
        /// Who revoked it.
        by: RevokedBy,
    },
    /// The certificate is for another peer than the one connected.
    #[error("the certificate is for peer {certified}, but the connection proved peer {presented}")]
    PeerIdMismatch {
        /// The PeerId in the certificate.
        certified: String,
        /// The PeerId the secure channel proved.
        presented: String,
    },
    /// The issuer may not certify nodes of that country.
    #[error(
        "the certificate is for a node in {node_country}, but its issuer may only certify nodes in {issuer_country}"
    )]
    WrongCountry {
        /// The node's country.
        node_country: Country,
        /// The country its issuer certifies.
        issuer_country: Country,
    },
    /// The certificate presented as issuer is not a CA.
    #[error("the certificate presented as the node's issuer is not a CA certificate")]
    NotACa,
    /// Something in the chain is malformed.
    #[error("the certificate chain is malformed: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// A signature does not verify.
    #[error(
        "a signature in the certificate chain does not verify; a certificate was altered or forged"
    )]
    BadSignature,
    /// The revocation set belongs to another root.
    #[error("the revocation set was made for another federation root than the one verifying")]
    ForeignRevocationSet,
}

/// A root certificate that cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootError {
    /// The certificate could not be read.
    #[error("the root certificate could not be read: {0}")]
    Certificate(#[from] CertificateError),
    /// The root's key is not ed25519.
    #[error("the root certificate's key is not ed25519")]
    NotEd25519,
    /// The root is not self-signed.
    #[error("the root certificate is not self-signed")]
    NotSelfSigned,
    /// The root is not a CA.
    #[error("the root certificate is not a CA certificate")]
    NotACa,
}

impl From<CertificateError> for VerifyError {
    fn from(e: CertificateError) -> Self {
        VerifyError::Malformed {
            what: e.to_string(),
        }
    }
}

fn malformed(what: &str) -> VerifyError {
    VerifyError::Malformed {
        what: what.to_owned(),
    }
}

/// `cert` must name `issuer` as its issuer, by name and, where both carry
/// one, by key identifier (so a look-alike CA under another root with the
/// same name is an unknown issuer, not a bad signature).
fn check_link(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), VerifyError> {
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(VerifyError::UnknownIssuer);
    }
    if let (Some(aki), Some(ski)) = (authority_key_id(cert.extensions()), subject_key_id(issuer))
        && aki != ski
    {
        return Err(VerifyError::UnknownIssuer);
    }
    Ok(())
}

fn check_period(cert: &X509Certificate<'_>, now: SystemTime) -> Result<(), VerifyError> {
    let not_before = crate::cert::asn1_time_to_system(cert.validity().not_before);
    let not_after = crate::cert::asn1_time_to_system(cert.validity().not_after);
    if now < not_before {
        return Err(VerifyError::NotYetValid { not_before });
    }
    if now > not_after {
        return Err(VerifyError::Expired { not_after });
    }
    Ok(())
}

fn check_revoked(
    revocations: &RevocationSet,
    issuer_key: &[u8; 32],
    serial: &Serial,
) -> Result<(), VerifyError> {
    match revocations.revoked_by(issuer_key, serial) {
        Some(by) => Err(VerifyError::Revoked {
            serial: serial.clone(),
            by,
        }),
        None => Ok(()),
    }
}

fn map_webpki(error: webpki::Error) -> VerifyError {
    use webpki::Error as E;
    let at = |t: UnixTime| UNIX_EPOCH + Duration::from_secs(t.as_secs());
    match error {
        E::UnknownIssuer => VerifyError::UnknownIssuer,
        E::CertExpired { not_after, .. } => VerifyError::Expired {
            not_after: at(not_after),
        },
        E::CertNotValidYet { not_before, .. } => VerifyError::NotYetValid {
            not_before: at(not_before),
        },
        E::InvalidSignatureForPublicKey
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => VerifyError::BadSignature,
        E::EndEntityUsedAsCa => VerifyError::NotACa,
        E::CaUsedAsEndEntity => malformed("the node certificate is a CA certificate"),
        other => VerifyError::Malformed {
            what: format!("webpki refused the chain: {other}"),
        },
    }
}
