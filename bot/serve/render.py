"""What the chat shows, as text: fans' questions, answers, sources, the header.

Everything a fan types and everything quoted from the seeds is shown as
text: :func:`as_text` escapes it before it reaches the page's Markdown and
HTML, so a question or a seed that holds ``<img src=x onerror=...>`` shows
those very characters and never runs.

Pure functions over :class:`~bot.answer.Answer`, :class:`~bot.retrieve.Passage`
and :class:`~bot.persona.Persona`: no Gradio here, so they are tested directly.
"""

import re

from ..answer import Answer
from ..persona import Persona
from ..retrieve import Passage

#: How much of an over-long message is echoed back in the chat.
ECHO_CHARS = 400
#: Longest chat history, in messages, passed to the bot with a question.
HISTORY_MESSAGES = 20
#: Longest message of that history, in characters. The bot reads only the
#: fan's previous question from it, and a question over 1000 characters is not
#: answered anyway; a huge paste there would otherwise be read at every question.
HISTORY_MESSAGE_CHARS = 4000


# What could turn text into markup: HTML's special characters, Markdown's
# inline syntax, and "%%" (the page's Markdown uses "%%%...%%%" placeholders).
# Each becomes a numeric character reference, which shows as that very
# character and never as markup. Everything else is left alone, so ordinary
# punctuation stays readable (screen readers read a message's raw text).
_INLINE_MARKUP = re.compile(r"[&<>\\`*_\[\]~$|]|%(?=%)")
# Markdown's block syntax, which only counts at the start of a line.
_LINE_START = re.compile(r"^[ \t]*(?:([#+=-])|(\d+)([.)]))", re.MULTILINE)


def _reference(match: re.Match) -> str:
    return "".join(f"&#{ord(ch)};" for ch in match.group())


def _line_start(match: re.Match) -> str:
    mark, number, after = match.groups()
    return f"&#{ord(mark)};" if mark else f"{number}&#{ord(after)};"


def as_text(text: str) -> str:
    """``text`` made safe to put into Markdown or HTML: it renders as itself, literally."""
    return _LINE_START.sub(_line_start, _INLINE_MARKUP.sub(_reference, text))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- what the chat shows -------------------------------------------------------


def user_message(question: str) -> dict:
    """The fan's message as shown in the chat (long ones shortened, all escaped)."""
    shown = _one_line(question)
    if len(shown) > ECHO_CHARS:
        shown = shown[:ECHO_CHARS].rstrip() + " …"
    return {"role": "user", "content": as_text(shown) if shown else "&#160;"}


def _quotes(passages: list[Passage]) -> list[list[Passage]]:
    """Group passages that follow each other in the same file, to quote them together."""
    groups: list[list[Passage]] = []
    for passage in passages:
        last = groups[-1][-1] if groups else None
        if last and last.source == passage.source and last.after and last.after == passage.text:
            groups[-1].append(passage)
        else:
            groups.append([passage])
    return groups


def sources_markdown(passages: list[Passage]) -> str:
    """Each source passage, the answering sentences highlighted (in bold) in their context."""
    parts = []
    several_files = len({p.source for p in passages}) > 1
    for group in _quotes(passages):
        first, last = group[0], group[-1]
        where = f"{as_text(first.source)} · " if several_files else ""
        context = " ".join(
            part
            for part in (as_text(first.before), f"**{as_text(' '.join(p.text for p in group))}**", as_text(last.after))
            if part
        )
        parts.append(f"*{where}characters {first.start}–{last.end}*\n\n> {context}")
    return "\n\n".join(parts)


def sources_title(passages: list[Passage]) -> str:
    """The one-line title of the folded sources under an answer."""
    files = list(dict.fromkeys(p.source for p in passages))
    return as_text(f"{'Source' if len(files) == 1 else 'Sources'}: {', '.join(files)}")


def answer_messages(reply: Answer, persona: Persona) -> list[dict]:
    """The bot's chat messages for one answer: the answer, then its sources, folded."""
    message: dict = {"role": "assistant", "content": as_text(reply.text)}
    if reply.kind == "refusal" and persona.example_questions:
        # Questions the bot can answer, one click away.
        message["options"] = [{"value": q, "label": q} for q in persona.example_questions[:3]]
    messages = [message]
    if reply.citations:
        messages.append(
            {
                "role": "assistant",
                "content": sources_markdown(reply.citations),
                "metadata": {"title": sources_title(reply.citations), "status": "done"},
            }
        )
    return messages


