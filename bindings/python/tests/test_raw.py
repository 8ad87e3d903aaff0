"""Raw WebSocket mode from Python: endpoints, events, topics, send/publish, user data,
buffered bytes, closes and stale ids, with `websockets` as the client."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, List

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

import wsbroker

TIMEOUT = 10.0


def url(server: wsbroker.Server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def wait_event(server: wsbroker.Server, seen: List[Any], pick: Callable[[Any], bool]) -> Any:
    """Polls until an event matching `pick` arrives (others are kept in `seen`)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for i, ev in enumerate(seen):
            if pick(ev):
                return seen.pop(i)
        seen.extend(server.poll(timeout=0.1))
    raise AssertionError(f"no matching event; seen {seen!r}")


def test_broadcast_and_echo_endpoints(make_server: Any) -> None:
    server = make_server(start=False)
    server.add_raw_endpoint("/b", "broadcast")
    server.add_raw_endpoint("/e", "echo")
    server.start()
    with ws_connect(url(server, "/b")) as a, ws_connect(url(server, "/b")) as b, \
            ws_connect(url(server, "/e")) as e:
        a.send("hello")
        assert b.recv(timeout=TIMEOUT) == "hello"
        b.send(b"\x00\x01")
        assert a.recv(timeout=TIMEOUT) == b"\x00\x01"
        e.send("echo me")
        assert e.recv(timeout=TIMEOUT) == "echo me"
        e.send(b"bin")
        assert e.recv(timeout=TIMEOUT) == b"bin"


def test_host_endpoint_events_and_api(make_server: Any) -> None:
    server = make_server()
    server.add_raw_endpoint("/raw")  # after start is fine
    seen: List[Any] = []
    with ws_connect(url(server, "/raw?user=7")) as a, ws_connect(url(server, "/raw")) as b:
        open_a = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawOpenEvent) and ev.query)
        open_b = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawOpenEvent))
        assert open_a.kind == wsbroker.EventKind.RAW_OPEN
        assert open_a.endpoint == "/raw" and open_a.query == "user=7"
        assert "sec-websocket-key" in open_a.headers
        assert open_a.remote_addr and open_a.remote_addr.startswith("127.0.0.1:")

        a.send("text in")
        a.send(b"\xffbinary in")
        m1 = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawMessageEvent))
        m2 = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawMessageEvent))
        assert (m1.conn, m1.text, m1.binary) == (open_a.conn, "text in", False)
        assert (m2.data, m2.binary) == (b"\xffbinary in", True)

        assert server.raw_subscribe(open_a.conn, "news") is True
        assert server.raw_subscribe(open_a.conn, "news") is False
        assert server.raw_subscribe(open_b.conn, "news") is True
        assert server.raw_publish("news", "for both") == 2
        assert a.recv(timeout=TIMEOUT) == "for both"
        assert b.recv(timeout=TIMEOUT) == "for both"
        assert server.raw_unsubscribe(open_b.conn, "news") is True
        assert server.raw_publish("news", b"\x01", binary=True) == 1
        assert a.recv(timeout=TIMEOUT) == b"\x01"
        server.raw_send(open_b.conn, "just b")
        server.raw_send(open_b.conn, "as binary", binary=True)
        assert b.recv(timeout=TIMEOUT) == "just b"
        assert b.recv(timeout=TIMEOUT) == b"as binary"

        server.raw_set_user_data(open_b.conn, 2**64 - 1)
        assert server.raw_user_data(open_b.conn) == 2**64 - 1
        assert server.raw_user_data(open_a.conn) == 0
        assert server.raw_buffered_bytes(open_a.conn) >= 0

        server.raw_close(open_b.conn, 4002, "bye")
        with pytest.raises(ConnectionClosed) as closed:
            b.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "bye")
        ev = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawCloseEvent))
        assert (ev.conn, ev.code, ev.reason) == (open_b.conn, 4002, "bye")

        for call in (
            lambda: server.raw_send(open_b.conn, "x"),
            lambda: server.raw_subscribe(open_b.conn, "t"),
            lambda: server.raw_user_data(open_b.conn),
            lambda: server.raw_buffered_bytes(open_b.conn),
            lambda: server.raw_close(open_b.conn),
        ):
            with pytest.raises(wsbroker.NotFound):
                call()
        with pytest.raises(wsbroker.InvalidArgument):
            server.raw_close(open_a.conn, 1006)
        with pytest.raises(wsbroker.InvalidArgument):
            server.raw_send(open_a.conn, b"\xff", binary=False)

        a.close(code=4100, reason="client done")
        ev = wait_event(server, seen, lambda ev: isinstance(ev, wsbroker.RawCloseEvent))
        assert (ev.conn, ev.code, ev.reason) == (open_a.conn, 4100, "client done")


