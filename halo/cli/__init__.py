"""The ``halo`` command line: a thin shell over the package (parse, call, print).

:mod:`halo.cli.parser` declares every sub-command and option, :mod:`halo.cli.commands` calls the
package; this module maps errors to exit codes: bad input → 2 with one line, a diverged training
→ 3 (docs/design.md, "Commands and jobs").
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from halo.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``halo`` console script."""
    from halo.engine.errors import TrainingDiverged

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:  # bad input: one clear line, non-zero exit
        print(f"halo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:  # the last good checkpoint is kept for inspection
        print(f"halo {args.command}: error: {err}", file=sys.stderr)
        return 3
