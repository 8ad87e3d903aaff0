"""The :class:`Server` class: one wsbroker C server (a ``wsb_server``), owned by Python.

What lives elsewhere: the settings (:mod:`wsbroker._config`), the handle's lifetime rules
(:mod:`wsbroker._managed`), running the host's handlers for events (:mod:`wsbroker._dispatch`),
poll mode and asyncio (:mod:`wsbroker._poll`), raw WebSocket mode (:mod:`wsbroker._raw`), the
registry of handlers and subscriptions (:mod:`wsbroker._routes`). This module creates and
starts the C server, registers the host's handlers with it, and holds the calls that act on
it: publishing, decisions, stats.
"""

from __future__ import annotations

import ctypes
import logging
from ctypes import byref, c_size_t, c_uint16, c_uint64
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

from . import _convert as cv
from . import _ffi
from . import _trampolines as tr
from ._config import Config
from ._convert import Body, Headers
from ._dispatch import ConnectHandler, Dispatcher, SubscribeHandler
from ._errors import AlreadyStarted, CalledFromCallback, CallbackErrorLog, NotFound, NotRunning, check, error_for
from ._events import ClusterStats, Event, Stats, cluster_stats_from, stats_from
from ._history import HistoryPage, read_page
from ._presence import Presence, read_presence
from ._library import lib
from ._managed import Managed
from ._poll import Poller, iterate
from ._raw import RawMode
from ._routes import AppHandler, AppRoute, MessageCallback, Routes, Subscription
from ._shutdown import free_elsewhere, live_servers
from ._upgrade import UpgradeHandler

log = logging.getLogger("wsbroker")

#: Names of the positional parameters of ``Server(host, port, path, tcp_port)``, the form of
#: earlier releases (kept working; keywords or a Config are the documented forms).
_POSITIONAL_SETTINGS = ("host", "port", "path", "tcp_port")


