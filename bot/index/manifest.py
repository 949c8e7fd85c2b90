"""What a generation's ``manifest.json`` records, and the checks made against it.

**Settings.** The manifest holds the format version, the model and the
chunking (:func:`settings_of`); an index built with other settings is
rebuilt rather than misread.

**Index type by size.** Up to ``Config.exact_index_max_chunks`` chunks the
FAISS index is exact (``IndexFlatIP``) and the vectors are float32: results
are exactly those of a brute-force search. Above it, it is approximate: HNSW
over 8-bit scalar-quantised vectors (``IndexHNSWSQ``, efSearch
``Config.hnsw_ef_search``), and the sentence and window vectors that re-score
the candidates are stored as float16. Why a threshold: exact search reads
every vector for every question, so its time and memory grow with the
corpus. Below the threshold that costs less than embedding the question,
results stay exact, and an update rebuilds the FAISS index at once, whereas
HNSW adds its graph build to every update and gives up exactness. (``bot
bench --scale`` measures both; the README has the figures.) The type is
recorded in the manifest (``index.type``).

**Checksums.** The manifest records the SHA-256, the size and a sampled
SHA-256 of every file. A build or update verifies every file in full (it reads
the previous generation anyway). Loading for answering verifies files up to
``FULL_CHECKSUM_MAX_BYTES`` in full, and larger ones by size and the sampled
digest (blocks spread over the whole file): truncation, a partial copy or a
file from another build is caught; a single flipped byte in the middle of a
big file is caught by the next build, not at load. Hashing every byte of a
big index at every start would make a server's start-up grow with its corpus.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..chunk import MAX_SENTENCE_WORDS, SPLITTER
from ..config import Config
from ..embed import model_identity
from ..ingest import file_sha256

#: Bumped whenever the files of a generation change meaning; an index of
#: another version is rebuilt rather than misread.
FORMAT_VERSION = 2
#: The files of a generation besides ``manifest.json``, each with a checksum there.
ARTIFACTS = (
    "chunks.jsonl", "chunks.offsets.npy", "vectors.npy", "context.npy", "spread-sample.npy",
    "index.faiss", "lexical.bin",
)
#: Rows sampled to estimate the spread of dense scores for a question (see
#: ``bot.retrieve``); their vectors are stored apart, in ``spread-sample.npy``,
#: so that loading never reads scattered rows of the big vector files.
SPREAD_SAMPLE = 4096

#: The two kinds of FAISS index (see the module's docstring for the threshold).
EXACT_INDEX = "flat-ip"
APPROXIMATE_INDEX = "hnsw-sq8"
#: HNSW graph degree and build breadth. A wider graph finds more of the exact
#: top results but adds bytes a chunk beside the quantised codes.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40

#: Files up to this size are checked against their full SHA-256 at every
#: load; larger ones by size and a sampled digest (see the module docstring).
FULL_CHECKSUM_MAX_BYTES = 256 << 20
_SAMPLE_BLOCK = 1 << 16
_SAMPLE_BLOCKS = 256


def settings_of(config: Config) -> dict:
    """The settings an index was built with; a difference forces a rebuild."""
    return {
        "format_version": FORMAT_VERSION,
        "model": model_identity(config),
        "chunking": {"splitter": SPLITTER, "window": config.window, "max_sentence_words": MAX_SENTENCE_WORDS},
    }


def index_type_for(chunks: int, config: Config) -> str:
    """The FAISS index type for a corpus of ``chunks`` sentences."""
    return APPROXIMATE_INDEX if chunks > config.exact_index_max_chunks else EXACT_INDEX


def vector_dtype(kind: str) -> type:
    """How the vectors beside an index of ``kind`` are stored: exact needs float32, re-scoring float16."""
    return np.float32 if kind == EXACT_INDEX else np.float16


def index_entry(kind: str, config: Config) -> dict:
    """The manifest's ``index`` record: the type, the threshold that chose it, HNSW's parameters."""
    entry = {"type": kind, "exact_index_max_chunks": config.exact_index_max_chunks}
    if kind == APPROXIMATE_INDEX:
        entry.update({"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "quantizer": "SQ8"})
    return entry


def spread_sample_rows(chunks: int) -> np.ndarray:
    """The rows (sorted) whose vectors estimate the spread of dense scores: all, or SPREAD_SAMPLE at random."""
    sample = np.random.default_rng(0).choice(chunks, size=min(chunks, SPREAD_SAMPLE), replace=False)
    return np.sort(sample)


def current_generation(index_dir: Path) -> Path | None:
    """The folder of the live generation, or None when there is none."""
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    return index_dir / name


def sampled_sha256(path: Path) -> str:
    """SHA-256 of a file's size and of up to _SAMPLE_BLOCKS blocks of _SAMPLE_BLOCK bytes spread evenly over it."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode("ascii"))
    with path.open("rb") as handle:
        if size <= _SAMPLE_BLOCK * _SAMPLE_BLOCKS:
            digest.update(handle.read())
        else:
            for block in range(_SAMPLE_BLOCKS):
                handle.seek((size - _SAMPLE_BLOCK) * block // (_SAMPLE_BLOCKS - 1))
                digest.update(handle.read(_SAMPLE_BLOCK))
    return digest.hexdigest()


def artifact_checksums(generation: Path) -> dict:
    """The manifest's records of every artifact: full SHA-256, size and sampled SHA-256."""
    return {
        "artifacts": {name: file_sha256(generation / name) for name in ARTIFACTS},
        "artifact_sizes": {name: (generation / name).stat().st_size for name in ARTIFACTS},
        "artifact_samples": {name: sampled_sha256(generation / name) for name in ARTIFACTS},
    }


def damaged_artifact(generation: Path, manifest: dict, full: bool) -> str | None:
    """The first artifact that is missing or does not match the manifest, or None when all match.

    ``full`` checks every file's full SHA-256; otherwise files over
    ``FULL_CHECKSUM_MAX_BYTES`` are checked by size and sampled digest.
    """
    checksums = manifest["artifacts"]
    sizes = manifest.get("artifact_sizes", {})
    samples = manifest.get("artifact_samples", {})
    for name in ARTIFACTS:
        path = generation / name
        try:
            size = path.stat().st_size if path.is_file() else None
            if size is None or size != sizes.get(name):
                ok = False
            elif full or size <= FULL_CHECKSUM_MAX_BYTES:
                ok = file_sha256(path) == checksums.get(name)
            else:
                ok = sampled_sha256(path) == samples.get(name)
        except OSError:
            ok = False
        if not ok:
            return name
    return None
