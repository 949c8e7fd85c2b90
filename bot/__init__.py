"""A grounded fan Q&A bot: answers about one artist only from the artist's documents.

Quick use from Python::

    import bot
    reply = bot.answer("Who taught Sezim to play the dombra?")
    print(reply.text, reply.citations[0].source)

``bot.answer`` and ``bot.retrieve`` use a default :class:`Bot` over ``seeds/``
and ``index/`` in the current directory (or ``BOT_SEEDS`` / ``BOT_INDEX``);
make your own ``Bot(Config(...))`` for anything else.
"""

from __future__ import annotations

from functools import cache

from .answer import Answer
from .config import Config, Ranking
from .core import Bot
from .retrieve import Passage

__all__ = ["Answer", "Bot", "Config", "Passage", "Ranking", "answer", "default_bot", "retrieve"]
__version__ = "0.1.0"


@cache
def default_bot() -> Bot:
    """The bot over the default seeds and index, created on first use."""
    return Bot()


def answer(question: str, history: list[dict] | None = None) -> Answer:
    """Answer ``question`` with the default bot (see :meth:`Bot.answer`)."""
    return default_bot().answer(question, history)


def retrieve(question: str, k: int = 5) -> list[Passage]:
    """The ``k`` best passages for ``question`` from the default bot (see :meth:`Bot.retrieve`)."""
    return default_bot().retrieve(question, k)
