//! The catalogue's vocabulary: what a query word means across languages.
//!
//! Every competence of the catalogue (legislative area, procedure, regulated
//! profession) and every participant country is a *concept*. Each concept is
//! indexed here with its labels in all languages, plus the search terms of
//! professions and the native names of countries. A query word is looked up
//! by its folded form, its tagged stems, fuzzily, by its prefix and, for long
//! compounds, by the vocabulary words it contains (`ärztekammer` → `arzt`).
//! The concepts it matches then become index terms of the directory
//! (`profession:doctor`), so "lääkäri" finds an authority described only by
//! its competence keys, whatever its language.
//!
//! The directory index stores competence *keys* only, never their labels:
//! a new translation in the catalogue needs no reindexing, and a document
//! stays small, which keeps a full rebuild of 12,600 authorities fast.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use imi_protocol::{AreaKey, Catalogue, Country, Labels, Language, ProcedureKey, ProfessionKey};

use crate::analysis::{Analyzers, query_prefix};

/// Stems shorter than this (in characters) match less surely.
const MIN_SURE_STEM_CHARS: usize = 5;
/// Words shorter than this (in characters) never stand for a concept.
const MIN_CONCEPT_WORD_CHARS: usize = 3;
/// A word or stem found in the phrases of more concepts than this is a
/// function word or too general to say anything (`de`, `and`, `services`).
const MAX_CONCEPTS_PER_WORD: usize = 6;
/// The shortest part of a compound that is looked up, in characters.
const MIN_COMPOUND_PART_CHARS: usize = 4;
/// Compounds are only split when the word is at least this long.
const MIN_COMPOUND_CHARS: usize = 8;
/// The weakest concept weight that still expands a query.
const MIN_CONCEPT_WEIGHT: f32 = 0.3;
/// At most this many concepts are taken per query word.
const MAX_CONCEPTS_PER_QUERY_WORD: usize = 6;

/// How well a query word matched a vocabulary word.
pub(crate) mod quality {
    /// Same folded word.
    pub(crate) const EXACT: f32 = 1.0;
    /// Same stem in the phrase's language.
    pub(crate) const STEM: f32 = 0.9;
    /// Same stem, but a stem of fewer than `MIN_SURE_STEM_CHARS` characters,
    /// which many unrelated words share (Polish `danych` and `Dania`).
    pub(crate) const SHORT_STEM: f32 = 0.7;
    /// One edit away.
    pub(crate) const FUZZY_1: f32 = 0.75;
    /// Two edits away.
    pub(crate) const FUZZY_2: f32 = 0.6;
    /// A vocabulary word found inside a compound query word.
    pub(crate) const COMPOUND_PART: f32 = 0.7;
    /// The query word's prefix starts a vocabulary word.
    pub(crate) const PREFIX: f32 = 0.5;
    /// Country words must match at least this well.
    pub(crate) const COUNTRY_MIN: f32 = 0.75;
}

/// A competence of the catalogue, as the search sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Competence {
    /// A legislative area.
    Area(AreaKey),
    /// A procedure.
    Procedure(ProcedureKey),
    /// A regulated profession.
    Profession(ProfessionKey),
}

impl Competence {
    /// The term under which the competence is indexed (`profession:doctor`).
    pub(crate) fn index_term(&self) -> String {
        match self {
            Competence::Area(key) => format!("area:{key}"),
            Competence::Procedure(key) => format!("procedure:{key}"),
            Competence::Profession(key) => format!("profession:{key}"),
        }
    }
}

/// What a concept stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConceptKind {
    /// A competence, indexed on the directory's documents.
    Competence(Competence),
    /// A participant country, applied as a filter.
    Country(Country),
}

/// A concept with its display labels.
#[derive(Debug, Clone)]
pub(crate) struct Concept {
    pub(crate) kind: ConceptKind,
    /// The directory index term for competences, empty for countries.
    pub(crate) term: String,
    pub(crate) labels: Labels,
}

