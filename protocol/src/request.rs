//! The request life cycle: one authority asks another for information.
//!
//! ```text
//! draft ─send─▶ sent ─accept─▶ accepted ─answer (part)─▶ partially answered
//! sent, accepted ─forward─▶ sent (now with another authority)
//! sent ─decline─▶ declined ─forward─▶ sent
//! sent, declined ─withdraw─▶ withdrawn
//! accepted, partially answered ─answer (all)─▶ answered
//! partially answered, answered ─close (with a rating)─▶ closed ─reopen─▶ accepted
//! draft ─discard─▶ discarded
//! ```
//!
//! While the request is sent, accepted or partially answered the responder may propose a new
//! reply-by date, which the requester accepts or refuses; while it is accepted
//! or partially answered the responder may ask for more information, which
//! the requester provides. Both are pending marks on the state rather than
//! states of their own, so the request never loses its place in the main
//! cycle. `docs/STATE_MACHINES.md` lists every transition and who may make it.
//!
//! ```
//! use std::collections::BTreeSet;
//! use imi_protocol::{
//!     Actor, AuthorityId, CaseId, Country, Effect, Party, Request, RequestAction, Role,
//!     Timestamp, UserId,
//! };
//!
//! let official = |authority, country| Actor {
//!     user: UserId::new(),
//!     authority,
//!     country,
//!     roles: BTreeSet::from([Role::RequestHandler]),
//! };
//! let (valvira, ordem) = (AuthorityId::new(), AuthorityId::new());
//! let finn = official(valvira, Country::Fi);
//! let portuguese = official(ordem, Country::Pt);
//! let now = Timestamp::from_millis(1_793_611_800_000); // 2026-11-02T09:30Z
//!
//! let responder = Party { authority: ordem, country: Country::Pt };
//! let draft = Request::draft(CaseId::new(), &finn, "professional-qualifications", responder, now)?;
//! let reply_by = "2026-11-16".parse()?;
//! let sent = draft.apply(&finn, now, &RequestAction::Send { reply_by })?;
//! assert!(sent.effects.contains(&Effect::StartDeadline { due: reply_by }));
//!
//! // Only the responder may accept.
//! assert!(sent.state.apply(&finn, now, &RequestAction::Accept).is_err());
//! let accepted = sent.state.apply(&portuguese, now, &RequestAction::Accept)?;
//! assert_eq!(accepted.state.sequence(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::transition::{authorize, check_area};
use crate::{
    Actor, Audience, CaseId, Date, Destination, Effect, IncoherentState, InvalidArgument, Party,
    Role, Side, Timestamp, Transition, TransitionError, UserId,
};

const CASE: &str = "request";

/// Where a request stands in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestStatus {
    /// Being written by the requester; nobody else has seen it.
    Draft,
    /// Sent to the responder, who has not accepted it yet.
    Sent,
    /// Accepted by the responder, who now owes the answer.
    Accepted,
    /// Some answers given, more to come.
    PartiallyAnswered,
    /// Fully answered; waiting for the requester to close it.
    Answered,
    /// The responder declared itself not competent; the requester may forward
    /// it to another authority or withdraw it.
    Declined,
    /// Closed by the requester, with a rating.
    Closed,
    /// Withdrawn by the requester before acceptance.
    Withdrawn,
    /// A draft thrown away before it was sent.
    Discarded,
}

impl RequestStatus {
    /// Every status.
    pub const ALL: [RequestStatus; 9] = [
        RequestStatus::Draft,
        RequestStatus::Sent,
        RequestStatus::Accepted,
        RequestStatus::PartiallyAnswered,
        RequestStatus::Answered,
        RequestStatus::Declined,
        RequestStatus::Closed,
        RequestStatus::Withdrawn,
        RequestStatus::Discarded,
    ];

