"""The on-disk formats of an index's files (``bot.index.files``): string tables, array
containers, vector rows read on demand, and chunks a line each.

Pure file formats: no model, no FAISS.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import bot.index.files as index_files
from bot.chunk import Chunk
from bot.index import ChunkStore, RowFile, StringTable
from bot.index.files import (
    fsync,
    is_big,
    map_arrays,
    read_rows,
    write_arrays,
    write_chunks,
)


@pytest.fixture(params=["small", "big"])
def size(request, monkeypatch) -> str:
    """Run a test with files read whole, then with every file counting as big."""
    if request.param == "big":
        monkeypatch.setattr(index_files, "MMAP_MIN_BYTES", 1)
    return request.param


# -- string tables ------------------------------------------------------------------------


def test_string_table_lookups():
    strings = ["b", "a", "ä", "zz", "", "a", "日本"]
    table = StringTable(*StringTable.arrays(strings))
    assert list(table) == sorted(set(strings)) and len(table) == 6
    assert all(s in table for s in strings) and "c" not in table and 3 not in table
    assert [table.position(s) for s in sorted(set(strings))] == list(range(6))
    assert {"a", "c", "日本", "x"} - table == {"c", "x"}
    empty = StringTable(*StringTable.arrays([]))
    assert len(empty) == 0 and "a" not in empty and {"a"} - empty == {"a"}


def test_string_table_arrays_are_sorted_utf8_and_offsets():
    blob, offsets = StringTable.arrays(["b", "ä", "a", "b"])
    assert blob.dtype == np.uint8 and blob.tobytes() == b"ab\xc3\xa4"
    assert offsets.dtype == np.int64 and offsets.tolist() == [0, 1, 2, 4]
    # Lone surrogates (undecodable bytes of a seed) survive the round trip.
    table = StringTable(*StringTable.arrays(["x\udcff"]))
    assert list(table) == ["x\udcff"] and "x\udcff" in table and table.position("x") == -1
    assert frozenset({"x\udcff", "y"}) - table == frozenset({"y"})


# -- array containers -----------------------------------------------------------------------


def test_an_array_container_has_a_fixed_byte_layout(tmp_path):
    """The layout is part of the index format: magic, header length, JSON header, 64-byte aligned arrays."""
    path = tmp_path / "arrays.bin"
    write_arrays(path, {"a": np.arange(3, dtype="<i4"), "b": np.array([1.5], dtype="<f8")}, {"k": 1})
    header = json.dumps({"meta": {"k": 1}, "arrays": {
        "a": {"dtype": "<i4", "shape": [3], "offset": 0},
        "b": {"dtype": "<f8", "shape": [1], "offset": 64},
    }}).encode("utf-8")
    start = 16 + len(header) + (-(16 + len(header)) % 64)
    expected = (
        b"BOTARRS1" + len(header).to_bytes(8, "little") + header + b"\0" * (start - 16 - len(header))
        + np.arange(3, dtype="<i4").tobytes() + b"\0" * 52
        + np.array([1.5], dtype="<f8").tobytes() + b"\0" * 56
    )
    assert path.read_bytes() == expected


def test_array_containers_round_trip(tmp_path, size):
    path = tmp_path / "arrays.bin"
    arrays = {
        "ints": np.arange(10, dtype=np.int64),
        "matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
        "bytes": np.frombuffer(b"hello", dtype=np.uint8),
        "empty": np.zeros(0, dtype=np.int32),
        "strided": np.arange(20, dtype=np.int16)[::2],
    }
    expected = {name: array.copy() for name, array in arrays.items()}
    write_arrays(path, arrays, {"num_docs": 3, "note": "ä"})
    read, meta = map_arrays(path)
    assert meta == {"num_docs": 3, "note": "ä"}
    assert list(read) == list(expected)
    for name, array in expected.items():
        assert read[name].dtype == array.dtype and read[name].shape == array.shape, name
        np.testing.assert_array_equal(read[name], array)


def test_a_damaged_array_container_is_refused(tmp_path):
    path = tmp_path / "arrays.bin"
    write_arrays(path, {"a": np.arange(100, dtype=np.int64)}, {})
    data = path.read_bytes()
    path.write_bytes(data[: -(32 + 8)])  # the padding after the array, and its last value
    with pytest.raises(ValueError, match="shorter than its header says"):
        map_arrays(path)
    path.write_bytes(b"NOTARRS1" + data[8:])
    with pytest.raises(ValueError, match="not an array container"):
        map_arrays(path)


# -- vector rows ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_row_file_reads_the_rows_asked_for(tmp_path, dtype):
    path = tmp_path / "vectors.npy"
    whole = np.arange(40, dtype=np.float32).reshape(10, 4).astype(dtype)
    np.save(path, whole)
    rows = RowFile(path)
    assert rows.shape == (10, 4) and rows.dtype == dtype and len(rows) == 10 and rows.ndim == 2
    np.testing.assert_array_equal(rows[3], [12, 13, 14, 15])
    np.testing.assert_array_equal(rows[-1], [36, 37, 38, 39])
    np.testing.assert_array_equal(rows[np.int64(2)], whole[2])
    np.testing.assert_array_equal(rows[2:4], [[8, 9, 10, 11], [12, 13, 14, 15]])
    np.testing.assert_array_equal(rows[::4], whole[[0, 4, 8]])
    np.testing.assert_array_equal(rows[[9, 0, 9]], whole[[9, 0, 9]])
    np.testing.assert_array_equal(rows[np.array([-2])], whole[[8]])
    assert rows[[]].shape == (0, 4) and rows[5:5].shape == (0, 4)
    assert rows.astype(np.float64).dtype == np.float64
    np.testing.assert_array_equal(rows.astype(np.float64), whole.astype(np.float64))
    np.testing.assert_array_equal(np.asarray(rows), whole)
    assert repr(rows) == f"<RowFile (10, 4) {np.dtype(dtype)}>"
    for out_of_range in (10, -11):
        with pytest.raises(IndexError):
            rows[out_of_range]
    with pytest.raises(IndexError):
        rows[[0, 10]]


def test_a_row_file_refuses_what_is_not_a_whole_matrix(tmp_path):
    path = tmp_path / "vectors.npy"
    np.save(path, np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="not a matrix of rows"):
        RowFile(path)
    np.save(path, np.zeros((5, 4), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="not as long as its header says"):
        RowFile(path)


def test_read_rows_reads_small_files_whole_and_big_ones_on_demand(tmp_path, monkeypatch):
    path = tmp_path / "vectors.npy"
    whole = np.eye(3, dtype=np.float32)
    np.save(path, whole)
    assert not is_big(path)
    small = read_rows(path)
    assert type(small) is np.ndarray
    np.testing.assert_array_equal(small, whole)
    monkeypatch.setattr(index_files, "MMAP_MIN_BYTES", path.stat().st_size)
    assert is_big(path)
    big = read_rows(path)
    assert isinstance(big, RowFile)
    np.testing.assert_array_equal(big[[0, 1, 2]], whole)


# -- chunks ---------------------------------------------------------------------------------

CHUNKS = [
    Chunk(source="a.txt", start=0, end=12, text="First, ä fan.", before="", after="Second one."),
    Chunk(source="a.txt", start=13, end=24, text="Second one.", before="First, ä fan.", after=""),
    Chunk(source="b/c.md", start=5, end=9, text="日本 \udcff", before="", after=""),
]


def test_chunks_are_one_json_object_a_line_with_their_offsets(tmp_path):
    write_chunks(tmp_path, CHUNKS)
    data = (tmp_path / "chunks.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    assert [json.loads(line) for line in lines] == [
        {"source": c.source, "start": c.start, "end": c.end, "text": c.text, "before": c.before, "after": c.after}
        for c in CHUNKS
    ]
    assert lines[0].startswith(b'{"source": "a.txt", "start": 0, "end": 12, "text": "First, \xc3\xa4 fan."')
    offsets = np.load(tmp_path / "chunks.offsets.npy")
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, len(lines[0]), len(lines[0]) + len(lines[1]), len(data)]


def test_a_chunk_store_reads_chunks_as_a_list_would(tmp_path, size):
    write_chunks(tmp_path, CHUNKS)
    store = ChunkStore(tmp_path / "chunks.jsonl", np.load(tmp_path / "chunks.offsets.npy"))
    assert len(store) == 3 and store == CHUNKS and list(store) == CHUNKS
    assert store[0] == CHUNKS[0] and store[-1] == CHUNKS[-1] and store[np.int64(1)] == CHUNKS[1]
    assert store[1:] == CHUNKS[1:] and store[::2] == CHUNKS[::2] and store[5:] == []
    assert store != CHUNKS[:2] and store != CHUNKS[::-1]
    assert repr(store) == "<ChunkStore of 3 chunks>"
    for out_of_range in (3, -4):
        with pytest.raises(IndexError):
            store[out_of_range]


def test_a_chunk_store_refuses_offsets_that_do_not_fit(tmp_path):
    write_chunks(tmp_path, CHUNKS)
    path, offsets = tmp_path / "chunks.jsonl", np.load(tmp_path / "chunks.offsets.npy")
    for wrong in (offsets[:-1], offsets + 1, np.array([0, 5, 5, offsets[-1]]), np.zeros(0, dtype=np.int64)):
        with pytest.raises(ValueError, match="does not match"):
            ChunkStore(path, wrong)


def test_an_empty_chunk_file_is_an_empty_store(tmp_path):
    write_chunks(tmp_path, [])
    assert (tmp_path / "chunks.jsonl").read_bytes() == b""
    store = ChunkStore(tmp_path / "chunks.jsonl", np.load(tmp_path / "chunks.offsets.npy"))
    assert len(store) == 0 and list(store) == [] and store == []


def test_fsync_flushes_files_and_folders(tmp_path):
    (tmp_path / "file").write_text("x", encoding="utf-8")
    fsync(tmp_path / "file")
    fsync(tmp_path)
    with pytest.raises(FileNotFoundError):
        fsync(tmp_path / "missing")
