"""The :class:`Config` object: a ``wsb_config`` with one typed attribute per setting.

Each attribute mirrors a ``wsb_config_set_*`` call of the header. Assigning one checks the
value (types and C ranges, see :mod:`wsbroker._convert`) and calls C at once, so a bad value
raises on the line that sets it, with the library's own error text; the value is kept on the
Python side too, so every attribute reads back. Settings that C takes together in one call
(``wsb_config_set_timeouts`` takes four) are separate attributes here: assigning one re-issues
that call with the group's other current values.

Some values are checked only when the server is created (a path without a leading ``/``, an
empty list of relay prefixes): :meth:`Server.start` raises for those, as
:class:`~wsbroker.InvalidConfig` or :class:`~wsbroker.InvalidArgument`.

The defaults below are the library's (``ServerConfig::default`` in ``src/config.rs``, most of
them also documented in the header), with one exception: ``port`` is 0 (any free port)
rather than 61614, as it always was in this package.
"""

from __future__ import annotations

import os
from ctypes import byref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _convert as cv
from . import _ffi
from ._errors import InvalidArgument, check
from ._history import HistoryRule
from ._library import lib
from ._managed import Managed

MODES = {"poll": _ffi.WSB_DELIVERY_POLL, "callback": _ffi.WSB_DELIVERY_CALLBACK}
OVERFLOW_POLICIES = {"drop_newest": _ffi.WSB_OVERFLOW_DROP_NEWEST, "drop_oldest": _ffi.WSB_OVERFLOW_DROP_OLDEST}
SLOW_CONSUMER_POLICIES = {
    "disconnect": _ffi.WSB_SLOW_CONSUMER_DISCONNECT,
    "drop_oldest": _ffi.WSB_SLOW_CONSUMER_DROP_OLDEST,
    "drop_newest": _ffi.WSB_SLOW_CONSUMER_DROP_NEWEST,
}

Apply = Callable[["Config", int], None]


class Setting:
    """One typed attribute of :class:`Config`.

    ``convert(value, name)`` checks and normalizes an assigned value; ``apply(config, handle)``
    issues the C call(s) of the setting's group from the config's current values. A value
    the library refuses is rolled back (the C config is re-issued with the previous values),
    so attributes always read what C holds.
    """

    def __init__(self, default: Any, convert: Callable[[Any, str], Any], apply: Apply, doc: str) -> None:
        self.default = default
        self.convert = convert
        self.apply = apply
        self.__doc__ = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, config: Optional["Config"], owner: type) -> Any:
        if config is None:
            return self
        return config._values.get(self.name, self.default)

    def __set__(self, config: "Config", value: Any) -> None:
        config._assign(self.name, self.convert(value, self.name), self.apply)


# --- converters (value, name) -> value --------------------------------------------------------


def _str(value: Any, name: str) -> str:
    cv.text(value, name)
    return value


def _opt_str(value: Any, name: str) -> Optional[str]:
    return None if value is None else _str(value, name)


def _flag(value: Any, name: str) -> bool:
    if value not in (True, False):  # True/False, or 1/0
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return bool(value)


def _opt_port(value: Any, name: str) -> Optional[int]:
    return None if value is None else cv.port(value, name)


def _ms_pair(value: Any, name: str) -> Tuple[int, int]:
    return cv.count_pair(value, name, cv.milliseconds)


def _size_pair(value: Any, name: str) -> Tuple[int, int]:
    return cv.count_pair(value, name, cv.usize)


def _login(value: Any, name: str) -> Tuple[str, str]:
    cv.pair_of_text(value, name)
    return (value[0], value[1])


def _path_like(value: Any, name: str) -> Optional[str]:
    if value is None:
        return None
    return _str(os.fspath(value), name)


def _one_of(choices: Dict[str, int]) -> Callable[[Any, str], str]:
    def convert(value: Any, name: str) -> str:
        cv.choice(value, choices, name)
        return value

    return convert


def _prefix_list(value: Any, name: str) -> Optional[Tuple[str, ...]]:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of str, not a str")
    return tuple(_str(v, f"{name} item") for v in value)


# --- appliers: one per C setter (group) -------------------------------------------------------


def _text_setter(fn_name: str, attr: str) -> Apply:
    """For ``wsb_config_set_X(config, const char *, size_t)`` with NULL meaning "off"."""

    def apply(config: "Config", handle: int) -> None:
        raw = cv.optional_text(getattr(config, attr), attr)
        check(getattr(lib, fn_name)(handle, raw, len(raw or b"")), attr)

    return apply


def _number_setter(fn_name: str, attr: str) -> Apply:
    """For ``wsb_config_set_X(config, <integer or bool>)``."""

    def apply(config: "Config", handle: int) -> None:
        check(getattr(lib, fn_name)(handle, getattr(config, attr)), attr)

    return apply


def _group_setter(fn_name: str, *attrs: str, what: str = "") -> Apply:
    """For a C setter that takes several settings at once (in ``attrs`` order)."""

    def apply(config: "Config", handle: int) -> None:
        check(getattr(lib, fn_name)(handle, *(getattr(config, a) for a in attrs)), what or "/".join(attrs))

    return apply


