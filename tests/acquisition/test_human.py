"""The human annotator: a round's queries out, the labels in (folder, labelIds, CVAT zip), and the
round equals the simulated oracle's byte for byte when the person answers with the ground truth;
every refused input exits 2 with one line and writes nothing."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from halo.acquisition.answers import merge_answer
from halo.acquisition.queries import file_sha256, read_manifest, read_query
from halo.acquisition.rounds import label_mask, read_mask
from halo.cli import main
from halo.data.labels import _CITYSCAPES_LABELID_TO_TRAINID, CITYSCAPES_PALETTE
from halo.io import write_png
from tests.acquisition import scripted
from tests.engine.conftest import TINY_CONFIG

SIZE = (32, 64)


def _common(root: Path) -> list[str]:
    return ["--config", str(TINY_CONFIG), "--quiet", "--set", f"data_root={root}"]


def _acquire(root, ckpt, r, out, prev=None, *extra) -> None:
    argv = ["acquire", *_common(root), "--checkpoint", str(ckpt), "--round", str(r)]
    argv += ["--out", str(out), *(["--prev", str(prev)] if prev else []), *extra]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def rounds(tiny_data, tmp_path_factory) -> dict:
    """Two simulated rounds and the first human round (waiting), from one source model."""
    base = tmp_path_factory.mktemp("human")
    assert main(["pretrain", *_common(tiny_data), "--out", str(base / "src")]) == 0
    ckpt = base / "src" / "model.pt"
    _acquire(tiny_data, ckpt, 1, base / "sim1")
    _acquire(tiny_data, ckpt, 2, base / "sim2", base / "sim1")
    _acquire(tiny_data, ckpt, 1, base / "hum1", None, "--annotator", "human")
    return {
        "base": base,
        "root": tiny_data,
        "ckpt": ckpt,
        "truth": scripted.ground_truth(tiny_data, SIZE),
    }


def _waiting(rounds, tmp_path) -> Path:
    """A copy of the waiting human round 1."""
    return Path(shutil.copytree(rounds["base"] / "hum1", tmp_path / "hum1"))


def _same_round(a: Path, b: Path) -> None:
    for name in ("budget.json", "blocked.npz", "labelled.npz"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    masks = sorted(p.relative_to(a) for p in (a / "masks").rglob("*.png"))
    assert masks == sorted(p.relative_to(b) for p in (b / "masks").rglob("*.png"))
    for rel in masks:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_a_human_round_writes_queries_and_waits(rounds):
    hum = rounds["base"] / "hum1"
    assert not (hum / "budget.json").exists() and not (hum / "masks").exists()
    entries = read_manifest(hum)
    labelled = np.load(hum / "labelled.npz")
    assert len(entries) == 4
    for entry in entries:
        query = read_query(hum, entry)
        assert np.array_equal(query, labelled[entry["id"]])  # round 1: everything shown is new
        assert entry["size"] == list(SIZE) and entry["round"] == 1
        assert entry["query_pixels"] == int(query.sum()) > 0
        assert sum(r["pixels"] for r in entry["regions"]) >= entry["query_pixels"]
        for region in entry["regions"]:
            r, c = region["centre"]
            assert query[r, c] and region["radius"] == 1
        assert [c["name"] for c in entry["classes"]][:2] == ["road", "sidewalk"]
        assert [c["color"] for c in entry["classes"]] == CITYSCAPES_PALETTE.tolist()
        assert entry["checkpoint"] == file_sha256(rounds["ckpt"])
        assert Path(entry["image"]).is_file()
        image = np.asarray(Image.open(hum / entry["file"]))
        assert image.shape == (*SIZE, 3)


def test_complete_round_without_labels_says_what_to_run(rounds, tmp_path, capsys):
    hum = _waiting(rounds, tmp_path)
    assert main(["complete-round", str(hum)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"round {hum} waits for labels" in err[0]
    assert f"halo annotate {hum}" in err[0] and f"halo import-labels {hum}" in err[0]
    assert not (hum / "budget.json").exists()


def test_ground_truth_labels_give_the_simulated_rounds(rounds, tmp_path):
    """Round 1 and round 2 with a person who answers with the ground truth: byte for byte the
    simulated oracle's masks, maps and budget."""
    base, truth = rounds["base"], rounds["truth"]
    hum1 = _waiting(rounds, tmp_path)
    scripted.answer(hum1, truth, tmp_path / "labels1")
    assert main(["import-labels", str(hum1), str(tmp_path / "labels1")]) == 0
    _same_round(hum1, base / "sim1")
    report = json.loads((hum1 / "answers.json").read_text())
    queried = sum(e["query_pixels"] for e in read_manifest(hum1))
    assert report["pixels_queried"] == queried
    assert report["pixels_answered"] + report["pixels_unanswered"] == queried
    hum2 = tmp_path / "hum2"
    _acquire(rounds["root"], rounds["ckpt"], 2, hum2, hum1, "--annotator", "human")
    assert all(e["round"] == 2 for e in read_manifest(hum2))
    scripted.answer(hum2, truth, tmp_path / "labels2")
    assert main(["import-labels", str(hum2), str(tmp_path / "labels2")]) == 0
    _same_round(hum2, base / "sim2")
    # complete-round re-derives the same round from answers/ (what the workflow's job runs)
    (hum2 / "budget.json").unlink()
    shutil.rmtree(hum2 / "masks")
    assert main(["complete-round", str(hum2)]) == 0
    _same_round(hum2, base / "sim2")


