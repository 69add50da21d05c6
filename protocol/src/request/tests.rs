use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

use super::*;
use crate::transition::fixtures::*;

use RequestAction as A;

const AREA: &str = "professional-qualifications";
const REPLY_BY: &str = "2026-12-01";
const NEW_DATE: &str = "2026-12-15";
const GOOD: Rating = Rating {
    timeliness: 4,
    effort: 5,
};

fn requester() -> Actor {
    actor(FI_AUTHORITY, &[Role::RequestHandler])
}

fn responder() -> Actor {
    actor(PT_AUTHORITY, &[Role::RequestHandler])
}

fn new_draft() -> Request {
    Request::draft(
        CaseId::from_parts(1, 7),
        &requester(),
        AREA,
        party(PT_AUTHORITY),
        at(0),
    )
    .expect("a request handler may create a draft")
}

/// Applies an action that must succeed, one hour after the previous one.
fn step(request: &Request, who: &Actor, action: RequestAction) -> Request {
    request
        .apply(who, at(request.sequence() + 1), &action)
        .unwrap_or_else(|err| panic!("{action:?} by {who:?} failed: {err}"))
        .state
}

/// The states of the diagram: the status plus what is pending
/// (P: a new reply-by date proposed, I: more information requested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Phase {
    Draft,
    Sent,
    SentP,
    Accepted,
    AcceptedP,
    AcceptedI,
    AcceptedPI,
    Partial,
    PartialP,
    PartialI,
    PartialPI,
    Answered,
    Declined,
    Closed,
    Withdrawn,
    Discarded,
}

const PHASES: [Phase; 16] = [
    Phase::Draft,
    Phase::Sent,
    Phase::SentP,
    Phase::Accepted,
    Phase::AcceptedP,
    Phase::AcceptedI,
    Phase::AcceptedPI,
    Phase::Partial,
    Phase::PartialP,
    Phase::PartialI,
    Phase::PartialPI,
    Phase::Answered,
    Phase::Declined,
    Phase::Closed,
    Phase::Withdrawn,
    Phase::Discarded,
];

/// The phase of a state; panics on a combination outside the diagram.
fn phase_of(request: &Request) -> Phase {
    use Phase as P;
    use RequestStatus as S;
    let proposal = request.deadline_proposal().is_some();
    let information = request.information_requested();
    match (request.status(), proposal, information) {
        (S::Draft, false, false) => P::Draft,
        (S::Sent, false, false) => P::Sent,
        (S::Sent, true, false) => P::SentP,
        (S::Accepted, false, false) => P::Accepted,
        (S::Accepted, true, false) => P::AcceptedP,
        (S::Accepted, false, true) => P::AcceptedI,
        (S::Accepted, true, true) => P::AcceptedPI,
        (S::PartiallyAnswered, false, false) => P::Partial,
        (S::PartiallyAnswered, true, false) => P::PartialP,
        (S::PartiallyAnswered, false, true) => P::PartialI,
        (S::PartiallyAnswered, true, true) => P::PartialPI,
        (S::Answered, false, false) => P::Answered,
        (S::Declined, false, false) => P::Declined,
        (S::Closed, false, false) => P::Closed,
        (S::Withdrawn, false, false) => P::Withdrawn,
        (S::Discarded, false, false) => P::Discarded,
        other => panic!("state outside the diagram: {other:?}"),
    }
}

/// A request in `phase`, reached through real transitions.
fn reach(phase: Phase) -> Request {
    use Phase as P;
    let (rq, rs) = (requester(), responder());
    let propose = || A::ProposeDeadline {
        reply_by: date(NEW_DATE),
    };
    let sent = step(
        &new_draft(),
        &rq,
        A::Send {
            reply_by: date(REPLY_BY),
        },
    );
    let accepted = step(&sent, &rs, A::Accept);
    let partial = step(&accepted, &rs, A::Answer { complete: false });
    match phase {
        P::Draft => new_draft(),
        P::Sent => sent,
        P::SentP => step(&sent, &rs, propose()),
        P::Accepted => accepted,
        P::AcceptedP => step(&accepted, &rs, propose()),
        P::AcceptedI => step(&accepted, &rs, A::RequestInformation),
        P::AcceptedPI => step(&reach(P::AcceptedP), &rs, A::RequestInformation),
        P::Partial => partial,
        P::PartialP => step(&partial, &rs, propose()),
        P::PartialI => step(&partial, &rs, A::RequestInformation),
        P::PartialPI => step(&reach(P::PartialP), &rs, A::RequestInformation),
        P::Answered => step(&accepted, &rs, A::Answer { complete: true }),
        P::Declined => step(&sent, &rs, A::Decline),
        P::Closed => step(&reach(P::Answered), &rq, A::Close { rating: GOOD }),
        P::Withdrawn => step(&sent, &rq, A::Withdraw),
        P::Discarded => step(&new_draft(), &rq, A::DiscardDraft),
    }
}

/// One valid instance of each kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Sample {
    ModifyDraft,
    DiscardDraft,
    Send,
    Withdraw,
    Accept,
    Decline,
    Forward,
    ProposeDeadline,
    AcceptDeadline,
    RefuseDeadline,
    RequestInformation,
    ProvideInformation,
    AnswerPartially,
    AnswerCompletely,
    Close,
    Reopen,
    Allocate,
}

/// The handler the samples allocate requests to.
fn handler() -> UserId {
    UserId::from_parts(5, 55)
}

const SAMPLES: [Sample; 17] = [
    Sample::ModifyDraft,
    Sample::DiscardDraft,
    Sample::Send,
    Sample::Withdraw,
    Sample::Accept,
    Sample::Decline,
    Sample::Forward,
    Sample::ProposeDeadline,
    Sample::AcceptDeadline,
    Sample::RefuseDeadline,
    Sample::RequestInformation,
    Sample::ProvideInformation,
    Sample::AnswerPartially,
    Sample::AnswerCompletely,
    Sample::Close,
    Sample::Reopen,
    Sample::Allocate,
];