def test_endpoint_arguments_are_checked(make_server: Any) -> None:
    server = make_server(mode="callback", on_event=lambda ev: None, start=False)
    with pytest.raises(wsbroker.InvalidArgument):
        server.add_raw_endpoint("/x", "mirror")
    with pytest.raises(wsbroker.InvalidArgument):
        server.add_raw_endpoint("/x", "echo", slow_consumer_policy="wait")
    server.add_raw_endpoint("/ws", "echo")  # checked when the C server registers it
    with pytest.raises(wsbroker.InvalidArgument):
        server.start()


def test_callback_mode_host_echo_with_subprotocol(make_server: Any) -> None:
    holder: List[wsbroker.Server] = []
    opened = threading.Event()

    def on_event(ev: Any) -> None:
        server = holder[0]
        if isinstance(ev, wsbroker.RawOpenEvent):
            server.raw_send(ev.conn, f"welcome {ev.conn}")
            opened.set()
        elif isinstance(ev, wsbroker.RawMessageEvent):
            server.raw_send(ev.conn, ev.data.upper(), binary=ev.binary)

    server = make_server(mode="callback", on_event=on_event, start=False)
    holder.append(server)
    server.add_raw_endpoint("/chat", subprotocols=["chat.v1"], slow_consumer_policy="drop_oldest",
                            max_message_size=1024)
    server.start()
    with ws_connect(url(server, "/chat"), subprotocols=["chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v1"
        assert ws.recv(timeout=TIMEOUT).startswith("welcome ")
        ws.send("shout")
        assert ws.recv(timeout=TIMEOUT) == "SHOUT"
        ws.send(b"x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert opened.is_set()


def test_permessage_deflate_on_raw_endpoints_with_websockets_defaults(make_server: Any) -> None:
    """`websockets` offers permessage-deflate by default: raw endpoints accept it, inflate what
    clients send (fragmented or not) and compress what they send back, for 1 B ... 16 MiB."""
    server = make_server(start=False, max_frame_size=17 << 20)
    server.add_raw_endpoint("/e", "echo")
    server.add_raw_endpoint("/b", "broadcast")
    server.add_raw_endpoint("/small", "echo", max_message_size=64 * 1024)
    server.start()
    with ws_connect(url(server, "/e"), max_size=None) as e:
        agreed = e.response.headers.get("Sec-WebSocket-Extensions", "")
        assert agreed.startswith("permessage-deflate"), agreed
        for size in (1, 255, 256, 4096, 65_536, 1 << 20, 16 << 20):
            text = ("wsbroker " * (size // 9 + 1))[:size]
            e.send(text)
            assert e.recv(timeout=TIMEOUT) == text, size
            data = bytes(range(256)) * (size // 256) + bytes(size % 256)
            e.send(data)
            assert e.recv(timeout=TIMEOUT) == data, size
        # Fragmented messages (each fragment compressed as part of one message).
        e.send(["frag ", "mented ", "text " * 1000])
        assert e.recv(timeout=TIMEOUT) == "frag mented " + "text " * 1000
        e.send([b"\x00" * 70_000, b"\x01" * 70_000])
        assert e.recv(timeout=TIMEOUT) == b"\x00" * 70_000 + b"\x01" * 70_000
    # Outbound is compressed: 1 MiB of one letter costs the server far fewer wire bytes.
    before = server.stats().bytes_out
    with ws_connect(url(server, "/e"), max_size=None) as e:
        e.send("a" * (1 << 20))
        assert e.recv(timeout=TIMEOUT) == "a" * (1 << 20)
    assert server.stats().bytes_out - before < 64 * 1024
    # A compressed fan-out reaches every receiver.
    with ws_connect(url(server, "/b")) as a, ws_connect(url(server, "/b")) as b, \
            ws_connect(url(server, "/b"), compression=None) as plain:
        a.send("x" * 10_000)
        assert b.recv(timeout=TIMEOUT) == "x" * 10_000
        assert plain.recv(timeout=TIMEOUT) == "x" * 10_000
    # A message that inflates past the endpoint's limit closes with 1009.
    with ws_connect(url(server, "/small"), max_size=None) as s:
        s.send(b"\x00" * (1 << 20))
        with pytest.raises(ConnectionClosed) as closed:
            s.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_sockjs_raw_endpoint_over_xhr(make_server: Any) -> None:
    """`sockjs=True` serves a raw endpoint over SockJS too: an xhr session echoes each message."""
    import urllib.request

    server = make_server(start=False)
    server.add_raw_endpoint("/echo", "echo", sockjs={"response_limit": 4096})
    with pytest.raises(TypeError):
        server.add_raw_endpoint("/x", "echo", sockjs={"websockets": True})
    server.start()
    base = f"http://127.0.0.1:{server.port}/echo/000/py{int(time.time() * 1000)}"

    def post(path: str, body: bytes = b"") -> str:
        request = urllib.request.Request(base + path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read().decode()

    assert post("/xhr") == "o\n"
    post("/xhr_send", b'["hi","there"]')
    assert post("/xhr") == 'a["hi","there"]\n'
