//! The notification life cycle: one authority informs other countries and/or
//! the Commission (of a new national requirement, for example). Unlike an
//! alert, a notification needs no validation.
//!
//! ```text
//! draft ─send─▶ sent ─close─▶ closed
//! sent ─withdraw─▶ withdrawn
//! sent ─acknowledge (once per recipient country)─▶ sent
//! sent ─amend (acknowledgements start over)─▶ sent
//! draft ─discard─▶ discarded
//! ```
//!
//! The recipient countries' coordinators acknowledge it once per version and
//! disseminate it inside their country. `docs/STATE_MACHINES.md` lists every
//! transition and who may make it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::transition::{authorize, check_area, check_recipients};
use crate::{
    Actor, Audience, CaseId, Country, Destination, Effect, IncoherentState, InvalidArgument, Party,
    Role, Side, Timestamp, Transition, TransitionError, UserId,
};

const CASE: &str = "notification";

/// Where a notification stands in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationStatus {
    /// Being written by the sender.
    Draft,
    /// Delivered to its recipients.
    Sent,
    /// Withdrawn by the sender.
    Withdrawn,
    /// Closed by the sender: it no longer needs attention.
    Closed,
    /// A draft thrown away.
    Discarded,
}

impl NotificationStatus {
    /// Every status.
    pub const ALL: [NotificationStatus; 5] = [
        NotificationStatus::Draft,
        NotificationStatus::Sent,
        NotificationStatus::Withdrawn,
        NotificationStatus::Closed,
        NotificationStatus::Discarded,
    ];

    /// The status in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Draft => "a draft",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Withdrawn => "withdrawn",
            NotificationStatus::Closed => "closed",
            NotificationStatus::Discarded => "discarded",
        }
    }
}

impl fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an official does to a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationAction {
    /// Sender: change the area or the recipients of a draft.
    ModifyDraft {
        /// The legislative area.
        area: String,
        /// The countries (and/or [`Country::Eu`] for the Commission) to inform.
        recipients: BTreeSet<Country>,
    },
    /// Sender: throw a draft away.
    DiscardDraft,
    /// Sender: send the draft to its recipients.
    Send,
    /// Recipient country's coordinator: confirm receipt of the current
    /// version for the actor's country.
    Acknowledge,
    /// Sender: modify a sent notification, possibly adding recipients; every
    /// recipient must acknowledge the new version.
    Amend {
        /// Countries to inform in addition (may be empty).
        add_recipients: BTreeSet<Country>,
    },
    /// Sender: withdraw a sent notification.
    Withdraw,
    /// Sender: close a sent notification.
    Close,
}

impl NotificationAction {
    /// What the action does, as a verb phrase (`"send the notification"`).
    pub const fn name(&self) -> &'static str {
        match self {
            NotificationAction::ModifyDraft { .. } => "modify the draft notification",
            NotificationAction::DiscardDraft => "discard the draft notification",
            NotificationAction::Send => "send the notification",
            NotificationAction::Acknowledge => "acknowledge the notification",
            NotificationAction::Amend { .. } => "amend the notification",
            NotificationAction::Withdraw => "withdraw the notification",
            NotificationAction::Close => "close the notification",
        }
    }
}

/// A notification, as the sender's node and every recipient's node keep it.
///
/// Made by [`Notification::draft`] and changed only by
/// [`Notification::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    id: CaseId,
    area: String,
    sender: Party,
    created_by: UserId,
    status: NotificationStatus,
    recipients: BTreeSet<Country>,
    acknowledged: BTreeSet<Country>,
    version: u32,
    sequence: u64,
    created_at: Timestamp,
    sent_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    updated_at: Timestamp,
}

/// The roles that may write and send notifications.
const SENDER_ROLES: &[Role] = &[Role::RequestHandler];
/// The roles that acknowledge and disseminate incoming notifications.
const COORDINATOR_ROLES: &[Role] = &[Role::NationalCoordinator, Role::AlertCoordinator];

