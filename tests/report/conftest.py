"""Run records for the report's tests: a small study with known answers, built by
:func:`halo.runs.run_record`, and a PNG check."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from halo.runs import run_record

BENCH = "synth-gta2cs"
R18 = "deeplabv3plus-r18"
CLASSES = ["road", "car", "bike", "pole", "rare"]
SHARES = {"road": 0.5, "car": 0.3, "bike": 0.15, "pole": 0.05, "rare": None}
# radius = -2 * share + 1 exactly (Pearson r = -1); "rare" has no share, so it is dropped
RADII = {"road": 0.0, "car": 0.4, "bike": 0.7, "pole": 0.9, "rare": 3.0}

# (method, variant, budget) -> mIoU per seed 0, 1, 2
ACTIVE = {
    ("halo", "hyperbolic-hfr", 0.01): [40.0, 42.0, 44.0],  # 42.0 ± 2.0
    ("halo", "hyperbolic-hfr", 0.022): [50.0, 51.0, 53.0],  # 51.333 ± 1.528
    ("ripu", "euclidean-d512", 0.01): [30.0, 33.0, 36.0],  # 33.0 ± 3.0
    ("ripu", "euclidean-d512", 0.022): [52.0, 54.0, 50.0],  # 52.0 ± 2.0
}


def record(
    method: str,
    kind: str,
    variant: str,
    seed: int,
    miou: float | None,
    *,
    budget: float | None = None,
    iou: dict | None = None,
    shares: dict | None = None,
    radii: dict | None = None,
    backbone: str = R18,
    benchmark: str = BENCH,
) -> dict:
    """A record built by halo.runs.run_record from a fake evaluation (one round if active)."""
    metrics = {
        "miou": miou,
        "miou13": None,
        "per_class_iou": iou or dict.fromkeys(CLASSES, 50.0),
        "class_names": list(CLASSES),
        "class_pixel_share": shares or dict(SHARES),
        "class_mean_radius": radii or dict.fromkeys(CLASSES, 1.0),
        "step": 100,
    }
    budgets = []
    if kind == "active":
        budgets = [
            {
                "round": 1,
                "pixels_labelled_cumulative": 10,
                "fraction_cumulative": budget,
                "regions": 2,
            }
        ]
    identity = {"benchmark": benchmark, "backbone": backbone, "method": method, "seed": seed}
    return run_record(
        **identity,
        kind=kind,
        variant=variant,
        metrics=[metrics],
        budgets=budgets,
        budget=budget if kind == "active" else None,
    )


def study() -> list[dict]:
    """2 methods x 2 budgets x 3 seeds, source-only of two variants, supervised with one seed."""
    recs = []
    for (method, variant, budget), values in ACTIVE.items():
        for seed, miou in enumerate(values):
            iou = dict.fromkeys(CLASSES, 50.0) | {"rare": None}
            radii = dict.fromkeys(CLASSES, 1.0)
            if (method, budget) == ("halo", 0.01):
                iou |= {"road": 90.0 + 2 * seed, "car": [50.0, None, 70.0][seed]}
            if (method, budget) == ("halo", 0.022):
                # the seeds scatter around RADII and average back to it
                radii = {c: r + 0.1 * (seed - 1) for c, r in RADII.items()}
            if (method, budget) == ("halo", 0.01):
                radii = {c: -r for c, r in RADII.items()}  # would give r = +1
            recs.append(
                record(method, "active", variant, seed, miou, budget=budget, iou=iou, radii=radii)
            )
    for seed, miou in enumerate([20.0, 22.0]):  # 21.0 ± 1.414
        recs.append(
            record(
                "source",
                "source",
                "hyperbolic-hfr",
                seed,
                miou,
                radii=dict.fromkeys(CLASSES, 1.0) | {"road": 2.0},
            )
        )
    recs.append(record("source", "source", "euclidean-d512", 0, 18.0))
    recs.append(record("supervised", "supervised", "hyperbolic-hfr", 0, 65.4))
    return recs


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.verify()
    with Image.open(path) as img:
        assert img.size[0] > 50 and img.size[1] > 50
