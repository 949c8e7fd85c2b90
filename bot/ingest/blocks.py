"""The structure of a document as the chunker sees it: typed blocks of text.

Every reader (plain text, Markdown, PDF, Word, HTML) turns a file into one
text and a list of :class:`Block` spans over it. A heading or an interview's
question line is a block of its own, so that it is never quoted and never
glued onto the sentence after it; :func:`with_context` then gives every block
the heading of its section and, inside a question-and-answer pair, the
question it answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

#: The kinds of block. ``heading`` and ``question`` are context, never quoted;
#: ``text``, ``answer`` and ``row`` (one row of a table) are what answers quote.
KINDS = ("text", "heading", "question", "answer", "row")
QUOTABLE = ("text", "answer", "row")


class Unreadable(Exception):
    """A file the bot cannot read; the message says why, for the warning."""


@dataclass(frozen=True)
class Block:
    """A span of a document's text: a paragraph, heading, question, answer or table row."""

    #: Character offsets into ``SeedFile.text``.
    start: int
    end: int
    kind: str = "text"
    #: The heading of the section the block is in ("" before the first heading).
    section: str = ""
    #: The page of a PDF the block is on (1-based); None for other formats.
    page: int | None = None
    #: For an answer: the question it answers (an interview's or FAQ's question line).
    question: str = ""


def clean(text: str) -> str:
    """Collapse whitespace (the same reading the chunker gives quoted text)."""
    return " ".join(text.split())


# "Q: ...", "Question: ...", "A: ...", "Answer: ..." at the start of a line.
# (Only with a colon: "A. Sultanbekov wrote ..." is a sentence, not an answer.)
_QUESTION_MARKER = re.compile(r"[ \t]*(?:Q|Question)[ \t]*:[ \t]*(?=\S)", re.I)
_ANSWER_MARKER = re.compile(r"[ \t]*(?:A|Answer)[ \t]*:[ \t]*(?=\S)", re.I)
# A line that ends a sentence or runs on (a heading ends in none of these).
_TERMINAL = tuple(".!?,;:…")
_CLOSERS = "\"'”’»)]*_ "
_LIST_ITEM = re.compile(r"[ \t]*(?:[-*+•–][ \t]|\d{1,3}[.)][ \t])")
# "Label: value" lines ("Last updated: May 2025") are data, unless they head a paragraph.
_LABEL = re.compile(r"[ \t]*[\w&'’ -]{1,30}:[ \t]+\S")
#: Longest line, in words, that can be a heading.
HEADING_MAX_WORDS = 12


def question_marker(line: str) -> int:
    """Length of a ``Q:`` marker at the start of ``line`` (0 when there is none)."""
    match = _QUESTION_MARKER.match(line)
    return match.end() if match else 0


def answer_marker(line: str) -> int:
    """Length of an ``A:`` marker at the start of ``line`` (0 when there is none)."""
    match = _ANSWER_MARKER.match(line)
    return match.end() if match else 0


def ends_a_sentence(line: str) -> bool:
    """True when a line ends with sentence or clause punctuation (closing quotes aside)."""
    stripped = line.rstrip().rstrip(_CLOSERS)
    return stripped.endswith(_TERMINAL) or not stripped


def heading_like(line: str) -> bool:
    """A short line with letters that does not end like a sentence, and is not a list item."""
    words = line.split()
    return (
        0 < len(words) <= HEADING_MAX_WORDS
        and any(ch.isalpha() for ch in line)
        and not ends_a_sentence(line)
        and not _LIST_ITEM.match(line)
    )


def _short_for_prose(line: str, length: int, longest: int) -> bool:
    """True when a line is too short to be a line of hard-wrapped prose.

    Wrapped prose fills its lines to about the same width, and few people wrap
    at fewer than seven words; a line in capitals ("SEZIM - FAQ") is a title
    however long it is.
    """
    letters = [ch for ch in line if ch.isalpha()]
    capitals = len(letters) >= 4 and all(ch.isupper() for ch in letters)
    return capitals or length < 0.6 * longest or len(line.split()) <= 6


