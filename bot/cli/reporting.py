"""``bot report``: what fans asked, for the artist's team."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..ingest import NoSeedsError
from .options import common_options, make_config, setup_logging

log = logging.getLogger("bot")


class _LogPath(click.Path):
    """A question log's file; ``BOT_LOG_DB`` holds one, whole (a path may hold spaces)."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [rv]


@click.command()
@click.option("--log-db", "log_dbs", multiple=True, type=_LogPath(dir_okay=False, path_type=Path),
              envvar="BOT_LOG_DB", metavar="FILE",
              help="A question log to read (repeat for the logs of several servers). Default: $BOT_LOG_DB, else "
                   "the one bot serve keeps in the user's data folder.")
@click.option("--since", default=None, metavar="SPAN",
              help="Only questions from this long ago on (7d, 12h, 2w) or from a date (2026-11-01). Default: all.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write every logged question to FILE (CSV).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write the report as one self-contained HTML page.")
@common_options
def report(log_dbs, since, as_json, csv_path, html_path, seeds_dir, index_dir, model, verbose):
    """What fans asked: answer rate, refused questions grouped by meaning, disliked answers.

    Each refused group shows the passage of the seeds closest to it, so you
    can see whether a document is missing or the bot missed it. Write the
    missing answers into the seeds in the fans' words, and the bot answers them.
    """
    setup_logging(verbose)
    import sqlite3

    from ..feedback.report import as_html, as_text, build_report, parse_since, read_logs, write_csv
    from ..feedback.store import default_log_path

    paths = list(log_dbs) or [default_log_path()]
    try:
        start = parse_since(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise click.ClickException(f"No question log at {', '.join(missing)} (bot serve writes one once a fan asks; "
                                   "--log-db names another).")
    try:
        rows = read_logs(paths, start)
    except sqlite3.Error as error:
        raise click.ClickException(
            f"Cannot read the question log ({error}): is --log-db a file bot serve wrote?") from None
    bot = None
    if any(row.kind == "refusal" for row in rows):  # the model is only needed to group refusals
        from ..core import Bot

        try:
            bot = Bot(make_config(seeds_dir, index_dir, model))
            bot.ensure_index()
        except NoSeedsError as error:  # the logs may have been copied to a machine without the seeds
            log.warning("%s Refused questions are grouped by wording only, without the closest passages.", error)
            bot = None
    result = build_report(rows, bot, logs=paths, since=start)
    if csv_path:
        write_csv(rows, result, csv_path)
    if html_path:
        html_path.write_text(as_html(result), encoding="utf-8")
    click.echo(json.dumps(result, ensure_ascii=False) if as_json else as_text(result))
