"""Read the artist's documents from ``seeds/``.

Each readable ``.txt`` or ``.md`` file becomes a :class:`SeedFile` whose
``text`` has exactly the length of the decoded file, so that every character
offset the bot reports points at the same place in the file on disk. Markdown
is reduced to its prose by blanking its markup with spaces rather than
deleting it, which keeps those offsets true.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from .safeopen import read_inside, walk_inside

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
SEED_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


class NoSeedsError(RuntimeError):
    """Raised when the seeds folder is missing or holds no readable document."""


@dataclass(frozen=True)
class SeedFile:
    """One readable document from the seeds folder."""

    #: Path relative to the seeds folder, with forward slashes.
    path: str
    #: The decoded file with markup blanked out; same length as the file's text.
    text: str
    #: ``(start, end)`` character spans of the prose blocks (paragraphs,
    #: headings, list items): sentences never cross a block boundary.
    blocks: tuple[tuple[int, int], ...]
    #: SHA-256 of the file's bytes, used to tell which files changed.
    sha256: str


def list_seed_paths(seeds_dir: Path) -> list[Path]:
    """Return the ``.txt`` and ``.md`` files under ``seeds_dir``, sorted.

    Hidden files and folders are skipped, and so is anything whose real
    location is outside ``seeds_dir`` (a symlink pointing elsewhere), so the
    bot never reads beyond the folder it was given.
    """
    root = seeds_dir.resolve()
    found = []
    for path in sorted(walk_inside(seeds_dir)):
        relative = path.relative_to(seeds_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() not in SEED_SUFFIXES or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            log.warning("Skipping %s: it links outside the seeds folder.", path)
            continue
        found.append(path)
    return found


def file_sha256(path: Path) -> str:
    """Hash a file's bytes in blocks (seed files may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_plausible_utf16(data: bytes, text: str) -> bool:
    """Whether ``data``, which starts with a UTF-16 byte-order mark, really is UTF-16 ``text``.

    Any even number of bytes decodes as UTF-16, so a file in another
    encoding that happens to start with the bytes FF FE (``ÿþ`` in Latin-1)
    would become a page of CJK-looking characters. Real UTF-16 text has
    spaces or line breaks, or (for Latin scripts) a zero in every other
    byte; text decoded from 8-bit bytes has neither.
    """
    body = text.lstrip("\ufeff")
    if len(body) < 16:
        return True
    if data.count(0) * 4 >= len(data):
        return True
    return any(ch.isspace() or "\u3000" <= ch <= "\u303f" for ch in body)


def decode(data: bytes) -> str | None:
    """Decode a seed file's bytes, or return None when they are not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None
        return text if is_plausible_utf16(data, text) else None
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def read_seed(seeds_dir: Path, path: Path, max_bytes: int) -> SeedFile | None:
    """Read one seed file, or warn and return None when it cannot be used."""
    name = path.relative_to(seeds_dir).as_posix()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            log.warning("Skipping %s: %d bytes is over the %d-byte limit.", name, size, max_bytes)
            return None
        data = read_inside(seeds_dir, path, max_bytes)
    except OSError as error:
        log.warning("Skipping %s: cannot read it (%s).", name, error.strerror or error)
        return None
    raw = decode(data)
    if raw is None:
        log.warning("Skipping %s: it is not UTF-8 text (binary or another encoding).", name)
        return None
    raw = raw.replace("\r\n", " \n").replace("\r", "\n")
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        text, blocks = markdown_to_text(raw)
    else:
        text, blocks = raw, paragraph_blocks(raw)
    return SeedFile(path=name, text=text, blocks=blocks, sha256=hashlib.sha256(data).hexdigest())


def load_seeds(seeds_dir: Path, max_bytes: int = 16 * 1024 * 1024) -> list[SeedFile]:
    """Read every usable seed file under ``seeds_dir``.

    Raises :class:`NoSeedsError` with advice when there is nothing to read.
    """
    if not seeds_dir.is_dir():
        raise NoSeedsError(
            f"The seeds folder {seeds_dir} does not exist. Create it and put the artist's "
            "documents in it as .txt or .md files."
        )
    seeds = [seed for path in list_seed_paths(seeds_dir) if (seed := read_seed(seeds_dir, path, max_bytes))]
    if not any(seed.text.strip() for seed in seeds):
        raise NoSeedsError(
            f"No readable documents in {seeds_dir}. Add the artist's biography, interviews or "
            "press kits there as UTF-8 .txt or .md files, then run `bot build`."
        )
    return seeds


def paragraph_blocks(text: str) -> tuple[tuple[int, int], ...]:
    """Split plain text into paragraphs at blank lines."""
    blocks, start = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        blocks.append((start, match.start()))
        start = match.end()
    blocks.append((start, len(text)))
    return tuple((s, e) for s, e in blocks if text[s:e].strip())


# Inline Markdown markup, blanked to spaces: images and HTML go entirely;
# links keep their label; emphasis and code markers go, their text stays.
_MARKDOWN_INLINE = [
    re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)"),
    re.compile(r"<!--.*?-->", re.S),
    re.compile(r"</?[A-Za-z][^<>\n]*>"),
    re.compile(r"(?<=\])\([^)\n]*\)"),
    re.compile(r"\[(?=[^\]\n]*\])|(?<=[^\[\n])\]"),
    re.compile(r"(\*{1,3}|_{2,3}|`+|~~)(?=\S)|(?<=\S)(\*{1,3}|_{2,3}|`+|~~)"),
    re.compile(r"^[ \t]{0,3}(#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+)", re.M),
    re.compile(r"[ \t]#+[ \t]*$|^\s*\|?\s*:?-{3,}.*$|\|", re.M),
]


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def markdown_to_text(source: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Reduce Markdown to prose of the same length, and find its blocks.

    Block structure comes from markdown-it's parse; code blocks and raw HTML
    blocks are left out because they are not something a fan asks about.
    """
    line_starts = [0]
    for match in re.finditer("\n", source):
        line_starts.append(match.end())
    line_starts.append(len(source))
    spans = set()
    for token in MarkdownIt("commonmark").enable("table").parse(source):
        if token.type == "inline" and token.map:
            first, last = token.map
            spans.add((line_starts[first], line_starts[min(last, len(line_starts) - 1)]))
    text = source
    for pattern in _MARKDOWN_INLINE:
        text = pattern.sub(_blank, text)
    blocks = tuple(sorted((s, e) for s, e in spans if text[s:e].strip()))
    return text, blocks
