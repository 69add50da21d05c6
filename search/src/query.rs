//! What a search asks and what it answers.

use std::ops::Range;

use imi_protocol::{AreaKey, Country, Language, ProcedureKey, ProfessionKey};

use crate::entry::EntryKind;
use crate::vocabulary::Competence;

/// The most results one page may hold.
pub const MAX_LIMIT: usize = 100;
/// Results beyond this offset are not served: refine the search instead.
pub const MAX_OFFSET: usize = 10_000;
/// The longest query text accepted, in bytes.
pub const MAX_TEXT_BYTES: usize = 1_000;
/// Query words beyond this many are ignored.
pub const MAX_WORDS: usize = 16;

/// A search of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Free text in any language: names, competences, country names.
    pub text: String,
    /// The searcher's language: names and competence labels are shown in
    /// it where the entry or the catalogue has them.
    pub language: Language,
    /// Restrictions that results must meet.
    pub filters: Filters,
    /// How many results to skip (for paging).
    pub offset: usize,
    /// How many results to return, at most [`MAX_LIMIT`]; `0` returns only
    /// the total and the facets.
    pub limit: usize,
}

impl Query {
    /// A search for `text` by someone reading `language`, first page of 20.
    pub fn new(text: impl Into<String>, language: Language) -> Query {
        Query {
            text: text.into(),
            language,
            filters: Filters::default(),
            offset: 0,
            limit: 20,
        }
    }

    /// The same search restricted by `filters`.
    #[must_use]
    pub fn with_filters(mut self, filters: Filters) -> Query {
        self.filters = filters;
        self
    }

    /// The same search, `limit` results from `offset`.
    #[must_use]
    pub fn page(mut self, offset: usize, limit: usize) -> Query {
        self.offset = offset;
        self.limit = limit;
        self
    }
}

/// Restrictions on results. Within one list any value will do; every
/// non-empty list must be met.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Entries of one of these countries.
    pub countries: Vec<Country>,
    /// Entries competent for one of these legislative areas (directly, or
    /// through one of the area's procedures or professions).
    pub areas: Vec<AreaKey>,
    /// Entries handling one of these procedures.
    pub procedures: Vec<ProcedureKey>,
    /// Entries competent for one of these professions.
    pub professions: Vec<ProfessionKey>,
    /// Only authorities, or only registers.
    pub kind: Option<EntryKind>,
}

impl Filters {
    /// Whether nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.countries.is_empty()
            && self.areas.is_empty()
            && self.procedures.is_empty()
            && self.professions.is_empty()
            && self.kind.is_none()
    }
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// How many entries match in all.
    pub total: usize,
    /// The requested page of them, best first.
    pub hits: Vec<Hit>,
    /// Counts of all matching entries by country and by area.
    pub facets: Facets,
    /// Countries the text named ("Portugali") and that restricted the
    /// results; empty when the text named none or explicit country filters
    /// were given.
    pub countries_in_text: Vec<Country>,
}

/// One matching entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The entry's id.
    pub id: String,
    /// Authority or register.
    pub kind: EntryKind,
    /// The entry's country.
    pub country: Country,
    /// The entry's name in the searcher's language if it has one, else its
    /// first name.
    pub display_name: String,
    /// The language of `display_name`.
    pub display_language: Language,
    /// The city of the entry's seat, if known.
    pub city: Option<String>,
    /// Relevance; only comparable within one result list.
    pub score: f32,
    /// The name (or free-text competence) that matched best, with the
    /// matching words marked.
    pub snippet: Snippet,
    /// Competences of the entry that the query asked for, labelled in the
    /// searcher's language.
    pub competences: Vec<MatchedCompetence>,
}

/// A short text with highlighted ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snippet {
    /// The text.
    pub text: String,
    /// Byte ranges of `text` to highlight, in order, not overlapping.
    pub highlights: Vec<Range<usize>>,
}

impl Snippet {
    /// The text cut into pieces, each with whether it is highlighted, for
    /// templates that escape each piece and wrap the highlighted ones.
    /// Ranges that overlap, run backwards or do not fall on character
    /// boundaries are ignored.
    pub fn fragments(&self) -> Vec<(&str, bool)> {
        let mut pieces = Vec::with_capacity(self.highlights.len() * 2 + 1);
        let mut at = 0;
        for range in &self.highlights {
            if range.start < at || range.end <= range.start {
                continue;
            }
            let (Some(before), Some(marked)) =
                (self.text.get(at..range.start), self.text.get(range.clone()))
            else {
                continue;
            };
            if !before.is_empty() {
                pieces.push((before, false));
            }
            pieces.push((marked, true));
            at = range.end;
        }
        if let Some(rest) = self.text.get(at..)
            && !rest.is_empty()
        {
            pieces.push((rest, false));
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_ignore_ranges_that_do_not_fit_the_text() {
        let snippet = Snippet {
            text: "Ordem dos Médicos".to_owned(),
            highlights: vec![0..5, 3..4, 11..12, 10..18, 40..50],
        };
        assert_eq!(
            snippet.fragments(),
            [("Ordem", true), (" dos ", false), ("Médicos", true)]
        );
    }
}

/// A competence of a hit that the query matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedCompetence {
    /// Which competence.
    pub competence: Competence,
    /// Its label in the searcher's language (English where none exists).
    pub label: String,
}

/// Counts of matching entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    /// By country, most entries first.
    pub countries: Vec<(Country, u64)>,
    /// By legislative area, most entries first.
    pub areas: Vec<(AreaKey, u64)>,
}
