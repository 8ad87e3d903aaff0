#!/usr/bin/env python3
"""Drives examples/c/chat_server with stomp.py: A over plain TCP, B over WebSocket, C (TCP) sends
a bad message.

  1. A and B subscribe to /topic/chat/room/5 (with receipts); A also to /topic/chat/room/6.
  2. B SENDs the chat JSON to /app/chat → A and B receive it intact on room 5, as
     application/json; nothing arrives on room 6.
  3. A SENDs a message for room 6 → only A's room-6 subscription receives it.
  4. C SENDs a message without chatRoomId → C gets an ERROR mentioning chatRoomId
     (callback mode: the handler's refusal; poll mode: the session closed by the main loop).
  5. With --final, A SENDs one more message without waiting (the 4th chat message, so a server
     started with --exit-after 4 exits 0 by itself).

Exit code 0 when every expectation held, 1 on a failed expectation (message on stderr).
"""

import json
import time

import cclient
from cclient import expect

ROOM5 = "/topic/chat/room/5"
ROOM6 = "/topic/chat/room/6"


def main():
    parser = cclient.base_args(__doc__)
    parser.add_argument("--final", action="store_true", help="send a 4th chat message at the end")
    args = cclient.parse(parser)

    a_conn = cclient.tcp_connection(args.tcp_host, args.tcp_port)
    b_conn = cclient.ws_connection(args.ws)
    c_conn = cclient.tcp_connection(args.tcp_host, args.tcp_port)
    try:
        a = cclient.open_client("clientA(tcp)", a_conn, "clientA", "pw")
        b = cclient.open_client("clientB(ws)", b_conn, "clientB", "pw")
        cclient.subscribe(a_conn, a, ROOM5, "a-room5")
        cclient.subscribe(a_conn, a, ROOM6, "a-room6")
        cclient.subscribe(b_conn, b, ROOM5, "b-room5")

        # 2. the chat flow from the notes: B → /app/chat → room 5
        body = json.dumps({"chatRoomId": 5, "type": "MESSAGE", "writer": "clientB", "message": "hi \u2713"},
                          ensure_ascii=False)
        rid = cclient.receipt_id("send")
        b_conn.send("/app/chat", body, content_type="application/json", headers={"receipt": rid})
        b.wait_receipt(rid)
        for name, col, sub in (("A", a, "a-room5"), ("B", b, "b-room5")):
            col.wait_for(lambda col=col: col.messages, f"{name}: the chat MESSAGE on {ROOM5}")
            msg = col.messages[0]
            expect(msg.headers.get("destination") == ROOM5, f"{name}: wrong destination {msg.headers}")
            expect(msg.headers.get("subscription") == sub, f"{name}: wrong subscription {msg.headers}")
            expect(msg.body == body, f"{name}: body changed: {msg.body!r} != {body!r}")
            expect(msg.headers.get("content-type", "").startswith("application/json"),
                   f"{name}: content-type {msg.headers.get('content-type')!r}, expected application/json")

        # 3. room 6 only reaches room-6 subscribers
        body6 = json.dumps({"chatRoomId": 6, "type": "MESSAGE", "writer": "clientA", "message": "room six"})
        rid = cclient.receipt_id("send")
        a_conn.send("/app/chat", body6, content_type="application/json", headers={"receipt": rid})
        a.wait_receipt(rid)
        a.wait_for(lambda: len(a.messages) >= 2, f"A: the chat MESSAGE on {ROOM6}")
        msg = a.messages[1]
        expect(msg.headers.get("destination") == ROOM6 and msg.headers.get("subscription") == "a-room6",
               f"A: expected the room-6 message, got {msg.headers}")
        expect(msg.body == body6, f"A: room-6 body changed: {msg.body!r}")

        # 4. no chatRoomId → ERROR for the sender (no receipt asked: in callback mode the ERROR
        #    replaces it)
        c = cclient.open_client("clientC(tcp)", c_conn, "clientC", "pw")
        c_conn.send("/app/chat", json.dumps({"type": "MESSAGE", "writer": "clientC", "message": "no room"}),
                    content_type="application/json")
        err = c.wait_error()
        text = err.headers.get("message", "") + " " + (err.body or "")
        expect("chatRoomId" in text, f"C: ERROR does not mention chatRoomId: {err.headers} {err.body!r}")
        expect(not c.messages, f"C: unexpected messages {c.state()}")

        # nothing else reached B (room 6 and the refused message are not for it)
        time.sleep(0.3)
        expect(len(b.messages) == 1, f"B: expected exactly 1 message, {b.state()}")
        expect(len(a.messages) == 2, f"A: expected exactly 2 messages, {a.state()}")

        # 5. the 4th chat message, fire and forget
        if args.final:
            a_conn.send("/app/chat", json.dumps({"chatRoomId": 5, "type": "LEAVE", "writer": "clientA"}),
                        content_type="application/json")
            time.sleep(0.2)
    finally:
        cclient.close(a_conn, b_conn, c_conn)


if __name__ == "__main__":
    cclient.run("chat_client", main)
