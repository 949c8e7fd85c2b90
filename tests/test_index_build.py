"""Building and updating the index (``bot.index.build``): layout, incremental updates, atomic writes.

Everything runs the real model and real FAISS over real seed text.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

import bot.index.build as index_build
from bot import Config
from bot.chunk import chunk_seed
from bot.index import ARTIFACTS, FORMAT_VERSION, load_index, settings_of, update_index
from bot.ingest import load_seeds

from conftest import (
    DOMBRA,
    SEEDS,
    SEZIM_FILE,
    bot_command,
    bot_env,
    copy_seeds,
    live_generation,
    write_corpus,
)


def generations(index: Path) -> set[str]:
    return {p.name for p in index.iterdir() if p.name.startswith("gen-")} if index.is_dir() else set()


def split_seeds(tmp_path: Path) -> Path:
    """The shipped seed cut into three files of two paragraphs each."""
    paragraphs = (SEEDS / SEZIM_FILE).read_text(encoding="utf-8").split("\n\n")
    assert len(paragraphs) >= 6
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    thirds = [paragraphs[0:2], paragraphs[2:4], paragraphs[4:]]
    for name, part in zip(("a.txt", "b.txt", "c.txt"), thirds):
        (seeds / name).write_text("\n\n".join(part), encoding="utf-8")
    return seeds


def rows_of(loaded, name: str) -> tuple[list, bytes, bytes]:
    """A file's chunks and the exact bytes of its sentence and window vectors."""
    entry = loaded.manifest["files"][name]
    rows = slice(entry["first"], entry["first"] + entry["count"])
    return loaded.chunks[rows], loaded.vectors[rows].tobytes(), loaded.context_vectors[rows].tobytes()


@pytest.fixture
def spy(monkeypatch, embedder):
    """Record every text the real model is asked to embed (it still embeds them)."""
    seen: list[str] = []
    original = embedder.encode_documents

    def encode(texts, *args, **kwargs):
        seen.extend(texts)
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode_documents", encode)
    return seen


# -- building -----------------------------------------------------------------


def test_build_writes_a_complete_generation(seeds_dir, index_dir, embedder):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    report = update_index(config, embedder)
    (seed,) = [s for s in load_seeds(seeds_dir) if s.path == SEZIM_FILE]
    expected_chunks = chunk_seed(seed, config.window)

    assert report.added == [SEZIM_FILE] and report.changed == [] and report.removed == []
    assert report.chunks == report.embedded == len(expected_chunks) > 0
    assert report.rebuilt_because is None

    # Layout: CURRENT names one complete generation; nothing temporary is left.
    generation = live_generation(index_dir)
    assert generation.name.startswith("gen-") and generation.is_dir()
    assert generations(index_dir) == {generation.name}
    assert not list(index_dir.glob(".CURRENT.*"))
    assert {p.name for p in generation.iterdir()} == {*ARTIFACTS, "manifest.json"}

    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"] == settings_of(config)["model"] and manifest["model"].startswith("all-MiniLM-L6-v2")
    assert manifest["dimension"] == embedder.dimension
    assert manifest["chunking"] == settings_of(config)["chunking"]
    data = (seeds_dir / SEZIM_FILE).read_bytes()
    assert manifest["files"] == {
        SEZIM_FILE: {"sha256": hashlib.sha256(data).hexdigest(), "first": 0, "count": len(expected_chunks)}
    }
    for name in ARTIFACTS:
        assert manifest["artifacts"][name] == hashlib.sha256((generation / name).read_bytes()).hexdigest()

    loaded = load_index(index_dir, settings_of(config))
    assert loaded.chunks == expected_chunks
    assert loaded.vectors.dtype == np.float32 and loaded.vectors.shape == (len(expected_chunks), embedder.dimension)
    # Normalised vectors in an inner-product index: inner product is cosine.
    assert np.allclose(np.linalg.norm(loaded.vectors, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(loaded.context_vectors, axis=1), 1.0, atol=1e-4)
    assert loaded.faiss_index.ntotal == len(expected_chunks)
    assert loaded.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT
    # Row i is the embedding of chunk i (sentence, and sentence with its window):
    # the same vector up to batching and quantisation, far closer than any
    # other sentence's.
    texts = [c.text for c in expected_chunks]
    cosines = np.einsum("ij,ij->i", loaded.vectors, embedder.encode_documents(texts))
    assert cosines.min() > 0.98, cosines
    contexts = embedder.encode_documents([c.context for c in expected_chunks])
    assert np.einsum("ij,ij->i", loaded.context_vectors, contexts).min() > 0.98
    for row in (0, 3, len(texts) - 1):
        scores, rows = loaded.faiss_index.search(embedder.encode_question(texts[row])[None, :], 2)
        assert rows[0][0] == row and scores[0][0] > 0.98 and scores[0][1] < scores[0][0] - 0.05


def test_second_build_is_a_noop(seeds_dir, index_dir, embedder, spy):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    first = update_index(config, embedder)
    generation = live_generation(index_dir)
    files_before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in generation.iterdir()}
    embedded_before = len(spy)

    second = update_index(config, embedder)
    assert not second.changed_anything
    assert second.embedded == 0 and len(spy) == embedded_before
    assert second.unchanged == 1 and second.chunks == first.chunks
    assert second.summary().startswith("Index is up to date")
    assert live_generation(index_dir) == generation and generations(index_dir) == {generation.name}
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in generation.iterdir()} == files_before


