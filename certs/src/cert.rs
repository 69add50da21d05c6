//! Certificates, certificate chains and their PEM form.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imi_protocol::Country;
use x509_parser::prelude::*;

use crate::name::{NodeName, Serial};

/// PEM label of a certificate.
pub(crate) const CERTIFICATE_LABEL: &str = "CERTIFICATE";

/// SAN URI prefix naming a node: `imi:node:FI/helsinki-1`.
pub const NODE_URI_PREFIX: &str = "imi:node:";
/// SAN URI prefix carrying a node's libp2p PeerId: `imi:peer:12D3KooW…`.
pub const PEER_URI_PREFIX: &str = "imi:peer:";
/// SAN URI prefix marking a national CA: `imi:national-ca:FI`.
pub const NATIONAL_CA_URI_PREFIX: &str = "imi:national-ca:";
/// SAN URI marking the federation root CA.
pub const ROOT_URI: &str = "imi:federation-root";

/// The period a certificate is valid for. Certificates store whole seconds,
/// so sub-second parts are dropped when issuing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The first moment the certificate is valid.
    pub not_before: SystemTime,
    /// The last moment the certificate is valid.
    pub not_after: SystemTime,
}

impl Validity {
    /// Valid from `not_before` until `not_after`.
    pub fn new(not_before: SystemTime, not_after: SystemTime) -> Self {
        Validity {
            not_before,
            not_after,
        }
    }

    /// Valid from `start` for `duration`.
    pub fn starting_at(start: SystemTime, duration: Duration) -> Self {
        Validity::new(start, start + duration)
    }

    /// Valid from now for `days` days.
    pub fn days_from_now(days: u64) -> Self {
        Validity::starting_at(SystemTime::now(), Duration::from_secs(days * 24 * 60 * 60))
    }
}

/// An X.509 certificate of the federation (root, national CA or node), kept
/// as DER. Constructing one checks that the bytes parse as X.509.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    serial: Serial,
    not_before: SystemTime,
    not_after: SystemTime,
    role: CertificateRole,
}

/// What a certificate says it is, read from its extensions without
/// checking any signature: for display and for choosing how to use it.
/// Only [`TrustedRoot::verify`](crate::TrustedRoot::verify) says whether it
/// can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateRole {
    /// The federation root CA.
    Root,
    /// The national CA of a country.
    NationalCa {
        /// The country it certifies nodes for.
        country: Country,
    },
    /// A node: a country's node or the Commission's observer (country `EU`).
    Node {
        /// The node's country.
        country: Country,
        /// The node's name.
        node: NodeName,
        /// The libp2p PeerId the certificate binds.
        peer_id: String,
    },
    /// A country's national web CA, which certifies its web UIs.
    WebCa {
        /// The country.
        country: Country,
        /// The domains it may certify host names in.
        domains: Vec<String>,
    },
    /// A web UI's HTTPS certificate.
    WebServer {
        /// The host names it is valid for.
        hosts: Vec<String>,
    },
    /// None of the above (e.g. a certificate from outside the federation).
    Other,
}

impl Certificate {
    /// A certificate from DER bytes.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Self, CertificateError> {
        let der = der.into();
        let cert = parse_certificate(&der).map_err(|reason| CertificateError::NotX509 {
            reason: reason.to_owned(),
        })?;
        let serial = Serial::from_bytes(cert.raw_serial());
        let not_before = asn1_time_to_system(cert.validity().not_before);
        let not_after = asn1_time_to_system(cert.validity().not_after);
        let role = role_of(&cert);
        Ok(Certificate {
            der,
            serial,
            not_before,
            not_after,
            role,
        })
    }

    /// A certificate from a PEM document holding exactly one certificate.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let mut blocks = certificate_blocks(pem)?;
        if blocks.len() != 1 {
            return Err(CertificateError::WrongCount {
                expected: "exactly one certificate",
                found: blocks.len(),
            });
        }
        Certificate::from_der(blocks.remove(0))
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as a PEM document (`-----BEGIN CERTIFICATE-----`).
    pub fn to_pem(&self) -> String {
        encode_pem(CERTIFICATE_LABEL, &self.der)
    }

    /// The serial number, by which revocation lists name it.
    pub fn serial(&self) -> &Serial {
        &self.serial
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the validity period.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// What the certificate says it is (not verified).
    pub fn role(&self) -> &CertificateRole {
        &self.role
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("serial", &self.serial.to_string())
            .field("role", &self.role)
            .field("not_after", &utc(self.not_after))
            .finish_non_exhaustive()
    }
}

