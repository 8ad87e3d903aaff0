"""ctypes declarations of the wsbroker C ABI (``include/wsbroker.h``), and nothing else.

Everything the package calls in the shared library is declared in :data:`FUNCTIONS`, with the
ctypes type of every parameter and of the result; the structs shared with C are
:class:`WsbHeader`, :class:`WsbStats`, :class:`WsbClusterStats`, :class:`WsbEvent` and
:class:`WsbClientEvent`, the callback types are in
:data:`CALLBACK_TYPES`. ``tests/test_header.py`` parses the header and checks all of it: every
declared function exists with the same parameter types and result type, every struct has the
same fields (and, with a C compiler, the same offsets), every header function is either bound
here or listed in :data:`NOT_BOUND` with the reason. A C change that this file does not follow
fails that test instead of corrupting memory at run time.

Loading the library (and binding these declarations to it) is :mod:`wsbroker._library`.

Opaque handles get a ``c_void_p`` subclass each (:class:`ConfigHandle`, ...): ctypes then
refuses to pass a server handle where a config is expected, and the header test can tell a
``struct wsb_config *`` parameter from a ``struct wsb_server *`` one.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any, Dict, List, Tuple

#: The C ABI version this binding is written for (``WSB_ABI_VERSION``).
ABI_VERSION = 5

# ---------------------------------------------------------------------------------------------
# Result codes and constants (values are part of the ABI and never renumbered)

WSB_OK = 0
WSB_ERR_NULL_ARGUMENT = 100
WSB_ERR_INVALID_UTF8 = 101
WSB_ERR_INVALID_ARGUMENT = 102
WSB_ERR_INVALID_CONFIG = 103
WSB_ERR_ALREADY_STARTED = 200
WSB_ERR_NOT_RUNNING = 201
WSB_ERR_NOT_FOUND = 202
WSB_ERR_CALLED_FROM_CALLBACK = 203
WSB_ERR_NOT_CONNECTED = 204
WSB_ERR_ADDRESS_IN_USE = 300
WSB_ERR_IO = 301
WSB_ERR_BACKPRESSURE = 302
WSB_ERR_TIMEOUT = 303
WSB_ERR_REFUSED = 304
WSB_ERR_PANIC = 900

WSB_STRUCT_EVENT = 1
WSB_STRUCT_HEADER = 2
WSB_STRUCT_STATS = 3
WSB_STRUCT_CLIENT_EVENT = 4
WSB_STRUCT_CLUSTER_STATS = 5

WSB_CLIENT_EVENT_CONNECTED = 1
WSB_CLIENT_EVENT_DISCONNECTED = 2
WSB_CLIENT_EVENT_MESSAGE = 3
WSB_CLIENT_EVENT_RESUBSCRIBED = 4
WSB_CLIENT_EVENT_ERROR = 5
WSB_CLIENT_EVENT_RAW = 6
WSB_CLIENT_EVENT_OVERFLOW = 7

WSB_ACK_AUTO = 0
WSB_ACK_CLIENT = 1
WSB_ACK_CLIENT_INDIVIDUAL = 2

WSB_QUEUE_BLOCK = 0
WSB_QUEUE_FAIL_FAST = 1

WSB_DELIVERY_POLL = 0
WSB_DELIVERY_CALLBACK = 1

WSB_OVERFLOW_DROP_NEWEST = 0
WSB_OVERFLOW_DROP_OLDEST = 1

WSB_SLOW_CONSUMER_DISCONNECT = 0
WSB_SLOW_CONSUMER_DROP_OLDEST = 1
WSB_SLOW_CONSUMER_DROP_NEWEST = 2

WSB_JWT_ANONYMOUS = 0
WSB_JWT_TOKEN_DEFAULTS = 1

WSB_TRANSPORT_NONE = 0
WSB_TRANSPORT_WEBSOCKET = 1
WSB_TRANSPORT_TCP = 2

WSB_EVENT_CONNECT = 1
WSB_EVENT_SUBSCRIBE = 2
WSB_EVENT_DISCONNECT = 3
WSB_EVENT_APP_MESSAGE = 4
WSB_EVENT_MESSAGE = 5
WSB_EVENT_OVERFLOW = 6
WSB_EVENT_MESSAGES_DROPPED = 7
WSB_EVENT_RAW_OPEN = 8
WSB_EVENT_RAW_MESSAGE = 9
WSB_EVENT_RAW_CLOSE = 10
WSB_EVENT_BROKER_AVAILABLE = 11
WSB_EVENT_BROKER_UNAVAILABLE = 12
WSB_EVENT_BACKPLANE_AVAILABLE = 13
WSB_EVENT_BACKPLANE_UNAVAILABLE = 14

WSB_RAW_HOST = 0
WSB_RAW_BROADCAST = 1
WSB_RAW_ECHO = 2
WSB_RAW_POLICY_SERVER = 255

WSB_LOG_ERROR = 1
WSB_LOG_WARN = 2
WSB_LOG_INFO = 3
WSB_LOG_DEBUG = 4
WSB_LOG_TRACE = 5

# ---------------------------------------------------------------------------------------------
# C types, named as in the header


#: ``enum wsb_result``: a C enum, passed as an ``int``; its values fit ``int32_t``.
wsb_result = c_int32


class ConfigHandle(c_void_p):
    """``struct wsb_config *`` (opaque)."""


class ServerHandle(c_void_p):
    """``struct wsb_server *`` (opaque)."""


class ClientConfigHandle(c_void_p):
    """``struct wsb_client_config *`` (opaque)."""


class ClientHandle(c_void_p):
    """``struct wsb_client *`` (opaque)."""


class HistoryHandle(c_void_p):
    """``struct wsb_history *`` (opaque; freed with ``wsb_history_free``)."""


class PresenceHandle(c_void_p):
    """``struct wsb_presence *`` (opaque; freed with ``wsb_presence_free``)."""


class UpgradeRequestHandle(c_void_p):
    """``const struct wsb_upgrade_request *`` (opaque; valid during the upgrade callback)."""


class UpgradeDecisionHandle(c_void_p):
    """``struct wsb_upgrade_decision *`` (opaque; valid during the upgrade callback)."""


#: ``const char *`` arguments: bytes in, pointer + length (need not be NUL-terminated).
string_in = c_char_p
#: ``const uint8_t *`` arguments (bodies): ``c_void_p`` takes a ``bytes`` object as is.
bytes_in = c_void_p
#: ``char *`` output buffers (a ``ctypes.create_string_buffer``).
buffer_out = c_void_p


class WsbHeader(Structure):
    """``wsb_header``: one STOMP header as pointer + length pairs."""

    _fields_ = [
        ("name", c_char_p),
        ("name_len", c_size_t),
        ("value", c_char_p),
        ("value_len", c_size_t),
    ]


class WsbStats(Structure):
    """``wsb_stats``: 17 x ``uint64_t`` counters, in this order."""

    _fields_ = [
        ("connections", c_uint64),
        ("connections_total", c_uint64),
        ("connections_refused", c_uint64),
        ("sessions", c_uint64),
        ("subscriptions", c_uint64),
        ("messages_in", c_uint64),
        ("messages_out", c_uint64),
        ("bytes_in", c_uint64),
        ("bytes_out", c_uint64),
        ("dropped", c_uint64),
        ("slow_consumer_disconnects", c_uint64),
        ("publishers_paused", c_uint64),
        ("publishes_refused", c_uint64),
        ("auth_refused", c_uint64),
        ("auth_denied", c_uint64),
        ("auth_expired", c_uint64),
        ("auth_refreshed", c_uint64),
    ]


class WsbClusterStats(Structure):
    """``wsb_cluster_stats``: a ``bool`` (padded to 8 bytes) then 5 x ``uint64_t``."""

    _fields_ = [
        ("available", c_bool),
        ("engine_subscriptions", c_uint64),
        ("published", c_uint64),
        ("received", c_uint64),
        ("dropped", c_uint64),
        ("reconnects", c_uint64),
    ]


class WsbEvent(Structure):
    """``wsb_event``: the tagged event of both delivery modes.

    Pointer fields are declared as ``c_void_p`` (not ``c_char_p``), so that reading a field
    never converts it implicitly (a ``c_char_p`` stops at the first NUL): the binding copies
    exactly ``*_len`` bytes with ``ctypes.string_at``.
    """

    _fields_ = [
        ("kind", c_uint32),
        ("transport", c_uint32),
        ("session", c_uint64),
        ("subscription", c_uint64),
        ("dropped", c_uint64),
        ("user", c_void_p),
        ("user_len", c_size_t),
        ("login", c_void_p),
        ("login_len", c_size_t),
        ("passcode", c_void_p),
        ("passcode_len", c_size_t),
        ("destination", c_void_p),
        ("destination_len", c_size_t),
        ("remote_addr", c_void_p),
        ("remote_addr_len", c_size_t),
        ("headers", c_void_p),  # const wsb_header *
        ("header_count", c_size_t),
        ("body", c_void_p),  # const uint8_t *
        ("body_len", c_size_t),
        ("binary", c_uint32),
        ("close_code", c_uint32),
        ("query", c_void_p),
        ("query_len", c_size_t),
        ("reason", c_void_p),
        ("reason_len", c_size_t),
    ]


class WsbClientEvent(Structure):
    """``wsb_client_event``: what a client tells its host (pointers untyped, as in
    :class:`WsbEvent`)."""

    _fields_ = [
        ("kind", c_uint32),
        ("reconnected", c_uint32),
        ("reconnecting", c_uint32),
        ("recovered", c_uint32),
        ("binary", c_uint32),
        ("reserved", c_uint32),
        ("subscription", c_uint64),
        ("dropped", c_uint64),
        ("destination", c_void_p),
        ("destination_len", c_size_t),
        ("ack_id", c_void_p),
        ("ack_id_len", c_size_t),
        ("text", c_void_p),
        ("text_len", c_size_t),
        ("server", c_void_p),
        ("server_len", c_size_t),
        ("headers", c_void_p),  # const wsb_header *
        ("header_count", c_size_t),
        ("body", c_void_p),  # const uint8_t *
        ("body_len", c_size_t),
    ]


class WsbHeaderView(Structure):
    """Same layout as :class:`WsbHeader`, with untyped pointers: for reading headers out of C
    memory by pointer + length (embedded NULs and all)."""

    _fields_ = [
        (name, c_void_p if ctype is c_char_p else ctype) for name, ctype in WsbHeader._fields_
    ]


#: Structs shared with C, by their C name (checked against the header by the tests).
STRUCTS: Dict[str, type] = {
    "wsb_header": WsbHeader,
    "wsb_stats": WsbStats,
    "wsb_cluster_stats": WsbClusterStats,
    "wsb_event": WsbEvent,
    "wsb_client_event": WsbClientEvent,
}

#: `which` values of wsb_struct_size, by C struct name.
STRUCT_IDS: Dict[str, int] = {
    "wsb_event": WSB_STRUCT_EVENT,
    "wsb_header": WSB_STRUCT_HEADER,
    "wsb_stats": WSB_STRUCT_STATS,
    "wsb_client_event": WSB_STRUCT_CLIENT_EVENT,
    "wsb_cluster_stats": WSB_STRUCT_CLUSTER_STATS,
}

_P = ctypes.sizeof(c_void_p)
#: sizeof of each shared struct under the C layout rules, for this platform's pointer size:
#: the fallback when a library cannot report its own (see ``_library``).
C_LAYOUT_SIZEOF: Dict[str, int] = {
    "wsb_header": 4 * _P,
    "wsb_stats": 17 * 8,
    "wsb_cluster_stats": 8 + 5 * 8,  # bool, padded to uint64_t's alignment
    "wsb_event": 4 + 4 + 3 * 8 + 7 * (_P + _P) + 4 + 4 + 2 * (_P + _P),
    "wsb_client_event": 6 * 4 + 2 * 8 + 6 * (_P + _P),
}

# ---------------------------------------------------------------------------------------------
# Callback types (user_data first, as in the header)

DropCallback = CFUNCTYPE(None, c_void_p)
WakeCallback = CFUNCTYPE(None, c_void_p)
EventCallback = CFUNCTYPE(None, c_void_p, POINTER(WsbEvent))
AppCallback = CFUNCTYPE(c_int32, c_void_p, POINTER(WsbEvent), buffer_out, c_size_t)
LogCallback = CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p)
UpgradeCallback = CFUNCTYPE(None, c_void_p, UpgradeRequestHandle, UpgradeDecisionHandle)
ClientEventCallback = CFUNCTYPE(None, c_void_p, POINTER(WsbClientEvent))

#: The header's callback typedefs, by name (checked against the header by the tests).
CALLBACK_TYPES: Dict[str, Any] = {
    "wsb_drop_callback": DropCallback,
    "wsb_wake_callback": WakeCallback,
    "wsb_event_callback": EventCallback,
    "wsb_app_callback": AppCallback,
    "wsb_log_callback": LogCallback,
    "wsb_upgrade_callback": UpgradeCallback,
    "wsb_client_event_callback": ClientEventCallback,
}

# ---------------------------------------------------------------------------------------------
# Functions: name -> (restype, argtypes), in the header's order.

_cfg = ConfigHandle
_srv = ServerHandle
_req = UpgradeRequestHandle
_dec = UpgradeDecisionHandle
_res = wsb_result
_str = string_in
_len = c_size_t
_hdrs = POINTER(WsbHeader)
_ccfg = ClientConfigHandle
_cli = ClientHandle
_out_str = POINTER(c_char_p)  # const char ** (strings out of an upgrade request)

FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "wsb_version": (c_char_p, []),
    "wsb_abi_version": (c_uint32, []),
    "wsb_struct_size": (c_size_t, [c_uint32]),
    "wsb_result_str": (c_char_p, [c_int32]),
    "wsb_last_error": (c_size_t, [buffer_out, c_size_t]),
    "wsb_set_log_callback": (_res, [LogCallback, c_void_p, c_int32]),
    # config (wsbroker._config)
    "wsb_config_new": (_res, [POINTER(ConfigHandle)]),
    "wsb_config_free": (None, [_cfg]),
    "wsb_config_set_listen": (_res, [_cfg, _str, _len]),
    "wsb_config_set_path": (_res, [_cfg, _str, _len]),
    "wsb_config_set_tcp_listen": (_res, [_cfg, _str, _len]),
    "wsb_config_add_allowed_origin": (_res, [_cfg, _str, _len]),
    "wsb_config_add_app_prefix": (_res, [_cfg, _str, _len]),
    "wsb_config_set_heartbeat": (_res, [_cfg, c_uint32, c_uint32]),
    "wsb_config_set_timeouts": (_res, [_cfg, c_uint32, c_uint32, c_uint32, c_uint32]),
    "wsb_config_set_max_frame_size": (_res, [_cfg, c_size_t]),
    "wsb_config_set_permessage_deflate": (_res, [_cfg, c_bool, c_size_t, c_uint32]),
    "wsb_config_set_max_connections": (_res, [_cfg, c_size_t]),
    "wsb_config_set_max_connections_per_ip": (_res, [_cfg, c_size_t]),
    "wsb_config_set_outbound_limits": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_set_flow_control": (_res, [_cfg, c_size_t, c_size_t, c_uint32]),
    "wsb_config_set_callback_threads": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_add_history": (_res, [_cfg, _str, _len, c_size_t, c_uint64, c_bool]),
    "wsb_config_set_history_max_destinations": (_res, [_cfg, c_size_t]),
    "wsb_config_add_presence": (_res, [_cfg, _str, _len]),
    "wsb_config_set_presence_limits": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_set_max_queue_depth": (_res, [_cfg, c_size_t]),
    "wsb_config_set_header_limits": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_set_max_subscriptions": (_res, [_cfg, c_size_t]),
    "wsb_config_set_max_unacked": (_res, [_cfg, c_size_t]),
    "wsb_config_set_transaction_limits": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_set_prefixes": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_worker_threads": (_res, [_cfg, c_uint32]),
    "wsb_config_set_delivery_mode": (_res, [_cfg, c_uint32]),
    "wsb_config_set_event_queue": (_res, [_cfg, c_size_t, c_uint32]),
    "wsb_config_set_slow_consumer_policy": (_res, [_cfg, c_uint32]),
    "wsb_config_set_defer": (_res, [_cfg, c_bool, c_bool]),
    "wsb_config_set_decision_timeout": (_res, [_cfg, c_uint32]),
    "wsb_config_set_wake_callback": (_res, [_cfg, WakeCallback, c_void_p, DropCallback]),
    "wsb_config_set_event_callback": (_res, [_cfg, EventCallback, c_void_p, DropCallback]),
    "wsb_config_set_sockjs_path": (_res, [_cfg, _str, _len]),
    "wsb_config_set_sockjs_limits": (_res, [_cfg, c_uint32, c_uint32, c_size_t]),
    "wsb_config_set_sockjs_options": (_res, [_cfg, c_bool, c_bool]),
    "wsb_config_set_static_dir": (_res, [_cfg, _str, _len]),
    "wsb_config_set_data_dir": (_res, [_cfg, _str, _len]),
    "wsb_config_set_fsync_window": (_res, [_cfg, c_uint32]),
    "wsb_config_set_tls_files": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_tls_pem": (_res, [_cfg, bytes_in, _len, bytes_in, _len]),
    "wsb_config_set_tls_client_ca": (_res, [_cfg, bytes_in, _len, c_bool]),
    # token authentication (wsbroker._config)
    "wsb_config_set_jwt_hmac_secret": (_res, [_cfg, bytes_in, _len]),
    "wsb_config_set_jwt_public_key_pem": (_res, [_cfg, _str, _len]),
    "wsb_config_set_jwt_jwks_file": (_res, [_cfg, _str, _len]),
    "wsb_config_set_jwt_algorithms": (_res, [_cfg, _str, _len]),
    "wsb_config_set_jwt_claims": (_res, [_cfg, _str, _len, _str, _len, c_uint32]),
    "wsb_config_set_jwt_sources": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_jwt_required": (_res, [_cfg, c_bool]),
    "wsb_config_set_jwt_permissions": (_res, [_cfg, c_uint32, _str, _len, _str, _len]),
    "wsb_config_set_jwt_private": (_res, [_cfg, _str, _len]),
    "wsb_config_set_jwt_refresh": (_res, [_cfg, _str, _len, c_size_t]),
    # relay mode (wsbroker._config)
    "wsb_config_set_relay": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_credentials": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_relay_system_credentials": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_relay_virtual_host": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_heartbeat": (_res, [_cfg, c_uint32, c_uint32]),
    "wsb_config_clear_relay_prefixes": (_res, [_cfg]),
    "wsb_config_add_relay_prefix": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_session_restore": (_res, [_cfg, c_bool]),
    # cluster mode (wsbroker._config)
    "wsb_config_set_cluster_redis": (_res, [_cfg, _str, _len]),
    "wsb_config_set_cluster_nats": (_res, [_cfg, _str, _len]),
    "wsb_config_set_cluster_node_id": (_res, [_cfg, _str, _len]),
    "wsb_config_set_cluster_prefix": (_res, [_cfg, _str, _len]),
    # server lifecycle (wsbroker._server)
    "wsb_server_new": (_res, [_cfg, POINTER(ServerHandle)]),
    "wsb_server_free": (_res, [_srv]),
    "wsb_server_start": (_res, [_srv]),
    "wsb_server_stop": (_res, [_srv, c_uint32]),
    "wsb_server_local_port": (_res, [_srv, POINTER(c_uint16)]),
    "wsb_server_tcp_port": (_res, [_srv, POINTER(c_uint16)]),
    "wsb_server_last_error": (_res, [_srv, buffer_out, c_size_t, POINTER(c_size_t)]),
    "wsb_server_stats": (_res, [_srv, POINTER(WsbStats)]),
    "wsb_server_cluster_stats": (_res, [_srv, POINTER(WsbClusterStats)]),
    # publishing
    "wsb_server_publish_recorded": (
        _res,
        [_srv, _str, _len, _hdrs, c_size_t, bytes_in, c_size_t, c_uint32, POINTER(c_uint64), POINTER(c_size_t)],
    ),
    # history (wsbroker._history)
    "wsb_server_history": (_res, [_srv, _str, _len, c_uint64, c_size_t, POINTER(HistoryHandle)]),
    "wsb_history_free": (None, [HistoryHandle]),
    "wsb_history_position": (
        _res,
        [HistoryHandle, _out_str, POINTER(c_size_t), POINTER(c_uint64), POINTER(c_bool)],
    ),
    "wsb_history_len": (c_size_t, [HistoryHandle]),
    "wsb_history_message": (_res, [HistoryHandle, c_size_t, POINTER(c_uint64), POINTER(POINTER(WsbEvent))]),
    # presence (wsbroker._presence)
    "wsb_server_presence": (_res, [_srv, _str, _len, POINTER(PresenceHandle)]),
    "wsb_presence_free": (None, [PresenceHandle]),
    "wsb_presence_count": (c_size_t, [PresenceHandle]),
    "wsb_presence_member": (
        _res,
        [PresenceHandle, c_size_t, POINTER(c_uint64), _out_str, POINTER(c_size_t), _out_str, POINTER(c_size_t)],
    ),
    "wsb_server_send_to_user": (
        _res,
        [_srv, _str, _len, _str, _len, _hdrs, c_size_t, bytes_in, c_size_t],
    ),
    "wsb_server_send_to_session": (
        _res,
        [_srv, c_uint64, _str, _len, _hdrs, c_size_t, bytes_in, c_size_t],
    ),
    "wsb_server_disconnect": (_res, [_srv, c_uint64, _str, _len]),
    # host subscriptions and app handlers
    "wsb_server_subscribe": (
        _res,
        [_srv, _str, _len, EventCallback, c_void_p, DropCallback, POINTER(c_uint64)],
    ),
    "wsb_server_unsubscribe": (_res, [_srv, c_uint64]),
    "wsb_server_handle_app": (_res, [_srv, _str, _len, AppCallback, c_void_p, DropCallback]),
    "wsb_server_remove_app": (_res, [_srv, _str, _len]),
    # decisions
    "wsb_server_accept": (_res, [_srv, c_uint64, _str, _len]),
    "wsb_server_reject": (_res, [_srv, c_uint64, _str, _len]),
    "wsb_server_answer_subscribe": (_res, [_srv, c_uint64, c_bool, _str, _len]),
    # poll mode (wsbroker._poll)
    "wsb_server_poll": (_res, [_srv, POINTER(WsbEvent), c_size_t, POINTER(c_size_t)]),
    "wsb_server_poll_timeout": (
        _res,
        [_srv, POINTER(WsbEvent), c_size_t, c_uint32, POINTER(c_size_t)],
    ),
    # raw WebSocket mode (wsbroker._raw)
    "wsb_server_add_raw_endpoint": (
        _res,
        [_srv, _str, _len, c_uint32, _str, _len, c_uint32, c_size_t],
    ),
    "wsb_server_add_raw_sockjs_endpoint": (
        _res,
        [_srv, _str, _len, c_uint32, c_uint32, c_size_t, c_bool, c_bool, c_size_t],
    ),
    "wsb_server_raw_subscribe": (_res, [_srv, c_uint64, _str, _len, POINTER(c_uint32)]),
    "wsb_server_raw_unsubscribe": (_res, [_srv, c_uint64, _str, _len, POINTER(c_uint32)]),
    "wsb_server_raw_publish": (
        _res,
        [_srv, _str, _len, bytes_in, c_size_t, c_uint32, POINTER(c_size_t)],
    ),
    "wsb_server_raw_send": (_res, [_srv, c_uint64, bytes_in, c_size_t, c_uint32]),
    "wsb_server_raw_close": (_res, [_srv, c_uint64, c_uint16, _str, _len]),
    "wsb_server_raw_set_user_data": (_res, [_srv, c_uint64, c_uint64]),
    "wsb_server_raw_user_data": (_res, [_srv, c_uint64, POINTER(c_uint64)]),
    "wsb_server_raw_buffered_bytes": (_res, [_srv, c_uint64, POINTER(c_size_t)]),
    # handshake-level auth (wsbroker._upgrade)
    "wsb_upgrade_request_path": (_res, [_req, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_request_query": (_res, [_req, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_request_query_param": (_res, [_req, _str, _len, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_request_header": (_res, [_req, _str, _len, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_request_cookie": (_res, [_req, _str, _len, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_request_remote_addr": (_res, [_req, _out_str, POINTER(c_size_t)]),
    "wsb_upgrade_accept": (_res, [_dec, _str, _len]),
    "wsb_upgrade_reject": (_res, [_dec, c_uint16, _str, _len]),
    "wsb_server_set_upgrade_callback": (_res, [_srv, UpgradeCallback, c_void_p, DropCallback]),
    # the client (wsbroker._client)
    "wsb_client_config_new": (_res, [_str, _len, POINTER(ClientConfigHandle)]),
    "wsb_client_config_free": (None, [_ccfg]),
    "wsb_client_config_set_login": (_res, [_ccfg, _str, _len, _str, _len]),
    "wsb_client_config_set_host": (_res, [_ccfg, _str, _len]),
    "wsb_client_config_add_header": (_res, [_ccfg, c_bool, _str, _len, _str, _len]),
    "wsb_client_config_set_raw": (_res, [_ccfg, c_bool, _str, _len]),
    "wsb_client_config_set_heartbeat": (_res, [_ccfg, c_uint32, c_uint32]),
    "wsb_client_config_set_permessage_deflate": (_res, [_ccfg, c_bool]),
    "wsb_client_config_set_tls": (_res, [_ccfg, c_bool, _str, _len, _str, _len]),
    "wsb_client_config_set_tls_client_cert": (_res, [_ccfg, _str, _len, _str, _len]),
    "wsb_client_config_set_timeouts": (_res, [_ccfg, c_uint32, c_uint32]),
    "wsb_client_config_set_reconnect": (_res, [_ccfg, c_bool, c_uint32, c_uint32, c_uint32]),
    "wsb_client_config_set_outbound_queue": (_res, [_ccfg, c_size_t, c_uint32, c_uint32]),
    "wsb_client_config_set_delivery": (_res, [_ccfg, c_uint32, c_size_t, c_uint32]),
    "wsb_client_config_set_wake_callback": (_res, [_ccfg, WakeCallback, c_void_p, DropCallback]),
    "wsb_client_config_set_event_callback": (
        _res,
        [_ccfg, ClientEventCallback, c_void_p, DropCallback],
    ),
    "wsb_client_new": (_res, [_ccfg, POINTER(ClientHandle)]),
    "wsb_client_free": (_res, [_cli]),
    "wsb_client_connect": (_res, [_cli, c_uint32]),
    "wsb_client_start": (_res, [_cli]),
    "wsb_client_is_connected": (_res, [_cli, POINTER(c_bool)]),
    "wsb_client_subscribe": (
        _res,
        [_cli, _str, _len, c_uint32, _hdrs, c_size_t, c_uint32, POINTER(c_uint64)],
    ),
    "wsb_client_unsubscribe": (_res, [_cli, c_uint64]),
    "wsb_client_send": (
        _res,
        [_cli, _str, _len, _hdrs, c_size_t, bytes_in, c_size_t, c_uint64, c_uint32],
    ),
    "wsb_client_ack": (_res, [_cli, _str, _len, c_uint64]),
    "wsb_client_nack": (_res, [_cli, _str, _len, c_uint64]),
    "wsb_client_begin": (_res, [_cli, POINTER(c_uint64)]),
    "wsb_client_end_transaction": (_res, [_cli, c_uint64, c_bool, c_uint32]),
    "wsb_client_send_raw": (_res, [_cli, bytes_in, c_size_t, c_bool]),
    "wsb_client_poll": (_res, [_cli, POINTER(WsbClientEvent), c_size_t, POINTER(c_size_t)]),
    "wsb_client_poll_timeout": (
        _res,
        [_cli, POINTER(WsbClientEvent), c_size_t, c_uint32, POINTER(c_size_t)],
    ),
    "wsb_client_disconnect": (_res, [_cli, c_uint32]),
    "wsb_client_last_error": (_res, [_cli, buffer_out, c_size_t, POINTER(c_size_t)]),
}

#: Exported only by test builds (cargo feature ``ffi-test-panic``); bound when present.
OPTIONAL_FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "wsb_debug_panic": (_res, []),
}

#: Header functions this package deliberately does not bind, with the reason. The header test
#: fails for any other header function missing from FUNCTIONS/OPTIONAL_FUNCTIONS, so a new C
#: function is either bound or consciously listed here. Empty today: the binding covers the
#: whole C ABI but for the two publishes that wsb_server_publish_recorded covers.
NOT_BOUND: Dict[str, str] = {
    "wsb_server_publish": "Server.publish calls wsb_server_publish_recorded (timeout_ms 0), which also "
    "returns the history offset",
    "wsb_server_publish_wait": "Server.publish(wait=...) calls wsb_server_publish_recorded with a timeout",
}
