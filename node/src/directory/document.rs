//! One country's document on this node: the Automerge document, the signed
//! heads that vouch for it, the sync state with each peer, and the checks
//! that keep changes of anyone but the country out.
//!
//! Everything here is synchronous and CPU-bound; callers run it on the
//! blocking pool with the document's lock held.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use automerge::sync::{ChunkList, Message, State, SyncDoc};
use automerge::transaction::{CommitOptions, Transaction};
use automerge::{Automerge, AutomergeError, ChangeHash, Patch, PatchAction, PatchLog, Prop};
use imi_protocol::{AuthorityId, Country};
use tracing::{debug, info, warn};

use super::Stats;
use super::model::{self, DocKind};
use super::signed::{SignatureRefused, SignedHeads, Trust, next_counter};
use super::wire::{self, DocSync, MAX_SIGNERS};

/// Most change hashes kept as vouched for but not yet received.
const MAX_VOUCHED: usize = 100_000;
/// Incremental saves kept before the document is saved whole again.
const MAX_INCREMENTS: u32 = 32;
/// Bytes of incremental saves kept before the document is saved whole again.
const MAX_INCREMENT_BYTES: usize = 1024 * 1024;
/// How long the changes of a peer that sent changes no signature can vouch
/// for (proof of forgery) are ignored, for that document.
const QUARANTINE: Duration = Duration::from_secs(30);
/// How long a change no signature vouches for yet is held back, waiting for
/// the signed heads that cover it.
const HOLD_FOR: Duration = Duration::from_secs(60);
/// Most bytes of changes held back per document.
const MAX_HELD_BYTES: usize = 32 * 1024 * 1024;
/// How long a fresh document waits for the peer it is pulled from before
/// asking another.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);
/// Above this many changed entries in one merge, the change feed announces
/// a reload of the country rather than each entry.
const MAX_ANNOUNCED: usize = 256;
/// Most missing changes asked for by hash in one message.
const MAX_ASKED: usize = 256;

/// A write the store must make for a document.
#[derive(Debug)]
pub(crate) enum PersistOp {
    /// Changes since the last save.
    Increment {
        country: Country,
        seq: u64,
        bytes: Vec<u8>,
    },
    /// The whole document; increments numbered below `below` are obsolete.
    Full {
        country: Country,
        bytes: Vec<u8>,
        below: u64,
    },
    /// Signed heads held for a signer.
    Signature {
        country: Country,
        signer: [u8; 32],
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Default)]
struct PeerSync {
    /// Which connection to the peer this state belongs to.
    generation: u64,
    state: State,
    /// The counter of each signer's heads the peer holds (as far as we know).
    their_counters: HashMap<[u8; 32], u64>,
    /// The peer told us what it has since we last wrote to it.
    fresh: bool,
    /// The last of our own edits offered to the peer.
    pushed_epoch: u64,
    /// The peer sent changes no signature vouches for: its changes to this
    /// document are ignored until then.
    refused_until: Option<Instant>,
}

/// A change waiting for the signed heads that cover it.
struct HeldChange {
    change: automerge::Change,
    since: Instant,
}

/// What became of the changes of a received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// All vouched for (or none carried).
    Accepted,
    /// Part of their history is missing, or the signed heads that cover
    /// them are still on their way: held back, and asked for again.
    Incomplete,
    /// Changes no signature of the country can vouch for: the peer holds
    /// no signed heads we lack, and we have every change of those we hold.
    Refused,
}

/// The entries of one country as last read from its document.
#[derive(Debug, Clone, Default)]
pub(crate) struct CountryView {
    /// The document's heads.
    pub(crate) heads: Vec<ChangeHash>,
    pub(crate) authorities: BTreeMap<AuthorityId, model::PublishedAuthority>,
    pub(crate) registers: BTreeMap<String, model::Register>,
    pub(crate) helpdesk: Option<model::Helpdesk>,
    pub(crate) commission: Option<model::CommissionDirectory>,
}

/// One country's document and what vouches for it.
pub(crate) struct CountryDoc {
    pub(crate) country: Country,
    doc: Automerge,
    genesis: ChangeHash,
    /// Every change applied to `doc`.
    known: HashSet<ChangeHash>,
    /// The latest signed heads of each signer.
    sigs: BTreeMap<[u8; 32], SignedHeads>,
    /// Changes a valid signature vouches for (as dependencies of vouched
    /// changes) that have not arrived yet.
    vouched: HashSet<ChangeHash>,
    /// Changes received before any signature we hold vouched for them,
    /// while signed heads that may cover them are on their way.
    held: HashMap<ChangeHash, HeldChange>,
    held_bytes: usize,
    /// Signers whose signed heads for this document were refused (not
    /// certified for its country, bad signature): their counters say
    /// nothing about signatures on their way.
    refused_signers: HashSet<[u8; 32]>,
    peers: HashMap<String, PeerSync>,
    /// Counts this node's own edits.
    local_epoch: u64,
    /// While the document holds nothing but genesis, the one peer it is
    /// pulled from (so that a fresh node does not get it from every peer).
    pulling: Option<(String, Instant)>,
    saved_heads: Vec<ChangeHash>,
    next_seq: u64,
    increments: u32,
    increment_bytes: usize,
}

