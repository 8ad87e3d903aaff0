"""Forwarding the library's own log (Rust ``tracing``) to Python's :mod:`logging`."""

from __future__ import annotations

import logging
from typing import Optional

from . import _ffi, _trampolines
from ._errors import check
from ._library import lib

_enabled = False


def native_level(level: int) -> int:
    """The ``WSB_LOG_*`` level that lets through a :mod:`logging` level and above."""
    if level <= 5:
        return _ffi.WSB_LOG_TRACE
    if level <= logging.DEBUG:
        return _ffi.WSB_LOG_DEBUG
    if level <= logging.INFO:
        return _ffi.WSB_LOG_INFO
    if level <= logging.WARNING:
        return _ffi.WSB_LOG_WARN
    return _ffi.WSB_LOG_ERROR


def set_native_log_level(level: Optional[int]) -> None:
    """Forwards the library's own log to the ``wsbroker.native`` logger at ``level`` (a
    :mod:`logging` level) and above; ``None`` turns it off. Process-wide."""
    global _enabled
    if level is None:
        if _enabled:
            lib.wsb_set_log_callback(_trampolines.NULL_LOG, None, 0)
            _enabled = False
        return
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be a logging level (int) or None, not {type(level).__name__}")
    check(lib.wsb_set_log_callback(_trampolines.log_cb, None, native_level(level)), "set log callback")
    _enabled = True
