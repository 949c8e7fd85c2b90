"""An answer stays short however long a seed's "word" is (issue 15, item 10).

An answer quotes at most two sentences of the seeds (:func:`bot.answer.compose`),
and the chunker cuts any piece over :data:`~bot.chunk.MAX_SENTENCE_CHARS`
characters, even a run with no space in it (a pasted URL list, a corrupt
file), so no answer is longer than two such pieces and a space. Checked end
to end: the real bot over a seed holding one 200,000-character "word" inside
a sentence, which answers the question, asked through ``Bot.answer`` and the
API's dict. (The same word alone in its paragraph is never quoted at all: a
lone word without a full stop is a label to the chunker.)
"""

from __future__ import annotations

from bot.chunk import MAX_SENTENCE_CHARS

from conftest import assert_quoted_verbatim, built_bot

#: The longest answer text there can be: two whole pieces and the space between them.
MAX_ANSWER_CHARS = 2 * MAX_SENTENCE_CHARS + 1
#: One "word" of 200,000 characters, no spaces, that says who taught Sezim the dombra.
PHRASE = "Sezim-learned-to-play-the-dombra-from-her-grandfather-Bolat-"
WORD = (PHRASE * (200_000 // len(PHRASE) + 1))[:200_000]


def test_a_200000_character_word_cannot_make_a_long_answer(tmp_path, embedder):
    assert " " not in WORD and len(WORD) == 200_000
    bot = built_bot(
        tmp_path,
        embedder,
        files={
            "lessons.txt": f"Sezim's first teacher was {WORD} and she loved it.\n",
            "bio.txt": "Sezim is a singer from Almaty. She sings jazz in Kazakh and English.\n",
        },
    )
    answer = bot.answer("Who did Sezim learn to play the dombra from?", [])
    assert answer.kind == "answer", answer  # the long word answers it: quoted, not refused
    assert any("dombra-from-her-grandfather" in passage.text for passage in answer.citations), answer
    assert 0 < len(answer.text) <= MAX_ANSWER_CHARS, len(answer.text)
    window = bot.config.window * (MAX_SENTENCE_CHARS + 1)  # the sentences around a quote, as context
    for passage in answer.citations:
        assert len(passage.text) <= MAX_SENTENCE_CHARS
        assert len(passage.before) <= window and len(passage.after) <= window
        assert passage.end - passage.start <= MAX_SENTENCE_CHARS  # the citation names the piece, not the word
        assert_quoted_verbatim(tmp_path / "seeds", passage)
    reply = answer.to_dict()  # what /ask returns
    assert len(reply["text"]) <= MAX_ANSWER_CHARS
    assert sum(len(c["text"]) + len(c["before"]) + len(c["after"]) for c in reply["citations"]) <= 2 * (
        MAX_SENTENCE_CHARS + 2 * window
    )
