//! The process-wide log callback: a `tracing` layer forwarding records to C.

use std::cell::Cell;
use std::ffi::{CString, c_void};
use std::fmt::Write as _;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

use parking_lot::RwLock;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::callbacks::{in_callback, wsb_log_callback};
use super::result::{FfiError, wsb_result};
use crate::error::Error;

/// Log level: errors.
pub const WSB_LOG_ERROR: i32 = 1;
/// Log level: warnings.
pub const WSB_LOG_WARN: i32 = 2;
/// Log level: informational (start, stop, listening addresses).
pub const WSB_LOG_INFO: i32 = 3;
/// Log level: debugging detail.
pub const WSB_LOG_DEBUG: i32 = 4;
/// Log level: tracing detail.
pub const WSB_LOG_TRACE: i32 = 5;

#[derive(Clone, Copy)]
struct Sink {
    cb: unsafe extern "C" fn(*mut c_void, i32, *const std::ffi::c_char, *const std::ffi::c_char),
    user_data: *mut c_void,
}

// SAFETY: the header requires the log callback and its user_data to be usable from any thread.
unsafe impl Send for Sink {}
// SAFETY: as above.
unsafe impl Sync for Sink {}

/// The callback; a read lock is held while it runs, so that turning it off waits for calls
/// in progress.
static SINK: RwLock<Option<Sink>> = RwLock::new(None);
/// The most verbose level forwarded (0: off), checked first and lock-free.
static MAX_LEVEL: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

thread_local! {
    /// Set while this thread runs the log callback: nested records are not forwarded.
    static IN_LOG: Cell<bool> = const { Cell::new(false) };
}

fn level_number(level: &Level) -> i32 {
    match *level {
        Level::ERROR => WSB_LOG_ERROR,
        Level::WARN => WSB_LOG_WARN,
        Level::INFO => WSB_LOG_INFO,
        Level::DEBUG => WSB_LOG_DEBUG,
        Level::TRACE => WSB_LOG_TRACE,
    }
}

/// The message, then the other fields as ` name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).expect("NUL bytes removed")
    })
}

/// Forwards events at or above the configured level to the C callback.
struct CLogLayer;

impl<S: Subscriber> Layer<S> for CLogLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        level_number(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if IN_LOG.with(Cell::get) {
            return;
        }
        let level = level_number(event.metadata().level());
        if level > MAX_LEVEL.load(Ordering::Relaxed) {
            return;
        }
        let sink = SINK.read();
        let Some(sink) = *sink else { return };
        let mut text = Text::default();
        event.record(&mut text);
        text.message.push_str(&text.fields);
        let target = c_string(event.metadata().target().to_string());
        let message = c_string(text.message);
        IN_LOG.with(|f| f.set(true));
        // SAFETY: a callback registered by the host with its user data; the strings live
        // until after the call.
        in_callback(|| unsafe {
            (sink.cb)(sink.user_data, level, target.as_ptr(), message.as_ptr());
        });
        IN_LOG.with(|f| f.set(false));
    }
}

/// Sets the process-wide log callback: records of level `max_level` (`WSB_LOG_*`) and more
/// severe are passed to `cb(user_data, level, target, message)` on the thread that logged (see
/// `wsb_log_callback`). `cb` NULL turns logging off (`max_level` is then ignored); when this
/// returns, no call of the previous callback is in progress. The first call with a callback
/// installs wsbroker's `tracing` subscriber as the process's global one; if the program already
/// has one, records go there instead and `cb` is not called. From inside the log callback:
/// `WSB_ERR_CALLED_FROM_CALLBACK`.
///
/// # Safety
/// `cb` is NULL or a valid function; `user_data` stays valid until the callback is replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_set_log_callback(
    cb: wsb_log_callback,
    user_data: *mut c_void,
    max_level: i32,
) -> wsb_result {
    ffi_guard!(result {
        if IN_LOG.with(Cell::get) {
            return Err(Error::CalledFromCallback("wsb_set_log_callback").into());
        }
        let Some(cb) = cb else {
            MAX_LEVEL.store(0, Ordering::Relaxed);
            *SINK.write() = None;
            return Ok(());
        };
        if !(WSB_LOG_ERROR..=WSB_LOG_TRACE).contains(&max_level) {
            return Err(FfiError::invalid(format!(
                "max_level: {max_level} is not a WSB_LOG_* value"
            )));
        }
        *SINK.write() = Some(Sink { cb, user_data });
        MAX_LEVEL.store(max_level, Ordering::Relaxed);
        INSTALL.call_once(|| {
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let _ = tracing_subscriber::registry().with(CLogLayer).try_init();
        });
        Ok(())
    })
}
