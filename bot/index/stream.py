"""Writing a generation block by block, so that a build's memory does not grow with the seeds.

A build walks the rows of the new generation in order, twice.

1. :func:`write_chunks_of` writes ``chunks.jsonl`` and its offsets: the lines
   of an unchanged file are copied from the live generation, a new or changed
   file is chunked a few hundred paragraphs at a time.
2. :class:`VectorSink` takes the vectors a block at a time (those of unchanged
   files copied from the live generation, the others embedded a block of
   chunks at a time, read back from the new ``chunks.jsonl``: see
   :func:`vector_blocks`) and appends them to ``vectors.npy`` and
   ``context.npy``, the spread sample and the FAISS index at once.

What stays in memory whole is small: the row offsets (8 bytes a chunk), the
spread sample, and the FAISS index itself (the exact one only up to
``Config.exact_index_max_chunks`` rows; the approximate one keeps 8-bit codes).
The files are byte for byte those of writing it all at once
(``write_generation``), except that the approximate index is filled from the
stored float16 vectors rather than the float32 ones (its 8-bit codes are
coarser than that rounding by a factor of about 50).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from ..chunk import Chunk, chunk_seed
from ..ingest import SeedFile
from .files import ChunkStore, RowFile, RowWriter, chunk_line, write_arrays
from .lexical import LexicalIndex
from .load import LoadedIndex
from .manifest import EXACT_INDEX, HNSW_EF_CONSTRUCTION, HNSW_M, spread_sample_rows, vector_dtype

#: Paragraphs chunked at a time: a 15 MB file is never held as 200,000 chunk objects.
PARAGRAPHS_AT_A_TIME = 512
#: Bytes of chunk lines copied at a time from the live generation.
COPY_BYTES = 8 << 20

#: ``embed(chunks)`` -> (sentence vectors, window vectors), float32 unit rows.
Embed = Callable[[list[Chunk]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Run:
    """Consecutive rows of the new generation that come from the same place."""

    start: int
    count: int
    #: The first of these rows in the live generation; None when they are embedded afresh.
    old_first: int | None = None


@dataclass
class ChunkPlan:
    """What :func:`write_chunks_of` wrote: the manifest's ``files``, the runs of rows, their number."""

    files: dict[str, dict]
    runs: list[Run]
    rows: int
    offsets: np.ndarray

    @property
    def fresh_rows(self) -> np.ndarray:
        """The rows to embed, in order."""
        runs = [np.arange(r.start, r.start + r.count, dtype=np.int64) for r in self.runs if r.old_first is None]
        return np.concatenate(runs) if runs else np.zeros(0, np.int64)


def write_chunks_of(
    generation: Path, seeds: Sequence[SeedFile], old: LoadedIndex | None, window: int, report
) -> ChunkPlan:
    """Write ``chunks.jsonl`` and its offsets for ``seeds``; record added, changed and unchanged files in ``report``."""
    old_files = old.manifest["files"] if old else {}
    old_offsets = np.load(old.path / "chunks.offsets.npy") if old else None
    files, runs, lengths = {}, [], [np.zeros(1, np.int64)]
    rows = 0
    with (generation / "chunks.jsonl").open("wb") as out:
        for seed in seeds:
            entry = old_files.get(seed.path)
            if entry and entry["sha256"] == seed.sha256:
                report.unchanged += 1
                first, count = entry["first"], entry["count"]
                _copy_bytes(old.path / "chunks.jsonl", int(old_offsets[first]), int(old_offsets[first + count]), out)
                lengths.append(np.diff(old_offsets[first : first + count + 1]))
                run = Run(rows, count, first)
            else:
                (report.changed if entry else report.added).append(seed.path)
                written = _write_fresh_lines(seed, window, out)
                lengths.append(written)
                run = Run(rows, len(written))
            files[seed.path] = {"sha256": seed.sha256, "first": rows, "count": run.count}
            if run.count:
                runs.append(run)
            rows += run.count
    offsets = np.cumsum(np.concatenate(lengths), dtype=np.int64)
    np.save(generation / "chunks.offsets.npy", offsets)
    return ChunkPlan(files, runs, rows, offsets)


def _copy_bytes(source: Path, start: int, end: int, out: BinaryIO) -> None:
    with source.open("rb") as handle:
        handle.seek(start)
        while start < end:
            piece = handle.read(min(COPY_BYTES, end - start))
            if not piece:
                raise OSError(f"{source} is shorter than its offsets say")
            out.write(piece)
            start += len(piece)


