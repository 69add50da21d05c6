//! How a query becomes a Tantivy query, and how its parts are weighed.
//!
//! Each query word becomes a disjunction of *routes* by which a document can
//! match it; the best route counts (plus a tenth of the others):
//!
//! | route | field | weight |
//! |---|---|---|
//! | same folded word in a name | `name` | BM25 × 3 |
//! | a stem of the word, in any language, equals the stem of a name word in the name's language | `name_stem` | BM25 × 2.5 |
//! | a competence the word stands for | `competence` | 6 × concept weight |
//! | the word's prefix starts a name word | `name_prefix` | BM25 × 1.2 |
//! | 1–2 edits from a name word (unknown words only) | `name` | 4 |
//! | free-text competences, city, region | `other` | BM25 × 1 |
//!
//! A query that equals a whole name (after folding) adds 30, so exact names
//! come first; competence matches come next, since they weigh about as much
//! as a rare name word. Every entry then adds its prior (see [`prior`]):
//! authorities before registers, specialised entries before general ones. Words of three characters or more are all required; when
//! nothing matches them all, any one will do.

use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, EmptyQuery, FuzzyTermQuery,
    Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};

use crate::query::Filters;
use crate::schema::Fields;
use crate::vocabulary::{Competence, QueryWord, fuzzy_distance};

const W_NAME: f32 = 3.0;
const W_STEM: f32 = 2.5;
const W_COMPETENCE: f32 = 6.0;
const W_PREFIX: f32 = 1.2;
const W_FUZZY: f32 = 4.0;
const W_OTHER: f32 = 1.0;
const W_EXACT_NAME: f32 = 30.0;
const TIE_BREAKER: f32 = 0.1;

/// Words shorter than this are optional.
pub(crate) const MIN_REQUIRED_CHARS: usize = 3;

fn term_query(field: Field, text: &str, option: IndexRecordOption) -> Box<dyn Query> {
    Box::new(TermQuery::new(Term::from_field_text(field, text), option))
}

fn boosted(query: Box<dyn Query>, weight: f32) -> Box<dyn Query> {
    Box::new(BoostQuery::new(query, weight))
}

fn best_of(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(DisjunctionMaxQuery::with_tie_breaker(queries, TIE_BREAKER))
}

/// The index terms through which a query word can match, looked up once per
/// search: terms missing from the index are left out of the query.
#[derive(Debug, Default)]
pub(crate) struct WordTerms {
    /// The folded word is a name word.
    pub(crate) name: bool,
    /// Stems of the word (in any language) that are stems of name words
    /// (in the name's own language).
    pub(crate) stems: Vec<String>,
    /// The word's prefix, when it starts a name word.
    pub(crate) prefix: Option<String>,
    /// The folded word occurs in free-text competences, city or region.
    pub(crate) other: bool,
    /// Neither the index nor the vocabulary knows the word: match it fuzzily.
    pub(crate) fuzzy: bool,
}

/// A query word ready for planning.
pub(crate) struct PlannedWord<'a> {
    pub(crate) word: &'a QueryWord,
    pub(crate) terms: &'a WordTerms,
    /// Index terms of the competences the word stands for, with weights.
    pub(crate) competences: Vec<(&'a str, f32)>,
}

/// The routes of one word.
fn word_query(fields: &Fields, planned: &PlannedWord<'_>) -> Box<dyn Query> {
    let word = planned.word;
    let terms = planned.terms;
    let mut routes = Vec::new();
    if terms.name {
        routes.push(boosted(
            term_query(fields.name, &word.folded, IndexRecordOption::WithFreqs),
            W_NAME,
        ));
    }
    if !terms.stems.is_empty() {
        let stems = terms
            .stems
            .iter()
            .map(|stem| term_query(fields.name_stem, stem, IndexRecordOption::WithFreqs))
            .collect();
        routes.push(boosted(Box::new(DisjunctionMaxQuery::new(stems)), W_STEM));
    }
    if let Some(prefix) = &terms.prefix {
        routes.push(boosted(
            term_query(fields.name_prefix, prefix, IndexRecordOption::Basic),
            W_PREFIX,
        ));
    }
    if terms.other {
        routes.push(boosted(
            term_query(fields.other, &word.folded, IndexRecordOption::WithFreqs),
            W_OTHER,
        ));
    }
    for (term, weight) in &planned.competences {
        // How well the word matched the competence decides, not how rare
        // the competence is.
        routes.push(Box::new(ConstScoreQuery::new(
            term_query(fields.competence, term, IndexRecordOption::Basic),
            W_COMPETENCE * weight,
        )));
    }
    let distance = fuzzy_distance(word.chars());
    if terms.fuzzy && distance > 0 {
        let fuzzy = FuzzyTermQuery::new(
            Term::from_field_text(fields.name, &word.folded),
            distance,
            true,
        );
        routes.push(boosted(Box::new(fuzzy), W_FUZZY));
    }
    match routes.len() {
        0 => Box::new(EmptyQuery),
        1 => routes.pop().unwrap_or_else(|| Box::new(EmptyQuery)),
        _ => best_of(routes),
    }
}

