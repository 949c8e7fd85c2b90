"""Find the sentences of the seeds that best answer a question.

Four signals are fused for each candidate sentence: the cosine of the
question with the sentence and with the sentence's window (dense, FAISS), and
BM25 over the sentence and over its window (lexical). Each signal is scaled
by its spread over the corpus for this question, so that no signal wins just
because its numbers are bigger, then the signals are added with the weights
in :class:`bot.config.Ranking`. A bonus goes to sentences that offer the kind
of answer the question wants (a date for "when", a number for "how many").
"""

from __future__ import annotations

from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from .config import Config
from .embed import Embedder
from .index import LoadedIndex
from .query import Query, build_query, offers, words

#: Rows sampled to estimate the spread of dense scores on a large corpus.
_SPREAD_SAMPLE = 4096


@dataclass(frozen=True)
class Passage:
    """A sentence from the seeds, where it is, and how well it matched."""

    #: The sentence, quoted verbatim (runs of whitespace collapsed).
    text: str
    #: Path of the seed file, relative to the seeds folder.
    source: str
    #: Character offsets of the sentence in that file.
    start: int
    end: int
    #: Fused relevance score; higher is better, comparable within one question.
    score: float
    #: The sentences around it in the same paragraph.
    before: str = ""
    after: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready dict of this passage."""
        return {
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 4),
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class Candidate:
    """A sentence considered for a question, with each signal's raw value."""

    row: int
    dense: float
    context_dense: float
    lexical: float
    context_lexical: float
    offers_wanted: bool | None
    score: float


class Retriever:
    """Hybrid dense + BM25 search over one loaded index."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, config: Config):
        self.index = index
        self.embedder = embedder
        self.config = config
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = self._bm25_over([chunk.text for chunk in index.chunks])
        self._context_bm25 = self._bm25_over([chunk.context for chunk in index.chunks])
        sample = np.random.default_rng(0).choice(len(index), size=min(len(index), _SPREAD_SAMPLE), replace=False)
        self._sample = np.sort(sample)
        self.vocabulary = {w for chunk in index.chunks for w in words(chunk.text)}

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        return bm25s.tokenize(texts, stopwords="en", stemmer=self._stemmer, return_ids=False, show_progress=False)

    def _bm25_over(self, texts: list[str]) -> bm25s.BM25:
        model = bm25s.BM25()
        model.index(self._tokens(texts), show_progress=False)
        return model

    def candidates(self, query: Query) -> list[Candidate]:
        """Score the likeliest sentences for ``query``, best first."""
        ranking = self.config.ranking
        vector = self.embedder.encode([query.search_text])[0]
        n = min(self.config.candidates, len(self.index))
        _, dense_rows = self.index.faiss_index.search(vector[None, :], n)
        tokens = self._tokens([query.search_text])[0]
        lexical = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32) if tokens else np.zeros(len(self.index))
        context_lexical = (
            np.asarray(self._context_bm25.get_scores(tokens), dtype=np.float32) if tokens else np.zeros(len(self.index))
        )
        lexical_rows = np.argsort(-lexical, kind="stable")[:n]
        rows = np.unique(np.concatenate([dense_rows[0][dense_rows[0] >= 0], lexical_rows]))

        dense = self.index.vectors[rows] @ vector
        context_dense = self.index.context_vectors[rows] @ vector
        spread_dense = _spread(self.index.vectors[self._sample] @ vector)
        spread_context = _spread(self.index.context_vectors[self._sample] @ vector)
        spread_lexical, spread_context_lexical = _spread(lexical), _spread(context_lexical)
        question_words = words(query.question)

        found = []
        for i, row in enumerate(rows):
            fits = offers(self.index.chunks[row].text, query.wants, question_words)
            score = (
                ranking.dense * dense[i] / spread_dense
                + ranking.context_dense * context_dense[i] / spread_context
                + ranking.lexical * lexical[row] / spread_lexical
                + ranking.context_lexical * context_lexical[row] / spread_context_lexical
                + (0.0 if fits is None else ranking.answer_type * (1 if fits else -1))
            )
            found.append(
                Candidate(
                    row=int(row),
                    dense=float(dense[i]),
                    context_dense=float(context_dense[i]),
                    lexical=float(lexical[row]),
                    context_lexical=float(context_lexical[row]),
                    offers_wanted=fits,
                    score=float(score),
                )
            )
        found.sort(key=lambda c: (-c.score, c.row))
        return found

    def passage(self, candidate: Candidate) -> Passage:
        """The :class:`Passage` for a candidate."""
        chunk = self.index.chunks[candidate.row]
        return Passage(
            text=chunk.text,
            source=chunk.source,
            start=chunk.start,
            end=chunk.end,
            score=candidate.score,
            before=chunk.before,
            after=chunk.after,
        )

    def retrieve(self, question: str, k: int = 5, history: list[dict] | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first."""
        query = build_query(question, history)
        if not query.question:
            return []
        return [self.passage(c) for c in self.candidates(query)[:k]]


def _spread(scores: np.ndarray) -> float:
    """Standard deviation, floored so that a flat signal cannot blow up."""
    return max(float(np.std(scores)), 1e-3)
