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

Running in public (see the README's "Running it in public"): ``serve`` can
require a password (Gradio's login, ``--auth``), limits how many questions each
client may ask a minute (:class:`~bot.ratelimit.RateLimiter`; over the limit
the fan gets a friendly line in the persona's voice), and launches Gradio so
that it serves no file from disk at all (``blocked_paths`` is the whole
filesystem, uploads are refused, monitoring, MCP and run history are off).
Nothing in the page or the API changes the index: it follows the files in
``seeds/`` only, so there is no index action to put behind the password.

This is the only module that imports Gradio, so the rest of the CLI stays fast.
"""

import errno
import html
import logging
import os
import re
import signal
import tempfile
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
from .index import stale_files  # noqa: E402
from .ingest import SEED_SUFFIXES, NoSeedsError, load_seeds  # noqa: E402
from .persona import Persona, load_persona  # noqa: E402
from .ratelimit import RateLimiter  # noqa: E402
from .retrieve import Passage  # noqa: E402

log = logging.getLogger(__name__)

#: How much of an over-long message is echoed back in the chat.
ECHO_CHARS = 400
#: Seconds between the page's checks for a fresh index.
STATUS_POLL_SECONDS = 2.0
#: Longest chat history, in messages, passed to the bot with a question.
HISTORY_MESSAGES = 20
#: Longest message of that history, in characters. The bot reads only the
#: fan's previous question from it, and a question over 1000 characters is not
#: answered anyway; a megabyte pasted there would cost seconds of CPU each time.
HISTORY_MESSAGE_CHARS = 4000
#: Largest HTTP request body the server reads; a question and its history fit
#: many times over. Bigger ones get "413 Request Entity Too Large".
MAX_REQUEST_BYTES = 2 * 1024 * 1024

#: Questions one client (IP address) may ask a minute, chat and API together,
#: unless ``bot serve --rate-limit`` (or ``BOT_RATE_LIMIT``) says otherwise.
DEFAULT_RATE_LIMIT = 30

# The queue, chosen by measurement (``bot loadtest``, 2 cores). Answering a
# question takes about 3 ms of CPU (one ONNX embedding, BM25 and a FAISS
# search over an in-memory index); Gradio's own work per request (queue,
# event stream, JSON) takes about twice that, on its one event-loop thread.
# One server process tops out near 110-130 answers/s whatever the limit:
# 1, 2, 4, 16 and 64 answers at once gave the same throughput within noise.
#: Answers run at once (per event: the chat and /ask each). A few, so a slow
#: question does not hold up the others, without a thread per waiting fan.
CONCURRENCY_LIMIT = 4
#: Questions that may wait in the queue (a few seconds' work at ~100 answers/s);
#: more are turned away at once ("queue full") instead of waiting minutes
#: behind a spike, and the memory for waiting requests stays bounded.
QUEUE_MAX_SIZE = 256
#: Seconds between queue-position updates to waiting clients. Gradio's default
#: ("auto") tells every waiting client its new place each time an answer
#: starts, n messages per answer with n waiting, for a position the chat
#: never shows (its progress display is hidden).
QUEUE_STATUS_SECONDS = 5.0
#: Sessions whose state Gradio keeps in memory (its ``state_session_capacity``,
#: 10,000 by default): each chat tab is one, and so is every API call that
#: brings no session of its own (plain HTTP; gradio_client keeps one). Each
#: costs about 30 KB of server memory here, so 2,000 bound it to ~60 MB where
#: 10,000 would let it grow by ~300 MB; a fan's chat is forgotten only after
#: 2,000 newer sessions (the next question starts a fresh chat, nothing breaks).
STATE_SESSIONS = 2000
#: After a failed update, how often the watcher tries again (the folder may
#: have been made writable, or the disk freed).
RETRY_SECONDS = 30.0

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
        """The index could not be updated; ``error`` says why, in a few words."""
        if error != self.error:
            self.error = error
            self.version += 1


def update_problem(error: BaseException, config: Config) -> str:
    """Why an update failed, in a few words a site owner can act on."""
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the index folder {config.index_dir} is not writable ({error.strerror})"
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left to write the index in {config.index_dir}"
    if isinstance(error, NoSeedsError):
        return str(error).split(". ")[0].rstrip(".")
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def index_write_problem(index_dir: Path) -> str | None:
    """Why a new index generation could not be written to ``index_dir`` now, or None."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        # A build writes a generation folder; try exactly that.
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=index_dir))
    except OSError as error:
        return f"the index folder {index_dir} is not writable ({error.strerror or error})"
    return None


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
            '<span class="status-note status-error">Last update failed: '
            f"{html.escape(status.error)}; answering from the previous documents</span>"
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

    def __init__(
        self,
        bot: Bot,
        status: IndexStatus,
        debounce_ms: int = 1600,
        quiet_ms: int = 300,
        retry_seconds: float = RETRY_SECONDS,
    ):
        self.bot = bot
        self.status = status
        self.debounce_ms = debounce_ms
        self.quiet_ms = quiet_ms
        #: While the last update failed, try again this often even with no change.
        self.retry_seconds = retry_seconds
        self._failed_at: float | None = None
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
                    rust_timeout=max(1000, int(self.retry_seconds * 1000)),
                    yield_on_timeout=True,
                ):
                    if changes:
                        self.apply(changes)
                    elif self._failed_at is not None and time.monotonic() - self._failed_at >= self.retry_seconds:
                        self.retry()
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
        self._update()

    def retry(self) -> None:
        """Try the update that failed last time again (nothing may have changed but the cause)."""
        log.debug("Trying again to update the index.")
        self._update()

    def failed(self, problem: str) -> None:
        """Record that the index cannot be updated, say why, and retry from time to time."""
        if problem != self.status.error:
            log.warning("Cannot update the index: %s. Still answering from the previous one.", problem)
        self.status.failed(problem)
        self._failed_at = time.monotonic()

    def _update(self) -> None:
        try:
            report = self.bot.update()
        except Exception as error:  # noqa: BLE001 - keep serving from the old index
            log.debug("The update failed.", exc_info=True)
            self.failed(update_problem(error, self.bot.config))
            return
        self._failed_at = None
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


