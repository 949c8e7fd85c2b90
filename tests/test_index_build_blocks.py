"""A build streams a block of chunks at a time (issue 15, item 6): the same index, never all the vectors at once.

A build in blocks of a few hundred texts is compared with one built in a
single block from the same seeds: the same chunks, vectors within 1e-6, the
same BM25 and the same answers. While it runs, every block embedded before
is already on disk when the next is embedded, so the process holds at most
one block of vectors. Real model, real FAISS, real seed text.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

import bot.index.build as index_build
from bot import Config
from bot.index import APPROXIMATE_INDEX, EXACT_INDEX, load_index, update_index

from conftest import DOMBRA, SEEDS, copy_seeds, write_corpus

#: Bytes of the header of a ``.npy`` file of a float32 matrix.
NPY_HEADER = 128
#: Texts embedded per call in the build in blocks (so 100 chunks a block).
SMALL_BLOCK = 200


def big_seeds(tmp_path: Path, sentences: int) -> Path:
    """The shipped seed and a generated corpus cut in two files: three files, the middle one big."""
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    write_corpus(seeds / "corpus-1.txt", sentences // 2, seed=1, words=(6, 14))
    write_corpus(seeds / "corpus-2.txt", sentences - sentences // 2, seed=2, words=(6, 14))
    return seeds


class EmbedCalls:
    """Wraps the real ``encode_documents``: records each call's size and how many rows were on disk then."""

    def __init__(self, embedder, index_dir: Path):
        self.sizes: list[int] = []
        self.rows_on_disk: list[int] = []
        self._original, self._index_dir = embedder.encode_documents, index_dir

    def __call__(self, texts, *args, **kwargs):
        self.sizes.append(len(texts))
        self.rows_on_disk.append(self._rows_written())
        return self._original(texts, *args, **kwargs)

    def _rows_written(self) -> int:
        """Rows of vectors the new (not yet live) generation's ``vectors.npy`` holds so far."""
        live = (self._index_dir / "CURRENT").read_text().strip() if (self._index_dir / "CURRENT").exists() else ""
        files = [p / "vectors.npy" for p in self._index_dir.glob("gen-*") if p.name != live]
        if not files or not files[0].exists():
            return 0
        return max(files[0].stat().st_size - NPY_HEADER, 0) // (384 * 4)


def build(seeds: Path, index_dir: Path, embedder, block: int, monkeypatch, **settings) -> EmbedCalls:
    calls = EmbedCalls(embedder, index_dir)
    with monkeypatch.context() as patch:
        patch.setattr(index_build, "EMBED_BLOCK", block)
        patch.setattr(embedder, "encode_documents", calls)
        update_index(Config(seeds_dir=seeds, index_dir=index_dir, **settings), embedder)
    return calls


def assert_same_index(one, other, vector_tolerance: float) -> None:
    assert other.manifest["files"] == one.manifest["files"]
    assert list(other.chunks) == list(one.chunks)
    assert (one.path / "chunks.jsonl").read_bytes() == (other.path / "chunks.jsonl").read_bytes()
    assert (one.path / "lexical.bin").read_bytes() == (other.path / "lexical.bin").read_bytes()
    for name in ("vectors", "context_vectors"):
        a, b = np.asarray(getattr(one, name), np.float32), np.asarray(getattr(other, name), np.float32)
        assert a.shape == b.shape and np.abs(a - b).max() <= vector_tolerance, name
    assert np.abs(one.sample_vectors - other.sample_vectors).max() <= vector_tolerance
    assert other.faiss_index.ntotal == one.faiss_index.ntotal == len(one.chunks)


