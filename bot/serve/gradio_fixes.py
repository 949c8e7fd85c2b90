"""Every change this server makes to Gradio's private internals, in one place.

Gradio offers no setting for these, so each one reaches into its queue. Private
internals change between Gradio's major versions without notice, so each fix
applies only to the major version it was written and tested for
(:data:`WRITTEN_FOR`); on any other it is left out with a warning, and the
server runs with Gradio as it is (it still works, only its memory grows). When
Gradio is upgraded, check each fix against the new version and move
:data:`WRITTEN_FOR`.

Everything else the server asks of Gradio goes through its public API
(``launch()``'s settings, ``queue()``, events): see :mod:`bot.serve.app`.
"""

import contextlib
import logging

import gradio as gr

log = logging.getLogger(__name__)

#: The Gradio major version whose internals the fixes below were written for.
WRITTEN_FOR = 6


def gradio_major() -> int:
    """The major version of the Gradio installed (0 when it cannot be read)."""
    major = gr.__version__.split(".")[0]
    return int(major) if major.isdigit() else 0


def apply_fixes(app: gr.Blocks) -> None:
    """Apply every fix to ``app``, whose queue is set up already (after ``app.queue(...)``)."""
    if gradio_major() != WRITTEN_FOR:
        log.warning(
            "Gradio %s: the fixes to its queue's memory were written for Gradio %d and are left out "
            "(see bot/serve/gradio_fixes.py).", gr.__version__, WRITTEN_FOR,
        )
        return
    _without_event_analytics(app)
    _bounded_queue_bookkeeping(app)


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
        log.warning("This Gradio's queue keeps its sessions in another way; left as it is.")


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
        log.warning("This Gradio's queue keeps its event statistics in another way; left as it is.")


@contextlib.contextmanager
def uvicorn_settings(settings: dict):
    """While a ``launch()`` runs inside this, the uvicorn server Gradio starts gets ``settings``.

    Gradio makes uvicorn's ``Config`` itself, with no way to pass settings
    (timeouts, the HTTP protocol, a connection cap: see
    :mod:`bot.serve.connections`); its ``http_server.Server`` is swapped for a
    subclass that sets them on the config before the server starts.
    """
    from gradio import http_server

    original = getattr(http_server, "Server", None)
    if gradio_major() != WRITTEN_FOR or original is None or not hasattr(original, "run_in_thread"):
        log.warning("Gradio %s starts its server in another way: the connection limits are left out "
                    "(see bot/serve/gradio_fixes.py).", gr.__version__)
        yield
        return

    class ConfiguredServer(original):
        def __init__(self, config, *args, **kwargs):
            for name, value in settings.items():
                setattr(config, name, value)
            super().__init__(config, *args, **kwargs)

    http_server.Server = ConfiguredServer
    try:
        yield
    finally:
        http_server.Server = original
