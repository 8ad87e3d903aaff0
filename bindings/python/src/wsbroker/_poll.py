"""Poll mode: taking events out of the library (``wsb_server_poll*``), from a loop of the
host's (``Server.poll``) or from asyncio (``Server.aevents``).

Events are copied into Python objects before the next poll call, because C reuses the
memory they point to from then on. A wait is cut into slices of at most
:data:`POLL_SLICE_MS`, so that ``close()`` (which waits for calls in flight) never waits long
for a poller, and a poller notices a closed server within one slice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from ctypes import byref, c_size_t
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, List, Optional

from . import _convert as cv
from . import _ffi
from ._errors import InvalidArgument, NotRunning, error_for
from ._events import Event, copy_event
from ._library import lib

if TYPE_CHECKING:  # pragma: no cover
    from ._server import Server

#: Longest single wait inside ``poll(timeout)``.
POLL_SLICE_MS = 100


class Poller:
    """The C event buffer of one server and the wait loop around ``wsb_server_poll*``.
    One poll at a time per server (the buffer is reused; events never go to two pollers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf: Any = None

    def clear(self) -> None:
        """After close: the buffer's pointers refer to freed memory; drop it."""
        self._buf = None

    def take(self, server: "Server", timeout: Optional[float], max_events: int) -> List[Event]:
        """Up to ``max_events`` events, waiting up to ``timeout`` seconds for the first
        (``None``: until one comes or the server closes; ``[]`` once it is closed)."""
        if server.mode != "poll":
            raise InvalidArgument("poll() needs mode='poll' (this server delivers events by callback)")
        max_events = cv.usize(max_events, "max_events")
        if max_events == 0:
            raise InvalidArgument("max_events must be positive")
        wait_ms = None if timeout is None else cv.seconds_to_ms(timeout, "timeout")
        deadline = None if wait_ms is None else time.monotonic() + wait_ms / 1000
        with self._lock:
            if self._buf is None or len(self._buf) < max_events:
                self._buf = (_ffi.WsbEvent * max_events)()
            buf = self._buf
            count = c_size_t()
            while True:
                if deadline is None:
                    slice_ms = POLL_SLICE_MS
                else:
                    slice_ms = int(min(POLL_SLICE_MS, max(0.0, deadline - time.monotonic()) * 1000))
                try:
                    handle = server._acquire()
                except NotRunning:
                    if server.closed:
                        return []  # closed while waiting (or before): nothing more will come
                    raise
                try:
                    if slice_ms > 0:
                        code = lib.wsb_server_poll_timeout(handle, buf, max_events, slice_ms, byref(count))
                    else:
                        code = lib.wsb_server_poll(handle, buf, max_events, byref(count))
                    if code != _ffi.WSB_OK:
                        raise error_for(code, "poll")
                    # Copy while the server is surely alive and before the next poll.
                    events = [e for e in (copy_event(buf[i]) for i in range(count.value)) if e is not None]
                finally:
                    server._release()
                if events or (deadline is not None and time.monotonic() >= deadline):
                    return events


async def iterate(server: "Server", max_events: int) -> AsyncIterator[Event]:
    """``Server.aevents()``: yields events as they come, handlers having run (``async`` ones
    as tasks). Never blocks the loop: it polls without waiting, then sleeps on an
    :class:`asyncio.Event` that the library's wake callback sets through
    ``loop.call_soon_threadsafe``. Ends when the server closes."""
    if server.mode != "poll":
        raise InvalidArgument("aevents() needs mode='poll'")
    dispatcher, poller = server._dispatcher, server._poller
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    tasks = dispatcher.tasks

    def waker() -> None:
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:
            pass  # the loop is closed

    def spawn(coro: Awaitable[Any]) -> None:
        task: "asyncio.Task[Any]" = loop.create_task(coro)  # type: ignore[arg-type]
        tasks.add(task)  # a strong reference until done: the loop keeps only a weak one
        task.add_done_callback(tasks.discard)

    with server._lock:
        if dispatcher.async_waker is not None:
            raise RuntimeError("aevents() is already being iterated for this server")
        dispatcher.async_waker = waker
    try:
        while True:
            wake.clear()
            server._errors.raise_pending()
            if server.closed:
                return
            events = poller.take(server, 0, max_events)
            for ev in events:
                dispatcher.dispatch(ev, spawn)
            for ev in events:
                yield ev
            if not events:
                await wake.wait()
    finally:
        with server._lock:
            if dispatcher.async_waker is waker:
                dispatcher.async_waker = None
