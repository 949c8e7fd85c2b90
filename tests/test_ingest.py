"""Reading the seeds folder: which files are read, how, and what is skipped."""

from __future__ import annotations

import hashlib
import logging
import os
import re

import pytest

from bot.ingest import NoSeedsError, load_seeds

from conftest import SEEDS, SEZIM_FILE

MARKDOWN = """# Sezim on tour

Sezim played **twelve** concerts in *Almaty* and [Astana](https://example.org/astana).
She sang `Steppes and Sighs` every night. ![a photo](photo.jpg)

- The dombra was tuned by __her grandmother__.
- <span class="x">Tickets</span> sold out in a day.

> Music is the voice of the steppe.

```
code blocks are not prose
```
"""


def by_path(seeds):
    return {seed.path: seed for seed in seeds}


def test_reads_the_shipped_seed_verbatim():
    seeds = by_path(load_seeds(SEEDS))
    assert SEZIM_FILE in seeds
    seed = seeds[SEZIM_FILE]
    data = (SEEDS / SEZIM_FILE).read_bytes()
    assert seed.text == data.decode("utf-8")
    assert seed.sha256 == hashlib.sha256(data).hexdigest()
    # Paragraph blocks: non-empty, in order, never overlapping, and together
    # they hold every word of the file.
    assert seed.blocks
    assert all(b.start < b.end and b.kind == "text" for b in seed.blocks)
    assert all(a.end <= b.start for a, b in zip(seed.blocks, seed.blocks[1:]))
    assert " ".join(seed.text[b.start : b.end] for b in seed.blocks).split() == seed.text.split()
    assert len(seed.blocks) == seed.text.count("\n\n") + 1


