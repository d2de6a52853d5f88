"""A progress bar for long runs, drawn on an interactive terminal only.

``Progress.on(stream, total)`` gives a bar when ``stream`` (stderr in practice) is a
terminal, and a bar that draws nothing otherwise: tests, pipes, CI logs and redirected files
never see a carriage return. The bar lives on one line of that stream, redrawn with ``\\r``;
:meth:`Progress.echo` prints a line above it (erasing it, then drawing it again), so lines and
bar never mix. It never writes to stdout, where JSON may go.

No global state: each command makes its own, passing the stream (tests pass a fake terminal).
"""

from __future__ import annotations

import time
from typing import TextIO

from carbonclap_xl.core.text import printable

WIDTH = 24  # characters of the bar itself
LINE_MAX = 79  # the whole line stays within an 80-column terminal
ERASE = "\r\x1b[K"  # back to the start of the line, erase it
MIN_INTERVAL_S = 0.1  # redraws at most this often (the last one always)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """``done`` of ``total`` steps, drawn as ``[#####-----]  12/40  30 % label``."""

    def __init__(self, stream: TextIO, total: int, label: str = "", *,
                 active: bool = True) -> None:
        self.stream = stream
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.active = active
        self._shown = ""
        self._last = 0.0

    @classmethod
    def on(cls, stream: TextIO, total: int, label: str = "", *, wanted: bool = True
           ) -> Progress:
        """A bar drawn on ``stream`` if it is an interactive terminal and ``wanted``; an
        inactive one (it draws nothing, :meth:`echo` only prints) otherwise."""
        return cls(stream, total, label, active=wanted and is_terminal(stream))

    def text(self) -> str:
        """The bar's line as it is drawn now."""
        filled = min(WIDTH, self.done * WIDTH // self.total)
        percent = min(100, self.done * 100 // self.total)
        head = (f"[{'#' * filled}{'-' * (WIDTH - filled)}] {self.done}/{self.total} "
                f"{percent:>3} %")
        label = printable(self.label)
        room = LINE_MAX - len(head) - 1
        if label and room > 3:
            head += " " + (label if len(label) <= room else label[: room - 1] + "…")
        return head

    def advance(self, steps: int = 1, label: str | None = None) -> None:
        """``steps`` more done; ``label`` says what is being done (a file name, a stage)."""
        self.done = min(self.total, self.done + steps)
        moved_on = label is not None and label != self.label
        if label is not None:
            self.label = label
        self._draw(force=moved_on or self.done >= self.total)

    def stage(self, label: str) -> None:
        """Say what is being done now, without a step done."""
        self.label = label
        self._draw(force=True)

    def echo(self, line: str, stream: TextIO | None = None) -> None:
        """Print ``line`` (on ``stream``, default the bar's) above the bar."""
        shown = self.active and bool(self._shown)
        if shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self._shown = ""
        print(line, file=stream or self.stream, flush=self.active)
        if shown:
            self._draw(force=True)

    def close(self) -> None:
        """Erase the bar (the lines printed above it stay)."""
        if self.active and self._shown:
            self.stream.write(ERASE)
            self.stream.flush()
        self._shown = ""

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, force: bool = False) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if not force and now - self._last < MIN_INTERVAL_S:
            return
        text = self.text()
        if text != self._shown:
            self.stream.write(ERASE + text)
            self.stream.flush()
            self._shown = text
        self._last = now
