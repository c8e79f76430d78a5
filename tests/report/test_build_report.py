"""halo.report.build_report: every file of the report, the summary, and no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from halo import report
from tests.report.conftest import BENCH, R18, assert_png, study


def test_build_report_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "results" / BENCH
    summary = report.build_report(study(), out, benchmark=BENCH)
    assert summary["files"] == [
        "miou_table.csv",
        "miou_table.md",
        "miou_table.html",
        "runs.csv",
        "per_class.csv",
        "budget_curve.png",
        "radius_vs_frequency.csv",
        "radius_vs_frequency.png",
        "radius_correlations.csv",
        "budget_curve.csv",
        "rounds.csv",
        "metrics.json",
        "summary.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(summary["files"])
    # every file the report writes says what it holds, in one place (Snakemake's report shows it)
    from halo.report.layout import CAPTIONS

    assert not [name for name in summary["files"] if not CAPTIONS.get(name)]
    for name in summary["files"]:
        if name.endswith(".png"):
            assert_png(out / name)
    assert summary["pearson_r"] == pytest.approx(-1.0)
    assert summary["radius_source"]["budget"] == 0.022
    assert summary["radius_skipped"] is None
    best = summary["best"][R18]
    assert best["1%"]["method"] == "halo" and best["1%"]["mean"] == pytest.approx(42.0)
    assert best["1%"]["runner_up"] == "ripu" and best["1%"]["margin"] == pytest.approx(9.0)
    assert best["2.2%"]["method"] == "ripu" and best["2.2%"]["std"] == pytest.approx(2.0)
    assert set(best) == {"1%", "2.2%"}
    text = json.dumps(summary, allow_nan=False)  # JSON-ready, no NaN
    assert json.loads((out / "summary.json").read_text()) == json.loads(text)


def test_build_report_without_radius_says_so(tmp_path: Path) -> None:
    recs = [r for r in study() if not r["variant"].startswith("hyperbolic")]
    summary = report.build_report(recs, tmp_path, benchmark=BENCH)
    assert "radius_vs_frequency.csv" not in summary["files"]
    assert summary["pearson_r"] is None and summary["radius_source"] is None
    assert "no record" in summary["radius_skipped"]
    assert summary["best"][R18]["1%"]["method"] == "ripu"


def test_report_imports_no_torch(tmp_path: Path) -> None:
    """``import halo.report`` and a whole report (figures included) in a fresh interpreter leave
    torch unimported: the model side lives in :mod:`halo.acquisition.preview`."""
    records = tmp_path / "records.json"
    records.write_text(json.dumps(study()))
    code = (
        "import json, sys\n"
        "import halo.report\n"
        "assert 'torch' not in sys.modules, 'import halo.report imported torch'\n"
        f"recs = json.loads(open({str(records)!r}).read())\n"
        f"s = halo.report.build_report(recs, {str(tmp_path / 'out')!r}, benchmark={BENCH!r})\n"
        "assert 'torch' not in sys.modules, 'build_report imported torch'\n"
        "print(len(s['files']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "13"


def test_the_workflow_docs_show_the_report_captions() -> None:
    """docs/workflow.md's table of report files is generated from halo.report.layout.CAPTIONS."""
    import re

    from halo.report.layout import captions_table

    doc = (Path(__file__).parents[2] / "docs" / "workflow.md").read_text()
    block = re.search(
        r"<!-- generated: halo.report.layout.captions_table\(\) -->\n(.*?)<!-- end generated -->",
        doc,
        flags=re.DOTALL,
    )
    assert block and block.group(1) == captions_table(), (
        "regenerate the block from captions_table()"
    )