def test_changing_one_of_several_files_reembeds_only_that_file(tmp_path, embedder, spy):
    seeds = split_seeds(tmp_path)
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    first = update_index(config, embedder)
    assert sorted(first.added) == ["a.txt", "b.txt", "c.txt"]
    old = load_index(config.index_dir, settings_of(config))

    with (seeds / "b.txt").open("a", encoding="utf-8") as handle:
        handle.write("\n\nLater she recorded a second album, Winter Dombra, in a barn near Almaty.")
    spy.clear()
    report = update_index(config, embedder)
    new = load_index(config.index_dir, settings_of(config))

    assert report.changed == ["b.txt"] and report.added == [] and report.removed == []
    assert report.unchanged == 2
    b_count = new.manifest["files"]["b.txt"]["count"]
    assert b_count == old.manifest["files"]["b.txt"]["count"] + 1
    assert report.embedded == b_count < report.chunks
    # The model saw b.txt's sentences (and their windows) and nothing else.
    b_chunks = rows_of(new, "b.txt")[0]
    assert sorted(spy) == sorted([c.text for c in b_chunks] + [c.context for c in b_chunks])
    # The other files' chunks and vectors are carried over byte for byte.
    for name in ("a.txt", "c.txt"):
        assert rows_of(new, name) == rows_of(old, name)
    assert any("Winter Dombra" in c.text for c in b_chunks)


