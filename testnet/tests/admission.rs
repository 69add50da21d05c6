//! Only certified nodes may use the links: every kind of bad credential is
//! refused and gets no application protocol; a revoked node is cut off.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use imi_certs::{CertificateRequest, Validity};
use imi_node::cases::{CaseApp, CaseState};
use imi_node::config::Config;
use imi_node::delivery;
use imi_node::node::{Node, NodeSetup};
use imi_protocol::{CaseAction, CaseId, Content, Country, Request, RequestAction, Role, Timestamp};
use imi_testnet::{Pki, Testnet, free_port, wait_until};

/// Starts a second Finnish node whose directory `tamper` spoils, dialling `net`'s
/// Finnish node.
async fn intruder(
    net: &Testnet,
    pki: &Pki,
    dir: &Path,
    tamper: impl FnOnce(&Path),
) -> anyhow::Result<Node<CaseApp>> {
    let fi_config = Config::load(&net.federation.nodes[0].config)?;
    let listen = format!("/ip4/127.0.0.1/tcp/{}", free_port()?);
    pki.write_node_dir(
        dir,
        Country::Fi,
        "fi-9",
        vec![listen],
        fi_config.listen.clone(),
    )?;
    tamper(dir);
    // A hostile node: it skips the start-up check an honest node makes on
    // its own credentials, and tries its luck with the federation.
    let config = Config::load(&dir.join("imi-node.toml"))?;
    let setup = NodeSetup::load(&config)?;
    let app = Arc::new(CaseApp::new(setup.address.clone()));
    Ok(Node::start(setup, app).await?)
}

/// The intruder is refused for `reason` and what it sends is never delivered.
async fn assert_refused(
    net: &Testnet,
    intruder: &Node<CaseApp>,
    reason: &str,
) -> anyhow::Result<()> {
    let fi = net.node(Country::Fi);
    // Give admission its full chance (the timeout is 5 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        fi.net().peers().await.is_empty(),
        "FI admitted the intruder"
    );
    let refusals = fi.net().refusals().await;
    assert!(
        refusals
            .iter()
            .any(|r| r.peer == intruder.net().local_peer() && r.reason.contains(reason)),
        "FI did not refuse the intruder for {reason:?}: {refusals:?}"
    );
    assert!(
        intruder.net().peers().await.is_empty(),
        "the intruder got admitted"
    );

    // A request the intruder sends stays in its outbox; FI never sees it.
    let intruding_official = official(Country::Fi, &[Role::RequestHandler]);
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    intruder
        .set_authority_route(imi_protocol::Party::of(&finn), fi.address())
        .await?;
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        &intruding_official,
        "services",
        party(&finn),
        Timestamp::from_millis(0),
    )?;
    intruder
        .create(CaseState::Request(draft), intruding_official.clone())
        .await?;
    intruder
        .act(
            case,
            intruding_official,
            CaseAction::Request(RequestAction::Send {
                reply_by: in_days(5),
            }),
            Content::default(),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(delivery::counts(intruder.store())?.outbox, 1);
    assert!(fi.case(case)?.is_none());
    assert_eq!(fi.case_count()?, 0);
    Ok(())
}