def test_cityscapes_label_ids_import(rounds, tmp_path):
    hum = _waiting(rounds, tmp_path)
    to_label_id = np.full(256, 0, np.uint8)  # train id -> a labelId of that class; 255 -> 0
    for label_id, train_id in sorted(_CITYSCAPES_LABELID_TO_TRAINID.items(), reverse=True):
        to_label_id[train_id] = label_id
    for entry in read_manifest(hum):
        query = read_query(hum, entry)
        answer = np.where(query, rounds["truth"][entry["id"]], 255).astype(np.uint8)
        write_png(tmp_path / "ids" / f"{entry['id']}.png", to_label_id[answer])
    assert main(["import-labels", str(hum), str(tmp_path / "ids"), "--ids", "label"]) == 0
    _same_round(hum, rounds["base"] / "sim1")


def _paint_cvat(export: Path, out: Path, truth, mutate=None) -> None:
    """What a CVAT user does: repaint every queried pixel with its class colour, export."""
    with zipfile.ZipFile(export) as zin, zipfile.ZipFile(out, "w") as zout:
        labelmap = zin.read("labelmap.txt").decode()
        for name in zin.namelist():
            data = zin.read(name)
            if name.startswith("SegmentationClass/"):
                image_id = name[len("SegmentationClass/") : -4]
                rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()
                query = rgb.any(axis=2)
                label = truth[image_id]
                known = query & (label != 255)
                rgb[known] = CITYSCAPES_PALETTE[label[known]]
                if callable(mutate):
                    rgb = mutate(rgb, query)
                buf = io.BytesIO()
                Image.fromarray(rgb).save(buf, format="PNG")
                data = buf.getvalue()
            if name == "labelmap.txt" and mutate == "unknown-label":
                data = (labelmap + "spaceship:1,1,1::\n").encode()
            zout.writestr(name, data)


def test_cvat_round_trip(rounds, tmp_path, capsys):
    hum = _waiting(rounds, tmp_path)
    export = tmp_path / "queries.zip"
    assert main(["export-queries", str(hum), "--format", "cvat", str(export)]) == 0
    with zipfile.ZipFile(export) as zf:
        names = set(zf.namelist())
        lines = zf.read("labelmap.txt").decode().splitlines()
    ids = [e["id"] for e in read_manifest(hum)]
    assert {f"SegmentationClass/{i}.png" for i in ids} <= names
    assert {f"JPEGImages/{i}.png" for i in ids} <= names
    assert "ImageSets/Segmentation/default.txt" in names
    assert lines[1] == "background:0,0,0::" and lines[-1].startswith("query:")
    assert len(lines) == 1 + 1 + 19 + 1
    labelled = tmp_path / "labelled.zip"
    _paint_cvat(export, labelled, rounds["truth"])
    assert main(["import-labels", str(hum), str(labelled)]) == 0
    _same_round(hum, rounds["base"] / "sim1")
    # the untouched export imports too: every queried pixel left unlabelled (allowed, counted)
    again = _waiting(rounds, tmp_path / "again")
    assert main(["import-labels", str(again), str(export)]) == 0
    report = json.loads((again / "answers.json").read_text())
    assert report["pixels_answered"] == 0 and report["pixels_unanswered"] > 0
    assert all((read_mask(p) == 255).all() for p in (again / "masks").rglob("*.png"))


# --- every refused input: exit 2, one line naming the file, nothing written -----------------