def test_persona_and_other_suffixes_are_not_seeds(tmp_path, caplog):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / "persona.toml").write_text('bot_name = "X"\n', encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4 Sezim sings.")
    (tmp_path / "data.json").write_text('{"a": "Sezim sings."}', encoding="utf-8")
    (tmp_path / "README").write_text("Sezim sings.", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    # Each file left out is named once, with why; the persona is settings, not a document.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert {s.path for s in seeds.skipped} == {"notes.pdf", "data.json", "README"}
    for name in ("notes.pdf", "data.json", "README"):
        assert sum(name in w for w in warnings) == 1, warnings
    assert not any("persona.toml" in w for w in warnings)
    assert "damaged" in next(s.reason for s in seeds.skipped if s.path == "notes.pdf")


def test_recursive_txt_and_md_with_posix_relative_paths(tmp_path):
    (tmp_path / "press" / "2024").mkdir(parents=True)
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / "press" / "review.md").write_text("A *great* album.", encoding="utf-8")
    (tmp_path / "press" / "2024" / "Interview.MD").write_text("She laughs.", encoding="utf-8")
    (tmp_path / "press" / "tour.markdown").write_text("On tour.", encoding="utf-8")
    paths = [seed.path for seed in load_seeds(tmp_path)]
    assert sorted(paths) == ["bio.txt", "press/2024/Interview.MD", "press/review.md", "press/tour.markdown"]


def test_markdown_is_reduced_to_text_of_the_same_length(tmp_path):
    (tmp_path / "tour.md").write_text(MARKDOWN, encoding="utf-8")
    (seed,) = load_seeds(tmp_path)
    # Same length, and markup is only ever blanked: every character that is
    # left is the character of the file at the same offset.
    assert len(seed.text) == len(MARKDOWN)
    assert all(t == s for t, s in zip(seed.text, MARKDOWN) if not t.isspace())
    assert all(s == "\n" for t, s in zip(seed.text, MARKDOWN) if t == "\n")
    prose = " ".join(seed.text.split())
    # A blanked link target leaves a space before the punctuation after it.
    tidy = re.sub(r" (?=[.,;:!?])", "", prose)
    for markup in ("**", "__", "#", "[", "](", "https://", "![", "photo.jpg", "<span", "</span>", "`", "> "):
        assert markup not in prose, markup
    for words in ("Sezim on tour", "Sezim played twelve concerts in Almaty and Astana.",
                  "She sang Steppes and Sighs every night.", "The dombra was tuned by her grandmother.",
                  "Tickets sold out in a day.", "Music is the voice of the steppe."):
        assert words in tidy, words
    # Blocks cover the prose and leave the code block out.
    in_blocks = " ".join(" ".join(seed.text[b.start : b.end].split()) for b in seed.blocks)
    assert "Music is the voice of the steppe." in in_blocks
    assert "Sezim played twelve concerts" in in_blocks
    assert "code blocks are not prose" not in in_blocks
    # A word's offset in the reduced text is its offset in the file.
    offset = seed.text.index("Almaty")
    assert MARKDOWN[offset : offset + len("Almaty")] == "Almaty"


def test_hidden_files_and_folders_are_skipped(tmp_path):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / ".draft.txt").write_text("Secret draft.", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("Secret notes.", encoding="utf-8")
    (tmp_path / "press" / ".cache").mkdir(parents=True)
    (tmp_path / "press" / ".cache" / "old.txt").write_text("Old.", encoding="utf-8")
    (tmp_path / "press" / "ok.txt").write_text("Fine.", encoding="utf-8")
    assert sorted(seed.path for seed in load_seeds(tmp_path)) == ["bio.txt", "press/ok.txt"]


@pytest.mark.parametrize(
    "name, data",
    [
        ("photo.txt", bytes(range(256)) * 4),  # binary, with NUL bytes
        ("latin1.txt", "Sezim’s café in Almaty".encode("cp1252")),  # not UTF-8
        ("broken.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ],
)
def test_binary_or_undecodable_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog, name, data):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / name).write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(name in message for message in warnings), warnings


def test_utf16_and_bom_and_crlf_files_are_read(tmp_path):
    (tmp_path / "utf16.txt").write_bytes("Sezim sings in Kazakh.".encode("utf-16"))
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfShe plays the dombra.")
    (tmp_path / "crlf.txt").write_bytes(b"First line.\r\n\r\nSecond paragraph.\r\n")
    seeds = by_path(load_seeds(tmp_path))
    assert seeds["utf16.txt"].text == "Sezim sings in Kazakh."
    assert seeds["bom.txt"].text == "She plays the dombra."
    crlf = seeds["crlf.txt"]
    # Offsets stay those of the decoded file: CRLF keeps its two characters.
    assert len(crlf.text) == len("First line.\r\n\r\nSecond paragraph.\r\n")
    assert [crlf.text[b.start : b.end].strip() for b in crlf.blocks] == ["First line.", "Second paragraph."]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks here")
def test_symlink_outside_the_seeds_folder_is_skipped(tmp_path, caplog):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("A password that must never be quoted.", encoding="utf-8")
    (seeds / "link.txt").symlink_to(outside)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "more.md").write_text("More secrets.", encoding="utf-8")
    (seeds / "linked-folder").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    # A link that stays inside the folder is an ordinary seed.
    (seeds / "alias.txt").symlink_to(seeds / "bio.txt")
    with caplog.at_level(logging.WARNING, logger="bot"):
        found = load_seeds(seeds)
    paths = sorted(seed.path for seed in found)
    assert "link.txt" not in paths
    assert not any("secret" in seed.text or "More secrets" in seed.text for seed in found)
    assert "bio.txt" in paths
    assert any("link.txt" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_empty_seeds_folder_is_a_clear_error_with_advice(tmp_path):
    with pytest.raises(NoSeedsError) as error:
        load_seeds(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert ".txt" in message and ".md" in message
    assert "bot build" in message


def test_missing_seeds_folder_is_a_clear_error(tmp_path):
    with pytest.raises(NoSeedsError, match="does not exist"):
        load_seeds(tmp_path / "nowhere")


def test_a_folder_of_only_unusable_files_is_the_same_error(tmp_path):
    (tmp_path / "persona.toml").write_text('bot_name = "X"\n', encoding="utf-8")
    (tmp_path / "blank.txt").write_text(" \n\n\t\n", encoding="utf-8")
    (tmp_path / "image.txt").write_bytes(b"\x00\x01\x02")
    (tmp_path / ".hidden.txt").write_text("Hidden.", encoding="utf-8")
    with pytest.raises(NoSeedsError, match="No readable documents"):
        load_seeds(tmp_path)


def test_oversized_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / "huge.txt").write_text("word " * 1000, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path, max_bytes=1000)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    assert any("huge.txt" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("name", ["press-kit.pages", "photo.jpg", "tour.xlsx", "old.doc"])
def test_unsupported_types_are_warned_about_by_name(tmp_path, caplog, name):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / name).write_bytes(b"PK\x03\x04 not for the bot")
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    (skipped,) = seeds.skipped
    assert skipped.path == name and "not a type the bot reads" in skipped.reason
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [w for w in warnings if name in w] == [f"Skipping {name}: {skipped.reason}."]


def test_the_build_summary_says_how_many_files_were_skipped_and_why(tmp_path):
    from bot.index import BuildReport
    from bot.ingest import SkippedFile

    report = BuildReport(unchanged=1, chunks=3, skipped=[SkippedFile("scan.pdf", "it has no text layer"),
                                                         SkippedFile("photo.jpg", ".jpg is not a type the bot reads")])
    summary = report.summary()
    assert summary.startswith("Index is up to date: 3 chunks from 1 files.")
    assert "2 files skipped: scan.pdf (it has no text layer); photo.jpg (.jpg is not a type the bot reads)." in summary
    assert "skipped" not in BuildReport(unchanged=1, chunks=3).summary()
