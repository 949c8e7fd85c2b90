"""Every server on one index folder follows ``index/CURRENT`` (issue 15, item 4).

With two ``bot serve`` on the same ``seeds/`` and ``index/`` (several behind a
load balancer), the one that lost the build lock found the index current and
kept answering from its old generation for ever. Two real bots over one
folder stand for the two servers here (the model is shared to save time).
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("watchfiles")

from bot.index import current_generation  # noqa: E402
from bot.serve.watch import IndexStatus, SeedWatcher  # noqa: E402

from conftest import SEEDS, copy_seeds  # noqa: E402

NEW_FACT = "Sezim keeps a tame snow leopard called Barys in her studio.\n"
QUESTION = "What is the name of Sezim's snow leopard?"


@pytest.fixture
def two_servers(tmp_path, make_bot):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    first, second = make_bot(seeds, tmp_path / "index"), make_bot(seeds, tmp_path / "index")
    first.ensure_index()
    second.ensure_index()
    assert first.loaded_index.path == second.loaded_index.path
    return seeds, first, second


def test_the_server_that_lost_the_build_lock_loads_the_new_generation(two_servers):
    seeds, first, second = two_servers
    (seeds / "leopard.txt").write_text(NEW_FACT, encoding="utf-8")
    first.update()  # the first server took the lock and built
    report = second.update()  # the second then finds nothing to do ...
    assert not report.changed_anything
    watcher = SeedWatcher(second, IndexStatus())
    assert watcher.follow_current()  # ... and follows CURRENT
    assert second.loaded_index.path == current_generation(first.config.index_dir)
    assert "Barys" in second.answer(QUESTION).text
    assert not watcher.follow_current()  # nothing more to follow
    assert watcher.status.version == 1 and "another process" in watcher.status.summary


def test_a_running_watcher_follows_a_generation_built_elsewhere(two_servers):
    seeds, first, second = two_servers
    old = second.loaded_index.path
    # The first server builds from a seed before this one's watcher looks, so that
    # watcher sees no change in the seeds: only the new CURRENT.
    (seeds / "leopard.txt").write_text(NEW_FACT, encoding="utf-8")
    first.update()
    watcher = SeedWatcher(second, IndexStatus(), debounce_ms=300, quiet_ms=50, follow_seconds=0.3).start()
    try:
        deadline = time.monotonic() + 20
        while second.loaded_index.path == old and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watcher.stop()
    assert second.loaded_index.path == current_generation(first.config.index_dir) != old
    assert "Barys" in second.answer(QUESTION).text


def test_a_generation_that_cannot_be_loaded_is_not_followed(two_servers, tmp_path):
    _, first, second = two_servers
    index_dir = first.config.index_dir
    (index_dir / "gen-broken").mkdir()
    (index_dir / "CURRENT").write_text("gen-broken", encoding="utf-8")
    watcher = SeedWatcher(second, IndexStatus())
    before = second.loaded_index.path
    assert not watcher.follow_current()
    assert second.loaded_index.path == before
    assert second.answer(QUESTION).refused  # still answering, from the generation it had
