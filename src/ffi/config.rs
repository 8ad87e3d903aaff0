//! `wsb_config`: the settings of a server before it exists (host-owned, reusable).

use std::ffi::{c_char, c_void};
use std::net::SocketAddr;

use std::sync::Arc;

use super::callbacks::{
    Callback, UserData, in_callback, wsb_drop_callback, wsb_event_callback, wsb_wake_callback,
};
use super::events::OwnedEvent;
use super::convert::{bytes_arg, millis, mut_arg, opt_str_arg, str_arg};
use super::result::{FfiError, FfiResult, wsb_result};
use crate::broker::{HistoryRule, SlowConsumerPolicy};
use crate::config::{PemSource, ServerConfig, TlsConfig};
use crate::events::{DeliveryMode, Event, EventOptions, OverflowPolicy};

/// Events are queued; drain them with `wsb_server_poll` / `wsb_server_poll_timeout` (default).
pub const WSB_DELIVERY_POLL: u32 = 0;
/// Events are handed to the event callback (`wsb_config_set_event_callback`) on callback threads.
pub const WSB_DELIVERY_CALLBACK: u32 = 1;

/// A full event queue discards the new event (default).
pub const WSB_OVERFLOW_DROP_NEWEST: u32 = 0;
/// A full event queue discards its oldest event.
pub const WSB_OVERFLOW_DROP_OLDEST: u32 = 1;

/// Slow-consumer policy: close the session with an ERROR (default).
pub const WSB_SLOW_CONSUMER_DISCONNECT: u32 = 0;
/// Slow-consumer policy: drop the subscription's oldest queued message.
pub const WSB_SLOW_CONSUMER_DROP_OLDEST: u32 = 1;
/// Slow-consumer policy: drop the new message.
pub const WSB_SLOW_CONSUMER_DROP_NEWEST: u32 = 2;

/// The settings of a server. Create with `wsb_config_new`, free with `wsb_config_free`; one
/// config may create several servers. Not thread-safe: use it from one thread at a time.
#[derive(Default)]
pub struct wsb_config {
    pub(crate) server: ServerConfig,
    /// Delivery mode, queue settings and callbacks; the callbacks are shared by every server
    /// the config creates.
    pub(crate) events: EventOptions,
}

pub(crate) type EventFn = unsafe extern "C" fn(*mut c_void, *const super::events::wsb_event);


/// Runs `f` on the config behind `config`.
pub(super) fn with_config(
    config: *mut wsb_config,
    f: impl FnOnce(&mut wsb_config) -> FfiResult,
) -> FfiResult {
    // SAFETY: the header requires a pointer from `wsb_config_new`, not yet freed, used by one
    // thread at a time.
    f(unsafe { mut_arg(config, "config")? })
}

fn parse_addr(text: &str, what: &str) -> Result<SocketAddr, FfiError> {
    text.parse().map_err(|e| {
        FfiError::invalid(format!(
            "{what}: '{text}' is not an address of the form ip:port ({e})"
        ))
    })
}

/// A new config with every default: WebSocket on 127.0.0.1:61614 at path "/ws", poll
/// delivery, app prefix "/app", bounded queues, heart-beats 10 s / 10 s. `*out_config` is
/// written on success; free it with `wsb_config_free`.
///
/// # Safety
/// `out_config` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_new(out_config: *mut *mut wsb_config) -> wsb_result {
    ffi_guard!(result {
        let out = super::convert::out_arg(out_config, "out_config")?;
        let config = Box::into_raw(Box::new(wsb_config::default()));
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(config) };
        Ok(())
    })
}

/// Frees a config (NULL is fine); callbacks still in it have their drop run. Servers made
/// from it are not affected.
///
/// # Safety
/// `config` is NULL or a pointer from `wsb_config_new` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_free(config: *mut wsb_config) {
    ffi_guard!({
        if !config.is_null() {
            // SAFETY: from `wsb_config_new` (Box::into_raw), freed once (caller).
            drop(unsafe { Box::from_raw(config) });
        }
    });
}

