#!/usr/bin/env python3
"""Drives examples/c/raw_rooms with `websockets` (raw WebSocket mode, no STOMP).

  1. A and B join /rooms?room=blue, C joins /rooms?room=red: each is welcomed as guest-N.
  2. A sends text → A and B get "guest-<A>: <text>"; C gets nothing of room blue.
  3. C sends binary → only C (alone in red) gets it back, binary and unchanged.
  4. B's message after A's proves ordering and room isolation (C's next message is its own).
  5. /echo returns text and binary messages unchanged.
  6. A message over the endpoint's 1 KiB limit closes that client with 1009.
  7. With --final, A sends one more room message (the 5th relayed one, so an example started
     with --exit-after 5 exits 0 by itself).

Exit code 0 when every expectation held, 1 on a failed expectation (message on stderr).
"""

import re

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import cclient
from cclient import expect


def recv(ws, what):
    try:
        return ws.recv(timeout=cclient.WAIT)
    except TimeoutError:
        raise cclient.Failure(f"timed out waiting for {what}") from None


def welcome(ws, room):
    text = recv(ws, f"the welcome to {room}")
    m = re.fullmatch(rf"welcome (guest-\d+) to {room}", text if isinstance(text, str) else "")
    expect(m is not None, f"unexpected welcome {text!r}")
    return m.group(1)


def main():
    parser = cclient.base_args(__doc__)
    parser.add_argument("--final", action="store_true", help="send one more room message at the end")
    args = cclient.parse(parser)
    base = args.ws.rsplit("/", 1)[0]  # ws://127.0.0.1:PORT

    with connect(f"{base}/rooms?room=blue") as a, connect(f"{base}/rooms?room=blue") as b, \
            connect(f"{base}/rooms?room=red") as c:
        name_a, name_b, name_c = welcome(a, "blue"), welcome(b, "blue"), welcome(c, "red")
        expect(len({name_a, name_b, name_c}) == 3, "guest names are unique")

        a.send("hello blue \u2713")
        for who, ws in (("A", a), ("B", b)):
            got = recv(ws, f"{who}: A's message")
            expect(got == f"{name_a}: hello blue \u2713", f"{who} got {got!r}")

        c.send(b"\x00\xffred")
        got = recv(c, "C: its binary message back")
        expect(got == b"\x00\xffred", f"C got {got!r}")

        b.send("second")
        for who, ws in (("A", a), ("B", b)):
            got = recv(ws, f"{who}: B's message")
            expect(got == f"{name_b}: second", f"{who} got {got!r}")
        c.send("only red")
        got = recv(c, "C: its own text")
        expect(got == f"{name_c}: only red", f"C got {got!r} (room blue leaked?)")

        with connect(f"{base}/echo") as e:
            e.send("echo \u00e9")
            expect(recv(e, "echo text") == "echo \u00e9", "echo changed the text")
            e.send(b"\x01\x02")
            expect(recv(e, "echo binary") == b"\x01\x02", "echo changed the bytes")

        c.send("x" * 2000)
        try:
            got = c.recv(timeout=cclient.WAIT)
            raise cclient.Failure(f"an oversized message was relayed: {got!r:.40}")
        except ConnectionClosed as closed:
            expect(closed.rcvd is not None and closed.rcvd.code == 1009, f"close {closed.rcvd}")
        except TimeoutError:
            raise cclient.Failure("the oversized message did not close the connection") from None

        if args.final:
            a.send("final")
            expect(recv(a, "the final message") == f"{name_a}: final", "final message")


if __name__ == "__main__":
    cclient.run("raw_client", main)
