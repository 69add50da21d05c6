//! Who may do what: the roles of imi users and the actor who makes a
//! state transition.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{AuthorityId, Country, UserId};

/// A role a user holds for one legislative area of their authority (or, for
/// the coordinator and observer roles, for their whole country).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Official who sends and answers requests on behalf of the authority.
    RequestHandler,
    /// Assigns incoming requests to request handlers; may also accept,
    /// forward or decline them.
    Allocator,
    /// Validates outgoing alerts of the country and acknowledges and
    /// disseminates incoming ones.
    AlertCoordinator,
    /// Keeps the authority's data and users up to date (local data
    /// administrator).
    AuthorityAdministrator,
    /// National IMI coordinator: approves authorities, watches overdue
    /// requests, may step into any case of the country.
    NationalCoordinator,
    /// The Commission's observer: sees alerts addressed to the Commission and
    /// statistics, never personal data of requests.
    CommissionObserver,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::RequestHandler,
        Role::Allocator,
        Role::AlertCoordinator,
        Role::AuthorityAdministrator,
        Role::NationalCoordinator,
        Role::CommissionObserver,
    ];

    /// The stable name used in files, the CLI and the API (`"request-handler"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::RequestHandler => "request-handler",
            Role::Allocator => "allocator",
            Role::AlertCoordinator => "alert-coordinator",
            Role::AuthorityAdministrator => "authority-administrator",
            Role::NationalCoordinator => "national-coordinator",
            Role::CommissionObserver => "commission-observer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that imi does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {name:?}: expected one of request-handler, allocator, alert-coordinator, authority-administrator, national-coordinator, commission-observer"
)]
pub struct UnknownRole {
    /// The name as given.
    pub name: String,
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s.trim())
            .ok_or_else(|| UnknownRole { name: s.to_owned() })
    }
}

/// The person making a state transition, as the state machines see them: who
/// they are, which authority and country they act for, and the roles they
/// hold for the legislative area of the case at hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user.
    pub user: UserId,
    /// The authority the user acts for.
    pub authority: AuthorityId,
    /// The authority's country.
    pub country: Country,
    /// The user's roles for the case's legislative area.
    pub roles: BTreeSet<Role>,
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the actor holds any of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|role| self.has(*role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(
            "admin"
                .parse::<Role>()
                .unwrap_err()
                .to_string()
                .contains("\"admin\"")
        );
    }
}