def test_adding_and_removing_files(tmp_path, embedder, spy, make_bot):
    seeds = split_seeds(tmp_path)
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    update_index(config, embedder)
    old = load_index(config.index_dir, settings_of(config))

    (seeds / "news").mkdir()
    (seeds / "news" / "d.md").write_text("# Tour\n\nSezim announced a **winter tour** of Japan.\n", encoding="utf-8")
    spy.clear()
    added = update_index(config, embedder)
    assert added.added == ["news/d.md"] and added.changed == [] and added.unchanged == 3
    assert added.embedded == 1 and len(spy) == 2  # one sentence and its window ("Tour" is a heading, not a chunk)
    with_d = load_index(config.index_dir, settings_of(config))
    for name in ("a.txt", "b.txt", "c.txt"):
        assert rows_of(with_d, name) == rows_of(old, name)

    (seeds / "c.txt").unlink()
    spy.clear()
    removed = update_index(config, embedder)
    assert removed.removed == ["c.txt"] and removed.added == [] and removed.changed == []
    assert removed.embedded == 0 and spy == []
    without_c = load_index(config.index_dir, settings_of(config))
    assert set(without_c.manifest["files"]) == {"a.txt", "b.txt", "news/d.md"}
    assert all(chunk.source != "c.txt" for chunk in without_c.chunks)
    c_rows = old.manifest["files"]["c.txt"]["count"]
    assert without_c.faiss_index.ntotal == len(without_c.chunks) == with_d.faiss_index.ntotal - c_rows
    for name in ("a.txt", "b.txt", "news/d.md"):
        assert rows_of(without_c, name) == rows_of(with_d, name)
    # Nothing the bot says can come from the removed file any more.
    bot = make_bot(seeds, config.index_dir)
    passages = bot.retrieve("international sensation humble grounded ancestors", k=len(without_c))
    assert passages and all(p.source != "c.txt" for p in passages)


def test_only_the_live_and_previous_generations_are_kept(tmp_path, embedder):
    seeds = split_seeds(tmp_path)
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    for round_ in range(4):
        (seeds / "extra.txt").write_text(f"Sezim gave concert number {round_}.", encoding="utf-8")
        update_index(config, embedder)
        assert live_generation(config.index_dir).name in generations(config.index_dir)
        assert len(generations(config.index_dir)) <= 2
    assert load_index(config.index_dir).chunks[-1].text == "Sezim gave concert number 3."


def test_ensure_index_builds_then_follows_the_seeds(seeds_dir, index_dir, make_bot):
    bot = make_bot(seeds_dir, index_dir)
    first = bot.ensure_index()
    assert first is not None and first.added == [SEZIM_FILE]
    assert make_bot(seeds_dir, index_dir).ensure_index() is None  # up to date: just loaded
    (seeds_dir / "tour.txt").write_text("Sezim will tour Japan next spring.", encoding="utf-8")
    fresh = make_bot(seeds_dir, index_dir)
    report = fresh.ensure_index()
    assert report is not None and report.added == ["tour.txt"] and report.embedded == 1
    assert fresh.retrieve("Japan tour next spring", k=1)[0].source == "tour.txt"


# -- atomic writes --------------------------------------------------------------


class Crash(Exception):
    """Stands in for the process dying at one point of a build."""


def _crash_while_writing_faiss(original):
    def write_index(index, path):
        original(index, path)
        with open(path, "r+b") as handle:
            handle.truncate(100)
        raise Crash("died while writing index.faiss")

    return write_index


@pytest.mark.parametrize("point", ["faiss", "fsync", "replace"])
def test_a_build_that_dies_midway_leaves_the_previous_index(tmp_path, embedder, make_bot, monkeypatch, point):
    seeds = split_seeds(tmp_path)
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    update_index(config, embedder)
    before = load_index(config.index_dir, settings_of(config))
    pointer = (config.index_dir / "CURRENT").read_bytes()

    (seeds / "b.txt").write_text("Everything changed.", encoding="utf-8")
    (seeds / "d.txt").write_text("A new file.", encoding="utf-8")
    with monkeypatch.context() as patch:
        if point == "faiss":
            patch.setattr(faiss, "write_index", _crash_while_writing_faiss(faiss.write_index))
        elif point == "fsync":  # every file written, about to be switched to
            patch.setattr(index_build, "fsync", lambda path: (_ for _ in ()).throw(Crash(str(path))))
        else:  # the new CURRENT is written but not yet moved into place
            patch.setattr(index_build.os, "replace", lambda *a: (_ for _ in ()).throw(Crash("replace")))
        with pytest.raises(Crash):
            update_index(config, embedder)

    # The half-written generation is there, but the live index is the old one.
    assert len(generations(config.index_dir)) == 2
    assert (config.index_dir / "CURRENT").read_bytes() == pointer
    after = load_index(config.index_dir, settings_of(config))
    assert after.path == before.path and after.chunks == before.chunks
    assert after.vectors.tobytes() == before.vectors.tobytes()

    # The next build finishes the job and clears the debris.
    report = update_index(config, embedder)
    assert report.changed == ["b.txt"] and report.added == ["d.txt"]
    assert not list(config.index_dir.glob(".CURRENT.*"))
    assert len(generations(config.index_dir)) <= 2
    assert {c.text for c in load_index(config.index_dir).chunks} >= {"Everything changed.", "A new file."}


