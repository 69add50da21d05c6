//! The directory index: opening, writing, searching.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use imi_protocol::{AreaKey, Catalogue, Country, Language};
use rustc_hash::FxHashMap;
use tantivy::collector::{Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::indexer::LogMergePolicy;
use tantivy::query::{
    AllQuery, Bm25StatisticsProvider, BooleanQuery, Occur, Query as TantivyQuery,
};
use tantivy::schema::{Facet, Field, Value};
use tantivy::store::Compressor;
use tantivy::tokenizer::PreTokenizedString;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexWriter, Order, ReloadPolicy, Score,
    Searcher, SegmentReader, TantivyDocument, TantivyError, Term,
};
use tracing::{debug, info, warn};

use crate::analysis::{
    Analyzers, FOLDED, PREFIXES, folded_analyzer, prefix_analyzer, query_prefix,
};
use crate::entry::{DirectoryEntry, EntryKind};
use crate::error::{CommitError, OpenError, RebuildError, SearchError, WriteError};
use crate::highlight::{Marker, snippet};
use crate::query::{
    Facets, Hit, MAX_LIMIT, MAX_OFFSET, MAX_TEXT_BYTES, MAX_WORDS, MatchedCompetence, Query,
    SearchResults,
};
use crate::ranking::{
    MIN_REQUIRED_CHARS, PlannedWord, Strictness, WordTerms, filter_query, prior, prior_score,
    text_query,
};
use crate::schema::{self, Fields, SCHEMA_VERSION};
use crate::vocabulary::{Competence, ConceptKind, QueryWord, Vocabulary, bare};

/// The file next to the index that records its schema version.
pub const VERSION_FILE: &str = "imi-search.version";
/// Tantivy's own metadata file, present in every index directory.
const TANTIVY_META: &str = "meta.json";
/// Memory for the index writer, shared by its threads.
const WRITER_MEMORY: usize = 20_000_000;
/// Indexing threads: one indexes the whole directory fast enough, with the
/// least memory, and leaves the other core to searches.
const WRITER_THREADS: usize = 1;
/// Stored documents are kept in blocks of this many bytes, uncompressed: a
/// hit reads one small block instead of decompressing a large one (the whole
/// directory's stored fields are a few megabytes).
const DOC_STORE_BLOCK_BYTES: usize = 4_096;
/// Analyzer sets kept for reuse, about one per concurrent search.
const MAX_POOLED_ANALYZERS: usize = 16;
/// Blocks of stored documents kept in memory (2 MB).
const DOC_STORE_CACHE_BLOCKS: usize = 512;
/// Segments smaller than this many entries are merged as if they had this
/// many. Tantivy's default (10,000) puts the whole directory's segment
/// (12,600 entries) in one level with every small segment a commit makes,
/// so every eighth commit merged the whole directory again (on a node
/// receiving the directory piece by piece, and every eighth edit after).
/// With 1,000, small segments merge among themselves and a large one only
/// with others of its size.
const MERGE_MIN_LAYER_SIZE: u32 = 1_000;

fn index_settings() -> IndexSettings {
    IndexSettings {
        docstore_compression: Compressor::None,
        docstore_blocksize: DOC_STORE_BLOCK_BYTES,
        ..IndexSettings::default()
    }
}

/// Why the index must be rebuilt from the directory before it is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildReason {
    /// There was no index yet (or a rebuild never finished).
    Missing,
    /// The index was written with another schema version.
    SchemaChanged {
        /// The version found on disk.
        found: String,
    },
    /// The index could not be read; it has been cleared.
    Corrupt {
        /// What was wrong.
        detail: String,
    },
}

