//! Text analysis shared by the index and the queries.
//!
//! Every text goes through the same first steps: split on anything that is
//! not a letter or a digit, drop absurdly long tokens, lower-case. Then:
//!
//! * the *folded* chain transliterates Greek and Cyrillic to Latin letters and
//!   folds diacritics to ASCII, so `Ιατρικός`, `iatrikos`, `Médicos` and
//!   `medicos` meet in one vocabulary;
//! * the *prefix* chain is the folded chain followed by edge prefixes of each
//!   word (4 to 12 characters), which serves inflected forms in languages
//!   without a stemmer, partly typed words and the heads of compounds
//!   (`arzt` → `arztekammer`);
//! * the *stem* chain of a language stems the lower-cased word with that
//!   language's Snowball stemmer, then folds it and prefixes it with the
//!   language tag (`fi:laakar`). Tagging keeps stems of different languages
//!   apart: a query word matches a stored word through a stem only when the
//!   same language's stemmer maps both to the same stem.
//!
//! Stemming happens before folding because the stemmers expect their
//! language's own spelling (`médecins`, `Ärzte`, `γιατρός`).

use std::mem;

use frostem::Algorithm;
use imi_protocol::Language;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
    Token, TokenFilter, TokenStream, Tokenizer,
};

/// Tokens longer than this many bytes are dropped (they are not words).
const MAX_TOKEN_BYTES: usize = 64;
/// The shortest edge prefix indexed, in characters.
pub(crate) const MIN_PREFIX_CHARS: usize = 4;
/// The longest edge prefix indexed, in characters.
pub(crate) const MAX_PREFIX_CHARS: usize = 12;

/// Name under which the folded analyzer is registered with the index.
pub(crate) const FOLDED: &str = "imi_folded";
/// Name under which the edge-prefix analyzer is registered with the index.
pub(crate) const PREFIXES: &str = "imi_prefixes";

/// The Snowball algorithm used for a language, if one fits.
///
/// Croatian uses the Serbian stemmer: the two standard languages share their
/// inflection, and the algorithm reads Latin script. Slovak, Slovenian,
/// Latvian, Maltese, Bulgarian and Icelandic have no stemmer and rely on edge
/// prefixes and fuzzy matching instead.
pub(crate) fn stemmer_algorithm(language: Language) -> Option<Algorithm> {
    Some(match language {
        Language::Cs => Algorithm::Czech,
        Language::Da => Algorithm::Danish,
        Language::De => Algorithm::German,
        Language::El => Algorithm::Greek,
        Language::En => Algorithm::English,
        Language::Es => Algorithm::Spanish,
        Language::Et => Algorithm::Estonian,
        Language::Fi => Algorithm::Finnish,
        Language::Fr => Algorithm::French,
        Language::Ga => Algorithm::Irish,
        Language::Hr => Algorithm::Serbian,
        Language::Hu => Algorithm::Hungarian,
        Language::It => Algorithm::Italian,
        Language::Lt => Algorithm::Lithuanian,
        Language::Nl => Algorithm::Dutch,
        Language::No => Algorithm::Norwegian,
        Language::Pl => Algorithm::Polish,
        Language::Pt => Algorithm::Portuguese,
        Language::Ro => Algorithm::Romanian,
        Language::Sv => Algorithm::Swedish,
        Language::Bg | Language::Lv | Language::Mt | Language::Sk | Language::Sl | Language::Is => {
            return None;
        }
    })
}

/// The languages that have a stemmer, in tag order.
pub(crate) fn stemmed_languages() -> impl Iterator<Item = Language> {
    Language::ALL
        .into_iter()
        .filter(|language| stemmer_algorithm(*language).is_some())
}

/// A token filter that rewrites each token's text with a function of it.
trait TokenMap: Clone + Send + Sync + 'static {
    /// Writes the new text into `out` and returns `true`, or returns `false`
    /// when the token stays as it is.
    fn map(&self, text: &str, out: &mut String) -> bool;
}

#[derive(Clone)]
struct MapFilter<M>(M);

impl<M: TokenMap> TokenFilter for MapFilter<M> {
    type Tokenizer<T: Tokenizer> = MapTokenizer<M, T>;

