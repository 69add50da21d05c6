//! Revocation lists (X.509 CRLs) and the set of the latest list per issuer.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use imi_protocol::Country;
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::ca::national_ca_country;
use crate::cert::{
    Certificate, asn1_time_to_system, ed25519_key, encode_pem, ends_with_ed25519_signature,
    parse_certificate,
};
use crate::name::Serial;
use crate::verify::TrustedRoot;

const CRL_LABEL: &str = "X509 CRL";

/// What a new revocation list says: its number (higher than the issuer's
/// previous list), when it was made, when the next one is due, and every
/// certificate revoked so far (a list replaces the previous one whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationParams {
    /// The list's number; each new list of an issuer has a higher one.
    pub number: u64,
    /// When the list was made.
    pub this_update: SystemTime,
    /// When the issuer will publish the next list.
    pub next_update: SystemTime,
    /// The revoked certificates.
    pub revoked: Vec<Revoked>,
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Its serial number.
    pub serial: Serial,
    /// When it was revoked (second precision).
    pub revoked_at: SystemTime,
}

/// A signed revocation list of a root or national CA, as an X.509 CRL.
/// Constructing one parses it; it is trusted only once a
/// [`RevocationSet`] has accepted it.
#[derive(Clone, PartialEq, Eq)]
pub struct RevocationList {
    der: Vec<u8>,
    issuer_name: Vec<u8>,
    number: u64,
    this_update: SystemTime,
    next_update: SystemTime,
    revoked: Vec<Revoked>,
}

impl RevocationList {
    /// Reads a list from DER.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Result<Self, RevocationListError> {
        let der = der.into();
        let crl = parse_crl(&der)?;
        let malformed = |what: &str| RevocationListError::Malformed {
            what: what.to_owned(),
        };
        if crl.tbs_cert_list.signature.algorithm != x509_parser::oid_registry::OID_SIG_ED25519
            || !ends_with_ed25519_signature(&der)
        {
            return Err(malformed(
                "it is not signed with ed25519, the federation's only signature algorithm",
            ));
        }
        let number_bytes = crl
            .crl_number()
            .ok_or_else(|| malformed("it has no CRL number"))?
            .to_bytes_be();
        let number = u64_from_be(Serial::from_bytes(&number_bytes).as_bytes())
            .ok_or_else(|| malformed("its CRL number does not fit in 64 bits"))?;
        let next_update = crl
            .next_update()
            .ok_or_else(|| malformed("it has no next-update time"))?;
        let revoked = crl
            .iter_revoked_certificates()
            .map(|entry| Revoked {
                serial: Serial::from_bytes(entry.raw_serial()),
                revoked_at: asn1_time_to_system(entry.revocation_date),
            })
            .collect();
        Ok(RevocationList {
            issuer_name: crl.issuer().as_raw().to_vec(),
            number,
            this_update: asn1_time_to_system(crl.last_update()),
            next_update: asn1_time_to_system(next_update),
            revoked,
            der,
        })
    }

    /// Reads a list from PEM (`-----BEGIN X509 CRL-----`).
    pub fn from_pem(pem: &str) -> Result<Self, RevocationListError> {
        let block = ::pem::parse(pem).map_err(|e| RevocationListError::Malformed {
            what: format!("the text is not a PEM document: {e}"),
        })?;
        if block.tag() != CRL_LABEL {
            return Err(RevocationListError::Malformed {
                what: format!(
                    "expected a PEM block labelled {CRL_LABEL} but found {:?}",
                    block.tag()
                ),
            });
        }
        RevocationList::from_der(block.into_contents())
    }

    /// The list as PEM.
    pub fn to_pem(&self) -> String {
        encode_pem(CRL_LABEL, &self.der)
    }

    /// The DER bytes (the form replicated through the directory).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The list's number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// When the list was made.
    pub fn this_update(&self) -> SystemTime {
        self.this_update
    }

    /// When the issuer promised the next list.
    pub fn next_update(&self) -> SystemTime {
        self.next_update
    }

    /// The revoked certificates.
    pub fn revoked(&self) -> &[Revoked] {
        &self.revoked
    }

    /// Whether the certificate with `serial` is on the list.
    pub fn contains(&self, serial: &Serial) -> bool {
        self.revoked.iter().any(|entry| &entry.serial == serial)
    }
}

