"""Indexes at scale: the index type by size, approximate recall, memory-mapped loading and
incremental updates. (Checksums of big files are in ``test_index_manifest.py``.)

Real model, real FAISS, real seeds; only the recall test uses synthetic vectors.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import faiss
import numpy as np
import pytest

import bot.index.files as index_files
from bot import Config
from bot.index import (
    APPROXIMATE_INDEX,
    EXACT_INDEX,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ChunkStore,
    RowFile,
    faiss_index_for,
    load_index,
    settings_of,
    update_index,
)
from bot.measure.bench_scale import exact_top, synthetic_vectors
from bot.query import words
from bot.retrieve import _top_rows

from conftest import DOMBRA, SEEDS, SEZIM_FILE


def three_files(tmp_path: Path) -> Path:
    """The shipped seed cut into three files."""
    paragraphs = (SEEDS / SEZIM_FILE).read_text(encoding="utf-8").split("\n\n")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, part in zip(("a.txt", "b.txt", "c.txt"), (paragraphs[0:2], paragraphs[2:4], paragraphs[4:])):
        (seeds / name).write_text("\n\n".join(part), encoding="utf-8")
    return seeds


def chunk_count(seeds: Path, index: Path, embedder) -> int:
    return update_index(Config(seeds_dir=seeds, index_dir=index), embedder).chunks


# -- the index type by size -------------------------------------------------------------


def test_the_index_type_switches_at_the_threshold(seeds_dir, tmp_path, embedder, make_bot):
    chunks = chunk_count(seeds_dir, tmp_path / "probe", embedder)
    assert chunks > 10

    at = make_bot(seeds_dir, tmp_path / "at", exact_index_max_chunks=chunks)
    above = make_bot(seeds_dir, tmp_path / "above", exact_index_max_chunks=chunks - 1)
    at.ensure_index()
    above.ensure_index()
    exact, approximate = at.retriever.index, above.retriever.index

    assert exact.manifest["index"]["type"] == exact.index_type == EXACT_INDEX
    assert isinstance(exact.faiss_index, faiss.IndexFlatIP)
    assert exact.vectors.dtype == np.float32 and exact.manifest["vectors_dtype"] == "float32"

    assert approximate.manifest["index"] == {
        "type": APPROXIMATE_INDEX, "exact_index_max_chunks": chunks - 1, "M": HNSW_M,
        "ef_construction": HNSW_EF_CONSTRUCTION, "quantizer": "SQ8",
    }
    assert isinstance(approximate.faiss_index, faiss.IndexHNSWSQ)
    assert approximate.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert approximate.vectors.dtype == approximate.context_vectors.dtype == np.float16
    assert approximate.manifest["vectors_dtype"] == "float16"
    # float16 keeps the vectors within rounding of the exact ones.
    assert np.abs(approximate.vectors.astype(np.float32) - exact.vectors).max() < 1e-3

    # Both answer the same, from the same sentence.
    for question in (DOMBRA, "What was her debut album called?", "Where did she study music?"):
        a, b = at.answer(question), above.answer(question)
        assert not a.refused and not b.refused
        assert [(c.source, c.start) for c in a.citations] == [(c.source, c.start) for c in b.citations]
    assert "grandmother" in above.answer(DOMBRA).text


def test_the_default_threshold_keeps_small_corpora_exact(seeds_dir, index_dir, embedder):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    assert config.exact_index_max_chunks == 100_000
    update_index(config, embedder)
    loaded = load_index(index_dir, settings_of(config))
    assert loaded.index_type == EXACT_INDEX and loaded.manifest["index"]["type"] == EXACT_INDEX
    assert loaded.manifest["chunks"] == len(loaded)


@pytest.mark.parametrize("files", ["small", "big"])
def test_growing_past_the_threshold_switches_type_and_embeds_only_the_new_file(tmp_path, embedder, monkeypatch, files):
    if files == "big":  # the previous generation's vectors and chunks are read on demand
        monkeypatch.setattr(index_files, "MMAP_MIN_BYTES", 1)
    seeds = three_files(tmp_path)
    first = chunk_count(seeds, tmp_path / "probe", embedder)
    config = Config(seeds_dir=seeds, index_dir=tmp_path / "index", exact_index_max_chunks=first + 1)
    update_index(config, embedder)
    small = load_index(config.index_dir, settings_of(config))
    assert small.index_type == EXACT_INDEX

    (seeds / "d.txt").write_text("Sezim toured Japan. She sang in Osaka. Fans queued all night.", encoding="utf-8")
    seen = []
    original = embedder.encode_documents
    monkeypatch.setattr(embedder, "encode_documents",
                        lambda texts, *a, **k: seen.extend(texts) or original(texts, *a, **k))
    report = update_index(config, embedder)
    big = load_index(config.index_dir, settings_of(config))
    assert report.added == ["d.txt"] and report.embedded == 3 and len(seen) == 6
    assert big.index_type == APPROXIMATE_INDEX and big.vectors.dtype == np.float16
    for name in ("a.txt", "b.txt", "c.txt"):
        old, new = small.manifest["files"][name], big.manifest["files"][name]
        old_rows = slice(old["first"], old["first"] + old["count"])
        new_rows = slice(new["first"], new["first"] + new["count"])
        assert small.chunks[old_rows] == big.chunks[new_rows]
        np.testing.assert_array_equal(
            big.vectors[new["first"] : new["first"] + new["count"]],
            small.vectors[old["first"] : old["first"] + old["count"]].astype(np.float16),
        )

    # An edit of one file in the approximate index re-embeds that file only,
    # and carries the others' float16 vectors over bit for bit.
    (seeds / "b.txt").write_text("Her second album was recorded in a yurt.", encoding="utf-8")
    seen.clear()
    report = update_index(config, embedder)
    after = load_index(config.index_dir, settings_of(config))
    assert report.changed == ["b.txt"] and report.embedded == 1 and len(seen) == 2
    assert after.index_type == EXACT_INDEX  # it shrank below the threshold again
    for name in ("a.txt", "c.txt", "d.txt"):
        old, new = big.manifest["files"][name], after.manifest["files"][name]
        np.testing.assert_array_equal(
            after.vectors[new["first"] : new["first"] + new["count"]],
            big.vectors[old["first"] : old["first"] + old["count"]].astype(np.float32),
        )


# -- approximate search ---------------------------------------------------------------------


def test_approximate_index_recall_on_synthetic_vectors(tmp_path):
    """recall@10 against exact search, as the retriever searches (k = candidates, efSearch from Config)."""
    config = Config(index_dir=tmp_path / "index")
    vectors = synthetic_vectors(30_000, 384, seed=1)
    queries = synthetic_vectors(100, 384, seed=3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    index = faiss_index_for(vectors, APPROXIMATE_INDEX)
    assert isinstance(index, faiss.IndexHNSWSQ) and index.ntotal == len(vectors)

    truth = exact_top(vectors, queries, 10)
    flat = faiss.IndexFlatIP(384)
    flat.add(vectors)
    assert np.array_equal(truth, flat.search(queries, 10)[1])  # the bench's exact search is exact
    params = faiss.SearchParametersHNSW(efSearch=max(config.hnsw_ef_search, config.candidates))
    found = index.search(queries, config.candidates, params=params)[1]
    recall = np.mean([len(set(f[:10]) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95, recall
    # A narrow search is measurably worse: the setting is what buys the recall.
    narrow = index.search(queries, 10, params=faiss.SearchParametersHNSW(efSearch=10))[1]
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(narrow, truth)]) < recall


@pytest.mark.parametrize("n", [1, 7, 50, 200])
def test_top_rows_is_the_stable_sort_set(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        scores = rng.choice([0.0, 0.5, 1.0, 2.5, 3.0], size=rng.integers(1, 400)).astype(np.float32)
        scores[rng.random(len(scores)) < 0.3] += np.float32(rng.random())
        # As BM25 leaves them: most rows at zero, sometimes fewer positive than n.
        scores[rng.random(len(scores)) < rng.choice([0.0, 0.5, 0.95, 1.0])] = 0.0
        expected = np.argsort(-scores, kind="stable")[:n]
        assert sorted(_top_rows(scores, n).tolist()) == sorted(expected.tolist())


# -- loading --------------------------------------------------------------------------------


def test_big_files_are_mapped_or_read_on_demand_with_the_same_answers(seeds_dir, index_dir, make_bot, monkeypatch):
    read = make_bot(seeds_dir, index_dir)
    read.ensure_index()
    assert read.retriever.index.mapped == read.retriever.index.on_demand == []  # a small index is read whole

    monkeypatch.setattr(index_files, "MMAP_MIN_BYTES", 1)  # every file counts as big
    mapped = make_bot(seeds_dir, index_dir)
    assert mapped.ensure_index() is None
    loaded = mapped.retriever.index
    assert loaded.mapped == ["index.faiss", "lexical.bin"]
    assert loaded.on_demand == ["chunks.jsonl", "vectors.npy", "context.npy"]
    maps = Path("/proc/self/maps").read_text()
    for name in loaded.mapped:
        assert str(loaded.path / name) in maps, name
    for name in loaded.on_demand:
        assert str(loaded.path / name) not in maps, name

    # Rows read on demand are the rows of the file.
    vectors = loaded.vectors
    assert isinstance(vectors, RowFile) and isinstance(loaded.chunks, ChunkStore)
    whole = np.load(loaded.path / "vectors.npy")
    assert vectors.shape == whole.shape and vectors.dtype == whole.dtype and len(vectors) == len(whole)
    np.testing.assert_array_equal(np.asarray(vectors), whole)
    np.testing.assert_array_equal(vectors[[3, 0, 3, -1]], whole[[3, 0, 3, -1]])
    np.testing.assert_array_equal(vectors[np.array([5, 2])], whole[[5, 2]])
    np.testing.assert_array_equal(vectors[2:9], whole[2:9])
    np.testing.assert_array_equal(vectors[-1], whole[-1])
    np.testing.assert_array_equal(vectors[1:9:3], whole[1:9:3])
    assert vectors[[]].shape == (0, whole.shape[1])
    with pytest.raises(IndexError):
        vectors[len(whole)]
    assert list(loaded.chunks) == list(read.retriever.index.chunks)

    for question in (DOMBRA, "What was her debut album called?", "Is Sezim married?", "Tell me about her childhood."):
        a, b = read.answer(question), mapped.answer(question)
        assert a.to_dict() == b.to_dict()
        assert [c.score for c in read.retriever.retrieve(question, k=10)] == [
            c.score for c in mapped.retriever.retrieve(question, k=10)
        ]
    follow_up = [{"role": "user", "content": "What was her debut album called?"}, {"role": "assistant", "content": "x"}]
    assert read.answer("Was it a success?", history=follow_up) == mapped.answer("Was it a success?", history=follow_up)


def test_chunks_vocabulary_and_words_are_read_on_demand(seeds_dir, index_dir, embedder, make_bot):
    bot = make_bot(seeds_dir, index_dir)
    bot.ensure_index()
    retriever, index = bot.retriever, bot.retriever.index
    chunks = list(index.chunks)
    assert len(chunks) == len(index) and index.chunks == chunks and index.chunks[-1] == chunks[-1]
    assert index.chunks[2:5] == chunks[2:5]
    with pytest.raises(IndexError):
        index.chunks[len(chunks)]

    # The plain words of the seeds, as a set would hold them.
    expected_words = {w for c in chunks for w in words(c.context)}
    assert set(retriever.words) == expected_words and len(retriever.words) == len(expected_words)
    assert "dombra" in retriever.words and "zanzibar" not in retriever.words
    assert {"dombra", "zanzibar", "almaty"} - retriever.words == {"zanzibar", "almaty"} - expected_words

    # Document frequencies are those of the sentences' BM25 terms.
    tokens = retriever._tokens([c.text for c in chunks])
    frequency = Counter(t for doc in tokens for t in set(doc))
    assert set(index.lexical.terms) >= set(frequency)
    assert all(index.lexical.document_frequency(t) == n for t, n in frequency.items())
    assert index.lexical.document_frequency("zanzibar") == 0
    assert [term.stem for term in retriever.unknown_terms("dombra zanzibar")[0]] == ["zanzibar"]




def test_a_search_runs_on_one_faiss_thread_and_leaves_the_threads_setting_as_it_was(sezim_bot):
    """One question's search gains nothing from OpenMP threads on a small machine (README: "Speed and
    scale"); afterwards the thread's setting is back, so a build it runs later keeps its threads."""
    from bot.retrieve import one_faiss_thread

    here = faiss.omp_get_max_threads()
    with one_faiss_thread():
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == here
    sezim_bot.retrieve(DOMBRA)
    assert faiss.omp_get_max_threads() == here
