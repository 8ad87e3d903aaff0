"""Application handlers (SEND to /app/...), replies to the sending session, refusals."""

from __future__ import annotations

import json
import threading

import pytest

import wsbroker

from clients import (WsClient, frame, stomppy_close, stomppy_connect, stomppy_subscribe, stomppy_tcp, unique,
                     wait_until)

MODES = ["poll", "callback"]


def _maybe_pump(server, pump_of) -> None:
    if server.mode == "poll":
        pump_of(server)


@pytest.mark.parametrize("mode", MODES)
def test_app_handler_replies_to_session(make_server, pump_of, mode: str) -> None:
    server = make_server(port=0, mode=mode, start=False)
    handled = []

    @server.app_handler("/app/echo")
    def echo(msg: wsbroker.Message) -> None:
        handled.append((msg.destination, msg.text, msg.headers.get("x-n"), msg.session, msg.user,
                        threading.current_thread().name))
        server.send_to_session(msg.session, "/user/queue/echo", msg.body.upper(), headers={"x-n": msg.headers["x-n"]})

    server.start()
    _maybe_pump(server, pump_of)
    with WsClient(server.url) as a, WsClient(server.url) as b:
        a.connect(login="alice")
        b.connect(login="bob")
        a.subscribe("/user/queue/echo")
        b.subscribe("/user/queue/echo")
        # callback mode replies before the SEND's RECEIPT, poll mode after: take both
        a.send_frame("/app/echo", "hello", headers={"x-n": "1"}, receipt=False)
        reply = a.expect("MESSAGE")
        assert reply.body == b"HELLO" and reply.headers["x-n"] == "1"
        # only the sender's session got it
        b.send_frame("/app/echo", "bob", headers={"x-n": "2"}, receipt=False)
        assert b.expect("MESSAGE").body == b"BOB"
    dest, text, n, session, user, thread = handled[0]
    assert (dest, text, n, user) == ("/app/echo", "hello", "1", "alice")
    assert session > 0
    if mode == "callback":
        assert thread.startswith("Dummy"), thread  # a library (foreign) thread
    else:
        assert thread == "test-pump"


@pytest.mark.parametrize("mode", MODES)
def test_chat_room_flow(make_server, pump_of, mode: str) -> None:
    server = make_server(port=0, tcp_port=0, mode=mode)

    @server.app_handler("/app/chat")
    def on_chat(msg: wsbroker.Message) -> None:
        server.publish(f"/topic/chat/room/{msg.json()['chatRoomId']}", msg.body,
                       headers={"content-type": "application/json"})

    _maybe_pump(server, pump_of)
    conn = stomppy_tcp("127.0.0.1", server.tcp_port)
    try:
        col = stomppy_connect(conn)
        stomppy_subscribe(conn, col, "/topic/chat/room/7")
        with WsClient(server.url) as sender:
            sender.connect()
            for room, text in [(7, "hi room 7"), (8, "other room"), (7, "again")]:
                body = json.dumps({"chatRoomId": room, "text": text})
                assert sender.send_frame("/app/chat", body).command == "RECEIPT"
        msgs = col.wait_messages(2)
        assert [json.loads(m.body)["text"] for m in msgs] == ["hi room 7", "again"]
    finally:
        stomppy_close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_refusals_reach_the_client_as_error(make_server, pump_of, mode: str) -> None:
    server = make_server(port=0, mode=mode)

    @server.app_handler("/app/strict/**")
    def strict(msg: wsbroker.Message):
        if msg.destination.endswith("/reject"):
            return wsbroker.Reject("not allowed here")
        if msg.destination.endswith("/raise-reject"):
            raise wsbroker.Reject("raised refusal")
        raise RuntimeError("handler bug")

    pump = pump_of(server) if mode == "poll" else None
    for suffix, text in [("reject", "not allowed here"), ("raise-reject", "raised refusal"), ("bug", "handler bug")]:
        with WsClient(server.url) as c:
            c.connect()
            c.send_frame(f"/app/strict/{suffix}", "x", receipt=False)
            frames = c.wait_closed()
            errors = [f for f in frames if f.command == "ERROR"]
            assert errors, frames
            assert text in errors[0].headers.get("message", "") + errors[0].text, errors[0]
    # only the bug is collected as a callback error; Reject is a normal refusal
    wait_until(lambda: len(server.callback_errors) == 1, "callback error recorded")
    assert isinstance(server.callback_errors[0], RuntimeError)
    if pump is not None:
        # re-raised from the next poll() (the pump's)
        wait_until(lambda: pump.errors, "CallbackError from poll()")
        assert isinstance(pump.errors[0].errors[0], RuntimeError)
        server.close()
    else:
        with pytest.raises(wsbroker.CallbackError) as info:
            server.close()
        assert isinstance(info.value.errors[0], RuntimeError)
        assert info.value.__cause__ is info.value.errors[0]


