"""A small dependency-free progress bar on stderr.

It draws only when stderr is a terminal (``enabled=None``), so logs, pipes and CI output
stay clean; ``enabled=True`` / ``False`` force it on or off.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """``with Progress(total, "collect") as bar: bar.advance(n)``.

    ``total`` may be None (unknown length): the bar then shows a running count.  Redraws are
    throttled to 10 per second so a tight loop pays almost nothing.
    """

    def __init__(self, total: int | None = None, desc: str = "", enabled: bool | None = None,
                 stream=None, width: int = 30):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled)
        self.total = total
        self.desc = desc
        self.width = width
        self.done = 0
        self._last = 0.0
        self._start = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= 0.1 or (self.total is not None and self.done >= self.total):
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self._start
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = round(frac * self.width)
            bar = "#" * fill + "-" * (self.width - fill)
            text = f"\r{self.desc} [{bar}] {100 * frac:5.1f}% {elapsed:6.1f}s"
        else:
            text = f"\r{self.desc} {self.done} {elapsed:6.1f}s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
