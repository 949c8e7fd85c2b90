"""Building and updating the index: the only module that writes one.

A build writes a new generation beside the live one and only then points
``CURRENT`` at it, so a crash at any moment leaves the previous index intact.
Updates are incremental: chunks and vectors of unchanged seed files are
copied from the live generation and only new or changed files are embedded.
Builds of one index folder take turns (``build_lock``).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from ..chunk import Chunk, chunk_seed
from ..config import Config
from ..embed import Embedder
from ..ingest import NoSeedsError, SeedFile, seeds_of, skipped_summary
from .files import fsync, write_arrays, write_chunks
from .lexical import LexicalIndex
from .load import IndexUnavailable, LoadedIndex, load_index, stale_files
from .manifest import (
    ARTIFACTS,
    EXACT_INDEX,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    artifact_checksums,
    current_generation,
    index_entry,
    index_type_for,
    settings_of,
    spread_sample_rows,
    vector_dtype,
)

#: Log lines say "bot.index", the package, whichever of its modules writes them.
log = logging.getLogger("bot.index")


@dataclass
class BuildReport:
    """What a build or update did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    #: Why the previous index was not reused, when it was not.
    rebuilt_because: str | None = None
    #: Files in the seeds folder that could not be read (``bot.ingest.SkippedFile``).
    skipped: list = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        """True when the build wrote a new generation."""
        return bool(self.added or self.changed or self.removed or self.rebuilt_because)

    def summary(self) -> str:
        """A one-line account for the command line and the log."""
        if not self.changed_anything:
            up_to_date = f"Index is up to date: {self.chunks} chunks from {self.unchanged} files."
            return up_to_date + skipped_summary(self.skipped)
        why = f" (rebuilt: {self.rebuilt_because})" if self.rebuilt_because else ""
        return (
            f"Index updated{why}: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged; {self.chunks} chunks "
            f"({self.embedded} embedded) in {self.seconds:.1f}s."
        ) + skipped_summary(self.skipped)


class BuildInProgress(RuntimeError):
    """Another process holds the build lock (it is updating the index) and waiting was not wanted."""


