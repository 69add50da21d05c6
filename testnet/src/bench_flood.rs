//! A flood of peers that are not admitted, and the delivery benchmark run
//! with and without it.
//!
//! [`Flood`] opens many TLS connections to a node from fresh libp2p
//! identities (none of them certified). On each, it opens streams on the
//! delivery protocol that claim 8 MiB requests and send them in full, and
//! on half of them it sends a junk admission hello; the other half stay
//! silent until the node closes them. When a connection closes it comes
//! back with a new identity. The flooder itself holds almost no memory: the
//! bytes it sends come from one static buffer.
//!
//! [`flood`] runs [`crate::bench::delivery`] twice between two admitted
//! nodes, without and then with a flood on the receiving node, and reports
//! both with the process's resident memory (both nodes and the flooder).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{AsyncWriteExt, StreamExt};
use imi_node::net::{ADMISSION, DELIVER};
use libp2p::request_response::{self, OutboundFailure, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, StreamProtocol};

use crate::bench::{DeliveryOptions, DeliveryReport};

/// How hard to flood.
#[derive(Debug, Clone)]
pub struct FloodOptions {
    /// Connections open at once (each from its own identity).
    pub connections: usize,
    /// Delivery streams opened on each connection.
    pub streams: usize,
    /// Bytes each stream claims and sends.
    pub bytes_per_stream: u32,
}

impl Default for FloodOptions {
    fn default() -> Self {
        FloodOptions {
            connections: 64,
            streams: 64,
            bytes_per_stream: 8 * 1024 * 1024,
        }
    }
}

/// What the flood achieved, counted as it goes.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Connections the node accepted.
    pub connections: AtomicU64,
    /// Streams refused while negotiating the protocol (nothing was read).
    pub streams_refused: AtomicU64,
    /// Streams that failed otherwise (connection closed, timeout, …).
    pub streams_failed: AtomicU64,
    /// Streams the node answered: must stay 0.
    pub streams_answered: AtomicU64,
    /// Admission hellos refused by the node.
    pub hellos_refused: AtomicU64,
}

impl FloodStats {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters, as (connections, refused, failed, answered, hellos refused).
    pub fn snapshot(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.connections.load(Ordering::Relaxed),
            self.streams_refused.load(Ordering::Relaxed),
            self.streams_failed.load(Ordering::Relaxed),
            self.streams_answered.load(Ordering::Relaxed),
            self.hellos_refused.load(Ordering::Relaxed),
        )
    }
}

