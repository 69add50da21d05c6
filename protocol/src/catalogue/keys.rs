//! The keys that name catalogue items: validated kebab-case slugs.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest key the catalogue accepts, in bytes.
const MAX_KEY_LEN: usize = 64;

/// A text that is not a valid catalogue key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {kind} key {key:?}: {reason}; keys are lower-case kebab-case slugs such as \"posting-of-workers\""
)]
pub struct InvalidKey {
    /// Which kind of key was expected (`"area"`, `"question"`).
    pub kind: &'static str,
    /// The text as given (cut to 80 characters).
    pub key: String,
    /// Why it is not a key.
    pub reason: &'static str,
}

/// Checks that `key` is a kebab-case slug: ASCII lower-case letters and
/// digits in words joined by single hyphens, starting with a letter, at most
/// 64 bytes.
pub(crate) fn check_slug(kind: &'static str, key: &str) -> Result<(), InvalidKey> {
    let refuse = |reason| InvalidKey {
        kind,
        key: key.chars().take(80).collect(),
        reason,
    };
    if key.is_empty() {
        return Err(refuse("it is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(refuse("it is longer than 64 characters"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(refuse(
            "it may contain only lower-case ASCII letters, digits and hyphens",
        ));
    }
    if !key.as_bytes()[0].is_ascii_lowercase() {
        return Err(refuse("it must start with a letter"));
    }
    if key.ends_with('-') || key.contains("--") {
        return Err(refuse(
            "hyphens must join words, never end a key or follow each other",
        ));
    }
    Ok(())
}

macro_rules! slug_key {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The key as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidKey;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                check_slug($kind, s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidKey;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                check_slug($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(key: $name) -> Self {
                key.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

slug_key!(
    /// The key of a legislative area (`"professional-qualifications"`).
    AreaKey,
    "area"
);
slug_key!(
    /// The key of a procedure (`"pq-information-request"`).
    ProcedureKey,
    "procedure"
);
slug_key!(
    /// The key of a regulated profession (`"doctor"`).
    ProfessionKey,
    "profession"
);
slug_key!(
    /// The key of a question set (`"pq-general"`).
    QuestionSetKey,
    "question set"
);
slug_key!(
    /// The key of a question, unique within its question set (`"date-of-birth"`).
    QuestionKey,
    "question"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_case_slugs_are_keys() {
        for ok in [
            "services",
            "posting-of-workers",
            "pq-56a-alert",
            "a",
            "x1-y2",
        ] {
            let key: AreaKey = ok.parse().unwrap();
            assert_eq!(key.as_str(), ok);
            assert_eq!(key.to_string(), ok);
        }
    }

    #[test]
    fn malformed_slugs_are_refused_with_a_reason() {
        for (bad, reason) in [
            ("", "empty"),
            ("Services", "lower-case"),
            ("posting_of_workers", "lower-case"),
            ("1-area", "start with a letter"),
            ("-area", "start with a letter"),
            ("area-", "hyphens"),
            ("two--hyphens", "hyphens"),
            ("ärzte", "lower-case"),
            ("with space", "lower-case"),
        ] {
            let err = bad.parse::<ProcedureKey>().unwrap_err();
            assert_eq!(err.kind, "procedure");
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
        }
        let long = "a".repeat(65);
        assert!(long.parse::<QuestionKey>().is_err());
        assert!("a".repeat(64).parse::<QuestionKey>().is_ok());
    }

    #[test]
    fn keys_travel_as_plain_strings_and_are_checked_on_arrival() {
        let key: ProfessionKey = "doctor".parse().unwrap();
        let postcard = postcard::to_allocvec(&key).unwrap();
        assert_eq!(
            postcard::from_bytes::<ProfessionKey>(&postcard).unwrap(),
            key
        );
        let bad = postcard::to_allocvec("Not A Key").unwrap();
        assert!(postcard::from_bytes::<ProfessionKey>(&bad).is_err());
    }
}
