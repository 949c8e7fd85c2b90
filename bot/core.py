"""The :class:`Bot`: one artist's seeds, index, persona and answers, together."""

from __future__ import annotations

import logging
import threading

from .answer import Answer, RefusalModel, compose, refusal_features, small_talk
from .config import Config
from .embed import Embedder
from .index import (
    BuildInProgress,
    BuildReport,
    IndexUnavailable,
    LoadedIndex,
    StringTable,
    load_index,
    settings_of,
    stale_files,
    update_index,
)
from .ingest import load_seeds
from .persona import Persona, load_persona
from .query import MIN_TYPO_LETTERS, Query, build_query, clean_question, correct_typos
from .retrieve import Passage, Retriever

log = logging.getLogger(__name__)


def load_english_words() -> StringTable:
    """pyspellchecker's English word list (about 160k words) as a compact sorted table (~3 MB)."""
    from spellchecker import SpellChecker

    words = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return StringTable(*StringTable.arrays(w for w in words if len(w) >= MIN_TYPO_LETTERS))


class Bot:
    """A grounded Q&A bot over the seeds named in its :class:`Config`.

    The embedding model and the index load on first use. ``update()`` can run
    in a background thread while other threads answer: the new index is
    swapped in with one assignment, so every question is answered from
    either the old or the new index.
    """

    def __init__(self, config: Config | None = None, embedder: Embedder | None = None):
        self.config = config or Config()
        self.embedder = embedder or Embedder(self.config.model)
        self.persona: Persona = load_persona(self.config.persona_path)
        self.refusal_model = RefusalModel.bundled()
        self._retriever: Retriever | None = None
        self._english_words: StringTable | None = None
        self._update_lock = threading.Lock()

    # -- the index -------------------------------------------------------

    def update(self, progress: bool = False, wait: bool = True) -> BuildReport:
        """Bring the index up to date with the seeds and start using it.

        ``wait=False``: raise ``BuildInProgress`` rather than wait while another process builds.
        """
        with self._update_lock:
            report = update_index(self.config, self.embedder, progress=progress, wait=wait)
            if report.changed_anything or self._retriever is None:
                self._use(load_index(self.config.index_dir, settings_of(self.config)))
            return report

    def ensure_index(self, progress: bool = False) -> BuildReport | None:
        """Load the index, first building or updating it if it is missing, damaged or stale.

        Returns the build report when a build was needed, else None. When the
        index is stale but cannot be rewritten (a read-only folder), the bot
        keeps answering from the index it has and logs why.
        """
        try:
            index = load_index(self.config.index_dir, settings_of(self.config))
        except IndexUnavailable:
            return self.update(progress)  # update_index logs why, once
        if not stale_files(index, load_seeds(self.config.seeds_dir, self.config.max_seed_bytes)):
            self._use(index)
            return None
        try:
            return self.update(progress, wait=False)
        except BuildInProgress:
            log.warning("Another process is updating the index; answering from the current one meanwhile.")
            self._use(index)
            return None
        except OSError as error:
            log.warning("The seeds changed but the index cannot be updated (%s); answering from the old one.", error)
            self._use(index)
            return None

    def _use(self, index: LoadedIndex) -> None:
        self._retriever = Retriever(index, self.embedder, self.config)

    def use_index(self, index: LoadedIndex) -> None:
        """Answer from ``index`` from now on (one another process built: see ``SeedWatcher.follow_current``)."""
        self._use(index)

    @property
    def loaded_index(self) -> LoadedIndex | None:
        """The index currently answering, or None before the first load (never triggers one)."""
        retriever = self._retriever
        return retriever.index if retriever is not None else None

    @property
    def retriever(self) -> Retriever:
        """The retriever over the current index (loading it on first use)."""
        if self._retriever is None:
            self.ensure_index()
        return self._retriever

    # -- questions -------------------------------------------------------

    def retrieve(self, question: str, k: int = 5, history: list[dict] | None = None) -> list[Passage]:
        """The ``k`` seed sentences that best match ``question``, best first."""
        if len(question) > self.config.max_question_chars:
            question = question[: self.config.max_question_chars]
        return self.retriever.passages(self.read(question, history), k)

    def read(self, question: str, history: list[dict] | None = None) -> Query:
        """The question as the bot searches for it: a :class:`Query`, misspelt seed words mended."""
        words = self.retriever.words
        return build_query(question, history, spell=lambda text: correct_typos(text, words, self._is_english))

    def _is_english(self, word: str) -> bool:
        """Whether ``word`` (lower case) is an English word; the word list loads on first use."""
        if self._english_words is None:
            self._english_words = load_english_words()
        return word in self._english_words

    def answer(self, question: str, history: list[dict] | None = None) -> Answer:
        """Answer a fan's question from the seeds, or refuse in the persona's voice.

        ``history`` is the chat so far as ``{"role", "content"}`` messages,
        oldest first; it lets a follow-up like "Was it successful?" find what
        "it" is. The same inputs always give the same answer.
        """
        persona = self.persona
        if not isinstance(question, str):
            question = "" if question is None else str(question)
        if len(question) > self.config.max_question_chars:
            text = persona.say(persona.too_long, limit=self.config.max_question_chars)
            return Answer(text=text, refused=True, kind="invalid")
        text = clean_question(question)
        if not any(ch.isalnum() for ch in text):
            return Answer(text=persona.say(persona.empty_question), refused=True, kind="invalid")
        reply = small_talk(text, persona)
        if reply is not None:
            return reply

        retriever = self.retriever
        query = self.read(question, history)
        ranked = retriever.candidates(query)
        if not ranked:
            return Answer(text=persona.refusal_text(), refused=True, kind="refusal", confidence=0.0)
        confidence = self.refusal_model.probability(refusal_features(query, ranked, retriever))
        if confidence < self.refusal_model.threshold:
            return Answer(text=persona.refusal_text(), refused=True, kind="refusal", confidence=confidence)
        passages = compose(ranked, retriever, self.config.answer_max_words)
        return Answer(
            text=" ".join(p.text for p in passages),
            refused=False,
            citations=passages,
            kind="answer",
            confidence=confidence,
        )