def _folder(rounds, hum: Path, out: Path, change=None) -> Path:
    answers = scripted.answer(hum, rounds["truth"], out)
    if change is not None:
        change(out, answers)
    return out


def _first(hum: Path) -> dict:
    return read_manifest(hum)[0]


def _outside(out, answers):
    image_id, answer = next(iter(answers.items()))
    answer = answer.copy()
    answer[answer == 255] = 0  # a class where nothing was queried
    write_png(out / f"{image_id}.png", answer)


def _unknown_class(out, answers):
    image_id, answer = next(iter(answers.items()))
    answer = answer.copy()
    answer[answer != 255] = 19
    write_png(out / f"{image_id}.png", answer)


def _size(out, answers):
    image_id = next(iter(answers))
    write_png(out / f"{image_id}.png", np.full((16, 64), 255, np.uint8))


def _missing(out, answers):
    (out / f"{next(iter(answers))}.png").unlink()


def _extra(out, answers):
    write_png(out / "aachen" / "not_queried.png", np.full(SIZE, 255, np.uint8))


def _rgb(out, answers):
    write_png(out / f"{next(iter(answers))}.png", np.zeros((*SIZE, 3), np.uint8))


FOLDER_CASES = {
    "outside": (_outside, "outside the queried regions"),
    "unknown-class": (_unknown_class, "unknown class id 19"),
    "size": (_size, "[16, 64]"),
    "missing": (_missing, "missing"),
    "extra": (_extra, "not_queried"),
    "rgb": (_rgb, "single-channel"),
}


def _refused(hum: Path, argv: list[str], expect: str, capsys) -> None:
    before = sorted(p.relative_to(hum) for p in hum.rglob("*"))
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("halo import-labels: error:"), err
    assert expect in err[0], err[0]
    assert sorted(p.relative_to(hum) for p in hum.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("case", sorted(FOLDER_CASES))
def test_refused_folder(rounds, tmp_path, capsys, case):
    change, expect = FOLDER_CASES[case]
    hum = _waiting(rounds, tmp_path)
    src = _folder(rounds, hum, tmp_path / "labels", change)
    _refused(hum, ["import-labels", str(hum), str(src)], expect, capsys)


def test_refused_unknown_label_id(rounds, tmp_path, capsys):
    hum = _waiting(rounds, tmp_path)
    entry = _first(hum)
    src = _folder(rounds, hum, tmp_path / "labels")
    write_png(src / f"{entry['id']}.png", np.full(SIZE, 40, np.uint8))
    argv = ["import-labels", str(hum), str(src), "--ids", "label"]
    _refused(hum, argv, "unknown Cityscapes labelId 40", capsys)


def _cvat_case(rounds, tmp_path, mutate) -> tuple[Path, Path]:
    hum = _waiting(rounds, tmp_path)
    export = tmp_path / "queries.zip"
    assert main(["export-queries", str(hum), str(export)]) == 0
    src = tmp_path / "labelled.zip"
    _paint_cvat(export, src, rounds["truth"], mutate)
    return hum, src


def _stray_colour(rgb, query):
    rgb[0, 0] = (7, 7, 7)
    return rgb


def _class_outside(rgb, query):
    rgb[~query] = CITYSCAPES_PALETTE[0]
    return rgb


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (_stray_colour, "colour (7, 7, 7) is not in labelmap.txt"),
        (_class_outside, "outside the queried regions"),
        ("unknown-label", "label 'spaceship' is not a class"),
    ],
    ids=["colour", "outside", "label"],
)
def test_refused_cvat(rounds, tmp_path, capsys, mutate, expect):
    hum, src = _cvat_case(rounds, tmp_path, None if isinstance(mutate, str) else mutate)
    if isinstance(mutate, str):
        _paint_cvat(tmp_path / "queries.zip", src, rounds["truth"], mutate)
    _refused(hum, ["import-labels", str(hum), str(src)], expect, capsys)


def test_refused_cvat_missing_mask_and_broken_zip(rounds, tmp_path, capsys):
    hum, src = _cvat_case(rounds, tmp_path, None)
    first = f"SegmentationClass/{_first(hum)['id']}.png"
    pruned = tmp_path / "pruned.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(pruned, "w") as zout:
        for name in zin.namelist():
            if name != first:
                zout.writestr(name, zin.read(name))
    _refused(hum, ["import-labels", str(hum), str(pruned)], f"{first}: missing", capsys)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    _refused(hum, ["import-labels", str(hum), str(broken)], "not a readable zip", capsys)
    _refused(
        hum, ["import-labels", str(hum), str(tmp_path / "nothing")], "expected a folder", capsys
    )


