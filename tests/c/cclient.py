"""Helpers shared by the stomp.py drivers of the C examples (chat_client.py, auth_client.py).

Every wait is bounded (WAIT seconds, raised with --slow for valgrind runs); a failed expectation
raises Failure, which the drivers turn into a clear message and exit code 1.
"""

import argparse
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

import stomp

WAIT = 10.0


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


class Collector(stomp.ConnectionListener):
    """Records the frames stomp.py hands to the listener."""

    def __init__(self, name):
        self.name = name
        self.cond = threading.Condition()
        self.messages, self.receipts, self.errors, self.connected = [], [], [], []
        self.disconnected = 0

    def _add(self, attr, value):
        with self.cond:
            getattr(self, attr).append(value)
            self.cond.notify_all()

    def on_message(self, frame):
        self._add("messages", frame)

    def on_receipt(self, frame):
        self._add("receipts", frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self._add("errors", frame)

    def on_connected(self, frame):
        self._add("connected", frame)

    def on_disconnected(self):
        with self.cond:
            self.disconnected += 1
            self.cond.notify_all()

    def state(self):
        return (f"{self.name}: messages={[(m.headers.get('destination'), m.body) for m in self.messages]} "
                f"receipts={self.receipts} errors={[e.headers for e in self.errors]} "
                f"connected={len(self.connected)} disconnected={self.disconnected}")

    def wait_for(self, predicate, what, timeout=None):
        timeout = WAIT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Failure(f"timed out after {timeout:.0f}s waiting for {what} ({self.state()})")
                self.cond.wait(remaining)

    def wait_receipt(self, receipt):
        self.wait_for(lambda: receipt in self.receipts, f"RECEIPT {receipt}")

    def wait_error(self):
        self.wait_for(lambda: self.errors, "an ERROR frame")
        return self.errors[0]


def receipt_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tcp_connection(host, port):
    return stomp.Connection12([(host, port)], heartbeats=(0, 0), reconnect_attempts_max=1, timeout=WAIT)


def ws_connection(url):
    parts = urllib.parse.urlparse(url)
    # stomp.py's WSTransport offers no STOMP subprotocol of its own: ask for v12.stomp.
    return stomp.WSStompConnection([(parts.hostname, parts.port)], ws_path=parts.path or "/",
                                   header={"Sec-WebSocket-Protocol": "v12.stomp"},
                                   reconnect_attempts_max=1, timeout=WAIT)


def open_client(name, conn, login, passcode, wait=True):
    """Starts a connection; with wait=True the CONNECTED frame must arrive within WAIT."""
    col = Collector(name)
    conn.set_listener("collector", col)
    conn.connect(login, passcode, wait=False)
    if wait:
        col.wait_for(lambda: col.connected or col.errors, f"{name}: CONNECTED")
        expect(col.connected, f"{name}: connect refused: {[e.headers for e in col.errors]}")
    return col


def subscribe(conn, col, destination, sub_id):
    rid = receipt_id("sub")
    conn.subscribe(destination, id=sub_id, ack="auto", headers={"receipt": rid})
    col.wait_receipt(rid)


def close(*conns):
    for conn in conns:
        try:
            if conn.is_connected():
                conn.disconnect()
        except Exception:  # noqa: BLE001 - best effort
            pass


def base_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--ws", required=True, help="ws://127.0.0.1:PORT/ws of the example")
    parser.add_argument("--tcp", required=True, help="127.0.0.1:PORT of the example's TCP listener")
    parser.add_argument("--mode", choices=("poll", "callback"), required=True)
    parser.add_argument("--slow", action="store_true", help="the example runs under valgrind: wait longer")
    return parser


def parse(parser):
    global WAIT
    args = parser.parse_args()
    if args.slow:
        WAIT = 45.0
    host, port = args.tcp.rsplit(":", 1)
    args.tcp_host, args.tcp_port = host, int(port)
    return args


def run(name, main):
    """Runs main(); prints PASS/FAIL and exits 0/1 (2 on an unexpected exception)."""
    try:
        main()
    except Failure as e:
        print(f"{name}: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001
        print(f"{name}: FAIL with an exception:", file=sys.stderr)
        traceback.print_exc()
        sys.exit(2)
    print(f"{name}: PASS")
    sys.exit(0)
