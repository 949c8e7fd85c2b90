"""One client flooding the queue cannot crowd out the other fans (issue 15, item 1).

The per-client rate limit used to be taken only when a question's turn came,
so a flood of questions from one client filled Gradio's queue and every other
fan got "queue full". Now a client over its limit is answered at the door
(:class:`bot.serve.gate.QueueGuard`). The app is the real one, over the real
seeds, on a loopback port; the queue is made small so the flood is small too.
"""

from __future__ import annotations

import asyncio
import json

import pytest

gr = pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")

from bot.serve import app as app_module  # noqa: E402
from bot.serve import build_app  # noqa: E402
from bot.serve.gate import MAX_WAITING_PER_CLIENT, TURNED_AWAY_PREFIX, QueueGate  # noqa: E402
from bot.serve.ratelimit import RateLimiter  # noqa: E402

from conftest import DOMBRA, built_bot, free_port  # noqa: E402

QUEUE = 24  # the queue's size for these tests; the flood is several times that
FLOOD = 120


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_gate_lets_in_only_what_the_limit_has_left():
    clock = Clock()
    gate = QueueGate(RateLimiter(3, clock=clock), max_waiting=4, expires=60, clock=clock)
    assert [gate.admit("a", may_wait_over_limit=False) for _ in range(5)] == [True] * 3 + [False] * 2
    assert gate.admit("b", may_wait_over_limit=False)  # another client is not affected
    for _ in range(3):  # the three are answered, each taking its question from the limit
        gate.started("a")
        assert gate.limiter.allow("a")
    assert not gate.admit("a", may_wait_over_limit=False)  # nothing left
    assert gate.admit("a", may_wait_over_limit=True)  # the page may have one waiting, to hear "slow down"
    assert not gate.admit("a", may_wait_over_limit=True)
    gate.withdraw("a")
    clock.now += 20  # one question a 20 s comes back
    assert gate.admit("a", may_wait_over_limit=False) and not gate.admit("a", may_wait_over_limit=False)
    clock.now += 61  # a question let in but never started stops counting
    assert gate.waiting("a") == 0


def test_gate_caps_waiting_questions_even_under_the_limit():
    gate = QueueGate(RateLimiter(100), max_waiting=4)
    assert sum(gate.admit("a", may_wait_over_limit=True) for _ in range(20)) == 4
    assert QueueGate(RateLimiter(0)).admit("a", may_wait_over_limit=False)  # no limit, no door


@pytest.fixture(scope="module")
def flooded_site(tmp_path_factory, embedder):
    chat_bot = built_bot(tmp_path_factory.mktemp("fairness"), embedder)
    saved = app_module.QUEUE_MAX_SIZE
    app_module.QUEUE_MAX_SIZE = QUEUE
    try:
        app = build_app(chat_bot, rate_limit=RateLimiter(30))
    finally:
        app_module.QUEUE_MAX_SIZE = saved
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    ask_fn = next(fn._id for fn in app.fns.values() if fn.api_name == "ask")
    try:
        yield chat_bot, f"http://127.0.0.1:{port}/", ask_fn
    finally:
        app.close()


@pytest.fixture
def starts(monkeypatch):
    """Questions that left the queue to be answered, per client: each frees a waiting place at the door."""
    counted: dict[str, int] = {}
    started = QueueGate.started

    def counting(gate, client):
        counted[client] = counted.get(client, 0) + 1
        return started(gate, client)

    monkeypatch.setattr(QueueGate, "started", counting)
    return counted


async def _result(client: httpx.AsyncClient, event_id: str, headers: dict) -> dict:
    stream = await client.get(f"gradio_api/call/ask/{event_id}", headers=headers)
    lines = stream.text.splitlines()
    assert "event: complete" in lines, stream.text
    return json.loads(lines[lines.index("event: complete") + 1].removeprefix("data:"))[0]


def test_a_flood_of_api_calls_leaves_room_for_another_fan(flooded_site, starts):
    chat_bot, url, _ = flooded_site
    flooder, fan = {"X-Forwarded-For": "203.0.113.66"}, {"X-Forwarded-For": "203.0.113.77"}

    async def scenario():
        limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            body = {"data": [DOMBRA, None]}
            flood = await asyncio.gather(*(client.post("gradio_api/call/ask", json=body, headers=flooder)
                                           for _ in range(FLOOD)))
            started_meanwhile = starts.get("203.0.113.66", 0)
            # The flood's questions are all in (or turned away): now another fan asks.
            fan_joins = [await client.post("gradio_api/call/ask", json=body, headers=fan) for _ in range(3)]
            assert [r.status_code for r in fan_joins] == [200] * 3, [r.text for r in fan_joins]
            fan_answers = [await _result(client, r.json()["event_id"], fan) for r in fan_joins]
            turned_away = [r for r in flood if r.status_code == 200
                           and r.json()["event_id"].startswith(TURNED_AWAY_PREFIX)]
            slowed = await _result(client, turned_away[0].json()["event_id"], flooder) if turned_away else None
            return flood, fan_answers, turned_away, slowed, started_meanwhile

    flood, fan_answers, turned_away, slowed, started_meanwhile = asyncio.run(scenario())
    codes = sorted({r.status_code for r in flood})
    assert codes == [200], f"the flood got {codes} (503: it filled the queue)"
    # At most MAX_WAITING_PER_CLIENT wait at once; each question answered meanwhile let one more in.
    assert len(turned_away) >= FLOOD - MAX_WAITING_PER_CLIENT - started_meanwhile
    assert [a["kind"] for a in fan_answers] == ["answer"] * 3
    # Turned away at the door in the same shape, and voice, as a question over the limit always was.
    assert slowed == {"text": chat_bot.persona.say(chat_bot.persona.slow_down), "refused": True,
                      "kind": "rate_limited", "confidence": None, "citations": []}


def test_a_flood_of_queue_joins_is_refused_with_429(flooded_site, starts):
    chat_bot, url, ask_fn = flooded_site
    flooder = {"X-Forwarded-For": "203.0.113.88"}

    async def scenario():
        limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=FLOOD + 10)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            def join(n):
                body = {"data": [DOMBRA, None], "fn_index": ask_fn, "session_hash": f"flood{n}"}
                return client.post("gradio_api/queue/join", json=body, headers=flooder)

            flood = await asyncio.gather(*(join(n) for n in range(FLOOD)))
            started_meanwhile = starts.get("203.0.113.88", 0)
            fan = await client.post("gradio_api/queue/join", json={
                "data": [DOMBRA, None], "fn_index": ask_fn, "session_hash": "fan"},
                headers={"X-Forwarded-For": "203.0.113.99"})
            return flood, fan, started_meanwhile

    flood, fan, started_meanwhile = asyncio.run(scenario())
    codes = [r.status_code for r in flood]
    # At most MAX_WAITING_PER_CLIENT wait at once; each question answered meanwhile let one more in.
    assert codes.count(200) <= MAX_WAITING_PER_CLIENT + started_meanwhile, (codes.count(200), started_meanwhile)
    rate_limit = 30  # flooded_site's
    assert 503 not in codes and codes.count(429) >= FLOOD - rate_limit - MAX_WAITING_PER_CLIENT, sorted(set(codes))
    refused = next(r for r in flood if r.status_code == 429)
    assert refused.json()["detail"] == chat_bot.persona.say(chat_bot.persona.slow_down)
    assert refused.json()["kind"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1
    assert fan.status_code == 200
