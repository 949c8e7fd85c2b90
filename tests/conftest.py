"""Shared fixtures: the real bundled model, real FAISS, the real seeds.

Nothing here fakes the model or the index. Loading the model is the slow
part, so one :class:`Embedder` is shared by the whole session; every test
that builds an index works on its own copy of the seeds in ``tmp_path``.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot import Bot, Config
from bot.chunk import clean
from bot.embed import Embedder
from bot.measure.server import ServeProcess, free_port  # noqa: F401 - free_port: for the server tests

#: The repository root, and the shared evaluation data beside it.
ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
EVAL = SHARED / "eval"
SEZIM_FILE = "sezim-baktybekova.txt"

#: Questions many tests ask: one the seed answers, one it must refuse, and markup.
DOMBRA = "Who taught Sezim to play the dombra?"
FRANCE = "What's the capital of France?"
XSS = "<img src=x onerror=alert(1)>"

needs_shared = pytest.mark.skipif(not EVAL.is_dir(), reason=f"the shared evaluation data is not at {EVAL}")


def copy_seeds(source: Path, target: Path) -> Path:
    """Copy a seeds folder; the copies are writable even when the originals are not."""
    shutil.copytree(source, target, copy_function=shutil.copyfile)
    return target


#: Where the embedding model's ONNX export is kept: the user's cache, as for
#: the bot itself, so that it is made once and not once per test.
ONNX_CACHE = str(Config().onnx_cache_dir)


#: Varied texts for the embedding tests: short, long (past the 256-token limit), numbers,
#: punctuation, accents, Cyrillic, CJK, emoji, empty and blank.
EMBEDDING_TEXTS = [
    "Who taught Sezim to play the dombra?",
    "When was her first album released?",
    "How many concerts did she give in 2019?",
    "Where was she born?",
    "Sezim Baktybekova is a singer from Kyrgyzstan.",
    "She learned the komuz from her grandmother in Naryn.",
    "Her debut single reached number one in Bishkek in the spring of 2016.",
    "The orchestra played for two hours, and the crowd sang every chorus.",
    "Chopin left Warsaw in 1830 and never returned.",
    "Link's sword is called the Master Sword.",
    "What's your favourite song?!",
    "ok",
    "a",
    "",
    "   ",
    "1994",
    "42 % of 1,000,000 fans — really?",
    "Café naïve Zürich façade déjà vu.",
    "Сезим Бактыбекова — кыргызская певица.",
    "她是一位来自吉尔吉斯斯坦的歌手。",
    "彼女はキルギスの歌手です。",
    "Concert tonight 🎤🎶 don't miss it!!!",
    "<b>HTML</b> &amp; markdown **bold** [link](http://example.com)",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Tab\tseparated\nand new\nlines.",
    "A" * 300,
    "word " * 400,
    " ".join(f"sentence number {i} about the tour of the year {1990 + i}." for i in range(60)),
    "Is she married?",
    "Did she win the Grammy?",
    "Tell me about her childhood.",
    "She wrote the lyrics herself, in Kyrgyz and in Russian, during the winter of 2020.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``a`` with the same row of ``b``."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """An ONNX cache holding one fresh export of the bundled model, made once per session (about half a minute).

    For the tests of the export and of the embedder, which must not depend on
    an export made earlier by other code.
    """
    from bot.backend.onnx_export import ensure_onnx_export
    from bot.config import DEFAULT_MODEL

    cache = tmp_path_factory.mktemp("onnx-cache")
    ensure_onnx_export(DEFAULT_MODEL, cache)
    return cache


@pytest.fixture(scope="session", autouse=True)
def _no_question_log_outside_tmp(tmp_path_factory):
    """Servers started by session fixtures keep their question log in a temporary folder too."""
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data"))
    yield
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(autouse=True)
def _no_writes_outside_tmp(monkeypatch, tmp_path):
    """Keep every test's indexes in its tmp_path, away from ./index and the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("BOT_ONNX_CACHE", ONNX_CACHE)
    # A server started by a test keeps its question log here, not in the user's data folder.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("BOT_SEEDS", "BOT_INDEX", "BOT_MODEL", "BOT_LOG_DB", "BOT_NO_LOG", "BOT_LOG_DAYS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model (bundled all-MiniLM-L6-v2), loaded once."""
    model = Embedder()
    assert model.dimension > 0  # loads it now, not inside the first test's timing
    return model


@pytest.fixture
def seeds_dir(tmp_path) -> Path:
    """A writable copy of the project's seeds."""
    return copy_seeds(SEEDS, tmp_path / "seeds")


