#!/usr/bin/env python3
"""Drives examples/c/auth with stomp.py.

  1. mallory (TCP) connects with a wrong passcode → ERROR "bad credentials", never CONNECTED.
  2. bob (WebSocket) connects with passcode "secret" → CONNECTED with user-name:bob;
     SUBSCRIBE /topic/public/news is allowed (RECEIPT);
     SUBSCRIBE /topic/admin/x is refused → ERROR.
  3. admin (TCP) connects with "secret" → CONNECTED with user-name:admin; SUBSCRIBE
     /topic/admin/x is allowed, and a message SENT there arrives.

That is 6 decisions (3 connects, 3 subscribes). Exit code 0 when every expectation held, 1 on a
failed expectation (message on stderr).
"""

import cclient
from cclient import expect


def main():
    args = cclient.parse(cclient.base_args(__doc__))
    bad_conn = cclient.tcp_connection(args.tcp_host, args.tcp_port)
    bob_conn = cclient.ws_connection(args.ws)
    admin_conn = cclient.tcp_connection(args.tcp_host, args.tcp_port)
    try:
        # 1. wrong passcode
        bad = cclient.open_client("mallory(tcp)", bad_conn, "mallory", "guess", wait=False)
        err = bad.wait_error()
        expect(err.headers.get("message") == "bad credentials",
               f"mallory: expected ERROR message 'bad credentials', got {err.headers} {err.body!r}")
        expect(not bad.connected, f"mallory: got CONNECTED despite the bad passcode: {bad.state()}")

        # 2. bob: accepted as user bob, may not subscribe to /topic/admin/**
        bob = cclient.open_client("bob(ws)", bob_conn, "bob", "secret")
        user = bob.connected[0].headers.get("user-name")
        expect(user == "bob", f"bob: CONNECTED user-name is {user!r}, expected 'bob' ({bob.connected[0].headers})")
        cclient.subscribe(bob_conn, bob, "/topic/public/news", "bob-news")
        expect(not bob.errors, f"bob: unexpected ERROR {bob.state()}")
        bob_conn.subscribe("/topic/admin/x", id="bob-admin", ack="auto",
                           headers={"receipt": cclient.receipt_id("sub")})
        err = bob.wait_error()
        expect("admin" in err.headers.get("message", ""),
               f"bob: the ERROR for /topic/admin/x does not say why: {err.headers} {err.body!r}")

        # 3. admin: accepted, may subscribe to /topic/admin/x and gets what is sent there
        admin = cclient.open_client("admin(tcp)", admin_conn, "admin", "secret")
        user = admin.connected[0].headers.get("user-name")
        expect(user == "admin", f"admin: CONNECTED user-name is {user!r}")
        cclient.subscribe(admin_conn, admin, "/topic/admin/x", "admin-x")
        expect(not admin.errors, f"admin: subscribe refused: {admin.state()}")
        rid = cclient.receipt_id("send")
        admin_conn.send("/topic/admin/x", "for admins", headers={"receipt": rid})
        admin.wait_receipt(rid)
        admin.wait_for(lambda: admin.messages, "admin: the message on /topic/admin/x")
        expect(admin.messages[0].body == "for admins", f"admin: wrong body {admin.messages[0].body!r}")
    finally:
        cclient.close(bad_conn, bob_conn, admin_conn)


if __name__ == "__main__":
    cclient.run("auth_client", main)
