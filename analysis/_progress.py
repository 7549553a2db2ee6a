"""A small dependency-free progress bar on stderr.

It draws only when stderr is a terminal (``enabled=None``), so logs, pipes and CI output
stay clean; ``enabled=True`` / ``False`` force it on or off.

One :class:`Progress` can span several phases (``lloydmax analyze``: collection, then the
report): pass it as ``progress=`` to :func:`~lloydmax.analysis.collect.collect`,
:func:`~lloydmax.analysis.report.report` or the ONNX / torch collectors: each advances it
and leaves it open for the next.  A bar made with ``total=None`` grows as each phase
declares its units (:func:`phase`); a bar made with a total keeps it.
"""
from __future__ import annotations

import sys
import time

__all__ = ["Progress", "phase", "report_units"]


class Progress:
    """``with Progress(total, "collect") as bar: bar.advance(n)``.

    ``total`` may be None (unknown length): the bar then shows a running count.  Redraws are
    throttled to 10 per second so a tight loop pays almost nothing.  Each line shows
    done/total, the rate (units per second) and the ETA; the final state is drawn once.
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
        self._open = total is None  # phases add their units (extend)
        self._drawn: int | None = None  # the count on screen: close() does not redraw it
        self._start = time.monotonic()

    def extend(self, n: int) -> None:
        """Expect ``n`` more units (a new phase of the same job), if made with no total."""
        if self._open:
            self.total = int(n) if self.total is None else self.total + int(n)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= 0.1 or (self.total is not None and self.done >= self.total):
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        speed = f"{rate:.3g}/s" if rate < 100 else f"{rate:.0f}/s"
        if self.total:
            frac = min(1.0, self.done / self.total)
            fill = round(frac * self.width)
            bar = "#" * fill + "-" * (self.width - fill)
            left = max(0, self.total - self.done)
            eta = _clock(left / rate) if rate > 0 else "--:--"
            text = (f"\r{self.desc} [{bar}] {self.done}/{self.total} {100 * frac:5.1f}% "
                    f"{speed} ETA {eta} {elapsed:6.1f}s")
        else:
            text = f"\r{self.desc} {self.done} {speed} {elapsed:6.1f}s"
        self._drawn = self.done
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            if self._drawn != self.done:  # the last advance may have drawn it already
                self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


class _Shared:
    """One phase's view of a shared :class:`Progress`: it advances it; closing it leaves
    the bar open for the next phase."""

    def __init__(self, bar: Progress):
        self.bar = bar

    def advance(self, n: int = 1) -> None:
        self.bar.advance(n)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def phase(progress, total: int | None, desc: str):
    """The bar of one phase of ``total`` units: for ``progress`` None / True / False a new
    ``Progress(total, desc, enabled=progress)``; for a :class:`Progress`, a view advancing it
    (closing the view keeps it open), after adding ``total`` to it if it has no fixed total."""
    if isinstance(progress, (Progress, _Shared)):
        bar = progress.bar if isinstance(progress, _Shared) else progress
        if total is not None:
            bar.extend(total)
        return _Shared(bar)
    return Progress(total, desc, enabled=progress)


def report_units(histograms, per_channel: bool) -> int:
    """The rows a report makes of ``histograms``: one per layer, or one per channel."""
    items = histograms.values() if isinstance(histograms, dict) else [histograms]
    if not per_channel:
        return len(items)
    return sum(int(getattr(h, "n_channels", None) or 0) for h in items)
