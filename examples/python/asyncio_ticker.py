#!/usr/bin/env python3
"""A stock ticker and order desk: an asyncio application with wsbroker embedded.

Every --interval seconds a price per symbol is published to /topic/ticker.{SYMBOL} as JSON
``{"symbol": "ACME", "price": 101.25, "seq": 42}`` (subscribe to /topic/ticker.* for all).
Orders are SENT to /app/order as ``{"symbol": "ACME", "side": "buy", "qty": 10}``; the async
handler fills them at the current price and answers the sending session on
/user/queue/fills (subscribe to it first). Bad orders are refused with an ERROR frame.

    python examples/python/asyncio_ticker.py --port 61614 [--interval 0.5] [--exit-after SECONDS]

Prints ``wsbroker listening websocket ws://127.0.0.1:PORT/ws`` once listening; stops on
SIGINT/SIGTERM or after --exit-after seconds, exiting 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
from typing import Dict

import wsbroker

SYMBOLS = ("ACME", "GLOBEX", "INITECH")


class Desk:
    def __init__(self, server: wsbroker.Server, seed: int) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.prices: Dict[str, float] = {s: 100.0 for s in SYMBOLS}
        self.seq = 0
        self.fills = 0

    async def publish_prices(self, interval: float) -> None:
        while True:
            self.seq += 1
            for symbol in SYMBOLS:
                price = max(1.0, self.prices[symbol] * (1 + self.rng.uniform(-0.01, 0.01)))
                self.prices[symbol] = round(price, 2)
                tick = {"symbol": symbol, "price": self.prices[symbol], "seq": self.seq}
                self.server.publish(f"/topic/ticker.{symbol}", json.dumps(tick),
                                    headers={"content-type": "application/json"})
            await asyncio.sleep(interval)

    async def on_order(self, msg: wsbroker.Message):
        try:
            order = msg.json()
            symbol, side, qty = order["symbol"], order["side"], int(order["qty"])
        except (ValueError, KeyError, TypeError):
            return wsbroker.Reject('expected JSON {"symbol": ..., "side": "buy"|"sell", "qty": N}')
        if symbol not in self.prices or side not in ("buy", "sell") or qty <= 0:
            return wsbroker.Reject(f"invalid order {order}")
        await asyncio.sleep(0)  # e.g. a call to a matching engine
        self.fills += 1
        fill = {"id": self.fills, "symbol": symbol, "side": side, "qty": qty, "price": self.prices[symbol]}
        self.server.send_to_session(msg.session, "/user/queue/fills", json.dumps(fill),
                                    headers={"content-type": "application/json"})
        return None


async def run(args: argparse.Namespace) -> int:
    server = wsbroker.Server(host=args.host, port=args.port)
    desk = Desk(server, args.seed)
    server.handle_app("/app/order", desk.on_order)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_after is not None:
        loop.call_later(args.exit_after, stop.set)

    async def handle_events() -> None:
        # Woken through wsbroker's wake callback; app handlers (async here) run as tasks.
        while True:
            try:
                async for event in server.aevents():
                    if isinstance(event, wsbroker.DisconnectEvent):
                        print(f"session {event.session} left", file=sys.stderr)
                return  # the server closed
            except wsbroker.CallbackError as e:  # a handler raised: logged; keep serving
                print(f"handler error: {e}", file=sys.stderr)

    with server:
        print(f"wsbroker listening websocket {server.url}", flush=True)
        tasks = [asyncio.create_task(desk.publish_prices(args.interval)), asyncio.create_task(handle_events())]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return 0


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=61614, help="WebSocket port (0: any free port)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between price updates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (for tests and demos)")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
