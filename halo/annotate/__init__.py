"""The labelling page of a round's queries: ``halo annotate ROUND_DIR`` (docs/design.md, "Human
in the loop").

A local web page (served on 127.0.0.1 by :func:`serve`; plain HTML, CSS and JavaScript in
``static/``, no build step and nothing fetched from the network) shows one queried image at a
time: the image with its queried pixels tinted, the current region magnified with some context,
a class palette (number keys), "unsure / ignore", undo and a count of the regions left. Every
change is saved at once as the image's draft (:mod:`halo.annotate.drafts`), so a closed tab or a
stopped server loses nothing; finishing imports the drafts with
:func:`~halo.acquisition.answers.import_answers`, which completes the round.

- :mod:`halo.annotate.drafts`: the draft format, and the answers built from the drafts;
- :mod:`halo.annotate.server`: the Flask app (:func:`create_app`, endpoints) and :func:`serve`.
"""

from __future__ import annotations

from halo.annotate.server import create_app, serve

__all__ = ["create_app", "serve"]
