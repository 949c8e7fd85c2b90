"""The queue's door: a client over its rate limit is answered before its question takes a place in the queue.

Gradio applies the rate limit only when an event runs, so over-limit
questions still held queue places and one client could fill the queue for
everyone. :class:`QueueGuard` (plain ASGI) turns them away at the door;
:class:`QueueGate` counts each client's waiting questions.
"""

import asyncio
import json
import logging
import random
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from .guard import client_key
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

#: Questions one client may have waiting in the queue at once (not yet being
#: answered): a chat page sends one at a time, an API client a few. A client
#: with no question left in its rate limit may have one, which is answered
#: with the persona's "slow down" line.
MAX_WAITING_PER_CLIENT = 4

#: A question let in but never started (its client left, Gradio refused it
#: after the door) stops counting against its client after this many seconds.
WAITING_EXPIRES_SECONDS = 120.0

#: Event ids of the "slow down" answers given at the door by ``/gradio_api/call/...``
#: start with this; fetching one streams the answer as the queue would.
TURNED_AWAY_PREFIX = "slow-down-"

#: Seconds a question turned away at the door waits for its answer. A client
#: asking as fast as it can (a script in a loop, ``bot loadtest --flood``)
#: sends its next question only when it has this one's answer, so each of its
#: connections asks at most once a second instead of as fast as the server
#: can say no (~1,100 questions a second from 200 connections on two cores,
#: each costing ~0.4 ms of the server's one event loop, nearly all of it in
#: HTTP and ASGI, not in the door: a cheaper "no" could not help much, asking
#: less often does). A person over the limit loses nothing: the answer is
#: "slow down" either way.
HOLD_SECONDS = 1.0
#: Each hold is between (1 - this) and (1 + this) times :data:`HOLD_SECONDS`, at
#: random: a flood's connections, all held alike, would otherwise come back in
#: step, and each second the event loop would answer all of them in one burst
#: that every fan asking at that moment waits behind.
HOLD_SPREAD = 0.5
#: Turned-away questions held at once, at most (for memory): more than the
#: server's connections (:data:`~.connections.MAX_CONNECTIONS`), so that every
#: connection of a flood is held, however many it opens.
MAX_HELD = 1024
#: Set in a request's scope while its answer is held: when the server is out of
#: connections, it closes a held one first, not a fan's (:mod:`.connections`).
HELD = "bot.held"

# The routes, at the end of the path (after any root path).
_CALL = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/?$")
_CALL_RESULT = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/" + re.escape(TURNED_AWAY_PREFIX) + r"[0-9a-f]+/?$")
_JOIN = re.compile(r"/gradio_api/queue/join/?$")


class QueueGate:
    """How many questions each client has waiting, and whether one more may join the queue.

    A question is counted from the moment it is let in (:meth:`admit`) until
    its answer starts (:meth:`started`, called by the answering code, which
    then takes it from the rate limit), or it is refused after all
    (:meth:`withdraw`). Thread-safe: the door runs on the server's event loop,
    the answers on worker threads.
    """

    def __init__(self, limiter: RateLimiter, max_waiting: int = MAX_WAITING_PER_CLIENT,
                 expires: float = WAITING_EXPIRES_SECONDS, clock=time.monotonic):
        self.limiter = limiter
        self.max_waiting = max_waiting
        self.expires = expires
        self._clock = clock
        self._waiting: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        # One log line per client a minute about being turned away, however hard it tries.
        self._noticed = RateLimiter(1)

    def admit(self, client: str, may_wait_over_limit: bool) -> bool:
        """Let one question of ``client`` into the queue, or say no (False).

        A client may have as many questions waiting as its rate limit has left
        (at most :attr:`max_waiting`). ``may_wait_over_limit``: a client with
        none left may still have one waiting, to be answered "slow down" in
        the chat itself (the page shows no other answer).
        """
        if not self.limiter.enabled:
            return True
        with self._lock:
            waiting = self._current(client)
            left = int(self.limiter.available(client))
            room = min(self.max_waiting, max(left, 1 if may_wait_over_limit else 0))
            if len(waiting) >= room:
                return False
            waiting.append(self._clock())
            return True

    def started(self, client: str | None) -> None:
        """One of ``client``'s questions left the queue to be answered."""
        self.withdraw(client)

    def withdraw(self, client: str | None) -> None:
        """One of ``client``'s questions stops counting (answered, or refused by the queue)."""
        if client is None:
            return
        with self._lock:
            waiting = self._waiting.get(client)
            if waiting:
                waiting.popleft()
            if not waiting:
                self._waiting.pop(client, None)

    def waiting(self, client: str) -> int:
        with self._lock:
            return len(self._current(client))

    def notice(self, client: str) -> None:
        """Log that ``client`` is asking too fast: once a minute per client."""
        if self._noticed.allow(client):
            log.info("Rate limit: %s asks more than %d questions a minute; asking it to slow down.",
                     client, self.limiter.per_minute)

    def _current(self, client: str) -> deque[float]:
        """``client``'s waiting questions, without those that expired (call with the lock held)."""
        waiting = self._waiting.setdefault(client, deque())
        cutoff = self._clock() - self.expires
        while waiting and waiting[0] < cutoff:
            waiting.popleft()
        if len(self._waiting) > 10_000:  # forget clients with nothing waiting
            for key in [k for k, v in self._waiting.items() if not v and k != client]:
                del self._waiting[key]
        return waiting


