"""PDF seeds: text per page, headings, tables as rows with their headers, bad files, the cache."""

from __future__ import annotations

import io
import logging

import pytest
from fpdf import FPDF

from bot.chunk import chunk_seed, clean
from bot.ingest import load_seeds, pdf

TOUR_ROWS = [("City", "Date", "Price"), ("Almaty", "12 March", "12,000 tenge"), ("Astana", "15 March", "10,000 tenge")]


def tour_pdf(pages: int = 2, encrypt: bool = False, note: str = "") -> bytes:
    """A two-page tour fact sheet: a title, a paragraph and a table on page 1, a heading and prose on page 2."""
    document = FPDF()
    if encrypt:
        document.set_encryption(owner_password="owner", user_password="secret")
    document.add_page()
    document.set_font("Helvetica", "B", 18)
    document.cell(text="Sezim on tour", new_x="LMARGIN", new_y="NEXT")
    document.set_font("Helvetica", size=11)
    document.multi_cell(0, 6, text="Sezim plays twelve concerts in Kazakhstan this spring. The tour opens in "
                        "Almaty, where she grew up listening to her grandmother's dombra." + note,
                        new_x="LMARGIN", new_y="NEXT")
    document.ln(4)
    with document.table() as table:
        for cells in TOUR_ROWS:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    for number in range(2, pages + 1):
        document.add_page()
        document.set_font("Helvetica", "B", 14)
        document.cell(text="Good to know", new_x="LMARGIN", new_y="NEXT")
        document.set_font("Helvetica", size=11)
        document.multi_cell(0, 6, text=f"Children under 14 must come with an adult. Page {number} of the fact sheet.")
    return bytes(document.output())


