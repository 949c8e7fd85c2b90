"""Mending misspelt seed words, without a model: one edit, unique, never an English word."""

from __future__ import annotations

import pytest

from bot.query import build_query
from bot.spelling import (
    ENGLISH_LEAD,
    ENGLISH_MIN_COUNT,
    MAX_TYPO_LETTERS,
    MAX_TYPO_WORDS,
    MIN_TYPO_LETTERS,
    correct_typos,
    load_english_words,
)

SEED_WORDS = {"sezim", "dombra", "album", "taught", "thought", "live", "liszt", "was", "studying"}
ENGLISH = {"love", "likely", "help", "study", "where", "what", "from", "called", "does", "play", "piano"}


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("Where is Sezm from?", "Where is Sezim from?"),  # a letter left out
        ("Who taught her the dombro?", "Who taught her the dombra?"),  # a letter changed
        ("What is her debut albm called?", "What is her debut album called?"),
        ("Where is Sezmi from?", "Where is Sezim from?"),  # two letters swapped
        ("What is Sezm's album?", "What is Sezim's album?"),  # a possessive keeps its 's
        ("where is sezm from", "where is sezim from"),  # case follows the fan's
        # Left alone: English words ("love" is not "live"), two seed words one edit
        # away ("tought": taught or thought?), a changed first letter, contractions,
        # short words, and names the seeds never use.
        ("What did she love?", "What did she love?"),
        ("Who tought her?", "Who tought her?"),
        ("Where is Bezim from?", "Where is Bezim from?"),
        ("It wasn't her", "It wasn't her"),
        ("Is it alive? Liv?", "Is it alive? Liv?"),
        ("Does she play the pianno?", "Does she play the pianno?"),
        ("Who is Beyoncé?", "Who is Beyoncé?"),
    ],
)
def test_typos_of_seed_words_are_mended(typed, meant):
    assert correct_typos(typed, SEED_WORDS, ENGLISH.__contains__) == meant


def test_typo_mending_looks_at_a_bounded_number_of_words():
    is_english = ENGLISH.__contains__
    # The same typo twice is one word looked at, mended in both places.
    assert correct_typos("Sezm, Sezm!", SEED_WORDS, is_english) == "Sezim, Sezim!"
    gibberish = " ".join(f"qx{chr(97 + i)}zv" for i in range(MAX_TYPO_WORDS))
    assert correct_typos(f"{gibberish} Sezm", SEED_WORDS, is_english) == f"{gibberish} Sezm"
    long_word = "dombra" + "x" * MAX_TYPO_LETTERS
    assert correct_typos(long_word, SEED_WORDS | {long_word[:-1]}, is_english) == long_word


def test_build_query_mends_the_question_and_the_one_it_follows():
    history = [{"role": "user", "content": "What is her debut albm called?"}]
    def spell(text):
        return correct_typos(text, SEED_WORDS | {"success"}, ENGLISH.__contains__)

    query = build_query("Was it a sucess?", history, spell=spell)
    assert query.question == "Was it a success?"
    assert query.follow_up_of == "What is her debut album called?"


def test_the_english_word_list_knows_words_and_not_typos():
    english = load_english_words()
    assert "love" in english and "where" in english and "grandmother" in english
    assert "sezm" not in english and "dombro" not in english
    # Words shorter than the shortest typo looked at are not kept: they are never asked about.
    assert len("the") < MIN_TYPO_LETTERS and "the" not in english


# Counts in an English corpus, for words of the tests' own (0: no English word).
COUNTS = {"famous": 80_000, "concerts": 2_000, "converts": 1_400, "karat": 300, "album": 12_000, "fist": 11_000,
          "first": 1_500_000}


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("is she famus?", "is she famous?"),  # no seed word near: the far commoner English word
        ("her frist song", "her first song"),  # "first" is over ENGLISH_LEAD times as common as "fist"
        ("what albm", "what album"),  # a seed word near is taken first, as before
        ("at her conserts", "at her conserts"),  # concerts or converts: too close to call
        ("who is kairat", "who is kairat"),  # "karat" is too rare to be what a fan meant
        ("is she famous?", "is she famous?"),
    ],
)
def test_a_typo_no_seed_word_is_near_becomes_the_clearly_meant_english_word(typed, meant):
    english = ENGLISH | set(COUNTS)
    assert correct_typos(typed, SEED_WORDS, english.__contains__, lambda w: COUNTS.get(w, 0)) == meant
    assert COUNTS["first"] >= ENGLISH_LEAD * COUNTS["fist"] and COUNTS["karat"] < ENGLISH_MIN_COUNT


def test_the_english_word_list_counts_how_common_a_word_is():
    english = load_english_words()
    assert english.count("famous") > ENGLISH_LEAD * english.count("favus") > 0
    assert english.count("famus") == 0 and english.count("the") == 0
    assert correct_typos("is she famus, wats her frist albun", set(), english.__contains__, english.count) == (
        "is she famous, wats her first album"
    )
