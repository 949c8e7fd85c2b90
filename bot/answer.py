"""Compose a grounded answer: quote the sentences that answer, or refuse.

An answer is extractive by construction: its text is one or two sentences
copied from the seeds, each with its citation. The persona only speaks when
there is nothing to quote: small talk, empty or oversized questions, and
refusals when the evidence is too weak.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources

from .persona import Persona
from .query import Query
from .retrieve import Candidate, Passage, Retriever

# Whole-message small talk that deserves a persona reply, not a search.
_SMALL_TALK = [
    ("greeting", re.compile(r"(hi|hello|hey|hiya|howdy|greetings|hallo|salem|sälem|good (morning|afternoon|evening|day))( there| everyone| all| bot| friend)?")),
    ("thanks", re.compile(r"(thanks|thank you|thank u|thx|ty|cheers|rakhmet|much appreciated)( (so|very) much| a lot| again)?")),
    ("goodbye", re.compile(r"(bye|goodbye|bye bye|see you|see ya|good night|farewell)( later| soon)?")),
    ("about", re.compile(r"(who|what) are you|what is your name|what's your name|are you a (bot|robot|human|person)|what can you do|help|how does this work")),
]


@dataclass(frozen=True)
class Answer:
    """What the bot says to one question."""

    #: What the bot says: quoted seed sentences, or a persona line.
    text: str
    #: True when the bot declined because its documents don't say.
    refused: bool
    #: The passages quoted in ``text``, in the order they appear there.
    citations: list[Passage] = field(default_factory=list)
    #: "answer", "refusal", "small_talk" or "invalid" (empty or too long).
    kind: str = "answer"
    #: The refusal model's estimate that the seeds answer the question (0..1).
    confidence: float | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict: text, refused, kind, confidence and citations."""
        return {
            "text": self.text,
            "refused": self.refused,
            "kind": self.kind,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "citations": [p.to_dict() for p in self.citations],
        }


def small_talk(question: str, persona: Persona) -> Answer | None:
    """A persona reply when the whole message is a greeting, thanks or "who are you?"."""
    message = " ".join(re.sub(r"[^\w' ]+", " ", question.lower()).split())
    for kind, pattern in _SMALL_TALK:
        if pattern.fullmatch(message):
            line = {"greeting": persona.greeting, "thanks": persona.thanks, "goodbye": persona.goodbye}.get(
                kind, persona.about
            )
            return Answer(text=persona.say(line), refused=False, kind="small_talk")
    return None


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
    def bundled(cls) -> "RefusalModel":
        """The calibration shipped with the package."""
        data = json.loads(resources.files("bot").joinpath("calibration.json").read_text(encoding="utf-8"))
        return cls(weights=data["weights"], bias=data["bias"], threshold=data["threshold"])

    def probability(self, features: dict[str, float]) -> float:
        """Estimated probability that the question is answerable from the seeds."""
        logit = self.bias + sum(self.weights[name] * features[name] for name in self.weights)
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


def refusal_features(query: Query, ranked: list[Candidate], retriever: Retriever) -> dict[str, float]:
    """Signals of whether the best candidates really answer the question.

    - ``dense``: cosine of the question with the best of the top sentences;
    - ``context_dense``: cosine with the best sentence's window;
    - ``margin``: the lead of the best sentence's fused score over the second's;
    - ``unknown_words``: share of the question's words that occur nowhere in
      the seeds (a question about another person names things the seeds lack);
    - ``coverage``: share of the question's words that the best sentence uses;
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
    second = ranked[1].score if len(ranked) > 1 else best.score
    dense, context_dense = max(c.dense for c in top), best.context_dense
    if query.follow_up_of:
        joint, joint_context = retriever.dense_scores(f"{query.follow_up_of} {query.question}", [c.row for c in top])
        dense, context_dense = max(dense, float(joint.max())), max(context_dense, float(joint_context[0]))
    unknown, terms = retriever.unknown_terms(query.question)
    answer_type = retriever.terms(" ".join(query.answer_type))
    best_terms = retriever.terms(retriever.index.chunks[best.row].text)
    unknown = [t for t in unknown if t not in answer_type]
    judged = [t for t in terms if t in best_terms or t not in answer_type]
    names = {w.lower() for w in re.findall(r"(?<!^)(?<![.?!] )\b[A-Z][\w'’-]+", query.question)}
    return {
        "dense": dense,
        "context_dense": context_dense,
        "margin": best.score - second,
        "unknown_words": len(unknown) / max(len(terms), 1),
        "coverage": sum(t in best_terms for t in judged) / len(judged) if judged else 1.0,
        "unknown_names": float(len(names - retriever.words)),
        "lacks_wanted": 1.0 if best.offers_wanted is False else 0.0,
    }


def compose(ranked: list[Candidate], retriever: Retriever, max_words: int) -> list[Passage]:
    """Pick the sentence that answers, and a second one only when it likely adds the answer.

    The runner-up is added when it scores nearly as well as the best (so the
    ranking cannot tell them apart) and the two together stay short.
    """
    best = retriever.passage(ranked[0])
    chosen = [best]
    if len(ranked) > 1:
        runner_up = retriever.passage(ranked[1])
        close = ranked[0].score - ranked[1].score <= retriever.config.second_sentence_margin
        short = len(best.text.split()) + len(runner_up.text.split()) <= max_words
        if close and short:
            chosen.append(runner_up)
            chosen.sort(key=lambda p: (p.source, p.start))
    return chosen
