"""The on-disk formats of a generation's files, and how big files are read.

Files of ``MMAP_MIN_BYTES`` or more are not read whole at load: the vectors
and the chunks are read a row at a time (``pread``) when a question needs
them, and array containers (``lexical.bin``) are memory-mapped. Smaller
files are read whole. Either way the bytes live once in the page cache,
shared by every process on the host. (A mapped file must never be truncated
in place while a process uses it, or the process dies of SIGBUS; builds never
do that, they write a new generation.)
"""

from __future__ import annotations

import json
import mmap
import operator
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..chunk import Chunk

#: Files at least this big are read on demand or memory-mapped, not read whole.
MMAP_MIN_BYTES = 32 << 20


def is_big(path: Path) -> bool:
    """True when ``path`` is read on demand or memory-mapped rather than read whole."""
    return path.stat().st_size >= MMAP_MIN_BYTES


def fsync(path: Path) -> None:
    """Flush a file's or a folder's contents to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode(text: str) -> bytes:
    """A string's UTF-8 bytes, lone surrogates kept, as every file of the index stores it."""
    return text.encode("utf-8", "surrogatepass")


class StringTable:
    """A sorted set of strings kept as UTF-8 bytes and offsets, looked up by binary search.

    Nothing is loaded into Python objects: a lookup reads a few strings (the
    logarithm of the table's size), so a vocabulary of millions costs no
    start-up and no memory beyond the pages it touches. Supports ``in``,
    ``len``, iteration, and ``a_set - table``.
    """

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob = memoryview(np.ascontiguousarray(blob, dtype=np.uint8))
        self._offsets = offsets
        self._size = max(len(offsets) - 1, 0)

    @staticmethod
    def arrays(strings: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """The (bytes, offsets) arrays of the sorted distinct ``strings``."""
        encoded = sorted({encode(s) for s in strings})
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(e) for e in encoded], dtype=np.int64)
        return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets

    def __len__(self) -> int:
        return self._size

    def _at(self, position: int) -> bytes:
        return bytes(self._blob[int(self._offsets[position]) : int(self._offsets[position + 1])])

    def position(self, text: str) -> int:
        """The rank of ``text`` in the table, or -1 when it is not there."""
        key = encode(text)
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


# -- array containers: named arrays in one file, each aligned so it can be mapped ------

_CONTAINER_MAGIC = b"BOTARRS1"
_ALIGN = 64


def _aligned(size: int) -> int:
    return -(-size // _ALIGN) * _ALIGN


def write_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write named arrays into one file that :func:`map_arrays` can memory-map."""
    layout, position = {}, 0
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        arrays[name] = array
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": position}
        position += _aligned(array.nbytes)
    header = json.dumps({"meta": meta, "arrays": layout}).encode("utf-8")
    start = _aligned(16 + len(header))
    with path.open("wb") as handle:
        handle.write(_CONTAINER_MAGIC + len(header).to_bytes(8, "little") + header)
        handle.write(b"\0" * (start - 16 - len(header)))
        for array in arrays.values():
            handle.write(array.tobytes())
            handle.write(b"\0" * (-array.nbytes % _ALIGN))


def _open_bytes(path: Path):
    """A file's bytes: memory-mapped when it is at least MMAP_MIN_BYTES, else read."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size and size >= MMAP_MIN_BYTES:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return handle.read()


def map_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Memory-map (or read, when small) a file written by :func:`write_arrays`: (arrays, meta)."""
    mapped = _open_bytes(path)
    if mapped[:8] != _CONTAINER_MAGIC:
        raise ValueError(f"{path.name} is not an array container")
    length = int.from_bytes(mapped[8:16], "little")
    header = json.loads(mapped[16 : 16 + length].decode("utf-8"))
    start = _aligned(16 + length)
    arrays = {}
    for name, entry in header["arrays"].items():
        dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        offset = start + entry["offset"]
        if offset + count * dtype.itemsize > len(mapped):
            raise ValueError(f"{path.name} is shorter than its header says")
        arrays[name] = np.frombuffer(mapped, dtype, count, offset).reshape(shape) if count else np.zeros(shape, dtype)
    return arrays, header["meta"]


# -- matrices of vectors ------------------------------------------------------------------


class RowFile:
    """The rows of a 2-D ``.npy`` file, read (``pread``) only when indexed.

    Stands in for the array of a big vector file: ``vectors[rows]`` reads
    just those rows, so a process's memory holds no more of the file than
    the candidates of the question at hand (a memory map would do the same,
    but the kernel reads ahead around every row touched, and after enough
    questions the whole file counts in the process's RSS). Supports
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
        return self._read_rows(np.asarray(item, dtype=np.int64).reshape(-1))

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
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


class RowWriter:
    """Write a 2-D ``.npy`` file a block of rows at a time, byte for byte what ``np.save`` writes.

    A build appends its vectors as it makes them, so that no process holds a
    whole matrix (a 15 MB seed's vectors are over a gigabyte in float32).
    The shape is fixed at the start; :meth:`close` refuses a file that did
    not get exactly that many rows.
    """

    def __init__(self, path: Path, rows: int, columns: int, dtype):
        self.dtype = np.dtype(dtype)
        self._rows, self._columns, self.written = rows, columns, 0
        self._handle = path.open("wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (rows, columns)}
        np.lib.format.write_array_header_1_0(self._handle, header)

    def append(self, block: np.ndarray) -> None:
        """Write the next rows (converted to the file's dtype)."""
        if block.ndim != 2 or block.shape[1] != self._columns or self.written + len(block) > self._rows:
            raise ValueError(f"a block of shape {block.shape} does not fit a matrix of {self._rows} rows")
        self._handle.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.written += len(block)

    def close(self) -> None:
        self._handle.close()
        if self.written != self._rows:
            raise ValueError(f"{self.written} rows written of {self._rows}")


def read_rows(path: Path) -> np.ndarray | RowFile:
    """A matrix from a .npy file: read whole when small, else a :class:`RowFile` (see MMAP_MIN_BYTES)."""
    return RowFile(path) if is_big(path) else np.load(path)


# -- chunks: one JSON object a line, and where each line starts ---------------------------


def chunk_line(chunk: Chunk) -> bytes:
    """A chunk's line of ``chunks.jsonl``."""
    return encode(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")


def write_chunks(generation: Path, chunks: Sequence[Chunk]) -> None:
    """Write ``chunks.jsonl`` and ``chunks.offsets.npy`` into ``generation``."""
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    position = 0
    with (generation / "chunks.jsonl").open("wb") as handle:
        for row, chunk in enumerate(chunks):
            line = chunk_line(chunk)
            handle.write(line)
            position += len(line)
            offsets[row + 1] = position
    np.save(generation / "chunks.offsets.npy", offsets)


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
