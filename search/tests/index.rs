//! Behaviour of the search index as the node uses it: writes, commits,
//! filters, facets, paging, and opening from disk.

use std::collections::HashSet;
use std::fs;

use anyhow::Result;
use imi_protocol::{Catalogue, Country, Language};
use imi_search::{
    Competence, DirectoryEntry, EntryKind, Filters, OpenError, Query, RebuildReason, SearchError,
    SearchIndex, VERSION_FILE, WriteError,
};

fn entry(id: &str, country: Country, names: &[(Language, &str)]) -> DirectoryEntry {
    DirectoryEntry {
        id: id.to_owned(),
        kind: EntryKind::Authority,
        country,
        names: names
            .iter()
            .map(|(language, name)| (*language, (*name).to_owned()))
            .collect(),
        areas: Vec::new(),
        procedures: Vec::new(),
        professions: Vec::new(),
        other_competences: Vec::new(),
        city: None,
        region: None,
        languages: Vec::new(),
        url: None,
    }
}

fn doctors(id: &str, country: Country, names: &[(Language, &str)]) -> DirectoryEntry {
    DirectoryEntry {
        professions: vec!["doctor".parse().unwrap()],
        ..entry(id, country, names)
    }
}

fn ids(index: &SearchIndex, query: &Query) -> Vec<String> {
    index
        .search(query)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

fn catalogue() -> &'static Catalogue {
    Catalogue::builtin()
}

#[test]
fn an_upsert_is_visible_after_commit_and_not_before() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.upsert(&entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    ))?;
    let query = Query::new("Valvira", Language::Fi);
    assert!(ids(&index, &query).is_empty());
    index.commit()?;
    assert_eq!(ids(&index, &query), ["fi-valvira"]);
    Ok(())
}

#[test]
fn an_upsert_replaces_the_entry_with_the_same_id() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.upsert(&entry("x", Country::Fi, &[(Language::Fi, "Valvira")]))?;
    index.commit()?;
    index.upsert(&entry("x", Country::Fi, &[(Language::Fi, "Ruokavirasto")]))?;
    index.commit()?;
    assert_eq!(index.len(), 1);
    assert!(ids(&index, &Query::new("Valvira", Language::Fi)).is_empty());
    assert_eq!(
        ids(&index, &Query::new("Ruokavirasto", Language::Fi)),
        ["x"]
    );
    Ok(())
}

#[test]
fn a_removed_entry_is_no_longer_found() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.upsert(&entry(
        "a",
        Country::Pt,
        &[(Language::Pt, "Ordem dos Médicos")],
    ))?;
    index.upsert(&entry(
        "b",
        Country::Pt,
        &[(Language::Pt, "Ordem dos Enfermeiros")],
    ))?;
    index.commit()?;
    index.remove("a")?;
    index.remove("no-such-entry")?;
    index.commit()?;
    assert_eq!(ids(&index, &Query::new("ordem", Language::Pt)), ["b"]);
    assert_eq!(index.len(), 1);
    Ok(())
}

#[test]
fn entries_without_a_name_or_id_are_refused_with_a_reason() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    let err = index
        .upsert(&entry("nameless", Country::Pt, &[]))
        .unwrap_err();
    assert!(matches!(err, WriteError::InvalidEntry { .. }));
    assert!(err.to_string().contains("no name"), "{err}");
    let err = index
        .upsert(&entry(" ", Country::Pt, &[(Language::Pt, "X")]))
        .unwrap_err();
    assert!(err.to_string().contains("id is empty"), "{err}");

    // A rebuild leaves such entries out and says so.
    let report = index.rebuild([
        entry("ok", Country::Pt, &[(Language::Pt, "Ordem dos Médicos")]),
        entry("nameless", Country::Pt, &[]),
    ])?;
    assert_eq!(report.indexed, 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, "nameless");
    Ok(())
}

