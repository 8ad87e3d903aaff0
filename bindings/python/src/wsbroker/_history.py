"""Message history: history rules of a :class:`Config`, and pages read with
:meth:`Server.history`.

A history rule ``(pattern, size, ttl, last_value)`` makes the destinations matching ``pattern``
keep their last ``size`` messages (each for at most ``ttl`` seconds when given). Their
MESSAGEs carry ``x-offset`` (1, 2, 3 ... per destination) and ``x-epoch``; a client that
resubscribes with ``x-since``/``x-epoch`` gets what it missed, and ``x-last:N`` asks for a
backlog. With ``last_value`` every SUBSCRIBE first gets the newest message.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_bool, c_char_p, c_size_t, c_uint64
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Tuple

from . import _convert as cv
from . import _ffi
from ._errors import OutOfRange, check
from ._events import Message, copy_event
from ._library import lib


@dataclass(frozen=True)
class HistoryRule:
    """Which destinations keep a history, and how much (see the module text)."""

    pattern: str
    size: int
    ttl: Optional[float] = None
    last_value: bool = False

    @staticmethod
    def of(value: Any) -> "HistoryRule":
        """A rule from a :class:`HistoryRule`, a mapping of its fields, or a tuple
        ``(pattern, size[, ttl[, last_value]])``."""
        if isinstance(value, HistoryRule):
            return value
        if isinstance(value, Mapping):
            return HistoryRule(**value)
        if isinstance(value, (tuple, list)) and 2 <= len(value) <= 4:
            return HistoryRule(*value)
        raise TypeError(
            f"a history rule is a HistoryRule, a dict or a tuple (pattern, size[, ttl[, last_value]]), "
            f"not {value!r}")

    def c_arguments(self) -> Tuple[bytes, int, int, int, bool]:
        """The arguments of ``wsb_config_add_history`` after the config."""
        pattern = cv.text(self.pattern, "history pattern")
        size = cv.usize(self.size, "history size")
        ttl_ms = 0 if self.ttl is None else cv.seconds_to_ms(self.ttl, "history ttl")
        if self.ttl is not None and ttl_ms == 0:
            raise OutOfRange(f"history ttl must be above 0 seconds, not {self.ttl!r}")
        if self.last_value not in (True, False):
            raise TypeError(f"history last_value must be a bool, not {self.last_value!r}")
        return pattern, len(pattern), size, ttl_ms, bool(self.last_value)


@dataclass(frozen=True)
class HistoryPage:
    """Retained messages of one destination, oldest first, as ``(offset, message)`` pairs,
    with the stream's ``epoch`` and ``last_offset`` when read; ``complete`` is False when
    messages after the asked offset are no longer retained."""

    epoch: str
    last_offset: int
    complete: bool
    messages: List[Tuple[int, Message]]


def read_page(call: Callable[..., None], destination: str, since: int, limit: int) -> HistoryPage:
    """Reads a page with ``wsb_server_history`` (``call`` is the server's ``_call``) and
    copies it out before freeing it."""
    d = cv.text(destination, "destination")
    handle = _ffi.HistoryHandle()
    call(f"history of {destination}", lib.wsb_server_history, d, len(d), cv.u64(since, "since"),
         cv.usize(limit, "limit"), byref(handle))
    try:
        epoch, epoch_len = c_char_p(), c_size_t()
        last, complete = c_uint64(), c_bool()
        check(lib.wsb_history_position(handle, byref(epoch), byref(epoch_len), byref(last), byref(complete)),
              "history position")
        messages = []
        for index in range(lib.wsb_history_len(handle)):
            offset, event = c_uint64(), ctypes.POINTER(_ffi.WsbEvent)()
            check(lib.wsb_history_message(handle, index, byref(offset), byref(event)), "history message")
            message = copy_event(event.contents)
            assert isinstance(message, Message)
            messages.append((offset.value, message))
        text = ctypes.string_at(epoch, epoch_len.value).decode() if epoch else ""
        return HistoryPage(epoch=text, last_offset=last.value, complete=complete.value, messages=messages)
    finally:
        lib.wsb_history_free(handle)
