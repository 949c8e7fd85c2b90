"""``bot loadtest``: many simulated fans asking ``bot serve`` questions at once.

Each fan asks a question through the HTTP API (``POST /gradio_api/call/ask``,
then reads the answer from ``GET /gradio_api/call/ask/{event_id}``, which is
what ``gradio_client`` does), waits for the answer, and asks the next one, for
a fixed time. The questions mix answers, refusals, small talk, follow-ups with
a history, and odd input. Every request is bounded (a timeout each, and a cap
on their number), and traffic only ever goes to a loopback address.

The run reports failed requests (transport errors, HTTP errors, error events,
malformed or error answers), p50/p95 latency, throughput, and the server's
resident memory after a warm-up and after the run, which must stay within
``MEMORY_TOLERANCE`` of each other.

Without ``--url`` it starts its own ``bot serve`` (rate limit off, so that it
measures capacity) on a free loopback port and stops it afterwards.

With ``flood``, one more client asks as fast as it can, ``flood`` questions
at once, from one address behind a proxy (``X-Forwarded-For``), so the
server's rate limit applies to it while the fans (local, no proxy header)
are not limited: the fans' failures and latency show whether the flood
crowds them out. The server started for it keeps its default rate limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import multiprocessing
import queue
import random
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field

from .server import ask_async, rss_mib

#: The server's memory after the run may differ from after warm-up by this share.
MEMORY_TOLERANCE = 0.10
#: Sessions the server keeps (``bot.serve.app.STATE_SESSIONS``): with fresh sessions every
#: question adds one until there are this many, so the warm-up lasts at least this many
#: questions, and the memory measured after it is the plateau, not the climb to it.
SERVER_SESSIONS = 2000
#: The longest that warm-up may be stretched for it, in seconds.
MAX_SESSION_WARMUP = 180.0

HISTORY = [
    {"role": "user", "content": "What is her debut album called?"},
    {"role": "assistant", "content": "Her debut album was a critical and commercial success."},
]
#: What the simulated fans ask: (question, history).
QUESTIONS: list[tuple[str, list[dict] | None]] = [
    ("Who taught Sezim to play the dombra?", None),
    ("What is her debut album called?", None),
    ("Where did she study music?", None),
    ("Which jazz singer made her want a career in music?", None),
    ("Where does she find inspiration for her lyrics?", None),
    ("What instruments did she blend with jazz?", None),
    ("Is Sezim married?", None),
    ("What's the capital of France?", None),
    ("Hi!", None),
    ("thanks", None),
    ("Was it successful?", HISTORY),
    ("<img src=x onerror=alert(1)> who taught her?", None),
    ("Сезимге домбыра тартуды кім үйретті? 🎶", None),
    ("?!?!", None),
]
VALID_KINDS = {"answer", "refusal", "small_talk", "invalid", "other_language", "rate_limited"}
#: Where the flooding client says it is (a documentation address; the traffic stays on loopback).
FLOOD_ADDRESS = "203.0.113.250"


@dataclass
class LoadReport:
    """What one load test measured."""

    url: str
    fans: int
    seconds: float
    requests: int = 0
    failed: int = 0
    rate_limited: int = 0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    latency_ms_max: float = 0.0
    throughput_rps: float = 0.0
    rss_mib_after_warmup: float | None = None
    rss_mib_after_run: float | None = None
    rss_change: float | None = None
    errors: list[str] = field(default_factory=list)
    #: The flooding client, when there was one: questions at once, asked, answered in full, turned away.
    flood: int = 0
    flood_requests: int = 0
    flood_answered: int = 0
    flood_turned_away: int = 0

    @property
    def memory_ok(self) -> bool:
        return self.rss_change is None or abs(self.rss_change) <= MEMORY_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.failed == 0 and self.memory_ok

    def lines(self) -> list[str]:
        """The report as a few lines for the terminal."""
        lines = [
            f"{self.fans} fans for {self.seconds:.0f}s against {self.url}",
            f"requests      {self.requests} ({self.failed} failed, {self.rate_limited} rate-limited)",
            f"throughput    {self.throughput_rps:.1f} answers/s",
            (f"latency       p50 {self.latency_ms_p50:.0f} ms, p95 {self.latency_ms_p95:.0f} ms, "
             f"max {self.latency_ms_max:.0f} ms"),
        ]
        if self.flood:
            lines.append(
                f"flood         one client, {self.flood} at once: {self.flood_requests} questions, "
                f"{self.flood_answered} answered, {self.flood_turned_away} told to slow down"
            )
        if self.rss_mib_after_warmup is not None:
            lines.append(
                f"server RSS    {self.rss_mib_after_warmup:.1f} MiB after warm-up, {self.rss_mib_after_run:.1f} MiB "
                f"after the run ({self.rss_change:+.1%}; limit ±{MEMORY_TOLERANCE:.0%})"
            )
        else:
            lines.append("server RSS    not measured (no server process id)")
        lines.extend(f"error         {error}" for error in self.errors)
        lines.append("result        " + ("OK" if self.ok else "FAILED"))
        return lines

    def to_dict(self) -> dict:
        return {**asdict(self), "memory_ok": self.memory_ok, "ok": self.ok}


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def require_loopback(url: str) -> None:
    """Refuse to send load anywhere but this machine."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"The load test only targets this machine (127.0.0.1 or localhost), not {host!r}.")


