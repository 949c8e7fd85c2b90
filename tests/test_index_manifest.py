"""What the manifest records and the checks made against it (``bot.index.manifest``): settings,
index type by size, checksums in full and sampled, the live generation's pointer.

The build tests run the real model over real seed text.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

import bot.index.manifest as index_manifest
from bot import Config
from bot.chunk import MAX_SENTENCE_WORDS, SPLITTER
from bot.embed import model_identity
from bot.index import (
    APPROXIMATE_INDEX,
    ARTIFACTS,
    EXACT_INDEX,
    FORMAT_VERSION,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    SPREAD_SAMPLE,
    IndexUnavailable,
    current_generation,
    index_type_for,
    load_index,
    sampled_sha256,
    settings_of,
    spread_sample_rows,
    update_index,
)
from bot.index.manifest import (
    artifact_checksums,
    damaged_artifact,
    index_entry,
    vector_dtype,
)

from conftest import DOMBRA, SEZIM_FILE, live_generation

# -- settings and index type --------------------------------------------------------------


def test_settings_name_the_format_model_and_chunking():
    config = Config(window=2)
    assert settings_of(config) == {
        "format_version": FORMAT_VERSION,
        "model": model_identity(config),
        "chunking": {"splitter": SPLITTER, "window": 2, "max_sentence_words": MAX_SENTENCE_WORDS},
    }
    assert FORMAT_VERSION == 2  # the files' meaning is unchanged; bump it when it changes
    assert settings_of(Config(window=1)) != settings_of(config)


def test_the_index_type_follows_the_threshold():
    config = Config(exact_index_max_chunks=100)
    assert [index_type_for(n, config) for n in (1, 100, 101, 10**6)] == [
        EXACT_INDEX, EXACT_INDEX, APPROXIMATE_INDEX, APPROXIMATE_INDEX,
    ]
    assert vector_dtype(EXACT_INDEX) is np.float32 and vector_dtype(APPROXIMATE_INDEX) is np.float16
    assert index_entry(EXACT_INDEX, config) == {"type": EXACT_INDEX, "exact_index_max_chunks": 100}
    assert index_entry(APPROXIMATE_INDEX, config) == {
        "type": APPROXIMATE_INDEX, "exact_index_max_chunks": 100,
        "M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "quantizer": "SQ8",
    }


def test_the_spread_sample_is_every_row_or_a_fixed_sorted_draw():
    np.testing.assert_array_equal(spread_sample_rows(5), np.arange(5))
    np.testing.assert_array_equal(spread_sample_rows(SPREAD_SAMPLE), np.arange(SPREAD_SAMPLE))
    rows = spread_sample_rows(50_000)
    assert len(rows) == SPREAD_SAMPLE == len(set(rows.tolist()))
    assert np.all(np.diff(rows) > 0) and rows[0] >= 0 and rows[-1] < 50_000
    np.testing.assert_array_equal(rows, spread_sample_rows(50_000))  # the same rows at build and at load
    assert len(spread_sample_rows(0)) == 0


# -- the live generation's pointer ----------------------------------------------------------


@pytest.mark.parametrize("pointer, expected", [
    (b"gen-1-2\n", "gen-1-2"), (b"  gen-a  ", "gen-a"), (b"", None), (b"\n", None), (b"../x", None),
    (b"a/b", None), (b".CURRENT.7", None), (b"\xff\xfe", None),
])
def test_current_generation_reads_a_safe_folder_name(tmp_path, pointer, expected):
    assert current_generation(tmp_path) is None  # no CURRENT at all
    (tmp_path / "CURRENT").write_bytes(pointer)
    assert current_generation(tmp_path) == (tmp_path / expected if expected else None)


# -- checksums ------------------------------------------------------------------------------


def test_a_sampled_digest_of_a_small_file_covers_every_byte(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"abc")
    assert sampled_sha256(path) == hashlib.sha256(b"3abc").hexdigest()
    path.write_bytes(b"")
    assert sampled_sha256(path) == hashlib.sha256(b"0").hexdigest()


def test_a_sampled_digest_of_a_big_file_reads_evenly_spread_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(index_manifest, "_SAMPLE_BLOCK", 2)
    monkeypatch.setattr(index_manifest, "_SAMPLE_BLOCKS", 3)
    path = tmp_path / "file"
    path.write_bytes(b"0123456789")
    # Blocks of 2 bytes at 0, (10 - 2) * 1 // 2 = 4 and 8.
    assert sampled_sha256(path) == hashlib.sha256(b"10" + b"01" + b"45" + b"89").hexdigest()
    path.write_bytes(b"01x3456789")  # a byte between the samples
    assert sampled_sha256(path) == hashlib.sha256(b"10014589").hexdigest()
    path.write_bytes(b"0123456789" + b"!")  # the size is part of the digest
    assert sampled_sha256(path) != hashlib.sha256(b"10014589").hexdigest()


def test_damaged_artifact_names_the_first_file_that_does_not_match(tmp_path):
    for position, name in enumerate(ARTIFACTS):
        (tmp_path / name).write_bytes(bytes([position]) * (position + 1))
    manifest = artifact_checksums(tmp_path)
    assert manifest["artifacts"] == {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ARTIFACTS
    }
    assert manifest["artifact_sizes"] == {name: position + 1 for position, name in enumerate(ARTIFACTS)}
    assert manifest["artifact_samples"] == {name: sampled_sha256(tmp_path / name) for name in ARTIFACTS}
    assert damaged_artifact(tmp_path, manifest, full=True) is None
    assert damaged_artifact(tmp_path, manifest, full=False) is None

    (tmp_path / "lexical.bin").write_bytes(b"\xff" * (ARTIFACTS.index("lexical.bin") + 1))  # same size
    assert damaged_artifact(tmp_path, manifest, full=False) == "lexical.bin"
    (tmp_path / "context.npy").unlink()
    assert damaged_artifact(tmp_path, manifest, full=False) == "context.npy"
    (tmp_path / "context.npy").mkdir()  # not a file
    assert damaged_artifact(tmp_path, manifest, full=True) == "context.npy"
    assert damaged_artifact(tmp_path, {"artifacts": {}}, full=True) == ARTIFACTS[0]  # sizes unrecorded


# -- checksums of big files -----------------------------------------------------------------


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


def test_big_files_are_checked_by_size_and_samples_at_load_and_in_full_by_a_build(
    seeds_dir, index_dir, embedder, make_bot, monkeypatch, caplog
):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    update_index(config, embedder)
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["artifact_sizes"]) == set(manifest["artifact_samples"]) == set(ARTIFACTS)
    # Treat every file as big: 4 sampled blocks of 16 bytes each.
    monkeypatch.setattr(index_manifest, "FULL_CHECKSUM_MAX_BYTES", 0)
    monkeypatch.setattr(index_manifest, "_SAMPLE_BLOCK", 16)
    monkeypatch.setattr(index_manifest, "_SAMPLE_BLOCKS", 4)
    for name in ARTIFACTS:  # the samples were taken with other block sizes: re-record them
        manifest["artifact_samples"][name] = index_manifest.sampled_sha256(generation / name)
    (generation / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    load_index(index_dir, settings_of(config))

    # A flipped byte inside a sampled block is caught at load.
    chunks_file = generation / "chunks.jsonl"
    original = chunks_file.read_bytes()
    _flip(chunks_file, 3)
    with pytest.raises(IndexUnavailable, match="chunks.jsonl"):
        load_index(index_dir, settings_of(config))
    # A truncated file is caught by its size.
    chunks_file.write_bytes(original[:-1])
    with pytest.raises(IndexUnavailable, match="chunks.jsonl"):
        load_index(index_dir, settings_of(config))
    # A flipped byte between the samples passes a load, but not a full check ...
    size = len(original)
    sampled = {(size - 16) * i // 3 + j for i in range(4) for j in range(16)}
    between = next(p for p in range(size // 2, size) if p not in sampled and original[p : p + 1] == b"a")
    chunks_file.write_bytes(original[:between] + b"b" + original[between + 1 :])
    load_index(index_dir, settings_of(config))
    with pytest.raises(IndexUnavailable, match="chunks.jsonl"):
        load_index(index_dir, settings_of(config), verify="full")
    # ... and every build checks in full: the damage is found and rebuilt.
    report = update_index(config, embedder)
    assert report.rebuilt_because == "chunks.jsonl is missing or damaged"
    assert load_index(index_dir, settings_of(config), verify="full").chunks[0].source == SEZIM_FILE
    bot = make_bot(seeds_dir, index_dir)
    assert "grandmother" in bot.answer(DOMBRA).text


def test_the_manifest_records_type_sizes_and_checksums(seeds_dir, index_dir, embedder):
    config = Config(seeds_dir=seeds_dir, index_dir=index_dir)
    update_index(config, embedder)
    generation = live_generation(index_dir)
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION >= 2
    for name in ARTIFACTS:
        assert manifest["artifact_sizes"][name] == (generation / name).stat().st_size
        assert re.fullmatch(r"[0-9a-f]{64}", manifest["artifacts"][name])
    # chunks.jsonl stays one JSON object a line, and the offsets point at each line.
    offsets = np.load(generation / "chunks.offsets.npy")
    data = (generation / "chunks.jsonl").read_bytes()
    lines = data.splitlines(keepends=True)
    assert len(offsets) == len(lines) + 1 == manifest["chunks"] + 1
    assert offsets[-1] == len(data) and all(data[offsets[i] : offsets[i + 1]] == lines[i] for i in range(len(lines)))
