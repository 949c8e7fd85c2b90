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
- ``bot ask`` end to end in a fresh process, and its peak memory;
- ``bot serve`` from start until it answers its first request through ``/ask``;
- at scale (``--scale``, 100k chunks by default; 1M with ``--scale 1000000``):
  an index of the shipped seeds (real vectors) plus synthetic seed files of
  recycled seed sentences up to that many chunks, whose vectors are synthetic
  (unit vectors drawn from a Gaussian with the mean and 1/k spectrum of
  MiniLM embeddings of real seeds): time to write the index files, recall@10
  of the approximate index against exact search, answer latency p50/p95,
  peak RSS of a fresh process serving it, and ``bot serve`` start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .backend.onnx import MAX_BATCH_TOKENS
from .backend.sentence_transformers import load_sentence_transformer as _load_sentence_transformer
from .chunk import Chunk, chunk_seed
from .config import Config
from .embed import Embedder, document_precision
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


#: Corpus sizes of the scale figures by default (``bot bench --scale N`` picks others).
DEFAULT_SCALES = (100_000,)
#: Sentences in each synthetic seed file of a scale corpus (paragraphs of three).
SCALE_FILE_SENTENCES = 1000
#: Synthetic questions (drawn like the corpus vectors) for the recall figure.
RECALL_QUERIES = 200
SERVE_RUNS = 3


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

    sentences = _seed_sentences(config)
    say(f"machine: {os.cpu_count()} CPU cores; model {config.model}; seeds {config.seeds_dir} "
        f"({len(sentences)} distinct sentences); documents embedded as {document_precision(config)}")
    with tempfile.TemporaryDirectory(prefix="bot-bench-") as tmp:
        work = Path(tmp)
        embedder = Embedder(config)
        if base:
            corpus = _write_corpus(sentences, work / "corpus")
            figures.update(_throughput(config, embedder, corpus, say))
            figures.update(_build_and_update(config, embedder, corpus, work, say))
            figures.update(_answer_latency(config, embedder, work, say))
            figures.update(_ask_end_to_end(config, work, say))
            _serving_process(config.with_changes(index_dir=work / "seeds-index"), say, "the seeds")
            figures.update(_serve_start(config.seeds_dir, work / "seeds-index", config, say, "the seeds", SERVE_RUNS))
        for size in scales:
            figures.update(_at_scale(config, embedder, sentences, size, work / f"scale-{size}", say))
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


def _recycled_sentence(rng: random.Random, sentences: list[str], serial: int) -> str:
    """A seed sentence behind a numbered lead-in, so recycled sentences stay distinct."""
    sentence = rng.choice(sentences)
    lead = _LEAD_INS[serial % len(_LEAD_INS)].format(year=1000 + serial // len(_LEAD_INS))
    return lead + sentence[0].lower() + sentence[1:]


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
                picked.append(_recycled_sentence(rng, sentences, serial))
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
    contenders = {"ours": lambda batch: embedder.encode_documents(batch, batch_size=config.batch_size),
                  "plain": lambda batch: plain.encode(batch)}
    default = document_precision(config)
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
    precision = document_precision(config)
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


def _latencies(bot) -> tuple[float, float, list[float]]:
    """p50 and p95 of answer() in ms, one question at a time after a warm-up, and all timings."""
    for question in QUESTIONS[:WARM_UP]:
        bot.answer(question)
    times = []
    for _ in range(LATENCY_REPEATS):
        for question in QUESTIONS:
            started = time.perf_counter()
            bot.answer(question)
            times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), times


def _answer_latency(config: Config, embedder: Embedder, work: Path, say) -> dict:
    from .core import Bot

    bot = Bot(config.with_changes(index_dir=work / "seeds-index"), embedder=embedder)
    bot.ensure_index()
    p50, p95, times = _latencies(bot)
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


# -- bot serve ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ask_over_http(client, base: str, question: str) -> dict | None:
    """One question through the /ask API (POST, then read the event stream); None if not ready."""
    joined = client.post(f"{base}gradio_api/call/ask", json={"data": [question, None]})
    if joined.status_code != 200:
        return None
    stream = client.get(f"{base}gradio_api/call/ask/{joined.json()['event_id']}")
    event = None
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:") and event == "complete":
            return json.loads(line[5:])[0]
    return None