/// The chain a node presents to its peers: its node certificate and, for a
/// country's node, the national CA certificate that issued it. The
/// Commission's observer presents its certificate alone, as the root issued
/// it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertChain {
    node: Certificate,
    national_ca: Option<Certificate>,
}

impl CertChain {
    /// A country node's chain.
    pub fn national(node: Certificate, national_ca: Certificate) -> Self {
        CertChain {
            node,
            national_ca: Some(national_ca),
        }
    }

    /// The observer's chain: its certificate alone.
    pub fn observer(node: Certificate) -> Self {
        CertChain {
            node,
            national_ca: None,
        }
    }

    /// The node certificate.
    pub fn node(&self) -> &Certificate {
        &self.node
    }

    /// The national CA certificate, if any.
    pub fn national_ca(&self) -> Option<&Certificate> {
        self.national_ca.as_ref()
    }

    /// Reads a chain from PEM: the node certificate first, then optionally
    /// the national CA certificate.
    pub fn from_pem(pem: &str) -> Result<Self, CertificateError> {
        let blocks = certificate_blocks(pem)?;
        Self::from_der_list(blocks)
    }

    /// The chain as PEM: the node certificate, then the national CA's.
    pub fn to_pem(&self) -> String {
        let mut pem = self.node.to_pem();
        if let Some(ca) = &self.national_ca {
            pem.push_str(&ca.to_pem());
        }
        pem
    }

    /// Reads a chain from DER certificates, node first (the form sent over
    /// the wire).
    pub fn from_der_list<I, B>(certificates: I) -> Result<Self, CertificateError>
    where
        I: IntoIterator<Item = B>,
        B: Into<Vec<u8>>,
    {
        let mut certs = certificates
            .into_iter()
            .map(Certificate::from_der)
            .collect::<Result<Vec<_>, _>>()?;
        match certs.len() {
            1 => Ok(CertChain::observer(certs.remove(0))),
            2 => {
                let ca = certs.remove(1);
                Ok(CertChain::national(certs.remove(0), ca))
            }
            found => Err(CertificateError::WrongCount {
                expected: "a node certificate, optionally followed by its national CA certificate",
                found,
            }),
        }
    }

    /// The DER certificates, node first.
    pub fn to_der_list(&self) -> Vec<Vec<u8>> {
        let mut list = vec![self.node.der.clone()];
        if let Some(ca) = &self.national_ca {
            list.push(ca.der.clone());
        }
        list
    }
}

/// A certificate or chain that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The text is not PEM.
    #[error("the text is not a PEM document: {reason}")]
    NotPem {
        /// What the PEM decoder found wrong.
        reason: String,
    },
    /// A PEM block holds something other than a certificate.
    #[error("expected a PEM block labelled CERTIFICATE but found {found:?}")]
    WrongLabel {
        /// The label found.
        found: String,
    },
    /// Too many or too few certificates.
    #[error("expected {expected}, found {found} certificates")]
    WrongCount {
        /// What was expected.
        expected: &'static str,
        /// How many certificates there were.
        found: usize,
    },
    /// The bytes are not an X.509 certificate.
    #[error("the bytes are not an X.509 certificate: {reason}")]
    NotX509 {
        /// What the parser found wrong.
        reason: String,
    },
}

