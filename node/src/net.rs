//! Links between nodes: the libp2p swarm, owned by one event loop.
//!
//! Transports are TCP (TLS + yamux) and QUIC; both prove that the other side
//! holds the private key of its PeerId. That alone admits nobody: before any
//! application protocol is served, each side presents its federation
//! credentials (certificate chain and revocation lists) over the admission
//! protocol and the other side checks them through an [`Admission`]
//! implementation. A peer that fails, stays silent past the admission
//! timeout, or speaks an application protocol before it is admitted is
//! disconnected and blocked for a while. When the revocation lists change,
//! every admitted peer is checked again and revoked ones are cut off.
//!
//! The rest of the node talks to the loop through a cloneable
//! [`NetworkHandle`] (bounded command channel, oneshot replies) and receives
//! [`NetEvent`]s on a bounded channel.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use imi_protocol::NodeAddress;

/// Largest request accepted on any protocol (an envelope with attachments).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest response accepted on any protocol.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The admission protocol: certificate chains and revocation lists.
pub const ADMISSION: StreamProtocol = StreamProtocol::new("/imi/admission/1");
/// The delivery protocol: signed envelopes answered by signed receipts.
pub const DELIVER: StreamProtocol = StreamProtocol::new("/imi/deliver/2");
const SYNC: StreamProtocol = StreamProtocol::new("/imi/sync/1");
const CONTROL: StreamProtocol = StreamProtocol::new("/imi/control/1");

/// Who an admitted peer is, as its certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The libp2p identity proved by the secure channel.
    pub peer: PeerId,
    /// The certified country and node name (`EU` for the Commission's observer).
    pub address: NodeAddress,
    /// The certified ed25519 key, which signs the peer's envelopes and receipts.
    pub public_key: [u8; 32],
    /// Start of the node certificate's validity (ms since the epoch).
    pub valid_from_ms: u64,
    /// End of the node certificate's validity (ms since the epoch).
    pub valid_until_ms: u64,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.address, self.peer)
    }
}

/// Why a peer was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct AdmissionRefused {
    /// A sentence naming what failed (expired, revoked, PeerId mismatch, …).
    pub reason: String,
}

/// A peer's credentials were accepted.
#[derive(Debug, Clone)]
pub struct Admitted {
    /// Who the peer is.
    pub identity: PeerIdentity,
    /// Whether the peer's credentials brought newer revocation lists.
    pub revocations_changed: bool,
}

/// The trust decisions of the node, made outside the network code.
pub trait Admission: Send + Sync + 'static {
    /// Our own credentials, sent to every peer we connect to.
    fn hello(&self) -> Vec<u8>;
    /// Checks the credentials `hello` presented by `peer` (whose key the
    /// secure channel proved).
    fn admit(&self, peer: &PeerId, hello: &[u8]) -> Result<Admitted, AdmissionRefused>;
    /// Checks an admitted peer again (after the revocation lists changed).
    fn recheck(&self, identity: &PeerIdentity) -> Result<(), AdmissionRefused>;
    /// Takes revocation lists pushed by a peer; `Ok(true)` if any was newer.
    fn accept_revocations(&self, lists: &[u8]) -> Result<bool, AdmissionRefused>;
    /// The revocation lists we hold, to push to peers.
    fn revocations(&self) -> Vec<u8>;
}

/// Settings of the network layer.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on (`/ip4/127.0.0.1/tcp/0`, `/ip4/127.0.0.1/udp/0/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Addresses of other nodes to connect to and keep connected.
    pub bootstrap: Vec<Multiaddr>,
    /// How long a peer may take to present valid credentials.
    pub admission_timeout: Duration,
    /// How long a request waits for its response.
    pub request_timeout: Duration,
    /// How long a peer that failed admission stays blocked.
    pub refusal_cooldown: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![],
            bootstrap: vec![],
            admission_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            refusal_cooldown: Duration::from_secs(30),
        }
    }
}

/// The application protocols a node serves to admitted peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProtocol {
    /// Signed envelopes, answered by signed receipts.
    Deliver,
    /// Directory replication.
    Sync,
}

/// What the network tells the rest of the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A peer presented valid credentials.
    PeerAdmitted(PeerIdentity),
    /// The last connection to an admitted peer closed.
    PeerLeft(PeerIdentity),
    /// An admitted peer sent a request on an application protocol; answer
    /// through `reply` (dropping it sends no answer).
    Request {
        /// The protocol.
        protocol: AppProtocol,
        /// The admitted sender.
        from: PeerIdentity,
        /// The request's bytes.
        bytes: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<u8>>,
    },
}

