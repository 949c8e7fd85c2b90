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

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import faiss
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from .config import Config
from .embed import Embedder
from .index import APPROXIMATE_INDEX, LoadedIndex, lexical_tokens
from .lexicon import related_words
from .query import QUESTION_STOPWORDS, Query, build_query, clean_question, offers, words
from .wordforms import load_word_forms, other_forms

#: Share of sentences above which a term counts as ubiquitous (see unknown_terms).
_UBIQUITOUS = 0.25
# A word as bm25s's tokenizer splits it.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class Term:
    """One BM25 term of a question, with the stems of its word's other forms."""

    #: The stemmed word ("grew").
    stem: str
    #: Stems of the word's other forms ("grow"), which count for it at less weight.
    forms: frozenset[str] = frozenset()
    #: For a word the seeds never use in any form: stems of the seeds' words related to it in
    #: meaning ("celebr" for "famous"), which count for it at less weight still.
    related: frozenset[str] = frozenset()
    #: Whether the seeds use the word in some form (else it is a word they never use).
    in_seeds: bool = True

    def within(self, stems: set[str]) -> bool:
        """Whether ``stems`` hold this term in any of its forms."""
        return self.stem in stems or not self.forms.isdisjoint(stems)

    def related_within(self, stems: set[str]) -> bool:
        """Whether ``stems`` hold a word related to this term's (see ``related``)."""
        return not self.related.isdisjoint(stems)

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
    #: The PDF page it is on (1-based), None for other formats.
    page: int | None = None
    #: The heading of its section in the document ("" when none).
    section: str = ""

    @property
    def location(self) -> str:
        """Where a person finds it: "tour.pdf, page 2", "biography.md · Early years" or "faq.txt"."""
        if self.page is not None:
            return f"{self.source}, page {self.page}"
        return f"{self.source} · {self.section}" if self.section else self.source

    def to_dict(self) -> dict:
        """A JSON-ready dict of this passage."""
        return {
            "text": self.text,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "section": self.section,
            "location": self.location,
            "score": round(self.score, 4),
            "before": self.before,
            "after": self.after,
        }


