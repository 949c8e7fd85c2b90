"""A grounded fan Q&A bot: answers about one artist only from the artist's documents.

Quick use from Python::

    import bot
    reply = bot.answer("Who taught Sezim to play the dombra?")
    print(reply.text, reply.citations[0].source)

``bot.answer`` and ``bot.retrieve`` use a default :class:`Bot` over ``seeds/``
and ``index/`` in the current directory (or ``BOT_SEEDS`` / ``BOT_INDEX``);
make your own ``Bot(Config(...))`` for anything else.

The names below load on first use (PEP 562), so that importing a light
module such as ``bot.query`` or ``bot.config`` does not pull in the whole
stack (FAISS, the model's runtime).
"""

from __future__ import annotations

import sys
from functools import cache
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

from .config import Config, Ranking

if TYPE_CHECKING:
    from .answer import Answer
    from .core import Bot
    from .retrieve import Passage

__all__ = ["Answer", "Bot", "Config", "Passage", "Ranking", "answer", "default_bot", "retrieve"]
__version__ = "0.1.0"

#: The public names that live in heavier modules, and those modules.
_LAZY = {"Answer": ".answer", "Bot": ".core", "Passage": ".retrieve"}


#: Functions below that share their name with a module of the package (bot/answer.py, bot/retrieve.py).
_FUNCTIONS_NAMED_LIKE_MODULES = frozenset({"answer", "retrieve"})


class _Package(ModuleType):
    """The ``bot`` package, whose ``answer`` and ``retrieve`` stay the functions below.

    Importing a module of a package sets the package's attribute of that
    name to the module. Imported eagerly, before the functions were defined,
    that did no harm; imported lazily, ``bot/answer.py`` would hide
    ``bot.answer()``. The modules stay in ``sys.modules``.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTIONS_NAMED_LIKE_MODULES and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # found once; later look-ups do not come here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


@cache
def default_bot() -> Bot:
    """The bot over the default seeds and index, created on first use."""
    from .core import Bot

    return Bot()


def answer(question: str, history: list[dict] | None = None) -> Answer:
    """Answer ``question`` with the default bot (see :meth:`Bot.answer`)."""
    return default_bot().answer(question, history)


def retrieve(question: str, k: int = 5) -> list[Passage]:
    """The ``k`` best passages for ``question`` from the default bot (see :meth:`Bot.retrieve`)."""
    return default_bot().retrieve(question, k)
