//! The replicated directory: who the authorities of every country are,
//! which node serves each, the registers directory, the national helpdesks,
//! and what the Commission publishes (catalogue version, node roster,
//! revocation lists).
//!
//! Each country's part is one Automerge document; the Commission's is
//! another. Documents replicate over admitted links with the Automerge
//! sync protocol (`/imi/sync/1`, see [`wire`]): when a peer is admitted,
//! after every local change (to every peer at once), and every few seconds.
//! A node writes only its own country's document, and signs the document's
//! heads after each edit ([`SignedHeads`]); a receiver applies a change to
//! country X's document only if signed heads of a node certified for X
//! vouch for it, whoever relays it. The scheme is described in
//! `docs/DIRECTORY.md`.
//!
//! ```no_run
//! # async fn demo(node: &imi_node::node::Node<imi_node::cases::CaseApp>) -> anyhow::Result<()> {
//! use imi_node::directory::DirectoryChange;
//! let directory = node.directory();
//! let mut feed = directory.subscribe();
//! for authority in directory.authorities_of(imi_protocol::Country::Pt) {
//!     println!("{} is served by {}", authority.name_in(imi_protocol::Language::Fi), authority.node);
//! }
//! while let Ok(change) = feed.recv().await {
//!     if let DirectoryChange::AuthorityUpserted(entry) = change {
//!         println!("updated: {}", entry.id);
//!     }
//! }
//! # Ok(()) }
//! ```

mod document;
mod model;
mod persist;
mod signed;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use automerge::transaction::{Transactable, Transaction};
use automerge::{AutomergeError, ChangeHash, ReadDoc};
use ed25519_dalek::SigningKey;
use imi_certs::{Certificate, RevocationList, TrustedRoot};
use imi_protocol::{AuthorityId, Country, NodeAddress};
use serde::Serialize;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, warn};

pub use model::{
    CommissionDirectory, DirectoryChange, EntryRefused, Helpdesk, HelpdeskContact, InvalidEntry,
    PublishedAuthority, PublishedRevocationList, Register, RosterEntry,
};
pub use signed::{SignatureRefused, SignedHeads};
pub use wire::{DocSync, SyncBatch};

use document::{CountryDoc, CountryView, PersistOp};
use signed::Trust;

use crate::net::{Admission, AppProtocol, NetworkHandle, PeerIdentity};
use crate::store::{Store, StoreError};

/// Settings of the directory's replication.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// How often every peer is offered what it may lack.
    pub sync_interval: Duration,
    /// Every this many intervals, the sync state with every peer starts
    /// afresh (repairs anything a lost message left behind).
    pub resync_every: u32,
    /// Bytes of sync messages put in one batch before the rest waits for
    /// the next round.
    pub batch_budget: usize,
    /// Most request/response rounds in one session with a peer.
    pub max_rounds: usize,
    /// Changes the feed keeps for slow subscribers.
    pub feed_capacity: usize,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            sync_interval: Duration::from_secs(2),
            resync_every: 30,
            batch_budget: 4 * 1024 * 1024,
            max_rounds: 32,
            feed_capacity: 4096,
        }
    }
}

/// Everything the directory needs to start.
pub struct DirectorySetup {
    /// This node's address.
    pub address: NodeAddress,
    /// This node's key (signs the heads of its country's document).
    pub key: Arc<SigningKey>,
    /// This node's certificate chain (DER, node certificate first).
    pub chain: Vec<Vec<u8>>,
    /// The pinned federation root.
    pub root: TrustedRoot,
    /// The admission layer (its revocation lists).
    pub admission: Arc<dyn Admission>,
    /// The store.
    pub store: Store,
    /// The links.
    pub net: NetworkHandle,
    /// Settings.
    pub config: DirectoryConfig,
}

impl std::fmt::Debug for DirectorySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySetup")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// The directory could not start.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryStartError {
    /// The stored documents could not be read.
    #[error("cannot load the directory from the store: {0}")]
    Store(#[from] StoreError),
    /// Loading was interrupted.
    #[error("loading the directory was interrupted")]
    Interrupted,
}