def render_chat(turns: list[dict], persona: Persona) -> list[dict]:
    """The chat's messages for the conversation so far."""
    messages = []
    for turn in turns:
        messages.append(user_message(turn["question"]))
        messages.extend(answer_messages(turn["answer"], persona))
    return messages


def chat_history(turns: list[dict]) -> list[dict]:
    """The conversation as the bot reads it: plain ``{"role", "content"}`` messages."""
    history = []
    for turn in turns:
        history.append({"role": "user", "content": turn["question"][:HISTORY_MESSAGE_CHARS]})
        history.append({"role": "assistant", "content": turn["answer"].text[:HISTORY_MESSAGE_CHARS]})
    return history[-HISTORY_MESSAGES:]


def header_html(persona: Persona) -> str:
    """The title block: the persona's name, who it is about, and its greeting."""
    initial = as_text(persona.bot_name[:1].upper() or "?")
    return (
        '<div class="bot-header">'
        f'<div class="bot-avatar" aria-hidden="true">{initial}</div>'
        '<div class="bot-intro">'
        f'<h1 class="bot-name">{as_text(persona.bot_name)}</h1>'
        f'<p class="bot-tagline">Fan guide to {as_text(persona.artist_name)}'
        " &#183; quoted answers, with sources</p>"
        f'<p class="bot-greeting">{as_text(persona.say(persona.greeting))}</p>'
        "</div></div>"
    )


def placeholder_markdown(persona: Persona) -> str:
    """What the empty chat shows above the example questions."""
    return f"**{as_text(persona.bot_name)}** is ready. Ask a question, or try one of these:"


def api_history(history: object) -> list[dict]:
    """The ``history`` an API caller sent, as the bot reads it: well-formed messages only, cut to size.

    A caller may send anything; what is not a list of messages with text is
    left out rather than refused, as the chat's own history would be.
    """
    return [
        {"role": str(m.get("role")), "content": m["content"][:HISTORY_MESSAGE_CHARS]}
        for m in (history if isinstance(history, list) else [])
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    ][-HISTORY_MESSAGES:]


#: The page's styles: for the markup made here, the index status line and the folded sources.
CSS = """
.gradio-container { max-width: 880px !important; margin: 0 auto !important; }
.bot-header { display: flex; gap: 16px; align-items: flex-start; padding: 6px 4px 2px; }
.bot-avatar { flex: none; width: 52px; height: 52px; border-radius: 50%; display: flex;
  align-items: center; justify-content: center; font-size: 24px; font-weight: 700; color: #fff;
  background: linear-gradient(135deg, #d97706, #0f766e); box-shadow: 0 2px 6px rgba(0,0,0,.15); }
.bot-intro { min-width: 0; }
.bot-name { margin: 0 !important; font-size: 1.6rem !important; line-height: 1.2; }
.bot-tagline { margin: 2px 0 6px !important; color: var(--body-text-color-subdued); font-size: .9rem; }
.bot-greeting { margin: 0 !important; font-size: 1rem; }
.index-status { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 12px;
  font-size: .82rem; color: var(--body-text-color-subdued); }
.index-status .dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%;
  background: #16a34a; margin-right: 6px; }
.index-status .dot-wait { background: #d97706; }
.status-note { padding: 1px 8px; border-radius: 999px; }
.status-updated { background: #dcfce7; color: #166534; }
.status-error { background: #fee2e2; color: #991b1b; }
/* Sources, folded under each answer: the answering sentences are the bold ones. */
#chat .thought-group p { margin: 8px 0 2px !important; }
#chat .thought-group p em { font-style: normal; color: var(--body-text-color-subdued); font-size: .9em; }
#chat .thought-group blockquote { margin: 0 0 6px !important; padding: 2px 0 2px 10px; line-height: 1.55;
  border-left: 3px solid #f59e0b; }
#chat .thought-group blockquote p { margin: 0 !important; }
#chat .thought-group blockquote strong { font-weight: inherit; background: #fde68a; padding: 1px 3px;
  border-radius: 3px; color: inherit; }
#status-row { align-items: center; }
#new-chat { max-width: 130px; }
footer .divider { display: none !important; }
"""
