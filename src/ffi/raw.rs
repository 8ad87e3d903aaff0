//! `wsb_server_*raw*`: raw WebSocket mode (no STOMP), each a translation of one `Server` method.
//! Raw connection ids come in `WSB_EVENT_RAW_OPEN` events; a closed connection's id gives
//! `WSB_ERR_NOT_FOUND` (ids are never reused).

use std::ffi::c_char;

use super::config::{
    WSB_SLOW_CONSUMER_DISCONNECT, WSB_SLOW_CONSUMER_DROP_NEWEST, WSB_SLOW_CONSUMER_DROP_OLDEST,
};
use super::convert::{bytes_arg, opt_str_arg, out_arg, str_arg};
use super::result::{FfiError, FfiResult, wsb_result};
use super::server::{with_server, wsb_server};
use crate::Server;
use crate::broker::SlowConsumerPolicy;
use crate::raw::{RawBehaviour, RawEndpointOptions};

/// Raw endpoint behaviour: client messages become `WSB_EVENT_RAW_MESSAGE` events (needs poll
/// or callback delivery).
pub const WSB_RAW_HOST: u32 = 0;
/// Raw endpoint behaviour: every client message goes to every other client of the endpoint,
/// same opcode, inside the server.
pub const WSB_RAW_BROADCAST: u32 = 1;
/// Raw endpoint behaviour: every client message goes back to its sender, inside the server.
pub const WSB_RAW_ECHO: u32 = 2;
/// `slow_consumer_policy` of `wsb_server_add_raw_endpoint`: the server's policy
/// (`wsb_config_set_slow_consumer_policy`).
pub const WSB_RAW_POLICY_SERVER: u32 = 255;

fn behaviour(value: u32) -> Result<RawBehaviour, FfiError> {
    match value {
        WSB_RAW_HOST => Ok(RawBehaviour::Host),
        WSB_RAW_BROADCAST => Ok(RawBehaviour::Broadcast),
        WSB_RAW_ECHO => Ok(RawBehaviour::Echo),
        other => Err(FfiError::invalid(format!(
            "behaviour: {other} is not a WSB_RAW_* value"
        ))),
    }
}

fn policy(value: u32) -> Result<Option<SlowConsumerPolicy>, FfiError> {
    match value {
        WSB_RAW_POLICY_SERVER => Ok(None),
        WSB_SLOW_CONSUMER_DISCONNECT => Ok(Some(SlowConsumerPolicy::Disconnect)),
        WSB_SLOW_CONSUMER_DROP_OLDEST => Ok(Some(SlowConsumerPolicy::DropOldest)),
        WSB_SLOW_CONSUMER_DROP_NEWEST => Ok(Some(SlowConsumerPolicy::DropNewest)),
        other => Err(FfiError::invalid(format!(
            "slow_consumer_policy: {other} is not a WSB_SLOW_CONSUMER_* value or WSB_RAW_POLICY_SERVER"
        ))),
    }
}

/// Writes `value` to an optional out-pointer (NULL: the caller does not want it).
///
/// # Safety
/// `out` is NULL or valid for writing.
unsafe fn write_if_wanted<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable (the caller).
        unsafe { out.write(value) };
    }
}

/// The shared body of `wsb_server_raw_subscribe` / `_unsubscribe`: checks the topic, calls
/// `change` and reports whether it changed anything (1/0) through the optional `out_changed`.
///
/// # Safety
/// As `wsb_server_raw_subscribe`.
unsafe fn change_subscription(
    server: *mut wsb_server,
    conn: u64,
    topic: *const c_char,
    topic_len: usize,
    out_changed: *mut u32,
    change: fn(&Server, u64, &str) -> crate::Result<bool>,
) -> FfiResult {
    with_server(server, |s| {
        // SAFETY: see the function's safety section.
        let topic = unsafe { str_arg(topic, topic_len, "topic")? };
        let changed = change(&s.server, conn, topic)?;
        // SAFETY: see the function's safety section.
        unsafe { write_if_wanted(out_changed, u32::from(changed)) };
        Ok(())
    })
}

/// The shared body of the per-connection getters: checks `out`, then writes to it what `get`
/// returns for `conn`.
fn get_for_conn<T>(
    server: *const wsb_server,
    conn: u64,
    out: *mut T,
    what: &str,
    get: fn(&Server, u64) -> crate::Result<T>,
) -> FfiResult {
    with_server(server, |s| {
        let out = out_arg(out, what)?;
        let value = get(&s.server, conn)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(value) };
        Ok(())
    })
}