/// A local edit of the directory was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The entry belongs to another country's document.
    #[error(
        "this node of {ours} can only publish {ours}'s entries, not {theirs}'s; ask a node of {theirs}"
    )]
    NotOurCountry {
        /// This node's country.
        ours: Country,
        /// The entry's country.
        theirs: Country,
    },
    /// Only the Commission's node writes the Commission's document.
    #[error("only the Commission's node publishes {0}")]
    CommissionOnly(&'static str),
    /// The entry is not valid.
    #[error("the entry cannot be published: {0}")]
    Invalid(InvalidEntry),
    /// A revocation list not newer than the one published.
    #[error(
        "the revocation list of {issuer} numbered {number} is not newer than the published one ({published})"
    )]
    OlderRevocationList {
        /// Its issuer.
        issuer: Country,
        /// Its number.
        number: u64,
        /// The number published.
        published: u64,
    },
    /// The document refused the edit.
    #[error("the directory document could not be edited: {0}")]
    Document(String),
    /// The edit could not be stored.
    #[error("the edit could not be stored: {0}")]
    Store(#[from] StoreError),
    /// The directory is shut down.
    #[error("the directory is shut down")]
    Shutdown,
}

// Not `#[from]`: the reason is already in the message, and a source would
// repeat it in error chains.
impl From<InvalidEntry> for EditError {
    fn from(err: InvalidEntry) -> Self {
        EditError::Invalid(err)
    }
}

/// Counters of what replication accepted and refused.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) accepted_changes: AtomicU64,
    pub(crate) refused_changes: AtomicU64,
    pub(crate) refused_signatures: AtomicU64,
    pub(crate) stale_signatures: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) rounds: AtomicU64,
}

/// A snapshot of the replication counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirectoryStats {
    /// Changes received and applied.
    pub accepted_changes: u64,
    /// Changes received that no valid signature of their document's country
    /// vouched for, refused.
    pub refused_changes: u64,
    /// Signed heads refused (bad signature, signer not certified for the
    /// document's country).
    pub refused_signatures: u64,
    /// Signed heads older than those held for their signer, refused.
    pub stale_signatures: u64,
    /// Sync batches or messages that did not decode.
    pub malformed: u64,
    /// Sync requests sent.
    pub rounds: u64,
}

struct PeerEntry {
    /// Changes whenever the sync state with the peer must start afresh.
    generation: u64,
    running: bool,
    again: bool,
}

struct PersistJob {
    ops: Vec<PersistOp>,
    done: Option<oneshot::Sender<Result<(), StoreError>>>,
}

enum Command {
    SyncAll,
    Shutdown,
}

struct Inner {
    me: NodeAddress,
    key: Arc<SigningKey>,
    chain: Vec<Vec<u8>>,
    trust: Trust,
    admission: Arc<dyn Admission>,
    net: NetworkHandle,
    config: DirectoryConfig,
    docs: BTreeMap<Country, Mutex<CountryDoc>>,
    views: RwLock<BTreeMap<Country, Arc<CountryView>>>,
    feed: broadcast::Sender<DirectoryChange>,
    peers: Mutex<HashMap<String, PeerEntry>>,
    stats: Stats,
    cpu: Semaphore,
    persist: mpsc::Sender<PersistJob>,
    commands: mpsc::Sender<Command>,
    /// Something arrived that other peers may lack.
    forward: AtomicBool,
    /// Source of [`PeerEntry::generation`].
    generations: AtomicU64,
    sessions: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    stopping: watch::Sender<bool>,
}

