//! Benchmarks over a federation running in this process.
//!
//! [`delivery`] measures what an official waits for when sending a request:
//! from the call of [`Node::act`] to the recipient's signed receipt being
//! stored on the sender, over real loopback sockets between two nodes with
//! durable stores. A watcher task follows the sender's receipt notifications
//! ([`imi_node::delivery::Delivery::receipts`], sent once a receipt is
//! stored), so nothing polls the store and the latencies are exact.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use imi_node::cases::{CaseApp, CaseState};
use imi_node::delivery::{MessageStatus, Receipted};
use imi_node::node::Node;
use imi_protocol::{
    Actor, AuthorityId, CaseAction, CaseId, Content, Country, Date, Party, Request, RequestAction,
    Role, Timestamp, UserId,
};
use tokio::sync::{Semaphore, broadcast};

use crate::Testnet;

/// How long the benchmark waits for the next receipt before it gives up.
const STALL: Duration = Duration::from_secs(60);

/// What [`delivery`] runs.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Requests sent one at a time, each after the previous one's receipt.
    pub sequential: usize,
    /// Requests sent under saturating load.
    pub requests: usize,
    /// Requests in flight (sent, not yet receipted) under saturating load.
    pub concurrency: usize,
    /// Link the nodes over QUIC instead of TCP.
    pub quic: bool,
    /// Where the node directories go (a temporary directory if `None`).
    pub dir: Option<PathBuf>,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            sequential: 1_000,
            requests: 10_000,
            concurrency: 256,
            quic: false,
            dir: None,
        }
    }
}

/// Latencies of one run, sorted.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// The latencies measured, in any order.
    pub fn new(mut samples: Vec<Duration>) -> Latencies {
        samples.sort();
        Latencies(samples)
    }

    /// How many were measured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none were measured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `q`-quantile (0.5 for the median), nearest rank.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q.clamp(0.0, 1.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    /// The longest.
    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }
}

/// One phase of the delivery benchmark.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Requests in flight at most.
    pub concurrency: usize,
    /// From the first `act` call to the last receipt stored.
    pub elapsed: Duration,
    /// Per request, from its `act` call to its receipt stored.
    pub latencies: Latencies,
    /// Transactions the sender's store committed in the phase.
    pub sender_commits: u64,
    /// Writes those transactions carried.
    pub sender_writes: u64,
    /// CPU time the whole process (both nodes, the benchmark) used in the
    /// phase, user and system, if the platform tells it.
    pub cpu: Option<Duration>,
}

impl Phase {
    /// Requests receipted per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// CPU time per request (both nodes together).
    pub fn cpu_per_request(&self) -> Option<Duration> {
        let count = u32::try_from(self.latencies.len())
            .ok()
            .filter(|n| *n > 0)?;
        self.cpu.map(|cpu| cpu / count)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} requests, {} in flight: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} requests/s ({:.1} writes per sender commit",
            self.latencies.len(),
            self.concurrency,
            ms(self.latencies.quantile(0.5)),
            ms(self.latencies.quantile(0.9)),
            ms(self.latencies.quantile(0.99)),
            ms(self.latencies.max()),
            self.throughput(),
            self.sender_writes as f64 / self.sender_commits.max(1) as f64,
        )?;
        match self.cpu_per_request() {
            Some(cpu) => write!(f, "; {} µs CPU per request)", cpu.as_micros()),
            None => write!(f, ")"),
        }
    }
}

/// The result of [`delivery`].
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// One request at a time: latency.
    pub sequential: Phase,
    /// Many requests in flight: throughput.
    pub saturated: Phase,
}

impl fmt::Display for DeliveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sequential: {}", self.sequential)?;
        writeln!(f, "saturating: {}", self.saturated)?;
        write!(
            f,
            "targets: p50 <= 2 ms, p99 <= 10 ms, >= 5,000 requests/s sustained"
        )
    }
}

/// Runs the delivery benchmark between a Finnish and a Portuguese node.
pub async fn delivery(options: &DeliveryOptions) -> Result<DeliveryReport> {
    if options.concurrency == 0 {
        bail!("the concurrency must be at least 1");
    }
    let mut builder = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .quic(options.quic);
    if let Some(dir) = &options.dir {
        builder = builder.dir(dir);
    }
    let net = builder.start().await?;
    net.wait_connected(Duration::from_secs(30)).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let official = Actor {
        user: UserId::new(),
        authority: AuthorityId::new(),
        country: Country::Fi,
        roles: [Role::RequestHandler].into(),
    };
    let to = Party {
        authority: AuthorityId::new(),
        country: Country::Pt,
    };
    for node in [fi, pt] {
        node.set_authority_route(imi_protocol::Party::of(&official), fi.address())
            .await?;
        node.set_authority_route(to, pt.address()).await?;
    }
    let sender = Sender {
        node: fi,
        official,
        to,
        reply_by: Timestamp::from_millis(now_ms())
            .date()
            .checked_add_days(30)
            .context("no date 30 days from now")?,
    };

    // Warm the links and code paths up; not measured.
    let warm_up = sender.drafts(50.min(options.sequential.max(1))).await?;
    run_phase(&sender, warm_up, 1).await?;

    let cases = sender.drafts(options.sequential).await?;
    let sequential = run_phase(&sender, cases, 1).await?;
    let cases = sender.drafts(options.requests).await?;
    let saturated = run_phase(&sender, cases, options.concurrency).await?;
    Ok(DeliveryReport {
        sequential,
        saturated,
    })
}

