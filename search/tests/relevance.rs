//! Relevance of the directory search over real authorities: every query of
//! `tests/relevance/queries.toml` must find its authority among the first
//! three results, for at least 95 % of the queries.

use std::collections::{BTreeSet, HashSet};

use anyhow::{Context, Result, ensure};
use imi_protocol::{Catalogue, Language};
use imi_search::{DirectoryEntry, Query, SearchIndex};
use serde::Deserialize;

#[derive(Deserialize)]
struct Directory {
    entry: Vec<DirectoryEntry>,
}

#[derive(Deserialize)]
struct Queries {
    query: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    language: Language,
    text: String,
    expect: String,
    case: String,
}

const TOP: usize = 3;
const MIN_RECALL: f64 = 0.95;

/// The fixture, built into the test (tracked by cargo, unlike a path read at run time).
const DIRECTORY: &str = include_str!("relevance/directory.toml");
const QUERIES: &str = include_str!("relevance/queries.toml");

fn load() -> Result<(Vec<DirectoryEntry>, Vec<Case>)> {
    let directory: Directory = toml::from_str(DIRECTORY).context("parsing directory.toml")?;
    let queries: Queries = toml::from_str(QUERIES).context("parsing queries.toml")?;
    Ok((directory.entry, queries.query))
}

#[test]
fn the_test_set_is_broad_enough() -> Result<()> {
    let (entries, cases) = load()?;
    let ids: HashSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    ensure!(ids.len() == entries.len(), "entry ids must be unique");
    let countries: BTreeSet<_> = entries.iter().map(|e| e.country).collect();
    ensure!(countries.len() >= 10, "only {} countries", countries.len());
    ensure!(cases.len() >= 60, "only {} queries", cases.len());
    let languages: BTreeSet<_> = cases.iter().map(|c| c.language).collect();
    ensure!(languages.len() >= 12, "only {} languages", languages.len());
    for needed in [
        Language::Sk,
        Language::Sl,
        Language::Lv,
        Language::Mt,
        Language::Bg,
        Language::Hr,
        Language::El,
    ] {
        ensure!(languages.contains(&needed), "no query in {needed}");
    }
    for case in &cases {
        ensure!(
            ids.contains(case.expect.as_str()),
            "query {:?} expects unknown entry {}",
            case.text,
            case.expect
        );
    }
    for kind in ["typo", "missing diacritics", "transliteration"] {
        ensure!(
            cases.iter().any(|c| c.case.contains(kind)),
            "no query covers {kind}"
        );
    }
    Ok(())
}

#[test]
fn recall_at_three_is_at_least_95_percent() -> Result<()> {
    let (entries, cases) = load()?;
    let index = SearchIndex::create_in_ram(Catalogue::builtin())?;
    let report = index.rebuild(&entries)?;
    ensure!(report.skipped.is_empty(), "skipped {:?}", report.skipped);

    let mut failures = Vec::new();
    let mut first = 0;
    for case in &cases {
        let results = index.search(&Query::new(&case.text, case.language).page(0, 10))?;
        let ids: Vec<&str> = results.hits.iter().map(|h| h.id.as_str()).collect();
        let rank = ids.iter().position(|id| *id == case.expect);
        if rank == Some(0) {
            first += 1;
        } else {
            println!(
                "  (rank {}) [{}] {:?}: {:?}",
                rank.map_or("none".to_owned(), |r| (r + 1).to_string()),
                case.language,
                case.text,
                &ids[..ids.len().min(3)]
            );
        }
        if rank.is_none_or(|r| r >= TOP) {
            failures.push(format!(
                "  [{}] {:?} ({}) expected {} at rank {}; got {:?}",
                case.language,
                case.text,
                case.case,
                case.expect,
                rank.map_or("none".to_owned(), |r| (r + 1).to_string()),
                &ids[..ids.len().min(5)],
            ));
        }
    }
    let recall = 1.0 - failures.len() as f64 / cases.len() as f64;
    println!(
        "recall@{TOP}: {:.3} ({} of {} queries), first: {} of {}",
        recall,
        cases.len() - failures.len(),
        cases.len(),
        first,
        cases.len()
    );
    for failure in &failures {
        println!("{failure}");
    }
    ensure!(
        recall >= MIN_RECALL,
        "recall@{TOP} {recall:.3} is below {MIN_RECALL}:\n{}",
        failures.join("\n")
    );
    Ok(())
}
