"""Reading a question without a model: what it wants, what it names, what it leans on."""

from __future__ import annotations

import pytest

from bot.query import (
    answer_type_words,
    build_query,
    correct_typos,
    normalize_question,
    strip_request_frame,
    wanted_answer,
)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What cause is she committed to?", {"cause"}),
        ("Which jazz singer made her want a career in music?", {"jazz", "singer"}),
        ("What kind of deal did the record label give her?", {"deal"}),
        ("In what year was the album released?", {"year"}),
        ("And which instruments does she play?", {"instruments"}),
        ("What is her debut album called?", set()),
        ("Which of her songs is the best?", set()),
        ("Who taught her to play the dombra?", set()),
        ("what", set()),
    ],
)
def test_answer_type_words_name_the_kind_of_answer(question, expected):
    assert answer_type_words(question) == expected


@pytest.mark.parametrize(
    "question, expected",
    [
        ("When was she born?", "date"),
        ("In what year did it come out?", "date"),
        ("How many albums has she made?", "number"),
        ("Who taught her?", "name"),
        ("Where did she study?", "name"),
        ("Why does she sing?", None),
    ],
)
def test_wanted_answer(question, expected):
    assert wanted_answer(question) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("<script>alert(1)</script> Who is Sezim?", "Who is Sezim?"),
        ("<SCRIPT type='x'>\nalert(1)\n</SCRIPT >Who is Sezim?", "Who is Sezim?"),
        ("<style>p {color: red}</style>Who is Sezim?", "Who is Sezim?"),
        ("<b>Is Sezim married?</b><img src=x onerror=alert(1)>", "Is Sezim married?"),
        ("Who is <i>Sezim</i>? <script>never closed", "Who is Sezim ?"),
        ("<img src=x onerror=alert(1)>", ""),
        # Not tags: a less-than sign, a heart, an arrow.
        ("Is 3 < 5 and 6 > 4?", "Is 3 < 5 and 6 > 4?"),
        ("I <3 her songs -> which is best?", "I <3 her songs -> which is best?"),
    ],
)
def test_html_tags_and_code_are_dropped_from_questions(raw, expected):
    assert normalize_question(raw) == expected


def test_a_follow_up_carries_the_previous_question():
    history = [{"role": "user", "content": "What is her debut album called?"}, {"role": "assistant", "content": "..."}]
    assert build_query("Was it successful?", history).follow_up_of == "What is her debut album called?"
    assert build_query("Where did Sezim study music?", history).follow_up_of is None
    assert build_query("Was it successful?", None).follow_up_of is None
    framed = [{"role": "user", "content": "Can you tell me about her debut album?"}]
    assert build_query("Was it successful?", framed).follow_up_of == "her debut album?"


@pytest.mark.parametrize(
    "framed, inner",
    [
        ("Can you tell me about her debut album?", "her debut album?"),
        ("Could you please tell me where she is from?", "where she is from?"),
        ("Do you know where she studied?", "where she studied?"),
        ("What do you know about her music?", "her music?"),
        ("I'd like to know who taught her the dombra", "who taught her the dombra"),
        ("Hey, tell me something interesting about Sezim", "Sezim"),
        ("Tell me more about her live shows", "her live shows"),
        ("Where is she from, please?", "Where is she from?"),
        # Nothing inside the frame, or no frame: unchanged.
        ("Tell me about", "Tell me about"),
        ("Do you know?", "Do you know?"),
        ("Who told me about her?", "Who told me about her?"),
        ("What do you think about her?", "What do you think about her?"),
    ],
)
def test_polite_frames_are_taken_off_the_question(framed, inner):
    assert strip_request_frame(framed) == inner
    assert build_query(framed).question == inner


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
    from bot.query import MAX_TYPO_LETTERS, MAX_TYPO_WORDS

    is_english = ENGLISH.__contains__
    # The same typo twice is one word looked at, mended in both places.
    assert correct_typos("Sezm, Sezm!", SEED_WORDS, is_english) == "Sezim, Sezim!"
    gibberish = " ".join(f"qx{chr(97 + i)}zv" for i in range(MAX_TYPO_WORDS))
    assert correct_typos(f"{gibberish} Sezm", SEED_WORDS, is_english) == f"{gibberish} Sezm"
    long_word = "dombra" + "x" * MAX_TYPO_LETTERS
    assert correct_typos(long_word, SEED_WORDS | {long_word[:-1]}, is_english) == long_word


def test_build_query_mends_the_question_and_the_one_it_follows():
    history = [{"role": "user", "content": "What is her debut albm called?"}]
    query = build_query("Was it a sucess?", history, spell=lambda text: correct_typos(text, SEED_WORDS | {"success"}, ENGLISH.__contains__))
    assert query.question == "Was it a success?"
    assert query.follow_up_of == "What is her debut album called?"