struct Sender<'a> {
    node: &'a Node<CaseApp>,
    official: Actor,
    to: Party,
    reply_by: Date,
}

impl Sender<'_> {
    /// `count` drafted requests, stored (not measured).
    async fn drafts(&self, count: usize) -> Result<Vec<CaseId>> {
        let created = futures::stream::iter(0..count)
            .map(|_| async {
                let case = CaseId::new();
                let draft = Request::draft(
                    case,
                    &self.official,
                    "professional-qualifications",
                    self.to,
                    Timestamp::from_millis(now_ms()),
                )?;
                self.node
                    .create(CaseState::Request(draft), self.official.clone())
                    .await?;
                anyhow::Ok(case)
            })
            .buffer_unordered(256)
            .collect::<Vec<_>>()
            .await;
        created.into_iter().collect()
    }

    /// Sends `case` (its receipt is waited for by the watcher).
    async fn send(&self, case: CaseId) -> Result<()> {
        self.node
            .act(
                case,
                self.official.clone(),
                CaseAction::Request(RequestAction::Send {
                    reply_by: self.reply_by,
                }),
                Content::default(),
            )
            .await?;
        Ok(())
    }
}

/// Sends every case with at most `concurrency` requests in flight and
/// measures each until its receipt is stored.
async fn run_phase(sender: &Sender<'_>, cases: Vec<CaseId>, concurrency: usize) -> Result<Phase> {
    let store = sender.node.store().clone();
    let stats_before = store.commit_stats();
    let cpu_before = process_cpu();
    let permits = Arc::new(Semaphore::new(concurrency));
    let started_at: Arc<Mutex<HashMap<CaseId, Instant>>> = Arc::default();
    let watcher = tokio::spawn(watch(
        sender.node.delivery().receipts(),
        started_at.clone(),
        permits.clone(),
        cases.len(),
    ));
    let started = Instant::now();
    let sent = futures::stream::iter(cases)
        .map(|case| {
            let permits = permits.clone();
            let started_at = started_at.clone();
            async move {
                permits.acquire().await?.forget();
                lock(&started_at).insert(case, Instant::now());
                sender.send(case).await
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    if let Some(err) = sent.into_iter().find_map(Result::err) {
        watcher.abort();
        return Err(err);
    }
    let watched = watcher.await.context("the watcher stopped")??;
    if watched.rejected > 0 {
        bail!(
            "{} requests were rejected by the recipient",
            watched.rejected
        );
    }
    let stats = store.commit_stats();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Phase {
        concurrency,
        elapsed: watched.last.unwrap_or(started).duration_since(started),
        latencies: Latencies::new(watched.latencies),
        sender_commits: stats.commits - stats_before.commits,
        sender_writes: stats.writes - stats_before.writes,
        cpu,
    })
}

/// CPU time used by this process so far, user and system (Linux:
/// `/proc/self/stat`, in clock ticks of 10 ms).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th and stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis(10 * (utime + stime)))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Watched {
    latencies: Vec<Duration>,
    rejected: usize,
    last: Option<Instant>,
}

/// Follows the sender's receipt notifications until `expected` cases of
/// this phase have their receipt stored; gives a permit back for each.
async fn watch(
    mut receipts: broadcast::Receiver<Receipted>,
    started_at: Arc<Mutex<HashMap<CaseId, Instant>>>,
    permits: Arc<Semaphore>,
    expected: usize,
) -> Result<Watched> {
    let mut watched = Watched {
        latencies: Vec::with_capacity(expected),
        rejected: 0,
        last: None,
    };
    while watched.latencies.len() < expected {
        let receipted = match tokio::time::timeout(STALL, receipts.recv()).await {
            Err(_) => bail!(
                "no receipt arrived for {STALL:?} while {} requests waited for one",
                expected - watched.latencies.len()
            ),
            Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                bail!("the watcher fell behind and missed {missed} receipts")
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => bail!("delivery stopped"),
            Ok(Ok(receipted)) => receipted,
        };
        let now = Instant::now();
        // Cases of an earlier phase are not ours.
        let Some(at) = lock(&started_at).remove(&receipted.case) else {
            continue;
        };
        watched.latencies.push(now.duration_since(at));
        watched.last = Some(now);
        if matches!(receipted.status, MessageStatus::Rejected { .. }) {
            watched.rejected += 1;
        }
        permits.add_permits(1);
    }
    Ok(watched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let l = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(l.quantile(0.5), Duration::from_millis(50));
        assert_eq!(l.quantile(0.99), Duration::from_millis(99));
        assert_eq!(l.quantile(0.0), Duration::from_millis(1));
        assert_eq!(l.max(), Duration::from_millis(100));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_is_measured_until_its_receipt() {
        let report = delivery(&DeliveryOptions {
            sequential: 5,
            requests: 60,
            concurrency: 8,
            ..DeliveryOptions::default()
        })
        .await
        .unwrap();
        assert_eq!(report.sequential.latencies.len(), 5);
        assert_eq!(report.saturated.latencies.len(), 60);
        assert_eq!(report.sequential.concurrency, 1);
        assert!(report.saturated.latencies.quantile(0.5) > Duration::ZERO);
        assert!(report.saturated.elapsed >= report.saturated.latencies.max());
        assert!(report.saturated.throughput() > 0.0);
    }
}
