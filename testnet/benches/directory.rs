//! Directory benchmark: a federation of the 30 countries and the
//! Commission in this process, 420 authorities per country (12,600 in
//! all, names in each country's languages, competences from the
//! catalogue). Measures how long a fresh node takes to hold the whole
//! directory, and how long one edit takes to be visible on every node.
//!
//! `cargo bench -p imi-testnet --bench directory`
//! (`IMI_BENCH_PER_COUNTRY`, `IMI_BENCH_EDITS` change the sizes;
//! `IMI_BENCH_TRACE=1` prints the fresh node's progress.)

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use imi_protocol::{Country, Language};
use imi_testnet::{Testnet, sample_authorities};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let per_country = env("IMI_BENCH_PER_COUNTRY", 420);
    let edits = env("IMI_BENCH_EDITS", 20);
    let countries: Vec<Country> = Country::ALL
        .into_iter()
        .filter(|c| !c.is_commission())
        .collect();

    let started = Instant::now();
    let mut net = Testnet::builder()
        .countries(countries.clone())
        .observer(true)
        .start()
        .await?;
    net.wait_connected(Duration::from_secs(120)).await?;
    println!(
        "{} nodes started and connected: {}",
        net.nodes.len(),
        ms(started.elapsed())
    );

    let published = Instant::now();
    let jobs = net
        .nodes
        .iter()
        .filter(|n| !n.address().country.is_commission())
        .map(|node| {
            let directory = node.directory().clone();
            let entries = sample_authorities(node.address().country, node.address(), per_country);
            async move { directory.upsert_authorities(entries).await }
        });
    for result in futures::future::join_all(jobs).await {
        result?;
    }
    let total = per_country * countries.len();
    net.wait_converged(Duration::from_secs(300)).await?;
    let converged = published.elapsed();
    // Searchable: every node's index holds every authority.
    loop {
        if net.nodes.iter().all(|n| n.search().len() == total as u64) {
            break;
        }
        if published.elapsed() > Duration::from_secs(300) {
            bail!("the search indexes did not hold every authority within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{total} authorities published by {} countries, converged on {} nodes: {}, searchable on every node: {}",
        countries.len(),
        net.nodes.len(),
        ms(converged),
        ms(published.elapsed())
    );
    let refused: u64 = net
        .nodes
        .iter()
        .map(|n| n.directory().stats().refused_changes)
        .sum();
    println!("changes refused (peers quarantined) while publishing: {refused}");

    // A fresh node joins: time until it holds exactly what the others hold.
    let reference = net.nodes[0].directory().all_heads();
    let joined = Instant::now();
    net.add_node(Country::Fi).await?;
    let fresh = net.nodes.last().context("the fresh node")?;
    let mut connected = None;
    loop {
        if connected.is_none() && !fresh.net().peers().await.is_empty() {
            connected = Some(joined.elapsed());
        }
        if fresh.directory().all_heads() == reference {
            break;
        }
        if std::env::var("IMI_BENCH_TRACE").is_ok() && joined.elapsed().as_millis() % 100 < 3 {
            println!(
                "  {:>5} ms: {} authorities",
                joined.elapsed().as_millis(),
                fresh.directory().authority_count()
            );
        }
        if joined.elapsed() > Duration::from_secs(120) {
            bail!(
                "the fresh node holds {} authorities after 120 s",
                fresh.directory().authority_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let synced = joined.elapsed();
    assert_eq!(fresh.directory().authority_count(), total);
    let connected = connected.unwrap_or(synced);
    println!(
        "fresh node holds all {total} authorities: {} after start ({} after its first link, {} to start and link)",
        ms(synced),
        ms(synced.saturating_sub(connected)),
        ms(connected)
    );
    net.wait_connected(Duration::from_secs(60)).await?;

    // One edit at a time, by a different country each time: time until
    // every node (the fresh one too) shows it.
    let mut times = Vec::new();
    for i in 0..edits {
        let editor = &net.nodes[(i * 7) % countries.len()];
        let country = editor.address().country;
        let mut entry = editor
            .directory()
            .authorities_of(country)
            .into_iter()
            .nth(i)
            .context("an authority to edit")?;
        let language = *entry.names.keys().next().unwrap_or(&Language::En);
        entry.names.insert(language, format!("renamed {i}"));
        let start = Instant::now();
        editor.directory().upsert_authority(entry.clone()).await?;
        loop {
            if net
                .nodes
                .iter()
                .all(|n| n.directory().authority(country, entry.id).as_ref() == Some(&entry))
            {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("edit {i} did not reach every node within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let max = *times.last().context("no edit measured")?;
    println!(
        "one edit visible on all {} nodes ({edits} edits): p50 {}, max {}",
        net.nodes.len(),
        ms(p50),
        ms(max)
    );
    let refused: u64 = net
        .nodes
        .iter()
        .map(|n| n.directory().stats().refused_changes)
        .sum();
    println!("changes refused by honest nodes: {refused}");
    if let Some(rss) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
    {
        println!(
            "memory of the whole process ({} nodes): {}",
            net.nodes.len(),
            rss.trim_start_matches("VmRSS:").trim()
        );
    }
    Ok(())
}
