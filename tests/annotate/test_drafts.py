"""The draft format: the queried pixels indexed per region, labels checked, answers built."""

from __future__ import annotations

import json

import numpy as np
import pytest

from halo.acquisition.queries import LabelsError, draft_path, read_manifest, read_query
from halo.annotate.drafts import (
    DRAFT_FORMAT,
    NO_ANSWER,
    UNSURE,
    build_answer,
    check_labels,
    draft_revision,
    image_query,
    read_draft,
    regions_left,
    untouched_regions_left,
    write_draft,
)
from halo.io import write_png
from tests.annotate.conftest import region_masks


def test_image_query_indexes_regions_in_row_major_order(round_dir):
    regions = region_masks(round_dir)
    for entry in read_manifest(round_dir):
        query = image_query(round_dir, entry)
        mask = read_query(round_dir, entry)
        assert np.array_equal(query.pixels, np.flatnonzero(mask))
        assert len(query.members) == len(entry["regions"])
        for members, region, expected in zip(
            query.members, entry["regions"], regions[entry["id"]], strict=True
        ):
            assert members.size == region["pixels"] == expected.sum()
            assert np.array_equal(query.pixels[members], np.flatnonzero(expected))
    assert [m.size for m in image_query(round_dir, read_manifest(round_dir)[1]).members] == [
        9,
        4,  # clipped at the border
        8,  # one pixel of its window was shown in an earlier round
        9,
    ]


def test_image_query_refuses_a_query_mask_that_changed(round_dir):
    entry = read_manifest(round_dir)[0]
    mask = read_query(round_dir, entry).astype(np.uint8)
    mask[20, 0] = 1
    write_png(round_dir / entry["query"], mask)
    with pytest.raises(LabelsError, match="does not match its manifest"):
        image_query(round_dir, entry)


def test_check_labels_accepts_classes_unsure_and_null_only(round_dir):
    entry = read_manifest(round_dir)[0]
    n = entry["query_pixels"]
    labels = [None] * (n - 3) + [0, 18, UNSURE]
    codes = check_labels(labels, entry, "here")
    assert codes.dtype == np.int16 and codes.tolist()[-4:] == [NO_ANSWER, 0, 18, UNSURE]
    for bad, match in (
        ([None] * (n - 1), f"a list of {n} labels"),
        ({"a": 1}, "got dict"),
        ([None] * (n - 1) + [19], "unknown class id 19"),
        ([None] * (n - 1) + [-1], "unknown class id -1"),
        ([None] * (n - 1) + [254], "unknown class id 254"),
        ([None] * (n - 1) + [True], "unknown class id true"),
        ([None] * (n - 1) + [1.0], "unknown class id 1.0"),
        ([None] * (n - 1) + ["car"], 'unknown class id "car"'),
    ):
        with pytest.raises(LabelsError, match=match):
            check_labels(bad, entry, "here")


def test_draft_round_trip_and_stale_drafts(round_dir):
    entry = read_manifest(round_dir)[1]
    query = image_query(round_dir, entry)
    assert read_draft(round_dir, entry) is None
    assert regions_left(query, None) == untouched_regions_left(entry) == 4
    codes = np.full(entry["query_pixels"], NO_ANSWER, np.int16)
    codes[query.members[0]] = 3
    codes[query.members[1]] = UNSURE
    codes[query.members[2][:1]] = 5
    assert draft_revision(round_dir, "img_b") == ""
    revision = write_draft(round_dir, entry, codes)
    path = draft_path(round_dir, "img_b")
    assert revision == draft_revision(round_dir, "img_b") != ""
    draft = json.loads(path.read_text())
    assert draft["format"] == DRAFT_FORMAT and draft["query_sha256"] == entry["query_sha256"]
    assert draft["labels"].count(None) == entry["query_pixels"] - 9 - 4 - 1
    assert np.array_equal(read_draft(round_dir, entry), codes)
    assert regions_left(query, codes) == 2  # unsure answers; one pixel of region 3 does not
    answer = build_answer(query, codes)
    regions = region_masks(round_dir)["img_b"]
    assert answer.dtype == np.uint8 and answer.shape == tuple(entry["size"])
    assert (answer[regions[0]] == 3).all() and (answer[regions[1]] == UNSURE).all()
    assert (answer == 5).sum() == 1 and (answer != UNSURE).sum() == 10
    assert (build_answer(query, None) == UNSURE).all()

    draft["query_sha256"] = "0" * 64  # made for other queries: ignored
    path.write_text(json.dumps(draft))
    assert read_draft(round_dir, entry) is None
    path.write_text("{not json")
    with pytest.raises(LabelsError, match="not valid JSON"):
        read_draft(round_dir, entry)
    path.write_text("[1, 2]")
    with pytest.raises(LabelsError, match="expected a JSON object"):
        read_draft(round_dir, entry)
