#!/usr/bin/env python3
"""Drives examples/c/browser_auth like a browser would (websockets; a cookie or a query token,
no STOMP credentials).

  1. no token                      → the upgrade is refused with HTTP 401
  2. cookie session=forged         → HTTP 403
  3. cookie session=t-alice        → CONNECT (claiming login "mallory") gets user-name:alice;
     SUBSCRIBE /user/queue/whoami, SEND /app/whoami → MESSAGE "you are alice"
  4. ws://.../ws?token=t-bob       → the same as bob

That is 4 upgrade decisions. Exit code 0 when every expectation held, 1 on a failed expectation.
"""

import time

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import cclient
from cclient import expect

NUL = "\x00"


def stomp_frame(command, headers, body=""):
    lines = [command] + [f"{k}:{v}" for k, v in headers.items()]
    return "\n".join(lines) + "\n\n" + body + NUL


class Session:
    """Raw STOMP 1.2 frames over one WebSocket, every wait bounded by cclient.WAIT."""

    def __init__(self, url, headers=None):
        self.ws = connect(url, subprotocols=["v12.stomp"], additional_headers=headers,
                          open_timeout=cclient.WAIT, close_timeout=2, legacy=True)
        self.buffer = ""

    def send(self, command, **headers):
        body = headers.pop("body", "")
        self.ws.send(stomp_frame(command, {k.replace("_", "-"): v for k, v in headers.items()}, body))

    def recv(self):
        deadline = time.monotonic() + cclient.WAIT
        while True:
            frame, sep, rest = self.buffer.lstrip("\n").partition(NUL)
            if sep:
                self.buffer = rest
                head, _, body = frame.partition("\n\n")
                command, *lines = head.split("\n")
                return command, dict(line.split(":", 1) for line in lines), body
            remaining = deadline - time.monotonic()
            expect(remaining > 0, f"no STOMP frame within {cclient.WAIT:.0f}s")
            data = self.ws.recv(timeout=remaining)
            self.buffer += data if isinstance(data, str) else data.decode()

    def expect(self, command):
        frame = self.recv()
        expect(frame[0] == command, f"expected {command}, got {frame}")
        return frame

    def close(self):
        self.ws.close()


def refused_status(url, headers=None):
    try:
        Session(url, headers).close()
    except InvalidStatus as e:
        return e.response.status_code
    raise cclient.Failure(f"the upgrade of {url} with {headers} was accepted")


def whoami(url, headers, user):
    s = Session(url, headers)
    try:
        s.send("CONNECT", accept_version="1.2", host="localhost", login="mallory", heart_beat="0,0")
        _, connected, _ = s.expect("CONNECTED")
        expect(connected.get("user-name") == user, f"{user}: CONNECTED user-name is {connected}")
        s.send("SUBSCRIBE", destination="/user/queue/whoami", id="me", receipt="sub")
        expect(s.expect("RECEIPT")[1].get("receipt-id") == "sub", f"{user}: wrong RECEIPT")
        s.send("SEND", destination="/app/whoami", body="?")
        _, headers, body = s.expect("MESSAGE")
        expect(body == f"you are {user}", f"{user}: reply {body!r} ({headers})")
    finally:
        s.close()


def main():
    args = cclient.parse(cclient.base_args(__doc__))
    status = refused_status(args.ws)
    expect(status == 401, f"no token: HTTP {status}, expected 401")
    status = refused_status(args.ws, {"Cookie": "session=forged"})
    expect(status == 403, f"forged cookie: HTTP {status}, expected 403")
    whoami(args.ws, {"Cookie": "lang=en; session=t-alice"}, "alice")
    whoami(args.ws + "?token=t-bob", None, "bob")


if __name__ == "__main__":
    cclient.run("browser_client", main)