impl std::fmt::Display for RebuildReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebuildReason::Missing => f.write_str("there is no complete index yet"),
            RebuildReason::SchemaChanged { found } => write!(
                f,
                "the index has schema version {found:?}, this build uses {SCHEMA_VERSION}"
            ),
            RebuildReason::Corrupt { detail } => write!(f, "the index was unreadable ({detail})"),
        }
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RebuildReport {
    /// Entries indexed.
    pub indexed: usize,
    /// Entries left out, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// The search index of the directory of authorities and registers.
///
/// Thread-safe: searches run concurrently; writes are serialised. Changes
/// become visible to searches when [`SearchIndex::commit`] returns.
pub struct SearchIndex {
    fields: Fields,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    vocabulary: Vocabulary,
    analyzers: Analyzers,
    /// Analyzers ready for reuse by searches, so that each search does not
    /// clone every chain.
    analyzer_pool: Mutex<Vec<Analyzers>>,
    /// Area of each procedure and profession, by index term.
    implied_areas: HashMap<String, AreaKey>,
    /// Competence concepts by index term.
    concept_by_term: HashMap<String, u32>,
    /// The index directory, `None` in memory.
    path: Option<PathBuf>,
    rebuild: Mutex<Option<RebuildReason>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("path", &self.path)
            .field("vocabulary", &self.vocabulary)
            .finish_non_exhaustive()
    }
}

fn expected_marker() -> String {
    format!("imi-search schema {SCHEMA_VERSION}\n")
}

fn index_error(path: &Path, source: TantivyError) -> OpenError {
    match source {
        TantivyError::LockFailure(..) => OpenError::Locked {
            path: path.to_owned(),
        },
        source => OpenError::Index {
            path: path.to_owned(),
            source,
        },
    }
}

fn dir_error(path: &Path, source: std::io::Error) -> OpenError {
    OpenError::Directory {
        path: path.to_owned(),
        source,
    }
}

/// Removes everything in `path`, after checking that it is an index
/// directory (it has the version marker or Tantivy's metadata) or empty.
fn clear_index_dir(path: &Path) -> Result<(), OpenError> {
    let entries: Vec<_> = fs::read_dir(path)
        .map_err(|e| dir_error(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| dir_error(path, e))?;
    if entries.is_empty() {
        return Ok(());
    }
    let ours = entries
        .iter()
        .any(|e| e.file_name() == VERSION_FILE || e.file_name() == TANTIVY_META);
    if !ours {
        return Err(OpenError::NotAnIndex {
            path: path.to_owned(),
        });
    }
    for entry in entries {
        let file_type = entry.file_type().map_err(|e| dir_error(path, e))?;
        let result = if file_type.is_dir() {
            fs::remove_dir_all(entry.path())
        } else {
            fs::remove_file(entry.path())
        };
        result.map_err(|e| dir_error(path, e))?;
    }
    Ok(())
}

/// Every file footer of Tantivy is at least this long; shorter files make
/// Tantivy 0.27 panic while reading the footer, so they are caught first.
const MIN_SEGMENT_FILE_BYTES: u64 = 8;

/// Opens the index in `path` as it is, checking that it can be read: its
/// schema is this build's, every segment file is whole (checksums) and every
/// segment opens. A panic inside Tantivy on damaged data counts as damage.
fn open_existing(path: &Path, schema: &tantivy::schema::Schema) -> Result<Index, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| check_and_open(path, schema)))
        .unwrap_or_else(|_| Err("reading it panicked".to_owned()))
}

fn check_and_open(path: &Path, schema: &tantivy::schema::Schema) -> Result<Index, String> {
    let index = Index::open_in_dir(path).map_err(|e| e.to_string())?;
    if index.schema() != *schema {
        return Err("its fields differ from this build's".to_owned());
    }
    let metas = index.load_metas().map_err(|e| e.to_string())?;
    for file in metas.list_segment_files() {
        match fs::metadata(path.join(&file)) {
            Ok(meta) if meta.len() < MIN_SEGMENT_FILE_BYTES => {
                return Err(format!("{} is truncated", file.display()));
            }
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(format!("{}: {err}", file.display())),
        }
    }
    let damaged = index.validate_checksum().map_err(|e| e.to_string())?;
    if let Some(file) = damaged.iter().next() {
        return Err(format!("{} fails its checksum", file.display()));
    }
    index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(|e| e.to_string())?;
    Ok(index)
}

impl SearchIndex {
    /// An index in memory, empty, for tests and tools.
    pub fn create_in_ram(catalogue: &Catalogue) -> Result<SearchIndex, OpenError> {
        let (schema, fields) = schema::build();
        let index = Index::builder()
            .schema(schema)
            .settings(index_settings())
            .create_in_ram()
            .map_err(|e| index_error(Path::new(""), e))?;
        SearchIndex::assemble(index, fields, catalogue, None, None)
    }

