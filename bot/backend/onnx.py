"""The model exported to ONNX, run by ONNX Runtime and tokenised by the tokenizers library.

Embedding this way needs only onnxruntime, tokenizers and numpy: answering a
question never imports torch or sentence-transformers, which take seconds to
import. Texts are run in batches of similar length, small enough to stay in
the CPU's caches. The export itself is :mod:`bot.backend.onnx_export`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Most tokens (texts x padded length) in one ONNX Runtime batch: small
#: batches of similar length waste little on padding and stay in cache.
MAX_BATCH_TOKENS = 512
#: The two graphs an export holds: exact, and int8-quantised (optional).
EXACT = "model.onnx"
QUANTISED = "model-int8.onnx"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` with each row scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# -- the encoder -----------------------------------------------------------------


class OnnxEncoder:
    """One exported model file run by ONNX Runtime, tokenised by the tokenizers library."""

    def __init__(self, folder: Path, variant: str = EXACT, meta: dict | None = None):
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = folder
        self.variant = variant
        self.meta = meta or json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Threads that spin between batches burn a core that, on a small shared
        # machine, another process (or our own tokenizer) needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / variant), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # sentence-transformers truncates at the model's max_seq_length and pads to
        # the longest text of each batch; we pad ourselves, batch by batch.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.meta["max_length"]))
        self.dimension = int(self.meta["dimension"])

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, max_tokens: int = MAX_BATCH_TOKENS
    ) -> np.ndarray:
        """Embed ``texts``; rows are unit length when the model normalises.

        Texts are sorted by length and run in batches of at most
        ``batch_size`` texts and ``max_tokens`` tokens with padding.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        encodings = self.tokenizer.encode_batch([str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        batches = _batches(lengths, batch_size, max_tokens)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch")
        for rows in batches:
            feeds, mask = self._feeds([encodings[row] for row in rows], int(lengths[rows].max()))
            tokens = self.session.run(None, {name: feeds[name] for name in self.meta["inputs"]})[0]
            out[rows] = self._pool(tokens, mask)
        return out

    def _feeds(self, encodings: list, width: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The padded model inputs of one batch, and its attention mask."""
        ids = np.full((len(encodings), width), self.meta["pad_id"], dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for i, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[i, :n] = encoding.ids
            mask[i, :n] = 1
            types[i, :n] = encoding.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, mask

    def _pool(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pool token vectors as sentence-transformers' Pooling (+ Normalize) does."""
        weights = mask[:, :, None].astype(np.float32)
        mode = self.meta["pooling"]
        if mode == "cls":
            pooled = tokens[:, 0]
        elif mode == "max":
            pooled = np.where(weights > 0, tokens, -1e9).max(axis=1)
        else:
            summed = (tokens * weights).sum(axis=1)
            counts = np.maximum(weights.sum(axis=1), 1e-9)
            pooled = summed / (np.sqrt(counts) if mode == "mean_sqrt_len" else counts)
        if self.meta["normalize"]:
            pooled = unit_rows(pooled)
        return pooled.astype(np.float32, copy=False)


def _batches(lengths: np.ndarray, batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Rows grouped longest first, each group within ``batch_size`` texts and ``max_tokens`` padded tokens."""
    order = np.argsort(-lengths, kind="stable")  # similar lengths together: little padding
    batches, first = [], 0
    while first < len(order):
        width = int(lengths[order[first]])  # the longest of the batch: sorted, it comes first
        size = max(1, min(int(batch_size), int(max_tokens) // max(width, 1)))
        batches.append(order[first : first + size])
        first += size
    return batches
