"""The bot's name and voice, which the artist's team edits in ``seeds/persona.toml``.

The persona supplies only framing: greetings, refusals, small talk. It never
carries a fact about the artist; those come from the seeds, with sources.
"""

from __future__ import annotations

import logging
import string
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
        """Fill a persona line with the bot's and artist's names (and other values).

        :func:`load_persona` lets in only lines whose placeholders are known;
        should one get here anyway (a Persona made in code), its unknown
        placeholders are shown as they are written rather than failing.
        """
        values = {"bot": self.bot_name, "artist": self.artist_name, **values}
        try:
            return line.format(**values)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            log.warning("A persona line has placeholders other than %s: %r", _named(values), line)
            return _fill_known(line, values)

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


#: The placeholders every persona line may use.
PLACEHOLDERS = frozenset({"bot", "artist"})
#: Placeholders only some lines may use, besides :data:`PLACEHOLDERS`.
EXTRA_PLACEHOLDERS = {"too_long": frozenset({"limit"})}


def _named(allowed) -> str:
    return ", ".join("{" + name + "}" for name in sorted(allowed))


def _fill_known(line: str, values: dict) -> str:
    """``line`` with the placeholders named in ``values`` filled, every other brace left as written."""
    for name, value in values.items():
        line = line.replace("{" + name + "}", str(value))
    return line


def placeholder_problem(key: str, line: str) -> str | None:
    """What is wrong with the placeholders of persona line ``key`` (None: nothing).

    A line may use ``{bot}`` and ``{artist}`` (and ``{limit}`` in ``too_long``);
    a literal brace is written twice (``{{``).
    """
    allowed = PLACEHOLDERS | EXTRA_PLACEHOLDERS.get(key, frozenset())
    try:
        parts = list(string.Formatter().parse(line))
    except ValueError as error:  # a lone "{" or "}"
        return f"{error} (write a literal brace twice: {{{{ or }}}})"
    for _, name, spec, _ in parts:
        if name is None:
            continue
        if name not in allowed:
            shown = "{" + name + "}" if name else "{}"
            return f"unknown placeholder {shown} (it may use {_named(allowed)})"
        if spec and ("{" in spec or "}" in spec):
            return f"a placeholder inside {{{name}:{spec}}}"
    try:
        line.format(**{name: "x" for name in allowed})
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def load_persona(path: Path, previous: Persona | None = None) -> Persona:
    """Read a persona from TOML; missing keys keep their defaults.

    A typo never takes the bot down, and a fan never sees it: a missing file
    gives the default persona; an unreadable one is logged and gives
    ``previous`` (the persona in use, when the file is reloaded while
    serving) or the default; a line with an unknown placeholder (``{name}``,
    ``{0}``) or a lone brace is logged, naming its key, and that key keeps
    its value in ``previous`` (or its default).
    """
    if not path.is_file():
        return Persona()
    fallback = previous or Persona()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        kept = "keeping the persona in use" if previous else "using the default persona"
        log.warning("Ignoring %s, it cannot be read (%s); %s.", path, error, kept)
        return fallback
    known = {f.name for f in fields(Persona)}
    unknown = sorted(set(data) - known)
    if unknown:
        log.warning("Ignoring unknown keys in %s: %s", path, ", ".join(unknown))
    defaults = Persona()
    values = {}
    for key in sorted(known & set(data)):
        value = data[key]
        if key == "languages":
            values[key] = _languages(value, path, fallback)
            continue
        is_list = isinstance(getattr(defaults, key), tuple)
        if is_list and isinstance(value, str):
            value = (value,)
        elif is_list and isinstance(value, list):
            value = tuple(str(v) for v in value)
        elif is_list or not isinstance(value, str):
            log.warning("Ignoring %s in %s: expected %s.", key, path, "a list of texts" if is_list else "text")
            value = getattr(fallback, key)
        elif key not in ("bot_name", "artist_name") and (problem := placeholder_problem(key, value)):
            value = getattr(fallback, key)
            log.warning("Ignoring %s in %s: %s; keeping %r.", key, path, problem, value)
        values[key] = value
    return Persona(**values)


def _languages(value, path: Path, fallback: Persona) -> dict[str, str]:
    """The ``[languages]`` table: language code -> line; a line with a placeholder problem keeps ``fallback``'s."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        log.warning("Ignoring languages in %s: expected a table of language codes and lines.", path)
        return fallback.languages
    lines = {}
    for code, line in value.items():
        code = str(code).lower()
        if problem := placeholder_problem("languages", line):
            kept = fallback.languages.get(code)
            log.warning("Ignoring languages.%s in %s: %s; keeping %r.", code, path, problem, kept)
            if kept is None:
                continue
            line = kept
        lines[code] = line
    return lines
