"""A job's timing line: phases add up to the time since the process start, and parse back."""

from __future__ import annotations

import time

import pytest

from halo import timing


def test_phases_cover_the_time_since_start_and_parse_back(monkeypatch):
    monkeypatch.setenv("HALO_T0", repr(time.time() - 5.0))
    timing.start()
    timing.mark("compute")
    timing.mark("compute")  # repeated: ignored
    timing.mark("write")
    timing.mark("compute")  # phases may come back
    split = timing.phases()
    assert set(split) == set(timing.PHASES)
    assert split["startup"] == pytest.approx(5.0, abs=0.5)
    assert sum(split.values()) == pytest.approx(5.0, abs=0.5)
    parsed = timing.parse("noise\n" + timing.line("train") + "\nmore noise\n")
    assert parsed["command"] == "train"
    assert parsed["startup"] == pytest.approx(split["startup"], abs=0.02)


def test_start_reads_the_process_start_without_the_launcher(monkeypatch):
    monkeypatch.delenv("HALO_T0", raising=False)
    timing.start()
    assert 0 <= timing.phases()["startup"] < 3600


def test_unknown_phase_and_logs_without_a_line():
    with pytest.raises(ValueError, match="timing phase"):
        timing.mark("sleep")
    assert timing.parse("no timing here\n") is None