/// The directory of this node: a cloneable handle.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("node", &self.inner.me)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Directory {
    /// Loads the documents from the store and starts replication. The
    /// returned task ends after [`Directory::shutdown`].
    pub async fn start(
        setup: DirectorySetup,
    ) -> Result<(Directory, tokio::task::JoinHandle<()>), DirectoryStartError> {
        setup.store.write(persist::create_tables).await?;
        let store = setup.store.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Country::ALL
                .into_iter()
                .map(|country| {
                    let doc = persist::load(&store, country)?;
                    let view = doc.read_view();
                    Ok((country, doc, view))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await
        .map_err(|_| DirectoryStartError::Interrupted)??;
        let mut docs = BTreeMap::new();
        let mut views = BTreeMap::new();
        for (country, doc, view) in loaded {
            docs.insert(country, Mutex::new(doc));
            views.insert(country, Arc::new(view));
        }
        let (persist_tx, persist_rx) = mpsc::channel(256);
        let (commands, command_rx) = mpsc::channel(64);
        let (stopping, _) = watch::channel(false);
        let (feed, _) = broadcast::channel(setup.config.feed_capacity.max(16));
        let inner = Arc::new(Inner {
            me: setup.address.clone(),
            key: setup.key,
            chain: setup.chain,
            trust: Trust::new(setup.root, setup.admission.clone()),
            admission: setup.admission,
            net: setup.net,
            config: setup.config,
            docs,
            views: RwLock::new(views),
            feed,
            peers: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            cpu: Semaphore::new(2),
            persist: persist_tx,
            commands,
            forward: AtomicBool::new(false),
            generations: AtomicU64::new(0),
            sessions: Mutex::new(Vec::new()),
            stopping,
        });
        let persist_task = tokio::spawn(
            persist_loop(setup.store, persist_rx, inner.stopping.subscribe()).in_current_span(),
        );
        let driver = tokio::spawn(drive(inner.clone(), command_rx, persist_task).in_current_span());
        let authorities: usize = inner
            .views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|v| v.authorities.len())
            .sum();
        info!(node = %inner.me, authorities, "directory loaded");
        Ok((Directory { inner }, driver))
    }

    /// Stops replication; pending writes are finished first.
    pub async fn shutdown(&self) {
        let _ = self.inner.commands.send(Command::Shutdown).await;
    }

    // -----------------------------------------------------------------------
    // Reading

    fn views(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Country, Arc<CountryView>>> {
        self.inner.views.read().unwrap_or_else(|e| e.into_inner())
    }

    fn view(&self, country: Country) -> Arc<CountryView> {
        self.views().get(&country).cloned().unwrap_or_default()
    }

    /// Every published authority of every country.
    pub fn authorities(&self) -> Vec<PublishedAuthority> {
        self.views()
            .values()
            .flat_map(|v| v.authorities.values().cloned())
            .collect()
    }

    /// The published authorities of `country`.
    pub fn authorities_of(&self, country: Country) -> Vec<PublishedAuthority> {
        self.view(country).authorities.values().cloned().collect()
    }

    /// How many authorities are published, in all.
    pub fn authority_count(&self) -> usize {
        self.views().values().map(|v| v.authorities.len()).sum()
    }

    /// The published authority `id` of `country`, if any: an authority is
    /// identified by its country and id, and only `country`'s document
    /// speaks for it.
    pub fn authority(&self, country: Country, id: AuthorityId) -> Option<PublishedAuthority> {
        self.view(country).authorities.get(&id).cloned()
    }

    /// The node that serves authority `id` of `country` (always a node of
    /// `country`: entries naming another country's node are not read).
    pub fn node_of(&self, country: Country, id: AuthorityId) -> Option<NodeAddress> {
        self.view(country)
            .authorities
            .get(&id)
            .map(|a| a.node.clone())
    }

    /// The registers of `country`.
    pub fn registers_of(&self, country: Country) -> Vec<Register> {
        self.view(country).registers.values().cloned().collect()
    }

    /// Every register of every country.
    pub fn registers(&self) -> Vec<Register> {
        self.views()
            .values()
            .flat_map(|v| v.registers.values().cloned())
            .collect()
    }

    /// The national helpdesk of `country`, if published.
    pub fn helpdesk(&self, country: Country) -> Option<Helpdesk> {
        self.view(country).helpdesk.clone()
    }

    /// What the Commission publishes.
    pub fn commission(&self) -> CommissionDirectory {
        self.view(Country::Eu)
            .commission
            .clone()
            .unwrap_or_default()
    }

    /// Changes to the directory from now on. A subscriber that falls more
    /// than the feed's capacity behind gets `Lagged` and should read the
    /// directory again.
    pub fn subscribe(&self) -> broadcast::Receiver<DirectoryChange> {
        self.inner.feed.subscribe()
    }

    /// The heads of `country`'s document.
    pub fn heads(&self, country: Country) -> Vec<ChangeHash> {
        self.view(country).heads.clone()
    }

    /// The heads of every document: two nodes with equal heads hold the
    /// same directory.
    pub fn all_heads(&self) -> BTreeMap<Country, Vec<ChangeHash>> {
        self.views()
            .iter()
            .map(|(country, view)| (*country, view.heads.clone()))
            .collect()
    }

    /// `country`'s document in the Automerge binary format, as any
    /// Automerge implementation loads it. Waits for a merge of that
    /// document in progress: call it off the async runtime when that
    /// matters.
    pub fn save_document(&self, country: Country) -> Vec<u8> {
        lock(&self.inner.docs[&country]).doc().save()
    }

    /// The signed heads held for `country`'s document, one per signer
    /// (waits for a merge of that document in progress).
    pub fn signed_heads(&self, country: Country) -> Vec<SignedHeads> {
        lock(&self.inner.docs[&country]).signatures()
    }

    /// Replication counters.
    pub fn stats(&self) -> DirectoryStats {
        let s = &self.inner.stats;
        DirectoryStats {
            accepted_changes: s.accepted_changes.load(Ordering::Relaxed),
            refused_changes: s.refused_changes.load(Ordering::Relaxed),
            refused_signatures: s.refused_signatures.load(Ordering::Relaxed),
            stale_signatures: s.stale_signatures.load(Ordering::Relaxed),
            malformed: s.malformed.load(Ordering::Relaxed),
            rounds: s.rounds.load(Ordering::Relaxed),
        }
    }

    // -----------------------------------------------------------------------
    // Local edits

    fn check_own(&self, country: Country) -> Result<(), EditError> {
        let ours = self.inner.me.country;
        if country != ours {
            return Err(EditError::NotOurCountry {
                ours,
                theirs: country,
            });
        }
        Ok(())
    }

    fn check_commission(&self, what: &'static str) -> Result<(), EditError> {
        if !self.inner.me.country.is_commission() {
            return Err(EditError::CommissionOnly(what));
        }
        Ok(())
    }

    /// Publishes `entry` (or updates it), in this node's country.
    pub async fn upsert_authority(&self, entry: PublishedAuthority) -> Result<(), EditError> {
        self.upsert_authorities(vec![entry]).await
    }

    /// Publishes many authorities in one change.
    pub async fn upsert_authorities(
        &self,
        entries: Vec<PublishedAuthority>,
    ) -> Result<(), EditError> {
        for entry in &entries {
            self.check_own(entry.country)?;
            entry.validate()?;
        }
        self.edit(move |tx| {
            let authorities = section(tx, model::AUTHORITIES)?;
            for entry in &entries {
                model::write_authority(tx, &authorities, entry)?;
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// Withdraws authority `id` of this node's country; `false` if it was
    /// not published.
    pub async fn remove_authority(&self, id: AuthorityId) -> Result<bool, EditError> {
        let key = id.to_string();
        self.edit(move |tx| {
            let authorities = section(tx, model::AUTHORITIES)?;
            if tx.get(&authorities, key.as_str())?.is_some() {
                tx.delete(&authorities, key.as_str())?;
            }
            Ok(())
        })
        .await
    }

    /// Publishes a register of this node's country.
    pub async fn upsert_register(&self, register: Register) -> Result<(), EditError> {
        self.check_own(register.country)?;
        register.validate()?;
        self.edit(move |tx| {
            let registers = section(tx, model::REGISTERS)?;
            model::write_register(tx, &registers, &register)
        })
        .await
        .map(|_| ())
    }

    /// Withdraws a register of this node's country.
    pub async fn remove_register(&self, id: &str) -> Result<bool, EditError> {
        model::check_register_id(id)?;
        let key = id.to_owned();
        self.edit(move |tx| {
            let registers = section(tx, model::REGISTERS)?;
            if tx.get(&registers, key.as_str())?.is_some() {
                tx.delete(&registers, key.as_str())?;
            }
            Ok(())
        })
        .await
    }

    /// Publishes this node's country's helpdesk.
    pub async fn set_helpdesk(&self, helpdesk: Helpdesk) -> Result<(), EditError> {
        if self.inner.me.country.is_commission() {
            return Err(EditError::NotOurCountry {
                ours: Country::Eu,
                theirs: Country::Eu,
            });
        }
        helpdesk.validate()?;
        self.edit(move |tx| {
            let obj = section(tx, model::HELPDESK)?;
            model::write_helpdesk(tx, &obj, &helpdesk)
        })
        .await
        .map(|_| ())
    }

    /// Publishes the version of the catalogue in force (Commission only).
    pub async fn set_catalogue_version(&self, version: &str) -> Result<(), EditError> {
        self.check_commission("the catalogue version")?;
        if version.trim().is_empty() {
            return Err(InvalidEntry::Empty("catalogue version").into());
        }
        let version = version.to_owned();
        self.edit(move |tx| model::write_catalogue_version(tx, &version))
            .await
            .map(|_| ())
    }

    /// Publishes a node's certificate in the roster (Commission only).
    pub async fn publish_node(&self, entry: RosterEntry) -> Result<(), EditError> {
        self.check_commission("the roster of nodes")?;
        if entry.certificate_pem.len() > model::MAX_PEM || entry.peer_id.len() > model::MAX_TEXT {
            return Err(InvalidEntry::TooLong {
                what: "roster entry",
                max: model::MAX_PEM,
            }
            .into());
        }
        self.edit(move |tx| {
            let roster = section(tx, model::ROSTER)?;
            model::write_roster_entry(tx, &roster, &entry)
        })
        .await
        .map(|_| ())
    }

    /// Publishes a revocation list (Commission only); it must be newer
    /// than the one published for its issuer.
    pub async fn publish_revocation_list(
        &self,
        list: PublishedRevocationList,
    ) -> Result<(), EditError> {
        self.check_commission("revocation lists")?;
        if list.list_pem.len() > model::MAX_PEM
            || list
                .issuer_pem
                .as_ref()
                .is_some_and(|p| p.len() > model::MAX_PEM)
        {
            return Err(InvalidEntry::TooLong {
                what: "revocation list",
                max: model::MAX_PEM,
            }
            .into());
        }
        if let Some(published) = self.commission().revocation_lists.get(&list.issuer)
            && published.number >= list.number
        {
            return Err(EditError::OlderRevocationList {
                issuer: list.issuer,
                number: list.number,
                published: published.number,
            });
        }
        self.edit(move |tx| {
            let revocations = section(tx, model::REVOCATIONS)?;
            model::write_revocation_list(tx, &revocations, &list)
        })
        .await
        .map(|_| ())
    }

    /// Applies `edit` to this node's document, signs, stores and announces
    /// it. `Ok(false)` if it changed nothing.
    async fn edit<F>(&self, edit: F) -> Result<bool, EditError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let (done, stored) = oneshot::channel();
        let changed = cpu(&self.inner, move || {
            let country = inner.me.country;
            let mut doc = lock(&inner.docs[&country]);
            let mut ops = Vec::new();
            let applied = doc
                .edit(edit, &inner.key, &inner.chain, &mut ops)
                .map_err(|e| EditError::Document(e.to_string()))?;
            let Some(applied) = applied else {
                return Ok::<bool, EditError>(false);
            };
            inner.refresh(&doc, &applied);
            inner
                .persist
                .blocking_send(PersistJob {
                    ops,
                    done: Some(done),
                })
                .map_err(|_| EditError::Shutdown)?;
            Ok(true)
        })
        .await??;
        if changed {
            stored.await.map_err(|_| EditError::Shutdown)??;
            let _ = self.inner.commands.try_send(Command::SyncAll);
        }
        Ok(changed)
    }

    // -----------------------------------------------------------------------
    // Links

    /// A peer was admitted: its key may sign for its country, and the two
    /// nodes sync from a fresh state.
    pub(crate) fn peer_admitted(&self, identity: PeerIdentity) {
        let address = identity.address.to_string();
        self.inner
            .trust
            .peer_admitted(identity.public_key, identity.address.clone());
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.inner.peers).insert(
            address.clone(),
            PeerEntry {
                generation,
                running: false,
                again: false,
            },
        );
        start_session(&self.inner, address);
    }

    /// A peer left.
    pub(crate) fn peer_left(&self, identity: &PeerIdentity) {
        let address = identity.address.to_string();
        self.inner.trust.peer_left(&identity.public_key);
        lock(&self.inner.peers).remove(&address);
    }

    /// Answers a sync request of an admitted peer.
    pub(crate) async fn handle_request(&self, from: &PeerIdentity, bytes: Vec<u8>) -> Vec<u8> {
        let peer = from.address.to_string();
        let batch = match SyncBatch::decode(&bytes) {
            Ok(batch) => batch,
            Err(err) => {
                self.inner.stats.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %from, error = %err, "malformed sync batch refused");
                return SyncBatch::new().encode();
            }
        };
        let inner = self.inner.clone();
        let answer = cpu(&self.inner, move || {
            inner.receive_batch(&peer, batch);
            inner.build_batch(&peer)
        })
        .await;
        match answer {
            Ok(batch) => batch.encode(),
            Err(_) => SyncBatch::new().encode(),
        }
    }
}

/// A root container of the document (genesis made it).
fn section(tx: &Transaction<'_>, key: &str) -> Result<automerge::ObjId, AutomergeError> {
    model::root_map(tx, key).ok_or(AutomergeError::InvalidObjId(key.to_owned()))
}

/// Runs CPU-bound work on the blocking pool, at most two at a time.
async fn cpu<T, F>(inner: &Arc<Inner>, work: F) -> Result<T, EditError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let _permit = inner.cpu.acquire().await.map_err(|_| EditError::Shutdown)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| EditError::Shutdown)
}