fn sample(kind: Sample) -> RequestAction {
    match kind {
        Sample::ModifyDraft => A::ModifyDraft {
            area: "services".to_owned(),
            responder: party(PT_OTHER),
        },
        Sample::DiscardDraft => A::DiscardDraft,
        Sample::Send => A::Send {
            reply_by: date(REPLY_BY),
        },
        Sample::Withdraw => A::Withdraw,
        Sample::Accept => A::Accept,
        Sample::Decline => A::Decline,
        Sample::Forward => A::Forward {
            to: party(PT_OTHER),
        },
        Sample::ProposeDeadline => A::ProposeDeadline {
            reply_by: date(NEW_DATE),
        },
        Sample::AcceptDeadline => A::AcceptDeadline,
        Sample::RefuseDeadline => A::RefuseDeadline,
        Sample::RequestInformation => A::RequestInformation,
        Sample::ProvideInformation => A::ProvideInformation,
        Sample::AnswerPartially => A::Answer { complete: false },
        Sample::AnswerCompletely => A::Answer { complete: true },
        Sample::Close => A::Close { rating: GOOD },
        Sample::Reopen => A::Reopen {
            reply_by: date(NEW_DATE),
        },
        Sample::Allocate => A::Allocate { handler: handler() },
    }
}

fn sample_of(action: &RequestAction) -> Sample {
    match action {
        A::ModifyDraft { .. } => Sample::ModifyDraft,
        A::DiscardDraft => Sample::DiscardDraft,
        A::Send { .. } => Sample::Send,
        A::Withdraw => Sample::Withdraw,
        A::Accept => Sample::Accept,
        A::Decline => Sample::Decline,
        A::Forward { .. } => Sample::Forward,
        A::ProposeDeadline { .. } => Sample::ProposeDeadline,
        A::AcceptDeadline => Sample::AcceptDeadline,
        A::RefuseDeadline => Sample::RefuseDeadline,
        A::RequestInformation => Sample::RequestInformation,
        A::ProvideInformation => Sample::ProvideInformation,
        A::Answer { complete: false } => Sample::AnswerPartially,
        A::Answer { complete: true } => Sample::AnswerCompletely,
        A::Close { .. } => Sample::Close,
        A::Reopen { .. } => Sample::Reopen,
        A::Allocate { .. } => Sample::Allocate,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Requester,
    Responder,
}

/// The diagram: every allowed (phase, action) pair, who takes it and where
/// it leads. Every pair not listed must be refused.
const ALLOWED: &[(Phase, Sample, Who, Phase)] = {
    use Phase::*;
    use Sample as X;
    use Who::*;
    &[
        (Draft, X::ModifyDraft, Requester, Draft),
        (Draft, X::DiscardDraft, Requester, Discarded),
        (Draft, X::Send, Requester, Sent),
        (Sent, X::Withdraw, Requester, Withdrawn),
        (SentP, X::Withdraw, Requester, Withdrawn),
        (Declined, X::Withdraw, Requester, Withdrawn),
        (Sent, X::Accept, Responder, Accepted),
        (SentP, X::Accept, Responder, AcceptedP),
        (Sent, X::Decline, Responder, Declined),
        (SentP, X::Decline, Responder, Declined),
        (Sent, X::Forward, Responder, Sent),
        (SentP, X::Forward, Responder, Sent),
        (Accepted, X::Forward, Responder, Sent),
        (AcceptedP, X::Forward, Responder, Sent),
        (AcceptedI, X::Forward, Responder, Sent),
        (AcceptedPI, X::Forward, Responder, Sent),
        (Declined, X::Forward, Requester, Sent),
        (Sent, X::ProposeDeadline, Responder, SentP),
        (Accepted, X::ProposeDeadline, Responder, AcceptedP),
        (AcceptedI, X::ProposeDeadline, Responder, AcceptedPI),
        (Partial, X::ProposeDeadline, Responder, PartialP),
        (PartialI, X::ProposeDeadline, Responder, PartialPI),
        (SentP, X::AcceptDeadline, Requester, Sent),
        (AcceptedP, X::AcceptDeadline, Requester, Accepted),
        (AcceptedPI, X::AcceptDeadline, Requester, AcceptedI),
        (PartialP, X::AcceptDeadline, Requester, Partial),
        (PartialPI, X::AcceptDeadline, Requester, PartialI),
        (SentP, X::RefuseDeadline, Requester, Sent),
        (AcceptedP, X::RefuseDeadline, Requester, Accepted),
        (AcceptedPI, X::RefuseDeadline, Requester, AcceptedI),
        (PartialP, X::RefuseDeadline, Requester, Partial),
        (PartialPI, X::RefuseDeadline, Requester, PartialI),
        (Accepted, X::RequestInformation, Responder, AcceptedI),
        (AcceptedP, X::RequestInformation, Responder, AcceptedPI),
        (Partial, X::RequestInformation, Responder, PartialI),
        (PartialP, X::RequestInformation, Responder, PartialPI),
        (AcceptedI, X::ProvideInformation, Requester, Accepted),
        (AcceptedPI, X::ProvideInformation, Requester, AcceptedP),
        (PartialI, X::ProvideInformation, Requester, Partial),
        (PartialPI, X::ProvideInformation, Requester, PartialP),
        (Accepted, X::AnswerPartially, Responder, Partial),
        (AcceptedP, X::AnswerPartially, Responder, PartialP),
        (AcceptedI, X::AnswerPartially, Responder, PartialI),
        (AcceptedPI, X::AnswerPartially, Responder, PartialPI),
        (Partial, X::AnswerPartially, Responder, Partial),
        (PartialP, X::AnswerPartially, Responder, PartialP),
        (PartialI, X::AnswerPartially, Responder, PartialI),
        (PartialPI, X::AnswerPartially, Responder, PartialPI),
        (Accepted, X::AnswerCompletely, Responder, Answered),
        (AcceptedP, X::AnswerCompletely, Responder, Answered),
        (AcceptedI, X::AnswerCompletely, Responder, Answered),
        (AcceptedPI, X::AnswerCompletely, Responder, Answered),
        (Partial, X::AnswerCompletely, Responder, Answered),
        (PartialP, X::AnswerCompletely, Responder, Answered),
        (PartialI, X::AnswerCompletely, Responder, Answered),
        (PartialPI, X::AnswerCompletely, Responder, Answered),
        (Partial, X::Close, Requester, Closed),
        (PartialP, X::Close, Requester, Closed),
        (PartialI, X::Close, Requester, Closed),
        (PartialPI, X::Close, Requester, Closed),
        (Answered, X::Close, Requester, Closed),
        (Closed, X::Reopen, Requester, Accepted),
        (Sent, X::Allocate, Responder, Sent),
        (SentP, X::Allocate, Responder, SentP),
        (Accepted, X::Allocate, Responder, Accepted),
        (AcceptedP, X::Allocate, Responder, AcceptedP),
        (AcceptedI, X::Allocate, Responder, AcceptedI),
        (AcceptedPI, X::Allocate, Responder, AcceptedPI),
        (Partial, X::Allocate, Responder, Partial),
        (PartialP, X::Allocate, Responder, PartialP),
        (PartialI, X::Allocate, Responder, PartialI),
        (PartialPI, X::Allocate, Responder, PartialPI),
    ]
};

fn expected(phase: Phase, kind: Sample) -> Option<(Who, Phase)> {
    ALLOWED
        .iter()
        .find(|(from, sample, _, _)| *from == phase && *sample == kind)
        .map(|(_, _, who, to)| (*who, *to))
}

/// Whether a responder-side action may also be taken by an allocator.
fn is_triage(kind: Sample) -> bool {
    matches!(kind, Sample::Accept | Sample::Decline | Sample::Forward)
}

/// Everyone who might try something, with every kind of role.
fn everyone() -> Vec<Actor> {
    let all_but_coordinator: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|role| *role != Role::NationalCoordinator)
        .collect();
    vec![
        requester(),
        responder(),
        actor(PT_AUTHORITY, &[Role::Allocator]),
        actor(FI_AUTHORITY, &all_but_coordinator),
        actor(PT_AUTHORITY, &all_but_coordinator),
        actor(PT_OTHER, &[Role::RequestHandler, Role::Allocator]),
        actor(FI_COORDINATION, &[Role::NationalCoordinator]),
        actor(PT_COORDINATION, &[Role::NationalCoordinator]),
        actor(DE_COORDINATION, &Role::ALL),
        actor(COMMISSION, &[Role::CommissionObserver]),
    ]
}

