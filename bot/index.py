"""Build, update and load the FAISS index in ``index/``.

Layout of the index folder::

    index/
      CURRENT             name of the live generation (replaced atomically)
      gen-.../            one complete, immutable build
        manifest.json     model, dimension, chunking, seed hashes, checksums
        chunks.jsonl      one sentence chunk a line, grouped by seed file
        vectors.npy       float32 unit vectors of each sentence, one row per chunk
        context.npy       float32 unit vectors of each sentence with its window
        index.faiss       FAISS inner-product index over the sentence vectors
      .lock               held while a build runs

A build writes a new generation beside the live one and only then points
``CURRENT`` at it, so a crash at any moment leaves the previous index intact.
Updates are incremental: chunks and vectors of unchanged seed files are
copied from the live generation and only new or changed files are embedded.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from .chunk import MAX_SENTENCE_WORDS, Chunk, chunk_seed
from .config import Config
from .embed import Embedder, model_identity
from .ingest import NoSeedsError, SeedFile, file_sha256, load_seeds

log = logging.getLogger(__name__)

#: Bumped whenever the files of a generation change meaning; an index of
#: another version is rebuilt rather than misread.
FORMAT_VERSION = 1
ARTIFACTS = ("chunks.jsonl", "vectors.npy", "context.npy", "index.faiss")


class IndexUnavailable(RuntimeError):
    """The index cannot be used as it is; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoadedIndex:
    """A generation of the index, read into memory."""

    manifest: dict
    chunks: list[Chunk]
    vectors: np.ndarray
    context_vectors: np.ndarray
    faiss_index: faiss.Index
    path: Path

    def __len__(self) -> int:
        return len(self.chunks)


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

    @property
    def changed_anything(self) -> bool:
        """True when the build wrote a new generation."""
        return bool(self.added or self.changed or self.removed or self.rebuilt_because)

    def summary(self) -> str:
        """A one-line account for the command line and the log."""
        if not self.changed_anything:
            return f"Index is up to date: {self.chunks} chunks from {self.unchanged} files."
        why = f" (rebuilt: {self.rebuilt_because})" if self.rebuilt_because else ""
        return (
            f"Index updated{why}: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged; {self.chunks} chunks "
            f"({self.embedded} embedded) in {self.seconds:.1f}s."
        )


def settings_of(config: Config) -> dict:
    """The settings an index was built with; a difference forces a rebuild."""
    return {
        "format_version": FORMAT_VERSION,
        "model": model_identity(config.model),
        "chunking": {"splitter": "syntok", "window": config.window, "max_sentence_words": MAX_SENTENCE_WORDS},
    }


def current_generation(index_dir: Path) -> Path | None:
    """The folder of the live generation, or None when there is none."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    return index_dir / name


def load_index(index_dir: Path, expected: dict | None = None) -> LoadedIndex:
    """Load and verify the live generation of the index in ``index_dir``.

    ``expected`` is the output of :func:`settings_of`; when given, an index
    built with other settings is refused. Raises :class:`IndexUnavailable`
    when the index is missing, damaged or incompatible.
    """
    generation = current_generation(index_dir)
    if generation is None or not (generation / "manifest.json").is_file():
        raise IndexUnavailable("no index has been built yet")
    try:
        manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        checksums = manifest["artifacts"]
    except (OSError, ValueError, KeyError, TypeError):
        raise IndexUnavailable("its manifest is unreadable") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(f"it has format version {manifest.get('format_version')}, not {FORMAT_VERSION}")
    if expected is not None:
        for key in ("model", "chunking"):
            if manifest.get(key) != expected[key]:
                raise IndexUnavailable(f"it was built with another {key} ({manifest.get(key)})")
    for name in ARTIFACTS:
        path = generation / name
        if not path.is_file() or file_sha256(path) != checksums.get(name):
            raise IndexUnavailable(f"{name} is missing or damaged")
    try:
        with (generation / "chunks.jsonl").open(encoding="utf-8") as handle:
            chunks = [Chunk(**json.loads(line)) for line in handle]
        vectors = np.load(generation / "vectors.npy")
        context_vectors = np.load(generation / "context.npy")
        faiss_index = faiss.read_index(str(generation / "index.faiss"))
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise IndexUnavailable(f"its files cannot be read ({error})") from None
    if not (len(chunks) == len(vectors) == len(context_vectors) == faiss_index.ntotal):
        raise IndexUnavailable("its files disagree on the number of chunks")
    return LoadedIndex(
        manifest=manifest, chunks=chunks, vectors=vectors, context_vectors=context_vectors,
        faiss_index=faiss_index, path=generation,
    )


def stale_files(index: LoadedIndex, seeds: list[SeedFile]) -> bool:
    """True when the seeds on disk differ from those the index was built from."""
    built = {name: entry["sha256"] for name, entry in index.manifest["files"].items()}
    return built != {seed.path: seed.sha256 for seed in seeds}


@contextmanager
def build_lock(index_dir: Path):
    """Hold an exclusive lock on the index folder while building."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def update_index(config: Config, embedder: Embedder, progress: bool = False) -> BuildReport:
    """Bring the index in line with the seeds, embedding only what changed.

    Safe to call at any time: when nothing changed it writes nothing; a
    missing, damaged or incompatible index is rebuilt from scratch, with the
    reason logged once.
    """
    started = time.perf_counter()
    seeds = load_seeds(config.seeds_dir, config.max_seed_bytes)
    expected = settings_of(config)
    with build_lock(config.index_dir):
        report = BuildReport()
        try:
            old = load_index(config.index_dir, expected)
        except IndexUnavailable as problem:
            old = None
            if current_generation(config.index_dir) is not None:
                report.rebuilt_because = problem.reason
                log.warning("Rebuilding the index: %s.", problem.reason)

        old_files = old.manifest["files"] if old else {}
        now = {seed.path: seed for seed in seeds}
        report.removed = sorted(set(old_files) - set(now))
        if old is not None and not stale_files(old, seeds):
            report.unchanged, report.chunks = len(seeds), len(old)
            report.seconds = time.perf_counter() - started
            return report

        chunks: list[Chunk] = []
        files: dict[str, dict] = {}
        reused: dict[int, tuple[int, int]] = {}  # position in chunks -> rows in the old index
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

        if not chunks:
            raise NoSeedsError(f"The documents in {config.seeds_dir} hold no sentences to index.")
        vectors, context_vectors, report.embedded = _vectors_for(chunks, reused, old, embedder, config, progress)
        manifest = {**expected, "dimension": vectors.shape[1], "files": files, "built_at": time.time()}
        _write_generation(config.index_dir, manifest, chunks, vectors, context_vectors)
        report.chunks = len(chunks)
        report.seconds = time.perf_counter() - started
        log.info(report.summary())
        return report