pub(crate) fn certificate_blocks(text: &str) -> Result<Vec<Vec<u8>>, CertificateError> {
    let blocks = ::pem::parse_many(text).map_err(|e| CertificateError::NotPem {
        reason: e.to_string(),
    })?;
    if blocks.is_empty() {
        return Err(CertificateError::NotPem {
            reason: "it holds no -----BEGIN CERTIFICATE----- block".to_owned(),
        });
    }
    blocks
        .into_iter()
        .map(|block| {
            if block.tag() == CERTIFICATE_LABEL {
                Ok(block.into_contents())
            } else {
                Err(CertificateError::WrongLabel {
                    found: block.tag().to_owned(),
                })
            }
        })
        .collect()
}

pub(crate) fn encode_pem(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// Parses DER as a certificate with nothing after it.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, &'static str> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after the certificate"),
        Err(_) => Err("not a DER-encoded X.509 certificate"),
    }
}

/// The DER encoding of the ed25519 AlgorithmIdentifier, then the header of
/// a 64-byte signature BIT STRING.
const ED25519_SIGNATURE_TAIL: [u8; 10] =
    [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x41, 0x00];

/// Whether a signed X.509 structure (CRL, request) ends with an ed25519
/// signature algorithm and signature in their one canonical encoding. The
/// parser is lenient about the unsigned outer algorithm field; checking the
/// exact bytes means every signed object has exactly one encoding, so the
/// same list is always the same bytes.
pub(crate) fn ends_with_ed25519_signature(der: &[u8]) -> bool {
    der.len() >= ED25519_SIGNATURE_TAIL.len() + 64
        && der[der.len() - 64 - ED25519_SIGNATURE_TAIL.len()..der.len() - 64]
            == ED25519_SIGNATURE_TAIL
}

/// The URIs among the certificate's subject alternative names.
pub(crate) fn san_uris<'a>(cert: &'a X509Certificate<'_>) -> Result<Vec<&'a str>, &'static str> {
    let san = cert
        .subject_alternative_name()
        .map_err(|_| "its subject alternative names are malformed")?;
    Ok(san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The single SAN URI starting with `prefix`, without the prefix.
pub(crate) fn unique_uri<'a>(uris: &[&'a str], prefix: &str) -> Result<Option<&'a str>, String> {
    let mut found = uris.iter().filter_map(|uri| uri.strip_prefix(prefix));
    let first = found.next();
    if found.next().is_some() {
        return Err(format!("it carries more than one {prefix}… name"));
    }
    Ok(first)
}

/// The subject's country attribute (C=…), if any.
pub(crate) fn subject_country(cert: &X509Certificate<'_>) -> Result<Option<Country>, String> {
    let mut countries = cert.subject().iter_country();
    let Some(first) = countries.next() else {
        return Ok(None);
    };
    if countries.next().is_some() {
        return Err("its subject names more than one country".to_owned());
    }
    let code = first
        .as_str()
        .map_err(|_| "its subject country is not text".to_owned())?;
    code.parse()
        .map(Some)
        .map_err(|_| format!("its subject country {code:?} is not a federation member"))
}

/// The ed25519 public key of the certificate, if it has one.
pub(crate) fn ed25519_key(cert: &X509Certificate<'_>) -> Option<[u8; 32]> {
    let spki = cert.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_SIG_ED25519 {
        return None;
    }
    <[u8; 32]>::try_from(spki.subject_public_key.data.as_ref()).ok()
}

/// Whether the certificate may issue certificates: basic constraints say it
/// is a CA and, if it restricts key usage, certificate signing is allowed.
pub(crate) fn is_ca(cert: &X509Certificate<'_>) -> bool {
    let ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let may_sign = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ca && may_sign
}

/// The subject key identifier, if present.
pub(crate) fn subject_key_id<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
}

/// The authority key identifier's key id, if present.
pub(crate) fn authority_key_id<'a>(
    extensions: impl IntoIterator<Item = &'a X509Extension<'a>>,
) -> Option<&'a [u8]> {
    extensions
        .into_iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|id| id.0)
            }
            _ => None,
        })
}