@pytest.fixture
def index_dir(tmp_path) -> Path:
    return tmp_path / "index"


def live_generation(index: Path) -> Path:
    """The generation folder an index's CURRENT names, read directly rather than by the code under test."""
    return index / (index / "CURRENT").read_text(encoding="utf-8").strip()


@pytest.fixture
def make_bot(embedder):
    """Make a real Bot over a seeds and an index folder, sharing the loaded model."""

    def make(seeds: Path, index: Path, **settings) -> Bot:
        return Bot(Config(seeds_dir=seeds, index_dir=index, **settings), embedder=embedder)

    return make


def built_bot(base: Path, embedder: Embedder, files: dict[str, str] | None = None) -> Bot:
    """A real Bot over ``base/seeds`` with its index built in ``base/index``.

    The seeds are ``files`` (name -> text) written here, or a copy of the
    shipped seeds when none are given.
    """
    seeds = base / "seeds"
    if files is None:
        copy_seeds(SEEDS, seeds)
    else:
        seeds.mkdir(parents=True)
        for name, text in files.items():
            (seeds / name).write_text(text, encoding="utf-8")
    bot = Bot(Config(seeds_dir=seeds, index_dir=base / "index"), embedder=embedder)
    bot.ensure_index()
    return bot


@pytest.fixture(scope="session")
def sezim_bot(tmp_path_factory, embedder) -> Bot:
    """One bot over a copy of the shipped seeds, built once for the answer tests."""
    return built_bot(tmp_path_factory.mktemp("sezim"), embedder)


def seed_text(seeds: Path, source: str) -> str:
    """A seed file as the bot reads it: decoded, newlines untranslated."""
    with (seeds / source).open(encoding="utf-8-sig", newline="") as handle:
        return handle.read().replace("\r\n", " \n").replace("\r", "\n")


def assert_quoted_verbatim(seeds: Path, passage) -> None:
    """The passage's text is what the seed file holds at its offsets (whitespace collapsed)."""
    text = seed_text(seeds, passage.source)
    assert 0 <= passage.start < passage.end <= len(text), passage
    assert clean(text[passage.start : passage.end]) == passage.text, (
        f"{passage.source}:{passage.start}-{passage.end} holds {text[passage.start:passage.end]!r}, "
        f"not {passage.text!r}"
    )


def bot_command() -> list[str]:
    """The ``bot`` console script of this environment (``python -m bot`` if it has none)."""
    script = Path(sys.executable).with_name("bot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot"]


def bot_env() -> dict[str, str]:
    """The environment for a ``bot`` subprocess: this one, without the bot's own settings."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("BOT_SEEDS", "BOT_INDEX", "BOT_MODEL", "BOT_LOG_DB", "BOT_NO_LOG", "BOT_LOG_DAYS"):
        env.pop(name, None)
    return env


def run_bot(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``bot`` command in a subprocess and wait for it."""
    return subprocess.run(
        [*bot_command(), *map(str, args)], cwd=cwd, env=bot_env(), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


# -- a real `bot serve` on loopback ------------------------------------------------


def start_server(base: Path, log_path: Path, extra: tuple[str, ...] = ()) -> tuple[ServeProcess, str]:
    """``bot serve`` on a free loopback port over ``base/seeds``; returns once it answers HTTP.

    ``extra``: more ``bot serve`` options.
    """
    server = ServeProcess(base / "seeds", base / "index", extra=extra, log_path=log_path, cwd=base, start_timeout=180)
    server.start().wait_until_serving()
    return server, server.url


def stop_server(server: ServeProcess) -> None:
    """Stop a server started by start_server, politely first."""
    server.stop()


CORPUS_NOUNS = "song album dombra steppe village concert record melody voice tour festival river mountain city".split()
CORPUS_VERBS = "sang recorded played wrote remembered carried painted crossed found lost praised".split()


def write_corpus(path: Path, sentences: int, seed: int = 1234, words: tuple[int, int] = (8, 20)) -> None:
    """A varied, deterministic document of ``sentences`` sentences, six to a paragraph, to make builds take a while."""
    rng = random.Random(seed)
    lines = []
    for i in range(sentences):
        chosen = [rng.choice(CORPUS_NOUNS if j % 2 else CORPUS_VERBS) for j in range(rng.randint(*words))]
        lines.append(f"In episode {i} the singer {' '.join(chosen)}.")
        if i % 6 == 5:
            lines.append("\n\n")
    path.write_text(" ".join(lines), encoding="utf-8")
