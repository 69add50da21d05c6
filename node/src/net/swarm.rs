//! The swarm's behaviours and the one event loop that owns them.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::stream::FuturesUnordered;
use futures::{Future, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts};
use libp2p::{Multiaddr, PeerId, Swarm, connection_limits, memory_connection_limits};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::codec::{BytesCodec, MAX_ADMISSION_BYTES};
use super::gate::{Gate, UnadmittedPerIp};
use super::{
    ADMISSION, Admission, AdmissionRefused, Admitted, AppProtocol, CONTROL, Command, DELIVER,
    NetConfig, NetEvent, NetStartError, NetworkHandle, PeerIdentity, Refusal, SYNC, SendError,
};

/// How many refusals are kept for diagnostics.
const REFUSALS_KEPT: usize = 64;
/// How long a refusal has to leave before the connection closes.
const REFUSAL_GRACE: Duration = Duration::from_millis(200);

type Rr = request_response::Behaviour<BytesCodec>;

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    per_ip: UnadmittedPerIp,
    admission: Rr,
    deliver: Gate<Rr>,
    sync: Gate<Rr>,
    control: Gate<Rr>,
}

impl Behaviour {
    fn app(&mut self, protocol: AppProtocol) -> &mut Rr {
        match protocol {
            AppProtocol::Deliver => self.deliver.inner(),
            AppProtocol::Sync => self.sync.inner(),
        }
    }

    /// Serves the application protocols to `peer`, whose credentials we accepted.
    fn open(&mut self, peer: PeerId) {
        self.per_ip.admitted(peer);
        self.deliver.open(peer);
        self.sync.open(peer);
        self.control.open(peer);
    }
}

/// The answer to an admission request.
#[derive(Debug, Serialize, Deserialize)]
enum AdmissionAnswer {
    Welcome,
    Refused(String),
}