/// One label or search term of a concept in one language.
#[derive(Debug, Clone)]
struct Phrase {
    concept: u32,
    /// Words that carry meaning (long enough, not common).
    content_words: u8,
}

/// A word of a query with the forms it is looked up by.
#[derive(Debug, Clone)]
pub(crate) struct QueryWord {
    /// Lower case, Latin, no diacritics.
    pub(crate) folded: String,
    /// Tagged stems in every stemmed language, without duplicates.
    pub(crate) stems: Vec<String>,
    /// The same stems without their language tags, without duplicates.
    pub(crate) bare_stems: Vec<String>,
}

impl QueryWord {
    /// A query word from its folded form and tagged stems.
    pub(crate) fn new(folded: String, stems: Vec<String>) -> QueryWord {
        let mut bare_stems: Vec<String> = stems.iter().map(|s| bare(s).to_owned()).collect();
        bare_stems.sort_unstable();
        bare_stems.dedup();
        QueryWord {
            folded,
            stems,
            bare_stems,
        }
    }

    /// Length of the folded form in characters.
    pub(crate) fn chars(&self) -> usize {
        self.folded.chars().count()
    }
}

/// The folded vocabulary entry of one word or stem.
#[derive(Debug, Default, Clone)]
struct Entry {
    phrases: Vec<u32>,
}

/// What the vocabulary understood of a query.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interpretation {
    /// Per query word (same order), the competence concepts it stands for
    /// with their weight in (0, 1].
    pub(crate) competences: Vec<Vec<(u32, f32)>>,
    /// Countries named by the query, with the indices of their words.
    pub(crate) countries: Vec<(Country, Vec<usize>)>,
}

/// The catalogue's vocabulary in every language.
pub(crate) struct Vocabulary {
    concepts: Vec<Concept>,
    phrases: Vec<Phrase>,
    /// Folded words, sorted; `word_entries` holds their phrases.
    words: Vec<String>,
    word_entries: Vec<Entry>,
    word_index: FxHashMap<String, u32>,
    /// Each word, and each word with one character deleted, to the words it
    /// comes from: the index of a symmetric-deletion fuzzy lookup.
    deletions: FxHashMap<String, Vec<u32>>,
    /// Tagged stems.
    stems: FxHashMap<String, Entry>,
    /// Parts that can be found inside compounds: folded words and untagged
    /// stems, with the phrases each stands for.
    parts: AhoCorasick,
    part_entries: Vec<Entry>,
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("concepts", &self.concepts.len())
            .field("phrases", &self.phrases.len())
            .field("words", &self.word_entries.len())
            .field("stems", &self.stems.len())
            .finish()
    }
}

/// A concept and its phrases, before analysis.
struct Source {
    concept: Concept,
    phrases: Vec<(Language, String)>,
}

fn sources(catalogue: &Catalogue) -> Vec<Source> {
    let mut sources = Vec::new();
    let labelled = |labels: &Labels| -> Vec<(Language, String)> {
        labels
            .iter()
            .map(|(language, text)| (language, text.to_owned()))
            .collect()
    };
    for area in catalogue.areas() {
        let competence = Competence::Area(area.key.clone());
        sources.push(Source {
            phrases: labelled(&area.label),
            concept: Concept {
                term: competence.index_term(),
                kind: ConceptKind::Competence(competence),
                labels: area.label.clone(),
            },
        });
    }
    for procedure in catalogue.procedures() {
        let competence = Competence::Procedure(procedure.key.clone());
        sources.push(Source {
            phrases: labelled(&procedure.label),
            concept: Concept {
                term: competence.index_term(),
                kind: ConceptKind::Competence(competence),
                labels: procedure.label.clone(),
            },
        });
    }
    for profession in catalogue.professions() {
        let competence = Competence::Profession(profession.key.clone());
        let mut phrases = labelled(&profession.label);
        for (language, terms) in &profession.terms {
            phrases.extend(terms.iter().map(|term| (*language, term.clone())));
        }
        sources.push(Source {
            phrases,
            concept: Concept {
                term: competence.index_term(),
                kind: ConceptKind::Competence(competence),
                labels: profession.label.clone(),
            },
        });
    }
    for country in Country::ALL {
        let names = catalogue.country_names(country);
        let mut phrases = labelled(names);
        phrases.extend(
            country
                .native_names()
                .iter()
                .map(|(language, name)| (*language, (*name).to_owned())),
        );
        phrases.push((Language::En, country.english_name().to_owned()));
        sources.push(Source {
            phrases,
            concept: Concept {
                term: String::new(),
                kind: ConceptKind::Country(country),
                labels: names.clone(),
            },
        });
    }
    sources
}

