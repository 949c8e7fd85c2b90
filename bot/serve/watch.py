"""The index while serving: the seed watcher, and what the page says about the index.

:class:`SeedWatcher` watches the seeds folder and brings the index up to date
in a background thread; :meth:`~bot.core.Bot.update` swaps the new index in
with one assignment, so questions keep being answered throughout. What
happened last is kept in an :class:`IndexStatus`, which the page shows
through :func:`status_html`.
"""

import errno
import html
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from ..config import Config
from ..core import Bot
from ..index import IndexUnavailable, current_generation, load_index, settings_of, stale_files
from ..ingest import SEED_SUFFIXES, NoSeedsError, seeds_of
from ..persona import load_persona

log = logging.getLogger(__name__)

#: After a failed update, how often the watcher tries again (the folder may
#: have been made writable, or the disk freed).
RETRY_SECONDS = 30.0
#: How often the watcher checks whether another process (a second ``bot serve``
#: on the same index, ``bot build``) swapped in a new generation of the index.
FOLLOW_SECONDS = 2.0


@dataclass
class IndexStatus:
    """What the page says about the index; ``version`` goes up at each live update."""

    version: int = 0
    updated_at: float | None = None
    summary: str = ""
    error: str | None = None
    #: An update is running (this process's, or one it waits for): a page loaded meanwhile says so.
    #: (It does not move ``version``: an open page learns of the update when it is done.)
    updating: bool = False

    def update_running(self, running: bool) -> None:
        self.updating = running

    def updated(self, summary: str) -> None:
        self.summary, self.error, self.updated_at = summary, None, time.time()
        self.version += 1

    def failed(self, error: str) -> None:
        """The index could not be updated; ``error`` says why, in a few words."""
        if error != self.error:
            self.error = error
            self.version += 1