def test_a_build_in_small_blocks_is_the_build_in_one_block_and_holds_one_block(
    tmp_path, embedder, monkeypatch, make_bot
):
    seeds = big_seeds(tmp_path, sentences=1000)
    build(seeds, tmp_path / "whole", embedder, block=10**6, monkeypatch=monkeypatch)
    calls = build(seeds, tmp_path / "blocks", embedder, block=SMALL_BLOCK, monkeypatch=monkeypatch)
    whole, blocks = load_index(tmp_path / "whole"), load_index(tmp_path / "blocks")
    chunks = len(whole.chunks)
    assert chunks > 1000 and whole.index_type == blocks.index_type == EXACT_INDEX

    # Every chunk embedded once, alone and with its window, a block of at most SMALL_BLOCK texts a call...
    assert sum(calls.sizes) == 2 * chunks and max(calls.sizes) <= SMALL_BLOCK
    assert len(calls.sizes) == -(-chunks // (SMALL_BLOCK // 2))
    # ... and each block's vectors are on disk before the next block is embedded.
    assert calls.rows_on_disk == [i * SMALL_BLOCK // 2 for i in range(len(calls.sizes))]

    assert_same_index(whole, blocks, vector_tolerance=1e-6)
    query = embedder.encode_question("the singer recorded a melody by the river")[None, :]
    assert np.array_equal(whole.faiss_index.search(query, 10)[1], blocks.faiss_index.search(query, 10)[1])
    for question in (DOMBRA, "Which song did the singer record in episode 321?"):
        one, other = (
            make_bot(seeds, tmp_path / "whole").answer(question),
            make_bot(seeds, tmp_path / "blocks").answer(question),
        )
        assert (one.text, one.refused) == (other.text, other.refused)


def test_an_update_in_blocks_copies_unchanged_files_and_embeds_only_the_changed_one(tmp_path, embedder, monkeypatch):
    seeds = big_seeds(tmp_path, sentences=600)
    build(seeds, tmp_path / "index", embedder, block=SMALL_BLOCK, monkeypatch=monkeypatch)
    before = load_index(tmp_path / "index")
    with (seeds / "corpus-1.txt").open("a", encoding="utf-8") as handle:  # the middle file of three
        handle.write("\n\nLater the singer recorded a winter album in a barn near Almaty.")
    calls = build(seeds, tmp_path / "index", embedder, block=SMALL_BLOCK, monkeypatch=monkeypatch)
    after = load_index(tmp_path / "index")

    changed = after.manifest["files"]["corpus-1.txt"]
    assert sum(calls.sizes) == 2 * changed["count"] and max(calls.sizes) <= SMALL_BLOCK
    for name in ("corpus-2.txt", "sezim-baktybekova.txt"):  # copied row for row, byte for byte
        old, new = before.manifest["files"][name], after.manifest["files"][name]
        rows_old, rows_new = (
            slice(old["first"], old["first"] + old["count"]),
            slice(new["first"], new["first"] + new["count"]),
        )
        assert after.chunks[rows_new] == before.chunks[rows_old]
        assert after.vectors[rows_new].tobytes() == before.vectors[rows_old].tobytes()
        assert after.context_vectors[rows_new].tobytes() == before.context_vectors[rows_old].tobytes()
    # The same as building the new seeds from nothing.
    build(seeds, tmp_path / "fresh", embedder, block=10**6, monkeypatch=monkeypatch)
    assert_same_index(load_index(tmp_path / "fresh"), after, vector_tolerance=1e-6)


def test_an_approximate_index_built_in_blocks_finds_what_the_exact_one_finds(tmp_path, embedder, monkeypatch):
    seeds = big_seeds(tmp_path, sentences=400)
    build(seeds, tmp_path / "exact", embedder, block=10**6, monkeypatch=monkeypatch)
    build(seeds, tmp_path / "hnsw", embedder, block=SMALL_BLOCK, monkeypatch=monkeypatch, exact_index_max_chunks=100)
    exact, approximate = load_index(tmp_path / "exact"), load_index(tmp_path / "hnsw")
    assert exact.index_type == EXACT_INDEX and approximate.index_type == APPROXIMATE_INDEX
    assert approximate.vectors.dtype == np.float16
    assert_same_index(exact, approximate, vector_tolerance=1e-3)  # float16 storage
    # Its 8-bit quantiser spans exactly the range of the vectors added to it.
    stored = np.asarray(approximate.vectors, np.float32)
    quantiser = faiss.downcast_index(approximate.faiss_index.storage).sq
    trained = faiss.vector_to_array(quantiser.trained).reshape(2, -1)
    assert np.array_equal(trained[0], stored.min(axis=0))
    assert np.allclose(trained[0] + trained[1], stored.max(axis=0), atol=1e-6)
    hits = 0
    for row in range(0, len(exact.chunks), 37):
        query = exact.vectors[row][None, :]
        hits += approximate.faiss_index.search(query, 1)[1][0][0] == exact.faiss_index.search(query, 1)[1][0][0]
    assert hits >= 0.9 * len(range(0, len(exact.chunks), 37))
