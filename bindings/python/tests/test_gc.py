"""Garbage collection and close ordering: servers dropped without close, callbacks released,
close from the wrong place, close while other threads use the server."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

import wsbroker
from wsbroker import _trampolines

from clients import WsClient, wait_until


def _port_is_free(port: int) -> bool:
    try:
        wsbroker.Server(port=port, worker_threads=1).start().close()
        return True
    except wsbroker.AddressInUse:
        return False


def test_drop_without_close_frees_the_server() -> None:
    slots = _trampolines.slot_count()
    server = wsbroker.Server(port=0, worker_threads=1).start()
    server.app_handler("/app/x")(lambda m: None)
    port = server.port
    ref = weakref.ref(server)
    del server
    gc.collect()
    assert ref() is None
    assert _port_is_free(port)
    assert _trampolines.slot_count() == slots


def test_drop_cycle_through_callbacks_without_close() -> None:
    """Callables that close over the server form a cycle; the slot table must not keep it."""
    slots = _trampolines.slot_count()
    for mode in ("poll", "callback"):
        server = wsbroker.Server(port=0, mode=mode, worker_threads=1,
                                 on_connect=lambda info: server.running)  # noqa: F821 - refers to itself
        server.app_handler("/app/echo")(lambda m: server.send_to_session(m.session, "/queue/x", m.body))
        server.subscribe("/topic/**", lambda m: server.stats())
        server.start()
        with WsClient(server.url) as c:
            if mode == "poll":
                c.send(b"CONNECT\naccept-version:1.2\nhost:x\nlogin:a\npasscode:b\n\n\0")
                events = server.poll(timeout=5)
                assert events and events[0].kind == wsbroker.EventKind.CONNECT
                c.expect("CONNECTED")
            else:
                c.connect()
            c.send_frame("/topic/a", "x")
        port = server.port
        ref = weakref.ref(server)
        del server
        gc.collect()
        assert ref() is None, mode
        assert _port_is_free(port), mode
    assert _trampolines.slot_count() == slots


def test_callables_are_released_after_close() -> None:
    class Handler:
        def __call__(self, *args):
            return True

    for mode in ("poll", "callback"):
        on_connect, app, sub_cb, on_event = Handler(), Handler(), Handler(), Handler()
        refs = [weakref.ref(x) for x in (on_connect, app, sub_cb, on_event)]
        server = wsbroker.Server(port=0, mode=mode, worker_threads=1, on_connect=on_connect, on_event=on_event)
        server.handle_app("/app/a", app)
        sub = server.subscribe("/topic/a", sub_cb)
        server.start()
        del on_connect, app, sub_cb, on_event
        gc.collect()
        assert all(r() is not None for r in refs), "kept alive while the server can call them"
        server.close()
        del sub
        gc.collect()
        assert [r() for r in refs] == [None] * 4, mode


def test_close_inside_a_callback_raises(make_server) -> None:
    server = make_server(port=0, mode="callback")
    outcome = []

    def on_msg(m):
        try:
            server.close()
        except wsbroker.CalledFromCallback as e:
            outcome.append(e)

    server.subscribe("/topic/x", on_msg)
    server.publish("/topic/x", "x")
    wait_until(lambda: outcome, "the callback")
    assert isinstance(outcome[0], wsbroker.CalledFromCallback)
    assert server.running
    server.close()
    assert server.closed


def test_callback_errors_surface_from_poll_and_close(make_server) -> None:
    server = make_server(port=0)

    def bad(m):
        raise ValueError(f"bad message {m.text}")

    server.subscribe("/topic/bad", bad)
    server.publish("/topic/bad", "1")
    events = server.poll(timeout=5)  # the handler runs (and fails) here; events still returned
    assert len(events) == 1
    with pytest.raises(wsbroker.CallbackError) as info:
        server.poll()
    assert isinstance(info.value.errors[0], ValueError)
    assert server.poll() == []  # raised once
    server.publish("/topic/bad", "2")
    server.poll(timeout=5)
    with pytest.raises(wsbroker.CallbackError):
        server.close()
    server.close()  # idempotent, errors already raised
    assert [str(e) for e in server.callback_errors] == ["bad message 1", "bad message 2"]


def test_close_while_other_threads_publish_and_poll() -> None:
    server = wsbroker.Server(port=0, worker_threads=2).start()
    server.subscribe("/topic/busy")
    stop = threading.Event()
    outcomes = []

    def publisher() -> None:
        try:
            while not stop.is_set():
                server.publish("/topic/busy", "x")
        except wsbroker.NotRunning:
            outcomes.append("not running")
        except BaseException as e:  # noqa: BLE001
            outcomes.append(e)

    def poller() -> None:
        try:
            while not server.closed:
                server.poll(timeout=0.5)
            outcomes.append("poll ended")
        except wsbroker.NotRunning:
            outcomes.append("poll ended")
        except BaseException as e:  # noqa: BLE001
            outcomes.append(e)

    threads = [threading.Thread(target=publisher) for _ in range(3)] + [threading.Thread(target=poller)]
    for t in threads:
        t.start()
    wait_until(lambda: server.stats().messages_in > 1000, "publishing under way")
    server.close()
    stop.set()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads)
    assert sorted(map(str, outcomes)) == ["not running"] * 3 + ["poll ended"], outcomes


def test_garbage_collected_inside_a_library_thread() -> None:
    """A server whose last reference goes away on a library thread (inside a callback) is
    freed from a helper thread instead of failing with CALLED_FROM_CALLBACK."""
    victim = wsbroker.Server(port=0, worker_threads=1).start()
    port = victim.port
    holder = [victim]
    del victim
    host = wsbroker.Server(port=0, mode="callback", worker_threads=1).start()
    done = threading.Event()

    @host.app_handler("/app/drop")
    def drop(msg):
        holder.clear()  # last reference: finalized here, on a library thread
        gc.collect()
        done.set()

    try:
        with WsClient(host.url) as c:
            c.connect()
            c.send_frame("/app/drop", "x")
        assert done.wait(10)
        wait_until(lambda: _port_is_free(port), "victim freed", timeout=15)
    finally:
        host.close()
