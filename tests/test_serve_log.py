"""``bot serve`` logs every question it answers, and the chat's thumbs up/down, into its question log.

A real ``bot serve --log-db`` on loopback: questions through ``gradio_client``
(the ``/ask`` API) and through the chat's own events over HTTP, the way the
page sends them (Gradio's queue and its ``like`` event); then the log file is
read back as ``bot report`` reads it.
"""

import json
import shutil
import signal
import sqlite3
import time
import uuid

import httpx
import pytest

gradio_client = pytest.importorskip("gradio_client")

from bot.answer import Answer  # noqa: E402
from bot.feedback.store import QuestionLog, read_rows  # noqa: E402
from bot.serve import ChatHandlers, RateLimiter, build_app  # noqa: E402

from conftest import DOMBRA, FRANCE, ROOT, start_server, stop_server  # noqa: E402


def rows_when(path, done, timeout: float = 30.0):
    """The log's rows once ``done(rows)`` holds (the server writes in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(read_rows(path)) if path.exists() else []
        if done(rows):
            return rows
        assert time.monotonic() < deadline, f"the log did not get there; it holds {rows}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("logged")
    shutil.copytree(ROOT / "seeds", base / "seeds")
    log_db = base / "logs" / "questions.sqlite3"
    process, url = start_server(base, base / "serve.log", extra=("--log-db", str(log_db), "--rate-limit", "0"))
    try:
        yield process, url, log_db, base / "serve.log"
    finally:
        stop_server(process)


def text_of(message: dict) -> str:
    """A chat message's text, as the page receives it (a list of typed parts)."""
    content = message["content"]
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


class Page:
    """The chat page's side of the protocol: Gradio's queue and events, by the page's own components."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=60, trust_env=False)
        self.session = uuid.uuid4().hex
        config = self.http.get("/config").json()
        by_elem = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
        self.chat, self.box = by_elem["chat"], by_elem["question"]
        self.events = {(target, event): dep["id"] for dep in config["dependencies"] for target, event in dep["targets"]}
        self.inputs = {dep["id"]: dep["inputs"] for dep in config["dependencies"]}

    def ask(self, question: str) -> list[dict]:
        """Type ``question`` and press Enter; returns the chat's messages once answered."""
        fn = self.events[(self.box, "submit")]
        data = [question if component == self.box else None for component in self.inputs[fn]]
        joined = self.http.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": fn, "session_hash": self.session, "event_data": None, "trigger_id": self.box})
        joined.raise_for_status()
        messages = None
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    assert message.get("success"), message
                    messages = message["output"]["data"][1]
                    break
        return messages

    def thumb(self, index: int, liked: bool | str) -> None:
        """Click thumbs up (True) or down (False) under chat message ``index`` ("": take it back)."""
        fn = self.events[(self.chat, "like")]
        response = self.http.post("/gradio_api/run/predict", json={
            "data": [None] * len(self.inputs[fn]), "fn_index": fn, "session_hash": self.session,
            "event_data": {"index": index, "value": ["..."], "liked": liked}, "trigger_id": self.chat})
        response.raise_for_status()


def test_api_questions_are_logged(server):
    _, url, log_db, _ = server
    client = gradio_client.Client(url, verbose=False)
    answer = client.predict(question=DOMBRA, api_name="/ask")
    refusal = client.predict(question=FRANCE, api_name="/ask")
    history = [{"role": "user", "content": "What is her debut album called?"},
               {"role": "assistant", "content": "Steppes and Sighs."}]
    follow_up = client.predict(question="Was it successful?", history=history, api_name="/ask")
    small_talk = client.predict(question="thanks", api_name="/ask")
    rows = rows_when(log_db, lambda rows: sum(r.via == "api" for r in rows) >= 4)
    by_question = {r.question: r for r in rows if r.via == "api"}

    logged = by_question[DOMBRA]
    assert logged.kind == "answer" == answer["kind"] and logged.turns == 0
    assert logged.confidence == pytest.approx(answer["confidence"], abs=1e-4)
    assert logged.sources == [{"source": c["source"], "start": c["start"], "end": c["end"], "location": c["location"]}
                              for c in answer["citations"]]
    assert "grandmother" in logged.quoted and logged.quoted == " ".join(c["text"] for c in answer["citations"])
    assert logged.latency_ms > 0 and logged.feedback is None
    assert by_question[FRANCE].kind == "refusal" == refusal["kind"] and by_question[FRANCE].sources == []
    assert by_question["Was it successful?"].turns == 1 and by_question["Was it successful?"].kind == follow_up["kind"]
    assert by_question["thanks"].kind == "small_talk" == small_talk["kind"]


