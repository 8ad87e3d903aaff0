"""Every integer that crosses into C is range-checked first (issue 21, item 8).

ctypes truncates silently: without the checks ``send_to_session(2**64 + 5, ...)`` reaches
session 5 and ``-1`` becomes ``UINT64_MAX``. Out-of-range values raise
``wsbroker.OutOfRange`` (both ``ValueError`` and ``OverflowError``) before any C call;
non-integers raise ``TypeError``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Callable, List

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

import wsbroker
from wsbroker._config import SETTING_NAMES

from clients import TIMEOUT, WsClient

U64 = 1 << 64


def _connected_session(server: wsbroker.Server, client: WsClient) -> int:
    """Connects ``client`` through a deferred decision, so the test learns its session id."""
    client.send(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:ann\nheart-beat:0,0\n\n\0")
    events = server.poll(timeout=TIMEOUT)
    assert events and isinstance(events[0], wsbroker.ConnectEvent), events
    server.accept(events[0].session, "ann")
    client.expect("CONNECTED")
    return events[0].session


def test_out_of_range_is_both_value_and_overflow_error() -> None:
    assert issubclass(wsbroker.OutOfRange, ValueError)
    assert issubclass(wsbroker.OutOfRange, OverflowError)
    assert issubclass(wsbroker.OutOfRange, wsbroker.InvalidArgument)


def test_a_wrapped_session_id_does_not_reach_the_session(make_server) -> None:
    server = make_server(port=0, defer_connect=True)
    with WsClient(server.url) as c:
        session = _connected_session(server, c)
        c.subscribe("/topic/inbox")
        for wrapped in (session + U64, session - U64, -1, U64 - 1 + U64):
            with pytest.raises(OverflowError) as info:
                server.send_to_session(wrapped, "/topic/inbox", f"wrapped {wrapped}")
            assert "uint64_t" in str(info.value)
        with pytest.raises(ValueError):
            server.disconnect(session + U64)
        with pytest.raises(TypeError):
            server.send_to_session(float(session), "/topic/inbox", "float id")
        with pytest.raises(TypeError):
            server.send_to_session(True, "/topic/inbox", "bool id")
        server.send_to_session(session, "/topic/inbox", "the real one")
        # The first message to arrive is the real one: none of the refused calls sent anything.
        assert c.expect("MESSAGE").text == "the real one"
        server.disconnect(session, "bye")  # the in-range id still works
        frames = c.wait_closed()
        assert [f.command for f in frames] == ["ERROR"], frames


def test_every_session_argument_is_checked(make_server) -> None:
    server = make_server(port=0)
    calls: List[Callable[[int], Any]] = [
        lambda s: server.send_to_session(s, "/queue/x", "x"),
        lambda s: server.disconnect(s),
        lambda s: server.accept(s),
        lambda s: server.reject(s),
        lambda s: server.answer_subscribe(s, True),
    ]
    for call in calls:
        for bad in (U64, U64 + 5, -1, -U64):
            with pytest.raises(wsbroker.OutOfRange):
                call(bad)
        with pytest.raises(wsbroker.NotFound):  # in range: C answers (no such session)
            call(U64 - 1)


def test_raw_mode_integers(make_server) -> None:
    server = make_server(start=False)
    server.add_raw_endpoint("/raw")
    with pytest.raises(wsbroker.OutOfRange):
        server.add_raw_endpoint("/big", max_message_size=-1)
    server.start()
    seen: List[Any] = []
    with ws_connect(f"ws://127.0.0.1:{server.port}/raw") as ws:
        while not any(isinstance(e, wsbroker.RawOpenEvent) for e in seen):
            batch = server.poll(timeout=TIMEOUT)
            assert batch, "no RawOpenEvent"
            seen.extend(batch)
        conn = next(e.conn for e in seen if isinstance(e, wsbroker.RawOpenEvent))
        for call in (
            lambda c: server.raw_send(c, "x"),
            lambda c: server.raw_subscribe(c, "t"),
            lambda c: server.raw_unsubscribe(c, "t"),
            lambda c: server.raw_user_data(c),
            lambda c: server.raw_buffered_bytes(c),
            lambda c: server.raw_set_user_data(c, 1),
            lambda c: server.raw_close(c),
        ):
            for bad in (conn + U64, -1):
                with pytest.raises(wsbroker.OutOfRange):
                    call(bad)
        for value in (-1, U64):
            with pytest.raises(wsbroker.OutOfRange):
                server.raw_set_user_data(conn, value)
        assert server.raw_user_data(conn) == 0
        # 2**16 + 1000 would be close code 1000 once truncated to uint16_t: refused, still open
        with pytest.raises(wsbroker.OutOfRange):
            server.raw_close(conn, (1 << 16) + 1000)
        server.raw_send(conn, "still open")
        assert ws.recv(timeout=TIMEOUT) == "still open"
        server.raw_close(conn, 4000, "done")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000


def test_durations_and_counts_of_poll_and_close(make_server) -> None:
    server = make_server(port=0)
    for bad in (-1, -0.001, math.nan, math.inf, 5_000_000.0):
        with pytest.raises(wsbroker.OutOfRange):
            server.poll(timeout=bad)
    with pytest.raises(TypeError):
        server.poll(timeout="1")
    for bad in (U64, -1):
        with pytest.raises(wsbroker.OutOfRange):
            server.poll(max_events=bad)
    with pytest.raises(wsbroker.InvalidArgument):
        server.poll(max_events=0)
    assert server.poll(timeout=0.001) == []  # a short positive wait is still a wait, and fine
    with pytest.raises(wsbroker.OutOfRange):
        server.close(grace=-1)
    assert server.running  # the refused close did nothing

    async def first_event() -> None:
        async for _ in server.aevents(max_events=U64):
            pass

    with pytest.raises(wsbroker.OutOfRange):
        asyncio.run(first_event())
    server.close(grace=0)
    assert server.closed


#: Config settings passed to C as uint32_t, which also refuse 2**32 (size_t ones take it).
_U32_SETTINGS = {"handshake_timeout_ms", "connect_timeout_ms", "idle_timeout_ms", "ping_interval_ms",
                 "decision_timeout_ms", "worker_threads", "sockjs_heartbeat_ms", "sockjs_disconnect_delay_ms",
                 "deflate_level", "heartbeat_ms", "relay_heartbeat_ms"}


def test_every_integer_setting_is_range_checked() -> None:
    cfg = wsbroker.Config(worker_threads=1)
    checked = []
    for name in SETTING_NAMES:
        default = getattr(cfg, name)
        pair = isinstance(default, tuple) and len(default) == 2 and all(isinstance(v, int) for v in default)
        if not pair and (isinstance(default, bool) or not isinstance(default, int)):
            continue  # not an integer setting
        bad_values = [-1, U64]
        if name in _U32_SETTINGS:
            bad_values.append(1 << 32)
        if name == "port":
            bad_values.append(1 << 16)
        for bad in bad_values:
            with pytest.raises(wsbroker.OutOfRange):
                setattr(cfg, name, (0, bad) if pair else bad)
            assert getattr(cfg, name) == default, f"{name} changed by a refused value"
        checked.append(name)
    assert {"port", "max_frame_size", "worker_threads", "heartbeat_ms", "decision_timeout_ms",
            "outbound_limits", "deflate_level", "relay_heartbeat_ms", "max_queue_depth"} <= set(checked), checked
    with pytest.raises(wsbroker.OutOfRange):
        cfg.tcp_port = 70000
    with pytest.raises(TypeError):
        cfg.max_frame_size = 1.5
    with pytest.raises(TypeError):
        cfg.worker_threads = True
    cfg.max_frame_size = (1 << 30)  # in range: accepted
    with wsbroker.Server(cfg) as server:  # nothing refused reached the C config
        assert server.port > 0


def test_reject_status_is_never_truncated(make_server) -> None:
    """2**16 + 401 would be 401 as a uint16_t; as documented for anything outside 4xx it
    refuses with 403."""
    from test_upgrade_auth import _status_of_refused

    server = make_server(port=0, mode="callback",
                         on_upgrade=lambda req: wsbroker.Reject("x", status=(1 << 16) + 401))
    assert _status_of_refused(server.url) == 403


def test_native_log_level_must_be_a_level() -> None:
    with pytest.raises(TypeError):
        wsbroker.set_native_log_level("debug")  # type: ignore[arg-type]
