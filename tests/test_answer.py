"""Grounded answers from the real model and index over the shipped seeds."""

from __future__ import annotations

import time
import typing

import pytest

import bot as bot_package
from bot import Answer, Passage
from bot.answer import AnswerKind

from conftest import DOMBRA, SEEDS, SEZIM_FILE, assert_quoted_verbatim, built_bot, copy_seeds

ALBUM = "What is her debut album called?"

QUESTIONS = [
    DOMBRA,
    ALBUM,
    "Where is Sezim from?",
    "Which jazz singer made her want a career in music?",
    "Where did she study music?",
    "Where does she find inspiration for her lyrics?",
    "What instruments did she blend with jazz?",
    "Is Sezim married?",
    "What is the capital of France?",
]


def assert_valid(reply) -> None:
    """The shape every reply has, whatever the question."""
    assert isinstance(reply, Answer)
    assert isinstance(reply.text, str) and reply.text.strip()
    assert isinstance(reply.refused, bool)
    assert reply.kind in typing.get_args(AnswerKind)
    assert all(isinstance(p, Passage) for p in reply.citations)
    if reply.refused:
        assert reply.citations == []
    if reply.kind == "answer":
        assert not reply.refused and reply.citations


def assert_grounded(bot, reply) -> None:
    """Every quoted sentence is in the seed file at its cited offsets, and in the text."""
    assert_valid(reply)
    if reply.refused or reply.kind != "answer":
        assert reply.citations == []
        return
    position = 0
    for passage in reply.citations:
        assert_quoted_verbatim(bot.config.seeds_dir, passage)
        # Quoted in the order cited; persona words may surround, never replace, it.
        found = reply.text.find(passage.text, position)
        assert found >= 0, f"{passage.text!r} is cited but not in {reply.text!r}"
        position = found + len(passage.text)


@pytest.mark.parametrize("question", QUESTIONS)
def test_answer_sentences_occur_verbatim_at_the_cited_offsets(sezim_bot, question):
    assert_grounded(sezim_bot, sezim_bot.answer(question))


def test_answer_text_is_the_quoted_sentences(sezim_bot):
    answered = [r for r in map(sezim_bot.answer, QUESTIONS) if not r.refused]
    assert len(answered) >= 5
    for reply in answered:
        # Extractive: one or two sentences from the seeds, nothing else with facts in it.
        assert 1 <= len(reply.citations) <= 2
        quoted = " ".join(p.text for p in reply.citations)
        assert len(reply.text) - len(quoted) < 80, reply.text


def test_retrieve_returns_scored_passages_from_the_seeds(sezim_bot):
    passages = sezim_bot.retrieve(DOMBRA, k=5)
    assert len(passages) == 5
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert len({(p.source, p.start) for p in passages}) == 5
    for passage in passages:
        assert passage.source == SEZIM_FILE
        assert_quoted_verbatim(sezim_bot.config.seeds_dir, passage)
    assert "grandmother" in passages[0].text
    assert len(sezim_bot.retrieve(DOMBRA, k=2)) == 2


def test_who_taught_sezim_the_dombra(sezim_bot):
    reply = sezim_bot.answer(DOMBRA)
    assert not reply.refused and reply.kind == "answer"
    assert "grandmother" in reply.text.lower()
    assert any(p.source == SEZIM_FILE and "grandmother" in p.text for p in reply.citations)
    assert_grounded(sezim_bot, reply)


def test_is_sezim_married_is_refused(sezim_bot):
    reply = sezim_bot.answer("Is Sezim married?")
    assert reply.refused and reply.kind == "refusal", reply.text
    assert reply.citations == []
    # In the persona's voice, from seeds/persona.toml.
    assert reply.text == sezim_bot.persona.refusal_text()
    assert sezim_bot.persona.say(sezim_bot.persona.refusal) in reply.text


def test_follow_up_uses_the_history(sezim_bot):
    first = sezim_bot.answer(ALBUM)
    assert not first.refused and "Steppes and Sighs" in first.text
    history = [{"role": "user", "content": ALBUM}, {"role": "assistant", "content": first.text}]
    reply = sezim_bot.answer("Was it successful?", history)
    assert not reply.refused, reply.text
    assert "critical and commercial success" in reply.text
    assert_grounded(sezim_bot, reply)


