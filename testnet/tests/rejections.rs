//! Bad envelopes from an admitted peer: each is refused with a named reason
//! in a signed receipt; no case changes. A refused envelope the peer sent in
//! its own name to this node is kept with its rejection (both sides keep
//! it) and uses up its sequence number, so the case's later messages go on.

mod common;

use common::*;
use imi_node::cases::CaseState;
use imi_node::delivery::{self, DeliverAnswer};
use imi_node::net::AppProtocol;
use imi_protocol::{
    Actor, Author, CaseAction, CaseId, CaseMessage, Content, Country, Entry, Header, MessageId,
    MessageKind, NodeAddress, Opening, Outcome, PROTOCOL_VERSION, ReceiptBody, ReceiptOutcome,
    Request, RequestAction, SigningKey, Step, StepId, Timestamp, VerifyingKey, open_receipt, seal,
};
use imi_testnet::Testnet;

struct Bench {
    net: Testnet,
    fi_key: SigningKey,
    pt_key: VerifyingKey,
    finn: Actor,
    portuguese: Actor,
}

async fn bench() -> anyhow::Result<Bench> {
    let (net, finn, portuguese) = finland_and_portugal(false).await?;
    let dirs = &net.federation.nodes;
    let fi_key = SigningKey::from_bytes(&dirs[0].key.secret_seed());
    let pt_key = VerifyingKey::from_bytes(&dirs[1].key.public_key_bytes())?;
    Ok(Bench {
        net,
        fi_key,
        pt_key,
        finn,
        portuguese,
    })
}

impl Bench {
    fn pt_address(&self) -> NodeAddress {
        self.net.node(Country::Pt).address().clone()
    }

    /// A Finnish step on a fresh request, as the Finnish node (the case's
    /// sequencer) would seal it for Portugal: the first entry of the log,
    /// with the case as it was written.
    fn step(&self, case: CaseId, actor: &Actor, action: RequestAction) -> CaseMessage {
        self.entry(case, actor, action, 1)
    }

    /// A later Finnish step: entry `position` of the case's log (the first
    /// one carries the case as it was written).
    fn entry(
        &self,
        case: CaseId,
        actor: &Actor,
        action: RequestAction,
        position: u64,
    ) -> CaseMessage {
        let draft = Request::draft(
            case,
            &self.finn,
            "professional-qualifications",
            party(&self.portuguese),
            Timestamp::from_millis(0),
        )
        .unwrap();
        let fi = self.net.node(Country::Fi).address().clone();
        CaseMessage::Log {
            opening: (position == 1).then(|| {
                Box::new(Opening {
                    sequencer: fi.clone(),
                    initial: CaseState::Request(draft),
                    entries: vec![],
                })
            }),
            entries: vec![Entry {
                position,
                node: fi,
                step: Step {
                    id: StepId::new(),
                    actor: actor.clone(),
                    at: Timestamp::from_millis(now_ms()),
                    action: CaseAction::Request(action),
                    content: Content::default(),
                },
                outcome: Outcome::Applied,
            }],
        }
    }

    fn header(&self, case: CaseId, sequence: u64, recipient: NodeAddress) -> Header {
        Header {
            version: PROTOCOL_VERSION,
            id: MessageId::new(),
            sender: self.net.node(Country::Fi).address().clone(),
            author: Author {
                authority: self.finn.authority,
                user: Some(self.finn.user),
            },
            recipients: vec![recipient],
            case,
            sequence,
            timestamp_ms: now_ms(),
            kind: MessageKind::Request,
        }
    }

    fn send_step(&self) -> RequestAction {
        RequestAction::Send {
            reply_by: in_days(10),
        }
    }

    /// Delivers raw bytes from the Finnish node to the Portuguese one over
    /// the real delivery protocol and returns PT's answer.
    async fn deliver(&self, bytes: Vec<u8>) -> anyhow::Result<DeliverAnswer> {
        let mut answers = self
            .request(delivery::encode_batch([bytes.as_slice()]))
            .await?;
        anyhow::ensure!(
            answers.len() == 1,
            "{} answers to one envelope",
            answers.len()
        );
        Ok(answers.remove(0))
    }

