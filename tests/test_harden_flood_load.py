"""A flooding client during a load of fans (issue 15, item 1, under load).

``bot loadtest --flood N`` adds one client asking N questions at once, as
fast as it can, from one address behind a proxy. The fans must lose nothing;
the flooding client gets its rate limit's worth of answers and is told to
slow down for the rest. Latency is a figure of the full run (README), not
asserted here.
"""

from __future__ import annotations

import pytest

from bot.measure.loadtest import run_load
from bot.measure.server import ServeProcess

from conftest import SEEDS, copy_seeds

pytest.importorskip("httpx")

SECONDS = 10
RATE_LIMIT = 30  # the server's default


def test_fans_lose_nothing_while_one_client_floods(tmp_path, capsys):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    with ServeProcess(seeds, tmp_path / "index", extra=("--rate-limit", str(RATE_LIMIT)),
                log_path=tmp_path / "serve.log") as server:
        report = run_load(server.url, fans=10, seconds=SECONDS, warmup=2, timeout=30, pid=server.pid, flood=40)
        log = server.log_text()
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))
    assert report.failed == 0, report.errors
    assert report.rate_limited == 0  # the fans (this machine, no proxy) are not limited
    assert report.requests >= 50
    assert report.flood_turned_away > report.flood_answered
    # A burst of the limit, then one more every 60 / limit seconds (and a few in flight at the end).
    assert report.flood_answered <= RATE_LIMIT + (SECONDS + 5) * RATE_LIMIT / 60 + 4
    assert "Traceback" not in log and "Queue is full" not in log


def test_the_loadtest_warms_up_past_the_servers_session_cap():
    """With fresh sessions the server's memory climbs until Gradio holds all the sessions it keeps;
    the warm-up lasts that long, so the run measures the plateau (issue 15, item 10)."""
    from bot.measure.loadtest import SERVER_SESSIONS
    from bot.serve.app import STATE_SESSIONS

    assert SERVER_SESSIONS == STATE_SESSIONS
