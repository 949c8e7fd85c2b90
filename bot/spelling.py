"""Mend misspelt seed words in a question: "Where is Sezm from?" -> "Where is Sezim from?".

A word the seeds do not use becomes the one seed word a single edit away,
unless it is an English word in its own right; failing that, the English
word a single edit away that is far commoner than any other ("famus" ->
"famous"). The English word list (pyspellchecker's) loads on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the index brings faiss along; mending typos needs neither
    from .index import StringTable

#: Shortest word checked for a typo: below it, one edit reaches too many words.
MIN_TYPO_LETTERS = 4
#: Longest: hardly a word is longer, and the edits of a pasted 1,000-letter
#: "word" would take a second.
MAX_TYPO_LETTERS = 20
#: Unknown words looked at per question; a question has a typo or two, and
#: one made of gibberish must stay cheap.
MAX_TYPO_WORDS = 5
#: A misspelt word the seeds do not use (no seed word is one edit away) becomes
#: the English word one edit away only when that word is this many times as
#: common as the next candidate: "famus" -> "famous", but "conserts" stays
#: (concerts? converts?).
ENGLISH_LEAD = 10
#: ...and only when it is a common word: a name the list has from somewhere
#: ("Selim", "karat") is no likelier meant than the unknown name typed ("Sezim", "Kairat").
ENGLISH_MIN_COUNT = 1000
# A word, with what follows an apostrophe in it ("Sezim's", "wasn't").
_LETTER_RUN = re.compile(r"([^\W\d_]+)((?:['’][^\W\d_]+)*)")
_POSSESSIVE = re.compile(r"['’]s", re.I)
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz")


class EnglishWords:
    """pyspellchecker's English word list (about 160k words), each with its count in the list's corpus.

    Kept as a compact sorted table (see :class:`bot.index.StringTable`) and an
    array of counts in the same order; supports ``in`` and :meth:`count`.
    """

    def __init__(self, table: StringTable, counts: np.ndarray):
        self._table = table
        self._counts = counts

    def __contains__(self, word: object) -> bool:
        return word in self._table

    def __len__(self) -> int:
        return len(self._table)

    def count(self, word: str) -> int:
        """How often ``word`` occurs in the list's corpus; 0 for a word not in the list."""
        position = self._table.position(word)
        return int(self._counts[position]) if position >= 0 else 0


def load_english_words() -> EnglishWords:
    """pyspellchecker's English words of MIN_TYPO_LETTERS letters or more, with their counts."""
    from spellchecker import SpellChecker

    from .index import StringTable
    from .index.files import encode

    frequency = SpellChecker(language="en", distance=1).word_frequency.dictionary
    kept = sorted((w for w in frequency if len(w) >= MIN_TYPO_LETTERS), key=encode)
    counts = np.fromiter((frequency[w] for w in kept), dtype=np.int64, count=len(kept))
    return EnglishWords(StringTable(*StringTable.arrays(kept)), counts)


def correct_typos(
    question: str,
    seed_words: Container[str],
    is_english: Callable[[str], bool],
    english_count: Callable[[str], int] | None = None,
) -> str:
    """Mend misspelt seed words: "Where is Sezm from?" -> "Where is Sezim from?".

    A word of MIN_TYPO_LETTERS to MAX_TYPO_LETTERS letters that the seeds do not use
    becomes the one seed word that is a single edit away (a letter left
    out, added, changed or two swapped, the first letter kept), unless it is
    an English word in its own right: "love" must not become "live". Names
    and words the seeds never use are left alone, so a question about
    something else still reads as one.

    With ``english_count`` (a word's count in an English corpus, 0 for none),
    a misspelt word no seed word is near becomes the English word one edit
    away that is ENGLISH_LEAD times as common as any other ("famus" ->
    "famous"): the seeds may say the same in other words ("celebrated"),
    which the lexicon can then find.
    """

    looked_at: dict[str, str | None] = {}

    def mend(match: re.Match) -> str:
        word, suffix = match.group(1), match.group(2) or ""
        lower = word.lower()
        if (suffix and not _POSSESSIVE.fullmatch(suffix)) or not MIN_TYPO_LETTERS <= len(lower) <= MAX_TYPO_LETTERS:
            return match.group(0)  # a contraction ("wasn't"), or too short or long to be a typo
        if lower in seed_words or is_english(lower):
            return match.group(0)
        if lower not in looked_at:
            if len(looked_at) >= MAX_TYPO_WORDS:
                return match.group(0)
            edits = {w for w in one_edit(lower) if w[0] == lower[0]}
            near = {w for w in edits if w in seed_words}
            if len(near) == 1:
                looked_at[lower] = near.pop()
            elif not near and english_count is not None:
                looked_at[lower] = _clearly_meant(edits, english_count)
            else:
                looked_at[lower] = None
        fixed = looked_at[lower]
        if fixed is None:
            return match.group(0)
        return (fixed[0].upper() + fixed[1:] if word[0].isupper() else fixed) + suffix

    return _LETTER_RUN.sub(mend, question)


def _clearly_meant(candidates: set[str], english_count: Callable[[str], int]) -> str | None:
    """The English word among ``candidates`` far commoner than the rest, if there is one."""
    counted = sorted(((english_count(w), w) for w in candidates), reverse=True)
    counted = [(count, word) for count, word in counted if count > 0]
    if not counted or counted[0][0] < ENGLISH_MIN_COUNT:
        return None
    if len(counted) > 1 and counted[0][0] < ENGLISH_LEAD * counted[1][0]:
        return None
    return counted[0][1]


def one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from ``word``."""
    letters = _ALPHABET | set(word)
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return (
        {a + b[1:] for a, b in splits if b}
        | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        | {a + c + b[1:] for a, b in splits if b for c in letters}
        | {a + c + b for a, b in splits for c in letters}
    ) - {word}
