"""``bot report``: what fans asked, from one or more question logs.

For the artist's team: how many questions were answered and refused, the
refused questions grouped by meaning (paraphrases of one question land in
one group) with the passage of the seeds that comes closest to each, and the
answers fans disliked with the sentence the bot quoted. The team reads it,
writes the missing answers into the seeds in the fans' own words, and the bot
answers them from then on.

Grouping: each refused question is embedded with the bot's own model
without the artist's name and the personal pronouns (in a bot about one
artist, "Sezim", "she" and "her" all mean the artist, and a question that
names her otherwise lands far from the same question asking about "her").
They are grouped greedily, most asked first: a question joins the group whose
mean vector is closest when their cosine reaches :data:`GROUP_COSINE`, else it
starts a group (the threshold: see :data:`GROUP_COSINE`).
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from .store import LoggedQuestion, read_rows

#: Cosine at which a refused question joins a group: chosen by measurement
#: with the bundled model on tests/data/refused-paraphrases.jsonl (the figures,
#: and those of the neighbouring thresholds, are in the README's "What fans
#: asked"; tests/test_feedback_report.py holds it to them).
GROUP_COSINE = 0.55
#: Words left out before embedding: they point at the artist, whoever asks.
PRONOUNS = frozenset("she her hers herself he him his himself they them their theirs themselves".split())
#: Wordings shown for each group.
EXAMPLES = 3

_SINCE = re.compile(r"\s*(\d+)\s*([mhdw])\s*", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``12h``, ``2w``, ``30m`` (that long ago), or a date/time such as ``2026-11-01``; None: all."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    match = _SINCE.fullmatch(text)
    if match:
        return now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: give a span such as 7d, 12h, 2w, or a date such as 2026-11-01.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_logs(paths: Sequence[Path], since: datetime | None = None) -> list[LoggedQuestion]:
    """The rows of several logs (one per server), oldest first."""
    stamp = None
    if since is not None:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{since.microsecond // 1000:03d}Z"
    rows = [row for path in paths for row in read_rows(path, stamp)]
    rows.sort(key=lambda row: row.time)
    return rows


def embed_questions(embedder, texts: Sequence[str]) -> np.ndarray:
    """Each text embedded as a question, exactly as the bot embeds a fan's question (unit rows)."""
    one = embedder.encode_question
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.vstack([np.asarray(one(text), dtype=np.float32).reshape(-1) for text in texts])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def meaning_text(question: str, names: Iterable[str] = ()) -> str:
    """What a question asks, for grouping: lower case, without the artist's name and personal pronouns."""
    left_out = PRONOUNS | {name.lower() for name in names}
    words = [w for w in re.findall(r"[\w']+", question.lower().replace("’", "'")) if w.removesuffix("'s") not in
             left_out and w not in left_out]
    return " ".join(word.removesuffix("'s") for word in words) or question.strip()


def artist_names(persona) -> set[str]:
    """The words of the artist's and the bot's names (a persona's ``artist_name``, ``bot_name``)."""
    text = f"{getattr(persona, 'artist_name', '')} {getattr(persona, 'bot_name', '')}"
    return {word for word in re.findall(r"\w+", text.lower()) if word not in {"the", "artist", "bot"}}


def same_wording(question: str) -> str:
    """A question's wording with case, spacing and punctuation left out (exact repeats count as one)."""
    return " ".join(re.sub(r"[^\w']+", " ", question.lower()).split())


def group_by_meaning(vectors: np.ndarray, threshold: float = GROUP_COSINE) -> list[list[int]]:
    """Groups of row numbers of ``vectors`` (unit rows, most asked first): paraphrases together.

    Greedy: each row joins the group whose mean vector is closest when the
    cosine reaches ``threshold``, else it starts a group. Groups come in order
    of their first member.
    """
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for row, vector in enumerate(vectors):
        if groups:
            means = np.vstack(sums)
            means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
            cosines = means @ vector
            best = int(np.argmax(cosines))
            if cosines[best] >= threshold:
                groups[best].append(row)
                sums[best] = sums[best] + vector
                continue
        groups.append([row])
        sums.append(vector.astype(np.float64))
    return groups


