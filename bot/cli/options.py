"""What every command shares: the folder and model options, logging, the Config they make."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ..config import Config
from ..printable import PrintableLogArguments


def setup_logging(verbose: int) -> None:
    # bm25s sets its own logger to DEBUG when it is imported; imported later
    # (bot's modules load lazily), it would undo the level set below.
    import bm25s  # noqa: F401

    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # a seed's name may hold escapes or newlines
        handler.addFilter(PrintableLogArguments())
    logging.getLogger("bot").setLevel(level)
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def common_options(command=None, *, folders_from_environment: bool = True):
    """``--seeds``, ``--index``, ``--model`` and ``-v``, shared by every command.

    The options default to ``$BOT_SEEDS``, ``$BOT_INDEX`` and ``$BOT_MODEL``
    (shown in ``--help``). ``bot eval`` takes the folders from the
    environment only as a fallback (``folders_from_environment=False``): its
    seeds default to those beside the question set, its index to a cache.
    Used as ``@common_options`` or ``@common_options(...)``.
    """
    if command is None:
        return lambda inner: common_options(inner, folders_from_environment=folders_from_environment)
    if folders_from_environment:
        folders = [
            click.option("--seeds", "seeds_dir", type=click.Path(path_type=Path), default=None, envvar="BOT_SEEDS",
                         show_envvar=True, help="Folder of the artist's documents (default: ./seeds)."),
            click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None, envvar="BOT_INDEX",
                         show_envvar=True, help="Folder of the built index (default: ./index)."),
        ]
    else:
        folders = [
            click.option("--seeds", "seeds_dir", type=click.Path(path_type=Path), default=None,
                         help="Folder of the artist's documents (default: the seeds/ beside QA_PATH, "
                              "else $BOT_SEEDS or ./seeds)."),
            click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                         help="Folder of the built index (default: a folder in the cache, never ./index)."),
        ]
    options = [
        *folders,
        click.option("--model", default=None, envvar="BOT_MODEL", show_envvar=True,
                     help="sentence-transformers model name or path (default: bundled all-MiniLM-L6-v2)."),
        click.option("-v", "--verbose", count=True, help="Log more (-v: progress, -vv: debug)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def make_config(seeds_dir: Path | None, index_dir: Path | None, model: str | None) -> Config:
    """A Config from the command-line options, defaults for what is not given."""
    changes = {"seeds_dir": seeds_dir, "index_dir": index_dir, "model": model}
    return Config().with_changes(**{k: v for k, v in changes.items() if v is not None})