/// The WebSocket listen address, "ip:port" (e.g. "127.0.0.1:0": port 0 picks a free port;
/// read it back with `wsb_server_local_port`). Copied; the caller still owns `addr`.
///
/// # Safety
/// `config` is NULL or a live config; `addr` is NULL or valid for `addr_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_listen(
    config: *mut wsb_config,
    addr: *const c_char,
    addr_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let addr = unsafe { str_arg(addr, addr_len, "addr")? };
            c.server.listen = parse_addr(addr, "addr")?;
            Ok(())
        })
    })
}

/// The HTTP path of the WebSocket endpoint (default "/ws"). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_path(
    config: *mut wsb_config,
    path: *const c_char,
    path_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            c.server.path = unsafe { str_arg(path, path_len, "path")? }.to_string();
            Ok(())
        })
    })
}

/// The plain-TCP STOMP listen address ("ip:port"); `addr` NULL turns that listener off
/// (the default). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `addr` is NULL or valid for `addr_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_tcp_listen(
    config: *mut wsb_config,
    addr: *const c_char,
    addr_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let addr = unsafe { opt_str_arg(addr, addr_len, "addr")? };
            c.server.tcp_listen = addr.map(|a| parse_addr(a, "addr")).transpose()?;
            Ok(())
        })
    })
}

/// Adds an allowed `Origin` ("scheme://host[:port]"); while none is added every origin is
/// allowed. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `origin` is NULL or valid for `origin_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_add_allowed_origin(
    config: *mut wsb_config,
    origin: *const c_char,
    origin_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let origin = unsafe { str_arg(origin, origin_len, "origin")? };
            c.server.allowed_origins.push(origin.to_string());
            Ok(())
        })
    })
}

/// Adds an application destination prefix (SENDs there go to `wsb_server_handle_app`
/// handlers, not to subscribers). The first call replaces the default "/app". Copied.
///
/// # Safety
/// `config` is NULL or a live config; `prefix` is NULL or valid for `prefix_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_add_app_prefix(
    config: *mut wsb_config,
    prefix: *const c_char,
    prefix_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let prefix = unsafe { str_arg(prefix, prefix_len, "prefix")? };
            c.server.session.add_app_prefix(prefix);
            Ok(())
        })
    })
}

/// STOMP heart-beats the server offers to send and wants to receive, in ms (0 disables).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_heartbeat(
    config: *mut wsb_config,
    send_ms: u32,
    receive_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.session.heartbeat_send = millis(send_ms);
            c.server.session.heartbeat_receive = millis(receive_ms);
            Ok(())
        })
    })
}

/// Timeouts in ms: the HTTP upgrade, the CONNECT frame after connecting (0 keeps the default
/// for these two: 10 s and 30 s), closing a silent WebSocket connection and the WebSocket
/// ping interval (0 disables these two).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_timeouts(
    config: *mut wsb_config,
    handshake_ms: u32,
    connect_ms: u32,
    idle_ms: u32,
    ping_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let defaults = ServerConfig::default();
            c.server.handshake_timeout = match handshake_ms {
                0 => defaults.handshake_timeout,
                ms => millis(ms),
            };
            c.server.connect_timeout = match connect_ms {
                0 => defaults.connect_timeout,
                ms => millis(ms),
            };
            c.server.idle_timeout = millis(idle_ms);
            c.server.ws_ping_interval = millis(ping_ms);
            Ok(())
        })
    })
}

/// Largest STOMP frame accepted, in bytes (default 4 MiB; at most 1 GiB).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_frame_size(
    config: *mut wsb_config,
    bytes: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.frame_limits.max_frame_size = bytes;
            Ok(())
        })
    })
}

