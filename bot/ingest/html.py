"""Web pages (``.html``) through trafilatura's main-content extraction.

Navigation, footers, cookie banners, scripts and styles are left out;
entities are decoded. Headings (``<h1>``-``<h6>``) are headings, a bold
paragraph that asks something is an interview's question, each table row
after the first keeps the first row's words as column headers. The extracted
text (what citations' offsets index) is these blocks separated by blank lines.
"""

from __future__ import annotations

from .blocks import Block, TextBuilder, Unreadable, heading_like, row_text

VERSION = "html-1"


def extract(data: bytes) -> tuple[str, tuple[Block, ...]]:
    """The main text of a web page and its blocks; raises :class:`Unreadable` when it has none."""
    import trafilatura
    from lxml import etree

    try:
        xml = trafilatura.extract(
            data, output_format="xml", include_tables=True, include_formatting=True,
            include_comments=False, include_images=False, favor_precision=True, with_metadata=False,
        )
    except Exception as error:  # noqa: BLE001 - a malformed page must not stop the build
        raise Unreadable(f"the page could not be parsed ({type(error).__name__})") from None
    if not xml:
        raise Unreadable("no main content found in the page (only navigation, scripts or boilerplate)")
    main = etree.fromstring(xml.encode("utf-8")).find("main")
    builder = TextBuilder()
    if main is not None:
        _children(builder, main)
    text, blocks = builder.result()
    if not text.strip():
        raise Unreadable("no main content found in the page (only navigation, scripts or boilerplate)")
    return text, blocks


def _text(element) -> str:
    return " ".join("".join(element.itertext()).split())


def _children(builder: TextBuilder, parent) -> None:
    for element in parent:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "head":
            words = _text(element)
            builder.add(words, "question" if words.endswith("?") else "heading")
        elif tag == "p":
            _paragraph(builder, element)
        elif tag == "list":
            for item in element.iter("item"):
                builder.add(_text(item), "text")
        elif tag == "table":
            _table(builder, element)
        elif tag in ("quote", "div", "section"):
            _children(builder, element)
        elif tag not in ("graphic", "code", "ref") and _text(element):
            builder.add_paragraph(_text(element))


def _paragraph(builder: TextBuilder, element) -> None:
    words = _text(element)
    if not words:
        return
    children = [child for child in element if isinstance(child.tag, str)]
    whole_bold = (
        len(children) == 1 and children[0].tag == "hi" and "#b" in (children[0].get("rend") or "")
        and not (element.text or "").strip() and not (children[0].tail or "").strip()
    )
    if whole_bold and (words.endswith("?") or heading_like(words)):
        builder.add(words, "question" if words.endswith("?") else "heading")
        return
    # Line breaks (<lb/>) keep a paragraph's lines apart, so Q:/A: lines are seen.
    lines = []
    for piece in element.xpath(".//text() | .//lb"):
        lines.append("\n" if getattr(piece, "tag", None) == "lb" else str(piece))
    builder.add_paragraph("".join(lines))


def _table(builder: TextBuilder, table) -> None:
    rows = [[_text(cell) for cell in row.iter("cell")] for row in table.iter("row")]
    rows = [row for row in rows if any(row)]
    if len(rows) == 1:
        builder.add(row_text([], rows[0]), "row")
        return
    for cells in rows[1:]:
        builder.add(row_text(rows[0], cells), "row")
