"""Word seeds: paragraphs and tables in document order, heading styles as sections, bad archives."""

from __future__ import annotations

import io
import logging
import zipfile

import docx
import pytest

from bot.chunk import chunk_seed, clean
from bot.ingest import load_seeds, word


def liner_notes() -> bytes:
    """A .docx with a title, headings, a bold interview question and a table."""
    document = docx.Document()
    document.add_heading("Steppes and Sighs", level=0)
    document.add_paragraph("These songs were written in Almaty between 2019 and 2021.")
    document.add_heading("Credits", level=1)
    document.add_paragraph("Produced by Askar Temirkhanov. Mastered in Berlin.")
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(table.rows, [("Track", "Title", "Length"), ("1", "Night Fishermen", "4:12"),
                                       ("2", "Balkhash Blue", "3:48")]):
        for cell, value in zip(row.cells, cells):
            cell.text = value
    document.add_heading("Interview", level=1)
    document.add_paragraph().add_run("Why did you call the album Steppes and Sighs?").bold = True
    document.add_paragraph("Sezim: The wind on the steppe sounds like someone sighing at night.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_word_paragraphs_headings_and_table_rows_in_order(tmp_path):
    (tmp_path / "notes.docx").write_bytes(liner_notes())
    (seed,) = load_seeds(tmp_path)
    blocks = [(b.kind, clean(seed.text[b.start : b.end]), b.section, b.question) for b in seed.blocks]
    question = "Why did you call the album Steppes and Sighs?"
    assert blocks == [
        ("heading", "Steppes and Sighs", "Steppes and Sighs", ""),
        ("text", "These songs were written in Almaty between 2019 and 2021.", "Steppes and Sighs", ""),
        ("heading", "Credits", "Credits", ""),
        ("text", "Produced by Askar Temirkhanov. Mastered in Berlin.", "Credits", ""),
        ("row", "Track: 1; Title: Night Fishermen; Length: 4:12", "Credits", ""),
        ("row", "Track: 2; Title: Balkhash Blue; Length: 3:48", "Credits", ""),
        ("heading", "Interview", "Interview", ""),
        ("question", question, "Interview", question),
        ("answer", "Sezim: The wind on the steppe sounds like someone sighing at night.", "Interview", question),
    ]
    chunks = chunk_seed(seed)
    assert all(clean(seed.text[c.start : c.end]) == c.text for c in chunks)
    assert all(c.page is None for c in chunks)
    assert not any(c.text in ("Credits", "Interview", question) for c in chunks)
    (answer,) = [c for c in chunks if c.text.startswith("Sezim: The wind")]
    assert answer.question == question and answer.context.startswith(question)


def test_word_answers_cite_the_section(tmp_path, make_bot):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "notes.docx").write_bytes(liner_notes())
    bot = make_bot(seeds, tmp_path / "index")
    bot.ensure_index()
    (passage,) = bot.retrieve("Who was the producer?", k=1)
    assert passage.text == "Produced by Askar Temirkhanov."
    assert passage.location == "notes.docx · Credits" and passage.page is None
    (seed,) = load_seeds(seeds)
    assert clean(seed.text[passage.start : passage.end]) == passage.text


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: b"\xd0\xcf\x11\xe0 an old binary .doc renamed", "not a zip archive"),
        (lambda: zip_bytes({"[Content_Types].xml": b"<x/>", "word/document.xml": b"\0" * (8 * 1024 * 1024)}),
         "zip bomb"),
        (lambda: zip_bytes({"hello.txt": b"Sezim sings."}), "not a Word document"),
        (lambda: zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<not-word"}),
         "could not be read"),
    ],
    ids=["not-a-zip", "zip-bomb", "other-zip", "damaged"],
)
def test_unreadable_word_files_are_skipped_with_one_warning(tmp_path, caplog, monkeypatch, make, reason):
    # The real limit is 256 MiB; a smaller one keeps the test's archive small (8 MiB of zeros, 8 KiB zipped).
    monkeypatch.setattr(word, "MAX_UNPACKED_BYTES", 4 * 1024 * 1024)
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / "notes.docx").write_bytes(make())
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    (skipped,) = seeds.skipped
    assert skipped.path == "notes.docx" and reason in skipped.reason, skipped
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "notes.docx" in w] == [f"Skipping notes.docx: {skipped.reason}."]


def test_a_zip_bomb_is_refused_without_unpacking_it(tmp_path, monkeypatch):
    monkeypatch.setattr(word, "MAX_UNPACKED_BYTES", 1024 * 1024)
    bomb = zip_bytes({"word/document.xml": b"\0" * (2 * 1024 * 1024)})
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("a member was unpacked"))
    with pytest.raises(word.Unreadable, match="zip bomb"):
        word.extract(bomb)
