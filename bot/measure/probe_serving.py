"""Load a bot over an index in a fresh process, answer questions, and print
its timings and memory as one ``bench-probe {json}`` line (for ``bot bench``).

    python -m bot.measure.probe_serving SEEDS INDEX MODEL QUESTIONS_JSON SPAWNED

SPAWNED is ``time.time()`` of the parent when it started this process:
``-m`` imports the ``bot`` package before this module runs, so the clock of
the load figures starts in the parent, imports included. VmHWM is the peak
RSS; RssFile the part that is file-backed (memory-mapped index files and
libraries, shareable).
"""

from __future__ import annotations

import json
import sys
import time

from .server import memory_kib

#: The stdout line that carries the figures, followed by JSON.
MARK = "bench-probe"


def _resident_index_files(generation: str) -> dict[str, int]:
    """KiB resident of each memory-mapped file of the index generation, from /proc/self/smaps."""
    files: dict[str, int] = {}
    name = None
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            head = line.split()
            if len(head) >= 6 and "-" in head[0] and not line.startswith(("Rss", "Pss")):
                name = head[5].rsplit("/", 1)[-1] if head[5].startswith(generation) else None
            elif name and line.startswith("Rss:"):
                files[name] = files.get(name, 0) + int(head[1])
    return files


def main(seeds: str, index: str, model: str, questions: list[str], spawned: float) -> dict:
    from .. import Bot, Config

    bot = Bot(Config(seeds_dir=seeds, index_dir=index, model=model))
    report = bot.ensure_index()
    loaded = time.time()
    bot.answer(questions[0])
    first = time.time()
    for question in questions:
        bot.answer(question)
    memory = {name: kib for name, kib in memory_kib().items() if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}
    return {"load_s": loaded - spawned, "first_answer_s": first - spawned, "rebuilt": report is not None,
            "chunks": len(bot.retriever.index), "mapped": bot.retriever.index.mapped,
            "index_files_kib": _resident_index_files(str(bot.retriever.index.path)), **memory}


if __name__ == "__main__":
    figures = main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), float(sys.argv[5]))
    print(f"{MARK} {json.dumps(figures)}")
