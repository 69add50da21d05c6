//! Keeps the search index and the routes in step with the replicated
//! directory.
//!
//! The directory in the store is the truth; the Tantivy index under
//! `data/search` is derived from it. At start the index is rebuilt from the
//! directory (12,600 authorities take well under a second), then every change
//! the directory announces is applied: searchable within a second (changes
//! are committed in batches every 200 ms). Indexing and searches run on the
//! blocking pool, never on the async executor. The same feed keeps the
//! routes table (which node serves which authority) up to date for cases.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use imi_protocol::{Catalogue, Language};
use imi_search::{DirectoryEntry, EntryKind, Query, SearchIndex, SearchResults};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::directory::{Directory, DirectoryChange, PublishedAuthority, Register};
use crate::store::Store;

/// How often pending index changes are committed.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
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
}

impl std::fmt::Debug for DirectorySearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySearch")
            .field("entries", &self.index.len())
            .finish()
    }
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
        id: authority.id.to_string(),
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
        id: format!("register:{}", register.id),
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

fn all_entries(directory: &Directory) -> Vec<DirectoryEntry> {
    let mut entries: Vec<DirectoryEntry> = directory
        .authorities()
        .iter()
        .map(authority_entry)
        .collect();
    entries.extend(directory.registers().iter().map(register_entry));
    entries
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
            let report = index
                .rebuild(entries)
                .map_err(|e| IndexError::Unusable(e.to_string()))?;
            info!(entries = index.len(), %reason, ?report, "search index rebuilt from the directory");
            Ok(DirectorySearch {
                index: Arc::new(index),
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
        let mut commit = tokio::time::interval(COMMIT_EVERY);
        commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut dirty = false;
        // Routes of what is already published.
        set_all_routes(&directory, &store).await;
        loop {
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
                    if let Some(missed) = lagged {
                        warn!(missed, "search index fell behind the directory, rebuilding");
                        self.reload(&directory, &store).await;
                    } else {
                        dirty |= self.apply(&directory, &store, batch).await;
                    }
                }
                _ = commit.tick(), if dirty => {
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

    async fn rebuild(&self, directory: &Directory) {
        let index = Arc::clone(&self.index);
        let entries = all_entries(directory);
        match tokio::task::spawn_blocking(move || index.rebuild(entries)).await {
            Ok(Ok(report)) => debug!(?report, "search index rebuilt"),
            Ok(Err(err)) => warn!(error = %err, "search index rebuild failed"),
            Err(err) => warn!(error = %err, "search index rebuild panicked"),
        }
    }

    /// Sets every route again and rebuilds the index (changes were missed).
    async fn reload(&self, directory: &Directory, store: &Store) {
        set_all_routes(directory, store).await;
        self.rebuild(directory).await;
    }

    /// Applies changes, in order; `true` if the index needs a commit.
    async fn apply(
        &self,
        directory: &Directory,
        store: &Store,
        changes: Vec<DirectoryChange>,
    ) -> bool {
        let mut routes = Vec::new();
        let mut edits: Vec<IndexEdit> = Vec::new();
        let mut rebuild = false;
        for change in changes {
            match change {
                DirectoryChange::AuthorityUpserted(authority) => {
                    routes.push((authority.id, Some(authority.node.clone())));
                    edits.push(IndexEdit::Upsert(Box::new(authority_entry(&authority))));
                }
                DirectoryChange::AuthorityRemoved { id, .. } => {
                    routes.push((id, None));
                    edits.push(IndexEdit::Remove(id.to_string()));
                }
                DirectoryChange::RegisterUpserted(register) => {
                    edits.push(IndexEdit::Upsert(Box::new(register_entry(&register))));
                }
                DirectoryChange::RegisterRemoved { id, .. } => {
                    edits.push(IndexEdit::Remove(format!("register:{id}")));
                }
                DirectoryChange::CountryReloaded(country) => {
                    routes.extend(
                        directory
                            .authorities_of(country)
                            .into_iter()
                            .map(|a| (a.id, Some(a.node))),
                    );
                    // Removals are not announced one by one here: rebuild.
                    rebuild = true;
                }
                _ => {}
            }
        }
        if let Err(err) = crate::cases::set_routes(store, routes).await {
            warn!(error = %err, "routes of the directory could not be stored");
        }
        if rebuild {
            // The rebuild reads the directory as it is now, edits included.
            self.rebuild(directory).await;
            return false;
        }
        if edits.is_empty() {
            return false;
        }
        let index = Arc::clone(&self.index);
        blocking(move || {
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
            Ok(())
        })
        .await
    }
}

/// Sets the route of every authority in the directory.
async fn set_all_routes(directory: &Directory, store: &Store) {
    let routes = directory
        .authorities()
        .into_iter()
        .map(|a| (a.id, Some(a.node)))
        .collect();
    if let Err(err) = crate::cases::set_routes(store, routes).await {
        warn!(error = %err, "routes of the directory could not be stored");
    }
}

/// One change of the index.
enum IndexEdit {
    Upsert(Box<DirectoryEntry>),
    Remove(String),
}

async fn blocking(work: impl FnOnce() -> Result<(), String> + Send + 'static) -> bool {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => true,
        Ok(Err(err)) => {
            warn!(error = %err, "search index update failed");
            false
        }
        Err(err) => {
            warn!(error = %err, "search index update panicked");
            false
        }
    }
}
