"""The embedder: questions exactly, documents as the Config says, light to import, honest about its vectors.

The model is exported once per test session into a temporary cache (the
``onnx_cache`` fixture, about half a minute); every test here shares that
export. The export itself is tested in test_backend_onnx.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

import bot.backend.onnx_export as onnx_export
import bot.embed as embed
from bot import Bot, Config
from bot.backend.onnx_export import onnx_dir
from bot.config import DEFAULT_MODEL
from bot.embed import Embedder, model_identity

from conftest import EMBEDDING_TEXTS as SENTENCES
from conftest import ROOT, SEEDS, copy_seeds, cosines


@pytest.fixture(autouse=True)
def _use_onnx_cache(monkeypatch, onnx_cache):
    monkeypatch.setenv("BOT_ONNX_CACHE", str(onnx_cache))
    monkeypatch.delenv("BOT_EMBED_DOCUMENTS", raising=False)


@pytest.fixture(scope="session")
def reference(embedder):
    """sentence-transformers' own vectors of SENTENCES, with its default settings."""
    return embedder.model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)


def test_a_question_is_embedded_exactly_and_without_torch_objects(reference):
    model = Embedder()
    for i in (0, 17, 19, 26):
        vector = model.encode_question(SENTENCES[i])
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert cosines(vector[None, :], reference[i : i + 1])[0] >= 0.999
    assert model.backend == "onnx"
    assert model._model is None  # sentence-transformers was never loaded


def test_documents_are_embedded_exactly_by_default(reference):
    model = Embedder()
    for batch_size in (1, 16, 64):
        assert cosines(model.encode_documents(SENTENCES, batch_size=batch_size), reference).min() >= 0.999
    assert model._model is None and model_identity(Config()) == DEFAULT_MODEL


def test_int8_documents_when_asked_for_are_close_to_the_exact_vectors(monkeypatch, reference):
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", "int8")
    vectors = Embedder().encode_documents(SENTENCES, batch_size=16)
    similarity = cosines(vectors, reference)
    assert similarity.mean() >= 0.98 and similarity.min() >= 0.93
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_precision_comes_from_the_config_not_from_the_environment_of_the_moment(monkeypatch, reference):
    quantised = Embedder(Config(document_precision="int8"))
    exact = Embedder(Config())
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", "int8")  # read when a Config is made, not later
    int8, fp32 = quantised.encode_documents(SENTENCES), exact.encode_documents(SENTENCES)
    assert cosines(fp32, reference).min() >= 0.999
    assert not np.allclose(int8, fp32, atol=1e-4) and cosines(int8, reference).mean() >= 0.98
    # One document is a document: embedded as the seeds are (int8 here), not as a question.
    alone = quantised.encode_documents(SENTENCES[:1])
    assert not np.allclose(alone[0], exact.encode_question(SENTENCES[0]), atol=1e-4)
    assert cosines(alone, reference[:1])[0] >= 0.93
    assert np.array_equal(quantised.encode_question(SENTENCES[0]), exact.encode_question(SENTENCES[0]))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_vectors_are_deterministic_and_unit_length(monkeypatch, precision):
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", precision)
    model = Embedder()
    assert model.dimension == 384
    for texts in (SENTENCES[:1], SENTENCES):
        first, second = model.encode_documents(texts), Embedder().encode_documents(texts)
        assert np.array_equal(first, second)
        assert first.shape == (len(texts), model.dimension) and first.dtype == np.float32
        assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    question = model.encode_question(SENTENCES[0])
    assert np.array_equal(question, Embedder().encode_question(SENTENCES[0]))
    assert np.isclose(np.linalg.norm(question), 1.0, atol=1e-5)
    assert model.encode_documents([]).shape == (0, 384)
    repeated = model.encode_documents([SENTENCES[4], SENTENCES[5], SENTENCES[4]])
    assert np.array_equal(repeated[0], repeated[2])


