//! Every party of a case converges, whatever the network does.
//!
//! A simulated federation of 2–5 nodes, one authority each, takes random
//! steps on one case (a request, an alert or a notification) while the
//! network delays, reorders, duplicates and drops messages and nodes
//! restart. Like the real outbox, a node keeps each message until the
//! recipient has taken it, and sends it again. When everything has arrived,
//! every holder of the case must have the same log, the same state, and no
//! step left pending.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::log::{CaseMessage, Outcome, Outgoing, Replica, Step};
use super::{CaseState, TaskKind, TaskOwner};
use crate::{
    Actor, Alert, AlertAction, AuthorityId, CaseAction, CaseId, Content, Country, Date,
    Destination, NodeAddress, Notification, NotificationAction, Party, Rating, Request,
    RequestAction, Role, StepId, Timestamp, UserId,
};

const COUNTRIES: [Country; 5] = [
    Country::Fi,
    Country::Pt,
    Country::Es,
    Country::De,
    Country::Fr,
];
const START_MS: u64 = 1_793_611_800_000; // 2026-11-02T09:30Z

fn address(i: usize) -> NodeAddress {
    format!("{}/node-{i}", COUNTRIES[i].code())
        .parse()
        .expect("a valid node address")
}

fn official(i: usize) -> Actor {
    Actor {
        user: UserId::from_parts(START_MS, i as u128 + 1),
        authority: AuthorityId::from_parts(START_MS, i as u128 + 100),
        country: COUNTRIES[i],
        roles: BTreeSet::from([
            Role::RequestHandler,
            Role::Allocator,
            Role::AlertCoordinator,
            Role::NationalCoordinator,
        ]),
    }
}

fn party(i: usize) -> Party {
    Party::of(&official(i))
}

/// What may travel: a message sent by `from` to `to`, as one copy on the wire.
#[derive(Debug, Clone)]
struct Wire {
    id: u64,
    from: usize,
    to: usize,
    message: CaseMessage,
}

#[derive(Debug, Default)]
struct SimNode {
    /// The node's stored copy of the case (survives restarts).
    replica: Option<Replica>,
    /// Messages waiting for the recipient to take them (survives restarts).
    outbox: BTreeMap<u64, Wire>,
}

struct Federation {
    nodes: Vec<SimNode>,
    /// Copies on the wire, in no particular order.
    wire: Vec<Wire>,
    next_id: u64,
    clock: u64,
    steps: u64,
}

impl Federation {
    fn new(parties: usize, kind: u8) -> Federation {
        let mut federation = Federation {
            nodes: (0..parties).map(|_| SimNode::default()).collect(),
            wire: Vec::new(),
            next_id: 0,
            clock: START_MS,
            steps: 0,
        };
        let creator = official(0);
        let at = Timestamp::from_millis(START_MS);
        let id = CaseId::from_parts(START_MS, 7);
        let recipients: BTreeSet<Country> = COUNTRIES[1..parties].iter().copied().collect();
        let (initial, opening_steps) = match kind % 3 {
            0 => (
                CaseState::Request(
                    Request::draft(id, &creator, "professional-qualifications", party(1), at)
                        .expect("a valid draft"),
                ),
                vec![CaseAction::Request(RequestAction::Send {
                    reply_by: at.date().checked_add_days(14).expect("a date"),
                })],
            ),
            1 => (
                CaseState::Alert(
                    Alert::draft(id, &creator, "professional-qualifications", recipients, at)
                        .expect("a valid draft"),
                ),
                vec![
                    CaseAction::Alert(AlertAction::Submit),
                    CaseAction::Alert(AlertAction::Validate),
                ],
            ),
            _ => (
                CaseState::Notification(
                    Notification::draft(id, &creator, "services", recipients, at)
                        .expect("a valid draft"),
                ),
                vec![CaseAction::Notification(NotificationAction::Send)],
            ),
        };
        federation.nodes[0].replica = Some(Replica::create(address(0), initial));
        for action in opening_steps {
            assert!(federation.act(0, action), "the opening steps apply");
        }
        federation
    }

    fn resolve(destination: &Destination) -> Option<NodeAddress> {
        let index = match destination {
            Destination::Authority(p) => COUNTRIES.iter().position(|c| *c == p.country)?,
            Destination::Country(c) => COUNTRIES.iter().position(|x| x == c)?,
        };
        Some(address(index))
    }

    fn index_of(address: &NodeAddress) -> usize {
        COUNTRIES
            .iter()
            .position(|c| *c == address.country)
            .expect("a simulated node")
    }

