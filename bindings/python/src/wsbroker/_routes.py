"""What the host registered: application handlers by destination pattern and host
subscriptions by id, with the lookups event dispatch needs. No C calls here: the server
registers these with the library (:mod:`wsbroker._server`), dispatch reads them
(:mod:`wsbroker._dispatch`).

C calls back with an integer *token* (inside the slot's ``user_data`` target), never with a
Python object: a removed route's token simply finds nothing, so a callback racing a removal
refuses or does nothing instead of calling a handler that is gone.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from ._pattern import matches

if TYPE_CHECKING:  # pragma: no cover
    from ._events import Message
    from ._server import Server

AppHandler = Callable[["Message"], Any]
MessageCallback = Callable[["Message"], Any]


class AppRoute:
    """An application handler: SENDs to destinations matching ``pattern`` call ``handler``."""

    __slots__ = ("pattern", "handler", "token", "slot")

    def __init__(self, pattern: str, handler: AppHandler) -> None:
        self.pattern = pattern
        self.handler = handler
        self.token: Optional[int] = None  # callback mode: what C calls back with
        self.slot: Optional[int] = None


class Subscription:
    """A host subscription made with :meth:`Server.subscribe`; :meth:`cancel` ends it."""

    def __init__(self, server: "Server", pattern: str, callback: Optional[MessageCallback]) -> None:
        self._server: Optional["Server"] = server
        self.pattern = pattern
        self.callback = callback
        #: The broker's subscription id (``Message.subscription``); ``None`` before start.
        self.id: Optional[int] = None
        self._slot: Optional[int] = None
        self._token: Optional[int] = None

    @property
    def active(self) -> bool:
        return self._server is not None

    def cancel(self) -> None:
        """Ends the subscription (idempotent; a no-op once the server is closed)."""
        server, self._server = self._server, None
        if server is not None:
            server._unsubscribe(self)

    def __repr__(self) -> str:
        return f"<wsbroker.Subscription {self.pattern!r} id={self.id} active={self.active}>"


class Routes:
    """The registry. Mutated under the server's lock; read by dispatch from any thread (reads
    take a snapshot of the list, so a concurrent change is seen entirely or not at all)."""

    def __init__(self) -> None:
        self.app: List[AppRoute] = []
        #: Registered with C, by subscription id.
        self.subscriptions: Dict[int, Subscription] = {}
        #: Made before start; registered by start().
        self.pending: List[Subscription] = []
        self._by_token: Dict[int, Any] = {}
        self._tokens = itertools.count(1)

    # --- tokens -------------------------------------------------------------------------------

    def token_for(self, obj: Any) -> int:
        token = next(self._tokens)
        self._by_token[token] = obj
        return token

    def by_token(self, token: int) -> Any:
        return self._by_token.get(token)

    def drop_token(self, token: Optional[int]) -> None:
        if token is not None:
            self._by_token.pop(token, None)

    # --- application handlers -----------------------------------------------------------------

    def add_app(self, route: AppRoute) -> List[AppRoute]:
        """Adds ``route``; returns the routes of the same pattern it replaces."""
        replaced = self.remove_app(route.pattern)
        self.app = self.app + [route]
        return replaced

    def remove_app(self, pattern: str) -> List[AppRoute]:
        removed = [r for r in self.app if r.pattern == pattern]
        for r in removed:
            self.drop_token(r.token)
        self.app = [r for r in self.app if r.pattern != pattern]
        return removed

    def discard_app(self, route: AppRoute) -> None:
        self.app = [r for r in self.app if r is not route]
        self.drop_token(route.token)

    def app_route_for(self, destination: str) -> Optional[AppRoute]:
        """The handler the broker chose for a polled APP_MESSAGE: an exact pattern first, then
        the first wildcard pattern that matches (the broker's rule)."""
        routes = self.app
        for route in routes:
            if route.pattern == destination:
                return route
        for route in routes:
            if matches(route.pattern, destination):
                return route
        return None

    # --- host subscriptions -------------------------------------------------------------------

    def subscription(self, sub_id: int) -> Optional[Subscription]:
        return self.subscriptions.get(sub_id)

    def clear(self) -> None:
        """After close: every subscription becomes inactive, every handler is released."""
        for sub in list(self.subscriptions.values()) + self.pending:
            sub._server = None
        self.subscriptions.clear()
        self.pending.clear()
        self.app = []
        self._by_token.clear()
