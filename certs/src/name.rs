//! Node names and certificate serial numbers.

use std::fmt;
use std::str::FromStr;

/// The name of a node inside its country, such as `helsinki-1`: 1 to 63
/// characters, each a lowercase letter `a`–`z`, a digit or `-`.
///
/// Together with the country it identifies the node in the federation
/// (`FI/helsinki-1`) and it is certified in the node certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);

/// The longest node name allowed.
pub const MAX_NODE_NAME_LEN: usize = 63;

impl NodeName {
    /// Validates `name` as a node name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidNodeName> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > MAX_NODE_NAME_LEN {
            Some("it is longer than 63 characters")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Some("it may contain only lowercase letters a-z, digits and '-'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidNodeName { name, reason }),
            None => Ok(NodeName(name)),
        }
    }

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
        NodeName::new(s)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A node name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid node name {name:?}: {reason}; use 1 to 63 lowercase letters, digits or '-', e.g. helsinki-1"
)]
pub struct InvalidNodeName {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The serial number of a certificate, unique per issuer; revocation lists
/// name revoked certificates by it. Shown as lowercase hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A serial from big-endian bytes; leading zero bytes are ignored, so
    /// the same number always compares equal however it was encoded.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let mut digits = bytes[start..].to_vec();
        if digits.is_empty() {
            digits.push(0);
        }
        Serial(digits)
    }

    /// The minimal big-endian bytes of the number.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A fresh serial for a new certificate: a ULID (milliseconds since the
    /// epoch, then 80 random bits), so serials never repeat and sort by
    /// issue time.
    pub(crate) fn fresh() -> Self {
        Serial::from_bytes(&ulid::Ulid::new().to_bytes())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for Serial {
    type Err = InvalidSerial;

    /// Parses hexadecimal digits, optionally separated by `:` as many tools
    /// print them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: Vec<u8> = s.trim().bytes().filter(|&b| b != b':').collect();
        let invalid = || InvalidSerial { text: s.to_owned() };
        if digits.is_empty() {
            return Err(invalid());
        }
        let mut bytes = Vec::with_capacity(digits.len().div_ceil(2));
        // An odd count means the first digit stands alone.
        let (head, rest) = digits.split_at(digits.len() % 2);
        if let [d] = head {
            bytes.push(hex_value(*d).ok_or_else(invalid)?);
        }
        for pair in rest.chunks_exact(2) {
            let hi = hex_value(pair[0]).ok_or_else(invalid)?;
            let lo = hex_value(pair[1]).ok_or_else(invalid)?;
            bytes.push(hi << 4 | lo);
        }
        Ok(Serial::from_bytes(&bytes))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// Text that is not a hexadecimal serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a certificate serial number: expected hexadecimal digits such as 01f3a2")]
pub struct InvalidSerial {
    /// The text as given.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_follow_the_rule() {
        for good in ["helsinki-1", "a", "0", "lisboa", &"x".repeat(63)] {
            assert!(NodeName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Helsinki",
            "helsinki_1",
            "helsinki 1",
            "héls",
            "a/b",
            &"x".repeat(64),
        ] {
            assert!(NodeName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serials_round_trip_through_hex() {
        let serial = Serial::from_bytes(&[0, 0, 1, 0xab, 0x0c]);
        assert_eq!(serial.to_string(), "01ab0c");
        assert_eq!("01:ab:0c".parse::<Serial>().unwrap(), serial);
        assert_eq!("1ab0c".parse::<Serial>().unwrap(), serial);
        assert!("xyz".parse::<Serial>().is_err());
        assert!("".parse::<Serial>().is_err());
    }

    #[test]
    fn fresh_serials_differ() {
        assert_ne!(Serial::fresh(), Serial::fresh());
    }
}
