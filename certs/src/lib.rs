//! The federation PKI of imi.
//!
//! Owns the Commission's federation root CA, the national CAs it certifies,
//! the node certificates that bind a country, a node name and a node's
//! libp2p ed25519 key, the signed revocation lists, and the verification of a
//! chain up to the pinned root. It must not know the network or storage: it
//! takes and returns PEM text and bytes.
