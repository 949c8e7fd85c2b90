"""Run the ``bot`` command and, at exit, write the process's peak RSS to stderr.

``bot bench`` runs ``python -m bot.measure.probe_ask ask QUESTION ...`` for the
memory of ``bot ask``. The peak is the process's own VmHWM, read at exit: the
rusage of a child would count the parent's pages from before exec.
"""

from __future__ import annotations

import atexit
import sys

from .server import memory_kib

#: The stderr line that carries the figure, followed by KiB.
MARK = "bench-peak-rss-kib"


def _write_peak() -> None:
    peak = memory_kib().get("VmHWM")
    if peak is not None:
        sys.stderr.write(f"{MARK} {peak}\n")


def main() -> None:
    atexit.register(_write_peak)
    sys.argv = ["bot", *sys.argv[1:]]
    from ..cli import main as bot

    bot()


if __name__ == "__main__":
    main()