class Server(Managed, RawMode):
    """An embedded WebSocket/STOMP broker.

    ``Server(config)`` takes a :class:`Config`; ``Server(**settings)`` builds one from the same
    keywords (``Server(port=0, tcp_port=0, mode="callback")``). The handler keywords
    ``on_connect``, ``on_subscribe``, ``on_upgrade``, ``on_event`` and ``on_wake`` go with
    either form.

    The C server is created and bound by :meth:`start` (or ``with``); ``port`` is valid after
    that. ``on_connect``/``on_subscribe`` must be set before start. See the package docstring
    for the delivery modes.
    """

    _what = "server"

    def __init__(
        self,
        config: Optional[Config] = None,
        *positional: Any,
        on_connect: Optional[ConnectHandler] = None,
        on_subscribe: Optional[SubscribeHandler] = None,
        on_upgrade: Optional[UpgradeHandler] = None,
        on_event: Optional[Callable[[Event], Any]] = None,
        on_wake: Optional[Callable[[], Any]] = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        self._routes = Routes()
        self._errors = CallbackErrorLog()
        self._dispatcher = Dispatcher(self, self._routes, self._errors)
        self._poller = Poller()
        self._slots = tr.OwnedSlots()
        self._upgrade_slot: Optional[int] = None
        # Actions on the C server asked for before start (raw endpoints), run by start().
        self._pending: List[Callable[[int], None]] = []
        self._port: Optional[int] = None
        self._tcp_port: Optional[int] = None
        try:
            # Handlers first: a bad one must not leave the caller's Config claimed.
            self.on_connect = on_connect
            self.on_subscribe = on_subscribe
            self.on_event = on_event
            self.on_wake = on_wake
            if on_upgrade is not None and not callable(on_upgrade):
                raise TypeError("on_upgrade must be callable")
            self._dispatcher.on_upgrade = on_upgrade  # registered with C by start()
            self._config = _config_of(config, positional, settings)
        except BaseException:
            self._closed = True  # nothing to free: no config was made or claimed
            raise

    # -----------------------------------------------------------------------------------------
    # state

    @property
    def config(self) -> Config:
        """The server's :class:`Config` (closed once started: its values still read back)."""
        return self._config

    @property
    def host(self) -> str:
        return self._config.host

    @property
    def path(self) -> str:
        return self._config.path

    @property
    def mode(self) -> str:
        """``"poll"`` or ``"callback"``."""
        return self._config.mode

    @property
    def running(self) -> bool:
        return self._handle is not None and not self._closing and not self._closed

    def _state(self) -> str:
        if self._closed:
            return "closed"
        return "new" if self._handle is None else "running"

    def _not_open(self) -> Exception:
        if self._closed or self._closing:
            return NotRunning("server is closed")
        return NotRunning("server not started: call start() or use `with`")

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
        return f"<wsbroker.Server {self._state()} mode={self.mode}{where}>"

    # -----------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> "Server":
        """Creates the C server, registers handlers and subscriptions made so far, and binds
        the listeners (synchronously: :class:`AddressInUse` is raised here). Returns ``self``.
        A server that fails to start is closed."""
        with self._lock:
            if self._state() != "new" or self._closing:
                raise AlreadyStarted("server already started" if self.running else "server is closed")
            try:
                self._adopt(self._create())
                handle = self._handle
                assert handle is not None
                # The settings were copied and the callbacks moved into the server.
                self._config.close()
                if self._dispatcher.on_upgrade is not None:
                    self._register_upgrade(handle)
                for route in list(self._routes.app):
                    self._register_app(handle, route)
                pending_subs, self._routes.pending = self._routes.pending, []
                for sub in pending_subs:
                    self._register_subscription(handle, sub)
                pending, self._pending = self._pending, []
                for action in pending:
                    action(handle)
                check(lib.wsb_server_start(handle), "start")
                port = c_uint16()
                check(lib.wsb_server_local_port(handle, byref(port)), "local port")
                self._port = port.value
                if lib.wsb_server_tcp_port(handle, byref(port)) == _ffi.WSB_OK:
                    self._tcp_port = port.value
            except BaseException:
                self._close_with(lambda h: self._free(h, 0))
                raise
            live_servers.add(self)
        return self

    def _create(self) -> int:
        """``wsb_server_new`` from the config, with the delivery callback this mode needs."""
        config, dispatcher = self._config, self._dispatcher
        with config._borrow() as cfg:
            # on_connect / on_subscribe answer deferred decisions: they need them deferred.
            check(lib.wsb_config_set_defer(cfg, config.defer_connect or dispatcher.on_connect is not None,
                                           config.defer_subscribe or dispatcher.on_subscribe is not None), "defer")
            if config.mode == "poll":
                slot = self._slots.new(tr.WeakTarget(dispatcher.wake_callback))
                code = lib.wsb_config_set_wake_callback(cfg, tr.wake, tr.user_data(slot), tr.drop)
            else:
                slot = self._slots.new(tr.WeakTarget(dispatcher.event_callback))
                code = lib.wsb_config_set_event_callback(cfg, tr.event, tr.user_data(slot), tr.drop)
            if code != _ffi.WSB_OK:
                self._slots.refused(slot)
                raise error_for(code, "delivery callback")
            out = _ffi.ServerHandle()
            check(lib.wsb_server_new(cfg, byref(out)), "wsb_server_new")
        return out.value or 0  # 0 is refused by _adopt

    def close(self, grace: float = 1.0, *, raise_errors: bool = True) -> None:
        """Stops the server (closing client connections within ``grace`` seconds) and frees it.

        Idempotent; waits for calls in flight on other threads. Afterwards every callback has
        been released. Raises :class:`CallbackError` for callback exceptions not yet re-raised
        (unless ``raise_errors`` is false), and :class:`CalledFromCallback` when called from
        inside a wsbroker callback.
        """
        if tr.in_callback():
            raise CalledFromCallback("close() cannot be called from inside a wsbroker callback")
        self._shutdown(cv.seconds_to_ms(grace, "grace"), raise_errors)

    def _shutdown(self, grace_ms: int, raise_errors: bool) -> None:
        self._close_with(lambda handle: self._free(handle, grace_ms))
        waker = self._dispatcher.async_waker
        if waker is not None:
            waker()  # an aevents() loop waiting for events sees the end
        if raise_errors:
            self._errors.raise_pending()

    def _free(self, handle: Optional[int], grace_ms: int) -> None:
        self._config.close()
        live_servers.discard(self)
        if not handle:
            return
        lib.wsb_server_stop(handle, grace_ms)  # NOT_RUNNING when never started: fine
        code = lib.wsb_server_free(handle)
        if code == _ffi.WSB_ERR_CALLED_FROM_CALLBACK:
            # On one of the library's own threads (e.g. garbage collection inside a callback).
            free_elsewhere(handle)
        elif code != _ffi.WSB_OK:
            log.warning("wsbroker: wsb_server_free failed: %s", error_for(code))

    def _forget(self) -> None:
        self._slots.release_all()
        self._routes.clear()
        self._dispatcher.clear()
        self._pending.clear()
        self._poller.clear()

    def _finalize(self) -> None:
        # Dropped without close(): possibly on a library thread, where _free hands the
        # handle to a helper thread (close() would refuse there).
        self._shutdown(1000, raise_errors=False)

    def __enter__(self) -> "Server":
        if self._state() == "new":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(raise_errors=exc_type is None)

    def _before_start(self, action: Callable[[int], None]) -> None:
        """Runs ``action(handle)`` now on a started server, or keeps it for :meth:`start`."""
        with self._lock:
            if self._state() == "new" and not self._closing:
                self._pending.append(action)
                return
            with self._borrow() as handle:
                action(handle)

    # -----------------------------------------------------------------------------------------
    # publishing (any thread, never blocks)

    def publish(self, destination: str, body: Body = b"", headers: Headers = None,
                wait: Optional[float] = None) -> Optional[int]:
        """Publishes to a destination (topic, queue or ``/user/{name}/...``) and returns the
        message's offset in the destination's history (``None`` when no history rule covers
        it, or for a queue).

        Flow control: while a subscriber the message would reach is congested (or a queue
        destination is full) nothing is delivered and :class:`Backpressure` is raised at once;
        with ``wait`` (seconds) the call blocks up to that long for room first. Waiting blocks
        the calling thread, so it is refused inside a wsbroker callback."""
        d, b = cv.text(destination, "destination"), cv.body(body)
        arr, n = cv.headers(headers)
        ms = 0 if wait is None else max(1, cv.seconds_to_ms(wait, "wait"))
        offset = c_uint64()
        self._call(f"publish to {destination}", lib.wsb_server_publish_recorded, d, len(d), arr, n, b, len(b), ms,
                   byref(offset), None)
        return offset.value or None

    def history(self, destination: str, since: int = 0, limit: int = 1000) -> HistoryPage:
        """The retained history of ``destination``: up to ``limit`` messages after offset
        ``since`` (0: from the oldest retained), oldest first. :class:`NotFound` when no
        history rule covers the destination."""
        return read_page(self._call, destination, since, limit)

    def presence(self, destination: str) -> Presence:
        """The presence members of ``destination`` (count 0 when it has none)."""
        return read_presence(self._call, destination)

    def send_to_user(self, user: str, destination: str, body: Body = b"", headers: Headers = None) -> None:
        """Sends to every session of ``user`` subscribed to ``/user{destination}``."""
        u, d, b = cv.text(user, "user"), cv.text(destination, "destination"), cv.body(body)
        arr, n = cv.headers(headers)
        self._call(f"send to user {user}", lib.wsb_server_send_to_user, u, len(u), d, len(d), arr, n, b, len(b))

    def send_to_session(self, session: int, destination: str, body: Body = b"", headers: Headers = None) -> None:
        """Sends to the subscriptions of one session that match ``destination``, written as
        that session subscribed (e.g. a reply from an application handler)."""
        s, d, b = cv.u64(session, "session"), cv.text(destination, "destination"), cv.body(body)
        arr, n = cv.headers(headers)
        self._call(f"send to session {s}", lib.wsb_server_send_to_session, s, d, len(d), arr, n, b, len(b))

    def disconnect(self, session: int, reason: str = "disconnected by the server") -> None:
        """Closes a session with an ERROR frame carrying ``reason``."""
        s, r = cv.u64(session, "session"), cv.text(reason, "reason")
        self._call(f"disconnect session {s}", lib.wsb_server_disconnect, s, r, len(r))

    # -----------------------------------------------------------------------------------------
    # decisions

    def accept(self, session: int, user: Optional[str] = None) -> None:
        """Accepts a deferred CONNECT, optionally as ``user``."""
        s, u = cv.u64(session, "session"), cv.optional_text(user, "user")
        self._call(f"accept session {s}", lib.wsb_server_accept, s, u, len(u or b""))

    def reject(self, session: int, message: str = "connection refused") -> None:
        """Rejects a deferred CONNECT; the client gets an ERROR frame with ``message``."""
        s, m = cv.u64(session, "session"), cv.text(message, "message")
        self._call(f"reject session {s}", lib.wsb_server_reject, s, m, len(m))

    def answer_subscribe(self, session: int, allow: bool, message: str = "") -> None:
        """Answers a deferred SUBSCRIBE; refused ones get an ERROR frame with ``message``."""
        s, m = cv.u64(session, "session"), cv.text(message, "message")
        self._call(f"answer subscribe of session {s}", lib.wsb_server_answer_subscribe, s, bool(allow), m, len(m))

    # -----------------------------------------------------------------------------------------
    # the host's handlers

    @property
    def on_connect(self) -> Optional[ConnectHandler]:
        """Decides on every CONNECT (set before start). Called with a :class:`ConnectEvent`;
        returns ``True`` (accept as the login), a ``str`` (accept as that user), an
        :class:`Accept`, ``False`` or a :class:`Reject` (refuse), or ``None`` (undecided: call
        :meth:`accept`/:meth:`reject` later, else the client is refused after the decision
        timeout). May be ``async`` under :meth:`aevents`."""
        return self._dispatcher.on_connect

    @on_connect.setter
    def on_connect(self, fn: Optional[ConnectHandler]) -> None:
        self._set_before_start("on_connect", fn)
        self._dispatcher.on_connect = fn

    @property
    def on_subscribe(self) -> Optional[SubscribeHandler]:
        """Authorizes every SUBSCRIBE (set before start): ``True``/``None`` allow, ``False``
        or a :class:`Reject` refuse."""
        return self._dispatcher.on_subscribe

    @on_subscribe.setter
    def on_subscribe(self, fn: Optional[SubscribeHandler]) -> None:
        self._set_before_start("on_subscribe", fn)
        self._dispatcher.on_subscribe = fn

    def _set_before_start(self, name: str, fn: Any) -> None:
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable")
        if self._state() != "new":
            raise AlreadyStarted(
                f"{name} must be set before start() (it turns on deferred decisions in the C "
                f"configuration): pass {name}=... to Server() or set it before `with`/start()"
            )

    @property
    def on_event(self) -> Optional[Callable[[Event], Any]]:
        """Callback mode: called with every event (on a runtime thread), after the built-in
        handling (on_connect, on_subscribe, handlers). Unused in poll mode, where
        ``poll()``/``aevents()`` return the events."""
        return self._dispatcher.on_event

    @on_event.setter
    def on_event(self, fn: Optional[Callable[[Event], Any]]) -> None:
        if fn is not None and not callable(fn):
            raise TypeError("on_event must be callable")
        self._dispatcher.on_event = fn

    @property
    def on_wake(self) -> Optional[Callable[[], Any]]:
        """Poll mode: called on a runtime thread when the event queue becomes non-empty
        (quick, must not block): schedule a ``poll()`` from your own loop."""
        return self._dispatcher.on_wake

    @on_wake.setter
    def on_wake(self, fn: Optional[Callable[[], Any]]) -> None:
        if fn is not None and not callable(fn):
            raise TypeError("on_wake must be callable")
        self._dispatcher.on_wake = fn

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
        return self._dispatcher.on_upgrade

    @on_upgrade.setter
    def on_upgrade(self, fn: Optional[UpgradeHandler]) -> None:
        if fn is not None and not callable(fn):
            raise TypeError("on_upgrade must be callable")
        with self._lock:
            if self._closed or self._closing:
                raise NotRunning("server is closed")
            self._dispatcher.on_upgrade = fn
            if self._handle is not None:
                with self._borrow() as handle:
                    self._register_upgrade(handle)

    def _register_upgrade(self, handle: int) -> None:
        """Registers (or, with no handler, removes) the C upgrade callback; C drops the slot of
        the one it replaces."""
        slot: Optional[int] = None
        if self._dispatcher.on_upgrade is None:
            code = lib.wsb_server_set_upgrade_callback(handle, tr.NULL_UPGRADE, None, tr.NULL_DROP)
        else:
            slot = self._slots.new(tr.WeakTarget(self._dispatcher.upgrade_callback))
            code = lib.wsb_server_set_upgrade_callback(handle, tr.upgrade, tr.user_data(slot), tr.drop)
        if code != _ffi.WSB_OK:
            self._slots.refused(slot)
            raise error_for(code, "upgrade callback")
        old, self._upgrade_slot = self._upgrade_slot, slot
        self._slots.handed_to_c(old)

    # --- application handlers ------------------------------------------------------------------

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
        cv.text(pattern, "pattern")
        with self._lock:
            if self._closed or self._closing:
                raise NotRunning("server is closed")
            route = AppRoute(pattern, handler)
            for replaced in self._routes.add_app(route):
                self._slots.handed_to_c(replaced.slot)  # C drops a replaced registration itself
            if self._handle is not None:
                with self._borrow() as handle:
                    self._register_app(handle, route)

    def _register_app(self, handle: int, route: AppRoute) -> None:
        p = cv.text(route.pattern, "pattern")
        if self.mode == "callback":
            route.token = self._routes.token_for(route)
            route.slot = self._slots.new(
                tr.WeakTarget(self._dispatcher.app_callback, route.token, dead="the server is closed"))
            code = lib.wsb_server_handle_app(handle, p, len(p), tr.app, tr.user_data(route.slot), tr.drop)
        else:  # poll mode: the SENDs come back as APP_MESSAGE events, dispatched by pattern
            code = lib.wsb_server_handle_app(handle, p, len(p), tr.NULL_APP, None, tr.NULL_DROP)
        if code != _ffi.WSB_OK:
            self._routes.discard_app(route)
            self._slots.refused(route.slot)
            raise error_for(code, f"app handler {route.pattern}")

    def remove_app(self, pattern: str) -> None:
        """Removes the handler of ``pattern`` (:class:`NotFound` when there is none)."""
        p = cv.text(pattern, "pattern")
        with self._lock:
            removed = self._routes.remove_app(pattern)
            for route in removed:
                self._slots.handed_to_c(route.slot)
            if self._handle is not None:
                self._call(f"remove app handler {pattern}", lib.wsb_server_remove_app, p, len(p))
            elif not removed:
                raise NotFound(f"no application handler for {pattern}")

    # --- host subscriptions --------------------------------------------------------------------

    def subscribe(self, pattern: str, callback: Optional[MessageCallback] = None) -> Subscription:
        """Subscribes the host to ``pattern`` (wildcards as for clients); every matching
        message (broadcast or queued, without consuming it) calls ``callback(message)``.

        Poll mode: the callback runs inside ``poll()``/``aevents()``; without a callback the
        messages are just returned by them. Callback mode: it runs on the publishing thread
        (a runtime thread for client SENDs, yours for :meth:`publish`).
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        cv.text(pattern, "pattern")
        sub = Subscription(self, pattern, callback)
        with self._lock:
            if self._closed or self._closing:
                raise NotRunning("server is closed")
            if self._handle is not None:
                with self._borrow() as handle:
                    self._register_subscription(handle, sub)
            else:
                self._routes.pending.append(sub)
        return sub

    def _register_subscription(self, handle: int, sub: Subscription) -> None:
        p = cv.text(sub.pattern, "pattern")
        out = c_uint64()
        if self.mode == "callback" and sub.callback is not None:
            sub._token = self._routes.token_for(sub)
            sub._slot = self._slots.new(tr.WeakTarget(self._dispatcher.subscription_callback, sub._token))
            code = lib.wsb_server_subscribe(handle, p, len(p), tr.event, tr.user_data(sub._slot), tr.drop,
                                            byref(out))
        else:  # poll mode: MESSAGE events, dispatched by subscription id
            code = lib.wsb_server_subscribe(handle, p, len(p), tr.NULL_EVENT, None, tr.NULL_DROP, byref(out))
        if code != _ffi.WSB_OK:
            self._slots.refused(sub._slot)
            self._routes.drop_token(sub._token)
            sub._server = None
            raise error_for(code, f"subscribe {sub.pattern}")
        sub.id = out.value
        self._routes.subscriptions[sub.id] = sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._routes.pending:
                self._routes.pending.remove(sub)
                return
            if sub.id is None or self._routes.subscriptions.get(sub.id) is not sub:
                return
            del self._routes.subscriptions[sub.id]
            self._routes.drop_token(sub._token)
            self._slots.handed_to_c(sub._slot)  # C drops it once no call of it is in progress
            if self._handle is not None:
                self._call(f"unsubscribe {sub.pattern}", lib.wsb_server_unsubscribe, sub.id)

    # -----------------------------------------------------------------------------------------
    # events (poll mode)

    def poll(self, timeout: Optional[float] = 0.0, max_events: int = 256) -> List[Event]:
        """Poll mode: takes up to ``max_events`` events, waiting up to ``timeout`` seconds for
        the first (0: don't wait; ``None``: until one arrives or the server closes; negative:
        :class:`OutOfRange`).

        Events are copied out of C memory. Handlers run here, before the list is returned:
        ``on_connect``, ``on_subscribe``, app handlers and host-subscription callbacks.
        Raises :class:`CallbackError` first if callbacks raised since the last call.
        """
        self._errors.raise_pending()
        events = self._poller.take(self, timeout, max_events)
        for ev in events:
            self._dispatcher.dispatch(ev, None)
        return events

    def aevents(self, max_events: int = 256) -> AsyncIterator[Event]:
        """Poll mode under asyncio: an async iterator of events, handlers having run
        (``async`` ones as tasks). Woken by the library's wake-up hook through
        ``loop.call_soon_threadsafe``, so the loop never blocks. Ends when the server closes.
        One ``aevents()`` iteration at a time per server."""
        return iterate(self, max_events)

    @property
    def callback_errors(self) -> List[BaseException]:
        """Exceptions raised by callbacks (the last 100), oldest first."""
        return self._errors.history()

    # -----------------------------------------------------------------------------------------
    # introspection

    def stats(self) -> Stats:
        """A snapshot of the server's counters."""
        raw = _ffi.WsbStats()
        self._call("stats", lib.wsb_server_stats, byref(raw))
        return stats_from(raw)

    def cluster_stats(self) -> Optional[ClusterStats]:
        """A snapshot of the cluster figures (``cluster_redis`` / ``cluster_nats``): whether the
        engine is reachable, the engine subscriptions it confirmed, publications handed on,
        received and dropped, reconnections; ``None`` when the server is not a cluster node."""
        raw = _ffi.WsbClusterStats()
        try:
            self._call("cluster stats", lib.wsb_server_cluster_stats, byref(raw))
        except NotFound:
            return None
        return cluster_stats_from(raw)

    def last_error(self) -> str:
        """The detail text of the last failed call on this server, from any thread
        (``wsb_server_last_error``); ``""`` when none failed."""
        size = c_size_t()
        self._call("last error", lib.wsb_server_last_error, None, 0, byref(size))
        if size.value == 0:
            return ""
        buf = ctypes.create_string_buffer(size.value + 1)
        self._call("last error", lib.wsb_server_last_error, buf, len(buf), byref(size))
        return buf.value.decode("utf-8", "replace")


def _config_of(config: Any, positional: Tuple[Any, ...], settings: Dict[str, Any]) -> Config:
    """The Config of ``Server(config)``, ``Server(**settings)`` or ``Server(host, port, ...)``."""
    if not isinstance(config, (Config, type(None))) or positional:
        values = ((config,) if config is not None or positional else ()) + positional
        if len(values) > len(_POSITIONAL_SETTINGS):
            raise TypeError(f"Server() takes a Config or up to {len(_POSITIONAL_SETTINGS)} positional settings "
                            f"({', '.join(_POSITIONAL_SETTINGS)})")
        for name, value in zip(_POSITIONAL_SETTINGS, values):
            if name in settings:
                raise TypeError(f"Server() got multiple values for {name!r}")
            settings[name] = value
        config = None
    if config is None:
        return Config(**settings)
    if settings:
        raise TypeError(f"Server(config) takes no settings keywords ({', '.join(sorted(settings))}): set them on the "
                        "Config")
    config._claim()
    return config
