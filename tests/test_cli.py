"""The ``bot`` command line: build, ask, options and errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import bot.core
from bot.cli import cli

from conftest import DOMBRA, SEEDS, SEZIM_FILE, assert_quoted_verbatim, copy_seeds, run_bot

SUMMARY = re.compile(
    r"Index updated: (\d+) added, (\d+) changed, (\d+) removed, (\d+) unchanged; "
    r"(\d+) chunks \((\d+) embedded\) in \d+\.\ds\."
)


@pytest.fixture
def runner(monkeypatch, embedder):
    """Run the CLI in-process, with the session's (real) model instead of loading it again."""
    monkeypatch.setattr(bot.core, "Embedder", lambda model: embedder)
    return CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current directory, to show that nothing is written to ./index."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def invoke(runner, *args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_build_prints_a_one_line_summary(runner, seeds_dir, tmp_path, workdir):
    index = tmp_path / "my-index"
    first = invoke(runner, "build", "--seeds", seeds_dir, "--index", index)
    assert first.exit_code == 0, first.output
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 1
    added, changed, removed, unchanged, chunks, embedded = map(int, SUMMARY.fullmatch(lines[0]).groups())
    assert (added, changed, removed, unchanged) == (1, 0, 0, 0) and chunks == embedded > 0
    assert (index / "CURRENT").is_file() and not (workdir / "index").exists()

    again = invoke(runner, "build", "--seeds", seeds_dir, "--index", index)
    assert again.stdout.strip() == f"Index is up to date: {chunks} chunks from 1 files."

    (seeds_dir / "tour.txt").write_text("Sezim will tour Japan next spring.", encoding="utf-8")
    with (seeds_dir / SEZIM_FILE).open("a", encoding="utf-8") as handle:
        handle.write("\n\nShe also plays the piano.")
    changed_run = invoke(runner, "build", "--seeds", seeds_dir, "--index", index)
    values = tuple(map(int, SUMMARY.fullmatch(changed_run.stdout.strip()).groups()))
    assert values == (1, 1, 0, 0, chunks + 2, chunks + 2)

    (seeds_dir / "tour.txt").unlink()
    removed_run = invoke(runner, "build", "--seeds", seeds_dir, "--index", index)
    values = tuple(map(int, SUMMARY.fullmatch(removed_run.stdout.strip()).groups()))
    assert values == (0, 0, 1, 1, chunks + 1, 0)


def ask_json(runner, *args):
    result = invoke(runner, "ask", "--json", *args)
    assert result.exit_code == 0, result.output
    # Exactly one JSON object on stdout, on one line, and nothing else.
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    reply = json.loads(result.stdout)
    assert isinstance(reply, dict)
    assert isinstance(reply["text"], str) and reply["text"]
    assert isinstance(reply["refused"], bool) and isinstance(reply["citations"], list)
    for citation in reply["citations"]:
        assert isinstance(citation["text"], str) and isinstance(citation["source"], str)
        assert isinstance(citation["start"], int) and isinstance(citation["end"], int)
        assert isinstance(citation["score"], (int, float))
    return reply


def test_ask_json_answers_with_citations(runner, seeds_dir, index_dir, workdir):
    reply = ask_json(runner, DOMBRA, "--seeds", seeds_dir, "--index", index_dir)
    assert reply["refused"] is False and "grandmother" in reply["text"]
    assert reply["citations"] and reply["citations"][0]["source"] == SEZIM_FILE
    for citation in reply["citations"]:
        assert_quoted_verbatim(seeds_dir, SimpleNamespace(**citation))
        assert citation["text"] in reply["text"]
    # `ask` built the index it needed, where it was told to.
    assert (index_dir / "CURRENT").is_file() and not (workdir / "index").exists()


def test_ask_json_refuses_what_the_seeds_do_not_say(runner, seeds_dir, index_dir, workdir):
    reply = ask_json(runner, "Is Sezim married?", "--seeds", seeds_dir, "--index", index_dir)
    assert reply["refused"] is True and reply["citations"] == []


def test_ask_prints_the_answer_and_its_sources(runner, seeds_dir, index_dir, workdir):
    as_json = ask_json(runner, DOMBRA, "--seeds", seeds_dir, "--index", index_dir)
    result = invoke(runner, "ask", DOMBRA, "--seeds", seeds_dir, "--index", index_dir)
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0] == as_json["text"]
    sources = [
        f"[{n}] {c['location']} (characters {c['start']}-{c['end']})" for n, c in enumerate(as_json["citations"], 1)
    ]
    assert [line.strip() for line in lines[1:]] == sources


