"""Write ``.dvc/plots/offline.html``: the page ``dvc plots show`` fills, with Vega, Vega-Lite and
vega-embed inlined so the plots draw without a network (DVC's own page loads them from a CDN).

The three libraries are the ones Snakemake ships for its reports (``snakemake/assets/data``: Vega
5.21.0, Vega-Lite 5.2.0, vega-embed 6.20.8 with the Snakemake of ``uv.lock``), each preceded by
its BSD-3-Clause licence. ``.dvc/config`` names the page (``plots.html_template``); rerun this
after an upgrade of Snakemake::

    uv run python workflow/dvc/offline_template.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / ".dvc" / "plots" / "offline.html"
LIBRARIES = ("vega", "vega-lite", "vega-embed")  # in load order

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{libraries}
    <style>
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def library(assets: Path, name: str) -> str:
    """One library as an inline script, its licence in a comment before it."""
    licence = (assets / name / "LICENSE").read_text(encoding="utf-8").replace("--", "- -")
    code = (assets / name / f"{name}.js").read_text(encoding="utf-8")
    if "</script" in code.lower():
        raise SystemExit(f"{name}.js contains '</script': it cannot be inlined as is")
    return (
        f"<!-- {name} (inlined from Snakemake's assets)\n{licence}-->\n<script>\n{code}\n</script>"
    )


def main() -> int:
    import snakemake

    assets = Path(snakemake.__file__).parent / "assets" / "data"
    missing = [n for n in LIBRARIES if not (assets / n / f"{n}.js").is_file()]
    if missing:
        raise SystemExit(f"{assets}: no {', '.join(missing)} (Snakemake's report assets)")
    # the page's own placeholders stay for DVC; {scripts} is left out: its CDN tags never load
    page = PAGE.replace("{{", "{").replace("}}", "}")
    page = page.replace("{libraries}", "\n".join(library(assets, n) for n in LIBRARIES))
    OUT.write_text(page, encoding="utf-8")
    print(f"{OUT.relative_to(REPO)}: {OUT.stat().st_size / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
