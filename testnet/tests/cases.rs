//! Cases between real nodes: concurrent steps settle the same way on both
//! sides, and every step leaves the tasks, dates and clocks it implies.

mod common;

use common::*;
use imi_node::cases::StepOutcome;
use imi_node::delivery;
use imi_protocol::{
    Alert, AlertAction, CaseAction, CaseId, CaseState, Content, Country, Rating, Request,
    RequestAction, Role, TaskKind, Timestamp,
};
use imi_testnet::{Testnet, wait_until};

async fn sent_request(
    net: &Testnet,
    finn: &imi_protocol::Actor,
    portuguese: &imi_protocol::Actor,
) -> anyhow::Result<CaseId> {
    let fi = net.node(Country::Fi);
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        finn,
        "professional-qualifications",
        party(portuguese),
        Timestamp::from_millis(0),
    )?;
    fi.create(CaseState::Request(draft), finn.clone()).await?;
    fi.act(
        case,
        finn.clone(),
        CaseAction::Request(RequestAction::Send {
            reply_by: in_days(14),
        }),
        Content::default(),
    )
    .await?;
    let pt = net.node(Country::Pt);
    wait_until("the request to reach Portugal", WAIT, || async {
        status(pt, case).as_deref() == Some("sent")
    })
    .await?;
    Ok(case)
}

async fn settled(net: &Testnet) -> anyhow::Result<()> {
    wait_until("every outbox to empty", WAIT, || async {
        net.nodes.iter().all(|n| {
            n.fan_out_waiting().unwrap() == 0 && delivery::counts(n.store()).unwrap().outbox == 0
        })
    })
    .await
}

/// The requester withdraws while the responder accepts, each before
/// hearing of the other: both nodes end withdrawn, with the same history,
/// and the Portuguese official reads that the acceptance was overtaken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_and_accept_at_the_same_moment_end_the_same_on_both_nodes() -> anyhow::Result<()> {
    let (mut net, finn, portuguese) = finland_and_portugal(false).await?;
    let case = sent_request(&net, &finn, &portuguese).await?;

    // Portugal goes away; Finland withdraws, and goes away in turn.
    let pt_stopped = net.stop(Country::Pt).await?;
    net.node(Country::Fi)
        .act(
            case,
            finn.clone(),
            CaseAction::Request(RequestAction::Withdraw),
            Content::default(),
        )
        .await?;
    let fi_stopped = net.stop(Country::Fi).await?;
    // Portugal comes back without having heard of the withdrawal, and accepts.
    net.restart(pt_stopped).await?;
    let accepted = net
        .node(Country::Pt)
        .act(
            case,
            portuguese.clone(),
            CaseAction::Request(RequestAction::Accept),
            Content::default(),
        )
        .await?;
    assert_eq!(accepted.state().describe(), "accepted");
    // Finland comes back: the two steps cross.
    net.restart(fi_stopped).await?;
    net.wait_connected(WAIT).await?;
    settled(&net).await?;

    let fi = net.node(Country::Fi).case(case)?.expect("Finland holds it");
    let pt = net
        .node(Country::Pt)
        .case(case)?
        .expect("Portugal holds it");
    assert_eq!(fi.state().describe(), "withdrawn");
    assert_eq!(pt.state().describe(), "withdrawn");
    assert_eq!(fi.replica.log(), pt.replica.log());
    assert!(pt.replica.pending().is_empty());
    let history = pt.history();
    let acceptance = history
        .iter()
        .find(|h| h.action == "accept the request")
        .expect("the acceptance is in the history");
    match &acceptance.outcome {
        StepOutcome::Overtaken {
            by_action, reason, ..
        } => {
            assert_eq!(by_action.as_deref(), Some("withdraw the request"));
            assert!(reason.contains("withdrawn"), "{reason}");
        }
        other => panic!("the acceptance must be overtaken, not {other:?}"),
    }
    // Nothing is left for the Portuguese authority to do.
    let tasks = net.node(Country::Pt).tasks_for(&portuguese)?;
    assert!(tasks.iter().all(|t| t.case != case), "{tasks:?}");
    Ok(())
}

