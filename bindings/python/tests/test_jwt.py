"""Token (JWT) authentication from Python: the jwt_* settings, stomp.py with the token as its
passcode, a websockets client with the token in the query string, permissions and refresh."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

import wsbroker

from clients import Collector, WsClient, frame, stomppy_close, stomppy_subscribe, stomppy_tcp, unique

SECRET = b"python-test-secret"


def hs256(claims: dict, secret: bytes = SECRET) -> str:
    """An HS256 JWT (no library needed for HMAC)."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + sig).decode()


def test_jwt_settings_need_a_key_and_read_back() -> None:
    with pytest.raises(wsbroker.InvalidArgument, match="token authentication is off"):
        wsbroker.Config(jwt_issuer="https://id.example")
    with pytest.raises(wsbroker.InvalidArgument, match="only one of"):
        wsbroker.Config(jwt_hmac_secret=SECRET, jwt_public_key="-----BEGIN PUBLIC KEY-----")
    config = wsbroker.Config(jwt_hmac_secret=SECRET, jwt_issuer="iss", jwt_required=True,
                             allow_subscribe=["/topic/public.*"])
    assert config.jwt_issuer == "iss" and config.jwt_required
    assert config.allow_subscribe == ("/topic/public.*",)
    assert config.jwt_leeway_s == 30 and config.jwt_query_param == "access_token"
    assert config.jwt_refresh_destination == "/wsb/refresh"
    config.close()


def test_stomppy_connects_with_its_token_as_passcode(make_server) -> None:
    server = make_server(port=0, tcp_port=0, jwt_hmac_secret=SECRET, jwt_required=True)
    token = hs256({"sub": "py-user", "exp": int(time.time()) + 60,
                   "wsb": {"sub": ["/topic/py.*"], "pub": ["/topic/py.*"]}})
    conn = stomppy_tcp("127.0.0.1", server.tcp_port)
    col = Collector()
    conn.set_listener("collector", col)
    try:
        conn.connect("ignored", token, wait=True)
        assert col.connected[0].headers.get("user-name") == "py-user"
        stomppy_subscribe(conn, col, "/topic/py.room")
        conn.send("/topic/py.room", "hello", headers={"receipt": unique("send")})
        col.wait_messages(1)
        assert col.messages[0].body == "hello"
    finally:
        stomppy_close(conn)
    # A bad token: stomp.py sees the ERROR.
    bad = stomppy_tcp("127.0.0.1", server.tcp_port)
    errors = Collector()
    bad.set_listener("collector", errors)
    try:
        bad.connect("x", hs256({"sub": "a", "exp": int(time.time()) + 60}, b"wrong"), wait=False)
        errors.wait_for(lambda: errors.errors, "an ERROR")
        assert errors.errors[0].headers.get("message") == "token refused - invalid token signature"
    finally:
        stomppy_close(bad)
    assert server.stats().auth_refused == 1


def test_websocket_query_token_permissions_and_refresh(make_server) -> None:
    server = make_server(port=0, jwt_hmac_secret=SECRET, jwt_leeway_s=0)
    exp = int(time.time()) + 60
    token = hs256({"sub": "ws-user", "exp": exp, "wsb": {"sub": ["/topic/ok"], "pub": []}})
    with WsClient(f"{server.url}?access_token={token}") as c:
        connected = c.connect(login="", passcode="")
        assert connected.headers.get("user-name") == "ws-user"
        c.subscribe("/topic/ok")
        newer = hs256({"sub": "ws-user", "exp": exp + 600, "wsb": {"sub": ["/topic/ok"], "pub": []}})
        receipt = c.send_frame("/wsb/refresh", newer)
        assert receipt is not None and receipt.command == "RECEIPT"
        c.send(frame("SEND", {"destination": "/topic/ok"}, "not allowed"))
        errors = [f for f in c.wait_closed() if f.command == "ERROR"]
        assert errors[0].headers["message"] == "permission denied: user ws-user may not send to /topic/ok"
    stats = server.stats()
    assert (stats.auth_refreshed, stats.auth_denied) == (1, 1)


def test_on_connect_sees_the_tokens_subject_as_principal(make_server, pump_of) -> None:
    seen = []

    def check(info: wsbroker.ConnectEvent):
        seen.append(info.principal)
        return wsbroker.Accept(f"host-{info.principal}")

    server = make_server(port=0, jwt_hmac_secret=SECRET, on_connect=check)
    pump_of(server)
    token = hs256({"sub": "alice", "exp": int(time.time()) + 60})
    with WsClient(f"{server.url}?access_token={token}") as c:
        assert c.connect(login="", passcode="").headers.get("user-name") == "host-alice"
    assert seen == ["alice"]


def test_stomppy_private_destination_with_a_subscription_token(make_server) -> None:
    server = make_server(port=0, tcp_port=0, jwt_hmac_secret=SECRET, jwt_private=["/topic/private/**"])
    assert server.config.jwt_private == ("/topic/private/**",)
    exp = int(time.time()) + 60
    room = f"/topic/private/{unique('room')}"
    conn = stomppy_tcp("127.0.0.1", server.tcp_port)
    col = Collector()
    conn.set_listener("collector", col)
    try:
        conn.connect("ignored", hs256({"sub": "ivan", "exp": exp, "wsb": {"sub": [], "pub": [room]}}), wait=True)
        sub_token = hs256({"sub": "ivan", "exp": exp, "wsb": {"dest": room}})
        receipt = unique("sub")
        conn.subscribe(room, id="p", headers={"x-sub-token": sub_token, "receipt": receipt})
        col.wait_for(lambda: receipt in col.receipts, "RECEIPT")
        conn.send(room, "private hello", headers={"receipt": unique("send")})
        col.wait_messages(1)
        assert col.messages[0].body == "private hello"
        # The refresh of a subscription token names the subscription.
        newer = hs256({"sub": "ivan", "exp": exp + 600, "wsb": {"dest": room}})
        receipt = unique("refresh")
        conn.send("/wsb/refresh", "", headers={"subscription": "p", "token": newer, "receipt": receipt})
        col.wait_for(lambda: receipt in col.receipts, "refresh RECEIPT")
        # Without a subscription token the same destination is refused.
        conn.subscribe(room, id="q", headers={"receipt": unique("bare")})
        col.wait_for(lambda: col.errors, "an ERROR")
        assert "private destination" in col.errors[0].headers.get("message", "")
    finally:
        stomppy_close(conn)
    assert server.stats().auth_refreshed == 1