#[test]
fn the_table_lists_each_pair_once_and_every_phase_is_reachable() {
    for (i, (phase, kind, _, _)) in ALLOWED.iter().enumerate() {
        assert!(
            ALLOWED[i + 1..]
                .iter()
                .all(|(p, k, _, _)| (p, k) != (phase, kind)),
            "{phase:?} {kind:?} listed twice"
        );
    }
    for phase in PHASES {
        let state = reach(phase);
        assert_eq!(phase_of(&state), phase);
        assert_eq!(state.check(), Ok(()), "{phase:?}");
    }
}

#[test]
fn every_allowed_transition_succeeds_and_lands_where_the_diagram_says() {
    for &(phase, kind, who, to) in ALLOWED {
        let state = reach(phase);
        let actor = match who {
            Who::Requester => requester(),
            Who::Responder if kind == Sample::Allocate => actor(PT_AUTHORITY, &[Role::Allocator]),
            Who::Responder => responder(),
        };
        let action = sample(kind);
        assert_eq!(
            state
                .side_for(&action)
                .map(|side| matches!(side, Side::Requester(_))),
            Some(who == Who::Requester),
            "{phase:?} {kind:?}"
        );
        let next = state
            .apply(&actor, at(100), &action)
            .unwrap_or_else(|err| panic!("{phase:?} {kind:?}: {err}"))
            .state;
        assert_eq!(phase_of(&next), to, "{phase:?} {kind:?}");
        assert_eq!(next.sequence(), state.sequence() + 1);
        assert_eq!(next.updated_at(), at(100));
        assert_eq!(next.check(), Ok(()), "{phase:?} {kind:?}");
    }
}

#[test]
fn every_pair_outside_the_diagram_is_refused_whoever_tries() {
    let mut refused = 0;
    for phase in PHASES {
        let state = reach(phase);
        for kind in SAMPLES {
            if expected(phase, kind).is_some() {
                continue;
            }
            refused += 1;
            let action = sample(kind);
            assert_eq!(state.side_for(&action), None, "{phase:?} {kind:?}");
            for who in everyone() {
                match state.apply(&who, at(100), &action) {
                    Err(TransitionError::NotAllowed {
                        case: "request",
                        state: described,
                        action: name,
                    }) => {
                        assert_eq!(name, action.name());
                        assert!(described.starts_with(state.status().as_str()));
                    }
                    other => panic!("{phase:?} {kind:?} by {who:?}: {other:?}"),
                }
            }
        }
    }
    assert_eq!(refused + ALLOWED.len(), PHASES.len() * SAMPLES.len());
}

