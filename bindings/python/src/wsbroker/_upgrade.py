"""The handshake-level auth hook: :class:`UpgradeRequest` and the decision of ``on_upgrade``.

Browsers cannot set headers on a WebSocket, so a browser client proves who it is with a cookie
or a ``?token=`` query parameter of the upgrade request. ``Server.on_upgrade`` sees the request
before the upgrade is answered and returns the principal (the STOMP session's user) or refuses
it with an HTTP 401/403.
"""

from __future__ import annotations

import ctypes
import inspect
from ctypes import byref, c_char_p, c_size_t
from typing import Any, Callable, Optional, Union

from . import _convert as cv
from . import _ffi
from ._errors import CallbackErrorLog, error_for
from ._events import Accept, Reject
from ._library import lib

#: What an upgrade handler returns: ``None``/``True`` accept without a principal, a ``str`` or
#: an :class:`Accept` accept as that principal, ``False`` or a :class:`Reject` refuse.
UpgradeResult = Union[None, bool, str, Accept, Reject]
UpgradeHandler = Callable[["UpgradeRequest"], UpgradeResult]


class UpgradeRequest:
    """A WebSocket upgrade request (``wsb_upgrade_request``), valid only while ``on_upgrade``
    runs: using it afterwards raises :class:`RuntimeError`."""

    __slots__ = ("_ptr",)

    def __init__(self, ptr: int) -> None:
        self._ptr: Optional[int] = ptr

    def _invalidate(self) -> None:
        self._ptr = None

    def _get(self, fn: Any, *name: str) -> Optional[str]:
        if self._ptr is None:
            raise RuntimeError("an UpgradeRequest is valid only during on_upgrade")
        out, out_len = c_char_p(), c_size_t()
        args: list = []
        for n in name:
            raw = cv.text(n, "name")
            args += [raw, len(raw)]
        code = fn(self._ptr, *args, byref(out), byref(out_len))
        if code == _ffi.WSB_ERR_NOT_FOUND:
            return None
        if code != _ffi.WSB_OK:
            raise error_for(code, "upgrade request")
        return ctypes.string_at(out, out_len.value).decode("utf-8", "replace")

    @property
    def path(self) -> str:
        """The request path without the query (e.g. ``/ws``)."""
        return self._get(lib.wsb_upgrade_request_path) or ""

    @property
    def query(self) -> Optional[str]:
        """The raw query string (after ``?``), or ``None``."""
        return self._get(lib.wsb_upgrade_request_query)

    @property
    def remote_addr(self) -> Optional[str]:
        """The peer address (``"127.0.0.1:53412"``)."""
        return self._get(lib.wsb_upgrade_request_remote_addr)

    def query_param(self, name: str) -> Optional[str]:
        """A query parameter, percent-decoded; ``None`` when absent."""
        return self._get(lib.wsb_upgrade_request_query_param, name)

    def header(self, name: str) -> Optional[str]:
        """The first value of a header (name in any case); ``None`` when absent."""
        return self._get(lib.wsb_upgrade_request_header, name)

    def cookie(self, name: str) -> Optional[str]:
        """A cookie of the ``Cookie`` header; ``None`` when absent."""
        return self._get(lib.wsb_upgrade_request_cookie, name)

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<UpgradeRequest (expired)>"
        return f"<UpgradeRequest {self.path!r} query={self.query!r} from {self.remote_addr}>"


def apply(decision: int, result: UpgradeResult) -> None:
    """Writes a handler's result into a ``wsb_upgrade_decision``."""
    if isinstance(result, Reject):
        reason = result.message.encode("utf-8", "replace")
        # Documented: only 4xx refuse an upgrade; anything else (a redirect, a 2**16 + 401
        # that uint16_t would wrap to 401) becomes 403.
        status = result.status if 400 <= result.status < 500 else 403
        code = lib.wsb_upgrade_reject(decision, status, reason, len(reason))
    elif result is False:
        code = lib.wsb_upgrade_reject(decision, 403, b"refused", 7)
    elif result is None or result is True:
        code = lib.wsb_upgrade_accept(decision, None, 0)
    elif isinstance(result, (str, Accept)):
        user = result if isinstance(result, str) else result.user
        raw = None if user is None else user.encode("utf-8")
        code = lib.wsb_upgrade_accept(decision, raw, 0 if raw is None else len(raw))
    else:
        raise TypeError(
            f"on_upgrade returned {type(result).__name__}: return None/True (accept), a principal "
            "(str or Accept), or False/Reject(reason, status=401|403) (refuse)"
        )
    if code != _ffi.WSB_OK:
        raise error_for(code, "upgrade decision")


def decide(handler: Optional[UpgradeHandler], request: int, decision: int, errors: CallbackErrorLog) -> None:
    """Runs ``on_upgrade`` for one handshake (on a runtime thread, while it waits) and writes
    its answer. A handler that raises leaves the decision unset, which refuses with 403."""
    if handler is None:  # removed while this handshake was in flight
        apply(decision, None)
        return
    req = UpgradeRequest(request)
    try:
        try:
            result = handler(req)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError("on_upgrade must not be async: the handshake waits for its answer")
        except Reject as refusal:
            result = refusal
        apply(decision, result)
    except BaseException as exc:  # noqa: BLE001 - the decision stays unset: refused (403)
        errors.record(exc, "on_upgrade")
    finally:
        req._invalidate()
