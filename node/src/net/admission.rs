//! Admission of peers by their federation certificates.
//!
//! A node presents its certificate chain (node certificate, then the
//! national CA that issued it; the observer's chain is its certificate
//! alone) and the revocation lists it holds. The other side verifies the
//! chain up to the pinned Commission root, at the current time, against its
//! revocation lists, and checks that the certified key is the one the secure
//! channel proved (the PeerId). Revocation lists are self-authenticating
//! (signed by the root or a national CA the root certified), so any peer may
//! pass them on; a newer list makes every node re-check its admitted peers.
//! The lists a peer brings in its hello are read only once its own chain
//! has verified: a stranger's bytes cost no more than one chain check.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::SystemTime;

use imi_certs::{
    Accepted, CertChain, Certificate, RevocationList, RevocationSet, RevokedBy, TrustedRoot,
};
use imi_protocol::{Country, NodeAddress, NodeName};
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{Admission, AdmissionRefused, Admitted, PeerIdentity};

/// Most certificates in a presented chain (node, national CA).
const MAX_CHAIN: usize = 2;

/// What a node presents at admission.
#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    /// DER certificates: the node's, then its national CA's (if any).
    chain: Vec<Vec<u8>>,
    /// Revocation lists the node holds.
    revocations: Vec<RevocationEntry>,
}

/// One revocation list with the certificate of the CA that signed it (none
/// for the root's own list).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevocationEntry {
    issuer: Option<Vec<u8>>,
    list: Vec<u8>,
}

/// Admission by certificate chain, for [`crate::net`].
#[derive(Debug)]
pub struct CertAdmission {
    root: TrustedRoot,
    own_chain: CertChain,
    state: RwLock<State>,
    /// Where newer revocation lists are kept across restarts.
    persist_dir: Option<PathBuf>,
}

#[derive(Debug)]
struct State {
    revocations: RevocationSet,
    /// National CA certificates seen, to check and pass on their lists.
    national_cas: HashMap<Country, Certificate>,
    /// The chains of admitted peers, to check them again.
    chains: HashMap<PeerId, CertChain>,
}

/// The node's credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A revocation list given at start does not verify.
    #[error("the revocation list {what} is not valid: {reason}")]
    Revocation {
        /// Which list.
        what: String,
        /// Why.
        reason: String,
    },
}

impl CertAdmission {
    /// Admission for a node whose own chain is `own_chain`, trusting `root`,
    /// starting with the revocation lists `lists` (each with the CA
    /// certificate that signed it, `None` for the root).
    pub fn new(
        root: TrustedRoot,
        own_chain: CertChain,
        lists: Vec<(Option<Certificate>, RevocationList)>,
        persist_dir: Option<PathBuf>,
    ) -> Result<CertAdmission, CredentialsError> {
        let mut state = State {
            revocations: RevocationSet::new(&root),
            national_cas: HashMap::new(),
            chains: HashMap::new(),
        };
        if let Some(ca) = own_chain.national_ca() {
            remember_ca(&mut state, ca);
        }
        for (issuer, list) in lists {
            let accepted = match &issuer {
                None => state.revocations.accept_root_list(list),
                Some(ca) => {
                    remember_ca(&mut state, ca);
                    state.revocations.accept_national_list(list, ca)
                }
            };
            accepted.map_err(|err| CredentialsError::Revocation {
                what: issuer
                    .as_ref()
                    .map(|_| "of a national CA".to_owned())
                    .unwrap_or_else(|| "of the root".to_owned()),
                reason: err.to_string(),
            })?;
        }
        Ok(CertAdmission {
            root,
            own_chain,
            state: RwLock::new(state),
            persist_dir,
        })
    }

    /// Takes a revocation list issued locally (by `imi-node certs revoke`
    /// or a test), as if a peer had pushed it. `Ok(true)` if it was newer.
    pub fn add_revocation_list(
        &self,
        issuer: Option<&Certificate>,
        list: RevocationList,
    ) -> Result<bool, AdmissionRefused> {
        let entry = RevocationEntry {
            issuer: issuer.map(|c| c.der().to_vec()),
            list: list.der().to_vec(),
        };
        self.accept_entries(vec![entry])
    }

