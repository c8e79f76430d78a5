"""The study grid one seed at a time, archived, and its report from the archived seeds (issue #18).

Where the whole grid fits in one go, the study is one command (README, "Results")::

    uv run snakemake --cores 2 results/synth-gta2cs/ --configfile configs/study.yaml

Seeds are independent (each pretrains its own source model), so the same grid can also be run a
seed at a time — on machines whose sessions are shorter than the grid, or on several machines —
and reported together. ``run`` is that command restricted to one seed (a second config file that
sets the benchmark's ``seeds``), followed by ``archive``; ``gather`` unpacks every seed's archive
and runs ``halo report`` on all of their records at once, so the tables are those the one command
writes (every file the report reads is in the archive; the acquisition panels, which need a
model, are left out)::

    uv run python workflow/study/grid.py run --seed 0 --out docs/study/grid/seed0.tar.xz
    uv run python workflow/study/grid.py gather docs/study/grid/seed*.tar.xz --out docs/study \\
        --figures docs/figures/study [--unpack grid_runs]

A seed can also be run in parts, each short enough for one sitting and archived on its own
(``--part``: each method of the main grid across its budgets, then each ``extra`` block; the
first part also trains the supervised bound). Every part's archive holds the seed's source
models' records too: ``gather`` keeps one copy and refuses the archives if two copies of a source
or supervised run evaluate differently (a source model retrained elsewhere that is not the same
model would unpair the seed's methods)::

    uv run python workflow/study/grid.py parts                    # the parts' names
    uv run python workflow/study/grid.py todo docs/study/grid2     # "seed part" not archived yet
    uv run python workflow/study/grid.py run --seed 0 --part halo --out docs/study/grid/seed0-halo.tar.xz

An archive holds, per run of the benchmark below ``runs/``, the small files: the run record
(``metrics.json``), every evaluation, training log, budget, resolved config and provenance, and
the last round's label masks (the report's acquired-class counts); never a model.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from halo.acquisition.rounds import MASKS_DIR  # noqa: E402
from halo.io import read_json  # noqa: E402
from halo.runs import RECORD_FILE, round_dir  # noqa: E402

#: the small files of a run folder and of its round folders that an archive keeps
KEEP = ("*.json", "config.yaml")


def parts(spec: dict) -> dict[str, dict]:
    """A benchmark's grid in parts: name → the grid keys that restrict it to that part.

    One part per method of the main grid (across its budgets; the first also trains the
    supervised bound), then one per ``extra`` block (``extra1``, …): together, the grid's cells
    (a cell in two blocks is in two parts, and ``gather`` refuses its second copy).
    """
    out: dict[str, dict] = {}
    main = {"budgets": spec.get("budgets", []), "extra": []}
    for i, method in enumerate(spec.get("methods", [])):
        out[method] = {**main, "methods": [method]}
        out[method]["supervised"] = spec.get("supervised", []) if i == 0 else []
    for i, block in enumerate(spec.get("extra", []), start=1):
        out[f"extra{i}"] = {**block, "extra": [], "supervised": []}
    return out


def todo(spec: dict, archives: Path) -> list[tuple[int, str]]:
    """The (seed, part) pairs of the grid with no archive ``seed<S>-<part>.tar.xz`` in
    ``archives`` yet, in the order a run takes them: each part over every seed before the next
    part (the main comparison first, over all seeds)."""
    have = {p.name for p in archives.glob("seed*-*.tar.xz")} if archives.is_dir() else set()
    seeds = spec.get("seeds", [0])
    return [(s, p) for p in parts(spec) for s in seeds if f"seed{s}-{p}.tar.xz" not in have]


def seed_config(grid: Path, bench: str, seed: int, out: Path, part: str | None = None) -> Path:
    """A second Snakemake config file restricting ``bench`` of ``grid`` to one seed, and to one
    of its :func:`parts` (Snakemake merges config files key by key, so everything else stays the
    grid's)."""
    spec = yaml.safe_load(grid.read_text())
    if bench not in spec.get("benchmarks", {}):
        raise SystemExit(f"{grid}: no benchmark {bench!r} (has {', '.join(spec['benchmarks'])})")
    bspec = spec["benchmarks"][bench]
    seeds = bspec.get("seeds", [0])
    if seed not in seeds:
        raise SystemExit(f"{grid}: benchmark {bench} has seeds {seeds}, not {seed}")
    restrict: dict = {"seeds": [seed]}
    if part is not None:
        named = parts(bspec)
        if part not in named:
            raise SystemExit(f"--part {part!r}: {grid} has parts {', '.join(named)}")
        restrict.update(named[part])
    out.write_text(yaml.safe_dump({"benchmarks": {bench: restrict}}))
    return out


def _in_part(record: dict, seed: int | None, cells: dict | None) -> bool:
    """A run record belongs to the archive of ``seed`` (``None``: any) and part ``cells`` (the
    part's grid keys; ``None``: the whole grid); source-only and supervised runs belong to every
    part of their seed."""
    if seed is not None and record.get("seed") != seed:
        return False
    if cells is None or record.get("kind") in ("source", "supervised"):
        return True
    budgets = [float(b) / 100 for b in cells.get("budgets", [])]
    in_budget = any(abs((record.get("budget") or 0) - b) < 1e-9 for b in budgets)
    return record.get("method") in cells.get("methods", []) and in_budget


def archive_members(
    workdir: Path, bench: str, seed: int | None = None, cells: dict | None = None
) -> list[Path]:
    """The files an archive of ``workdir/runs/<bench>`` keeps, relative to ``workdir`` (the runs
    of ``seed`` and part ``cells`` only, when given: :func:`_in_part`)."""
    files: list[Path] = []
    for record in sorted((workdir / "runs" / bench).rglob(RECORD_FILE)):
        run = record.parent
        rec = read_json(record, "run record")
        if not _in_part(rec, seed, cells):
            continue
        files += [f for pat in KEEP for f in sorted(run.glob(pat))]
        rounds = [r["round"] for r in rec.get("rounds") or []]
        for r in rounds:
            files += [f for pat in KEEP for f in sorted(Path(round_dir(run, r)).glob(pat))]
        if rounds:
            files += sorted((Path(round_dir(run, rounds[-1])) / MASKS_DIR).rglob("*.png"))
    if not files:
        raise SystemExit(f"{workdir / 'runs' / bench}: no run records ({RECORD_FILE}) to archive")
    return [f.relative_to(workdir) for f in files]


def archive(
    workdir: Path, bench: str, out: Path, seed: int | None = None, cells: dict | None = None
) -> int:
    """Write the archive atomically; return the number of files in it."""
    members = archive_members(workdir, bench, seed, cells)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{out.name}-", dir=out.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:xz") as tar:
            for rel in members:  # fixed metadata: the same files give the same archive
                data = (workdir / rel).read_bytes()
                info = tarfile.TarInfo(rel.as_posix())
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; the archive is not
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(members)


