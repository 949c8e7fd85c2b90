"""The ONNX backend: the export (made once, checked, cached, remembered when impossible) and its encoder.

The export of the bundled model is made once per test session into a
temporary cache (the ``onnx_cache`` fixture, about half a minute).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import bot.backend.onnx_export as onnx_export
from bot.backend.onnx import EXACT, MAX_BATCH_TOKENS, QUANTISED, OnnxEncoder, _batches
from bot.backend.onnx_export import ensure_onnx_export, ensure_quantised, onnx_dir
from bot.config import DEFAULT_MODEL
from bot.embed import Embedder

from conftest import EMBEDDING_TEXTS as SENTENCES
from conftest import cosines


@pytest.fixture(autouse=True)
def _use_onnx_cache(monkeypatch, onnx_cache):
    monkeypatch.setenv("BOT_ONNX_CACHE", str(onnx_cache))
    monkeypatch.delenv("BOT_EMBED_DOCUMENTS", raising=False)


@pytest.fixture(scope="module")
def reference(embedder):
    """sentence-transformers' own vectors of SENTENCES, with its default settings."""
    return embedder.model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)


def test_onnx_vectors_match_sentence_transformers(onnx_cache, reference):
    exact = OnnxEncoder(onnx_dir(DEFAULT_MODEL, onnx_cache), "model.onnx")
    for batch_size in (1, 7, 64):
        vectors = exact.encode(SENTENCES, batch_size=batch_size)
        assert vectors.shape == reference.shape and vectors.dtype == np.float32
        assert cosines(vectors, reference).min() >= 0.999


def test_batches_are_longest_first_and_within_both_limits():
    lengths = np.array([3, 300, 40, 40, 7, 128, 1, 0])
    batches = _batches(lengths, batch_size=3, max_tokens=MAX_BATCH_TOKENS)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # every text once
    assert [int(lengths[row]) for row in rows] == sorted(lengths.tolist(), reverse=True)
    for batch in batches:
        assert 1 <= len(batch) <= 3
        assert len(batch) == 1 or len(batch) * int(lengths[batch].max()) <= MAX_BATCH_TOKENS
    assert _batches(np.array([], dtype=np.int64), 64, MAX_BATCH_TOKENS) == []


def test_a_missing_export_tool_is_not_remembered(monkeypatch, tmp_path, onnx_cache):
    def missing(name, work):
        raise onnx_export.ExportToolsMissing("exporting needs onnx")

    monkeypatch.setattr(onnx_export, "_export", missing)
    folder = tmp_path / "some-model"
    folder.mkdir()
    with pytest.raises(onnx_export.ExportToolsMissing):
        ensure_onnx_export(str(folder), onnx_cache)
    assert not onnx_dir(str(folder), onnx_cache).exists()  # a later run, with onnx installed, tries again
    assert not [p for p in onnx_dir(str(folder), onnx_cache).parent.iterdir() if "tmp" in p.name]


def test_the_export_is_cached_and_reused(monkeypatch, onnx_cache):
    folder = onnx_dir(DEFAULT_MODEL, onnx_cache)
    assert folder.parent == onnx_cache and (folder / "meta.json").is_file()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["pooling"] == "mean" and meta["normalize"] and meta["max_length"] == 256
    assert meta[f"probe_cosine_{EXACT}"] >= 0.999
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_export(*args):
        raise AssertionError("the model was exported again")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    assert ensure_onnx_export(DEFAULT_MODEL, onnx_cache) == folder
    Embedder().encode_documents(SENTENCES[:3])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert not any(p.name.startswith(".") and "tmp" in p.name for p in onnx_cache.iterdir())


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len_tokens"])
def test_pooling_modes_follow_sentence_transformers(mode):
    """Each pooling mode we accept at export time is computed as sentence-transformers' Pooling does."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.models import Pooling

    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(3, 5, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int64)
    pooling = Pooling(8, pooling_mode=mode)
    encoder = OnnxEncoder.__new__(OnnxEncoder)
    encoder.meta = {"pooling": onnx_export._pooling_mode(pooling), "normalize": False}
    ours = encoder._pool(tokens, mask)
    features = {"token_embeddings": torch.from_numpy(tokens), "attention_mask": torch.from_numpy(mask)}
    theirs = pooling(features)["sentence_embedding"].numpy()
    assert np.allclose(ours, theirs, atol=1e-5)


def test_other_pooling_modes_are_not_exported():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers.models import Pooling

    with pytest.raises(onnx_export.ExportUnsupported):
        onnx_export._pooling_mode(Pooling(8, pooling_mode="weightedmean"))


def test_the_int8_copy_is_made_only_when_asked_for_and_checked(tmp_path, onnx_cache):
    exported = onnx_dir(DEFAULT_MODEL, onnx_cache)
    folder = tmp_path / exported.name
    folder.mkdir()
    for name in ("meta.json", EXACT, "tokenizer.json"):  # an export as it is made: no int8 copy
        (folder / name).write_bytes((exported / name).read_bytes())
    assert not (folder / QUANTISED).exists()
    assert ensure_quantised(folder) and (folder / QUANTISED).is_file()
    meta = json.loads((folder / "meta.json").read_text())
    assert 0.9 <= meta[f"probe_cosine_{QUANTISED}"] < 1.0  # close to the exact graph, not the same
    made = (folder / QUANTISED).stat().st_mtime_ns
    assert ensure_quantised(folder) and (folder / QUANTISED).stat().st_mtime_ns == made  # made once
    assert not [p for p in folder.iterdir() if "tmp" in p.name]
