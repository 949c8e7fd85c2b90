"""What the chat shows: fans' text and seed text escaped, sources folded and highlighted.

Pure functions, tested without Gradio or a server (the browser test checks the
same markup in a real page).
"""

import html
import re
import subprocess
import sys

import pytest

from bot.answer import Answer
from bot.persona import Persona, load_persona
from bot.retrieve import Passage
from bot.serve.render import (
    HISTORY_MESSAGE_CHARS,
    HISTORY_MESSAGES,
    answer_messages,
    api_history,
    as_text,
    chat_history,
    header_html,
    placeholder_markdown,
    render_chat,
    sources_markdown,
    sources_title,
    user_message,
)

from conftest import SEEDS, XSS


@pytest.fixture(scope="module")
def persona() -> Persona:
    """The shipped seeds' persona."""
    return load_persona(SEEDS / "persona.toml")


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


def test_answer_messages_fold_the_sources_and_refusals_offer_questions(persona):
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


def test_rendering_needs_no_gradio():
    probe = "import sys, bot.serve.render, bot.serve.ratelimit, bot.serve.guard; print('gradio' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_header_and_placeholder_escape_the_persona():
    hostile = Persona(bot_name="<b>Bot</b>", artist_name="A & <i>B</i>", greeting="Hi **{artist}** <script>")
    header = header_html(hostile)
    # Only the header's own tags are markup; the persona's text shows as itself.
    assert "<b>" not in header and "<i>" not in header and "<script>" not in header
    assert '<div class="bot-avatar" aria-hidden="true">&#60;</div>' in header
    assert html.unescape(header).count("<b>Bot</b>") == 1
    assert "Fan guide to A &#38; &#60;i&#62;B&#60;/i&#62;" in header
    placeholder = placeholder_markdown(hostile)
    assert placeholder == "**&#60;b&#62;Bot&#60;/b&#62;** is ready. Ask a question, or try one of these:"


def test_render_chat_shows_each_question_then_its_answer(persona):
    passage = Passage(text="Her grandmother taught her.", source="s.txt", start=0, end=27, score=1.0)
    turns = [
        {"question": XSS, "answer": Answer(text="No <b>idea</b>.", refused=True, kind="refusal")},
        {"question": "Who taught her?", "answer": Answer(text=passage.text, refused=False, citations=[passage])},
    ]
    messages = render_chat(turns, persona)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "assistant"]
    assert html.unescape(messages[0]["content"]) == XSS and "<" not in messages[0]["content"]
    assert messages[1]["content"] == "No &#60;b&#62;idea&#60;/b&#62;."
    assert messages[4]["metadata"]["title"] == "Source: s.txt"
    assert user_message("   ")["content"] == "&#160;"  # an empty question still shows as a message


def test_history_is_cut_to_size():
    turns = [{"question": "q" * 10_000, "answer": Answer(text=f"A{n}", refused=False)} for n in range(30)]
    history = chat_history(turns)
    assert len(history) == HISTORY_MESSAGES
    assert history[-1] == {"role": "assistant", "content": "A29"}
    assert all(len(m["content"]) <= HISTORY_MESSAGE_CHARS for m in history)


def test_api_history_keeps_only_well_formed_messages():
    sent = [
        {"role": "user", "content": "x" * (HISTORY_MESSAGE_CHARS + 5)},
        {"role": "assistant", "content": 42},
        "not a message",
        {"content": "no role"},
    ]
    assert api_history(sent) == [
        {"role": "user", "content": "x" * HISTORY_MESSAGE_CHARS},
        {"role": "None", "content": "no role"},
    ]
    assert api_history(None) == [] and api_history("a string") == []
    many = [{"role": "user", "content": str(n)} for n in range(50)]
    assert api_history(many) == many[-HISTORY_MESSAGES:]
