"""``bot eval``, ``bot calibrate``, ``bot bench`` and ``bot loadtest``: how well and how fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .options import common_options, make_config, setup_logging

#: The package folder (bot/): the refusal model is written there by default.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


@click.command(name="eval")
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
    setup_logging(verbose)
    from ..measure.eval import default_seeds_for, eval_bot, evaluate, load_questions

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


@click.command()
@click.argument("eval_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=PACKAGE_DIR.parent.parent / "shared" / "eval")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=PACKAGE_DIR / "calibration.json", show_default=True,
              help="Where to write the refusal model.")
@common_options
def calibrate(eval_dir, output, seeds_dir, index_dir, model, verbose):
    """Re-derive the refusal thresholds from the question sets in EVAL_DIR.

    EVAL_DIR holds one folder per set with a qa.jsonl (default: ../shared/eval).
    """
    setup_logging(verbose)
    from ..measure.calibrate import calibrate as run_calibration

    result = run_calibration(eval_dir, output, make_config(seeds_dir, None, model))
    click.echo(json.dumps(result, indent=1))


@click.command()
@click.option("--scale", "scales", multiple=True, type=click.IntRange(min=0), metavar="CHUNKS",
              help="Corpus size of the scale figures (repeatable; default 100000; 0: none). "
                   "--scale 1000000 adds about 6 minutes on 2 cores.")
@click.option("--scale-only", is_flag=True, help="Only the scale figures, not those on the shipped seeds.")
@common_options
def bench(seeds_dir, index_dir, model, verbose, scales, scale_only):
    """Measure speed and memory and print one line per figure."""
    setup_logging(verbose)
    from ..measure.bench import DEFAULT_SCALES, run_benchmarks

    chosen = tuple(size for size in scales if size > 0) if scales else DEFAULT_SCALES
    run_benchmarks(make_config(seeds_dir, index_dir, model), scales=chosen, base=not scale_only)


@click.command()
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
    setup_logging(verbose)
    from ..measure.loadtest import run_load
    from ..measure.server import ServeProcess

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
