//! The C ABI, called from Rust exactly as C calls it: the contract (NULL and bad arguments,
//! result codes, drops, panics), the committed header, relay, cluster, upgrade, raw and client
//! functions.

mod client;
mod cluster;
mod contract;
mod header;
mod history;
mod jwt;
mod presence;
mod raw;
mod relay;
mod tls;
mod upgrade;
