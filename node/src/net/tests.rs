//! The network loop over real loopback sockets, with real certificates:
//! what reaches the rest of the node, and what it is spared.

use std::sync::Arc;
use std::time::Duration;

use imi_certs::{CertChain, CertificateRequest, NationalCa, NodeKey, RootCa, Validity};
use imi_protocol::Country;
use tokio::sync::mpsc;

use super::admission::CertAdmission;
use super::{AppProtocol, NetConfig, NetEvent, NetworkHandle, SendError};

const WAIT: Duration = Duration::from_secs(20);

struct Federation {
    root: RootCa,
    finland: NationalCa,
}

impl Federation {
    fn new() -> Federation {
        let root = RootCa::generate("test root", Validity::days_from_now(60)).unwrap();
        let finland = root
            .issue_national_ca(Country::Fi, Validity::days_from_now(30))
            .unwrap();
        Federation { root, finland }
    }

    /// Starts the links of Finnish node `name` with `config` (listening on
    /// a port the OS picks).
    fn start(&self, name: &str, config: NetConfig) -> (NetworkHandle, mpsc::Receiver<NetEvent>) {
        let key = NodeKey::generate();
        let request = CertificateRequest::new(&key, Country::Fi, &name.parse().unwrap()).unwrap();
        let cert = self
            .finland
            .issue_node(&request, Validity::days_from_now(10))
            .unwrap();
        let chain = CertChain::national(cert, self.finland.certificate().clone());
        let admission =
            Arc::new(CertAdmission::new(self.root.trusted_root(), chain, vec![], None).unwrap());
        let config = NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            ..config
        };
        let (handle, events, _task) =
            super::start(key.libp2p_keypair(), config, admission).unwrap();
        (handle, events)
    }
}

async fn listen_addr(net: &NetworkHandle) -> libp2p::Multiaddr {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(addr) = net.listen_addrs().await.first() {
                return addr.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the node did not listen")
}

async fn wait_peers(net: &NetworkHandle, count: usize) {
    tokio::time::timeout(WAIT, async {
        while net.peers().await.len() < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the links did not come up");
}

/// Answers nothing and keeps the events of a node nobody else reads.
fn drain(mut events: mpsc::Receiver<NetEvent>) {
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(event) = events.recv().await {
            held.push(event);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_are_not_lost_when_the_event_queue_is_full() {
    let federation = Federation::new();
    let (hub, mut hub_events) = federation.start(
        "hub",
        NetConfig {
            event_queue: 1,
            ..NetConfig::default()
        },
    );
    let addr = listen_addr(&hub).await;
    let mut spokes = Vec::new();
    for i in 0..3 {
        let (spoke, events) = federation.start(
            &format!("spoke-{i}"),
            NetConfig {
                bootstrap: vec![addr.clone()],
                ..NetConfig::default()
            },
        );
        drain(events);
        spokes.push(spoke);
    }
    // Nobody reads the hub's events while the three links come up.
    wait_peers(&hub, 3).await;
    let mut arrived = Vec::new();
    while arrived.len() < 3 {
        match tokio::time::timeout(WAIT, hub_events.recv()).await {
            Ok(Some(NetEvent::PeerAdmitted(identity))) => arrived.push(identity.address),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("arrivals were lost: only {arrived:?} were told"),
        }
    }
    arrived.sort_by_key(|a| a.to_string());
    arrived.dedup();
    assert_eq!(arrived.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_progress_per_peer_are_bounded() {
    let federation = Federation::new();
    let (hub, mut hub_events) = federation.start(
        "hub",
        NetConfig {
            max_inbound_per_peer: 4,
            ..NetConfig::default()
        },
    );
    let addr = listen_addr(&hub).await;
    let (spoke, spoke_events) = federation.start(
        "spoke",
        NetConfig {
            bootstrap: vec![addr],
            ..NetConfig::default()
        },
    );
    drain(spoke_events);
    wait_peers(&hub, 1).await;
    wait_peers(&spoke, 1).await;
    let sends: Vec<_> = (0..10u8)
        .map(|i| {
            let spoke = spoke.clone();
            tokio::spawn(
                async move { spoke.request(AppProtocol::Deliver, "FI/hub", vec![i]).await },
            )
        })
        .collect();
    // The hub holds every request it is given, answering none.
    let mut held = Vec::new();
    let mut failed = 0;
    let mut pending = sends;
    while failed < 6 {
        tokio::select! {
            event = hub_events.recv() => match event {
                Some(NetEvent::Request { reply, .. }) => held.push(reply),
                Some(_) => {}
                None => panic!("the hub stopped"),
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                let mut still = Vec::new();
                for send in pending {
                    if send.is_finished() {
                        let result = send.await.unwrap();
                        assert!(matches!(result, Err(SendError::Failed { .. })), "{result:?}");
                        failed += 1;
                    } else {
                        still.push(send);
                    }
                }
                pending = still;
            }
        }
        assert!(
            held.len() <= 4,
            "the hub took {} requests of one peer at once",
            held.len()
        );
    }
    assert_eq!(
        held.len(),
        4,
        "the requests over the bound were refused, the others taken"
    );
    // Answered, the peer's slots free up again.
    for reply in held.drain(..) {
        let _ = reply.send(b"done".to_vec());
    }
    for send in pending {
        assert_eq!(send.await.unwrap().unwrap(), b"done".to_vec());
    }
    let next = tokio::spawn({
        let spoke = spoke.clone();
        async move {
            spoke
                .request(AppProtocol::Deliver, "FI/hub", vec![42])
                .await
        }
    });
    loop {
        match tokio::time::timeout(WAIT, hub_events.recv()).await {
            Ok(Some(NetEvent::Request { reply, bytes, .. })) => {
                assert_eq!(bytes, vec![42]);
                let _ = reply.send(b"again".to_vec());
                break;
            }
            Ok(Some(_)) => {}
            _ => panic!("the peer was not served again"),
        }
    }
    assert_eq!(next.await.unwrap().unwrap(), b"again".to_vec());
}
