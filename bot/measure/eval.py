"""Measure answer quality on a question set (``bot eval``).

A question set is a JSON-lines file; each line holds ``question``,
``answers`` (gold strings; empty means the bot must refuse), ``kind``
(``answerable``, ``off_topic`` or ``unanswerable``) and optionally
``history`` (earlier chat turns). See the README for the full format.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config, Ranking
from ..core import Bot

#: Ranking settings compared in the README's results table.
METHODS = {
    "hybrid": Ranking(),
    "dense": Ranking(dense=1.0, context_dense=0.0, lexical=0.0, context_lexical=0.0, answer_type=0.0),
    "bm25": Ranking(dense=0.0, context_dense=0.0, lexical=1.0, context_lexical=0.0, answer_type=0.0),
}


@dataclass(frozen=True)
class EvalQuestion:
    """One line of a question set."""

    question: str
    answers: list[str]
    kind: str
    history: list[dict] = field(default_factory=list)


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a question set, with a clear error naming any bad line."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            questions.append(
                EvalQuestion(
                    question=str(item["question"]),
                    answers=[str(a) for a in item.get("answers", [])],
                    kind=str(item.get("kind") or ("answerable" if item.get("answers") else "off_topic")),
                    history=list(item.get("history") or []),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a valid question line ({error})") from None
    return questions


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


def contains_gold(text: str, answers: list[str]) -> bool:
    """True when ``text`` contains one of ``answers`` as whole words.

    Case-insensitive, whitespace collapsed; "20" does not match inside "2015".
    """
    haystack = _squash(text)
    return any(
        re.search(r"(?<!\w)" + re.escape(_squash(gold)) + r"(?!\w)", haystack) for gold in answers if gold.strip()
    )


def default_seeds_for(qa_path: Path, fallback: Path) -> Path:
    """A question set's own ``seeds/`` folder beside it, else ``fallback``."""
    own = qa_path.parent / "seeds"
    return own if own.is_dir() else fallback


def cache_dir_for(seeds_dir: Path) -> Path:
    """An index folder for evaluating ``seeds_dir``, outside the project's ``index/``."""
    base = Config().cache_dir / "eval"
    key = hashlib.sha256(str(seeds_dir.resolve()).encode()).hexdigest()[:16]
    return base / f"{seeds_dir.resolve().name}-{key}"


def _rate(flags: list[bool]) -> float | None:
    return round(float(np.mean(flags)), 4) if flags else None


def evaluate(bot: Bot, questions: list[EvalQuestion], misses: bool = False) -> dict:
    """Ask every question and report the metrics, overall and per kind.

    With ``misses``, the report also lists under ``"misses"`` every question
    the bot got wrong (an answerable one refused or answered without a gold
    string, another kind answered), with what it said.
    """
    bot.read("warm up")  # load the model, index and word list before timing anything
    rows = []
    for item in questions:
        started = time.perf_counter()
        reply = bot.answer(item.question, item.history)
        latency = (time.perf_counter() - started) * 1000
        passages = bot.retrieve(item.question, k=5, history=item.history) if item.answers else []
        rows.append(
            {
                "kind": item.kind,
                "answerable": bool(item.answers),
                "refused": reply.refused,
                "correct": not reply.refused and contains_gold(reply.text, item.answers),
                "hit1": bool(passages) and contains_gold(passages[0].text, item.answers),
                "hit5": any(contains_gold(p.text, item.answers) for p in passages),
                "words": None if reply.refused else len(reply.text.split()),
                "latency": latency,
                "item": item,
                "reply": reply,
            }
        )
    report = _metrics(rows)
    kinds = sorted({row["kind"] for row in rows})
    report["by_kind"] = {kind: _metrics([row for row in rows if row["kind"] == kind]) for kind in kinds}
    if misses:
        wrong = [row for row in rows if (not row["correct"] if row["answerable"] else not row["refused"])]
        report["misses"] = [_miss(row) for row in wrong]
    return report


def _miss(row: dict) -> dict:
    item, reply = row["item"], row["reply"]
    return {
        "question": item.question,
        "kind": item.kind,
        "answers": item.answers,
        "refused": reply.refused,
        "text": reply.text,
        "confidence": None if reply.confidence is None else round(reply.confidence, 4),
    }


def _metrics(rows: list[dict]) -> dict:
    answerable = [row for row in rows if row["answerable"]]
    words = [row["words"] for row in rows if row["words"] is not None]
    latencies = [row["latency"] for row in rows]
    return {
        "n": len(rows),
        "answerable_accuracy": _rate([row["correct"] for row in answerable]),
        "false_refusal_rate": _rate([row["refused"] for row in answerable]),
        "off_topic_refusal_rate": _rate([row["refused"] for row in rows if row["kind"] == "off_topic"]),
        "unanswerable_refusal_rate": _rate([row["refused"] for row in rows if row["kind"] == "unanswerable"]),
        "hit_at_1": _rate([row["hit1"] for row in answerable]),
        "hit_at_5": _rate([row["hit5"] for row in answerable]),
        "mean_answer_words": round(float(np.mean(words)), 2) if words else None,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2) if latencies else None,
    }


def eval_bot(
    seeds_dir: Path, config: Config | None = None, method: str = "hybrid", index_dir: Path | None = None
) -> Bot:
    """A bot over ``seeds_dir`` with its index in the evaluation cache (or ``index_dir``)."""
    config = (config or Config()).with_changes(
        seeds_dir=seeds_dir, index_dir=index_dir or cache_dir_for(seeds_dir), ranking=METHODS[method]
    )
    return Bot(config)
