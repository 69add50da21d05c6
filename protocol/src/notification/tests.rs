use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

use super::*;
use crate::transition::fixtures::*;

use NotificationAction as A;
use NotificationStatus as S;

const AREA: &str = "services";

fn recipients() -> BTreeSet<Country> {
    [Country::Pt, Country::Eu].into_iter().collect()
}

fn sender() -> Actor {
    actor(FI_AUTHORITY, &[Role::RequestHandler])
}

fn recipient() -> Actor {
    actor(PT_COORDINATION, &[Role::NationalCoordinator])
}

fn new_draft() -> Notification {
    Notification::draft(
        CaseId::from_parts(4, 1),
        &sender(),
        AREA,
        recipients(),
        at(0),
    )
    .expect("a request handler may draft a notification")
}

fn step(notification: &Notification, who: &Actor, action: NotificationAction) -> Notification {
    notification
        .apply(who, at(notification.sequence() + 1), &action)
        .unwrap_or_else(|err| panic!("{action:?} by {who:?} failed: {err}"))
        .state
}

fn reach(status: NotificationStatus) -> Notification {
    let sent = step(&new_draft(), &sender(), A::Send);
    match status {
        S::Draft => new_draft(),
        S::Sent => sent,
        S::Withdrawn => step(&sent, &sender(), A::Withdraw),
        S::Closed => step(&sent, &sender(), A::Close),
        S::Discarded => step(&new_draft(), &sender(), A::DiscardDraft),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sample {
    ModifyDraft,
    DiscardDraft,
    Send,
    Acknowledge,
    Amend,
    Withdraw,
    Close,
}

const SAMPLES: [Sample; 7] = [
    Sample::ModifyDraft,
    Sample::DiscardDraft,
    Sample::Send,
    Sample::Acknowledge,
    Sample::Amend,
    Sample::Withdraw,
    Sample::Close,
];

fn sample(kind: Sample) -> NotificationAction {
    match kind {
        Sample::ModifyDraft => A::ModifyDraft {
            area: "posting-of-workers".to_owned(),
            recipients: [Country::De].into_iter().collect(),
        },
        Sample::DiscardDraft => A::DiscardDraft,
        Sample::Send => A::Send,
        Sample::Acknowledge => A::Acknowledge,
        Sample::Amend => A::Amend {
            add_recipients: [Country::De].into_iter().collect(),
        },
        Sample::Withdraw => A::Withdraw,
        Sample::Close => A::Close,
    }
}

fn sample_of(action: &NotificationAction) -> Sample {
    match action {
        A::ModifyDraft { .. } => Sample::ModifyDraft,
        A::DiscardDraft => Sample::DiscardDraft,
        A::Send => Sample::Send,
        A::Acknowledge => Sample::Acknowledge,
        A::Amend { .. } => Sample::Amend,
        A::Withdraw => Sample::Withdraw,
        A::Close => Sample::Close,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Sender,
    Recipient,
}

/// The diagram: every allowed (status, action) pair, who takes it and where
/// it leads.
const ALLOWED: &[(NotificationStatus, Sample, Who, NotificationStatus)] = &[
    (S::Draft, Sample::ModifyDraft, Who::Sender, S::Draft),
    (S::Draft, Sample::DiscardDraft, Who::Sender, S::Discarded),
    (S::Draft, Sample::Send, Who::Sender, S::Sent),
    (S::Sent, Sample::Acknowledge, Who::Recipient, S::Sent),
    (S::Sent, Sample::Amend, Who::Sender, S::Sent),
    (S::Sent, Sample::Withdraw, Who::Sender, S::Withdrawn),
    (S::Sent, Sample::Close, Who::Sender, S::Closed),
];

fn expected(status: NotificationStatus, kind: Sample) -> Option<(Who, NotificationStatus)> {
    ALLOWED
        .iter()
        .find(|(from, sample, _, _)| *from == status && *sample == kind)
        .map(|(_, _, who, to)| (*who, *to))
}

#[test]
fn every_allowed_transition_succeeds_and_lands_where_the_diagram_says() {
    for status in S::ALL {
        assert_eq!(reach(status).status(), status);
        assert_eq!(reach(status).check(), Ok(()), "{status:?}");
    }
    for &(status, kind, who, to) in ALLOWED {
        let state = reach(status);
        let actor = match who {
            Who::Sender => sender(),
            Who::Recipient => recipient(),
        };
        let next = state
            .apply(&actor, at(50), &sample(kind))
            .unwrap_or_else(|err| panic!("{status:?} {kind:?}: {err}"))
            .state;
        assert_eq!(next.status(), to, "{status:?} {kind:?}");
        assert_eq!(next.sequence(), state.sequence() + 1);
        assert_eq!(next.check(), Ok(()), "{status:?} {kind:?}");
    }
}

#[test]
fn every_pair_outside_the_diagram_is_refused_whoever_tries() {
    let everyone = [
        sender(),
        recipient(),
        actor(FI_AUTHORITY, &Role::ALL),
        actor(PT_AUTHORITY, &Role::ALL),
        actor(COMMISSION, &Role::ALL),
    ];
    let mut refused = 0;
    for status in S::ALL {
        let state = reach(status);
        for kind in SAMPLES {
            if expected(status, kind).is_some() {
                continue;
            }
            refused += 1;
            let action = sample(kind);
            assert_eq!(state.side_for(&action), None);
            for who in &everyone {
                assert_eq!(
                    state.apply(who, at(50), &action),
                    Err(TransitionError::NotAllowed {
                        case: "notification",
                        state: status.as_str().to_owned(),
                        action: action.name(),
                    }),
                    "{status:?} {kind:?} by {who:?}"
                );
            }
        }
    }
    assert_eq!(refused + ALLOWED.len(), S::ALL.len() * SAMPLES.len());
}

#[test]
fn every_allowed_transition_checks_the_side_and_the_role() {
    for &(status, kind, who, _) in ALLOWED {
        let state = reach(status);
        let action = sample(kind);
        let context = format!("{status:?} {kind:?}");
        let attempt = |who: &Actor| state.apply(who, at(50), &action).map(|t| t.state);
        let wrong_side = |who: Actor| {
            let result = attempt(&who);
            assert!(
                matches!(result, Err(TransitionError::WrongSide { .. })),
                "{context}, {who:?}: {result:?}"
            );
        };
        let missing_role = |who: Actor, needed: &[Role]| {
            assert_eq!(
                attempt(&who),
                Err(TransitionError::MissingRole {
                    action: action.name(),
                    needed: needed.to_vec(),
                }),
                "{context}, {who:?}"
            );
        };
        let succeeds = |who: Actor| {
            let result = attempt(&who);
            assert!(result.is_ok(), "{context}, {who:?}: {result:?}");
        };
        match who {
            Who::Sender => {
                wrong_side(actor(PT_AUTHORITY, &Role::ALL));
                wrong_side(actor(FI_COORDINATION, &[Role::RequestHandler]));
                wrong_side(actor(COMMISSION, &[Role::CommissionObserver]));
                let needed = [Role::RequestHandler];
                missing_role(actor(FI_AUTHORITY, &[]), &needed);
                missing_role(actor(FI_AUTHORITY, &[Role::AlertCoordinator]), &needed);
                missing_role(actor(FI_AUTHORITY, &[Role::CommissionObserver]), &needed);
                succeeds(actor(FI_COORDINATION, &[Role::NationalCoordinator]));
            }
            Who::Recipient => {
                wrong_side(actor(FI_COORDINATION, &Role::ALL));
                wrong_side(actor(DE_COORDINATION, &[Role::NationalCoordinator]));
                let needed = [Role::NationalCoordinator, Role::AlertCoordinator];
                missing_role(actor(PT_AUTHORITY, &[Role::RequestHandler]), &needed);
                missing_role(actor(COMMISSION, &[Role::CommissionObserver]), &needed);
                succeeds(actor(PT_AUTHORITY, &[Role::AlertCoordinator]));
                succeeds(actor(COMMISSION, &[Role::AlertCoordinator]));
            }
        }
    }
}

#[test]
fn a_sent_notification_reaches_the_coordinators_and_amendments_ask_again() {
    let sent = new_draft().apply(&sender(), at(1), &A::Send).unwrap();
    let mut expected = Vec::new();
    for country in recipients() {
        expected.push(Effect::Deliver(Destination::Country(country)));
        expected.push(Effect::Notify(Audience::NationalCoordinators(country)));
    }
    assert_eq!(sent.effects, expected);
    assert_eq!(sent.state.version(), 1);
    assert_eq!(sent.state.sent_at(), Some(at(1)));

    let acknowledged = sent
        .state
        .apply(&recipient(), at(2), &A::Acknowledge)
        .unwrap();
    assert_eq!(
        acknowledged.effects,
        vec![Effect::Deliver(Destination::Authority(party(FI_AUTHORITY)))]
    );
    let err = acknowledged
        .state
        .apply(
            &actor(PT_AUTHORITY, &[Role::AlertCoordinator]),
            at(3),
            &A::Acknowledge,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        TransitionError::Invalid {
            problem: InvalidArgument::AlreadyAcknowledged {
                country: Country::Pt
            },
            ..
        }
    ));

    let amended = step(&acknowledged.state, &sender(), sample(Sample::Amend));
    assert_eq!(amended.version(), 2);
    assert!(amended.acknowledged().is_empty());
    assert!(amended.recipients().contains(&Country::De));
    assert!(amended.apply(&recipient(), at(10), &A::Acknowledge).is_ok());
}

#[test]
fn sending_needs_recipients_other_than_the_own_country() {
    let empty = Notification::draft(
        CaseId::from_parts(4, 2),
        &sender(),
        AREA,
        BTreeSet::new(),
        at(0),
    )
    .unwrap();
    assert!(matches!(
        empty.apply(&sender(), at(1), &A::Send),
        Err(TransitionError::Invalid {
            problem: InvalidArgument::NoRecipients,
            ..
        })
    ));
    let own: BTreeSet<Country> = [Country::Fi].into_iter().collect();
    assert!(Notification::draft(CaseId::from_parts(4, 3), &sender(), AREA, own, at(0)).is_err());
    let allocator = actor(FI_AUTHORITY, &[Role::Allocator]);
    assert!(matches!(
        Notification::draft(
            CaseId::from_parts(4, 4),
            &allocator,
            AREA,
            recipients(),
            at(0)
        ),
        Err(TransitionError::MissingRole { .. })
    ));
}

#[test]
fn withdrawal_and_closure_tell_the_recipients_and_start_retention() {
    for action in [A::Withdraw, A::Close] {
        let ended = reach(S::Sent).apply(&sender(), at(30), &action).unwrap();
        let mut expected: Vec<Effect> = recipients()
            .into_iter()
            .map(|country| Effect::Deliver(Destination::Country(country)))
            .collect();
        expected.push(Effect::StartRetention { closed_at: at(30) });
        assert_eq!(ended.effects, expected);
        assert_eq!(ended.state.closed_at(), Some(at(30)));
    }
    assert_eq!(
        reach(S::Draft)
            .apply(&sender(), at(1), &A::DiscardDraft)
            .unwrap()
            .effects,
        vec![Effect::Forget]
    );
}

#[test]
fn incoherent_stored_states_are_detected() {
    let mut sent = reach(S::Sent);
    sent.acknowledged.insert(Country::Se);
    assert!(sent.check().is_err());
    let mut draft = reach(S::Draft);
    draft.version = 3;
    assert_eq!(
        draft.check().unwrap_err().problem,
        "a sent notification must have a version and a sending time, an unsent one none"
    );
}

fn arb_actor() -> impl Strategy<Value = Actor> {
    let authorities = vec![
        FI_AUTHORITY,
        FI_AUTHORITY,
        FI_COORDINATION,
        PT_AUTHORITY,
        PT_COORDINATION,
        DE_COORDINATION,
        COMMISSION,
    ];
    let role_sets: Vec<Vec<Role>> = vec![
        vec![Role::RequestHandler],
        vec![Role::RequestHandler],
        vec![Role::AlertCoordinator],
        vec![Role::NationalCoordinator],
        vec![Role::CommissionObserver],
        vec![],
    ];
    (select(authorities), select(role_sets)).prop_map(|(n, roles)| actor(n, &roles))
}

fn arb_countries() -> impl Strategy<Value = BTreeSet<Country>> {
    prop::collection::btree_set(
        select(vec![Country::Fi, Country::Pt, Country::De, Country::Eu]),
        0..3,
    )
}

fn arb_action() -> impl Strategy<Value = NotificationAction> {
    prop_oneof![
        3 => (select(vec![AREA, ""]), arb_countries())
            .prop_map(|(area, recipients)| A::ModifyDraft { area: area.to_owned(), recipients }),
        1 => Just(A::DiscardDraft),
        3 => Just(A::Send),
        6 => Just(A::Acknowledge),
        2 => arb_countries().prop_map(|add_recipients| A::Amend { add_recipients }),
        1 => Just(A::Withdraw),
        1 => Just(A::Close),
    ]
}

type Step = (Actor, NotificationAction);

fn arb_walk() -> impl Strategy<Value = (NotificationStatus, Vec<Step>)> {
    (
        select(S::ALL.to_vec()),
        prop::collection::vec((arb_actor(), arb_action()), 1..80),
    )
}

/// Runs a random walk from a state of the diagram, checking every step, and
/// returns the transitions that succeeded.
fn walk(
    (start, steps): (NotificationStatus, Vec<Step>),
) -> Result<Vec<(NotificationStatus, Sample)>, TestCaseError> {
    let mut taken = Vec::new();
    let mut state = reach(start);
    for (hour, (who, action)) in (state.sequence() + 1..).zip(steps) {
        let kind = sample_of(&action);
        match state.apply(&who, at(hour), &action) {
            Ok(transition) => {
                let next = transition.state;
                let (side, to) = expected(state.status(), kind).ok_or_else(|| {
                    TestCaseError::fail(format!("{:?} {kind:?} succeeded", state.status()))
                })?;
                prop_assert_eq!(next.status(), to);
                prop_assert_eq!(next.sequence(), state.sequence() + 1);
                prop_assert_eq!(next.check(), Ok(()));
                prop_assert!(next.acknowledged().is_subset(next.recipients()));
                let sender = state.sender();
                match side {
                    Who::Sender => prop_assert!(
                        who.authority == sender.authority
                            || (who.has(Role::NationalCoordinator)
                                && who.country == sender.country)
                    ),
                    Who::Recipient => prop_assert!(
                        who.has_any(&[Role::AlertCoordinator, Role::NationalCoordinator])
                            && state.recipients().contains(&who.country)
                            && !state.acknowledged().contains(&who.country)
                    ),
                }
                taken.push((state.status(), kind));
                state = next;
            }
            Err(TransitionError::NotAllowed { .. }) => {
                prop_assert!(expected(state.status(), kind).is_none());
            }
            Err(_) => prop_assert!(expected(state.status(), kind).is_some()),
        }
    }
    let bytes = postcard::to_stdvec(&state).unwrap();
    prop_assert_eq!(postcard::from_bytes::<Notification>(&bytes).unwrap(), state);
    Ok(taken)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random actions by random officials keep the notification inside the diagram.
    #[test]
    fn random_walks_stay_inside_the_diagram(start_and_steps in arb_walk()) {
        walk(start_and_steps)?;
    }
}

/// 256 walks from a fixed seed take every transition of the diagram.
#[test]
fn random_walks_take_every_transition_of_the_diagram() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arb_walk();
    let mut taken = std::collections::HashSet::new();
    for _ in 0..256 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        taken.extend(walk(steps).unwrap());
    }
    let missing: Vec<_> = ALLOWED
        .iter()
        .filter(|(status, kind, _, _)| !taken.contains(&(*status, *kind)))
        .collect();
    assert!(missing.is_empty(), "never taken: {missing:?}");
}
