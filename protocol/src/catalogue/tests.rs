//! Tests of the built-in catalogue and of the loader's validation.

use super::*;

/// Every label of the catalogue with the item it belongs to.
fn every_label(catalogue: &Catalogue) -> Vec<(String, &Labels)> {
    let mut labels = Vec::new();
    for area in catalogue.areas() {
        labels.push((format!("area {}", area.key), &area.label));
    }
    for kind in ProcedureKind::ALL {
        labels.push((format!("procedure kind {kind}"), catalogue.kind_label(kind)));
    }
    for procedure in catalogue.procedures() {
        labels.push((format!("procedure {}", procedure.key), &procedure.label));
    }
    for profession in catalogue.professions() {
        labels.push((format!("profession {}", profession.key), &profession.label));
    }
    for set in catalogue.question_sets() {
        labels.push((format!("question set {}", set.key), &set.label));
        for group in &set.groups {
            labels.push((format!("group {}/{}", set.key, group.key), &group.label));
            for question in &group.questions {
                let item = format!("question {}/{}", set.key, question.key);
                labels.push((item.clone(), &question.label));
                if let AnswerType::Choice { options } = &question.answer {
                    for option in options {
                        labels.push((format!("option {item}/{}", option.key), &option.label));
                    }
                }
            }
        }
    }
    for country in Country::ALL {
        labels.push((
            format!("country {country}"),
            catalogue.country_names(country),
        ));
    }
    labels
}

