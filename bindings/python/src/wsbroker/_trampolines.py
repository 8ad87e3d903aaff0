"""Callbacks from C into Python: one long-lived ``CFUNCTYPE`` trampoline per callback type,
and a slot table that says what each registration calls.

C never sees a Python object. Each registration gets an integer slot, passed to C as
``user_data``; the trampoline looks the slot up and calls its target. The drop trampoline
(``wsb_drop_callback``), which C calls exactly once when it no longer needs the
``user_data``, frees the slot. The trampolines are module globals created once, so they live
as long as the process: C can never call a ``CFUNCTYPE`` object that was garbage collected
(the classic ctypes crash), however registrations come and go.

Targets are :class:`WeakTarget` objects holding a *weak* reference to what they call: the slot
table is a global root, and a strong reference from it would keep a dropped server (and every
callable closing over it) alive forever. The server owns the Python callables; it outlives
its C handle, so they stay alive for as long as C can call them.

No exception ever propagates into C: targets handle their own errors (recording them on the
server); anything that still escapes is logged here.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import threading
import weakref
from typing import Any, Callable, Dict, Optional

from . import _ffi

log = logging.getLogger("wsbroker")

_lock = threading.Lock()
_slots: Dict[int, Callable[..., Any]] = {}
_ids = itertools.count(1)
_tls = threading.local()


# --- the slot table ---------------------------------------------------------------------------


def register(target: Callable[..., Any]) -> int:
    """Stores ``target`` and returns its slot number (never 0, never reused)."""
    with _lock:
        slot = next(_ids)
        _slots[slot] = target
    return slot


def release(slot: Optional[int]) -> None:
    """Frees a slot (no-op for an unknown one: C's drop and a server's cleanup may both come)."""
    if slot:
        with _lock:
            _slots.pop(slot, None)


def slot_count() -> int:
    """Number of live slots (for tests and leak checks)."""
    with _lock:
        return len(_slots)


def user_data(slot: Optional[int]) -> Optional[ctypes.c_void_p]:
    return None if slot is None else ctypes.c_void_p(slot)


def _lookup(slot: Optional[int]) -> Optional[Callable[..., Any]]:
    if not slot:
        return None
    with _lock:
        return _slots.get(slot)


class WeakTarget:
    """Calls ``method(*leading, *args)`` of an object while it is alive, else returns ``dead``."""

    __slots__ = ("_method", "_leading", "_dead")

    def __init__(self, method: Callable[..., Any], *leading: Any, dead: Any = None) -> None:
        self._method = weakref.WeakMethod(method)  # type: ignore[arg-type]
        self._leading = leading
        self._dead = dead

    def __call__(self, *args: Any) -> Any:
        method = self._method()
        if method is None:
            return self._dead
        return method(*self._leading, *args)


class OwnedSlots:
    """The slots one server registered, so that closing it releases them even where C would
    not drop them (a server freed from a helper thread, a registration C refused)."""

    def __init__(self) -> None:
        self._slots: Dict[int, Any] = {}

    def new(self, target: Callable[..., Any]) -> int:
        slot = register(target)
        self._slots[slot] = target
        return slot

    def handed_to_c(self, slot: Optional[int]) -> None:
        """C owns the slot now and drops it itself (a replaced or removed registration)."""
        self._slots.pop(slot, None)  # type: ignore[arg-type]

    def refused(self, slot: Optional[int]) -> None:
        """The registering call failed: C keeps nothing and will not drop the slot."""
        if slot is not None:
            self._slots.pop(slot, None)
            release(slot)

    def release_all(self) -> None:
        for slot in list(self._slots):
            release(slot)
        self._slots.clear()


# --- re-entrancy ------------------------------------------------------------------------------


def in_callback() -> bool:
    """True while this thread runs a wsbroker callback called by C (close() must refuse)."""
    return getattr(_tls, "depth", 0) > 0


def _enter() -> None:
    _tls.depth = getattr(_tls, "depth", 0) + 1


def _leave() -> None:
    _tls.depth -= 1


# --- the trampolines (created once, never collected) ------------------------------------------


@_ffi.DropCallback
def _drop_trampoline(data: Optional[int]) -> None:
    try:
        release(data)
    except BaseException:  # noqa: BLE001 - never unwind into C
        log.exception("wsbroker: drop callback failed")


@_ffi.WakeCallback
def _wake_trampoline(data: Optional[int]) -> None:
    _enter()
    try:
        target = _lookup(data)
        if target is not None:
            target()
    except BaseException:  # noqa: BLE001
        log.exception("wsbroker: wake callback failed")
    finally:
        _leave()


def _deliver(data: Optional[int], event: Any, what: str) -> None:
    """An event callback's body (server and client events): the slot's target gets the
    struct; nothing escapes into C."""
    _enter()
    try:
        target = _lookup(data)
        if target is not None and event:
            target(event.contents)
    except BaseException:  # noqa: BLE001
        log.exception("wsbroker: %s callback failed", what)
    finally:
        _leave()


@_ffi.EventCallback
def _event_trampoline(data: Optional[int], event: Any) -> None:
    _deliver(data, event, "event")


@_ffi.AppCallback
def _app_trampoline(data: Optional[int], event: Any, error_buf: Optional[int], error_cap: int) -> int:
    _enter()
    try:
        target = _lookup(data)
        if target is None or not event:
            refusal: Optional[str] = "the application handler is gone"
        else:
            refusal = target(event.contents)
        if refusal is None:
            return 0
        write_c_string(error_buf, error_cap, refusal)
        return 1
    except BaseException:  # noqa: BLE001
        log.exception("wsbroker: application callback failed")
        write_c_string(error_buf, error_cap, "internal error in the application handler")
        return 1
    finally:
        _leave()


@_ffi.UpgradeCallback
def _upgrade_trampoline(data: Optional[int], request: Any, decision: Any) -> None:
    # Nothing written into `decision` refuses the upgrade (403): the safe outcome of a
    # handler that is gone or failed. The handles arrive as ctypes objects (c_void_p
    # subclasses are not converted to int): pass their addresses on.
    _enter()
    try:
        target = _lookup(data)
        if target is not None and request and decision:
            target(request.value, decision.value)
    except BaseException:  # noqa: BLE001
        log.exception("wsbroker: upgrade callback failed")
    finally:
        _leave()


@_ffi.ClientEventCallback
def _client_event_trampoline(data: Optional[int], event: Any) -> None:
    _deliver(data, event, "client event")


_LOG_LEVELS = {
    _ffi.WSB_LOG_ERROR: logging.ERROR,
    _ffi.WSB_LOG_WARN: logging.WARNING,
    _ffi.WSB_LOG_INFO: logging.INFO,
    _ffi.WSB_LOG_DEBUG: logging.DEBUG,
    _ffi.WSB_LOG_TRACE: 5,
}


@_ffi.LogCallback
def _log_trampoline(data: Optional[int], level: int, target: Optional[bytes], message: Optional[bytes]) -> None:
    try:
        name = (target or b"").decode("utf-8", "replace").replace("::", ".")
        logger = logging.getLogger("wsbroker.native" + ("." + name if name else ""))
        logger.log(_LOG_LEVELS.get(level, logging.INFO), "%s", (message or b"").decode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001
        pass


def write_c_string(buf: Optional[int], cap: int, text: str) -> None:
    """Writes ``text`` NUL-terminated into a C buffer of ``cap`` bytes, truncated on a UTF-8
    character boundary."""
    if not buf or cap <= 0:
        return
    data = text.encode("utf-8", "replace")[: cap - 1]
    data = data.decode("utf-8", "ignore").encode("utf-8")
    ctypes.memmove(buf, data + b"\0", len(data) + 1)


#: NULL function pointers of each type (ctypes does not accept None for a CFUNCTYPE argument).
NULL_DROP = _ffi.DropCallback()
NULL_EVENT = _ffi.EventCallback()
NULL_APP = _ffi.AppCallback()
NULL_LOG = _ffi.LogCallback()
NULL_UPGRADE = _ffi.UpgradeCallback()
NULL_CLIENT_EVENT = _ffi.ClientEventCallback()
NULL_WAKE = _ffi.WakeCallback()

drop = _drop_trampoline
wake = _wake_trampoline
event = _event_trampoline
app = _app_trampoline
log_cb = _log_trampoline
upgrade = _upgrade_trampoline
client_event = _client_event_trampoline
