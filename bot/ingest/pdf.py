"""PDF (``.pdf``) through pypdfium2: the text of each page, its headings and its tables.

PDF has no paragraphs, only positioned characters, so the structure is read
from their geometry: a line whose characters leave a gap of more than a
font size between them has columns; a run of lines with the same number of
columns is a table, its first line the column headers, and every other row
becomes one line of the extracted text that keeps the headers' words
("Date: Fri 12 Sep 2025; City: Almaty; Venue: Tengri Hall"). A line in a
larger font than the body, or a short bold line, is a heading. Lines closer
than a paragraph's spacing join into one paragraph.

The extracted text (what citations' offsets index) is the paragraphs,
headings and rows separated by blank lines, page after page.
"""

from __future__ import annotations

import ctypes
import threading
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from .blocks import Block, TextBuilder, Unreadable, ends_a_sentence, row_text

VERSION = "pdf-1"

#: PDFium is not thread-safe: one document is read at a time.
_PDFIUM = threading.Lock()
#: A gap between characters wider than this many font sizes separates columns.
COLUMN_GAP = 1.0
#: A drop from one line's baseline to the next of more than this many font
#: sizes starts a new paragraph (lines of one paragraph sit ~1.2-1.5 apart).
PARAGRAPH_GAP = 1.6
#: A line in a font this much larger than the body's is a heading.
HEADING_SCALE = 1.15

_SOFT_HYPHEN = {0x02, 0xAD}
_BOLD_NAMES = ("bold", "black", "heavy", "semibold", "demibold")


@dataclass
class Line:
    """One line of a page, as PDFium lays it out."""

    text: str
    #: The line cut where characters leave a column gap: (text, left, right).
    cells: list[tuple[str, float, float]]
    size: float
    bold: bool
    baseline: float


def extract(data: bytes, max_pages: int) -> tuple[str, tuple[Block, ...]]:
    """The text and blocks of a PDF; raises :class:`Unreadable` saying why it cannot be read."""
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            raise Unreadable(_load_problem(error)) from None
        try:
            count = len(document)
            if count > max_pages:
                raise Unreadable(
                    f"it has {count} pages, more than the {max_pages}-page limit (the max_pdf_pages setting)"
                )
            pages = []
            for number in range(count):
                try:
                    page = document[number]
                    textpage = page.get_textpage()
                except pdfium.PdfiumError as error:
                    raise Unreadable(f"page {number + 1} is damaged ({error})") from None
                try:
                    pages.append(_lines(textpage))
                finally:
                    textpage.close()
                    page.close()
        finally:
            document.close()
    if not any(any(ch.isalnum() for ch in line.text) for lines in pages for line in lines):
        raise Unreadable("it has no text layer (a scan or pictures of text: run OCR on it first)")
    return _layout(pages)


def _load_problem(error: pdfium.PdfiumError) -> str:
    code = getattr(error, "err_code", None)
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return "it is encrypted with a password"
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return "it is protected by an unsupported security scheme"
    return "it is damaged or incomplete, not a readable PDF"


# PDFium's control characters: 0x02 marks a hyphen that breaks a word at a line's end.
_CONTROLS = {code: " " for code in range(0x20) if code not in (0x0A, 0x0D)} | {0x02: "\u00ad"}


def _lines(textpage) -> list[Line]:
    """The lines of one page, with their column cells, font size, weight and baseline.

    The page's text comes in one call; character boxes are asked for only
    where they matter, on either side of a space (where a column gap can be).
    """
    handle = textpage.raw
    count = max(pdfium_c.FPDFText_CountChars(handle), 0)
    text = textpage.get_text_range(0, count) if count else ""
    if len(text) != count:  # never seen, but offsets below need one character per index
        text = "".join(chr(code) if 0 < (code := pdfium_c.FPDFText_GetUnicode(handle, i)) < 0x110000 else " "
                       for i in range(count))
    text = text.translate(_CONTROLS)
    lines, start = [], 0
    for end in [i for i, ch in enumerate(text) if ch in "\r\n"] + [count]:
        if text[start:end].strip():
            lines.append(_line(handle, text, start, end))
        start = end + 1
    return lines


