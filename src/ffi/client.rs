//! `wsb_client_config` and `wsb_client`: the exported client functions, each a translation of
//! one `ClientConfig` field or `Client` method.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::callbacks::{Callback, UserData, in_callback, inside_callback, wsb_drop_callback, wsb_wake_callback};
use super::config::{
    WSB_DELIVERY_CALLBACK, WSB_DELIVERY_POLL, WSB_OVERFLOW_DROP_NEWEST, WSB_OVERFLOW_DROP_OLDEST,
};
use super::convert::{bytes_arg, headers_arg, millis, mut_arg, opt_str_arg, out_arg, ref_arg, str_arg};
use super::events::{CStrings, body_view, pairs, wsb_header};
use super::result::{FfiError, FfiResult, last_error_out, record_on, wsb_result};
use super::server::poll_thread;
use crate::broker::AckMode;
use crate::client::{Client, ClientConfig, ClientDelivery, ClientEvent, ClientMode, QueuePolicy};
use crate::error::Error;
use crate::events::OverflowPolicy;

/// A client connection is up (STOMP: CONNECTED; raw mode: the WebSocket is open). `text` is
/// the STOMP version ("1.2"; raw mode: the subprotocol, may be empty), `server` the server's
/// `server` header, `reconnected` 1 after a reconnection (the subscriptions are being re-made:
/// a `WSB_CLIENT_EVENT_RESUBSCRIBED` follows for each).
pub const WSB_CLIENT_EVENT_CONNECTED: u32 = 1;
/// The connection was lost or closed: `text` says why, `reconnecting` is 1 when the client
/// will try again.
pub const WSB_CLIENT_EVENT_DISCONNECTED: u32 = 2;
/// A MESSAGE: `subscription`, `destination`, `headers`, `body`; `ack_id` for client ack
/// modes (pass it to `wsb_client_ack` / `wsb_client_nack`).
pub const WSB_CLIENT_EVENT_MESSAGE: u32 = 3;
/// A subscription was re-made after a reconnection: `subscription`, `destination`, and
/// `recovered` 1 when the server confirmed a gap-free resume (`x-recovered:true`, history),
/// 0 otherwise.
pub const WSB_CLIENT_EVENT_RESUBSCRIBED: u32 = 4;
/// The server sent an ERROR frame: `text` is its `message` header, `headers` and `body` the
/// rest. The server closes the connection after it (the client reconnects per its policy).
pub const WSB_CLIENT_EVENT_ERROR: u32 = 5;
/// Raw mode: a message from the server in `body`; `binary` 1 for binary, 0 for text.
pub const WSB_CLIENT_EVENT_RAW: u32 = 6;
/// Events were lost because the client's event queue was full: `dropped` counts them.
pub const WSB_CLIENT_EVENT_OVERFLOW: u32 = 7;

/// `wsb_client_subscribe` ack mode: delivered means acknowledged (default).
pub const WSB_ACK_AUTO: u32 = 0;
/// Ack mode: an ACK acknowledges that message and every earlier one of the subscription.
pub const WSB_ACK_CLIENT: u32 = 1;
/// Ack mode: an ACK acknowledges exactly one message.
pub const WSB_ACK_CLIENT_INDIVIDUAL: u32 = 2;

/// Outbound queue policy: a full queue makes the call wait up to the block timeout, then
/// fail with `WSB_ERR_BACKPRESSURE` (default, 5 s).
pub const WSB_QUEUE_BLOCK: u32 = 0;
/// Outbound queue policy: a full queue fails the call at once with `WSB_ERR_BACKPRESSURE`.
pub const WSB_QUEUE_FAIL_FAST: u32 = 1;