    fn accept_entries(&self, entries: Vec<RevocationEntry>) -> Result<bool, AdmissionRefused> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let mut changed = false;
        for entry in entries {
            let list = RevocationList::from_der(entry.list.clone()).map_err(refused)?;
            let accepted = match &entry.issuer {
                None => state.revocations.accept_root_list(list),
                Some(der) => {
                    let ca = Certificate::from_der(der.clone()).map_err(refused)?;
                    let result = state.revocations.accept_national_list(list, &ca);
                    if result.is_ok() {
                        remember_ca(&mut state, &ca);
                    }
                    result
                }
            };
            match accepted {
                Ok(Accepted::New) | Ok(Accepted::Replaced { .. }) => {
                    changed = true;
                    self.persist(&entry);
                }
                Ok(_) => {}
                Err(err) => {
                    warn!(error = %err, "revocation list refused");
                }
            }
        }
        Ok(changed)
    }

    fn persist(&self, entry: &RevocationEntry) {
        let Some(dir) = &self.persist_dir else { return };
        let Ok(list) = RevocationList::from_der(entry.list.clone()) else {
            return;
        };
        let name = match &entry.issuer {
            None => "root".to_owned(),
            Some(der) => match Certificate::from_der(der.clone())
                .ok()
                .and_then(|c| ca_country(&c))
            {
                Some(country) => format!("national-{country}"),
                None => return,
            },
        };
        if let Err(err) = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join(format!("{name}.crl.pem")), list.to_pem()))
        {
            warn!(error = %err, dir = %dir.display(), "cannot keep a revocation list on disk");
        }
        if let Some(der) = &entry.issuer
            && let Ok(ca) = Certificate::from_der(der.clone())
        {
            let _ = std::fs::write(dir.join(format!("{name}.ca.pem")), ca.to_pem());
        }
    }

    fn verify(
        &self,
        peer: &PeerId,
        chain: &CertChain,
    ) -> Result<(PeerIdentity, SystemTime), AdmissionRefused> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let verified = self
            .root
            .verify(
                chain,
                &peer.to_base58(),
                SystemTime::now(),
                &state.revocations,
            )
            .map_err(refused)?;
        let node: NodeName = verified.node.parse().map_err(refused)?;
        Ok((
            PeerIdentity {
                peer: *peer,
                address: NodeAddress::new(verified.country, node),
                public_key: verified.public_key,
                valid_from_ms: unix_ms(chain.node().not_before()),
                valid_until_ms: unix_ms(chain.node().not_after()),
            },
            verified.not_after,
        ))
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn refused(err: impl std::fmt::Display) -> AdmissionRefused {
    AdmissionRefused {
        reason: err.to_string(),
    }
}

fn ca_country(ca: &Certificate) -> Option<Country> {
    match ca.role() {
        imi_certs::CertificateRole::NationalCa { country } => Some(*country),
        _ => None,
    }
}

fn remember_ca(state: &mut State, ca: &Certificate) {
    if let Some(country) = ca_country(ca) {
        state.national_cas.insert(country, ca.clone());
    }
}

impl Admission for CertAdmission {
    fn hello(&self) -> Vec<u8> {
        let hello = Hello {
            chain: self.own_chain.to_der_list(),
            revocations: self.entries(),
        };
        postcard::to_stdvec(&hello).unwrap_or_default()
    }

    fn admit(&self, peer: &PeerId, hello: &[u8]) -> Result<Admitted, AdmissionRefused> {
        let hello: Hello = postcard::from_bytes(hello).map_err(|err| AdmissionRefused {
            reason: format!("the credentials are malformed: {err}"),
        })?;
        if hello.chain.len() > MAX_CHAIN {
            return Err(AdmissionRefused {
                reason: format!(
                    "the certificate chain has {} certificates, more than {MAX_CHAIN}",
                    hello.chain.len()
                ),
            });
        }
        // The chain first: the lists of a peer that is not certified are
        // never even parsed.
        let chain = CertChain::from_der_list(hello.chain).map_err(refused)?;
        let (mut identity, mut valid_until) = self.verify(peer, &chain)?;
        let revocations_changed = self.accept_entries(hello.revocations)?;
        if revocations_changed {
            info!(peer = %identity, "peer brought newer revocation lists");
            // They may revoke the peer itself.
            (identity, valid_until) = self.verify(peer, &chain)?;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if let Some(ca) = chain.national_ca() {
            remember_ca(&mut state, ca);
        }
        state.chains.insert(*peer, chain);
        drop(state);
        Ok(Admitted {
            identity,
            valid_until,
            revocations_changed,
        })
    }

    fn recheck(&self, identity: &PeerIdentity) -> Result<(), AdmissionRefused> {
        let chain = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            state.chains.get(&identity.peer).cloned()
        };
        let Some(chain) = chain else {
            return Err(AdmissionRefused {
                reason: "no certificate chain is known for this peer".into(),
            });
        };
        self.verify(&identity.peer, &chain).map(|_| ())
    }

    fn accept_revocations(&self, lists: &[u8]) -> Result<bool, AdmissionRefused> {
        let entries: Vec<RevocationEntry> =
            postcard::from_bytes(lists).map_err(|err| AdmissionRefused {
                reason: format!("the revocation lists are malformed: {err}"),
            })?;
        self.accept_entries(entries)
    }

    fn revocations(&self) -> Vec<u8> {
        postcard::to_stdvec(&self.entries()).unwrap_or_default()
    }
}

impl CertAdmission {
    fn entries(&self) -> Vec<RevocationEntry> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .revocations
            .lists()
            .filter_map(|(by, list)| {
                let issuer = match by {
                    RevokedBy::Root => None,
                    RevokedBy::NationalCa(country) => {
                        Some(state.national_cas.get(&country)?.der().to_vec())
                    }
                };
                Some(RevocationEntry {
                    issuer,
                    list: list.der().to_vec(),
                })
            })
            .collect()
    }
}
