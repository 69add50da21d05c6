//! A running node: the store, the links, delivery, put together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ed25519_dalek::{SigningKey, VerifyingKey};
use imi_certs::{CertChain, Certificate, NodeKey, RevocationList, TrustedRoot};
use imi_protocol::{
    Author, CaseId, Header, MessageId, MessageKind, NodeAddress, PROTOCOL_VERSION, seal,
};
use libp2p::Multiaddr;
use redb::WriteTransaction;
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span, warn};

use crate::admin::Admin;
use crate::admission::CertAdmission;
use crate::config::{Config, DeliveryConfig};
use crate::delivery::{self, Delivery, Inbound, KeyRecord, PeerKeys, Receiver};
use crate::directory::{Directory, DirectoryConfig, DirectorySetup, DirectoryStartError};
use crate::index::DirectorySearch;
use crate::net::{self, AppProtocol, NetConfig, NetEvent, NetworkHandle};
use crate::store::{Store, StoreError};

/// Everything a node needs to start, already loaded.
pub struct NodeSetup {
    /// The node's address (`FI/helsinki-1`).
    pub address: NodeAddress,
    /// The node's key.
    pub key: NodeKey,
    /// The pinned root.
    pub root: TrustedRoot,
    /// The node's certificate chain.
    pub chain: CertChain,
    /// Revocation lists known at start, each with its issuing CA (`None`
    /// for the root's).
    pub revocations: Vec<(Option<Certificate>, RevocationList)>,
    /// Where newer revocation lists are kept.
    pub revocations_dir: Option<PathBuf>,
    /// The store file.
    pub store_path: PathBuf,
    /// Network settings.
    pub net: NetConfig,
    /// Delivery settings.
    pub delivery: DeliveryConfig,
}

impl std::fmt::Debug for NodeSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSetup")
            .field("address", &self.address)
            .field("store_path", &self.store_path)
            .finish_non_exhaustive()
    }
}

/// The node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A file named in the configuration could not be used.
    #[error("{0}")]
    Credentials(String),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] net::NetStartError),
    /// The directory could not be loaded.
    #[error(transparent)]
    Directory(#[from] DirectoryStartError),
    /// The configuration and the credentials do not describe the same node:
    /// every peer would refuse it.
    #[error("the node cannot start: {0}")]
    Misconfigured(String),
}

impl NodeSetup {
    /// Loads key, certificates and revocation lists named in `config`, and
    /// checks that they make a node the federation admits ([`NodeSetup::check`]).
    pub fn from_config(config: &Config) -> Result<NodeSetup, StartError> {
        let setup = NodeSetup::load(config)?;
        setup.check(SystemTime::now())?;
        Ok(setup)
    }

    /// Checks, as every peer will, that the node's own chain verifies up to
    /// the pinned root at `now` for its own key, against the revocation lists
    /// it holds, and that the certificate names the country and node of the
    /// configuration. A node that fails would start and then be refused by
    /// every peer; it refuses to start instead, saying what to fix.
    pub fn check(&self, now: SystemTime) -> Result<(), StartError> {
        let misconfigured = |what: String| Err(StartError::Misconfigured(what));
        let peer_id = self.key.peer_id();
        if let imi_certs::CertificateRole::Node {
            country,
            node,
            peer_id: certified,
        } = self.chain.node().role()
        {
            if *country != self.address.country || node.as_str() != self.address.node.as_str() {
                return misconfigured(format!(
                    "the node certificate is for {country}/{node}, but the configuration says {}; \
                     set country and name to match the certificate, or install this node's own certificate",
                    self.address
                ));
            }
            if *certified != peer_id {
                return misconfigured(format!(
                    "the node certificate is for peer {certified}, but the node key is peer {peer_id}; \
                     the certificate belongs to another node: request one for this key with `imi-node certs request`"
                ));
            }
        } else {
            return misconfigured(
                "the file given as the node certificate is not a node certificate".into(),
            );
        }
        let mut revocations = imi_certs::RevocationSet::new(&self.root);
        for (issuer, list) in &self.revocations {
            let _ = match issuer {
                None => revocations.accept_root_list(list.clone()),
                Some(ca) => revocations.accept_national_list(list.clone(), ca),
            };
        }
        if let Err(err) = self.root.verify(&self.chain, &peer_id, now, &revocations) {
            let hint = match err {
                imi_certs::VerifyError::UnknownIssuer | imi_certs::VerifyError::BadSignature => {
                    "; check that certs.national_ca is this country's national CA and certs.root the federation root"
                }
                imi_certs::VerifyError::WrongCountry { .. } => {
                    "; the national CA in certs.national_ca is another country's"
                }
                imi_certs::VerifyError::Expired { .. } | imi_certs::VerifyError::Revoked { .. } => {
                    "; have the national CA issue a new certificate"
                }
                _ => "",
            };
            return misconfigured(format!(
                "its own certificate chain does not verify, so every peer would refuse it: {err}{hint}"
            ));
        }
        Ok(())
    }

