"""Read the artist's documents from ``seeds/``.

Each readable document becomes a :class:`SeedFile`: one ``text`` and the
:class:`Block` spans of its paragraphs, headings, questions, answers and
table rows. What ``text`` is depends on the format:

- ``.txt`` and ``.md``: the decoded file itself, Markdown markup blanked to
  spaces, so every offset the bot reports points at the same place in the
  file on disk (:mod:`.text`, :mod:`.markdown`);
- ``.pdf``, ``.docx``, ``.html``: the text the bot extracted from the file
  (:mod:`.pdf`, :mod:`.word`, :mod:`.html`), kept in a cache by the file's
  SHA-256 (:mod:`.cache`) so an unchanged file is not extracted again.

A file the bot cannot read (another type, encrypted, corrupt, a scan with no
text, too big) is skipped with one warning naming it and saying why; the
reasons travel with the result as :attr:`Seeds.skipped`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..safeopen import read_inside, walk_inside
from . import cache, html, markdown, pdf, text, word
from .blocks import Block, Unreadable
from .markdown import looks_like_html, markdown_to_text
from .text import read_text

__all__ = [
    "seeds_of",
    "Block", "NoSeedsError", "SeedFile", "Seeds", "SkippedFile", "SEED_SUFFIXES",
    "file_sha256", "list_seed_paths", "load_seeds", "skipped_summary",
]

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
PDF_SUFFIXES = (".pdf",)
WORD_SUFFIXES = (".docx",)
HTML_SUFFIXES = (".html", ".htm")
SEED_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + PDF_SUFFIXES + WORD_SUFFIXES + HTML_SUFFIXES
#: Files that live in the seeds folder but are settings, not documents.
NOT_DOCUMENTS = frozenset({"persona.toml"})
#: Default for ``Config.max_pdf_pages``.
MAX_PDF_PAGES = 300

#: Names what the readers do, for the index's settings (see ``bot.chunk.SPLITTER``):
#: a change of any reader re-chunks every document.
EXTRACTION = ", ".join(module.VERSION for module in (text, markdown, pdf, word, html))


class NoSeedsError(RuntimeError):
    """Raised when the seeds folder is missing or holds no readable document."""


@dataclass(frozen=True)
class SeedFile:
    """One readable document from the seeds folder."""

    #: Path relative to the seeds folder, with forward slashes.
    path: str
    #: What citations' offsets index: the decoded file (markup blanked) for
    #: ``.txt``/``.md``, the extracted text for PDF, Word and HTML.
    text: str
    #: Paragraphs, headings, questions, answers and table rows, in order:
    #: sentences never cross a block boundary.
    blocks: tuple[Block, ...]
    #: SHA-256 of the file's bytes, used to tell which files changed.
    sha256: str


@dataclass(frozen=True)
class SkippedFile:
    """A file in the seeds folder that was not read, and why."""

    path: str
    reason: str


class Seeds(list):
    """The readable seed files (a list of :class:`SeedFile`), with the files skipped and why."""

    def __init__(self, files=(), skipped=()):
        super().__init__(files)
        self.skipped: list[SkippedFile] = list(skipped)


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _candidate_files(seeds_dir: Path) -> list[Path]:
    """Every visible file under ``seeds_dir`` that is not the bot's own settings, sorted.

    A folder that cannot be listed (a path longer than the system allows) is
    skipped with a warning, not the end of the listing (:func:`walk_inside`).
    """
    return [
        path
        for path in sorted(walk_inside(seeds_dir))
        if not _is_hidden(path.relative_to(seeds_dir)) and path.name not in NOT_DOCUMENTS and path.is_file()
    ]


def _scan(seeds_dir: Path) -> tuple[list[Path], list[SkippedFile]]:
    """The documents of a readable type under ``seeds_dir``, and the files left out."""
    root = seeds_dir.resolve()
    found, skipped = [], []
    for path in _candidate_files(seeds_dir):
        name = path.relative_to(seeds_dir).as_posix()
        if path.suffix.lower() not in SEED_SUFFIXES:
            kind = path.suffix or "a file without an extension"
            reason = f"{kind} is not a type the bot reads (it reads .txt, .md, .pdf, .docx, .html)"
            skipped.append(SkippedFile(name, reason))
        elif not path.resolve().is_relative_to(root):
            skipped.append(SkippedFile(name, "it links outside the seeds folder"))
        else:
            found.append(path)
    return found, skipped


def list_seed_paths(seeds_dir: Path) -> list[Path]:
    """Return the documents of a readable type under ``seeds_dir``, sorted.

    Hidden files and folders are skipped, and so is anything whose real
    location is outside ``seeds_dir`` (a symlink pointing elsewhere), so the
    bot never reads beyond the folder it was given.
    """
    found, skipped = _scan(seeds_dir)
    for item in skipped:
        if "outside" in item.reason:
            log.warning("Skipping %s: %s.", item.path, item.reason)
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
    """Decode a text file's bytes, or return None when they are not text."""
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


