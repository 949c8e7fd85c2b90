"""Reading a question without a model: what it wants, what it names, what it leans on."""

from __future__ import annotations

import pytest

from bot.query import (
    Artist,
    answer_type_words,
    build_query,
    clean_question,
    is_arithmetic,
    normalize_question,
    overview_of,
    plain_spelling,
    refer_to_artist,
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
        ("hey can u tell me where she grew up", "where she grew up"),
        ("could u pls tell me who taught her", "who taught her"),
        # Nothing inside the frame, or no frame: unchanged.
        ("Tell me about", "Tell me about"),
        ("Do you know?", "Do you know?"),
        ("Who told me about her?", "Who told me about her?"),
        ("What do you think about her?", "What do you think about her?"),
    ],
)
def test_polite_frames_are_taken_off_the_question(framed, inner):
    assert strip_request_frame(framed) == inner
    assert build_query(clean_question(framed)).question == inner


ARTIST = Artist(called="Sezim", name_words=frozenset({"sezim", "baktybekova"}))


@pytest.mark.parametrize(
    "question, read",
    [
        ("Where is she from?", "Where is Sezim from?"),
        ("what country is she from", "what country is Sezim from"),
        ("did her grandma teach her anything", "did Sezim's grandma teach Sezim anything"),
        ("who got her into music", "who got Sezim into music"),
        ("Who taught her?", "Who taught Sezim?"),
        ("is this album hers", "is this album Sezim's"),
        ("did they pay her well", "did they pay Sezim well"),  # "her" before an adverb is no possessive
        ("Where did Shelly study?", "Where did Shelly study?"),
    ],
)
def test_she_and_her_are_the_artist(question, read):
    assert refer_to_artist(question, ARTIST) == read


def test_a_query_reads_she_as_the_artist_in_the_question_and_the_one_it_follows():
    history = [{"role": "user", "content": "What is her debut album called?"}]
    query = build_query("Was it a success for her?", history, artist=ARTIST)
    assert query.question == "Was it a success for Sezim?"
    assert query.follow_up_of == "What is Sezim's debut album called?"
    assert query.name_words == {"sezim", "baktybekova"}
    assert build_query("Where is she from?").question == "Where is she from?"  # no artist, no reading


@pytest.mark.parametrize(
    "typed, plain",
    [
        ("wat kind of music does she make", "what kind of music does she make"),
        ("wen does the tour start", "when does the tour start"),
        ("wher does she get ideas for her songs", "where does she get ideas for her songs"),
        ("has she forgotten where shes from", "has she forgotten where she's from"),
        ("whats her first album called", "what's her first album called"),
        ("can u tell me abt her", "can you tell me about her"),
        # Not chat spellings: a name with a digit, a word that merely contains one.
        ("Is U2 her favourite band?", "Is U2 her favourite band?"),
        ("What was she wearing in Bucharest?", "What was she wearing in Bucharest?"),
    ],
)
def test_chat_spellings_are_written_out(typed, plain):
    assert plain_spelling(typed) == plain
    assert build_query(typed).question == plain


@pytest.mark.parametrize(
    "question, sum_",
    [
        ("what's 2+2", True),
        ("whats 15 times 12", True),
        ("calculate 3.5 * 2?", True),
        ("how much is 10 divided by 2", True),
        ("what year did she start", False),
        ("2025 tour dates", False),
        ("is 12 + 3 her age", False),
    ],
)
def test_a_sum_is_recognised_as_a_sum(question, sum_):
    assert is_arithmetic(question) is sum_



@pytest.mark.parametrize(
    "fan, artist, overview",
    [
        ("tell me about her", ARTIST, "Who is Sezim?"),
        ("what do you know about sezim baktybekova", ARTIST, "Who is Sezim?"),
        ("what's her story?", ARTIST, "Who is Sezim?"),
        ("SEZIM!!!", ARTIST, "Who is Sezim?"),
        ("tell me about the band", None, "Who are they?"),
        ("who are they?", None, None),  # after a question: "they" may be whoever it named
        ("who is he", ARTIST, None),  # not her: someone the chat named
        # A topic of hers is a question of its own; a question naming no one is not about her.
        ("tell me about her childhood", ARTIST, None),
        ("what about her debut album?", ARTIST, None),
        ("tell me about the weather", ARTIST, None),
        ("what is it", ARTIST, None),
    ],
)
def test_a_question_about_the_artist_as_a_whole_asks_who_she_is(fan, artist, overview):
    question = clean_question(fan)
    # After a question about her album, "tell me about her" is about her, not a follow-up on the album.
    query = build_query(question, [{"role": "user", "content": "What is her debut album called?"}], artist=artist)
    assert overview_of(question, artist, follows_a_question=True) == overview
    if overview is not None:
        assert query.question == overview and query.follow_up_of is None
    else:
        assert not query.question.startswith("Who ")


def test_they_are_the_band_when_nothing_was_asked_before():
    assert build_query(clean_question("who are they?")).question == "Who are they?"
    assert overview_of(clean_question("what do you know about them"), None) == "Who are they?"
    assert overview_of(clean_question("what do you know about them"), None, follows_a_question=True) is None
