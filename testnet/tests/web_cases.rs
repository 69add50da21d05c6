//! Requests carried through the web UI's interface to the node
//! (`NodeInterface`, implemented by `NodeUi`), between a real Finnish and a
//! real Portuguese node: drafts keep what was written, a declined request
//! is withdrawn, and nobody outside the case's authorities reads it.

mod common;

use anyhow::{Context, Result};
use imi_node::ui::{NodeUi, UiOptions};
use imi_protocol::{
    Attachment, Content, Country, Language, Party, RequestAction, TaskKind, UserId,
};
use imi_testnet::ui::demo_finland_and_portugal;
use imi_testnet::wait_until;
use imi_web::{NewRequest, NodeError, NodeInterface, TaskFilter, TaskQuery};

fn all() -> TaskQuery {
    TaskQuery {
        filter: TaskFilter::All,
        by_update: false,
        offset: 0,
        limit: 50,
    }
}

async fn ui(node: &imi_node::node::Node<imi_node::cases::CaseApp>) -> Result<NodeUi> {
    Ok(NodeUi::new(
        node,
        UiOptions {
            training: true,
            default_language: Language::En,
        },
    )
    .await?)
}

type DemoNode = imi_node::node::Node<imi_node::cases::CaseApp>;

/// The id of the demo user `login` of `node`.
fn user(node: &DemoNode, login: &str) -> Result<UserId> {
    Ok(node.admin().user_by_login(login)?.user.id)
}

