"""Words related in meaning to a fan's word: "famous" -> "celebrated", "grandma" -> "grandmother".

Fans ask in their own words; when a word of theirs occurs nowhere in the
documents, the documents may still say the same thing in another
("countryside" for "rural"). The table comes from WordNet 3.0 (Princeton
University; WordNet licence, see README), exported by
:mod:`bot.lexicon.wordnet_export` and shipped with the package, so nothing
needs installing or fetching at run time.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _table() -> dict[str, str]:
    with resources.files(__name__).joinpath("related-words.tsv.gz").open("rb") as raw:
        lines = gzip.decompress(raw.read()).decode("utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def load_related_words() -> None:
    """Read the table now (a tenth of a second, once per process) rather than on a fan's question."""
    _table()


@lru_cache(maxsize=8192)
def related_words(word: str) -> frozenset[str]:
    """The single words WordNet relates to ``word`` (lower case): synonyms, similar words, the broader term."""
    row = _table().get(word.lower())
    return frozenset(row.split()) if row else frozenset()
