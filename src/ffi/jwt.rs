//! `wsb_config_*jwt*`: token authentication's settings (see `AuthConfig`).

use std::ffi::c_char;
use std::time::Duration;

use super::config::{with_config, wsb_config};
use super::convert::{bytes_arg, opt_str_arg, str_arg};
use super::result::{FfiError, wsb_result};
use crate::auth::{AuthConfig, AuthKey, JwtAlgorithm};

/// `wsb_config_set_jwt_permissions`: the permissions of sessions without a token.
pub const WSB_JWT_ANONYMOUS: u32 = 0;
/// `wsb_config_set_jwt_permissions`: the permissions of tokens without `wsb` claims.
pub const WSB_JWT_TOKEN_DEFAULTS: u32 = 1;

fn auth_of(c: &mut wsb_config) -> Result<&mut AuthConfig, FfiError> {
    c.server.auth.as_mut().ok_or_else(|| {
        FfiError::invalid(
            "token authentication is off: set a key first (wsb_config_set_jwt_hmac_secret, \
             _public_key_pem or _jwks_file)",
        )
    })
}

/// Turns token authentication on with `key` (keeping the other settings when it was on
/// already), or off when `key` is `None`.
fn set_key(c: &mut wsb_config, key: Option<AuthKey>) {
    match (key, c.server.auth.as_mut()) {
        (None, _) => c.server.auth = None,
        (Some(key), Some(auth)) => auth.key = key,
        (Some(key), None) => c.server.auth = Some(AuthConfig::new(key)),
    }
}

/// A comma-separated list: items trimmed, empty ones skipped.
fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Token (JWT) authentication with this HMAC secret (the raw bytes); see
/// docs/authentication.md. Every other token setting keeps its value (defaults: algorithm
/// HS256, leeway 30 s, tokens optional, query parameter "access_token", refresh destination
/// "/wsb/refresh"). `secret` NULL turns token authentication off. Copied. An empty secret is
/// refused by `wsb_server_new`.
///
/// # Safety
/// `config` is NULL or a live config; `secret` is NULL or valid for `secret_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_hmac_secret(
    config: *mut wsb_config,
    secret: *const u8,
    secret_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            let key = if secret.is_null() && secret_len == 0 {
                None
            } else {
                // SAFETY: see the function's safety section.
                let bytes = unsafe { bytes_arg(secret, secret_len, "secret")? };
                Some(AuthKey::HmacSecret(bytes.to_vec()))
            };
            set_key(c, key);
            Ok(())
        })
    })
}

/// Token authentication with this public key in PEM: RSA, EC P-256/P-384 or Ed25519 (the
/// algorithm defaults to RS256, ES256/ES384 or EdDSA by its type). `pem` NULL turns token
/// authentication off. Copied; a key that does not parse is refused by `wsb_server_new`.
///
/// # Safety
/// `config` is NULL or a live config; `pem` is NULL or valid for `pem_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_public_key_pem(
    config: *mut wsb_config,
    pem: *const c_char,
    pem_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let pem = unsafe { opt_str_arg(pem, pem_len, "pem")? };
            set_key(c, pem.map(|p| AuthKey::PublicKeyPem(p.as_bytes().to_vec())));
            Ok(())
        })
    })
}

/// Token authentication with the keys of a JWKS file, read by `wsb_server_start` (which fails
/// when it cannot be read or parsed) and reloaded whenever it changes (checked every second).
/// `path` NULL turns token authentication off. Copied.
///
/// # Safety
/// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_jwks_file(
    config: *mut wsb_config,
    path: *const c_char,
    path_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let path = unsafe { opt_str_arg(path, path_len, "path")? };
            set_key(c, path.map(|p| AuthKey::JwksFile(p.into())));
            Ok(())
        })
    })
}

/// The algorithms tokens may be signed with, comma-separated ("RS256,PS256"); NULL or empty
/// infers one from the key (the default). `none` does not exist. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `names` is NULL or valid for `names_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_algorithms(
    config: *mut wsb_config,
    names: *const c_char,
    names_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let names = unsafe { opt_str_arg(names, names_len, "names")? };
            let algorithms = list(names)
                .iter()
                .map(|n| {
                    JwtAlgorithm::parse(n)
                        .ok_or_else(|| FfiError::invalid(format!("names: unknown algorithm '{n}'")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            auth_of(c)?.algorithms = algorithms;
            Ok(())
        })
    })
}

