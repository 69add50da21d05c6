//! Marks the words of a stored text that a query matched.
//!
//! The marking follows the same routes as the ranking: a word of the text is
//! marked when its folded form equals a query word, when its stem (in the
//! text's language) is a stem of a query word, when it starts with a query
//! word's prefix, or, for query words the index did not know, when it is
//! within their edit distance.

use imi_protocol::Language;

use crate::analysis::{Analyzers, query_prefix};
use crate::query::Snippet;
use crate::vocabulary::{QueryWord, bare, edit_distance, fuzzy_distance};

/// A query word as the highlighter needs it.
pub(crate) struct Marker<'a> {
    pub(crate) word: &'a QueryWord,
    /// Whether fuzzy matches count (the word was unknown).
    pub(crate) fuzzy: bool,
}

/// The snippet of `text` (written in `language`, if known) for the query
/// words, and how many of its words are marked.
pub(crate) fn snippet(
    analyzers: &mut Analyzers,
    text: &str,
    language: Option<Language>,
    markers: &[Marker<'_>],
) -> (Snippet, usize) {
    let folded = analyzers.words(text);
    let mut marked = vec![false; folded.len()];
    let mut found = vec![false; markers.len()];
    for (token, mark) in folded.iter().zip(&mut marked) {
        for (marker, found) in markers.iter().zip(&mut found) {
            if matches(marker, &token.folded) {
                *mark = true;
                *found = true;
            }
        }
    }
    // Stems only for query words not found otherwise, and only when an
    // unmarked word could share a stem with one (same first letters).
    let unfound: Vec<&Marker<'_>> = markers
        .iter()
        .zip(&found)
        .filter(|(_, found)| !**found)
        .map(|(m, _)| m)
        .collect();
    let worth_stemming = folded.iter().zip(&marked).any(|(word, marked)| {
        !marked
            && unfound
                .iter()
                .any(|m| shares_start(&word.folded, &m.word.folded))
    });
    if let Some(language) = language
        && worth_stemming
    {
        for stem in analyzers.stems_in(language, text) {
            let stem_text = bare(&stem.text);
            if unfound
                .iter()
                .any(|m| m.word.bare_stems.iter().any(|s| s == stem_text))
                && let Some(i) = folded.iter().position(|w| w.position == stem.position)
            {
                marked[i] = true;
            }
        }
    }
    let highlights: Vec<_> = folded
        .iter()
        .zip(&marked)
        .filter(|(_, m)| **m)
        .map(|(word, _)| word.start..word.end)
        .collect();
    let count = highlights.len();
    (
        Snippet {
            text: text.to_owned(),
            highlights,
        },
        count,
    )
}

/// Whether two folded words begin with the same three characters.
fn shares_start(a: &str, b: &str) -> bool {
    let mut a = a.chars();
    let mut b = b.chars();
    (0..3).all(|_| matches!((a.next(), b.next()), (Some(x), Some(y)) if x == y))
}

fn matches(marker: &Marker<'_>, folded: &str) -> bool {
    let word = marker.word;
    if folded == word.folded {
        return true;
    }
    if let Some(prefix) = query_prefix(&word.folded)
        && folded.starts_with(prefix)
    {
        return true;
    }
    if marker.fuzzy {
        let distance = usize::from(fuzzy_distance(word.chars()));
        if distance > 0
            && folded.len().abs_diff(word.folded.len()) <= distance
            && edit_distance(folded.as_bytes(), word.folded.as_bytes()) <= distance
        {
            return true;
        }
    }
    false
}
