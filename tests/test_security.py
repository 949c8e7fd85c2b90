"""Running in public: nothing but the chat is served, a password when asked for, a rate limit per client.

The app is the real one (``bot.serve.build_app`` launched with the settings
``bot serve`` uses) over a copy of the shipped seeds, on a free loopback port;
one test runs the real ``bot serve`` command with a password.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

from bot import Bot, Config  # noqa: E402
from bot.persona import Persona  # noqa: E402
from bot.serve import RateLimiter, build_app, launch_settings, parse_auth  # noqa: E402
from bot.serve.guard import LOGIN_ATTEMPTS_PER_MINUTE, MAX_REQUEST_BYTES  # noqa: E402
from bot.serve.render import HISTORY_MESSAGE_CHARS  # noqa: E402

from conftest import DOMBRA, ROOT, SEEDS, SEZIM_FILE, bot_command, bot_env, built_bot, copy_seeds, free_port  # noqa: E402

#: Written into files the server must never hand out; no response may contain it.
MARKER = "MARKER-3f9c1e-never-served"


def launch(app, **settings) -> str:
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **settings)
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder):
    """(bot, url, base): the chat over seeds and an index that hold the marker, no password, 3 questions a minute."""
    base = tmp_path_factory.mktemp("site")
    seeds = copy_seeds(SEEDS, base / "seeds")
    (seeds / "private-notes.txt").write_text(f"Sezim keeps her notes private. {MARKER}\n", encoding="utf-8")
    chat_bot = Bot(Config(seeds_dir=seeds, index_dir=base / "index"), embedder=embedder)
    chat_bot.ensure_index()
    app = build_app(chat_bot, rate_limit=RateLimiter(3))
    url = launch(app)
    try:
        yield chat_bot, url, base
    finally:
        app.close()


def ask(client: httpx.Client, question: str, forwarded_for: str | None = None, history=None) -> dict:
    """``/ask`` over plain HTTP, as a fan behind a proxy (``X-Forwarded-For``) or a local client."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    joined = client.post("gradio_api/call/ask", json={"data": [question, history]}, headers=headers)
    assert joined.status_code == 200, joined.text
    stream = client.get(f"gradio_api/call/ask/{joined.json()['event_id']}", headers=headers)
    lines = stream.text.splitlines()
    assert "event: complete" in lines, stream.text
    return json.loads(lines[lines.index("event: complete") + 1].removeprefix("data:"))[0]


# -- nothing but the chat is served ----------------------------------------------------------


def secret_files(chat_bot: Bot, base: Path) -> list[Path]:
    """Files whose content no URL may return: seeds, index, the repository, the system."""
    index = chat_bot.loaded_index.path
    return [
        chat_bot.config.seeds_dir / "private-notes.txt",
        chat_bot.config.seeds_dir / SEZIM_FILE,
        chat_bot.config.seeds_dir / "persona.toml",
        chat_bot.config.index_dir / "CURRENT",
        index / "manifest.json",
        index / "chunks.jsonl",
        ROOT / "pyproject.toml",
        ROOT / "bot" / "serve" / "app.py",
        Path("/etc/passwd"),
    ]


def probes(target: Path, base: Path) -> list[str]:
    """URL paths that try to fetch ``target`` through Gradio's file and static routes."""
    absolute = str(target.resolve())
    relative = os.path.relpath(absolute, base)
    cwd_relative = os.path.relpath(absolute, Path.cwd())
    up = "../" * 12 + absolute.lstrip("/")
    encoded = urllib.parse.quote(absolute, safe="")
    encoded_up = urllib.parse.quote(up, safe="")
    paths = []
    for prefix in ("gradio_api/file=", "file=", "gradio_api/file/", "file/"):
        for name in (absolute, relative, cwd_relative, up, encoded, encoded_up, "file://" + absolute):
            paths.append(prefix + name)
    for prefix in ("static/", "assets/", "svelte/", "gradio_api/static/", "gradio_api/assets/",
                   "custom_component/x/client/y/", "gradio_api/proxy=", "favicon.ico/"):
        paths += [prefix + up, prefix + encoded_up, prefix + "..%2f" * 12 + absolute.lstrip("/")]
    paths += [absolute.lstrip("/"), "/" + absolute, relative]
    return paths


