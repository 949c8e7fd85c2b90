"""Load: many fans at once through the HTTP API of a real ``bot serve`` (loopback only).

The short run here (10 fans for 10 seconds after a 5-second warm-up) must
have no failed request and keep the server's memory within 10% of what it
was after the warm-up. The full run is a command (see the README)::

    bot loadtest                      # 50 fans for 60 s after a 10 s warm-up
"""

from __future__ import annotations

import json

import pytest

from bot.measure.loadtest import (
    MEMORY_TOLERANCE,
    LoadReport,
    percentile,
    require_loopback,
    run_load,
)
from bot.measure.server import ServeProcess, rss_mib

from conftest import SEEDS, copy_seeds, run_bot

pytest.importorskip("httpx")


def test_ten_fans_for_ten_seconds(tmp_path, capsys):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    log_path = tmp_path / "serve.log"
    with ServeProcess(seeds, tmp_path / "index", extra=("--rate-limit", "0"), log_path=log_path) as server:
        report = run_load(server.url, fans=10, seconds=10, warmup=5, max_requests=20_000, timeout=30, pid=server.pid)
        log = server.log_text()
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))
    assert report.failed == 0, report.errors
    assert report.rate_limited == 0  # a client on this machine, not behind a proxy, is not limited
    assert report.requests >= 100, "the server answered far too few questions"
    assert report.rss_mib_after_warmup and report.rss_mib_after_run
    assert abs(report.rss_change) <= MEMORY_TOLERANCE, report.lines()
    assert report.latency_ms_p50 <= report.latency_ms_p95 <= report.latency_ms_max
    assert report.latency_ms_p95 < 10_000
    assert report.ok
    assert "Traceback" not in log


def test_loadtest_only_targets_this_machine():
    for url in ("http://127.0.0.1:7860/", "http://localhost:1/", "http://[::1]:7860"):
        require_loopback(url)
    for url in ("http://example.org/", "http://10.0.0.1:7860/", "http://0.0.0.0:7860/", "https://192.168.1.2/"):
        with pytest.raises(ValueError, match="only targets this machine"):
            require_loopback(url)


def test_loadtest_command_refuses_another_host_before_sending_anything(tmp_path):
    result = run_bot("loadtest", "--url", "http://198.51.100.1:7860/", "--seconds", "1", cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "only targets this machine" in result.stderr and "Traceback" not in result.stderr


def test_report_figures():
    assert percentile([], 0.5) == 0.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0
    report = LoadReport(url="http://127.0.0.1:1/", fans=1, seconds=1.0, requests=10, rss_mib_after_warmup=100.0,
                        rss_mib_after_run=111.0, rss_change=0.11)
    assert not report.memory_ok and not report.ok
    report.rss_change = 0.05
    assert report.ok
    report.failed = 1
    assert not report.ok
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False
    assert rss_mib(2**22 + 12345) is None  # no such process