#[test]
fn every_allowed_transition_checks_the_side_and_the_role() {
    for &(phase, kind, who, _) in ALLOWED {
        let state = reach(phase);
        let action = sample(kind);
        let context = format!("{phase:?} {kind:?}");
        let (own, other, own_third, own_coordination, other_coordination) = match who {
            Who::Requester => (
                FI_AUTHORITY,
                PT_AUTHORITY,
                FI_COORDINATION,
                FI_COORDINATION,
                PT_COORDINATION,
            ),
            Who::Responder => (
                PT_AUTHORITY,
                FI_AUTHORITY,
                PT_OTHER,
                PT_COORDINATION,
                FI_COORDINATION,
            ),
        };
        let attempt = |who: Actor| state.apply(&who, at(100), &action);
        let wrong_side = |result: Result<Transition<Request>, TransitionError>, who: &str| {
            assert!(
                matches!(result, Err(TransitionError::WrongSide { .. })),
                "{context}, {who}: {result:?}"
            );
        };

        // The other party, a third authority of the same country and the
        // coordinator of the other country are on the wrong side, whatever
        // roles they hold.
        wrong_side(attempt(actor(other, &Role::ALL)), "other party");
        wrong_side(
            attempt(actor(
                own_third,
                &[
                    Role::RequestHandler,
                    Role::Allocator,
                    Role::AlertCoordinator,
                ],
            )),
            "third authority",
        );
        wrong_side(
            attempt(actor(other_coordination, &[Role::NationalCoordinator])),
            "other country's coordinator",
        );
        wrong_side(
            attempt(actor(COMMISSION, &[Role::CommissionObserver])),
            "Commission observer",
        );

        // On the right side, the role decides.
        let needed = if kind == Sample::Allocate {
            vec![Role::Allocator]
        } else if who == Who::Responder && is_triage(kind) {
            vec![Role::RequestHandler, Role::Allocator]
        } else {
            vec![Role::RequestHandler]
        };
        for roles in [
            &[][..],
            &[Role::CommissionObserver],
            &[Role::AlertCoordinator, Role::AuthorityAdministrator],
        ] {
            assert_eq!(
                attempt(actor(own, roles)).map(|t| t.state),
                Err(TransitionError::MissingRole {
                    action: action.name(),
                    needed: needed.clone(),
                }),
                "{context}, roles {roles:?}"
            );
        }
        let allocator = attempt(actor(own, &[Role::Allocator]));
        assert_eq!(
            allocator.is_ok(),
            needed.contains(&Role::Allocator),
            "{context}, allocator: {allocator:?}"
        );
        // The party's national coordinator may step in from any authority.
        let coordinator = attempt(actor(own_coordination, &[Role::NationalCoordinator]));
        assert!(
            coordinator.is_ok(),
            "{context}, coordinator: {coordinator:?}"
        );
    }
}

#[test]
fn the_seed_scenario_runs_from_draft_to_rated_closure() {
    // A Finnish official doubts a Portuguese doctor's credentials and asks
    // the Portuguese medical council.
    let finn = requester();
    let portuguese = responder();
    let draft = Request::draft(
        CaseId::from_parts(1, 1),
        &finn,
        AREA,
        party(PT_AUTHORITY),
        at(0),
    )
    .unwrap();
    assert_eq!(draft.status(), RequestStatus::Draft);
    assert_eq!(draft.sequence(), 0);
    assert_eq!(draft.requester(), party(FI_AUTHORITY));

    let sent = draft
        .apply(
            &finn,
            at(1),
            &A::Send {
                reply_by: date("2026-11-16"),
            },
        )
        .unwrap();
    assert_eq!(
        sent.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::Notify(Audience::Officials(party(PT_AUTHORITY))),
            Effect::StartDeadline {
                due: date("2026-11-16")
            },
        ]
    );

    let accepted = sent.state.apply(&portuguese, at(20), &A::Accept).unwrap();
    assert_eq!(accepted.state.accepted_at(), Some(at(20)));
    assert_eq!(
        accepted.effects,
        vec![Effect::Deliver(Destination::Authority(party(FI_AUTHORITY)))]
    );

    let proposed = accepted
        .state
        .apply(
            &portuguese,
            at(21),
            &A::ProposeDeadline {
                reply_by: date("2026-11-30"),
            },
        )
        .unwrap();
    assert_eq!(proposed.state.deadline_proposal(), Some(date("2026-11-30")));
    assert_eq!(proposed.state.reply_by(), Some(date("2026-11-16")));
    assert!(
        proposed
            .effects
            .contains(&Effect::Notify(Audience::Officials(party(FI_AUTHORITY))))
    );

    let agreed = proposed
        .state
        .apply(&finn, at(25), &A::AcceptDeadline)
        .unwrap();
    assert_eq!(agreed.state.reply_by(), Some(date("2026-11-30")));
    assert_eq!(agreed.state.deadline_proposal(), None);
    assert!(agreed.effects.contains(&Effect::StartDeadline {
        due: date("2026-11-30")
    }));

    let answered = agreed
        .state
        .apply(&portuguese, at(200), &A::Answer { complete: true })
        .unwrap();
    assert_eq!(answered.state.status(), RequestStatus::Answered);
    assert!(answered.effects.contains(&Effect::StopDeadline));
    assert!(!answered.state.is_overdue(date("2026-12-31")));

    let rating = Rating {
        timeliness: 5,
        effort: 4,
    };
    let closed = answered
        .state
        .apply(&finn, at(210), &A::Close { rating })
        .unwrap();
    assert_eq!(closed.state.status(), RequestStatus::Closed);
    assert_eq!(closed.state.rating(), Some(rating));
    assert_eq!(closed.state.closed_at(), Some(at(210)));
    assert_eq!(closed.state.sequence(), 6);
    assert_eq!(
        closed.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::StartRetention { closed_at: at(210) },
        ]
    );
    assert_eq!(closed.state.check(), Ok(()));
}

