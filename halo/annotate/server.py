"""The labelling page's server: a Flask app over one round folder, and :func:`serve`.

Flask: already installed with MLflow, small and well kept, and enough for a local single-user
page. The server binds to 127.0.0.1 only and answers requests whose ``Host`` (and ``Origin``,
when sent) is ``127.0.0.1`` or ``localhost``; changes must be ``application/json`` (a foreign
web page cannot send those without a CORS preflight, which is never granted).

Endpoints (every error is ``{"error": "<one line>"}`` with a 4xx/5xx status)::

    GET  /                          the page (static/index.html, annotate.js, annotate.css)
    GET  /api/manifest              {"round_dir", "key", "classes", "unsure": 255, "regions",
                                     "images": [{"index", "id", "size", "regions", "query_pixels",
                                     "query_sha256", "left"}]}; "left" = regions left per image
    GET  /api/images/<i>            {"index", "id", "size", "query_sha256", "pixels": [N],
                                     "regions": [{"centre", "radius", "pixels", "members"}],
                                     "labels": [N] | null, "revision", "note": str | null}
    GET  /api/images/<i>/image.png  the image (uint8 RGB, the pool's size)
    PUT  /api/images/<i>/draft      {"query_sha256", "labels": [N], "base_revision"?} →
                                     {"saved": true, "left", "revision"}; 400 and nothing
                                     written for a bad payload; 409 {"conflict": true,
                                     "revision", "labels"} and nothing written when
                                     base_revision is given and the draft has changed since
    POST /api/finish                imports the drafts (:func:`import_answers`) → the counts of
                                     answers.json and "summary"; 400 with the message when the
                                     import refuses; then the server stops (:func:`serve`)

``pixels``, ``members`` and ``labels`` follow :mod:`halo.annotate.drafts`. The page keeps its
position (image, region) in the browser's ``localStorage`` under ``key``.

A draft's ``revision`` is a hash of its file ("" while there is none). Two tabs (or two people)
on one round each send the revision their labels started from; a save over a draft that changed
in between is refused with the newer labels, and the page merges them (its own changes win pixel
by pixel, the other pixels take the newer answers) and sends again, so neither tab's answers are
lost. A client that sends no ``base_revision`` overwrites, as scripts expect.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import webbrowser
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from flask import Flask, Response, abort, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from halo.acquisition.answers import import_answers
from halo.acquisition.queries import (
    ANSWERS_REPORT,
    MANIFEST_FILE,
    LabelsError,
    LazyAnswers,
    draft_path,
    query_colour,
    query_path,
    read_manifest,
)
from halo.annotate.drafts import (
    UNSURE,
    ImageQuery,
    build_answer,
    check_labels,
    draft_revision,
    image_query,
    read_draft,
    regions_left,
    untouched_regions_left,
    write_draft,
)
from halo.io import read_json

__all__ = ["HOST", "ORIGIN", "create_app", "serve"]

HOST = "127.0.0.1"
ORIGIN = "halo annotate"  # recorded in answers.json
STATIC = Path(__file__).parent / "static"
_LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_CACHED_QUERIES = 8


class _Round:
    """The server's view of one round: its manifest, the indexed queries (a few cached), a lock.

    Args:
        round_dir: a round folder with complete queries.
        on_finish: called with the import's summary once the answers are imported.
    """

    def __init__(self, round_dir: Path, on_finish: Callable[[dict], None] | None) -> None:
        self.round_dir = round_dir
        self.entries = read_manifest(round_dir)
        self.on_finish = on_finish
        self.lock = threading.Lock()  # drafts are written, and the import runs, one at a time
        self.finished = False
        self._queries: OrderedDict[int, ImageQuery] = OrderedDict()
        self._left: dict[int, int] = {}  # regions left per image, kept up to date by the saves
        manifest = (round_dir / MANIFEST_FILE).read_bytes()
        key = hashlib.sha256(str(round_dir.resolve()).encode() + b"\0" + manifest)
        self.key = key.hexdigest()[:16]

    def entry(self, index: int) -> dict:
        if not 0 <= index < len(self.entries):
            abort(404, f"no image {index}: the round has {len(self.entries)} queried images")
        return self.entries[index]

    def query(self, index: int) -> ImageQuery:
        """The :class:`ImageQuery` of image ``index`` (least recently used ones dropped)."""
        with self.lock:
            if index in self._queries:
                self._queries.move_to_end(index)
                return self._queries[index]
        query = image_query(self.round_dir, self.entry(index))
        with self.lock:
            self._queries[index] = query
            while len(self._queries) > _CACHED_QUERIES:
                self._queries.popitem(last=False)
        return query

    def left(self, index: int) -> int:
        """Regions left in image ``index`` (an unreadable draft counts as no draft); read from
        the drafts once, then updated by :meth:`saved`."""
        if index in self._left:
            return self._left[index]
        entry = self.entries[index]
        if not draft_path(self.round_dir, entry["id"]).is_file():
            left = untouched_regions_left(entry)
        else:
            try:
                labels = read_draft(self.round_dir, entry)
            except LabelsError:
                labels = None
            left = regions_left(self.query(index), labels)
        self._left[index] = left
        return left

    def revision(self, index: int) -> str:
        """Image ``index``'s :func:`draft_revision` (call under :attr:`lock` to pair it with
        what is read)."""
        return draft_revision(self.round_dir, self.entries[index]["id"])

    def saved(self, index: int, labels: np.ndarray, base: str | None) -> tuple[int, str]:
        """Write image ``index``'s draft (checked labels) unless ``base`` is given and is not
        the draft's revision (:class:`DraftConflict`); returns the regions left in it and the
        new revision."""
        left = regions_left(self.query(index), labels)
        with self.lock:
            if self.finished:
                abort(409, "the labels are imported; the page is closed")
            current = self.revision(index)
            if base is not None and base != current:
                raise DraftConflict(f"revision {base!r} is not the draft's {current!r}")
            revision = write_draft(self.round_dir, self.entries[index], labels)
            self._left[index] = left
            return left, revision


class DraftConflict(Exception):
    """A save from a stale revision: the draft changed since (another tab or person)."""


def _answers(labels: np.ndarray | None) -> list | None:
    """A draft's labels as JSON: null for an unanswered pixel (and for no draft at all)."""
    return None if labels is None else [None if v < 0 else v for v in labels.tolist()]


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify(error=" ".join(str(message).split())), status


