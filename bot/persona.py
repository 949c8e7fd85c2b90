"""The bot's name and voice, which the artist's team edits in ``seeds/persona.toml``.

The persona supplies only framing: greetings, refusals, small talk. It never
carries a fact about the artist; those come from the seeds, with sources.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Persona:
    """Who the bot is and how it talks. ``{artist}`` and ``{bot}`` are filled in."""

    bot_name: str = "Fan Guide"
    artist_name: str = "the artist"
    greeting: str = "Hi! I'm {bot}. Ask me anything about {artist} and I'll answer from the documents I've been given."
    about: str = (
        "I'm {bot}, a fan guide to {artist}. I answer only from the documents the team gave me, "
        "and I show where every answer comes from."
    )
    refusal: str = "I'm sorry, my documents about {artist} don't say anything about that."
    #: Topics offered after a refusal, as "You could ask me about ...".
    topics: tuple[str, ...] = ()
    thanks: str = "You're welcome! Anything else you'd like to know about {artist}?"
    goodbye: str = "Goodbye, and thanks for stopping by!"
    empty_question: str = "What would you like to know about {artist}? Type a question and I'll look it up."
    too_long: str = "That's a long message! Please ask one question in under {limit} characters."
    error: str = "Sorry, something went wrong on my side. Please try asking again."
    #: Said to a fan who asks faster than the server's rate limit allows.
    slow_down: str = (
        "Whoa, that's a lot of questions at once! Give me a few seconds to catch my breath, then ask me again."
    )
    #: Questions shown to fans as examples they can click.
    example_questions: tuple[str, ...] = ()
    #: Said to a question in another language: the bot answers in English.
    other_language: str = "Sorry, I can only read and answer questions in English. Could you ask me in English?"
    #: The same, in the fan's language: a ``[languages]`` table of ISO 639-1
    #: codes ("ru", "kk", "es") and lines.
    languages: dict[str, str] = field(default_factory=dict)

    def say(self, line: str, **values) -> str:
        """Fill a persona line with the bot's and artist's names (and other values)."""
        return line.format(bot=self.bot_name, artist=self.artist_name, **values)

    def language_line(self, language: str) -> str:
        """What the bot says to a question in ``language`` (a code): its line in that language, else in English."""
        return self.say(self.languages.get(language, self.other_language))

    def refusal_text(self) -> str:
        """The refusal, with a suggestion of what the bot can talk about."""
        text = self.say(self.refusal)
        if self.topics:
            topics = list(self.topics)
            listed = topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " or " + topics[-1]
            text += f" You could ask me about {listed}."
        return text


def load_persona(path: Path) -> Persona:
    """Read a persona from TOML; missing keys keep their defaults.

    A missing file gives the default persona; an unreadable one is logged
    and also gives the default, so a typo never takes the bot down.
    """
    if not path.is_file():
        return Persona()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        log.warning("Ignoring %s, it cannot be read (%s); using the default persona.", path, error)
        return Persona()
    known = {f.name for f in fields(Persona)}
    unknown = sorted(set(data) - known)
    if unknown:
        log.warning("Ignoring unknown keys in %s: %s", path, ", ".join(unknown))
    values = {}
    for key in known & set(data):
        value = data[key]
        if key == "languages":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                log.warning("Ignoring languages in %s: expected a table of language codes and lines.", path)
                continue
            values[key] = {str(code).lower(): line for code, line in value.items()}
            continue
        if isinstance(value, list):
            value = tuple(str(v) for v in value)
        elif not isinstance(value, str):
            log.warning("Ignoring %s in %s: expected text.", key, path)
            continue
        values[key] = value
    return Persona(**values)
