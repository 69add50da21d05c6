//! Crash safety with the real `imi-node` binary in separate processes.
//!
//! Finland drills 2,000 requests to a Portuguese authority, withdrawing every
//! fourth right after sending it, so each withdrawn case carries two messages
//! that must be applied in order (a withdraw applied before its send would be
//! rejected). While the messages flow, both nodes are killed with SIGKILL at
//! random moments and restarted with `imi-node run`. In the end both stores
//! must hold exactly the same 2,000 cases, every message receipted as
//! accepted: nothing lost, nothing applied twice, order per case kept.
//!
//! The kill schedule comes from a seeded generator; the seed is printed at
//! the start and `IMI_CRASH_SEED=<seed>` replays the same schedule.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::imi_node_binary;
use imi_protocol::{AuthorityId, Country};
use imi_testnet::{NodeDir, Testnet};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const REQUESTS: usize = 2_000;
const WITHDRAW_EVERY: usize = 4;
const WITHDRAWN: u64 = 500;
const MESSAGES: u64 = 2_500;
/// Seed of the kill schedule unless `IMI_CRASH_SEED` names another.
const DEFAULT_SEED: u64 = 20_261_123;
/// Everything after the drill is queued must finish within this.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// The log line `CaseApp` writes for every step it applies.
const APPLIED: &str = "case step applied";