@contextmanager
def build_lock(index_dir: Path, wait: bool = True):
    """Hold an exclusive lock on the index folder while building.

    ``wait=False``: raise :class:`BuildInProgress` at once when another process holds it.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise BuildInProgress(f"another process is updating the index in {index_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_index(config: Config, embedder: Embedder, progress: bool = False, wait: bool = True) -> BuildReport:
    """Bring the index in line with the seeds, embedding only what changed.

    Safe to call at any time: when nothing changed it writes nothing; a
    missing, damaged or incompatible index is rebuilt from scratch, with the
    reason logged once. The live index is verified in full (every file's
    SHA-256) before anything is reused from it. ``wait=False``: raise
    :class:`BuildInProgress` rather than wait while another process builds.
    """
    started = time.perf_counter()
    seeds = seeds_of(config)
    expected = settings_of(config)
    with build_lock(config.index_dir, wait=wait):
        report = BuildReport(skipped=seeds.skipped)
        old = _reusable_index(config.index_dir, expected, report)
        old_files = old.manifest["files"] if old else {}
        report.removed = sorted(set(old_files) - {seed.path for seed in seeds})
        if old is not None and not stale_files(old, seeds):
            report.unchanged, report.chunks = len(seeds), len(old)
            report.seconds = time.perf_counter() - started
            return report

        chunks, files, reused = _chunks_of(seeds, old, config, report)
        if not chunks:
            raise NoSeedsError(f"The documents in {config.seeds_dir} hold no sentences to index.")
        dimension = old.vectors.shape[1] if old is not None else embedder.dimension
        _check_space(config.index_dir, len(chunks), dimension)  # before the costly embedding
        vectors, context_vectors, report.embedded = _vectors_for(chunks, reused, old, embedder, config, progress)
        manifest = {**expected, "dimension": vectors.shape[1], "files": files, "built_at": time.time()}
        write_generation(config.index_dir, manifest, chunks, vectors, context_vectors, config)
        report.chunks = len(chunks)
        report.seconds = time.perf_counter() - started
        log.info(report.summary())
        return report


def _reusable_index(index_dir: Path, expected: dict, report: BuildReport) -> LoadedIndex | None:
    """The live index, verified in full, or None; why an existing one cannot be reused goes in ``report``."""
    try:
        return load_index(index_dir, expected, verify="full")
    except IndexUnavailable as problem:
        if current_generation(index_dir) is not None:
            report.rebuilt_because = problem.reason
            log.warning("Rebuilding the index: %s.", problem.reason)
        return None


def _chunks_of(
    seeds: list[SeedFile], old: LoadedIndex | None, config: Config, report: BuildReport
) -> tuple[list[Chunk], dict[str, dict], dict[int, tuple[int, int]]]:
    """The chunks of every seed, taken from ``old`` for unchanged files, else chunked afresh.

    Returns the chunks, the manifest's ``files`` record (each file's hash and
    rows), and the reused runs: position in the chunks -> (first row, count)
    in ``old``. Records added, changed and unchanged files in ``report``.
    """
    old_files = old.manifest["files"] if old else {}
    chunks: list[Chunk] = []
    files: dict[str, dict] = {}
    reused: dict[int, tuple[int, int]] = {}
    for seed in seeds:
        entry = old_files.get(seed.path)
        if entry and entry["sha256"] == seed.sha256:
            first, count = entry["first"], entry["count"]
            reused[len(chunks)] = (first, count)
            new_chunks = old.chunks[first : first + count]
            report.unchanged += 1
        else:
            (report.changed if entry else report.added).append(seed.path)
            new_chunks = chunk_seed(seed, config.window)
        files[seed.path] = {"sha256": seed.sha256, "first": len(chunks), "count": len(new_chunks)}
        chunks.extend(new_chunks)
    return chunks, files, reused


def _vectors_for(
    chunks: list[Chunk],
    reused: dict[int, tuple[int, int]],
    old: LoadedIndex | None,
    embedder: Embedder,
    config: Config,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sentence and window vectors for ``chunks``: copied where reused, else embedded.

    Vectors copied from an approximate index were stored as float16; they
    stay rounded so (within 0.001) should the corpus shrink to an exact one.
    """
    is_fresh = np.ones(len(chunks), dtype=bool)
    for position, (_, count) in reused.items():
        is_fresh[position : position + count] = False
    fresh = np.flatnonzero(is_fresh)
    texts = [chunks[i].text for i in fresh] + [chunks[i].context for i in fresh]
    embedded = _embed_with_progress(embedder, texts, config, progress)
    dimension = embedded.shape[1] if len(fresh) else old.vectors.shape[1]
    vectors = np.zeros((len(chunks), dimension), np.float32)
    context_vectors = np.zeros((len(chunks), dimension), np.float32)
    vectors[fresh] = embedded[: len(fresh)]
    context_vectors[fresh] = embedded[len(fresh) :]
    for position, (first, count) in reused.items():
        vectors[position : position + count] = old.vectors[first : first + count]
        context_vectors[position : position + count] = old.context_vectors[first : first + count]
    return vectors, context_vectors, len(fresh)


#: Texts embedded per call when building a big index: the time left is logged between calls.
EMBED_BLOCK = 8192
#: Seconds between two lines on the embedding's progress.
PROGRESS_SECONDS = 10.0


def _embed_with_progress(embedder: Embedder, texts: list[str], config: Config, progress: bool) -> np.ndarray:
    """``embedder.encode_documents(texts)``; for many texts, in blocks, logging how far it got and the time left.

    Embedding is most of a build's time (minutes for a seed of a few MB), and
    without this a build said nothing until it was done.
    """
    if len(texts) <= EMBED_BLOCK:
        return embedder.encode_documents(texts, batch_size=config.batch_size, progress=progress and len(texts) > 512)
    out: np.ndarray | None = None
    started = last = time.monotonic()
    for first in range(0, len(texts), EMBED_BLOCK):
        block = embedder.encode_documents(texts[first : first + EMBED_BLOCK], batch_size=config.batch_size)
        if out is None:
            out = np.empty((len(texts), block.shape[1]), dtype=np.float32)
        out[first : first + len(block)] = block
        done, now = first + len(block), time.monotonic()
        if now - last >= PROGRESS_SECONDS and done < len(texts):
            rate = done / (now - started)
            log.info("Embedding the seeds: %d of %d sentences and windows (%.0f a second, about %.0f min left).",
                     done, len(texts), rate, (len(texts) - done) / rate / 60)
            last = now
    return out


def _check_space(index_dir: Path, chunks: int, dimension: int) -> None:
    """Raise ENOSPC before embedding when the index folder cannot hold even the smallest index of ``chunks``.

    The smallest possible index holds two float16 vectors a chunk; a build
    that cannot fit them would embed every changed seed only to fail when
    writing, again at every command that finds the index stale.
    """
    try:
        free = shutil.disk_usage(index_dir if index_dir.exists() else index_dir.parent).free
    except OSError:
        return
    needed = chunks * dimension * 2 * 2
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: the index needs at least {needed / 2**20:.1f} MiB "
                                    f"and {index_dir} has {free / 2**20:.1f} MiB free")


