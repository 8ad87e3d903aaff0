"""Python-side events: plain objects copied out of C memory, safe to keep after the call."""

from __future__ import annotations

import ctypes
import enum
import json as _json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _ffi


class EventKind(enum.IntEnum):
    """``WSB_EVENT_*``."""

    CONNECT = _ffi.WSB_EVENT_CONNECT
    SUBSCRIBE = _ffi.WSB_EVENT_SUBSCRIBE
    DISCONNECT = _ffi.WSB_EVENT_DISCONNECT
    APP_MESSAGE = _ffi.WSB_EVENT_APP_MESSAGE
    MESSAGE = _ffi.WSB_EVENT_MESSAGE
    OVERFLOW = _ffi.WSB_EVENT_OVERFLOW
    MESSAGES_DROPPED = _ffi.WSB_EVENT_MESSAGES_DROPPED
    RAW_OPEN = _ffi.WSB_EVENT_RAW_OPEN
    RAW_MESSAGE = _ffi.WSB_EVENT_RAW_MESSAGE
    RAW_CLOSE = _ffi.WSB_EVENT_RAW_CLOSE
    BROKER_AVAILABLE = _ffi.WSB_EVENT_BROKER_AVAILABLE
    BROKER_UNAVAILABLE = _ffi.WSB_EVENT_BROKER_UNAVAILABLE
    BACKPLANE_AVAILABLE = _ffi.WSB_EVENT_BACKPLANE_AVAILABLE
    BACKPLANE_UNAVAILABLE = _ffi.WSB_EVENT_BACKPLANE_UNAVAILABLE


class Transport(enum.IntEnum):
    """``WSB_TRANSPORT_*``: the listener a connection came through."""

    NONE = _ffi.WSB_TRANSPORT_NONE
    WEBSOCKET = _ffi.WSB_TRANSPORT_WEBSOCKET
    TCP = _ffi.WSB_TRANSPORT_TCP


HeaderList = List[Tuple[str, str]]


def _headers_dict(pairs: HeaderList) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)  # STOMP: the first occurrence of a repeated header wins
    return out


@dataclass(frozen=True)
class ConnectEvent:
    """A client sent CONNECT. With deferred connect decisions (``on_connect`` or
    ``defer_connect=True``) the session waits for ``accept``/``reject``."""

    session: int
    transport: Transport
    login: Optional[str]
    passcode: Optional[str] = field(repr=False)
    remote_addr: Optional[str]
    header_list: HeaderList = field(repr=False)
    #: The upgrade hook's principal, else the verified token's ``sub`` (token authentication).
    principal: Optional[str] = None
    kind: EventKind = field(default=EventKind.CONNECT, init=False)

    @property
    def headers(self) -> Dict[str, str]:
        return _headers_dict(self.header_list)


@dataclass(frozen=True)
class SubscribeEvent:
    """A session wants to subscribe (only with ``on_subscribe``/``defer_subscribe=True``);
    it waits for ``answer_subscribe``."""

    session: int
    user: Optional[str]
    destination: str
    header_list: HeaderList = field(repr=False)
    kind: EventKind = field(default=EventKind.SUBSCRIBE, init=False)

    @property
    def headers(self) -> Dict[str, str]:
        return _headers_dict(self.header_list)


@dataclass(frozen=True)
class DisconnectEvent:
    """A connected session ended."""

    session: int
    transport: Transport
    user: Optional[str]
    remote_addr: Optional[str]
    kind: EventKind = field(default=EventKind.DISCONNECT, init=False)


@dataclass(frozen=True)
class Message:
    """A message: a client's SEND to an application destination (``kind`` APP_MESSAGE, with
    ``session`` and ``user`` of the sender) or a message seen by a host subscription (``kind``
    MESSAGE, with ``subscription``)."""

    kind: EventKind
    destination: str
    body: bytes = field(repr=False)
    header_list: HeaderList = field(repr=False)
    session: int = 0
    user: Optional[str] = None
    subscription: int = 0

    @property
    def headers(self) -> Dict[str, str]:
        """Headers as a dict (the first of repeated headers wins); all are in ``header_list``."""
        return _headers_dict(self.header_list)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)


@dataclass(frozen=True)
class OverflowEvent:
    """The event queue was full and ``dropped`` events were lost."""

    dropped: int
    kind: EventKind = field(default=EventKind.OVERFLOW, init=False)


@dataclass(frozen=True)
class MessagesDroppedEvent:
    """``count`` messages for a client subscription were dropped by a limit (a drop policy,
    a slow consumer disconnected with its queue, an unacknowledged limit) since the previous
    report for it: at most one every 250 ms per subscription. ``destination`` is the last
    dropped message's."""

    session: int
    subscription: str
    destination: str
    count: int
    kind: EventKind = field(default=EventKind.MESSAGES_DROPPED, init=False)


