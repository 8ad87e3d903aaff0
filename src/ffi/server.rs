//! `wsb_server`: the exported server functions, each a translation of one `Server` method.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::callbacks::{
    Callback, UserData, in_callback, inside_callback, wsb_app_callback, wsb_drop_callback,
    wsb_event_callback,
};
use super::config::wsb_config;
use super::convert::{
    bytes_arg, headers_arg, millis, mut_arg, opt_str_arg, out_arg, str_arg,
};
use super::events::{OwnedEvent, wsb_event, wsb_header};
use super::result::{FfiError, FfiResult, last_error_out, record_on, wsb_result};
use crate::error::Error;
use crate::broker::Stats;
use crate::events::Event;
use crate::server::{HostSubscriptionId, Server};

/// Capacity of the `error_buf` handed to a `wsb_app_callback`.
const APP_ERROR_CAP: usize = 512;

/// A server. Create with `wsb_server_new`, free with `wsb_server_free`; every `wsb_server_*`
/// call is thread-safe.
pub struct wsb_server {
    pub(super) server: Arc<Server>,
    last_error: Mutex<String>,
    /// The events last returned to each polling thread, with the storage their pointers use.
    polls: Mutex<HashMap<PollThread, PollBatch>>,
}

/// Identifies a polling thread. Not `std::thread::ThreadId`: getting that allocates a
/// `Thread` handle that a C main thread never frees (valgrind reports it "possibly lost").
type PollThread = u64;

pub(super) fn poll_thread() -> PollThread {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static KEY: PollThread = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    KEY.with(|key| *key)
}

/// What the `wsb_event`s of one poll point into.
struct PollBatch {
    _converted: Vec<OwnedEvent>,
    _events: Vec<Event>,
}


/// Runs `f` on the server behind `server`, recording a failure as its last error too.
pub(super) fn with_server(
    server: *const wsb_server,
    f: impl FnOnce(&wsb_server) -> FfiResult,
) -> FfiResult {
    let handle = live_server(server)?;
    let result = f(&handle);
    record_on(&handle.last_error, &result);
    result
}

/// The servers `wsb_server_new` made and `wsb_server_free` has not freed, by handle. A handle
/// is a token (never reused, never dereferenced), so a call that races `wsb_server_free`, or
/// comes after it, finds nothing and gets `WSB_ERR_NOT_RUNNING` instead of touching freed
/// memory; a call in progress holds its own reference, so the server goes away only after it.
static LIVE: std::sync::LazyLock<parking_lot::RwLock<HashMap<usize, Arc<wsb_server>>>> =
    std::sync::LazyLock::new(Default::default);

/// The next handle token (a multiple of 16, so that it looks like any other pointer).
static NEXT_HANDLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

/// The live server behind `server`.
fn live_server(server: *const wsb_server) -> Result<Arc<wsb_server>, FfiError> {
    if server.is_null() {
        return Err(FfiError::null("server"));
    }
    LIVE.read()
        .get(&(server as usize))
        .cloned()
        .ok_or_else(|| Error::NotRunning.into())
}

fn refuse_inside_callback(what: &'static str) -> FfiResult {
    if inside_callback() {
        return Err(Error::CalledFromCallback(what).into());
    }
    Ok(())
}

/// Creates a server from `config` (validated now: `WSB_ERR_INVALID_CONFIG` names the bad
/// field). Copies the settings and moves the callbacks out of the config (so each drop runs
/// once); on failure the config is left as it was. Write `*out_server` on success; the server
/// does not listen until `wsb_server_start`.
///
/// # Safety
/// `config` is NULL or a live config; `out_server` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_new(
    config: *mut wsb_config,
    out_server: *mut *mut wsb_server,
) -> wsb_result {
    ffi_guard!(result {
        let out = out_arg(out_server, "out_server")?;
        // SAFETY: see the function's safety section.
        let c = unsafe { mut_arg(config, "config")? };
        let server = Server::new(c.server.clone())?;
        server.enable_event_delivery(c.events.delivery()?)?;
        let handle = Arc::new(wsb_server {
            server: Arc::new(server),
            last_error: Mutex::new(String::new()),
            polls: Mutex::new(HashMap::new()),
        });
        let token = NEXT_HANDLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 16;
        LIVE.write().insert(token, handle);
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(token as *mut wsb_server) };
        Ok(())
    })
}

