"""Fixtures for the wsbroker Python interop suite.

Environment:
  WSBROKER_BIN   broker binary to spawn (default: <repo>/target/release/wsbroker)
  WSBROKER_URL   ws://host:port/path of an existing broker: do not spawn (e.g. RabbitMQ Web-STOMP)
  WSBROKER_TCP   host:port of that broker's plain-TCP STOMP listener
  WSBROKER_LOGIN / WSBROKER_PASSCODE   credentials (default guest/guest)
  WSBROKER_VHOST value of the CONNECT `host` header sent by stomp.py (default: the host name;
                 RabbitMQ needs "/")
"""

import atexit
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "wsbroker"
STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 5.0

EXTERNAL = bool(os.environ.get("WSBROKER_URL"))
LOGIN = os.environ.get("WSBROKER_LOGIN", "guest")
PASSCODE = os.environ.get("WSBROKER_PASSCODE", "guest")
VHOST = os.environ.get("WSBROKER_VHOST") or None

wsbroker_only = pytest.mark.skipif(EXTERNAL, reason="wsbroker-only feature (WSBROKER_URL targets another broker)")


@dataclass
class Broker:
    ws_url: str
    tcp_host: str | None
    tcp_port: int | None
    external: bool
    proc: subprocess.Popen | None = None
    stderr_path: Path | None = None
    stdout_lines: list = field(default_factory=list)

    @property
    def ws_host(self) -> str:
        return urllib.parse.urlparse(self.ws_url).hostname

    @property
    def ws_port(self) -> int:
        return urllib.parse.urlparse(self.ws_url).port

    @property
    def ws_path(self) -> str:
        return urllib.parse.urlparse(self.ws_url).path or "/"

    def stderr_tail(self, n: int = 4000) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return self.stderr_path.read_text(errors="replace")[-n:]
        return ""


def _external_broker() -> Broker:
    tcp = os.environ.get("WSBROKER_TCP")
    host, port = (tcp.rsplit(":", 1) if tcp else (None, None))
    return Broker(ws_url=os.environ["WSBROKER_URL"], tcp_host=host,
                  tcp_port=int(port) if port else None, external=True)


def start_broker(tmp_dir: Path, extra_args=()) -> Broker:
    if EXTERNAL:
        return _external_broker()
    binary = Path(os.environ.get("WSBROKER_BIN", DEFAULT_BIN)).resolve()
    if not binary.exists():
        pytest.fail(f"broker binary not found: {binary} (build it with cargo build --release)")
    stderr_path = tmp_dir / f"wsbroker-{time.monotonic_ns()}.stderr"
    stderr_file = open(stderr_path, "wb")
    proc = subprocess.Popen(
        [str(binary), "--listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0", *extra_args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file,
    )
    stderr_file.close()
    atexit.register(lambda: proc.poll() is None and proc.kill())  # never leave a broker behind
    lines: "queue.Queue[str | None]" = queue.Queue()

    def pump():  # keeps draining stdout so the broker never blocks on a full pipe
        for raw in proc.stdout:
            lines.put(raw.decode(errors="replace").strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    broker = Broker(ws_url="", tcp_host=None, tcp_port=None, external=False, proc=proc, stderr_path=stderr_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (broker.ws_url and broker.tcp_port):
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.001))
        except queue.Empty:
            proc.kill()
            pytest.fail(f"no 'wsbroker listening' lines within {STARTUP_TIMEOUT}s; stderr:\n{broker.stderr_tail()}")
        if line is None:
            proc.wait(5)
            pytest.fail(f"broker exited during startup (code {proc.returncode}); stderr:\n{broker.stderr_tail()}")
        broker.stdout_lines.append(line)
        parts = line.split()
        if line.startswith("wsbroker listening websocket ") and len(parts) == 4:
            broker.ws_url = parts[3]
        elif line.startswith("wsbroker listening tcp ") and len(parts) == 4:
            host, port = parts[3].rsplit(":", 1)
            broker.tcp_host, broker.tcp_port = host, int(port)
    return broker


def stop_broker(broker: Broker) -> None:
    if broker.external or broker.proc is None:
        return
    proc = broker.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"broker did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM; stderr:\n{broker.stderr_tail()}")
    assert code == 0, f"broker exit code {code} after SIGTERM; stderr:\n{broker.stderr_tail()}"


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    stop_broker(b)


@pytest.fixture
def broker_factory(tmp_path_factory):
    """Starts a dedicated broker with extra command-line arguments (ignored for an external broker)."""
    started = []

    def factory(*extra_args):
        b = start_broker(tmp_path_factory.mktemp("broker"), extra_args)
        started.append(b)
        return b

    yield factory
    for b in started:
        stop_broker(b)


@pytest.fixture
def tcp_broker(broker):
    if broker.tcp_port is None:
        pytest.skip("no plain-TCP STOMP listener known (set WSBROKER_TCP)")
    return broker
