"""The server's guards as plain ASGI and plain functions: body limit, login throttle, client address, --auth.

The same guards in a real server are tested in ``test_security.py``.
"""

import asyncio
import json
from types import SimpleNamespace

import pytest

from bot.serve.guard import (
    LOOPBACK,
    BodyLimit,
    LoginThrottle,
    ServeError,
    client_of,
    launch_settings,
    parse_auth,
)
from bot.serve.ratelimit import RateLimiter


def test_parse_auth():
    assert parse_auth(["fan:pa:ss word"]) == [("fan", "pa:ss word")]
    assert parse_auth(["a:1", "b:2"]) == [("a", "1"), ("b", "2")]
    for bad in ("nopassword", "fan:", ":secret", " :x"):
        with pytest.raises(ServeError):
            parse_auth([bad])


def test_launch_settings_only_with_a_password():
    assert launch_settings(None) == {} and launch_settings([]) == {}
    settings = launch_settings([("fan", "pw")])
    assert settings["auth"] == [("fan", "pw")] and "sign in" in settings["auth_message"]


def request_from(host, **headers):
    return SimpleNamespace(client=SimpleNamespace(host=host), headers=headers)


def test_client_of():
    assert client_of(None) is None  # a call from Python
    assert client_of(request_from("203.0.113.1")) == "203.0.113.1"
    for host in LOOPBACK:  # this machine, with no proxy in between: not limited
        assert client_of(request_from(host)) is None
    assert client_of(request_from("127.0.0.1", **{"x-forwarded-for": "203.0.113.2"})) == "127.0.0.1"
    assert client_of(request_from("::1", forwarded="for=203.0.113.3")) == "::1"
    assert client_of(SimpleNamespace(client=None, headers={})) == "unknown"


# -- the ASGI middleware, driven with plain scope / receive / send -------------------


async def echo_app(scope, receive, send):
    """An app that reads the whole body and answers with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def call(app, body_chunks, headers=(), method="POST", path="/gradio_api/call/ask", client=("203.0.113.9", 1234)):
    """Run one HTTP request through ``app``: (status, body)."""
    scope = {"type": "http", "method": method, "path": path, "headers": list(headers), "client": client}
    incoming = [{"type": "http.request", "body": chunk, "more_body": n < len(body_chunks) - 1}
                for n, chunk in enumerate(body_chunks)] or [{"type": "http.request", "body": b""}]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_body_limit_refuses_declared_and_streamed_bodies():
    app = BodyLimit(echo_app, max_bytes=100)
    assert call(app, [b"x" * 100]) == (200, b"100")
    assert call(app, [b"x" * 10], headers=[(b"content-length", b"101")])[0] == 413  # refused before reading
    status, body = call(app, [b"x" * 60, b"x" * 60])  # no length declared: counted as it arrives
    assert (status, body) == (413, b"Request too large.")
    assert call(app, [b"x" * 50, b"x" * 50]) == (200, b"100")


def test_body_limit_passes_other_traffic_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(BodyLimit(app, max_bytes=1)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


def test_login_throttle_limits_each_client():
    app = LoginThrottle(echo_app, RateLimiter(2))
    assert [call(app, [b"pw"], path="/login")[0] for _ in range(3)] == [200, 200, 429]
    status, body = call(app, [b"pw"], path="/login/")
    assert status == 429 and "Too many login attempts" in json.loads(body)["detail"]
    # Another client may still try; other routes and GETs are never throttled.
    assert call(app, [b"pw"], path="/login", client=("203.0.113.10", 1))[0] == 200
    assert call(app, [b"q"], path="/gradio_api/call/ask")[0] == 200
    assert call(app, [], method="GET", path="/login")[0] == 200


def test_no_login_limit_when_off():
    app = LoginThrottle(echo_app, RateLimiter(0))
    assert all(call(app, [b"pw"], path="/login")[0] == 200 for _ in range(20))