async fn finland() -> anyhow::Result<Testnet> {
    logs();
    Testnet::builder().countries([Country::Fi]).start().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_root_is_refused() -> anyhow::Result<()> {
    let net = finland().await?;
    let dir = tempfile::tempdir()?;
    let other = Pki::generate(&[Country::Fi])?;
    let node = intruder(&net, &other, dir.path(), |_| {}).await?;
    assert_refused(&net, &node, "federation root").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_certificate_is_refused() -> anyhow::Result<()> {
    let net = finland().await?;
    let dir = tempfile::tempdir()?;
    let pki = &net.federation.pki;
    let node = intruder(&net, pki, dir.path(), |dir| {
        // A certificate binding the right key and name, signed by itself.
        let key_pem = std::fs::read_to_string(dir.join("node-key.pem")).unwrap();
        let key = imi_certs::NodeKey::from_pkcs8_pem(&key_pem).unwrap();
        let pair = rcgen::KeyPair::from_pem(&key_pem).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "FI");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fi-9");
        params.subject_alt_names = vec![
            rcgen::SanType::URI("imi:node:FI/fi-9".try_into().unwrap()),
            rcgen::SanType::URI(format!("imi:peer:{}", key.peer_id()).try_into().unwrap()),
        ];
        let cert = params.self_signed(&pair).unwrap();
        std::fs::write(dir.join("certs/node.pem"), cert.pem()).unwrap();
    })
    .await?;
    assert_refused(&net, &node, "federation root").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_peer_id_is_refused() -> anyhow::Result<()> {
    let net = finland().await?;
    let dir = tempfile::tempdir()?;
    let other_dir = tempfile::tempdir()?;
    let pki = &net.federation.pki;
    // A valid certificate, but of another node's key.
    pki.write_node_dir(other_dir.path(), Country::Fi, "fi-9", vec![], vec![])?;
    let stolen = other_dir.path().join("certs/node.pem");
    let node = intruder(&net, pki, dir.path(), |dir| {
        std::fs::copy(&stolen, dir.join("certs/node.pem")).unwrap();
    })
    .await?;
    assert_refused(&net, &node, "the connection proved peer").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() -> anyhow::Result<()> {
    let net = finland().await?;
    let dir = tempfile::tempdir()?;
    let pki = &net.federation.pki;
    let node = intruder(&net, pki, dir.path(), |dir| {
        let key_pem = std::fs::read_to_string(dir.join("node-key.pem")).unwrap();
        let key = imi_certs::NodeKey::from_pkcs8_pem(&key_pem).unwrap();
        let request = CertificateRequest::new(&key, Country::Fi, &"fi-9".parse().unwrap()).unwrap();
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        let expired = pki.nationals[&Country::Fi]
            .issue_node(&request, Validity::new(now - 10 * day, now - day))
            .unwrap();
        expired.write_pem_file(&dir.join("certs/node.pem")).unwrap();
    })
    .await?;
    assert_refused(&net, &node, "expired at").await
}

/// A libp2p peer with a valid key but no certificate at all: it connects,
/// never presents credentials, and asks for delivery straight away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_certificate_gets_no_application_protocol() -> anyhow::Result<()> {
    use futures::StreamExt;
    use libp2p::request_response::{self, ProtocolSupport};
    use libp2p::swarm::SwarmEvent;

    let net = finland().await?;
    let fi = net.node(Country::Fi);
    let fi_addr: libp2p::Multiaddr =
        Config::load(&net.federation.nodes[0].config)?.listen[0].parse()?;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            Default::default(),
            libp2p::tls::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                imi_node::net::BytesCodec::default(),
                [(imi_node::net::DELIVER, ProtocolSupport::Full)],
                request_response::Config::default(),
            )
        })?
        .build();
    swarm.dial(fi_addr)?;
    let mut asked = false;
    let mut refused = false;
    let mut closed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(refused && closed) {
        let event = tokio::select! {
            event = swarm.select_next_some() => event,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if !asked => {
                swarm
                    .behaviour_mut()
                    .send_request(&peer_id, b"not an envelope".to_vec());
                asked = true;
            }
            SwarmEvent::Behaviour(request_response::Event::Message { .. }) => {
                panic!("the uncertified peer got an answer");
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                // Refused while negotiating the stream: not a byte of the
                // request was read.
                assert!(
                    matches!(
                        error,
                        request_response::OutboundFailure::UnsupportedProtocols
                    ),
                    "{error}"
                );
                refused = true;
            }
            SwarmEvent::ConnectionClosed { .. } => closed = true,
            _ => {}
        }
    }
    assert!(asked, "the peer could not even connect");
    assert!(refused, "the delivery request did not fail");
    assert!(closed, "the uncertified peer was not disconnected");
    assert!(fi.net().peers().await.is_empty());
    assert_eq!(delivery::counts(fi.store())?.messages, 0);
    let refusals = fi.net().refusals().await;
    assert!(
        refusals
            .iter()
            .any(|r| r.reason.contains("no valid credentials in time")),
        "{refusals:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_is_cut_off_by_every_node_that_sees_the_revocation() -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::De])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let pt_dir = net
        .federation
        .nodes
        .iter()
        .find(|n| n.address.country == Country::Pt)
        .unwrap();
    let list = net
        .federation
        .pki
        .revoke_nodes(Country::Pt, std::slice::from_ref(&pt_dir.serial))?;
    let pt_ca = net.federation.pki.nationals[&Country::Pt]
        .certificate()
        .clone();
    // Only Finland is told; Germany hears of it from Finland.
    assert!(
        net.node(Country::Fi)
            .add_revocation_list(Some(&pt_ca), list)
            .await?
    );
    let pt = net.node(Country::Pt).address().clone();
    for country in [Country::Fi, Country::De] {
        let node = net.node(country);
        wait_until("the revoked node to be cut off", WAIT, || async {
            !node.net().peers().await.iter().any(|p| p.address == pt)
        })
        .await?;
    }
    // It stays out: its redials are refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(net.node(Country::Pt).net().peers().await.is_empty());
    assert_eq!(
        net.node(Country::Fi).net().peers().await.len(),
        1,
        "FI and DE stay linked"
    );
    let refusals = net.node(Country::De).net().refusals().await;
    assert!(
        refusals.iter().any(|r| r.reason.contains("revoked")),
        "{refusals:?}"
    );
    Ok(())
}