@dataclass
class RefusedGroup:
    """Refused questions that ask the same thing."""

    count: int
    examples: list[str]
    #: Every distinct wording in the group, most asked first.
    questions: list[str] = field(default_factory=list)
    closest: dict | None = None

    def to_dict(self) -> dict:
        return {"count": self.count, "examples": self.examples, "questions": self.questions, "closest": self.closest}


def refused_groups(rows: Iterable[LoggedQuestion], bot=None, threshold: float = GROUP_COSINE) -> list[RefusedGroup]:
    """The refused questions of ``rows`` grouped by meaning, largest group first.

    With a ``bot``, its embedder groups them and each group gets the passage of
    the bot's seeds closest to its most asked question; without one, only
    exact repeats are grouped.
    """
    counts: Counter[str] = Counter()
    wording: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row.kind == "refusal" and row.question.strip():
            key = same_wording(row.question) or row.question.strip()
            counts[key] += 1
            wording[key][row.question.strip()] += 1
    keys = [key for key, _ in counts.most_common()]
    if not keys:
        return []
    shown = {key: wording[key].most_common(1)[0][0] for key in keys}
    if bot is not None:
        names = artist_names(bot.persona)
        vectors = embed_questions(bot.embedder, [meaning_text(shown[key], names) for key in keys])
        members = group_by_meaning(vectors, threshold)
    else:
        vectors, members = None, [[number] for number in range(len(keys))]
    groups = []
    for rows_of_group in members:
        group_keys = [keys[number] for number in rows_of_group]
        group = RefusedGroup(
            count=sum(counts[key] for key in group_keys),
            examples=[shown[key] for key in group_keys[:EXAMPLES]],
            questions=[shown[key] for key in group_keys],
        )
        if bot is not None:
            group.closest = closest_passage(bot, group.examples[0])
        groups.append(group)
    groups.sort(key=lambda group: -group.count)  # stable: ties keep the most asked first
    return groups


def closest_passage(bot, question: str, question_vector: np.ndarray | None = None) -> dict | None:
    """The seed sentence the bot ranks first for ``question``, and its cosine with the question.

    The cosine (0..1, comparable between groups) tells the team whether the
    seeds hold something close that the bot did not dare quote (high) or
    nothing near it at all (low).
    """
    passages = bot.retrieve(question, k=1)
    if not passages:
        return None
    passage = passages[0]
    if question_vector is None:
        question_vector = embed_questions(bot.embedder, [question])[0]
    cosine = float(embed_questions(bot.embedder, [passage.text])[0] @ question_vector)
    closest = {"text": passage.text, "source": passage.source, "start": passage.start, "end": passage.end,
               "score": round(cosine, 3)}
    location = getattr(passage, "location", None)
    if location:
        closest["location"] = location
    return closest


def _percentile(values: list[float], share: float) -> float | None:
    return round(float(np.percentile(values, share * 100)), 1) if values else None


def build_report(rows: list[LoggedQuestion], bot=None, logs: Sequence[Path] = (), since: datetime | None = None,
                 threshold: float = GROUP_COSINE) -> dict:
    """The report on ``rows`` as one JSON-ready dict (what ``bot report --json`` prints)."""
    kinds = Counter(row.kind for row in rows)
    answered, refused = kinds["answer"], kinds["refusal"]
    per_day: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        per_day[row.day]["questions"] += 1
        per_day[row.day]["refused"] += row.kind == "refusal"
    latencies = [row.latency_ms for row in rows if row.kind in ("answer", "refusal")]
    disliked = [
        {"time": row.time, "question": row.question, "kind": row.kind, "quoted": row.quoted, "sources": row.sources}
        for row in rows if row.feedback == -1
    ]
    return {
        "logs": [str(path) for path in logs],
        "since": since.astimezone(UTC).isoformat() if since else None,
        "first": rows[0].time if rows else None,
        "last": rows[-1].time if rows else None,
        "questions": len(rows),
        "answered": answered,
        "refused": refused,
        "small_talk": kinds["small_talk"],
        "invalid": kinds["invalid"],
        "rate_limited": kinds["rate_limited"],
        "errors": kinds["error"],
        "answer_rate": round(answered / (answered + refused), 4) if answered + refused else None,
        "liked": sum(row.feedback == 1 for row in rows),
        "latency_ms_p50": _percentile(latencies, 0.5),
        "latency_ms_p95": _percentile(latencies, 0.95),
        "per_day": [{"day": day, "questions": c["questions"], "refused": c["refused"]} for day, c in
                    sorted(per_day.items())],
        "refused_groups": [group.to_dict() for group in refused_groups(rows, bot, threshold)],
        "disliked": disliked,
    }


