"""Loading the live generation: the only module that reads an index for answering.

**Loading scales.** Nothing is parsed or rebuilt at load. Big files (see
``bot.index.files.MMAP_MIN_BYTES``) are not read whole: the FAISS index
(``IO_FLAG_MMAP_IFC``) and the BM25 indexes (``lexical.bin``) are
memory-mapped, and the sentence and window vectors and the chunks are read a
row at a time (``pread``) when a question needs them: the candidates' vectors
for re-scoring, the candidates' sentences. So start-up reads headers only, a
process's memory holds only what questions touched, and the bytes live once
in the page cache, shared by every server process on the host. Smaller files
are read whole. The vectors of the sampled rows used to scale dense scores
have their own small file (``spread-sample.npy``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ..chunk import Chunk
from ..ingest import SeedFile
from .files import ChunkStore, RowFile, is_big, read_rows
from .lexical import LexicalIndex
from .manifest import (
    EXACT_INDEX,
    FORMAT_VERSION,
    current_generation,
    damaged_artifact,
    spread_sample_rows,
)

#: The files memory-mapped when big, and those then read row by row.
_MAPPED_WHEN_BIG = ("index.faiss", "lexical.bin")
_ON_DEMAND_WHEN_BIG = ("chunks.jsonl", "vectors.npy", "context.npy")


class IndexUnavailable(RuntimeError):
    """The index cannot be used as it is; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class LoadedIndex:
    """A generation of the index, its big files memory-mapped or read on demand (see the module docstring)."""

    manifest: dict
    chunks: Sequence[Chunk]
    #: float32 (exact index) or float16 (approximate) rows: an array, or a
    #: :class:`RowFile` that reads rows when indexed.
    vectors: np.ndarray | RowFile
    context_vectors: np.ndarray | RowFile
    faiss_index: faiss.Index
    path: Path
    lexical: LexicalIndex
    #: The files that are memory-mapped, and those read row by row, rather
    #: than read whole (see ``bot.index.files.MMAP_MIN_BYTES``).
    mapped: list[str]
    on_demand: list[str]
    #: Rows of :func:`spread_sample_rows`, and their sentence and window vectors.
    sample_rows: np.ndarray
    sample_vectors: np.ndarray
    sample_context_vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def index_type(self) -> str:
        """``flat-ip`` (exact) or ``hnsw-sq8`` (approximate)."""
        return self.manifest.get("index", {}).get("type", EXACT_INDEX)


def load_index(index_dir: Path, expected: dict | None = None, verify: str = "auto") -> LoadedIndex:
    """Load and verify the live generation of the index in ``index_dir``.

    ``expected`` is the output of :func:`settings_of`; when given, an index
    built with other settings is refused. ``verify="full"`` checks every
    file's SHA-256 in full; ``"auto"`` does so for files up to
    ``FULL_CHECKSUM_MAX_BYTES`` and checks larger ones by size and a sampled
    digest. Raises :class:`IndexUnavailable` when the index is missing,
    damaged or incompatible. Big files are memory-mapped or read on demand,
    small ones read whole (see the module docstring).
    """
    generation, manifest = _read_manifest(index_dir)
    _check_settings(manifest, expected)
    damaged = damaged_artifact(generation, manifest, full=verify == "full")
    if damaged is not None:
        raise IndexUnavailable(f"{damaged} is missing or damaged")
    try:
        files = _open_files(generation)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise IndexUnavailable(f"its files cannot be read ({error})") from None
    sample = files.pop("sample")
    _check_counts(manifest, files)
    rows = spread_sample_rows(len(files["chunks"]))
    if sample.shape != (2, len(rows), files["vectors"].shape[1]) or sample.dtype != np.float32:
        raise IndexUnavailable("spread-sample.npy does not match the vectors")
    return LoadedIndex(
        manifest=manifest, path=generation, **files,
        sample_rows=rows, sample_vectors=sample[0], sample_context_vectors=sample[1],
    )


def _read_manifest(index_dir: Path) -> tuple[Path, dict]:
    """The live generation's folder and its parsed manifest."""
    generation = current_generation(index_dir)
    if generation is None or not (generation / "manifest.json").is_file():
        raise IndexUnavailable("no index has been built yet")
    try:
        manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest["artifacts"], dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise IndexUnavailable("its manifest is unreadable") from None
    return generation, manifest


def _check_settings(manifest: dict, expected: dict | None) -> None:
    """Refuse an index of another format version, or (when ``expected``) of another model or chunking."""
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(f"it has format version {manifest.get('format_version')}, not {FORMAT_VERSION}")
    if expected is not None:
        for key in ("model", "chunking"):
            if manifest.get(key) != expected[key]:
                raise IndexUnavailable(f"it was built with another {key} ({manifest.get(key)})")


def _open_files(generation: Path) -> dict:
    """Open every file of a verified generation: :class:`LoadedIndex`'s fields, and ``sample``."""
    faiss_path = generation / "index.faiss"
    return {
        "chunks": ChunkStore(generation / "chunks.jsonl", np.load(generation / "chunks.offsets.npy")),
        "vectors": read_rows(generation / "vectors.npy"),
        "context_vectors": read_rows(generation / "context.npy"),
        "faiss_index": faiss.read_index(str(faiss_path), faiss.IO_FLAG_MMAP_IFC if is_big(faiss_path) else 0),
        "lexical": LexicalIndex.open(generation / "lexical.bin"),
        "sample": np.load(generation / "spread-sample.npy"),
        "mapped": [name for name in _MAPPED_WHEN_BIG if is_big(generation / name)],
        "on_demand": [name for name in _ON_DEMAND_WHEN_BIG if is_big(generation / name)],
    }


def _check_counts(manifest: dict, files: dict) -> None:
    """Refuse files that disagree with each other, or with the manifest, on the number of chunks."""
    chunks = len(files["chunks"])
    counts = {
        chunks, len(files["vectors"]), len(files["context_vectors"]),
        files["faiss_index"].ntotal, files["lexical"].num_docs,
    }
    if len(counts) != 1 or manifest.get("chunks", chunks) != chunks:
        raise IndexUnavailable("its files disagree on the number of chunks")


def stale_files(index: LoadedIndex, seeds: list[SeedFile]) -> bool:
    """True when the seeds on disk differ from those the index was built from."""
    built = {name: entry["sha256"] for name, entry in index.manifest["files"].items()}
    return built != {seed.path: seed.sha256 for seed in seeds}