def starts_a_sentence(line: str) -> bool:
    """True when a line starts like a new sentence (capital, digit, quote or bracket)."""
    first = line.lstrip()[:1]
    return bool(first) and (first.isupper() or first.isdigit() or first in "\"'“‘«([*_")


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The non-blank lines of ``text[start:end]``, trimmed of surrounding whitespace."""
    spans, position = [], start
    for line in text[start:end].split("\n"):
        s, e = position, position + len(line)
        position = e + 1
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            spans.append((s, e))
    return spans


def paragraph_blocks(
    text: str,
    start: int,
    end: int,
    *,
    bold_lines: frozenset[int] = frozenset(),
    standalone_headings: bool = True,
) -> list[Block]:
    """Find the structure inside one paragraph of plain text (or of Markdown prose).

    - ``Q:``/``A:`` lines are a question and the start of its answer (the
      markers themselves are left out of both spans);
    - a whole-line bold span (``bold_lines`` holds the offsets where such
      lines start) is a question when it ends with "?", a heading when it is
      short and does not end like a sentence;
    - a short line that does not end like a sentence, at a sentence boundary,
      before a line that starts a new sentence, is a heading: "Interview:
      Sezim on her second album" above the paragraph it introduces. With
      ``standalone_headings`` a one-line paragraph like that is a heading too
      (plain text has no other way to write one).

    Everything else stays one ``text`` block, so a paragraph without any of
    these is exactly the block it was.
    """
    lines = _lines(text, start, end)
    blocks: list[Block] = []
    longest = max((e - s for s, e in lines), default=0)
    question_open = False  # a Q: line that has not reached its "?" yet
    for i, (s, e) in enumerate(lines):
        line = text[s:e]
        previous = blocks[-1] if blocks else None
        following = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else None
        at_boundary = (
            previous is None
            or previous.kind in ("heading", "question")
            or ends_a_sentence(text[lines[i - 1][0] : lines[i - 1][1]])
        )
        bold = max(start, text.rfind("\n", start, s) + 1) in bold_lines
        kind = "text"
        if marker := question_marker(line):
            kind, s = "question", s + marker
            question_open = not line.rstrip().endswith("?")
        elif marker := answer_marker(line):
            kind, s, question_open = "answer", s + marker, False
        elif question_open:
            blocks[-1] = replace(previous, end=e)
            question_open = not line.rstrip().endswith("?")
            continue
        elif bold and line.rstrip().rstrip(_CLOSERS).endswith("?"):
            kind = "question"
        elif bold and heading_like(line):
            kind = "heading"
        elif heading_like(line) and at_boundary:
            if following is None:
                if len(lines) == 1 and standalone_headings:
                    kind = "heading"
            elif starts_a_sentence(following) and _short_for_prose(line, e - s, longest) and not (
                i and _LABEL.match(line)
            ):
                kind = "heading"
        if kind == "text" and previous is not None and previous.kind in ("text", "answer"):
            blocks[-1] = replace(previous, end=e)
        else:
            blocks.append(Block(s, e, kind))
    if len(blocks) == 1 and blocks[0].kind == "text":
        # Nothing found: the paragraph is one block, exactly as it was given.
        return [Block(start, end, "text")]
    return blocks


def with_context(text: str, blocks: list[Block]) -> tuple[Block, ...]:
    """Give each block its section heading and, after a question, the question it answers.

    A question holds for the paragraphs after it until the next question or
    heading, so an interview answer of several paragraphs keeps its question.
    """
    section, question = "", ""
    out = []
    for block in blocks:
        words = clean(text[block.start : block.end])
        if block.kind == "heading":
            section, question = words, ""
            out.append(replace(block, section=section, question=""))
        elif block.kind == "question":
            marker = question_marker(words)
            question = words[marker:]
            out.append(replace(block, section=section, question=question))
        elif block.kind in ("text", "answer"):
            kind = "answer" if question or block.kind == "answer" else "text"
            out.append(replace(block, kind=kind, section=section, question=question))
        else:
            out.append(replace(block, section=section, question=""))
    return tuple(out)


def row_text(headers: list[str], cells: list[str]) -> str:
    """One table row as a line that keeps its column headers' words: "Date: 12 March; City: Almaty"."""
    if len(headers) != len(cells) or not any(headers):
        return "; ".join(cell for cell in cells if cell)
    return "; ".join(f"{h}: {c}" if h else c for h, c in zip(headers, cells) if c)


class TextBuilder:
    """Builds an extracted text and its blocks together (for PDF, Word and HTML).

    Paragraphs are separated by a blank line, so offsets into the built text
    are what citations of these formats point at.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []

    def add(self, text: str, kind: str = "text", page: int | None = None) -> None:
        """Append one block (a paragraph, heading, question or table row)."""
        text = text.strip()
        if not text or not any(ch.isalnum() for ch in text):
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self.blocks.append(Block(start, self._length, kind, page=page))

    def add_paragraph(self, text: str, page: int | None = None) -> None:
        """Append a paragraph of prose, finding its Q:/A: lines and heading lines."""
        text = text.strip()
        if not text or not any(ch.isalnum() for ch in text):
            return
        offset = self._length + (2 if self._parts else 0)
        self.add(text, "text", page)
        self.blocks.pop()
        for block in paragraph_blocks(text, 0, len(text), standalone_headings=False):
            self.blocks.append(replace(block, start=block.start + offset, end=block.end + offset, page=page))

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def result(self) -> tuple[str, tuple[Block, ...]]:
        """The text and its blocks, each with its section and question."""
        text = self.text
        return text, with_context(text, self.blocks)
