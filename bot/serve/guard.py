"""Who may reach the chat, and how much they may send: the server's guards.

- :class:`BodyLimit` refuses request bodies over :data:`MAX_REQUEST_BYTES`;
- :class:`LoginThrottle` limits login attempts per client when a password is set;
- :class:`QueueGuard` turns a client over its rate limit away before its question
  takes a place in the queue (:class:`QueueGate` keeps the count);
- :func:`client_of` and :func:`client_key` name the client a question comes from,
  for the rate limit (IPv6 clients by their /64 network);
- :func:`parse_auth` and :func:`launch_settings` turn ``--auth`` into Gradio's login.

The middleware classes are plain ASGI, so they are tested without Gradio.
"""

import ipaddress
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

#: Largest HTTP request body the server reads; a question and its history fit
#: many times over. Bigger ones get "413 Request Entity Too Large".
MAX_REQUEST_BYTES = 2 * 1024 * 1024

#: Login attempts one client may make a minute when a password is set.
LOGIN_ATTEMPTS_PER_MINUTE = 10

#: Addresses of this very machine.
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class ServeError(RuntimeError):
    """The chat cannot be served (the address or port is unavailable, or a setting is wrong)."""


class _TooLarge(BaseException):
    """A request body went over the limit while it was read (a BaseException, so that
    FastAPI's body parsing, which turns any Exception into a 400, lets it through)."""


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413), declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        responded = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def watched_send(message):
            nonlocal responded
            responded = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if not responded:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        from starlette.responses import PlainTextResponse

        await PlainTextResponse("Request too large.", status_code=413)(scope, receive, send)


