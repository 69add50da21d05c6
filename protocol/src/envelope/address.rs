//! Addresses of nodes: a country and the name of one of its nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Country, UnknownCountry};

/// The longest node name allowed, in characters (the limit of a DNS label).
pub const MAX_NODE_NAME_LEN: usize = 63;

/// The name of one node within its country, such as `helsinki-1`.
///
/// A name has 1 to 63 characters, each a lowercase ASCII letter, a digit or
/// `-`, so it can serve as a DNS label, a file name and a log field as is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeName(String);

/// A node name that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node name {input:?}: {reason}")]
pub struct InvalidNodeName {
    /// The name as given (cut to 80 characters).
    pub input: String,
    /// Why it is not a node name.
    pub reason: String,
}

impl NodeName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NodeName {
    type Err = InvalidNodeName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| InvalidNodeName {
            input: s.chars().take(80).collect(),
            reason,
        };
        if s.is_empty() {
            return Err(invalid("a node name needs at least one character".into()));
        }
        if let Some((position, c)) = s
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
        {
            return Err(invalid(format!(
                "character {} ({c:?}) is not allowed; use lowercase letters a-z, digits and '-'",
                position + 1
            )));
        }
        // Only ASCII is left, so the length in bytes is the length in characters.
        if s.len() > MAX_NODE_NAME_LEN {
            return Err(invalid(format!(
                "it has {} characters, more than the {MAX_NODE_NAME_LEN} allowed",
                s.len()
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for NodeName {
    type Error = InvalidNodeName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<NodeName> for String {
    fn from(name: NodeName) -> Self {
        name.0
    }
}

/// Where a message comes from or goes to: one node of one participant,
/// written `FI/helsinki-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeAddress {
    /// The participant that runs the node.
    pub country: Country,
    /// The node's name within its country.
    pub node: NodeName,
}

/// A node address that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNodeAddress {
    /// The text has no `/` between country and node name.
    #[error("invalid node address {input:?}: write it as country/node, such as FI/helsinki-1")]
    MissingSlash {
        /// The address as given (cut to 80 characters).
        input: String,
    },
    /// The part before the `/` is not a participant's code.
    #[error("invalid node address: {0}")]
    Country(#[from] UnknownCountry),
    /// The part after the `/` is not a node name.
    #[error("invalid node address: {0}")]
    Node(#[from] InvalidNodeName),
}

impl NodeAddress {
    /// The address of `node` in `country`.
    pub fn new(country: Country, node: NodeName) -> Self {
        Self { country, node }
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.country.code(), self.node)
    }
}

impl FromStr for NodeAddress {
    type Err = InvalidNodeAddress;

    /// Parses `FI/helsinki-1`; the country code may be in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (country, node) =
            s.split_once('/')
                .ok_or_else(|| InvalidNodeAddress::MissingSlash {
                    input: s.chars().take(80).collect(),
                })?;
        Ok(Self {
            country: country.parse()?,
            node: node.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_print_and_parse_as_country_slash_node() {
        let address: NodeAddress = "fi/helsinki-1".parse().unwrap();
        assert_eq!(address.country, Country::Fi);
        assert_eq!(address.node.as_str(), "helsinki-1");
        assert_eq!(address.to_string(), "FI/helsinki-1");
        assert_eq!(
            "EU/observer".parse::<NodeAddress>().unwrap().to_string(),
            "EU/observer"
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let err = "".parse::<NodeName>().unwrap_err();
        assert!(err.reason.contains("at least one character"), "{err}");
        let err = "Helsinki".parse::<NodeName>().unwrap_err();
        assert!(err.to_string().contains("character 1 ('H')"), "{err}");
        let err = "lisboa_2".parse::<NodeName>().unwrap_err();
        assert!(err.to_string().contains("character 7 ('_')"), "{err}");
        let err = "a".repeat(64).parse::<NodeName>().unwrap_err();
        assert!(err.to_string().contains("64 characters"), "{err}");
        assert!("a".repeat(63).parse::<NodeName>().is_ok());
        assert!("0-".parse::<NodeName>().is_ok());
    }

    #[test]
    fn bad_addresses_say_which_part_is_wrong() {
        let err = "helsinki-1".parse::<NodeAddress>().unwrap_err();
        assert!(matches!(err, InvalidNodeAddress::MissingSlash { .. }));
        assert!(err.to_string().contains("FI/helsinki-1"), "{err}");
        let err = "XX/node".parse::<NodeAddress>().unwrap_err();
        assert!(matches!(err, InvalidNodeAddress::Country(_)), "{err}");
        let err = "FI/".parse::<NodeAddress>().unwrap_err();
        assert!(matches!(err, InvalidNodeAddress::Node(_)), "{err}");
        let err = "FI/a/b".parse::<NodeAddress>().unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }

    #[test]
    fn decoding_checks_the_name_too() {
        let bad = postcard::to_stdvec("Not A Name").unwrap();
        assert!(postcard::from_bytes::<NodeName>(&bad).is_err());
    }

    proptest! {
        #[test]
        fn valid_addresses_round_trip(
            country in proptest::sample::select(Country::ALL.to_vec()),
            name in "[a-z0-9-]{1,63}",
        ) {
            let address = NodeAddress::new(country, name.parse().unwrap());
            prop_assert_eq!(address.to_string().parse::<NodeAddress>().unwrap(), address.clone());
            let bytes = postcard::to_stdvec(&address).unwrap();
            prop_assert_eq!(postcard::from_bytes::<NodeAddress>(&bytes).unwrap(), address);
        }
    }
}
