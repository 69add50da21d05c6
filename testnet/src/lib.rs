//! imi-testnet: a whole federation on one machine.
//!
//! Builds N country nodes and the Commission's observer on loopback with a
//! generated PKI and realistic multilingual data, for tests, training and
//! benchmarks. It must not contain logic that production nodes need.