/// Something a client tells its host; `kind` (`WSB_CLIENT_EVENT_*`) says which fields are
/// set. Strings are pointer + length and NUL-terminated (absent: NULL and 0); `body` is
/// binary-safe and non-NULL for MESSAGE, ERROR and RAW events.
///
/// Lifetime: an event filled by `wsb_client_poll*` (and all its pointers) stays valid until
/// the next poll call on the same client from the same thread, or `wsb_client_free`. An event
/// passed to a callback is valid only during that call. Copy what you keep.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsb_client_event {
    /// `WSB_CLIENT_EVENT_*`.
    pub kind: u32,
    /// CONNECTED: 1 after a reconnection.
    pub reconnected: u32,
    /// DISCONNECTED: 1 when the client will reconnect.
    pub reconnecting: u32,
    /// RESUBSCRIBED: 1 when the server confirmed a gap-free resume.
    pub recovered: u32,
    /// RAW: 1 for a binary message, 0 for text.
    pub binary: u32,
    /// Reserved, 0.
    pub reserved: u32,
    /// MESSAGE, RESUBSCRIBED: the subscription id from `wsb_client_subscribe`.
    pub subscription: u64,
    /// OVERFLOW: events lost.
    pub dropped: u64,
    /// MESSAGE, RESUBSCRIBED: the destination.
    pub destination: *const c_char,
    pub destination_len: usize,
    /// MESSAGE: the ack id (client ack modes; absent for auto).
    pub ack_id: *const c_char,
    pub ack_id_len: usize,
    /// CONNECTED: the version (or subprotocol); DISCONNECTED: the reason; ERROR: the message.
    pub text: *const c_char,
    pub text_len: usize,
    /// CONNECTED: the server's `server` header (may be absent).
    pub server: *const c_char,
    pub server_len: usize,
    /// MESSAGE, ERROR: the frame's headers.
    pub headers: *const wsb_header,
    pub header_count: usize,
    /// MESSAGE, ERROR, RAW: the body.
    pub body: *const u8,
    pub body_len: usize,
}

/// Receives a client event (callback delivery) on the client's network thread
/// ("wsbroker-client"). `event` and its pointers are valid only during the call. It may call
/// the `wsb_client_*` functions that do not wait (send, subscribe without a timeout, ack...).
pub type wsb_client_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const wsb_client_event)>;

type ClientEventFn = unsafe extern "C" fn(*mut c_void, *const wsb_client_event);

/// A [`wsb_client_event`] with the storage its pointers point into, and the Rust event its
/// body borrows from.
pub struct OwnedClientEvent {
    raw: wsb_client_event,
    _store: CStrings,
    _event: ClientEvent,
}

// SAFETY: the pointers point into the heap storage and the event this value owns.
unsafe impl Send for OwnedClientEvent {}

impl OwnedClientEvent {
    /// The C view of `event` (which it keeps).
    pub fn new(event: ClientEvent) -> OwnedClientEvent {
        let mut store = CStrings::default();
        let mut raw = wsb_client_event {
            kind: 0,
            reconnected: 0,
            reconnecting: 0,
            recovered: 0,
            binary: 0,
            reserved: 0,
            subscription: 0,
            dropped: 0,
            destination: ptr::null(),
            destination_len: 0,
            ack_id: ptr::null(),
            ack_id_len: 0,
            text: ptr::null(),
            text_len: 0,
            server: ptr::null(),
            server_len: 0,
            headers: ptr::null(),
            header_count: 0,
            body: ptr::null(),
            body_len: 0,
        };
        match &event {
            ClientEvent::Connected {
                server,
                version,
                reconnected,
                ..
            } => {
                raw.kind = WSB_CLIENT_EVENT_CONNECTED;
                raw.reconnected = u32::from(*reconnected);
                (raw.text, raw.text_len) = store.string(version);
                (raw.server, raw.server_len) = store.opt_string(server.as_deref());
            }
            ClientEvent::Disconnected {
                reason,
                reconnecting,
            } => {
                raw.kind = WSB_CLIENT_EVENT_DISCONNECTED;
                raw.reconnecting = u32::from(*reconnecting);
                (raw.text, raw.text_len) = store.string(reason);
            }
            ClientEvent::Message(m) => {
                raw.kind = WSB_CLIENT_EVENT_MESSAGE;
                raw.subscription = m.subscription;
                (raw.destination, raw.destination_len) = store.string(&m.destination);
                (raw.ack_id, raw.ack_id_len) = store.opt_string(m.ack_id.as_deref());
                (raw.headers, raw.header_count) = store.headers(pairs(&m.headers));
                (raw.body, raw.body_len) = body_view(&m.body);
            }
            ClientEvent::Resubscribed {
                subscription,
                destination,
                recovered,
            } => {
                raw.kind = WSB_CLIENT_EVENT_RESUBSCRIBED;
                raw.subscription = *subscription;
                raw.recovered = u32::from(*recovered);
                (raw.destination, raw.destination_len) = store.string(destination);
            }
            ClientEvent::Error {
                message,
                headers,
                body,
            } => {
                raw.kind = WSB_CLIENT_EVENT_ERROR;
                (raw.text, raw.text_len) = store.string(message);
                (raw.headers, raw.header_count) = store.headers(pairs(headers));
                (raw.body, raw.body_len) = body_view(body);
            }
            ClientEvent::Raw { data, binary } => {
                raw.kind = WSB_CLIENT_EVENT_RAW;
                raw.binary = u32::from(*binary);
                (raw.body, raw.body_len) = body_view(data);
            }
            ClientEvent::Overflow { dropped } => {
                raw.kind = WSB_CLIENT_EVENT_OVERFLOW;
                raw.dropped = *dropped;
            }
        }
        OwnedClientEvent {
            raw,
            _store: store,
            _event: event,
        }
    }

