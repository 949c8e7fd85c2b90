"""The browser chat's Gradio wiring: a page and a named API over one :class:`~bot.core.Bot`.

What a fan sees: the persona's name and greeting, example questions to click,
answers as chat messages with their sources folded away under each answer,
and friendly refusals that offer questions the bot can answer. The same
answer function is the named API endpoint ``/ask`` for ``gradio_client``.

What each event does is a method of :class:`ChatHandlers`, plain Python that
tests call directly; :func:`build_app` only lays out the page and connects
the events to those methods. :class:`ChatApp` launches it locked down: no file
from disk is served, nothing is uploaded, request bodies and login attempts
are limited (:mod:`bot.serve.guard`).
"""

import logging
import os
import time
from pathlib import Path

import gradio as gr

from ..answer import Answer
from ..core import Bot
from ..feedback.store import QuestionLog
from ..persona import Persona
from . import connections, gradio_fixes
from .gate import QueueGate, QueueGuard
from .guard import (
    LOGIN_ATTEMPTS_PER_MINUTE,
    MAX_REQUEST_BYTES,
    BodyLimit,
    LoginThrottle,
    client_of,
)
from .ratelimit import RateLimiter
from .render import (
    CSS,
    answer_messages,
    api_history,
    as_text,
    chat_history,
    header_html,
    placeholder_markdown,
    render_chat,
    user_message,
)
from .routes import KnownRoutes, OptionalHistory, PrivateUntilLogin
from .watch import IndexStatus, status_html

log = logging.getLogger(__name__)

#: Seconds between the page's checks for a fresh index.
STATUS_POLL_SECONDS = 2.0

# The queue, chosen with ``bot loadtest`` (figures in the README's "Running it
# in public"): one server process answers about as many questions a second
# whatever the number run at once, since Gradio's own work per request, on its
# one event-loop thread, costs more than the answer.
#: Answers run at once (per event: the chat and /ask each). A few, so a slow
#: question does not hold up the others, without a thread per waiting fan.
CONCURRENCY_LIMIT = 4
#: Questions that may wait in the queue (a few seconds' work); more are turned
#: away at once ("queue full") instead of waiting minutes behind a spike, and
#: the memory for waiting requests stays bounded.
QUEUE_MAX_SIZE = 256
#: Seconds between queue-position updates to waiting clients. Gradio's default
#: ("auto") tells every waiting client its new place each time an answer
#: starts, n messages per answer with n waiting, for a position the chat
#: never shows (its progress display is hidden).
QUEUE_STATUS_SECONDS = 5.0
#: Sessions whose state Gradio keeps in memory (its ``state_session_capacity``,
#: 10,000 by default): each chat tab is one, and so is every API call that
#: brings no session of its own (plain HTTP; gradio_client keeps one). Fewer
#: bound the server's memory; a fan's chat is forgotten only after 2,000 newer
#: sessions (the next question starts a fresh chat, nothing breaks).
STATE_SESSIONS = 2000

THEME = gr.themes.Soft(
    primary_hue="amber",
    secondary_hue="teal",
    neutral_hue="stone",
    # System fonts: the page loads nothing from other sites.
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)

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
    """The chat's Blocks; ``launch()`` applies its theme, styles and :data:`LOCKED_DOWN` by default.

    Only ``launch()``'s public settings are used here, never Gradio's
    internals (those are in :mod:`bot.serve.gradio_fixes`): they hold on
    every Gradio version, so the lock-down is never left out.
    """

    def launch(self, *args, connection_limits: connections.ConnectionLimits | None = None, **kwargs):
        """Gradio's ``launch()``, locked down, guarded, and with :mod:`.connections`'s limits."""
        from starlette.middleware import Middleware

        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("footer_links", ["api"])
        for name, value in LOCKED_DOWN.items():
            kwargs.setdefault(name, value)
        middleware = [Middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)]
        if kwargs.get("auth"):
            middleware.append(Middleware(LoginThrottle, limiter=RateLimiter(LOGIN_ATTEMPTS_PER_MINUTE)))
            middleware.append(Middleware(PrivateUntilLogin))
        api_names = {fn.api_name for fn in self.fns.values() if fn.api_name}
        middleware.append(Middleware(KnownRoutes, api_names=api_names, fn_ids=set(self.fns)))
        handlers = getattr(self, "chat_handlers", None)
        if handlers is not None:  # over its rate limit, a client is answered at the door, not queued
            middleware.append(Middleware(QueueGuard, gate=handlers.gate, slow_down=handlers.slow_down))
        middleware.append(Middleware(OptionalHistory))
        app_kwargs = dict(kwargs.get("app_kwargs") or {})
        app_kwargs["middleware"] = [*middleware, *app_kwargs.get("middleware", [])]
        # FastAPI's own /openapi.json describes every route, and no password guards it
        # (Gradio's /gradio_api/openapi.json, which does, stays).
        app_kwargs.setdefault("openapi_url", None)
        kwargs["app_kwargs"] = app_kwargs
        connections.quiet_repeated_logs()
        with gradio_fixes.uvicorn_settings(connections.uvicorn_settings(connection_limits)):
            return super().launch(*args, **kwargs)


