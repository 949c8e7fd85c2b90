"""The fixes to Gradio's internals.

Applied on the Gradio they were written for, left out (with a warning) on another.
"""

import logging

import gradio as gr

from bot.serve import gradio_fixes


def queued_app() -> gr.Blocks:
    with gr.Blocks() as app:
        gr.Markdown("A page.")
    app.queue()
    return app


def test_written_for_the_installed_gradio():
    # Moving to another Gradio major means checking each fix against it first.
    assert gradio_fixes.gradio_major() == gradio_fixes.WRITTEN_FOR


def test_the_fixes_apply_to_this_gradio():
    app = queued_app()
    gradio_fixes.apply_fixes(app)
    queue = app._queue
    assert queue.ANALYTICS_MAX_EVENTS == 1
    assert isinstance(queue.pending_event_ids_session, gradio_fixes._PrunedSessions)


def test_finished_sessions_are_forgotten_live_ones_kept():
    app = queued_app()
    gradio_fixes.apply_fixes(app)
    queue = app._queue
    sessions = queue.pending_event_ids_session
    queue.pending_messages_per_session["live"] = object()
    sessions["live"] = set()
    sessions["waiting"] = {"event"}
    for n in range(5000):
        sessions[f"done-{n}"] = set()
    assert "live" in sessions and "waiting" in sessions
    assert len(sessions) < 5000  # the emptied sessions Gradio has dropped are gone


def test_left_out_with_a_warning_on_another_gradio(monkeypatch, caplog):
    monkeypatch.setattr(gr, "__version__", "7.0.0")
    app = queued_app()
    before = app._queue.pending_event_ids_session
    with caplog.at_level(logging.WARNING, logger="bot.serve.gradio_fixes"):
        gradio_fixes.apply_fixes(app)
    assert app._queue.pending_event_ids_session is before
    assert app._queue.ANALYTICS_MAX_EVENTS != 1
    assert any("written for Gradio 6" in r.getMessage() for r in caplog.records)