    fn transform<T: Tokenizer>(self, inner: T) -> MapTokenizer<M, T> {
        MapTokenizer { map: self.0, inner }
    }
}

#[derive(Clone)]
struct MapTokenizer<M, T> {
    map: M,
    inner: T,
}

impl<M: TokenMap, T: Tokenizer> Tokenizer for MapTokenizer<M, T> {
    type TokenStream<'a> = MapTokenStream<'a, M, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MapTokenStream {
            map: &self.map,
            tail: self.inner.token_stream(text),
            buffer: String::new(),
        }
    }
}

struct MapTokenStream<'a, M, T> {
    map: &'a M,
    tail: T,
    buffer: String,
}

impl<M: TokenMap, T: TokenStream> TokenStream for MapTokenStream<'_, M, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        self.buffer.clear();
        if self.map.map(&self.tail.token().text, &mut self.buffer) {
            mem::swap(&mut self.tail.token_mut().text, &mut self.buffer);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Transliterates Greek and Cyrillic (Bulgarian and its neighbours) to Latin
/// letters, following ELOT 743 for Greek and the Bulgarian streamlined system
/// of 2009 for Cyrillic. Other scripts pass unchanged; ASCII folding of Latin
/// diacritics is left to tantivy's `AsciiFoldingFilter` further down.
#[derive(Clone, Copy)]
struct Transliterate;

impl TokenMap for Transliterate {
    fn map(&self, text: &str, out: &mut String) -> bool {
        if !text.chars().any(needs_transliteration) {
            return false;
        }
        transliterate_into(text, out);
        true
    }
}

fn needs_transliteration(c: char) -> bool {
    matches!(c, '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' | '\u{0400}'..='\u{04FF}')
}

/// Writes the Latin transliteration of `text` (lower case expected) to `out`.
pub(crate) fn transliterate_into(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        // Greek digraphs whose letters read differently together.
        match (greek_base(c), next.map(greek_base)) {
            ('ο', Some('υ')) => {
                out.push_str("ou");
                chars.next();
                continue;
            }
            ('α', Some('υ')) | ('ε', Some('υ')) | ('η', Some('υ')) => {
                out.push_str(match greek_base(c) {
                    'α' => "av",
                    'ε' => "ev",
                    _ => "iv",
                });
                chars.next();
                continue;
            }
            _ => {}
        }
        match transliterate_char(c) {
            Some(latin) => out.push_str(latin),
            None => out.push(c),
        }
    }
}

/// The Greek letter without its accent or breathing, lower case.
fn greek_base(c: char) -> char {
    match c {
        'ά' | 'ὰ' | 'ᾶ' | 'ἀ' | 'ἁ' | 'Ά' | 'Α' => 'α',
        'έ' | 'ὲ' | 'ἐ' | 'ἑ' | 'Έ' | 'Ε' => 'ε',
        'ή' | 'ὴ' | 'ῆ' | 'ἠ' | 'ἡ' | 'Ή' | 'Η' => 'η',
        'ί' | 'ὶ' | 'ῖ' | 'ἰ' | 'ἱ' | 'ϊ' | 'ΐ' | 'Ί' | 'Ι' | 'Ϊ' => 'ι',
        'ό' | 'ὸ' | 'ὀ' | 'ὁ' | 'Ό' | 'Ο' => 'ο',
        'ύ' | 'ὺ' | 'ῦ' | 'ὐ' | 'ὑ' | 'ϋ' | 'ΰ' | 'Ύ' | 'Υ' | 'Ϋ' => 'υ',
        'ώ' | 'ὼ' | 'ῶ' | 'ὠ' | 'ὡ' | 'Ώ' | 'Ω' => 'ω',
        'ς' | 'Σ' => 'σ',
        other => {
            if ('Α'..='Ω').contains(&other) {
                other.to_lowercase().next().unwrap_or(other)
            } else {
                other
            }
        }
    }
}