/// How strictly the words must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Every word of three characters or more.
    AllWords,
    /// Any one word.
    AnyWord,
}

/// The text part of a query, or `None` when there are no words (browsing).
pub(crate) fn text_query(
    fields: &Fields,
    words: &[PlannedWord<'_>],
    exact_names: &[String],
    strictness: Strictness,
) -> Option<Box<dyn Query>> {
    if words.is_empty() {
        return None;
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let any_required = words.iter().any(|w| w.word.chars() >= MIN_REQUIRED_CHARS);
    for planned in words {
        let required = strictness == Strictness::AllWords
            && (planned.word.chars() >= MIN_REQUIRED_CHARS || !any_required);
        let occur = if required { Occur::Must } else { Occur::Should };
        clauses.push((occur, word_query(fields, planned)));
    }
    let mut scoring: Vec<(Occur, Box<dyn Query>)> = exact_names
        .iter()
        .map(|name| {
            let exact = term_query(fields.name_exact, name, IndexRecordOption::Basic);
            (
                Occur::Should,
                Box::new(ConstScoreQuery::new(exact, W_EXACT_NAME)) as Box<dyn Query>,
            )
        })
        .collect();
    if clauses.iter().any(|(occur, _)| *occur == Occur::Must) {
        clauses.append(&mut scoring);
        Some(Box::new(BooleanQuery::new(clauses)))
    } else {
        // Only optional clauses: at least one word must match; the exact
        // name bonus must not let a document in on its own.
        let words = Box::new(BooleanQuery::new(clauses));
        let mut outer = vec![(Occur::Must, words as Box<dyn Query>)];
        outer.append(&mut scoring);
        Some(Box::new(BooleanQuery::new(outer)))
    }
}

/// The filter part of a query, scoring nothing, or `None` without filters.
pub(crate) fn filter_query(fields: &Fields, filters: &Filters) -> Option<Box<dyn Query>> {
    let mut groups: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let mut any_of = |terms: Vec<(Field, String)>| {
        if terms.is_empty() {
            return;
        }
        let options = terms
            .into_iter()
            .map(|(field, text)| {
                (
                    Occur::Should,
                    term_query(field, &text, IndexRecordOption::Basic),
                )
            })
            .collect();
        groups.push((Occur::Must, Box::new(BooleanQuery::new(options))));
    };
    any_of(
        filters
            .countries
            .iter()
            .map(|c| (fields.country, c.code().to_owned()))
            .collect(),
    );
    any_of(
        filters
            .areas
            .iter()
            .map(|k| (fields.competence, Competence::Area(k.clone()).index_term()))
            .collect(),
    );
    any_of(
        filters
            .procedures
            .iter()
            .map(|k| {
                (
                    fields.competence,
                    Competence::Procedure(k.clone()).index_term(),
                )
            })
            .collect(),
    );
    any_of(
        filters
            .professions
            .iter()
            .map(|k| {
                (
                    fields.competence,
                    Competence::Profession(k.clone()).index_term(),
                )
            })
            .collect(),
    );
    any_of(
        filters
            .kind
            .iter()
            .map(|k| (fields.kind, k.as_str().to_owned()))
            .collect(),
    );
    if groups.is_empty() {
        return None;
    }
    Some(Box::new(ConstScoreQuery::new(
        Box::new(BooleanQuery::new(groups)),
        0.0,
    )))
}

/// What an entry adds to any score, stored in thousandths in the `prior`
/// fast field: 0.5 for an authority (officials mostly look for someone to
/// ask), and up to 0.3 for few competences (the chamber of doctors before
/// the ministry of health, when both match "doctor").
pub(crate) fn prior(authority: bool, competences: usize) -> u64 {
    let authority = if authority { 500 } else { 0 };
    authority + 300 / (1 + competences as u64)
}

/// Turns the stored prior back into score.
pub(crate) fn prior_score(stored: u64) -> f32 {
    stored as f32 / 1000.0
}
