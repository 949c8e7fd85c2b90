"""Split seed documents into sentences that remember where they came from.

The sentence is the bot's unit of retrieval and of answering: an answer
quotes one or two sentences verbatim. Each sentence is embedded together
with its neighbours in the same paragraph (its *window*), so that a sentence
saying "he" still carries the name from the sentence before it.

Headings and the question lines of an interview or FAQ are never chunks, so
they are never quoted; an answer's sentences carry their question in the
window instead (a fan's question is most like the interviewer's). A table row
is one chunk, never cut into sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import syntok.segmenter as segmenter

from .ingest import EXTRACTION, SeedFile
from .ingest.blocks import QUOTABLE

#: Sentences longer than this many words are cut into pieces of about this
#: size, so that one run-on sentence or list never becomes a huge answer.
MAX_SENTENCE_WORDS = 80
#: ... and pieces longer than this many characters (a run with no spaces, such
#: as a pasted URL list or a corrupt file) by characters: an answer is a quote
#: a fan reads, never a wall of text.
MAX_SENTENCE_CHARS = 1000

#: Names the chunking by what it does, for the index's settings: a change here
#: (or in how documents are read) must re-chunk every seed, not only the edited ones.
SPLITTER = (
    "syntok, numbering abbreviations kept; headings and questions apart, answers carry their question; "
    f"pieces of at most {MAX_SENTENCE_CHARS} characters; {EXTRACTION}"
)

# Abbreviations that introduce a number ("Op. 58", "Nos. 1 and 2", "Vol. 2",
# "p. 12"), common in writing about music. syntok knows "No." but ends a
# sentence at "Op.", cutting "the Op. 58 sonata" in two.
_NUMBERING_ABBREVIATION = re.compile(
    r"\b(op|opp|no|nos|vol|vols|pt|pts|ch|chap|bk|fig|figs|pp|p|k)\.(?=\s*\d)", re.I
)


@dataclass(frozen=True)
class Chunk:
    """One sentence of a seed file, with the text around it."""

    source: str
    #: Character offsets of the sentence in the seed file's text.
    start: int
    end: int
    #: The sentence, with runs of whitespace collapsed to one space.
    text: str
    #: The sentences before and after it in the same paragraph (its window).
    before: str = ""
    after: str = ""
    #: The heading of its section ("" when none).
    section: str = ""
    #: The PDF page it is on (1-based); None for other formats.
    page: int | None = None
    #: For a sentence of an interview's or FAQ's answer: the question it answers.
    question: str = ""

    @property
    def context(self) -> str:
        """The sentence with its window (and its question), as it is embedded and searched."""
        return " ".join(part for part in (self.question, self.before, self.text, self.after) if part)


def clean(text: str) -> str:
    """Collapse whitespace, the only change made to quoted seed text."""
    return " ".join(text.split())


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` spans of the sentences in ``text[start:end]``."""
    block = text[start:end]
    # Hide the full stop of "Op. 58" from the splitter; the spans index the
    # real text, since the stand-in has the same length.
    masked = _NUMBERING_ABBREVIATION.sub(lambda m: m.group(1) + "_", block)
    spans = []
    for paragraph in segmenter.analyze(masked):
        for sentence in paragraph:
            first, last = sentence[0], sentence[-1]
            s, e = first.offset, last.offset + len(last.value)
            # syntok may end a sentence with an empty token after a line
            # break; the span ends at the sentence's last character.
            while e > s and block[e - 1].isspace():
                e -= 1
            if block[s:e].strip():
                spans.extend(_split_long(block, s, e))
    return [(start + s, start + e) for s, e in spans]


def _split_long(block: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a sentence of more than MAX_SENTENCE_WORDS words at word boundaries, and any piece
    still over MAX_SENTENCE_CHARS characters (a pasted run with no spaces) by characters."""
    words = [(i, i + len(w)) for i, w in _word_spans(block, start, end)]
    if len(words) <= MAX_SENTENCE_WORDS:
        spans = [(start, end)]
    else:
        pieces = -(-len(words) // MAX_SENTENCE_WORDS)
        size = -(-len(words) // pieces)
        spans = [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in range(0, len(words), size)]
    return [piece for s, e in spans for piece in _split_by_characters(block, s, e)]


def _split_by_characters(block: str, start: int, end: int) -> list[tuple[int, int]]:
    """``(start, end)``, or pieces of at most MAX_SENTENCE_CHARS cut at the last space before the limit."""
    pieces = []
    while end - start > MAX_SENTENCE_CHARS:
        cut = block.rfind(" ", start + 1, start + MAX_SENTENCE_CHARS + 1)
        cut = cut if cut > start else start + MAX_SENTENCE_CHARS
        pieces.append(_trimmed(block, start, cut))
        start = _trimmed(block, cut, end)[0]
    pieces.append((start, end))
    return [(s, e) for s, e in pieces if e > s]


def _word_spans(block: str, start: int, end: int):
    position = start
    for word in block[start:end].split():
        position = block.index(word, position)
        yield position, word
        position += len(word)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_label(text: str, block) -> bool:
    """A lone word with no full stop (a signature, a caption) says nothing a fan could ask about."""
    words = text[block.start : block.end].split()
    return len(words) == 1 and not words[0].endswith((".", "!", "?"))


def chunk_seed(seed: SeedFile, window: int = 1) -> list[Chunk]:
    """Split one seed file into sentence chunks with their windows.

    Only quotable blocks (prose, answers, table rows) are chunked; headings
    and question lines reach retrieval through ``section`` and ``question``.
    """
    chunks: list[Chunk] = []
    for block in seed.blocks:
        if block.kind not in QUOTABLE or _is_label(seed.text, block):
            continue
        if block.kind == "row":
            start, end = _trimmed(seed.text, block.start, block.end)
            spans = _split_long(seed.text, start, end)
        else:
            spans = sentence_spans(seed.text, block.start, block.end)
        texts = [clean(seed.text[s:e]) for s, e in spans]
        for i, (s, e) in enumerate(spans):
            chunks.append(
                Chunk(
                    source=seed.path,
                    start=s,
                    end=e,
                    text=texts[i],
                    before=" ".join(texts[max(0, i - window) : i]),
                    after=" ".join(texts[i + 1 : i + 1 + window]),
                    section=block.section,
                    page=block.page,
                    question=block.question,
                )
            )
    return chunks
