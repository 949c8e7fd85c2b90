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

With ``flood``, the counted run comes twice: the fans alone, then the same
fans while one more client (:mod:`.flood`) asks as fast as it can, ``flood``
questions at once, from one address behind a proxy (``X-Forwarded-For``), so
the server's rate limit applies to it while the fans (local, no proxy header)
are not limited. The report compares the fans' latency in the two phases
(the p95 ratio is the flood's cost to the fans), with the server's CPU and
the flooding client's own. The server started for it keeps its default
rate limit.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import queue
import random
import time
import uuid
from dataclasses import asdict, dataclass, field

from .flood import FloodCounts, flood_process, require_loopback
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
    #: The server's CPU during the counted run, as a share of one core (None: no process id).
    server_cpu: float | None = None
    #: With a flood: the fans alone first (latency, answers a second, the server's CPU) ...
    baseline_latency_ms_p50: float | None = None
    baseline_latency_ms_p95: float | None = None
    baseline_throughput_rps: float | None = None
    baseline_server_cpu: float | None = None
    #: ... then with the flooding client: connections, questions asked, answered in full, told to
    #: slow down, refused (an HTTP error or a closed connection), and its own CPU (share of a core).
    flood: int = 0
    flood_requests: int = 0
    flood_answered: int = 0
    flood_turned_away: int = 0
    flood_refused: int = 0
    flood_client_cpu: float | None = None
    #: The fans' p95 (during the flood, when there is one) must stay under this (None: no limit).
    max_p95_ms: float | None = None

    @property
    def flood_p95_ratio(self) -> float | None:
        """The fans' p95 during the flood over their p95 alone (None without a flood)."""
        if not self.flood or not self.baseline_latency_ms_p95:
            return None
        return self.latency_ms_p95 / self.baseline_latency_ms_p95

    @property
    def memory_ok(self) -> bool:
        return self.rss_change is None or abs(self.rss_change) <= MEMORY_TOLERANCE

    @property
    def p95_ok(self) -> bool:
        return self.max_p95_ms is None or self.latency_ms_p95 <= self.max_p95_ms

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.failed == 0 and self.memory_ok and self.p95_ok

    def lines(self) -> list[str]:
        """The report as a few lines for the terminal."""
        lines = [
            f"{self.fans} fans for {self.seconds:.0f}s against {self.url}",
            f"requests      {self.requests} ({self.failed} failed, {self.rate_limited} rate-limited)",
            f"throughput    {self.throughput_rps:.1f} answers/s",
            (f"latency       p50 {self.latency_ms_p50:.0f} ms, p95 {self.latency_ms_p95:.0f} ms, "
             f"max {self.latency_ms_max:.0f} ms"),
        ]
        if self.server_cpu is not None:
            lines.append(f"server CPU    {self.server_cpu:.0%} of a core")
        if self.flood:
            lines.extend(self._flood_lines())
        if self.rss_mib_after_warmup is not None:
            lines.append(
                f"server RSS    {self.rss_mib_after_warmup:.1f} MiB after warm-up, {self.rss_mib_after_run:.1f} MiB "
                f"after the run ({self.rss_change:+.1%}; limit ±{MEMORY_TOLERANCE:.0%})"
            )
        else:
            lines.append("server RSS    not measured (no server process id)")
        if self.max_p95_ms is not None:
            verdict = "within" if self.p95_ok else "OVER"
            lines.append(f"p95 limit     {self.max_p95_ms:.0f} ms: the fans' p95 is {verdict} it")
        lines.extend(f"error         {error}" for error in self.errors)
        lines.append("result        " + ("OK" if self.ok else "FAILED"))
        return lines

    def _flood_lines(self) -> list[str]:
        rate = self.flood_requests / self.seconds if self.seconds else 0.0
        client = "" if self.flood_client_cpu is None else f"; the client used {self.flood_client_cpu:.0%} of a core"
        alone = (f"p50 {self.baseline_latency_ms_p50:.0f} ms, p95 {self.baseline_latency_ms_p95:.0f} ms, "
                 f"{self.baseline_throughput_rps:.1f} answers/s")
        if self.baseline_server_cpu is not None:
            alone += f", server CPU {self.baseline_server_cpu:.0%}"
        ratio = self.flood_p95_ratio
        return [
            f"fans alone    {alone} (the phase before the flood; the figures above are during it)",
            f"flood         one client, {self.flood} connections: {self.flood_requests} questions ({rate:.0f}/s), "
            f"{self.flood_answered} answered, {self.flood_turned_away} told to slow down, "
            f"{self.flood_refused} refused{client}",
            "flood's cost  the fans' p95 " + (f"x{ratio:.2f} their p95 alone" if ratio else "not compared"),
        ]

    def to_dict(self) -> dict:
        return {**asdict(self), "flood_p95_ratio": self.flood_p95_ratio, "memory_ok": self.memory_ok,
                "p95_ok": self.p95_ok, "ok": self.ok}


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


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


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user and system) process ``pid`` has used so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


