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

from ..chunk import Chunk
from ..config import Config
from ..embed import Embedder
from ..ingest import NoSeedsError, Seeds, seeds_of, skipped_summary
from .failed import fingerprint, forget_failure, known_failure, record_failure
from .files import fsync, write_arrays, write_chunks
from .lexical import LexicalIndex
from .load import IndexUnavailable, LoadedIndex, load_index, stale_files
from .manifest import (
    ARTIFACTS,
    artifact_checksums,
    current_generation,
    index_entry,
    index_type_for,
    settings_of,
    vector_dtype,
)
from .stream import VectorSink, empty_faiss_index, vector_blocks, write_chunks_of, write_lexical

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


def update_index(
    config: Config, embedder: Embedder, progress: bool = False, wait: bool = True, retry_failed: bool = True
) -> BuildReport:
    """Bring the index in line with the seeds, embedding only what changed.

    Safe to call at any time: when nothing changed it writes nothing; a
    missing, damaged or incompatible index is rebuilt from scratch, with the
    reason logged once. The live index is verified in full (every file's
    SHA-256) before anything is reused from it. ``wait=False``: raise
    :class:`BuildInProgress` rather than wait while another process builds.
    ``retry_failed=False``: when a build of the same seeds ran out of disk
    space before, raise that error again at once rather than redo it
    (``bot.index.failed``). The new generation is written a block of chunks
    at a time (``bot.index.stream``).
    """
    started = time.perf_counter()
    seeds = seeds_of(config)
    expected = settings_of(config)
    seeds_fingerprint = fingerprint(seeds, expected)
    with build_lock(config.index_dir, wait=wait):
        failed_before = None if retry_failed else known_failure(config.index_dir, seeds_fingerprint)
        if failed_before is not None:
            raise failed_before
        report = BuildReport(skipped=seeds.skipped)
        old = _reusable_index(config.index_dir, expected, report)
        old_files = old.manifest["files"] if old else {}
        report.removed = sorted(set(old_files) - {seed.path for seed in seeds})
        if old is not None and not stale_files(old, seeds):
            report.unchanged, report.chunks = len(seeds), len(old)
            report.seconds = time.perf_counter() - started
            return report
        try:
            _build_generation(config, seeds, old, embedder, report, progress)
        except OSError as error:
            record_failure(config.index_dir, seeds_fingerprint, error)
            raise
        forget_failure(config.index_dir)
        report.seconds = time.perf_counter() - started
        log.info(report.summary())
        return report


def _build_generation(
    config: Config, seeds: Seeds, old: LoadedIndex | None, embedder: Embedder, report: BuildReport, progress: bool
) -> None:
    """Write the new generation of ``seeds`` (reusing what ``old`` has) and make it the live one."""
    dimension = old.vectors.shape[1] if old is not None else embedder.dimension
    with _new_generation(config.index_dir) as generation:
        plan = write_chunks_of(generation, seeds, old, config.window, report)
        if not plan.rows:
            raise NoSeedsError(f"The documents in {config.seeds_dir} hold no sentences to index.")
        _check_space(config.index_dir, plan.rows, dimension)  # before the costly embedding
        kind = index_type_for(plan.rows, config)
        report.embedded = _write_vectors(generation, plan, old, dimension, kind, embedder, config, progress)
        write_lexical(generation, plan)
        manifest = {**settings_of(config), "dimension": dimension, "files": plan.files, "built_at": time.time()}
        _finish_generation(generation, config.index_dir, manifest, plan.rows, kind, config)
    report.chunks = plan.rows


def _reusable_index(index_dir: Path, expected: dict, report: BuildReport) -> LoadedIndex | None:
    """The live index, verified in full, or None; why an existing one cannot be reused goes in ``report``."""
    try:
        return load_index(index_dir, expected, verify="full")
    except IndexUnavailable as problem:
        if current_generation(index_dir) is not None:
            report.rebuilt_because = problem.reason
            log.warning("Rebuilding the index: %s.", problem.reason)
        return None


#: Texts embedded per call (a block's sentences and their windows): the most
#: vectors a build holds at once, and how often it logs the time left.
EMBED_BLOCK = 8192
#: Seconds between two lines on the embedding's progress.
PROGRESS_SECONDS = 10.0


