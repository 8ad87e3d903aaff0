#!/usr/bin/env python3
"""Chat rooms over STOMP, with wsbroker embedded in a Python program (poll mode).

Clients connect to ws://127.0.0.1:PORT/ws (STOMP 1.2, e.g. @stomp/stompjs or stomp.py),
subscribe to /topic/chat/room/{id} and SEND a JSON message
``{"chatRoomId": "7", "text": "hello"}`` to /app/chat. The application handler checks it and
publishes it to /topic/chat/room/7, adding who sent it.

    python examples/python/chat_server.py --port 61614 [--tcp-port 61615] [--exit-after SECONDS]

Prints ``wsbroker listening websocket ws://127.0.0.1:PORT/ws`` (and ``wsbroker listening tcp
127.0.0.1:PORT`` with --tcp-port) once listening; stops on SIGINT/SIGTERM or after
--exit-after seconds, exiting 0.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time

import wsbroker

ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def build_server(args: argparse.Namespace) -> wsbroker.Server:
    def on_connect(info: wsbroker.ConnectEvent):
        # Anyone may chat, but needs a name: the login becomes the user name.
        if not info.login:
            return wsbroker.Reject("a login (your chat name) is required")
        return info.login

    server = wsbroker.Server(host=args.host, port=args.port, tcp_port=args.tcp_port, on_connect=on_connect)

    @server.app_handler("/app/chat")
    def on_chat(msg: wsbroker.Message):
        try:
            data = msg.json()
            room = str(data["chatRoomId"])
            text = str(data["text"])
        except (ValueError, KeyError, TypeError):
            return wsbroker.Reject('expected JSON {"chatRoomId": ..., "text": ...}')
        if not ROOM_ID.match(room):
            return wsbroker.Reject(f"invalid chatRoomId {room!r}")
        out = {"chatRoomId": room, "from": msg.user, "text": text}
        server.publish(f"/topic/chat/room/{room}", json.dumps(out), headers={"content-type": "application/json"})
        return None

    return server


def main(argv: "list[str] | None" = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=61614, help="WebSocket port (0: any free port)")
    parser.add_argument("--tcp-port", type=int, default=None, help="also serve STOMP over plain TCP")
    parser.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds (for tests and demos)")
    args = parser.parse_args(argv)

    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))

    deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
    with build_server(args) as server:
        print(f"wsbroker listening websocket {server.url}", flush=True)
        if server.tcp_port is not None:
            print(f"wsbroker listening tcp {args.host}:{server.tcp_port}", flush=True)
        # The host's main loop: connect decisions and /app/chat handlers run inside poll().
        while not stopping and (deadline is None or time.monotonic() < deadline):
            for event in server.poll(timeout=0.1):
                if isinstance(event, wsbroker.DisconnectEvent):
                    print(f"session {event.session} ({event.user}) left", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
