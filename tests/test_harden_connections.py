"""Idle and slow connections are closed, and there is a cap on them (issue 15, item 2).

uvicorn never closed a connection that sent nothing, or its headers or body a
byte at a time (slowloris); with a small file limit, a few hundred idle
sockets made the server unreachable and asyncio logged every failed accept().
The app is the real one on loopback, launched with short limits.
"""

from __future__ import annotations

import logging
import os
import resource
import select
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

gr = pytest.importorskip("gradio")

from bot.serve import build_app  # noqa: E402
from bot.serve.connections import ConnectionLimits, RepeatFilter  # noqa: E402

from conftest import SEEDS, built_bot, copy_seeds, free_port  # noqa: E402

LIMITS = ConnectionLimits(header_seconds=1.0, body_seconds=1.5, keep_alive_seconds=1.0, max_connections=20)


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder):
    chat_bot = built_bot(tmp_path_factory.mktemp("connections"), embedder)
    app = build_app(chat_bot)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
               connection_limits=LIMITS)
    try:
        yield port
    finally:
        app.close()


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (None: still open after ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                if sock.recv(4096, socket.MSG_PEEK) == b"":
                    return time.monotonic() - started
                sock.recv(4096)  # a response (408/400): read on to the close
            except OSError:
                return time.monotonic() - started
    return None


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def fan_gets_the_page(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
        return response.status == 200


def test_a_connection_that_sends_nothing_is_closed(site):
    with connect(site) as sock:
        assert closed_within(sock, 5) is not None


def test_headers_sent_a_byte_at_a_time_are_cut_off(site):
    request = b"GET /config HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with connect(site) as sock:
        started = time.monotonic()
        for byte in request:  # a byte every 0.1 s: never idle, never done
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            if closed_within(sock, 0.1) is not None:
                break
        assert time.monotonic() - started < 4, "the slow headers were read for too long"


def test_a_body_sent_a_byte_at_a_time_is_cut_off(site):
    with connect(site) as sock:
        sock.send(b"POST /gradio_api/call/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 5:
            try:
                sock.send(b" ")
            except OSError:
                break
            if closed_within(sock, 0.2) is not None:
                break
        assert time.monotonic() - started < 4, "the slow body was read for too long"


def test_requests_at_a_normal_pace_are_served_on_one_connection(site):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", site, timeout=5)
    for _ in range(3):
        connection.request("GET", "/config")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
        time.sleep(0.3)  # under the keep-alive time
    connection.close()


def test_idle_sockets_cannot_lock_a_fan_out(site):
    hoard = [connect(site, source="127.0.0.2") for _ in range(3 * LIMITS.max_connections)]
    try:
        time.sleep(0.3)
        assert fan_gets_the_page(site)
        # The server kept no more than its cap of them open.
        still_open = sum(closed_within(sock, 0.05) is None for sock in hoard)
        assert still_open <= LIMITS.max_connections
    finally:
        for sock in hoard:
            sock.close()


def test_a_repeated_log_line_goes_through_once_per_interval():
    now = [0.0]
    repeat = RepeatFilter(seconds=10, clock=lambda: now[0])

    def record(message="socket.accept() out of system resource"):
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    passed = []
    for step in range(100):  # 100 lines in 20 s
        now[0] = step * 0.2
        item = record()
        if repeat.filter(item):
            passed.append(item.getMessage())
    assert len(passed) == 2 and "49 more like this" in passed[1]
    assert repeat.filter(record("another cause"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a file limit per process, on Linux")
def test_idle_sockets_over_the_file_limit_neither_stop_the_server_nor_flood_its_log(tmp_path):
    """The case from the red-team run: a 256-file limit, 300 idle sockets."""
    copy_seeds(SEEDS, tmp_path / "seeds")
    port = free_port()
    log_path = tmp_path / "serve.log"

    def small_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--seeds", "seeds", "--index", "index", "--port", str(port)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, preexec_fn=small_file_limit,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    hoard = []
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if fan_gets_the_page(port):
                    break
            except OSError:
                assert time.monotonic() < deadline, "bot serve did not start"
                time.sleep(0.5)
        for _ in range(300):
            try:
                hoard.append(connect(port, source="127.0.0.3"))
            except OSError:
                break
        time.sleep(1)
        reachable = []
        for _ in range(3):
            try:
                reachable.append(fan_gets_the_page(port))
            except OSError as error:
                reachable.append(repr(error))
            time.sleep(1)
        time.sleep(3)
        assert process.poll() is None
    finally:
        for sock in hoard:
            sock.close()
        process.terminate()
        process.wait(20)
    assert reachable == [True] * 3, (reachable, log_path.read_text()[-3000:])
    assert log_path.stat().st_size < 64 * 1024, f"the log grew to {log_path.stat().st_size} bytes"
