"""The house rules of docs/design.md, checked on the source: module size, no import cycles, a thin
CLI, public entry points under their names, no document cited from outside the repository."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "halo"
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, name: str) -> set[str]:
    """halo modules ``path`` imports, anywhere in the file (functions included), except under
    ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "halo" or m.startswith("halo.")}


#: the source trees the house rules cover
TREES = ("halo", "workflow", "bench")
MAX_FUNCTION = 80


def _sources() -> list[Path]:
    return sorted(p for tree in TREES for p in (ROOT / tree).rglob("*.py"))


def test_no_module_over_500_lines() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_no_function_over_80_lines() -> None:
    """Every function (docstring and comments included) fits in 80 lines."""
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION} lines: {long}"


#: The floors of docs/design.md ("Layers"), lowest first: a module imports its own floor or
#: lower ones only. Keys are module prefixes; the longest matching prefix decides.
FLOORS = {
    "halo": 0,  # the package face: the version
    "halo.registry": 0,
    "halo.choices": 0,
    "halo.io": 0,
    "halo.progress": 0,
    "halo.timing": 0,
    "halo.devices": 0,
    "halo.lazy": 0,
    "halo.data": 1,
    "halo.models": 1,
    "halo.acquisition": 2,
    "halo.config": 3,
    "halo.provenance": 4,
    "halo.report": 4,
    "halo.runs": 4,
    "halo.tracking": 4,
    "halo.annotate": 4,
    "halo.engine": 5,
    "halo.cli": 6,
    "halo.launcher": 7,
}


def _floor(module: str) -> int:
    match = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len)
    return FLOORS[match]


def test_no_import_points_up_a_floor() -> None:
    """Every import between halo modules (inside functions too) goes down or stays level."""
    modules = _modules()
    assert set(m.split(".")[1] for m in modules if "." in m) <= {
        p.split(".")[1] for p in FLOORS if "." in p
    }, "a halo module outside FLOORS: give it a floor (docs/design.md, Layers)"
    up = [
        f"{name} (floor {_floor(name)}) imports {target} (floor {_floor(target)})"
        for name, path in modules.items()
        for target in _imports(path, name)
        if target in modules and _floor(target) > _floor(name)
    ]
    assert not up, "upward imports:\n" + "\n".join(sorted(up))


def test_each_command_calls_one_engine_job() -> None:
    """The CLI reaches the engine through halo.engine.jobs only, one job per command."""
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        engine = {
            n.module or ""
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("halo.engine")
        }
        engine |= {
            f"halo.engine.{a.name}"
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module == "halo.engine"
            for a in n.names
        }
        assert engine <= {"halo.engine", "halo.engine.jobs", "halo.engine.errors"}, path.name
        for fn in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
            calls = {
                c.func.attr
                for c in ast.walk(fn)
                if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute)
                and isinstance(c.func.value, ast.Name)
                and c.func.value.id == "jobs"
            }
            assert len(calls) <= 1, f"{path.name}:{fn.name} calls jobs.{sorted(calls)}"


def test_no_import_cycle_among_halo_modules() -> None:
    """Every import (also those inside functions) between halo modules points one way."""
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }
    # a package's face (its __init__) re-exporting its own submodules is not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cli_is_a_thin_shell() -> None:
    """halo/cli/ parses, calls and prints: it imports no torch, model, training or file-format
    module, and defines no class."""
    forbidden = re.compile(
        r"^(torch|numpy|halo\.models|halo\.engine\.(train|checkpoint|evaluate)|"
        r"halo\.acquisition\.(loop|rounds|selection|strategies)|halo\.data\.(dataset|readers))\b"
    )
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        bad = [m for m in names if forbidden.match(m)]
        assert not bad, f"{path.name} imports {bad}"
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)], path.name


def test_no_docstring_cites_a_document_outside_the_repository() -> None:
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "workflow").rglob("*")]:
        if path.is_file():
            assert not re.search(r"DESIGN\b|§", path.read_text()), path
    cited = set()
    for path in PACKAGE.rglob("*.py"):
        text = re.sub(r"\s+", " ", path.read_text())  # citations may wrap lines
        cited.update(re.findall(r'design\.md(?:, section)? \(?"([^"]+)"', text))
    design = (ROOT / "docs" / "design.md").read_text()
    headings = set(re.findall(r"^## (.+)$", design, flags=re.M))
    assert cited and cited <= headings, f"sections cited but missing: {cited - headings}"


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("halo.data", ["build_dataset", "DataError", "SegmentationDataset"]),
        ("halo.data.labels", ["id_to_train_id"]),
        ("halo.models.segmenter", ["build_segmenter", "build_backbone"]),
        ("halo.models.hyperbolic", ["expmap0", "radius", "mlr_logits"]),
        ("halo.acquisition.selection", ["select_regions"]),
        ("halo.acquisition.strategies", ["build_strategy"]),
        ("halo.cli", ["main"]),
    ],
)
def test_public_entry_points_keep_their_names(module: str, names: list[str]) -> None:
    mod = importlib.import_module(module)
    for name in names:
        assert callable(getattr(mod, name)), f"{module}.{name}"


COMMANDS = {
    "synth": "conditions count out quiet seed size split style",
    "pretrain": "config device eval-out out quiet set",
    "train": "config device eval-out init masks out protocol quiet round set",
    "acquire": "checkpoint config device out prev quiet round set",
    "evaluate": "budget checkpoint config device out quiet set",
    "check-data": "config quiet set verify",
    "summarize": "budgets config eval kind out quiet set",
    "track": "artifacts init out record uri",
    "report": "config device no-track out panels panels-checkpoint quiet records set",
}


def test_every_argument_has_help_and_the_version_is_printed(capsys) -> None:
    from halo import __version__
    from halo.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    bare = [
        (command, a.option_strings or a.dest)
        for command, p in sub.choices.items()
        for a in p._actions
        if not a.help
    ]
    assert not bare, f"arguments without help: {bare}"
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"halo {__version__}"


def test_every_command_and_option_is_still_there() -> None:
    from halo.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for command, options in COMMANDS.items():
        have = {o for a in sub.choices[command]._actions for o in a.option_strings}
        missing = {f"--{o}" for o in options.split()} - have
        assert not missing, f"halo {command} lost {missing}"
