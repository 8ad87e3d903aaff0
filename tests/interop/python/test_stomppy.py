"""stomp.py 8 against the broker: plain TCP and WebSocket transports."""

import pytest
import stomp

from conftest import VHOST
from stomputil import (
    Collector, connect, new_receipt, safe_disconnect, send, subscribe, unique_dest,
)

CUSTOM_HEADERS = {"x-custom": "hello", "x-number": "42", "x-escaped": "colon:in value", "x-unicode": "h\u00e9llo \u2713"}


def tcp_connection(broker, heartbeats=(0, 0)):
    return stomp.Connection12([(broker.tcp_host, broker.tcp_port)], heartbeats=heartbeats,
                            reconnect_attempts_max=1, timeout=5, vhost=VHOST)


def ws_connection(broker):
    # stomp.py's WSTransport (websocket-client) offers no subprotocol of its own: ask for v12.stomp.
    return stomp.WSStompConnection([(broker.ws_host, broker.ws_port)], ws_path=broker.ws_path,
                                   header={"Sec-WebSocket-Protocol": "v12.stomp"},
                                   reconnect_attempts_max=1, timeout=5, vhost=VHOST)


def check_pubsub_with_headers(sub_conn, pub_conn):
    sub = connect(sub_conn)
    pub = connect(pub_conn)
    try:
        dest = unique_dest("topic", "headers")
        subscribe(sub_conn, sub, dest, sub_id="s1")
        send(pub_conn, pub, dest, "payload \u2713", headers=CUSTOM_HEADERS, content_type="text/plain")
        (msg,) = sub.wait_messages(1)
        assert msg.body == "payload \u2713"
        assert msg.headers["destination"] == dest
        assert msg.headers["subscription"] == "s1"
        assert msg.headers.get("message-id")
        assert msg.headers.get("content-type") == "text/plain"
        for k, v in CUSTOM_HEADERS.items():
            assert msg.headers.get(k) == v, f"header {k}: {msg.headers}"
    finally:
        safe_disconnect(sub_conn, pub_conn)


def test_tcp_connect_heartbeats_negotiated(tcp_broker):
    conn = tcp_connection(tcp_broker, heartbeats=(2000, 2000))
    col = connect(conn)
    try:
        (connected,) = col.connected
        assert connected.headers.get("version") == "1.2"
        hb = connected.headers.get("heart-beat", "")
        sx, sy = (int(x) for x in hb.split(","))
        assert sx >= 0 and sy >= 0
    finally:
        safe_disconnect(conn)


def test_tcp_subscribe_publish_custom_headers(tcp_broker):
    check_pubsub_with_headers(tcp_connection(tcp_broker, (2000, 2000)), tcp_connection(tcp_broker, (2000, 2000)))


def test_tcp_receipt(tcp_broker):
    conn = tcp_connection(tcp_broker)
    col = connect(conn)
    try:
        receipt = new_receipt("explicit")
        conn.send(unique_dest("topic", "receipt"), "x", headers={"receipt": receipt})
        col.wait_receipt(receipt)
        assert col.errors == []
    finally:
        safe_disconnect(conn)


def test_tcp_ack_nack_client_individual(tcp_broker):
    conn = tcp_connection(tcp_broker)
    col = connect(conn)
    try:
        dest = unique_dest("queue", "acknack")
        subscribe(conn, col, dest, sub_id="s-ack", ack="client-individual")
        send(conn, col, dest, "first")
        send(conn, col, dest, "second")
        first, second = col.wait_messages(2)
        assert [first.body, second.body] == ["first", "second"]
        conn.ack(second.headers["ack"])
        conn.nack(first.headers["ack"])
        (_, _, again) = col.wait_messages(3)
        assert again.body == "first"
        assert again.headers.get("redelivered") == "true"
        conn.ack(again.headers["ack"])
        send(conn, col, dest, "marker")
        col.wait_messages(4)
        assert [m.body for m in col.messages] == ["first", "second", "first", "marker"]
    finally:
        safe_disconnect(conn)


def test_tcp_transaction_commit_and_abort(tcp_broker):
    conn = tcp_connection(tcp_broker)
    col = connect(conn)
    try:
        dest = unique_dest("queue", "tx")
        subscribe(conn, col, dest, sub_id="s-tx")
        tx = conn.begin()
        conn.send(dest, "tx-1", transaction=tx)
        conn.send(dest, "tx-2", transaction=tx)
        send(conn, col, dest, "marker-1")
        col.wait_messages(1)
        assert col.messages[0].body == "marker-1", "uncommitted messages must not be delivered"
        receipt = new_receipt("commit")
        conn.commit(tx, headers={"receipt": receipt})
        col.wait_receipt(receipt)
        col.wait_messages(3)
        tx2 = conn.begin()
        conn.send(dest, "aborted", transaction=tx2)
        receipt = new_receipt("abort")
        conn.abort(tx2, headers={"receipt": receipt})
        col.wait_receipt(receipt)
        send(conn, col, dest, "marker-2")
        col.wait_messages(4)
        assert [m.body for m in col.messages] == ["marker-1", "tx-1", "tx-2", "marker-2"]
    finally:
        safe_disconnect(conn)


def test_ws_subscribe_publish_custom_headers(broker):
    check_pubsub_with_headers(ws_connection(broker), ws_connection(broker))


def test_ws_to_tcp_and_back_with_stomppy(tcp_broker):
    """stomp.py over WebSocket publishes, stomp.py over TCP receives (and vice versa)."""
    ws_conn, tcp_conn = ws_connection(tcp_broker), tcp_connection(tcp_broker)
    try:
        ws_col, tcp_col = connect(ws_conn), connect(tcp_conn)
        dest = unique_dest("queue", "bridge")
        subscribe(tcp_conn, tcp_col, dest, sub_id="tcp")
        send(ws_conn, ws_col, dest, "ws->tcp", headers={"x-dir": "ws"})
        (msg,) = tcp_col.wait_messages(1)
        assert (msg.body, msg.headers.get("x-dir")) == ("ws->tcp", "ws")
        dest2 = unique_dest("queue", "bridge")
        subscribe(ws_conn, ws_col, dest2, sub_id="ws")
        send(tcp_conn, tcp_col, dest2, "tcp->ws", headers={"x-dir": "tcp"})
        (msg,) = ws_col.wait_messages(1)
        assert (msg.body, msg.headers.get("x-dir")) == ("tcp->ws", "tcp")
    finally:
        safe_disconnect(ws_conn, tcp_conn)