impl Inner {
    /// Updates the view of `doc`'s country after it changed and announces
    /// the changes.
    fn refresh(&self, doc: &CountryDoc, applied: &document::Applied) {
        let country = doc.country;
        let old = self
            .views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&country)
            .cloned()
            .unwrap_or_default();
        let (view, changes) = doc.update_view(applied, &old);
        let view = Arc::new(view);
        let views = {
            let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
            views.insert(country, view.clone());
            views.clone()
        };
        log_collisions(&views, &view, country, &changes);
        for change in changes {
            if change == DirectoryChange::CommissionChanged {
                self.apply_revocations();
            }
            let _ = self.feed.send(change);
        }
    }

    /// Hands the revocation lists the Commission published to admission.
    fn apply_revocations(&self) {
        #[derive(Serialize)]
        struct Entry {
            issuer: Option<Vec<u8>>,
            list: Vec<u8>,
        }
        let lists = self
            .views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&Country::Eu)
            .and_then(|v| v.commission.clone())
            .map(|c| c.revocation_lists)
            .unwrap_or_default();
        let mut entries = Vec::new();
        for list in lists.values() {
            let Ok(crl) = RevocationList::from_pem(&list.list_pem) else {
                warn!(issuer = %list.issuer, "published revocation list does not parse");
                continue;
            };
            let issuer = match &list.issuer_pem {
                None => None,
                Some(pem) => match Certificate::from_pem(pem) {
                    Ok(cert) => Some(cert.der().to_vec()),
                    Err(_) => continue,
                },
            };
            entries.push(Entry {
                issuer,
                list: crl.der().to_vec(),
            });
        }
        if entries.is_empty() {
            return;
        }
        let bytes = postcard::to_stdvec(&entries).unwrap_or_default();
        match self.admission.accept_revocations(&bytes) {
            Ok(true) => {
                info!("newer revocation lists taken from the directory");
                let net = self.net.clone();
                tokio::runtime::Handle::current().spawn(async move {
                    net.revocations_changed().await;
                });
            }
            Ok(false) => {}
            Err(err) => warn!(error = %err, "revocation lists from the directory refused"),
        }
    }

    /// What to tell `peer`, within the batch budget.
    fn build_batch(&self, peer: &str) -> SyncBatch {
        let generation = self.generation(peer);
        let mut batch = SyncBatch::new();
        let mut size = 0;
        for doc in self.docs.values() {
            if size >= self.config.batch_budget {
                batch.more = true;
                break;
            }
            if let Some(sync) = lock(doc).generate(peer, generation) {
                size += sync.message.as_ref().map_or(0, Vec::len)
                    + sync
                        .signed
                        .iter()
                        .map(|s| 200 + s.chain.iter().map(Vec::len).sum::<usize>())
                        .sum::<usize>();
                batch.docs.push(sync);
            }
        }
        batch
    }

    /// Takes a batch from `peer`; `true` if any document changed.
    fn receive_batch(&self, peer: &str, batch: SyncBatch) -> bool {
        let generation = self.generation(peer);
        let mut changed = false;
        for sync in batch.docs {
            let Some(doc) = self.docs.get(&sync.country) else {
                continue;
            };
            let mut doc = lock(doc);
            let mut ops = Vec::new();
            let received = doc.receive(peer, generation, sync, &self.trust, &self.stats, &mut ops);
            if let Some(applied) = received.applied {
                changed = true;
                self.refresh(&doc, &applied);
            }
            if !ops.is_empty() {
                // Sent while the document is locked, so its writes stay in order.
                let _ = self.persist.blocking_send(PersistJob { ops, done: None });
            }
        }
        if changed {
            self.forward.store(true, Ordering::Relaxed);
        }
        changed
    }

    /// The generation of the sync state with `peer` (0 for a peer not
    /// known yet).
    fn generation(&self, peer: &str) -> u64 {
        lock(&self.peers).get(peer).map_or(0, |e| e.generation)
    }

    /// Makes the sync state with `peer` start afresh, for every document.
    fn reset_peer(&self, peer: &str) {
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(entry) = lock(&self.peers).get_mut(peer) {
            entry.generation = generation;
        }
    }
}

