"""BM25 over the sentences and their windows, stored in ``lexical.bin``.

The scores are bm25s's: the build lets bm25s index the chunks and stores its
precomputed (document, term) score matrices; answering adds up the columns of
a question's terms exactly as bm25s does, without bm25s's objects in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from ..chunk import Chunk
from ..query import words
from .files import StringTable, encode, map_arrays


def lexical_tokens(texts: list[str], stemmer) -> list[list[str]]:
    """BM25 terms of each text: lower-cased, English stopwords out, stemmed."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over the sentences and over their windows, memory-mapped from ``lexical.bin``.

    Both score matrices are bm25s's precomputed (document, term) scores in
    compressed columns, one column per term of a shared, sorted vocabulary;
    scoring a question adds its terms' columns exactly as bm25s does, so the
    scores are bm25s's to the bit.
    """

    FIELDS = ("text", "context")

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.num_docs = int(meta["num_docs"])
        self.terms = StringTable(arrays["terms"], arrays["term_offsets"])
        #: Plain lower-case words that occur in the seeds (see ``query.words``).
        self.words = StringTable(arrays["words"], arrays["word_offsets"])
        self._frequency = arrays["document_frequency"]
        self._matrices = {f: (arrays[f"{f}_scores"], arrays[f"{f}_docs"], arrays[f"{f}_indptr"]) for f in self.FIELDS}
        vocabulary = len(self.terms)
        if len(self._frequency) != vocabulary or any(len(m[2]) != vocabulary + 1 for m in self._matrices.values()):
            raise ValueError("lexical.bin: the BM25 matrices do not match the vocabulary")

    @classmethod
    def open(cls, path: Path) -> LexicalIndex:
        arrays, meta = map_arrays(path)
        return cls(arrays, meta)

    def term_ids(self, tokens: list[str]) -> list[int]:
        """Column of each known token, in order (repeats kept, unknown tokens left out)."""
        positions = [self.terms.position(token) for token in tokens]
        return [p for p in positions if p >= 0]

    def document_frequency(self, token: str) -> int:
        """Number of sentences that contain ``token`` (a stemmed BM25 term)."""
        position = self.terms.position(token)
        return int(self._frequency[position]) if position >= 0 else 0

    def scores(self, field: str, term_ids: list[int], weights: list[float] | None = None) -> np.ndarray:
        """BM25 score of every document for the query terms (bm25s's ``get_scores``), each term times its weight."""
        data, docs, indptr = self._matrices[field]
        scores = np.zeros(self.num_docs, dtype=np.float32)
        for i, term in enumerate(term_ids):
            start, end = int(indptr[term]), int(indptr[term + 1])
            weight = 1.0 if weights is None else weights[i]
            column = data[start:end] if weight == 1.0 else data[start:end] * np.float32(weight)
            np.add.at(scores, docs[start:end], column)
        return scores

    @classmethod
    def arrays_for(cls, chunks: Sequence[Chunk]) -> tuple[dict[str, np.ndarray], dict]:
        """Build the BM25 indexes of ``chunks`` (as bm25s does) and lay them out for ``lexical.bin``."""
        stemmer = Stemmer.Stemmer("english")
        tokens = {"text": lexical_tokens([c.text for c in chunks], stemmer),
                  "context": lexical_tokens([c.context for c in chunks], stemmer)}
        models = {}
        for name, field_tokens in tokens.items():
            model = bm25s.BM25()
            model.index(field_tokens, show_progress=False)
            models[name] = model
        vocabulary = sorted({encode(t) for model in models.values() for t in model.vocab_dict if t})
        terms = [t.decode("utf-8", "surrogatepass") for t in vocabulary]
        term_blob, term_offsets = StringTable.arrays(terms)
        arrays = {"terms": term_blob, "term_offsets": term_offsets}
        for name, model in models.items():
            scores, docs, indptr = _columns_in_order(model, terms)
            arrays.update({f"{name}_scores": scores, f"{name}_docs": docs, f"{name}_indptr": indptr})
        frequency = Counter(t for doc in tokens["text"] for t in set(doc))
        arrays["document_frequency"] = np.array([frequency.get(t, 0) for t in terms], dtype=np.int64)
        word_blob, word_offsets = StringTable.arrays(w for c in chunks for w in words(c.context))
        arrays.update({"words": word_blob, "word_offsets": word_offsets})
        return arrays, {"num_docs": len(chunks), "tokenizer": "bm25s en stopwords, english snowball stemmer"}


def _columns_in_order(model: bm25s.BM25, terms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bm25s model's score columns re-ordered to ``terms`` (an empty column for a term it lacks)."""
    data = np.asarray(model.scores["data"], dtype=np.float32)
    docs = np.asarray(model.scores["indices"], dtype=np.int32)
    indptr = np.asarray(model.scores["indptr"], dtype=np.int64)
    columns = np.array([model.vocab_dict.get(t, -1) for t in terms], dtype=np.int64)
    columns[columns >= len(indptr) - 1] = -1  # bm25s's empty token has no column
    present = columns >= 0
    starts = np.where(present, indptr[np.maximum(columns, 0)], 0)
    lengths = np.where(present, indptr[np.maximum(columns, 0) + 1] - starts, 0)
    new_indptr = np.zeros(len(terms) + 1, dtype=np.int64)
    new_indptr[1:] = np.cumsum(lengths)
    positions = np.repeat(starts - new_indptr[:-1], lengths) + np.arange(new_indptr[-1], dtype=np.int64)
    return data[positions], docs[positions], new_indptr
