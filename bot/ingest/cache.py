"""Extracted text kept by file hash, so an unchanged PDF is not read again.

Extracting a PDF, a Word file or a web page costs far more than reading a
text file, and the seeds are read at every start and every change. Each
extraction is kept as one JSON file named by the file's SHA-256 and the
reader's version; editing one file extracts only that file again. The cache
is only ever a shortcut: an entry that cannot be read or written is ignored.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .blocks import Block

log = logging.getLogger(__name__)


def default_dir() -> Path:
    """``extracted/`` in the bot's cache folder (``Config.cache_dir``: ``~/.cache/artist-bot``)."""
    from ..config import Config

    return Config().cache_dir / "extracted"


def _entry(cache_dir: Path, digest: str, version: str) -> Path:
    return cache_dir / f"{digest}.{version}.json"


def extracted(
    cache_dir: Path | None,
    digest: str,
    version: str,
    extract: Callable[[], tuple[str, tuple[Block, ...]]],
) -> tuple[str, tuple[Block, ...]]:
    """The cached extraction of the file with SHA-256 ``digest``, or ``extract()`` and keep it.

    Failures (:class:`~bot.ingest.blocks.Unreadable`) are not kept: reading
    such a file fails fast, and a fixed reader should get another try.
    """
    path = _entry(cache_dir or default_dir(), digest, version)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["text"], tuple(Block(*fields) for fields in data["blocks"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    text, blocks = extract()
    record = {"text": text, "blocks": [[b.start, b.end, b.kind, b.section, b.page, b.question] for b in blocks]}
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as handle:
            temporary = handle.name
            json.dump(record, handle, ensure_ascii=False)
        os.replace(temporary, path)  # whole entries only, for a reader in another process
    except OSError as error:
        log.debug("Could not keep the extracted text of %s in the cache (%s).", digest[:12], error)
        if temporary:
            Path(temporary).unlink(missing_ok=True)
    return text, blocks