def update_problem(error: BaseException, config: Config) -> str:
    """Why an update failed, in a few words a site owner can act on."""
    if isinstance(error, OSError) and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the index folder {config.index_dir} is not writable ({error.strerror})"
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left to write the index in {config.index_dir}"
    if isinstance(error, NoSeedsError):
        return str(error).split(". ")[0].rstrip(".")
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def index_write_problem(index_dir: Path, needed_bytes: int = 0) -> str | None:
    """Why a new index generation (of about ``needed_bytes``) could not be written to ``index_dir`` now, or None."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        # A build writes a generation folder; try exactly that.
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=index_dir))
        free = shutil.disk_usage(index_dir).free
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"no space left to write the index in {index_dir}"
        return f"the index folder {index_dir} is not writable ({error.strerror or error})"
    if free < needed_bytes:
        return (f"no space left to write the index in {index_dir} "
                f"({free / 2**20:.1f} MiB free; the index takes {needed_bytes / 2**20:.1f} MiB)")
    return None


def generation_bytes(generation: Path) -> int:
    """What the files of an index generation take on disk."""
    try:
        return sum(path.stat().st_size for path in generation.iterdir() if path.is_file())
    except OSError:
        return 0


def status_html(bot: Bot, status: IndexStatus) -> str:
    """One line on the index the bot answers from, and its latest live update."""
    index = bot.loaded_index
    if index is None:
        return '<div class="index-status"><span class="dot dot-wait"></span>Loading the documents…</div>'
    files = len(index.manifest.get("files", {}))
    line = (
        f'<span class="dot"></span>Answering from {len(index)} passages in '
        f"{files} document{'s' if files != 1 else ''}"
    )
    if status.updating:
        line += '<span class="status-note status-updating">Updating the index… answering from the current one</span>'
    elif status.error:
        line += (
            '<span class="status-note status-error">Last update failed: '
            f"{html.escape(status.error)}; answering from the previous documents</span>"
        )
    elif status.updated_at is not None:
        clock = time.strftime("%H:%M:%S", time.localtime(status.updated_at))
        line += f'<span class="status-note status-updated">✓ Index updated at {clock}</span>'
    return f'<div class="index-status" title="{html.escape(status.summary or status.error or "")}">{line}</div>'


class SeedWatcher:
    """Watches the seeds folder and updates the bot's index when it changes.

    Changes are collected until the folder has been quiet for ``quiet_ms``
    (at most ``debounce_ms``), then one incremental update runs. The bot keeps
    answering from the old index until the new one is swapped in.

    Several servers may share one index folder: the one that takes the build
    lock first builds, and every other finds the index current. So every
    ``follow_seconds`` (and after each update) the watcher also checks which
    generation ``index/CURRENT`` names, and loads it when it is not the one
    answering (:meth:`follow_current`).
    """

    def __init__(
        self,
        bot: Bot,
        status: IndexStatus,
        debounce_ms: int = 1600,
        quiet_ms: int = 300,
        retry_seconds: float = RETRY_SECONDS,
        follow_seconds: float = FOLLOW_SECONDS,
    ):
        self.bot = bot
        self.status = status
        self.debounce_ms = debounce_ms
        self.quiet_ms = quiet_ms
        #: While the last update failed, try again this often even with no change.
        self.retry_seconds = retry_seconds
        self.follow_seconds = follow_seconds
        self._failed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, update_first: bool = False) -> "SeedWatcher":
        """Watch in a background thread; ``update_first``: bring the index up to date there first
        (``bot serve`` answers from the index it has meanwhile)."""
        self._update_first = update_first
        self._thread = threading.Thread(target=self._run, name="seed-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _relevant(self, change: watchfiles.Change, path: str) -> bool:
        seeds = self.bot.config.seeds_dir.resolve()
        index = self.bot.config.index_dir.resolve()
        target = Path(path)
        if target.is_relative_to(index):
            return False
        try:
            relative = target.relative_to(seeds)
        except ValueError:
            return False
        if any(part.startswith(".") for part in relative.parts):
            return False
        # Seed files, the persona, and folders (a renamed folder is one event).
        return target.suffix.lower() in SEED_SUFFIXES or target.name == "persona.toml" or not target.suffix

    def _run(self) -> None:
        # Watch the real path, so the paths reported lie under the one the filter knows.
        seeds = self.bot.config.seeds_dir.resolve()
        log.info("Watching %s for changes.", seeds)
        if getattr(self, "_update_first", False):
            self._update()
        missing = False
        while not self._stop.is_set():
            try:
                if missing and seeds.is_dir():
                    missing = False
                    log.info("The seeds folder %s is back.", seeds)
                    self.apply({(watchfiles.Change.modified, str(seeds))})
                for changes in watchfiles.watch(
                    seeds,
                    watch_filter=self._relevant,
                    debounce=self.debounce_ms,
                    step=self.quiet_ms,
                    stop_event=self._stop,
                    raise_interrupt=False,
                    rust_timeout=max(100, int(min(self.retry_seconds, self.follow_seconds) * 1000)),
                    yield_on_timeout=True,
                ):
                    if changes:
                        self.apply(changes)
                    elif self._failed_at is not None and time.monotonic() - self._failed_at >= self.retry_seconds:
                        self.retry()
                    self.follow_current()
            except FileNotFoundError:
                if not missing:
                    log.warning("The seeds folder %s is gone; still answering from the last index.", seeds)
                missing = True
                self._stop.wait(3.0)
            except Exception:  # the watcher must outlive any one failure
                log.exception("Watching %s failed; retrying in a few seconds.", seeds)
                self._stop.wait(3.0)

    def apply(self, changes: set[tuple[watchfiles.Change, str]]) -> None:
        """Bring the index (and persona) up to date after ``changes``."""
        seeds = self.bot.config.seeds_dir.resolve()
        names = sorted({str(Path(p).relative_to(seeds)) if Path(p).is_relative_to(seeds) else p for _, p in changes})
        names = [name for name in names if name != "."] or [str(seeds)]
        log.info("Seeds changed (%s); updating the index.", ", ".join(names))
        if any(Path(p).name == "persona.toml" for _, p in changes):
            self.bot.persona = load_persona(self.bot.config.persona_path, previous=self.bot.persona)
            log.info("Reloaded the persona.")
        self._update()

    def follow_current(self) -> bool:
        """Answer from the generation ``index/CURRENT`` names, when another process swapped it in.

        True when a new generation was loaded. A generation that cannot be
        loaded (being removed, damaged) is left for the next check.
        """
        index = self.bot.loaded_index
        live = current_generation(self.bot.config.index_dir)
        if index is None or live is None or live.resolve() == index.path.resolve():
            return False
        try:
            fresh = load_index(self.bot.config.index_dir, settings_of(self.bot.config))
        except IndexUnavailable as problem:
            log.debug("Not following the index to %s: %s.", live.name, problem.reason)
            return False
        if fresh.path.resolve() == index.path.resolve():
            return False
        self.bot.use_index(fresh)
        log.info("Another process updated the index; now answering from it (%d passages).", len(fresh))
        self._failed_at = None
        self.status.updated(f"{len(fresh)} passages (updated by another process)")
        return True

    def retry(self) -> None:
        """Try the update that failed last time again (nothing may have changed but the cause)."""
        log.debug("Trying again to update the index.")
        self._update()

    def failed(self, problem: str) -> None:
        """Record that the index cannot be updated, say why, and retry from time to time."""
        if problem != self.status.error:
            log.warning("Cannot update the index: %s. Still answering from the previous one.", problem)
        self.status.failed(problem)
        self._failed_at = time.monotonic()

    def _update(self) -> None:
        self.status.update_running(True)
        try:
            # A full disk that failed these same seeds is not re-embedded every retry, only once room is made.
            report = self.bot.update(retry_failed=False)
        except Exception as error:  # keep serving from the old index
            log.debug("The update failed.", exc_info=True)
            self.failed(update_problem(error, self.bot.config))
            return
        finally:
            self.status.update_running(False)
        self._failed_at = None
        if report.changed_anything:
            log.info("Now answering from the updated index (%d passages).", report.chunks)
            self.status.updated(report.summary())
        elif self.status.error:
            self.status.updated(report.summary())


def check_index_is_current(bot: Bot, watcher: SeedWatcher) -> None:
    """After start-up: when the index is behind the seeds and cannot be rewritten, say so (log and page)."""
    index = bot.loaded_index
    try:
        behind = index is not None and stale_files(index, seeds_of(bot.config))
    except NoSeedsError as error:
        watcher.failed(update_problem(error, bot.config))
        return
    if behind:
        needed = generation_bytes(index.path)
        problem = index_write_problem(bot.config.index_dir, needed) or "the index could not be updated (see the log)"
        watcher.failed(problem)
