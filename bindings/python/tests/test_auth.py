"""Connect and subscribe decisions: on_connect / on_subscribe, and manual ones."""

from __future__ import annotations

import threading

import pytest

import wsbroker

from clients import TcpClient, WsClient, stomppy_tcp, wait_until

MODES = ["poll", "callback"]


def _start(make_server, pump_of, mode: str, **kwargs):
    server = make_server(port=0, tcp_port=0, mode=mode, **kwargs)
    if mode == "poll":
        pump_of(server)
    return server


def _error_of(client) -> "object":
    frames = client.wait_closed()
    errors = [f for f in frames if f.command == "ERROR"]
    assert errors, f"expected an ERROR frame, got {frames}"
    return errors[0]


@pytest.mark.parametrize("mode", MODES)
def test_on_connect_rejects_with_error_frame(make_server, pump_of, mode: str) -> None:
    seen = []

    def check(info: wsbroker.ConnectEvent):
        seen.append(info)
        return info.login == "guest" or wsbroker.Reject("bad credentials")

    server = _start(make_server, pump_of, mode, on_connect=check)
    with WsClient(server.url) as bad:
        bad.send(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:mallory\npasscode:nope\n\n\0")
        err = _error_of(bad)
        assert "bad credentials" in err.headers.get("message", "") + err.text
    with WsClient(server.url) as good:
        connected = good.connect(login="guest")
        assert connected.headers.get("user-name") == "guest"
    with TcpClient("127.0.0.1", server.tcp_port) as tcp:
        tcp.connect(login="guest")
    mallory, guest, tcp_guest = seen
    assert mallory.login == "mallory" and mallory.passcode == "nope"
    assert mallory.transport == wsbroker.Transport.WEBSOCKET and tcp_guest.transport == wsbroker.Transport.TCP
    assert mallory.remote_addr and mallory.remote_addr.startswith("127.0.0.1:")
    assert mallory.headers["host"] == "x"
    assert mallory.session != guest.session
    assert server.stats().connections_refused == 0  # a STOMP rejection is not a refused TCP connection


def test_stomppy_sees_rejection(make_server, pump_of) -> None:
    server = _start(make_server, pump_of, "poll", on_connect=lambda info: wsbroker.Reject("go away"))
    conn = stomppy_tcp("127.0.0.1", server.tcp_port)
    errors = []
    got = threading.Event()

    class L:
        def on_error(self, frame):
            errors.append(frame)
            got.set()

    conn.set_listener("l", L())
    try:
        conn.connect("guest", "guest", wait=False)
        assert got.wait(10), "stomp.py saw no ERROR frame"
        assert errors[0].headers.get("message") == "go away"
    finally:
        try:
            conn.disconnect()
        except Exception:  # noqa: BLE001
            pass


@pytest.mark.parametrize("mode", MODES)
def test_on_connect_names_the_user(make_server, pump_of, mode: str) -> None:
    server = _start(make_server, pump_of, mode,
                    on_connect=lambda info: wsbroker.Accept(None) if info.login == "anon" else f"user-{info.login}")
    with WsClient(server.url) as c, WsClient(server.url) as anon:
        assert c.connect(login="x").headers.get("user-name") == "user-x"
        assert "user-name" not in anon.connect(login="anon").headers
        c.subscribe("/user/queue/inbox")
        server.send_to_user("user-x", "/queue/inbox", "for x")
        assert c.expect("MESSAGE").text == "for x"


@pytest.mark.parametrize("mode", MODES)
def test_on_connect_exception_refuses_and_is_surfaced(make_server, pump_of, mode: str) -> None:
    def boom(info):
        raise KeyError("no such user table")

    server = _start(make_server, pump_of, mode, on_connect=boom)
    with WsClient(server.url) as c:
        c.send(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:a\npasscode:b\n\n\0")
        err = _error_of(c)
        assert "internal error" in err.headers.get("message", "")
    wait_until(lambda: server.callback_errors, "callback error")
    assert isinstance(server.callback_errors[0], KeyError)


def test_manual_decisions_in_poll_mode(make_server) -> None:
    server = make_server(port=0, defer_connect=True)
    results = {}

    def client(name: str) -> None:
        with WsClient(server.url) as c:
            c.send(f"CONNECT\naccept-version:1.2\nhost:x\nlogin:{name}\npasscode:p\n\n\0".encode())
            results[name] = c.recv_frame()

    threads = [threading.Thread(target=client, args=(n,)) for n in ("ok", "no")]
    for t in threads:
        t.start()
    connects = []
    wait_until(lambda: len(connects) == 2, "two CONNECT events",
               poll=lambda: connects.extend(e for e in server.poll(timeout=0.05)
                                            if isinstance(e, wsbroker.ConnectEvent)))
    for ev in connects:
        if ev.login == "ok":
            server.accept(ev.session, "okay-user")
        else:
            server.reject(ev.session, "manual no")
    for t in threads:
        t.join(15)
    assert results["ok"].command == "CONNECTED" and results["ok"].headers["user-name"] == "okay-user"
    assert results["no"].command == "ERROR" and results["no"].headers["message"] == "manual no"
    with pytest.raises(wsbroker.NotFound):
        server.accept(connects[0].session)  # already answered


@pytest.mark.parametrize("mode", MODES)
def test_on_subscribe(make_server, pump_of, mode: str) -> None:
    def authorize(ev: wsbroker.SubscribeEvent):
        if ev.destination.startswith("/topic/secret"):
            return wsbroker.Reject(f"no access to {ev.destination}")
        return ev.user == "guest"

    server = _start(make_server, pump_of, mode, on_subscribe=authorize)
    with WsClient(server.url) as c:
        c.connect()
        c.subscribe("/topic/public")
        server.publish("/topic/public", "ok")
        assert c.expect("MESSAGE").text == "ok"
        c.send(b"SUBSCRIBE\ndestination:/topic/secret\nid:s2\n\n\0")
        err = _error_of(c)
        assert "no access to /topic/secret" in err.headers.get("message", "")
