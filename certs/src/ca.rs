//! The issuing side: the Commission's root CA and the national CAs.

use std::time::SystemTime;

use ed25519_dalek::SigningKey;
use imi_protocol::Country;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::CertificateDer;

use crate::cert::{
    Certificate, CertificateError, NATIONAL_CA_URI_PREFIX, ROOT_URI, Validity, is_ca,
    parse_certificate, san_uris, subject_country, unique_uri, utc,
};
use crate::crl::{RevocationList, RevocationParams};
use crate::key::{
    Ed25519PublicKey, KeyError, RcgenSigner, generate_seed, signing_key_from_pem,
    signing_key_to_pem,
};
use crate::name::Serial;
use crate::request::{CertificateRequest, RequestError, node_sans, node_subject, printable, uri};
use crate::verify::TrustedRoot;

/// The Commission's federation root CA: the root of trust every node pins.
/// It certifies the national CAs and the Commission's observer node, and
/// signs the revocation list for them.
pub struct RootCa {
    cert: Certificate,
    key: SigningKey,
}

/// A country's national CA, certified by the root. It certifies that
/// country's nodes and signs the revocation list for them.
pub struct NationalCa {
    cert: Certificate,
    key: SigningKey,
    country: Country,
}

impl RootCa {
    /// A new root with a fresh key, named `common_name` (e.g. "imi
    /// federation root CA"), self-signed for `validity`.
    pub fn generate(common_name: &str, validity: Validity) -> Result<Self, IssueError> {
        let key = SigningKey::from_bytes(&generate_seed());
        let mut params = ca_params(validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        params.distinguished_name = {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, utf8("European Commission"));
            dn.push(DnType::CommonName, utf8(common_name));
            dn
        };
        params.subject_alt_names = vec![uri(ROOT_URI)?];
        let cert = params
            .self_signed(&RcgenSigner::new(&key))
            .map_err(encoding)?;
        let cert =
            Certificate::from_der(cert.der().to_vec()).map_err(|e| IssueError::Encoding {
                reason: e.to_string(),
            })?;
        Ok(RootCa { cert, key })
    }

    /// Loads a root from its certificate and PKCS#8 key PEM documents.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, CaLoadError> {
        let cert = Certificate::from_pem(certificate_pem)?;
        let key = signing_key_from_pem(key_pem)?;
        check_key_matches(&cert, &key)?;
        TrustedRoot::from_certificate(cert.clone()).map_err(|e| CaLoadError::NotARoot {
            reason: e.to_string(),
        })?;
        Ok(RootCa { cert, key })
    }

    /// The root certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The root's private key as PKCS#8 PEM; keep it offline, owner-only.
    pub fn key_pem(&self) -> String {
        signing_key_to_pem(&self.key)
    }

    /// The root as the trust anchor that nodes pin.
    pub fn trusted_root(&self) -> TrustedRoot {
        TrustedRoot::from_certificate(self.cert.clone())
            .expect("a root made or loaded by RootCa is a valid trust anchor")
    }

    /// Creates the national CA of `country` with a fresh key, valid for
    /// `validity` (which must end before the root expires).
    pub fn issue_national_ca(
        &self,
        country: Country,
        validity: Validity,
    ) -> Result<NationalCa, IssueError> {
        if country.is_commission() {
            return Err(IssueError::NationalCaForCommission);
        }
        self.check_within(validity)?;
        let key = SigningKey::from_bytes(&generate_seed());
        let mut params = ca_params(validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.use_authority_key_identifier_extension = true;
        params.distinguished_name = {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CountryName, printable(country.code())?);
            dn.push(DnType::OrganizationName, utf8("imi federation"));
            dn.push(
                DnType::CommonName,
                utf8(&format!("imi national CA {country}")),
            );
            dn
        };
        params.subject_alt_names = vec![uri(&format!("{NATIONAL_CA_URI_PREFIX}{country}"))?];
        let cert = params
            .signed_by(&RcgenSigner::new(&key), &self.issuer()?)
            .map_err(encoding)?;
        let cert =
            Certificate::from_der(cert.der().to_vec()).map_err(|e| IssueError::Encoding {
                reason: e.to_string(),
            })?;
        Ok(NationalCa { cert, key, country })
    }

    /// Certifies the Commission's observer node from its request, which
    /// must name country `EU`.
    pub fn issue_observer(
        &self,
        request: &CertificateRequest,
        validity: Validity,
    ) -> Result<Certificate, IssueError> {
        if !request.country().is_commission() {
            return Err(IssueError::ObserverMustBeCommission {
                requested: request.country(),
            });
        }
        self.check_within(validity)?;
        issue_node_certificate(request, validity, &self.issuer()?)
    }

    /// Signs a revocation list of national CA or observer certificates.
    pub fn revocation_list(&self, params: &RevocationParams) -> Result<RevocationList, IssueError> {
        sign_revocation_list(params, &self.issuer()?)
    }

    fn issuer(&self) -> Result<Issuer<'static, RcgenSigner<'_>>, IssueError> {
        issuer_of(&self.cert, &self.key)
    }

    fn check_within(&self, validity: Validity) -> Result<(), IssueError> {
        check_within(validity, self.cert.not_after())
    }
}

