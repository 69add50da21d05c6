//! Marks the words of a stored text that a query matched.
//!
//! The marking follows the same routes as the ranking: a word of the text is
//! marked when its folded form equals a query word, shares the stem of one
//! in the text's language, starts with a query word's prefix, or, for query
//! words the index did not know, is within their edit distance.

use imi_protocol::Language;

use crate::analysis::{Analyzers, query_prefix};
use crate::query::Snippet;
use crate::vocabulary::{QueryWord, edit_distance, fuzzy_distance};

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
    // Stems only for query words not found otherwise.
    if let Some(language) = language
        && marked.iter().any(|m| !m)
    {
        let tag = format!("{}:", language.tag());
        let wanted: Vec<&str> = markers
            .iter()
            .zip(&found)
            .filter(|(_, found)| !**found)
            .flat_map(|(m, _)| m.word.stems.iter())
            .filter(|s| s.starts_with(&tag))
            .map(String::as_str)
            .collect();
        if !wanted.is_empty() {
            for stem in analyzers.stems_in(language, text) {
                if wanted.contains(&stem.text.as_str())
                    && let Some(i) = folded.iter().position(|w| w.position == stem.position)
                {
                    marked[i] = true;
                }
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