/// Stops the server if it runs (1 s grace), runs every remaining drop callback and frees it.
/// NULL is fine. From inside a wsbroker callback: `WSB_ERR_CALLED_FROM_CALLBACK`, and nothing
/// is freed. Calls on this server from other threads that race the free, or come after it,
/// are safe: they get `WSB_ERR_NOT_RUNNING` (a call already in progress finishes first, and
/// the server is released after it). Freeing it twice is `WSB_ERR_NOT_RUNNING` too.
///
/// # Safety
/// `server` is NULL or a handle from `wsb_server_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_free(server: *mut wsb_server) -> wsb_result {
    ffi_guard!(result {
        if server.is_null() {
            return Ok(());
        }
        with_server(server, |_| refuse_inside_callback("wsb_server_free"))?;
        let handle = LIVE.write().remove(&(server as usize));
        // The last reference (this one, or a racing call's) stops and frees the server.
        drop(handle.ok_or(Error::NotRunning)?);
        Ok(())
    })
}

/// Binds the listeners (synchronously: a taken address is `WSB_ERR_ADDRESS_IN_USE` here) and
/// starts the server's threads. A server starts once (`WSB_ERR_ALREADY_STARTED`).
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_start(server: *mut wsb_server) -> wsb_result {
    ffi_guard!(result { with_server(server, |s| Ok(s.server.start()?)) })
}

/// Stops accepting, closes every connection (ERROR "server shutting down", WebSocket close
/// 1001), waits up to `grace_ms` for them and stops the server's threads. Twice, or before
/// start: `WSB_ERR_NOT_RUNNING`. From inside a wsbroker callback:
/// `WSB_ERR_CALLED_FROM_CALLBACK`.
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_stop(server: *mut wsb_server, grace_ms: u32) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            refuse_inside_callback("wsb_server_stop")?;
            Ok(s.server.stop(millis(grace_ms))?)
        })
    })
}

/// The bound WebSocket port (`WSB_ERR_NOT_RUNNING` when not running).
///
/// # Safety
/// `server` is NULL or a live server; `out_port` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_local_port(
    server: *const wsb_server,
    out_port: *mut u16,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_port, "out_port")?;
            let port = s.server.local_port()?;
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(port) };
            Ok(())
        })
    })
}

/// The bound plain-TCP STOMP port (`WSB_ERR_NOT_FOUND` when that listener is off,
/// `WSB_ERR_NOT_RUNNING` when the server is not running).
///
/// # Safety
/// `server` is NULL or a live server; `out_port` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_tcp_port(
    server: *const wsb_server,
    out_port: *mut u16,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_port, "out_port")?;
            let port = s.server.tcp_port()?;
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(port) };
            Ok(())
        })
    })
}

/// The detail message of the last failed call on this server (from any thread). Writes the
/// full length (NUL excluded) to `*out_len` and, when `buf` is not NULL and `cap` is not 0, a
/// NUL-terminated copy truncated to `cap - 1` bytes. `buf` may be NULL only with `cap` 0.
///
/// # Safety
/// `server` is NULL or a live server; `buf` is NULL or valid for `cap` bytes of writing;
/// `out_len` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_last_error(
    server: *const wsb_server,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        let s = live_server(server)?;
        // SAFETY: see the function's safety section.
        unsafe { last_error_out(&s.last_error, buf, cap, out_len) }
    })
}

/// A snapshot of the server's counters.
///
/// # Safety
/// `server` is NULL or a live server; `out_stats` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_stats(
    server: *const wsb_server,
    out_stats: *mut Stats,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_stats, "out_stats")?;
            let stats = s.server.stats();
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(stats) };
            Ok(())
        })
    })
}

