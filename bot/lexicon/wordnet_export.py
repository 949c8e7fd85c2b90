"""Export WordNet's related words into the table ``bot.lexicon`` ships (a developer's tool).

Run ``python -m bot.lexicon.wordnet_export [WORDNET_DIR]`` with WordNet 3.0's
database files (Debian's ``wordnet-base`` installs them in /usr/share/wordnet)
to regenerate ``related-words.tsv.gz``. The bot itself never needs WordNet
installed: it reads only the exported table.

For each single word, the table lists the single words WordNet relates to it
in any sense: synonyms (the same synset), similar adjectives, and the
broader and narrower terms one step away ("hit" -> "success"). The files' format is
WordNet's own (``wndb(5WN)``): one synset a line, addressed by byte offset.
"""

from __future__ import annotations

import gzip
import sys
from collections import defaultdict
from pathlib import Path

#: Where Debian's ``wordnet-base`` puts the database.
DEFAULT_WORDNET = Path("/usr/share/wordnet")
TABLE = Path(__file__).with_name("related-words.tsv.gz")
#: WordNet's licence asks for its notice on every copy of the database, derived ones included.
NOTICE = Path(__file__).with_name("WORDNET-LICENSE.txt")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
_POINTER_PART = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
#: Pointers followed from a sense: similar adjective ("&"), broader term ("@"), narrower term ("~").
FOLLOWED = frozenset({"&", "@", "~"})
#: Senses read per word and part of speech, commonest first. Every sense: the table is
#: consulted only for a word the seeds never use, and what it finds weighs little.
SENSES = 1000


def _index(wordnet: Path, part: str) -> dict[str, list[int]]:
    """Each word's synset offsets in ``part``, commonest sense first."""
    senses = {}
    for line in (wordnet / f"index.{part}").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue  # the licence header
        fields = line.split()
        pointers = int(fields[3])
        count = int(fields[4 + pointers])
        senses[fields[0]] = [int(offset) for offset in fields[6 + pointers : 6 + pointers + count]]
    return senses


def _synset(data: bytes, offset: int) -> tuple[list[str], list[tuple[str, str, int]]]:
    """A synset's words and its pointers (symbol, part of speech, offset)."""
    fields = data[offset : data.index(b"\n", offset)].decode("latin-1").split()
    count = int(fields[3], 16)
    lemmas = [fields[4 + 2 * i].lower() for i in range(count)]
    at = 4 + 2 * count
    pointers = []
    for i in range(int(fields[at])):
        symbol, target, part = fields[at + 1 + 4 * i : at + 4 + 4 * i]
        pointers.append((symbol, _POINTER_PART[part], int(target)))
    return lemmas, pointers


def related_words(
    wordnet: Path, senses: int = SENSES, followed: frozenset[str] = FOLLOWED
) -> dict[str, set[str]]:
    """Each single word and the single words related to it (see the module's docstring)."""
    data = {part: (wordnet / f"data.{part}").read_bytes() for part in PARTS_OF_SPEECH}
    related: dict[str, set[str]] = defaultdict(set)
    for part in PARTS_OF_SPEECH:
        for word, offsets in _index(wordnet, part).items():
            if not word.isalpha():
                continue
            for offset in offsets[:senses]:
                lemmas, pointers = _synset(data[part], offset)
                related[word].update(lemmas)
                for symbol, target_part, target in pointers:
                    if symbol in followed:
                        related[word].update(_synset(data[target_part], target)[0])
    # Lemmas are written "lemma" or "lemma(a)" (an adjective's position); keep plain single words.
    return {
        word: {w.split("(")[0] for w in words if w.split("(")[0].isalpha()} - {word} for word, words in related.items()
    }


def licence_notice(wordnet: Path) -> str:
    """The licence and copyright notice at the head of WordNet's data files, without line numbers."""
    lines = (wordnet / "data.noun").read_text(encoding="latin-1").splitlines()
    header = [line.split(" ", 3)[-1].rstrip() if line.strip() else "" for line in lines if line.startswith("  ")]
    return "\n".join(header).strip() + "\n"


def export(wordnet: Path = DEFAULT_WORDNET, table: Path = TABLE, **choices) -> int:
    """Write the table (sorted, so that the same WordNet gives the same bytes) and, beside it,
    WordNet's licence notice; returns the table's row count."""
    related = sorted(related_words(wordnet, **choices).items())
    rows = [f"{word}\t{' '.join(sorted(words))}" for word, words in related if words]
    with gzip.GzipFile(table, "wb", mtime=0) as out:
        out.write(("\n".join(rows) + "\n").encode("utf-8"))
    table.with_name(NOTICE.name).write_text(licence_notice(wordnet), encoding="utf-8")
    return len(rows)


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_WORDNET
    print(f"{export(source)} words written to {TABLE}")