    /// The C view.
    pub fn raw(&self) -> &wsb_client_event {
        &self.raw
    }
}

/// The settings of a client. Create with `wsb_client_config_new`, free with
/// `wsb_client_config_free`. Not thread-safe: use it from one thread at a time.
pub struct wsb_client_config {
    config: ClientConfig,
    delivery: u32,
    capacity: usize,
    overflow: OverflowPolicy,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    callback: Option<Arc<dyn Fn(ClientEvent) + Send + Sync>>,
}

fn with_client_config(
    config: *mut wsb_client_config,
    f: impl FnOnce(&mut wsb_client_config) -> FfiResult,
) -> FfiResult {
    // SAFETY: the header requires a pointer from `wsb_client_config_new`, not yet freed, used
    // by one thread at a time.
    f(unsafe { mut_arg(config, "config")? })
}

/// A client config for `url` (`ws://host:port/path`, `wss://...`, `stomp://host:port`,
/// `stomp+ssl://host:port`; checked by `wsb_client_new`) with every default: STOMP mode, no
/// login, heart-beats 10 s / 10 s, permessage-deflate offered, TLS trusting the system's
/// roots, reconnection on (200 ms doubling to 10 s, jittered), outbound queue of 4096 with
/// a 5 s block, poll delivery. Copied. `*out_config` is written on success.
///
/// # Safety
/// `url` is NULL or valid for `url_len` bytes; `out_config` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_new(
    url: *const c_char,
    url_len: usize,
    out_config: *mut *mut wsb_client_config,
) -> wsb_result {
    ffi_guard!(result {
        let out = out_arg(out_config, "out_config")?;
        // SAFETY: see the function's safety section.
        let url = unsafe { str_arg(url, url_len, "url")? };
        let config = Box::new(wsb_client_config {
            config: ClientConfig::new(url),
            delivery: WSB_DELIVERY_POLL,
            capacity: 65_536,
            overflow: OverflowPolicy::DropNewest,
            wake: None,
            callback: None,
        });
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(Box::into_raw(config)) };
        Ok(())
    })
}

/// Frees a client config (NULL is fine), running the drop of its callbacks that no client
/// took over.
///
/// # Safety
/// `config` is NULL or a pointer from `wsb_client_config_new` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_free(config: *mut wsb_client_config) {
    ffi_guard!({
        if !config.is_null() {
            // SAFETY: from `wsb_client_config_new` (Box::into_raw), freed once (caller).
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// CONNECT `login` and `passcode` headers; NULL leaves one out. Copied.
///
/// # Safety
/// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_login(
    config: *mut wsb_client_config,
    login: *const c_char,
    login_len: usize,
    passcode: *const c_char,
    passcode_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            let login = unsafe { opt_str_arg(login, login_len, "login")? };
            // SAFETY: see the function's safety section.
            let passcode = unsafe { opt_str_arg(passcode, passcode_len, "passcode")? };
            c.config.login = login.map(str::to_string);
            c.config.passcode = passcode.map(str::to_string);
            Ok(())
        })
    })
}

/// CONNECT `host` header (RabbitMQ's virtual host, e.g. "/"); NULL: none (default). Copied.
///
/// # Safety
/// `config` is NULL or a live client config; `host` is NULL or valid for `host_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_host(
    config: *mut wsb_client_config,
    host: *const c_char,
    host_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            c.config.host = unsafe { opt_str_arg(host, host_len, "host")? }.map(str::to_string);
            Ok(())
        })
    })
}

/// Adds a header: to every CONNECT frame (`websocket` false: a token the server's connect
/// hook reads) or to the WebSocket upgrade request (`websocket` true: `Authorization`,
/// `Cookie`, `Origin`). Checked by `wsb_client_new`. Copied.
///
/// # Safety
/// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_add_header(
    config: *mut wsb_client_config,
    websocket: bool,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            let name = unsafe { str_arg(name, name_len, "name")? }.to_string();
            // SAFETY: see the function's safety section.
            let value = unsafe { str_arg(value, value_len, "value")? }.to_string();
            if websocket {
                c.config.ws_headers.push((name, value));
            } else {
                c.config.connect_headers.push((name, value));
            }
            Ok(())
        })
    })
}

