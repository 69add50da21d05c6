//! What the request, alert and notification state machines share: the
//! parties of a case, the outcome of a transition with the effects the node
//! must carry out, and the reasons a transition is refused.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Actor, AuthorityId, CaseId, Country, Date, Role, Timestamp, UserId};

/// An authority taking part in a case, with its country (whose node serves
/// it and whose national coordinator may act on its behalf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Party {
    /// The authority.
    pub authority: AuthorityId,
    /// The authority's country.
    pub country: Country,
}

impl Party {
    /// The authority an actor acts for.
    pub fn of(actor: &Actor) -> Self {
        Self {
            authority: actor.authority,
            country: actor.country,
        }
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authority {} ({})", self.authority, self.country)
    }
}

/// The outcome of an accepted transition: the next state and what the node
/// must do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition<S> {
    /// The state after the transition.
    pub state: S,
    /// What the node must do, in order.
    pub effects: Vec<Effect>,
}

/// Something a node must do because a transition happened.
///
/// Both nodes of an exchange compute the same effects from the same
/// transition. [`Effect::Deliver`] is carried out by the node where the
/// transition was made; every other effect by each node that serves the
/// party, audience or case it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Send the transition, in a signed envelope, to the node that serves the
    /// destination, and retry until its receipt arrives.
    Deliver(Destination),
    /// Put a task on the list of the audience and email those who asked for
    /// it. Raised only when the audience has something to do or is waiting
    /// for this news.
    Notify(Audience),
    /// (Re)start the reply-by timer of the case: it falls due at the end of
    /// `due`; a running timer is replaced.
    StartDeadline {
        /// The reply-by date.
        due: Date,
    },
    /// Stop the reply-by timer of the case (nothing is owed any more).
    StopDeadline,
    /// Start the data-protection clock: personal data of the case are
    /// blocked, then deleted, counted from `closed_at` (Regulation 1024/2012,
    /// Art. 14).
    StartRetention {
        /// When the case was closed.
        closed_at: Timestamp,
    },
    /// Stop the data-protection clock: the case is open again.
    StopRetention,
    /// The case never left this node: delete it.
    Forget,
}

/// Where a transition must be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// The node that serves one authority.
    Authority(Party),
    /// The node of a country that receives its incoming alerts and
    /// notifications (the Commission's observer node for [`Country::Eu`]).
    Country(Country),
}

/// Who a task is put before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Audience {
    /// The request handlers (and, for incoming requests, allocators) of one
    /// authority.
    Officials(Party),
    /// The alert coordinators of a country.
    AlertCoordinators(Country),
    /// The national coordinators of a country.
    NationalCoordinators(Country),
}

/// Who may make a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The authority that sends a request, or a national coordinator of its
    /// country.
    Requester(Party),
    /// The authority a request is addressed to, or a national coordinator of
    /// its country.
    Responder(Party),
    /// The authority that sends an alert or a notification, or a national
    /// coordinator of its country.
    Sender(Party),
    /// The alert coordinators or national coordinators of the sending country.
    Validators(Country),
    /// The coordinators of the countries an alert or notification is
    /// addressed to.
    Recipients(BTreeSet<Country>),
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Requester(party) => write!(
                f,
                "the requesting {party} or a national coordinator of {}",
                party.country
            ),
            Side::Responder(party) => write!(
                f,
                "the responding {party} or a national coordinator of {}",
                party.country
            ),
            Side::Sender(party) => write!(
                f,
                "the sending {party} or a national coordinator of {}",
                party.country
            ),
            Side::Validators(country) => write!(
                f,
                "an alert coordinator or national coordinator of {country}"
            ),
            Side::Recipients(countries) => write!(
                f,
                "a coordinator of one of the addressed countries ({})",
                join(countries.iter())
            ),
        }
    }
}