#: Gradio's launch settings for a chat that serves nothing but itself.
LOCKED_DOWN = {
    # No file on disk is served by URL (/file=..., /gradio_api/file=...): the
    # chat shows only text, so the block list is the whole filesystem, which
    # takes precedence over any allowed path (even GRADIO_ALLOWED_PATHS).
    "allowed_paths": [],
    "blocked_paths": [Path.cwd().anchor or os.sep],
    # Nothing is uploaded either: the chat has no file inputs.
    "max_file_size": 0,
    "enable_monitoring": False,
    "mcp_server": False,
    "pwa": False,
    "run_history": False,
    "ssr_mode": False,
    "share": False,
    "state_session_capacity": STATE_SESSIONS,
}


class ChatApp(gr.Blocks):
    """The chat's Blocks; ``launch()`` applies its theme, styles and :data:`LOCKED_DOWN` by default."""

    def launch(self, *args, **kwargs):
        from starlette.middleware import Middleware

        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("footer_links", ["api"])
        for name, value in LOCKED_DOWN.items():
            kwargs.setdefault(name, value)
        middleware = [Middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)]
        if kwargs.get("auth"):
            middleware.append(Middleware(LoginThrottle, limiter=RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE)))
        app_kwargs = dict(kwargs.get("app_kwargs") or {})
        app_kwargs["middleware"] = [*middleware, *app_kwargs.get("middleware", [])]
        kwargs["app_kwargs"] = app_kwargs
        return super().launch(*args, **kwargs)


class _TooLarge(BaseException):
    """A request body went over the limit while it was read (a BaseException, so that
    FastAPI's body parsing, which turns any Exception into a 400, lets it through)."""


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413), declared or streamed."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        responded = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def watched_send(message):
            nonlocal responded
            responded = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _TooLarge:
            if not responded:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        from starlette.responses import PlainTextResponse

        await PlainTextResponse("Request too large.", status_code=413)(scope, receive, send)


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def client_of(request: gr.Request | None) -> str | None:
    """The client a question comes from, for the rate limit: its IP address.

    Behind a reverse proxy on the same machine this is the fan's address from
    ``X-Forwarded-For`` (uvicorn trusts that header from 127.0.0.1 only; see
    ``FORWARDED_ALLOW_IPS``). None for a client on this very machine that came
    through no proxy (a health check, ``bot loadtest``), or a call from Python
    with no request at all: it is not limited.
    """
    if request is None:
        return None
    host = getattr(getattr(request, "client", None), "host", None)
    if not host:
        return "unknown"
    if host in LOOPBACK:
        headers = getattr(request, "headers", None) or {}
        if not any(name in headers for name in ("x-forwarded-for", "forwarded", "x-real-ip")):
            return None
    return str(host)