/// WebSocket compression (permessage-deflate, RFC 7692): `enabled` accepts a client's offer
/// (default true; browsers always offer it); with it negotiated, outbound messages of at least
/// `threshold` bytes are compressed (default 256; 0 compresses every message) at zlib `level`
/// 1 (fastest) ..= 9 (smallest), 0 for the default (6); other levels fail `wsb_server_new`.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_permessage_deflate(
    config: *mut wsb_config,
    enabled: bool,
    threshold: usize,
    level: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.permessage_deflate = enabled;
            c.server.deflate_threshold = threshold;
            c.server.deflate_level = match level {
                0 => ServerConfig::default().deflate_level,
                level => level,
            };
            Ok(())
        })
    })
}

/// Most simultaneous connections over all listeners (default 10000).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_connections(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.max_connections = n;
            Ok(())
        })
    })
}

/// Most simultaneous connections from one client IP address (default 10000, the global limit:
/// clients behind one proxy or NAT share an address); more are refused at accept (WebSocket:
/// HTTP 503, TCP: an ERROR frame). Must be greater than 0.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_connections_per_ip(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.max_connections_per_ip = n;
            Ok(())
        })
    })
}

/// Hard caps of one connection's outbound queue (frames, default 16384, and bytes, default
/// 8 MiB); past either the client is a slow consumer and is disconnected. A message bigger than
/// the byte cap is still delivered to a client that keeps up. Both must be greater than 0.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_outbound_limits(
    config: *mut wsb_config,
    max_messages: usize,
    max_bytes: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.max_outbound_messages = max_messages;
            c.server.broker.max_outbound_bytes = max_bytes;
            Ok(())
        })
    })
}

/// Flow control (see the README's "Delivery guarantees"): above `high_watermark` queued bytes
/// (default 1 MiB) a connection's outbound queue is congested, and the clients publishing into
/// it are not read — host publishes get `WSB_ERR_BACKPRESSURE` — until it drains to
/// `low_watermark` (default 256 KiB, at most `high_watermark`). A congested queue from which
/// nothing is written for `slow_consumer_timeout_ms` (default 10000, > 0) belongs to a stuck
/// client, which is then disconnected as a slow consumer.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_flow_control(
    config: *mut wsb_config,
    high_watermark: usize,
    low_watermark: usize,
    slow_consumer_timeout_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let broker = &mut c.server.broker;
            broker.outbound_high_watermark = high_watermark;
            broker.outbound_low_watermark = low_watermark;
            broker.slow_consumer_timeout = millis(slow_consumer_timeout_ms);
            Ok(())
        })
    })
}

/// Host code — application handlers, host-subscription callbacks, event callbacks and hook
/// decisions — runs on `threads` dedicated threads named "wsbroker-callback" (default 4, at
/// least 1), never on the IO threads, so a callback that blocks delays only the callbacks queued
/// behind it. One session's callbacks, and one host subscription's messages, always run on one
/// of them, in order. `queue` (default 65536, at least 1) bounds the callbacks waiting in all: a
/// client whose application messages find it full is paused; a host-subscription message that
/// finds it full is dropped and counted in `wsb_stats.dropped`, an event is dropped and logged.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_callback_threads(
    config: *mut wsb_config,
    threads: usize,
    queue: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.callback_threads = threads;
            c.server.callback_queue = queue;
            Ok(())
        })
    })
}

/// Keeps a message history for the destinations matching `pattern` (e.g. "/topic/chat/**";
/// rules apply in the order added, the first match wins): the last `size` messages (at least
/// 1, at most half of `max_outbound_messages`), each for at most `ttl_ms` (0: until `size`
/// pushes it out). Their MESSAGEs carry "x-offset" and "x-epoch"; a SUBSCRIBE may resume with
/// "x-since"/"x-epoch" or ask for a backlog with "x-last"; with `last_value` every SUBSCRIBE
/// first gets the newest message. Read it with `wsb_server_history`. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `pattern` is NULL or valid for `pattern_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_add_history(
    config: *mut wsb_config,
    pattern: *const c_char,
    pattern_len: usize,
    size: usize,
    ttl_ms: u64,
    last_value: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let pattern = unsafe { str_arg(pattern, pattern_len, "pattern")? };
            let mut rule = HistoryRule::new(pattern, size);
            rule.ttl = (ttl_ms > 0).then(|| std::time::Duration::from_millis(ttl_ms));
            rule.last_value = last_value;
            rule.validate().map_err(FfiError::invalid)?;
            c.server.broker.history.push(rule);
            Ok(())
        })
    })
}

