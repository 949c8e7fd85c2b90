"""A placeholder typo in persona.toml never breaks the bot (issue 15, item 9).

``refusal = "Sorry {name}, no."`` used to turn every refusal into an error
(a KeyError), and ``greeting = "Hi {0}!"`` stopped ``bot serve`` from
starting; since the persona reloads live, a typo made while serving broke
it at once. Now a wrong line is named in the log and the line in use stays.
"""

from __future__ import annotations

import logging

import pytest

from bot.persona import Persona, load_persona, placeholder_problem

from conftest import DOMBRA, FRANCE, SEEDS, copy_seeds

TYPOS = """
bot_name = "Aigerim"
artist_name = "Sezim"
greeting = "Hi {0}!"
refusal = "Sorry {name}, no."
thanks = "You're welcome, says {bot"
goodbye = "Bye from {bot.upper}!"
too_long = "Under {limit} characters please, {artist}."
about = "I'm {bot}, a guide to {artist}; braces are written {{like this}}."
topics = "her albums"
"""


def test_placeholder_problems_are_found_and_named():
    problem = placeholder_problem("refusal", "Sorry {name}, no.")
    assert problem == "unknown placeholder {name} (it may use {artist}, {bot})"
    assert "{0}" in placeholder_problem("greeting", "Hi {0}!")
    assert "{}" in placeholder_problem("greeting", "Hi {}!")
    assert "brace" in placeholder_problem("thanks", "Thanks from {bot")
    assert "brace" in placeholder_problem("thanks", "Thanks from bot}")
    assert placeholder_problem("goodbye", "Bye {bot.upper}") is not None
    assert placeholder_problem("goodbye", "Bye {artist[0]}") is not None
    assert placeholder_problem("refusal", "Sorry {limit}") is not None  # only too_long has {limit}
    for fine in ("Hi {bot}!", "About {artist}.", "{{literal}} {bot!r} {artist:>10}", "no placeholders"):
        assert placeholder_problem("greeting", fine) is None, fine
    assert placeholder_problem("too_long", "Under {limit} characters") is None


def test_a_persona_with_typos_loads_its_good_lines_and_names_the_bad(tmp_path, caplog):
    path = tmp_path / "persona.toml"
    path.write_text(TYPOS, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.persona"):
        persona = load_persona(path)
    default = Persona()
    assert (persona.bot_name, persona.artist_name) == ("Aigerim", "Sezim")
    for key in ("greeting", "refusal", "thanks", "goodbye"):
        assert getattr(persona, key) == getattr(default, key), key
        assert any(key in r.getMessage() for r in caplog.records), key
    assert "{name}" in next(r.getMessage() for r in caplog.records if "refusal" in r.getMessage())
    assert persona.too_long.startswith("Under {limit}")
    assert persona.say(persona.about) == "I'm Aigerim, a guide to Sezim; braces are written {like this}."
    assert persona.topics == ("her albums",)
    for key in ("greeting", "about", "refusal", "thanks", "goodbye", "empty_question", "error", "slow_down"):
        persona.say(getattr(persona, key))  # none raises
    assert persona.say(persona.too_long, limit=500) == "Under 500 characters please, Sezim."


def test_say_never_raises_on_a_line_made_in_code(caplog):
    persona = Persona(bot_name="B", refusal="Sorry {name}, {bot} can't.")
    assert persona.say(persona.refusal) == "Sorry {name}, B can't."
    assert persona.say("Hi {0} {") == "Hi {0} {"


def test_the_bot_answers_and_the_page_builds_with_a_broken_persona(tmp_path, make_bot):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / "persona.toml").write_text(TYPOS, encoding="utf-8")
    bot = make_bot(seeds, tmp_path / "index")
    refusal = bot.answer(FRANCE)
    assert refusal.refused and refusal.kind == "refusal" and "{" not in refusal.text
    assert "grandmother" in bot.answer(DOMBRA).text
    assert bot.answer("hi").text == bot.persona.say(Persona().greeting)
    pytest.importorskip("gradio")
    from bot.serve import build_app
    from bot.serve.render import header_html

    assert "Aigerim" in header_html(bot.persona)
    build_app(bot)  # what `bot serve` does before it listens


def test_a_typo_made_while_serving_keeps_the_line_in_use(tmp_path, make_bot, caplog):
    watchfiles = pytest.importorskip("watchfiles")
    from bot.serve.watch import IndexStatus, SeedWatcher

    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    path = seeds / "persona.toml"
    path.write_text('bot_name = "Aigerim"\nrefusal = "Nothing on that about {artist}, sorry."\n', encoding="utf-8")
    bot = make_bot(seeds, tmp_path / "index")
    bot.ensure_index()
    watcher = SeedWatcher(bot, IndexStatus())
    changed = {(watchfiles.Change.modified, str(path.resolve()))}

    path.write_text('bot_name = "Aigerim"\nrefusal = "Sorry {name}, no."\ngreeting = "Hey {bot}!"\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.persona"):
        watcher.apply(changed)
    assert bot.persona.refusal == "Nothing on that about {artist}, sorry."  # the last good line
    assert bot.persona.greeting == "Hey {bot}!"  # the good change is taken
    assert any("refusal" in r.getMessage() and "{name}" in r.getMessage() for r in caplog.records)
    assert bot.answer(FRANCE).text.startswith("Nothing on that about")

    path.write_text('bot_name = "Aigerim\nbroken toml', encoding="utf-8")
    watcher.apply(changed)
    assert bot.persona.greeting == "Hey {bot}!" and bot.persona.bot_name == "Aigerim"  # the whole persona stays