/// A request to a peer could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No admitted peer with that address is connected.
    #[error("node {0} is not connected")]
    NotConnected(String),
    /// The peer did not answer in time or the connection failed.
    #[error("the request to {peer} failed: {reason}")]
    Failed {
        /// The peer.
        peer: String,
        /// What libp2p reported.
        reason: String,
    },
    /// The network loop has stopped.
    #[error("the network is shut down")]
    Shutdown,
}

enum Command {
    Send {
        protocol: AppProtocol,
        to: String,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, SendError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerIdentity>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    AddPeerAddress {
        addr: Multiaddr,
    },
    RevocationsChanged,
    Refusals {
        reply: oneshot::Sender<Vec<Refusal>>,
    },
    Shutdown,
}

/// A peer the node refused, and why (the latest are kept for diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The refused peer.
    pub peer: PeerId,
    /// Why, as a sentence.
    pub reason: String,
}

/// How many refusals are kept.
const REFUSALS_KEPT: usize = 64;

/// A cloneable handle to the network loop.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer: PeerId,
}

impl fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer", &self.local_peer)
            .finish()
    }
}

impl NetworkHandle {
    /// Our own PeerId.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// Sends `bytes` on `protocol` to the admitted node `to` (`"FI/helsinki-1"`)
    /// and waits for its answer.
    pub async fn request(
        &self,
        protocol: AppProtocol,
        to: &str,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, SendError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                protocol,
                to: to.to_owned(),
                bytes,
                reply,
            })
            .await
            .map_err(|_| SendError::Shutdown)?;
        rx.await.map_err(|_| SendError::Shutdown)?
    }

    /// The admitted peers connected now.
    pub async fn peers(&self) -> Vec<PeerIdentity> {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Peers { reply }).await.is_err() {
            return vec![];
        }
        rx.await.unwrap_or_default()
    }

    /// The addresses we listen on (with the ports the OS picked).
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::ListenAddrs { reply })
            .await
            .is_err()
        {
            return vec![];
        }
        rx.await.unwrap_or_default()
    }

    /// Adds an address to connect to and keep connected.
    pub async fn add_peer_address(&self, addr: Multiaddr) {
        let _ = self.commands.send(Command::AddPeerAddress { addr }).await;
    }

    /// The latest refusals of peers, oldest first.
    pub async fn refusals(&self) -> Vec<Refusal> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Refusals { reply })
            .await
            .is_err()
        {
            return vec![];
        }
        rx.await.unwrap_or_default()
    }

    /// Stops the loop: every connection closes.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// Tells the loop that our revocation lists changed: admitted peers are
    /// checked again and the lists are pushed to them.
    pub async fn revocations_changed(&self) {
        let _ = self.commands.send(Command::RevocationsChanged).await;
    }
}

/// Reads and writes one length-prefixed message per stream: the framing of
/// every imi protocol (u32 big-endian length, then the bytes).
#[derive(Debug, Clone, Default)]
pub struct BytesCodec;

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the limit of {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        read_frame(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res).await
    }
}

type Rr = request_response::Behaviour<BytesCodec>;

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    admission: Rr,
    deliver: Rr,
    sync: Rr,
    control: Rr,
}

/// The answer to an admission request.
#[derive(Debug, Serialize, Deserialize)]
enum AdmissionAnswer {
    Welcome,
    Refused(String),
}

/// The network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetStartError {
    /// A transport could not be set up.
    #[error("cannot set up the {transport} transport: {reason}")]
    Transport {
        /// Which transport.
        transport: &'static str,
        /// Why.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
}

