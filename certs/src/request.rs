//! Certificate signing requests: how a node asks its national CA (or the
//! observer asks the root) for a certificate.

use imi_protocol::Country;
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, SanType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::cert::{NODE_URI_PREFIX, PEER_URI_PREFIX, encode_pem, ends_with_ed25519_signature};
use crate::key::{NodeKey, RcgenSigner};
use crate::name::NodeName;

const REQUEST_LABEL: &str = "CERTIFICATE REQUEST";

/// A PKCS#10 certificate signing request for a node certificate, signed by
/// the node's own key (which proves the node holds it). It names the
/// country and node name asked for; the issuing CA decides whether to grant
/// them and takes nothing else from the request but the public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    der: Vec<u8>,
    country: Country,
    node: NodeName,
    public_key: [u8; 32],
    peer_id: String,
}

impl CertificateRequest {
    /// A request by `key` for a certificate naming `country` and `node`.
    pub fn new(key: &NodeKey, country: Country, node: &NodeName) -> Result<Self, RequestError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = node_subject(country, node)?;
        params.subject_alt_names = node_sans(country, node, &key.peer_id())?;
        let csr = params
            .serialize_request(&RcgenSigner::new(key.signing_key()))
            .map_err(|e| RequestError::Encoding {
                reason: e.to_string(),
            })?;
        CertificateRequest::from_der(csr.der().to_vec())
    }

    /// Reads and checks a request from PEM (`-----BEGIN CERTIFICATE
    /// REQUEST-----`).
    pub fn from_pem(pem: &str) -> Result<Self, RequestError> {
        let block = pem::parse(pem).map_err(|e| RequestError::Malformed {
            what: format!("the text is not a PEM document: {e}"),
        })?;
        if block.tag() != REQUEST_LABEL {
            return Err(RequestError::Malformed {
                what: format!(
                    "expected a PEM block labelled {REQUEST_LABEL} but found {:?}",
                    block.tag()
                ),
            });
        }
        CertificateRequest::from_der(block.into_contents())
    }

    /// Reads and checks a request from DER: it must be signed by its own
    /// ed25519 key and name a federation country and a valid node name.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Self, RequestError> {
        let der = der.into();
        let malformed = |what: &str| RequestError::Malformed {
            what: what.to_owned(),
        };
        let csr = match X509CertificationRequest::from_der(&der) {
            Ok(([], csr)) => csr,
            _ => return Err(malformed("the bytes are not a PKCS#10 certificate request")),
        };
        let info = &csr.certification_request_info;
        if info.subject_pki.algorithm.algorithm != x509_parser::oid_registry::OID_SIG_ED25519
            || !ends_with_ed25519_signature(&der)
        {
            return Err(RequestError::NotEd25519);
        }
        let public_key = <[u8; 32]>::try_from(info.subject_pki.subject_public_key.data.as_ref())
            .map_err(|_| RequestError::NotEd25519)?;
        csr.verify_signature()
            .map_err(|_| RequestError::BadSignature)?;
        let country_attr = info
            .subject
            .iter_country()
            .next()
            .ok_or_else(|| malformed("the request names no country (C=…)"))?;
        let code = country_attr
            .as_str()
            .map_err(|_| malformed("the request's country is not text"))?;
        let country: Country = code.parse().map_err(|_| RequestError::UnknownCountry {
            code: code.to_owned(),
        })?;
        let name_attr = info
            .subject
            .iter_common_name()
            .next()
            .ok_or_else(|| malformed("the request names no node (CN=…)"))?;
        let name = name_attr
            .as_str()
            .map_err(|_| malformed("the request's node name is not text"))?;
        let node = NodeName::new(name)?;
        let peer_id = crate::key::peer_id_of(&public_key)
            .ok_or(RequestError::NotEd25519)?
            .to_base58();
        Ok(CertificateRequest {
            der,
            country,
            node,
            public_key,
            peer_id,
        })
    }

    /// The request as PEM.
    pub fn to_pem(&self) -> String {
        encode_pem(REQUEST_LABEL, &self.der)
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The country asked for.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The node name asked for.
    pub fn node(&self) -> &NodeName {
        &self.node
    }

    /// The ed25519 public key to certify.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The libp2p PeerId of that key.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }
}