/// The claim checks: required issuer (`iss`) and audience (`aud`), NULL for none (the
/// default; without an audience, tokens that carry `aud` are refused), and the clock skew
/// allowed on `exp` and `nbf` in seconds (default 30). Copied. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `issuer` and `audience` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_claims(
    config: *mut wsb_config,
    issuer: *const c_char,
    issuer_len: usize,
    audience: *const c_char,
    audience_len: usize,
    leeway_s: u32,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let issuer = unsafe { opt_str_arg(issuer, issuer_len, "issuer")? };
            // SAFETY: see the function's safety section.
            let audience = unsafe { opt_str_arg(audience, audience_len, "audience")? };
            let auth = auth_of(c)?;
            auth.issuer = issuer.map(str::to_string);
            auth.audience = audience.map(str::to_string);
            auth.leeway = Duration::from_secs(u64::from(leeway_s));
            Ok(())
        })
    })
}

/// Where upgrade (and SockJS) requests carry a token besides `Authorization: Bearer`: a
/// cookie name (NULL: none, the default) and a query parameter (NULL or empty: none; default
/// "access_token"). Copied. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `cookie` and `query_param` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_sources(
    config: *mut wsb_config,
    cookie: *const c_char,
    cookie_len: usize,
    query_param: *const c_char,
    query_param_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let cookie = unsafe { opt_str_arg(cookie, cookie_len, "cookie")? };
            // SAFETY: see the function's safety section.
            let query = unsafe { opt_str_arg(query_param, query_param_len, "query_param")? };
            let auth = auth_of(c)?;
            auth.cookie = cookie.map(str::to_string);
            auth.query_param = query.unwrap_or_default().to_string();
            Ok(())
        })
    })
}

/// Whether clients without a token are refused (true) or connect anonymously with the
/// anonymous permissions (false, the default). Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_required(
    config: *mut wsb_config,
    required: bool,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            auth_of(c)?.required = required;
            Ok(())
        })
    })
}

/// Destination patterns (comma-separated; NULL or empty: none) that `who` may subscribe and
/// publish to: `WSB_JWT_ANONYMOUS` (sessions without a token; default none) or
/// `WSB_JWT_TOKEN_DEFAULTS` (tokens without `wsb.sub`/`wsb.pub` claims; default "**", all).
/// Copied. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `subscribe` and `publish` are NULL or valid for their
/// lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_permissions(
    config: *mut wsb_config,
    who: u32,
    subscribe: *const c_char,
    subscribe_len: usize,
    publish: *const c_char,
    publish_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let subscribe = list(unsafe { opt_str_arg(subscribe, subscribe_len, "subscribe")? });
            // SAFETY: see the function's safety section.
            let publish = list(unsafe { opt_str_arg(publish, publish_len, "publish")? });
            let auth = auth_of(c)?;
            let permissions = match who {
                WSB_JWT_ANONYMOUS => &mut auth.anonymous,
                WSB_JWT_TOKEN_DEFAULTS => &mut auth.token_defaults,
                other => {
                    return Err(FfiError::invalid(format!(
                        "who: {other} is neither WSB_JWT_ANONYMOUS nor WSB_JWT_TOKEN_DEFAULTS"
                    )));
                }
            };
            permissions.subscribe = subscribe;
            permissions.publish = publish;
            Ok(())
        })
    })
}

/// Private destinations (comma-separated patterns; NULL or empty: none): a SUBSCRIBE to one
/// needs a subscription token in an `x-sub-token` header (a JWT whose `sub` is the session's
/// user and whose `wsb.dest` claim is the destination), whatever the session's permissions;
/// when that token expires the subscription ends (a last MESSAGE on it carries
/// `x-unsubscribed:token expired`). Copied. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `patterns` is NULL or valid for `patterns_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_private(
    config: *mut wsb_config,
    patterns: *const c_char,
    patterns_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let patterns = list(unsafe { opt_str_arg(patterns, patterns_len, "patterns")? });
            auth_of(c)?.private = patterns;
            Ok(())
        })
    })
}

/// The destination a client SENDs a new token to (default "/wsb/refresh") and the largest
/// token accepted in bytes (0 keeps the default, 8192). Copied. Needs a key set first.
///
/// # Safety
/// `config` is NULL or a live config; `destination` is NULL or valid for `destination_len`
/// bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_jwt_refresh(
    config: *mut wsb_config,
    destination: *const c_char,
    destination_len: usize,
    max_token_size: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let destination = unsafe { str_arg(destination, destination_len, "destination")? };
            let auth = auth_of(c)?;
            auth.refresh_destination = destination.to_string();
            if max_token_size > 0 {
                auth.max_token_size = max_token_size;
            }
            Ok(())
        })
    })
}
