"""Word (``.docx``) through python-docx: paragraphs and tables in document order.

Paragraphs in a Heading, Title or Subtitle style are headings (the section of
what follows); a paragraph in bold from end to end that asks something is an
interview's question. Each table row after the first becomes one line that
keeps the first row's words as column headers. The extracted text (what
citations' offsets index) is these blocks separated by blank lines.

A ``.docx`` is a zip archive, so the sizes its members would unpack to are
checked before anything is unpacked: a zip bomb is refused, not inflated.
"""

from __future__ import annotations

import io
import zipfile

from .blocks import Block, TextBuilder, Unreadable, heading_like, row_text

VERSION = "word-1"

#: Most a .docx may unpack to (its text, styles and pictures together).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
_HEADING_STYLES = ("heading", "title", "subtitle")


def _check_archive(data: bytes) -> None:
    """Refuse what is not a Word archive, or would unpack to too much, before opening it."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Unreadable("it is not a Word .docx file (not a zip archive; save an old .doc as .docx)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise Unreadable(f"it is a damaged zip archive ({error})") from None
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise Unreadable(
            f"it would unpack to {unpacked // (1024 * 1024)} MiB, more than the "
            f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MiB a document may (a zip bomb?)"
        )
    if "word/document.xml" not in {member.filename for member in members}:
        raise Unreadable("it is a zip archive but not a Word document (no word/document.xml)")


def extract(data: bytes) -> tuple[str, tuple[Block, ...]]:
    """The text and blocks of a ``.docx``; raises :class:`Unreadable` saying why it cannot be read."""
    _check_archive(data)
    from docx import Document
    from docx.table import Table

    try:
        document = Document(io.BytesIO(data))
        builder = TextBuilder()
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                _table(builder, item)
            else:
                _paragraph(builder, item)
    except Unreadable:
        raise
    except Exception as error:  # noqa: BLE001 - python-docx raises many kinds on a bad file
        raise Unreadable(f"Word's format could not be read ({type(error).__name__}: {error})") from None
    text, blocks = builder.result()
    if not text.strip():
        raise Unreadable("it holds no text")
    return text, blocks


def _style_name(paragraph) -> str:
    try:
        return (paragraph.style.name or "").lower() if paragraph.style is not None else ""
    except (KeyError, AttributeError):
        return ""


def _paragraph(builder: TextBuilder, paragraph) -> None:
    text = paragraph.text
    words = " ".join(text.split())
    if not words:
        return
    if _style_name(paragraph).startswith(_HEADING_STYLES):
        builder.add(text, "question" if words.endswith("?") else "heading")
        return
    runs = [run for run in paragraph.runs if run.text.strip()]
    if runs and all(run.bold for run in runs) and (words.endswith("?") or heading_like(words)):
        builder.add(text, "question" if words.endswith("?") else "heading")
        return
    builder.add_paragraph(text)


def _table(builder: TextBuilder, table) -> None:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(cells)
    if len(rows) == 1:
        builder.add(row_text([], rows[0]), "row")
        return
    for cells in rows[1:]:
        builder.add(row_text(rows[0], cells) if rows else "", "row")