def _listen(config: "Config", handle: int) -> None:
    addr = cv.address(config.host, config.port, "listen")
    check(lib.wsb_config_set_listen(handle, addr, len(addr)), "listen address")
    # The TCP listener defaults to the WebSocket host, so it follows a new host.
    _tcp_listen(config, handle)


def _tcp_listen(config: "Config", handle: int) -> None:
    if config.tcp_port is None:
        check(lib.wsb_config_set_tcp_listen(handle, None, 0), "tcp listen address")
        return
    addr = cv.address(config.tcp_host or config.host, config.tcp_port, "tcp listen")
    check(lib.wsb_config_set_tcp_listen(handle, addr, len(addr)), "tcp listen address")


def _pair_setter(fn_name: str, attr: str) -> Apply:
    """For ``wsb_config_set_X(config, a, b)`` kept as one ``(a, b)`` attribute."""

    def apply(config: "Config", handle: int) -> None:
        check(getattr(lib, fn_name)(handle, *getattr(config, attr)), attr)

    return apply


def _deflate(config: "Config", handle: int) -> None:
    check(lib.wsb_config_set_permessage_deflate(
        handle, config.permessage_deflate, config.deflate_threshold, config.deflate_level), "permessage_deflate")


def _prefixes(config: "Config", handle: int) -> None:
    q, u = cv.text(config.queue_prefix, "queue_prefix"), cv.text(config.user_prefix, "user_prefix")
    check(lib.wsb_config_set_prefixes(handle, q, len(q), u, len(u)), "queue_prefix/user_prefix")


def _delivery_mode(config: "Config", handle: int) -> None:
    check(lib.wsb_config_set_delivery_mode(handle, MODES[config.mode]), "mode")


def _event_queue(config: "Config", handle: int) -> None:
    check(lib.wsb_config_set_event_queue(
        handle, config.event_queue_capacity, OVERFLOW_POLICIES[config.overflow]), "event queue")


def _slow_consumer(config: "Config", handle: int) -> None:
    check(lib.wsb_config_set_slow_consumer_policy(
        handle, SLOW_CONSUMER_POLICIES[config.slow_consumer_policy]), "slow_consumer_policy")


def _sockjs_path(config: "Config", handle: int) -> None:
    path = cv.text(config.sockjs_path or "", "sockjs_path")  # None or "" turns SockJS off
    check(lib.wsb_config_set_sockjs_path(handle, path, len(path)), "sockjs_path")


#: The relay settings other than ``relay`` itself, in the order they are re-issued.
RELAY_SETTINGS = ("relay_login", "relay_system_login", "relay_vhost", "relay_heartbeat_ms",
                  "relay_prefixes", "relay_session_restore")


def _store(config: "Config", handle: int) -> None:
    raw = cv.optional_text(config.data_dir, "data_dir")
    check(lib.wsb_config_set_data_dir(handle, raw, len(raw or b"")), "data_dir")
    if raw is not None:
        check(lib.wsb_config_set_fsync_window(handle, config.fsync_window_ms), "fsync_window_ms")


def _relay(config: "Config", handle: int) -> None:
    """The whole relay group. ``wsb_config_set_relay`` resets every other relay setting to its
    default, so it is re-issued first and the settings made so far follow: assignment order
    does not matter. ``relay = None`` turns relay mode off and forgets the other relay
    settings, as C does."""
    if config.relay is None:
        if config._assigning == "relay":
            for name in RELAY_SETTINGS:
                config._values.pop(name, None)
        set_here = [name for name in RELAY_SETTINGS if name in config._values]
        if set_here:
            raise InvalidArgument(f"{set_here[0]}: relay mode is off: set relay first")
        check(lib.wsb_config_set_relay(handle, None, 0), "relay")
        return
    set_here = [name for name in RELAY_SETTINGS if name in config._values]
    broker = cv.text(config.relay, "relay")
    check(lib.wsb_config_set_relay(handle, broker, len(broker)), "relay")
    for fn, name in ((lib.wsb_config_set_relay_credentials, "relay_login"),
                     (lib.wsb_config_set_relay_system_credentials, "relay_system_login")):
        if name in set_here:
            login, passcode = cv.pair_of_text(getattr(config, name), name)
            check(fn(handle, login, len(login), passcode, len(passcode)), name)
    if config.relay_vhost is not None:
        vhost = cv.text(config.relay_vhost, "relay_vhost")
        check(lib.wsb_config_set_relay_virtual_host(handle, vhost, len(vhost)), "relay_vhost")
    if "relay_heartbeat_ms" in set_here:
        check(lib.wsb_config_set_relay_heartbeat(handle, *config.relay_heartbeat_ms), "relay_heartbeat_ms")
    if config.relay_prefixes is not None:
        check(lib.wsb_config_clear_relay_prefixes(handle), "relay_prefixes")
        for prefix in config.relay_prefixes:
            p = cv.text(prefix, "relay prefix")
            check(lib.wsb_config_add_relay_prefix(handle, p, len(p)), "relay_prefixes")
    check(lib.wsb_config_set_relay_session_restore(handle, config.relay_session_restore), "relay_session_restore")


