"""Handshake-level auth (``on_upgrade``): browser-like clients prove who they are with a cookie
or a ``?token=`` query, over real sockets."""

from __future__ import annotations

from typing import Dict, List, Optional

import pytest
from websockets.exceptions import InvalidStatus

import wsbroker
from wsbroker import _trampolines

from clients import TcpClient, WsClient, unique

MODES = ["poll", "callback"]
TOKENS = {"t-alice": "alice", "t-bob": "bob"}


def _start(make_server, pump_of, mode: str, **kwargs):
    server = make_server(port=0, tcp_port=0, mode=mode, **kwargs)
    if mode == "poll":
        pump_of(server)
    return server


def token_auth(seen: Optional[List[Dict[str, object]]] = None):
    """A browser app's policy: the `session` cookie, else the `token` query parameter."""

    def check(req: wsbroker.UpgradeRequest):
        token = req.cookie("session") or req.query_param("token")
        if seen is not None:
            seen.append({
                "path": req.path, "query": req.query, "origin": req.header("ORIGIN"),
                "remote_addr": req.remote_addr, "token": token,
            })
        if token is None:
            return wsbroker.Reject("no token", status=401)
        return TOKENS.get(token, False)

    return check


def _status_of_refused(url: str, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        WsClient(url, **kwargs).close()
    return refused.value.response.status_code


@pytest.mark.parametrize("mode", MODES)
def test_cookie_principal_reaches_user_destinations(make_server, pump_of, mode: str) -> None:
    seen: List[Dict[str, object]] = []
    server = _start(make_server, pump_of, mode, on_upgrade=token_auth(seen))
    with WsClient(server.url, origin="https://app.example", headers={"Cookie": "theme=dark; session=t-alice"}) as ws:
        # The principal wins over the CONNECT login (the default connect decision).
        assert ws.connect(login="someone-else").headers.get("user-name") == "alice"
        ws.subscribe("/user/queue/inbox")
        server.send_to_user("alice", "/queue/inbox", "for alice")
        server.send_to_user("bob", "/queue/inbox", "for bob")
        assert ws.expect("MESSAGE").text == "for alice"
        receipt = ws.send_frame("/topic/nothing", "x")
        assert receipt is not None and receipt.command == "RECEIPT"
        assert not ws.pending, "bob's message must not reach alice"
    (req,) = seen
    assert req["path"] == "/ws" and req["query"] is None and req["token"] == "t-alice"
    assert req["origin"] == "https://app.example"
    assert str(req["remote_addr"]).startswith("127.0.0.1:")


@pytest.mark.parametrize("mode", MODES)
def test_query_token_principal_is_the_subscribe_user(make_server, pump_of, mode: str) -> None:
    users: List[Optional[str]] = []

    def authorize(ev: wsbroker.SubscribeEvent):
        users.append(ev.user)
        return ev.user == "bob" or wsbroker.Reject("bob only")

    server = _start(make_server, pump_of, mode, on_upgrade=token_auth(), on_subscribe=authorize)
    with WsClient(server.url + "?token=t%2Dbob&x=1") as ws:
        assert ws.connect().headers.get("user-name") == "bob"
        ws.subscribe("/user/queue/reply")
        server.send_to_user("bob", "/queue/reply", "hello bob")
        assert ws.expect("MESSAGE").text == "hello bob"
    assert users == ["bob"]


@pytest.mark.parametrize("mode", MODES)
def test_rejections_are_401_and_403(make_server, pump_of, mode: str) -> None:
    server = _start(make_server, pump_of, mode, on_upgrade=token_auth())
    assert _status_of_refused(server.url) == 401
    assert _status_of_refused(server.url + "?token=forged") == 403
    assert _status_of_refused(server.url, headers={"Cookie": "session=forged"}) == 403
    # Plain TCP STOMP has no upgrade: the hook is not asked there.
    with TcpClient("127.0.0.1", server.tcp_port) as tcp:
        assert tcp.connect(login="carol").headers.get("user-name") == "carol"
    assert server.stats().sessions <= 1


def test_failing_handler_refuses_with_403_and_is_reported(make_server) -> None:
    def broken(req: wsbroker.UpgradeRequest):
        raise ValueError("database down")

    server = make_server(port=0, mode="callback", on_upgrade=broken)
    assert _status_of_refused(server.url) == 403
    errors = server.callback_errors
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_unsupported_return_value_refuses(make_server) -> None:
    server = make_server(port=0, mode="callback", on_upgrade=lambda req: 42)
    assert _status_of_refused(server.url) == 403
    assert any(isinstance(e, TypeError) for e in server.callback_errors)


def test_request_is_valid_only_during_the_call(make_server) -> None:
    kept: List[wsbroker.UpgradeRequest] = []

    def keep(req: wsbroker.UpgradeRequest):
        kept.append(req)
        return wsbroker.Accept("dave")

    server = make_server(port=0, mode="callback", on_upgrade=keep)
    with WsClient(server.url) as ws:
        assert ws.connect().headers.get("user-name") == "dave"
    with pytest.raises(RuntimeError):
        _ = kept[0].path
    assert "expired" in repr(kept[0])


def test_replaced_and_removed_while_running(make_server) -> None:
    slots_before = _trampolines.slot_count()
    server = make_server(port=0, mode="callback")
    with WsClient(server.url) as ws:  # no hook: accepted, the login is the user
        assert ws.connect(login="guest").headers.get("user-name") == "guest"
    server.on_upgrade = lambda req: "first"
    server.on_upgrade = lambda req: req.header("x-user") or wsbroker.Reject("who?", status=401)
    with WsClient(server.url, headers={"X-User": "erin"}) as ws:
        assert ws.connect().headers.get("user-name") == "erin"
    assert _status_of_refused(server.url) == 401
    server.on_upgrade = None
    with WsClient(server.url) as ws:
        assert ws.connect(login=unique("u")).command == "CONNECTED"
    server.close()
    assert _trampolines.slot_count() == slots_before, "every C registration was dropped"


def test_reject_status_outside_4xx_becomes_403(make_server) -> None:
    server = make_server(port=0, mode="callback", on_upgrade=lambda req: wsbroker.Reject("x", status=302))
    assert _status_of_refused(server.url) == 403
