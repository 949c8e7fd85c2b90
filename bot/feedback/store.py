"""The question log: every question the server answers, one SQLite row each.

What a row holds: the time (UTC), the question, how many turns came before
it, what kind of reply it got (answer, refusal, small_talk, invalid,
rate_limited, error), the refusal model's confidence, the cited sources and
the quoted text, how long answering took, where it came from (the chat or the
API), and the fan's thumbs up or down once given. No IP address, no login.

Logging never slows or stops answering:

- :meth:`QuestionLog.record` only puts the row on a bounded queue and returns
  the row's id at once; when the queue is full the row is dropped and counted;
- one background thread writes what is queued, many rows per commit;
- the database is in WAL mode, so a ``kill -9`` loses at most the rows still
  queued, and the file opens cleanly afterwards;
- a location that cannot be written (no permission, a full disk) costs one
  warning, then the server answers on without a log.

Rows older than ``keep_days`` are deleted when the log opens and once a day.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..config import Config

log = logging.getLogger(__name__)

#: Days a row is kept by default (``bot serve --log-days``).
DEFAULT_KEEP_DAYS = 90
#: Rows that may wait for the writer; more are dropped (and counted), never waited for.
QUEUE_SIZE = 10_000
#: Most rows written in one transaction.
BATCH_ROWS = 500
#: Seconds between prunings of old rows while the server runs.
PRUNE_EVERY_SECONDS = 24 * 3600
#: The kinds of reply a row may record.
KINDS = ("answer", "refusal", "small_talk", "invalid", "rate_limited", "error")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    id          TEXT PRIMARY KEY,   -- random; the chat keeps it to record thumbs up/down
    time        TEXT NOT NULL,      -- UTC, ISO 8601 with milliseconds and a Z
    question    TEXT NOT NULL,
    turns       INTEGER NOT NULL,   -- questions asked before this one in the same chat
    kind        TEXT NOT NULL,
    confidence  REAL,
    sources     TEXT NOT NULL,      -- JSON list of {source, start, end[, location]}
    quoted      TEXT NOT NULL,      -- the quoted sentences ('' for a refusal)
    latency_ms  REAL NOT NULL,
    via         TEXT NOT NULL,      -- 'chat' or 'api'
    feedback    INTEGER             -- 1: thumbs up, -1: thumbs down, NULL: none
);
CREATE INDEX IF NOT EXISTS questions_time ON questions (time);
"""
_INSERT = (
    "INSERT OR IGNORE INTO questions (id, time, question, turns, kind, confidence, sources, quoted, latency_ms, via) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FEEDBACK = "UPDATE questions SET feedback = ? WHERE id = ?"


def default_log_path() -> Path:
    """Where the log lives by default: the user's data folder (never the index, which can be rebuilt)."""
    return Config().data_dir / "questions.sqlite3"


def utc_now() -> str:
    """The time now as the log writes it (fixed width, so text order is time order)."""
    return _stamp(datetime.now(UTC))


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class LoggedQuestion:
    """One row of the log, as :func:`read_rows` returns it."""

    id: str
    time: str
    question: str
    turns: int
    kind: str
    confidence: float | None
    sources: list[dict]
    quoted: str
    latency_ms: float
    via: str
    feedback: int | None

    @property
    def day(self) -> str:
        return self.time[:10]


def cited_sources(citations: Iterable) -> list[dict]:
    """Where each cited passage is: source file, character offsets, and its location when it has one."""
    cited = []
    for passage in citations:
        entry = {"source": passage.source, "start": passage.start, "end": passage.end}
        location = getattr(passage, "location", None)  # page or section, for formats that have them
        if location:
            entry["location"] = location
        cited.append(entry)
    return cited


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating when missing) the log at ``path`` in WAL mode, with its table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL survives a killed process (only a power cut may lose the last commits).
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        connection.close()
        raise
    return connection


