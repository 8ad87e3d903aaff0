"""asyncio: aevents() woken by the library's wake callback, async handlers, async clients."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect as aconnect

import wsbroker

from clients import FrameParser, frame

TIMEOUT = 10.0


class AsyncStomp:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.parser = FrameParser()
        self.pending: list = []

    @classmethod
    async def open(cls, url: str, login: str = "guest") -> "AsyncStomp":
        ws = await aconnect(url, subprotocols=["v12.stomp"], open_timeout=TIMEOUT)
        c = cls(ws)
        await c.send(frame("CONNECT", {"accept-version": "1.2", "host": "x", "login": login, "passcode": "p",
                                       "heart-beat": "0,0"}))
        return c

    async def send(self, data: bytes) -> None:
        await self.ws.send(data.decode())

    async def recv(self):
        while not self.pending:
            data = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    async def expect(self, command: str):
        f = await self.recv()
        assert f.command == command, f
        return f


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_aevents_handlers_and_async_on_connect() -> None:
    async def check(info: wsbroker.ConnectEvent):
        await asyncio.sleep(0)  # e.g. an async credential lookup
        return info.login != "mallory" or wsbroker.Reject("mallory is banned")

    server = wsbroker.Server(port=0, worker_threads=2, on_connect=check)
    orders = []

    @server.app_handler("/app/order")
    async def on_order(msg: wsbroker.Message) -> None:
        order = msg.json()
        orders.append(order)
        await asyncio.sleep(0)
        server.send_to_session(msg.session, "/user/queue/fills", json.dumps({"filled": order["id"]}))

    async def main() -> list:
        kinds = []
        stop = asyncio.Event()

        async def consume() -> None:
            async for ev in server.aevents():
                kinds.append(ev.kind)
                if stop.is_set() and ev.kind == wsbroker.EventKind.DISCONNECT:
                    return

        with server:
            consumer = asyncio.create_task(consume())
            c = await AsyncStomp.open(server.url)
            await c.expect("CONNECTED")
            await c.send(frame("SUBSCRIBE", {"destination": "/user/queue/fills", "id": "f", "receipt": "r1"}))
            await c.expect("RECEIPT")
            await c.send(frame("SUBSCRIBE", {"destination": "/topic/ticker.*", "id": "t", "receipt": "r2"}))
            await c.expect("RECEIPT")
            server.publish("/topic/ticker.ACME", json.dumps({"price": 1.5}))
            tick = await c.expect("MESSAGE")
            assert json.loads(tick.body)["price"] == 1.5
            await c.send(frame("SEND", {"destination": "/app/order"}, json.dumps({"id": 7, "qty": 1})))
            fill = await c.expect("MESSAGE")
            assert json.loads(fill.body) == {"filled": 7}

            bad = await AsyncStomp.open(server.url, login="mallory")
            err = await bad.expect("ERROR")
            assert err.headers["message"] == "mallory is banned"
            await bad.ws.close()
            stop.set()
            await c.ws.close()
            await asyncio.wait_for(consumer, TIMEOUT)
        return kinds

    kinds = run(main())
    assert orders == [{"id": 7, "qty": 1}]
    assert wsbroker.EventKind.CONNECT in kinds and wsbroker.EventKind.APP_MESSAGE in kinds
    assert not server.callback_errors


def test_aevents_ends_when_server_closes() -> None:
    server = wsbroker.Server(port=0, worker_threads=1).start()

    async def main() -> int:
        n = 0

        async def consume() -> None:
            nonlocal n
            async for _ in server.aevents():
                n += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)  # let it reach its wait
        c = await AsyncStomp.open(server.url)
        await c.expect("CONNECTED")
        await c.ws.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, server.close)  # from another thread
        await asyncio.wait_for(task, TIMEOUT)
        return n

    assert run(main()) >= 1  # the DISCONNECT event at least


def test_aevents_is_woken_not_busy_polling(monkeypatch) -> None:
    server = wsbroker.Server(port=0, worker_threads=1).start()
    calls = [0]
    original = server._poller.take

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(server._poller, "take", counting)
    sub = server.subscribe("/topic/wake")

    async def main() -> None:
        got = []

        async def consume() -> None:
            async for ev in server.aevents():
                got.append(ev)
                if len(got) == 3:
                    return

        task = asyncio.create_task(consume())
        for i in range(3):
            await asyncio.sleep(0.05)
            server.publish("/topic/wake", str(i))
        await asyncio.wait_for(task, TIMEOUT)
        assert [e.body for e in got] == [b"0", b"1", b"2"]
        assert all(e.subscription == sub.id for e in got)

    try:
        run(main())
    finally:
        server.close()
    # each poll is prompted by the wake callback (or drains what woke it): a handful, not a spin
    assert calls[0] <= 10, calls[0]


def test_async_handler_in_sync_poll_is_an_error() -> None:
    server = wsbroker.Server(port=0, worker_threads=1)

    async def handler(msg):  # pragma: no cover - never awaited
        pass

    server.subscribe("/topic/a", handler)
    with server:
        server.publish("/topic/a", "x")
        server.poll(timeout=5)
        with pytest.raises(wsbroker.CallbackError) as info:
            server.poll()
        assert isinstance(info.value.errors[0], TypeError)