def test_an_exact_vector_does_not_depend_on_its_batch():
    model = Embedder()
    together = model.encode_documents(SENTENCES, batch_size=64)
    alone = np.vstack([model.encode_question(text) for text in SENTENCES])
    assert cosines(together, alone).min() >= 0.99999


def test_identity_names_quantised_vectors_only(monkeypatch):
    # Exact vectors are interchangeable: ONNX fp32 and sentence-transformers.
    assert model_identity(Config()) == DEFAULT_MODEL
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", "torch")
    assert model_identity(Config()) == DEFAULT_MODEL
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", "int8")
    assert model_identity(Config()) == f"{DEFAULT_MODEL}+int8"
    assert model_identity(Config(model=f"sentence-transformers/{DEFAULT_MODEL}")) == f"{DEFAULT_MODEL}+int8"
    monkeypatch.setenv("BOT_EMBED_DOCUMENTS", "fp16")  # not a choice: ignored, with a warning
    assert model_identity(Config()) == DEFAULT_MODEL


def test_with_a_gpu_the_seeds_are_embedded_by_sentence_transformers(monkeypatch, reference):
    monkeypatch.setattr(embed, "_cuda_present", lambda: True)
    assert model_identity(Config()) == DEFAULT_MODEL
    model = Embedder()
    vectors = model.encode_documents(SENTENCES)
    assert model._model is not None  # sentence-transformers (on the GPU when there is one)
    assert cosines(vectors, reference).min() >= 0.999
    model.encode_question(SENTENCES[0])
    assert model.backend == "onnx"  # questions still go through ONNX Runtime


def test_the_embedder_uses_the_onnx_folder_of_its_config(monkeypatch, tmp_path, onnx_cache):
    def no_export(*args):
        raise AssertionError("the model was exported again")

    monkeypatch.setattr(onnx_export, "_export", no_export)
    monkeypatch.setenv("BOT_ONNX_CACHE", str(tmp_path / "elsewhere"))
    model = Embedder(Config(onnx_dir=onnx_cache))
    assert model.encode_documents(SENTENCES[:3]).shape == (3, 384) and model.backend == "onnx"
    assert not (tmp_path / "elsewhere").exists()


def test_a_model_that_cannot_be_exported_falls_back_to_sentence_transformers(tmp_path, embedder, caplog):
    import warnings

    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentence_transformers import models

    bundled = embed.resolve_model(DEFAULT_MODEL)
    transformer = models.Transformer(bundled)
    width = (getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension)()
    pooling = models.Pooling(width, "mean")
    dense = models.Dense(width, 32)
    folder = tmp_path / "with-dense"
    SentenceTransformer(modules=[transformer, pooling, dense], device="cpu").save(str(folder))

    model = Embedder(Config(model=str(folder)))
    with caplog.at_level(logging.WARNING, logger="bot.embed"):
        vectors = model.encode_documents(SENTENCES[:5])
    assert vectors.shape == (5, 32) and model.dimension == 32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert model.backend == "sentence-transformers"
    assert any("cannot run through ONNX Runtime" in r.getMessage() for r in caplog.records)
    # The reason is remembered: later runs do not try again, and name the vectors honestly.
    assert (onnx_dir(str(folder), Config().onnx_cache_dir) / "unsupported.json").is_file()
    assert model_identity(Config(model=str(folder))) == str(folder.resolve())


def test_answering_imports_neither_torch_nor_sentence_transformers(tmp_path, onnx_cache):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index")
    Bot(config).ensure_index()
    script = (
        "import sys, json\n"
        "from bot import Bot, Config\n"
        f"bot = Bot(Config(seeds_dir={str(seeds)!r}, index_dir={str(tmp_path / 'index')!r}))\n"
        "reply = bot.answer('Who taught Sezim to play the dombra?')\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)\n"
        "print(json.dumps({'heavy': heavy, 'refused': reply.refused}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "BOT_ONNX_CACHE": str(onnx_cache)},
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"heavy": [], "refused": False}