class QuestionLog:
    """The server's question log at ``path``, written by one background thread.

    Make it with :meth:`open`, which never raises: when the location cannot be
    written it warns once and returns a log that records nothing. ``close()``
    writes what is queued and stops the writer.
    """

    def __init__(self, path: Path, keep_days: int = DEFAULT_KEEP_DAYS, queue_size: int = QUEUE_SIZE):
        self.path = Path(path)
        self.keep_days = keep_days
        #: Rows dropped because the queue was full or the log had failed.
        self.dropped = 0
        #: Rows written (committed).
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._failed = False
        self._warned_full = False
        self._connection = self._connect()
        self._prune()
        self._thread = threading.Thread(target=self._write_loop, name="question-log", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: Path, keep_days: int = DEFAULT_KEEP_DAYS, queue_size: int = QUEUE_SIZE) -> QuestionLog | None:
        """The log at ``path``, or None (after one warning) when it cannot be opened there."""
        try:
            return cls(path, keep_days, queue_size)
        except (OSError, sqlite3.Error) as error:
            log.warning("The question log cannot be kept at %s (%s); answering goes on without it.", path, error)
            return None

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    @property
    def active(self) -> bool:
        """False once a write failed: the log then records nothing more."""
        return not self._failed

    # -- what the server calls (never blocks) ------------------------------

    def record(self, question: str, answer, turns: int, latency_ms: float, via: str) -> str | None:
        """Queue one answered question; returns its row id, or None when it was not queued."""
        row_id = uuid.uuid4().hex
        citations = list(getattr(answer, "citations", None) or [])
        confidence = getattr(answer, "confidence", None)
        row = (
            row_id, utc_now(), str(question), int(turns), str(answer.kind),
            None if confidence is None else float(confidence),
            json.dumps(cited_sources(citations), ensure_ascii=False),
            " ".join(p.text for p in citations), round(float(latency_ms), 1), via,
        )
        return row_id if self._put(("row", row)) else None

    def feedback(self, row_id: str | None, liked: bool | None) -> bool:
        """Record a thumbs up (True), down (False) or its withdrawal (None) on row ``row_id``."""
        if not row_id:
            return False
        value = None if liked is None else (1 if liked else -1)
        return self._put(("feedback", (value, str(row_id))))

    def _put(self, item) -> bool:
        if self._failed:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning("The question log is falling behind; questions are answered but not all logged.")
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (for tests and shutdown); False on time-out."""
        if self._failed or not self._thread.is_alive():
            return True  # nothing will be written
        done = threading.Event()
        try:
            self._queue.put(("flush", done), timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer and close the file."""
        if self._thread.is_alive():
            with suppress(queue.Full):
                self._queue.put(("stop", None), timeout=timeout)
            self._thread.join(timeout)
        if self.dropped:
            log.info("The question log left out %d question(s) (falling behind or unwritable).", self.dropped)

    # -- the writer thread ----------------------------------------------

    def _write_loop(self) -> None:
        next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        try:
            while True:
                try:
                    first = self._queue.get(timeout=max(1.0, next_prune - time.monotonic()))
                except queue.Empty:
                    first = None
                batch = [] if first is None else [first]
                while batch and len(batch) < BATCH_ROWS:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = self._write(batch)
                if time.monotonic() >= next_prune:
                    self._prune()
                    next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
                if stop:
                    return
        finally:
            self._connection.close()

    def _write(self, batch: list) -> bool:
        """Write one batch in one transaction; True when it holds the stop sign."""
        rows = [data for what, data in batch if what == "row"]
        marks = [(what, data) for what, data in batch if what in ("feedback", "flush", "stop")]
        if self._failed:
            self.dropped += len(rows)
        elif rows or any(what == "feedback" for what, _ in marks):
            try:
                with self._transaction():
                    # Rows first, then feedback in order: a like always follows its own row.
                    self._connection.executemany(_INSERT, rows)
                    for what, data in marks:
                        if what == "feedback":
                            self._connection.execute(_FEEDBACK, data)
                self.written += len(rows)
            except (OSError, sqlite3.Error) as error:
                self._fail(error)
                self.dropped += len(rows)
        stop = False
        for what, data in marks:
            if what == "flush":
                data.set()
            elif what == "stop":
                stop = True
        return stop

    @contextmanager
    def _transaction(self):
        """One write transaction on the writer's connection, rolled back on failure."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def _fail(self, error: Exception) -> None:
        self._failed = True
        log.warning("Writing the question log at %s failed (%s); answering goes on without it.", self.path, error)

    def _prune(self) -> int:
        """Delete rows older than ``keep_days`` (0: keep all); returns how many went."""
        if self.keep_days <= 0 or self._failed:
            return 0
        cutoff = _stamp(datetime.now(UTC) - timedelta(days=self.keep_days))
        try:
            with self._transaction():
                gone = self._connection.execute("DELETE FROM questions WHERE time < ?", (cutoff,)).rowcount
        except (OSError, sqlite3.Error) as error:
            self._fail(error)
            return 0
        if gone:
            log.info("Question log: %d question(s) older than %d days deleted.", gone, self.keep_days)
        return gone


# -- reading (bot report) ----------------------------------------------------------


def read_rows(path: Path, since: str | None = None) -> Iterator[LoggedQuestion]:
    """The rows of the log at ``path`` (read-only), oldest first; ``since``: an ISO time, rows from then on."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No question log at {path}.")
    # Read-write open (not mode=ro), so that a WAL left by a killed server is read too.
    connection = sqlite3.connect(path, timeout=10)
    try:
        query = "SELECT id, time, question, turns, kind, confidence, sources, quoted, latency_ms, via, feedback " \
                "FROM questions"
        rows = connection.execute(query + " WHERE time >= ? ORDER BY time", (since,)) if since else \
            connection.execute(query + " ORDER BY time")
        for row in rows:
            try:
                sources = json.loads(row[6] or "[]")
            except ValueError:
                sources = []
            yield LoggedQuestion(*row[:6], sources, *row[7:])
    finally:
        connection.close()
