"""Hostile seed folders: paths too long to open, and a symlink swapped in between the check and the read
(issue 15, items 7 and 8).

A path longer than PATH_MAX made listing the seeds raise (``bot build`` and
``bot ask`` ended with a traceback, a running server stopped indexing). A
seed replaced by a link to an outside file after it was checked was read,
and its contents quoted with a seeds citation. Real folders, real files.
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from bot.ingest import SeedFile, SkippedFile, list_seed_paths, load_seeds, read_seed
from bot.safeopen import PATH_MAX, read_inside

from conftest import DOMBRA, SEEDS, copy_seeds

SECRET = "The vault code is 4417-SECRET."


def make_too_deep(root, depth_chars: int) -> str:
    """Nested folders under ``root`` whose path is ``depth_chars`` long, with a seed at the bottom; its name."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    fd, made = top, 0
    try:
        while made < depth_chars:
            name = "d" * 200
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            if fd != top:
                os.close(fd)
            fd, made = inner, made + 201
        seed = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(seed, b"Sezim once hid a song in a very deep folder.\n")
        os.close(seed)
    finally:
        if fd != top:
            os.close(fd)
        os.close(top)
    return "d" * 200


def test_a_path_too_long_is_skipped_with_a_warning(tmp_path, make_bot, caplog):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    make_too_deep(seeds, PATH_MAX + 500)
    with caplog.at_level(logging.WARNING):
        paths = list_seed_paths(seeds)
    assert [p.name for p in paths] == ["sezim-baktybekova.txt"]
    assert any("too long" in r.getMessage() for r in caplog.records)
    bot = make_bot(seeds, tmp_path / "index")
    bot.ensure_index()  # what `bot build`, `bot ask` and `bot serve` do
    assert "grandmother" in bot.answer(DOMBRA).text


@pytest.mark.parametrize("name, page", [
    ("news.txt", "{}\n"),
    ("news.md", "# News\n\n{}\n"),
    # Extracted formats read the bytes the safe open returned, not the file by name.
    ("news.html", "<html><body><main><h1>News</h1><p>{}</p></main></body></html>"),
])
def test_a_file_swapped_for_an_outside_link_after_the_check_is_not_read(tmp_path, name, page):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    outside = tmp_path / ("secret" + os.path.splitext(name)[1])
    outside.write_text(page.format(SECRET), encoding="utf-8")
    (seeds / name).write_text(page.format("Sezim announced a tour."), encoding="utf-8")
    checked = list_seed_paths(seeds)
    assert seeds / name in checked
    assert isinstance(read_seed(seeds, seeds / name, 1 << 20, cache_dir=tmp_path / "cache"), SeedFile)
    (seeds / name).unlink()  # swapped between the check and the read
    (seeds / name).symlink_to(outside)
    skipped = read_seed(seeds, seeds / name, 1 << 20, cache_dir=tmp_path / "cache")
    assert isinstance(skipped, SkippedFile) and "outside the seeds folder" in skipped.reason, skipped
    with pytest.raises(OSError):
        read_inside(seeds, seeds / name)


def test_a_folder_swapped_for_an_outside_link_after_the_check_is_not_read(tmp_path):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / "press").mkdir()
    (seeds / "press" / "kit.txt").write_text("Sezim's press kit.\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kit.txt").write_text(SECRET, encoding="utf-8")
    checked = list_seed_paths(seeds)
    assert seeds / "press" / "kit.txt" in checked
    (seeds / "press" / "kit.txt").unlink()
    (seeds / "press").rmdir()
    (seeds / "press").symlink_to(elsewhere, target_is_directory=True)
    seed = read_seed(seeds, seeds / "press" / "kit.txt", 1 << 20)
    assert isinstance(seed, SkippedFile) or SECRET not in seed.text
    assert all(SECRET not in s.text for s in load_seeds(seeds))


def test_links_inside_the_folder_still_work_and_outside_ones_are_refused(tmp_path):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / "alias.txt").symlink_to(seeds / "sezim-baktybekova.txt")
    assert read_inside(seeds, seeds / "alias.txt") == (seeds / "sezim-baktybekova.txt").read_bytes()
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET, encoding="utf-8")
    (seeds / "leak.txt").symlink_to(outside)
    with pytest.raises(OSError) as refused:
        read_inside(seeds, seeds / "leak.txt")
    assert refused.value.errno == errno.EXDEV
    assert [s.path for s in load_seeds(seeds)] == ["alias.txt", "sezim-baktybekova.txt"]


def test_a_fifo_or_a_file_that_grew_is_refused_without_blocking(tmp_path):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    os.mkfifo(seeds / "pipe.txt")
    with pytest.raises(OSError) as refused:
        read_inside(seeds, seeds / "pipe.txt")
    assert refused.value.errno == errno.EINVAL
    (seeds / "big.txt").write_bytes(b"x" * 101)
    with pytest.raises(OSError) as refused:
        read_inside(seeds, seeds / "big.txt", max_bytes=100)
    assert refused.value.errno == errno.EFBIG
    assert read_inside(seeds, seeds / "big.txt", max_bytes=101) == b"x" * 101


def test_bytes_that_only_start_like_utf16_are_not_read_as_garbage(tmp_path, caplog):
    from bot.ingest import decode

    latin1 = "ÿþ Sezim Baktybekova est une chanteuse kazakhe née à Almaty.\n".encode("latin-1")
    assert decode(latin1) is None  # not UTF-8 either: skipped with a warning, not indexed as garbage
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / "latin1.txt").write_bytes(latin1)
    with caplog.at_level(logging.WARNING):
        names = [s.path for s in load_seeds(seeds)]
    assert "latin1.txt" not in names and any("latin1.txt" in r.getMessage() for r in caplog.records)
    # Real UTF-16, in a Latin script and in Chinese without spaces, still reads.
    for text in ("Sezim plays the dombra.\nShe sings.\n", "塞齐姆是一位哈萨克歌手。她弹冬不拉。她出生在阿拉木图。"):
        for encoding in ("utf-16", "utf-16-be"):
            data = text.encode(encoding)
            if encoding == "utf-16-be":
                data = b"\xfe\xff" + data
            assert decode(data) == text, (encoding, text)
