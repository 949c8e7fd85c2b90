"""Markdown (``.md``): prose of the same length as the file, markup blanked to spaces.

Blanking rather than deleting keeps every offset true: a citation's
``start``/``end`` index the Markdown file itself. Structure comes from
markdown-it's parse: ``#`` headings are headings (a heading that asks
something, "## How do I join?", is an FAQ question), a paragraph in bold that
ends with "?" is an interview's question, list items and table rows are
blocks of their own, code and raw HTML blocks are left out.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from .blocks import Block, clean, heading_like, paragraph_blocks, with_context

VERSION = "markdown-2"

# Inline Markdown markup, blanked to spaces: images and HTML go entirely;
# links keep their label; emphasis and code markers go, their text stays.
_MARKDOWN_INLINE = [
    re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)"),
    re.compile(r"<!--.*?-->", re.S),
    re.compile(r"</?[A-Za-z][^<>\n]*>"),
    re.compile(r"(?<=\])\([^)\n]*\)"),
    re.compile(r"\[(?=[^\]\n]*\])|(?<=[^\[\n])\]"),
    re.compile(r"(\*{1,3}|_{2,3}|`+|~~)(?=\S)|(?<=\S)(\*{1,3}|_{2,3}|`+|~~)"),
    re.compile(r"^[ \t]{0,3}(#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+)", re.M),
    re.compile(r"[ \t]#+[ \t]*$|^\s*\|?\s*:?-{3,}.*$|\|", re.M),
]
# A line (or a paragraph) that is bold from end to end: "**Why did you call it that?**".
_BOLD_LINE = re.compile(r"[ \t>]*(\*\*|__)(?=\S)(?:(?!\1).)+?(?<=\S)\1[ \t]*$")
_BOLD_PARAGRAPH = re.compile(r"\s*(\*\*|__)(?=\S)(?:(?!\1).)+?(?<=\S)\1\s*", re.S)
# A paragraph that opens with a bold question and goes on with its answer.
_BOLD_QUESTION_LEAD = re.compile(r"\s*(\*\*|__)(?=\S)(?:(?!\1).)+?\?[\"'”’)]*\1")

_HTML_TAG = re.compile(r"<[!/]?[A-Za-z][^<>]*>")


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def looks_like_html(source: str) -> bool:
    """True for an HTML page saved as ``.md``: a doctype or ``<html>``, or mostly tags."""
    head = source.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html", "<?xml")):
        return True
    visible = len("".join(source.split()))
    tags = sum(len("".join(m.group(0).split())) for m in _HTML_TAG.finditer(source))
    return visible > 0 and tags > 0.5 * visible


def markdown_to_text(source: str) -> tuple[str, tuple[Block, ...]]:
    """Reduce Markdown to prose of the same length, and find its blocks."""
    line_starts = [0]
    for match in re.finditer("\n", source):
        line_starts.append(match.end())
    line_starts.append(len(source))
    text = source
    for pattern in _MARKDOWN_INLINE:
        text = pattern.sub(_blank, text)

    def span(token) -> tuple[int, int]:
        first, last = token.map
        return line_starts[first], line_starts[min(last, len(line_starts) - 1)]

    blocks: list[Block] = []
    seen: set[tuple[int, int]] = set()
    opened: list[str] = []  # the block tokens around the current one
    for token in MarkdownIt("commonmark").enable("table").parse(source):
        if token.nesting == 1:
            opened.append(token.type)
        elif token.nesting == -1:
            opened.pop()
        if token.type != "inline" or not token.map:
            continue
        start, end = span(token)
        if (start, end) in seen or not text[start:end].strip():
            continue
        seen.add((start, end))
        parent = opened[-1] if opened else ""
        if parent == "heading_open":
            asks = clean(text[start:end]).endswith("?")
            blocks.append(Block(start, end, "question" if asks else "heading"))
        elif parent in ("th_open", "td_open"):
            if "thead_open" not in opened:
                blocks.append(Block(start, end, "row"))
        elif "list_item_open" in opened:
            blocks.append(Block(start, end, "text"))
        else:
            blocks.extend(_paragraph(source, text, start, end))
    blocks.sort(key=lambda b: b.start)
    return text, with_context(text, blocks)


def _paragraph(source: str, text: str, start: int, end: int) -> list[Block]:
    """The blocks of one Markdown paragraph: a bold question or heading, or prose."""
    raw = source[start:end]
    if _BOLD_PARAGRAPH.fullmatch(raw):
        words = clean(text[start:end])
        if words.rstrip("\"'”’)").endswith("?"):
            return [Block(start, end, "question")]
        if heading_like(words):
            return [Block(start, end, "heading")]
        return [Block(start, end, "text")]
    lead = _BOLD_QUESTION_LEAD.match(raw)
    if lead and text[start + lead.end() : end].strip():
        return [Block(start, start + lead.end(), "question"), Block(start + lead.end(), end, "text")]
    bold_lines = frozenset(start + m.start() for m in re.finditer(r"[^\n]+", raw) if _BOLD_LINE.fullmatch(m.group(0)))
    return paragraph_blocks(text, start, end, bold_lines=bold_lines, standalone_headings=False)
