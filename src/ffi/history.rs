//! `wsb_history`: a page of a destination's retained messages read by the host
//! (`wsb_server_history`), and publishing with the assigned history offset.

use std::ffi::c_char;

use bytes::Bytes;

use super::convert::{bytes_arg, headers_arg, out_arg, ref_arg, str_arg, write_if};
use super::events::{CStrings, OwnedEvent, wsb_event, wsb_header};
use super::result::{FfiError, wsb_result};
use super::server::{with_server, wsb_server};
use crate::broker::HistoryPage;

/// Retained messages of one destination, oldest first, with the stream's position. Made by
/// `wsb_server_history`, freed with `wsb_history_free`; read-only, so any thread may read it
/// while no thread frees it. Every pointer it hands out stays valid until it is freed.
pub struct wsb_history {
    page: HistoryPage,
    /// One MESSAGE event per retained message (bodies borrow from `page`).
    messages: Vec<OwnedEvent>,
    /// Storage of the epoch's NUL-terminated copy.
    _epoch: CStrings,
    epoch_view: (*const c_char, usize),
}

/// Reads the retained history of `destination`: up to `limit` messages after offset `since`
/// (0: from the oldest retained), oldest first. `*out_history` is written on success; free it
/// with `wsb_history_free`. `WSB_ERR_NOT_FOUND` when no history rule covers `destination`
/// (`wsb_config_add_history`), `WSB_ERR_INVALID_ARGUMENT` for a pattern.
///
/// # Safety
/// `server` is NULL or a live server; `destination` is NULL or valid for `destination_len`
/// bytes; `out_history` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_history(
    server: *mut wsb_server,
    destination: *const c_char,
    destination_len: usize,
    since: u64,
    limit: usize,
    out_history: *mut *mut wsb_history,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_history, "out_history")?;
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            let page = s.server.history(destination, since, limit)?;
            let messages = page
                .messages
                .iter()
                .map(|(_, message)| OwnedEvent::message(0, message))
                .collect();
            let mut epoch = CStrings::default();
            let epoch_view = epoch.string(&page.position.epoch);
            let history = Box::new(wsb_history {
                page,
                messages,
                _epoch: epoch,
                epoch_view,
            });
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(Box::into_raw(history)) };
            Ok(())
        })
    })
}

/// Frees a history page (NULL is ignored). Every pointer read from it becomes invalid.
///
/// # Safety
/// `history` is NULL or a page from `wsb_server_history` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_history_free(history: *mut wsb_history) {
    ffi_guard!({
        if !history.is_null() {
            // SAFETY: from `wsb_server_history` (Box::into_raw), freed once (caller).
            drop(unsafe { Box::from_raw(history) });
        }
    });
}

/// The stream's position when the page was read: its epoch (NUL-terminated, valid until the
/// page is freed), the last offset it assigned (0 before the first message), and whether the
/// page holds every message after the asked offset (`*out_complete` false when some fell out
/// of retention or the epoch is not the one the offset came from). Any out-pointer may be NULL.
///
/// # Safety
/// `history` is NULL or a live page; each out-pointer is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_history_position(
    history: *const wsb_history,
    out_epoch: *mut *const c_char,
    out_epoch_len: *mut usize,
    out_last_offset: *mut u64,
    out_complete: *mut bool,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let history = unsafe { ref_arg(history, "history")? };
        let (epoch, epoch_len) = history.epoch_view;
        // SAFETY: each is NULL (skipped) or writable (caller).
        unsafe {
            write_if(out_epoch, epoch);
            write_if(out_epoch_len, epoch_len);
            write_if(out_last_offset, history.page.position.offset);
            write_if(out_complete, history.page.complete);
        }
        Ok(())
    })
}

/// How many messages the page holds (0 for NULL).
///
/// # Safety
/// `history` is NULL or a live page.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_history_len(history: *const wsb_history) -> usize {
    ffi_guard!({
        // SAFETY: NULL or live (caller).
        unsafe { history.as_ref() }.map_or(0, |h| h.messages.len())
    })
}

/// Message `index` (0 = oldest) of the page: its offset and a `WSB_EVENT_MESSAGE` event
/// (`destination`, `headers` including "x-offset" and "x-epoch", `body`; `subscription` 0),
/// valid until the page is freed. `WSB_ERR_INVALID_ARGUMENT` past the end.
///
/// # Safety
/// `history` is NULL or a live page; the out-pointers are NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_history_message(
    history: *const wsb_history,
    index: usize,
    out_offset: *mut u64,
    out_message: *mut *const wsb_event,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let history = unsafe { ref_arg(history, "history")? };
        let offset_out = out_arg(out_offset, "out_offset")?;
        let message_out = out_arg(out_message, "out_message")?;
        let (Some(event), Some((offset, _))) =
            (history.messages.get(index), history.page.messages.get(index))
        else {
            return Err(FfiError::invalid(format!(
                "index {index} is past the page's {} messages",
                history.messages.len()
            )));
        };
        // SAFETY: checked non-NULL; the caller guarantees they are writable.
        unsafe {
            offset_out.write(*offset);
            message_out.write(event.raw());
        }
        Ok(())
    })
}

/// Publishes like `wsb_server_publish` (`timeout_ms` 0: never blocks) or
/// `wsb_server_publish_wait` (`timeout_ms` above 0), and writes where the message went in
/// its destination's history to `*out_offset` (0 when no history rule covers the destination
/// or it is a queue) and how many client subscriptions it was queued to to `*out_delivered`.
/// Either out-pointer may be NULL.
///
/// # Safety
/// As `wsb_server_publish`; each out-pointer is NULL or valid for writing.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments, reason = "the C calling convention of wsb_server_publish")]
pub unsafe extern "C" fn wsb_server_publish_recorded(
    server: *mut wsb_server,
    destination: *const c_char,
    destination_len: usize,
    headers: *const wsb_header,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    timeout_ms: u32,
    out_offset: *mut u64,
    out_delivered: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            // SAFETY: see the function's safety section.
            let headers = unsafe { headers_arg(headers, header_count)? };
            // SAFETY: see the function's safety section.
            let body = unsafe { bytes_arg(body, body_len, "body")? };
            let body = Bytes::copy_from_slice(body);
            let published = if timeout_ms == 0 {
                s.server.publish_recorded(destination, &headers, body)?
            } else {
                let timeout = std::time::Duration::from_millis(u64::from(timeout_ms));
                s.server.publish_wait(destination, &headers, body, timeout)?
            };
            // SAFETY: each is NULL (skipped) or writable (caller).
            unsafe {
                write_if(out_offset, published.offset.unwrap_or(0));
                write_if(out_delivered, published.delivered);
            }
            Ok(())
        })
    })
}
