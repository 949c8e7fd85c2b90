"""``bot serve``'s settings: --auth / BOT_AUTH and --rate-limit / BOT_RATE_LIMIT, and their errors.

The server itself is replaced by a recorder here (the real one runs in
``test_security.py``): these tests are about what the command passes to it.
"""

import pytest
from click.testing import CliRunner

import bot.serve.server
from bot.cli import cli


@pytest.fixture
def started(monkeypatch):
    """The settings each ``bot serve`` would have started the server with."""
    calls = []
    monkeypatch.setattr(bot.serve.server, "serve", lambda config, **settings: calls.append(settings))
    monkeypatch.delenv("BOT_AUTH", raising=False)
    monkeypatch.delenv("BOT_RATE_LIMIT", raising=False)
    return calls


def serve(*args, **env):
    return CliRunner().invoke(cli, ["serve", "--seeds", "seeds", "--index", "index", *args], env=env)


def test_defaults_no_password_and_30_a_minute(started):
    assert serve().exit_code == 0
    assert started == [{"host": "127.0.0.1", "port": 7860, "auth": None, "rate_limit": 30}]


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
    assert started == [{"host": "127.0.0.1", "port": 7860, "auth": [("a", "1"), ("b", "2")], "rate_limit": 7}]
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
