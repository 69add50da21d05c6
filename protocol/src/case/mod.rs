//! A case of any kind, what it asks of whom, and how every party's node
//! comes to hold the same case.
//!
//! [`CaseState`] puts the three life cycles (request, alert, notification)
//! behind one type. [`CaseState::tasks`] says what the case waits for and
//! from whom: the "My tasks" of officials and coordinators.
//! [`CaseState::holders`] says which parties keep a copy once the case has
//! left its first node. The [`log`] module holds the rule under which all
//! of them end in the same state with the same history.

pub mod log;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::{
    Actor, Alert, AlertStatus, CaseAction, CaseId, Country, Date, Destination, MessageKind,
    Notification, NotificationStatus, Party, Request, RequestStatus, Role, Timestamp, Transition,
    TransitionError, UserId,
};

/// The state of a case, of any kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseState {
    /// A request between two authorities.
    Request(Request),
    /// An alert to many countries.
    Alert(Alert),
    /// A notification to many countries.
    Notification(Notification),
}

impl CaseState {
    /// The case id.
    pub fn id(&self) -> CaseId {
        match self {
            CaseState::Request(r) => r.id(),
            CaseState::Alert(a) => a.id(),
            CaseState::Notification(n) => n.id(),
        }
    }

    /// How many transitions the case has been through.
    pub fn sequence(&self) -> u64 {
        match self {
            CaseState::Request(r) => r.sequence(),
            CaseState::Alert(a) => a.sequence(),
            CaseState::Notification(n) => n.sequence(),
        }
    }

    /// The legislative area of the case.
    pub fn area(&self) -> &str {
        match self {
            CaseState::Request(r) => r.area(),
            CaseState::Alert(a) => a.area(),
            CaseState::Notification(n) => n.area(),
        }
    }

    /// The state in words (`"accepted"`).
    pub fn describe(&self) -> String {
        match self {
            CaseState::Request(r) => r.describe(),
            CaseState::Alert(a) => a.status().as_str().to_owned(),
            CaseState::Notification(n) => n.status().as_str().to_owned(),
        }
    }

