"""Text from outside the program (file names above all) made safe to print on a terminal or in a log.

A seed file may be named anything a file system allows: an escape sequence
(``ESC ] 0 ; ... BEL`` retitles the terminal, others move the cursor or
recolour it), a newline that starts a fake line in a citation or a log, a
right-to-left override that shows a name backwards. :func:`printable` writes
each such character as its Python escape (``\\x1b``, ``\\n``, ``\\u202e``),
so the name is still recognisable and nothing reaches the terminal raw.
"""

from __future__ import annotations

import logging
import os
import re

#: C0 and C1 controls, DEL, and the invisible characters that reorder or split text.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control or bidirectional-override character written as its escape.

    ``keep``: characters left as they are (``"\n"`` for a text of several lines).
    """
    def escaped(match: re.Match) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _UNPRINTABLE.sub(escaped, text)


class PrintableLogArguments(logging.Filter):
    """A log handler's filter: the values put into a log line (names, paths, errors) made printable.

    Only the values are changed, not the line's own text, nor a traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                printable(str(value)) if isinstance(value, (str, os.PathLike, BaseException)) else value
                for value in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {key: printable(value) if isinstance(value, str) else value
                           for key, value in record.args.items()}
        return True