impl fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationList")
            .field("number", &self.number)
            .field("this_update", &crate::cert::utc(self.this_update))
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

/// A revocation list that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevocationListError {
    /// The bytes or text are not a well-formed revocation list.
    #[error("the revocation list is malformed: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
}

/// The issuer of a revocation, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RevokedBy {
    /// The federation root (revoking a national CA or the observer).
    Root,
    /// The national CA of a country (revoking one of its nodes).
    NationalCa(Country),
}

impl fmt::Display for RevokedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevokedBy::Root => f.write_str("the federation root"),
            RevokedBy::NationalCa(country) => write!(f, "the national CA of {country}"),
        }
    }
}

/// What accepting a revocation list changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The first list held for this issuer.
    New,
    /// The list replaced an older one of the same issuer.
    Replaced {
        /// The number of the list it replaced.
        previous: u64,
    },
    /// The very same list was already held; nothing changed.
    AlreadyHeld,
}

/// A revocation list that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcceptError {
    /// The list could not be read.
    #[error(transparent)]
    Malformed(#[from] RevocationListError),
    /// The certificate offered as the list's issuer is not a national CA
    /// certified by the pinned root.
    #[error(
        "the revocation list's issuer is not a national CA certified by the federation root: {reason}"
    )]
    IssuerNotCertified {
        /// Why not.
        reason: String,
    },
    /// The list names another issuer than the one it was offered for.
    #[error("the revocation list was issued by someone other than {expected}")]
    WrongIssuer {
        /// The issuer it was offered for.
        expected: RevokedBy,
    },
    /// The list's signature does not verify with its issuer's key.
    #[error(
        "the revocation list's signature does not verify with the key of {issuer}; it was altered or signed by someone else"
    )]
    BadSignature {
        /// The issuer it was offered for.
        issuer: RevokedBy,
    },
    /// The list is older than the one held: a replay.
    #[error(
        "revocation list number {offered} of {issuer} is older than the one held (number {held}); refusing the replay"
    )]
    Replay {
        /// The issuer.
        issuer: RevokedBy,
        /// The number held.
        held: u64,
        /// The number offered.
        offered: u64,
    },
    /// A different list with the same number as the one held.
    #[error(
        "{issuer} signed two different revocation lists numbered {number}; keeping the one held"
    )]
    Conflict {
        /// The issuer.
        issuer: RevokedBy,
        /// The shared number.
        number: u64,
    },
}

/// The latest revocation list of each issuer under one pinned root. A list
/// enters only after its signature verifies against its issuer (the root,
/// or a national CA the root certified) and only if its number is not lower
/// than the one held, so an old list cannot be replayed to un-revoke a
/// certificate.
#[derive(Debug, Clone)]
pub struct RevocationSet {
    root: TrustedRoot,
    /// Keyed by the issuer's ed25519 public key.
    lists: BTreeMap<[u8; 32], (RevokedBy, RevocationList)>,
}

impl RevocationSet {
    /// An empty set for lists under `root`.
    pub fn new(root: &TrustedRoot) -> Self {
        RevocationSet {
            root: root.clone(),
            lists: BTreeMap::new(),
        }
    }

    /// Accepts a list signed by the root (revoking national CAs or the
    /// observer).
    pub fn accept_root_list(&mut self, list: RevocationList) -> Result<Accepted, AcceptError> {
        let root = parse_certificate(self.root.certificate().der()).map_err(|what| {
            RevocationListError::Malformed {
                what: what.to_owned(),
            }
        })?;
        let by = RevokedBy::Root;
        check_list(&list, &root, by)?;
        self.hold(self.root.public_key(), by, list)
    }

