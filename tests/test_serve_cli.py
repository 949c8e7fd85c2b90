"""``bot serve``'s settings: --auth / BOT_AUTH and --rate-limit / BOT_RATE_LIMIT, and their errors.

The server itself is replaced by a recorder here (the real one runs in
``test_security.py``): these tests are about what the command passes to it,
and what it says first.
"""

import subprocess
import sys

import pytest
from click.testing import CliRunner

import bot.serve.server
from bot.cli import STARTED, cli
from bot.feedback.store import default_log_path

from conftest import ROOT, bot_command, bot_env


@pytest.fixture
def started(monkeypatch):
    """The settings each ``bot serve`` would have started the server with."""
    calls = []

    def record(config, started, **settings):
        assert started == STARTED  # the "ready" figure counts from the process's start
        calls.append(settings)

    monkeypatch.setattr(bot.serve.server, "serve", record)
    monkeypatch.delenv("BOT_AUTH", raising=False)
    monkeypatch.delenv("BOT_RATE_LIMIT", raising=False)
    return calls


def serve(*args, **env):
    return CliRunner().invoke(cli, ["serve", "--seeds", "seeds", "--index", "index", *args], env=env)


def test_defaults_no_password_and_30_a_minute(started):
    assert serve().exit_code == 0
    assert started == [{"host": "127.0.0.1", "port": 7860, "auth": None, "rate_limit": 30,
                        "log_path": default_log_path(), "log_days": 90}]


def test_settings_from_the_environment(started):
    # The whole of BOT_AUTH is one account: its password may hold spaces (and colons).
    result = serve(BOT_AUTH="owner:correct horse:battery", BOT_RATE_LIMIT="5")
    assert result.exit_code == 0, result.output
    assert started[-1]["auth"] == [("owner", "correct horse:battery")] and started[-1]["rate_limit"] == 5
    # Empty variables count as unset.
    assert serve(BOT_AUTH="", BOT_RATE_LIMIT="").exit_code == 0
    assert started[-1]["auth"] is None and started[-1]["rate_limit"] == 30
    assert serve(BOT_RATE_LIMIT="0").exit_code == 0 and started[-1]["rate_limit"] == 0


def test_the_command_line_wins_over_the_environment(started):
    result = serve("--auth", "a:1", "--auth", "b:2", "--rate-limit", "7", BOT_AUTH="owner:x", BOT_RATE_LIMIT="5")
    assert result.exit_code == 0, result.output
    assert started == [{"host": "127.0.0.1", "port": 7860, "auth": [("a", "1"), ("b", "2")], "rate_limit": 7,
                        "log_path": default_log_path(), "log_days": 90}]
    # A good --rate-limit is used even when BOT_RATE_LIMIT is bad.
    assert serve("--rate-limit", "3", BOT_RATE_LIMIT="lots").exit_code == 0 and started[-1]["rate_limit"] == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOT_RATE_LIMIT": "lots"}, "BOT_RATE_LIMIT must be a whole number of questions per minute (0: no limit)."),
        ({"BOT_RATE_LIMIT": "2.5"}, "BOT_RATE_LIMIT must be a whole number of questions per minute (0: no limit)."),
        ({"BOT_RATE_LIMIT": "-1"}, "BOT_RATE_LIMIT must be 0 or more."),
        ({"BOT_AUTH": "no-colon"}, "--auth (or BOT_AUTH) must be USER:PASSWORD, with a user name and a password."),
    ],
)
def test_bad_settings_in_the_environment_are_clear_errors(started, env, message):
    result = serve(**env)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert started == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "-1"], "-1 is not in the range x>=0"),
        (["--rate-limit", "lots"], "'lots' is not a valid integer"),
        (["--auth", ":secret"], "--auth (or BOT_AUTH) must be USER:PASSWORD"),
    ],
)
def test_bad_settings_on_the_command_line_are_clear_errors(started, args, message):
    result = serve(*args)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and started == []


def test_the_ready_figure_counts_from_the_start_of_the_process():
    """What ran before ``bot.cli`` was imported (here a one-second pause) is counted too."""
    program = "import time; time.sleep(1.0); import bot.cli; print(time.perf_counter() - bot.cli.STARTED)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=bot_env(),
                            timeout=120, check=True)
    assert 1.0 <= float(result.stdout) < 60


def test_serve_says_what_it_is_doing_before_anything_else(tmp_path):
    """The first line comes before Gradio is imported (which takes seconds), so a fan is not left waiting blind."""
    process = subprocess.Popen([*bot_command(), "serve", "--seeds", str(ROOT / "seeds"), "--index",
                                str(tmp_path / "index"), "--port", "1"], cwd=tmp_path, env=bot_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = process.stdout.readline()
    finally:
        process.kill()
        process.wait(30)
    assert first.startswith("INFO bot: Starting the chat: loading the web server"), first