fn sample() -> Result<SearchIndex> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.rebuild([
        doctors("pt-om", Country::Pt, &[(Language::Pt, "Ordem dos Médicos")]),
        doctors(
            "pt-acss",
            Country::Pt,
            &[(Language::Pt, "Administração Central do Sistema de Saúde")],
        ),
        doctors("fi-valvira", Country::Fi, &[(Language::Fi, "Valvira")]),
        doctors(
            "de-baek",
            Country::De,
            &[(Language::De, "Bundesärztekammer")],
        ),
        DirectoryEntry {
            areas: vec!["data-protection".parse()?],
            ..entry(
                "pt-cnpd",
                Country::Pt,
                &[(Language::Pt, "Comissão Nacional de Proteção de Dados")],
            )
        },
        DirectoryEntry {
            kind: EntryKind::Register,
            ..doctors(
                "fi-terhikki",
                Country::Fi,
                &[(Language::Fi, "JulkiTerhikki")],
            )
        },
    ])?;
    Ok(index)
}

#[test]
fn facets_count_matching_entries_by_country_and_area() -> Result<()> {
    let index = sample()?;
    let results = index.search(&Query::new("lääkäri", Language::Fi))?;
    assert_eq!(results.total, 5);
    assert_eq!(
        results.facets.countries,
        [(Country::Fi, 2), (Country::Pt, 2), (Country::De, 1)]
    );
    // Doctors imply the professional-qualifications area.
    assert_eq!(
        results.facets.areas,
        [("professional-qualifications".parse()?, 5)]
    );

    let everything = index.search(&Query::new("", Language::En))?;
    assert_eq!(everything.total, 6);
    let areas: HashSet<_> = everything
        .facets
        .areas
        .iter()
        .map(|(key, count)| (key.as_str().to_owned(), *count))
        .collect();
    assert_eq!(
        areas,
        HashSet::from([
            ("professional-qualifications".to_owned(), 5),
            ("data-protection".to_owned(), 1)
        ])
    );
    Ok(())
}

#[test]
fn filters_restrict_the_results() -> Result<()> {
    let index = sample()?;
    let by_country = Query::new("lääkäri", Language::Fi).with_filters(Filters {
        countries: vec![Country::Pt],
        ..Filters::default()
    });
    let found: HashSet<String> = ids(&index, &by_country).into_iter().collect();
    assert_eq!(
        found,
        HashSet::from(["pt-om".to_owned(), "pt-acss".to_owned()])
    );

    let by_area = Query::new("", Language::Fi).with_filters(Filters {
        areas: vec!["data-protection".parse()?],
        ..Filters::default()
    });
    assert_eq!(ids(&index, &by_area), ["pt-cnpd"]);

    let registers = Query::new("", Language::Fi).with_filters(Filters {
        kind: Some(EntryKind::Register),
        ..Filters::default()
    });
    assert_eq!(ids(&index, &registers), ["fi-terhikki"]);

    let by_profession_and_country = Query::new("", Language::Fi).with_filters(Filters {
        countries: vec![Country::De, Country::Fi],
        professions: vec!["doctor".parse()?],
        kind: Some(EntryKind::Authority),
        ..Filters::default()
    });
    let found: HashSet<String> = ids(&index, &by_profession_and_country)
        .into_iter()
        .collect();
    assert_eq!(
        found,
        HashSet::from(["de-baek".to_owned(), "fi-valvira".to_owned()])
    );
    Ok(())
}

