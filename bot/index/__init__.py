"""Build, update and load the index in ``index/``.

Layout of the index folder::

    index/
      CURRENT               name of the live generation (replaced atomically)
      gen-.../              one complete, immutable build
        manifest.json       model, dimension, chunking, index type, seed hashes, checksums
        chunks.jsonl        one sentence chunk a line, grouped by seed file
        chunks.offsets.npy  byte offset of each line of chunks.jsonl (and the file's end)
        vectors.npy         unit vectors of each sentence, one row per chunk
        context.npy         unit vectors of each sentence with its window
        spread-sample.npy   both vectors of the sampled rows, float32 (see SPREAD_SAMPLE)
        index.faiss         FAISS inner-product index over the sentence vectors
        lexical.bin         the BM25 indexes of sentences and windows, their vocabulary,
                            document frequencies, and the plain words of the seeds
      .lock                 held while a build runs
      .failed-build.json    the last build that ran out of disk space, for which seeds (see :mod:`.failed`)

The modules, each with one reason to change:

- :mod:`.files`: the formats of the files (string tables, array containers,
  vector rows, chunks) and when a file counts as big;
- :mod:`.lexical`: BM25 (``lexical.bin``);
- :mod:`.manifest`: what ``manifest.json`` records (settings, index type,
  checksums) and the checks against it;
- :mod:`.load`: the only reader, :func:`load_index`;
- :mod:`.build`: the only writer, :func:`update_index`;
- :mod:`.stream`: how a build writes a generation a block of chunks at a time;
- :mod:`.failed`: the record of a build that ran out of disk space.
"""

from .build import (
    BuildInProgress,
    BuildReport,
    build_lock,
    faiss_index_for,
    update_index,
    write_generation,
)
from .files import ChunkStore, RowFile, StringTable
from .lexical import LexicalIndex, lexical_tokens
from .load import IndexUnavailable, LoadedIndex, load_index, stale_files
from .manifest import (
    APPROXIMATE_INDEX,
    ARTIFACTS,
    EXACT_INDEX,
    FORMAT_VERSION,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    SPREAD_SAMPLE,
    current_generation,
    index_type_for,
    sampled_sha256,
    settings_of,
    spread_sample_rows,
)

__all__ = [
    "APPROXIMATE_INDEX", "ARTIFACTS", "EXACT_INDEX", "FORMAT_VERSION", "HNSW_EF_CONSTRUCTION", "HNSW_M",
    "SPREAD_SAMPLE",
    "BuildInProgress", "BuildReport", "ChunkStore", "IndexUnavailable", "LexicalIndex", "LoadedIndex", "RowFile",
    "StringTable",
    "build_lock", "current_generation", "faiss_index_for", "index_type_for", "lexical_tokens", "load_index",
    "sampled_sha256", "settings_of", "spread_sample_rows", "stale_files", "update_index", "write_generation",
]
