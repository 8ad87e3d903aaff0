"""The :class:`Server` class: one wsbroker C server, owned by Python."""

from __future__ import annotations

import asyncio
import atexit
import collections
import ctypes
import inspect
import itertools
import logging
import os
import threading
import time
import weakref
from ctypes import byref, c_size_t, c_uint16, c_uint64, c_void_p
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _callbacks, _ffi, _upgrade
from ._errors import (
    AlreadyStarted,
    CalledFromCallback,
    CallbackError,
    Error,
    InvalidArgument,
    NotRunning,
    check,
    error_for,
)
from ._events import (
    Accept,
    ConnectEvent,
    DisconnectEvent,
    Event,
    EventKind,
    Message,
    Reject,
    Stats,
    SubscribeEvent,
    copy_event,
    stats_from,
)
from ._pattern import matches
from ._upgrade import UpgradeHandler, UpgradeRequest

log = logging.getLogger("wsbroker")
lib = _ffi.lib

Body = Union[bytes, bytearray, memoryview, str]
Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
ConnectDecision = Union[bool, str, Accept, Reject, None]
ConnectHandler = Callable[[ConnectEvent], Union[ConnectDecision, Awaitable[ConnectDecision]]]
SubscribeHandler = Callable[[SubscribeEvent], Union[bool, Reject, None, Awaitable[Any]]]
AppHandler = Callable[[Message], Any]
MessageCallback = Callable[[Message], Any]

#: Most callback errors kept in ``Server.callback_errors``.
ERROR_HISTORY = 100
#: Longest single wait inside ``poll(timeout)``, so that ``close()`` never waits long for it.
POLL_SLICE_MS = 100
_MODES = {"poll": _ffi.WSB_DELIVERY_POLL, "callback": _ffi.WSB_DELIVERY_CALLBACK}
_OVERFLOW = {"drop_newest": _ffi.WSB_OVERFLOW_DROP_NEWEST, "drop_oldest": _ffi.WSB_OVERFLOW_DROP_OLDEST}
_RAW_BEHAVIOURS = {"host": _ffi.WSB_RAW_HOST, "broadcast": _ffi.WSB_RAW_BROADCAST, "echo": _ffi.WSB_RAW_ECHO}
_SLOW_CONSUMER = {"disconnect": 0, "drop_oldest": 1, "drop_newest": 2}  # WSB_SLOW_CONSUMER_*


