//! Two certified nodes over real loopback sockets: the seed scenario, and
//! what happens to peers and messages that must be refused.

mod common;

use common::*;
use imi_node::delivery::{self, Direction, MessageStatus};
use imi_protocol::{
    CaseAction, CaseId, Content, Country, FreeText, Language, Rating, Request, RequestAction, Role,
    Timestamp,
};
use imi_testnet::{Testnet, wait_until};

async fn seed_scenario(quic: bool) -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .quic(quic)
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);

    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let portuguese = official(Country::Pt, &[Role::RequestHandler]);
    // The directory says which node serves which authority.
    for node in [fi, pt] {
        node.set_authority_route(imi_protocol::Party::of(&finn), fi.address())
            .await?;
        node.set_authority_route(imi_protocol::Party::of(&portuguese), pt.address())
            .await?;
    }

    // The Finnish official drafts and sends a request to the Portuguese authority.
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
    let question = Content {
        question_set: Some("pq-general".into()),
        fields: [("pq-professional-name".to_owned(), String::new())].into(),
        text: Some(FreeText {
            language: Language::Fi,
            text: "Onko lääkärillä voimassa oleva oikeus harjoittaa ammattia?".into(),
        }),
    };
    let step = |action| CaseAction::Request {
        action,
        before: None,
    };
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::Send {
            reply_by: in_days(14),
        }),
        question,
    )
    .await?;
    wait_until("the request to reach Portugal", WAIT, || async {
        status(pt, case).as_deref() == Some("sent")
    })
    .await?;

    // Portugal accepts and proposes a new deadline; Finland agrees.
    pt.act(
        case,
        portuguese.clone(),
        step(RequestAction::Accept),
        Content::default(),
    )
    .await?;
    pt.act(
        case,
        portuguese.clone(),
        step(RequestAction::ProposeDeadline {
            reply_by: in_days(21),
        }),
        Content::default(),
    )
    .await?;
    wait_until("the proposal to reach Finland", WAIT, || async {
        status(fi, case).is_some_and(|s| s.contains("new reply-by date"))
    })
    .await?;
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::AcceptDeadline),
        Content::default(),
    )
    .await?;
    wait_until("the agreement to reach Portugal", WAIT, || async {
        status(pt, case).as_deref() == Some("accepted")
    })
    .await?;

    // Portugal answers; Finland closes with a rating.
    let answer = Content {
        question_set: Some("pq-general".into()),
        fields: [("pq-professional-name".to_owned(), "yes".to_owned())].into(),
        text: Some(FreeText {
            language: Language::Pt,
            text: "O médico está inscrito na Ordem sem restrições.".into(),
        }),
    };
    pt.act(
        case,
        portuguese.clone(),
        step(RequestAction::Answer { complete: true }),
        answer,
    )
    .await?;
    wait_until("the answer to reach Finland", WAIT, || async {
        status(fi, case).as_deref() == Some("answered")
    })
    .await?;
    let rating = Rating {
        timeliness: 5,
        effort: 4,
    };
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::Close { rating }),
        Content::default(),
    )
    .await?;
    wait_until("the closure to reach Portugal", WAIT, || async {
        status(pt, case).as_deref() == Some("closed")
    })
    .await?;

    // Both sides hold the same case, the Finn reads the Portuguese answer.
    assert_eq!(state(fi, case), state(pt, case));
    let fi_record = fi.case(case)?.unwrap();
    let answer_entry = fi_record
        .history
        .iter()
        .find(|h| h.action == RequestAction::Answer { complete: true }.name())
        .expect("the answer is in the Finnish history");
    assert_eq!(answer_entry.node, *pt.address());
    assert_eq!(answer_entry.content.fields["pq-professional-name"], "yes");

    // Every message either side sent has the other's signed receipt.
    wait_until("all receipts", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
            && delivery::counts(pt.store()).unwrap().outbox == 0
    })
    .await?;
    let sent_by_fi: Vec<_> = delivery::case_messages(fi.store(), case)?
        .into_iter()
        .filter(|m| m.direction == Direction::Outbound)
        .collect();
    assert_eq!(sent_by_fi.len(), 3, "send, accept deadline, close");
    assert!(
        sent_by_fi
            .iter()
            .all(|m| m.status == MessageStatus::Accepted && m.receipt.is_some())
    );
    let received_by_pt = delivery::case_messages(pt.store(), case)?
        .into_iter()
        .filter(|m| m.direction == Direction::Inbound)
        .count();
    assert_eq!(received_by_pt, 3);

    // Each side remembers whom it admitted.
    let known = fi.known_peers()?;
    assert_eq!(known.len(), 1);
    assert_eq!(known[0].address, *pt.address());
    assert_eq!(known[0].peer_id, pt.net().local_peer().to_base58());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_over_tcp() -> anyhow::Result<()> {
    seed_scenario(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_over_quic() -> anyhow::Result<()> {
    seed_scenario(true).await
}

/// Sends a fresh request from `finn` to `to` and returns its case id.
async fn send_request(
    fi: &imi_node::node::Node<imi_node::cases::CaseApp>,
    finn: &imi_protocol::Actor,
    to: &imi_protocol::Actor,
) -> anyhow::Result<CaseId> {
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        finn,
        "professional-qualifications",
        party(to),
        Timestamp::from_millis(0),
    )?;
    fi.create(imi_node::cases::CaseState::Request(draft), finn.clone())
        .await?;
    fi.act(
        case,
        finn.clone(),
        CaseAction::Request {
            action: RequestAction::Send {
                reply_by: in_days(14),
            },
            before: None,
        },
        Content::default(),
    )
    .await?;
    Ok(case)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_that_was_down_receives_everything_when_it_returns() -> anyhow::Result<()> {
    logs();
    let mut net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let portuguese = official(Country::Pt, &[Role::RequestHandler]);
    for node in &net.nodes {
        node.set_authority_route(
            imi_protocol::Party::of(&finn),
            net.node(Country::Fi).address(),
        )
        .await?;
        node.set_authority_route(
            imi_protocol::Party::of(&portuguese),
            net.node(Country::Pt).address(),
        )
        .await?;
    }
    let stopped = net.stop(Country::Pt).await?;
    let mut cases = Vec::new();
    for _ in 0..40 {
        cases.push(send_request(net.node(Country::Fi), &finn, &portuguese).await?);
    }
    // Retries go on while Portugal is away; nothing is lost.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(delivery::counts(net.node(Country::Fi).store())?.outbox, 40);
    net.restart(stopped).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    wait_until("the outbox to empty", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    for case in &cases {
        assert_eq!(status(pt, *case).as_deref(), Some("sent"));
    }
    assert_eq!(pt.case_count()?, 40);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_sees_why_the_recipient_rejected_a_message() -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let stranger = official(Country::Pt, &[Role::RequestHandler]);
    // Finland believes Portugal serves this authority; Portugal does not know it.
    fi.set_authority_route(imi_protocol::Party::of(&stranger), pt.address())
        .await?;
    let case = send_request(fi, &finn, &stranger).await?;
    wait_until("the receipt", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    let sent = delivery::case_messages(fi.store(), case)?;
    assert_eq!(sent.len(), 1);
    match &sent[0].status {
        MessageStatus::Rejected { code, reason } => {
            assert_eq!(code, "not-served-here");
            assert!(reason.contains("PT/pt-1"), "{reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(pt.case(case)?.is_none());
    Ok(())
}

/// Regression: answers on the delivery and directory protocols were matched
/// to requests by a number each protocol counts on its own, so a directory
/// answer could complete a delivery request and the other way round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_and_directory_answers_do_not_cross() -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let portuguese = official(Country::Pt, &[Role::RequestHandler]);
    for node in [fi, pt] {
        node.set_authority_route(imi_protocol::Party::of(&finn), fi.address())
            .await?;
        node.set_authority_route(imi_protocol::Party::of(&portuguese), pt.address())
            .await?;
    }
    // Both protocols busy at once, in both directions.
    let authorities = imi_testnet::sample_authorities(Country::Pt, pt.address(), 300);
    let publish = pt.directory().upsert_authorities(authorities);
    let mut sends = Vec::new();
    for _ in 0..60 {
        sends.push(send_request(fi, &finn, &portuguese));
    }
    let (published, sent) = tokio::join!(publish, futures::future::join_all(sends));
    published?;
    for case in sent {
        case?;
    }
    wait_until("every receipt", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    assert_eq!(pt.case_count()?, 60);
    wait_until("the directory to reach Finland", WAIT, || async {
        fi.directory().authorities_of(Country::Pt).len() == 300
    })
    .await?;
    Ok(())
}
