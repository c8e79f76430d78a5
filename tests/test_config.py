"""Config loading: strict keys, types, ranges and registry names, each with a clear message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from halo.config import BENCHMARKS, ConfigError, build_config, load_config, resolve, to_dict

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_load():
    """Every shipped run config loads; workflow grids (a top-level `benchmarks` key, checked by
    the workflow's schema) name run configs that load."""
    import yaml

    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if "benchmarks" in data:  # a workflow grid (configs/workflow.yaml, configs/study.yaml)
            for bench, spec in data["benchmarks"].items():
                cfg = load_config(ROOT / spec["config"], spec.get("set", []))
                assert cfg.benchmark == bench, (path, bench)
            continue
        if path.parent.name == "benchmarks":
            continue
        load_config(path)


def test_defaults_and_overrides():
    cfg = build_config({"method": "entropy"}, ["train.batch_size=4", "active.budget=0.022"])
    assert cfg.method == "entropy" and cfg.train.batch_size == 4 and cfg.active.budget == 0.022
    assert isinstance(cfg.train.lr, float)
    assert to_dict(cfg)["train"]["batch_size"] == 4
    assert resolve(build_config({"target_size": [64, 128]})).target_size == (64, 128)


def test_method_presets_resolve_the_model():
    halo = resolve(build_config({"method": "halo"}))
    assert halo.model_options["head"] == "hyperbolic" and halo.model_options["hfr"] is True
    assert (halo.active_radius, halo.mask_radius) == (1, 5)
    ripu = resolve(build_config({"method": "ripu"}))
    assert ripu.model_options["head"] == "euclidean"
    assert ripu.model_options["decoder_channels"] == 512
    assert (ripu.active_radius, ripu.mask_radius) == (1, 3)
    assert halo.model_key != ripu.model_key
    assert resolve(build_config({"method": "halo-nohfr"})).model_key == "hyperbolic"
    # an explicit model key wins over the preset
    run = resolve(build_config({"method": "halo", "model": {"hfr": False}}))
    assert run.model_options["hfr"] is False


def test_fingerprint_changes_with_config():
    a, b = resolve(build_config({})), resolve(build_config({"seed": 1}))
    assert a.fingerprint() == resolve(build_config({})).fingerprint() != b.fingerprint()


@pytest.mark.parametrize(
    ("data", "overrides", "match"),
    [
        (
            {"trian": {}},
            [],
            r"unknown config key 'trian' \(did you mean 'train'\?\); valid keys: benchmark",
        ),
        (
            {"train": {"batchsize": 4}},
            [],
            r"'train.batchsize' \(did you mean 'batch_size'\?\); valid keys of train",
        ),
        ({}, ["model.haed=euclidean"], r"'model.haed'"),
        ({"benchmark": "kitti2cs"}, [], r"valid: synth-gta2cs"),
        ({"backbone": "vgg"}, [], r"valid: deeplabv3plus-r101"),
        ({"method": "coreset"}, [], r"method: .*coreset.*random"),
        ({"model": {"head": "spherical"}}, [], r"model.head.*valid: "),
        ({"active": {"budget": 0}}, [], r"active.budget: expected a fraction in \(0, 1\]"),
        ({"active": {"budget": 1.5}}, [], r"active.budget"),
        ({"active": {"rounds": 0}}, [], r"active.rounds: expected >= 1"),
        ({"train": {"batch_size": "8"}}, [], r"train.batch_size: expected int, got '8'"),
        ({"target_size": [100, 200]}, [], r"target_size \[100, 200\].*16"),
        ({"target_size": [64]}, [], r"target_size: expected \[height, width\]"),
        ({}, ["train.lr"], r"expected key=value"),
        ({"train": {"warmup_shift": 2}}, [], r"train.warmup_shift: expected 0 or 1, got 2"),
        ({"train": {"warmup_shift": 0}}, [], r"train.warmup_shift: 0 needs train.warmup_start > 0"),
        (
            {"train": {"warmup_start": 1.0}},
            [],
            r"train.warmup_start: expected a factor in \[0, 1\)",
        ),
    ],
)
def test_bad_config_is_a_clear_error(data, overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config(data, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("seed: 1\nmethd: halo\n")
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown config key 'methd'"):
        load_config(typo)


def test_every_benchmark_is_consistent():
    for b in BENCHMARKS.values():
        assert b.protocol in ("cityscapes19", "synthia16")
        assert (b.protocol == "synthia16") == ("synthia" in b.name)
        build_config({"benchmark": b.name})


def test_exponent_floats_without_a_dot():
    """YAML 1.1 reads 1e-3 as a string; a float key takes it as the number it is."""
    cfg = build_config({"train": {"weight_decay": "5e-4"}}, ["train.lr=1e-3"])
    assert cfg.train.lr == 1e-3 and cfg.train.weight_decay == 5e-4
    with pytest.raises(ConfigError, match=r"train\.lr: expected float"):
        build_config({}, ["train.lr=1e-3x"])


@pytest.mark.parametrize(
    "override",
    ["train.lr=abc", "nokey=1", "seed=-1", "train.lr=.inf", "model.head=nope", "active.budget=2"],
)
def test_an_error_from_set_names_the_set_not_the_file(tmp_path, override):
    good = tmp_path / "good.yaml"
    good.write_text("train: {lr: 0.01}\n")
    with pytest.raises(ConfigError) as err:
        load_config(good, ["seed=3", override, "train.batch_size=2"])
    assert str(err.value).startswith(f"--set {override}: "), err.value
    assert "good.yaml" not in str(err.value)


def test_an_error_in_the_file_names_the_file_even_with_sets(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: -1}\n")
    with pytest.raises(ConfigError, match=r"^.*bad\.yaml: train\.lr"):
        load_config(bad, ["seed=1"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.optimizer=adam",
            r"train\.optimizer: expected one of sgd, adamw, riemannian-sgd, got 'adam'",
        ),
        ("train.schedule=step", r"train\.schedule: expected one of poly, cosine, got 'step'"),
        (
            "train.source_order=classwise",
            r"train\.source_order: expected one of uniform, balanced, got 'classwise'",
        ),
        ("train.round_lr=0", r"train\.round_lr: expected > 0, got 0"),
        ("train.round_warmup_steps=-1", r"train\.round_warmup_steps: expected >= 0, got -1"),
        ("train.adam_beta2=1", r"train\.adam_beta2: expected a value in \[0, 1\), got 1"),
    ],
)
def test_optimiser_and_schedule_keys_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config({}, [override])


def test_optimiser_and_schedule_keys_default_to_the_sgd_poly_regime():
    t = build_config({}).train
    assert (t.optimizer, t.schedule, t.round_lr, t.round_warmup_steps) == (
        "sgd",
        "poly",
        None,
        None,
    )
    t = build_config({}, ["train.optimizer=adamw", "train.round_lr=2e-4"]).train
    assert t.optimizer == "adamw" and t.phase_rate("active") == (2e-4, t.warmup_steps)


@pytest.mark.parametrize("base", ["random", "entropy", "ripu", "halo"])
def test_negative_learning_twins_fix_the_official_weight_and_share_the_source_model(base):
    """``<base>-nl`` trains with negative learning 1.0 whatever the config says, and shares its
    base's source model (same model key); the base keeps the config's value."""
    twin = resolve(build_config(overrides=[f"method={base}-nl", "train.negative_learning=0.3"]))
    plain = resolve(build_config(overrides=[f"method={base}", "train.negative_learning=0.3"]))
    assert twin.config.train.negative_learning == 1.0
    assert plain.config.train.negative_learning == 0.3
    assert twin.model_key == plain.model_key and twin.mask_radius == plain.mask_radius


def test_round_starts_place_the_rounds_and_a_bad_list_names_the_key():
    run = resolve(
        build_config(
            overrides=["active.round_starts=[0, 0.25, 0.5, 0.67, 0.83]", "train.round_steps=100"]
        )
    )
    spans = [run.round_span(r) for r in range(1, 6)]
    assert spans == [
        (0, 125, 500),
        (125, 250, 500),
        (250, 335, 500),
        (335, 415, 500),
        (415, 500, 500),
    ]
    even = resolve(build_config(overrides=["train.round_steps=100"]))
    assert [even.round_span(r) for r in range(1, 6)] == [
        (100 * i, 100 * i + 100, 500) for i in range(5)
    ]
    for bad in (
        "[0, 0.5]",
        "[0.1, 0.2, 0.3, 0.4, 0.5]",
        "[0, 0.3, 0.2, 0.6, 0.8]",
        "[0, 0.2, 0.4, 0.6, 1.0]",
    ):
        with pytest.raises(ConfigError, match=r"active\.round_starts: expected 5 increasing"):
            build_config(overrides=[f"active.round_starts={bad}"])
    with pytest.raises(ConfigError, match=r"active\.round_starts"):
        build_config(overrides=["active.round_starts=[0, a]"])


def test_pretrained_encoders_get_frozen_batchnorm_unless_told_otherwise():
    plain = resolve(build_config(overrides=[]))
    assert "frozen_bn" not in plain.model_options
    real = resolve(build_config(overrides=["model.encoder_weights=imagenet"]))
    assert real.model_options["frozen_bn"] is True and real.model_key.endswith("-imagenet")
    off = resolve(
        build_config(overrides=["model.encoder_weights=imagenet", "model.frozen_bn=false"])
    )
    assert "frozen_bn" not in off.model_options and off.model_key.endswith("-imagenet-bn")
    on = resolve(build_config(overrides=["model.frozen_bn=true"]))
    assert on.model_options["frozen_bn"] is True and on.model_key.endswith("-frozenbn")


def test_a_selection_split_is_its_own_held_out_data(tmp_path):
    """val_split=select evaluates on the synthetic selection split: other cities, other images
    than the reported val split."""
    import numpy as np
    from PIL import Image

    from halo.cli import main

    for split in ("val", "select"):
        argv = ["synth", "--style", "cityscapes", "--split", split, "--count", "3"]
        assert (
            main([*argv, "--size", "32x64", "--out", str(tmp_path / "cityscapes"), "--quiet"]) == 0
        )
    images = {
        split: sorted((tmp_path / "cityscapes" / "leftImg8bit" / split).rglob("*.png"))
        for split in ("val", "select")
    }
    names = [{p.name for p in v} for v in images.values()]
    assert len(images["select"]) == 3 and not names[0] & names[1]
    arrays = [{np.asarray(Image.open(p)).tobytes() for p in v} for v in images.values()]
    assert not arrays[0] & arrays[1]
    run = resolve(build_config(overrides=["val_split=select", f"data_root={tmp_path}"]))
    assert run.benchmark.val.split == "select" and run.benchmark.target.split == "train"
    with pytest.raises(ConfigError, match="val_split"):
        build_config(overrides=["val_split=a/b"])


def test_method_overrides_apply_to_their_method_only_and_under_set(tmp_path):
    from halo.config import load_run

    path = tmp_path / "c.yaml"
    path.write_text("method_overrides:\n  RIPU:\n    train: {local_consistency: 0.1, lr: 0.01}\n")
    for sets, want in (
        (["method=ripu"], (0.1, 0.01)),
        (["method=halo"], (0.0, 1e-3)),
        (["method=ripu", "train.lr=0.5"], (0.1, 0.5)),  # --set wins
    ):
        train = load_run(path, sets).config.train
        assert (train.local_consistency, train.lr) == want, sets
    path.write_text("method_overrides:\n  rpu:\n    train: {lr: 0.01}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: method_overrides.rpu: unknown strategy"):
        load_run(path, [])
    path.write_text("method_overrides:\n  ripu:\n    train: {lr: fast}\n")
    with pytest.raises(ConfigError, match=r"train\.lr: expected float"):
        load_run(path, ["method=ripu"])
    path.write_text("method_overrides: [ripu]\n")
    with pytest.raises(ConfigError, match="method_overrides: expected a mapping"):
        load_run(path, [])


@pytest.mark.parametrize("key", ["train.lrr", "trian.lr", "active.budgte", "model.embed_dm"])
def test_a_misspelt_key_is_named_with_the_closest_valid_one(key: str) -> None:
    """Every misspelling one edit away from a real key gets "did you mean" with that key."""
    from halo.config import load_run

    with pytest.raises(ValueError, match=r"did you mean '(\w+)'") as err:
        load_run(None, [f"{key}=1"])
    named = re.search(r"did you mean '(\w+)'", str(err.value)).group(1)
    real = {"train.lrr": "lr", "trian.lr": "train", "active.budgte": "budget"}
    assert named == real.get(key, "embed_dim")


def test_a_misspelt_registry_name_gets_the_closest_name() -> None:
    from halo.acquisition.methods import METHODS

    for name in METHODS:
        typo = name[:-1] + ("x" if name[-1] != "x" else "y")
        with pytest.raises(ValueError) as err:
            METHODS.lookup(typo)
        hint = re.search(r"did you mean '([\w-]+)'", str(err.value))
        assert hint and hint.group(1) in METHODS, (typo, str(err.value))
    with pytest.raises(ValueError) as err:
        METHODS.lookup("zzzzzzzz")
    assert "did you mean" not in str(err.value)
