//! The imi node: the daemon a country runs.
//!
//! Owns the redb store, the libp2p swarm with admission of certified peers,
//! store-and-forward delivery of signed envelopes with receipts, replication
//! of the directory with Automerge, retention and notifications. It must not
//! render HTML: [`ui`] implements the web layer's interface, and the web
//! layer renders.

pub mod admin;
pub mod admission;
pub mod cases;
pub mod config;
pub mod delivery;
pub mod directory;
pub mod index;
pub mod net;
pub mod node;
pub mod peers;
mod publish;
pub mod status;
pub mod store;
pub mod ui;
pub mod wal;
