"""Compose a grounded answer: quote the sentences that answer, or refuse.

An answer is extractive by construction: its text is one or two sentences
copied from the seeds, each with its citation. The persona only speaks when
there is nothing to quote: small talk, empty or oversized questions, and
refusals when the evidence is too weak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from .persona import Persona
from .retrieve import Passage

#: What kind of reply an :class:`Answer` is: quoted sentences, a refusal, a
#: small-talk line, a prompt for a usable question (empty or too long), a
#: request to ask in English, the server's "slow down", or its apology for a failure.
AnswerKind = Literal["answer", "refusal", "small_talk", "invalid", "other_language", "rate_limited", "error"]

# Whole-message small talk that deserves a persona reply, not a search.
_SMALL_TALK = [
    ("greeting", re.compile(r"(hi|hello|hey|hiya|howdy|greetings|hallo|salem|sälem"
                            r"|good (morning|afternoon|evening|day))( there| everyone| all| bot| friend)?")),
    ("thanks", re.compile(r"(thanks|thank you|thank u|thx|ty|cheers|rakhmet|much appreciated)"
                          r"( (so|very) much| a lot| again)?")),
    ("goodbye", re.compile(r"(bye|goodbye|bye bye|see you|see ya|good night|farewell)( later| soon)?")),
    ("about", re.compile(r"(who|what) are you|what is your name|what's your name|are you a (bot|robot|human|person)"
                         r"|what can you do|help|how does this work")),
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
    #: What kind of reply this is (see :data:`AnswerKind`).
    kind: AnswerKind = "answer"
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


def compose(passages: list[Passage], max_words: int, second_sentence_margin: float) -> list[Passage]:
    """Pick the sentence that answers, and a second one only when it likely adds the answer.

    ``passages`` are the best candidates, best first (only the first two are
    looked at). The runner-up is added when it scores nearly as well as the
    best (so the ranking cannot tell them apart) and the two together stay short.
    """
    best = passages[0]
    chosen = [best]
    if len(passages) > 1:
        runner_up = passages[1]
        close = best.score - runner_up.score <= second_sentence_margin
        short = len(best.text.split()) + len(runner_up.text.split()) <= max_words
        if close and short:
            chosen.append(runner_up)
            chosen.sort(key=lambda p: (p.source, p.start))
    return chosen
