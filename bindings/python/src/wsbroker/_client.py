"""``wsbroker.Client``: a STOMP (or raw WebSocket) client for any broker — wsbroker, RabbitMQ,
ActiveMQ — over ``ws://``, ``wss://``, TCP or TLS, with automatic reconnection (every
subscription re-made, resuming with ``x-since`` where the server keeps history).

Three ways to use it:

* **sync**: ``client.poll(timeout)`` returns the events (copied out of C) after running each
  subscription's callback for its messages, on the calling thread;
* **callbacks** (``mode="callback"``): subscription callbacks and ``on_event`` run on the
  client's network thread as messages arrive (they may ``send``, not wait for receipts);
* **asyncio**: ``async for event in client.aevents()``, woken by the library's wake callback;
  waiting calls have ``a``-prefixed forms run in the loop's executor (``await client.aconnect()``,
  ``await client.asend(..., receipt=5)``).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import weakref
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Sequence, Tuple

from . import _convert, _ffi, _trampolines
from ._errors import CallbackErrorLog, Error, InvalidArgument, error_for
from ._library import lib
from ._managed import Managed

_ACK = {
    "auto": _ffi.WSB_ACK_AUTO,
    "client": _ffi.WSB_ACK_CLIENT,
    "client-individual": _ffi.WSB_ACK_CLIENT_INDIVIDUAL,
}

_KINDS = {
    _ffi.WSB_CLIENT_EVENT_CONNECTED: "connected",
    _ffi.WSB_CLIENT_EVENT_DISCONNECTED: "disconnected",
    _ffi.WSB_CLIENT_EVENT_MESSAGE: "message",
    _ffi.WSB_CLIENT_EVENT_RESUBSCRIBED: "resubscribed",
    _ffi.WSB_CLIENT_EVENT_ERROR: "error",
    _ffi.WSB_CLIENT_EVENT_RAW: "raw",
    _ffi.WSB_CLIENT_EVENT_OVERFLOW: "overflow",
}


def _string(ptr: Optional[int], length: int) -> Optional[str]:
    return None if not ptr else ctypes.string_at(ptr, length).decode("utf-8", "replace")


@dataclass
class ClientEvent:
    """What a client tells its host; ``kind`` is ``"connected"``, ``"disconnected"``,
    ``"message"``, ``"resubscribed"``, ``"error"``, ``"raw"`` or ``"overflow"``.

    * connected: ``text`` (the STOMP version), ``server``, ``reconnected``
    * disconnected: ``text`` (why), ``reconnecting``
    * message: ``subscription``, ``destination``, ``headers``, ``body``, ``ack_id``
    * resubscribed: ``subscription``, ``destination``, ``recovered`` (gap-free resume
      confirmed by the server's history; False when it has none)
    * error: ``text`` (the ERROR's message), ``headers``, ``body``
    * raw: ``body``, ``binary``; overflow: ``dropped``
    """

    kind: str
    subscription: int = 0
    destination: Optional[str] = None
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ack_id: Optional[str] = None
    text: Optional[str] = None
    server: Optional[str] = None
    reconnected: bool = False
    reconnecting: bool = False
    recovered: bool = False
    binary: bool = False
    dropped: int = 0

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first header called ``name``."""
        for n, v in self.headers:
            if n == name:
                return v
        return default

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @classmethod
    def from_c(cls, e: _ffi.WsbClientEvent) -> "ClientEvent":
        headers: List[Tuple[str, str]] = []
        if e.headers and e.header_count:
            arr = ctypes.cast(e.headers, ctypes.POINTER(_ffi.WsbHeaderView))
            for i in range(e.header_count):
                h = arr[i]
                headers.append((_string(h.name, h.name_len) or "", _string(h.value, h.value_len) or ""))
        return cls(
            kind=_KINDS.get(e.kind, f"unknown-{e.kind}"),
            subscription=e.subscription,
            destination=_string(e.destination, e.destination_len),
            headers=headers,
            body=ctypes.string_at(e.body, e.body_len) if e.body else b"",
            ack_id=_string(e.ack_id, e.ack_id_len),
            text=_string(e.text, e.text_len),
            server=_string(e.server, e.server_len),
            reconnected=bool(e.reconnected),
            reconnecting=bool(e.reconnecting),
            recovered=bool(e.recovered),
            binary=bool(e.binary),
            dropped=e.dropped,
        )


MessageCallback = Callable[[ClientEvent], Any]

#: Clients not closed yet, closed at interpreter exit (before Python tears down).
_live: "weakref.WeakSet[Client]" = weakref.WeakSet()


class Client(Managed):
    """A STOMP or raw WebSocket client (see the module docstring). Timeouts are in seconds.

    ``Client(url, login=..., passcode=..., host=...)`` creates it; ``connect(timeout)`` (or
    ``with``) connects, ``close()`` disconnects and frees it."""

    _what = "client"

    def __init__(
        self,
        url: str,
        *,
        login: Optional[str] = None,
        passcode: Optional[str] = None,
        host: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        ws_headers: Optional[Dict[str, str]] = None,
        heartbeat: Tuple[float, float] = (10.0, 10.0),
        permessage_deflate: bool = True,
        ca_file: Optional[str] = None,
        system_roots: bool = True,
        client_cert: Optional[Tuple[str, str]] = None,
        server_name: Optional[str] = None,
        reconnect: bool = True,
        reconnect_delay: Tuple[float, float] = (0.2, 10.0),
        max_attempts: int = 0,
        queue_capacity: int = 4096,
        queue_block: float = 5.0,
        connect_timeout: float = 10.0,
        receipt_timeout: float = 5.0,
        raw: bool = False,
        subprotocol: Optional[str] = None,
        mode: str = "poll",
        on_event: Optional[Callable[[ClientEvent], Any]] = None,
        event_queue: int = 65536,
    ) -> None:
        super().__init__()
        if mode not in ("poll", "callback"):
            raise InvalidArgument(f"mode must be 'poll' or 'callback', not {mode!r}")
        self.mode = mode
        self.url = url
        self.on_event = on_event
        self.errors = CallbackErrorLog()
        self._handlers: Dict[int, Optional[MessageCallback]] = {}
        self._wakers: List[Callable[[], None]] = []
        self._slots = _trampolines.OwnedSlots()
        cfg = _ffi.ClientConfigHandle()
        u = _convert.text(url, "url")
        _check(lib.wsb_client_config_new(u, len(u), ctypes.byref(cfg)), "wsb_client_config_new")
        try:
            self._configure(cfg, locals())
            handle = _ffi.ClientHandle()
            _check(lib.wsb_client_new(cfg, ctypes.byref(handle)), "Client")
            self._adopt(handle.value)
        finally:
            lib.wsb_client_config_free(cfg)
        _live.add(self)

    def _configure(self, cfg: Any, o: Dict[str, Any]) -> None:
        def call(what: str, fn: Any, *args: Any) -> None:
            _check(fn(cfg, *args), what)

        def opt(value: Optional[str], what: str) -> Tuple[Optional[bytes], int]:
            b = _convert.optional_text(value, what)
            return b, len(b) if b else 0

        if o["login"] is not None or o["passcode"] is not None:
            call("login", lib.wsb_client_config_set_login, *opt(o["login"], "login"), *opt(o["passcode"], "passcode"))
        if o["host"] is not None:
            call("host", lib.wsb_client_config_set_host, *opt(o["host"], "host"))
        for websocket, extra in ((False, o["headers"]), (True, o["ws_headers"])):
            for name, value in (extra or {}).items():
                n, v = _convert.text(name, "header name"), _convert.text(str(value), "header value")
                call("header", lib.wsb_client_config_add_header, websocket, n, len(n), v, len(v))
        send, receive = o["heartbeat"]
        call("heartbeat", lib.wsb_client_config_set_heartbeat,
             _convert.seconds_to_ms(send, "heartbeat[0]"), _convert.seconds_to_ms(receive, "heartbeat[1]"))
        call("permessage_deflate", lib.wsb_client_config_set_permessage_deflate, bool(o["permessage_deflate"]))
        call("tls", lib.wsb_client_config_set_tls, bool(o["system_roots"]),
             *opt(o["ca_file"], "ca_file"), *opt(o["server_name"], "server_name"))
        if o["client_cert"] is not None:
            cert, key = _convert.pair_of_text(o["client_cert"], "client_cert")
            call("client_cert", lib.wsb_client_config_set_tls_client_cert, cert, len(cert), key, len(key))
        first, longest = o["reconnect_delay"]
        call("reconnect", lib.wsb_client_config_set_reconnect, bool(o["reconnect"]),
             _convert.seconds_to_ms(first, "reconnect_delay[0]"),
             _convert.seconds_to_ms(longest, "reconnect_delay[1]"),
             _convert.u32(o["max_attempts"], "max_attempts"))
        block = _convert.seconds_to_ms(o["queue_block"], "queue_block")
        call("queue", lib.wsb_client_config_set_outbound_queue,
             _convert.usize(o["queue_capacity"], "queue_capacity"),
             _ffi.WSB_QUEUE_BLOCK if block else _ffi.WSB_QUEUE_FAIL_FAST, block)
        call("timeouts", lib.wsb_client_config_set_timeouts,
             _convert.seconds_to_ms(o["connect_timeout"], "connect_timeout"),
             _convert.seconds_to_ms(o["receipt_timeout"], "receipt_timeout"))
        if o["raw"]:
            call("raw", lib.wsb_client_config_set_raw, True, *opt(o["subprotocol"], "subprotocol"))
        if self.mode == "callback":
            slot = self._slots.new(_trampolines.WeakTarget(self._on_c_event))
            call("event callback", lib.wsb_client_config_set_event_callback,
                 _trampolines.client_event, _trampolines.user_data(slot), _trampolines.drop)
            call("delivery", lib.wsb_client_config_set_delivery, _ffi.WSB_DELIVERY_CALLBACK, 1, 0)
        else:
            slot = self._slots.new(_trampolines.WeakTarget(self._on_wake))
            call("wake callback", lib.wsb_client_config_set_wake_callback,
                 _trampolines.wake, _trampolines.user_data(slot), _trampolines.drop)
            call("delivery", lib.wsb_client_config_set_delivery, _ffi.WSB_DELIVERY_POLL,
                 _convert.usize(o["event_queue"], "event_queue"), _ffi.WSB_OVERFLOW_DROP_NEWEST)

    # --- Managed ------------------------------------------------------------------------------

    def _delete(self, handle: Optional[int]) -> None:
        if handle:
            code = lib.wsb_client_free(handle)
            if code != _ffi.WSB_OK:
                raise error_for(code, "close")

    def _forget(self) -> None:
        self._handlers.clear()
        self._slots.release_all()
        _live.discard(self)

    def close(self) -> None:
        """Disconnects (DISCONNECT with its receipt, bounded), stops and frees the client.
        Idempotent. Not from inside one of its callbacks (``CalledFromCallback``)."""
        if _trampolines.in_callback():
            from ._errors import CalledFromCallback

            raise CalledFromCallback("close() inside a wsbroker callback")
        super().close()

    def _c(self, what: str, fn: Callable[..., int], *args: Any) -> None:
        with self._borrow() as handle:
            code = fn(handle, *args)
            if code != _ffi.WSB_OK:
                raise self._error(handle, code, what)

    def _error(self, handle: int, code: int, what: str) -> Error:
        size = ctypes.c_size_t(0)
        lib.wsb_client_last_error(handle, None, 0, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value + 1)
        lib.wsb_client_last_error(handle, buf, size.value + 1, ctypes.byref(size))
        err = error_for(code, what)
        detail = buf.value.decode("utf-8", "replace")
        if detail:
            err = type(err)(f"{what}: {detail}", code)
        return err

    # --- connection ---------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> "Client":
        """Connects, waiting up to ``timeout`` for CONNECTED (``Refused``, ``NotConnected``,
        ``Timeout`` on failure). Returns the client."""
        self._c("connect", lib.wsb_client_connect, _convert.seconds_to_ms(timeout, "timeout"))
        return self

    def start(self) -> None:
        """Starts connecting in the background (events say what happens)."""
        self._c("start", lib.wsb_client_start)

    @property
    def connected(self) -> bool:
        """True while a connection is up."""
        up = ctypes.c_bool(False)
        self._c("connected", lib.wsb_client_is_connected, ctypes.byref(up))
        return up.value

    def disconnect(self, timeout: float = 5.0) -> None:
        """DISCONNECT, waiting up to ``timeout`` for its receipt; stops the client (queued
        events can still be polled)."""
        self._c("disconnect", lib.wsb_client_disconnect, _convert.seconds_to_ms(timeout, "timeout"))

    def __enter__(self) -> "Client":
        if not self.connected:
            self.connect()
        return self

    # --- STOMP --------------------------------------------------------------------------------

    def subscribe(
        self,
        destination: str,
        callback: Optional[MessageCallback] = None,
        *,
        ack: str = "auto",
        headers: Optional[Dict[str, str]] = None,
        confirm: Optional[float] = None,
    ) -> int:
        """Subscribes; ``callback(event)`` runs for each message (in ``poll()``, or on the
        network thread in callback mode). ``ack``: ``"auto"``, ``"client"`` or
        ``"client-individual"``. With ``confirm`` (seconds), waits for the server's receipt.
        Returns the subscription id."""
        d = _convert.text(destination, "destination")
        mode = _convert.choice(ack, _ACK, "ack")
        arr, n = _convert.headers(headers or {})
        wait = 0 if confirm is None else _convert.seconds_to_ms(confirm, "confirm")
        out = ctypes.c_uint64(0)
        with self._lock:
            self._c("subscribe", lib.wsb_client_subscribe, d, len(d), mode, arr, n, wait, ctypes.byref(out))
            self._handlers[out.value] = callback
        return out.value

    def unsubscribe(self, subscription: int) -> None:
        """Ends a subscription (``NotFound`` for an unknown id)."""
        self._c("unsubscribe", lib.wsb_client_unsubscribe, _convert.u64(subscription, "subscription"))
        self._handlers.pop(subscription, None)

    def send(
        self,
        destination: str,
        body: _convert.Body = b"",
        *,
        headers: Optional[Dict[str, str]] = None,
        receipt: Optional[float] = None,
        transaction: Optional[int] = None,
    ) -> None:
        """SENDs a message (queued; with ``receipt`` seconds, waits for the server's RECEIPT)
        inside ``transaction`` when given."""
        d = _convert.text(destination, "destination")
        data = _convert.body(body)
        arr, n = _convert.headers(headers or {})
        wait = 0 if receipt is None else _convert.seconds_to_ms(receipt, "receipt")
        tx = 0 if transaction is None else _convert.u64(transaction, "transaction")
        self._c("send", lib.wsb_client_send, d, len(d), arr, n, data, len(data), tx, wait)

    def ack(self, message: ClientEvent, transaction: Optional[int] = None) -> None:
        """Acknowledges a message of a client-ack subscription."""
        self._ack(lib.wsb_client_ack, "ack", message, transaction)

    def nack(self, message: ClientEvent, transaction: Optional[int] = None) -> None:
        """Refuses a message (NACK)."""
        self._ack(lib.wsb_client_nack, "nack", message, transaction)

    def _ack(self, fn: Any, what: str, message: ClientEvent, transaction: Optional[int]) -> None:
        if not message.ack_id:
            raise InvalidArgument(f"{what}: the message has no ack id (auto ack)")
        a = _convert.text(message.ack_id, "ack_id")
        tx = 0 if transaction is None else _convert.u64(transaction, "transaction")
        self._c(what, fn, a, len(a), tx)

    def begin(self) -> int:
        """BEGINs a transaction; returns its id."""
        out = ctypes.c_uint64(0)
        self._c("begin", lib.wsb_client_begin, ctypes.byref(out))
        return out.value

    def commit(self, transaction: int, receipt: Optional[float] = None) -> None:
        """COMMITs a transaction (waiting for its receipt with ``receipt`` seconds)."""
        self._end(transaction, True, receipt)

    def abort(self, transaction: int, receipt: Optional[float] = None) -> None:
        """ABORTs a transaction."""
        self._end(transaction, False, receipt)

    def _end(self, transaction: int, commit: bool, receipt: Optional[float]) -> None:
        wait = 0 if receipt is None else _convert.seconds_to_ms(receipt, "receipt")
        self._c("commit" if commit else "abort", lib.wsb_client_end_transaction,
                _convert.u64(transaction, "transaction"), commit, wait)

    def send_raw(self, data: _convert.Body, binary: Optional[bool] = None) -> None:
        """Raw mode: a text (``str``) or binary (``bytes``) message."""
        payload = _convert.body(data)
        self._c("send_raw", lib.wsb_client_send_raw, payload, len(payload), bool(_convert.is_binary(data, binary)))

    # --- events -------------------------------------------------------------------------------

    def poll(self, timeout: float = 0.0, max_events: int = 64) -> List[ClientEvent]:
        """Poll mode: the queued events (waiting up to ``timeout`` for the first), after
        running the subscription callbacks for their messages on this thread."""
        if self.mode != "poll":
            raise InvalidArgument("poll() needs mode='poll'")
        self.errors.raise_pending()
        wait = _convert.seconds_to_ms(timeout, "timeout")
        count = _convert.usize(max_events, "max_events")
        events_c = (_ffi.WsbClientEvent * max(count, 1))()
        n = ctypes.c_size_t(0)
        if wait:
            self._c("poll", lib.wsb_client_poll_timeout, events_c, count, wait, ctypes.byref(n))
        else:
            self._c("poll", lib.wsb_client_poll, events_c, count, ctypes.byref(n))
        events = [ClientEvent.from_c(events_c[i]) for i in range(n.value)]
        for event in events:
            self._dispatch(event)
        self.errors.raise_pending()
        return events

    def _dispatch(self, event: ClientEvent) -> None:
        try:
            if event.kind == "message":
                handler = self._handlers.get(event.subscription)
                if handler is not None:
                    handler(event)
            if self.on_event is not None:
                self.on_event(event)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the next poll()/close()
            self.errors.record(exc, f"client callback for {event.kind}")

    def _on_c_event(self, event: _ffi.WsbClientEvent) -> None:
        self._dispatch(ClientEvent.from_c(event))

    def _on_wake(self) -> None:
        for waker in list(self._wakers):
            waker()

    async def aevents(self, max_events: int = 64) -> AsyncIterator[ClientEvent]:
        """asyncio: yields events as they arrive (subscription callbacks having run), woken
        by the library's wake callback; never blocks the loop. Ends when the client closes."""
        if self.mode != "poll":
            raise InvalidArgument("aevents() needs mode='poll'")
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def waker() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass  # the loop is closed

        self._wakers.append(waker)
        try:
            while not self.closed:
                wake.clear()
                events = self.poll(0, max_events)
                for event in events:
                    yield event
                if not events:
                    await wake.wait()
        finally:
            self._wakers.remove(waker)

    async def aconnect(self, timeout: float = 10.0) -> "Client":
        """``connect`` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.connect, timeout)

    async def asend(self, destination: str, body: _convert.Body = b"", **options: Any) -> None:
        """``send`` (a ``receipt`` wait included) without blocking the event loop."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self.send(destination, body, **options))

    async def asubscribe(self, destination: str, callback: Optional[MessageCallback] = None, **options: Any) -> int:
        """``subscribe`` (a ``confirm`` wait included) without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.subscribe(destination, callback, **options))

    async def adisconnect(self, timeout: float = 5.0) -> None:
        """``disconnect`` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.disconnect, timeout)


def _check(code: int, what: str) -> None:
    if code != _ffi.WSB_OK:
        raise error_for(code, what)


def _close_all_at_exit() -> None:
    for client in list(_live):
        try:
            client.close()
        except BaseException:  # noqa: BLE001
            pass


atexit.register(_close_all_at_exit)

__all__: Sequence[str] = ["Client", "ClientEvent"]