    /// The status in words (`"partially answered"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Draft => "a draft",
            RequestStatus::Sent => "sent",
            RequestStatus::Accepted => "accepted",
            RequestStatus::PartiallyAnswered => "partially answered",
            RequestStatus::Answered => "answered",
            RequestStatus::Declined => "declined as not competent",
            RequestStatus::Closed => "closed",
            RequestStatus::Withdrawn => "withdrawn",
            RequestStatus::Discarded => "discarded",
        }
    }

    /// Whether the responder owes an answer: sent, accepted or partially
    /// answered.
    pub const fn awaits_answer(self) -> bool {
        matches!(
            self,
            RequestStatus::Sent | RequestStatus::Accepted | RequestStatus::PartiallyAnswered
        )
    }

    /// Whether nothing can happen any more, except reopening a closed request.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            RequestStatus::Closed | RequestStatus::Withdrawn | RequestStatus::Discarded
        )
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The requester's rating of an answer, as the Single Market Scoreboard
/// collects it: timeliness and effort, each from 1 (poor) to 5 (excellent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rating {
    /// How timely the answer came, 1-5.
    pub timeliness: u8,
    /// How much effort the answer shows, 1-5.
    pub effort: u8,
}

impl Rating {
    /// The lowest rating.
    pub const MIN: u8 = 1;
    /// The highest rating.
    pub const MAX: u8 = 5;

    /// Checks that both ratings are within 1..=5.
    pub fn check(self) -> Result<(), InvalidArgument> {
        for (aspect, value) in [("timeliness", self.timeliness), ("effort", self.effort)] {
            if !(Self::MIN..=Self::MAX).contains(&value) {
                return Err(InvalidArgument::RatingOutOfRange { aspect, value });
            }
        }
        Ok(())
    }
}

/// Something an official does to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestAction {
    /// Requester: change the area or the addressed authority of a draft.
    ModifyDraft {
        /// The legislative area.
        area: String,
        /// The authority the request will be sent to.
        responder: Party,
    },
    /// Requester: throw a draft away.
    DiscardDraft,
    /// Requester: send the draft, proposing a reply-by date.
    Send {
        /// The proposed reply-by date; today or later.
        reply_by: Date,
    },
    /// Requester: withdraw a request that is not accepted (sent or declined).
    Withdraw,
    /// Responder: accept the request and the duty to answer it.
    Accept,
    /// Responder: decline a sent request as not competent.
    Decline,
    /// Responder (sent or accepted) or requester (declined): pass the request
    /// to another authority, which receives it as sent.
    Forward {
        /// The authority that will answer.
        to: Party,
    },
    /// Responder: propose another reply-by date.
    ProposeDeadline {
        /// The proposed date; today or later, and not the current one.
        reply_by: Date,
    },
    /// Requester: agree to the proposed reply-by date.
    AcceptDeadline,
    /// Requester: keep the current reply-by date.
    RefuseDeadline,
    /// Responder: ask the requester for more information.
    RequestInformation,
    /// Requester: give the information asked for.
    ProvideInformation,
    /// Responder: answer some (`complete: false`) or all of the questions.
    Answer {
        /// Whether this answer completes the request.
        complete: bool,
    },
    /// Requester: close the (partially) answered request and rate the answer.
    Close {
        /// The rating of timeliness and effort.
        rating: Rating,
    },
    /// Requester: reopen a closed request with a new reply-by date; it goes
    /// back to the responder as accepted.
    Reopen {
        /// The new reply-by date; today or later.
        reply_by: Date,
    },
    /// Responder's allocator: give an incoming or accepted request to one
    /// request handler of the authority, whose task it becomes. The
    /// responder's node checks that the handler is one of its officials.
    Allocate {
        /// The official who will handle it.
        handler: UserId,
    },
}

