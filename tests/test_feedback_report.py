"""``bot report``: refused questions grouped by meaning (real bundled model), and its JSON, CSV and HTML.

The logs here are written by the real store with the real bot's answers, then
read by the real ``bot report`` command.
"""

import csv
import itertools
import json
import random
import re
from pathlib import Path

import pytest

from bot.feedback.report import (
    GROUP_COSINE,
    as_html,
    build_report,
    embed_questions,
    group_by_meaning,
    meaning_text,
    parse_since,
)
from bot.feedback.store import QuestionLog

from conftest import DOMBRA, FRANCE, ROOT, run_bot

PARAPHRASES = [json.loads(line) for line in (ROOT / "tests" / "data" / "refused-paraphrases.jsonl").open()]
MARRIED = ["is she married", "Does Sezim have a husband?", "who is she married to"]
TICKETS = ["how much are tickets to see her", "What do concert tickets cost?", "ticket prices for her shows?"]


def pairs_scores(groups: list[list[int]], labels: list[str]) -> tuple[float, float]:
    """(precision, recall) over pairs: pairs put together that belong together, and the other way round."""
    truth = {pair for pair in itertools.combinations(range(len(labels)), 2) if labels[pair[0]] == labels[pair[1]]}
    together = {pair for group in groups for pair in itertools.combinations(sorted(group), 2)}
    hits = len(truth & together)
    return hits / max(len(together), 1), hits / max(len(truth), 1)


def test_grouping_keeps_paraphrases_together_and_different_questions_apart(embedder):
    """The threshold's measurement (report.GROUP_COSINE), on the whole labelled set, in several orders."""
    texts = [meaning_text(item["question"], {"sezim", "baktybekova"}) for item in PARAPHRASES]
    vectors = embed_questions(embedder, texts)
    scores = []
    for seed in range(10):
        order = random.Random(seed).sample(range(len(texts)), len(texts))
        groups = [[order[row] for row in group] for group in group_by_meaning(vectors[order], GROUP_COSINE)]
        scores.append(pairs_scores(groups, [item["group"] for item in PARAPHRASES]))
    precision, recall = (sum(values) / len(values) for values in zip(*scores))
    assert precision >= 0.85, f"different questions put together: pair precision {precision:.2f}"
    assert recall >= 0.70, f"paraphrases split up: pair recall {recall:.2f}"


def test_the_artists_name_and_pronouns_do_not_decide_the_meaning():
    assert meaning_text("Does Sezim's mum sing?", {"sezim"}) == meaning_text("does her mum sing", {"sezim"})
    assert meaning_text("Is she married?", {"sezim"}) == "is married"
    assert meaning_text("she", {"sezim"}) == "she"  # nothing left: the question as it was


def write_log(path: Path, bot, questions: list[str], dislike: set[str] = frozenset()) -> list:
    """A log of the real bot's answers to ``questions``; thumbs down on those in ``dislike``."""
    question_log = QuestionLog.open(path)
    answers = []
    for question in questions:
        answer = bot.answer(question)
        row = question_log.record(question, answer, 0, 5.0, "chat")
        if question in dislike:
            question_log.feedback(row, False)
        answers.append(answer)
    question_log.close()
    return answers


@pytest.fixture(scope="module")
def two_logs(tmp_path_factory, sezim_bot):
    """Two servers' logs: paraphrased refusals spread over both, answers, a disliked answer."""
    base = tmp_path_factory.mktemp("report")
    first = write_log(base / "one.sqlite3", sezim_bot, [MARRIED[0], TICKETS[0], DOMBRA, MARRIED[1], "thanks"],
                      dislike={DOMBRA})
    second = write_log(base / "two.sqlite3", sezim_bot, [MARRIED[2], TICKETS[1], TICKETS[2], FRANCE, MARRIED[0]])
    assert all(a.kind == "refusal" for q, a in zip([*MARRIED, *TICKETS], [first[0], first[3], second[0],
                                                                       first[1], second[1], second[2]]))
    return base, sezim_bot, first + second


