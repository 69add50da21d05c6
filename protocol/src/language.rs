//! The languages of the Internal Market: the 24 official EU languages plus the
//! languages of the EEA countries (Icelandic, Norwegian).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A language in which imi shows its interface and catalogue, identified by
/// its BCP 47 tag (`fi`, `pt`, `el`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Language {
    /// Bulgarian.
    Bg,
    /// Czech.
    Cs,
    /// Danish.
    Da,
    /// German.
    De,
    /// Greek.
    El,
    /// English.
    En,
    /// Spanish.
    Es,
    /// Estonian.
    Et,
    /// Finnish.
    Fi,
    /// French.
    Fr,
    /// Irish.
    Ga,
    /// Croatian.
    Hr,
    /// Hungarian.
    Hu,
    /// Italian.
    It,
    /// Lithuanian.
    Lt,
    /// Latvian.
    Lv,
    /// Maltese.
    Mt,
    /// Dutch.
    Nl,
    /// Polish.
    Pl,
    /// Portuguese.
    Pt,
    /// Romanian.
    Ro,
    /// Slovak.
    Sk,
    /// Slovenian.
    Sl,
    /// Swedish.
    Sv,
    /// Icelandic (EEA).
    Is,
    /// Norwegian (EEA).
    No,
}

impl Language {
    /// The 24 official languages of the European Union, in tag order. Every
    /// catalogue label exists in each of them.
    pub const EU: [Language; 24] = [
        Language::Bg,
        Language::Cs,
        Language::Da,
        Language::De,
        Language::El,
        Language::En,
        Language::Es,
        Language::Et,
        Language::Fi,
        Language::Fr,
        Language::Ga,
        Language::Hr,
        Language::Hu,
        Language::It,
        Language::Lt,
        Language::Lv,
        Language::Mt,
        Language::Nl,
        Language::Pl,
        Language::Pt,
        Language::Ro,
        Language::Sk,
        Language::Sl,
        Language::Sv,
    ];

    /// Every language imi knows: the 24 EU languages, Icelandic and Norwegian.
    pub const ALL: [Language; 26] = [
        Language::Bg,
        Language::Cs,
        Language::Da,
        Language::De,
        Language::El,
        Language::En,
        Language::Es,
        Language::Et,
        Language::Fi,
        Language::Fr,
        Language::Ga,
        Language::Hr,
        Language::Hu,
        Language::It,
        Language::Lt,
        Language::Lv,
        Language::Mt,
        Language::Nl,
        Language::Pl,
        Language::Pt,
        Language::Ro,
        Language::Sk,
        Language::Sl,
        Language::Sv,
        Language::Is,
        Language::No,
    ];

    /// The BCP 47 tag, lower case (`"fi"`).
    pub const fn tag(self) -> &'static str {
        match self {
            Language::Bg => "bg",
            Language::Cs => "cs",
            Language::Da => "da",
            Language::De => "de",
            Language::El => "el",
            Language::En => "en",
            Language::Es => "es",
            Language::Et => "et",
            Language::Fi => "fi",
            Language::Fr => "fr",
            Language::Ga => "ga",
            Language::Hr => "hr",
            Language::Hu => "hu",
            Language::It => "it",
            Language::Lt => "lt",
            Language::Lv => "lv",
            Language::Mt => "mt",
            Language::Nl => "nl",
            Language::Pl => "pl",
            Language::Pt => "pt",
            Language::Ro => "ro",
            Language::Sk => "sk",
            Language::Sl => "sl",
            Language::Sv => "sv",
            Language::Is => "is",
            Language::No => "no",
        }
    }

    /// The language's name in itself (`"suomi"`, `"ελληνικά"`).
    pub const fn endonym(self) -> &'static str {
        match self {
            Language::Bg => "български",
            Language::Cs => "čeština",
            Language::Da => "dansk",
            Language::De => "Deutsch",
            Language::El => "ελληνικά",
            Language::En => "English",
            Language::Es => "español",
            Language::Et => "eesti",
            Language::Fi => "suomi",
            Language::Fr => "français",
            Language::Ga => "Gaeilge",
            Language::Hr => "hrvatski",
            Language::Hu => "magyar",
            Language::It => "italiano",
            Language::Lt => "lietuvių",
            Language::Lv => "latviešu",
            Language::Mt => "Malti",
            Language::Nl => "Nederlands",
            Language::Pl => "polski",
            Language::Pt => "português",
            Language::Ro => "română",
            Language::Sk => "slovenčina",
            Language::Sl => "slovenščina",
            Language::Sv => "svenska",
            Language::Is => "íslenska",
            Language::No => "norsk",
        }
    }

    /// Whether this is one of the 24 official EU languages.
    pub fn is_eu_official(self) -> bool {
        !matches!(self, Language::Is | Language::No)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A language tag that imi does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown language tag {tag:?}: expected one of the EU languages (bg, cs, da, de, el, en, es, et, fi, fr, ga, hr, hu, it, lt, lv, mt, nl, pl, pt, ro, sk, sl, sv), is or no"
)]
pub struct UnknownLanguage {
    /// The tag as given.
    pub tag: String,
}

impl FromStr for Language {
    type Err = UnknownLanguage;

    /// Parses a BCP 47 tag; the primary subtag decides (`"pt-PT"` is
    /// Portuguese, `"nb"` and `"nn"` are Norwegian), case does not matter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let primary = s
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let primary = match primary.as_str() {
            "nb" | "nn" => "no",
            other => other,
        };
        Language::ALL
            .into_iter()
            .find(|language| language.tag() == primary)
            .ok_or_else(|| UnknownLanguage { tag: s.to_owned() })
    }
}

impl TryFrom<String> for Language {
    type Error = UnknownLanguage;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Language> for String {
    fn from(language: Language) -> Self {
        language.tag().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_parses_back_to_its_language() {
        for language in Language::ALL {
            assert_eq!(language.tag().parse::<Language>(), Ok(language));
        }
        assert_eq!(Language::EU.len(), 24);
        assert!(Language::EU.iter().all(|l| l.is_eu_official()));
    }

    #[test]
    fn region_subtags_and_case_are_accepted() {
        assert_eq!("pt-PT".parse(), Ok(Language::Pt));
        assert_eq!("EL".parse(), Ok(Language::El));
        assert_eq!("nb".parse(), Ok(Language::No));
    }

    #[test]
    fn unknown_tags_are_refused_with_the_tag_named() {
        let err = "tr".parse::<Language>().unwrap_err();
        assert!(err.to_string().contains("\"tr\""), "{err}");
        assert!("".parse::<Language>().is_err());
    }
}