/// A phrase after analysis.
struct Analyzed {
    concept: u32,
    folded: Vec<String>,
    stems: Vec<String>,
}

impl Vocabulary {
    /// Builds the vocabulary of `catalogue`.
    pub(crate) fn new(catalogue: &Catalogue) -> Vocabulary {
        let mut analyzers = Analyzers::new();
        let sources = sources(catalogue);
        let mut concepts = Vec::with_capacity(sources.len());
        let mut analyzed = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            let concept = index as u32;
            for (language, text) in &source.phrases {
                let folded = analyzers
                    .words(text)
                    .into_iter()
                    .map(|w| w.folded)
                    .collect();
                let stems = analyzers
                    .stems_in(*language, text)
                    .into_iter()
                    .map(|t| t.text)
                    .collect();
                analyzed.push(Analyzed {
                    concept,
                    folded,
                    stems,
                });
            }
            concepts.push(source.concept);
        }

        // How many concepts use each word and stem: the common ones carry no meaning.
        let mut spread: HashMap<&str, HashSet<u32>> = HashMap::new();
        for phrase in &analyzed {
            for word in phrase.folded.iter().chain(&phrase.stems) {
                spread.entry(word).or_default().insert(phrase.concept);
            }
        }
        let common: HashSet<String> = spread
            .into_iter()
            .filter(|(_, concepts)| concepts.len() > MAX_CONCEPTS_PER_WORD)
            .map(|(word, _)| word.to_owned())
            .collect();
        let meaningful =
            |word: &str| word.chars().count() >= MIN_CONCEPT_WORD_CHARS && !common.contains(word);

        let mut phrases = Vec::with_capacity(analyzed.len());
        let mut words: FxHashMap<String, Entry> = FxHashMap::default();
        let mut stems: FxHashMap<String, Entry> = FxHashMap::default();
        let mut parts: FxHashMap<String, Entry> = FxHashMap::default();
        for phrase in &analyzed {
            let id = phrases.len() as u32;
            let content = phrase.folded.iter().filter(|w| meaningful(w)).count();
            phrases.push(Phrase {
                concept: phrase.concept,
                content_words: content.clamp(1, u8::MAX as usize) as u8,
            });
            for word in phrase.folded.iter().filter(|w| meaningful(w)) {
                add(&mut words, word, id);
                if word.chars().count() >= MIN_COMPOUND_PART_CHARS {
                    add(&mut parts, word, id);
                }
            }
            for stem in phrase.stems.iter().filter(|s| !common.contains(*s)) {
                add(&mut stems, stem, id);
                if let Some((_, bare)) = stem.split_once(':')
                    && bare.chars().count() >= MIN_COMPOUND_PART_CHARS
                {
                    add(&mut parts, bare, id);
                }
            }
        }

        let mut sorted: Vec<(String, Entry)> = words.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let (words, word_entries): (Vec<String>, Vec<Entry>) = sorted.into_iter().unzip();
        let word_index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        let mut deletions: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for (i, word) in words.iter().enumerate() {
            let mut variants = vec![word.clone()];
            variants.extend(single_deletions(word));
            variants.sort_unstable();
            variants.dedup();
            for variant in variants {
                deletions.entry(variant).or_default().push(i as u32);
            }
        }

