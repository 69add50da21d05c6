//! Two certified nodes over real loopback sockets: the seed scenario, and
//! what happens to peers and messages that must be refused.

mod common;

use common::*;
use imi_node::delivery::{self, Direction, MessageStatus};
use imi_protocol::{
    Attachment, CaseAction, CaseId, Content, Country, FreeText, Language, Rating, Request,
    RequestAction, Role, Timestamp,
};
use imi_testnet::{Testnet, wait_until};

async fn seed_scenario(quic: bool) -> anyhow::Result<()> {
    let (net, finn, portuguese) = finland_and_portugal(quic).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);

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
        ..Content::default()
    };
    let step = CaseAction::Request;
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
        // The register extract, as a file of a few hundred kilobytes.
        attachments: vec![Attachment::new(
            "certidao-inscricao.pdf",
            "application/pdf",
            (0..300_000u32).map(|i| (i % 251) as u8).collect(),
        )],
    };
    let extract = answer.attachments[0].clone();
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
        .history()
        .into_iter()
        .find(|h| h.action == RequestAction::Answer { complete: true }.name())
        .expect("the answer is in the Finnish history");
    assert_eq!(answer_entry.node, *pt.address());
    assert_eq!(answer_entry.content.fields["pq-professional-name"], "yes");
    // The register extract arrived whole, and still matches its digest.
    assert_eq!(answer_entry.content.attachments, [extract]);
    assert_eq!(answer_entry.content.attachments[0].check(), Ok(()));

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
    // Finland is the case's sequencer: every step of the log goes to
    // Portugal, Portugal's own steps coming back as their confirmation.
    assert_eq!(
        sent_by_fi.len(),
        6,
        "send, accept, propose deadline, accept deadline, answer, close"
    );
    assert!(
        sent_by_fi
            .iter()
            .all(|m| m.status == MessageStatus::Accepted && m.receipt.is_some())
    );
    let received_by_pt = delivery::case_messages(pt.store(), case)?
        .into_iter()
        .filter(|m| m.direction == Direction::Inbound)
        .count();
    assert_eq!(received_by_pt, 6);
    let proposed_by_pt = delivery::case_messages(pt.store(), case)?
        .into_iter()
        .filter(|m| m.direction == Direction::Outbound)
        .count();
    assert_eq!(proposed_by_pt, 3, "accept, propose deadline, answer");

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
/// A draft request of the Finn to `to`, stored on the Finnish node.
async fn draft_request(
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
    Ok(case)
}

