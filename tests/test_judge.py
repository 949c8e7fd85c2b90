"""Judging whether the seeds answer a question: the features, the model, and the one shared step."""

from __future__ import annotations

import json
import math

import pytest

from bot.judge import FEATURES, RefusalModel, judge

from conftest import FRANCE, built_bot

#: A small seed written here, so that every feature below can be worked out by reading it.
SEED = (
    "Aigerim Sadyk is a pianist from Almaty. "
    "Her first teacher was her uncle, a church organist. "
    "She recorded her debut album, Winter Lights, in 2019. "
    "Critics praised its quiet intensity."
)


@pytest.fixture(scope="module")
def small_bot(tmp_path_factory, embedder):
    return built_bot(tmp_path_factory.mktemp("judge"), embedder, {"aigerim.txt": SEED})


def test_an_answered_question_has_strong_features(small_bot):
    judgement = small_bot.judge("When did she record her debut album?")
    features = judgement.features
    assert list(features) == list(FEATURES)
    best = small_bot.retriever.index.chunks[judgement.ranked[0].row].text
    assert best == "She recorded her debut album, Winter Lights, in 2019."
    assert features["coverage"] == 1.0  # "record", "debut" and "album" are all in the best sentence
    assert features["unknown_words"] == 0.0 and features["unknown_names"] == 0.0
    assert features["lacks_wanted"] == 0.0  # "when" wants a date, and 2019 is one
    assert features["dense"] > 0.5 and features["margin"] > 0
    assert judgement.answerable and judgement.confidence >= small_bot.refusal_model.threshold


def test_a_question_about_something_else_has_weak_features(small_bot):
    judgement = small_bot.judge(FRANCE)
    features = judgement.features
    assert features["unknown_names"] == 1.0  # "France"
    assert features["unknown_words"] == 1.0  # "capital" and "France": the seed has neither
    assert features["coverage"] == 0.0
    assert features["dense"] < 0.3
    assert not judgement.answerable and judgement.confidence < small_bot.refusal_model.threshold


def test_a_sentence_without_what_the_question_wants_lacks_it(small_bot):
    # "When" wants a date; the best sentence for the praise has none.
    assert small_bot.judge("When did critics praise its quiet intensity?").features["lacks_wanted"] == 1.0
    assert small_bot.judge("When did she record her debut album?").features["lacks_wanted"] == 0.0


@pytest.mark.parametrize("question", ["Where is Aigerim from?", "What is her debut album called?", FRANCE])
def test_answering_uses_the_judgement(small_bot, question):
    judgement = judge(small_bot.read(question), small_bot.retriever, small_bot.refusal_model)
    reply = small_bot.answer(question)
    assert reply.confidence == judgement.confidence
    assert reply.refused == (not judgement.answerable)
    if not reply.refused:
        best = small_bot.retriever.index.chunks[judgement.ranked[0].row]
        assert (best.source, best.start) in {(p.source, p.start) for p in reply.citations}


def test_probability_is_the_logistic_of_the_weighted_features():
    weights = {name: 0.0 for name in FEATURES} | {"dense": 2.0, "unknown_words": -3.0}
    model = RefusalModel(weights=weights, bias=-0.5, threshold=0.5)
    features = {name: 0.0 for name in FEATURES} | {"dense": 0.8, "unknown_words": 0.5}
    logit = -0.5 + 2.0 * 0.8 - 3.0 * 0.5
    assert model.probability(features) == pytest.approx(1 / (1 + math.exp(-logit)))
    # Stronger evidence, higher probability; extreme evidence saturates instead of overflowing.
    assert model.probability(features | {"dense": 0.9}) > model.probability(features)
    assert model.probability(features | {"dense": 1e6}) == pytest.approx(1.0)
    assert model.probability(features | {"unknown_words": 1e6}) == pytest.approx(0.0)


def test_the_bundled_model_weighs_the_bots_features():
    model = RefusalModel.bundled()
    assert list(model.weights) == list(FEATURES)
    assert 0.0 < model.threshold < 1.0
    # Evidence the seeds answer raises confidence; words the seeds lack lower it.
    assert model.weights["dense"] > 0 and model.weights["unknown_words"] < 0


def test_a_written_model_loads_and_one_for_other_features_is_refused(tmp_path):
    data = {"weights": {name: 1.0 for name in FEATURES}, "bias": -2.0, "threshold": 0.4}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    model = RefusalModel.load(path)
    assert model == RefusalModel(weights=data["weights"], bias=-2.0, threshold=0.4)

    path.write_text(json.dumps(data | {"weights": {"dense": 1.0, "loudness": 2.0}}), encoding="utf-8")
    with pytest.raises(ValueError, match="features"):
        RefusalModel.load(path)
