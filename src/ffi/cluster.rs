//! `wsb_config_*cluster*` and `wsb_server_cluster_stats`: cluster mode (see `ClusterConfig`).

use std::ffi::c_char;

use super::config::{with_config, wsb_config};
use super::convert::{opt_str_arg, out_arg, str_arg};
use super::result::{FfiError, FfiResult, wsb_result};
use super::server::{with_server, wsb_server};
use crate::cluster::{ClusterConfig, ClusterEngine, ClusterStats};

fn cluster_of(c: &mut wsb_config) -> Result<&mut ClusterConfig, FfiError> {
    c.server.cluster.as_mut().ok_or_else(|| {
        FfiError::invalid(
            "cluster mode is off: call wsb_config_set_cluster_redis or wsb_config_set_cluster_nats first",
        )
    })
}

/// The shared body of the two engine setters.
///
/// # Safety
/// As `wsb_config_set_cluster_redis`.
unsafe fn set_engine(
    config: *mut wsb_config,
    url: *const c_char,
    url_len: usize,
    engine: fn(String) -> ClusterEngine,
) -> FfiResult {
    with_config(config, |c| {
        // SAFETY: see the function's safety section.
        let url = unsafe { opt_str_arg(url, url_len, "url")? };
        c.server.cluster = url.map(|url| ClusterConfig::new(engine(url.to_string())));
        Ok(())
    })
}

/// Cluster mode on Redis: this node shares its broadcast destinations, `/user` destinations and
/// host publishes with every node on the same Redis (`redis://[user:password@]host[:port][/db]`,
/// `rediss://` for TLS; several servers comma-separated, e.g. a Redis Cluster's nodes; or
/// `redis+sentinel://host:port[,host:port...]/SERVICE[/db]`, the master Redis Sentinel names)
/// through one pub/sub and one command connection, and fans out locally.
/// Resets the other cluster settings to their defaults. `url` NULL turns cluster mode off.
/// Copied. See docs/cluster.md.
///
/// # Safety
/// `config` is NULL or a live config; `url` is NULL or valid for `url_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_cluster_redis(
    config: *mut wsb_config,
    url: *const c_char,
    url_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe { set_engine(config, url, url_len, ClusterEngine::Redis) }
    })
}

/// Cluster mode on NATS core subjects (`nats://host[:port]`, several servers comma-separated),
/// through one connection; otherwise as `wsb_config_set_cluster_redis`.
///
/// # Safety
/// `config` is NULL or a live config; `url` is NULL or valid for `url_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_cluster_nats(
    config: *mut wsb_config,
    url: *const c_char,
    url_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        // SAFETY: see the function's safety section.
        unsafe { set_engine(config, url, url_len, ClusterEngine::Nats) }
    })
}

/// Cluster mode: this node's name in logs and metrics (default: host name and process id).
/// Copied.
///
/// # Safety
/// `config` is NULL or a live config; `node_id` is valid for `node_id_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_cluster_node_id(
    config: *mut wsb_config,
    node_id: *const c_char,
    node_id_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let node_id = unsafe { str_arg(node_id, node_id_len, "node_id")? };
            cluster_of(c)?.node_id = node_id.to_string();
            Ok(())
        })
    })
}

/// Cluster mode: the prefix of every engine channel or subject (default "wsbroker"; letters,
/// digits, '-' and '_'). Clusters sharing one engine keep apart with different prefixes.
/// Copied.
///
/// # Safety
/// `config` is NULL or a live config; `prefix` is valid for `prefix_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_config_set_cluster_prefix(
    config: *mut wsb_config,
    prefix: *const c_char,
    prefix_len: usize,
) -> wsb_result {
    ffi_guard!(result {
        with_config(config, |c| {
            // SAFETY: see the function's safety section.
            let prefix = unsafe { str_arg(prefix, prefix_len, "prefix")? };
            cluster_of(c)?.prefix = prefix.to_string();
            Ok(())
        })
    })
}

/// A snapshot of the cluster figures: whether the engine is reachable, the engine
/// subscriptions it confirmed, publications handed on, received and dropped, reconnections.
/// `WSB_ERR_NOT_FOUND` when the server is not a cluster node.
///
/// # Safety
/// `server` is NULL or a live server; `out_stats` is NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn wsb_server_cluster_stats(
    server: *const wsb_server,
    out_stats: *mut ClusterStats,
) -> wsb_result {
    ffi_guard!(result {
        with_server(server, |s| {
            let out = out_arg(out_stats, "out_stats")?;
            let stats = s.server.cluster_stats().ok_or_else(|| {
                FfiError::new(wsb_result::WSB_ERR_NOT_FOUND, "the server is not a cluster node")
            })?;
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { out.write(stats) };
            Ok(())
        })
    })
}