class LoginThrottle:
    """ASGI middleware: at most ``limiter.per_minute`` login attempts a minute per client.

    Gradio's login form has no limit of its own; this keeps one client from
    trying passwords at the server's speed.
    """

    def __init__(self, app, limiter: RateLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope["path"].rstrip("/").endswith("/login"):
            client = scope.get("client")
            if not self.limiter.allow(network_of(client[0]) if client else "unknown"):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"detail": "Too many login attempts. Please wait a minute and try again."},
                    status_code=429,
                    headers={"Retry-After": "60"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def parse_auth(accounts: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """``["USER:PASSWORD", ...]`` as Gradio's list of ``(user, password)``; the password may hold colons."""
    parsed = []
    for account in accounts:
        user, colon, password = account.partition(":")
        if not colon or not user.strip() or not password:
            raise ServeError("--auth (or BOT_AUTH) must be USER:PASSWORD, with a user name and a password.")
        parsed.append((user.strip(), password))
    return parsed


def launch_settings(auth: list[tuple[str, str]] | None) -> dict:
    """Keyword arguments for ``launch()`` beyond the address: the password, when there is one.

    (:meth:`ChatApp.launch` adds the login throttle whenever there is a password.)
    """
    if not auth:
        return {}
    return {"auth": auth, "auth_message": "This chat is private. Please sign in."}


def network_of(host: str) -> str:
    """The key a client's address is counted under: an IPv4 address as it is, an IPv6 one by its /64.

    One IPv6 subscriber gets a whole /64 (2**64 addresses), so counting each
    address apart would let one client rotate through fresh buckets forever.
    An IPv4 address mapped into IPv6 counts as that IPv4 address. Anything
    that is not an address (a Unix socket, a test client) is its own key.
    """
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # without a zone (fe80::1%eth0)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        if address.is_loopback:  # ::1 is one machine: this one (a proxy on it)
            return str(address)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_key(host: str | None, headers) -> str | None:
    """The client a request comes from, for the rate limit, from its peer address and headers.

    Behind a reverse proxy on the same machine this is the fan's address from
    ``X-Forwarded-For`` (uvicorn trusts that header from 127.0.0.1 only; see
    ``FORWARDED_ALLOW_IPS``). None for a client on this very machine that came
    through no proxy (a health check, ``bot loadtest``): it is not limited.
    ``headers`` maps lower-case header names to values.
    """
    if not host:
        return "unknown"
    if host in LOOPBACK and not any(name in headers for name in ("x-forwarded-for", "forwarded", "x-real-ip")):
        return None
    return network_of(str(host))


def client_of(request) -> str | None:
    """The client a question comes from, for the rate limit (see :func:`client_key`).

    ``request`` is Gradio's ``gr.Request`` (its ``client.host`` and ``headers``),
    or None for a call from Python with no request at all: it is not limited.
    """
    if request is None:
        return None
    host = getattr(getattr(request, "client", None), "host", None)
    return client_key(host, getattr(request, "headers", None) or {})


# -- the queue's door -----------------------------------------------------------------------

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

    ``slow_down`` gives the "slow down" answer as the API returns it (a dict).
    """

    def __init__(self, app, gate: QueueGate, slow_down: Callable[[], dict]):
        self.app = app
        self.gate = gate
        self.slow_down = slow_down

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


# -- routes that only ever fail ----------------------------------------------------------------

_NAMED_CALL = re.compile(r"/gradio_api/(?:call/v2|call|run|api)/([^/]+)(?:/[^/]*)?/?$")
_BY_INDEX = re.compile(r"/gradio_api/(?:queue/join|run/predict|api/predict)/?$")
_PROXY = re.compile(r"/gradio_api/proxy=")


class KnownRoutes:
    """ASGI middleware: a request for an API endpoint or event the app does not have gets a clean 404.

    Gradio answers an unknown ``api_name`` or ``fn_index`` with a 500 and a
    traceback in the log, and so a ``/proxy=`` URL it cannot parse (the chat
    proxies nothing: that route is closed). ``api_names`` are the app's named
    endpoints (``ask``); ``fn_ids`` its events' numbers, which the page sends
    as ``fn_index``.
    """

    def __init__(self, app, api_names: set[str], fn_ids: set[int]):
        self.app = app
        self.api_names = set(api_names) | {"predict"}  # the page's own events go to /run/predict
        self.fn_ids = set(fn_ids)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _PROXY.search(path):
            await self._refuse(scope, receive, send, "Not Found")
            return
        named = _NAMED_CALL.search(path)
        if named and named.group(1) not in self.api_names:
            await self._refuse(scope, receive, send, f"There is no API endpoint named {named.group(1)!r}.")
            return
        if scope.get("method") == "POST" and _BY_INDEX.search(path):
            body, receive = await _read_body(receive)
            try:
                fn_index = json.loads(body).get("fn_index") if body else None
            except (ValueError, AttributeError):
                fn_index = None  # not JSON (or not an object): Gradio's own validation answers
            if fn_index is not None and (not isinstance(fn_index, int) or fn_index not in self.fn_ids):
                await self._refuse(scope, receive, send, f"There is no event number {fn_index!r}.")
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope, receive, send, detail: str):
        from starlette.responses import JSONResponse

        await JSONResponse({"detail": detail}, status_code=404)(scope, receive, send)


async def _read_body(receive):
    """The whole request body, and a ``receive`` that replays it to the app."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


# -- what a visitor sees before logging in -----------------------------------------------------

#: Served to nobody when a password is set: the PWA manifest names the bot (and the PWA is off).
_HIDDEN_WITH_A_PASSWORD = re.compile(r"/manifest\.json/?$")
_API_INFO = re.compile(rb"window\.gradio_api_info\s*=\s*.*?;\s*</script>", re.S)


class PrivateUntilLogin:
    """ASGI middleware, with a password set: the login page says nothing about the chat.

    Gradio's login page embeds the API's description (``/ask``'s parameters)
    in ``window.gradio_api_info`` even before the visitor logs in; this
    empties it in a page that asks for a login (its embedded config has
    ``"auth_required": true``). ``/manifest.json`` is not served at all.
    FastAPI's own ``/openapi.json`` is switched off by the app (see
    :class:`~bot.serve.app.ChatApp`).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _HIDDEN_WITH_A_PASSWORD.search(path):
            from starlette.responses import JSONResponse

            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        if path.rstrip("/") != scope.get("root_path", "").rstrip("/"):  # only the page itself
            await self.app(scope, receive, send)
            return
        start, parts = None, []

        async def held_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            parts.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(parts)
            if b'"auth_required":true' in body.replace(b" ", b""):
                body = _API_INFO.sub(b"window.gradio_api_info = null;</script>", body)
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, held_send)
