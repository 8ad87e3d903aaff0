//! Arguments from C: pointer + length strings and bytes, header arrays, object and out pointers.
//!
//! Every function names the argument it checks (`what`) so that the last error says which one
//! was wrong.

use std::ffi::c_char;

use super::events::wsb_header;
use super::result::{FfiError, wsb_result};

/// Longest string or byte argument accepted (the largest frame a server may allow): a bigger
/// length is a caller's mistake (`SIZE_MAX`, a negative number cast), refused before any
/// memory is read or allocated. The safe API then applies the server's own limits.
const MAX_ARG_LEN: usize = 1 << 30;
/// Most headers in one argument array (far above any configured `max_headers`).
const MAX_HEADER_COUNT: usize = 1 << 16;

/// A borrowed UTF-8 string. NULL with length 0 is the empty string; NULL with a non-zero length
/// is `WSB_ERR_NULL_ARGUMENT`; invalid UTF-8 is `WSB_ERR_INVALID_UTF8`.
///
/// # Safety
/// `ptr` is NULL or valid for `len` bytes of reading for `'a`.
pub unsafe fn str_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded from the caller.
    let bytes = unsafe { bytes_arg(ptr.cast::<u8>(), len, what)? };
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::new(
            wsb_result::WSB_ERR_INVALID_UTF8,
            format!(
                "{what}: invalid UTF-8 after {} valid bytes",
                e.valid_up_to()
            ),
        )
    })
}

/// Like [`str_arg`], but NULL with length 0 means "absent" (NULL with a non-zero length is
/// still `WSB_ERR_NULL_ARGUMENT`, as everywhere).
///
/// # Safety
/// As [`str_arg`].
pub unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        if len != 0 {
            return Err(FfiError::new(
                wsb_result::WSB_ERR_NULL_ARGUMENT,
                format!("{what}: NULL pointer with length {len}"),
            ));
        }
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { str_arg(ptr, len, what) }.map(Some)
}

/// Borrowed bytes. NULL is allowed with length 0 only.
///
/// # Safety
/// `ptr` is NULL or valid for `len` bytes of reading for `'a`.
pub unsafe fn bytes_arg<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(FfiError::new(
            wsb_result::WSB_ERR_NULL_ARGUMENT,
            format!("{what}: NULL pointer with length {len}"),
        ));
    }
    if len > MAX_ARG_LEN {
        return Err(FfiError::invalid(format!(
            "{what}: length {len} is more than any message may hold ({MAX_ARG_LEN})"
        )));
    }
    // SAFETY: non-NULL, at most 1 GiB, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A header array as `(name, value)` pairs. NULL is allowed with count 0 only.
///
/// # Safety
/// `ptr` is NULL or points to `count` headers whose strings follow the rules of [`str_arg`].
pub unsafe fn headers_arg<'a>(
    ptr: *const wsb_header,
    count: usize,
) -> Result<Vec<(&'a str, &'a str)>, FfiError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(FfiError::new(
            wsb_result::WSB_ERR_NULL_ARGUMENT,
            format!("headers: NULL pointer with header_count {count}"),
        ));
    }
    if count > MAX_HEADER_COUNT {
        return Err(FfiError::invalid(format!(
            "header_count: {count} is more than any frame may hold ({MAX_HEADER_COUNT})"
        )));
    }
    // SAFETY: non-NULL, bounded, and the caller guarantees `count` headers.
    let headers = unsafe { std::slice::from_raw_parts(ptr, count) };
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // SAFETY: the caller guarantees each header's strings.
            let name = unsafe { str_arg(h.name, h.name_len, &format!("headers[{i}].name"))? };
            // SAFETY: as above.
            let value = unsafe { str_arg(h.value, h.value_len, &format!("headers[{i}].value"))? };
            Ok((name, value))
        })
        .collect()
}

/// A required object pointer.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` for `'a`.
pub unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, FfiError> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// A required mutable object pointer.
///
/// # Safety
/// `ptr` is NULL or points to a live `T`, not aliased, for `'a`.
pub unsafe fn mut_arg<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, FfiError> {
    // SAFETY: forwarded from the caller.
    unsafe { ptr.as_mut() }.ok_or_else(|| FfiError::null(what))
}

/// A required out-pointer, checked before any work so that a NULL one fails early.
pub fn out_arg<T>(ptr: *mut T, what: &str) -> Result<OutPtr<T>, FfiError> {
    if ptr.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(OutPtr(ptr))
    }
}

/// A non-NULL out-pointer, written only on success.
pub struct OutPtr<T>(*mut T);

impl<T> OutPtr<T> {
    /// Writes the result.
    ///
    /// # Safety
    /// The pointer given to [`out_arg`] is valid for writing a `T`.
    pub unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked) and valid (caller).
        unsafe { self.0.write(value) }
    }
}

/// A millisecond count as a `Duration`.
pub fn millis(ms: u32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::from(ms))
}

/// Writes `value` through `ptr` unless it is NULL.
///
/// # Safety
/// `ptr` is NULL or valid for writing a `T`.
pub unsafe fn write_if<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL; valid per the caller.
        unsafe { ptr.write(value) };
    }
}