impl std::fmt::Debug for CountryDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountryDoc")
            .field("country", &self.country)
            .field("changes", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// How a document changed.
#[derive(Debug)]
pub(crate) struct Applied {
    /// What changed in its current state; `None` when it is best read
    /// again whole.
    pub(crate) patches: Option<Vec<Patch>>,
}

/// What receiving a document's part of a batch did.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Set when the document changed.
    pub(crate) applied: Option<Applied>,
}

impl CountryDoc {
    /// A document restored from `saved` (a whole save followed by
    /// increments), with the signed heads held for it.
    pub(crate) fn restore(
        country: Country,
        saved: &[Vec<u8>],
        next_seq: u64,
        sigs: Vec<SignedHeads>,
    ) -> Result<CountryDoc, AutomergeError> {
        let genesis = model::genesis(country);
        let genesis_hash = genesis.get_heads()[0];
        let mut doc = match saved.first() {
            Some(first) => Automerge::load(first)?,
            None => genesis.clone(),
        };
        for increment in saved.iter().skip(1) {
            doc.load_incremental(increment)?;
        }
        // A document saved by any node starts from genesis; make sure.
        doc.apply_changes(genesis.get_changes(&[]))?;
        let doc = doc.with_actor(automerge::ActorId::random());
        let known = doc
            .get_changes_meta(&[])
            .into_iter()
            .map(|m| m.hash)
            .collect();
        let saved_heads = doc.get_heads();
        Ok(CountryDoc {
            country,
            doc,
            genesis: genesis_hash,
            known,
            sigs: sigs
                .into_iter()
                .filter(|s| s.country == country)
                .map(|s| (s.signer, s))
                .collect(),
            vouched: HashSet::new(),
            held: HashMap::new(),
            held_bytes: 0,
            refused_signers: HashSet::new(),
            peers: HashMap::new(),
            local_epoch: 0,
            pulling: None,
            saved_heads,
            next_seq,
            increments: saved.len().saturating_sub(1) as u32,
            increment_bytes: saved.iter().skip(1).map(Vec::len).sum(),
        })
    }

    /// The document (read-only).
    pub(crate) fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// The signed heads held, one per signer.
    pub(crate) fn signatures(&self) -> Vec<SignedHeads> {
        self.sigs.values().cloned().collect()
    }

    /// The sync state with `peer` for its connection `generation` (a new
    /// generation starts afresh).
    fn peer_sync(&mut self, peer: &str, generation: u64) -> &mut PeerSync {
        let entry = self.peers.entry(peer.to_owned()).or_default();
        if entry.generation != generation {
            *entry = PeerSync {
                generation,
                ..PeerSync::default()
            };
        }
        entry
    }

    /// Forgets the sync state with `peer` (malformed message).
    pub(crate) fn reset_peer(&mut self, peer: &str) {
        self.peers.remove(peer);
        if self.pulling.as_ref().is_some_and(|(p, _)| p == peer) {
            self.pulling = None;
        }
    }

    // -----------------------------------------------------------------------
    // Local edits

    /// Applies a local edit, signs the new heads with `key` and queues the
    /// writes. `Ok(None)` if the edit changed nothing.
    pub(crate) fn edit<F>(
        &mut self,
        edit: F,
        key: &ed25519_dalek::SigningKey,
        chain: &[Vec<u8>],
        ops: &mut Vec<PersistOp>,
    ) -> Result<Option<Applied>, AutomergeError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let before = self.doc.get_heads();
        let mut tx = self
            .doc
            .transaction_log_patches(PatchLog::active())
            .map_err(|_| AutomergeError::Fail)?;
        edit(&mut tx)?;
        if automerge::transaction::Transactable::pending_ops(&tx) == 0 {
            tx.rollback();
            return Ok(None);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (_, mut log) = tx.commit_with(CommitOptions::default().with_time(now));
        let patches = self.doc.make_patches(&mut log);
        self.local_epoch += 1;
        self.learn_applied(&before);
        let signer = key.verifying_key().to_bytes();
        let last = self.sigs.get(&signer).map(|s| s.counter).unwrap_or(0);
        let signed = SignedHeads::sign(
            self.country,
            &self.doc.get_heads(),
            next_counter(last),
            key,
            chain.to_vec(),
        );
        self.hold_signature(signed, ops);
        self.persist_changes(ops);
        Ok(Some(Applied {
            patches: Some(patches),
        }))
    }

