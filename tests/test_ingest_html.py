"""HTML seeds: the main content only (no navigation, footer, scripts or styles), headings as sections."""

from __future__ import annotations

import logging

import pytest

from bot.chunk import chunk_seed, clean
from bot.ingest import load_seeds

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sezim announces a new album | Label</title>
<style>body { font-family: serif; } .cookie { position: fixed; }</style>
<script>window.track = function () { console.log("page view"); };</script></head>
<body>
<header><nav><ul>
<li><a href="/">Home</a></li><li><a href="/artists">Artists</a></li><li><a href="/shop">Shop</a></li>
</ul></nav></header>
<main><article>
<h1>Sezim announces &ldquo;Night Steppe&rdquo;</h1>
<p>Almaty, 20 January 2025 &ndash; Sezim will release her second album, &ldquo;Night Steppe&rdquo;, on 7 March 2025.
The album has eleven songs and was recorded at her grandmother&rsquo;s house.</p>
<h2>Launch concert</h2>
<p>To celebrate the release, Sezim plays a launch concert at the Zhetysu Cultural Centre on 8 March 2025.
Tickets cost 10,000 tenge and go on sale on 27 January.</p>
<p><strong>Why is the album called Night Steppe?</strong></p>
<p>Sezim: Because I wrote every song after dark, with the window open to the steppe.</p>
</article></main>
<div class="cookie" id="cookie-banner">We use cookies to improve this site. <button>OK</button></div>
<footer><p>&copy; 2025 Tumar Records. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
<script>track();</script>
</body></html>
"""


def test_html_main_content_with_sections_and_decoded_entities(tmp_path):
    (tmp_path / "news.html").write_text(PAGE, encoding="utf-8")
    (seed,) = load_seeds(tmp_path)
    text = clean(seed.text)
    assert "Sezim will release her second album, “Night Steppe”, on 7 March 2025." in text
    assert "grandmother’s house" in text
    for boilerplate in ("Home", "Artists", "cookies", "All rights reserved", "Privacy", "font-family", "track",
                        "&ldquo;"):
        assert boilerplate not in text, boilerplate
    headings = [(clean(seed.text[b.start : b.end])) for b in seed.blocks if b.kind == "heading"]
    assert headings == ["Sezim announces “Night Steppe”", "Launch concert"]
    chunks = chunk_seed(seed)
    assert all(clean(seed.text[c.start : c.end]) == c.text for c in chunks)
    (tickets,) = [c for c in chunks if c.text.startswith("Tickets cost")]
    assert tickets.section == "Launch concert" and tickets.page is None
    # A bold question is the answer's question, never a chunk.
    assert not any("Why is the album called" in c.text for c in chunks)
    (answer,) = [c for c in chunks if c.text.startswith("Sezim: Because")]
    assert answer.question == "Why is the album called Night Steppe?"


def test_html_answers_cite_the_section(tmp_path, make_bot):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "news.html").write_text(PAGE, encoding="utf-8")
    bot = make_bot(seeds, tmp_path / "index")
    bot.ensure_index()
    answer = bot.answer("How much are tickets for the launch concert?")
    assert not answer.refused
    assert "10,000 tenge" in answer.text
    assert answer.citations[0].location == "news.html · Launch concert"


@pytest.mark.parametrize(
    "name, page",
    [
        ("menu.html", ("<html><body><nav><a href='/'>Home</a><a href='/news'>News</a></nav>"
                       "<footer>&copy; 2025 Label. All rights reserved.</footer></body></html>")),
        ("empty.htm", ("<html><head><script>var x = 1;</script><style>p { color: red }</style></head>"
                       "<body></body></html>")),
    ],
)
def test_html_without_main_content_is_skipped_with_a_warning(tmp_path, caplog, name, page):
    (tmp_path / "bio.txt").write_text("Sezim sings.", encoding="utf-8")
    (tmp_path / name).write_text(page, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot"):
        seeds = load_seeds(tmp_path)
    assert [seed.path for seed in seeds] == ["bio.txt"]
    (skipped,) = seeds.skipped
    assert skipped.path == name and "no main content" in skipped.reason
    assert [r.getMessage() for r in caplog.records if name in r.getMessage()] == [f"Skipping {name}: {skipped.reason}."]


def test_an_html_page_saved_as_markdown_is_read_as_html(tmp_path, caplog):
    (tmp_path / "news.md").write_text(PAGE, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="bot"):
        (seed,) = load_seeds(tmp_path)
    assert any("news.md looks like an HTML page" in r.getMessage() for r in caplog.records)
    chunks = chunk_seed(seed)
    assert any(c.text.startswith("Tickets cost 10,000 tenge") for c in chunks)
    assert not any("<" in c.text or "Home" in c.text for c in chunks)
