"""When this process started, for ``bot serve``'s "ready after" figure."""

from __future__ import annotations

import os
import time


def _seconds_since_process_start() -> float:
    """How long this process has run, from Linux's /proc; 0 where that cannot be read or makes no sense."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        age = since_boot - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if 0.0 <= age < 60.0 else 0.0  # a container's /proc/uptime may not be the host's


#: When this process started, on the ``time.perf_counter`` clock: ``bot
#: serve``'s "ready" figure counts from it, the interpreter's start and every
#: import included (where /proc cannot say, from this module's import).
STARTED = time.perf_counter() - _seconds_since_process_start()
