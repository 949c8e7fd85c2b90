"""A build that ran out of disk space is not redone at every question (issue 15, item 5).

A build that passes the free-space check and still does not fit used to be
redone, embedding and all, by every ``bot ask`` (each finds the index
stale). A full disk cannot be made on demand without root (the tmpfs tests
in test_harden_full_disk.py need it), so here the writing of the vectors
fails with ENOSPC as a full disk makes it; the model, the seeds and the
index are real.
"""

from __future__ import annotations

import errno
import logging

import pytest

from bot.index import failed
from bot.index.files import RowWriter

from conftest import DOMBRA, SEEDS, copy_seeds

NEW_FACT = "Sezim keeps a tame snow leopard called Barys in her studio.\n"


def generations(index_dir):
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(("gen-", ".CURRENT.")))


def disk_full(self, block):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def embedded(monkeypatch, embedder):
    """How many texts the real model was asked to embed."""
    texts: list[int] = []
    encode = embedder.encode_documents
    monkeypatch.setattr(
        embedder, "encode_documents", lambda batch, **kw: texts.append(len(batch)) or encode(batch, **kw)
    )
    return texts


@pytest.fixture
def stale_bot(tmp_path, make_bot):
    """A bot with a built index whose seeds then gained a file."""
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    make_bot(seeds, tmp_path / "index").ensure_index()
    (seeds / "news.txt").write_text(NEW_FACT, encoding="utf-8")
    return seeds, tmp_path / "index"


def test_bot_ask_does_not_redo_a_build_that_ran_out_of_space(stale_bot, make_bot, embedded, monkeypatch, caplog):
    seeds, index_dir = stale_bot
    live = generations(index_dir)
    monkeypatch.setattr(RowWriter, "append", disk_full)
    with caplog.at_level(logging.WARNING):
        assert make_bot(seeds, index_dir).ensure_index() is None  # tried, failed, answers from the old index
    assert sum(embedded) == 2 and generations(index_dir) == live and (index_dir / failed.MARKER).is_file()
    assert "No space left" in caplog.text

    failed._remembered.clear()  # the next `bot ask` is another process: only the marker file tells it
    caplog.clear()
    bot = make_bot(seeds, index_dir)
    with caplog.at_level(logging.WARNING):
        assert bot.ensure_index() is None
    assert sum(embedded) == 2, "the failed build was redone"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not tried again" in warnings[0], warnings
    assert warnings[0].count("No space left on device") == warnings[0].count("Errno 28") == 1, warnings
    assert "grandmother" in bot.answer(DOMBRA).text
    assert generations(index_dir) == live


def test_changed_seeds_or_bot_build_try_again_and_success_forgets_the_failure(
    stale_bot, make_bot, embedded, monkeypatch
):
    seeds, index_dir = stale_bot
    with monkeypatch.context() as patch:
        patch.setattr(RowWriter, "append", disk_full)
        make_bot(seeds, index_dir).ensure_index()
        assert sum(embedded) == 2
        (seeds / "news.txt").write_text(NEW_FACT + "She also plays the komuz.\n", encoding="utf-8")
        make_bot(seeds, index_dir).ensure_index()  # other seeds: tried again
        assert sum(embedded) == 6
        make_bot(seeds, index_dir).ensure_index()  # the same seeds: not
        assert sum(embedded) == 6
        with pytest.raises(OSError) as error:  # `bot build`: tried again, and says the real error
            make_bot(seeds, index_dir).update()
        assert error.value.errno == errno.ENOSPC and not isinstance(error.value, failed.BuildFailedBefore)
        assert sum(embedded) == 10
    # Space was freed: `bot build` succeeds and the failure is forgotten.
    report = make_bot(seeds, index_dir).update()
    assert report.added == ["news.txt"] and not (index_dir / failed.MARKER).exists()
    assert failed.known_failure(index_dir, "anything") is None
    assert make_bot(seeds, index_dir).retrieve("a tame snow leopard called Barys", k=1)[0].source == "news.txt"


def test_a_failure_is_remembered_in_memory_when_not_even_the_marker_fits(tmp_path):
    index_dir = tmp_path / "missing"  # the marker cannot be written here
    failed.record_failure(index_dir, "seeds-1", OSError(errno.ENOSPC, "No space left on device"))
    assert not index_dir.exists()
    again = failed.known_failure(index_dir, "seeds-1")
    assert isinstance(again, OSError) and again.errno == errno.ENOSPC
    assert failed.known_failure(index_dir, "seeds-2") is None
    failed.forget_failure(index_dir)
    assert failed.known_failure(index_dir, "seeds-1") is None


def test_only_a_full_disk_is_remembered(tmp_path):
    failed.record_failure(tmp_path, "seeds", OSError(errno.EACCES, "Permission denied"))
    assert failed.known_failure(tmp_path, "seeds") is None and not (tmp_path / failed.MARKER).exists()


def test_room_made_on_the_disk_is_worth_another_try(tmp_path, monkeypatch):
    free = {"bytes": 5 * 1024 * 1024}
    usage = type("Usage", (), {})

    def disk_usage(path):
        result = usage()
        result.free = free["bytes"]
        return result

    monkeypatch.setattr(failed.shutil, "disk_usage", disk_usage)  # a disk whose room the test sets
    failed.record_failure(tmp_path, "seeds", OSError(errno.ENOSPC, "No space left on device"))
    free["bytes"] += 1024 * 1024  # a little more room: the same build would fail again
    assert isinstance(failed.known_failure(tmp_path, "seeds"), OSError)
    free["bytes"] += failed.ROOM_MADE  # room made: try again
    assert failed.known_failure(tmp_path, "seeds") is None