@dataclass(frozen=True)
class RawOpenEvent:
    """A client connected to a raw endpoint (``Server.add_raw_endpoint``); ``conn`` is its
    raw connection id, usable with the ``raw_*`` methods from now on."""

    conn: int
    endpoint: str
    query: Optional[str]
    remote_addr: Optional[str]
    header_list: HeaderList = field(repr=False)
    user: Optional[str] = None
    kind: EventKind = field(default=EventKind.RAW_OPEN, init=False)

    @property
    def headers(self) -> Dict[str, str]:
        """The upgrade request's headers (names lowercased; the first of repeated ones)."""
        return _headers_dict(self.header_list)


@dataclass(frozen=True)
class RawMessageEvent:
    """A message from a client of a host-driven raw endpoint."""

    conn: int
    data: bytes = field(repr=False)
    binary: bool
    kind: EventKind = field(default=EventKind.RAW_MESSAGE, init=False)

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (a text message always is)."""
        return self.data.decode("utf-8", "replace")


@dataclass(frozen=True)
class RawCloseEvent:
    """A raw connection ended (its id is stale from now on). ``code`` is the peer's close code,
    the server's when it closed (1001 shutdown/idle, 1008 slow consumer, ``raw_close``'s), or
    1006 when the connection dropped without a close."""

    conn: int
    code: int
    reason: str
    kind: EventKind = field(default=EventKind.RAW_CLOSE, init=False)


@dataclass(frozen=True)
class BrokerEvent:
    """Relay mode: the system connection to the external message broker came up
    (``kind`` BROKER_AVAILABLE, ``available`` true) or cannot reach it (BROKER_UNAVAILABLE, with
    the ``reason``); it retries with backoff meanwhile."""

    kind: EventKind
    available: bool
    reason: Optional[str] = None


@dataclass(frozen=True)
class BackplaneEvent:
    """Cluster mode: the engine (Redis or NATS) is reachable (again) (``kind``
    BACKPLANE_AVAILABLE, ``available`` true: publications reach the other nodes) or cannot be
    reached (BACKPLANE_UNAVAILABLE, with the ``reason``: the link retries with backoff, local
    clients are still served)."""

    kind: EventKind
    available: bool
    reason: Optional[str] = None


Event = Union[
    ConnectEvent,
    SubscribeEvent,
    DisconnectEvent,
    Message,
    OverflowEvent,
    MessagesDroppedEvent,
    RawOpenEvent,
    RawMessageEvent,
    RawCloseEvent,
    BrokerEvent,
    BackplaneEvent,
]


class Reject(Exception):
    """Refuses a connect, a subscription or an application message with ``message``.

    Return it (``return wsbroker.Reject("bad credentials")``) or raise it from a handler; the
    client receives an ERROR frame carrying the message. From ``on_upgrade`` it refuses the
    WebSocket upgrade with HTTP ``status`` (401: not authenticated, 403: not allowed; the
    default) and ``message`` as the response body.
    """

    def __init__(self, message: str = "refused", status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = int(status)


@dataclass(frozen=True)
class Accept:
    """Accepts a connect as ``user`` (``None``: no user, so no ``/user/...`` destinations)."""

    user: Optional[str] = None


@dataclass(frozen=True)
class Stats:
    """``wsb_stats``: a snapshot of the server's counters."""

    connections: int
    connections_total: int
    connections_refused: int
    sessions: int
    subscriptions: int
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    dropped: int
    slow_consumer_disconnects: int
    publishers_paused: int
    publishes_refused: int
    auth_refused: int
    auth_denied: int
    auth_expired: int
    auth_refreshed: int


@dataclass(frozen=True)
class ClusterStats:
    """``wsb_cluster_stats``: a snapshot of a cluster node's figures (``Server.cluster_stats()``)."""

    #: Whether the engine (Redis or NATS) is reachable.
    available: bool
    #: Engine subscriptions held and confirmed by the engine (destinations and patterns with
    #: local subscribers, and the history rules' patterns): a publication made anywhere after
    #: the count includes a new subscriber's reaches it.
    engine_subscriptions: int
    #: Publications of this node handed to the engine.
    published: int
    #: Publications of other nodes received.
    received: int
    #: Publications of this node the other nodes did not get (made while the engine was
    #: unreachable, or lost with the connection).
    dropped: int
    #: Times the engine link was lost and opened again.
    reconnects: int


# ---------------------------------------------------------------------------------------------
# Copying out of C memory


def _bytes(ptr: Optional[int], length: int) -> bytes:
    if not ptr or length == 0:
        return b""
    return ctypes.string_at(ptr, length)


def _opt_str(ptr: Optional[int], length: int) -> Optional[str]:
    if not ptr:
        return None
    return ctypes.string_at(ptr, length).decode("utf-8", "replace") if length else ""


