"""BM25 as the index stores it (``bot.index.lexical``): bm25s's scores, to the bit, from
``lexical.bin``, and the vocabulary, document frequencies and words kept beside them.

Real bm25s, real stemmer, real seed text; no model.
"""

from __future__ import annotations

import math
from collections import Counter

import bm25s
import numpy as np
import pytest
import Stemmer

import bot.index.files as index_files
from bot.chunk import Chunk, chunk_seed
from bot.index import LexicalIndex, lexical_tokens
from bot.index.files import write_arrays
from bot.ingest import load_seeds
from bot.query import words

from conftest import SEEDS


@pytest.fixture(scope="module")
def stemmer():
    return Stemmer.Stemmer("english")


@pytest.fixture(scope="module")
def seed_chunks() -> list[Chunk]:
    return [chunk for seed in load_seeds(SEEDS) for chunk in chunk_seed(seed, 1)]


def _chunk(text: str, before: str = "", after: str = "") -> Chunk:
    return Chunk(source="a.txt", start=0, end=len(text), text=text, before=before, after=after)


def test_lexical_tokens_lower_case_drop_stopwords_and_stem(stemmer):
    texts = ["The Dombra songs!", "a an the", "Dombra lessons.", "Grandmother taught dombra.", "Tours."]
    assert lexical_tokens(texts, stemmer) == [
        ["dombra", "song"], [], ["dombra", "lesson"], ["grandmoth", "taught", "dombra"], ["tour"],
    ]


def _lucene(documents: int, frequency: int, length: int, mean_length: float) -> float:
    """Lucene's BM25 (bm25s's default: k1 1.5, b 0.75, no (k1 + 1) factor) of a term found once in a document."""
    idf = math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))
    return idf * 1 / (1 + 1.5 * (1 - 0.75 + 0.75 * length / mean_length))


def test_bm25_scores_of_a_small_corpus_by_hand():
    chunks = [_chunk("Dombra lessons."), _chunk("Grandmother taught dombra."), _chunk("Tours.", after="Dombra.")]
    lexical = LexicalIndex(*LexicalIndex.arrays_for(chunks))
    assert lexical.num_docs == 3
    assert list(lexical.terms) == ["dombra", "grandmoth", "lesson", "taught", "tour"]
    # Sentences of 2, 3 and 1 terms (mean 2); "lesson" and "tour" are in one each.
    scores = lexical.scores("text", lexical.term_ids(["lesson"]))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, [_lucene(3, 1, 2, 2), 0, 0], rtol=1e-6)
    tour = lexical.scores("text", lexical.term_ids(["tour"]))
    np.testing.assert_allclose(tour, [0, 0, _lucene(3, 1, 1, 2)], rtol=1e-6)
    assert tour[2] > scores[0]  # the shorter sentence weighs more
    # Repeated question terms count twice; unknown ones not at all.
    assert lexical.term_ids(["lesson", "zanzibar", "lesson"]) == [2, 2]
    np.testing.assert_array_equal(lexical.scores("text", [2, 2]), scores + scores)
    # The windows are a field of their own: 2, 3 and 2 terms, "dombra" in all three.
    np.testing.assert_allclose(
        lexical.scores("context", lexical.term_ids(["dombra"])),
        [_lucene(3, 3, 2, 7 / 3), _lucene(3, 3, 3, 7 / 3), _lucene(3, 3, 2, 7 / 3)], rtol=1e-6,
    )
    np.testing.assert_allclose(lexical.scores("text", lexical.term_ids(["dombra"]))[2], 0)
    # Document frequencies count sentences, not windows.
    assert lexical.document_frequency("dombra") == 2 and lexical.document_frequency("tour") == 1
    assert lexical.document_frequency("zanzibar") == 0
    assert set(lexical.words) == {"dombra", "lessons", "grandmother", "taught", "tours"}


def test_scores_are_bm25s_scores_to_the_bit(seed_chunks, stemmer):
    lexical = LexicalIndex(*LexicalIndex.arrays_for(seed_chunks))
    fields = {"text": [c.text for c in seed_chunks], "context": [c.context for c in seed_chunks]}
    questions = ["Who taught Sezim to play the dombra?", "debut album recorded", "grandmother village songs"]
    for field, texts in fields.items():
        model = bm25s.BM25()
        model.index(lexical_tokens(texts, stemmer), show_progress=False)
        for question in questions:
            tokens = [t for t in lexical_tokens([question], stemmer)[0] if t in model.vocab_dict]
            assert tokens, question
            expected = model.get_scores(tokens)
            assert np.any(expected > 0)
            np.testing.assert_array_equal(lexical.scores(field, lexical.term_ids(tokens)), expected)


def test_vocabulary_frequencies_and_words_of_the_seeds(seed_chunks, stemmer):
    lexical = LexicalIndex(*LexicalIndex.arrays_for(seed_chunks))
    text_tokens = lexical_tokens([c.text for c in seed_chunks], stemmer)
    context_tokens = lexical_tokens([c.context for c in seed_chunks], stemmer)
    assert set(lexical.terms) == {t for doc in text_tokens + context_tokens for t in doc}
    frequency = Counter(t for doc in text_tokens for t in set(doc))
    assert {t: lexical.document_frequency(t) for t in lexical.terms} == {t: frequency[t] for t in lexical.terms}
    assert set(lexical.words) == {w for c in seed_chunks for w in words(c.context)}
    assert lexical.num_docs == len(seed_chunks)


@pytest.mark.parametrize("size", ["small", "big"])
def test_lexical_bin_round_trips(tmp_path, seed_chunks, monkeypatch, size):
    if size == "big":  # memory-mapped
        monkeypatch.setattr(index_files, "MMAP_MIN_BYTES", 1)
    arrays, meta = LexicalIndex.arrays_for(seed_chunks)
    assert meta == {"num_docs": len(seed_chunks), "tokenizer": "bm25s en stopwords, english snowball stemmer"}
    built = LexicalIndex(arrays, meta)
    write_arrays(tmp_path / "lexical.bin", arrays, meta)
    opened = LexicalIndex.open(tmp_path / "lexical.bin")
    assert list(opened.terms) == list(built.terms) and list(opened.words) == list(built.words)
    ids = opened.term_ids(["dombra", "grandmoth", "album"])
    assert len(ids) == 3
    for field in LexicalIndex.FIELDS:
        np.testing.assert_array_equal(opened.scores(field, ids), built.scores(field, ids))


def test_matrices_that_do_not_fit_the_vocabulary_are_refused(seed_chunks):
    arrays, meta = LexicalIndex.arrays_for(seed_chunks)
    with pytest.raises(ValueError, match="do not match the vocabulary"):
        LexicalIndex({**arrays, "document_frequency": arrays["document_frequency"][:-1]}, meta)
    with pytest.raises(ValueError, match="do not match the vocabulary"):
        LexicalIndex({**arrays, "context_indptr": arrays["context_indptr"][:-1]}, meta)
