"""Mend misspelt seed words in a question: "Where is Sezm from?" -> "Where is Sezim from?".

A word the seeds do not use becomes the one seed word a single edit away,
unless it is an English word in its own right. The English word list
(pyspellchecker's) loads on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from typing import TYPE_CHECKING

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
# A word, with what follows an apostrophe in it ("Sezim's", "wasn't").
_LETTER_RUN = re.compile(r"([^\W\d_]+)((?:['’][^\W\d_]+)*)")
_POSSESSIVE = re.compile(r"['’]s", re.I)
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz")


def load_english_words() -> StringTable:
    """pyspellchecker's English word list (about 160k words) as a compact sorted table."""
    from spellchecker import SpellChecker

    from .index import StringTable

    words = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return StringTable(*StringTable.arrays(w for w in words if len(w) >= MIN_TYPO_LETTERS))


def correct_typos(question: str, seed_words: Container[str], is_english: Callable[[str], bool]) -> str:
    """Mend misspelt seed words: "Where is Sezm from?" -> "Where is Sezim from?".

    A word of MIN_TYPO_LETTERS to MAX_TYPO_LETTERS letters that the seeds do not use
    becomes the one seed word that is a single edit away (a letter left
    out, added, changed or two swapped, the first letter kept), unless it is
    an English word in its own right: "love" must not become "live". Names
    and words the seeds never use are left alone, so a question about
    something else still reads as one.
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
            near = {w for w in one_edit(lower) if w[0] == lower[0] and w in seed_words}
            looked_at[lower] = near.pop() if len(near) == 1 else None
        fixed = looked_at[lower]
        if fixed is None:
            return match.group(0)
        return (fixed[0].upper() + fixed[1:] if word[0].isupper() else fixed) + suffix

    return _LETTER_RUN.sub(mend, question)


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
