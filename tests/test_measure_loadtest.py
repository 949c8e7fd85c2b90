"""Load: many fans at once through the HTTP API of a real ``bot serve`` (loopback only).

The short run here (10 fans for 10 seconds after a 5-second warm-up) must
have no failed request and keep the server's memory within 10% of what it
was after the warm-up. The full run is a command (see the README)::

    bot loadtest                      # 50 fans for 60 s after a 10 s warm-up
"""

from __future__ import annotations

import asyncio
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


def test_flood_report_compares_the_fans_with_and_without_the_flood():
    report = LoadReport(url="http://127.0.0.1:1/", fans=50, seconds=60.0, requests=2000, latency_ms_p50=40.0,
                        latency_ms_p95=300.0, throughput_rps=15.0, server_cpu=0.5, baseline_latency_ms_p50=15.0,
                        baseline_latency_ms_p95=100.0, baseline_throughput_rps=15.5, baseline_server_cpu=0.2,
                        flood=200, flood_requests=12000, flood_answered=60, flood_turned_away=11940,
                        flood_client_cpu=0.1)
    assert report.flood_p95_ratio == 3.0
    text = "\n".join(report.lines())
    assert "fans alone    p50 15 ms, p95 100 ms, 15.5 answers/s, server CPU 20%" in text
    assert "12000 questions (200/s), 60 answered, 11940 told to slow down, 0 refused" in text
    assert "the client used 10% of a core" in text and "x3.00 their p95 alone" in text
    assert json.loads(json.dumps(report.to_dict()))["flood_p95_ratio"] == 3.0
    assert LoadReport(url="u", fans=1, seconds=1.0).flood_p95_ratio is None  # no flood, nothing to compare


def test_the_flooding_client_reads_both_kinds_of_http_answer():
    from bot.measure.flood import FLOOD_ADDRESS, http_request, read_response

    async def parse(raw: bytes):
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_response(reader)

    sized = b'HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\n{"event_id": "x"}'
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nevent:\r\n3;x=1\r\n ok\r\n0\r\n\r\n"
    assert asyncio.run(parse(sized)) == (200, b'{"event_id": "x"}')
    assert asyncio.run(parse(chunked)) == (200, b"event: ok")
    assert asyncio.run(parse(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}")) == (429, b"{}")
    with pytest.raises(ConnectionError):
        asyncio.run(parse(b"HTTP/1.1 200 OK\r\n\r\nno length"))
    request = http_request("POST", "127.0.0.1:1", "/gradio_api/call/ask", b"{}")
    assert request.endswith(b"Content-Length: 2\r\n\r\n{}") and f"X-Forwarded-For: {FLOOD_ADDRESS}".encode() in request


def test_the_flood_only_targets_this_machine():
    from bot.measure.flood import flood_process

    with pytest.raises(ValueError, match="only targets this machine"):
        flood_process("http://198.51.100.1:7860/", 1, 1.0, 1.0, None)


def test_a_p95_over_the_limit_fails_the_run():
    report = LoadReport(url="http://127.0.0.1:1/", fans=1, seconds=1.0, requests=10, latency_ms_p95=900.0)
    assert report.ok and report.p95_ok  # no limit set
    report.max_p95_ms = 1000.0
    assert report.ok and "p95 limit     1000 ms: the fans' p95 is within it" in report.lines()
    report.latency_ms_p95 = 1000.5
    assert not report.p95_ok and not report.ok
    assert report.lines()[-1] == "result        FAILED" and json.loads(json.dumps(report.to_dict()))["p95_ok"] is False


def test_a_flood_against_a_real_server_is_held_and_compared(tmp_path):
    """``--flood`` end to end: the fans alone, then with the flood; the flood's questions are held at the door."""
    from bot.serve.gate import HOLD_SECONDS, HOLD_SPREAD

    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    connections, seconds = 20, 4.0
    with ServeProcess(seeds, tmp_path / "index", extra=("--rate-limit", "30", "--no-log"),
                      log_path=tmp_path / "serve.log") as server:
        report = run_load(server.url, fans=5, seconds=seconds, warmup=1, timeout=30, think=0.2, pid=server.pid,
                          flood=connections)
        log = server.log_text()
    assert report.failed == 0 and report.rate_limited == 0, report.errors
    assert report.baseline_latency_ms_p95 and report.flood_p95_ratio is not None
    assert report.flood_turned_away > report.flood_answered > 0 and report.flood_refused == 0
    # Each connection waits about HOLD_SECONDS for each "slow down": without the hold it asked ~20 times a second.
    held_at_most = connections * (seconds / (HOLD_SECONDS * (1 - HOLD_SPREAD)) + 2)
    assert report.flood_turned_away <= held_at_most, report.lines()
    assert report.server_cpu is not None and report.flood_client_cpu is not None
    assert "Traceback" not in log
