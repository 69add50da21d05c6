//! The imi web layer.
//!
//! Owns the official's web UI, the public interface and the JSON API. It
//! reaches the node only through an interface it owns, never through redb or
//! libp2p types.