    /// Sends a whole deliver request (framed envelopes, or anything) from
    /// the Finnish node to the Portuguese one and returns PT's answers.
    async fn request(&self, request: Vec<u8>) -> anyhow::Result<Vec<DeliverAnswer>> {
        let answer = self
            .net
            .node(Country::Fi)
            .net()
            .request(AppProtocol::Deliver, "PT/pt-1", request)
            .await?;
        Ok(postcard::from_bytes(&answer)?)
    }

    /// The signed receipt in `answer`, checked against PT's key.
    fn receipt(&self, answer: DeliverAnswer) -> ReceiptBody {
        match answer {
            DeliverAnswer::Receipt(bytes) => open_receipt(&bytes, &self.pt_key).unwrap(),
            other => panic!("expected a receipt, got {other:?}"),
        }
    }

    /// Checks that PT changed no case but kept envelope `id` as rejected
    /// with `code`, next to its receipt.
    fn assert_rejection_kept(
        &self,
        before: (u64, delivery::DeliveryCounts),
        id: MessageId,
        code: &str,
    ) {
        let after = self.pt_snapshot();
        assert_eq!(after.0, before.0, "no case was created or changed");
        assert_eq!(
            after.1.messages,
            before.1.messages + 1,
            "the rejection is kept"
        );
        assert_eq!(after.1.inbox, before.1.inbox + 1, "its receipt is kept");
        let kept = delivery::message(self.net.node(Country::Pt).store(), id)
            .unwrap()
            .expect("the rejected envelope is stored");
        assert_eq!(kept.direction, delivery::Direction::Inbound);
        assert!(
            matches!(&kept.status, delivery::MessageStatus::Rejected { code: c, .. } if c == code),
            "{:?}",
            kept.status
        );
    }

