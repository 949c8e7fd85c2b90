"""``bot serve``: the browser chat and its API."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from .options import common_options, make_config, setup_logging
from .started import STARTED

log = logging.getLogger("bot")


class _Account(click.ParamType):
    """``USER:PASSWORD``, checked by :func:`bot.serve.parse_auth` (one clear message for every source)."""

    name = "USER:PASSWORD"

    def split_envvar_value(self, rv: str) -> list[str]:
        # BOT_AUTH holds one account, whole: a password may hold spaces.
        return [rv]


class _PerMinute(click.IntRange):
    """Questions a minute, 0 or more; a bad ``BOT_RATE_LIMIT`` is named as such, not as ``--rate-limit``."""

    def __init__(self):
        super().__init__(min=0)

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            if ctx is None or ctx.get_parameter_source(param.name) is not click.core.ParameterSource.ENVIRONMENT:
                raise
        try:
            int(value)
        except ValueError:
            raise click.ClickException(
                "BOT_RATE_LIMIT must be a whole number of questions per minute (0: no limit).") from None
        raise click.ClickException("BOT_RATE_LIMIT must be 0 or more.")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; use 0.0.0.0 to let other machines connect.")
@click.option("--port", default=7860, show_default=True, help="Port to listen on.")
@click.option("--auth", "accounts", multiple=True, type=_Account(), envvar="BOT_AUTH",
              help="Require this login for the page and the API (repeat for more accounts). "
                   "Default: $BOT_AUTH, else no password.")
@click.option("--rate-limit", type=_PerMinute(), envvar="BOT_RATE_LIMIT", default=None, metavar="N",
              help="Questions per minute per client IP, chat and API together; 0: no limit. "
                   "Default: $BOT_RATE_LIMIT, else 30.")
@click.option("--log-db", "log_db", type=click.Path(dir_okay=False, path_type=Path), envvar="BOT_LOG_DB",
              default=None, help="The question log's file (SQLite). Default: $BOT_LOG_DB, else "
                                 "artist-bot/questions.sqlite3 in the user's data folder.")
@click.option("--no-log", is_flag=True, envvar="BOT_NO_LOG",
              help="Keep no question log (and show no thumbs up/down). Default: $BOT_NO_LOG, else log.")
@click.option("--log-days", type=click.IntRange(min=0), envvar="BOT_LOG_DAYS", default=90, show_default=True,
              metavar="N", help="Delete logged questions older than N days (0: keep them). Default: $BOT_LOG_DAYS.")
@common_options
def serve(host, port, accounts, rate_limit, log_db, no_log, log_days, seeds_dir, index_dir, model, verbose):
    """Start the browser chat (Gradio), updating the index as the seeds change.

    Builds or updates the index first, then serves http://HOST:PORT/ until
    Ctrl+C. Answers are also an API: see the README for the gradio_client call.
    """
    setup_logging(max(verbose, 1))
    # Said before the imports below, which take seconds (Gradio).
    log.info("Starting the chat: loading the web server, then the index and the embedding model…")
    from ..feedback.store import default_log_path
    from ..serve import DEFAULT_RATE_LIMIT, ServeError, parse_auth
    from ..serve import serve as run_server

    try:
        run_server(make_config(seeds_dir, index_dir, model), host=host, port=port,
                   auth=parse_auth(accounts) or None,
                   rate_limit=DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit,
                   log_path=None if no_log else (log_db or default_log_path()), log_days=log_days,
                   started=STARTED)
    except ServeError as error:
        raise click.ClickException(str(error)) from None
