"""``bot bench``: its helpers, its probe programs, and the scale figures end to end."""

from __future__ import annotations

import io
import subprocess
import sys

import faiss
import numpy as np
import pytest

from bot import Config
from bot.index import APPROXIMATE_INDEX
from bot.measure import probe_ask
from bot.measure.bench import run_benchmarks
from bot.measure.bench_scale import exact_top, synthetic_vectors

from conftest import SEEDS


def test_synthetic_vectors_are_unit_length_and_reproducible():
    vectors = synthetic_vectors(1000, 384, seed=1)
    assert vectors.dtype == np.float32 and vectors.shape == (1000, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, synthetic_vectors(1000, 384, seed=1))
    assert not np.array_equal(vectors, synthetic_vectors(1000, 384, seed=2))


def test_exact_top_is_exact_search_across_blocks():
    vectors = synthetic_vectors(140_000, 32, seed=1)  # more than one block of 131072 rows
    queries = synthetic_vectors(20, 32, seed=3)
    flat = faiss.IndexFlatIP(32)
    flat.add(vectors)
    assert np.array_equal(exact_top(vectors, queries, 10), flat.search(queries, 10)[1])


def test_the_ask_probe_runs_bot_and_reports_its_peak_memory():
    result = subprocess.run([sys.executable, "-m", probe_ask.__name__, "--version"], check=False,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "version" in result.stdout
    (line,) = [line for line in result.stderr.splitlines() if line.startswith(probe_ask.MARK + " ")]
    assert int(line.split()[1]) > 10_000  # KiB: a Python process that imported the bot


@pytest.mark.slow
def test_bench_scale_figures_on_a_small_scale(tmp_path, monkeypatch):
    """``bot bench --scale N --scale-only`` end to end, on a size small enough for a test."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    config = Config(seeds_dir=SEEDS, index_dir=tmp_path / "unused", exact_index_max_chunks=2000)
    figures = run_benchmarks(config, out=out, scales=(3000,), base=False)
    lines = out.getvalue().splitlines()
    assert figures["index_type_3k"] == APPROXIMATE_INDEX
    assert figures["recall_at_10_rescored_3k"] >= 0.95
    assert 0 < figures["latency_p50_ms_3k"] <= figures["latency_p95_ms_3k"]
    assert figures["peak_rss_mib_3k"] > 0 and figures["serve_first_answer_s_3k"] > 0
    for start in ("index at 3k", "recall@10 vs exact at 3k", "answer latency at 3k",
                  "serving process at 3k", "bot serve until it answers"):
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert not (tmp_path / "unused").exists()