/// Publishes a message to a destination ("/topic/x" broadcast, "/queue/x" one consumer,
/// "/user/{name}/..."). Headers and body are copied; the caller still owns them. Never
/// blocks; from any thread, also inside callbacks. While a subscriber it would reach is
/// congested (flow control), or a queue destination is full, it is `WSB_ERR_BACKPRESSURE` and
/// nothing is delivered: retry later, or use `wsb_server_publish_wait`. A header with a NUL
/// (or a name with CR/LF), or an empty destination or one with NUL/CR/LF, is
/// `WSB_ERR_INVALID_ARGUMENT`, and so are a body above the frame size limit and more headers
/// than `max_headers`; before start and after stop it is `WSB_ERR_NOT_RUNNING`.
///
/// # Safety
/// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_publish(
    server: *mut wsb_server,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = unsafe { bytes_arg(body, body_len, "body")? };
            s.server
                .publish(destination, &headers, Bytes::copy_from_slice(body))?;
            Ok(())
        })
    })
}

/// As `wsb_server_publish`, but while flow control refuses the message it waits up to
/// `timeout_ms` for room (then `WSB_ERR_BACKPRESSURE`). Blocks the calling thread, so not
/// from inside a wsbroker callback (`WSB_ERR_CALLED_FROM_CALLBACK`). A stuck subscriber is
/// disconnected once the slow-consumer timeout passed, so a longer wait only waits for busy
/// ones.
///
/// # Safety
/// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments, reason = "the C calling convention of wsb_server_publish")]
pub unsafe extern "C" fn wsb_server_publish_wait(
    server: *mut wsb_server,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    timeout_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = unsafe { bytes_arg(body, body_len, "body")? };
            let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
            s.server
                .publish_wait(destination, &headers, Bytes::copy_from_slice(body), timeout)?;
            Ok(())
        })
    })
}

/// Sends to every session of `user` subscribed to "/user" + `destination` (e.g. destination
/// "/queue/reply" reaches subscriptions to "/user/queue/reply"). Copied; never blocks.
///
/// # Safety
/// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_send_to_user(
    server: *mut wsb_server,
    user: *const c_char,
    user_len: usize,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY (these four): see the function's safety section.
            // SAFETY: see the function's safety section.
            let user = unsafe { str_arg(user, user_len, "user")? };
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = unsafe { bytes_arg(body, body_len, "body")? };
            s.server
                .send_to_user(user, destination, &headers, Bytes::copy_from_slice(body))?;
            Ok(())
        })
    })
}

/// Sends only to the subscriptions of one session that match `destination` (written as the
/// session subscribed it). Unknown session: `WSB_ERR_NOT_FOUND`. Copied; never blocks.
///
/// # Safety
/// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_send_to_session(
    server: *mut wsb_server,
    session: u64,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY (these three): see the function's safety section.
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = unsafe { bytes_arg(body, body_len, "body")? };
            s.server
                .send_to_session(session, destination, &headers, Bytes::copy_from_slice(body))?;
            Ok(())
        })
    })
}

/// Closes a session with an ERROR frame carrying `reason` (copied).
///
/// # Safety
/// `server` is NULL or a live server; `reason` is NULL or valid for `reason_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_disconnect(
    server: *mut wsb_server,
    session: u64,
    reason: *const c_char,
    reason_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let reason = unsafe { str_arg(reason, reason_len, "reason")? };
            Ok(s.server.disconnect_session(session, reason)?)
        })
    })
}