#[test]
fn a_country_named_in_the_text_filters_and_is_reported() -> Result<()> {
    let index = sample()?;
    let results = index.search(&Query::new("lääkäri Portugali", Language::Fi))?;
    assert_eq!(results.countries_in_text, [Country::Pt]);
    assert!(results.hits.iter().all(|h| h.country == Country::Pt));
    assert_eq!(results.total, 2);
    // A hit says which competence matched, in the searcher's language.
    assert_eq!(results.hits[0].competences.len(), 1);
    assert_eq!(
        results.hits[0].competences[0].competence,
        Competence::Profession("doctor".parse()?)
    );
    assert_eq!(results.hits[0].competences[0].label, "Lääkäri");

    // An explicit country filter wins over the text.
    let explicit = Query::new("lääkäri Portugali", Language::Fi).with_filters(Filters {
        countries: vec![Country::De],
        ..Filters::default()
    });
    let results = index.search(&explicit)?;
    assert!(results.countries_in_text.is_empty());
    assert_eq!(
        results
            .hits
            .iter()
            .map(|h| h.id.as_str())
            .collect::<Vec<_>>(),
        ["de-baek"]
    );
    Ok(())
}

#[test]
fn pages_are_disjoint_and_cover_every_result_in_order() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    let entries: Vec<_> = (0..57)
        .map(|i| {
            doctors(
                &format!("e{i:02}"),
                Country::Pt,
                &[(Language::Pt, &format!("Ordem Regional {i} dos Médicos"))],
            )
        })
        .collect();
    index.rebuild(&entries)?;
    for text in ["médicos", ""] {
        let all = ids(&index, &Query::new(text, Language::Pt).page(0, 57));
        assert_eq!(all.len(), 57);
        let mut paged = Vec::new();
        for page in 0..6 {
            let results = index.search(&Query::new(text, Language::Pt).page(page * 10, 10))?;
            assert_eq!(results.total, 57);
            paged.extend(results.hits.into_iter().map(|h| h.id));
        }
        assert_eq!(paged, all, "pages of {text:?}");
        // Asking again gives the same order.
        assert_eq!(
            ids(&index, &Query::new(text, Language::Pt).page(0, 57)),
            all
        );
    }
    // Browsing (no text) is in name order.
    let browse = index.search(&Query::new("", Language::Pt).page(0, 3))?;
    assert_eq!(browse.hits[0].display_name, "Ordem Regional 0 dos Médicos");
    assert_eq!(browse.hits[1].display_name, "Ordem Regional 1 dos Médicos");
    assert_eq!(browse.hits[2].display_name, "Ordem Regional 10 dos Médicos");
    Ok(())
}

#[test]
fn paging_outside_the_limits_is_refused() -> Result<()> {
    let index = sample()?;
    let err = index
        .search(&Query::new("x", Language::En).page(0, 1_000))
        .unwrap_err();
    assert!(matches!(err, SearchError::Paging { .. }), "{err}");
    let err = index
        .search(&Query::new("x".repeat(5_000), Language::En))
        .unwrap_err();
    assert!(matches!(err, SearchError::TooLong { .. }), "{err}");
    // A limit of zero gives the total and facets only.
    let counted = index.search(&Query::new("lääkäri", Language::Fi).page(0, 0))?;
    assert_eq!(counted.total, 5);
    assert!(counted.hits.is_empty());
    Ok(())
}

#[test]
fn the_display_name_follows_the_searchers_language_and_the_snippet_marks_matches() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.rebuild([entry(
        "be-gba",
        Country::Be,
        &[
            (Language::Nl, "Gegevensbeschermingsautoriteit"),
            (Language::Fr, "Autorité de protection des données"),
            (Language::De, "Datenschutzbehörde"),
        ],
    )])?;
    let fr = index.search(&Query::new("protection donnees", Language::Fr))?;
    let hit = &fr.hits[0];
    assert_eq!(hit.display_name, "Autorité de protection des données");
    assert_eq!(hit.display_language, Language::Fr);
    assert_eq!(
        hit.snippet.fragments(),
        [
            ("Autorité de ", false),
            ("protection", true),
            (" des ", false),
            ("données", true)
        ]
    );
    // No Finnish name: the first name is shown, the matching one is the snippet.
    let fi = index.search(&Query::new("Datenschutzbehorde", Language::Fi))?;
    assert_eq!(fi.hits[0].display_name, "Gegevensbeschermingsautoriteit");
    assert_eq!(fi.hits[0].snippet.text, "Datenschutzbehörde");
    assert_eq!(
        fi.hits[0].snippet.fragments(),
        [("Datenschutzbehörde", true)]
    );
    Ok(())
}

