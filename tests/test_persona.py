"""Reading the persona file: a broken or partial file never takes the bot down."""

from __future__ import annotations

import logging

from bot.persona import Persona, load_persona


def test_a_missing_file_gives_the_default_persona(tmp_path):
    assert load_persona(tmp_path / "persona.toml") == Persona()


def test_broken_toml_falls_back_to_the_defaults_and_says_why(tmp_path, caplog):
    path = tmp_path / "persona.toml"
    path.write_text('bot_name = "Dombra\nrefusal = ', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.persona"):
        assert load_persona(path) == Persona()
    assert str(path) in caplog.text and "default persona" in caplog.text


def test_a_file_that_is_not_utf8_falls_back_to_the_defaults(tmp_path, caplog):
    path = tmp_path / "persona.toml"
    path.write_bytes('bot_name = "Domb\xe9ra"\n'.encode("latin-1"))
    with caplog.at_level(logging.WARNING, logger="bot.persona"):
        assert load_persona(path) == Persona()
    assert "default persona" in caplog.text


def test_missing_keys_keep_their_defaults(tmp_path):
    path = tmp_path / "persona.toml"
    path.write_text(
        'bot_name = "Dombra"\nartist_name = "Sezim"\ntopics = ["her album", "her village"]\n', encoding="utf-8"
    )
    persona = load_persona(path)
    assert persona.bot_name == "Dombra" and persona.artist_name == "Sezim"
    assert persona.topics == ("her album", "her village")
    assert persona.refusal == Persona.refusal and persona.greeting == Persona.greeting
    assert persona.say(persona.thanks) == "You're welcome! Anything else you'd like to know about Sezim?"


def test_unknown_keys_and_values_that_are_not_text_are_ignored_and_logged(tmp_path, caplog):
    path = tmp_path / "persona.toml"
    path.write_text('bot_name = 7\nfavourite_colour = "red"\ngoodbye = "Bye!"\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot.persona"):
        persona = load_persona(path)
    assert persona.bot_name == Persona.bot_name and persona.goodbye == "Bye!"
    assert "favourite_colour" in caplog.text and "bot_name" in caplog.text