def test_chat_questions_and_thumbs_are_logged_on_their_own_rows(server):
    _, url, log_db, _ = server
    page = Page(url)
    first = page.ask(DOMBRA)
    second = page.ask(FRANCE)
    assert "grandmother" in text_of(first[1]) and len(second) > len(first)
    rows = rows_when(log_db, lambda rows: sum(r.via == "chat" for r in rows) >= 2)
    chat_rows = [r for r in rows if r.via == "chat"][-2:]
    assert [(r.question, r.kind, r.turns) for r in chat_rows] == [(DOMBRA, "answer", 0), (FRANCE, "refusal", 1)]

    # Thumbs down on the refusal (the message after the second question), up on the first answer.
    refusal_message = len(first) + 1
    assert second[refusal_message - 1]["role"] == "user"
    page.thumb(refusal_message, False)
    page.thumb(1, True)
    rows = rows_when(log_db, lambda rows: [r.feedback for r in rows if r.id in {c.id for c in chat_rows}] == [1, -1])
    # Taking a thumb back clears it.
    page.thumb(1, "")
    rows_when(log_db, lambda rows: [r.feedback for r in rows if r.id == chat_rows[0].id] == [None])


def test_the_log_opens_cleanly_after_kill_9(tmp_path):
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    log_db = tmp_path / "questions.sqlite3"
    server, url = start_server(tmp_path, tmp_path / "serve.log", extra=("--log-db", str(log_db)))
    try:
        client = gradio_client.Client(url, verbose=False)
        for _ in range(3):
            client.predict(question=DOMBRA, api_name="/ask")
        rows_when(log_db, lambda rows: len(rows) == 3)
    finally:
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    with sqlite3.connect(log_db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert [r.question for r in read_rows(log_db)] == [DOMBRA] * 3


def test_an_unwritable_log_warns_once_and_the_server_answers(tmp_path):
    shutil.copytree(ROOT / "seeds", tmp_path / "seeds")
    (tmp_path / "a-file").write_text("in the way")
    process, url = start_server(tmp_path, tmp_path / "serve.log",
                                extra=("--log-db", str(tmp_path / "a-file" / "questions.sqlite3")))
    try:
        result = gradio_client.Client(url, verbose=False).predict(question=DOMBRA, api_name="/ask")
        assert result["kind"] == "answer"
    finally:
        stop_server(process)
    output = (tmp_path / "serve.log").read_text()
    assert output.count("answering goes on without it") == 1, output
    assert "Traceback" not in output


# -- the handlers, called directly ------------------------------------------------------


def test_rate_limited_and_failed_questions_are_logged(sezim_bot, tmp_path, monkeypatch):
    question_log = QuestionLog.open(tmp_path / "q.sqlite3")
    handlers = ChatHandlers(sezim_bot, rate_limit=RateLimiter(1), question_log=question_log)
    request = type("Request", (), {"client": type("Client", (), {"host": "192.0.2.7"})(), "headers": {}})()
    assert handlers.ask(DOMBRA, None, request)["kind"] == "answer"
    assert handlers.ask(DOMBRA, None, request)["kind"] == "rate_limited"

    def broken(question, history=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sezim_bot, "answer", broken)
    assert ChatHandlers(sezim_bot, question_log=question_log).ask(FRANCE)["kind"] == "error"
    question_log.close()
    assert [(r.question, r.kind) for r in read_rows(tmp_path / "q.sqlite3")] == [
        (DOMBRA, "answer"), (DOMBRA, "rate_limited"), (FRANCE, "error")]
    # The client's address is used for the rate limit, never logged.
    with sqlite3.connect(tmp_path / "q.sqlite3") as connection:
        assert not any("192.0.2.7" in str(value) for row in connection.execute("SELECT * FROM questions")
                       for value in row)


def test_a_thumb_lands_on_the_turn_its_message_belongs_to(sezim_bot, tmp_path):
    question_log = QuestionLog.open(tmp_path / "q.sqlite3")
    handlers = ChatHandlers(sezim_bot, question_log=question_log)
    *_, (_, shown, turns) = handlers.respond(DOMBRA, [], None)
    *_, (_, shown, turns) = handlers.respond(FRANCE, turns, None)
    answer_with_sources = [i for i, m in enumerate(shown) if m["role"] == "assistant"]
    # The answer, its folded sources, then the refusal: each message maps to its own question.
    for index, liked in zip(answer_with_sources, (True, True, False)):
        handlers.liked(type("Like", (), {"index": index, "liked": liked})(), turns)
    question_log.close()
    assert [(r.question, r.feedback) for r in read_rows(tmp_path / "q.sqlite3")] == [(DOMBRA, 1), (FRANCE, -1)]


def test_without_a_log_the_chat_has_no_thumbs(sezim_bot, tmp_path):
    def like_events(app):
        return [dep for dep in app.config["dependencies"] if any(event == "like" for _, event in dep["targets"])]

    assert like_events(build_app(sezim_bot)) == []
    question_log = QuestionLog.open(tmp_path / "q.sqlite3")
    assert len(like_events(build_app(sezim_bot, question_log=question_log))) == 1
    question_log.close()
    assert isinstance(ChatHandlers(sezim_bot).answer_logged(DOMBRA, [], None, 0, "api")[0], Answer)


# -- the command's options ----------------------------------------------------------------


def test_log_options_and_their_environment(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import bot.serve.server
    from bot.cli import cli
    from bot.feedback.store import default_log_path

    started = []
    monkeypatch.setattr(bot.serve.server, "serve", lambda config, **settings: started.append(settings))

    def serve(*args, **env):
        result = CliRunner().invoke(cli, ["serve", "--seeds", "seeds", "--index", "index", *args], env=env)
        assert result.exit_code == 0, result.output
        return started[-1]["log_path"], started[-1]["log_days"]

    assert serve() == (default_log_path(), 90)
    assert default_log_path() == tmp_path / "data" / "artist-bot" / "questions.sqlite3"  # conftest's data folder
    assert serve("--log-db", str(tmp_path / "my log.sqlite3"), "--log-days", "7") == (tmp_path / "my log.sqlite3", 7)
    assert serve(BOT_LOG_DB=str(tmp_path / "env.sqlite3"), BOT_LOG_DAYS="0") == (tmp_path / "env.sqlite3", 0)
    assert serve("--no-log")[0] is None
    assert serve(BOT_NO_LOG="1")[0] is None
    bad = CliRunner().invoke(cli, ["serve", "--log-days", "-1"])
    assert bad.exit_code == 2 and "--log-days" in bad.output


# -- in a real browser ---------------------------------------------------------------------


@pytest.mark.browser
def test_clicking_the_thumbs_in_the_page_records_them(server):
    """Headless Chromium (as tests/test_browser.py): ask, click thumbs down, then up on the other answer."""
    from pathlib import Path

    chromium_path = Path("/usr/bin/chromium")
    if not chromium_path.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")
    _, url, log_db, _ = server
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(url)
            box = page.locator("#question textarea")
            for number, question in enumerate([FRANCE, DOMBRA], 1):
                box.fill(question)
                box.press("Enter")
                page.wait_for_function(
                    """n => document.querySelectorAll('#chat [data-testid="bot"]:not(:has(.thought-group))')
                           .length >= n""", arg=number, timeout=30_000)
            dislikes = page.get_by_role("button", name="Dislike", exact=True)
            likes = page.get_by_role("button", name="Like", exact=True)
            assert dislikes.count() == 2 and likes.count() == 2  # one pair under each reply
            dislikes.nth(0).click()  # the refusal
            likes.nth(1).click()  # the answer
        finally:
            browser.close()
    rows = rows_when(log_db, lambda rows: [r.feedback for r in rows if r.via == "chat"][-2:] == [-1, 1])
    assert [r.question for r in rows if r.via == "chat"][-2:] == [FRANCE, DOMBRA]