/// One node directory and, while it runs, its process.
struct Proc {
    name: &'static str,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn new(name: &'static str, dir: &NodeDir) -> Proc {
        Proc {
            name,
            config: dir.config.clone(),
            log: dir.dir.join("node.log"),
            child: None,
        }
    }

    /// Starts `imi-node <args> -c <config>`, appending its logs to the
    /// node's log file.
    fn spawn(&mut self, bin: &Path, args: &[&str], stdout: Stdio) -> Result<&mut Child> {
        assert!(self.child.is_none(), "{} runs already", self.name);
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(bin)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            // `APPLIED` lines are counted to follow the progress.
            .env("IMI_LOG", "info,libp2p=warn")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(self.child.insert(child))
    }

    fn run(&mut self, bin: &Path) -> Result<()> {
        self.spawn(bin, &["run"], Stdio::null())?;
        Ok(())
    }

    /// SIGKILL: the process gets no chance to finish anything.
    fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGINT, the orderly stop; SIGKILL if the node has not stopped
    /// within 10 s (e.g. interrupted before it could install its handler
    /// while SIGINT was ignored).
    fn interrupt(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                eprintln!("{} ignored SIGINT, killing it", self.name);
                child.kill()?;
                child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// How many case steps this node has logged as applied (a step whose
    /// transaction a kill cut off is applied, and logged, again later).
    fn applied_logged(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|text| text.lines().filter(|l| l.contains(APPLIED)).count())
            .unwrap_or(0)
    }

    /// `imi-node status --json` of the stopped node.
    fn status(&self, bin: &Path) -> Result<Value> {
        let out = Command::new(bin)
            .args(["status", "--json", "--config"])
            .arg(&self.config)
            .output()?;
        ensure!(
            out.status.success(),
            "status of {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

fn route(bin: &Path, node: &Proc, authority: AuthorityId, to: &str) -> Result<()> {
    let out = Command::new(bin)
        .args(["route", "--config"])
        .arg(&node.config)
        // An authority is routed by its country and id, to a node of its country.
        .args([
            "authority",
            to.split('/').next().unwrap_or(to),
            &authority.to_string(),
            to,
        ])
        .output()?;
    ensure!(
        out.status.success(),
        "route on {} failed: {}",
        node.name,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Fi,
    Pt,
    Both,
}

#[test]
fn killed_nodes_lose_nothing_and_apply_nothing_twice() -> Result<()> {
    let seed = std::env::var("IMI_CRASH_SEED")
        .ok()
        .map(|s| s.parse::<u64>())
        .transpose()
        .context("IMI_CRASH_SEED must be a number")?
        .unwrap_or(DEFAULT_SEED);
    eprintln!("kill schedule seed: {seed} (replay with IMI_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);

    let bin = imi_node_binary()?;
    let federation = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .prepare()?;
    eprintln!("node directories in {}", federation.base().display());
    // FI listens; PT dials FI and keeps redialling it.
    let mut fi = Proc::new("FI", &federation.nodes[0]);
    let mut pt = Proc::new("PT", &federation.nodes[1]);
    let pt_address = federation.nodes[1].address.to_string();

    for node in &federation.nodes {
        // `imi-node init` creates it; `route` writes the store in it.
        std::fs::create_dir_all(node.dir.join("data"))?;
    }
    let authority = AuthorityId::new();
    route(&bin, &pt, authority, &pt_address)?;
    route(&bin, &fi, authority, &pt_address)?;

    pt.run(&bin)?;
    let drill = fi.spawn(
        &bin,
        &[
            "drill",
            "--to-authority",
            &authority.to_string(),
            "--to-country",
            "PT",
            "--count",
            &REQUESTS.to_string(),
            "--withdraw-every",
            &WITHDRAW_EVERY.to_string(),
        ],
        Stdio::piped(),
    )?;
    let stdout = drill.stdout.take().context("the drill has no stdout")?;
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let queued = lines
        .recv_timeout(Duration::from_secs(180))
        .context("the drill did not report its requests queued")?;
    assert_eq!(
        queued,
        format!("drill queued: {REQUESTS} requests, {WITHDRAWN} withdrawn")
    );
    let settle_deadline = Instant::now() + SETTLE_LIMIT;

    // Kill each node three times alone and both once together, in a
    // seeded order, each after a seeded delay of 50-800 ms.
    let mut victims = [
        Victim::Fi,
        Victim::Fi,
        Victim::Fi,
        Victim::Pt,
        Victim::Pt,
        Victim::Pt,
        Victim::Both,
    ];
    victims.shuffle(&mut rng);
    let mut kills_in_flight = 0;
    for (n, victim) in victims.iter().enumerate() {
        let delay = Duration::from_millis(rng.random_range(50..=800));
        std::thread::sleep(delay);
        let applied = pt.applied_logged();
        if applied < MESSAGES as usize {
            kills_in_flight += 1;
        }
        eprintln!(
            "kill {}: {victim:?} after {} ms, Portugal has logged {applied} steps applied",
            n + 1,
            delay.as_millis()
        );
        if matches!(victim, Victim::Fi | Victim::Both) {
            fi.kill()?;
        }
        if matches!(victim, Victim::Pt | Victim::Both) {
            pt.kill()?;
        }
        if matches!(victim, Victim::Pt | Victim::Both) {
            pt.run(&bin)?;
        }
        if matches!(victim, Victim::Fi | Victim::Both) {
            fi.run(&bin)?;
        }
    }
    assert!(
        kills_in_flight > 0,
        "every kill came after Portugal had applied all steps, so none tested a crash in flight"
    );

    // Let both run until Finland's outbox is empty.
    let (fi_status, pt_status) = loop {
        let wait_until = Instant::now() + Duration::from_secs(30);
        while pt.applied_logged() < MESSAGES as usize && Instant::now() < wait_until {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Give the last receipts time to be stored on the Finnish side.
        std::thread::sleep(Duration::from_secs(1));
        fi.interrupt()?;
        pt.interrupt()?;
        let fi_status = fi.status(&bin)?;
        let pt_status = pt.status(&bin)?;
        let outbox = fi_status["outbox"].as_u64().context("no outbox count")?;
        eprintln!("Finland's outbox: {outbox} messages waiting for a receipt");
        if outbox == 0 {
            break (fi_status, pt_status);
        }
        if Instant::now() > settle_deadline {
            bail!(
                "Finland still had {outbox} messages without a receipt after {SETTLE_LIMIT:?}:\n{fi_status:#}\n{pt_status:#}"
            );
        }
        pt.run(&bin)?;
        fi.run(&bin)?;
    };

    let cases = json!({ "sent": REQUESTS as u64 - WITHDRAWN, "withdrawn": WITHDRAWN });
    assert_eq!(fi_status["cases"], cases, "Finland's cases: {fi_status:#}");
    assert_eq!(
        fi_status["sent"],
        json!({ "accepted": MESSAGES }),
        "every message Finland sent has an accepting receipt: {fi_status:#}"
    );
    assert_eq!(fi_status["outbox"], json!(0));
    assert_eq!(fi_status["rejections"], json!({}));
    assert_eq!(pt_status["cases"], cases, "Portugal's cases: {pt_status:#}");
    assert_eq!(pt_status["received"], json!(MESSAGES), "{pt_status:#}");
    assert_eq!(
        pt_status["receipts_given"],
        json!(MESSAGES),
        "{pt_status:#}"
    );
    eprintln!(
        "Portugal logged {} applications for {MESSAGES} messages (the rest were cut off by kills before their commit)",
        pt.applied_logged()
    );
    Ok(())
}