def _line(handle, text: str, start: int, end: int) -> Line:
    glyphs = [i for i in range(start, end) if not text[i].isspace()]
    boxes: dict[int, tuple[float, float, float]] = {}
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))

    def box(index: int) -> tuple[float, float, float]:
        if index not in boxes:
            pdfium_c.FPDFText_GetCharBox(handle, index, left, right, bottom, top)
            boxes[index] = (left.value, right.value, bottom.value)
        return boxes[index]

    middle = glyphs[len(glyphs) // 2]
    size = pdfium_c.FPDFText_GetFontSize(handle, middle) or 10.0
    name = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()
    pdfium_c.FPDFText_GetFontInfo(handle, middle, name, 128, flags)
    weight = pdfium_c.FPDFText_GetFontWeight(handle, middle)
    bold = weight >= 600 or any(word in name.value.decode("latin-1").lower() for word in _BOLD_NAMES)
    cells, first = [], glyphs[0]
    for this, following in zip(glyphs, glyphs[1:]):
        if following > this + 1 and box(following)[0] - box(this)[1] > COLUMN_GAP * size:
            cells.append((first, this))
            first = following
    cells.append((first, glyphs[-1]))
    bottoms = sorted(box(i)[2] for i in {glyphs[0], glyphs[-1], middle, *boxes})
    return Line(
        text=" ".join(text[glyphs[0] : glyphs[-1] + 1].split()),
        cells=[(" ".join(text[a : b + 1].split()), box(a)[0], box(b)[1]) for a, b in cells],
        size=round(size, 1),
        bold=bold,
        baseline=bottoms[len(bottoms) // 2],
    )


def _body_size(pages: list[list[Line]]) -> float:
    """The font size of most of the text."""
    sizes = Counter()
    for lines in pages:
        for line in lines:
            sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _tables(lines: list[Line]) -> dict[int, list[str]]:
    """Rows of the tables on a page: line index -> the headers of its table (header lines map to [])."""
    rows: dict[int, list[str]] = {}
    i = 0
    while i < len(lines):
        header = lines[i]
        width = len(header.cells)
        j = i + 1
        while width >= 2 and j < len(lines) and _same_columns(header, lines[j]):
            j += 1
        if j - i >= 2:
            names = [text for text, _, _ in header.cells]
            rows[i] = []
            for k in range(i + 1, j):
                rows[k] = names
            i = j
        else:
            i += 1
    return rows


def _same_columns(header: Line, line: Line) -> bool:
    """True when ``line`` has the header's columns: as many cells, each under its header."""
    if len(line.cells) != len(header.cells):
        return False
    slack = header.size
    return all(a0 - slack <= b1 and b0 - slack <= a1 for (_, a0, a1), (_, b0, b1) in zip(header.cells, line.cells))


def _is_heading(line: Line, body: float) -> bool:
    words = len(line.text.split())
    if line.size >= HEADING_SCALE * body and words <= 20 and not line.text.rstrip().endswith("."):
        return True
    return line.bold and words <= 12 and not ends_a_sentence(line.text)


def _join(lines: list[Line]) -> str:
    """A paragraph's lines, one per line of text; a word broken at a line's end is mended."""
    out = ""
    for line in lines:
        text = line.text
        if out.endswith("\u00ad"):
            out = out[:-1] + text
        elif out.endswith("-") and text[:1].islower() and out[-2:-1].isalpha():
            out += text
        else:
            out += ("\n" if out else "") + text
    return out.replace("\u00ad", "")


def _layout(pages: list[list[Line]]) -> tuple[str, tuple[Block, ...]]:
    body = _body_size(pages)
    builder = TextBuilder()
    for number, lines in enumerate(pages, 1):
        tables = _tables(lines)
        paragraph: list[Line] = []
        for i, line in enumerate(lines):
            if i in tables or _is_heading(line, body) or _is_question(line, paragraph):
                _add_paragraph(builder, paragraph, number)
                if i not in tables:
                    kind = "question" if line.text.rstrip().endswith("?") else "heading"
                    builder.add(line.text, kind, number)
                elif tables[i]:
                    builder.add(row_text(tables[i], [text for text, _, _ in line.cells]), "row", number)
                continue
            if paragraph and _starts_paragraph(paragraph[-1], line, body):
                _add_paragraph(builder, paragraph, number)
            paragraph.append(line)
        _add_paragraph(builder, paragraph, number)
    return builder.result()


def _is_question(line: Line, paragraph: list[Line]) -> bool:
    """An interview's question, set in bold (and not the end of a bold paragraph)."""
    return line.bold and line.text.rstrip().endswith("?") and not (paragraph and paragraph[-1].bold)


def _starts_paragraph(last: Line, line: Line, body: float) -> bool:
    """True when ``line`` does not continue the paragraph that ``last`` ended: a gap, a new size, a new column."""
    drop = last.baseline - line.baseline
    return drop <= 0 or drop > PARAGRAPH_GAP * max(last.size, line.size) or abs(last.size - line.size) > 0.15 * body


def _add_paragraph(builder: TextBuilder, paragraph: list[Line], page: int) -> None:
    """Add the lines gathered so far as one paragraph, and start a new one."""
    if paragraph:
        builder.add_paragraph(_join(paragraph), page=page)
        paragraph.clear()
