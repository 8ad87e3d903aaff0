"""Publishing from Python, received by real clients: websockets (raw STOMP frames), raw TCP,
stomp.py over TCP and over WebSocket; user destinations; host subscriptions."""

from __future__ import annotations

import threading

import pytest

import wsbroker

from clients import (
    TcpClient,
    WsClient,
    stomppy_close,
    stomppy_connect,
    stomppy_subscribe,
    stomppy_tcp,
    stomppy_ws,
    unique,
    wait_until,
)


def test_publish_to_websockets_client(make_server) -> None:
    server = make_server(port=0)
    dest = f"/topic/{unique('news')}"
    with WsClient(server.url) as c:
        c.connect()
        c.subscribe(dest)
        server.publish(dest, "hello \u2713", headers={"content-type": "text/plain", "x-k": "v:1"})
        server.publish(dest, b"bin\x00ary\xff")
        m1 = c.expect("MESSAGE")
        assert m1.body.decode() == "hello \u2713"
        assert m1.headers["destination"] == dest
        assert m1.headers["x-k"] == "v:1"
        assert m1.headers["content-type"] == "text/plain"
        m2 = c.expect("MESSAGE")
        assert m2.body == b"bin\x00ary\xff"


def test_publish_to_raw_tcp_client(make_server) -> None:
    server = make_server(port=0, tcp_port=0)
    dest = f"/queue/{unique('jobs')}"
    with TcpClient("127.0.0.1", server.tcp_port) as c:
        c.connect()
        c.subscribe(dest)
        server.publish(dest, bytearray(b"job-1"))
        assert c.expect("MESSAGE").body == b"job-1"


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_publish_to_stomppy(make_server, transport: str) -> None:
    server = make_server(port=0, tcp_port=0)
    conn = stomppy_tcp("127.0.0.1", server.tcp_port) if transport == "tcp" else \
        stomppy_ws("127.0.0.1", server.port, server.path)
    dest = f"/topic/{unique('stomppy')}"
    try:
        col = stomppy_connect(conn)
        stomppy_subscribe(conn, col, dest)
        for i in range(5):
            server.publish(dest, f"msg {i}", headers={"x-index": str(i)})
        msgs = col.wait_messages(5)
        assert [m.body for m in msgs] == [f"msg {i}" for i in range(5)]
        assert [m.headers["x-index"] for m in msgs] == [str(i) for i in range(5)]
    finally:
        stomppy_close(conn)


def test_send_to_user(make_server) -> None:
    server = make_server(port=0, tcp_port=0)
    alice_ws = WsClient(server.url)
    alice_tcp = stomppy_tcp("127.0.0.1", server.tcp_port)
    bob = WsClient(server.url)
    try:
        alice_ws.connect(login="alice")
        bob.connect(login="bob")
        col = stomppy_connect(alice_tcp, login="alice")
        alice_ws.subscribe("/user/queue/reply")
        bob.subscribe("/user/queue/reply")
        stomppy_subscribe(alice_tcp, col, "/user/queue/reply")
        server.send_to_user("alice", "/queue/reply", "hi", headers={"x-to": "alice"})
        got = alice_ws.expect("MESSAGE")
        assert got.text == "hi" and got.headers["x-to"] == "alice"
        (m,) = col.wait_messages(1)
        assert m.body == "hi"
        # bob gets nothing: a receipt round trip proves his queue is empty
        server.publish("/user/bob/queue/reply", "for bob")
        assert bob.expect("MESSAGE").text == "for bob"
    finally:
        alice_ws.close()
        bob.close()
        stomppy_close(alice_tcp)


def test_host_subscription_poll_mode(make_server) -> None:
    server = make_server(port=0)
    seen = []
    sub = server.subscribe("/topic/host.**", seen.append)
    raw = server.subscribe("/topic/raw.*")
    assert sub.id and raw.id and sub.id != raw.id
    with WsClient(server.url) as c:
        c.connect()
        receipt = c.send_frame("/topic/host.a.b", "from client", headers={"x-c": "1"})
        assert receipt.command == "RECEIPT"
    server.publish("/topic/host.x", b"from host")
    server.publish("/topic/raw.y", b"raw")
    events = []
    wait_until(lambda: len(seen) == 2 and any(e.kind == wsbroker.EventKind.MESSAGE and e.subscription == raw.id
                                              for e in events),
               "host subscription messages", poll=lambda: events.extend(server.poll(timeout=0.05)))
    assert [m.body for m in seen] == [b"from client", b"from host"]
    assert seen[0].destination == "/topic/host.a.b" and seen[0].headers["x-c"] == "1"
    assert seen[0].subscription == sub.id and seen[0].kind == wsbroker.EventKind.MESSAGE
    sub.cancel()
    sub.cancel()  # idempotent
    server.publish("/topic/host.z", b"after cancel")
    server.publish("/topic/raw.y", b"marker")
    marker = []
    wait_until(lambda: marker, "marker",
               poll=lambda: marker.extend(e for e in server.poll(timeout=0.05) if getattr(e, "body", b"") == b"marker"))
    assert len(seen) == 2


def test_host_subscription_callback_mode_runs_on_a_callback_thread(make_server) -> None:
    server = make_server(port=0, mode="callback")
    threads = []
    got = threading.Event()

    def on_msg(m: wsbroker.Message) -> None:
        threads.append(threading.current_thread().name)
        got.set()

    server.subscribe("/topic/cb", on_msg)
    server.publish("/topic/cb", "x")
    assert got.wait(10), "the callback runs"
    assert threads[0] != threading.current_thread().name, "never on the publishing thread"
    got.clear()
    with WsClient(server.url) as c:
        c.connect()
        c.send_frame("/topic/cb", "from client")
    assert got.wait(10)
    assert len(threads) == 2 and threads[1] != threading.current_thread().name
    assert threads[0] == threads[1], "one subscription's messages run on one callback thread"
