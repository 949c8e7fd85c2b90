"""Questions in another language get the persona's line, in the fan's language where it has one."""

from __future__ import annotations

import pytest

from bot import Bot
from bot.language import foreign_language
from bot.spelling import load_english_words

from conftest import built_bot

SEED = (
    "Aruzhan Temir is a singer from Shymkent. "
    "Her grandfather taught her to play the dombra when she was six. "
    "Her debut album, Salt Lake Songs, came out in 2021."
)
PERSONA = """
artist_name = "Aruzhan Temir"
other_language = "I only answer in English, sorry! Please ask me in English."

[languages]
ru = "Я отвечаю только по-английски. Спросите, пожалуйста, по-английски!"
kk = "Мен тек ағылшынша жауап беремін. Ағылшынша сұраңызшы!"
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory, embedder) -> Bot:
    return built_bot(tmp_path_factory.mktemp("languages"), embedder, {"aruzhan.txt": SEED, "persona.toml": PERSONA})


@pytest.mark.parametrize(
    "question, language",
    [
        ("Кто научил её играть на домбре?", "ru"),
        ("Откуда Аружан?", "ru"),
        ("Оған домбыра тартуды кім үйретті?", "kk"),
        ("Аружан қайдан шыққан?", "kk"),
    ],
)
def test_a_question_in_a_language_the_persona_speaks_gets_its_line(bot, question, language):
    reply = bot.answer(question)
    assert reply.kind == "other_language" and reply.refused and reply.citations == []
    assert reply.text == bot.persona.languages[language]


@pytest.mark.parametrize(
    "question", ["¿Quién le enseñó a tocar la dombra?", "Wer hat ihr das Dombraspielen beigebracht?"]
)
def test_another_language_gets_the_english_line(bot, question):
    reply = bot.answer(question)
    assert reply.kind == "other_language" and reply.text == bot.persona.other_language


@pytest.mark.parametrize(
    "question",
    [
        "Who taught her to play the dombra?",
        "who taugt her the dombra",
        "wher is she from",
        "Is Aruzhan big in Shymkent?",
    ],
)
def test_english_questions_typos_and_names_included_are_answered_as_english(bot, question):
    assert bot.answer(question).kind in {"answer", "refusal"}


def test_names_and_typos_alone_do_not_make_a_question_foreign():
    english = load_english_words()
    is_english = english.__contains__
    assert foreign_language("Chimamanda Ngozi Adichie vompared Lee to whom?", is_english, set()) is None
    assert foreign_language("is she famus outside kazakhstan", is_english, set()) is None
    assert foreign_language("", is_english, set()) is None and foreign_language("2+2?", is_english, set()) is None
