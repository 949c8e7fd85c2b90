"""The ``bot`` command: build the index, ask questions, evaluate, serve.

One module per family of commands; this one makes the group and adds them.
"""

from __future__ import annotations

import click

from ..config import prepare_libraries
from ..ingest import NoSeedsError
from . import asking, measuring, reporting, serving
from .started import STARTED


class BotGroup(click.Group):
    """Turns the bot's expected errors into one clear line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NoSeedsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=BotGroup)
@click.version_option(package_name="artist-bot")
def cli():
    """A fan Q&A bot that answers about one artist only from the artist's documents.

    Put the documents (.txt, .md, .pdf, .docx or .html) in seeds/, then `bot build` and
    `bot ask "..."`, or `bot serve` for the browser chat.
    """


for command in (asking.build, asking.ask, asking.search, measuring.eval_command, measuring.calibrate,
                serving.serve, reporting.report, measuring.bench, measuring.loadtest):
    cli.add_command(command)

__all__ = ["STARTED", "cli", "main"]


def main() -> None:
    """Entry point of the ``bot`` console script."""
    prepare_libraries()  # before any command imports Hugging Face's libraries or Gradio
    cli(prog_name="bot")
