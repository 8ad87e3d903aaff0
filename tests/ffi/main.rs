//! The C ABI, called from Rust exactly as C calls it: the contract (NULL and bad arguments,
//! result codes, drops, panics), the committed header, relay, upgrade, raw and client
//! functions.

mod client;
mod contract;
mod header;
mod history;
mod jwt;
mod presence;
mod raw;
mod relay;
mod tls;
mod upgrade;
