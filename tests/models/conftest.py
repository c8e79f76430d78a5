"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _single_intra_op_thread():
    """Run the model tests on one intra-op thread, restoring the setting afterwards.

    The tensors here are tiny; on a 2-core machine shared with other jobs, two OpenMP threads
    spend most of their time waiting for each other (measured: the segmenter tests took 115 s
    with 2 threads under load, 15 s with 1).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
