"""The ``bot`` command: build the index, ask questions, evaluate, serve."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import click

from .config import Config, prepare_libraries
from .ingest import NoSeedsError
from .printable import PrintableLogArguments, printable

log = logging.getLogger("bot")


def _seconds_since_process_start() -> float:
    """How long this process has run, from Linux's /proc; 0 where that cannot be read or makes no sense."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        age = since_boot - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0.0 <= age < 60.0 else 0.0  # a container's /proc/uptime may not be the host's


#: When this process started, on the ``time.perf_counter`` clock: ``bot
#: serve``'s "ready" figure counts from it, the interpreter's start and every
#: import included (where /proc cannot say, from this module's import).
STARTED = time.perf_counter() - _seconds_since_process_start()


def _setup_logging(verbose: int) -> None:
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


@cli.command()
@common_options
def build(seeds_dir, index_dir, model, verbose):
    """Build or update the index from the seeds (only changed files are embedded)."""
    _setup_logging(max(verbose, 0))
    from .core import Bot

    report = Bot(make_config(seeds_dir, index_dir, model)).update(progress=sys.stderr.isatty())
    click.echo(report.summary())


@cli.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: text, refused, kind, confidence and citations (each with text, "
                   "source, start, end, page, section, location, score, before, after).")
@common_options
def ask(question, as_json, seeds_dir, index_dir, model, verbose):
    """Ask one QUESTION and print the answer with its sources."""
    _setup_logging(verbose)
    from .core import Bot

    bot = Bot(make_config(seeds_dir, index_dir, model))
    bot.ensure_index()
    reply = bot.answer(question)
    if as_json:
        click.echo(json.dumps(reply.to_dict(), ensure_ascii=False))
        return
    click.echo(printable(reply.text, keep="\n"))
    for number, passage in enumerate(reply.citations, 1):
        click.echo(f"  [{number}] {printable(passage.location)} (characters {passage.start}-{passage.end})", err=False)


@cli.command()
@click.argument("question")
@click.option("-k", default=5, show_default=True, help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of passages.")
@common_options
def search(question, k, as_json, seeds_dir, index_dir, model, verbose):
    """Show the K seed passages that best match QUESTION, with scores."""
    _setup_logging(verbose)
    from .core import Bot

    bot = Bot(make_config(seeds_dir, index_dir, model))
    passages = bot.retrieve(question, k=k)
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in passages], ensure_ascii=False))
        return
    for passage in passages:
        click.echo(f"{passage.score:7.2f}  {printable(passage.source)}:{passage.start}-{passage.end}  "
                   f"{printable(passage.text)}")


@cli.command(name="eval")
@click.argument("qa_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True,
              help="Ranking to evaluate: the default hybrid, or one signal alone.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object of metrics.")
@click.option("--misses", is_flag=True,
              help="Also list every question handled wrongly, with what the bot said (JSON: a \"misses\" key).")
@common_options(folders_from_environment=False)
def eval_command(qa_path, method, as_json, misses, seeds_dir, index_dir, model, verbose):
    """Measure answers to the questions in QA_PATH (a JSON-lines question set).

    The seeds default to a seeds/ folder beside QA_PATH, else ./seeds. The
    index is built in a cache folder, never in ./index.
    """
    _setup_logging(verbose)
    from .measure.eval import default_seeds_for, eval_bot, evaluate, load_questions

    config = make_config(None, None, model)
    seeds = seeds_dir or default_seeds_for(qa_path, config.seeds_dir)
    try:
        questions = load_questions(qa_path)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    report = evaluate(eval_bot(seeds, config, method, index_dir), questions, misses=misses)
    if as_json:
        click.echo(json.dumps(report))
        return
    for name, value in report.items():
        if name not in ("by_kind", "misses"):
            click.echo(f"{name:28} {value}")
    for kind, metrics in report["by_kind"].items():
        shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if v is not None and k != "n")
        click.echo(f"  {kind} (n={metrics['n']}): {shown}")
    if misses:
        click.echo(f"\nMisses ({len(report['misses'])}):")
        for miss in report["misses"]:
            expected = " | ".join(miss["answers"]) if miss["answers"] else "a refusal"
            said = "a refusal" if miss["refused"] else _shorten(miss["text"], 300)
            click.echo(f"  [{miss['kind']}] {miss['question']}")
            click.echo(f"      expected: {expected}")
            click.echo(f"      said:     {said} (confidence {miss['confidence']})")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@cli.command()
@click.argument("eval_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=Path(__file__).resolve().parent.parent.parent / "shared" / "eval")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(__file__).resolve().parent / "calibration.json", show_default=True,
              help="Where to write the refusal model.")
@common_options
def calibrate(eval_dir, output, seeds_dir, index_dir, model, verbose):
    """Re-derive the refusal thresholds from the question sets in EVAL_DIR.

    EVAL_DIR holds one folder per set with a qa.jsonl (default: ../shared/eval).
    """
    _setup_logging(verbose)
    from .measure.calibrate import calibrate as run_calibration

    result = run_calibration(eval_dir, output, make_config(seeds_dir, None, model))
    click.echo(json.dumps(result, indent=1))


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


