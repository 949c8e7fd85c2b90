"""The model as sentence-transformers (torch) runs it: the reference for every other way."""

from __future__ import annotations

import logging

from ..config import prepare_libraries
from . import resolve_model

log = logging.getLogger(__name__)


def load_sentence_transformer(name: str, device: str | None = None):
    """Model ``name`` as a ``SentenceTransformer``, from local files only.

    ``device`` None lets sentence-transformers pick (the GPU when there is one).
    """
    prepare_libraries()  # offline, quiet: before transformers is imported
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


def dimension_of(model) -> int:
    """Length of a ``SentenceTransformer``'s vectors (newer versions renamed the method)."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())