#: a source-only or supervised run's folder below ``runs/``: every part of its seed archives it
FIXED_RUN = re.compile(r"^runs/[^/]+/[^/]+/(source|supervised)/[^/]+/seed\d+/")


def _same_model(first: bytes, again: bytes) -> bool:
    """Two evaluations of one fixed run agree on every class's IoU (the same model)."""
    a, b = (json.loads(x) for x in (first, again))
    return (a.get("miou"), a.get("per_class_iou")) == (b.get("miou"), b.get("per_class_iou"))


def unpack(archives: list[Path], dest: Path) -> list[Path]:
    """Extract the archives into ``dest`` (plain files only, below ``dest``) and return the run
    records. An active run found in two archives is refused; a source-only or supervised run
    (in every part's archive of its seed) is kept once, and refused if its copies' evaluations
    differ."""
    seen: dict[str, tuple[Path, bytes | None]] = {}
    for a in archives:
        with tarfile.open(a, "r:*") as tar:
            fresh = []
            for m in tar.getmembers():
                if not m.isfile() or not m.name.startswith("runs/"):
                    raise SystemExit(f"{a}: unexpected member {m.name!r} (not a file below runs/)")
                is_eval = m.name.endswith("/eval.json")
                data = tar.extractfile(m).read() if is_eval else None
                if m.name not in seen:
                    seen[m.name] = (a, data)
                    fresh.append(m)
                    continue
                where, first = seen[m.name]
                if not FIXED_RUN.match(m.name):
                    raise SystemExit(f"{a}: {m.name} is also in {where}")
                if is_eval and not _same_model(first, data):
                    raise SystemExit(
                        f"{a}: {m.name} differs from its copy in {where}: the seed's source or "
                        f"supervised model was retrained into another model, so its methods "
                        f"are not paired (rerun the part from the same model)"
                    )
            tar.extractall(dest, members=fresh, filter="data")
    return sorted(dest.glob(f"runs/**/{RECORD_FILE}"))


def report_args(grid: Path, bench: str) -> list[str]:
    spec = yaml.safe_load(grid.read_text())["benchmarks"][bench]
    sets = [*spec.get("set", []), f"benchmark={bench}"]
    return ["--config", spec["config"], *[a for s in sets for a in ("--set", s)]]


