"""Fitting the refusal model (``bot calibrate``) on small synthetic feature sets."""

from __future__ import annotations

import numpy as np

from bot.judge import FEATURES, RefusalModel
from bot.measure.calibrate import fit


def synthetic(seed: int, answerable: int, off_topic: int, gap: float) -> list[tuple[dict, str, bool]]:
    """Feature rows where answerable questions have a dense cosine ``gap`` above off-topic ones."""
    rng = np.random.default_rng(seed)
    samples = []
    for kind, count, dense in (("answerable", answerable, 0.5 + gap / 2), ("off_topic", off_topic, 0.5 - gap / 2)):
        for _ in range(count):
            features = {name: float(rng.uniform(0, 0.05)) for name in FEATURES}
            features["dense"] = dense + float(rng.uniform(-0.05, 0.05))
            samples.append((features, kind, kind == "answerable"))
    return samples


def test_a_separable_case_gets_a_threshold_that_separates_it():
    sets = {"big": synthetic(1, 60, 40, gap=0.6), "small": synthetic(2, 8, 5, gap=0.6)}
    result = fit(sets)
    assert list(result["weights"]) == list(FEATURES)
    assert result["weights"]["dense"] > 0
    model = RefusalModel(result["weights"], result["bias"], result["threshold"])
    for samples in sets.values():
        for features, kind, _ in samples:
            assert (model.probability(features) >= model.threshold) == (kind == "answerable")
    assert result["results"] == {
        name: {"answerable_refused": 0.0, "off_topic_refused": 1.0, "answerable_accuracy": 1.0} for name in sets
    }


def test_unanswerable_questions_are_negatives_weighing_less_than_off_topic():
    base = synthetic(3, 30, 20, gap=0.6)
    lookalikes = [({n: 0.0 for n in FEATURES} | {"dense": 0.6 + i / 100}, "unanswerable", False) for i in range(10)]
    plain, unanswerable = fit({"set": base}), fit({"set": base + lookalikes})
    as_off_topic = fit({"set": base + [(f, "off_topic", False) for f, _, _ in lookalikes]})

    def confidence(fitted: dict) -> float:
        return RefusalModel(fitted["weights"], fitted["bias"], fitted["threshold"]).probability(lookalikes[5][0])

    # They pull the model towards refusing such questions, less than off-topic ones would.
    assert confidence(as_off_topic) < confidence(unanswerable) < confidence(plain)
    assert "unanswerable_refused" in unanswerable["results"]["set"]


def test_the_threshold_counts_answering_right_not_just_answering():
    """Answerable questions the bot would answer wrongly cost nothing when refused."""
    samples = synthetic(6, 40, 30, gap=0.6)
    wrong = [({n: 0.0 for n in FEATURES} | {"dense": 0.5}, "answerable", False) for _ in range(10)]
    result = fit({"set": samples + wrong})
    assert result["results"]["set"]["answerable_accuracy"] == 0.8
    assert result["results"]["set"]["off_topic_refused"] == 1.0


def test_fitting_is_reproducible():
    sets = {"a": synthetic(4, 40, 30, gap=0.2), "b": synthetic(5, 20, 10, gap=0.3)}
    assert fit(sets) == fit({name: list(samples) for name, samples in sets.items()})
