"""While a build runs, ``bot ask`` and ``bot serve`` answer from the current index (issue 15, item 6).

A big seed takes minutes to build; meanwhile ``bot ask`` waited on the build
lock and ``bot serve`` did not listen. Here another process's build is
stood in for by holding the build lock (``index/.lock``) from the test; the
bots, the model and the index are real. That a build holds one block of
vectors at a time is tested in test_index_build_blocks.py.
"""

from __future__ import annotations

import fcntl
import logging
import subprocess
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from bot.serve.watch import IndexStatus, status_html

from conftest import DOMBRA, SEEDS, bot_command, bot_env, copy_seeds, free_port

NEW_FACT = "Sezim keeps a tame snow leopard called Barys in her studio.\n"


@contextmanager
def build_running_elsewhere(index_dir):
    """Hold the index's build lock, as another process building the index does."""
    with open(index_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def test_bot_ask_answers_from_the_current_index_while_another_process_builds(tmp_path, make_bot, caplog):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    make_bot(seeds, tmp_path / "index").ensure_index()
    (seeds / "leopard.txt").write_text(NEW_FACT, encoding="utf-8")  # the index is now behind
    replies = []
    asker = make_bot(seeds, tmp_path / "index")  # a fresh process, as `bot ask`

    def ask():
        asker.ensure_index()
        replies.append(asker.answer(DOMBRA))

    with caplog.at_level(logging.WARNING), build_running_elsewhere(tmp_path / "index"):
        thread = threading.Thread(target=ask, daemon=True)
        thread.start()
        thread.join(60)
        waited = thread.is_alive()
    thread.join(60)
    assert not waited, "bot ask waited for the other build"
    assert "grandmother" in replies[0].text
    assert any("Another process is updating the index" in r.getMessage() for r in caplog.records)


def test_bot_serve_listens_while_another_process_builds_then_follows(tmp_path, make_bot):
    httpx = pytest.importorskip("httpx")
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    make_bot(seeds, tmp_path / "index").ensure_index()
    (seeds / "leopard.txt").write_text(NEW_FACT, encoding="utf-8")
    port = free_port()
    log_path = tmp_path / "serve.log"
    with build_running_elsewhere(tmp_path / "index"):
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*bot_command(), "serve", "--seeds", "seeds", "--index", "index", "--port", str(port), "-v"],
                cwd=tmp_path, env={**bot_env()}, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            deadline, listening = time.monotonic() + 120, False
            while time.monotonic() < deadline and process.poll() is None and not listening:
                try:
                    listening = httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).status_code == 200
                except httpx.HTTPError:
                    time.sleep(0.5)
            assert listening, log_path.read_text()
        except BaseException:
            process.kill()
            raise
    try:  # the other build is done: the server catches up
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "Now answering from the updated index" not in log_path.read_text():
            time.sleep(0.5)
        assert "Now answering from the updated index" in log_path.read_text(), log_path.read_text()
    finally:
        process.terminate()
        process.wait(20)
    assert "Traceback" not in log_path.read_text()


def test_the_status_line_says_an_update_is_running(sezim_bot):
    status = IndexStatus()
    status.update_running(True)
    assert "Updating the index" in status_html(sezim_bot, status)
    status.update_running(False)
    assert "Updating the index" not in status_html(sezim_bot, status)


def test_a_big_build_says_how_far_it_got_and_the_time_left(tmp_path, embedder, monkeypatch, caplog):
    from bot import Config
    from bot import index as index_module
    from bot.index import build as index_build

    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    whole = index_module.update_index(Config(seeds_dir=seeds, index_dir=tmp_path / "whole"), embedder)
    monkeypatch.setattr(index_build, "EMBED_BLOCK", 8)  # a small seed embedded as a big one is
    monkeypatch.setattr(index_build, "PROGRESS_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="bot.index"):
        blocks = index_module.update_index(Config(seeds_dir=seeds, index_dir=tmp_path / "blocks"), embedder)
    lines = [r.getMessage() for r in caplog.records if "Embedding the seeds" in r.getMessage()]
    assert lines and all(" of 30 sentences and windows" in line and "min left" in line for line in lines), lines
    assert whole.chunks == blocks.chunks == 15
    one = index_module.load_index(tmp_path / "whole")
    other = index_module.load_index(tmp_path / "blocks")
    assert np.allclose(np.asarray(one.vectors), np.asarray(other.vectors), atol=1e-4)
