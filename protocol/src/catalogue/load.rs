//! Parsing and validating catalogue files.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use serde::Deserialize;

use super::keys::{InvalidKey, check_slug};
use super::{
    AnswerType, AreaKey, Catalogue, ChoiceOption, Labels, LegislativeArea, Procedure, ProcedureKey,
    ProcedureKind, Profession, ProfessionKey, Question, QuestionGroup, QuestionKey, QuestionSet,
    QuestionSetKey,
};
use crate::{Country, Language};

/// Why a set of catalogue files is not a valid catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// A file is not TOML or does not follow the catalogue format.
    #[error("catalogue file {file} could not be read: {source}")]
    Parse {
        /// The file's name.
        file: String,
        /// What the TOML parser found.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A label lacks one of the 24 EU languages.
    #[error(
        "{item} in catalogue file {file} has no label in {language} ({}); every label needs all 24 EU languages",
        .language.endonym()
    )]
    MissingTranslation {
        /// The file's name.
        file: String,
        /// The item whose label is incomplete (`area "services"`).
        item: String,
        /// The missing language.
        language: Language,
    },
    /// A label is present but blank in one language.
    #[error(
        "{item} in catalogue file {file} has a blank label in {language} ({}); write the text in that language",
        .language.endonym()
    )]
    BlankTranslation {
        /// The file's name.
        file: String,
        /// The item whose label is blank.
        item: String,
        /// The blank language.
        language: Language,
    },
    /// A label or search term uses a language tag imi does not know.
    #[error(
        "{item} in catalogue file {file} uses the unknown language tag {tag:?}; use one of bg, cs, da, de, el, en, es, et, fi, fr, ga, hr, hu, it, lt, lv, mt, nl, pl, pt, ro, sk, sl, sv, is, no"
    )]
    UnknownLanguage {
        /// The file's name.
        file: String,
        /// The item with the tag.
        item: String,
        /// The tag as written.
        tag: String,
    },
    /// Two items of the same kind share a key.
    #[error(
        "{item} is defined twice, in catalogue file {first_file} and again in {file}; give each its own key"
    )]
    DuplicateKey {
        /// The file with the second definition.
        file: String,
        /// The item defined twice.
        item: String,
        /// The file with the first definition.
        first_file: String,
    },
    /// An item refers to another item the catalogue does not define.
    #[error(
        "{item} in catalogue file {file} refers to {reference}, which the catalogue does not define"
    )]
    UnknownReference {
        /// The file's name.
        file: String,
        /// The item with the reference.
        item: String,
        /// What it refers to (`area "servicez"`).
        reference: String,
    },
    /// A key is not a kebab-case slug.
    #[error("{item} in catalogue file {file} has an invalid key: {source}")]
    InvalidKey {
        /// The file's name.
        file: String,
        /// The item with the key.
        item: String,
        /// What is wrong with the key.
        #[source]
        source: InvalidKey,
    },
    /// Country names are given for a code that is not a participant.
    #[error(
        "catalogue file {file} names the country {code:?}, which is not a participant; use the upper-case ISO code of an EU or EEA country, or EU for the Commission"
    )]
    UnknownCountry {
        /// The file's name.
        file: String,
        /// The code as written.
        code: String,
    },
    /// No file names a participant.
    #[error(
        "the catalogue has no names for {country} ({}); add [country.{country}] with all 24 EU languages",
        .country.english_name()
    )]
    MissingCountry {
        /// The participant without names.
        country: Country,
    },
    /// No file labels a procedure kind.
    #[error(
        "the catalogue has no label for the procedure kind {kind}; add [procedure_kind.{kind}] with all 24 EU languages"
    )]
    MissingKindLabel {
        /// The kind without a label.
        kind: ProcedureKind,
    },
    /// No file names the catalogue's version.
    #[error("no catalogue file names the catalogue's version; add version = \"…\" to one of them")]
    MissingVersion,
    /// More than one file names the catalogue's version.
    #[error(
        "catalogue files {first_file} and {file} both name the catalogue's version; keep it in one"
    )]
    DuplicateVersion {
        /// The second file naming a version.
        file: String,
        /// The first file naming a version.
        first_file: String,
    },
    /// An item breaks a structural rule (a choice without options, an empty group).
    #[error("{item} in catalogue file {file} {problem}")]
    InvalidItem {
        /// The file's name.
        file: String,
        /// The item.
        item: String,
        /// What is wrong, as the end of a sentence (`has no questions`).
        problem: &'static str,
    },
}