    /// Loads key, certificates and revocation lists named in `config`
    /// without checking that they fit together (see [`NodeSetup::check`]).
    pub fn load(config: &Config) -> Result<NodeSetup, StartError> {
        let cred = |what: &str, err: &dyn std::fmt::Display| {
            StartError::Credentials(format!("cannot load {what}: {err}"))
        };
        let key_pem = imi_certs::read_private_key_pem(&config.certs.key)
            .map_err(|e| cred("the node key", &e))?;
        let key = NodeKey::from_pkcs8_pem(&key_pem).map_err(|e| cred("the node key", &e))?;
        let root = TrustedRoot::read_pem_file(&config.certs.root)
            .map_err(|e| cred("the federation root certificate", &e))?;
        let node_cert = Certificate::read_pem_file(&config.certs.node)
            .map_err(|e| cred("the node certificate", &e))?;
        let chain = match &config.certs.national_ca {
            Some(path) => {
                let ca = Certificate::read_pem_file(path)
                    .map_err(|e| cred("the national CA certificate", &e))?;
                CertChain::national(node_cert, ca)
            }
            None => CertChain::observer(node_cert),
        };
        let revocations = load_revocations(&config.certs.revocations)?;
        let address = config
            .address()
            .parse()
            .map_err(|e| cred("the node address", &e))?;
        let parse_addrs = |list: &[String]| -> Result<Vec<Multiaddr>, StartError> {
            list.iter()
                .map(|a| a.parse().map_err(|e| cred("an address", &e)))
                .collect()
        };
        Ok(NodeSetup {
            address,
            key,
            root,
            chain,
            revocations,
            revocations_dir: Some(config.certs.revocations.clone()),
            store_path: config.store_path(),
            net: NetConfig {
                listen: parse_addrs(&config.listen)?,
                bootstrap: parse_addrs(&config.peers)?,
                ..NetConfig::default()
            },
            delivery: config.delivery.clone(),
        })
    }
}

/// A revocation list file with the certificate of the CA that signed it
/// (`None` for the root's own list).
pub type RevocationFile = (Option<Certificate>, RevocationList);

/// Reads every `*.crl.pem` in `dir`, with the `*.ca.pem` of the same stem
/// as its issuer (none for `root.crl.pem`); each file gets its own result,
/// whose error names the file.
pub fn read_revocation_dir(dir: &Path) -> Vec<(PathBuf, Result<RevocationFile, String>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let stem = path
                .file_name()
                .and_then(|n| n.to_str())?
                .strip_suffix(".crl.pem")?
                .to_owned();
            let read = || -> Result<RevocationFile, String> {
                let list = RevocationList::read_pem_file(&path)
                    .map_err(|e| format!("cannot load the revocation list: {e}"))?;
                if stem == "root" {
                    return Ok((None, list));
                }
                let ca_path = dir.join(format!("{stem}.ca.pem"));
                let ca = Certificate::read_pem_file(&ca_path).map_err(|e| {
                    format!(
                        "the revocation list {} needs its CA certificate: {e}",
                        path.display()
                    )
                })?;
                Ok((Some(ca), list))
            };
            let result = read();
            Some((path, result))
        })
        .collect()
}

