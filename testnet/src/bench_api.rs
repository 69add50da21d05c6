//! The JSON API under load: `GET /api/v1/tasks?limit=20` of a Portuguese
//! official whose authority has 1,000 open requests, and
//! `GET /api/v1/search` with a mix of real queries, each from many
//! clients at once with the official's bearer token.
//!
//! A Finnish and a Portuguese node run in this process with their demo
//! users, as for the My tasks benchmark ([`crate::bench_tasks`]): both
//! publish a directory of real and generated authorities, the Finnish
//! official sends the requests through the node (not measured), and once
//! the Portuguese node lists them all as tasks and its index holds the
//! whole directory, its web UI is served on loopback with the API's rate
//! limit per user raised out of the way (the default, 20 requests/s, would
//! measure the limit, not the API). The load generator (hyper's client, one
//! keep-alive connection per worker) then requests each endpoint in a loop
//! for the measured time, after a warm-up. Every answer must be 200, and
//! every page of tasks full.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use imi_protocol::Country;
use imi_web::{ApiLimits, WebSettings};

use crate::api::{Api, ApiFile, cpu_model, demo_tokens, http, load_average};
use crate::bench::Latencies;
use crate::bench_tasks::fill_tasks;
use crate::scenario::encode;
use crate::ui::{demo_finland_and_portugal, serve_ui_with};

/// How to load the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Open requests of the official's authority.
    pub cases: usize,
    /// Authorities each of the two countries publishes in the directory.
    pub authorities: usize,
    /// Clients (connections) sending requests at once.
    pub connections: usize,
    /// How long to measure each endpoint.
    pub duration: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            cases: crate::bench_tasks::TasksOptions::default().cases,
            authorities: 420,
            connections: 16,
            duration: Duration::from_secs(10),
        }
    }
}

/// The rate limit of the benchmark's node: far above what two cores serve.
pub const BENCH_LIMITS: ApiLimits = ApiLimits {
    per_second: 1_000_000,
    burst: 1_000_000,
};

/// The searches: names, professions in several languages, with and
/// without a country (in the text or as a filter): text, reader's language,
/// country filter.
const QUERIES: &[(&str, &str, Option<&str>)] = &[
    ("Ordem dos Médicos", "pt", None),
    ("ordem dos medicos", "fi", Some("PT")),
    ("Ordem dos Enfermeiros", "pt", None),
    ("Valvira", "fi", None),
    ("lääkäri Portugali", "fi", None),
    ("lääkäri", "fi", Some("PT")),
    ("sairaanhoitaja", "fi", None),
    ("médico", "pt", None),
    ("médico Finlândia", "pt", None),
    ("enfermeiro", "pt", Some("PT")),
    ("Arzt", "de", None),
    ("Arzt Portugal", "de", None),
    ("Zahnarzt", "de", Some("FI")),
    ("läkare", "sv", None),
    ("tandläkare Finland", "sv", None),
    ("doctor", "en", Some("PT")),
    ("nurse", "en", None),
    ("médecin", "fr", None),
    ("lekarz", "pl", Some("PT")),
    ("medico", "it", None),
];

/// One endpoint's figures.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    /// What was requested.
    pub what: String,
    /// Requests answered in the measured time.
    pub requests: usize,
    /// The measured time.
    pub elapsed: Duration,
    /// Per request, from sending it to the last byte read.
    pub latencies: Latencies,
    /// Bytes of one answer (the first query's, for the search).
    pub bytes: usize,
}

impl std::fmt::Display for EndpointReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{}: {} requests in {:.1} s: {:.0} requests/s; p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} bytes of JSON)",
            self.what,
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON),
            ms(self.latencies.quantile(0.5)),
            ms(self.latencies.quantile(0.9)),
            ms(self.latencies.quantile(0.99)),
            ms(self.latencies.max()),
            self.bytes,
        )
    }
}

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct ApiReport {
    /// Tasks of the official's authority.
    pub tasks: usize,
    /// Entries in the Portuguese node's search index.
    pub entries: u64,
    /// Clients at once.
    pub connections: usize,
    /// `GET /api/v1/tasks?limit=20`.
    pub tasks_page: EndpointReport,
    /// `GET /api/v1/search?q=…`.
    pub search: EndpointReport,
    /// The CPU model.
    pub cpu: Option<String>,
    /// The load average before and after the measurements.
    pub load: (Option<String>, Option<String>),
}

impl std::fmt::Display for ApiReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "PT node: {} tasks of the Ordem dos Médicos, {} entries in the search index; {} clients; the API's rate limit per user raised to {}/s, burst {} (default {}/s, burst {})",
            self.tasks,
            self.entries,
            self.connections,
            BENCH_LIMITS.per_second,
            BENCH_LIMITS.burst,
            ApiLimits::default().per_second,
            ApiLimits::default().burst,
        )?;
        writeln!(f, "{}", self.tasks_page)?;
        writeln!(f, "{}", self.search)?;
        writeln!(
            f,
            "CPU: {} ({} cores)",
            self.cpu.as_deref().unwrap_or("unknown"),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )?;
        write!(
            f,
            "load average (1, 5, 15 min): {} before, {} after",
            self.load.0.as_deref().unwrap_or("unknown"),
            self.load.1.as_deref().unwrap_or("unknown")
        )
    }
}

