"""Other forms of an English word, irregular ones included: "grew" meets "growing", "taught" meets "teach".

A stemmer joins regular forms ("songs", "song") but not irregular ones
("grew", "grow"; "taught", "teach"; "sang", "sing"), and fans rarely use the
form the documents use. lemminflect (MIT licence; its tables ship inside the
package) gives a word's lemmas and every inflection of each.
"""

from __future__ import annotations

from functools import lru_cache


def load_word_forms() -> None:
    """Load lemminflect's tables now (under a second, once per process) rather than on the first question."""
    other_forms("grew")


@lru_cache(maxsize=8192)
def other_forms(word: str) -> frozenset[str]:
    """Every form of ``word``'s lemmas except ``word`` itself: "grew" -> {"grow", "grows", "growing", "grown"}.

    Lower case; empty for a word lemminflect does not know (a name, a typo).
    """
    from lemminflect import getAllInflections, getAllLemmas

    word = word.lower()
    forms = set()
    for pos, lemmas in getAllLemmas(word).items():
        for lemma in lemmas:
            forms.add(lemma)
            for inflected in getAllInflections(lemma, upos=pos).values():
                forms.update(inflected)
    forms.discard(word)
    return frozenset(f.lower() for f in forms if f.isalpha())