/// Most destinations with a history held at once (default 100000): past it the least
/// recently used stream is dropped, and its next message starts a new epoch.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_history_max_destinations(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.history_max_destinations = n;
            Ok(())
        })
    })
}

/// Most messages a "/queue/..." destination holds while no consumer takes them; a publish to
/// a full queue fails with `WSB_ERR_BACKPRESSURE`.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_queue_depth(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.max_queue_depth = n;
            Ok(())
        })
    })
}

/// Largest STOMP frame header section: at most `max_headers` headers (default 64), each
/// header line at most `max_header_length` bytes (default 8 KiB).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_header_limits(
    config: *mut wsb_config,
    max_headers: usize,
    max_header_length: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.frame_limits.max_headers = max_headers;
            c.server.frame_limits.max_header_length = max_header_length;
            Ok(())
        })
    })
}

/// Most subscriptions one session may hold (default 1024).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_subscriptions(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.max_subscriptions_per_session = n;
            Ok(())
        })
    })
}

/// Default limit of unacknowledged messages per client-ack subscription (default 1024; a
/// SUBSCRIBE's `prefetch-count` may lower it).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_max_unacked(
    config: *mut wsb_config,
    n: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.max_unacked_per_subscription = n;
            Ok(())
        })
    })
}

/// Transaction limits: frames buffered in one transaction (default 10,000) and transactions
/// open at once in one session (default 16).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_transaction_limits(
    config: *mut wsb_config,
    max_frames: usize,
    max_open: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.session.max_transaction_frames = max_frames;
            c.server.session.max_open_transactions = max_open;
            Ok(())
        })
    })
}

/// Queue and user destination prefixes (defaults "/queue/" and "/user/"); either may be NULL to
/// keep its current value.
///
/// # Safety
/// `config` is NULL or a live config; each string is NULL or `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_prefixes(
    config: *mut wsb_config,
    queue_prefix: *const c_char,
    queue_prefix_len: usize,
    user_prefix: *const c_char,
    user_prefix_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let queue = unsafe { opt_str_arg(queue_prefix, queue_prefix_len, "queue_prefix") }?;
        // SAFETY: see the function's safety section.
        let user = unsafe { opt_str_arg(user_prefix, user_prefix_len, "user_prefix") }?;
        with_config(config, |c| {
            if let Some(q) = queue {
                c.server.broker.queue_prefix = q.to_string();
            }
            if let Some(u) = user {
                c.server.broker.user_prefix = u.to_string();
            }
            Ok(())
        })
    })
}

/// Worker threads of the server's runtime; 0 (default) means one per CPU.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_worker_threads(
    config: *mut wsb_config,
    n: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.worker_threads = n as usize;
            Ok(())
        })
    })
}

/// `WSB_DELIVERY_POLL` (default) or `WSB_DELIVERY_CALLBACK` (needs an event callback);
/// anything else is `WSB_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_delivery_mode(
    config: *mut wsb_config,
    mode: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.events.mode = match mode {
                WSB_DELIVERY_POLL => DeliveryMode::Poll,
                WSB_DELIVERY_CALLBACK => DeliveryMode::Callback,
                _ => {
                    return Err(FfiError::invalid(format!(
                        "mode: {mode} is not a WSB_DELIVERY_* value"
                    )));
                }
            };
            Ok(())
        })
    })
}