    /// What PT stores, to prove a refusal changed nothing.
    fn pt_snapshot(&self) -> (u64, delivery::DeliveryCounts) {
        let pt = self.net.node(Country::Pt);
        (
            pt.case_count().unwrap(),
            delivery::counts(pt.store()).unwrap(),
        )
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rejected_code(receipt: &ReceiptBody) -> &str {
    match &receipt.outcome {
        ReceiptOutcome::Rejected { code, reason } => {
            assert!(!reason.is_empty());
            code
        }
        ReceiptOutcome::Accepted => panic!("the envelope was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_is_rejected_and_changes_no_case() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    let forger = SigningKey::from_bytes(&[7; 32]);
    let step = b.step(case, &b.finn, b.send_step());
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &forger)?;
    let id = envelope.header().id;
    let receipt = b.receipt(b.deliver(envelope.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "bad-signature");
    b.assert_rejection_kept(before, id, "bad-signature");
    assert!(b.net.node(Country::Pt).case(case)?.is_none());
    Ok(())
}

/// Regression: a rejection of an envelope that failed verification did not
/// use up its sequence number, so every later message of the case was
/// answered "retry later", for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_does_not_block_the_next_ones() -> anyhow::Result<()> {
    let b = bench().await?;
    let case = CaseId::new();
    let forger = SigningKey::from_bytes(&[7; 32]);
    let step = b.step(case, &b.finn, b.send_step());
    let forged = seal(b.header(case, 1, b.pt_address()), &step, &forger)?;
    let receipt = b.receipt(b.deliver(forged.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "bad-signature");
    // The sender moves on: the same step, sealed properly, as message 2.
    let genuine = seal(b.header(case, 2, b.pt_address()), &step, &b.fi_key)?;
    let receipt = b.receipt(b.deliver(genuine.into_bytes()).await?);
    assert!(receipt.outcome.is_accepted(), "{:?}", receipt.outcome);
    // A step the case refuses (message 3) does not hold message 4 back either.
    let close = RequestAction::Close {
        rating: imi_protocol::Rating {
            timeliness: 3,
            effort: 3,
        },
    };
    let refused = seal(
        b.header(case, 3, b.pt_address()),
        &b.entry(case, &b.finn, close, 2),
        &b.fi_key,
    )?;
    let receipt = b.receipt(b.deliver(refused.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "forbidden-transition");
    let withdraw = seal(
        b.header(case, 4, b.pt_address()),
        &b.entry(case, &b.finn, RequestAction::Withdraw, 2),
        &b.fi_key,
    )?;
    let receipt = b.receipt(b.deliver(withdraw.into_bytes()).await?);
    assert!(receipt.outcome.is_accepted(), "{:?}", receipt.outcome);
    assert_eq!(
        status(b.net.node(Country::Pt), case).as_deref(),
        Some("withdrawn")
    );
    // Portugal's history of the case: two rejections, two steps taken.
    let kept = delivery::case_messages(b.net.node(Country::Pt).store(), case)?;
    let codes: Vec<Option<&str>> = kept
        .iter()
        .map(|m| match &m.status {
            delivery::MessageStatus::Rejected { code, .. } => Some(code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            Some("bad-signature"),
            None,
            Some("forbidden-transition"),
            None
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_body_is_rejected_and_changes_no_case() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    let step = b.step(case, &b.finn, b.send_step());
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let id = envelope.header().id;
    let mut bytes = envelope.into_bytes();
    // Flip one bit in the body, just before the signature.
    let at = bytes.len() - 64 - 3;
    bytes[at] ^= 0x01;
    let receipt = b.receipt(b.deliver(bytes).await?);
    assert_eq!(rejected_code(&receipt), "bad-signature");
    b.assert_rejection_kept(before, id, "bad-signature");
    assert!(b.net.node(Country::Pt).case(case)?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_for_another_node_is_rejected_and_changes_nothing() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    let step = b.step(case, &b.finn, b.send_step());
    let elsewhere: NodeAddress = "DE/de-1".parse()?;
    let envelope = seal(b.header(case, 1, elsewhere), &step, &b.fi_key)?;
    let receipt = b.receipt(b.deliver(envelope.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "wrong-recipient");
    assert_eq!(b.pt_snapshot(), before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_transition_is_rejected_and_changes_no_case() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    // Closing a request that was never sent.
    let close = RequestAction::Close {
        rating: imi_protocol::Rating {
            timeliness: 3,
            effort: 3,
        },
    };
    let step = b.step(case, &b.finn, close);
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let id = envelope.header().id;
    let receipt = b.receipt(b.deliver(envelope.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "forbidden-transition");
    b.assert_rejection_kept(before, id, "forbidden-transition");
    assert!(b.net.node(Country::Pt).case(case)?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_speak_for_another_countrys_official() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    // Finland signs a step claiming a Portuguese official accepted.
    let step = b.step(case, &b.portuguese, RequestAction::Accept);
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let receipt = b.receipt(b.deliver(envelope.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "foreign-actor");
    assert_eq!(b.pt_snapshot().0, before.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_envelope_gets_the_same_receipt_and_is_applied_once() -> anyhow::Result<()> {
    let b = bench().await?;
    let pt = b.net.node(Country::Pt);
    let case = CaseId::new();
    let step = b.step(case, &b.finn, b.send_step());
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let first = b.deliver(envelope.as_bytes().to_vec()).await?;
    let DeliverAnswer::Receipt(first_bytes) = first.clone() else {
        panic!("no receipt: {first:?}")
    };
    assert!(b.receipt(first).outcome.is_accepted());
    let state = pt.case(case)?.expect("the request arrived");
    let snapshot = b.pt_snapshot();

    // The very same bytes again: the very same receipt, nothing applied twice.
    let again = b.deliver(envelope.as_bytes().to_vec()).await?;
    assert!(matches!(&again, DeliverAnswer::Receipt(bytes) if *bytes == first_bytes));
    assert_eq!(pt.case(case)?.unwrap(), state);
    assert_eq!(b.pt_snapshot(), snapshot);

    // The same step re-sealed as a new message with the old sequence.
    let replay = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let receipt = b.receipt(b.deliver(replay.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "stale-sequence");
    assert_eq!(pt.case(case)?.unwrap(), state);
    assert!(matches!(state.state(), CaseState::Request(ref r) if r.sequence() == 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_bytes_get_a_refusal_and_the_link_stays_up() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let answer = b.deliver(b"definitely not an envelope".to_vec()).await?;
    assert!(
        matches!(answer, DeliverAnswer::Unreadable { ref reason } if reason.contains("malformed"))
    );
    assert_eq!(b.pt_snapshot(), before);
    // The node keeps working: a real request still goes through.
    let case = CaseId::new();
    let step = b.step(case, &b.finn, b.send_step());
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    assert!(
        b.receipt(b.deliver(envelope.into_bytes()).await?)
            .outcome
            .is_accepted()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_envelope_of_a_batch_gets_its_own_answer() -> anyhow::Result<()> {
    let b = bench().await?;
    let pt = b.net.node(Country::Pt);
    let good = CaseId::new();
    let forged = CaseId::new();
    let envelope = seal(
        b.header(good, 1, b.pt_address()),
        &b.step(good, &b.finn, b.send_step()),
        &b.fi_key,
    )?;
    let forgery = seal(
        b.header(forged, 1, b.pt_address()),
        &b.step(forged, &b.finn, b.send_step()),
        &SigningKey::from_bytes(&[7; 32]),
    )?;
    let request = delivery::encode_batch([
        envelope.as_bytes(),
        forgery.as_bytes(),
        b"not an envelope".as_slice(),
    ]);
    let answers = b.request(request).await?;
    let [accepted, rejected, unreadable] = <[DeliverAnswer; 3]>::try_from(answers)
        .map_err(|a| anyhow::anyhow!("{} answers to three envelopes", a.len()))?;
    assert!(b.receipt(accepted).outcome.is_accepted());
    assert_eq!(rejected_code(&b.receipt(rejected)), "bad-signature");
    assert!(matches!(unreadable, DeliverAnswer::Unreadable { .. }));
    assert!(pt.case(good)?.is_some());
    assert!(pt.case(forged)?.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_inside_an_envelope_is_refused_whole() -> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    let envelope = seal(
        b.header(case, 1, b.pt_address()),
        &b.step(case, &b.finn, b.send_step()),
        &b.fi_key,
    )?;
    let mut request = delivery::encode_batch([envelope.as_bytes()]);
    request.truncate(request.len() - 10);
    let answers = b.request(request).await?;
    assert!(
        matches!(answers.as_slice(), [DeliverAnswer::Unreadable { reason }] if reason.contains("inside an envelope")),
        "{answers:?}"
    );
    assert_eq!(b.pt_snapshot(), before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_does_not_match_its_digest_is_rejected_and_changes_no_case()
-> anyhow::Result<()> {
    let b = bench().await?;
    let before = b.pt_snapshot();
    let case = CaseId::new();
    let mut step = b.step(case, &b.finn, b.send_step());
    let CaseMessage::Log { entries, .. } = &mut step else {
        unreachable!("a log message")
    };
    let mut diploma =
        imi_protocol::Attachment::new("diploma.pdf", "application/pdf", b"%PDF diploma".to_vec());
    // Changed after its digest was taken (a node, or the way, altered it).
    diploma.bytes[5] = b'X';
    entries[0].step.content.attachments.push(diploma);
    let envelope = seal(b.header(case, 1, b.pt_address()), &step, &b.fi_key)?;
    let id = envelope.header().id;
    let receipt = b.receipt(b.deliver(envelope.into_bytes()).await?);
    assert_eq!(rejected_code(&receipt), "bad-attachment");
    b.assert_rejection_kept(before, id, "bad-attachment");
    assert!(b.net.node(Country::Pt).case(case)?.is_none());
    Ok(())
}