/// Why a transition was refused. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The action does not exist in the case's current state.
    #[error("cannot {action}: the {case} is {state}")]
    NotAllowed {
        /// The kind of case (`"request"`).
        case: &'static str,
        /// The state the case is in, with anything pending.
        state: String,
        /// What was tried (`"accept the request"`).
        action: &'static str,
    },
    /// The actor is on the right side but lacks the role for the action.
    #[error("to {action} you need one of the roles {}", join(needed.iter()))]
    MissingRole {
        /// What was tried.
        action: &'static str,
        /// Any one of these roles would do.
        needed: Vec<Role>,
    },
    /// The actor is not one of those who may make the transition.
    #[error("only {side} may {action}")]
    WrongSide {
        /// What was tried.
        action: &'static str,
        /// Who may.
        side: Side,
    },
    /// The action's arguments do not fit the case.
    #[error("cannot {action}: {problem}")]
    Invalid {
        /// What was tried.
        action: &'static str,
        /// What is wrong with it.
        problem: InvalidArgument,
    },
}

/// What is wrong with an action's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidArgument {
    /// No legislative area was given.
    #[error("choose the legislative area of the case")]
    EmptyArea,
    /// A rating outside 1..=5.
    #[error("the {aspect} rating must be from 1 to 5, not {value}")]
    RatingOutOfRange {
        /// `"timeliness"` or `"effort"`.
        aspect: &'static str,
        /// The rating given.
        value: u8,
    },
    /// A reply-by date before today.
    #[error("the reply-by date {deadline} is in the past (today is {today}); choose a later date")]
    DeadlineInPast {
        /// The date given.
        deadline: Date,
        /// The day of the transition.
        today: Date,
    },
    /// A proposed reply-by date equal to the current one.
    #[error("{deadline} is already the reply-by date; propose a different one")]
    DeadlineUnchanged {
        /// The date given.
        deadline: Date,
    },
    /// A request addressed to the authority that sends it.
    #[error("{authority} cannot send a request to itself; choose another authority")]
    OwnAuthority {
        /// The requesting authority.
        authority: AuthorityId,
    },
    /// A request forwarded to the authority that already holds it.
    #[error("the request is already with authority {authority}; choose another authority")]
    ForwardToCurrentResponder {
        /// The current responder.
        authority: AuthorityId,
    },
    /// A request allocated to the handler who already has it.
    #[error("the request is already allocated to {handler}; choose another handler")]
    HandlerUnchanged {
        /// The handler chosen.
        handler: UserId,
    },
    /// An alert or notification with no recipient.
    #[error("choose at least one recipient country or the Commission")]
    NoRecipients,
    /// An alert or notification addressed to its own country.
    #[error("{country} sends it and cannot also be one of its recipients")]
    OwnCountryAddressed {
        /// The sender's country.
        country: Country,
    },
    /// A second acknowledgement of the same version by the same country.
    #[error("{country} has already acknowledged this version")]
    AlreadyAcknowledged {
        /// The acknowledging country.
        country: Country,
    },
    /// A rejection without a reason.
    #[error("give the reason, so that the sender can correct the draft")]
    MissingReason,
}

/// A stored or received state that no sequence of transitions can produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{case} {id} is incoherent: {problem}")]
pub struct IncoherentState {
    /// The kind of case.
    pub case: &'static str,
    /// The case.
    pub id: CaseId,
    /// What does not fit.
    pub problem: &'static str,
}

fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|item| item.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `actor` may act as `side`, holding one of `roles`.
///
/// For a party side the actor must act for that authority and hold one of
/// `roles`, or be a national coordinator of the party's country (who may step
/// into any case of the country). For the country sides the actor's country
/// must be the one (or one of those) named and the actor must hold one of
/// `roles`.
pub(crate) fn authorize(
    actor: &Actor,
    side: &Side,
    roles: &[Role],
    action: &'static str,
) -> Result<(), TransitionError> {
    let wrong_side = || TransitionError::WrongSide {
        action,
        side: side.clone(),
    };
    match side {
        Side::Requester(party) | Side::Responder(party) | Side::Sender(party) => {
            if actor.has(Role::NationalCoordinator) && actor.country == party.country {
                return Ok(());
            }
            if actor.authority != party.authority {
                return Err(wrong_side());
            }
        }
        Side::Validators(country) => {
            if actor.country != *country {
                return Err(wrong_side());
            }
        }
        Side::Recipients(countries) => {
            if !countries.contains(&actor.country) {
                return Err(wrong_side());
            }
        }
    }
    if actor.has_any(roles) {
        Ok(())
    } else {
        Err(TransitionError::MissingRole {
            action,
            needed: roles.to_vec(),
        })
    }
}