def _str(ptr: Optional[int], length: int) -> str:
    return _bytes(ptr, length).decode("utf-8", "replace")


def _header_list(ptr: Optional[int], count: int) -> HeaderList:
    if not ptr or count == 0:
        return []
    arr = ctypes.cast(ptr, ctypes.POINTER(_ffi.WsbHeaderView * count)).contents
    return [(_str(h.name, h.name_len), _str(h.value, h.value_len)) for h in arr]


def copy_event(ev: _ffi.WsbEvent) -> Optional[Event]:
    """Copies one ``wsb_event`` into a Python object (``None`` for an unknown kind)."""
    kind = ev.kind
    if kind == _ffi.WSB_EVENT_CONNECT:
        return ConnectEvent(
            session=ev.session,
            transport=_transport(ev.transport),
            login=_opt_str(ev.login, ev.login_len),
            passcode=_opt_str(ev.passcode, ev.passcode_len),
            remote_addr=_opt_str(ev.remote_addr, ev.remote_addr_len),
            header_list=_header_list(ev.headers, ev.header_count),
            principal=_opt_str(ev.user, ev.user_len),
        )
    if kind == _ffi.WSB_EVENT_SUBSCRIBE:
        return SubscribeEvent(
            session=ev.session,
            user=_opt_str(ev.user, ev.user_len),
            destination=_str(ev.destination, ev.destination_len),
            header_list=_header_list(ev.headers, ev.header_count),
        )
    if kind == _ffi.WSB_EVENT_DISCONNECT:
        return DisconnectEvent(
            session=ev.session,
            transport=_transport(ev.transport),
            user=_opt_str(ev.user, ev.user_len),
            remote_addr=_opt_str(ev.remote_addr, ev.remote_addr_len),
        )
    if kind in (_ffi.WSB_EVENT_APP_MESSAGE, _ffi.WSB_EVENT_MESSAGE):
        return Message(
            kind=EventKind(kind),
            destination=_str(ev.destination, ev.destination_len),
            body=_bytes(ev.body, ev.body_len),
            header_list=_header_list(ev.headers, ev.header_count),
            session=ev.session,
            user=_opt_str(ev.user, ev.user_len),
            subscription=ev.subscription,
        )
    if kind == _ffi.WSB_EVENT_OVERFLOW:
        return OverflowEvent(dropped=ev.dropped)
    if kind == _ffi.WSB_EVENT_MESSAGES_DROPPED:
        headers = dict(_header_list(ev.headers, ev.header_count))
        return MessagesDroppedEvent(
            session=ev.session,
            subscription=headers.get("subscription", ""),
            destination=_str(ev.destination, ev.destination_len),
            count=ev.dropped,
        )
    if kind == _ffi.WSB_EVENT_RAW_OPEN:
        return RawOpenEvent(
            conn=ev.session,
            endpoint=_str(ev.destination, ev.destination_len),
            query=_opt_str(ev.query, ev.query_len),
            remote_addr=_opt_str(ev.remote_addr, ev.remote_addr_len),
            header_list=_header_list(ev.headers, ev.header_count),
            user=_opt_str(ev.user, ev.user_len),
        )
    if kind == _ffi.WSB_EVENT_RAW_MESSAGE:
        return RawMessageEvent(
            conn=ev.session, data=_bytes(ev.body, ev.body_len), binary=bool(ev.binary)
        )
    if kind == _ffi.WSB_EVENT_RAW_CLOSE:
        return RawCloseEvent(
            conn=ev.session, code=ev.close_code, reason=_str(ev.reason, ev.reason_len)
        )
    if kind == _ffi.WSB_EVENT_BROKER_AVAILABLE:
        return BrokerEvent(kind=EventKind.BROKER_AVAILABLE, available=True)
    if kind == _ffi.WSB_EVENT_BROKER_UNAVAILABLE:
        return BrokerEvent(kind=EventKind.BROKER_UNAVAILABLE, available=False,
                           reason=_str(ev.body, ev.body_len))
    if kind == _ffi.WSB_EVENT_BACKPLANE_AVAILABLE:
        return BackplaneEvent(kind=EventKind.BACKPLANE_AVAILABLE, available=True)
    if kind == _ffi.WSB_EVENT_BACKPLANE_UNAVAILABLE:
        return BackplaneEvent(kind=EventKind.BACKPLANE_UNAVAILABLE, available=False,
                              reason=_str(ev.body, ev.body_len))
    return None


def _transport(value: int) -> Transport:
    try:
        return Transport(value)
    except ValueError:
        return Transport.NONE


def stats_from(raw: _ffi.WsbStats) -> Stats:
    return Stats(**{name: getattr(raw, name) for name, _ in raw._fields_})


def cluster_stats_from(raw: _ffi.WsbClusterStats) -> ClusterStats:
    return ClusterStats(**{name: getattr(raw, name) for name, _ in raw._fields_})