#: The two cluster engines (one at most may be set) and the other cluster settings, in the
#: order they are re-issued.
CLUSTER_ENGINES = ("cluster_redis", "cluster_nats")
CLUSTER_SETTINGS = ("node_id", "cluster_prefix")


def _cluster(config: "Config", handle: int) -> None:
    """The whole cluster group. ``wsb_config_set_cluster_redis`` / ``_nats`` reset the other
    cluster settings to their defaults, so the engine is re-issued first and the settings made
    so far follow: assignment order does not matter. An engine set to ``None`` (with the other
    one unset) turns cluster mode off and forgets the other cluster settings, as C does."""
    engines = [name for name in CLUSTER_ENGINES if getattr(config, name) is not None]
    if len(engines) > 1:
        named = config._assigning if config._assigning in engines else engines[1]
        raise InvalidArgument(f"{named}: cluster_redis and cluster_nats are both set: a cluster node uses "
                              "one engine (set the other to None first)")
    if not engines:
        if config._assigning in CLUSTER_ENGINES:
            for name in CLUSTER_SETTINGS:
                config._values.pop(name, None)
        set_here = [name for name in CLUSTER_SETTINGS if name in config._values]
        if set_here:
            raise InvalidArgument(f"{set_here[0]}: cluster mode is off: set cluster_redis or cluster_nats first")
        check(lib.wsb_config_set_cluster_redis(handle, None, 0), "cluster_redis")
        return
    set_here = [name for name in CLUSTER_SETTINGS if name in config._values]
    engine = engines[0]
    url = cv.text(getattr(config, engine), engine)
    setter = lib.wsb_config_set_cluster_redis if engine == "cluster_redis" else lib.wsb_config_set_cluster_nats
    check(setter(handle, url, len(url)), engine)
    if config.node_id is not None:
        node_id = cv.text(config.node_id, "node_id")
        check(lib.wsb_config_set_cluster_node_id(handle, node_id, len(node_id)), "node_id")
    if "cluster_prefix" in set_here:
        prefix = cv.text(config.cluster_prefix, "cluster_prefix")
        check(lib.wsb_config_set_cluster_prefix(handle, prefix, len(prefix)), "cluster_prefix")