@dataclass
class _Counted:
    """One counted phase: the fans' run, how long it took, the server's CPU share, and the flood's counts."""

    run: _Run
    elapsed: float
    server_cpu: float | None
    flood: FloodCounts | None = None

    def throughput(self) -> float:
        return len(self.run.latencies) / self.elapsed if self.elapsed > 0 else 0.0


def _counted(base: str, fans: int, seconds: float, max_requests: int, timeout: float, think: float, fresh: bool,
             pid: int | None, flood: int = 0) -> _Counted:
    """One counted phase of the fans, with ``flood`` connections of the flooding client alongside."""
    cpu_before, started = cpu_seconds(pid), time.monotonic()
    flooding = None
    if flood:
        context = multiprocessing.get_context("spawn")
        flood_results = context.Queue()
        flooding = context.Process(target=flood_process, args=(base, flood, seconds, timeout, flood_results),
                                   daemon=True)
        flooding.start()
    run = asyncio.run(_phase(base, fans, seconds, max_requests, timeout, think, fresh))
    counts = None
    if flooding is not None:
        try:
            counts = flood_results.get(timeout=timeout + 30)
        except queue.Empty:
            run.fail("the flooding client did not report")
        flooding.join(10)
        if flooding.is_alive():
            flooding.kill()
    elapsed, cpu_after = time.monotonic() - started, cpu_seconds(pid)
    share = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / elapsed
    return _Counted(run, elapsed, share, counts)


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
    counted; ``pid`` is the server's process id, for its memory and CPU. Each
    fan keeps one session, as a browser tab or a ``gradio_client.Client``
    does; ``fresh_sessions`` sends every question without one, as ``curl``
    would. ``flood``: connections of one flooding client; the counted run is
    then the fans alone for ``seconds`` and the fans with the flood for
    ``seconds`` more (see the module's docstring).
    """
    require_loopback(url)
    base = url if url.endswith("/") else url + "/"
    if warmup > 0:
        _warm_up(base, fans, warmup, max_requests, timeout, think, fresh_sessions)
    settle = 1.0
    time.sleep(settle)
    before = rss_mib(pid) if pid else None
    args = (base, fans, seconds, max_requests, timeout, think, fresh_sessions, pid)
    alone = _counted(*args) if flood else None
    main = _counted(*args, flood=flood)
    time.sleep(settle)
    after = rss_mib(pid) if pid else None
    report = _report(base, fans, main, alone, flood)
    if before and after:
        report.rss_mib_after_warmup, report.rss_mib_after_run = round(before, 1), round(after, 1)
        report.rss_change = (after - before) / before
    return report


def _report(base: str, fans: int, main: _Counted, alone: _Counted | None, flood: int) -> LoadReport:
    """The report of the counted phase ``main``, and of ``alone``, the fans before a flood."""
    phases = [main] if alone is None else [alone, main]
    run = main.run
    report = LoadReport(url=base, fans=fans, seconds=main.elapsed, server_cpu=main.server_cpu, flood=flood)
    report.requests = sum(len(p.run.latencies) + p.run.failed for p in phases)
    report.failed = sum(p.run.failed for p in phases)
    report.rate_limited = sum(p.run.rate_limited for p in phases)
    report.errors = [error for p in phases for error in p.run.errors][:5]
    report.latency_ms_p50 = percentile(run.latencies, 0.50)
    report.latency_ms_p95 = percentile(run.latencies, 0.95)
    report.latency_ms_max = max(run.latencies, default=0.0)
    report.throughput_rps = main.throughput()
    if alone is not None:
        report.baseline_latency_ms_p50 = percentile(alone.run.latencies, 0.50)
        report.baseline_latency_ms_p95 = percentile(alone.run.latencies, 0.95)
        report.baseline_throughput_rps = alone.throughput()
        report.baseline_server_cpu = alone.server_cpu
    counts = main.flood
    if counts is not None:
        report.flood_requests, report.flood_answered = counts.requests, counts.answered
        report.flood_turned_away, report.flood_refused = counts.turned_away, counts.refused
        report.flood_client_cpu = counts.cpu_seconds / main.elapsed if main.elapsed > 0 else None
    return report
