"""Re-derive the refusal model from question sets (``bot calibrate``).

For every question of every set, the refusal features are computed by the
same rank-and-judge step that answers (:func:`bot.judge.judge`), so the model
is fitted on exactly what ``Bot.answer`` sees. A logistic regression learns
"the seeds answer this" (``answerable``) against "they don't": ``off_topic``
questions, and with less weight the ``unanswerable`` ones (about the artist,
not in the documents), each set weighing the same whatever its size. The
threshold is the one that maximises the mean, over sets, of a score that
counts answering right :data:`ANSWERING_WEIGHT` times and each kind of
refusal once (see :func:`fit`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..config import Config
from ..judge import FEATURES, RefusalModel
from .eval import contains_gold, default_seeds_for, eval_bot, load_questions

#: Weight of an ``unanswerable`` question in the fit, against 1 for ``off_topic``: they are the
#: hard negatives a fan bot meets, but they resemble answerable questions closely, so counting
#: them fully pulls the boundary into the answerable ones.
UNANSWERABLE_WEIGHT = 0.5
#: Inverse regularisation strength of the logistic regression: five sets of very different
#: sizes and styles; a firmer prior keeps the weights from chasing one set's quirks.
REGULARISATION_C = 0.1
#: How much answering right counts in the threshold's score against refusing an off-topic or
#: an unanswerable question: a fan refused half the time stops asking.
ANSWERING_WEIGHT = 3.0
#: The fit's negatives and their weights.
NEGATIVES = {"off_topic": 1.0, "unanswerable": UNANSWERABLE_WEIGHT}

#: One question as calibration sees it: its refusal features, its kind, and whether the
#: bot's answer (were it to answer) holds a gold string.
Sample = tuple[dict, str, bool]


def collect(qa_path: Path, seeds_dir: Path, config: Config) -> list[Sample]:
    """The refusal features, kind and answer correctness of every question in one set."""
    bot = eval_bot(seeds_dir, config)
    judging = bot.refusal_model
    # The answer does not depend on the confidence, only on whether it reaches the threshold:
    # with a threshold of 0 the bot says what it would say for every question.
    answering = dataclasses.replace(judging, threshold=0.0)
    samples = []
    for item in load_questions(qa_path):
        judgement = bot.judge(item.question, item.history)
        if judgement.features is None:
            continue
        bot.refusal_model = answering
        try:
            reply = bot.answer(item.question, item.history)
        finally:
            bot.refusal_model = judging
        samples.append((judgement.features, item.kind, not reply.refused and contains_gold(reply.text, item.answers)))
    return samples


def fit(sets: dict[str, list[Sample]]) -> dict:
    """Fit weights, bias and threshold; return them with per-set results.

    The threshold maximises the mean over sets of
    ``(ANSWERING_WEIGHT * answerable_accuracy + off_topic_refused + unanswerable_refused)
    / (ANSWERING_WEIGHT + kinds of refusal the set has)``.
    """
    from sklearn.linear_model import LogisticRegression

    kind_weight = {"answerable": 1.0, **NEGATIVES}
    rows, labels, weights = [], [], []
    for samples in sets.values():
        used = [(features, kind) for features, kind, _ in samples if kind in kind_weight]
        total = sum(kind_weight[kind] for _, kind in used)
        for features, kind in used:
            rows.append([features[k] for k in FEATURES])
            labels.append(kind == "answerable")
            weights.append(kind_weight[kind] / total)
    x, y, w = np.array(rows), np.array(labels), np.array(weights)
    model = LogisticRegression(C=REGULARISATION_C, max_iter=10000).fit(x, y, sample_weight=w / w.mean())
    result = {
        "weights": {k: round(float(v), 4) for k, v in zip(FEATURES, model.coef_[0])},
        "bias": round(float(model.intercept_[0]), 4),
    }
    scorer = RefusalModel(result["weights"], result["bias"], 0.5)
    probabilities = {name: [scorer.probability(f) for f, _, _ in samples] for name, samples in sets.items()}

    def rates(threshold: float) -> dict[str, dict[str, float]]:
        out = {}
        for name, samples in sets.items():
            refused = {kind: [] for kind in ("answerable", "off_topic", "unanswerable")}
            right = []
            for (_, kind, correct), probability in zip(samples, probabilities[name]):
                refused.setdefault(kind, []).append(probability < threshold)
                if kind == "answerable":
                    right.append(correct and probability >= threshold)
            out[name] = {f"{kind}_refused": round(float(np.mean(v)), 4) for kind, v in refused.items() if v}
            if right:
                out[name]["answerable_accuracy"] = round(float(np.mean(right)), 4)
        return out

    def score(threshold: float) -> float:
        per_set = []
        for r in rates(threshold).values():
            kinds = [kind for kind in NEGATIVES if f"{kind}_refused" in r]
            refusals = sum(NEGATIVES[kind] * r[f"{kind}_refused"] for kind in kinds)
            answering = ANSWERING_WEIGHT * r.get("answerable_accuracy", 0.0)
            per_set.append((answering + refusals) / (ANSWERING_WEIGHT + sum(NEGATIVES[kind] for kind in kinds)))
        return float(np.mean(per_set))

    grid = [round(t, 2) for t in np.arange(0.05, 0.96, 0.01)]
    result["threshold"] = max(grid, key=lambda t: (score(t), -t))
    result["results"] = rates(result["threshold"])
    return result


def calibrate(eval_dir: Path, output: Path, config: Config | None = None) -> dict:
    """Calibrate on every question set under ``eval_dir`` and write ``output``."""
    config = config or Config()
    sets = {}
    for qa_path in sorted(eval_dir.glob("*/qa.jsonl")):
        sets[qa_path.parent.name] = collect(qa_path, default_seeds_for(qa_path, config.seeds_dir), config)
    if not sets:
        raise ValueError(f"No question sets (*/qa.jsonl) under {eval_dir}.")
    result = fit(sets)
    result["features"] = list(FEATURES)
    result["derived_from"] = sorted(sets)
    output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
