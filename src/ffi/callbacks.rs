//! Callbacks into C: their types, `user_data` ownership and the "inside a callback" depth.

use std::cell::Cell;
use std::ffi::{c_char, c_void};

use super::events::wsb_event;

/// Releases a `user_data`. Runs exactly once, when the server no longer needs it: when the
/// registration is removed or replaced, or on `wsb_server_free` / `wsb_config_free`. It may
/// run on any thread; it must not call back into wsbroker.
pub type wsb_drop_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Poll mode: the event queue went from empty to non-empty. Runs on the thread that queued
/// the event (a "wsbroker-worker" thread, or the publishing thread); must be quick and must not block (signal a condition
/// variable, write to an eventfd, post to the host's main loop).
pub type wsb_wake_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Receives an event (callback mode, or a host subscription with a callback). `event` and
/// every pointer inside it are valid only during the call.
pub type wsb_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const wsb_event)>;

/// Handles a SEND to an application destination (a `WSB_EVENT_APP_MESSAGE` event). Return 0
/// to accept; non-zero refuses it, and the sender gets an ERROR frame whose message is the
/// NUL-terminated text written into `error_buf` (capacity `error_cap`; may be left empty),
/// then the connection closes with 1008 (policy violation), the code `wsb_server_disconnect`
/// gives in poll mode too.
pub type wsb_app_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        event: *const wsb_event,
        error_buf: *mut c_char,
        error_cap: usize,
    ) -> i32,
>;

/// Receives a log record: `level` is a `WSB_LOG_*` value, `target` the Rust module path and
/// `message` the formatted text (both NUL-terminated, valid during the call). Runs on the
/// thread that logged; must not call wsbroker functions.
pub type wsb_log_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: i32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

thread_local! {
    static CALLBACK_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// True while this thread is inside a call into a C callback.
pub fn inside_callback() -> bool {
    CALLBACK_DEPTH.with(Cell::get) > 0
}

struct DepthGuard;

impl Drop for DepthGuard {
    fn drop(&mut self) {
        CALLBACK_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Runs `f` (a call into C) with this thread marked as inside a callback.
pub fn in_callback<R>(f: impl FnOnce() -> R) -> R {
    CALLBACK_DEPTH.with(|d| d.set(d.get() + 1));
    let _guard = DepthGuard;
    f()
}

/// A host `user_data` pointer with its optional drop callback, run exactly once when this
/// value is dropped.
pub struct UserData {
    ptr: *mut c_void,
    drop: wsb_drop_callback,
}

// SAFETY: the header requires user_data (and its drop) to be usable from any thread.
unsafe impl Send for UserData {}
// SAFETY: as above; wsbroker only passes the pointer along.
unsafe impl Sync for UserData {}

impl UserData {
    pub fn new(ptr: *mut c_void, drop: wsb_drop_callback) -> UserData {
        UserData { ptr, drop }
    }

    /// The pointer, for passing to the C callback.
    pub fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(drop) = self.drop.take() {
            // SAFETY: a C function registered by the host for this pointer.
            in_callback(|| unsafe { drop(self.ptr) });
        }
    }
}

/// A registered C callback: the function and its user data, dropped together.
pub struct Callback<F> {
    pub func: F,
    pub user_data: UserData,
}

impl<F> Callback<F> {
    pub fn new(func: F, user_data: *mut c_void, drop: wsb_drop_callback) -> Callback<F> {
        Callback {
            func,
            user_data: UserData::new(user_data, drop),
        }
    }
}