def _vectors_for(
    chunks: list[Chunk],
    reused: dict[int, tuple[int, int]],
    old: LoadedIndex | None,
    embedder: Embedder,
    config: Config,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sentence and window vectors for ``chunks``: copied where reused, else embedded."""
    is_fresh = np.ones(len(chunks), dtype=bool)
    for position, (_, count) in reused.items():
        is_fresh[position : position + count] = False
    fresh = np.flatnonzero(is_fresh)
    texts = [chunks[i].text for i in fresh] + [chunks[i].context for i in fresh]
    embedded = embedder.encode(texts, batch_size=config.batch_size, progress=progress and len(texts) > 512)
    dimension = embedded.shape[1] if len(fresh) else old.vectors.shape[1]
    vectors = np.zeros((len(chunks), dimension), np.float32)
    context_vectors = np.zeros((len(chunks), dimension), np.float32)
    vectors[fresh] = embedded[: len(fresh)]
    context_vectors[fresh] = embedded[len(fresh) :]
    for position, (first, count) in reused.items():
        vectors[position : position + count] = old.vectors[first : first + count]
        context_vectors[position : position + count] = old.context_vectors[first : first + count]
    return vectors, context_vectors, len(fresh)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_generation(
    index_dir: Path, manifest: dict, chunks: list[Chunk], vectors: np.ndarray, context_vectors: np.ndarray
) -> Path:
    """Write a complete generation, then make it the live one."""
    generation = index_dir / f"gen-{time.time_ns():x}-{os.getpid()}"
    generation.mkdir(parents=True)
    with (generation / "chunks.jsonl").open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    np.save(generation / "vectors.npy", vectors)
    np.save(generation / "context.npy", context_vectors)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    faiss.write_index(flat, str(generation / "index.faiss"))
    manifest["artifacts"] = {name: file_sha256(generation / name) for name in ARTIFACTS}
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for name in (*ARTIFACTS, "manifest.json"):
        _fsync(generation / name)
    _fsync(generation)

    previous = current_generation(index_dir)
    pointer = index_dir / f".CURRENT.{os.getpid()}"
    pointer.write_text(generation.name + "\n", encoding="utf-8")
    _fsync(pointer)
    os.replace(pointer, index_dir / "CURRENT")
    _fsync(index_dir)
    _remove_old_generations(index_dir, keep={generation.name, previous.name if previous else ""})
    return generation


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    """Delete generations other than the live one and the one before it.

    The previous one is kept so that a process that read ``CURRENT`` just
    before the switch can still open its files.
    """
    for path in index_dir.iterdir():
        if path.name.startswith(("gen-", ".CURRENT.")) and path.name not in keep:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
