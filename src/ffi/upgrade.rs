//! The handshake-level auth hook in C: a callback asked about every WebSocket upgrade request,
//! the read-only request it inspects and the decision it fills in.
//!
//! Browsers cannot set headers on a WebSocket, so a token arrives in a cookie or the query
//! string; this hook sees both before the upgrade is answered and either accepts with a
//! principal (the STOMP session's user unless the connect decision says otherwise) or refuses
//! with an HTTP 4xx status.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{c_char, c_void};

use super::callbacks::{Callback, UserData, in_callback, wsb_drop_callback};
use super::convert::{opt_str_arg, out_arg, ref_arg, str_arg};
use super::result::{FfiError, FfiResult, wsb_result};
use super::server::{with_server, wsb_server};
use crate::hooks::{UpgradeDecision, UpgradeInfo};

/// A WebSocket upgrade request, as a `wsb_upgrade_callback` sees it (opaque). Valid only
/// during the callback, and on the callback's thread; so is every string its accessors return.
pub struct wsb_upgrade_request {
    info: UpgradeInfo,
    /// NUL-terminated copies handed out by the accessors; each is boxed so its address stays
    /// put while more are added.
    strings: RefCell<Vec<Box<[u8]>>>,
}

/// The answer to a `wsb_upgrade_callback` (opaque): set it with `wsb_upgrade_accept` or
/// `wsb_upgrade_reject`; the last call wins. Left unset, the request is refused with 403.
pub struct wsb_upgrade_decision {
    decision: Option<UpgradeDecision>,
}

/// Decides on a WebSocket upgrade request (registered with `wsb_server_set_upgrade_callback`):
/// inspect `request` with the `wsb_upgrade_request_*` accessors and answer through `decision`.
/// Runs on a callback thread ("wsbroker-callback") while that connection's handshake waits (at
/// most the decision timeout), possibly on several threads at once for concurrent handshakes;
/// blocking there delays only the callbacks queued behind it. It may publish and call other
/// `wsb_server_*` functions except `wsb_server_stop` / `wsb_server_free`. Both pointers are valid only during the call.
pub type wsb_upgrade_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        request: *const wsb_upgrade_request,
        decision: *mut wsb_upgrade_decision,
    ),
>;

impl wsb_upgrade_request {
    /// A NUL-terminated copy of `text` kept for the rest of the callback.
    fn keep(&self, text: &str) -> (*const c_char, usize) {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        let stored: Box<[u8]> = bytes.into_boxed_slice();
        let ptr = stored.as_ptr().cast::<c_char>();
        self.strings.borrow_mut().push(stored);
        (ptr, text.len())
    }
}

/// Writes a found string to the out-pointers, or reports `what` as not found.
fn write_string(
    request: &wsb_upgrade_request,
    found: Option<&str>,
    what: &str,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> FfiResult {
    let out = out_arg(out, "out")?;
    let out_len = out_arg(out_len, "out_len")?;
    let text = found.ok_or_else(|| FfiError::new(wsb_result::WSB_ERR_NOT_FOUND, what))?;
    let (ptr, len) = request.keep(text);
    // SAFETY: both checked non-NULL; the caller guarantees they are writable.
    unsafe {
        out.write(ptr);
        out_len.write(len);
    }
    Ok(())
}

/// What a by-name accessor looks up.
#[derive(Clone, Copy)]
enum Named {
    QueryParam,
    Header,
    Cookie,
}

/// The shared body of the by-name accessors: checks `request` and `name`, looks `name` up
/// and writes what it finds, or reports it as not found.
///
/// # Safety
/// As `wsb_upgrade_request_query_param`.
unsafe fn write_named(
    request: *const wsb_upgrade_request,
    what: Named,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> FfiResult {
    // SAFETY (both): see the function's safety section.
    // SAFETY: see the function's safety section.
    let r = unsafe { ref_arg(request, "request")? };
    // SAFETY: see the function's safety section.
    let name = unsafe { str_arg(name, name_len, "name")? };
    let (value, missing) = match what {
        Named::QueryParam => (
            r.info.query_param(name).map(Cow::Owned),
            "no such query parameter",
        ),
        Named::Header => (r.info.header(name).map(Cow::Borrowed), "no such header"),
        Named::Cookie => (r.info.cookie(name).map(Cow::Borrowed), "no such cookie"),
    };
    write_string(r, value.as_deref(), missing, out, out_len)
}

/// The request path without the query (e.g. "/ws"). Writes a NUL-terminated string (valid
/// during the callback) to `*out` and its length to `*out_len`.
///
/// # Safety
/// `request` is NULL or the callback's request; `out` and `out_len` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_path(
    request: *const wsb_upgrade_request,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let r = unsafe { ref_arg(request, "request")? };
        write_string(r, Some(&r.info.path), "path", out, out_len)
    })
}

/// The raw query string (after `?`, not decoded). No query: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wsb_upgrade_request_path`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_query(
    request: *const wsb_upgrade_request,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let r = unsafe { ref_arg(request, "request")? };
        write_string(r, r.info.query.as_deref(), "no query string", out, out_len)
    })
}