fn transliterate_char(c: char) -> Option<&'static str> {
    let greek = greek_base(c);
    let latin = match greek {
        'α' => "a",
        'β' => "v",
        'γ' => "g",
        'δ' => "d",
        'ε' => "e",
        'ζ' => "z",
        'η' => "i",
        'θ' => "th",
        'ι' => "i",
        'κ' => "k",
        'λ' => "l",
        'μ' => "m",
        'ν' => "n",
        'ξ' => "x",
        'ο' => "o",
        'π' => "p",
        'ρ' => "r",
        'σ' => "s",
        'τ' => "t",
        'υ' => "y",
        'φ' => "f",
        'χ' => "ch",
        'ψ' => "ps",
        'ω' => "o",
        _ => return transliterate_cyrillic(c),
    };
    Some(latin)
}

fn transliterate_cyrillic(c: char) -> Option<&'static str> {
    let lower = if ('А'..='Я').contains(&c) || ('Ѐ'..='Џ').contains(&c) {
        c.to_lowercase().next().unwrap_or(c)
    } else {
        c
    };
    Some(match lower {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' | 'ѝ' | 'і' => "i",
        'й' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "h",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "sht",
        'ъ' => "a",
        'ь' => "y",
        'ю' => "yu",
        'я' => "ya",
        'ё' => "yo",
        'ы' => "y",
        'э' => "e",
        'є' => "ye",
        'ї' => "yi",
        'ђ' => "dj",
        'ј' => "j",
        'љ' => "lj",
        'њ' => "nj",
        'ћ' => "c",
        'џ' => "dz",
        'ѓ' => "gj",
        'ќ' => "kj",
        'ѕ' => "dz",
        _ => return None,
    })
}

/// Stems each token with one Snowball algorithm of the frostem library,
/// which offers more languages (Czech, Polish, Estonian, Irish, Lithuanian,
/// Serbian…) than tantivy's own `Stemmer` filter exposes.
#[derive(Clone, Copy)]
struct SnowballStemmer(frostem::Stemmer);

impl TokenMap for SnowballStemmer {
    fn map(&self, text: &str, out: &mut String) -> bool {
        match self.0.stem(text) {
            std::borrow::Cow::Borrowed(_) => false,
            std::borrow::Cow::Owned(stem) => {
                *out = stem;
                true
            }
        }
    }
}

/// Prefixes each token with a language tag (`fi:`), so stems of different
/// languages never meet in one field.
#[derive(Clone, Copy)]
struct LanguageTag(Language);

impl TokenMap for LanguageTag {
    fn map(&self, text: &str, out: &mut String) -> bool {
        out.push_str(self.0.tag());
        out.push(':');
        out.push_str(text);
        true
    }
}

/// Emits, for each token, its prefixes of `MIN_PREFIX_CHARS` up to
/// `MAX_PREFIX_CHARS` characters (the whole word when shorter). Tokens shorter
/// than the minimum pass unchanged.
#[derive(Clone, Copy)]
struct EdgePrefixes;

impl TokenFilter for EdgePrefixes {
    type Tokenizer<T: Tokenizer> = EdgePrefixTokenizer<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> EdgePrefixTokenizer<T> {
        EdgePrefixTokenizer { inner }
    }
}

#[derive(Clone)]
struct EdgePrefixTokenizer<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for EdgePrefixTokenizer<T> {
    type TokenStream<'a> = EdgePrefixStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        EdgePrefixStream {
            tail: self.inner.token_stream(text),
            word: String::new(),
            ends: Vec::new(),
            next: 0,
            token: Token::default(),
        }
    }
}

struct EdgePrefixStream<T> {
    tail: T,
    /// The current whole word.
    word: String,
    /// Byte ends of the prefixes still to emit for `word`.
    ends: Vec<usize>,
    next: usize,
    token: Token,
}

