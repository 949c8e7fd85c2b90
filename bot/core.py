"""The :class:`Bot`: one artist's seeds, index, persona and answers, together."""

from __future__ import annotations

import logging
import threading

from .answer import Answer, compose, small_talk
from .artist import pronoun_of, subject_of
from .config import Config
from .embed import Embedder
from .index import (
    BuildInProgress,
    BuildReport,
    IndexUnavailable,
    LoadedIndex,
    load_index,
    settings_of,
    stale_files,
    update_index,
)
from .ingest import seeds_of
from .judge import Judgement, RefusalModel, judge
from .language import foreign_language
from .persona import Persona, load_persona
from .query import Artist, Query, build_query, clean_question, is_arithmetic, words
from .retrieve import Passage, Retriever
from .spelling import EnglishWords, correct_typos, load_english_words

log = logging.getLogger(__name__)


class Bot:
    """A grounded Q&A bot over the seeds named in its :class:`Config`.

    The embedding model and the index load on first use. ``update()`` can run
    in a background thread while other threads answer: the new index is
    swapped in with one assignment, so every question is answered from
    either the old or the new index.
    """

    def __init__(self, config: Config | None = None, embedder: Embedder | None = None):
        self.config = config or Config()
        self.embedder = embedder or Embedder(self.config)
        self._persona: Persona = load_persona(self.config.persona_path)
        self.refusal_model = RefusalModel.bundled()
        self._retriever: Retriever | None = None
        self._english_words: EnglishWords | None = None
        self._artist: tuple[Retriever, Artist | None] | None = None
        self._update_lock = threading.Lock()

    @property
    def persona(self) -> Persona:
        """The bot's name and voice, from ``seeds/persona.toml``."""
        return self._persona

    @persona.setter
    def persona(self, persona: Persona) -> None:
        # A new persona may name another artist: who "she" is is worked out again.
        self._persona = persona
        retriever = self._retriever
        if retriever is not None:
            self._artist = (retriever, self._artist_of(retriever))

    # -- the index -------------------------------------------------------

    def update(self, progress: bool = False, wait: bool = True, retry_failed: bool = True) -> BuildReport:
        """Bring the index up to date with the seeds and start using it.

        ``wait=False``: raise ``BuildInProgress`` rather than wait while another process builds.
        ``retry_failed=False``: re-raise at once a full disk that failed the same build before.
        """
        with self._update_lock:
            report = update_index(self.config, self.embedder, progress=progress, wait=wait, retry_failed=retry_failed)
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
        if not stale_files(index, seeds_of(self.config)):
            self._use(index)
            return None
        try:
            # A build of these seeds that ran out of disk space is not redone at every question.
            return self.update(progress, wait=False, retry_failed=False)
        except BuildInProgress:
            log.warning("Another process is updating the index; answering from the current one meanwhile.")
            self._use(index)
            return None
        except OSError as error:
            log.warning("The seeds changed but the index cannot be updated (%s); answering from the old one.", error)
            self._use(index)
            return None

    def _use(self, index: LoadedIndex) -> None:
        retriever = Retriever(index, self.embedder, self.config)
        # Who "she" is comes from the documents (up to a few thousand of them read): worked out
        # here, as the index is taken up, rather than on the next fan's question.
        self._artist = (retriever, self._artist_of(retriever))
        self._retriever = retriever

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
        return self._query(clean_question(question), history, self.retriever)

    def _query(self, cleaned: str, history: list[dict] | None, retriever: Retriever) -> Query:
        """The :class:`Query` for a question already read by :func:`clean_question`."""
        known = retriever.words

        def spell(text: str) -> str:
            return correct_typos(text, known, self._is_english, self._english_count)

        return build_query(cleaned, history, spell=spell, artist=self._artist_in(retriever))

    def _artist_in(self, retriever: Retriever) -> Artist | None:
        """Who "she" (or "he") is in the documents of ``retriever`` (see ``_artist_of``)."""
        cached = self._artist
        if cached is not None and cached[0] is retriever:
            return cached[1]
        return self._artist_of(retriever)  # an index swapped in mid-question: rare, not worth keeping

    def _artist_of(self, retriever: Retriever) -> Artist | None:
        """Who "she" (or "he") is: the persona's artist, else the person the seeds are about.

        The artist is called by the word of their name the seeds use most.
        None when the persona names someone the seeds never name (reading
        "she" as a stranger would only mislead the search), or when no one
        person is what the seeds are about (a band is "they").
        """
        if self.persona.artist_name != Persona.artist_name:
            name, pronoun = self.persona.artist_name, None
        else:
            subject = subject_of(chunk.text for chunk in retriever.index.chunks)
            name, pronoun = (subject.name, subject.pronoun) if subject is not None else ("", None)
            if subject is not None:
                # Said once per index, so a team whose documents mislead it knows to set artist_name.
                log.info(
                    'No artist_name in %s: reading "%s" as %s, whom the documents are about.',
                    self.config.persona_path.name, subject.pronoun, subject.name,
                )
        name_words = [w for w in dict.fromkeys(name.split()) if words(w)]
        artist = None
        if name_words and all(w in retriever.words for n in name_words for w in words(n)):
            lexical = retriever.index.lexical
            called = max(name_words, key=lambda w: sum(lexical.document_frequency(t) for t in retriever.terms(w)))
            if pronoun is None:
                pronoun = pronoun_of(chunk.text for chunk in retriever.index.chunks) or "she"
            artist = Artist(
                called=called, name_words=frozenset(w for n in name_words for w in words(n)), pronoun=pronoun
            )
        return artist

    def judge(self, question: str, history: list[dict] | None = None) -> Judgement:
        """Rank the sentences for a question and judge whether they answer it (see :func:`bot.judge.judge`)."""
        retriever = self.retriever
        return judge(self._query(clean_question(question), history, retriever), retriever, self.refusal_model)

    def _english(self) -> EnglishWords:
        """The English word list, loaded on first use."""
        if self._english_words is None:
            self._english_words = load_english_words()
        return self._english_words

    def _is_english(self, word: str) -> bool:
        """Whether ``word`` (lower case) is an English word."""
        return word in self._english()

    def _english_count(self, word: str) -> int:
        """How common the English word ``word`` (lower case) is; 0 for no English word."""
        return self._english().count(word)

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

        retriever = self.retriever  # one index for the whole answer, even if update() swaps in another meanwhile
        language = foreign_language(text, self._is_english, retriever.words, persona.languages)
        if language is not None:
            # Not a refusal: the documents may well say, but the bot reads English only.
            return Answer(text=persona.language_line(language), refused=True, kind="other_language")
        if is_arithmetic(text):
            # A sum shares digits, and words like "times", with any documents full of dates.
            return Answer(text=persona.refusal_text(), refused=True, kind="refusal", confidence=0.0)
        judgement = judge(self._query(text, history, retriever), retriever, self.refusal_model)
        if not judgement.answerable:
            return Answer(text=persona.refusal_text(), refused=True, kind="refusal", confidence=judgement.confidence)
        best = [retriever.passage(c) for c in judgement.ranked[:2]]
        passages = compose(best, self.config.answer_max_words, self.config.second_sentence_margin)
        return Answer(
            text=" ".join(p.text for p in passages),
            refused=False,
            citations=passages,
            kind="answer",
            confidence=judgement.confidence,
        )
