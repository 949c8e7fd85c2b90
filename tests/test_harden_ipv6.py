"""IPv6 clients are counted by their /64 for the rate limit and the login throttle (issue 15, item 3).

One IPv6 subscriber holds a whole /64, so counting each address apart let a
client rotate addresses for a fresh allowance each time. The rate limit is
checked through a real server on loopback (the addresses arrive in
``X-Forwarded-For`` from 127.0.0.1, as from a reverse proxy on the machine).
"""

from __future__ import annotations

import json

import pytest
from test_serve_guard import call, echo_app

from bot.serve.guard import LoginThrottle, client_key, network_of
from bot.serve.ratelimit import RateLimiter

from conftest import DOMBRA, SEEDS, copy_seeds, free_port


def test_addresses_are_counted_by_their_network():
    assert network_of("2001:db8:1:2::1") == network_of("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("2001:DB8:1:2:0:0:0:9") == "2001:db8:1:2::/64"  # however it is written
    assert network_of("fe80::1%eth0") == "fe80::/64"
    assert network_of("::ffff:203.0.113.5") == "203.0.113.5"  # IPv4 mapped into IPv6 is IPv4
    assert network_of("203.0.113.5") == "203.0.113.5" and network_of("203.0.113.6") == "203.0.113.6"
    assert network_of("::1") == "::1"
    assert network_of("testclient") == "testclient"
    assert client_key("2001:db8::7", {}) == "2001:db8::/64"
    assert client_key("::1", {}) is None  # this machine, no proxy: not limited


def test_login_throttle_counts_a_rotating_ipv6_client_once():
    app = LoginThrottle(echo_app, RateLimiter(10))
    codes = [call(app, [b"pw"], path="/login", client=(f"2001:db8:5:6::{n:x}", 1000 + n))[0] for n in range(1, 41)]
    assert codes[:10] == [200] * 10 and set(codes[10:]) == {429}
    assert call(app, [b"pw"], path="/login", client=("2001:db8:5:7::1", 1))[0] == 200  # the next /64 is another client


def test_the_rate_limit_counts_a_rotating_ipv6_client_once(tmp_path, embedder):
    httpx = pytest.importorskip("httpx")
    from bot import Bot, Config
    from bot.serve import build_app

    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    chat_bot = Bot(Config(seeds_dir=seeds, index_dir=tmp_path / "index"), embedder=embedder)
    chat_bot.ensure_index()
    app = build_app(chat_bot, rate_limit=RateLimiter(3))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    kinds = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/", timeout=30) as client:
            for n in range(1, 9):
                headers = {"X-Forwarded-For": f"2001:db8:abcd:12::{n:x}"}
                joined = client.post("gradio_api/call/ask", json={"data": [DOMBRA, None]}, headers=headers)
                result = client.get(f"gradio_api/call/ask/{joined.json()['event_id']}", headers=headers)
                lines = result.text.splitlines()
                kinds.append(json.loads(lines[lines.index("event: complete") + 1].removeprefix("data:"))[0]["kind"])
    finally:
        app.close()
    assert kinds == ["answer"] * 3 + ["rate_limited"] * 5