class QueueGuard:
    """ASGI middleware: a client over its rate limit is answered at the door, not queued.

    Gradio's queue holds :data:`~bot.serve.app.QUEUE_MAX_SIZE` questions for
    everyone together; the rate limit is taken when a question is answered,
    so without this door one client could fill the queue with questions that
    are only turned away when their turn comes, and every other fan would get
    "queue full". Every route that puts a question in the queue passes here
    (``/gradio_api/queue/join``, ``/gradio_api/call/<api>``); a client may
    have only as many questions waiting as its limit has left
    (:class:`QueueGate`). Turned away:

    - on ``/gradio_api/call/<api>`` (plain HTTP): the same two steps and the
      same answer as a question over the limit always got: an ``event_id``,
      whose result is the persona's "slow down" with ``kind: "rate_limited"``,
      given here without touching the queue;
    - on ``/gradio_api/queue/join`` (the page, ``gradio_client``): 429 with
      ``{"detail": <the persona's slow down line>, "kind": "rate_limited",
      "retry_after": seconds}`` and a ``Retry-After`` header. The page still
      gets the "slow down" line in the chat for its first question over the
      limit (one may wait), since it shows nothing for a 429.

    Either answer is held for about ``hold`` seconds first (:data:`HOLD_SECONDS`,
    :data:`HOLD_SPREAD`), ``max_held`` at once at most. ``slow_down`` gives the "slow down" answer
    as the API returns it (a dict).
    """

    def __init__(self, app, gate: QueueGate, slow_down: Callable[[], dict], hold: float = HOLD_SECONDS,
                 max_held: int = MAX_HELD):
        self.app = app
        self.gate = gate
        self.slow_down = slow_down
        self.hold = hold
        self.max_held = max_held
        self.held = 0  # questions held now (the door runs on the server's one event loop: no lock)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.gate.limiter.enabled:
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method")
        if method == "GET" and _CALL_RESULT.search(path):
            await self._stream_slow_down(scope, receive, send)
            return
        join = method == "POST" and _JOIN.search(path) is not None
        call = method == "POST" and _CALL.search(path) is not None
        if not (join or call):
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                   for name, value in scope.get("headers") or []}
        peer = scope.get("client")
        client = client_key(peer[0] if peer else None, headers)
        if client is None:
            await self.app(scope, receive, send)
            return
        if not self.gate.admit(client, may_wait_over_limit=join):
            self.gate.notice(client)
            await self._turn_away(scope, receive, send, client, join=join)
            return
        status = 0

        async def watched_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if status != 200:  # not queued after all (bad request, queue full, login needed)
                self.gate.withdraw(client)

    async def _turn_away(self, scope, receive, send, client: str, join: bool):
        from starlette.responses import JSONResponse

        if self.hold > 0 and self.held < self.max_held:
            self.held += 1
            scope[HELD] = True
            try:
                await asyncio.sleep(self.hold * random.uniform(1 - HOLD_SPREAD, 1 + HOLD_SPREAD))
            finally:
                self.held -= 1
                scope.pop(HELD, None)
        if join:
            answer = self.slow_down()
            wait = max(1, round(self.gate.limiter.retry_after(client)))
            response = JSONResponse(
                {"detail": answer["text"], "kind": "rate_limited", "retry_after": wait},
                status_code=429, headers={"Retry-After": str(wait)},
            )
        else:
            response = JSONResponse({"event_id": TURNED_AWAY_PREFIX + secrets.token_hex(8)})
        await response(scope, receive, send)

    async def _stream_slow_down(self, scope, receive, send):
        from starlette.responses import Response

        body = f"event: complete\ndata: {json.dumps([self.slow_down()])}\n\n"
        await Response(body, media_type="text/event-stream")(scope, receive, send)