/// Rewrites the node certificate in `dir` with `validity`, for the key there.
fn reissue(pki: &Pki, dir: &Path, name: &str, validity: Validity) {
    let key_pem = std::fs::read_to_string(dir.join("node-key.pem")).unwrap();
    let key = imi_certs::NodeKey::from_pkcs8_pem(&key_pem).unwrap();
    let request = CertificateRequest::new(&key, Country::Fi, &name.parse().unwrap()).unwrap();
    pki.nationals[&Country::Fi]
        .issue_node(&request, validity)
        .unwrap()
        .write_pem_file(&dir.join("certs/node.pem"))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_certificate_drops_its_link() -> anyhow::Result<()> {
    let net = finland().await?;
    let fi = net.node(Country::Fi);
    let dir = tempfile::tempdir()?;
    let pki = net.federation.pki.clone();
    // A node whose certificate is valid for a few seconds more: it starts
    // (it is valid now) and is admitted.
    let now = SystemTime::now();
    let node = intruder(&net, &pki, dir.path(), |dir| {
        reissue(
            &pki,
            dir,
            "fi-9",
            Validity::new(now - Duration::from_secs(60), now + Duration::from_secs(4)),
        );
    })
    .await?;
    let short_lived = node.net().local_peer();
    wait_until("the node to be admitted", WAIT, || async {
        fi.net().peers().await.iter().any(|p| p.peer == short_lived)
    })
    .await?;
    wait_until("the link to drop at expiry", WAIT, || async {
        !fi.net().peers().await.iter().any(|p| p.peer == short_lived)
    })
    .await?;
    assert!(
        SystemTime::now() + Duration::from_secs(1) >= now + Duration::from_secs(4),
        "the link dropped before the certificate expired"
    );
    let refusals = fi.net().refusals().await;
    assert!(
        refusals
            .iter()
            .any(|r| r.peer == short_lived && r.reason.contains("expired")),
        "{refusals:?}"
    );
    // The node sees its link close too, and stays out: its redials present
    // the expired certificate again and are refused.
    wait_until("the expired node to see its link closed", WAIT, || async {
        node.net().peers().await.is_empty()
    })
    .await?;
    for _ in 0..25 {
        assert!(!fi.net().peers().await.iter().any(|p| p.peer == short_lived));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_is_not_used_until_both_sides_admitted_each_other() -> anyhow::Result<()> {
    let net = finland().await?;
    let fi = net.node(Country::Fi);
    let dir = tempfile::tempdir()?;
    let pki = net.federation.pki.clone();
    let other = Pki::generate(&[Country::Fi])?;
    // A node with a valid certificate of this federation, which pins
    // another root: FI accepts it, it refuses FI.
    let node = intruder(&net, &pki, dir.path(), |dir| {
        other
            .root
            .certificate()
            .write_pem_file(&dir.join("certs/root.pem"))
            .unwrap();
    })
    .await?;
    let fi_peer = fi.net().local_peer();
    wait_until("the node to refuse FI", WAIT, || async {
        node.net()
            .refusals()
            .await
            .iter()
            .any(|r| r.peer == fi_peer)
    })
    .await?;
    // FI never counts the one-sided link as up, so nothing uses it.
    for _ in 0..50 {
        assert!(
            fi.net().peers().await.is_empty(),
            "FI used a link its peer refused"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_node_is_admitted_as_soon_as_it_has_a_valid_certificate() -> anyhow::Result<()> {
    let net = finland().await?;
    let fi = net.node(Country::Fi);
    let dir = tempfile::tempdir()?;
    let pki = net.federation.pki.clone();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let node = intruder(&net, &pki, dir.path(), |dir| {
        reissue(&pki, dir, "fi-9", Validity::new(now - 10 * day, now - day));
    })
    .await?;
    let peer = node.net().local_peer();
    wait_until("FI to refuse the expired certificate", WAIT, || async {
        fi.net().refusals().await.iter().any(|r| r.peer == peer)
    })
    .await?;
    node.shutdown().await;
    // The national CA issues a new certificate; the node comes back with
    // it well within the refusal's 30 s and is admitted at once.
    reissue(&pki, dir.path(), "fi-9", Validity::days_from_now(10));
    let came_back = std::time::Instant::now();
    let node = imi_testnet::start_node(&config_path(dir.path())).await?;
    wait_until("the renewed node to be admitted", WAIT, || async {
        fi.net().peers().await.iter().any(|p| p.peer == peer)
    })
    .await?;
    assert!(
        came_back.elapsed() < Duration::from_secs(15),
        "re-admission waited out the refusal: {:?}",
        came_back.elapsed()
    );
    assert_eq!(node.net().peers().await.len(), 1);
    Ok(())
}

fn config_path(dir: &Path) -> std::path::PathBuf {
    dir.join("imi-node.toml")
}