impl RequestAction {
    /// The action as a stable key (`"accept"`), for forms and for the
    /// words each language gives it.
    pub const fn key(&self) -> &'static str {
        match self {
            RequestAction::ModifyDraft { .. } => "modify-draft",
            RequestAction::DiscardDraft => "discard-draft",
            RequestAction::Send { .. } => "send",
            RequestAction::Withdraw => "withdraw",
            RequestAction::Accept => "accept",
            RequestAction::Decline => "decline",
            RequestAction::Forward { .. } => "forward",
            RequestAction::ProposeDeadline { .. } => "propose-deadline",
            RequestAction::AcceptDeadline => "accept-deadline",
            RequestAction::RefuseDeadline => "refuse-deadline",
            RequestAction::RequestInformation => "request-information",
            RequestAction::ProvideInformation => "provide-information",
            RequestAction::Answer { complete: false } => "answer-part",
            RequestAction::Answer { complete: true } => "answer",
            RequestAction::Close { .. } => "close",
            RequestAction::Reopen { .. } => "reopen",
            RequestAction::Allocate { .. } => "allocate",
        }
    }

    /// The date the action sets, if any (reply-by, proposed date).
    pub const fn date(&self) -> Option<Date> {
        match self {
            RequestAction::Send { reply_by }
            | RequestAction::ProposeDeadline { reply_by }
            | RequestAction::Reopen { reply_by } => Some(*reply_by),
            _ => None,
        }
    }

    /// What the action does, as a verb phrase (`"accept the request"`).
    pub const fn name(&self) -> &'static str {
        match self {
            RequestAction::ModifyDraft { .. } => "modify the draft request",
            RequestAction::DiscardDraft => "discard the draft request",
            RequestAction::Send { .. } => "send the request",
            RequestAction::Withdraw => "withdraw the request",
            RequestAction::Accept => "accept the request",
            RequestAction::Decline => "decline the request as not competent",
            RequestAction::Forward { .. } => "forward the request",
            RequestAction::ProposeDeadline { .. } => "propose a new reply-by date",
            RequestAction::AcceptDeadline => "accept the proposed reply-by date",
            RequestAction::RefuseDeadline => "refuse the proposed reply-by date",
            RequestAction::RequestInformation => "ask for more information",
            RequestAction::ProvideInformation => "provide more information",
            RequestAction::Answer { complete: false } => "answer part of the request",
            RequestAction::Answer { complete: true } => "answer the request",
            RequestAction::Close { .. } => "close the request",
            RequestAction::Reopen { .. } => "reopen the request",
            RequestAction::Allocate { .. } => "allocate the request to a handler",
        }
    }
}

/// A request from one authority to another, as both nodes keep it.
///
/// Made by [`Request::draft`] and changed only by [`Request::apply`], which
/// checks every transition against the life cycle and who may make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    id: CaseId,
    area: String,
    requester: Party,
    responder: Party,
    created_by: UserId,
    status: RequestStatus,
    reply_by: Option<Date>,
    deadline_proposal: Option<Date>,
    information_requested: bool,
    answers: u32,
    forwarded_from: Vec<Party>,
    handler: Option<UserId>,
    rating: Option<Rating>,
    sequence: u64,
    created_at: Timestamp,
    sent_at: Option<Timestamp>,
    accepted_at: Option<Timestamp>,
    answered_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    updated_at: Timestamp,
}

/// The roles that may act for the requester.
const REQUESTER_ROLES: &[Role] = &[Role::RequestHandler];
/// The roles that may accept, decline or forward an incoming request.
const TRIAGE_ROLES: &[Role] = &[Role::RequestHandler, Role::Allocator];
/// The roles that may allocate a request to a handler.
const ALLOCATE_ROLES: &[Role] = &[Role::Allocator];
/// The roles that may work on an accepted request.
const ANSWER_ROLES: &[Role] = &[Role::RequestHandler];

impl Request {
    /// A new draft request of `creator`'s authority in `area`, to be sent to
    /// `responder`. The creator needs the request-handler role (or to be a
    /// national coordinator).
    pub fn draft(
        id: CaseId,
        creator: &Actor,
        area: impl Into<String>,
        responder: Party,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        const ACTION: &str = "create a request";
        let area = area.into();
        if !creator.has_any(&[Role::RequestHandler, Role::NationalCoordinator]) {
            return Err(TransitionError::MissingRole {
                action: ACTION,
                needed: vec![Role::RequestHandler, Role::NationalCoordinator],
            });
        }
        check_area(&area, ACTION)?;
        let requester = Party::of(creator);
        check_responder(requester, responder, ACTION)?;
        Ok(Self {
            id,
            area,
            requester,
            responder,
            created_by: creator.user,
            status: RequestStatus::Draft,
            reply_by: None,
            deadline_proposal: None,
            information_requested: false,
            answers: 0,
            forwarded_from: Vec::new(),
            handler: None,
            rating: None,
            sequence: 0,
            created_at: at,
            sent_at: None,
            accepted_at: None,
            answered_at: None,
            closed_at: None,
            updated_at: at,
        })
    }