class ChatHandlers:
    """What the page and the API do for a fan, one method per event.

    ``status`` is shared with a :class:`~bot.serve.watch.SeedWatcher` so the
    page can show live updates; without one the page just shows the index in
    use. ``rate_limit`` caps the questions of each client (chat and API
    together); None: no cap. ``question_log`` records every question answered
    and the fans' thumbs up/down (None: nothing is recorded). A chat's
    ``turns`` are ``{"question", "answer", "log_id"}`` dicts, kept in the
    page's session state.
    """

    def __init__(self, bot: Bot, status: IndexStatus | None = None, rate_limit: RateLimiter | None = None,
                 question_log: QuestionLog | None = None):
        self.bot = bot
        self.question_log = question_log
        self.status = status or IndexStatus()
        self.limiter = rate_limit if rate_limit is not None else RateLimiter(0)
        #: The queue's door (:class:`~.gate.QueueGuard`) counts each client's waiting questions here.
        self.gate = QueueGate(self.limiter)

    def slow_down(self) -> dict:
        """The answer to a client over its rate limit, as the API gives it."""
        voice = self.bot.persona
        return Answer(text=voice.say(voice.slow_down), refused=True, kind="rate_limited").to_dict()

    def answer(self, question: str, history: list[dict], request: gr.Request | None = None) -> Answer:
        """The bot's answer, a friendly "slow down" over the rate limit, or an apology if answering failed."""
        client = client_of(request)
        self.gate.started(client)
        if client is not None and not self.limiter.allow(client):
            self.gate.notice(client)
            voice = self.bot.persona
            return Answer(text=voice.say(voice.slow_down), refused=True, kind="rate_limited")
        try:
            return self.bot.answer(question, history)
        except Exception:  # the fan gets an apology, the log the details
            log.exception("Answering a question failed.")
            return Answer(text=self.bot.persona.say(self.bot.persona.error), refused=True, kind="error")

    def respond(self, question, turns, request: gr.Request):
        """Show the fan's message at once, then the answer with its sources.

        Yields (question box, chat messages, turns). One event per question,
        so the conversation is only ever extended by the question being
        answered (a second Enter meanwhile is ignored).
        """
        persona = self.bot.persona
        question = "" if question is None else str(question)
        if not question.strip():  # nothing asked: no empty bubble, only the box cleared
            yield "", render_chat(turns, persona), turns
            return
        shown = render_chat(turns, persona) + [user_message(question)]
        yield "", shown, turns
        try:
            answer, log_id = self.answer_logged(question, chat_history(turns), request, len(turns), "chat")
            turns = turns + [{"question": question, "answer": answer, "log_id": log_id}]
            # The box is left alone: the fan may already be typing the next question.
            yield gr.skip(), render_chat(turns, self.bot.persona), turns
        except Exception:  # the fan gets an apology, the log the details
            log.exception("Showing an answer failed.")
            apology = {"role": "assistant", "content": as_text(self.bot.persona.say(self.bot.persona.error))}
            yield gr.skip(), shown + [apology], turns

    def picked(self, event: gr.SelectData, turns, request: gr.Request):
        """An example question or a suggested one was clicked: ask it."""
        value = event.value
        question = (value.get("text") or value.get("value") or "") if isinstance(value, dict) else str(value or "")
        yield from self.respond(question, turns, request)

    def new_chat(self):
        """An empty chat: (chat messages, turns, question box)."""
        return [], [], ""

    def ask(self, question: str, history: list[dict] | None = None, request: gr.Request = None) -> dict:
        """Answer a fan's question from the artist's documents.

        Returns a dict with ``text`` (the answer, or a refusal in the persona's
        voice), ``refused`` (True when the documents don't say), ``kind``,
        ``confidence`` and ``citations`` (the quoted passages: source file,
        character offsets, sentence and its context).
        """
        question = "" if question is None else str(question)
        history = api_history(history)
        earlier = sum(message["role"] == "user" for message in history)
        return self.answer_logged(question, history, request, earlier, "api")[0].to_dict()

    # -- the question log ------------------------------------------------

    def answer_logged(self, question: str, history: list[dict], request, turns: int, via: str):
        """:meth:`answer`, recorded in the question log: (answer, the log row's id or None)."""
        started = time.perf_counter()
        answer = self.answer(question, history, request)
        if self.question_log is None:
            return answer, None
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            return answer, self.question_log.record(question, answer, turns, latency_ms, via)
        except Exception:  # the log never costs a fan the answer
            log.exception("Logging a question failed.")
            return answer, None

    def liked(self, event: gr.LikeData, turns):
        """A fan's thumbs up or down (or taking it back) on an answer: recorded on that question's row."""
        if self.question_log is None or not isinstance(event.index, int):
            return
        turn = turn_of_message(turns, event.index, self.bot.persona)
        if turn is not None:
            liked = event.liked if isinstance(event.liked, bool) else None  # "": the thumb was taken back
            self.question_log.feedback(turn.get("log_id"), liked)

    def page_load(self):
        """Fresh persona and index status for each visitor: (header, chat, status line, status version)."""
        persona = self.bot.persona
        return (
            header_html(persona),
            gr.Chatbot(
                placeholder=placeholder_markdown(persona),
                examples=[{"text": q} for q in persona.example_questions],
            ),
            status_html(self.bot, self.status),
            self.status.version,
        )

    def poll_status(self, seen):
        """The status line again when the index changed since version ``seen``: (status line, version)."""
        if seen == self.status.version:
            return gr.skip(), gr.skip()
        return status_html(self.bot, self.status), self.status.version