    /// Accepts a list signed by `national_ca`, whose certificate must have
    /// been issued by the root (its validity does not matter: a list from
    /// an expired CA can only revoke more).
    pub fn accept_national_list(
        &mut self,
        list: RevocationList,
        national_ca: &Certificate,
    ) -> Result<Accepted, AcceptError> {
        let not_certified = |reason: String| AcceptError::IssuerNotCertified { reason };
        let ca = parse_certificate(national_ca.der()).map_err(|r| not_certified(r.to_owned()))?;
        let root = parse_certificate(self.root.certificate().der())
            .map_err(|r| not_certified(r.to_owned()))?;
        if ca.issuer().as_raw() != root.subject().as_raw()
            || ca.verify_signature(Some(root.public_key())).is_err()
        {
            return Err(not_certified(
                "its certificate is not signed by the pinned root".to_owned(),
            ));
        }
        let country = national_ca_country(national_ca.der()).map_err(not_certified)?;
        let key =
            ed25519_key(&ca).ok_or_else(|| not_certified("its key is not ed25519".to_owned()))?;
        let by = RevokedBy::NationalCa(country);
        check_list(&list, &ca, by)?;
        self.hold(key, by, list)
    }

    /// Every list held, with its issuer (to replicate or show them).
    pub fn lists(&self) -> impl Iterator<Item = (RevokedBy, &RevocationList)> {
        self.lists.values().map(|(by, list)| (*by, list))
    }

    /// How many issuers have a list held.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    /// Whether no list is held.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    pub(crate) fn root(&self) -> &TrustedRoot {
        &self.root
    }

    /// Whether the issuer with `issuer_key` revoked `serial`.
    pub(crate) fn revoked_by(&self, issuer_key: &[u8; 32], serial: &Serial) -> Option<RevokedBy> {
        self.lists
            .get(issuer_key)
            .filter(|(_, list)| list.contains(serial))
            .map(|(by, _)| *by)
    }

    fn hold(
        &mut self,
        key: [u8; 32],
        by: RevokedBy,
        list: RevocationList,
    ) -> Result<Accepted, AcceptError> {
        let Some((_, held)) = self.lists.get(&key) else {
            self.lists.insert(key, (by, list));
            return Ok(Accepted::New);
        };
        let held_number = held.number;
        if list.number < held_number {
            return Err(AcceptError::Replay {
                issuer: by,
                held: held_number,
                offered: list.number,
            });
        }
        if list.number == held_number {
            return if list.der == held.der {
                Ok(Accepted::AlreadyHeld)
            } else {
                Err(AcceptError::Conflict {
                    issuer: by,
                    number: held_number,
                })
            };
        }
        self.lists.insert(key, (by, list));
        Ok(Accepted::Replaced {
            previous: held_number,
        })
    }
}

fn u64_from_be(bytes: &[u8]) -> Option<u64> {
    let start = 8usize.checked_sub(bytes.len())?;
    let mut buf = [0u8; 8];
    buf[start..].copy_from_slice(bytes);
    Some(u64::from_be_bytes(buf))
}

fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, RevocationListError> {
    match CertificateRevocationList::from_der(der) {
        Ok(([], crl)) => Ok(crl),
        Ok(_) => Err(RevocationListError::Malformed {
            what: "trailing bytes after the revocation list".to_owned(),
        }),
        Err(_) => Err(RevocationListError::Malformed {
            what: "the bytes are not a DER-encoded X.509 CRL".to_owned(),
        }),
    }
}

/// Checks that `issuer` issued and signed `list`.
fn check_list(
    list: &RevocationList,
    issuer: &X509Certificate<'_>,
    by: RevokedBy,
) -> Result<(), AcceptError> {
    if list.issuer_name != issuer.subject().as_raw() {
        return Err(AcceptError::WrongIssuer { expected: by });
    }
    let crl = parse_crl(&list.der)?;
    crl.verify_signature(issuer.public_key())
        .map_err(|_| AcceptError::BadSignature { issuer: by })
}