/// Builds the swarm and spawns its event loop on the current tokio runtime.
pub fn start(
    keypair: libp2p::identity::Keypair,
    config: NetConfig,
    admission: std::sync::Arc<dyn Admission>,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetStartError,
> {
    let rr_config = request_response::Config::default()
        .with_request_timeout(config.request_timeout)
        .with_max_concurrent_streams(1024);
    let behaviour = |_: &libp2p::identity::Keypair| Behaviour {
        limits: connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(128))
                .with_max_established_per_peer(Some(4))
                .with_max_established(Some(1024)),
        ),
        blocked: allow_block_list::Behaviour::default(),
        admission: Rr::with_codec(
            BytesCodec,
            [(ADMISSION, ProtocolSupport::Full)],
            rr_config.clone(),
        ),
        deliver: Rr::with_codec(
            BytesCodec,
            [(DELIVER, ProtocolSupport::Full)],
            rr_config.clone(),
        ),
        sync: Rr::with_codec(
            BytesCodec,
            [(SYNC, ProtocolSupport::Full)],
            rr_config.clone(),
        ),
        control: Rr::with_codec(
            BytesCodec,
            [(CONTROL, ProtocolSupport::Full)],
            rr_config.clone(),
        ),
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::tls::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|err| NetStartError::Transport {
            transport: "TCP/TLS",
            reason: err.to_string(),
        })?
        .with_quic()
        .with_behaviour(behaviour)
        .map_err(|err| NetStartError::Transport {
            transport: "behaviour",
            reason: err.to_string(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|err| NetStartError::Listen {
                addr: addr.clone(),
                reason: err.to_string(),
            })?;
    }
    let local_peer = *swarm.local_peer_id();
    let (commands, command_rx) = mpsc::channel(1024);
    let (events, event_rx) = mpsc::channel(4096);
    let mut event_loop = EventLoop {
        swarm,
        admission,
        config: config.clone(),
        commands: command_rx,
        events,
        admitted: HashMap::new(),
        by_address: HashMap::new(),
        pending_admission: HashMap::new(),
        blocked_until: HashMap::new(),
        outbound: HashMap::new(),
        answers: FuturesUnordered::new(),
        bootstrap: config
            .bootstrap
            .iter()
            .map(|addr| {
                (
                    addr.clone(),
                    Redial {
                        connected: None,
                        next_attempt: Instant::now(),
                        backoff: Duration::from_millis(250),
                    },
                )
            })
            .collect(),
        listen_addrs: vec![],
        refusals: std::collections::VecDeque::new(),
    };
    let task = tokio::spawn(async move { event_loop.run().await });
    Ok((
        NetworkHandle {
            commands,
            local_peer,
        },
        event_rx,
        task,
    ))
}

struct Redial {
    connected: Option<PeerId>,
    next_attempt: Instant,
    backoff: Duration,
}

type PendingAnswer = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = (AppProtocol, ResponseChannel<Vec<u8>>, Option<Vec<u8>>)>
            + Send,
    >,
>;

type AnswerSender = oneshot::Sender<Result<Vec<u8>, SendError>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    admission: std::sync::Arc<dyn Admission>,
    config: NetConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    admitted: HashMap<PeerId, PeerIdentity>,
    by_address: HashMap<String, PeerId>,
    pending_admission: HashMap<PeerId, Instant>,
    blocked_until: HashMap<PeerId, Option<Instant>>,
    /// Requests waiting for their answer. Each behaviour numbers its own
    /// requests, so the protocol is part of the key.
    outbound: HashMap<(AppProtocol, OutboundRequestId), AnswerSender>,
    answers: FuturesUnordered<PendingAnswer>,
    bootstrap: HashMap<Multiaddr, Redial>,
    listen_addrs: Vec<Multiaddr>,
    refusals: std::collections::VecDeque<Refusal>,
}