/// Runs the API benchmark.
pub async fn api(options: &ApiOptions) -> Result<ApiReport> {
    if options.connections == 0 {
        bail!("at least one client is needed");
    }
    let mut net = demo_finland_and_portugal().await?;
    let result = measure(&net, options).await;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    result
}

async fn measure(net: &crate::Testnet, options: &ApiOptions) -> Result<ApiReport> {
    let entries = publish_directory(net, options.authorities).await?;
    let tasks = fill_tasks(net, options.cases).await?;
    let pt = net.node(Country::Pt);
    let settings = WebSettings {
        api_limits: BENCH_LIMITS,
        ..WebSettings::default()
    };
    let ui = serve_ui_with(pt, settings).await?;
    let result = async {
        let api = ApiFile {
            nodes: vec![demo_tokens(pt, &ui.url(), &["pt-official"]).await?],
        };
        let client = api.client(&http(options.connections), Country::Pt, "pt-official")?;
        let tasks_path = "/api/v1/tasks?limit=20".to_owned();
        let first = client.get_json(&tasks_path).await?;
        ensure!(
            first["items"].as_array().map(Vec::len) == Some(20.min(tasks)),
            "the first page of tasks is not full: {first}"
        );
        let searches: Vec<String> = QUERIES
            .iter()
            .map(|(q, lang, country)| {
                let mut path = format!("/api/v1/search?q={}&lang={lang}", encode(q));
                if let Some(country) = country {
                    path.push_str(&format!("&country={country}"));
                }
                path
            })
            .collect();
        for path in &searches {
            let found = client.get_json(path).await?;
            ensure!(
                found["total"].as_u64().is_some_and(|t| t > 0),
                "the search {path} finds nothing"
            );
        }
        let load_before = load_average();
        let tasks_page = endpoint(
            &client,
            "GET /api/v1/tasks?limit=20",
            vec![tasks_path],
            options,
        )
        .await?;
        let search = endpoint(
            &client,
            &format!("GET /api/v1/search (a mix of {} queries)", searches.len()),
            searches,
            options,
        )
        .await?;
        anyhow::Ok(ApiReport {
            tasks,
            entries,
            connections: options.connections,
            tasks_page,
            search,
            cpu: cpu_model(),
            load: (load_before, load_average()),
        })
    }
    .await;
    ui.stop().await;
    result
}

/// Both nodes publish real and generated authorities (`authorities` each)
/// and their registers; returns once the Portuguese index holds the whole
/// directory, with the number of entries.
async fn publish_directory(net: &crate::Testnet, authorities: usize) -> Result<u64> {
    for node in &net.nodes {
        let country = node.address().country;
        let (mut real, registers) = crate::demo_entries(country, node.address())?;
        real.retain(|a| !crate::ui::is_demo_people_authority(a));
        let filler = authorities.saturating_sub(real.len());
        real.extend(crate::sample_authorities(country, node.address(), filler));
        node.directory().upsert_authorities(real).await?;
        for register in registers {
            node.directory()
                .upsert_register(register)
                .await
                .context("a demo register")?;
        }
    }
    net.wait_converged(Duration::from_secs(120)).await?;
    let pt = net.node(Country::Pt);
    let expected = {
        let directory = pt.directory();
        directory.authority_count() as u64
            + [Country::Fi, Country::Pt]
                .iter()
                .map(|c| directory.registers_of(*c).len() as u64)
                .sum::<u64>()
    };
    crate::wait_until(
        "the Portuguese search index to hold the whole directory",
        Duration::from_secs(120),
        || async { pt.search().len() == expected },
    )
    .await?;
    Ok(expected)
}

/// Loads `paths` (each worker going round them from its own start) from
/// `options.connections` workers: a 1 s warm-up, then the measured time.
async fn endpoint(
    client: &Api,
    what: &str,
    paths: Vec<String>,
    options: &ApiOptions,
) -> Result<EndpointReport> {
    let bytes = client.get(&paths[0]).await?.body.len();
    let paths: Arc<[String]> = paths.into();
    let _ = load(client, &paths, options.connections, Duration::from_secs(1)).await?;
    let started = Instant::now();
    let samples = load(client, &paths, options.connections, options.duration).await?;
    let elapsed = started.elapsed();
    Ok(EndpointReport {
        what: what.to_owned(),
        requests: samples.len(),
        elapsed,
        latencies: Latencies::new(samples),
        bytes,
    })
}

async fn load(
    client: &Api,
    paths: &Arc<[String]>,
    connections: usize,
    duration: Duration,
) -> Result<Vec<Duration>> {
    let until = Instant::now() + duration;
    let workers: Vec<_> = (0..connections)
        .map(|worker| {
            let (client, paths) = (client.clone(), Arc::clone(paths));
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut next = worker % paths.len();
                while Instant::now() < until {
                    let path = &paths[next];
                    next = (next + 1) % paths.len();
                    let start = Instant::now();
                    let reply = client.get(path).await?;
                    samples.push(start.elapsed());
                    ensure!(
                        reply.status == 200 && !reply.body.is_empty(),
                        "{path} answered {}",
                        reply.status
                    );
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}
