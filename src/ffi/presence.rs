//! `wsb_presence`: the presence members of one destination, read by the host
//! (`wsb_server_presence`), and the presence settings of a config.

use std::ffi::c_char;

use super::config::{with_config, wsb_config};
use super::convert::{out_arg, ref_arg, str_arg};
use super::events::CStrings;
use super::result::{FfiError, wsb_result};
use super::server::{with_server, wsb_server};

/// Makes every subscriber of the destinations matching `pattern` (e.g. "/topic/room/*") a
/// presence member (listed by `wsb_server_presence`, announced to the subscribers that
/// listen). A SUBSCRIBE with "x-presence:true" is a member of any topic destination and also
/// gets a snapshot MESSAGE ("x-presence:snapshot", a JSON array of members) and a MESSAGE for
/// every later join and leave ("x-presence:join" / "leave", "x-presence-session",
/// "x-presence-user", "x-presence-count"; a join's body is the member's "x-presence-info").
/// Copied.
///
/// # Safety
/// `config` is NULL or a live config; `pattern` is NULL or valid for `pattern_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_add_presence(
    config: *mut wsb_config,
    pattern: *const c_char,
    pattern_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let pattern = unsafe { str_arg(pattern, pattern_len, "pattern")? };
            if !pattern.starts_with('/') {
                return Err(FfiError::invalid(format!(
                    "presence pattern {pattern:?} must start with '/'"
                )));
            }
            c.server.broker.presence.push(pattern.to_string());
            Ok(())
        })
    })
}

/// Above `event_limit` members (default 100) a destination sends no join/leave MESSAGEs and
/// no snapshots (its count is still kept); an "x-presence-info" longer than `max_info` bytes
/// (default 256) is refused with an ERROR.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_presence_limits(
    config: *mut wsb_config,
    event_limit: usize,
    max_info: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            c.server.broker.presence_event_limit = event_limit;
            c.server.broker.presence_max_info = max_info;
            Ok(())
        })
    })
}

/// One member as C sees it (strings NUL-terminated, NULL with length 0 when absent).
struct Member {
    session: u64,
    user: (*const c_char, usize),
    info: (*const c_char, usize),
}

/// The presence members of one destination when it was read, in the order they joined. Made
/// by `wsb_server_presence`, freed with `wsb_presence_free`; read-only, and every pointer it
/// hands out stays valid until it is freed.
pub struct wsb_presence {
    members: Vec<Member>,
    /// Storage of the members' strings.
    _strings: CStrings,
}

/// Reads the presence members of `destination` (none: a page with count 0).
/// `*out_presence` is written on success; free it with `wsb_presence_free`. A pattern is
/// `WSB_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `server` is NULL or a live server; `destination` is NULL or valid for `destination_len`
/// bytes; `out_presence` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_presence(
    server: *mut wsb_server,
    destination: *const c_char,
    destination_len: usize,
    out_presence: *mut *mut wsb_presence,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_presence, "out_presence")?;
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            let presence = s.server.presence(destination)?;
            let mut strings = CStrings::default();
            let members = presence
                .members
                .iter()
                .map(|m| Member {
                    session: m.session,
                    user: strings.opt_string(m.user.as_deref()),
                    info: strings.opt_string(m.info.as_deref()),
                })
                .collect();
            let page = Box::new(wsb_presence {
                members,
                _strings: strings,
            });
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(Box::into_raw(page)) };
            Ok(())
        })
    })
}

/// Frees a presence page (NULL is ignored).
///
/// # Safety
/// `presence` is NULL or a page from `wsb_server_presence` not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_presence_free(presence: *mut wsb_presence) {
    ffi_guard!({
        if !presence.is_null() {
            // SAFETY: from `wsb_server_presence` (Box::into_raw), freed once (caller).
            drop(unsafe { Box::from_raw(presence) });
        }
    });
}

/// How many members the page holds (0 for NULL).
///
/// # Safety
/// `presence` is NULL or a live page.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_presence_count(presence: *const wsb_presence) -> usize {
    ffi_guard!({
        // SAFETY: NULL or live (caller).
        unsafe { presence.as_ref() }.map_or(0, |p| p.members.len())
    })
}

/// Member `index` (0 = the earliest to join): its session id, user and client info
/// ("x-presence-info"), each string NULL with length 0 when absent. Any out-pointer may be
/// NULL. `WSB_ERR_INVALID_ARGUMENT` past the end.
///
/// # Safety
/// `presence` is NULL or a live page; each out-pointer is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_presence_member(
    presence: *const wsb_presence,
    index: usize,
    out_session: *mut u64,
    out_user: *mut *const c_char,
    out_user_len: *mut usize,
    out_info: *mut *const c_char,
    out_info_len: *mut usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        let presence = unsafe { ref_arg(presence, "presence")? };
        let member = presence.members.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "index {index} is past the page's {} members",
                presence.members.len()
            ))
        })?;
        // SAFETY: each is NULL (skipped) or writable (caller).
        unsafe {
            super::convert::write_if(out_session, member.session);
            super::convert::write_if(out_user, member.user.0);
            super::convert::write_if(out_user_len, member.user.1);
            super::convert::write_if(out_info, member.info.0);
            super::convert::write_if(out_info_len, member.info.1);
        }
        Ok(())
    })
}
