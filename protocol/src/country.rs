//! The participants of the federation: the 27 EU member states, the three EEA
//! countries (Iceland, Liechtenstein, Norway) and the European Commission.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Language;

/// A participant of the federation, identified by its ISO 3166-1 alpha-2 code
/// (`EU` for the Commission). Greece is `GR`; the EU's own abbreviation `EL` is
/// accepted when parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Country {
    /// Austria.
    At,
    /// Belgium.
    Be,
    /// Bulgaria.
    Bg,
    /// Croatia.
    Hr,
    /// Cyprus.
    Cy,
    /// Czechia.
    Cz,
    /// Denmark.
    Dk,
    /// Estonia.
    Ee,
    /// Finland.
    Fi,
    /// France.
    Fr,
    /// Germany.
    De,
    /// Greece.
    Gr,
    /// Hungary.
    Hu,
    /// Ireland.
    Ie,
    /// Italy.
    It,
    /// Latvia.
    Lv,
    /// Lithuania.
    Lt,
    /// Luxembourg.
    Lu,
    /// Malta.
    Mt,
    /// Netherlands.
    Nl,
    /// Poland.
    Pl,
    /// Portugal.
    Pt,
    /// Romania.
    Ro,
    /// Slovakia.
    Sk,
    /// Slovenia.
    Si,
    /// Spain.
    Es,
    /// Sweden.
    Se,
    /// Iceland.
    Is,
    /// Liechtenstein.
    Li,
    /// Norway.
    No,
    /// European Commission.
    Eu,
}

impl Country {
    /// Every participant: the EU-27, the EEA countries and the Commission.
    pub const ALL: [Country; 31] = [
        Country::At,
        Country::Be,
        Country::Bg,
        Country::Hr,
        Country::Cy,
        Country::Cz,
        Country::Dk,
        Country::Ee,
        Country::Fi,
        Country::Fr,
        Country::De,
        Country::Gr,
        Country::Hu,
        Country::Ie,
        Country::It,
        Country::Lv,
        Country::Lt,
        Country::Lu,
        Country::Mt,
        Country::Nl,
        Country::Pl,
        Country::Pt,
        Country::Ro,
        Country::Sk,
        Country::Si,
        Country::Es,
        Country::Se,
        Country::Is,
        Country::Li,
        Country::No,
        Country::Eu,
    ];

    /// The 30 countries (EU-27 + EEA) that run national nodes.
    pub const MEMBERS: [Country; 30] = [
        Country::At,
        Country::Be,
        Country::Bg,
        Country::Hr,
        Country::Cy,
        Country::Cz,
        Country::Dk,
        Country::Ee,
        Country::Fi,
        Country::Fr,
        Country::De,
        Country::Gr,
        Country::Hu,
        Country::Ie,
        Country::It,
        Country::Lv,
        Country::Lt,
        Country::Lu,
        Country::Mt,
        Country::Nl,
        Country::Pl,
        Country::Pt,
        Country::Ro,
        Country::Sk,
        Country::Si,
        Country::Es,
        Country::Se,
        Country::Is,
        Country::Li,
        Country::No,
    ];

