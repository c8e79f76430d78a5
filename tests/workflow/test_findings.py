"""workflow/study/findings.py: the study's findings as sections generated from its tables
(known answers on made-up tables)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from tests.workflow.test_study import _claims_tables, _load

MEANS = {"random": 30.0, "entropy": 40.0, "halo": 41.0, "ripu": 44.8}
MEANS |= {"halo-src": 42.0, "halo-src-inv": 42.0}


@pytest.fixture()
def findings():
    return _load("findings")


@pytest.fixture()
def radius_sections():
    return _load("findings_radius")


def _with_rounds(folder, first: dict[str, float]) -> None:
    """runs.csv with a round_miou column: round 1 at ``first[method]`` + the seed, then the
    final mIoU."""
    runs = pd.read_csv(folder / "runs.csv")
    active = runs["kind"] == "active"
    runs["round_miou"] = [
        f"{first[m] + s:.4f};{v:.4f}" if a else None
        for m, s, v, a in zip(runs["method"], runs["seed"], runs["miou"], active, strict=True)
    ]
    runs.to_csv(folder / "runs.csv", index=False)


def test_round_one_pairs_the_seeds_on_the_first_rounds_miou(tmp_path, findings):
    _claims_tables(tmp_path, MEANS)
    first = dict.fromkeys(MEANS, 20.0) | {"halo": 18.0, "halo-src": 23.0}
    _with_rounds(tmp_path, first)
    text = findings.markdown(tmp_path, [0.01, 0.05])
    section = text.split("<!-- section: round-one -->")[1].split("<!-- section:")[0]
    # the final mIoU says HALO ≥ entropy (+1.01); after round 1 it is −2.0 on every seed
    assert "| after round 1: HALO ≥ entropy | 1 % | HALO 19.0 | entropy 21.0 | −2.0" in section
    assert section.count("**no**") == 2 and section.count("**yes**") == 4
    assert "A, B: mean mIoU after round 1 over the seeds" in section  # not the final mIoU
    assert "(no radius_experiments.csv in docs/study)" in text
    assert "(the held-out sweep has not run" in text


def _intervention(radii: dict[float, list[float]], iou: dict[float, float]) -> pd.DataFrame:
    rows = []
    for scale, per_seed in radii.items():
        rows.append(
            {
                "experiment": "frequency",
                "setting": f"adamw-1e-3@carx{scale:g}",
                "eval_on": "source",
                "class": "car",
                "scale": scale,
                "class_train_share": 0.05 * scale,
                "class_radius": float(np.mean(per_seed)),
                "class_radius_sd": float(np.std(per_seed, ddof=1)),
                "class_radius_seeds": ";".join(f"{r:.4f}" for r in per_seed),
                "class_radius_rank_seeds": "1;2;3",
                "class_iou": iou[scale],
            }
        )
    return pd.DataFrame(rows)


def test_intervention_reads_the_trend_over_learned_shares_in_the_means_and_each_seed(
    radius_sections,
):
    radii = {0.25: [4.0, 4.1, 3.0], 1.0: [3.5, 3.6, 3.2], 2.5: [3.0, 3.1, 3.4], 4.0: [2.0, 2, 2]}
    iou = {0.25: 50.0, 1.0: 60.0, 2.5: 60.0, 4.0: 10.0}
    text = radius_sections.intervention(_intervention(radii, iou))
    # ×4 is not learned: left out of the trend, flagged in the table
    assert (
        "- car, source val: over its 3 learned shares the mean radius falls; "
        "per seed: falls, falls, rises (not learned, left out: ×4)"
    ) in text
    sd = np.std(radii[0.25], ddof=1)
    assert text.count("**no**") == 1 and f"| {np.mean(radii[0.25]):.2f} ± {sd:.2f} |" in text
    few = radius_sections.intervention(
        _intervention(radii, dict.fromkeys(radii, 5.0) | {1.0: 30.0})
    )
    assert "learned at 1 of 4 shares" in few and "no trend" in few


def test_the_radius_sign_section_reads_a_sign_only_where_r_rho_and_log_r_agree(
    tmp_path, radius_sections
):
    def row(setting: str, on: str, r: float, rho: float, log_r: float) -> dict:
        return {
            "experiment": "regime", "setting": setting, "eval_on": on, "pearson_r": r,
            "spearman_rho": rho, "pearson_r_log_share": log_r, "partial_r_iou": -0.05,
            "pearson_r_seeds": f"{r - 0.1!r};{r!r};{r + 0.1!r}",
        }  # fmt: skip

    rx = pd.DataFrame(
        [
            row("adamw-1e-3", "target", -0.71, -0.28, -0.55),
            row("adamw-1e-3", "source", -0.5, 0.2, -0.1),
        ]
    )
    _claims_tables(tmp_path, MEANS)
    claims = sys.modules["claims"]
    paired = claims.claims(pd.read_csv(tmp_path / "runs.csv"), [0.01, 0.05])
    text = radius_sections.sign_summary(rx, paired)
    assert (
        "- source model, target: r = −0.71, ρ = −0.28, r(log share) = −0.55, sign: negative "
        "(each seed's r: −0.81 / −0.71 / −0.61; partial r given IoU −0.05)"
    ) in text
    assert (
        "- source model, source val: r = −0.50, ρ = +0.20, r(log share) = −0.10, sign: none" in text
    )
    # the direct test's verdicts: HALO with the source radius against entropy and its inverse
    assert "- HALO, source radius − entropy at 1 %: +2.0 [+2.0, +2.0] over 3 seeds: **yes**" in text
    assert "- HALO, source radius − HALO, inverted source radius at 5 %: +0.0" in text


def test_selection_picks_on_the_held_out_split_and_says_whether_it_changed(findings):
    def sweep(scores: dict[str, float]) -> pd.DataFrame:
        rows = [(s, "source", 0.0, 10.0) for s in scores]
        rows += [(s, m, b, v + b) for s, v in scores.items() for m in ("random", "entropy")
                 for b in (0.01, 0.05)]  # fmt: skip
        return pd.DataFrame(rows, columns=["setting", "method", "budget", "mean"])

    val = sweep({"lr1e-3": 40.0, "lr1e-2": 45.0})
    text = findings.selection(val, sweep({"lr1e-3": 43.0, "lr1e-2": 42.0}))
    assert "- chosen on the held-out split: lr1e-3" in text
    assert "- chosen on the target val set (before): lr1e-2" in text and "changed: **yes**" in text
    assert "changed: no" in findings.selection(val, sweep({"lr1e-3": 1.0, "lr1e-2": 2.0}))
    # the rule: the highest mean among the settings with no unstable run
    stab = pd.DataFrame(
        {"setting": ["lr1e-3", "lr1e-3", "lr1e-2"], "unstable": [True, False, False]}
    )
    text = findings.selection(val, sweep({"lr1e-3": 43.0, "lr1e-2": 42.0}), None, stab)
    assert "- chosen on the held-out split: lr1e-2" in text and "changed: no" in text
    assert "| lr1e-3 | 43.0 | 1 | 40.0 |" in text  # its means, and its unstable run, shown
    both = pd.DataFrame({"setting": ["lr1e-3", "lr1e-2"], "unstable": [True, True]})
    assert "none (every setting has an unstable run)" in findings.selection(val, val, both, both)


def test_borders_compare_each_method_with_random_seed_by_seed(findings):
    rows = [("random", 0.05, s, 16, 0.25 + 0.01 * s, 0.25) for s in range(3)] + [
        ("entropy", 0.05, s, 16, 0.35 + 0.01 * s + 0.001 * s * s, 0.25) for s in range(3)
    ]
    rows += [("random-nl", 0.05, s, 16, 0.25 + 0.01 * s, 0.25) for s in range(3)]
    b = pd.DataFrame(
        rows, columns=["method", "budget", "seed", "band", "side_share", "side_expected"]
    )
    text = findings.borders(b)
    line = next(x for x in text.splitlines() if x.startswith("| entropy"))
    # side shares 35.0 / 36.1 / 37.4 against random's 25 / 26 / 27: +10.0 / +10.1 / +10.4
    assert "| 5 % | 3 | 36.2 | 25.0 | +10.2 [" in line and line.endswith("| yes |")
    assert "the 16 pixel columns" in text
    # random + NL draws what random draws (NL changes the training only): nothing to pair
    assert next(x for x in text.splitlines() if x.startswith("| random + NL")).endswith("|  |  |")


def test_mechanism_and_rounds_show_every_correlation_column(radius_sections):
    rx = pd.DataFrame(
        [
            ("head", "halo-hfrraw", "target", 3, 12.0, 0.2, 0.1, 0.15, -0.05, "0.1;0.2;0.3", None),
            (
                "rounds",
                "halo 5 % source model",
                "target",
                3,
                11.0,
                -0.7,
                -0.5,
                -0.6,
                0.0,
                "-0.6;-0.7;-0.8",
                0,
            ),
            (
                "rounds",
                "halo 5 % after round 1",
                "target",
                3,
                30.0,
                0.8,
                0.5,
                0.7,
                0.01,
                "0.7;0.8;0.9",
                1,
            ),
        ],
        columns=[
            "experiment",
            "setting",
            "eval_on",
            "n_seeds",
            "miou",
            "pearson_r",
            "spearman_rho",
            "pearson_r_log_share",
            "partial_r_iou",
            "pearson_r_seeds",
            "round",
        ],
    )
    mech = radius_sections.mechanism(rx)
    assert "| head | halo-hfrraw | target | 3 | 12.0 | +0.20 | +0.10 | +0.15 | −0.05 |" in mech
    assert "| HALO | 5 % | −0.70 | +0.80 | +0.70 to +0.90 (3) |" in radius_sections.rounds(rx)


def test_cost_sums_finished_attempts_and_counts_the_cut_off_ones(findings):
    log = "\n".join(
        [
            "2026-01-01T10:00:00+00:00 seed 0 start abc",
            "2026-01-01T10:30:00+00:00 seed 0 whole run stopped (switch to parts)",
            "2026-01-01T10:30:00+00:00 seed 0 part random start abc",
            "2026-01-01T10:50:00+00:00 seed 0 part random end rc=0",
            "2026-01-01T10:50:00+00:00 seed 1 part random start abc",
            "2026-01-01T12:00:00+00:00 seed 1 part random start def",  # the machine stopped
            "2026-01-01T12:10:00+00:00 seed 1 part random paused 300 s (a test run)",
            "2026-01-01T12:30:00+00:00 seed 1 part random end rc=0 def",
            "2026-01-01T12:25:00+00:00 seed 2 part random start def",
            "2026-01-01T12:26:00+00:00 seed 2 part random end rc=1 def",  # failed: not counted
            "2026-01-01T13:00:00+00:00 radius start def",
            "2026-01-01T14:30:00+00:00 radius end rc=0 def",
            "2026-01-01T15:00:00+00:00 radius-frequency start def",
            "2026-01-01T15:40:00+00:00 radius-frequency end rc=0 def",
            "2026-01-01T15:40:00+00:00 select-lr1e-2 start def",
            "2026-01-01T15:41:00+00:00 seed 3 part ripu stopped: restarted by hand def",
            "2026-01-01T16:04:00+00:00 select-lr1e-2 end rc=0 def",
        ]
    )
    text = findings.cost(log)
    assert "| random | 2 | 20 / 25 | 0.8 |" in text
    assert "| radius | 1 | 90 | 1.5 |" in text and "| 1 | 30 | 0.5 |" in text
    assert "| radius-frequency | 1 | 40 | 0.7 |" in text and "| select-lr1e-2 | 1 | 24 |" in text
    assert "in all: 3.8 h" in text and "their time not counted): 1" in text
    # the parts by their methods' names (an extra block: its methods, from configs/study.yaml)
    labels = findings.part_labels(findings.STUDY_GRID)
    assert labels["ripu"] == "RIPU" and labels["extra1"].endswith("RIPU + NL, HALO + NL)")
    assert "| RIPU | 1 |" in findings.cost(
        log + "\n2026-01-01T17:00:00+00:00 seed 0 part ripu start d\n"
        "2026-01-01T17:10:00+00:00 seed 0 part ripu end rc=0 d",
        labels,
    )


def test_negative_learning_says_whether_a_verdict_changes(tmp_path, findings):
    means = MEANS | {"random-nl": 30.0, "entropy-nl": 41.0, "halo-nl": 40.0, "ripu-nl": 44.8}
    _claims_tables(tmp_path, means)  # every method shifted alike per seed: exact differences
    runs = pd.read_csv(tmp_path / "runs.csv")
    text = findings.negative_learning(runs, [0.01, 0.05])
    # HALO ≥ entropy: +1.0 "yes" without NL, −1.0 "no" with it; the other two keep theirs
    assert "| HALO ≥ entropy | 5 % | 3 | +1.0 **yes** | −1.0 **no** |" in text
    assert text.endswith("changes a verdict: **yes**: HALO ≥ entropy at 5 %")
    # the NL block run on fewer seeds: both verdicts on the seeds all four cells have
    nl = runs["method"].str.endswith("-nl")
    two = findings.negative_learning(runs[~nl | (runs["seed"] < 2)], [0.05])
    assert "| HALO ≥ entropy | 5 % | 2 |" in two and "| 3 |" not in two
    # one seed of it: no verdict can be given yet, so none changes
    one = findings.negative_learning(runs[~nl | (runs["seed"] == 0)], [0.05])
    assert "**n/a**" in one and one.endswith("changes a verdict: no")
    assert findings.negative_learning(runs[~nl], [0.05]) == "(no negative-learning rows)"


@pytest.mark.parametrize(
    ("nl", "flipped"),
    [
        ({"halo-nl": 29.0}, "HALO ≥ random"),  # below random + NL: "HALO ≥ random" yes → no
        ({"halo-nl": 70.0}, "HALO surpasses target-supervised (the paper: from 1 % on)"),
    ],
)
def test_every_claim_of_the_paper_is_checked_with_and_without_nl(tmp_path, findings, nl, flipped):
    """Not a chosen few: each of the paper's comparisons (the supervised bound's, which has no
    NL run, against HALO + NL) can be the verdict that negative learning changes."""
    base = {"random-nl": 31.0, "entropy-nl": 41.0, "halo-nl": 42.0, "ripu-nl": 45.8}
    _claims_tables(tmp_path, MEANS | base | nl)
    rows, changed = findings.nl_verdicts(pd.read_csv(tmp_path / "runs.csv"), [0.01, 0.05])
    assert [r["comparison"] for r in rows] == [claim for claim, _, _ in findings.cl.PAPER]
    assert f"{flipped} at 5 %" in changed


def test_the_nl_check_stops_the_driver_only_on_a_changed_verdict_with_enough_seeds(tmp_path):
    nlcheck = _load("nlcheck")
    same = MEANS | {"random-nl": 31.0, "entropy-nl": 41.0, "halo-nl": 42.0, "ripu-nl": 45.8}
    _claims_tables(tmp_path, same)  # NL shifts every method alike: no verdict moves
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert nlcheck.decide(runs, 3)[1] == 0
    text, code = nlcheck.decide(runs, 5)  # 3 seeds where 5 are needed: not decided yet
    assert code == 1 and text.endswith("3 common seeds, 5 needed")
    flip = MEANS | {"random-nl": 30.0, "entropy-nl": 41.0, "halo-nl": 40.0, "ripu-nl": 44.8}
    _claims_tables(tmp_path, flip)  # HALO ≥ entropy: yes without NL, no with it
    text, code = nlcheck.decide(pd.read_csv(tmp_path / "runs.csv"), 3)
    assert code == 3 and "changes a verdict: **yes**: HALO ≥ entropy at 5 %" in text
    no_nl = runs[~runs["method"].str.endswith("-nl")]
    assert nlcheck.decide(no_nl, 1) == (
        "(no negative-learning rows)\nnlcheck: 0 common seeds, 1 needed",
        1,
    )


def test_the_readmes_grid_keeps_the_core_rows_and_the_labelled_line(findings):
    md = "\n".join(
        [
            "| backbone | method | 0% | 5% |",
            "|---|---|---:|---:|",
            "| bb | source-only [euclidean] | 13.3 |  |",
            "| bb | source-only [hyperbolic-hfr] | 12.1 |  |",
            "| bb | featnorm |  | 58.5 |",
            "| bb | halo |  | 57.7 |",
            "| bb | halo-src |  | 58.0 |",
            "| bb | halo-nl |  | 56.0 |",
            "| bb | supervised |  |  |",
            "",
            "Labelled pixels, % of the target pool: 5%: 5.0 %.",
        ]
    )
    core = findings.grid_core(findings.grid(md))
    methods = [x.split("|")[2].strip() for x in core.splitlines()[2:] if x.startswith("|")]
    assert methods == ["source-only [hyperbolic-hfr]", "halo", "halo-src", "supervised"]
    assert core.splitlines()[:2] == md.splitlines()[:2] and core.endswith("5%: 5.0 %.")
