//! The C ABI's cluster-mode settings, figures and events: the node settings need an engine,
//! the configuration is validated by `wsb_server_new`, `wsb_server_cluster_stats` is
//! NOT_FOUND on a server that is not a node, and an unreachable engine becomes a
//! BACKPLANE_UNAVAILABLE event with its reason in `body`. No engine is needed (the cluster
//! tests against Redis and NATS are in tests/relay/cluster.rs).

use std::ptr;
use std::time::Duration;

use crate::relay::{event_body, new_config, s};
use wsbroker::ffi::*;

const OK: wsb_result = wsb_result::WSB_OK;

#[test]
fn cluster_setters_need_an_engine_and_bad_values_fail_at_server_new() {
    let config = new_config();
    let (node, node_len) = s("node-1");
    let (prefix, prefix_len) = s("game_eu");
    let mut server = ptr::null_mut();
    // SAFETY: a live config and valid strings throughout.
    unsafe {
        assert_eq!(
            wsb_config_set_cluster_node_id(config, node, node_len),
            wsb_result::WSB_ERR_INVALID_ARGUMENT,
            "cluster mode is off"
        );
        let (url, url_len) = s("redis://127.0.0.1:1/");
        assert_eq!(wsb_config_set_cluster_redis(config, url, url_len), OK);
        assert_eq!(wsb_config_set_cluster_node_id(config, node, node_len), OK);
        assert_eq!(
            wsb_config_set_cluster_prefix(config, prefix, prefix_len),
            OK
        );
        assert_eq!(wsb_server_new(config, &mut server), OK);
        assert_eq!(wsb_server_free(server), OK);
        // A prefix that could not name an engine channel is refused at wsb_server_new.
        let (bad, bad_len) = s("a b");
        assert_eq!(wsb_config_set_cluster_prefix(config, bad, bad_len), OK);
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        // Setting the engine again resets the other settings: valid again.
        let (nats, nats_len) = s("nats://127.0.0.1:1");
        assert_eq!(wsb_config_set_cluster_nats(config, nats, nats_len), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        assert_eq!(wsb_server_free(server), OK);
        // NULL turns cluster mode off.
        assert_eq!(wsb_config_set_cluster_nats(config, ptr::null(), 0), OK);
        assert_eq!(
            wsb_config_set_cluster_prefix(config, prefix, prefix_len),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert_eq!(wsb_server_new(config, &mut server), OK);
        let mut stats = wsb_cluster_stats::default();
        assert_eq!(
            wsb_server_cluster_stats(server, &mut stats),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(wsb_server_free(server), OK);
        wsb_config_free(config);
    }
    assert_eq!(
        wsb_struct_size(WSB_STRUCT_CLUSTER_STATS),
        std::mem::size_of::<wsb_cluster_stats>()
    );
}

#[test]
fn an_unreachable_engine_is_a_backplane_unavailable_event() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let config = new_config();
    let url = format!("redis://127.0.0.1:{port}/");
    let (url_ptr, url_len) = s(&url);
    let mut server = ptr::null_mut();
    // SAFETY: live config and server, valid strings and buffers throughout.
    unsafe {
        assert_eq!(wsb_config_set_cluster_redis(config, url_ptr, url_len), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
        assert_eq!(wsb_server_start(server), OK);
        let reason = event_body(
            server,
            WSB_EVENT_BACKPLANE_UNAVAILABLE,
            Duration::from_secs(10),
        );
        assert!(!reason.is_empty());
        let mut stats = wsb_cluster_stats::default();
        assert_eq!(wsb_server_cluster_stats(server, &mut stats), OK);
        assert!(!stats.available);
        assert_eq!(stats.engine_subscriptions, 0);
        // Local traffic goes on: a host publish is served, and counted as not handed on.
        let (dest, dest_len) = s("/topic/x");
        assert_eq!(
            wsb_server_publish(server, dest, dest_len, ptr::null(), 0, ptr::null(), 0),
            OK
        );
        assert_eq!(wsb_server_cluster_stats(server, &mut stats), OK);
        assert_eq!(stats.dropped, 1);
        assert_eq!(wsb_server_stop(server, 1000), OK);
        assert_eq!(wsb_server_free(server), OK);
    }
}
