"""Sentence chunks: exact offsets into the seed file, and their windows."""

from __future__ import annotations

import re

import pytest

from bot.chunk import MAX_SENTENCE_CHARS, MAX_SENTENCE_WORDS, chunk_seed, clean
from bot.ingest import load_seeds

from conftest import SEEDS, SEZIM_FILE, assert_quoted_verbatim


@pytest.fixture(scope="module")
def sezim():
    (seed,) = [s for s in load_seeds(SEEDS) if s.path == SEZIM_FILE]
    return seed


def assert_offsets_exact(seed, chunks):
    for chunk in chunks:
        assert chunk.source == seed.path
        assert 0 <= chunk.start < chunk.end <= len(seed.text)
        assert clean(seed.text[chunk.start : chunk.end]) == chunk.text
        # Spans are trimmed: they start and end on text, not on whitespace.
        assert not seed.text[chunk.start].isspace() and not seed.text[chunk.end - 1].isspace()


def chunks_of(folder, name, text):
    """Chunk one seed file written with ``text``; its offsets are checked on the way."""
    (folder / name).write_text(text, encoding="utf-8")
    (seed,) = load_seeds(folder)
    chunks = chunk_seed(seed)
    assert_offsets_exact(seed, chunks)
    return seed, chunks


def test_every_sentence_points_at_its_exact_place_in_the_file(sezim):
    chunks = chunk_seed(sezim)
    assert len(chunks) > 10
    assert_offsets_exact(sezim, chunks)
    # The same holds for the file as it lies on disk.
    on_disk = (SEEDS / SEZIM_FILE).read_text(encoding="utf-8")
    assert all(clean(on_disk[c.start : c.end]) == c.text for c in chunks)


def test_sentences_are_in_order_cover_the_text_and_never_overlap(sezim):
    chunks = chunk_seed(sezim)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    # Every word of the file is in exactly one sentence.
    assert " ".join(c.text for c in chunks).split() == sezim.text.split()


def test_sentences_are_sentences(sezim):
    chunks = chunk_seed(sezim)
    # The sentence a fan asks about is one chunk, cut at its full stops.
    (dombra,) = [c for c in chunks if "dombra" in c.text and "grandmother" in c.text]
    assert dombra.text.startswith("Growing up in a small village")
    assert dombra.text.endswith("on the dombra.")
    assert sum(c.text.endswith((".", "!", "?", '."')) for c in chunks) == len(chunks)
    # No sentence runs across a paragraph break.
    assert all("\n\n" not in sezim.text[c.start : c.end] for c in chunks)


def paragraphs_of(seed, chunks):
    """Group chunks by the paragraph (block) they lie in."""
    groups = []
    for block in seed.blocks:
        groups.append([c for c in chunks if block.start <= c.start and c.end <= block.end])
    assert sum(len(g) for g in groups) == len(chunks)
    return groups


@pytest.mark.parametrize("window", [0, 1, 2])
def test_window_is_the_neighbouring_sentences_of_the_same_paragraph(sezim, window):
    chunks = chunk_seed(sezim, window=window)
    for group in paragraphs_of(sezim, chunks):
        texts = [c.text for c in group]
        for i, chunk in enumerate(group):
            assert chunk.before == " ".join(texts[max(0, i - window) : i])
            assert chunk.after == " ".join(texts[i + 1 : i + 1 + window])
            assert chunk.context == " ".join(part for part in (chunk.before, chunk.text, chunk.after) if part)
    if window == 0:
        assert all(c.context == c.text for c in chunks)
    else:
        # The first sentence of a paragraph has nothing before it; others do.
        groups = paragraphs_of(sezim, chunks)
        assert all(g[0].before == "" for g in groups)
        assert all(g[-1].after == "" for g in groups)
        assert any(c.before for c in chunks) and any(c.after for c in chunks)


def test_run_on_sentences_are_cut_at_word_boundaries(tmp_path):
    words = [f"word{i}" for i in range(2 * MAX_SENTENCE_WORDS + 30)]
    text = "Intro sentence here.\n\nA list of  " + ",\n".join(words) + ".\n\nThe end."
    _, chunks = chunks_of(tmp_path, "long.txt", text)
    assert all(len(c.text.split()) <= MAX_SENTENCE_WORDS for c in chunks)
    pieces = [c for c in chunks if "word" in c.text]
    assert len(pieces) == 3  # 193 words: three pieces of about 65
    assert pieces[0].text.startswith("A list of word0,") and pieces[-1].text.endswith("word189.")
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_a_huge_word_is_cut_into_pieces_a_fan_can_read(tmp_path):
    huge = "x" * 200_000
    text = f"Sezim sang in Almaty.\n\nThe archive: {huge} was pasted here.\n\nThe end."
    seed, chunks = chunks_of(tmp_path, "huge.txt", text)
    assert max(len(c.text) for c in chunks) <= MAX_SENTENCE_CHARS
    assert all(seed.text[c.start : c.end] == c.text for c in chunks)  # still verbatim at its offsets
    assert "".join(c.text for c in chunks if "x" in c.text).count("x") == 200_000
    assert chunks[0].text == "Sezim sang in Almaty." and chunks[-1].text == "The end."


def test_numbering_abbreviations_do_not_end_a_sentence(tmp_path):
    text = (
        "In 1844 he wrote only the Op. 58 sonata. The Rondo Op. 1. was his first published work. "
        "Nos. 1 and 2 appear on Vol. 2, see p. 12. Her Symphony No. 5 followed."
    )
    _, chunks = chunks_of(tmp_path, "works.txt", text)
    assert [c.text for c in chunks] == [
        "In 1844 he wrote only the Op. 58 sonata.",
        "The Rondo Op. 1. was his first published work.",
        "Nos. 1 and 2 appear on Vol. 2, see p. 12.",
        "Her Symphony No. 5 followed.",
    ]


