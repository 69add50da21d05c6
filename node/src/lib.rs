//! The imi node: the daemon a country runs.
//!
//! Owns the redb store, the libp2p swarm with admission of certified peers,
//! store-and-forward delivery of signed envelopes with receipts, replication
//! of the directory with Automerge, retention and notifications. It must not
//! render HTML: [`ui`] implements the web layer's interface, and the web
//! layer renders.

pub mod admin;
pub mod cases;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod index;
pub mod net;
pub use net::{admission, peers};
pub mod node;
mod publish;
pub mod routes;
pub mod status;
pub mod store;
pub mod ui;
/// The store's write-ahead log, at its old path for the modules that open a
/// stopped node's store directly.
pub use store::wal;
