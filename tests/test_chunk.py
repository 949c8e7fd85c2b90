"""Sentence chunks: exact offsets into the seed file, and their windows."""

from __future__ import annotations

import re

import pytest

from bot.chunk import MAX_SENTENCE_WORDS, chunk_seed, clean
from bot.ingest import load_seeds

from conftest import SEEDS, SEZIM_FILE


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
    for start, end in seed.blocks:
        groups.append([c for c in chunks if start <= c.start and c.end <= end])
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
