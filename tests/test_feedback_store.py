"""The question log's store: WAL, rows and feedback, pruning, and the failures that must not stop answering.

A full disk cannot be made here, so SQLite's own "database or disk is full"
is produced with ``PRAGMA max_page_count`` on the writer's connection; every
other part is the real store on real files.
"""

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bot.answer import Answer
from bot.feedback.store import QuestionLog, cited_sources, connect, default_log_path, read_rows
from bot.retrieve import Passage

DOMBRA_PASSAGE = Passage(text="Her grandmother taught her to play the dombra.", source="sezim.txt", start=10, end=56,
                         score=1.0)
ANSWER = Answer(text=DOMBRA_PASSAGE.text, refused=False, citations=[DOMBRA_PASSAGE], kind="answer", confidence=0.93)
REFUSAL = Answer(text="I don't know that.", refused=True, kind="refusal", confidence=0.08)


def test_rows_and_thumbs_are_written_in_wal_mode(tmp_path):
    path = tmp_path / "log" / "questions.sqlite3"
    question_log = QuestionLog.open(path)
    answered = question_log.record("Who taught her the dombra?", ANSWER, turns=0, latency_ms=12.34, via="chat")
    refused = question_log.record("Is she married?", REFUSAL, turns=1, latency_ms=8, via="api")
    assert answered and refused and answered != refused
    assert question_log.feedback(answered, True) and question_log.feedback(refused, False)
    assert question_log.flush()
    question_log.close()

    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first, second = read_rows(path)
    assert (first.id, first.question, first.turns, first.kind, first.via) == (
        answered, "Who taught her the dombra?", 0, "answer", "chat")
    assert first.confidence == pytest.approx(0.93) and first.latency_ms == pytest.approx(12.3)
    assert first.sources == [{"source": "sezim.txt", "start": 10, "end": 56, "location": "sezim.txt"}]
    assert first.quoted == DOMBRA_PASSAGE.text and first.feedback == 1
    assert first.time.endswith("Z") and len(first.time) == len("2026-11-29T17:48:54.740Z")
    assert (second.kind, second.turns, second.sources, second.quoted, second.feedback) == ("refusal", 1, [], "", -1)
    # No address or login is kept: the table has no column for them.
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(questions)")]
    assert columns == ["id", "time", "question", "turns", "kind", "confidence", "sources", "quoted", "latency_ms",
                       "via", "feedback"]


def test_a_thumb_can_be_taken_back(tmp_path):
    question_log = QuestionLog.open(tmp_path / "q.sqlite3")
    row = question_log.record("Is she married?", REFUSAL, 0, 1.0, "chat")
    question_log.feedback(row, False)
    question_log.feedback(row, None)
    question_log.close()
    assert [r.feedback for r in read_rows(tmp_path / "q.sqlite3")] == [None]


def test_citations_keep_their_location_when_the_passage_has_one():
    class Located:
        text, source, start, end, location = "A row.", "tour.pdf", 5, 11, "page 3"

    assert cited_sources([Located()]) == [{"source": "tour.pdf", "start": 5, "end": 11, "location": "page 3"}]


def test_the_default_place_is_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_log_path() == tmp_path / "data" / "artist-bot" / "questions.sqlite3"


def _insert_old(path, days_ago: int, question: str):
    from datetime import UTC, datetime, timedelta

    from bot.feedback.store import _stamp

    connection = connect(path)
    connection.execute(
        "INSERT INTO questions (id, time, question, turns, kind, confidence, sources, quoted, latency_ms, via) "
        "VALUES (?, ?, ?, 0, 'refusal', 0.1, '[]', '', 1.0, 'chat')",
        (question, _stamp(datetime.now(UTC) - timedelta(days=days_ago)), question))
    connection.close()


def test_rows_older_than_the_kept_days_are_deleted_at_start(tmp_path):
    path = tmp_path / "q.sqlite3"
    _insert_old(path, 120, "old")
    _insert_old(path, 10, "recent")
    QuestionLog.open(path, keep_days=90).close()
    assert [row.question for row in read_rows(path)] == ["recent"]
    QuestionLog.open(path, keep_days=0).close()  # 0: keep everything
    assert [row.question for row in read_rows(path)] == ["recent"]
    QuestionLog.open(path, keep_days=5).close()
    assert list(read_rows(path)) == []


def test_the_writer_prunes_daily_while_running(tmp_path, monkeypatch):
    import bot.feedback.store as store

    monkeypatch.setattr(store, "PRUNE_EVERY_SECONDS", 0.5)
    path = tmp_path / "q.sqlite3"
    question_log = QuestionLog.open(path, keep_days=30)
    _insert_old(path, 40, "aged while running")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(True for _ in read_rows(path)):
        time.sleep(0.2)
    question_log.close()
    assert list(read_rows(path)) == []


