//! What a peer that is not admitted may cost this node.
//!
//! [`Gate`] wraps the behaviour of an application protocol so that its
//! inbound streams are refused during protocol negotiation, before a single
//! byte of a request is read, on every connection of a peer until the event
//! loop opens the gate for that peer (once its certificate chain verified).
//! The peer sees "protocol not supported"; the node allocates nothing.
//!
//! [`UnadmittedPerIp`] refuses an inbound connection when its IP address
//! already holds as many connections of peers that are not admitted yet as
//! the limit allows: one address cannot fill the node with handshakes that
//! never present a certificate. Admitted peers do not count.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::task::{Context, Poll};

use either::Either;
use libp2p::PeerId;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::DeniedUpgrade;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{
    ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, FullyNegotiatedInbound,
    ListenUpgradeError, SendWrapper, SubstreamProtocol,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

/// Tells a connection's handler that its peer is admitted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open;

/// An application protocol's behaviour, served only to admitted peers.
pub(crate) struct Gate<B> {
    inner: B,
    open: HashSet<PeerId>,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    notify: VecDeque<(PeerId, ConnectionId)>,
}

impl<B> Gate<B> {
    pub(crate) fn new(inner: B) -> Self {
        Gate {
            inner,
            open: HashSet::new(),
            connections: HashMap::new(),
            notify: VecDeque::new(),
        }
    }

    /// The wrapped behaviour.
    pub(crate) fn inner(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Serves the protocol to `peer` on every connection, now and until its
    /// last connection closes.
    pub(crate) fn open(&mut self, peer: PeerId) {
        if self.open.insert(peer) {
            for connection in self.connections.get(&peer).into_iter().flatten() {
                self.notify.push_back((peer, *connection));
            }
        }
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Gate<B> {
    type ConnectionHandler = GateHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_inbound_connection(
            connection_id,
            peer,
            local_addr,
            remote_addr,
        )?;
        Ok(GateHandler {
            inner,
            open: self.open.contains(&peer),
        })
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )?;
        Ok(GateHandler {
            inner,
            open: self.open.contains(&peer),
        })
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some(list) = self.connections.get_mut(&e.peer_id) {
                    list.retain(|c| *c != e.connection_id);
                }
                if e.remaining_established == 0 {
                    self.connections.remove(&e.peer_id);
                    self.open.remove(&e.peer_id);
                }
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner
            .on_connection_handler_event(peer_id, connection_id, event)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        if let Some((peer_id, connection)) = self.notify.pop_front() {
            return Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event: Either::Right(Open),
            });
        }
        self.inner.poll(cx).map(|event| event.map_in(Either::Left))
    }
}

/// The connection handler of a [`Gate`]: the inner handler, whose inbound
/// streams are refused until the gate opens.
pub(crate) struct GateHandler<H> {
    inner: H,
    open: bool,
}

impl<H: ConnectionHandler> ConnectionHandler for GateHandler<H> {
    type FromBehaviour = Either<H::FromBehaviour, Open>;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = Either<SendWrapper<H::InboundProtocol>, SendWrapper<DeniedUpgrade>>;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = Either<H::InboundOpenInfo, ()>;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        if self.open {
            self.inner
                .listen_protocol()
                .map_upgrade(|u| Either::Left(SendWrapper(u)))
                .map_info(Either::Left)
        } else {
            SubstreamProtocol::new(Either::Right(SendWrapper(DeniedUpgrade)), Either::Right(()))
        }
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        match event {
            Either::Left(event) => self.inner.on_behaviour_event(event),
            Either::Right(Open) => self.open = true,
        }
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<
        ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>,
    > {
        self.inner.poll(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            '_,
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol, info }) => {
                match (protocol, info) {
                    (futures::future::Either::Left(protocol), Either::Left(info)) => {
                        self.inner
                            .on_connection_event(ConnectionEvent::FullyNegotiatedInbound(
                                FullyNegotiatedInbound { protocol, info },
                            ));
                    }
                    (futures::future::Either::Right(never), _) => {
                        libp2p::core::util::unreachable(never)
                    }
                    // A stream negotiated while open, with the info of a closed gate: impossible.
                    (futures::future::Either::Left(_), Either::Right(())) => {}
                }
            }
            ConnectionEvent::ListenUpgradeError(ListenUpgradeError { info, error }) => {
                match (info, error) {
                    (Either::Left(info), Either::Left(error)) => {
                        self.inner
                            .on_connection_event(ConnectionEvent::ListenUpgradeError(
                                ListenUpgradeError { info, error },
                            ));
                    }
                    (_, Either::Right(never)) => libp2p::core::util::unreachable(never),
                    // A stream refused by the closed gate.
                    (Either::Right(()), Either::Left(_)) => {}
                }
            }
            ConnectionEvent::FullyNegotiatedOutbound(e) => self
                .inner
                .on_connection_event(ConnectionEvent::FullyNegotiatedOutbound(e)),
            ConnectionEvent::DialUpgradeError(e) => self
                .inner
                .on_connection_event(ConnectionEvent::DialUpgradeError(e)),
            ConnectionEvent::AddressChange(e) => self
                .inner
                .on_connection_event(ConnectionEvent::AddressChange(e)),
            ConnectionEvent::LocalProtocolsChange(e) => self
                .inner
                .on_connection_event(ConnectionEvent::LocalProtocolsChange(e)),
            ConnectionEvent::RemoteProtocolsChange(e) => self
                .inner
                .on_connection_event(ConnectionEvent::RemoteProtocolsChange(e)),
            _ => {}
        }
    }
}

/// Too many connections of peers that are not admitted come from one
/// address.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already holds {count} connections of peers that are not admitted")]
pub(crate) struct TooManyUnadmitted {
    ip: IpAddr,
    count: usize,
}

/// Limits the inbound connections of peers not admitted yet, per IP.
pub(crate) struct UnadmittedPerIp {
    max: usize,
    admitted: HashSet<PeerId>,
    inbound: HashMap<ConnectionId, (PeerId, IpAddr)>,
}

impl UnadmittedPerIp {
    pub(crate) fn new(max: usize) -> Self {
        UnadmittedPerIp {
            max,
            admitted: HashSet::new(),
            inbound: HashMap::new(),
        }
    }

    /// `peer` is admitted: its connections no longer count.
    pub(crate) fn admitted(&mut self, peer: PeerId) {
        self.admitted.insert(peer);
    }

    /// How many inbound connections of peers not admitted `ip` holds.
    fn unadmitted_from(&self, ip: IpAddr) -> usize {
        self.inbound
            .values()
            .filter(|(peer, from)| *from == ip && !self.admitted.contains(peer))
            .count()
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for UnadmittedPerIp {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = ip_of(remote_addr) {
            if !self.admitted.contains(&peer) {
                let count = self.unadmitted_from(ip);
                if count >= self.max {
                    return Err(ConnectionDenied::new(TooManyUnadmitted { ip, count }));
                }
            }
            self.inbound.insert(connection_id, (peer, ip));
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(e) = event {
            self.inbound.remove(&e.connection_id);
            if e.remaining_established == 0 {
                self.admitted.remove(&e.peer_id);
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer_id: PeerId,
        _connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        libp2p::core::util::unreachable(event)
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