/// A query parameter by name, percent-decoded ("+" as a space), e.g. the `token` of
/// "/ws?token=abc". Absent, or not UTF-8 once decoded: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wsb_upgrade_request_path`; `name` is NULL or valid for `name_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_query_param(
    request: *const wsb_upgrade_request,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe { write_named(request, Named::QueryParam, name, name_len, out, out_len) }
    })
}

/// The first value of a request header, by name in any case (e.g. "Authorization",
/// "Origin"). Absent: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wsb_upgrade_request_query_param`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_header(
    request: *const wsb_upgrade_request,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe { write_named(request, Named::Header, name, name_len, out, out_len) }
    })
}

/// A cookie from the request's `Cookie` header(s), by exact name (surrounding double quotes
/// removed). Absent: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wsb_upgrade_request_query_param`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_cookie(
    request: *const wsb_upgrade_request,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe { write_named(request, Named::Cookie, name, name_len, out, out_len) }
    })
}

/// The peer address, e.g. "127.0.0.1:53412" or "[::1]:53412". Unknown: `WSB_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wsb_upgrade_request_path`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_request_remote_addr(
    request: *const wsb_upgrade_request,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let r = unsafe { ref_arg(request, "request")? };
        let addr = r.info.remote_addr.map(|a| a.to_string());
        write_string(r, addr.as_deref(), "peer address unknown", out, out_len)
    })
}

/// Accepts the upgrade, as `principal` (copied; NULL: no principal). The principal becomes
/// the STOMP session's user ("/user/..." destinations, the subscribe decision's user) unless
/// the connect decision names another one.
///
/// # Safety
/// `decision` is NULL or the callback's decision; `principal` is NULL or valid for
/// `principal_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_accept(
    decision: *mut wsb_upgrade_decision,
    principal: *const c_char,
    principal_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY (both): see the function's safety section.
        // SAFETY: see the function's safety section.
        let d = unsafe { super::convert::mut_arg(decision, "decision")? };
        // SAFETY: see the function's safety section.
        let principal = unsafe { opt_str_arg(principal, principal_len, "principal")? };
        d.decision = Some(UpgradeDecision::Accept {
            principal: principal.map(str::to_string),
        });
        Ok(())
    })
}

/// Refuses the upgrade with HTTP `status` (400-499: 401 when the client did not prove who it
/// is, 403 when it may not connect; others are `WSB_ERR_INVALID_ARGUMENT`) and a one-line
/// `reason` (copied) sent as the response body.
///
/// # Safety
/// `decision` is NULL or the callback's decision; `reason` is NULL or valid for `reason_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_upgrade_reject(
    decision: *mut wsb_upgrade_decision,
    status: u16,
    reason: *const c_char,
    reason_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY (both): see the function's safety section.
        // SAFETY: see the function's safety section.
        let d = unsafe { super::convert::mut_arg(decision, "decision")? };
        // SAFETY: see the function's safety section.
        let reason = unsafe { str_arg(reason, reason_len, "reason")? };
        if !(400..500).contains(&status) {
            return Err(FfiError::invalid(format!(
                "status {status}: an upgrade is refused with a 4xx status (401, 403)"
            )));
        }
        d.decision = Some(UpgradeDecision::Reject {
            status,
            reason: reason.to_string(),
        });
        Ok(())
    })
}

/// Sets the upgrade callback, which decides on every WebSocket upgrade request (after the
/// protocol, path and Origin checks) — replacing an earlier one, whose drop runs once no call
/// of it is in progress. With `cb` NULL the hook is removed (every request is accepted
/// without a principal) and a given `drop(user_data)` runs at once. Plain-TCP STOMP
/// connections have no upgrade and are not asked. May be called before or after start.
///
/// # Safety
/// `server` is NULL or a live server; `cb` and `drop` are NULL or valid functions.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_set_upgrade_callback(
    server: *mut wsb_server,
    cb: wsb_upgrade_callback,
    user_data: *mut c_void,
    drop: wsb_drop_callback,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            match cb {
                Some(func) => {
                    let cb = Callback::new(func, user_data, drop);
                    s.server.on_upgrade(move |info| {
                        let request = wsb_upgrade_request {
                            info: info.clone(),
                            strings: RefCell::new(Vec::new()),
                        };
                        let mut decision = wsb_upgrade_decision { decision: None };
                        // SAFETY: a callback registered by the host with its user data; both
                        // pointers outlive the call.
                        in_callback(|| unsafe {
                            (cb.func)(cb.user_data.ptr(), &request, &mut decision);
                        });
                        decision.decision.unwrap_or(UpgradeDecision::Reject {
                            status: 403,
                            reason: "refused".into(),
                        })
                    });
                }
                None => {
                    s.server.clear_upgrade_hook();
                    std::mem::drop(UserData::new(user_data, drop));
                }
            }
            Ok(())
        })
    })
}
