"""wsbroker — an embeddable WebSocket/STOMP broker, from Python.

A ctypes binding over the wsbroker C ABI (``include/wsbroker.h``); the shared library is
bundled in the package (``WSBROKER_LIBRARY`` overrides where it is loaded from)::

    import wsbroker

    with wsbroker.Server(port=0, tcp_port=0) as server:       # started by `with` (or start())
        print(server.url)                                      # ws://127.0.0.1:PORT/ws

        @server.app_handler("/app/chat")                       # SEND to /app/chat lands here
        def on_chat(msg):
            room = msg.json()["chatRoomId"]
            server.publish(f"/topic/chat/room/{room}", msg.body)

        while True:
            server.poll(timeout=0.1)                           # poll mode: handlers run here

Design choices
--------------
* **Configuration.** :class:`Config` is a ``wsb_config`` with one typed attribute per
  setting (``config.max_frame_size = 1 << 20``, ``config.heartbeat_ms = (5000, 5000)``);
  assigning checks the value and calls C at once, so bad values raise on that line.
  ``Server(config)`` takes it; ``Server(**settings)`` builds one from the same keywords.
* **Lifecycle.** ``Server(...)`` only builds the configuration; ``start()`` or ``with``
  creates the C server and binds (``AddressInUse`` is raised there), after which
  ``server.port`` / ``server.tcp_port`` / ``server.url`` are valid. ``close()`` stops and
  frees it; it is idempotent, waits for calls in flight, and releases every callback (no
  reference to your callables remains). A server dropped without ``close()`` is closed by
  garbage collection, and servers still running at interpreter exit are closed by an
  ``atexit`` hook before Python tears down, so library threads never call into a dead
  interpreter. (:class:`Config` and :class:`Server` share these rules: ``_managed.Managed``.)
* **Integers are range-checked** before they reach C: an id, size or duration that does not
  fit its C type (``uint64_t``, ``uint32_t``, ``size_t``, ``uint16_t``), or a negative
  duration, raises :class:`OutOfRange` (a ``ValueError`` and an ``OverflowError``) instead of
  wrapping; a non-integer (``float``, ``bool``) raises ``TypeError``.
* **Poll mode** (``mode="poll"``, the default): nothing runs on the library's threads except
  the wake-up hook. ``poll(timeout)`` returns the events (copied out of C memory) after running
  the handlers for them in the calling thread: ``on_connect``, ``on_subscribe``, app handlers
  (``@server.app_handler``) and host-subscription callbacks. You must keep polling (a loop,
  a timer, or ``aevents()``) or clients that need a handler wait. ``aevents()`` is the asyncio
  form: an async iterator woken by the library's wake callback through
  ``loop.call_soon_threadsafe``; handlers may be ``async`` there (they run as tasks).
* **Callback mode** (``mode="callback"``): handlers run on the library's runtime threads.
  App handlers go through ``wsb_app_callback`` before the SEND is acknowledged; host
  subscriptions are called on the publishing thread; ``on_event`` sees every event.
* **Connect decisions.** ``on_connect`` (set before start: keyword or attribute) turns on
  deferred connect decisions. It is called with a :class:`ConnectEvent` when the CONNECT event
  is processed (inside ``poll()``, or on a runtime thread in callback mode) and returns
  ``True`` (accept, the login becomes the user name), a ``str`` (accept as that user),
  :class:`Accept` ``(user)``, ``False`` or :class:`Reject` ``("message")`` (the client gets an
  ERROR frame with the message), or ``None`` to decide later with ``server.accept()`` /
  ``server.reject()``. ``on_subscribe`` does the same for SUBSCRIBE. Without them the broker
  accepts every client as its login and allows every subscription.
* **Authenticating browsers.** ``on_upgrade`` (keyword or attribute, any time) decides on every
  WebSocket upgrade with an :class:`UpgradeRequest` (cookies, query, headers): it returns the
  principal (the session's user) or refuses with :class:`Reject` ``(reason, status=401)``.
* **Refusing messages.** An app handler that returns or raises :class:`Reject` refuses the
  message; any other exception refuses it too (its text goes to the client). In poll mode the
  SEND was already acknowledged when it was queued, so the refusal is sent with
  ``wsb_server_disconnect`` (an ERROR frame, which ends the session — as a refusal does).
* **Errors.** Failing calls raise a subclass of :class:`Error` chosen by the C result code,
  with the library's ``wsb_last_error`` text. An exception inside any callback is logged
  (logger ``wsbroker``), kept in ``server.callback_errors`` and re-raised as
  :class:`CallbackError` from the next ``poll()``/``aevents()`` step or from ``close()``.
* **Raw WebSocket mode.** ``add_raw_endpoint(path, "host" | "broadcast" | "echo")`` serves
  plain WebSocket messages (no STOMP) on another path. Host endpoints report
  :class:`RawOpenEvent`, :class:`RawMessageEvent` and :class:`RawCloseEvent`; answer with
  ``raw_send``, ``raw_subscribe`` + ``raw_publish`` (topics are exact names), ``raw_close``;
  ``raw_set_user_data`` and ``raw_buffered_bytes`` complete the uWebSockets-style API.
* **Cluster mode.** ``cluster_redis=`` or ``cluster_nats=`` (an engine URL; one of them),
  ``node_id=`` and ``cluster_prefix=`` make the server a node of a cluster sharing broadcast
  and ``/user`` destinations through Redis or NATS; ``cluster_stats()`` returns
  :class:`ClusterStats` (``None`` on a standalone server), and :class:`BackplaneEvent` events report
  the engine link coming up or going away.
* **Callbacks and C.** One ``CFUNCTYPE`` trampoline per callback type lives for the whole
  process; each registration gets an integer slot passed as ``user_data``, and the library's
  drop callback frees the slot. Everything is thread-safe: publish from any thread.

Modules (all private; this package re-exports the public names)
---------------------------------------------------------------
``_ffi`` ctypes declarations of the header (checked against it by ``tests/test_header.py``) ·
``_library`` loading and checking the shared library · ``_errors`` result codes to
exceptions, callback error log · ``_convert`` Python values into C arguments (range checks) ·
``_managed`` the handle-owning base class · ``_config`` :class:`Config` · ``_server``
:class:`Server` · ``_routes`` app handlers and host subscriptions · ``_dispatch`` running the
handlers for events · ``_poll`` poll mode and asyncio · ``_trampolines`` C-to-Python callbacks
and their slot table · ``_raw`` raw WebSocket mode · ``_upgrade`` the handshake auth hook ·
``_events`` event classes copied out of C · ``_pattern`` destination patterns ·
``_history`` history rules and pages · ``_presence`` presence members ·
``_native_log`` the library's log into :mod:`logging` · ``_shutdown`` exit and deferred frees ·
``_client`` :class:`Client`, a STOMP/WebSocket client for any broker (sync, callbacks, asyncio).
"""

