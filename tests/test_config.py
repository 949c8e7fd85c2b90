"""Config: defaults, the environment read in one place, copies with changes."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from bot.config import DEFAULT_MODEL, DOCUMENT_PRECISIONS, Config, Ranking

from conftest import ROOT

#: The environment variables that set Config fields (the table in bot/config.py).
SETTINGS = {
    "BOT_SEEDS": "seeds_dir",
    "BOT_INDEX": "index_dir",
    "BOT_MODEL": "model",
    "XDG_CACHE_HOME": "cache_dir",
    "BOT_ONNX_CACHE": "onnx_dir",
    "BOT_EMBED_DOCUMENTS": "document_precision",
}


@pytest.fixture
def bare_environment(monkeypatch):
    for variable in SETTINGS:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_defaults_without_the_environment(bare_environment):
    config = Config()
    assert config.seeds_dir == Path("seeds") and config.index_dir == Path("index")
    assert config.model == DEFAULT_MODEL
    assert config.cache_dir == Path.home() / ".cache" / "artist-bot"
    assert config.onnx_dir is None and config.onnx_cache_dir == config.cache_dir / "onnx"
    assert config.document_precision is None
    assert config.ranking == Ranking() and config.persona_path == Path("seeds") / "persona.toml"


def test_every_setting_comes_from_its_variable(bare_environment, tmp_path):
    bare_environment.setenv("BOT_SEEDS", str(tmp_path / "s"))
    bare_environment.setenv("BOT_INDEX", str(tmp_path / "i"))
    bare_environment.setenv("BOT_MODEL", "some/model")
    bare_environment.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    bare_environment.setenv("BOT_EMBED_DOCUMENTS", " INT8 ")
    config = Config()
    assert (config.seeds_dir, config.index_dir, config.model) == (tmp_path / "s", tmp_path / "i", "some/model")
    assert config.cache_dir == tmp_path / "xdg" / "artist-bot"
    assert config.onnx_cache_dir == tmp_path / "xdg" / "artist-bot" / "onnx"
    assert config.document_precision == "int8"
    bare_environment.setenv("BOT_ONNX_CACHE", str(tmp_path / "onnx"))
    assert Config().onnx_cache_dir == tmp_path / "onnx"  # overrides the ONNX folder alone
    assert Config().cache_dir == tmp_path / "xdg" / "artist-bot"


def test_the_environment_is_read_when_a_config_is_made(bare_environment, tmp_path):
    before = Config()
    bare_environment.setenv("BOT_SEEDS", str(tmp_path))
    assert before.seeds_dir == Path("seeds") and Config().seeds_dir == tmp_path


def test_an_empty_variable_counts_as_unset(bare_environment):
    for variable in SETTINGS:
        bare_environment.setenv(variable, "")
    config = Config()
    assert config.seeds_dir == Path("seeds") and config.model == DEFAULT_MODEL
    assert config.cache_dir == Path.home() / ".cache" / "artist-bot" and config.onnx_dir is None


def test_an_unknown_document_precision_is_ignored_with_a_warning(bare_environment, caplog):
    bare_environment.setenv("BOT_EMBED_DOCUMENTS", "fp16")
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        assert Config().document_precision is None
    assert any("BOT_EMBED_DOCUMENTS=fp16" in record.getMessage() for record in caplog.records)
    with pytest.raises(ValueError, match="document_precision"):
        Config(document_precision="fp16")
    for precision in DOCUMENT_PRECISIONS:
        assert Config(document_precision=precision).document_precision == precision


def test_with_changes_copies_and_keeps_paths_as_paths(bare_environment, tmp_path):
    config = Config()
    changed = config.with_changes(seeds_dir=str(tmp_path / "s"), cache_dir=str(tmp_path / "c"), candidates=7)
    assert changed.seeds_dir == tmp_path / "s" and isinstance(changed.seeds_dir, Path)
    assert changed.onnx_cache_dir == tmp_path / "c" / "onnx"  # follows the cache root unless set
    assert changed.candidates == 7 and changed.index_dir == config.index_dir
    assert config.seeds_dir == Path("seeds") and config.candidates == 50  # the original is untouched
    with pytest.raises(TypeError):
        config.with_changes(no_such_setting=1)


def _environment_reads(path: Path) -> set[str]:
    """Names of the environment variables a module reads (os.environ[...], .get(...), os.getenv(...))."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            key = node.slice
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("environ.get", "getenv")):
            key = node.args[0] if node.args else None
        else:
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


def test_the_settings_variables_are_read_in_config_py_alone():
    readers = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for name in _environment_reads(path) & set(SETTINGS):
            readers.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert readers == {}, readers  # config.py reads them through one function, by variable name
    config_py = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    assert config_py.count("os.environ.get(") == 1
    for variable in SETTINGS:
        assert f'"{variable}"' in config_py