def create_app(
    round_dir: str | os.PathLike, *, on_finish: Callable[[dict], None] | None = None
) -> Flask:
    """The labelling page's Flask app for one round (endpoints: module docstring).

    Args:
        round_dir: a round folder with complete queries.
        on_finish: called with the import's summary (a dict) after the finish response was sent.

    Raises:
        FileNotFoundError: the round has no complete queries.
    """
    state = _Round(Path(round_dir), on_finish)
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = 256 << 20
    app.extensions["halo_annotate"] = state

    _guards(app)
    _page_routes(app, state)
    _image_routes(app, state)
    _draft_route(app, state)
    _finish_route(app, state)
    return app


def _guards(app: Flask) -> None:
    """Requests from the page on 127.0.0.1 only, JSON bodies, and every error as one JSON line."""

    @app.before_request
    def _local_only():
        origin = request.headers.get("Origin")  # a browser's request from a page: its own only
        if (urlsplit(f"//{request.host}").hostname or "") not in _LOCAL_HOSTS or (
            origin is not None and origin != f"{request.scheme}://{request.host}"
        ):
            return _error(403, "the labelling page answers its own page on 127.0.0.1 only")
        if request.method in ("PUT", "POST") and not request.is_json:
            return _error(415, "expected a JSON body (Content-Type: application/json)")
        return None

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return _error(err.code or 500, err.description or err.name)

    @app.errorhandler(ValueError)  # LabelsError, a bad query mask: the round's content
    def _bad_content(err: ValueError):
        return _error(400, str(err))

    @app.errorhandler(RecursionError)  # a JSON body nested past Python's recursion limit
    def _too_deep(err: RecursionError):
        return _error(400, "the JSON body is nested too deeply")

    @app.errorhandler(FileNotFoundError)  # a file of the round is missing
    def _missing(err: FileNotFoundError):
        return _error(400, str(err))

    @app.errorhandler(OSError)  # the environment: a full disk, a read-only folder
    def _environment(err: OSError):
        cause = err.strerror or str(err)
        return _error(500, cause if err.filename is None else f"{err.filename}: {cause}")


