"""Cluster mode from Python: the cluster keywords, ClusterStats, BackplaneEvent, and two nodes
on a private NATS server.

The two-node test starts its own ``nats-server -a 127.0.0.1 -p PORT`` on a free port
(``WSBROKER_NATS_SERVER``, else ``nats-server`` on PATH, else /usr/sbin/nats-server) and stops
it afterwards; it never uses a NATS or Redis of the machine. Without the binary that test is
skipped, except with CI=true, where it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Iterator, List

import pytest

import wsbroker
from wsbroker._config import SETTING_NAMES

from clients import TIMEOUT, TcpClient, unique, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_nats() -> str:
    return "nats://127.0.0.1:%d" % _free_port()


def _backplane_events(server: wsbroker.Server, seen: List[wsbroker.BackplaneEvent]) -> None:
    """One poll step: the BackplaneEvents among the events go to ``seen``."""
    seen.extend(e for e in server.poll(timeout=0.05) if isinstance(e, wsbroker.BackplaneEvent))


# ---------------------------------------------------------------------------------------------
# Settings


def test_both_engines_are_refused_with_a_clear_error() -> None:
    with pytest.raises(wsbroker.InvalidArgument) as info:
        wsbroker.Config(cluster_redis="redis://127.0.0.1:1", cluster_nats="nats://127.0.0.1:1")
    assert "cluster_redis and cluster_nats are both set" in str(info.value)
    cfg = wsbroker.Config(cluster_redis="redis://127.0.0.1:1")
    with pytest.raises(wsbroker.InvalidArgument) as info:
        cfg.cluster_nats = "nats://127.0.0.1:1"
    assert str(info.value).startswith("cluster_nats:") and "one engine" in str(info.value)
    assert cfg.cluster_nats is None and cfg.cluster_redis == "redis://127.0.0.1:1"  # rolled back
    cfg.close()


def test_cluster_settings_need_an_engine() -> None:
    for name, value in (("node_id", "node-a"), ("cluster_prefix", "app")):
        with pytest.raises(wsbroker.InvalidArgument) as info:
            wsbroker.Config(**{name: value})
        assert str(info.value).startswith(f"{name}: cluster mode is off"), info.value
    cfg = wsbroker.Config()
    with pytest.raises(wsbroker.InvalidArgument):
        cfg.node_id = "node-a"
    assert cfg.node_id is None and cfg.cluster_prefix == "wsbroker"
    with pytest.raises(TypeError):
        cfg.cluster_nats = 4222  # a URL is a str
    cfg.close()


def test_cluster_settings_round_trip_in_any_order() -> None:
    # keywords apply in declaration order: the engine first, whatever the call's order
    cfg = wsbroker.Config(cluster_prefix="app-1", node_id="node-a", cluster_nats="nats://127.0.0.1:1")
    assert (cfg.cluster_nats, cfg.node_id, cfg.cluster_prefix) == ("nats://127.0.0.1:1", "node-a", "app-1")
    assert cfg.settings()["node_id"] == "node-a"
    cfg.cluster_nats = "nats://127.0.0.1:2"  # C resets the other cluster settings: they are re-issued
    assert (cfg.node_id, cfg.cluster_prefix) == ("node-a", "app-1")
    cfg.cluster_nats = None  # cluster mode off forgets them, as C does
    assert cfg.node_id is None and cfg.cluster_prefix == "wsbroker"
    cfg.cluster_redis = "redis://user:secret@127.0.0.1:1/0"
    cfg.cluster_prefix = "app-2"
    assert "secret" not in repr(cfg) and "cluster_prefix='app-2'" in repr(cfg)
    cfg.close()
    assert SETTING_NAMES.index("cluster_nats") < SETTING_NAMES.index("node_id")
    assert SETTING_NAMES.index("cluster_redis") < SETTING_NAMES.index("cluster_prefix")


def test_settings_reissued_after_the_engine_reach_the_server(make_server) -> None:
    # A bad prefix is refused when the server is created; that it is refused after the engine
    # was set again proves the binding re-issued it (C had reset it to "wsbroker").
    cfg = wsbroker.Config(cluster_nats=_unreachable_nats(), cluster_prefix="not valid!", worker_threads=1)
    cfg.cluster_nats = _unreachable_nats()
    server = wsbroker.Server(cfg)
    try:
        with pytest.raises(wsbroker.InvalidConfig) as info:
            server.start()
    finally:
        server.close()
    assert "prefix" in str(info.value)
    with pytest.raises(wsbroker.InvalidConfig) as info:
        make_server(port=0, cluster_nats=_unreachable_nats(), node_id="")
    assert "node id" in str(info.value)
    with pytest.raises(wsbroker.InvalidConfig):
        make_server(port=0, cluster_redis=" ")


def test_cluster_stats_is_none_on_a_server_that_is_not_a_cluster_node(make_server) -> None:
    idle = make_server(start=False, port=0)
    with pytest.raises(wsbroker.NotRunning):
        idle.cluster_stats()  # like stats(): valid once started
    server = make_server(port=0)
    assert server.cluster_stats() is None
    assert isinstance(server.stats(), wsbroker.Stats)


def test_an_unreachable_engine_is_a_backplane_event(make_server) -> None:
    # Redis on a port nobody listens on (never the machine's 6379): refused at once, so the
    # outage is reported at once (a NATS link waits 5 s for its first connection).
    url = "redis://127.0.0.1:%d" % _free_port()
    server = make_server(port=0, cluster_redis=url, cluster_prefix=unique("py"), node_id="lonely")
    stats = server.cluster_stats()
    assert isinstance(stats, wsbroker.ClusterStats) and not stats.available
    seen: List[wsbroker.BackplaneEvent] = []
    wait_until(lambda: bool(seen), "a BackplaneEvent", poll=lambda: _backplane_events(server, seen))
    event = seen[0]
    assert event.kind == wsbroker.EventKind.BACKPLANE_UNAVAILABLE and not event.available
    assert event.reason, event
    assert server.cluster_stats().engine_subscriptions == 0
    # local clients are still served; a publication the other nodes cannot get is counted
    server.publish("/topic/alone", "nobody else hears this")
    wait_until(lambda: server.cluster_stats().dropped >= 1, "the dropped publication to be counted")
    assert not server.cluster_stats().available


# ---------------------------------------------------------------------------------------------
# Two nodes on a private NATS server


def _nats_binary() -> str:
    override = os.environ.get("WSBROKER_NATS_SERVER")
    candidates = [override] if override else [shutil.which("nats-server"), "/usr/sbin/nats-server"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    why = (f"WSBROKER_NATS_SERVER={override} is not an executable file" if override
           else "nats-server not found (install it on PATH, or set WSBROKER_NATS_SERVER)")
    if os.environ.get("CI") in ("true", "1"):
        pytest.fail(why + " (CI=true: cluster tests must run)")
    pytest.skip(why)


@pytest.fixture
def nats_url(tmp_path) -> Iterator[str]:
    """A private nats-server on a free port of 127.0.0.1, stopped after the test."""
    binary = _nats_binary()
    port = _free_port()
    log_path = tmp_path / "nats-server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nats-server exited with {proc.returncode}: {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"nats-server not listening on {port} after {TIMEOUT}s: "
                                         f"{log_path.read_text()}") from None
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_publication_crosses_nodes_through_nats(make_server, nats_url) -> None:
    prefix = unique("py-cluster")
    a = make_server(port=0, tcp_port=0, cluster_nats=nats_url, cluster_prefix=prefix, node_id="py-a")
    b = make_server(port=0, tcp_port=0, cluster_nats=nats_url, cluster_prefix=prefix, node_id="py-b")
    seen_a: List[wsbroker.BackplaneEvent] = []
    seen_b: List[wsbroker.BackplaneEvent] = []

    def both_available() -> bool:
        return all(s.cluster_stats().available for s in (a, b)) and bool(seen_a) and bool(seen_b)

    def poll_both() -> None:
        _backplane_events(a, seen_a)
        _backplane_events(b, seen_b)

    wait_until(both_available, "both nodes on NATS (and their BackplaneEvents)", poll=poll_both)
    for seen in (seen_a, seen_b):
        assert seen[-1].kind == wsbroker.EventKind.BACKPLANE_AVAILABLE and seen[-1].available, seen
        assert seen[-1].reason is None

    topic = "/topic/" + unique("x")
    with TcpClient("127.0.0.1", a.tcp_port) as client:
        client.connect()
        client.subscribe(topic)
        # the engine confirmed node A's subscription: a publication made now anywhere reaches it
        wait_until(lambda: a.cluster_stats().engine_subscriptions >= 1, "node A's engine subscription")
        b.publish(topic, "from node B", headers={"x-origin": "b"})
        message = client.expect("MESSAGE")
        assert message.text == "from node B"
        assert message.headers["destination"] == topic and message.headers["x-origin"] == "b"
        wait_until(lambda: b.cluster_stats().published >= 1 and a.cluster_stats().received >= 1,
                   "the publication counted on both nodes")
    stats_b = b.cluster_stats()
    assert stats_b.dropped == 0 and stats_b.reconnects == 0, stats_b