    fn hold_signature(&mut self, signed: SignedHeads, ops: &mut Vec<PersistOp>) {
        if !self.sigs.contains_key(&signed.signer)
            && self.sigs.len() >= MAX_SIGNERS
            && let Some(oldest) = self
                .sigs
                .values()
                .min_by_key(|s| s.counter)
                .map(|s| s.signer)
        {
            self.sigs.remove(&oldest);
        }
        ops.push(PersistOp::Signature {
            country: self.country,
            signer: signed.signer,
            bytes: postcard::to_stdvec(&signed).expect("signed heads always encode"),
        });
        self.sigs.insert(signed.signer, signed);
    }

    fn learn_applied(&mut self, before: &[ChangeHash]) {
        for meta in self.doc.get_changes_meta(before) {
            self.known.insert(meta.hash);
        }
        if !self.vouched.is_empty() {
            let known = &self.known;
            self.vouched.retain(|h| !known.contains(h));
        }
    }

    /// Stores `saved`, a whole save of the document as it is now.
    fn persist_whole(&mut self, saved: Vec<u8>, ops: &mut Vec<PersistOp>) {
        self.saved_heads = self.doc.get_heads();
        ops.push(PersistOp::Full {
            country: self.country,
            bytes: saved,
            below: self.next_seq,
        });
        self.increments = 0;
        self.increment_bytes = 0;
    }

    fn persist_changes(&mut self, ops: &mut Vec<PersistOp>) {
        let heads = self.doc.get_heads();
        if heads == self.saved_heads {
            return;
        }
        let bytes = self.doc.save_after(&self.saved_heads);
        self.saved_heads = heads;
        self.increments += 1;
        self.increment_bytes += bytes.len();
        if self.increments > MAX_INCREMENTS || self.increment_bytes > MAX_INCREMENT_BYTES {
            ops.push(PersistOp::Full {
                country: self.country,
                bytes: self.doc.save(),
                below: self.next_seq,
            });
            self.increments = 0;
            self.increment_bytes = 0;
        } else {
            ops.push(PersistOp::Increment {
                country: self.country,
                seq: self.next_seq,
                bytes,
            });
            self.next_seq += 1;
        }
    }

    // -----------------------------------------------------------------------
    // Sync

    /// What to tell `peer` about this document, if anything.
    ///
    /// Changes go out with the first message only for this node's own
    /// edits (pushed to every peer at once) or in answer to a peer that has
    /// just said what it has; otherwise the message announces our heads
    /// and the peer asks for what it lacks, so that a change relayed by
    /// many nodes crosses each link once.
    pub(crate) fn generate(&mut self, peer: &str, generation: u64) -> Option<DocSync> {
        let known_len = self.known.len();
        let missing = self.missing_history();
        let entry = self.peers.entry(peer.to_owned()).or_default();
        if entry.generation != generation {
            *entry = PeerSync {
                generation,
                ..PeerSync::default()
            };
        }
        let push = entry.pushed_epoch < self.local_epoch;
        let announce_only = !entry.fresh && !push;
        entry.fresh = false;
        entry.pushed_epoch = self.local_epoch;
        let hidden = if announce_only {
            Some((entry.state.their_have.take(), entry.state.their_need.take()))
        } else {
            None
        };
        // Most documents have nothing new for most peers: when both sides
        // are known to be at our heads, and we said so already, Automerge
        // would say nothing either. Asking it would still cost a bloom
        // filter and a walk of the change graph, for every document, in
        // every round with every peer.
        let heads = self.doc.get_heads();
        let state = &entry.state;
        let in_step = state.have_responded
            && !state.needs_reset
            && state.last_sent_heads == heads
            && state.their_heads.as_ref() == Some(&heads)
            && state.their_need.as_ref().is_none_or(Vec::is_empty);
        let mut message = if in_step {
            None
        } else {
            self.doc.generate_sync_message(&mut entry.state)
        };
        if let Some((have, need)) = hidden {
            entry.state.their_have = have;
            entry.state.their_need = need;
        }
        if let Some(message) = &mut message
            && !missing.is_empty()
        {
            // Automerge asks only for the peer's heads, and the peer sends
            // what our bloom filter says we lack: a change the filter
            // wrongly counts in would never come. The history held-back
            // changes wait for is asked for by hash (sorted, as encoded).
            message.need.extend(missing);
            message.need.sort();
            message.need.dedup();
        }
        if let Some(message) = &mut message
            && known_len == 1
            && !message.need.is_empty()
        {
            // A fresh document: ask one peer at a time for it.
            let busy = self
                .pulling
                .as_ref()
                .is_some_and(|(other, at)| other != peer && at.elapsed() < PULL_TIMEOUT);
            if busy {
                message.need.clear();
                message.have.clear();
            } else {
                self.pulling = Some((peer.to_owned(), Instant::now()));
            }
        }
        let message = message.map(Message::encode);
        let signed: Vec<SignedHeads> = self
            .sigs
            .values()
            .filter(|s| {
                entry
                    .their_counters
                    .get(&s.signer)
                    .is_none_or(|held| *held < s.counter)
            })
            .take(MAX_SIGNERS)
            .cloned()
            .collect();
        if message.is_none() && signed.is_empty() {
            return None;
        }
        for s in &signed {
            entry.their_counters.insert(s.signer, s.counter);
        }
        Some(DocSync {
            country: self.country,
            known: self
                .sigs
                .values()
                .take(MAX_SIGNERS)
                .map(|s| (s.signer, s.counter))
                .collect(),
            signed,
            message,
        })
    }

