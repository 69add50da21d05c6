//! The federation PKI of imi.
//!
//! Owns the Commission's federation root CA ([`RootCa`]), the national CAs
//! it certifies ([`NationalCa`], one per country, marked
//! `imi:national-ca:FI` and `C=FI`), the node certificates that bind a
//! country, a node name and a node's libp2p ed25519 key ([`NodeKey`],
//! [`CertificateRequest`], [`Certificate`]), the Commission's observer node
//! certified by the root directly, the signed revocation lists
//! ([`RevocationList`], [`RevocationSet`]), and the verification of a
//! presented chain ([`CertChain`]) up to the pinned root ([`TrustedRoot`]),
//! and, for the officials' browsers, each country's national web CA
//! ([`WebCa`], ECDSA P-256, as browsers verify no ed25519 signature) with
//! the HTTPS certificates it issues to web UIs ([`WebServerCertificate`]).
//! It must not know the network or storage: it takes and returns PEM text
//! and bytes, and reads and writes PEM files (keys owner-only).
//!
//! A node certificate's public key *is* the node's ed25519 key (the node
//! asks with a request signed by that key), and it carries the SAN URIs
//! `imi:node:FI/helsinki-1` and `imi:peer:<PeerId>`, the PeerId being
//! libp2p's for that key. Every key in the federation is ed25519, except
//! the web CAs' and web UIs' keys, which only browsers check.
//!
//! Crypto: certificates are built with rcgen 0.14 and signed through
//! ed25519-dalek; verification uses rustls-webpki and x509-parser on the
//! aws-lc-rs backend (which libp2p pulls anyway); nothing here enables
//! `ring`, and no rustls crypto provider needs installing for this crate.
//! rcgen types never cross this crate's API (libp2p-tls uses rcgen 0.13).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use imi_certs::{
//!     CertChain, NodeKey, NodeName, RevocationParams, RevocationSet, Revoked, RootCa, Validity,
//!     VerifyError,
//! };
//! use imi_protocol::Country;
//!
//! // The Commission makes the root and Finland's national CA.
//! let now = SystemTime::now();
//! let year = Duration::from_secs(365 * 24 * 60 * 60);
//! let root = RootCa::generate("imi federation root CA", Validity::starting_at(now, 10 * year))?;
//! let finland = root.issue_national_ca(Country::Fi, Validity::starting_at(now, 5 * year))?;
//!
//! // A Finnish node asks for a certificate with its own key.
//! let key = NodeKey::generate();
//! let request = key.certificate_request(Country::Fi, &NodeName::new("helsinki-1")?)?;
//! let cert = finland.issue_node(&request, Validity::starting_at(now, year))?;
//! let chain = CertChain::national(cert.clone(), finland.certificate().clone());
//!
//! // A peer pins the root and checks the chain for the PeerId the secure
//! // channel proved.
//! let pinned = root.trusted_root();
//! let mut revocations = RevocationSet::new(&pinned);
//! let node = pinned.verify(&chain, &key.peer_id(), now, &revocations)?;
//! assert_eq!((node.country, node.node.as_str()), (Country::Fi, "helsinki-1"));
//!
//! // Finland revokes the node; once the list is accepted the chain fails.
//! let list = finland.revocation_list(&RevocationParams {
//!     number: 1,
//!     this_update: now,
//!     next_update: now + Duration::from_secs(86_400),
//!     revoked: vec![Revoked { serial: cert.serial().clone(), revoked_at: now }],
//! })?;
//! revocations.accept_national_list(list, finland.certificate())?;
//! assert!(matches!(
//!     pinned.verify(&chain, &key.peer_id(), now, &revocations),
//!     Err(VerifyError::Revoked { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ca;
mod cert;
mod crl;
mod files;
mod key;
mod name;
mod request;
mod verify;
mod web;

pub use ca::{CaLoadError, IssueError, NationalCa, RootCa};
pub use cert::{
    CertChain, Certificate, CertificateError, CertificateRole, NATIONAL_CA_URI_PREFIX,
    NODE_URI_PREFIX, PEER_URI_PREFIX, ROOT_URI, Validity, utc,
};
pub use crl::{
    AcceptError, Accepted, RevocationList, RevocationListError, RevocationParams, RevocationSet,
    Revoked, RevokedBy,
};
pub use files::{
    FileError, PRIVATE_KEY_MODE, PUBLIC_FILE_MODE, read_private_key_pem, read_public_pem,
    write_file_atomically, write_private_key_pem, write_public_pem,
};
pub use key::{KeyError, NodeKey};
pub use libp2p_identity::PeerId;
pub use name::{InvalidNodeName, InvalidSerial, MAX_NODE_NAME_LEN, NodeName, Serial};
pub use request::{CertificateRequest, RequestError};
pub use verify::{RootError, TrustedRoot, VerifiedNode, VerifyError};
pub use web::{InvalidWebHost, WEB_CA_URI_PREFIX, WebCa, WebHost, WebServerCertificate};