#[test]
fn creating_a_draft_checks_role_area_and_responder() {
    let id = CaseId::from_parts(1, 2);
    let observer = actor(COMMISSION, &[Role::CommissionObserver]);
    let err = Request::draft(id, &observer, AREA, party(PT_AUTHORITY), at(0)).unwrap_err();
    assert!(matches!(err, TransitionError::MissingRole { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "to create a request you need one of the roles request-handler, national-coordinator"
    );

    let err = Request::draft(id, &requester(), "  ", party(PT_AUTHORITY), at(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot create a request: choose the legislative area of the case"
    );

    let err = Request::draft(id, &requester(), AREA, party(FI_AUTHORITY), at(0)).unwrap_err();
    assert!(
        matches!(
            err,
            TransitionError::Invalid {
                problem: InvalidArgument::OwnAuthority { .. },
                ..
            }
        ),
        "{err}"
    );

    let coordinator = actor(FI_COORDINATION, &[Role::NationalCoordinator]);
    let draft = Request::draft(id, &coordinator, AREA, party(PT_AUTHORITY), at(0)).unwrap();
    assert_eq!(draft.requester(), party(FI_COORDINATION));
}

#[test]
fn modifying_a_draft_changes_area_and_responder_but_checks_them() {
    let draft = new_draft();
    let modified = step(&draft, &requester(), sample(Sample::ModifyDraft));
    assert_eq!(modified.area(), "services");
    assert_eq!(modified.responder(), party(PT_OTHER));
    let err = draft
        .apply(
            &requester(),
            at(1),
            &A::ModifyDraft {
                area: String::new(),
                responder: party(PT_OTHER),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        TransitionError::Invalid {
            problem: InvalidArgument::EmptyArea,
            ..
        }
    ));
    let err = draft
        .apply(
            &requester(),
            at(1),
            &A::ModifyDraft {
                area: AREA.to_owned(),
                responder: party(FI_AUTHORITY),
            },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        TransitionError::Invalid {
            problem: InvalidArgument::OwnAuthority { .. },
            ..
        }
    ));
}

#[test]
fn reply_by_dates_in_the_past_are_refused_and_today_is_accepted() {
    let today = at(0).date();
    let yesterday = today.checked_add_days(-1).unwrap();
    let err = new_draft()
        .apply(
            &requester(),
            at(0),
            &A::Send {
                reply_by: yesterday,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot send the request: the reply-by date 2026-11-01 is in the past (today is 2026-11-02); choose a later date"
    );
    assert!(
        new_draft()
            .apply(&requester(), at(0), &A::Send { reply_by: today })
            .is_ok()
    );

    let accepted = reach(Phase::Accepted);
    for action in [
        A::ProposeDeadline {
            reply_by: yesterday,
        },
        A::Forward {
            to: party(FI_AUTHORITY),
        },
    ] {
        assert!(matches!(
            accepted.apply(&responder(), at(0), &action),
            Err(TransitionError::Invalid { .. })
        ));
    }
    let closed = reach(Phase::Closed);
    assert!(matches!(
        closed.apply(
            &requester(),
            at(0),
            &A::Reopen {
                reply_by: yesterday
            }
        ),
        Err(TransitionError::Invalid {
            problem: InvalidArgument::DeadlineInPast { .. },
            ..
        })
    ));
}

#[test]
fn a_proposed_deadline_must_differ_and_must_still_be_ahead_when_accepted() {
    let accepted = reach(Phase::Accepted);
    let err = accepted
        .apply(
            &responder(),
            at(10),
            &A::ProposeDeadline {
                reply_by: date(REPLY_BY),
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot propose a new reply-by date: 2026-12-01 is already the reply-by date; propose a different one"
    );

    let proposed = reach(Phase::AcceptedP);
    let too_late = date(NEW_DATE).checked_add_days(1).unwrap().start();
    assert!(matches!(
        proposed.apply(&requester(), too_late, &A::AcceptDeadline),
        Err(TransitionError::Invalid {
            problem: InvalidArgument::DeadlineInPast { .. },
            ..
        })
    ));
    // Refusing keeps the date the requester proposed.
    let refused = step(&proposed, &requester(), A::RefuseDeadline);
    assert_eq!(refused.reply_by(), Some(date(REPLY_BY)));
    assert_eq!(refused.deadline_proposal(), None);
}

#[test]
fn ratings_outside_one_to_five_are_refused() {
    let answered = reach(Phase::Answered);
    for (timeliness, effort, aspect, value) in [
        (0, 3, "timeliness", 0),
        (6, 3, "timeliness", 6),
        (3, 0, "effort", 0),
        (5, 9, "effort", 9),
    ] {
        let err = answered
            .apply(
                &requester(),
                at(100),
                &A::Close {
                    rating: Rating { timeliness, effort },
                },
            )
            .unwrap_err();
        assert_eq!(
            err,
            TransitionError::Invalid {
                action: "close the request",
                problem: InvalidArgument::RatingOutOfRange { aspect, value },
            }
        );
        assert!(err.to_string().contains("must be from 1 to 5"), "{err}");
    }
    for (timeliness, effort) in [(1, 1), (5, 5)] {
        let closed = step(
            &answered,
            &requester(),
            A::Close {
                rating: Rating { timeliness, effort },
            },
        );
        assert_eq!(closed.rating(), Some(Rating { timeliness, effort }));
    }
}

#[test]
fn forwarding_hands_the_request_to_the_new_authority() {
    let accepted = reach(Phase::AcceptedPI);
    let forwarded = accepted
        .apply(&responder(), at(50), &sample(Sample::Forward))
        .unwrap();
    let state = &forwarded.state;
    assert_eq!(state.status(), RequestStatus::Sent);
    assert_eq!(state.responder(), party(PT_OTHER));
    assert_eq!(state.forwarded_from(), &[party(PT_AUTHORITY)]);
    assert_eq!(state.accepted_at(), None);
    assert_eq!(state.reply_by(), Some(date(REPLY_BY)));
    assert_eq!(
        forwarded.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_OTHER))),
            Effect::Notify(Audience::Officials(party(PT_OTHER))),
            Effect::Deliver(Destination::Authority(party(FI_AUTHORITY))),
        ]
    );
    // The old responder is out; the new one may accept.
    assert!(matches!(
        state.apply(&responder(), at(51), &A::Accept),
        Err(TransitionError::WrongSide { .. })
    ));
    let new_responder = actor(PT_OTHER, &[Role::Allocator]);
    assert!(state.apply(&new_responder, at(51), &A::Accept).is_ok());

    let err = accepted
        .apply(
            &responder(),
            at(50),
            &A::Forward {
                to: party(PT_AUTHORITY),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("already with authority"), "{err}");
    let err = accepted
        .apply(
            &responder(),
            at(50),
            &A::Forward {
                to: party(FI_AUTHORITY),
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot send a request to itself"),
        "{err}"
    );
}

#[test]
fn a_declined_request_can_be_forwarded_by_the_requester_or_withdrawn() {
    let sent = reach(Phase::SentP);
    let declined = sent.apply(&responder(), at(10), &A::Decline).unwrap();
    assert_eq!(declined.state.deadline_proposal(), None);
    assert_eq!(
        declined.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(FI_AUTHORITY))),
            Effect::Notify(Audience::Officials(party(FI_AUTHORITY))),
            Effect::StopDeadline,
        ]
    );
    let declined = declined.state;
    // The declining authority can do nothing more.
    for action in [A::Accept, sample(Sample::Forward), A::Decline] {
        assert!(declined.apply(&responder(), at(11), &action).is_err());
    }
    let forwarded = declined
        .apply(&requester(), at(12), &sample(Sample::Forward))
        .unwrap();
    assert_eq!(forwarded.state.responder(), party(PT_OTHER));
    assert_eq!(forwarded.state.status(), RequestStatus::Sent);
    assert!(forwarded.effects.contains(&Effect::StartDeadline {
        due: date(REPLY_BY)
    }));

    let withdrawn = declined.apply(&requester(), at(12), &A::Withdraw).unwrap();
    assert_eq!(
        withdrawn.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::StartRetention { closed_at: at(12) },
        ]
    );
}

