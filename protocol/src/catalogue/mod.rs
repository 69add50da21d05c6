//! The catalogue: legislative areas, their procedures, the regulated
//! professions, the standard question sets and the country names, each
//! labelled in all 24 EU languages.
//!
//! The Commission publishes the catalogue; every node reads the same data,
//! so a question asked in Finnish is read in Portuguese without machine
//! translation. The data live as TOML files in `protocol/catalogue/`, are
//! embedded in the binary and parsed once by [`Catalogue::builtin`];
//! [`Catalogue::from_sources`] parses and validates any other set of files
//! the same way (one file may hold any mix of kinds):
//!
//! ```toml
//! version = "2025.1"            # exactly one file names the version
//!
//! [[area]]
//! key = "services"
//! legal_basis = "Directive 2006/123/EC"
//! label = { en = "Services", fi = "Palvelut", … }   # all 24 EU languages
//!
//! [[procedure]]
//! key = "services-alert"
//! area = "services"
//! kind = "alert"                # information-request, alert, notification, repository, public-case
//! reply_days = 10               # optional legal or standard deadline
//! working_days = false          # whether reply_days counts working days
//! label = { … }
//!
//! [[profession]]
//! key = "doctor"
//! area = "professional-qualifications"
//! sectoral = true
//! label = { … }
//! terms = { en = ["physician", "GP"], de = ["Arzt", "Ärztin"] }   # optional search terms
//!
//! [[question_set]]              # groups of typed questions for a procedure
//! key = "pq-general"
//! procedure = "pq-information-request"
//! label = { … }
//! [[question_set.group]]
//! key = "professional"
//! label = { … }
//! [[question_set.group.question]]
//! key = "date-of-birth"
//! answer = "date"               # text, yes-no, date, number, choice, attachment
//! personal_data = true
//! required = true
//! label = { … }
//!
//! [procedure_kind.alert]        # labels of the five procedure kinds
//! en = "Alert"
//!
//! [country.PT]                  # names of all 31 participants
//! en = "Portugal"
//! fi = "Portugali"
//! ```
//!
//! ```
//! use imi_protocol::{Catalogue, Country, Language, ProfessionKey};
//!
//! let catalogue = Catalogue::builtin();
//! let doctor: ProfessionKey = "doctor".parse().unwrap();
//! let doctor = catalogue.profession(&doctor).unwrap();
//! assert!(doctor.sectoral);
//! assert_eq!(doctor.label.get(Language::Fi), "Lääkäri");
//! assert_eq!(catalogue.country_name(Country::Pt, Language::It), "Portogallo");
//! ```

mod answer;
mod keys;
mod labels;
mod load;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::{Country, Language};

pub use answer::{AnswerError, AnswerValue};
pub use keys::{AreaKey, InvalidKey, ProcedureKey, ProfessionKey, QuestionKey, QuestionSetKey};
pub use labels::Labels;
pub use load::CatalogueError;

/// The files of the built-in catalogue, by file name.
const BUILTIN_SOURCES: &[(&str, &str)] = &[
    ("areas.toml", include_str!("../../catalogue/areas.toml")),
    (
        "procedures.toml",
        include_str!("../../catalogue/procedures.toml"),
    ),
    (
        "professions.toml",
        include_str!("../../catalogue/professions.toml"),
    ),
    (
        "questions-pq.toml",
        include_str!("../../catalogue/questions-pq.toml"),
    ),
    (
        "countries.toml",
        include_str!("../../catalogue/countries.toml"),
    ),
];

/// A legislative area: a Union act (or a group of them) under which
/// authorities cooperate through imi.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegislativeArea {
    /// The area's key (`"posting-of-workers"`).
    pub key: AreaKey,
    /// The Union acts the cooperation rests on (`"Directive 2006/123/EC"`).
    pub legal_basis: String,
    /// The area's name.
    pub label: Labels,
}

/// What a procedure does, which decides its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProcedureKind {
    /// One authority asks another a set of questions.
    InformationRequest,
    /// One authority warns many (other countries, the Commission) of a risk.
    Alert,
    /// One authority informs many, e.g. of a new requirement.
    Notification,
    /// A shared database for the area, e.g. registers of professions.
    Repository,
    /// A case opened by a citizen or business through the public interface.
    PublicCase,
}