def build_app(bot: Bot, status: IndexStatus | None = None, rate_limit: RateLimiter | None = None) -> gr.Blocks:
    """The Gradio app for ``bot``: the chat, the ``/ask`` API, and the index status line.

    ``status`` is shared with a :class:`SeedWatcher` so the page can show live
    updates; without one the page just shows the index in use. ``rate_limit``
    caps the questions of each client (chat and API together); None: no cap.
    """
    status = status or IndexStatus()
    persona = bot.persona
    limiter = rate_limit if rate_limit is not None else RateLimiter(0)
    noticed = RateLimiter(1)

    def safe_answer(question: str, history: list[dict], request: gr.Request | None = None) -> Answer:
        client = client_of(request)
        if client is not None and not limiter.allow(client):
            if noticed.allow(client):  # one log line per client a minute, however hard it tries
                log.info("Rate limit: %s asks more than %d questions a minute; asking it to slow down.",
                         client, limiter.per_minute)
            voice = bot.persona
            return Answer(text=voice.say(voice.slow_down), refused=True, kind="rate_limited")
        try:
            return bot.answer(question, history)
        except Exception:  # noqa: BLE001 - the fan gets an apology, the log the details
            log.exception("Answering a question failed.")
            return Answer(text=bot.persona.say(bot.persona.error), refused=True, kind="error")

    def respond(question, turns, request: gr.Request):
        """Show the fan's message at once, then the answer with its sources.

        One event per question, so the conversation is only ever extended by
        the question being answered (a second Enter meanwhile is ignored).
        """
        question = "" if question is None else str(question)
        shown = render_chat(turns, bot.persona) + [user_message(question)]
        yield "", shown, turns
        try:
            answer = safe_answer(question, chat_history(turns), request)
            turns = turns + [{"question": question, "answer": answer}]
            # The box is left alone: the fan may already be typing the next question.
            yield gr.skip(), render_chat(turns, bot.persona), turns
        except Exception:  # noqa: BLE001 - the fan gets an apology, the log the details
            log.exception("Showing an answer failed.")
            apology = {"role": "assistant", "content": as_text(bot.persona.say(bot.persona.error))}
            yield gr.skip(), shown + [apology], turns

    def picked(event: gr.SelectData, turns, request: gr.Request):
        """An example question or a suggested one was clicked: ask it."""
        value = event.value
        question = (value.get("text") or value.get("value") or "") if isinstance(value, dict) else str(value or "")
        yield from respond(question, turns, request)

    def new_chat():
        return [], [], ""

    def ask(question: str, history: list[dict] | None = None, request: gr.Request = None) -> dict:
        """Answer a fan's question from the artist's documents.

        Returns a dict with ``text`` (the answer, or a refusal in the persona's
        voice), ``refused`` (True when the documents don't say), ``kind``,
        ``confidence`` and ``citations`` (the quoted passages: source file,
        character offsets, sentence and its context).
        """
        clean_history = [
            {"role": str(m.get("role")), "content": m["content"][:HISTORY_MESSAGE_CHARS]}
            for m in (history if isinstance(history, list) else [])
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        ][-HISTORY_MESSAGES:]
        question = "" if question is None else str(question)
        return safe_answer(question, clean_history, request).to_dict()

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

        gr.api(ask, api_name="ask", concurrency_limit=CONCURRENCY_LIMIT)

    # Every question goes through the queue (api_open=False closes the REST
    # routes that would skip it), so the concurrency limit and the queue's
    # bound hold for the page and the API alike.
    app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE, api_open=False,
              status_update_rate=QUEUE_STATUS_SECONDS)
    _without_event_analytics(app)
    _bounded_queue_bookkeeping(app)
    return app


class _PrunedSessions(dict):
    """Gradio's map of session -> its events still to deliver, forgetting sessions that are done.

    Gradio 6 empties a session's set when its last answer is delivered but
    keeps the key, so a server answering API calls (each without a session of
    its own is a new one) grows by a few hundred bytes a question, forever.
    This drops the emptied sessions whose message queue Gradio has dropped
    too, whenever the map has doubled; it runs where every other use of the
    map runs, on the server's event loop.
    """

    def __init__(self, queue, *args):
        super().__init__(*args)
        self._queue = queue
        self._limit = 4096

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if len(self) > self._limit:
            live = self._queue.pending_messages_per_session
            for done in [k for k, events in self.items() if not events and k not in live]:
                super().__delitem__(done)
            self._limit = max(4096, 2 * len(self))


def _bounded_queue_bookkeeping(app: gr.Blocks) -> None:
    """Keep Gradio's per-session bookkeeping from growing with every API call."""
    queue = getattr(app, "_queue", None)
    sessions = getattr(queue, "pending_event_ids_session", None)
    if type(sessions) is dict and hasattr(queue, "pending_messages_per_session"):
        queue.pending_event_ids_session = _PrunedSessions(queue, sessions)
    else:
        log.debug("This Gradio's queue keeps its sessions in another way; left as it is.")