/// Checks a legislative area slug.
pub(crate) fn check_area(area: &str, action: &'static str) -> Result<(), TransitionError> {
    if area.trim().is_empty() {
        Err(TransitionError::Invalid {
            action,
            problem: InvalidArgument::EmptyArea,
        })
    } else {
        Ok(())
    }
}

/// Checks the recipients of an alert or notification sent from `sender`.
pub(crate) fn check_recipients(
    sender: Country,
    recipients: &BTreeSet<Country>,
    required: bool,
    action: &'static str,
) -> Result<(), TransitionError> {
    let invalid = |problem| TransitionError::Invalid { action, problem };
    if recipients.contains(&sender) {
        return Err(invalid(InvalidArgument::OwnCountryAddressed {
            country: sender,
        }));
    }
    if required && recipients.is_empty() {
        return Err(invalid(InvalidArgument::NoRecipients));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Authorities and actors shared by the state machine tests.

    use std::collections::BTreeSet;

    use crate::{Actor, AuthorityId, Country, Date, Party, Role, Timestamp, UserId};

    /// A Finnish authority (Valvira in the seed scenario).
    pub(crate) const FI_AUTHORITY: u128 = 0xF1;
    /// A Portuguese authority (the medical council in the seed scenario).
    pub(crate) const PT_AUTHORITY: u128 = 0xB1;
    /// A second Portuguese authority.
    pub(crate) const PT_OTHER: u128 = 0xB2;
    /// A German authority.
    pub(crate) const DE_AUTHORITY: u128 = 0xD1;
    /// The Finnish national coordinator's authority.
    pub(crate) const FI_COORDINATION: u128 = 0xF0;
    /// The Portuguese national coordinator's authority.
    pub(crate) const PT_COORDINATION: u128 = 0xB0;
    /// The German national coordinator's authority.
    pub(crate) const DE_COORDINATION: u128 = 0xD0;
    /// The Commission.
    pub(crate) const COMMISSION: u128 = 0xE0;

    pub(crate) fn authority(n: u128) -> AuthorityId {
        AuthorityId::from_parts(1, n)
    }

    pub(crate) fn country_of(n: u128) -> Country {
        match n >> 4 {
            0xF => Country::Fi,
            0xB => Country::Pt,
            0xD => Country::De,
            _ => Country::Eu,
        }
    }

    pub(crate) fn party(n: u128) -> Party {
        Party {
            authority: authority(n),
            country: country_of(n),
        }
    }

    /// An actor of authority `n` holding `roles`; the user id is derived
    /// from both so different actors are different users.
    pub(crate) fn actor(n: u128, roles: &[Role]) -> Actor {
        let role_bits = roles
            .iter()
            .fold(0u128, |bits, role| bits | 1 << (*role as u32));
        Actor {
            user: UserId::from_parts(2, n << 8 | role_bits),
            authority: authority(n),
            country: country_of(n),
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        }
    }

    /// An official of `party` holding `roles`.
    pub(crate) fn official(party: Party, roles: &[Role]) -> Actor {
        let role_bits = roles
            .iter()
            .fold(0u128, |bits, role| bits | 1 << (*role as u32));
        Actor {
            user: UserId::from_parts(
                3,
                u128::from_be_bytes(party.authority.to_bytes()) ^ role_bits,
            ),
            authority: party.authority,
            country: party.country,
            roles: roles.iter().copied().collect::<BTreeSet<_>>(),
        }
    }

    pub(crate) fn date(s: &str) -> Date {
        s.parse().expect("test dates are valid")
    }

    /// 2026-11-02T09:30:00Z plus `hours`.
    pub(crate) fn at(hours: u64) -> Timestamp {
        Timestamp::from_millis(1_793_611_800_000 + hours * 3_600_000)
    }
}