/// A running flood; it stops when dropped.
#[derive(Debug)]
pub struct Flood {
    stats: Arc<FloodStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    /// Floods the node listening on `target` (a loopback address).
    pub fn start(target: Multiaddr, options: &FloodOptions) -> Flood {
        let stats = Arc::new(FloodStats::default());
        let tasks = (0..options.connections)
            .map(|i| {
                let target = target.clone();
                let options = options.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    loop {
                        if let Err(err) =
                            one_connection(&target, &options, &stats, i % 2 == 0).await
                        {
                            tracing::debug!(error = %err, "flood connection failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        Flood { stats, tasks }
    }

    /// What the flood achieved so far.
    pub fn stats(&self) -> &FloodStats {
        &self.stats
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Writes a request that claims and sends `len` zero bytes, from one static
/// buffer.
#[derive(Debug, Clone, Default)]
struct FloodCodec;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

impl request_response::Codec for FloodCodec {
    type Protocol = StreamProtocol;
    type Request = FloodRequest;
    type Response = ();

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<FloodRequest>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the flooder serves nothing"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<()>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let mut first = [0u8; 1];
        futures::AsyncReadExt::read_exact(io, &mut first).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: FloodRequest,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        match request {
            FloodRequest::Claim(len) => {
                io.write_all(&len.to_be_bytes()).await?;
                let mut left = len as usize;
                while left > 0 {
                    let n = left.min(ZEROS.len());
                    io.write_all(&ZEROS[..n]).await?;
                    left -= n;
                }
            }
            FloodRequest::Junk(bytes) => {
                io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
                io.write_all(&bytes).await?;
            }
        }
        io.close().await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, _: &mut T, _: ()) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the flooder serves nothing"))
    }
}

#[derive(Debug, Clone)]
enum FloodRequest {
    /// A length prefix and that many zero bytes.
    Claim(u32),
    /// Some bytes.
    Junk(Vec<u8>),
}

type FloodRr = request_response::Behaviour<FloodCodec>;

#[derive(NetworkBehaviour)]
struct FloodBehaviour {
    deliver: FloodRr,
    admission: FloodRr,
}

async fn one_connection(
    target: &Multiaddr,
    options: &FloodOptions,
    stats: &FloodStats,
    hello: bool,
) -> Result<()> {
    let config = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(30))
        .with_max_concurrent_streams(options.streams.max(1) + 1);
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::tls::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|_| FloodBehaviour {
            deliver: FloodRr::with_codec(
                FloodCodec,
                [(DELIVER, ProtocolSupport::Outbound)],
                config.clone(),
            ),
            admission: FloodRr::with_codec(
                FloodCodec,
                [(ADMISSION, ProtocolSupport::Outbound)],
                config.clone(),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(target.clone())?;
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                FloodStats::add(&stats.connections);
                for _ in 0..options.streams {
                    swarm
                        .behaviour_mut()
                        .deliver
                        .send_request(&peer_id, FloodRequest::Claim(options.bytes_per_stream));
                }
                if hello {
                    swarm
                        .behaviour_mut()
                        .admission
                        .send_request(&peer_id, FloodRequest::Junk(vec![0x42; 1024]));
                }
            }
            SwarmEvent::Behaviour(FloodBehaviourEvent::Deliver(event)) => match event {
                request_response::Event::OutboundFailure {
                    error: OutboundFailure::UnsupportedProtocols,
                    ..
                } => FloodStats::add(&stats.streams_refused),
                request_response::Event::OutboundFailure { .. } => {
                    FloodStats::add(&stats.streams_failed)
                }
                request_response::Event::Message { .. } => FloodStats::add(&stats.streams_answered),
                _ => {}
            },
            SwarmEvent::Behaviour(FloodBehaviourEvent::Admission(
                request_response::Event::Message { .. },
            )) => FloodStats::add(&stats.hellos_refused),
            SwarmEvent::ConnectionClosed { .. } | SwarmEvent::OutgoingConnectionError { .. } => {
                return Ok(());
            }
            _ => {}
        }
    }
}

/// The resident memory of this process, in bytes (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Samples [`resident_bytes`] until dropped, keeping the highest.
#[derive(Debug)]
pub struct PeakMemory {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakMemory {
    /// Starts sampling every 50 ms.
    pub fn start() -> PeakMemory {
        let peak = Arc::new(AtomicU64::new(resident_bytes().unwrap_or(0)));
        let task = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    if let Some(now) = resident_bytes() {
                        peak.fetch_max(now, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        PeakMemory { peak, task }
    }

    /// The highest resident memory seen so far, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakMemory {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The result of [`flood`].
#[derive(Debug)]
pub struct FloodReport {
    /// The delivery benchmark without a flood.
    pub calm: DeliveryReport,
    /// Peak resident memory during the calm run, in bytes.
    pub calm_peak: u64,
    /// The delivery benchmark while the receiving node is flooded.
    pub flooded: DeliveryReport,
    /// Peak resident memory during the flooded run, in bytes.
    pub flooded_peak: u64,
    /// The flood's counters (connections, refused, failed, answered, hellos refused).
    pub flood: (u64, u64, u64, u64, u64),
}

impl std::fmt::Display for FloodReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        writeln!(f, "without flood:")?;
        writeln!(f, "  sequential: {}", self.calm.sequential)?;
        writeln!(f, "  saturating: {}", self.calm.saturated)?;
        writeln!(
            f,
            "  peak RSS of the process: {:.0} MiB",
            mib(self.calm_peak)
        )?;
        writeln!(f, "with flood:")?;
        writeln!(f, "  sequential: {}", self.flooded.sequential)?;
        writeln!(f, "  saturating: {}", self.flooded.saturated)?;
        writeln!(
            f,
            "  peak RSS of the process: {:.0} MiB",
            mib(self.flooded_peak)
        )?;
        let (connections, refused, failed, answered, hellos) = self.flood;
        write!(
            f,
            "flood: {connections} connections accepted, {refused} delivery streams refused at negotiation, {failed} failed otherwise, {answered} answered, {hellos} junk hellos refused"
        )
    }
}

/// Runs the delivery benchmark without and with a flood on the receiver.
pub async fn flood(delivery: &DeliveryOptions, options: &FloodOptions) -> Result<FloodReport> {
    let memory = PeakMemory::start();
    let calm = crate::bench::delivery(delivery).await?;
    let calm_peak = memory.peak();
    drop(memory);

    let dir = tempfile::Builder::new()
        .prefix("imi-bench-flood-")
        .tempdir()?;
    let flooded_options = DeliveryOptions {
        dir: Some(dir.path().to_owned()),
        ..delivery.clone()
    };
    // The receiving node's configuration appears before it starts: the
    // flood begins as soon as its address is known, before the warm-up.
    let pt_config: PathBuf = dir
        .path()
        .join(crate::node_name(imi_protocol::Country::Pt))
        .join("imi-node.toml");
    let options = options.clone();
    let flood_task = tokio::spawn(async move {
        loop {
            if let Ok(config) = imi_node::config::Config::load(&pt_config)
                && let Some(addr) = config.listen.first()
                && let Ok(addr) = addr.parse::<Multiaddr>()
            {
                return Flood::start(addr, &options);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let memory = PeakMemory::start();
    let flooded = crate::bench::delivery(&flooded_options).await;
    let flooded_peak = memory.peak();
    let flood = flood_task.await.context("the flood did not start")?;
    let stats = flood.stats().snapshot();
    drop(flood);
    Ok(FloodReport {
        calm,
        calm_peak,
        flooded: flooded?,
        flooded_peak,
        flood: stats,
    })
}
