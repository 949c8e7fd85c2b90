"""The browser chat (``bot serve``): a Gradio app over one :class:`~bot.core.Bot`.

What a fan sees: the persona's name and greeting, example questions to click,
answers as chat messages with their sources folded away under each answer,
and friendly refusals that offer questions the bot can answer. The same
answer function is the named API endpoint ``/ask`` for ``gradio_client``.

Everything a fan types and everything quoted from the seeds is shown as
text: it is escaped before it reaches the page's Markdown and HTML, so a
question or a seed that holds ``<img src=x onerror=...>`` shows those very
characters and never runs.

While serving, :class:`SeedWatcher` watches the seeds folder and brings the
index up to date in a background thread; :meth:`Bot.update` swaps the new
index in with one assignment, so questions keep being answered throughout.

This is the only module that imports Gradio, so the rest of the CLI stays fast.
"""

import html
import logging
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Gradio otherwise phones home for analytics and version checks at start-up.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import watchfiles  # noqa: E402

from .answer import Answer  # noqa: E402
from .config import Config  # noqa: E402
from .core import Bot  # noqa: E402
from .ingest import SEED_SUFFIXES  # noqa: E402
from .persona import Persona, load_persona  # noqa: E402
from .retrieve import Passage  # noqa: E402

log = logging.getLogger(__name__)

#: How much of an over-long message is echoed back in the chat.
ECHO_CHARS = 400
#: Seconds between the page's checks for a fresh index.
STATUS_POLL_SECONDS = 2.0
#: Longest chat history, in messages, passed to the bot with a question.
HISTORY_MESSAGES = 20

# What could turn text into markup: HTML's special characters, Markdown's
# inline syntax, and "%%" (the page's Markdown uses "%%%...%%%" placeholders).
# Each becomes a numeric character reference, which shows as that very
# character and never as markup. Everything else is left alone, so ordinary
# punctuation stays readable (screen readers read a message's raw text).
_INLINE_MARKUP = re.compile(r"[&<>\\`*_\[\]~$|]|%(?=%)")
# Markdown's block syntax, which only counts at the start of a line.
_LINE_START = re.compile(r"^[ \t]*(?:([#+=-])|(\d+)([.)]))", re.M)


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
        history.append({"role": "user", "content": turn["question"]})
        history.append({"role": "assistant", "content": turn["answer"].text})
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


# -- the index, while serving --------------------------------------------------


@dataclass
class IndexStatus:
    """What the page says about the index; ``version`` goes up at each live update."""

    version: int = 0
    updated_at: float | None = None
    summary: str = ""
    error: str | None = None

    def updated(self, summary: str) -> None:
        self.summary, self.error, self.updated_at = summary, None, time.time()
        self.version += 1

    def failed(self, error: str) -> None:
        self.error = error
        self.version += 1


def status_html(bot: Bot, status: IndexStatus) -> str:
    """One line on the index the bot answers from, and its latest live update."""
    index = bot.loaded_index
    if index is None:
        return '<div class="index-status"><span class="dot dot-wait"></span>Loading the documents…</div>'
    files = len(index.manifest.get("files", {}))
    line = (
        f'<span class="dot"></span>Answering from {len(index)} passages in '
        f"{files} document{'s' if files != 1 else ''}"
    )
    if status.error:
        line += (
            '<span class="status-note status-error">Last update failed; '
            "answering from the previous documents</span>"
        )
    elif status.updated_at is not None:
        clock = time.strftime("%H:%M:%S", time.localtime(status.updated_at))
        line += f'<span class="status-note status-updated">✓ Index updated at {clock}</span>'
    return f'<div class="index-status" title="{html.escape(status.summary or status.error or "")}">{line}</div>'