/// Every revocation list in `dir`; at start a file that cannot be used stops
/// the node, so a revocation is never silently ignored.
fn load_revocations(dir: &Path) -> Result<Vec<RevocationFile>, StartError> {
    read_revocation_dir(dir)
        .into_iter()
        .map(|(_, result)| result.map_err(StartError::Credentials))
        .collect()
}

/// What an application on the node needs to send messages of its own:
/// the store to commit them in, the node's key to seal them, and delivery.
#[derive(Clone)]
pub struct Outlet {
    /// The node's store.
    pub store: Store,
    /// The node's signing key.
    pub key: Arc<SigningKey>,
    /// The delivery task.
    pub delivery: Delivery,
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outlet").finish_non_exhaustive()
    }
}

/// A running node.
pub struct Node<I: Inbound> {
    address: NodeAddress,
    store: Store,
    net: NetworkHandle,
    delivery: Delivery,
    signing_key: Arc<SigningKey>,
    admission: Arc<CertAdmission>,
    directory: Directory,
    inbound: Arc<I>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    search: DirectorySearch,
    follow_task: tokio::task::JoinHandle<()>,
    admin: Admin,
    publish_task: tokio::task::JoinHandle<()>,
    warn_task: tokio::task::JoinHandle<()>,
}

impl<I: Inbound> std::fmt::Debug for Node<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl<I: Inbound> Node<I> {
    /// Opens the store, starts the links and delivery, and resumes sending
    /// what the outbox holds.
    pub async fn start(setup: NodeSetup, inbound: Arc<I>) -> Result<Node<I>, StartError> {
        let span = info_span!("node", node = %setup.address);
        if let Some(parent) = setup.store_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StartError::Credentials(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let store = Store::open(&setup.store_path)?;
        store
            .write(|tx| {
                delivery::create_tables(tx)?;
                crate::admin::create_tables(tx)?;
                crate::peers::create_tables(tx)?;
                crate::cases::create_tables(tx)
            })
            .await?;
        let admission = Arc::new(
            CertAdmission::new(
                setup.root.clone(),
                setup.chain.clone(),
                setup.revocations,
                setup.revocations_dir.clone(),
            )
            .map_err(|e| StartError::Credentials(e.to_string()))?,
        );
        let signing_key = Arc::new(SigningKey::from_bytes(&setup.key.secret_seed()));
        let (net, events, net_task) = net::start(
            setup.key.libp2p_keypair(),
            setup.net.clone(),
            admission.clone(),
        )?;
        // Every key this node and its peers were certified with, to verify
        // envelopes and receipts with the key of their signing time.
        let keys = PeerKeys::load(&store)?;
        keys.certified(
            &store,
            &setup.address,
            own_key_record(&setup.chain, &signing_key),
        )
        .await?;
        let (delivery, delivery_task) = Delivery::start(
            store.clone(),
            net.clone(),
            setup.delivery.clone(),
            keys.clone(),
        )?;
        let (directory, directory_task) = Directory::start(DirectorySetup {
            address: setup.address.clone(),
            key: signing_key.clone(),
            chain: setup.chain.to_der_list(),
            root: setup.root.clone(),
            admission: admission.clone(),
            store: store.clone(),
            net: net.clone(),
            config: DirectoryConfig::default(),
        })
        .instrument(span.clone())
        .await?;
        let search_dir = setup
            .store_path
            .parent()
            .map(|p| p.join("search"))
            .unwrap_or_else(|| PathBuf::from("search"));
        let search = DirectorySearch::open(&search_dir, &directory)
            .instrument(span.clone())
            .await
            .map_err(|e| StartError::Credentials(e.to_string()))?;
        let follow_task = tokio::spawn(
            search
                .clone()
                .follow(directory.clone(), store.clone())
                .instrument(span.clone()),
        );
        let admin = Admin::open(store.clone(), setup.address.country).await?;
        let publish_task = tokio::spawn(
            crate::publish::follow(admin.clone(), directory.clone(), setup.address.clone())
                .instrument(span.clone()),
        );
        let warn_task =
            tokio::spawn(crate::publish::warn_periodically(admin.clone()).instrument(span.clone()));
        inbound.started(Outlet {
            store: store.clone(),
            key: signing_key.clone(),
            delivery: delivery.clone(),
        });
        let receiver = Receiver::new(
            store.clone(),
            setup.address.clone(),
            signing_key.clone(),
            keys.clone(),
            inbound.clone(),
        );
        let dispatch_task = tokio::spawn(
            dispatch(events, receiver, delivery.clone(), keys, directory.clone())
                .instrument(span.clone()),
        );
        info!(node = %setup.address, peer = %net.local_peer(), "node started");
        Ok(Node {
            address: setup.address,
            store,
            net,
            delivery,
            signing_key,
            admission,
            directory,
            search,
            inbound,
            tasks: vec![net_task, delivery_task, dispatch_task, directory_task],
            follow_task,
            admin,
            publish_task,
            warn_task,
        })
    }

    /// Stops the node: links close, delivery stops (the outbox stays), and
    /// the store is released once the last write has finished.
    pub async fn shutdown(self) {
        self.inbound.stopping();
        self.follow_task.abort();
        let _ = self.follow_task.await;
        self.publish_task.abort();
        let _ = self.publish_task.await;
        self.warn_task.abort();
        let _ = self.warn_task.await;
        self.directory.shutdown().await;
        self.net.shutdown().await;
        self.delivery.shutdown().await;
        for task in self.tasks {
            let _ = task.await;
        }
        info!(node = %self.address, "node stopped");
    }

    /// The node's address.
    pub fn address(&self) -> &NodeAddress {
        &self.address
    }

    /// The key this node signs its messages with.
    pub(crate) fn signing_key(&self) -> &Arc<SigningKey> {
        &self.signing_key
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The links.
    pub fn net(&self) -> &NetworkHandle {
        &self.net
    }

    /// Every node ever admitted here.
    pub fn known_peers(&self) -> Result<Vec<crate::peers::PeerRecord>, StoreError> {
        crate::peers::list(&self.store)
    }

    /// The replicated directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The country's authorities and users.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// The multilingual search over the directory.
    pub fn search(&self) -> &DirectorySearch {
        &self.search
    }

    /// The application that applies received messages.
    pub fn inbound(&self) -> &Arc<I> {
        &self.inbound
    }

    /// Takes a revocation list issued locally and cuts off what it revokes.
    pub async fn add_revocation_list(
        &self,
        issuer: Option<&Certificate>,
        list: RevocationList,
    ) -> Result<bool, net::AdmissionRefused> {
        let changed = self.admission.add_revocation_list(issuer, list)?;
        if changed {
            self.net.revocations_changed().await;
        }
        Ok(changed)
    }

    /// Delivery: the sending task, its receipt notifications
    /// ([`Delivery::receipts`]) and the keys it verifies with.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Sends the step of the rejected message `id` again: sealed anew with
    /// the node's current key, as a new message (a new id, the case's next
    /// sequence number) to the same recipient, and queued. The rejected
    /// message stays in the case's history with its reason. Returns the new
    /// message's id.
    pub async fn resend(&self, id: MessageId) -> Result<MessageId, delivery::ResendError> {
        let queued = delivery::resend::<I::Body>(
            &self.store,
            self.delivery.keys(),
            self.delivery.turns(),
            &self.address,
            &self.signing_key,
            id,
        )
        .await?;
        let new_id = queued.id;
        info!(message = %id, resent_as = %new_id, case = %queued.case, to = %queued.to, "rejected message sent again");
        self.delivery.enqueued(vec![queued]).await;
        Ok(new_id)
    }

    /// Commits `also` (the case's new state) together with one signed
    /// envelope per recipient carrying `body`, then hands the envelopes to
    /// delivery. All or nothing: if `also` fails, or anything after it,
    /// nothing is written.
    ///
    /// The envelopes are sealed before the write, off the store's writer
    /// thread, while the case's turn to send is held (so sequence numbers
    /// are taken in order, one step of a case at a time).
    pub async fn send<B, F>(
        &self,
        recipients: Vec<NodeAddress>,
        case: CaseId,
        kind: MessageKind,
        author: Author,
        body: B,
        mut also: F,
    ) -> Result<Vec<MessageId>, SendCaseError>
    where
        B: Serialize + Send + 'static,
        F: FnMut(&WriteTransaction) -> Result<(), SendCaseError> + Send + 'static,
    {
        let turn = self.delivery.turns().take(case).await;
        let now = now_ms();
        let mut envelopes = Vec::with_capacity(recipients.len());
        for to in recipients {
            let sequence = delivery::last_sequence(&self.store, case, &to)? + 1;
            let header = Header {
                version: PROTOCOL_VERSION,
                id: MessageId::new(),
                sender: self.address.clone(),
                author: author.clone(),
                recipients: vec![to.clone()],
                case,
                sequence,
                timestamp_ms: now,
                kind,
            };
            let envelope = seal(header, &body, &self.signing_key)
                .map_err(|e| SendCaseError::Encode(e.to_string()))?;
            envelopes.push((to, envelope));
        }
        let queued = self
            .store
            .try_write(move |tx| {
                also(tx)?;
                let mut queued = Vec::with_capacity(envelopes.len());
                for (to, envelope) in &envelopes {
                    delivery::claim_sequence(tx, case, to, envelope.header().sequence)?;
                    queued.push(delivery::enqueue(tx, to, envelope)?);
                }
                Ok::<_, SendCaseError>(queued)
            })
            .await?;
        drop(turn);
        let ids = queued.iter().map(|q| q.id).collect();
        self.delivery.enqueued(queued).await;
        Ok(ids)
    }
}

/// This node's own key, with its certificate's validity.
fn own_key_record(chain: &CertChain, key: &SigningKey) -> KeyRecord {
    KeyRecord {
        key: key.verifying_key().to_bytes(),
        valid_from_ms: crate::admission::unix_ms(chain.node().not_before()),
        valid_until_ms: crate::admission::unix_ms(chain.node().not_after()),
    }
}

/// A case message could not be committed for sending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendCaseError {
    /// The case's state change was refused.
    #[error("{0}")]
    Refused(String),
    /// The envelope could not be sealed.
    #[error("the message could not be sealed: {0}")]
    Encode(String),
    /// The store failed.
    #[error("the message could not be stored: {0}")]
    Store(String),
}

impl From<StoreError> for SendCaseError {
    fn from(err: StoreError) -> Self {
        SendCaseError::Store(err.to_string())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn dispatch<I: Inbound>(
    mut events: mpsc::Receiver<NetEvent>,
    receiver: Receiver<I>,
    delivery: Delivery,
    keys: PeerKeys,
    directory: Directory,
) {
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::PeerAdmitted(identity) => {
                if VerifyingKey::from_bytes(&identity.public_key).is_err() {
                    warn!(peer = %identity, "admitted peer has an unusable key");
                    continue;
                }
                if let Err(err) = keys.admitted(receiver.store(), &identity).await {
                    warn!(peer = %identity, error = %err, "cannot record the admitted peer's key");
                }
                delivery.peer_up(identity.address.clone()).await;
                if let Err(err) = crate::peers::record_admission(receiver.store(), &identity).await
                {
                    warn!(peer = %identity, error = %err, "cannot record the admitted peer");
                }
                directory.peer_admitted(identity);
            }
            NetEvent::PeerLeft(identity) => {
                directory.peer_left(&identity);
                delivery.peer_down(identity.address.clone()).await;
            }
            NetEvent::Request {
                protocol: AppProtocol::Deliver,
                from,
                bytes,
                reply,
            } => {
                let receiver = receiver.clone();
                tokio::spawn(
                    async move {
                        let answer = receiver.receive_request(&from, &bytes).await;
                        let _ = reply.send(answer);
                    }
                    .in_current_span(),
                );
            }
            NetEvent::Request {
                protocol: AppProtocol::Sync,
                from,
                bytes,
                reply,
            } => {
                let directory = directory.clone();
                tokio::spawn(
                    async move {
                        let answer = directory.handle_request(&from, bytes).await;
                        let _ = reply.send(answer);
                    }
                    .in_current_span(),
                );
            }
        }
    }
}
