"""Progress of long loops: a tqdm bar on a terminal, plain lines in a log file.

A job's log (stderr redirected to a file by Snakemake or SLURM) gets no carriage-return bars: one
line such as ``train[active]: 120/500 (24%) loss=1.234 lr=1.00e-02 12.3s`` at most every
``every`` seconds and one at the end, so logs read line by line in ``less``, ``grep`` and
``tail -f``. On a terminal it is the usual tqdm bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["progress"]


class _Lines:
    """An iterable wrapper printing a plain progress line every ``every`` seconds."""

    def __init__(self, iterable: Iterable, desc: str, total: int | None, every: float, stream):
        self._it, self.desc, self.total, self.every = iterable, desc, total, every
        self._stream, self._postfix, self._n = stream, "", 0
        self._t0 = self._last = time.monotonic()

    def set_postfix(self, **values: Any) -> None:
        self._postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def _line(self) -> str:
        done = f"{self._n}/{self.total}" if self.total is not None else str(self._n)
        pct = f" ({100 * self._n // self.total}%)" if self.total else ""
        post = f" {self._postfix}" if self._postfix else ""
        return f"{self.desc}: {done}{pct}{post} {time.monotonic() - self._t0:.1f}s"

    def __iter__(self) -> Iterator:
        for item in self._it:
            yield item
            self._n += 1
            now = time.monotonic()
            if now - self._last >= self.every:
                self._last = now
                print(self._line(), file=self._stream, flush=True)
        print(self._line(), file=self._stream, flush=True)


def progress(
    iterable: Iterable,
    *,
    desc: str,
    total: int | None = None,
    enabled: bool = True,
    every: float = 30.0,
    stream=None,
):
    """``iterable`` with progress: a tqdm bar if ``stream`` (stderr) is a terminal, else plain
    lines every ``every`` seconds and at the end; nothing when not ``enabled``. The result has
    ``set_postfix(**values)`` either way."""
    stream = sys.stderr if stream is None else stream
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    isatty = getattr(stream, "isatty", None)
    if enabled and isatty is not None and isatty():
        from tqdm import tqdm

        return tqdm(iterable, desc=desc, total=total, file=stream, dynamic_ncols=True)
    if not enabled:
        return _Quiet(iterable)
    return _Lines(iterable, desc, total, every, stream)


class _Quiet:
    def __init__(self, iterable: Iterable):
        self._it = iterable

    def set_postfix(self, **_values: Any) -> None:
        pass

    def __iter__(self) -> Iterator:
        return iter(self._it)