class SeedWatcher:
    """Watches the seeds folder and updates the bot's index when it changes.

    Changes are collected until the folder has been quiet for ``quiet_ms``
    (at most ``debounce_ms``), then one incremental update runs. The bot keeps
    answering from the old index until the new one is swapped in.
    """

    def __init__(self, bot: Bot, status: IndexStatus, debounce_ms: int = 1600, quiet_ms: int = 300):
        self.bot = bot
        self.status = status
        self.debounce_ms = debounce_ms
        self.quiet_ms = quiet_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "SeedWatcher":
        self._thread = threading.Thread(target=self._run, name="seed-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        seeds = self.bot.config.seeds_dir.resolve()
        index = self.bot.config.index_dir.resolve()
        target = Path(path)
        if target.is_relative_to(index):
            return False
        try:
            relative = target.relative_to(seeds)
        except ValueError:
            return False
        if any(part.startswith(".") for part in relative.parts):
            return False
        # Seed files, the persona, and folders (a renamed folder is one event).
        return target.suffix.lower() in SEED_SUFFIXES or target.name == "persona.toml" or not target.suffix

    def _run(self) -> None:
        # Watch the real path, so the paths reported lie under the one the filter knows.
        seeds = self.bot.config.seeds_dir.resolve()
        log.info("Watching %s for changes.", seeds)
        missing = False
        while not self._stop.is_set():
            try:
                if missing and seeds.is_dir():
                    missing = False
                    log.info("The seeds folder %s is back.", seeds)
                    self.apply({(watchfiles.Change.modified, str(seeds))})
                for changes in watchfiles.watch(
                    seeds,
                    watch_filter=self._relevant,
                    debounce=self.debounce_ms,
                    step=self.quiet_ms,
                    stop_event=self._stop,
                    raise_interrupt=False,
                ):
                    self.apply(changes)
            except FileNotFoundError:
                if not missing:
                    log.warning("The seeds folder %s is gone; still answering from the last index.", seeds)
                missing = True
                self._stop.wait(3.0)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("Watching %s failed; retrying in a few seconds.", seeds)
                self._stop.wait(3.0)

    def apply(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        """Bring the index (and persona) up to date after ``changes``."""
        seeds = self.bot.config.seeds_dir.resolve()
        names = sorted({str(Path(p).relative_to(seeds)) if Path(p).is_relative_to(seeds) else p for _, p in changes})
        names = [name for name in names if name != "."] or [str(seeds)]
        log.info("Seeds changed (%s); updating the index.", ", ".join(names))
        if any(Path(p).name == "persona.toml" for _, p in changes):
            self.bot.persona = load_persona(self.bot.config.persona_path)
            log.info("Reloaded the persona.")
        try:
            report = self.bot.update()
        except Exception as error:  # noqa: BLE001 - keep serving from the old index
            log.warning("Could not update the index (%s); still answering from the previous one.", error)
            self.status.failed(str(error))
            return
        if report.changed_anything:
            log.info("Now answering from the updated index (%d passages).", report.chunks)
            self.status.updated(report.summary())
        elif self.status.error:
            self.status.updated(report.summary())


# -- the app -------------------------------------------------------------------

THEME = gr.themes.Soft(
    primary_hue="amber",
    secondary_hue="teal",
    neutral_hue="stone",
    # System fonts: the page loads nothing from other sites.
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

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


class ChatApp(gr.Blocks):
    """The chat's Blocks; ``launch()`` applies its theme and styles by default."""

    def launch(self, *args, **kwargs):
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("ssr_mode", False)
        kwargs.setdefault("footer_links", ["api"])
        return super().launch(*args, **kwargs)


def build_app(bot: Bot, status: IndexStatus | None = None) -> gr.Blocks:
    """The Gradio app for ``bot``: the chat, the ``/ask`` API, and the index status line.

    ``status`` is shared with a :class:`SeedWatcher` so the page can show live
    updates; without one the page just shows the index in use.
    """
    status = status or IndexStatus()
    persona = bot.persona

    def safe_answer(question: str, history: list[dict]) -> Answer:
        try:
            return bot.answer(question, history)
        except Exception:  # noqa: BLE001 - the fan gets an apology, the log the details
            log.exception("Answering a question failed.")
            return Answer(text=bot.persona.say(bot.persona.error), refused=True, kind="error")

    def respond(question, turns):
        """Show the fan's message at once, then the answer with its sources.

        One event per question, so the conversation is only ever extended by
        the question being answered (a second Enter meanwhile is ignored).
        """
        question = "" if question is None else str(question)
        shown = render_chat(turns, bot.persona) + [user_message(question)]
        yield "", shown, turns
        try:
            answer = safe_answer(question, chat_history(turns))
            turns = turns + [{"question": question, "answer": answer}]
            # The box is left alone: the fan may already be typing the next question.
            yield gr.skip(), render_chat(turns, bot.persona), turns
        except Exception:  # noqa: BLE001 - the fan gets an apology, the log the details
            log.exception("Showing an answer failed.")
            apology = {"role": "assistant", "content": as_text(bot.persona.say(bot.persona.error))}
            yield gr.skip(), shown + [apology], turns

    def picked(event: gr.SelectData, turns):
        """An example question or a suggested one was clicked: ask it."""
        value = event.value
        question = (value.get("text") or value.get("value") or "") if isinstance(value, dict) else str(value or "")
        yield from respond(question, turns)

    def new_chat():
        return [], [], ""

    def ask(question: str, history: list[dict] | None = None) -> dict:
        """Answer a fan's question from the artist's documents.

        Returns a dict with ``text`` (the answer, or a refusal in the persona's
        voice), ``refused`` (True when the documents don't say), ``kind``,
        ``confidence`` and ``citations`` (the quoted passages: source file,
        character offsets, sentence and its context).
        """
        clean_history = [
            {"role": str(m.get("role")), "content": str(m.get("content"))}
            for m in (history or [])
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        ][-HISTORY_MESSAGES:]
        question = "" if question is None else str(question)
        return safe_answer(question, clean_history).to_dict()

    def page_load():
        """Fresh persona and index status for each visitor."""
        persona = bot.persona
        return (
            header_html(persona),
            gr.Chatbot(
                placeholder=placeholder_markdown(persona),
                examples=[{"text": q} for q in persona.example_questions],
            ),
            status_html(bot, status),
            status.version,
        )

    def poll_status(seen):
        if seen == status.version:
            return gr.skip(), gr.skip()
        return status_html(bot, status), status.version

    with ChatApp(title=f"{persona.bot_name} · {persona.artist_name}", analytics_enabled=False) as app:
        turns = gr.State([])
        seen_version = gr.State(-1)

        header = gr.HTML(header_html(persona), elem_id="bot-header")
        chatbot = gr.Chatbot(
            value=[],
            elem_id="chat",
            show_label=False,
            height="62vh",
            min_height=360,
            layout="bubble",
            placeholder=placeholder_markdown(persona),
            examples=[{"text": q} for q in persona.example_questions],
            # Everything shown is escaped already; keep Gradio's own safety net too.
            sanitize_html=True,
            allow_tags=False,
            latex_delimiters=[],
            buttons=[],
            feedback_options=None,
            group_consecutive_messages=True,
        )
        question_box = gr.Textbox(
            placeholder=f"Ask about {persona.artist_name}…",
            show_label=False,
            lines=1,
            max_lines=5,
            autofocus=True,
            submit_btn="Ask",
            elem_id="question",
        )
        with gr.Row(elem_id="status-row"):
            status_line = gr.HTML(status_html(bot, status), elem_id="index-status")
            clear_button = gr.Button("New chat", size="sm", variant="secondary", elem_id="new-chat", scale=0)
        timer = gr.Timer(STATUS_POLL_SECONDS)

        private = {"api_visibility": "private"}
        outputs = [question_box, chatbot, turns]
        chat_events = {"show_progress": "hidden", "trigger_mode": "once", **private}
        question_box.submit(respond, [question_box, turns], outputs, **chat_events)
        chatbot.example_select(picked, [turns], outputs, **chat_events)
        chatbot.option_select(picked, [turns], outputs, **chat_events)
        clear_button.click(new_chat, None, [chatbot, turns, question_box], queue=False, **private)
        chatbot.clear(new_chat, None, [chatbot, turns, question_box], queue=False, **private)
        timer.tick(
            poll_status, seen_version, [status_line, seen_version], show_progress="hidden", queue=False, **private
        )
        app.load(page_load, None, [header, chatbot, status_line, seen_version], queue=False, **private)

        gr.api(ask, api_name="ask", concurrency_limit=4)

    app.queue(default_concurrency_limit=4)
    return app


class ServeError(RuntimeError):
    """The chat cannot be served (the address or port is unavailable)."""


def serve(config: Config, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build or update the index, then serve the chat until interrupted, watching the seeds."""
    started = time.perf_counter()
    bot = Bot(config)
    bot.ensure_index()
    bot.retrieve("warm up", k=1)  # load the model now, not on the first fan's question
    status = IndexStatus()
    watcher = SeedWatcher(bot, status).start()
    app = build_app(bot, status)
    if threading.current_thread() is threading.main_thread():
        # Stop cleanly on SIGTERM (a service manager, a test) as on Ctrl+C.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            app.launch(server_name=host, server_port=port, prevent_thread_lock=True, show_error=False, quiet=True)
        except OSError as error:
            log.debug("Launching failed: %s", error)
            raise ServeError(
                f"Cannot listen on {host}:{port}: the port is in use or the address is not available. "
                "Choose another with --port."
            ) from None
        log.info("Ready to chat after %.1fs: http://%s:%d/", time.perf_counter() - started, host, port)
        if host in ("0.0.0.0", "::"):
            log.warning("Listening on all interfaces: anyone who can reach this machine can use the chat.")
        app.block_thread()  # until Ctrl+C or SIGTERM
    finally:
        watcher.stop()
        log.info("Stopped.")


def _interrupt(signum, frame):
    raise KeyboardInterrupt