/// Poll mode: the event queue's capacity (default 65536; 0 counts as 1) and what a full
/// queue does (`WSB_OVERFLOW_*`; lost events are reported by a `WSB_EVENT_OVERFLOW` event).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_event_queue(
    config: *mut wsb_config,
    capacity: usize,
    overflow_policy: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.events.queue.overflow = match overflow_policy {
                WSB_OVERFLOW_DROP_NEWEST => OverflowPolicy::DropNewest,
                WSB_OVERFLOW_DROP_OLDEST => OverflowPolicy::DropOldest,
                other => {
                    return Err(FfiError::invalid(format!(
                        "overflow_policy: {other} is not a WSB_OVERFLOW_* value"
                    )));
                }
            };
            c.events.queue.capacity = capacity;
            Ok(())
        })
    })
}

/// What a broadcast subscription in auto ack mode does when its connection's outbound queue
/// is full (`WSB_SLOW_CONSUMER_*`; a SUBSCRIBE may choose with an `overflow-policy` header).
/// Drops are counted in `wsb_stats.dropped`; queue and client-ack subscriptions always
/// disconnect (they are flow controlled instead).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_slow_consumer_policy(
    config: *mut wsb_config,
    policy: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.slow_consumer_policy = match policy {
                WSB_SLOW_CONSUMER_DISCONNECT => SlowConsumerPolicy::Disconnect,
                WSB_SLOW_CONSUMER_DROP_OLDEST => SlowConsumerPolicy::DropOldest,
                WSB_SLOW_CONSUMER_DROP_NEWEST => SlowConsumerPolicy::DropNewest,
                other => {
                    return Err(FfiError::invalid(format!(
                        "policy: {other} is not a WSB_SLOW_CONSUMER_* value"
                    )));
                }
            };
            Ok(())
        })
    })
}

/// Which decisions the host makes through events (both modes): with `connect`, every CONNECT
/// becomes a `WSB_EVENT_CONNECT` and waits for `wsb_server_accept` / `wsb_server_reject`;
/// with `subscribe`, every SUBSCRIBE a `WSB_EVENT_SUBSCRIBE` waiting for
/// `wsb_server_answer_subscribe`. Default: neither (every client is accepted as its `login`,
/// every subscription allowed).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_defer(
    config: *mut wsb_config,
    connect: bool,
    subscribe: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.events.queue.defer_connect = connect;
            c.events.queue.defer_subscribe = subscribe;
            Ok(())
        })
    })
}

/// How long a deferred decision may take before the client is refused (default 10 s; must
/// be > 0).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_decision_timeout(
    config: *mut wsb_config,
    ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.decision_timeout = millis(ms);
            Ok(())
        })
    })
}

