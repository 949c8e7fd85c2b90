"""The flooding client of ``bot loadtest --flood``: one address asking as fast as it can.

It speaks plain HTTP/1.1 over asyncio streams, not through ``httpx``: with
hundreds of requests at once ``httpx`` spends most of a core on its own
connection pool and sends ~50 questions a second, so an httpx flood measured
the client, not the server (a raw client sends thousands a second on this
machine). Each of its ``flood`` connections asks the way a plain HTTP client
does (``POST /gradio_api/call/ask``, then ``GET`` the event's stream), with an
``X-Forwarded-For`` address as if it came through a proxy, so the server's
rate limit applies to it. It runs in a process of its own, so that it does
not slow the fans' own event loop, and reports the CPU it used: on a small
machine that CPU is taken from the server too, which a real flood, sent from
elsewhere, would not take.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import resource
import time
import urllib.parse
from dataclasses import dataclass

from .server import ASK_PATH, read_answer

#: Where the flooding client says it is (a documentation address; the traffic stays on loopback).
FLOOD_ADDRESS = "203.0.113.250"
#: What it asks, every time.
FLOOD_QUESTION = "Who taught Sezim to play the dombra?"


def require_loopback(url: str) -> None:
    """Refuse to send load anywhere but this machine."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"The load test only targets this machine (127.0.0.1 or localhost), not {host!r}.")


@dataclass
class FloodCounts:
    """What the flooding client did: questions asked, answered, told to slow down, refused or failed."""

    requests: int = 0
    answered: int = 0
    turned_away: int = 0
    refused: int = 0
    cpu_seconds: float = 0.0


def http_request(method: str, host: str, path: str, body: bytes = b"") -> bytes:
    """One HTTP/1.1 request as bytes, from :data:`FLOOD_ADDRESS` behind a proxy."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {FLOOD_ADDRESS}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.1 response, sized by Content-Length or chunked."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        raise ConnectionError("a response with neither Content-Length nor chunks")
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # the empty trailer
    return status, b"".join(parts)


async def _ask(reader, writer, host: str, path: str) -> tuple[int, dict | None]:
    """One question on an open connection: (HTTP status, the answer or None)."""
    body = json.dumps({"data": [FLOOD_QUESTION, None]}).encode()
    writer.write(http_request("POST", host, path, body))
    status, reply = await read_response(reader)
    if status != 200:
        return status, None
    writer.write(http_request("GET", host, f"{path}/{json.loads(reply)['event_id']}"))
    status, stream = await read_response(reader)
    return status, (read_answer(stream.decode("utf-8")) if status == 200 else None)


async def _connection(url: str, deadline: float, timeout: float, counts: FloodCounts) -> None:
    """One of the flood's connections: ask, read the answer, ask again, until ``deadline``."""
    parts = urllib.parse.urlsplit(url)
    host, path = parts.netloc, parts.path.rstrip("/") + "/" + ASK_PATH
    while time.monotonic() < deadline:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
            while time.monotonic() < deadline:
                counts.requests += 1
                status, answer = await asyncio.wait_for(_ask(reader, writer, host, path), timeout)
                if answer is None:
                    counts.refused += 1  # 429, 503...: refused at the door, as a flood should be
                elif answer.get("kind") == "rate_limited":
                    counts.turned_away += 1
                else:
                    counts.answered += 1
        except (TimeoutError, OSError, EOFError, asyncio.LimitOverrunError, ValueError, KeyError, RuntimeError):
            counts.refused += 1  # the server closed the connection or failed: open another one
            await asyncio.sleep(0.01)
        finally:
            if writer is not None:
                writer.close()


def flood_process(url: str, connections: int, seconds: float, timeout: float, results) -> None:
    """The flooding client for ``seconds``; puts its :class:`FloodCounts` on ``results`` (a process queue)."""
    require_loopback(url)
    counts = FloodCounts()
    deadline = time.monotonic() + seconds

    async def main():
        await asyncio.gather(*(_connection(url, deadline, timeout, counts) for _ in range(connections)))

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts.cpu_seconds = usage.ru_utime + usage.ru_stime
    results.put(counts)