    /// Takes what `peer` said about this document: the signed heads first,
    /// then the changes, of which only those that signed heads of this
    /// country vouch for are applied.
    pub(crate) fn receive(
        &mut self,
        peer: &str,
        generation: u64,
        sync: DocSync,
        trust: &Trust,
        stats: &Stats,
        ops: &mut Vec<PersistOp>,
    ) -> Received {
        let country = self.country;
        // What the peer holds now, as it says.
        self.peer_sync(peer, generation).their_counters = sync.known.iter().copied().collect();
        for signed in sync.signed {
            let signer = signed.signer;
            let counter = signed.counter;
            match self.accept_signature(signed, trust, ops) {
                Ok(()) => {
                    let entry = self.peers.entry(peer.to_owned()).or_default();
                    let held = entry.their_counters.entry(signer).or_insert(0);
                    *held = (*held).max(counter);
                }
                Err(refused @ SignatureRefused::Stale { .. }) => {
                    stats.stale_signatures.fetch_add(1, Ordering::Relaxed);
                    // Older heads are harmless (they change nothing) and honest
                    // relays race with newer ones all the time: not a warning.
                    info!(%peer, %country, reason = %refused, "replayed signed heads refused");
                }
                Err(refused) => {
                    stats.refused_signatures.fetch_add(1, Ordering::Relaxed);
                    if self.refused_signers.len() >= MAX_SIGNERS * 16 {
                        self.refused_signers.clear();
                    }
                    self.refused_signers.insert(signer);
                    warn!(%peer, %country, reason = %refused, "signed heads refused");
                }
            }
        }
        let Some(bytes) = sync.message else {
            return self.release_held(ops);
        };
        let mut message = match Message::decode(&bytes) {
            Ok(message) => message,
            Err(err) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, %country, error = %err, "malformed sync message refused");
                self.reset_peer(peer);
                return Received::default();
            }
        };
        let quarantined = self
            .peers
            .get(peer)
            .and_then(|e| e.refused_until)
            .is_some_and(|until| Instant::now() < until);
        if quarantined && !message.changes.is_empty() {
            debug!(%peer, %country, "changes of a quarantined peer ignored");
            message.changes = ChunkList::empty();
        }
        let (mut message, verdict, replacement) = self.admit_changes(peer, message, stats);
        let released = self.take_covered_held();
        if !released.is_empty() {
            let mut changes: Vec<Vec<u8>> = message.changes.iter().map(<[u8]>::to_vec).collect();
            changes.extend(released.into_iter().map(|c| c.raw_bytes().to_vec()));
            message.changes = ChunkList::from(changes);
        }
        let before = self.doc.get_heads();
        let entry = self.peers.entry(peer.to_owned()).or_default();
        entry.fresh = true;
        let reload = replacement.is_some();
        let mut loaded = None;
        if let Some((doc, saved)) = replacement {
            loaded = Some((doc.get_heads(), saved));
            self.doc = doc;
        }
        let mut log = PatchLog::active();
        if let Err(err) =
            self.doc
                .receive_sync_message_log_patches(&mut entry.state, message, &mut log)
        {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, %country, error = %err, "sync message could not be applied");
            self.peers.remove(peer);
            return Received::default();
        }
        match verdict {
            Verdict::Accepted => {}
            // Ask the peer to send again what it believes it sent.
            Verdict::Incomplete => entry.state.needs_reset = true,
            // Take no changes of the peer for this document for a while
            // (what was vouched for is kept; it still gets ours).
            Verdict::Refused => entry.refused_until = Some(Instant::now() + QUARANTINE),
        }
        if self.doc.get_heads() == before {
            return Received::default();
        }
        self.pulling = None;
        self.learn_applied(&before);
        match loaded {
            // The document arrived whole and nothing was added to it: store
            // the bytes received (a whole save) rather than encode it again.
            Some((heads, saved)) if heads == self.doc.get_heads() => self.persist_whole(saved, ops),
            _ => self.persist_changes(ops),
        }
        let patches = (!reload).then(|| self.doc.make_patches(&mut log));
        Received {
            applied: Some(Applied { patches }),
        }
    }

    /// Applies the held-back changes that signed heads now vouch for (after
    /// a message that brought signatures but no changes).
    fn release_held(&mut self, ops: &mut Vec<PersistOp>) -> Received {
        let released = self.take_covered_held();
        if released.is_empty() {
            return Received::default();
        }
        let before = self.doc.get_heads();
        let mut log = PatchLog::active();
        if let Err(err) = self.doc.apply_changes_log_patches(released, &mut log) {
            warn!(country = %self.country, error = %err, "held-back changes could not be applied");
            return Received::default();
        }
        if self.doc.get_heads() == before {
            return Received::default();
        }
        self.learn_applied(&before);
        self.persist_changes(ops);
        let patches = self.doc.make_patches(&mut log);
        Received {
            applied: Some(Applied {
                patches: Some(patches),
            }),
        }
    }

    /// Takes out of the held-back changes those that signed heads (or
    /// vouched hashes) now reach, and forgets those held too long.
    fn take_covered_held(&mut self) -> Vec<automerge::Change> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut stack: Vec<ChangeHash> = self
            .sigs
            .values()
            .flat_map(|s| s.change_hashes())
            .chain(self.vouched.iter().copied())
            .filter(|h| self.held.contains_key(h))
            .collect();
        let mut covered = HashSet::new();
        let mut missing = Vec::new();
        while let Some(hash) = stack.pop() {
            if !covered.insert(hash) {
                continue;
            }
            let Some(held) = self.held.get(&hash) else {
                continue;
            };
            for dep in held.change.deps() {
                if self.held.contains_key(dep) {
                    stack.push(*dep);
                } else if !self.known.contains(dep) {
                    missing.push(*dep);
                }
            }
        }
        self.vouch(missing);
        let held = &self.held;
        let ready = ready(&covered, &self.known, |hash| {
            held.get(hash).map_or(&[], |h| h.change.deps())
        });
        let mut released = Vec::with_capacity(ready.len());
        for hash in ready {
            if let Some(held) = self.held.remove(&hash) {
                self.held_bytes -= held.change.raw_bytes().len();
                released.push(held.change);
            }
        }
        let before = self.held.len();
        let known = &self.known;
        self.held
            .retain(|hash, held| held.since.elapsed() < HOLD_FOR && !known.contains(hash));
        if self.held.len() != before {
            self.held_bytes = self.held.values().map(|h| h.change.raw_bytes().len()).sum();
            debug!(country = %self.country, dropped = before - self.held.len(), "held-back changes no signature vouched for in time dropped");
        }
        if !released.is_empty() {
            debug!(country = %self.country, changes = released.len(), "held-back changes released by their signed heads");
        }
        released
    }

    /// The changes that held-back changes depend on and that have not
    /// arrived (Automerge never sees the held-back changes, so it does not
    /// ask for their history itself).
    fn missing_history(&self) -> Vec<ChangeHash> {
        let mut missing = BTreeSet::new();
        for held in self.held.values() {
            for dep in held.change.deps() {
                if !self.known.contains(dep) && !self.held.contains_key(dep) {
                    missing.insert(*dep);
                }
            }
        }
        missing.into_iter().take(MAX_ASKED).collect()
    }

    /// Holds `change` back until signed heads vouch for it.
    fn hold(&mut self, change: automerge::Change) {
        let hash = change.hash();
        let size = change.raw_bytes().len();
        if self.held.contains_key(&hash) || self.held_bytes + size > MAX_HELD_BYTES {
            return;
        }
        self.held_bytes += size;
        self.held.insert(
            hash,
            HeldChange {
                change,
                since: Instant::now(),
            },
        );
    }

    /// Whether signed heads that may vouch for changes we cannot place yet
    /// are on their way: a signature we hold names heads we do not have, a
    /// vouched history is still arriving, or `peer` holds signed heads
    /// newer than ours (of a signer not refused here).
    fn awaiting_signatures(&self, peer: &str) -> bool {
        if !self.vouched.is_empty() {
            return true;
        }
        if self
            .sigs
            .values()
            .flat_map(|s| s.change_hashes())
            .any(|h| !self.known.contains(&h))
        {
            return true;
        }
        self.peers.get(peer).is_some_and(|p| {
            p.their_counters.iter().any(|(signer, counter)| {
                !self.refused_signers.contains(signer)
                    && self
                        .sigs
                        .get(signer)
                        .is_none_or(|held| held.counter < *counter)
            })
        })
    }

    fn accept_signature(
        &mut self,
        signed: SignedHeads,
        trust: &Trust,
        ops: &mut Vec<PersistOp>,
    ) -> Result<(), SignatureRefused> {
        if signed.country != self.country {
            return Err(SignatureRefused::Malformed(format!(
                "heads of {}'s document sent as {}'s",
                signed.country, self.country
            )));
        }
        if let Some(held) = self.sigs.get(&signed.signer)
            && held.counter == signed.counter
            && held.heads == signed.heads
        {
            return Ok(());
        }
        let signer = trust.check(&signed)?;
        if let Some(held) = self.sigs.get(&signed.signer).map(|h| h.counter) {
            if signed.counter < held {
                // Not held (a newer one is), but still a valid signature of
                // a node of the country: the changes up to those heads are
                // genuine. Honest relays that are behind send exactly these.
                self.vouch(signed.change_hashes());
                return Err(SignatureRefused::Stale {
                    signer,
                    counter: signed.counter,
                    held,
                });
            }
            if signed.counter == held {
                return Err(SignatureRefused::Equivocation {
                    signer,
                    counter: signed.counter,
                });
            }
        }
        debug!(country = %self.country, %signer, counter = signed.counter, "signed heads accepted");
        self.hold_signature(signed, ops);
        Ok(())
    }

    /// Remembers changes a valid signature vouches for, until they arrive.
    fn vouch(&mut self, hashes: impl IntoIterator<Item = ChangeHash>) {
        for hash in hashes {
            if self.known.contains(&hash) {
                continue;
            }
            if self.vouched.len() >= MAX_VOUCHED {
                self.vouched.clear();
            }
            self.vouched.insert(hash);
        }
    }

    /// Keeps only the changes of `message` that signed heads vouch for.
    /// Returns the message to apply, the verdict, and a whole document to
    /// use instead of ours (a first sync, taken as loaded rather than
    /// applied change by change).
    ///
    /// A change no signature vouches for yet is held back while signed
    /// heads that may cover it are on their way (see
    /// [`CountryDoc::awaiting_signatures`]): relays race, and a change
    /// often arrives before the signed heads that cover it. Only when none
    /// can be on their way is it refused and the peer quarantined.
    fn admit_changes(
        &mut self,
        peer: &str,
        mut message: Message,
        stats: &Stats,
    ) -> (Message, Verdict, Option<(Automerge, Vec<u8>)>) {
        if message.changes.is_empty() {
            return (message, Verdict::Accepted, None);
        }
        // Every change the message carries is an ancestor of the sender's
        // heads: if we have those, we have them all.
        if message.heads.iter().all(|h| self.known.contains(h)) {
            message.changes = ChunkList::empty();
            return (message, Verdict::Accepted, None);
        }
        let chunks: Vec<&[u8]> = message.changes.iter().collect();
        let mut contents = match wire::read_contents(&chunks) {
            Ok(contents) => contents,
            Err(err) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(%peer, country = %self.country, error = %err, "unreadable changes refused");
                message.changes = ChunkList::empty();
                return (message, Verdict::Refused, None);
            }
        };
        let new: HashMap<ChangeHash, &[ChangeHash]> = contents
            .changes
            .iter()
            .filter(|c| !self.known.contains(&c.hash))
            .map(|c| (c.hash, c.deps.as_slice()))
            .collect();
        // Walk back from every signed head and every vouched hash through
        // the new changes (and those held back): what is reached is
        // vouched for.
        let mut covered: HashSet<ChangeHash> = HashSet::new();
        let mut missing: Vec<ChangeHash> = Vec::new();
        let mut stack: Vec<ChangeHash> = self
            .sigs
            .values()
            .flat_map(|s| s.change_hashes())
            .chain(self.vouched.iter().copied())
            .filter(|h| new.contains_key(h) || self.held.contains_key(h))
            .collect();
        while let Some(hash) = stack.pop() {
            if !covered.insert(hash) {
                continue;
            }
            let deps: &[ChangeHash] = match new.get(&hash) {
                Some(deps) => deps,
                None => self.held.get(&hash).map_or(&[], |h| h.change.deps()),
            };
            for dep in deps {
                if new.contains_key(dep) || self.held.contains_key(dep) {
                    stack.push(*dep);
                } else if !self.known.contains(dep) {
                    missing.push(*dep);
                }
            }
        }
        let uncovered = new.keys().filter(|h| !covered.contains(*h)).count();
        // Some changes are not vouched for. If every dependency is present
        // the message is complete; otherwise the rest of the history may
        // still be on its way.
        let complete = new.values().all(|deps| {
            deps.iter()
                .all(|d| new.contains_key(d) || self.known.contains(d) || self.held.contains_key(d))
        });
        // Only changes whose whole history is here go to the document (it
        // would keep the others in a queue of its own, out of our sight).
        let ready = ready(&covered, &self.known, |hash| match new.get(hash) {
            Some(deps) => deps,
            None => self.held.get(hash).map_or(&[], |h| h.change.deps()),
        });
        let new_count = new.len();
        drop(new);
        self.vouch(missing);
        if uncovered == 0 && self.held.is_empty() && ready.len() == covered.len() {
            stats
                .accepted_changes
                .fetch_add(new_count as u64, Ordering::Relaxed);
            // A first sync of a whole document: take it as loaded.
            if self.known.len() == 1
                && contents.documents.len() == 1
                && contents.change_chunks.is_empty()
                && contents.changes.iter().any(|c| c.hash == self.genesis)
            {
                let mut doc = contents.documents.pop().expect("one document");
                let saved = contents.document_chunks.pop().expect("its chunk");
                doc.set_actor(self.doc.get_actor().clone());
                message.changes = ChunkList::empty();
                return (message, Verdict::Accepted, Some((doc, saved)));
            }
            return (message, Verdict::Accepted, None);
        }
        let forged = uncovered > 0 && complete && !self.awaiting_signatures(peer);
        let mut all_changes: Vec<automerge::Change> = contents.change_chunks;
        for doc in &contents.documents {
            all_changes.extend(doc.get_changes(&[]));
        }
        let mut keep: Vec<Vec<u8>> = Vec::new();
        for change in all_changes {
            let hash = change.hash();
            if self.known.contains(&hash) {
                continue;
            }
            if ready.contains(&hash) {
                keep.push(change.raw_bytes().to_vec());
            } else if covered.contains(&hash) || !forged {
                self.hold(change);
            }
        }
        // Held-back changes ready now go with the message.
        for hash in &ready {
            if let Some(held) = self.held.remove(hash) {
                self.held_bytes -= held.change.raw_bytes().len();
                keep.push(held.change.raw_bytes().to_vec());
            }
        }
        stats
            .accepted_changes
            .fetch_add(keep.len() as u64, Ordering::Relaxed);
        message.changes = ChunkList::from(keep);
        if uncovered == 0 && ready.len() == covered.len() {
            return (message, Verdict::Accepted, None);
        }
        if forged {
            stats
                .refused_changes
                .fetch_add(uncovered as u64, Ordering::Relaxed);
            warn!(
                %peer,
                country = %self.country,
                changes = uncovered,
                quarantine_s = QUARANTINE.as_secs(),
                "changes not signed by a node of the document's country refused"
            );
            return (message, Verdict::Refused, None);
        }
        debug!(%peer, country = %self.country, unsigned = uncovered, waiting_for_history = covered.len() - ready.len(), "changes held back until their signed heads and history arrive");
        (message, Verdict::Incomplete, None)
    }

    // -----------------------------------------------------------------------
    // Reading

    /// The heads now.
    #[cfg(test)]
    pub(crate) fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Reads every entry of the document.
    pub(crate) fn read_view(&self) -> CountryView {
        let mut view = CountryView {
            heads: self.doc.get_heads(),
            ..CountryView::default()
        };
        let country = self.country;
        match DocKind::of(country) {
            DocKind::Country => {
                if let Some(authorities) = model::root_map(&self.doc, model::AUTHORITIES) {
                    for (key, obj) in model::entries(&self.doc, &authorities) {
                        match model::read_authority(&self.doc, &obj, &key, country) {
                            Ok(entry) => {
                                view.authorities.insert(entry.id, entry);
                            }
                            Err(refused) => log_refused(country, &key, &refused),
                        }
                    }
                }
                if let Some(registers) = model::root_map(&self.doc, model::REGISTERS) {
                    for (key, obj) in model::entries(&self.doc, &registers) {
                        if let Some(entry) = model::read_register(&self.doc, &obj, &key, country) {
                            view.registers.insert(entry.id.clone(), entry);
                        }
                    }
                }
                view.helpdesk = model::root_map(&self.doc, model::HELPDESK)
                    .and_then(|h| model::read_helpdesk(&self.doc, &h));
            }
            DocKind::Commission => {
                view.commission = Some(model::read_commission(&self.doc));
            }
        }
        view
    }

    /// The view after the document moved on from `before`, and the changes
    /// to announce.
    pub(crate) fn update_view(
        &self,
        applied: &Applied,
        old: &CountryView,
    ) -> (CountryView, Vec<model::DirectoryChange>) {
        use model::DirectoryChange as C;
        let country = self.country;
        let touched = applied.patches.as_deref().and_then(touched);
        let mut view = old.clone();
        view.heads = self.doc.get_heads();
        let mut changes = Vec::new();
        let (authority_keys, register_keys, helpdesk, commission) = match touched {
            Some(t) => t,
            None => {
                // Read everything again.
                let fresh = self.read_view();
                let mut changes = Vec::new();
                let differs = fresh.authorities.len() + fresh.registers.len() > MAX_ANNOUNCED;
                if differs {
                    changes.push(C::CountryReloaded(country));
                } else {
                    for (id, entry) in &fresh.authorities {
                        if old.authorities.get(id) != Some(entry) {
                            changes.push(C::AuthorityUpserted(entry.clone()));
                        }
                    }
                    for id in old.authorities.keys() {
                        if !fresh.authorities.contains_key(id) {
                            changes.push(C::AuthorityRemoved { country, id: *id });
                        }
                    }
                    for (id, entry) in &fresh.registers {
                        if old.registers.get(id) != Some(entry) {
                            changes.push(C::RegisterUpserted(entry.clone()));
                        }
                    }
                    for id in old.registers.keys() {
                        if !fresh.registers.contains_key(id) {
                            changes.push(C::RegisterRemoved {
                                country,
                                id: id.clone(),
                            });
                        }
                    }
                    if fresh.helpdesk != old.helpdesk
                        && let Some(helpdesk) = &fresh.helpdesk
                    {
                        changes.push(C::HelpdeskChanged {
                            country,
                            helpdesk: helpdesk.clone(),
                        });
                    }
                    if fresh.commission != old.commission {
                        changes.push(C::CommissionChanged);
                    }
                }
                return (fresh, changes);
            }
        };
        if let Some(authorities) = model::root_map(&self.doc, model::AUTHORITIES) {
            for key in &authority_keys {
                let Ok(id) = key.parse::<AuthorityId>() else {
                    continue;
                };
                let read = model::entry(&self.doc, &authorities, key).and_then(|obj| {
                    model::read_authority(&self.doc, &obj, key, country)
                        .map_err(|refused| log_refused(country, key, &refused))
                        .ok()
                });
                match read {
                    Some(entry) => {
                        if view.authorities.get(&id) != Some(&entry) {
                            view.authorities.insert(id, entry.clone());
                            changes.push(C::AuthorityUpserted(entry));
                        }
                    }
                    None => {
                        if view.authorities.remove(&id).is_some() {
                            changes.push(C::AuthorityRemoved { country, id });
                        }
                    }
                }
            }
        }
        if let Some(registers) = model::root_map(&self.doc, model::REGISTERS) {
            for key in &register_keys {
                let read = model::entry(&self.doc, &registers, key)
                    .and_then(|obj| model::read_register(&self.doc, &obj, key, country));
                match read {
                    Some(entry) => {
                        if view.registers.get(key) != Some(&entry) {
                            view.registers.insert(key.clone(), entry.clone());
                            changes.push(C::RegisterUpserted(entry));
                        }
                    }
                    None => {
                        if view.registers.remove(key).is_some() {
                            changes.push(C::RegisterRemoved {
                                country,
                                id: key.clone(),
                            });
                        }
                    }
                }
            }
        }
        if helpdesk {
            view.helpdesk = model::root_map(&self.doc, model::HELPDESK)
                .and_then(|h| model::read_helpdesk(&self.doc, &h));
            if view.helpdesk != old.helpdesk
                && let Some(helpdesk) = &view.helpdesk
            {
                changes.push(C::HelpdeskChanged {
                    country,
                    helpdesk: helpdesk.clone(),
                });
            }
        }
        if commission {
            view.commission = Some(model::read_commission(&self.doc));
            if view.commission != old.commission {
                changes.push(C::CommissionChanged);
            }
        }
        if changes.len() > MAX_ANNOUNCED {
            changes = vec![C::CountryReloaded(country)];
        }
        (view, changes)
    }
}