impl NationalCa {
    /// Loads a national CA from its certificate and PKCS#8 key PEM documents.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, CaLoadError> {
        let cert = Certificate::from_pem(certificate_pem)?;
        let key = signing_key_from_pem(key_pem)?;
        check_key_matches(&cert, &key)?;
        let country = national_ca_country(cert.der())
            .map_err(|reason| CaLoadError::NotANationalCa { reason })?;
        Ok(NationalCa { cert, key, country })
    }

    /// The country this CA certifies nodes for.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The national CA certificate (nodes present it with their own).
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The CA's private key as PKCS#8 PEM; keep it owner-only.
    pub fn key_pem(&self) -> String {
        signing_key_to_pem(&self.key)
    }

    /// Certifies a node of this CA's country from its request.
    pub fn issue_node(
        &self,
        request: &CertificateRequest,
        validity: Validity,
    ) -> Result<Certificate, IssueError> {
        if request.country() != self.country {
            return Err(IssueError::WrongCountry {
                requested: request.country(),
                ca: self.country,
            });
        }
        check_within(validity, self.cert.not_after())?;
        issue_node_certificate(request, validity, &self.issuer()?)
    }

    /// Signs a revocation list of this CA's node certificates.
    pub fn revocation_list(&self, params: &RevocationParams) -> Result<RevocationList, IssueError> {
        sign_revocation_list(params, &self.issuer()?)
    }

    fn issuer(&self) -> Result<Issuer<'static, RcgenSigner<'_>>, IssueError> {
        issuer_of(&self.cert, &self.key)
    }
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("certificate", &self.cert)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NationalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NationalCa")
            .field("country", &self.country)
            .field("certificate", &self.cert)
            .finish_non_exhaustive()
    }
}

/// A certificate or revocation list that could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// A national CA was asked to certify a node of another country.
    #[error(
        "the request is for a node in {requested}, but this national CA certifies only nodes in {ca}"
    )]
    WrongCountry {
        /// The country in the request.
        requested: Country,
        /// The CA's country.
        ca: Country,
    },
    /// The root was asked to certify a node other than the observer.
    #[error(
        "the root certifies only the Commission's observer node (country EU), not a node in {requested}; country nodes are certified by their national CA"
    )]
    ObserverMustBeCommission {
        /// The country in the request.
        requested: Country,
    },
    /// A national CA was asked for the Commission.
    #[error(
        "the Commission has no national CA; its observer node is certified by the root directly"
    )]
    NationalCaForCommission,
    /// The validity period ends before it starts.
    #[error("the validity period is empty: it must end after it starts")]
    EmptyValidity,
    /// The certificate would outlive its issuer.
    #[error(
        "the certificate would stay valid after its issuer expires at {}; shorten its validity or renew the issuer first",
        utc(*issuer_not_after)
    )]
    OutlivesIssuer {
        /// When the issuer's certificate expires.
        issuer_not_after: SystemTime,
    },
    /// A revocation list's next update is not after its this-update.
    #[error("the revocation list's next update must come after its this-update")]
    EmptyRevocationPeriod,
    /// A web CA was asked for without a domain to certify names in.
    #[error("name at least one domain the web CA may certify host names in, like example.fi")]
    NoWebDomains,
    /// A web server certificate was asked for without a host name.
    #[error("name at least one host name the web UI is reached by, like imi.example.fi")]
    NoWebHosts,
    /// A host name lies outside the web CA's domains.
    #[error(
        "the web CA certifies names in {} only, not {host}; browsers would refuse the certificate",
        domains.join(", ")
    )]
    HostOutsideWebDomains {
        /// The host name asked for.
        host: String,
        /// The web CA's domains.
        domains: Vec<String>,
    },
    /// A field could not be encoded.
    #[error("the certificate could not be encoded: {reason}")]
    Encoding {
        /// What the encoder reported.
        reason: String,
    },
}

impl From<RequestError> for IssueError {
    fn from(e: RequestError) -> Self {
        IssueError::Encoding {
            reason: e.to_string(),
        }
    }
}

