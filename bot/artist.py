"""Who the documents are about, when the persona does not say.

A team that has not written ``persona.toml`` yet (or a folder of someone
else's documents) still gets fans' "she" and "he" read as the artist: a
biography names its subject more often than anyone else, and refers to
them with one pronoun.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# A run of up to three capitalised words: "Sezim Baktybekova", "Frédéric Chopin".
_NAME_RUN = re.compile(r"\b[A-Z][\w’'-]*(?:[ \t]+[A-Z][\w’'-]*){0,2}")
_POSSESSIVE = re.compile(r"['’]s$")
_LOWER_WORD = re.compile(r"\b[a-z][\w’'-]*")
_PRONOUNS = {
    "she": re.compile(r"\b(she|her|hers|herself)\b", re.I),
    "he": re.compile(r"\b(he|him|his|himself)\b", re.I),
}
#: Capitalised words that start sentences and name nobody.
_NOT_NAMES = frozenset(
    "the a an as but and or in on at of for to from by with when while after before during this that these those "
    "it its he she his her they their we our you your i my there then yet despite although though however so if "
    "what who where why how which".split()
) | frozenset(
    # Dates name no one, and a tour factsheet is full of them.
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun".split()
)

#: Texts read at most: a subject named on every page shows up in the first few thousand sentences.
MAX_TEXTS = 5000
#: The share of texts that must name the subject. A biography names its subject in about every
#: other sentence; an article about a game names its hero, and a band's press folder its singer,
#: in under a third: there no one person is what the documents are about.
MIN_SHARE = 0.35
#: How much more often the subject's pronoun must occur than the other one (at least 3 times).
PRONOUN_LEAD = 2.0


@dataclass(frozen=True)
class Subject:
    """The person the documents are about."""

    #: Their name as the documents write it most ("Sezim Baktybekova").
    name: str
    #: "she" or "he".
    pronoun: str


def subject_of(texts: Iterable[str]) -> Subject | None:
    """The person most of ``texts`` are about, or None when no one person is.

    The subject is the capitalised word named in the most texts (and seldom
    written in lower case, so "Steppe" in "the steppe" is no name), at least
    in :data:`MIN_SHARE` of them; their pronoun is the one that clearly
    outnumbers the other. A band ("they"), or documents that speak of "he"
    and "she" alike, give None.
    """
    named: Counter[str] = Counter()
    runs: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    sample = []
    for number, text in enumerate(texts):
        if number >= MAX_TEXTS:
            break
        sample.append(text)
        lower.update(w.lower() for w in _LOWER_WORD.findall(text))
        found = [_name_words(run) for run in _NAME_RUN.findall(text)]
        runs.update(" ".join(run) for run in found if run)
        named.update(dict.fromkeys((w for run in found for w in run), 1))  # in order: ties go to the first named
    if not sample:
        return None
    names = [w for w, count in named.most_common() if lower[w.lower()] * 10 < count]
    if not names or named[names[0]] < MIN_SHARE * len(sample):
        return None
    called = names[0]
    pronoun = pronoun_of(sample)
    if pronoun is None:
        return None
    # The longest form of the name the documents use more than once: "Sezim Baktybekova", not "Sezim".
    forms = [run for run in runs if called in run.split() and (runs[run] > 1 or run == called)]
    return Subject(name=max(forms, key=lambda run: (len(run.split()), runs[run])), pronoun=pronoun)


def _name_words(run: str) -> list[str]:
    """The words of a capitalised run that can be a name: "As Sezim's" -> ["Sezim"]."""
    return [_POSSESSIVE.sub("", w) for w in run.split() if w.lower() not in _NOT_NAMES]


def pronoun_of(texts: Iterable[str]) -> str | None:
    """"she" or "he", whichever clearly outnumbers the other in ``texts``; else None."""
    counts = dict.fromkeys(_PRONOUNS, 0)
    for number, text in enumerate(texts):
        if number >= MAX_TEXTS:
            break
        for pronoun, pattern in _PRONOUNS.items():
            counts[pronoun] += len(pattern.findall(text))
    she, he = counts["she"], counts["he"]
    if she >= 3 and she >= PRONOUN_LEAD * he:
        return "she"
    if he >= 3 and he >= PRONOUN_LEAD * she:
        return "he"
    return None