    /// The case id, the same on every node.
    pub fn id(&self) -> CaseId {
        self.id
    }

    /// The legislative area.
    pub fn area(&self) -> &str {
        &self.area
    }

    /// The authority that asks.
    pub fn requester(&self) -> Party {
        self.requester
    }

    /// The authority that answers (or, while declined, the one that declined).
    pub fn responder(&self) -> Party {
        self.responder
    }

    /// The user who created the draft.
    pub fn created_by(&self) -> UserId {
        self.created_by
    }

    /// Where the request stands.
    pub fn status(&self) -> RequestStatus {
        self.status
    }

    /// The agreed reply-by date (none while a draft).
    pub fn reply_by(&self) -> Option<Date> {
        self.reply_by
    }

    /// A reply-by date the responder proposed and the requester has not
    /// decided on yet.
    pub fn deadline_proposal(&self) -> Option<Date> {
        self.deadline_proposal
    }

    /// Whether the responder waits for more information from the requester.
    pub fn information_requested(&self) -> bool {
        self.information_requested
    }

    /// How many answers (partial or complete) have been given.
    pub fn answers(&self) -> u32 {
        self.answers
    }

    /// The authorities that held the request before the current responder,
    /// oldest first.
    pub fn forwarded_from(&self) -> &[Party] {
        &self.forwarded_from
    }

    /// The responder's official the request is allocated to, if an
    /// allocator chose one (cleared when it is forwarded).
    pub fn handler(&self) -> Option<UserId> {
        self.handler
    }

    /// The requester's rating, while closed.
    pub fn rating(&self) -> Option<Rating> {
        self.rating
    }

    /// How many transitions the request has gone through; orders them per
    /// case.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// When the draft was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the request was first sent.
    pub fn sent_at(&self) -> Option<Timestamp> {
        self.sent_at
    }

    /// When the current responder accepted it.
    pub fn accepted_at(&self) -> Option<Timestamp> {
        self.accepted_at
    }

    /// When the complete answer was given.
    pub fn answered_at(&self) -> Option<Timestamp> {
        self.answered_at
    }

    /// When the request was closed or withdrawn: the data-protection clock
    /// runs from here.
    pub fn closed_at(&self) -> Option<Timestamp> {
        self.closed_at
    }

    /// When the last transition was made.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Whether the responder still owes an answer after the reply-by date.
    pub fn is_overdue(&self, today: Date) -> bool {
        self.status.awaits_answer() && self.reply_by.is_some_and(|due| due < today)
    }

    /// The state in words, with what is pending
    /// (`"accepted, with more information requested"`).
    pub fn describe(&self) -> String {
        let mut pending = Vec::new();
        if let Some(date) = self.deadline_proposal {
            pending.push(format!("a new reply-by date {date} proposed"));
        }
        if self.information_requested {
            pending.push("more information requested".to_owned());
        }
        if pending.is_empty() {
            self.status.as_str().to_owned()
        } else {
            format!("{}, with {}", self.status, pending.join(" and "))
        }
    }

