"""The progress report of the long commands (verify, bench) on stderr.

On a terminal it is one line, rewritten in place and cleared at the end, so that the table
that follows stands alone.  Anywhere else (a pipe, a file, a CI log) it is one plain line per
finished step, flushed as it is written, so that a log shows how far a run got and how long
each step took.  Stdout is never touched: a --json table there stays pure JSON.
"""
from __future__ import annotations

import sys
import threading


class Progress:
    """``NAME I/TOTAL TEXT`` lines on stderr (stderr as it is when the report is made)."""

    def __init__(self, name: str, total: int, stream=None):
        self.name = name
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.count = 0
        self.width = 0
        self._lock = threading.Lock()  # bench reports rows from several threads

    def _rewrite(self, line: str) -> None:
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def running(self, text: str) -> None:
        """What the next step is doing: shown on a terminal only (a log gets the step's
        line when it is finished)."""
        with self._lock:
            if self.tty:
                self._rewrite(f"{self.name} {self.count + 1}/{self.total} {text}")

    def finished(self, text: str) -> None:
        """A step is done: its line, counted."""
        with self._lock:
            self.count += 1
            line = f"{self.name} {self.count}/{self.total} {text}"
            if self.tty:
                self._rewrite(line)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays on a terminal too (a row that failed, with its reason)."""
        with self._lock:
            if self.tty and self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.width = 0
            self.stream.write(text + "\n")
            self.stream.flush()

    def done(self) -> None:
        """Clear the terminal's line (nothing to do elsewhere)."""
        with self._lock:
            if self.tty and self.width:
                self.stream.write("\r" + " " * self.width + "\r")
                self.stream.flush()
                self.width = 0