pub(crate) fn asn1_time_to_system(time: ASN1Time) -> SystemTime {
    let secs = time.timestamp();
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    }
}

/// A moment as `2026-11-03T12:00:00Z`, for messages.
pub fn utc(time: SystemTime) -> String {
    let t = ::time::OffsetDateTime::from(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn role_of(cert: &X509Certificate<'_>) -> CertificateRole {
    let Ok(uris) = san_uris(cert) else {
        return CertificateRole::Other;
    };
    if uris.contains(&ROOT_URI) && is_ca(cert) {
        return CertificateRole::Root;
    }
    if let Ok(Some(code)) = unique_uri(&uris, NATIONAL_CA_URI_PREFIX)
        && let Ok(country) = code.parse()
        && is_ca(cert)
    {
        return CertificateRole::NationalCa { country };
    }
    match node_identity(cert) {
        Ok(identity) => CertificateRole::Node {
            country: identity.country,
            node: identity.node,
            peer_id: identity.peer_id,
        },
        Err(_) => crate::web::web_role(cert).unwrap_or(CertificateRole::Other),
    }
}

/// What a node certificate certifies.
pub(crate) struct NodeIdentity {
    pub(crate) country: Country,
    pub(crate) node: NodeName,
    pub(crate) peer_id: String,
    pub(crate) public_key: [u8; 32],
}

/// Reads and cross-checks the identity a node certificate certifies: its
/// `imi:node:` and `imi:peer:` names, its subject country and its ed25519
/// key, whose PeerId must be the certified one. The error says what is
/// wrong, as a phrase about the certificate ("its …").
pub(crate) fn node_identity(cert: &X509Certificate<'_>) -> Result<NodeIdentity, String> {
    let uris = san_uris(cert)?;
    let node_uri = unique_uri(&uris, NODE_URI_PREFIX)?
        .ok_or_else(|| format!("it carries no {NODE_URI_PREFIX}COUNTRY/NAME name"))?;
    let (code, name) = node_uri
        .split_once('/')
        .ok_or_else(|| format!("its node name {node_uri:?} is not COUNTRY/NAME"))?;
    let country: Country = code
        .parse()
        .map_err(|_| format!("its node country {code:?} is not a federation member"))?;
    let node = NodeName::new(name).map_err(|e| format!("its node name is invalid: {e}"))?;
    match subject_country(cert)? {
        Some(subject) if subject != country => {
            return Err(format!(
                "its subject country {subject} differs from its node country {country}"
            ));
        }
        _ => {}
    }
    let peer_id = unique_uri(&uris, PEER_URI_PREFIX)?
        .ok_or_else(|| format!("it carries no {PEER_URI_PREFIX}PEERID name"))?
        .to_owned();
    let public_key = ed25519_key(cert).ok_or("its public key is not an ed25519 key")?;
    let key_peer_id = crate::key::peer_id_of(&public_key)
        .ok_or("its ed25519 public key is not a valid curve point")?
        .to_base58();
    if key_peer_id != peer_id {
        return Err(format!(
            "its PeerId {peer_id} does not belong to its public key (which is {key_peer_id})"
        ));
    }
    Ok(NodeIdentity {
        country,
        node,
        peer_id,
        public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(matches!(
            Certificate::from_pem("hello"),
            Err(CertificateError::NotPem { .. })
        ));
        let not_x509 = encode_pem(CERTIFICATE_LABEL, b"not der at all");
        assert!(matches!(
            Certificate::from_pem(&not_x509),
            Err(CertificateError::NotX509 { .. })
        ));
        let key = encode_pem("PRIVATE KEY", b"x");
        assert!(matches!(
            Certificate::from_pem(&key),
            Err(CertificateError::WrongLabel { .. })
        ));
    }

    #[test]
    fn utc_formats_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(utc(t), "2023-11-14T22:13:20Z");
    }
}