async fn send_request(
    fi: &imi_node::node::Node<imi_node::cases::CaseApp>,
    finn: &imi_protocol::Actor,
    to: &imi_protocol::Actor,
) -> anyhow::Result<CaseId> {
    let case = draft_request(fi, finn, to).await?;
    fi.act(
        case,
        finn.clone(),
        CaseAction::Request(RequestAction::Send {
            reply_by: in_days(14),
        }),
        Content::default(),
    )
    .await?;
    Ok(case)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_that_was_down_receives_everything_when_it_returns() -> anyhow::Result<()> {
    let (mut net, finn, portuguese) = finland_and_portugal(false).await?;
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
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
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

/// Routes for `finn`'s and `portuguese`'s authorities on every node.
/// The outbound messages of `case` on `node`, each with its status.
fn sent_statuses(
    node: &imi_node::node::Node<imi_node::cases::CaseApp>,
    case: CaseId,
) -> Vec<MessageStatus> {
    delivery::case_messages(node.store(), case)
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == Direction::Outbound)
        .map(|m| m.status)
        .collect()
}

/// Regression: envelopes waiting in an outbox were verified with the
/// sender's current key only, and duplicates are answered with the receipt
/// first given, so a renewal of a node's certificate and key got old
/// envelopes refused ("bad-signature") and old receipts thrown away, and
/// the cases stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_renews_its_certificate_and_key_while_cases_are_in_flight_and_every_case_completes()
-> anyhow::Result<()> {
    let (mut net, finn, portuguese) = finland_and_portugal(false).await?;

    // Requests that went through before: each node knows the other's first key.
    let mut early = Vec::new();
    for _ in 0..5 {
        early.push(send_request(net.node(Country::Fi), &finn, &portuguese).await?);
    }
    wait_until("the first receipts", WAIT, || async {
        delivery::counts(net.node(Country::Fi).store())
            .unwrap()
            .outbox
            == 0
    })
    .await?;
    let receipted = delivery::case_messages(net.node(Country::Fi).store(), early[0])?
        .into_iter()
        .find(|m| m.direction == Direction::Outbound)
        .expect("the first request was sent");

    // Portugal goes away; Finland goes on sending, sealing with its first key.
    let pt_stopped = net.stop(Country::Pt).await?;
    let mut late = Vec::new();
    for _ in 0..20 {
        late.push(send_request(net.node(Country::Fi), &finn, &portuguese).await?);
    }
    assert_eq!(delivery::counts(net.node(Country::Fi).store())?.outbox, 20);

    // Both nodes get a new certificate and key while the requests wait.
    let fi_stopped = net.stop(Country::Fi).await?;
    let pki = net.federation.pki.clone();
    for dir in net.federation.nodes.iter_mut() {
        pki.renew_node(dir)?;
    }
    net.restart(fi_stopped).await?;
    net.restart(pt_stopped).await?;
    net.wait_connected(WAIT).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);

    // Portugal takes every request sealed with Finland's first key.
    wait_until("Finland's outbox to empty", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    for case in early.iter().chain(&late) {
        assert_eq!(sent_statuses(fi, *case), vec![MessageStatus::Accepted]);
        assert_eq!(status(pt, *case).as_deref(), Some("sent"));
    }
    // And answers them, now under its new key.
    for case in &late {
        pt.act(
            *case,
            portuguese.clone(),
            CaseAction::Request(RequestAction::Accept),
            Content::default(),
        )
        .await?;
    }
    wait_until("Portugal's outbox to empty", WAIT, || async {
        delivery::counts(pt.store()).unwrap().outbox == 0
    })
    .await?;
    for case in &late {
        assert_eq!(sent_statuses(pt, *case), vec![MessageStatus::Accepted]);
        assert_eq!(status(fi, *case).as_deref(), Some("accepted"));
    }

    // A duplicate of an early request gets the very receipt Portugal signed
    // with its first key, which Finland still verifies.
    let answer = fi
        .net()
        .request(
            imi_node::net::AppProtocol::Deliver,
            &pt.address().to_string(),
            delivery::encode_batch([receipted.envelope.as_slice()]),
        )
        .await?;
    let answers: Vec<delivery::DeliverAnswer> = postcard::from_bytes(&answer)?;
    let [delivery::DeliverAnswer::Receipt(bytes)] = answers.as_slice() else {
        panic!("expected one receipt, got {answers:?}");
    };
    assert_eq!(Some(bytes), receipted.receipt.as_ref());
    let pt_now =
        imi_protocol::VerifyingKey::from_bytes(&net.federation.nodes[1].key.public_key_bytes())?;
    assert!(
        imi_protocol::open_receipt(bytes, &pt_now).is_err(),
        "the receipt was signed with Portugal's first key"
    );
    let body = fi.delivery().keys().open_receipt(pt.address(), bytes)?;
    assert!(body.outcome.is_accepted());
    Ok(())
}

/// A step the recipient rejected stays in the case's history on both
/// sides with its reason; sent again once the cause is fixed, it goes
/// through and the case goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_step_is_kept_on_both_sides_and_can_be_sent_again() -> anyhow::Result<()> {
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
    fi.set_authority_route(imi_protocol::Party::of(&finn), fi.address())
        .await?;
    fi.set_authority_route(imi_protocol::Party::of(&portuguese), pt.address())
        .await?;
    // Portugal does not know yet that it serves this authority.
    let case = send_request(fi, &finn, &portuguese).await?;
    wait_until("the rejection", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    let rejected = delivery::case_messages(fi.store(), case)?;
    let [first] = rejected.as_slice() else {
        panic!("one message expected: {rejected:?}")
    };
    assert!(
        matches!(&first.status, MessageStatus::Rejected { code, .. } if code == "not-served-here")
    );
    // Portugal keeps the rejection too, under the case.
    let kept = delivery::case_messages(pt.store(), case)?;
    assert!(
        matches!(kept.as_slice(), [m] if m.direction == Direction::Inbound && m.status == first.status),
        "{kept:?}"
    );
    assert!(pt.case(case)?.is_none());

    // Once Portugal serves the authority, the step is sent again.
    pt.set_authority_route(imi_protocol::Party::of(&portuguese), pt.address())
        .await?;
    let id = imi_protocol::peek_header(&first.envelope)?.id;
    let again = fi.resend(id).await?;
    assert_ne!(again, id);
    wait_until("the second receipt", WAIT, || async {
        delivery::counts(fi.store()).unwrap().outbox == 0
    })
    .await?;
    assert_eq!(
        sent_statuses(fi, case),
        vec![first.status.clone(), MessageStatus::Accepted]
    );
    assert_eq!(status(pt, case).as_deref(), Some("sent"));
    // Only a rejected message is sent again.
    assert!(matches!(
        fi.resend(again).await,
        Err(delivery::ResendError::NotRejected(_))
    ));
    Ok(())
}

/// Regression: the store ran every write of a group commit in one shared
/// transaction, so a send whose write failed after it had written the case
/// committed the case without its envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_fails_after_writing_stores_nothing_of_it() -> anyhow::Result<()> {
    use imi_node::node::SendCaseError;
    const MARK: redb::TableDefinition<'_, u64, u64> = redb::TableDefinition::new("test-mark-1");
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt])
        .start()
        .await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt).address().clone();
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    let author = imi_protocol::Author {
        authority: finn.authority,
        user: Some(finn.user),
    };
    let case = CaseId::new();
    let before = delivery::counts(fi.store())?;
    let failed = fi
        .send(
            vec![pt.clone()],
            case,
            imi_protocol::MessageKind::Request,
            author.clone(),
            "a step".to_owned(),
            |tx| {
                let store = |e: &dyn std::fmt::Display| SendCaseError::Store(e.to_string());
                tx.open_table(MARK)
                    .map_err(|e| store(&e))?
                    .insert(1, 1)
                    .map_err(|e| store(&e))?;
                // A failure injected after the case's part was written.
                Err(SendCaseError::Refused("injected failure".into()))
            },
        )
        .await;
    assert_eq!(
        failed,
        Err(SendCaseError::Refused("injected failure".into()))
    );
    assert_eq!(
        delivery::counts(fi.store())?,
        before,
        "no envelope was kept"
    );
    let read = fi.store().read()?;
    assert!(
        match read.open_table(MARK) {
            Ok(table) => redb::ReadableTable::get(&table, 1)?.is_none(),
            Err(redb::TableError::TableDoesNotExist(_)) => true,
            Err(err) => return Err(err.into()),
        },
        "the case's part of the failed write was kept"
    );
    // Nor was its sequence number used up: the next send of the case is 1.
    fi.send(
        vec![pt],
        case,
        imi_protocol::MessageKind::Request,
        author,
        "a step".to_owned(),
        |_| Ok(()),
    )
    .await?;
    let sent = delivery::case_messages(fi.store(), case)?;
    assert_eq!(sent.iter().map(|m| m.sequence).collect::<Vec<_>>(), vec![1]);
    Ok(())
}

