"""Running the chat: ``bot serve``'s start-up, logs and shutdown.

Running in public (see the README's "Running it in public"): ``serve`` can
require a password (Gradio's login, ``--auth``), limits how many questions each
client may ask a minute (:class:`~bot.serve.ratelimit.RateLimiter`; over the
limit the fan gets a friendly line in the persona's voice), and launches Gradio
so that it serves no file from disk at all (:data:`~bot.serve.app.LOCKED_DOWN`).
Nothing in the page or the API changes the index: it follows the files in
``seeds/`` only, so there is no index action to put behind the password.
"""

import logging
import signal
import threading
import time
from pathlib import Path

from ..config import Config
from ..core import Bot
from ..feedback.store import DEFAULT_KEEP_DAYS, QuestionLog
from ..index import IndexUnavailable, load_index, settings_of
from ..lexicon import load_related_words
from .guard import LOOPBACK, ServeError, launch_settings
from .ratelimit import DEFAULT_RATE_LIMIT, RateLimiter
from .watch import IndexStatus, SeedWatcher, check_index_is_current

log = logging.getLogger(__name__)


def serve(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: list[tuple[str, str]] | None = None,
    rate_limit: int = DEFAULT_RATE_LIMIT,
    log_path: Path | None = None,
    log_days: int = DEFAULT_KEEP_DAYS,
    started: float | None = None,
) -> None:
    """Build or update the index, then serve the chat until interrupted, watching the seeds.

    ``auth``: accounts whose password the page and the API require (None:
    open to anyone who can reach ``host``). ``rate_limit``: questions per
    minute per client (0: no limit). ``log_path``: the question log's file
    (None: no log); rows older than ``log_days`` days are deleted (0: none).
    ``started``: when the process started, on the ``time.perf_counter`` clock
    (the "ready" figure counts from it; None: from now).
    """
    started = time.perf_counter() if started is None else started
    log.info("Loading the index of %s and the embedding model…", config.seeds_dir)
    bot, status, watcher = _while_gradio_loads(_start_bot, config)
    from .app import build_app  # imported by now

    question_log = QuestionLog.open(log_path, log_days) if log_path is not None else None
    app = build_app(bot, status, RateLimiter(rate_limit), question_log)
    if threading.current_thread() is threading.main_thread():
        # Stop cleanly on SIGTERM (a service manager, a test) as on Ctrl+C.
        signal.signal(signal.SIGTERM, _interrupt)
    # An IPv6 address goes in brackets wherever it becomes part of a URL (Gradio checks its own).
    listen = f"[{host}]" if ":" in host and not host.startswith("[") else host
    try:
        try:
            app.launch(server_name=listen, server_port=port, prevent_thread_lock=True, show_error=False, quiet=True,
                       **launch_settings(auth))
        except OSError as error:
            log.debug("Launching failed: %s", error)
            raise ServeError(
                f"Cannot listen on {host}:{port}: the port is in use or the address is not available. "
                "Choose another with --port."
            ) from None
        log.info("Ready to chat after %.1fs (since the process started): http://%s:%d/",
                 time.perf_counter() - started, listen, port)
        log.info(
            "Password: %s. Rate limit: %s.",
            f"required ({len(auth)} account{'s' if len(auth) != 1 else ''})" if auth else "none",
            f"{rate_limit} questions a minute per client" if rate_limit else "none",
        )
        log.info("Question log: %s.", _log_line(question_log, log_days))
        if host not in LOOPBACK and not auth:
            log.warning("Listening on %s: anyone who can reach this machine can use the chat "
                        "(--auth USER:PASSWORD makes it private).", listen)
        app.block_thread()  # until Ctrl+C or SIGTERM
    finally:
        watcher.stop()
        if question_log is not None:
            question_log.close()
        log.info("Stopped.")


def _start_bot(config: Config) -> tuple[Bot, IndexStatus, SeedWatcher]:
    """The bot with an index to answer from, and the seed watcher (started) that keeps it current."""
    bot = Bot(config)
    try:
        # An index there is already: serve it at once, and bring it up to date in the
        # background (a big seed can take minutes, or another process may be building).
        bot.use_index(load_index(config.index_dir, settings_of(config)))
        update_first = True
    except IndexUnavailable:
        bot.ensure_index()  # nothing to answer from yet: build it first
        update_first = False
    bot.retrieve("warm up", k=1)  # load the model now, not on the first fan's question
    load_related_words()  # and WordNet's table, read on the first word the seeds never use
    status = IndexStatus()
    watcher = SeedWatcher(bot, status)
    if not update_first:
        check_index_is_current(bot, watcher)
    watcher.start(update_first=update_first)
    return bot, status, watcher


def _while_gradio_loads(work, *args):
    """``work(*args)`` in a thread while this one imports Gradio: the two take seconds each,
    mostly in native code, so on two cores a start takes about the longer of them, not their sum."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = work(*args)
        except BaseException as error:  # noqa: BLE001 - raised again below, in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="bot-start", daemon=True)
    worker.start()
    from . import app  # noqa: F401 - the import is the point: Gradio, while the bot loads

    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _log_line(question_log: QuestionLog | None, log_days: int) -> str:
    if question_log is None:
        return "off"
    kept = f"kept {log_days} days" if log_days > 0 else "kept until deleted"
    return f"{question_log.path.absolute()} ({kept}; `bot report` reads it)"


def _interrupt(signum, frame):
    """SIGTERM stops the server the way Ctrl+C does, through ``block_thread``'s own handling."""
    raise KeyboardInterrupt
