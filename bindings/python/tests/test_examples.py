"""The Python examples, run as subprocesses, driven by real clients."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.parse
from typing import List

import pytest

from clients import WsClient, stomppy_close, stomppy_connect, stomppy_subscribe, stomppy_ws

from conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "python"
STARTUP = 20.0


class Example:
    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / script), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.stderr: List[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append, False), daemon=True).start()
        self.url = ""
        self.tcp = None
        while not self.url:
            try:
                line = self.lines.get(timeout=STARTUP)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"{script}: no 'wsbroker listening' line within {STARTUP}s: {self.stderr}")
            if line is None:
                self.proc.wait(5)
                pytest.fail(f"{script} exited early ({self.proc.returncode}): {''.join(self.stderr)}")
            parts = line.split()
            if line.startswith("wsbroker listening websocket ") and len(parts) == 4:
                self.url = parts[3]
        u = urllib.parse.urlparse(self.url)
        self.host, self.port, self.path = u.hostname, u.port, u.path

    @staticmethod
    def _pump(stream, put, end_marker: bool) -> None:
        for line in stream:
            put(line.rstrip("\n"))
        if end_marker:
            put(None)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"example did not stop within 15s of SIGTERM: {''.join(self.stderr)}")
            raise


def test_chat_server_example() -> None:
    ex = Example("chat_server.py", "--port", "0", "--tcp-port", "0", "--exit-after", "120")
    conn = stomppy_ws(ex.host, ex.port, ex.path)
    try:
        col = stomppy_connect(conn, login="bob")
        stomppy_subscribe(conn, col, "/topic/chat/room/7")
        with WsClient(ex.url) as alice:
            alice.connect(login="alice")
            for room, text in [("7", "hi bob"), ("8", "wrong room"), ("7", "bye")]:
                r = alice.send_frame("/app/chat", json.dumps({"chatRoomId": room, "text": text}))
                assert r.command == "RECEIPT", r
            msgs = col.wait_messages(2)
            assert [json.loads(m.body) for m in msgs] == [
                {"chatRoomId": "7", "from": "alice", "text": "hi bob"},
                {"chatRoomId": "7", "from": "alice", "text": "bye"},
            ]
            alice.send_frame("/app/chat", "not json", receipt=False)
            errors = [f for f in alice.wait_closed() if f.command == "ERROR"]
            assert errors and "expected JSON" in errors[0].headers["message"]
        with WsClient(ex.url) as anon:  # no login: rejected by on_connect
            anon.send(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
            errors = [f for f in anon.wait_closed() if f.command == "ERROR"]
            assert errors and "login" in errors[0].headers["message"]
    finally:
        stomppy_close(conn)
        code = ex.stop()
    assert code == 0, "".join(ex.stderr)


def test_chat_server_exit_after() -> None:
    ex = Example("chat_server.py", "--port", "0", "--exit-after", "0.5")
    assert ex.proc.wait(20) == 0, "".join(ex.stderr)


def test_asyncio_ticker_example() -> None:
    ex = Example("asyncio_ticker.py", "--port", "0", "--interval", "0.05", "--exit-after", "120")
    try:
        with WsClient(ex.url) as c:
            c.connect()
            c.subscribe("/user/queue/fills", "fills")
            c.subscribe("/topic/ticker.*", "ticks")
            ticks = []
            while len(ticks) < 6:
                f = c.expect("MESSAGE")
                assert f.headers["subscription"] == "ticks"
                ticks.append(json.loads(f.body))
            assert {t["symbol"] for t in ticks} == {"ACME", "GLOBEX", "INITECH"}
            c.send_frame("/app/order", json.dumps({"symbol": "ACME", "side": "buy", "qty": 10}), receipt=False)
            while True:
                f = c.expect("MESSAGE")
                if f.headers["subscription"] == "fills":
                    break
            fill = json.loads(f.body)
            assert fill["symbol"] == "ACME" and fill["qty"] == 10 and fill["price"] > 0
            c.send_frame("/app/order", json.dumps({"symbol": "NOPE", "side": "buy", "qty": 1}), receipt=False)
            errors = [f for f in c.wait_closed() if f.command == "ERROR"]
            assert errors and "invalid order" in errors[0].headers["message"]
    finally:
        code = ex.stop()
    assert code == 0, "".join(ex.stderr)