#[test]
fn an_exact_name_ranks_before_partial_and_competence_matches() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.rebuild([
        doctors(
            "a",
            Country::Fr,
            &[(Language::Fr, "Conseil national de l'Ordre des médecins")],
        ),
        doctors("b", Country::Be, &[(Language::Fr, "Ordre des médecins")]),
        doctors(
            "c",
            Country::Fr,
            &[(Language::Fr, "Centre national de gestion")],
        ),
    ])?;
    assert_eq!(
        ids(
            &index,
            &Query::new("Conseil national de l'Ordre des médecins", Language::Fr)
        )[0],
        "a"
    );
    assert_eq!(
        ids(&index, &Query::new("ordre des médecins", Language::Fr))[0],
        "b"
    );
    Ok(())
}

#[test]
fn a_typo_still_finds_the_name() -> Result<()> {
    let index = sample()?;
    assert_eq!(
        ids(&index, &Query::new("Valvria", Language::Fi))[0],
        "fi-valvira"
    );
    assert_eq!(
        ids(&index, &Query::new("Bundesärtzekammer", Language::De))[0],
        "de-baek"
    );
    Ok(())
}

#[test]
fn a_new_directory_asks_for_a_rebuild_until_one_completes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert_eq!(index.rebuild_reason(), Some(RebuildReason::Missing));
    drop(index);
    // Still missing: no rebuild happened.
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert_eq!(index.rebuild_reason(), Some(RebuildReason::Missing));
    index.rebuild([entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    )])?;
    assert_eq!(index.rebuild_reason(), None);
    drop(index);

    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert_eq!(index.rebuild_reason(), None);
    assert_eq!(
        ids(&index, &Query::new("valvira", Language::Fi)),
        ["fi-valvira"]
    );
    Ok(())
}

#[test]
fn incremental_changes_survive_a_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    index.rebuild(Vec::<DirectoryEntry>::new())?;
    index.upsert(&entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    ))?;
    index.commit()?;
    drop(index);
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert_eq!(index.rebuild_reason(), None);
    assert_eq!(index.len(), 1);
    Ok(())
}

#[test]
fn another_schema_version_triggers_a_rebuild() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    index.rebuild([entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    )])?;
    drop(index);
    fs::write(dir.path().join(VERSION_FILE), "imi-search schema 0\n")?;

    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert_eq!(
        index.rebuild_reason(),
        Some(RebuildReason::SchemaChanged {
            found: "imi-search schema 0".to_owned()
        })
    );
    // The old content is gone until the rebuild.
    assert!(index.is_empty());
    index.rebuild([entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    )])?;
    assert_eq!(index.len(), 1);
    Ok(())
}

#[test]
fn a_corrupt_index_is_cleared_and_rebuilt() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    index.rebuild([entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    )])?;
    drop(index);
    fs::write(dir.path().join("meta.json"), b"{ this is not json")?;

    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    assert!(
        matches!(index.rebuild_reason(), Some(RebuildReason::Corrupt { .. })),
        "{:?}",
        index.rebuild_reason()
    );
    index.rebuild([entry(
        "fi-valvira",
        Country::Fi,
        &[(Language::Fi, "Valvira")],
    )])?;
    assert_eq!(
        ids(&index, &Query::new("valvira", Language::Fi)),
        ["fi-valvira"]
    );
    Ok(())
}