def _enc(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value.encode("utf-8")


def _body(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise TypeError(f"body must be bytes or str, not {type(body).__name__}")


def _headers(headers: Headers) -> Tuple[Any, int]:
    """A ``wsb_header`` array (keeping its bytes alive through ``_objects``) and its length."""
    if not headers:
        return None, 0
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    arr = (_ffi.WsbHeader * len(pairs))()
    for i, (name, value) in enumerate(pairs):
        n = _enc(name, "header name")
        v = _enc(str(value), "header value")
        arr[i].name, arr[i].name_len = n, len(n)
        arr[i].value, arr[i].value_len = v, len(v)
    return arr, len(pairs)


def _addr(host: str, port: int) -> bytes:
    host = host.strip("[]")
    text = f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"
    return text.encode()


def _free_native(server_ptr: Optional[int], config_ptr: Optional[int], grace_ms: int) -> int:
    """Stops and frees the C objects; returns the result of ``wsb_server_free``."""
    if config_ptr:
        lib.wsb_config_free(config_ptr)
    if not server_ptr:
        return _ffi.WSB_OK
    lib.wsb_server_stop(server_ptr, grace_ms)  # NOT_RUNNING when never started: fine
    return lib.wsb_server_free(server_ptr)


class Subscription:
    """A host subscription made with :meth:`Server.subscribe`; :meth:`cancel` ends it."""

    def __init__(self, server: "Server", pattern: str, callback: Optional[MessageCallback]) -> None:
        self._server: Optional[Server] = server
        self.pattern = pattern
        self.callback = callback
        #: The broker's subscription id (``Message.subscription``); ``None`` before start.
        self.id: Optional[int] = None
        self._slot: Optional[int] = None
        self._token: Optional[int] = None

    @property
    def active(self) -> bool:
        return self._server is not None

    def cancel(self) -> None:
        """Ends the subscription (idempotent; a no-op once the server is closed)."""
        server, self._server = self._server, None
        if server is not None:
            server._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<wsbroker.Subscription {self.pattern!r} id={self.id} active={self.active}>"


class _AppRoute:
    __slots__ = ("pattern", "handler", "slot", "token")

    def __init__(self, pattern: str, handler: AppHandler) -> None:
        self.pattern = pattern
        self.handler = handler
        self.slot: Optional[int] = None
        self.token: Optional[int] = None


class Server:
    """An embedded WebSocket/STOMP broker (a ``wsb_server``).

    The C server is created and bound by :meth:`start` (or ``with``); ``port`` is valid after
    that. ``on_connect``/``on_subscribe`` must be set before start (constructor keywords or
    attributes). See the package docstring for the delivery modes.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/ws",
        tcp_port: Optional[int] = None,
        *,
        tcp_host: Optional[str] = None,
        mode: str = "poll",
        heartbeat_ms: Union[int, Tuple[int, int], None] = None,
        max_frame_size: Optional[int] = None,
        max_connections: Optional[int] = None,
        app_prefixes: Optional[Sequence[str]] = None,
        allowed_origins: Optional[Sequence[str]] = None,
        defer_connect: bool = False,
        defer_subscribe: bool = False,
        decision_timeout_ms: Optional[int] = None,
        event_queue_capacity: Optional[int] = None,
        overflow: str = "drop_newest",
        max_queue_depth: Optional[int] = None,
        outbound_limits: Optional[Tuple[int, int]] = None,
        worker_threads: Optional[int] = None,
        sockjs_path: Optional[str] = "/sockjs",
        sockjs_heartbeat_ms: int = 0,
        sockjs_disconnect_delay_ms: int = 0,
        sockjs_response_limit: int = 0,
        sockjs_websocket: bool = True,
        sockjs_cookie_needed: bool = False,
        static_dir: Optional[str] = None,
        permessage_deflate: bool = True,
        deflate_threshold: int = 256,
        deflate_level: int = 0,
        on_connect: Optional[ConnectHandler] = None,
        on_subscribe: Optional[SubscribeHandler] = None,
        on_upgrade: Optional[UpgradeHandler] = None,
        on_event: Optional[Callable[[Event], Any]] = None,
        on_wake: Optional[Callable[[], Any]] = None,
        relay: Optional[str] = None,
        relay_login: Optional[Tuple[str, str]] = None,
        relay_system_login: Optional[Tuple[str, str]] = None,
        relay_vhost: Optional[str] = None,
        relay_heartbeat_ms: Union[int, Tuple[int, int], None] = None,
        relay_prefixes: Optional[Sequence[str]] = None,
        relay_session_restore: bool = False,
    ) -> None:
        if mode not in _MODES:
            raise InvalidArgument(f"mode must be 'poll' or 'callback', not {mode!r}")
        if overflow not in _OVERFLOW:
            raise InvalidArgument(f"overflow must be 'drop_newest' or 'drop_oldest', not {overflow!r}")
        self.host = host
        self.path = path
        self.mode = mode
        self._defer_connect = bool(defer_connect)
        self._defer_subscribe = bool(defer_subscribe)
        self._on_connect: Optional[ConnectHandler] = on_connect
        self._on_subscribe: Optional[SubscribeHandler] = on_subscribe
        if on_upgrade is not None and not callable(on_upgrade):
            raise TypeError("on_upgrade must be callable")
        self._on_upgrade: Optional[UpgradeHandler] = on_upgrade
        self._upgrade_slot: Optional[int] = None
        #: Called with every event in callback mode (on a runtime thread), after the built-in
        #: handling (on_connect, on_subscribe, handlers). Ignored in poll mode, where
        #: ``poll()``/``aevents()`` return the events.
        self.on_event: Optional[Callable[[Event], Any]] = on_event
        #: Poll mode: called on a runtime thread when the event queue becomes non-empty (quick,
        #: must not block): schedule a ``poll()`` from your own loop.
        self.on_wake: Optional[Callable[[], Any]] = on_wake

        self._cond = threading.Condition(threading.RLock())
        self._poll_lock = threading.Lock()
        self._state = "new"  # new -> running -> closed
        self._closing = False
        self._active = 0
        self._ptr: Optional[int] = None
        self._config: Optional[int] = None
        self._port: Optional[int] = None
        self._tcp_port: Optional[int] = None
        self._events_buf: Any = None
        self._app_routes: List[_AppRoute] = []
        self._subs: Dict[int, Subscription] = {}  # by id (running) or by id(obj) (pending)
        self._pending_subs: List[Subscription] = []
        # Raw endpoints added before start: (path, behaviour, subprotocols, policy, max size).
        self._pending_raw: List[Tuple[bytes, int, bytes, int, int]] = []
        self._slots: Dict[int, Any] = {}  # slot -> what it serves (to release if C never drops)
        # Routes and subscriptions that C calls back for, by an integer token: the global slot
        # table refers to them only through the token and a weak reference to the server.
        self._by_token: Dict[int, Any] = {}
        self._tokens = itertools.count(1)
        self._errors: Deque[BaseException] = collections.deque(maxlen=ERROR_HISTORY)
        self._pending_errors: List[BaseException] = []
        self._async_waker: Optional[Callable[[], None]] = None
        self._tasks: "set[asyncio.Task[Any]]" = set()

        cfg = c_void_p()
        check(lib.wsb_config_new(byref(cfg)), "wsb_config_new")
        self._config = cfg.value
        try:
            self._configure(
                host, port, path, tcp_port, tcp_host, heartbeat_ms, max_frame_size, max_connections,
                app_prefixes, allowed_origins, decision_timeout_ms, event_queue_capacity, overflow,
                max_queue_depth, outbound_limits, worker_threads,
            )
            if relay is not None:
                self._configure_relay(relay, relay_login, relay_system_login, relay_vhost,
                                      relay_heartbeat_ms, relay_prefixes, relay_session_restore)
            self._configure_http(
                sockjs_path, sockjs_heartbeat_ms, sockjs_disconnect_delay_ms, sockjs_response_limit,
                sockjs_websocket, sockjs_cookie_needed, static_dir,
            )
            # permessage-deflate (RFC 7692): level 0 keeps the default (6).
            check(lib.wsb_config_set_permessage_deflate(
                self._config, bool(permessage_deflate), int(deflate_threshold), int(deflate_level),
            ), "permessage_deflate")
        except BaseException:
            lib.wsb_config_free(self._config)
            self._config = None
            self._state = "closed"
            raise

    # -----------------------------------------------------------------------------------------
    # configuration and lifecycle

    def _configure(
        self, host: str, port: int, path: str, tcp_port: Optional[int], tcp_host: Optional[str],
        heartbeat_ms: Union[int, Tuple[int, int], None], max_frame_size: Optional[int],
        max_connections: Optional[int], app_prefixes: Optional[Sequence[str]],
        allowed_origins: Optional[Sequence[str]], decision_timeout_ms: Optional[int],
        event_queue_capacity: Optional[int], overflow: str, max_queue_depth: Optional[int],
        outbound_limits: Optional[Tuple[int, int]], worker_threads: Optional[int],
    ) -> None:
        c = self._config

        def s(fn: Any, value: bytes, what: str) -> None:
            check(fn(c, value, len(value)), what)

        s(lib.wsb_config_set_listen, _addr(host, port), "listen address")
        s(lib.wsb_config_set_path, _enc(path, "path"), "path")
        if tcp_port is not None:
            s(lib.wsb_config_set_tcp_listen, _addr(tcp_host or host, tcp_port), "tcp listen address")
        for origin in allowed_origins or ():
            s(lib.wsb_config_add_allowed_origin, _enc(origin, "origin"), "allowed origin")
        for prefix in app_prefixes or ():
            s(lib.wsb_config_add_app_prefix, _enc(prefix, "app prefix"), "app prefix")
        if heartbeat_ms is not None:
            send, receive = (heartbeat_ms, heartbeat_ms) if isinstance(heartbeat_ms, int) else heartbeat_ms
            check(lib.wsb_config_set_heartbeat(c, int(send), int(receive)), "heartbeat")
        if max_frame_size is not None:
            check(lib.wsb_config_set_max_frame_size(c, int(max_frame_size)), "max_frame_size")
        if max_connections is not None:
            check(lib.wsb_config_set_max_connections(c, int(max_connections)), "max_connections")
        if outbound_limits is not None:
            check(lib.wsb_config_set_outbound_limits(c, int(outbound_limits[0]), int(outbound_limits[1])),
                  "outbound_limits")
        if max_queue_depth is not None:
            check(lib.wsb_config_set_max_queue_depth(c, int(max_queue_depth)), "max_queue_depth")
        if worker_threads is not None:
            check(lib.wsb_config_set_worker_threads(c, int(worker_threads)), "worker_threads")
        if decision_timeout_ms is not None:
            check(lib.wsb_config_set_decision_timeout(c, int(decision_timeout_ms)), "decision_timeout_ms")
        check(lib.wsb_config_set_delivery_mode(c, _MODES[self.mode]), "mode")
        if event_queue_capacity is not None or overflow != "drop_newest":
            capacity = 65536 if event_queue_capacity is None else int(event_queue_capacity)
            check(lib.wsb_config_set_event_queue(c, capacity, _OVERFLOW[overflow]), "event queue")

    def _configure_relay(
        self, broker: str, login: Optional[Tuple[str, str]], system_login: Optional[Tuple[str, str]],
        vhost: Optional[str], heartbeat_ms: Union[int, Tuple[int, int], None],
        prefixes: Optional[Sequence[str]], session_restore: bool,
    ) -> None:
        """Relay mode (``relay="host:port"``): relayed destinations live on an external STOMP
        broker such as RabbitMQ; ``relay_login``/``relay_system_login`` are (login, passcode)
        pairs of the client sessions' and the system connection (default guest/guest)."""
        c = self._config
        b = _enc(broker, "relay")
        check(lib.wsb_config_set_relay(c, b, len(b)), "relay")
        for fn, pair, what in ((lib.wsb_config_set_relay_credentials, login, "relay_login"),
                               (lib.wsb_config_set_relay_system_credentials, system_login,
                                "relay_system_login")):
            if pair is not None:
                user, passcode = _enc(pair[0], what), _enc(pair[1], what)
                check(fn(c, user, len(user), passcode, len(passcode)), what)
        if vhost is not None:
            v = _enc(vhost, "relay_vhost")
            check(lib.wsb_config_set_relay_virtual_host(c, v, len(v)), "relay_vhost")
        if heartbeat_ms is not None:
            send, receive = (heartbeat_ms, heartbeat_ms) if isinstance(heartbeat_ms, int) else heartbeat_ms
            check(lib.wsb_config_set_relay_heartbeat(c, int(send), int(receive)), "relay_heartbeat_ms")
        if prefixes is not None:
            check(lib.wsb_config_clear_relay_prefixes(c), "relay_prefixes")
            for prefix in prefixes:
                p = _enc(prefix, "relay prefix")
                check(lib.wsb_config_add_relay_prefix(c, p, len(p)), "relay_prefixes")
        check(lib.wsb_config_set_relay_session_restore(c, bool(session_restore)), "relay_session_restore")
    def _configure_http(
        self, sockjs_path: Optional[str], heartbeat_ms: int, disconnect_delay_ms: int,
        response_limit: int, websocket: bool, cookie_needed: bool, static_dir: Optional[str],
    ) -> None:
        """SockJS (``sockjs_path`` None or "" turns it off; 0 keeps a limit's default) and the
        static files served on the WebSocket listener."""
        c = self._config
        path = _enc(sockjs_path or "", "sockjs_path")
        check(lib.wsb_config_set_sockjs_path(c, path, len(path)), "sockjs_path")
        check(lib.wsb_config_set_sockjs_limits(c, int(heartbeat_ms), int(disconnect_delay_ms),
                                               int(response_limit)), "sockjs limits")
        check(lib.wsb_config_set_sockjs_options(c, bool(websocket), bool(cookie_needed)), "sockjs options")
        if static_dir is not None:
            d = _enc(os.fspath(static_dir), "static_dir")
            check(lib.wsb_config_set_static_dir(c, d, len(d)), "static_dir")

    def start(self) -> "Server":
        """Creates the C server, registers handlers and subscriptions made so far, and binds
        the listeners (synchronously: :class:`AddressInUse` is raised here). Returns ``self``."""
        with self._cond:
            if self._state != "new":
                raise AlreadyStarted("server already started" if self._state == "running" else "server is closed")
            cfg = self._config
            try:
                defer_connect = self._defer_connect or self._on_connect is not None
                defer_subscribe = self._defer_subscribe or self._on_subscribe is not None
                check(lib.wsb_config_set_defer(cfg, defer_connect, defer_subscribe), "defer")
                if self.mode == "poll":
                    slot = self._new_slot(_callbacks.ServerSlot(self, "_on_wake"))
                    check(lib.wsb_config_set_wake_callback(cfg, _callbacks.wake, _callbacks.user_data(slot),
                                                           _callbacks.drop), "wake callback")
                else:
                    slot = self._new_slot(_callbacks.ServerSlot(self, "_on_event_cb"))
                    check(lib.wsb_config_set_event_callback(cfg, _callbacks.event, _callbacks.user_data(slot),
                                                            _callbacks.drop), "event callback")
                out = c_void_p()
                check(lib.wsb_server_new(cfg, byref(out)), "wsb_server_new")
                self._ptr = out.value
                lib.wsb_config_free(cfg)  # the callbacks were moved into the server
                self._config = None
                if self._on_upgrade is not None:
                    self._register_upgrade()
                for route in list(self._app_routes):
                    self._register_app(route)
                pending, self._pending_subs = self._pending_subs, []
                for sub in pending:
                    self._register_sub(sub)
                raw_endpoints, self._pending_raw = self._pending_raw, []
                for args in raw_endpoints:
                    self._add_raw(self._ptr, args)
                check(lib.wsb_server_start(self._ptr), "start")
                port = c_uint16()
                check(lib.wsb_server_local_port(self._ptr, byref(port)), "local port")
                self._port = port.value
                if lib.wsb_server_tcp_port(self._ptr, byref(port)) == _ffi.WSB_OK:
                    self._tcp_port = port.value
            except BaseException:
                ptr, self._ptr = self._ptr, None
                cfg, self._config = self._config, None
                _free_native(ptr, cfg, 0)
                self._state = "closed"
                self._clear_python_state()
                raise
            self._state = "running"
            _live_servers.add(self)
        return self

    def close(self, grace: float = 1.0, *, raise_errors: bool = True) -> None:
        """Stops the server (closing client connections within ``grace`` seconds) and frees it.

        Idempotent. Afterwards every callback has been released. Raises :class:`CallbackError`
        for callback exceptions not yet re-raised (unless ``raise_errors`` is false), and
        :class:`CalledFromCallback` when called from inside a wsbroker callback.
        """
        if _callbacks.in_callback():
            raise CalledFromCallback("close() cannot be called from inside a wsbroker callback")
        with self._cond:
            while self._closing:  # another thread is closing: wait for it to finish
                self._cond.wait(0.05)
            if self._state == "closed":
                ptr = cfg = None
                owner = False
            else:
                owner = True
                self._closing = True
                while self._active > 0:  # calls in flight finish first (none of them blocks)
                    self._cond.wait(0.05)
                ptr, self._ptr = self._ptr, None
                cfg, self._config = self._config, None
        if owner:
            # Without the lock: callbacks still running on the library's threads may need it.
            try:
                code = _free_native(ptr, cfg, max(0, int(grace * 1000)))
                if code == _ffi.WSB_ERR_CALLED_FROM_CALLBACK:
                    # On one of the library's own threads (e.g. garbage collection inside a
                    # callback): free from a helper thread instead.
                    _free_elsewhere(ptr)
                elif code != _ffi.WSB_OK:
                    log.warning("wsbroker: wsb_server_free failed: %s", error_for(code))
            finally:
                with self._cond:
                    self._state = "closed"
                    self._closing = False
                    self._clear_python_state()
                    self._cond.notify_all()
                _live_servers.discard(self)
        waker = self._async_waker
        if waker is not None:
            waker()
        if raise_errors:
            self._raise_pending()

    def _clear_python_state(self) -> None:
        for slot in list(self._slots):
            _callbacks.release(slot)
        self._slots.clear()
        self._by_token.clear()
        self._app_routes.clear()
        for sub in list(self._subs.values()) + self._pending_subs:
            sub._server = None
        self._subs.clear()
        self._pending_subs.clear()
        self._pending_raw.clear()
        self._on_connect = None
        self._on_subscribe = None
        self._on_upgrade = None
        self.on_event = None
        self.on_wake = None
        self._events_buf = None

    def __enter__(self) -> "Server":
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(raise_errors=exc_type is None)

    def __del__(self) -> None:
        try:
            if getattr(self, "_state", "closed") == "closed":
                return
            if _callbacks.in_callback():
                ptr, self._ptr = self._ptr, None
                cfg, self._config = self._config, None
                self._state = "closed"
                if cfg:
                    lib.wsb_config_free(cfg)
                _free_elsewhere(ptr)
                return
            self.close(raise_errors=False)
        except BaseException:  # noqa: BLE001 - never raise from a finalizer
            pass

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def port(self) -> int:
        """The bound WebSocket port (after start)."""
        if self._port is None:
            raise NotRunning("server not started: call start() or use `with`")
        return self._port

    @property
    def tcp_port(self) -> Optional[int]:
        """The bound plain-TCP STOMP port, or ``None`` when that listener is off."""
        if self._port is None:
            raise NotRunning("server not started: call start() or use `with`")
        return self._tcp_port

    @property
    def url(self) -> str:
        """``ws://host:port/path`` of the WebSocket endpoint (after start)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.path}"

    def __repr__(self) -> str:
        where = f" {self.url}" if self._port is not None else ""
        return f"<wsbroker.Server {self._state} mode={self.mode}{where}>"

    # -----------------------------------------------------------------------------------------
    # calling into C safely: the handle is freed only once no call is using it

    def _acquire(self) -> int:
        with self._cond:
            if self._ptr is None or self._closing or self._state != "running":
                raise NotRunning("server is closed" if self._state == "closed" else "server not started")
            self._active += 1
            return self._ptr

    def _release(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def _call(self, what: str, fn: Any, *args: Any) -> None:
        ptr = self._acquire()
        try:
            code = fn(ptr, *args)
        finally:
            self._release()
        if code != _ffi.WSB_OK:
            raise error_for(code, what)

    def _new_slot(self, target: Any) -> int:
        slot = _callbacks.register(target)
        self._slots[slot] = target
        return slot

    # -----------------------------------------------------------------------------------------
    # publishing (any thread, never blocks)

    def publish(self, destination: str, body: Body = b"", headers: Headers = None) -> None:
        """Publishes to a destination (topic, queue or ``/user/{name}/...``).
        Raises :class:`Backpressure` when a queue destination is full."""
        d = _enc(destination, "destination")
        b = _body(body)
        arr, n = _headers(headers)
        self._call(f"publish to {destination}", lib.wsb_server_publish, d, len(d), arr, n, b, len(b))

    def send_to_user(self, user: str, destination: str, body: Body = b"", headers: Headers = None) -> None:
        """Sends to every session of ``user`` subscribed to ``/user{destination}``."""
        u = _enc(user, "user")
        d = _enc(destination, "destination")
        b = _body(body)
        arr, n = _headers(headers)
        self._call(f"send to user {user}", lib.wsb_server_send_to_user, u, len(u), d, len(d), arr, n, b, len(b))

    def send_to_session(self, session: int, destination: str, body: Body = b"", headers: Headers = None) -> None:
        """Sends to the subscriptions of one session that match ``destination``, written as
        that session subscribed (e.g. a reply from an application handler)."""
        d = _enc(destination, "destination")
        b = _body(body)
        arr, n = _headers(headers)
        self._call(f"send to session {session}", lib.wsb_server_send_to_session, int(session), d, len(d), arr, n,
                   b, len(b))

    def disconnect(self, session: int, reason: str = "disconnected by the server") -> None:
        """Closes a session with an ERROR frame carrying ``reason``."""
        r = _enc(reason, "reason")
        self._call(f"disconnect session {session}", lib.wsb_server_disconnect, int(session), r, len(r))

    # -----------------------------------------------------------------------------------------
    # raw WebSocket mode (no STOMP)

    def add_raw_endpoint(
        self,
        path: str,
        behaviour: str = "host",
        *,
        subprotocols: Sequence[str] = (),
        slow_consumer_policy: Optional[str] = None,
        max_message_size: Optional[int] = None,
    ) -> None:
        """Registers a raw WebSocket endpoint at ``path`` (before or after start).

        ``behaviour``: ``"host"`` (client messages arrive as :class:`RawMessageEvent`),
        ``"broadcast"`` (each message goes to every other client of the endpoint, inside the
        server) or ``"echo"`` (back to its sender). ``subprotocols``: accepted in preference
        order (none by default). ``slow_consumer_policy``: ``"disconnect"``, ``"drop_oldest"``
        or ``"drop_newest"`` (default: the server's). ``max_message_size``: largest client
        message (default: the server's limit). Every raw endpoint reports
        :class:`RawOpenEvent` and :class:`RawCloseEvent`.
        """
        if behaviour not in _RAW_BEHAVIOURS:
            raise InvalidArgument(f"behaviour must be 'host', 'broadcast' or 'echo', not {behaviour!r}")
        if slow_consumer_policy is not None and slow_consumer_policy not in _SLOW_CONSUMER:
            raise InvalidArgument(
                f"slow_consumer_policy must be one of {sorted(_SLOW_CONSUMER)}, not {slow_consumer_policy!r}"
            )
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        args = (
            _enc(path, "path"),
            _RAW_BEHAVIOURS[behaviour],
            _enc(",".join(subprotocols), "subprotocols"),
            _ffi.WSB_RAW_POLICY_SERVER if slow_consumer_policy is None else _SLOW_CONSUMER[slow_consumer_policy],
            int(max_message_size or 0),
        )
        with self._cond:
            if self._state == "new":
                self._pending_raw.append(args)
                return
        ptr = self._acquire()
        try:
            self._add_raw(ptr, args)
        finally:
            self._release()

    @staticmethod
    def _add_raw(ptr: int, args: Tuple[bytes, int, bytes, int, int]) -> None:
        path, behaviour, protocols, policy, max_size = args
        code = lib.wsb_server_add_raw_endpoint(
            ptr, path, len(path), behaviour, protocols or None, len(protocols), policy, max_size
        )
        if code != _ffi.WSB_OK:
            raise error_for(code, f"add raw endpoint {path.decode('utf-8', 'replace')}")

    def raw_subscribe(self, conn: int, topic: str) -> bool:
        """Subscribes raw connection ``conn`` to ``topic`` (exact name); False if it already was."""
        t = _enc(topic, "topic")
        added = ctypes.c_uint32()
        self._call(f"raw subscribe {conn}", lib.wsb_server_raw_subscribe, int(conn), t, len(t), byref(added))
        return bool(added.value)

    def raw_unsubscribe(self, conn: int, topic: str) -> bool:
        """Unsubscribes raw connection ``conn`` from ``topic``; False if it was not subscribed."""
        t = _enc(topic, "topic")
        removed = ctypes.c_uint32()
        self._call(f"raw unsubscribe {conn}", lib.wsb_server_raw_unsubscribe, int(conn), t, len(t), byref(removed))
        return bool(removed.value)

    def raw_publish(self, topic: str, data: Body, binary: Optional[bool] = None) -> int:
        """Sends ``data`` to every raw connection subscribed to ``topic``; returns how many
        queued it. ``binary`` defaults to False for ``str`` data, True for bytes."""
        t = _enc(topic, "topic")
        b = _body(data)
        flag = _binary_flag(data, binary)
        receivers = c_size_t()
        self._call(f"raw publish to {topic}", lib.wsb_server_raw_publish, t, len(t), b, len(b), flag,
                   byref(receivers))
        return receivers.value

    def raw_send(self, conn: int, data: Body, binary: Optional[bool] = None) -> None:
        """Sends ``data`` to raw connection ``conn`` (:class:`Backpressure` when it is not
        queued). ``binary`` defaults to False for ``str`` data, True for bytes."""
        b = _body(data)
        self._call(f"raw send to {conn}", lib.wsb_server_raw_send, int(conn), b, len(b), _binary_flag(data, binary))

    def raw_close(self, conn: int, code: int = 1000, reason: str = "") -> None:
        """Closes raw connection ``conn`` with a WebSocket close ``code`` and ``reason``."""
        if not 0 <= int(code) <= 0xFFFF:
            raise InvalidArgument(f"close code {code} is out of range")
        r = _enc(reason, "reason")
        self._call(f"raw close {conn}", lib.wsb_server_raw_close, int(conn), int(code), r or None, len(r))

    def raw_set_user_data(self, conn: int, value: int) -> None:
        """Attaches an unsigned 64-bit integer to raw connection ``conn``."""
        if not 0 <= int(value) < 1 << 64:
            raise InvalidArgument("user data must fit in an unsigned 64-bit integer")
        self._call(f"raw set user data {conn}", lib.wsb_server_raw_set_user_data, int(conn), int(value))

    def raw_user_data(self, conn: int) -> int:
        """The integer attached to raw connection ``conn`` (0 until set)."""
        value = c_uint64()
        self._call(f"raw user data {conn}", lib.wsb_server_raw_user_data, int(conn), byref(value))
        return value.value

    def raw_buffered_bytes(self, conn: int) -> int:
        """Bytes queued for raw connection ``conn`` and not yet written to its socket."""
        value = c_size_t()
        self._call(f"raw buffered bytes {conn}", lib.wsb_server_raw_buffered_bytes, int(conn), byref(value))
        return value.value

    # -----------------------------------------------------------------------------------------
    # decisions

    def accept(self, session: int, user: Optional[str] = None) -> None:
        """Accepts a deferred CONNECT, optionally as ``user``."""
        u = _enc(user, "user") if user is not None else None
        self._call(f"accept session {session}", lib.wsb_server_accept, int(session), u, len(u or b""))

    def reject(self, session: int, message: str = "connection refused") -> None:
        """Rejects a deferred CONNECT; the client gets an ERROR frame with ``message``."""
        m = _enc(message, "message")
        self._call(f"reject session {session}", lib.wsb_server_reject, int(session), m, len(m))

    def answer_subscribe(self, session: int, allow: bool, message: str = "") -> None:
        """Answers a deferred SUBSCRIBE; refused ones get an ERROR frame with ``message``."""
        m = _enc(message, "message")
        self._call(f"answer subscribe of session {session}", lib.wsb_server_answer_subscribe, int(session),
                   bool(allow), m, len(m))

    @property
    def on_connect(self) -> Optional[ConnectHandler]:
        """Decides on every CONNECT (set before start). Called with a :class:`ConnectEvent`;
        returns ``True`` (accept as the login), a ``str`` (accept as that user), an
        :class:`Accept`, ``False`` or a :class:`Reject` (refuse), or ``None`` (undecided: call
        :meth:`accept`/:meth:`reject` later, else the client is refused after the decision
        timeout). May be ``async`` under :meth:`aevents`."""
        return self._on_connect

    @on_connect.setter
    def on_connect(self, fn: Optional[ConnectHandler]) -> None:
        self._set_before_start("on_connect", fn)
        self._on_connect = fn

    @property
    def on_subscribe(self) -> Optional[SubscribeHandler]:
        """Authorizes every SUBSCRIBE (set before start): ``True``/``None`` allow, ``False``
        or a :class:`Reject` refuse."""
        return self._on_subscribe

    @on_subscribe.setter
    def on_subscribe(self, fn: Optional[SubscribeHandler]) -> None:
        self._set_before_start("on_subscribe", fn)
        self._on_subscribe = fn

    @property
    def on_upgrade(self) -> Optional[UpgradeHandler]:
        """Decides on every WebSocket upgrade request, before the STOMP CONNECT (browsers cannot
        set headers, so this is where a cookie or a ``?token=`` query is checked). Called with
        an :class:`UpgradeRequest` (path, query, ``header()``, ``cookie()``,
        ``query_param()``, remote_addr); returns ``None``/``True`` (accept), a ``str`` or an
        :class:`Accept` (accept as that principal: the STOMP session's user unless
        ``on_connect`` names another), ``False`` or a :class:`Reject` ``(reason, status=401)``
        (refuse with HTTP 401/403); raising :class:`Reject` refuses too, any other exception
        refuses with 403 and is collected as a callback error.

        In both modes it runs synchronously on a runtime thread while the handshake waits (an
        upgrade cannot wait for ``poll()``): keep it quick. May be set or replaced at any time
        (``None`` removes it); plain-TCP STOMP connections are not asked."""
        return self._on_upgrade

    @on_upgrade.setter
    def on_upgrade(self, fn: Optional[UpgradeHandler]) -> None:
        if fn is not None and not callable(fn):
            raise TypeError("on_upgrade must be callable")
        with self._cond:
            if self._state == "closed" or self._closing:
                raise NotRunning("server is closed")
            self._on_upgrade = fn
            if self._state == "running":
                self._acquire()
                try:
                    self._register_upgrade()
                finally:
                    self._release()

    def _register_upgrade(self) -> None:
        """Registers (or, with no handler, removes) the C upgrade callback; C drops the slot of
        the one it replaces."""
        slot: Optional[int] = None
        if self._on_upgrade is None:
            code = lib.wsb_server_set_upgrade_callback(self._ptr, _callbacks.NULL_UPGRADE, None,
                                                       _callbacks.NULL_DROP)
        else:
            slot = self._new_slot(_callbacks.ServerSlot(self, "_on_upgrade_cb"))
            code = lib.wsb_server_set_upgrade_callback(self._ptr, _callbacks.upgrade,
                                                       _callbacks.user_data(slot), _callbacks.drop)
        if code != _ffi.WSB_OK:
            if slot is not None:  # not registered: C will not drop it
                _callbacks.release(slot)
                self._slots.pop(slot, None)
            raise error_for(code, "upgrade callback")
        old, self._upgrade_slot = self._upgrade_slot, slot
        self._slots.pop(old, None)  # released by C's drop

    def _on_upgrade_cb(self, _key: Any, request: int, decision: int) -> None:
        fn = self._on_upgrade
        if fn is None:  # removed while this handshake was in flight
            _upgrade.apply(decision, None)
            return
        req = UpgradeRequest(request)
        try:
            try:
                result = fn(req)
                if inspect.isawaitable(result):
                    if inspect.iscoroutine(result):
                        result.close()
                    raise TypeError("on_upgrade must not be async: the handshake waits for its answer")
            except Reject as refusal:
                result = refusal
            _upgrade.apply(decision, result)
        except BaseException as exc:  # noqa: BLE001 - the decision stays unset: refused (403)
            self._record(exc, "on_upgrade")
        finally:
            req._invalidate()

    def _set_before_start(self, name: str, fn: Any) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable")
        if self._state != "new":
            raise AlreadyStarted(
                f"{name} must be set before start() (it turns on deferred decisions in the C "
                f"configuration): pass {name}=... to Server() or set it before `with`/start()"
            )

    # -----------------------------------------------------------------------------------------
    # application handlers and host subscriptions

    def app_handler(self, pattern: str) -> Callable[[AppHandler], AppHandler]:
        """Decorator: SENDs to application destinations matching ``pattern`` (e.g.
        ``/app/chat`` or ``/app/**``) call the function with a :class:`Message`.

        Poll mode: it runs inside ``poll()``/``aevents()`` (may be ``async`` there).
        Callback mode: it runs on a runtime thread before the SEND is acknowledged. Returning
        or raising :class:`Reject` refuses the message (the client gets an ERROR frame); any
        other exception does too, and is collected as a callback error.
        """

        def register(fn: AppHandler) -> AppHandler:
            self.handle_app(pattern, fn)
            return fn

        return register

    def handle_app(self, pattern: str, handler: AppHandler) -> None:
        """Registers (or replaces) the handler of an application destination pattern."""
        if not callable(handler):
            raise TypeError("handler must be callable")
        _enc(pattern, "pattern")
        with self._cond:
            if self._state == "closed" or self._closing:
                raise NotRunning("server is closed")
            self._forget_routes(pattern)
            route = _AppRoute(pattern, handler)
            self._app_routes.append(route)
            if self._state == "running":
                self._acquire()
                try:
                    self._register_app(route)
                finally:
                    self._release()

    def _register_app(self, route: _AppRoute) -> None:
        p = route.pattern.encode()
        if self.mode == "callback":
            token = next(self._tokens)
            self._by_token[token] = route
            route.token = token
            route.slot = self._new_slot(_callbacks.ServerSlot(self, "_on_app_cb", token, dead="the server is closed"))
            code = lib.wsb_server_handle_app(self._ptr, p, len(p), _callbacks.app,
                                             _callbacks.user_data(route.slot), _callbacks.drop)
        else:
            code = lib.wsb_server_handle_app(self._ptr, p, len(p), _callbacks.NULL_APP, None,
                                             _callbacks.NULL_DROP)
        if code != _ffi.WSB_OK:
            self._app_routes = [r for r in self._app_routes if r is not route]
            self._by_token.pop(route.token, None)
            raise error_for(code, f"app handler {route.pattern}")

    def _forget_routes(self, pattern: str) -> None:
        for r in self._app_routes:
            if r.pattern == pattern:
                self._by_token.pop(r.token, None)
                self._slots.pop(r.slot, None)  # C drops the slot itself
        self._app_routes = [r for r in self._app_routes if r.pattern != pattern]

    def remove_app(self, pattern: str) -> None:
        """Removes the handler of ``pattern`` (:class:`NotFound` when there is none)."""
        with self._cond:
            before = len(self._app_routes)
            self._forget_routes(pattern)
            if self._state == "running":
                p = _enc(pattern, "pattern")
                self._call(f"remove app handler {pattern}", lib.wsb_server_remove_app, p, len(p))
            elif before == len(self._app_routes):
                from ._errors import NotFound

                raise NotFound(f"no application handler for {pattern}")

    def subscribe(self, pattern: str, callback: Optional[MessageCallback] = None) -> Subscription:
        """Subscribes the host to ``pattern`` (wildcards as for clients); every matching
        message (broadcast or queued, without consuming it) calls ``callback(message)``.

        Poll mode: the callback runs inside ``poll()``/``aevents()``; without a callback the
        messages are just returned by them. Callback mode: it runs on the publishing thread
        (a runtime thread for client SENDs, yours for :meth:`publish`).
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        _enc(pattern, "pattern")
        sub = Subscription(self, pattern, callback)
        with self._cond:
            if self._state == "closed" or self._closing:
                raise NotRunning("server is closed")
            if self._state == "running":
                self._acquire()
                try:
                    self._register_sub(sub)
                finally:
                    self._release()
            else:
                self._pending_subs.append(sub)
        return sub

    def _register_sub(self, sub: Subscription) -> None:
        p = sub.pattern.encode()
        out = c_uint64()
        if self.mode == "callback" and sub.callback is not None:
            token = next(self._tokens)
            self._by_token[token] = sub
            sub._token = token
            sub._slot = self._new_slot(_callbacks.ServerSlot(self, "_on_sub_cb", token))
            code = lib.wsb_server_subscribe(self._ptr, p, len(p), _callbacks.event,
                                            _callbacks.user_data(sub._slot), _callbacks.drop, byref(out))
        else:
            code = lib.wsb_server_subscribe(self._ptr, p, len(p), _callbacks.NULL_EVENT, None,
                                            _callbacks.NULL_DROP, byref(out))
        if code != _ffi.WSB_OK:
            if sub._slot:
                _callbacks.release(sub._slot)
                self._slots.pop(sub._slot, None)
            self._by_token.pop(sub._token, None)
            sub._server = None
            raise error_for(code, f"subscribe {sub.pattern}")
        sub.id = out.value
        self._subs[sub.id] = sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._cond:
            if sub in self._pending_subs:
                self._pending_subs.remove(sub)
                return
            if sub.id is None or self._subs.get(sub.id) is not sub:
                return
            del self._subs[sub.id]
            if self._state == "running":
                self._call(f"unsubscribe {sub.pattern}", lib.wsb_server_unsubscribe, sub.id)
            self._by_token.pop(sub._token, None)
            if sub._slot:
                self._slots.pop(sub._slot, None)  # C drops the slot itself

    # -----------------------------------------------------------------------------------------
    # poll mode

    def poll(self, timeout: Optional[float] = 0.0, max_events: int = 256) -> List[Event]:
        """Poll mode: takes up to ``max_events`` events, waiting up to ``timeout`` seconds for
        the first (0: don't wait; ``None``: until one arrives or the server closes).

        Events are copied out of C memory. Handlers run here, before the list is returned:
        ``on_connect``, ``on_subscribe``, app handlers and host-subscription callbacks.
        Raises :class:`CallbackError` first if callbacks raised since the last call.
        """
        self._raise_pending()
        events, _ = self._poll_dispatch(timeout, max_events, spawn=None)
        return events

    def _poll_raw(self, timeout: Optional[float], max_events: int) -> List[Event]:
        if self.mode != "poll":
            raise InvalidArgument("poll() needs mode='poll' (this server delivers events by callback)")
        if max_events <= 0:
            raise InvalidArgument("max_events must be positive")
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._poll_lock:
            if self._events_buf is None or len(self._events_buf) < max_events:
                self._events_buf = (_ffi.WsbEvent * max_events)()
            buf = self._events_buf
            count = c_size_t()
            while True:
                if deadline is None:
                    wait_ms = POLL_SLICE_MS
                else:
                    wait_ms = int(min(POLL_SLICE_MS, max(0.0, deadline - time.monotonic()) * 1000))
                try:
                    ptr = self._acquire()
                except NotRunning:
                    if self._state == "closed":
                        return []  # closed while waiting (or before): nothing more will come
                    raise
                try:
                    if wait_ms > 0:
                        code = lib.wsb_server_poll_timeout(ptr, buf, max_events, wait_ms, byref(count))
                    else:
                        code = lib.wsb_server_poll(ptr, buf, max_events, byref(count))
                    if code != _ffi.WSB_OK:
                        raise error_for(code, "poll")
                    # Copy while the server is surely alive and before the next poll.
                    events = [e for e in (copy_event(buf[i]) for i in range(count.value)) if e is not None]
                finally:
                    self._release()
                if events or (deadline is not None and time.monotonic() >= deadline):
                    return events

    def _poll_dispatch(
        self, timeout: Optional[float], max_events: int, spawn: Optional[Callable[[Awaitable[Any]], None]]
    ) -> Tuple[List[Event], int]:
        events = self._poll_raw(timeout, max_events)
        for ev in events:
            self._dispatch(ev, spawn)
        return events, len(events)

    def _dispatch(self, ev: Event, spawn: Optional[Callable[[Awaitable[Any]], None]]) -> None:
        """Runs the built-in handling of one event (both modes)."""
        kind = ev.kind
        if kind == EventKind.CONNECT:
            fn = self._on_connect
            if fn is not None:
                assert isinstance(ev, ConnectEvent)
                self._run_decision(ev, fn, self._apply_connect, spawn)
        elif kind == EventKind.SUBSCRIBE:
            fn = self._on_subscribe
            if fn is not None:
                assert isinstance(ev, SubscribeEvent)
                self._run_decision(ev, fn, self._apply_subscribe, spawn)
        elif kind == EventKind.APP_MESSAGE:
            assert isinstance(ev, Message)
            route = self._route_for(ev.destination)
            if route is not None:
                self._run_app_polled(ev, route.handler, spawn)
        elif kind == EventKind.MESSAGE:
            assert isinstance(ev, Message)
            sub = self._subs.get(ev.subscription)
            if sub is not None and sub.callback is not None:
                self._run_callback(sub.callback, ev, spawn, f"subscription {sub.pattern}")

    def _route_for(self, destination: str) -> Optional[_AppRoute]:
        routes = list(self._app_routes)
        for route in routes:
            if route.pattern == destination:
                return route
        for route in routes:
            if matches(route.pattern, destination):
                return route
        return None

    # --- running user code -------------------------------------------------------------------

    def _record(self, exc: BaseException, where: str) -> None:
        log.error("wsbroker: exception in %s", where, exc_info=(type(exc), exc, exc.__traceback__))
        with self._cond:
            self._errors.append(exc)
            self._pending_errors.append(exc)

    def _raise_pending(self) -> None:
        with self._cond:
            pending, self._pending_errors = self._pending_errors, []
        if pending:
            raise CallbackError(pending)

    @property
    def callback_errors(self) -> List[BaseException]:
        """Exceptions raised by callbacks (the last 100), oldest first."""
        with self._cond:
            return list(self._errors)

    def _settle(self, result: Any, spawn: Optional[Callable[[Awaitable[Any]], None]], where: str,
                then: Callable[[Any, Optional[BaseException]], None]) -> None:
        """Passes a handler's result to ``then``; an awaitable is awaited first (in a task under
        ``aevents()``, an error in ``poll()``)."""
        if inspect.isawaitable(result):
            if spawn is None:
                if inspect.iscoroutine(result):
                    result.close()
                err = TypeError(f"{where} returned an awaitable: async handlers need aevents()")
                self._record(err, where)
                then(None, err)
                return

            async def finish() -> None:
                try:
                    value = await result
                except BaseException as e:  # noqa: BLE001
                    if not isinstance(e, Reject):
                        self._record(e, where)
                    then(None, e)
                else:
                    then(value, None)

            spawn(finish())
            return
        then(result, None)

    def _run_decision(self, ev: Any, fn: Callable[[Any], Any], apply: Callable[[Any, Any, Optional[BaseException]], None],
                      spawn: Optional[Callable[[Awaitable[Any]], None]]) -> None:
        where = "on_connect" if isinstance(ev, ConnectEvent) else "on_subscribe"
        try:
            result = fn(ev)
        except Reject as r:
            apply(ev, r, None)
            return
        except BaseException as e:  # noqa: BLE001
            self._record(e, where)
            apply(ev, None, e)
            return
        self._settle(result, spawn, where, lambda value, err: apply(ev, value, err))

    def _answer(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except (NotRunning, Error) as e:
            # The client may have gone, timed out or the server closed meanwhile: not a bug.
            log.debug("wsbroker: %s: %s", what, e)

    def _apply_connect(self, ev: ConnectEvent, value: Any, err: Optional[BaseException]) -> None:
        if isinstance(err, Reject):
            value = err
        elif err is not None:
            value = Reject("connection refused: internal error")
        if value is None:
            return  # undecided: the host answers later (or the decision timeout refuses)
        if value is True:
            self._answer("accept", self.accept, ev.session, ev.login or None)
        elif isinstance(value, str):
            self._answer("accept", self.accept, ev.session, value)
        elif isinstance(value, Accept):
            self._answer("accept", self.accept, ev.session, value.user)
        elif value is False:
            self._answer("reject", self.reject, ev.session, "connection refused")
        elif isinstance(value, Reject):
            self._answer("reject", self.reject, ev.session, value.message)
        else:
            self._record(TypeError(f"on_connect returned {value!r}: expected True, False, str, Accept or Reject"),
                         "on_connect")
            self._answer("reject", self.reject, ev.session, "connection refused: internal error")

    def _apply_subscribe(self, ev: SubscribeEvent, value: Any, err: Optional[BaseException]) -> None:
        if isinstance(err, Reject):
            value = err
        elif err is not None:
            value = Reject("subscription refused: internal error")
        if value is None or value is True:
            self._answer("answer_subscribe", self.answer_subscribe, ev.session, True, "")
        elif value is False:
            self._answer("answer_subscribe", self.answer_subscribe, ev.session, False,
                         f"subscription to {ev.destination} refused")
        elif isinstance(value, Reject):
            self._answer("answer_subscribe", self.answer_subscribe, ev.session, False, value.message)
        else:
            self._record(TypeError(f"on_subscribe returned {value!r}: expected True, False or Reject"),
                         "on_subscribe")
            self._answer("answer_subscribe", self.answer_subscribe, ev.session, False,
                         "subscription refused: internal error")

    def _run_app_polled(self, msg: Message, handler: AppHandler,
                        spawn: Optional[Callable[[Awaitable[Any]], None]]) -> None:
        where = f"app handler for {msg.destination}"

        def then(value: Any, err: Optional[BaseException]) -> None:
            refusal = _refusal_text(value, err)
            if refusal is not None:
                # The SEND was already acknowledged when it was queued: refuse like the
                # broker does, with an ERROR frame (which ends the session).
                self._answer("disconnect", self.disconnect, msg.session, f"{msg.destination} failed: {refusal}")

        try:
            result = handler(msg)
        except BaseException as e:  # noqa: BLE001
            if not isinstance(e, Reject):
                self._record(e, where)
            then(None, e)
            return
        self._settle(result, spawn, where, then)

    def _run_callback(self, fn: Callable[[Any], Any], arg: Any, spawn: Optional[Callable[[Awaitable[Any]], None]],
                      where: str) -> None:
        try:
            result = fn(arg)
        except BaseException as e:  # noqa: BLE001
            self._record(e, where)
            return
        if inspect.isawaitable(result):
            self._settle(result, spawn, where, lambda v, e: None)

    # --- entry points from the C trampolines (runtime threads) --------------------------------

    def _on_wake(self, _key: Any) -> None:
        waker = self._async_waker
        if waker is not None:
            waker()
        hook = self.on_wake
        if hook is not None:
            try:
                hook()
            except BaseException as e:  # noqa: BLE001
                self._record(e, "on_wake")

    def _on_event_cb(self, _key: Any, raw: _ffi.WsbEvent) -> None:
        ev = copy_event(raw)
        if ev is None:
            return
        self._dispatch(ev, None)
        hook = self.on_event
        if hook is not None:
            self._run_callback(hook, ev, None, "on_event")

    def _on_sub_cb(self, token: int, raw: _ffi.WsbEvent) -> None:
        sub = self._by_token.get(token)
        if not isinstance(sub, Subscription):
            return
        ev = copy_event(raw)
        if ev is not None and sub.callback is not None:
            self._run_callback(sub.callback, ev, None, f"subscription {sub.pattern}")

    def _on_app_cb(self, token: int, raw: _ffi.WsbEvent) -> Optional[str]:
        route = self._by_token.get(token)
        if not isinstance(route, _AppRoute):
            return "the application handler was removed"
        msg = copy_event(raw)
        if not isinstance(msg, Message):
            return "unexpected event"
        try:
            value = route.handler(msg)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError("async app handlers need mode='poll' with aevents()")
        except BaseException as e:  # noqa: BLE001
            if not isinstance(e, Reject):
                self._record(e, f"app handler for {msg.destination}")
            return _refusal_text(None, e)
        return _refusal_text(value, None)

    # -----------------------------------------------------------------------------------------
    # asyncio

    async def aevents(self, max_events: int = 256) -> AsyncIterator[Event]:
        """Poll mode under asyncio: yields events as they come, handlers having run (``async``
        ones as tasks). Woken by the library's wake-up hook through
        ``loop.call_soon_threadsafe``, so the loop never blocks. Ends when the server closes.
        One ``aevents()`` iteration at a time per server."""
        if self.mode != "poll":
            raise InvalidArgument("aevents() needs mode='poll'")
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def waker() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass  # the loop is closed

        def spawn(coro: Awaitable[Any]) -> None:
            task = loop.create_task(coro)  # type: ignore[arg-type]
            self._tasks.add(task)  # a strong reference until done
            task.add_done_callback(self._tasks.discard)

        with self._cond:
            if self._async_waker is not None:
                raise RuntimeError("aevents() is already being iterated for this server")
            self._async_waker = waker
        try:
            while True:
                wake.clear()
                self._raise_pending()
                if self._state == "closed":
                    return
                events, _ = self._poll_dispatch(0, max_events, spawn)
                for ev in events:
                    yield ev
                if not events:
                    await wake.wait()
        finally:
            with self._cond:
                if self._async_waker is waker:
                    self._async_waker = None

    # -----------------------------------------------------------------------------------------
    # stats

    def stats(self) -> Stats:
        """A snapshot of the server's counters."""
        raw = _ffi.WsbStats()
        self._call("stats", lib.wsb_server_stats, byref(raw))
        return stats_from(raw)


def _binary_flag(data: Body, binary: Optional[bool]) -> int:
    if binary is None:
        binary = not isinstance(data, str)
    return 1 if binary else 0


def _refusal_text(value: Any, err: Optional[BaseException]) -> Optional[str]:
    if isinstance(err, Reject):
        return err.message
    if err is not None:
        return str(err) or type(err).__name__
    if isinstance(value, Reject):
        return value.message
    return None


# ---------------------------------------------------------------------------------------------
# process-wide: freeing from a helper thread, closing at exit, native logging

_live_servers: "weakref.WeakSet[Server]" = weakref.WeakSet()
_orphans_lock = threading.Lock()
_orphans: List[int] = []


def _free_elsewhere(ptr: Optional[int]) -> None:
    if not ptr:
        return
    with _orphans_lock:
        _orphans.append(ptr)

    def run() -> None:
        with _orphans_lock:
            if ptr not in _orphans:
                return
            _orphans.remove(ptr)
        lib.wsb_server_free(ptr)

    threading.Thread(target=run, name="wsbroker-free", daemon=True).start()


def _close_all_at_exit() -> None:
    set_native_log_level(None)
    for server in list(_live_servers):
        try:
            server.close(raise_errors=False)
        except BaseException:  # noqa: BLE001
            pass
    with _orphans_lock:
        orphans, _orphans[:] = list(_orphans), []
    for ptr in orphans:
        lib.wsb_server_free(ptr)


atexit.register(_close_all_at_exit)

_native_log_on = False


def set_native_log_level(level: Optional[int]) -> None:
    """Forwards the library's own log (Rust ``tracing``) to the ``wsbroker.native`` logger at
    ``level`` (a :mod:`logging` level) and above; ``None`` turns it off. Process-wide."""
    global _native_log_on
    if level is None:
        if _native_log_on:
            lib.wsb_set_log_callback(_callbacks.NULL_LOG, None, 0)
            _native_log_on = False
        return
    if level <= 5:
        max_level = _ffi.WSB_LOG_TRACE
    elif level <= logging.DEBUG:
        max_level = _ffi.WSB_LOG_DEBUG
    elif level <= logging.INFO:
        max_level = _ffi.WSB_LOG_INFO
    elif level <= logging.WARNING:
        max_level = _ffi.WSB_LOG_WARN
    else:
        max_level = _ffi.WSB_LOG_ERROR
    check(lib.wsb_set_log_callback(_callbacks.log_cb, None, max_level), "set log callback")
    _native_log_on = True
