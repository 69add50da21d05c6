//! The alert life cycle: one authority warns other countries and/or the
//! Commission of a risk (a professional banned from practising, a falsified
//! diploma, a dangerous service).
//!
//! ```text
//! draft ─submit─▶ awaiting validation ─validate─▶ broadcast ─close─▶ closed
//! awaiting validation ─reject (with a reason)─▶ draft
//! awaiting validation, broadcast ─withdraw─▶ withdrawn
//! broadcast ─acknowledge (once per recipient country)─▶ broadcast
//! broadcast ─rectify (acknowledgements start over)─▶ broadcast
//! draft ─discard─▶ discarded
//! ```
//!
//! The sending country's alert coordinators validate every alert before it
//! goes out, so that alerts are sent only when needed; validation is what
//! broadcasts it. Each recipient country's alert coordinators acknowledge it
//! once per version. `docs/STATE_MACHINES.md` lists every transition and who
//! may make it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::transition::{authorize, check_area, check_recipients};
use crate::{
    Actor, Audience, CaseId, Country, Destination, Effect, IncoherentState, InvalidArgument, Party,
    Role, Side, Timestamp, Transition, TransitionError, UserId,
};

const CASE: &str = "alert";

/// Where an alert stands in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertStatus {
    /// Being written by the sender.
    Draft,
    /// Submitted to the sending country's alert coordinators.
    AwaitingValidation,
    /// Validated and delivered to its recipients; in force.
    Broadcast,
    /// Withdrawn by the sender (sent in error, or no longer wanted before
    /// validation).
    Withdrawn,
    /// Closed by the sender: the risk is gone.
    Closed,
    /// A draft thrown away.
    Discarded,
}

impl AlertStatus {
    /// Every status.
    pub const ALL: [AlertStatus; 6] = [
        AlertStatus::Draft,
        AlertStatus::AwaitingValidation,
        AlertStatus::Broadcast,
        AlertStatus::Withdrawn,
        AlertStatus::Closed,
        AlertStatus::Discarded,
    ];

    /// The status in words (`"awaiting validation"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Draft => "a draft",
            AlertStatus::AwaitingValidation => "awaiting validation",
            AlertStatus::Broadcast => "broadcast",
            AlertStatus::Withdrawn => "withdrawn",
            AlertStatus::Closed => "closed",
            AlertStatus::Discarded => "discarded",
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an official does to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertAction {
    /// Sender: change the area or the recipients of a draft.
    ModifyDraft {
        /// The legislative area.
        area: String,
        /// The countries (and/or [`Country::Eu`] for the Commission) to alert.
        recipients: BTreeSet<Country>,
    },
    /// Sender: throw a draft away.
    DiscardDraft,
    /// Sender: submit the draft to the country's alert coordinators.
    Submit,
    /// Sending country's alert coordinator: approve the alert, which
    /// broadcasts it.
    Validate,
    /// Sending country's alert coordinator: send the alert back to draft.
    Reject {
        /// Why, so the sender can correct it.
        reason: String,
    },
    /// Recipient country's alert coordinator: confirm receipt of the current
    /// version for the actor's country.
    Acknowledge,
    /// Sender: correct a broadcast alert, possibly adding recipients; every
    /// recipient must acknowledge the new version.
    Rectify {
        /// Countries to alert in addition (may be empty).
        add_recipients: BTreeSet<Country>,
    },
    /// Sender: withdraw the alert (before validation, or after broadcast if
    /// it was sent in error).
    Withdraw,
    /// Sender: close a broadcast alert because the risk is gone.
    Close,
}

impl AlertAction {
    /// What the action does, as a verb phrase (`"validate the alert"`).
    pub const fn name(&self) -> &'static str {
        match self {
            AlertAction::ModifyDraft { .. } => "modify the draft alert",
            AlertAction::DiscardDraft => "discard the draft alert",
            AlertAction::Submit => "submit the alert for validation",
            AlertAction::Validate => "validate the alert",
            AlertAction::Reject { .. } => "reject the alert",
            AlertAction::Acknowledge => "acknowledge the alert",
            AlertAction::Rectify { .. } => "rectify the alert",
            AlertAction::Withdraw => "withdraw the alert",
            AlertAction::Close => "close the alert",
        }
    }
}