#[test]
fn damaged_segment_files_are_cleared_and_rebuilt() -> Result<()> {
    // Truncated files, and files with one byte flipped in the middle.
    for truncate in [true, false] {
        let dir = tempfile::tempdir()?;
        let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
        index.rebuild([entry(
            "fi-valvira",
            Country::Fi,
            &[(Language::Fi, "Valvira")],
        )])?;
        drop(index);
        let mut damaged = 0;
        for file in fs::read_dir(dir.path())? {
            let path = file?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.ends_with(".idx") || name.ends_with(".term") || name.ends_with(".store") {
                let mut bytes = fs::read(&path)?;
                if truncate {
                    bytes.truncate(7);
                } else {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0xFF;
                }
                fs::write(&path, bytes)?;
                damaged += 1;
            }
        }
        assert!(damaged > 0, "the index has segment files");
        let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
        assert!(
            matches!(index.rebuild_reason(), Some(RebuildReason::Corrupt { .. })),
            "{:?}",
            index.rebuild_reason()
        );
        index.rebuild([entry(
            "fi-valvira",
            Country::Fi,
            &[(Language::Fi, "Valvira")],
        )])?;
        assert_eq!(
            ids(&index, &Query::new("valvira", Language::Fi)),
            ["fi-valvira"]
        );
    }
    Ok(())
}

#[test]
fn a_directory_of_other_files_is_never_cleared() -> Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("precious.txt"), b"keep me")?;
    let err = SearchIndex::open_in_dir(dir.path(), catalogue()).unwrap_err();
    assert!(matches!(err, OpenError::NotAnIndex { .. }), "{err}");
    assert!(err.to_string().contains("directory of its own"), "{err}");
    assert_eq!(fs::read(dir.path().join("precious.txt"))?, b"keep me");
    Ok(())
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open_in_dir(dir.path(), catalogue())?;
    index.rebuild(Vec::<DirectoryEntry>::new())?;
    let err = SearchIndex::open_in_dir(dir.path(), catalogue()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }), "{err}");
    Ok(())
}

#[test]
fn searches_run_concurrently_with_writes() -> Result<()> {
    let index = sample()?;
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let results = index.search(&Query::new("lääkäri", Language::Fi)).unwrap();
                    assert!(results.total >= 5);
                }
            });
        }
        scope.spawn(|| {
            for i in 0..20 {
                index
                    .upsert(&doctors(
                        &format!("n{i}"),
                        Country::Se,
                        &[(Language::Sv, "Socialstyrelsen")],
                    ))
                    .unwrap();
                index.commit().unwrap();
            }
        });
    });
    assert_eq!(
        index.search(&Query::new("lääkäri", Language::Fi))?.total,
        25
    );
    Ok(())
}

#[test]
fn odd_query_texts_never_fail() -> Result<()> {
    let index = sample()?;
    let long_word = "x".repeat(900);
    let many_words = "Ärztekammer ".repeat(40);
    for text in [
        "",
        "   ",
        "!!! ??? ...",
        "ß",
        "İstanbul",
        "ǅ ǈ ǋ",
        "\u{0301}\u{0301}",
        "🙂 lääkäri 🙂",
        "طبيب",
        "医生",
        long_word.as_str(),
        many_words.as_str(),
        "a",
        "- - -",
        "\"Ordem\" AND (Médicos) OR -Portugal*",
    ] {
        let results = index.search(&Query::new(text, Language::Fi))?;
        assert!(results.hits.len() <= 20, "{text:?}");
    }
    Ok(())
}

#[test]
fn odd_names_are_indexed_and_found() -> Result<()> {
    let index = SearchIndex::create_in_ram(catalogue())?;
    index.rebuild([
        entry("emoji", Country::Fi, &[(Language::Fi, "🙂 Virasto 🙂")]),
        entry(
            "long",
            Country::Fi,
            &[(Language::Fi, &"Pitkä ".repeat(200))],
        ),
        entry("punct", Country::Fi, &[(Language::Fi, "!!!")]),
    ])?;
    assert_eq!(ids(&index, &Query::new("virasto", Language::Fi)), ["emoji"]);
    assert_eq!(ids(&index, &Query::new("pitkä", Language::Fi)), ["long"]);
    assert_eq!(index.len(), 3);
    Ok(())
}
