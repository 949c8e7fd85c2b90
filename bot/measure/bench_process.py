"""``bot bench`` figures of fresh processes: ``bot ask`` end to end, a serving
process's load time and memory, and ``bot serve`` until its first answer."""

from __future__ import annotations

import json
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


def serve_start(index: Path, config: Config, say, what: str, runs: int) -> dict:
    """Seconds from starting ``bot serve`` (index already built) until /ask answers a question."""
    times = []
    for run in range(runs + 1):  # the first run is a warm-up (cold page cache, first imports)
        server = ServeProcess(config.seeds_dir, index, extra=("--model", config.model),
                              log_path=index.parent / f"serve-{run}.log")
        try:
            elapsed = _first_answer_seconds(server)
        finally:
            server.stop()
        if run:
            times.append(elapsed)
    median = statistics.median(times)
    say(f"bot serve until it answers its first /ask request ({what}, index built): {median:.2f} s median of "
        f"{runs} (runs: {', '.join(f'{t:.2f}' for t in times)}, after one warm-up run)")
    key = "serve_first_answer_s" if what == "the seeds" else f"serve_first_answer_s_{what}"
    return {key: median}