def test_refused_round_without_queries(rounds, tmp_path, capsys):
    sim = Path(shutil.copytree(rounds["base"] / "sim1", tmp_path / "sim1"))
    src = _folder(rounds, _waiting(rounds, tmp_path), tmp_path / "labels")
    _refused(sim, ["import-labels", str(sim), str(src)], "has no queries", capsys)


def test_acquiring_again_voids_the_old_answers(rounds, tmp_path):
    hum = _waiting(rounds, tmp_path)
    scripted.answer(hum, rounds["truth"], tmp_path / "labels")
    assert main(["import-labels", str(hum), str(tmp_path / "labels")]) == 0
    _acquire(rounds["root"], rounds["ckpt"], 1, hum, None, "--annotator", "human")
    assert not (hum / "budget.json").exists() and not (hum / "answers").exists()
    assert main(["complete-round", str(hum)]) == 2


# --- the merge: a person who answers with the ground truth gets the oracle's masks ---------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 6),
    st.integers(0, 2**32 - 1),
)
def test_merge_over_rounds_is_the_cumulative_label_mask(height, width, seed):
    rng = np.random.default_rng(seed)
    label = rng.choice([0, 3, 18, 255], size=(height, width))
    shown = np.zeros((height, width), bool)
    mask = None
    for _ in range(3):
        new = rng.random((height, width)) < 0.3
        new &= ~shown
        answer = np.where(new, label, 255).astype(np.uint8)
        mask = merge_answer(mask, new, answer)
        shown |= new
        assert np.array_equal(mask, label_mask(shown, label))


# --- review fixes: paths, broken files, zips from other systems --------------------------------


def test_rounds_are_found_from_any_working_directory(rounds, tmp_path, monkeypatch):
    """pending.json names the previous round relative to the round: acquire with relative paths
    in one folder, import from another."""
    work = tmp_path / "work"
    shutil.copytree(rounds["base"] / "hum1", work / "r1")
    scripted.answer(work / "r1", rounds["truth"], tmp_path / "labels1")
    assert main(["import-labels", str(work / "r1"), str(tmp_path / "labels1")]) == 0
    monkeypatch.chdir(work)
    _acquire(rounds["root"], rounds["ckpt"], 2, "r2", "r1", "--annotator", "human")
    monkeypatch.chdir(tmp_path)
    scripted.answer(work / "r2", rounds["truth"], tmp_path / "labels2")
    assert main(["import-labels", "work/r2", str(tmp_path / "labels2")]) == 0
    _same_round(work / "r2", rounds["base"] / "sim2")


def test_a_reimport_replaces_every_answer(rounds, tmp_path):
    hum = _waiting(rounds, tmp_path)
    answers = scripted.answer(hum, rounds["truth"], tmp_path / "labels")
    assert main(["import-labels", str(hum), str(tmp_path / "labels")]) == 0
    for image_id in answers:  # the second person leaves everything unlabelled
        write_png(tmp_path / "labels" / f"{image_id}.png", np.full(SIZE, 255, np.uint8))
    assert main(["import-labels", str(hum), str(tmp_path / "labels")]) == 0
    assert all((read_mask(p) == 255).all() for p in (hum / "masks").rglob("*.png"))
    assert json.loads((hum / "answers.json").read_text())["pixels_answered"] == 0


def test_a_zip_written_on_windows_imports(rounds, tmp_path):
    hum = _waiting(rounds, tmp_path)
    export = tmp_path / "queries.zip"
    assert main(["export-queries", str(hum), str(export)]) == 0
    painted, windows = tmp_path / "painted.zip", tmp_path / "windows.zip"
    _paint_cvat(export, painted, rounds["truth"])
    with zipfile.ZipFile(painted) as zin, zipfile.ZipFile(windows, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name.replace("/", "\\"), zin.read(name))
    assert main(["import-labels", str(hum), str(windows)]) == 0
    _same_round(hum, rounds["base"] / "sim1")


def test_refused_corrupt_zip_member(rounds, tmp_path, capsys):
    hum, src = _cvat_case(rounds, tmp_path, None)
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(f"SegmentationClass/{_first(hum)['id']}.png")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 2, start + min(info.compress_size, 40)):
        data[k] ^= 0xFF  # the member's compressed bytes
    broken = tmp_path / "corrupt.zip"
    broken.write_bytes(bytes(data))
    _refused(hum, ["import-labels", str(hum), str(broken)], "SegmentationClass/", capsys)