type RawLabels = BTreeMap<String, String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<String>,
    #[serde(default)]
    area: Vec<RawArea>,
    #[serde(default)]
    procedure: Vec<RawProcedure>,
    #[serde(default)]
    procedure_kind: BTreeMap<ProcedureKind, RawLabels>,
    #[serde(default)]
    profession: Vec<RawProfession>,
    #[serde(default)]
    question_set: Vec<RawQuestionSet>,
    #[serde(default)]
    country: BTreeMap<String, RawLabels>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArea {
    key: String,
    legal_basis: String,
    label: RawLabels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcedure {
    key: String,
    area: String,
    kind: ProcedureKind,
    reply_days: Option<u16>,
    #[serde(default)]
    working_days: bool,
    label: RawLabels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfession {
    key: String,
    area: String,
    #[serde(default)]
    sectoral: bool,
    label: RawLabels,
    #[serde(default)]
    terms: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestionSet {
    key: String,
    procedure: String,
    label: RawLabels,
    #[serde(default)]
    group: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    key: String,
    label: RawLabels,
    #[serde(default)]
    question: Vec<RawQuestion>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuestion {
    key: String,
    answer: RawAnswerType,
    #[serde(default)]
    personal_data: bool,
    #[serde(default)]
    required: bool,
    label: RawLabels,
    #[serde(default)]
    option: Vec<RawOption>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawAnswerType {
    Text,
    YesNo,
    Date,
    Number,
    Choice,
    Attachment,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOption {
    key: String,
    label: RawLabels,
}

/// Where an item is, for error messages.
struct At<'a> {
    file: &'a str,
    item: String,
}

impl At<'_> {
    fn key<K: FromStr<Err = InvalidKey>>(&self, raw: &str) -> Result<K, CatalogueError> {
        raw.parse().map_err(|source| CatalogueError::InvalidKey {
            file: self.file.to_owned(),
            item: self.item.clone(),
            source,
        })
    }

    fn slug(&self, kind: &'static str, raw: &str) -> Result<String, CatalogueError> {
        check_slug(kind, raw).map_err(|source| CatalogueError::InvalidKey {
            file: self.file.to_owned(),
            item: self.item.clone(),
            source,
        })?;
        Ok(raw.to_owned())
    }

    fn invalid(&self, problem: &'static str) -> CatalogueError {
        CatalogueError::InvalidItem {
            file: self.file.to_owned(),
            item: self.item.clone(),
            problem,
        }
    }

    fn unknown(&self, reference: String) -> CatalogueError {
        CatalogueError::UnknownReference {
            file: self.file.to_owned(),
            item: self.item.clone(),
            reference,
        }
    }

    fn language(&self, tag: &str) -> Result<Language, CatalogueError> {
        Language::ALL
            .into_iter()
            .find(|language| language.tag() == tag)
            .ok_or_else(|| CatalogueError::UnknownLanguage {
                file: self.file.to_owned(),
                item: self.item.clone(),
                tag: tag.to_owned(),
            })
    }

    /// Checks a label: known language tags, no blank text, every EU language.
    fn labels(&self, raw: &RawLabels) -> Result<Labels, CatalogueError> {
        let mut labels = BTreeMap::new();
        for (tag, text) in raw {
            let language = self.language(tag)?;
            if text.trim().is_empty() {
                return Err(CatalogueError::BlankTranslation {
                    file: self.file.to_owned(),
                    item: self.item.clone(),
                    language,
                });
            }
            labels.insert(language, text.trim().to_owned());
        }
        if let Some(language) = Language::EU
            .into_iter()
            .find(|language| !labels.contains_key(language))
        {
            return Err(CatalogueError::MissingTranslation {
                file: self.file.to_owned(),
                item: self.item.clone(),
                language,
            });
        }
        Ok(labels.into_iter().collect())
    }

    fn duplicate(&self, first_file: &str) -> CatalogueError {
        CatalogueError::DuplicateKey {
            file: self.file.to_owned(),
            item: self.item.clone(),
            first_file: first_file.to_owned(),
        }
    }
}

/// Keys already seen, with the file that defined each.
struct Seen<'a, K>(HashMap<K, (usize, &'a str)>);

impl<'a, K: std::hash::Hash + Eq + Clone> Seen<'a, K> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    fn insert(&mut self, at: &At<'a>, key: &K, index: usize) -> Result<(), CatalogueError> {
        if let Some((_, first_file)) = self.0.get(key) {
            return Err(at.duplicate(first_file));
        }
        self.0.insert(key.clone(), (index, at.file));
        Ok(())
    }

    fn index(self) -> HashMap<K, usize> {
        self.0.into_iter().map(|(k, (i, _))| (k, i)).collect()
    }
}

pub(super) fn load(sources: &[(&str, &str)]) -> Result<Catalogue, CatalogueError> {
    let mut files = Vec::with_capacity(sources.len());
    for &(file, text) in sources {
        let raw: RawFile = toml::from_str(text).map_err(|source| CatalogueError::Parse {
            file: file.to_owned(),
            source: Box::new(source),
        })?;
        files.push((file, raw));
    }

    let mut version: Option<(&str, String)> = None;
    for (file, raw) in &files {
        let Some(text) = &raw.version else { continue };
        if let Some((first_file, _)) = version {
            return Err(CatalogueError::DuplicateVersion {
                file: (*file).to_owned(),
                first_file: first_file.to_owned(),
            });
        }
        if text.trim().is_empty() {
            let at = At {
                file,
                item: "the catalogue's version".to_owned(),
            };
            return Err(at.invalid("is blank"));
        }
        version = Some((file, text.trim().to_owned()));
    }
    let (_, version) = version.ok_or(CatalogueError::MissingVersion)?;

    let mut areas = Vec::new();
    let mut area_seen = Seen::new();
    for (file, raw) in &files {
        for area in &raw.area {
            let at = At {
                file,
                item: format!("area {:?}", area.key),
            };
            let key: AreaKey = at.key(&area.key)?;
            area_seen.insert(&at, &key, areas.len())?;
            if area.legal_basis.trim().is_empty() {
                return Err(at.invalid("has a blank legal basis"));
            }
            areas.push(LegislativeArea {
                key,
                legal_basis: area.legal_basis.trim().to_owned(),
                label: at.labels(&area.label)?,
            });
        }
    }
    let area_index = area_seen.index();

    let mut kind_labels = BTreeMap::new();
    let mut kind_files: HashMap<ProcedureKind, &str> = HashMap::new();
    for (file, raw) in &files {
        for (kind, label) in &raw.procedure_kind {
            let at = At {
                file,
                item: format!("procedure kind {kind:?}", kind = kind.as_str()),
            };
            if let Some(first_file) = kind_files.insert(*kind, file) {
                return Err(at.duplicate(first_file));
            }
            kind_labels.insert(*kind, at.labels(label)?);
        }
    }
    if let Some(kind) = ProcedureKind::ALL
        .into_iter()
        .find(|kind| !kind_labels.contains_key(kind))
    {
        return Err(CatalogueError::MissingKindLabel { kind });
    }

    let mut procedures = Vec::new();
    let mut procedure_seen = Seen::new();
    for (file, raw) in &files {
        for procedure in &raw.procedure {
            let at = At {
                file,
                item: format!("procedure {:?}", procedure.key),
            };
            let key: ProcedureKey = at.key(&procedure.key)?;
            procedure_seen.insert(&at, &key, procedures.len())?;
            let area: AreaKey = at.key(&procedure.area)?;
            if !area_index.contains_key(&area) {
                return Err(at.unknown(format!("area {:?}", procedure.area)));
            }
            if procedure.reply_days == Some(0) {
                return Err(at.invalid("has a reply deadline of 0 days; leave reply_days out when there is no deadline"));
            }
            if procedure.working_days && procedure.reply_days.is_none() {
                return Err(at.invalid("counts its deadline in working days but has no reply_days"));
            }
            procedures.push(Procedure {
                key,
                area,
                kind: procedure.kind,
                label: at.labels(&procedure.label)?,
                question_sets: Vec::new(),
                reply_days: procedure.reply_days,
                reply_working_days: procedure.working_days,
            });
        }
    }
    let procedure_index = procedure_seen.index();

    let mut professions = Vec::new();
    let mut profession_seen = Seen::new();
    for (file, raw) in &files {
        for profession in &raw.profession {
            let at = At {
                file,
                item: format!("profession {:?}", profession.key),
            };
            let key: ProfessionKey = at.key(&profession.key)?;
            profession_seen.insert(&at, &key, professions.len())?;
            let area: AreaKey = at.key(&profession.area)?;
            if !area_index.contains_key(&area) {
                return Err(at.unknown(format!("area {:?}", profession.area)));
            }
            let label = at.labels(&profession.label)?;
            let mut terms = BTreeMap::new();
            for (tag, words) in &profession.terms {
                let language = at.language(tag)?;
                if words.iter().any(|word| word.trim().is_empty()) {
                    return Err(at.invalid("has a blank search term"));
                }
                terms.insert(
                    language,
                    words.iter().map(|word| word.trim().to_owned()).collect(),
                );
            }
            professions.push(Profession {
                key,
                area,
                sectoral: profession.sectoral,
                label,
                terms,
            });
        }
    }
    let profession_index = profession_seen.index();

    let mut question_sets = Vec::new();
    let mut question_set_seen = Seen::new();
    for (file, raw) in &files {
        for set in &raw.question_set {
            let at = At {
                file,
                item: format!("question set {:?}", set.key),
            };
            let key: QuestionSetKey = at.key(&set.key)?;
            question_set_seen.insert(&at, &key, question_sets.len())?;
            let procedure: ProcedureKey = at.key(&set.procedure)?;
            let Some(&procedure_at) = procedure_index.get(&procedure) else {
                return Err(at.unknown(format!("procedure {:?}", set.procedure)));
            };
            let label = at.labels(&set.label)?;
            if set.group.is_empty() {
                return Err(at.invalid("has no groups of questions"));
            }
            let groups = question_groups(file, set)?;
            procedures[procedure_at].question_sets.push(key.clone());
            question_sets.push(QuestionSet {
                key,
                procedure,
                label,
                groups,
            });
        }
    }
    let question_set_index = question_set_seen.index();

    let mut countries = BTreeMap::new();
    let mut country_files: HashMap<Country, &str> = HashMap::new();
    for (file, raw) in &files {
        for (code, names) in &raw.country {
            let country = Country::ALL
                .into_iter()
                .find(|country| country.code() == code)
                .ok_or_else(|| CatalogueError::UnknownCountry {
                    file: (*file).to_owned(),
                    code: code.clone(),
                })?;
            let at = At {
                file,
                item: format!("country {code}"),
            };
            if let Some(first_file) = country_files.insert(country, file) {
                return Err(at.duplicate(first_file));
            }
            countries.insert(country, at.labels(names)?);
        }
    }
    if let Some(country) = Country::ALL
        .into_iter()
        .find(|country| !countries.contains_key(country))
    {
        return Err(CatalogueError::MissingCountry { country });
    }

    Ok(Catalogue {
        version,
        areas,
        procedures,
        professions,
        question_sets,
        kind_labels,
        countries,
        area_index,
        procedure_index,
        profession_index,
        question_set_index,
    })
}

/// Validates the groups of one question set.
fn question_groups(file: &str, set: &RawQuestionSet) -> Result<Vec<QuestionGroup>, CatalogueError> {
    let mut groups = Vec::with_capacity(set.group.len());
    let mut group_seen = Seen::new();
    let mut question_seen = Seen::new();
    for raw_group in &set.group {
        let at = At {
            file,
            item: format!("group {:?} of question set {:?}", raw_group.key, set.key),
        };
        let key = at.slug("question group", &raw_group.key)?;
        group_seen.insert(&at, &key, groups.len())?;
        let label = at.labels(&raw_group.label)?;
        if raw_group.question.is_empty() {
            return Err(at.invalid("has no questions"));
        }
        let mut questions = Vec::with_capacity(raw_group.question.len());
        for raw_question in &raw_group.question {
            let at = At {
                file,
                item: format!(
                    "question {:?} of question set {:?}",
                    raw_question.key, set.key
                ),
            };
            let key: QuestionKey = at.key(&raw_question.key)?;
            question_seen.insert(&at, &key, 0)?;
            let label = at.labels(&raw_question.label)?;
            let answer = answer_type(file, &set.key, raw_question, &at)?;
            questions.push(Question {
                key,
                label,
                answer,
                personal_data: raw_question.personal_data,
                required: raw_question.required,
            });
        }
        groups.push(QuestionGroup {
            key,
            label,
            questions,
        });
    }
    Ok(groups)
}

/// Validates a question's answer type and, for a choice, its options.
fn answer_type(
    file: &str,
    set: &str,
    question: &RawQuestion,
    at: &At<'_>,
) -> Result<AnswerType, CatalogueError> {
    let answer = match question.answer {
        RawAnswerType::Text => AnswerType::Text,
        RawAnswerType::YesNo => AnswerType::YesNo,
        RawAnswerType::Date => AnswerType::Date,
        RawAnswerType::Number => AnswerType::Number,
        RawAnswerType::Attachment => AnswerType::Attachment,
        RawAnswerType::Choice => {
            if question.option.len() < 2 {
                return Err(at.invalid("is a choice but offers fewer than two options"));
            }
            let mut options = Vec::with_capacity(question.option.len());
            let mut seen = Seen::new();
            for option in &question.option {
                let at = At {
                    file,
                    item: format!(
                        "option {:?} of question {:?} in question set {set:?}",
                        option.key, question.key
                    ),
                };
                let key = at.slug("option", &option.key)?;
                seen.insert(&at, &key, options.len())?;
                options.push(ChoiceOption {
                    key,
                    label: at.labels(&option.label)?,
                });
            }
            return Ok(AnswerType::Choice { options });
        }
    };
    if !question.option.is_empty() {
        return Err(at.invalid("has options but its answer is not a choice"));
    }
    Ok(answer)
}