/// Logs authorities of `country` whose id another country also publishes.
/// Each stays its own country's authority (views, routes, search and cases
/// key authorities by country and id), so the entry cannot capture the
/// other country's requests; the log tells the coordinators.
fn log_collisions(
    views: &BTreeMap<Country, Arc<CountryView>>,
    view: &CountryView,
    country: Country,
    changes: &[DirectoryChange],
) {
    let check = |entry: &PublishedAuthority| {
        for (other, other_view) in views {
            if *other != country && other_view.authorities.contains_key(&entry.id) {
                warn!(
                    %country,
                    authority = %entry.id,
                    other = %other,
                    node = %entry.node,
                    "directory entry refused as {other}'s authority: {country}'s document publishes the id of an authority of {other}; it is routed and found only as {country}'s own"
                );
            }
        }
    };
    for change in changes {
        match change {
            DirectoryChange::AuthorityUpserted(entry) => check(entry),
            DirectoryChange::CountryReloaded(c) if *c == country => {
                view.authorities.values().for_each(check);
            }
            _ => {}
        }
    }
}

/// Starts a session with `peer`, or asks the running one to go again.
fn start_session(inner: &Arc<Inner>, peer: String) {
    if *inner.stopping.borrow() {
        return;
    }
    {
        let mut peers = lock(&inner.peers);
        let Some(entry) = peers.get_mut(&peer) else {
            return;
        };
        if entry.running {
            entry.again = true;
            return;
        }
        entry.running = true;
    }
    let task = tokio::spawn(session(inner.clone(), peer).in_current_span());
    let mut sessions = lock(&inner.sessions);
    sessions.retain(|t| !t.is_finished());
    sessions.push(task);
}