def _write_vectors(
    generation: Path,
    plan,
    old: LoadedIndex | None,
    dimension: int,
    kind: str,
    embedder: Embedder,
    config: Config,
    progress: bool,
) -> int:
    """Write the vector files, the spread sample and the FAISS index of ``plan``'s rows; the number embedded."""
    block = max(EMBED_BLOCK // 2, 1)  # chunks a block: each is embedded twice, alone and with its window
    fresh = int(len(plan.fresh_rows))
    embed = _BlockEmbedder(embedder, config, fresh, progress=progress and 512 < 2 * fresh <= EMBED_BLOCK)
    sink = VectorSink(generation, plan.rows, dimension, kind)
    for vectors, context_vectors in vector_blocks(plan, generation, old, embed, block):
        sink.append(vectors, context_vectors)
    sink.finish(block)
    return fresh


class _BlockEmbedder:
    """Embeds a block of chunks (sentences, then windows, in one call), logging how far it got and the time left.

    Embedding is most of a build's time (minutes for a seed of a few MB), and
    without the log a build said nothing until it was done.
    """

    def __init__(self, embedder: Embedder, config: Config, chunks: int, progress: bool):
        self.embedder, self.batch_size, self.progress = embedder, config.batch_size, progress
        self.total, self.done = 2 * chunks, 0
        self.started = self.last = time.monotonic()

    def __call__(self, chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
        texts = [chunk.text for chunk in chunks] + [chunk.context for chunk in chunks]
        embedded = self.embedder.encode_documents(texts, batch_size=self.batch_size, progress=self.progress)
        self.done += len(texts)
        now = time.monotonic()
        if now - self.last >= PROGRESS_SECONDS and self.done < self.total:
            rate = self.done / max(now - self.started, 1e-9)
            log.info(
                "Embedding the seeds: %d of %d sentences and windows (%.0f a second, about %.0f min left).",
                self.done,
                self.total,
                rate,
                (self.total - self.done) / rate / 60,
            )
            self.last = now
        return embedded[: len(chunks)], embedded[len(chunks) :]


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
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: the index needs at least {needed / 2**20:.1f} MiB "
            f"and {index_dir} has {free / 2**20:.1f} MiB free",
        )


def faiss_index_for(vectors: np.ndarray, kind: str) -> faiss.Index:
    """A new FAISS index of ``kind`` over ``vectors`` (float32, unit length)."""
    index = empty_faiss_index(kind, vectors.shape[1])
    if not index.is_trained:
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
    """Write a complete generation from chunks and vectors in memory, then make it the live one.

    ``manifest`` holds the settings, ``dimension`` and ``files``; the index
    type, vector precision, chunk count and the checksums are added here.
    The index type follows the size (``Config.exact_index_max_chunks``).
    The files are those a build writes a block at a time (see :func:`update_index`),
    through the same :class:`VectorSink`, given every vector at once.
    """
    with _new_generation(index_dir) as generation:
        kind = index_type_for(len(chunks), config)
        write_chunks(generation, chunks)
        sink = VectorSink(generation, len(chunks), vectors.shape[1], kind)
        sink.append(np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(context_vectors, np.float32))
        sink.finish(max(EMBED_BLOCK // 2, 1))
        arrays, meta = LexicalIndex.arrays_for(chunks)
        write_arrays(generation / "lexical.bin", arrays, meta)
        _finish_generation(generation, index_dir, manifest, len(chunks), kind, config)
    return generation


@contextmanager
def _new_generation(index_dir: Path):
    """A new, empty generation folder beside the live one, removed again if it cannot be written.

    A generation that could not be written (the disk filled up, the folder
    became read-only) is removed at once, so that failed builds do not pile
    up and fill the disk for good. (A process killed midway leaves its
    generation to the next build.)
    """
    generation = index_dir / f"gen-{time.time_ns():x}-{os.getpid()}"
    generation.mkdir(parents=True)
    try:
        yield generation
    except (OSError, NoSeedsError) as error:
        short_write = isinstance(error, OSError) and error.errno is None and "written" in str(error)
        shutil.rmtree(generation, ignore_errors=True)
        (index_dir / f".CURRENT.{os.getpid()}").unlink(missing_ok=True)
        if short_write:  # numpy reports a full disk as a short write, with no errno
            raise OSError(errno.ENOSPC, f"No space left on device ({error})") from error
        raise


def _finish_generation(generation: Path, index_dir: Path, manifest: dict, rows: int, kind: str, config: Config) -> None:
    """Complete the manifest of a generation whose artifacts are written, flush it all, make it the live one."""
    manifest["chunks"] = rows
    manifest["index"] = index_entry(kind, config)
    manifest["vectors_dtype"] = np.dtype(vector_dtype(kind)).name
    manifest.update(artifact_checksums(generation))
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for name in (*ARTIFACTS, "manifest.json"):
        fsync(generation / name)
    fsync(generation)
    _make_live(index_dir, generation)


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
