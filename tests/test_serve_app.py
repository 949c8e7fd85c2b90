"""The chat app's named API endpoint ``/ask``, called with ``gradio_client``, and the chat's rendering.

The app is built with :func:`bot.ui.build_app` over a copy of the real seeds
(real model, real FAISS index) and served on a free loopback port.
"""

import html
import logging
import re
import shutil

import pytest

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from bot import Bot, Config  # noqa: E402
from bot.answer import Answer  # noqa: E402
from bot.retrieve import Passage  # noqa: E402
from bot.ui import (  # noqa: E402
    answer_messages,
    as_text,
    build_app,
    chat_history,
    sources_markdown,
    sources_title,
    user_message,
)

from conftest import DOMBRA, FRANCE, ROOT, XSS, free_port  # noqa: E402



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
    with caplog.at_level(logging.ERROR, logger="bot.ui"):
        result = client.predict(question=DOMBRA, api_name="/ask")
    assert result["text"] == chat_bot.persona.say(chat_bot.persona.error)
    assert result["kind"] == "error" and result["refused"] is True
    assert "disk on fire" not in result["text"] and "Traceback" not in result["text"]
    # The details go to the log.
    assert any("disk on fire" in (r.exc_text or "") or r.exc_info for r in caplog.records)


# -- what the chat shows (the browser test checks it in a real page) -----------------


def rendered_text(markup: str) -> str:
    """What a browser shows for ``markup`` that holds no tags: entities decoded."""
    return html.unescape(markup)


def test_fan_text_is_escaped():
    for text in (
        XSS,
        "<script>alert(1)</script>",
        "**bold** _it_ `code` [link](javascript:alert(1)) ![i](x) $$x$$ ~~s~~ a|b &amp; %%%LATEX_BLOCK_0%%%",
        "# heading",
        "1. list",
        "- list",
    ):
        shown = user_message(text)["content"]
        assert "<" not in shown and ">" not in shown
        assert not re.search(r"[*_`\[\]$~|&]|%%|^([#-]|\d+[.)])", re.sub(r"&#\d+;", "", shown)), "no markup survives"
        assert rendered_text(shown) == text
    # Ordinary text stays as it is.
    assert as_text("What's the capital of France? Sälem — 50% (ok), a-b.") == (
        "What's the capital of France? Sälem — 50% (ok), a-b."
    )


def test_long_messages_are_shortened_in_the_chat():
    shown = rendered_text(user_message("a" * 5000)["content"])
    assert len(shown) < 500 and shown.endswith("…")


def test_sources_highlight_the_sentence_and_escape_the_seed():
    passage = Passage(
        text="She played <b>loud</b>.",
        source="a<b>_*.txt",
        start=10,
        end=33,
        score=1.0,
        before="Before <img src=x onerror=alert(1)>.",
        after="After.",
    )
    markup = sources_markdown([passage])
    assert "<" not in markup and ">" not in markup.replace("\n\n> ", "")
    # The answering sentence is the bold one, in its context, under its place in the file.
    assert "*characters 10–33*" in markup
    assert "Before &#60;img src=x onerror=alert(1)&#62;. **She played &#60;b&#62;loud&#60;/b&#62;.** After." in markup


def test_sources_name_their_files_and_quote_neighbours_together():
    first = Passage(text="One.", source="a.txt", start=0, end=4, score=1.0, after="Two.")
    second = Passage(text="Two.", source="a.txt", start=5, end=9, score=1.0, before="One.", after="Three.")
    other = Passage(text="Else.", source="b_*.md", start=0, end=5, score=1.0)
    assert sources_markdown([first, second]) == "*characters 0–9*\n\n> **One. Two.** Three."
    markup = sources_markdown([first, other])
    assert "*a.txt · characters 0–4*" in markup and "*b&#95;&#42;.md · characters 0–5*" in markup
    assert sources_title([first, other]) == "Sources: a.txt, b&#95;&#42;.md"


def test_answer_messages_fold_the_sources_and_refusals_offer_questions(served):
    chat_bot, _ = served
    persona = chat_bot.persona
    passage = Passage(text="Her grandmother taught her.", source="s.txt", start=0, end=27, score=1.0)
    answer = Answer(text=passage.text, refused=False, citations=[passage])
    reply, sources = answer_messages(answer, persona)
    assert reply["role"] == sources["role"] == "assistant"
    assert sources["metadata"]["status"] == "done"  # folded until clicked
    assert sources["metadata"]["title"] == "Source: s.txt"

    refusal = Answer(text=persona.refusal_text(), refused=True, kind="refusal")
    (message,) = answer_messages(refusal, persona)
    assert [o["value"] for o in message["options"]] == list(persona.example_questions[:3])


def test_chat_history_is_plain_messages():
    turns = [
        {"question": "Q1", "answer": Answer(text="A1", refused=False)},
        {"question": XSS, "answer": Answer(text="No.", refused=True, kind="refusal")},
    ]
    assert chat_history(turns) == [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": XSS},
        {"role": "assistant", "content": "No."},
    ]
