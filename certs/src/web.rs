//! HTTPS certificates for a country's web UIs: the national web CA and the
//! server certificates it issues.
//!
//! Every key of the federation is ed25519, and browsers do not verify
//! ed25519 signatures in a certificate chain: Chromium (156, tried) refuses
//! a server certificate signed by an ed25519 CA as invalid even when that
//! CA is trusted, and NSS (3.87, tried; the certificate store of Firefox and
//! of Chromium on Linux) refuses to import an ed25519 CA at all. A web certificate signed by the national CA would open in no
//! browser. So the national coordinator keeps, beside the national CA, a
//! **national web CA** with an ECDSA P-256 key:
//!
//! - made from the national CA's files, for the same country (subject
//!   `C=FI`, SAN URI `imi:web-ca:FI`), valid no longer than the national CA;
//! - name-constrained to the domains the coordinator names (say
//!   `example.fi`) and to no IP address, so the officials' browsers, which
//!   trust it as the operator installs it, trust it for those domains only;
//! - issuing server certificates (DNS names, server authentication only)
//!   with a fresh P-256 key each, which the node serves with the web CA's
//!   certificate after its own.

use std::fmt;

use imi_protocol::Country;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::ca::{IssueError, NationalCa, base_params, check_within};
use crate::cert::{
    Certificate, Validity, is_ca, parse_certificate, san_uris, subject_country, unique_uri,
};
use crate::request::{printable, uri};
use crate::{CaLoadError, KeyError};

/// SAN URI prefix marking a national web CA: `imi:web-ca:FI`.
pub const WEB_CA_URI_PREFIX: &str = "imi:web-ca:";

/// A host name a web UI is reached by (`imi.example.fi`): a DNS name,
/// lowercase, without wildcard. IP addresses are refused: browsers reach
/// the UI by name, and the web CA is constrained to names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebHost(String);

/// A host name or domain that is not a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a DNS host name: use letters, digits, '-' and dots, like imi.example.fi (no IP address, no wildcard)"
)]
pub struct InvalidWebHost {
    /// As given.
    pub name: String,
}

impl WebHost {
    /// The name, checked and lowercased.
    pub fn new(name: &str) -> Result<Self, InvalidWebHost> {
        let invalid = || InvalidWebHost {
            name: name.to_owned(),
        };
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if lower.contains('_') || !lower.contains(|c: char| c.is_ascii_alphabetic()) {
            return Err(invalid());
        }
        rustls_pki_types::DnsName::try_from(lower.as_str()).map_err(|_| invalid())?;
        if lower.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid());
        }
        Ok(WebHost(lower))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name is `domain` or lies under it (`imi.example.fi`
    /// under `example.fi`), as a dNSName name constraint reads.
    pub fn is_within(&self, domain: &WebHost) -> bool {
        self.0 == domain.0
            || self
                .0
                .strip_suffix(domain.0.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }
}

impl fmt::Display for WebHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for WebHost {
    type Err = InvalidWebHost;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebHost::new(s)
    }
}

/// A country's national web CA: the ECDSA P-256 CA that certifies the
/// HTTPS certificates of the country's web UIs (see the module's
/// documentation for why it is not the national CA itself).
pub struct WebCa {
    cert: Certificate,
    key: KeyPair,
    country: Country,
    domains: Vec<WebHost>,
}

/// A web UI's HTTPS certificate, its web CA's certificate after it, and
/// its private key (PKCS#8 PEM), as the node serves them.
pub struct WebServerCertificate {
    certificate: Certificate,
    web_ca: Certificate,
    key_pem: String,
}

