"""The labelling page's server with Flask's test client (no browser): the manifest, drafts saved
and restored, bad drafts refused with nothing written, and the finish that imports the drafts;
:func:`serve` as the command runs it."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from halo.acquisition.queries import draft_path, read_manifest
from halo.acquisition.rounds import mask_path, read_mask, round_complete
from halo.annotate import create_app, serve
from halo.annotate import server as server_module
from tests.annotate.conftest import free_port, region_masks


def _client(round_dir: Path, on_finish=None):
    return create_app(round_dir, on_finish=on_finish).test_client()


def _labels(client, index: int) -> dict:
    response = client.get(f"/api/images/{index}")
    assert response.status_code == 200, response.json
    return response.json


def _put(client, index: int, body) -> object:
    return client.put(f"/api/images/{index}/draft", json=body)


def test_manifest_lists_the_images_regions_and_classes(round_dir):
    client = _client(round_dir)
    manifest = client.get("/api/manifest").json
    assert [i["id"] for i in manifest["images"]] == ["city/img_a", "img_b"]
    assert [i["left"] for i in manifest["images"]] == [3, 4] and manifest["regions"] == 7
    assert len(manifest["classes"]) == 19 and manifest["classes"][13]["name"] == "car"
    assert manifest["unsure"] == 255 and len(manifest["key"]) == 16
    page = client.get("/")
    assert page.status_code == 200 and b"annotate.js" in page.data
    for name in ("annotate.js", "annotate.css"):
        assert client.get(f"/static/{name}").status_code == 200
    image = client.get("/api/images/1/image.png")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert client.get("/api/images/2").status_code == 404
    assert "no image 2" in client.get("/api/images/2").json["error"]


def test_image_geometry_matches_the_query(round_dir):
    client = _client(round_dir)
    regions = region_masks(round_dir)
    for index, entry in enumerate(read_manifest(round_dir)):
        data = _labels(client, index)
        assert data["labels"] is None and data["note"] is None
        pixels = np.array(data["pixels"])
        assert pixels.size == entry["query_pixels"]
        for region, expected in zip(data["regions"], regions[entry["id"]], strict=True):
            assert np.array_equal(pixels[region["members"]], np.flatnonzero(expected))


def test_drafts_are_saved_and_restored(round_dir):
    client = _client(round_dir)
    entry = read_manifest(round_dir)[0]
    data = _labels(client, 0)
    labels = [None] * entry["query_pixels"]
    for p in data["regions"][0]["members"]:
        labels[p] = 7
    for p in data["regions"][2]["members"]:
        labels[p] = 255
    response = _put(client, 0, {"query_sha256": entry["query_sha256"], "labels": labels})
    assert response.status_code == 200 and response.json["saved"] is True
    assert (
        response.json["left"] == 1 and response.json["revision"] == _labels(client, 0)["revision"]
    )
    draft = json.loads(draft_path(round_dir, "city/img_a").read_text())
    assert draft["labels"] == labels and draft["query_sha256"] == entry["query_sha256"]
    restarted = _client(round_dir)  # a new server: everything restored
    assert _labels(restarted, 0)["labels"] == labels
    assert [i["left"] for i in restarted.get("/api/manifest").json["images"]] == [1, 4]


def test_a_save_from_a_stale_revision_is_refused_with_the_newer_labels(round_dir):
    client = _client(round_dir)
    entry = read_manifest(round_dir)[0]
    data = _labels(client, 0)
    assert data["revision"] == ""  # no draft yet
    n, regions = entry["query_pixels"], data["regions"]

    def answered(region: int, value: int, labels=None) -> list:
        labels = list(labels or [None] * n)
        for p in regions[region]["members"]:
            labels[p] = value
        return labels

    first = answered(0, 7)  # tab A, from no draft
    body = {"query_sha256": entry["query_sha256"], "labels": first, "base_revision": ""}
    saved = _put(client, 0, body).json
    assert saved["revision"] not in ("", None)
    draft = draft_path(round_dir, "city/img_a").read_text()
    # tab B started from no draft too: refused, nothing written, told what A saved
    stale = {**body, "labels": answered(1, 3)}
    response = _put(client, 0, stale)
    assert response.status_code == 409 and response.json["conflict"] is True
    assert response.json["labels"] == first and response.json["revision"] == saved["revision"]
    assert "changed since revision ''" in response.json["error"]
    assert draft_path(round_dir, "city/img_a").read_text() == draft
    # B merged and sends from A's revision: accepted, and the revision moves on
    merged = answered(1, 3, first)
    again = _put(client, 0, {**stale, "labels": merged, "base_revision": saved["revision"]})
    assert again.status_code == 200 and again.json["revision"] != saved["revision"]
    assert (
        _labels(client, 0)["labels"] == merged
        and _labels(client, 0)["revision"] == again.json["revision"]
    )
    # no base_revision: a plain overwrite, as scripts expect; a non-string base is refused
    assert (
        _put(client, 0, {"query_sha256": entry["query_sha256"], "labels": first}).status_code == 200
    )
    bad = _put(client, 0, {**body, "base_revision": 3})
    assert bad.status_code == 400 and "base_revision must be a string" in bad.json["error"]


def test_bad_drafts_are_refused_and_nothing_is_written(round_dir):
    client = _client(round_dir)
    entry = read_manifest(round_dir)[1]
    n, sha = entry["query_pixels"], entry["query_sha256"]
    path = draft_path(round_dir, "img_b")
    for body, match in (
        ({"query_sha256": sha, "labels": [None] * (n + 1)}, f"a list of {n} labels"),
        ({"query_sha256": sha, "labels": [None] * (n - 1) + [19]}, "unknown class id 19"),
        ({"query_sha256": sha, "labels": [None] * (n - 1) + [-1]}, "unknown class id -1"),
        ({"query_sha256": "0" * 64, "labels": [None] * n}, "made for other queries"),
        ({"labels": [None] * n}, "made for other queries"),
        ([1, 2, 3], "expected a JSON object"),
    ):
        response = _put(client, 1, body)
        assert response.status_code == 400, body
        assert match in response.json["error"] and "\n" not in response.json["error"]
        assert not path.exists()
    response = client.put("/api/images/1/draft", data="labels", content_type="text/plain")
    assert response.status_code == 415 and not path.exists()
    good = [None] * (n - 1) + [2]
    assert _put(client, 1, {"query_sha256": sha, "labels": good}).status_code == 200
    before = path.read_bytes()
    assert _put(client, 1, {"query_sha256": sha, "labels": [300] * n}).status_code == 400
    assert path.read_bytes() == before  # a refused draft never replaces a good one


def test_a_stale_or_broken_draft_is_reported_not_used(round_dir):
    client = _client(round_dir)
    entry = read_manifest(round_dir)[1]
    path = draft_path(round_dir, "img_b")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"query_sha256": "1" * 64, "labels": [3] * 5}))
    data = _labels(client, 1)
    assert data["labels"] is None and "other queries" in data["note"]
    path.write_text(json.dumps({"query_sha256": entry["query_sha256"], "labels": [3] * 5}))
    data = _labels(client, 1)
    assert data["labels"] is None and "unusable" in data["note"]
    assert client.get("/api/manifest").json["images"][1]["left"] == 4


def test_only_local_pages_may_call(round_dir):
    client = _client(round_dir)
    assert client.get("/api/manifest", headers={"Host": "evil.example"}).status_code == 403
    response = client.post("/api/finish", json={}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403 and not round_complete(round_dir)
    assert client.post("/api/finish", data="{}").status_code == 415  # not application/json
    # another page on this machine (another port, or the other name) is not this page
    own = {"Host": "127.0.0.1:5000"}
    for origin in ("http://localhost:8080", "http://127.0.0.1:5001", "http://localhost:5000"):
        response = client.get("/api/manifest", headers={**own, "Origin": origin})
        assert response.status_code == 403, origin
    ok = client.get("/api/manifest", headers={**own, "Origin": "http://127.0.0.1:5000"})
    assert ok.status_code == 200


def test_json_nested_too_deeply_is_a_bad_request(round_dir):
    client = _client(round_dir)
    body = "[" * 100_000 + "]" * 100_000
    response = client.put(
        "/api/images/0/draft", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "nested too deeply" in response.json["error"]


def test_finish_imports_what_the_drafts_say(round_dir):
    finished = []
    client = _client(round_dir, on_finish=finished.append)
    regions = region_masks(round_dir)
    expected = {}
    for index, entry in enumerate(read_manifest(round_dir)):
        data = _labels(client, index)
        labels = [None] * entry["query_pixels"]
        answer = np.full(entry["size"], 255, np.uint8)
        for k, (region, mask) in enumerate(zip(data["regions"], regions[entry["id"]], strict=True)):
            if k == 1:
                continue  # left unlabelled
            value = 255 if k == 2 else 3 * index + k
            for p in region["members"]:
                labels[p] = value
            answer[mask] = value
        labels[data["regions"][0]["members"][4]] = 18  # one single pixel (the centre)
        answer[tuple(data["regions"][0]["centre"])] = 18
        expected[entry["id"]] = answer
        body = {"query_sha256": entry["query_sha256"], "labels": labels}
        assert _put(client, index, body).status_code == 200
    response = client.post("/api/finish", json={})
    assert response.status_code == 200, response.json
    summary = response.json
    assert summary["images"] == 2 and summary["pixels_queried"] == 52
    assert summary["pixels_unanswered"] == (9 + 4) + (4 + 8)  # regions 2 and 3 of each image
    assert summary["pixels_answered"] == 52 - 25 and "round 1 complete" in summary["summary"]
    assert finished == []
    response.close()  # as a server does once the response went out
    assert finished == [summary]
    for image_id, answer in expected.items():
        assert np.array_equal(read_mask(mask_path(round_dir, image_id)), answer), image_id
    assert round_complete(round_dir)
    assert client.post("/api/finish", json={}).status_code == 409
    entry = read_manifest(round_dir)[0]
    body = {"query_sha256": entry["query_sha256"], "labels": [None] * entry["query_pixels"]}
    assert _put(client, 0, body).status_code == 409


def test_finish_refuses_a_wrong_answer_and_writes_nothing(round_dir, monkeypatch):
    client = _client(round_dir)
    entry = read_manifest(round_dir)[0]
    path = draft_path(round_dir, entry["id"])
    path.parent.mkdir(parents=True)
    labels = [30] + [None] * (entry["query_pixels"] - 1)  # edited by hand: unknown class
    path.write_text(json.dumps({"query_sha256": entry["query_sha256"], "labels": labels}))
    response = client.post("/api/finish", json={})
    assert response.status_code == 400 and "unknown class id 30" in response.json["error"]
    assert str(path) in response.json["error"]
    assert not round_complete(round_dir) and not (round_dir / "masks").exists()
    assert not (round_dir / "answers").exists()
    path.unlink()

    def outside(query, labels):  # an answer outside the queried pixels: import_answers refuses
        answer = np.full(query.entry["size"], 255, np.uint8)
        answer[23, 39] = 1
        return answer

    monkeypatch.setattr(server_module, "build_answer", outside)
    response = client.post("/api/finish", json={})
    assert response.status_code == 400
    assert "outside the queried regions" in response.json["error"]
    assert not round_complete(round_dir) and not (round_dir / "masks").exists()


def _request(url: str, method: str = "GET", body=None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_prints_the_url_and_returns_0_once_finished(round_dir, capsys):
    port = free_port()
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=serve(round_dir, port=port)))
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):  # until it listens
            try:
                manifest = _request(f"{url}/api/manifest")
                break
            except OSError:
                threading.Event().wait(0.05)
        assert len(manifest["images"]) == 2
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*--port"):  # taken now
            serve(round_dir, port=port)
        summary = _request(f"{url}/api/finish", "POST", {})
    finally:
        thread.join(timeout=20)
    assert not thread.is_alive() and result == {"code": 0}
    out = capsys.readouterr().out
    assert f"labelling page: http://127.0.0.1:{port}/ (2 images, 7 regions)" in out
    assert summary["summary"] in out and summary["pixels_answered"] == 0
    assert round_complete(round_dir)


def test_serve_without_queries_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        serve(tmp_path, port=0)


def test_the_command_exits_2_without_queries_and_1_on_a_busy_port(round_dir, tmp_path, capsys):
    from halo.cli import main

    assert main(["annotate", str(tmp_path / "nothing")]) == 2
    assert "has no queries" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["annotate", str(round_dir), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and len(err.strip().splitlines()) == 1


def test_a_round_named_relative_to_the_working_directory_serves_its_images(round_dir, monkeypatch):
    """`halo annotate runs/.../round1`: files are found from the working directory, not from the
    package's folder (Flask's root)."""
    from halo.acquisition.queries import query_path

    monkeypatch.chdir(round_dir.parent)
    client = _client(Path(round_dir.name))
    for index, entry in enumerate(read_manifest(round_dir)):
        response = client.get(f"/api/images/{index}/image.png")
        assert response.status_code == 200
        assert response.data == query_path(round_dir, entry["id"], "images").read_bytes()


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(round_dir, port, capsys):
    from halo.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["annotate", str(round_dir), "--port", port])
    assert exit_.value.code == 2
    assert "expected a port number 0..65535" in capsys.readouterr().err
