"""Presence: who is subscribed to a destination (:meth:`Server.presence`).

A subscriber is a *member* of a destination when a presence pattern of the :class:`Config`
covers it (``presence=["/topic/room/*"]``) or its SUBSCRIBE has ``x-presence:true``; the
latter also gets a snapshot MESSAGE (``x-presence:snapshot``, a JSON array of members) and a
MESSAGE for every later join and leave, while the destination has at most
``presence_event_limit`` members.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_char_p, c_size_t, c_uint64
from dataclasses import dataclass
from typing import Callable, List, Optional

from . import _convert as cv
from . import _ffi
from ._errors import check
from ._library import lib


@dataclass(frozen=True)
class PresenceMember:
    """One member: its session, the session's user and the ``x-presence-info`` it gave."""

    session: int
    user: Optional[str]
    info: Optional[str]


@dataclass(frozen=True)
class Presence:
    """The members of one destination, in the order they joined."""

    count: int
    members: List[PresenceMember]


def _text(ptr: c_char_p, length: c_size_t) -> Optional[str]:
    return ctypes.string_at(ptr, length.value).decode() if ptr else None


def read_presence(call: Callable[..., None], destination: str) -> Presence:
    """Reads the members with ``wsb_server_presence`` (``call`` is the server's ``_call``)
    and copies them out before freeing the page."""
    d = cv.text(destination, "destination")
    handle = _ffi.PresenceHandle()
    call(f"presence of {destination}", lib.wsb_server_presence, d, len(d), byref(handle))
    try:
        members = []
        for index in range(lib.wsb_presence_count(handle)):
            session, user, user_len, info, info_len = c_uint64(), c_char_p(), c_size_t(), c_char_p(), c_size_t()
            check(lib.wsb_presence_member(handle, index, byref(session), byref(user), byref(user_len), byref(info),
                                          byref(info_len)), "presence member")
            members.append(PresenceMember(session.value, _text(user, user_len), _text(info, info_len)))
        return Presence(count=len(members), members=members)
    finally:
        lib.wsb_presence_free(handle)