@pytest.mark.slow
def test_a_build_killed_with_sigkill_leaves_the_previous_index_loadable(tmp_path, make_bot):
    """Kill ``bot build`` at different moments; the old index always loads and answers."""
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    index = tmp_path / "index"
    make_bot(seeds, index).update()
    settings = settings_of(Config(seeds_dir=seeds, index_dir=index))
    before = load_index(index, settings)
    pristine = tmp_path / "pristine"
    shutil.copytree(index, pristine)

    big = copy_seeds(seeds, tmp_path / "big-seeds")
    write_corpus(big / "corpus.txt", sentences=2500)

    def start_build(target: Path, log: Path) -> subprocess.Popen:
        command = [*bot_command(), "build", "--seeds", str(big), "--index", str(target)]
        with log.open("w") as handle:
            return subprocess.Popen(command, env=bot_env(), stdin=subprocess.DEVNULL, stdout=handle, stderr=handle)

    # How long a whole build takes here, so the kills land at the same stages
    # (start-up, model loading, embedding, writing) on a fast or slow machine.
    started = time.monotonic()
    assert start_build(tmp_path / "timing-index", tmp_path / "timing.log").wait(timeout=600) == 0
    whole = time.monotonic() - started

    killed_running = []
    for moment in (0.1, 0.3, 0.5, 0.7, 0.9, "writing"):
        shutil.rmtree(index)
        shutil.copytree(pristine, index)
        pointer = (index / "CURRENT").read_bytes()
        old_generations = generations(index)
        process = start_build(index, tmp_path / "build.log")
        try:
            if moment == "writing":
                # Kill as soon as the new generation's folder appears.
                deadline = time.monotonic() + 600
                while generations(index) == old_generations and process.poll() is None:
                    assert time.monotonic() < deadline, "the build never started writing"
                    time.sleep(0.001)
            else:
                time.sleep(moment * whole)
            running = process.poll() is None
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait(timeout=60)
        if running:
            assert process.returncode == -signal.SIGKILL
            killed_running.append(moment)

        loaded = load_index(index, settings)  # never half-written
        if (index / "CURRENT").read_bytes() == pointer:
            assert loaded.path == before.path and loaded.chunks == before.chunks
            assert loaded.vectors.tobytes() == before.vectors.tobytes()
            # The previous index answers, without being rebuilt.
            bot = make_bot(seeds, index)
            assert bot.ensure_index() is None
            passages = bot.retrieve(DOMBRA, k=3)
            assert any("grandmother" in p.text for p in passages)
            reply = bot.answer(DOMBRA)
            assert not reply.refused and "grandmother" in reply.text
        else:  # the kill came after the switch (the build may still be removing old generations)
            assert {c.source for c in loaded.chunks} == {SEZIM_FILE, "corpus.txt"}  # the new index is complete
            assert loaded.path == index / (index / "CURRENT").read_text(encoding="utf-8").strip()

    # Most kills must have landed in a running build, or this proved nothing.
    assert len(killed_running) >= 4, (killed_running, whole)

    # A later build over the debris completes and clears it.
    report = make_bot(big, index).update()
    assert report.added == ["corpus.txt"] and report.unchanged == 1
    assert len(generations(index)) <= 2 and not list(index.glob(".CURRENT.*"))
    assert load_index(index, settings).faiss_index.ntotal == report.chunks
