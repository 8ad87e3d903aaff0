"""Fixtures of the wsbroker Python binding tests (pytest, against the installed package)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, List

import pytest

import wsbroker

REPO_ROOT = Path(__file__).resolve().parents[3]


class Pump:
    """Polls a poll-mode server on a background thread (like a host's main loop), so that
    synchronous test clients get their connect decisions and app handlers answered."""

    def __init__(self, server: wsbroker.Server) -> None:
        self.server = server
        self.events: List[Any] = []
        self.errors: List[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-pump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.server.closed:
            try:
                self.events.extend(self.server.poll(timeout=0.05))
            except wsbroker.CallbackError as e:
                self.errors.append(e)
            except wsbroker.NotRunning:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "pump thread did not stop"


@pytest.fixture
def make_server() -> Any:
    """Creates servers (started) and closes them after the test."""
    made: List[wsbroker.Server] = []

    def factory(*, start: bool = True, **kwargs: Any) -> wsbroker.Server:
        kwargs.setdefault("worker_threads", 2)
        server = wsbroker.Server(**kwargs)
        made.append(server)
        if start:
            server.start()
        return server

    yield factory
    for s in made:
        s.close(raise_errors=False)


@pytest.fixture
def pump_of() -> Callable[[wsbroker.Server], Pump]:
    """Starts a Pump for a server; stopped after the test (before make_server closes it)."""
    pumps: List[Pump] = []

    def factory(server: wsbroker.Server) -> Pump:
        p = Pump(server)
        pumps.append(p)
        return p

    yield factory
    for p in pumps:
        p.stop()