        let mut parts: Vec<(String, Entry)> = parts.into_iter().collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let part_entries = parts.iter().map(|(_, e)| e.clone()).collect();
        // A contiguous NFA: a DFA over thousands of words would take megabytes.
        let parts = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(parts.iter().map(|(p, _)| p.as_str()))
            .unwrap_or_else(|err| unreachable!("short word patterns always build: {err}"));

        Vocabulary {
            concepts,
            phrases,
            words,
            word_entries,
            word_index,
            deletions,
            stems,
            parts,
            part_entries,
        }
    }

    /// The concept with index `id`.
    pub(crate) fn concept(&self, id: u32) -> &Concept {
        &self.concepts[id as usize]
    }

    /// The competence concepts by index term.
    pub(crate) fn competence_terms(&self) -> HashMap<String, u32> {
        self.concepts
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.term.is_empty())
            .map(|(i, c)| (c.term.clone(), i as u32))
            .collect()
    }

    /// Whether the folded word or one of its stems is a vocabulary word.
    pub(crate) fn knows(&self, word: &QueryWord) -> bool {
        self.word_index.contains_key(&word.folded)
            || word.stems.iter().any(|s| self.stems.contains_key(s))
    }

    /// The phrases a query word matches, with how well.
    fn phrase_matches(&self, word: &QueryWord) -> Vec<(u32, f32)> {
        let mut found: FxHashMap<u32, f32> = FxHashMap::default();
        let chars = word.chars();
        if chars < MIN_CONCEPT_WORD_CHARS {
            return Vec::new();
        }
        if let Some(&i) = self.word_index.get(&word.folded) {
            note(&mut found, &self.word_entries[i as usize], quality::EXACT);
        }
        for stem in &word.stems {
            if let Some(entry) = self.stems.get(stem) {
                let q = if bare(stem).chars().count() < MIN_SURE_STEM_CHARS {
                    quality::SHORT_STEM
                } else {
                    quality::STEM
                };
                note(&mut found, entry, q);
            }
        }
        if found.is_empty() {
            self.fuzzy(word, &mut found);
        }
        if found.is_empty() && chars >= MIN_COMPOUND_CHARS {
            for part in self.parts.find_overlapping_iter(word.folded.as_str()) {
                let entry = &self.part_entries[part.pattern().as_usize()];
                // A part that is the whole word was already looked up.
                if part.end() - part.start() < word.folded.len() {
                    note(&mut found, entry, quality::COMPOUND_PART);
                }
            }
        }
        if found.is_empty()
            && let Some(prefix) = query_prefix(&word.folded)
            && prefix.len() >= 5
        {
            let start = self.words.partition_point(|w| w.as_str() < prefix);
            for (word, entry) in self.words[start..].iter().zip(&self.word_entries[start..]) {
                if !word.starts_with(prefix) {
                    break;
                }
                note(&mut found, entry, quality::PREFIX);
            }
        }
        found.into_iter().collect()
    }

    /// Vocabulary words within the word's edit distance: the query word with
    /// up to that many characters deleted meets the vocabulary words with up
    /// to one deleted (which finds substitutions, transpositions, and up to
    /// two missing or extra letters), then the distance is checked.
    fn fuzzy(&self, word: &QueryWord, found: &mut FxHashMap<u32, f32>) {
        let distance = usize::from(fuzzy_distance(word.chars()));
        if distance == 0 {
            return;
        }
        let mut variants = vec![word.folded.clone()];
        let mut frontier = vec![word.folded.clone()];
        for _ in 0..distance {
            let next: Vec<String> = frontier.iter().flat_map(|w| single_deletions(w)).collect();
            variants.extend(next.iter().cloned());
            frontier = next;
        }
        variants.sort_unstable();
        variants.dedup();
        let query: Vec<char> = word.folded.chars().collect();
        let mut candidates: Vec<u32> = variants
            .iter()
            .filter_map(|v| self.deletions.get(v))
            .flatten()
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for i in candidates {
            let candidate: Vec<char> = self.words[i as usize].chars().collect();
            let q = match edit_distance(&candidate, &query) {
                0 => continue,
                1 => quality::FUZZY_1,
                d if d <= distance => quality::FUZZY_2,
                _ => continue,
            };
            note(found, &self.word_entries[i as usize], q);
        }
    }

    /// Interprets the words of a query: which competences each stands for and
    /// which countries the query names.
    pub(crate) fn interpret(&self, words: &[QueryWord]) -> Interpretation {
        // phrase → (query word → quality)
        let mut by_phrase: FxHashMap<u32, Vec<(usize, f32)>> = FxHashMap::default();
        for (w, word) in words.iter().enumerate() {
            for (phrase, q) in self.phrase_matches(word) {
                by_phrase.entry(phrase).or_default().push((w, q));
            }
        }
        // concept → best (weight, whether every content word matched, words)
        let mut by_concept: FxHashMap<u32, ConceptMatch> = FxHashMap::default();
        for (phrase, matched) in by_phrase {
            let info = &self.phrases[phrase as usize];
            let sum: f32 = matched.iter().map(|(_, q)| q).sum();
            let weight = (sum / f32::from(info.content_words)).min(1.0);
            let complete = matched.len() >= usize::from(info.content_words);
            let slot = by_concept.entry(info.concept).or_default();
            if weight > slot.weight {
                *slot = ConceptMatch {
                    weight,
                    complete,
                    words: matched,
                };
            }
        }

        let mut interpretation = Interpretation {
            competences: vec![Vec::new(); words.len()],
            countries: Vec::new(),
        };
        let mut concepts: Vec<(u32, ConceptMatch)> = by_concept.into_iter().collect();
        concepts.sort_by(|a, b| b.1.weight.total_cmp(&a.1.weight).then(a.0.cmp(&b.0)));
        for (concept, found) in concepts {
            let ConceptMatch {
                weight,
                complete,
                words: matched,
            } = found;
            match &self.concepts[concept as usize].kind {
                ConceptKind::Country(country) => {
                    // Every word of the name, each matched closely.
                    if complete && matched.iter().all(|(_, q)| *q >= quality::COUNTRY_MIN) {
                        let mut indices: Vec<usize> = matched.iter().map(|(w, _)| *w).collect();
                        indices.sort_unstable();
                        interpretation.countries.push((*country, indices));
                    }
                }
                ConceptKind::Competence(_) => {
                    if weight < MIN_CONCEPT_WEIGHT {
                        continue;
                    }
                    for (w, _) in matched {
                        let list = &mut interpretation.competences[w];
                        if list.len() < MAX_CONCEPTS_PER_QUERY_WORD {
                            list.push((concept, weight));
                        }
                    }
                }
            }
        }
        interpretation
    }
}

