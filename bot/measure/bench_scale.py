"""``bot bench`` figures at scale (``--scale N``): an index of the shipped seeds
(real vectors) plus synthetic seed files of recycled seed sentences up to N
chunks, whose vectors are synthetic (unit vectors drawn from a Gaussian with
the mean and 1/k spectrum of MiniLM embeddings of real seeds).

Figures: time to write the index files, recall@10 of the approximate index
against exact search, answer latency p50/p95, peak RSS of a fresh process
serving it, and ``bot serve`` start-up.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chunk import Chunk, chunk_seed
from ..config import Config
from ..embed import Embedder
from ..ingest import load_seeds
from .bench_process import serve_start, serving_process
from .bench_workload import (
    SENTENCES_PER_PARAGRAPH,
    WARM_UP,
    latencies,
    recycled_sentence,
)

#: Sentences in each synthetic seed file of a scale corpus (paragraphs of three).
SCALE_FILE_SENTENCES = 1000
#: Synthetic questions (drawn like the corpus vectors) for the recall figure.
RECALL_QUERIES = 200

#: MiniLM sentence embeddings of real seeds (the three evaluation sets): the
#: norm of their mean, and the variance of their first principal component;
#: the k-th component's variance falls as 1/k (fitted slope -1.0).
_EMBEDDING_MEAN_NORM = 0.41
_EMBEDDING_TOP_VARIANCE = 0.11


def synthetic_vectors(count: int, dimension: int, seed: int) -> np.ndarray:
    """``count`` unit vectors drawn like sentence embeddings (see _EMBEDDING_*), float32.

    A Gaussian with the embeddings' mean and 1/k variance spectrum, in a fixed
    random basis, normalised. It has no topic clusters, which makes
    approximate search harder than on real embeddings: recall measured on it
    is a conservative figure.
    """
    shape_rng = np.random.default_rng(20240611)
    basis, _ = np.linalg.qr(shape_rng.standard_normal((dimension, dimension)))
    basis = (basis * np.sqrt(_EMBEDDING_TOP_VARIANCE / np.arange(1, dimension + 1))).T.astype(np.float32)
    mean = shape_rng.standard_normal(dimension)
    mean = (mean * _EMBEDDING_MEAN_NORM / np.linalg.norm(mean)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((count, dimension), np.float32)
    for start in range(0, count, 65536):
        rows = min(65536, count - start)
        block = rng.standard_normal((rows, dimension), dtype=np.float32) @ basis + mean
        out[start : start + rows] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


@dataclass
class ScaleCorpus:
    """Seeds of about the asked size, with their chunks and vectors, ready to be written as an index."""

    settings: Config
    chunks: list[Chunk]
    vectors: np.ndarray
    context_vectors: np.ndarray
    files: dict[str, dict]


def _synthetic_file(name: str, sentences: list[str], window: int, first: int) -> tuple[bytes, list[Chunk]]:
    """A seed file of ``sentences`` in paragraphs, and its chunks (as chunk_seed would cut it)."""
    text, chunks, position = [], [], 0
    for p in range(0, len(sentences), SENTENCES_PER_PARAGRAPH):
        paragraph = sentences[p : p + SENTENCES_PER_PARAGRAPH]
        if p:
            text.append("\n\n")
            position += 2
        for i, sentence in enumerate(paragraph):
            if i:
                text.append(" ")
                position += 1
            before = " ".join(paragraph[max(0, i - window) : i])
            after = " ".join(paragraph[i + 1 : i + 1 + window])
            chunks.append(Chunk(name, position, position + len(sentence), sentence, before, after))
            text.append(sentence)
            position += len(sentence)
    return ("".join(text) + "\n").encode("utf-8"), chunks


def scale_corpus(config: Config, embedder: Embedder, sentences: list[str], size: int, folder: Path) -> ScaleCorpus:
    """Seeds of about ``size`` chunks: the shipped seeds plus synthetic files of recycled sentences.

    The shipped seeds' chunks get their real vectors, the rest synthetic ones.
    The synthetic files are written to disk, so the index is up to date with
    its seeds and ``bot serve`` / ``bot ask`` use it as it is.
    """
    seeds = folder / "seeds"
    shutil.copytree(config.seeds_dir, seeds)
    settings = config.with_changes(seeds_dir=seeds, index_dir=folder / "index")
    chunks: list[Chunk] = []
    files: dict[str, dict] = {}
    for seed in load_seeds(seeds, config.max_seed_bytes):
        seed_chunks = chunk_seed(seed, config.window)
        files[seed.path] = {"sha256": seed.sha256, "first": len(chunks), "count": len(seed_chunks)}
        chunks.extend(seed_chunks)
    real = len(chunks)
    texts = [c.text for c in chunks] + [c.context for c in chunks]
    embedded = embedder.encode_documents(texts, batch_size=config.batch_size) if chunks else None
    (seeds / "synthetic").mkdir()
    serial, number = 0, 0
    while len(chunks) < size:
        count = min(SCALE_FILE_SENTENCES, size - len(chunks))
        rng = random.Random(number)
        picked = [recycled_sentence(rng, sentences, serial + i) for i in range(count)]
        serial += count
        name = f"synthetic/part-{number:05d}.txt"
        data, file_chunks = _synthetic_file(name, picked, config.window, len(chunks))
        (seeds / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "first": len(chunks), "count": len(file_chunks)}
        chunks.extend(file_chunks)
        number += 1
    vectors = synthetic_vectors(len(chunks), embedder.dimension, seed=1)
    # A window's vector leans towards its sentence's.
    context_vectors = vectors + synthetic_vectors(len(chunks), embedder.dimension, seed=2)
    context_vectors /= np.linalg.norm(context_vectors, axis=1, keepdims=True)
    if real:
        vectors[:real], context_vectors[:real] = embedded[:real], embedded[real:]
    return ScaleCorpus(settings, chunks, vectors, context_vectors, files)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k largest inner products of each query, best first (blockwise, exact)."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), 131072):
        block = np.asarray(vectors[start : start + 131072], dtype=np.float32)
        scores = np.concatenate([best_scores, queries @ block.T], axis=1)
        block_rows = np.broadcast_to(np.arange(start, start + len(block)), (len(queries), len(block)))
        rows = np.concatenate([best_rows, block_rows], axis=1)
        keep = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, keep, 1), np.take_along_axis(rows, keep, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, 1)


def _recall(config: Config, faiss_index, stored: np.ndarray, exact_vectors: np.ndarray, queries: np.ndarray):
    """recall@10 of the approximate index as the retriever uses it: raw, and after re-scoring.

    The retriever asks FAISS for ``Config.candidates`` rows (efSearch
    ``Config.hnsw_ef_search``) and re-scores them with the stored vectors
    (float16 for an approximate index).
    """
    import faiss

    truth = exact_top(exact_vectors, queries, 10)
    params = faiss.SearchParametersHNSW(efSearch=max(config.hnsw_ef_search, config.candidates))
    raw, rescored, times = [], [], []
    for query, true in zip(queries, truth):
        started = time.perf_counter()
        _, rows = faiss_index.search(query[None, :], config.candidates, params=params)
        times.append((time.perf_counter() - started) * 1000)
        rows = rows[0][rows[0] >= 0]
        again = rows[np.argsort(-(np.asarray(stored[rows], dtype=np.float32) @ query), kind="stable")]
        raw.append(len(set(rows[:10]) & set(true)) / 10)
        rescored.append(len(set(again[:10]) & set(true)) / 10)
    return float(np.mean(raw)), float(np.mean(rescored)), float(np.median(times))


def _label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _real_chunks(files: dict) -> int:
    return sum(entry["count"] for name, entry in files.items() if not name.startswith("synthetic/"))


def _write_index(corpus: ScaleCorpus, label: str, prepared: float, say) -> dict:
    """Write the corpus as an index generation; its type, timing and file sizes."""
    from ..index import settings_of, write_generation

    settings, chunks, vectors, files = corpus.settings, corpus.chunks, corpus.vectors, corpus.files
    manifest = {**settings_of(settings), "dimension": vectors.shape[1], "files": files, "built_at": time.time()}
    started = time.perf_counter()
    generation = write_generation(settings.index_dir, manifest, chunks, vectors, corpus.context_vectors, settings)
    written = time.perf_counter() - started
    kind = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))["index"]["type"]
    sizes = {p.name: p.stat().st_size for p in generation.iterdir()}
    vector_bytes = sizes["index.faiss"] + sizes["vectors.npy"] + sizes["context.npy"]
    say(f"index at {label} ({len(chunks)} chunks in {len(files)} files; vectors synthetic but for the "
        f"{_real_chunks(files)} real chunks): {kind}, written in {written:.1f} s (chunks, vectors, FAISS, BM25, "
        f"checksums; corpus made in {prepared:.1f} s); files: index.faiss {sizes['index.faiss'] / 2**20:.0f} MiB, "
        f"vectors.npy + context.npy {(sizes['vectors.npy'] + sizes['context.npy']) / 2**20:.0f} MiB, "
        f"lexical.bin {sizes['lexical.bin'] / 2**20:.0f} MiB, chunks {sizes['chunks.jsonl'] / 2**20:.0f} MiB")
    return {f"index_type_{label}": kind, f"write_s_{label}": written, f"vector_file_mib_{label}": vector_bytes / 2**20}


def _recall_figures(settings: Config, index, kind: str, vectors: np.ndarray, label: str, say) -> dict:
    """recall@10 of the approximate index (or of one built for the figure) against exact search."""
    from ..index import APPROXIMATE_INDEX, EXACT_INDEX, faiss_index_for

    # The questions are drawn like the corpus vectors: the real questions are
    # far from every synthetic vector, where exact ranks are near-ties.
    queries = synthetic_vectors(RECALL_QUERIES, vectors.shape[1], seed=3)
    if kind == APPROXIMATE_INDEX:
        approximate, stored, what = index.faiss_index, index.vectors, "the index"
    else:
        started = time.perf_counter()
        approximate = faiss_index_for(vectors, APPROXIMATE_INDEX)
        built = time.perf_counter() - started
        stored = vectors.astype(np.float16)
        what = (f"an {APPROXIMATE_INDEX} index over the same vectors (built in {built:.1f} s; "
                f"this size uses {EXACT_INDEX})")
    raw, rescored, search_ms = _recall(settings, approximate, stored, vectors, queries)
    say(f"recall@10 vs exact at {label}, {what}: {raw:.3f} ({rescored:.3f} after re-scoring the "
        f"{settings.candidates} candidates with the stored vectors, as the retriever does) on {RECALL_QUERIES} "
        f"questions drawn like the vectors; search {search_ms:.2f} ms median "
        f"(efSearch {max(settings.hnsw_ef_search, settings.candidates)})")
    return {f"recall_at_10_{label}": raw, f"recall_at_10_rescored_{label}": rescored}


def at_scale(config: Config, embedder: Embedder, sentences: list[str], size: int, folder: Path, say) -> dict:
    """Every scale figure for a corpus of ``size`` chunks, made in ``folder`` (removed afterwards)."""
    from ..core import Bot

    label = _label(size)
    started = time.perf_counter()
    corpus = scale_corpus(config, embedder, sentences, size, folder)
    figures = _write_index(corpus, label, time.perf_counter() - started, say)
    kind, settings, vectors = figures[f"index_type_{label}"], corpus.settings, corpus.vectors
    del corpus

    bot = Bot(settings, embedder=embedder)
    if bot.ensure_index() is not None:
        raise RuntimeError("the scale index was rebuilt instead of loaded")
    index = bot.retriever.index
    figures.update(_recall_figures(settings, index, kind, vectors, label, say))
    del vectors

    # answer latency, one question at a time after a warm-up
    p50, p95, times = latencies(bot)
    say(f"answer latency at {label} ({len(index)} chunks, {kind}): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"({len(times)} answers, one at a time, after {WARM_UP} warm-up)")
    figures.update({f"latency_p50_ms_{label}": float(p50), f"latency_p95_ms_{label}": float(p95)})
    del bot, index

    probe = serving_process(settings, say, label)
    figures.update({f"peak_rss_mib_{label}": probe["VmHWM"] / 1024, f"load_s_{label}": probe["load_s"]})
    figures.update(serve_start(settings.index_dir, settings, say, label, 1))
    shutil.rmtree(folder, ignore_errors=True)
    return figures
