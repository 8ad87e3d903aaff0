"""Raw WebSocket mode: plain WebSocket messages (no STOMP) on paths of their own, with a
uWebSockets-style API (topics with exact names, per-connection user data, buffered bytes).

:class:`RawMode` is a mixin of :class:`~wsbroker.Server`; it needs the server's
``_call(what, fn, *args)`` (a checked C call on the live handle), ``_lock`` and
``_before_start(action)``, which runs an action now on a started server or keeps it for
``start()``. Raw connection ids (``conn``) are ``uint64_t`` in C and range-checked here.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t, c_uint64
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from . import _convert as cv
from . import _ffi
from ._config import SLOW_CONSUMER_POLICIES
from ._convert import Body
from ._errors import InvalidArgument, error_for
from ._library import lib

BEHAVIOURS = {"host": _ffi.WSB_RAW_HOST, "broadcast": _ffi.WSB_RAW_BROADCAST, "echo": _ffi.WSB_RAW_ECHO}


class RawEndpoint:
    """The checked arguments of one ``wsb_server_add_raw_endpoint`` call."""

    __slots__ = ("path", "behaviour", "subprotocols", "policy", "max_message_size", "sockjs")

    def __init__(self, path: str, behaviour: str, subprotocols: Sequence[str],
                 slow_consumer_policy: Optional[str], max_message_size: Optional[int],
                 sockjs: Union[bool, Mapping[str, Any]] = False) -> None:
        self.path = cv.text(path, "path")
        self.behaviour = cv.choice(behaviour, BEHAVIOURS, "behaviour")
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        self.subprotocols = cv.text(",".join(subprotocols), "subprotocols")
        self.policy = (_ffi.WSB_RAW_POLICY_SERVER if slow_consumer_policy is None
                       else cv.choice(slow_consumer_policy, SLOW_CONSUMER_POLICIES, "slow_consumer_policy"))
        self.max_message_size = cv.usize(max_message_size or 0, "max_message_size")
        if sockjs is True:
            sockjs = {}
        if sockjs is not False and not isinstance(sockjs, Mapping):
            raise TypeError("sockjs must be a bool or a mapping of SockJS options")
        if sockjs is not False:
            unknown = set(sockjs) - {"websocket", "cookie_needed", "response_limit"}
            if unknown:
                raise TypeError(f"unknown SockJS option(s): {', '.join(sorted(unknown))}")
            if self.subprotocols:
                raise InvalidArgument("subprotocols: a SockJS endpoint takes none")
            self.sockjs = (bool(sockjs.get("websocket", True)), bool(sockjs.get("cookie_needed", False)),
                           cv.usize(sockjs.get("response_limit") or 0, "response_limit"))
        else:
            self.sockjs = None

    def register(self, handle: int) -> None:
        if self.sockjs is not None:
            websocket, cookie_needed, response_limit = self.sockjs
            code = lib.wsb_server_add_raw_sockjs_endpoint(
                handle, self.path, len(self.path), self.behaviour, self.policy, self.max_message_size,
                websocket, cookie_needed, response_limit)
        else:
            code = lib.wsb_server_add_raw_endpoint(
                handle, self.path, len(self.path), self.behaviour, self.subprotocols or None,
                len(self.subprotocols), self.policy, self.max_message_size)
        if code != _ffi.WSB_OK:
            raise error_for(code, f"add raw endpoint {self.path.decode('utf-8', 'replace')}")


class RawMode:
    """The raw-mode methods of :class:`~wsbroker.Server`."""

    _call: Callable[..., None]
    _before_start: Callable[[Callable[[int], None]], None]

    def add_raw_endpoint(
        self,
        path: str,
        behaviour: str = "host",
        *,
        subprotocols: Sequence[str] = (),
        slow_consumer_policy: Optional[str] = None,
        max_message_size: Optional[int] = None,
        sockjs: Union[bool, Mapping[str, Any]] = False,
    ) -> None:
        """Registers a raw WebSocket endpoint at ``path`` (before or after start).

        ``behaviour``: ``"host"`` (client messages arrive as :class:`RawMessageEvent`),
        ``"broadcast"`` (each message goes to every other client of the endpoint, inside the
        server) or ``"echo"`` (back to its sender). ``subprotocols``: accepted in preference
        order (none by default). ``slow_consumer_policy``: ``"disconnect"``, ``"drop_oldest"``
        or ``"drop_newest"`` (default: the server's). ``max_message_size``: largest client
        message (default: the server's limit). Every raw endpoint reports
        :class:`RawOpenEvent` and :class:`RawCloseEvent`. ``sockjs``: also serve it over SockJS
        with ``path`` as the prefix (``True``, or options ``websocket``, ``cookie_needed``,
        ``response_limit``); SockJS carries text, binary sends do not reach SockJS clients.
        """
        endpoint = RawEndpoint(path, behaviour, subprotocols, slow_consumer_policy, max_message_size, sockjs)
        self._before_start(endpoint.register)

    def raw_subscribe(self, conn: int, topic: str) -> bool:
        """Subscribes raw connection ``conn`` to ``topic`` (exact name); False if it already was."""
        return self._topic_call("raw subscribe", lib.wsb_server_raw_subscribe, conn, topic)

    def raw_unsubscribe(self, conn: int, topic: str) -> bool:
        """Unsubscribes raw connection ``conn`` from ``topic``; False if it was not subscribed."""
        return self._topic_call("raw unsubscribe", lib.wsb_server_raw_unsubscribe, conn, topic)

    def _topic_call(self, what: str, fn: Callable[..., int], conn: int, topic: str) -> bool:
        """``fn(server, conn, topic, topic_len, &changed)``: whether the subscription changed."""
        c, t = cv.u64(conn, "conn"), cv.text(topic, "topic")
        changed = ctypes.c_uint32()
        self._call(f"{what} {c}", fn, c, t, len(t), byref(changed))
        return bool(changed.value)

    def raw_publish(self, topic: str, data: Body, binary: Optional[bool] = None) -> int:
        """Sends ``data`` to every raw connection subscribed to ``topic``; returns how many
        queued it. ``binary`` defaults to False for ``str`` data, True for bytes."""
        t, b = cv.text(topic, "topic"), cv.body(data)
        receivers = c_size_t()
        self._call(f"raw publish to {topic}", lib.wsb_server_raw_publish, t, len(t), b, len(b),
                   cv.is_binary(data, binary), byref(receivers))
        return receivers.value

    def raw_send(self, conn: int, data: Body, binary: Optional[bool] = None) -> None:
        """Sends ``data`` to raw connection ``conn`` (:class:`Backpressure` when it is not
        queued). ``binary`` defaults to False for ``str`` data, True for bytes."""
        c, b = cv.u64(conn, "conn"), cv.body(data)
        self._call(f"raw send to {c}", lib.wsb_server_raw_send, c, b, len(b), cv.is_binary(data, binary))

    def raw_close(self, conn: int, code: int = 1000, reason: str = "") -> None:
        """Closes raw connection ``conn`` with a WebSocket close ``code`` (1000-1003,
        1007-1014, 3000-4999) and ``reason`` (at most 123 bytes)."""
        c, close_code, r = cv.u64(conn, "conn"), cv.u16(code, "close code"), cv.text(reason, "reason")
        self._call(f"raw close {c}", lib.wsb_server_raw_close, c, close_code, r or None, len(r))

    def raw_set_user_data(self, conn: int, value: int) -> None:
        """Attaches an unsigned 64-bit integer to raw connection ``conn``."""
        c, v = cv.u64(conn, "conn"), cv.u64(value, "user data")
        self._call(f"raw set user data {c}", lib.wsb_server_raw_set_user_data, c, v)

    def raw_user_data(self, conn: int) -> int:
        """The integer attached to raw connection ``conn`` (0 until set)."""
        c, value = cv.u64(conn, "conn"), c_uint64()
        self._call(f"raw user data {c}", lib.wsb_server_raw_user_data, c, byref(value))
        return value.value

    def raw_buffered_bytes(self, conn: int) -> int:
        """Bytes queued for raw connection ``conn`` and not yet written to its socket."""
        c, value = cv.u64(conn, "conn"), c_size_t()
        self._call(f"raw buffered bytes {c}", lib.wsb_server_raw_buffered_bytes, c, byref(value))
        return value.value