@pytest.mark.parametrize(
    "message, line",
    [
        ("Hello!", "greeting"),
        ("hi there", "greeting"),
        ("  Good morning  ", "greeting"),
        ("Thanks!", "thanks"),
        ("thank you so much", "thanks"),
        ("Who are you?", "about"),
        ("what's your name?", "about"),
    ],
)
def test_small_talk_gets_a_persona_reply_without_retrieval(tmp_path, make_bot, message, line):
    # A bot whose index was never built: small talk must not need it.
    bot = make_bot(copy_seeds(SEEDS, tmp_path / "seeds"), tmp_path / "index")
    reply = bot.answer(message)
    assert reply.kind == "small_talk" and not reply.refused and reply.citations == []
    assert reply.text == bot.persona.say(getattr(bot.persona, line))
    assert bot._retriever is None and not (tmp_path / "index").exists()


def test_questions_that_merely_start_with_a_greeting_are_answered(sezim_bot):
    reply = sezim_bot.answer("Hi! " + DOMBRA)
    assert reply.kind != "small_talk" and not reply.refused
    assert "grandmother" in reply.text


@pytest.mark.parametrize("question", ["", "   ", "\n\t ", "?!", "\x00\x01"])
def test_empty_question_gets_a_friendly_prompt(sezim_bot, question):
    reply = sezim_bot.answer(question)
    assert reply.kind == "invalid" and reply.citations == []
    assert reply.text == sezim_bot.persona.say(sezim_bot.persona.empty_question)
    # Nothing to search for, so nothing is retrieved either.
    assert sezim_bot.retrieve(question) == []


def test_a_100kb_question_is_handled_quickly(sezim_bot):
    question = ("Who taught Sezim to play the dombra and why? " * 2300)[:100_000]
    assert len(question) == 100_000
    started = time.perf_counter()
    reply = sezim_bot.answer(question)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0
    assert_valid(reply)
    assert reply.kind == "invalid" and reply.citations == []
    assert str(sezim_bot.config.max_question_chars) in reply.text
    # Retrieval on the same text is cut to size instead of failing.
    started = time.perf_counter()
    passages = sezim_bot.retrieve(question, k=3)
    assert time.perf_counter() - started < 10.0 and len(passages) == 3


#: Odd input and what the bot does with it: its kind of reply, and a word
#: the quoted answer must hold (None: nothing is quoted).
STRANGE = [
    ("Who taught Sezim\x00 to play the\x07 dombra?\x1b[31m", "answer", "grandmother"),
    ("Who taught Sezim to play the dombra?\u200b\u202e\u2066", "answer", "grandmother"),
    ("من علّم سزيم العزف على الدومبرا؟", "other_language", None),
    ("מי לימד את סזים לנגן?", "other_language", None),
    ("Сезимге домбыра тартуды кім үйретті?", "other_language", None),
    ("谁教Sezim弹冬不拉？", "other_language", None),
    ("🎤🎶 Who taught Sezim to play the dombra? 🪕✨", "answer", "grandmother"),
    ("👩‍👧 ❤️", "invalid", None),
    ("<script>alert('x')</script> Who taught Sezim to play the dombra?", "answer", "grandmother"),
    ("<b>Is Sezim married?</b><img src=x onerror=alert(1)>", "refusal", None),
    ("'; DROP TABLE seeds; --", "refusal", None),
    ("whats 15 times 12", "refusal", None),  # a sum: the digits and "times" match dates and "time"
    ("{bot} {artist} {0} %s %(x)s", "refusal", None),
    ("\udcff lone surrogate", "refusal", None),
    ("a" * 999, "refusal", None),
    # A word and no question, repeated: read as a search for it, answered from the sentences naming it.
    ("dombra " * 140, "answer", "dombra"),
]


@pytest.mark.parametrize("question, kind, quoted", STRANGE, ids=range(len(STRANGE)))
def test_strange_input_gives_a_valid_answer(sezim_bot, question, kind, quoted):
    reply = sezim_bot.answer(question)
    assert_grounded(sezim_bot, reply)
    assert reply.kind == kind, reply.text
    if quoted is None:
        assert reply.citations == []
    else:
        assert quoted in reply.text.lower()
    assert "<script" not in reply.text and "onerror" not in reply.text
    reply.to_dict()  # serialisable