    /// Opens the index kept in `path`, creating the directory if needed.
    ///
    /// When there is no complete index there, or it has another schema
    /// version, or it cannot be read, the directory is cleared and an empty
    /// index created; [`SearchIndex::rebuild_reason`] then says why, and the
    /// caller must [`SearchIndex::rebuild`] it from the directory. Until a
    /// rebuild has committed, every later open asks for one again.
    ///
    /// A directory that holds other files and no index is never cleared.
    pub fn open_in_dir(
        path: impl AsRef<Path>,
        catalogue: &Catalogue,
    ) -> Result<SearchIndex, OpenError> {
        let path = path.as_ref();
        fs::create_dir_all(path).map_err(|e| dir_error(path, e))?;
        let (schema, fields) = schema::build();
        let marker = path.join(VERSION_FILE);
        let mut reason = match fs::read_to_string(&marker) {
            Ok(found) if found == expected_marker() => None,
            Ok(found) => Some(RebuildReason::SchemaChanged {
                found: found.trim().chars().take(80).collect(),
            }),
            Err(err) if err.kind() == ErrorKind::NotFound => Some(RebuildReason::Missing),
            Err(err) if err.kind() == ErrorKind::InvalidData => {
                Some(RebuildReason::SchemaChanged {
                    found: "unreadable".to_owned(),
                })
            }
            Err(err) => return Err(dir_error(&marker, err)),
        };
        let mut index = None;
        if reason.is_none() {
            match open_existing(path, &schema) {
                Ok(existing) => index = Some(existing),
                Err(detail) => reason = Some(RebuildReason::Corrupt { detail }),
            }
        }
        let index = match index {
            Some(index) => index,
            None => {
                if let Some(reason) = &reason {
                    info!(path = %path.display(), %reason, "search index will be rebuilt");
                }
                clear_index_dir(path)?;
                Index::builder()
                    .schema(schema)
                    .settings(index_settings())
                    .create_in_dir(path)
                    .map_err(|e| index_error(path, e))?
            }
        };
        SearchIndex::assemble(index, fields, catalogue, Some(path.to_owned()), reason)
    }