def faiss_index_for(vectors: np.ndarray, kind: str) -> faiss.Index:
    """A new FAISS index of ``kind`` over ``vectors`` (float32, unit length)."""
    if kind == EXACT_INDEX:
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.train(vectors)
    index.add(vectors)
    return index


def write_generation(
    index_dir: Path,
    manifest: dict,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    context_vectors: np.ndarray,
    config: Config,
) -> Path:
    """Write a complete generation, then make it the live one.

    ``manifest`` holds the settings, ``dimension`` and ``files``; the index
    type, vector precision, chunk count and the checksums are added here.
    The index type follows the size (``Config.exact_index_max_chunks``).
    """
    generation = index_dir / f"gen-{time.time_ns():x}-{os.getpid()}"
    generation.mkdir(parents=True)
    try:
        return _fill_generation(generation, index_dir, manifest, chunks, vectors, context_vectors, config)
    except OSError as error:
        # A generation that could not be written (the disk filled up, the folder became
        # read-only) is removed at once, so that failed builds do not pile up and fill the
        # disk for good. (A process killed midway leaves its generation to the next build.)
        short_write = error.errno is None and "written" in str(error)
        shutil.rmtree(generation, ignore_errors=True)
        (index_dir / f".CURRENT.{os.getpid()}").unlink(missing_ok=True)
        if short_write:  # numpy reports a full disk as a short write, with no errno
            raise OSError(errno.ENOSPC, f"No space left on device ({error})") from error
        raise


def _fill_generation(
    generation: Path,
    index_dir: Path,
    manifest: dict,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    context_vectors: np.ndarray,
    config: Config,
) -> Path:
    """Write everything of a generation into its (new, empty) folder, then make it the live one."""
    kind = index_type_for(len(chunks), config)
    _write_artifacts(generation, chunks, vectors, context_vectors, kind)

    manifest["chunks"] = len(chunks)
    manifest["index"] = index_entry(kind, config)
    manifest["vectors_dtype"] = np.dtype(vector_dtype(kind)).name
    manifest.update(artifact_checksums(generation))
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for name in (*ARTIFACTS, "manifest.json"):
        fsync(generation / name)
    fsync(generation)
    _make_live(index_dir, generation)
    return generation


def _write_artifacts(
    generation: Path, chunks: Sequence[Chunk], vectors: np.ndarray, context_vectors: np.ndarray, kind: str
) -> None:
    """Write every file of ``ARTIFACTS`` into ``generation``, the vectors stored as ``kind`` needs."""
    write_chunks(generation, chunks)
    dtype = vector_dtype(kind)
    stored = np.asarray(vectors).astype(dtype, copy=False)
    stored_context = np.asarray(context_vectors).astype(dtype, copy=False)
    np.save(generation / "vectors.npy", stored)
    np.save(generation / "context.npy", stored_context)
    rows = spread_sample_rows(len(chunks))
    np.save(generation / "spread-sample.npy", np.stack([stored[rows], stored_context[rows]]).astype(np.float32))
    del stored, stored_context
    searchable = faiss_index_for(np.ascontiguousarray(vectors, dtype=np.float32), kind)
    faiss.write_index(searchable, str(generation / "index.faiss"))
    del searchable
    arrays, meta = LexicalIndex.arrays_for(chunks)
    write_arrays(generation / "lexical.bin", arrays, meta)


def _make_live(index_dir: Path, generation: Path) -> None:
    """Point ``CURRENT`` at ``generation`` atomically, then remove generations no reader can need."""
    previous = current_generation(index_dir)
    pointer = index_dir / f".CURRENT.{os.getpid()}"
    pointer.write_text(generation.name + "\n", encoding="utf-8")
    fsync(pointer)
    os.replace(pointer, index_dir / "CURRENT")
    fsync(index_dir)
    _remove_old_generations(index_dir, keep={generation.name, previous.name if previous else ""})


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Delete generations other than the live one and the one before it.

    The previous one is kept so that a process that read ``CURRENT`` just
    before the switch can still open its files. (A process that has them
    memory-mapped keeps them readable even after they are deleted.)
    """
    for path in index_dir.iterdir():
        if path.name.startswith(("gen-", ".CURRENT.")) and path.name not in keep:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
