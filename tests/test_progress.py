"""Progress in a log file is plain lines (no carriage returns); on a terminal it is tqdm."""

from __future__ import annotations

import io

import pytest

from halo.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_a_log_gets_whole_lines_and_a_final_count(n):
    log = io.StringIO()
    bar = progress(range(n), desc="train[x]", stream=log, every=0.0)
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=f"{i:.3f}")
    assert seen == list(range(n))
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert lines[-1].startswith(f"train[x]: {n}/{n}")
    assert len(lines) == n + 1  # every=0: one line per item, plus the final one


def test_lines_are_rate_limited_and_quiet_means_nothing():
    log = io.StringIO()
    list(progress(range(1000), desc="d", stream=log, every=3600.0))
    assert log.getvalue().splitlines() == [log.getvalue().splitlines()[-1]]
    quiet = io.StringIO()
    bar = progress(range(3), desc="d", stream=quiet, enabled=False)
    bar.set_postfix(a=1)
    assert list(bar) == [0, 1, 2] and quiet.getvalue() == ""


def test_a_terminal_gets_a_tqdm_bar():
    from tqdm import tqdm

    term = Terminal()
    bar = progress(range(3), desc="d", stream=term)
    assert isinstance(bar, tqdm) and list(bar) == [0, 1, 2]
