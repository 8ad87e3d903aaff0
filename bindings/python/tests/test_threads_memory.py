"""Concurrency (publishing from 8 threads, callbacks from many threads) and bounded memory."""

from __future__ import annotations

import gc
import threading
from collections import defaultdict

import wsbroker

from clients import WsClient, wait_until

THREADS = 8
PER_THREAD = 500


def _publish_concurrently(server: wsbroker.Server, destination: str) -> None:
    barrier = threading.Barrier(THREADS)
    failures = []

    def worker(t: int) -> None:
        try:
            barrier.wait(10)
            for i in range(PER_THREAD):
                # The host callbacks may fall behind: then the publish waits for them.
                server.publish(destination, f"{t}:{i}", headers={"x-thread": str(t)}, wait=30.0)
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert not failures, failures


def test_publish_from_8_threads_reaches_client_and_host_callbacks(make_server) -> None:
    server = make_server(port=0, mode="callback", worker_threads=2)
    lock = threading.Lock()
    seen = defaultdict(list)
    callback_threads = set()

    def on_message(m: wsbroker.Message) -> None:
        t, i = m.text.split(":")
        with lock:
            seen[int(t)].append(int(i))
            callback_threads.add(threading.get_ident())

    server.subscribe("/topic/load", on_message)
    with WsClient(server.url) as c:
        c.connect()
        c.subscribe("/topic/load")
        _publish_concurrently(server, "/topic/load")
        total = THREADS * PER_THREAD
        got = defaultdict(list)
        for _ in range(total):
            t, i = c.expect("MESSAGE").text.split(":")
            got[int(t)].append(int(i))
    # Host callbacks run on a callback thread after the publishes returned.
    wait_until(lambda: sum(len(v) for v in seen.values()) == total, "host callbacks")
    for t in range(THREADS):
        assert got[t] == list(range(PER_THREAD)), f"thread {t}: client order"
        assert seen[t] == list(range(PER_THREAD)), f"thread {t}: host callback order"
    assert len(callback_threads) == 1  # one host subscription: one callback thread, in order
    assert not server.callback_errors


def test_app_callbacks_from_many_client_threads(make_server) -> None:
    server = make_server(port=0, mode="callback", worker_threads=2)
    lock = threading.Lock()
    counts: dict = defaultdict(int)
    idents = set()

    @server.app_handler("/app/work/*")
    def work(msg: wsbroker.Message) -> None:
        with lock:
            counts[msg.destination] += 1
            idents.add(threading.get_ident())
        server.send_to_session(msg.session, "/user/queue/done", msg.body)

    def client(n: int) -> None:
        with WsClient(server.url) as c:
            c.connect(login=f"u{n}")
            c.subscribe("/user/queue/done")
            for i in range(100):
                c.send_frame(f"/app/work/{n}", str(i), receipt=False)
            for i in range(100):
                assert c.expect("MESSAGE").text == str(i)

    errors = []

    def run(n: int) -> None:
        try:
            client(n)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    assert dict(counts) == {f"/app/work/{n}": 100 for n in range(6)}
    assert threading.get_ident() not in idents


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_100k_messages_without_memory_growth(make_server) -> None:
    """100,000 publishes through the binding (headers, a host subscription callback, a live
    client, polled events) must not grow RSS by more than a bound."""
    server = make_server(port=0, mode="callback", worker_threads=2)
    received = [0]
    server.subscribe("/topic/mem.*", lambda m: received.__setitem__(0, received[0] + 1))
    poller = make_server(port=0, worker_threads=1)
    polled = [0]
    poller.subscribe("/topic/mem", lambda m: polled.__setitem__(0, polled[0] + 1))

    body = b"x" * 256
    headers = {"content-type": "text/plain", "x-seq": "0"}

    def batch(n: int) -> None:
        for i in range(n):
            server.publish("/topic/mem.a", body, headers=headers, wait=30.0)
            if i % 10 == 0:
                poller.publish("/topic/mem", body, headers=headers)
            if i % 1000 == 999:
                poller.poll(timeout=0)

    with WsClient(server.url) as c:
        c.connect()
        c.subscribe("/topic/mem.b")  # a live client on another topic of the same server
        batch(10_000)  # warm-up: allocator pools, caches
        gc.collect()
        before = _rss_kib()
        batch(100_000)
        wait_until(lambda: polled[0] == 11_000, "polled messages", poll=lambda: poller.poll(timeout=0.05))
        gc.collect()
        after = _rss_kib()
        server.publish("/topic/mem.b", "still alive")
        assert c.expect("MESSAGE").text == "still alive"
    wait_until(lambda: received[0] == 110_001, "host callbacks")
    growth_mib = (after - before) / 1024
    print(f"RSS growth over 100,000 messages: {growth_mib:.1f} MiB")
    assert growth_mib < 50, f"RSS grew by {growth_mib:.1f} MiB over 100,000 messages"