/// Poll mode: `cb(user_data)` runs when the event queue goes from empty to non-empty (see
/// `wsb_wake_callback`). Replaces (and drops) an earlier one; `cb` NULL clears it (and a
/// given `drop(user_data)` runs at once). Every server the config creates shares it; its
/// `drop(user_data)` runs once, when it is replaced or the config and all those servers are
/// freed. In callback mode it is never called.
///
/// # Safety
/// `config` is NULL or a live config; `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_wake_callback(
    config: *mut wsb_config,
    cb: wsb_wake_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.events.queue.wake = match cb {
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

/// Callback mode: `cb(user_data, event)` receives every event on a "wsbroker-worker" thread
/// (see `wsb_event_callback`). Replaces (and drops) an earlier one; `cb` NULL clears it (and a
/// given `drop(user_data)` runs at once). Every server the config creates shares it; its
/// `drop(user_data)` runs once, when it is replaced or the config and all those servers are
/// freed. In poll mode it is never called.
///
/// # Safety
/// `config` is NULL or a live config; `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_event_callback(
    config: *mut wsb_config,
    cb: wsb_event_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.events.callback = match cb {
                Some(func) => {
                    let cb: Callback<EventFn> = Callback::new(func, user_data, drop);
                    Some(Arc::new(move |event: Event| {
                        let event = OwnedEvent::new(&event);
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

/// URL prefix of the SockJS endpoint on the WebSocket listener (default "/sockjs"; no
/// trailing slash). `path` NULL or empty turns SockJS off. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_sockjs_path(
    config: *mut wsb_config,
    path: *const c_char,
    path_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let path = unsafe { opt_str_arg(path, path_len, "path")? };
            c.server.sockjs.path = path.unwrap_or_default().to_string();
            Ok(())
        })
    })
}

/// SockJS timing and sizes: the `h` heart-beat interval and the disconnect delay in ms, and
/// the bytes after which a streaming response is ended. 0 keeps a value's default (25 s, 5 s,
/// 128 KiB).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_sockjs_limits(
    config: *mut wsb_config,
    heartbeat_ms: u32,
    disconnect_delay_ms: u32,
    response_limit: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let defaults = crate::config::SockJsConfig::default();
            let sockjs = &mut c.server.sockjs;
            sockjs.heartbeat = match heartbeat_ms {
                0 => defaults.heartbeat,
                ms => millis(ms),
            };
            sockjs.disconnect_delay = match disconnect_delay_ms {
                0 => defaults.disconnect_delay,
                ms => millis(ms),
            };
            sockjs.response_limit = match response_limit {
                0 => defaults.response_limit,
                n => n,
            };
            Ok(())
        })
    })
}

/// SockJS options: whether the `websocket` transport is offered (default true) and whether
/// session responses set a `JSESSIONID` cookie for sticky load balancers (default false).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_sockjs_options(
    config: *mut wsb_config,
    websocket: bool,
    cookie_needed: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.sockjs.websocket = websocket;
            c.server.sockjs.cookie_needed = cookie_needed;
            Ok(())
        })
    })
}

/// Directory whose files are served over HTTP on the WebSocket listener (paths other than
/// the WebSocket endpoint, the SockJS prefix and "/metrics"); `dir` NULL turns it off (the
/// default). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `dir` is NULL or valid for `dir_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_static_dir(
    config: *mut wsb_config,
    dir: *const c_char,
    dir_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let dir = unsafe { opt_str_arg(dir, dir_len, "dir")? };
            c.server.static_dir = dir.map(std::path::PathBuf::from);
            Ok(())
        })
    })
}

/// A durable store in directory `dir` (created if missing): queues and histories persist
/// and survive a restart, even a crash; a RECEIPT for a SEND to a queue or history
/// destination comes once the message is on disk. `dir` NULL turns it off (the default: in
/// memory). Keeps the fsync policy set before. Copied. The directory is opened (and locked:
/// one server per directory) by `wsb_server_start`.
///
/// # Safety
/// `config` is NULL or a live config; `dir` is NULL or valid for `dir_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_data_dir(
    config: *mut wsb_config,
    dir: *const c_char,
    dir_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let dir = unsafe { opt_str_arg(dir, dir_len, "dir")? };
            c.server.store = dir.map(|dir| {
                let mut store = crate::store::StoreConfig::new(dir);
                if let Some(old) = &c.server.store {
                    store.fsync = old.fsync;
                }
                store
            });
            Ok(())
        })
    })
}

/// When the durable store syncs: `window_ms` 0 syncs every commit at once (messages that
/// arrive meanwhile share the next one: the default); 1..=10000 collects messages for up to
/// that many milliseconds and syncs them together (receipts later by up to the window).
/// `WSB_ERR_INVALID_ARGUMENT` without a data dir set first, or above 10000.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_fsync_window(
    config: *mut wsb_config,
    window_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let Some(store) = &mut c.server.store else {
                return Err(FfiError::invalid("set a data dir (wsb_config_set_data_dir) first"));
            };
            store.fsync = match window_ms {
                0 => crate::store::FsyncPolicy::EveryMessage,
                1..=10_000 => crate::store::FsyncPolicy::Batched(std::time::Duration::from_millis(window_ms.into())),
                _ => return Err(FfiError::invalid("window_ms must be at most 10000")),
            };
            Ok(())
        })
    })
}