impl EventLoop {
    async fn run(&mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) => {
                        debug!("network loop stopping");
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        debug!("network handle dropped, stopping the network loop");
                        return;
                    }
                },
                Some((protocol, channel, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    if let Some(answer) = answer {
                        let behaviour = match protocol {
                            AppProtocol::Deliver => &mut self.swarm.behaviour_mut().deliver,
                            AppProtocol::Sync => &mut self.swarm.behaviour_mut().sync,
                        };
                        let _ = behaviour.send_response(channel, answer);
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        // Peers that did not present valid credentials in time.
        let silent: Vec<PeerId> = self
            .pending_admission
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in silent {
            warn!(%peer, "peer presented no valid credentials in time, disconnecting");
            if !self.refusals.iter().any(|r| r.peer == peer) {
                self.record_refusal(peer, "it presented no valid credentials in time".into());
            }
            self.refuse(peer);
        }
        // Lift expired blocks.
        let expired: Vec<PeerId> = self
            .blocked_until
            .iter()
            .filter(|(_, until)| until.is_some_and(|until| until <= now))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.blocked_until.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        // Keep bootstrap peers connected.
        let due: Vec<Multiaddr> = self
            .bootstrap
            .iter()
            .filter(|(_, r)| r.connected.is_none() && r.next_attempt <= now)
            .map(|(addr, _)| addr.clone())
            .collect();
        for addr in due {
            if let Some(redial) = self.bootstrap.get_mut(&addr) {
                redial.next_attempt = now + redial.backoff;
                redial.backoff = (redial.backoff * 2).min(Duration::from_secs(5));
            }
            let opts = DialOpts::unknown_peer_id().address(addr.clone()).build();
            if let Err(err) = self.swarm.dial(opts) {
                debug!(%addr, error = %err, "dial failed");
            }
        }
    }

    fn record_refusal(&mut self, peer: PeerId, reason: String) {
        if self.refusals.len() == REFUSALS_KEPT {
            self.refusals.pop_front();
        }
        self.refusals.push_back(Refusal { peer, reason });
    }

    fn refuse(&mut self, peer: PeerId) {
        self.pending_admission.remove(&peer);
        self.blocked_until
            .insert(peer, Some(Instant::now() + self.config.refusal_cooldown));
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    fn cut_off(&mut self, peer: PeerId) {
        self.pending_admission.remove(&peer);
        self.blocked_until.insert(peer, None);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        if let Some(identity) = self.admitted.remove(&peer) {
            self.by_address.remove(&identity.address.to_string());
            let _ = self.events.try_send(NetEvent::PeerLeft(identity));
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send {
                protocol,
                to,
                bytes,
                reply,
            } => {
                let Some(peer) = self.by_address.get(&to).copied() else {
                    let _ = reply.send(Err(SendError::NotConnected(to)));
                    return;
                };
                let behaviour = match protocol {
                    AppProtocol::Deliver => &mut self.swarm.behaviour_mut().deliver,
                    AppProtocol::Sync => &mut self.swarm.behaviour_mut().sync,
                };
                let id = behaviour.send_request(&peer, bytes);
                self.outbound.insert((protocol, id), reply);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.admitted.values().cloned().collect());
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::AddPeerAddress { addr } => {
                self.bootstrap.entry(addr).or_insert(Redial {
                    connected: None,
                    next_attempt: Instant::now(),
                    backoff: Duration::from_millis(250),
                });
            }
            Command::RevocationsChanged => self.on_revocations_changed(None),
            Command::Refusals { reply } => {
                let _ = reply.send(self.refusals.iter().cloned().collect());
            }
            Command::Shutdown => {}
        }
    }

    /// Checks every admitted peer again and pushes our lists to the others.
    fn on_revocations_changed(&mut self, source: Option<PeerId>) {
        let peers: Vec<PeerIdentity> = self.admitted.values().cloned().collect();
        for identity in peers {
            if let Err(refused) = self.admission.recheck(&identity) {
                warn!(peer = %identity, reason = %refused, "admitted peer no longer valid, cutting it off");
                self.record_refusal(identity.peer, refused.reason.clone());
                self.cut_off(identity.peer);
            }
        }
        let lists = self.admission.revocations();
        let targets: Vec<PeerId> = self
            .admitted
            .keys()
            .filter(|peer| Some(**peer) != source)
            .copied()
            .collect();
        for peer in targets {
            self.swarm
                .behaviour_mut()
                .control
                .send_request(&peer, lists.clone());
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint
                    && let Some(redial) = self.bootstrap.get_mut(address)
                {
                    redial.connected = Some(peer_id);
                    redial.backoff = Duration::from_millis(250);
                }
                if num_established.get() == 1 || !self.admitted.contains_key(&peer_id) {
                    self.pending_admission
                        .entry(peer_id)
                        .or_insert_with(|| Instant::now() + self.config.admission_timeout);
                    let hello = self.admission.hello();
                    self.swarm
                        .behaviour_mut()
                        .admission
                        .send_request(&peer_id, hello);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint
                    && let Some(redial) = self.bootstrap.get_mut(address)
                {
                    redial.connected = None;
                    redial.next_attempt = Instant::now() + redial.backoff;
                }
                if num_established == 0 {
                    self.pending_admission.remove(&peer_id);
                    if let Some(identity) = self.admitted.remove(&peer_id) {
                        if self.by_address.get(&identity.address.to_string()) == Some(&peer_id) {
                            self.by_address.remove(&identity.address.to_string());
                        }
                        info!(peer = %identity, "peer left");
                        let _ = self.events.try_send(NetEvent::PeerLeft(identity));
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                debug!(error = %error, "outgoing connection failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Admission(event)) => self.on_admission(event),
            SwarmEvent::Behaviour(BehaviourEvent::Deliver(event)) => {
                self.on_app(AppProtocol::Deliver, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => {
                self.on_app(AppProtocol::Sync, event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Control(event)) => self.on_control(event),
            _ => {}
        }
    }

    fn on_admission(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => match self.admission.admit(&peer, &request) {
                Ok(admitted) => {
                    let identity = admitted.identity;
                    let answer = postcard::to_stdvec(&AdmissionAnswer::Welcome).unwrap_or_default();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .admission
                        .send_response(channel, answer);
                    self.pending_admission.remove(&peer);
                    if !self.admitted.contains_key(&peer) {
                        info!(peer = %identity, "peer admitted");
                        if let Some(old) =
                            self.by_address.insert(identity.address.to_string(), peer)
                            && old != peer
                        {
                            warn!(address = %identity.address.to_string(), old = %old, new = %peer, "node address moved to a new peer id");
                        }
                        self.admitted.insert(peer, identity.clone());
                        let _ = self.events.try_send(NetEvent::PeerAdmitted(identity));
                    }
                    if admitted.revocations_changed {
                        self.on_revocations_changed(Some(peer));
                    }
                }
                Err(refused) => {
                    warn!(%peer, reason = %refused, "peer refused admission");
                    self.record_refusal(peer, refused.reason.clone());
                    let answer = postcard::to_stdvec(&AdmissionAnswer::Refused(refused.reason))
                        .unwrap_or_default();
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .admission
                        .send_response(channel, answer);
                    // Give the refusal a moment to leave before the block closes the link.
                    self.pending_admission
                        .insert(peer, Instant::now() + Duration::from_millis(200));
                    self.admitted.remove(&peer);
                }
            },
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => match postcard::from_bytes::<AdmissionAnswer>(&response) {
                Ok(AdmissionAnswer::Welcome) => debug!(%peer, "peer accepted our credentials"),
                Ok(AdmissionAnswer::Refused(reason)) => {
                    warn!(%peer, %reason, "peer refused our credentials");
                }
                Err(err) => warn!(%peer, error = %err, "malformed admission answer"),
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "admission request failed");
            }
            _ => {}
        }
    }

    fn on_app(&mut self, protocol: AppProtocol, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let Some(from) = self.admitted.get(&peer).cloned() else {
                    warn!(%peer, ?protocol, "application request from a peer that is not admitted, refusing");
                    self.record_refusal(
                        peer,
                        "it asked for an application protocol before admission".into(),
                    );
                    drop(channel);
                    self.refuse(peer);
                    return;
                };
                let (reply, rx) = oneshot::channel();
                match self.events.try_send(NetEvent::Request {
                    protocol,
                    from,
                    bytes: request,
                    reply,
                }) {
                    Ok(()) => {
                        self.answers.push(Box::pin(async move {
                            let answer = rx.await.ok();
                            (protocol, channel, answer)
                        }));
                    }
                    Err(_) => {
                        // The node is saturated: no answer; the sender retries.
                        warn!(%peer, "inbound queue full, dropping request");
                    }
                }
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.outbound.remove(&(protocol, request_id)) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.outbound.remove(&(protocol, request_id)) {
                    let peer = self
                        .admitted
                        .get(&peer)
                        .map(|i| i.address.to_string())
                        .unwrap_or_else(|| peer.to_string());
                    let _ = reply.send(Err(SendError::Failed {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            _ => {}
        }
    }

    fn on_control(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        if let request_response::Event::Message {
            peer,
            message:
                request_response::Message::Request {
                    request, channel, ..
                },
            ..
        } = event
        {
            if !self.admitted.contains_key(&peer) {
                warn!(%peer, "control request from a peer that is not admitted, refusing");
                drop(channel);
                self.refuse(peer);
                return;
            }
            let _ = self
                .swarm
                .behaviour_mut()
                .control
                .send_response(channel, vec![]);
            match self.admission.accept_revocations(&request) {
                Ok(true) => {
                    info!(%peer, "newer revocation lists received");
                    self.on_revocations_changed(Some(peer));
                }
                Ok(false) => {}
                Err(err) => warn!(%peer, error = %err, "revocation lists refused"),
            }
        }
    }
}
