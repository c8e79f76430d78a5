"""The source order: the official class-balanced list and the step sampler over its pool."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from halo.engine import batches as B


@settings(max_examples=60, deadline=None)
@given(
    presence=hnp.arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 5))),
    length=st.integers(0, 200),
    seed=st.integers(0, 2**31),
)
def test_balanced_order_draws_only_images_that_hold_a_class(presence, length, seed):
    if not presence.any():
        with pytest.raises(ValueError, match="no sample holds any class"):
            B.class_balanced_order(presence, length, seed)
        return
    order = B.class_balanced_order(presence, length, seed, sub_epoch=7)
    assert order.shape == (length,) and order.dtype == np.int64
    assert presence[order].any(axis=1).all()  # an image is drawn for a class it holds
    again = B.class_balanced_order(presence, length, seed, sub_epoch=7)
    assert np.array_equal(order, again)  # a function of (presence, length, seed)


def test_balanced_order_evens_out_a_rare_class():
    """One-hot labels, 9 images of class 0 and 1 of class 1: the weights 1/log(1.01 + d) pull
    the two classes' shares together (uniform sampling would draw image 0 a tenth of the
    time), and each class's images are used in turn (a reshuffled cycle: counts differ by ≤ 1)."""
    presence = np.zeros((10, 2), bool)
    presence[0, 1] = True
    presence[1:, 0] = True
    order = B.class_balanced_order(presence, 3000, seed=0)
    share = np.mean(order == 0)
    assert 0.45 < share < 0.55, share
    counts = Counter(order[order != 0].tolist())
    assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == 9


def test_balanced_order_starts_each_sub_epoch_afresh():
    """At a sub-epoch's start every held class weighs the same: with one image per class, the
    first draws of many seeds spread over the classes, including one no other draw favours."""
    presence = np.eye(4, dtype=bool)
    presence[:, 3] = False  # class 3 is held by no image: never drawn, nothing fails
    firsts = [B.class_balanced_order(presence, 4, seed=s, sub_epoch=2)[[0, 2]] for s in range(300)]
    for column in np.array(firsts).T:  # the first draw of sub-epoch 0 and of sub-epoch 1
        freq = np.bincount(column, minlength=4) / len(column)
        assert freq[3] == 0 and np.all(np.abs(freq[:3] - 1 / 3) < 0.1), freq


def test_balanced_length_is_whole_sub_epochs_past_the_run():
    assert B.balanced_length(120_000) == 123_000  # the official 60k iterations x 2 per GPU
    assert B.balanced_length(123_000) == 126_000 and B.balanced_length(0) == 3000


def test_sampler_epochs_permute_the_pool():
    pool = np.array([4, 4, 4, 1, 2])
    s = B.StepBatchSampler(99, 5, seed=1, start=0, stop=3, pool=pool)
    epochs = [sorted(batch) for batch in s]
    assert all(e == [1, 2, 4, 4, 4] for e in epochs)  # the pool's multiset, not the dataset
    (late,) = B.StepBatchSampler(99, 5, seed=1, start=2, stop=3, pool=pool)
    assert late == list(s)[2]  # a resumed run reads the same batch
