"""``bot bench`` figures of fresh processes: ``bot ask`` end to end, a serving
process's load time and memory, and ``bot serve`` until its first answer (warm,
and on a first start with an empty ONNX cache and no index)."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..config import Config
from . import probe_ask, probe_serving
from .bench_workload import QUESTIONS
from .server import ServeProcess, ask

ASK_RUNS = 3


def ask_end_to_end(config: Config, index: Path, say) -> dict:
    """``bot ask`` in a fresh process over an index that is built (wall time and peak RSS)."""
    command = [sys.executable, "-m", probe_ask.__name__, "ask", QUESTIONS[0],
               "--seeds", str(config.seeds_dir.resolve()), "--index", str(index.resolve()), "--model", config.model]
    times, peaks = [], []
    for run in range(ASK_RUNS + 1):  # the first run is a warm-up (it may export the model, once)
        started = time.perf_counter()
        result = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                timeout=600)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"bot ask failed: {result.stderr.strip()[-500:]}")
        if run:
            times.append(elapsed)
            peaks += [int(line.split()[1]) / 1024 for line in result.stderr.splitlines()
                      if line.startswith(probe_ask.MARK + " ")]
    median = statistics.median(times)
    memory = f"; peak RSS {statistics.median(peaks):.0f} MiB" if peaks else ""
    say(f"bot ask end to end: {median:.2f} s median of {ASK_RUNS} (runs: {', '.join(f'{t:.2f}' for t in times)}, "
        f"after one warm-up run){memory}")
    return {"ask_s": median, "ask_peak_rss_mib": statistics.median(peaks) if peaks else None}


def serving_process(settings: Config, say, label: str) -> dict:
    """Load time and memory of a fresh process that loads the index and answers (see probe_serving)."""
    command = [sys.executable, "-m", probe_serving.__name__, str(settings.seeds_dir), str(settings.index_dir),
               settings.model, json.dumps(list(QUESTIONS)), repr(time.time())]
    result = subprocess.run(command, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith(probe_serving.MARK + " ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"serving probe failed: {result.stderr.strip()[-800:]}")
    probe = json.loads(lines[-1][len(probe_serving.MARK) + 1:])
    if probe["rebuilt"]:
        raise RuntimeError("the serving probe rebuilt the index instead of loading it")
    resident = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in sorted(probe["index_files_kib"].items()))
    say(f"serving process at {label}: peak RSS {probe['VmHWM'] / 1024:.0f} MiB (after {len(QUESTIONS) + 1} answers: "
        f"RSS {probe['VmRSS'] / 1024:.0f} MiB = anonymous {probe['RssAnon'] / 1024:.0f} + file-backed "
        f"{probe['RssFile'] / 1024:.0f}; memory-mapped index files resident: {resident or 'none'} MiB); "
        f"loads in {probe['load_s']:.2f} s, first answer at {probe['first_answer_s']:.2f} s "
        f"(fresh process, imports and model included)")
    return probe


def _first_answer_seconds(server: ServeProcess, timeout: float = 600) -> float:
    """Start ``server`` and poll /ask until it answers; seconds from the start."""
    import httpx

    started = time.perf_counter()
    server.start()
    with httpx.Client(timeout=60) as client:
        while time.perf_counter() - started < timeout:
            server.check_running()
            try:
                ask(client, server.url, QUESTIONS[0], timeout=60)
            except (httpx.HTTPError, RuntimeError, ValueError, KeyError):
                time.sleep(0.05)  # not serving yet
            else:
                return time.perf_counter() - started
    raise RuntimeError(f"bot serve did not answer within {timeout:.0f} s")


def _timed_start(server: ServeProcess) -> tuple[float, float]:
    """Seconds until ``server`` answers its first question, and the CPU seconds the process used in all.

    The CPU time (user and system, until it has stopped) is what the wall time
    shrinks towards on a machine that no one else is using.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        elapsed = _first_answer_seconds(server)
    finally:
        server.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def serve_start(index: Path, config: Config, say, what: str, runs: int) -> dict:
    """Seconds from starting ``bot serve`` (index already built) until /ask answers a question."""
    times, cpus = [], []
    for run in range(runs + 1):  # the first run is a warm-up (cold page cache, first imports)
        server = ServeProcess(config.seeds_dir, index, extra=("--model", config.model),
                              log_path=index.parent / f"serve-{run}.log")
        elapsed, cpu = _timed_start(server)
        if run:
            times.append(elapsed)
            cpus.append(cpu)
    median = statistics.median(times)
    say(f"bot serve until it answers its first /ask request ({what}, index built): {median:.2f} s median of "
        f"{runs} (runs: {', '.join(f'{t:.2f}' for t in times)}, after one warm-up run; "
        f"each process used {statistics.median(cpus):.1f} s of CPU, median)")
    key = "serve_first_answer_s" if what == "the seeds" else f"serve_first_answer_s_{what}"
    return {key: median, key.replace("answer_s", "answer_cpu_s"): statistics.median(cpus)}


def serve_first_start(config: Config, work: Path, say) -> dict:
    """``bot serve`` as on a fresh install: no ONNX export in the cache and no index yet (one run).

    The model's export and the index build are part of it; the page cache and
    Python's bytecode cache are warm from the other figures, as they are after
    ``pip install``.
    """
    fresh = work / "first-start"
    fresh.mkdir(parents=True, exist_ok=True)
    server = ServeProcess(config.seeds_dir, fresh / "index", extra=("--model", config.model),
                          log_path=fresh / "serve.log",
                          env={"BOT_ONNX_CACHE": str(fresh / "onnx"), "XDG_CACHE_HOME": str(fresh / "cache")})
    elapsed, cpu = _timed_start(server)
    say(f"bot serve on its first start (empty ONNX cache, no index) until it answers its first /ask request: "
        f"{elapsed:.2f} s (one run; the process used {cpu:.1f} s of CPU)")
    return {"serve_first_start_s": elapsed, "serve_first_start_cpu_s": cpu}
