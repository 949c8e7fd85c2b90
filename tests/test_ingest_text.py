"""Plain-text seeds: Q:/A: FAQs, heading lines, and unstructured text exactly as before."""

from __future__ import annotations

from bot.chunk import clean
from bot.ingest import load_seeds
from bot.ingest.text import paragraphs

from conftest import SEEDS, SEZIM_FILE

FAQ = """SEZIM - FREQUENTLY ASKED QUESTIONS
Last updated: May 2025

Q: What does the name of her debut album mean?
A: "Steppes and Sighs" is named after the wind that blows over the steppe at night.

Q: How do I join the fan club?
A: The fan club is called the Night Riders. Membership is free: sign up on the website.
Members get early access to tickets.

Interview: Sezim on her second album
Sezim's second album is called Night Steppe. It was recorded in her grandmother's house.
"""


def blocks_of(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    (seed,) = load_seeds(tmp_path)
    return seed, [(b.kind, clean(seed.text[b.start : b.end]), b.section, b.question) for b in seed.blocks]


def test_faq_questions_answers_and_heading_lines(tmp_path):
    seed, blocks = blocks_of(tmp_path, "faq.txt", FAQ)
    assert seed.text == FAQ  # the file itself: offsets point into it
    title = "SEZIM - FREQUENTLY ASKED QUESTIONS"
    meaning = "What does the name of her debut album mean?"
    club = "How do I join the fan club?"
    interview = "Interview: Sezim on her second album"
    assert blocks == [
        ("heading", title, title, ""),
        ("text", "Last updated: May 2025", title, ""),
        ("question", meaning, title, meaning),
        ("answer", '"Steppes and Sighs" is named after the wind that blows over the steppe at night.', title, meaning),
        ("question", club, title, club),
        ("answer", ("The fan club is called the Night Riders. Membership is free: sign up on the website. "
                    "Members get early access to tickets."), title, club),
        ("heading", interview, interview, ""),
        ("text", "Sezim's second album is called Night Steppe. It was recorded in her grandmother's house.",
         interview, ""),
    ]
    # The Q:/A: markers are not part of any span.
    assert not any(seed.text[b.start : b.end].lstrip().startswith(("Q:", "A:")) for b in seed.blocks)


def test_hard_wrapped_prose_is_not_mistaken_for_headings(tmp_path):
    text = (
        "Sezim Baktybekova grew up in a small village near Almaty, where her\n"
        "Grandmother Aigul taught her the dombra and the old songs of the steppe.\n"
        "She first sang in public at a village wedding when she was nine years\n"
        "Old, or so the family story goes.\n\n"
        "Early years\n\n"
        "She moved to Almaty at eighteen.\n"
    )
    _, blocks = blocks_of(tmp_path, "bio.txt", text)
    assert [(kind, words[:20]) for kind, words, _, _ in blocks] == [
        ("text", "Sezim Baktybekova gr"),
        ("heading", "Early years"),
        ("text", "She moved to Almaty "),
    ]


def test_text_without_structure_is_split_into_paragraphs_as_before(tmp_path):
    text = (SEEDS / SEZIM_FILE).read_text(encoding="utf-8")
    (seed,) = [s for s in load_seeds(SEEDS) if s.path == SEZIM_FILE]
    assert [(b.start, b.end) for b in seed.blocks] == paragraphs(text)
    assert all(b.kind == "text" and not b.section and not b.question and b.page is None for b in seed.blocks)