class _Run:
    """The shared state of the fans during one phase."""

    def __init__(self, deadline: float, max_requests: int):
        self.deadline = deadline
        self.budget = max_requests
        self.latencies: list[float] = []
        self.failed = 0
        self.rate_limited = 0
        self.errors: list[str] = []
        self.flood_requests = self.flood_answered = self.flood_turned_away = 0

    def take(self) -> bool:
        if time.monotonic() >= self.deadline or self.budget <= 0:
            return False
        self.budget -= 1
        return True

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.errors) < 5:
            self.errors.append(why)


async def _ask(client, base: str, question: str, history, timeout: float, session: str | None,
               headers: dict | None = None) -> dict:
    """One question through the HTTP API; returns the answer dict or raises."""
    answer = await ask_async(client, base, question, history, timeout=timeout, session=session, headers=headers)
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) or not answer["text"].strip():
        raise RuntimeError(f"malformed answer {answer!r}"[:200])
    if answer.get("kind") not in VALID_KINDS:
        raise RuntimeError(f"answer of kind {answer.get('kind')!r}: {answer['text']!r}"[:200])
    return answer


async def _fan(number: int, client, base: str, run: _Run, timeout: float, think: float, fresh: bool) -> None:
    chooser = random.Random(number)
    # Like a browser tab or a gradio_client.Client, a fan keeps one session;
    # with ``fresh`` every question comes without one (as from curl).
    session = None if fresh else uuid.uuid4().hex
    while run.take():
        question, history = chooser.choice(QUESTIONS)
        started = time.perf_counter()
        try:
            answer = await _ask(client, base, question, history, timeout, session)
        except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
            run.fail(f"{type(error).__name__}: {error}"[:240])
        else:
            run.latencies.append((time.perf_counter() - started) * 1000)
            if answer["kind"] == "rate_limited":
                run.rate_limited += 1
        if think:
            await asyncio.sleep(chooser.uniform(0, 2 * think))


async def _flooder(client, base: str, run: _Run, timeout: float) -> None:
    """One worker of the flooding client: ask, read the answer, ask again, until the run ends."""
    headers = {"X-Forwarded-For": FLOOD_ADDRESS}
    while time.monotonic() < run.deadline:
        run.flood_requests += 1
        try:
            answer = await _ask(client, base, QUESTIONS[0][0], None, timeout, None, headers)
        except Exception:  # noqa: BLE001 - refused at the door (429/503) or failed: either way not answered
            await asyncio.sleep(0.05)
            continue
        if answer["kind"] == "rate_limited":
            run.flood_turned_away += 1
        else:
            run.flood_answered += 1


def _flood(base: str, flood: int, seconds: float, timeout: float, results) -> None:
    """The flooding client, in a process of its own (so that it does not slow the fans' own loop)."""
    import httpx

    run = _Run(time.monotonic() + seconds, 0)

    async def main():
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=flood), trust_env=False) as client:
            await asyncio.gather(*(_flooder(client, base, run, timeout) for _ in range(flood)))

    asyncio.run(main())
    results.put((run.flood_requests, run.flood_answered, run.flood_turned_away))


