"""Light modules import without the heavy stack; the package's public names still work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("faiss", "torch", "gradio", "sentence_transformers", "onnxruntime")


def imported_after(statement: str) -> dict:
    """Run ``statement`` in a fresh interpreter; which HEAVY modules it loaded, and its printed value."""
    script = (
        "import json, sys\n"
        f"{statement}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["bot", "bot.query", "bot.config", "bot.persona", "bot.chunk"])
def test_light_modules_do_not_import_faiss_torch_or_gradio(module):
    assert imported_after(f"import {module}") == []


def test_the_public_names_still_resolve():
    statement = (
        "import bot\n"
        "from bot import Answer, Bot, Config, Passage, Ranking, answer, default_bot, retrieve\n"
        "import bot.answer, bot.retrieve, bot.core  # the modules of the same names do not hide the functions\n"
        "assert callable(bot.answer) and bot.answer is answer and bot.retrieve is retrieve\n"
        "assert Bot.__module__ == 'bot.core' and Answer.__module__ == 'bot.answer'\n"
        "assert Passage.__module__ == 'bot.retrieve' and bot.Bot is Bot\n"
        "assert sys.modules['bot.answer'].Answer is Answer\n"
        "assert set(bot.__all__) <= set(dir(bot))\n"
        "try:\n"
        "    bot.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('bot.no_such_name resolved')\n"
    )
    assert "faiss" in imported_after(statement)  # Bot really was loaded


def test_the_command_sets_the_libraries_environment_once_before_they_load():
    statement = (
        "import os\n"
        "for name in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'GRADIO_ANALYTICS_ENABLED'):\n"
        "    os.environ.pop(name, None)\n"
        "os.environ['HF_HUB_OFFLINE'] = '0'  # a user's own choice is kept\n"
        "from bot.config import prepare_libraries\n"
        "prepare_libraries(); prepare_libraries()\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '0' and os.environ['TRANSFORMERS_OFFLINE'] == '1'\n"
        "assert os.environ['GRADIO_ANALYTICS_ENABLED'] == 'False'\n"
    )
    assert imported_after(statement) == []