impl ProcedureKind {
    /// Every kind, in workflow order.
    pub const ALL: [ProcedureKind; 5] = [
        ProcedureKind::InformationRequest,
        ProcedureKind::Alert,
        ProcedureKind::Notification,
        ProcedureKind::Repository,
        ProcedureKind::PublicCase,
    ];

    /// The kind's key as used in catalogue files (`"information-request"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProcedureKind::InformationRequest => "information-request",
            ProcedureKind::Alert => "alert",
            ProcedureKind::Notification => "notification",
            ProcedureKind::Repository => "repository",
            ProcedureKind::PublicCase => "public-case",
        }
    }
}

impl std::fmt::Display for ProcedureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A procedure of a legislative area: a kind of exchange with its forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Procedure {
    /// The procedure's key (`"pq-information-request"`).
    pub key: ProcedureKey,
    /// The legislative area it belongs to.
    pub area: AreaKey,
    /// What it does.
    pub kind: ProcedureKind,
    /// The procedure's name.
    pub label: Labels,
    /// The question sets a request of this procedure is built from, in
    /// catalogue order; empty for procedures without standard questions.
    pub question_sets: Vec<QuestionSetKey>,
    /// The legal or standard deadline for the reply or decision, in days,
    /// where the area's acts set one.
    pub reply_days: Option<u16>,
    /// Whether [`Procedure::reply_days`] counts working days (as the posting
    /// of workers rules do) rather than calendar days.
    pub reply_working_days: bool,
}

/// A regulated profession.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profession {
    /// The profession's key (`"doctor"`).
    pub key: ProfessionKey,
    /// The legislative area under which it is recognised.
    pub area: AreaKey,
    /// Whether it is one of the sectoral professions of Directive 2005/36/EC
    /// recognised automatically on the basis of harmonised training.
    pub sectoral: bool,
    /// The profession's name.
    pub label: Labels,
    /// Further search terms per language (synonyms, titles, the names of
    /// their chambers), besides the label.
    pub terms: BTreeMap<Language, Vec<String>>,
}

impl Profession {
    /// Every text a search may match this profession by, with its language:
    /// the label in each language, then the further search terms.
    pub fn search_terms(&self) -> impl Iterator<Item = (Language, &str)> {
        self.label.iter().chain(
            self.terms
                .iter()
                .flat_map(|(lang, words)| words.iter().map(move |word| (*lang, word.as_str()))),
        )
    }
}

/// A standard set of questions for one procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionSet {
    /// The set's key (`"pq-general"`).
    pub key: QuestionSetKey,
    /// The procedure it belongs to.
    pub procedure: ProcedureKey,
    /// The set's name.
    pub label: Labels,
    /// Its questions, in groups, in the order they are shown.
    pub groups: Vec<QuestionGroup>,
}

impl QuestionSet {
    /// Every question of the set, group after group.
    pub fn questions(&self) -> impl Iterator<Item = &Question> {
        self.groups.iter().flat_map(|group| group.questions.iter())
    }

    /// The question with `key`, if the set has one.
    pub fn question(&self, key: &QuestionKey) -> Option<&Question> {
        self.questions().find(|question| question.key == *key)
    }

    /// The group with `key` (`"attachments"`), if the set has one.
    pub fn group(&self, key: &str) -> Option<&QuestionGroup> {
        self.groups.iter().find(|group| group.key == key)
    }
}

/// Questions shown together under one heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuestionGroup {
    /// The group's key, unique within its set (`"qualification"`).
    pub key: String,
    /// The group's heading.
    pub label: Labels,
    /// Its questions, in order.
    pub questions: Vec<Question>,
}

/// One question of a question set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    /// The question's key, unique within its set (`"date-of-birth"`).
    pub key: QuestionKey,
    /// The question as asked.
    pub label: Labels,
    /// The kind of answer it takes.
    pub answer: AnswerType,
    /// Whether the answer is personal data (shown marked, blocked and
    /// deleted with the case).
    pub personal_data: bool,
    /// Whether the question must be answered.
    pub required: bool,
}

/// The kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum AnswerType {
    /// Free text.
    Text,
    /// Yes or no.
    YesNo,
    /// A calendar date.
    Date,
    /// A whole number.
    Number,
    /// One of a fixed list of options.
    Choice {
        /// The options, in the order they are shown.
        options: Vec<ChoiceOption>,
    },
    /// A file.
    Attachment,
}