/// Raw WebSocket mode (`raw` true: text and binary messages, no STOMP; `ws://` and `wss://`
/// only), offering `subprotocol` when not NULL. Default: STOMP. Copied.
///
/// # Safety
/// `config` is NULL or a live client config; `subprotocol` is NULL or valid for its length.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_raw(
    config: *mut wsb_client_config,
    raw: bool,
    subprotocol: *const c_char,
    subprotocol_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            let protocol = unsafe { opt_str_arg(subprotocol, subprotocol_len, "subprotocol")? };
            c.config.mode = if raw { ClientMode::Raw } else { ClientMode::Stomp };
            c.config.subprotocols = protocol.map(str::to_string).into_iter().collect();
            Ok(())
        })
    })
}

/// STOMP heart-beats offered in CONNECT (0 turns a direction off; default 10000, 10000). The
/// negotiated receive interval is enforced: twice that without a byte from the server drops
/// the connection. Raw mode: the client pings every `send_ms`.
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_heartbeat(
    config: *mut wsb_client_config,
    send_ms: u32,
    receive_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.config.heartbeat = (millis(send_ms), millis(receive_ms));
            Ok(())
        })
    })
}

/// Offer permessage-deflate (default true).
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_permessage_deflate(
    config: *mut wsb_client_config,
    enabled: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.config.permessage_deflate = enabled;
            Ok(())
        })
    })
}

/// TLS trust: the system's certificate store (`system_roots`, default true) and/or a PEM CA
/// bundle file (`ca_pem`, NULL: none); `server_name` overrides the name the certificate must
/// carry (NULL: the URL's host). Files are read by `wsb_client_new`. Copied.
///
/// # Safety
/// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_tls(
    config: *mut wsb_client_config,
    system_roots: bool,
    ca_pem: *const c_char,
    ca_pem_len: usize,
    server_name: *const c_char,
    server_name_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            let ca = unsafe { opt_str_arg(ca_pem, ca_pem_len, "ca_pem")? };
            // SAFETY: see the function's safety section.
            let name = unsafe { opt_str_arg(server_name, server_name_len, "server_name")? };
            c.config.tls.system_roots = system_roots;
            c.config.tls.ca_pem = ca.map(Into::into);
            c.config.tls.server_name = name.map(str::to_string);
            Ok(())
        })
    })
}

/// A TLS client certificate: PEM chain and private key files (both, or both NULL to remove
/// it). Read by `wsb_client_new`. Copied.
///
/// # Safety
/// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_tls_client_cert(
    config: *mut wsb_client_config,
    cert_pem: *const c_char,
    cert_pem_len: usize,
    key_pem: *const c_char,
    key_pem_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            // SAFETY: see the function's safety section.
            let cert = unsafe { opt_str_arg(cert_pem, cert_pem_len, "cert_pem")? };
            // SAFETY: see the function's safety section.
            let key = unsafe { opt_str_arg(key_pem, key_pem_len, "key_pem")? };
            c.config.tls.client_cert_pem = cert.map(Into::into);
            c.config.tls.client_key_pem = key.map(Into::into);
            Ok(())
        })
    })
}

/// Bound of one connection attempt (TCP, TLS, upgrade, CONNECTED; default 10000 ms, > 0) and
/// of the receipt the client waits for on its own (DISCONNECT in `wsb_client_free`; 5000).
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_timeouts(
    config: *mut wsb_client_config,
    connect_ms: u32,
    receipt_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.config.connect_timeout = millis(connect_ms);
            c.config.receipt_timeout = millis(receipt_ms);
            Ok(())
        })
    })
}

/// Automatic reconnection: on or off, the first delay (doubling after each failure, with up
/// to 20 % jitter) up to `max_delay_ms`, and `max_attempts` consecutive failures before
/// giving up (0: never). Default on, 200, 10000, 0.
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_reconnect(
    config: *mut wsb_client_config,
    enabled: bool,
    initial_delay_ms: u32,
    max_delay_ms: u32,
    max_attempts: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.config.reconnect.enabled = enabled;
            c.config.reconnect.initial_delay = millis(initial_delay_ms);
            c.config.reconnect.max_delay = millis(max_delay_ms);
            c.config.reconnect.max_attempts = max_attempts;
            Ok(())
        })
    })
}

