//! The panic boundary of every export.
//!
//! Each exported function is written as
//!
//! ```ignore
//! /// docs (copied into the header)
//! #[unsafe(no_mangle)]
//! pub unsafe extern "C" fn wsb_thing(...) -> wsb_result {
//!     ffi_guard!(result { ... })
//! }
//! ```
//!
//! `ffi_guard!(result { body })` is for bodies of type `Result<(), FfiError>` (so that `?`
//! works inside them); `ffi_guard!({ body })` for bodies that give the return value directly.
//! The signature stays literal so that cbindgen (which does not expand macros) sees it; the
//! guard wraps the whole body. The body's value is turned into the function's return type by
//! [`IntoFfi`] (a `Result<(), FfiError>` becomes a [`wsb_result`] and records the last
//! error); a panic is caught, its message recorded, and [`PanicValue::panic_value`] of the
//! return type returned instead (`WSB_ERR_PANIC`, 0, an empty static string).

use std::any::Any;
use std::ffi::c_char;

use super::result::{FfiError, FfiResult, set_last_error, wsb_result};

/// Runs an export's body: converts its value with [`IntoFfi`], catches panics.
macro_rules! ffi_guard {
    (result $body:block) => {
        ffi_guard!({
            $crate::ffi::macros::fallible(|| -> $crate::ffi::result::FfiResult { $body })
        })
    };
    ($body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| {
            $crate::ffi::macros::IntoFfi::into_ffi($body)
        })) {
            Ok(value) => value,
            Err(payload) => $crate::ffi::macros::panicked(payload),
        }
    }};
}

/// Runs a fallible body (a closure, so that `?` returns from the body, not the export).
pub fn fallible(body: impl FnOnce() -> FfiResult) -> FfiResult {
    body()
}

/// What an export returns when its body panicked.
pub trait PanicValue {
    /// The neutral value for this return type.
    fn panic_value() -> Self;
}

impl PanicValue for wsb_result {
    fn panic_value() -> Self {
        wsb_result::WSB_ERR_PANIC
    }
}

impl PanicValue for u32 {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for usize {
    fn panic_value() -> Self {
        0
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl PanicValue for *const c_char {
    fn panic_value() -> Self {
        c"".as_ptr()
    }
}

/// Turns a body's value into the export's return type.
pub trait IntoFfi<R> {
    /// The conversion (records the last error for failures).
    fn into_ffi(self) -> R;
}

impl<T: PanicValue> IntoFfi<T> for T {
    fn into_ffi(self) -> T {
        self
    }
}

impl IntoFfi<wsb_result> for Result<(), FfiError> {
    fn into_ffi(self) -> wsb_result {
        match self {
            Ok(()) => wsb_result::WSB_OK,
            Err(err) => {
                set_last_error(&err.message);
                err.code
            }
        }
    }
}

/// Records a caught panic as the thread's last error and gives the neutral value.
pub fn panicked<R: PanicValue>(payload: Box<dyn Any + Send>) -> R {
    let text = payload
        .downcast_ref::<&str>()
        .map(std::string::ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    set_last_error(&format!("panic inside wsbroker: {text}"));
    // The payload may itself panic on drop; never let that escape either.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    R::panic_value()
}
