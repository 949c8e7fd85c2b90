"""Plain text (``.txt``): the decoded file is the text; paragraphs split at blank lines.

Inside a paragraph, ``Q:``/``A:`` lines and heading lines are found by
:func:`bot.ingest.blocks.paragraph_blocks`; a paragraph with neither is one
block, as it always was.
"""

from __future__ import annotations

import re

from .blocks import Block, paragraph_blocks, with_context

VERSION = "text-2"

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


def paragraphs(text: str) -> list[tuple[int, int]]:
    """Split plain text into paragraphs at blank lines: ``(start, end)`` spans."""
    spans, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def read_text(raw: str) -> tuple[str, tuple[Block, ...]]:
    """The text of a ``.txt`` file (itself) and its blocks."""
    blocks: list[Block] = []
    for start, end in paragraphs(raw):
        blocks.extend(paragraph_blocks(raw, start, end))
    return raw, with_context(raw, blocks)
