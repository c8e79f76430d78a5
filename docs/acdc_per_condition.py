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

from halo.config import load_config
from halo.data import build_dataset
from halo.data.acdc import CONDITIONS
from halo.data.labels import get_protocol
from halo.engine.evaluate import evaluate, mean_iou, per_class_iou
from halo.engine.train import load_checkpoint, load_weights
from halo.models.segmenter import build_backbone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder with config.yaml and model.pt")
    ap.add_argument("data_root", type=Path, help="folder holding acdc/")
    args = ap.parse_args()
    cfg = load_config(args.run / "config.yaml")
    protocol = get_protocol(cfg.bench.protocol)
    model = build_backbone(cfg.backbone, protocol.num_classes, **cfg.model_options())
    load_weights(model, load_checkpoint(args.run / "model.pt"), where=str(args.run / "model.pt"))
    out, confusion = {}, 0
    for cond in CONDITIONS:  # each image is evaluated once; "all" sums the confusion matrices
        ds = build_dataset(
            "acdc",
            args.data_root / "acdc",
            "val",
            cfg.sizes[1],
            protocol=cfg.bench.protocol,
            conditions=(cond,),
        )
        res = evaluate(model, ds, batch_size=cfg.eval.batch_size, progress=False)
        out[cond] = round(100 * res.miou, 1)
        confusion = confusion + res.confusion
    out["all"] = round(100 * mean_iou(per_class_iou(confusion)), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
