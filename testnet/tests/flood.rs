//! A flood of connections and streams from peers that are not admitted
//! costs the flooded node little: admitted nodes keep exchanging and its
//! memory stays bounded.

mod common;

use std::time::{Duration, Instant};

use common::*;
use imi_node::config::Config;
use imi_protocol::{CaseAction, CaseId, Content, Country, Request, RequestAction, Timestamp};
use imi_testnet::bench_flood::{Flood, FloodOptions, PeakMemory, resident_bytes};
use imi_testnet::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unadmitted_streams_neither_stops_admitted_nodes_nor_fills_memory()
-> anyhow::Result<()> {
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let pt_index = net
        .federation
        .nodes
        .iter()
        .position(|n| n.address.country == Country::Pt)
        .unwrap();
    let pt_addr = Config::load(&net.federation.nodes[pt_index].config)?.listen[0].parse()?;

    let before = resident_bytes().unwrap_or(0);
    let memory = PeakMemory::start();
    // 24 connections x 32 streams x 8 MiB: 6 GiB offered to the node.
    let flood = Flood::start(
        pt_addr,
        &FloodOptions {
            connections: 24,
            streams: 32,
            bytes_per_stream: 8 * 1024 * 1024,
        },
    );
    wait_until("the flood to be under way", WAIT, || async {
        flood.stats().snapshot().1 >= 200
    })
    .await?;

    // Meanwhile requests travel FI -> PT as usual.
    let started = Instant::now();
    for _ in 0..5 {
        let case = CaseId::new();
        let draft = Request::draft(
            case,
            &finn,
            "professional-qualifications",
            party(&portuguese),
            Timestamp::from_millis(0),
        )?;
        fi.create(imi_node::cases::CaseState::Request(draft), finn.clone())
            .await?;
        fi.act(
            case,
            finn.clone(),
            CaseAction::Request(RequestAction::Send {
                reply_by: in_days(14),
            }),
            Content::default(),
        )
        .await?;
        wait_until("the request to reach PT during the flood", WAIT, || async {
            status(pt, case).as_deref() == Some("sent")
        })
        .await?;
    }
    let exchange = started.elapsed();
    let (connections, refused, _failed, answered, _hellos) = flood.stats().snapshot();
    let peak = memory.peak();
    drop(flood);

    assert_eq!(answered, 0, "an uncertified peer was served");
    assert!(connections > 0 && refused > 0);
    assert!(
        pt.net()
            .peers()
            .await
            .iter()
            .any(|p| p.address == *fi.address()),
        "the flood broke the admitted link"
    );
    assert!(
        exchange < Duration::from_secs(15),
        "5 requests took {exchange:?} during the flood"
    );
    let grown = peak.saturating_sub(before);
    assert!(
        grown < 256 * 1024 * 1024,
        "the process grew by {} MiB during the flood",
        grown / (1024 * 1024)
    );
    Ok(())
}
