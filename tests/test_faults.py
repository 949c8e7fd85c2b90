"""Faults while serving: an index folder that cannot be written, seeds that change during a
rebuild, and hostile seed folders (huge files, empty files, links out of ``seeds/``).

Real model, real FAISS, real files. (Killed builds are in ``test_index_build.py``, damaged
index files in ``test_index_load.py``; binary, undecodable and oversized seeds in ``test_ingest.py``.)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import Bot, Config
from bot.index import current_generation, load_index, settings_of, stale_files
from bot.ingest import load_seeds
from bot.serve.watch import IndexStatus, SeedWatcher, index_write_problem, status_html

from conftest import DOMBRA, SEEDS, SEZIM_FILE, assert_quoted_verbatim, bot_command, bot_env, copy_seeds, free_port

CAT = "What is the name of Sezim's cat?"


def wait_for(condition, timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextlib.contextmanager
def unwritable(folder: Path):
    """Make ``folder`` refuse new entries, for real: mode 555, or as root (who ignores modes) chattr +i."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)

        def undo():
            os.chmod(folder, 0o755)
    else:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a folder read-only as root here (chattr +i: {done.stderr.decode().strip()})")

        def undo():
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    try:
        try:
            (folder / ".probe").mkdir()
        except OSError:
            pass
        else:
            (folder / ".probe").rmdir()
            pytest.skip(f"{folder} stays writable here")
        yield
    finally:
        undo()


def manifest_matches_disk(chat_bot: Bot) -> bool:
    """The live index was built from exactly the seed files on disk now."""
    index = load_index(chat_bot.config.index_dir, settings_of(chat_bot.config))
    return not stale_files(index, load_seeds(chat_bot.config.seeds_dir))


# -- index/ cannot be written -------------------------------------------------------------


def test_unwritable_index_keeps_answering_says_why_and_recovers_by_itself(seeds_dir, index_dir, make_bot, caplog):
    chat_bot = make_bot(seeds_dir, index_dir)
    chat_bot.ensure_index()
    live = current_generation(index_dir)
    status = IndexStatus()
    watcher = SeedWatcher(chat_bot, status, debounce_ms=400, quiet_ms=100, retry_seconds=1.0)
    with caplog.at_level(logging.INFO, logger="bot"):
        with unwritable(index_dir):
            watcher.start()
            try:
                time.sleep(0.5)
                (seeds_dir / "pets.txt").write_text(
                    "Sezim has a cat named Kumis, who sleeps on her dombra case on every tour.\n", encoding="utf-8"
                )
                wait_for(lambda: status.error is not None, what="the failed update")
                time.sleep(3.0)  # a few retries, still failing
                # Why, on the page and in the log (once, not at every retry).
                assert status.error == f"the index folder {index_dir} is not writable (Operation not permitted)" \
                    or status.error == f"the index folder {index_dir} is not writable (Permission denied)"
                page = status_html(chat_bot, status)
                assert "Last update failed: the index folder" in page and "is not writable" in page
                assert "answering from the previous documents" in page
                said = [r.getMessage() for r in caplog.records if "Cannot update the index" in r.getMessage()]
                assert len(said) == 1 and "is not writable" in said[0], said
                # Fans still get answers, from the index it has.
                reply = chat_bot.answer(DOMBRA)
                assert not reply.refused and "grandmother" in reply.text
                assert chat_bot.answer(CAT).refused
                assert current_generation(index_dir) == live
            except BaseException:
                watcher.stop()
                raise
        # Writable again: the watcher's retry brings the index up to date, with no further change.
        try:
            wait_for(lambda: status.error is None and not chat_bot.answer(CAT).refused, timeout=60,
                     what="the retry after the folder became writable")
        finally:
            watcher.stop()
    assert "Kumis" in chat_bot.answer(CAT).text
    assert "✓ Index updated at" in status_html(chat_bot, status)
    assert manifest_matches_disk(chat_bot)


def test_index_write_problem_names_the_folder(tmp_path):
    assert index_write_problem(tmp_path / "index") is None
    with unwritable(tmp_path / "index"):
        problem = index_write_problem(tmp_path / "index")
    assert problem and str(tmp_path / "index") in problem and "not writable" in problem
    assert list((tmp_path / "index").iterdir()) == []  # the check leaves nothing behind


