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
- ``bot ask`` end to end in a fresh process, and its peak memory.

TODO (issue 4, later work): latency and memory at 100k and 1M chunks, the
automatic choice of index type by size, and ``bot serve`` start-up.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .chunk import chunk_seed
from .config import Config
from .embed import MAX_BATCH_TOKENS, Embedder, _load_sentence_transformer, document_precision
from .ingest import NoSeedsError, load_seeds

#: Files in the generated corpus, and its shape.
CORPUS_FILES = 100
PARAGRAPHS_PER_FILE = 4
SENTENCES_PER_PARAGRAPH = 3
#: Texts embedded per throughput round, and rounds (the median is reported).
THROUGHPUT_TEXTS = 200
ROUNDS = 8
#: Questions asked for the latency figures (after WARM_UP of them unmeasured).
QUESTIONS = (
    "Who taught Sezim to play the dombra?",
    "What was her debut album called?",
    "Where did she study music?",
    "Which singer inspired her to pursue a career in music?",
    "What instruments does she blend with jazz?",
    "Was the album a success?",
    "Where is she from?",
    "What does she sing about?",
    "Does she still play traditional songs?",
    "What is her favourite food?",
    "Who won the football world cup in 1998?",
    "Tell me about her childhood.",
)
LATENCY_REPEATS = 5
WARM_UP = 5
ASK_RUNS = 3


def run_benchmarks(config: Config, out=None) -> dict:
    """Run every benchmark and print one line per figure; returns the figures."""
    out = out or sys.stdout
    figures: dict = {}

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    sentences = _seed_sentences(config)
    say(f"machine: {os.cpu_count()} CPU cores; model {config.model}; seeds {config.seeds_dir} "
        f"({len(sentences)} distinct sentences); documents embedded as {document_precision(config.model)}")
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
        work = Path(tmp)
        corpus = _write_corpus(sentences, work / "corpus")
        embedder = Embedder(config.model)
        figures.update(_throughput(config, embedder, corpus, say))
        figures.update(_build_and_update(config, embedder, corpus, work, say))
        figures.update(_answer_latency(config, embedder, work, say))
        figures.update(_ask_end_to_end(config, work, say))
    return figures


# -- the corpus ---------------------------------------------------------------------


def _seed_sentences(config: Config) -> list[str]:
    sentences = [chunk.text for seed in load_seeds(config.seeds_dir, config.max_seed_bytes)
                 for chunk in chunk_seed(seed, config.window)]
    distinct = list(dict.fromkeys(s for s in sentences if len(s.split()) >= 3))
    if not distinct:
        raise NoSeedsError(f"The documents in {config.seeds_dir} hold no sentences to build a test corpus from.")
    return distinct