from __future__ import annotations

from typing import Optional

from . import _ffi, _library
from ._client import Client, ClientEvent
from ._config import Config
from ._errors import (
    AddressInUse,
    AlreadyStarted,
    Backpressure,
    CalledFromCallback,
    CallbackError,
    Error,
    InvalidArgument,
    InvalidConfig,
    InvalidUtf8,
    IoError,
    NotConnected,
    NotFound,
    NotRunning,
    NullArgument,
    OutOfRange,
    Panic,
    Refused,
    Timeout,
    last_error,
    result_str,
)
from ._events import (
    Accept,
    BackplaneEvent,
    BrokerEvent,
    ClusterStats,
    ConnectEvent,
    DisconnectEvent,
    Event,
    EventKind,
    Message,
    MessagesDroppedEvent,
    OverflowEvent,
    RawCloseEvent,
    RawMessageEvent,
    RawOpenEvent,
    Reject,
    Stats,
    SubscribeEvent,
    Transport,
)
from ._history import HistoryPage, HistoryRule
from ._library import LibraryError
from ._presence import Presence, PresenceMember
from ._native_log import set_native_log_level
from ._routes import Subscription
from ._server import Server
from ._upgrade import UpgradeRequest

__version__ = "0.1.0"

#: Path of the shared library in use.
LIBRARY_PATH = _library.LIBRARY_PATH
ABI_VERSION = _ffi.ABI_VERSION


def version() -> str:
    """The library's version (``wsb_version``)."""
    raw: Optional[bytes] = _library.lib.wsb_version()
    return raw.decode() if raw else ""


__all__ = [
    "ABI_VERSION",
    "LIBRARY_PATH",
    "Accept",
    "AddressInUse",
    "AlreadyStarted",
    "BackplaneEvent",
    "Backpressure",
    "BrokerEvent",
    "CalledFromCallback",
    "CallbackError",
    "Client",
    "ClientEvent",
    "ClusterStats",
    "Config",
    "ConnectEvent",
    "DisconnectEvent",
    "Error",
    "Event",
    "EventKind",
    "HistoryPage",
    "HistoryRule",
    "InvalidArgument",
    "InvalidConfig",
    "InvalidUtf8",
    "IoError",
    "LibraryError",
    "Message",
    "MessagesDroppedEvent",
    "NotConnected",
    "NotFound",
    "NotRunning",
    "NullArgument",
    "OutOfRange",
    "OverflowEvent",
    "Presence",
    "PresenceMember",
    "Panic",
    "RawCloseEvent",
    "RawMessageEvent",
    "RawOpenEvent",
    "Refused",
    "Reject",
    "Server",
    "Stats",
    "SubscribeEvent",
    "Subscription",
    "Timeout",
    "Transport",
    "UpgradeRequest",
    "last_error",
    "result_str",
    "set_native_log_level",
    "version",
]