/// Registers a raw WebSocket endpoint at `path` (exact match of the request path, not the
/// STOMP path); before or after `wsb_server_start`. `behaviour` is `WSB_RAW_*`;
/// `WSB_RAW_HOST` needs poll or callback delivery. `subprotocols` is a comma-separated list
/// in preference order (NULL/0: none is ever selected); `slow_consumer_policy` is
/// `WSB_SLOW_CONSUMER_*` or `WSB_RAW_POLICY_SERVER`; `max_message_size` bounds client
/// messages (0: the server's limit). Every raw endpoint reports `WSB_EVENT_RAW_OPEN` and
/// `WSB_EVENT_RAW_CLOSE` when events are on. Strings are copied.
///
/// # Safety
/// `server` is NULL or a live server; `path` and `subprotocols` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_add_raw_endpoint(
    server: *mut wsb_server,
    path: *const c_char,
    path_len: usize,
    behaviour_kind: u32,
    subprotocols: *const c_char,
    subprotocols_len: usize,
    slow_consumer_policy: u32,
    max_message_size: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            add_raw_endpoint(
                server,
                (path, path_len),
                behaviour_kind,
                (subprotocols, subprotocols_len),
                slow_consumer_policy,
                max_message_size,
                None,
            )
        }
    })
}

/// As `wsb_server_add_raw_endpoint`, and the endpoint is also served over SockJS 0.3 with its
/// path as the SockJS prefix (`PATH/info`, `PATH/<server>/<session>/xhr`, ...,
/// `PATH/websocket`), for clients such as sockjs-client. `websocket` offers SockJS's websocket
/// transport; `cookie_needed` sets a JSESSIONID cookie; `response_limit` (0: the server's)
/// ends streaming responses after that many bytes. SockJS carries text: binary messages are
/// not sent to SockJS connections (counted in `dropped`).
///
/// # Safety
/// As `wsb_server_add_raw_endpoint`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments, reason = "a C function's flat argument list")]
pub unsafe extern "C" fn wsb_server_add_raw_sockjs_endpoint(
    server: *mut wsb_server,
    path: *const c_char,
    path_len: usize,
    behaviour_kind: u32,
    slow_consumer_policy: u32,
    max_message_size: usize,
    websocket: bool,
    cookie_needed: bool,
    response_limit: usize,
) -> wsb_result {
    ffi_guard!(result {
        let sockjs = crate::raw::RawSockJs {
            websocket,
            cookie_needed,
            response_limit: (response_limit > 0).then_some(response_limit),
        };
        // SAFETY: the caller's guarantees, passed on.
        unsafe {
            add_raw_endpoint(
                server,
                (path, path_len),
                behaviour_kind,
                (std::ptr::null(), 0),
                slow_consumer_policy,
                max_message_size,
                Some(sockjs),
            )
        }
    })
}

/// The shared body of the two `wsb_server_add_raw_*endpoint` functions.
///
/// # Safety
/// As `wsb_server_add_raw_endpoint`.
unsafe fn add_raw_endpoint(
    server: *mut wsb_server,
    (path, path_len): (*const c_char, usize),
    behaviour_kind: u32,
    (subprotocols, subprotocols_len): (*const c_char, usize),
    slow_consumer_policy: u32,
    max_message_size: usize,
    sockjs: Option<crate::raw::RawSockJs>,
) -> FfiResult {
    with_server(server, |s| {
        // SAFETY: see the function's safety section.
        let path = unsafe { str_arg(path, path_len, "path")? };
        // SAFETY: see the function's safety section.
        let protocols = unsafe { opt_str_arg(subprotocols, subprotocols_len, "subprotocols")? };
        let options = RawEndpointOptions {
            behaviour: behaviour(behaviour_kind)?,
            subprotocols: protocols
                .into_iter()
                .flat_map(|list| list.split(','))
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            slow_consumer_policy: policy(slow_consumer_policy)?,
            max_message_size: (max_message_size > 0).then_some(max_message_size),
            sockjs,
            // Compression as the server's config says (wsb_config_set_permessage_deflate).
            ..RawEndpointOptions::default()
        };
        Ok(s.server.add_raw_endpoint(path, options)?)
    })
}