impl NodeKey {
    /// A certificate signing request for this key, naming `country` and
    /// `node` (what `certs request` writes for the CA).
    pub fn certificate_request(
        &self,
        country: Country,
        node: &NodeName,
    ) -> Result<CertificateRequest, RequestError> {
        CertificateRequest::new(self, country, node)
    }
}

/// A certificate request that could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The request is not well-formed.
    #[error("the certificate request is malformed: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// The request's key is not ed25519.
    #[error("the certificate request is not for an ed25519 key; node keys are ed25519")]
    NotEd25519,
    /// The request is not signed by the key it names.
    #[error(
        "the certificate request's signature does not verify with its own key; the request was altered or made with another key"
    )]
    BadSignature,
    /// The request names a country outside the federation.
    #[error("the certificate request names country {code:?}, which is not a federation member")]
    UnknownCountry {
        /// The code as found.
        code: String,
    },
    /// The request names an invalid node name.
    #[error("the certificate request names an invalid node: {0}")]
    InvalidNodeName(#[from] crate::name::InvalidNodeName),
    /// The request could not be encoded.
    #[error("the certificate request could not be encoded: {reason}")]
    Encoding {
        /// What the encoder reported.
        reason: String,
    },
}

/// The subject of a node certificate or request: C=country, CN=node.
pub(crate) fn node_subject(
    country: Country,
    node: &NodeName,
) -> Result<DistinguishedName, RequestError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable(country.code())?);
    dn.push(DnType::CommonName, DnValue::Utf8String(node.to_string()));
    Ok(dn)
}

/// The subject alternative names of a node: its `imi:node:` and `imi:peer:` URIs.
pub(crate) fn node_sans(
    country: Country,
    node: &NodeName,
    peer_id: &str,
) -> Result<Vec<SanType>, RequestError> {
    Ok(vec![
        uri(&format!("{NODE_URI_PREFIX}{country}/{node}"))?,
        uri(&format!("{PEER_URI_PREFIX}{peer_id}"))?,
    ])
}

pub(crate) fn uri(text: &str) -> Result<SanType, RequestError> {
    rcgen::string::Ia5String::try_from(text)
        .map(SanType::URI)
        .map_err(|e| RequestError::Encoding {
            reason: e.to_string(),
        })
}

pub(crate) fn printable(text: &str) -> Result<DnValue, RequestError> {
    rcgen::string::PrintableString::try_from(text)
        .map(DnValue::PrintableString)
        .map_err(|e| RequestError::Encoding {
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_names_the_key() {
        let key = NodeKey::generate();
        let node = NodeName::new("helsinki-1").unwrap();
        let request = key.certificate_request(Country::Fi, &node).unwrap();
        let back = CertificateRequest::from_pem(&request.to_pem()).unwrap();
        assert_eq!(back.country(), Country::Fi);
        assert_eq!(back.node(), &node);
        assert_eq!(back.public_key(), key.public_key_bytes());
        assert_eq!(back.peer_id(), key.peer_id());
    }

    #[test]
    fn altered_request_is_refused() {
        let key = NodeKey::generate();
        let node = NodeName::new("lisboa").unwrap();
        let request = key.certificate_request(Country::Pt, &node).unwrap();
        let mut der = request.der().to_vec();
        // Flip a byte of the signed node name "lisboa" to "lisboe".
        let pos = der
            .windows(6)
            .position(|w| w == b"lisboa")
            .expect("the node name is in the request");
        der[pos + 5] = b'e';
        assert_eq!(
            CertificateRequest::from_der(der),
            Err(RequestError::BadSignature)
        );
    }

    #[test]
    fn every_altered_byte_is_refused() {
        let key = NodeKey::generate();
        let node = NodeName::new("tallinn").unwrap();
        let request = key.certificate_request(Country::Ee, &node).unwrap();
        for i in 0..request.der().len() {
            let mut der = request.der().to_vec();
            der[i] ^= 0x01;
            assert!(
                CertificateRequest::from_der(der).is_err(),
                "flipping byte {i} was accepted"
            );
        }
    }

    #[test]
    fn garbage_request_is_malformed() {
        assert!(matches!(
            CertificateRequest::from_pem(
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
            ),
            Err(RequestError::Malformed { .. })
        ));
    }
}