async def _phase(
    base: str, fans: int, seconds: float, max_requests: int, timeout: float, think: float = 0.0, fresh: bool = False
) -> _Run:
    import httpx

    run = _Run(time.monotonic() + seconds, max_requests)
    # Idle connections are let go before uvicorn closes them (after 5 s), so
    # no question is sent down a connection the server is closing.
    limits = httpx.Limits(max_connections=2 * fans, max_keepalive_connections=2 * fans, keepalive_expiry=2.0)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        await asyncio.gather(*(_fan(n, client, base, run, timeout, think, fresh) for n in range(fans)))
    return run


def _warm_up(
    base: str, fans: int, seconds: float, max_requests: int, timeout: float, think: float, fresh: bool
) -> None:
    """The uncounted warm-up; with ``fresh`` sessions, stretched until the server holds all the sessions it keeps."""
    warmed = asyncio.run(_phase(base, fans, seconds, max_requests, timeout, think, fresh))
    asked, stretched = len(warmed.latencies) + warmed.failed, 0.0
    while fresh and asked < SERVER_SESSIONS and stretched < MAX_SESSION_WARMUP:
        more = asyncio.run(_phase(base, fans, 5.0, SERVER_SESSIONS - asked, timeout, think, fresh))
        asked, stretched = asked + len(more.latencies) + more.failed, stretched + 5.0


def run_load(
    url: str,
    fans: int = 50,
    seconds: float = 60.0,
    warmup: float = 10.0,
    max_requests: int = 100_000,
    timeout: float = 30.0,
    think: float = 0.0,
    pid: int | None = None,
    fresh_sessions: bool = False,
    flood: int = 0,
) -> LoadReport:
    """Load ``url`` (a running ``bot serve`` on this machine) with ``fans`` fans for ``seconds``.

    A warm-up of ``warmup`` seconds with the same load comes first and is not
    counted; ``pid`` is the server's process id, for its memory. Each fan
    keeps one session, as a browser tab or a ``gradio_client.Client`` does;
    ``fresh_sessions`` sends every question without one, as ``curl`` would.
    ``flood``: questions at once of one flooding client during the counted
    run (see the module's docstring).
    """
    require_loopback(url)
    base = url if url.endswith("/") else url + "/"
    if warmup > 0:
        _warm_up(base, fans, warmup, max_requests, timeout, think, fresh_sessions)
    settle = 1.0
    time.sleep(settle)
    before = rss_mib(pid) if pid else None
    started = time.monotonic()
    flooding = None
    if flood:
        context = multiprocessing.get_context("spawn")
        flood_results = context.Queue()
        flooding = context.Process(target=_flood, args=(base, flood, seconds, timeout, flood_results), daemon=True)
        flooding.start()
    run = asyncio.run(_phase(base, fans, seconds, max_requests, timeout, think, fresh_sessions))
    elapsed = time.monotonic() - started
    if flooding is not None:
        try:
            run.flood_requests, run.flood_answered, run.flood_turned_away = flood_results.get(timeout=timeout + 30)
        except queue.Empty:
            run.fail("the flooding client did not report")
        flooding.join(10)
    time.sleep(settle)
    after = rss_mib(pid) if pid else None
    report = LoadReport(url=base, fans=fans, seconds=elapsed)
    report.requests = len(run.latencies) + run.failed
    report.failed, report.rate_limited, report.errors = run.failed, run.rate_limited, run.errors
    report.flood, report.flood_requests = flood, run.flood_requests
    report.flood_answered, report.flood_turned_away = run.flood_answered, run.flood_turned_away
    report.latency_ms_p50 = percentile(run.latencies, 0.50)
    report.latency_ms_p95 = percentile(run.latencies, 0.95)
    report.latency_ms_max = max(run.latencies, default=0.0)
    report.throughput_rps = len(run.latencies) / elapsed if elapsed > 0 else 0.0
    if before and after:
        report.rss_mib_after_warmup, report.rss_mib_after_run = round(before, 1), round(after, 1)
        report.rss_change = (after - before) / before
    return report
