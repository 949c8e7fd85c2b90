"""What ``bot bench`` feeds the bot: the questions it asks, the seed sentences it
recombines into corpora, and how it times answers."""

from __future__ import annotations

import random
import time

import numpy as np

from ..chunk import chunk_seed
from ..config import Config
from ..ingest import NoSeedsError, load_seeds

#: Questions asked for the latency figures (after WARM_UP of them unmeasured).
QUESTIONS = (
    "Who taught Sezim to play the dombra?",
    "What was her debut album called?",
    "Where did she study music?",
    "Which singer inspired her to pursue a career in music?",
    "What instruments does she blend with jazz?",
    "Was the album a success?",
    "Where is she from?",
    "What does she sing about?",
    "Does she still play traditional songs?",
    "What is her favourite food?",
    "Who won the football world cup in 1998?",
    "Tell me about her childhood.",
)
LATENCY_REPEATS = 5
WARM_UP = 5
#: Sentences in a paragraph of a generated seed file.
SENTENCES_PER_PARAGRAPH = 3


def seed_sentences(config: Config) -> list[str]:
    """The distinct sentences (of three words or more) of the seeds, to recombine."""
    sentences = [chunk.text for seed in load_seeds(config.seeds_dir, config.max_seed_bytes)
                 for chunk in chunk_seed(seed, config.window)]
    distinct = list(dict.fromkeys(s for s in sentences if len(s.split()) >= 3))
    if not distinct:
        raise NoSeedsError(f"The documents in {config.seeds_dir} hold no sentences to build a test corpus from.")
    return distinct


#: Lead-ins that make each recombined sentence a distinct text, so that a few
#: seed sentences still give a corpus of distinct sentences to embed (the
#: builder embeds a repeated text once, which would flatter the build time).
_LEAD_INS = ("In {year}, ", "By {year}, ", "Around {year}, ", "As reported in {year}, ", "Since {year}, ")


def recycled_sentence(rng: random.Random, sentences: list[str], serial: int) -> str:
    """A seed sentence behind a numbered lead-in, so recycled sentences stay distinct."""
    sentence = rng.choice(sentences)
    lead = _LEAD_INS[serial % len(_LEAD_INS)].format(year=1000 + serial // len(_LEAD_INS))
    return lead + sentence[0].lower() + sentence[1:]


def latencies(bot) -> tuple[float, float, list[float]]:
    """p50 and p95 of answer() in ms, one question at a time after a warm-up, and all timings."""
    for question in QUESTIONS[:WARM_UP]:
        bot.answer(question)
    times = []
    for _ in range(LATENCY_REPEATS):
        for question in QUESTIONS:
            started = time.perf_counter()
            bot.answer(question)
            times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), times
