"""Re-derive the refusal model from question sets (``bot calibrate``).

For every question of every set, the refusal features are computed by the
same rank-and-judge step that answers (:func:`bot.judge.judge`), so the model
is fitted on exactly what ``Bot.answer`` sees. A logistic regression learns
"the seeds answer this" (``answerable``) against "they don't" (``off_topic``),
each set weighing the same whatever its size. The threshold is the one that
maximises the mean, over sets, of the balanced accuracy
``(1 - false_refusal_rate + off_topic_refusal_rate) / 2``. The adversarial
``unanswerable`` questions are left out of the fit and only reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config import Config
from ..judge import FEATURES, RefusalModel
from .eval import default_seeds_for, eval_bot, load_questions


def collect(qa_path: Path, seeds_dir: Path, config: Config) -> list[tuple[dict, str]]:
    """The refusal features and kind of every question in one set."""
    bot = eval_bot(seeds_dir, config)
    samples = []
    for item in load_questions(qa_path):
        judgement = bot.judge(item.question, item.history)
        if judgement.features is not None:
            samples.append((judgement.features, item.kind))
    return samples


def fit(sets: dict[str, list[tuple[dict, str]]]) -> dict:
    """Fit weights, bias and threshold; return them with per-set results."""
    from sklearn.linear_model import LogisticRegression

    rows, labels, weights, owners = [], [], [], []
    for name, samples in sets.items():
        used = [(f, kind) for f, kind in samples if kind in ("answerable", "off_topic")]
        for features, kind in used:
            rows.append([features[k] for k in FEATURES])
            labels.append(kind == "answerable")
            weights.append(1.0 / len(used))
            owners.append(name)
    x, y, w = np.array(rows), np.array(labels), np.array(weights)
    model = LogisticRegression(C=1.0, max_iter=10000).fit(x, y, sample_weight=w / w.mean())
    result = {
        "weights": {k: round(float(v), 4) for k, v in zip(FEATURES, model.coef_[0])},
        "bias": round(float(model.intercept_[0]), 4),
    }
    scorer = RefusalModel(result["weights"], result["bias"], 0.5)

    def rates(threshold: float) -> dict[str, dict[str, float]]:
        out = {}
        for name, samples in sets.items():
            refused = {kind: [] for kind in ("answerable", "off_topic", "unanswerable")}
            for features, kind in samples:
                refused.setdefault(kind, []).append(scorer.probability(features) < threshold)
            out[name] = {f"{kind}_refused": round(float(np.mean(v)), 4) for kind, v in refused.items() if v}
        return out

    def balanced(threshold: float) -> float:
        per_set = rates(threshold)
        return float(np.mean([(1 - r["answerable_refused"] + r["off_topic_refused"]) / 2 for r in per_set.values()]))

    grid = [round(t, 2) for t in np.arange(0.05, 0.96, 0.05)]
    result["threshold"] = max(grid, key=lambda t: (balanced(t), -t))
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
