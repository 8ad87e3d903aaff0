//! The C ABI: thin, `extern "C"` translations of the safe API in [`crate::Server`] and
//! [`crate::Client`].
//!
//! The contract is `include/wsbroker.h`, generated from this module by cbindgen (see
//! `build.rs` and `cbindgen.toml`); the doc comments here become the header's documentation.
//!
//! Every export follows the same shape: check and convert its arguments (pointer + length
//! strings, header arrays, small enums passed as integers), call one method of the safe API,
//! map the `Result` to a [`wsb_result`] code and record a detail message for
//! [`wsb_last_error`] / [`wsb_server_last_error`]. The body runs inside [`ffi_guard!`], which
//! catches panics so that none unwinds into C.
//!
//! Modules:
//! - `macros`: the guard and the per-return-type value used on panic;
//! - `result`: [`wsb_result`], the mapping from [`crate::Error`], the last-error store;
//! - `convert`: arguments from C (strings, bytes, headers, out-pointers);
//! - `callbacks`: `user_data` ownership (drop-once) and the "inside a callback" depth;
//! - `events`: Rust events to [`wsb_event`] with owned storage;
//! - `config`, `server`, `raw` (raw WebSocket mode): the exported functions; `log`: the
//!   process-wide log callback;
//! - `client`: `wsb_client_config` and `wsb_client`, the STOMP/WebSocket client
//!   ([`crate::Client`]).
//!
//! The exports are `unsafe extern "C" fn`s when they take pointers: C does not see the
//! difference, and Rust callers have to uphold the header's pointer rules.

#![allow(non_camel_case_types)]

// The declaration order is the order of the header's sections (cbindgen keeps it).
#[macro_use]
mod macros;

mod result;

mod log;

mod callbacks;
mod events;

mod config;

mod jwt;
mod relay;
mod cluster;

mod server;

mod history;
mod presence;

mod raw;
mod upgrade;

mod client;

mod convert;

pub use callbacks::{
    wsb_app_callback, wsb_drop_callback, wsb_event_callback, wsb_log_callback, wsb_wake_callback,
};
pub use client::*;
pub use cluster::*;
pub use config::*;
pub use events::{
    WSB_EVENT_APP_MESSAGE, WSB_EVENT_BACKPLANE_AVAILABLE, WSB_EVENT_BACKPLANE_UNAVAILABLE,
    WSB_EVENT_BROKER_AVAILABLE, WSB_EVENT_BROKER_UNAVAILABLE,
    WSB_EVENT_CONNECT, WSB_EVENT_DISCONNECT, WSB_EVENT_MESSAGE, WSB_EVENT_MESSAGES_DROPPED,
    WSB_EVENT_OVERFLOW, WSB_EVENT_RAW_CLOSE, WSB_EVENT_RAW_MESSAGE, WSB_EVENT_RAW_OPEN,
    WSB_EVENT_SUBSCRIBE, WSB_TRANSPORT_NONE, WSB_TRANSPORT_TCP, WSB_TRANSPORT_WEBSOCKET, wsb_event,
    wsb_header,
};
pub use history::*;
pub use presence::*;
pub use log::*;
pub use raw::*;
pub use jwt::*;
pub use relay::*;
pub use result::{wsb_last_error, wsb_result, wsb_result_str};
pub use server::*;
/// The server's counters as C sees them: the safe API's [`crate::Stats`] (cbindgen names it
/// `wsb_stats`).
pub use crate::broker::Stats as wsb_stats;
pub use crate::cluster::ClusterStats as wsb_cluster_stats;
pub use upgrade::*;

use std::ffi::c_char;

/// Version of the C ABI described by this header; `wsb_abi_version()` returns the library's.
/// 2: `wsb_event` gained the raw-mode fields (`binary`, `close_code`, `query`, `reason`).
/// 3: `wsb_stats` gained the flow-control counters (`publishers_paused`, `publishes_refused`);
/// the client API (`wsb_client_*`, `wsb_client_event`) was added.
/// 4: `wsb_stats` gained the token-authentication counters (`auth_refused`, `auth_denied`,
/// `auth_expired`, `auth_refreshed`); `wsb_config_set_jwt_*` were added.
/// 5: cluster mode: `wsb_config_set_cluster_*`, `wsb_server_cluster_stats` (`wsb_cluster_stats`)
/// and the `WSB_EVENT_BACKPLANE_*` events were added.
pub const WSB_ABI_VERSION: u32 = 5;

/// The library version, e.g. "0.1.0" (static, NUL-terminated).
#[unsafe(no_mangle)]
pub extern "C" fn wsb_version() -> *const c_char {
    ffi_guard!({
        concat!(env!("CARGO_PKG_VERSION"), "\0")
            .as_ptr()
            .cast::<c_char>()
    })
}

/// The ABI version of the loaded library: compare with `WSB_ABI_VERSION`.
#[unsafe(no_mangle)]
pub extern "C" fn wsb_abi_version() -> u32 {
    ffi_guard!({ WSB_ABI_VERSION })
}

/// `which` for `wsb_struct_size`: the `wsb_event` struct.
pub const WSB_STRUCT_EVENT: u32 = 1;
/// `which` for `wsb_struct_size`: the `wsb_header` struct.
pub const WSB_STRUCT_HEADER: u32 = 2;
/// `which` for `wsb_struct_size`: the `wsb_stats` struct.
pub const WSB_STRUCT_STATS: u32 = 3;
/// `which` for `wsb_struct_size`: the `wsb_client_event` struct.
pub const WSB_STRUCT_CLIENT_EVENT: u32 = 4;
/// `which` for `wsb_struct_size`: the `wsb_cluster_stats` struct.
pub const WSB_STRUCT_CLUSTER_STATS: u32 = 5;

/// `sizeof` of a shared struct as this library was built (`WSB_STRUCT_*`), 0 for an unknown
/// value: bindings that declare the structs themselves (ctypes, FFI generators) compare their
/// layout with it when they load the library.
#[unsafe(no_mangle)]
pub extern "C" fn wsb_struct_size(which: u32) -> usize {
    ffi_guard!({
        match which {
            WSB_STRUCT_EVENT => std::mem::size_of::<wsb_event>(),
            WSB_STRUCT_HEADER => std::mem::size_of::<wsb_header>(),
            WSB_STRUCT_STATS => std::mem::size_of::<wsb_stats>(),
            WSB_STRUCT_CLIENT_EVENT => std::mem::size_of::<wsb_client_event>(),
            WSB_STRUCT_CLUSTER_STATS => std::mem::size_of::<wsb_cluster_stats>(),
            _ => 0,
        }
    })
}

/// Test-only (cargo feature `ffi-test-panic`): panics inside the guard and returns
/// `WSB_ERR_PANIC`, with the panic message in `wsb_last_error`.
#[cfg(feature = "ffi-test-panic")]
#[unsafe(no_mangle)]
pub extern "C" fn wsb_debug_panic() -> wsb_result {
    ffi_guard!({
        if WSB_ABI_VERSION > 0 {
            panic!("wsb_debug_panic: deliberate panic inside the FFI guard");
        }
        wsb_result::WSB_OK
    })
}