/// The Ordem dos Médicos, once the Finnish node knows it, and both nodes'
/// UIs.
async fn ordem_and_uis(fi: &DemoNode, pt: &DemoNode) -> Result<(Party, NodeUi, NodeUi)> {
    let ordem = Party {
        authority: pt.admin().user_by_login("pt-official")?.user.authority,
        country: Country::Pt,
    };
    wait_until(
        "the Finnish node to know the Ordem",
        common::WAIT,
        || async {
            fi.directory()
                .authority(Country::Pt, ordem.authority)
                .is_some()
        },
    )
    .await?;
    Ok((ordem, ui(fi).await?, ui(pt).await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_keeps_what_was_written_and_a_declined_request_is_withdrawn_on_both_sides()
-> Result<()> {
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    let (finn, portuguese, nurse) = (
        user(fi, "fi-official")?,
        user(pt, "pt-official")?,
        user(pt, "pt-nurses")?,
    );
    let (ordem, fi_ui, pt_ui) = ordem_and_uis(fi, pt).await?;

    // A draft: kept with what was written, waiting for its writer.
    let content = Content {
        question_set: Some("pq-general".into()),
        fields: [
            ("full-name".to_owned(), "Ana Sofia Martins".to_owned()),
            ("qualification-title".to_owned(), String::new()),
        ]
        .into(),
        text: None,
        attachments: vec![Attachment::new(
            "diploma.pdf",
            "application/pdf",
            b"%PDF-1.4 diploma".to_vec(),
        )],
    };
    let case = fi_ui
        .new_request(
            finn,
            NewRequest {
                to: ordem,
                area: "professional-qualifications".into(),
                content: content.clone(),
                send: None,
            },
        )
        .await?;
    let draft = fi_ui.case(finn, case).await?;
    assert_eq!(draft.state.status_key(), "draft");
    assert_eq!(draft.request, content);
    assert!(draft.allowed.contains(&"send") && draft.allowed.contains(&"discard-draft"));
    let tasks = fi_ui.tasks(finn, all()).await?.tasks;
    assert!(
        tasks
            .iter()
            .any(|t| t.case == case && t.kind == TaskKind::CompleteDraft && t.personal),
        "{tasks:?}"
    );

    // Sent from the draft: the Portuguese side gets what the draft held.
    let reply_by = fi_ui
        .tasks(finn, all())
        .await?
        .today
        .checked_add_days(14)
        .context("a date")?;
    fi_ui
        .act(
            finn,
            case,
            RequestAction::Send { reply_by },
            Content::default(),
        )
        .await?;
    wait_until(
        "the request on the Portuguese node",
        common::WAIT,
        || async { pt_ui.case(portuguese, case).await.is_ok() },
    )
    .await?;
    let incoming = pt_ui.case(portuguese, case).await?;
    assert_eq!(incoming.request, content);
    assert!(incoming.allowed.contains(&"accept") && incoming.allowed.contains(&"decline"));
    assert!(
        incoming.requester.name.contains("Valvira"),
        "{:?}",
        incoming.requester
    );

    // The draft's file came with it, whole.
    let sent_step = incoming.history[0].step;
    assert_eq!(
        pt_ui.attachment(portuguese, case, sent_step, 0).await?,
        content.attachments[0]
    );
    assert!(matches!(
        pt_ui.attachment(portuguese, case, sent_step, 1).await,
        Err(NodeError::NotFound(_))
    ));

    // Nobody else on the node reads it or its files, and nobody else may act.
    assert!(matches!(
        pt_ui.case(nurse, case).await,
        Err(NodeError::NotAllowed(_))
    ));
    assert!(matches!(
        pt_ui.attachment(nurse, case, sent_step, 0).await,
        Err(NodeError::NotAllowed(_))
    ));
    assert!(matches!(
        pt_ui
            .act(nurse, case, RequestAction::Accept, Content::default())
            .await,
        Err(NodeError::NotAllowed(_))
    ));
    // The requester may not accept its own request.
    assert!(matches!(
        fi_ui
            .act(finn, case, RequestAction::Accept, Content::default())
            .await,
        Err(NodeError::Invalid(_))
    ));

    // Declined as not competent, then withdrawn: both sides end withdrawn.
    pt_ui
        .act(portuguese, case, RequestAction::Decline, Content::default())
        .await?;
    wait_until("the decline on the Finnish node", common::WAIT, || async {
        fi_ui
            .case(finn, case)
            .await
            .is_ok_and(|v| v.state.status_key() == "declined")
    })
    .await?;
    let declined = fi_ui.case(finn, case).await?;
    assert!(declined.allowed.contains(&"withdraw") && declined.allowed.contains(&"forward"));
    fi_ui
        .act(finn, case, RequestAction::Withdraw, Content::default())
        .await?;
    wait_until(
        "the withdrawal on the Portuguese node",
        common::WAIT,
        || async {
            pt_ui
                .case(portuguese, case)
                .await
                .is_ok_and(|v| v.state.status_key() == "withdrawn")
        },
    )
    .await?;
    let history = pt_ui.case(portuguese, case).await?.history;
    let steps: Vec<&str> = history.iter().map(|h| h.action).collect();
    assert_eq!(steps, ["modify-draft", "send", "decline", "withdraw"]);
    assert!(pt_ui.tasks(portuguese, all()).await?.tasks.is_empty());

    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocator_gives_an_incoming_request_to_one_handler_whose_task_it_becomes() -> Result<()>
{
    common::logs();
    let net = demo_finland_and_portugal().await?;
    let (fi, pt) = (net.node(Country::Fi), net.node(Country::Pt));
    let (finn, handler, allocator, nurse) = (
        user(fi, "fi-official")?,
        user(pt, "pt-official")?,
        user(pt, "pt-allocator")?,
        user(pt, "pt-nurses")?,
    );
    let (ordem, fi_ui, pt_ui) = ordem_and_uis(fi, pt).await?;
    let reply_by = fi_ui
        .tasks(finn, all())
        .await?
        .today
        .checked_add_days(14)
        .context("a date")?;
    let case = fi_ui
        .new_request(
            finn,
            NewRequest {
                to: ordem,
                area: "professional-qualifications".into(),
                content: Content::default(),
                send: Some(reply_by),
            },
        )
        .await?;
    wait_until(
        "the request in the allocator's tasks",
        common::WAIT,
        || async {
            pt_ui
                .tasks(allocator, all())
                .await
                .is_ok_and(|l| l.tasks.iter().any(|t| t.case == case))
        },
    )
    .await?;

    // The allocator may allocate (and accept), not answer; the choice is
    // the authority's request handlers.
    let seen = pt_ui.case(allocator, case).await?;
    assert!(seen.allowed.contains(&"allocate") && !seen.allowed.contains(&"answer"));
    assert_eq!(seen.handlers, [(handler, "Maria Silva".to_owned())]);
    // A request handler of the Ordem may not allocate.
    assert!(
        !pt_ui
            .case(handler, case)
            .await?
            .allowed
            .contains(&"allocate")
    );

    // Someone of another authority is refused, and nothing changes.
    let wrong = pt_ui
        .act(
            allocator,
            case,
            RequestAction::Allocate { handler: nurse },
            Content::default(),
        )
        .await;
    assert!(matches!(wrong, Err(NodeError::Invalid(_))), "{wrong:?}");
    assert_eq!(pt_ui.case(allocator, case).await?.handler, None);

    pt_ui
        .act(
            allocator,
            case,
            RequestAction::Allocate { handler },
            Content::default(),
        )
        .await?;
    let mine = TaskQuery {
        filter: TaskFilter::Mine,
        ..all()
    };
    let handlers_tasks = pt_ui.tasks(handler, mine).await?.tasks;
    assert!(
        handlers_tasks
            .iter()
            .any(|t| t.case == case && t.kind == TaskKind::AcceptRequest && t.personal),
        "{handlers_tasks:?}"
    );
    assert!(
        !pt_ui
            .tasks(allocator, all())
            .await?
            .tasks
            .iter()
            .any(|t| t.case == case),
        "allocated, the request left the authority's list"
    );
    let allocated = pt_ui.case(handler, case).await?;
    assert_eq!(allocated.handler.as_deref(), Some("Maria Silva"));

    // The step reaches the requester's node, which keeps the case's log.
    wait_until(
        "the allocation in the Finnish history",
        common::WAIT,
        || async {
            fi_ui
                .case(finn, case)
                .await
                .is_ok_and(|v| v.history.iter().any(|h| h.action == "allocate"))
        },
    )
    .await?;
    assert_eq!(fi_ui.case(finn, case).await?.handler, None);

    let mut net = net;
    for node in net.nodes.drain(..) {
        node.shutdown().await;
    }
    Ok(())
}