#: Lead-ins that make each recombined sentence a distinct text, so that a few
#: seed sentences still give a corpus of distinct sentences to embed (the
#: builder embeds a repeated text once, which would flatter the build time).
_LEAD_INS = ("In {year}, ", "By {year}, ", "Around {year}, ", "As reported in {year}, ", "Since {year}, ")


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
                sentence = rng.choice(sentences)
                lead = _LEAD_INS[serial % len(_LEAD_INS)].format(year=1000 + serial // len(_LEAD_INS))
                picked.append(lead + sentence[0].lower() + sentence[1:])
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


def _throughput(config: Config, embedder: Embedder, corpus: Path, say) -> dict:
    texts = _builder_texts(config, corpus)
    rounds = [texts[(i * THROUGHPUT_TEXTS) % len(texts):][:THROUGHPUT_TEXTS] for i in range(ROUNDS)]
    plain = _load_sentence_transformer(config.model)  # SentenceTransformer(path), default device
    contenders = {"ours": lambda batch: embedder.encode(batch, batch_size=config.batch_size),
                  "plain": lambda batch: plain.encode(batch)}
    default = document_precision(config.model)
    others = {"fp32": "model.onnx", "int8": "model-int8.onnx"}
    for precision, variant in others.items():  # the other ONNX graph(s), for comparison
        encoder = embedder._onnx(variant) if precision != default else None
        if encoder is not None:
            contenders[precision] = lambda batch, encoder=encoder: encoder.encode(batch, config.batch_size)
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
    median = {name: statistics.median(values) for name, values in speeds.items()}
    ratios = [a / b for a, b in zip(speeds["ours"], speeds["plain"])]
    say(f"embedding throughput: {median['ours']:.0f} sentences/s ({_path_name(embedder, config)}) vs plain "
        f"SentenceTransformer.encode {median['plain']:.0f} sentences/s on {plain.device}: "
        f"{statistics.median(ratios):.2f}x (median of {ROUNDS} interleaved rounds of {len(rounds[0])} "
        f"distinct texts; ratios {min(ratios):.2f} to {max(ratios):.2f})")
    figures = {"embed_per_s": median["ours"], "plain_embed_per_s": median["plain"],
               "embed_ratio": statistics.median(ratios)}
    notes = {"fp32": "exact vectors, as questions", "int8": "BOT_EMBED_DOCUMENTS=int8; vectors within ~0.99 cosine"}
    for precision in others:
        if precision in speeds:
            other_ratios = [a / b for a, b in zip(speeds[precision], speeds["plain"])]
            say(f"embedding throughput, {precision} ONNX graph ({notes[precision]}): {median[precision]:.0f} "
                f"sentences/s: {statistics.median(other_ratios):.2f}x plain")
            figures[f"{precision}_embed_ratio"] = statistics.median(other_ratios)
    del plain
    return figures


def _path_name(embedder: Embedder, config: Config) -> str:
    precision = document_precision(config.model)
    if precision == "torch" or embedder.backend != "onnx":
        return "sentence-transformers"
    return f"ONNX Runtime {precision}, length-sorted batches of <= {MAX_BATCH_TOKENS} tokens"


def _build_and_update(config: Config, embedder: Embedder, corpus: Path, work: Path, say) -> dict:
    from .index import update_index

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
    from .core import Bot

    bot = Bot(config.with_changes(index_dir=work / "seeds-index"), embedder=embedder)
    bot.ensure_index()
    for question in QUESTIONS[:WARM_UP]:
        bot.answer(question)
    times = []
    for _ in range(LATENCY_REPEATS):
        for question in QUESTIONS:
            started = time.perf_counter()
            bot.answer(question)
            times.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(times, 50), np.percentile(times, 95)
    say(f"answer latency on {config.seeds_dir} ({len(bot.retriever.index)} chunks): p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms ({len(times)} answers, one at a time, after {WARM_UP} warm-up)")
    return {"latency_p50_ms": float(p50), "latency_p95_ms": float(p95)}


#: Runs the ``bot`` command and, at exit, writes the process's peak RSS to stderr
#: (VmHWM: the rusage of a child would count the parent's pages before exec).
_ASK_WRAPPER = """
import atexit, sys
def _peak():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                sys.stderr.write("bench-peak-rss-kib " + line.split()[1] + "\\n")
    except OSError:
        pass
atexit.register(_peak)
sys.argv = ["bot"] + sys.argv[1:]
from bot.cli import main
main()
"""


def _ask_end_to_end(config: Config, work: Path, say) -> dict:
    """``bot ask`` in a fresh process over an index that is built (wall time and peak RSS)."""
    command = [sys.executable, "-c", _ASK_WRAPPER, "ask", QUESTIONS[0], "--seeds", str(config.seeds_dir.resolve()),
               "--index", str((work / "seeds-index").resolve()), "--model", config.model]
    times, peaks = [], []
    for run in range(ASK_RUNS + 1):  # the first run is a warm-up (it may export the model, once)
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"bot ask failed: {result.stderr.strip()[-500:]}")
        if run:
            times.append(elapsed)
            peaks += [int(line.split()[1]) / 1024 for line in result.stderr.splitlines()
                      if line.startswith("bench-peak-rss-kib ")]
    median = statistics.median(times)
    memory = f"; peak RSS {statistics.median(peaks):.0f} MiB" if peaks else ""
    say(f"bot ask end to end: {median:.2f} s median of {ASK_RUNS} (runs: {', '.join(f'{t:.2f}' for t in times)}, "
        f"after one warm-up run){memory}")
    return {"ask_s": median, "ask_peak_rss_mib": statistics.median(peaks) if peaks else None}