/// Requests with large files queued while the recipient is down all
/// arrive whole when it returns (a delivery request carries at most 7 MiB
/// of envelopes; the rest follow in the next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_large_files_sent_together_all_arrive() -> anyhow::Result<()> {
    let (mut net, finn, portuguese) = finland_and_portugal(false).await?;
    // Portugal is down while Finland sends, so the four wait together.
    let stopped = net.stop(Country::Pt).await?;
    let fi = net.node(Country::Fi);
    // Four requests of 3 MiB each: 12 MiB, more than one request may carry.
    let mut cases = Vec::new();
    for n in 0..4u8 {
        let case = draft_request(fi, &finn, &portuguese).await?;
        let files = Content {
            attachments: vec![Attachment::new(
                format!("diploma-{n}.pdf"),
                "application/pdf",
                vec![n; 3 * 1024 * 1024],
            )],
            ..Content::default()
        };
        cases.push((case, files.attachments[0].digest));
        fi.act(
            case,
            finn.clone(),
            CaseAction::Request(RequestAction::Send {
                reply_by: in_days(14),
            }),
            files,
        )
        .await?;
    }
    net.restart(stopped).await?;
    let pt = net.node(Country::Pt);
    for (case, digest) in &cases {
        wait_until("every request to reach Portugal", WAIT, || async {
            status(pt, *case).as_deref() == Some("sent")
        })
        .await?;
        let record = pt.case(*case)?.expect("the case is in Portugal");
        let files = &record.history()[0].content.attachments;
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].digest, *digest);
        assert_eq!(files[0].check(), Ok(()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_cannot_carry_more_files_than_a_late_joining_node_can_receive() -> anyhow::Result<()>
{
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let fi = net.node(Country::Fi);
    let case = draft_request(fi, &finn, &portuguese).await?;
    let files = |n: u8| Content {
        attachments: vec![Attachment::new(
            format!("part-{n}.pdf"),
            "application/pdf",
            vec![n; 4 * 1024 * 1024],
        )],
        ..Content::default()
    };
    let send = CaseAction::Request(RequestAction::Send {
        reply_by: in_days(14),
    });
    // One step may carry 4 MiB; over the case's 6 MiB it is refused.
    let too_much = Content {
        attachments: vec![
            files(1).attachments[0].clone(),
            Attachment::new("more.pdf", "application/pdf", vec![2; 1]),
        ],
        ..Content::default()
    };
    let refused = fi.act(case, finn.clone(), send.clone(), too_much).await;
    assert!(
        matches!(
            refused,
            Err(imi_node::cases::CaseError::Attachment(
                imi_protocol::AttachmentError::TooLarge { .. }
            ))
        ),
        "{refused:?}"
    );
    let draft = status(fi, case);
    assert_eq!(state(fi, case).map(|s| s.status_key()), Some("draft"));
    fi.act(case, finn.clone(), send, files(1)).await?;
    let sent = status(fi, case);
    assert_ne!(sent, draft);
    let second = fi
        .act(
            case,
            finn.clone(),
            CaseAction::Request(RequestAction::Withdraw),
            files(2),
        )
        .await;
    assert!(
        matches!(
            second,
            Err(imi_node::cases::CaseError::Attachment(
                imi_protocol::AttachmentError::TooLarge { .. }
            ))
        ),
        "{second:?}"
    );
    assert_eq!(status(fi, case), sent, "nothing changed");
    Ok(())
}