def test_an_unwritable_location_warns_once_and_logs_nothing(tmp_path, caplog):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("in the way")
    with caplog.at_level(logging.WARNING, logger="bot.feedback.store"):
        assert QuestionLog.open(not_a_folder / "questions.sqlite3") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "answering goes on without it" in warnings[0].getMessage()


class _SmallDisk(QuestionLog):
    """A log whose database may not grow past its first pages: SQLite reports "database or disk is full"."""

    def _connect(self):
        connection = super()._connect()
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count={pages}")
        return connection


def test_a_full_disk_warns_once_then_answering_goes_on_without_the_log(tmp_path, caplog):
    question_log = _SmallDisk(tmp_path / "q.sqlite3")
    with caplog.at_level(logging.WARNING, logger="bot.feedback.store"):
        for number in range(300):
            question_log.record(f"question {number} " + "x" * 500, REFUSAL, 0, 1.0, "api")
        question_log.flush()
        for _ in range(50):  # after the failure: still returns at once, nothing queued
            assert question_log.record("one more", REFUSAL, 0, 1.0, "api") is None
        question_log.close()
    assert not question_log.active
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("failed" in w and "answering goes on" in w for w in warnings) == 1, warnings
    assert question_log.written + question_log.dropped == 350


def test_the_chat_answers_on_when_the_log_is_full(sezim_bot, tmp_path):
    from bot.serve import ChatHandlers

    from conftest import DOMBRA

    question_log = _SmallDisk(tmp_path / "q.sqlite3")
    handlers = ChatHandlers(sezim_bot, question_log=question_log)
    for _ in range(40):  # a few pages' worth of rows: the log fills up on the way
        result = handlers.ask(DOMBRA)
        assert result["kind"] == "answer" and "grandmother" in result["text"]
        question_log.flush()
    question_log.close()
    assert not question_log.active and question_log.dropped > 0


class _StuckWriter(QuestionLog):
    """A log whose writer waits until released: its queue fills up."""

    release = threading.Event()
    stuck = threading.Event()

    def _write(self, batch):
        self.stuck.set()
        self.release.wait()
        return super()._write(batch)


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path, caplog):
    question_log = _StuckWriter(tmp_path / "q.sqlite3", queue_size=5)
    first = question_log.record("q", REFUSAL, 0, 1.0, "api")
    assert first is not None and _StuckWriter.stuck.wait(30)  # the writer holds that row, and waits
    results = [first]
    with caplog.at_level(logging.WARNING, logger="bot.feedback.store"):
        recorder = threading.Thread(
            target=lambda: results.extend(question_log.record(f"q{n}", REFUSAL, 0, 1.0, "api") for n in range(100)))
        recorder.start()
        recorder.join(30)
        assert not recorder.is_alive(), "record() blocked on a full queue"
    # The writer holds the first row, the queue 5 more; the rest are dropped and counted.
    assert sum(r is not None for r in results) == 6
    assert question_log.dropped == 101 - sum(r is not None for r in results)
    assert sum("falling behind" in r.getMessage() for r in caplog.records) == 1
    question_log.release.set()
    question_log.close()
    assert len(list(read_rows(tmp_path / "q.sqlite3"))) == sum(r is not None for r in results)


WRITER = textwrap.dedent("""
    import sys, time
    from bot.answer import Answer
    from bot.feedback.store import QuestionLog
    log = QuestionLog.open(sys.argv[1])
    refusal = Answer(text="no", refused=True, kind="refusal", confidence=0.1)
    number = 0
    while True:
        number += 1
        log.record(f"question {number}", refusal, 0, 1.0, "api")
        if number == 200:
            print("writing", flush=True)
        if number % 50 == 0:
            time.sleep(0.001)
""")


def test_kill_9_while_writing_leaves_a_log_that_opens_and_reads(tmp_path):
    path = tmp_path / "q.sqlite3"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(1.0)  # mid-writing: rows are queued and batches committed all the time
    finally:
        writer.kill()  # SIGKILL: no clean-up of any kind
        writer.wait(10)
    assert writer.returncode == -9
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = list(read_rows(path))
    assert len(rows) >= 100
    # Rows are committed in order: what survived is the first N questions, none missing between.
    assert [row.question for row in rows] == [f"question {n}" for n in range(1, len(rows) + 1)]
    # And the server can go on logging into it.
    again = QuestionLog.open(path)
    again.record("after the crash", REFUSAL, 0, 1.0, "api")
    again.close()
    assert list(read_rows(path))[-1].question == "after the crash"