impl Notification {
    /// A new draft notification of `creator`'s authority in `area`, addressed
    /// to `recipients` (may still be empty). The creator needs the
    /// request-handler role (or to be a national coordinator).
    pub fn draft(
        id: CaseId,
        creator: &Actor,
        area: impl Into<String>,
        recipients: BTreeSet<Country>,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        const ACTION: &str = "create a notification";
        let area = area.into();
        let needed = [Role::RequestHandler, Role::NationalCoordinator];
        if !creator.has_any(&needed) {
            return Err(TransitionError::MissingRole {
                action: ACTION,
                needed: needed.to_vec(),
            });
        }
        check_area(&area, ACTION)?;
        check_recipients(creator.country, &recipients, false, ACTION)?;
        Ok(Self {
            id,
            area,
            sender: Party::of(creator),
            created_by: creator.user,
            status: NotificationStatus::Draft,
            recipients,
            acknowledged: BTreeSet::new(),
            version: 0,
            sequence: 0,
            created_at: at,
            sent_at: None,
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

    /// The sending authority.
    pub fn sender(&self) -> Party {
        self.sender
    }

    /// The user who created the draft.
    pub fn created_by(&self) -> UserId {
        self.created_by
    }

    /// Where the notification stands.
    pub fn status(&self) -> NotificationStatus {
        self.status
    }

    /// The countries (and/or the Commission) addressed.
    pub fn recipients(&self) -> &BTreeSet<Country> {
        &self.recipients
    }

    /// The recipients that acknowledged the current version.
    pub fn acknowledged(&self) -> &BTreeSet<Country> {
        &self.acknowledged
    }

    /// The sent version: 0 before sending, 1 when sent, one more for each
    /// amendment.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// How many transitions the notification has gone through.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// When the draft was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When it was sent.
    pub fn sent_at(&self) -> Option<Timestamp> {
        self.sent_at
    }

    /// When it was closed or withdrawn.
    pub fn closed_at(&self) -> Option<Timestamp> {
        self.closed_at
    }

    /// When the last transition was made.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Who may take `action` now, or `None` if the action does not exist in
    /// this state.
    pub fn side_for(&self, action: &NotificationAction) -> Option<Side> {
        use NotificationAction as A;
        use NotificationStatus as S;
        match (action, self.status) {
            (A::ModifyDraft { .. } | A::DiscardDraft | A::Send, S::Draft)
            | (A::Amend { .. } | A::Withdraw | A::Close, S::Sent) => {
                Some(Side::Sender(self.sender))
            }
            (A::Acknowledge, S::Sent) => Some(Side::Recipients(self.recipients.clone())),
            _ => None,
        }
    }

    /// Applies `action`, taken by `actor` at `at`, and returns the next state
    /// with the effects the node must carry out. Checks run in the same order
    /// as for [`crate::Request::apply`]; on error `self` is left as it was.
    pub fn apply(
        &self,
        actor: &Actor,
        at: Timestamp,
        action: &NotificationAction,
    ) -> Result<Transition<Notification>, TransitionError> {
        use NotificationAction as A;
        let name = action.name();
        let side = self
            .side_for(action)
            .ok_or_else(|| TransitionError::NotAllowed {
                case: CASE,
                state: self.status.as_str().to_owned(),
                action: name,
            })?;
        let roles = match side {
            Side::Sender(_) => SENDER_ROLES,
            _ => COORDINATOR_ROLES,
        };
        authorize(actor, &side, roles, name)?;

        let mut next = self.clone();
        let effects = match action {
            A::ModifyDraft { area, recipients } => {
                check_area(area, name)?;
                check_recipients(self.sender.country, recipients, false, name)?;
                next.area.clone_from(area);
                next.recipients.clone_from(recipients);
                Vec::new()
            }
            A::DiscardDraft => {
                next.status = NotificationStatus::Discarded;
                vec![Effect::Forget]
            }
            A::Send => {
                check_recipients(self.sender.country, &self.recipients, true, name)?;
                next.status = NotificationStatus::Sent;
                next.version = 1;
                next.sent_at = Some(at);
                self.to_recipients(true)
            }
            A::Acknowledge => {
                if !next.acknowledged.insert(actor.country) {
                    return Err(TransitionError::Invalid {
                        action: name,
                        problem: InvalidArgument::AlreadyAcknowledged {
                            country: actor.country,
                        },
                    });
                }
                vec![Effect::Deliver(Destination::Authority(self.sender))]
            }
            A::Amend { add_recipients } => {
                check_recipients(self.sender.country, add_recipients, false, name)?;
                next.recipients.extend(add_recipients.iter().copied());
                next.acknowledged.clear();
                next.version = self.version.saturating_add(1);
                next.to_recipients(true)
            }
            A::Withdraw | A::Close => {
                next.status = if matches!(action, A::Withdraw) {
                    NotificationStatus::Withdrawn
                } else {
                    NotificationStatus::Closed
                };
                next.closed_at = Some(at);
                let mut effects = self.to_recipients(false);
                effects.push(Effect::StartRetention { closed_at: at });
                effects
            }
        };
        next.sequence = self.sequence.saturating_add(1);
        next.updated_at = at;
        Ok(Transition {
            state: next,
            effects,
        })
    }

    /// Delivery to every recipient country, each followed by a task for its
    /// national coordinators if `notify`.
    fn to_recipients(&self, notify: bool) -> Vec<Effect> {
        self.recipients
            .iter()
            .flat_map(|country| {
                let deliver = Effect::Deliver(Destination::Country(*country));
                let task =
                    notify.then_some(Effect::Notify(Audience::NationalCoordinators(*country)));
                std::iter::once(deliver).chain(task)
            })
            .collect()
    }

    /// Checks that the state is one the life cycle can produce. States made
    /// by [`Notification::draft`] and [`Notification::apply`] always are;
    /// call this on a state read from storage or received from another node.
    pub fn check(&self) -> Result<(), IncoherentState> {
        use NotificationStatus as S;
        let status = self.status;
        let sent = matches!(status, S::Sent | S::Withdrawn | S::Closed);
        let rules: [(bool, &'static str); 8] = [
            (!self.area.trim().is_empty(), "it has no legislative area"),
            (
                !self.recipients.contains(&self.sender.country),
                "it is addressed to its own country",
            ),
            (
                self.acknowledged.is_subset(&self.recipients),
                "it is acknowledged by a country it is not addressed to",
            ),
            (
                sent || self.acknowledged.is_empty(),
                "it is acknowledged but was never sent",
            ),
            (
                !sent || !self.recipients.is_empty(),
                "it was sent without recipients",
            ),
            (
                if sent {
                    self.version > 0 && self.sent_at.is_some()
                } else {
                    self.version == 0 && self.sent_at.is_none()
                },
                "a sent notification must have a version and a sending time, an unsent one none",
            ),
            (
                matches!(status, S::Withdrawn | S::Closed) == self.closed_at.is_some(),
                "a notification has a closing time exactly when it is closed or withdrawn",
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

#[cfg(test)]
mod tests;