    fn queue(&mut self, from: usize, outgoing: Vec<Outgoing>) {
        for out in outgoing {
            self.next_id += 1;
            let wire = Wire {
                id: self.next_id,
                from,
                to: Self::index_of(&out.to),
                message: out.message,
            };
            self.nodes[from].outbox.insert(wire.id, wire.clone());
            self.wire.push(wire);
        }
    }

    /// Node `i` tries `action`; a step its view refuses is not taken.
    fn act(&mut self, i: usize, action: CaseAction) -> bool {
        self.clock += 60_000;
        self.steps += 1;
        let Some(replica) = self.nodes[i].replica.as_mut() else {
            return false;
        };
        let step = Step {
            id: StepId::from_parts(self.clock, self.steps as u128),
            actor: official(i),
            at: Timestamp::from_millis(self.clock),
            action,
            content: Content::default(),
        };
        match replica.act(step, &Self::resolve) {
            Ok(acted) => {
                self.queue(i, acted.outgoing);
                true
            }
            Err(_) => false,
        }
    }

    /// One copy on the wire reaches its recipient, which takes it (or asks
    /// for it again later); the sender's outbox lets it go once taken.
    fn deliver(&mut self, pick: usize, duplicate: bool) {
        if self.wire.is_empty() {
            return;
        }
        let index = pick % self.wire.len();
        let wire = if duplicate {
            self.wire[index].clone()
        } else {
            self.wire.swap_remove(index)
        };
        let from = address(wire.from);
        let node = &mut self.nodes[wire.to];
        let result = match node.replica.as_mut() {
            Some(replica) => replica
                .receive(&from, wire.message.clone(), &Self::resolve)
                .map_err(|e| e.to_string()),
            None => Replica::from_message(
                address(wire.to),
                CaseId::from_parts(START_MS, 7),
                &from,
                wire.message.clone(),
            )
            .map(|replica| {
                node.replica = Some(replica);
                vec![]
            })
            .map_err(|e| e.to_string()),
        };
        match result {
            Ok(outgoing) => {
                self.nodes[wire.from].outbox.remove(&wire.id);
                self.queue(wire.to, outgoing);
            }
            Err(reason) => assert!(
                reason.contains("does not carry it"),
                "only an entry that overtook the opening may be refused, not: {reason}"
            ),
        }
    }

    /// The sender's outbox sends everything not yet taken once more.
    fn resend(&mut self, i: usize) {
        let copies: Vec<Wire> = self.nodes[i].outbox.values().cloned().collect();
        self.wire.extend(copies);
    }

    /// A node stops and starts again: what was on its way to it is lost;
    /// its store (case and outbox) is kept.
    fn restart(&mut self, i: usize) {
        self.wire.retain(|w| w.to != i);
    }

    /// Lets the network settle: every outbox is sent until all are empty.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.nodes.iter().all(|n| n.outbox.is_empty()) {
                return;
            }
            for i in 0..self.nodes.len() {
                self.resend(i);
            }
            while !self.wire.is_empty() {
                self.deliver(0, false);
            }
        }
        panic!("the federation did not settle");
    }
}