#[test]
fn withdrawing_a_sent_request_tells_the_responder_and_stops_the_clock() {
    let withdrawn = reach(Phase::Sent)
        .apply(&requester(), at(5), &A::Withdraw)
        .unwrap();
    assert_eq!(withdrawn.state.closed_at(), Some(at(5)));
    assert_eq!(
        withdrawn.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::Notify(Audience::Officials(party(PT_AUTHORITY))),
            Effect::StopDeadline,
            Effect::StartRetention { closed_at: at(5) },
        ]
    );
}

#[test]
fn closing_a_partial_answer_stops_the_deadline_and_reopening_restarts_it() {
    let closed = reach(Phase::PartialPI)
        .apply(&requester(), at(60), &A::Close { rating: GOOD })
        .unwrap();
    assert_eq!(
        closed.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::StopDeadline,
            Effect::StartRetention { closed_at: at(60) },
        ]
    );
    let reopened = closed
        .state
        .apply(
            &requester(),
            at(70),
            &A::Reopen {
                reply_by: date(NEW_DATE),
            },
        )
        .unwrap();
    let state = &reopened.state;
    assert_eq!(state.status(), RequestStatus::Accepted);
    assert_eq!(state.rating(), None);
    assert_eq!(state.closed_at(), None);
    assert_eq!(state.reply_by(), Some(date(NEW_DATE)));
    assert_eq!(state.answers(), 1);
    assert_eq!(
        reopened.effects,
        vec![
            Effect::Deliver(Destination::Authority(party(PT_AUTHORITY))),
            Effect::Notify(Audience::Officials(party(PT_AUTHORITY))),
            Effect::StopRetention,
            Effect::StartDeadline {
                due: date(NEW_DATE)
            },
        ]
    );
}

#[test]
fn discarding_a_draft_forgets_it() {
    let discarded = new_draft()
        .apply(&requester(), at(1), &A::DiscardDraft)
        .unwrap();
    assert_eq!(discarded.state.status(), RequestStatus::Discarded);
    assert_eq!(discarded.effects, vec![Effect::Forget]);
}

#[test]
fn overdue_means_an_answer_is_still_owed_after_the_reply_by_date() {
    let due = date(REPLY_BY);
    let after = due.checked_add_days(1).unwrap();
    assert!(!reach(Phase::Draft).is_overdue(after));
    for phase in [Phase::Sent, Phase::AcceptedI, Phase::PartialP] {
        let state = reach(phase);
        assert!(!state.is_overdue(due), "{phase:?}");
        assert!(state.is_overdue(after), "{phase:?}");
    }
    for phase in [Phase::Answered, Phase::Declined, Phase::Closed] {
        assert!(!reach(phase).is_overdue(after), "{phase:?}");
    }
}

#[test]
fn refusals_read_as_sentences() {
    let closed = reach(Phase::Closed);
    assert_eq!(
        closed
            .apply(&responder(), at(100), &A::Accept)
            .unwrap_err()
            .to_string(),
        "cannot accept the request: the request is closed"
    );
    assert_eq!(
        reach(Phase::AcceptedPI)
            .apply(&requester(), at(100), &A::Withdraw)
            .unwrap_err()
            .to_string(),
        "cannot withdraw the request: the request is accepted, with a new reply-by date 2026-12-15 proposed and more information requested"
    );
    let err = reach(Phase::Sent)
        .apply(&requester(), at(100), &A::Accept)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("only the responding authority ")
            && err.ends_with("(PT) or a national coordinator of PT may accept the request"),
        "{err}"
    );
    assert_eq!(
        reach(Phase::Sent)
            .apply(&actor(PT_AUTHORITY, &[]), at(100), &A::Accept)
            .unwrap_err()
            .to_string(),
        "to accept the request you need one of the roles request-handler, allocator"
    );
}

