//! Keeps the search index and the routes in step with the replicated
//! directory.
//!
//! The directory in the store is the truth; the Tantivy index under
//! `data/search` is derived from it. At start the index is rebuilt from the
//! directory (12,600 authorities take well under a second), then every change
//! the directory announces is applied: searchable within a second (changes
//! are committed 200 ms after the last of a burst, at most 1 s after the
//! first). Indexing and searches run on the
//! blocking pool, never on the async executor. The same feed keeps the
//! routes table (which node serves which authority) up to date for cases.
//!
//! Entries are identified by their country and id ([`authority_search_id`]):
//! an entry in one country's document never replaces another country's. A
//! country whose document arrived whole (`DirectoryChange::CountryReloaded`)
//! is indexed incrementally: its entries now are compared with those the
//! index holds for it, and only what differs is written.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imi_protocol::{AuthorityId, Catalogue, Country, Language, Party};
use imi_search::{DirectoryEntry, EntryKind, Query, SearchIndex, SearchResults};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::directory::{Directory, DirectoryChange, PublishedAuthority, Register};
use crate::store::Store;

/// Pending index changes are committed once no change has come for this
/// long...
const COMMIT_QUIET: Duration = Duration::from_millis(200);
/// ...or this long after the first of them, whichever comes first. A burst
/// (a first sync brings 30 countries one after the other) makes a few
/// segments instead of one every 200 ms: each commit writes a segment, and
/// each segment costs its term dictionaries and, later, merges.
const COMMIT_AT_MOST_AFTER: Duration = Duration::from_secs(1);
/// Directory changes applied together at most.
const MAX_CHANGES_AT_ONCE: usize = 1024;

/// The search index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index could not be opened or rebuilt.
    #[error("the search index is not usable: {0}")]
    Unusable(String),
    /// A search failed.
    #[error("the search failed: {0}")]
    Search(String),
}

/// The search over the directory, shared by the node and its web layer.
#[derive(Clone)]
pub struct DirectorySearch {
    index: Arc<SearchIndex>,
    /// What the index holds, per country.
    indexed: Arc<Mutex<Indexed>>,
}

impl std::fmt::Debug for DirectorySearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySearch")
            .field("entries", &self.index.len())
            .finish()
    }
}

/// The search id of authority `id` of `country`: `PT/01J…`. An authority is
/// identified by its country and id, so another country's entry with the
/// same id is another search entry.
pub fn authority_search_id(country: Country, id: AuthorityId) -> String {
    format!("{country}/{id}")
}

/// The search id of register `id` of `country`: `register:PT/…`.
pub fn register_search_id(country: Country, id: &str) -> String {
    format!("register:{country}/{id}")
}

/// The search entry of a published authority.
pub fn authority_entry(authority: &PublishedAuthority) -> DirectoryEntry {
    let mut areas = Vec::new();
    let mut procedures = Vec::new();
    let mut professions = Vec::new();
    let mut other = Vec::new();
    for competence in &authority.competences {
        areas.push(competence.area.clone());
        procedures.extend(competence.procedures.iter().cloned());
        professions.extend(competence.professions.iter().cloned());
        other.extend(competence.other.iter().cloned());
    }
    DirectoryEntry {
        id: authority_search_id(authority.country, authority.id),
        kind: EntryKind::Authority,
        country: authority.country,
        names: authority
            .names
            .iter()
            .map(|(language, name)| (*language, name.clone()))
            .collect(),
        areas,
        procedures,
        professions,
        other_competences: other,
        city: authority.contact.city.clone(),
        region: authority.contact.region.clone(),
        languages: authority.languages.iter().copied().collect(),
        url: authority.contact.website.clone(),
    }
}

/// The search entry of a register of the registers directory.
pub fn register_entry(register: &Register) -> DirectoryEntry {
    DirectoryEntry {
        id: register_search_id(register.country, &register.id),
        kind: EntryKind::Register,
        country: register.country,
        names: register
            .names
            .iter()
            .map(|(language, name)| (*language, name.clone()))
            .collect(),
        areas: register.areas.iter().cloned().collect(),
        procedures: vec![],
        professions: register.professions.iter().cloned().collect(),
        other_competences: register.lookups.clone(),
        city: None,
        region: None,
        languages: register.languages.iter().copied().collect(),
        url: Some(register.url.clone()),
    }
}

/// The search entries of `country`: its authorities and registers.
fn entries_of(directory: &Directory, country: Country) -> Vec<DirectoryEntry> {
    let mut entries: Vec<DirectoryEntry> = directory
        .authorities_of(country)
        .iter()
        .map(authority_entry)
        .collect();
    entries.extend(directory.registers_of(country).iter().map(register_entry));
    entries
}

fn all_entries(directory: &Directory) -> Vec<DirectoryEntry> {
    Country::ALL
        .into_iter()
        .flat_map(|country| entries_of(directory, country))
        .collect()
}