/// A random action for node `i` in a federation of `n`.
fn action(kind: u8, choice: u8, arg: u8, n: usize, clock: u64) -> CaseAction {
    let today = Timestamp::from_millis(clock).date();
    let date = |days: u8| -> Date {
        today
            .checked_add_days(1 + i64::from(days % 20))
            .expect("a date")
    };
    let rating = Rating {
        timeliness: 1 + arg % 5,
        effort: 1 + (arg / 5) % 5,
    };
    match kind % 3 {
        0 => CaseAction::Request(match choice % 14 {
            0 => RequestAction::Accept,
            1 => RequestAction::Decline,
            2 => RequestAction::Forward {
                to: party(usize::from(arg) % n),
            },
            3 => RequestAction::Withdraw,
            4 => RequestAction::ProposeDeadline {
                reply_by: date(arg),
            },
            5 => RequestAction::AcceptDeadline,
            6 => RequestAction::RefuseDeadline,
            7 => RequestAction::RequestInformation,
            8 => RequestAction::ProvideInformation,
            9 => RequestAction::Answer {
                complete: arg.is_multiple_of(2),
            },
            10 => RequestAction::Close { rating },
            11 => RequestAction::Reopen {
                reply_by: date(arg),
            },
            12 => RequestAction::Allocate {
                handler: UserId::from_parts(1, u128::from(arg % 3)),
            },
            _ => RequestAction::Answer { complete: true },
        }),
        1 => CaseAction::Alert(match choice % 4 {
            0 | 1 => AlertAction::Acknowledge,
            2 => AlertAction::Rectify {
                add_recipients: BTreeSet::new(),
            },
            _ if arg.is_multiple_of(2) => AlertAction::Withdraw,
            _ => AlertAction::Close,
        }),
        _ => CaseAction::Notification(match choice % 4 {
            0 | 1 => NotificationAction::Acknowledge,
            2 => NotificationAction::Amend {
                add_recipients: BTreeSet::new(),
            },
            _ if arg.is_multiple_of(2) => NotificationAction::Withdraw,
            _ => NotificationAction::Close,
        }),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Act { node: u8, choice: u8, arg: u8 },
    Deliver { pick: u16 },
    Duplicate { pick: u16 },
    Drop { pick: u16 },
    Resend { node: u8 },
    Restart { node: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(node, choice, arg)| Op::Act { node, choice, arg }),
        6 => any::<u16>().prop_map(|pick| Op::Deliver { pick }),
        1 => any::<u16>().prop_map(|pick| Op::Duplicate { pick }),
        1 => any::<u16>().prop_map(|pick| Op::Drop { pick }),
        2 => any::<u8>().prop_map(|node| Op::Resend { node }),
        1 => any::<u8>().prop_map(|node| Op::Restart { node }),
    ]
}

/// Runs one schedule and checks that every holder converged. Returns the
/// number of overtaken steps, so the caller can see that conflicts happen.
fn run(parties: usize, kind: u8, ops: &[Op]) -> usize {
    let mut f = Federation::new(parties, kind);
    for op in ops {
        match *op {
            Op::Act { node, choice, arg } => {
                let i = usize::from(node) % parties;
                let action = action(kind, choice, arg, parties, f.clock);
                f.act(i, action);
            }
            Op::Deliver { pick } => f.deliver(usize::from(pick), false),
            Op::Duplicate { pick } => f.deliver(usize::from(pick), true),
            Op::Drop { pick } => {
                if !f.wire.is_empty() {
                    let index = usize::from(pick) % f.wire.len();
                    f.wire.swap_remove(index);
                }
            }
            Op::Resend { node } => f.resend(usize::from(node) % parties),
            Op::Restart { node } => f.restart(usize::from(node) % parties),
        }
    }
    f.settle();

    let sequencer = f.nodes[0]
        .replica
        .as_ref()
        .expect("the sequencer holds the case");
    let expected_holders: BTreeSet<usize> = sequencer
        .confirmed()
        .holders()
        .iter()
        .filter_map(Federation::resolve)
        .map(|a| Federation::index_of(&a))
        .collect();
    for (i, node) in f.nodes.iter().enumerate() {
        let Some(replica) = node.replica.as_ref() else {
            assert!(
                !expected_holders.contains(&i),
                "node {i} is a holder of the case but never received it"
            );
            continue;
        };
        assert_eq!(replica.log(), sequencer.log(), "node {i}'s log differs");
        assert_eq!(
            replica.confirmed(),
            sequencer.confirmed(),
            "node {i}'s state differs"
        );
        assert!(replica.pending().is_empty(), "node {i} has pending steps");
        assert_eq!(replica.view(), *replica.confirmed());
        assert_eq!(replica.clocks(), sequencer.clocks());
        assert_eq!(replica.confirmed().tasks(), sequencer.confirmed().tasks());
    }
    sequencer
        .log()
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Overtaken { .. }))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every party of a case ends in the same state with the same history,
    /// whatever the network does.
    #[test]
    fn every_party_of_a_case_converges_over_a_network_that_delays_reorders_duplicates_drops_and_restarts(
        parties in 2usize..=5,
        kind in 0u8..3,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        run(parties, kind, &ops);
    }
}

/// The schedules are not vacuous: concurrent steps do conflict and get
/// settled as overtaken.
#[test]
fn random_schedules_produce_overtaken_steps() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut overtaken = 0;
    for _ in 0..500 {
        let (parties, ops) = (2usize..=5, proptest::collection::vec(op(), 40..80))
            .new_tree(&mut runner)
            .expect("a schedule")
            .current();
        overtaken += run(parties, 0, &ops);
    }
    assert!(
        overtaken > 10,
        "only {overtaken} overtaken steps in 500 schedules"
    );
}

