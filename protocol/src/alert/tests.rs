use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

use super::*;
use crate::transition::fixtures::*;

use AlertAction as A;
use AlertStatus as S;

const AREA: &str = "professional-qualifications";

fn recipients() -> BTreeSet<Country> {
    [Country::Pt, Country::De, Country::Eu]
        .into_iter()
        .collect()
}

fn sender() -> Actor {
    actor(FI_AUTHORITY, &[Role::RequestHandler])
}

fn validator() -> Actor {
    actor(FI_COORDINATION, &[Role::AlertCoordinator])
}

fn recipient() -> Actor {
    actor(PT_AUTHORITY, &[Role::AlertCoordinator])
}

fn new_draft() -> Alert {
    Alert::draft(
        CaseId::from_parts(3, 1),
        &sender(),
        AREA,
        recipients(),
        at(0),
    )
    .expect("a request handler may draft an alert")
}

fn step(alert: &Alert, who: &Actor, action: AlertAction) -> Alert {
    alert
        .apply(who, at(alert.sequence() + 1), &action)
        .unwrap_or_else(|err| panic!("{action:?} by {who:?} failed: {err}"))
        .state
}

fn reach(status: AlertStatus) -> Alert {
    let submitted = step(&new_draft(), &sender(), A::Submit);
    let broadcast = step(&submitted, &validator(), A::Validate);
    match status {
        S::Draft => new_draft(),
        S::AwaitingValidation => submitted,
        S::Broadcast => broadcast,
        S::Withdrawn => step(&broadcast, &sender(), A::Withdraw),
        S::Closed => step(&broadcast, &sender(), A::Close),
        S::Discarded => step(&new_draft(), &sender(), A::DiscardDraft),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sample {
    ModifyDraft,
    DiscardDraft,
    Submit,
    Validate,
    Reject,
    Acknowledge,
    Rectify,
    Withdraw,
    Close,
}

const SAMPLES: [Sample; 9] = [
    Sample::ModifyDraft,
    Sample::DiscardDraft,
    Sample::Submit,
    Sample::Validate,
    Sample::Reject,
    Sample::Acknowledge,
    Sample::Rectify,
    Sample::Withdraw,
    Sample::Close,
];

fn sample(kind: Sample) -> AlertAction {
    match kind {
        Sample::ModifyDraft => A::ModifyDraft {
            area: "services".to_owned(),
            recipients: [Country::Se].into_iter().collect(),
        },
        Sample::DiscardDraft => A::DiscardDraft,
        Sample::Submit => A::Submit,
        Sample::Validate => A::Validate,
        Sample::Reject => A::Reject {
            reason: "the scope of the restriction is missing".to_owned(),
        },
        Sample::Acknowledge => A::Acknowledge,
        Sample::Rectify => A::Rectify {
            add_recipients: [Country::Se].into_iter().collect(),
        },
        Sample::Withdraw => A::Withdraw,
        Sample::Close => A::Close,
    }
}

fn sample_of(action: &AlertAction) -> Sample {
    match action {
        A::ModifyDraft { .. } => Sample::ModifyDraft,
        A::DiscardDraft => Sample::DiscardDraft,
        A::Submit => Sample::Submit,
        A::Validate => Sample::Validate,
        A::Reject { .. } => Sample::Reject,
        A::Acknowledge => Sample::Acknowledge,
        A::Rectify { .. } => Sample::Rectify,
        A::Withdraw => Sample::Withdraw,
        A::Close => Sample::Close,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Sender,
    Validator,
    Recipient,
}

/// The diagram: every allowed (status, action) pair, who takes it and where
/// it leads.
const ALLOWED: &[(AlertStatus, Sample, Who, AlertStatus)] = &[
    (S::Draft, Sample::ModifyDraft, Who::Sender, S::Draft),
    (S::Draft, Sample::DiscardDraft, Who::Sender, S::Discarded),
    (S::Draft, Sample::Submit, Who::Sender, S::AwaitingValidation),
    (
        S::AwaitingValidation,
        Sample::Validate,
        Who::Validator,
        S::Broadcast,
    ),
    (
        S::AwaitingValidation,
        Sample::Reject,
        Who::Validator,
        S::Draft,
    ),
    (
        S::AwaitingValidation,
        Sample::Withdraw,
        Who::Sender,
        S::Withdrawn,
    ),
    (
        S::Broadcast,
        Sample::Acknowledge,
        Who::Recipient,
        S::Broadcast,
    ),
    (S::Broadcast, Sample::Rectify, Who::Sender, S::Broadcast),
    (S::Broadcast, Sample::Withdraw, Who::Sender, S::Withdrawn),
    (S::Broadcast, Sample::Close, Who::Sender, S::Closed),
];

fn expected(status: AlertStatus, kind: Sample) -> Option<(Who, AlertStatus)> {
    ALLOWED
        .iter()
        .find(|(from, sample, _, _)| *from == status && *sample == kind)
        .map(|(_, _, who, to)| (*who, *to))
}

fn everyone() -> Vec<Actor> {
    vec![
        sender(),
        validator(),
        recipient(),
        actor(FI_AUTHORITY, &Role::ALL),
        actor(PT_AUTHORITY, &Role::ALL),
        actor(DE_COORDINATION, &Role::ALL),
        actor(
            COMMISSION,
            &[Role::AlertCoordinator, Role::CommissionObserver],
        ),
    ]
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
            Who::Validator => validator(),
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
            for who in everyone() {
                let result = state.apply(&who, at(50), &action);
                assert_eq!(
                    result,
                    Err(TransitionError::NotAllowed {
                        case: "alert",
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
    let sweden = |roles: &[Role]| Actor {
        country: Country::Se,
        ..actor(DE_AUTHORITY, roles)
    };
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
        let observer = actor(COMMISSION, &[Role::CommissionObserver]);
        match who {
            Who::Sender => {
                wrong_side(actor(PT_AUTHORITY, &Role::ALL));
                wrong_side(actor(FI_COORDINATION, &[Role::AlertCoordinator]));
                wrong_side(observer);
                let needed = [Role::RequestHandler, Role::AlertCoordinator];
                missing_role(actor(FI_AUTHORITY, &[]), &needed);
                missing_role(actor(FI_AUTHORITY, &[Role::Allocator]), &needed);
                missing_role(actor(FI_AUTHORITY, &[Role::CommissionObserver]), &needed);
                succeeds(actor(FI_AUTHORITY, &[Role::AlertCoordinator]));
                succeeds(actor(FI_COORDINATION, &[Role::NationalCoordinator]));
                wrong_side(actor(PT_COORDINATION, &[Role::NationalCoordinator]));
            }
            Who::Validator => {
                // Only the sending country validates; a recipient's alert
                // coordinator cannot.
                wrong_side(recipient());
                wrong_side(actor(PT_COORDINATION, &Role::ALL));
                wrong_side(observer);
                let needed = [Role::AlertCoordinator, Role::NationalCoordinator];
                missing_role(sender(), &needed);
                missing_role(actor(FI_COORDINATION, &[Role::Allocator]), &needed);
                succeeds(actor(FI_AUTHORITY, &[Role::AlertCoordinator]));
                succeeds(actor(FI_COORDINATION, &[Role::NationalCoordinator]));
            }
            Who::Recipient => {
                // Not addressed: the sending country, Sweden.
                wrong_side(actor(FI_COORDINATION, &Role::ALL));
                wrong_side(sweden(&[Role::AlertCoordinator]));
                let needed = [Role::AlertCoordinator, Role::NationalCoordinator];
                missing_role(actor(PT_AUTHORITY, &[Role::RequestHandler]), &needed);
                missing_role(observer, &needed);
                succeeds(actor(PT_COORDINATION, &[Role::NationalCoordinator]));
                succeeds(actor(DE_AUTHORITY, &[Role::AlertCoordinator]));
                succeeds(actor(COMMISSION, &[Role::AlertCoordinator]));
            }
        }
    }
}

#[test]
fn a_validated_alert_reaches_every_recipient_and_each_acknowledges_once() {
    let submitted = new_draft().apply(&sender(), at(1), &A::Submit).unwrap();
    assert_eq!(
        submitted.effects,
        vec![Effect::Notify(Audience::AlertCoordinators(Country::Fi))]
    );
    let validated = submitted
        .state
        .apply(&validator(), at(2), &A::Validate)
        .unwrap();
    let alert = validated.state;
    assert_eq!(alert.version(), 1);
    assert_eq!(alert.validated_by(), Some(validator().user));
    assert_eq!(alert.broadcast_at(), Some(at(2)));
    let mut expected = Vec::new();
    for country in recipients() {
        expected.push(Effect::Deliver(Destination::Country(country)));
        expected.push(Effect::Notify(Audience::AlertCoordinators(country)));
    }
    expected.push(Effect::Notify(Audience::Officials(party(FI_AUTHORITY))));
    assert_eq!(validated.effects, expected);
    assert_eq!(alert.awaiting_acknowledgement(), recipients());

    let acknowledged = alert.apply(&recipient(), at(3), &A::Acknowledge).unwrap();
    assert_eq!(
        acknowledged.effects,
        vec![Effect::Deliver(Destination::Authority(party(FI_AUTHORITY)))]
    );
    let alert = acknowledged.state;
    assert_eq!(
        alert.acknowledged(),
        &[Country::Pt].into_iter().collect::<BTreeSet<_>>()
    );
    // A second Portuguese coordinator cannot acknowledge again.
    let err = alert
        .apply(
            &actor(PT_COORDINATION, &[Role::NationalCoordinator]),
            at(4),
            &A::Acknowledge,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot acknowledge the alert: PT has already acknowledged this version"
    );
    let alert = step(
        &alert,
        &actor(DE_AUTHORITY, &[Role::AlertCoordinator]),
        A::Acknowledge,
    );
    let alert = step(
        &alert,
        &actor(COMMISSION, &[Role::AlertCoordinator]),
        A::Acknowledge,
    );
    assert!(alert.awaiting_acknowledgement().is_empty());
    assert_eq!(alert.acknowledged(), alert.recipients());
}

#[test]
fn rectifying_asks_every_recipient_to_acknowledge_again() {
    let alert = step(&reach(S::Broadcast), &recipient(), A::Acknowledge);
    let rectified = alert
        .apply(&sender(), at(20), &sample(Sample::Rectify))
        .unwrap();
    let state = &rectified.state;
    assert_eq!(state.version(), 2);
    assert!(state.acknowledged().is_empty());
    assert!(state.recipients().contains(&Country::Se));
    assert_eq!(state.awaiting_acknowledgement().len(), 4);
    assert!(
        rectified
            .effects
            .contains(&Effect::Deliver(Destination::Country(Country::Se)))
    );
    assert!(
        rectified
            .effects
            .contains(&Effect::Notify(Audience::AlertCoordinators(Country::Pt)))
    );
    // The Portuguese acknowledge the new version.
    assert!(state.apply(&recipient(), at(21), &A::Acknowledge).is_ok());
    // The sending country cannot be added.
    let err = alert
        .apply(
            &sender(),
            at(20),
            &A::Rectify {
                add_recipients: [Country::Fi].into_iter().collect(),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        TransitionError::Invalid {
            problem: InvalidArgument::OwnCountryAddressed {
                country: Country::Fi
            },
            ..
        }
    ));
}

#[test]
fn a_rejected_alert_goes_back_to_draft_with_the_reason() {
    let submitted = reach(S::AwaitingValidation);
    let err = submitted
        .apply(
            &validator(),
            at(5),
            &A::Reject {
                reason: " ".to_owned(),
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot reject the alert: give the reason, so that the sender can correct the draft"
    );
    let rejected = submitted
        .apply(&validator(), at(5), &sample(Sample::Reject))
        .unwrap();
    assert_eq!(
        rejected.effects,
        vec![Effect::Notify(Audience::Officials(party(FI_AUTHORITY)))]
    );
    assert_eq!(
        rejected.state.rejection(),
        Some("the scope of the restriction is missing")
    );
    let resubmitted = step(&rejected.state, &sender(), A::Submit);
    assert_eq!(resubmitted.rejection(), None);
    assert_eq!(resubmitted.status(), S::AwaitingValidation);
}

#[test]
fn recipients_must_be_chosen_and_exclude_the_sending_country() {
    let empty = Alert::draft(
        CaseId::from_parts(3, 2),
        &sender(),
        AREA,
        BTreeSet::new(),
        at(0),
    )
    .unwrap();
    assert_eq!(
        empty
            .apply(&sender(), at(1), &A::Submit)
            .unwrap_err()
            .to_string(),
        "cannot submit the alert for validation: choose at least one recipient country or the Commission"
    );
    let own: BTreeSet<Country> = [Country::Fi, Country::Pt].into_iter().collect();
    let err = Alert::draft(
        CaseId::from_parts(3, 3),
        &sender(),
        AREA,
        own.clone(),
        at(0),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot create an alert: FI sends it and cannot also be one of its recipients"
    );
    assert!(
        new_draft()
            .apply(
                &sender(),
                at(1),
                &A::ModifyDraft {
                    area: AREA.to_owned(),
                    recipients: own
                }
            )
            .is_err()
    );
    let observer = actor(COMMISSION, &[Role::CommissionObserver]);
    assert!(matches!(
        Alert::draft(
            CaseId::from_parts(3, 4),
            &observer,
            AREA,
            recipients(),
            at(0)
        ),
        Err(TransitionError::MissingRole { .. })
    ));
    assert!(matches!(
        Alert::draft(CaseId::from_parts(3, 5), &sender(), "", recipients(), at(0)),
        Err(TransitionError::Invalid {
            problem: InvalidArgument::EmptyArea,
            ..
        })
    ));
}

#[test]
fn withdrawal_and_closure_start_the_retention_clock() {
    let before = reach(S::AwaitingValidation)
        .apply(&sender(), at(9), &A::Withdraw)
        .unwrap();
    assert_eq!(
        before.effects,
        vec![
            Effect::Notify(Audience::AlertCoordinators(Country::Fi)),
            Effect::StartRetention { closed_at: at(9) },
        ]
    );
    assert_eq!(before.state.closed_at(), Some(at(9)));

    let after = reach(S::Broadcast)
        .apply(&sender(), at(9), &A::Withdraw)
        .unwrap();
    for country in recipients() {
        assert!(
            after
                .effects
                .contains(&Effect::Deliver(Destination::Country(country)))
        );
        assert!(
            after
                .effects
                .contains(&Effect::Notify(Audience::AlertCoordinators(country)))
        );
    }
    assert_eq!(
        after.effects.last(),
        Some(&Effect::StartRetention { closed_at: at(9) })
    );
    assert!(after.state.awaiting_acknowledgement().is_empty());

    let closed = reach(S::Broadcast)
        .apply(&sender(), at(9), &A::Close)
        .unwrap();
    let mut expected: Vec<Effect> = recipients()
        .into_iter()
        .map(|country| Effect::Deliver(Destination::Country(country)))
        .collect();
    expected.push(Effect::StartRetention { closed_at: at(9) });
    assert_eq!(closed.effects, expected);
}

#[test]
fn incoherent_stored_states_are_detected() {
    let mut alert = reach(S::Broadcast);
    alert.acknowledged.insert(Country::Se);
    assert_eq!(
        alert.check().unwrap_err().problem,
        "it is acknowledged by a country it is not addressed to"
    );
    let mut draft = reach(S::Draft);
    draft.acknowledged.insert(Country::Pt);
    assert!(draft.check().is_err());
    let mut closed = reach(S::Closed);
    closed.closed_at = None;
    assert!(closed.check().is_err());
}

#[test]
fn states_and_actions_survive_the_wire_encoding() {
    for status in S::ALL {
        let state = reach(status);
        let bytes = postcard::to_stdvec(&state).unwrap();
        assert_eq!(postcard::from_bytes::<Alert>(&bytes).unwrap(), state);
    }
    for kind in SAMPLES {
        let action = sample(kind);
        let bytes = postcard::to_stdvec(&action).unwrap();
        assert_eq!(postcard::from_bytes::<AlertAction>(&bytes).unwrap(), action);
    }
}

fn arb_actor() -> impl Strategy<Value = Actor> {
    let authorities = vec![
        FI_AUTHORITY,
        FI_AUTHORITY,
        FI_COORDINATION,
        PT_AUTHORITY,
        PT_COORDINATION,
        DE_AUTHORITY,
        DE_COORDINATION,
        COMMISSION,
    ];
    let role_sets: Vec<Vec<Role>> = vec![
        vec![Role::RequestHandler],
        vec![Role::AlertCoordinator],
        vec![Role::AlertCoordinator],
        vec![Role::NationalCoordinator],
        vec![Role::CommissionObserver],
        vec![Role::Allocator],
        vec![],
    ];
    (select(authorities), select(role_sets)).prop_map(|(n, roles)| actor(n, &roles))
}

fn arb_countries() -> impl Strategy<Value = BTreeSet<Country>> {
    prop::collection::btree_set(
        select(vec![
            Country::Fi,
            Country::Pt,
            Country::De,
            Country::Se,
            Country::Eu,
        ]),
        0..4,
    )
}

fn arb_action() -> impl Strategy<Value = AlertAction> {
    prop_oneof![
        3 => (select(vec![AREA, "services", ""]), arb_countries())
            .prop_map(|(area, recipients)| A::ModifyDraft { area: area.to_owned(), recipients }),
        1 => Just(A::DiscardDraft),
        3 => Just(A::Submit),
        3 => Just(A::Validate),
        2 => select(vec!["", "missing scope"]).prop_map(|reason| A::Reject { reason: reason.to_owned() }),
        6 => Just(A::Acknowledge),
        2 => arb_countries().prop_map(|add_recipients| A::Rectify { add_recipients }),
        1 => Just(A::Withdraw),
        1 => Just(A::Close),
    ]
}

type Step = (Actor, AlertAction);

fn arb_walk() -> impl Strategy<Value = (AlertStatus, Vec<Step>)> {
    (
        select(S::ALL.to_vec()),
        prop::collection::vec((arb_actor(), arb_action()), 1..100),
    )
}

/// Runs a random walk from a state of the diagram, checking every step, and
/// returns the transitions that succeeded.
fn walk(
    (start, steps): (AlertStatus, Vec<Step>),
) -> Result<Vec<(AlertStatus, Sample)>, TestCaseError> {
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
                prop_assert!(!next.recipients().contains(&Country::Fi));
                prop_assert!(next.version() >= state.version());
                if kind == Sample::Rectify {
                    prop_assert!(next.acknowledged().is_empty());
                    prop_assert!(next.recipients().is_superset(state.recipients()));
                } else {
                    prop_assert!(next.acknowledged().is_superset(state.acknowledged()));
                }
                if kind == Sample::Acknowledge {
                    prop_assert!(next.acknowledged().contains(&who.country));
                    prop_assert!(!state.acknowledged().contains(&who.country));
                }
                let sender = state.sender();
                let coordinator = who.has_any(&[Role::AlertCoordinator, Role::NationalCoordinator]);
                match side {
                    Who::Sender => prop_assert!(
                        who.authority == sender.authority
                            || (who.has(Role::NationalCoordinator)
                                && who.country == sender.country)
                    ),
                    Who::Validator => prop_assert!(coordinator && who.country == sender.country),
                    Who::Recipient => {
                        prop_assert!(coordinator && state.recipients().contains(&who.country));
                    }
                }
                prop_assert!(!(who.roles.len() == 1 && who.has(Role::CommissionObserver)));
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
    prop_assert_eq!(postcard::from_bytes::<Alert>(&bytes).unwrap(), state);
    Ok(taken)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random actions by random officials keep the alert inside the diagram.
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