/// The outbound queue between the host's threads and the network thread: `capacity` (> 0,
/// default 4096) and what a call does when it is full: `WSB_QUEUE_BLOCK` (wait up to
/// `block_timeout_ms`, default 5000) or `WSB_QUEUE_FAIL_FAST`; both then fail with
/// `WSB_ERR_BACKPRESSURE`. Calls from inside a client callback never wait.
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_outbound_queue(
    config: *mut wsb_client_config,
    capacity: usize,
    policy: u32,
    block_timeout_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.config.outbound.policy = match policy {
                WSB_QUEUE_BLOCK => QueuePolicy::Block(millis(block_timeout_ms)),
                WSB_QUEUE_FAIL_FAST => QueuePolicy::FailFast,
                other => {
                    return Err(FfiError::invalid(format!(
                        "policy: {other} is not a WSB_QUEUE_* value"
                    )));
                }
            };
            c.config.outbound.capacity = capacity;
            Ok(())
        })
    })
}

/// How events reach the host: `WSB_DELIVERY_POLL` (default: `wsb_client_poll*`, with an
/// optional wake callback) or `WSB_DELIVERY_CALLBACK` (the event callback, on the network
/// thread). In poll mode, `capacity` (> 0, default 65536) bounds the queue and `overflow`
/// (`WSB_OVERFLOW_*`) says what a full queue drops.
///
/// # Safety
/// `config` is NULL or a live client config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_delivery(
    config: *mut wsb_client_config,
    mode: u32,
    capacity: usize,
    overflow: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            if mode != WSB_DELIVERY_POLL && mode != WSB_DELIVERY_CALLBACK {
                return Err(FfiError::invalid(format!(
                    "mode: {mode} is not a WSB_DELIVERY_* value"
                )));
            }
            c.overflow = match overflow {
                WSB_OVERFLOW_DROP_NEWEST => OverflowPolicy::DropNewest,
                WSB_OVERFLOW_DROP_OLDEST => OverflowPolicy::DropOldest,
                other => {
                    return Err(FfiError::invalid(format!(
                        "overflow: {other} is not a WSB_OVERFLOW_* value"
                    )));
                }
            };
            if capacity == 0 {
                return Err(FfiError::invalid("capacity must be at least 1"));
            }
            c.delivery = mode;
            c.capacity = capacity;
            Ok(())
        })
    })
}

/// Poll mode: `cb(user_data)` runs on the network thread when the event queue goes from
/// empty to non-empty (signal a condition variable, post to the main loop). Replaces (and
/// drops) an earlier one; `cb` NULL clears it (a given `drop(user_data)` runs at once). Its
/// `drop(user_data)` runs once: when replaced, or when the config and every client made from
/// it are freed.
///
/// # Safety
/// `config` is NULL or a live client config; `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_wake_callback(
    config: *mut wsb_client_config,
    cb: wsb_wake_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.wake = match cb {
                Some(func) => {
                    let cb = Callback::new(func, user_data, drop);
                    Some(Arc::new(move || {
                        // SAFETY: a callback registered by the host with its user data.
                        in_callback(|| unsafe { (cb.func)(cb.user_data.ptr()) });
                    }))
                }
                None => {
                    std::mem::drop(UserData::new(user_data, drop));
                    None
                }
            };
            Ok(())
        })
    })
}

/// Callback mode: `cb(user_data, event)` receives every event, in order, on the network
/// thread. Replaces (and drops) an earlier one; `cb` NULL clears it. `drop(user_data)` runs
/// once, like the wake callback's.
///
/// # Safety
/// `config` is NULL or a live client config; `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_config_set_event_callback(
    config: *mut wsb_client_config,
    cb: wsb_client_event_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_client_config(config, |c| {
            c.callback = match cb {
                Some(func) => {
                    let cb: Callback<ClientEventFn> = Callback::new(func, user_data, drop);
                    Some(Arc::new(move |event: ClientEvent| {
                        let event = OwnedClientEvent::new(event);
                        // SAFETY: a callback registered by the host with its user data.
                        in_callback(|| unsafe { (cb.func)(cb.user_data.ptr(), event.raw()) });
                    }))
                }
                None => {
                    std::mem::drop(UserData::new(user_data, drop));
                    None
                }
            };
            Ok(())
        })
    })
}

