"""Remembering a build that ran out of disk space, so that it is not redone at every question.

A build that passes the free-space check (``build._check_space``) and still
does not fit fails only after embedding every changed seed: minutes of work
lost. Before this, every ``bot ask`` found the index stale and did it all
again. Now the failure is recorded with a fingerprint of the seeds and
settings it was for, in a small file in the index folder (``MARKER``) and in
this process's memory (the disk may be too full even for that file). A build
that may skip a known failure (``update_index(..., retry_failed=False)``, as
``Bot.ensure_index`` asks) raises the recorded error again at once for the
same seeds, unless the disk has more room than when it failed; new or
changed seeds, room made on the disk, or an explicit ``bot build`` try
again, and a build that succeeds forgets the failure.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from ..ingest import SeedFile

#: The record of the last failed build, in the index folder.
MARKER = ".failed-build.json"
#: The errors that are recorded: a full disk or quota. (A folder that is
#: read-only is not: it is cheap to find out again, and it heals by itself.)
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

#: How much more free space than at the failure counts as room made (or a tenth more, if more).
ROOM_MADE = 16 * 1024 * 1024

#: index folder -> record, for when the marker could not be written.
_remembered: dict[str, dict] = {}


class BuildFailedBefore(OSError):
    """The build was skipped: the same build, for the same seeds, failed before for want of space."""


def fingerprint(seeds: Iterable[SeedFile], settings: dict) -> str:
    """What a build's outcome depends on: every seed file's hash, and the index's settings."""
    files = sorted((seed.path, seed.sha256) for seed in seeds)
    return hashlib.sha256(json.dumps({"settings": settings, "files": files}).encode("utf-8")).hexdigest()


def record_failure(index_dir: Path, seeds_fingerprint: str, error: OSError) -> None:
    """Remember that a build of these seeds failed with ``error`` (only a full disk is remembered)."""
    if error.errno not in DISK_FULL:
        return
    # The message without "[Errno 28]", which the error raised again from the record adds itself.
    message = error.strerror or str(error)
    record = {
        "seeds": seeds_fingerprint, "errno": error.errno, "error": message, "at": time.time(),
        # Taken after the failed generation was removed: the room the build had.
        "free_bytes": _free_bytes(index_dir),
    }
    _remembered[str(index_dir)] = record
    temporary = index_dir / f"{MARKER}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, index_dir / MARKER)
    except OSError:  # the disk is full indeed: the process remembers it all the same
        temporary.unlink(missing_ok=True)


def known_failure(index_dir: Path, seeds_fingerprint: str) -> BuildFailedBefore | None:
    """The error to raise instead of building these seeds again, or None when nothing failed for them."""
    record = _remembered.get(str(index_dir))
    if record is None:
        try:
            record = json.loads((index_dir / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(record, dict) or record.get("seeds") != seeds_fingerprint:
        return None
    had, has = record.get("free_bytes"), _free_bytes(index_dir)
    if isinstance(had, int) and has is not None and has > had + max(ROOM_MADE, had // 10):
        return None  # someone made room: worth another try
    return BuildFailedBefore(
        record.get("errno", errno.ENOSPC),
        f"{record.get('error')}; the last build of these seeds failed so, and it is not tried again "
        "until the seeds change or `bot build` is run",
    )


def forget_failure(index_dir: Path) -> None:
    """A build succeeded: no failure is known any more."""
    _remembered.pop(str(index_dir), None)
    with contextlib.suppress(OSError):
        (index_dir / MARKER).unlink(missing_ok=True)


def _free_bytes(index_dir: Path) -> int | None:
    try:
        return shutil.disk_usage(index_dir).free
    except OSError:
        return None