/// Subscribes the host to a destination pattern ("/topic/a", "/topic/*", "/topic/**"); the host
/// sees every matching message (broadcast or queue) without consuming it. With `cb`, it is
/// called with a `WSB_EVENT_MESSAGE` event on a callback thread ("wsbroker-callback"), one
/// message at a time in publish order, never on the publisher's thread; with `cb` NULL the messages arrive as
/// `WSB_EVENT_MESSAGE` events through the delivery mode (and a given `drop(user_data)` runs at
/// once). Writes the subscription id (never reused) to `*out_id`. On failure nothing is
/// registered and `drop` is not called.
///
/// # Safety
/// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes;
/// `cb` and `drop` are NULL or valid functions; `out_id` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_subscribe(
    server: *mut wsb_server,
    pattern: *const c_char,
    pattern_len: usize,
    cb: wsb_event_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
    out_id: *mut u64,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_id, "out_id")?;
            // SAFETY: see the function's safety section.
            let pattern = unsafe { str_arg(pattern, pattern_len, "pattern")? };
            let id = match cb {
                Some(func) => {
                    // Checked first: a failed registration must not run `drop(user_data)`.
                    s.server.check_subscription_pattern(pattern)?;
                    let cb = Callback::new(func, user_data, drop);
                    s.server.subscribe_with_id(pattern, move |id, message| {
                        let event = OwnedEvent::message(id.0, message);
                        // SAFETY: a callback registered by the host with its user data.
                        in_callback(|| unsafe { (cb.func)(cb.user_data.ptr(), event.raw()) });
                    })?
                }
                None => {
                    let id = s.server.subscribe_events(pattern)?;
                    std::mem::drop(UserData::new(user_data, drop));
                    id
                }
            };
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(id.0) };
            Ok(())
        })
    })
}

/// Ends a host subscription (its drop runs once no call of its callback is in progress).
/// Unknown id: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// `server` is NULL or a live server.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_unsubscribe(server: *mut wsb_server, id: u64) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| Ok(s.server.unsubscribe(HostSubscriptionId(id))?))
    })
}

/// Handles SENDs to application destinations matching `pattern` (e.g. "/app/chat",
/// "/app/**"); a later registration of the same pattern replaces the earlier one (whose drop
/// runs). With `cb`, it is called on a callback thread for each such SEND, one SEND of a session
/// at a time and in order (see
/// `wsb_app_callback`); with `cb` NULL they arrive as `WSB_EVENT_APP_MESSAGE` events through
/// the delivery mode (and a given `drop(user_data)` runs at once). On failure nothing is
/// registered and `drop` is not called.
///
/// # Safety
/// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes;
/// `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_handle_app(
    server: *mut wsb_server,
    pattern: *const c_char,
    pattern_len: usize,
    cb: wsb_app_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let pattern = unsafe { str_arg(pattern, pattern_len, "pattern")? };
            match cb {
                Some(func) => {
                    let cb = Callback::new(func, user_data, drop);
                    s.server.handle_app(pattern, move |message, _| {
                        let event = OwnedEvent::app_message(message);
                        let mut error = [0u8; APP_ERROR_CAP];
                        // SAFETY: a callback registered by the host with its user data;
                        // `error` is writable for APP_ERROR_CAP bytes.
                        let refused = in_callback(|| unsafe {
                            (cb.func)(
                                cb.user_data.ptr(),
                                event.raw(),
                                error.as_mut_ptr().cast::<c_char>(),
                                APP_ERROR_CAP,
                            )
                        });
                        if refused == 0 {
                            return Ok(());
                        }
                        let end = error.iter().position(|&b| b == 0).unwrap_or(APP_ERROR_CAP);
                        let text = String::from_utf8_lossy(&error[..end]);
                        Err(if text.is_empty() {
                            "refused by the application".to_string()
                        } else {
                            text.into_owned()
                        })
                    });
                }
                None => {
                    s.server.route_app_to_events(pattern)?;
                    std::mem::drop(UserData::new(user_data, drop));
                }
            }
            Ok(())
        })
    })
}

/// Removes the application handler of `pattern` (its drop runs). Unknown: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_remove_app(
    server: *mut wsb_server,
    pattern: *const c_char,
    pattern_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let pattern = unsafe { str_arg(pattern, pattern_len, "pattern")? };
            Ok(s.server.remove_app(pattern)?)
        })
    })
}

