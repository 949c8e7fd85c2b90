"""A real ``bot serve`` to measure or test: start it, ask it over HTTP, read its memory.

Shared by ``bot bench``, ``bot loadtest`` and the tests, so that the three
start, stop and question the server the same way. Standard library only
(the HTTP client is passed in), so the probes can import it without
weighing on the memory they report.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Self

#: The ask endpoint of Gradio's HTTP API, relative to the server's URL.
ASK_PATH = "gradio_api/call/ask"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- memory -------------------------------------------------------------------------


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """The memory figures of ``/proc/PID/status`` in KiB (``VmRSS``, ``VmHWM``, ``RssFile``, ...).

    Empty when they cannot be read (no such process, not Linux).
    """
    figures = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                    figures[name] = int(parts[0])
    except (OSError, ValueError):
        return {}
    return figures


def rss_mib(pid: int | str) -> float | None:
    """Resident memory of process ``pid`` in MiB (Linux), or None when it cannot be read."""
    kib = memory_kib(pid).get("VmRSS")
    return None if kib is None else kib / 1024


# -- asking over HTTP ---------------------------------------------------------------


def _ask_body(question: str, history, session: str | None) -> dict:
    body = {"data": [question, history]}
    if session:
        body["session_hash"] = session
    return body


def read_answer(stream: str):
    """The answer in an ask event stream (Gradio's ``event:`` / ``data:`` lines).

    Raises RuntimeError when the stream ends without a ``complete`` event.
    """
    event, data = None, None
    for line in stream.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = line[5:].strip()
            if event == "complete":
                break
    if event != "complete" or data is None:
        raise RuntimeError(f"no answer: last event {event!r}, data {data!r}"[:200])
    (answer,) = json.loads(data)
    return answer


def ask(client, base: str, question: str, history=None, *, timeout: float, session: str | None = None,
        headers: dict | None = None):
    """One question through the HTTP API with an ``httpx.Client`` (POST, then the event stream).

    ``headers`` go with both requests (an ``X-Forwarded-For``, say).
    Raises on an HTTP error or when no answer comes (see read_answer).
    """
    joined = client.post(base + ASK_PATH, json=_ask_body(question, history, session), timeout=timeout,
                         headers=headers)
    joined.raise_for_status()
    stream = client.get(f"{base}{ASK_PATH}/{joined.json()['event_id']}", timeout=timeout, headers=headers)
    stream.raise_for_status()
    return read_answer(stream.text)


async def ask_async(client, base: str, question: str, history=None, *, timeout: float, session: str | None = None,
                    headers: dict | None = None):
    """:func:`ask` with an ``httpx.AsyncClient``."""
    joined = await client.post(base + ASK_PATH, json=_ask_body(question, history, session), timeout=timeout,
                               headers=headers)
    joined.raise_for_status()
    stream = await client.get(f"{base}{ASK_PATH}/{joined.json()['event_id']}", timeout=timeout, headers=headers)
    stream.raise_for_status()
    return read_answer(stream.text)


# -- the server process -------------------------------------------------------------


class ServeProcess:
    """``bot serve`` in a subprocess on a free loopback port.

    As a context manager it waits until the server answers HTTP and stops it
    afterwards; :meth:`start` alone returns at once, for a caller that times
    the start-up itself. ``extra`` are more ``bot serve`` options and ``env``
    more environment variables; the log goes to ``log_path`` (a new temporary
    file when None).
    """

    def __init__(self, seeds: Path, index: Path, extra: tuple[str, ...] = (), log_path: Path | None = None,
                 cwd: Path | None = None, start_timeout: float = 300.0, env: dict[str, str] | None = None):
        self.seeds, self.index, self.extra, self.cwd = seeds, index, extra, cwd
        self.env = env or {}
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        """Start the process without waiting for it to serve."""
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="bot-serve-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        command = [sys.executable, "-m", "bot", "serve", "--seeds", str(self.seeds), "--index", str(self.index),
                   "--host", "127.0.0.1", "--port", str(self.port), *self.extra]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        return self

    def check_running(self) -> None:
        """Raise RuntimeError, with the log, if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"bot serve exited with {self.process.returncode}:\n{self.log_text()}")

    def wait_until_serving(self) -> Self:
        """Return once the server answers HTTP; stop it and raise RuntimeError if it does not in time."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"bot serve did not start in {self.start_timeout:.0f}s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop the process, politely first (SIGTERM lets it close its sockets)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> Self:
        return self.start().wait_until_serving()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""
        except OSError:
            return ""