/// The best phrase match of a concept.
#[derive(Default)]
struct ConceptMatch {
    /// Sum of word qualities over the phrase's content words, at most 1.
    weight: f32,
    /// Whether as many query words matched as the phrase has content words.
    complete: bool,
    /// The query words that matched, with their quality.
    words: Vec<(usize, f32)>,
}

/// A tagged stem without its language tag (`fi:laakar` → `laakar`).
pub(crate) fn bare(stem: &str) -> &str {
    stem.split_once(':').map_or(stem, |(_, bare)| bare)
}

/// Records that the phrases of `entry` matched with quality `q`, keeping the
/// best quality per phrase.
fn note(found: &mut FxHashMap<u32, f32>, entry: &Entry, q: f32) {
    for &phrase in &entry.phrases {
        let slot = found.entry(phrase).or_insert(0.0);
        if q > *slot {
            *slot = q;
        }
    }
}

fn add(map: &mut FxHashMap<String, Entry>, word: &str, phrase: u32) {
    let entry = map.entry(word.to_owned()).or_default();
    if entry.phrases.last() != Some(&phrase) {
        entry.phrases.push(phrase);
    }
}

/// How many edits a word of `chars` characters may be away from what it
/// matches: none below 4 characters, one up to 7, two from 8 on.
pub(crate) fn fuzzy_distance(chars: usize) -> u8 {
    match chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The word with one character deleted, at each position.
fn single_deletions(word: &str) -> Vec<String> {
    word.char_indices()
        .map(|(i, c)| {
            let mut variant = String::with_capacity(word.len());
            variant.push_str(&word[..i]);
            variant.push_str(&word[i + c.len_utf8()..]);
            variant
        })
        .collect()
}

/// Optimal string alignment distance (Levenshtein with adjacent
/// transpositions).
pub(crate) fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let (n, m) = (a.len(), b.len());
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(prev2[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interpret(text: &str) -> (Vec<Vec<String>>, Vec<Country>) {
        let vocabulary = Vocabulary::new(Catalogue::builtin());
        let mut analyzers = Analyzers::new();
        let words: Vec<QueryWord> = analyzers
            .query_words(text, 16)
            .into_iter()
            .map(|(folded, stems)| QueryWord::new(folded, stems))
            .collect();
        let interpretation = vocabulary.interpret(&words);
        let competences = interpretation
            .competences
            .iter()
            .map(|list| {
                list.iter()
                    .map(|(c, _)| vocabulary.concept(*c).term.clone())
                    .collect()
            })
            .collect();
        let countries = interpretation.countries.iter().map(|(c, _)| *c).collect();
        (competences, countries)
    }

    #[test]
    fn a_profession_is_understood_in_every_language_and_script() {
        for text in [
            "lääkäri",
            "Arzt",
            "médecin",
            "lekarz",
            "Ιατρός",
            "iatros",
            "лекар",
            "lekar",
            "tabib",
            "ārsts",
            "Ärzte",
            "doctors",
        ] {
            let (competences, _) = interpret(text);
            assert_eq!(
                competences[0].first().map(String::as_str),
                Some("profession:doctor"),
                "{text}: {competences:?}"
            );
        }
    }

    #[test]
    fn compounds_are_split_against_the_vocabulary() {
        // Neither word is a catalogue label or search term as a whole.
        let (competences, _) = interpret("Landesärztekammer");
        assert!(
            competences[0].contains(&"profession:doctor".to_owned()),
            "{competences:?}"
        );
        let (competences, _) = interpret("Apothekerverband");
        assert!(
            competences[0].contains(&"profession:pharmacist".to_owned()),
            "{competences:?}"
        );
    }

    #[test]
    fn country_names_are_recognised_in_other_languages_and_inflected() {
        for (text, country) in [
            ("Portugali", Country::Pt),
            ("Portogallo", Country::Pt),
            ("Portugalissa", Country::Pt),
            ("Πορτογαλία", Country::Pt),
            ("Portugaliya", Country::Pt),
            ("Deutschland", Country::De),
            ("Saksa", Country::De),
            ("Czech Republic", Country::Cz),
        ] {
            let (_, countries) = interpret(text);
            assert_eq!(countries, [country], "{text}");
        }
    }

    #[test]
    fn short_stems_do_not_make_a_country() {
        // Polish "danych" (of data) shares its stem with "Dania" (Denmark).
        let (_, countries) = interpret("ochrona danych osobowych");
        assert!(countries.is_empty(), "{countries:?}");
    }

    #[test]
    fn edit_distance_counts_transpositions_as_one() {
        assert_eq!(edit_distance(b"valvira", b"valvria"), 1);
        assert_eq!(edit_distance(b"medicos", b"medcos"), 1);
        assert_eq!(edit_distance(b"lekarska", b"lekarskej"), 2);
        assert_eq!(edit_distance(b"", b"abc"), 3);
        assert_eq!(edit_distance(&['ä', 'b'], &['b', 'ä']), 1);
    }

    #[test]
    fn single_deletions_handle_multibyte_characters() {
        assert_eq!(single_deletions("aéb"), ["éb", "ab", "aé"]);
    }

    #[test]
    fn fuzzy_distance_grows_with_length() {
        assert_eq!(fuzzy_distance(3), 0);
        assert_eq!(fuzzy_distance(5), 1);
        assert_eq!(fuzzy_distance(9), 2);
    }
}