@dataclass(frozen=True)
class Signals:
    """One text's raw relevance signals against the whole index."""

    vector: np.ndarray
    #: Rows worth scoring: the dense and the lexical top candidates.
    rows: np.ndarray
    lexical: np.ndarray
    context_lexical: np.ndarray
    spread_dense: float
    spread_context: float
    spread_lexical: float
    spread_context_lexical: float


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
    """Hybrid dense + BM25 search over one loaded index.

    Nothing here is O(corpus) at start-up: the BM25 indexes, vocabulary and
    words come memory-mapped from the generation (``lexical.bin``), and the
    vectors of the rows sampled to estimate the spread of dense scores from
    their own small file.
    """

    def __init__(self, index: LoadedIndex, embedder: Embedder, config: Config):
        self.index = index
        self.embedder = embedder
        self.config = config
        self._stemmer = Stemmer.Stemmer("english")
        self._question_stopwords = set(self._stemmer.stemWords(sorted(QUESTION_STOPWORDS))) | QUESTION_STOPWORDS
        self._lexical = index.lexical
        self._sample = index.sample_rows
        # The sampled rows' vectors (float32 even when stored as float16), kept
        # apart in the generation so that loading reads nothing scattered.
        self._sample_vectors = np.ascontiguousarray(index.sample_vectors, dtype=np.float32)
        self._sample_context = np.ascontiguousarray(index.sample_context_vectors, dtype=np.float32)
        #: Plain lower-case words that occur in the seeds (supports ``in`` and ``a_set - words``).
        self.words = self._lexical.words
        # The last questions' vectors and terms: judging a question asks for them again.
        self._recent: dict[str, np.ndarray] = {}
        self._recent_terms: dict[tuple[str, frozenset[str]], list[Term]] = {}
        self._recent_lock = threading.Lock()
        self._search_params = None
        load_word_forms()  # once per process, so that no fan's question waits for it
        # WordNet's table is read on the first word the seeds never use (``bot serve`` reads it
        # while starting): a one-shot ``bot ask`` whose words the seeds all use never needs it.
        if index.index_type == APPROXIMATE_INDEX:
            self._search_params = faiss.SearchParametersHNSW(efSearch=max(config.hnsw_ef_search, config.candidates))

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        return lexical_tokens(texts, self._stemmer)

    def question_terms(self, text: str, leave_out: frozenset[str] = frozenset()) -> list[Term]:
        """The BM25 terms of a question, without its syntax (QUESTION_STOPWORDS) or the words ``leave_out``.

        Each comes with the stems of its word's other forms (see
        :func:`bot.wordforms.other_forms`), stopwords left out.
        """
        key = (text, leave_out)
        cached = self._recent_terms.get(key)
        if cached is not None:
            return cached
        terms = self._question_terms(text, leave_out)
        with self._recent_lock:
            self._recent_terms[key] = terms
            while len(self._recent_terms) > 16:
                self._recent_terms.pop(next(iter(self._recent_terms)))
        return terms

    def _question_terms(self, text: str, leave_out: frozenset[str]) -> list[Term]:
        ignored = self._question_stopwords | set(self._stemmer.stemWords(sorted(leave_out))) if leave_out else None
        stems = [t for t in self._tokens([text])[0] if t not in (ignored or self._question_stopwords)]
        if not stems:
            return []
        terms: dict[str, Term] = {}
        for word in _TOKEN.findall(text.lower()):
            stem = self._stemmer.stemWord(word)
            if stem in stems and stem not in terms:
                other = [f for f in other_forms(word) if f not in STOPWORDS_EN]
                forms = frozenset(self._stemmer.stemWords(other)) - {stem}
                if any(self._lexical.document_frequency(s) for s in (stem, *forms)):
                    terms[stem] = Term(stem, forms)
                else:
                    terms[stem] = Term(stem, forms, self._related_in_seeds(word, other, stem), in_seeds=False)
        return [terms.get(stem) or Term(stem, in_seeds=bool(self._lexical.document_frequency(stem))) for stem in stems]

    def _related_in_seeds(self, word: str, forms: list[str], stem: str) -> frozenset[str]:
        """Stems of the seeds' words that WordNet relates to ``word`` or its other forms ("taught" via "teach")."""
        found = {r for w in (word, *forms) for r in related_words(w) if r not in STOPWORDS_EN}
        stems = set(self._stemmer.stemWords(sorted(found))) - self._question_stopwords - {stem}
        return frozenset(s for s in stems if self._lexical.document_frequency(s))

    def _vector(self, text: str) -> np.ndarray:
        """The embedding of one question text; the last few are kept, as judging asks again."""
        vector = self._recent.get(text)
        if vector is None:
            vector = self.embedder.encode_question(text)
            vector.flags.writeable = False
            with self._recent_lock:
                self._recent[text] = vector
                while len(self._recent) > 16:
                    self._recent.pop(next(iter(self._recent)))
        return vector

    def signals(self, text: str, leave_out: frozenset[str] = frozenset(), plain: str | None = None) -> Signals:
        """The four raw signals of ``text`` against every sentence, plus dense candidates.

        With ``plain`` (the text with the artist's name read as "she", see
        ``Query.judged``), the dense side reads both: her name ties the
        question to the sentences about her, "she" to the sentences that say
        "she"; fans' questions found their sentence more often by the two together.
        """
        vector = self._vector(text)
        if plain is not None and plain != text:
            weight = self.config.ranking.artist_name
            both = weight * vector + (1.0 - weight) * self._vector(plain)
            vector = both / max(float(np.linalg.norm(both)), 1e-12)
        n = min(self.config.candidates, len(self.index))
        with one_faiss_thread():
            if self._search_params is None:
                _, dense_rows = self.index.faiss_index.search(vector[None, :], n)
            else:
                _, dense_rows = self.index.faiss_index.search(vector[None, :], n, params=self._search_params)
        terms = self.question_terms(text, leave_out)
        if terms:
            stems = [t.stem for t in terms]
            forms = sorted({f for t in terms for f in t.forms} - set(stems))
            related = sorted({r for t in terms for r in t.related} - set(stems) - set(forms))
            ranking = self.config.ranking
            ids = self._lexical.term_ids(stems)
            form_ids = self._lexical.term_ids(forms) if ranking.word_forms else []
            related_ids = self._lexical.term_ids(related) if ranking.related_words else []
            weights = [1.0] * len(ids) + [ranking.word_forms] * len(form_ids)
            weights += [ranking.related_words] * len(related_ids)
            lexical = self._lexical.scores("text", ids + form_ids + related_ids, weights)
            context_lexical = self._lexical.scores("context", ids + form_ids + related_ids, weights)
        else:
            lexical = context_lexical = np.zeros(len(self.index), dtype=np.float32)
        return Signals(
            vector=vector,
            rows=np.concatenate([dense_rows[0][dense_rows[0] >= 0], _top_rows(lexical, n)]),
            lexical=lexical,
            context_lexical=context_lexical,
            spread_dense=_spread(self._sample_vectors @ vector),
            spread_context=_spread(self._sample_context @ vector),
            spread_lexical=_spread(lexical),
            spread_context_lexical=_spread(context_lexical),
        )

    def _fused(self, signals: Signals, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        ranking = self.config.ranking
        dense = self.index.vectors[rows] @ signals.vector
        context_dense = self.index.context_vectors[rows] @ signals.vector
        lexical, context_lexical = signals.lexical[rows], signals.context_lexical[rows]
        fused = (
            ranking.dense * dense / signals.spread_dense
            + ranking.context_dense * context_dense / signals.spread_context
            + ranking.lexical * lexical / signals.spread_lexical
            + ranking.context_lexical * context_lexical / signals.spread_context_lexical
        )
        return fused, dense, context_dense, lexical, context_lexical

    def candidates(self, query: Query) -> list[Candidate]:
        """Score the likeliest sentences for ``query``, best first.

        For a follow-up, the previous question's scores are added at
        ``Ranking.follow_up`` weight, so "it" finds what the chat was about.
        """
        ranking = self.config.ranking
        if query.follow_up_of:
            # A follow-up is tied to its sentences by the question it leans on;
            # her name would pull it towards whichever sentence names her.
            signals = self.signals(query.judged(query.question), query.name_words)
            earlier = self.signals(query.judged(query.follow_up_of), query.name_words)
        else:
            signals, earlier = self.signals(query.question, query.name_words, query.judged(query.question)), None
        rows = np.unique(signals.rows if earlier is None else np.concatenate([signals.rows, earlier.rows]))
        fused, dense, context_dense, lexical, context_lexical = self._fused(signals, rows)
        if earlier is not None:
            fused = fused + ranking.follow_up * self._fused(earlier, rows)[0]
        question_words = words(query.question)
        found = []
        for i, row in enumerate(rows):
            fits = offers(self.index.chunks[row].text, query.wants, question_words)
            bonus = 0.0 if fits is None else ranking.answer_type * (1 if fits else -1)
            found.append(
                Candidate(
                    row=int(row),
                    dense=float(dense[i]),
                    context_dense=float(context_dense[i]),
                    lexical=float(lexical[i]),
                    context_lexical=float(context_lexical[i]),
                    offers_wanted=fits,
                    score=float(fused[i] + bonus),
                )
            )
        found.sort(key=lambda c: (-c.score, c.row))
        return found

    def dense_scores(self, text: str, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Cosines of ``text`` with the given sentences and with their windows."""
        vector = self._vector(text)
        return self.index.vectors[rows] @ vector, self.index.context_vectors[rows] @ vector

    def unknown_terms(self, text: str, leave_out: frozenset[str] = frozenset()) -> tuple[list[Term], list[Term]]:
        """The informative terms of ``text`` that the seeds never use (in any form), and all its informative terms.

        Terms are stemmed, without stopwords; a term found in more than
        ``_UBIQUITOUS`` of the sentences (the artist's name, say) tells
        nothing about whether the seeds cover the question, so it is left out.
        """
        limit = _UBIQUITOUS * len(self.index)
        terms = [t for t in self.question_terms(text, leave_out) if self._lexical.document_frequency(t.stem) <= limit]
        return [t for t in terms if not t.in_seeds], terms

    def terms(self, text: str) -> set[str]:
        """The BM25 terms of ``text``: lower-cased, stopwords out, stemmed."""
        return set(self._tokens([text])[0])

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
            page=chunk.page,
            section=chunk.section,
        )

    def retrieve(self, question: str, k: int = 5, history: list[dict] | None = None) -> list[Passage]:
        """The ``k`` passages that best match ``question``, best first."""
        return self.passages(build_query(clean_question(question), history), k)

    def passages(self, query: Query, k: int = 5) -> list[Passage]:
        """The ``k`` passages that best match ``query``, best first.

        None for a question without a letter or digit ("?!"): it names
        nothing, and ``Bot.answer`` treats it as empty too.
        """
        if not any(ch.isalnum() for ch in query.question):
            return []
        return [self.passage(c) for c in self.candidates(query)[:k]]


@contextmanager
def one_faiss_thread():
    """FAISS on one OpenMP thread inside the block, in the calling thread only.

    One question is one search, and FAISS's threads for it only contend with
    each other and with the model's on a small machine (README: "Speed and
    scale"); fans asking at once are answered in parallel threads anyway. The
    thread's own setting comes back afterwards, so a build it runs later
    (HNSW, above ``Config.exact_index_max_chunks``) keeps its threads.
    """
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """The rows of the ``n`` best of non-negative ``scores`` (BM25).

    The same set as ``argsort(-scores, kind="stable")[:n]``.

    Ties at the cut go to the lowest rows, as with a stable sort, but only a
    partition is needed (a full sort of a million scores takes ~50 ms). Only
    the positive scores are partitioned: a question's terms leave most rows
    at exactly zero, and numpy's partition slows down on masses of equal
    values (18 ms instead of 2 at a million rows).
    """
    if n >= len(scores):
        return np.arange(len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    positive = np.flatnonzero(scores > 0)
    if len(positive) <= n:
        return np.concatenate([positive, np.flatnonzero(scores <= 0)[: n - len(positive)]])
    values = scores[positive]
    cut = float(values[np.argpartition(values, len(values) - n)[len(values) - n :]].min())
    above = np.flatnonzero(scores > cut)
    return np.concatenate([above, np.flatnonzero(scores == cut)[: n - len(above)]])


def _spread(scores: np.ndarray) -> float:
    """Standard deviation, floored so that a flat signal cannot blow up."""
    return max(float(np.std(scores)), 1e-3)