    /// The state as a stable key (`"partially-answered"`), for storage
    /// and for the words each language gives it.
    pub fn status_key(&self) -> &'static str {
        use crate::{AlertStatus as A, NotificationStatus as N, RequestStatus as R};
        match self {
            CaseState::Request(r) => match r.status() {
                R::Draft => "draft",
                R::Sent => "sent",
                R::Accepted => "accepted",
                R::PartiallyAnswered => "partially-answered",
                R::Answered => "answered",
                R::Declined => "declined",
                R::Closed => "closed",
                R::Withdrawn => "withdrawn",
                R::Discarded => "discarded",
            },
            CaseState::Alert(a) => match a.status() {
                A::Draft => "draft",
                A::AwaitingValidation => "awaiting-validation",
                A::Broadcast => "broadcast",
                A::Withdrawn => "withdrawn",
                A::Closed => "closed",
                A::Discarded => "discarded",
            },
            CaseState::Notification(n) => match n.status() {
                N::Draft => "draft",
                N::Sent => "sent",
                N::Withdrawn => "withdrawn",
                N::Closed => "closed",
                N::Discarded => "discarded",
            },
        }
    }

    /// The kind of envelope that carries steps of this case.
    pub fn kind(&self) -> MessageKind {
        match self {
            CaseState::Request(_) => MessageKind::Request,
            CaseState::Alert(_) => MessageKind::Alert,
            CaseState::Notification(_) => MessageKind::Notification,
        }
    }

    /// The authority that opened the case.
    pub fn originator(&self) -> Party {
        match self {
            CaseState::Request(r) => r.requester(),
            CaseState::Alert(a) => a.sender(),
            CaseState::Notification(n) => n.sender(),
        }
    }

    /// The authorities taking part: the requester, the responder and every
    /// authority the request was forwarded from; the sender of an alert or
    /// notification.
    pub fn parties(&self) -> Vec<Party> {
        match self {
            CaseState::Request(r) => {
                let mut parties = vec![r.requester(), r.responder()];
                parties.extend_from_slice(r.forwarded_from());
                parties
            }
            CaseState::Alert(a) => vec![a.sender()],
            CaseState::Notification(n) => vec![n.sender()],
        }
    }

    /// The countries an alert or notification is addressed to.
    pub fn recipient_countries(&self) -> Vec<Country> {
        match self {
            CaseState::Request(_) => vec![],
            CaseState::Alert(a) => a.recipients().iter().copied().collect(),
            CaseState::Notification(n) => n.recipients().iter().copied().collect(),
        }
    }

    /// Whether the case has left the node where it was written: a request
    /// once sent, an alert once broadcast, a notification once sent. Before
    /// that, nobody else holds it.
    pub fn is_shared(&self) -> bool {
        match self {
            CaseState::Request(r) => r.sent_at().is_some(),
            CaseState::Alert(a) => a.broadcast_at().is_some(),
            CaseState::Notification(n) => n.sent_at().is_some(),
        }
    }

    /// Who keeps a copy of the shared case: every party authority and every
    /// addressed country. Empty while the case is not shared.
    pub fn holders(&self) -> Vec<Destination> {
        if !self.is_shared() {
            return vec![];
        }
        let mut holders: Vec<Destination> = self
            .parties()
            .into_iter()
            .map(Destination::Authority)
            .collect();
        holders.extend(
            self.recipient_countries()
                .into_iter()
                .map(Destination::Country),
        );
        holders
    }

    /// Whether the case can still change.
    pub fn is_final(&self) -> bool {
        match self {
            CaseState::Request(r) => r.status().is_final(),
            CaseState::Alert(a) => matches!(
                a.status(),
                AlertStatus::Withdrawn | AlertStatus::Closed | AlertStatus::Discarded
            ),
            CaseState::Notification(n) => matches!(
                n.status(),
                NotificationStatus::Withdrawn
                    | NotificationStatus::Closed
                    | NotificationStatus::Discarded
            ),
        }
    }

    /// When the case was last changed.
    pub fn updated_at(&self) -> Timestamp {
        match self {
            CaseState::Request(r) => r.updated_at(),
            CaseState::Alert(a) => a.updated_at(),
            CaseState::Notification(n) => n.updated_at(),
        }
    }

    /// Applies `action`, taken by `actor` at `at`, through the case's own
    /// state machine. A step of another kind of case is not allowed.
    pub fn apply(
        &self,
        actor: &Actor,
        at: Timestamp,
        action: &CaseAction,
    ) -> Result<Transition<CaseState>, TransitionError> {
        fn wrap<S>(t: Transition<S>, f: fn(S) -> CaseState) -> Transition<CaseState> {
            Transition {
                state: f(t.state),
                effects: t.effects,
            }
        }
        match (self, action) {
            (CaseState::Request(r), CaseAction::Request(a)) => {
                r.apply(actor, at, a).map(|t| wrap(t, CaseState::Request))
            }
            (CaseState::Alert(s), CaseAction::Alert(a)) => {
                s.apply(actor, at, a).map(|t| wrap(t, CaseState::Alert))
            }
            (CaseState::Notification(n), CaseAction::Notification(a)) => n
                .apply(actor, at, a)
                .map(|t| wrap(t, CaseState::Notification)),
            _ => Err(TransitionError::NotAllowed {
                case: self.kind().as_str(),
                state: self.describe(),
                action: action.name(),
            }),
        }
    }

    /// Whether the state is one its life cycle can produce.
    pub fn check(&self) -> Result<(), String> {
        let result = match self {
            CaseState::Request(r) => r.check(),
            CaseState::Alert(a) => a.check(),
            CaseState::Notification(n) => n.check(),
        };
        result.map_err(|e| e.to_string())
    }

    /// What the case waits for, and from whom. Tasks are a function of the
    /// state, so every node that holds the case lists the same tasks, and a
    /// step that settles a task removes it in the same write.
    pub fn tasks(&self) -> Vec<Task> {
        match self {
            CaseState::Request(r) => request_tasks(r),
            CaseState::Alert(a) => alert_tasks(a),
            CaseState::Notification(n) => notification_tasks(n),
        }
    }
}

/// Something a case waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Who must act.
    pub owner: TaskOwner,
    /// What they must do.
    pub kind: TaskKind,
    /// By when, if the case has a reply-by date for it.
    pub due: Option<Date>,
}

/// Who a task waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskOwner {
    /// The officials of an authority (with the roles the task needs).
    Authority(Party),
    /// One user, the only one who can do it (the author of a draft).
    User(UserId),
    /// The officials of a country who hold a role there: alert
    /// coordinators, national coordinators.
    Coordinators(Country, Role),
}

/// What a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Finish and send a draft.
    CompleteDraft,
    /// Accept, decline or forward an incoming request.
    AcceptRequest,
    /// Answer an accepted request.
    AnswerRequest,
    /// Accept or refuse a new reply-by date.
    ReviewDeadline,
    /// Give the more information the responder asked for.
    ProvideInformation,
    /// Read the answer and close the request (or wait for the rest).
    ReviewAnswer,
    /// The responder declined: forward the request or withdraw it.
    HandleDeclined,
    /// Validate (or reject) an alert before it is broadcast.
    ValidateAlert,
    /// Correct an alert the validators sent back.
    CorrectAlert,
    /// Acknowledge an incoming alert for the country.
    AcknowledgeAlert,
    /// Acknowledge an incoming notification for the country.
    AcknowledgeNotification,
}

