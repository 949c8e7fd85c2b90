"""Judge whether the seeds answer a question: rank the sentences, measure the evidence, estimate.

One step, :func:`judge`, ranks the candidate sentences for a question,
computes the refusal features of the best ones and turns them into a
confidence with the :class:`RefusalModel`. ``Bot.answer`` answers from it
and ``bot calibrate`` fits the model on it, so calibration always measures
exactly what answering uses.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .query import Query
from .retrieve import Candidate, Retriever, Term

# "Sezim's" names Sezim.
_POSSESSIVE = re.compile(r"['’]s$")

#: How much a word the seeds never use counts as known, or as covered by a sentence, when the
#: seeds (or the sentence) use a word WordNet relates to it: "famous" is not "celebrated".
RELATED_CREDIT = 0.5

#: The refusal features, in the order ``calibration.json`` lists them.
FEATURES = ("dense", "context_dense", "margin", "unknown_words", "coverage", "unknown_names", "lacks_wanted")


@dataclass(frozen=True)
class RefusalModel:
    """Logistic model of "the seeds answer this question", from ``calibration.json``.

    Its weights and threshold are derived by ``bot calibrate`` on the public
    question sets; see the README for how.
    """

    weights: dict[str, float]
    bias: float
    threshold: float

    @classmethod
    def load(cls, path: Path) -> RefusalModel:
        """A model written by ``bot calibrate``; its features must be :data:`FEATURES`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def bundled(cls) -> RefusalModel:
        """The calibration shipped with the package."""
        text = resources.files("bot").joinpath("calibration.json").read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> RefusalModel:
        """A model from the JSON object ``bot calibrate`` writes."""
        weights = {str(name): float(value) for name, value in data["weights"].items()}
        if set(weights) != set(FEATURES):
            # A calibration made for other features would silently weigh the wrong signals.
            raise ValueError(f"The refusal model's features {sorted(weights)} are not the bot's {sorted(FEATURES)}.")
        return cls(weights=weights, bias=float(data["bias"]), threshold=float(data["threshold"]))

    def probability(self, features: dict[str, float]) -> float:
        """Estimated probability that the question is answerable from the seeds."""
        logit = self.bias + sum(self.weights[name] * features[name] for name in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


@dataclass(frozen=True)
class Judgement:
    """What the bot found for one question and how sure it is that it answers."""

    #: The candidate sentences, best first (empty when nothing matched at all).
    ranked: list[Candidate]
    #: The refusal features of the best candidates (None when nothing matched).
    features: dict[str, float] | None
    #: The refusal model's estimate that the seeds answer the question (0..1).
    confidence: float
    #: True when ``confidence`` reaches the model's threshold.
    answerable: bool


def judge(query: Query, retriever: Retriever, model: RefusalModel) -> Judgement:
    """Rank the sentences for ``query`` and judge whether the best of them answer it."""
    ranked = retriever.candidates(query)
    if not ranked:
        return Judgement(ranked=[], features=None, confidence=0.0, answerable=False)
    features = refusal_features(query, ranked, retriever)
    confidence = model.probability(features)
    return Judgement(ranked=ranked, features=features, confidence=confidence, answerable=confidence >= model.threshold)


def _covered(term: Term, stems: set[str]) -> float:
    """1 when ``stems`` hold the term in some form, :data:`RELATED_CREDIT` for a related word, else 0."""
    if term.within(stems):
        return 1.0
    return RELATED_CREDIT if term.related_within(stems) else 0.0


def refusal_features(query: Query, ranked: list[Candidate], retriever: Retriever) -> dict[str, float]:
    """Signals of whether the best candidates really answer the question.

    - ``dense``: cosine of the question with the best of the top sentences;
    - ``context_dense``: cosine with the best sentence's window;
    - ``margin``: the lead of the best sentence's fused score over the second's;
    - ``unknown_words``: share of the question's words that occur nowhere in
      the seeds (a question about another person names things the seeds lack);
    - ``coverage``: share of the question's words that the best sentence (with
      its question, in an interview or FAQ) uses, in any form ("grew" is
      covered by "Growing");
    - ``unknown_names``: capitalised words of the question absent from the seeds;
    - ``lacks_wanted``: 1 when the question wants a date, number or name and the
      best sentence has none.

    Words naming the kind of answer asked for ("cause" in "What cause is she
    committed to?") count when the seeds use them, never against: an answer
    names an instance of the kind, seldom the kind itself.

    A follow-up is judged together with the question it leans on, since
    "Does she still play it?" alone resembles nothing in particular.
    """
    best, top = ranked[0], ranked[:3]
    rows = [c.row for c in top]
    second = ranked[1].score if len(ranked) > 1 else best.score
    dense, context_dense = max(c.dense for c in top), best.context_dense
    judged = query.judged(query.question)
    if judged != query.question:
        # Ranked with her name, judged without: see Query.judged.
        plain, plain_context = retriever.dense_scores(judged, rows)
        dense, context_dense = float(plain.max()), float(plain_context[0])
    if query.follow_up_of:
        joint, joint_context = retriever.dense_scores(f"{query.judged(query.follow_up_of)} {judged}", rows)
        dense, context_dense = max(dense, float(joint.max())), max(context_dense, float(joint_context[0]))
    unknown, terms = retriever.unknown_terms(query.question, query.name_words)
    answer_type = retriever.terms(" ".join(query.answer_type))
    chunk = retriever.index.chunks[best.row]
    # An answer in an interview or FAQ is read with its question: "It is called Night Steppe."
    # covers "What is the new album called?" because its question says "new album".
    best_terms = retriever.terms(f"{chunk.question} {chunk.text}" if chunk.question else chunk.text)
    unknown = [t for t in unknown if t.stem not in answer_type]
    judged = [t for t in terms if t.within(best_terms) or t.stem not in answer_type]
    names = {_POSSESSIVE.sub("", w.lower()) for w in re.findall(r"(?<!^)(?<![.?!] )\b[A-Z][\w'’-]+", query.question)}
    return {
        "dense": dense,
        "context_dense": context_dense,
        "margin": best.score - second,
        "unknown_words": sum(RELATED_CREDIT if t.related else 1.0 for t in unknown) / max(len(terms), 1),
        "coverage": sum(_covered(t, best_terms) for t in judged) / len(judged) if judged else 1.0,
        "unknown_names": float(len(names - retriever.words)),
        "lacks_wanted": 1.0 if best.offers_wanted is False else 0.0,
    }