    /// The ISO 3166-1 alpha-2 code (`"FI"`), or `"EU"` for the Commission.
    pub const fn code(self) -> &'static str {
        match self {
            Country::At => "AT",
            Country::Be => "BE",
            Country::Bg => "BG",
            Country::Hr => "HR",
            Country::Cy => "CY",
            Country::Cz => "CZ",
            Country::Dk => "DK",
            Country::Ee => "EE",
            Country::Fi => "FI",
            Country::Fr => "FR",
            Country::De => "DE",
            Country::Gr => "GR",
            Country::Hu => "HU",
            Country::Ie => "IE",
            Country::It => "IT",
            Country::Lv => "LV",
            Country::Lt => "LT",
            Country::Lu => "LU",
            Country::Mt => "MT",
            Country::Nl => "NL",
            Country::Pl => "PL",
            Country::Pt => "PT",
            Country::Ro => "RO",
            Country::Sk => "SK",
            Country::Si => "SI",
            Country::Es => "ES",
            Country::Se => "SE",
            Country::Is => "IS",
            Country::Li => "LI",
            Country::No => "NO",
            Country::Eu => "EU",
        }
    }

    /// The English short name (`"Finland"`).
    pub const fn english_name(self) -> &'static str {
        match self {
            Country::At => "Austria",
            Country::Be => "Belgium",
            Country::Bg => "Bulgaria",
            Country::Hr => "Croatia",
            Country::Cy => "Cyprus",
            Country::Cz => "Czechia",
            Country::Dk => "Denmark",
            Country::Ee => "Estonia",
            Country::Fi => "Finland",
            Country::Fr => "France",
            Country::De => "Germany",
            Country::Gr => "Greece",
            Country::Hu => "Hungary",
            Country::Ie => "Ireland",
            Country::It => "Italy",
            Country::Lv => "Latvia",
            Country::Lt => "Lithuania",
            Country::Lu => "Luxembourg",
            Country::Mt => "Malta",
            Country::Nl => "Netherlands",
            Country::Pl => "Poland",
            Country::Pt => "Portugal",
            Country::Ro => "Romania",
            Country::Sk => "Slovakia",
            Country::Si => "Slovenia",
            Country::Es => "Spain",
            Country::Se => "Sweden",
            Country::Is => "Iceland",
            Country::Li => "Liechtenstein",
            Country::No => "Norway",
            Country::Eu => "European Commission",
        }
    }

    /// The country's own names, one per official language (`[(Fi, "Suomi"), (Sv, "Finland")]`).
    pub const fn native_names(self) -> &'static [(Language, &'static str)] {
        match self {
            Country::At => &[(Language::De, "Österreich")],
            Country::Be => &[
                (Language::Nl, "België"),
                (Language::Fr, "Belgique"),
                (Language::De, "Belgien"),
            ],
            Country::Bg => &[(Language::Bg, "България")],
            Country::Hr => &[(Language::Hr, "Hrvatska")],
            Country::Cy => &[(Language::El, "Κύπρος")],
            Country::Cz => &[(Language::Cs, "Česko")],
            Country::Dk => &[(Language::Da, "Danmark")],
            Country::Ee => &[(Language::Et, "Eesti")],
            Country::Fi => &[(Language::Fi, "Suomi"), (Language::Sv, "Finland")],
            Country::Fr => &[(Language::Fr, "France")],
            Country::De => &[(Language::De, "Deutschland")],
            Country::Gr => &[(Language::El, "Ελλάδα")],
            Country::Hu => &[(Language::Hu, "Magyarország")],
            Country::Ie => &[(Language::Ga, "Éire"), (Language::En, "Ireland")],
            Country::It => &[(Language::It, "Italia")],
            Country::Lv => &[(Language::Lv, "Latvija")],
            Country::Lt => &[(Language::Lt, "Lietuva")],
            Country::Lu => &[(Language::Fr, "Luxembourg"), (Language::De, "Luxemburg")],
            Country::Mt => &[(Language::Mt, "Malta"), (Language::En, "Malta")],
            Country::Nl => &[(Language::Nl, "Nederland")],
            Country::Pl => &[(Language::Pl, "Polska")],
            Country::Pt => &[(Language::Pt, "Portugal")],
            Country::Ro => &[(Language::Ro, "România")],
            Country::Sk => &[(Language::Sk, "Slovensko")],
            Country::Si => &[(Language::Sl, "Slovenija")],
            Country::Es => &[(Language::Es, "España")],
            Country::Se => &[(Language::Sv, "Sverige")],
            Country::Is => &[(Language::Is, "Ísland")],
            Country::Li => &[(Language::De, "Liechtenstein")],
            Country::No => &[(Language::No, "Norge")],
            Country::Eu => &[
                (Language::En, "European Commission"),
                (Language::Fr, "Commission européenne"),
                (Language::De, "Europäische Kommission"),
            ],
        }
    }

    /// The official languages in which the country's authorities usually write;
    /// the first is the default for its node's interface.
    pub const fn official_languages(self) -> &'static [Language] {
        match self {
            Country::At => &[Language::De],
            Country::Be => &[Language::Nl, Language::Fr, Language::De],
            Country::Bg => &[Language::Bg],
            Country::Hr => &[Language::Hr],
            Country::Cy => &[Language::El],
            Country::Cz => &[Language::Cs],
            Country::Dk => &[Language::Da],
            Country::Ee => &[Language::Et],
            Country::Fi => &[Language::Fi, Language::Sv],
            Country::Fr => &[Language::Fr],
            Country::De => &[Language::De],
            Country::Gr => &[Language::El],
            Country::Hu => &[Language::Hu],
            Country::Ie => &[Language::Ga, Language::En],
            Country::It => &[Language::It],
            Country::Lv => &[Language::Lv],
            Country::Lt => &[Language::Lt],
            Country::Lu => &[Language::Fr, Language::De],
            Country::Mt => &[Language::Mt, Language::En],
            Country::Nl => &[Language::Nl],
            Country::Pl => &[Language::Pl],
            Country::Pt => &[Language::Pt],
            Country::Ro => &[Language::Ro],
            Country::Sk => &[Language::Sk],
            Country::Si => &[Language::Sl],
            Country::Es => &[Language::Es],
            Country::Se => &[Language::Sv],
            Country::Is => &[Language::Is],
            Country::Li => &[Language::De],
            Country::No => &[Language::No],
            Country::Eu => &[Language::En, Language::Fr, Language::De],
        }
    }

    /// Whether this is the Commission rather than a country.
    pub const fn is_commission(self) -> bool {
        matches!(self, Country::Eu)
    }

    /// Whether this is one of the EEA countries outside the EU.
    pub const fn is_eea_only(self) -> bool {
        matches!(self, Country::Is | Country::Li | Country::No)
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A country code that is not a participant of the federation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown country code {code:?}: expected an EU or EEA country code such as FI or PT, or EU for the Commission"
)]
pub struct UnknownCountry {
    /// The code as given.
    pub code: String,
}

