"""Cross-transport: @stomp/stompjs over WebSocket -> stomp.py over plain TCP."""

import shutil
import subprocess
from pathlib import Path

import pytest
import stomp

from conftest import VHOST
from stomputil import connect, safe_disconnect, subscribe, unique_dest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
PUBLISH = NODE_DIR / "tools" / "publish.mjs"


def test_stompjs_over_websocket_reaches_stomppy_over_tcp(tcp_broker):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@stomp" / "stompjs").is_dir():
        pytest.fail("node and tests/interop/node/node_modules are required (run npm ci in tests/interop/node)")
    conn = stomp.Connection12([(tcp_broker.tcp_host, tcp_broker.tcp_port)], heartbeats=(2000, 2000),
                              reconnect_attempts_max=1, timeout=5, vhost=VHOST)
    col = connect(conn)
    try:
        dest = unique_dest("queue", "cross")
        subscribe(conn, col, dest, sub_id="cross")
        result = subprocess.run([node, str(PUBLISH), tcp_broker.ws_url, dest, "from stompjs \u2713",
                                 "x-origin=stompjs", "x-colon=a:b"],
                                cwd=NODE_DIR, capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, f"publish.mjs failed ({result.returncode}): {result.stderr}"
        (msg,) = col.wait_messages(1)
        assert msg.body == "from stompjs \u2713"
        assert msg.headers.get("x-origin") == "stompjs"
        assert msg.headers.get("x-colon") == "a:b"
    finally:
        safe_disconnect(conn)
