"""The chat app: its handlers called directly, and the named API endpoint ``/ask`` through ``gradio_client``.

The app is built with :func:`bot.serve.build_app` over a copy of the real seeds
(real model, real FAISS index) and served on a free loopback port; the
handlers (:class:`bot.serve.ChatHandlers`) are tested over the same bot.
"""

import logging
import shutil
from types import SimpleNamespace

import gradio as gr
import pytest

from bot import Bot, Config
from bot.answer import Answer
from bot.serve import ChatHandlers, IndexStatus, RateLimiter, build_app
from bot.serve.render import render_chat

from conftest import DOMBRA, FRANCE, ROOT, XSS, free_port


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(bot, url): the app over a copy of the shipped seeds, on a free loopback port."""
    base = tmp_path_factory.mktemp("api")
    shutil.copytree(ROOT / "seeds", base / "seeds")
    chat_bot = Bot(Config(seeds_dir=base / "seeds", index_dir=base / "index"))
    chat_bot.ensure_index()
    app = build_app(chat_bot)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield chat_bot, f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(served):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(served[1], verbose=False)


def test_ask_is_a_named_endpoint(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "/ask" in endpoints
    # The chat's own events are internal; only the answer function is public.
    assert list(endpoints) == ["/ask"]


def test_answer_with_citations(client, served):
    chat_bot, _ = served
    result = client.predict(question=DOMBRA, api_name="/ask")
    assert result["refused"] is False
    assert result["kind"] == "answer"
    assert "grandmother" in result["text"]
    assert result["citations"], "an answer must cite its passages"
    seed_text = (chat_bot.config.seeds_dir / "sezim-baktybekova.txt").read_text(encoding="utf-8")
    for citation in result["citations"]:
        assert set(citation) >= {"text", "source", "start", "end", "before", "after"}
        assert citation["source"] == "sezim-baktybekova.txt"
        # The citation points at the very sentence in the file, and the answer quotes it.
        assert " ".join(seed_text[citation["start"] : citation["end"]].split()) == citation["text"]
        assert citation["text"] in result["text"]
    assert any("grandmother" in c["text"] for c in result["citations"])


def test_refusal_flag(client, served):
    chat_bot, _ = served
    result = client.predict(question=FRANCE, api_name="/ask")
    assert result["refused"] is True
    assert result["kind"] == "refusal"
    assert result["citations"] == []
    assert result["text"] == chat_bot.persona.refusal_text()


def test_html_question_is_plain_text(client):
    result = client.predict(question=XSS, api_name="/ask")
    assert result["refused"] is True
    assert result["citations"] == []
    # The API speaks plain text: nothing HTML-escaped, nothing echoed back as markup.
    assert "&lt;" not in result["text"] and "&#" not in result["text"]
    assert "<img" not in result["text"]


def test_too_long_question_gets_a_clear_message(client, served):
    chat_bot, _ = served
    limit = chat_bot.config.max_question_chars
    result = client.predict(question="Who taught her? " * (limit // 8), api_name="/ask")
    assert result["refused"] is True
    assert result["kind"] == "invalid"
    assert str(limit) in result["text"]


def test_history_reaches_the_bot(client, served, monkeypatch):
    chat_bot, _ = served
    seen = []
    real_answer = chat_bot.answer

    def spy(question, history=None):
        seen.append((question, history))
        return real_answer(question, history)

    monkeypatch.setattr(chat_bot, "answer", spy)
    history = [
        {"role": "user", "content": "What is her debut album called?"},
        {"role": "assistant", "content": 'Sezim\'s debut album, "Steppes and Sighs," was a critical success.'},
    ]
    result = client.predict(question="Who signed her?", history=history, api_name="/ask")
    assert isinstance(result["refused"], bool)
    assert seen == [("Who signed her?", history)]


def test_errors_become_a_short_apology(client, served, monkeypatch, caplog):
    chat_bot, _ = served

    def broken(question, history=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(chat_bot, "answer", broken)
    with caplog.at_level(logging.ERROR, logger="bot.serve.app"):
        result = client.predict(question=DOMBRA, api_name="/ask")
    assert result["text"] == chat_bot.persona.say(chat_bot.persona.error)
    assert result["kind"] == "error" and result["refused"] is True
    assert "disk on fire" not in result["text"] and "Traceback" not in result["text"]
    # The details go to the log.
    assert any("disk on fire" in (r.exc_text or "") or r.exc_info for r in caplog.records)




# -- the handlers, called directly (what each event of the page does) ---------------


def request_from(host: str, **headers) -> SimpleNamespace:
    """What the handlers read of Gradio's request: the client's address and the headers."""
    return SimpleNamespace(client=SimpleNamespace(host=host), headers=headers)


@pytest.fixture
def handlers(served):
    return ChatHandlers(served[0])


def test_respond_shows_the_question_at_once_then_the_answer(handlers):
    box, shown, turns = next(steps := handlers.respond(DOMBRA, [], None))
    assert box == "" and turns == []
    assert shown == [{"role": "user", "content": DOMBRA}]
    box, shown, turns = next(steps)
    assert box == gr.skip()  # the fan may be typing the next question already
    (turn,) = turns
    assert turn["question"] == DOMBRA and turn["answer"].kind == "answer"
    assert "grandmother" in turn["answer"].text
    assert shown == render_chat(turns, handlers.bot.persona)
    assert shown[-1]["metadata"]["title"] == "Source: sezim-baktybekova.txt"
    assert list(steps) == []
    # The next question extends the same conversation, and the bot reads it as history.
    *_, (_, _, more) = handlers.respond(FRANCE, turns, None)
    assert [t["question"] for t in more] == [DOMBRA, FRANCE]
    assert more[1]["answer"].kind == "refusal"


def test_respond_escapes_the_question_and_offers_questions_on_refusal(handlers):
    *_, (_, shown, turns) = handlers.respond(XSS, [], None)
    assert "<" not in shown[0]["content"] and "&#60;img" in shown[0]["content"]
    assert turns[0]["answer"].refused is True
    *_, (_, shown, turns) = handlers.respond(FRANCE, [], None)
    assert turns[0]["answer"].kind == "refusal"
    assert [o["value"] for o in shown[1]["options"]] == list(handlers.bot.persona.example_questions[:3])
    # None (an emptied box) is an empty question, not a crash.
    *_, (_, _, empty) = handlers.respond(None, [], None)
    assert empty[0]["question"] == "" and empty[0]["answer"].refused is True


def test_a_failure_while_showing_the_answer_is_an_apology(handlers, monkeypatch, caplog):
    import bot.serve.app as app_module

    calls = []

    def fails_the_second_time(turns, persona):
        calls.append(turns)
        if len(calls) > 1:
            raise RuntimeError("rendering broke")
        return []

    monkeypatch.setattr(app_module, "render_chat", fails_the_second_time)
    with caplog.at_level(logging.ERROR, logger="bot.serve.app"):
        *_, (box, shown, turns) = handlers.respond(DOMBRA, [], None)
    persona = handlers.bot.persona
    assert box == gr.skip()
    assert [t["question"] for t in turns] == [DOMBRA]  # the answer is kept; the next render shows it
    assert shown[-1] == {"role": "assistant", "content": persona.say(persona.error)}
    assert any("Showing an answer failed" in r.getMessage() for r in caplog.records)


def test_picked_asks_the_clicked_question(handlers):
    for value in ({"text": DOMBRA}, {"value": DOMBRA}, DOMBRA):
        *_, (_, _, turns) = handlers.picked(SimpleNamespace(value=value), [], None)
        assert turns[0]["question"] == DOMBRA and turns[0]["answer"].kind == "answer"


def test_new_chat_empties_the_chat_state_and_box(handlers):
    assert handlers.new_chat() == ([], [], "")


def test_ask_limits_each_client_but_not_this_machine(served):
    chat_bot, _ = served
    handlers = ChatHandlers(chat_bot, rate_limit=RateLimiter(2))
    fan = request_from("203.0.113.5")
    kinds = [handlers.ask(DOMBRA, None, fan)["kind"] for _ in range(3)]
    assert kinds == ["answer", "answer", "rate_limited"]
    slowed = handlers.ask(DOMBRA, None, fan)
    assert slowed["text"] == chat_bot.persona.say(chat_bot.persona.slow_down) and slowed["refused"] is True
    assert handlers.ask(DOMBRA, None, request_from("203.0.113.6"))["kind"] == "answer"
    # This machine without a proxy header, and a call with no request, are not limited ...
    for request in (request_from("127.0.0.1"), None):
        assert [handlers.ask(DOMBRA, None, request)["kind"] for _ in range(3)] == ["answer"] * 3
    # ... but a request that came through a proxy is (uvicorn has put the fan's address
    # from X-Forwarded-For in client.host already; here the proxy gave none it trusts).
    proxied = request_from("127.0.0.1", **{"x-forwarded-for": "203.0.113.7"})
    assert [handlers.ask(DOMBRA, None, proxied)["kind"] for _ in range(3)] == ["answer", "answer", "rate_limited"]


def test_ask_passes_only_well_formed_history(served, monkeypatch):
    chat_bot, _ = served
    seen = []
    monkeypatch.setattr(chat_bot, "answer", lambda question, history=None: seen.append((question, history))
                        or Answer(text="ok", refused=False))
    handlers = ChatHandlers(chat_bot)
    good = {"role": "user", "content": "What is her debut album called?"}
    assert handlers.ask(DOMBRA, [good, {"role": "user"}, "junk"])["text"] == "ok"
    handlers.ask(None, "not a list")
    assert seen == [(DOMBRA, [good]), ("", [])]


def test_page_load_and_status_polling(served):
    chat_bot, _ = served
    status = IndexStatus()
    handlers = ChatHandlers(chat_bot, status)
    header, chat, line, version = handlers.page_load()
    assert chat_bot.persona.bot_name in header
    assert chat.placeholder.startswith(f"**{chat_bot.persona.bot_name}**")
    assert chat.examples == [{"text": q} for q in chat_bot.persona.example_questions]
    assert "Answering from" in line and version == status.version == 0
    assert handlers.poll_status(version) == (gr.skip(), gr.skip())  # nothing new: the page is left alone
    status.updated("1 file changed")
    line, version = handlers.poll_status(0)
    assert version == 1 and "Index updated at" in line