def _page_routes(app: Flask, state: _Round) -> None:
    """The page itself and the round's manifest."""

    @app.get("/")
    def index():
        return send_file(STATIC / "index.html", max_age=0)

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/api/manifest")
    def manifest():
        images = [
            {
                "index": i,
                **{k: e[k] for k in ("id", "size", "regions", "query_pixels", "query_sha256")},
                "left": state.left(i),
            }
            for i, e in enumerate(state.entries)
        ]
        return jsonify(
            round_dir=str(state.round_dir),
            key=state.key,
            classes=state.entries[0]["classes"] if state.entries else [],
            query_color=list(query_colour(state.entries[0]["classes"] if state.entries else [])),
            unsure=UNSURE,
            regions=sum(len(e["regions"]) for e in state.entries),
            images=images,
            finished=state.finished,
        )


def _image_routes(app: Flask, state: _Round) -> None:
    """One image's queries and draft labels, and its picture."""

    @app.get("/api/images/<int:index>")
    def image(index: int):
        entry, query = state.entry(index), state.query(index)
        note, labels = None, None
        with state.lock:  # the labels and the revision they belong to
            revision = state.revision(index)
            try:
                labels = read_draft(state.round_dir, entry)
                if labels is None and revision:
                    note = (
                        "The saved draft of this image was made for other queries; it is ignored."
                    )
            except LabelsError as err:
                note = f"The saved draft is unusable ({err}); your next change replaces it."
        regions = [
            {**region, "members": members.tolist()}
            for region, members in zip(entry["regions"], query.members, strict=True)
        ]
        return jsonify(
            index=index,
            id=entry["id"],
            size=entry["size"],
            query_sha256=entry["query_sha256"],
            pixels=query.pixels.tolist(),
            regions=regions,
            labels=_answers(labels),
            revision=revision,
            note=note,
        )

    @app.get("/api/images/<int:index>/image.png")
    def image_png(index: int):
        path = query_path(state.round_dir, state.entry(index)["id"], "images")
        return send_file(path.resolve(), mimetype="image/png", max_age=0)


def _draft_route(app: Flask, state: _Round) -> None:
    """Autosave: an image's draft, refused when stale (409 with the newer labels)."""

    @app.put("/api/images/<int:index>/draft")
    def save_draft(index: int):
        entry = state.entry(index)
        body = request.get_json(silent=True)
        where = f"draft of {entry['id']!r}"
        if not isinstance(body, dict):
            return _error(400, f"{where}: expected a JSON object with query_sha256 and labels")
        if body.get("query_sha256") != entry["query_sha256"]:
            return _error(
                400, f"{where}: made for other queries (query_sha256 does not match the manifest)"
            )
        base = body.get("base_revision")
        if base is not None and not isinstance(base, str):
            return _error(400, f"{where}: base_revision must be a string (the draft's revision)")
        labels = check_labels(body.get("labels"), entry, where)  # LabelsError → 400
        try:
            left, revision = state.saved(index, labels, base)
        except DraftConflict:  # answered with the newer labels, read afresh
            with state.lock:
                try:
                    newer = read_draft(state.round_dir, entry)
                except LabelsError:
                    newer = None
                revision = state.revision(index)
            message = f"{where}: changed since revision {base!r} (another tab or person saved it)"
            response = jsonify(
                error=message, conflict=True, revision=revision, labels=_answers(newer)
            )
            return response, 409
        return jsonify(saved=True, left=left, revision=revision)


