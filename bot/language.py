"""Tell a question in another language from an English one, and name its language.

The bot answers from English documents, so a question in Russian or Kazakh
gets a line, in the fan's language where the persona has one, saying that it
answers in English; searching would only find a sentence by accident.

The language is named by py3langid (BSD licence), whose model ships inside
the package: nothing is fetched. It loads (a few seconds) on the first
question that looks foreign, so English questions never pay for it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Container, Iterable

_WORD = re.compile(r"[^\W\d_]+")
# A capitalised word after the first: a name.
_NAME = re.compile(r"(?<=[^\W\d_])(\W+)[A-ZÀ-Þ][^\W\d_]*")
#: Fewest letters in which a language can be told at all ("ͺ" is no question in Greek).
_FEWEST_LETTERS = 3
#: Shortest word looked up in the English word list (it holds no shorter ones).
_MIN_LETTERS = 4
#: Least probability at which a language the persona speaks is preferred to
#: the best guess: short questions in related languages (Russian, Serbian,
#: Bulgarian) are told apart poorly, and the persona's language is the likelier.
_PREFERRED = 0.1

#: English at this probability or more is English after all: a question in
#: Latin letters is taken for another language only when clearly one.
_ENGLISH_DOUBT = 0.01
#: ... and its likeliest language at least this likely ("asdf jkl" is none).
_CLEARLY = 0.3

_identifier = None
_lock = threading.Lock()


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def _ranked(text: str) -> list[tuple[str, float]]:
    """Languages of ``text``, likeliest first, with normalised probabilities."""
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return [(code, float(p)) for code, p in _identifier.rank(text)]


def foreign_language(
    question: str, is_english: Callable[[str], bool], seed_words: Container[str], preferred: Iterable[str] = ()
) -> str | None:
    """The language code ("ru", "kk", "es") of a question not in English, else None.

    A question mostly in a non-Latin script is foreign. One in Latin letters
    is foreign only when fewer than half of its longer words are English
    (names from the seeds aside) and the language model agrees: a fan's
    typos ("wher does she get ideas") must not read as another language.
    Of the languages in ``preferred`` (those the persona speaks), a likely
    one is named rather than a close relative.
    """
    letters = [ch for ch in question if ch.isalpha()]
    if len(letters) < _FEWEST_LETTERS:
        return None
    if sum(map(_is_latin, letters)) * 2 >= len(letters):
        # Names say nothing about the language asked in ("Chimamanda Ngozi Adichie").
        text = _NAME.sub(r"\1", question)
        longer = [w.lower() for w in _WORD.findall(text) if len(w) >= _MIN_LETTERS]
        longer = [w for w in longer if w not in seed_words]
        if not longer or sum(map(is_english, longer)) * 2 >= len(longer):
            return None
        ranked = _ranked(text)
        if dict(ranked).get("en", 0.0) >= _ENGLISH_DOUBT or ranked[0][1] < _CLEARLY:
            return None  # English after all, or gibberish that is no language in particular
    else:
        ranked = _ranked(question)
    preferred = set(preferred)
    spoken = [(code, p) for code, p in ranked if code in preferred and p >= _PREFERRED]
    return spoken[0][0] if spoken else ranked[0][0]