@pytest.mark.parametrize(
    ("line", "expect"),
    [("[1, 2]", "expected a JSON object, got list"), ("not json", "not a JSON object")],
    ids=["list", "text"],
)
def test_refused_broken_manifest(rounds, tmp_path, capsys, line, expect):
    hum = _waiting(rounds, tmp_path)
    manifest = hum / "queries" / "manifest.jsonl"
    manifest.write_text(line + "\n" + manifest.read_text())
    src = _folder(rounds, _waiting(rounds, tmp_path / "other"), tmp_path / "labels")
    _refused(hum, ["import-labels", str(hum), str(src)], expect, capsys)


def test_label_ids_255_is_not_labelled(rounds, tmp_path):
    hum = _waiting(rounds, tmp_path)
    for entry in read_manifest(hum):
        write_png(tmp_path / "ids" / f"{entry['id']}.png", np.full(SIZE, 255, np.uint8))
    assert main(["import-labels", str(hum), str(tmp_path / "ids"), "--ids", "label"]) == 0
    assert json.loads((hum / "answers.json").read_text())["pixels_answered"] == 0


def _bomb_zip(path: Path, members: dict[str, bytes], bomb: str, size: int, declared: int) -> None:
    """A zip of ``members`` plus ``bomb``: ``size`` zero bytes deflated (about size / 1000
    bytes on disk), its header declaring ``declared``. Written by hand: no library writes a
    member whose header lies."""
    chunk = b"\0" * (1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every chunk
    data = block * (size // len(chunk)) + c.flush()
    crc = 0
    for _ in range(size // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    entries = [(n, zlib.crc32(b), b, len(b), 0) for n, b in members.items()]
    entries.append((bomb, crc, data, declared, 8))
    out, central = io.BytesIO(), io.BytesIO()
    for name, crc32, body, raw, method in entries:
        offset, encoded = out.tell(), name.encode()
        fields = (20, 0, method, 0, 0x21, crc32, len(body), raw, len(encoded), 0)
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields) + encoded + body)
        central.write(
            struct.pack("<IH", 0x02014B50, 20)
            + struct.pack("<HHHHHIIIHHHHHII", *fields[:-1], 0, 0, 0, 0, 0, offset)
            + encoded
        )
    start, cd = out.tell(), central.getvalue()
    out.write(
        cd
        + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(cd), start, 0)
    )
    path.write_bytes(out.getvalue())


