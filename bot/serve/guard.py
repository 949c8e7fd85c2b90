"""Who may reach the chat, and how much they may send: the server's guards.

- :class:`BodyLimit` refuses request bodies over :data:`MAX_REQUEST_BYTES`;
- :class:`LoginThrottle` limits login attempts per client when a password is set;
- :func:`client_of` and :func:`client_key` name the client a question comes from,
  for the rate limit (IPv6 clients by their /64 network);
- :func:`parse_auth` and :func:`launch_settings` turn ``--auth`` into Gradio's login.

The queue's door (a client over its rate limit is turned away before it
takes a place in the queue) is in :mod:`.gate`; routes that only ever fail
and what a visitor sees before logging in are in :mod:`.routes`.

The middleware classes are plain ASGI, so they are tested without Gradio.
"""

import ipaddress
import logging

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