def _serve_start(seeds: Path, index: Path, config: Config, say, what: str, runs: int) -> dict:
    """Seconds from starting ``bot serve`` (index already built) until /ask answers a question."""
    import httpx

    times = []
    for run in range(runs + 1):  # the first run is a warm-up (cold page cache, first imports)
        port = _free_port()
        base = f"http://127.0.0.1:{port}/"
        command = [sys.executable, "-m", "bot", "serve", "--seeds", str(seeds), "--index", str(index),
                   "--model", config.model, "--host", "127.0.0.1", "--port", str(port)]
        with tempfile.TemporaryFile() as log:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                answer = None
                with httpx.Client(timeout=60) as client:
                    while answer is None and time.perf_counter() - started < 600:
                        if process.poll() is not None:
                            log.seek(0)
                            raise RuntimeError(f"bot serve exited: {log.read().decode(errors='replace')[-800:]}")
                        try:
                            answer = _ask_over_http(client, base, QUESTIONS[0])
                        except (httpx.HTTPError, ValueError, KeyError):
                            answer = None
                        if answer is None:
                            time.sleep(0.05)
                elapsed = time.perf_counter() - started
            finally:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if answer is None:
            raise RuntimeError("bot serve did not answer within 600 s")
        if run:
            times.append(elapsed)
    median = statistics.median(times)
    say(f"bot serve until it answers its first /ask request ({what}, index built): {median:.2f} s median of "
        f"{runs} (runs: {', '.join(f'{t:.2f}' for t in times)}, after one warm-up run)")
    key = "serve_first_answer_s" if what == "the seeds" else f"serve_first_answer_s_{what}"
    return {key: median}


# -- at scale -----------------------------------------------------------------------

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


def _scale_corpus(config: Config, embedder: Embedder, sentences: list[str], size: int, folder: Path):
    """Seeds of about ``size`` chunks: the shipped seeds plus synthetic files of recycled sentences.

    Returns (config, chunks, vectors, context_vectors, files). The shipped
    seeds' chunks get their real vectors, the rest synthetic ones. The
    synthetic files are written to disk, so the index is up to date with its
    seeds and ``bot serve`` / ``bot ask`` use it as it is.
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
        texts_of_file = []
        for _ in range(count):
            texts_of_file.append(_recycled_sentence(rng, sentences, serial))
            serial += 1
        name = f"synthetic/part-{number:05d}.txt"
        text, position, first = [], 0, len(chunks)
        for p in range(0, count, SENTENCES_PER_PARAGRAPH):
            paragraph = texts_of_file[p : p + SENTENCES_PER_PARAGRAPH]
            if p:
                text.append("\n\n")
                position += 2
            for i, sentence in enumerate(paragraph):
                if i:
                    text.append(" ")
                    position += 1
                before = " ".join(paragraph[max(0, i - config.window) : i])
                after = " ".join(paragraph[i + 1 : i + 1 + config.window])
                chunks.append(Chunk(name, position, position + len(sentence), sentence, before, after))
                text.append(sentence)
                position += len(sentence)
        data = ("".join(text) + "\n").encode("utf-8")
        (seeds / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "first": first, "count": len(chunks) - first}
        number += 1
    dimension = embedder.dimension
    vectors = synthetic_vectors(len(chunks), dimension, seed=1)
    # A window's vector leans towards its sentence's.
    context_vectors = vectors + synthetic_vectors(len(chunks), dimension, seed=2)
    context_vectors /= np.linalg.norm(context_vectors, axis=1, keepdims=True)
    if real:
        vectors[:real], context_vectors[:real] = embedded[:real], embedded[real:]
    return settings, chunks, vectors, context_vectors, files


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
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

    truth = _exact_top(exact_vectors, queries, 10)
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


#: Loads a bot over an index in a fresh process, answers every question, and
#: prints its timings and memory (VmHWM is the peak RSS; RssFile the part that
#: is file-backed, i.e. memory-mapped index files and libraries, shareable).
_SERVE_PROBE = """
import json, sys, time
started = time.perf_counter()
from bot import Bot, Config
seeds, index, model, questions = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
bot = Bot(Config(seeds_dir=seeds, index_dir=index, model=model))
report = bot.ensure_index()
loaded = time.perf_counter()
bot.answer(questions[0])
first = time.perf_counter()
for question in questions:
    bot.answer(question)
status = {line.split(":")[0]: int(line.split()[1]) for line in open("/proc/self/status")
          if line.startswith(("VmHWM", "VmRSS", "RssAnon", "RssFile"))}
generation, files, name = str(bot.retriever.index.path), {}, None
for line in open("/proc/self/smaps"):
    head = line.split()
    if len(head) >= 6 and "-" in head[0] and not line.startswith(("Rss", "Pss")):
        name = head[5].rsplit("/", 1)[-1] if head[5].startswith(generation) else None
    elif name and line.startswith("Rss:"):
        files[name] = files.get(name, 0) + int(head[1])
print("bench-probe " + json.dumps({"load_s": loaded - started, "first_answer_s": first - started,
      "rebuilt": report is not None, "chunks": len(bot.retriever.index), "index_files_kib": files,
      "mapped": bot.retriever.index.mapped, **status}))