async fn session(inner: Arc<Inner>, peer: String) {
    loop {
        rounds(&inner, &peer).await;
        let mut peers = lock(&inner.peers);
        match peers.get_mut(&peer) {
            Some(entry) if entry.again => entry.again = false,
            Some(entry) => {
                entry.running = false;
                return;
            }
            None => return,
        }
    }
}

/// Request/response rounds with `peer` until neither side has more to say.
async fn rounds(inner: &Arc<Inner>, peer: &str) {
    let mut more = false;
    let mut last: Option<Vec<u8>> = None;
    for _ in 0..inner.config.max_rounds {
        let build = {
            let inner = inner.clone();
            let peer = peer.to_owned();
            move || inner.build_batch(&peer)
        };
        let Ok(batch) = cpu(inner, build).await else {
            return;
        };
        if batch.is_empty() && !more {
            return;
        }
        let bytes = batch.encode();
        if !batch.docs.is_empty() && last.as_ref() == Some(&bytes) {
            // Saying the same again makes no progress (the peer holds
            // changes we refuse); the next session tries again.
            return;
        }
        last = Some(bytes.clone());
        inner.stats.rounds.fetch_add(1, Ordering::Relaxed);
        let answer = match inner.net.request(AppProtocol::Sync, peer, bytes).await {
            Ok(answer) => answer,
            Err(err) => {
                debug!(%peer, error = %err, "directory sync request failed");
                inner.reset_peer(peer);
                return;
            }
        };
        let answer = match SyncBatch::decode(&answer) {
            Ok(answer) => answer,
            Err(err) => {
                inner.stats.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, error = %err, "malformed sync answer");
                inner.reset_peer(peer);
                return;
            }
        };
        more = answer.more;
        let receive = {
            let inner = inner.clone();
            let peer = peer.to_owned();
            move || inner.receive_batch(&peer, answer)
        };
        if cpu(inner, receive).await.is_err() {
            return;
        }
    }
}