def _finish_route(app: Flask, state: _Round) -> None:
    """Finish: import the drafts as the round's answers and complete the round."""

    @app.post("/api/finish")
    def finish():
        with state.lock:
            if state.finished:
                return _error(409, "the labels are imported already")
            entries = {entry["id"]: entry for entry in state.entries}

            def answer(image_id: str) -> np.ndarray:  # each query read afresh, image by image
                entry = entries[image_id]
                return build_answer(
                    image_query(state.round_dir, entry), read_draft(state.round_dir, entry)
                )

            answers = LazyAnswers(list(entries), answer)
            report = import_answers(state.round_dir, answers, origin=ORIGIN)  # LabelsError → 400
            state.finished = True
        counts = read_json(state.round_dir / ANSWERS_REPORT, "answers report")
        summary = {
            "round": report.round,
            **{k: counts[k] for k in ("images", "pixels_queried", "pixels_answered")},
            "pixels_unanswered": counts["pixels_unanswered"],
            "masks": str(state.round_dir / "masks"),
        }
        summary["summary"] = (
            f"round {report.round} complete: {summary['pixels_answered']} of "
            f"{summary['pixels_queried']} queried pixels labelled "
            f"({summary['pixels_unanswered']} left unlabelled) in {summary['images']} images "
            f"→ {summary['masks']}"
        )
        response = jsonify(summary)
        if state.on_finish is not None:  # after the response went out: serve() stops then
            response.call_on_close(lambda: state.on_finish(summary))
        return response


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without a log line per request (errors are still logged)."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def _bind(port: int, app: Flask) -> BaseWSGIServer:
    """A threaded WSGI server of ``app`` listening on ``127.0.0.1:port`` (0: any free port).

    Raises:
        OSError: the port cannot be bound (in use, not allowed); one line naming it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name == "posix":  # as werkzeug does: restart at once despite TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OSError(
            err.errno,
            f"cannot listen on {HOST}:{port} ({err.strerror or err}); choose another port with "
            "--port",
        ) from None
    try:  # werkzeug binds no socket of its own with fd= (it would sys.exit on a busy port)
        return make_server(
            HOST, port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
        )
    finally:
        sock.close()  # the server holds a duplicate


def serve(round_dir: str | os.PathLike, port: int = 8321, open_browser: bool = False) -> int:
    """Serve the labelling page of a round's queries until the person finishes (or Ctrl+C).

    Args:
        round_dir: a round folder with complete queries.
        port: the port on 127.0.0.1 (0: any free port; the printed URL names it).
        open_browser: open the page in the default browser.

    Returns:
        0 once the answers are imported (the round is complete); 130 when stopped with Ctrl+C
        (the drafts are kept: serving again resumes).

    Raises:
        FileNotFoundError: the round has no complete queries (one line naming the folder).
        OSError: the port cannot be bound.
    """
    round_dir = Path(round_dir)
    entries = read_manifest(round_dir)
    done, summary = threading.Event(), {}

    def finished(result: dict) -> None:
        summary.update(result)
        done.set()

    server = _bind(port, create_app(round_dir, on_finish=finished))

    def stop_when_finished() -> None:
        done.wait()
        if summary:
            server.shutdown()

    threading.Thread(target=stop_when_finished, name="annotate-stop", daemon=True).start()
    url = f"http://{HOST}:{server.server_address[1]}/"
    regions = sum(len(e["regions"]) for e in entries)
    print(
        f"labelling page: {url} ({len(entries)} images, {regions} regions) - Ctrl+C to stop",
        flush=True,
    )
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print(
            f"stopped; the drafts in {round_dir / 'drafts'} are kept: `halo annotate {round_dir}` "
            "resumes",
            file=sys.stderr,
            flush=True,
        )
        return 130
    finally:
        done.set()
        server.server_close()
    print(summary["summary"], flush=True)
    return 0
