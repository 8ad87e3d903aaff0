//! Result codes, the mapping from [`crate::Error`], and the thread-local last error.

use std::cell::RefCell;
use std::ffi::c_char;

use crate::error::Error;

/// The result of every fallible call. Values are grouped and never renumbered:
/// 0 success; 1xx bad arguments; 2xx state (wrong time to call, unknown id); 3xx I/O and
/// resources; 900 an internal panic (caught; the library stays usable).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum wsb_result {
    /// Success.
    WSB_OK = 0,
    /// A required pointer was NULL (or a NULL string/array with a non-zero length).
    WSB_ERR_NULL_ARGUMENT = 100,
    /// A string argument was not valid UTF-8.
    WSB_ERR_INVALID_UTF8 = 101,
    /// An argument was out of range: an unknown enum value, an unparsable address, a bad
    /// destination, a call that does not fit the delivery mode.
    WSB_ERR_INVALID_ARGUMENT = 102,
    /// The configuration was rejected by `wsb_server_new`; the last error names the field.
    WSB_ERR_INVALID_CONFIG = 103,
    /// `wsb_server_start` on a server that was started before.
    WSB_ERR_ALREADY_STARTED = 200,
    /// The server is not running (never started, or stopped).
    WSB_ERR_NOT_RUNNING = 201,
    /// Unknown (or no longer existing) session, subscription, handler or listener.
    WSB_ERR_NOT_FOUND = 202,
    /// `wsb_server_stop` / `wsb_server_free` (or `wsb_set_log_callback` from the log
    /// callback) called from inside a wsbroker callback.
    WSB_ERR_CALLED_FROM_CALLBACK = 203,
    /// A client is not connected, or lost its connection before the operation finished.
    WSB_ERR_NOT_CONNECTED = 204,
    /// A listen address is taken.
    WSB_ERR_ADDRESS_IN_USE = 300,
    /// Any other I/O error.
    WSB_ERR_IO = 301,
    /// A bounded queue is full; nothing was queued (the call never blocks).
    WSB_ERR_BACKPRESSURE = 302,
    /// A client operation did not finish in time (a receipt, a connection).
    WSB_ERR_TIMEOUT = 303,
    /// The server refused (an ERROR frame, an HTTP status, a rejected login).
    WSB_ERR_REFUSED = 304,
    /// A panic inside wsbroker was caught; the last error holds its message.
    WSB_ERR_PANIC = 900,
}

/// An error on its way to C: the code and the detail message.
#[derive(Debug, Clone)]
pub struct FfiError {
    pub code: wsb_result,
    pub message: String,
}

impl FfiError {
    /// An error; a NUL in the message (one that quotes a caller's string, say) is written as
    /// `\0`, so that C reads the whole message.
    pub fn new(code: wsb_result, message: impl Into<String>) -> FfiError {
        let mut message = message.into();
        if message.contains('\0') {
            message = message.replace('\0', "\\0");
        }
        FfiError { code, message }
    }

