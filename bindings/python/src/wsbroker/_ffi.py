"""ctypes declarations of the wsbroker C ABI (``include/wsbroker.h``), in one place.

Everything the package calls in the shared library is declared in :data:`FUNCTIONS`; the
structs shared with C are :class:`WsbHeader`, :class:`WsbStats` and :class:`WsbEvent`.
``tests/test_header.py`` parses the header and checks that every declaration here matches it
(function names and parameter counts, struct field names and order), so keep them in sync.

At import the library is located (``WSBROKER_LIBRARY`` first, else the copy bundled next to
this file), every function is bound with explicit ``restype``/``argtypes`` (a pointer result is
never left as the default ``int``), and the ABI version and struct sizes are checked.
"""

from __future__ import annotations

import ctypes
import os
import sys
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
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

#: Environment variable naming the shared library to load instead of the bundled copy.
LIBRARY_ENV = "WSBROKER_LIBRARY"

#: The C ABI version this binding is written for (``WSB_ABI_VERSION``).
ABI_VERSION = 2

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
WSB_ERR_ADDRESS_IN_USE = 300
WSB_ERR_IO = 301
WSB_ERR_BACKPRESSURE = 302
WSB_ERR_PANIC = 900

WSB_DELIVERY_POLL = 0
WSB_DELIVERY_CALLBACK = 1

WSB_OVERFLOW_DROP_NEWEST = 0
WSB_OVERFLOW_DROP_OLDEST = 1

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
# Structs (field names and order exactly as in the header)


class WsbHeader(Structure):
    """``wsb_header``: one STOMP header as pointer + length pairs."""

    _fields_ = [
        ("name", c_char_p),
        ("name_len", c_size_t),
        ("value", c_char_p),
        ("value_len", c_size_t),
    ]


class WsbStats(Structure):
    """``wsb_stats``: 11 x ``uint64_t`` counters, in this order."""

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
    ]