    /// Who may take `action` now, or `None` if the action does not exist in
    /// this state.
    pub fn side_for(&self, action: &RequestAction) -> Option<Side> {
        use RequestAction as A;
        use RequestStatus as S;
        let requester = Side::Requester(self.requester);
        let responder = Side::Responder(self.responder);
        let status = self.status;
        let working = matches!(status, S::Accepted | S::PartiallyAnswered);
        match action {
            A::ModifyDraft { .. } | A::DiscardDraft | A::Send { .. } => {
                (status == S::Draft).then_some(requester)
            }
            A::Withdraw => matches!(status, S::Sent | S::Declined).then_some(requester),
            A::Accept | A::Decline => (status == S::Sent).then_some(responder),
            A::Forward { .. } => match status {
                S::Sent | S::Accepted => Some(responder),
                S::Declined => Some(requester),
                _ => None,
            },
            A::ProposeDeadline { .. } => {
                (status.awaits_answer() && self.deadline_proposal.is_none()).then_some(responder)
            }
            A::AcceptDeadline | A::RefuseDeadline => {
                self.deadline_proposal.is_some().then_some(requester)
            }
            A::RequestInformation => (working && !self.information_requested).then_some(responder),
            A::ProvideInformation => self.information_requested.then_some(requester),
            A::Answer { .. } => working.then_some(responder),
            A::Close { .. } => {
                matches!(status, S::PartiallyAnswered | S::Answered).then_some(requester)
            }
            A::Reopen { .. } => (status == S::Closed).then_some(requester),
            A::Allocate { .. } => (status == S::Sent || working).then_some(responder),
        }
    }