/// A client. Create with `wsb_client_new`, free with `wsb_client_free`; every `wsb_client_*`
/// call is thread-safe.
pub struct wsb_client {
    client: Client,
    last_error: Mutex<String>,
    polls: Mutex<HashMap<u64, Vec<OwnedClientEvent>>>,
}

fn with_client(
    client: *const wsb_client,
    f: impl FnOnce(&wsb_client) -> FfiResult,
) -> FfiResult {
    // SAFETY: the header requires a pointer from `wsb_client_new`, not yet freed.
    let handle = unsafe { ref_arg(client, "client")? };
    let result = f(handle);
    record_on(&handle.last_error, &result);
    result
}

fn wait(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms > 0).then(|| millis(timeout_ms))
}

/// Creates a client from `config` (validated now, TLS files read now: `WSB_ERR_INVALID_CONFIG`
/// names the bad field). The config's callbacks are shared with the client. Does not connect:
/// call `wsb_client_connect` or `wsb_client_start`. `*out_client` is written on success.
///
/// # Safety
/// `config` is NULL or a live client config; `out_client` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_new(
    config: *mut wsb_client_config,
    out_client: *mut *mut wsb_client,
) -> wsb_result {
    ffi_guard!(result {
        let out = out_arg(out_client, "out_client")?;
        // SAFETY: see the function's safety section.
        let c = unsafe { mut_arg(config, "config")? };
        let mut config = c.config.clone();
        config.delivery = if c.delivery == WSB_DELIVERY_CALLBACK {
            let callback = c.callback.clone().ok_or_else(|| {
                FfiError::new(
                    wsb_result::WSB_ERR_INVALID_CONFIG,
                    "callback delivery needs wsb_client_config_set_event_callback",
                )
            })?;
            ClientDelivery::Callback(callback)
        } else {
            ClientDelivery::Queue {
                capacity: c.capacity,
                overflow: c.overflow,
                wake: c.wake.clone(),
            }
        };
        let client = Client::new(config)?;
        let handle = Box::new(wsb_client {
            client,
            last_error: Mutex::new(String::new()),
            polls: Mutex::new(HashMap::new()),
        });
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Disconnects (DISCONNECT with its receipt, bounded by the receipt timeout), stops the
/// client's thread, runs the drop callbacks it holds and frees it. NULL is fine. From inside
/// a wsbroker callback: `WSB_ERR_CALLED_FROM_CALLBACK`, and nothing is freed.
///
/// # Safety
/// `client` is NULL or a pointer from `wsb_client_new` not freed before; no other call on it
/// may run or follow.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_free(client: *mut wsb_client) -> wsb_result {
    ffi_guard!(result {
        if client.is_null() {
            return Ok(());
        }
        if inside_callback() {
            return Err(Error::CalledFromCallback("wsb_client_free").into());
        }
        // SAFETY: from `wsb_client_new` (Box::into_raw), freed once (caller).
        drop(unsafe { Box::from_raw(client) });
        Ok(())
    })
}

/// Starts the client and waits up to `timeout_ms` for its first connection (STOMP:
/// CONNECTED). A failed first attempt stops the client and says why: `WSB_ERR_REFUSED` (an
/// ERROR frame, an HTTP status), `WSB_ERR_NOT_CONNECTED` (unreachable, TLS), `WSB_ERR_TIMEOUT`.
/// Once connected, lost connections are re-made per the reconnect policy.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_connect(client: *mut wsb_client, timeout_ms: u32) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| Ok(c.client.connect(millis(timeout_ms))?))
    })
}

/// Starts the client without waiting: events say what happens (CONNECTED, DISCONNECTED with
/// `reconnecting`); the first attempt is retried per the reconnect policy.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_start(client: *mut wsb_client) -> wsb_result {
    ffi_guard!(result { with_client(client, |c| Ok(c.client.start()?)) })
}

/// Whether a connection is up, into `*out_connected`.
///
/// # Safety
/// `client` is NULL or a live client; `out_connected` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_is_connected(
    client: *const wsb_client,
    out_connected: *mut bool,
) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            let out = out_arg(out_connected, "out_connected")?;
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(c.client.is_connected()) };
            Ok(())
        })
    })
}