class WsbEvent(Structure):
    """``wsb_event``: the tagged event of both delivery modes.

    Strings are declared as ``c_void_p`` (not ``c_char_p``) so that reading a field never
    converts it implicitly: the binding copies exactly ``*_len`` bytes with ``ctypes.string_at``.
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
    "wsb_event": WsbEvent,
}

#: `which` values of wsb_struct_size (WSB_STRUCT_* in the header).
STRUCT_IDS: Dict[str, int] = {"wsb_event": 1, "wsb_header": 2, "wsb_stats": 3}

_P = ctypes.sizeof(c_void_p)
#: sizeof of each shared struct under the C layout rules of the spec, for this platform's
#: pointer size: a ctypes declaration that drifts from it fails at import.
C_LAYOUT_SIZEOF: Dict[str, int] = {
    "wsb_header": 4 * _P,
    "wsb_stats": 11 * 8,
    "wsb_event": 4 + 4 + 3 * 8 + 7 * (_P + _P) + 4 + 4 + 2 * (_P + _P),
}

# ---------------------------------------------------------------------------------------------
# Callback types (user_data first, as in the header)

DropCallback = CFUNCTYPE(None, c_void_p)
WakeCallback = CFUNCTYPE(None, c_void_p)
EventCallback = CFUNCTYPE(None, c_void_p, POINTER(WsbEvent))
AppCallback = CFUNCTYPE(c_int32, c_void_p, POINTER(WsbEvent), c_void_p, c_size_t)
LogCallback = CFUNCTYPE(None, c_void_p, c_int32, c_char_p, c_char_p)
#: (user_data, const wsb_upgrade_request *, wsb_upgrade_decision *): both opaque.
UpgradeCallback = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)

# ---------------------------------------------------------------------------------------------
# Functions: name -> (restype, argtypes). Opaque handles (wsb_config *, wsb_server *) are c_void_p.

_cfg = c_void_p
_srv = c_void_p
_res = c_int32  # wsb_result
_str = c_char_p  # const char * in
_len = c_size_t
_body = c_void_p  # const uint8_t *
_hdrs = POINTER(WsbHeader)

FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "wsb_version": (c_char_p, []),
    "wsb_abi_version": (c_uint32, []),
    "wsb_struct_size": (c_size_t, [c_uint32]),
    "wsb_result_str": (c_char_p, [c_int32]),
    "wsb_last_error": (c_size_t, [c_void_p, c_size_t]),
    "wsb_set_log_callback": (_res, [LogCallback, c_void_p, c_int32]),
    # config
    "wsb_config_new": (_res, [POINTER(c_void_p)]),
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
    "wsb_config_set_outbound_limits": (_res, [_cfg, c_size_t, c_size_t]),
    "wsb_config_set_max_queue_depth": (_res, [_cfg, c_size_t]),
    "wsb_config_set_worker_threads": (_res, [_cfg, c_uint32]),
    "wsb_config_set_delivery_mode": (_res, [_cfg, c_uint32]),
    "wsb_config_set_event_queue": (_res, [_cfg, c_size_t, c_uint32]),
    "wsb_config_set_defer": (_res, [_cfg, c_bool, c_bool]),
    # relay mode
    "wsb_config_set_relay": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_credentials": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_relay_system_credentials": (_res, [_cfg, _str, _len, _str, _len]),
    "wsb_config_set_relay_virtual_host": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_heartbeat": (_res, [_cfg, c_uint32, c_uint32]),
    "wsb_config_clear_relay_prefixes": (_res, [_cfg]),
    "wsb_config_add_relay_prefix": (_res, [_cfg, _str, _len]),
    "wsb_config_set_relay_session_restore": (_res, [_cfg, c_bool]),
    "wsb_config_set_decision_timeout": (_res, [_cfg, c_uint32]),
    "wsb_config_set_wake_callback": (_res, [_cfg, WakeCallback, c_void_p, DropCallback]),
    "wsb_config_set_event_callback": (_res, [_cfg, EventCallback, c_void_p, DropCallback]),
    "wsb_config_set_sockjs_path": (_res, [_cfg, _str, _len]),
    "wsb_config_set_sockjs_limits": (_res, [_cfg, c_uint32, c_uint32, c_size_t]),
    "wsb_config_set_sockjs_options": (_res, [_cfg, c_bool, c_bool]),
    "wsb_config_set_static_dir": (_res, [_cfg, _str, _len]),
    # server
    "wsb_server_new": (_res, [_cfg, POINTER(c_void_p)]),
    "wsb_server_free": (_res, [_srv]),
    "wsb_server_start": (_res, [_srv]),
    "wsb_server_stop": (_res, [_srv, c_uint32]),
    "wsb_server_local_port": (_res, [_srv, POINTER(c_uint16)]),
    "wsb_server_tcp_port": (_res, [_srv, POINTER(c_uint16)]),
    "wsb_server_last_error": (_res, [_srv, c_void_p, c_size_t, POINTER(c_size_t)]),
    "wsb_server_stats": (_res, [_srv, POINTER(WsbStats)]),
    # publishing
    "wsb_server_publish": (_res, [_srv, _str, _len, _hdrs, c_size_t, _body, c_size_t]),
    "wsb_server_send_to_user": (
        _res,
        [_srv, _str, _len, _str, _len, _hdrs, c_size_t, _body, c_size_t],
    ),
    "wsb_server_send_to_session": (
        _res,
        [_srv, c_uint64, _str, _len, _hdrs, c_size_t, _body, c_size_t],
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
    # handshake-level auth (the request/decision pointers are valid during the callback only)
    "wsb_server_set_upgrade_callback": (_res, [_srv, UpgradeCallback, c_void_p, DropCallback]),
    "wsb_upgrade_request_path": (_res, [c_void_p, POINTER(c_char_p), POINTER(c_size_t)]),
    "wsb_upgrade_request_query": (_res, [c_void_p, POINTER(c_char_p), POINTER(c_size_t)]),
    "wsb_upgrade_request_query_param": (
        _res,
        [c_void_p, _str, _len, POINTER(c_char_p), POINTER(c_size_t)],
    ),
    "wsb_upgrade_request_header": (_res, [c_void_p, _str, _len, POINTER(c_char_p), POINTER(c_size_t)]),
    "wsb_upgrade_request_cookie": (_res, [c_void_p, _str, _len, POINTER(c_char_p), POINTER(c_size_t)]),
    "wsb_upgrade_request_remote_addr": (_res, [c_void_p, POINTER(c_char_p), POINTER(c_size_t)]),
    "wsb_upgrade_accept": (_res, [c_void_p, _str, _len]),
    "wsb_upgrade_reject": (_res, [c_void_p, c_uint16, _str, _len]),
    # decisions
    "wsb_server_accept": (_res, [_srv, c_uint64, _str, _len]),
    "wsb_server_reject": (_res, [_srv, c_uint64, _str, _len]),
    "wsb_server_answer_subscribe": (_res, [_srv, c_uint64, c_bool, _str, _len]),
    # raw WebSocket mode
    "wsb_server_add_raw_endpoint": (
        _res,
        [_srv, _str, _len, c_uint32, _str, _len, c_uint32, c_size_t],
    ),
    "wsb_server_raw_subscribe": (_res, [_srv, c_uint64, _str, _len, POINTER(c_uint32)]),
    "wsb_server_raw_unsubscribe": (_res, [_srv, c_uint64, _str, _len, POINTER(c_uint32)]),
    "wsb_server_raw_publish": (
        _res,
        [_srv, _str, _len, _body, c_size_t, c_uint32, POINTER(c_size_t)],
    ),
    "wsb_server_raw_send": (_res, [_srv, c_uint64, _body, c_size_t, c_uint32]),
    "wsb_server_raw_close": (_res, [_srv, c_uint64, c_uint16, _str, _len]),
    "wsb_server_raw_set_user_data": (_res, [_srv, c_uint64, c_uint64]),
    "wsb_server_raw_user_data": (_res, [_srv, c_uint64, POINTER(c_uint64)]),
    "wsb_server_raw_buffered_bytes": (_res, [_srv, c_uint64, POINTER(c_size_t)]),
    # poll mode
    "wsb_server_poll": (_res, [_srv, POINTER(WsbEvent), c_size_t, POINTER(c_size_t)]),
    "wsb_server_poll_timeout": (
        _res,
        [_srv, POINTER(WsbEvent), c_size_t, c_uint32, POINTER(c_size_t)],
    ),
}

#: Exported only by test builds (cargo feature ``ffi-test-panic``); bound when present.
OPTIONAL_FUNCTIONS: Dict[str, Tuple[Any, List[Any]]] = {
    "wsb_debug_panic": (_res, []),
}

# ---------------------------------------------------------------------------------------------
# Loading


def library_filename() -> str:
    """File name of the shared library on this platform."""
    if sys.platform == "darwin":
        return "libwsbroker.dylib"
    if sys.platform == "win32":
        return "wsbroker.dll"
    return "libwsbroker.so"


def library_path() -> Path:
    """Where the library is loaded from: ``$WSBROKER_LIBRARY``, else the bundled copy."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / library_filename()


