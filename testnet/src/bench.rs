//! Benchmarks over a federation running in this process.
//!
//! [`delivery`] measures what an official waits for when sending a request:
//! from the call of [`Node::act`] to the recipient's signed receipt being
//! stored on the sender, over real loopback sockets between two nodes with
//! durable stores. A watcher thread follows the sender's store: it reads the
//! outbox count (cheap) and, when it shows new receipts, looks up the
//! pending messages oldest first with [`delivery::message`]. The node needs
//! no hook for this; the cost is a poll every [`POLL`], which is also the
//! resolution of the latencies.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use imi_node::cases::{CaseApp, CaseState};
use imi_node::delivery::{self, Direction, MessageStatus};
use imi_node::node::Node;
use imi_node::store::Store;
use imi_protocol::{
    Actor, AuthorityId, CaseAction, CaseId, Content, Country, Date, MessageId, Party, Request,
    RequestAction, Role, Timestamp, UserId,
};
use tokio::sync::{Semaphore, oneshot};

use crate::Testnet;

/// How often the watcher looks at the sender's store.
pub const POLL: Duration = Duration::from_micros(100);

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
    fn new(mut samples: Vec<Duration>) -> Latencies {
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
}

impl Phase {
    /// Requests receipted per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} requests, {} in flight: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.0} requests/s ({:.1} writes per sender commit)",
            self.latencies.len(),
            self.concurrency,
            ms(self.latencies.quantile(0.5)),
            ms(self.latencies.quantile(0.9)),
            ms(self.latencies.quantile(0.99)),
            ms(self.latencies.max()),
            self.throughput(),
            self.sender_writes as f64 / self.sender_commits.max(1) as f64,
        )
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

    /// Sends `case` and returns the id of the message that carries it.
    async fn send(&self, case: CaseId) -> Result<MessageId> {
        self.node
            .act(
                case,
                self.official.clone(),
                CaseAction::Request {
                    action: RequestAction::Send {
                        reply_by: self.reply_by,
                    },
                    before: None,
                },
                Content::default(),
            )
            .await?;
        delivery::case_messages(self.node.store(), case)?
            .iter()
            .filter(|m| m.direction == Direction::Outbound)
            .find_map(|m| imi_protocol::peek_header(&m.envelope).ok().map(|h| h.id))
            .with_context(|| format!("case {case} was sent but no message of it is stored"))
    }
}

/// Sends every case with at most `concurrency` requests in flight and
/// measures each until its receipt is stored.
async fn run_phase(sender: &Sender<'_>, cases: Vec<CaseId>, concurrency: usize) -> Result<Phase> {
    let store = sender.node.store().clone();
    let stats_before = store.commit_stats();
    let permits = Arc::new(Semaphore::new(concurrency));
    let (submit, submissions) = std::sync::mpsc::sync_channel(concurrency.max(64));
    let (result_tx, result) = oneshot::channel();
    let baseline = delivery::counts(&store)?.outbox;
    let watcher = {
        let permits = permits.clone();
        let store = store.clone();
        std::thread::Builder::new()
            .name("bench-watcher".into())
            .spawn(move || {
                let watched = watch(&store, baseline, &submissions, &permits);
                if watched.is_err() {
                    // Wake the senders waiting for room.
                    permits.close();
                }
                let _ = result_tx.send(watched);
            })?
    };
    let started = Instant::now();
    let sent = futures::stream::iter(cases)
        .map(|case| {
            let permits = permits.clone();
            let submit = submit.clone();
            async move {
                permits.acquire().await?.forget();
                let at = Instant::now();
                let id = match sender.send(case).await {
                    Ok(id) => id,
                    Err(err) => {
                        permits.add_permits(1);
                        return Err(err);
                    }
                };
                // Never full: at most `concurrency` requests are in flight.
                submit
                    .send(Submitted { id, at })
                    .context("the watcher stopped")?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    drop(submit);
    let watched = result.await.context("the watcher stopped")?;
    let _ = watcher.join();
    for outcome in sent {
        outcome?;
    }
    let watched = watched?;
    if watched.rejected > 0 {
        bail!(
            "{} requests were rejected by the recipient",
            watched.rejected
        );
    }
    let stats = store.commit_stats();
    Ok(Phase {
        concurrency,
        elapsed: watched.last.unwrap_or(started).duration_since(started),
        latencies: Latencies::new(watched.latencies),
        sender_commits: stats.commits - stats_before.commits,
        sender_writes: stats.writes - stats_before.writes,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Submitted {
    id: MessageId,
    at: Instant,
}

struct Watched {
    latencies: Vec<Duration>,
    rejected: usize,
    last: Option<Instant>,
}

/// Follows submitted messages until each has its receipt stored; returns a
/// permit for each. Ends when the submitters are gone and nothing is pending.
fn watch(
    store: &Store,
    baseline: u64,
    submissions: &std::sync::mpsc::Receiver<Submitted>,
    permits: &Semaphore,
) -> Result<Watched> {
    let mut pending: VecDeque<Submitted> = VecDeque::new();
    let mut watched = Watched {
        latencies: Vec::new(),
        rejected: 0,
        last: None,
    };
    let mut submitted: u64 = 0;
    let mut seen_done: u64 = 0;
    let mut progress = Instant::now();
    loop {
        if !pending.is_empty() && progress.elapsed() > STALL {
            bail!(
                "no receipt arrived for {STALL:?} while {} requests waited for one",
                pending.len()
            );
        }
        if pending.is_empty() {
            match submissions.recv() {
                Ok(s) => {
                    pending.push_back(s);
                    submitted += 1;
                    progress = Instant::now();
                }
                Err(_) => return Ok(watched),
            }
        }
        while let Ok(s) = submissions.try_recv() {
            pending.push_back(s);
            submitted += 1;
        }
        // Messages committed but not yet submitted here only make this an
        // underestimate, caught up with on a later round.
        let outbox = delivery::counts(store)?.outbox;
        let done = (submitted + baseline).saturating_sub(outbox);
        let mut to_find = done.saturating_sub(seen_done);
        let mut i = 0;
        while to_find > 0 && i < pending.len() {
            let record = delivery::message(store, pending[i].id)?
                .context("a sent message disappeared from the store")?;
            match record.status {
                MessageStatus::Pending => i += 1,
                status => {
                    let now = Instant::now();
                    let Some(s) = pending.remove(i) else { break };
                    watched.latencies.push(now.duration_since(s.at));
                    watched.last = Some(now);
                    if matches!(status, MessageStatus::Rejected { .. }) {
                        watched.rejected += 1;
                    }
                    permits.add_permits(1);
                    seen_done += 1;
                    to_find -= 1;
                    progress = now;
                }
            }
        }
        std::thread::sleep(POLL);
    }
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
