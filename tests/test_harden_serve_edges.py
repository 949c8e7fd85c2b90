"""The server's small holes (issue 15, item 10): IPv6 listening, what a password hides,
clean errors for unknown endpoints, and file names printed safely.

Real servers on loopback (127.0.0.1 or ::1), the real ``bot`` command.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time

import pytest

gr = pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")

from bot.printable import PrintableLogArguments, printable  # noqa: E402
from bot.serve import build_app, launch_settings, parse_auth  # noqa: E402

from conftest import SEEDS, SEZIM_FILE, bot_command, bot_env, built_bot, copy_seeds, free_port, run_bot  # noqa: E402


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_bot_serve_listens_on_an_ipv6_address(tmp_path):
    copy_seeds(SEEDS, tmp_path / "seeds")
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*bot_command(), "serve", "--seeds", "seeds", "--index", "index", "--host", "::1", "--port", str(port)],
            cwd=tmp_path, env=bot_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://[::1]:{port}/config", timeout=2).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        # The server answers a moment before it logs its address: stopping it in between
        # would interrupt the start-up, not test it.
        while time.monotonic() < deadline and process.poll() is None and "Ready to chat" not in log_path.read_text():
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(20)
    text = log_path.read_text()
    assert status == 200, text
    assert f"http://[::1]:{port}/" in text and "Traceback" not in text


@pytest.fixture(scope="module")
def sites(tmp_path_factory, embedder):
    """(open url, private url): the chat without and with a password."""
    chat_bot = built_bot(tmp_path_factory.mktemp("edges"), embedder)
    apps, urls = [], []
    for settings in ({}, launch_settings(parse_auth(["fan:s3cret"]))):
        app = build_app(chat_bot)
        port = free_port()
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **settings)
        apps.append(app)
        urls.append(f"http://127.0.0.1:{port}/")
    try:
        yield urls
    finally:
        for app in apps:
            app.close()


def test_a_password_hides_the_api_description_and_the_manifest(sites):
    _, private = sites
    with httpx.Client(base_url=private, timeout=10) as client:
        for path in ("openapi.json", "manifest.json", "gradio_api/openapi.json", "gradio_api/info", "config"):
            response = client.get(path)
            assert response.status_code in (401, 404), path
            assert "question" not in response.text and "/ask" not in response.text, path
        login_page = client.get("")
        assert login_page.status_code == 200 and "auth_required" in login_page.text
        assert "/ask" not in login_page.text and "parameter_name" not in login_page.text
        assert "window.gradio_api_info = null;" in login_page.text
        # Once logged in, the page is the whole chat again.
        assert client.post("login", data={"username": "fan", "password": "s3cret"}).status_code == 200
        assert "/ask" in client.get("").text
        assert client.get("gradio_api/info").status_code == 200


def test_the_open_chat_serves_no_fastapi_schema_but_its_page_in_full(sites):
    public, _ = sites
    with httpx.Client(base_url=public, timeout=10) as client:
        assert client.get("openapi.json").status_code == 404
        assert "/ask" in client.get("").text  # the page and its API description are untouched


BAD_REQUESTS = [
    ("POST", "gradio_api/call/no-such-endpoint", {"data": ["hi"]}),
    ("POST", "gradio_api/call/v2/no-such-endpoint", {"question": "hi"}),
    ("GET", "gradio_api/call/no-such-endpoint/abc123", None),
    ("POST", "gradio_api/queue/join", {"data": ["hi", None], "fn_index": 999, "session_hash": "x"}),
    ("POST", "gradio_api/queue/join", {"data": ["hi", None], "fn_index": "0; drop", "session_hash": "x"}),
    ("POST", "gradio_api/run/predict", {"data": [], "fn_index": 12345}),
    ("POST", "gradio_api/run/no-such-endpoint", {"data": []}),
    ("GET", "gradio_api/proxy=http%3A//example.invalid/%00x", None),
    ("GET", "gradio_api/proxy=%00", None),
]


@pytest.mark.parametrize("private", [False, True], ids=["open", "private"])
def test_unknown_endpoints_get_a_clean_4xx_and_no_traceback(sites, private, caplog):
    url = sites[private]
    with caplog.at_level(logging.WARNING), httpx.Client(base_url=url, timeout=10) as client:
        for method, path, body in BAD_REQUESTS:
            response = client.request(method, path, json=body)
            assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
            assert "Traceback" not in response.text
        # Still serving.
        assert client.get("theme.css").status_code == 200
    assert not [r for r in caplog.records if r.exc_info or "Exception in ASGI" in r.getMessage()]


NASTY = "evil\x1b]0;pwned\x07\nname\u202etxt.txt"


def test_printable_escapes_controls_and_overrides():
    assert printable(NASTY) == "evil\\x1b]0;pwned\\x07\\nname\\u202etxt.txt"
    assert printable("Сезим — «домбыра» 🎶 tab\there") == "Сезим — «домбыра» 🎶 tab\\there"
    assert printable("two\nlines\x1b[2J", keep="\n") == "two\nlines\\x1b[2J"
    record = logging.LogRecord("bot", logging.WARNING, __file__, 1, "Skipping %s: %s", (NASTY, OSError(2, NASTY)), None)
    PrintableLogArguments().filter(record)
    assert "\x1b" not in record.getMessage() and "\n" not in record.getMessage()


def test_bot_ask_prints_a_hostile_file_name_escaped(tmp_path):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / SEZIM_FILE).rename(seeds / ("sezim" + NASTY))
    result = run_bot("ask", "--seeds", "seeds", "--index", "index", "Who taught Sezim to play the dombra?",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\u202e" not in stream
    citation = next(line for line in result.stdout.splitlines() if line.strip().startswith("[1]"))
    assert "evil\\x1b]0;pwned\\x07\\nname\\u202etxt.txt" in citation
