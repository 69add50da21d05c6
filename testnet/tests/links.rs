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
        node.set_authority_route(finn.authority, fi.address())
            .await?;
        node.set_authority_route(portuguese.authority, pt.address())
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
