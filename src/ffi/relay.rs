//! `wsb_config_*relay*`: relay mode's settings (see `RelayConfig`).

use std::ffi::c_char;

use super::config::{with_config, wsb_config};
use super::convert::{millis, opt_str_arg, str_arg};
use super::result::{FfiError, FfiResult, wsb_result};
use crate::relay::RelayConfig;

fn relay_of(c: &mut wsb_config) -> Result<&mut RelayConfig, FfiError> {
    c.server
        .relay
        .as_mut()
        .ok_or_else(|| FfiError::invalid("relay mode is off: call wsb_config_set_relay first"))
}

/// The shared body of the two credential setters: checks and copies `login` and `passcode`
/// into the pair of fields `fields` picks.
///
/// # Safety
/// As `wsb_config_set_relay_credentials`.
unsafe fn set_credentials(
    config: *mut wsb_config,
    login: *const c_char,
    login_len: usize,
    passcode: *const c_char,
    passcode_len: usize,
    fields: impl FnOnce(&mut RelayConfig) -> (&mut String, &mut String),
) -> FfiResult {
    with_config(config, |c| {
        // SAFETY (both): see the function's safety section.
        // SAFETY: see the function's safety section.
        let login = unsafe { str_arg(login, login_len, "login")? };
        // SAFETY: see the function's safety section.
        let passcode = unsafe { str_arg(passcode, passcode_len, "passcode")? };
        let (login_field, passcode_field) = fields(relay_of(c)?);
        *login_field = login.to_string();
        *passcode_field = passcode.to_string();
        Ok(())
    })
}

/// Relay mode: destinations under the relayed prefixes (default /topic, /queue, /exchange,
/// /amq/queue, /temp-queue, /reply-queue) live on the external STOMP broker at `broker`
/// ("host:port", e.g. RabbitMQ's "127.0.0.1:61613"); every client session gets its own
/// broker connection, host publishes and subscriptions share one. Resets the other relay
/// settings to their defaults (login "guest"). `broker` NULL turns relay mode off. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `broker` is NULL or valid for `broker_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay(
    config: *mut wsb_config,
    broker: *const c_char,
    broker_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let broker = unsafe { opt_str_arg(broker, broker_len, "broker")? };
            c.server.relay = broker.map(RelayConfig::new);
            Ok(())
        })
    })
}

/// Relay mode: login and passcode of the client sessions' broker connections (default
/// "guest"/"guest"). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `login` and `passcode` are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay_credentials(
    config: *mut wsb_config,
    login: *const c_char,
    login_len: usize,
    passcode: *const c_char,
    passcode_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe {
            set_credentials(config, login, login_len, passcode, passcode_len, |relay| {
                (&mut relay.login, &mut relay.passcode)
            })
        }
    })
}

/// Relay mode: login and passcode of the shared system connection (default "guest"/"guest").
/// Copied.
///
/// # Safety
/// `config` is NULL or a live config; `login` and `passcode` are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay_system_credentials(
    config: *mut wsb_config,
    login: *const c_char,
    login_len: usize,
    passcode: *const c_char,
    passcode_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe {
            set_credentials(config, login, login_len, passcode, passcode_len, |relay| {
                (&mut relay.system_login, &mut relay.system_passcode)
            })
        }
    })
}

/// Relay mode: the `host` header of broker CONNECTs (RabbitMQ: the virtual host). NULL (the
/// default) sends none: the broker's default virtual host. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `vhost` is NULL or valid for `vhost_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay_virtual_host(
    config: *mut wsb_config,
    vhost: *const c_char,
    vhost_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let vhost = unsafe { opt_str_arg(vhost, vhost_len, "vhost")? };
            relay_of(c)?.virtual_host = vhost.map(str::to_string);
            Ok(())
        })
    })
}

/// Relay mode: heart-beats on broker connections, in ms, that wsbroker sends and wants to
/// receive (default 10000 each; 0 disables).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay_heartbeat(
    config: *mut wsb_config,
    send_ms: u32,
    receive_ms: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let relay = relay_of(c)?;
            relay.heartbeat_send = millis(send_ms);
            relay.heartbeat_receive = millis(receive_ms);
            Ok(())
        })
    })
}

/// Relay mode: removes every relayed prefix (add the wanted ones with
/// `wsb_config_add_relay_prefix`; starting a server with none is an invalid configuration).
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_clear_relay_prefixes(config: *mut wsb_config) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            relay_of(c)?.prefixes.clear();
            Ok(())
        })
    })
}

/// Relay mode: adds a relayed destination prefix (e.g. "/topic"). Copied.
///
/// # Safety
/// `config` is NULL or a live config; `prefix` is NULL or valid for `prefix_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_add_relay_prefix(
    config: *mut wsb_config,
    prefix: *const c_char,
    prefix_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let prefix = unsafe { str_arg(prefix, prefix_len, "prefix")? };
            relay_of(c)?.prefixes.push(prefix.to_string());
            Ok(())
        })
    })
}

/// Relay mode: session restore (default off). When on, a client session whose broker
/// connection drops gets a new one with its subscriptions re-made instead of being closed;
/// topic messages published in the gap are lost, queue messages wait in the broker.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_relay_session_restore(
    config: *mut wsb_config,
    enabled: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            relay_of(c)?.session_restore = enabled;
            Ok(())
        })
    })
}