/// My tasks follows the seed scenario on both nodes, with the reply-by
/// date; a closed request starts the data-protection clock on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_tasks_follow_a_request_on_both_nodes() -> anyhow::Result<()> {
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let case = sent_request(&net, &finn, &portuguese).await?;
    let kinds = |node: &imi_node::node::Node<imi_node::cases::CaseApp>,
                 actor: &imi_protocol::Actor| {
        node.tasks_for(actor)
            .unwrap()
            .into_iter()
            .filter(|t| t.case == case)
            .map(|t| t.kind)
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(pt, &portuguese), vec![TaskKind::AcceptRequest]);
    let due = pt.tasks_for(&portuguese)?[0].due;
    assert_eq!(due, Some(in_days(14)));
    assert!(kinds(fi, &finn).is_empty());
    // The coordinators' overdue list: not yet overdue, due within 15 days.
    assert!(pt.due_before(in_days(0))?.iter().all(|d| d.case != case));
    assert!(pt.due_before(in_days(15))?.iter().any(|d| d.case == case));

    let step = |action| CaseAction::Request(action);
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
            reply_by: in_days(30),
        }),
        Content::default(),
    )
    .await?;
    wait_until("the proposal to reach Finland", WAIT, || async {
        kinds(fi, &finn) == vec![TaskKind::ReviewDeadline]
    })
    .await?;
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::AcceptDeadline),
        Content::default(),
    )
    .await?;
    wait_until("the new date to reach Portugal", WAIT, || async {
        pt.tasks_for(&portuguese)
            .unwrap()
            .iter()
            .any(|t| t.case == case && t.due == Some(in_days(30)))
    })
    .await?;
    assert_eq!(kinds(pt, &portuguese), vec![TaskKind::AnswerRequest]);
    pt.act(
        case,
        portuguese.clone(),
        step(RequestAction::Answer { complete: true }),
        Content::default(),
    )
    .await?;
    wait_until("the answer to reach Finland", WAIT, || async {
        kinds(fi, &finn) == vec![TaskKind::ReviewAnswer]
    })
    .await?;
    assert!(kinds(pt, &portuguese).is_empty());
    assert!(pt.due_before(in_days(60))?.iter().all(|d| d.case != case));
    fi.act(
        case,
        finn.clone(),
        step(RequestAction::Close {
            rating: Rating {
                timeliness: 5,
                effort: 4,
            },
        }),
        Content::default(),
    )
    .await?;
    settled(&net).await?;
    assert!(kinds(fi, &finn).is_empty());
    for node in [fi, pt] {
        let tomorrow = in_days(1).start();
        assert!(
            node.closed_before(tomorrow)?.iter().any(|d| d.case == case),
            "{} keeps the closure date",
            node.address()
        );
    }
    Ok(())
}

/// An alert reaches every addressed country, and every acknowledgement
/// reaches every holder: all three nodes end with the same alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_of_an_alert_sees_every_acknowledgement() -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder()
        .countries([Country::Fi, Country::Pt, Country::Es])
        .start()
        .await?;
    net.wait_connected(WAIT).await?;
    let coordinator = |country| {
        official(
            country,
            &[
                Role::RequestHandler,
                Role::AlertCoordinator,
                Role::NationalCoordinator,
            ],
        )
    };
    let (finn, portuguese, spaniard) = (
        coordinator(Country::Fi),
        coordinator(Country::Pt),
        coordinator(Country::Es),
    );
    for node in &net.nodes {
        for actor in [&finn, &portuguese, &spaniard] {
            node.set_authority_route(
                imi_protocol::Party::of(actor),
                net.node(actor.country).address(),
            )
            .await?;
        }
    }
    let fi = net.node(Country::Fi);
    let case = CaseId::new();
    let alert = Alert::draft(
        case,
        &finn,
        "professional-qualifications",
        [Country::Pt, Country::Es].into(),
        Timestamp::from_millis(0),
    )?;
    fi.create(CaseState::Alert(alert), finn.clone()).await?;
    for action in [AlertAction::Submit, AlertAction::Validate] {
        fi.act(
            case,
            finn.clone(),
            CaseAction::Alert(action),
            Content::default(),
        )
        .await?;
    }
    for actor in [&portuguese, &spaniard] {
        let node = net.node(actor.country);
        wait_until("the alert to arrive", WAIT, || async {
            node.tasks_for(actor)
                .unwrap()
                .iter()
                .any(|t| t.case == case && t.kind == TaskKind::AcknowledgeAlert)
        })
        .await?;
        node.act(
            case,
            actor.clone(),
            CaseAction::Alert(AlertAction::Acknowledge),
            Content::default(),
        )
        .await?;
    }
    settled(&net).await?;
    let states: Vec<_> = net.nodes.iter().map(|n| state(n, case)).collect();
    let CaseState::Alert(alert) = states[0].clone().expect("Finland holds it") else {
        panic!("not an alert");
    };
    assert_eq!(alert.acknowledged().len(), 2);
    assert!(states.iter().all(|s| *s == states[0]), "{states:?}");
    for actor in [&portuguese, &spaniard] {
        assert!(
            net.node(actor.country)
                .tasks_for(actor)?
                .iter()
                .all(|t| t.case != case)
        );
    }
    Ok(())
}