"""


def _serving_process(settings: Config, say, label: str) -> dict:
    command = [sys.executable, "-c", _SERVE_PROBE, str(settings.seeds_dir), str(settings.index_dir), settings.model,
               json.dumps(list(QUESTIONS))]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    lines = [line for line in result.stdout.splitlines() if line.startswith("bench-probe ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"serving probe failed: {result.stderr.strip()[-800:]}")
    probe = json.loads(lines[-1][len("bench-probe "):])
    if probe["rebuilt"]:
        raise RuntimeError("the serving probe rebuilt the index instead of loading it")
    resident = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in sorted(probe["index_files_kib"].items()))
    say(f"serving process at {label}: peak RSS {probe['VmHWM'] / 1024:.0f} MiB (after {len(QUESTIONS) + 1} answers: "
        f"RSS {probe['VmRSS'] / 1024:.0f} MiB = anonymous {probe['RssAnon'] / 1024:.0f} + file-backed "
        f"{probe['RssFile'] / 1024:.0f}; memory-mapped index files resident: {resident or 'none'} MiB); "
        f"loads in {probe['load_s']:.2f} s, first answer at {probe['first_answer_s']:.2f} s "
        f"(fresh process, imports and model included)")
    return probe


def _label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _at_scale(config: Config, embedder: Embedder, sentences: list[str], size: int, folder: Path, say) -> dict:
    from .core import Bot
    from .index import APPROXIMATE_INDEX, EXACT_INDEX, _faiss_index, settings_of, write_generation

    label = _label(size)
    started = time.perf_counter()
    settings, chunks, vectors, context_vectors, files = _scale_corpus(config, embedder, sentences, size, folder)
    prepared = time.perf_counter() - started
    manifest = {**settings_of(settings), "dimension": vectors.shape[1], "files": files, "built_at": time.time()}
    started = time.perf_counter()
    generation = write_generation(settings.index_dir, manifest, chunks, vectors, context_vectors, settings)
    written = time.perf_counter() - started
    kind = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))["index"]["type"]
    sizes = {p.name: p.stat().st_size for p in generation.iterdir()}
    vector_bytes = sizes["index.faiss"] + sizes["vectors.npy"] + sizes["context.npy"]
    say(f"index at {label} ({len(chunks)} chunks in {len(files)} files; vectors synthetic but for the "
        f"{files_real(files)} real chunks): {kind}, written in {written:.1f} s (chunks, vectors, FAISS, BM25, "
        f"checksums; corpus made in {prepared:.1f} s); files: index.faiss {sizes['index.faiss'] / 2**20:.0f} MiB, "
        f"vectors.npy + context.npy {(sizes['vectors.npy'] + sizes['context.npy']) / 2**20:.0f} MiB, "
        f"lexical.bin {sizes['lexical.bin'] / 2**20:.0f} MiB, chunks {sizes['chunks.jsonl'] / 2**20:.0f} MiB")
    figures = {f"index_type_{label}": kind, f"write_s_{label}": written,
               f"vector_file_mib_{label}": vector_bytes / 2**20}
    del chunks

    # recall@10 of the approximate index against exact search
    # The questions are drawn like the corpus vectors: the real questions are
    # far from every synthetic vector, where exact ranks are near-ties.
    queries = synthetic_vectors(RECALL_QUERIES, vectors.shape[1], seed=3)
    bot = Bot(settings, embedder=embedder)
    if bot.ensure_index() is not None:
        raise RuntimeError("the scale index was rebuilt instead of loaded")
    index = bot.retriever.index
    if kind == APPROXIMATE_INDEX:
        approximate, stored, what = index.faiss_index, index.vectors, "the index"
    else:
        started = time.perf_counter()
        approximate = _faiss_index(vectors, APPROXIMATE_INDEX)
        built = time.perf_counter() - started
        stored = vectors.astype(np.float16)
        what = (f"an {APPROXIMATE_INDEX} index over the same vectors (built in {built:.1f} s; "
                f"this size uses {EXACT_INDEX})")
    raw, rescored, search_ms = _recall(settings, approximate, stored, vectors, queries)
    say(f"recall@10 vs exact at {label}, {what}: {raw:.3f} ({rescored:.3f} after re-scoring the "
        f"{settings.candidates} candidates with the stored vectors, as the retriever does) on {RECALL_QUERIES} "
        f"questions drawn like the vectors; search {search_ms:.2f} ms median "
        f"(efSearch {max(settings.hnsw_ef_search, settings.candidates)})")
    figures.update({f"recall_at_10_{label}": raw, f"recall_at_10_rescored_{label}": rescored})
    del approximate, stored, vectors, context_vectors

    # answer latency, one question at a time after a warm-up
    p50, p95, times = _latencies(bot)
    say(f"answer latency at {label} ({len(index)} chunks, {kind}): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"({len(times)} answers, one at a time, after {WARM_UP} warm-up)")
    figures.update({f"latency_p50_ms_{label}": float(p50), f"latency_p95_ms_{label}": float(p95)})
    del bot, index

    probe = _serving_process(settings, say, label)
    figures.update({f"peak_rss_mib_{label}": probe["VmHWM"] / 1024, f"load_s_{label}": probe["load_s"]})
    figures.update(_serve_start(settings.seeds_dir, settings.index_dir, settings, say, label, 1))
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def files_real(files: dict) -> int:
    return sum(entry["count"] for name, entry in files.items() if not name.startswith("synthetic/"))