/// Accepts a deferred CONNECT (`WSB_EVENT_CONNECT`), as user `user` (NULL: no user; the user
/// enables "/user/..." destinations). A session not waiting (answered, timed out, gone):
/// `WSB_ERR_NOT_FOUND`. From any thread, also inside callbacks.
///
/// # Safety
/// `server` is NULL or a live server; `user` is NULL or valid for `user_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_accept(
    server: *mut wsb_server,
    session: u64,
    user: *const c_char,
    user_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let user = unsafe { opt_str_arg(user, user_len, "user")? };
            Ok(s.server.accept_connect(session, user)?)
        })
    })
}

/// Rejects a deferred CONNECT; the client gets an ERROR frame with `message` (copied).
///
/// # Safety
/// `server` is NULL or a live server; `message` is NULL or valid for `message_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_reject(
    server: *mut wsb_server,
    session: u64,
    message: *const c_char,
    message_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let message = unsafe { str_arg(message, message_len, "message")? };
            Ok(s.server.reject_connect(session, message)?)
        })
    })
}

/// Answers a deferred SUBSCRIBE (`WSB_EVENT_SUBSCRIBE`): `allow`, or refuse with an ERROR
/// frame carrying `message` (copied; ignored when allowing).
///
/// # Safety
/// `server` is NULL or a live server; `message` is NULL or valid for `message_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_answer_subscribe(
    server: *mut wsb_server,
    session: u64,
    allow: bool,
    message: *const c_char,
    message_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let message = unsafe { str_arg(message, message_len, "message")? };
            let decision = if allow {
                Ok(())
            } else {
                Err(message.to_string())
            };
            Ok(s.server.answer_subscribe(session, decision)?)
        })
    })
}

fn poll(
    server: *mut wsb_server,
    events: *mut wsb_event,
    max_events: usize,
    timeout: Duration,
    out_count: *mut usize,
) -> FfiResult {
    with_server(server, |s| {
        let out = out_arg(out_count, "out_count")?;
        if events.is_null() && max_events > 0 {
            return Err(FfiError::null("events (with max_events > 0)"));
        }
        let thread = poll_thread();
        // The previous batch of this thread is invalid from now on; drop it outside the lock.
        let previous = s.polls.lock().remove(&thread);
        drop(previous);
        let mut polled = Vec::new();
        let n = s.server.poll_events(&mut polled, max_events, timeout)?;
        let converted: Vec<OwnedEvent> = polled.iter().map(OwnedEvent::new).collect();
        for (i, event) in converted.iter().enumerate() {
            // SAFETY: i < n <= max_events, and the caller guarantees `max_events` slots.
            unsafe { events.add(i).write(*event.raw()) };
        }
        if n > 0 {
            let batch = PollBatch {
                _converted: converted,
                _events: polled,
            };
            s.polls.lock().insert(thread, batch);
        }
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(n) };
        Ok(())
    })
}

/// Poll mode: moves up to `max_events` queued events into `events[0..*out_count]` without
/// blocking (`*out_count` may be 0). A `WSB_EVENT_OVERFLOW` comes first when events were lost.
/// Each event goes to exactly one poller. The events' pointers stay valid until this thread's
/// next poll on this server (or `wsb_server_free`). In callback mode:
/// `WSB_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `server` is NULL or a live server; `events` is NULL or valid for `max_events` writes;
/// `out_count` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_poll(
    server: *mut wsb_server,
    events: *mut wsb_event,
    max_events: usize,
    out_count: *mut usize,
) -> wsb_result {
    ffi_guard!(result { poll(server, events, max_events, Duration::ZERO, out_count) })
}

/// Like `wsb_server_poll`, but waits up to `timeout_ms` for the first event.
///
/// # Safety
/// As `wsb_server_poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_poll_timeout(
    server: *mut wsb_server,
    events: *mut wsb_event,
    max_events: usize,
    timeout_ms: u32,
    out_count: *mut usize,
) -> wsb_result {
    ffi_guard!(result { poll(server, events, max_events, millis(timeout_ms), out_count) })
}