# -- how it is shown -----------------------------------------------------------------


def _where(item: dict) -> str:
    where = f"{item['source']}:{item['start']}-{item['end']}"
    # The location says more only when it names a page or a section, not the file again.
    location = item.get("location")
    return f"{where} ({location})" if location and location != item["source"] else where


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def as_text(report: dict) -> str:
    """The report for the terminal."""
    lines = []
    span = f" from {report['first'][:16].replace('T', ' ')} to {report['last'][:16].replace('T', ' ')} UTC" \
        if report["questions"] else ""
    logs = len(report["logs"])
    lines.append(f"Questions     {report['questions']}{span} ({logs} log{'s' if logs != 1 else ''})")
    rate = report["answer_rate"]
    lines.append(f"Answered      {report['answered']}" + (f" ({rate:.0%} of answered + refused)" if rate is not None
                                                          else ""))
    lines.append(f"Refused       {report['refused']}")
    lines.append(f"Other         {report['small_talk']} small talk, {report['invalid']} empty or too long, "
                 f"{report['rate_limited']} rate-limited, {report['errors']} errors")
    lines.append(f"Thumbs        {report['liked']} up, {len(report['disliked'])} down")
    groups = report["refused_groups"]
    if groups:
        lines.append("")
        lines.append(f"Refused questions by meaning ({len(groups)} group{'s' if len(groups) != 1 else ''}, "
                     "largest first):")
        for number, group in enumerate(groups, 1):
            lines.append(f"{number:3}. {group['count']}× " + " | ".join(_short(e, 80) for e in group["examples"]))
            closest = group.get("closest")
            if closest:
                lines.append(f"       closest passage (cosine {closest['score']:.2f}) {_where(closest)}: "
                             f"“{_short(closest['text'], 120)}”")
    if report["disliked"]:
        lines.append("")
        lines.append("Disliked answers:")
        for item in report["disliked"]:
            lines.append(f"  - {_short(item['question'], 100)}")
            quoted = item["quoted"] or f"({item['kind']})"
            where = ", ".join(_where(source) for source in item["sources"])
            lines.append(f"      said: “{_short(quoted, 200)}”" + (f" [{where}]" if where else ""))
    return "\n".join(lines)


CSV_COLUMNS = ["time", "question", "kind", "confidence", "turns", "feedback", "refused_group", "quoted", "sources",
               "latency_ms", "via"]


def write_csv(rows: list[LoggedQuestion], report: dict, path: Path) -> None:
    """Every logged question, one CSV line each; refused ones carry their group's number in the report."""
    group_of = {}
    for number, group in enumerate(report["refused_groups"], 1):
        for wording in group["questions"]:
            group_of[same_wording(wording) or wording.strip()] = number
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            feedback = {1: "up", -1: "down"}.get(row.feedback, "")
            group = group_of.get(same_wording(row.question) or row.question.strip(), "") \
                if row.kind == "refusal" else ""
            writer.writerow([row.time, row.question, row.kind, "" if row.confidence is None else row.confidence,
                             row.turns, feedback, group, row.quoted, json.dumps(row.sources, ensure_ascii=False),
                             row.latency_ms, row.via])


