"""Loading the index (``bot.index.load``): what it opens, and the damaged, incompatible or
inconsistent indexes it refuses (and that the next build replaces).

Everything runs the real model and real FAISS over real seed text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from bot import Config
from bot.chunk import chunk_seed
from bot.index import (
    EXACT_INDEX,
    FORMAT_VERSION,
    IndexUnavailable,
    load_index,
    settings_of,
    stale_files,
    update_index,
)
from bot.index.manifest import artifact_checksums
from bot.ingest import load_seeds

from conftest import DOMBRA, SEZIM_FILE, live_generation

# -- what a load opens -----------------------------------------------------------------


def test_a_load_opens_every_file_of_the_live_generation(seeds_dir, index_dir, embedder):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    update_index(config, embedder)
    generation = live_generation(index_dir)
    loaded = load_index(index_dir, settings_of(config))
    (seed,) = [s for s in load_seeds(seeds_dir) if s.path == SEZIM_FILE]
    expected_chunks = chunk_seed(seed, config.window)

    assert loaded.path == generation and len(loaded) == len(expected_chunks)
    assert loaded.manifest == json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert list(loaded.chunks) == expected_chunks
    np.testing.assert_array_equal(loaded.vectors, np.load(generation / "vectors.npy"))
    np.testing.assert_array_equal(loaded.context_vectors, np.load(generation / "context.npy"))
    assert loaded.faiss_index.ntotal == len(expected_chunks)
    np.testing.assert_array_equal(loaded.faiss_index.reconstruct_n(0, len(expected_chunks)), loaded.vectors)
    assert loaded.lexical.num_docs == len(expected_chunks) and "dombra" in loaded.lexical.words
    # A small index is read whole, and every row is in the spread sample.
    assert loaded.mapped == [] and loaded.on_demand == []
    np.testing.assert_array_equal(loaded.sample_rows, np.arange(len(expected_chunks)))
    np.testing.assert_array_equal(loaded.sample_vectors, loaded.vectors)
    np.testing.assert_array_equal(loaded.sample_context_vectors, loaded.context_vectors)
    assert loaded.index_type == EXACT_INDEX


def test_stale_files_compares_the_seeds_with_the_manifest(seeds_dir, index_dir, embedder):
    update_index(Config(seeds_dir=seeds_dir, index_dir=index_dir), embedder)
    loaded = load_index(index_dir)
    assert not stale_files(loaded, load_seeds(seeds_dir))
    (seeds_dir / "tour.txt").write_text("Sezim will tour Japan.", encoding="utf-8")
    assert stale_files(loaded, load_seeds(seeds_dir))
    (seeds_dir / "tour.txt").unlink()
    assert not stale_files(loaded, load_seeds(seeds_dir))
    with (seeds_dir / SEZIM_FILE).open("a", encoding="utf-8") as handle:
        handle.write("\n\nOne more sentence.")
    assert stale_files(loaded, load_seeds(seeds_dir))
    (seeds_dir / SEZIM_FILE).rename(seeds_dir / "renamed.txt")
    assert stale_files(loaded, load_seeds(seeds_dir))


# -- damaged and incompatible indexes -----------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated index.faiss": ("index.faiss", _truncate),
    "flipped byte in vectors.npy": ("vectors.npy", _flip),
    "truncated context.npy": ("context.npy", _truncate),
    "flipped byte in chunks.jsonl": ("chunks.jsonl", _flip),
    "deleted index.faiss": ("index.faiss", Path.unlink),
    "emptied vectors.npy": ("vectors.npy", lambda p: p.write_bytes(b"")),
    "garbage manifest": ("manifest.json", lambda p: p.write_text("{not json", encoding="utf-8")),
    "truncated manifest": ("manifest.json", _truncate),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_is_detected_and_rebuilt_with_one_log_line(seeds_dir, index_dir, make_bot, caplog, damage):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    make_bot(seeds_dir, index_dir).update()
    good = load_index(index_dir, settings_of(config))
    name, spoil = DAMAGE[damage]
    spoil(live_generation(index_dir) / name)

    with pytest.raises(IndexUnavailable) as problem:
        load_index(index_dir, settings_of(config))
    if name != "manifest.json":
        assert name in problem.value.reason

    bot = make_bot(seeds_dir, index_dir)
    with caplog.at_level(logging.INFO, logger="bot"):
        report = bot.ensure_index()
    assert report is not None and report.rebuilt_because == problem.value.reason
    assert report.embedded == report.chunks == len(good)
    # One clear line at the level a user sees by default; no traceback anywhere.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "Rebuilding the index" in warnings[0].getMessage()
    assert problem.value.reason in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)

    rebuilt = load_index(index_dir, settings_of(config))
    assert rebuilt.chunks == good.chunks
    assert np.einsum("ij,ij->i", rebuilt.vectors, good.vectors).min() > 0.999
    reply = bot.answer(DOMBRA)
    assert not reply.refused and any(c.source == SEZIM_FILE for c in reply.citations)


@pytest.mark.parametrize("pointer", ["gen-does-not-exist\n", "../../etc\n", "", "\x00\xff garbage"])
def test_a_bad_current_pointer_is_detected_and_rebuilt(seeds_dir, index_dir, make_bot, pointer):
    make_bot(seeds_dir, index_dir).update()
    (index_dir / "CURRENT").write_bytes(pointer.encode("utf-8", "surrogateescape"))
    with pytest.raises(IndexUnavailable, match="no index has been built yet"):
        load_index(index_dir)
    report = make_bot(seeds_dir, index_dir).ensure_index()
    assert report is not None and report.added == [SEZIM_FILE]
    assert live_generation(index_dir).parent == index_dir and load_index(index_dir).chunks
    (seed,) = [s for s in load_seeds(seeds_dir) if s.path == SEZIM_FILE]
    assert load_index(index_dir).chunks == chunk_seed(seed, Config().window)


def _rewrite_manifest(index: Path, **changes) -> None:
    path = live_generation(index) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"format_version": FORMAT_VERSION + 1}, "format version"),
        ({"format_version": 0}, "format version"),
        ({"model": "sentence-transformers/paraphrase-MiniLM-L3-v2"}, "another model"),
        ({"chunking": {"splitter": "regex", "window": 1, "max_sentence_words": 80}}, "another chunking"),
    ],
)
def test_an_index_of_another_version_or_model_is_rebuilt(seeds_dir, index_dir, make_bot, caplog, changes, reason):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    make_bot(seeds_dir, index_dir).update()
    _rewrite_manifest(index_dir, **changes)
    with pytest.raises(IndexUnavailable, match=reason):
        load_index(index_dir, settings_of(config))

    with caplog.at_level(logging.WARNING, logger="bot"):
        report = make_bot(seeds_dir, index_dir).ensure_index()
    assert report is not None and reason in report.rebuilt_because
    assert report.embedded == report.chunks
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    manifest = load_index(index_dir, settings_of(config)).manifest
    assert manifest["format_version"] == FORMAT_VERSION and manifest["model"] == settings_of(config)["model"]


def test_changing_the_model_or_chunking_settings_rebuilds(seeds_dir, index_dir, make_bot):
    make_bot(seeds_dir, index_dir).update()
    # An index built with the bundled model does not pass for another model's.
    with pytest.raises(IndexUnavailable, match="another model"):
        load_index(index_dir, settings_of(Config(model="/models/some-other-model")))
    # A real change of settings: a wider window means other window vectors.
    wide = make_bot(seeds_dir, index_dir, window=2)
    report = wide.ensure_index()
    assert report is not None and "chunking" in report.rebuilt_because
    assert report.embedded == report.chunks
    loaded = load_index(index_dir, settings_of(wide.config))
    assert loaded.manifest["chunking"]["window"] == 2
    assert any(c.before.count(". ") >= 1 for c in loaded.chunks)


def _replace_artifact(generation: Path, name: str, array: np.ndarray) -> None:
    """Write ``array`` as the artifact ``name`` and record its checksums, as if a build had."""
    np.save(generation / name, array)
    path = generation / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(artifact_checksums(generation))
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_files_that_disagree_with_each_other_are_refused(seeds_dir, index_dir, embedder):
    """Checksums that match but contents that do not fit together (a bug, not a disk fault)."""
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    update_index(config, embedder)
    generation = live_generation(index_dir)
    sample = np.load(generation / "spread-sample.npy")
    vectors = np.load(generation / "vectors.npy")

    _replace_artifact(generation, "spread-sample.npy", sample[:, :-1])
    with pytest.raises(IndexUnavailable, match="^spread-sample.npy does not match the vectors$"):
        load_index(index_dir, settings_of(config))
    _replace_artifact(generation, "spread-sample.npy", sample.astype(np.float16))
    with pytest.raises(IndexUnavailable, match="^spread-sample.npy does not match the vectors$"):
        load_index(index_dir, settings_of(config))
    _replace_artifact(generation, "spread-sample.npy", sample)
    assert len(load_index(index_dir, settings_of(config))) == len(vectors)

    _replace_artifact(generation, "vectors.npy", vectors[:-1])
    with pytest.raises(IndexUnavailable, match="^its files disagree on the number of chunks$"):
        load_index(index_dir, settings_of(config))
    _replace_artifact(generation, "vectors.npy", vectors)
    _rewrite_manifest(index_dir, chunks=len(vectors) + 1)
    with pytest.raises(IndexUnavailable, match="^its files disagree on the number of chunks$"):
        load_index(index_dir, settings_of(config))