/// Syncs with every peer on local changes and every interval.
async fn drive(
    inner: Arc<Inner>,
    mut commands: mpsc::Receiver<Command>,
    persist_task: tokio::task::JoinHandle<()>,
) {
    let mut tick = tokio::time::interval(inner.config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::SyncAll) => sync_all(&inner),
                Some(Command::Shutdown) | None => break,
            },
            _ = tick.tick() => {
                ticks += 1;
                let resync = inner.config.resync_every > 0
                    && ticks.is_multiple_of(u64::from(inner.config.resync_every));
                if resync {
                    let peers: Vec<String> = lock(&inner.peers).keys().cloned().collect();
                    for peer in &peers {
                        inner.reset_peer(peer);
                    }
                }
                // Pass on what arrived since the last tick (peers that have
                // it already answer with their heads alone).
                if inner.forward.swap(false, Ordering::Relaxed) || resync {
                    sync_all(&inner);
                }
            }
        }
    }
    let _ = inner.stopping.send(true);
    let sessions: Vec<_> = lock(&inner.sessions).drain(..).collect();
    for task in &sessions {
        task.abort();
    }
    for task in sessions {
        let _ = task.await;
    }
    let _ = persist_task.await;
}

fn sync_all(inner: &Arc<Inner>) {
    let peers: Vec<String> = lock(&inner.peers).keys().cloned().collect();
    for peer in peers {
        start_session(inner, peer);
    }
}

/// Writes the directory's changes in the order they were made, batching
/// what is waiting into one transaction. Ends when the directory stops,
/// after writing what was already queued.
async fn persist_loop(
    store: Store,
    mut jobs: mpsc::Receiver<PersistJob>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = stopping.wait_for(|stop| *stop) => {
                jobs.close();
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < 64 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut ops = Vec::new();
        let mut waiting = Vec::new();
        for job in batch {
            ops.extend(job.ops);
            waiting.extend(job.done);
        }
        let result = persist::write(&store, ops).await;
        if let Err(err) = &result {
            warn!(error = %err, "directory changes could not be stored");
        }
        for done in waiting {
            let _ = done.send(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| StoreError::corrupt("directory write", e.to_string())),
            );
        }
    }
}