/// Regression: `imi-node drill` wrote all its drafts first and sent them
/// after, so a drill stopped in between left drafts behind for good. A
/// case is now written and sent in one transaction: a request that cannot
/// be sent leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_request_that_cannot_be_sent_leaves_no_draft_behind() -> anyhow::Result<()> {
    logs();
    let net = Testnet::builder().countries([Country::Fi]).start().await?;
    let fi = net.node(Country::Fi);
    let finn = official(Country::Fi, &[Role::RequestHandler]);
    fi.set_authority_route(imi_protocol::Party::of(&finn), fi.address())
        .await?;
    let nowhere = official(Country::Se, &[Role::RequestHandler]);
    let case = CaseId::new();
    let draft = Request::draft(
        case,
        &finn,
        "professional-qualifications",
        party(&nowhere),
        Timestamp::from_millis(0),
    )?;
    let before = fi.case_count()?;
    let refused = fi
        .open_case(
            CaseState::Request(draft),
            finn.clone(),
            CaseAction::Request(RequestAction::Send {
                reply_by: in_days(14),
            }),
            Content::default(),
        )
        .await;
    assert!(
        matches!(refused, Err(imi_node::cases::CaseError::NoRoute(_))),
        "{refused:?}"
    );
    assert_eq!(fi.case_count()?, before);
    assert!(fi.case(case)?.is_none());
    assert!(fi.tasks_for(&finn)?.is_empty(), "no draft task either");
    Ok(())
}

/// My tasks shows one page at a time: every page is the same slice of the
/// whole list (the official's own drafts, undated, after the authority's
/// incoming requests, soonest due first), with the counts of the whole
/// list, overdue ones included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_my_tasks_is_the_same_slice_as_the_whole_list() -> anyhow::Result<()> {
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let fi = net.node(Country::Fi);
    let pt = net.node(Country::Pt);
    let today = imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now()).date();
    for i in 0..12i64 {
        let draft = imi_protocol::Request::draft(
            imi_protocol::CaseId::new(),
            &finn,
            "professional-qualifications",
            common::party(&portuguese),
            imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now()),
        )?;
        fi.open_case(
            imi_protocol::CaseState::Request(draft),
            finn.clone(),
            imi_protocol::CaseAction::Request(imi_protocol::RequestAction::Send {
                reply_by: today.checked_add_days(20 - i % 5).expect("a date"),
            }),
            imi_protocol::Content::default(),
        )
        .await?;
    }
    for _ in 0..3 {
        let draft = imi_protocol::Request::draft(
            imi_protocol::CaseId::new(),
            &portuguese,
            "professional-qualifications",
            common::party(&finn),
            imi_protocol::Timestamp::from_system_time(std::time::SystemTime::now()),
        )?;
        pt.create(imi_protocol::CaseState::Request(draft), portuguese.clone())
            .await?;
    }
    wait_until("the requests on the Portuguese node", WAIT, || async {
        pt.tasks_for(&portuguese).is_ok_and(|t| t.len() == 15)
    })
    .await?;
    let whole = pt.tasks_for(&portuguese)?;
    let owners = imi_node::cases::tasks::owners_of(&portuguese);
    let desk = pt.cases();
    for (offset, limit) in [(0, 50), (0, 5), (5, 5), (10, 5), (11, 3), (14, 10), (20, 5)] {
        let page = desk.task_page(&owners, today, false, offset, limit)?;
        assert_eq!(page.total, 15);
        assert_eq!(page.overdue, 0);
        let expected: Vec<_> = whole.iter().skip(offset).take(limit).cloned().collect();
        assert_eq!(page.rows, expected, "offset {offset}, limit {limit}");
    }
    // Seen from a later day, the dated ones are overdue; the drafts never.
    let later = today.checked_add_days(30).expect("a date");
    let overdue = desk.task_page(&owners, later, true, 0, 50)?;
    assert_eq!(
        (overdue.total, overdue.overdue, overdue.rows.len()),
        (12, 12, 12)
    );
    assert!(overdue.rows.iter().all(|r| r.is_overdue(later)));
    Ok(())
}
