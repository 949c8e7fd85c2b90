"""Build, update and load the index in ``index/``.

Layout of the index folder::

    index/
      CURRENT               name of the live generation (replaced atomically)
      gen-.../              one complete, immutable build
        manifest.json       model, dimension, chunking, index type, seed hashes, checksums
        chunks.jsonl        one sentence chunk a line, grouped by seed file
        chunks.offsets.npy  byte offset of each line of chunks.jsonl (and the file's end)
        vectors.npy         unit vectors of each sentence, one row per chunk
        context.npy         unit vectors of each sentence with its window
        spread-sample.npy   both vectors of 4096 sampled rows, float32 (see SPREAD_SAMPLE)
        index.faiss         FAISS inner-product index over the sentence vectors
        lexical.bin         the BM25 indexes of sentences and windows, their vocabulary,
                            document frequencies, and the plain words of the seeds
      .lock                 held while a build runs

A build writes a new generation beside the live one and only then points
``CURRENT`` at it, so a crash at any moment leaves the previous index intact.
Updates are incremental: chunks and vectors of unchanged seed files are
copied from the live generation and only new or changed files are embedded.

**Index type by size.** Up to ``Config.exact_index_max_chunks`` chunks
(100k by default) the FAISS index is exact (``IndexFlatIP``) and the vectors
are float32: results are exactly those of a brute-force search. Above it,
it is approximate: HNSW over 8-bit scalar-quantised vectors
(``IndexHNSWSQ``, M=32, efSearch ``Config.hnsw_ef_search``), and the
sentence and window vectors that re-score the candidates are stored as
float16. Why 100k: exact search streams every vector (1.5 KB a chunk) for
every question, so its cost grows with the corpus: 7 ms at 100k and 59 ms
at 1M on two cores (one question at a time), beyond the 50 ms a whole answer
may take at 1M, and 1.5 GB of float32 vectors at 1M. Up to 100k it costs
less than the question's embedding, stays exact, and an update rebuilds the
FAISS index in a fraction of a second, whereas HNSW adds its graph build to
every update (about 7 s at 100k, 4 minutes at 1M on two cores) and gives up
exactness. At 1M the approximate index takes 626 MiB (384-byte codes and a
256-byte graph a chunk), searches in about 3 ms, and finds 0.967 of the exact
top 10 (0.989 once its candidates are re-scored with the float16 vectors, as
the retriever does; ``bot bench --scale 1000000``). The type is recorded in
the manifest (``index.type``).

**Loading scales.** Nothing is parsed or rebuilt at load. Files of 32 MiB
or more are not read whole: the FAISS index (``IO_FLAG_MMAP_IFC``) and the
BM25 indexes (``lexical.bin``, an array container) are memory-mapped, and the
sentence and window vectors and the chunks are read a row at a time
(``pread``) when a question needs them: the candidates' vectors for
re-scoring, the candidates' sentences. So start-up reads headers only, a
process's memory holds only what questions touched, and the bytes live once
in the page cache, shared by every server process on the host. Smaller files
are read whole. The vectors of 4096 sampled rows, used to scale dense
scores, have their own small file (``spread-sample.npy``).

**Checksums.** The manifest records the SHA-256, the size and a sampled
SHA-256 of every file. A build or update verifies every file in full (it reads
the previous generation anyway). Loading for answering verifies files up to
``FULL_CHECKSUM_MAX_BYTES`` (256 MiB) in full, and larger ones by size and the
sampled digest (256 blocks of 64 KiB spread over the file: truncation, a
partial copy or a file from another build is caught; a single flipped byte
in the middle of a file over 256 MiB is caught by the next build, not at
load). Hashing 3 GB in full at every start of a 1M-chunk server would take
seconds even from the page cache.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import mmap
import operator
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bm25s
import faiss
import numpy as np
import Stemmer

from .chunk import MAX_SENTENCE_WORDS, SPLITTER, Chunk, chunk_seed
from .config import Config
from .embed import Embedder, model_identity
from .ingest import NoSeedsError, SeedFile, file_sha256, load_seeds
from .query import words

log = logging.getLogger(__name__)

#: Bumped whenever the files of a generation change meaning; an index of
#: another version is rebuilt rather than misread.
FORMAT_VERSION = 2
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
#: HNSW graph degree and build breadth. With M=32 and efSearch 768, recall@10
#: is 0.967 at 1M chunks (efSearch 256: 0.92); the graph costs 256 bytes a
#: chunk beside its 384-byte codes.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40

#: Files at least this big are not read whole at load: the vectors and the
#: chunks are then read row by row (``pread``) when a question needs them, the
#: FAISS index and the BM25 indexes are memory-mapped. Smaller files are read
#: whole (milliseconds). Either way the bytes live in the page cache, shared
#: by every process on the host. (A mapped file must never be truncated in
#: place while a process uses it, or the process dies of SIGBUS; builds never
#: do that, they write a new generation.)
MMAP_MIN_BYTES = 32 << 20
#: Files up to this size are checked against their full SHA-256 at every
#: load; larger ones by size and a sampled digest (see the module docstring).
FULL_CHECKSUM_MAX_BYTES = 256 << 20
_SAMPLE_BLOCK = 1 << 16
_SAMPLE_BLOCKS = 256


class IndexUnavailable(RuntimeError):
    """The index cannot be used as it is; ``reason`` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- compact, memory-mapped pieces of a generation ------------------------------------


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class StringTable:
    """A sorted set of strings kept as UTF-8 bytes and offsets, looked up by binary search.

    Nothing is loaded into Python objects: a lookup reads about twenty
    strings, so a vocabulary of millions costs no start-up and no memory
    beyond the pages it touches. Supports ``in``, ``len``, iteration, and
    ``a_set - table``.
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob = memoryview(np.ascontiguousarray(blob, dtype=np.uint8))
        self._offsets = offsets
        self._size = max(len(offsets) - 1, 0)

    @staticmethod
    def arrays(strings: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """The (bytes, offsets) arrays of the sorted distinct ``strings``."""
        encoded = sorted({_encode(s) for s in strings})
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets

    def __len__(self) -> int:
        return self._size

    def _at(self, position: int) -> bytes:
        return bytes(self._blob[int(self._offsets[position]) : int(self._offsets[position + 1])])

    def position(self, text: str) -> int:
        """The rank of ``text`` in the table, or -1 when it is not there."""
        key = _encode(text)
        low, high = 0, self._size
        while low < high:
            middle = (low + high) // 2
            if self._at(middle) < key:
                low = middle + 1
            else:
                high = middle
        return low if low < self._size and self._at(low) == key else -1

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.position(text) >= 0

    def __iter__(self):
        for position in range(self._size):
            yield self._at(position).decode("utf-8", "surrogatepass")

    def __rsub__(self, other):
        if isinstance(other, (set, frozenset)):
            return type(other)(item for item in other if item not in self)
        return NotImplemented


_CONTAINER_MAGIC = b"BOTARRS1"
_ALIGN = 64


def _write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write named arrays into one file that :func:`_map_arrays` can memory-map."""
    layout, position = {}, 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        arrays[name] = array
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": position}
        position += -(-array.nbytes // _ALIGN) * _ALIGN
    header = json.dumps({"meta": meta, "arrays": layout}).encode("utf-8")
    start = -(-(16 + len(header)) // _ALIGN) * _ALIGN
    with path.open("wb") as handle:
        handle.write(_CONTAINER_MAGIC + len(header).to_bytes(8, "little") + header)
        handle.write(b"\0" * (start - 16 - len(header)))
        for name, array in arrays.items():
            handle.write(array.tobytes())
            handle.write(b"\0" * (-array.nbytes % _ALIGN))


def _open_bytes(path: Path):
    """A file's bytes: memory-mapped when it is at least MMAP_MIN_BYTES, else read."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size and size >= MMAP_MIN_BYTES:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return handle.read()


def _map_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Memory-map (or read, when small) a file written by :func:`_write_arrays`: (arrays, meta)."""
    mapped = _open_bytes(path)
    if mapped[:8] != _CONTAINER_MAGIC:
        raise ValueError(f"{path.name} is not an array container")
    length = int.from_bytes(mapped[8:16], "little")
    header = json.loads(mapped[16 : 16 + length].decode("utf-8"))
    start = -(-(16 + length) // _ALIGN) * _ALIGN
    arrays = {}
    for name, entry in header["arrays"].items():
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        offset = start + entry["offset"]
        if offset + count * dtype.itemsize > len(mapped):
            raise ValueError(f"{path.name} is shorter than its header says")
        arrays[name] = np.frombuffer(mapped, dtype, count, offset).reshape(shape) if count else np.zeros(shape, dtype)
    return arrays, header["meta"]


class RowFile:
    """The rows of a 2-D ``.npy`` file, read (``pread``) only when indexed.

    Stands in for the array of a big vector file: ``vectors[rows]`` reads
    just those rows, so a process's memory holds no more of the file than
    the candidates of the question at hand (a memory map would do the same,
    but the kernel maps 64 KiB around every row touched, and a few thousand
    questions later the whole file counts in the process's RSS). Supports
    ``len``, ``shape``, ``dtype``, ``astype`` and indexing by an int, a
    slice or a sequence of ints.
    """

    ndim = 2

    def __init__(self, path: Path):
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            self._start = handle.tell()
            size = os.fstat(handle.fileno()).st_size
        if len(shape) != 2 or fortran_order or dtype.hasobject:
            raise ValueError(f"{path.name} is not a matrix of rows")
        self.shape, self.dtype = tuple(shape), dtype
        self._row_bytes = shape[1] * dtype.itemsize
        if size != self._start + shape[0] * self._row_bytes:
            raise ValueError(f"{path.name} is not as long as its header says")
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, first: int, count: int) -> np.ndarray:
        data = os.pread(self._fd, count * self._row_bytes, self._start + first * self._row_bytes)
        if len(data) != count * self._row_bytes:
            raise OSError("the vector file is shorter than it was")
        return np.frombuffer(data, self.dtype).reshape(count, self.shape[1]).copy()

    def __getitem__(self, item) -> np.ndarray:
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._read(start, max(stop - start, 0))
        if isinstance(item, (int, np.integer)):
            row = operator.index(item)
            row = row + len(self) if row < 0 else row
            if not 0 <= row < len(self):
                raise IndexError(f"row {item} out of range")
            return self._read(row, 1)[0]
        rows = np.asarray(item, dtype=np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError("row out of range")
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        for i, row in enumerate(rows.tolist()):
            data = os.pread(self._fd, self._row_bytes, self._start + row * self._row_bytes)
            if len(data) != self._row_bytes:
                raise OSError("the vector file is shorter than it was")
            out[i] = np.frombuffer(data, self.dtype)
        return out

    def __array__(self, dtype=None, copy=None):
        whole = self._read(0, len(self))
        return whole if dtype is None else whole.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        return np.asarray(self, dtype=dtype)

    def __repr__(self) -> str:
        return f"<RowFile {self.shape} {self.dtype}>"


class ChunkStore(Sequence):
    """The chunks of a generation, read from ``chunks.jsonl`` only when asked for.

    Row ``i`` is line ``i``; ``chunks.offsets.npy`` holds where each line
    starts. Indexing returns a :class:`Chunk` (a slice, a list of them), so
    it behaves like the list it replaces without holding a million objects.
    A small file is read whole; a big one (see MMAP_MIN_BYTES) a line at a
    time (``pread``).
    """

    def __init__(self, path: Path, offsets: np.ndarray):
        self._offsets = offsets
        size = path.stat().st_size
        if len(offsets) < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != size or np.any(np.diff(offsets) <= 0):
            raise ValueError("chunks.offsets.npy does not match chunks.jsonl")
        self._data, self._fd = None, None
        if size >= MMAP_MIN_BYTES:
            self._fd = os.open(path, os.O_RDONLY)
        else:
            self._data = path.read_bytes()
            if len(self._data) != size:
                raise ValueError("chunks.jsonl changed while it was read")

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, item):
        if isinstance(item, slice):
            return [self._read(i) for i in range(*item.indices(len(self)))]
        row = operator.index(item)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"chunk {item} out of range")
        return self._read(row)

    def _read(self, row: int) -> Chunk:
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        line = self._data[start:end] if self._data is not None else os.pread(self._fd, end - start, start)
        return Chunk(**json.loads(line))

    def __iter__(self):
        for row in range(len(self)):
            yield self._read(row)

    def __eq__(self, other):
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"<ChunkStore of {len(self)} chunks>"


def lexical_tokens(texts: list[str], stemmer) -> list[list[str]]:
    """BM25 terms of each text: lower-cased, English stopwords out, stemmed."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over the sentences and over their windows, memory-mapped from ``lexical.bin``.

    Both score matrices are bm25s's precomputed (document, term) scores in
    compressed columns, one column per term of a shared, sorted vocabulary;
    scoring a question adds its terms' columns exactly as bm25s does, so the
    scores are bm25s's to the bit.
    """

    FIELDS = ("text", "context")

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.num_docs = int(meta["num_docs"])
        self.terms = StringTable(arrays["terms"], arrays["term_offsets"])
        #: Plain lower-case words that occur in the seeds (see ``query.words``).
        self.words = StringTable(arrays["words"], arrays["word_offsets"])
        self._frequency = arrays["document_frequency"]
        self._matrices = {f: (arrays[f"{f}_scores"], arrays[f"{f}_docs"], arrays[f"{f}_indptr"]) for f in self.FIELDS}
        vocabulary = len(self.terms)
        if len(self._frequency) != vocabulary or any(len(m[2]) != vocabulary + 1 for m in self._matrices.values()):
            raise ValueError("lexical.bin: the BM25 matrices do not match the vocabulary")

    @classmethod
    def open(cls, path: Path) -> "LexicalIndex":
        arrays, meta = _map_arrays(path)
        return cls(arrays, meta)

    def term_ids(self, tokens: list[str]) -> list[int]:
        """Column of each known token, in order (repeats kept, unknown tokens left out)."""
        positions = [self.terms.position(token) for token in tokens]
        return [p for p in positions if p >= 0]

    def document_frequency(self, token: str) -> int:
        """Number of sentences that contain ``token`` (a stemmed BM25 term)."""
        position = self.terms.position(token)
        return int(self._frequency[position]) if position >= 0 else 0

    def scores(self, field: str, term_ids: list[int]) -> np.ndarray:
        """BM25 score of every document for the query terms (bm25s's ``get_scores``)."""
        data, docs, indptr = self._matrices[field]
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for term in term_ids:
            start, end = int(indptr[term]), int(indptr[term + 1])
            np.add.at(scores, docs[start:end], data[start:end])
        return scores

    @classmethod
    def arrays_for(cls, chunks: Sequence[Chunk]) -> tuple[dict[str, np.ndarray], dict]:
        """Build the BM25 indexes of ``chunks`` (as bm25s does) and lay them out for ``lexical.bin``."""
        stemmer = Stemmer.Stemmer("english")
        tokens = {"text": lexical_tokens([c.text for c in chunks], stemmer),
                  "context": lexical_tokens([c.context for c in chunks], stemmer)}
        models = {}
        for name, field_tokens in tokens.items():
            model = bm25s.BM25()
            model.index(field_tokens, show_progress=False)
            models[name] = model
        vocabulary = sorted({_encode(t) for model in models.values() for t in model.vocab_dict if t})
        terms = [t.decode("utf-8", "surrogatepass") for t in vocabulary]
        term_blob, term_offsets = StringTable.arrays(terms)
        arrays = {"terms": term_blob, "term_offsets": term_offsets}
        for name, model in models.items():
            scores, docs, indptr = _columns_in_order(model, terms)
            arrays.update({f"{name}_scores": scores, f"{name}_docs": docs, f"{name}_indptr": indptr})
        frequency = Counter(t for doc in tokens["text"] for t in set(doc))
        arrays["document_frequency"] = np.array([frequency.get(t, 0) for t in terms], dtype=np.int64)
        word_blob, word_offsets = StringTable.arrays(w for c in chunks for w in words(c.context))
        arrays.update({"words": word_blob, "word_offsets": word_offsets})
        return arrays, {"num_docs": len(chunks), "tokenizer": "bm25s en stopwords, english snowball stemmer"}


def _columns_in_order(model: bm25s.BM25, terms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bm25s model's score columns re-ordered to ``terms`` (an empty column for a term it lacks)."""
    data = np.asarray(model.scores["data"], dtype=np.float32)
    docs = np.asarray(model.scores["indices"], dtype=np.int32)
    indptr = np.asarray(model.scores["indptr"], dtype=np.int64)
    columns = np.array([model.vocab_dict.get(t, -1) for t in terms], dtype=np.int64)
    columns[columns >= len(indptr) - 1] = -1  # bm25s's empty token has no column
    present = columns >= 0
    starts = np.where(present, indptr[np.maximum(columns, 0)], 0)
    lengths = np.where(present, indptr[np.maximum(columns, 0) + 1] - starts, 0)
    new_indptr = np.zeros(len(terms) + 1, dtype=np.int64)
    new_indptr[1:] = np.cumsum(lengths)
    positions = np.repeat(starts - new_indptr[:-1], lengths) + np.arange(new_indptr[-1], dtype=np.int64)
    return data[positions], docs[positions], new_indptr


@dataclass
class LoadedIndex:
    """A generation of the index, memory-mapped (see the module docstring)."""

    manifest: dict
    chunks: Sequence[Chunk]
    #: float32 (exact index) or float16 (approximate) rows: an array, or a
    #: :class:`RowFile` that reads rows when indexed.
    vectors: np.ndarray | RowFile
    context_vectors: np.ndarray | RowFile
    faiss_index: faiss.Index
    path: Path
    lexical: LexicalIndex | None = None
    #: The files that are memory-mapped, and those read row by row, rather
    #: than read whole (see MMAP_MIN_BYTES).
    mapped: list[str] = field(default_factory=list)
    on_demand: list[str] = field(default_factory=list)
    #: Rows of :func:`spread_sample_rows`, and their sentence and window vectors.
    sample_rows: np.ndarray | None = None
    sample_vectors: np.ndarray | None = None
    sample_context_vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def index_type(self) -> str:
        """``flat-ip`` (exact) or ``hnsw-sq8`` (approximate)."""
        return self.manifest.get("index", {}).get("type", EXACT_INDEX)


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
        "chunking": {"splitter": SPLITTER, "window": config.window, "max_sentence_words": MAX_SENTENCE_WORDS},
    }


def index_type_for(chunks: int, config: Config) -> str:
    """The FAISS index type for a corpus of ``chunks`` sentences."""
    return APPROXIMATE_INDEX if chunks > config.exact_index_max_chunks else EXACT_INDEX


def spread_sample_rows(chunks: int) -> np.ndarray:
    """The rows (sorted) whose vectors estimate the spread of dense scores: all, or 4096 at random."""
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
    """SHA-256 of a file's size and of up to 256 blocks of 64 KiB spread evenly over it."""
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


def _verify(generation: Path, manifest: dict, full: bool) -> None:
    """Raise IndexUnavailable naming the first artifact that is missing or damaged."""
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
            raise IndexUnavailable(f"{name} is missing or damaged")


def _is_mapped(path: Path) -> bool:
    return path.stat().st_size >= MMAP_MIN_BYTES


def _rows(path: Path) -> np.ndarray | RowFile:
    """A matrix from a .npy file: read whole when small, else a :class:`RowFile` (see MMAP_MIN_BYTES)."""
    return RowFile(path) if _is_mapped(path) else np.load(path)


def load_index(index_dir: Path, expected: dict | None = None, verify: str = "auto") -> LoadedIndex:
    """Load and verify the live generation of the index in ``index_dir``.

    ``expected`` is the output of :func:`settings_of`; when given, an index
    built with other settings is refused. ``verify="full"`` checks every
    file's SHA-256 in full; ``"auto"`` does so for files up to
    ``FULL_CHECKSUM_MAX_BYTES`` and checks larger ones by size and a sampled
    digest. Raises :class:`IndexUnavailable` when the index is missing,
    damaged or incompatible. Every file is memory-mapped, not read.
    """
    generation = current_generation(index_dir)
    if generation is None or not (generation / "manifest.json").is_file():
        raise IndexUnavailable("no index has been built yet")
    try:
        manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest["artifacts"], dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise IndexUnavailable("its manifest is unreadable") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailable(f"it has format version {manifest.get('format_version')}, not {FORMAT_VERSION}")
    if expected is not None:
        for key in ("model", "chunking"):
            if manifest.get(key) != expected[key]:
                raise IndexUnavailable(f"it was built with another {key} ({manifest.get(key)})")
    _verify(generation, manifest, full=verify == "full")
    try:
        chunks = ChunkStore(generation / "chunks.jsonl", np.load(generation / "chunks.offsets.npy"))
        vectors = _rows(generation / "vectors.npy")
        context_vectors = _rows(generation / "context.npy")
        faiss_path = generation / "index.faiss"
        faiss_index = faiss.read_index(str(faiss_path), faiss.IO_FLAG_MMAP_IFC if _is_mapped(faiss_path) else 0)
        lexical = LexicalIndex.open(generation / "lexical.bin")
        sample = np.load(generation / "spread-sample.npy")
        mapped = [name for name in ("index.faiss", "lexical.bin") if _is_mapped(generation / name)]
        on_demand = [name for name in ("chunks.jsonl", "vectors.npy", "context.npy") if _is_mapped(generation / name)]
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as error:
        raise IndexUnavailable(f"its files cannot be read ({error})") from None
    counts = {len(chunks), len(vectors), len(context_vectors), faiss_index.ntotal, lexical.num_docs}
    if len(counts) != 1 or manifest.get("chunks", len(chunks)) != len(chunks):
        raise IndexUnavailable("its files disagree on the number of chunks")
    rows = spread_sample_rows(len(chunks))
    if sample.shape != (2, len(rows), vectors.shape[1]) or sample.dtype != np.float32:
        raise IndexUnavailable("its files disagree on the number of chunks")
    return LoadedIndex(
        manifest=manifest, chunks=chunks, vectors=vectors, context_vectors=context_vectors,
        faiss_index=faiss_index, path=generation, lexical=lexical, mapped=mapped, on_demand=on_demand,
        sample_rows=rows, sample_vectors=sample[0], sample_context_vectors=sample[1],
    )


def stale_files(index: LoadedIndex, seeds: list[SeedFile]) -> bool:
    """True when the seeds on disk differ from those the index was built from."""
    built = {name: entry["sha256"] for name, entry in index.manifest["files"].items()}
    return built != {seed.path: seed.sha256 for seed in seeds}


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
    SHA-256) before anything is reused from it.
    """
    started = time.perf_counter()
    seeds = load_seeds(config.seeds_dir, config.max_seed_bytes)
    expected = settings_of(config)
    with build_lock(config.index_dir, wait=wait):
        report = BuildReport()
        try:
            old = load_index(config.index_dir, expected, verify="full")
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
        dimension = old.vectors.shape[1] if old is not None else embedder.dimension
        _check_space(config.index_dir, len(chunks), dimension)  # before the costly embedding
        vectors, context_vectors, report.embedded = _vectors_for(chunks, reused, old, embedder, config, progress)
        manifest = {**expected, "dimension": vectors.shape[1], "files": files, "built_at": time.time()}
        write_generation(config.index_dir, manifest, chunks, vectors, context_vectors, config)
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
    """``embedder.encode(texts)``; for many texts, in blocks, logging how far it got and the time left.

    Embedding is most of a build's time (minutes for a seed of a few MB), and
    without this a build said nothing until it was done.
    """
    if len(texts) <= EMBED_BLOCK:
        return embedder.encode(texts, batch_size=config.batch_size, progress=progress and len(texts) > 512)
    out: np.ndarray | None = None
    started = last = time.monotonic()
    for first in range(0, len(texts), EMBED_BLOCK):
        block = embedder.encode(texts[first : first + EMBED_BLOCK], batch_size=config.batch_size)
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _faiss_index(vectors: np.ndarray, kind: str) -> faiss.Index:
    """The FAISS index of ``kind`` over ``vectors`` (float32, unit length)."""
    if kind == EXACT_INDEX:
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.train(vectors)
    index.add(vectors)
    return index


def _write_chunks(generation: Path, chunks: Sequence[Chunk]) -> None:
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    position = 0
    with (generation / "chunks.jsonl").open("wb") as handle:
        for row, chunk in enumerate(chunks):
            line = (json.dumps(asdict(chunk), ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
            handle.write(line)
            position += len(line)
            offsets[row + 1] = position
    np.save(generation / "chunks.offsets.npy", offsets)


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
        short_write = isinstance(error, OSError) and error.errno is None and "written" in str(error)
        shutil.rmtree(generation, ignore_errors=True)
        (index_dir / f".CURRENT.{os.getpid()}").unlink(missing_ok=True)
        if short_write:  # numpy reports a full disk as a short write, with no errno
            raise OSError(errno.ENOSPC, f"No space left on device ({error})") from error
        raise


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
    dtype = np.float32 if kind == EXACT_INDEX else np.float16
    _write_chunks(generation, chunks)
    stored = np.asarray(vectors).astype(dtype, copy=False)
    stored_context = np.asarray(context_vectors).astype(dtype, copy=False)
    np.save(generation / "vectors.npy", stored)
    np.save(generation / "context.npy", stored_context)
    rows = spread_sample_rows(len(chunks))
    np.save(generation / "spread-sample.npy", np.stack([stored[rows], stored_context[rows]]).astype(np.float32))
    del stored, stored_context
    searchable = _faiss_index(np.ascontiguousarray(vectors, dtype=np.float32), kind)
    faiss.write_index(searchable, str(generation / "index.faiss"))
    del searchable
    arrays, meta = LexicalIndex.arrays_for(chunks)
    _write_arrays(generation / "lexical.bin", arrays, meta)

    manifest["chunks"] = len(chunks)
    manifest["index"] = {"type": kind, "exact_index_max_chunks": config.exact_index_max_chunks}
    if kind == APPROXIMATE_INDEX:
        manifest["index"].update({"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "quantizer": "SQ8"})
    manifest["vectors_dtype"] = np.dtype(dtype).name
    manifest["artifacts"] = {name: file_sha256(generation / name) for name in ARTIFACTS}
    manifest["artifact_sizes"] = {name: (generation / name).stat().st_size for name in ARTIFACTS}
    manifest["artifact_samples"] = {name: sampled_sha256(generation / name) for name in ARTIFACTS}
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


#: The name it had before it was public (for anything importing it).
_write_generation = write_generation


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