@pytest.mark.parametrize(
    "noisy",
    [
        "Who taught Sezim\x00 to play the\x07 dombra?\x7f",
        "\ufeffWho taught Sezim to\u200b play the dombra?\u202e\u2066",
        "Who   taught\tSezim\r\nto play the dombra?  ",
    ],
)
def test_control_and_bidi_characters_are_ignored(sezim_bot, noisy):
    assert sezim_bot.answer(noisy).to_dict() == sezim_bot.answer(DOMBRA).to_dict()


@pytest.mark.parametrize(
    "wrapped",
    [
        "<script>alert('x')</script> Who taught Sezim to play the dombra?",
        "<b>Who taught Sezim to play the dombra?</b><img src=x onerror=alert(1)>",
    ],
)
def test_html_around_a_question_does_not_change_the_answer(sezim_bot, wrapped):
    assert sezim_bot.answer(wrapped).to_dict() == sezim_bot.answer(DOMBRA).to_dict()


@pytest.mark.parametrize("frame", ["Can you tell me {}", "Do you know {}", "{} Please"])
@pytest.mark.parametrize("question", [DOMBRA, ALBUM, "Where did she study music?", "Is Sezim married?"])
def test_a_politely_framed_question_gets_the_plain_answer(sezim_bot, frame, question):
    plain = sezim_bot.answer(question)
    framed = sezim_bot.answer(frame.format(question[0].lower() + question[1:]))
    assert framed.refused == plain.refused
    assert [p.start for p in framed.citations] == [p.start for p in plain.citations]


@pytest.mark.parametrize("question", ["tell me about her", "what do you know about her", "her story?", "Sezim?"])
def test_a_fan_asking_about_her_as_a_whole_is_told_who_she_is(sezim_bot, question):
    # Not whichever sentence names her first ("Sezim's debut album...").
    reply = sezim_bot.answer(question)
    assert reply.citations[0].text == "Sezim Baktybekova was a talented young singer from rural Kazakhstan."


@pytest.mark.parametrize("question", ["Who is Sezim?", "who is sezim"])
def test_question_words_are_not_search_terms(sezim_bot, question):
    # "who" is in "listeners ... who were captivated"; the question is about her.
    reply = sezim_bot.answer(question)
    assert reply.citations[0].text == "Sezim Baktybekova was a talented young singer from rural Kazakhstan."


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("Where is Sezm from?", "Where is Sezim from?"),
        ("Who taught Sezim to play the dombro?", DOMBRA),
        ("What is her debut albm called?", ALBUM),
    ],
)
def test_misspelt_seed_words_get_the_same_answer(sezim_bot, typed, meant):
    assert sezim_bot.answer(typed).to_dict() == sezim_bot.answer(meant).to_dict()
    assert [p.start for p in sezim_bot.retrieve(typed)] == [p.start for p in sezim_bot.retrieve(meant)]


@pytest.mark.parametrize(
    "question, word, read_as",
    [
        # Not seed words: mended to the English word meant, which the seeds do not use either.
        ("Is Sezim maried?", "maried", "married"),
        ("Does she play the pianno?", "pianno", "piano"),
        ("What did she love about jazz?", "love", "love"),  # an English word: left alone ("live" is in the seeds)
    ],
)
def test_mending_typos_never_turns_a_word_into_a_seed_word_it_is_not(sezim_bot, question, word, read_as):
    read = sezim_bot.read(question).question.rstrip("?").split()
    assert read_as in read
    if word != read_as:
        assert word not in read and read_as not in sezim_bot.retriever.words


def test_a_question_naming_the_kind_of_answer_is_answered(sezim_bot):
    # "cause" appears nowhere in the seed: the answer names the cause, not the word.
    reply = sezim_bot.answer("What cause is she committed to?")
    assert not reply.refused
    assert "preserving the rich cultural heritage of Kazakhstan" in reply.text
    # The same question about a kind of thing the seed never mentions at all is refused.
    assert sezim_bot.answer("What charity does she donate to?").refused


def test_non_string_questions_do_not_crash(sezim_bot):
    assert_valid(sezim_bot.answer(None))
    assert_valid(sezim_bot.answer(42))