impl TaskKind {
    /// The task as a stable key (`"answer-request"`), for storage and for
    /// the words each language gives it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskKind::CompleteDraft => "complete-draft",
            TaskKind::AcceptRequest => "accept-request",
            TaskKind::AnswerRequest => "answer-request",
            TaskKind::ReviewDeadline => "review-deadline",
            TaskKind::ProvideInformation => "provide-information",
            TaskKind::ReviewAnswer => "review-answer",
            TaskKind::HandleDeclined => "handle-declined",
            TaskKind::ValidateAlert => "validate-alert",
            TaskKind::CorrectAlert => "correct-alert",
            TaskKind::AcknowledgeAlert => "acknowledge-alert",
            TaskKind::AcknowledgeNotification => "acknowledge-notification",
        }
    }
}

fn request_tasks(r: &Request) -> Vec<Task> {
    use RequestStatus as S;
    let requester = TaskOwner::Authority(r.requester());
    // An allocated request waits for its handler, not the whole authority.
    let responder = r
        .handler()
        .map_or(TaskOwner::Authority(r.responder()), TaskOwner::User);
    let due = r.reply_by();
    let task = |owner, kind, due| Task { owner, kind, due };
    let mut tasks = Vec::new();
    match r.status() {
        S::Draft => tasks.push(task(
            TaskOwner::User(r.created_by()),
            TaskKind::CompleteDraft,
            None,
        )),
        S::Sent => tasks.push(task(responder, TaskKind::AcceptRequest, due)),
        S::Accepted | S::PartiallyAnswered if !r.information_requested() => {
            tasks.push(task(responder, TaskKind::AnswerRequest, due));
        }
        S::Declined => tasks.push(task(requester, TaskKind::HandleDeclined, None)),
        _ => {}
    }
    if r.information_requested() {
        tasks.push(task(requester, TaskKind::ProvideInformation, None));
    }
    if r.deadline_proposal().is_some() {
        tasks.push(task(requester, TaskKind::ReviewDeadline, None));
    }
    if matches!(r.status(), S::PartiallyAnswered | S::Answered) {
        tasks.push(task(requester, TaskKind::ReviewAnswer, None));
    }
    tasks
}

fn alert_tasks(a: &Alert) -> Vec<Task> {
    let sender_country = a.sender().country;
    match a.status() {
        AlertStatus::Draft if a.rejection().is_some() => vec![Task {
            owner: TaskOwner::User(a.created_by()),
            kind: TaskKind::CorrectAlert,
            due: None,
        }],
        AlertStatus::Draft => vec![Task {
            owner: TaskOwner::User(a.created_by()),
            kind: TaskKind::CompleteDraft,
            due: None,
        }],
        AlertStatus::AwaitingValidation => vec![Task {
            owner: TaskOwner::Coordinators(sender_country, Role::AlertCoordinator),
            kind: TaskKind::ValidateAlert,
            due: None,
        }],
        AlertStatus::Broadcast => a
            .awaiting_acknowledgement()
            .into_iter()
            .map(|country| Task {
                owner: TaskOwner::Coordinators(country, Role::AlertCoordinator),
                kind: TaskKind::AcknowledgeAlert,
                due: None,
            })
            .collect(),
        _ => vec![],
    }
}

fn notification_tasks(n: &Notification) -> Vec<Task> {
    match n.status() {
        NotificationStatus::Draft => vec![Task {
            owner: TaskOwner::User(n.created_by()),
            kind: TaskKind::CompleteDraft,
            due: None,
        }],
        NotificationStatus::Sent => n
            .recipients()
            .iter()
            .filter(|c| !n.acknowledged().contains(c))
            .map(|&country| Task {
                owner: TaskOwner::Coordinators(country, Role::NationalCoordinator),
                kind: TaskKind::AcknowledgeNotification,
                due: None,
            })
            .collect(),
        _ => vec![],
    }
}

/// The data-protection periods of Regulation 1024/2012, Art. 14: personal
/// data of a closed case are blocked six months after closure and deleted
/// three years after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// When the case was closed (withdrawn, closed).
    pub closed_at: Timestamp,
}

impl Retention {
    /// Days after closure when personal data are blocked (six months).
    pub const BLOCK_AFTER_DAYS: u64 = 183;
    /// Days after closure when personal data are deleted (three years).
    pub const DELETE_AFTER_DAYS: u64 = 3 * 365 + 1;

    /// When personal data are blocked: only the parties' coordinators may
    /// still see them, for the rights of the data subject.
    pub fn block_at(self) -> Timestamp {
        self.closed_at.plus_days(Self::BLOCK_AFTER_DAYS)
    }

    /// When personal data are deleted.
    pub fn delete_at(self) -> Timestamp {
        self.closed_at.plus_days(Self::DELETE_AFTER_DAYS)
    }
}