impl WebCa {
    /// Creates the web CA of `national`'s country with a fresh P-256 key,
    /// valid for `validity` (which must end before the national CA
    /// expires), allowed to certify `domains` and the names under them.
    pub fn generate(
        national: &NationalCa,
        domains: &[WebHost],
        validity: Validity,
    ) -> Result<WebCa, IssueError> {
        if domains.is_empty() {
            return Err(IssueError::NoWebDomains);
        }
        check_within(validity, national.certificate().not_after())?;
        let country = national.country();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(encoding)?;
        let mut params = base_params(validity)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name = {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CountryName, printable(country.code())?);
            dn.push(
                DnType::OrganizationName,
                DnValue::Utf8String("imi federation".to_owned()),
            );
            dn.push(
                DnType::CommonName,
                DnValue::Utf8String(format!("imi web CA {country}")),
            );
            dn
        };
        params.subject_alt_names = vec![uri(&format!("{WEB_CA_URI_PREFIX}{country}"))?];
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: domains
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.0.clone()))
                .collect(),
            excluded_subtrees: vec![
                GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
                GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
            ],
        });
        let cert = params.self_signed(&key).map_err(encoding)?;
        let cert =
            Certificate::from_der(cert.der().to_vec()).map_err(|e| IssueError::Encoding {
                reason: e.to_string(),
            })?;
        Ok(WebCa {
            cert,
            key,
            country,
            domains: domains.to_vec(),
        })
    }

    /// Loads a web CA from its certificate and PKCS#8 key PEM documents.
    pub fn from_pem(certificate_pem: &str, key_pem: &str) -> Result<Self, CaLoadError> {
        let cert = Certificate::from_pem(certificate_pem)?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| KeyError::NotEcdsaP256Pkcs8 {
            reason: e.to_string(),
        })?;
        if key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(KeyError::NotEcdsaP256Pkcs8 {
                reason: "it is not an ECDSA P-256 key".to_owned(),
            }
            .into());
        }
        let parsed = parse_certificate(cert.der()).map_err(|reason| CaLoadError::NotAWebCa {
            reason: reason.to_owned(),
        })?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(KeyError::DoesNotMatchCertificate.into());
        }
        let (country, domains) =
            web_ca_marks(&parsed).map_err(|reason| CaLoadError::NotAWebCa { reason })?;
        Ok(WebCa {
            cert,
            key,
            country,
            domains,
        })
    }

    /// The web CA's certificate: what the operator installs in the
    /// officials' browsers.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The country whose web UIs it certifies.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The domains it may certify names in.
    pub fn domains(&self) -> &[WebHost] {
        &self.domains
    }

    /// The private key as PKCS#8 PEM; keep it owner-only, beside the
    /// national CA's.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues the HTTPS certificate of a web UI reached by `hosts` (the
    /// first is its common name), with a fresh P-256 key, for server
    /// authentication only.
    pub fn issue_server(
        &self,
        hosts: &[WebHost],
        validity: Validity,
    ) -> Result<WebServerCertificate, IssueError> {
        let first = hosts.first().ok_or(IssueError::NoWebHosts)?;
        if let Some(outside) = hosts
            .iter()
            .find(|h| !self.domains.iter().any(|d| h.is_within(d)))
        {
            return Err(IssueError::HostOutsideWebDomains {
                host: outside.to_string(),
                domains: self.domains.iter().map(ToString::to_string).collect(),
            });
        }
        check_within(validity, self.cert.not_after())?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(encoding)?;
        let mut params: CertificateParams = base_params(validity)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.distinguished_name = {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, DnValue::Utf8String(first.0.clone()));
            dn
        };
        params.subject_alt_names = hosts
            .iter()
            .map(|h| {
                rcgen::string::Ia5String::try_from(h.0.as_str())
                    .map(SanType::DnsName)
                    .map_err(encoding)
            })
            .collect::<Result<_, _>>()?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(self.cert.der()), &self.key)
            .map_err(encoding)?;
        let cert = params.signed_by(&key, &issuer).map_err(encoding)?;
        let certificate =
            Certificate::from_der(cert.der().to_vec()).map_err(|e| IssueError::Encoding {
                reason: e.to_string(),
            })?;
        Ok(WebServerCertificate {
            certificate,
            web_ca: self.cert.clone(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl WebServerCertificate {
    /// The server certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The web CA's certificate that issued it.
    pub fn web_ca(&self) -> &Certificate {
        &self.web_ca
    }

    /// The chain the node serves, as PEM: the server certificate, then the
    /// web CA's.
    pub fn chain_pem(&self) -> String {
        let mut pem = self.certificate.to_pem();
        pem.push_str(&self.web_ca.to_pem());
        pem
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

impl fmt::Debug for WebCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebCa")
            .field("country", &self.country)
            .field("domains", &self.domains)
            .field("certificate", &self.cert)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for WebServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebServerCertificate")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// The country and domains of a web CA certificate, checking its marks: it
/// is a CA, carries `imi:web-ca:CC`, its subject country is CC, and it is
/// constrained to DNS domains.
fn web_ca_marks(cert: &X509Certificate<'_>) -> Result<(Country, Vec<WebHost>), String> {
    if !is_ca(cert) {
        return Err("it is not a CA certificate".to_owned());
    }
    let uris = san_uris(cert).map_err(str::to_owned)?;
    let code = unique_uri(&uris, WEB_CA_URI_PREFIX)?
        .ok_or_else(|| format!("it carries no {WEB_CA_URI_PREFIX}COUNTRY mark"))?;
    let country: Country = code
        .parse()
        .map_err(|_| format!("its country {code:?} is not a federation member"))?;
    if subject_country(cert)? != Some(country) {
        return Err(format!(
            "its subject country differs from its web CA mark {country}"
        ));
    }
    let domains = web_ca_domains(cert)?;
    if domains.is_empty() {
        return Err("it is not constrained to any domain".to_owned());
    }
    Ok((country, domains))
}

/// The DNS domains a CA certificate's name constraints permit.
fn web_ca_domains(cert: &X509Certificate<'_>) -> Result<Vec<WebHost>, String> {
    let constraints = cert
        .name_constraints()
        .map_err(|_| "its name constraints are malformed".to_owned())?;
    let Some(constraints) = constraints else {
        return Ok(vec![]);
    };
    constraints
        .value
        .permitted_subtrees
        .iter()
        .flatten()
        .filter_map(|subtree| match subtree.base {
            GeneralName::DNSName(name) => Some(WebHost::new(name).map_err(|e| e.to_string())),
            _ => None,
        })
        .collect()
}

/// What a web certificate says, for display: the web CA's country, or a
/// server certificate's host names.
pub(crate) fn web_role(cert: &X509Certificate<'_>) -> Option<crate::CertificateRole> {
    if let Ok((country, domains)) = web_ca_marks(cert) {
        return Some(crate::CertificateRole::WebCa {
            country,
            domains: domains.iter().map(ToString::to_string).collect(),
        });
    }
    if is_ca(cert) {
        return None;
    }
    let server_auth = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.server_auth);
    let hosts: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    (server_auth && !hosts.is_empty()).then_some(crate::CertificateRole::WebServer { hosts })
}

fn encoding(e: rcgen::Error) -> IssueError {
    IssueError::Encoding {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use rustls_pki_types::{ServerName, UnixTime};

    use super::*;
    use crate::{CertificateRole, RootCa};

    fn finland() -> NationalCa {
        let root = RootCa::generate("root", Validity::days_from_now(30)).unwrap();
        root.issue_national_ca(Country::Fi, Validity::days_from_now(20))
            .unwrap()
    }

    fn hosts(names: &[&str]) -> Vec<WebHost> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// What a browser trusting only `web_ca` concludes about `cert` served
    /// for `host`.
    fn browser_check(
        web_ca: &WebCa,
        cert: &WebServerCertificate,
        host: &str,
    ) -> Result<(), String> {
        let anchor_der = CertificateDer::from(web_ca.certificate().der());
        let anchor = webpki::anchor_from_trusted_cert(&anchor_der).map_err(|e| e.to_string())?;
        let leaf_der = CertificateDer::from(cert.certificate().der());
        let leaf = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| e.to_string())?;
        let now = UnixTime::since_unix_epoch(
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(60),
        );
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| e.to_string())?;
        leaf.verify_is_valid_for_subject_name(&ServerName::try_from(host).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_web_ui_certificate_is_trusted_for_its_host_names_by_whoever_trusts_the_web_ca() {
        let web_ca = WebCa::generate(
            &finland(),
            &hosts(&["example.fi"]),
            Validity::days_from_now(10),
        )
        .unwrap();
        let cert = web_ca
            .issue_server(
                &hosts(&["imi.example.fi", "IMI-2.Example.fi"]),
                Validity::days_from_now(5),
            )
            .unwrap();
        browser_check(&web_ca, &cert, "imi.example.fi").unwrap();
        browser_check(&web_ca, &cert, "imi-2.example.fi").unwrap();
        let err = browser_check(&web_ca, &cert, "other.example.fi").unwrap_err();
        assert!(err.contains("NotValidForName"), "{err}");
        assert_eq!(
            cert.certificate().role(),
            &CertificateRole::WebServer {
                hosts: vec!["imi.example.fi".into(), "imi-2.example.fi".into()]
            }
        );
        assert_eq!(
            web_ca.certificate().role(),
            &CertificateRole::WebCa {
                country: Country::Fi,
                domains: vec!["example.fi".into()]
            }
        );
        // The node serves its certificate, then the web CA's.
        let chain = cert.chain_pem();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(chain.starts_with(&cert.certificate().to_pem()));
        assert!(cert.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn the_web_ca_certifies_names_in_its_domains_only() {
        let web_ca = WebCa::generate(
            &finland(),
            &hosts(&["example.fi"]),
            Validity::days_from_now(10),
        )
        .unwrap();
        for outside in ["imi.example.com", "badexample.fi", "fi"] {
            let err = web_ca
                .issue_server(&hosts(&[outside]), Validity::days_from_now(5))
                .unwrap_err();
            assert!(
                matches!(err, IssueError::HostOutsideWebDomains { .. }),
                "{outside}: {err}"
            );
        }
        assert_eq!(
            web_ca
                .issue_server(&[], Validity::days_from_now(5))
                .unwrap_err(),
            IssueError::NoWebHosts
        );
        // Nor does it outlive itself, nor the national CA.
        assert!(matches!(
            web_ca.issue_server(&hosts(&["imi.example.fi"]), Validity::days_from_now(11)),
            Err(IssueError::OutlivesIssuer { .. })
        ));
        assert!(matches!(
            WebCa::generate(
                &finland(),
                &hosts(&["example.fi"]),
                Validity::days_from_now(21)
            ),
            Err(IssueError::OutlivesIssuer { .. })
        ));
        assert_eq!(
            WebCa::generate(&finland(), &[], Validity::days_from_now(5)).unwrap_err(),
            IssueError::NoWebDomains
        );
    }

    #[test]
    fn a_web_ca_loads_from_its_files_with_its_own_key_only() {
        let national = finland();
        let domains = hosts(&["example.fi", "imi.gov.fi"]);
        let web_ca = WebCa::generate(&national, &domains, Validity::days_from_now(10)).unwrap();
        let other = WebCa::generate(&national, &domains, Validity::days_from_now(10)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (
            dir.path().join("web-ca.pem"),
            dir.path().join("web-ca-key.pem"),
        );
        web_ca.write_pem_files(&cert, &key).unwrap();
        let loaded = WebCa::read_pem_files(&cert, &key).unwrap();
        assert_eq!(loaded.country(), Country::Fi);
        assert_eq!(loaded.domains(), &domains[..]);
        assert_eq!(loaded.certificate(), web_ca.certificate());
        let issued = loaded
            .issue_server(&hosts(&["imi.gov.fi"]), Validity::days_from_now(5))
            .unwrap();
        browser_check(&web_ca, &issued, "imi.gov.fi").unwrap();
        assert!(matches!(
            WebCa::from_pem(&web_ca.certificate().to_pem(), &other.key_pem()),
            Err(CaLoadError::Key(KeyError::DoesNotMatchCertificate))
        ));
        // The national CA is no web CA, and its ed25519 key no web CA key.
        assert!(matches!(
            WebCa::from_pem(&national.certificate().to_pem(), &web_ca.key_pem()),
            Err(CaLoadError::Key(KeyError::DoesNotMatchCertificate))
        ));
        assert!(matches!(
            WebCa::from_pem(&web_ca.certificate().to_pem(), &national.key_pem()),
            Err(CaLoadError::Key(KeyError::NotEcdsaP256Pkcs8 { .. }))
        ));
    }

    #[test]
    fn host_names_are_dns_names() {
        assert_eq!(
            WebHost::new("IMI.Example.FI.").unwrap().as_str(),
            "imi.example.fi"
        );
        for bad in [
            "",
            "127.0.0.1",
            "::1",
            "*.example.fi",
            "imi_1.example.fi",
            "-a.fi",
            "a..fi",
        ] {
            assert!(WebHost::new(bad).is_err(), "{bad:?} accepted");
        }
        let domain = WebHost::new("example.fi").unwrap();
        assert!(WebHost::new("a.b.example.fi").unwrap().is_within(&domain));
        assert!(domain.is_within(&domain));
        assert!(!WebHost::new("notexample.fi").unwrap().is_within(&domain));
    }
}