@pytest.mark.parametrize(
    "history",
    [
        [],
        [{"role": "user"}],
        [{"role": "assistant", "content": "Hello"}],
        [{"role": "user", "content": None}, "not a message", 7],
    ],
)
def test_histories_without_a_fan_question_are_no_history(sezim_bot, history):
    reply = sezim_bot.answer("Was it successful?", history)
    assert reply.to_dict() == sezim_bot.answer("Was it successful?", None).to_dict()
    assert reply.kind == "answer" and "critical and commercial success" in reply.text


def test_a_huge_previous_message_does_not_drown_the_question(sezim_bot):
    history = [{"role": "user", "content": "x" * 100_000}]
    reply = sezim_bot.answer("Was it successful?", history)
    assert_grounded(sezim_bot, reply)
    assert reply.kind == "answer" and "critical and commercial success" in reply.text


def test_same_inputs_give_the_same_answer(sezim_bot, make_bot):
    history = [{"role": "user", "content": ALBUM}, {"role": "assistant", "content": "..."}]
    cases = [(q, None) for q in QUESTIONS] + [("Was it successful?", history)]
    first = [sezim_bot.answer(q, h).to_dict() for q, h in cases]
    assert [sezim_bot.answer(q, h).to_dict() for q, h in cases] == first
    # A second bot over the same seeds and index says exactly the same.
    other = make_bot(sezim_bot.config.seeds_dir, sezim_bot.config.index_dir)
    assert other.ensure_index() is None
    assert [other.answer(q, h).to_dict() for q, h in cases] == first


def test_module_level_api_uses_the_environment(tmp_path, monkeypatch):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    monkeypatch.setenv("BOT_SEEDS", str(seeds))
    monkeypatch.setenv("BOT_INDEX", str(tmp_path / "index"))
    bot_package.default_bot.cache_clear()
    try:
        reply = bot_package.answer(DOMBRA)
        assert not reply.refused and "grandmother" in reply.text
        assert (tmp_path / "index" / "CURRENT").is_file()
        assert bot_package.retrieve(DOMBRA, k=1)[0].source == SEZIM_FILE
    finally:
        bot_package.default_bot.cache_clear()


#: A biography written here, and a persona that names its artist.
MIRA_SEED = (
    "Mira Sato is a cellist from Sapporo, in the north of Japan. "
    "Her teacher at the conservatory was the cellist Ken Ito. "
    "Her first album, Snow Country, won the Critics' Prize in 2020. "
    "She now lives in Berlin and plays with the Spree Quartet."
)


@pytest.fixture(scope="module")
def mira_bot(tmp_path_factory, embedder):
    files = {"mira.txt": MIRA_SEED, "persona.toml": 'artist_name = "Mira Sato"\n'}
    return built_bot(tmp_path_factory.mktemp("mira"), embedder, files)


@pytest.mark.parametrize(
    "pronoun, name",
    [
        ("Where is she from?", "Where is Mira from?"),
        ("Who was her teacher?", "Who was Mira's teacher?"),
        ("what is her first album called", "what is Mira Sato's first album called"),
    ],
)
def test_she_and_her_mean_the_artist(mira_bot, pronoun, name):
    by_pronoun, by_name = mira_bot.answer(pronoun), mira_bot.answer(name)
    assert by_pronoun.to_dict() == by_name.to_dict()


def test_where_is_she_from_is_answered_from_where_she_is_from(mira_bot):
    reply = mira_bot.answer("Where is she from?")
    assert reply.kind == "answer" and "Sapporo" in reply.text


def test_an_artist_name_the_seeds_never_use_is_not_read_into_she(tmp_path, make_bot):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "mira.txt").write_text(MIRA_SEED, encoding="utf-8")
    (seeds / "persona.toml").write_text('artist_name = "Someone Else"\n', encoding="utf-8")
    bot = make_bot(seeds, tmp_path / "index")
    assert bot.read("Where is she from?").question == "Where is she from?"


def test_chat_spelling_gets_the_written_answer(sezim_bot):
    chat, written = sezim_bot.answer("whats her debut album called"), sezim_bot.answer("what's her debut album called")
    assert chat.kind == "answer" and "Steppes and Sighs" in chat.text
    assert [p.start for p in chat.citations] == [p.start for p in written.citations]


def test_chat_words_do_not_turn_a_question_into_one_the_seeds_cannot_answer(sezim_bot):
    # "get" and "tho" are in no seed; they name no topic either.
    reply = sezim_bot.answer("how did she get into jazz tho")
    assert reply.kind == "answer" and "Billie Holiday" in reply.text, reply.text