/// Subscribes raw connection `conn` to `topic` (exact name; copied). `*out_added` (may be
/// NULL) is 1 when it was added, 0 when it was already subscribed.
///
/// # Safety
/// `server` is NULL or a live server; `topic` is NULL or valid for `topic_len` bytes;
/// `out_added` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_subscribe(
    server: *mut wsb_server,
    conn: u64,
    topic: *const c_char,
    topic_len: usize,
    out_added: *mut u32,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe {
            change_subscription(server, conn, topic, topic_len, out_added, Server::raw_subscribe)
        }
    })
}

/// Unsubscribes raw connection `conn` from `topic`. `*out_removed` (may be NULL) is 1 when it
/// was subscribed, 0 otherwise.
///
/// # Safety
/// `server` is NULL or a live server; `topic` is NULL or valid for `topic_len` bytes;
/// `out_removed` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_unsubscribe(
    server: *mut wsb_server,
    conn: u64,
    topic: *const c_char,
    topic_len: usize,
    out_removed: *mut u32,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe {
            change_subscription(
                server,
                conn,
                topic,
                topic_len,
                out_removed,
                Server::raw_unsubscribe,
            )
        }
    })
}

/// Sends `data` as one message (`binary` 0: text, must be UTF-8; 1: binary) to every raw
/// connection subscribed to `topic`. Copied once and shared by every receiver; never blocks.
/// `*out_receivers` (may be NULL) is how many connections queued it.
///
/// # Safety
/// `server` is NULL or a live server; `topic` and `data` are NULL or valid for their
/// lengths; `out_receivers` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_publish(
    server: *mut wsb_server,
    topic: *const c_char,
    topic_len: usize,
    data: *const u8,
    data_len: usize,
    binary: u32,
    out_receivers: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY (these two): see the function's safety section.
            // SAFETY: see the function's safety section.
            let topic = unsafe { str_arg(topic, topic_len, "topic")? };
            // SAFETY: see the function's safety section.
            let data = unsafe { bytes_arg(data, data_len, "data")? };
            let receivers = s.server.raw_publish(topic, data, binary != 0)?;
            // SAFETY: see the function's safety section.
            unsafe { write_if_wanted(out_receivers, receivers) };
            Ok(())
        })
    })
}

/// Sends `data` as one message (`binary` 0: text, must be UTF-8; 1: binary) to raw connection
/// `conn`. Copied; never blocks: `WSB_ERR_BACKPRESSURE` when it was not queued (the
/// connection is closing or, under a drop policy, its queue is full).
///
/// # Safety
/// `server` is NULL or a live server; `data` is NULL or valid for `data_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_send(
    server: *mut wsb_server,
    conn: u64,
    data: *const u8,
    data_len: usize,
    binary: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let data = unsafe { bytes_arg(data, data_len, "data")? };
            Ok(s.server.raw_send(conn, data, binary != 0)?)
        })
    })
}

/// Closes raw connection `conn` with WebSocket close `code` (1000-1003, 1007-1014,
/// 3000-4999) and `reason` (at most 123 bytes, copied; NULL/0 for none) after what is
/// already queued for it.
///
/// # Safety
/// `server` is NULL or a live server; `reason` is NULL or valid for `reason_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_close(
    server: *mut wsb_server,
    conn: u64,
    code: u16,
    reason: *const c_char,
    reason_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let reason = unsafe { opt_str_arg(reason, reason_len, "reason")? };
            Ok(s.server.raw_close(conn, code, reason.unwrap_or(""))?)
        })
    })
}

/// Attaches a host value to raw connection `conn` (a pointer cast to `uint64_t`, an index,
/// ...; the host owns whatever it refers to). 0 until set.
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_set_user_data(
    server: *mut wsb_server,
    conn: u64,
    value: u64,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| Ok(s.server.raw_set_user_data(conn, value)?))
    })
}

/// The host value attached to raw connection `conn`, in `*out_value`.
///
/// # Safety
/// `server` is NULL or a live server; `out_value` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_user_data(
    server: *const wsb_server,
    conn: u64,
    out_value: *mut u64,
) -> wsb_result {
    ffi_guard!(result {
        get_for_conn(server, conn, out_value, "out_value", Server::raw_user_data)
    })
}

/// Bytes queued for raw connection `conn` and not yet handed to its socket, in `*out_bytes`
/// (uWebSockets' `getBufferedAmount`).
///
/// # Safety
/// `server` is NULL or a live server; `out_bytes` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_raw_buffered_bytes(
    server: *const wsb_server,
    conn: u64,
    out_bytes: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        get_for_conn(server, conn, out_bytes, "out_bytes", Server::raw_buffered_bytes)
    })
}
