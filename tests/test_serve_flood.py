"""What a flooding client costs the server (issue 15, item 1): turned-away questions are held.

Profiled under a flood of turned-away questions, the server spent its time
in HTTP itself (uvicorn, h11, the ASGI layers: ~200 us of CPU a request),
not in the door's own logic (a few percent of it), so a cheaper "no" could
not help much: asking less often does. The door holds a turned-away
question's answer for a second (:data:`~bot.serve.gate.HOLD_SECONDS`), which
caps a client that waits for each answer (a script in a loop, ``bot loadtest
--flood``) at one question per connection a second; and when the server is
out of connections it closes a held one (the flood's) before a fan's idle
one. Plain ASGI, no Gradio.
"""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

from bot.serve.gate import HELD, HOLD_SPREAD, TURNED_AWAY_PREFIX, QueueGate, QueueGuard
from bot.serve.ratelimit import RateLimiter

SLOW_DOWN = {"text": "Slow down!", "refused": True, "kind": "rate_limited", "confidence": None, "citations": []}


# -- the door holds a turned-away question's answer -------------------------------------------


async def queued_app(scope, receive, send):
    """Stands in for Gradio: every question that gets past the door is "queued"."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"event_id": "queued"}'})


def guard(hold: float, max_held: int = 256) -> QueueGuard:
    return QueueGuard(queued_app, QueueGate(RateLimiter(1)), lambda: SLOW_DOWN, hold=hold, max_held=max_held)


async def ask(app, path="/gradio_api/call/ask", client="203.0.113.5") -> tuple[int, dict, float]:
    """One POST through ``app``: (status, JSON body, seconds it took)."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "client": (client, 1)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    started = time.perf_counter()
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), time.perf_counter() - started


def test_a_question_over_the_limit_is_answered_after_the_hold():
    async def scenario():
        app = guard(hold=0.3)
        first = await ask(app)  # within the limit (1 a minute): let in at once
        second = await ask(app)  # over it: turned away, after the hold
        join = await ask(app, path="/gradio_api/queue/join")
        other = await ask(app, client="203.0.113.6")  # another client is not held
        return first, second, join, other

    first, second, join, other = asyncio.run(scenario())
    assert first[:2] == (200, {"event_id": "queued"}) and first[2] < 0.2
    shortest = 0.3 * (1 - HOLD_SPREAD)
    assert second[0] == 200 and second[1]["event_id"].startswith(TURNED_AWAY_PREFIX) and second[2] >= shortest
    assert join[0] == 429 and join[1]["kind"] == "rate_limited" and join[2] >= shortest
    assert other[:2] == (200, {"event_id": "queued"}) and other[2] < 0.2


def test_held_questions_are_bounded_and_wait_side_by_side():
    async def scenario():
        app = guard(hold=0.5, max_held=3)
        await ask(app)  # spends the client's one question
        return await asyncio.gather(*(ask(app) for _ in range(5))), app.held

    answers, held_after = asyncio.run(scenario())
    waits = sorted(seconds for _, _, seconds in answers)
    assert all(status == 200 for status, _, _ in answers)
    assert waits[1] < 0.5 * (1 - HOLD_SPREAD), "past max_held, a turned-away question is answered at once"
    assert all(0.5 * (1 - HOLD_SPREAD) <= w < 0.5 * (1 + HOLD_SPREAD) + 0.2 for w in waits[2:]), (
        "three held at once, not one after another"
    )
    assert held_after == 0


def test_held_questions_do_not_come_back_in_step():
    """A flood's connections, held alike, would all come back in the same instant, once a second."""

    async def scenario():
        app = guard(hold=0.4)
        await ask(app)
        return await asyncio.gather(*(ask(app) for _ in range(20)))

    waits = [seconds for _, _, seconds in asyncio.run(scenario())]
    assert min(waits) >= 0.4 * (1 - HOLD_SPREAD) and max(waits) < 0.4 * (1 + HOLD_SPREAD) + 0.2
    assert max(waits) - min(waits) > 0.1, "spread over the hold, not one burst"


def test_no_hold_when_it_is_off():
    async def scenario():
        app = guard(hold=0)
        await ask(app)
        return await ask(app)

    status, body, seconds = asyncio.run(scenario())
    assert status == 200 and body["event_id"].startswith(TURNED_AWAY_PREFIX) and seconds < 0.2


# -- out of connections, a held one is closed first -------------------------------------------


class Transport:
    def __init__(self):
        self.closed = False

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True


def connection(connections: set, waiting_since: float, cycle=None):
    """A protocol object as ``_make_room`` sees it (no socket, no uvicorn server)."""
    from bot.serve.connections import GuardedH11Protocol

    protocol = object.__new__(GuardedH11Protocol)
    protocol.connections, protocol.transport, protocol.cycle = connections, Transport(), cycle
    protocol._reading, protocol._waiting_since = None, waiting_since
    connections.add(protocol)
    return protocol


def cycle(held: bool):
    return SimpleNamespace(response_complete=False, scope={HELD: True} if held else {})


def test_out_of_connections_a_held_one_is_closed_before_a_fans_idle_one():
    connections: set = set()
    fan_idle = connection(connections, waiting_since=1.0)  # a fan reading an answer: idle longest
    fan_busy = connection(connections, waiting_since=2.0, cycle=cycle(held=False))  # a fan being answered
    flood = [connection(connections, waiting_since=3.0 + n, cycle=cycle(held=True)) for n in range(3)]
    newcomer = connection(connections, waiting_since=9.0)
    newcomer._make_room()
    assert flood[0].transport.closed  # held the longest
    assert not fan_idle.transport.closed and not fan_busy.transport.closed and not newcomer.transport.closed
    for protocol in flood:
        protocol.transport.close()
    newcomer._make_room()  # nothing held: the longest idle goes, as before
    assert fan_idle.transport.closed and not fan_busy.transport.closed


def test_the_door_marks_a_request_held_only_while_it_holds_it():
    seen = []

    async def scenario():
        app = guard(hold=0.2)
        await ask(app)
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/gradio_api/call/ask",
            "headers": [],
            "client": ("203.0.113.5", 1),
        }

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            seen.append(message["type"])

        task = asyncio.create_task(app(scope, receive, send))
        await asyncio.sleep(0.05)
        during = scope.get(HELD)
        await task
        return during, scope.get(HELD)

    assert asyncio.run(scenario()) == (True, None)
    assert seen == ["http.response.start", "http.response.body"]