impl<T: TokenStream> TokenStream for EdgePrefixStream<T> {
    fn advance(&mut self) -> bool {
        while self.next >= self.ends.len() {
            if !self.tail.advance() {
                return false;
            }
            let token = self.tail.token();
            self.word.clear();
            self.word.push_str(&token.text);
            self.ends = prefix_ends(&self.word);
            self.next = 0;
            self.token = token.clone();
        }
        let end = self.ends[self.next];
        self.next += 1;
        self.token.text.clear();
        self.token.text.push_str(&self.word[..end]);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

/// Byte offsets at which the indexed edge prefixes of `word` end.
fn prefix_ends(word: &str) -> Vec<usize> {
    let boundaries: Vec<usize> = word
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain(std::iter::once(word.len()))
        .collect();
    if boundaries.len() < MIN_PREFIX_CHARS {
        return vec![word.len()];
    }
    boundaries[MIN_PREFIX_CHARS - 1..boundaries.len().min(MAX_PREFIX_CHARS)].to_vec()
}

/// The prefix of a folded query word looked up among the edge prefixes: about
/// 70 % of the word, at least `MIN_PREFIX_CHARS` and at most
/// `MAX_PREFIX_CHARS` characters. `None` for words shorter than the minimum.
pub(crate) fn query_prefix(folded: &str) -> Option<&str> {
    let chars = folded.chars().count();
    if chars < MIN_PREFIX_CHARS {
        return None;
    }
    let wanted = (chars * 7)
        .div_ceil(10)
        .clamp(MIN_PREFIX_CHARS, MAX_PREFIX_CHARS);
    let end = folded
        .char_indices()
        .nth(wanted)
        .map_or(folded.len(), |(i, _)| i);
    Some(&folded[..end])
}

fn base() -> tantivy::tokenizer::TextAnalyzerBuilder<impl Tokenizer> {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
}

/// Lower case, Latin script, no diacritics.
pub(crate) fn folded_analyzer() -> TextAnalyzer {
    base()
        .filter(MapFilter(Transliterate))
        .filter(AsciiFoldingFilter)
        .build()
}

/// The folded words and their edge prefixes.
pub(crate) fn prefix_analyzer() -> TextAnalyzer {
    base()
        .filter(MapFilter(Transliterate))
        .filter(AsciiFoldingFilter)
        .filter(EdgePrefixes)
        .build()
}

/// Language-tagged folded stems, or `None` when the language has no stemmer.
pub(crate) fn stem_analyzer(language: Language) -> Option<TextAnalyzer> {
    let algorithm = stemmer_algorithm(language)?;
    Some(
        base()
            .filter(MapFilter(SnowballStemmer(frostem::Stemmer::new(algorithm))))
            .filter(MapFilter(Transliterate))
            .filter(AsciiFoldingFilter)
            .filter(MapFilter(LanguageTag(language)))
            .build(),
    )
}

/// A word of a text with its forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// Byte range of the word in the analysed text.
    pub(crate) start: usize,
    /// End of the byte range.
    pub(crate) end: usize,
    /// Lower case, Latin, no diacritics.
    pub(crate) folded: String,
    /// Token position, shared by every chain.
    pub(crate) position: usize,
}

/// Runs an analyzer and collects its tokens.
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    let mut stream = analyzer.token_stream(text);
    let mut tokens = Vec::new();
    while stream.advance() {
        tokens.push(stream.token().clone());
    }
    tokens
}

/// The analyzers, ready to be cloned for use on one thread.
#[derive(Clone)]
pub(crate) struct Analyzers {
    /// One stem chain per language that has a stemmer.
    pub(crate) stems: Vec<(Language, TextAnalyzer)>,
    /// The first steps shared by every chain: words, lower case.
    lower: TextAnalyzer,
    /// The last steps of the folded chain, for one word.
    fold: TextAnalyzer,
    /// The stemmers of the stem chains, for one word.
    stemmers: Vec<(Language, frostem::Stemmer)>,
}

impl Analyzers {
    /// Builds every analyzer.
    pub(crate) fn new() -> Self {
        Analyzers {
            stems: stemmed_languages()
                .filter_map(|language| stem_analyzer(language).map(|a| (language, a)))
                .collect(),
            lower: base().build(),
            fold: TextAnalyzer::builder(RawTokenizer::default())
                .filter(MapFilter(Transliterate))
                .filter(AsciiFoldingFilter)
                .build(),
            stemmers: stemmed_languages()
                .filter_map(|language| {
                    stemmer_algorithm(language).map(|a| (language, frostem::Stemmer::new(a)))
                })
                .collect(),
        }
    }

    fn fold_word(&mut self, lower: &str) -> String {
        let mut stream = self.fold.token_stream(lower);
        if stream.advance() {
            stream.token().text.clone()
        } else {
            String::new()
        }
    }

