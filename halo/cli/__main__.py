"""``python -m halo.cli``: the ``halo`` console script."""

import sys

from halo.cli import main

sys.exit(main())