def _hide_password(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host`` (for ``repr``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


#: The token-authentication settings other than the key, in the order they are re-issued.
JWT_SETTINGS = ("jwt_algorithms", "jwt_issuer", "jwt_audience", "jwt_leeway_s", "jwt_cookie",
                "jwt_query_param", "jwt_required", "jwt_default_subscribe", "jwt_default_publish",
                "allow_subscribe", "allow_publish", "jwt_refresh_destination", "jwt_max_token_size",
                "jwt_private")
JWT_KEYS = ("jwt_hmac_secret", "jwt_public_key", "jwt_jwks_file")


def _secret(value: Any, name: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{name} must be bytes or str, not {type(value).__name__}")
    return bytes(value)


def _pem(value: Any, name: str) -> Optional[str]:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8")
    return _opt_str(value, name)


def _patterns(value: Any, name: str) -> Tuple[str, ...]:
    patterns = _prefix_list(value, name) or ()
    if any("," in p for p in patterns):
        raise InvalidArgument(f"{name}: a pattern may not contain ','")
    return patterns


def _tls_source(value: Any, name: str) -> Union[None, str, bytes]:
    """A PEM file path (str or os.PathLike) or PEM text in memory (bytes)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise InvalidArgument(f"{name}: empty PEM")
        return bytes(value)
    return _path_like(value, name)


def _tls_pair(value: Any, name: str) -> Optional[Tuple[Union[str, bytes], Union[str, bytes]]]:
    """``(cert, key)``: both file paths or both PEM bytes."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, bytearray)) or len(value) != 2:
        raise TypeError(f"{name} must be a (cert, key) pair")
    cert, key = _tls_source(value[0], f"{name} cert"), _tls_source(value[1], f"{name} key")
    if cert is None or key is None or isinstance(cert, bytes) != isinstance(key, bytes):
        raise InvalidArgument(f"{name}: cert and key must be both file paths or both PEM bytes")
    return (cert, key)


def _tls(config: "Config", handle: int) -> None:
    """TLS on every listener: ``tls=(cert, key)`` first, then ``tls_client_ca`` (file or PEM
    bytes) requires client certificates."""
    ca = config.tls_client_ca
    if config.tls is None:
        if ca is not None:
            raise InvalidArgument("tls_client_ca: TLS is off: set tls=(cert, key) first")
        check(lib.wsb_config_set_tls_files(handle, None, 0, None, 0), "tls")
        return
    cert, key = config.tls
    if isinstance(cert, bytes):
        check(lib.wsb_config_set_tls_pem(handle, cert, len(cert), key, len(key)), "tls")
    else:
        c, k = cert.encode("utf-8"), key.encode("utf-8")
        check(lib.wsb_config_set_tls_files(handle, c, len(c), k, len(k)), "tls")
    if ca is None:
        check(lib.wsb_config_set_tls_client_ca(handle, None, 0, False), "tls_client_ca")
    elif isinstance(ca, bytes):
        check(lib.wsb_config_set_tls_client_ca(handle, ca, len(ca), False), "tls_client_ca")
    else:
        raw = ca.encode("utf-8")
        check(lib.wsb_config_set_tls_client_ca(handle, raw, len(raw), True), "tls_client_ca")


def _jwt(config: "Config", handle: int) -> None:
    """The whole token-authentication group: the key first (one of ``JWT_KEYS``; none turns
    authentication off), then every other setting with its current value."""
    keys = [name for name in JWT_KEYS if getattr(config, name) is not None]
    if len(keys) > 1:
        raise InvalidArgument(f"{keys[1]}: only one of {', '.join(JWT_KEYS)} may be set")
    if not keys:
        set_here = [name for name in JWT_SETTINGS if name in config._values]
        if set_here:
            raise InvalidArgument(f"{set_here[0]}: token authentication is off: set jwt_hmac_secret, "
                                  "jwt_public_key or jwt_jwks_file first")
        check(lib.wsb_config_set_jwt_hmac_secret(handle, None, 0), "jwt_hmac_secret")
        return
    if keys[0] == "jwt_hmac_secret":
        secret = config.jwt_hmac_secret
        check(lib.wsb_config_set_jwt_hmac_secret(handle, secret, len(secret)), "jwt_hmac_secret")
    elif keys[0] == "jwt_public_key":
        pem = cv.text(config.jwt_public_key, "jwt_public_key")
        check(lib.wsb_config_set_jwt_public_key_pem(handle, pem, len(pem)), "jwt_public_key")
    else:
        path = cv.text(config.jwt_jwks_file, "jwt_jwks_file")
        check(lib.wsb_config_set_jwt_jwks_file(handle, path, len(path)), "jwt_jwks_file")
    algs = cv.text(",".join(config.jwt_algorithms or ()), "jwt_algorithms")
    check(lib.wsb_config_set_jwt_algorithms(handle, algs, len(algs)), "jwt_algorithms")
    iss, aud = cv.optional_text(config.jwt_issuer, "jwt_issuer"), cv.optional_text(config.jwt_audience, "jwt_audience")
    check(lib.wsb_config_set_jwt_claims(handle, iss, len(iss or b""), aud, len(aud or b""),
                                        config.jwt_leeway_s), "jwt_issuer/jwt_audience/jwt_leeway_s")
    cookie = cv.optional_text(config.jwt_cookie, "jwt_cookie")
    query = cv.optional_text(config.jwt_query_param, "jwt_query_param")
    check(lib.wsb_config_set_jwt_sources(handle, cookie, len(cookie or b""), query, len(query or b"")),
          "jwt_cookie/jwt_query_param")
    check(lib.wsb_config_set_jwt_required(handle, config.jwt_required), "jwt_required")
    for who, sub, pub, what in (
        (_ffi.WSB_JWT_TOKEN_DEFAULTS, config.jwt_default_subscribe, config.jwt_default_publish,
         "jwt_default_subscribe/jwt_default_publish"),
        (_ffi.WSB_JWT_ANONYMOUS, config.allow_subscribe, config.allow_publish, "allow_subscribe/allow_publish"),
    ):
        s, p = cv.text(",".join(sub), what), cv.text(",".join(pub), what)
        check(lib.wsb_config_set_jwt_permissions(handle, who, s, len(s), p, len(p)), what)
    dest = cv.text(config.jwt_refresh_destination, "jwt_refresh_destination")
    check(lib.wsb_config_set_jwt_refresh(handle, dest, len(dest), config.jwt_max_token_size),
          "jwt_refresh_destination/jwt_max_token_size")
    private = cv.text(",".join(config.jwt_private), "jwt_private")
    check(lib.wsb_config_set_jwt_private(handle, private, len(private)), "jwt_private")


class Config(Managed):
    """The settings of one server (a ``wsb_config``); see the module docstring.

    ``Config(**settings)`` takes any attribute below as a keyword, and
    ``allowed_origins=[...]`` / ``app_prefixes=[...]`` for the two add-only lists. Pass it to
    :class:`Server` (``Server(config, on_connect=...)``); one Config serves one server, and is
    freed when that server starts (its attributes still read back; assigning raises).
    Not thread-safe, like the C config: set it up from one thread.
    """

    _what = "config"

    # --- the WebSocket listener and the plain-TCP STOMP listener
    host = Setting("127.0.0.1", _str, _listen, "WebSocket listen address (an IP address).")
    port = Setting(0, cv.port, _listen, "WebSocket port; 0 (the default here) picks a free one: read server.port.")
    path = Setting("/ws", _str, _text_setter("wsb_config_set_path", "path"), "HTTP path of the STOMP WebSocket endpoint.")
    tcp_port = Setting(None, _opt_port, _tcp_listen, "Plain-TCP STOMP port (None: that listener is off; 0: a free port).")
    tcp_host = Setting(None, _opt_str, _tcp_listen, "Plain-TCP listen address (None: the same as host).")
    # --- STOMP timing
    heartbeat_ms = Setting((10000, 10000), _ms_pair, _pair_setter("wsb_config_set_heartbeat", "heartbeat_ms"),
                           "STOMP heart-beats offered (send, receive) in ms; one int sets both; 0 disables.")
    handshake_timeout_ms = Setting(10000, cv.milliseconds, _group_setter(
        "wsb_config_set_timeouts", "handshake_timeout_ms", "connect_timeout_ms", "idle_timeout_ms",
        "ping_interval_ms", what="timeouts"), "Longest HTTP upgrade (0: the default, 10 s).")
    connect_timeout_ms = Setting(30000, cv.milliseconds, handshake_timeout_ms.apply,
                                 "Longest wait for the CONNECT frame (0: the default, 30 s).")
    idle_timeout_ms = Setting(70000, cv.milliseconds, handshake_timeout_ms.apply,
                              "Closes a silent WebSocket connection after this long (0 disables).")
    ping_interval_ms = Setting(25000, cv.milliseconds, handshake_timeout_ms.apply,
                               "WebSocket ping interval on quiet connections (0 disables).")
    decision_timeout_ms = Setting(10000, cv.milliseconds, _number_setter(
        "wsb_config_set_decision_timeout", "decision_timeout_ms"),
        "How long a deferred connect/subscribe decision may take before the client is refused.")
    # --- limits
    max_frame_size = Setting(4 << 20, cv.usize, _number_setter("wsb_config_set_max_frame_size", "max_frame_size"),
                             "Largest STOMP frame accepted, in bytes (at most 1 GiB).")
    max_connections = Setting(10000, cv.usize, _number_setter("wsb_config_set_max_connections", "max_connections"),
                              "Most simultaneous connections over all listeners.")
    max_connections_per_ip = Setting(10000, cv.usize, _number_setter(
        "wsb_config_set_max_connections_per_ip", "max_connections_per_ip"),
        "Most simultaneous connections from one client IP address.")
    outbound_limits = Setting((16 * 1024, 8 << 20), _size_pair, _pair_setter(
        "wsb_config_set_outbound_limits", "outbound_limits"),
        "(frames, bytes) one connection may have queued; past either it is a slow consumer.")
    outbound_high_watermark = Setting(1 << 20, cv.usize, _group_setter(
        "wsb_config_set_flow_control", "outbound_high_watermark", "outbound_low_watermark",
        "slow_consumer_timeout_ms", what="flow control"),
        "Flow control: above this many queued bytes a connection's queue is congested and the "
        "clients publishing into it are paused (host publishes raise Backpressure).")
    outbound_low_watermark = Setting(256 << 10, cv.usize, outbound_high_watermark.apply,
                                     "Flow control: a congested queue is relieved at or below this many bytes.")
    slow_consumer_timeout_ms = Setting(10000, cv.milliseconds, outbound_high_watermark.apply,
                                       "A congested queue that does not move for this long is a stuck "
                                       "client: it is disconnected as a slow consumer.")
    history_max_destinations = Setting(100000, cv.usize, _number_setter(
        "wsb_config_set_history_max_destinations", "history_max_destinations"),
        "Most destinations with a history at once; past it the least recently used one is "
        "dropped (its next message starts a new epoch).")
    data_dir = Setting(None, _path_like, _store,
                       "Durable store directory: queues and histories survive a restart, and a receipt for "
                       "a SEND to them comes once the message is on disk (None: in memory).")
    fsync_window_ms = Setting(0, cv.u32, _store,
                              "With data_dir: 0 syncs every commit at once; 1..10000 collects messages for "
                              "that many ms and syncs them together.")
    presence_event_limit = Setting(100, cv.usize, _group_setter(
        "wsb_config_set_presence_limits", "presence_event_limit", "presence_max_info", what="presence limits"),
        "Above this many members a destination sends no presence join/leave MESSAGEs or snapshots.")
    presence_max_info = Setting(256, cv.usize, presence_event_limit.apply,
                                "Longest x-presence-info a SUBSCRIBE may give, in bytes.")
    max_queue_depth = Setting(100000, cv.usize, _number_setter("wsb_config_set_max_queue_depth", "max_queue_depth"),
                              "Most messages a /queue/ destination holds while no consumer takes them.")
    max_headers = Setting(64, cv.usize, _group_setter(
        "wsb_config_set_header_limits", "max_headers", "max_header_length", what="header limits"),
        "Most headers in one STOMP frame.")
    max_header_length = Setting(8192, cv.usize, max_headers.apply, "Longest STOMP header line, in bytes.")
    max_subscriptions = Setting(1024, cv.usize, _number_setter(
        "wsb_config_set_max_subscriptions", "max_subscriptions"), "Most subscriptions one session may hold.")
    max_unacked = Setting(1024, cv.usize, _number_setter("wsb_config_set_max_unacked", "max_unacked"),
                          "Unacknowledged messages per client-ack subscription (prefetch-count may lower it).")
    max_transaction_frames = Setting(10000, cv.usize, _group_setter(
        "wsb_config_set_transaction_limits", "max_transaction_frames", "max_open_transactions",
        what="transaction limits"), "Frames buffered in one transaction.")
    max_open_transactions = Setting(16, cv.usize, max_transaction_frames.apply,
                                    "Transactions open at once in one session.")
    # --- destinations
    queue_prefix = Setting("/queue/", _str, _prefixes, "Prefix of point-to-point queue destinations.")
    user_prefix = Setting("/user/", _str, _prefixes, "Prefix of per-user destinations.")
    # --- threads, delivery of events, host decisions
    worker_threads = Setting(0, cv.u32, _number_setter("wsb_config_set_worker_threads", "worker_threads"),
                             "Threads of the server's runtime (0: one per CPU).")
    callback_threads = Setting(4, cv.usize, _group_setter(
        "wsb_config_set_callback_threads", "callback_threads", "callback_queue", what="callback threads"),
        "Callback mode: threads that run handlers and callbacks (never the IO threads); one "
        "session's callbacks run on one of them, in order.")
    callback_queue = Setting(65536, cv.usize, callback_threads.apply,
                             "Callback mode: callbacks waiting in all; a full queue pauses the client "
                             "(application messages) or drops (subscription messages: counted in stats().dropped).")
    mode = Setting("poll", _one_of(MODES), _delivery_mode,
                   "'poll': handlers run in poll()/aevents(); 'callback': on the library's threads.")
    event_queue_capacity = Setting(65536, cv.usize, _event_queue, "Poll mode: events the queue holds.")
    overflow = Setting("drop_newest", _one_of(OVERFLOW_POLICIES), _event_queue,
                       "Poll mode: what a full event queue drops ('drop_newest' or 'drop_oldest').")
    slow_consumer_policy = Setting("disconnect", _one_of(SLOW_CONSUMER_POLICIES), _slow_consumer,
                                   "Broadcast subscriptions of a full connection: 'disconnect', 'drop_oldest' "
                                   "or 'drop_newest'.")
    defer_connect = Setting(False, _flag, _group_setter("wsb_config_set_defer", "defer_connect", "defer_subscribe",
                                                        what="defer"),
                            "Every CONNECT waits for accept()/reject() (on_connect turns it on by itself).")
    defer_subscribe = Setting(False, _flag, defer_connect.apply,
                              "Every SUBSCRIBE waits for answer_subscribe() (on_subscribe turns it on).")
    # --- the HTTP side: SockJS, static files, compression
    sockjs_path = Setting("/sockjs", _opt_str, _sockjs_path, "SockJS URL prefix (None or '' turns SockJS off).")
    sockjs_heartbeat_ms = Setting(0, cv.milliseconds, _group_setter(
        "wsb_config_set_sockjs_limits", "sockjs_heartbeat_ms", "sockjs_disconnect_delay_ms", "sockjs_response_limit",
        what="sockjs limits"), "SockJS 'h' frame interval (0: the default, 25 s).")
    sockjs_disconnect_delay_ms = Setting(0, cv.milliseconds, sockjs_heartbeat_ms.apply,
                                         "SockJS disconnect delay (0: the default, 5 s).")
    sockjs_response_limit = Setting(0, cv.usize, sockjs_heartbeat_ms.apply,
                                    "Bytes after which a SockJS streaming response ends (0: the default, 128 KiB).")
    sockjs_websocket = Setting(True, _flag, _group_setter(
        "wsb_config_set_sockjs_options", "sockjs_websocket", "sockjs_cookie_needed", what="sockjs options"),
        "Whether SockJS offers its websocket transport.")
    sockjs_cookie_needed = Setting(False, _flag, sockjs_websocket.apply,
                                   "Whether SockJS responses set a JSESSIONID cookie (sticky load balancers).")
    static_dir = Setting(None, _path_like, _text_setter("wsb_config_set_static_dir", "static_dir"),
                         "Directory served over HTTP on the WebSocket port (None: off).")
    tls = Setting(None, _tls_pair, _tls, "TLS (wss://) as (certificate chain, private key): both PEM file paths "
                  "or both PEM bytes (None: TLS off); comes before tls_client_ca.")
    tls_client_ca = Setting(None, _tls_source, _tls, "CA bundle (PEM file path or bytes) every client certificate "
                                                     "must chain to (None: no client certificates).")
    permessage_deflate = Setting(True, _flag, _deflate, "Accept WebSocket compression (RFC 7692) when offered.")
    deflate_threshold = Setting(256, cv.usize, _deflate, "Compress outbound messages of at least this many bytes.")
    deflate_level = Setting(0, cv.u32, _deflate, "zlib level 1..9 (0: the default, 6).")
    # --- relay mode (destinations live on an external STOMP broker); `relay` comes first
    relay = Setting(None, _opt_str, _relay, "'host:port' of the external STOMP broker (None: relay mode off).")
    relay_login = Setting(("guest", "guest"), _login, _relay, "(login, passcode) of the client sessions' "
                                                             "broker connections.")
    relay_system_login = Setting(("guest", "guest"), _login, _relay,
                                 "(login, passcode) of the shared system connection.")
    relay_vhost = Setting(None, _opt_str, _relay, "The 'host' header of broker CONNECTs (None: the broker's default).")
    relay_heartbeat_ms = Setting((10000, 10000), _ms_pair, _relay, "Heart-beats on broker connections (send, "
                                                                   "receive) in ms.")
    relay_prefixes = Setting(None, _prefix_list, _relay,
                             "Relayed destination prefixes (None: the library's: /topic, /queue, /exchange, ...).")
    relay_session_restore = Setting(False, _flag, _relay,
                                    "Re-make a session's broker connection (and subscriptions) when it drops.")

    # --- cluster mode: nodes on one Redis or NATS share their broadcast and
    # /user destinations and host publishes; the engine comes first
    cluster_redis = Setting(None, _opt_str, _cluster,
                            "Cluster mode on Redis: 'redis://[user:password@]host[:port][/db]' ('rediss://' for "
                            "TLS) (None: off; not together with cluster_nats).")
    cluster_nats = Setting(None, _opt_str, _cluster,
                           "Cluster mode on NATS core subjects: 'nats://host[:port]', several servers "
                           "comma-separated (None: off; not together with cluster_redis).")
    node_id = Setting(None, _opt_str, _cluster,
                      "Cluster mode: this node's name in logs and metrics (None: host name and process id).")
    cluster_prefix = Setting("wsbroker", _str, _cluster,
                             "Cluster mode: the prefix of every engine channel or subject (letters, digits, '-' "
                             "and '_'); clusters sharing one engine keep apart with different prefixes.")

    # --- token (JWT) authentication (docs/authentication.md); one key turns it on, and the
    # key settings come first
    jwt_hmac_secret = Setting(None, _secret, _jwt, "HMAC secret (bytes or str) verifying tokens (None: off).")
    jwt_public_key = Setting(None, _pem, _jwt, "RSA, EC or Ed25519 public key in PEM verifying tokens (None: off).")
    jwt_jwks_file = Setting(None, _path_like, _jwt, "JWKS file with the verifying keys, reloaded when it changes.")
    jwt_algorithms = Setting(None, _prefix_list, _jwt,
                             "Accepted algorithms, e.g. ('RS256',) (None: inferred from the key).")
    jwt_issuer = Setting(None, _opt_str, _jwt, "Required 'iss' claim (None: not checked).")
    jwt_audience = Setting(None, _opt_str, _jwt, "Required 'aud' claim (None: tokens with an 'aud' are refused).")
    jwt_leeway_s = Setting(30, cv.u32, _jwt, "Clock skew allowed on 'exp' and 'nbf', in seconds.")
    jwt_cookie = Setting(None, _opt_str, _jwt, "Cookie carrying the token on upgrade and SockJS requests.")
    jwt_query_param = Setting("access_token", _opt_str, _jwt,
                              "Query parameter carrying the token (None or '': none).")
    jwt_required = Setting(False, _flag, _jwt, "Refuse clients without a token.")
    jwt_default_subscribe = Setting(("**",), _patterns, _jwt,
                                    "Patterns tokens without 'wsb' claims may subscribe to.")
    jwt_default_publish = Setting(("**",), _patterns, _jwt, "Patterns tokens without 'wsb' claims may publish to.")
    allow_subscribe = Setting((), _patterns, _jwt, "Patterns sessions without a token may subscribe to.")
    allow_publish = Setting((), _patterns, _jwt, "Patterns sessions without a token may publish to.")
    jwt_refresh_destination = Setting("/wsb/refresh", _str, _jwt,
                                      "Destination a client SENDs a new token to (refresh without reconnecting).")
    jwt_max_token_size = Setting(8192, cv.usize, _jwt, "Largest token accepted, in bytes.")
    jwt_private = Setting((), _patterns, _jwt,
                          "Private destinations: a SUBSCRIBE needs a subscription token (x-sub-token header; "
                          "sub = the session's user, wsb.dest = the destination); its expiry ends that "
                          "subscription only.")

    def __init__(self, *, allowed_origins: Iterable[str] = (), app_prefixes: Iterable[str] = (),
                 history: Iterable[Any] = (), presence: Iterable[str] = (), **settings: Any) -> None:
        super().__init__()
        self._values: Dict[str, Any] = {}
        self._lists: Dict[str, List[str]] = {"allowed_origins": [], "app_prefixes": [], "presence": []}
        self._history: List[HistoryRule] = []
        self._owner: Optional[str] = None
        self._assigning = ""  # the setting being assigned (see _relay)
        unknown = sorted(set(settings) - set(SETTING_NAMES))
        if unknown:
            raise TypeError(f"unknown wsbroker setting(s): {', '.join(unknown)}")
        out = _ffi.ConfigHandle()
        check(lib.wsb_config_new(byref(out)), "wsb_config_new")
        self._adopt(out.value)
        try:
            with self._borrow() as handle:
                _listen(self, handle)  # port 0 here, where C defaults to 61614
            for name in SETTING_NAMES:  # declaration order: `relay` before the other relay settings,
                # the cluster engines before node_id and cluster_prefix
                if name in settings:
                    setattr(self, name, settings[name])
            for origin in _items(allowed_origins, "allowed_origins"):
                self.add_allowed_origin(origin)
            for prefix in _items(app_prefixes, "app_prefixes"):
                self.add_app_prefix(prefix)
            for pattern in _items(presence, "presence"):
                self.add_presence(pattern)
            for rule in _items(history, "history"):
                self.add_history(HistoryRule.of(rule))
        except BaseException:
            self.close()
            raise

    # --- the add-only lists (C can add to them but not clear them) ----------------------------

    @property
    def allowed_origins(self) -> Tuple[str, ...]:
        """Allowed ``Origin`` values; while none is added every origin is allowed."""
        return tuple(self._lists["allowed_origins"])

    @property
    def app_prefixes(self) -> Tuple[str, ...]:
        """Application destination prefixes (SENDs there go to app handlers): ``("/app",)``
        until :meth:`add_app_prefix` is called; the first call replaces that default."""
        return tuple(self._lists["app_prefixes"]) or ("/app",)

    def add_allowed_origin(self, origin: str) -> None:
        """Allows one more ``Origin`` ("scheme://host[:port]")."""
        self._add("allowed_origins", origin, lib.wsb_config_add_allowed_origin, "allowed origin")

    @property
    def presence(self) -> Tuple[str, ...]:
        """Destination patterns whose every subscriber is a presence member."""
        return tuple(self._lists["presence"])

    def add_presence(self, pattern: str) -> None:
        """Makes every subscriber of the destinations matching ``pattern`` a presence member."""
        self._add("presence", pattern, lib.wsb_config_add_presence, "presence pattern")

    def add_app_prefix(self, prefix: str) -> None:
        """Adds an application destination prefix (the first call replaces ``/app``)."""
        self._add("app_prefixes", prefix, lib.wsb_config_add_app_prefix, "app prefix")

    @property
    def history(self) -> Tuple[HistoryRule, ...]:
        """History rules in the order added (the first matching rule applies)."""
        return tuple(self._history)

    def add_history(self, rule: Any, size: Optional[int] = None, ttl: Optional[float] = None,
                    last_value: bool = False) -> None:
        """Keeps a history for the destinations matching a pattern: ``add_history(rule)`` with
        a :class:`HistoryRule` (or a dict or tuple of its fields), or
        ``add_history(pattern, size, ttl=None, last_value=False)`` (``ttl`` in seconds)."""
        if size is not None:
            rule = HistoryRule(rule, size, ttl, last_value)
        rule = HistoryRule.of(rule)
        arguments = rule.c_arguments()
        self._writable()
        self._call("history rule", lib.wsb_config_add_history, *arguments)
        self._history.append(rule)

    def _add(self, key: str, value: str, fn: Any, what: str) -> None:
        raw = cv.text(value, what)
        self._writable()
        self._call(what, fn, raw, len(raw))
        self._lists[key].append(value)

    # --- assignment ---------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._closed:
            raise InvalidArgument(
                "this Config was used to start a server and is closed (its settings were copied "
                "then): make a new Config for another server"
            )

    def _assign(self, name: str, value: Any, apply: Apply) -> None:
        self._writable()
        before = dict(self._values)
        self._values[name] = value
        self._assigning = name
        try:
            with self._borrow() as handle:
                apply(self, handle)
        except BaseException:
            # Back to what C held before: the previous values, re-issued.
            self._values = before
            try:
                with self._borrow() as handle:
                    apply(self, handle)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
            raise
        finally:
            self._assigning = ""

    def settings(self) -> Dict[str, Any]:
        """Every setting's current value (passcodes included), by attribute name."""
        out = {name: getattr(self, name) for name in SETTING_NAMES}
        out["allowed_origins"] = self.allowed_origins
        out["app_prefixes"] = self.app_prefixes
        out["history"] = self.history
        out["presence"] = self.presence
        return out

    # --- ownership by a server ----------------------------------------------------------------

    def _claim(self) -> None:
        """Called by :class:`Server`: a Config serves one server (which frees it at start)."""
        with self._lock:
            self._writable()
            if self._owner is not None:
                raise InvalidArgument("this Config already belongs to another Server: make one Config per server")
            self._owner = "server"

    def _delete(self, handle: Optional[int]) -> None:
        if handle:
            lib.wsb_config_free(handle)

    def _not_open(self) -> Exception:
        return InvalidArgument("this Config is closed")

    def __repr__(self) -> str:
        changed = []
        for name in SETTING_NAMES:
            if name in self._values:
                value = self._values[name]
                if name in ("relay_login", "relay_system_login"):
                    value = (value[0], "***")
                elif name == "cluster_redis" and value is not None:
                    value = _hide_password(value)
                changed.append(f"{name}={value!r}")
        for key, values in self._lists.items():
            if values:
                changed.append(f"{key}={values!r}")
        if self._history:
            changed.append(f"history={self._history!r}")
        state = " closed" if self._closed else ""
        return f"<wsbroker.Config{state} {' '.join(changed) or '(defaults)'}>"


def _items(values: Iterable[str], what: str) -> Sequence[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a list of str, not a str")
    return list(values or ())


#: Every Setting attribute of Config, in declaration order (the order keywords are applied).
SETTING_NAMES: Tuple[str, ...] = tuple(name for name, v in vars(Config).items() if isinstance(v, Setting))