/// What the index holds for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    /// A hash of the entry as indexed.
    fingerprint: u64,
    /// The authority it is, for its route (`None` for a register).
    authority: Option<AuthorityId>,
}

/// What the index holds, country by country: search id → [`Held`]. Lets a
/// country's entries be compared with the index without reading it.
#[derive(Debug, Default)]
struct Indexed {
    countries: HashMap<Country, HashMap<String, Held>>,
}

fn fingerprint(entry: &DirectoryEntry) -> u64 {
    let mut hasher = DefaultHasher::new();
    postcard::to_stdvec(entry)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

fn held(entry: &DirectoryEntry) -> Held {
    let authority = match entry.kind {
        EntryKind::Authority => entry.id.rsplit('/').next().and_then(|id| id.parse().ok()),
        EntryKind::Register => None,
    };
    Held {
        fingerprint: fingerprint(entry),
        authority,
    }
}

impl Indexed {
    fn of(entries: &[DirectoryEntry]) -> Indexed {
        let mut indexed = Indexed::default();
        for entry in entries {
            indexed.note(entry);
        }
        indexed
    }

    fn note(&mut self, entry: &DirectoryEntry) {
        self.countries
            .entry(entry.country)
            .or_default()
            .insert(entry.id.clone(), held(entry));
    }

    fn forget(&mut self, country: Country, id: &str) {
        if let Some(held) = self.countries.get_mut(&country) {
            held.remove(id);
        }
    }

    /// Brings what is held for `country` to `entries`: the index edits to
    /// make (only what differs), and the routes of authorities that left.
    fn diff(
        &mut self,
        country: Country,
        entries: Vec<DirectoryEntry>,
        edits: &mut Vec<IndexEdit>,
        routes: &mut Vec<(Party, Option<imi_protocol::NodeAddress>)>,
    ) {
        let before = self.countries.remove(&country).unwrap_or_default();
        let mut now = HashMap::with_capacity(entries.len());
        for entry in entries {
            let held = held(&entry);
            if before.get(&entry.id) != Some(&held) {
                edits.push(IndexEdit::Upsert(Box::new(entry.clone())));
            }
            now.insert(entry.id, held);
        }
        for (id, held) in before {
            if !now.contains_key(&id) {
                if let Some(authority) = held.authority {
                    routes.push((Party { authority, country }, None));
                }
                edits.push(IndexEdit::Remove(id));
            }
        }
        self.countries.insert(country, now);
    }
}

impl DirectorySearch {
    /// Opens the index in `dir` and rebuilds it from `directory`.
    pub async fn open(dir: &Path, directory: &Directory) -> Result<DirectorySearch, IndexError> {
        let dir = dir.to_owned();
        let entries = all_entries(directory);
        tokio::task::spawn_blocking(move || {
            let catalogue = Catalogue::builtin();
            let index = match SearchIndex::open_in_dir(&dir, catalogue) {
                Ok(index) => index,
                Err(err) => {
                    warn!(error = %err, dir = %dir.display(), "search index unusable, keeping it in memory");
                    SearchIndex::create_in_ram(catalogue)
                        .map_err(|e| IndexError::Unusable(e.to_string()))?
                }
            };
            let reason = index
                .rebuild_reason()
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|| "start".into());
            let indexed = Indexed::of(&entries);
            let report = index
                .rebuild(entries)
                .map_err(|e| IndexError::Unusable(e.to_string()))?;
            info!(entries = index.len(), %reason, ?report, "search index rebuilt from the directory");
            Ok(DirectorySearch {
                index: Arc::new(index),
                indexed: Arc::new(Mutex::new(indexed)),
            })
        })
        .await
        .map_err(|e| IndexError::Unusable(e.to_string()))?
    }

    /// Searches, off the async executor.
    pub async fn search(&self, query: Query) -> Result<SearchResults, IndexError> {
        let index = Arc::clone(&self.index);
        tokio::task::spawn_blocking(move || index.search(&query))
            .await
            .map_err(|e| IndexError::Search(e.to_string()))?
            .map_err(|e| IndexError::Search(e.to_string()))
    }

    /// A search for `text` in `language`, first page.
    pub async fn find(&self, text: &str, language: Language) -> Result<SearchResults, IndexError> {
        self.search(Query::new(text, language)).await
    }

    /// How many entries are indexed.
    pub fn len(&self) -> u64 {
        self.index.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Applies the directory's changes until it stops: to the index, and to
    /// the routes of `store`. Changes that are waiting are taken together:
    /// one blocking call for the index, one write for the routes.
    pub(crate) async fn follow(self, directory: Directory, store: Store) {
        let mut changes = directory.subscribe();
        // Routes of what is already published, and what changed since the
        // index was opened (before this subscription).
        set_all_routes(&directory, &store).await;
        let mut dirty = self.apply(&directory, &store, Batch::Everything).await;
        // When the first pending change and the latest one were applied.
        let now = Instant::now();
        let (mut first, mut last) = (now, now);
        loop {
            let commit_at = (last + COMMIT_QUIET).min(first + COMMIT_AT_MOST_AFTER);
            tokio::select! {
                change = changes.recv() => {
                    let mut batch = Vec::new();
                    let mut lagged = None;
                    let mut next = change;
                    loop {
                        match next {
                            Ok(change) => batch.push(change),
                            Err(broadcast::error::RecvError::Lagged(missed)) => lagged = Some(missed),
                            Err(broadcast::error::RecvError::Closed) => return,
                        }
                        if batch.len() >= MAX_CHANGES_AT_ONCE {
                            break;
                        }
                        next = match changes.try_recv() {
                            Ok(change) => Ok(change),
                            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                                Err(broadcast::error::RecvError::Lagged(missed))
                            }
                            Err(broadcast::error::TryRecvError::Closed) => {
                                Err(broadcast::error::RecvError::Closed)
                            }
                            Err(broadcast::error::TryRecvError::Empty) => break,
                        };
                    }
                    let changed = if let Some(missed) = lagged {
                        warn!(missed, "search index fell behind the directory, comparing it with every country");
                        set_all_routes(&directory, &store).await;
                        self.apply(&directory, &store, Batch::Everything).await
                    } else {
                        self.apply(&directory, &store, Batch::Changes(batch)).await
                    };
                    if changed {
                        last = Instant::now();
                        if !dirty {
                            first = last;
                        }
                        dirty = true;
                    }
                }
                _ = tokio::time::sleep_until(commit_at), if dirty => {
                    let index = Arc::clone(&self.index);
                    match tokio::task::spawn_blocking(move || index.commit()).await {
                        Ok(Ok(())) => dirty = false,
                        Ok(Err(err)) => warn!(error = %err, "search index commit failed"),
                        Err(err) => warn!(error = %err, "search index commit panicked"),
                    }
                }
            }
        }
    }

    /// Applies changes, in order, in one blocking call, then writes their
    /// routes; `true` if the index needs a commit.
    async fn apply(&self, directory: &Directory, store: &Store, batch: Batch) -> bool {
        let index = Arc::clone(&self.index);
        let indexed = Arc::clone(&self.indexed);
        let directory = directory.clone();
        let work = move || {
            let mut indexed = indexed.lock().unwrap_or_else(|e| e.into_inner());
            let mut routes = Vec::new();
            let mut edits: Vec<IndexEdit> = Vec::new();
            let mut reloaded = Vec::new();
            match batch {
                Batch::Everything => {
                    for country in Country::ALL {
                        let entries = entries_of(&directory, country);
                        indexed.diff(country, entries, &mut edits, &mut routes);
                    }
                }
                Batch::Changes(changes) => {
                    for change in changes {
                        match change {
                            DirectoryChange::AuthorityUpserted(authority) => {
                                routes.push((party_of(&authority), Some(authority.node.clone())));
                                let entry = authority_entry(&authority);
                                indexed.note(&entry);
                                edits.push(IndexEdit::Upsert(Box::new(entry)));
                            }
                            DirectoryChange::AuthorityRemoved { country, id } => {
                                routes.push((
                                    Party {
                                        authority: id,
                                        country,
                                    },
                                    None,
                                ));
                                let id = authority_search_id(country, id);
                                indexed.forget(country, &id);
                                edits.push(IndexEdit::Remove(id));
                            }
                            DirectoryChange::RegisterUpserted(register) => {
                                let entry = register_entry(&register);
                                indexed.note(&entry);
                                edits.push(IndexEdit::Upsert(Box::new(entry)));
                            }
                            DirectoryChange::RegisterRemoved { country, id } => {
                                let id = register_search_id(country, &id);
                                indexed.forget(country, &id);
                                edits.push(IndexEdit::Remove(id));
                            }
                            DirectoryChange::CountryReloaded(country) => {
                                // Only this country, and only what differs.
                                routes.extend(
                                    directory
                                        .authorities_of(country)
                                        .into_iter()
                                        .map(|a| (party_of(&a), Some(a.node))),
                                );
                                let entries = entries_of(&directory, country);
                                indexed.diff(country, entries, &mut edits, &mut routes);
                                reloaded.push(country);
                            }
                            _ => {}
                        }
                    }
                }
            }
            drop(indexed);
            let written = edits.len();
            // One bad entry does not hold back the others.
            for edit in edits {
                let (id, result) = match edit {
                    IndexEdit::Upsert(entry) => (entry.id.clone(), index.upsert(&entry)),
                    IndexEdit::Remove(id) => {
                        let result = index.remove(&id);
                        (id, result)
                    }
                };
                if let Err(err) = result {
                    warn!(%id, error = %err, "search index update failed");
                }
            }
            if !reloaded.is_empty() {
                debug!(countries = ?reloaded, written, "countries reloaded into the search index");
            }
            (routes, written > 0)
        };
        let (routes, dirty) = match tokio::task::spawn_blocking(work).await {
            Ok(done) => done,
            Err(err) => {
                warn!(error = %err, "search index update panicked");
                return false;
            }
        };
        if let Err(err) = crate::routes::set_from_directory(store, routes).await {
            warn!(error = %err, "routes of the directory could not be stored");
        }
        dirty
    }
}