/// An alert, as the sender's node and every recipient's node keep it.
///
/// Made by [`Alert::draft`] and changed only by [`Alert::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    id: CaseId,
    area: String,
    sender: Party,
    created_by: UserId,
    status: AlertStatus,
    recipients: BTreeSet<Country>,
    acknowledged: BTreeSet<Country>,
    version: u32,
    validated_by: Option<UserId>,
    rejection: Option<String>,
    sequence: u64,
    created_at: Timestamp,
    broadcast_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    updated_at: Timestamp,
}

/// The roles that may write and send alerts.
const SENDER_ROLES: &[Role] = &[Role::RequestHandler, Role::AlertCoordinator];
/// The roles that validate outgoing and acknowledge incoming alerts.
const COORDINATOR_ROLES: &[Role] = &[Role::AlertCoordinator, Role::NationalCoordinator];

impl Alert {
    /// A new draft alert of `creator`'s authority in `area`, addressed to
    /// `recipients` (may still be empty). The creator needs the
    /// request-handler or alert-coordinator role (or to be a national
    /// coordinator).
    pub fn draft(
        id: CaseId,
        creator: &Actor,
        area: impl Into<String>,
        recipients: BTreeSet<Country>,
        at: Timestamp,
    ) -> Result<Self, TransitionError> {
        const ACTION: &str = "create an alert";
        let area = area.into();
        let needed = [
            Role::RequestHandler,
            Role::AlertCoordinator,
            Role::NationalCoordinator,
        ];
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
            status: AlertStatus::Draft,
            recipients,
            acknowledged: BTreeSet::new(),
            version: 0,
            validated_by: None,
            rejection: None,
            sequence: 0,
            created_at: at,
            broadcast_at: None,
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

    /// Where the alert stands.
    pub fn status(&self) -> AlertStatus {
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

    /// The recipients that have not acknowledged the current version yet.
    pub fn awaiting_acknowledgement(&self) -> BTreeSet<Country> {
        if self.status == AlertStatus::Broadcast {
            self.recipients
                .difference(&self.acknowledged)
                .copied()
                .collect()
        } else {
            BTreeSet::new()
        }
    }

    /// The broadcast version: 0 before broadcast, 1 when validated, one more
    /// for each rectification.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alert coordinator who validated it.
    pub fn validated_by(&self) -> Option<UserId> {
        self.validated_by
    }

    /// Why the last submission was rejected, while the alert is back in
    /// draft.
    pub fn rejection(&self) -> Option<&str> {
        self.rejection.as_deref()
    }

    /// How many transitions the alert has gone through.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// When the draft was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the alert was validated and broadcast.
    pub fn broadcast_at(&self) -> Option<Timestamp> {
        self.broadcast_at
    }

    /// When the alert was closed or withdrawn.
    pub fn closed_at(&self) -> Option<Timestamp> {
        self.closed_at
    }

    /// When the last transition was made.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }

    /// Who may take `action` now, or `None` if the action does not exist in
    /// this state.
    pub fn side_for(&self, action: &AlertAction) -> Option<Side> {
        use AlertAction as A;
        use AlertStatus as S;
        let sender = Side::Sender(self.sender);
        match (action, self.status) {
            (A::ModifyDraft { .. } | A::DiscardDraft | A::Submit, S::Draft)
            | (A::Rectify { .. } | A::Close, S::Broadcast)
            | (A::Withdraw, S::AwaitingValidation | S::Broadcast) => Some(sender),
            (A::Validate | A::Reject { .. }, S::AwaitingValidation) => {
                Some(Side::Validators(self.sender.country))
            }
            (A::Acknowledge, S::Broadcast) => Some(Side::Recipients(self.recipients.clone())),
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
        action: &AlertAction,
    ) -> Result<Transition<Alert>, TransitionError> {
        use AlertAction as A;
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
        let invalid = |problem| TransitionError::Invalid {
            action: name,
            problem,
        };

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
                next.status = AlertStatus::Discarded;
                vec![Effect::Forget]
            }
            A::Submit => {
                check_recipients(self.sender.country, &self.recipients, true, name)?;
                next.status = AlertStatus::AwaitingValidation;
                next.rejection = None;
                vec![Effect::Notify(Audience::AlertCoordinators(
                    self.sender.country,
                ))]
            }
            A::Validate => {
                next.status = AlertStatus::Broadcast;
                next.version = 1;
                next.validated_by = Some(actor.user);
                next.broadcast_at = Some(at);
                let mut effects = self.to_recipients(true);
                effects.push(Effect::Notify(Audience::Officials(self.sender)));
                effects
            }
            A::Reject { reason } => {
                if reason.trim().is_empty() {
                    return Err(invalid(InvalidArgument::MissingReason));
                }
                next.status = AlertStatus::Draft;
                next.rejection = Some(reason.clone());
                vec![Effect::Notify(Audience::Officials(self.sender))]
            }
            A::Acknowledge => {
                if !next.acknowledged.insert(actor.country) {
                    return Err(invalid(InvalidArgument::AlreadyAcknowledged {
                        country: actor.country,
                    }));
                }
                // The sender sees the acknowledgement in the case; a task per
                // country would only bury the tasks that matter.
                vec![Effect::Deliver(Destination::Authority(self.sender))]
            }
            A::Rectify { add_recipients } => {
                check_recipients(self.sender.country, add_recipients, false, name)?;
                next.recipients.extend(add_recipients.iter().copied());
                next.acknowledged.clear();
                next.version = self.version.saturating_add(1);
                next.to_recipients(true)
            }
            A::Withdraw => {
                let was_broadcast = self.status == AlertStatus::Broadcast;
                next.status = AlertStatus::Withdrawn;
                next.closed_at = Some(at);
                let mut effects = if was_broadcast {
                    self.to_recipients(true)
                } else {
                    // The validators' task goes away.
                    vec![Effect::Notify(Audience::AlertCoordinators(
                        self.sender.country,
                    ))]
                };
                effects.push(Effect::StartRetention { closed_at: at });
                effects
            }
            A::Close => {
                next.status = AlertStatus::Closed;
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
    /// alert coordinators if `notify`.
    fn to_recipients(&self, notify: bool) -> Vec<Effect> {
        self.recipients
            .iter()
            .flat_map(|country| {
                let deliver = Effect::Deliver(Destination::Country(*country));
                let task = notify.then_some(Effect::Notify(Audience::AlertCoordinators(*country)));
                std::iter::once(deliver).chain(task)
            })
            .collect()
    }

    /// Checks that the state is one the life cycle can produce. States made
    /// by [`Alert::draft`] and [`Alert::apply`] always are; call this on a
    /// state read from storage or received from another node.
    pub fn check(&self) -> Result<(), IncoherentState> {
        use AlertStatus as S;
        let status = self.status;
        let broadcast = matches!(status, S::Broadcast | S::Closed)
            || (status == S::Withdrawn && self.broadcast_at.is_some());
        let rules: [(bool, &'static str); 9] = [
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
                broadcast || self.acknowledged.is_empty(),
                "it is acknowledged but was never broadcast",
            ),
            (
                status == S::Draft || status == S::Discarded || !self.recipients.is_empty(),
                "it left the draft without recipients",
            ),
            (
                if broadcast {
                    self.version > 0 && self.validated_by.is_some() && self.broadcast_at.is_some()
                } else {
                    self.version == 0 && self.validated_by.is_none() && self.broadcast_at.is_none()
                },
                "a broadcast alert must have a version, a validator and a broadcast time, an unbroadcast one none",
            ),
            (
                self.rejection.is_none() || matches!(status, S::Draft | S::Discarded),
                "only a draft can carry a rejection",
            ),
            (
                matches!(status, S::Withdrawn | S::Closed) == self.closed_at.is_some(),
                "an alert has a closing time exactly when it is closed or withdrawn",
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
