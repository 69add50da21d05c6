//! Identifiers of authorities, users, cases and messages.
//!
//! Every id is a [ULID](https://github.com/ulid/spec): 128 bits, sortable by
//! creation time, collision-free without coordination between nodes, written
//! as 26 Crockford base-32 characters. Each kind of id is its own type so a
//! case id can never be passed where a message id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// An id that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {input:?}: {reason}")]
pub struct InvalidId {
    /// Which kind of id was expected (`"case"`).
    pub kind: &'static str,
    /// The text as given (cut to 64 characters).
    pub input: String,
    /// Why it is not an id.
    pub reason: &'static str,
}

macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Ulid);

        impl $name {
            /// A new id for something created now.
            pub fn new() -> Self {
                Self(Ulid::new())
            }

            /// The id made of a millisecond timestamp and 80 random bits, for
            /// callers that bring their own clock and randomness.
            pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
                Self(Ulid::from_parts(timestamp_ms, random))
            }

            /// The id as 16 big-endian bytes.
            pub fn to_bytes(self) -> [u8; 16] {
                self.0.to_bytes()
            }

            /// The id from 16 big-endian bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Ulid::from_bytes(bytes))
            }

            /// Milliseconds since the Unix epoch at which the id was made.
            pub fn timestamp_ms(self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_ulid(s, $kind).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.to_string()
            }
        }
    };
}

fn parse_ulid(s: &str, kind: &'static str) -> Result<Ulid, InvalidId> {
    let invalid = |reason| InvalidId {
        kind,
        input: s.chars().take(64).collect(),
        reason,
    };
    if s.len() != ulid::ULID_LEN {
        return Err(invalid("an id has exactly 26 characters"));
    }
    // 26 base-32 digits hold 130 bits; a ULID has 128, so the first digit is 0-7.
    if !matches!(s.as_bytes()[0], b'0'..=b'7') {
        return Err(invalid(
            "the value is out of range (the first character must be 0-7)",
        ));
    }
    Ulid::from_string(s).map_err(|err| match err {
        ulid::DecodeError::InvalidChar => {
            invalid("only digits and the letters of Crockford base 32 may appear")
        }
        ulid::DecodeError::InvalidLength => invalid("an id has exactly 26 characters"),
    })
}

ulid_id!(
    /// A competent authority (or coordinator) registered in imi.
    AuthorityId,
    "authority"
);
ulid_id!(
    /// A user account of an official on a country's node.
    UserId,
    "user"
);
ulid_id!(
    /// A case: one request, alert, notification or public case, which keeps
    /// the same id through its whole life on every node.
    CaseId,
    "case"
);
ulid_id!(
    /// One signed message (envelope) exchanged between nodes.
    MessageId,
    "message"
);
ulid_id!(
    /// One step an official took in a case; it keeps its id from the node
    /// where it was taken to the case's log on every node.
    StepId,
    "step"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_ids_are_distinct_and_sort_by_time() {
        let a = CaseId::from_parts(1_000, 5);
        let b = CaseId::from_parts(2_000, 1);
        assert!(a < b);
        assert_ne!(CaseId::new(), CaseId::new());
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let err = "01J".parse::<CaseId>().unwrap_err();
        assert_eq!(err.kind, "case");
        assert!(err.to_string().contains("26 characters"), "{err}");
        let err = "01ARZ3NDEKTSV4RRFFQ69G5FAU".parse::<UserId>().unwrap_err();
        assert!(err.to_string().contains("Crockford"), "{err}");
        let err = "81ARZ3NDEKTSV4RRFFQ69G5FAV"
            .parse::<MessageId>()
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    proptest! {
        #[test]
        fn ids_round_trip_through_text_and_bytes(ts in 0u64..(1 << 48), rnd in any::<u128>()) {
            let id = AuthorityId::from_parts(ts, rnd);
            prop_assert_eq!(id.to_string().parse::<AuthorityId>().unwrap(), id);
            prop_assert_eq!(AuthorityId::from_bytes(id.to_bytes()), id);
            prop_assert_eq!(id.timestamp_ms(), ts);
        }
    }
}