/// What [`DirectorySearch::apply`] brings into the index.
enum Batch {
    /// These changes of the feed, in order.
    Changes(Vec<DirectoryChange>),
    /// Every country as the directory holds it now (at start, or after the
    /// feed was missed).
    Everything,
}

fn party_of(authority: &PublishedAuthority) -> Party {
    Party {
        authority: authority.id,
        country: authority.country,
    }
}

/// Sets the route of every authority in the directory.
async fn set_all_routes(directory: &Directory, store: &Store) {
    let routes = directory
        .authorities()
        .into_iter()
        .map(|a| (party_of(&a), Some(a.node)))
        .collect();
    if let Err(err) = crate::routes::set_from_directory(store, routes).await {
        warn!(error = %err, "routes of the directory could not be stored");
    }
}

/// One change of the index.
enum IndexEdit {
    Upsert(Box<DirectoryEntry>),
    Remove(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use imi_protocol::NodeAddress;

    fn authorities(country: Country, count: usize) -> Vec<PublishedAuthority> {
        let node: NodeAddress = format!("{country}/{}-1", country.code().to_lowercase())
            .parse()
            .unwrap();
        (0..count)
            .map(|i| PublishedAuthority {
                id: AuthorityId::from_parts(1, i as u128 + 1),
                country,
                names: [(Language::En, format!("Authority {i}"))].into(),
                competences: vec![],
                contact: Default::default(),
                languages: [Language::En].into(),
                node: node.clone(),
            })
            .collect()
    }

    fn entries(authorities: &[PublishedAuthority]) -> Vec<DirectoryEntry> {
        authorities.iter().map(authority_entry).collect()
    }

    #[test]
    fn a_country_arriving_whole_rewrites_only_its_own_changed_entries() {
        let portugal = authorities(Country::Pt, 5);
        let finland = authorities(Country::Fi, 5);
        let mut all = entries(&portugal);
        all.extend(entries(&finland));
        let mut indexed = Indexed::of(&all);

        // Portugal's document arrives whole: one entry renamed, one gone,
        // one new, the rest as they were.
        let mut now = portugal.clone();
        now[0].names.insert(Language::En, "Renamed".into());
        let gone = now.remove(1);
        let mut added = authorities(Country::Pt, 6).pop().unwrap();
        added.id = AuthorityId::from_parts(2, 1);
        now.push(added.clone());
        let (mut edits, mut routes) = (Vec::new(), Vec::new());
        indexed.diff(Country::Pt, entries(&now), &mut edits, &mut routes);

        let mut upserted: Vec<String> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        for edit in edits {
            match edit {
                IndexEdit::Upsert(entry) => upserted.push(entry.id),
                IndexEdit::Remove(id) => removed.push(id),
            }
        }
        upserted.sort();
        let mut expected = vec![
            authority_search_id(Country::Pt, now[0].id),
            authority_search_id(Country::Pt, added.id),
        ];
        expected.sort();
        assert_eq!(upserted, expected);
        assert_eq!(removed, vec![authority_search_id(Country::Pt, gone.id)]);
        // The authority that left loses its route.
        assert_eq!(
            routes,
            vec![(
                Party {
                    authority: gone.id,
                    country: Country::Pt
                },
                None
            )]
        );
        // Finland is not touched, and the same document again changes nothing.
        let (mut edits, mut routes) = (Vec::new(), Vec::new());
        indexed.diff(Country::Fi, entries(&finland), &mut edits, &mut routes);
        indexed.diff(Country::Pt, entries(&now), &mut edits, &mut routes);
        assert!(edits.is_empty() && routes.is_empty());
    }

    #[test]
    fn the_same_id_in_two_countries_is_two_search_entries() {
        let portuguese = authorities(Country::Pt, 1).remove(0);
        let spanish = PublishedAuthority {
            country: Country::Es,
            node: "ES/es-1".parse().unwrap(),
            ..portuguese.clone()
        };
        let (pt, es) = (authority_entry(&portuguese), authority_entry(&spanish));
        assert_ne!(pt.id, es.id);
        assert_eq!(pt.id, format!("PT/{}", portuguese.id));
    }
}