#[test]
fn every_builtin_label_exists_in_all_24_eu_languages() {
    let catalogue = Catalogue::builtin();
    let labels = every_label(catalogue);
    assert!(labels.len() > 200, "only {} labels", labels.len());
    let mut missing = Vec::new();
    for (item, label) in &labels {
        for language in Language::EU {
            match label.exact(language) {
                Some(text) if !text.trim().is_empty() => {}
                Some(_) => missing.push(format!("{item}: blank in {language}")),
                None => missing.push(format!("{item}: missing {language}")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "incomplete labels:\n{}",
        missing.join("\n")
    );
}

#[test]
fn builtin_labels_are_translated_not_copied_from_english() {
    // A label may equal its English text in a few languages ("Architect",
    // "Services" in French), but an item whose label is English in most
    // languages was never translated. Country names ("Malta") and the name
    // SOLVIT are the same in most languages by nature.
    let catalogue = Catalogue::builtin();
    for (item, label) in every_label(catalogue) {
        if item.starts_with("country ") {
            continue;
        }
        let english = label.get(Language::En);
        let same = Language::EU
            .iter()
            .filter(|&&l| l != Language::En && label.get(l) == english)
            .count();
        let allowed = if item == "area solvit" { 23 } else { 12 };
        assert!(
            same <= allowed,
            "{item} is English in {same} other languages"
        );
    }
}

#[test]
fn builtin_catalogue_has_the_areas_and_procedures_of_imi() {
    let catalogue = Catalogue::builtin();
    assert!(!catalogue.version().is_empty());
    assert!(
        catalogue.areas().len() >= 17,
        "{} areas",
        catalogue.areas().len()
    );
    assert!(
        catalogue.procedures().len() >= 40,
        "{} procedures",
        catalogue.procedures().len()
    );
    for kind in ProcedureKind::ALL {
        assert!(
            catalogue.procedures().iter().any(|p| p.kind == kind),
            "no procedure of kind {kind}"
        );
    }
    for area in catalogue.areas() {
        assert!(
            catalogue.procedures_of(&area.key).next().is_some(),
            "area {} has no procedure",
            area.key
        );
    }
    let pq: AreaKey = "professional-qualifications".parse().unwrap();
    let pq_kinds: Vec<_> = catalogue.procedures_of(&pq).map(|p| p.kind).collect();
    assert!(pq_kinds.contains(&ProcedureKind::InformationRequest));
    assert!(pq_kinds.contains(&ProcedureKind::Alert));
    assert!(pq_kinds.contains(&ProcedureKind::Repository));
    let services = catalogue.area(&"services".parse().unwrap()).unwrap();
    assert_eq!(services.legal_basis, "Directive 2006/123/EC");
    assert_eq!(services.label.get(Language::Fi), "Palvelut");

    let urgent = catalogue
        .procedure(&"pow-urgent-information-request".parse().unwrap())
        .unwrap();
    assert_eq!(urgent.reply_days, Some(2));
    let solvit = catalogue
        .procedure(&"solvit-case".parse().unwrap())
        .unwrap();
    assert_eq!(solvit.kind, ProcedureKind::PublicCase);
    assert_eq!(solvit.reply_days, Some(70));
    assert!(
        catalogue
            .procedure(&"no-such-procedure".parse().unwrap())
            .is_none()
    );
}

#[test]
fn the_seven_sectoral_professions_are_present_and_marked() {
    let catalogue = Catalogue::builtin();
    for key in [
        "doctor",
        "specialist-doctor",
        "nurse",
        "dentist",
        "veterinary-surgeon",
        "midwife",
        "pharmacist",
        "architect",
    ] {
        let profession = catalogue
            .profession(&key.parse().unwrap())
            .unwrap_or_else(|| panic!("profession {key} is missing"));
        assert!(profession.sectoral, "{key} is not marked sectoral");
        assert_eq!(profession.area, "professional-qualifications");
    }
    let sectoral = catalogue
        .professions()
        .iter()
        .filter(|p| p.sectoral)
        .count();
    assert_eq!(
        sectoral, 8,
        "only the seven sectoral professions are sectoral"
    );
    assert!(catalogue.professions().len() >= 28);
    for key in [
        "physiotherapist",
        "lawyer",
        "teacher",
        "psychologist",
        "electrician",
    ] {
        let profession = catalogue.profession(&key.parse().unwrap()).unwrap();
        assert!(!profession.sectoral, "{key} is marked sectoral");
    }
}

#[test]
fn professions_carry_search_terms_for_cross_language_matching() {
    let catalogue = Catalogue::builtin();
    let doctor = catalogue.profession(&"doctor".parse().unwrap()).unwrap();
    let terms = |lang| doctor.terms.get(&lang).cloned().unwrap_or_default();
    assert!(terms(Language::En).contains(&"physician".to_owned()));
    assert!(terms(Language::En).contains(&"GP".to_owned()));
    assert!(terms(Language::De).contains(&"Ärztin".to_owned()));
    assert!(terms(Language::De).contains(&"Ärztekammer".to_owned()));
    assert_eq!(doctor.label.get(Language::Pt), "Médico");
    assert_eq!(doctor.label.get(Language::Fi), "Lääkäri");
    let searchable: Vec<_> = doctor.search_terms().collect();
    assert!(searchable.contains(&(Language::Fi, "Lääkäri")));
    assert!(searchable.contains(&(Language::De, "Ärztekammer")));
    assert!(searchable.contains(&(Language::Pt, "Médico")));
    let pq: AreaKey = "professional-qualifications".parse().unwrap();
    assert_eq!(
        catalogue.professions_of(&pq).count(),
        catalogue.professions().len()
    );
    let with_terms = catalogue
        .professions()
        .iter()
        .filter(|p| !p.terms.is_empty())
        .count();
    assert_eq!(with_terms, catalogue.professions().len());
}

#[test]
fn professional_qualification_sets_have_the_six_groups() {
    let catalogue = Catalogue::builtin();
    let request: ProcedureKey = "pq-information-request".parse().unwrap();
    let procedure = catalogue.procedure(&request).unwrap();
    let keys: Vec<_> = procedure.question_sets.iter().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["pq-general", "pq-establishment", "pq-temporary"]);
    for key in &procedure.question_sets {
        let set = catalogue.question_set(key).unwrap();
        assert_eq!(set.procedure, request);
        let groups: Vec<_> = set.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(
            groups,
            [
                "profession",
                "professional",
                "qualification",
                "experience",
                "exercise",
                "attachments"
            ],
            "question set {key}"
        );
        let professional = set.group("professional").unwrap();
        assert!(professional.questions.iter().all(|q| q.personal_data));
        let profession = set.group("profession").unwrap();
        assert!(profession.questions.iter().all(|q| !q.personal_data));
        let attachments = set.group("attachments").unwrap();
        assert!(
            attachments
                .questions
                .iter()
                .all(|q| q.answer == AnswerType::Attachment)
        );
        let birth = set.question(&"date-of-birth".parse().unwrap()).unwrap();
        assert_eq!(birth.answer, AnswerType::Date);
        assert!(birth.required && birth.personal_data);
    }
    let general = catalogue
        .question_set(&"pq-general".parse().unwrap())
        .unwrap();
    let mut kinds: Vec<_> = general.questions().map(|q| q.answer.kind_name()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 6, "every answer type is used: {kinds:?}");
    let with_sets: Vec<_> = catalogue
        .procedures()
        .iter()
        .filter(|p| !p.question_sets.is_empty())
        .map(|p| p.key.as_str())
        .collect();
    assert_eq!(with_sets, ["pq-information-request", "pq-alert"]);
}

#[test]
fn the_professional_qualifications_alert_carries_the_decision() {
    let catalogue = Catalogue::builtin();
    let alert = catalogue.procedure(&"pq-alert".parse().unwrap()).unwrap();
    assert_eq!(alert.kind, ProcedureKind::Alert);
    assert_eq!(
        alert.question_sets,
        ["pq-alert-form".parse::<QuestionSetKey>().unwrap()]
    );
    let form = catalogue.question_set(&alert.question_sets[0]).unwrap();
    let groups: Vec<_> = form.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(
        groups,
        ["professional", "profession", "decision", "attachments"]
    );
    let scope = form.question(&"scope".parse().unwrap()).unwrap();
    assert!(scope.required);
    assert_eq!(
        scope.check_answer(&AnswerValue::Choice("prohibition".into())),
        Ok(())
    );
    let end = form.question(&"period-end".parse().unwrap()).unwrap();
    assert!(!end.required, "the end of a restriction is often unknown");
}

#[test]
fn deadlines_say_whether_they_count_working_days() {
    let catalogue = Catalogue::builtin();
    let procedure = |key: &str| catalogue.procedure(&key.parse().unwrap()).unwrap();
    let posting = procedure("pow-information-request");
    assert_eq!(
        (posting.reply_days, posting.reply_working_days),
        (Some(25), true)
    );
    let solvit = procedure("solvit-case");
    assert_eq!(
        (solvit.reply_days, solvit.reply_working_days),
        (Some(70), false)
    );
    for p in catalogue.procedures() {
        assert!(p.reply_days.is_some() || !p.reply_working_days, "{}", p.key);
    }
}

#[test]
fn country_names_exist_in_every_language_for_search() {
    let catalogue = Catalogue::builtin();
    assert_eq!(
        catalogue.country_name(Country::Pt, Language::Fi),
        "Portugali"
    );
    assert_eq!(
        catalogue.country_name(Country::Pt, Language::It),
        "Portogallo"
    );
    assert_eq!(catalogue.country_name(Country::De, Language::Pl), "Niemcy");
    assert_eq!(catalogue.country_name(Country::Gr, Language::El), "Ελλάδα");
    assert_eq!(
        catalogue.country_name(Country::Eu, Language::Fr),
        "Commission européenne"
    );
    assert_eq!(
        catalogue.country_name(Country::Fi, Language::Is),
        "Finnland"
    );
    for country in Country::ALL {
        assert_eq!(
            catalogue.country_name(country, Language::En),
            country.english_name()
        );
        for (language, native) in country.native_names() {
            assert_eq!(
                catalogue.country_name(country, *language),
                *native,
                "{country} in {language}"
            );
        }
    }
}

#[test]
fn builtin_sources_are_the_files_in_the_repository() {
    let names: Vec<_> = Catalogue::builtin_sources()
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        names,
        [
            "areas.toml",
            "procedures.toml",
            "professions.toml",
            "questions-pq.toml",
            "countries.toml"
        ]
    );
    let again = Catalogue::from_sources(Catalogue::builtin_sources()).unwrap();
    assert_eq!(again.areas(), Catalogue::builtin().areas());
}

// ---- validation, through small catalogues built here ----

/// A label in all 24 EU languages, optionally leaving one out.
fn label(text: &str, skip: Option<&str>) -> String {
    let entries: Vec<_> = Language::EU
        .iter()
        .filter(|l| Some(l.tag()) != skip)
        .map(|l| format!("{} = \"{text} {}\"", l.tag(), l.tag()))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

fn kinds() -> String {
    ProcedureKind::ALL
        .iter()
        .map(|k| format!("procedure_kind.{k} = {}\n", label(k.as_str(), None)))
        .collect()
}

fn countries() -> String {
    Country::ALL
        .iter()
        .map(|c| format!("country.{c} = {}\n", label(c.english_name(), None)))
        .collect()
}

const AREAS: &str = r#"
version = "test.1"

[[area]]
key = "services"
legal_basis = "Directive 2006/123/EC"
"#;

fn areas() -> String {
    format!("{AREAS}label = {}\n", label("Services", None))
}

fn procedures(area: &str, skip: Option<&str>) -> String {
    format!(
        r#"
[[procedure]]
key = "services-alert"
area = "{area}"
kind = "alert"
reply_days = 10
label = {}
"#,
        label("Alert", skip)
    )
}

fn questions(options: &str) -> String {
    format!(
        r#"
[[question_set]]
key = "alert-form"
procedure = "services-alert"
label = {set}

[[question_set.group]]
key = "risk"
label = {group}

[[question_set.group.question]]
key = "severity"
answer = "choice"
required = true
label = {question}
{options}
"#,
        set = label("Alert form", None),
        group = label("Risk", None),
        question = label("Severity", None),
    )
}

fn two_options() -> String {
    format!(
        "[[question_set.group.question.option]]\nkey = \"low\"\nlabel = {}\n\
         [[question_set.group.question.option]]\nkey = \"high\"\nlabel = {}\n",
        label("Low", None),
        label("High", None)
    )
}

/// A valid small catalogue; each test breaks one thing in it.
struct Files {
    areas: String,
    procedures: String,
    questions: String,
    extra: String,
}

impl Files {
    fn valid() -> Self {
        Files {
            areas: areas(),
            procedures: format!("{}{}", kinds(), procedures("services", None)),
            questions: questions(&two_options()),
            extra: countries(),
        }
    }

    fn load(&self) -> Result<Catalogue, CatalogueError> {
        Catalogue::from_sources(&[
            ("areas.toml", &self.areas),
            ("procedures.toml", &self.procedures),
            ("questions.toml", &self.questions),
            ("countries.toml", &self.extra),
        ])
    }
}

#[test]
fn a_small_valid_catalogue_loads() {
    let catalogue = Files::valid().load().unwrap();
    assert_eq!(catalogue.version(), "test.1");
    assert_eq!(catalogue.areas().len(), 1);
    let alert = &catalogue.procedures()[0];
    assert_eq!(alert.reply_days, Some(10));
    assert_eq!(alert.question_sets[0], "alert-form");
    assert_eq!(alert.label.get(Language::Fi), "Alert fi");
    assert_eq!(alert.label.get(Language::No), "Alert en");
    let services: AreaKey = "services".parse().unwrap();
    assert_eq!(catalogue.procedures_of(&services).count(), 1);
    let other: AreaKey = "other".parse().unwrap();
    assert_eq!(catalogue.procedures_of(&other).count(), 0);
}

#[test]
fn a_file_that_does_not_parse_is_named() {
    let mut files = Files::valid();
    files.procedures = "[[procedure]\nkey = ".to_owned();
    let err = files.load().unwrap_err();
    assert!(
        matches!(&err, CatalogueError::Parse { file, .. } if file == "procedures.toml"),
        "{err:?}"
    );
    assert!(err.to_string().contains("procedures.toml"), "{err}");
}

#[test]
fn unknown_fields_and_kinds_are_parse_errors() {
    let mut files = Files::valid();
    files.areas.push_str("colour = \"blue\"\n");
    let err = files.load().unwrap_err();
    assert!(err.to_string().contains("areas.toml"), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");

    let mut files = Files::valid();
    files.procedures = files
        .procedures
        .replace("kind = \"alert\"", "kind = \"warning\"");
    let err = files.load().unwrap_err();
    assert!(matches!(err, CatalogueError::Parse { .. }), "{err:?}");
}

#[test]
fn a_label_missing_one_language_names_item_and_language() {
    let mut files = Files::valid();
    files.procedures = format!("{}{}", kinds(), procedures("services", Some("mt")));
    let err = files.load().unwrap_err();
    match &err {
        CatalogueError::MissingTranslation {
            file,
            item,
            language,
        } => {
            assert_eq!(file, "procedures.toml");
            assert_eq!(item, "procedure \"services-alert\"");
            assert_eq!(*language, Language::Mt);
        }
        other => panic!("expected a missing translation, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("services-alert") && message.contains("mt"),
        "{message}"
    );
}

#[test]
fn blank_labels_and_unknown_language_tags_are_refused() {
    let mut files = Files::valid();
    files.areas = areas().replace("\"Services fi\"", "\"  \"");
    let err = files.load().unwrap_err();
    assert!(
        matches!(
            &err,
            CatalogueError::BlankTranslation {
                language: Language::Fi,
                ..
            }
        ),
        "{err:?}"
    );

    let mut files = Files::valid();
    files.areas = areas().replace("fi = ", "fl = ");
    let err = files.load().unwrap_err();
    assert!(
        matches!(&err, CatalogueError::UnknownLanguage { tag, .. } if tag == "fl"),
        "{err:?}"
    );
}

#[test]
fn icelandic_and_norwegian_are_optional() {
    let mut files = Files::valid();
    files.areas = areas().replace("bg = ", "is = \"Þjónusta\", no = \"Tjenester\", bg = ");
    let catalogue = files.load().unwrap();
    let label = &catalogue.areas()[0].label;
    assert_eq!(label.get(Language::Is), "Þjónusta");
    assert_eq!(label.len(), 26);
}

#[test]
fn a_procedure_of_an_unknown_area_is_refused() {
    let mut files = Files::valid();
    files.procedures = format!("{}{}", kinds(), procedures("servicez", None));
    let err = files.load().unwrap_err();
    match &err {
        CatalogueError::UnknownReference {
            file,
            item,
            reference,
        } => {
            assert_eq!(file, "procedures.toml");
            assert_eq!(item, "procedure \"services-alert\"");
            assert_eq!(reference, "area \"servicez\"");
        }
        other => panic!("expected an unknown reference, got {other:?}"),
    }
}

#[test]
fn a_question_set_of_an_unknown_procedure_is_refused() {
    let mut files = Files::valid();
    files.questions = files
        .questions
        .replace("procedure = \"services-alert\"", "procedure = \"nothing\"");
    let err = files.load().unwrap_err();
    assert!(
        matches!(&err, CatalogueError::UnknownReference { reference, .. } if reference == "procedure \"nothing\""),
        "{err:?}"
    );
}

#[test]
fn duplicate_keys_name_both_files() {
    let mut files = Files::valid();
    files
        .extra
        .push_str(&areas().replace("version = \"test.1\"", ""));
    let err = files.load().unwrap_err();
    match &err {
        CatalogueError::DuplicateKey {
            file,
            item,
            first_file,
        } => {
            assert_eq!(file, "countries.toml");
            assert_eq!(first_file, "areas.toml");
            assert_eq!(item, "area \"services\"");
        }
        other => panic!("expected a duplicate key, got {other:?}"),
    }

    let mut files = Files::valid();
    files.questions = questions(&format!("{}{}", two_options(), two_options()));
    let err = files.load().unwrap_err();
    assert!(
        matches!(&err, CatalogueError::DuplicateKey { item, .. } if item.starts_with("option \"low\"")),
        "{err:?}"
    );
}

#[test]
fn bad_slugs_are_refused_with_the_item_named() {
    let mut files = Files::valid();
    files.areas = areas().replace("key = \"services\"", "key = \"Services Area\"");
    let err = files.load().unwrap_err();
    match &err {
        CatalogueError::InvalidKey { file, item, source } => {
            assert_eq!(file, "areas.toml");
            assert_eq!(item, "area \"Services Area\"");
            assert_eq!(source.kind, "area");
        }
        other => panic!("expected an invalid key, got {other:?}"),
    }

    let mut files = Files::valid();
    files.questions = files
        .questions
        .replace("key = \"risk\"", "key = \"risk_level\"");
    let err = files.load().unwrap_err();
    assert!(matches!(err, CatalogueError::InvalidKey { .. }), "{err:?}");
}

#[test]
fn structural_rules_are_enforced() {
    let mut files = Files::valid();
    files.questions = questions("");
    let err = files.load().unwrap_err();
    assert!(err.to_string().contains("fewer than two options"), "{err}");

    let mut files = Files::valid();
    files.questions = questions(&two_options()).replace("answer = \"choice\"", "answer = \"text\"");
    let err = files.load().unwrap_err();
    assert!(err.to_string().contains("not a choice"), "{err}");

    let mut files = Files::valid();
    files.procedures = files
        .procedures
        .replace("reply_days = 10", "reply_days = 0");
    assert!(matches!(
        files.load().unwrap_err(),
        CatalogueError::InvalidItem { .. }
    ));
}

#[test]
fn version_countries_and_kind_labels_are_required() {
    let mut files = Files::valid();
    files.areas = files.areas.replace("version = \"test.1\"", "");
    assert!(matches!(
        files.load().unwrap_err(),
        CatalogueError::MissingVersion
    ));

    let mut files = Files::valid();
    files.extra.push_str("version = \"2\"\n");
    assert!(matches!(
        files.load().unwrap_err(),
        CatalogueError::DuplicateVersion { .. }
    ));

    let mut files = Files::valid();
    files.extra = countries().replace("country.LI = ", "country.XX = ");
    let err = files.load().unwrap_err();
    assert!(
        matches!(&err, CatalogueError::UnknownCountry { code, .. } if code == "XX"),
        "{err:?}"
    );

    let mut files = Files::valid();
    files.extra = countries()
        .lines()
        .filter(|line| !line.starts_with("country.LI"))
        .collect::<Vec<_>>()
        .join("\n");
    let err = files.load().unwrap_err();
    assert!(
        matches!(
            err,
            CatalogueError::MissingCountry {
                country: Country::Li
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Liechtenstein"), "{err}");

    let mut files = Files::valid();
    files.procedures = procedures("services", None);
    assert!(matches!(
        files.load().unwrap_err(),
        CatalogueError::MissingKindLabel { .. }
    ));
}

// ---- answers ----

fn question(answer: AnswerType, required: bool) -> Question {
    Question {
        key: "q".parse().unwrap(),
        label: Labels::default(),
        answer,
        personal_data: false,
        required,
    }
}

fn attachment(name: &str, media_type: &str) -> AnswerValue {
    AnswerValue::Attachment {
        name: name.to_owned(),
        media_type: media_type.to_owned(),
        sha256: [7; 32],
        size: 1024,
    }
}

#[test]
fn answers_of_the_right_type_are_accepted() {
    let date = |year, month, day| AnswerValue::Date { year, month, day };
    let cases = [
        (AnswerType::Text, AnswerValue::Text("Maria Silva".into())),
        (AnswerType::YesNo, AnswerValue::YesNo(false)),
        (AnswerType::Date, date(1980, 2, 29)),
        (AnswerType::Date, date(2000, 2, 29)),
        (AnswerType::Date, date(2024, 12, 31)),
        (AnswerType::Number, AnswerValue::Number(-3)),
        (
            AnswerType::Attachment,
            attachment("diploma.pdf", "application/pdf"),
        ),
        (
            AnswerType::Attachment,
            attachment("scan.txt", "text/plain; charset=utf-8"),
        ),
    ];
    for (answer, value) in cases {
        let q = question(answer, true);
        assert_eq!(q.check_answer(&value), Ok(()), "{value:?}");
    }
    assert_eq!(
        question(AnswerType::Text, false).check_answer(&AnswerValue::Text(String::new())),
        Ok(())
    );
}

#[test]
fn wrong_answers_are_refused_with_the_reason() {
    let catalogue = Catalogue::builtin();
    let general = catalogue
        .question_set(&"pq-general".parse().unwrap())
        .unwrap();
    let level = general
        .question(&"qualification-level".parse().unwrap())
        .unwrap();
    assert_eq!(
        level.check_answer(&AnswerValue::Choice("higher-education-diploma".into())),
        Ok(())
    );
    let err = level
        .check_answer(&AnswerValue::Choice("phd".into()))
        .unwrap_err();
    assert!(matches!(&err, AnswerError::UnknownOption { option, .. } if option == "phd"));
    assert!(
        err.to_string().contains("attestation-of-competence"),
        "{err}"
    );

    let birth = general.question(&"date-of-birth".parse().unwrap()).unwrap();
    for (year, month, day) in [
        (1981, 2, 29),
        (1900, 2, 29),
        (2024, 13, 1),
        (2024, 4, 31),
        (2024, 1, 0),
        (0, 1, 1),
    ] {
        let err = birth
            .check_answer(&AnswerValue::Date { year, month, day })
            .unwrap_err();
        assert!(
            matches!(err, AnswerError::InvalidDate { .. }),
            "{year}-{month}-{day}"
        );
    }
    let err = birth
        .check_answer(&AnswerValue::Text("1980-01-01".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the answer to question date-of-birth must be a date, not a text"
    );

    let name = general.question(&"full-name".parse().unwrap()).unwrap();
    assert!(name.required);
    assert!(matches!(
        name.check_answer(&AnswerValue::Text(" \n".into())),
        Err(AnswerError::EmptyRequired { .. })
    ));
    assert!(matches!(
        name.check_answer(&AnswerValue::YesNo(true)),
        Err(AnswerError::TypeMismatch { .. })
    ));

    let copy = question(AnswerType::Attachment, false);
    for bad in [
        attachment("", "application/pdf"),
        attachment("a.pdf", "pdf"),
        attachment("a.pdf", "a/b/c"),
    ] {
        assert!(matches!(
            copy.check_answer(&bad),
            Err(AnswerError::InvalidAttachment { .. })
        ));
    }
}

#[test]
fn answers_round_trip_through_postcard() {
    for value in [
        AnswerValue::Text("ok".into()),
        AnswerValue::YesNo(true),
        AnswerValue::Date {
            year: 2020,
            month: 5,
            day: 17,
        },
        AnswerValue::Number(i64::MIN),
        AnswerValue::Choice("low".into()),
        attachment("a.pdf", "application/pdf"),
    ] {
        let bytes = postcard::to_allocvec(&value).unwrap();
        assert_eq!(postcard::from_bytes::<AnswerValue>(&bytes).unwrap(), value);
    }
}