    fn assemble(
        index: Index,
        fields: Fields,
        catalogue: &Catalogue,
        path: Option<PathBuf>,
        rebuild: Option<RebuildReason>,
    ) -> Result<SearchIndex, OpenError> {
        let where_ = path.clone().unwrap_or_default();
        index.tokenizers().register(FOLDED, folded_analyzer());
        index.tokenizers().register(PREFIXES, prefix_analyzer());
        let writer: IndexWriter = index
            .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY)
            .map_err(|e| index_error(&where_, e))?;
        let mut merges = LogMergePolicy::default();
        merges.set_min_layer_size(MERGE_MIN_LAYER_SIZE);
        writer.set_merge_policy(Box::new(merges));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS)
            .try_into()
            .map_err(|e| index_error(&where_, e))?;
        let vocabulary = Vocabulary::new(catalogue);
        let mut implied_areas = HashMap::new();
        for procedure in catalogue.procedures() {
            implied_areas.insert(
                Competence::Procedure(procedure.key.clone()).index_term(),
                procedure.area.clone(),
            );
        }
        for profession in catalogue.professions() {
            implied_areas.insert(
                Competence::Profession(profession.key.clone()).index_term(),
                profession.area.clone(),
            );
        }
        let concept_by_term = vocabulary.competence_terms();
        Ok(SearchIndex {
            fields,
            reader,
            writer: Mutex::new(writer),
            vocabulary,
            analyzers: Analyzers::new(),
            analyzer_pool: Mutex::new(Vec::new()),
            implied_areas,
            concept_by_term,
            path,
            rebuild: Mutex::new(rebuild),
        })
    }

    /// Why the index must be rebuilt before it is complete, or `None` when it
    /// is up to date.
    pub fn rebuild_reason(&self) -> Option<RebuildReason> {
        self.rebuild
            .lock()
            .map(|reason| reason.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// How many entries committed searches see.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether committed searches see no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn writer(&self) -> Result<MutexGuard<'_, IndexWriter>, WriteError> {
        self.writer.lock().map_err(|_| WriteError::Poisoned)
    }

    /// Adds `entry`, or replaces the entry with the same id. Visible to
    /// searches after the next [`SearchIndex::commit`].
    pub fn upsert(&self, entry: &DirectoryEntry) -> Result<(), WriteError> {
        let document = self.document(entry, &mut self.analyzers.clone())?;
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.id, &entry.id));
        writer.add_document(document)?;
        Ok(())
    }

    /// Removes the entry with `id`, if there is one. Visible to searches after
    /// the next [`SearchIndex::commit`].
    pub fn remove(&self, id: &str) -> Result<(), WriteError> {
        let writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.id, id));
        Ok(())
    }

    /// Makes every change since the last commit durable and visible to
    /// searches. On failure the pending changes are dropped.
    pub fn commit(&self) -> Result<(), CommitError> {
        let mut writer = self.writer.lock().map_err(|_| CommitError::Poisoned)?;
        if let Err(err) = writer.commit() {
            warn!(error = %err, "search index commit failed, rolling back");
            // The error that matters is the commit's.
            let _ = writer.rollback();
            return Err(err.into());
        }
        drop(writer);
        self.reader.reload()?;
        Ok(())
    }

    /// Replaces the whole content of the index with `entries` and commits.
    ///
    /// Entries that cannot be indexed (no name, empty id) are left out and
    /// reported; the others are indexed. Records the schema version, so the
    /// next open needs no rebuild.
    pub fn rebuild<I>(&self, entries: I) -> Result<RebuildReport, RebuildError>
    where
        I: IntoIterator,
        I::Item: Borrow<DirectoryEntry>,
    {
        let started = std::time::Instant::now();
        let mut report = RebuildReport::default();
        {
            let mut writer = self.writer.lock().map_err(|_| WriteError::Poisoned)?;
            writer.delete_all_documents().map_err(WriteError::from)?;
            let mut analyzers = self.analyzers.clone();
            for entry in entries {
                let entry = entry.borrow();
                match self.document(entry, &mut analyzers) {
                    Ok(document) => {
                        if let Err(err) = writer.add_document(document) {
                            let _ = writer.rollback();
                            return Err(WriteError::from(err).into());
                        }
                        report.indexed += 1;
                    }
                    Err(err) => {
                        warn!(id = %entry.id.chars().take(80).collect::<String>(), error = %err, "entry left out of the search index");
                        report.skipped.push((entry.id.clone(), err.to_string()));
                    }
                }
            }
            if let Err(err) = writer.commit() {
                let _ = writer.rollback();
                return Err(CommitError::from(err).into());
            }
            // One segment: every term is looked up once per search, not once
            // per indexing thread's segment.
            let segments = writer
                .index()
                .searchable_segment_ids()
                .map_err(CommitError::from)?;
            if segments.len() > 1 {
                writer.merge(&segments).wait().map_err(CommitError::from)?;
            }
        }
        self.reader.reload().map_err(CommitError::from)?;
        if let Some(path) = &self.path {
            let marker = path.join(VERSION_FILE);
            fs::write(&marker, expected_marker()).map_err(|source| CommitError::Marker {
                path: marker,
                source,
            })?;
        }
        if let Ok(mut reason) = self.rebuild.lock() {
            *reason = None;
        }
        info!(
            indexed = report.indexed,
            skipped = report.skipped.len(),
            ms = started.elapsed().as_millis() as u64,
            "search index rebuilt"
        );
        Ok(report)
    }

    fn document(
        &self,
        entry: &DirectoryEntry,
        analyzers: &mut Analyzers,
    ) -> Result<TantivyDocument, WriteError> {
        entry.check().map_err(|reason| WriteError::InvalidEntry {
            id: entry.id.chars().take(80).collect(),
            reason,
        })?;
        let f = &self.fields;
        let mut doc = TantivyDocument::new();
        doc.add_text(f.id, &entry.id);
        doc.add_text(f.kind, entry.kind.as_str());
        doc.add_text(f.country, entry.country.code());
        doc.add_facet(f.facet, Facet::from_path(["country", entry.country.code()]));
        for (i, (language, name)) in entry.names.iter().enumerate() {
            doc.add_text(f.name, name);
            doc.add_text(f.name_lang, language.tag());
            doc.add_text(f.name_prefix, name);
            let normalized = analyzers.normalized(name);
            if i == 0 {
                doc.add_text(f.sort, &normalized);
            }
            doc.add_text(f.name_exact, normalized);
            let mut stems = analyzers.stems_in(*language, name);
            for stem in &mut stems {
                stem.text = bare(&stem.text).to_owned();
            }
            if !stems.is_empty() {
                doc.add_pre_tokenized_text(
                    f.name_stem,
                    PreTokenizedString {
                        text: name.clone(),
                        tokens: stems,
                    },
                );
            }
        }
        let others = entry
            .other_competences
            .iter()
            .chain(entry.city.iter())
            .chain(entry.region.iter());
        for text in others {
            doc.add_text(f.other, text);
        }
        if let Some(city) = &entry.city {
            doc.add_text(f.city, city);
        }
        let mut areas: Vec<&AreaKey> = entry.areas.iter().collect();
        let mut terms = HashSet::new();
        for key in &entry.procedures {
            let term = Competence::Procedure(key.clone()).index_term();
            areas.extend(self.implied_areas.get(&term));
            terms.insert(term);
        }
        for key in &entry.professions {
            let term = Competence::Profession(key.clone()).index_term();
            areas.extend(self.implied_areas.get(&term));
            terms.insert(term);
        }
        let mut seen_areas = HashSet::new();
        for area in areas {
            if seen_areas.insert(area) {
                terms.insert(Competence::Area(area.clone()).index_term());
                doc.add_facet(f.facet, Facet::from_path(["area", area.as_str()]));
            }
        }
        let mut terms: Vec<String> = terms.into_iter().collect();
        terms.sort_unstable();
        let specific = entry.procedures.len() + entry.professions.len() + entry.areas.len();
        doc.add_u64(f.prior, prior(entry.kind == EntryKind::Authority, specific));
        for term in terms {
            doc.add_text(f.competence, term);
        }
        Ok(doc)
    }

    /// Searches the committed index.
    pub fn search(&self, query: &Query) -> Result<SearchResults, SearchError> {
        if query.limit > MAX_LIMIT || query.offset > MAX_OFFSET {
            return Err(SearchError::Paging {
                offset: query.offset,
                limit: query.limit,
                max: MAX_LIMIT,
                max_offset: MAX_OFFSET,
            });
        }
        if query.text.len() > MAX_TEXT_BYTES {
            return Err(SearchError::TooLong {
                len: query.text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let mut analyzers = self.take_analyzers();
        let result = self.search_with(query, &mut analyzers);
        self.give_back(analyzers);
        result
    }

    fn take_analyzers(&self) -> Analyzers {
        self.analyzer_pool
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_else(|| self.analyzers.clone())
    }

    fn give_back(&self, analyzers: Analyzers) {
        if let Ok(mut pool) = self.analyzer_pool.lock()
            && pool.len() < MAX_POOLED_ANALYZERS
        {
            pool.push(analyzers);
        }
    }

    fn search_with(
        &self,
        query: &Query,
        analyzers: &mut Analyzers,
    ) -> Result<SearchResults, SearchError> {
        let searcher = self.reader.searcher();
        let statistics = Statistics::new(&searcher);
        let words = query_words(analyzers, &query.text);
        let interpretation = self.vocabulary.interpret(&words);

        // Country names in the text restrict the results, unless the
        // searcher chose countries explicitly.
        let mut country_words = HashSet::new();
        let mut countries_in_text = Vec::new();
        if query.filters.countries.is_empty() {
            for (country, indices) in &interpretation.countries {
                if !countries_in_text.contains(country) {
                    countries_in_text.push(*country);
                }
                country_words.extend(indices.iter().copied());
            }
        }

        let terms: Vec<WordTerms> = words
            .iter()
            .map(|word| self.word_terms(&statistics, word))
            .collect::<Result<_, _>>()?;
        let competences: Vec<Vec<(u32, f32)>> = interpretation
            .competences
            .iter()
            .map(|list| {
                let mut existing = Vec::with_capacity(list.len());
                for &(concept, weight) in list {
                    let term = &self.vocabulary.concept(concept).term;
                    if statistics.doc_freq(&Term::from_field_text(self.fields.competence, term))?
                        > 0
                    {
                        existing.push((concept, weight));
                    }
                }
                Ok(existing)
            })
            .collect::<Result<_, SearchError>>()?;
        let required = words
            .iter()
            .enumerate()
            .filter(|(i, w)| !country_words.contains(i) && w.chars() >= MIN_REQUIRED_CHARS)
            .count();

        // Every word first; any word when that finds nothing (pointless with
        // one word); without the country filter when that still finds nothing.
        let mut attempts = vec![(Strictness::AllWords, true)];
        if required > 1 {
            attempts.push((Strictness::AnyWord, true));
        }
        if !countries_in_text.is_empty() {
            attempts.push((Strictness::AnyWord, false));
        }
        let mut last = None;
        for (strictness, use_countries) in attempts {
            let plan = Plan {
                words: &words,
                competences: &competences,
                terms: &terms,
                skip: if use_countries {
                    &country_words
                } else {
                    &HashSet::new()
                },
                countries: if use_countries {
                    &countries_in_text
                } else {
                    &[]
                },
                strictness,
            };
            let outcome = self.run(&statistics, query, &plan, analyzers)?;
            let found = outcome.total > 0;
            let browsing = outcome.browsing;
            last = Some((
                outcome,
                if use_countries {
                    countries_in_text.clone()
                } else {
                    Vec::new()
                },
            ));
            if found || browsing {
                break;
            }
        }
        let Some((outcome, countries_in_text)) = last else {
            unreachable!("at least one attempt is always made")
        };
        Ok(SearchResults {
            total: outcome.total,
            hits: outcome.hits,
            facets: outcome.facets,
            countries_in_text,
        })
    }

    /// Which index terms of `word` exist, and whether it is unknown.
    fn word_terms(
        &self,
        statistics: &Statistics<'_>,
        word: &QueryWord,
    ) -> Result<WordTerms, SearchError> {
        let f = &self.fields;
        let exists = |field, text: &str| -> Result<bool, SearchError> {
            Ok(statistics.doc_freq(&Term::from_field_text(field, text))? > 0)
        };
        let mut terms = WordTerms {
            name: exists(f.name, &word.folded)?,
            other: exists(f.other, &word.folded)?,
            ..WordTerms::default()
        };
        for stem in &word.bare_stems {
            if exists(f.name_stem, stem)? {
                terms.stems.push(stem.clone());
            }
        }
        if let Some(prefix) = query_prefix(&word.folded)
            && exists(f.name_prefix, prefix)?
        {
            terms.prefix = Some(prefix.to_owned());
        }
        terms.fuzzy =
            !(terms.name || terms.other || !terms.stems.is_empty() || self.vocabulary.knows(word));
        Ok(terms)
    }

    fn run(
        &self,
        statistics: &Statistics<'_>,
        query: &Query,
        plan: &Plan<'_>,
        analyzers: &mut Analyzers,
    ) -> Result<Outcome, SearchError> {
        let f = &self.fields;
        let searcher = statistics.searcher;
        let mut planned = Vec::new();
        for (i, word) in plan.words.iter().enumerate() {
            if plan.skip.contains(&i) {
                continue;
            }
            let competences = plan.competences[i]
                .iter()
                .map(|(concept, weight)| (self.vocabulary.concept(*concept).term.as_str(), *weight))
                .collect();
            planned.push(PlannedWord {
                word,
                terms: &plan.terms[i],
                competences,
            });
        }
        let exact_names = exact_names(plan.words, plan.skip);
        let text = text_query(f, &planned, &exact_names, plan.strictness);
        let mut filters = query.filters.clone();
        filters.countries.extend(plan.countries.iter().copied());
        let filter = filter_query(f, &filters);
        let browsing = text.is_none();
        let tantivy_query: Box<dyn TantivyQuery> = match (text, filter) {
            (None, None) => Box::new(AllQuery),
            (None, Some(filter)) => filter,
            (Some(text), None) => text,
            (Some(text), Some(filter)) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (Occur::Must, filter),
            ])),
        };
        let mut facets = FacetCollector::for_field("facet");
        facets.add_facet("/country");
        facets.add_facet("/area");

        let mut found: Vec<(f32, DocAddress)> = Vec::new();
        let (total, facet_counts) = if query.limit == 0 {
            searcher.search(&tantivy_query, &(Count, facets))?
        } else if browsing {
            let top = TopDocs::with_limit(query.limit)
                .and_offset(query.offset)
                .order_by_string_fast_field("sort", Order::Asc);
            let (top, total, counts) = searcher.search_with_statistics_provider(
                &tantivy_query,
                &(top, Count, facets),
                statistics,
            )?;
            found = top.into_iter().map(|(_, address)| (0.0, address)).collect();
            (total, counts)
        } else {
            let top = TopDocs::with_limit(query.limit)
                .and_offset(query.offset)
                .tweak_score(|segment: &SegmentReader| {
                    let prior = segment
                        .fast_fields()
                        .u64("prior")
                        .map(|column| column.first_or_default_col(0));
                    move |doc: DocId, score: Score| match &prior {
                        Ok(column) => score + prior_score(column.get_val(doc)),
                        Err(_) => score,
                    }
                });
            let (top, total, counts) = searcher.search_with_statistics_provider(
                &tantivy_query,
                &(top, Count, facets),
                statistics,
            )?;
            found = top;
            (total, counts)
        };
        debug!(
            words = planned.len(),
            total,
            strictness = ?plan.strictness,
            "search run"
        );

        let queried: HashSet<u32> = plan
            .competences
            .iter()
            .enumerate()
            .filter(|(i, _)| !plan.skip.contains(i))
            .flat_map(|(_, list)| list.iter().map(|(concept, _)| *concept))
            .collect();
        let markers: Vec<Marker<'_>> = plan
            .words
            .iter()
            .enumerate()
            .filter(|(i, _)| !plan.skip.contains(i))
            .map(|(i, word)| Marker {
                word,
                fuzzy: plan.terms[i].fuzzy,
            })
            .collect();
        let mut hits = Vec::with_capacity(found.len());
        for (score, address) in found {
            let doc: TantivyDocument = searcher.doc(address)?;
            if let Some(hit) = self.hit(&doc, score, query.language, &markers, &queried, analyzers)
            {
                hits.push(hit);
            }
        }
        Ok(Outcome {
            total,
            hits,
            facets: facets_from(&facet_counts),
            browsing,
        })
    }

    fn hit(
        &self,
        doc: &TantivyDocument,
        score: f32,
        language: Language,
        markers: &[Marker<'_>],
        queried: &HashSet<u32>,
        analyzers: &mut Analyzers,
    ) -> Option<Hit> {
        let f = &self.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let id = text(f.id)?;
        let kind = EntryKind::parse(&text(f.kind)?)?;
        let country: Country = text(f.country)?.parse().ok()?;
        let names: Vec<&str> = doc.get_all(f.name).filter_map(|v| v.as_str()).collect();
        let languages: Vec<Option<Language>> = doc
            .get_all(f.name_lang)
            .map(|v| v.as_str().and_then(|tag| tag.parse().ok()))
            .collect();
        let display = languages
            .iter()
            .position(|l| *l == Some(language))
            .unwrap_or(0);
        let display_name = (*names.get(display)?).to_owned();
        let display_language = languages
            .get(display)
            .copied()
            .flatten()
            .unwrap_or(language);

        // The display name, unless another name or a free-text competence
        // shows more of what matched.
        let mut best = snippet(
            analyzers,
            &display_name,
            languages.get(display).copied().flatten(),
            markers,
        );
        if best.1 == 0 {
            for (i, name) in names.iter().enumerate() {
                if i != display {
                    let candidate = snippet(
                        analyzers,
                        name,
                        languages.get(i).copied().flatten(),
                        markers,
                    );
                    if candidate.1 > best.1 {
                        best = candidate;
                    }
                }
            }
        }
        if best.1 == 0 {
            for other in doc.get_all(f.other).filter_map(|v| v.as_str()) {
                let candidate = snippet(analyzers, other, None, markers);
                if candidate.1 > best.1 {
                    best = candidate;
                }
            }
        }
        let snippet = best.0;

        let mut competences = Vec::new();
        for term in doc.get_all(f.competence).filter_map(|v| v.as_str()) {
            let Some(&concept) = self.concept_by_term.get(term) else {
                continue;
            };
            if !queried.contains(&concept) {
                continue;
            }
            let concept = self.vocabulary.concept(concept);
            if let ConceptKind::Competence(competence) = &concept.kind {
                competences.push(MatchedCompetence {
                    competence: competence.clone(),
                    label: concept.labels.get(language).to_owned(),
                });
            }
        }
        Some(Hit {
            id,
            kind,
            country,
            display_name,
            display_language,
            city: text(f.city),
            score,
            snippet,
            competences,
        })
    }
}