/// One option of a choice question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChoiceOption {
    /// The option's key, unique within its question (`"diploma"`).
    pub key: String,
    /// The option as shown.
    pub label: Labels,
}

/// The whole catalogue, validated: every reference resolves, every key is
/// unique and every label exists in all 24 EU languages.
#[derive(Debug, Clone)]
pub struct Catalogue {
    version: String,
    areas: Vec<LegislativeArea>,
    procedures: Vec<Procedure>,
    professions: Vec<Profession>,
    question_sets: Vec<QuestionSet>,
    kind_labels: BTreeMap<ProcedureKind, Labels>,
    countries: BTreeMap<Country, Labels>,
    area_index: HashMap<AreaKey, usize>,
    procedure_index: HashMap<ProcedureKey, usize>,
    profession_index: HashMap<ProfessionKey, usize>,
    question_set_index: HashMap<QuestionSetKey, usize>,
}

impl Catalogue {
    /// The catalogue built into imi, parsed on first use.
    ///
    /// # Panics
    ///
    /// Never in a released build: the embedded files are checked by the test
    /// suite, and a broken file is a build defect, not a runtime condition.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Catalogue::from_sources(BUILTIN_SOURCES)
                .unwrap_or_else(|err| panic!("the built-in catalogue is invalid: {err}"))
        })
    }

    /// The files of the built-in catalogue as `(file name, TOML text)`, for
    /// publishing them to other nodes.
    pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
        BUILTIN_SOURCES
    }

    /// Parses and validates a catalogue from `(file name, TOML text)` pairs.
    /// Files may hold any mix of areas, procedures, professions, question
    /// sets, procedure kind labels and country names; exactly one names the
    /// version. The first problem found is returned, naming its file and item.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
        load::load(sources)
    }

    /// The catalogue's version (`"2025.1"`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every legislative area, in catalogue order.
    pub fn areas(&self) -> &[LegislativeArea] {
        &self.areas
    }

    /// The legislative area with `key`.
    pub fn area(&self, key: &AreaKey) -> Option<&LegislativeArea> {
        self.area_index.get(key).map(|&i| &self.areas[i])
    }

    /// Every procedure, in catalogue order.
    pub fn procedures(&self) -> &[Procedure] {
        &self.procedures
    }

    /// The procedure with `key`.
    pub fn procedure(&self, key: &ProcedureKey) -> Option<&Procedure> {
        self.procedure_index.get(key).map(|&i| &self.procedures[i])
    }

    /// The procedures of one legislative area, in catalogue order.
    pub fn procedures_of(&self, area: &AreaKey) -> impl Iterator<Item = &Procedure> {
        self.procedures.iter().filter(move |p| p.area == *area)
    }

    /// Every regulated profession, in catalogue order.
    pub fn professions(&self) -> &[Profession] {
        &self.professions
    }

    /// The professions recognised under one legislative area, in catalogue
    /// order.
    pub fn professions_of(&self, area: &AreaKey) -> impl Iterator<Item = &Profession> {
        self.professions.iter().filter(move |p| p.area == *area)
    }

    /// The profession with `key`.
    pub fn profession(&self, key: &ProfessionKey) -> Option<&Profession> {
        self.profession_index
            .get(key)
            .map(|&i| &self.professions[i])
    }

    /// Every question set, in catalogue order.
    pub fn question_sets(&self) -> &[QuestionSet] {
        &self.question_sets
    }

    /// The question set with `key`.
    pub fn question_set(&self, key: &QuestionSetKey) -> Option<&QuestionSet> {
        self.question_set_index
            .get(key)
            .map(|&i| &self.question_sets[i])
    }

    /// The name of a procedure kind (`"Information request"`).
    pub fn kind_label(&self, kind: ProcedureKind) -> &Labels {
        &self.kind_labels[&kind]
    }

    /// The name of `country` in `lang` (`"Portugali"` for Portugal in
    /// Finnish), in English where the catalogue has no name in `lang`.
    pub fn country_name(&self, country: Country, lang: Language) -> &str {
        self.country_names(country).get(lang)
    }

    /// The names of `country` in every language.
    pub fn country_names(&self, country: Country) -> &Labels {
        // Validation guarantees an entry for every participant.
        &self.countries[&country]
    }
}
