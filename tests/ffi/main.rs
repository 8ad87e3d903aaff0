//! The C ABI, called from Rust exactly as C calls it: the contract (NULL and bad arguments,
//! result codes, drops, panics), the committed header, relay, upgrade and raw functions.

mod contract;
mod header;
mod raw;
mod relay;
mod upgrade;
