"""Markdown seeds: headings as sections, bold interview questions, lists and tables."""

from __future__ import annotations

from bot.chunk import clean
from bot.ingest import load_seeds

INTERVIEW = """# "The steppe sings at night"

*Dala Sound Magazine, April 2025. Sezim talks about her new album.*

## The album

**What is the new album called?**

Sezim: It is called Night Steppe. I wrote it after dark.

**Who taught you the dombra?** Sezim: My grandmother, in our village kitchen.

### How do I buy it on vinyl?

It is sold at every concert.

Interview: Sezim on touring
She plays twelve concerts this spring.

| City | Date |
| --- | --- |
| Almaty | 12 March |

- Sezim - vocals, dombra
- Dana - drums
"""


def test_markdown_structure(tmp_path):
    (tmp_path / "interview.md").write_text(INTERVIEW, encoding="utf-8")
    (seed,) = load_seeds(tmp_path)
    assert len(seed.text) == len(INTERVIEW)
    blocks = [(b.kind, clean(seed.text[b.start : b.end]), b.section, b.question) for b in seed.blocks]
    title = '"The steppe sings at night"'
    called = "What is the new album called?"
    dombra = "Who taught you the dombra?"
    vinyl = "How do I buy it on vinyl?"
    touring = "Interview: Sezim on touring"
    assert blocks == [
        ("heading", title, title, ""),
        ("text", "Dala Sound Magazine, April 2025. Sezim talks about her new album.", title, ""),
        ("heading", "The album", "The album", ""),
        ("question", called, "The album", called),
        ("answer", "Sezim: It is called Night Steppe. I wrote it after dark.", "The album", called),
        ("question", dombra, "The album", dombra),
        ("answer", "Sezim: My grandmother, in our village kitchen.", "The album", dombra),
        ("question", vinyl, "The album", vinyl),
        ("answer", "It is sold at every concert.", "The album", vinyl),
        ("heading", touring, touring, ""),
        ("text", "She plays twelve concerts this spring.", touring, ""),
        ("row", "Almaty 12 March", touring, ""),
        ("text", "Sezim - vocals, dombra", touring, ""),
        ("text", "Dana - drums", touring, ""),
    ]
    # Offsets index the Markdown file itself.
    answer = next(b for b in seed.blocks if b.kind == "answer" and b.question == dombra)
    assert clean(INTERVIEW[answer.start : answer.end]) == "Sezim: My grandmother, in our village kitchen."


def test_bold_statements_and_short_list_items_stay_quotable(tmp_path):
    source = "**Sezim sold out every show in 2024.**\n\n- Almaty, Kazakhstan\n- Bishkek, Kyrgyzstan\n"
    (tmp_path / "facts.md").write_text(source, encoding="utf-8")
    (seed,) = load_seeds(tmp_path)
    assert [b.kind for b in seed.blocks] == ["text", "text", "text"]