@cli.command()
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
    _setup_logging(max(verbose, 1))
    # Said before the imports below, which take seconds (Gradio).
    log.info("Starting the chat: loading the web server, then the index and the embedding model…")
    from .feedback.store import default_log_path
    from .serve import DEFAULT_RATE_LIMIT, ServeError, parse_auth
    from .serve import serve as run_server

    try:
        run_server(make_config(seeds_dir, index_dir, model), host=host, port=port,
                   auth=parse_auth(accounts) or None,
                   rate_limit=DEFAULT_RATE_LIMIT if rate_limit is None else rate_limit,
                   log_path=None if no_log else (log_db or default_log_path()), log_days=log_days,
                   started=STARTED)
    except ServeError as error:
        raise click.ClickException(str(error)) from None


class _LogPath(click.Path):
    """A question log's file; ``BOT_LOG_DB`` holds one, whole (a path may hold spaces)."""

    def split_envvar_value(self, rv: str) -> list[str]:
        return [rv]


@cli.command()
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
    _setup_logging(verbose)
    import sqlite3

    from .feedback.report import as_html, as_text, build_report, parse_since, read_logs, write_csv
    from .feedback.store import default_log_path

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
        from .core import Bot

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


@cli.command()
@click.option("--scale", "scales", multiple=True, type=click.IntRange(min=0), metavar="CHUNKS",
              help="Corpus size of the scale figures (repeatable; default 100000; 0: none). "
                   "--scale 1000000 adds about 6 minutes on 2 cores.")
@click.option("--scale-only", is_flag=True, help="Only the scale figures, not those on the shipped seeds.")
@common_options
def bench(seeds_dir, index_dir, model, verbose, scales, scale_only):
    """Measure speed and memory and print one line per figure."""
    _setup_logging(verbose)
    from .measure.bench import DEFAULT_SCALES, run_benchmarks

    chosen = tuple(size for size in scales if size > 0) if scales else DEFAULT_SCALES
    run_benchmarks(make_config(seeds_dir, index_dir, model), scales=chosen, base=not scale_only)


@cli.command()
@click.option("--url", default=None, help="A running bot serve on this machine (default: start one, rate limit off).")
@click.option("--pid", type=int, default=None, help="Process id of the server at --url, to measure its memory.")
@click.option("--fans", default=50, show_default=True, type=click.IntRange(1, 1000), help="Simulated fans at once.")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(1, 3600), help="Length of the run.")
@click.option("--warmup", default=10.0, show_default=True, type=click.FloatRange(0, 600),
              help="Seconds of the same load first, not counted.")
@click.option("--max-requests", default=100_000, show_default=True, type=click.IntRange(1),
              help="Stop after this many questions (per phase).")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds one question may take before it fails.")
@click.option("--think", default=0.0, show_default=True, help="Mean pause of a fan between questions, seconds.")
@click.option("--fresh-sessions", is_flag=True,
              help="Send every question without a session (as curl does), not one session per fan.")
@click.option("--no-log", is_flag=True,
              help="Start the server with --no-log (default: it keeps a question log in a temporary folder).")
@click.option("--flood", default=0, show_default=True, type=click.IntRange(0, 1000),
              help="Add one client asking this many questions at once, as fast as it can, from one address "
                   "behind a proxy: the server it starts keeps its rate limit, which the fans do not meet. "
                   "The fans are then counted alone for --seconds, and again during the flood.")
@click.option("--max-p95", type=click.FloatRange(0, min_open=True), default=None,
              help="Fail when the fans' p95 latency (during the flood, with --flood) is over this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@common_options
def loadtest(url, pid, fans, seconds, warmup, max_requests, timeout, think, fresh_sessions, no_log, flood, max_p95,
             as_json, seeds_dir, index_dir, model, verbose):
    """Many fans asking at once through the HTTP API: failures, latency, throughput, memory.

    Loopback only. Exits with status 1 when a request failed, the server's
    memory after the run is more than 10% off its memory after the warm-up,
    or the fans' p95 is over --max-p95.
    """
    _setup_logging(verbose)
    from .measure.loadtest import run_load
    from .measure.server import ServeProcess

    def run(target, server_pid):
        try:
            return run_load(target, fans=fans, seconds=seconds, warmup=warmup, max_requests=max_requests,
                            timeout=timeout, think=think, pid=server_pid, fresh_sessions=fresh_sessions,
                            flood=flood)
        except ValueError as error:
            raise click.ClickException(str(error)) from None

    if url:
        report = run(url, pid)
    else:
        import tempfile

        config = make_config(seeds_dir, index_dir, model)
        extra = (() if flood else ("--rate-limit", "0")) + (("--model", model) if model else ())
        # The server logs as a real one does, but never into the fans' own question log.
        with tempfile.TemporaryDirectory(prefix="bot-loadtest-") as scratch:
            extra += ("--no-log",) if no_log else ("--log-db", str(Path(scratch) / "questions.sqlite3"))
            with ServeProcess(config.seeds_dir, config.index_dir, extra=extra) as server:
                report = run(server.url, server.pid)
    report.max_p95_ms = None if max_p95 is None else max_p95 * 1000
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        sys.exit(1)


def main() -> None:
    """Entry point of the ``bot`` console script."""
    prepare_libraries()  # before any command imports Hugging Face's libraries or Gradio
    cli(prog_name="bot")