    pub fn null(what: &str) -> FfiError {
        FfiError::new(
            wsb_result::WSB_ERR_NULL_ARGUMENT,
            format!("{what}: NULL pointer"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> FfiError {
        FfiError::new(wsb_result::WSB_ERR_INVALID_ARGUMENT, message)
    }
}

impl From<Error> for FfiError {
    fn from(err: Error) -> FfiError {
        let code = match &err {
            Error::InvalidConfig(_) => wsb_result::WSB_ERR_INVALID_CONFIG,
            Error::AddressInUse(_) => wsb_result::WSB_ERR_ADDRESS_IN_USE,
            Error::Io(_) => wsb_result::WSB_ERR_IO,
            Error::AlreadyStarted => wsb_result::WSB_ERR_ALREADY_STARTED,
            Error::NotRunning => wsb_result::WSB_ERR_NOT_RUNNING,
            Error::InvalidArgument(_) => wsb_result::WSB_ERR_INVALID_ARGUMENT,
            Error::InvalidUtf8(_) => wsb_result::WSB_ERR_INVALID_UTF8,
            Error::Backpressure(_) => wsb_result::WSB_ERR_BACKPRESSURE,
            Error::NotFound(_) => wsb_result::WSB_ERR_NOT_FOUND,
            Error::CalledFromCallback(_) => wsb_result::WSB_ERR_CALLED_FROM_CALLBACK,
            Error::NotConnected(_) => wsb_result::WSB_ERR_NOT_CONNECTED,
            Error::Timeout(_) => wsb_result::WSB_ERR_TIMEOUT,
            Error::Refused(_) => wsb_result::WSB_ERR_REFUSED,
        };
        FfiError::new(code, err.to_string())
    }
}

/// What an export body returns when the export returns `wsb_result`.
pub type FfiResult = Result<(), FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Stores the calling thread's last error message.
pub fn set_last_error(message: &str) {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        last.clear();
        last.push_str(message);
    });
}

/// Copies `text` into `buf` (capacity `cap`) as a NUL-terminated, possibly truncated string
/// (truncated on a UTF-8 boundary) and returns the full length in bytes, NUL excluded.
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes of writing.
pub unsafe fn copy_to_buffer(text: &str, buf: *mut c_char, cap: usize) -> usize {
    if !buf.is_null() && cap > 0 {
        let mut n = text.len().min(cap - 1);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: the caller guarantees `cap` writable bytes at `buf`; n + 1 <= cap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    text.len()
}

/// The body of `wsb_server_last_error` and `wsb_client_last_error`: `last` (an object's last
/// error) into `buf` and its full length into `*out_len`.
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes of writing; `out_len` is NULL or valid for writing.
pub unsafe fn last_error_out(
    last: &parking_lot::Mutex<String>,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> FfiResult {
    let out = super::convert::out_arg(out_len, "out_len")?;
    if buf.is_null() && cap > 0 {
        return Err(FfiError::null("buf (with cap > 0)"));
    }
    let last = last.lock().clone();
    // SAFETY: forwarded from the caller.
    let len = unsafe { copy_to_buffer(&last, buf, cap) };
    // SAFETY: checked non-NULL; the caller guarantees it is writable.
    unsafe { out.write(len) };
    Ok(())
}

/// Records a failed call as an object's last error too (`wsb_*_last_error`).
pub fn record_on(last: &parking_lot::Mutex<String>, result: &FfiResult) {
    if let Err(err) = result {
        let mut last = last.lock();
        last.clear();
        last.push_str(&err.message);
    }
}

/// A static description of a result code, e.g. "WSB_ERR_NOT_FOUND: not found";
/// "unknown result code" for values this library does not know.
#[unsafe(no_mangle)]
pub extern "C" fn wsb_result_str(code: i32) -> *const c_char {
    ffi_guard!({
        let text: &'static std::ffi::CStr = match code {
            0 => c"WSB_OK: success",
            100 => c"WSB_ERR_NULL_ARGUMENT: a required pointer was NULL",
            101 => c"WSB_ERR_INVALID_UTF8: a string argument is not valid UTF-8",
            102 => c"WSB_ERR_INVALID_ARGUMENT: invalid argument",
            103 => c"WSB_ERR_INVALID_CONFIG: invalid configuration",
            200 => c"WSB_ERR_ALREADY_STARTED: server already started",
            201 => c"WSB_ERR_NOT_RUNNING: server not running",
            202 => c"WSB_ERR_NOT_FOUND: not found",
            203 => c"WSB_ERR_CALLED_FROM_CALLBACK: not allowed inside a wsbroker callback",
            204 => c"WSB_ERR_NOT_CONNECTED: the client is not connected",
            300 => c"WSB_ERR_ADDRESS_IN_USE: address in use",
            301 => c"WSB_ERR_IO: I/O error",
            302 => c"WSB_ERR_BACKPRESSURE: queue full, nothing was queued",
            303 => c"WSB_ERR_TIMEOUT: timed out",
            304 => c"WSB_ERR_REFUSED: refused by the server",
            900 => c"WSB_ERR_PANIC: internal panic (caught)",
            _ => c"unknown result code",
        };
        text.as_ptr()
    })
}

/// The detail message of the calling thread's last failed call (not cleared by successful
/// calls). Returns its full length in bytes (NUL excluded); when `buf` is not NULL and `cap`
/// is not 0, writes a NUL-terminated copy, truncated to `cap - 1` bytes if needed.
///
/// # Safety
/// `buf` is NULL or valid for `cap` bytes of writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_last_error(buf: *mut c_char, cap: usize) -> usize {
    ffi_guard!({
        LAST_ERROR.with(|last| {
            // SAFETY: forwarded from the caller.
            unsafe { copy_to_buffer(&last.borrow(), buf, cap) }
        })
    })
}
