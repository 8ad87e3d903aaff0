"""The base of every object that owns a C handle (:class:`~wsbroker.Config`,
:class:`~wsbroker.Server`): one place for "freed exactly once, never while in use".

A handle-owning object must

* free its handle exactly once: :meth:`Managed.close` is idempotent, safe to call from several
  threads at once (the second caller waits for the first), and also runs from ``with`` and,
  for an object dropped without ``close()``, from ``__del__``;
* never free it while another thread is inside a C call with it: calls go through
  :meth:`Managed._borrow` / :meth:`Managed._call`, which count calls in flight, and ``close()``
  waits for them (no C call of this binding blocks for long: polls wait in 100 ms slices);
* refuse calls once closed (or before the handle exists) with an exception chosen by the
  subclass (:meth:`Managed._not_open`), instead of passing a dangling pointer to C.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator, Optional

from . import _ffi
from ._errors import Error, InvalidArgument, error_for


class Managed:
    """Owns one C handle (an ``int`` address) and frees it exactly once with :meth:`_delete`."""

    #: What the handle is, for error messages.
    _what = "object"

    def __init__(self) -> None:
        # A condition on a re-entrant lock: subclasses guard their own state with it too, and
        # close() waits on it for calls in flight.
        self._lock = threading.Condition(threading.RLock())
        self._handle: Optional[int] = None
        self._borrows = 0
        self._closing = False
        self._closed = False

    # --- for subclasses -----------------------------------------------------------------------

    def _adopt(self, handle: Optional[int]) -> None:
        """Takes ownership of a freshly created handle."""
        if not handle:
            raise Error(f"the library returned no {self._what}")
        with self._lock:
            if self._handle is not None:
                raise RuntimeError(f"{self._what} already owns a handle")
            self._handle = handle

    def _delete(self, handle: Optional[int]) -> None:
        """Frees ``handle`` (``None``: the object never got one). Called once, without the lock."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drops Python state that served the handle; runs once, after :meth:`_delete`."""

    def _not_open(self) -> Exception:
        """The exception for a call on an object without a live handle."""
        state = "closed" if self._closed or self._closing else "not open"
        return InvalidArgument(f"{self._what} is {state}")

    def _finalize(self) -> None:
        """What ``__del__`` does for an object that was not closed (default: ``close()``)."""
        self.close()

    # --- calling into C -----------------------------------------------------------------------

    def _acquire(self) -> int:
        """The live handle, counted as in use until :meth:`_release`."""
        with self._lock:
            handle = self._handle
            if handle is None or self._closing:
                raise self._not_open()
            self._borrows += 1
            return handle

    def _release(self) -> None:
        with self._lock:
            self._borrows -= 1
            if self._borrows == 0:
                self._lock.notify_all()

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[int]:
        """``with self._borrow() as handle:`` — the handle stays alive inside the block."""
        handle = self._acquire()
        try:
            yield handle
        finally:
            self._release()

    def _call(self, what: str, fn: Callable[..., int], *args: Any) -> None:
        """Calls ``fn(handle, *args)`` and raises the mapped error for a failing result;
        ``what`` prefixes the library's error text."""
        handle = self._acquire()
        try:
            code = fn(handle, *args)
        finally:
            self._release()
        if code != _ffi.WSB_OK:
            raise error_for(code, what)

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def close(self) -> None:
        """Frees the C handle. Idempotent; waits for calls in flight on other threads."""
        self._close_with(self._delete)

    def _close_with(self, delete: Callable[[Optional[int]], None]) -> bool:
        """The body of every ``close()``: returns True for the call that did the freeing."""
        with self._lock:
            while self._closing:  # another thread is closing: wait until it is done
                self._lock.wait(0.05)
            if self._closed:
                return False
            self._closing = True  # no new calls from now on
            while self._borrows > 0:  # calls in flight finish first
                self._lock.wait(0.05)
            handle, self._handle = self._handle, None
        # Without the lock: freeing a server waits for its threads, and their callbacks may
        # need the lock.
        try:
            delete(handle)
        finally:
            with self._lock:
                self._closed = True
                self._closing = False
                self._forget()
                self._lock.notify_all()
        return True

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            # getattr: __init__ may have failed before Managed.__init__ ran.
            if not getattr(self, "_closed", True):
                self._finalize()
        except BaseException:  # noqa: BLE001 - never raise from a finalizer
            pass
