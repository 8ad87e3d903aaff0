"""Process-wide end of life: freeing a server from a helper thread, and closing every server
still running when the interpreter exits.

* ``wsb_server_free`` refuses to run on one of the library's own threads
  (``WSB_ERR_CALLED_FROM_CALLBACK``: it would wait for itself). A server whose last reference
  goes away inside a callback (garbage collection can run anywhere) is therefore freed by a
  short-lived helper thread instead: :func:`free_elsewhere`.
* At interpreter exit the library's threads may still be running Python callbacks; once the
  interpreter is finalizing, such a call would crash the process. The ``atexit`` hook closes
  every live server (and frees pending orphans) while Python is still whole.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from typing import TYPE_CHECKING, List, Optional

from ._library import lib

if TYPE_CHECKING:  # pragma: no cover
    from ._server import Server

#: Started servers not yet closed (weakly: this set must not keep a dropped server alive).
live_servers: "weakref.WeakSet[Server]" = weakref.WeakSet()
_orphans_lock = threading.Lock()
_orphans: List[int] = []


def free_elsewhere(handle: Optional[int]) -> None:
    """Frees a server handle from a helper thread (see the module docstring)."""
    if not handle:
        return
    with _orphans_lock:
        _orphans.append(handle)

    def run() -> None:
        with _orphans_lock:
            if handle not in _orphans:
                return  # the exit hook freed it first
            _orphans.remove(handle)
        lib.wsb_server_free(handle)

    threading.Thread(target=run, name="wsbroker-free", daemon=True).start()


def _close_all_at_exit() -> None:
    from ._native_log import set_native_log_level

    set_native_log_level(None)
    for server in list(live_servers):
        try:
            server.close(raise_errors=False)
        except BaseException:  # noqa: BLE001
            pass
    with _orphans_lock:
        orphans, _orphans[:] = list(_orphans), []
    for handle in orphans:
        lib.wsb_server_free(handle)


atexit.register(_close_all_at_exit)