def test_poll_mode_app_messages_without_pump_and_replacement(make_server) -> None:
    server = make_server(port=0)
    calls = []
    server.app_handler("/app/x")(lambda m: calls.append(("first", m.text)))
    server.app_handler("/app/x")(lambda m: calls.append(("second", m.text)))  # replaces
    server.app_handler("/app/*")(lambda m: calls.append(("wild", m.text)))
    with WsClient(server.url) as c:
        c.connect()
        c.send_frame("/app/x", "1")
        c.send_frame("/app/y", "2")
    events = []
    wait_until(lambda: len(calls) == 2, "handlers", poll=lambda: events.extend(server.poll(timeout=0.05)))
    assert calls == [("second", "1"), ("wild", "2")]
    apps = [e for e in events if e.kind == wsbroker.EventKind.APP_MESSAGE]
    assert [e.destination for e in apps] == ["/app/x", "/app/y"]
    server.remove_app("/app/*")
    with pytest.raises(wsbroker.NotFound):
        server.remove_app("/app/*")
    with WsClient(server.url) as c:
        c.connect()
        c.send_frame("/app/y", "3", receipt=False)
        frames = c.wait_closed()
        assert any(f.command == "ERROR" and "no application handler" in f.headers.get("message", "") for f in frames)


def test_callback_mode_app_handler_many_messages(make_server) -> None:
    server = make_server(port=0, mode="callback")
    count = [0]
    lock = threading.Lock()

    @server.app_handler("/app/count")
    def counter(msg):
        with lock:
            count[0] += 1

    dest = unique("c")
    with WsClient(server.url) as c:
        c.connect()
        for i in range(200):
            c.send_frame("/app/count", str(i), receipt=(i == 199))
    assert count[0] == 200, dest


def test_callback_mode_blocked_handler_stalls_no_other_client(make_server) -> None:
    """Issue 21: a handler that blocks (here until released) runs on a callback thread, not on
    the network threads, so other clients keep exchanging messages meanwhile."""
    server = make_server(port=0, mode="callback", worker_threads=1)
    entered = threading.Event()
    release = threading.Event()

    @server.app_handler("/app/slow")
    def slow(msg):
        entered.set()
        assert release.wait(30), "never released"
        with open(f"/proc/self/task/{threading.get_native_id()}/comm") as comm:
            assert comm.read().strip() == "wsbroker-callba"  # "wsbroker-callback", cut to 15

    dest = "/topic/" + unique("chat")
    with WsClient(server.url) as blocked, WsClient(server.url) as reader, WsClient(server.url) as writer:
        blocked.connect()
        reader.connect()
        writer.connect()
        reader.subscribe(dest)
        blocked.send(frame("SEND", {"destination": "/app/slow", "receipt": "slow"}, "x"))
        assert entered.wait(5)
        for i in range(300):
            assert writer.send_frame(dest, f"m{i}").command == "RECEIPT"
        bodies = [reader.expect("MESSAGE").body for _ in range(300)]
        assert bodies[-1] == b"m299"
        release.set()
        assert blocked.wait_receipt("slow").command == "RECEIPT"