def test_bot_serve_starts_on_a_stale_unwritable_index_and_says_why(tmp_path, make_bot):
    gradio_client = pytest.importorskip("gradio_client")
    httpx = pytest.importorskip("httpx")
    seeds, index = copy_seeds(SEEDS, tmp_path / "seeds"), tmp_path / "index"
    make_bot(seeds, index).ensure_index()
    pets = seeds / "pets.txt"
    pets.write_text("Sezim has a cat named Kumis, who sleeps on her dombra case on every tour.\n", encoding="utf-8")
    port, log_path = free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/"
    with unwritable(index):
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [*bot_command(), "serve", "--seeds", str(seeds), "--index", str(index), "--port", str(port)],
                cwd=tmp_path, env=bot_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    config = httpx.get(url + "config", timeout=2)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.3)
            # The page's status line says why the new document is not in.
            assert "Last update failed: the index folder" in config.text and "is not writable" in config.text
            client = gradio_client.Client(url, verbose=False)
            assert "grandmother" in client.predict(question=DOMBRA, api_name="/ask")["text"]
            assert client.predict(question=CAT, api_name="/ask")["refused"] is True
        except BaseException:
            process.send_signal(signal.SIGTERM)
            process.wait(15)
            raise
    try:
        # Writable again: the next change to the seeds is indexed.
        pets.write_text("Sezim has a cat named Kumis, who sleeps on her dombra case on every tour!\n", encoding="utf-8")
        deadline = time.monotonic() + 60
        while client.predict(question=CAT, api_name="/ask")["refused"]:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    log = log_path.read_text()
    assert f"Cannot update the index: the index folder {index} is not writable" in log
    assert "Now answering from the updated index" in log
    assert "Traceback" not in log


# -- seeds that change while the index is being rebuilt ----------------------------------------------


class DuringBuild:
    """The real embedder, which runs ``action`` once, in the middle of the next build (not for a question)."""

    def __init__(self, inner):
        self.inner = inner
        self.action = None
        self.ran = 0

    def encode_documents(self, texts, *args, **kwargs):
        if self.action is not None and len(texts) > 1:
            action, self.action = self.action, None
            action()
            self.ran += 1
        return self.inner.encode_documents(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


FACTS = {
    "cat.txt": ("Sezim has a cat named Kumis, who sleeps on her dombra case.\n", CAT),
    "colour.txt": ("Sezim's favourite colour is teal, the colour of Lake Issyk-Kul.\n",
                   "What is Sezim's favourite colour?"),
    "guitar.txt": ("Sezim's first guitar was a red Yamaha bought in Bishkek.\n",
                   "What was Sezim's first guitar?"),
}
FOOD = ("Sezim's favourite food is beshbarmak, cooked by her grandmother.\n", "What is Sezim's favourite food?")


def mutate(seeds: Path) -> None:
    """Edit one seed, rename another, delete a third and add a fourth."""
    (seeds / "cat.txt").write_text("Sezim has a cat named Aport, who sleeps on her dombra case.\n", encoding="utf-8")
    (seeds / "colour.txt").rename(seeds / "favourites.txt")
    (seeds / "guitar.txt").unlink()
    (seeds / "food.txt").write_text(FOOD[0], encoding="utf-8")


def assert_converged(chat_bot: Bot) -> None:
    """The index holds what is on disk now, and answers from it."""
    seeds = chat_bot.config.seeds_dir
    index = load_index(chat_bot.config.index_dir, settings_of(chat_bot.config))
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in seeds.iterdir() if p.suffix == ".txt"}
    assert {name: entry["sha256"] for name, entry in index.manifest["files"].items()} == on_disk
    assert {c.source for c in index.chunks} == set(on_disk)
    cat = chat_bot.answer(CAT)
    assert "Aport" in cat.text and "Kumis" not in cat.text
    assert [c.source for c in cat.citations] == ["cat.txt"]
    colour = chat_bot.answer(FACTS["colour.txt"][1])
    assert "teal" in colour.text and {c.source for c in colour.citations} == {"favourites.txt"}
    guitar = chat_bot.answer(FACTS["guitar.txt"][1])  # its file is gone
    assert "Yamaha" not in guitar.text and all(c.source != "guitar.txt" for c in guitar.citations)
    food = chat_bot.answer(FOOD[1])
    assert "beshbarmak" in food.text and [c.source for c in food.citations] == ["food.txt"]
    for reply in (cat, colour, food):
        for passage in reply.citations:
            assert_quoted_verbatim(seeds, passage)


@pytest.fixture
def changing(tmp_path, embedder):
    """A bot over the shipped seeds plus three small ones, indexed, whose embedder can act mid-build."""
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    for name, (text, _) in FACTS.items():
        (seeds / name).write_text(text, encoding="utf-8")
    during = DuringBuild(embedder)
    chat_bot = Bot(Config(seeds_dir=seeds, index_dir=tmp_path / "index"), embedder=during)
    chat_bot.ensure_index()
    assert "Kumis" in chat_bot.answer(CAT).text
    return chat_bot, during


def test_seeds_changed_during_a_rebuild_converge_at_the_next_update(changing):
    chat_bot, during = changing
    seeds = chat_bot.config.seeds_dir
    (seeds / "tour.txt").write_text("Sezim's next tour starts in Almaty in the spring.\n", encoding="utf-8")
    during.action = lambda: mutate(seeds)
    first = chat_bot.update()
    assert during.ran == 1 and first.added == ["tour.txt"]
    # That build saw the folder before the changes; the index says so, and still works.
    assert not manifest_matches_disk(chat_bot)
    assert not chat_bot.answer(DOMBRA).refused
    second = chat_bot.update()
    assert second.changed == ["cat.txt"]
    assert sorted(second.added) == ["favourites.txt", "food.txt"]
    assert sorted(second.removed) == ["colour.txt", "guitar.txt"]
    assert_converged(chat_bot)
    assert not chat_bot.update().changed_anything  # and stays put