def report_json(base: Path, bot, *extra: str) -> dict:
    done = run_bot("report", "--log-db", base / "one.sqlite3", "--log-db", base / "two.sqlite3",
                   "--seeds", bot.config.seeds_dir, "--index", bot.config.index_dir, "--json", *extra, cwd=base)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_report_json_over_several_logs(two_logs):
    base, bot, answers = two_logs
    report = report_json(base, bot, "--csv", base / "questions.csv", "--html", base / "report.html")
    assert {"questions", "answered", "refused", "refused_groups", "disliked"} <= set(report)
    assert report["questions"] == 10
    assert report["answered"] == sum(a.kind == "answer" for a in answers) >= 1
    assert report["refused"] == sum(a.kind == "refusal" for a in answers) >= 7
    assert report["small_talk"] == 1
    assert report["answer_rate"] == pytest.approx(report["answered"] / (report["answered"] + report["refused"]),
                                                  abs=1e-4)

    groups = report["refused_groups"]
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    assert sum(g["count"] for g in groups) == report["refused"]
    married = [g for g in groups if set(g["questions"]) & set(MARRIED)]
    tickets = [g for g in groups if set(g["questions"]) & set(TICKETS)]
    assert len(married) == 1 and set(married[0]["questions"]) == set(MARRIED)
    assert married[0]["count"] == 4  # "is she married" was asked twice, on two servers
    assert married[0]["examples"][0] == "is she married"  # the most asked wording first
    assert len(tickets) == 1 and set(tickets[0]["questions"]) == set(TICKETS) and tickets[0]["count"] == 3
    assert married[0] is not tickets[0]
    for group in groups:
        closest = group["closest"]
        assert closest["source"] == "sezim-baktybekova.txt" and closest["text"]
        assert -1 <= closest["score"] <= 1

    (disliked,) = report["disliked"]
    assert disliked["question"] == DOMBRA and "grandmother" in disliked["quoted"]
    assert disliked["sources"][0]["source"] == "sezim-baktybekova.txt"


def test_report_csv_has_every_question_with_its_group(two_logs):
    base, bot, _ = two_logs
    report = report_json(base, bot, "--csv", base / "questions.csv")
    with (base / "questions.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == report["questions"]
    assert list(rows[0]) == ["time", "question", "kind", "confidence", "turns", "feedback", "refused_group",
                             "quoted", "sources", "latency_ms", "via"]
    groups = {row["question"]: row["refused_group"] for row in rows if row["kind"] == "refusal"}
    assert len({groups[q] for q in MARRIED}) == 1 and len({groups[q] for q in TICKETS}) == 1
    assert groups[MARRIED[0]] != groups[TICKETS[0]]
    assert all(row["refused_group"] == "" for row in rows if row["kind"] != "refusal")
    assert [row["feedback"] for row in rows if row["question"] == DOMBRA] == ["down"]


def test_report_html_is_self_contained(two_logs):
    base, bot, _ = two_logs
    report_json(base, bot, "--html", base / "report.html")
    page = (base / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "is she married" in page
    # Nothing is loaded from elsewhere: no URL, no external script, style sheet or image.
    assert not re.search(r"(https?:)?//[\w.-]+\.\w", page.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    assert not re.search(r"<(script|link|img|iframe)\b", page)


def test_html_escapes_what_fans_typed():
    rows_report = build_report([], None)
    rows_report["refused_groups"] = [{"count": 1, "examples": ["<script>alert(1)</script>"], "questions": [],
                                      "closest": None}]
    page = as_html(rows_report)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_report_text_and_since(two_logs):
    base, bot, _ = two_logs
    done = run_bot("report", "--log-db", base / "one.sqlite3", "--seeds", bot.config.seeds_dir,
                   "--index", bot.config.index_dir, cwd=base)
    assert done.returncode == 0, done.stderr
    assert "Questions     5" in done.stdout and "Refused questions by meaning" in done.stdout
    assert "closest passage" in done.stdout and "Disliked answers:" in done.stdout
    later = run_bot("report", "--log-db", base / "one.sqlite3", "--since", "2999-01-01", "--json", cwd=base)
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout)["questions"] == 0


def test_report_without_a_log_says_so(tmp_path):
    done = run_bot("report", "--log-db", tmp_path / "nowhere.sqlite3", cwd=tmp_path)
    assert done.returncode == 1
    assert "No question log at" in done.stderr and "Traceback" not in done.stderr
    bad = run_bot("report", "--log-db", tmp_path / "nowhere.sqlite3", "--since", "last tuesday", cwd=tmp_path)
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_since_spans():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("12h", now) == now - timedelta(hours=12)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since(None, now) is None
    with pytest.raises(ValueError):
        parse_since("soon", now)


def test_report_on_a_file_that_is_not_a_log(tmp_path):
    (tmp_path / "notes.sqlite3").write_text("not a database, just notes\n" * 100)
    done = run_bot("report", "--log-db", tmp_path / "notes.sqlite3", cwd=tmp_path)
    assert done.returncode == 1
    assert "Cannot read the question log" in done.stderr and "Traceback" not in done.stderr


def test_report_without_the_seeds_groups_by_wording(tmp_path, sezim_bot):
    write_log(tmp_path / "q.sqlite3", sezim_bot, [MARRIED[0], MARRIED[0], "Is she married?", TICKETS[0]])
    empty = tmp_path / "no-seeds"
    empty.mkdir()
    done = run_bot("report", "--log-db", tmp_path / "q.sqlite3", "--seeds", empty, "--index", tmp_path / "i",
                   "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "grouped by wording only" in done.stderr
    groups = json.loads(done.stdout)["refused_groups"]
    assert [(g["count"], g["closest"]) for g in groups] == [(3, None), (1, None)]
