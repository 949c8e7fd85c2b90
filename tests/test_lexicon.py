"""Words related in meaning (bot/lexicon): the shipped WordNet table, its exporter, and fans' words in answers."""

from __future__ import annotations

import gzip

import pytest

from bot.lexicon import related_words
from bot.lexicon.wordnet_export import export
from bot.lexicon.wordnet_export import related_words as exported_words

from conftest import built_bot


def test_the_shipped_table_relates_fans_words_to_the_documents_words():
    assert {"celebrated", "renowned"} <= related_words("famous")
    assert "grandmother" in related_words("grandma")
    assert "success" in related_words("hit")  # a broader term
    assert related_words("Famous") == related_words("famous")
    assert related_words("sezim") == frozenset() and related_words("") == frozenset()


def _wordnet(folder, synsets):
    """A WordNet database in its own format (wndb(5WN)) with the given noun synsets.

    ``synsets`` maps a key to (words, [(pointer symbol, target key)]); offsets are
    byte positions, so each line is written with its own.
    """
    keys = list(synsets)
    offsets, position = {}, 0
    for key in keys:
        offsets[key] = position
        position += len(_line(0, synsets[key], {k: 0 for k in keys})) + 1
    data = "".join(_line(offsets[key], synsets[key], offsets) + "\n" for key in keys)
    index: dict[str, list[int]] = {}
    for key in keys:
        for word in synsets[key][0]:
            index.setdefault(word, []).append(offsets[key])
    lines = [f"{w} n {len(o)} 0 {len(o)} 0 " + " ".join(f"{x:08d}" for x in o) for w, o in sorted(index.items())]
    (folder / "data.noun").write_text(data, encoding="latin-1")
    (folder / "index.noun").write_text("  1 licence header line\n" + "\n".join(lines) + "\n", encoding="latin-1")
    for part in ("verb", "adj", "adv"):
        (folder / f"data.{part}").write_text("", encoding="latin-1")
        (folder / f"index.{part}").write_text("", encoding="latin-1")
    return folder


def _line(offset, synset, offsets):
    words, pointers = synset
    listed = " ".join(f"{w} 0" for w in words)
    linked = " ".join(f"{symbol} {offsets[target]:08d} n 0000" for symbol, target in pointers)
    return f"{offset:08d} 03 n {len(words):02x} {listed} {len(pointers):03d} {linked} | a gloss"


def test_the_exporter_reads_synonyms_and_broader_and_narrower_terms(tmp_path):
    wordnet = _wordnet(
        tmp_path,
        {
            "hit": (["hit", "smash", "blockbuster"], [("@", "success")]),
            "success": (["success"], [("~", "hit")]),
            "luck": (["luck", "fortune", "good_luck"], [("!", "success")]),  # antonyms: not followed
        },
    )
    words = exported_words(wordnet)
    assert words["hit"] == {"smash", "blockbuster", "success"}
    assert words["success"] == {"hit", "smash", "blockbuster"}
    assert words["luck"] == {"fortune"}  # "good_luck" is no single word; the "!" pointer is not followed
    table = tmp_path / "table.tsv.gz"
    assert export(wordnet, table) == len(words)
    first = table.read_bytes()
    assert gzip.decompress(first).decode().splitlines()[0] == "blockbuster\thit smash success"
    export(wordnet, table)
    assert table.read_bytes() == first  # the same WordNet gives the same bytes
    assert (tmp_path / "WORDNET-LICENSE.txt").exists()  # its notice goes with every copy


def test_the_shipped_table_carries_wordnets_licence_notice():
    from importlib import resources

    notice = resources.files("bot.lexicon").joinpath("WORDNET-LICENSE.txt").read_text(encoding="utf-8")
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in notice


MIRA = (
    "Mira Sato is a cellist from Sapporo, in the north of Japan. "
    "Her teacher at the conservatory was the cellist Ken Ito. "
    "Today she is celebrated across Europe for her recordings of Bach. "
    "She now lives in Berlin and plays with the Spree Quartet."
)


@pytest.fixture(scope="module")
def mira_bot(tmp_path_factory, embedder):
    return built_bot(tmp_path_factory.mktemp("mira"), embedder, {"mira.txt": MIRA})


@pytest.mark.parametrize(
    "question, answer",
    [
        ("is she famous?", "celebrated across Europe"),
        ("where does she reside", "lives in Berlin"),
        # Misspelt, and a word the documents never use: mended to "famous" first.
        ("is she famus?", "celebrated across Europe"),
    ],
)
def test_a_fans_word_the_documents_never_use_finds_the_documents_word(mira_bot, question, answer):
    reply = mira_bot.answer(question)
    assert reply.kind == "answer" and answer in reply.citations[0].text


def test_related_words_do_not_make_a_question_the_documents_cannot_answer_answerable(mira_bot):
    for question in ("is she married?", "does she have kids", "what is her favourite food"):
        assert mira_bot.answer(question).kind == "refusal", question


def test_the_table_is_read_on_the_first_word_the_documents_never_use(mira_bot):
    from bot import Bot
    from bot.lexicon import _table

    _table.cache_clear()  # a test before may have read it in this process
    related_words.cache_clear()
    fresh = Bot(mira_bot.config)  # loads the index and the model, as `bot ask` does
    assert fresh.answer("where does she live now").kind == "answer"  # every word is the documents'
    assert _table.cache_info().currsize == 0
    assert fresh.answer("where does she dwell").kind in {"answer", "refusal"}
    assert _table.cache_info().currsize == 1