/// The statistics BM25 needs, remembered for the length of one search: the
/// same terms are looked up to prune the query, then to weigh it, and again
/// in a later attempt.
struct Statistics<'a> {
    searcher: &'a Searcher,
    doc_freqs: RefCell<FxHashMap<Term, u64>>,
    tokens: RefCell<FxHashMap<Field, u64>>,
}

impl<'a> Statistics<'a> {
    fn new(searcher: &'a Searcher) -> Self {
        Statistics {
            searcher,
            doc_freqs: RefCell::new(FxHashMap::default()),
            tokens: RefCell::new(FxHashMap::default()),
        }
    }
}

impl Bm25StatisticsProvider for Statistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if let Some(&tokens) = self.tokens.borrow().get(&field) {
            return Ok(tokens);
        }
        let tokens = self.searcher.total_num_tokens(field)?;
        self.tokens.borrow_mut().insert(field, tokens);
        Ok(tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        self.searcher.total_num_docs()
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(&freq) = self.doc_freqs.borrow().get(term) {
            return Ok(freq);
        }
        let freq = self.searcher.doc_freq(term)?;
        self.doc_freqs.borrow_mut().insert(term.clone(), freq);
        Ok(freq)
    }
}

/// One attempt at a search.
struct Plan<'a> {
    words: &'a [QueryWord],
    /// Per word, the competence concepts it stands for that some entry has.
    competences: &'a [Vec<(u32, f32)>],
    terms: &'a [WordTerms],
    /// Words left out of the text query (they named a country).
    skip: &'a HashSet<usize>,
    /// Countries named by the text, applied as a filter.
    countries: &'a [Country],
    strictness: Strictness,
}