/// Subscribes (re-made on every reconnection, resuming with `x-since` when the server gave
/// offsets); `ack_mode` is a `WSB_ACK_*` value, `headers` go into the SUBSCRIBE (copied).
/// With `timeout_ms` > 0, waits for the server's RECEIPT (then messages published to the
/// destination reach it). Writes the subscription id (never reused) to `*out_subscription`.
///
/// # Safety
/// `client` is NULL or a live client; pointers are NULL or valid for their lengths/counts;
/// `out_subscription` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_subscribe(
    client: *mut wsb_client,
    destination: *const c_char,
    destination_len: usize,
    ack_mode: u32,
    headers: *const wsb_header,
    header_count: usize,
    timeout_ms: u32,
    out_subscription: *mut u64,
) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            let out = out_arg(out_subscription, "out_subscription")?;
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            let ack = match ack_mode {
                WSB_ACK_AUTO => AckMode::Auto,
                WSB_ACK_CLIENT => AckMode::Client,
                WSB_ACK_CLIENT_INDIVIDUAL => AckMode::ClientIndividual,
                other => {
                    return Err(FfiError::invalid(format!(
                        "ack_mode: {other} is not a WSB_ACK_* value"
                    )));
                }
            };
            let id = match wait(timeout_ms) {
                Some(t) => c.client.subscribe_confirmed(destination, ack, &headers, t)?,
                None => c.client.subscribe(destination, ack, &headers)?,
            };
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(id) };
            Ok(())
        })
    })
}

/// Ends a subscription (`WSB_ERR_NOT_FOUND` for an unknown id).
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_unsubscribe(client: *mut wsb_client, subscription: u64) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| Ok(c.client.unsubscribe(subscription)?))
    })
}

/// SENDs a message (destination, headers and body copied), inside `transaction` when not 0
/// (from `wsb_client_begin`). With `receipt_timeout_ms` 0 it only queues (never waiting
/// longer than the outbound queue's policy); with > 0 it waits for the server's RECEIPT:
/// `WSB_ERR_TIMEOUT` when none came, `WSB_ERR_REFUSED` for an ERROR, `WSB_ERR_NOT_CONNECTED`
/// when the connection was lost first (the message may or may not have arrived).
///
/// # Safety
/// `client` is NULL or a live client; every pointer is NULL or valid for its length/count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_send(
    client: *mut wsb_client,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    transaction: u64,
    receipt_timeout_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = Bytes::copy_from_slice(unsafe { bytes_arg(body, body_len, "body")? });
            let tx = (transaction != 0).then_some(transaction);
            Ok(c.client.send_with(destination, &headers, body, tx, wait(receipt_timeout_ms))?)
        })
    })
}

fn ack(
    client: *mut wsb_client,
    ack_id: *const c_char,
    ack_id_len: usize,
    transaction: u64,
    nack: bool,
) -> FfiResult {
    with_client(client, |c| {
        // SAFETY: forwarded from the export's caller.
        let id = unsafe { str_arg(ack_id, ack_id_len, "ack_id")? };
        let tx = (transaction != 0).then_some(transaction);
        if nack {
            Ok(c.client.nack(id, tx)?)
        } else {
            Ok(c.client.ack(id, tx)?)
        }
    })
}

/// Acknowledges a message by its event's `ack_id`, inside `transaction` when not 0. An ack id
/// of an earlier connection is `WSB_ERR_NOT_FOUND` (the server redelivers that message).
///
/// # Safety
/// `client` is NULL or a live client; `ack_id` is NULL or valid for `ack_id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_ack(
    client: *mut wsb_client,
    ack_id: *const c_char,
    ack_id_len: usize,
    transaction: u64,
) -> wsb_result {
    ffi_guard!(result { ack(client, ack_id, ack_id_len, transaction, false) })
}

/// Refuses a message (NACK), like `wsb_client_ack`.
///
/// # Safety
/// As `wsb_client_ack`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_nack(
    client: *mut wsb_client,
    ack_id: *const c_char,
    ack_id_len: usize,
    transaction: u64,
) -> wsb_result {
    ffi_guard!(result { ack(client, ack_id, ack_id_len, transaction, true) })
}

/// BEGINs a transaction; its id (never 0) goes to `*out_transaction`. A transaction lives on
/// one connection: after a reconnection committing it is `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// `client` is NULL or a live client; `out_transaction` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_begin(client: *mut wsb_client, out_transaction: *mut u64) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            let out = out_arg(out_transaction, "out_transaction")?;
            let tx = c.client.begin()?;
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(tx) };
            Ok(())
        })
    })
}

