"""Event dispatch: what the host's Python code does with each event, in both delivery modes.

* Poll mode: ``poll()`` / ``aevents()`` (:mod:`wsbroker._poll`) take events out of C and hand
  each to :meth:`Dispatcher.dispatch` in the calling thread.
* Callback mode: the library calls the trampolines (:mod:`wsbroker._trampolines`) on its own
  threads; their targets are the ``*_callback`` entry points below.

Either way the same rules apply: ``on_connect`` / ``on_subscribe`` results become
accept/reject decisions, an application handler's :class:`~wsbroker.Reject` (or exception)
refuses the message, host-subscription callbacks get their messages, and every exception a
handler raises is recorded in the server's :class:`~wsbroker._errors.CallbackErrorLog` rather
than lost on a thread nobody watches.

The dispatcher holds its server weakly: the server owns it, and the slot table reaches it
only through weak references (see ``_trampolines``), so nothing here keeps a dropped server
alive.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Union

from . import _ffi, _upgrade
from ._errors import CallbackErrorLog, Error
from ._events import Accept, ConnectEvent, Event, EventKind, Message, Reject, SubscribeEvent, copy_event
from ._routes import AppRoute, Routes, Subscription
from ._upgrade import UpgradeHandler

if TYPE_CHECKING:  # pragma: no cover
    from ._server import Server

log = logging.getLogger("wsbroker")

#: Runs a coroutine as an asyncio task (under ``aevents()``); ``None`` where nothing can await.
Spawn = Optional[Callable[[Awaitable[Any]], None]]
ConnectDecision = Union[bool, str, Accept, Reject, None]
ConnectHandler = Callable[[ConnectEvent], Union[ConnectDecision, Awaitable[ConnectDecision]]]
SubscribeHandler = Callable[[SubscribeEvent], Union[bool, Reject, None, Awaitable[Any]]]


class Dispatcher:
    """The host's handlers of one server, and the code that runs them."""

    def __init__(self, server: "Server", routes: Routes, errors: CallbackErrorLog) -> None:
        self._server = weakref.ref(server)
        self.routes = routes
        self.errors = errors
        self.on_connect: Optional[ConnectHandler] = None
        self.on_subscribe: Optional[SubscribeHandler] = None
        self.on_upgrade: Optional[UpgradeHandler] = None
        self.on_event: Optional[Callable[[Event], Any]] = None
        self.on_wake: Optional[Callable[[], Any]] = None
        #: Set while ``aevents()`` iterates: wakes its asyncio loop from a library thread.
        self.async_waker: Optional[Callable[[], None]] = None
        #: Tasks of async handlers spawned by ``aevents()``, kept until done.
        self.tasks: "set[asyncio.Task[Any]]" = set()

    def clear(self) -> None:
        """After close: no reference to the host's callables remains."""
        self.on_connect = None
        self.on_subscribe = None
        self.on_upgrade = None
        self.on_event = None
        self.on_wake = None

    # --- both modes ---------------------------------------------------------------------------

    def dispatch(self, ev: Event, spawn: Spawn) -> None:
        """The built-in handling of one event."""
        kind = ev.kind
        if kind == EventKind.CONNECT:
            on_connect = self.on_connect
            if on_connect is not None:
                assert isinstance(ev, ConnectEvent)
                self._run_decision(ev, on_connect, "on_connect", self._apply_connect, spawn)
        elif kind == EventKind.SUBSCRIBE:
            on_subscribe = self.on_subscribe
            if on_subscribe is not None:
                assert isinstance(ev, SubscribeEvent)
                self._run_decision(ev, on_subscribe, "on_subscribe", self._apply_subscribe, spawn)
        elif kind == EventKind.APP_MESSAGE:
            assert isinstance(ev, Message)
            route = self.routes.app_route_for(ev.destination)
            if route is not None:
                self._run_polled_app_handler(ev, route.handler, spawn)
        elif kind == EventKind.MESSAGE:
            assert isinstance(ev, Message)
            sub = self.routes.subscription(ev.subscription)
            if sub is not None and sub.callback is not None:
                self._run_callback(sub.callback, ev, spawn, f"subscription {sub.pattern}")

    # --- entry points from C, on the library's threads ----------------------------------------

    def wake_callback(self) -> None:
        """Poll mode: the event queue became non-empty."""
        waker = self.async_waker
        if waker is not None:
            waker()
        hook = self.on_wake
        if hook is not None:
            try:
                hook()
            except BaseException as e:  # noqa: BLE001
                self.errors.record(e, "on_wake")

    def event_callback(self, raw: _ffi.WsbEvent) -> None:
        """Callback mode: every event, then the host's ``on_event``."""
        ev = copy_event(raw)
        if ev is None:
            return
        self.dispatch(ev, None)
        hook = self.on_event
        if hook is not None:
            self._run_callback(hook, ev, None, "on_event")

    def subscription_callback(self, token: int, raw: _ffi.WsbEvent) -> None:
        """Callback mode: a message for a host subscription, on the publishing thread."""
        sub = self.routes.by_token(token)
        if not isinstance(sub, Subscription) or sub.callback is None:
            return
        ev = copy_event(raw)
        if ev is not None:
            self._run_callback(sub.callback, ev, None, f"subscription {sub.pattern}")

    def app_callback(self, token: int, raw: _ffi.WsbEvent) -> Optional[str]:
        """Callback mode: a SEND to an application destination, before it is acknowledged.
        Returns the refusal text, or ``None`` to accept it."""
        route = self.routes.by_token(token)
        if not isinstance(route, AppRoute):
            return "the application handler was removed"
        msg = copy_event(raw)
        if not isinstance(msg, Message):
            return "unexpected event"
        try:
            value = route.handler(msg)
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()
                raise TypeError("async app handlers need mode='poll' with aevents()")
        except BaseException as e:  # noqa: BLE001
            if not isinstance(e, Reject):
                self.errors.record(e, f"app handler for {msg.destination}")
            return refusal_text(None, e)
        return refusal_text(value, None)

    def upgrade_callback(self, request: int, decision: int) -> None:
        """Both modes: a WebSocket upgrade waits for ``on_upgrade``."""
        _upgrade.decide(self.on_upgrade, request, decision, self.errors)

    # --- running the host's code --------------------------------------------------------------

    def _settle(self, result: Any, spawn: Spawn, where: str,
                then: Callable[[Any, Optional[BaseException]], None]) -> None:
        """Passes a handler's result to ``then``; an awaitable is awaited first (in a task under
        ``aevents()``; in ``poll()``, where nothing can await it, it is an error)."""
        if inspect.isawaitable(result):
            if spawn is None:
                if inspect.iscoroutine(result):
                    result.close()
                err = TypeError(f"{where} returned an awaitable: async handlers need aevents()")
                self.errors.record(err, where)
                then(None, err)
                return

            async def finish() -> None:
                try:
                    value = await result
                except BaseException as e:  # noqa: BLE001
                    if not isinstance(e, Reject):
                        self.errors.record(e, where)
                    then(None, e)
                else:
                    then(value, None)

            spawn(finish())
            return
        then(result, None)

    def _run_decision(self, ev: Any, fn: Callable[[Any], Any], where: str,
                      apply: Callable[[Any, Any, Optional[BaseException]], None], spawn: Spawn) -> None:
        try:
            result = fn(ev)
        except Reject as r:
            apply(ev, r, None)
            return
        except BaseException as e:  # noqa: BLE001
            self.errors.record(e, where)
            apply(ev, None, e)
            return
        self._settle(result, spawn, where, lambda value, err: apply(ev, value, err))

    def _answer(self, method: str, *args: Any) -> None:
        """Calls a decision method of the server; a session that is gone is not a bug."""
        server = self._server()
        if server is None:
            return
        try:
            getattr(server, method)(*args)
        except Error as e:
            # The client may have gone, timed out, or the server closed meanwhile.
            log.debug("wsbroker: %s: %s", method, e)

    def _apply_connect(self, ev: ConnectEvent, value: Any, err: Optional[BaseException]) -> None:
        if isinstance(err, Reject):
            value = err
        elif err is not None:
            value = Reject("connection refused: internal error")
        if value is None:
            return  # undecided: the host answers later (or the decision timeout refuses)
        if value is True:
            self._answer("accept", ev.session, ev.login or None)
        elif isinstance(value, str):
            self._answer("accept", ev.session, value)
        elif isinstance(value, Accept):
            self._answer("accept", ev.session, value.user)
        elif value is False:
            self._answer("reject", ev.session, "connection refused")
        elif isinstance(value, Reject):
            self._answer("reject", ev.session, value.message)
        else:
            self.errors.record(
                TypeError(f"on_connect returned {value!r}: expected True, False, str, Accept or Reject"),
                "on_connect")
            self._answer("reject", ev.session, "connection refused: internal error")

    def _apply_subscribe(self, ev: SubscribeEvent, value: Any, err: Optional[BaseException]) -> None:
        if isinstance(err, Reject):
            value = err
        elif err is not None:
            value = Reject("subscription refused: internal error")
        if value is None or value is True:
            self._answer("answer_subscribe", ev.session, True, "")
        elif value is False:
            self._answer("answer_subscribe", ev.session, False, f"subscription to {ev.destination} refused")
        elif isinstance(value, Reject):
            self._answer("answer_subscribe", ev.session, False, value.message)
        else:
            self.errors.record(TypeError(f"on_subscribe returned {value!r}: expected True, False or Reject"),
                               "on_subscribe")
            self._answer("answer_subscribe", ev.session, False, "subscription refused: internal error")

    def _run_polled_app_handler(self, msg: Message, handler: Callable[[Message], Any], spawn: Spawn) -> None:
        where = f"app handler for {msg.destination}"

        def then(value: Any, err: Optional[BaseException]) -> None:
            refusal = refusal_text(value, err)
            if refusal is not None:
                # The SEND was already acknowledged when it was queued: refuse like the
                # broker does, with an ERROR frame (which ends the session).
                self._answer("disconnect", msg.session, f"{msg.destination} failed: {refusal}")

        try:
            result = handler(msg)
        except BaseException as e:  # noqa: BLE001
            if not isinstance(e, Reject):
                self.errors.record(e, where)
            then(None, e)
            return
        self._settle(result, spawn, where, then)

    def _run_callback(self, fn: Callable[[Any], Any], arg: Any, spawn: Spawn, where: str) -> None:
        try:
            result = fn(arg)
        except BaseException as e:  # noqa: BLE001
            self.errors.record(e, where)
            return
        if inspect.isawaitable(result):
            self._settle(result, spawn, where, lambda v, e: None)


def refusal_text(value: Any, err: Optional[BaseException]) -> Optional[str]:
    """What an application handler's outcome says to the client: ``None`` accepts."""
    if isinstance(err, Reject):
        return err.message
    if err is not None:
        return str(err) or type(err).__name__
    if isinstance(value, Reject):
        return value.message
    return None
