"""What fans asked: the server's question log and the team's report on it.

- :mod:`.store`: the log itself (SQLite in WAL mode, written by one
  background thread), and reading it back;
- :mod:`.report`: ``bot report``: the answer rate, refused questions grouped
  by meaning with the closest passage, disliked answers; text, JSON, CSV, HTML.

No Gradio here: the server's handlers call :class:`~.store.QuestionLog`.
"""

from .store import DEFAULT_KEEP_DAYS, QuestionLog, default_log_path, read_rows

__all__ = ["DEFAULT_KEEP_DAYS", "QuestionLog", "default_log_path", "read_rows"]
