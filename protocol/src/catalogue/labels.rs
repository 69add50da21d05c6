//! Texts given in several languages.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::Language;

/// One text in several languages: a catalogue label.
///
/// Labels of the built-in catalogue exist in all 24 EU languages, so
/// [`Labels::get`] only falls back to English for Icelandic and Norwegian.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<Language, String>);

impl Labels {
    /// The text in `lang`, or in English when there is none in `lang`, or the
    /// empty string when there is neither.
    pub fn get(&self, lang: Language) -> &str {
        self.0
            .get(&lang)
            .or_else(|| self.0.get(&Language::En))
            .map_or("", String::as_str)
    }

    /// The text in exactly `lang`, without falling back.
    pub fn exact(&self, lang: Language) -> Option<&str> {
        self.0.get(&lang).map(String::as_str)
    }

    /// Every language with its text, in language tag order.
    pub fn iter(&self) -> impl Iterator<Item = (Language, &str)> {
        self.0.iter().map(|(lang, text)| (*lang, text.as_str()))
    }

    /// Whether there is a text in `lang` itself (not a fallback).
    pub fn has(&self, lang: Language) -> bool {
        self.0.contains_key(&lang)
    }

    /// How many languages the label has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the label has no language at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(Language, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (Language, String)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_languages_fall_back_to_english() {
        let labels: Labels = [
            (Language::En, "Services".to_owned()),
            (Language::Fi, "Palvelut".to_owned()),
        ]
        .into_iter()
        .collect();
        assert_eq!(labels.get(Language::Fi), "Palvelut");
        assert_eq!(labels.get(Language::Is), "Services");
        assert!(labels.has(Language::Fi));
        assert!(!labels.has(Language::Is));
        assert_eq!(labels.exact(Language::Is), None);
        assert_eq!(
            labels.iter().map(|(l, _)| l).collect::<Vec<_>>(),
            [Language::En, Language::Fi]
        );
        assert_eq!(Labels::default().get(Language::De), "");
    }
}