def _chart(per_day: list[dict]) -> str:
    """An inline SVG bar chart: questions (and, darker, refusals) per day."""
    if not per_day:
        return "<p>No questions in this period.</p>"
    width, height, pad = 640, 180, 28
    top = max(day["questions"] for day in per_day) or 1
    step = (width - 2 * pad) / len(per_day)
    bar = max(2.0, step * 0.7)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 24}" role="img" '
             f'aria-label="Questions and refusals per day" class="chart">',
             f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="#999"/>',
             f'<text x="{pad - 4}" y="{pad}" text-anchor="end" font-size="10">{top}</text>']
    for number, day in enumerate(per_day):
        x = pad + number * step + (step - bar) / 2
        for value, colour in ((day["questions"], "#f59e0b"), (day["refused"], "#b45309")):
            tall = (height - pad) * value / top
            parts.append(f'<rect x="{x:.1f}" y="{height - tall:.1f}" width="{bar:.1f}" height="{tall:.1f}" '
                         f'fill="{colour}"><title>{html.escape(day["day"])}: {day["questions"]} questions, '
                         f'{day["refused"]} refused</title></rect>')
        if len(per_day) <= 14 or number % max(1, len(per_day) // 10) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height + 14}" text-anchor="middle" font-size="10">'
                         f'{html.escape(day["day"][5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 900px; margin: 24px auto; padding: 0 16px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 28px; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid #e5e5e5; } th { background: #fafaf9; }
.figures td:first-child { width: 140px; color: #555; } .count { font-weight: 600; white-space: nowrap; }
.closest { color: #555; font-size: .9em; } .chart { width: 100%; max-width: 640px; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; }
"""


def as_html(report: dict, title: str = "What fans asked") -> str:
    """The report as one self-contained HTML page (inline styles and chart; nothing loaded from elsewhere)."""
    e = html.escape
    rate = report["answer_rate"]
    figures = [
        ("Questions", report["questions"]),
        ("Answered", f"{report['answered']}" + (f" ({rate:.0%} of answered + refused)" if rate is not None else "")),
        ("Refused", report["refused"]),
        ("Other", f"{report['small_talk']} small talk, {report['invalid']} empty or too long, "
                  f"{report['rate_limited']} rate-limited, {report['errors']} errors"),
        ("Thumbs", f"{report['liked']} up, {len(report['disliked'])} down"),
        ("Period", f"{report['first'] or '–'} to {report['last'] or '–'} (UTC)"),
    ]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>", f"<h1>{e(title)}</h1>",
           '<table class="figures">']
    out += [f"<tr><td>{e(name)}</td><td>{e(str(value))}</td></tr>" for name, value in figures]
    out.append("</table><h2>Questions per day</h2>")
    out.append('<p class="legend"><span style="background:#f59e0b"></span>questions'
               '<span style="background:#b45309"></span>refused</p>')
    out.append(_chart(report["per_day"]))
    out.append("<h2>Refused questions, grouped by meaning</h2>")
    if report["refused_groups"]:
        out.append("<table><tr><th>Asked</th><th>How fans put it</th><th>Closest passage in the seeds</th></tr>")
        for group in report["refused_groups"]:
            examples = "<br>".join(e(example) for example in group["examples"])
            closest = group.get("closest")
            near = (f'<span class="closest">cosine {closest["score"]:.2f} · {e(_where(closest))}</span><br>'
                    f"{e(closest['text'])}") if closest else ""
            out.append(f'<tr><td class="count">{group["count"]}×</td><td>{examples}</td><td>{near}</td></tr>')
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    out.append("<h2>Disliked answers</h2>")
    if report["disliked"]:
        out.append("<table><tr><th>Question</th><th>What the bot said</th></tr>")
        for item in report["disliked"]:
            where = ", ".join(_where(source) for source in item["sources"])
            said = e(item["quoted"] or f"({item['kind']})") + (f'<br><span class="closest">{e(where)}</span>'
                                                                  if where else "")
            out.append(f"<tr><td>{e(item['question'])}</td><td>{said}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    out.append("</body></html>")
    return "\n".join(out)