/// A CA certificate and key that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaLoadError {
    /// The certificate could not be read.
    #[error("the CA certificate could not be read: {0}")]
    Certificate(#[from] CertificateError),
    /// The key could not be read or does not match.
    #[error("the CA key could not be used: {0}")]
    Key(#[from] KeyError),
    /// The certificate is not a federation root.
    #[error("the certificate is not a federation root CA: {reason}")]
    NotARoot {
        /// Why not.
        reason: String,
    },
    /// The certificate is not a national CA.
    #[error("the certificate is not a national CA: {reason}")]
    NotANationalCa {
        /// Why not.
        reason: String,
    },
    /// The certificate is not a national web CA.
    #[error("the certificate is not a national web CA: {reason}")]
    NotAWebCa {
        /// Why not.
        reason: String,
    },
}

/// The country of a national CA certificate, checking its marks: it is a
/// CA, carries `imi:national-ca:CC`, and its subject country is CC.
pub(crate) fn national_ca_country(der: &[u8]) -> Result<Country, String> {
    let cert = parse_certificate(der).map_err(str::to_owned)?;
    if !is_ca(&cert) {
        return Err("it is not a CA certificate".to_owned());
    }
    let uris = san_uris(&cert).map_err(str::to_owned)?;
    let code = unique_uri(&uris, NATIONAL_CA_URI_PREFIX)?
        .ok_or_else(|| format!("it carries no {NATIONAL_CA_URI_PREFIX}COUNTRY mark"))?;
    let country: Country = code
        .parse()
        .map_err(|_| format!("its country {code:?} is not a federation member"))?;
    if country.is_commission() {
        return Err("it claims to be a national CA of the Commission, which has none".to_owned());
    }
    match subject_country(&cert)? {
        Some(subject) if subject == country => Ok(country),
        Some(subject) => Err(format!(
            "its subject country {subject} differs from its national CA mark {country}"
        )),
        None => Err("its subject names no country".to_owned()),
    }
}

fn issue_node_certificate(
    request: &CertificateRequest,
    validity: Validity,
    issuer: &Issuer<'_, RcgenSigner<'_>>,
) -> Result<Certificate, IssueError> {
    let mut params = base_params(validity)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.distinguished_name = node_subject(request.country(), request.node())?;
    params.subject_alt_names = node_sans(request.country(), request.node(), request.peer_id())?;
    let cert = params
        .signed_by(&Ed25519PublicKey(request.public_key()), issuer)
        .map_err(encoding)?;
    Certificate::from_der(cert.der().to_vec()).map_err(|e| IssueError::Encoding {
        reason: e.to_string(),
    })
}

fn sign_revocation_list(
    params: &RevocationParams,
    issuer: &Issuer<'_, RcgenSigner<'_>>,
) -> Result<RevocationList, IssueError> {
    if params.next_update <= params.this_update {
        return Err(IssueError::EmptyRevocationPeriod);
    }
    let crl = CertificateRevocationListParams {
        this_update: params.this_update.into(),
        next_update: params.next_update.into(),
        crl_number: SerialNumber::from(params.number),
        issuing_distribution_point: None,
        revoked_certs: params
            .revoked
            .iter()
            .map(|entry| RevokedCertParams {
                serial_number: SerialNumber::from_slice(entry.serial.as_bytes()),
                revocation_time: entry.revoked_at.into(),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .map_err(encoding)?;
    RevocationList::from_der(crl.der().to_vec()).map_err(|e| IssueError::Encoding {
        reason: e.to_string(),
    })
}

fn issuer_of<'k>(
    cert: &Certificate,
    key: &'k SigningKey,
) -> Result<Issuer<'static, RcgenSigner<'k>>, IssueError> {
    // rcgen copies the issuer's name from the certificate and supports only
    // one attribute per name component; check first rather than let it fail.
    let parsed = parse_certificate(cert.der()).map_err(|reason| IssueError::Encoding {
        reason: reason.to_owned(),
    })?;
    if parsed.subject().iter().any(|rdn| rdn.iter().count() != 1) {
        return Err(IssueError::Encoding {
            reason: "the issuer's name has a component with other than one attribute".to_owned(),
        });
    }
    Issuer::from_ca_cert_der(&CertificateDer::from(cert.der()), RcgenSigner::new(key))
        .map_err(encoding)
}

pub(crate) fn base_params(validity: Validity) -> Result<CertificateParams, IssueError> {
    if validity.not_after <= validity.not_before {
        return Err(IssueError::EmptyValidity);
    }
    let mut params = CertificateParams::default();
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params.serial_number = Some(SerialNumber::from_slice(Serial::fresh().as_bytes()));
    Ok(params)
}

fn ca_params(validity: Validity) -> Result<CertificateParams, IssueError> {
    let mut params = base_params(validity)?;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

pub(crate) fn check_within(
    validity: Validity,
    issuer_not_after: SystemTime,
) -> Result<(), IssueError> {
    if validity.not_after > issuer_not_after {
        return Err(IssueError::OutlivesIssuer { issuer_not_after });
    }
    Ok(())
}

fn check_key_matches(cert: &Certificate, key: &SigningKey) -> Result<(), KeyError> {
    let parsed = parse_certificate(cert.der()).map_err(|_| KeyError::DoesNotMatchCertificate)?;
    match crate::cert::ed25519_key(&parsed) {
        Some(public) if public == key.verifying_key().to_bytes() => Ok(()),
        _ => Err(KeyError::DoesNotMatchCertificate),
    }
}

fn utf8(text: &str) -> DnValue {
    DnValue::Utf8String(text.to_owned())
}

fn encoding(e: rcgen::Error) -> IssueError {
    IssueError::Encoding {
        reason: e.to_string(),
    }
}
