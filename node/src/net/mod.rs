//! Links between nodes: the libp2p swarm, owned by one event loop.
//!
//! Transports are TCP (TLS + yamux) and QUIC; both prove that the other side
//! holds the private key of its PeerId. That alone admits nobody: before any
//! application protocol is used, each side presents its federation
//! credentials (certificate chain and revocation lists) over the admission
//! protocol and the other side checks them through an [`Admission`]
//! implementation, on the blocking pool. A link is up only when **both**
//! sides have admitted each other; only then does the rest of the node hear
//! of the peer ([`NetEvent::PeerAdmitted`]) and use it.
//!
//! What a peer that is not admitted may cost is bounded ([`gate`]): its
//! streams on application protocols are refused during negotiation, before
//! anything is read; its admission hello is capped in size and time; its
//! connections per IP address, the connections being set up, and the
//! node's memory are limited; credentials it presented and that were
//! refused are answered with the same refusal without checking them again
//! for a while, while new credentials are checked at once. A link drops
//! when the peer's certificate expires or is revoked.
//!
//! The rest of the node talks to the loop through a cloneable
//! [`NetworkHandle`] (bounded command channel, oneshot replies) and receives
//! [`NetEvent`]s on a bounded channel. Peer arrivals and departures are never
//! lost: when that channel is full they wait, in order, in the loop.
//!
//! - `swarm`: the behaviours and the event loop;
//! - [`gate`]: what a peer that is not admitted may use;
//! - [`admission`]: the trust decision (certificate chains, revocation lists);
//! - [`peers`]: the record of admitted nodes in the store;
//! - `codec`: the framing of every protocol.

pub mod admission;
mod codec;
pub mod gate;
pub mod peers;
mod swarm;
#[cfg(test)]
mod tests;

use std::fmt;
use std::time::{Duration, SystemTime};

use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use imi_protocol::NodeAddress;

pub use codec::BytesCodec;
pub use swarm::start;

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
    /// When the first certificate of its chain expires: the link drops then.
    pub valid_until: SystemTime,
    /// Whether the peer's credentials brought newer revocation lists.
    pub revocations_changed: bool,
}

/// The trust decisions of the node, made outside the network code.
pub trait Admission: Send + Sync + 'static {
    /// Our own credentials, sent to every peer we connect to.
    fn hello(&self) -> Vec<u8>;
    /// Checks the credentials `hello` presented by `peer` (whose key the
    /// secure channel proved): the chain first, and only then the
    /// revocation lists it brought. Runs on the blocking pool.
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
    /// How long credentials that were refused are answered with the same
    /// refusal without being checked again. New credentials (a newly
    /// issued certificate) are checked at once, whatever this says.
    pub refusal_cooldown: Duration,
    /// Requests of one admitted peer handled at once; more are refused
    /// (the sender retries).
    pub max_inbound_per_peer: usize,
    /// Inbound connections of peers not admitted yet, per IP address.
    pub max_unadmitted_per_ip: usize,
    /// Credentials checked at once; a peer arriving while as many are
    /// being checked is asked to come back.
    pub max_admission_checks: usize,
    /// The process's memory, in bytes, above which new connections are
    /// refused (`None`: 90 % of the machine's memory).
    pub max_memory_bytes: Option<usize>,
    /// Room in the channel of [`NetEvent`]s. When it is full, requests are
    /// refused (their senders retry) and arrivals and departures wait.
    pub event_queue: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![],
            bootstrap: vec![],
            admission_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            refusal_cooldown: Duration::from_secs(30),
            max_inbound_per_peer: 32,
            max_unadmitted_per_ip: 64,
            max_admission_checks: 16,
            max_memory_bytes: None,
            event_queue: 4096,
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

pub(crate) enum Command {
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

/// A cloneable handle to the network loop.
#[derive(Clone)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_peer: PeerId,
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