#[test]
fn incoherent_stored_states_are_detected() {
    let mut closed = reach(Phase::Closed);
    closed.rating = None;
    let err = closed.check().unwrap_err();
    assert_eq!(
        err.problem,
        "a request has a rating exactly when it is closed"
    );
    assert!(err.to_string().starts_with("request "), "{err}");

    let mut draft = reach(Phase::Draft);
    draft.information_requested = true;
    assert!(draft.check().is_err());

    let mut accepted = reach(Phase::Accepted);
    accepted.deadline_proposal = accepted.reply_by;
    assert!(accepted.check().is_err());

    let mut sent = reach(Phase::Sent);
    sent.responder = sent.requester;
    assert!(sent.check().is_err());
}

#[test]
fn states_and_actions_survive_the_wire_encoding() {
    for phase in PHASES {
        let state = reach(phase);
        let bytes = postcard::to_stdvec(&state).unwrap();
        assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), state);
    }
    for kind in SAMPLES {
        let action = sample(kind);
        let bytes = postcard::to_stdvec(&action).unwrap();
        assert_eq!(
            postcard::from_bytes::<RequestAction>(&bytes).unwrap(),
            action
        );
    }
    assert!(postcard::from_bytes::<Request>(&[0xff, 0x01, 0x02]).is_err());
}

fn arb_actor() -> impl Strategy<Value = Actor> {
    // The two parties come up most often, so walks get deep.
    let authorities = vec![
        FI_AUTHORITY,
        FI_AUTHORITY,
        FI_AUTHORITY,
        PT_AUTHORITY,
        PT_AUTHORITY,
        PT_AUTHORITY,
        PT_OTHER,
        PT_OTHER,
        DE_AUTHORITY,
        FI_COORDINATION,
        PT_COORDINATION,
        COMMISSION,
    ];
    let role_sets: Vec<Vec<Role>> = vec![
        vec![Role::RequestHandler],
        vec![Role::RequestHandler],
        vec![Role::RequestHandler],
        vec![Role::Allocator],
        vec![Role::NationalCoordinator],
        vec![Role::AlertCoordinator],
        vec![Role::CommissionObserver],
        vec![],
        vec![Role::RequestHandler, Role::Allocator],
    ];
    (select(authorities), select(role_sets)).prop_map(|(n, roles)| actor(n, &roles))
}

fn arb_action() -> impl Strategy<Value = RequestAction> {
    let dates = select(vec![
        "2026-11-01",
        "2026-11-04",
        REPLY_BY,
        NEW_DATE,
        "2027-01-10",
        "2027-02-01",
        "2027-03-01",
    ])
    .prop_map(date);
    let parties = select(vec![FI_AUTHORITY, PT_AUTHORITY, PT_OTHER, DE_AUTHORITY]).prop_map(party);
    prop_oneof![
        3 => (select(vec![AREA, "services", " "]), parties.clone())
            .prop_map(|(area, responder)| A::ModifyDraft { area: area.to_owned(), responder }),
        1 => Just(A::DiscardDraft),
        3 => dates.clone().prop_map(|reply_by| A::Send { reply_by }),
        1 => Just(A::Withdraw),
        3 => Just(A::Accept),
        1 => Just(A::Decline),
        3 => parties.prop_map(|to| A::Forward { to }),
        3 => dates.clone().prop_map(|reply_by| A::ProposeDeadline { reply_by }),
        3 => Just(A::AcceptDeadline),
        3 => Just(A::RefuseDeadline),
        3 => Just(A::RequestInformation),
        3 => Just(A::ProvideInformation),
        3 => any::<bool>().prop_map(|complete| A::Answer { complete }),
        3 => (0u8..=6, 1u8..=6).prop_map(|(timeliness, effort)| A::Close {
            rating: Rating { timeliness, effort },
        }),
        3 => dates.prop_map(|reply_by| A::Reopen { reply_by }),
        2 => Just(A::Allocate { handler: handler() }),
    ]
}

/// Who takes a step of a random walk: an official of whichever authority
/// is the requester or responder at that moment, or anyone at all.
#[derive(Debug, Clone)]
enum Pick {
    Requester,
    Responder,
    Allocator,
    Anyone(Actor),
}

impl Pick {
    fn actor(&self, state: &Request) -> Actor {
        match self {
            Pick::Requester => official(state.requester(), &[Role::RequestHandler]),
            Pick::Responder => official(state.responder(), &[Role::RequestHandler]),
            Pick::Allocator => official(state.responder(), &[Role::Allocator]),
            Pick::Anyone(actor) => actor.clone(),
        }
    }

    /// The actor for a step the table says `side` takes.
    fn on_side(&self, side: Who, state: &Request) -> Actor {
        match (self, side) {
            (Pick::Anyone(actor), _) => actor.clone(),
            (Pick::Allocator, Who::Responder) => Pick::Allocator.actor(state),
            (_, Who::Responder) => Pick::Responder.actor(state),
            (_, Who::Requester) => Pick::Requester.actor(state),
        }
    }
}

/// One step of a walk: who, a random action, and, half of the time, a guide
/// that replaces the action with one the diagram allows in the current state
/// (chosen from the table above, never from the code under test), so that
/// walks get deep.
type Step = (Pick, RequestAction, Option<prop::sample::Index>, u64);