_PEAK = (  # VmHWM: the peak of this process's own memory (ru_maxrss keeps the parent's)
    "import sys\n"
    "from halo.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]\n"
    "print('PEAK_KB', hwm, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize(
    ("bomb", "declared", "expect"),
    [
        ("labelmap.txt", 1 << 30, "declares 1073741824 bytes"),
        ("labelmap.txt", 100, "unreadable zip member"),  # the header lies: stops at its size
        ("mask", 1 << 30, "declares 1073741824 bytes"),
        ("mask", 16 << 20, "declares 16777216 bytes"),
    ],
    ids=["labelmap", "labelmap-lying", "mask", "mask-16MiB"],
)
def test_a_zip_bomb_is_refused_at_once_in_little_memory(rounds, tmp_path, bomb, declared, expect):
    """A 1 MB zip whose member inflates to 1 GiB: exit 2 with one line, in seconds and under
    500 MB of peak memory, and nothing written."""
    hum, src = _cvat_case(rounds, tmp_path, None)
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    name = f"SegmentationClass/{_first(hum)['id']}.png" if bomb == "mask" else bomb
    members.pop(name)
    bombed = tmp_path / "bomb.zip"
    _bomb_zip(bombed, members, name, 1 << 30, declared)
    assert bombed.stat().st_size < 2 << 20
    before = sorted(p.relative_to(hum) for p in hum.rglob("*"))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, "import-labels", str(hum), str(bombed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - start
    lines = [ln for ln in done.stderr.strip().splitlines() if not ln.startswith("PEAK_KB")]
    peak_kb = int(done.stderr.split("PEAK_KB")[1].split()[0])
    assert done.returncode == 2 and len(lines) == 1 and expect in lines[0], done.stderr
    assert name in lines[0] and seconds < 30  # what the issue asks is < 5 s on an idle machine
    assert peak_kb < 500 * 1024, peak_kb
    assert sorted(p.relative_to(hum) for p in hum.rglob("*")) == before


def test_a_zip_of_too_many_members_is_refused(rounds, tmp_path, capsys):
    hum, src = _cvat_case(rounds, tmp_path, None)
    crowded = tmp_path / "crowded.zip"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(crowded, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        for i in range(200):
            zout.writestr(f"junk/{i}.txt", b"")
    _refused(hum, ["import-labels", str(hum), str(crowded)], "members, more than the", capsys)


def _train_argv(rounds, masks: Path, out: Path) -> list[str]:
    argv = ["train", "--protocol", "active", *_common(rounds["root"]), "--round", "1"]
    return [*argv, "--init", str(rounds["ckpt"]), "--masks", str(masks), "--out", str(out)]


def test_a_broken_budget_is_refused_before_any_training_step(rounds, tmp_path, capsys):
    masks = Path(shutil.copytree(rounds["base"] / "sim1", tmp_path / "sim1"))
    budget = masks / "budget.json"
    budget.write_text(budget.read_text()[:40])  # truncated
    out = tmp_path / "out"
    capsys.readouterr()
    argv = [*_train_argv(rounds, masks, out), "--eval-out", str(out / "eval.json")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "budget.json" in err[0] and "not valid JSON" in err[0], err
    assert "trained" not in captured.out and not out.exists()


def test_an_out_that_cannot_take_the_checkpoints_is_refused_before_training(
    rounds, tmp_path, capsys, monkeypatch
):
    import shutil as sh

    masks = rounds["base"] / "sim1"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    capsys.readouterr()
    assert main(_train_argv(rounds, masks, blocker / "out")) == 1  # a file where a folder goes
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0], err
    usage = sh.disk_usage(tmp_path)
    monkeypatch.setattr(sh, "disk_usage", lambda p: usage._replace(free=1 << 20))
    out = tmp_path / "full"
    assert main(_train_argv(rounds, masks, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "No space left on device: 1 MB free, the job's checkpoints need about" in err[0]
    ), err
    assert not out.exists()


def test_budget_says_how_many_queried_pixels_were_answered(rounds, tmp_path):
    """A person who labels a few of the queried pixels: budget.json keeps the queried count
    and says how many were answered (the answers report's count)."""
    hum = _waiting(rounds, tmp_path)
    src = _folder(rounds, hum, tmp_path / "labels")
    for entry in read_manifest(hum)[1:]:  # only the first image answered
        write_png(src / f"{entry['id']}.png", np.full(entry["size"], 255, np.uint8))
    assert main(["import-labels", str(hum), str(src)]) == 0
    budget = json.loads((hum / "budget.json").read_text())
    report = json.loads((hum / "answers.json").read_text())
    assert budget["pixels_labelled_round"] == report["pixels_queried"]
    assert budget["pixels_answered_round"] == report["pixels_answered"]
    assert 0 < budget["pixels_answered_round"] < budget["pixels_labelled_round"]


def test_answers_are_written_as_a_set_or_not_at_all(rounds, tmp_path, capsys, monkeypatch):
    """A disk that fills after the second answer: no answers/ of the new import at all (no
    partial set), one line, exit 1; the rerun imports them all."""
    import errno

    from halo.acquisition import answers as answers_module

    hum = _waiting(rounds, tmp_path)
    src = _folder(rounds, hum, tmp_path / "labels")
    real, written = answers_module.write_png, []

    def filling(path, array):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real(path, array)

    monkeypatch.setattr(answers_module, "write_png", filling)
    capsys.readouterr()
    assert main(["import-labels", str(hum), str(src)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert not (hum / "answers").exists() and not list(hum.glob(".tmp-*"))
    assert not (hum / "budget.json").exists()
    monkeypatch.setattr(answers_module, "write_png", real)
    assert main(["import-labels", str(hum), str(src)]) == 0
    assert len(list((hum / "answers").rglob("*.png"))) == len(read_manifest(hum))


def test_a_link_out_of_the_labels_folder_is_refused(rounds, tmp_path, capsys):
    hum = _waiting(rounds, tmp_path)
    src = _folder(rounds, hum, tmp_path / "labels")
    outside = tmp_path / "outside"
    first = _first(hum)["id"]
    target = src / f"{first}.png"
    outside.mkdir()
    shutil.move(str(target), outside / "elsewhere.png")
    target.symlink_to(outside / "elsewhere.png")
    _refused(hum, ["import-labels", str(hum), str(src)], "leads out of", capsys)