/// Builds the swarm and spawns its event loop on the current tokio runtime.
pub fn start(
    keypair: libp2p::identity::Keypair,
    config: NetConfig,
    admission: Arc<dyn Admission>,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetStartError,
> {
    let app_config = request_response::Config::default()
        .with_request_timeout(config.request_timeout)
        .with_max_concurrent_streams(256);
    let admission_config = request_response::Config::default()
        .with_request_timeout(config.admission_timeout)
        .with_max_concurrent_streams(4);
    let app = |protocol| {
        Gate::new(Rr::with_codec(
            BytesCodec::default(),
            [(protocol, ProtocolSupport::Full)],
            app_config.clone(),
        ))
    };
    let memory = match config.max_memory_bytes {
        Some(bytes) => memory_connection_limits::Behaviour::with_max_bytes(bytes),
        None => memory_connection_limits::Behaviour::with_max_percentage(0.9),
    };
    let behaviour = |_: &libp2p::identity::Keypair| Behaviour {
        limits: connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_pending_incoming(Some(64))
                .with_max_established_per_peer(Some(4))
                .with_max_established(Some(1024)),
        ),
        memory,
        per_ip: UnadmittedPerIp::new(config.max_unadmitted_per_ip),
        admission: Rr::with_codec(
            BytesCodec::with_limits(MAX_ADMISSION_BYTES, MAX_ADMISSION_BYTES),
            [(ADMISSION, ProtocolSupport::Full)],
            admission_config,
        ),
        deliver: app(DELIVER),
        sync: app(SYNC),
        control: Gate::new(Rr::with_codec(
            BytesCodec::with_limits(MAX_ADMISSION_BYTES, MAX_ADMISSION_BYTES),
            [(CONTROL, ProtocolSupport::Full)],
            app_config.clone(),
        )),
    };
    let yamux = || {
        let mut yamux = libp2p::yamux::Config::default();
        yamux.set_max_num_streams(256);
        yamux
    };
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::tls::Config::new,
            yamux,
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
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(3600))
                .with_max_negotiating_inbound_streams(32)
        })
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
    let (events, event_rx) = mpsc::channel(config.event_queue.max(1));
    let now = Instant::now();
    let mut event_loop = EventLoop {
        swarm,
        admission,
        config: config.clone(),
        commands: command_rx,
        events,
        peer_events: VecDeque::new(),
        links: HashMap::new(),
        admitted: HashMap::new(),
        by_address: HashMap::new(),
        refused: HashMap::new(),
        outbound: HashMap::new(),
        answers: FuturesUnordered::new(),
        inbound: HashMap::new(),
        checks: FuturesUnordered::new(),
        bootstrap: config
            .bootstrap
            .iter()
            .map(|addr| {
                (
                    addr.clone(),
                    Redial {
                        connected: None,
                        next_attempt: now,
                        backoff: Duration::from_millis(250),
                    },
                )
            })
            .collect(),
        listen_addrs: vec![],
        refusals: VecDeque::new(),
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

/// A connected peer on its way to a link, or linked.
#[derive(Default)]
struct Link {
    /// By when the link must be up, or the peer is disconnected (none once up).
    deadline: Option<Instant>,
    /// Its credentials, once we accepted them.
    ours: Option<Accepted>,
    /// It accepted our credentials.
    welcomed: bool,
    /// Its credentials are being checked.
    checking: bool,
    /// Whether the rest of the node was told (both sides admitted).
    up: bool,
}

#[derive(Clone)]
struct Accepted {
    identity: PeerIdentity,
    valid_until: SystemTime,
    /// The credentials' digest, to recognise them if they are cut off.
    digest: u64,
}

/// Credentials that were refused, answered with the same refusal for a while.
struct RefusedCredentials {
    digest: u64,
    reason: String,
    at: Instant,
}

type PendingAnswer = Pin<
    Box<
        dyn Future<
                Output = (
                    PeerId,
                    AppProtocol,
                    ResponseChannel<Vec<u8>>,
                    Option<Vec<u8>>,
                ),
            > + Send,
    >,
>;

/// Work done on the blocking pool, back to the loop.
enum Checked {
    Credentials {
        peer: PeerId,
        digest: u64,
        channel: ResponseChannel<Vec<u8>>,
        result: Result<Admitted, AdmissionRefused>,
    },
    Revocations {
        peer: PeerId,
        result: Result<bool, AdmissionRefused>,
    },
}

type PendingCheck = Pin<Box<dyn Future<Output = Option<Checked>> + Send>>;

type AnswerSender = oneshot::Sender<Result<Vec<u8>, SendError>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    admission: Arc<dyn Admission>,
    config: NetConfig,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    /// Arrivals and departures waiting for room in `events`, in order.
    peer_events: VecDeque<NetEvent>,
    /// Connected peers.
    links: HashMap<PeerId, Link>,
    /// Peers whose link is up.
    admitted: HashMap<PeerId, PeerIdentity>,
    by_address: HashMap<String, PeerId>,
    refused: HashMap<PeerId, RefusedCredentials>,
    /// Requests waiting for their answer. Each behaviour numbers its own
    /// requests, so the protocol is part of the key.
    outbound: HashMap<(AppProtocol, OutboundRequestId), AnswerSender>,
    answers: FuturesUnordered<PendingAnswer>,
    /// Requests of each peer being handled.
    inbound: HashMap<PeerId, usize>,
    checks: FuturesUnordered<PendingCheck>,
    bootstrap: HashMap<Multiaddr, Redial>,
    listen_addrs: Vec<Multiaddr>,
    refusals: VecDeque<Refusal>,
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn encode(answer: &AdmissionAnswer) -> Vec<u8> {
    postcard::to_stdvec(answer).unwrap_or_default()
}

impl EventLoop {
    async fn run(&mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A second sender, so a reserved slot does not borrow the loop.
        let events = self.events.clone();
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
                Ok(permit) = events.reserve(), if !self.peer_events.is_empty() => {
                    if let Some(event) = self.peer_events.pop_front() {
                        permit.send(event);
                    }
                }
                Some((peer, protocol, channel, answer)) = self.answers.next(), if !self.answers.is_empty() => {
                    if let Some(count) = self.inbound.get_mut(&peer) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            self.inbound.remove(&peer);
                        }
                    }
                    if let Some(answer) = answer {
                        let _ = self.swarm.behaviour_mut().app(protocol).send_response(channel, answer);
                    }
                }
                Some(checked) = self.checks.next(), if !self.checks.is_empty() => {
                    if let Some(checked) = checked {
                        self.on_checked(checked);
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    /// Tells the rest of the node, in order; never dropped.
    fn tell(&mut self, event: NetEvent) {
        if let NetEvent::PeerLeft(identity) = &event {
            // An arrival nobody heard of yet and its departure cancel out.
            if let Some(position) = self.peer_events.iter().position(
                |e| matches!(e, NetEvent::PeerAdmitted(arrived) if arrived.peer == identity.peer),
            ) {
                self.peer_events.remove(position);
                return;
            }
        }
        if self.peer_events.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => self.peer_events.push_back(event),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        } else {
            self.peer_events.push_back(event);
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        // Peers that did not complete admission in time (or were refused).
        let late: Vec<(PeerId, bool)> = self
            .links
            .iter()
            .filter(|(_, link)| link.deadline.is_some_and(|d| d <= now))
            .map(|(peer, link)| (*peer, link.ours.is_some()))
            .collect();
        for (peer, accepted) in late {
            if accepted {
                warn!(%peer, "peer did not accept our credentials in time, disconnecting");
            } else if !self.refusals.iter().any(|r| r.peer == peer) {
                warn!(%peer, "peer presented no valid credentials in time, disconnecting");
                self.record_refusal(peer, "it presented no valid credentials in time".into());
            }
            self.links.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        // Links whose certificate expired.
        let wall = SystemTime::now();
        let expired: Vec<(PeerId, SystemTime)> = self
            .links
            .iter()
            .filter_map(|(peer, link)| {
                let ours = link.ours.as_ref()?;
                (ours.valid_until <= wall).then_some((*peer, ours.valid_until))
            })
            .collect();
        for (peer, at) in expired {
            self.cut_off(
                peer,
                format!("its certificate expired at {}", imi_certs::utc(at)),
            );
        }
        // Forget old refusals.
        let cooldown = self.config.refusal_cooldown;
        self.refused.retain(|_, r| r.at.elapsed() < cooldown);
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

    /// Ends the link with `peer` for `reason`: its credentials are refused
    /// from now on (new credentials are checked afresh).
    fn cut_off(&mut self, peer: PeerId, reason: String) {
        warn!(%peer, %reason, "cutting off a peer");
        let link = self.links.remove(&peer);
        if let Some(accepted) = link.and_then(|l| l.ours) {
            self.refused.insert(
                peer,
                RefusedCredentials {
                    digest: accepted.digest,
                    reason: reason.clone(),
                    at: Instant::now(),
                },
            );
        }
        self.record_refusal(peer, reason);
        if let Some(identity) = self.admitted.remove(&peer) {
            if self.by_address.get(&identity.address.to_string()) == Some(&peer) {
                self.by_address.remove(&identity.address.to_string());
            }
            self.tell(NetEvent::PeerLeft(identity));
        }
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Brings the link up once both sides admitted each other.
    fn maybe_up(&mut self, peer: PeerId) {
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        let Some(accepted) = link.ours.clone() else {
            return;
        };
        if link.up || !link.welcomed {
            return;
        }
        link.up = true;
        link.deadline = None;
        let identity = accepted.identity;
        info!(peer = %identity, "link up: both sides admitted");
        if let Some(old) = self.by_address.insert(identity.address.to_string(), peer)
            && old != peer
        {
            warn!(address = %identity.address, old = %old, new = %peer, "node address moved to a new peer id");
        }
        self.admitted.insert(peer, identity.clone());
        self.tell(NetEvent::PeerAdmitted(identity));
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
                let id = self
                    .swarm
                    .behaviour_mut()
                    .app(protocol)
                    .send_request(&peer, bytes);
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

    /// Checks every peer we admitted again and pushes our lists to the
    /// linked ones.
    fn on_revocations_changed(&mut self, source: Option<PeerId>) {
        let accepted: Vec<PeerIdentity> = self
            .links
            .values()
            .filter_map(|l| l.ours.as_ref().map(|a| a.identity.clone()))
            .collect();
        for identity in accepted {
            if let Err(refused) = self.admission.recheck(&identity) {
                self.cut_off(identity.peer, refused.reason);
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
                .inner()
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
                peer_id, endpoint, ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint
                    && let Some(redial) = self.bootstrap.get_mut(address)
                {
                    redial.connected = Some(peer_id);
                    redial.backoff = Duration::from_millis(250);
                }
                if !self.links.contains_key(&peer_id) {
                    self.links.insert(
                        peer_id,
                        Link {
                            deadline: Some(Instant::now() + self.config.admission_timeout),
                            ..Link::default()
                        },
                    );
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
                    let link = self.links.remove(&peer_id);
                    if let Some(identity) = self.admitted.remove(&peer_id) {
                        if self.by_address.get(&identity.address.to_string()) == Some(&peer_id) {
                            self.by_address.remove(&identity.address.to_string());
                        }
                        info!(peer = %identity, "peer left");
                        self.tell(NetEvent::PeerLeft(identity));
                    } else if let Some(link) = link
                        && link.ours.is_some()
                        && !link.welcomed
                    {
                        warn!(%peer_id, "the peer closed the link before accepting our credentials");
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                debug!(from = %send_back_addr, error = %error, "incoming connection refused or failed");
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

    fn answer_admission(&mut self, channel: ResponseChannel<Vec<u8>>, answer: &AdmissionAnswer) {
        let _ = self
            .swarm
            .behaviour_mut()
            .admission
            .send_response(channel, encode(answer));
    }

    /// Refuses `peer` with `reason` and closes its connections once the
    /// answer has left.
    fn refuse(&mut self, peer: PeerId, channel: ResponseChannel<Vec<u8>>, reason: String) {
        self.answer_admission(channel, &AdmissionAnswer::Refused(reason));
        if let Some(link) = self.links.get_mut(&peer) {
            link.deadline = Some(Instant::now() + REFUSAL_GRACE);
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
            } => self.on_hello(peer, request, channel),
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => match postcard::from_bytes::<AdmissionAnswer>(&response) {
                Ok(AdmissionAnswer::Welcome) => {
                    debug!(%peer, "peer accepted our credentials");
                    if let Some(link) = self.links.get_mut(&peer) {
                        link.welcomed = true;
                    }
                    self.maybe_up(peer);
                }
                Ok(AdmissionAnswer::Refused(reason)) => {
                    warn!(%peer, %reason, "peer refused our credentials, disconnecting");
                    self.links.remove(&peer);
                    // A link it had with us (on a connection not closed yet) ends too.
                    if let Some(identity) = self.admitted.remove(&peer) {
                        if self.by_address.get(&identity.address.to_string()) == Some(&peer) {
                            self.by_address.remove(&identity.address.to_string());
                        }
                        self.tell(NetEvent::PeerLeft(identity));
                    }
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                Err(err) => warn!(%peer, error = %err, "malformed admission answer"),
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "admission request failed");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "admission hello not received");
            }
            _ => {}
        }
    }

    fn on_hello(&mut self, peer: PeerId, hello: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        let digest = digest(&hello);
        if let Some(refused) = self.refused.get(&peer)
            && refused.digest == digest
        {
            let reason = format!(
                "{} (refused {} s ago; these credentials stay refused for {} s, new ones are checked at once)",
                refused.reason,
                refused.at.elapsed().as_secs(),
                self.config.refusal_cooldown.as_secs(),
            );
            warn!(%peer, %reason, "peer presented refused credentials again");
            self.refuse(peer, channel, reason);
            return;
        }
        let Some(link) = self.links.get_mut(&peer) else {
            return;
        };
        if link.checking {
            debug!(%peer, "peer sent its credentials twice, ignoring the second");
            return;
        }
        if self.checks.len() >= self.config.max_admission_checks {
            debug!(%peer, "too many credentials being checked, asking the peer to come back");
            self.refuse(
                peer,
                channel,
                "the node is busy checking other peers; try again".into(),
            );
            return;
        }
        link.checking = true;
        let admission = self.admission.clone();
        self.checks.push(Box::pin(async move {
            let result = tokio::task::spawn_blocking(move || admission.admit(&peer, &hello))
                .await
                .ok()?;
            Some(Checked::Credentials {
                peer,
                digest,
                channel,
                result,
            })
        }));
    }

    fn on_checked(&mut self, checked: Checked) {
        match checked {
            Checked::Credentials {
                peer,
                digest,
                channel,
                result,
            } => {
                if let Some(link) = self.links.get_mut(&peer) {
                    link.checking = false;
                } else {
                    // The peer left while its credentials were checked.
                    return;
                }
                match result {
                    Ok(admitted) => {
                        let previously = self.refused.remove(&peer);
                        if let Some(previously) = previously {
                            info!(peer = %admitted.identity, refused_for = %previously.reason, "peer presented new valid credentials, its refusal ends");
                        }
                        self.answer_admission(channel, &AdmissionAnswer::Welcome);
                        self.swarm.behaviour_mut().open(peer);
                        info!(peer = %admitted.identity, valid_until = %imi_certs::utc(admitted.valid_until), "peer's credentials accepted");
                        if let Some(link) = self.links.get_mut(&peer) {
                            link.ours = Some(Accepted {
                                identity: admitted.identity,
                                valid_until: admitted.valid_until,
                                digest,
                            });
                        }
                        self.maybe_up(peer);
                        if admitted.revocations_changed {
                            self.on_revocations_changed(Some(peer));
                        }
                    }
                    Err(refused) => {
                        warn!(%peer, reason = %refused, "peer refused admission");
                        self.record_refusal(peer, refused.reason.clone());
                        self.refused.insert(
                            peer,
                            RefusedCredentials {
                                digest,
                                reason: refused.reason.clone(),
                                at: Instant::now(),
                            },
                        );
                        self.refuse(peer, channel, refused.reason);
                    }
                }
            }
            Checked::Revocations { peer, result } => match result {
                Ok(true) => {
                    info!(%peer, "newer revocation lists received");
                    self.on_revocations_changed(Some(peer));
                }
                Ok(false) => {}
                Err(err) => warn!(%peer, error = %err, "revocation lists refused"),
            },
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
                    // The gate serves only peers we admitted; the link is
                    // not up yet (our credentials not accepted): the sender retries.
                    debug!(%peer, ?protocol, "request before the link is up, dropping it");
                    return;
                };
                let in_flight = self.inbound.entry(peer).or_default();
                if *in_flight >= self.config.max_inbound_per_peer {
                    debug!(peer = %from, ?protocol, limit = self.config.max_inbound_per_peer, "peer has too many requests in progress, refusing one");
                    return;
                }
                if !self.peer_events.is_empty() {
                    // Arrivals and departures go first; the sender retries.
                    debug!(peer = %from, "peer events pending, dropping a request");
                    return;
                }
                let (reply, rx) = oneshot::channel();
                match self.events.try_send(NetEvent::Request {
                    protocol,
                    from,
                    bytes: request,
                    reply,
                }) {
                    Ok(()) => {
                        *self.inbound.entry(peer).or_default() += 1;
                        self.answers.push(Box::pin(async move {
                            let answer = rx.await.ok();
                            (peer, protocol, channel, answer)
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
                debug!(%peer, "revocation lists before the link is up, ignoring them");
                return;
            }
            let _ = self
                .swarm
                .behaviour_mut()
                .control
                .inner()
                .send_response(channel, vec![]);
            let admission = self.admission.clone();
            self.checks.push(Box::pin(async move {
                let result =
                    tokio::task::spawn_blocking(move || admission.accept_revocations(&request))
                        .await
                        .ok()?;
                Some(Checked::Revocations { peer, result })
            }));
        }
    }
}
