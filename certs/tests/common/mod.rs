//! A small federation for the tests, and a forger that builds certificates
//! with rcgen directly, the way a misbehaving or foreign CA would.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime};

use imi_certs::{
    CertChain, Certificate, NationalCa, NodeKey, NodeName, RevocationSet, RootCa, TrustedRoot,
    Validity,
};
use imi_protocol::Country;

pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);
pub const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

pub struct Federation {
    pub now: SystemTime,
    pub root: RootCa,
    pub pinned: TrustedRoot,
    pub fi: NationalCa,
    pub de: NationalCa,
}

pub struct Node {
    pub key: NodeKey,
    pub cert: Certificate,
    pub chain: CertChain,
}

impl Federation {
    pub fn new() -> Self {
        Self::named("imi federation root CA")
    }

    pub fn named(root_name: &str) -> Self {
        let now = SystemTime::now();
        let root =
            RootCa::generate(root_name, Validity::starting_at(now - DAY, 10 * YEAR)).expect("root");
        let fi = root
            .issue_national_ca(Country::Fi, Validity::starting_at(now - DAY, 5 * YEAR))
            .expect("FI CA");
        let de = root
            .issue_national_ca(Country::De, Validity::starting_at(now - DAY, 5 * YEAR))
            .expect("DE CA");
        let pinned = root.trusted_root();
        Federation {
            now,
            root,
            pinned,
            fi,
            de,
        }
    }

    pub fn revocations(&self) -> RevocationSet {
        RevocationSet::new(&self.pinned)
    }

    pub fn node(&self, ca: &NationalCa, name: &str) -> Node {
        self.node_valid(ca, name, Validity::starting_at(self.now - DAY, YEAR))
    }

    pub fn node_valid(&self, ca: &NationalCa, name: &str, validity: Validity) -> Node {
        let key = NodeKey::generate();
        let request = key
            .certificate_request(ca.country(), &NodeName::new(name).unwrap())
            .unwrap();
        let cert = ca.issue_node(&request, validity).expect("node certificate");
        let chain = CertChain::national(cert.clone(), ca.certificate().clone());
        Node { key, cert, chain }
    }

    pub fn observer(&self) -> Node {
        let key = NodeKey::generate();
        let request = key
            .certificate_request(Country::Eu, &NodeName::new("observer").unwrap())
            .unwrap();
        let cert = self
            .root
            .issue_observer(&request, Validity::starting_at(self.now - DAY, YEAR))
            .expect("observer certificate");
        let chain = CertChain::observer(cert.clone());
        Node { key, cert, chain }
    }
}

/// What a forged certificate should contain.
pub struct Forgery<'a> {
    pub subject: &'a NodeKey,
    pub country: &'a str,
    pub node: &'a str,
    pub peer_id: String,
    pub is_ca: bool,
    pub with_node_names: bool,
}

impl<'a> Forgery<'a> {
    pub fn node(subject: &'a NodeKey, country: &'a str, node: &'a str) -> Self {
        Forgery {
            subject,
            country,
            node,
            peer_id: subject.peer_id(),
            is_ca: false,
            with_node_names: true,
        }
    }

    fn params(&self, now: SystemTime) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::default();
        params.not_before = (now - DAY).into();
        params.not_after = (now + 30 * DAY).into();
        params.serial_number = Some(rcgen::SerialNumber::from(rand_serial()));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(
            rcgen::DnType::CountryName,
            rcgen::DnValue::PrintableString(self.country.try_into().unwrap()),
        );
        dn.push(rcgen::DnType::CommonName, self.node);
        params.distinguished_name = dn;
        if self.with_node_names {
            params.subject_alt_names = vec![
                rcgen::SanType::URI(
                    format!("imi:node:{}/{}", self.country, self.node)
                        .try_into()
                        .unwrap(),
                ),
                rcgen::SanType::URI(format!("imi:peer:{}", self.peer_id).try_into().unwrap()),
            ];
        }
        params.is_ca = if self.is_ca {
            rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
        } else {
            rcgen::IsCa::ExplicitNoCa
        };
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params
    }

    /// Signed by `issuer_cert` with the key in `issuer_key_pem`.
    pub fn signed_by(
        &self,
        issuer_cert: &Certificate,
        issuer_key_pem: &str,
        now: SystemTime,
    ) -> Certificate {
        let issuer_key = rcgen::KeyPair::from_pem(issuer_key_pem).expect("issuer key");
        let issuer = rcgen::Issuer::from_ca_cert_der(
            &rustls_pki_types::CertificateDer::from(issuer_cert.der()),
            issuer_key,
        )
        .expect("issuer");
        let subject = rcgen::KeyPair::from_pem(&self.subject.to_pkcs8_pem()).unwrap();
        let cert = self.params(now).signed_by(&subject, &issuer).unwrap();
        Certificate::from_der(cert.der().to_vec()).unwrap()
    }

    /// Signed by its own key.
    pub fn self_signed(&self, now: SystemTime) -> Certificate {
        let subject = rcgen::KeyPair::from_pem(&self.subject.to_pkcs8_pem()).unwrap();
        let cert = self.params(now).self_signed(&subject).unwrap();
        Certificate::from_der(cert.der().to_vec()).unwrap()
    }
}

fn rand_serial() -> u64 {
    u64::from_be_bytes(NodeKey::generate().secret_seed()[..8].try_into().unwrap()) >> 1
}
