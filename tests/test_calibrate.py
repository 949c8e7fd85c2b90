"""Fitting the refusal model (``bot calibrate``) on small synthetic feature sets."""

from __future__ import annotations

import numpy as np

from bot.judge import FEATURES, RefusalModel
from bot.measure.calibrate import fit


def synthetic(seed: int, answerable: int, off_topic: int, gap: float) -> list[tuple[dict, str]]:
    """Feature rows where answerable questions have a dense cosine ``gap`` above off-topic ones."""
    rng = np.random.default_rng(seed)
    samples = []
    for kind, count, dense in (("answerable", answerable, 0.5 + gap / 2), ("off_topic", off_topic, 0.5 - gap / 2)):
        for _ in range(count):
            features = {name: float(rng.uniform(0, 0.05)) for name in FEATURES}
            features["dense"] = dense + float(rng.uniform(-0.05, 0.05))
            samples.append((features, kind))
    return samples


def test_a_separable_case_gets_a_threshold_that_separates_it():
    sets = {"big": synthetic(1, 60, 40, gap=0.6), "small": synthetic(2, 8, 5, gap=0.6)}
    result = fit(sets)
    assert list(result["weights"]) == list(FEATURES)
    assert result["weights"]["dense"] > 0
    model = RefusalModel(result["weights"], result["bias"], result["threshold"])
    for samples in sets.values():
        for features, kind in samples:
            assert (model.probability(features) >= model.threshold) == (kind == "answerable")
    assert result["results"] == {
        name: {"answerable_refused": 0.0, "off_topic_refused": 1.0} for name in sets
    }


def test_unanswerable_questions_are_reported_not_fitted():
    base = {"set": synthetic(3, 30, 20, gap=0.6)}
    with_unanswerable = {"set": base["set"] + [({n: 0.0 for n in FEATURES} | {"dense": 0.9}, "unanswerable")]}
    plain, extra = fit(base), fit(with_unanswerable)
    def model(fitted):
        return fitted["weights"], fitted["bias"], fitted["threshold"]

    assert model(plain) == model(extra)
    assert extra["results"]["set"]["unanswerable_refused"] == 0.0


def test_fitting_is_reproducible():
    sets = {"a": synthetic(4, 40, 30, gap=0.2), "b": synthetic(5, 20, 10, gap=0.3)}
    assert fit(sets) == fit({name: list(samples) for name, samples in sets.items()})