    /// The words of a query with their tagged stems in every stemmed
    /// language, deduplicated. Equivalent to running the folded chain and
    /// every stem chain, but tokenizes once.
    pub(crate) fn query_words(&mut self, text: &str, max: usize) -> Vec<(String, Vec<String>)> {
        let lower = tokens(&mut self.lower, text);
        let mut words = Vec::with_capacity(lower.len().min(max));
        for token in lower.into_iter().take(max) {
            let folded = self.fold_word(&token.text);
            let mut stems = Vec::with_capacity(self.stemmers.len());
            for i in 0..self.stemmers.len() {
                let (language, stemmer) = self.stemmers[i];
                let stem = stemmer.stem(&token.text);
                let stem = if stem == token.text {
                    folded.clone()
                } else {
                    self.fold_word(&stem)
                };
                stems.push(format!("{}:{stem}", language.tag()));
            }
            stems.sort_unstable();
            stems.dedup();
            words.push((folded, stems));
        }
        words
    }

    /// The folded words of `text`: what the folded chain produces, computed
    /// directly (ASCII words need only lower-casing), because snippets
    /// analyse every name of every hit.
    pub(crate) fn words(&mut self, text: &str) -> Vec<Word> {
        let mut words = Vec::new();
        let mut position = 0;
        let mut start = None;
        let ends = text.char_indices().map(|(i, c)| (i, c.is_alphanumeric()));
        for (i, alphanumeric) in ends.chain(std::iter::once((text.len(), false))) {
            if alphanumeric {
                start.get_or_insert(i);
                continue;
            }
            let Some(from) = start.take() else {
                continue;
            };
            let raw = &text[from..i];
            if raw.len() < MAX_TOKEN_BYTES {
                let folded = if raw.is_ascii() {
                    raw.to_ascii_lowercase()
                } else {
                    let lower: String = raw.chars().flat_map(char::to_lowercase).collect();
                    self.fold_word(&lower)
                };
                words.push(Word {
                    start: from,
                    end: i,
                    folded,
                    position,
                });
            }
            position += 1;
        }
        words
    }

