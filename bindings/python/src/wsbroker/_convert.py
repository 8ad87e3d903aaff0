"""Python values into C arguments, checked before they cross into C.

ctypes converts an ``int`` to ``uint64_t``, ``uint32_t``, ``size_t`` or ``uint16_t`` by
truncation, without a word: ``send_to_session(2**64 + 5, ...)`` would reach session 5 and
``-1`` would become ``UINT64_MAX``. Every integer the package passes to C goes through one of
the checks here first:

* not an integer (a ``float``, a ``str``; also a ``bool``, which is nearly always a mistake
  where an id or a size is expected): :class:`TypeError`;
* outside the C type's range: :class:`~wsbroker.OutOfRange`, which is both a ``ValueError``
  and an ``OverflowError``.

Values inside the C type's range are passed as they are; whether the library accepts them
(a close code of 1006, a deflate level of 10) is the library's call, reported with its own
error text.

Strings, bodies and headers are encoded here too, so that every module builds C arguments
the same way.
"""

from __future__ import annotations

import ctypes
import math
import operator
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

from . import _ffi
from ._errors import InvalidArgument, OutOfRange

Body = Union[bytes, bytearray, memoryview, str]
Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]

U16_MAX = (1 << 16) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
#: ``size_t`` on this platform.
SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def integer(value: Any, what: str, low: int, high: int, ctype: str) -> int:
    """``value`` as an ``int`` in ``low..=high`` (the range of the C type ``ctype``)."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None
    if not low <= number <= high:
        raise OutOfRange(f"{what} must be in {low}..{high} (C {ctype}), not {number}")
    return number


def u16(value: Any, what: str) -> int:
    return integer(value, what, 0, U16_MAX, "uint16_t")


def u32(value: Any, what: str) -> int:
    return integer(value, what, 0, U32_MAX, "uint32_t")


def u64(value: Any, what: str) -> int:
    """Session, connection and subscription ids, and raw user data."""
    return integer(value, what, 0, U64_MAX, "uint64_t")


def usize(value: Any, what: str) -> int:
    return integer(value, what, 0, SIZE_MAX, "size_t")


def i32(value: Any, what: str) -> int:
    return integer(value, what, I32_MIN, I32_MAX, "int32_t")


def port(value: Any, what: str) -> int:
    """A TCP port (part of an address string in C, so checked here: 0 picks a free one)."""
    return integer(value, what, 0, U16_MAX, "port")


def milliseconds(value: Any, what: str) -> int:
    """A duration in integer milliseconds, passed as ``uint32_t`` (at most ~49.7 days)."""
    return u32(value, what)


def seconds_to_ms(value: Any, what: str) -> int:
    """A duration in seconds (``int`` or ``float``) as ``uint32_t`` milliseconds, rounded up
    so that a short positive wait never becomes "don't wait"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value):
        raise OutOfRange(f"{what} must be a number of seconds, not NaN")
    if value < 0:
        raise OutOfRange(f"{what} must not be negative, not {value}")
    if math.isinf(value) or value * 1000 > U32_MAX:
        raise OutOfRange(f"{what} must be at most {U32_MAX / 1000:.0f} s (C uint32_t ms), not {value}")
    return int(math.ceil(value * 1000))


def count_pair(value: Any, what: str, check: Any = None) -> Tuple[int, int]:
    """A pair of integers (``(send, receive)``); a single integer means both."""
    check = check or milliseconds
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise TypeError(f"{what} must be an integer or a pair of integers, not {value!r}")
        return check(value[0], f"{what}[0]"), check(value[1], f"{what}[1]")
    number = check(value, what)
    return number, number


def choice(value: Any, choices: Mapping[str, int], what: str) -> int:
    """The C enum value of one of the string ``choices`` (an ``InvalidArgument`` otherwise)."""
    if isinstance(value, str) and value in choices:
        return choices[value]
    names = " or ".join(repr(c) for c in choices)
    raise InvalidArgument(f"{what} must be {names}, not {value!r}")


def text(value: Any, what: str) -> bytes:
    """A ``str`` as UTF-8 bytes (C takes pointer + length, so embedded NULs survive)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    return value.encode("utf-8")


def optional_text(value: Optional[str], what: str) -> Optional[bytes]:
    return None if value is None else text(value, what)


def pair_of_text(value: Any, what: str) -> Tuple[bytes, bytes]:
    """A ``(login, passcode)``-style pair of strings."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{what} must be a (str, str) pair, not {value!r}")
    return text(value[0], f"{what}[0]"), text(value[1], f"{what}[1]")


def body(value: Body) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"body must be bytes or str, not {type(value).__name__}")


def is_binary(data: Body, binary: Optional[bool]) -> int:
    """The raw-mode ``binary`` flag: explicit, else text for ``str`` and binary for bytes."""
    if binary is None:
        binary = not isinstance(data, str)
    return 1 if binary else 0


def headers(value: Headers) -> Tuple[Any, int]:
    """A ``wsb_header`` array and its length. The array keeps the encoded names and values
    alive (ctypes stores them in its ``_objects``) for as long as the call needs them."""
    if not value:
        return None, 0
    pairs = list(value.items()) if isinstance(value, Mapping) else list(value)
    arr = (_ffi.WsbHeader * len(pairs))()
    for i, (name, val) in enumerate(pairs):
        n = text(name, "header name")
        v = text(str(val), "header value")
        arr[i].name, arr[i].name_len = n, len(n)
        arr[i].value, arr[i].value_len = v, len(v)
    return arr, len(pairs)


def address(host: Any, port_number: Any, what: str) -> bytes:
    """``"host:port"`` (``"[v6]:port"``) for the listen setters."""
    h = text(host, f"{what} host").decode("utf-8").strip("[]")
    p = port(port_number, f"{what} port")
    return (f"[{h}]:{p}" if ":" in h else f"{h}:{p}").encode("utf-8")
