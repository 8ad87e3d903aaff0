"""A chat bot written with wsbroker.Client: it joins room 5 of the chat example
(examples/python/chat_server.py or examples/c/chat_server.c), answers "!time" and "!echo ..."
and keeps working across server restarts (the client reconnects and re-subscribes by itself).

    python examples/python/chat_bot.py --url ws://127.0.0.1:61614/ws [--room 5] [--exit-after N]

Exit codes: 0 after --exit-after answers (or Ctrl-C), 1 when the first connection fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import wsbroker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:61614/ws")
    parser.add_argument("--room", type=int, default=5)
    parser.add_argument("--exit-after", type=int, default=0, help="stop after N answers")
    args = parser.parse_args()

    answers = 0

    def say(client: wsbroker.Client, text: str) -> None:
        message = {"chatRoomId": args.room, "type": "MESSAGE", "writer": "bot", "message": text}
        client.send("/app/chat", json.dumps(message), headers={"content-type": "application/json"})

    def on_chat(event: wsbroker.ClientEvent) -> None:
        nonlocal answers
        try:
            message = event.json()
        except ValueError:
            return
        if message.get("writer") == "bot":
            return
        text = str(message.get("message", ""))
        if text == "!time":
            say(client, time.strftime("it is %H:%M:%S"))
        elif text.startswith("!echo "):
            say(client, text[len("!echo "):])
        else:
            return
        answers += 1

    client = wsbroker.Client(args.url, reconnect_delay=(0.2, 5.0), system_roots=False)
    try:
        client.connect(10)
    except wsbroker.Error as e:
        print(f"chat_bot: {e}", file=sys.stderr)
        return 1
    with client:
        client.subscribe(f"/topic/chat/room/{args.room}", on_chat, confirm=5)
        say(client, "bot here: try !time or !echo <text>")
        print(f"chat_bot: in room {args.room} at {args.url}", flush=True)
        try:
            while not args.exit_after or answers < args.exit_after:
                for event in client.poll(timeout=0.5):
                    if event.kind in ("connected", "disconnected", "resubscribed"):
                        print(f"chat_bot: {event.kind} {event.text or ''}".rstrip(), flush=True)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