def build_app(bot: Bot, status: IndexStatus | None = None, rate_limit: RateLimiter | None = None,
              question_log: QuestionLog | None = None) -> gr.Blocks:
    """The Gradio app for ``bot``: the chat, the ``/ask`` API, and the index status line.

    ``status``, ``rate_limit`` and ``question_log``: see :class:`ChatHandlers`.
    """
    handlers = ChatHandlers(bot, status, rate_limit, question_log)
    persona = bot.persona
    with ChatApp(title=f"{persona.bot_name} · {persona.artist_name}", analytics_enabled=False) as app:
        app.chat_handlers = handlers
        turns = gr.State([])
        seen_version = gr.State(-1)

        header = gr.HTML(header_html(persona), elem_id="bot-header")
        chatbot = _chatbot(persona)
        question_box = _question_box(persona)
        with gr.Row(elem_id="status-row"):
            status_line = gr.HTML(status_html(bot, handlers.status), elem_id="index-status")
            clear_button = gr.Button("New chat", size="sm", variant="secondary", elem_id="new-chat", scale=0)
        timer = gr.Timer(STATUS_POLL_SECONDS)

        # The page's own events are not part of the API: only /ask is.
        private = {"api_visibility": "private"}
        outputs = [question_box, chatbot, turns]
        chat_events = {"show_progress": "hidden", "trigger_mode": "once", **private}
        question_box.submit(handlers.respond, [question_box, turns], outputs, **chat_events)
        chatbot.example_select(handlers.picked, [turns], outputs, **chat_events)
        chatbot.option_select(handlers.picked, [turns], outputs, **chat_events)
        cleared = [chatbot, turns, question_box]
        clear_button.click(handlers.new_chat, None, cleared, queue=False, **private)
        chatbot.clear(handlers.new_chat, None, cleared, queue=False, **private)
        if question_log is not None:  # the thumbs show only with a like event, and only a log keeps them
            chatbot.like(handlers.liked, [turns], None, queue=False, show_progress="hidden", **private)
        timer.tick(handlers.poll_status, seen_version, [status_line, seen_version], show_progress="hidden",
                   queue=False, **private)
        app.load(handlers.page_load, None, [header, chatbot, status_line, seen_version], queue=False, **private)

        gr.api(handlers.ask, api_name="ask", concurrency_limit=CONCURRENCY_LIMIT)

    # Every question goes through the queue (api_open=False closes the REST
    # routes that would skip it), so the concurrency limit and the queue's
    # bound hold for the page and the API alike.
    app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE, api_open=False,
              status_update_rate=QUEUE_STATUS_SECONDS)
    gradio_fixes.apply_fixes(app)
    return app


def _chatbot(persona: Persona) -> gr.Chatbot:
    """The chat itself, in the page being laid out: shows only text escaped by :mod:`.render`."""
    return gr.Chatbot(
        value=[],
        elem_id="chat",
        show_label=False,
        # The page's height less the header, question box and status line, so
        # that all of it fits a phone's screen (and a desktop's) without scrolling.
        height="calc(100dvh - 360px)",
        min_height=300,
        layout="bubble",
        placeholder=placeholder_markdown(persona),
        examples=[{"text": q} for q in persona.example_questions],
        # Everything shown is escaped already; keep Gradio's own safety net too.
        sanitize_html=True,
        allow_tags=False,
        latex_delimiters=[],
        buttons=[],
        # Thumbs up/down under each answer, recorded in the question log.
        feedback_options=("Like", "Dislike"),
        group_consecutive_messages=True,
    )


def _question_box(persona: Persona) -> gr.Textbox:
    """Where the fan types, in the page being laid out."""
    return gr.Textbox(
        placeholder=f"Ask about {persona.artist_name}…",
        show_label=False,
        lines=1,
        max_lines=5,
        # No autofocus: on a phone the focused box scrolls the page past the
        # bot's name and opens the keyboard before the fan has read anything.
        autofocus=False,
        submit_btn="Ask",
        elem_id="question",
    )


def turn_of_message(turns: list[dict], index: int, persona: Persona) -> dict | None:
    """The turn that chat message number ``index`` belongs to (as :func:`.render.render_chat` lays them out)."""
    first = 0
    for turn in turns:
        count = 1 + len(answer_messages(turn["answer"], persona))  # the question, then the answer's messages
        if first <= index < first + count:
            return turn
        first += count
    return None
