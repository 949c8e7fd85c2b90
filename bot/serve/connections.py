"""The server's connections: how long each may take, how many there may be, and quiet logs about them.

uvicorn closes a keep-alive connection that stays idle after an answer, but
not one that never sends a request, nor one that sends its headers or body a
byte at a time (slowloris): each holds a file descriptor for ever, and once
the process runs out of them no fan can connect, while asyncio logs every
failed ``accept()`` (thousands of lines a second). So:

- :class:`GuardedH11Protocol` (uvicorn's HTTP/1.1 protocol, with deadlines)
  closes a connection whose request headers have not all arrived within
  :attr:`ConnectionLimits.header_seconds` of its first byte (or of the
  connection opening), or whose body has not all arrived within
  :attr:`ConnectionLimits.body_seconds` of its headers;
- past :attr:`ConnectionLimits.max_connections` (never more than the process's
  file limit allows), a new connection makes room by closing one whose answer
  is held at the door (a client over its rate limit: see :data:`.gate.HELD`),
  or else the one that has waited longest without a request in progress, so
  neither idle sockets nor a flood's connections can lock fans out;
- :class:`RepeatFilter` lets one log line about one cause through every
  :data:`REPEAT_SECONDS`, with a count of those it held back.

:func:`uvicorn_settings` gives all of it as settings of uvicorn's ``Config``;
:mod:`bot.serve.gradio_fixes` hands them to the server Gradio starts.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .gate import HELD

log = logging.getLogger(__name__)

#: Seconds a client has to send a request's headers, from its first byte (or the connection opening).
HEADER_SECONDS = 10.0
#: Seconds a client has to send a request's body once its headers are in (bodies are 2 MiB at most).
BODY_SECONDS = 30.0
#: Seconds an idle keep-alive connection stays open after an answer (uvicorn's own default).
KEEP_ALIVE_SECONDS = 5.0
#: Connections open at once, at most (fewer when the process may open fewer files).
MAX_CONNECTIONS = 1000
#: Connections waiting to be accepted, at most (uvicorn's ``backlog``). asyncio accepts up to
#: this many at each turn of its loop, and a connection closed to make room releases its
#: file only a turn or two later, so twice this must fit in the files left.
BACKLOG = 64
#: File descriptors kept free for everything but connections: two turns of accepts
#: (:data:`BACKLOG`), and the index, the seeds, logs and the watcher.
RESERVED_FILES = 2 * BACKLOG + 64
#: One log line per cause this often, at most.
REPEAT_SECONDS = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float = HEADER_SECONDS
    body_seconds: float = BODY_SECONDS
    keep_alive_seconds: float = KEEP_ALIVE_SECONDS
    max_connections: int = MAX_CONNECTIONS


def raise_file_limit() -> int:
    """Raise this process's open-file limit to what the system allows it; returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def files_open() -> int:
    """File descriptors this process has open now (an estimate where /proc is missing)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 32


def connection_cap(wanted: int = MAX_CONNECTIONS) -> int:
    """How many connections may be open at once: ``wanted``, or fewer when files would run out first."""
    room = raise_file_limit() - files_open() - RESERVED_FILES
    return max(8, min(wanted, room))


def default_limits() -> ConnectionLimits:
    return ConnectionLimits(max_connections=connection_cap())


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with deadlines for reading a request, and a cap on connections.

    A subclass per :class:`ConnectionLimits` is made by :func:`protocol_for`.
    """

    limits = ConnectionLimits()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deadline: object | None = None  # the asyncio TimerHandle closing a slow request
        self._waiting_since = time.monotonic()  # since when no request is in progress

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._waiting_since = time.monotonic()
        if len(self.connections) > self.limits.max_connections and self._open() > self.limits.max_connections:
            self._make_room()
            if transport.is_closing():
                return
        self._arm(self.limits.header_seconds, "send its request headers")

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            # The first byte of the next request on a kept-alive connection.
            self._arm(self.limits.header_seconds, "send its request headers")
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = time.monotonic()

    def _follow_request(self) -> None:
        """Move the deadline along with the request: headers in, then the body, then none."""
        state = self.conn.their_state
        if state is h11.SEND_BODY and self._reading != "body":
            self._arm(self.limits.body_seconds, "send its request body")
        elif state is not h11.IDLE and state is not h11.SEND_BODY:
            self._disarm()

    _reading: str | None = None

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._reading = "body" if "body" in what else "headers"
        self._deadline = self.loop.call_later(seconds, self._too_slow, seconds, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._reading = None

    def _too_slow(self, seconds: float, what: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            note("slow", "Closed a connection that took over %.0f s to %s (a slow or stalled client).", seconds, what)
            self.transport.close()

    def _open(self) -> int:
        """Connections open and not closing already (a closed one stays listed for a loop turn or two)."""
        return sum(1 for c in self.connections if c.transport is not None and not c.transport.is_closing())

    def _idle(self) -> bool:
        """No request of this connection is being answered: it waits for one, or for its headers or body."""
        return self.cycle is None or self.cycle.response_complete or self._reading is not None

    def _held(self) -> bool:
        """This connection's answer is being held at the door: its client is over its rate limit."""
        return self.cycle is not None and not self.cycle.response_complete and bool(self.cycle.scope.get(HELD))

    def _make_room(self) -> None:
        """Over the cap: close a connection whose answer is held at the door (a flood's, told to slow down),
        or else the one that has waited longest without a request being answered (a fan's idle one)."""
        open_ = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and not c.transport.is_closing()]
        idle = [c for c in open_ if c._held()] or [c for c in open_ if c._idle()]
        if not idle:
            note("full", "%d connections are open, all busy; refusing new ones until one closes.",
                 len(self.connections) - 1)
            self.transport.close()
            return
        oldest = min(idle, key=lambda c: c._waiting_since)
        note("full", "%d connections are open (the most allowed); closing those of clients over their rate "
             "limit, or else the longest idle ones, to make room.", self.limits.max_connections)
        oldest.transport.close()


def protocol_for(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """The protocol class uvicorn is given (``Config(http=...)``), with ``limits``."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def uvicorn_settings(limits: ConnectionLimits | None = None) -> dict:
    """Settings of uvicorn's ``Config`` for the limits above."""
    limits = limits or default_limits()
    return {
        "http": protocol_for(limits),
        "timeout_keep_alive": limits.keep_alive_seconds,
        "backlog": BACKLOG,
        # uvicorn answers 503 once this many connections are open or requests in progress;
        # the cap above keeps connections below it (making room), so it counts requests.
        "limit_concurrency": limits.max_connections + RESERVED_FILES,
    }


# -- quiet logs ------------------------------------------------------------------------------


_repeats = {}
_repeats_lock = threading.Lock()


def note(cause: str, message: str, *args) -> None:
    """Log a warning about ``cause``, at most once every :data:`REPEAT_SECONDS`, counting the rest."""
    now = time.monotonic()
    with _repeats_lock:
        last, held = _repeats.get(cause, (None, 0))
        if last is not None and now - last < REPEAT_SECONDS:
            _repeats[cause] = (last, held + 1)
            return
        _repeats[cause] = (now, 0)
    suffix = f" ({held} more like this since the last such line)" if held else ""
    log.warning(message + suffix, *args)


class RepeatFilter(logging.Filter):
    """Lets one record per cause (logger, message template, error) through every ``seconds``.

    For a logger whose lines come in floods when something runs out: asyncio
    logs every failed ``accept()`` when the process is out of file
    descriptors, uvicorn every request over its concurrency limit. The first
    one goes through as it is; the next after ``seconds`` says how many were
    held back in between.
    """

    def __init__(self, seconds: float = REPEAT_SECONDS, clock=time.monotonic):
        super().__init__()
        self.seconds = seconds
        self._clock = clock
        self._seen: dict[tuple, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        cause = (record.name, str(record.msg), type(error).__name__, getattr(error, "errno", None))
        now = self._clock()
        with self._lock:
            last, held = self._seen.get(cause, (None, 0))
            if last is not None and now - last < self.seconds:
                self._seen[cause] = (last, held + 1)
                return False
            self._seen[cause] = (now, 0)
            if len(self._seen) > 1000:
                self._seen = {cause: (now, 0)}
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f} s)"
        return True


#: The loggers that flood when connections or file descriptors run out.
FLOODING_LOGGERS = ("asyncio", "uvicorn.error")


def quiet_repeated_logs() -> None:
    """Put a :class:`RepeatFilter` on :data:`FLOODING_LOGGERS` (once)."""
    for name in FLOODING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