def gather(
    archives: list[Path], grid: Path, bench: str, out: Path, figures: Path | None, keep: Path | None
) -> None:
    with tempfile.TemporaryDirectory(prefix="halo-grid-") as tmp:
        if keep is not None and keep.exists():
            raise SystemExit(f"--unpack {keep}: exists (give a new folder)")
        records = unpack(archives, keep or Path(tmp))
        if not records:
            raise SystemExit(f"no run records in {', '.join(map(str, archives))}")
        results = Path(tmp) / "results"
        cmd = [sys.executable, "-m", "halo.cli", "report", *report_args(grid, bench)]
        cmd += ["--records", *map(str, records), "--panels", "0", "--no-track"]
        subprocess.run([*cmd, "--out", str(results)], check=True, cwd=REPO)
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(results.glob("*.csv")) + sorted(results.glob("*.md")):
            shutil.copy2(f, out / f.name)
        if figures is not None:
            figures.mkdir(parents=True, exist_ok=True)
            for f in sorted(results.glob("*.png")):
                shutil.copy2(f, figures / f.name)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=Path, default=REPO / "configs" / "study.yaml")
    p.add_argument("--bench", default="synth-gta2cs")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("parts", help="the names of the grid's parts (--part)")
    t = sub.add_parser("todo", help="the seeds and parts not archived yet, in run order")
    t.add_argument("archives", type=Path, help="the folder of the part archives")
    r = sub.add_parser("run", help="the grid for one seed (Snakemake), then its archive")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--part", default=None, help="one part of the seed's grid (see parts)")
    r.add_argument("--out", type=Path, required=True, help="the archive (.tar.xz)")
    r.add_argument("--cores", type=int, default=2)
    r.add_argument("--directory", type=Path, default=Path.cwd(), help="Snakemake's workdir")
    a = sub.add_parser("archive", help="archive a finished grid's runs of the benchmark")
    a.add_argument("--directory", type=Path, default=Path.cwd(), help="holds runs/")
    a.add_argument("--seed", type=int, default=None, help="this seed's runs only")
    a.add_argument("--part", default=None, help="this part's runs only (needs --seed)")
    a.add_argument("--out", type=Path, required=True)
    g = sub.add_parser("gather", help="the report of every archived seed")
    g.add_argument("archives", type=Path, nargs="+")
    g.add_argument("--out", type=Path, required=True, help="folder of the report's tables")
    g.add_argument("--figures", type=Path, default=None, help="folder of its figures")
    g.add_argument(
        "--unpack",
        type=Path,
        default=None,
        help="keep the unpacked runs/ here (radius.py --grid-runs DIR/runs/<bench>/<backbone>)",
    )
    return p


def _run(args, extra: list[str]) -> None:
    """Snakemake on the grid restricted to the seed (and part)."""
    d = args.directory.resolve()
    (d / "logs").mkdir(parents=True, exist_ok=True)
    name = f"grid_seed{args.seed}{'-' + args.part if args.part else ''}.yaml"
    seed_file = seed_config(args.grid, args.bench, args.seed, d / "logs" / name, args.part)
    cmd = [sys.executable, "-m", "snakemake", f"results/{args.bench}/", "--cores"]
    cmd += [str(args.cores), "--snakefile", str(REPO / "Snakefile"), "--directory", str(d)]
    cmd += [*extra, "--configfile", str(args.grid.resolve()), str(seed_file)]
    subprocess.run(cmd, check=True, cwd=d)


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args, extra = p.parse_known_args(argv)
    if extra and args.cmd != "run":
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    spec = yaml.safe_load(args.grid.read_text())["benchmarks"].get(args.bench, {})
    if args.cmd == "parts":
        print("\n".join(parts(spec)))
        return 0
    if args.cmd == "todo":
        print("\n".join(f"{s} {p}" for s, p in todo(spec, args.archives)))
        return 0
    cells = None
    if args.cmd in ("run", "archive") and args.part is not None:
        if args.seed is None:
            p.error("--part needs --seed")
        if args.part not in parts(spec):
            p.error(f"--part {args.part!r}: the grid's parts are {', '.join(parts(spec))}")
        cells = parts(spec)[args.part]
    if args.cmd == "run":
        _run(args, extra)
    if args.cmd in ("run", "archive"):
        n = archive(args.directory.resolve(), args.bench, args.out, args.seed, cells)
        print(f"{n} files → {args.out}")
    else:
        gather(args.archives, args.grid, args.bench, args.out, args.figures, args.unpack)
        print(f"report of {len(args.archives)} archives → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
