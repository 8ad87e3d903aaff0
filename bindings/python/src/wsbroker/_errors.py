"""Exception classes, one per ``wsb_result`` code, the mapping from codes to classes, and the
log of exceptions raised by the host's callbacks."""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from typing import Deque, Dict, List, Optional, Sequence, Type

from . import _ffi
from ._library import lib

log = logging.getLogger("wsbroker")


class Error(Exception):
    """Base of every error raised by wsbroker.

    ``code`` is the ``wsb_result`` value (0 for errors raised by the binding itself) and
    ``message`` the detail text from ``wsb_last_error`` (or the binding).
    """

    code: int = 0

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidArgument(Error, ValueError):
    """An argument was rejected (``WSB_ERR_INVALID_ARGUMENT``)."""

    code = _ffi.WSB_ERR_INVALID_ARGUMENT


class NullArgument(InvalidArgument):
    """A required pointer was NULL (``WSB_ERR_NULL_ARGUMENT``)."""

    code = _ffi.WSB_ERR_NULL_ARGUMENT


class InvalidUtf8(InvalidArgument):
    """A string was not valid UTF-8 (``WSB_ERR_INVALID_UTF8``)."""

    code = _ffi.WSB_ERR_INVALID_UTF8


class OutOfRange(InvalidArgument, OverflowError):
    """An integer argument does not fit the C type it is passed as (``uint64_t`` session ids,
    ``uint32_t`` milliseconds, ``size_t`` limits, ``uint16_t`` ports and close codes), or a
    duration is negative. Raised by the binding before calling C, where the value would
    otherwise wrap silently (``2**64 + 5`` becoming session 5, ``-1`` becoming ``UINT64_MAX``).

    It is both a :class:`ValueError` (through :class:`InvalidArgument`) and an
    :class:`OverflowError`, so either ``except`` clause catches it.
    """


class InvalidConfig(InvalidArgument):
    """A configuration value is out of range (``WSB_ERR_INVALID_CONFIG``)."""

    code = _ffi.WSB_ERR_INVALID_CONFIG


class AlreadyStarted(Error):
    """The server was already started (``WSB_ERR_ALREADY_STARTED``)."""

    code = _ffi.WSB_ERR_ALREADY_STARTED


class NotRunning(Error):
    """The server is not running: not started yet, or closed (``WSB_ERR_NOT_RUNNING``)."""

    code = _ffi.WSB_ERR_NOT_RUNNING


class NotFound(Error, LookupError):
    """The session, subscription or handler does not exist (``WSB_ERR_NOT_FOUND``)."""

    code = _ffi.WSB_ERR_NOT_FOUND


class CalledFromCallback(Error):
    """``close()``/stop was called from inside a wsbroker callback
    (``WSB_ERR_CALLED_FROM_CALLBACK``)."""

    code = _ffi.WSB_ERR_CALLED_FROM_CALLBACK


class AddressInUse(Error):
    """A listener could not bind: the address is taken (``WSB_ERR_ADDRESS_IN_USE``)."""

    code = _ffi.WSB_ERR_ADDRESS_IN_USE


class IoError(Error):
    """Another I/O failure while binding or starting (``WSB_ERR_IO``)."""

    code = _ffi.WSB_ERR_IO


class Backpressure(Error):
    """A bounded queue is full; nothing was queued (``WSB_ERR_BACKPRESSURE``)."""

    code = _ffi.WSB_ERR_BACKPRESSURE


class NotConnected(Error):
    """A client is not connected, or lost its connection before the operation finished
    (``WSB_ERR_NOT_CONNECTED``)."""

    code = _ffi.WSB_ERR_NOT_CONNECTED


class Timeout(Error, TimeoutError):
    """A client operation did not finish in time: a receipt, a connection
    (``WSB_ERR_TIMEOUT``)."""

    code = _ffi.WSB_ERR_TIMEOUT


class Refused(Error):
    """The server refused: an ERROR frame, an HTTP status, a rejected login
    (``WSB_ERR_REFUSED``)."""

    code = _ffi.WSB_ERR_REFUSED


class Panic(Error):
    """The library caught a Rust panic at the C boundary (``WSB_ERR_PANIC``)."""

    code = _ffi.WSB_ERR_PANIC


class CallbackError(Error):
    """One or more Python callbacks raised; re-raised from the next ``poll()``/``close()``.

    ``errors`` holds the original exceptions (the first is also ``__cause__``).
    """

    def __init__(self, errors: Sequence[BaseException]) -> None:
        self.errors: List[BaseException] = list(errors)
        first = self.errors[0] if self.errors else None
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"a wsbroker callback raised {first!r}{more}")
        self.__cause__ = first


ERRORS_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        NullArgument,
        InvalidUtf8,
        InvalidArgument,
        InvalidConfig,
        AlreadyStarted,
        NotRunning,
        NotFound,
        CalledFromCallback,
        AddressInUse,
        IoError,
        Backpressure,
        NotConnected,
        Timeout,
        Refused,
        Panic,
    )
}


def result_str(code: int) -> str:
    """The library's static description of a result code."""
    raw = lib.wsb_result_str(code)
    return raw.decode("utf-8", "replace") if raw else "unknown result code"


def last_error() -> str:
    """The calling thread's last error detail (``wsb_last_error``)."""
    size = lib.wsb_last_error(None, 0)
    if size == 0:
        return ""
    buf = ctypes.create_string_buffer(size + 1)
    lib.wsb_last_error(buf, size + 1)
    return buf.value.decode("utf-8", "replace")


def error_for(code: int, context: str = "") -> Error:
    """The exception for a failing result code, with the thread's last error as message."""
    detail = last_error() or result_str(code)
    message = f"{context}: {detail}" if context else detail
    cls = ERRORS_BY_CODE.get(code, Error)
    return cls(message, code)


def check(code: int, context: str = "") -> None:
    """Raises the mapped exception unless ``code`` is ``WSB_OK``."""
    if code != _ffi.WSB_OK:
        raise error_for(code, context)


#: Most callback errors kept in :attr:`CallbackErrorLog.history`.
ERROR_HISTORY = 100


class CallbackErrorLog:
    """Exceptions raised by the host's callbacks (which run where no caller can catch them:
    inside ``poll()``, on a library thread): each is logged at once, kept in a bounded
    history, and handed back once by :meth:`raise_pending` — from the next ``poll()`` /
    ``aevents()`` step or ``close()`` — so that a failing handler is never silent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._history: Deque[BaseException] = collections.deque(maxlen=ERROR_HISTORY)
        self._pending: List[BaseException] = []

    def record(self, exc: BaseException, where: str) -> None:
        log.error("wsbroker: exception in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
        with self._lock:
            self._history.append(exc)
            self._pending.append(exc)

    def raise_pending(self) -> None:
        """Raises :class:`CallbackError` for the errors not raised before (if any)."""
        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            raise CallbackError(pending)

    def history(self) -> List[BaseException]:
        with self._lock:
            return list(self._history)