    /// The folded text: words joined by single spaces.
    pub(crate) fn normalized(&mut self, text: &str) -> String {
        let words = self.words(text);
        let mut out = String::with_capacity(text.len());
        for (i, word) in words.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&word.folded);
        }
        out
    }

    /// The tagged stems of `text` in `language`, or nothing when the language
    /// has no stemmer.
    pub(crate) fn stems_in(&mut self, language: Language, text: &str) -> Vec<Token> {
        match self.stems.iter_mut().find(|(l, _)| *l == language) {
            Some((_, analyzer)) => tokens(analyzer, text),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        tokens(analyzer, text).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn folding_removes_case_and_diacritics() {
        let mut a = folded_analyzer();
        assert_eq!(
            texts(
                &mut a,
                "Ordem dos Médicos — Bundesärztekammer, Łódź, Straße"
            ),
            [
                "ordem",
                "dos",
                "medicos",
                "bundesarztekammer",
                "lodz",
                "strasse"
            ]
        );
    }

    #[test]
    fn greek_is_transliterated_to_latin() {
        let mut a = folded_analyzer();
        assert_eq!(
            texts(&mut a, "Ιατρικός Σύλλογος Αθηνών"),
            ["iatrikos", "syllogos", "athinon"]
        );
        assert_eq!(
            texts(&mut a, "ΠΑΝΕΛΛΉΝΙΟΣ Υπουργείο Υγείας ευρώ"),
            ["panellinios", "ypourgeio", "ygeias", "evro"]
        );
    }

    #[test]
    fn bulgarian_cyrillic_is_transliterated_to_latin() {
        let mut a = folded_analyzer();
        assert_eq!(
            texts(&mut a, "Български лекарски съюз, Щип"),
            ["balgarski", "lekarski", "sayuz", "shtip"]
        );
    }

    #[test]
    fn stems_are_tagged_and_folded() {
        let mut de = stem_analyzer(Language::De).unwrap();
        assert_eq!(texts(&mut de, "Ärzte Arzt"), ["de:arzt", "de:arzt"]);
        let mut fi = stem_analyzer(Language::Fi).unwrap();
        assert_eq!(
            texts(&mut fi, "lääkärit lääkäri"),
            ["fi:laakar", "fi:laakar"]
        );
        let mut pl = stem_analyzer(Language::Pl).unwrap();
        let lekarska = texts(&mut pl, "lekarska lekarskiej");
        assert_eq!(lekarska[0], lekarska[1], "{lekarska:?}");
        let mut el = stem_analyzer(Language::El).unwrap();
        let greek = texts(&mut el, "ιατρός ιατρού");
        assert_eq!(greek[0], greek[1], "{greek:?}");
        assert!(greek[0].starts_with("el:iatr"), "{greek:?}");
    }

    #[test]
    fn languages_without_a_stemmer_have_no_stem_chain() {
        for language in [
            Language::Sk,
            Language::Sl,
            Language::Lv,
            Language::Mt,
            Language::Bg,
        ] {
            assert!(stem_analyzer(language).is_none(), "{language}");
        }
        assert_eq!(stemmed_languages().count(), 20);
    }

    #[test]
    fn edge_prefixes_cover_four_to_twelve_characters() {
        let mut a = prefix_analyzer();
        assert_eq!(texts(&mut a, "Arzt von"), ["arzt", "von"]);
        let kammer = texts(&mut a, "Ärztekammer");
        assert_eq!(kammer.first().map(String::as_str), Some("arzt"));
        assert_eq!(kammer.last().map(String::as_str), Some("arztekammer"));
        let long = texts(&mut a, "Bundesärztekammerverband");
        assert_eq!(long.len(), MAX_PREFIX_CHARS - MIN_PREFIX_CHARS + 1);
        assert_eq!(long.last().map(String::as_str), Some("bundesarztek"));
    }

    #[test]
    fn query_prefix_takes_about_seventy_percent() {
        assert_eq!(query_prefix("arz"), None);
        assert_eq!(query_prefix("arzt"), Some("arzt"));
        assert_eq!(query_prefix("komory"), Some("komor"));
        assert_eq!(query_prefix("lekarskej"), Some("lekarsk"));
        assert_eq!(
            query_prefix("bundesarztekammerverband"),
            Some("bundesarztek")
        );
    }

    #[test]
    fn words_equal_what_the_folded_chain_produces() {
        let mut analyzers = Analyzers::new();
        let long = "x".repeat(MAX_TOKEN_BYTES + 3);
        for text in [
            "Ordem dos Médicos — Bundesärztekammer, Łódź, Straße",
            "Ιατρικός Σύλλογος Αθηνών ΠΑΝΕΛΛΉΝΙΟΣ",
            "Български лекарски съюз „Главна инспекция по труда“",
            "l'Ordre des médecins (CNIL) K.M.O. 2024",
            &format!("before {long} after"),
            "",
            "  ...  ",
        ] {
            let chain: Vec<Word> = tokens(&mut folded_analyzer(), text)
                .into_iter()
                .map(|t| Word {
                    start: t.offset_from,
                    end: t.offset_to,
                    folded: t.text,
                    position: t.position,
                })
                .collect();
            assert_eq!(analyzers.words(text), chain, "{text:?}");
        }
    }

    #[test]
    fn query_words_equal_what_the_index_chains_produce() {
        let mut analyzers = Analyzers::new();
        let text = "Lääkäri Portugali, Ιατρικός Σύλλογος Αθηνών; Български лекарски съюз \
                    Naczelnej Izby Lekarskiej – Ärztekammer Straße ÉIREANN nDochtúirí";
        let words = analyzers.query_words(text, 100);
        let folded: Vec<String> = analyzers
            .words(text)
            .into_iter()
            .map(|w| w.folded)
            .collect();
        assert_eq!(
            words.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(),
            folded
        );
        for language in stemmed_languages() {
            let chain = analyzers.stems_in(language, text);
            assert_eq!(chain.len(), words.len(), "{language}");
            for (token, (_, stems)) in chain.iter().zip(&words) {
                assert!(
                    stems.contains(&token.text),
                    "{language}: {} not in {stems:?}",
                    token.text
                );
            }
        }
        assert!(
            words[0].1.contains(&"fi:laakar".to_owned()),
            "{:?}",
            words[0]
        );
        assert_eq!(analyzers.query_words(text, 3).len(), 3);
    }
}
