"""A fan's word meets the documents' word in another form, irregular ones included."""

from __future__ import annotations

import pytest

from bot import Bot, Config, Ranking
from bot.wordforms import other_forms

SEED = (
    "Growing up in a mountain village, Dana Ospan heard her uncle's songs every night. "
    "She taught herself the guitar at twelve. "
    "Her first concert sold out in an hour."
)


@pytest.mark.parametrize(
    "word, forms",
    [("grew", {"grow", "growing", "grown"}), ("taught", {"teach", "teaching"}), ("sang", {"sing", "sung"})],
)
def test_irregular_forms_are_known(word, forms):
    assert forms <= other_forms(word)
    assert word not in other_forms(word)


def test_unknown_words_have_no_forms():
    assert other_forms("xqzt") == frozenset()


@pytest.fixture(scope="module")
def lexical_bot(tmp_path_factory, embedder) -> Bot:
    """A bot ranking by BM25 alone, so that a match can only come from the words."""
    base = tmp_path_factory.mktemp("wordforms")
    (base / "seeds").mkdir()
    (base / "seeds" / "dana.txt").write_text(SEED, encoding="utf-8")
    ranking = Ranking(dense=0.0, context_dense=0.0, lexical=1.0, context_lexical=0.0, answer_type=0.0)
    bot = Bot(Config(seeds_dir=base / "seeds", index_dir=base / "index", ranking=ranking), embedder=embedder)
    bot.ensure_index()
    return bot


@pytest.mark.parametrize(
    "question, expected",
    [
        ("where did she grow up", "Growing up in a mountain village"),
        ("hey can u tell me where she grew up", "Growing up in a mountain village"),
        ("who teaches her guitar", "She taught herself the guitar"),
    ],
)
def test_lexical_matches_cross_irregular_forms(lexical_bot, question, expected):
    best = lexical_bot.retrieve(question, k=1)[0]
    assert best.text.startswith(expected)
    assert best.score > 0  # found by its words, not by a tie of zeros


def test_the_other_form_counts_for_coverage(lexical_bot):
    features = lexical_bot.judge("where did she grow up").features
    grew = lexical_bot.judge("where did she grew up").features
    assert features["unknown_words"] == grew["unknown_words"] == 0.0
    assert grew["coverage"] == 1.0  # "grew" is covered by "Growing"
