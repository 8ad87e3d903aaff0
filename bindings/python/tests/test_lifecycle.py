"""Server lifecycle, configuration, errors and library loading."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

import wsbroker
from wsbroker import _ffi, _library, _trampolines

from clients import WsClient, wait_until


def test_library_is_checked_at_import() -> None:
    assert wsbroker.version() == "0.1.0"
    assert _library.lib.wsb_abi_version() == wsbroker.ABI_VERSION == 5
    assert wsbroker.LIBRARY_PATH.exists()
    if not os.environ.get(_library.LIBRARY_ENV):
        # the installed package carries its own copy of the library
        assert wsbroker.LIBRARY_PATH.parent == __import__("pathlib").Path(wsbroker.__file__).parent


def test_import_failure_names_the_path(tmp_path) -> None:
    missing = tmp_path / "nope" / "libwsbroker.so"
    env = {**os.environ, "WSBROKER_LIBRARY": str(missing)}
    proc = subprocess.run([sys.executable, "-c", "import wsbroker"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr
    bogus = tmp_path / "libbogus.so"
    bogus.write_bytes(b"not a library")
    env["WSBROKER_LIBRARY"] = str(bogus)
    proc = subprocess.run([sys.executable, "-c", "import wsbroker"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert str(bogus) in proc.stderr


def test_start_port_close_idempotent() -> None:
    server = wsbroker.Server(port=0, worker_threads=1)
    assert not server.running
    with pytest.raises(wsbroker.NotRunning):
        _ = server.port
    with pytest.raises(wsbroker.NotRunning):
        server.publish("/topic/x", "early")
    assert server.start() is server
    assert server.running and server.port > 0
    assert server.tcp_port is None
    assert server.url == f"ws://127.0.0.1:{server.port}/ws"
    with pytest.raises(wsbroker.AlreadyStarted):
        server.start()
    server.close()
    assert server.closed
    server.close()  # idempotent
    with pytest.raises(wsbroker.NotRunning):
        server.publish("/topic/x", "late")
    with pytest.raises(wsbroker.AlreadyStarted):
        server.start()


def test_context_manager_and_tcp_port() -> None:
    with wsbroker.Server(port=0, tcp_port=0, path="/stomp", worker_threads=1) as server:
        assert server.running
        assert server.tcp_port and server.tcp_port != server.port
        assert server.url.endswith("/stomp")
        with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=5):
            pass
    assert server.closed


def test_address_in_use() -> None:
    with wsbroker.Server(port=0, worker_threads=1) as first:
        second = wsbroker.Server(port=first.port, worker_threads=1)
        with pytest.raises(wsbroker.AddressInUse) as info:
            second.start()
        assert str(first.port) in str(info.value)
        assert info.value.code == _ffi.WSB_ERR_ADDRESS_IN_USE
        assert second.closed


def test_invalid_configuration_raises_mapped_errors() -> None:
    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Server(host="not an address")
    with pytest.raises(wsbroker.InvalidArgument):
        wsbroker.Server(mode="push")
    with pytest.raises(wsbroker.InvalidArgument) as info:  # path validated by wsb_server_new
        wsbroker.Server(path="no-slash", worker_threads=1).start()
    assert isinstance(info.value, wsbroker.Error)
    assert "path" in str(info.value)


def test_errors_carry_last_error_text(make_server) -> None:
    server = make_server(port=0)
    with pytest.raises(wsbroker.NotFound) as info:
        server.send_to_session(987654321, "/queue/x", "hello")
    assert info.value.code == _ffi.WSB_ERR_NOT_FOUND
    assert info.value.message
    # The server's own record of its last failure, readable from any thread.
    texts = []
    reader = threading.Thread(target=lambda: texts.append(server.last_error()))
    reader.start()
    reader.join(10)
    assert texts and "987654321" in texts[0], texts
    with pytest.raises(wsbroker.InvalidArgument):
        server.publish("/topic/*", "no wildcards when publishing")
    with pytest.raises(wsbroker.NotFound):
        server.accept(424242)
    assert wsbroker.result_str(_ffi.WSB_ERR_NOT_FOUND).startswith("WSB_ERR_NOT_FOUND")
    assert wsbroker.result_str(12345) == "unknown result code"
    assert issubclass(wsbroker.CallbackError, wsbroker.Error)
    assert issubclass(wsbroker.Backpressure, wsbroker.Error)


def test_on_connect_must_be_set_before_start(make_server) -> None:
    server = make_server(port=0)
    with pytest.raises(wsbroker.AlreadyStarted) as info:
        server.on_connect = lambda ev: True
    assert "before start" in str(info.value)


def test_stats(make_server, pump_of) -> None:
    server = make_server(port=0)
    pump_of(server)
    s0 = server.stats()
    assert isinstance(s0, wsbroker.Stats) and s0.connections == 0
    with WsClient(server.url) as c:
        c.connect()
        c.subscribe("/topic/stats")
        server.publish("/topic/stats", "x")
        c.expect("MESSAGE")
        st = server.stats()
        assert st.connections == 1 and st.sessions == 1 and st.subscriptions == 1
        assert st.messages_in >= 1 and st.messages_out >= 1 and st.bytes_out > 0
    wait_until(lambda: server.stats().connections == 0, "connection closed")


def test_poll_on_callback_mode_is_an_error(make_server) -> None:
    server = make_server(port=0, mode="callback")
    with pytest.raises(wsbroker.InvalidArgument):
        server.poll()


def test_close_releases_all_slots() -> None:
    before = _trampolines.slot_count()
    for mode in ("poll", "callback"):
        server = wsbroker.Server(port=0, mode=mode, worker_threads=1, on_connect=lambda ev: True)
        server.app_handler("/app/a")(lambda m: None)
        server.subscribe("/topic/a", lambda m: None)
        server.start()
        server.app_handler("/app/b")(lambda m: None)
        sub = server.subscribe("/topic/b", lambda m: None)
        sub.cancel()
        assert _trampolines.slot_count() > before
        server.close()
        assert _trampolines.slot_count() == before, mode


def test_exit_with_running_server_does_not_crash(tmp_path) -> None:
    script = textwrap.dedent("""
        import wsbroker
        server = wsbroker.Server(port=0, mode="callback", worker_threads=2,
                                 on_connect=lambda ev: True)
        server.subscribe("/topic/**", lambda m: None)
        server.app_handler("/app/**")(lambda m: None)
        server.start()
        other = wsbroker.Server(port=0, worker_threads=1).start()
        server.publish("/topic/a", "x")
        print("running", server.port, flush=True)
        # no close(): the atexit hook must stop both before the interpreter goes away
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("running")