def scanned_pdf() -> bytes:
    """A page that is only a picture of text, as a scanner makes it."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (600, 200), "white")
    ImageDraw.Draw(picture).text((20, 80), "Sezim plays twelve concerts this spring.", fill="black")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    document = FPDF()
    document.add_page()
    document.image(io.BytesIO(buffer.getvalue()), x=10, y=10, w=180)
    return bytes(document.output())


def only(seeds, name):
    (seed,) = [s for s in seeds if s.path == name]
    return seed


def test_pdf_text_pages_headings_and_table_rows(tmp_path):
    (tmp_path / "tour.pdf").write_bytes(tour_pdf())
    seed = only(load_seeds(tmp_path), "tour.pdf")
    by_kind = {}
    for block in seed.blocks:
        words = clean(seed.text[block.start : block.end])
        by_kind.setdefault(block.kind, []).append((words, block.page, block.section))
    assert ("Sezim on tour", 1, "Sezim on tour") in by_kind["heading"]
    assert ("Good to know", 2, "Good to know") in by_kind["heading"]
    # Each table row is one block that keeps the column headers' words; the header row is not a block.
    assert by_kind["row"] == [
        ("City: Almaty; Date: 12 March; Price: 12,000 tenge", 1, "Sezim on tour"),
        ("City: Astana; Date: 15 March; Price: 10,000 tenge", 1, "Sezim on tour"),
    ]
    prose = [text for text, _, _ in by_kind["text"]]
    assert any(text.startswith("Sezim plays twelve concerts") and text.endswith("dombra.") for text in prose)
    children = "Children under 14 must come with an adult. Page 2 of the fact sheet."
    assert (children, 2, "Good to know") in by_kind["text"]

    chunks = chunk_seed(seed)
    # Quoted text is the extracted text at the chunk's offsets; headings are never chunks.
    assert all(clean(seed.text[c.start : c.end]) == c.text for c in chunks)
    assert not any(c.text in ("Sezim on tour", "Good to know") for c in chunks)
    (almaty,) = [c for c in chunks if "Almaty; Date" in c.text]
    assert almaty.text == "City: Almaty; Date: 12 March; Price: 12,000 tenge" and almaty.page == 1
    (children,) = [c for c in chunks if c.text.startswith("Children")]
    assert children.page == 2 and children.section == "Good to know"


def test_pdf_answers_cite_the_page(tmp_path, make_bot):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "tour.pdf").write_bytes(tour_pdf())
    (seeds / "bio.txt").write_text("Sezim is a singer from Kazakhstan.\n", encoding="utf-8")
    bot = make_bot(seeds, tmp_path / "index")
    bot.ensure_index()
    (passage,) = bot.retrieve("How much are tickets in Astana?", k=1)
    assert passage.text == "City: Astana; Date: 15 March; Price: 10,000 tenge"
    assert (passage.source, passage.page, passage.location) == ("tour.pdf", 1, "tour.pdf, page 1")
    text = only(load_seeds(seeds), "tour.pdf").text
    assert clean(text[passage.start : passage.end]) == passage.text
    answer = bot.answer("Must children under 14 come with an adult?")
    assert not answer.refused
    assert answer.citations[0].location == "tour.pdf, page 2"
    assert answer.citations[0].to_dict()["location"] == "tour.pdf, page 2"


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: tour_pdf(encrypt=True), "encrypted"),
        (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 20, "damaged"),
        (lambda: tour_pdf()[: len(tour_pdf()) // 2], "damaged or incomplete"),
        (scanned_pdf, "no text layer"),
        (lambda: tour_pdf(pages=500), "500 pages, more than the 300-page limit"),
    ],
    ids=["encrypted", "corrupt", "truncated", "scanned", "500-pages"],
)
def test_unreadable_pdfs_are_skipped_with_one_warning_naming_them(tmp_path, caplog, make, reason):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / "press-kit.pdf").write_bytes(make())
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    (skipped,) = seeds.skipped
    assert skipped.path == "press-kit.pdf" and reason in skipped.reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if "press-kit.pdf" in w] == [f"Skipping press-kit.pdf: {skipped.reason}."]


def test_the_page_cap_is_a_setting(tmp_path):
    (tmp_path / "tour.pdf").write_bytes(tour_pdf(pages=3))
    with pytest.raises(Exception, match="No readable documents"):
        load_seeds(tmp_path, max_pdf_pages=2)
    assert [s.path for s in load_seeds(tmp_path, max_pdf_pages=3)] == ["tour.pdf"]


def test_a_bad_pdf_never_costs_the_index(tmp_path, make_bot, caplog):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "tour.pdf").write_bytes(tour_pdf())
    bot = make_bot(seeds, tmp_path / "index")
    bot.update()
    (seeds / "broken.pdf").write_bytes(tour_pdf()[:300])
    with caplog.at_level(logging.WARNING, logger="bot"):
        report = bot.update()
    assert "1 file skipped: broken.pdf (it is damaged or incomplete" in report.summary()
    assert bot.retrieve("How much are tickets in Almaty?", k=1)[0].source == "tour.pdf"


def test_an_unchanged_pdf_is_not_extracted_again(tmp_path, monkeypatch):
    (tmp_path / "tour.pdf").write_bytes(tour_pdf())
    (tmp_path / "other.pdf").write_bytes(tour_pdf(note=" Other."))
    extracted = []
    real = pdf.extract

    def counting(data, max_pages):
        extracted.append(data)
        return real(data, max_pages)

    monkeypatch.setattr(pdf, "extract", counting)
    first = {s.path: s for s in load_seeds(tmp_path)}
    assert len(extracted) == 2
    again = {s.path: s for s in load_seeds(tmp_path)}
    assert len(extracted) == 2  # both from the cache
    assert again == first
    (tmp_path / "tour.pdf").write_bytes(tour_pdf(note=" Edited."))
    edited = {s.path: s for s in load_seeds(tmp_path)}
    assert len(extracted) == 3  # only the edited file
    assert "Edited." in edited["tour.pdf"].text and edited["other.pdf"] == first["other.pdf"]


def test_a_bold_question_in_a_pdf_interview_is_not_quoted(tmp_path):
    document = FPDF()
    document.add_page()
    for question, answer in [("Who taught you the dombra?", "My grandmother did, in our village kitchen."),
                             ("Where do you write?", "On night trains between Almaty and Astana, mostly.")]:
        document.set_font("Helvetica", "B", 11)
        document.multi_cell(0, 6, text=question, new_x="LMARGIN", new_y="NEXT")
        document.set_font("Helvetica", size=11)
        document.multi_cell(0, 6, text=answer, new_x="LMARGIN", new_y="NEXT")
        document.ln(6)
    (tmp_path / "interview.pdf").write_bytes(bytes(document.output()))
    (seed,) = load_seeds(tmp_path)
    chunks = chunk_seed(seed)
    assert [(c.text, c.question, c.page) for c in chunks] == [
        ("My grandmother did, in our village kitchen.", "Who taught you the dombra?", 1),
        ("On night trains between Almaty and Astana, mostly.", "Where do you write?", 1),
    ]


def test_bot_ask_and_build_show_pages_and_skipped_files(tmp_path, monkeypatch, embedder):
    import json

    from click.testing import CliRunner

    import bot.core
    from bot.cli import cli

    monkeypatch.setattr(bot.core, "Embedder", lambda model: embedder)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "tour.pdf").write_bytes(tour_pdf())
    (seeds / "scan.pdf").write_bytes(scanned_pdf())
    (seeds / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a picture")
    runner = CliRunner()
    where = ["--seeds", str(seeds), "--index", str(tmp_path / "index")]
    built = runner.invoke(cli, ["build", *where], catch_exceptions=False)
    assert built.exit_code == 0
    assert "2 files skipped: cover.jpg (.jpg is not a type the bot reads" in built.stdout
    assert "scan.pdf (it has no text layer" in built.stdout
    question = "Must children under 14 come with an adult?"
    as_json = json.loads(runner.invoke(cli, ["ask", "--json", question, *where], catch_exceptions=False).stdout)
    first = as_json["citations"][0]
    assert (first["source"], first["page"], first["location"]) == ("tour.pdf", 2, "tour.pdf, page 2")
    printed = runner.invoke(cli, ["ask", question, *where], catch_exceptions=False).stdout
    assert f"[1] tour.pdf, page 2 (characters {first['start']}-{first['end']})" in printed


def test_a_damaged_or_unwritable_cache_only_costs_an_extraction(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "tour.pdf").write_bytes(tour_pdf())
    cache = tmp_path / "extracted"
    (first,) = load_seeds(seeds, cache_dir=cache)
    (entry,) = cache.iterdir()
    entry.write_text('{"text": "Something else entirely", "blocks": [[0, 3', encoding="utf-8")
    assert load_seeds(seeds, cache_dir=cache) == [first]
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go", encoding="utf-8")
    assert load_seeds(seeds, cache_dir=blocked / "extracted") == [first]