/// Of the `covered` changes, those whose whole history is `known` or
/// itself ready (`deps` gives a covered change's dependencies).
fn ready<'a>(
    covered: &HashSet<ChangeHash>,
    known: &HashSet<ChangeHash>,
    deps: impl Fn(&ChangeHash) -> &'a [ChangeHash],
) -> HashSet<ChangeHash> {
    // A change with a dependency that is neither known nor covered is
    // blocked, and so is everything that depends on it.
    let mut dependents: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut blocked: Vec<ChangeHash> = Vec::new();
    for hash in covered {
        for dep in deps(hash) {
            if covered.contains(dep) {
                dependents.entry(*dep).or_default().push(*hash);
            } else if !known.contains(dep) {
                blocked.push(*hash);
            }
        }
    }
    let mut not_ready: HashSet<ChangeHash> = HashSet::new();
    while let Some(hash) = blocked.pop() {
        if not_ready.insert(hash)
            && let Some(next) = dependents.get(&hash)
        {
            blocked.extend(next.iter().copied());
        }
    }
    covered.difference(&not_ready).copied().collect()
}

/// Logs an entry of `country`'s document that is not read, with the reason.
fn log_refused(country: Country, key: &str, refused: &model::EntryRefused) {
    warn!(%country, entry = %key, reason = %refused, "directory entry refused");
}

