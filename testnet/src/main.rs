//! `imi-testnet`: a local federation for training and demos, and the
//! benchmark harness.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use imi_protocol::Country;
use imi_testnet::Testnet;
use imi_testnet::bench::{self, DeliveryOptions};

/// A whole imi federation on one machine.
#[derive(Debug, Parser)]
#[command(name = "imi-testnet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local federation in this process and run it until Ctrl-C
    /// (default: all 30 countries and the Commission's observer).
    Up {
        /// The countries that get a node, e.g. FI,PT.
        #[arg(long, value_delimiter = ',', conflicts_with = "all")]
        countries: Vec<Country>,
        /// Every one of the 30 countries.
        #[arg(long)]
        all: bool,
        /// Run the Commission's observer node too (always, when no
        /// countries are chosen).
        #[arg(long)]
        observer: bool,
        /// Keep the node directories in DIR (new or empty) instead of a
        /// temporary directory removed on exit.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Demo authorities each country publishes in the directory.
        #[arg(long, default_value_t = 40)]
        authorities: usize,
    },
    /// Replay a scenario through the JSON API alone, printing each step
    /// and what each side sees; exits non-zero at the first step that
    /// fails.
    Scenario {
        /// The scenario (`seed`); `--list` shows them all.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the scenarios.
        #[arg(long, conflicts_with = "name")]
        list: bool,
        /// The directory of a federation started by `imi-testnet up --dir
        /// DIR` (its API tokens are in DIR/api.json); without it, a Finnish
        /// and a Portuguese node are started for the run.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seconds each step may take to reach the other side.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Measure a federation running in this process.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// My tasks of an official whose authority has many open requests,
    /// signed in, loaded from many connections at once: pages/s, latency
    /// percentiles and the page's weight
    Tasks {
        /// Open requests of the official's authority.
        #[arg(long, default_value_t = imi_testnet::bench_tasks::TasksOptions::default().cases)]
        cases: usize,
        /// Connections loading pages at once.
        #[arg(long, default_value_t = imi_testnet::bench_tasks::TasksOptions::default().connections)]
        connections: usize,
        /// Seconds to measure.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The JSON API of an official whose authority has many open
    /// requests, from many clients at once: requests/s and latency
    /// percentiles of `GET /api/v1/tasks?limit=20` and of a mix of
    /// searches
    Api {
        /// Open requests of the official's authority.
        #[arg(long, default_value_t = imi_testnet::bench_api::ApiOptions::default().cases)]
        cases: usize,
        /// Authorities each of the two countries publishes.
        #[arg(long, default_value_t = imi_testnet::bench_api::ApiOptions::default().authorities)]
        authorities: usize,
        /// Clients sending requests at once.
        #[arg(long, default_value_t = imi_testnet::bench_api::ApiOptions::default().connections)]
        connections: usize,
        /// Seconds to measure each endpoint.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Requests between two nodes: latency from sending to the signed
    /// receipt stored on the sender, one at a time and under saturation.
    Delivery {
        /// Requests sent under saturating load.
        #[arg(long, default_value_t = DeliveryOptions::default().requests)]
        requests: usize,
        /// Requests in flight under saturating load.
        #[arg(long, default_value_t = DeliveryOptions::default().concurrency)]
        concurrency: usize,
        /// Requests sent one at a time, for latency.
        #[arg(long, default_value_t = DeliveryOptions::default().sequential)]
        sequential: usize,
        /// Link the nodes over QUIC instead of TCP.
        #[arg(long)]
        quic: bool,
        /// Where the node directories and stores go (default: a temporary
        /// directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The delivery benchmark without, then with, a flood of uncertified
    /// connections and streams on the receiving node; with the process's
    /// peak memory.
    Flood {
        /// Requests sent under saturating load.
        #[arg(long, default_value_t = 5_000)]
        requests: usize,
        /// Requests in flight under saturating load.
        #[arg(long, default_value_t = DeliveryOptions::default().concurrency)]
        concurrency: usize,
        /// Requests sent one at a time, for latency.
        #[arg(long, default_value_t = 500)]
        sequential: usize,
        /// Flooding connections open at once (each a new identity).
        #[arg(long, default_value_t = imi_testnet::bench_flood::FloodOptions::default().connections)]
        connections: usize,
        /// Delivery streams each flooding connection opens.
        #[arg(long, default_value_t = imi_testnet::bench_flood::FloodOptions::default().streams)]
        streams: usize,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(dispatch(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("imi-testnet: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes a line to standard output; a closed output (`| head`) is an
/// error, not a panic.
fn say(line: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout(), "{line}").context("cannot write to standard output")
}

fn logging(default: &str) {
    let filter = std::env::var("IMI_LOG").unwrap_or_else(|_| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            countries,
            all,
            observer,
            dir,
            authorities,
        } => {
            // The demo coordinators have no substitutes on purpose: keep
            // the administration's reminders out of the trainer's console.
            logging("warn,imi_node::publish=error");
            let (countries, observer) = if all {
                (Country::MEMBERS.to_vec(), observer)
            } else if countries.is_empty() {
                (Country::MEMBERS.to_vec(), true)
            } else {
                (countries, observer)
            };
            up(countries, observer, dir, authorities).await
        }
        Command::Scenario {
            name,
            list,
            dir,
            timeout,
        } => {
            if list {
                for scenario in imi_testnet::scenario::SCENARIOS {
                    say(format_args!("{:<13} {}", scenario.name, scenario.about))?;
                }
                return Ok(());
            }
            let name = name.context("name a scenario, or ask for --list")?;
            // Refuse an unknown scenario before starting anything.
            imi_testnet::scenario::find(&name)?;
            logging("warn");
            scenario(&name, dir, Duration::from_secs(timeout.max(1))).await
        }
        Command::Bench {
            bench:
                BenchCommand::Api {
                    cases,
                    authorities,
                    connections,
                    seconds,
                },
        } => {
            logging("warn");
            let options = imi_testnet::bench_api::ApiOptions {
                cases,
                authorities,
                connections,
                duration: Duration::from_secs(seconds.max(1)),
            };
            say(format_args!(
                "JSON API of PT with {cases} open requests from FI and {authorities} authorities per country, {connections} clients for {seconds} s per endpoint"
            ))?;
            let report = imi_testnet::bench_api::api(&options).await?;
            say(format_args!("{report}"))?;
            Ok(())
        }
        Command::Bench {
            bench:
                BenchCommand::Tasks {
                    cases,
                    connections,
                    seconds,
                },
        } => {
            logging("warn");
            let options = imi_testnet::bench_tasks::TasksOptions {
                cases,
                connections,
                duration: std::time::Duration::from_secs(seconds.max(1)),
            };
            say(format_args!(
                "My tasks on PT with {cases} open requests from FI, {connections} connections for {seconds} s"
            ))?;
            let report = imi_testnet::bench_tasks::tasks(&options).await?;
            say(format_args!("{report}"))?;
            Ok(())
        }
        Command::Bench {
            bench:
                BenchCommand::Delivery {
                    requests,
                    concurrency,
                    sequential,
                    quic,
                    dir,
                },
        } => {
            logging("warn");
            let options = DeliveryOptions {
                sequential,
                requests,
                concurrency,
                quic,
                dir,
            };
            say(format_args!(
                "delivery FI -> PT over {} loopback: {sequential} sequential requests, then {requests} with {concurrency} in flight",
                if quic { "QUIC" } else { "TCP" }
            ))?;
            let report = bench::delivery(&options).await?;
            say(format_args!("{report}"))?;
            Ok(())
        }
        Command::Bench {
            bench:
                BenchCommand::Flood {
                    requests,
                    concurrency,
                    sequential,
                    connections,
                    streams,
                },
        } => {
            logging("error");
            let delivery = DeliveryOptions {
                sequential,
                requests,
                concurrency,
                ..DeliveryOptions::default()
            };
            let flood = imi_testnet::bench_flood::FloodOptions {
                connections,
                streams,
                ..Default::default()
            };
            say(format_args!(
                "delivery FI -> PT over TCP loopback ({sequential} sequential, {requests} with {concurrency} in flight), without and with a flood on PT of {connections} uncertified connections x {streams} streams of {} MiB",
                flood.bytes_per_stream / (1024 * 1024)
            ))?;
            let report = imi_testnet::bench_flood::flood(&delivery, &flood).await?;
            say(format_args!("{report}"))?;
            Ok(())
        }
    }
}

/// Runs scenario `name` against the federation in `dir`, or against a
/// Finnish and a Portuguese node started for the run.
async fn scenario(name: &str, dir: Option<PathBuf>, timeout: Duration) -> Result<()> {
    let mut out = std::io::stdout();
    match dir {
        Some(dir) => {
            let api = imi_testnet::api::ApiFile::read(&dir)?;
            imi_testnet::scenario::run(name, &api, timeout, &mut out).await
        }
        None => {
            say(format_args!(
                "starting a Finnish and a Portuguese node for the scenario"
            ))?;
            let local = imi_testnet::scenario::LocalFederation::start().await?;
            let result = imi_testnet::scenario::run(name, &local.api, timeout, &mut out).await;
            local.stop().await;
            result
        }
    }
}

async fn up(
    mut countries: Vec<Country>,
    observer: bool,
    dir: Option<PathBuf>,
    authorities: usize,
) -> Result<()> {
    countries.retain(|c| !c.is_commission());
    countries.dedup();
    if countries.is_empty() && !observer {
        bail!("choose at least one country, or the observer");
    }
    let mut builder = Testnet::builder().countries(countries).observer(observer);
    if let Some(dir) = &dir {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            bail!(
                "{} is not empty; choose a new or empty directory for the federation",
                dir.display()
            );
        }
        builder = builder.dir(dir);
    }
    let started = Instant::now();
    let mut net = builder.start().await?;
    net.wait_connected(Duration::from_secs(120)).await?;
    say(format_args!(
        "{} nodes up and connected in {:.1} s",
        net.nodes.len(),
        started.elapsed().as_secs_f64()
    ))?;
    for (node, dir) in net.nodes.iter().zip(&net.federation.nodes) {
        let addrs: Vec<String> = node
            .net()
            .listen_addrs()
            .await
            .iter()
            .map(ToString::to_string)
            .collect();
        say(format_args!(
            "{:<12} {:<28} {}",
            node.address().to_string(),
            addrs.join(" "),
            dir.dir.display()
        ))?;
    }
    if let Err(err) = demo_data(&net, authorities).await {
        // Stop the nodes before their directories are removed.
        for node in net.nodes.drain(..) {
            node.shutdown().await;
        }
        return Err(err);
    }
    let uis = match serve_uis(&net).await {
        Ok((uis, api)) => match api.write(net.federation.base()) {
            Ok(path) => {
                say(format_args!(
                    "JSON API: a token of every account above and each node's address are in {} (readable by you only); `imi-testnet scenario seed --dir {}` replays the seed scenario through the API",
                    path.display(),
                    net.federation.base().display()
                ))?;
                uis
            }
            Err(err) => {
                for ui in uis {
                    ui.stop().await;
                }
                for node in net.nodes.drain(..) {
                    node.shutdown().await;
                }
                return Err(err);
            }
        },
        Err(err) => {
            for node in net.nodes.drain(..) {
                node.shutdown().await;
            }
            return Err(err);
        }
    };
    if dir.is_none() {
        say(format_args!(
            "the node directories are removed when the federation stops"
        ))?;
    }
    say(format_args!("press Ctrl-C to stop"))?;
    tokio::signal::ctrl_c().await?;
    say(format_args!("stopping"))?;
    for ui in uis {
        ui.stop().await;
    }
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}

/// The password of every demo coordinator account.
const DEMO_PASSWORD: &str = "demo password, change me";

/// Demo data: a national coordinator account on every country node, and
/// authorities published in every country's directory.
async fn demo_data(net: &Testnet, authorities: usize) -> Result<()> {
    let started = Instant::now();
    for node in &net.nodes {
        let country = node.address().country;
        node.admin()
            .create_first_coordinator(
                "coordinator",
                &format!("National IMI coordinator {country}"),
                &format!(
                    "coordinator@{}.imi.test",
                    country.code().to_ascii_lowercase()
                ),
                imi_node::admin::Password::new(DEMO_PASSWORD),
            )
            .await?;
        if !country.is_commission() {
            // Real authorities and registers where the demo directory has
            // them, generated ones to fill the country up.
            let (mut real, registers) = imi_testnet::demo_entries(country, node.address())?;
            // The demo people's authorities are registered through the
            // node's administration instead (see `serve_uis`).
            real.retain(|a| !imi_testnet::ui::is_demo_people_authority(a));
            let filler = authorities.saturating_sub(real.len());
            real.extend(imi_testnet::sample_authorities(
                country,
                node.address(),
                filler,
            ));
            node.directory().upsert_authorities(real).await?;
            for register in registers {
                let id = register.id.clone();
                if let Err(err) = node.directory().upsert_register(register).await {
                    say(format_args!("demo register {id} not published: {err}"))?;
                }
            }
        }
    }
    net.wait_converged(Duration::from_secs(120)).await?;
    let converged = started.elapsed();
    let total = net
        .nodes
        .first()
        .map_or(0, |n| n.directory().authority_count());
    // Searchable: every node's index holds every authority and register
    // (the index follows the directory a moment behind).
    let expected = net.nodes.first().map_or(0, |n| {
        let directory = n.directory();
        directory.authority_count() as u64
            + Country::ALL
                .iter()
                .map(|c| directory.registers_of(*c).len() as u64)
                .sum::<u64>()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !net.nodes.iter().all(|n| n.search().len() == expected) {
        if Instant::now() > deadline {
            bail!(
                "the search indexes did not hold all {expected} entries within 60 s of convergence"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    say(format_args!(
        "demo data: {total} authorities in the directory, converged on every node in {:.1} s and searchable on every node in {:.1} s; each node has a user `coordinator` with the password {DEMO_PASSWORD:?}",
        converged.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ))?;
    if let Some(fi) = net
        .nodes
        .iter()
        .find(|n| n.address().country == Country::Fi)
    {
        // A Finnish official looks for the Portuguese authority for doctors.
        let text = "lääkäri";
        let query = imi_search::Query::new(text, imi_protocol::Language::Fi).with_filters(
            imi_search::Filters {
                countries: vec![Country::Pt],
                ..imi_search::Filters::default()
            },
        );
        let results = fi.search().search(query).await?;
        say(format_args!(
            "search on FI for {text:?} (doctor) in Portugal: {} results",
            results.total
        ))?;
        for hit in results.hits.iter().take(3) {
            say(format_args!("  {} {}", hit.country, hit.display_name))?;
        }
    }
    Ok(())
}

/// Serves every node's web UI (a training environment) and creates the demo
/// people and an API token of each demo account; prints, per country, the
/// address to open and who can sign in.
async fn serve_uis(
    net: &Testnet,
) -> Result<(Vec<imi_node::ui::UiServer>, imi_testnet::api::ApiFile)> {
    use imi_testnet::ui::{DEMO_PASSWORD, demo_people, serve_ui};
    let mut uis = Vec::with_capacity(net.nodes.len());
    let mut api = imi_testnet::api::ApiFile { nodes: vec![] };
    say(format_args!(
        "web UI of each node (training environment), every account's password is {DEMO_PASSWORD:?}:"
    ))?;
    for node in &net.nodes {
        let people = demo_people(node, "coordinator").await?;
        let ui = serve_ui(node).await?;
        say(format_args!(
            "{:<12} {}  sign in as: coordinator (national-coordinator)",
            node.address().to_string(),
            ui.url()
        ))?;
        let mut logins = vec!["coordinator"];
        for person in &people {
            say(format_args!(
                "{:<12}   {} — {}, {}: {}",
                "", person.login, person.name, person.authority, person.roles
            ))?;
            logins.push(&person.login);
        }
        api.nodes
            .push(imi_testnet::api::demo_tokens(node, &ui.url(), &logins).await?);
        uis.push(ui);
    }
    Ok((uis, api))
}