def _extract(name: str, suffix: str, data: bytes, digest: str, max_pdf_pages: int, cache_dir: Path | None):
    """The text and blocks of one file's bytes; raises :class:`Unreadable`."""
    if suffix in PDF_SUFFIXES:
        # The page cap decides whether a long PDF is read at all, so it is part of the key.
        key = f"{pdf.VERSION}-{max_pdf_pages}pages"
        return cache.extracted(cache_dir, digest, key, lambda: pdf.extract(data, max_pdf_pages))
    if suffix in WORD_SUFFIXES:
        return cache.extracted(cache_dir, digest, word.VERSION, lambda: word.extract(data))
    if suffix in HTML_SUFFIXES:
        return cache.extracted(cache_dir, digest, html.VERSION, lambda: html.extract(data))
    raw = decode(data)
    if raw is None:
        raise Unreadable("it is not UTF-8 text (binary or another encoding)")
    raw = raw.replace("\r\n", " \n").replace("\r", "\n")
    if suffix in MARKDOWN_SUFFIXES:
        if looks_like_html(raw):
            log.warning("%s looks like an HTML page, not Markdown: reading it as HTML.", name)
            return cache.extracted(cache_dir, digest, html.VERSION, lambda: html.extract(data))
        return markdown_to_text(raw)
    return read_text(raw)


def read_seed(
    seeds_dir: Path,
    path: Path,
    max_bytes: int,
    max_pdf_pages: int = MAX_PDF_PAGES,
    cache_dir: Path | None = None,
) -> SeedFile | SkippedFile:
    """Read one seed file, or say why it cannot be used."""
    name = path.relative_to(seeds_dir).as_posix()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return SkippedFile(name, f"{size} bytes is over the {max_bytes}-byte limit")
        # Every format's bytes come from here, opened inside the seeds folder only:
        # a file swapped for a link to elsewhere since it was listed is refused.
        data = read_inside(seeds_dir, path, max_bytes)
    except OSError as error:
        return SkippedFile(name, f"cannot read it ({error.strerror or error})")
    digest = hashlib.sha256(data).hexdigest()
    try:
        text, blocks = _extract(name, path.suffix.lower(), data, digest, max_pdf_pages, cache_dir)
    except Unreadable as problem:
        return SkippedFile(name, str(problem))
    return SeedFile(path=name, text=text, blocks=blocks, sha256=digest)


def seeds_of(config: Config) -> Seeds:
    """The seeds a :class:`Config` names, read with its size and page limits and its extraction cache.

    Every reader of the live seeds (the build, the staleness checks) goes
    through here, so they all see the same documents.
    """
    return load_seeds(config.seeds_dir, config.max_seed_bytes, max_pdf_pages=config.max_pdf_pages,
                      cache_dir=config.cache_dir / "extracted")


def load_seeds(
    seeds_dir: Path,
    max_bytes: int = 16 * 1024 * 1024,
    *,
    max_pdf_pages: int = MAX_PDF_PAGES,
    cache_dir: Path | None = None,
) -> Seeds:
    """Read every usable seed file under ``seeds_dir``; warn once about each file skipped.

    ``cache_dir`` holds extracted PDF, Word and HTML text by file hash
    (default: ``artist-bot/extracted`` in the user's cache folder).
    Raises :class:`NoSeedsError` with advice when there is nothing to read.
    """
    if not seeds_dir.is_dir():
        raise NoSeedsError(
            f"The seeds folder {seeds_dir} does not exist. Create it and put the artist's "
            "documents in it (.txt, .md, .pdf, .docx or .html files)."
        )
    files = []
    paths, skipped = _scan(seeds_dir)
    for path in paths:
        result = read_seed(seeds_dir, path, max_bytes, max_pdf_pages, cache_dir)
        (files if isinstance(result, SeedFile) else skipped).append(result)
    skipped.sort(key=lambda s: s.path)
    for item in skipped:
        log.warning("Skipping %s: %s.", item.path, item.reason)
    if not any(seed.text.strip() for seed in files):
        raise NoSeedsError(
            f"No readable documents in {seeds_dir}. Add the artist's biography, interviews or "
            "press kits there as .txt, .md, .pdf, .docx or .html files, then run `bot build`."
        )
    return Seeds(files, skipped)


def skipped_summary(skipped: list[SkippedFile]) -> str:
    """" 2 files skipped: a.pdf (it is encrypted ...); b.jpg (...)." for a build's summary, or ""."""
    if not skipped:
        return ""
    files = "file" if len(skipped) == 1 else "files"
    return f" {len(skipped)} {files} skipped: " + "; ".join(f"{s.path} ({s.reason})" for s in skipped) + "."