/// Withdraw against accept: the requester withdraws while the responder
/// accepts, each on their own node before hearing of the other. The
/// requester's node is the sequencer, so the withdrawal is logged first and
/// the acceptance is overtaken; both sides end withdrawn, and the
/// Portuguese history says why the acceptance did not count.
#[test]
fn withdraw_and_accept_at_the_same_moment_end_withdrawn_on_both_sides() {
    let mut f = Federation::new(2, 0);
    // The request reaches Portugal.
    f.settle();
    assert!(f.act(1, CaseAction::Request(RequestAction::Accept)));
    assert!(f.act(0, CaseAction::Request(RequestAction::Withdraw)));
    // Portugal shows its acceptance while it waits for the sequencer.
    let pt = f.nodes[1].replica.as_ref().expect("PT holds the case");
    assert_eq!(pt.view().describe(), "accepted");
    f.settle();
    let fi = f.nodes[0].replica.as_ref().expect("FI holds the case");
    let pt = f.nodes[1].replica.as_ref().expect("PT holds the case");
    assert_eq!(fi.confirmed().describe(), "withdrawn");
    assert_eq!(pt.view().describe(), "withdrawn");
    assert_eq!(fi.log(), pt.log());
    let accept = pt.log().last().expect("the acceptance is logged");
    let Outcome::Overtaken {
        by: Some(by),
        reason,
    } = &accept.outcome
    else {
        panic!("the acceptance must be overtaken, not {:?}", accept.outcome);
    };
    let withdrawal = &pt.log()[*by as usize - 1];
    assert_eq!(withdrawal.step.action.name(), "withdraw the request");
    assert!(reason.contains("withdrawn"), "{reason}");
}

/// The other order: the acceptance reaches the sequencer first, so it
/// counts, and the requester's withdrawal, checked against the sequencer's
/// log, is refused at once with the reason shown to the Finnish official.
#[test]
fn an_acceptance_that_arrives_first_counts_and_a_later_withdrawal_is_refused() {
    let mut f = Federation::new(2, 0);
    f.settle();
    assert!(f.act(1, CaseAction::Request(RequestAction::Accept)));
    f.settle();
    assert!(!f.act(0, CaseAction::Request(RequestAction::Withdraw)));
    let fi = f.nodes[0].replica.as_ref().expect("FI holds the case");
    assert_eq!(fi.confirmed().describe(), "accepted");
}

#[test]
fn tasks_follow_the_request_from_both_sides() {
    let mut f = Federation::new(2, 0);
    f.settle();
    let tasks = |f: &Federation| {
        f.nodes[0]
            .replica
            .as_ref()
            .expect("held")
            .confirmed()
            .tasks()
            .into_iter()
            .map(|t| (t.owner, t.kind))
            .collect::<Vec<_>>()
    };
    let (fi, pt) = (
        TaskOwner::Authority(party(0)),
        TaskOwner::Authority(party(1)),
    );
    assert_eq!(tasks(&f), vec![(pt, TaskKind::AcceptRequest)]);
    f.act(1, CaseAction::Request(RequestAction::Accept));
    f.settle();
    assert_eq!(tasks(&f), vec![(pt, TaskKind::AnswerRequest)]);
    let reply_by = Timestamp::from_millis(f.clock)
        .date()
        .checked_add_days(30)
        .expect("a date");
    f.act(
        1,
        CaseAction::Request(RequestAction::ProposeDeadline { reply_by }),
    );
    f.settle();
    assert_eq!(
        tasks(&f),
        vec![
            (pt, TaskKind::AnswerRequest),
            (fi, TaskKind::ReviewDeadline)
        ]
    );
    f.act(0, CaseAction::Request(RequestAction::AcceptDeadline));
    f.act(
        1,
        CaseAction::Request(RequestAction::Answer { complete: true }),
    );
    f.settle();
    assert_eq!(tasks(&f), vec![(fi, TaskKind::ReviewAnswer)]);
    let clocks = f.nodes[1].replica.as_ref().expect("held").clocks();
    assert_eq!(
        clocks.deadline, None,
        "a complete answer stops the deadline"
    );
    f.act(
        0,
        CaseAction::Request(RequestAction::Close {
            rating: Rating {
                timeliness: 5,
                effort: 4,
            },
        }),
    );
    f.settle();
    assert!(tasks(&f).is_empty());
    let clocks = f.nodes[1].replica.as_ref().expect("held").clocks();
    assert!(
        clocks.retention.is_some(),
        "closing starts the data-protection clock"
    );
}
