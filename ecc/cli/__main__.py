"""``python -m ecc.cli``: the ``ecc`` command, for a checkout without the console script."""

from __future__ import annotations

import contextlib
import sys

from ecc.cli import main

with contextlib.suppress(KeyboardInterrupt):
    sys.exit(main())