/// A walk starts from any state of the diagram, so deep states get as many
/// visits as the draft.
fn arb_walk() -> impl Strategy<Value = (Phase, Vec<Step>)> {
    let pick = prop_oneof![
        2 => Just(Pick::Requester),
        2 => Just(Pick::Responder),
        1 => Just(Pick::Allocator),
        2 => arb_actor().prop_map(Pick::Anyone),
    ];
    let guide = prop::option::weighted(0.5, any::<prop::sample::Index>());
    (
        select(PHASES.to_vec()),
        prop::collection::vec((pick, arb_action(), guide, 0u64..12), 1..100),
    )
}

/// Runs a random walk, checking every step against the diagram, and returns
/// the transitions that succeeded.
fn walk((start, steps): (Phase, Vec<Step>)) -> Result<Vec<(Phase, Sample)>, TestCaseError> {
    let mut taken = Vec::new();
    let mut state = reach(start);
    let mut hours = state.sequence();
    for (pick, action, guide, elapsed) in steps {
        hours += elapsed;
        let phase = phase_of(&state);
        let allowed: Vec<_> = ALLOWED.iter().filter(|row| row.0 == phase).collect();
        let (who, action) = match guide {
            Some(index) if allowed.is_empty() => {
                // The case is over: carry on with another one.
                state = reach(PHASES[index.index(PHASES.len())]);
                continue;
            }
            Some(index) => {
                let (_, kind, side, _) = allowed[index.index(allowed.len())];
                (pick.on_side(*side, &state), sample(*kind))
            }
            None => (pick.actor(&state), action),
        };
        let kind = sample_of(&action);
        match state.apply(&who, at(hours), &action) {
            Ok(transition) => {
                let next = transition.state;
                let (side, to) = expected(phase, kind)
                    .ok_or_else(|| TestCaseError::fail(format!("{phase:?} {kind:?} succeeded")))?;
                prop_assert_eq!(phase_of(&next), to);
                prop_assert_eq!(next.sequence(), state.sequence() + 1);
                prop_assert_eq!(next.check(), Ok(()));
                let party = match side {
                    Who::Requester => state.requester(),
                    Who::Responder => state.responder(),
                };
                let coordinator =
                    who.has(Role::NationalCoordinator) && who.country == party.country;
                prop_assert!(coordinator || who.authority == party.authority);
                if kind == Sample::Allocate {
                    prop_assert!(coordinator || who.has(Role::Allocator));
                    prop_assert_eq!(next.handler(), Some(handler()));
                } else {
                    prop_assert!(
                        coordinator
                            || who.has(Role::RequestHandler)
                            || (side == Who::Responder
                                && is_triage(kind)
                                && who.has(Role::Allocator))
                    );
                }
                prop_assert!(!(who.roles.len() == 1 && who.has(Role::CommissionObserver)));
                if next.status() == RequestStatus::Closed {
                    prop_assert!(next.rating().is_some());
                }
                taken.push((phase, kind));
                state = next;
            }
            Err(TransitionError::NotAllowed { .. }) => {
                prop_assert!(expected(phase, kind).is_none());
            }
            Err(_) => prop_assert!(expected(phase, kind).is_some()),
        }
    }
    let bytes = postcard::to_stdvec(&state).unwrap();
    prop_assert_eq!(postcard::from_bytes::<Request>(&bytes).unwrap(), state);
    Ok(taken)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random officials doing random things never take a request outside the
    /// diagram, and only the right people move it.
    #[test]
    fn random_walks_stay_inside_the_diagram(start_and_steps in arb_walk()) {
        walk(start_and_steps)?;
    }
}

/// The random walks above prove something only if they get everywhere:
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
        .filter(|(phase, kind, _, _)| !taken.contains(&(*phase, *kind)))
        .collect();
    assert!(missing.is_empty(), "never taken: {missing:?}");
}

#[test]
fn an_allocated_request_waits_for_its_handler_until_it_is_forwarded() {
    use crate::case::{CaseState, TaskKind, TaskOwner};
    let allocator = actor(PT_AUTHORITY, &[Role::Allocator]);
    let sent = reach(Phase::Sent);

    // A request handler cannot allocate; the allocator can.
    assert_eq!(
        sent.apply(&responder(), at(50), &sample(Sample::Allocate))
            .map(|t| t.state),
        Err(TransitionError::MissingRole {
            action: "allocate the request to a handler",
            needed: vec![Role::Allocator],
        })
    );
    let allocated = step(&sent, &allocator, sample(Sample::Allocate));
    assert_eq!(allocated.handler(), Some(handler()));
    assert_eq!(allocated.status(), RequestStatus::Sent);
    let owners = |r: &Request| -> Vec<(TaskOwner, TaskKind)> {
        CaseState::Request(r.clone())
            .tasks()
            .into_iter()
            .map(|t| (t.owner, t.kind))
            .collect()
    };
    assert_eq!(
        owners(&allocated),
        [(TaskOwner::User(handler()), TaskKind::AcceptRequest)]
    );

    // The same handler again is refused, another one takes over.
    let again = allocated.apply(&allocator, at(60), &sample(Sample::Allocate));
    assert!(matches!(
        again,
        Err(TransitionError::Invalid {
            problem: InvalidArgument::HandlerUnchanged { .. },
            ..
        })
    ));
    let other = UserId::from_parts(6, 66);
    let reallocated = step(&allocated, &allocator, A::Allocate { handler: other });
    let accepted = step(&reallocated, &responder(), A::Accept);
    assert_eq!(
        owners(&accepted),
        [(TaskOwner::User(other), TaskKind::AnswerRequest)]
    );

    // Forwarded, it reaches the new authority as a whole, unallocated.
    let forwarded = step(&accepted, &responder(), sample(Sample::Forward));
    assert_eq!(forwarded.handler(), None);
    assert_eq!(
        owners(&forwarded),
        [(
            TaskOwner::Authority(party(PT_OTHER)),
            TaskKind::AcceptRequest
        )]
    );
}