fn pem_arg(data: &[u8], what: &str) -> Result<Vec<u8>, FfiError> {
    if data.is_empty() {
        return Err(FfiError::invalid(format!("{what}: empty PEM")));
    }
    Ok(data.to_vec())
}

/// TLS on every listener with the certificate chain (server certificate first) and its
/// private key read from these PEM files when the server starts (`wss://`, STOMP over TLS).
/// Keeps a client CA set before. `cert_path` NULL turns TLS off (the default). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `cert_path` and `key_path` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_tls_files(
    config: *mut wsb_config,
    cert_path: *const c_char,
    cert_path_len: usize,
    key_path: *const c_char,
    key_path_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            if cert_path.is_null() {
                c.server.tls = None;
                return Ok(());
            }
            // SAFETY: see the function's safety section.
            let cert = unsafe { str_arg(cert_path, cert_path_len, "cert_path")? };
            // SAFETY: see the function's safety section.
            let key = unsafe { str_arg(key_path, key_path_len, "key_path")? };
            set_tls(c, PemSource::File(cert.into()), PemSource::File(key.into()));
            Ok(())
        })
    })
}

/// Like `wsb_config_set_tls_files`, with the certificate chain and private key given as PEM
/// text in memory. Copied; the caller may wipe its buffers afterwards.
///
/// # Safety
/// `config` is NULL or a live config; `cert_pem` and `key_pem` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_tls_pem(
    config: *mut wsb_config,
    cert_pem: *const u8,
    cert_pem_len: usize,
    key_pem: *const u8,
    key_pem_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let cert = pem_arg(unsafe { bytes_arg(cert_pem, cert_pem_len, "cert_pem")? }, "cert_pem")?;
            // SAFETY: see the function's safety section.
            let key = pem_arg(unsafe { bytes_arg(key_pem, key_pem_len, "key_pem")? }, "key_pem")?;
            set_tls(c, PemSource::Pem(cert), PemSource::Pem(key));
            Ok(())
        })
    })
}

fn set_tls(c: &mut wsb_config, cert: PemSource, key: PemSource) {
    let client_ca = c.server.tls.take().and_then(|t| t.client_ca_pem);
    let mut tls = TlsConfig::new(cert, key);
    tls.client_ca_pem = client_ca;
    c.server.tls = Some(tls);
}

/// Requires a client certificate signed by one of these CAs (mutual TLS). `ca` is a PEM
/// file path when `is_file` is non-zero, else PEM text; `ca` NULL removes the requirement
/// (the default). Needs `wsb_config_set_tls_files` or `wsb_config_set_tls_pem` first
/// (else `WSB_ERR_INVALID_ARGUMENT`). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `ca` is NULL or valid for `ca_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_tls_client_ca(
    config: *mut wsb_config,
    ca: *const u8,
    ca_len: usize,
    is_file: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let source = if ca.is_null() {
                None
            } else if is_file {
                // SAFETY: see the function's safety section.
                let path = unsafe { str_arg(ca.cast(), ca_len, "ca")? };
                Some(PemSource::File(path.into()))
            } else {
                // SAFETY: see the function's safety section.
                Some(PemSource::Pem(pem_arg(unsafe { bytes_arg(ca, ca_len, "ca")? }, "ca")?))
            };
            let Some(tls) = c.server.tls.as_mut() else {
                return Err(FfiError::invalid(
                    "client CA: set the server certificate first (wsb_config_set_tls_files or wsb_config_set_tls_pem)",
                ));
            };
            tls.client_ca_pem = source;
            Ok(())
        })
    })
}
