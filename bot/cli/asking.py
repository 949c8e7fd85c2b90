"""``bot build``, ``bot ask`` and ``bot search``: the index and one question at a time."""

from __future__ import annotations

import json
import sys

import click

from ..printable import printable
from .options import common_options, make_config, setup_logging


@click.command()
@common_options
def build(seeds_dir, index_dir, model, verbose):
    """Build or update the index from the seeds (only changed files are embedded)."""
    setup_logging(max(verbose, 0))
    from ..core import Bot

    report = Bot(make_config(seeds_dir, index_dir, model)).update(progress=sys.stderr.isatty())
    click.echo(report.summary())


@click.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: text, refused, kind, confidence and citations (each with text, "
                   "source, start, end, page, section, location, score, before, after).")
@common_options
def ask(question, as_json, seeds_dir, index_dir, model, verbose):
    """Ask one QUESTION and print the answer with its sources."""
    setup_logging(verbose)
    from ..core import Bot

    bot = Bot(make_config(seeds_dir, index_dir, model))
    bot.ensure_index()
    reply = bot.answer(question)
    if as_json:
        click.echo(json.dumps(reply.to_dict(), ensure_ascii=False))
        return
    click.echo(printable(reply.text, keep="\n"))
    for number, passage in enumerate(reply.citations, 1):
        click.echo(f"  [{number}] {printable(passage.location)} (characters {passage.start}-{passage.end})", err=False)


@click.command()
@click.argument("question")
@click.option("-k", default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of passages.")
@common_options
def search(question, k, as_json, seeds_dir, index_dir, model, verbose):
    """Show the K seed passages that best match QUESTION, with scores."""
    setup_logging(verbose)
    from ..core import Bot

    bot = Bot(make_config(seeds_dir, index_dir, model))
    passages = bot.retrieve(question, k=k)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in passages], ensure_ascii=False))
        return
    for passage in passages:
        click.echo(f"{passage.score:7.2f}  {printable(passage.source)}:{passage.start}-{passage.end}  "
                   f"{printable(passage.text)}")
