"""Who the seeds are about when the persona does not say (bot/artist.py), and "she"/"he" read as them."""

from __future__ import annotations

import pytest

from bot.artist import Subject, pronoun_of, subject_of
from bot.query import Artist, artist_as_pronoun, refer_to_artist

from conftest import built_bot

MIRA = [
    "Mira Sato is a cellist from Sapporo, in the north of Japan.",
    "As a child, Mira practised in her grandmother's kitchen.",
    "Her teacher at the conservatory was the cellist Ken Ito.",
    "Mira's first album, Snow Country, won the Critics' Prize in 2020.",
    "She now lives in Berlin and plays with the Spree Quartet.",
    "In 2023 Mira Sato toured Japan with her own trio.",
]
AKIRA = [
    "Akira Mori is a jazz drummer from Osaka.",
    "Akira learned to play on his father's drum kit.",
    "His debut record, Night Train, came out in 2019.",
    "He lives in Kyoto, where Akira runs a small club.",
    "Critics call Akira Mori the busiest drummer in Kansai.",
]
BAND = [
    "The Steppe Lights are a folk band from Almaty.",
    "They formed in 2016 when Kairat met Aigerim on the Arbat.",
    "Aigerim plays the kobyz; she learned it at school.",
    "Kairat writes most of the lyrics on trains.",
    "He says the band's name comes from truck headlights.",
    "Their second album came out in 2025.",
]


def test_a_biography_is_about_the_person_it_names_most_and_their_pronoun():
    assert subject_of(MIRA) == Subject(name="Mira Sato", pronoun="she")
    assert subject_of(AKIRA) == Subject(name="Akira Mori", pronoun="he")


def test_a_band_or_a_subject_named_in_few_sentences_is_no_one_person():
    assert subject_of(BAND) is None  # "she" (Aigerim) and "he" (Kairat) alike: no clear pronoun
    diluted = MIRA[:1] + [f"The hall seats {n} hundred people and opened in 19{n}0." for n in range(2, 9)]
    assert subject_of(diluted) is None  # Mira in 1 of 8 sentences
    assert subject_of([]) is None


def test_the_name_is_its_longest_form_used_more_than_once():
    once = ["Akira Hideo Mori plays drums."] + AKIRA
    assert subject_of(once).name == "Akira Mori"
    assert subject_of(AKIRA[:4]).name == "Akira"  # "Akira Mori" only once


def test_dates_name_no_one():
    tour = [f"Mira Sato plays Berlin on {d} September; she flies home in September." for d in range(1, 9)]
    assert subject_of(tour) == Subject(name="Mira Sato", pronoun="she")


def test_a_capitalised_word_also_written_in_lower_case_is_no_name():
    texts = [f"The Steppe at dawn; the steppe at noon; the steppe again {n}." for n in range(5)]
    assert subject_of(texts) is None


def test_the_pronoun_is_the_one_that_clearly_outnumbers_the_other():
    assert pronoun_of(MIRA) == "she" and pronoun_of(AKIRA) == "he"
    assert pronoun_of(MIRA + AKIRA) is None and pronoun_of(BAND) is None
    assert pronoun_of(["She sings.", "Her voice."]) is None  # too few to tell


def test_he_and_his_read_as_the_artist_and_back():
    akira = Artist(called="Akira", name_words=frozenset({"akira", "mori"}), pronoun="he")
    assert refer_to_artist("Where is he from and what is his debut record?", akira) == (
        "Where is Akira from and what is Akira's debut record?"
    )
    assert refer_to_artist("Who taught him?", akira) == "Who taught Akira?"
    assert artist_as_pronoun("Where did Akira Mori grow up? Who taught Akira?", akira) == (
        "Where did he grow up? Who taught him?"
    )
    assert artist_as_pronoun("What is Akira's debut?", akira) == "What is his debut?"


@pytest.fixture(scope="module")
def bots(tmp_path_factory, embedder):
    """Bots over the same kind of biography without a persona.toml: the seeds alone say who she or he is."""
    mira = built_bot(tmp_path_factory.mktemp("mira"), embedder, {"mira.txt": " ".join(MIRA)})
    akira = built_bot(tmp_path_factory.mktemp("akira"), embedder, {"akira.txt": " ".join(AKIRA)})
    return mira, akira


@pytest.mark.parametrize(
    "which, pronoun, name",
    [
        (0, "Where is she from?", "Where is Mira from?"),
        (0, "Who was her teacher?", "Who was Mira's teacher?"),
        (1, "Where is he from?", "Where is Akira from?"),
        (1, "What is his debut record called?", "What is Akira's debut record called?"),
    ],
)
def test_without_a_persona_she_and_he_still_mean_the_artist(bots, which, pronoun, name):
    bot = bots[which]
    assert bot.read(pronoun).question == bot.read(name).question
    assert bot.answer(pronoun).to_dict() == bot.answer(name).to_dict()


def test_without_a_persona_where_is_she_from_finds_where_she_is_from(bots):
    mira, akira = bots
    assert "Sapporo" in mira.answer("where is she from").text
    assert "Osaka" in akira.answer("where is he from").text


def test_a_new_persona_naming_someone_else_changes_who_she_is(tmp_path, embedder):
    from bot.persona import Persona

    bot = built_bot(tmp_path, embedder, {"mira.txt": " ".join(MIRA)})
    assert bot.read("Where is she from?").question == "Where is Mira from?"
    bot.persona = Persona(artist_name="Someone Else")  # as bot serve does when persona.toml is edited
    assert bot.read("Where is she from?").question == "Where is she from?"
    bot.persona = Persona(artist_name="Mira Sato")
    assert bot.read("Where is she from?").question == "Where is Mira from?"
