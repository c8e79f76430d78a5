"""mIoU of a checkpoint on the ACDC validation set, per condition and over all four.

The README's ``synth-cs2acdc`` calibration table comes from this script:

    uv run python docs/acdc_per_condition.py RUN_DIR DATA_ROOT

``RUN_DIR`` holds ``config.yaml`` and ``model.pt`` (any source, active or supervised run);
``DATA_ROOT`` holds ``acdc/`` in ACDC's layout (``data/synth`` for the synthetic benchmark).
Prints one JSON object: ``{"fog": .., "night": .., "rain": .., "snow": .., "all": ..}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from halo.config import load_run
from halo.data import build_dataset
from halo.data.acdc import CONDITIONS
from halo.engine.evaluate import evaluate, mean_iou, per_class_iou
from halo.engine.restore import model_from_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder with config.yaml and model.pt")
    ap.add_argument("data_root", type=Path, help="folder holding acdc/")
    args = ap.parse_args()
    run = load_run(args.run / "config.yaml")
    model, _ = model_from_checkpoint(run, args.run / "model.pt", torch.device("cpu"))
    out, confusion = {}, 0
    for cond in CONDITIONS:  # each image is evaluated once; "all" sums the confusion matrices
        ds = build_dataset(
            "acdc",
            args.data_root / "acdc",
            "val",
            run.target_size,
            protocol=run.benchmark.protocol,
            conditions=(cond,),
        )
        res = evaluate(model, ds, batch_size=run.config.eval.batch_size, progress=False)
        out[cond] = round(100 * res.miou, 1)
        confusion = confusion + res.confusion
    out["all"] = round(100 * mean_iou(per_class_iou(confusion)), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