def raw_get(url: str, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (no client-side clean-up of ``..`` or ``//``), following no redirect."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/" + path.lstrip("/") if not path.startswith("//") else path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def leaked(url: str, paths: list[str], secrets: dict[Path, str]) -> list[str]:
    """The probes whose response holds a secret file's content."""
    found = []
    for path in paths:
        status, body = raw_get(url, path)
        for target, needle in secrets.items():
            # (An error message may quote the path asked for; that is not the file.)
            if needle in body and needle not in urllib.parse.unquote(path):
                found.append(f"{path} -> {status} holds {target}")
    return found


def needles(files: list[Path]) -> dict[Path, str]:
    """For each file, a line of it that would only appear in a response if the file were served."""
    chosen = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 12]
        chosen[path] = MARKER if MARKER in text else max(lines, key=len)[:60]
    return chosen


def test_no_file_of_the_seeds_index_repository_or_system_is_served(site):
    chat_bot, url, base = site
    files = secret_files(chat_bot, base)
    secrets = needles(files)
    paths = [p for target in files for p in probes(target, base)]
    assert len(paths) > 200
    assert leaked(url, paths, secrets) == []
    # The direct file route answers with a refusal, not the file.
    assert raw_get(url, "gradio_api/file=" + str(files[0].resolve()))[0] in (403, 404)
    # The chat itself is still served.
    assert raw_get(url, "")[0] == 200


def test_the_probes_would_catch_a_leak(tmp_path):
    """The same probes against an app that does serve the folder find the marker (so the test above can fail)."""
    (tmp_path / "private-notes.txt").write_text(f"Notes. {MARKER}\n", encoding="utf-8")
    with gr.Blocks() as open_app:
        gr.Markdown("An app that allows its folder.")
    url = launch(open_app, allowed_paths=[str(tmp_path)])
    try:
        target = tmp_path / "private-notes.txt"
        assert leaked(url, probes(target, tmp_path), {target: MARKER})
    finally:
        open_app.close()


def test_uploads_monitoring_and_the_rest_route_are_closed(site):
    _, url, _ = site
    with httpx.Client(base_url=url, timeout=10) as client:
        upload = client.post("gradio_api/upload", files={"files": ("seed.txt", b"Sezim was born on the moon.")})
        assert upload.status_code == 413
        for path in ("monitoring", "monitoring/summary", "gradio_api/monitoring/summary"):
            assert client.get(path).status_code in (403, 404), path
        # Questions only go through the queue (its limits apply): the direct REST route is shut.
        assert client.post("gradio_api/run/ask", json={"data": [DOMBRA, None]}).status_code == 404
        assert client.post("gradio_api/api/ask", json={"data": [DOMBRA, None]}).status_code == 404
        # No MCP server, no run history.
        assert client.get("gradio_api/mcp/sse").status_code == 404
        assert client.get("gradio_api/runs").status_code == 404


def test_oversized_requests_are_refused_before_they_are_read(site):
    _, url, _ = site
    with httpx.Client(base_url=url, timeout=30) as client:
        big = {"data": ["x" * (MAX_REQUEST_BYTES + 10), None]}
        assert client.post("gradio_api/call/ask", json=big).status_code == 413

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(MAX_REQUEST_BYTES // 65536 + 2):
                yield b"x" * 65536

        streamed = client.post("gradio_api/call/ask", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413
        # A question of ordinary size still works.
        assert ask(client, DOMBRA)["refused"] is False


def test_a_huge_history_message_is_cut_not_chewed(site, monkeypatch):
    chat_bot, url, _ = site
    seen = []
    real_answer = chat_bot.answer

    def spy(question, history=None):
        seen.append(history)
        return real_answer(question, history)

    monkeypatch.setattr(chat_bot, "answer", spy)
    history = [{"role": "user", "content": "What is her debut album called? " * 50_000}]  # 1.6 MB
    with httpx.Client(base_url=url, timeout=30) as client:
        started = time.perf_counter()
        reply = ask(client, "Was it successful?", history=history)
        assert time.perf_counter() - started < 5.0
    assert reply["kind"] in {"answer", "refusal"}
    (passed,) = seen
    assert passed[0]["content"] == history[0]["content"][:HISTORY_MESSAGE_CHARS]


# -- the rate limit ----------------------------------------------------------------------------


def test_api_rate_limit_is_per_client_and_friendly(site, caplog):
    chat_bot, url, _ = site
    with httpx.Client(base_url=url, timeout=30) as client, caplog.at_level(logging.INFO, logger="bot.serve"):
        replies = [ask(client, DOMBRA, forwarded_for="203.0.113.7") for _ in range(5)]
        other = ask(client, DOMBRA, forwarded_for="203.0.113.8")
        local = [ask(client, DOMBRA) for _ in range(5)]  # this machine, no proxy: not limited
    assert [r["kind"] for r in replies] == ["answer"] * 3 + ["rate_limited"] * 2
    slowed = replies[-1]
    assert slowed["refused"] is True and slowed["citations"] == []
    assert slowed["text"] == chat_bot.persona.say(chat_bot.persona.slow_down)
    assert "error" not in slowed["text"].lower()
    assert other["kind"] == "answer"
    assert all(r["kind"] == "answer" for r in local)
    # One log line per client, not one per refused question.
    lines = [r.getMessage() for r in caplog.records if "Rate limit" in r.getMessage()]
    assert len(lines) == 1 and "203.0.113.7" in lines[0]


def test_rate_limit_holds_for_questions_asked_at_once(site):
    _, url, _ = site
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        with httpx.Client(base_url=url, timeout=60) as client:
            return ask(client, DOMBRA, forwarded_for="203.0.113.99")["kind"]

    with ThreadPoolExecutor(12) as pool:
        kinds = list(pool.map(one, range(12)))
    assert sorted(kinds) == ["answer"] * 3 + ["rate_limited"] * 9


# -- a password ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_site(tmp_path_factory, embedder):
    chat_bot = built_bot(tmp_path_factory.mktemp("private"), embedder)
    app = build_app(chat_bot)
    url = launch(app, **launch_settings(parse_auth(["fan:s3cret:with:colons"])))
    try:
        yield url
    finally:
        app.close()


def test_a_password_protects_the_page_and_the_api(private_site):
    url = private_site
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("config").status_code == 401
        assert client.get("gradio_api/info").status_code == 401
        joined = client.post("gradio_api/call/ask", json={"data": [DOMBRA, None]})
        assert joined.status_code == 401
        assert client.post("gradio_api/queue/join", json={"data": [DOMBRA, None], "fn_index": 0,
                                                          "session_hash": "x"}).status_code == 401
        page = client.get("")
        assert page.status_code == 200 and "grandmother" not in page.text  # the login page, no content
    # gradio_client has no exception type of its own for a refused login.
    with pytest.raises(Exception):  # noqa: B017
        gradio_client.Client(url, auth=("fan", "wrong"), verbose=False)
    client = gradio_client.Client(url, auth=("fan", "s3cret:with:colons"), verbose=False)
    reply = client.predict(question=DOMBRA, api_name="/ask")
    assert reply["refused"] is False and "grandmother" in reply["text"]


def test_login_attempts_are_throttled_per_client(private_site):
    url = private_site
    with httpx.Client(base_url=url, timeout=10) as client:
        wrong = {"username": "fan", "password": "guess"}
        attacker = {"X-Forwarded-For": "198.51.100.9"}
        codes = [client.post("login", data=wrong, headers=attacker).status_code
                 for _ in range(LOGIN_ATTEMPTS_PER_MINUTE + 2)]
        assert codes[:LOGIN_ATTEMPTS_PER_MINUTE] == [400] * LOGIN_ATTEMPTS_PER_MINUTE
        assert codes[LOGIN_ATTEMPTS_PER_MINUTE:] == [429, 429]
        # Even the right password is refused to that client for now ...
        right = {"username": "fan", "password": "s3cret:with:colons"}
        assert client.post("login", data=right, headers=attacker).status_code == 429
        # ... while another client signs in.
        assert client.post("login", data=right, headers={"X-Forwarded-For": "198.51.100.10"}).status_code == 200


def test_bot_serve_takes_the_password_from_the_environment(tmp_path):
    copy_seeds(SEEDS, tmp_path / "seeds")
    port = free_port()
    env = {**bot_env(), "BOT_AUTH": "owner:correct horse", "BOT_RATE_LIMIT": "5"}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*bot_command(), "serve", "--seeds", "seeds", "--index", "index", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                status = httpx.get(url + "config", timeout=2).status_code
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
        assert status == 401
        client = gradio_client.Client(url, auth=("owner", "correct horse"), verbose=False)
        assert client.predict(question=DOMBRA, api_name="/ask")["refused"] is False
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    log = log_path.read_text()
    assert "Password: required (1 account). Rate limit: 5 questions a minute per client." in log
    assert "correct horse" not in log
    assert "Traceback" not in log


def test_a_malformed_password_setting_is_a_clear_error(tmp_path):
    copy_seeds(SEEDS, tmp_path / "seeds")
    result = subprocess.run(
        [*bot_command(), "serve", "--seeds", "seeds", "--index", "index", "--auth", "no-colon"],
        cwd=tmp_path, env=bot_env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "USER:PASSWORD" in result.stderr and "Traceback" not in result.stderr


# -- in the browser ------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_the_chat_says_slow_down_in_the_persona_voice(site):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")

    chat_bot, url, _ = site
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # A fan behind the same proxy as the site: its address comes in X-Forwarded-For.
            context = browser.new_context(extra_http_headers={"X-Forwarded-For": "192.0.2.44"})
            page = context.new_page()
            page.goto(url)
            box = page.locator("#question textarea")
            box.wait_for()
            bot_messages = page.locator('#chat [data-testid="bot"]:not(:has(.thought-group))')
            for n in range(4):
                box.fill(f"{DOMBRA} ({n})")
                box.press("Enter")
                page.wait_for_function(
                    "n => document.querySelectorAll("
                    """'#chat [data-testid="bot"]:not(:has(.thought-group))').length > n""",
                    arg=n, timeout=30_000,
                )
            texts = [bot_messages.nth(i).inner_text() for i in range(4)]
        finally:
            browser.close()
    assert all("grandmother" in t for t in texts[:3]), texts
    assert Persona().slow_down.split("!")[0] in texts[3] and "grandmother" not in texts[3]


@pytest.mark.browser
def test_the_browser_shows_a_login_then_the_chat(private_site):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(private_site)
            sync_api.expect(page.get_by_text("This chat is private. Please sign in.")).to_be_visible()
            assert page.locator("#chat").count() == 0
            fields = page.locator("input")
            fields.nth(0).fill("fan")
            fields.nth(1).fill("s3cret:with:colons")
            page.get_by_role("button", name="Login").click()
            box = page.locator("#question textarea")
            box.wait_for(timeout=30_000)
            box.fill(DOMBRA)
            box.press("Enter")
            answer = page.locator('#chat [data-testid="bot"]:not(:has(.thought-group))').first
            sync_api.expect(answer).to_contain_text("grandmother", timeout=30_000)
        finally:
            browser.close()
