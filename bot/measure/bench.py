"""``bot bench``: measure speed on this machine and print one line per figure.

Every figure that has a baseline is measured against it in the same run, as
a ratio, because timings on a shared machine drift from minute to minute.
Nothing is written outside a temporary folder: the index of the seeds is
built afresh there too.

Figures:

- embedding throughput of the bot's build path (ONNX Runtime on a CPU, exact
  vectors) against plain ``SentenceTransformer(model).encode(texts)`` with
  default settings, on the texts an index build embeds (sentences and
  windows), and of the other ONNX graph (int8) for comparison;
- full build of a generated corpus of 100 seed files (real sentences of the
  seeds, recombined), and an update after editing one of them;
- answer latency p50/p95 on the seeds, one question at a time, after a warm-up;
- ``bot ask`` end to end in a fresh process, and its peak memory; a fresh
  serving process's load time and memory; ``bot serve`` from start until it
  answers its first request through ``/ask``, warm and on a first start with
  an empty ONNX cache and no index, each with the CPU time it used (all in
  ``bench_process``);
- at scale (``--scale``, 100k chunks by default; 1M with ``--scale 1000000``),
  on a corpus of the seeds grown with synthetic files and vectors: see
  ``bench_scale``.

Modules: this one drives the run and measures in-process on the seeds;
``bench_workload`` holds the questions and recycled sentences they share.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..backend.onnx import MAX_BATCH_TOKENS, QUANTISED, OnnxEncoder
from ..backend.onnx_export import ensure_onnx_export, ensure_quantised
from ..chunk import chunk_seed
from ..config import Config
from ..embed import Embedder, document_precision
from ..ingest import load_seeds
from .bench_process import ask_end_to_end, serve_first_start, serve_start, serving_process
from .bench_scale import at_scale
from .bench_workload import (
    SENTENCES_PER_PARAGRAPH,
    WARM_UP,
    latencies,
    recycled_sentence,
    seed_sentences,
)

#: Files in the generated corpus, and its shape.
CORPUS_FILES = 100
PARAGRAPHS_PER_FILE = 4
#: Texts embedded per throughput round, and rounds (the median is reported).
THROUGHPUT_TEXTS = 200
ROUNDS = 8
SERVE_RUNS = 3
#: Corpus sizes of the scale figures by default (``bot bench --scale N`` picks others).
DEFAULT_SCALES = (100_000,)


def run_benchmarks(config: Config, out=None, scales: tuple[int, ...] = DEFAULT_SCALES, base: bool = True) -> dict:
    """Run the benchmarks and print one line per figure; returns the figures.

    ``base``: the figures on the shipped seeds (embedding, build and update,
    latency, ``bot ask``, ``bot serve``); ``scales``: corpus sizes, in
    chunks, of the scale figures (none when empty).
    """
    out = out or sys.stdout
    figures: dict = {}

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    sentences = seed_sentences(config)
    say(f"machine: {os.cpu_count()} CPU cores; model {config.model}; seeds {config.seeds_dir} "
        f"({len(sentences)} distinct sentences); documents embedded as {document_precision(config)}")
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
        work = Path(tmp)
        embedder = Embedder(config)
        if base:
            index = work / "seeds-index"
            corpus = _write_corpus(sentences, work / "corpus")
            figures.update(_throughput(config, embedder, corpus, say))
            figures.update(_build_and_update(config, embedder, corpus, work, say))
            figures.update(_answer_latency(config, embedder, work, say))
            figures.update(ask_end_to_end(config, index, say))
            serving_process(config.with_changes(index_dir=index), say, "the seeds")
            figures.update(serve_start(index, config, say, "the seeds", SERVE_RUNS))
            figures.update(serve_first_start(config, work, say))
        for size in scales:
            figures.update(at_scale(config, embedder, sentences, size, work / f"scale-{size}", say))
    return figures


# -- the corpus ---------------------------------------------------------------------


def _write_corpus(sentences: list[str], folder: Path) -> Path:
    """100 seed files of real seed sentences in new orders and with distinct lead-ins."""
    folder.mkdir(parents=True)
    serial = 0
    for number in range(CORPUS_FILES):
        rng = random.Random(number)
        paragraphs = []
        for _ in range(PARAGRAPHS_PER_FILE):
            picked = []
            for _ in range(SENTENCES_PER_PARAGRAPH):
                picked.append(recycled_sentence(rng, sentences, serial))
                serial += 1
            paragraphs.append(" ".join(picked))
        (folder / f"doc-{number:03d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return folder


def _builder_texts(config: Config, corpus: Path) -> list[str]:
    """The distinct texts a build of ``corpus`` embeds: each sentence, and each with its window."""
    chunks = [chunk for seed in load_seeds(corpus) for chunk in chunk_seed(seed, config.window)]
    texts = list(dict.fromkeys([c.text for c in chunks] + [c.context for c in chunks]))
    random.Random(0).shuffle(texts)
    return texts


# -- the figures --------------------------------------------------------------------


#: The ONNX graphs of each document precision, and what the figure's line says of them.
_GRAPHS = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
_GRAPH_NOTES = {"fp32": "exact vectors, as questions", "int8": "BOT_EMBED_DOCUMENTS=int8; vectors within ~0.99 cosine"}


def _other_graph(config: Config, variant: str) -> OnnxEncoder | None:
    """The ONNX graph ``variant`` of the configured model, or None when the model has none to compare."""
    try:
        folder = ensure_onnx_export(config.model, config.onnx_cache_dir)
        if variant == QUANTISED and not ensure_quantised(folder):
            return None
        return OnnxEncoder(folder, variant) if (folder / variant).is_file() else None
    except (ImportError, OSError, RuntimeError, ValueError):  # the model cannot run through ONNX Runtime
        return None


def _contenders(config: Config, embedder: Embedder) -> tuple[dict, object]:
    """The encoders to compare by name ("ours", "plain", and the other ONNX graphs), and the plain model."""
    # A SentenceTransformer of the model, loaded as sentence-transformers does by default.
    plain = Embedder(config).model
    contenders = {"ours": lambda batch: embedder.encode_documents(batch, batch_size=config.batch_size),
                  "plain": lambda batch: plain.encode(batch)}
    default = document_precision(config)
    for precision, variant in _GRAPHS.items():
        encoder = _other_graph(config, variant) if precision != default else None
        if encoder is not None:
            contenders[precision] = lambda batch, encoder=encoder: encoder.encode(batch, config.batch_size)
    return contenders, plain


def _speeds(contenders: dict, texts: list[str], rounds: list[list[str]]) -> dict[str, list[float]]:
    """Texts per second of each contender in each round."""
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for encode in contenders.values():
        encode(texts[:32])  # warm-up: first-call costs are not throughput
    names = list(contenders)
    for number, batch in enumerate(rounds):  # short interleaved rounds: drift in load hits all alike
        for name in names if number % 2 == 0 else reversed(names):
            encode = contenders[name]
            started = time.perf_counter()
            encode(batch)
            speeds[name].append(len(batch) / (time.perf_counter() - started))
    return speeds


def _throughput(config: Config, embedder: Embedder, corpus: Path, say) -> dict:
    texts = _builder_texts(config, corpus)
    rounds = [texts[(i * THROUGHPUT_TEXTS) % len(texts):][:THROUGHPUT_TEXTS] for i in range(ROUNDS)]
    contenders, plain = _contenders(config, embedder)
    speeds = _speeds(contenders, texts, rounds)
    median = {name: statistics.median(values) for name, values in speeds.items()}
    ratios = [a / b for a, b in zip(speeds["ours"], speeds["plain"])]
    say(f"embedding throughput: {median['ours']:.0f} sentences/s ({_path_name(embedder, config)}) vs plain "
        f"SentenceTransformer.encode {median['plain']:.0f} sentences/s on {plain.device}: "
        f"{statistics.median(ratios):.2f}x (median of {ROUNDS} interleaved rounds of {len(rounds[0])} "
        f"distinct texts; ratios {min(ratios):.2f} to {max(ratios):.2f})")
    figures = {"embed_per_s": median["ours"], "plain_embed_per_s": median["plain"],
               "embed_ratio": statistics.median(ratios)}
    for precision in _GRAPHS:
        if precision in speeds:
            other_ratios = [a / b for a, b in zip(speeds[precision], speeds["plain"])]
            say(f"embedding throughput, {precision} ONNX graph ({_GRAPH_NOTES[precision]}): {median[precision]:.0f} "
                f"sentences/s: {statistics.median(other_ratios):.2f}x plain")
            figures[f"{precision}_embed_ratio"] = statistics.median(other_ratios)
    return figures


def _path_name(embedder: Embedder, config: Config) -> str:
    precision = document_precision(config)
    if precision == "torch" or embedder.backend != "onnx":
        return "sentence-transformers"
    return f"ONNX Runtime {precision}, length-sorted batches of <= {MAX_BATCH_TOKENS} tokens"


def _build_and_update(config: Config, embedder: Embedder, corpus: Path, work: Path, say) -> dict:
    from ..index import update_index

    builds, updates = [], []
    for round_number in range(2):
        seeds = work / f"build-{round_number}" / "seeds"
        shutil.copytree(corpus, seeds)
        settings = config.with_changes(seeds_dir=seeds, index_dir=seeds.parent / "index")
        full = update_index(settings, embedder)
        builds.append(full.seconds)
        edited = seeds / "doc-050.txt"
        text = edited.read_text(encoding="utf-8")
        first, rest = text.split("\n\n", 1)
        edited.write_text(" ".join(reversed(first.split(". "))) + "\n\n" + rest, encoding="utf-8")
        update = update_index(settings, embedder)
        assert update.changed == ["doc-050.txt"], update.summary()
        updates.append(update.seconds)
    build, update_time = statistics.median(builds), statistics.median(updates)
    say(f"full build, {CORPUS_FILES} files ({full.chunks} chunks, {full.embedded} embedded): "
        f"{build:.2f} s (runs: {', '.join(f'{b:.2f}' for b in builds)})")
    say(f"update after editing 1 of {CORPUS_FILES} files ({update.embedded} chunks embedded): "
        f"{update_time:.2f} s = {update_time / build:.1%} of the full build "
        f"(runs: {', '.join(f'{u:.2f}' for u in updates)})")
    return {"build_s": build, "update_s": update_time, "update_ratio": update_time / build}


def _answer_latency(config: Config, embedder: Embedder, work: Path, say) -> dict:
    from ..core import Bot

    bot = Bot(config.with_changes(index_dir=work / "seeds-index"), embedder=embedder)
    bot.ensure_index()
    p50, p95, times = latencies(bot)
    say(f"answer latency on {config.seeds_dir} ({len(bot.retriever.index)} chunks): p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms ({len(times)} answers, one at a time, after {WARM_UP} warm-up)")
    return {"latency_p50_ms": float(p50), "latency_p95_ms": float(p95)}