def _without_event_analytics(app: gr.Blocks) -> None:
    """Stop Gradio's queue from keeping statistics for its monitoring dashboard (which is off).

    Gradio 6 keeps the last 10,000 events and, after every event, sums them up
    with pandas: memory that grows with the first 10,000 questions and a
    summary over all of them after each answer. The chat never shows it.
    """
    queue = getattr(app, "_queue", None)
    if queue is not None and hasattr(queue, "ANALYTICS_MAX_EVENTS") and hasattr(queue, "ANAYLTICS_CACHE_FREQUENCY"):
        queue.ANALYTICS_MAX_EVENTS = 1
        queue.ANAYLTICS_CACHE_FREQUENCY = 2**62
    else:
        log.debug("This Gradio's queue keeps its event statistics in another way; left as it is.")


class ServeError(RuntimeError):
    """The chat cannot be served (the address or port is unavailable, or a setting is wrong)."""


#: Login attempts one client may make a minute when a password is set.
LOGIN_ATTEMPTS_PER_MINUTE = 10


class LoginThrottle:
    """ASGI middleware: at most ``limiter.per_minute`` login attempts a minute per client.

    Gradio's login form has no limit of its own; this keeps one client from
    trying passwords at the server's speed.
    """

    def __init__(self, app, limiter: RateLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "POST" and scope["path"].rstrip("/").endswith("/login"):
            client = scope.get("client")
            if not self.limiter.allow(client[0] if client else "unknown"):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    {"detail": "Too many login attempts. Please wait a minute and try again."},
                    status_code=429,
                    headers={"Retry-After": "60"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def parse_auth(accounts: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """``["USER:PASSWORD", ...]`` as Gradio's list of ``(user, password)``; the password may hold colons."""
    parsed = []
    for account in accounts:
        user, colon, password = account.partition(":")
        if not colon or not user.strip() or not password:
            raise ServeError("--auth (or BOT_AUTH) must be USER:PASSWORD, with a user name and a password.")
        parsed.append((user.strip(), password))
    return parsed


def launch_settings(auth: list[tuple[str, str]] | None) -> dict:
    """Keyword arguments for ``launch()`` beyond the address: the password, when there is one.

    (:meth:`ChatApp.launch` adds the login throttle whenever there is a password.)
    """
    if not auth:
        return {}
    return {"auth": auth, "auth_message": "This chat is private. Please sign in."}


def serve(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: list[tuple[str, str]] | None = None,
    rate_limit: int = DEFAULT_RATE_LIMIT,
) -> None:
    """Build or update the index, then serve the chat until interrupted, watching the seeds.

    ``auth``: accounts whose password the page and the API require (None:
    open to anyone who can reach ``host``). ``rate_limit``: questions per
    minute per client (0: no limit).
    """
    started = time.perf_counter()
    bot = Bot(config)
    bot.ensure_index()
    bot.retrieve("warm up", k=1)  # load the model now, not on the first fan's question
    status = IndexStatus()
    watcher = SeedWatcher(bot, status)
    _check_index_is_current(bot, watcher)
    watcher.start()
    app = build_app(bot, status, RateLimiter(rate_limit))
    if threading.current_thread() is threading.main_thread():
        # Stop cleanly on SIGTERM (a service manager, a test) as on Ctrl+C.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            app.launch(server_name=host, server_port=port, prevent_thread_lock=True, show_error=False, quiet=True,
                       **launch_settings(auth))
        except OSError as error:
            log.debug("Launching failed: %s", error)
            raise ServeError(
                f"Cannot listen on {host}:{port}: the port is in use or the address is not available. "
                "Choose another with --port."
            ) from None
        log.info("Ready to chat after %.1fs: http://%s:%d/", time.perf_counter() - started, host, port)
        log.info(
            "Password: %s. Rate limit: %s.",
            f"required ({len(auth)} account{'s' if len(auth) != 1 else ''})" if auth else "none",
            f"{rate_limit} questions a minute per client" if rate_limit else "none",
        )
        if host not in LOOPBACK and not auth:
            log.warning("Listening on %s: anyone who can reach this machine can use the chat "
                        "(--auth USER:PASSWORD makes it private).", host)
        app.block_thread()  # until Ctrl+C or SIGTERM
    finally:
        watcher.stop()
        log.info("Stopped.")


def _check_index_is_current(bot: Bot, watcher: SeedWatcher) -> None:
    """After start-up: when the index is behind the seeds and cannot be rewritten, say so (log and page)."""
    index = bot.loaded_index
    try:
        behind = index is not None and stale_files(index, load_seeds(bot.config.seeds_dir, bot.config.max_seed_bytes))
    except NoSeedsError as error:
        watcher.failed(update_problem(error, bot.config))
        return
    if behind:
        problem = index_write_problem(bot.config.index_dir) or "the index could not be updated (see the log)"
        watcher.failed(problem)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