def test_eval_misses_show_what_the_bot_said(runner, seeds_dir, index_dir, workdir):
    qa = workdir / "qa.jsonl"
    qa.write_text(
        json.dumps({"question": DOMBRA, "answers": ["her uncle"], "kind": "answerable"}) + "\n"
        + json.dumps({"question": "Is Sezim married?", "answers": [], "kind": "off_topic"}) + "\n",
        encoding="utf-8",
    )
    shown = invoke(runner, "eval", qa, "--seeds", seeds_dir, "--index", index_dir, "--misses")
    assert shown.exit_code == 0, shown.output
    assert "Misses (1):" in shown.stdout
    assert f"[answerable] {DOMBRA}" in shown.stdout and "expected: her uncle" in shown.stdout
    assert "Growing up in a small village" in shown.stdout  # what it said instead
    shown = invoke(runner, "eval", qa, "--seeds", seeds_dir, "--index", index_dir, "--misses", "--json")
    report = json.loads(shown.stdout)
    assert [m["question"] for m in report["misses"]] == [DOMBRA]
    assert report["off_topic_refusal_rate"] == 1.0


def test_default_folders_are_seeds_and_index_in_the_current_directory(runner, workdir):
    copy_seeds(SEEDS, workdir / "seeds")
    reply = ask_json(runner, DOMBRA)
    assert reply["citations"][0]["source"] == SEZIM_FILE
    assert (workdir / "index" / "CURRENT").is_file()


def test_environment_variables_choose_the_folders(runner, workdir, tmp_path, monkeypatch):
    seeds = copy_seeds(SEEDS, tmp_path / "env-seeds")
    monkeypatch.setenv("BOT_SEEDS", str(seeds))
    monkeypatch.setenv("BOT_INDEX", str(tmp_path / "env-index"))
    result = invoke(runner, "build")
    assert result.exit_code == 0 and SUMMARY.fullmatch(result.stdout.strip())
    assert (tmp_path / "env-index" / "CURRENT").is_file() and not (workdir / "index").exists()


def test_every_command_takes_seeds_and_index():
    for name, command in cli.commands.items():
        options = {option for param in command.params for option in getattr(param, "opts", [])}
        assert {"--seeds", "--index"} <= options, name


@pytest.mark.parametrize("command", [["build"], ["ask", DOMBRA], ["ask", "--json", DOMBRA]])
def test_an_empty_seeds_folder_is_a_clear_error_not_a_traceback(runner, tmp_path, workdir, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, [*command, "--seeds", str(empty), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # click's clean exit, not an escaped error
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: No readable documents in")
    assert "bot build" in result.stderr and ".txt" in result.stderr


def test_a_missing_seeds_folder_is_a_clear_error(runner, tmp_path, workdir):
    result = runner.invoke(cli, ["build", "--seeds", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "does not exist" in result.stderr and "Traceback" not in result.output


# -- the real console script, in a subprocess ---------------------------------------------


def test_console_script_build_and_ask_json(tmp_path):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    built = run_bot("build", "--seeds", seeds, "--index", tmp_path / "index", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert SUMMARY.fullmatch(built.stdout.strip()), built.stdout
    asked = run_bot("ask", "--json", DOMBRA, "--seeds", seeds, "--index", tmp_path / "index", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert len(asked.stdout.splitlines()) == 1, asked.stdout  # nothing but the one JSON object
    reply = json.loads(asked.stdout)
    assert reply["refused"] is False and "grandmother" in reply["text"]
    assert {"text", "source", "start", "end", "score"} <= set(reply["citations"][0])
    assert "Traceback" not in asked.stderr


def test_console_script_error_has_no_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_bot("ask", "--json", DOMBRA, "--seeds", tmp_path / "empty", "--index", tmp_path / "i", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: No readable documents")
    assert "Traceback" not in result.stderr


def test_python_dash_m_bot_is_the_same_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for command in ("build", "ask"):
        assert command in result.stdout


def test_the_common_options_come_from_the_environment_and_help_says_so(runner, seeds_dir, tmp_path, workdir,
                                                                        monkeypatch):
    index = tmp_path / "env-index"
    monkeypatch.setenv("BOT_SEEDS", str(seeds_dir))
    monkeypatch.setenv("BOT_INDEX", str(index))
    built = invoke(runner, "build")
    assert built.exit_code == 0, built.output
    assert SUMMARY.fullmatch(built.stdout.strip()) and (index / "CURRENT").is_file()
    assert not (workdir / "index").exists()
    shown = " ".join(invoke(runner, "build", "--help").stdout.split())
    for variable in ("BOT_SEEDS", "BOT_INDEX", "BOT_MODEL"):
        assert f"env var: {variable}" in shown


def test_eval_keeps_its_own_folders_whatever_the_environment_says(runner, tmp_path, workdir, monkeypatch):
    question_set = workdir / "set"
    copy_seeds(SEEDS, question_set / "seeds")
    qa = question_set / "qa.jsonl"
    qa.write_text(json.dumps({"question": DOMBRA, "answers": ["grandmother"], "kind": "answerable"}) + "\n",
                  encoding="utf-8")
    (tmp_path / "no-seeds").mkdir()
    monkeypatch.setenv("BOT_SEEDS", str(tmp_path / "no-seeds"))  # would fail: nothing to index
    monkeypatch.setenv("BOT_INDEX", str(tmp_path / "env-index"))
    result = invoke(runner, "eval", qa, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["answerable_accuracy"] == 1.0  # the seeds beside the set
    assert not (tmp_path / "env-index").exists()  # the index went to the cache
