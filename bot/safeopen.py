"""Reading files inside a folder, and only inside it, even while the folder changes.

The seeds folder is checked before it is read: its files are listed, and a
file whose real location is outside it (a symlink pointing elsewhere) is
skipped. Between that check and the read, a file (or a folder on its path)
can be swapped for a symlink to anywhere; reading by name would then follow
it. :func:`read_inside` opens the file one path component at a time from the
folder itself, refusing to follow a symlink at any step (``O_NOFOLLOW``), and
checks that what it opened is a regular file, so what it reads is what was
checked or nothing.

:func:`walk_inside` lists the files under a folder like ``rglob("*")``, but
a folder that cannot be listed (a path longer than the system allows, no
permission) is skipped with a warning rather than ending the listing.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from .printable import printable

log = logging.getLogger(__name__)

#: Longest path the system can open by name (4096 on Linux).
PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096


def walk_inside(root: Path) -> Iterator[Path]:
    """Every entry under ``root`` (files, and links to files), skipping with a warning what cannot be listed."""

    def skipped(error: OSError) -> None:
        name = error.filename if isinstance(error.filename, str) else str(root)
        where = os.path.relpath(name, root) if name.startswith(str(root)) else name
        log.warning("Skipping %s: cannot list it (%s).", printable(where[:200] + ("…" if len(where) > 200 else "")),
                    error.strerror or error)

    for folder, folders, files in os.walk(root, onerror=skipped):
        for name in files:
            path = os.path.join(folder, name)
            if len(os.fsencode(path)) >= PATH_MAX:
                skipped(OSError(errno.ENAMETOOLONG, "File name too long", path))
                continue
            yield Path(path)
        too_long = [name for name in folders if len(os.fsencode(os.path.join(folder, name))) >= PATH_MAX]
        for name in too_long:
            folders.remove(name)
            skipped(OSError(errno.ENAMETOOLONG, "File name too long", os.path.join(folder, name)))


def read_inside(root: Path, path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` under ``root``, never of anything outside ``root``.

    ``path`` may be a symlink whose target is inside ``root``; the target is
    opened, one component at a time with ``O_NOFOLLOW``, so a component
    swapped for a symlink after this check makes the read fail (``ELOOP``)
    instead of following it. Raises ``OSError``: ``EXDEV`` when ``path``
    leads outside ``root``, ``EINVAL`` when it is not a regular file,
    ``EFBIG`` when it holds more than ``max_bytes``.
    """
    real_root = os.path.realpath(root)
    real_path = os.path.realpath(path)
    if os.path.commonpath([real_root, real_path]) != real_root or real_path == real_root:
        raise OSError(errno.EXDEV, "it leads outside the seeds folder", str(path))
    parts = Path(os.path.relpath(real_path, real_root)).parts
    nofollow = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    folder = os.open(real_root, nofollow | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, nofollow | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = inner
        # Audit hooks see only the last component of an open relative to a folder: tell them the whole path.
        sys.audit("open", real_path, "rb", nofollow)
        # O_NONBLOCK: a FIFO put in its place must not block the read; it is refused below.
        handle = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(handle, "rb") as opened:
        if not stat.S_ISREG(os.fstat(opened.fileno()).st_mode):
            raise OSError(errno.EINVAL, "it is not a regular file", str(path))
        data = opened.read() if max_bytes is None else opened.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"it grew over the {max_bytes}-byte limit", str(path))
    return data