    /// Applies `action`, taken by `actor` at `at`, and returns the next state
    /// with the effects the node must carry out. `at` is the moment recorded
    /// in the transition's envelope, so every node decides the same way.
    ///
    /// The checks run in this order: the action must exist in the current
    /// state ([`TransitionError::NotAllowed`]), the actor must be on the side
    /// that takes it ([`TransitionError::WrongSide`]) and hold a suitable role
    /// ([`TransitionError::MissingRole`]), and the arguments must fit
    /// ([`TransitionError::Invalid`]). On error `self` is left as it was.
    pub fn apply(
        &self,
        actor: &Actor,
        at: Timestamp,
        action: &RequestAction,
    ) -> Result<Transition<Request>, TransitionError> {
        use RequestAction as A;
        let name = action.name();
        let side = self
            .side_for(action)
            .ok_or_else(|| TransitionError::NotAllowed {
                case: CASE,
                state: self.describe(),
                action: name,
            })?;
        let roles = match (action, &side) {
            (A::Accept | A::Decline | A::Forward { .. }, Side::Responder(_)) => TRIAGE_ROLES,
            (A::Allocate { .. }, _) => ALLOCATE_ROLES,
            (_, Side::Responder(_)) => ANSWER_ROLES,
            _ => REQUESTER_ROLES,
        };
        authorize(actor, &side, roles, name)?;

        let invalid = |problem| TransitionError::Invalid {
            action: name,
            problem,
        };
        let today = at.date();
        let not_past = |deadline: Date| {
            if deadline < today {
                Err(invalid(InvalidArgument::DeadlineInPast { deadline, today }))
            } else {
                Ok(())
            }
        };

        let mut next = self.clone();
        let to_requester = Effect::Deliver(Destination::Authority(self.requester));
        let to_responder = Effect::Deliver(Destination::Authority(self.responder));
        let tell_requester = Effect::Notify(Audience::Officials(self.requester));
        let tell_responder = Effect::Notify(Audience::Officials(self.responder));
        let effects = match action {
            A::ModifyDraft { area, responder } => {
                check_area(area, name)?;
                check_responder(self.requester, *responder, name)?;
                next.area.clone_from(area);
                next.responder = *responder;
                Vec::new()
            }
            A::DiscardDraft => {
                next.status = RequestStatus::Discarded;
                vec![Effect::Forget]
            }
            A::Send { reply_by } => {
                not_past(*reply_by)?;
                next.status = RequestStatus::Sent;
                next.reply_by = Some(*reply_by);
                next.sent_at = Some(at);
                vec![
                    to_responder,
                    tell_responder,
                    Effect::StartDeadline { due: *reply_by },
                ]
            }
            A::Withdraw => {
                let was_sent = self.status == RequestStatus::Sent;
                next.status = RequestStatus::Withdrawn;
                next.deadline_proposal = None;
                next.closed_at = Some(at);
                let mut effects = vec![to_responder];
                if was_sent {
                    effects.extend([tell_responder, Effect::StopDeadline]);
                }
                effects.push(Effect::StartRetention { closed_at: at });
                effects
            }
            A::Accept => {
                next.status = RequestStatus::Accepted;
                next.accepted_at = Some(at);
                vec![to_requester]
            }
            A::Decline => {
                next.status = RequestStatus::Declined;
                next.deadline_proposal = None;
                vec![to_requester, tell_requester, Effect::StopDeadline]
            }
            A::Forward { to } => {
                if to.authority == self.responder.authority {
                    return Err(invalid(InvalidArgument::ForwardToCurrentResponder {
                        authority: to.authority,
                    }));
                }
                check_responder(self.requester, *to, name)?;
                next.forwarded_from.push(self.responder);
                next.responder = *to;
                next.handler = None;
                next.status = RequestStatus::Sent;
                next.accepted_at = None;
                next.deadline_proposal = None;
                next.information_requested = false;
                let new_responder = *to;
                let mut effects = vec![
                    Effect::Deliver(Destination::Authority(new_responder)),
                    Effect::Notify(Audience::Officials(new_responder)),
                ];
                if self.status == RequestStatus::Declined {
                    // The timer stopped when the request was declined.
                    if let Some(due) = self.reply_by {
                        effects.push(Effect::StartDeadline { due });
                    }
                } else {
                    effects.push(to_requester);
                }
                effects
            }
            A::ProposeDeadline { reply_by } => {
                not_past(*reply_by)?;
                if self.reply_by == Some(*reply_by) {
                    return Err(invalid(InvalidArgument::DeadlineUnchanged {
                        deadline: *reply_by,
                    }));
                }
                next.deadline_proposal = Some(*reply_by);
                vec![to_requester, tell_requester]
            }
            A::AcceptDeadline => {
                let Some(proposal) = self.deadline_proposal else {
                    // side_for() allows this only with a proposal pending.
                    return Err(self.not_allowed(name));
                };
                not_past(proposal)?;
                next.reply_by = Some(proposal);
                next.deadline_proposal = None;
                vec![
                    to_responder,
                    tell_responder,
                    Effect::StartDeadline { due: proposal },
                ]
            }
            A::RefuseDeadline => {
                next.deadline_proposal = None;
                vec![to_responder, tell_responder]
            }
            A::RequestInformation => {
                next.information_requested = true;
                vec![to_requester, tell_requester]
            }
            A::ProvideInformation => {
                next.information_requested = false;
                vec![to_responder, tell_responder]
            }
            A::Answer { complete } => {
                next.answers = self.answers.saturating_add(1);
                if *complete {
                    next.status = RequestStatus::Answered;
                    next.answered_at = Some(at);
                    next.deadline_proposal = None;
                    next.information_requested = false;
                    vec![to_requester, tell_requester, Effect::StopDeadline]
                } else {
                    next.status = RequestStatus::PartiallyAnswered;
                    vec![to_requester, tell_requester]
                }
            }
            A::Close { rating } => {
                rating.check().map_err(invalid)?;
                let timer_running = self.status == RequestStatus::PartiallyAnswered;
                next.status = RequestStatus::Closed;
                next.rating = Some(*rating);
                next.closed_at = Some(at);
                next.deadline_proposal = None;
                next.information_requested = false;
                let mut effects = vec![to_responder];
                if timer_running {
                    effects.push(Effect::StopDeadline);
                }
                effects.push(Effect::StartRetention { closed_at: at });
                effects
            }
            A::Reopen { reply_by } => {
                not_past(*reply_by)?;
                next.status = RequestStatus::Accepted;
                next.reply_by = Some(*reply_by);
                next.rating = None;
                next.closed_at = None;
                next.answered_at = None;
                vec![
                    to_responder,
                    tell_responder,
                    Effect::StopRetention,
                    Effect::StartDeadline { due: *reply_by },
                ]
            }
            A::Allocate { handler } => {
                if self.handler == Some(*handler) {
                    return Err(invalid(InvalidArgument::HandlerUnchanged {
                        handler: *handler,
                    }));
                }
                next.handler = Some(*handler);
                Vec::new()
            }
        };
        next.sequence = self.sequence.saturating_add(1);
        next.updated_at = at;
        Ok(Transition {
            state: next,
            effects,
        })
    }