/// COMMITs (`commit` true) or ABORTs a transaction, waiting up to `receipt_timeout_ms` for the
/// server's RECEIPT when > 0.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_end_transaction(
    client: *mut wsb_client,
    transaction: u64,
    commit: bool,
    receipt_timeout_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            let wait = wait(receipt_timeout_ms);
            if commit {
                Ok(c.client.commit(transaction, wait)?)
            } else {
                Ok(c.client.abort(transaction, wait)?)
            }
        })
    })
}

/// Raw mode: sends a message (`binary` true: binary; false: text, which must be UTF-8).
/// Copied; queued like a SEND.
///
/// # Safety
/// `client` is NULL or a live client; `data` is NULL or valid for `data_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_send_raw(
    client: *mut wsb_client,
    data: *const u8,
    data_len: usize,
    binary: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            if binary {
                // SAFETY: see the function's safety section.
                let data = unsafe { bytes_arg(data, data_len, "data")? };
                Ok(c.client.send_binary(Bytes::copy_from_slice(data))?)
            } else {
                // SAFETY: see the function's safety section.
                let text = unsafe { str_arg(data.cast::<c_char>(), data_len, "data")? };
                Ok(c.client.send_text(text)?)
            }
        })
    })
}

fn poll(
    client: *mut wsb_client,
    events: *mut wsb_client_event,
    max_events: usize,
    timeout: Duration,
    out_count: *mut usize,
) -> FfiResult {
    with_client(client, |c| {
        let out = out_arg(out_count, "out_count")?;
        if events.is_null() && max_events > 0 {
            return Err(FfiError::null("events (with max_events > 0)"));
        }
        let thread = poll_thread();
        // The previous batch of this thread is invalid from now on; drop it outside the lock.
        let previous = c.polls.lock().remove(&thread);
        drop(previous);
        let mut polled = Vec::new();
        let n = c.client.poll_events(&mut polled, max_events, timeout)?;
        let converted: Vec<OwnedClientEvent> =
            polled.into_iter().map(OwnedClientEvent::new).collect();
        for (i, event) in converted.iter().enumerate() {
            // SAFETY: i < n <= max_events, and the caller guarantees `max_events` slots.
            unsafe { events.add(i).write(*event.raw()) };
        }
        if n > 0 {
            c.polls.lock().insert(thread, converted);
        }
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// Poll mode: moves up to `max_events` queued events into `events[0..*out_count]` without
/// blocking (a game loop calls it once per frame). Their pointers stay valid until this
/// thread's next poll on this client (or `wsb_client_free`). In callback mode:
/// `WSB_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `client` is NULL or a live client; `events` is NULL or valid for `max_events` writes;
/// `out_count` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_poll(
    client: *mut wsb_client,
    events: *mut wsb_client_event,
    max_events: usize,
    out_count: *mut usize,
) -> wsb_result {
    ffi_guard!(result { poll(client, events, max_events, Duration::ZERO, out_count) })
}

/// Like `wsb_client_poll`, but waits up to `timeout_ms` for the first event.
///
/// # Safety
/// As `wsb_client_poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_poll_timeout(
    client: *mut wsb_client,
    events: *mut wsb_client_event,
    max_events: usize,
    timeout_ms: u32,
    out_count: *mut usize,
) -> wsb_result {
    ffi_guard!(result { poll(client, events, max_events, millis(timeout_ms), out_count) })
}

/// Ends the session: DISCONNECT, waits up to `timeout_ms` for its RECEIPT (raw mode: a Close
/// frame), closes and stops the client's thread (events already queued can still be polled).
/// `WSB_ERR_NOT_RUNNING` when not started or already stopped; from inside a callback
/// `WSB_ERR_CALLED_FROM_CALLBACK`.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_disconnect(client: *mut wsb_client, timeout_ms: u32) -> wsb_result {
    ffi_guard!(result {
        with_client(client, |c| {
            if inside_callback() {
                return Err(Error::CalledFromCallback("wsb_client_disconnect").into());
            }
            Ok(c.client.disconnect(millis(timeout_ms))?)
        })
    })
}

/// The detail message of the last failed call on this client (from any thread), like
/// `wsb_server_last_error`.
///
/// # Safety
/// `client` is NULL or a live client; `buf` is NULL or valid for `cap` bytes of writing;
/// `out_len` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_client_last_error(
    client: *const wsb_client,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let c = unsafe { ref_arg(client, "client")? };
        // SAFETY: see the function's safety section.
        unsafe { last_error_out(&c.last_error, buf, cap, out_len) }
    })
}