/// Which entries the patches touch; `None` when the change is best handled
/// by reading everything again.
#[allow(clippy::type_complexity)]
fn touched(patches: &[Patch]) -> Option<(BTreeSet<String>, BTreeSet<String>, bool, bool)> {
    let mut authorities = BTreeSet::new();
    let mut registers = BTreeSet::new();
    let mut helpdesk = false;
    let mut commission = false;
    for patch in patches {
        let key_of_action = || match &patch.action {
            PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key.clone()),
            _ => None,
        };
        let section = match patch.path.first() {
            Some((_, Prop::Map(section))) => section.as_str(),
            Some(_) => return None,
            None => {
                // A patch on the root itself.
                match key_of_action()?.as_str() {
                    model::CATALOGUE_VERSION => {
                        commission = true;
                        continue;
                    }
                    "country" => continue,
                    _ => return None,
                }
            }
        };
        let entry_key = match patch.path.get(1) {
            Some((_, Prop::Map(key))) => Some(key.clone()),
            Some(_) => None,
            None => key_of_action(),
        };
        match section {
            model::AUTHORITIES => {
                authorities.insert(entry_key?);
            }
            model::REGISTERS => {
                registers.insert(entry_key?);
            }
            model::HELPDESK => helpdesk = true,
            model::ROSTER | model::REVOCATIONS => commission = true,
            _ => {}
        }
    }
    if authorities.len() + registers.len() > MAX_ANNOUNCED {
        return None;
    }
    Some((authorities, registers, helpdesk, commission))
}
