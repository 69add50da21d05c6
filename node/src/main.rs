//! `imi-node`: the daemon and operator commands of a country node.

fn main() {}
