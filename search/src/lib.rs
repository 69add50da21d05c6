//! The multilingual search of the imi directory of authorities and registers.
//!
//! Owns the Tantivy index of the directory: the per-language analysis of
//! names (Snowball stemmers for 20 languages, transliteration of Greek and
//! Cyrillic, ASCII folding, edge prefixes and fuzzy matching where no
//! stemmer exists), the cross-language matching of competences and country
//! names through the catalogue, filters, facets, ranking and highlighted
//! snippets. It does not know where its entries come from: the node feeds
//! it [`DirectoryEntry`] values and calls it from a blocking pool; every
//! method is synchronous and the index is shared between threads.
//!
//! Key types: [`SearchIndex`] (open, upsert, remove, commit, rebuild,
//! search), [`DirectoryEntry`], [`Query`] and [`SearchResults`].
//!
//! How a query is understood:
//!
//! * Its words are looked up in the catalogue's vocabulary, which holds every
//!   legislative area, procedure and profession with its labels in all
//!   languages and the professions' search terms, and every country's names.
//!   A word that names a competence ("lääkäri", "Ärztekammer", "iatros")
//!   also matches entries that have that competence; a word that names a
//!   country ("Portugali") restricts the results to it.
//! * Each word also matches names directly: folded (case, diacritics,
//!   Greek and Cyrillic script do not matter), through stems, through the
//!   prefix of inflected or compound words, and, when nothing knows the
//!   word, within one or two typing errors.
//! * All words must match; when that finds nothing, any word will do.
//!   Exact names rank first, then name and competence matches; see the
//!   `ranking` module for the weights.
//!
//! Changes are visible to searches once [`SearchIndex::commit`] returns.
//! An index on disk records its [`SCHEMA_VERSION`]; a missing, outdated or
//! damaged index is cleared on open and reports a [`RebuildReason`], and the
//! caller feeds it the whole directory with [`SearchIndex::rebuild`].
//!
//! ```
//! use imi_protocol::{Catalogue, Country, Language};
//! use imi_search::{DirectoryEntry, EntryKind, Query, SearchIndex};
//!
//! let index = SearchIndex::create_in_ram(Catalogue::builtin()).unwrap();
//! index
//!     .upsert(&DirectoryEntry {
//!         id: "pt-ordem-dos-medicos".into(),
//!         kind: EntryKind::Authority,
//!         country: Country::Pt,
//!         names: vec![(Language::Pt, "Ordem dos Médicos".into())],
//!         areas: vec![],
//!         procedures: vec![],
//!         professions: vec!["doctor".parse().unwrap()],
//!         other_competences: vec![],
//!         city: Some("Lisboa".into()),
//!         region: None,
//!         languages: vec![Language::Pt],
//!         url: None,
//!     })
//!     .unwrap();
//! index.commit().unwrap();
//!
//! // A Finnish official looks for the Portuguese authority for doctors.
//! let results = index.search(&Query::new("lääkäri Portugali", Language::Fi)).unwrap();
//! assert_eq!(results.hits[0].id, "pt-ordem-dos-medicos");
//! assert_eq!(results.countries_in_text, [Country::Pt]);
//! ```

mod analysis;
mod entry;
mod error;
mod highlight;
mod index;
mod query;
mod ranking;
mod schema;
mod vocabulary;

pub use entry::{DirectoryEntry, EntryKind};
pub use error::{CommitError, OpenError, RebuildError, SearchError, WriteError};
pub use index::{RebuildReason, RebuildReport, SearchIndex, VERSION_FILE};
pub use query::{
    Facets, Filters, Hit, MAX_LIMIT, MAX_OFFSET, MAX_TEXT_BYTES, MAX_WORDS, MatchedCompetence,
    Query, SearchResults, Snippet,
};
pub use schema::SCHEMA_VERSION;
pub use vocabulary::Competence;
