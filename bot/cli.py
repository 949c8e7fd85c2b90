"""The ``bot`` command: build the index, ask questions, evaluate, serve."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .config import Config
from .ingest import NoSeedsError

log = logging.getLogger("bot")


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("bot").setLevel(level)
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def common_options(command):
    """``--seeds``, ``--index``, ``--model`` and ``-v``, shared by every command."""
    options = [
        click.option("--seeds", "seeds_dir", type=click.Path(path_type=Path), default=None,
                     help="Folder of the artist's documents (default: ./seeds or $BOT_SEEDS)."),
        click.option("--index", "index_dir", type=click.Path(path_type=Path), default=None,
                     help="Folder of the built index (default: ./index or $BOT_INDEX)."),
        click.option("--model", default=None,
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

    Put the documents (.txt or .md) in seeds/, then `bot build` and
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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: text, refused, citations.")
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
    click.echo(reply.text)
    for number, passage in enumerate(reply.citations, 1):
        click.echo(f"  [{number}] {passage.source}:{passage.start}-{passage.end}", err=False)


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
        click.echo(f"{passage.score:7.2f}  {passage.source}:{passage.start}-{passage.end}  {passage.text}")


@cli.command(name="eval")
@click.argument("qa_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True,
              help="Ranking to evaluate: the default hybrid, or one signal alone.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object of metrics.")
@common_options
def eval_command(qa_path, method, as_json, seeds_dir, index_dir, model, verbose):
    """Measure answers to the questions in QA_PATH (a JSON-lines question set).

    The seeds default to a seeds/ folder beside QA_PATH, else ./seeds. The
    index is built in a cache folder, never in ./index.
    """
    _setup_logging(verbose)
    from .eval import default_seeds_for, eval_bot, evaluate, load_questions

    config = make_config(None, None, model)
    seeds = seeds_dir or default_seeds_for(qa_path, config.seeds_dir)
    try:
        questions = load_questions(qa_path)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    report = evaluate(eval_bot(seeds, config, method, index_dir), questions)
    if as_json:
        click.echo(json.dumps(report))
        return
    for name, value in report.items():
        if name != "by_kind":
            click.echo(f"{name:28} {value}")
    for kind, metrics in report["by_kind"].items():
        shown = ", ".join(f"{k}={v}" for k, v in metrics.items() if v is not None and k != "n")
        click.echo(f"  {kind} (n={metrics['n']}): {shown}")


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
    from .calibrate import calibrate as run_calibration

    result = run_calibration(eval_dir, output, make_config(seeds_dir, None, model))
    click.echo(json.dumps(result, indent=1))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; use 0.0.0.0 to let other machines connect.")
@click.option("--port", default=7860, show_default=True, help="Port to listen on.")
@common_options
def serve(host, port, seeds_dir, index_dir, model, verbose):
    """Start the browser chat (Gradio), updating the index as the seeds change.

    Builds or updates the index first, then serves http://HOST:PORT/ until
    Ctrl+C. Answers are also an API: see the README for the gradio_client call.
    """
    _setup_logging(max(verbose, 1))
    from .ui import ServeError
    from .ui import serve as run_server

    try:
        run_server(make_config(seeds_dir, index_dir, model), host=host, port=port)
    except ServeError as error:
        raise click.ClickException(str(error)) from None


@cli.command()
@common_options
def bench(seeds_dir, index_dir, model, verbose):
    """Measure speed and memory and print one line per figure."""
    _setup_logging(verbose)
    from .bench import run_benchmarks

    run_benchmarks(make_config(seeds_dir, index_dir, model))


def main() -> None:
    """Entry point of the ``bot`` console script."""
    cli(prog_name="bot")