def test_the_watcher_converges_after_changes_during_its_own_update(changing):
    chat_bot, during = changing
    seeds = chat_bot.config.seeds_dir
    status = IndexStatus()
    watcher = SeedWatcher(chat_bot, status, debounce_ms=400, quiet_ms=100).start()
    try:
        time.sleep(0.5)
        during.action = lambda: mutate(seeds)
        (seeds / "tour.txt").write_text("Sezim's next tour starts in Almaty in the spring.\n", encoding="utf-8")
        # Nothing else touches the folder: the watcher must notice what changed during its update.
        wait_for(lambda: during.ran == 1 and manifest_matches_disk(chat_bot), timeout=60, what="convergence")
        wait_for(lambda: "Aport" in chat_bot.answer(CAT).text, timeout=10, what="the new index in use")
    finally:
        watcher.stop()
    assert status.error is None
    assert_converged(chat_bot)


# -- hostile seed folders ------------------------------------------------------------------------------

_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)


@contextlib.contextmanager
def files_opened():
    """Every file this process opens meanwhile (Python's audit hook for open), by real path."""
    global _OPENED
    _OPENED = opened = []
    try:
        yield opened
    finally:
        _OPENED = None


def test_nothing_outside_the_seeds_folder_is_ever_opened(tmp_path, make_bot, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Sezim's bank password is hunter2.\n", encoding="utf-8")
    (outside / "notes.md").write_text("Sezim's home address is 12 Secret Lane.\n", encoding="utf-8")
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    (seeds / "press").mkdir()
    (seeds / "link.txt").symlink_to(outside / "secret.txt")
    (seeds / "relative.txt").symlink_to(Path("..") / "outside" / "secret.txt")
    (seeds / "press" / "deep.md").symlink_to(Path("..") / ".." / "outside" / "notes.md")
    (seeds / "elsewhere").symlink_to(outside, target_is_directory=True)
    (seeds / "loop").symlink_to(seeds, target_is_directory=True)  # a folder that contains itself
    (seeds / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    chat_bot = make_bot(seeds, tmp_path / "index")
    with caplog.at_level(logging.WARNING, logger="bot"), files_opened() as opened:
        chat_bot.ensure_index()
        replies = [chat_bot.answer(q) for q in ("What is Sezim's bank password?", "Where does Sezim live?", DOMBRA)]
        chat_bot.update()
    outside_real = os.path.realpath(outside)
    read_outside = [path for path in opened if path == outside_real or path.startswith(outside_real + os.sep)]
    assert read_outside == []
    assert any(os.path.realpath(seeds / SEZIM_FILE) == path for path in opened)  # the hook does see seed reads
    sources = {c.source for c in chat_bot.loaded_index.chunks}
    assert sources == {SEZIM_FILE}
    assert not any("hunter2" in r.text or "Secret Lane" in r.text for r in replies)
    assert not replies[2].refused
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for name in ("link.txt", "relative.txt", "deep.md"):
        assert name in warned, warned


def test_a_50mb_seed_is_skipped_unread_with_a_warning_and_the_rest_is_served(tmp_path, make_bot, caplog):
    seeds = copy_seeds(SEEDS, tmp_path / "seeds")
    huge = seeds / "fan-forum-dump.txt"
    line = "Sezim's fans wrote about her songs again and again on the forum. " * 15 + "\n\n"
    with huge.open("w", encoding="utf-8") as handle:
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            handle.write(line)
    assert huge.stat().st_size >= 50 * 1024 * 1024
    chat_bot = make_bot(seeds, tmp_path / "index", max_seed_bytes=16 * 1024 * 1024)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="bot"), files_opened() as opened:
        report = chat_bot.update()
        reply = chat_bot.answer(DOMBRA)
    assert time.perf_counter() - started < 60
    assert os.path.realpath(huge) not in opened  # the size alone decides: not a byte is read
    assert report.added == [SEZIM_FILE]
    assert not reply.refused and "grandmother" in reply.text
    warning = [r.getMessage() for r in caplog.records if "fan-forum-dump.txt" in r.getMessage()]
    assert warning and "over the" in warning[0]


def test_empty_and_blank_seeds_beside_real_ones_are_harmless(seeds_dir, index_dir, make_bot):
    (seeds_dir / "empty.txt").write_bytes(b"")
    (seeds_dir / "blank.md").write_text("\n\n   \n\t\n", encoding="utf-8")
    (seeds_dir / "only-markup.md").write_text("<div></div>\n\n```\ncode\n```\n", encoding="utf-8")
    chat_bot = make_bot(seeds_dir, index_dir)
    chat_bot.ensure_index()
    assert {c.source for c in chat_bot.loaded_index.chunks} == {SEZIM_FILE}
    reply = chat_bot.answer(DOMBRA)
    assert not reply.refused and {c.source for c in reply.citations} == {SEZIM_FILE}
    # Editing the empty file into a real one is picked up like any other change.
    (seeds_dir / "empty.txt").write_text("Sezim has a cat named Kumis.\n", encoding="utf-8")
    assert chat_bot.update().changed == ["empty.txt"]
    assert "Kumis" in chat_bot.answer(CAT).text