struct Outcome {
    total: usize,
    hits: Vec<Hit>,
    facets: Facets,
    browsing: bool,
}

/// The words of a query text with their folded forms and stems.
fn query_words(analyzers: &mut Analyzers, text: &str) -> Vec<QueryWord> {
    analyzers
        .query_words(text, MAX_WORDS)
        .into_iter()
        .map(|(folded, stems)| QueryWord::new(folded, stems))
        .collect()
}

/// The whole query, and the query without its country words, as folded
/// names for the exact-name bonus.
fn exact_names(words: &[QueryWord], skip: &HashSet<usize>) -> Vec<String> {
    let join = |keep: &dyn Fn(usize) -> bool| {
        words
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .map(|(_, w)| w.folded.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut names = vec![join(&|_| true)];
    if !skip.is_empty() {
        let without = join(&|i| !skip.contains(&i));
        if !without.is_empty() {
            names.push(without);
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

fn facets_from(counts: &FacetCounts) -> Facets {
    let mut countries: Vec<(Country, u64)> = counts
        .get("/country")
        .filter_map(|(facet, count)| {
            let code = facet.to_path().last().copied()?;
            Some((code.parse().ok()?, count))
        })
        .collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut areas: Vec<(AreaKey, u64)> = counts
        .get("/area")
        .filter_map(|(facet, count)| {
            let key = facet.to_path().last().copied()?;
            Some((key.parse().ok()?, count))
        })
        .collect();
    areas.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Facets { countries, areas }
}