def _write_fresh_lines(seed: SeedFile, window: int, out: BinaryIO) -> np.ndarray:
    """Chunk ``seed`` a few hundred paragraphs at a time, writing each chunk's line; the lines' lengths.

    Chunking never looks across a paragraph (a window stays in its block), so
    chunking the paragraphs a piece at a time gives the chunks of the whole file.
    """
    lengths = []
    for first in range(0, len(seed.blocks), PARAGRAPHS_AT_A_TIME):
        piece = dataclasses.replace(seed, blocks=seed.blocks[first : first + PARAGRAPHS_AT_A_TIME])
        for chunk in chunk_seed(piece, window):
            line = chunk_line(chunk)
            out.write(line)
            lengths.append(len(line))
    return np.array(lengths, dtype=np.int64)


def vector_blocks(
    plan: ChunkPlan, generation: Path, old: LoadedIndex | None, embed: Embed, block: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The sentence and window vectors (float32) of every row of ``plan``, in order, a block at a time.

    Rows of unchanged files are copied from ``old``; the others are embedded
    ``block`` chunks at a time, in the order of the rows, whatever file they are in.
    """
    store = ChunkStore(generation / "chunks.jsonl", plan.offsets)
    fresh = plan.fresh_rows
    taken = 0  # fresh rows embedded so far
    pending = (np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32))
    for run in plan.runs:
        for start in range(0, run.count, block):
            count = min(block, run.count - start)
            if run.old_first is not None:
                rows = slice(run.old_first + start, run.old_first + start + count)
                yield _float32(old.vectors[rows]), _float32(old.context_vectors[rows])
                continue
            while count:
                if not len(pending[0]):
                    pending = embed([store[int(row)] for row in fresh[taken : taken + block]])
                    taken += len(pending[0])
                used = min(count, len(pending[0]))
                yield pending[0][:used], pending[1][:used]
                pending = (pending[0][used:], pending[1][used:])
                count -= used


def _float32(rows) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32)


def empty_faiss_index(kind: str, dimension: int) -> faiss.Index:
    """An empty FAISS index of ``kind``: exact inner product, or HNSW over 8-bit codes (to be trained)."""
    if kind == EXACT_INDEX:
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWSQ(dimension, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


class VectorSink:
    """Where a build's vectors go, a block at a time: the two vector files, the spread sample, FAISS."""

    def __init__(self, generation: Path, rows: int, dimension: int, kind: str):
        self.generation, self.rows, self.kind = generation, rows, kind
        self.dtype = vector_dtype(kind)
        self._vectors = RowWriter(generation / "vectors.npy", rows, dimension, self.dtype)
        self._context = RowWriter(generation / "context.npy", rows, dimension, self.dtype)
        self._sample_rows = spread_sample_rows(rows)
        self._sample = np.zeros((2, len(self._sample_rows), dimension), np.float32)
        self._faiss = empty_faiss_index(kind, dimension) if kind == EXACT_INDEX else None
        # The approximate index's 8-bit quantiser is trained on each dimension's
        # range, so the range of every vector is all it needs to see.
        self._low = np.full(dimension, np.inf, np.float32)
        self._high = np.full(dimension, -np.inf, np.float32)

    def append(self, vectors: np.ndarray, context_vectors: np.ndarray) -> None:
        """The float32 vectors of the next rows."""
        start = self._vectors.written
        self._vectors.append(vectors)
        self._context.append(context_vectors)
        first, end = np.searchsorted(self._sample_rows, [start, start + len(vectors)])
        picked = self._sample_rows[first:end] - start
        self._sample[0, first:end] = vectors[picked].astype(self.dtype)
        self._sample[1, first:end] = context_vectors[picked].astype(self.dtype)
        if self._faiss is not None:
            self._faiss.add(vectors)
        elif len(vectors):  # the range of the vectors as stored, which are what the index gets
            stored = vectors.astype(self.dtype).astype(np.float32)
            np.minimum(self._low, stored.min(axis=0), out=self._low)
            np.maximum(self._high, stored.max(axis=0), out=self._high)

    def finish(self, block: int) -> None:
        """Close the vector files, then write ``spread-sample.npy`` and ``index.faiss``."""
        self._vectors.close()
        self._context.close()
        np.save(self.generation / "spread-sample.npy", self._sample)
        searchable = self._faiss if self._faiss is not None else self._approximate_index(block)
        faiss.write_index(searchable, str(self.generation / "index.faiss"))

    def _approximate_index(self, block: int) -> faiss.Index:
        """HNSW over 8-bit codes, trained on the range of every vector, filled from the stored vectors."""
        index = empty_faiss_index(self.kind, len(self._low))
        index.train(np.stack([self._low, self._high]))
        stored = RowFile(self.generation / "vectors.npy")
        for start in range(0, self.rows, block):
            index.add(_float32(stored[start : start + block]))
        return index


def write_lexical(generation: Path, plan: ChunkPlan) -> None:
    """Write ``lexical.bin`` from the generation's ``chunks.jsonl`` (read a chunk at a time when it is big)."""
    arrays, meta = LexicalIndex.arrays_for(ChunkStore(generation / "chunks.jsonl", plan.offsets))
    write_arrays(generation / "lexical.bin", arrays, meta)