impl FromStr for Country {
    type Err = UnknownCountry;

    /// Parses an ISO 3166-1 alpha-2 code, in any case; `EL` means Greece.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let upper = if upper == "EL" {
            "GR".to_owned()
        } else {
            upper
        };
        Country::ALL
            .into_iter()
            .find(|country| country.code() == upper)
            .ok_or_else(|| UnknownCountry { code: s.to_owned() })
    }
}

impl TryFrom<String> for Country {
    type Error = UnknownCountry;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Country> for String {
    fn from(country: Country) -> Self {
        country.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_countries_and_the_commission() {
        assert_eq!(Country::ALL.len(), 31);
        assert_eq!(Country::MEMBERS.len(), 30);
        assert!(!Country::MEMBERS.contains(&Country::Eu));
        assert_eq!(Country::ALL.iter().filter(|c| c.is_eea_only()).count(), 3);
    }

    #[test]
    fn every_code_parses_back() {
        for country in Country::ALL {
            assert_eq!(country.code().parse::<Country>(), Ok(country));
            assert!(!country.native_names().is_empty());
            assert!(!country.official_languages().is_empty());
        }
    }

    #[test]
    fn greece_is_found_by_both_codes_and_case_does_not_matter() {
        assert_eq!("EL".parse(), Ok(Country::Gr));
        assert_eq!("gr".parse(), Ok(Country::Gr));
        assert_eq!(" pt ".parse(), Ok(Country::Pt));
    }

    #[test]
    fn non_members_are_refused() {
        let err = "CH".parse::<Country>().unwrap_err();
        assert!(err.to_string().contains("\"CH\""), "{err}");
    }
}
