"""Configuration keywords reach the library; overflow events; native logging; error mapping."""

from __future__ import annotations

import logging

import pytest
from websockets.exceptions import InvalidStatus

import wsbroker
from wsbroker import _errors, _ffi, _library

from clients import WsClient, wait_until


def test_app_prefixes_and_origins(make_server, pump_of) -> None:
    server = make_server(port=0, app_prefixes=["/game", "/chat/"], allowed_origins=["http://good.example"])
    pump_of(server)
    got = []
    server.app_handler("/game/**")(lambda m: got.append(m.destination))
    with pytest.raises(InvalidStatus):
        WsClient(server.url, origin="http://evil.example")
    with WsClient(server.url, origin="http://good.example") as c:
        c.connect()
        c.subscribe("/app/plain")  # "/app" is no longer an application prefix: a normal topic
        c.send_frame("/app/plain", "to subscribers")
        assert c.expect("MESSAGE").text == "to subscribers"
        c.send_frame("/game/move", "e4")
    wait_until(lambda: got == ["/game/move"], "app handler on a custom prefix")


def test_max_frame_size(make_server) -> None:
    server = make_server(port=0, max_frame_size=1024)
    with WsClient(server.url) as c:
        c.connect()
        c.send_frame("/topic/big", "x" * 4096, receipt=False)
        frames = c.wait_closed()
        assert any(f.command == "ERROR" for f in frames), frames


def test_heartbeat_offer(make_server) -> None:
    server = make_server(port=0, heartbeat_ms=(1500, 2500))
    with WsClient(server.url) as c:
        c.send(b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:1000,1000\n\n\0")
        connected = c.expect("CONNECTED")
        assert connected.headers["heart-beat"] == "1500,2500"


def test_event_queue_overflow(make_server) -> None:
    server = make_server(port=0, event_queue_capacity=4, overflow="drop_oldest")
    sub = server.subscribe("/topic/flood")
    for i in range(10):
        server.publish("/topic/flood", str(i))
    events = server.poll(timeout=1)
    assert isinstance(events[0], wsbroker.OverflowEvent) and events[0].dropped == 6
    assert [e.body for e in events[1:]] == [b"6", b"7", b"8", b"9"]
    assert all(e.subscription == sub.id for e in events[1:])


def test_other_limits_are_accepted() -> None:
    server = wsbroker.Server(port=0, max_connections=2, outbound_limits=(100, 1 << 20), max_queue_depth=10,
                             decision_timeout_ms=500, worker_threads=1)
    with server:
        assert server.running
    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Server(overflow="drop_everything")


def test_undecided_connects_are_refused_after_the_decision_timeout(make_server, pump_of) -> None:
    asked = []
    server = make_server(port=0, decision_timeout_ms=200, on_connect=lambda info: asked.append(info))  # None
    pump_of(server)
    with WsClient(server.url) as c:
        c.send(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
        frames = c.wait_closed()
    assert asked, "on_connect was asked"
    assert [f.command for f in frames] == ["ERROR"], frames


def test_native_log_forwarding(caplog) -> None:
    caplog.set_level(logging.INFO, logger="wsbroker.native")
    wsbroker.set_native_log_level(logging.INFO)
    try:
        with wsbroker.Server(port=0, worker_threads=1) as server:
            port = server.port
    finally:
        wsbroker.set_native_log_level(None)
    texts = [r.getMessage() for r in caplog.records if r.name.startswith("wsbroker.native")]
    assert any("listening" in t and str(port) in t for t in texts), texts


def test_result_codes_map_to_exception_classes() -> None:
    for code, cls in [(_ffi.WSB_ERR_PANIC, wsbroker.Panic), (_ffi.WSB_ERR_BACKPRESSURE, wsbroker.Backpressure),
                      (_ffi.WSB_ERR_IO, wsbroker.IoError), (_ffi.WSB_ERR_NULL_ARGUMENT, wsbroker.NullArgument),
                      (_ffi.WSB_ERR_INVALID_UTF8, wsbroker.InvalidUtf8),
                      (_ffi.WSB_ERR_CALLED_FROM_CALLBACK, wsbroker.CalledFromCallback), (4242, wsbroker.Error)]:
        err = _errors.error_for(code)
        assert type(err) is cls and err.code == code


@pytest.mark.skipif(not hasattr(_library.lib, "wsb_debug_panic"), reason="library built without ffi-test-panic")
def test_panic_becomes_exception() -> None:
    with pytest.raises(wsbroker.Panic) as info:
        _errors.check(_library.lib.wsb_debug_panic(), "debug panic")
    assert "deliberate panic" in str(info.value)


def test_sockjs_and_static_keywords(make_server, tmp_path) -> None:
    import json
    import urllib.request

    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    server = make_server(port=0, sockjs_path="/sj", sockjs_websocket=False, sockjs_cookie_needed=True,
                         sockjs_heartbeat_ms=1000, static_dir=str(tmp_path))
    base = f"http://127.0.0.1:{server.port}"
    with urllib.request.urlopen(f"{base}/sj/info", timeout=5) as r:
        info = json.loads(r.read())
    assert info["websocket"] is False and info["cookie_needed"] is True
    with urllib.request.urlopen(f"{base}/", timeout=5) as r:
        assert r.read() == b"<h1>hi</h1>"
    with pytest.raises(wsbroker.InvalidArgument):
        make_server(port=0, sockjs_path="no-slash")


def test_permessage_deflate_keywords(make_server) -> None:
    from websockets.sync.client import connect

    offer = {"compression": "deflate", "subprotocols": ["v12.stomp"]}
    on = make_server(port=0)
    with connect(f"ws://127.0.0.1:{on.port}/ws", **offer) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
    off = make_server(port=0, permessage_deflate=False)
    with connect(f"ws://127.0.0.1:{off.port}/ws", **offer) as ws:
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    with pytest.raises(wsbroker.InvalidArgument):
        make_server(port=0, deflate_level=10)