class LibraryError(ImportError):
    """The shared library could not be loaded or does not match this binding."""


def _bind(lib: ctypes.CDLL, path: Path) -> None:
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise LibraryError(
                f"wsbroker: {path} does not export {name}; it is not a wsbroker C ABI "
                f"v{ABI_VERSION} library (rebuild it, or fix {LIBRARY_ENV})"
            ) from None
        fn.restype = restype
        fn.argtypes = argtypes
    for name, (restype, argtypes) in OPTIONAL_FUNCTIONS.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = argtypes


def _check(lib: ctypes.CDLL, path: Path) -> None:
    version = lib.wsb_abi_version()
    if version != ABI_VERSION:
        raise LibraryError(
            f"wsbroker: {path} has C ABI version {version}, this binding needs {ABI_VERSION}"
        )
    for cname, struct in STRUCTS.items():
        # Asked of the library itself; the spec's layout is the fallback of a library that
        # predates wsb_struct_size.
        want = lib.wsb_struct_size(STRUCT_IDS[cname]) or C_LAYOUT_SIZEOF[cname]
        have = ctypes.sizeof(struct)
        if have != want:
            raise LibraryError(
                f"wsbroker: sizeof({cname}) is {want} in the C ABI of {path} "
                f"but the ctypes declaration has {have}"
            )


def load(path: Optional[Path] = None) -> ctypes.CDLL:
    """Loads, binds and checks the library (``path`` defaults to :func:`library_path`)."""
    path = path or library_path()
    if not path.exists():
        hint = (
            f"{LIBRARY_ENV} points to a missing file"
            if os.environ.get(LIBRARY_ENV)
            else "reinstall the package (pip install ./bindings/python builds it with cargo) "
            f"or set {LIBRARY_ENV}"
        )
        raise LibraryError(f"wsbroker: shared library not found: {path} ({hint})")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise LibraryError(f"wsbroker: cannot load the shared library {path}: {e}") from e
    _bind(lib, path)
    _check(lib, path)
    return lib


#: The loaded library (bound and checked).
lib = load()
#: Where it was loaded from.
LIBRARY_PATH = library_path()