    fn not_allowed(&self, action: &'static str) -> TransitionError {
        TransitionError::NotAllowed {
            case: CASE,
            state: self.describe(),
            action,
        }
    }

    /// Checks that the state is one the life cycle can produce. States made
    /// by [`Request::draft`] and [`Request::apply`] always are; call this on
    /// a state read from storage or received from another node.
    pub fn check(&self) -> Result<(), IncoherentState> {
        use RequestStatus as S;
        let status = self.status;
        let rules: [(bool, &'static str); 18] = [
            (!self.area.trim().is_empty(), "it has no legislative area"),
            (
                self.requester.authority != self.responder.authority,
                "it is addressed to the authority that sends it",
            ),
            (
                self.rating.is_none_or(|rating| rating.check().is_ok()),
                "its rating is outside 1 to 5",
            ),
            (
                (status == S::Closed) == self.rating.is_some(),
                "a request has a rating exactly when it is closed",
            ),
            (
                matches!(status, S::Closed | S::Withdrawn) == self.closed_at.is_some(),
                "a request has a closing time exactly when it is closed or withdrawn",
            ),
            (
                matches!(status, S::Draft | S::Discarded) == self.sent_at.is_none(),
                "a request has a sending time exactly when it has left the draft",
            ),
            (
                self.sent_at.is_some() == self.reply_by.is_some(),
                "a sent request must have a reply-by date, a draft none",
            ),
            (
                self.deadline_proposal.is_none() || status.awaits_answer(),
                "a new reply-by date can be pending only while an answer is awaited",
            ),
            (
                self.deadline_proposal.is_none() || self.deadline_proposal != self.reply_by,
                "the pending reply-by date is the current one",
            ),
            (
                !self.information_requested || matches!(status, S::Accepted | S::PartiallyAnswered),
                "more information can be requested only while accepted or partially answered",
            ),
            (
                matches!(
                    status,
                    S::Accepted | S::PartiallyAnswered | S::Answered | S::Closed
                ) == self.accepted_at.is_some(),
                "a request has an acceptance time exactly when the responder has accepted it",
            ),
            (
                !matches!(status, S::PartiallyAnswered | S::Answered | S::Closed)
                    || self.answers > 0,
                "an answered request must have at least one answer",
            ),
            (
                status != S::Answered || self.answered_at.is_some(),
                "an answered request must have an answering time",
            ),
            (
                !matches!(status, S::Draft | S::Discarded) || self.answers == 0,
                "a draft cannot have answers",
            ),
            (
                !matches!(status, S::Draft | S::Discarded) || self.forwarded_from.is_empty(),
                "a draft cannot have been forwarded",
            ),
            (
                self.forwarded_from
                    .iter()
                    .all(|party| party.authority != self.requester.authority),
                "a request cannot have been forwarded through the requester",
            ),
            (
                self.forwarded_from
                    .last()
                    .is_none_or(|last| last.authority != self.responder.authority),
                "a request cannot be forwarded to the authority that holds it",
            ),
            (
                self.sequence > 0 || status == S::Draft,
                "only a draft can have no transitions",
            ),
        ];
        match rules.iter().find(|(holds, _)| !holds) {
            Some((_, problem)) => Err(IncoherentState {
                case: CASE,
                id: self.id,
                problem,
            }),
            None => Ok(()),
        }
    }
}

fn check_responder(
    requester: Party,
    responder: Party,
    action: &'static str,
) -> Result<(), TransitionError> {
    if responder.authority == requester.authority {
        Err(TransitionError::Invalid {
            action,
            problem: InvalidArgument::OwnAuthority {
                authority: requester.authority,
            },
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