def test_markdown_sentences_point_into_the_markdown_file(tmp_path):
    source = (
        "# Early years\n\nSezim grew up near **Almaty**. Her grandmother taught her the *dombra*.\n\n"
        "- She first sang at a village wedding.\n- She was nine.\n"
    )
    seed, chunks = chunks_of(tmp_path, "bio.md", source)
    # Blanked markup can leave a space before punctuation ("Almaty ."), see test_ingest.
    texts = [re.sub(r" (?=[.,;:!?])", "", c.text) for c in chunks]
    assert "Her grandmother taught her the dombra." in texts
    assert "She first sang at a village wedding." in texts
    # List items and headings are separate blocks: no sentence spans two of them.
    assert all("\n" not in seed.text[c.start : c.end].strip() for c in chunks)
    for chunk in chunks:
        # Offsets in the reduced text are offsets in the file: the file holds
        # each word of the sentence at the same place.
        span = source[chunk.start : chunk.end]
        for word in chunk.text.rstrip(".").split():
            assert word in span


def test_chunking_is_deterministic(sezim):
    assert chunk_seed(sezim) == chunk_seed(sezim)


INTERVIEW = """# Interview: Sezim on her second album

*Dala Sound Magazine, April 2025.*

**What is the new album called?**

Sezim: It is called Night Steppe. I wrote every song after dark, with the window open.

**Who taught you to play the dombra?**

Sezim: My grandmother did, in the kitchen of our village house. She was patient with me.
"""

FAQ = """SEZIM - FREQUENTLY ASKED QUESTIONS

Q: How do I join the fan club?
A: The fan club is called the Night Riders. Membership is free for everyone.

Q: Does Sezim play weddings?
A: No, she does not play weddings or private parties.
"""

HEADING_WITHOUT_FULL_STOP = """Interview: Sezim on her second album
Sezim's second album is called Night Steppe. It came out in 2025.
"""


def test_a_heading_is_never_glued_to_the_sentence_after_it(tmp_path):
    for name, text in (("bio.txt", HEADING_WITHOUT_FULL_STOP), ("bio.md", HEADING_WITHOUT_FULL_STOP),
                       ("interview.md", INTERVIEW)):
        folder = tmp_path / name.replace(".", "-")
        folder.mkdir()
        _, chunks = chunks_of(folder, name, text)
        assert not any("Interview" in c.text for c in chunks), [c.text for c in chunks]
        assert all(c.section.startswith("Interview: Sezim on her second album") for c in chunks)
    (tmp_path / "glued").mkdir()
    _, chunks = chunks_of(tmp_path / "glued", "glued.txt", HEADING_WITHOUT_FULL_STOP)
    assert chunks[0].text == "Sezim's second album is called Night Steppe."


def test_question_lines_are_not_chunks_and_answers_carry_their_question(tmp_path):
    _, chunks = chunks_of(tmp_path, "interview.md", INTERVIEW)
    assert not any(c.text.endswith("?") for c in chunks)
    (called,) = [c for c in chunks if c.text.startswith("Sezim: It is called")]
    assert called.question == "What is the new album called?"
    # The question is part of the window that is embedded and searched, not of the quote.
    assert called.context == "What is the new album called? Sezim: It is called Night Steppe. " \
                             "I wrote every song after dark, with the window open."
    (patient,) = [c for c in chunks if c.text.startswith("She was patient")]
    assert patient.question == "Who taught you to play the dombra?"
    assert patient.before == "Sezim: My grandmother did, in the kitchen of our village house."
    (magazine,) = [c for c in chunks if "Magazine" in c.text]
    assert magazine.question == ""


def test_faq_answers_are_chunks_without_their_markers(tmp_path):
    _, chunks = chunks_of(tmp_path, "faq.txt", FAQ)
    assert [c.text for c in chunks] == [
        "The fan club is called the Night Riders.",
        "Membership is free for everyone.",
        "No, she does not play weddings or private parties.",
    ]
    assert [c.question for c in chunks] == ["How do I join the fan club?"] * 2 + ["Does Sezim play weddings?"]
    assert {c.section for c in chunks} == {"SEZIM - FREQUENTLY ASKED QUESTIONS"}


def test_a_table_row_is_one_chunk(tmp_path):
    source = "| City | Date |\n| --- | --- |\n| Almaty. Kazakhstan | 12 March. 2025 |\n"
    _, chunks = chunks_of(tmp_path, "tour.md", source)
    assert [c.text for c in chunks] == ["Almaty. Kazakhstan 12 March. 2025"]


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What is the new album called?", "It is called Night Steppe."),
        ("Who taught Sezim to play the dombra?", "My grandmother did"),
        ("how do i join the fan club", "The fan club is called the Night Riders."),
        ("Does Sezim play weddings?", "No, she does not play weddings"),
    ],
)
def test_interviews_and_faqs_are_answered_from_the_answer_never_the_question(tmp_path_factory, make_bot, question,
                                                                          expected):
    base = tmp_path_factory.getbasetemp() / "structured"
    if not (base / "seeds").exists():
        (base / "seeds").mkdir(parents=True)
        (base / "seeds" / "interview.md").write_text(INTERVIEW, encoding="utf-8")
        (base / "seeds" / "faq.txt").write_text(FAQ, encoding="utf-8")
    bot = make_bot(base / "seeds", base / "index")
    answer = bot.answer(question)
    assert not answer.refused, answer
    assert expected in answer.text
    for passage in answer.citations:
        assert_quoted_verbatim(base / "seeds", passage)
        assert not passage.text.endswith("?") and "Interview" not in passage.text
        assert "QUESTIONS" not in passage.text
